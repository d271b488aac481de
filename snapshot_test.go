// Tests of the snapshot files.

package main

import (
	"bytes"
	"encoding/gob"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
)

// snapTestSnap builds a snapshot with a payload of size bytes.
func snapTestSnap(index, term uint64, size int) raftpb.Snapshot {
	data := make([]byte, size)
	rand.New(rand.NewSource(int64(index))).Read(data)
	return raftpb.Snapshot{
		Data: data,
		Metadata: raftpb.SnapshotMetadata{
			Index:     index,
			Term:      term,
			ConfState: raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{7}},
		},
	}
}

// snapTestNames lists the file names in dir.
func snapTestNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// snapTestEqual fails unless got and want are the same snapshot.
func snapTestEqual(t *testing.T, got, want raftpb.Snapshot) {
	t.Helper()
	if got.Metadata.Index != want.Metadata.Index || got.Metadata.Term != want.Metadata.Term ||
		!reflect.DeepEqual(got.Metadata.ConfState, want.Metadata.ConfState) || !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("snapshot %d/%d differs from %d/%d", got.Metadata.Index, got.Metadata.Term, want.Metadata.Index, want.Metadata.Term)
	}
}

func TestSnapshotterRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "member", "snap")
	s := NewSnapshotter(dir, 5)
	want := snapTestSnap(1234, 7, 8<<20)
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	got, release, err := NewSnapshotter(dir, 5).Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	snapTestEqual(t, got, want)
	if names := snapTestNames(t, dir); len(names) != 1 || names[0] != snapFileName(7, 1234) {
		t.Fatalf("files %v", names)
	}
}

func TestSnapshotterCorruptFallsBack(t *testing.T) {
	tests := []struct {
		name   string
		damage func(path string) error
	}{
		{"flipped byte", func(path string) error {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			b[len(b)/2] ^= 0x40
			return os.WriteFile(path, b, 0o600)
		}},
		{"truncated", func(path string) error { return os.Truncate(path, 100) }},
		{"empty", func(path string) error { return os.Truncate(path, 0) }},
		{"trailing garbage", func(path string) error {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write([]byte("garbage"))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := NewSnapshotter(dir, 0)
			older, newer := snapTestSnap(10, 1, 1000), snapTestSnap(20, 2, 1000)
			for _, snap := range []raftpb.Snapshot{older, newer} {
				if err := s.Save(snap); err != nil {
					t.Fatal(err)
				}
			}
			newest := filepath.Join(dir, snapFileName(2, 20))
			if err := tt.damage(newest); err != nil {
				t.Fatal(err)
			}
			got, release, err := s.Load(func(uint64, uint64) bool { return true })
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			snapTestEqual(t, got, older)
			if _, err := os.Stat(newest + snapBrokenExt); err != nil {
				t.Fatalf("damaged file not set aside: %v", err)
			}
		})
	}
}

func TestSnapshotterWrongNameNotLoaded(t *testing.T) {
	dir := t.TempDir()
	s := NewSnapshotter(dir, 0)
	if err := s.Save(snapTestSnap(10, 1, 100)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, snapFileName(1, 10)), filepath.Join(dir, snapFileName(2, 20))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(nil); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("Load = %v, want ErrNoSnapshot", err)
	}
}

func TestSnapshotterUsable(t *testing.T) {
	dir := t.TempDir()
	s := NewSnapshotter(dir, 0)
	for i := uint64(1); i <= 3; i++ {
		if err := s.Save(snapTestSnap(i*10, i, 100)); err != nil {
			t.Fatal(err)
		}
	}
	got, release, err := s.Load(func(index, term uint64) bool { return index <= 20 })
	if err != nil {
		t.Fatal(err)
	}
	release()
	if got.Metadata.Index != 20 {
		t.Fatalf("loaded %d, want 20", got.Metadata.Index)
	}
	if len(snapTestNames(t, dir)) != 3 {
		t.Fatal("an unusable snapshot was removed or renamed")
	}
	if _, _, err := s.Load(func(uint64, uint64) bool { return false }); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("Load = %v, want ErrNoSnapshot", err)
	}
}

func TestSnapshotterPrune(t *testing.T) {
	tests := []struct {
		max, saves, want int
	}{
		{max: 3, saves: 7, want: 3},
		{max: 5, saves: 2, want: 2},
		{max: 0, saves: 7, want: 7},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		s := NewSnapshotter(dir, tt.max)
		for i := 1; i <= tt.saves; i++ {
			if err := s.Save(snapTestSnap(uint64(i*100), uint64(i), 64)); err != nil {
				t.Fatal(err)
			}
		}
		names := snapTestNames(t, dir)
		if len(names) != tt.want {
			t.Fatalf("max %d: %d files %v, want %d", tt.max, len(names), names, tt.want)
		}
		if want := snapFileName(uint64(tt.saves), uint64(tt.saves*100)); names[len(names)-1] != want {
			t.Fatalf("newest file %s, want %s", names[len(names)-1], want)
		}
		got, release, err := s.Load(nil)
		if err != nil || got.Metadata.Index != uint64(tt.saves*100) {
			t.Fatalf("Load = %d, %v", got.Metadata.Index, err)
		}
		release()
	}
}

func TestSnapshotterEmpty(t *testing.T) {
	for _, dir := range []string{t.TempDir(), filepath.Join(t.TempDir(), "missing")} {
		if _, _, err := NewSnapshotter(dir, 5).Load(nil); !errors.Is(err, ErrNoSnapshot) {
			t.Fatalf("Load(%s) = %v, want ErrNoSnapshot", dir, err)
		}
	}
	dir := t.TempDir()
	// Leftover temp files and unrelated files are not snapshots.
	for _, name := range []string{"x.snap.123.tmp", "notes.txt", snapFileName(1, 1) + snapBrokenExt} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := NewSnapshotter(dir, 5).Load(nil); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("Load = %v, want ErrNoSnapshot", err)
	}
	for _, name := range snapTestNames(t, dir) {
		if strings.HasSuffix(name, ".tmp") {
			t.Fatalf("temp file %s left behind", name)
		}
	}
	if err := NewSnapshotter(dir, 5).Save(raftpb.Snapshot{}); err == nil {
		t.Fatal("saved a snapshot with index 0")
	}
}

// snapTestWriteV2 writes snap as a version 2 file (length and CRC in the
// header, before the data), as etcdlite wrote them in data-dir format 1.
func snapTestWriteV2(t *testing.T, dir string, snap raftpb.Snapshot) {
	t.Helper()
	cs, err := snap.Metadata.ConfState.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sf := snapFile{Magic: snapMagic, Version: snapVersionV2, Index: snap.Metadata.Index, Term: snap.Metadata.Term,
		ConfState: cs, DataLen: uint64(len(snap.Data)), data: snap.Data}
	sf.CRC = snapChecksum(&sf)
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(&sf); err != nil {
		t.Fatal(err)
	}
	b.Write(snap.Data)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, snapFileName(snap.Metadata.Term, snap.Metadata.Index)), b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotterVersions checks that version 2 files are still read, that
// version 3 files end with the data's length and CRC, and that a damaged
// trailer or header of either version is refused.
func TestSnapshotterVersions(t *testing.T) {
	tests := []struct {
		name    string
		write   func(t *testing.T, dir string, snap raftpb.Snapshot)
		damage  func(b []byte) []byte
		loadErr bool
	}{
		{"v2", snapTestWriteV2, nil, false},
		{"v3", func(t *testing.T, dir string, snap raftpb.Snapshot) {
			if err := NewSnapshotter(dir, 0).Save(snap); err != nil {
				t.Fatal(err)
			}
		}, nil, false},
		{"v3 length in trailer off by one", nil, func(b []byte) []byte {
			b[len(b)-snapTrailerLen]++
			return b
		}, true},
		{"v3 CRC flipped", nil, func(b []byte) []byte {
			b[len(b)-1] ^= 1
			return b
		}, true},
		{"v3 trailer cut", nil, func(b []byte) []byte { return b[:len(b)-snapTrailerLen+3] }, true},
		{"v2 data cut", snapTestWriteV2, func(b []byte) []byte { return b[:len(b)-1] }, true},
		{"v2 data flipped", snapTestWriteV2, func(b []byte) []byte {
			b[len(b)-1] ^= 1
			return b
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			snap := snapTestSnap(500, 3, 70000)
			write := tt.write
			if write == nil {
				write = func(t *testing.T, dir string, snap raftpb.Snapshot) {
					if err := NewSnapshotter(dir, 0).Save(snap); err != nil {
						t.Fatal(err)
					}
				}
			}
			write(t, dir, snap)
			path := filepath.Join(dir, snapFileName(3, 500))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if tt.damage != nil {
				if err := os.WriteFile(path, tt.damage(b), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, release, err := NewSnapshotter(dir, 0).Load(nil)
			if tt.loadErr {
				if !errors.Is(err, ErrNoSnapshot) {
					release()
					t.Fatalf("damaged file loaded: %v", err)
				}
				if _, err := os.Stat(path + snapBrokenExt); err != nil {
					t.Fatalf("damaged file not set aside: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			snapTestEqual(t, got, snap)
		})
	}
}

// TestSnapshotterStreamedWrite checks a file streamed through a snapWriter
// in pieces: it is not a snapshot until committed, a Load meanwhile leaves
// its temporary file alone, an aborted one leaves nothing, and a committed
// one reads back whole.
func TestSnapshotterStreamedWrite(t *testing.T) {
	dir := t.TempDir()
	s := NewSnapshotter(dir, 0)
	want := snapTestSnap(77, 2, 300000)
	w, err := s.Create(want.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	for p := want.Data; len(p) > 0; {
		n := min(len(p), 4096+len(p)%777)
		if _, err := w.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if _, _, err := s.Load(nil); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("Load while writing: %v, want ErrNoSnapshot", err)
	}
	if _, err := os.Stat(w.tmp); err != nil {
		t.Fatalf("Load removed the file being written: %v", err)
	}
	aborted, err := s.Create(snapTestSnap(99, 2, 10).Metadata)
	if err != nil {
		t.Fatal(err)
	}
	aborted.Write([]byte("partial"))
	aborted.Abort()
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if names := snapTestNames(t, dir); len(names) != 1 || names[0] != snapFileName(2, 77) {
		t.Fatalf("files %v, want only the committed one", names)
	}
	got, release, err := s.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	snapTestEqual(t, got, want)
}
