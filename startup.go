// The end of recovery: the log replayed, the collector paused since the
// start of recovery resumed once clients are served (when the log to replay
// is short next to the snapshot), and the memory recovery read and decoded
// given back.

package main

import (
	"log/slog"
	"runtime/debug"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// recoveryGCWait is how long the collection at the end of recovery waits
// for the member to serve clients (a member of a cluster without a leader
// may wait for that much longer).
const recoveryGCWait = time.Second

// replayFitsPause reports whether the collector may stay off while the
// entries after applied up to commit are replayed: only while they hold at
// most half as many bytes as the snapshot recovery decoded (the store that
// snapshot became is several times its size), so that the garbage the
// replay leaves stays small next to the live heap. A longer log is replayed
// with the collector on, as the heap could otherwise grow by several times
// the log before the one collection at the end.
func replayFitsPause(snapBytes int, ents []raftpb.Entry, applied, commit uint64) bool {
	n := 0
	for i := range ents {
		if e := &ents[i]; e.Index > applied && e.Index <= commit {
			n += len(e.Data)
		}
	}
	return n <= snapBytes/2
}

// replayed runs on the raft loop once the entries committed in the log at
// start are applied (or at the end of recovery if there are none). The collector stays off until clients are served (at
// most recoveryGCWait): resumed earlier, it would start at once (its goal is
// still that of the empty heap before recovery) and mark the whole store
// while the member elects itself and publishes, and after it another
// collection would still be needed to give the memory back. So one
// collection, which also gives back what recovery read and decoded (garbage
// now; without it the runtime would keep that memory for minutes), runs
// after the member serves, and the collector resumes with its goal set
// from the store's live heap.
func (s *server) replayed() {
	slog.Info("recovery complete", "snapshot-index", s.snapshotIndex, "entries-replayed", s.appliedIndex-s.replayFrom,
		"keys-index", s.store.Index(), "took", time.Since(s.replayStart).Round(time.Millisecond))
	s.replayTo = 0
	resume := s.recoveryGC
	s.recoveryGC = nil
	go func() {
		t := time.NewTimer(recoveryGCWait)
		defer t.Stop()
		select {
		case <-s.ready:
		case <-s.stopc:
		case <-t.C:
		}
		debug.FreeOSMemory()
		if resume != nil {
			resume()
		}
	}()
}

// resumeRecoveryGC turns the collector back on if recovery paused it and
// replayed has not taken that over (start-up failed, or the member stopped
// before its log was replayed).
func (s *server) resumeRecoveryGC() {
	if s.recoveryGC != nil {
		s.recoveryGC()
		s.recoveryGC = nil
	}
}
