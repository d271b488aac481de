// Linearizability checks of histories recorded against a cluster.

package main

// A linearizability checker for histories of operations on a single register
// (one etcd key), for tests that drive a server or cluster from several
// clients at once.
//
// The search follows Wing & Gong: the calls and returns of the operations are
// kept in a doubly linked list sorted by time; an operation may be linearized
// next if its call comes before the first return left in the list. It is
// applied to the register model and lifted out of the list; when the first
// return left is reached the last choice is undone (unlifted) and the next
// candidate tried. Lowe's improvement caches the configurations visited (set
// of linearized operations, register value), so each is expanded only once.
//
// On top of that, some reductions keep it fast. Each only skips choices when
// another choice that is tried is at least as good, or when no linearization
// can follow:
//
//   - A pre-check finds stale reads without searching: an op that needs the
//     register to hold v (a read of v, a successful CAS from v) although every
//     op writing v is followed by a completed write of another value that
//     returns before the op is called.
//   - Forced moves: a read or failed CAS that may be linearized now and holds
//     on the current value is linearized at once, without trying the other
//     candidates (moving it to the front of any linearization of the rest
//     keeps that linearization valid).
//   - Dead ends: the register may not move away from a value that a pending
//     op still needs when no op left can write that value again.
//   - Values nobody observes (no read returns them, no CAS expects them) are
//     one value for the model.
//   - Operations of unknown outcome (no response) are kept out of the list:
//     they may take effect at any time after their call, or never. They are
//     tried only after the ordinary candidates; a run of them is only placed
//     right before an operation that was impossible before the run, only its
//     first member may be a write, and of interchangeable ones (same kind,
//     expected and new value) only the earliest unused is tried. A
//     configuration is skipped when one visited before has the same ordinary
//     operations and value and a subset of the unknown ones linearized (there
//     is more left to do from there, and unknown operations never must be
//     used). Without these a failing history with a few dozen timed-out
//     writes makes the search exponential.
//
// The search is cut short at a deadline; the cache forgets everything when
// it reaches linCacheBytes (it only saves work).

import (
	"fmt"
	"math"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// linKind is the kind of a register operation.
type linKind int

const (
	linRead linKind = iota
	linWrite
	linCAS
)

func (k linKind) String() string {
	switch k {
	case linRead:
		return "read"
	case linWrite:
		return "write"
	case linCAS:
		return "cas"
	}
	return fmt.Sprintf("linKind(%d)", int(k))
}

// linOp is one client operation on a single register (an etcd key), with its
// invocation and response times (monotonic, any unit, e.g. time.Since(start)
// nanoseconds).
type linOp struct {
	Client int
	Kind   linKind
	Value  string // write: value written; CAS: new value; read: value read (valid only if Found)
	Expect string // CAS: expected old value (prevValue)
	Found  bool   // read: the key existed; CAS: the swap succeeded (OK); write: ignored
	Call   int64  // invocation time
	// Return is the response time; use linInfinity for operations whose
	// outcome is unknown (timeouts, connection errors): they may or may not
	// have taken effect at any point after Call.
	Return  int64
	Unknown bool // outcome unknown (then Found/Value are not meaningful)
}

// linInfinity is the Return of an operation that never responded.
const linInfinity = math.MaxInt64

// linCheck reports whether history is linearizable for a register that starts
// absent (a read of an absent key has Found=false). When it is not, explain
// says why: the longest linearization found, the operation that could not be
// linearized before its response and the other candidates at that point.
//
// Times are compared as given; an operation that returns at exactly the time
// another is invoked is treated as concurrent with it (the permissive choice).
// An operation is of unknown outcome if Unknown is set or Return is
// linInfinity. Unknown reads are ignored. An unknown write or CAS takes effect
// at most once, at any point after Call (and before Return if that is
// finite), or never; an unknown CAS can only take effect as a successful swap
// (a failed one changes nothing).
//
// The search stops after deadline (no limit if deadline <= 0); then ok=true
// and timedOut=true: the result is inconclusive. A malformed history (Return
// before Call, unknown Kind) gives ok=false with an explanation.
func linCheck(history []linOp, deadline time.Duration) (ok bool, timedOut bool, explain string) {
	c, err := linCompile(history)
	if err != "" {
		return false, false, err
	}
	var end time.Time
	if deadline > 0 {
		end = time.Now().Add(deadline)
	}
	if why := c.stale(); why != "" {
		return false, false, why
	}
	return c.search(end)
}

// Register values in the model: ids into linChecker.values.
const (
	linAbsent int32 = 0 // the key does not exist
	linOther  int32 = 1 // any value that no operation reads or expects
)

// linCOp is an operation compiled for the search.
type linCOp struct {
	hist  int     // index in the history
	kind  linKind //
	val   int32   // value id: written, swapped in or read
	exp   int32   // CAS: expected value id
	found bool    // read: key present; CAS: swap succeeded (always true for unknown CAS)
	call  int64   //
	ret   int64   //
	alts  int8    // alternatives: 1, or 2 (apply, no-op) for an unknown op with a finite Return
	node  int32   // required op: its call node in the event list
	prevG int32   // unknown op: the previous one (by call) of its interchangeable group, or -1
}

// apply returns the register value after o (alternative alt) when the
// register holds s, and whether o is possible there.
func (o *linCOp) apply(alt int, s int32) (int32, bool) {
	if alt == 1 {
		return s, true // an op of unknown outcome that did not take effect
	}
	switch o.kind {
	case linRead:
		if o.found {
			return s, s == o.val
		}
		return s, s == linAbsent
	case linWrite:
		return o.val, true
	case linCAS:
		if o.found {
			return o.val, s == o.exp
		}
		return s, s != o.exp
	}
	return s, false
}

// writes is the value id o writes if it takes effect, or -1.
func (o *linCOp) writes() int32 {
	if o.kind == linWrite || (o.kind == linCAS && o.found) {
		return o.val
	}
	return -1
}

// needs is the value id the register must hold for required op o, or -1.
func (o *linCOp) needs() int32 {
	switch {
	case o.alts != 1 || o.ret == linInfinity: // may not take effect
		return -1
	case o.kind == linRead && o.found:
		return o.val
	case o.kind == linRead:
		return linAbsent
	case o.kind == linCAS && o.found:
		return o.exp
	}
	return -1
}

// keeps reports whether o never changes the register (read, failed CAS) and
// has no alternative.
func (o *linCOp) keeps() bool {
	return o.alts == 1 && o.ret != linInfinity && (o.kind == linRead || (o.kind == linCAS && !o.found))
}

// linNode is a call or return event in the doubly linked event list.
type linNode struct {
	prev, next int32 // -1: none; node 0 is the head sentinel
	match      int32 // call node: its return node
	op         int32 // index in linChecker.req
	call       bool
	time       int64
}

// linFrame is one linearized operation on the search stack.
type linFrame struct {
	unk    bool  // op is in linChecker.unk (else in req)
	forced bool  // a forced move: no alternative to try at this point
	alt    int8  // alternative applied
	idx    int32 // index in req or unk
	prev   int32 // register value before the op
	run    int32 // run state before the op (see search)
}

// linCacheEntry is a visited configuration. Its sets of linearized ops are
// in linChecker.slab from off: the words of reqBits from word from (all the
// required ops before it are linearized) without trailing zeros (n words),
// then all of unkBits.
type linCacheEntry struct {
	state, run int32
	from, n    int32
	off        int
	next       int32 // the next entry with the same hash, or -1
}

type linChecker struct {
	history []linOp
	req     []linCOp // ops that must be linearized (finite Return)
	unk     []linCOp // unknown ops with infinite Return, sorted by call
	nodes   []linNode
	values  []string // value id -> value
	written []bool   // value id -> some op may write it

	reqBits []uint64
	unkBits []uint64
	zobrist []uint64 // per required op, for the incremental hash of reqBits
	hash    uint64
	heads   map[uint64]int32 // configuration hash -> first entry
	entries []linCacheEntry
	slab    []uint64

	// Per value id, among the ops not linearized: how many may still write
	// it, and how many required ops need the register to hold it. When the
	// register moves away from a value that is still needed but can no
	// longer be written, the configuration is dead.
	writers, needers []int32
}

// linCacheBytes bounds the memory of the cache (a configuration takes some
// tens of bytes, plus a bit per unknown op).
const linCacheBytes = 128 << 20

func linCompile(history []linOp) (*linChecker, string) {
	c := &linChecker{history: history, values: []string{"", ""}, heads: make(map[uint64]int32)}
	unknown := func(h linOp) bool { return h.Unknown || h.Return == linInfinity }
	observed := make(map[string]bool)
	for i, h := range history {
		if h.Kind != linRead && h.Kind != linWrite && h.Kind != linCAS {
			return nil, fmt.Sprintf("invalid history: op %s has an unknown kind", c.describe(i))
		}
		if h.Return < h.Call {
			return nil, fmt.Sprintf("invalid history: op %s returns before it is called", c.describe(i))
		}
		switch {
		case h.Kind == linRead && h.Found && !unknown(h):
			observed[h.Value] = true
		case h.Kind == linCAS:
			observed[h.Expect] = true
		}
	}
	ids := make(map[string]int32)
	id := func(v string) int32 {
		if !observed[v] {
			return linOther
		}
		if i, ok := ids[v]; ok {
			return i
		}
		i := int32(len(c.values))
		ids[v] = i
		c.values = append(c.values, v)
		return i
	}
	for i, h := range history {
		if unknown(h) && h.Kind == linRead {
			continue // reads have no effect: an unanswered one constrains nothing
		}
		o := linCOp{hist: i, kind: h.Kind, found: h.Found, call: h.Call, ret: h.Return, alts: 1, prevG: -1}
		switch h.Kind {
		case linRead:
			if h.Found {
				o.val = id(h.Value)
			}
		case linWrite:
			o.val = id(h.Value)
		case linCAS:
			o.val, o.exp = id(h.Value), id(h.Expect)
		}
		if unknown(h) {
			o.found = true // only a successful swap changes anything
		}
		switch {
		case h.Return == linInfinity:
			c.unk = append(c.unk, o)
		case unknown(h):
			o.alts = 2
			c.req = append(c.req, o)
		default:
			c.req = append(c.req, o)
		}
	}
	c.written = make([]bool, len(c.values))
	c.writers = make([]int32, len(c.values))
	c.needers = make([]int32, len(c.values))
	for _, list := range [][]linCOp{c.req, c.unk} {
		for i := range list {
			if w := list[i].writes(); w >= 0 {
				c.written[w] = true
			}
			c.count(&list[i], 1)
		}
	}
	// Both lists by call: the required ops linearized are then mostly a
	// prefix, which keeps cache entries small.
	sort.SliceStable(c.req, func(a, b int) bool { return c.req[a].call < c.req[b].call })
	sort.SliceStable(c.unk, func(a, b int) bool { return c.unk[a].call < c.unk[b].call })
	type group struct {
		kind     linKind
		exp, val int32
	}
	last := make(map[group]int32)
	for i := range c.unk {
		o := &c.unk[i]
		g := group{o.kind, o.exp, o.val}
		if p, ok := last[g]; ok {
			o.prevG = p
		}
		last[g] = int32(i)
	}

	// The event list: calls and returns of the required ops by time, a call
	// before a return at the same time (equal times overlap).
	type ev struct {
		time int64
		ret  bool
		op   int32
	}
	evs := make([]ev, 0, 2*len(c.req))
	for i, o := range c.req {
		evs = append(evs, ev{o.call, false, int32(i)}, ev{o.ret, true, int32(i)})
	}
	sort.Slice(evs, func(a, b int) bool {
		x, y := evs[a], evs[b]
		if x.time != y.time {
			return x.time < y.time
		}
		if x.ret != y.ret {
			return !x.ret
		}
		return x.op < y.op
	})
	c.nodes = make([]linNode, len(evs)+1)
	c.nodes[0] = linNode{prev: -1, next: -1}
	callNode := make([]int32, len(c.req))
	for i, e := range evs {
		n := int32(i + 1)
		c.nodes[n] = linNode{prev: n - 1, next: -1, op: e.op, call: !e.ret, time: e.time}
		c.nodes[n-1].next = n
		if e.ret {
			c.nodes[callNode[e.op]].match = n
		} else {
			callNode[e.op] = n
			c.req[e.op].node = n
		}
	}

	c.reqBits = make([]uint64, (len(c.req)+63)/64)
	c.unkBits = make([]uint64, (len(c.unk)+63)/64)
	c.zobrist = make([]uint64, len(c.req))
	for i := range c.zobrist {
		c.zobrist[i] = linMix(uint64(i) + 0x51ed27)
	}
	return c, ""
}

// linMix is the splitmix64 finaliser.
func linMix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// lift takes call node n and its return node out of the list.
func (c *linChecker) lift(n int32) {
	nd := &c.nodes[n]
	c.nodes[nd.prev].next = nd.next
	if nd.next >= 0 {
		c.nodes[nd.next].prev = nd.prev
	}
	m := &c.nodes[nd.match]
	c.nodes[m.prev].next = m.next
	if m.next >= 0 {
		c.nodes[m.next].prev = m.prev
	}
}

// unlift undoes lift(n); lifts are undone in reverse order.
func (c *linChecker) unlift(n int32) {
	nd := &c.nodes[n]
	mi := nd.match
	m := &c.nodes[mi]
	c.nodes[m.prev].next = mi
	if m.next >= 0 {
		c.nodes[m.next].prev = mi
	}
	c.nodes[nd.prev].next = n
	if nd.next >= 0 {
		c.nodes[nd.next].prev = n
	}
}

// count adds d to the writers and needers counts of o's values.
func (c *linChecker) count(o *linCOp, d int32) {
	if w := o.writes(); w >= 0 {
		c.writers[w] += d
	}
	if n := o.needs(); n >= 0 {
		c.needers[n] += d
	}
}

// take removes o from the counts, when it changes the register from s to
// ns, and reports whether that leaves a chance of success: false (and the
// counts unchanged) if some required op still needs s but nothing can write
// it any more.
func (c *linChecker) take(o *linCOp, s, ns int32) bool {
	c.count(o, -1)
	if ns != s && c.needers[s] > 0 && c.writers[s] == 0 {
		c.count(o, 1)
		return false
	}
	return true
}

func (c *linChecker) flipReq(i int32) {
	c.reqBits[i>>6] ^= 1 << (uint(i) & 63)
	c.hash ^= c.zobrist[i]
}

func (c *linChecker) flipUnk(i int32) { c.unkBits[i>>6] ^= 1 << (uint(i) & 63) }

func (c *linChecker) unkPlaced(i int32) bool { return c.unkBits[i>>6]&(1<<(uint(i)&63)) != 0 }

// visit records the current configuration (reqBits, unkBits, register value
// s, run state) and reports whether it is new, that is not dominated by one
// visited before: same required ops and value, a subset of the unknown ops,
// and the same run state or none.
func (c *linChecker) visit(s, run int32) bool {
	from, to := 0, len(c.reqBits)
	for from < to && c.reqBits[from] == math.MaxUint64 {
		from++
	}
	for to > from && c.reqBits[to-1] == 0 {
		to--
	}
	req := c.reqBits[from:to]
	nu := len(c.unkBits)
	k := c.hash ^ linMix(uint64(uint32(s))+0x7f4a7c15)
	head, ok := c.heads[k]
	if !ok {
		head = -1
	}
	for i := head; i >= 0; i = c.entries[i].next {
		e := &c.entries[i]
		if e.state != s || e.from != int32(from) || int(e.n) != len(req) || !linEqual(c.slab[e.off:e.off+len(req)], req) {
			continue
		}
		unk := c.slab[e.off+len(req) : e.off+len(req)+nu]
		if (e.run < 0 || e.run == run) && linSubset(unk, c.unkBits) {
			return false
		}
		if (run < 0 || e.run == run) && linSubset(c.unkBits, unk) {
			e.run = run // the new configuration dominates e: replace it
			copy(unk, c.unkBits)
			return true
		}
	}
	if len(c.entries)*32+len(c.slab)*8 >= linCacheBytes {
		// Forget everything rather than run out of memory: the cache only
		// saves work, and the deadline bounds the time.
		c.heads, c.entries, c.slab, head = make(map[uint64]int32), c.entries[:0], c.slab[:0], -1
	}
	c.heads[k] = int32(len(c.entries))
	c.entries = append(c.entries, linCacheEntry{state: s, run: run, from: int32(from), n: int32(len(req)), off: len(c.slab), next: head})
	c.slab = append(c.slab, req...)
	c.slab = append(c.slab, c.unkBits...)
	return true
}

func linEqual(a, b []uint64) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// linSubset reports whether a ⊆ b.
func linSubset(a, b []uint64) bool {
	for i := range a {
		if a[i]&^b[i] != 0 {
			return false
		}
	}
	return true
}

// firstReturn is the time of the earliest return among the required ops not
// yet linearized (there is one as long as a required op is left).
func (c *linChecker) firstReturn() int64 {
	n := c.nodes[0].next
	for c.nodes[n].call {
		n = c.nodes[n].next
	}
	return c.nodes[n].time
}

// stale finds, without searching, a required op that needs the register to
// hold a value v no op can have left there: every op that may write v is
// followed by a completed write or swap of another value (one that returns
// before the op is called and is called after the writer returned). This
// catches stale reads at once, with a precise explanation; it returns "" if
// there is none.
func (c *linChecker) stale() string {
	type changer struct {
		call, ret int64
		val       int32
		op        *linCOp
	}
	var ch []changer
	writers := make([][]*linCOp, len(c.values))
	for _, list := range [][]linCOp{c.req, c.unk} {
		for i := range list {
			o := &list[i]
			w := o.writes()
			if w < 0 {
				continue
			}
			writers[w] = append(writers[w], o)
			if o.alts == 1 && o.ret != linInfinity {
				ch = append(ch, changer{o.call, o.ret, w, o})
			}
		}
	}
	sort.Slice(ch, func(a, b int) bool { return ch[a].call < ch[b].call })
	for _, ws := range writers {
		sort.Slice(ws, func(a, b int) bool { return ws[a].call < ws[b].call })
	}
	// first[i], second[i]: among ch[i:], the changer returning first, and
	// the one returning first among those writing another value than it.
	first := make([]int, len(ch)+1)
	second := make([]int, len(ch)+1)
	first[len(ch)], second[len(ch)] = -1, -1
	earlier := func(a, b int) bool { return b < 0 || (a >= 0 && ch[a].ret < ch[b].ret) }
	for i := len(ch) - 1; i >= 0; i-- {
		f, s := first[i+1], second[i+1]
		switch {
		case earlier(i, f):
			if f >= 0 && ch[f].val == ch[i].val {
				f = s
			}
			first[i], second[i] = i, f
		case ch[i].val != ch[f].val && earlier(i, s):
			first[i], second[i] = f, i
		default:
			first[i], second[i] = f, s
		}
	}
	// overwrite returns the changer of a value other than v called after t
	// that returns first, or -1.
	overwrite := func(t int64, v int32) int {
		i := sort.Search(len(ch), func(i int) bool { return ch[i].call > t })
		if f := first[i]; f < 0 || ch[f].val != v {
			return f
		}
		return second[i]
	}
	for i := range c.req {
		n := &c.req[i]
		v := n.needs()
		if v < 0 {
			continue
		}
		var why []string
		if v == linAbsent {
			x := overwrite(math.MinInt64, v)
			if x < 0 || ch[x].ret >= n.call {
				continue
			}
			why = append(why, fmt.Sprintf("%s completes before it starts", c.describe(ch[x].op.hist)))
		} else {
			// The writers called before n returns, latest first.
			ws := writers[v]
			k := sort.Search(len(ws), func(i int) bool { return ws[i].call > n.ret })
			possible := false
			for j := k - 1; j >= 0 && !possible; j-- {
				x := overwrite(ws[j].ret, v)
				possible = ws[j] != n && (x < 0 || ch[x].ret >= n.call)
			}
			if possible {
				continue
			}
			for _, w := range ws[:k] {
				if w != n {
					x := overwrite(w.ret, v)
					why = append(why, fmt.Sprintf("%s is overwritten by %s before it starts", c.describe(w.hist), c.describe(ch[x].op.hist)))
				}
			}
			if k < len(ws) {
				why = append(why, fmt.Sprintf("%d ops that write it start after it returns", len(ws)-k))
			}
			if len(why) == 0 {
				why = append(why, "no op writes it")
			}
		}
		if len(why) > 3 {
			why = append(why[:3], fmt.Sprintf("(%d more)", len(why)-3))
		}
		return fmt.Sprintf("not linearizable: %s needs the register to hold %s, but:\n    %s",
			c.describe(n.hist), c.valueString(v), strings.Join(why, "\n    "))
	}
	return ""
}

// search runs the depth-first search. The configuration is the set of
// linearized ops (reqBits, unkBits), the register value and the run state:
// -1 normally, or, right after unknown ops, the value before the first of
// them. In a run only unknown CAS may follow, or a required op that was
// impossible on the value before the run (placing the run is pointless
// otherwise: it could be moved after that op or dropped).
func (c *linChecker) search(end time.Time) (bool, bool, string) {
	var (
		stack  []linFrame
		best   []linFrame // longest linearization found, by required ops
		common int        // stack[:common] == best[:common]
		bestN  = -1
		placed int // required ops linearized
		state  int32
		run    int32 = -1
		fresh        = true // a new configuration: look for a forced move first
		pass   int          // 0: required ops in the event list; 1: unknown ops
		node   int32        // pass 0: next node to try
		alt    int          // pass 0: next alternative of node's op
		uj     int32        // pass 1: next index in unk
		minRet int64        // pass 1: earliest return left
		iter   int
	)
	push := func(f linFrame) {
		stack = append(stack, f)
		d := len(stack)
		if common == d-1 && d <= len(best) && best[d-1] == f {
			common = d
		}
		if placed > bestN {
			best = append(best[:common], stack[common:]...)
			common, bestN = d, placed
		}
	}
	// allowed reports whether required op o (alternative alt) may follow in
	// the current run state.
	allowed := func(o *linCOp, alt int) bool {
		if run < 0 {
			return true
		}
		_, ok := o.apply(alt, run)
		return !ok
	}
	// place linearizes required op i (call node n), if its configuration is
	// new.
	place := func(i, n int32, alt int, ns int32, forced bool) bool {
		if !c.take(&c.req[i], state, ns) {
			return false
		}
		c.flipReq(i)
		if !c.visit(ns, -1) {
			c.flipReq(i)
			c.count(&c.req[i], 1)
			return false
		}
		placed++
		push(linFrame{idx: i, alt: int8(alt), prev: state, run: run, forced: forced})
		state, run, fresh = ns, -1, true
		c.lift(n)
		return true
	}
	for {
		if placed == len(c.req) {
			return true, false, ""
		}
		if iter++; iter&1023 == 0 && !end.IsZero() && time.Now().After(end) {
			return true, true, fmt.Sprintf("inconclusive: search stopped after %d steps with %d of %d ops linearized at best, %d configurations cached",
				iter, bestN, len(c.req), len(c.entries))
		}
		backtrack := false
		if fresh {
			fresh = false
			pass, node, alt = 0, c.nodes[0].next, 0
			for n := node; c.nodes[n].call; n = c.nodes[n].next {
				i := c.nodes[n].op
				o := &c.req[i]
				if !o.keeps() || !allowed(o, 0) {
					continue
				}
				if _, ok := o.apply(0, state); ok {
					if !place(i, n, 0, state, true) {
						backtrack = true
					}
					break
				}
			}
			if !backtrack {
				continue
			}
		}
		if !backtrack && pass == 0 {
			nd := &c.nodes[node]
			if !nd.call {
				pass, uj, minRet = 1, 0, nd.time
				continue
			}
			o := &c.req[nd.op]
			if alt >= int(o.alts) {
				node, alt = nd.next, 0
				continue
			}
			if allowed(o, alt) {
				if ns, ok := o.apply(alt, state); ok && place(nd.op, node, alt, ns, false) {
					continue
				}
			}
			alt++
			continue
		}
		if !backtrack && int(uj) < len(c.unk) && c.unk[uj].call <= minRet {
			o := &c.unk[uj]
			if !c.unkPlaced(uj) && (o.prevG < 0 || c.unkPlaced(o.prevG)) && (run < 0 || o.kind == linCAS) {
				if ns, ok := o.apply(0, state); ok {
					nrun := run
					if nrun < 0 {
						nrun = state
					}
					if c.take(o, state, ns) {
						c.flipUnk(uj)
						if c.visit(ns, nrun) {
							push(linFrame{unk: true, idx: uj, prev: state, run: run})
							state, run, fresh = ns, nrun, true
							continue
						}
						c.flipUnk(uj)
						c.count(o, 1)
					}
				}
			}
			uj++
			continue
		}
		// Every choice failed here: undo the last op and try the next choice
		// at the configuration before it, unless it was forced.
		for {
			if len(stack) == 0 {
				return false, false, c.explain(best)
			}
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if common > len(stack) {
				common = len(stack)
			}
			state, run = f.prev, f.run
			if f.unk {
				c.flipUnk(f.idx)
				c.count(&c.unk[f.idx], 1)
				pass, uj, minRet = 1, f.idx+1, c.firstReturn()
			} else {
				c.flipReq(f.idx)
				c.count(&c.req[f.idx], 1)
				placed--
				n := c.req[f.idx].node
				c.unlift(n)
				pass, node, alt = 0, n, int(f.alt)+1
			}
			if !f.forced {
				break
			}
		}
	}
}

// explain describes why no linearization exists, from the longest one found.
func (c *linChecker) explain(best []linFrame) string {
	var b strings.Builder
	doneReq := make([]bool, len(c.req))
	doneUnk := make([]bool, len(c.unk))
	var state int32
	n := 0
	for _, f := range best {
		if f.unk {
			doneUnk[f.idx] = true
			state, _ = c.unk[f.idx].apply(int(f.alt), state)
		} else {
			doneReq[f.idx] = true
			state, _ = c.req[f.idx].apply(int(f.alt), state)
			n++
		}
	}
	fmt.Fprintf(&b, "not linearizable: the longest linearization found covers %d of the %d ops that must take effect (%d ops in history); the register then holds %s",
		n, len(c.req), len(c.history), c.valueString(state))
	if len(best) > 0 {
		const tail = 6
		from := max(0, len(best)-tail)
		fmt.Fprintf(&b, "\n  its last %d steps:", len(best)-from)
		for _, f := range best[from:] {
			var o *linCOp
			if f.unk {
				o = &c.unk[f.idx]
			} else {
				o = &c.req[f.idx]
			}
			note := ""
			if f.alt == 1 {
				note = " (as not taken effect)"
			}
			fmt.Fprintf(&b, "\n    %s%s", c.describe(o.hist), note)
		}
	}
	// The op that could not be linearized before its response.
	blk := -1
	for i := range c.req {
		if !doneReq[i] && (blk < 0 || c.req[i].ret < c.req[blk].ret) {
			blk = i
		}
	}
	if blk < 0 {
		return b.String()
	}
	// Is the register stuck on a value some op still needs?
	var needing []int
	rewritable := false
	for i := range c.req {
		if !doneReq[i] && c.req[i].needs() == state {
			needing = append(needing, c.req[i].hist)
		}
		if !doneReq[i] && c.req[i].writes() == state {
			rewritable = true
		}
	}
	for i := range c.unk {
		if !doneUnk[i] && c.unk[i].writes() == state {
			rewritable = true
		}
	}
	if len(needing) > 0 && !rewritable {
		fmt.Fprintf(&b, "\n  the register cannot change any more: %s is still needed by %s", c.valueString(state), c.describe(needing[0]))
		if len(needing) > 1 {
			fmt.Fprintf(&b, " and %d more", len(needing)-1)
		}
		b.WriteString(", and no op left writes it")
	}
	bo := &c.req[blk]
	fmt.Fprintf(&b, "\n  cannot linearize before it returns: %s", c.describe(bo.hist))
	if bo.found && (bo.kind == linRead || bo.kind == linCAS) {
		v := bo.val
		if bo.kind == linCAS {
			v = bo.exp
		}
		if !c.written[v] {
			fmt.Fprintf(&b, " (no op writes %s)", c.valueString(v))
		}
	}
	var cands []string
	add := func(o *linCOp) {
		if o.call <= bo.ret && len(cands) < 10 {
			verdict := "possible"
			if _, ok := o.apply(0, state); !ok {
				verdict = "impossible"
			}
			cands = append(cands, fmt.Sprintf("%s: %s", c.describe(o.hist), verdict))
		}
	}
	for i := range c.req {
		if !doneReq[i] && i != blk {
			add(&c.req[i])
		}
	}
	for i := range c.unk {
		if !doneUnk[i] {
			add(&c.unk[i])
		}
	}
	if len(cands) > 0 {
		fmt.Fprintf(&b, "\n  other ops pending then (every choice fails later):\n    %s", strings.Join(cands, "\n    "))
	}
	return b.String()
}

func (c *linChecker) valueString(s int32) string {
	switch s {
	case linAbsent:
		return "nothing (absent)"
	case linOther:
		return "a value no op reads or expects"
	}
	return fmt.Sprintf("%q", c.values[s])
}

// describe formats history[i] for explanations.
func (c *linChecker) describe(i int) string {
	h := c.history[i]
	unknown := h.Unknown || h.Return == linInfinity
	var s string
	switch h.Kind {
	case linRead:
		switch {
		case unknown:
			s = "read() -> ?"
		case h.Found:
			s = fmt.Sprintf("read() -> %q", h.Value)
		default:
			s = "read() -> absent"
		}
	case linWrite:
		s = fmt.Sprintf("write(%q)", h.Value)
	case linCAS:
		res := "failed"
		switch {
		case unknown:
			res = "?"
		case h.Found:
			res = "ok"
		}
		s = fmt.Sprintf("cas(%q -> %q) %s", h.Expect, h.Value, res)
	default:
		s = h.Kind.String()
	}
	ret := "inf"
	if h.Return != linInfinity {
		ret = fmt.Sprint(h.Return)
	}
	note := ""
	if unknown {
		note = " outcome unknown"
	}
	return fmt.Sprintf("#%d client %d %s [%d, %s]%s", i, h.Client, s, h.Call, ret, note)
}

// ---- tests ----

func linW(client int, v string, call, ret int64) linOp {
	return linOp{Client: client, Kind: linWrite, Value: v, Call: call, Return: ret}
}

func linR(client int, v string, call, ret int64) linOp {
	return linOp{Client: client, Kind: linRead, Value: v, Found: true, Call: call, Return: ret}
}

func linRAbsent(client int, call, ret int64) linOp {
	return linOp{Client: client, Kind: linRead, Call: call, Return: ret}
}

func linC(client int, expect, v string, swapped bool, call, ret int64) linOp {
	return linOp{Client: client, Kind: linCAS, Expect: expect, Value: v, Found: swapped, Call: call, Return: ret}
}

// linLost marks o as timed out: no response, outcome unknown.
func linLost(o linOp) linOp {
	o.Return, o.Unknown, o.Found = linInfinity, true, false
	return o
}

// linMaybe marks o as of unknown outcome but known to have ended by Return.
func linMaybe(o linOp) linOp {
	o.Unknown, o.Found = true, false
	return o
}

func TestLinCheckTable(t *testing.T) {
	tests := []struct {
		name string
		h    []linOp
		ok   bool
	}{
		{"empty", nil, true},
		{"read absent", []linOp{linRAbsent(0, 0, 1)}, true},
		{"read before any write sees value", []linOp{linR(0, "a", 0, 1), linW(1, "a", 2, 3)}, false},
		{"sequential", []linOp{
			linW(0, "a", 0, 1), linR(1, "a", 2, 3), linW(1, "b", 4, 5), linR(0, "b", 6, 7), linRAbsent(2, -2, -1),
		}, true},
		{"sequential wrong order", []linOp{linW(0, "a", 0, 1), linW(0, "b", 2, 3), linR(1, "a", 4, 5)}, false},
		{"overlapping writes, read sees a", []linOp{
			linW(0, "a", 0, 10), linW(1, "b", 0, 10), linR(2, "a", 11, 12),
		}, true},
		{"overlapping writes, read sees b", []linOp{
			linW(0, "a", 0, 10), linW(1, "b", 0, 10), linR(2, "b", 11, 12),
		}, true},
		{"overlapping writes, reads disagree later", []linOp{
			linW(0, "a", 0, 10), linW(1, "b", 0, 10), linR(2, "b", 11, 12), linR(2, "a", 13, 14),
		}, false},
		{"read concurrent with write sees old", []linOp{linW(0, "a", 0, 1), linW(0, "b", 2, 10), linR(1, "a", 3, 4)}, true},
		{"read concurrent with write sees new", []linOp{linW(0, "a", 0, 1), linW(0, "b", 2, 10), linR(1, "b", 3, 4)}, true},
		{"read concurrent with first write sees absent", []linOp{linW(0, "a", 0, 10), linRAbsent(1, 3, 4)}, true},
		{"stale read after completed write", []linOp{
			linW(0, "a", 0, 1), linW(1, "b", 2, 3), linR(2, "a", 4, 5),
		}, false},
		{"absent read after completed write", []linOp{linW(0, "a", 0, 1), linRAbsent(1, 2, 3)}, false},
		{"read of a value never written", []linOp{
			linW(0, "a", 0, 10), linW(1, "b", 0, 10), linR(2, "c", 5, 6),
		}, false},
		{"two successful CAS from the same value", []linOp{
			linW(0, "a", 0, 1), linC(1, "a", "b", true, 2, 10), linC(2, "a", "c", true, 2, 10),
		}, false},
		{"two successful CAS from the same value, a write restores it", []linOp{
			linW(0, "a", 0, 1), linC(1, "a", "b", true, 2, 10), linC(2, "a", "c", true, 2, 10), linW(3, "a", 3, 9),
		}, true},
		{"CAS chain", []linOp{
			linW(0, "a", 0, 1), linC(1, "b", "c", true, 2, 10), linC(2, "a", "b", true, 2, 10), linR(0, "c", 11, 12),
		}, true},
		{"CAS chain, sequential in the wrong order", []linOp{
			linW(0, "a", 0, 1), linC(1, "b", "c", true, 2, 3), linC(2, "a", "b", true, 4, 5),
		}, false},
		{"newer then older read, non-overlapping", []linOp{
			linW(0, "a", 0, 1), linW(1, "b", 2, 20), linR(2, "b", 3, 4), linR(3, "a", 5, 6),
		}, false},
		{"newer then older read, overlapping", []linOp{
			linW(0, "a", 0, 1), linW(1, "b", 2, 20), linR(2, "b", 3, 6), linR(3, "a", 5, 7),
		}, true},
		{"touching intervals overlap", []linOp{linW(0, "a", 0, 5), linRAbsent(1, 5, 6)}, true},
		{"failed CAS, value differs", []linOp{linW(0, "a", 0, 1), linC(1, "x", "y", false, 2, 3), linR(0, "a", 4, 5)}, true},
		{"failed CAS, value equal", []linOp{linW(0, "a", 0, 1), linC(1, "a", "y", false, 2, 3)}, false},
		{"failed CAS on absent key (100)", []linOp{linC(1, "a", "b", false, 0, 1), linRAbsent(0, 2, 3)}, true},
		{"successful CAS on absent key", []linOp{linC(1, "a", "b", true, 0, 1)}, false},
		{"successful CAS on empty value is not absent", []linOp{linC(1, "", "b", true, 0, 1)}, false},
		{"CAS expects empty value", []linOp{linW(0, "", 0, 1), linC(1, "", "b", true, 2, 3), linR(0, "b", 4, 5)}, true},
		{"failed CAS concurrent with a write", []linOp{
			linW(0, "a", 0, 1), linW(0, "b", 2, 10), linC(1, "a", "c", false, 3, 4), linR(2, "b", 11, 12),
		}, true},
		{"failed CAS must precede a successful one", []linOp{
			linW(0, "a", 0, 1), linC(1, "a", "b", true, 2, 10), linC(2, "a", "c", false, 3, 4), linR(2, "b", 11, 12),
		}, true},
		{"CAS success then stale read", []linOp{
			linW(0, "a", 0, 1), linC(1, "a", "b", true, 2, 3), linR(2, "a", 4, 5),
		}, false},
		{"lost write taken as applied", []linOp{
			linW(0, "a", 0, 1), linLost(linW(1, "b", 2, 0)), linR(2, "b", 5, 6),
		}, true},
		{"lost write taken as not applied", []linOp{
			linW(0, "a", 0, 1), linLost(linW(1, "b", 2, 0)), linR(2, "a", 50, 51),
		}, true},
		{"lost write applied late", []linOp{
			linW(0, "a", 0, 1), linLost(linW(1, "b", 2, 0)), linR(2, "a", 50, 51), linR(2, "b", 60, 61),
		}, true},
		{"lost write cannot be undone", []linOp{
			linW(0, "a", 0, 1), linLost(linW(1, "b", 2, 0)), linR(2, "b", 5, 6), linR(2, "a", 7, 8),
		}, false},
		{"lost write cannot take effect before its call", []linOp{
			linW(0, "a", 0, 1), linR(2, "b", 2, 3), linLost(linW(1, "b", 4, 0)),
		}, false},
		{"lost write takes effect at most once", []linOp{
			linLost(linW(1, "b", 0, 0)), linR(2, "b", 2, 3), linW(0, "a", 4, 5), linR(2, "b", 6, 7),
		}, false},
		{"two lost writes in either order", []linOp{
			linLost(linW(1, "b", 0, 0)), linLost(linW(2, "c", 0, 0)), linR(0, "c", 2, 3), linR(0, "b", 4, 5),
		}, true},
		{"timed-out write with a finite end, applied", []linOp{
			linW(0, "a", 0, 1), linMaybe(linW(1, "b", 2, 5)), linR(2, "b", 6, 7),
		}, true},
		{"timed-out write with a finite end, not applied", []linOp{
			linW(0, "a", 0, 1), linMaybe(linW(1, "b", 2, 5)), linR(2, "a", 6, 7),
		}, true},
		{"timed-out write with a finite end cannot apply after it", []linOp{
			linW(0, "a", 0, 1), linMaybe(linW(1, "b", 2, 5)), linR(2, "a", 6, 7), linR(2, "b", 8, 9),
		}, false},
		{"lost read ignored", []linOp{linW(0, "a", 0, 1), linLost(linR(1, "zzz", 2, 0))}, true},
		{"lost CAS applied", []linOp{linW(0, "a", 0, 1), linLost(linC(1, "a", "b", true, 2, 0)), linR(2, "b", 5, 6)}, true},
		{"lost CAS not applied", []linOp{linW(0, "a", 0, 1), linLost(linC(1, "a", "b", true, 2, 0)), linR(2, "a", 5, 6)}, true},
		{"lost CAS cannot apply on a mismatch", []linOp{linW(0, "a", 0, 1), linLost(linC(1, "x", "b", true, 2, 0)), linR(2, "b", 5, 6)}, false},
		{"lost CAS enables a later CAS", []linOp{
			linW(0, "a", 0, 1), linLost(linC(1, "a", "b", true, 2, 0)), linC(2, "b", "c", true, 5, 6), linR(0, "c", 7, 8),
		}, true},
		{"return before call", []linOp{linW(0, "a", 5, 1)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, timedOut, explain := linCheck(tc.h, 5*time.Second)
			if timedOut {
				t.Fatalf("timed out: %s", explain)
			}
			if ok != tc.ok {
				t.Fatalf("linCheck = %v, want %v; explanation: %s", ok, tc.ok, explain)
			}
			if !ok && explain == "" {
				t.Fatalf("no explanation")
			}
			if !ok {
				t.Logf("%s", explain)
			}
		})
	}
}

// linGenConfig describes a random history.
type linGenConfig struct {
	clients, ops int
	values       int     // value domain for writes and swaps; 0: every value unique
	lost         float64 // probability that a write or CAS gets no response
	spread       int64   // maximum delay between call, linearization point and return
}

// linGen simulates clients using a real atomic register: each op takes
// effect at one instant (its linearization point) between call and return,
// at random. Lost ops take effect or not at random and never return; their
// client goes on later. The result is linearizable by construction.
func linGen(rng *rand.Rand, cfg linGenConfig) []linOp {
	type sim struct {
		op      linOp
		lp      int64
		applied bool
	}
	var ops []sim
	byClient := make([][]int, cfg.clients)
	for c := 0; c < cfg.clients; c++ {
		t := rng.Int63n(cfg.spread + 1)
		for k := 0; k < cfg.ops; k++ {
			call := t + rng.Int63n(cfg.spread/4+1)
			lp := call + rng.Int63n(cfg.spread+1)
			ret := lp + rng.Int63n(cfg.spread+1)
			s := sim{op: linOp{Client: c, Call: call, Return: ret}, lp: lp, applied: true}
			switch r := rng.Intn(10); {
			case r < 5:
				s.op.Kind = linRead
			case r < 8:
				s.op.Kind = linWrite
			default:
				s.op.Kind = linCAS
			}
			if cfg.values == 0 {
				s.op.Value = fmt.Sprintf("c%d-%d", c, k)
			} else {
				s.op.Value = fmt.Sprintf("v%d", rng.Intn(cfg.values))
			}
			t = ret
			if s.op.Kind != linRead && rng.Float64() < cfg.lost {
				s.op.Return, s.op.Unknown = linInfinity, true
				s.applied = rng.Intn(2) == 0
				t = ret + cfg.spread // the client gives up after a while
			}
			byClient[c] = append(byClient[c], len(ops))
			ops = append(ops, s)
		}
	}
	order := make([]int, len(ops))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return ops[order[a]].lp < ops[order[b]].lp })
	// Apply in linearization order. A CAS expects the value its client last
	// saw (its previous op ended before this one began, so that is known).
	lastSeen := make([]string, cfg.clients)
	present, cur := false, ""
	for _, i := range order {
		s := &ops[i]
		o := &s.op
		switch o.Kind {
		case linRead:
			o.Found, o.Value = present, ""
			if present {
				o.Value = cur
				lastSeen[o.Client] = cur
			}
		case linWrite:
			if s.applied {
				present, cur = true, o.Value
			}
			if !o.Unknown {
				lastSeen[o.Client] = o.Value
			}
		case linCAS:
			o.Expect = lastSeen[o.Client]
			if rng.Intn(4) == 0 && cfg.values > 0 {
				o.Expect = fmt.Sprintf("v%d", rng.Intn(cfg.values))
			}
			swap := present && cur == o.Expect
			if s.applied && swap {
				cur = o.Value
			}
			if !o.Unknown {
				o.Found = swap
				if swap {
					lastSeen[o.Client] = o.Value
				}
			}
		}
	}
	h := make([]linOp, len(ops))
	for i := range ops {
		h[i] = ops[i].op
	}
	rng.Shuffle(len(h), func(i, j int) { h[i], h[j] = h[j], h[i] }) // order must not matter
	return h
}

// linCorrupt makes one read, about in the middle of h, return a value that
// had certainly been overwritten before it was called (values must be
// unique): a write or successful CAS W1 of u, then a known W2 of another
// value called after W1 returned, and returned before the read is called.
// It returns the index of the corrupted read, or -1.
func linCorrupt(h []linOp) int {
	idx := make([]int, len(h))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return h[idx[a]].Call < h[idx[b]].Call })
	writes := func(o linOp) bool {
		return !o.Unknown && (o.Kind == linWrite || (o.Kind == linCAS && o.Found))
	}
	for _, ri := range idx[len(idx)/2:] {
		r := h[ri]
		if r.Kind != linRead || !r.Found || r.Unknown {
			continue
		}
		for _, w2 := range h {
			if !writes(w2) || w2.Return >= r.Call || w2.Value == r.Value {
				continue
			}
			for _, w1 := range h {
				if writes(w1) && w1.Return < w2.Call && w1.Value != r.Value && w1.Value != w2.Value {
					h[ri].Value = w1.Value
					return ri
				}
			}
		}
	}
	return -1
}

func TestLinCheckRandomLinearizable(t *testing.T) {
	cfgs := []struct {
		name string
		cfg  linGenConfig
	}{
		{"10x300 unique values", linGenConfig{clients: 10, ops: 300, spread: 100}},
		{"10x300 unique values, lost ops", linGenConfig{clients: 10, ops: 300, lost: 0.02, spread: 100}},
		{"10x300 three values", linGenConfig{clients: 10, ops: 300, values: 3, spread: 100}},
		{"10x300 three values, lost ops", linGenConfig{clients: 10, ops: 300, values: 3, lost: 0.02, spread: 100}},
		{"20x200 two values, long ops", linGenConfig{clients: 20, ops: 200, values: 2, spread: 400}},
	}
	for _, tc := range cfgs {
		t.Run(tc.name, func(t *testing.T) {
			for seed := int64(1); seed <= 3; seed++ {
				h := linGen(rand.New(rand.NewSource(seed)), tc.cfg)
				start := time.Now()
				ok, timedOut, explain := linCheck(h, 20*time.Second)
				el := time.Since(start)
				if timedOut {
					t.Fatalf("seed %d: timed out after %v: %s", seed, el, explain)
				}
				if !ok {
					t.Fatalf("seed %d: linearizable history rejected:\n%s", seed, explain)
				}
				if el > 5*time.Second {
					t.Fatalf("seed %d: %d ops took %v", seed, len(h), el)
				}
				t.Logf("seed %d: %d ops checked in %v", seed, len(h), el)
			}
		})
	}
}

// linSearchOnly is linCheck without the stale-value pre-check, so that tests
// exercise the search on failing histories too.
func linSearchOnly(history []linOp, deadline time.Duration) (ok, timedOut bool, explain string) {
	c, err := linCompile(history)
	if err != "" {
		return false, false, err
	}
	return c.search(time.Now().Add(deadline))
}

func TestLinCheckRandomCorrupted(t *testing.T) {
	for _, lost := range []float64{0, 0.02} {
		for seed := int64(1); seed <= 3; seed++ {
			h := linGen(rand.New(rand.NewSource(seed)), linGenConfig{clients: 10, ops: 300, lost: lost, spread: 100})
			ri := linCorrupt(h)
			if ri < 0 {
				t.Fatalf("seed %d: nothing to corrupt", seed)
			}
			for _, check := range []struct {
				name string
				f    func([]linOp, time.Duration) (bool, bool, string)
			}{{"linCheck", linCheck}, {"search only", linSearchOnly}} {
				start := time.Now()
				ok, timedOut, explain := check.f(h, 20*time.Second)
				el := time.Since(start)
				if timedOut {
					t.Fatalf("%s seed %d lost %v: timed out after %v: %s", check.name, seed, lost, el, explain)
				}
				if ok {
					t.Fatalf("%s seed %d lost %v: corrupted read #%d accepted", check.name, seed, lost, ri)
				}
				if el > 5*time.Second {
					t.Fatalf("%s seed %d lost %v: took %v", check.name, seed, lost, el)
				}
				if !strings.Contains(explain, "not linearizable") || !strings.Contains(explain, fmt.Sprintf("#%d ", ri)) {
					t.Fatalf("%s: explanation does not name the corrupted read #%d: %s", check.name, ri, explain)
				}
				t.Logf("%s seed %d lost %v: corrupted read #%d rejected in %v\n%s", check.name, seed, lost, ri, el, explain)
			}
		}
	}
}

// TestLinCheckRealRegister checks a history recorded from goroutines sharing
// a mutex-protected register.
func TestLinCheckRealRegister(t *testing.T) {
	const clients, ops = 10, 300
	var (
		mu      sync.Mutex
		present bool
		cur     string
		start   = time.Now()
		wg      sync.WaitGroup
	)
	hs := make([][]linOp, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(c)))
			seen := ""
			for k := 0; k < ops; k++ {
				o := linOp{Client: c}
				switch r := rng.Intn(10); {
				case r < 5:
					o.Kind = linRead
				case r < 8:
					o.Kind, o.Value = linWrite, fmt.Sprintf("v%d", rng.Intn(4))
				default:
					o.Kind, o.Value, o.Expect = linCAS, fmt.Sprintf("v%d", rng.Intn(4)), seen
				}
				if rng.Intn(4) == 0 {
					time.Sleep(time.Duration(rng.Intn(50)) * time.Microsecond)
				}
				o.Call = int64(time.Since(start))
				mu.Lock()
				switch o.Kind {
				case linRead:
					o.Found, o.Value = present, cur
					if !present {
						o.Value = ""
					}
				case linWrite:
					present, cur = true, o.Value
				case linCAS:
					if present && cur == o.Expect {
						o.Found, cur = true, o.Value
					}
				}
				mu.Unlock()
				o.Return = int64(time.Since(start))
				if o.Found || o.Kind == linWrite {
					seen = o.Value
				}
				hs[c] = append(hs[c], o)
			}
		}()
	}
	wg.Wait()
	var h []linOp
	for _, x := range hs {
		h = append(h, x...)
	}
	t0 := time.Now()
	ok, timedOut, explain := linCheck(h, 20*time.Second)
	if timedOut || !ok {
		t.Fatalf("ok=%v timedOut=%v: %s", ok, timedOut, explain)
	}
	t.Logf("%d ops checked in %v", len(h), time.Since(t0))
}

// linBrute decides linearizability by trying every order of every allowed
// subset of ops, remembering only the (set of ops, value) pairs that failed:
// a plain, independent oracle for histories of up to 64 ops.
func linBrute(h []linOp) bool {
	type bop struct {
		linOp
		optional bool
	}
	var ops []bop
	for _, o := range h {
		unknown := o.Unknown || o.Return == linInfinity
		if unknown && o.Kind == linRead {
			continue
		}
		ops = append(ops, bop{o, unknown})
	}
	if len(ops) > 64 {
		panic("linBrute: too many ops")
	}
	// before[i]: required ops that must come before op i; after[i]: ops
	// that must come after it (if they come at all).
	var required uint64
	before := make([]uint64, len(ops))
	after := make([]uint64, len(ops))
	for i, o := range ops {
		if !o.optional {
			required |= 1 << i
		}
		for j, p := range ops {
			if p.Return < o.Call && !p.optional {
				before[i] |= 1 << j
			}
			if o.Return < p.Call {
				after[i] |= 1 << j
			}
		}
	}
	type key struct {
		placed  uint64
		present bool
		cur     string
	}
	failed := make(map[key]bool)
	var dfs func(placed uint64, present bool, cur string) bool
	dfs = func(placed uint64, present bool, cur string) bool {
		if placed&required == required {
			return true
		}
		k := key{placed, present, cur}
		if failed[k] {
			return false
		}
		for i, o := range ops {
			if placed&(1<<i) != 0 || before[i]&^placed != 0 || after[i]&placed != 0 {
				continue
			}
			np, nc := present, cur
			switch o.Kind {
			case linRead:
				if o.Found != present || (present && o.Value != cur) {
					continue
				}
			case linWrite:
				np, nc = true, o.Value
			case linCAS:
				match := present && cur == o.Expect
				if o.optional || o.Found {
					if !match {
						continue
					}
					nc = o.Value
				} else if match {
					continue
				}
			}
			if dfs(placed|1<<i, np, nc) {
				return true
			}
		}
		failed[k] = true
		return false
	}
	return dfs(0, false, "")
}

// linRandomSmall is a small history with random results: often not
// linearizable.
func linRandomSmall(rng *rand.Rand) []linOp {
	n := 1 + rng.Intn(7)
	vals := []string{"a", "b", "c"}[:1+rng.Intn(3)]
	h := make([]linOp, n)
	for i := range h {
		call := rng.Int63n(12)
		o := linOp{Client: i, Kind: linKind(rng.Intn(3)), Call: call, Return: call + rng.Int63n(6)}
		o.Value, o.Expect, o.Found = vals[rng.Intn(len(vals))], vals[rng.Intn(len(vals))], rng.Intn(3) != 0
		switch rng.Intn(8) {
		case 0:
			o = linLost(o)
		case 1:
			o = linMaybe(o)
		}
		h[i] = o
	}
	return h
}

// linPerturb changes up to n results or times of random ops in h.
func linPerturb(rng *rand.Rand, h []linOp, n int) {
	for k := rng.Intn(n + 1); k > 0 && len(h) > 0; k-- {
		j := rng.Intn(len(h))
		switch rng.Intn(4) {
		case 0:
			h[j].Found = !h[j].Found
		case 1:
			h[j].Value = h[rng.Intn(len(h))].Value
		case 2:
			h[j].Expect = h[rng.Intn(len(h))].Value
		case 3:
			h[j].Call -= rng.Int63n(10)
			if h[j].Return != linInfinity {
				h[j].Return += rng.Int63n(10)
			}
		}
	}
}

func TestLinCheckMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewSource(42))
	counts := map[bool]int{}
	for i := 0; i < 6000; i++ {
		var h []linOp
		switch i % 3 {
		case 0: // tiny, random results
			h = linRandomSmall(rng)
		case 1: // small, mostly linearizable
			h = linGen(rng, linGenConfig{clients: 1 + rng.Intn(3), ops: 1 + rng.Intn(3), values: 1 + rng.Intn(2), lost: 0.2, spread: 6})
			linPerturb(rng, h, 1)
		case 2: // up to 64 ops
			if i%30 != 2 {
				continue
			}
			h = linGen(rng, linGenConfig{clients: 2 + rng.Intn(5), ops: 2 + rng.Intn(10), values: rng.Intn(4),
				lost: []float64{0, 0.1, 0.3}[rng.Intn(3)], spread: int64(4 + rng.Intn(30))})
			h = h[:min(len(h), 64)]
			linPerturb(rng, h, 2)
		}
		want := linBrute(h)
		for _, check := range []struct {
			name string
			f    func([]linOp, time.Duration) (bool, bool, string)
		}{{"linCheck", linCheck}, {"search only", linSearchOnly}} {
			ok, timedOut, explain := check.f(h, 5*time.Second)
			if timedOut || ok != want {
				var b strings.Builder
				for j, o := range h {
					fmt.Fprintf(&b, "\n  %d: %+v", j, o)
				}
				t.Fatalf("history %d: %s = %v (timedOut %v), brute force = %v; %s%s", i, check.name, ok, timedOut, want, explain, b.String())
			}
		}
		counts[want]++
	}
	t.Logf("linearizable: %d, not: %d", counts[true], counts[false])
	if counts[true] < 200 || counts[false] < 200 {
		t.Fatalf("unbalanced sample: %v", counts)
	}
}

func TestLinCheckDeadline(t *testing.T) {
	// Sixty concurrent writes, and reads that see "a", then "b", then "a"
	// again although "a" is written once: not linearizable, but only an
	// exhaustive search over the orders of the other writes shows it.
	var h []linOp
	for i := 0; i < 60; i++ {
		h = append(h, linW(i, fmt.Sprint("w", i), 0, 1000))
	}
	h = append(h, linW(60, "a", 0, 1000), linW(61, "b", 0, 1000),
		linR(62, "a", 10, 20), linR(62, "b", 30, 40), linR(62, "a", 50, 60))
	start := time.Now()
	ok, timedOut, explain := linCheck(h, 50*time.Millisecond)
	el := time.Since(start)
	if el > 2*time.Second {
		t.Fatalf("took %v with a 50ms deadline", el)
	}
	if !timedOut || !ok {
		t.Fatalf("want an inconclusive result (ok=true, timedOut=true), got ok=%v timedOut=%v: %s", ok, timedOut, explain)
	}
	t.Logf("ok=%v timedOut=%v in %v: %s", ok, timedOut, el, explain)
	// Without the other writes it is quickly found out.
	ok, timedOut, explain = linCheck(h[60:], time.Second)
	if ok || timedOut {
		t.Fatalf("small version: ok=%v timedOut=%v", ok, timedOut)
	}
	t.Logf("%s", explain)
}

func BenchmarkLinCheck(b *testing.B) {
	for _, tc := range []struct {
		name    string
		cfg     linGenConfig
		corrupt bool
	}{
		{"10x300", linGenConfig{clients: 10, ops: 300, spread: 100}, false},
		{"10x300-lost", linGenConfig{clients: 10, ops: 300, lost: 0.02, spread: 100}, false},
		{"10x300-3values", linGenConfig{clients: 10, ops: 300, values: 3, spread: 100}, false},
		{"10x300-corrupted", linGenConfig{clients: 10, ops: 300, spread: 100}, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			h := linGen(rand.New(rand.NewSource(1)), tc.cfg)
			if tc.corrupt && linCorrupt(h) < 0 {
				b.Fatal("nothing to corrupt")
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if ok, timedOut, _ := linCheck(h, time.Minute); ok == tc.corrupt || timedOut {
					b.Fatalf("ok=%v timedOut=%v", ok, timedOut)
				}
			}
		})
	}
}
