package kv

// This file holds the benchmarks that measure the hand-written containers of
// the package (the TTL heap, the watcher list) against the standard
// library's container/heap and container/list doing the same work, in the
// same test binary, so that each is kept only while it pays.

import (
	"container/heap"
	"container/list"
	"fmt"
	"testing"
)

// stdTTLHeap is the TTL heap written on container/heap, ordered as ttlHeap.
type stdTTLHeap struct{ nodes []*node }

func (h *stdTTLHeap) Len() int { return len(h.nodes) }

func (h *stdTTLHeap) Less(i, j int) bool {
	a, b := h.nodes[i], h.nodes[j]
	if a.expireTime != b.expireTime {
		return a.expireTime < b.expireTime
	}
	return a.path < b.path
}

func (h *stdTTLHeap) Swap(i, j int) {
	h.nodes[i], h.nodes[j] = h.nodes[j], h.nodes[i]
	h.nodes[i].heapIndex = i
	h.nodes[j].heapIndex = j
}

func (h *stdTTLHeap) Push(x any) {
	n := x.(*node)
	n.heapIndex = len(h.nodes)
	h.nodes = append(h.nodes, n)
}

func (h *stdTTLHeap) Pop() any {
	last := len(h.nodes) - 1
	n := h.nodes[last]
	h.nodes[last] = nil
	h.nodes = h.nodes[:last]
	n.heapIndex = -1
	return n
}

// ttlBenchNodes are n nodes with scattered expiration times.
func ttlBenchNodes(n int) []*node {
	ns := make([]*node, n)
	for i := range ns {
		ns[i] = newFile(fmt.Sprintf("/1/k%06d", i), "v", 1, nil, int64((i*7919)%n+1))
	}
	return ns
}

// BenchmarkTTLHeap is the store's use of the heap on 10,000 nodes with a
// TTL: per op one TTL refreshed (fix), one node expired (top, remove) and
// one set with a TTL (push), for the hand heap and for container/heap.
func BenchmarkTTLHeap(b *testing.B) {
	const n = 10000
	b.Run("hand", func(b *testing.B) {
		ns := ttlBenchNodes(n)
		var h ttlHeap
		for _, nd := range ns {
			h.push(nd)
		}
		clock := int64(n)
		i := 0
		for b.Loop() {
			clock++
			r := ns[i%n]
			r.expireTime = clock + int64(n)
			h.fix(r)
			top := h.top()
			h.remove(top)
			top.expireTime = clock + int64(n/2)
			h.push(top)
			i += 7
		}
	})
	b.Run("container-heap", func(b *testing.B) {
		ns := ttlBenchNodes(n)
		var h stdTTLHeap
		for _, nd := range ns {
			heap.Push(&h, nd)
		}
		clock := int64(n)
		i := 0
		for b.Loop() {
			clock++
			r := ns[i%n]
			r.expireTime = clock + int64(n)
			heap.Fix(&h, r.heapIndex)
			top := h.nodes[0]
			heap.Remove(&h, top.heapIndex)
			top.expireTime = clock + int64(n/2)
			heap.Push(&h, top)
			i += 7
		}
	})
}

// handWatcherElem and handWatcherList are the hand-written list of the
// watchers on one path the hub used before container/list, kept here to be
// measured against it.
type handWatcherElem struct {
	w          *Watcher
	prev, next *handWatcherElem
}

type handWatcherList struct {
	head, tail *handWatcherElem
	n          int
}

func (l *handWatcherList) push(w *Watcher) {
	e := &handWatcherElem{w: w, prev: l.tail}
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
	l.n++
}

func (l *handWatcherList) unlink(e *handWatcherElem) {
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

// BenchmarkWatcherList is the hub's use of a path's list of 100 watchers:
// per op one watcher added, the list walked and the oldest taken out, for
// the hand list and for container/list (which the hub uses).
func BenchmarkWatcherList(b *testing.B) {
	const n = 100
	b.Run("hand", func(b *testing.B) {
		var l handWatcherList
		for range n {
			l.push(&Watcher{})
		}
		seen := 0
		for b.Loop() {
			l.push(&Watcher{})
			for el := l.head; el != nil; el = el.next {
				if el.w.stream {
					seen++
				}
			}
			l.unlink(l.head)
		}
		_ = seen
	})
	b.Run("container-list", func(b *testing.B) {
		l := list.New()
		for range n {
			l.PushBack(&Watcher{})
		}
		seen := 0
		for b.Loop() {
			l.PushBack(&Watcher{})
			for el := l.Front(); el != nil; el = el.Next() {
				if el.Value.(*Watcher).stream {
					seen++
				}
			}
			l.Remove(l.Front())
		}
		_ = seen
	})
}

// BenchmarkStoreSetTTL is what the TTL heap serves: a set that gives one of
// 10,000 keys with a TTL a new expiration time.
func BenchmarkStoreSetTTL(b *testing.B) {
	const n = 10000
	s := New("/0", "/1")
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("/1/ttl/k%05d", i)
		if _, err := s.Set(keys[i], false, "v", TTLOptions{ExpireTime: t0 + int64((i*7919)%n+1)*sec}, t0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Set(keys[(i*7)%n], false, "v", TTLOptions{ExpireTime: t0 + int64(n+i)*sec}, t0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkStoreWatchSet is what the watcher list serves: ten one-shot
// watches on a key (the long poll of etcd v2 clients), all woken by a set.
func BenchmarkStoreWatchSet(b *testing.B) {
	s := New("/0", "/1")
	ws := make([]*Watcher, 10)
	b.ReportAllocs()
	for b.Loop() {
		for i := range ws {
			w, err := s.Watch("/1/w/k", false, false, 0)
			if err != nil {
				b.Fatal(err)
			}
			ws[i] = w
		}
		if _, err := s.Set("/1/w/k", false, "v", TTLOptions{}, t0); err != nil {
			b.Fatal(err)
		}
		for _, w := range ws {
			<-w.EventChan()
		}
	}
}
