package kv

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"sync/atomic"
)

// snapFormat is the version of the saved form written by this code.
const snapFormat = 5

// A saved store is a gob-encoded snapHeader followed by the nodes, each
// written by hand (gob would allocate a string per name only to throw it
// away, and decodes several times slower) in depth-first order, parents
// before children:
//
//	uvarint depth (ancestors below the root)
//	uvarint len(name), name (the last element of the path)
//	byte    flags (snapDir, snapExpires)
//	uvarint number of children (a directory) | uvarint len(value), value (a file)
//	uvarint createdIndex, uvarint modifiedIndex
//	varint  expireTime (only with snapExpires)
const (
	snapDir     = 1 << 0
	snapExpires = 1 << 1
)

// snapHeader is the first part of a saved store.
type snapHeader struct {
	Format   int // snapFormat; anything else is refused, never half-read
	Index    uint64
	Readonly []string
	Nodes    int // how many node records follow
	Stats    Stats
	History  []*Event // the event history, oldest first, so watches from the past survive a restart
}

// snapSlabNodes is how many nodes Recover allocates at once.
const snapSlabNodes = 1024

// Save encodes the whole tree and the event history (not the watchers).
func (s *Store) Save() ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := snapHeader{Format: snapFormat, Index: s.index, Stats: s.stats.snapshot(), Nodes: s.countNodes(s.root) - 1}
	for p := range s.readonly {
		h.Readonly = append(h.Readonly, p)
	}
	hist := s.hub.history
	for i := 0; i < hist.count; i++ {
		h.History = append(h.History, hist.events[(hist.front+i)%len(hist.events)])
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&h); err != nil {
		return nil, fmt.Errorf("encode store: %w", err)
	}
	out := make([]byte, buf.Len(), buf.Len()+96*h.Nodes)
	copy(out, buf.Bytes())
	var walk func(n *node, depth uint64)
	walk = func(n *node, depth uint64) {
		out = appendSnapNode(out, n, depth)
		for _, c := range n.children {
			walk(c, depth+1)
		}
	}
	for _, c := range s.root.children {
		walk(c, 0)
	}
	return out, nil
}

// appendSnapNode appends n's record to b.
func appendSnapNode(b []byte, n *node, depth uint64) []byte {
	b = binary.AppendUvarint(b, depth)
	name := n.name()
	b = binary.AppendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	var flags byte
	if n.isDir() {
		flags |= snapDir
	}
	if n.expireTime != 0 {
		flags |= snapExpires
	}
	b = append(b, flags)
	if n.isDir() {
		b = binary.AppendUvarint(b, uint64(len(n.children)))
	} else {
		b = binary.AppendUvarint(b, uint64(len(n.value)))
		b = append(b, n.value...)
	}
	b = binary.AppendUvarint(b, n.createdIndex)
	b = binary.AppendUvarint(b, n.modifiedIndex)
	if n.expireTime != 0 {
		b = binary.AppendVarint(b, n.expireTime)
	}
	return b
}

func (s *Store) countNodes(n *node) int {
	total := 1
	for _, c := range n.children {
		total += s.countNodes(c)
	}
	return total
}

// errSnapTruncated is what a node record that runs past the end gives.
var errSnapTruncated = errors.New("a node record runs past the end")

// snapReader reads node records; the first error sticks.
type snapReader struct {
	b   []byte
	err error
}

func (r *snapReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *snapReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *snapReader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// bytes returns a length-prefixed run of bytes (pointing into the input).
func (r *snapReader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *snapReader) fail() {
	if r.err == nil {
		r.err = errSnapTruncated
	}
	r.b = nil
}

// Recover replaces the store's content with a saved one. Watchers stay
// registered; the event history is the saved one. Nothing of data is kept:
// it may be released once Recover returns.
func (s *Store) Recover(data []byte) error {
	in := bytes.NewReader(data)
	var h snapHeader
	// in is an io.ByteReader, so gob reads exactly the header, no further
	if err := gob.NewDecoder(in).Decode(&h); err != nil {
		return fmt.Errorf("decode store: %w", err)
	}
	if h.Format != snapFormat {
		return fmt.Errorf("decode store: snapshot format %d, this etcdlite reads format %d", h.Format, snapFormat)
	}
	if h.Nodes < 0 || h.Nodes > len(data) {
		return fmt.Errorf("decode store: header claims %d nodes", h.Nodes)
	}
	r := snapReader{b: data[len(data)-in.Len():]}
	root := newDir("/", 0, nil, 0)
	var heap ttlHeap
	stack := []*node{root} // stack[d] is the directory at depth d-1
	var slab []node
	var path []byte
	presize := h.Nodes // what directories' maps may be sized for, in all
	for i := 0; i < h.Nodes; i++ {
		depth := r.uvarint()
		name := r.bytes()
		flags := r.byte()
		var kids uint64
		var value []byte
		if flags&snapDir != 0 {
			kids = r.uvarint()
		} else {
			value = r.bytes()
		}
		created, modified := r.uvarint(), r.uvarint()
		var expire int64
		if flags&snapExpires != 0 {
			expire = r.varint()
		}
		if r.err != nil {
			return fmt.Errorf("decode store: node %d of %d: %w", i, h.Nodes, r.err)
		}
		if depth+1 > uint64(len(stack)) || len(name) == 0 || bytes.IndexByte(name, '/') >= 0 {
			return fmt.Errorf("decode store: node %d (%q at depth %d) is out of place", i, name, depth)
		}
		stack = stack[:depth+1]
		parent := stack[depth]
		if len(slab) == 0 {
			slab = make([]node, min(snapSlabNodes, h.Nodes-i))
		}
		nd := &slab[0]
		slab = slab[1:]
		if parent == root {
			path = append(path[:0], '/')
		} else {
			path = append(append(path[:0], parent.path...), '/')
		}
		path = append(path, name...)
		*nd = node{path: string(path), createdIndex: created, modifiedIndex: modified, parent: parent,
			expireTime: expire, heapIndex: -1}
		if flags&snapDir != 0 {
			size := int(min(kids, uint64(presize)))
			presize -= size
			nd.children = make(map[string]*node, size)
			stack = append(stack, nd)
		} else {
			nd.value = string(value)
		}
		had := len(parent.children)
		parent.children[nd.path[len(nd.path)-len(name):]] = nd
		if len(parent.children) == had {
			return fmt.Errorf("decode store: node %d (%q) appears twice", i, nd.path)
		}
		if nd.expireTime != 0 {
			heap.push(nd)
		}
	}
	if len(r.b) != 0 {
		return fmt.Errorf("decode store: %d bytes after the last of %d nodes", len(r.b), h.Nodes)
	}
	hist := newHistory(HistorySize)
	for _, e := range h.History {
		if e != nil && e.Node != nil {
			hist.add(e)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.root, s.ttls, s.index = root, heap, h.Index
	s.readonly = map[string]bool{"/": true}
	for _, p := range h.Readonly {
		s.readonly[p] = true
	}
	s.hub.history = hist
	for i, v := range h.Stats.Counters {
		atomic.StoreUint64(&s.stats.Counters[i], v)
	}
	return nil
}
