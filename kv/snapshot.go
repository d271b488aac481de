package kv

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"strings"
	"sync/atomic"
)

// snapFormat is the version of snapState written by this code.
const snapFormat = 2

// snapState is the gob form of a saved store. The nodes are stored column
// by column in depth-first order, parents before children, which gob
// encodes and decodes far faster than a slice of structs: Depth is the
// number of ancestors below the root, Name the last element of the path.
type snapState struct {
	Format   int // snapFormat; anything else is refused, never half-read
	Index    uint64
	Readonly []string
	Depth    []uint32
	Name     []string
	Value    []string
	Dir      []bool
	Created  []uint64
	Modified []uint64
	Expire   []int64
	Stats    Stats
	History  []*Event // the event history, oldest first, so watches from the past survive a restart
}

// Save encodes the whole tree and the event history (not the watchers)
// with gob.
func (s *Store) Save() ([]byte, error) {
	s.mu.RLock()
	st := snapState{Format: snapFormat, Index: s.index}
	for p := range s.readonly {
		st.Readonly = append(st.Readonly, p)
	}
	var walk func(n *node, depth uint32)
	walk = func(n *node, depth uint32) {
		st.Depth = append(st.Depth, depth)
		st.Name = append(st.Name, n.name())
		st.Value = append(st.Value, n.value)
		st.Dir = append(st.Dir, n.isDir())
		st.Created = append(st.Created, n.createdIndex)
		st.Modified = append(st.Modified, n.modifiedIndex)
		st.Expire = append(st.Expire, n.expireTime)
		for _, c := range n.children {
			walk(c, depth+1)
		}
	}
	for _, c := range s.root.children {
		walk(c, 0)
	}
	h := s.hub.history
	for i := 0; i < h.count; i++ {
		st.History = append(st.History, h.events[(h.front+i)%len(h.events)])
	}
	st.Stats = s.stats.snapshot()
	var buf bytes.Buffer
	buf.Grow(64 * len(st.Name))
	err := gob.NewEncoder(&buf).Encode(&st)
	s.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("encode store: %w", err)
	}
	return buf.Bytes(), nil
}

// Recover replaces the store's content with a saved one. Watchers stay
// registered; the event history is the saved one.
func (s *Store) Recover(data []byte) error {
	var st snapState
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&st); err != nil {
		return fmt.Errorf("decode store: %w", err)
	}
	if st.Format != snapFormat {
		return fmt.Errorf("decode store: snapshot format %d, this etcdlite reads format %d", st.Format, snapFormat)
	}
	n := len(st.Name)
	if len(st.Depth) != n || len(st.Value) != n || len(st.Dir) != n || len(st.Created) != n ||
		len(st.Modified) != n || len(st.Expire) != n {
		return fmt.Errorf("decode store: node columns of different lengths")
	}
	root := newDir("/", 0, nil, 0)
	var heap ttlHeap
	stack := []*node{root} // stack[d] is the directory at depth d-1
	for i := 0; i < n; i++ {
		d := int(st.Depth[i])
		name := st.Name[i]
		if d+1 > len(stack) || name == "" || strings.Contains(name, "/") {
			return fmt.Errorf("decode store: node %d (%q at depth %d) is out of place", i, name, d)
		}
		stack = stack[:d+1]
		parent := stack[d]
		if !parent.isDir() {
			return fmt.Errorf("decode store: node %q is under a file", name)
		}
		p := parent.path + "/" + name
		if parent == root {
			p = "/" + name
		}
		var nd *node
		if st.Dir[i] {
			nd = newDir(p, st.Created[i], parent, st.Expire[i])
		} else {
			nd = newFile(p, st.Value[i], st.Created[i], parent, st.Expire[i])
		}
		nd.modifiedIndex = st.Modified[i]
		parent.children[name] = nd
		if nd.expireTime != 0 {
			heap.push(nd)
		}
		if nd.isDir() {
			stack = append(stack, nd)
		}
	}
	hist := newHistory(HistorySize)
	for _, e := range st.History {
		if e != nil && e.Node != nil {
			hist.add(e)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.root, s.ttls, s.index = root, heap, st.Index
	s.readonly = map[string]bool{"/": true}
	for _, p := range st.Readonly {
		s.readonly[p] = true
	}
	s.hub.history = hist
	for i, v := range st.Stats.Counters {
		atomic.StoreUint64(&s.stats.Counters[i], v)
	}
	return nil
}
