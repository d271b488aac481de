// Tests of the leadership transfer on stop.

package main

import (
	"testing"
	"time"
)

// TestShutdownTransfersLeadership stops the leader of three members: by
// the time Shutdown returns another member leads and the third knows it,
// long before an election timeout would have passed, and writes through
// the remaining members go on.
func TestShutdownTransfersLeadership(t *testing.T) {
	c := startTestCluster(t, 3, func(cfg *config) { cfg.HeartbeatMs, cfg.ElectionMs = 50, 1000 })
	for round := 0; round < 2; round++ {
		old := c.leader()
		oldID := c.srv(old).id
		start := time.Now()
		c.stop(old)
		stopped := time.Since(start)
		if stopped > 2*time.Second {
			t.Errorf("stopping the leader took %v", stopped)
		}
		waitFor(t, 300*time.Millisecond, "the others to follow a new leader without an election timeout", func() bool {
			var l uint64
			for _, i := range c.running() {
				li := c.srv(i).leader.Load()
				if li == 0 || li == oldID || (l != 0 && li != l) {
					return false
				}
				l = li
			}
			return true
		})
		for _, i := range c.running() {
			putValue(t, c.members[i].url, "after-transfer", c.members[i].cfg.Name)
		}
		c.start(old)
		c.waitReady()
	}
}
