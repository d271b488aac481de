// Tests of the snapshot files.

package main

import (
	"bytes"
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
