// Tests of the write-ahead log.

package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// walTestMeta is the member used by most WAL tests.
var walTestMeta = WALMetadata{MemberID: 0x1111, ClusterID: 0x2222, Name: "node-a"}

// walTestEnts returns entries first..last of term with size-byte payloads.
func walTestEnts(first, last, term uint64, size int) []raftpb.Entry {
	var ents []raftpb.Entry
	for i := first; i <= last; i++ {
		data := bytes.Repeat([]byte{byte(i), byte(term)}, size/2+1)[:size]
		ents = append(ents, raftpb.Entry{Index: i, Term: term, Type: raftpb.EntryNormal, Data: data})
	}
	return ents
}

// walTestOpen opens the WAL in dir as a member does or fails the test.
func walTestOpen(t testing.TB, dir string, snapIndex, snapTerm uint64) (*WAL, *WALState) {
	t.Helper()
	return walTestOpenWith(t, dir, snapIndex, snapTerm, walOptions{})
}

// walTestOpenWith opens the WAL in dir with opts or fails the test.
func walTestOpenWith(t testing.TB, dir string, snapIndex, snapTerm uint64, opts walOptions) (*WAL, *WALState) {
	t.Helper()
	w, st, err := OpenWAL(dir, walTestMeta, snapIndex, snapTerm, opts)
	if err != nil {
		t.Fatalf("OpenWAL: %v", err)
	}
	return w, st
}

// walTestSegs lists the segment files in dir.
func walTestSegs(t *testing.T, dir string) []walSegmentInfo {
	t.Helper()
	segs, _, err := walListSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// walTestRecordOffsets returns the offsets of the records in a clean segment.
func walTestRecordOffsets(t *testing.T, data []byte) []int {
	t.Helper()
	prev := binary.LittleEndian.Uint32(data[12:16])
	var offs []int
	for off := walSegHeaderSize; off < len(data); {
		rec, st := walDecodeRecord(data, off, prev)
		if st != walRecOK {
			t.Fatalf("record at %d: %v", off, st)
		}
		offs = append(offs, off)
		prev, off = rec.crc, rec.end
	}
	return offs
}

// walTestCheckEnts compares entries by index, term and data.
func walTestCheckEnts(t *testing.T, got, want []raftpb.Entry) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("entries differ:\n got  %s\n want %s", walTestDescribe(got), walTestDescribe(want))
	}
}

// walTestDescribe lists index/term pairs of entries.
func walTestDescribe(ents []raftpb.Entry) string {
	var b strings.Builder
	for _, e := range ents {
		fmt.Fprintf(&b, "%d/%d ", e.Index, e.Term)
	}
	return b.String()
}

// walTestCopyDir copies the regular files of src into a new temp dir.
func walTestCopyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(src, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, de.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// walTestCheckCorrupt checks that err reports damage in path at offset off.
func walTestCheckCorrupt(t *testing.T, err error, path string, off int) {
	t.Helper()
	if err == nil {
		t.Fatalf("OpenWAL succeeded, want an error for %s at offset %d", path, off)
	}
	if !errors.Is(err, walErrCorrupt) {
		t.Fatalf("error %v does not wrap walErrCorrupt", err)
	}
	if want := fmt.Sprintf("%s at offset %d", path, off); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name %q", err, want)
	}
}

func TestWALRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "member", "wal")
	if walExists(dir) {
		t.Fatal("walExists before creation")
	}
	w, st := walTestOpen(t, dir, 0, 0)
	if !walExists(dir) {
		t.Fatal("walExists false after creation")
	}
	if len(st.Entries) != 0 || st.HardState != (raftpb.HardState{}) {
		t.Fatalf("fresh state not empty: %+v", st)
	}
	all := walTestEnts(1, 7, 1, 40)
	all = append(all, raftpb.Entry{Index: 8, Term: 2}) // no data
	saves := []struct {
		hs   raftpb.HardState
		ents []raftpb.Entry
	}{
		{raftpb.HardState{Term: 1, Vote: 1, Commit: 0}, all[0:3]},
		{raftpb.HardState{Term: 1, Vote: 1, Commit: 3}, all[3:5]},
		{raftpb.HardState{}, all[5:7]},
		{raftpb.HardState{Term: 2, Vote: 1, Commit: 7}, nil},
		{raftpb.HardState{}, all[7:8]},
	}
	for _, s := range saves {
		if err := w.Save(s.hs, s.ents); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(raftpb.HardState{Term: 3}, nil); !errors.Is(err, walErrClosed) {
		t.Fatalf("Save after Close: %v", err)
	}
	if m, err := walReadMetadata(dir); err != nil || m != walTestMeta {
		t.Fatalf("walReadMetadata = %+v, %v", m, err)
	}

	w, st = walTestOpen(t, dir, 0, 0)
	if want := (raftpb.HardState{Term: 2, Vote: 1, Commit: 7}); st.HardState != want {
		t.Fatalf("hard state %+v, want %+v", st.HardState, want)
	}
	walTestCheckEnts(t, st.Entries, all)
	more := walTestEnts(9, 10, 2, 10)
	if err := w.Save(raftpb.HardState{Term: 2, Vote: 1, Commit: 10}, more); err != nil {
		t.Fatal(err)
	}
	w.Close()
	_, st = walTestOpen(t, dir, 0, 0)
	walTestCheckEnts(t, st.Entries, append(all, more...))
	if st.HardState.Commit != 10 {
		t.Fatalf("commit %d, want 10", st.HardState.Commit)
	}
}

func TestWALSaveRejectsGaps(t *testing.T) {
	w, _ := walTestOpen(t, t.TempDir(), 0, 0)
	defer w.Close()
	if err := w.Save(raftpb.HardState{}, walTestEnts(2, 3, 1, 8)); err == nil {
		t.Fatal("Save accepted a first entry after a gap")
	}
	ents := walTestEnts(1, 3, 1, 8)
	ents[2].Index = 4
	if err := w.Save(raftpb.HardState{}, ents); err == nil {
		t.Fatal("Save accepted non-consecutive entries")
	}
	if err := w.Save(raftpb.HardState{}, walTestEnts(1, 3, 1, 8)); err != nil {
		t.Fatalf("Save after rejected batches: %v", err)
	}
}

func TestWALConflictingEntriesReplaced(t *testing.T) {
	tests := []struct {
		name  string
		saves [][]raftpb.Entry
		want  []raftpb.Entry
	}{
		{
			name:  "replace tail",
			saves: [][]raftpb.Entry{walTestEnts(1, 5, 1, 8), walTestEnts(4, 4, 2, 8)},
			want:  append(walTestEnts(1, 3, 1, 8), walTestEnts(4, 4, 2, 8)...),
		},
		{
			name:  "replace from the start",
			saves: [][]raftpb.Entry{walTestEnts(1, 5, 1, 8), walTestEnts(1, 2, 3, 8)},
			want:  walTestEnts(1, 2, 3, 8),
		},
		{
			name:  "replace then extend",
			saves: [][]raftpb.Entry{walTestEnts(1, 5, 1, 8), walTestEnts(3, 6, 2, 8), walTestEnts(7, 8, 2, 8)},
			want:  append(walTestEnts(1, 2, 1, 8), walTestEnts(3, 8, 2, 8)...),
		},
		{
			name:  "rewrite same index",
			saves: [][]raftpb.Entry{walTestEnts(1, 3, 1, 8), walTestEnts(3, 3, 2, 8), walTestEnts(3, 3, 3, 8)},
			want:  append(walTestEnts(1, 2, 1, 8), walTestEnts(3, 3, 3, 8)...),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w, _ := walTestOpen(t, dir, 0, 0)
			for _, ents := range tt.saves {
				if err := w.Save(raftpb.HardState{Term: ents[0].Term}, ents); err != nil {
					t.Fatal(err)
				}
			}
			w.Close()
			_, st := walTestOpen(t, dir, 0, 0)
			walTestCheckEnts(t, st.Entries, tt.want)
		})
	}
}

func TestWALRotation(t *testing.T) {
	const segSize int64 = 1024
	opts := walOptions{segmentSize: segSize}
	dir := t.TempDir()
	w, _ := walTestOpenWith(t, dir, 0, 0, opts)
	var all []raftpb.Entry
	// 30 batches of 4 entries of 100 bytes (about 500 bytes): about 15 segments.
	for b := uint64(0); b < 30; b++ {
		ents := walTestEnts(b*4+1, b*4+4, 1+b/10, 100)
		all = append(all, ents...)
		if err := w.Save(raftpb.HardState{Term: 1 + b/10, Commit: b * 4}, ents); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	segs := walTestSegs(t, dir)
	if len(segs) < 10 {
		t.Fatalf("%d segments, want at least 10", len(segs))
	}
	for i, s := range segs {
		if s.seq != uint64(i) {
			t.Fatalf("segment %d has sequence %d", i, s.seq)
		}
		if i > 0 && (s.first-1)%4 != 0 {
			t.Fatalf("segment %s does not start at a batch boundary", s.path)
		}
	}
	w, st := walTestOpenWith(t, dir, 0, 0, opts)
	walTestCheckEnts(t, st.Entries, all)
	if st.HardState.Commit != 116 {
		t.Fatalf("commit %d, want 116", st.HardState.Commit)
	}
	// Continue after reopening; a conflict crosses a segment boundary.
	ents := walTestEnts(50, 60, 9, 100)
	if err := w.Save(raftpb.HardState{Term: 9, Commit: 49}, ents); err != nil {
		t.Fatal(err)
	}
	w.Close()
	_, st = walTestOpenWith(t, dir, 0, 0, opts)
	walTestCheckEnts(t, st.Entries, append(all[:49:49], ents...))
}

func TestWALReleaseTo(t *testing.T) {
	const segSize int64 = 1024
	opts := walOptions{segmentSize: segSize}
	tests := []struct {
		name     string
		maxFiles int
		release  uint64
	}{
		{"unlimited keeps all", 0, 100},
		{"max 5", 5, 100},
		{"max 1", 1, 100},
		{"max 1 old snapshot", 1, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w, _ := walTestOpenWith(t, dir, 0, 0, opts)
			w.maxFiles = tt.maxFiles
			for i := uint64(1); i <= 120; i += 4 {
				if err := w.Save(raftpb.HardState{Term: 1, Commit: i + 3}, walTestEnts(i, i+3, 1, 100)); err != nil {
					t.Fatal(err)
				}
				if i+3 == tt.release {
					if err := w.SaveSnapshot(tt.release, 1); err != nil {
						t.Fatal(err)
					}
				}
			}
			before := walTestSegs(t, dir)
			if err := w.ReleaseTo(tt.release); err != nil {
				t.Fatal(err)
			}
			after := walTestSegs(t, dir)
			switch {
			case tt.maxFiles == 0:
				if len(after) != len(before) {
					t.Fatalf("removed segments with unlimited max: %d -> %d", len(before), len(after))
				}
			default:
				if len(after) >= len(before) {
					t.Fatalf("nothing removed: %d segments", len(after))
				}
				if len(after) < tt.maxFiles {
					t.Fatalf("%d segments left, want at least %d", len(after), tt.maxFiles)
				}
			}
			if after[0].first-1 > tt.release {
				t.Fatalf("segment %s needed after index %d was removed", after[0].path, tt.release)
			}
			if removed := len(before) - len(after); removed > 0 {
				// the first kept segment is exactly the one after the removed ones
				if after[0].seq != before[removed].seq {
					t.Fatalf("kept segments do not continue the removed ones")
				}
				if before[removed].first-1 > tt.release {
					t.Fatal("removed a segment holding entries after the release index")
				}
			}
			w.Close()

			usable, err := walSnapshotUsable(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !usable(tt.release, 1) {
				t.Fatalf("snapshot %d not usable after release", tt.release)
			}
			if usable(tt.release, 2) || usable(tt.release+4, 1) {
				t.Fatal("snapshot without marker reported usable")
			}
			_, st := walTestOpenWith(t, dir, tt.release, 1, opts)
			walTestCheckEnts(t, st.Entries, walTestEnts(tt.release+1, 120, 1, 100))
			if st.Snapshot.Index != tt.release || st.Snapshot.Term != 1 {
				t.Fatalf("snapshot marker %+v", st.Snapshot)
			}
			if removed := len(before) - len(after); removed > 0 {
				if _, _, err := OpenWAL(dir, walTestMeta, 0, 0, opts); err == nil {
					t.Fatal("replay from index 0 succeeded after segments were removed")
				}
			}
		})
	}
}

// walTestBuild writes a WAL with entries 1..n (batches of one) and returns
// the last segment's path, the offset of its last record and its size.
// It opens the log with opts.
func walTestBuild(t *testing.T, dir string, n uint64, opts walOptions) (string, int, int) {
	t.Helper()
	w, _ := walTestOpenWith(t, dir, 0, 0, opts)
	for i := uint64(1); i <= n; i++ {
		if err := w.Save(raftpb.HardState{}, walTestEnts(i, i, 1, 30)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	segs := walTestSegs(t, dir)
	path := segs[len(segs)-1].path
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	offs := walTestRecordOffsets(t, data)
	return path, offs[len(offs)-1], len(data)
}

func TestWALTornTailEveryOffset(t *testing.T) {
	opts := walOptions{noPrealloc: true}
	src := t.TempDir()
	path, lastOff, size := walTestBuild(t, src, 3, opts)
	name := filepath.Base(path)
	if size-lastOff < 40 {
		t.Fatalf("last record only %d bytes", size-lastOff)
	}
	for cut := lastOff; cut < size; cut++ {
		dir := walTestCopyDir(t, src)
		if err := os.Truncate(filepath.Join(dir, name), int64(cut)); err != nil {
			t.Fatal(err)
		}
		w, st, err := OpenWAL(dir, walTestMeta, 0, 0, opts)
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		walTestCheckEnts(t, st.Entries, walTestEnts(1, 2, 1, 30))
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() != int64(lastOff) {
			t.Fatalf("cut at %d: file not truncated to %d (%v)", cut, lastOff, err)
		}
		repl := walTestEnts(3, 4, 2, 30)
		if err := w.Save(raftpb.HardState{Term: 2}, repl); err != nil {
			t.Fatalf("cut at %d: save: %v", cut, err)
		}
		w.Close()
		_, st = walTestOpenWith(t, dir, 0, 0, opts)
		walTestCheckEnts(t, st.Entries, append(walTestEnts(1, 2, 1, 30), repl...))
	}
}

func TestWALDamage(t *testing.T) {
	const segSize int64 = 1024
	opts := walOptions{segmentSize: segSize, noPrealloc: true}
	tests := []struct {
		name string
		// damage changes the segment files in dir; it returns the path and
		// offset the error must name, or an empty path if recovery is expected.
		damage func(t *testing.T, segs []walSegmentInfo) (string, int)
	}{
		{
			name: "bit flip in a middle record payload",
			damage: func(t *testing.T, segs []walSegmentInfo) (string, int) {
				return walTestFlip(t, segs[len(segs)-1].path, -2, walRecHeaderSize+5)
			},
		},
		{
			name: "bit flip in a middle record length",
			damage: func(t *testing.T, segs []walSegmentInfo) (string, int) {
				return walTestFlip(t, segs[len(segs)-1].path, -2, 2)
			},
		},
		{
			name: "bit flip in an older segment",
			damage: func(t *testing.T, segs []walSegmentInfo) (string, int) {
				return walTestFlip(t, segs[1].path, 3, walRecHeaderSize+1)
			},
		},
		{
			name: "bit flip in the last record is a torn tail",
			damage: func(t *testing.T, segs []walSegmentInfo) (string, int) {
				walTestFlip(t, segs[len(segs)-1].path, -1, walRecHeaderSize+1)
				return "", 0
			},
		},
		{
			name: "truncated older segment",
			damage: func(t *testing.T, segs []walSegmentInfo) (string, int) {
				_, off := walTestFlip(t, segs[1].path, 3, -1)
				if err := os.Truncate(segs[1].path, int64(off+3)); err != nil {
					t.Fatal(err)
				}
				return segs[1].path, off
			},
		},
		{
			name: "truncated header of an older segment",
			damage: func(t *testing.T, segs []walSegmentInfo) (string, int) {
				if err := os.Truncate(segs[1].path, 20); err != nil {
					t.Fatal(err)
				}
				return segs[1].path, 0
			},
		},
		{
			name: "sequence gap",
			damage: func(t *testing.T, segs []walSegmentInfo) (string, int) {
				if err := os.Remove(segs[2].path); err != nil {
					t.Fatal(err)
				}
				return segs[3].path, 0
			},
		},
		{
			name: "segment swapped with another name",
			damage: func(t *testing.T, segs []walSegmentInfo) (string, int) {
				b, err := os.ReadFile(segs[2].path)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(segs[1].path, b, 0o600); err != nil {
					t.Fatal(err)
				}
				return segs[1].path, 0
			},
		},
		{
			name: "two records swapped",
			damage: func(t *testing.T, segs []walSegmentInfo) (string, int) {
				data, err := os.ReadFile(segs[1].path)
				if err != nil {
					t.Fatal(err)
				}
				offs := walTestRecordOffsets(t, data)
				a, b, end := offs[3], offs[4], offs[5]
				if b-a != end-b {
					t.Fatalf("records differ in size: %d, %d", b-a, end-b)
				}
				swapped := append(append(append([]byte(nil), data[:a]...), data[b:end]...), data[a:b]...)
				swapped = append(swapped, data[end:]...)
				if err := os.WriteFile(segs[1].path, swapped, 0o600); err != nil {
					t.Fatal(err)
				}
				return segs[1].path, a
			},
		},
		{
			name: "non-zero garbage tail is torn",
			damage: func(t *testing.T, segs []walSegmentInfo) (string, int) {
				walTestAppend(t, segs[len(segs)-1].path, bytes.Repeat([]byte{0xa5}, 100))
				return "", 0
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w, _ := walTestOpenWith(t, dir, 0, 0, opts)
			var want []raftpb.Entry
			for i := uint64(1); i <= 60; i += 3 {
				ents := walTestEnts(i, i+2, 1, 60)
				want = append(want, ents...)
				if err := w.Save(raftpb.HardState{Term: 1, Commit: i}, ents); err != nil {
					t.Fatal(err)
				}
			}
			w.Close()
			segs := walTestSegs(t, dir)
			if len(segs) < 4 {
				t.Fatalf("only %d segments", len(segs))
			}
			path, off := tt.damage(t, segs)
			w, st, err := OpenWAL(dir, walTestMeta, 0, 0, opts)
			if path != "" {
				walTestCheckCorrupt(t, err, path, off)
				return
			}
			if err != nil {
				t.Fatalf("expected recovery: %v", err)
			}
			walTestCheckEnts(t, st.Entries, want[:len(st.Entries)])
			if len(want)-len(st.Entries) > 3 {
				t.Fatalf("recovered %d of %d entries", len(st.Entries), len(want))
			}
			next := walTestEnts(uint64(len(st.Entries))+1, uint64(len(st.Entries))+1, 2, 10)
			if err := w.Save(raftpb.HardState{Term: 2}, next); err != nil {
				t.Fatal(err)
			}
			w.Close()
			_, st2 := walTestOpenWith(t, dir, 0, 0, opts)
			walTestCheckEnts(t, st2.Entries, append(st.Entries, next...))
		})
	}
}

// walTestFlip flips one bit at byte delta of record rec (negative: counted
// from the end, -1 is the last) of the segment at path; a negative delta
// flips nothing. It returns path and the record's offset.
func walTestFlip(t *testing.T, path string, rec, delta int) (string, int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	offs := walTestRecordOffsets(t, data)
	if rec < 0 {
		rec += len(offs)
	}
	if rec < 0 || rec >= len(offs) {
		t.Fatalf("segment has only %d records", len(offs))
	}
	off := offs[rec]
	if delta >= 0 {
		data[off+delta] ^= 0x10
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return path, off
}

// walTestAppend appends b to the file at path.
func walTestAppend(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestWALZeroFilledTail(t *testing.T) {
	opts := walOptions{noPrealloc: true}
	dir := t.TempDir()
	path, _, size := walTestBuild(t, dir, 5, opts)
	walTestAppend(t, path, make([]byte, 8192))
	w, st := walTestOpenWith(t, dir, 0, 0, opts)
	walTestCheckEnts(t, st.Entries, walTestEnts(1, 5, 1, 30))
	// zeros are what a preallocated segment ends with: kept, and written over
	if fi, err := os.Stat(path); err != nil || fi.Size() != int64(size)+8192 {
		t.Fatalf("zero tail changed (%v)", err)
	}
	if err := w.Save(raftpb.HardState{Term: 1, Commit: 6}, walTestEnts(6, 6, 1, 30)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	_, st = walTestOpenWith(t, dir, 0, 0, opts)
	walTestCheckEnts(t, st.Entries, walTestEnts(1, 6, 1, 30))
}

func TestWALTruncatedSegmentHeader(t *testing.T) {
	const segSize int64 = 512
	opts := walOptions{segmentSize: segSize}
	for _, cut := range []int64{0, 1, 20, walSegHeaderSize - 1, walSegHeaderSize, walSegHeaderSize + 10} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			dir := t.TempDir()
			w, _ := walTestOpenWith(t, dir, 0, 0, opts)
			for i := uint64(1); i <= 12; i++ {
				if err := w.Save(raftpb.HardState{Term: 1, Commit: i}, walTestEnts(i, i, 1, 100)); err != nil {
					t.Fatal(err)
				}
			}
			w.Close()
			segs := walTestSegs(t, dir)
			last := segs[len(segs)-1]
			if err := os.Truncate(last.path, cut); err != nil {
				t.Fatal(err)
			}
			w, st := walTestOpenWith(t, dir, 0, 0, opts)
			walTestCheckEnts(t, st.Entries, walTestEnts(1, last.first-1, 1, 100))
			if st.HardState.Commit == 0 {
				t.Fatal("hard state lost")
			}
			if err := w.Save(raftpb.HardState{Term: 2, Commit: 3}, walTestEnts(last.first, last.first, 2, 10)); err != nil {
				t.Fatal(err)
			}
			w.Close()
			_, st = walTestOpenWith(t, dir, 0, 0, opts)
			want := append(walTestEnts(1, last.first-1, 1, 100), walTestEnts(last.first, last.first, 2, 10)...)
			walTestCheckEnts(t, st.Entries, want)
		})
	}
}

func TestWALWrongMember(t *testing.T) {
	opts := walOptions{noPrealloc: true}
	dir := t.TempDir()
	walTestBuild(t, dir, 2, opts)
	segs := walTestSegs(t, dir)
	for _, meta := range []WALMetadata{
		{MemberID: 9, ClusterID: walTestMeta.ClusterID, Name: walTestMeta.Name},
		{MemberID: walTestMeta.MemberID, ClusterID: 9, Name: walTestMeta.Name},
		{MemberID: walTestMeta.MemberID, ClusterID: walTestMeta.ClusterID, Name: "other"},
	} {
		_, _, err := OpenWAL(dir, meta, 0, 0, opts)
		data, _ := os.ReadFile(segs[0].path)
		walTestCheckCorrupt(t, err, segs[0].path, walTestRecordOffsets(t, data)[1])
	}
}

func TestWALSnapshotMarkers(t *testing.T) {
	dir := t.TempDir()
	w, _ := walTestOpen(t, dir, 0, 0)
	if err := w.Save(raftpb.HardState{Term: 1, Commit: 10}, walTestEnts(1, 10, 1, 20)); err != nil {
		t.Fatal(err)
	}
	if err := w.SaveSnapshot(5, 1); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(raftpb.HardState{Term: 1, Commit: 12}, walTestEnts(11, 12, 1, 20)); err != nil {
		t.Fatal(err)
	}
	w.Close()

	tests := []struct {
		name      string
		snapIndex uint64
		snapTerm  uint64
		want      []raftpb.Entry
		wantSnap  uint64
		wantErr   bool
	}{
		{"from start", 0, 0, walTestEnts(1, 12, 1, 20), 0, false},
		{"from marker", 5, 1, walTestEnts(6, 12, 1, 20), 5, false},
		{"from unrecorded snapshot", 8, 1, walTestEnts(9, 12, 1, 20), 5, false},
		{"term mismatch at marker", 5, 2, nil, 0, true},
		{"term mismatch at entry", 8, 3, nil, 0, true},
		{"beyond commit", 13, 1, nil, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, st, err := OpenWAL(dir, walTestMeta, tt.snapIndex, tt.snapTerm, walOptions{})
			if tt.wantErr {
				if err == nil {
					t.Fatal("OpenWAL succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			walTestCheckEnts(t, st.Entries, tt.want)
			if st.Snapshot.Index != tt.wantSnap {
				t.Fatalf("snapshot marker %d, want %d", st.Snapshot.Index, tt.wantSnap)
			}
		})
	}
	usable, err := walSnapshotUsable(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !usable(5, 1) || usable(5, 2) || usable(8, 1) {
		t.Fatal("walSnapshotUsable wrong")
	}
}

func TestWALSnapshotFromLeader(t *testing.T) {
	const segSize int64 = 700
	opts := walOptions{segmentSize: segSize}
	dir := t.TempDir()
	w, _ := walTestOpenWith(t, dir, 0, 0, opts)
	steps := []func() error{
		func() error { return w.Save(raftpb.HardState{Term: 1, Commit: 5}, walTestEnts(1, 10, 1, 20)) },
		// The leader's snapshot at 8 disagrees with entry 8: it replaces the log.
		func() error { return w.SaveSnapshot(8, 2) },
		func() error { return w.Save(raftpb.HardState{Term: 2, Commit: 8}, nil) },
		func() error { return w.Save(raftpb.HardState{Term: 2, Commit: 8}, walTestEnts(9, 9, 2, 20)) },
		// A snapshot beyond the log jumps ahead.
		func() error { return w.SaveSnapshot(30, 3) },
		func() error { return w.Save(raftpb.HardState{Term: 3, Commit: 30}, walTestEnts(31, 32, 3, 20)) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	w.Close()
	if len(walTestSegs(t, dir)) < 2 {
		t.Fatal("expected rotation")
	}
	usable, err := walSnapshotUsable(dir)
	if err != nil {
		t.Fatal(err)
	}
	if usable(8, 2) || !usable(30, 3) {
		t.Fatal("usable: only the snapshot at 30 can be replayed from")
	}
	if _, _, err := OpenWAL(dir, walTestMeta, 8, 2, opts); err == nil {
		t.Fatal("replay from 8 succeeded though the log was replaced at 30")
	}
	w, st := walTestOpenWith(t, dir, 30, 3, opts)
	walTestCheckEnts(t, st.Entries, walTestEnts(31, 32, 3, 20))
	if st.Snapshot.Index != 30 {
		t.Fatalf("marker %+v", st.Snapshot)
	}
	if err := w.Save(raftpb.HardState{Term: 3, Commit: 33}, walTestEnts(33, 33, 3, 20)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	_, st = walTestOpenWith(t, dir, 30, 3, opts)
	walTestCheckEnts(t, st.Entries, walTestEnts(31, 33, 3, 20))

	// Replaced log, replayed from the replacing snapshot.
	dir2 := t.TempDir()
	w, _ = walTestOpenWith(t, dir2, 0, 0, opts)
	if err := w.Save(raftpb.HardState{Term: 1, Commit: 5}, walTestEnts(1, 10, 1, 20)); err != nil {
		t.Fatal(err)
	}
	if err := w.SaveSnapshot(8, 2); err != nil {
		t.Fatal(err)
	}
	if err := w.Save(raftpb.HardState{Term: 2, Commit: 8}, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	_, st = walTestOpenWith(t, dir2, 8, 2, opts)
	if len(st.Entries) != 0 {
		t.Fatalf("stale entries after a replacing snapshot: %s", walTestDescribe(st.Entries))
	}
}

func TestWALOnDiskEntryGap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, walSegmentName(0, 1))
	buf, c := walAppendSegHeader(nil, 0, 1)
	buf, c = walAppendRecord(buf, walTypeCRC, make([]byte, 4), c)
	buf, c = walAppendRecord(buf, walTypeMetadata, walEncodeMetadata(walTestMeta), c)
	gapOff := 0
	for _, i := range []uint64{1, 2, 4} {
		if i == 4 {
			gapOff = len(buf)
		}
		e := raftpb.Entry{Index: i, Term: 1}
		var err error
		if buf, c, err = walAppendEntry(buf, &e, c); err != nil {
			t.Fatal(err)
		}
	}
	buf, _ = walAppendMarker(buf, walMarker{4, 1}, 0, c) // a valid record after the bad one
	if err := os.WriteFile(path, buf, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := OpenWAL(dir, walTestMeta, 0, 0, walOptions{})
	walTestCheckCorrupt(t, err, path, gapOff)
}

func TestWALFreshFromSnapshot(t *testing.T) {
	dir := t.TempDir()
	usable, err := walSnapshotUsable(dir)
	if err != nil || usable(50, 4) {
		t.Fatalf("usable without a log: %v", err)
	}
	w, st := walTestOpen(t, dir, 50, 4)
	if usable, err = walSnapshotUsable(dir); err != nil || !usable(50, 4) || usable(51, 4) {
		t.Fatalf("snapshot the log was created from is not usable (%v)", err)
	}
	if st.Snapshot.Index != 50 || st.Snapshot.Term != 4 {
		t.Fatalf("snapshot %+v", st.Snapshot)
	}
	if err := w.Save(raftpb.HardState{Term: 4, Commit: 52}, walTestEnts(51, 52, 4, 10)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	_, st = walTestOpen(t, dir, 50, 4)
	walTestCheckEnts(t, st.Entries, walTestEnts(51, 52, 4, 10))
	if _, _, err := OpenWAL(dir, walTestMeta, 0, 0, walOptions{}); err == nil {
		t.Fatal("replay from 0 of a log starting at 51 succeeded")
	}
}

func TestDataDirLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	release, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockDataDir(dir); err == nil || !strings.Contains(err.Error(), "in use by another etcdlite process") {
		t.Fatalf("second lock: %v", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
	release2, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("relock: %v", err)
	}
	if err := release2(); err != nil {
		t.Fatal(err)
	}
}

// walFuzzSegment builds a clean segment (sequence 0, first index 1) for the
// fuzz seeds.
func walFuzzSegment(ents []raftpb.Entry, hs raftpb.HardState, marker uint64) []byte {
	buf, c := walAppendSegHeader(nil, 0, 1)
	buf, c = walAppendRecord(buf, walTypeCRC, make([]byte, 4), c)
	buf, c = walAppendRecord(buf, walTypeMetadata, walEncodeMetadata(walTestMeta), c)
	for i := range ents {
		buf, c, _ = walAppendEntry(buf, &ents[i], c)
		if ents[i].Index == marker {
			buf, c = walAppendMarker(buf, walMarker{marker, ents[i].Term}, 0, c)
		}
	}
	buf, _, _ = walAppendHardState(buf, &hs, c)
	return buf
}

// walFuzzReplay replays data as one segment.
func walFuzzReplay(data []byte, isLast bool) (*walReplay, error) {
	r := &walReplay{meta: &walTestMeta, strict: true, keep: true}
	seg := walSegmentInfo{seq: 0, first: 1, path: "fuzz.wal"}
	return r, r.segment(seg, data, isLast, false)
}

// walFuzzProgram turns fuzz bytes into a well-framed segment, so that the
// replay logic behind the checksums is exercised too. Each operation is an
// opcode byte followed by its arguments: an entry near the end of the log
// (possibly replacing entries), a hard state, a snapshot marker, or a raw
// record of any type. It also returns the entries a plain model of the log
// expects, or ok false if the program wrote anything but entries and hard
// states.
func walFuzzProgram(data []byte) (seg []byte, want []raftpb.Entry, ok bool) {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	buf, c := walAppendSegHeader(nil, 0, 1)
	buf, c = walAppendRecord(buf, walTypeCRC, make([]byte, 4), c)
	buf, c = walAppendRecord(buf, walTypeMetadata, walEncodeMetadata(walTestMeta), c)
	ok = true
	last := uint64(0)
	for len(data) > 0 {
		switch next() % 4 {
		case 0:
			back := uint64(next() % 4)
			index := last + 1
			if back < index {
				index -= back
			}
			e := raftpb.Entry{Index: index, Term: uint64(next())}
			if n := int(next() % 16); n > 0 {
				e.Data = bytes.Repeat([]byte{byte(n)}, n)
			}
			buf, c, _ = walAppendEntry(buf, &e, c)
			if index <= uint64(len(want))+1 {
				want = append(want[:index-1], e)
			}
			last = index
		case 1:
			hs := raftpb.HardState{Term: uint64(next()), Vote: uint64(next()), Commit: uint64(next())}
			buf, c, _ = walAppendHardState(buf, &hs, c)
		case 2:
			m := walMarker{index: last + uint64(next()%8), term: uint64(next())}
			if m.index > 4 {
				m.index -= 4
			}
			buf, c = walAppendMarker(buf, m, uint64(next()%2), c)
			ok = false
		case 3:
			typ := walTypeCRC + next()%5
			n := int(next() % 32)
			p := make([]byte, n)
			for i := range p {
				p[i] = next()
			}
			buf, c = walAppendRecord(buf, typ, p, c)
			ok = false
		}
	}
	return buf, want, ok
}

// walFuzzCheck checks the invariants of a successful replay of data.
func walFuzzCheck(t *testing.T, data []byte, r *walReplay) {
	for i, e := range r.ents {
		if e.Index != uint64(i)+1 {
			t.Fatalf("entry %d has index %d", i, e.Index)
		}
	}
	if r.validEnd > len(data) {
		t.Fatalf("valid end %d beyond %d bytes", r.validEnd, len(data))
	}
	if r.rebuild {
		return
	}
	// Cutting at the valid end must give the same state with no damage.
	r2, err := walFuzzReplay(data[:r.validEnd], true)
	if err != nil {
		t.Fatalf("valid prefix does not replay: %v", err)
	}
	if r2.torn || r2.rebuild || !reflect.DeepEqual(r.ents, r2.ents) || r.hs != r2.hs || r2.validEnd != r.validEnd {
		t.Fatal("valid prefix replays to a different state")
	}
}

func FuzzWALDecode(f *testing.F) {
	f.Add(walFuzzSegment(walTestEnts(1, 3, 1, 10), raftpb.HardState{Term: 1, Commit: 2}, 0))
	f.Add(walFuzzSegment(append(walTestEnts(1, 4, 1, 5), walTestEnts(3, 5, 2, 5)...), raftpb.HardState{Term: 2, Vote: 1}, 2))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := walFuzzReplay(data, true)
		rNotLast, errNotLast := walFuzzReplay(data, false)
		if errNotLast == nil && (err != nil || !reflect.DeepEqual(r.ents, rNotLast.ents) || r.torn) {
			t.Fatalf("a clean segment replays differently as the last segment: %v", err)
		}
		if err != nil {
			if !errors.Is(err, walErrCorrupt) {
				t.Fatalf("error does not wrap walErrCorrupt: %v", err)
			}
			return
		}
		walFuzzCheck(t, data, r)

		// The same bytes as a program of well-framed records.
		seg, want, plain := walFuzzProgram(data)
		r, err = walFuzzReplay(seg, true)
		if err != nil {
			if !errors.Is(err, walErrCorrupt) {
				t.Fatalf("error does not wrap walErrCorrupt: %v", err)
			}
			if plain {
				// only gap-free entries and hard states: must not fail
				t.Fatalf("clean program failed: %v", err)
			}
			return
		}
		if r.torn || r.rebuild || r.validEnd != len(seg) {
			t.Fatalf("well-framed segment treated as damaged (torn %v, rebuild %v)", r.torn, r.rebuild)
		}
		walFuzzCheck(t, seg, r)
		if plain {
			walTestCheckEnts(t, r.ents, want)
		}
	})
}

func BenchmarkWALSave(b *testing.B) {
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			w, _ := walTestOpen(b, b.TempDir(), 0, 0)
			defer w.Close()
			ents := walTestEnts(1, uint64(n), 1, 100)
			b.ReportAllocs()
			b.SetBytes(int64(n * 100))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range ents {
					ents[j].Index = uint64(i*n + j + 1)
				}
				if err := w.Save(raftpb.HardState{Term: 1, Commit: ents[0].Index}, ents); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestWALPreallocated checks that a preallocated segment's zero-filled end
// is neither damage nor cut, that a torn record inside it is cut, and that
// rotation leaves full segments without their zero end.
func TestWALPreallocated(t *testing.T) {
	const segSize int64 = 64 << 10
	opts := walOptions{segmentSize: segSize}
	dir := t.TempDir()
	w, _, err := OpenWAL(dir, walTestMeta, 0, 0, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Save(raftpb.HardState{Term: 1, Commit: 3}, walTestEnts(1, 3, 1, 30)); err != nil {
		t.Fatal(err)
	}
	path := w.segs[len(w.segs)-1].path
	size := w.size
	w.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != segSize {
		t.Skipf("file system did not preallocate (size %d)", fi.Size())
	}
	w, st := walTestOpenWith(t, dir, 0, 0, opts)
	walTestCheckEnts(t, st.Entries, walTestEnts(1, 3, 1, 30))
	if w.size != size {
		t.Fatalf("reopened at %d, want %d", w.size, size)
	}
	w.Close()
	// a torn record inside the zero region is cut, and the rest still works
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{40, 0, 0, 0, 4, 0, 0, 0, 9, 9, 9}, size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	w, st = walTestOpenWith(t, dir, 0, 0, opts)
	walTestCheckEnts(t, st.Entries, walTestEnts(1, 3, 1, 30))
	// fill past the segment size: the full segment loses its zero end
	for i := uint64(4); i < 4+3000; i += 100 {
		if err := w.Save(raftpb.HardState{Term: 1, Commit: i + 99}, walTestEnts(i, i+99, 1, 30)); err != nil {
			t.Fatal(err)
		}
	}
	segs := append([]walSegmentInfo(nil), w.segs...)
	w.Close()
	if len(segs) < 2 {
		t.Fatalf("no rotation: %d segments", len(segs))
	}
	for _, seg := range segs[:len(segs)-1] {
		fi, err := os.Stat(seg.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() < segSize {
			t.Fatalf("%s: size %d after rotation, want at least %d", seg.path, fi.Size(), segSize)
		}
		data, err := os.ReadFile(seg.path)
		if err != nil {
			t.Fatal(err)
		}
		if walAllZero(data[len(data)-8:]) {
			t.Fatalf("%s: full segment still ends with its preallocated zeros", seg.path)
		}
	}
	_, st = walTestOpenWith(t, dir, 0, 0, opts)
	walTestCheckEnts(t, st.Entries, walTestEnts(1, 3003, 1, 30))
}

// TestWALCommitOnlyHardState checks that hard states that only move the
// commit index (written without an fsync) land in order between entries.
func TestWALCommitOnlyHardState(t *testing.T) {
	dir := t.TempDir()
	w, _, err := OpenWAL(dir, walTestMeta, 0, 0, walOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 20; i++ {
		if err := w.Save(raftpb.HardState{Term: 1, Commit: i - 1}, walTestEnts(i, i, 1, 30)); err != nil {
			t.Fatal(err)
		}
		if err := w.Save(raftpb.HardState{Term: 1, Commit: i}, nil); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	_, st := walTestOpen(t, dir, 0, 0)
	walTestCheckEnts(t, st.Entries, walTestEnts(1, 20, 1, 30))
	if st.HardState.Commit != 20 {
		t.Fatalf("commit %d, want 20", st.HardState.Commit)
	}
}

func TestWALAppendThenSync(t *testing.T) {
	const segSize int64 = 4096
	opts := walOptions{segmentSize: segSize}
	dir := t.TempDir()
	w, _, err := OpenWAL(dir, walTestMeta, 0, 0, opts)
	if err != nil {
		t.Fatal(err)
	}
	var want []raftpb.Entry
	steps := []struct {
		name string
		hs   raftpb.HardState
		ents []raftpb.Entry
		sync bool // whether the append leaves something Sync must fsync
	}{
		{"entries", raftpb.HardState{Term: 1, Vote: 1}, walTestEnts(1, 3, 1, 40), true},
		{"commit only", raftpb.HardState{Term: 1, Vote: 1, Commit: 3}, nil, false},
		{"new term", raftpb.HardState{Term: 2, Vote: 1, Commit: 3}, nil, true},
		{"entries ending right after a cut", raftpb.HardState{}, walTestEnts(4, 100, 2, 40), false},
		{"more entries", raftpb.HardState{}, walTestEnts(101, 101, 2, 40), true},
	}
	for _, s := range steps {
		segs := len(walTestSegs(t, dir))
		if err := w.Append(s.hs, s.ents); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		want = append(want, s.ents...)
		if s.name == "entries ending right after a cut" && len(walTestSegs(t, dir)) == segs {
			t.Fatalf("%s: no new segment; the test needs one", s.name)
		}
		if w.unsynced != s.sync {
			t.Fatalf("%s: unsynced %v, want %v", s.name, w.unsynced, s.sync)
		}
		if err := w.Sync(); err != nil {
			t.Fatalf("%s: sync: %v", s.name, err)
		}
		if w.unsynced {
			t.Fatalf("%s: still unsynced after Sync", s.name)
		}
	}
	w.Close()
	_, st := walTestOpenWith(t, dir, 0, 0, opts)
	walTestCheckEnts(t, st.Entries, want)
}

func TestWALCommitIndexRidesWithNextWrite(t *testing.T) {
	dir := t.TempDir()
	w, _, err := OpenWAL(dir, walTestMeta, 0, 0, walOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	steps := []struct {
		hs         raftpb.HardState
		ents       []raftpb.Entry
		wantCommit uint64 // read back by a reopen without Close (as after a crash)
	}{
		{raftpb.HardState{Term: 1, Vote: 1}, walTestEnts(1, 2, 1, 20), 0},
		{raftpb.HardState{Term: 1, Vote: 1, Commit: 2}, nil, 0},                      // held back
		{raftpb.HardState{}, walTestEnts(3, 3, 1, 20), 2},                            // written with the next entries
		{raftpb.HardState{Term: 1, Vote: 1, Commit: 3}, nil, 2},                      // held back
		{raftpb.HardState{Term: 2, Vote: 0, Commit: 3}, nil, 3},                      // a new term is written at once
		{raftpb.HardState{Term: 2, Vote: 0, Commit: 3}, walTestEnts(4, 4, 2, 20), 3}, // with entries
	}
	for i, s := range steps {
		if err := w.Save(s.hs, s.ents); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		_, st := walTestOpen(t, walTestCopyDir(t, dir), 0, 0)
		if st.HardState.Commit != s.wantCommit {
			t.Fatalf("step %d: commit read back %d, want %d", i, st.HardState.Commit, s.wantCommit)
		}
	}
	if err := w.Save(raftpb.HardState{Term: 2, Commit: 4}, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, st := walTestOpen(t, dir, 0, 0)
	if st.HardState.Commit != 4 {
		t.Fatalf("commit after Close %d, want 4 (Close writes the held-back one)", st.HardState.Commit)
	}
}
