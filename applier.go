// applier.go owns the goroutine that applies committed entries to the
// store: the raft loop hands it each Ready's committed entries and waits
// for it, so that entries are applied one batch at a time, in log order,
// by one goroutine; the raft loop writes and fsyncs the Ready's new
// entries meanwhile.
//
// Committed entries are durable on a quorum already, so applying them
// needs nothing of this Ready's fsync. With the applying done beside the
// fdatasync, the disk no longer waits for it and the log's sync cycle is
// shorter by the time the applying takes. It is done here rather than by
// syncing in a goroutine of its own: a goroutine woken by the raft loop
// waits for a processor until the loop blocks, and the loop blocks in the
// fdatasync, which gives its processor to the applier. Measured with
// scripts/ab.sh, one member, six interleaved rounds (2026-12-03): see
// BENCHMARKS.md, session 16.

package main

import raftpb "go.etcd.io/raft/v3/raftpb"

// applier runs apply on the batches it is given, one at a time.
type applier struct {
	apply func([]raftpb.Entry) error
	batch chan []raftpb.Entry
	done  chan error
}

// newApplier starts the goroutine that runs apply; close stops it.
func newApplier(apply func([]raftpb.Entry) error) *applier {
	a := &applier{apply: apply, batch: make(chan []raftpb.Entry), done: make(chan error, 1)}
	go a.loop()
	return a
}

// loop applies each batch and reports how it went.
func (a *applier) loop() {
	for ents := range a.batch {
		a.done <- a.apply(ents)
	}
}

// start hands ents to the applier; wait must follow before anything else
// is handed to it or the state it changes is read.
func (a *applier) start(ents []raftpb.Entry) { a.batch <- ents }

// wait returns once the batch given to start is applied, with its error.
func (a *applier) wait() error { return <-a.done }

// run applies ents and returns when they are applied. Nothing to apply
// costs nothing.
func (a *applier) run(ents []raftpb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	a.start(ents)
	return a.wait()
}

// close stops the goroutine; no batch may be in flight.
func (a *applier) close() { close(a.batch) }
