// The tree's nodes: files and directories and their views.

package kv

import (
	"path"
	"sort"
)

// node is one file or directory of the tree.
type node struct {
	path          string
	createdIndex  uint64
	modifiedIndex uint64
	parent        *node
	expireTime    int64 // Unix nanoseconds; 0 for a permanent node
	value         string
	children      map[string]*node // non-nil exactly for directories
	heapIndex     int              // position in the TTL heap; -1 when not in it
}

func newFile(p, value string, index uint64, parent *node, expire int64) *node {
	n := fileNode(p, value, index, parent, expire)
	return &n
}

// fileNode is a new file as a value: newFile allocates it, and a set over a
// file writes it over the node it replaces.
func fileNode(p, value string, index uint64, parent *node, expire int64) node {
	return node{path: p, createdIndex: index, modifiedIndex: index, parent: parent, expireTime: expire, value: value, heapIndex: -1}
}

func newDir(p string, index uint64, parent *node, expire int64) *node {
	return &node{path: p, createdIndex: index, modifiedIndex: index, parent: parent, expireTime: expire, children: map[string]*node{}, heapIndex: -1}
}

func (n *node) isDir() bool { return n.children != nil }

func (n *node) isPermanent() bool { return n.expireTime == 0 }

func (n *node) name() string { return path.Base(n.path) }

// isHidden reports whether the node's own name starts with an underscore.
func (n *node) isHidden() bool {
	_, name := path.Split(n.path)
	return len(name) > 0 && name[0] == '_'
}

// expirationAndTTL gives the node's expiration and its TTL in whole seconds
// left at now, rounded up.
func (n *node) expirationAndTTL(now int64) (int64, int64) {
	if n.isPermanent() {
		return 0, 0
	}
	left := n.expireTime - now
	ttl := left / 1e9
	if left%1e9 > 0 {
		ttl++
	}
	return n.expireTime, ttl
}

// repr is the node as a client sees it; directories list their visible
// children when recursive is set.
func (n *node) repr(recursive, sorted bool, now int64) *NodeExtern {
	e := &NodeExtern{}
	n.reprInto(e, recursive, sorted, now)
	return e
}

// reprInto is repr into a NodeExtern the caller provides.
func (n *node) reprInto(e *NodeExtern, recursive, sorted bool, now int64) {
	*e = NodeExtern{Key: n.path, ModifiedIndex: n.modifiedIndex, CreatedIndex: n.createdIndex}
	e.Expiration, e.TTL = n.expirationAndTTL(now)
	if !n.isDir() {
		e.Value, e.HasValue = n.value, true
		return
	}
	e.Dir = true
	if recursive {
		e.Nodes = n.listVisible(true, sorted, now)
	}
}

// listingInto is listing into a NodeExtern the caller provides.
func (n *node) listingInto(e *NodeExtern, recursive, sorted bool, now int64) {
	n.reprInto(e, false, false, now)
	if n.isDir() {
		e.Nodes = n.listVisible(recursive, sorted, now)
	}
}

func (n *node) listVisible(recursive, sorted bool, now int64) []*NodeExtern {
	if len(n.children) == 0 {
		return nil
	}
	out := make([]*NodeExtern, 0, len(n.children))
	for _, c := range n.children {
		if c.isHidden() {
			continue
		}
		out = append(out, c.repr(recursive, sorted, now))
	}
	if sorted {
		sortNodes(out)
	}
	return out
}

// sortedChildren returns the children in name order (for deterministic walks).
func (n *node) sortedChildren() []*node {
	out := make([]*node, 0, len(n.children))
	for _, c := range n.children {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}
