// Tests of the inbox.

package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"etcdlite/kv"
)

func TestInboxTakeHoldsProposalsWithoutLeader(t *testing.T) {
	in := newRaftInbox()
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	in.propose(proposal{id: 1, ctx: live})
	in.propose(proposal{id: 2, ctx: gone})
	in.propose(proposal{id: 3, ctx: live})
	in.step(live, raftpb.Message{Type: raftpb.MsgHeartbeat})
	in.read(7)

	var b inboxBatch
	in.take(&b, true)
	if len(b.props) != 0 || len(b.msgs) != 1 || len(b.reads) != 1 {
		t.Fatalf("held take: %d proposals, %d messages, %d reads; want 0, 1, 1", len(b.props), len(b.msgs), len(b.reads))
	}
	b.clear()
	in.take(&b, false)
	var ids []uint64
	for _, p := range b.props {
		ids = append(ids, p.id)
	}
	if len(ids) != 2 || ids[0] != 1 || ids[1] != 3 {
		t.Fatalf("proposals after a leader is known: %v, want [1 3] (the cancelled one pruned, order kept)", ids)
	}
	if len(b.msgs) != 0 || len(b.reads) != 0 {
		t.Fatalf("messages and reads were taken twice")
	}
}

func TestInboxStepWaitsForSpace(t *testing.T) {
	in := newRaftInbox()
	ctx := context.Background()
	for i := 0; i < inboxMaxMessages; i++ {
		if !in.step(ctx, raftpb.Message{Index: uint64(i)}) {
			t.Fatal("step refused below the limit")
		}
	}
	stepped := make(chan bool)
	go func() { stepped <- in.step(ctx, raftpb.Message{Index: inboxMaxMessages}) }()
	select {
	case <-stepped:
		t.Fatal("step over the limit did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	var b inboxBatch
	in.take(&b, false)
	if !<-stepped {
		t.Fatal("step refused once there was space")
	}
	if len(b.msgs) != inboxMaxMessages {
		t.Fatalf("took %d messages, want %d", len(b.msgs), inboxMaxMessages)
	}
}

func TestInboxCloseFailsEverything(t *testing.T) {
	in := newRaftInbox()
	ctx := context.Background()
	in.propose(proposal{id: 1, ctx: ctx})
	in.change(raftpb.ConfChange{ID: 2})
	for i := 0; i < inboxMaxMessages; i++ {
		in.step(ctx, raftpb.Message{})
	}
	blocked := make(chan bool)
	go func() { blocked <- in.step(ctx, raftpb.Message{}) }()
	props, changes := in.close()
	if len(props) != 1 || len(changes) != 1 {
		t.Fatalf("close returned %d proposals and %d changes, want 1 and 1", len(props), len(changes))
	}
	if <-blocked {
		t.Fatal("a step blocked on a full inbox succeeded after close")
	}
	cases := []struct {
		name string
		call func() bool
	}{
		{"propose", func() bool { return in.propose(proposal{ctx: ctx}) }},
		{"step", func() bool { return in.step(ctx, raftpb.Message{}) }},
		{"read", func() bool { return in.read(3) }},
		{"change", func() bool { return in.change(raftpb.ConfChange{}) }},
	}
	for _, c := range cases {
		if c.call() {
			t.Errorf("%s after close succeeded", c.name)
		}
	}
}

func TestWaitListExpire(t *testing.T) {
	w := waitList{m: map[uint64]waiter{}}
	now := time.Now()
	early := w.register(1, now.Add(-time.Second))
	late := w.register(2, now.Add(time.Hour))
	if n := w.len(); n != 2 {
		t.Fatalf("len %d with two waits open, want 2", n)
	}
	w.expire(now)
	if n := w.len(); n != 1 {
		t.Fatalf("len %d after one wait expired, want 1", n)
	}
	select {
	case r := <-early:
		if r.fail != errTimeout {
			t.Fatalf("expired wait ended with %v, want errTimeout", r.fail)
		}
	default:
		t.Fatal("an overdue wait was not ended")
	}
	select {
	case r := <-late:
		t.Fatalf("a wait before its deadline was ended: %+v", r)
	default:
	}
	w.trigger(2, applyResult{})
	if _, ok := <-late; !ok {
		t.Fatal("trigger did not deliver")
	}
}

// TestWaitListReusesAnsweredChannels: a channel comes back for a new wait
// only once its answer was received, so that every wait gets its own
// answer and no other; a wait cancelled after it was answered (the loop
// ended) keeps its channel out of reuse.
func TestWaitListReusesAnsweredChannels(t *testing.T) {
	w := waitList{m: map[uint64]waiter{}}
	deadline := time.Now().Add(time.Hour)
	for i := uint64(1); i <= 100; i++ {
		ch := w.register(i, deadline)
		w.trigger(i, applyResult{event: &kv.Event{EtcdIndex: i}})
		res, err := w.await(ch)
		if err != nil || res.event.EtcdIndex != i {
			t.Fatalf("wait %d got %+v, %v", i, res, err)
		}
	}
	// answered by failAll, then cancelled as propose does when the inbox
	// is closed: the stale answer must not reach the next wait
	stale := w.register(200, deadline)
	w.failAll(errStopped)
	w.cancel(200)
	for i := uint64(201); i <= 300; i++ {
		ch := w.register(i, deadline)
		if ch == stale {
			t.Fatal("a channel holding an answer was handed to a new wait")
		}
		w.trigger(i, applyResult{event: &kv.Event{EtcdIndex: i}})
		if res, err := w.await(ch); err != nil || res.event.EtcdIndex != i {
			t.Fatalf("wait %d got %+v, %v", i, res, err)
		}
	}
}

// TestProposalOfGoneClient: a write whose client has gone before the raft
// loop takes it is not proposed, and its wait ends with the context's
// error at once (await does not watch the context: without the answer from
// proposeBatch it would wait out the request timeout).
func TestProposalOfGoneClient(t *testing.T) {
	m := startTestMember(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() {
		_, err := m.propose(ctx, &kv.Request{Method: kv.MethodPut, Path: "/gone", Value: "v"})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("propose with a cancelled context: %v, want context.Canceled", err)
		}
	case <-time.After(m.requestTimeout() / 2):
		t.Fatal("a cancelled proposal waited for the request timeout")
	}
	if _, kerr := m.store.Get("/gone", false, false, 0); kerr == nil {
		t.Fatal("a cancelled proposal was applied")
	}
}

// TestWaitDeadline: a wait's deadline, read from the sweep's coarse clock,
// is never sooner than a request timeout from now, and at most two sweep
// intervals later.
func TestWaitDeadline(t *testing.T) {
	cases := []struct {
		name      string
		lastSweep time.Duration // before now; 0: no sweep yet
	}{
		{"before the first sweep", 0},
		{"right after a sweep", time.Millisecond},
		{"a sweep interval after one", waitSweepInterval},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &server{cfg: &config{ElectionMs: 1000}}
			now := time.Now()
			if c.lastSweep != 0 {
				s.sweepClock.set(now.Add(-c.lastSweep))
			}
			d := s.waitDeadline()
			min := now.Add(s.requestTimeout())
			if d.Before(min) {
				t.Fatalf("deadline %v is %v before a request timeout from now", d, min.Sub(d))
			}
			if max := min.Add(2 * waitSweepInterval); d.After(max) {
				t.Fatalf("deadline %v is %v after a request timeout from now", d, d.Sub(min))
			}
		})
	}
}

// TestLoopEndFailsOpenWaits: when the raft loop ends, every wait still
// open (a write in the log not yet applied, a quorum read) ends with
// errStopped, for await watches nothing else.
func TestLoopEndFailsOpenWaits(t *testing.T) {
	m := startTestMember(t, nil)
	deadline := time.Now().Add(time.Hour) // no sweep ends them first
	write := m.waits.register(nextRequestID(), deadline)
	read := m.readIndexes.register(nextRequestID(), deadline)
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		ch   chan applyResult
	}{{"write", write}, {"quorum read", read}} {
		select {
		case r := <-c.ch:
			if r.fail != errStopped {
				t.Errorf("%s ended with %v, want errStopped", c.name, r.fail)
			}
		default:
			t.Errorf("the %s's wait is still open after the loop ended", c.name)
		}
	}
}
