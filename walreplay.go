// WAL replay: reading segments back in order, checking the CRC chain, the
// metadata and the continuity of indexes and terms, telling a torn tail from
// damage (walCorruptError), and the offline scans (usable snapshots, the
// metadata) that read a log without opening it for writing.

package main

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
)

// walErrCorrupt is wrapped by every error that reports damage in a segment.
var walErrCorrupt = errors.New("wal corrupt")

// walCorruptError reports damage or an inconsistency found in a segment.
type walCorruptError struct {
	path   string
	offset int64
	reason string
}

// Error implements error.
func (e *walCorruptError) Error() string {
	return fmt.Sprintf("wal: %s at offset %d: %s", e.path, e.offset, e.reason)
}

// Unwrap lets errors.Is match walErrCorrupt.
func (e *walCorruptError) Unwrap() error { return walErrCorrupt }

// walCorrupt builds a walCorruptError.
func walCorrupt(path string, off int, format string, args ...any) error {
	return &walCorruptError{path: path, offset: int64(off), reason: fmt.Sprintf(format, args...)}
}

// walTermRun says that entries from index on (up to the next run) have term.
type walTermRun struct {
	index, term uint64
}

// walLogTracker follows the indexes and terms of the raft log as records are
// written or replayed, so that gaps are caught and snapshot markers can be
// applied the way raft applies snapshots.
type walLogTracker struct {
	base uint64 // terms are known only for indexes above base
	last uint64 // last index in the log
	runs []walTermRun
}

// reset starts an empty log after index base.
func (t *walLogTracker) reset(base uint64) {
	t.base, t.last, t.runs = base, base, t.runs[:0]
}

// termAt returns the term of index i if known.
func (t *walLogTracker) termAt(i uint64) (uint64, bool) {
	if i <= t.base || i > t.last {
		return 0, false
	}
	for k := len(t.runs) - 1; k >= 0; k-- {
		if t.runs[k].index <= i {
			return t.runs[k].term, true
		}
	}
	return 0, false
}

// checkEntry reports whether an entry with index may follow the log.
func (t *walLogTracker) checkEntry(index uint64) error {
	if index == 0 {
		return errors.New("entry with index 0")
	}
	if index > t.last+1 {
		return fmt.Errorf("entry index %d leaves a gap after index %d", index, t.last)
	}
	return nil
}

// addEntry appends an entry, replacing index and everything after it.
// checkEntry must have accepted it.
func (t *walLogTracker) addEntry(index, term uint64) {
	if index <= t.last {
		k := len(t.runs)
		for k > 0 && t.runs[k-1].index >= index {
			k--
		}
		t.runs = t.runs[:k]
		if index <= t.base {
			t.base = index - 1
		}
	}
	if k := len(t.runs); k == 0 || t.runs[k-1].term != term {
		t.runs = append(t.runs, walTermRun{index, term})
	}
	t.last = index
}

// addMarker applies a snapshot marker as raft applies a snapshot: if the log
// already holds index with the same term it is kept, otherwise the snapshot
// replaces the whole log. It reports whether the log was replaced.
func (t *walLogTracker) addMarker(index, term uint64) bool {
	if index <= t.last {
		if index <= t.base {
			return false // before anything this log knows of: already applied
		}
		if tm, ok := t.termAt(index); ok && tm == term {
			return false
		}
	}
	t.base, t.last = index-1, index
	t.runs = append(t.runs[:0], walTermRun{index, term})
	return true
}

// walReplay reads segments and rebuilds the log state.
type walReplay struct {
	meta      *WALMetadata // checked against metadata records when not nil
	snapIndex uint64       // snapshot the caller loaded
	snapTerm  uint64
	strict    bool // fail if the log cannot be replayed from the snapshot
	keep      bool // collect entries after snapIndex

	started  bool
	walBase  uint64 // index before the first segment's first index
	log      walLogTracker
	chain    uint32 // chained CRC at the end of the last segment read
	hs       raftpb.HardState
	ents     []raftpb.Entry
	scratch  raftpb.Entry
	dataBuf  []byte
	markers  []walMarker // every marker seen, in log order
	latest   walMarker   // the last marker seen
	snapSeen walMarker   // the last marker with index <= snapIndex
	replaced []uint64    // indexes of markers that replaced the log

	// Outcome for the last segment.
	segStartChain uint32 // chain value before the last segment
	validEnd      int    // length of its valid prefix
	torn          bool   // it has a torn tail to cut at validEnd
	rebuild       bool   // its header or preamble is torn: rewrite it
}

// segment replays one segment whose file content is data. isLast selects
// torn-tail tolerance; prevKnown says whether the previous segment was read.
func (r *walReplay) segment(seg walSegmentInfo, data []byte, isLast, prevKnown bool) error {
	path := seg.path
	r.segStartChain = r.chain
	if !r.started {
		r.started = true
		if seg.first == 0 {
			return walCorrupt(path, 0, "segment first index is 0")
		}
		r.walBase = seg.first - 1
		r.log.reset(seg.first - 1)
		if r.strict && r.walBase > r.snapIndex {
			return walCorrupt(path, 0, "log starts after index %d but the loaded snapshot is at index %d: entries are missing", r.walBase, r.snapIndex)
		}
	} else if seg.first != r.log.last+1 {
		return walCorrupt(path, 0, "segment starts at index %d but the log before it ends at index %d", seg.first, r.log.last)
	}

	if len(data) < walSegHeaderSize || walAllZero(data) {
		if isLast {
			r.rebuild = true
			return nil
		}
		return walCorrupt(path, 0, "truncated or empty segment header (%d bytes)", len(data))
	}
	h := data[:walSegHeaderSize]
	switch {
	case string(h[0:8]) != walMagic:
		return walCorrupt(path, 0, "not a wal segment (bad magic)")
	case binary.LittleEndian.Uint32(h[8:12]) != walVersion:
		return walCorrupt(path, 0, "unsupported segment version %d", binary.LittleEndian.Uint32(h[8:12]))
	case walSegHeaderCRC(h) != binary.LittleEndian.Uint32(h[12:16]):
		return walCorrupt(path, 0, "segment header checksum mismatch")
	case binary.LittleEndian.Uint64(h[16:24]) != seg.seq || binary.LittleEndian.Uint64(h[24:32]) != seg.first:
		return walCorrupt(path, 0, "segment header (seq %d, first index %d) does not match the file name",
			binary.LittleEndian.Uint64(h[16:24]), binary.LittleEndian.Uint64(h[24:32]))
	}

	prev := binary.LittleEndian.Uint32(h[12:16])
	off, n := walSegHeaderSize, 0
	for off < len(data) {
		if isLast && walAllZero(data[off:]) {
			break // the preallocated, never written end of the segment
		}
		rec, st := walDecodeRecord(data, off, prev)
		if st != walRecOK {
			if !isLast {
				return walCorrupt(path, off, "%s", st)
			}
			if !walTornTail(data, off, st, rec.end) {
				return walCorrupt(path, off, "%s followed by valid records", st)
			}
			r.torn = true
			break
		}
		if err := r.record(path, off, n, rec, prevKnown); err != nil {
			return err
		}
		prev = rec.crc
		off = rec.end
		n++
	}
	r.chain = prev
	if isLast {
		r.validEnd = off
		if n < 2 {
			r.rebuild = true // the crc or metadata record is missing
		}
	}
	return nil
}

// record applies the n-th record of a segment found at off.
func (r *walReplay) record(path string, off, n int, rec walRecord, prevKnown bool) error {
	p := rec.payload
	switch n {
	case 0:
		if rec.typ != walTypeCRC || len(p) != 4 {
			return walCorrupt(path, off, "segment starts with a %s record of %d bytes, want a crc record", walTypeName(rec.typ), len(p))
		}
		if v := binary.LittleEndian.Uint32(p); prevKnown && v != r.chain {
			return walCorrupt(path, off, "crc chain broken: segment continues from %08x but the previous segment ended at %08x", v, r.chain)
		}
		return nil
	case 1:
		if rec.typ != walTypeMetadata {
			return walCorrupt(path, off, "%s record where the metadata record belongs", walTypeName(rec.typ))
		}
		m, ok := walDecodeMetadata(p)
		if !ok {
			return walCorrupt(path, off, "short metadata record")
		}
		if r.meta != nil && m != *r.meta {
			return walCorrupt(path, off, "log belongs to member %x of cluster %x named %q, not member %x of cluster %x named %q",
				m.MemberID, m.ClusterID, m.Name, r.meta.MemberID, r.meta.ClusterID, r.meta.Name)
		}
		return nil
	}
	switch rec.typ {
	case walTypeHardState:
		var hs raftpb.HardState
		if err := hs.Unmarshal(p); err != nil {
			return walCorrupt(path, off, "decode hard state: %v", err)
		}
		r.hs = hs
	case walTypeEntry:
		r.scratch = raftpb.Entry{Data: r.dataBuf[:0]}
		if err := r.scratch.Unmarshal(p); err != nil {
			return walCorrupt(path, off, "decode entry: %v", err)
		}
		r.dataBuf = r.scratch.Data
		e := &r.scratch
		if err := r.log.checkEntry(e.Index); err != nil {
			return walCorrupt(path, off, "%v", err)
		}
		r.log.addEntry(e.Index, e.Term)
		if !r.keep {
			return nil
		}
		if e.Index <= r.snapIndex {
			r.ents = r.ents[:0]
			return nil
		}
		pos := e.Index - r.snapIndex - 1
		if pos > uint64(len(r.ents)) {
			return walCorrupt(path, off, "entry index %d does not follow the entries replayed so far", e.Index)
		}
		ent := raftpb.Entry{Term: e.Term, Index: e.Index, Type: e.Type}
		if len(e.Data) > 0 {
			ent.Data = append([]byte(nil), e.Data...)
		}
		r.ents = append(r.ents[:pos], ent)
	case walTypeSnapshot:
		if len(p) != 24 {
			return walCorrupt(path, off, "snapshot marker of %d bytes", len(p))
		}
		m := walMarker{index: binary.LittleEndian.Uint64(p[0:]), term: binary.LittleEndian.Uint64(p[8:])}
		flags := binary.LittleEndian.Uint64(p[16:])
		if m.index == 0 || flags&^walMarkerCarried != 0 {
			return walCorrupt(path, off, "invalid snapshot marker (index %d, flags %x)", m.index, flags)
		}
		r.markers = append(r.markers, m)
		r.latest = m
		if m.index <= r.snapIndex {
			r.snapSeen = m
		}
		if r.strict && m.index == r.snapIndex && m.term != r.snapTerm {
			return walCorrupt(path, off, "snapshot marker at index %d has term %d, the loaded snapshot has term %d", m.index, m.term, r.snapTerm)
		}
		if flags&walMarkerCarried == 0 && r.log.addMarker(m.index, m.term) {
			r.replaced = append(r.replaced, m.index)
			if m.index > r.snapIndex {
				if r.strict {
					return walCorrupt(path, off, "snapshot at index %d (term %d) replaced the log but the loaded snapshot is at index %d: load that snapshot", m.index, m.term, r.snapIndex)
				}
			} else if r.keep {
				r.ents = r.ents[:0]
			}
		}
	default:
		return walCorrupt(path, off, "unexpected %s record", walTypeName(rec.typ))
	}
	return nil
}

// walReplayDir replays every segment in dir. It does not modify anything.
func walReplayDir(segs []walSegmentInfo, r *walReplay) error {
	for i, seg := range segs {
		if i > 0 && seg.seq != segs[i-1].seq+1 {
			return walCorrupt(seg.path, 0, "segment sequence gap: expected sequence %d, found %d", segs[i-1].seq+1, seg.seq)
		}
		data, release, err := mapFileReadOnly(seg.path)
		if err != nil {
			return err
		}
		isLast := i == len(segs)-1
		if isLast {
			// what lies beyond reads as zeros: the preallocated end
			data = data[:walDataEnd(seg.path, len(data))]
		}
		err = r.segment(seg, data, isLast, i > 0)
		release()
		if err != nil {
			return err
		}
	}
	return nil
}

// walSnapshotUsable scans the log in dir without changing it and returns a
// predicate for Snapshotter.Load: a snapshot (index, term) is usable when the
// log recorded its marker, the saved commit index (if a hard state was
// saved) reaches it, and the log can be replayed from it (no entries missing
// after it and no later snapshot replaced the log). If dir holds no log,
// nothing is usable.
func walSnapshotUsable(dir string) (func(index, term uint64) bool, error) {
	if !walExists(dir) {
		return func(uint64, uint64) bool { return false }, nil
	}
	segs, _, err := walListSegments(dir)
	if err != nil {
		return nil, err
	}
	r := &walReplay{}
	if err := walReplayDir(segs, r); err != nil {
		return nil, err
	}
	return func(index, term uint64) bool {
		if index < r.walBase || (r.hs != (raftpb.HardState{}) && index > r.hs.Commit) {
			return false
		}
		for _, x := range r.replaced {
			if x > index {
				return false
			}
		}
		for _, m := range r.markers {
			if m == (walMarker{index, term}) {
				return true
			}
		}
		return false
	}, nil
}

// walReadMetadata returns the metadata recorded in the log in dir.
func walReadMetadata(dir string) (WALMetadata, error) {
	segs, _, err := walListSegments(dir)
	if err != nil {
		return WALMetadata{}, err
	}
	if len(segs) == 0 {
		return WALMetadata{}, fmt.Errorf("wal: no segments in %s", dir)
	}
	path := segs[0].path
	data, release, err := mapFileReadOnly(path)
	if err != nil {
		return WALMetadata{}, err
	}
	defer release()
	if len(data) < walSegHeaderSize || string(data[:8]) != walMagic ||
		walSegHeaderCRC(data) != binary.LittleEndian.Uint32(data[12:16]) {
		return WALMetadata{}, walCorrupt(path, 0, "bad segment header")
	}
	crcRec, st := walDecodeRecord(data, walSegHeaderSize, binary.LittleEndian.Uint32(data[12:16]))
	if st != walRecOK {
		return WALMetadata{}, walCorrupt(path, walSegHeaderSize, "%s", st)
	}
	rec, st := walDecodeRecord(data, crcRec.end, crcRec.crc)
	if st != walRecOK {
		return WALMetadata{}, walCorrupt(path, crcRec.end, "%s", st)
	}
	m, ok := walDecodeMetadata(rec.payload)
	if crcRec.typ != walTypeCRC || rec.typ != walTypeMetadata || !ok {
		return WALMetadata{}, walCorrupt(path, crcRec.end, "no metadata record")
	}
	return m, nil
}
