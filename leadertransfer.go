// leadertransfer.go owns the hand-over of leadership when a leader is
// stopped gracefully (SIGTERM, SIGINT, Shutdown), as etcd does: the most
// caught-up active voter takes over before this member stops, so clients
// (directly or through a proxy) wait for no election and no write forwarded
// to the leaving leader is lost.
package main

import (
	"log/slog"
	"time"

	"go.etcd.io/raft/v3"
)

// transferLeadership hands leadership to another member if this one leads,
// and waits (at most two election timeouts) until it has. It does nothing
// when the raft loop has stopped or no other voter is active.
func (s *server) transferLeadership() {
	if s.leader.Load() != s.id {
		return
	}
	select {
	case <-s.runDone:
		return
	default:
	}
	limit := 2 * time.Duration(s.cfg.ElectionMs) * time.Millisecond
	chosen := make(chan uint64, 1)
	s.inbox.report(func(rn *raft.RawNode) {
		st := rn.Status()
		var target, match uint64
		if st.RaftState == raft.StateLeader {
			for id, pr := range st.Progress {
				if id != s.id && !pr.IsLearner && pr.RecentActive && (target == 0 || pr.Match > match) {
					target, match = id, pr.Match
				}
			}
		}
		if target != 0 {
			rn.TransferLeader(target)
		}
		chosen <- target
	})
	var target uint64
	select {
	case target = <-chosen:
	case <-s.runDone:
		return
	case <-time.After(limit):
		return
	}
	if target == 0 {
		return
	}
	start := time.Now()
	deadline := start.Add(limit)
	for time.Now().Before(deadline) {
		if l := s.leader.Load(); l != s.id && l != 0 {
			s.logLeaderTransfer(target, l, time.Since(start))
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.logLeaderTransfer(target, 0, time.Since(start))
}

// logLeaderTransfer says how the hand-over went.
func (s *server) logLeaderTransfer(target, leader uint64, took time.Duration) {
	if leader == 0 {
		slog.Warn("leadership transfer did not finish before stopping", "member", idString(s.id), "target", idString(target), "waited", took.Round(time.Millisecond))
		return
	}
	slog.Info("leadership transferred before stopping", "member", idString(s.id), "new-leader", idString(leader), "took", took.Round(time.Millisecond))
}
