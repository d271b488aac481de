// The inbox: what other goroutines hand the raft loop (client proposals,
// peer messages, quorum reads, membership changes, transport reports),
// taken in batches; peer messages are bounded.

package main

import (
	"context"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// inboxMaxMessages bounds the peer messages waiting for the raft loop; a
// peer's stream blocks beyond it, which slows its sender through TCP.
const inboxMaxMessages = 8192

// proposal is a client write waiting to enter the raft log.
type proposal struct {
	id   uint64          // the waitList key its result is delivered under
	data []byte          // the encoded kv.Request
	ctx  context.Context // once done, the proposal is not worth proposing
}

// raftInbox is everything other goroutines hand to the raft loop: client
// proposals, peers' messages, quorum-read requests, membership changes and
// transport reports. Producers append under one mutex and wake the loop,
// which takes everything at once: a burst of writes becomes a single raft
// step and a single Ready (one WAL write, one fsync).
type raftInbox struct {
	mu      sync.Mutex
	space   *sync.Cond // signalled when messages are taken
	closed  bool       // the loop has stopped; nothing more is taken
	props   []proposal
	msgs    []raftpb.Message
	reads   []uint64 // readIndexes keys of quorum reads
	changes []raftpb.ConfChange
	reports []func(*raft.RawNode)
	wake    chan struct{} // one pending wake-up at most
}

// newRaftInbox returns an empty, open inbox.
func newRaftInbox() *raftInbox {
	in := &raftInbox{wake: make(chan struct{}, 1)}
	in.space = sync.NewCond(&in.mu)
	return in
}

// notify wakes the loop unless a wake-up is already pending.
func (in *raftInbox) notify() {
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// add runs queue under the lock unless the loop has stopped, then wakes
// the loop; false if it has stopped.
func (in *raftInbox) add(queue func()) bool {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return false
	}
	queue()
	in.mu.Unlock()
	in.notify()
	return true
}

// propose queues a client write; false if the loop has stopped.
func (in *raftInbox) propose(p proposal) bool {
	return in.add(func() { in.props = append(in.props, p) })
}

// step queues a peer's message, waiting while the inbox is full; false if
// the loop has stopped or ctx ended first.
func (in *raftInbox) step(ctx context.Context, m raftpb.Message) bool {
	in.mu.Lock()
	for len(in.msgs) >= inboxMaxMessages && !in.closed && ctx.Err() == nil {
		in.space.Wait()
	}
	if in.closed || ctx.Err() != nil {
		in.mu.Unlock()
		return false
	}
	in.msgs = append(in.msgs, m)
	in.mu.Unlock()
	in.notify()
	return true
}

// read queues a quorum read registered in readIndexes under id.
func (in *raftInbox) read(id uint64) bool {
	return in.add(func() { in.reads = append(in.reads, id) })
}

// change queues a membership change.
func (in *raftInbox) change(cc raftpb.ConfChange) bool {
	return in.add(func() { in.changes = append(in.changes, cc) })
}

// report queues a call the loop makes on the raft node (a transport's
// report about a peer).
func (in *raftInbox) report(f func(*raft.RawNode)) {
	in.add(func() { in.reports = append(in.reports, f) })
}

// inboxBatch is what the loop takes from the inbox at once.
type inboxBatch struct {
	props   []proposal
	msgs    []raftpb.Message
	reads   []uint64
	changes []raftpb.ConfChange
	reports []func(*raft.RawNode)
}

// take moves everything queued into b, reusing b's slices, which the
// caller must be done with. Proposals stay queued while holdProposals is
// set (no leader is known: raft would drop them), so that they wait for an
// election as long as their requests allow. At most maxBatchBytes of
// proposals are taken at once (one larger proposal alone).
func (in *raftInbox) take(b *inboxBatch, holdProposals bool) {
	in.mu.Lock()
	b.msgs, in.msgs = in.msgs, b.msgs[:0]
	b.reads, in.reads = in.reads, b.reads[:0]
	b.changes, in.changes = in.changes, b.changes[:0]
	b.reports, in.reports = in.reports, b.reports[:0]
	if holdProposals {
		b.props = b.props[:0]
		kept := in.props[:0]
		for _, p := range in.props {
			if p.ctx.Err() == nil {
				kept = append(kept, p)
			}
		}
		clear(in.props[len(kept):])
		in.props = kept
	} else if n := proposalsWithin(in.props, maxBatchBytes); n == len(in.props) {
		b.props, in.props = in.props, b.props[:0]
	} else {
		// A batch of large values waits for the next pass (limits.go):
		// the loop is woken again at once for it.
		b.props = append(b.props[:0], in.props[:n]...)
		rest := copy(in.props, in.props[n:])
		clear(in.props[rest:])
		in.props = in.props[:rest]
		in.notify()
	}
	in.space.Broadcast()
	in.mu.Unlock()
}

// close makes every later call fail and wakes blocked producers. What is
// still queued is returned for the caller to fail.
func (in *raftInbox) close() (props []proposal, changes []raftpb.ConfChange) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.closed = true
	props, changes = in.props, in.changes
	in.props, in.msgs, in.reads, in.changes, in.reports = nil, nil, nil, nil, nil
	in.space.Broadcast()
	return props, changes
}

// clear drops the references a taken batch holds, keeping its slices.
func (b *inboxBatch) clear() {
	clear(b.props)
	clear(b.msgs)
	clear(b.reports)
	b.props, b.msgs, b.reads, b.changes, b.reports = b.props[:0], b.msgs[:0], b.reads[:0], b.changes[:0], b.reports[:0]
}
