//go:build linux

// ui_browser_test.go tests the status page as a browser shows it: headless
// chromium against a live 3-member cluster, directly and behind a proxy
// that asks for credentials.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestUIInChromium opens the status page in headless chromium against a
// 3-member cluster, through a follower, and checks what it renders: the
// members and the leader, and a key written during the test showing up in
// the key browser and in the live watch without a reload. The screenshot
// is saved in the test's temporary directory (and copied to
// $ETCDLITE_UI_SHOT when that is set).
func TestUIInChromium(t *testing.T) {
	if chromiumPath() == "" {
		t.Skip("chromium is not installed (apt-get install -y chromium): the status page test is skipped")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := startTestCluster(t, 3, nil)
	lead := c.leader()
	via := (lead + 1) % 3
	leadName := c.members[lead].cfg.Name
	put := func(i int, key, value string, extra url.Values) {
		t.Helper()
		form := url.Values{"value": {value}}
		for k, v := range extra {
			form[k] = v
		}
		if code, body := httpDo(t, "PUT", c.members[i].url+"/v2/keys"+key, form); code/100 != 2 {
			t.Fatalf("PUT %s: %d %s", key, code, body)
		}
	}
	put(lead, "/config/db/host", "10.0.0.5", nil)
	put(lead, "/config/db/port", "5432", nil)
	put(via, "/config/flags", `{"beta":true}`, nil)
	put(via, "/services/web/1", "http://127.0.0.1:8080", nil)
	put(lead, "/locks/job", "owner-"+leadName, url.Values{"ttl": {"600"}})
	put(lead, "/markup", `<img src=x onerror="document.title='pwned'"><b>bold</b>`, nil)

	b := startBrowser(t, ctx, 1280, 1000)
	if _, err := b.call(ctx, "Log.enable", nil); err != nil {
		t.Fatal(err)
	}
	viewport := func(width, height int, mobile bool) {
		t.Helper()
		if _, err := b.call(ctx, "Emulation.setDeviceMetricsOverride", map[string]any{
			"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile,
		}); err != nil {
			t.Fatal(err)
		}
	}
	// no scroll bar taking its width out of the screenshots
	if _, err := b.call(ctx, "Emulation.setScrollbarsHidden", map[string]any{"hidden": true}); err != nil {
		t.Fatal(err)
	}
	viewport(1280, 900, false)
	if err := b.navigate(ctx, c.members[via].url+"/ui"); err != nil {
		t.Fatal(err)
	}
	// until cond (a JavaScript expression) is true in the page
	until := func(what, cond string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var ok bool
			err := b.eval(ctx, "!!("+cond+")", &ok)
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				var dom string
				b.eval(ctx, "document.body ? document.body.innerText : ''", &dom)
				t.Fatalf("the page never showed %s (%s; last error %v)\npage text:\n%s\nconsole:\n%s",
					what, cond, err, dom, strings.Join(b.consoleLogs(), "\n"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	js := func(s string) string { q, _ := json.Marshal(s); return string(q) }

	until("the page at /ui/ after the redirect", `location.pathname === "/ui/"`)
	until("three healthy members", `document.querySelectorAll('#member-list [data-member] .health.ok').length === 3`)
	until("the leader's card", `document.querySelectorAll('#member-list [data-role=leader]').length === 1 &&
		document.querySelector('#member-list [data-role=leader]').dataset.member === `+js(leadName))
	until("the leader in the header", `document.getElementById('leader-name').textContent === `+js(leadName))
	until("two followers' replication rows", `document.querySelectorAll('#followers tbody tr').length === 2`)
	until("the watch running", `document.getElementById('watch-status').textContent.startsWith('watching / from index')`)
	until("the tree's top level", `document.querySelector('#key-list li[data-key="/config"]') &&
		document.querySelector('#key-list li[data-key="/markup"]')`)
	// values are text, never markup
	until("the markup value as text", `document.querySelector('#key-list li[data-key="/markup"] .kval').textContent === `+
		js(`<img src=x onerror="document.title='pwned'"><b>bold</b>`)+` && !document.querySelector('#key-list img, #key-list b')`)

	// a key written now, through another member, appears in both views
	written := fmt.Sprintf("written during the test at %d", time.Now().UnixNano())
	put(lead, "/uitest/fresh", written, nil)
	until("the new directory in the key browser", `document.querySelector('#key-list li[data-key="/uitest"]')`)
	until("the new key in the watch", `[...document.querySelectorAll('#watch-events li[data-key="/uitest/fresh"]')].some(li =>
		li.dataset.action === 'set' && li.textContent.includes(`+js(written)+`))`)
	if err := b.eval(ctx, `document.querySelector('#key-list li[data-key="/uitest"]').click()`, nil); err != nil {
		t.Fatal(err)
	}
	until("the new key in its directory", `document.querySelector('#key-list li[data-key="/uitest/fresh"]')`)
	if err := b.eval(ctx, `document.querySelector('#key-list li[data-key="/uitest/fresh"]').click()`, nil); err != nil {
		t.Fatal(err)
	}
	until("the key's value and indexes", `!document.getElementById('key-detail').hidden &&
		document.getElementById('detail-value').textContent === `+js(written)+` &&
		document.getElementById('detail-facts').textContent.includes('modified index')`)

	// a watch on a chosen prefix sees only that prefix
	if err := b.eval(ctx, `document.getElementById('watch-prefix').value = '/uitest';
		document.querySelector('#watch-form button[type=submit]').click()`, nil); err != nil {
		t.Fatal(err)
	}
	until("the watch on /uitest", `document.getElementById('watch-status').textContent.startsWith('watching /uitest from index')`)
	put(via, "/elsewhere/x", "not watched", nil)
	put(lead, "/uitest/second", "watched", url.Values{"ttl": {"300"}})
	until("the second key in the watch", `document.querySelector('#watch-events li[data-key="/uitest/second"]')`)
	until("the second key in the open directory, with its TTL", `document.querySelector('#key-list li[data-key="/uitest/second"] .badge')`)
	var leaked bool
	if err := b.eval(ctx, `!!document.querySelector('#watch-events li[data-key="/elsewhere/x"]')`, &leaked); err != nil || leaked {
		t.Errorf("the watch on /uitest showed /elsewhere/x (%v)", err)
	}

	shot, err := b.screenshot(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	saveShot(t, "ui.png", shot)

	// a watch from an index the history no longer holds re-reads and goes on
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 20 * time.Second}
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 66; i++ {
				code, body, err := linHTTP(client, "PUT", c.members[lead].url+fmt.Sprintf("/v2/keys/bulk/w%d", w), url.Values{"value": {fmt.Sprint(i)}})
				if err == nil && code/100 != 2 {
					err = fmt.Errorf("PUT: %d %s", code, body)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := b.eval(ctx, `document.getElementById('watch-prefix').value = '/';
		document.getElementById('watch-from').value = '2';
		document.querySelector('#watch-form button[type=submit]').click()`, nil); err != nil {
		t.Fatal(err)
	}
	until("the history-cleared notice", `[...document.querySelectorAll('#watch-events li.info')].some(li => li.textContent.includes('no longer in the history'))`)
	until("the watch going on past it", `/^watching \/ from index (\d+)$/.test(document.getElementById('watch-status').textContent) &&
		Number(document.getElementById('watch-status').textContent.split(' ').pop()) > 1000`)
	put(via, "/after/clear", "seen", nil)
	until("a key written after the re-read", `document.querySelector('#watch-events li[data-key="/after/clear"]')`)

	// the dark scheme, for the record
	if _, err := b.call(ctx, "Emulation.setEmulatedMedia", map[string]any{
		"features": []map[string]string{{"name": "prefers-color-scheme", "value": "dark"}},
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if shot, err = b.screenshot(ctx, true); err != nil {
		t.Fatal(err)
	}
	saveShot(t, "ui-dark.png", shot)

	// a phone's width: everything stacks, nothing overflows sideways
	viewport(400, 800, true)
	until("no sideways overflow at 400 px", `document.documentElement.scrollWidth <= 400`)
	if shot, err = b.screenshot(ctx, true); err != nil {
		t.Fatal(err)
	}
	saveShot(t, "ui-narrow.png", shot)

	// a member stopped: its card says so, and the summary counts it
	viewport(1280, 900, false)
	if _, err := b.call(ctx, "Emulation.setEmulatedMedia", map[string]any{"features": []map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	down := (lead + 2) % 3
	c.stop(down)
	until("the stopped member unreachable", `document.querySelector('#member-list [data-member=`+js(c.members[down].cfg.Name)+`] .health.bad') &&
		document.querySelector('#member-list [data-member=`+js(c.members[down].cfg.Name)+`] .err').textContent.includes('connection refused') &&
		document.getElementById('health-sum').textContent === '2 / 3 healthy'`)
	if shot, err = b.screenshot(ctx, false); err != nil {
		t.Fatal(err)
	}
	saveShot(t, "ui-degraded.png", shot)

	var timing struct{ Request, Response, DOMContentLoaded, Load float64 }
	if err := b.eval(ctx, `(() => { const n = performance.getEntriesByType('navigation')[0];
		return {Request: n.requestStart, Response: n.responseEnd, DOMContentLoaded: n.domContentLoadedEventEnd, Load: n.loadEventEnd}; })()`, &timing); err == nil {
		t.Logf("page load (ms since navigation): request %.0f, response %.0f, DOMContentLoaded %.0f, load %.0f",
			timing.Request, timing.Response, timing.DOMContentLoaded, timing.Load)
	}

	var title string
	b.eval(ctx, "document.title", &title)
	if strings.Contains(title, "pwned") {
		t.Errorf("a value ran as markup: the title is %q", title)
	}
	for _, l := range b.consoleLogs() {
		if strings.Contains(l, `"source":"network"`) && strings.Contains(l, "status of 400") && strings.Contains(l, "waitIndex=2") {
			continue // the refused watch from a cleared index, which the page re-reads after
		}
		if strings.Contains(l, "exceptionThrown") || strings.Contains(l, "Content Security Policy") || strings.Contains(l, `"level":"error"`) {
			t.Errorf("page console: %s", l)
		}
	}
}

// saveShot writes a screenshot to the test's temporary directory and,
// when $ETCDLITE_UI_SHOT names a file, beside it there.
func saveShot(t *testing.T, name string, png []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", p, len(png))
	if dst := os.Getenv("ETCDLITE_UI_SHOT"); dst != "" {
		dst = filepath.Join(filepath.Dir(dst), strings.TrimSuffix(filepath.Base(dst), ".png")+strings.TrimPrefix(name, "ui"))
		if err := os.WriteFile(dst, png, 0o644); err != nil {
			t.Errorf("copy screenshot: %v", err)
		}
	}
}

// authFront is what the page meets behind a reverse proxy that serves a
// member under /etcd/ and, in front of the keys API, asks for credentials
// as etcd's v2 auth does: without user reader's password, or outside the
// /app directory that user may read, a keys request is answered with
// etcd 3.4's own 401 (recorded in testdata/ui/etcd-auth-401.txt). The
// members and stats endpoints stay open, as in etcd.
type authFront struct {
	proxy   http.Handler
	status  int
	header  http.Header
	body    []byte
	mu      sync.Mutex
	granted []string // the keys paths read with valid credentials
}

func newAuthFront(t *testing.T, member string) *authFront {
	t.Helper()
	raw, err := os.ReadFile("testdata/ui/etcd-auth-401.txt")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(strings.Join(lines, "\r\n"))), nil)
	if err != nil {
		t.Fatalf("recorded 401: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(member)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.URL.Path = strings.TrimPrefix(r.In.URL.Path, "/etcd")
			r.Out.URL.RawPath = strings.TrimPrefix(r.In.URL.RawPath, "/etcd")
		},
		FlushInterval: -1,
	}
	return &authFront{proxy: rp, status: resp.StatusCode, header: resp.Header, body: body}
}

func (f *authFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/etcd/") {
		http.NotFound(w, r)
		return
	}
	if p, ok := strings.CutPrefix(r.URL.Path, "/etcd/v2/keys"); ok {
		user, pass, _ := r.BasicAuth()
		if user != "reader" || pass != "secret" || !(p == "/app" || strings.HasPrefix(p, "/app/")) {
			for k, v := range f.header {
				if k != "Content-Length" && k != "X-Etcd-Cluster-Id" {
					w.Header()[k] = v
				}
			}
			w.WriteHeader(f.status)
			w.Write(f.body)
			return
		}
		f.mu.Lock()
		f.granted = append(f.granted, p)
		f.mu.Unlock()
	}
	f.proxy.ServeHTTP(w, r)
}

// TestUIBehindProxyWithAuth opens the page through a reverse proxy that
// serves the cluster under a path of its own and asks for credentials on
// the keys API: the page finds everything by relative URLs, shows the
// cluster without credentials, asks for them when a keys read is refused,
// and then shows what that user may read.
func TestUIBehindProxyWithAuth(t *testing.T) {
	if chromiumPath() == "" {
		t.Skip("chromium is not installed (apt-get install -y chromium): the status page test is skipped")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := startTestCluster(t, 3, nil)
	lead := c.leader()
	for _, kv := range [][2]string{{"/app/name", "shop"}, {"/app/db/url", "postgres://db"}, {"/secret/key", "hidden"}} {
		if code, body := httpDo(t, "PUT", c.members[lead].url+"/v2/keys"+kv[0], url.Values{"value": {kv[1]}}); code/100 != 2 {
			t.Fatalf("PUT %s: %d %s", kv[0], code, body)
		}
	}
	front := newAuthFront(t, c.members[(lead+2)%3].url)
	ts := httptest.NewServer(front)
	t.Cleanup(func() { // after the browser is gone (cleanups run last first)
		ts.CloseClientConnections()
		ts.Close()
	})

	b := startBrowser(t, ctx, 1280, 900)
	if err := b.navigate(ctx, ts.URL+"/etcd/ui"); err != nil {
		t.Fatal(err)
	}
	until := func(what, cond string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var ok bool
			err := b.eval(ctx, "!!("+cond+")", &ok)
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				var dom string
				b.eval(ctx, "document.body ? document.body.innerText : ''", &dom)
				t.Fatalf("the page never showed %s (%v)\npage text:\n%s\nconsole:\n%s", what, err, dom, strings.Join(b.consoleLogs(), "\n"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	do := func(js string) {
		t.Helper()
		if err := b.eval(ctx, js, nil); err != nil {
			t.Fatal(err)
		}
	}
	until("the page under the proxy's path", `location.pathname === "/etcd/ui/"`)
	until("the members, without credentials", `document.querySelectorAll('#member-list [data-member] .health.ok').length === 3`)
	until("the sign-in dialog", `document.getElementById('login').open`)
	until("the keys refused", `document.getElementById('keys-note').textContent.includes('sign in')`)
	shot, err := b.screenshot(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	saveShot(t, "ui-signin.png", shot)
	do(`document.getElementById('login-user').value = 'reader';
		document.getElementById('login-pass').value = 'secret';
		document.querySelector('#login-form button[type=submit]').click()`)
	until("the root refused to this user", `!document.getElementById('login').open &&
		document.getElementById('keys-note').textContent.includes('user reader may not read')`)
	do(`document.getElementById('keys-path').value = 'app';
		document.getElementById('keys-form').requestSubmit()`)
	until("the user's directory", `document.querySelector('#key-list li[data-key="/app/name"]') &&
		document.querySelector('#key-list li[data-key="/app/db"]') && document.getElementById('keys-note').hidden`)
	do(`document.getElementById('watch-here').click()`)
	until("the watch on /app", `document.getElementById('watch-status').textContent.startsWith('watching /app from index')`)
	if code, body := httpDo(t, "PUT", c.members[lead].url+"/v2/keys/app/name", url.Values{"value": {"shop-2"}}); code != 200 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	until("the change in the watch and the browser", `document.querySelector('#watch-events li[data-key="/app/name"]') &&
		document.querySelector('#key-list li[data-key="/app/name"] .kval').textContent === 'shop-2'`)
	var text string
	if err := b.eval(ctx, `document.body.innerText`, &text); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, "hidden") {
		t.Errorf("the page shows a key the user may not read:\n%s", text)
	}
	front.mu.Lock()
	granted := len(front.granted)
	front.mu.Unlock()
	if granted == 0 {
		t.Errorf("no keys request carried the user's credentials")
	}
	if shot, err = b.screenshot(ctx, true); err != nil {
		t.Fatal(err)
	}
	saveShot(t, "ui-auth.png", shot)
}
