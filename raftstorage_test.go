// Tests of raft's in-memory log (raftstorage.go): its answers against
// the raft library's MemoryStorage, the entries it hands out staying
// intact, and appends between trims copying nothing.

package main

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// testEntries makes entries lo..hi (inclusive) of the given term, each
// with a payload naming it.
func testEntries(lo, hi, term uint64) []raftpb.Entry {
	var ents []raftpb.Entry
	for i := lo; i <= hi; i++ {
		ents = append(ents, raftpb.Entry{Index: i, Term: term, Data: []byte(fmt.Sprintf("entry %d term %d", i, term))})
	}
	return ents
}

// TestRaftStorageCases checks each method's answers at the edges of the
// log.
func TestRaftStorageCases(t *testing.T) {
	entrySize := uint64((&raftpb.Entry{Index: 5, Term: 1, Data: []byte("entry 5 term 1")}).Size())
	// the log holds 4..9 (3 compacted), terms 1
	setup := func() *raftStorage {
		rs := newRaftStorage(4)
		if err := rs.Append(testEntries(1, 9, 1)); err != nil {
			t.Fatal(err)
		}
		if err := rs.Compact(3); err != nil {
			t.Fatal(err)
		}
		return rs
	}
	cases := []struct {
		name    string
		run     func(rs *raftStorage) (any, error)
		want    any
		wantErr error
	}{
		{"first index", func(rs *raftStorage) (any, error) { return rs.FirstIndex() }, uint64(4), nil},
		{"last index", func(rs *raftStorage) (any, error) { return rs.LastIndex() }, uint64(9), nil},
		{"term compacted", func(rs *raftStorage) (any, error) { return rs.Term(2) }, uint64(0), raft.ErrCompacted},
		{"term of the compaction point", func(rs *raftStorage) (any, error) { return rs.Term(3) }, uint64(1), nil},
		{"term past the end", func(rs *raftStorage) (any, error) { return rs.Term(10) }, uint64(0), raft.ErrUnavailable},
		{"entries compacted", func(rs *raftStorage) (any, error) { return rs.Entries(3, 5, math.MaxUint64) }, []raftpb.Entry(nil), raft.ErrCompacted},
		{"entries beyond", func(rs *raftStorage) (any, error) { return rs.Entries(4, 11, math.MaxUint64) }, []raftpb.Entry(nil), errEntriesBeyondLog},
		{"entries all", func(rs *raftStorage) (any, error) { return rs.Entries(4, 10, math.MaxUint64) }, testEntries(4, 9, 1), nil},
		{"entries one at least", func(rs *raftStorage) (any, error) { return rs.Entries(4, 10, 0) }, testEntries(4, 4, 1), nil},
		{"entries up to the size", func(rs *raftStorage) (any, error) { return rs.Entries(4, 10, 2*entrySize) }, testEntries(4, 5, 1), nil},
		{"compact again", func(rs *raftStorage) (any, error) { return nil, rs.Compact(3) }, nil, raft.ErrCompacted},
		{"compact beyond", func(rs *raftStorage) (any, error) { return nil, rs.Compact(10) }, nil, errors.New("any")},
		{"append with a gap", func(rs *raftStorage) (any, error) { return nil, rs.Append(testEntries(11, 12, 1)) }, nil, errors.New("any")},
		{"append compacted only", func(rs *raftStorage) (any, error) {
			err := rs.Append(testEntries(1, 3, 2))
			t, _ := rs.Term(3)
			return t, err
		}, uint64(1), nil},
		{"append replacing", func(rs *raftStorage) (any, error) {
			err := rs.Append(testEntries(2, 7, 2)) // 2, 3 compacted; 4..7 replaced, 8, 9 dropped
			last, _ := rs.LastIndex()
			ents, _ := rs.Entries(4, last+1, math.MaxUint64)
			return ents, err
		}, testEntries(4, 7, 2), nil},
		{"snapshot out of date", func(rs *raftStorage) (any, error) {
			if _, err := rs.CreateSnapshot(6, &raftpb.ConfState{Voters: []uint64{1}}, nil); err != nil {
				return nil, err
			}
			_, err := rs.CreateSnapshot(6, nil, nil)
			return nil, err
		}, nil, raft.ErrSnapOutOfDate},
		{"snapshot beyond", func(rs *raftStorage) (any, error) { _, err := rs.CreateSnapshot(10, nil, nil); return nil, err }, nil, errors.New("any")},
		{"apply snapshot", func(rs *raftStorage) (any, error) {
			if err := rs.ApplySnapshot(raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 20, Term: 3}}); err != nil {
				return nil, err
			}
			first, _ := rs.FirstIndex()
			last, _ := rs.LastIndex()
			term, _ := rs.Term(20)
			return [3]uint64{first, last, term}, nil
		}, [3]uint64{21, 20, 3}, nil},
		{"apply an older snapshot", func(rs *raftStorage) (any, error) {
			if err := rs.ApplySnapshot(raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 20, Term: 3}}); err != nil {
				return nil, err
			}
			return nil, rs.ApplySnapshot(raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 15, Term: 3}})
		}, nil, raft.ErrSnapOutOfDate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.run(setup())
			switch {
			case c.wantErr == nil && err != nil:
				t.Fatalf("error %v", err)
			case c.wantErr != nil && err == nil:
				t.Fatalf("no error, want %v", c.wantErr)
			case c.wantErr != nil && c.wantErr.Error() != "any" && !errors.Is(err, c.wantErr):
				t.Fatalf("error %v, want %v", err, c.wantErr)
			}
			if c.wantErr == nil && !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

// TestRaftStorageLikeMemoryStorage runs the same random appends (with
// replacements, as a follower sees under a new leader), compactions and
// snapshots on raftStorage and on the raft library's MemoryStorage and
// compares every answer.
func TestRaftStorageLikeMemoryStorage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 20; round++ {
		ours, theirs := newRaftStorage(rng.IntN(20)), raft.NewMemoryStorage()
		term := uint64(1)
		for step := 0; step < 300; step++ {
			first, _ := theirs.FirstIndex()
			last, _ := theirs.LastIndex()
			switch op := rng.IntN(10); {
			case op < 6: // append, sometimes over the last few entries
				from := last + 1
				if back := uint64(rng.IntN(3)); from-first >= back {
					from -= back
				}
				if rng.IntN(4) == 0 {
					term++
				}
				ents := testEntries(from, from+uint64(rng.IntN(8)), term)
				errA, errB := ours.Append(ents), theirs.Append(ents)
				if (errA == nil) != (errB == nil) {
					t.Fatalf("append %d..: %v against %v", from, errA, errB)
				}
			case op < 8 && last >= first: // compact into the log
				i := first + uint64(rng.IntN(int(last-first+1)))
				errA, errB := ours.Compact(i), theirs.Compact(i)
				if !errors.Is(errA, errB) {
					t.Fatalf("compact %d: %v against %v", i, errA, errB)
				}
			case op == 8 && last >= first: // snapshot within the log
				i := first + uint64(rng.IntN(int(last-first+1)))
				a, errA := ours.CreateSnapshot(i, &raftpb.ConfState{Voters: []uint64{1, 2}}, nil)
				b, errB := theirs.CreateSnapshot(i, &raftpb.ConfState{Voters: []uint64{1, 2}}, nil)
				if !errors.Is(errA, errB) || !reflect.DeepEqual(a, b) {
					t.Fatalf("snapshot %d: %v %v against %v %v", i, a, errA, b, errB)
				}
			case op == 9 && rng.IntN(8) == 0: // a snapshot received
				snap := raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: last + uint64(rng.IntN(5)), Term: term}}
				errA, errB := ours.ApplySnapshot(snap), theirs.ApplySnapshot(snap)
				if !errors.Is(errA, errB) {
					t.Fatalf("apply snapshot %d: %v against %v", snap.Metadata.Index, errA, errB)
				}
			}
			compareRaftStorages(t, ours, theirs)
		}
	}
}

// compareRaftStorages fails t unless both storages answer alike for every
// index around their logs.
func compareRaftStorages(t *testing.T, ours *raftStorage, theirs *raft.MemoryStorage) {
	t.Helper()
	fa, _ := ours.FirstIndex()
	fb, _ := theirs.FirstIndex()
	la, _ := ours.LastIndex()
	lb, _ := theirs.LastIndex()
	if fa != fb || la != lb {
		t.Fatalf("log [%d, %d] against [%d, %d]", fa, la, fb, lb)
	}
	sa, _ := ours.Snapshot()
	sb, _ := theirs.Snapshot()
	if !reflect.DeepEqual(sa, sb) {
		t.Fatalf("snapshot %v against %v", sa, sb)
	}
	for i := fb - 1; i <= lb+1; i++ {
		ta, errA := ours.Term(i)
		tb, errB := theirs.Term(i)
		if ta != tb || !errors.Is(errA, errB) {
			t.Fatalf("term %d: %d %v against %d %v", i, ta, errA, tb, errB)
		}
	}
	for _, max := range []uint64{0, 100, math.MaxUint64} {
		a, errA := ours.Entries(fb, lb+1, max)
		b, errB := theirs.Entries(fb, lb+1, max)
		if !errors.Is(errA, errB) || !reflect.DeepEqual(a, b) {
			t.Fatalf("entries [%d, %d) max %d: %v %v against %v %v", fb, lb+1, max, a, errA, b, errB)
		}
	}
}

// TestRaftStorageKeepsHandedOutEntries checks that entries returned by
// Entries are not changed by the appends, replacements and compactions
// after: raft holds on to them while it sends and applies.
func TestRaftStorageKeepsHandedOutEntries(t *testing.T) {
	rs := newRaftStorage(16)
	if err := rs.Append(testEntries(1, 10, 1)); err != nil {
		t.Fatal(err)
	}
	held, err := rs.Entries(5, 11, math.MaxUint64)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Append(testEntries(6, 12, 2)); err != nil { // replaces 6..10
		t.Fatal(err)
	}
	if err := rs.Compact(8); err != nil {
		t.Fatal(err)
	}
	if err := rs.Append(testEntries(13, 20, 2)); err != nil {
		t.Fatal(err)
	}
	_ = append(held, raftpb.Entry{Index: 11, Term: 9}) // the caller's append must not reach the log
	if !reflect.DeepEqual(held, testEntries(5, 10, 1)) {
		t.Fatalf("entries handed out changed: %v", held)
	}
	if term, _ := rs.Term(11); term != 2 {
		t.Fatalf("term of 11 is %d, want 2", term)
	}
}

// TestRaftStorageAppendsInPlace checks that between two compactions a
// write's entry is appended without copying the log: no allocation while
// there is room.
func TestRaftStorageAppendsInPlace(t *testing.T) {
	rs := newRaftStorage(1000)
	if err := rs.Append(testEntries(1, 600, 1)); err != nil {
		t.Fatal(err)
	}
	if err := rs.Compact(500); err != nil {
		t.Fatal(err)
	}
	next := uint64(601)
	one := testEntries(next, next, 1)
	allocs := testing.AllocsPerRun(900, func() {
		one[0].Index = next
		next++
		if err := rs.Append(one); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per append within the room, want none", allocs)
	}
	if last, _ := rs.LastIndex(); last != next-1 {
		t.Fatalf("last index %d, want %d", last, next-1)
	}
}
