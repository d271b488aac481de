// Package kv is etcdlite's in-memory tree store: the state machine that raft
// feeds. It holds directories and files addressed by slash-separated paths,
// their TTLs, the history of the last 1000 events and the watchers waiting on
// them.
//
// The store is pure and deterministic: it reads no clock and does no I/O,
// and starts no goroutine but the two a snapshot decode runs for its own
// duration (decodeSnapNodes, snapPrefault in snapshot.go). Every write takes the time stamped on its log entry, so each
// member expires the same keys at the same index. Writes are applied by one
// goroutine; reads and watch registrations may run concurrently with it.
package kv
