// Tests of --wal-dir.

package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWALDir checks --wal-dir: the segments go straight into it, the data
// dir remembers it and refuses to start without it, and a data dir with
// its own log refuses a --wal-dir that holds none.
func TestWALDir(t *testing.T) {
	dataDir, walDir := t.TempDir(), filepath.Join(t.TempDir(), "wal")
	cfg := testConfig(t, dataDir)
	cfg.WALDir = walDir
	m := startTestMember(t, cfg)
	if code, _, body := m.do(t, "PUT", "/v2/keys/k", map[string][]string{"value": {"v"}}); code != 201 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	m.stop(t)
	if segs, _ := filepath.Glob(filepath.Join(walDir, "*.wal")); len(segs) == 0 {
		t.Fatalf("no WAL segment in --wal-dir %s", walDir)
	}
	if walExists(defaultWALDir(dataDir)) {
		t.Fatalf("a WAL segment in %s too", defaultWALDir(dataDir))
	}

	without := testConfig(t, dataDir)
	if s, err := startServer(without); err == nil {
		s.Shutdown(t.Context())
		t.Fatal("started without --wal-dir")
	} else if !strings.Contains(err.Error(), "start with --wal-dir "+walDir) {
		t.Fatalf("error %q does not say to start with --wal-dir", err)
	}
	elsewhere := testConfig(t, dataDir)
	elsewhere.WALDir = filepath.Join(t.TempDir(), "empty")
	if s, err := startServer(elsewhere); err == nil {
		s.Shutdown(t.Context())
		t.Fatal("started with an empty --wal-dir")
	} else if !strings.Contains(err.Error(), walDir) {
		t.Fatalf("error %q does not name the log's directory", err)
	}

	again := testConfig(t, dataDir)
	again.WALDir = walDir
	m = startTestMember(t, again)
	if code, _, body := m.do(t, "GET", "/v2/keys/k", nil); code != 200 || !strings.Contains(body, `"value":"v"`) {
		t.Fatalf("GET after restart: %d %s", code, body)
	}
	m.stop(t)

	// A data dir with its own log and --wal-dir.
	plain := t.TempDir()
	m = startTestMember(t, testConfig(t, plain))
	m.stop(t)
	moved := testConfig(t, plain)
	moved.WALDir = filepath.Join(t.TempDir(), "wal")
	if s, err := startServer(moved); err == nil {
		s.Shutdown(t.Context())
		t.Fatal("started with --wal-dir over a data dir with its own log")
	} else if !strings.Contains(err.Error(), "drop --wal-dir") {
		t.Fatalf("error %q", err)
	}
}

// TestSdNotify checks READY=1 reaches a unixgram socket, by path and by
// abstract name, and that no socket means nothing sent.
func TestSdNotify(t *testing.T) {
	dir, err := os.MkdirTemp("", "sdn") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, name := range []string{filepath.Join(dir, "notify"), "@etcdlite-test-" + filepath.Base(dir)} {
		addr := name
		if strings.HasPrefix(addr, "@") {
			addr = "\x00" + addr[1:]
		}
		ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		if err := sdNotify(name, "READY=1"); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		ln.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := ln.ReadFromUnix(buf)
		ln.Close()
		if err != nil || string(buf[:n]) != "READY=1" {
			t.Fatalf("%s: read %q, %v", name, buf[:n], err)
		}
	}
	if err := sdNotify("", "READY=1"); err != nil {
		t.Fatal(err)
	}
	if err := sdNotify(filepath.Join(dir, "none"), "READY=1"); err == nil {
		t.Fatal("no error for a socket nobody listens on")
	}
}
