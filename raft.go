// The raft loop: it owns the raft.RawNode, steps what the inbox holds,
// handles each Ready (WAL write and fsync, sending to peers, the committed
// entries handed to the applier) and serves ReadIndex answers; also the raft-side
// interface the transport delivers to (Process, Report*). Proposals and
// waiters are in propose.go, snapshots in raft_snapshot.go, conf changes in
// cluster.go.

package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"etcdlite/kv"
)

// raftLogger sends the raft library's logs to slog.
type raftLogger struct{}

// Debug implements raft.Logger.
func (raftLogger) Debug(v ...any) { slog.Debug(fmt.Sprint(v...), "from", "raft") }

// Debugf implements raft.Logger.
func (raftLogger) Debugf(format string, v ...any) {
	slog.Debug(fmt.Sprintf(format, v...), "from", "raft")
}

// Info implements raft.Logger.
func (raftLogger) Info(v ...any) { slog.Debug(fmt.Sprint(v...), "from", "raft") }

// Infof implements raft.Logger.
func (raftLogger) Infof(format string, v ...any) {
	slog.Debug(fmt.Sprintf(format, v...), "from", "raft")
}

// Warning implements raft.Logger.
func (raftLogger) Warning(v ...any) { slog.Warn(fmt.Sprint(v...), "from", "raft") }

// Warningf implements raft.Logger.
func (raftLogger) Warningf(format string, v ...any) {
	slog.Warn(fmt.Sprintf(format, v...), "from", "raft")
}

// Error implements raft.Logger.
func (raftLogger) Error(v ...any) { slog.Error(fmt.Sprint(v...), "from", "raft") }

// Errorf implements raft.Logger.
func (raftLogger) Errorf(format string, v ...any) {
	slog.Error(fmt.Sprintf(format, v...), "from", "raft")
}

// Fatal implements raft.Logger.
func (raftLogger) Fatal(v ...any) { panic(fmt.Sprint(v...)) }

// Fatalf implements raft.Logger.
func (raftLogger) Fatalf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }

// Panic implements raft.Logger.
func (raftLogger) Panic(v ...any) { panic(fmt.Sprint(v...)) }

// Panicf implements raft.Logger.
func (raftLogger) Panicf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }

// raftConfig is the library's configuration for this member.
func (s *server) raftConfig() *raft.Config {
	return &raft.Config{
		ID:              s.id,
		ElectionTick:    int(s.cfg.ElectionMs / s.cfg.HeartbeatMs),
		HeartbeatTick:   1,
		Storage:         s.storage,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 512,
		CheckQuorum:     true,
		PreVote:         s.cfg.PreVote,
		Logger:          raftLogger{},
	}
}

// run is the raft loop: it owns the raft node, takes what the inbox holds,
// and handles each Ready (persist, send, apply, advance). Its applier
// (applier.go) is the only goroutine that applies entries to the store, in
// log order, each batch while the loop waits for it or for the disk.
func (s *server) run() {
	defer close(s.runDone)
	defer s.resumeRecoveryGC() // stopped before the log was replayed
	s.applier = newApplier(s.apply)
	defer s.applier.close()
	defer s.closeInbox()
	ticker := time.NewTicker(time.Duration(s.cfg.HeartbeatMs) * time.Millisecond)
	defer ticker.Stop()
	for {
		// Ready is handled before waiting, so that the first pass runs at
		// once: what recovery left committed is applied, and a lone member
		// campaigns, without waiting for a tick.
		s.stepInbox()
		for s.rn.HasReady() {
			rd := s.rn.Ready()
			if err := s.handleReady(rd); err != nil {
				s.storageFailed(err)
				return
			}
			s.rn.Advance(rd)
			s.campaignIfAlone()
			// What arrived during this Ready's fsync goes into the next one.
			s.stepInbox()
		}
		select {
		case <-ticker.C:
			s.rn.Tick()
			s.retryReads()
		case <-s.inbox.wake:
		case enc := <-s.encoded:
			if err := s.finishSnapshot(enc); err != nil {
				s.storageFailed(err)
				return
			}
		case <-s.stopc:
			return
		}
	}
}

// stepInbox hands raft everything queued for it: peers' messages first,
// then the client proposals as one batch, membership changes and quorum
// reads.
func (s *server) stepInbox() {
	// Yield first: handlers that are runnable (a burst of clients whose
	// answers just went out, parsing their next requests) queue their
	// proposals before the batch is taken, instead of waiting for the next
	// fsync. With nothing runnable it returns at once. One member,
	// scripts/ab.sh both ways: fsyncs per write 0.062 -> 0.047 with 64
	// writing clients and 0.052 -> 0.017 with 256; CPU per write 5% and
	// 11% less, 256 clients 18% more writes per second (BENCHMARKS.md).
	runtime.Gosched()
	b := &s.batch
	s.inbox.take(b, s.leader.Load() == 0)
	for i := range b.msgs {
		if err := s.rn.Step(b.msgs[i]); err != nil {
			slog.Debug("raft refused a peer message", "type", b.msgs[i].Type.String(), "from", idString(b.msgs[i].From), "err", err)
		}
	}
	for _, f := range b.reports {
		f(s.rn)
	}
	if len(b.props) > 0 {
		s.proposeBatch(b.props)
	}
	for _, cc := range b.changes {
		if err := s.rn.ProposeConfChange(cc); err != nil {
			s.waits.trigger(cc.ID, applyResult{fail: proposalError(err)})
		}
	}
	if len(b.reads) > 0 {
		id := nextRequestID()
		now := time.Now()
		s.readBatches[id] = &readBatch{ids: append([]uint64(nil), b.reads...), created: now, asked: now}
		s.requestReadIndex(id)
	}
	b.clear()
}

// proposeBatch appends the proposals still wanted to the log in one step.
func (s *server) proposeBatch(props []proposal) {
	// raft keeps the slice (a follower forwards it to the leader as is), so
	// it is not reused.
	ents := make([]raftpb.Entry, 0, len(props))
	for _, p := range props {
		if err := p.ctx.Err(); err != nil {
			s.waits.trigger(p.id, applyResult{fail: proposalError(err)})
			continue
		}
		ents = append(ents, raftpb.Entry{Data: p.data})
	}
	if len(ents) == 0 {
		return
	}
	err := s.rn.Step(raftpb.Message{Type: raftpb.MsgProp, From: s.id, Entries: ents})
	if err != nil {
		err = proposalError(err)
		for _, p := range props {
			s.waits.trigger(p.id, applyResult{fail: err})
		}
	}
}

// requestReadIndex asks raft for the commit index a batch of quorum reads
// may be served at.
func (s *server) requestReadIndex(batch uint64) {
	var rctx [8]byte
	binary.BigEndian.PutUint64(rctx[:], batch)
	s.rn.ReadIndex(rctx[:])
}

// readIndexReady serves the reads of the batch a ReadState answers.
func (s *server) readIndexReady(rs raft.ReadState) {
	batch := binary.BigEndian.Uint64(rs.RequestCtx)
	rb := s.readBatches[batch]
	if rb == nil {
		return // answered already (it was asked for twice)
	}
	for _, id := range rb.ids {
		s.readIndexes.trigger(id, applyResult{event: &kv.Event{EtcdIndex: rs.Index}})
	}
	delete(s.readBatches, batch)
}

// readBatch is a set of quorum reads waiting for one read index.
type readBatch struct {
	ids     []uint64 // their readIndexes keys
	created time.Time
	asked   time.Time // when raft was last asked for it
}

// retryReads asks again for read indexes unanswered for an election
// timeout (the request or its answer may have been lost on the way to or
// from the leader) and forgets those whose readers have all timed out.
func (s *server) retryReads() {
	if len(s.readBatches) == 0 {
		return
	}
	now := time.Now()
	retry := time.Duration(s.cfg.ElectionMs) * time.Millisecond
	for batch, rb := range s.readBatches {
		switch {
		case now.Sub(rb.created) > s.requestTimeout():
			delete(s.readBatches, batch)
		case now.Sub(rb.asked) > retry && s.leader.Load() != 0:
			rb.asked = now
			s.requestReadIndex(batch)
		}
	}
}

// leaderChanged asks the new leader again for the reads the old one left
// unanswered (raft forgets pending reads when a member changes role).
func (s *server) leaderChanged() {
	if s.leader.Load() == 0 {
		return
	}
	now := time.Now()
	for batch, rb := range s.readBatches {
		rb.asked = now
		s.requestReadIndex(batch)
	}
}

// closeInbox stops taking requests for the loop and fails the queued ones,
// then every wait still open (writes in the log not yet applied, quorum
// reads): nothing answers them once the loop has ended. A request that
// comes later finds the inbox closed and fails at once (propose).
func (s *server) closeInbox() {
	props, changes := s.inbox.close()
	for _, p := range props {
		s.waits.trigger(p.id, applyResult{fail: errStopped})
	}
	for _, cc := range changes {
		s.waits.trigger(cc.ID, applyResult{fail: errStopped})
	}
	s.waits.failAll(errStopped)
	s.readIndexes.failAll(errStopped)
}

// handleReady does what one Ready asks, in the order durability needs
// (see the comments inside); an error means storage failed.
func (s *server) handleReady(rd raft.Ready) error {
	if s.encoding && (!raft.IsEmptySnap(rd.Snapshot) || hasConfChange(rd.CommittedEntries)) {
		// A snapshot to install replaces the store, and raft takes a
		// membership change as applied once this Ready is advanced: both
		// wait for the encoding to end.
		if err := s.finishSnapshot(<-s.encoded); err != nil {
			return err
		}
	}
	if rd.SoftState != nil {
		changed := s.leader.Swap(rd.SoftState.Lead) != rd.SoftState.Lead
		if rd.SoftState.Lead != 0 && !s.sawLeader {
			s.sawLeader = true
			close(s.leaderSeen)
		}
		s.stats.setState(rd.SoftState.RaftState, rd.SoftState.Lead)
		if changed {
			s.leaderChanged()
			if rd.SoftState.Lead != 0 {
				s.metrics.leaderChanges.Add(1)
			}
		}
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		s.term.Store(rd.HardState.Term)
		s.metrics.committed.Store(rd.HardState.Commit)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		s.snapshotWG.Wait() // a local snapshot still being written goes first: markers stay in order
		if err := s.persistSnapshot(rd.Snapshot.Metadata, func() error { return s.snapper.Save(rd.Snapshot) }); err != nil {
			return err
		}
		if err := s.installSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	// Only acknowledgements (of appends and of votes) promise something
	// about this member's disk; everything else leaves before the fsync: a
	// leader's appends (raft allows it: an entry commits only once a quorum,
	// which may include the leader after its fsync, has it on disk, and
	// followers fsync in parallel), heartbeats and their answers, proposals
	// and read requests forwarded to the leader.
	msgs := s.sendEarly(rd.Messages)
	// A read index promises nothing about this member's disk: its reads
	// need not wait for this Ready's fsync (they wait to have applied it).
	for _, rs := range rd.ReadStates {
		s.readIndexReady(rs)
	}
	// Committed entries are durable on a quorum already: the applier
	// applies them (and answers their clients) while this Ready's new
	// entries are written and fsynced, so that a write waits for one fsync,
	// not two, and the disk does not wait for the applying (applier.go).
	// A membership change is applied before the Ready's entries are
	// written, as everything was before the applier (it changes raft's
	// configuration and the transport). While the store is being encoded
	// for a snapshot the entries wait.
	switch {
	case s.encoding:
		s.deferred = append(s.deferred, rd.CommittedEntries...)
		if err := s.persist(rd.HardState, rd.Entries); err != nil {
			return err
		}
	case len(rd.CommittedEntries) > 0 && len(rd.Entries) > 0 && !hasConfChange(rd.CommittedEntries):
		s.applier.start(rd.CommittedEntries)
		perr := s.persist(rd.HardState, rd.Entries)
		if err := s.applier.wait(); err != nil {
			return err
		}
		if perr != nil {
			return perr
		}
	default:
		if err := s.applier.run(rd.CommittedEntries); err != nil {
			return err
		}
		if err := s.persist(rd.HardState, rd.Entries); err != nil {
			return err
		}
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := s.storage.SetHardState(rd.HardState); err != nil {
			return fmt.Errorf("set hard state: %w", err)
		}
	}
	if err := s.storage.Append(rd.Entries); err != nil {
		return fmt.Errorf("append entries to raft storage: %w", err)
	}
	// Other messages go out only once what they promise is on disk.
	s.send(msgs)
	if err := s.trimRaftLog(); err != nil {
		return err
	}
	return s.maybeSnapshot()
}

// sendEarly sends at once the messages that need nothing made durable
// first and returns those that must wait until this Ready is persisted.
func (s *server) sendEarly(msgs []raftpb.Message) []raftpb.Message {
	var early, late []raftpb.Message
	for _, m := range msgs {
		switch m.Type {
		case raftpb.MsgAppResp, raftpb.MsgVoteResp, raftpb.MsgPreVoteResp:
			late = append(late, m)
		default:
			early = append(early, m)
		}
	}
	s.send(early)
	return late
}

// campaignIfAlone starts an election at once when this member is the only
// voter, instead of waiting out an election timeout.
func (s *server) campaignIfAlone() {
	if !s.cfg.InitialElectionTickAdvance || s.campaigned || s.leader.Load() != 0 || len(s.confState.Voters) != 1 || s.confState.Voters[0] != s.id {
		return
	}
	if st := s.rn.BasicStatus(); st.Applied < st.Commit {
		return
	}
	s.campaigned = true
	if err := s.rn.Campaign(); err != nil {
		slog.Warn("campaign", "err", err)
	}
}

// apply applies committed entries to the store in order and wakes the
// handlers that wait for them.
func (s *server) apply(ents []raftpb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	var req kv.Request
	for _, e := range ents {
		if e.Index <= s.appliedIndex {
			continue
		}
		switch e.Type {
		case raftpb.EntryNormal:
			if len(e.Data) == 0 {
				break // a new leader's empty entry
			}
			if e.Data[0] == authEntryTag {
				if err := s.applyAuthEntry(e.Data, 0); err != nil {
					return fmt.Errorf("entry %d: %w", e.Index, err)
				}
				break
			}
			if err := req.UnmarshalBinary(e.Data); err != nil {
				return fmt.Errorf("entry %d: %w", e.Index, err)
			}
			ev, err := s.store.Apply(&req)
			s.waits.trigger(req.ID, applyResult{event: ev, err: err})
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := cc.Unmarshal(e.Data); err != nil {
				return fmt.Errorf("entry %d: decode conf change: %w", e.Index, err)
			}
			s.applyConfChange(cc)
		}
		s.appliedIndex = e.Index
		s.appliedTerm = e.Term
	}
	s.appliedIndexPub.Store(s.appliedIndex)
	s.appliedWait.advance(s.appliedIndex)
	if s.replayTo != 0 && s.appliedIndex >= s.replayTo {
		s.replayed() // startup.go
	}
	return nil
}

// storageFailed records that nothing more can be made durable: the member
// stops taking writes (and fails those waiting) and keeps serving reads of
// what it applied.
func (s *server) storageFailed(err error) {
	slog.Error("storage failed; this member now refuses writes and serves reads only (restart it once the cause is fixed)", "err", err)
	s.storageErr.Store(&err)
	s.waits.failAll(err)
	s.readIndexes.failAll(err)
}

// writable fails once the member's storage has failed.
func (s *server) writable() error {
	if p := s.storageErr.Load(); p != nil {
		return *p
	}
	return nil
}

// persist writes a Ready's hard state and entries to the log, fsynced.
func (s *server) persist(hs raftpb.HardState, ents []raftpb.Entry) error {
	if raft.IsEmptyHardState(hs) && len(ents) == 0 {
		return nil
	}
	if err := s.wal.Save(hs, ents); err != nil {
		return fmt.Errorf("write-ahead log: %w", err)
	}
	return nil
}

// persistSnapshot makes a snapshot durable (save writes its file), then lets the log drop what it
// covers.
func (s *server) persistSnapshot(meta raftpb.SnapshotMetadata, save func() error) error {
	if err := save(); err != nil {
		return fmt.Errorf("save snapshot %d: %w", meta.Index, err)
	}
	if err := s.wal.SaveSnapshot(meta.Index, meta.Term); err != nil {
		return fmt.Errorf("record snapshot %d in the log: %w", meta.Index, err)
	}
	if err := s.wal.ReleaseTo(meta.Index); err != nil {
		return fmt.Errorf("release log before %d: %w", meta.Index, err)
	}
	return nil
}

// send hands raft messages to the transport; it never blocks. A snapshot
// raft wants to send is replaced by one of the state applied now, as etcd
// does, so that it includes every membership change applied so far (a
// member added after the last stored snapshot must find itself in it).
func (s *server) send(msgs []raftpb.Message) {
	if len(msgs) == 0 {
		return
	}
	out := msgs[:0]
	for _, m := range msgs {
		if m.Type == raftpb.MsgSnap {
			data, err := s.store.Save() // the whole store, membership included (under /0)
			if err != nil {
				slog.Error("snapshot for a follower", "to", idString(m.To), "err", err)
				s.rn.ReportSnapshot(m.To, raft.SnapshotFailure)
				continue
			}
			m.Snapshot = &raftpb.Snapshot{Data: data, Metadata: raftpb.SnapshotMetadata{
				Index: s.appliedIndex, Term: s.appliedTerm, ConfState: s.confState}}
		}
		out = append(out, m)
	}
	msgs = out
	s.transport.Send(msgs)
}

// Process delivers a message from a peer to raft.
func (s *server) Process(ctx context.Context, m raftpb.Message) error {
	if !s.inbox.step(ctx, m) {
		if err := ctx.Err(); err != nil {
			return err
		}
		return errStopped
	}
	return nil
}

// ReportUnreachable tells raft a message to id was lost.
func (s *server) ReportUnreachable(id uint64) {
	s.inbox.report(func(rn *raft.RawNode) { rn.ReportUnreachable(id) })
}

// ReportSnapshot tells raft how sending a snapshot to id ended.
func (s *server) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	s.inbox.report(func(rn *raft.RawNode) { rn.ReportSnapshot(id, status) })
}
