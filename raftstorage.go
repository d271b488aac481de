// raftstorage.go owns raft's in-memory log: the entries the raft library
// reads through its Storage interface (those since the last trim), the
// hard state, and the metadata of the last snapshot.
//
// It does what the library's MemoryStorage does, with one difference: when
// the log is trimmed (trimRaftLog, finishSnapshot) the new array has room
// for the appends until the next trim, so that the entries of a write are
// not copied again and again as the array grows. With MemoryStorage that
// regrowth was 259 B of garbage per write under 256 writing clients (7% of
// the process's allocations, alloc profile) and 0.8% of its CPU (memmove).
// With raftStorage the allocations per write went from 3.66 to 3.30 kB
// (of which 84 B are the copies at trims), and the CPU per write under 256
// writers from 26.2 to 25.9 µs (medians of six interleaved 12 s runs,
// 2026-12-03; within this machine's noise, never above it).

package main

import (
	"errors"
	"fmt"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// raftStorage is one member's raft.Storage. Its methods are called by the
// raft loop and by the library (on the same goroutine), and by tests; the
// lock keeps them apart.
type raftStorage struct {
	mu        sync.Mutex
	hardState raftpb.HardState
	snapshot  raftpb.Snapshot // metadata only: the state is in the store
	// ents[0] stands for the last entry compacted away (or the
	// snapshot's): only its index and term are kept. ents[i] is the entry
	// at ents[0].Index+i. Entries handed out are never overwritten: an
	// append that replaces some moves the rest to a new array.
	ents []raftpb.Entry
	room int // the spare capacity a compaction leaves for appends
}

// newRaftStorage returns an empty log (the first entry will be at index
// 1) that leaves room for room entries past each compaction.
func newRaftStorage(room int) *raftStorage {
	return &raftStorage{ents: make([]raftpb.Entry, 1, 1+room), room: room}
}

// errEntriesBeyondLog is returned for entries that are not in the log yet.
var errEntriesBeyondLog = errors.New("raft storage: entries asked for beyond the last index")

// InitialState returns the hard state and the membership of the last
// snapshot.
func (rs *raftStorage) InitialState() (raftpb.HardState, raftpb.ConfState, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.hardState, rs.snapshot.Metadata.ConfState, nil
}

// SetHardState records the term, vote and commit index raft reached.
func (rs *raftStorage) SetHardState(st raftpb.HardState) error {
	rs.mu.Lock()
	rs.hardState = st
	rs.mu.Unlock()
	return nil
}

// first is the index of the first entry held (the caller holds the lock).
func (rs *raftStorage) first() uint64 { return rs.ents[0].Index + 1 }

// last is the index of the last entry held (the caller holds the lock).
func (rs *raftStorage) last() uint64 { return rs.ents[0].Index + uint64(len(rs.ents)) - 1 }

// Entries returns the entries from lo up to (not including) hi, no more
// of them than fit in maxSize bytes but always the first.
func (rs *raftStorage) Entries(lo, hi, maxSize uint64) ([]raftpb.Entry, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	base := rs.ents[0].Index
	switch {
	case lo <= base:
		return nil, raft.ErrCompacted
	case hi > rs.last()+1:
		return nil, fmt.Errorf("%w: [%d, %d) with %d last", errEntriesBeyondLog, lo, hi, rs.last())
	case len(rs.ents) == 1:
		return nil, raft.ErrUnavailable
	}
	ents := rs.ents[lo-base : hi-base]
	size := uint64(0)
	for i := range ents {
		size += uint64(ents[i].Size())
		if i > 0 && size > maxSize {
			ents = ents[:i]
			break
		}
	}
	// capped, so that an append to them by the caller copies
	return ents[:len(ents):len(ents)], nil
}

// Term returns the term of the entry at index i.
func (rs *raftStorage) Term(i uint64) (uint64, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	base := rs.ents[0].Index
	switch {
	case i < base:
		return 0, raft.ErrCompacted
	case i > rs.last():
		return 0, raft.ErrUnavailable
	}
	return rs.ents[i-base].Term, nil
}

// LastIndex returns the index of the last entry held.
func (rs *raftStorage) LastIndex() (uint64, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.last(), nil
}

// FirstIndex returns the index of the first entry held.
func (rs *raftStorage) FirstIndex() (uint64, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.first(), nil
}

// Snapshot returns the last snapshot's metadata.
func (rs *raftStorage) Snapshot() (raftpb.Snapshot, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.snapshot, nil
}

// ApplySnapshot replaces the log with a snapshot received or restored:
// the log starts after it.
func (rs *raftStorage) ApplySnapshot(snap raftpb.Snapshot) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if snap.Metadata.Index <= rs.snapshot.Metadata.Index {
		return raft.ErrSnapOutOfDate
	}
	rs.snapshot = snap
	rs.ents = make([]raftpb.Entry, 1, 1+rs.room)
	rs.ents[0] = raftpb.Entry{Index: snap.Metadata.Index, Term: snap.Metadata.Term}
	return nil
}

// CreateSnapshot records a snapshot at index i (applied) with membership
// cs (when not nil) and data.
func (rs *raftStorage) CreateSnapshot(i uint64, cs *raftpb.ConfState, data []byte) (raftpb.Snapshot, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if i <= rs.snapshot.Metadata.Index {
		return raftpb.Snapshot{}, raft.ErrSnapOutOfDate
	}
	base := rs.ents[0].Index
	if i < base || i > rs.last() {
		return raftpb.Snapshot{}, fmt.Errorf("raft storage: snapshot at %d outside the log [%d, %d]", i, base, rs.last())
	}
	rs.snapshot.Metadata.Index = i
	rs.snapshot.Metadata.Term = rs.ents[i-base].Term
	if cs != nil {
		rs.snapshot.Metadata.ConfState = *cs
	}
	rs.snapshot.Data = data
	return rs.snapshot, nil
}

// Compact drops the entries before index i, which must be applied. The
// new array holds what is left and room for the appends to come; the old
// one stays as it is for whoever still holds entries from it.
func (rs *raftStorage) Compact(i uint64) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	base := rs.ents[0].Index
	if i <= base {
		return raft.ErrCompacted
	}
	if i > rs.last() {
		return fmt.Errorf("raft storage: compact to %d beyond the last index %d", i, rs.last())
	}
	rs.ents = rs.moved(rs.ents[i-base:], 0)
	rs.ents[0].Data = nil // only its index and term stand for what went
	rs.ents[0].Type = 0
	return nil
}

// moved copies kept into a new array with room for extra more entries
// and rs.room past them.
func (rs *raftStorage) moved(kept []raftpb.Entry, extra int) []raftpb.Entry {
	ents := make([]raftpb.Entry, len(kept), len(kept)+extra+rs.room)
	copy(ents, kept)
	return ents
}

// Append adds entries made durable, replacing those held from the first
// one's index on (a new leader's log overrides a follower's).
func (rs *raftStorage) Append(entries []raftpb.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	first := rs.first()
	if end := entries[0].Index + uint64(len(entries)); end <= first {
		return nil // all of them compacted away already
	}
	if entries[0].Index < first {
		entries = entries[first-entries[0].Index:]
	}
	at := entries[0].Index - rs.ents[0].Index // where they go in rs.ents
	switch {
	case at > uint64(len(rs.ents)):
		return fmt.Errorf("raft storage: entries from %d would leave a gap after %d", entries[0].Index, rs.last())
	case at < uint64(len(rs.ents)):
		// replacing: what was handed out from rs.ents[at:] stays intact
		rs.ents = append(rs.moved(rs.ents[:at], len(entries)), entries...)
	case cap(rs.ents)-len(rs.ents) < len(entries):
		rs.ents = append(rs.moved(rs.ents, len(entries)), entries...)
	default:
		rs.ents = append(rs.ents, entries...)
	}
	return nil
}
