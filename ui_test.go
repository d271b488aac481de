// ui_test.go tests the status page's handler and endpoints over HTTP, and
// its files (ui_browser_test.go has the page in a browser).
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// uiGet sends GET u with the given headers.
func uiGet(t *testing.T, u string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// no redirects followed, no transparent gzip: the test sees the wire
	c := &http.Client{
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp, b
}

// TestUIHandler checks what /ui/ answers: the files with their types,
// headers, gzip and revalidation, the relative redirect, 404s, the refusal
// of writes, and this member's status.
func TestUIHandler(t *testing.T) {
	m := startTestMember(t, nil)
	index, err := uiFiles.ReadFile("ui/index.html")
	if err != nil {
		t.Fatal(err)
	}
	appJS, err := uiFiles.ReadFile("ui/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		path     string
		hdr      map[string]string
		status   int
		ctype    string
		location string
		body     []byte // the decoded body, when checked
		gzipped  bool
	}{
		{name: "bare path redirects relatively", path: "/ui", status: 301, location: "ui/"},
		{name: "page", path: "/ui/", status: 200, ctype: "text/html; charset=utf-8", body: index},
		{name: "page by name", path: "/ui/index.html", status: 200, ctype: "text/html; charset=utf-8", body: index},
		{name: "script", path: "/ui/app.js", status: 200, ctype: "text/javascript; charset=utf-8", body: appJS},
		{name: "script gzipped", path: "/ui/app.js", hdr: map[string]string{"Accept-Encoding": "gzip, br"}, status: 200, body: appJS, gzipped: true},
		{name: "gzip refused", path: "/ui/app.js", hdr: map[string]string{"Accept-Encoding": "gzip;q=0"}, status: 200, body: appJS},
		{name: "stylesheet", path: "/ui/style.css", status: 200, ctype: "text/css; charset=utf-8"},
		{name: "icon", path: "/ui/favicon.svg", status: 200, ctype: "image/svg+xml"},
		{name: "unknown file", path: "/ui/nope.js", status: 404},
		{name: "no directory listing", path: "/ui/api/", status: 404},
		{name: "self status", path: "/ui/api/self", status: 200, ctype: "application/json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := uiGet(t, m.URL+tc.path, tc.hdr)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if got := resp.Header.Get("Content-Security-Policy"); got != uiCSP {
				t.Errorf("CSP %q, want %q", got, uiCSP)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if tc.ctype != "" && resp.Header.Get("Content-Type") != tc.ctype {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tc.ctype)
			}
			if tc.location != "" && resp.Header.Get("Location") != tc.location {
				t.Errorf("Location %q, want %q", resp.Header.Get("Location"), tc.location)
			}
			if gz := resp.Header.Get("Content-Encoding") == "gzip"; gz != tc.gzipped {
				t.Fatalf("gzipped %v, want %v", gz, tc.gzipped)
			}
			if tc.gzipped {
				zr, err := gzip.NewReader(bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				if b, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			if tc.body != nil && !bytes.Equal(b, tc.body) {
				t.Errorf("body differs from the embedded file (%d bytes, want %d)", len(b), len(tc.body))
			}
		})
	}

	t.Run("revalidation", func(t *testing.T) {
		seen := map[string]bool{}
		for _, enc := range []string{"identity", "gzip"} {
			hdr := map[string]string{"Accept-Encoding": enc}
			resp, _ := uiGet(t, m.URL+"/ui/app.js", hdr)
			etag := resp.Header.Get("ETag")
			if etag == "" || seen[etag] {
				t.Fatalf("%s: ETag %q (seen before: %v)", enc, etag, seen[etag])
			}
			seen[etag] = true
			hdr["If-None-Match"] = etag
			resp, b := uiGet(t, m.URL+"/ui/app.js", hdr)
			if resp.StatusCode != http.StatusNotModified || len(b) != 0 {
				t.Fatalf("%s: status %d with %d bytes, want 304 and none", enc, resp.StatusCode, len(b))
			}
		}
	})

	t.Run("read-only", func(t *testing.T) {
		for _, method := range []string{"POST", "PUT", "DELETE"} {
			code, _, _ := m.do(t, method, "/ui/", url.Values{"a": {"b"}})
			if code != http.StatusMethodNotAllowed {
				t.Errorf("%s /ui/: %d, want 405", method, code)
			}
		}
	})

	t.Run("self status", func(t *testing.T) {
		m.do(t, "PUT", "/v2/keys/a", url.Values{"value": {"1"}})
		_, b := uiGet(t, m.URL+"/ui/api/self", nil)
		var st uiSelf
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		var stats struct {
			Name  string `json:"name"`
			State string `json:"state"`
		}
		if err := json.Unmarshal(st.Stats, &stats); err != nil {
			t.Fatal(err)
		}
		if !st.Healthy || st.Term == 0 || st.RaftIndex < st.EtcdIndex || st.EtcdIndex < 4 ||
			stats.Name != "t" || stats.State != "StateLeader" {
			t.Fatalf("self status %s", b)
		}
	})
}

// TestUIAssetsAreSelfContained checks that the page loads nothing from
// elsewhere, places no data as HTML, and stays small.
func TestUIAssetsAreSelfContained(t *testing.T) {
	assets, err := loadUIAssets()
	if err != nil {
		t.Fatal(err)
	}
	external := regexp.MustCompile(`(?i:(src|href|action)\s*=\s*["']?(https?:)?//|https?://|@import)|[^A-Za-z]url\(`)
	svgNamespace := []byte(`xmlns="http://www.w3.org/2000/svg"`) // a name, not a fetch
	unsafe := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function`)
	total, zipped := 0, 0
	for name, a := range assets {
		body := bytes.ReplaceAll(a.body, svgNamespace, nil)
		if loc := external.FindIndex(body); loc != nil {
			t.Errorf("%s refers to something outside the page: %q", name, body[loc[0]:min(len(body), loc[1]+30)])
		}
		if strings.HasSuffix(name, ".js") {
			if loc := unsafe.FindIndex(a.body); loc != nil {
				t.Errorf("%s uses %q", name, a.body[loc[0]:loc[1]])
			}
		}
		total += len(a.body)
		if a.gzipped != nil {
			zipped += len(a.gzipped)
		} else {
			zipped += len(a.body)
		}
	}
	t.Logf("status page: %d files, %d bytes, %d gzipped", len(assets), total, zipped)
	if total > 48<<10 {
		t.Errorf("the page is %d bytes: keep it under 48 KiB", total)
	}
	for _, name := range []string{"index.html", "style.css", "app.js"} {
		if assets[name] == nil {
			t.Errorf("%s is not embedded", name)
		}
	}
}

// uiClusterFrom reads /ui/api/cluster from member URL u.
func uiClusterFrom(t *testing.T, u string) uiCluster {
	t.Helper()
	resp, b := uiGet(t, u+"/ui/api/cluster", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("api/cluster: %d %s", resp.StatusCode, b)
	}
	var c uiCluster
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("api/cluster %s: %v", b, err)
	}
	return c
}

// TestUIClusterAPI checks /ui/api/cluster through every member of a
// 3-member cluster, and with one member stopped.
func TestUIClusterAPI(t *testing.T) {
	c := startTestCluster(t, 3, nil)
	// every member has applied every member's published client URLs
	waitFor(t, 10*time.Second, "every member's client URLs on every member", func() bool {
		for i := range c.members {
			ms := membersFromStore(c.srv(i).store)
			if len(ms) != 3 {
				return false
			}
			for _, m := range ms {
				if len(m.ClientURLs) == 0 {
					return false
				}
			}
		}
		return true
	})
	lead := c.leader()
	leadID := idString(c.srv(lead).id)
	for i := range c.members {
		uc := uiClusterFrom(t, c.members[i].url)
		if uc.Self != idString(c.srv(i).id) || uc.Leader != leadID || uc.Term == 0 || len(uc.Members) != 3 {
			t.Fatalf("through %s: %+v", c.members[i].cfg.Name, uc)
		}
		var ls struct {
			Leader    string                     `json:"leader"`
			Followers map[string]json.RawMessage `json:"followers"`
		}
		if err := json.Unmarshal(uc.LeaderStats, &ls); err != nil || ls.Leader != leadID || len(ls.Followers) != 2 {
			t.Errorf("through %s: leader stats %s (%v)", c.members[i].cfg.Name, uc.LeaderStats, err)
		}
		for _, m := range uc.Members {
			if m.Status == nil || !m.Status.Healthy || m.Error != "" || m.Status.Term != uc.Term {
				t.Errorf("through %s: member %s: %+v %+v", c.members[i].cfg.Name, m.Name, m, m.Status)
			}
		}
	}

	// a stopped member is reported, quickly, with the reason
	down := (lead + 1) % 3
	via := (lead + 2) % 3
	c.stop(down)
	start := time.Now()
	uc := uiClusterFrom(t, c.members[via].url)
	if d := time.Since(start); d > uiPeerTimeout+2*time.Second {
		t.Errorf("api/cluster took %v with a member down", d)
	}
	for _, m := range uc.Members {
		if m.Name == c.members[down].cfg.Name {
			if m.Status != nil || m.Error == "" {
				t.Errorf("stopped member reported as %+v", m)
			}
		} else if m.Status == nil {
			t.Errorf("running member %s has no status: %s", m.Name, m.Error)
		}
	}
}

// TestUIClusterAPIOverTLS checks /ui/api/cluster on a cluster whose client
// URLs are https under --client-cert-auth: each member reaches the others'
// client URLs trusting the client CA and presenting its own certificate, so
// every member's status and the leader's stats are there.
func TestUIClusterAPIOverTLS(t *testing.T) {
	p := newTestPKI(t)
	srv := p.leaf("server", leafOpts{cn: "server", ca: p.ca})
	c := startTestCluster(t, 3, func(cfg *config) {
		for _, list := range [][]*url.URL{cfg.ListenClientURLs, cfg.AdvertiseClientURLs} {
			for _, u := range list {
				u.Scheme = "https"
			}
		}
		cfg.ClientTLS = transportSecurity{CertFile: srv.cert, KeyFile: srv.key, ClientCertAuth: true, TrustedCAFile: p.ca.file}
	})
	client := p.leaf("client", leafOpts{cn: "client", ca: p.ca, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	hc := tlsClient(t, p.ca.file, &client)
	lead := c.leader()
	for i := range c.members {
		u := strings.Replace(c.members[i].url, "http://", "https://", 1)
		var uc uiCluster
		// members publish their client URLs once they serve: wait for all
		waitFor(t, 10*time.Second, "every member's client URLs", func() bool {
			resp, err := hc.Get(u + "/ui/api/cluster")
			if err != nil {
				t.Fatalf("GET %s/ui/api/cluster: %v", u, err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s/ui/api/cluster: %d %s %v", u, resp.StatusCode, b, err)
			}
			uc = uiCluster{}
			if err := json.Unmarshal(b, &uc); err != nil {
				t.Fatalf("api/cluster %s: %v", b, err)
			}
			for _, m := range uc.Members {
				if len(m.ClientURLs) == 0 {
					return false
				}
			}
			return len(uc.Members) == 3
		})
		for _, m := range uc.Members {
			if m.Status == nil || !m.Status.Healthy || m.Error != "" {
				t.Errorf("through %s: member %s: %+v %+v", c.members[i].cfg.Name, m.Name, m, m.Status)
			}
			for _, cu := range m.ClientURLs {
				if !strings.HasPrefix(cu, "https://") {
					t.Errorf("member %s client URL %s", m.Name, cu)
				}
			}
		}
		if i != lead && (uc.LeaderError != "" || len(uc.LeaderStats) == 0) {
			t.Errorf("through %s: leader stats %s, error %q", c.members[i].cfg.Name, uc.LeaderStats, uc.LeaderError)
		}
	}
}
