// Tests of parked long-poll watches (longpoll.go).

package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// storeWatcherCount is m's /v2/stats/store watcher count.
func storeWatcherCount(t *testing.T, m *testMember) int {
	t.Helper()
	_, _, body := m.do(t, "GET", "/v2/stats/store", nil)
	var st map[string]float64
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	return int(st["watchers"])
}

// waitWatchers waits until m has n watchers.
func waitWatchers(t *testing.T, m *testMember, n int) {
	t.Helper()
	waitFor(t, 10*time.Second, "the watchers to be registered", func() bool { return storeWatcherCount(t, m) == n })
}

// parkedWaiting counts the goroutines of parked watches waiting.
func parkedWaiting(t *testing.T) int {
	t.Helper()
	var b strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&b, 1); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, block := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(block, ".(*parkedWatch).wait+") {
			var k int
			if _, err := fmt.Sscanf(block, "%d @", &k); err == nil {
				n += k
			}
		}
	}
	return n
}

// TestParkedWatchAnswers checks a parked watch's answer on the wire and
// in a client: the same headers, one chunk with the event, the last chunk;
// and that the connection serves requests again afterwards (keep-alive),
// including one the client sent ahead while it waited.
func TestParkedWatchAnswers(t *testing.T) {
	m := startTestMember(t, nil)
	c, host := dialWatch(t, m, "p")
	br := bufio.NewReader(c)
	waitWatchers(t, m, 1)
	// a request sent ahead, while the watch waits
	io.WriteString(c, "GET /v2/keys/p HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
	if code, _, body := m.do(t, "PUT", "/v2/keys/p", url.Values{"value": {"one"}}); code != 201 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("X-Etcd-Index") == "" ||
		len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("watch answer: %d %v %v", resp.StatusCode, resp.Header, resp.TransferEncoding)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Action string
		Node   struct{ Key, Value string }
	}
	if err := json.Unmarshal(b, &ev); err != nil || ev.Action != "set" || ev.Node.Key != "/p" || ev.Node.Value != "one" {
		t.Errorf("watch event %q: %v", b, err)
	}
	if !strings.HasSuffix(string(b), "\n") {
		t.Errorf("watch event %q: no newline at its end, as etcd's has", b)
	}
	// the request sent ahead, answered on the same connection
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the request sent ahead: %v", err)
	}
	b, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"value":"one"`) {
		t.Errorf("the request sent ahead: %d %s", resp.StatusCode, b)
	}
	// and one more
	io.WriteString(c, "GET /v2/keys/p HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("a request after the watch: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("a request after the watch: %d", resp.StatusCode)
	}
	if n := storeWatcherCount(t, m); n != 0 {
		t.Errorf("%d watchers left", n)
	}

	// a Go client reuses the connection after a watch
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	done := make(chan error, 1)
	go func() {
		resp, err := hc.Get(m.URL + "/v2/keys/q?wait=true")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	waitWatchers(t, m, 1)
	m.do(t, "PUT", "/v2/keys/q", url.Values{"value": {"two"}})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	reused := false
	ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
	req, _ := http.NewRequestWithContext(ctx, "GET", m.URL+"/v2/keys/q", nil)
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !reused || !strings.Contains(string(b), `"value":"two"`) {
		t.Errorf("the request after a watch: reused %v, %s", reused, b)
	}
}

// TestParkedWatchClientLeaves checks that a parked watch whose client
// closes its connection is removed at once, and that stopping the member
// closes the parked connections.
func TestParkedWatchClientLeaves(t *testing.T) {
	m := startTestMember(t, nil)
	a, _ := dialWatch(t, m, "gone")
	b, _ := dialWatch(t, m, "stays")
	waitWatchers(t, m, 2)
	// a watcher is registered before its connection is hijacked and parked
	waitFor(t, 10*time.Second, "both watches to be parked", func() bool { return parkedWaiting(t) == 2 })
	a.Close()
	waitWatchers(t, m, 1)
	waitFor(t, 5*time.Second, "the parked watch to end", func() bool { return parkedWaiting(t) == 1 })
	m.stop(t)
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(b); err != nil {
		t.Errorf("the parked connection was not closed when the member stopped: %v", err)
	}
}

// TestParkedWatchTLS checks a parked watch over https: it is parked, its
// answer arrives, and the client's next request reuses the connection.
func TestParkedWatchTLS(t *testing.T) {
	p := newTestPKI(t)
	srv := p.leaf("server", leafOpts{cn: "server", ca: p.ca})
	m := startTLSMember(t, transportSecurity{CertFile: srv.cert, KeyFile: srv.key})
	hc, dials, _ := countingClient(t, p.ca.file, 1)
	other, _, _ := countingClient(t, p.ca.file, 1)
	done := make(chan string, 1)
	go func() {
		resp, err := hc.Get(m.URL + "/v2/keys/tw?wait=true")
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- string(b)
	}()
	waitFor(t, 10*time.Second, "the watch to be parked", func() bool { return parkedWaiting(t) == 1 })
	if err := doKeepAlive(other, http.MethodPut, m.URL+"/v2/keys/tw", "value=tls"); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-done:
		if !strings.Contains(b, `"value":"tls"`) {
			t.Fatalf("watch over https: %q", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch over https never returned")
	}
	if err := doKeepAlive(hc, http.MethodGet, m.URL+"/v2/keys/tw", ""); err != nil {
		t.Fatal(err)
	}
	if d := dials.Load(); d != 1 {
		t.Errorf("%d connections for a watch and a read: the parked watch's connection was not kept alive", d)
	}
}

// TestParkedWatchIdle checks that after a parked watch's answer the
// connection may stay idle as long as between any two requests: the
// header timeout runs only once the next request has begun.
func TestParkedWatchIdle(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.hooks.headerTimeout = 200 * time.Millisecond
	m := startTestMember(t, cfg)
	c, host := dialWatch(t, m, "idle")
	br := bufio.NewReader(c)
	waitWatchers(t, m, 1)
	m.do(t, "PUT", "/v2/keys/idle", url.Values{"value": {"v"}})
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	time.Sleep(5 * m.cfg.hooks.headerTimeout) // idle, well past the header timeout
	io.WriteString(c, "GET /v2/keys/idle HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("a request after an idle spell: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"value":"v"`) {
		t.Errorf("a request after an idle spell: %d %s", resp.StatusCode, b)
	}
	// and a slow header after that is still cut by the header timeout
	io.WriteString(c, "GET /v2/keys/idle HTTP/1.1\r\n")
	start := time.Now()
	if _, err := io.ReadAll(br); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("an unfinished header held the connection %v", d)
	}
}

// TestParkedWatchTLSIdle checks that after a parked watch's answer over
// https (client certificates required) the connection may stay idle past
// the header timeout, as after any other answer: the next request on it is
// served, and a slow header after that is still cut by the header timeout.
func TestParkedWatchTLSIdle(t *testing.T) {
	p := newTestPKI(t)
	srv := p.leaf("server", leafOpts{cn: "server", ca: p.ca})
	cli := p.leaf("client", leafOpts{cn: "client", ca: p.ca, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	m := startTLSMember(t, transportSecurity{CertFile: srv.cert, KeyFile: srv.key, TrustedCAFile: p.ca.file, ClientCertAuth: true},
		func(cfg *config) { cfg.hooks.headerTimeout = 200 * time.Millisecond })

	pool, err := loadCertPool(p.ca.file)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(cli.cert, cli.key)
	if err != nil {
		t.Fatal(err)
	}
	tcfg := &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}
	host := strings.TrimPrefix(m.URL, "https://")
	c, err := tls.Dial("tcp", host, tcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	send := func(path string) { io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n") }
	read := func(what string) string {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s %v", what, resp.StatusCode, b, err)
		}
		return string(b)
	}
	get := func(what, path string) string {
		t.Helper()
		send(path)
		return read(what)
	}
	send("/v2/keys/tidle?wait=true")
	waitFor(t, 10*time.Second, "the watch to be parked", func() bool { return parkedWaiting(t) == 1 })
	other, _, _ := countingClient(t, p.ca.file, 1)
	other.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{pair}
	if err := doKeepAlive(other, http.MethodPut, m.URL+"/v2/keys/tidle", "value=v"); err != nil {
		t.Fatal(err)
	}
	if b := read("the watch"); !strings.Contains(b, `"value":"v"`) {
		t.Fatalf("the watch: %s", b)
	}
	time.Sleep(5 * m.cfg.hooks.headerTimeout) // idle, well past the header timeout
	if b := get("a request after an idle spell", "/v2/keys/tidle"); !strings.Contains(b, `"value":"v"`) {
		t.Errorf("a request after an idle spell: %s", b)
	}
	// and a slow header after that is still cut by the header timeout
	io.WriteString(c, "GET /v2/keys/tidle HTTP/1.1\r\n")
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(br); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("an unfinished header held the connection %v", d)
	}
}

// dialWatch opens a plain connection to m and sends a long-poll watch of
// key on it; the connection is closed when the test ends.
func dialWatch(t *testing.T, m *testMember, key string) (c net.Conn, host string) {
	t.Helper()
	host = strings.TrimPrefix(m.URL, "http://")
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, "GET /v2/keys/"+key+"?wait=true HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	return c, host
}
