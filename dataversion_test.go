package main

import (
	"crypto/sha256"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dataDirSum is a digest of every file under dir but the lock and the
// version file: what a refused start must leave as it was.
func dataDirSum(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == dataDirLockName || d.Name() == dataFormatFile {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h.Write([]byte(p))
		h.Write(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(h.Sum(nil))
}

// writtenDataDir is a data dir a member wrote one key into.
func writtenDataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	m := startTestMember(t, testConfig(t, dir))
	if code, _, body := m.do(t, "PUT", "/v2/keys/k", url.Values{"value": {"v"}}); code != 201 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	m.stop(t)
	return dir
}

// TestDataFormatRecorded checks that a new data dir records its format and
// starts again with it.
func TestDataFormatRecorded(t *testing.T) {
	dir := writtenDataDir(t)
	if b, err := os.ReadFile(dataFormatPath(dir)); err != nil || string(b) != "2\n" {
		t.Fatalf("version file: %q, %v; want \"2\\n\"", b, err)
	}
	m := startTestMember(t, testConfig(t, dir))
	if code, _, body := m.do(t, "GET", "/v2/keys/k", nil); code != 200 || !strings.Contains(body, `"value":"v"`) {
		t.Fatalf("GET after restart: %d %s", code, body)
	}
}

// TestDataFormatWithoutFile checks that a data dir written before the
// version file existed starts (as format 1) and gets the file.
func TestDataFormatWithoutFile(t *testing.T) {
	dir := writtenDataDir(t)
	if err := os.Remove(dataFormatPath(dir)); err != nil {
		t.Fatal(err)
	}
	m := startTestMember(t, testConfig(t, dir))
	if code, _, body := m.do(t, "GET", "/v2/keys/k", nil); code != 200 || !strings.Contains(body, `"value":"v"`) {
		t.Fatalf("GET after restart: %d %s", code, body)
	}
	if b, err := os.ReadFile(dataFormatPath(dir)); err != nil || string(b) != "2\n" {
		t.Fatalf("version file after start: %q, %v; want \"2\\n\"", b, err)
	}
}

// TestDataFormatRefused checks that a data dir in a format this etcdlite
// does not read is refused with a message naming both formats, and left
// untouched, and that it starts again once the format is one it reads.
func TestDataFormatRefused(t *testing.T) {
	dir := writtenDataDir(t)
	for _, c := range []struct{ content, want string }{
		{"3\n", "written by etcdlite format 3; this etcdlite reads formats 1 to 2"},
		{"17", "written by etcdlite format 17; this etcdlite reads formats 1 to 2"},
		{"0\n", `holds "0", not a format number; this etcdlite reads formats 1 to 2`},
		{"format two\n", `holds "format two", not a format number; this etcdlite reads formats 1 to 2`},
		{"", `holds "", not a format number; this etcdlite reads formats 1 to 2`},
	} {
		if err := os.WriteFile(dataFormatPath(dir), []byte(c.content), 0o600); err != nil {
			t.Fatal(err)
		}
		before := dataDirSum(t, dir)
		s, err := startServer(testConfig(t, dir))
		if err == nil {
			s.Shutdown(t.Context())
			t.Fatalf("version file %q: started", c.content)
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), dir) {
			t.Errorf("version file %q: error %q, want it to name %s and say %q", c.content, err, dir, c.want)
		}
		if after := dataDirSum(t, dir); after != before {
			t.Errorf("version file %q: the refused start changed the data dir", c.content)
		}
		if b, _ := os.ReadFile(dataFormatPath(dir)); string(b) != c.content {
			t.Errorf("version file %q: rewritten to %q", c.content, b)
		}
	}
	if err := os.WriteFile(dataFormatPath(dir), []byte("1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := startTestMember(t, testConfig(t, dir))
	if code, _, body := m.do(t, "GET", "/v2/keys/k", nil); code != 200 || !strings.Contains(body, `"value":"v"`) {
		t.Fatalf("GET once the format is 1 again: %d %s", code, body)
	}
	// format 1 is read, and taken up as format 2 at the start
	if b, err := os.ReadFile(dataFormatPath(dir)); err != nil || string(b) != "2\n" {
		t.Fatalf("version file after a start in format 1: %q, %v; want \"2\\n\"", b, err)
	}
}

// TestDataFormatOfflineTools checks that backup and verify refuse a data
// dir in a format this etcdlite does not read, with the same message, and
// read one without the version file.
func TestDataFormatOfflineTools(t *testing.T) {
	dir := writtenDataDir(t)
	if err := os.Remove(dataFormatPath(dir)); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if code := runVerify([]string{"--data-dir", dir}, &out, &out); code != 0 {
		t.Fatalf("verify without the version file: %d\n%s", code, out.String())
	}
	if err := os.WriteFile(dataFormatPath(dir), []byte("3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const want = "written by etcdlite format 3; this etcdlite reads formats 1 to 2"
	out.Reset()
	if code := runVerify([]string{"--data-dir", dir}, &out, &out); code != 1 || !strings.Contains(out.String(), want) {
		t.Errorf("verify of format 3: %d %q, want 1 and %q", code, out.String(), want)
	}
	out.Reset()
	backup := filepath.Join(t.TempDir(), "backup")
	if code := runBackup([]string{"--data-dir", dir, "--backup-dir", backup}, &out, &out); code != 1 || !strings.Contains(out.String(), want) {
		t.Errorf("backup of format 3: %d %q, want 1 and %q", code, out.String(), want)
	}
	if _, err := os.Stat(backup); err == nil {
		t.Errorf("the refused backup created %s", backup)
	}
}
