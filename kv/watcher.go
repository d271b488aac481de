// Watchers: waiting for a change under a key.

package kv

import (
	"container/list"
	"path"
	"strings"
)

// watcherBuffer is how many events a stream watcher may have waiting before
// it is dropped as too slow (a one-shot watcher's channel holds its one).
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
	elem       *list.Element // w in its path's list; nil once out of it
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

// watcherHub indexes watchers by the path they watch, so an event wakes
// only the watchers on its path and its ancestors. It is guarded by the
// store's lock. A path's watchers are a container/list: the hand-written
// list it replaced was faster by itself (BenchmarkWatcherList, a walk of 100:
// container/list 552 ns/op, hand 480 ns/op, medians of 15 interleaved runs)
// but not in the watch it serves (BenchmarkStoreWatchSet, ten one-shot
// watches woken by a set: container/list 16983 ns/op, hand 17999 ns/op,
// medians of 12 interleaved runs of the two builds, 2026-12-01).
type watcherHub struct {
	watchers map[string]*list.List // Values are *Watcher
	count    int
	history  *history
}

func newWatcherHub() *watcherHub {
	return &watcherHub{watchers: map[string]*list.List{}, history: newHistory(HistorySize)}
}

func (h *watcherHub) watch(key string, recursive, stream bool, since, storeIndex uint64) (*Watcher, *Error) {
	e, err := h.history.scan(key, recursive, since)
	if err != nil {
		err.Index = storeIndex
		return nil, err
	}
	buffer := watcherBuffer
	if !stream {
		buffer = 1 // a one-shot watcher gets one event, then is removed
	}
	w := &Watcher{
		events:     make(chan *Event, buffer),
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
		l = list.New()
		h.watchers[key] = l
	}
	w.elem = l.PushBack(w)
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
		l.Remove(w.elem)
		if l.Len() == 0 {
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
	for el := l.Front(); el != nil; {
		next := el.Next()
		w := el.Value.(*Watcher)
		if w.notify(e, originalPath, deleted) && !w.stream && !w.removed {
			w.removed = true
			l.Remove(el)
			w.elem = nil
			h.count--
		}
		el = next
	}
	if l.Len() == 0 {
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
