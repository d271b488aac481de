package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tlsClientCluster starts a 3-member cluster on https client and peer URLs
// whose members demand certificates of p's CA on both.
func tlsClientCluster(t *testing.T, p *testPKI) *testCluster {
	peer := p.leaf("peer", leafOpts{cn: "peer", ca: p.ca})
	member := p.leaf("member", leafOpts{cn: "member", ca: p.ca})
	return startTestCluster(t, 3, func(c *config) {
		lists := append([][]*url.URL{c.ListenPeerURLs, c.InitialAdvertisePeerURLs, c.ListenClientURLs, c.AdvertiseClientURLs}, mapValues(c.InitialCluster)...)
		for _, list := range lists {
			for _, u := range list {
				u.Scheme = "https"
			}
		}
		c.PeerTLS = transportSecurity{CertFile: peer.cert, KeyFile: peer.key, ClientCertAuth: true, TrustedCAFile: p.ca.file}
		c.ClientTLS = transportSecurity{CertFile: member.cert, KeyFile: member.key, ClientCertAuth: true, TrustedCAFile: p.ca.file}
	})
}

// tlsDo sends one request with hc and returns its status and body.
func tlsDo(t *testing.T, hc *http.Client, method, u string, form url.Values) (int, string, error) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestProxyTLS: a proxy serving https with client certificate auth, in
// front of a cluster on https client and peer URLs that demands
// certificates on both, fetches the member list from the peers with the
// peer certificate and forwards reads, writes and watches to the members
// with the client certificate; a client without a certificate, or with
// another CA's, is refused by the proxy.
func TestProxyTLS(t *testing.T) {
	p := newTestPKI(t)
	c := tlsClientCluster(t, p)
	proxyLeaf := p.leaf("proxy", leafOpts{cn: "proxy", ca: p.ca})
	peerLeaf := p.leaf("proxy-peer", leafOpts{cn: "peer", ca: p.ca})
	ic := map[string][]*url.URL{}
	for _, m := range c.members {
		ic[m.cfg.Name] = m.cfg.InitialAdvertisePeerURLs
	}
	cfg := &config{Name: "proxy", DataDir: t.TempDir(), Proxy: "on", InitialCluster: ic, initialClusterSet: true,
		ListenClientURLs: mustURLs(t, "https://127.0.0.1:0"), InitialClusterState: "new", DiscoveryFallback: "proxy",
		ListenPeerURLs: mustURLs(t, "http://127.0.0.1:0"),
		ClientTLS:      transportSecurity{CertFile: proxyLeaf.cert, KeyFile: proxyLeaf.key, ClientCertAuth: true, TrustedCAFile: p.ca.file},
		PeerTLS:        transportSecurity{CertFile: peerLeaf.cert, KeyFile: peerLeaf.key, TrustedCAFile: p.ca.file},
	}
	setProxyTimings(cfg)
	n, err := startNode(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopNode(t, n)
	px := n.(*proxy)
	purl := "https://" + px.ClientAddrs()[0]

	// the member list came from the peers over TLS: the endpoints are the
	// members' https client URLs
	waitFor(t, 10*time.Second, "the proxy to learn the members", func() bool { return len(px.available()) == 3 })
	for _, e := range px.available() {
		if e.url.Scheme != "https" {
			t.Fatalf("endpoint %s", e.url)
		}
	}

	user := p.leaf("user", leafOpts{cn: "user", ca: p.ca})
	hc := tlsClient(t, p.ca.file, &user)
	code, body, err := tlsDo(t, hc, "PUT", purl+"/v2/keys/tls", url.Values{"value": {"1"}})
	if err != nil || code != 201 {
		t.Fatalf("write through the TLS proxy: %d %s %v", code, body, err)
	}
	code, body, err = tlsDo(t, hc, "GET", purl+"/v2/keys/tls?quorum=true", nil)
	if err != nil || code != 200 || !strings.Contains(body, `"value":"1"`) {
		t.Fatalf("read through the TLS proxy: %d %s %v", code, body, err)
	}

	// a streaming watch through the proxy sees the next writes
	resp, err := hc.Get(purl + "/v2/keys/tls?wait=true&stream=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 4)
	go func() {
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadString('\n')
			if strings.TrimSpace(line) != "" {
				lines <- line
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	for _, v := range []string{"2", "3"} {
		time.Sleep(50 * time.Millisecond)
		if code, body, err := tlsDo(t, hc, "PUT", purl+"/v2/keys/tls", url.Values{"value": {v}}); err != nil || code != 200 {
			t.Fatalf("write %s: %d %s %v", v, code, body, err)
		}
		select {
		case l := <-lines:
			var ev struct {
				Node struct{ Value string }
			}
			if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Node.Value != v {
				t.Fatalf("watch event for %s: %q", v, l)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the watch through the TLS proxy never saw %s", v)
		}
	}

	// refused: no certificate, another CA's certificate, plain http
	foreign := p.leaf("foreign", leafOpts{cn: "user", ca: p.other})
	for name, hc := range map[string]*http.Client{
		"no certificate":         tlsClient(t, p.ca.file, nil),
		"another CA certificate": tlsClient(t, p.ca.file, &foreign),
	} {
		if code, body, err := tlsDo(t, hc, "GET", purl+"/v2/keys/tls", nil); err == nil {
			t.Errorf("%s: the proxy answered %d %s", name, code, body)
		}
	}
	if code, body, err := tlsDo(t, &http.Client{Timeout: 5 * time.Second}, "GET", strings.Replace(purl, "https", "http", 1)+"/v2/keys/tls", nil); err == nil && code == 200 {
		t.Errorf("plain http on the TLS proxy: %d %s", code, body)
	}
}

// TestProxyMemberTLSRefused: a proxy without a certificate the members
// accept cannot reach them (the member list nor the keys), and says so.
func TestProxyMemberTLSRefused(t *testing.T) {
	p := newTestPKI(t)
	c := tlsClientCluster(t, p)
	foreign := p.leaf("foreign", leafOpts{cn: "peer", ca: p.other})
	ic := map[string][]*url.URL{}
	for _, m := range c.members {
		ic[m.cfg.Name] = m.cfg.InitialAdvertisePeerURLs
	}
	cfg := &config{Name: "proxy", DataDir: t.TempDir(), Proxy: "on", InitialCluster: ic, initialClusterSet: true,
		ListenClientURLs: mustURLs(t, "http://127.0.0.1:0"), InitialClusterState: "new", DiscoveryFallback: "proxy",
		ListenPeerURLs: mustURLs(t, "http://127.0.0.1:0"),
		PeerTLS:        transportSecurity{CertFile: foreign.cert, KeyFile: foreign.key, TrustedCAFile: p.ca.file},
	}
	setProxyTimings(cfg)
	n, err := startNode(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopNode(t, n)
	px := n.(*proxy)
	time.Sleep(500 * time.Millisecond) // a few refresh rounds
	if eps := px.available(); len(eps) != 0 {
		t.Fatalf("a proxy with a foreign certificate learnt endpoints %v", endpointStrings(eps))
	}
	// handed the endpoints anyway, it cannot pass the members' check
	px.mu.Lock()
	for _, m := range c.members {
		px.endpoints = append(px.endpoints, &proxyEndpoint{url: m.cfg.AdvertiseClientURLs[0]})
	}
	px.mu.Unlock()
	code, body := httpDo(t, "GET", "http://"+px.ClientAddrs()[0]+"/v2/keys/x", nil)
	if code != http.StatusBadGateway {
		t.Fatalf("a read through a proxy the members refuse: %d %s", code, body)
	}
}

// TestProxyClientHandlerLimits: the proxy's client handler has a member's
// --host-whitelist check, --cors headers and request line limit.
func TestProxyClientHandlerLimits(t *testing.T) {
	m := startTestMember(t, fixedPortConfig(t))
	putValue(t, m.URL, "k", "v")
	ic := map[string][]*url.URL{"t": m.cfg.InitialAdvertisePeerURLs}
	cfg := &config{Name: "proxy", DataDir: t.TempDir(), Proxy: "on", InitialCluster: ic, initialClusterSet: true,
		ListenClientURLs: mustURLs(t, "http://127.0.0.1:0"), InitialClusterState: "new", DiscoveryFallback: "proxy",
		CORS: []string{"https://app.example:8443"}, HostWhitelist: []string{"127.0.0.1", "localhost"}}
	setProxyTimings(cfg)
	n, err := startNode(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopNode(t, n)
	px := n.(*proxy)
	waitFor(t, 10*time.Second, "the proxy to learn the member", func() bool { return len(px.available()) == 1 })
	addr := px.ClientAddrs()[0]
	tests := []struct {
		name       string
		host       string
		path       string
		header     map[string]string
		wantStatus int
		wantHeader map[string]string
		wantBody   string
	}{
		{name: "whitelisted host", host: addr, path: "/v2/keys/k", wantStatus: 200, wantBody: `"value":"v"`},
		{name: "host not whitelisted", host: "evil.example:2379", path: "/v2/keys/k", wantStatus: http.StatusMisdirectedRequest, wantBody: `etcd --host-whitelist "evil.example"`},
		{name: "allowed origin", host: addr, path: "/v2/keys/k", header: map[string]string{"Origin": "https://app.example:8443"}, wantStatus: 200,
			wantHeader: map[string]string{"Access-Control-Allow-Origin": "https://app.example:8443"}},
		{name: "other origin", host: addr, path: "/v2/keys/k", header: map[string]string{"Origin": "https://other.example:8443"}, wantStatus: 200,
			wantHeader: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "request line too long", host: addr, path: "/v2/keys/" + strings.Repeat("k", 5000), wantStatus: http.StatusRequestURITooLong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "http://"+addr+tc.path, nil)
			req.Host = tc.host
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(b), tc.wantBody) {
				t.Fatalf("%d %q, want %d with %q", resp.StatusCode, b, tc.wantStatus, tc.wantBody)
			}
			for k, v := range tc.wantHeader {
				if got := resp.Header.Values(k); (v == "" && len(got) != 0) || (v != "" && (len(got) != 1 || got[0] != v)) {
					t.Errorf("%s: %q, want %q once", k, got, v)
				}
			}
		})
	}
	// the limits of a member's client server (limits.go)
	for _, srv := range px.httpServers {
		if srv.MaxHeaderBytes != maxHeaderBytes || srv.ConnState == nil {
			t.Errorf("proxy server limits: header %d bytes; header and idle time watched: %v", srv.MaxHeaderBytes, srv.ConnState != nil)
		}
	}
}

// TestDiscoveryTLS: a token on an https discovery service whose CA is the
// one of --peer-trusted-ca-file: two members with https peer URLs (and
// peer certificate auth) register and bootstrap; a third finds the token
// full and becomes a proxy that reads the member list from their https
// peer URLs. Without the CA, the service is not trusted.
func TestDiscoveryTLS(t *testing.T) {
	p := newTestPKI(t)
	svc := p.leaf("discovery", leafOpts{cn: "discovery", ca: p.ca})
	host := startTLSMember(t, transportSecurity{CertFile: svc.cert, KeyFile: svc.key})
	hc := tlsClient(t, p.ca.file, nil)
	if code, body, err := tlsDo(t, hc, "PUT", host.URL+"/v2/keys/_etcd/registry/tls/_config/size", url.Values{"value": {"2"}}); err != nil || code != 201 {
		t.Fatalf("set size: %d %s %v", code, body, err)
	}
	durl := host.URL + "/v2/keys/_etcd/registry/tls"
	peer := p.leaf("peer", leafOpts{cn: "peer", ca: p.ca})
	tlsDiscoveryConfig := func(name string) *config {
		cfg := discoveryConfig(t, name, durl)
		for _, u := range append(cfg.ListenPeerURLs, cfg.InitialAdvertisePeerURLs...) {
			u.Scheme = "https"
		}
		cfg.PeerTLS = transportSecurity{CertFile: peer.cert, KeyFile: peer.key, ClientCertAuth: true, TrustedCAFile: p.ca.file}
		return cfg
	}

	// the CA not given: Go's roots do not know it
	untrusted := discoveryConfig(t, "x", durl)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	d, err := newDiscovery(untrusted, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.size(ctx); err == nil {
		t.Fatal("an https discovery service of an unknown CA was trusted")
	}
	cancel()

	nodes := make([]node, 2)
	errs := make([]error, 2)
	done := make(chan int)
	for i := range nodes {
		cfg := tlsDiscoveryConfig(fmt.Sprintf("m%d", i))
		go func(i int) {
			nodes[i], errs[i] = startNode(context.Background(), cfg)
			done <- i
		}(i)
	}
	for range nodes {
		select {
		case i := <-done:
			if errs[i] != nil {
				t.Fatalf("m%d: %v", i, errs[i])
			}
			stopNode(t, nodes[i])
		case <-time.After(30 * time.Second):
			t.Fatal("the members never bootstrapped through the https token")
		}
	}
	var servers []*server
	for i, n := range nodes {
		s, ok := n.(*server)
		if !ok {
			t.Fatalf("m%d started as %T", i, n)
		}
		servers = append(servers, s)
	}
	waitFor(t, 15*time.Second, "two published members", func() bool {
		for _, s := range servers {
			if s.leader.Load() == 0 || len(membersFromStore(s.store)) != 2 {
				return false
			}
			for _, m := range membersFromStore(s.store) {
				if len(m.PeerURLs) == 0 || !strings.HasPrefix(m.PeerURLs[0], "https://") {
					return false
				}
			}
		}
		return true
	})
	m0 := "http://" + servers[0].ClientAddrs()[0]
	putValue(t, m0, "k", "v")

	// the third finds the token full: a proxy, reading the members over TLS
	n3, err := startNode(context.Background(), tlsDiscoveryConfig("m2"))
	if err != nil {
		t.Fatalf("m2: %v", err)
	}
	stopNode(t, n3)
	px, ok := n3.(*proxy)
	if !ok {
		t.Fatalf("m2 started as %T, want a proxy", n3)
	}
	waitFor(t, 10*time.Second, "the proxy to learn the members", func() bool { return len(px.available()) == 2 })
	if got := getValue(t, "http://"+px.ClientAddrs()[0], "k"); got != "v" {
		t.Fatalf("k through the proxy: %q", got)
	}
}

// TestSRVTLSProxy: a proxy on _etcd-server-ssl records reaches the peers'
// https URLs with the peer TLS and the members' https client URLs with the
// client certificate.
func TestSRVTLSProxy(t *testing.T) {
	p := newTestPKI(t)
	c := tlsClientCluster(t, p)
	var srvs []testSRV
	for _, m := range c.members {
		port, err := strconv.Atoi(m.cfg.InitialAdvertisePeerURLs[0].Port())
		if err != nil {
			t.Fatal(err)
		}
		srvs = append(srvs, testSRV{"localhost.", uint16(port)})
	}
	dns := startTestDNS(t, map[string][]testSRV{"_etcd-server-ssl._tcp.tls.test.": srvs},
		map[string][]net.IP{"localhost.": {net.ParseIP("127.0.0.1")}})
	leaf := p.leaf("proxy", leafOpts{cn: "proxy", ca: p.ca})
	cfg := &config{Name: "p", DataDir: t.TempDir(), Proxy: "on", DiscoverySRV: "tls.test", hooks: testHooks{resolver: dns.resolver()},
		ListenClientURLs: mustURLs(t, "http://127.0.0.1:0"), ListenPeerURLs: mustURLs(t, "http://127.0.0.1:0"), InitialClusterState: "new",
		ClientTLS: transportSecurity{CertFile: leaf.cert, KeyFile: leaf.key, TrustedCAFile: p.ca.file},
		PeerTLS:   transportSecurity{CertFile: leaf.cert, KeyFile: leaf.key, TrustedCAFile: p.ca.file}}
	setProxyTimings(cfg)
	n, err := startNode(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopNode(t, n)
	px := n.(*proxy)
	waitFor(t, 10*time.Second, "the proxy to learn the members", func() bool { return len(px.available()) == 3 })
	purl := "http://" + px.ClientAddrs()[0]
	putValue(t, purl, "srv", "tls")
	if got := getValue(t, purl, "srv"); got != "tls" {
		t.Fatalf("srv through the SRV proxy: %q", got)
	}
}

// TestProxyReadsEtcdPeerMembers: the member list of etcd's peers (ids as
// numbers, recorded) and of older etcdlite builds (ids as hex) both give
// the members.
func TestProxyReadsEtcdPeerMembers(t *testing.T) {
	etcdBody, err := os.ReadFile("testdata/proxytls/etcd-peer-members.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, body, wantID string
	}{
		{"etcd", string(etcdBody), "78e24128fd0d92e1"},
		{"etcdlite", `[{"id":"78e1b9b8b4a6e3e1","name":"m","peerURLs":["http://127.0.0.1:22602"],"clientURLs":["http://127.0.0.1:22601"]}]`, "78e1b9b8b4a6e3e1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/members" {
					http.NotFound(w, r)
					return
				}
				io.WriteString(w, tc.body)
			}))
			defer hs.Close()
			ms, err := fetchPeerMembers(hs.Client(), hs.URL)
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 1 || ms[0].ID != tc.wantID || ms[0].Name != "m" ||
				fmt.Sprint(ms[0].PeerURLs) != "[http://127.0.0.1:22602]" || fmt.Sprint(ms[0].ClientURLs) != "[http://127.0.0.1:22601]" {
				t.Fatalf("%+v", ms)
			}
		})
	}
}
