// The store's snapshot: its saved form, writing and decoding.

package kv

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"unsafe"
)

// snapFormat is the version of the saved form written by this code.
const snapFormat = 6

// A saved store is a gob-encoded snapHeader, the number of nodes (8 bytes,
// little-endian), then the nodes in depth-first order, parents before
// children, each written by hand (gob would allocate a string per name
// only to throw it away, and decodes several times slower):
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
	Stats    Stats
	History  []*Event // the event history, oldest first, so watches from the past survive a restart
}

// snapSlabNodes is how many nodes Recover allocates at once.
const snapSlabNodes = 1024

// snapArenaBytes is the size of the blocks Recover copies paths and values
// into, instead of allocating a string for each. A block is freed once no
// node recovered into it is left.
const snapArenaBytes = 64 << 10

// snapBatch is a run of decoded nodes, or the error that ended decoding.
type snapBatch struct {
	nodes []node // parent set; not yet in the parent's children
	err   error
}

// snapArena hands out bytes from blocks of snapArenaBytes.
type snapArena struct {
	free []byte
	more <-chan []byte // the next blocks
}

// alloc returns n > 0 bytes; a large n gets memory of its own.
func (a *snapArena) alloc(n int) []byte {
	if n > snapArenaBytes/8 {
		return make([]byte, n)
	}
	if n > len(a.free) {
		a.free = <-a.more
	}
	p := a.free[:n:n]
	a.free = a.free[n:]
	return p
}

// path returns dir+"/"+name in arena memory.
func (a *snapArena) path(dir string, name []byte) string {
	p := a.alloc(len(dir) + 1 + len(name))
	copy(p, dir)
	p[len(dir)] = '/'
	copy(p[len(dir)+1:], name)
	return unsafe.String(&p[0], len(p)) // p is never written again
}

// string returns b copied into arena memory.
func (a *snapArena) string(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	p := a.alloc(len(b))
	copy(p, b)
	return unsafe.String(&p[0], len(p)) // p is never written again
}

// Save encodes the whole tree and the event history (not the watchers)
// into memory; SaveTo streams the same bytes to a writer.
func (s *Store) Save() ([]byte, error) {
	var buf bytes.Buffer
	// sized after the last snapshot, so that a large one is not copied
	// again and again as it grows
	hint := int(s.saveSize.Load())
	buf.Grow(hint + hint/8)
	if _, err := s.SaveTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// snapChunk is how many bytes of node records SaveTo gathers per write.
const snapChunk = 64 << 10

// SaveTo writes the saved store to w as it encodes it, snapChunk bytes at a
// time, and returns how many bytes it wrote. The store's lock is held
// throughout: the tree stays as it is at the snapshot's index.
func (s *Store) SaveTo(w io.Writer) (int64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := snapHeader{Format: snapFormat, Index: s.index, Stats: s.stats.snapshot()}
	for p := range s.readonly {
		h.Readonly = append(h.Readonly, p)
	}
	hist := s.hub.history
	for i := 0; i < hist.count; i++ {
		h.History = append(h.History, hist.events[(hist.front+i)%len(hist.events)])
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&h); err != nil {
		return 0, fmt.Errorf("encode store: %w", err)
	}
	// the node count comes first, so the tree is counted before it is written
	var count func(n *node) uint64
	count = func(n *node) uint64 {
		c := uint64(1)
		for _, child := range n.children {
			c += count(child)
		}
		return c
	}
	out := binary.LittleEndian.AppendUint64(buf.Bytes(), count(s.root)-1)
	var written int64
	var werr error
	flush := func() {
		if werr == nil {
			var n int
			n, werr = w.Write(out)
			written += int64(n)
		}
		out = out[:0]
	}
	out = slices.Grow(out, snapChunk)
	var walk func(n *node, name string, depth uint64)
	walk = func(n *node, name string, depth uint64) {
		out = appendSnapNode(out, n, name, depth)
		if len(out) >= snapChunk {
			flush()
		}
		for childName, c := range n.children {
			if werr != nil {
				return
			}
			walk(c, childName, depth+1)
		}
	}
	for name, c := range s.root.children {
		walk(c, name, 0)
	}
	flush()
	if werr != nil {
		return written, fmt.Errorf("save store: %w", werr)
	}
	s.saveSize.Store(written)
	return written, nil
}

// appendSnapNode appends n's record to b.
func appendSnapNode(b []byte, n *node, name string, depth uint64) []byte {
	b = binary.AppendUvarint(b, depth)
	b = binary.AppendUvarint(b, uint64(len(name)))
	b = append(b, name...)
	var flags byte
	if n.expireTime != 0 {
		flags |= snapExpires
	}
	if n.isDir() {
		b = append(b, flags|snapDir)
		b = binary.AppendUvarint(b, uint64(len(n.children)))
	} else {
		b = append(b, flags)
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

// errSnapTruncated is what a node record that runs past the end gives.
var errSnapTruncated = errors.New("a node record runs past the end")

// snapReader reads node records; the first error sticks.
type snapReader struct {
	b   []byte
	err error
}

// uvarint reads what binary.AppendUvarint wrote.
func (r *snapReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// varint reads what binary.AppendVarint wrote: a zig-zag encoded uvarint.
func (r *snapReader) varint() int64 {
	u := r.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
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
	body := data[len(data)-in.Len():]
	if len(body) < 8 {
		return fmt.Errorf("decode store: no node count after the header")
	}
	nodes := binary.LittleEndian.Uint64(body)
	if body = body[8:]; nodes > uint64(len(body)) {
		return fmt.Errorf("decode store: %d nodes claimed in %d bytes", nodes, len(body))
	}
	root := newDir("/", 0, nil, 0)
	// A goroutine decodes the nodes and hands them over a batch at a
	// time; this one links them into their parents. On a machine with a
	// second core the two halves overlap.
	batches := make(chan snapBatch, 4)
	quit := make(chan struct{})
	defer close(quit)
	go decodeSnapNodes(body, int(nodes), root, batches, quit)
	var heap ttlHeap
	for seen := 0; seen < int(nodes); {
		b := <-batches
		if b.err != nil {
			return fmt.Errorf("decode store: %w", b.err)
		}
		for i := range b.nodes {
			nd := &b.nodes[i]
			parent := nd.parent
			had := len(parent.children)
			parent.children[nd.name()] = nd
			if len(parent.children) == had {
				return fmt.Errorf("decode store: node %d (%q) appears twice", seen+i, nd.path)
			}
			if nd.expireTime != 0 {
				heap.push(nd)
			}
		}
		seen += len(b.nodes)
	}
	if b := <-batches; b.err != nil {
		return fmt.Errorf("decode store: %w", b.err)
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
	s.answers.clear()
	s.saveSize.Store(int64(len(data)))
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

// decodeSnapNodes decodes n node records from b into nodes under root and
// sends them on out in batches, then a last batch that is empty or holds
// the error that stopped it. It stops early when quit is closed.
func decodeSnapNodes(b []byte, n int, root *node, out chan<- snapBatch, quit <-chan struct{}) {
	send := func(sb snapBatch) bool {
		select {
		case out <- sb:
			return true
		case <-quit:
			return false
		}
	}
	r := snapReader{b: b}
	slabs, blocks := make(chan []node, 2), make(chan []byte, 4)
	go snapPrefault(slabs, n, blocks, quit)
	arena := snapArena{more: blocks}
	stack := []*node{root} // stack[d] is the directory at depth d-1
	presize := n           // what directories' maps may be sized for, in all
	for i := 0; i < n; {
		slab := <-slabs
		for j := range slab {
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
				send(snapBatch{err: fmt.Errorf("node %d of %d: %w", i+j, n, r.err)})
				return
			}
			if depth+1 > uint64(len(stack)) || !snapNameValid(name) {
				send(snapBatch{err: fmt.Errorf("node %d (%q at depth %d) is out of place", i+j, name, depth)})
				return
			}
			stack = stack[:depth+1]
			parent := stack[depth]
			nd := &slab[j]
			pp := parent.path
			if parent == root {
				pp = ""
			}
			*nd = node{path: arena.path(pp, name), createdIndex: created, modifiedIndex: modified,
				parent: parent, expireTime: expire, heapIndex: -1}
			if flags&snapDir != 0 {
				size := int(min(kids, uint64(presize)))
				presize -= size
				nd.children = make(map[string]*node, size)
				stack = append(stack, nd)
			} else {
				nd.value = arena.string(value)
			}
		}
		i += len(slab)
		if !send(snapBatch{nodes: slab}) {
			return
		}
	}
	if len(r.b) != 0 {
		send(snapBatch{err: fmt.Errorf("%d bytes after the last of %d nodes", len(r.b), n)})
		return
	}
	send(snapBatch{})
}

// snapPrefault allocates slabs for nodes nodes, and arena blocks until
// quit is closed, ahead of decodeSnapNodes, and writes to every page of
// them before handing them over. On a virtual machine the first touch of
// a fresh page can cost ten microseconds, and a million nodes make some
// forty thousand pages: done here, on another core, the decoder finds the
// memory ready.
func snapPrefault(slabs chan<- []node, nodes int, blocks chan<- []byte, quit <-chan struct{}) {
	const page = 4096
	stride := page / int(unsafe.Sizeof(node{}))
	var slab []node
	var block []byte
	for {
		if slab == nil && nodes > 0 {
			slab = make([]node, min(snapSlabNodes, nodes))
			for i := 0; i < len(slab); i += stride {
				slab[i].heapIndex = -1
			}
		}
		if block == nil {
			block = make([]byte, snapArenaBytes)
			for i := 0; i < len(block); i += page {
				block[i] = 0
			}
		}
		out := slabs
		if nodes == 0 {
			out = nil
		}
		select {
		case out <- slab:
			nodes -= len(slab)
			slab = nil
		case blocks <- block:
			block = nil
		case <-quit:
			return
		}
	}
}

// snapNameValid reports whether name can be the last element of a clean
// path, as every node's is.
func snapNameValid(name []byte) bool {
	return len(name) > 0 && bytes.IndexByte(name, '/') < 0 && string(name) != "." && string(name) != ".."
}
