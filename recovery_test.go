// Tests of recovery from snapshots and the log.

package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecoveryAcrossSnapshotsAndSegments writes enough to cross several
// snapshots and log segments, restarts the member from its data dir (once
// normally, once with its newest snapshot damaged) and checks every key.
func TestRecoveryAcrossSnapshotsAndSegments(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.hooks.wal.segmentSize = 32 << 10
	cfg.SnapshotCount = 300
	cfg.hooks.catchUpEntries = 50
	cfg.MaxSnapshots = 3
	cfg.MaxWALs = 2
	m := startTestMember(t, cfg)
	const n = 1500
	for i := 0; i < n; i++ {
		if code, _, body := m.do(t, "PUT", fmt.Sprintf("/v2/keys/r/k%04d", i), url.Values{"value": {fmt.Sprint(i)}}); code != 201 {
			t.Fatalf("put %d: %d %s", i, code, body)
		}
	}
	m.stop(t)
	snaps, _ := filepath.Glob(filepath.Join(dir, "member", "snap", "*.snap"))
	segs, _ := filepath.Glob(filepath.Join(dir, "member", "wal", "*.wal"))
	if len(snaps) < 2 || len(snaps) > 3 {
		t.Errorf("%d snapshot files, want 2 or 3 (--max-snapshots 3 after %d entries)", len(snaps), n)
	}
	if len(segs) < 2 {
		t.Errorf("%d log segments, want several", len(segs))
	}
	check := func(m *testMember) {
		t.Helper()
		for i := 0; i < n; i += 7 {
			code, _, body := m.do(t, "GET", fmt.Sprintf("/v2/keys/r/k%04d", i), nil)
			if code != 200 || !strings.Contains(body, fmt.Sprintf(`"value":"%d"`, i)) {
				t.Fatalf("after restart, k%04d: %d %s", i, code, body)
			}
		}
		code, _, body := m.do(t, "GET", "/v2/keys/r", nil)
		if code != 200 || strings.Count(body, `"key":"/r/k`) != n {
			t.Fatalf("after restart the listing has %d keys, want %d", strings.Count(body, `"key":"/r/k`), n)
		}
	}
	m = startTestMember(t, cfg)
	check(m)
	m.stop(t)

	// damage the newest snapshot: an older one and a longer replay serve
	snaps, _ = filepath.Glob(filepath.Join(dir, "member", "snap", "*.snap"))
	newest := snaps[len(snaps)-1]
	data, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(newest, data, 0o600); err != nil {
		t.Fatal(err)
	}
	m = startTestMember(t, cfg)
	check(m)
	if _, err := os.Stat(newest + ".broken"); err != nil {
		t.Errorf("damaged snapshot not set aside as .broken: %v", err)
	}
}

// TestRecoveryNeedsNoTick checks that a single member starts, and after a
// restart applies its log, without waiting for a raft tick: with a
// heartbeat of a minute, nothing may wait for one.
func TestRecoveryNeedsNoTick(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.HeartbeatMs, cfg.ElectionMs = 60_000, 600_000
	m := startTestMember(t, cfg)
	for i := 0; i < 3; i++ {
		if code, _, body := m.do(t, "PUT", fmt.Sprintf("/v2/keys/k%d", i), url.Values{"value": {fmt.Sprint(i)}}); code != 201 {
			t.Fatalf("put %d: %d %s", i, code, body)
		}
	}
	m.stop(t)
	m = startTestMember(t, cfg)
	for i := 0; i < 3; i++ {
		if code, _, body := m.do(t, "GET", fmt.Sprintf("/v2/keys/k%d", i), nil); code != 200 || !strings.Contains(body, fmt.Sprintf(`"value":"%d"`, i)) {
			t.Fatalf("get k%d after restart: %d %s", i, code, body)
		}
	}
}
