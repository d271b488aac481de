// The store: the tree of keys and the operations on it.

package kv

import (
	"fmt"
	"path"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// minExpireTime is the earliest expiration taken as real; anything before it
// (a zero or garbled time) means the node is permanent.
var minExpireTime = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC).UnixNano()

// TTLOptions says when a written node expires and whether the write only
// refreshes its TTL.
type TTLOptions struct {
	ExpireTime int64 // Unix nanoseconds; 0 for a permanent node
	Refresh    bool  // keep the value, reset the TTL, wake no watcher
}

// Store is the tree. Writes must come from one goroutine, in log order;
// reads and watches may come from any.
type Store struct {
	mu       sync.RWMutex
	root     *node
	index    uint64
	ttls     ttlHeap
	hub      *watcherHub
	readonly map[string]bool
	stats    Stats
	saveSize atomic.Int64 // bytes of the last snapshot saved or recovered
	answers  answerCache  // recent GET answers of permanent files (answers.go)
}

// New returns an empty store whose root holds the given namespace
// directories; the root and the namespaces cannot be written.
func New(namespaces ...string) *Store {
	s := &Store{
		root:     newDir("/", 0, nil, 0),
		hub:      newWatcherHub(),
		readonly: map[string]bool{"/": true},
	}
	for _, ns := range namespaces {
		ns = cleanPath(ns)
		s.root.children[path.Base(ns)] = newDir(ns, 0, s.root, 0)
		s.readonly[ns] = true
	}
	return s
}

// Index is the index of the last write applied.
func (s *Store) Index() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.index
}

// walk descends to the node at p. With create set it makes missing
// directories (stamped with the next index) on the way.
func (s *Store) walk(p string, create bool) (*node, *Error) {
	n := s.root
	if p == "/" {
		return n, nil
	}
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		name := p[start:i]
		start = i + 1
		if name == "" {
			continue
		}
		if !n.isDir() {
			return nil, NewError(EcodeNotDir, n.path, s.index)
		}
		c, ok := n.children[name]
		if !ok {
			if !create {
				return nil, NewError(EcodeKeyNotFound, p[:i], s.index)
			}
			c = newDir(p[:i], s.index+1, n, 0)
			n.children[name] = c
		}
		n = c
	}
	return n, nil
}

// get finds the node at a clean path.
func (s *Store) get(p string) (*node, *Error) {
	return s.walk(p, false)
}

// Get returns the node at p; a directory lists its visible children, all
// levels deep when recursive, in key order when sorted. now is the time the
// TTLs in the answer are computed against. The server answers reads with
// AppendGet (answers.go), the same read as JSON; Get is its reference in
// the tests.
func (s *Store) Get(p string, recursive, sorted bool, now int64) (*Event, *Error) {
	ev, err := s.Lookup(p, recursive, sorted, now)
	s.count(err, statGetsSuccess, statGetsFail)
	return ev, err
}

// Lookup is Get for the server's own reads (membership, its bookkeeping):
// it is not counted in the statistics clients see.
func (s *Store) Lookup(p string, recursive, sorted bool, now int64) (*Event, *Error) {
	p = cleanPath(p)
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.get(p)
	if err != nil {
		return nil, err
	}
	e := newEvent(ActionGet, s.index)
	n.listingInto(e.Node, recursive, sorted, now)
	return e, nil
}

// Set writes a file (or an empty directory) at p, replacing a file there.
func (s *Store) Set(p string, dir bool, value string, opts TTLOptions, now int64) (*Event, *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.set(cleanPath(p), dir, value, opts, now)
	s.count(err, statSetsSuccess, statSetsFail)
	return e, err
}

func (s *Store) set(p string, dir bool, value string, opts TTLOptions, now int64) (*Event, *Error) {
	prev, getErr := s.get(p)
	if getErr != nil && getErr.Code != EcodeKeyNotFound {
		return nil, getErr
	}
	if opts.Refresh {
		if getErr != nil {
			return nil, getErr
		}
		value = prev.value
	}
	// create gives the event the node it replaces as PrevNode
	e, err := s.create(p, dir, value, false, true, opts.ExpireTime, ActionSet, now)
	if err != nil {
		return nil, err
	}
	s.publish(e, opts.Refresh)
	return e, nil
}

// Create makes a new file or directory at p, failing if one exists. With
// unique it makes a new child of p named after the write's index instead.
func (s *Store) Create(p string, dir bool, value string, unique bool, opts TTLOptions, now int64) (*Event, *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.create(cleanPath(p), dir, value, unique, false, opts.ExpireTime, ActionCreate, now)
	if err == nil {
		s.publish(e, false)
	}
	s.count(err, statCreateSuccess, statCreateFail)
	return e, err
}

// create does the work of Set and Create: the event is not yet published.
func (s *Store) create(p string, dir bool, value string, unique, replace bool, expire int64, action string, now int64) (*Event, *Error) {
	curr, next := s.index, s.index+1
	if unique {
		p = cleanPath(p + "/" + fmt.Sprintf("%020d", next))
	}
	if s.readonly[p] {
		return nil, NewError(EcodeRootROnly, "/", curr)
	}
	if expire < minExpireTime {
		expire = 0
	}
	dirName, name := path.Split(p)
	parent, err := s.walk(path.Clean(dirName), true)
	if err == nil && !parent.isDir() {
		err = NewError(EcodeNotDir, parent.path, curr)
	}
	if err != nil {
		s.stats.inc(statSetsFail)
		err.Index = curr
		return nil, err
	}
	e := newEvent(action, next)
	var n *node
	if old, ok := parent.children[name]; ok {
		if !replace {
			return nil, NewError(EcodeNodeExist, p, curr)
		}
		if old.isDir() {
			return nil, NewError(EcodeNotFile, p, curr)
		}
		e.PrevNode = old.repr(false, false, now)
		if dir {
			s.removeNode(old, nil)
		} else {
			// A file replacing a file takes over its node and path: an
			// overwrite allocates no node, and nodes recovered from a
			// snapshot (in shared blocks) stay in use.
			s.ttls.remove(old)
			*old = fileNode(old.path, value, next, parent, expire)
			n = old
		}
	}
	if n == nil {
		if dir {
			n = newDir(p, next, parent, expire)
		} else {
			n = newFile(p, value, next, parent, expire)
		}
		parent.children[name] = n
	}
	if expire != 0 {
		s.ttls.push(n)
	}
	n.reprInto(e.Node, false, false, now)
	s.index = next
	return e, nil
}

// newEvent is an event whose Node is allocated with it, to be filled in.
func newEvent(action string, index uint64) *Event {
	x := &struct {
		ev   Event
		node NodeExtern
	}{}
	x.ev = Event{Action: action, EtcdIndex: index, Node: &x.node}
	return &x.ev
}

// Update changes the value or TTL of the node at p, which must exist.
func (s *Store) Update(p string, value string, opts TTLOptions, now int64) (*Event, *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.update(cleanPath(p), value, opts, now)
	s.count(err, statUpdateSuccess, statUpdateFail)
	return e, err
}

func (s *Store) update(p string, value string, opts TTLOptions, now int64) (*Event, *Error) {
	if s.readonly[p] {
		return nil, NewError(EcodeRootROnly, "/", s.index)
	}
	curr, next := s.index, s.index+1
	n, err := s.get(p)
	if err != nil {
		return nil, err
	}
	if n.isDir() && len(value) != 0 {
		return nil, NewError(EcodeNotFile, p, curr)
	}
	if opts.Refresh {
		value = n.value
	}
	e := newEvent(ActionUpdate, next)
	e.PrevNode = n.repr(false, false, now)
	if !n.isDir() {
		// directories keep their modified index: only a file's content changes
		n.value = value
		n.modifiedIndex = next
	}
	s.setExpire(n, opts.ExpireTime)
	n.reprInto(e.Node, false, false, now)
	e.Node.ModifiedIndex, e.Node.CreatedIndex = next, n.createdIndex
	s.index = next
	s.publish(e, opts.Refresh)
	return e, nil
}

// setExpire gives n a new expiration (0: none) and keeps the heap in step.
func (s *Store) setExpire(n *node, expire int64) {
	if expire < minExpireTime {
		expire = 0
	}
	n.expireTime = expire
	if expire == 0 {
		s.ttls.remove(n)
	} else {
		s.ttls.fix(n)
	}
}

// CompareAndSwap writes value at p if the file there has prevValue and/or
// prevIndex (an empty or zero one is not compared).
func (s *Store) CompareAndSwap(p, prevValue string, prevIndex uint64, value string, opts TTLOptions, now int64) (*Event, *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.compareAndSwap(cleanPath(p), prevValue, prevIndex, value, opts, now)
	s.count(err, statCompareAndSwapSuccess, statCompareAndSwapFail)
	return e, err
}

func (s *Store) compareAndSwap(p, prevValue string, prevIndex uint64, value string, opts TTLOptions, now int64) (*Event, *Error) {
	if s.readonly[p] {
		return nil, NewError(EcodeRootROnly, "/", s.index)
	}
	n, err := s.compareFile(p, prevValue, prevIndex)
	if err != nil {
		return nil, err
	}
	if opts.Refresh {
		value = n.value
	}
	s.index++
	e := newEvent(ActionCompareAndSwap, s.index)
	e.PrevNode = n.repr(false, false, now)
	n.value = value
	n.modifiedIndex = s.index
	s.setExpire(n, opts.ExpireTime)
	n.reprInto(e.Node, false, false, now)
	s.publish(e, opts.Refresh)
	return e, nil
}

// compareFile finds the file at p and tests it against prevValue and
// prevIndex: the common first half of compare-and-swap and -delete.
func (s *Store) compareFile(p, prevValue string, prevIndex uint64) (*node, *Error) {
	n, err := s.get(p)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		return nil, NewError(EcodeNotFile, p, s.index)
	}
	if cause, ok := compare(n, prevValue, prevIndex); !ok {
		return nil, NewError(EcodeTestFailed, cause, s.index)
	}
	return n, nil
}

// compare tests a file against prevValue and prevIndex and says why it
// failed in etcd's words.
func compare(n *node, prevValue string, prevIndex uint64) (string, bool) {
	indexOK := prevIndex == 0 || n.modifiedIndex == prevIndex
	valueOK := prevValue == "" || n.value == prevValue
	switch {
	case indexOK && valueOK:
		return "", true
	case indexOK:
		return "[" + prevValue + " != " + n.value + "]", false
	case valueOK:
		return "[" + strconv.FormatUint(prevIndex, 10) + " != " + strconv.FormatUint(n.modifiedIndex, 10) + "]", false
	}
	return "[" + prevValue + " != " + n.value + "] [" + strconv.FormatUint(prevIndex, 10) + " != " + strconv.FormatUint(n.modifiedIndex, 10) + "]", false
}

// Delete removes the node at p: a directory only with dir (empty) or
// recursive (with everything below it).
func (s *Store) Delete(p string, dir, recursive bool, now int64) (*Event, *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.delete(cleanPath(p), dir, recursive, now)
	s.count(err, statDeleteSuccess, statDeleteFail)
	return e, err
}

func (s *Store) delete(p string, dir, recursive bool, now int64) (*Event, *Error) {
	if s.readonly[p] {
		return nil, NewError(EcodeRootROnly, "/", s.index)
	}
	if recursive {
		dir = true
	}
	n, err := s.get(p)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		if !dir {
			return nil, NewError(EcodeNotFile, n.path, s.index)
		}
		if len(n.children) != 0 && !recursive {
			return nil, NewError(EcodeDirNotEmpty, n.path, s.index)
		}
	}
	next := s.index + 1
	e := &Event{Action: ActionDelete, EtcdIndex: next, PrevNode: n.repr(false, false, now),
		Node: &NodeExtern{Key: p, Dir: n.isDir(), ModifiedIndex: next, CreatedIndex: n.createdIndex}}
	s.removeNode(n, e)
	s.index = next
	s.hub.notify(e)
	return e, nil
}

// CompareAndDelete removes the file at p if it has prevValue and/or
// prevIndex.
func (s *Store) CompareAndDelete(p, prevValue string, prevIndex uint64, now int64) (*Event, *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.compareAndDelete(cleanPath(p), prevValue, prevIndex, now)
	s.count(err, statCompareAndDeleteSuccess, statCompareAndDeleteFail)
	return e, err
}

func (s *Store) compareAndDelete(p, prevValue string, prevIndex uint64, now int64) (*Event, *Error) {
	n, err := s.compareFile(p, prevValue, prevIndex)
	if err != nil {
		return nil, err
	}
	s.index++
	e := &Event{Action: ActionCompareAndDelete, EtcdIndex: s.index, PrevNode: n.repr(false, false, now),
		Node: &NodeExtern{Key: p, ModifiedIndex: s.index, CreatedIndex: n.createdIndex}}
	s.removeNode(n, e)
	s.hub.notify(e)
	return e, nil
}

// removeNode unlinks n and everything below it. With e set, the watchers
// on every removed path are told of e.
func (s *Store) removeNode(n *node, e *Event) {
	if n.isDir() {
		for _, c := range n.sortedChildren() {
			s.removeNode(c, e)
		}
	}
	if n.parent != nil && n.parent.children[n.name()] == n {
		delete(n.parent.children, n.name())
	}
	if e != nil {
		s.hub.notifyWatchers(e, n.path, true)
	}
	s.ttls.remove(n)
}

// DeleteExpiredKeys removes every node whose expiration is at or before
// cutoff, each as its own expire event, and returns those events.
func (s *Store) DeleteExpiredKeys(cutoff int64) []*Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Event
	for {
		n := s.ttls.top()
		if n == nil || n.expireTime > cutoff {
			return out
		}
		s.index++
		e := &Event{Action: ActionExpire, EtcdIndex: s.index, PrevNode: n.repr(false, false, cutoff),
			Node: &NodeExtern{Key: n.path, Dir: n.isDir(), ModifiedIndex: s.index, CreatedIndex: n.createdIndex}}
		s.ttls.remove(n)
		s.removeNode(n, e)
		s.stats.inc(statExpireCount)
		s.hub.notify(e)
		out = append(out, e)
	}
}

// NextExpiration is the earliest expiration in the store, 0 if none.
func (s *Store) NextExpiration() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if n := s.ttls.top(); n != nil {
		return n.expireTime
	}
	return 0
}

// publish records e and wakes its watchers; a refresh is only recorded.
func (s *Store) publish(e *Event, refresh bool) {
	if refresh {
		e.Refresh = true
		s.hub.history.add(e)
		return
	}
	s.hub.notify(e)
}

func (s *Store) count(err *Error, ok, fail int) {
	if err == nil {
		s.stats.inc(ok)
	} else {
		s.stats.inc(fail)
	}
}

// Watch starts a watch on p (and below it when recursive) for events from
// index since on; 0 means from the next write. A watch whose event is
// already in the history is answered at once; one older than the history
// fails with error 401.
func (s *Store) Watch(p string, recursive, stream bool, since uint64) (*Watcher, *Error) {
	p = cleanPath(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	if since == 0 {
		since = s.index + 1
	}
	return s.hub.watch(p, recursive, stream, since, s.index)
}

// Unwatch stops a watcher that is no longer wanted (its client went away).
func (s *Store) Unwatch(w *Watcher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.hub.removeLocked(w)
}
