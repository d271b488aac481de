// Helpers that start one test server.

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain keeps the server's logs out of test output unless -v is given.
func TestMain(m *testing.M) {
	level := slog.LevelWarn
	for _, a := range os.Args {
		if a == "-test.v=true" || a == "-test.v" {
			level = slog.LevelInfo
		}
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	os.Exit(m.Run())
}

// fakeClock is a settable clock for TTL tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testMember is a single-member etcdlite running in-process on kernel
// chosen ports, with its data in a temporary directory.
type testMember struct {
	*server
	URL string // client URL, e.g. http://127.0.0.1:41234
	cfg *config
}

// mustURLs parses a comma-separated URL list or fails the test.
func mustURLs(t testing.TB, s string) []*url.URL {
	t.Helper()
	u, err := parseURLs(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// memberConfig is the configuration of member name of a new cluster whose
// members have the given peer URLs, with fast raft timings for tests.
func memberConfig(t testing.TB, name, dataDir, clientURL string, peers map[string]string) *config {
	t.Helper()
	ic := map[string][]*url.URL{}
	for n, p := range peers {
		ic[n] = mustURLs(t, p)
	}
	return &config{
		Name:                     name,
		DataDir:                  dataDir,
		ListenClientURLs:         mustURLs(t, clientURL),
		AdvertiseClientURLs:      mustURLs(t, clientURL),
		ListenPeerURLs:           mustURLs(t, peers[name]),
		InitialAdvertisePeerURLs: mustURLs(t, peers[name]),
		InitialCluster:           ic,
		InitialClusterState:      "new",
		InitialClusterToken:      "etcd-cluster",
		SnapshotCount:            100000,
		HeartbeatMs:              10,
		ElectionMs:               100,
		MaxSnapshots:             5,
		MaxWALs:                  5,
		StrictReconfigCheck:      true,
		LogLevel:                 "warn",

		PreVote:                    true,
		InitialElectionTickAdvance: true,
	}
}

// testConfig is the configuration of a single member named "t" with
// ports chosen by the kernel.
func testConfig(t testing.TB, dataDir string) *config {
	t.Helper()
	return memberConfig(t, "t", dataDir, "http://127.0.0.1:0", map[string]string{"t": "http://127.0.0.1:0"})
}

// startTestMember starts a member with cfg (testConfig when nil) and stops
// it when the test ends. It returns once the member leads and has
// published itself.
func startTestMember(t testing.TB, cfg *config) *testMember {
	t.Helper()
	if cfg == nil {
		cfg = testConfig(t, t.TempDir())
	}
	s, err := startServer(cfg)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	m := &testMember{server: s, URL: "http://" + s.ClientAddrs()[0], cfg: cfg}
	t.Cleanup(func() { m.stop(t) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s.store.Index() >= 3 && s.leader.Load() == s.id {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member did not become ready (index %d, leader %x)", s.store.Index(), s.leader.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return m
}

func (m *testMember) stop(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Shutdown(ctx); err != nil {
		t.Logf("shutdown: %v", err)
	}
}

// do sends a request with an optional form body and returns the status,
// headers and body.
func (m *testMember) do(t testing.TB, method, path string, form url.Values) (int, http.Header, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = stringsReader(form.Encode())
	}
	req, err := http.NewRequest(method, m.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

// childCommand is exec.Command for a built etcdlite binary. Where the tests
// run under an emulator (go test -exec qemu-arm-static, for a binary of
// another architecture), ETCDLITE_TEST_EXEC names it, and the child binary,
// built for the same architecture, runs under it too.
func childCommand(bin string, args ...string) *exec.Cmd {
	if emu := os.Getenv("ETCDLITE_TEST_EXEC"); emu != "" {
		return exec.Command(emu, append([]string{bin}, args...)...)
	}
	return exec.Command(bin, args...)
}

// Ports that tests pick for servers bound later (a member's peer URLs are
// in every member's configuration before any binds) come from below the
// kernel's ephemeral range (32768 and up on Linux): no outgoing connection
// of this process can take one between its pick and its bind, as happened
// with ports the kernel picked ("address already in use" in TestProxyWatch
// and TestSRVBootstrap). 24000-31999 stays clear of the benchmark scripts'
// ports (compare.sh 22379-22590).
const (
	testPortBase = 24000
	testPortSpan = 8000
)

// testPortPicker hands out those ports in turn, each found free by a bind.
type testPortPicker struct {
	mu   sync.Mutex
	next int
}

// testPorts is the process's picker; test binaries run side by side start
// at different places (by process id).
var testPorts = &testPortPicker{next: os.Getpid() % testPortSpan}

// pick returns a port no listener has now, and not handed out before in
// this process (until all 8000 have been).
func (p *testPortPicker) pick(t testing.TB) int {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for range testPortSpan {
		port := testPortBase + p.next%testPortSpan
		p.next++
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		return port
	}
	t.Fatalf("no free port in %d-%d", testPortBase, testPortBase+testPortSpan-1)
	return 0
}
