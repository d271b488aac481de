package main

import (
	"errors"
	"fmt"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// The raft loop never waits for the disk. Raft runs with asynchronous
// storage writes: each Ready hands log appends to the append goroutine and
// committed entries to the apply goroutine, as messages that carry the
// responses to deliver once the work is done. So the loop keeps stepping
// peers' messages and proposals while an fsync runs, the append goroutine
// writes everything queued behind one fsync, and entries are applied while
// the next batch is being made durable. Raft hands over committed entries
// only once they are durable here too.

// fifo is a queue from the raft loop to one storage goroutine. It never
// blocks the loop; how much can be queued is bounded by raft (entries in
// flight, committed entries not yet applied).
type fifo[T any] struct {
	mu    sync.Mutex
	items []T
	wake  chan struct{} // one pending wake-up at most
}

func newFIFO[T any]() *fifo[T] { return &fifo[T]{wake: make(chan struct{}, 1)} }

func (q *fifo[T]) push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns everything queued and keeps spare as the next buffer; spare
// must be a slice the caller is done with.
func (q *fifo[T]) take(spare []T) []T {
	clear(spare)
	q.mu.Lock()
	items := q.items
	q.items = spare[:0]
	q.mu.Unlock()
	return items
}

// applyWork is one job for the apply goroutine, in log order.
type applyWork struct {
	ents     []raftpb.Entry   // committed entries to apply
	resps    []raftpb.Message // to deliver once they are applied
	snapshot *raftpb.Snapshot // a leader's snapshot, durable already, to install
	sendSnap *raftpb.Message  // a MsgSnap to fill with the state applied now and send
}

// startStorage starts the append and apply goroutines.
func (s *server) startStorage() {
	s.storageWG.Add(2)
	go s.appendLoop()
	go s.applyLoop()
}

// appendLoop makes log appends durable, many Readys' worth per fsync, then
// delivers their responses (acknowledgements to the leader, votes, and
// raft's own notice that the entries are stable).
func (s *server) appendLoop() {
	defer s.storageWG.Done()
	var work []raftpb.Message
	for {
		select {
		case <-s.appendQ.wake:
		case <-s.stopc:
			return
		case <-s.halt:
			return
		}
		work = s.appendQ.take(work)
		if err := s.appendBatch(work); err != nil {
			s.storageFailed(err)
			return
		}
	}
}

// appendBatch writes the MsgStorageAppend messages ms in order with one
// fsync (a snapshot among them is made durable on its own first), then
// updates raft's storage and delivers the responses.
func (s *server) appendBatch(ms []raftpb.Message) error {
	done := 0 // ms[:done] are written and synced, their responses delivered
	for i := range ms {
		m := &ms[i]
		if m.Snapshot != nil && !raft.IsEmptySnap(*m.Snapshot) {
			if err := s.finishAppends(ms[done:i]); err != nil {
				return err
			}
			done = i
			if err := s.persistLeaderSnapshot(*m.Snapshot); err != nil {
				return err
			}
		}
		if err := s.wal.Append(storageHardState(m), m.Entries); err != nil {
			return fmt.Errorf("write-ahead log: %w", err)
		}
	}
	return s.finishAppends(ms[done:])
}

// finishAppends fsyncs what ms wrote, then gives their entries and hard
// states to raft's storage and delivers their responses.
func (s *server) finishAppends(ms []raftpb.Message) error {
	if len(ms) == 0 {
		return nil
	}
	if err := s.wal.Sync(); err != nil {
		return fmt.Errorf("write-ahead log: %w", err)
	}
	for i := range ms {
		m := &ms[i]
		if hs := storageHardState(m); !raft.IsEmptyHardState(hs) {
			if err := s.storage.SetHardState(hs); err != nil {
				return fmt.Errorf("set hard state: %w", err)
			}
		}
		if err := s.storage.Append(m.Entries); err != nil {
			return fmt.Errorf("append entries to raft storage: %w", err)
		}
		s.deliver(m.Responses)
	}
	return nil
}

// storageHardState is the hard state a MsgStorageAppend carries (empty if
// it carries none).
func storageHardState(m *raftpb.Message) raftpb.HardState {
	return raftpb.HardState{Term: m.Term, Vote: m.Vote, Commit: m.Commit}
}

// persistLeaderSnapshot makes a snapshot from the leader durable, gives its
// metadata to raft's storage and queues it for the apply goroutine, ahead of
// any entry that follows it.
func (s *server) persistLeaderSnapshot(snap raftpb.Snapshot) error {
	s.snapshotWG.Wait() // a local snapshot still being written goes first: markers stay in order
	if err := s.persistSnapshot(snap); err != nil {
		return err
	}
	meta := snap
	meta.Data = nil
	if err := s.storage.ApplySnapshot(meta); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
		return fmt.Errorf("apply snapshot %d to raft storage: %w", snap.Metadata.Index, err)
	}
	s.applyQ.push(applyWork{snapshot: &snap})
	return nil
}

// deliver hands response messages to raft (those addressed to this member)
// or to the transport.
func (s *server) deliver(msgs []raftpb.Message) {
	var remote []raftpb.Message
	for _, m := range msgs {
		if m.To == s.id {
			s.inbox.local(m)
		} else {
			remote = append(remote, m)
		}
	}
	if len(remote) > 0 {
		s.transport.Send(remote)
	}
}

// applyLoop applies committed entries and snapshots in log order, answers
// the clients waiting for them, and takes local snapshots.
func (s *server) applyLoop() {
	defer s.storageWG.Done()
	var work []applyWork
	for {
		select {
		case <-s.applyQ.wake:
		case <-s.stopc:
			return
		case <-s.halt:
			return
		}
		work = s.applyQ.take(work)
		for i := range work {
			if err := s.doApplyWork(&work[i]); err != nil {
				s.storageFailed(err)
				return
			}
		}
		if err := s.maybeSnapshot(); err != nil {
			s.storageFailed(err)
			return
		}
	}
}

func (s *server) doApplyWork(w *applyWork) error {
	switch {
	case w.snapshot != nil:
		if w.snapshot.Metadata.Index <= s.appliedIndex {
			return nil // applied already
		}
		return s.recoverFromSnapshot(*w.snapshot)
	case w.sendSnap != nil:
		s.sendSnapshot(*w.sendSnap)
		return nil
	}
	if err := s.apply(w.ents); err != nil {
		return err
	}
	s.deliver(w.resps)
	return nil
}
