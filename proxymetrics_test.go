// Tests of a proxy's /metrics against what a real etcd 3.4.23 proxy shows
// after the same requests (testdata/proxymetrics, made by record.sh).

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// proxyMetricsStep is one request of record.sh's sequence: to the proxy
// (readonly false) or the readonly proxy.
type proxyMetricsStep struct {
	readonly           bool
	method, path, body string
}

// proxyMetricsSequence is record.sh's sequence before the watch.
var proxyMetricsSequence = []proxyMetricsStep{
	{false, "GET", "/v2/keys/", ""},
	{false, "PUT", "/v2/keys/a", "value=1"},
	{false, "GET", "/v2/keys/a", ""},
	{false, "GET", "/v2/keys/nope", ""},
	{false, "POST", "/v2/keys/q", "value=x"},
	{false, "HEAD", "/v2/keys/a", ""},
	{false, "DELETE", "/v2/keys/a", ""},
	{false, "PATCH", "/v2/keys/a", ""},
	{false, "OPTIONS", "/v2/keys/a", ""},
	{false, "GET", "/v2/config/local/proxy", ""},
	{false, "GET", "/metrics", ""},
	{false, "PUT", "/v2/keys/a?prevExist=true", "value=1"},
	{false, "GET", "/v2/members", ""},
	{false, "GET", "/version", ""},
	{false, "GET", "/health", ""},
}

// proxyMetricsAfterWatch is the sequence after the watch and its write.
var proxyMetricsAfterWatch = []proxyMetricsStep{
	{true, "GET", "/v2/keys/w", ""},
	{true, "PUT", "/v2/keys/w", "value=3"},
	{true, "DELETE", "/v2/keys/w", ""},
	{true, "OPTIONS", "/v2/keys/w", ""},
}

// recordedStatuses reads the statuses etcd answered in record.sh's
// sequence, in order ("000" where nothing listened).
func recordedStatuses(t *testing.T) []int {
	t.Helper()
	b, err := os.ReadFile("testdata/proxymetrics/etcd-3.4-sequence.txt")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var out []int
	for _, l := range lines[2:] { // after the count before any request
		if strings.HasPrefix(l, "#") {
			continue
		}
		n, err := strconv.Atoi(l)
		if err != nil {
			t.Fatalf("sequence recording: %q", l)
		}
		out = append(out, n)
	}
	return out
}

// recordedFamilies parses one of the recorded expositions.
func recordedFamilies(t *testing.T, name string) map[string]*promFamily {
	t.Helper()
	b, err := os.ReadFile("testdata/proxymetrics/" + name)
	if err != nil {
		t.Fatal(err)
	}
	fams, err := parseExposition(string(b))
	if err != nil {
		t.Fatalf("the parser refuses etcd's own %s: %v", name, err)
	}
	return fams
}

// proxyCounts are the etcd_proxy_* samples that do not depend on timing:
// the counters and the histogram's _count, by series; and the histogram's
// bucket bounds.
func proxyCounts(fams map[string]*promFamily) (counts map[string]float64, les []string) {
	counts = map[string]float64{}
	seen := map[string]bool{}
	for name, f := range fams {
		if !strings.HasPrefix(name, "etcd_proxy_") {
			continue
		}
		for _, s := range f.samples {
			switch {
			case strings.HasSuffix(s.name, "_bucket"):
				if !seen[s.labels["le"]] {
					seen[s.labels["le"]] = true
					les = append(les, s.labels["le"])
				}
			case strings.HasSuffix(s.name, "_sum"):
			default:
				counts[s.name+"{"+seriesKey(s, "")+"}"] = s.value
			}
		}
	}
	sort.Strings(les)
	return counts, les
}

// startMetricsProxy starts a proxy in front of the member with peer URL
// peer; failures hold a member back for 10 s, so that the answers after
// one are those of etcd's default 5 s wait however slow the machine.
func startMetricsProxy(t *testing.T, mode, peer string) string {
	t.Helper()
	cfg := &config{Name: "proxy-" + mode, DataDir: t.TempDir(), Proxy: mode, InitialCluster: map[string][]*url.URL{"m0": mustURLs(t, peer)},
		initialClusterSet: true, ListenClientURLs: mustURLs(t, "http://127.0.0.1:0"), InitialClusterState: "new", DiscoveryFallback: "proxy",
		ListenMetricsURLs: mustURLs(t, freePortURL(t))}
	setProxyTimings(cfg)
	cfg.ProxyFailureWaitMs = 10000
	p := startProxyNode(t, cfg)
	// as etcd's proxy, it does not listen on --listen-metrics-urls
	if resp, err := http.Get(cfg.ListenMetricsURLs[0].String() + "/metrics"); err == nil {
		resp.Body.Close()
		t.Errorf("a proxy serves --listen-metrics-urls; etcd's does not listen there")
	}
	return "http://" + p.ClientAddrs()[0]
}

// doStep sends one request and returns its status.
func doStep(t *testing.T, base string, s proxyMetricsStep) int {
	t.Helper()
	var body io.Reader
	if s.body != "" {
		body = strings.NewReader(s.body)
	}
	req, err := http.NewRequest(s.method, base+s.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if s.body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// compareProxyFamilies checks that got's etcd_proxy_* counts and bucket
// bounds are those of etcd's recording name, and that every family got
// has is one etcd's proxy exports, of the same type (and help, for etcd's
// own families).
func compareProxyFamilies(t *testing.T, what string, got map[string]*promFamily, name string) {
	t.Helper()
	want := recordedFamilies(t, name)
	gc, gl := proxyCounts(got)
	wc, wl := proxyCounts(want)
	for k, v := range wc {
		if gc[k] != v {
			t.Errorf("%s: %s = %v, etcd's proxy %v", what, k, gc[k], v)
		}
	}
	for k, v := range gc {
		if _, ok := wc[k]; !ok {
			t.Errorf("%s: %s = %v, which etcd's proxy does not show", what, k, v)
		}
	}
	if strings.Join(gl, " ") != strings.Join(wl, " ") {
		t.Errorf("%s: bucket bounds %v, etcd's %v", what, gl, wl)
	}
	for n, f := range got {
		e, ok := want[n]
		switch {
		case !ok:
			t.Errorf("%s: family %s is not one etcd 3.4's proxy exports here", what, n)
		case e.typ != f.typ:
			t.Errorf("%s: family %s is a %s, etcd's is a %s", what, n, f.typ, e.typ)
		case e.help != f.help && strings.HasPrefix(n, "etcd_"):
			t.Errorf("%s: family %s: help %q, etcd's %q", what, n, f.help, e.help)
		}
	}
}

// TestProxyMetricsMatchEtcd replays record.sh's sequence through a proxy
// and a readonly proxy in front of a member: every answer's status, and
// then the etcd_proxy_* counters, are those etcd 3.4's proxies showed; the
// exposition passes the strict parser; a member going down is counted as
// etcd counts it.
func TestProxyMetricsMatchEtcd(t *testing.T) {
	statuses := recordedStatuses(t)
	mcfg := fixedPortConfig(t)
	m := startTestMember(t, mcfg)
	peer := mcfg.InitialAdvertisePeerURLs[0].String()
	purl := startMetricsProxy(t, "on", peer)
	rurl := startMetricsProxy(t, "readonly", peer)
	base := func(s proxyMetricsStep) string {
		if s.readonly {
			return rurl
		}
		return purl
	}

	before := scrape(t, purl+"/metrics")
	for n := range before {
		if strings.HasPrefix(n, "etcd_proxy_") {
			t.Errorf("family %s before any request; etcd shows none", n)
		}
	}
	for _, n := range []string{"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
		"go_goroutines", "go_info", "go_memstats_alloc_bytes", "go_gc_duration_seconds", "etcd_server_version"} {
		if before[n] == nil {
			t.Errorf("family %s missing on the proxy", n)
		}
	}

	next := 0
	check := func(s proxyMetricsStep, got int) {
		t.Helper()
		if want := statuses[next]; got != want {
			t.Errorf("%s %s through the proxy: %d, etcd's proxy %d", s.method, s.path, got, want)
		}
		next++
	}
	for _, s := range proxyMetricsSequence {
		check(s, doStep(t, base(s), s))
	}

	// a long-poll watch, counted when the member's headers arrive
	watched := make(chan string, 1)
	go func() {
		resp, err := http.Get(purl + "/v2/keys/w?wait=true")
		if err != nil {
			watched <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		watched <- fmt.Sprint(resp.StatusCode, " ", string(b))
	}()
	waitFor(t, 10*time.Second, "the watch to be registered", func() bool {
		resp, err := http.Get(m.URL + "/v2/stats/store")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st map[string]float64
		return json.NewDecoder(resp.Body).Decode(&st) == nil && st["watchers"] >= 1
	})
	put := proxyMetricsStep{false, "PUT", "/v2/keys/w", "value=2"}
	check(put, doStep(t, purl, put))
	select {
	case w := <-watched:
		if !strings.HasPrefix(w, "200 ") || !strings.Contains(w, `"value":"2"`) {
			t.Errorf("watch through the proxy: %s", w)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watch through the proxy never returned")
	}
	for _, s := range proxyMetricsAfterWatch {
		check(s, doStep(t, base(s), s))
	}
	next++ // --listen-metrics-urls: startMetricsProxy checked it

	compareProxyFamilies(t, "proxy", scrape(t, purl+"/metrics"), "etcd-3.4-proxy.txt")
	compareProxyFamilies(t, "readonly proxy", scrape(t, rurl+"/metrics"), "etcd-3.4-proxy-readonly.txt")

	// the member down: one GET tries it and fails (502), then a PUT finds
	// no member available (503)
	m.stop(t)
	for _, s := range []proxyMetricsStep{{false, "GET", "/v2/keys/a", ""}, {false, "PUT", "/v2/keys/a", "value=1"}} {
		check(s, doStep(t, purl, s))
	}
	if next != len(statuses) {
		t.Errorf("replayed %d answers, etcd's recording has %d", next, len(statuses))
	}
	compareProxyFamilies(t, "proxy, member down", scrape(t, purl+"/metrics"), "etcd-3.4-proxy-memberdown.txt")
}

// TestProxyMetricsCountFailover checks the counters of a proxy in front of
// two members, one of them down: a GET that fails over is dropped once
// ("failed_sending_request") and handled once by the other member, a
// write that may have reached the dead member is not, and the handling
// histogram counts each answered request.
func TestProxyMetricsCountFailover(t *testing.T) {
	mcfg := fixedPortConfig(t)
	m := startTestMember(t, mcfg)
	// a second "member" whose client URL refuses connections: a peer
	// answering /members with both client URLs
	// (the fake peer's own URL as both peer URLs, so that the proxy's
	// refreshes keep asking it)
	dead := freePortURL(t)
	u, _ := url.Parse(freePortURL(t))
	members := fmt.Sprintf(`[{"id":1,"name":"a","peerURLs":["http://%s"],"clientURLs":["%s"]},{"id":2,"name":"b","peerURLs":["http://%s"],"clientURLs":["%s"]}]`,
		u.Host, m.URL, u.Host, dead)
	peer := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, members)
	})}
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	go peer.Serve(ln)
	t.Cleanup(func() { peer.Close() })
	purl := startMetricsProxy(t, "on", "http://"+u.Host)

	// until the dead endpoint has been tried once, a GET may or may not
	// meet it (the list is shuffled): send GETs until one failed over
	waitFor(t, 10*time.Second, "a GET to fail over", func() bool {
		doStep(t, purl, proxyMetricsStep{false, "GET", "/v2/keys/", ""})
		f := scrape(t, purl+"/metrics")["etcd_proxy_dropped_total"]
		return f != nil && f.value("etcd_proxy_dropped_total", "method", "GET", "proxying_error", "failed_sending_request") == 1
	})
	fams := scrape(t, purl+"/metrics")
	gets := fams["etcd_proxy_requests_total"].value("etcd_proxy_requests_total", "method", "GET")
	if h := fams["etcd_proxy_handled_total"].value("etcd_proxy_handled_total", "code", "200", "method", "GET"); h != gets {
		t.Errorf("%v GETs, %v handled: a failed-over GET must still be handled", gets, h)
	}
	if d := fams["etcd_proxy_dropped_total"].value("etcd_proxy_dropped_total", "method", "GET", "proxying_error", "failed_getting_response"); !math.IsNaN(d) {
		t.Errorf("failed_getting_response %v, but every GET got an answer", d)
	}
	if c := fams["etcd_proxy_handling_duration_seconds"].value("etcd_proxy_handling_duration_seconds_count", "method", "GET"); c != gets {
		t.Errorf("histogram count %v for %v GETs", c, gets)
	}
	// the dead endpoint is held back now: writes go to the live member
	for i := 0; i < 3; i++ {
		if code := doStep(t, purl, proxyMetricsStep{false, "PUT", "/v2/keys/f", "value=" + strconv.Itoa(i)}); code/100 != 2 {
			t.Fatalf("PUT through the proxy: %d", code)
		}
	}
	fams = scrape(t, purl+"/metrics")
	if v := fams["etcd_proxy_requests_total"].value("etcd_proxy_requests_total", "method", "PUT"); v != 3 {
		t.Errorf("PUT requests %v, want 3", v)
	}
	handled := fams["etcd_proxy_handled_total"]
	created, replaced := handled.value("etcd_proxy_handled_total", "code", "201", "method", "PUT"), handled.value("etcd_proxy_handled_total", "code", "200", "method", "PUT")
	if created != 1 || replaced != 2 {
		t.Errorf("PUTs handled: %v with 201, %v with 200; want 1 and 2", created, replaced)
	}
	if d := fams["etcd_proxy_dropped_total"].value("etcd_proxy_dropped_total", "method", "PUT", "proxying_error", "failed_sending_request"); !math.IsNaN(d) {
		t.Errorf("a PUT was dropped %v times; the dead member was held back", d)
	}
}
