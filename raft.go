// The raft loop: proposals, Ready handling, apply, conf changes and
// snapshots.

package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"etcdlite/kv"
)

// Errors a proposal can end with besides the store's own.
var (
	errTimeout = errors.New("etcdserver: request timed out")
	errStopped = errors.New("etcdserver: server stopped")
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

// applyResult is what applying one proposal produced.
type applyResult struct {
	event *kv.Event
	err   *kv.Error
	fail  error // the member could not apply it at all
	value any   // what an entry that is not a store request produced (an auth change: *authResult)
}

// waitList maps proposal ids to the handlers waiting for their results.
// Each wait has a deadline; expire ends the overdue ones, so that a request
// costs no timer of its own.
type waitList struct {
	mu sync.Mutex
	m  map[uint64]waiter
}

type waiter struct {
	ch       chan applyResult
	deadline int64 // unix nanoseconds
}

func (w *waitList) register(id uint64, deadline time.Time) chan applyResult {
	ch := make(chan applyResult, 1)
	w.mu.Lock()
	w.m[id] = waiter{ch: ch, deadline: deadline.UnixNano()}
	w.mu.Unlock()
	return ch
}

func (w *waitList) cancel(id uint64) {
	w.mu.Lock()
	delete(w.m, id)
	w.mu.Unlock()
}

// failAll ends every wait with err.
func (w *waitList) failAll(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, wt := range w.m {
		wt.ch <- applyResult{fail: err}
		delete(w.m, id)
	}
}

// expire ends with errTimeout every wait whose deadline is before now.
func (w *waitList) expire(now time.Time) {
	n := now.UnixNano()
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, wt := range w.m {
		if wt.deadline < n {
			wt.ch <- applyResult{fail: errTimeout}
			delete(w.m, id)
		}
	}
}

func (w *waitList) trigger(id uint64, r applyResult) {
	w.mu.Lock()
	wt, ok := w.m[id]
	delete(w.m, id)
	w.mu.Unlock()
	if ok {
		wt.ch <- r
	}
}

// appliedNotifier lets readers wait until the store has applied an index.
type appliedNotifier struct {
	mu      sync.Mutex
	applied uint64
	ch      chan struct{} // closed and replaced at every advance
}

func (a *appliedNotifier) advance(index uint64) {
	a.mu.Lock()
	a.applied = index
	close(a.ch)
	a.ch = make(chan struct{})
	a.mu.Unlock()
}

// wait returns once index is applied, or with the context's error.
func (a *appliedNotifier) wait(ctx context.Context, index uint64) error {
	for {
		a.mu.Lock()
		applied, ch := a.applied, a.ch
		a.mu.Unlock()
		if applied >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

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
// and handles each Ready (persist, send, apply, advance). It is the only
// goroutine that applies entries to the store, in log order.
func (s *server) run() {
	defer close(s.runDone)
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
		if p.ctx.Err() == nil {
			ents = append(ents, raftpb.Entry{Data: p.data})
		}
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

// closeInbox stops taking requests for the loop and fails the queued ones.
func (s *server) closeInbox() {
	props, changes := s.inbox.close()
	for _, p := range props {
		s.waits.trigger(p.id, applyResult{fail: errStopped})
	}
	for _, cc := range changes {
		s.waits.trigger(cc.ID, applyResult{fail: errStopped})
	}
}

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
		if err := s.persistSnapshot(rd.Snapshot); err != nil {
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
	// Committed entries are durable on a quorum already: apply them (and
	// answer their clients) before this Ready's new entries are fsynced, so
	// that a write waits for one fsync, not two. While the store is being
	// encoded for a snapshot they wait.
	if s.encoding {
		s.deferred = append(s.deferred, rd.CommittedEntries...)
	} else if err := s.apply(rd.CommittedEntries); err != nil {
		return err
	}
	// A read index promises nothing about this member's disk: its reads
	// need not wait for this Ready's fsync (they wait to have applied it).
	for _, rs := range rd.ReadStates {
		s.readIndexReady(rs)
	}
	if err := s.persist(rd.HardState, rd.Entries); err != nil {
		return err
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
		slog.Info("recovery complete", "snapshot-index", s.snapshotIndex, "entries-replayed", s.appliedIndex-s.replayFrom,
			"keys-index", s.store.Index(), "took", time.Since(s.replayStart).Round(time.Millisecond))
		s.replayTo = 0
		// What recovery read and decoded is garbage now; without a collection
		// and a release the runtime would keep that memory for minutes.
		go debug.FreeOSMemory()
	}
	return nil
}

// raftLogTrimEvery is how many entries are applied between trims of raft's
// in-memory log (see trimRaftLog).
const raftLogTrimEvery = 10000

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
// The store is encoded by a goroutine of its own, so that the raft loop
// goes on persisting, sending and heartbeating meanwhile (at a million keys
// encoding takes about half a second): committed entries, and the clients
// that wrote them, wait in s.deferred until finishSnapshot, for the store
// must stay as it is at the snapshot's index.
func (s *server) maybeSnapshot() error {
	if s.appliedIndex-s.snapshotIndex < s.cfg.SnapshotCount || s.snapshotting.Load() || s.encoding {
		return nil
	}
	s.encoding, s.encodingStart = true, time.Now()
	s.snapshotWG.Add(1)
	go func() {
		defer s.snapshotWG.Done()
		if h := s.cfg.hooks.encodeHook; h != nil {
			h(s.id)
		}
		data, err := s.store.Save()
		s.encoded <- encodedStore{data: data, err: err}
	}()
	return nil
}

// encodedStore is the store encoded for a snapshot, or why it could not be.
type encodedStore struct {
	data []byte
	err  error
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
// compacts the raft log behind it, starts writing the file, and applies the
// entries that waited.
func (s *server) finishSnapshot(enc encodedStore) error {
	s.encoding = false
	if enc.err != nil {
		return fmt.Errorf("encode store for a snapshot at %d: %w", s.appliedIndex, enc.err)
	}
	start := s.encodingStart
	// raft's storage keeps only the snapshot's metadata: a follower that
	// needs a snapshot is sent one of the state applied then (see send),
	// so holding a copy of the whole store here would only cost memory.
	snap, err := s.storage.CreateSnapshot(s.appliedIndex, &s.confState, nil)
	if errors.Is(err, raft.ErrSnapOutOfDate) {
		// trimRaftLog recorded this index already
		snap, err = raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: s.appliedIndex, Term: s.appliedTerm, ConfState: s.confState}}, nil
	}
	if err != nil {
		return fmt.Errorf("create snapshot at %d: %w", s.appliedIndex, err)
	}
	snap.Data = enc.data
	s.snapshotIndex = s.appliedIndex
	// The log keeps every entry until the snapshot file is durable (the
	// release happens after it), so raft's in-memory log can be trimmed now.
	if keep := s.catchUpEntries(); s.appliedIndex > keep {
		compact := s.appliedIndex - keep
		if err := s.storage.Compact(compact); err != nil && !errors.Is(err, raft.ErrCompacted) {
			return fmt.Errorf("compact raft log to %d: %w", compact, err)
		}
	}
	encoded := time.Since(start)
	// Writing and fsyncing the file does not hold up the raft loop.
	s.snapshotting.Store(true)
	s.snapshotWG.Add(1)
	go func() {
		defer s.snapshotWG.Done()
		defer s.snapshotting.Store(false)
		if err := s.persistSnapshot(snap); err != nil {
			s.storageFailed(err)
			return
		}
		s.metrics.snapshotDuration.observe(time.Since(start))
		slog.Info("snapshot taken", "index", snap.Metadata.Index, "bytes", len(snap.Data),
			"encoded-in", encoded.Round(time.Millisecond), "took", time.Since(start).Round(time.Millisecond))
		// The encoded store (as large as the store's content) and the log
		// entries compacted away are garbage now: give their memory back
		// rather than keep it until the heap grows into it again. (Not
		// waited for: a received snapshot waits for this goroutine.)
		snap.Data = nil
		go debug.FreeOSMemory()
	}()
	deferred := s.deferred
	s.deferred = nil
	return s.apply(deferred)
}

// propose sends r through raft and waits until it is applied.
func (s *server) propose(ctx context.Context, r *kv.Request) (*kv.Event, error) {
	if err := s.writable(); err != nil {
		return nil, err
	}
	r.ID = nextRequestID()
	if r.Time == 0 {
		r.Time = s.now().UnixNano()
	}
	ch := s.waits.register(r.ID, time.Now().Add(s.requestTimeout()))
	if !s.inbox.propose(proposal{id: r.ID, data: r.AppendBinary(nil), ctx: ctx}) {
		s.waits.cancel(r.ID)
		return nil, errStopped
	}
	s.metrics.pending.Add(1)
	res, err := s.await(ctx, r.ID, ch, &s.waits)
	s.metrics.pending.Add(-1)
	if err != nil {
		if res.err == nil { // not the store's answer: the proposal failed
			s.metrics.failed.Add(1)
		}
		return nil, err
	}
	return res.event, nil
}

// await waits for the result registered under id in w: it comes from the
// raft loop, or is a timeout from the expiry sweep.
func (s *server) await(ctx context.Context, id uint64, ch chan applyResult, w *waitList) (applyResult, error) {
	select {
	case res := <-ch:
		switch {
		case res.fail != nil:
			return res, res.fail
		case res.err != nil:
			return res, res.err
		}
		return res, nil
	case <-ctx.Done():
		w.cancel(id)
		return applyResult{}, proposalError(ctx.Err())
	case <-s.stopc:
		w.cancel(id)
		return applyResult{}, errStopped
	}
}

// expireWaits ends the writes and quorum reads that have waited longer
// than the request timeout.
func (s *server) expireWaits() {
	t := time.NewTicker(waitSweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopc:
			return
		case now := <-t.C:
			s.waits.expire(now)
			s.readIndexes.expire(now)
		}
	}
}

// waitSweepInterval is how often overdue waits are looked for.
const waitSweepInterval = 100 * time.Millisecond

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

func proposalError(err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return errTimeout
	case errors.Is(err, raft.ErrStopped):
		return errStopped
	}
	return err
}

// requestTimeout bounds how long a write or a quorum read may wait.
func (s *server) requestTimeout() time.Duration {
	return 5*time.Second + 2*time.Duration(s.cfg.ElectionMs)*time.Millisecond
}

// linearizableRead waits until this member has applied everything the
// cluster had committed when the read arrived (raft's ReadIndex; the reads
// that arrive together share one).
func (s *server) linearizableRead(ctx context.Context) error {
	if err := s.writable(); err != nil {
		return err
	}
	id := nextRequestID()
	ch := s.readIndexes.register(id, time.Now().Add(s.requestTimeout()))
	if !s.inbox.read(id) {
		s.readIndexes.cancel(id)
		return errStopped
	}
	res, err := s.await(ctx, id, ch, &s.readIndexes)
	if err != nil {
		return err
	}
	if s.appliedIndexPub.Load() >= res.event.EtcdIndex {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.requestTimeout())
	defer cancel()
	if err := s.appliedWait.wait(ctx, res.event.EtcdIndex); err != nil {
		return proposalError(err)
	}
	return nil
}

// expiryLoop makes the leader propose the removal of expired keys, stamped
// with its own clock, so that expiry is part of the log.
func (s *server) expiryLoop() {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stopc:
			return
		case <-t.C:
		}
		if s.leader.Load() != s.id {
			continue
		}
		now := s.now().UnixNano()
		next := s.store.NextExpiration()
		if next == 0 || next > now {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
		if _, err := s.propose(ctx, &kv.Request{Method: kv.MethodExpire, Time: now}); err != nil {
			slog.Warn("expiry sweep failed", "err", err)
		}
		cancel()
	}
}
