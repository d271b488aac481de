package kv

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"path"
	"sync/atomic"
)

// snapNode is one node in a saved store, parents before children.
type snapNode struct {
	Path       string
	Value      string
	Dir        bool
	Created    uint64
	Modified   uint64
	ExpireTime int64
}

// snapState is the gob form of a saved store.
type snapState struct {
	Index    uint64
	Readonly []string
	Nodes    []snapNode
	Stats    Stats
}

// Save encodes the whole tree (not the watchers or the event history) with
// gob.
func (s *Store) Save() ([]byte, error) {
	s.mu.RLock()
	st := snapState{Index: s.index}
	for p := range s.readonly {
		st.Readonly = append(st.Readonly, p)
	}
	var walk func(n *node)
	walk = func(n *node) {
		st.Nodes = append(st.Nodes, snapNode{Path: n.path, Value: n.value, Dir: n.isDir(),
			Created: n.createdIndex, Modified: n.modifiedIndex, ExpireTime: n.expireTime})
		for _, c := range n.children {
			walk(c)
		}
	}
	for _, c := range s.root.children {
		walk(c)
	}
	s.mu.RUnlock()
	st.Stats = s.stats.snapshot()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&st); err != nil {
		return nil, fmt.Errorf("encode store: %w", err)
	}
	return buf.Bytes(), nil
}

// Recover replaces the store's content with a saved one. Watchers stay
// registered; the event history starts again from the saved index.
func (s *Store) Recover(data []byte) error {
	var st snapState
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&st); err != nil {
		return fmt.Errorf("decode store: %w", err)
	}
	root := newDir("/", 0, nil, 0)
	var heap ttlHeap
	for _, sn := range st.Nodes {
		p := cleanPath(sn.Path)
		if p == "/" {
			return fmt.Errorf("decode store: node with the root path")
		}
		parent := root
		dirName, name := path.Split(p)
		if d := path.Clean(dirName); d != "/" {
			var ok bool
			parent, ok = findNode(root, d)
			if !ok || !parent.isDir() {
				return fmt.Errorf("decode store: %s comes before its directory", p)
			}
		}
		var n *node
		if sn.Dir {
			n = newDir(p, sn.Created, parent, sn.ExpireTime)
		} else {
			n = newFile(p, sn.Value, sn.Created, parent, sn.ExpireTime)
		}
		n.modifiedIndex = sn.Modified
		parent.children[name] = n
		if n.expireTime != 0 {
			heap.push(n)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.root, s.ttls, s.index = root, heap, st.Index
	s.readonly = map[string]bool{"/": true}
	for _, p := range st.Readonly {
		s.readonly[p] = true
	}
	s.hub.history = newHistory(HistorySize)
	for i, v := range st.Stats.Counters {
		atomic.StoreUint64(&s.stats.Counters[i], v)
	}
	return nil
}

func findNode(root *node, p string) (*node, bool) {
	n := root
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		c, ok := n.children[p[start:i]]
		if !ok {
			return nil, false
		}
		n, start = c, i+1
	}
	return n, true
}
