package kv

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"strings"
	"sync/atomic"
)

// snapFormat is the version of the saved form written by this code.
const snapFormat = 4

// snapChunkNodes is how many nodes go in one gob message: small messages
// keep gob from copying a huge buffer again and again as it grows it.
const snapChunkNodes = 32 << 10

// snapHeader is the first gob message of a saved store.
type snapHeader struct {
	Format   int // snapFormat; anything else is refused, never half-read
	Index    uint64
	Readonly []string
	Nodes    int // how many nodes the chunks that follow hold
	Stats    Stats
	History  []*Event // the event history, oldest first, so watches from the past survive a restart
}

// snapChunk is a run of nodes, stored column by column in depth-first
// order, parents before children, which gob encodes and decodes far faster
// than a slice of structs: Depth is the number of ancestors below the root,
// Name the last element of the path.
type snapChunk struct {
	Kids     []uint32 // for a directory, how many children it has (sizes its map)
	Depth    []uint32
	Name     []string
	Value    []string
	Dir      []bool
	Created  []uint64
	Modified []uint64
	Expire   []int64
}

// snapDecodeAhead is how many decoded chunks may wait for Recover to
// build them into the tree.
const snapDecodeAhead = 2

// snapDecoded is a chunk of nodes decoded by Recover's decoding goroutine.
type snapDecoded struct {
	chunk *snapChunk
	err   error
}

func (c *snapChunk) reset() {
	c.Kids = c.Kids[:0]
	c.Depth, c.Name, c.Value, c.Dir = c.Depth[:0], c.Name[:0], c.Value[:0], c.Dir[:0]
	c.Created, c.Modified, c.Expire = c.Created[:0], c.Modified[:0], c.Expire[:0]
}

// Save encodes the whole tree and the event history (not the watchers)
// with gob: a header, then the nodes in chunks.
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
	buf.Grow(96 * h.Nodes)
	enc := gob.NewEncoder(&buf)
	if err := enc.Encode(&h); err != nil {
		return nil, fmt.Errorf("encode store: %w", err)
	}
	var c snapChunk
	var err error
	flush := func() {
		if err == nil && len(c.Name) > 0 {
			err = enc.Encode(&c)
			c.reset()
		}
	}
	var walk func(n *node, depth uint32)
	walk = func(n *node, depth uint32) {
		c.Kids = append(c.Kids, uint32(len(n.children)))
		c.Depth = append(c.Depth, depth)
		c.Name = append(c.Name, n.name())
		c.Value = append(c.Value, n.value)
		c.Dir = append(c.Dir, n.isDir())
		c.Created = append(c.Created, n.createdIndex)
		c.Modified = append(c.Modified, n.modifiedIndex)
		c.Expire = append(c.Expire, n.expireTime)
		if len(c.Name) == snapChunkNodes {
			flush()
		}
		for _, ch := range n.children {
			walk(ch, depth+1)
		}
	}
	for _, ch := range s.root.children {
		walk(ch, 0)
	}
	flush()
	if err != nil {
		return nil, fmt.Errorf("encode store: %w", err)
	}
	return buf.Bytes(), nil
}

func (s *Store) countNodes(n *node) int {
	total := 1
	for _, c := range n.children {
		total += s.countNodes(c)
	}
	return total
}

// Recover replaces the store's content with a saved one. Watchers stay
// registered; the event history is the saved one.
func (s *Store) Recover(data []byte) error {
	dec := gob.NewDecoder(bytes.NewReader(data))
	var h snapHeader
	if err := dec.Decode(&h); err != nil {
		return fmt.Errorf("decode store: %w", err)
	}
	if h.Format != snapFormat {
		return fmt.Errorf("decode store: snapshot format %d, this etcdlite reads format %d", h.Format, snapFormat)
	}
	// Decoding runs in its own goroutine, a few chunks ahead of the tree
	// being built from them: on a machine with a second core the two
	// overlap (at a million keys each takes about half the time).
	decoded := make(chan snapDecoded, snapDecodeAhead)
	free := make(chan *snapChunk, snapDecodeAhead+2)
	for i := 0; i < snapDecodeAhead+2; i++ {
		free <- new(snapChunk)
	}
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		for seen := 0; seen < h.Nodes; {
			var c *snapChunk
			select {
			case c = <-free:
			case <-quit:
				return
			}
			c.reset()
			err := dec.Decode(c)
			select {
			case decoded <- snapDecoded{c, err}:
			case <-quit:
				return
			}
			if err != nil || len(c.Name) == 0 {
				return
			}
			seen += len(c.Name)
		}
	}()
	root := newDir("/", 0, nil, 0)
	var heap ttlHeap
	stack := []*node{root} // stack[d] is the directory at depth d-1
	for seen := 0; seen < h.Nodes; {
		d := <-decoded
		if d.err != nil {
			return fmt.Errorf("decode store: nodes after %d of %d: %w", seen, h.Nodes, d.err)
		}
		c := d.chunk
		n := len(c.Name)
		if n == 0 || len(c.Kids) != n || len(c.Depth) != n || len(c.Value) != n || len(c.Dir) != n ||
			len(c.Created) != n || len(c.Modified) != n || len(c.Expire) != n {
			return fmt.Errorf("decode store: a chunk of nodes with columns of different lengths")
		}
		// one allocation for the chunk's nodes instead of one per node
		slab := make([]node, n)
		for i := 0; i < n; i++ {
			d := int(c.Depth[i])
			name := c.Name[i]
			if d+1 > len(stack) || name == "" || strings.Contains(name, "/") {
				return fmt.Errorf("decode store: node %d (%q at depth %d) is out of place", seen+i, name, d)
			}
			stack = stack[:d+1]
			parent := stack[d]
			p := parent.path + "/" + name
			if parent == root {
				p = "/" + name
			}
			nd := &slab[i]
			*nd = node{path: p, createdIndex: c.Created[i], modifiedIndex: c.Modified[i], parent: parent,
				expireTime: c.Expire[i], heapIndex: -1}
			if c.Dir[i] {
				nd.children = make(map[string]*node, min(c.Kids[i], 1<<20))
				stack = append(stack, nd)
			} else {
				nd.value = c.Value[i]
			}
			parent.children[name] = nd
			if nd.expireTime != 0 {
				heap.push(nd)
			}
		}
		seen += n
		free <- c
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
