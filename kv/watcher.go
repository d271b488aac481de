// Watchers: waiting for a change under a key.

package kv

import (
	"path"
	"strings"
)

// watcherBuffer is how many events a watcher may have waiting before it is
// dropped as too slow.
const watcherBuffer = 100

// Watcher receives the events of one watch. A one-shot watcher gets one
// event; a stream watcher gets every matching event until it is removed. The
// channel is closed when a stream watcher falls too far behind.
type Watcher struct {
	events     chan *Event
	recursive  bool
	stream     bool
	sinceIndex uint64
	startIndex uint64
	key        string
	removed    bool
	hub        *watcherHub
	elem       *watcherElem
}

// EventChan delivers the watcher's events.
func (w *Watcher) EventChan() <-chan *Event { return w.events }

// StartIndex is the store index when the watch began.
func (w *Watcher) StartIndex() uint64 { return w.startIndex }

// notify hands e to the watcher if it wants it and reports whether it did.
func (w *Watcher) notify(e *Event, originalPath, deleted bool) bool {
	if !(w.recursive || originalPath || deleted) || e.Index() < w.sinceIndex {
		return false
	}
	select {
	case w.events <- e:
	default:
		// too slow: drop the watcher; closing tells its reader.
		w.hub.removeLocked(w)
	}
	return true
}

// watcherElem links the watchers on one path.
type watcherElem struct {
	w          *Watcher
	prev, next *watcherElem
}

type watcherList struct {
	head, tail *watcherElem
	n          int
}

func (l *watcherList) push(w *Watcher) {
	e := &watcherElem{w: w, prev: l.tail}
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
	l.n++
	w.elem = e
}

func (l *watcherList) unlink(e *watcherElem) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
	l.n--
}

// watcherHub indexes watchers by the path they watch, so an event wakes
// only the watchers on its path and its ancestors. It is guarded by the
// store's lock.
type watcherHub struct {
	watchers map[string]*watcherList
	count    int
	history  *history
}

func newWatcherHub() *watcherHub {
	return &watcherHub{watchers: map[string]*watcherList{}, history: newHistory(HistorySize)}
}

func (h *watcherHub) watch(key string, recursive, stream bool, since, storeIndex uint64) (*Watcher, *Error) {
	e, err := h.history.scan(key, recursive, since)
	if err != nil {
		err.Index = storeIndex
		return nil, err
	}
	w := &Watcher{
		events:     make(chan *Event, watcherBuffer),
		recursive:  recursive,
		stream:     stream,
		sinceIndex: since,
		startIndex: storeIndex,
		key:        key,
		hub:        h,
	}
	for e != nil {
		w.events <- e.withIndex(storeIndex)
		if !stream {
			w.removed = true
			return w, nil
		}
		// a stream goes on with the rest of the history, then live events
		w.sinceIndex = e.Index() + 1
		if len(w.events) == cap(w.events) {
			// more history than fits: end the stream here; the client
			// resumes from the last index it got.
			w.removed = true
			close(w.events)
			return w, nil
		}
		e, _ = h.history.scan(key, recursive, w.sinceIndex)
	}
	l := h.watchers[key]
	if l == nil {
		l = &watcherList{}
		h.watchers[key] = l
	}
	l.push(w)
	h.count++
	return w, nil
}

// removeLocked takes w out of the hub and closes its channel.
func (h *watcherHub) removeLocked(w *Watcher) {
	if w.removed {
		return
	}
	w.removed = true
	if l := h.watchers[w.key]; l != nil && w.elem != nil {
		l.unlink(w.elem)
		if l.n == 0 {
			delete(h.watchers, w.key)
		}
		h.count--
	}
	w.elem = nil
	close(w.events)
}

// notify records e in the history and wakes the watchers on its path and
// every ancestor of it.
func (h *watcherHub) notify(e *Event) {
	h.history.add(e)
	if len(h.watchers) == 0 {
		return
	}
	key := e.Node.Key
	h.notifyWatchers(e, "/", false)
	for i := 2; i <= len(key); i++ {
		if i == len(key) || key[i] == '/' {
			h.notifyWatchers(e, key[:i], false)
		}
	}
}

// notifyWatchers wakes the watchers registered on watchPath; deleted is
// set when watchPath itself is being removed by e.
func (h *watcherHub) notifyWatchers(e *Event, watchPath string, deleted bool) {
	l := h.watchers[watchPath]
	if l == nil {
		return
	}
	originalPath := e.Node.Key == watchPath
	if !originalPath && !deleted && isHidden(watchPath, e.Node.Key) {
		return
	}
	for el := l.head; el != nil; {
		next := el.next
		w := el.w
		if w.notify(e, originalPath, deleted) && !w.stream && !w.removed {
			w.removed = true
			l.unlink(el)
			w.elem = nil
			h.count--
		}
		el = next
	}
	if l.n == 0 {
		delete(h.watchers, watchPath)
	}
}

// isHidden reports whether keyPath, seen from a watch on watchPath, lies
// in or under a hidden (underscore) node.
func isHidden(watchPath, keyPath string) bool {
	if len(watchPath) > len(keyPath) {
		return false
	}
	after := path.Clean("/" + keyPath[len(watchPath):])
	return strings.Contains(after, "/_")
}
