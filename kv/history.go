// The event history that watches starting in the past read from.

package kv

import (
	"fmt"
	"path"
	"strings"
)

// HistorySize is how many events the store keeps for watches that start in
// the past.
const HistorySize = 1000

// history is a ring of the most recent events, oldest first.
type history struct {
	events     []*Event
	front      int // position of the oldest event
	count      int
	startIndex uint64 // index of the oldest event kept
	lastIndex  uint64 // index of the newest event kept
}

func newHistory(capacity int) *history {
	return &history{events: make([]*Event, capacity)}
}

func (h *history) add(e *Event) {
	capacity := len(h.events)
	back := (h.front + h.count) % capacity
	h.events[back] = e
	if h.count < capacity {
		h.count++
	} else {
		h.front = (h.front + 1) % capacity
	}
	h.lastIndex = e.Index()
	h.startIndex = h.events[h.front].Index()
}

// scan finds the first event at or after index that a watcher on key
// (recursive or not) would see. It returns nil when there is none yet, and
// error 401 when index is older than the history kept.
func (h *history) scan(key string, recursive bool, index uint64) (*Event, *Error) {
	if index < h.startIndex {
		return nil, NewError(EcodeEventIndexCleared,
			fmt.Sprintf("the requested history has been cleared [%v/%v]", h.startIndex, index), 0)
	}
	if index > h.lastIndex || h.count == 0 {
		return nil, nil
	}
	prefix := key
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	capacity := len(h.events)
	// events are stored in index order but indexes may skip (failed writes
	// produce none), so find the first one at or after index by search.
	lo, hi := 0, h.count
	for lo < hi {
		mid := (lo + hi) / 2
		if h.events[(h.front+mid)%capacity].Index() < index {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	for i := lo; i < h.count; i++ {
		e := h.events[(h.front+i)%capacity]
		if e.Refresh {
			continue
		}
		ok := e.Node.Key == key || (recursive && strings.HasPrefix(e.Node.Key, prefix))
		if !ok && (e.Action == ActionDelete || e.Action == ActionExpire) && e.PrevNode != nil && e.PrevNode.Dir {
			ok = strings.HasPrefix(key, e.PrevNode.Key)
		}
		if ok {
			return e, nil
		}
	}
	return nil, nil
}

// cleanPath makes p absolute and clean, as every store path is. An
// absolute path that is clean already comes back as it is, unallocated.
func cleanPath(p string) string {
	if p != "" && p[0] == '/' {
		return path.Clean(p)
	}
	return path.Clean(path.Join("/", p))
}
