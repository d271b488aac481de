// Snapshot files in <data-dir>/member/snap/.

package main

// This file stores raft snapshots in <data-dir>/member/snap/ as files named
// "%016x-%016x.snap" (term, index). Each file holds a gob-encoded snapFile
// header followed by the snapshot's data; the header's CRC-32C covers every
// other header field and the data.

import (
	"bufio"
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
	snapVersion    = 2
	snapExt        = ".snap"
	snapBrokenExt  = ".broken"
	snapTempSuffix = ".tmp"
)

// Snapshotter stores raft snapshots as checksummed files in one directory.
type Snapshotter struct {
	mu  sync.Mutex
	dir string
	max int
}

// snapFile is a snapshot file: a gob-encoded header, then DataLen bytes
// of the caller's opaque state written as they are (one huge gob message
// would make the decoder copy it over and over as it grows its buffer).
type snapFile struct {
	Magic     string
	Version   uint32
	Index     uint64
	Term      uint64
	ConfState []byte // raftpb.ConfState.Marshal
	DataLen   uint64
	CRC       uint32 // CRC-32C of all the fields above and of the data
	data      []byte // the caller's opaque state, after the header
}

// snapChecksum computes the checksum of every field of f but CRC.
func snapChecksum(f *snapFile) uint32 {
	h := crc32.New(walCRCTable)
	var b [8]byte
	putBytes := func(h hash.Hash32, p []byte) {
		binary.LittleEndian.PutUint64(b[:], uint64(len(p)))
		h.Write(b[:])
		h.Write(p)
	}
	putBytes(h, []byte(f.Magic))
	binary.LittleEndian.PutUint64(b[:], uint64(f.Version))
	h.Write(b[:])
	binary.LittleEndian.PutUint64(b[:], f.Index)
	h.Write(b[:])
	binary.LittleEndian.PutUint64(b[:], f.Term)
	h.Write(b[:])
	putBytes(h, f.ConfState)
	putBytes(h, f.data)
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

// Save writes snap durably as a new file (temporary file, fsync, rename,
// directory fsync) and then removes the oldest files beyond the maximum.
func (s *Snapshotter) Save(snap raftpb.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	md := &snap.Metadata
	if md.Index == 0 {
		return errors.New("snapshot: save: snapshot index is 0")
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("snapshot: create dir: %w", err)
	}
	cs, err := md.ConfState.Marshal()
	if err != nil {
		return fmt.Errorf("snapshot: marshal conf state: %w", err)
	}
	sf := snapFile{Magic: snapMagic, Version: snapVersion, Index: md.Index, Term: md.Term, ConfState: cs,
		DataLen: uint64(len(snap.Data)), data: snap.Data}
	sf.CRC = snapChecksum(&sf)

	name := snapFileName(md.Term, md.Index)
	f, err := os.CreateTemp(s.dir, name+".*"+snapTempSuffix)
	if err != nil {
		return fmt.Errorf("snapshot: create temp file: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := gob.NewEncoder(bw).Encode(&sf); err != nil {
		return fail(fmt.Errorf("snapshot: encode %s: %w", name, err))
	}
	if _, err := bw.Write(sf.data); err != nil {
		return fail(fmt.Errorf("snapshot: write %s: %w", tmp, err))
	}
	if err := bw.Flush(); err != nil {
		return fail(fmt.Errorf("snapshot: write %s: %w", tmp, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("snapshot: fsync %s: %w", tmp, err))
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("snapshot: close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("snapshot: rename: %w", err)
	}
	if err := walSyncDir(s.dir); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return s.prune()
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
	if sf.Version != snapVersion {
		return raftpb.Snapshot{}, fmt.Errorf("unsupported snapshot version %d", sf.Version)
	}
	if sf.DataLen != uint64(in.Len()) {
		return raftpb.Snapshot{}, fmt.Errorf("header says %d bytes of data, the file has %d after it", sf.DataLen, in.Len())
	}
	sf.data = file[len(file)-in.Len():]
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
