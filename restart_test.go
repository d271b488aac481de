// Tests of members restarted on their data dirs.

package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var restartDir = flag.String("restart.dir", "", "TestRestartFromDir: a data dir of a member named -restart.name to restart in-process (copied first)")
var restartName = flag.String("restart.name", "etcdlite", "TestRestartFromDir: the member name the data dir belongs to")
var restartRounds = flag.Int("restart.rounds", 3, "TestRestartFromDir: restarts to time")

// TestRestartFromDir times restarts of a member from a copy of a data dir
// left by scripts/restart-bench.sh (KEEP=1) or any single-member etcdlite,
// until it serves clients. Run with -cpuprofile to see where start-up goes:
//
//	go test -run TestRestartFromDir -restart.dir /tmp/d -cpuprofile cpu.out -v .
func TestRestartFromDir(t *testing.T) {
	if *restartDir == "" {
		t.Skip("needs -restart.dir")
	}
	for r := 0; r < *restartRounds; r++ {
		dir := filepath.Join(t.TempDir(), "data")
		if err := copyTree(*restartDir, dir); err != nil {
			t.Fatal(err)
		}
		cfg := memberConfig(t, *restartName, dir, "http://127.0.0.1:0", map[string]string{*restartName: "http://127.0.0.1:0"})
		start := time.Now()
		s, err := startServer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		started := time.Since(start)
		select {
		case <-s.ready:
		case <-time.After(60 * time.Second):
			t.Fatal("not serving after 60 s")
		}
		t.Logf("round %d: startServer returned after %v, serving after %v (keys index %d)", r, started.Round(time.Millisecond),
			time.Since(start).Round(time.Millisecond), s.store.Index())
		(&testMember{server: s}).stop(t)
	}
}

// copyTree copies the regular files and directories under src to dst. Runs
// of zeros become holes, so that the preallocated, never written end of a
// log segment reads as it does in the member's own data dir.
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if err := copySparse(out, in, fi.Size()); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// copySparse copies size bytes from in to out, seeking over blocks of zeros
// instead of writing them.
func copySparse(out, in *os.File, size int64) error {
	buf := make([]byte, 64<<10)
	for {
		n, err := io.ReadFull(in, buf)
		if n > 0 {
			if walAllZero(buf[:n]) {
				if _, err := out.Seek(int64(n), io.SeekCurrent); err != nil {
					return err
				}
			} else if _, err := out.Write(buf[:n]); err != nil {
				return err
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return out.Truncate(size)
		}
		if err != nil {
			return err
		}
	}
}
