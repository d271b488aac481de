// Tests of discovery.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// etcdGolden is what etcd 3.4 answered, recorded in testdata/opsnet.
type etcdGolden struct {
	Discovery struct {
		URL             string   `json:"url"`
		PeerURL         string   `json:"peerURL"`
		Name            string   `json:"name"`
		MemberID        string   `json:"memberID"`
		ClusterID       string   `json:"clusterID"`
		RegisteredKey   string   `json:"registeredKey"`
		RegisteredValue string   `json:"registeredValue"`
		FullError       string   `json:"fullError"`
		FullLog         []string `json:"fullLog"`
		NoSizeLog       string   `json:"noSizeLog"`
	} `json:"discovery"`
	Proxy struct {
		ClusterFileBody  string `json:"clusterFileBody"`
		ConfigLocalProxy string `json:"configLocalProxy"`
		ReadonlyRefused  struct {
			Methods []string `json:"methods"`
			Status  int      `json:"status"`
			Body    string   `json:"body"`
		} `json:"readonlyRefused"`
		AllFailedStatus     int    `json:"allFailedStatus"`
		AllFailedBody       string `json:"allFailedBody"`
		NoneAvailableStatus int    `json:"noneAvailableStatus"`
		NoneAvailableBody   string `json:"noneAvailableBody"`
	} `json:"proxy"`
}

func loadEtcdGolden(t *testing.T) *etcdGolden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "opsnet", "etcd34.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g etcdGolden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return &g
}

// TestDiscoveryIDsMatchEtcd checks that a member found through discovery
// gets the member id, cluster id and registration etcd 3.4 gave it: the
// ids come from the peer URLs and the discovery URL.
func TestDiscoveryIDsMatchEtcd(t *testing.T) {
	g := loadEtcdGolden(t).Discovery
	id := memberID([]string{g.PeerURL}, g.URL, 0)
	if got := idString(id); got != g.MemberID {
		t.Errorf("member id %s, etcd %s", got, g.MemberID)
	}
	if got := idString(clusterID([]uint64{id})); got != g.ClusterID {
		t.Errorf("cluster id %s, etcd %s", got, g.ClusterID)
	}
	if got := initialClusterString(g.Name, []string{g.PeerURL}); got != g.RegisteredValue {
		t.Errorf("registered value %q, etcd %q", got, g.RegisteredValue)
	}
	u, _ := url.Parse(g.URL)
	d, err := newDiscovery(&config{Discovery: g.URL}, id)
	if err != nil {
		t.Fatal(err)
	}
	if key := d.dirKey + "/" + idString(id); key != g.RegisteredKey || u.Path != "/v2/keys"+d.dirKey {
		t.Errorf("registered key %s, etcd %s", key, g.RegisteredKey)
	}
	if got := fmt.Sprintf("failed to join discovery cluster (%v)", errFullCluster); got != g.FullLog[0] {
		t.Errorf("full cluster message %q, etcd %q", got, g.FullLog[0])
	}
}

// discoveryConfig is member name's configuration for bootstrapping
// through the discovery URL durl.
func discoveryConfig(t *testing.T, name, durl string) *config {
	t.Helper()
	cfg := memberConfig(t, name, filepath.Join(t.TempDir(), name), freePortURL(t), map[string]string{name: freePortURL(t)})
	cfg.InitialCluster = nil
	cfg.InitialClusterToken = "etcd-cluster"
	cfg.HeartbeatMs, cfg.ElectionMs = 20, 200
	cfg.Discovery = durl
	cfg.DiscoveryFallback = "proxy"
	cfg.Proxy = "off"
	cfg.hooks.discoveryRetry = 20 * time.Millisecond
	setProxyTimings(cfg)
	return cfg
}

// setProxyTimings gives cfg short proxy timings, for tests.
func setProxyTimings(cfg *config) {
	cfg.ProxyFailureWaitMs = 300
	cfg.ProxyRefreshIntervalMs = 200
	cfg.ProxyDialTimeoutMs = 500
	cfg.ProxyWriteTimeoutMs = 5000
	cfg.ProxyReadTimeoutMs = 0
}

// stopNode stops n when the test ends.
func stopNode(t *testing.T, n node) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
}

// putValue sets key to value at base (a client URL) and fails the test
// unless it is answered 200 or 201.
func putValue(t *testing.T, base, key, value string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, base+"/v2/keys/"+key, strings.NewReader(url.Values{"value": {value}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", key, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT %s: %s", key, resp.Status)
	}
}

// getValue reads key at base, "" when it does not exist.
func getValue(t *testing.T, base, key string) string {
	t.Helper()
	resp, err := http.Get(base + "/v2/keys/" + key)
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	defer resp.Body.Close()
	var out struct {
		Node struct {
			Value string `json:"value"`
		} `json:"node"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	return out.Node.Value
}

// TestDiscoveryBootstrap bootstraps three members through a token on an
// in-test etcdlite, then: a fourth member finds the token full and becomes
// a proxy, a fifth with --discovery-fallback exit fails with etcd's
// message and leaves no data, and a --proxy on --discovery proxy forwards.
func TestDiscoveryBootstrap(t *testing.T) {
	host := startTestMember(t, nil)
	durl := host.URL + "/v2/keys/_etcd/registry/tok1"
	if code, _, body := host.do(t, "PUT", "/v2/keys/_etcd/registry/tok1/_config/size", url.Values{"value": {"3"}}); code != http.StatusCreated {
		t.Fatalf("set size: %d %s", code, body)
	}
	ctx := context.Background()
	cfgs := make([]*config, 3)
	nodes := make([]node, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range cfgs {
		cfgs[i] = discoveryConfig(t, fmt.Sprintf("m%d", i), durl)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			nodes[i], errs[i] = startNode(ctx, cfgs[i])
		}(i)
		time.Sleep(50 * time.Millisecond) // the first ones wait for the rest
	}
	wg.Wait()
	var servers []*server
	for i, n := range nodes {
		if errs[i] != nil {
			t.Fatalf("m%d: %v", i, errs[i])
		}
		stopNode(t, n)
		s, ok := n.(*server)
		if !ok {
			t.Fatalf("m%d started as %T, want a member", i, n)
		}
		servers = append(servers, s)
	}
	for i, s := range servers {
		want := memberID(urlsToStrings(cfgs[i].InitialAdvertisePeerURLs), durl, 0)
		if s.id != want {
			t.Errorf("m%d has id %x, want %x (from its peer URL and the discovery URL)", i, s.id, want)
		}
		if s.clusterID != servers[0].clusterID {
			t.Errorf("m%d is in cluster %x, m0 in %x", i, s.clusterID, servers[0].clusterID)
		}
	}
	waitFor(t, 15*time.Second, "a leader and three published members", func() bool {
		l := servers[0].leader.Load()
		for _, s := range servers {
			if s.leader.Load() != l || l == 0 || len(membersFromStore(s.store)) != 3 {
				return false
			}
			select {
			case <-s.ready:
			default:
				return false
			}
		}
		return true
	})
	m0 := "http://" + servers[0].ClientAddrs()[0]
	putValue(t, m0, "k", "v")
	// on every member: the proxy below reads from any of them, without quorum
	for i, s := range servers {
		mi := "http://" + s.ClientAddrs()[0]
		waitFor(t, 5*time.Second, fmt.Sprintf("the write on m%d", i), func() bool { return getValue(t, mi, "k") == "v" })
	}

	// the fourth finds the token full and becomes a proxy
	cfg4 := discoveryConfig(t, "m3", durl)
	n4, err := startNode(ctx, cfg4)
	if err != nil {
		t.Fatalf("m3: %v", err)
	}
	stopNode(t, n4)
	p, ok := n4.(*proxy)
	if !ok {
		t.Fatalf("m3 started as %T, want a proxy", n4)
	}
	pURL := "http://" + p.ClientAddrs()[0]
	if got := getValue(t, pURL, "k"); got != "v" {
		t.Errorf("k through the proxy = %q", got)
	}
	putValue(t, pURL, "k2", "through-proxy")
	for i, s := range servers { // every member: the readonly proxy below reads from any
		mi := "http://" + s.ClientAddrs()[0]
		waitFor(t, 5*time.Second, fmt.Sprintf("the proxied write on m%d", i), func() bool { return getValue(t, mi, "k2") == "through-proxy" })
	}
	var files []string
	filepath.Walk(cfg4.DataDir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(cfg4.DataDir, p)
			files = append(files, rel)
		}
		return nil
	})
	if len(files) != 1 || files[0] != filepath.Join("proxy", "cluster") {
		t.Errorf("the proxy's data dir holds %v, want only proxy/cluster", files)
	}
	var cf proxyClusterFile
	b, _ := os.ReadFile(filepath.Join(cfg4.DataDir, "proxy", "cluster"))
	if err := json.Unmarshal(b, &cf); err != nil {
		t.Fatalf("proxy/cluster %q: %v", b, err)
	}
	var peers []string
	for _, c := range cfgs {
		peers = append(peers, urlsToStrings(c.InitialAdvertisePeerURLs)...)
	}
	sort.Strings(peers)
	if !slices.Equal(cf.PeerURLs, peers) {
		t.Errorf("proxy/cluster has %v, want %v", cf.PeerURLs, peers)
	}

	// with --discovery-fallback exit the fifth fails and leaves nothing
	cfg5 := discoveryConfig(t, "m4", durl)
	cfg5.DiscoveryFallback = "exit"
	n5, err := startNode(ctx, cfg5)
	if err == nil {
		n5.Shutdown(ctx)
		t.Fatal("a member with --discovery-fallback exit started on a full token")
	}
	if g := loadEtcdGolden(t).Discovery; err.Error() != g.FullLog[0] || !errors.Is(err, errFullCluster) {
		t.Errorf("error %q, etcd says %q", err, g.FullLog[0])
	}
	if _, err := os.Stat(cfg5.DataDir); !os.IsNotExist(err) {
		t.Errorf("the refused member left its data dir: %v", err)
	}

	// a proxy given the token waits for it to be full and forwards
	cfg6 := discoveryConfig(t, "p", durl)
	cfg6.Proxy = "readonly"
	n6, err := startNode(ctx, cfg6)
	if err != nil {
		t.Fatal(err)
	}
	stopNode(t, n6)
	if got := getValue(t, "http://"+n6.(*proxy).ClientAddrs()[0], "k2"); got != "through-proxy" {
		t.Errorf("k2 through the readonly discovery proxy = %q", got)
	}
}

// TestDiscoveryErrors covers a token without a size, a bad size, a
// member registered already, two members of one name, conflicting
// bootstrap flags and a service that never answers.
func TestDiscoveryErrors(t *testing.T) {
	host := startTestMember(t, nil)
	put := func(key, value string) {
		t.Helper()
		if code, _, body := host.do(t, "PUT", "/v2/keys/_etcd/registry/"+key, url.Values{"value": {value}}); code >= 300 {
			t.Fatalf("PUT %s: %d %s", key, code, body)
		}
	}
	put("nosize/x", "1") // as in etcd's run: the token exists, its _config does not
	put("badsize/_config/size", "three")
	put("dupid/_config/size", "3")
	put("dupname/_config/size", "2")
	put("dupname/0123456789abcdef", "x=http://127.0.0.1:1")
	ctx := context.Background()
	noSize := regexp.MustCompile(`^failed to join discovery cluster \(100: Key not found \(/_etcd/registry/nosize/_config\) \[\d+\]\)$`)
	if g := loadEtcdGolden(t).Discovery.NoSizeLog; !regexp.MustCompile(`^failed to join discovery cluster \(100: Key not found \(/_etcd/registry/tok2/_config\) \[\d+\]\)$`).MatchString(g) {
		t.Fatalf("the pattern does not match etcd's message %q", g)
	}
	tests := []struct {
		name  string
		token string
		tune  func(*config)
		check func(error) bool
	}{
		{"no size", "nosize", nil, func(err error) bool { return noSize.MatchString(err.Error()) }},
		{"bad size", "badsize", nil, func(err error) bool { return errors.Is(err, errBadSizeKey) }},
		{"duplicate id", "dupid", func(c *config) {
			id := memberID(urlsToStrings(c.InitialAdvertisePeerURLs), c.Discovery, 0)
			put("dupid/"+idString(id), "x=http://127.0.0.1:2")
		}, func(err error) bool { return errors.Is(err, errDuplicateID) }},
		{"duplicate name", "dupname", func(c *config) { c.Name = "x" }, func(err error) bool { return errors.Is(err, errDuplicateName) }},
		{"discovery and initial-cluster", "any", func(c *config) { c.initialClusterSet = true }, func(err error) bool {
			return strings.Contains(err.Error(), "multiple discovery or bootstrap flags are set")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := discoveryConfig(t, "x0", host.URL+"/v2/keys/_etcd/registry/"+tc.token)
			if tc.tune != nil {
				tc.tune(cfg)
			}
			n, err := startNode(ctx, cfg)
			if err == nil {
				n.Shutdown(ctx)
				t.Fatal("started")
			}
			if !tc.check(err) {
				t.Errorf("unexpected error %q", err)
			}
		})
	}
	t.Run("service down", func(t *testing.T) {
		cfg := discoveryConfig(t, "x0", freePortURL(t)+"/v2/keys/_etcd/registry/t")
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := startNode(ctx, cfg)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("error %v, want the context's deadline after retries", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("took %v to give up", time.Since(start))
		}
	})
}

// TestDiscoveryThroughHTTPProxy sends the discovery requests through
// --discovery-proxy, a forward HTTP proxy in the test that counts them.
func TestDiscoveryThroughHTTPProxy(t *testing.T) {
	host := startTestMember(t, nil)
	host.do(t, "PUT", "/v2/keys/_etcd/registry/tp/_config/size", url.Values{"value": {"1"}})
	var seen atomic.Int32
	fwd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.URL.IsAbs() || r.URL.Host != strings.TrimPrefix(host.URL, "http://") {
			http.Error(w, "not a proxy request for the discovery host: "+r.URL.String(), http.StatusBadRequest)
			return
		}
		seen.Add(1)
		out, _ := http.NewRequest(r.Method, r.URL.String(), r.Body)
		out.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		copyBody(w, resp)
	}))
	defer fwd.Close()
	cfg := discoveryConfig(t, "solo", host.URL+"/v2/keys/_etcd/registry/tp")
	cfg.DiscoveryProxy = fwd.URL
	n, err := startNode(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopNode(t, n)
	if _, ok := n.(*server); !ok {
		t.Fatalf("started as %T", n)
	}
	if seen.Load() < 3 { // size, list, register, list at least
		t.Errorf("the HTTP proxy saw %d discovery requests", seen.Load())
	}
}

// copyBody copies resp's body to w.
func copyBody(w http.ResponseWriter, resp *http.Response) {
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			w.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}
