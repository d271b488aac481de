// The answers of GETs: a read's JSON appended straight to the caller's
// buffer, and the cache of recent answers for permanent files.

package kv

import (
	"slices"
	"sync/atomic"
)

// answerSlots is how many answers the cache holds (a power of two).
const answerSlots = 512

// maxCachedAnswer is the longest answer the cache keeps: larger values are
// rare and mostly cost their copy, which the cache does not save.
const maxCachedAnswer = 1024

// answerCache holds the JSON answers of recent GETs of permanent files, so
// that a file read again before it changes is answered by a copy instead of
// being encoded anew (BenchmarkAppendGet, 2026-12-03: 218 ns and no
// allocation against 553 ns and 144 B for Get and Event.AppendJSON). An answer sits in the slot its file's
// modifiedIndex picks and is valid while the file there has the same path
// and modifiedIndex: every write gives the file it writes a new
// modifiedIndex, so a write needs no invalidation, and a permanent file's
// answer does not depend on the time. Readers fill slots concurrently under
// the store's read lock; Recover empties them.
type answerCache struct {
	slots [answerSlots]atomic.Pointer[cachedAnswer]
}

// cachedAnswer is one GET answer, immutable once stored.
type cachedAnswer struct {
	path          string // the file's path in the store
	trim          string // the prefix its key was written without
	modifiedIndex uint64
	json          []byte
}

// clear empties every slot.
func (c *answerCache) clear() {
	for i := range c.slots {
		c.slots[i].Store(nil)
	}
}

// appendFile appends the GET answer for the permanent file n, from the
// cache when it holds it.
func (c *answerCache) appendFile(b []byte, n *node, trim string) []byte {
	slot := &c.slots[n.modifiedIndex&(answerSlots-1)]
	if a := slot.Load(); a != nil && a.modifiedIndex == n.modifiedIndex && a.path == n.path && a.trim == trim {
		return append(b, a.json...)
	}
	start := len(b)
	b = appendGetAnswer(b, n, trim, 0)
	if len(b)-start <= maxCachedAnswer {
		slot.Store(&cachedAnswer{path: n.path, trim: trim, modifiedIndex: n.modifiedIndex, json: slices.Clone(b[start:])})
	}
	return b
}

// appendGetAnswer appends the JSON answer of a GET of the file n at now,
// as Event.AppendJSON writes it.
func appendGetAnswer(b []byte, n *node, trim string, now int64) []byte {
	var e NodeExtern
	n.reprInto(&e, false, false, now)
	b = append(b, `{"action":"get","node":`...)
	b = e.appendJSON(b, trim)
	return append(b, "}\n"...)
}

// AppendGet is Get with the answer appended to b as JSON (Event.AppendJSON,
// keys written without trim), and the store's index it was read at.
func (s *Store) AppendGet(b []byte, p string, recursive, sorted bool, now int64, trim string) ([]byte, uint64, *Error) {
	p = cleanPath(p)
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.get(p)
	s.count(err, statGetsSuccess, statGetsFail)
	if err != nil {
		return b, 0, err
	}
	switch {
	case n.isDir():
		e := newEvent(ActionGet, s.index)
		n.listingInto(e.Node, recursive, sorted, now)
		b = e.AppendJSON(b, trim, false)
	case n.isPermanent():
		b = s.answers.appendFile(b, n, trim)
	default: // its TTL in the answer counts down
		b = appendGetAnswer(b, n, trim, now)
	}
	return b, s.index, nil
}
