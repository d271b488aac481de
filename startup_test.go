// Tests of the end of recovery: the collector during and after the replay.

package main

import (
	"fmt"
	"net"
	"net/url"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

// readRuntimeMetric returns the value of one runtime/metrics uint64 metric.
func readRuntimeMetric(t *testing.T, name string) uint64 {
	t.Helper()
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Fatalf("runtime metric %s: kind %v", name, s[0].Value.Kind())
	}
	return s[0].Value.Uint64()
}

// writeKeys writes keys k0..k<n-1> with value through m.
func writeKeys(t *testing.T, m *testMember, n int, value string) {
	t.Helper()
	for i := 0; i < n; i++ {
		if code, _, body := m.do(t, "PUT", fmt.Sprintf("/v2/keys/k%d", i), url.Values{"value": {value}}); code != 201 {
			t.Fatalf("put %d: %d %s", i, code, body)
		}
	}
}

// restartCounted restarts the member of cfg after a collection (so that the
// collector's goal is that of the small heap left), and returns it with the
// GOGC setting before the start, the number of collections before it, and
// the GOGC setting once startServer returned.
func restartCounted(t *testing.T, cfg *config) (m *testMember, gogc, before, gogcAtReturn uint64) {
	t.Helper()
	runtime.GC()
	gogc = readRuntimeMetric(t, "/gc/gogc:percent")
	before = readRuntimeMetric(t, "/gc/cycles/total:gc-cycles")
	s, err := startServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gogcAtReturn = readRuntimeMetric(t, "/gc/gogc:percent")
	m = &testMember{server: s, URL: "http://" + s.ClientAddrs()[0], cfg: cfg}
	t.Cleanup(func() { m.stop(t) })
	return m, gogc, before, gogcAtReturn
}

// TestRecoveryCollectsOnceAfterServing restarts a member from a snapshot of
// megabytes and a log after it: no collection runs from the start of
// recovery until the member serves clients (before, the collector resumed
// at the end of recovery with the goal of the small heap before it, and
// marked the whole store while the log was applied and the member elected
// itself), then one does, and the collector's setting is back to what it
// was.
func TestRecoveryCollectsOnceAfterServing(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.SnapshotCount = 3000
	m := startTestMember(t, cfg)
	value := strings.Repeat("v", 2048)
	const keys = 4000 // a snapshot of about 6 MB, 2 MB of log after it
	writeKeys(t, m, keys, value)
	m.stop(t)

	m, gogc, before, _ := restartCounted(t, cfg)
	if m.snapshotIndex == 0 {
		t.Fatal("recovered without a snapshot")
	}
	select {
	case <-m.ready:
	case <-time.After(10 * time.Second):
		t.Fatal("not serving after 10 s")
	}
	if n := readRuntimeMetric(t, "/gc/cycles/total:gc-cycles") - before; n != 0 {
		t.Errorf("%d collections between the start of recovery and serving clients, want none", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for readRuntimeMetric(t, "/gc/gogc:percent") != gogc || readRuntimeMetric(t, "/gc/cycles/total:gc-cycles") == before {
		if time.Now().After(deadline) {
			t.Fatalf("5 s after serving: GOGC %d (want %d again), %d collections since the start (want one at least)",
				readRuntimeMetric(t, "/gc/gogc:percent"), gogc, readRuntimeMetric(t, "/gc/cycles/total:gc-cycles")-before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, _, body := m.do(t, "GET", fmt.Sprintf("/v2/keys/k%d", keys-1), nil); code != 200 || !strings.Contains(body, value) {
		t.Fatalf("get k%d after restart: %d %.100s", keys-1, code, body)
	}
}

// TestRecoveryLongLogCollectsWhileReplaying restarts a member whose log
// (megabytes, no snapshot) is long next to its snapshot: the collector is
// on again once recovery has read it, before the replay, so that the
// replay's garbage is collected as it goes.
func TestRecoveryLongLogCollectsWhileReplaying(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	m := startTestMember(t, cfg)
	value := strings.Repeat("v", 2048)
	const keys = 2000
	writeKeys(t, m, keys, value)
	m.stop(t)

	m, gogc, _, atReturn := restartCounted(t, cfg)
	if atReturn != gogc {
		t.Errorf("GOGC %d once recovery returned, want %d", atReturn, gogc)
	}
	if code, _, body := m.do(t, "GET", fmt.Sprintf("/v2/keys/k%d", keys-1), nil); code != 200 || !strings.Contains(body, value) {
		t.Fatalf("get k%d after restart: %d %.100s", keys-1, code, body)
	}
}

// TestRecoveryFailedStartResumesCollector restarts a member whose client
// port is taken: start-up fails after recovery paused the collector, and
// the collector must be on again.
func TestRecoveryFailedStartResumesCollector(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.SnapshotCount = 20 // a snapshot and a short log after it: the collector stays off after recovery
	m := startTestMember(t, cfg)
	writeKeys(t, m, 25, "v")
	m.stop(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg.ListenClientURLs = mustURLs(t, "http://"+taken.Addr().String())
	gogc := readRuntimeMetric(t, "/gc/gogc:percent")
	if s, err := startServer(cfg); err == nil {
		(&testMember{server: s}).stop(t)
		t.Fatalf("started on a taken port %s", taken.Addr())
	}
	if got := readRuntimeMetric(t, "/gc/gogc:percent"); got != gogc {
		t.Fatalf("GOGC %d after a failed start, want %d", got, gogc)
	}
}
