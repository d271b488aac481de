// Snapshots on the raft side: when to take one, encoding the store off the
// loop and saving it, trimming raft's in-memory log, and installing a
// snapshot (from a leader or at recovery) into raft's storage, the store and
// the member's indexes. The snapshot files themselves are snapshot.go's.

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// snapshotCatchUpEntries is how many entries stay in the raft log after a
// snapshot so that a slow follower can catch up without one.
const snapshotCatchUpEntries = 5000

// catchUpEntries is snapshotCatchUpEntries unless a test asks for fewer.
func (s *server) catchUpEntries() uint64 {
	if s.cfg.hooks.catchUpEntries != 0 {
		return s.cfg.hooks.catchUpEntries
	}
	return snapshotCatchUpEntries
}

// raftLogTrimEvery is how many entries are applied between trims of raft's
// in-memory log (see trimRaftLog).
const raftLogTrimEvery = 10000

// raftLogRoom is the room raft's in-memory log keeps for appends past a
// trim: the entries until the next trim, and a quarter more for those
// appended before they are applied.
const raftLogRoom = raftLogTrimEvery + raftLogTrimEvery/4

// trimRaftLog keeps raft's in-memory log short between snapshots: every
// raftLogTrimEvery applied entries, everything but the last catchUpEntries
// is dropped from it, so memory does not grow with --snapshot-count. The
// write-ahead log on disk keeps them until the next snapshot file. raft's
// storage gets a snapshot record (metadata only, no data) at the applied
// index, which is what it needs to send a follower that is further behind
// a snapshot (built then from the state applied; see send).
func (s *server) trimRaftLog() error {
	keep, every := s.catchUpEntries(), uint64(raftLogTrimEvery)
	if s.cfg.hooks.trimEvery != 0 {
		every = s.cfg.hooks.trimEvery
	}
	if s.appliedIndex < s.trimmedAt+every || s.appliedIndex <= keep {
		return nil
	}
	if _, err := s.storage.CreateSnapshot(s.appliedIndex, &s.confState, nil); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
		return fmt.Errorf("record applied index %d in raft storage: %w", s.appliedIndex, err)
	}
	if err := s.storage.Compact(s.appliedIndex - keep); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return fmt.Errorf("compact raft log to %d: %w", s.appliedIndex-keep, err)
	}
	s.trimmedAt = s.appliedIndex
	return nil
}

// maybeSnapshot takes a snapshot every --snapshot-count applied entries.
// The store is encoded by a goroutine of its own, straight into the new
// snapshot file (never whole in memory), so that the raft loop goes on
// persisting, sending and heartbeating meanwhile (at a million keys
// encoding takes about half a second): committed entries, and the clients
// that wrote them, wait in s.deferred until finishSnapshot, for the store
// must stay as it is at the snapshot's index.
func (s *server) maybeSnapshot() error {
	if s.appliedIndex-s.snapshotIndex < s.cfg.SnapshotCount || s.snapshotting.Load() || s.encoding {
		return nil
	}
	s.encoding, s.encodingStart = true, time.Now()
	meta := raftpb.SnapshotMetadata{Index: s.appliedIndex, Term: s.appliedTerm, ConfState: s.confState}
	s.snapshotWG.Add(1)
	go func() {
		defer s.snapshotWG.Done()
		if h := s.cfg.hooks.encodeHook; h != nil {
			h(s.id)
		}
		s.encoded <- s.encodeSnapshot(meta)
	}()
	return nil
}

// encodeSnapshot writes the store into a new snapshot file for meta, not
// yet durable (finishSnapshot has it committed).
func (s *server) encodeSnapshot(meta raftpb.SnapshotMetadata) encodedStore {
	file, err := s.snapper.Create(meta)
	if err != nil {
		return encodedStore{meta: meta, err: err}
	}
	n, err := s.store.SaveTo(file)
	if err != nil {
		file.Abort()
		return encodedStore{meta: meta, err: err}
	}
	return encodedStore{meta: meta, file: file, bytes: n}
}

// encodedStore is the store encoded into a snapshot file for meta, or why
// it could not be.
type encodedStore struct {
	meta  raftpb.SnapshotMetadata
	file  *snapWriter // written, not yet committed
	bytes int64
	err   error
}

// abandon removes the file of an encoding that will not be finished.
func (enc encodedStore) abandon() {
	if enc.file != nil {
		enc.file.Abort()
	}
}

// hasConfChange reports whether ents hold a membership change.
func hasConfChange(ents []raftpb.Entry) bool {
	for i := range ents {
		if ents[i].Type == raftpb.EntryConfChange || ents[i].Type == raftpb.EntryConfChangeV2 {
			return true
		}
	}
	return false
}

// finishSnapshot makes the encoded store the snapshot at the applied index,
// compacts the raft log behind it, starts committing the file, and applies
// the entries that waited.
func (s *server) finishSnapshot(enc encodedStore) error {
	s.encoding = false
	if enc.err != nil {
		return fmt.Errorf("encode store for a snapshot at %d: %w", enc.meta.Index, enc.err)
	}
	if enc.meta.Index != s.appliedIndex {
		enc.abandon()
		return fmt.Errorf("store encoded at %d, but %d is applied", enc.meta.Index, s.appliedIndex)
	}
	start := s.encodingStart
	// raft's storage keeps only the snapshot's metadata: a follower that
	// needs a snapshot is sent one of the state applied then (see send),
	// so holding a copy of the whole store here would only cost memory.
	if _, err := s.storage.CreateSnapshot(s.appliedIndex, &s.confState, nil); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
		// (out of date: trimRaftLog recorded this index already)
		enc.abandon()
		return fmt.Errorf("create snapshot at %d: %w", s.appliedIndex, err)
	}
	s.snapshotIndex = s.appliedIndex
	// The log keeps every entry until the snapshot file is durable (the
	// release happens after it), so raft's in-memory log can be trimmed now.
	if keep := s.catchUpEntries(); s.appliedIndex > keep {
		compact := s.appliedIndex - keep
		if err := s.storage.Compact(compact); err != nil && !errors.Is(err, raft.ErrCompacted) {
			enc.abandon()
			return fmt.Errorf("compact raft log to %d: %w", compact, err)
		}
	}
	encoded := time.Since(start)
	// Committing the file (fsync, rename) does not hold up the raft loop.
	s.snapshotting.Store(true)
	s.snapshotWG.Add(1)
	go func() {
		defer s.snapshotWG.Done()
		defer s.snapshotting.Store(false)
		if err := s.persistSnapshot(enc.meta, enc.file.Commit); err != nil {
			s.storageFailed(err)
			return
		}
		s.metrics.snapshotDuration.observe(time.Since(start))
		slog.Info("snapshot taken", "index", enc.meta.Index, "bytes", enc.bytes,
			"encoded-in", encoded.Round(time.Millisecond), "took", time.Since(start).Round(time.Millisecond))
		// The log entries compacted away are garbage now: give their
		// memory back rather than keep it until the heap grows into it
		// again. (Not waited for: a received snapshot waits for this
		// goroutine.)
		go debug.FreeOSMemory()
	}()
	deferred := s.deferred
	s.deferred = nil
	return s.applier.run(deferred)
}

// installSnapshot makes snap the state: raft's storage takes its metadata
// (the store holds the data, so raft's storage need not), the store its data.
func (s *server) installSnapshot(snap raftpb.Snapshot) error {
	if err := s.applySnapshotMetadata(snap); err != nil {
		return err
	}
	return s.recoverFromSnapshot(snap)
}

// applySnapshotMetadata gives raft's storage a snapshot's metadata.
func (s *server) applySnapshotMetadata(snap raftpb.Snapshot) error {
	meta := snap
	meta.Data = nil
	if err := s.storage.ApplySnapshot(meta); err != nil {
		return fmt.Errorf("apply snapshot %d to raft storage: %w", snap.Metadata.Index, err)
	}
	return nil
}

// recoverFromSnapshot replaces the state with a snapshot's.
func (s *server) recoverFromSnapshot(snap raftpb.Snapshot) error {
	if err := s.store.Recover(snap.Data); err != nil {
		return fmt.Errorf("snapshot %d: %w", snap.Metadata.Index, err)
	}
	s.adoptSnapshot(snap)
	return nil
}

// adoptSnapshot makes the member's indexes and peers those of a snapshot
// the store holds.
func (s *server) adoptSnapshot(snap raftpb.Snapshot) {
	s.appliedIndex, s.appliedTerm = snap.Metadata.Index, snap.Metadata.Term
	s.snapshotIndex = snap.Metadata.Index
	s.confState = snap.Metadata.ConfState
	s.appliedIndexPub.Store(s.appliedIndex)
	s.appliedWait.advance(s.appliedIndex)
	s.syncPeers()
	s.loadAuth()
}
