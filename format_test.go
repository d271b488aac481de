// This file holds the test that a data dir written on one machine is read
// the same on every platform and by every later version:
// testdata/format/datadir2 (format 2, written by this version) and
// testdata/format/datadir (format 1, before member/version and version 3
// snapshot files) were written on linux/amd64, and the test (run under qemu
// for arm and the big-endian s390x by .ci/run) recovers both and checks
// every key.
package main

import (
	"bytes"
	"encoding/gob"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// formatUpdate rewrites testdata/format/datadir2 from a fresh member.
var formatUpdate = flag.Bool("format.update", false, "rewrite testdata/format/datadir2")

// formatGoldenDir is the data dir recorded by this version (format 2).
const formatGoldenDir = "testdata/format/datadir2"

// formatGoldenDirs are the recorded data dirs, each with the snapshot file
// version it holds; every one is taken up as format 2 by a start.
var formatGoldenDirs = []struct {
	dir         string
	snapVersion uint32
}{
	{"testdata/format/datadir", snapVersionV2}, // format 1, no member/version
	{formatGoldenDir, snapVersion},
}

// formatGoldenKeys is how many keys the recorded data dir holds; with a
// snapshot every 40 entries, some are in the snapshot and some in the log.
const formatGoldenKeys = 100

// TestFormatGoldenDataDir recovers the data dirs recorded on linux/amd64 (a
// snapshot and log segments each) and checks every key, value and index.
func TestFormatGoldenDataDir(t *testing.T) {
	if *formatUpdate {
		formatRecord(t)
	}
	for _, golden := range formatGoldenDirs {
		t.Run(filepath.Base(golden.dir), func(t *testing.T) {
			formatCheckGolden(t, golden.dir, golden.snapVersion)
		})
	}
}

// formatCheckGolden recovers a copy of the recorded data dir golden, whose
// snapshot files are of version snapVersion.
func formatCheckGolden(t *testing.T, golden string, snapVersion uint32) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(golden)); err != nil {
		t.Fatalf("copy %s: %v", golden, err)
	}
	if err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.Chmod(p, 0o700)
		}
		return os.Chmod(p, 0o600)
	}); err != nil {
		t.Fatal(err)
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "member", "snap", "*.snap"))
	segs, _ := filepath.Glob(filepath.Join(dir, "member", "wal", "*.wal"))
	if len(snaps) == 0 || len(segs) == 0 {
		t.Fatalf("recorded data dir has %d snapshots and %d segments, want both", len(snaps), len(segs))
	}
	for _, p := range snaps {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var sf snapFile
		if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&sf); err != nil || sf.Version != snapVersion {
			t.Fatalf("%s: snapshot version %d (%v), want %d", p, sf.Version, err, snapVersion)
		}
	}
	cfg := testConfig(t, dir)
	cfg.SnapshotCount = 40
	m := startTestMember(t, cfg)
	for i := 0; i < formatGoldenKeys; i++ {
		code, _, body := m.do(t, "GET", fmt.Sprintf("/v2/keys/format/k%03d", i), nil)
		want := fmt.Sprintf(`"value":"v%d-\u00e9\u65e5"`, i)
		if code != 200 || !strings.Contains(body, want) && !strings.Contains(body, fmt.Sprintf(`"value":"v%d-é日"`, i)) {
			t.Fatalf("k%03d after recovery: %d %s", i, code, body)
		}
	}
	code, _, body := m.do(t, "GET", "/v2/keys/format/dir/sub", nil)
	if code != 200 || !strings.Contains(body, `"dir":true`) {
		t.Fatalf("recorded directory after recovery: %d %s", code, body)
	}
	// format 1 (no member/version) is read and taken up as format 2
	if b, err := os.ReadFile(dataFormatPath(dir)); err != nil || string(b) != "2\n" {
		t.Fatalf("version file after recovery: %q, %v", b, err)
	}
}

// formatRecord writes a fresh data dir to testdata/format/datadir.
func formatRecord(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.hooks.wal.noPrealloc = true // the segments hold only what was written
	cfg.SnapshotCount = 40
	cfg.hooks.catchUpEntries = 10
	m := startTestMember(t, cfg)
	if code, _, body := m.do(t, "PUT", "/v2/keys/format/dir/sub", url.Values{"dir": {"true"}}); code != 201 {
		t.Fatalf("mkdir: %d %s", code, body)
	}
	for i := 0; i < formatGoldenKeys; i++ {
		if code, _, body := m.do(t, "PUT", fmt.Sprintf("/v2/keys/format/k%03d", i), url.Values{"value": {fmt.Sprintf("v%d-é日", i)}}); code != 201 {
			t.Fatalf("put %d: %d %s", i, code, body)
		}
	}
	m.stop(t)
	if err := os.RemoveAll(formatGoldenDir); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(formatGoldenDir, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(filepath.Join(formatGoldenDir, dataDirLockName))
}
