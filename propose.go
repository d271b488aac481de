// Proposals and their waiters: propose and await for a client request, the
// wait lists the apply side wakes, the applied-index notifier, linearizable
// reads through ReadIndex, request timeouts and the leader's expiry sweeps.

package main

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"

	"etcdlite/kv"
)

// Errors a proposal can end with besides the store's own.
var (
	errTimeout = errors.New("etcdserver: request timed out")
	errStopped = errors.New("etcdserver: server stopped")
)

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
	mu   sync.Mutex
	m    map[uint64]waiter
	free sync.Pool // answer channels back from await, empty and no one else's
}

// waiter is one registered wait: its answer channel and its deadline.
type waiter struct {
	ch       chan applyResult
	deadline int64 // unix nanoseconds
}

// register starts a wait for id that the expiry sweep ends at deadline.
func (w *waitList) register(id uint64, deadline time.Time) chan applyResult {
	ch, _ := w.free.Get().(chan applyResult)
	if ch == nil {
		ch = make(chan applyResult, 1)
	}
	w.mu.Lock()
	w.m[id] = waiter{ch: ch, deadline: deadline.UnixNano()}
	w.mu.Unlock()
	return ch
}

// cancel forgets the wait for id (its waiter has gone).
func (w *waitList) cancel(id uint64) {
	w.mu.Lock()
	delete(w.m, id)
	w.mu.Unlock()
}

// len is how many waits are open: the proposals (writes, membership and
// auth changes) waiting for their results, etcd_server_proposals_pending.
// Counting them here spares every write two additions to a shared counter.
func (w *waitList) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.m)
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

// trigger hands r to the wait for id, if there is one, and forgets it.
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

// advance records index as applied and wakes every wait.
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

// propose sends r through raft and waits until it is applied.
func (s *server) propose(ctx context.Context, r *kv.Request) (*kv.Event, error) {
	if err := s.writable(); err != nil {
		return nil, err
	}
	r.ID = nextRequestID()
	if r.Time == 0 {
		r.Time = s.now().UnixNano()
	}
	ch := s.waits.register(r.ID, s.waitDeadline())
	if !s.inbox.propose(proposal{id: r.ID, data: r.AppendBinary(nil), ctx: ctx}) {
		s.waits.cancel(r.ID)
		return nil, errStopped
	}
	res, err := s.waits.await(ch)
	if err != nil {
		if res.err == nil { // not the store's answer: the proposal failed
			s.metrics.failed.Add(1)
		}
		return nil, err
	}
	return res.event, nil
}

// await waits for the result registered in w for ch: it comes from the
// raft loop, or is a timeout from the expiry sweep, or errStopped when the
// loop ends (closeInbox fails every wait still open). The caller's context
// is not watched: every wait has the sweep's deadline (the contexts callers
// pass end no sooner), and a client that goes away has its proposal
// dropped before it is proposed (proposeBatch) or gets no answer after.
// Not asking a request's context for its Done channel spares making and
// closing one per write (0.3 µs of a write's 37 µs of CPU in a profile),
// and a plain receive instead of a select with the server's stop channel
// spares every waiter locking that one shared channel twice. Whoever sends
// the one answer has taken the wait out of w first, so once it is received
// the channel is no one's and goes back to w for the next wait (151 B of
// garbage less per write; with raftStorage, 25.6 against 25.9 µs of CPU
// per write under 256 writers, three interleaved runs).
func (w *waitList) await(ch chan applyResult) (applyResult, error) {
	res := <-ch
	w.free.Put(ch)
	switch {
	case res.fail != nil:
		return res, res.fail
	case res.err != nil:
		return res, res.err
	}
	return res, nil
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
			s.sweepClock.set(now)
			s.waits.expire(now)
			s.readIndexes.expire(now)
		}
	}
}

// waitDeadline is when a wait registered now is ended by the sweep: a
// request timeout from now, read from the sweep's own clock (a wait needs
// no finer one than the sweep that ends it), and one sweep interval later
// so that the coarser clock never ends a wait sooner than the timeout.
func (s *server) waitDeadline() time.Time {
	return s.sweepClock.now().Add(s.requestTimeout() + waitSweepInterval)
}

// sweepClock is the time as of the last wait sweep. Reading it costs no
// clock read, which here costs about 0.1 µs (time.Now, a 2-vCPU VM).
type sweepClock struct {
	nanos atomic.Int64 // unix nanoseconds; 0 before the first sweep
}

// set records the time of a sweep.
func (c *sweepClock) set(t time.Time) { c.nanos.Store(t.UnixNano()) }

// now is the time of the last sweep, or the clock's before the first.
func (c *sweepClock) now() time.Time {
	if n := c.nanos.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Now()
}

// waitSweepInterval is how often overdue waits are looked for.
const waitSweepInterval = 100 * time.Millisecond

// proposalError maps raft's and the context's errors to etcd's.
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
	ch := s.readIndexes.register(id, s.waitDeadline())
	if !s.inbox.read(id) {
		s.readIndexes.cancel(id)
		return errStopped
	}
	res, err := s.readIndexes.await(ch)
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

// nextRequestID returns a random proposal id: ids must not repeat across
// restarts, or a replayed entry could answer a new request.
func nextRequestID() uint64 { return rand.Uint64() | 1 }
