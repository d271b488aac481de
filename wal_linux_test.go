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

// TestWALZerosAhead checks that the log writes zeros into the preallocated
// space past its records (walZeroAhead), so that the next batches overwrite
// written blocks, never past the segment's size, and that what it wrote
// replays the same after a reopen.
func TestWALZerosAhead(t *testing.T) {
	if !walTestReportsHoles(t) {
		t.Skip("the file system does not report holes to lseek")
	}
	tests := []struct {
		name    string
		segSize int64
		batches int
		size    int // entry size
	}{
		{"one small batch", 4 << 20, 1, 30},
		{"batches across several steps", 4 << 20, 40, 30_000},
		{"a segment smaller than the step", 128 << 10, 1, 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := walOptions{segmentSize: tc.segSize}
			w, _ := walTestOpenWith(t, dir, 0, 0, opts)
			if w.zeroedTo <= w.size {
				t.Fatalf("a new segment is written to %d, its preamble ends at %d: want zeros past it", w.zeroedTo, w.size)
			}
			var want []raftpb.Entry
			for i := 0; i < tc.batches; i++ {
				ents := walTestEnts(uint64(i+1), uint64(i+1), 1, tc.size)
				if err := w.Save(raftpb.HardState{Term: 1, Commit: uint64(i + 1)}, ents); err != nil {
					t.Fatal(err)
				}
				want = append(want, ents...)
				if w.size >= tc.segSize {
					t.Fatalf("the test's batches reached the segment's size")
				}
				wantTo := min((w.size+walZeroAhead+4095)&^4095, tc.segSize)
				if w.zeroedTo < w.size || w.zeroedTo > wantTo {
					t.Fatalf("batch %d: written to %d, records end at %d: want zeros up to at most %d", i, w.zeroedTo, w.size, wantTo)
				}
			}
			path := w.segs[len(w.segs)-1].path
			records, zeroedTo := w.size, w.zeroedTo
			w.Close()
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != tc.segSize {
				t.Skipf("file system did not preallocate (size %d)", fi.Size())
			}
			if zeroedTo <= records && records < tc.segSize {
				t.Fatalf("written to %d, want zeros past the records' end %d", zeroedTo, records)
			}
			// before anything reads the file: read pages of unwritten space
			// count as data to lseek
			end := walDataEnd(path, int(fi.Size()))
			if end < int(zeroedTo) {
				t.Fatalf("the file system reports data up to %d, the log wrote up to %d", end, zeroedTo)
			}
			if zeroedTo < tc.segSize && end >= int(tc.segSize) {
				t.Fatalf("data end %d: the space past the zeros was written too", end)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !walAllZero(data[records:]) {
				t.Fatal("bytes past the records are not zero")
			}

			w, st := walTestOpenWith(t, dir, 0, 0, opts)
			walTestCheckEnts(t, st.Entries, want)
			if w.zeroedTo != w.size {
				t.Fatalf("reopened: written to %d, want the records' end %d (nothing past it is known)", w.zeroedTo, w.size)
			}
			more := walTestEnts(uint64(len(want)+1), uint64(len(want)+1), 1, tc.size)
			if err := w.Save(raftpb.HardState{Term: 1, Commit: uint64(len(want) + 1)}, more); err != nil {
				t.Fatal(err)
			}
			w.Close()
			_, st = walTestOpenWith(t, dir, 0, 0, opts)
			walTestCheckEnts(t, st.Entries, append(want, more...))
		})
	}
}

// BenchmarkWALFdatasyncAhead measures what walZeroAhead is for: 3 kB writes,
// each followed by fdatasync (a batch of about 20 writes from 64 clients),
// into preallocated space never written ("unwritten") and into space the log
// wrote zeros into first ("zeroed"). Run with -benchtime=3000x on the disk
// the data dir is on; TMPDIR picks it.
func BenchmarkWALFdatasyncAhead(b *testing.B) {
	for _, zeroed := range []bool{false, true} {
		name := "unwritten"
		if zeroed {
			name = "zeroed"
		}
		b.Run(name, func(b *testing.B) {
			batch := bytes.Repeat([]byte{'x'}, 3000)
			size := int64(b.N+1) * int64(len(batch))
			f, err := os.Create(filepath.Join(b.TempDir(), "seg"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			walPreallocate(f, size)
			if zeroed {
				if _, err := f.WriteAt(make([]byte, size), 0); err != nil {
					b.Fatal(err)
				}
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := f.WriteAt(batch, int64(i)*int64(len(batch))); err != nil {
					b.Fatal(err)
				}
				if err := walFdatasync(f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
