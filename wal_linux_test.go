// This file holds the tests of the WAL's Linux-only behaviour: skipping the
// preallocated, never-written end of a segment (sync_linux.go).
package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// TestWALDataEndSkipsPreallocatedZeros checks that the replay reads the last
// segment only as far as the file system reports data, and still sees data
// written beyond a stretch never written.
func TestWALDataEndSkipsPreallocatedZeros(t *testing.T) {
	const segSize int64 = 1 << 20
	opts := walOptions{segmentSize: segSize}
	dir := t.TempDir()
	w, _ := walTestOpenWith(t, dir, 0, 0, opts)
	if err := w.Save(raftpb.HardState{Term: 1, Commit: 3}, walTestEnts(1, 3, 1, 30)); err != nil {
		t.Fatal(err)
	}
	path := w.segs[len(w.segs)-1].path
	written := int(w.size)
	w.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	size := int(fi.Size())
	if size != int(segSize) {
		t.Skipf("file system did not preallocate (size %d)", size)
	}
	end := walDataEnd(path, size)
	if end < written || end > size {
		t.Fatalf("data end %d, want between the %d bytes written and the size %d", end, written, size)
	}
	if walTestReportsHoles(t) && end == size {
		t.Fatalf("data end %d: the preallocated end was not skipped", end)
	}

	// bytes written far beyond the records, with never-written space between
	garbage := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(garbage, int64(size-len(garbage))); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if end := walDataEnd(path, size); end != size {
		t.Fatalf("data end %d with data in the last bytes, want %d", end, size)
	}
	// they are a torn tail (no sound record follows the records): cut
	w, st := walTestOpenWith(t, dir, 0, 0, opts)
	walTestCheckEnts(t, st.Entries, walTestEnts(1, 3, 1, 30))
	w.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data[written:], garbage) {
		t.Fatal("the bytes beyond the never-written space were not seen by the replay")
	}
}

// walTestReportsHoles says whether the file system of a temp dir reports
// holes to lseek, so that walDataEnd can skip them.
func walTestReportsHoles(t *testing.T) bool {
	f, err := os.Create(filepath.Join(t.TempDir(), "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 20); err != nil {
		t.Fatal(err)
	}
	hole, err := f.Seek(0, seekHole)
	return err == nil && hole < 1<<20
}
