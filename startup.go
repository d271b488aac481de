// The end of recovery: the log replayed, the collector paused since the
// start of recovery resumed once clients are served, and the memory recovery
// read and decoded given back.

package main

import (
	"log/slog"
	"runtime/debug"
	"time"
)

// recoveryGCWait is how long the collection at the end of recovery waits
// for the member to serve clients (a member of a cluster without a leader
// may wait for that much longer).
const recoveryGCWait = time.Second

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
