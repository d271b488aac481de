// Snapshot files in <data-dir>/member/snap/.

package main

// This file stores raft snapshots in <data-dir>/member/snap/ as files named
// "%016x-%016x.snap" (term, index). Each file holds a gob-encoded snapFile
// header followed by the snapshot's data, then the data's length and a
// CRC-32C over the header's fields, the data and that length (version 3,
// written as the data is encoded, so the data is never held whole in
// memory). Version 2 files, whose header carries the length and the CRC
// before the data, are still read.

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"go.etcd.io/raft/v3/raftpb"
)

// ErrNoSnapshot is returned by Snapshotter.Load when there is no usable snapshot.
var ErrNoSnapshot = errors.New("no usable snapshot")

const (
	snapMagic      = "etcdlite-snapshot"
	snapVersion    = 3 // written: the length and the CRC follow the data
	snapVersionV2  = 2 // read: the length and the CRC in the header
	snapExt        = ".snap"
	snapBrokenExt  = ".broken"
	snapTempSuffix = ".tmp"
)

// Snapshotter stores raft snapshots as checksummed files in one directory.
type Snapshotter struct {
	mu      sync.Mutex
	dir     string
	max     int
	writing map[string]bool // temporary files being written now (not leftovers)
}

// snapFile is a snapshot file: a gob-encoded header, then the caller's
// opaque state written as it is (one huge gob message would make the
// decoder copy it over and over as it grows its buffer), then, in version
// 3, the trailer (snapTrailerLen bytes: the data's length, uint64 LE, and
// the CRC, uint32 LE).
type snapFile struct {
	Magic     string
	Version   uint32
	Index     uint64
	Term      uint64
	ConfState []byte // raftpb.ConfState.Marshal
	DataLen   uint64 // version 2 only; version 3 has it in the trailer
	CRC       uint32 // version 2 only: CRC-32C of all the fields above and of the data
	data      []byte // the caller's opaque state, after the header
}

// snapTrailerLen is the size of a version 3 file's trailer.
const snapTrailerLen = 12

// snapHashHeader feeds h the header fields every version's CRC begins with.
func snapHashHeader(h hash.Hash32, f *snapFile) {
	var b [8]byte
	putBytes := func(p []byte) {
		binary.LittleEndian.PutUint64(b[:], uint64(len(p)))
		h.Write(b[:])
		h.Write(p)
	}
	putBytes([]byte(f.Magic))
	binary.LittleEndian.PutUint64(b[:], uint64(f.Version))
	h.Write(b[:])
	binary.LittleEndian.PutUint64(b[:], f.Index)
	h.Write(b[:])
	binary.LittleEndian.PutUint64(b[:], f.Term)
	h.Write(b[:])
	putBytes(f.ConfState)
}

// snapChecksum computes f's checksum as its version defines it: the header
// fields, then the data's length and the data (version 2), or the data and
// then its length (version 3, which learns the length only at the end).
func snapChecksum(f *snapFile) uint32 {
	h := crc32.New(walCRCTable)
	snapHashHeader(h, f)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(len(f.data)))
	if f.Version == snapVersionV2 {
		h.Write(b[:])
		h.Write(f.data)
	} else {
		h.Write(f.data)
		h.Write(b[:])
	}
	return h.Sum32()
}

// snapFileName is the file name of the snapshot at (term, index).
func snapFileName(term, index uint64) string { return hexPairName(term, index, snapExt) }

// snapParseName parses a name made by snapFileName.
func snapParseName(name string) (term, index uint64, ok bool) { return parseHexPairName(name, snapExt) }

// snapEntry is a snapshot file found in the directory.
type snapEntry struct {
	term, index uint64
	path        string
}

// NewSnapshotter returns a Snapshotter for dir keeping at most max snapshot
// files (--max-snapshots); max 0 keeps all. The directory is created by Save.
func NewSnapshotter(dir string, max int) *Snapshotter {
	return &Snapshotter{dir: dir, max: max}
}

// list returns the snapshot files oldest first (by index, then term) and the
// leftover temporary files.
func (s *Snapshotter) list() ([]snapEntry, []string, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot: list %s: %w", s.dir, err)
	}
	var snaps []snapEntry
	var temps []string
	for _, de := range des {
		name := de.Name()
		if strings.HasSuffix(name, snapTempSuffix) {
			temps = append(temps, filepath.Join(s.dir, name))
			continue
		}
		if term, index, ok := snapParseName(name); ok && de.Type().IsRegular() {
			snaps = append(snaps, snapEntry{term: term, index: index, path: filepath.Join(s.dir, name)})
		}
	}
	sort.Slice(snaps, func(i, j int) bool {
		if snaps[i].index != snaps[j].index {
			return snaps[i].index < snaps[j].index
		}
		return snaps[i].term < snaps[j].term
	})
	return snaps, temps, nil
}

// Save writes snap durably as a new file (see Create and snapWriter.Commit).
func (s *Snapshotter) Save(snap raftpb.Snapshot) error {
	w, err := s.Create(snap.Metadata)
	if err != nil {
		return err
	}
	if _, err := w.Write(snap.Data); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

// snapWriter is a snapshot file being written: Create wrote its header to a
// temporary file, Write appends data (checksummed as it goes), Commit ends
// it and makes it durable under its name, Abort removes it. The data is
// never held whole in memory, so a store can be encoded straight into it.
type snapWriter struct {
	s    *Snapshotter
	f    *os.File
	tmp  string // the temporary file's path
	name string // the file's name once committed
	crc  hash.Hash32
	n    uint64 // data bytes written
	err  error  // the first write error, sticky
}

// Create starts a snapshot file for md in a temporary file and writes its
// header; the caller streams the data into the writer it returns.
func (s *Snapshotter) Create(md raftpb.SnapshotMetadata) (*snapWriter, error) {
	if md.Index == 0 {
		return nil, errors.New("snapshot: save: snapshot index is 0")
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("snapshot: create dir: %w", err)
	}
	cs, err := md.ConfState.Marshal()
	if err != nil {
		return nil, fmt.Errorf("snapshot: marshal conf state: %w", err)
	}
	sf := snapFile{Magic: snapMagic, Version: snapVersion, Index: md.Index, Term: md.Term, ConfState: cs}
	var header bytes.Buffer
	name := snapFileName(md.Term, md.Index)
	if err := gob.NewEncoder(&header).Encode(&sf); err != nil {
		return nil, fmt.Errorf("snapshot: encode %s: %w", name, err)
	}
	s.mu.Lock()
	f, err := os.CreateTemp(s.dir, name+".*"+snapTempSuffix)
	if err == nil {
		if s.writing == nil {
			s.writing = make(map[string]bool)
		}
		s.writing[f.Name()] = true
	}
	s.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("snapshot: create temp file: %w", err)
	}
	w := &snapWriter{s: s, f: f, tmp: f.Name(), name: name, crc: crc32.New(walCRCTable)}
	snapHashHeader(w.crc, &sf)
	if _, err := f.Write(header.Bytes()); err != nil {
		w.Abort()
		return nil, fmt.Errorf("snapshot: write %s: %w", w.tmp, err)
	}
	return w, nil
}

// Write appends data to the file.
func (w *snapWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.f.Write(p)
	w.crc.Write(p[:n])
	w.n += uint64(n)
	if err != nil {
		w.err = fmt.Errorf("snapshot: write %s: %w", w.tmp, err)
	}
	return n, w.err
}

// Commit writes the trailer, fsyncs the file, renames it into place, fsyncs
// the directory and removes the oldest files beyond the maximum. On an error
// the temporary file is removed.
func (w *snapWriter) Commit() error {
	var trailer [snapTrailerLen]byte
	binary.LittleEndian.PutUint64(trailer[:8], w.n)
	w.crc.Write(trailer[:8])
	binary.LittleEndian.PutUint32(trailer[8:], w.crc.Sum32())
	if w.err == nil {
		if _, err := w.f.Write(trailer[:]); err != nil {
			w.err = fmt.Errorf("snapshot: write %s: %w", w.tmp, err)
		}
	}
	if w.err != nil {
		err := w.err
		w.Abort()
		return err
	}
	if err := w.f.Sync(); err != nil {
		w.Abort()
		return fmt.Errorf("snapshot: fsync %s: %w", w.tmp, err)
	}
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.writing, w.tmp)
	if err := w.f.Close(); err != nil {
		os.Remove(w.tmp)
		return fmt.Errorf("snapshot: close %s: %w", w.tmp, err)
	}
	if err := os.Rename(w.tmp, filepath.Join(s.dir, w.name)); err != nil {
		os.Remove(w.tmp)
		return fmt.Errorf("snapshot: rename: %w", err)
	}
	if err := walSyncDir(s.dir); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return s.prune()
}

// Abort closes and removes the unfinished file.
func (w *snapWriter) Abort() {
	w.s.mu.Lock()
	delete(w.s.writing, w.tmp)
	w.s.mu.Unlock()
	w.f.Close()
	if err := os.Remove(w.tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		slog.Warn("snapshot: remove unfinished file", "file", w.tmp, "err", err)
	}
}

// prune removes the oldest snapshot files beyond s.max.
func (s *Snapshotter) prune() error {
	if s.max <= 0 {
		return nil
	}
	snaps, _, err := s.list()
	if err != nil {
		return err
	}
	if len(snaps) <= s.max {
		return nil
	}
	for _, e := range snaps[:len(snaps)-s.max] {
		if err := os.Remove(e.path); err != nil {
			return fmt.Errorf("snapshot: remove old snapshot: %w", err)
		}
	}
	if err := walSyncDir(s.dir); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// Load returns the newest snapshot whose file verifies and for which
// usable(index, term) is true (nil usable accepts all). Files that fail to
// verify are logged and renamed to *.broken. Files usable rejects are left
// alone. It returns ErrNoSnapshot if no snapshot qualifies.
//
// The snapshot's data is the file mapped into memory, not a copy: it must
// not be used after release is called (release is never nil).
func (s *Snapshotter) Load(usable func(index, term uint64) bool) (snap raftpb.Snapshot, release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	none := func() {}
	snaps, temps, err := s.list()
	if errors.Is(err, os.ErrNotExist) {
		return raftpb.Snapshot{}, none, ErrNoSnapshot
	}
	if err != nil {
		return raftpb.Snapshot{}, none, err
	}
	for _, tmp := range temps {
		if s.writing[tmp] {
			continue
		}
		if err := os.Remove(tmp); err != nil {
			return raftpb.Snapshot{}, none, fmt.Errorf("snapshot: remove leftover temp file: %w", err)
		}
	}
	for i := len(snaps) - 1; i >= 0; i-- {
		e := snaps[i]
		if usable != nil && !usable(e.index, e.term) {
			continue
		}
		data, release, err := mapFileReadOnly(e.path)
		if err != nil {
			return raftpb.Snapshot{}, none, fmt.Errorf("snapshot: %w", err)
		}
		snap, err := snapDecode(data, e)
		if err == nil {
			return snap, release, nil
		}
		release()
		slog.Warn("snapshot: damaged snapshot file", "file", e.path, "err", err)
		if rerr := os.Rename(e.path, e.path+snapBrokenExt); rerr != nil {
			return raftpb.Snapshot{}, none, fmt.Errorf("snapshot: set aside damaged file: %w", rerr)
		}
	}
	return raftpb.Snapshot{}, none, ErrNoSnapshot
}

// snapDecode verifies the content of one snapshot file and returns the
// snapshot, whose data points into file.
func snapDecode(file []byte, e snapEntry) (raftpb.Snapshot, error) {
	in := bytes.NewReader(file)
	var sf snapFile
	// in is an io.ByteReader, so gob reads exactly the header, no further
	if err := gob.NewDecoder(in).Decode(&sf); err != nil {
		return raftpb.Snapshot{}, fmt.Errorf("decode: %w", err)
	}
	if sf.Magic != snapMagic {
		return raftpb.Snapshot{}, errors.New("not a snapshot file (bad magic)")
	}
	switch sf.Version {
	case snapVersionV2:
		if sf.DataLen != uint64(in.Len()) {
			return raftpb.Snapshot{}, fmt.Errorf("header says %d bytes of data, the file has %d after it", sf.DataLen, in.Len())
		}
		sf.data = file[len(file)-in.Len():]
	case snapVersion:
		if in.Len() < snapTrailerLen {
			return raftpb.Snapshot{}, fmt.Errorf("the file ends %d bytes after its header, before its trailer", in.Len())
		}
		trailer := file[len(file)-snapTrailerLen:]
		sf.DataLen, sf.CRC = binary.LittleEndian.Uint64(trailer), binary.LittleEndian.Uint32(trailer[8:])
		if have := uint64(in.Len() - snapTrailerLen); sf.DataLen != have {
			return raftpb.Snapshot{}, fmt.Errorf("trailer says %d bytes of data, the file has %d", sf.DataLen, have)
		}
		sf.data = file[len(file)-in.Len() : len(file)-snapTrailerLen]
	default:
		return raftpb.Snapshot{}, fmt.Errorf("unsupported snapshot version %d", sf.Version)
	}
	switch {
	case sf.CRC != snapChecksum(&sf):
		return raftpb.Snapshot{}, errors.New("checksum mismatch")
	case sf.Index != e.index || sf.Term != e.term:
		return raftpb.Snapshot{}, fmt.Errorf("file holds index %d term %d, name says index %d term %d", sf.Index, sf.Term, e.index, e.term)
	}
	var snap raftpb.Snapshot
	if err := snap.Metadata.ConfState.Unmarshal(sf.ConfState); err != nil {
		return raftpb.Snapshot{}, fmt.Errorf("decode conf state: %w", err)
	}
	snap.Metadata.Index, snap.Metadata.Term, snap.Data = sf.Index, sf.Term, sf.data
	return snap, nil
}
