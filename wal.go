// The write-ahead log: framing, segments, replay (details below).

package main

// This file implements etcdlite's write-ahead log: the durable record of raft
// hard states, log entries and snapshot markers, kept in <data-dir>/member/wal/.
//
// On-disk format
//
// The log is a sequence of segment files named "%016x-%016x.wal" (sequence
// number, index of the first entry the segment may hold). Sequence numbers of
// the segments present are consecutive. Each segment starts with a 32-byte
// header:
//
//	[0:8]   magic "etcdlwal"
//	[8:12]  format version (little endian uint32)
//	[12:16] CRC-32C of bytes [0:12] and [16:32]
//	[16:24] sequence number
//	[24:32] first index
//
// followed by records, each starting at an 8-byte aligned offset:
//
//	[0:4]   payload length n (little endian uint32)
//	[4]     record type
//	[5:8]   zero
//	[8:12]  chained CRC-32C over bytes [0:8] and the padded payload, seeded
//	        with the previous record's chained CRC (the first record of a
//	        segment is seeded with the segment header's CRC)
//	[12:16] CRC-32C of bytes [0:12], so a damaged length is recognised
//	[16:]   payload, zero padded to a multiple of 8 bytes
//
// Every segment begins with a crc record (whose payload is the chained CRC the
// previous segment ended with), then a metadata record (member id, cluster
// id, name), then copies of the newest snapshot marker and hard state known
// when the segment was created, so that older segments can be removed. Then
// follow the hardstate, entry (raftpb.Entry.Marshal) and snapshot marker
// records written by Save and SaveSnapshot.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.etcd.io/raft/v3/raftpb"
)

// walSegmentSize is the size at which the log moves on to a new segment. The
// check happens after each Save, so a segment can end up somewhat larger.
// Tests lower it.
var walSegmentSize int64 = 64 << 20

// walDefaultMaxFiles is WAL.maxFiles of a log just opened (etcd's
// --max-wals default); the server sets its own from its config.
const walDefaultMaxFiles = 5

// walCRCTable is the CRC-32C (Castagnoli) table of every checksum on disk:
// WAL records and snapshot files (snapshot.go). Never written after start.
var walCRCTable = crc32.MakeTable(crc32.Castagnoli)

// walErrCorrupt is wrapped by every error that reports damage in a segment.
var walErrCorrupt = errors.New("wal corrupt")

// walErrClosed is returned by operations on a closed WAL.
var walErrClosed = errors.New("wal is closed")

const (
	walMagic         = "etcdlwal"
	walVersion       = 1
	walSegHeaderSize = 32
	walRecHeaderSize = 16
	walSegmentExt    = ".wal"
	walTempExt       = ".tmp"
	// walMarkerCarried flags a snapshot marker copied into a new segment's
	// preamble; replay records it but does not apply it to the log again.
	walMarkerCarried = 1
	// walBufKeep is the largest batch buffer kept between Saves.
	walBufKeep = 4 << 20
)

// Record types.
const (
	walTypeCRC       byte = 1
	walTypeMetadata  byte = 2
	walTypeHardState byte = 3
	walTypeEntry     byte = 4
	walTypeSnapshot  byte = 5
)

// walTypeName names a record type for error messages.
func walTypeName(t byte) string {
	switch t {
	case walTypeCRC:
		return "crc"
	case walTypeMetadata:
		return "metadata"
	case walTypeHardState:
		return "hardstate"
	case walTypeEntry:
		return "entry"
	case walTypeSnapshot:
		return "snapshot"
	}
	return "type " + strconv.Itoa(int(t))
}

// WALMetadata identifies the member that owns a log.
type WALMetadata struct {
	MemberID  uint64
	ClusterID uint64
	Name      string
}

// WALState is what a log held when it was opened.
type WALState struct {
	// HardState is the last hard state saved (zero if none).
	HardState raftpb.HardState
	// Entries are the entries with Index greater than the snapshot index
	// passed to OpenWAL, in order, with conflicts resolved: a later record
	// for index i replaced i and everything after it. Entries without data
	// have a nil Data.
	Entries []raftpb.Entry
	// Snapshot is the last snapshot marker in the log whose index is at most
	// the snapshot index passed to OpenWAL (only Index and Term are set;
	// zero if there is none).
	Snapshot raftpb.SnapshotMetadata
}

// WAL is an open write-ahead log. Its methods are safe for concurrent use,
// but Save and SaveSnapshot are meant to be called from the raft loop only.
// After a failed write or fsync the WAL refuses further writes: the caller
// must stop and reopen it.
type WAL struct {
	mu          sync.Mutex
	dir         string
	metaPayload []byte
	segs        []walSegmentInfo // present segments, oldest first; the last is open
	f           *os.File         // the last segment, open for appending
	size        int64            // bytes in the last segment
	chain       uint32           // chained CRC of the last record written
	log         walLogTracker    // indexes and terms written so far
	hs          raftpb.HardState // last hard state written
	pendingHS   raftpb.HardState // a newer one that only moves the commit index, not written yet (zero: none)
	latest      walMarker        // last snapshot marker written (index 0: none)
	buf         []byte           // reused batch buffer
	unsynced    bool             // written records that must be fsynced before Sync returns
	err         error            // sticky failure
	metrics     *walMetrics      // what /metrics reports; nil: nothing is counted
	maxFiles    int              // segment files ReleaseTo keeps at least (--max-wals); 0 keeps every segment
}

// walSegmentInfo describes one segment file.
type walSegmentInfo struct {
	seq   uint64
	first uint64
	path  string
}

// walMarker is a snapshot marker: index and term of a durable snapshot.
type walMarker struct {
	index, term uint64
}

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

// walSegmentName is the file name of segment seq whose first index is first.
func walSegmentName(seq, first uint64) string { return hexPairName(seq, first, walSegmentExt) }

// walParseSegmentName parses a name made by walSegmentName.
func walParseSegmentName(name string) (seq, first uint64, ok bool) {
	return parseHexPairName(name, walSegmentExt)
}

// walListSegments returns the segments in dir sorted by sequence number, and
// the paths of leftover temporary files.
func walListSegments(dir string) ([]walSegmentInfo, []string, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("wal: list %s: %w", dir, err)
	}
	var segs []walSegmentInfo
	var temps []string
	for _, de := range des {
		name := de.Name()
		if strings.HasSuffix(name, walSegmentExt+walTempExt) {
			temps = append(temps, filepath.Join(dir, name))
			continue
		}
		if seq, first, ok := walParseSegmentName(name); ok && de.Type().IsRegular() {
			segs = append(segs, walSegmentInfo{seq: seq, first: first, path: filepath.Join(dir, name)})
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].seq < segs[j].seq })
	return segs, temps, nil
}

// walExists reports whether dir holds at least one WAL segment.
func walExists(dir string) bool {
	segs, _, err := walListSegments(dir)
	return err == nil && len(segs) > 0
}

// walSyncDir fsyncs a directory so that renames and removals in it are durable.
func walSyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// walPad rounds n up to a multiple of 8.
func walPad(n int) int { return (n + 7) &^ 7 }

// walAllZero reports whether b holds only zero bytes.
func walAllZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// walSegHeaderCRC is the checksum of a segment header.
func walSegHeaderCRC(h []byte) uint32 {
	c := crc32.Update(0, walCRCTable, h[0:12])
	return crc32.Update(c, walCRCTable, h[16:32])
}

// walAppendSegHeader appends a segment header to buf and returns buf and the
// header checksum.
func walAppendSegHeader(buf []byte, seq, first uint64) ([]byte, uint32) {
	start := len(buf)
	buf = append(buf, walMagic...)
	buf = binary.LittleEndian.AppendUint32(buf, walVersion)
	buf = binary.LittleEndian.AppendUint32(buf, 0)
	buf = binary.LittleEndian.AppendUint64(buf, seq)
	buf = binary.LittleEndian.AppendUint64(buf, first)
	c := walSegHeaderCRC(buf[start:])
	binary.LittleEndian.PutUint32(buf[start+12:], c)
	return buf, c
}

// walBeginRecord grows buf by one record with an n-byte payload and returns
// buf and the payload slice to fill. The padding is zeroed; the header is
// written by walFinishRecord.
func walBeginRecord(buf []byte, n int) ([]byte, []byte) {
	start := len(buf)
	total := walRecHeaderSize + walPad(n)
	if cap(buf)-start < total {
		nb := make([]byte, start, 2*cap(buf)+total)
		copy(nb, buf)
		buf = nb
	}
	buf = buf[:start+total]
	clear(buf[start+walRecHeaderSize+n:]) // padding
	return buf, buf[start+walRecHeaderSize : start+walRecHeaderSize+n]
}

// walFinishRecord writes the header of the last record in buf, which has
// type typ and an n-byte payload, chaining from prev; it returns the
// record's chained CRC.
func walFinishRecord(buf []byte, typ byte, n int, prev uint32) uint32 {
	start := len(buf) - walRecHeaderSize - walPad(n)
	h := buf[start : start+walRecHeaderSize]
	binary.LittleEndian.PutUint32(h[0:4], uint32(n))
	h[4], h[5], h[6], h[7] = typ, 0, 0, 0
	c := crc32.Update(prev, walCRCTable, h[0:8])
	c = crc32.Update(c, walCRCTable, buf[start+walRecHeaderSize:])
	binary.LittleEndian.PutUint32(h[8:12], c)
	binary.LittleEndian.PutUint32(h[12:16], crc32.Checksum(h[0:12], walCRCTable))
	return c
}

// walAppendRecord appends a record with the given payload.
func walAppendRecord(buf []byte, typ byte, payload []byte, prev uint32) ([]byte, uint32) {
	buf, p := walBeginRecord(buf, len(payload))
	copy(p, payload)
	return buf, walFinishRecord(buf, typ, len(payload), prev)
}

// walAppendEntry appends an entry record.
func walAppendEntry(buf []byte, e *raftpb.Entry, prev uint32) ([]byte, uint32, error) {
	n := e.Size()
	if uint64(n) > math.MaxUint32-8 {
		return buf, prev, fmt.Errorf("wal: entry %d is too large (%d bytes)", e.Index, n)
	}
	buf, p := walBeginRecord(buf, n)
	if _, err := e.MarshalToSizedBuffer(p); err != nil {
		return buf, prev, fmt.Errorf("wal: marshal entry %d: %w", e.Index, err)
	}
	return buf, walFinishRecord(buf, walTypeEntry, n, prev), nil
}

// walAppendHardState appends a hardstate record.
func walAppendHardState(buf []byte, hs *raftpb.HardState, prev uint32) ([]byte, uint32, error) {
	n := hs.Size()
	buf, p := walBeginRecord(buf, n)
	if _, err := hs.MarshalToSizedBuffer(p); err != nil {
		return buf, prev, fmt.Errorf("wal: marshal hard state: %w", err)
	}
	return buf, walFinishRecord(buf, walTypeHardState, n, prev), nil
}

// walAppendMarker appends a snapshot marker record.
func walAppendMarker(buf []byte, m walMarker, flags uint64, prev uint32) ([]byte, uint32) {
	buf, p := walBeginRecord(buf, 24)
	binary.LittleEndian.PutUint64(p[0:], m.index)
	binary.LittleEndian.PutUint64(p[8:], m.term)
	binary.LittleEndian.PutUint64(p[16:], flags)
	return buf, walFinishRecord(buf, walTypeSnapshot, 24, prev)
}

// walEncodeMetadata encodes a metadata record payload. It is not inlined:
// Go 1.26's s390x back end, inlining it with a package-level WALMetadata as
// the argument (as the WAL tests do), emits a byte-reversed load straight
// from the global's address that its assembler refuses ("illegal
// combination MOVDBR ADDR"), and the test binary does not build. It runs
// once per segment, so the call costs nothing measurable.
//
//go:noinline
func walEncodeMetadata(meta WALMetadata) []byte {
	b := make([]byte, 0, 16+len(meta.Name))
	b = binary.LittleEndian.AppendUint64(b, meta.MemberID)
	b = binary.LittleEndian.AppendUint64(b, meta.ClusterID)
	return append(b, meta.Name...)
}

// walDecodeMetadata decodes a metadata record payload.
func walDecodeMetadata(p []byte) (WALMetadata, bool) {
	if len(p) < 16 {
		return WALMetadata{}, false
	}
	return WALMetadata{
		MemberID:  binary.LittleEndian.Uint64(p[0:]),
		ClusterID: binary.LittleEndian.Uint64(p[8:]),
		Name:      string(p[16:]),
	}, true
}

// walRecStatus is the outcome of decoding one record.
type walRecStatus int

const (
	walRecOK           walRecStatus = iota
	walRecShortHeader               // fewer bytes left than a record header
	walRecBadHeader                 // header checksum, type or reserved bytes wrong
	walRecShortPayload              // sound header, but the record runs past the end
	walRecBadCRC                    // complete record whose checksum or padding is wrong
)

// String describes the status for error messages.
func (s walRecStatus) String() string {
	switch s {
	case walRecOK:
		return "ok"
	case walRecShortHeader:
		return "incomplete record header"
	case walRecBadHeader:
		return "damaged record header"
	case walRecShortPayload:
		return "incomplete record"
	case walRecBadCRC:
		return "record checksum mismatch"
	}
	return "unknown status"
}

// walRecord is one decoded record; payload aliases the segment data.
type walRecord struct {
	typ     byte
	payload []byte
	crc     uint32
	end     int // offset just past the record (also set for walRecBadCRC)
}

// walHeaderSound reports whether h (at least 16 bytes) is an undamaged
// record header.
func walHeaderSound(h []byte) bool {
	if crc32.Checksum(h[0:12], walCRCTable) != binary.LittleEndian.Uint32(h[12:16]) {
		return false
	}
	return h[5]|h[6]|h[7] == 0 && h[4] >= walTypeCRC && h[4] <= walTypeSnapshot
}

// walDecodeRecord decodes the record at data[off:], chaining from prev.
func walDecodeRecord(data []byte, off int, prev uint32) (walRecord, walRecStatus) {
	if len(data)-off < walRecHeaderSize {
		return walRecord{}, walRecShortHeader
	}
	h := data[off : off+walRecHeaderSize]
	if !walHeaderSound(h) {
		return walRecord{}, walRecBadHeader
	}
	n := uint64(binary.LittleEndian.Uint32(h[0:4]))
	size := uint64(walRecHeaderSize) + (n+7)&^7
	if size > uint64(len(data)-off) {
		return walRecord{}, walRecShortPayload
	}
	end := off + int(size)
	padded := data[off+walRecHeaderSize : end]
	c := crc32.Update(prev, walCRCTable, h[0:8])
	c = crc32.Update(c, walCRCTable, padded)
	if c != binary.LittleEndian.Uint32(h[8:12]) || !walAllZero(padded[n:]) {
		return walRecord{end: end}, walRecBadCRC
	}
	return walRecord{typ: h[4], payload: padded[:n], crc: c, end: end}, walRecOK
}

// walSoundHeaderFrom reports whether any 8-byte aligned offset from start on
// holds a sound record header whose record fits in data.
func walSoundHeaderFrom(data []byte, start int) bool {
	for p := start; p+walRecHeaderSize <= len(data); p += 8 {
		h := data[p : p+walRecHeaderSize]
		if walHeaderSound(h) {
			n := uint64(binary.LittleEndian.Uint32(h[0:4]))
			if uint64(walRecHeaderSize)+(n+7)&^7 <= uint64(len(data)-p) {
				return true
			}
		}
	}
	return false
}

// walTornTail reports whether the damage found at off (status st, record
// end end for walRecBadCRC) in a last segment is a torn tail: nothing valid
// follows it.
func walTornTail(data []byte, off int, st walRecStatus, end int) bool {
	if walAllZero(data[off:]) {
		return true
	}
	switch st {
	case walRecShortHeader, walRecShortPayload:
		return true
	case walRecBadHeader:
		return !walSoundHeaderFrom(data, off+8)
	default:
		return !walSoundHeaderFrom(data, end)
	}
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

// OpenWAL opens the log in dir for the member meta, creating dir and an
// empty log if there is no segment yet. snapIndex and snapTerm identify the
// snapshot the caller loaded (0, 0 if none): replay starts there, and the log
// must hold every entry after it. A torn tail of the last segment is cut off
// (with a warning); any other damage, a metadata record of another member, or
// a log that cannot continue from the snapshot is an error naming the
// segment file and byte offset. Further writes append to the last segment.
func OpenWAL(dir string, meta WALMetadata, snapIndex, snapTerm uint64) (*WAL, *WALState, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("wal: create dir: %w", err)
	}
	segs, temps, err := walListSegments(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, tmp := range temps {
		if err := os.Remove(tmp); err != nil {
			return nil, nil, fmt.Errorf("wal: remove leftover temp file: %w", err)
		}
	}
	w := &WAL{dir: dir, metaPayload: walEncodeMetadata(meta), maxFiles: walDefaultMaxFiles}

	if len(segs) == 0 {
		w.log.reset(snapIndex)
		if snapIndex > 0 {
			w.latest = walMarker{snapIndex, snapTerm}
		}
		if err := w.createSegment(0, snapIndex+1, 0); err != nil {
			return nil, nil, err
		}
		if err := walSyncDir(filepath.Dir(dir)); err != nil {
			w.f.Close()
			return nil, nil, fmt.Errorf("wal: %w", err)
		}
		st := &WALState{}
		st.Snapshot.Index, st.Snapshot.Term = snapIndex, snapTerm
		return w, st, nil
	}

	r := &walReplay{meta: &meta, snapIndex: snapIndex, snapTerm: snapTerm, strict: true, keep: true}
	// Segments wholly before the snapshot hold nothing to replay: start at
	// the last one that begins at or before the entry after the snapshot
	// (each segment carries the newest marker and hard state in its
	// preamble, so it can be read on its own).
	from := 0
	for i, seg := range segs {
		if seg.first <= snapIndex+1 {
			from = i
		}
	}
	if err := walReplayDir(segs[from:], r); err != nil {
		return nil, nil, err
	}
	if tm, ok := r.log.termAt(snapIndex); ok && tm != snapTerm {
		return nil, nil, fmt.Errorf("wal: %s: the log has term %d at index %d but the loaded snapshot has term %d: %w",
			dir, tm, snapIndex, snapTerm, walErrCorrupt)
	}
	if r.hs != (raftpb.HardState{}) && r.hs.Commit < snapIndex {
		return nil, nil, fmt.Errorf("wal: %s: saved commit index %d is below the loaded snapshot index %d: %w",
			dir, r.hs.Commit, snapIndex, walErrCorrupt)
	}

	last := segs[len(segs)-1]
	w.segs = segs[:len(segs)-1]
	w.log = r.log
	w.hs = r.hs
	w.latest = r.latest
	w.chain = r.chain
	switch {
	case r.rebuild:
		slog.Warn("wal: rewriting last segment whose header or preamble is torn", "file", last.path, "offset", r.validEnd)
		if err := w.createSegment(last.seq, last.first, r.segStartChain); err != nil {
			return nil, nil, err
		}
	default:
		if r.torn {
			slog.Warn("wal: cutting torn tail", "file", last.path, "offset", r.validEnd)
		}
		f, err := os.OpenFile(last.path, os.O_WRONLY, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("wal: open last segment: %w", err)
		}
		if r.torn {
			if err := f.Truncate(int64(r.validEnd)); err != nil {
				f.Close()
				return nil, nil, fmt.Errorf("wal: cut torn tail of %s at offset %d: %w", last.path, r.validEnd, err)
			}
			walPreallocate(f, walSegmentSize)
			if err := f.Sync(); err != nil {
				f.Close()
				return nil, nil, fmt.Errorf("wal: fsync %s: %w", last.path, err)
			}
		}
		w.f = f
		w.size = int64(r.validEnd)
		w.segs = append(w.segs, last)
	}

	st := &WALState{HardState: r.hs, Entries: r.ents}
	st.Snapshot.Index, st.Snapshot.Term = r.snapSeen.index, r.snapSeen.term
	return w, st, nil
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

// createSegment writes a new segment with its preamble through a temporary
// file, makes it durable, and makes it the open last segment. prevChain is
// the chained CRC the previous segment ended with.
func (w *WAL) createSegment(seq, first uint64, prevChain uint32) error {
	final := filepath.Join(w.dir, walSegmentName(seq, first))
	tmp := final + walTempExt
	if err := os.Remove(tmp); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("wal: remove stale %s: %w", tmp, err)
	}
	buf, hc := walAppendSegHeader(w.buf[:0], seq, first)
	var seed [4]byte
	binary.LittleEndian.PutUint32(seed[:], prevChain)
	buf, c := walAppendRecord(buf, walTypeCRC, seed[:], hc)
	buf, c = walAppendRecord(buf, walTypeMetadata, w.metaPayload, c)
	if w.latest.index > 0 {
		buf, c = walAppendMarker(buf, w.latest, walMarkerCarried, c)
	}
	if w.hs != (raftpb.HardState{}) {
		var err error
		if buf, c, err = walAppendHardState(buf, &w.hs, c); err != nil {
			return err
		}
	}
	w.buf = buf

	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("wal: create segment: %w", err)
	}
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if _, err := f.Write(buf); err != nil {
		return fail(fmt.Errorf("wal: write segment %s: %w", tmp, err))
	}
	walPreallocate(f, walSegmentSize)
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("wal: fsync segment %s: %w", tmp, err))
	}
	if err := os.Rename(tmp, final); err != nil {
		return fail(fmt.Errorf("wal: rename segment: %w", err))
	}
	if err := walSyncDir(w.dir); err != nil {
		f.Close()
		return fmt.Errorf("wal: %w", err)
	}
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			f.Close()
			return fmt.Errorf("wal: close previous segment: %w", err)
		}
	}
	w.f = f
	w.size = int64(len(buf))
	w.chain = c
	w.segs = append(w.segs, walSegmentInfo{seq: seq, first: first, path: final})
	return nil
}

// usable returns the sticky error or an error if the WAL is closed.
func (w *WAL) usable() error {
	if w.err != nil {
		return w.err
	}
	if w.f == nil {
		return walErrClosed
	}
	return nil
}

// write appends buf (whose last record has chained CRC chain) to the last
// segment and fsyncs it. Failures make the WAL unusable.
func (w *WAL) write(buf []byte, chain uint32, sync bool) error {
	n, err := w.f.WriteAt(buf, w.size)
	if err != nil && n > 0 {
		// Best effort: drop the partial batch so a later open sees a clean tail.
		_ = w.f.Truncate(w.size)
	}
	if err == nil && sync {
		err = w.fdatasync()
	}
	if err != nil {
		w.err = fmt.Errorf("wal: append to %s: %w (the log is unusable until reopened)", w.segs[len(w.segs)-1].path, err)
		return w.err
	}
	w.size += int64(n)
	if w.metrics != nil {
		w.metrics.written.Add(uint64(n))
	}
	w.chain = chain
	if sync {
		w.unsynced = false
	}
	return nil
}

// readWholeFile reads path into the heap, for where a file cannot be
// mapped; release does nothing.
func readWholeFile(path string) (data []byte, release func(), err error) {
	data, err = os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("map %s: %w", path, err)
	}
	return data, func() {}, nil
}

// walPrealloc turns preallocation of segments on (tests that edit the
// bytes at a segment's end turn it off).
var walPrealloc = true

// Save appends the hard state (unless it is empty) and the entries as one
// batch with one write, fsynced when it holds entries or a new term or vote.
// Entries must continue the log: the first may replace earlier entries
// (index at most the last index + 1), the rest must be consecutive.
func (w *WAL) Save(hs raftpb.HardState, ents []raftpb.Entry) error {
	if err := w.Append(hs, ents); err != nil {
		return err
	}
	return w.Sync()
}

// Sync makes everything Append wrote durable that needs to be: one
// fdatasync for any number of appends (group commit).
func (w *WAL) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if !w.unsynced {
		return nil
	}
	if err := w.fdatasync(); err != nil {
		w.err = fmt.Errorf("wal: sync %s: %w (the log is unusable until reopened)", w.segs[len(w.segs)-1].path, err)
		return w.err
	}
	w.unsynced = false
	return nil
}

// Append is Save without the fsync: what it writes is durable only once
// Sync returns.
func (w *WAL) Append(hs raftpb.HardState, ents []raftpb.Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	hasHS := hs != (raftpb.HardState{})
	if !hasHS && len(ents) == 0 {
		return nil
	}
	if hasHS && len(ents) == 0 && hs.Term == w.hs.Term && hs.Vote == w.hs.Vote {
		// A hard state that only moves the commit index is not written on
		// its own: raft does not need it durable (it learns the commit index
		// again), so it waits for the next entries, term change or Close.
		// That saves a write per Ready on the write path.
		w.pendingHS = hs
		return nil
	}
	if !hasHS && w.pendingHS != (raftpb.HardState{}) {
		hs, hasHS = w.pendingHS, true
	}
	w.pendingHS = raftpb.HardState{}
	for i := range ents {
		if i == 0 {
			if err := w.log.checkEntry(ents[0].Index); err != nil {
				return fmt.Errorf("wal: save: %w", err)
			}
		} else if ents[i].Index != ents[i-1].Index+1 {
			return fmt.Errorf("wal: save: entry index %d does not follow %d", ents[i].Index, ents[i-1].Index)
		}
	}

	buf, c := w.buf[:0], w.chain
	var err error
	for i := range ents {
		if buf, c, err = walAppendEntry(buf, &ents[i], c); err != nil {
			return err
		}
	}
	if hasHS {
		if buf, c, err = walAppendHardState(buf, &hs, c); err != nil {
			return err
		}
	}
	if cap(buf) <= walBufKeep {
		w.buf = buf
	} else {
		w.buf = nil
	}
	// Entries and a new term or vote must be durable before raft acts on
	// them; a commit index alone need not be (raft learns it again), and it
	// is made durable by the next fsync of this file anyway.
	if err := w.write(buf, c, false); err != nil {
		return err
	}
	if len(ents) > 0 || hs.Term != w.hs.Term || hs.Vote != w.hs.Vote {
		w.unsynced = true
	}
	for i := range ents {
		w.log.addEntry(ents[i].Index, ents[i].Term)
	}
	if hasHS {
		w.hs = hs
	}
	if w.size >= walSegmentSize {
		if err := w.f.Truncate(w.size); err == nil {
			err = w.f.Sync()
		}
		if err != nil {
			w.err = fmt.Errorf("wal: cut preallocated end of %s: %w (the log is unusable until reopened)", w.segs[len(w.segs)-1].path, err)
			return w.err
		}
		if err := w.createSegment(w.segs[len(w.segs)-1].seq+1, w.log.last+1, w.chain); err != nil {
			w.err = fmt.Errorf("%w (the log is unusable until reopened)", err)
			return w.err
		}
		w.unsynced = false // the full segment was fsynced above
	}
	return nil
}

// SaveSnapshot records a marker for the snapshot at (index, term) and
// fsyncs. Call it after the snapshot file is durable. If the log does not
// already hold index with that term, the snapshot replaces the log (as when a
// follower installs a snapshot from the leader) and the next entry must be
// index+1.
func (w *WAL) SaveSnapshot(index, term uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if index == 0 {
		return errors.New("wal: save snapshot marker: index 0")
	}
	m := walMarker{index, term}
	buf, c := walAppendMarker(w.buf[:0], m, 0, w.chain)
	w.buf = buf
	if err := w.write(buf, c, true); err != nil {
		return err
	}
	w.log.addMarker(index, term)
	w.latest = m
	return nil
}

// ReleaseTo allows removing segments that only hold entries up to index
// (the newest durable snapshot): the oldest of them are removed while more
// than w.maxFiles segments exist. With maxFiles 0 nothing is removed.
// The last segment is never removed.
func (w *WAL) ReleaseTo(index uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if w.maxFiles <= 0 {
		return nil
	}
	n := 0
	for n+1 < len(w.segs) && w.segs[n+1].first-1 <= index && len(w.segs)-n > w.maxFiles {
		n++
	}
	if n == 0 {
		return nil
	}
	for i := 0; i < n; i++ {
		if err := os.Remove(w.segs[i].path); err != nil {
			w.segs = w.segs[i:]
			return fmt.Errorf("wal: release segment: %w", err)
		}
	}
	w.segs = append(w.segs[:0], w.segs[n:]...)
	if err := walSyncDir(w.dir); err != nil {
		return fmt.Errorf("wal: release: %w", err)
	}
	return nil
}

// Close closes the log. Everything saved is already durable.
func (w *WAL) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	var err error
	if hs := w.pendingHS; hs != (raftpb.HardState{}) && w.usable() == nil {
		// the latest commit index, so that a restart replays all it can
		buf, c, aerr := walAppendHardState(w.buf[:0], &hs, w.chain)
		if err = aerr; err == nil {
			err = w.write(buf, c, true)
		}
		if err == nil {
			w.hs, w.pendingHS = hs, raftpb.HardState{}
		}
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if err != nil {
		return fmt.Errorf("wal: close: %w", err)
	}
	return nil
}
