// The write-ahead log: the WAL type, opening (with replay in walreplay.go),
// batched writes and their fsync, segment files, snapshot markers and the
// release of old segments. Record framing is in walrecord.go; the on-disk
// format is below and in FORMAT.md.

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
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// walDefaultSegmentSize is the size at which the log moves on to a new
// segment (WAL.segmentSize) unless its opener chose another (tests choose
// small ones). The check happens after each Save, so a segment can end up
// somewhat larger.
const walDefaultSegmentSize int64 = 64 << 20

// walZeroAhead is how far past the end of what it writes the log writes
// zeros into the last segment's preallocated space, so that the next batches
// overwrite blocks already written. A preallocated block that was never
// written is only reserved: the first write into it changes the file's
// extent map, and that change makes the batch's fdatasync commit the file
// system's journal. Overwritten blocks need no journal commit, only the data
// and a cache flush. On the project's machine (ext4 on a virtual disk),
// BenchmarkWALFdatasyncAhead (3 kB writes, each followed by fdatasync, the
// size of a batch from 64 clients) took 148-159 µs per write into unwritten
// space and 128-135 µs into zeroed space; a one-off program measuring
// getrusage gave 88-95 µs and 63-66 µs of the process's CPU per write, and
// the journal's kernel thread had less to do as well. With the zeros written
// 256 kB at a time the journal is committed once per 256 kB of log instead
// of once per batch. The zeros are written before the batch that needs them
// and are made durable by its fdatasync.
const walZeroAhead = 256 << 10

// walOptions are the choices of a log's opener; the zero value is what a
// member runs with.
type walOptions struct {
	segmentSize int64 // a segment's size (0: walDefaultSegmentSize)
	noPrealloc  bool  // segments are not preallocated (tests that edit the bytes at a segment's end)
}

// walDefaultMaxFiles is WAL.maxFiles of a log just opened (etcd's
// --max-wals default); the server sets its own from its config.
const walDefaultMaxFiles = 5

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
	segmentSize int64            // a segment is preallocated to this size and the log moves on once it is reached
	noPrealloc  bool             // segments are not preallocated (walOptions)
	zeroedTo    int64            // the last segment holds written bytes (records or zeros) up to here
	zeros       []byte           // a buffer of zeros for zeroAhead, made on first use
}

// walSegmentInfo describes one segment file.
type walSegmentInfo struct {
	seq   uint64
	first uint64
	path  string
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

// OpenWAL opens the log in dir for the member meta, creating dir and an
// empty log if there is no segment yet. snapIndex and snapTerm identify the
// snapshot the caller loaded (0, 0 if none): replay starts there, and the log
// must hold every entry after it. A torn tail of the last segment is cut off
// (with a warning); any other damage, a metadata record of another member, or
// a log that cannot continue from the snapshot is an error naming the
// segment file and byte offset. Further writes append to the last segment.
// opts are the opener's choices (the zero value: a member's).
func OpenWAL(dir string, meta WALMetadata, snapIndex, snapTerm uint64, opts walOptions) (*WAL, *WALState, error) {
	segmentSize := opts.segmentSize
	if segmentSize <= 0 {
		segmentSize = walDefaultSegmentSize
	}
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
	w := &WAL{dir: dir, metaPayload: walEncodeMetadata(meta), maxFiles: walDefaultMaxFiles, segmentSize: segmentSize, noPrealloc: opts.noPrealloc}

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
			w.preallocate(f)
			if err := f.Sync(); err != nil {
				f.Close()
				return nil, nil, fmt.Errorf("wal: fsync %s: %w", last.path, err)
			}
		}
		w.f = f
		w.size = int64(r.validEnd)
		w.zeroedTo = w.size // what lies beyond is not known to be written
		w.segs = append(w.segs, last)
	}

	st := &WALState{HardState: r.hs, Entries: r.ents}
	st.Snapshot.Index, st.Snapshot.Term = r.snapSeen.index, r.snapSeen.term
	return w, st, nil
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
	w.preallocate(f)
	zeroedTo, err := w.zeroAhead(f, int64(len(buf)), int64(len(buf)))
	if err != nil {
		return fail(fmt.Errorf("wal: write segment %s: %w", tmp, err))
	}
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
	w.zeroedTo = zeroedTo
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
	end := w.size + int64(len(buf))
	zeroedTo, err := w.zeroAhead(w.f, end, w.zeroedTo)
	n := 0
	if err == nil {
		n, err = w.f.WriteAt(buf, w.size)
	}
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
	w.zeroedTo = max(zeroedTo, w.size)
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

// preallocate reserves a whole segment for f unless the opener chose not to.
func (w *WAL) preallocate(f *os.File) {
	if !w.noPrealloc {
		walPreallocate(f, w.segmentSize)
	}
}

// zeroAhead writes zeros into f past end, the end of the data about to be
// written (or just written, for a new segment's preamble), when zeroedTo
// (how far f is known to be written) does not pass end: up to walZeroAhead
// bytes further, to a 4 kB boundary, never past the segment size (see
// walZeroAhead). It returns how far f is then written. A log whose segments
// are not preallocated writes no zeros.
func (w *WAL) zeroAhead(f *os.File, end, zeroedTo int64) (int64, error) {
	if w.noPrealloc || end < zeroedTo || end >= w.segmentSize {
		return zeroedTo, nil
	}
	to := min((end+walZeroAhead+4095)&^4095, w.segmentSize)
	if w.zeros == nil {
		w.zeros = make([]byte, 64<<10)
	}
	for off := end; off < to; {
		n, err := f.WriteAt(w.zeros[:min(int64(len(w.zeros)), to-off)], off)
		if err != nil {
			return zeroedTo, fmt.Errorf("zeros ahead of the log at offset %d: %w", off, err)
		}
		off += int64(n)
	}
	return to, nil
}

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
	if w.size >= w.segmentSize {
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

// fdatasync is walFdatasync on the open segment, timed for
// etcd_disk_wal_fsync_duration_seconds.
func (w *WAL) fdatasync() error {
	start := time.Now()
	err := walFdatasync(w.f)
	if w.metrics != nil {
		w.metrics.fsync.observe(time.Since(start))
	}
	return err
}
