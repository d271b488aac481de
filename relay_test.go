// Tests of proposals relayed by followers.

package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// TestClusterRelayedProposalCommitted: a member with a stale view of the
// leader sends its proposal to the old leader, which passes it on, keeping
// its sender, to the leader it knows. The proposal must be committed, not
// dropped as a message with a forged sender.
func TestClusterRelayedProposalCommitted(t *testing.T) {
	c := startTestCluster(t, 3, func(cfg *config) {
		if cfg.Name == "m2" {
			cfg.ElectionMs = 60000 // m2 never campaigns: it keeps the view it has
		}
	})
	old := c.leader()
	if old == 2 {
		t.Fatal("m2 leads")
	}
	next := 1 - old
	stale, oldID, nextID := c.srv(2).id, c.srv(old).id, c.srv(next).id
	// m2 hears nothing from now on. The old leader and the next one are cut
	// apart until the old leader, hearing from no quorum, steps down.
	c.setFilter(func(from, to uint64, m *raftpb.Message) (bool, time.Duration) {
		return to == stale || (from == oldID && to == nextID) || (from == nextID && to == oldID), 0
	})
	waitFor(t, 10*time.Second, "the old leader to step down", func() bool { return c.srv(old).leader.Load() != oldID })
	// Joined again, only the next one can win.
	c.setFilter(func(from, to uint64, m *raftpb.Message) (bool, time.Duration) {
		vote := m.Type == raftpb.MsgVote || m.Type == raftpb.MsgPreVote
		return to == stale || (from == oldID && vote), 0
	})
	waitFor(t, 10*time.Second, "the next leader", func() bool {
		return c.srv(old).leader.Load() == nextID && c.srv(next).leader.Load() == nextID
	})
	if got := c.srv(2).leader.Load(); got != oldID {
		t.Fatalf("m2 sees leader %x, want the stale %x", got, oldID)
	}
	// m2's write goes to the old leader, which relays it to the next one.
	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, body, err := linHTTP(&http.Client{Timeout: 20 * time.Second}, "PUT", c.members[2].url+"/v2/keys/relayed", url.Values{"value": {"v"}})
		done <- result{code, body, err}
	}()
	waitFor(t, 20*time.Second, "the relayed write on the leader", func() bool {
		ev, err := c.srv(next).store.Get("/1/relayed", false, false, 0)
		return err == nil && ev.Node.Value == "v"
	})
	c.setFilter(nil) // m2 learns of the commit
	select {
	case r := <-done:
		if r.err != nil || r.code != 201 {
			t.Fatalf("relayed write: %d %s %v", r.code, r.body, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("relayed write not answered")
	}
	if !strings.Contains(c.waitConverged(), "/relayed") {
		t.Fatal("members do not hold the relayed key")
	}
}

// TestTransportAcceptsOnlyLegitimateRelays: on member 2's stream from
// member 1, what raft relays (a proposal, a read-index request, a
// leadership transfer) from another known member is delivered; the same
// from an unknown member, or any other message whose sender is not the
// stream's peer, is dropped.
func TestTransportAcceptsOnlyLegitimateRelays(t *testing.T) {
	a := trStartNode(t, 1, 0x77, nil, "")
	b := trStartNode(t, 2, 0x77, nil, "")
	trLink(t, a, b)
	b.tr.AddPeer(3, []string{trDeadURL(t)}) // known to b, never reachable
	b.tr.AddPeer(4, []string{trDeadURL(t)})
	b.tr.RemovePeer(4)
	msgs := []struct {
		m    raftpb.Message
		keep bool
	}{
		{raftpb.Message{Type: raftpb.MsgProp, From: 3, To: 2, Entries: []raftpb.Entry{{Data: []byte("relayed")}}}, true},
		{raftpb.Message{Type: raftpb.MsgProp, From: 2, To: 2, Entries: []raftpb.Entry{{Data: []byte("back home")}}}, true},
		{raftpb.Message{Type: raftpb.MsgReadIndex, From: 3, To: 2, Entries: []raftpb.Entry{{Data: []byte("ctx")}}}, true},
		{raftpb.Message{Type: raftpb.MsgTransferLeader, From: 3, To: 2, Term: 5}, true},
		{raftpb.Message{Type: raftpb.MsgProp, From: 99, To: 2}, false}, // not a member
		{raftpb.Message{Type: raftpb.MsgProp, From: 4, To: 2}, false},  // removed
		{raftpb.Message{Type: raftpb.MsgApp, From: 3, To: 2, Term: 5}, false},
		{raftpb.Message{Type: raftpb.MsgVote, From: 3, To: 2, Term: 9}, false},
		{raftpb.Message{Type: raftpb.MsgHeartbeat, From: 3, To: 2, Term: 9}, false},
		{raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 9}, true}, // the peer's own
	}
	var send, want []raftpb.Message
	for _, x := range msgs {
		send = append(send, x.m)
		if x.keep {
			want = append(want, x.m)
		}
	}
	a.tr.Send(send)
	trWait(t, 3*time.Second, func() bool { return b.fake.count() >= len(want) }, "%d messages", len(want))
	time.Sleep(50 * time.Millisecond) // nothing more arrives
	trSameMessages(t, b.fake.received(), want)
}
