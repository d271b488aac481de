// Backups: `etcdlite backup` and GET /v2/backup.

package main

// This file owns backups: `etcdlite backup` (the command line of
// `ETCDCTL_API=2 etcdctl backup`) and GET /v2/backup. Both take a
// consistent copy of a member's data without its data-dir lock, so they run
// while the member serves: the newest snapshot file that verifies, and the
// log after it as far as it reads back whole (a record being written at
// that moment is a torn tail and is left out, as recovery would cut it).
// Snapshot files are only ever renamed into place and log segments only
// appended to, so what is read is a state the member went through; a file
// removed under the reader (a snapshot pruned, a segment released) makes it
// start again. The copy gets a new random member id and cluster id, so that
// it can only start a new cluster (--force-new-cluster) and can never be
// taken for the old member by the old cluster's peers.

import (
	"archive/tar"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// backupAttempts is how often a copy is started again when files change
// under it.
const backupAttempts = 20

// consistentCopy is a member's data as of one moment: its newest usable
// snapshot file and the log after it.
type consistentCopy struct {
	meta     WALMetadata
	snapName string // file name of the snapshot; "" when there is none
	snapFile []byte // the snapshot file's bytes, verified
	snap     raftpb.SnapshotMetadata
	hs       raftpb.HardState
	ents     []raftpb.Entry // after the snapshot
	torn     bool           // the log's end was being written and was left out
}

// memberDirs returns the snapshot and log directories of a data dir;
// walDir overrides the log's when not empty.
func memberDirs(dataDir, walDir string) (snapDir, logDir string) {
	snapDir = filepath.Join(dataDir, "member", "snap")
	logDir = walDir
	if logDir == "" {
		logDir = filepath.Join(dataDir, "member", "wal")
	}
	return snapDir, logDir
}

// takeConsistentCopy reads a consistent copy of the data in snapDir and
// logDir without changing anything there and without the data-dir lock.
func takeConsistentCopy(snapDir, logDir string) (*consistentCopy, error) {
	var lastErr error
	for attempt := 0; attempt < backupAttempts; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 10 * time.Millisecond)
		}
		c, retry, err := tryConsistentCopy(snapDir, logDir)
		if err == nil {
			return c, nil
		}
		if !retry {
			return nil, err
		}
		lastErr = err
	}
	return nil, fmt.Errorf("the data kept changing under the copy (%d attempts): %w", backupAttempts, lastErr)
}

// tryConsistentCopy makes one attempt; retry says whether the failure may
// come from files changing under it.
func tryConsistentCopy(snapDir, logDir string) (c *consistentCopy, retry bool, err error) {
	if !walExists(logDir) {
		return nil, false, fmt.Errorf("no write-ahead log in %s", logDir)
	}
	meta, err := walReadMetadata(logDir)
	if err != nil {
		return nil, true, fmt.Errorf("read write-ahead log: %w", err)
	}
	segs, _, err := walListSegments(logDir)
	if err != nil {
		return nil, true, err
	}
	snaps, _, err := NewSnapshotter(snapDir, 0).list()
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	// newest first; the empty snapshot (none) last
	var lastErr error
	for i := len(snaps); i >= 0; i-- {
		c := &consistentCopy{meta: meta}
		if i > 0 {
			e := snaps[i-1]
			file, err := os.ReadFile(e.path)
			if errors.Is(err, os.ErrNotExist) {
				return nil, true, fmt.Errorf("snapshot %s removed while copying", e.path)
			}
			if err != nil {
				return nil, false, fmt.Errorf("read snapshot: %w", err)
			}
			snap, err := snapDecode(file, e)
			if err != nil {
				slog.Warn("backup: skipping a damaged snapshot", "file", e.path, "err", err)
				continue
			}
			c.snapName, c.snapFile, c.snap = filepath.Base(e.path), file, snap.Metadata
		}
		r := &walReplay{meta: &meta, snapIndex: c.snap.Index, snapTerm: c.snap.Term, strict: true, keep: true}
		from := 0
		for k, seg := range segs {
			if seg.first <= c.snap.Index+1 {
				from = k
			}
		}
		err := walReplayDir(segs[from:], r)
		if err != nil {
			for _, seg := range segs[from:] {
				if _, serr := os.Stat(seg.path); errors.Is(serr, os.ErrNotExist) {
					return nil, true, fmt.Errorf("log segment %s removed while copying: %w", seg.path, err)
				}
			}
			lastErr = err
			continue // an older snapshot may be where the log continues from
		}
		c.hs, c.ents, c.torn = r.hs, r.ents, r.torn
		return c, false, nil
	}
	if lastErr == nil {
		lastErr = errors.New("no snapshot and no log to copy")
	}
	// a snapshot received or taken after the listing may have replaced the
	// log: look again
	return nil, true, fmt.Errorf("no snapshot the log continues from: %w", lastErr)
}

// newBackupIDs returns a random member id and cluster id for a backup.
func newBackupIDs() (member, cluster uint64, err error) {
	var b [16]byte
	for member == 0 || cluster == 0 {
		if _, err := crand.Read(b[:]); err != nil {
			return 0, 0, fmt.Errorf("random ids: %w", err)
		}
		member, cluster = binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])
	}
	return member, cluster, nil
}

// backupFiles are the files of a backup: the snapshot file copied as it is
// (it names no member) and one log segment written for the new identity.
type backupFiles struct {
	meta     WALMetadata
	snapName string
	snapFile []byte
	walName  string
	wal      []byte
	entries  int
	last     uint64 // last index in the log
}

// makeBackup turns a consistent copy into the files of a backup with new
// member and cluster ids.
func makeBackup(c *consistentCopy) (*backupFiles, error) {
	mid, cid, err := newBackupIDs()
	if err != nil {
		return nil, err
	}
	meta := WALMetadata{MemberID: mid, ClusterID: cid, Name: c.meta.Name}
	hs := c.hs
	if hs.Commit < c.snap.Index {
		hs.Commit = c.snap.Index
	}
	seg, err := walEncodeSegment(meta, walMarker{c.snap.Index, c.snap.Term}, hs, c.ents)
	if err != nil {
		return nil, err
	}
	last := c.snap.Index
	if n := len(c.ents); n > 0 {
		last = c.ents[n-1].Index
	}
	return &backupFiles{meta: meta, snapName: c.snapName, snapFile: c.snapFile,
		walName: walSegmentName(0, c.snap.Index+1), wal: seg, entries: len(c.ents), last: last}, nil
}

// walEncodeSegment encodes a whole log in one segment, as a new log
// starting after the snapshot at marker (index 0: none) would hold it: its
// preamble, the entries, then the hard state.
func walEncodeSegment(meta WALMetadata, marker walMarker, hs raftpb.HardState, ents []raftpb.Entry) ([]byte, error) {
	buf, c := walAppendSegHeader(nil, 0, marker.index+1)
	var seed [4]byte
	buf, c = walAppendRecord(buf, walTypeCRC, seed[:], c)
	buf, c = walAppendRecord(buf, walTypeMetadata, walEncodeMetadata(meta), c)
	if marker.index > 0 {
		buf, c = walAppendMarker(buf, marker, walMarkerCarried, c)
	}
	var err error
	for i := range ents {
		if buf, c, err = walAppendEntry(buf, &ents[i], c); err != nil {
			return nil, err
		}
	}
	if hs != (raftpb.HardState{}) {
		if buf, _, err = walAppendHardState(buf, &hs, c); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// writeDurably creates path with data and fsyncs it and its directory.
func writeDurably(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return walSyncDir(filepath.Dir(path))
}

// emptyOrMissing fails unless dir does not exist or is empty.
func emptyOrMissing(dir string) error {
	des, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(des) > 0 {
		return fmt.Errorf("expected %q to be empty, it holds %q", dir, des[0].Name())
	}
	return nil
}

// backupFormatFile is the content of a backup's member/version.
func backupFormatFile() []byte { return []byte(strconv.Itoa(dataFormat) + "\n") }

// writeBackup writes the files of a backup into snapDir and logDir, which
// must be empty or missing.
func writeBackup(b *backupFiles, snapDir, logDir string) error {
	for _, d := range []string{snapDir, logDir} {
		if err := emptyOrMissing(d); err != nil {
			return fmt.Errorf("backup dir: %w", err)
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create backup dir: %w", err)
		}
	}
	if b.snapName != "" {
		if err := writeDurably(filepath.Join(snapDir, b.snapName), b.snapFile); err != nil {
			return fmt.Errorf("write snapshot: %w", err)
		}
	}
	if err := writeDurably(filepath.Join(logDir, b.walName), b.wal); err != nil {
		return fmt.Errorf("write log: %w", err)
	}
	// the snapshot may be in this etcdlite's format: say so, as a start would
	if err := writeDurably(filepath.Join(filepath.Dir(snapDir), dataFormatFile), backupFormatFile()); err != nil {
		return fmt.Errorf("write data dir format: %w", err)
	}
	for _, d := range []string{filepath.Dir(filepath.Dir(snapDir)), filepath.Dir(logDir)} {
		if err := walSyncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// runBackup is `etcdlite backup`: it takes the flags of `etcdctl backup`,
// reports to out and returns the exit status.
func runBackup(args []string, out, errOut io.Writer) int {
	fs := flag.NewFlagSet("etcdlite backup", flag.ContinueOnError)
	fs.SetOutput(errOut)
	dataDir := fs.String("data-dir", "", "Path to the etcd data dir")
	walDir := fs.String("wal-dir", "", "Path to the etcd wal dir")
	backupDir := fs.String("backup-dir", "", "Path to the backup dir")
	backupWALDir := fs.String("backup-wal-dir", "", "Path to the backup wal dir")
	withV3 := fs.Bool("with-v3", false, "Backup v3 backend data (etcdlite has none: accepted and ignored)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(errOut, "etcdlite backup: "+format+"\n", a...)
		return 1
	}
	switch {
	case fs.NArg() > 0:
		return fail("unexpected argument %q", fs.Arg(0))
	case *dataDir == "":
		return fail("--data-dir is required")
	case *backupDir == "":
		return fail("--backup-dir is required")
	}
	if *withV3 {
		fmt.Fprintln(errOut, "etcdlite backup: --with-v3: etcdlite keeps no v3 data; ignored")
	}
	if _, _, err := checkDataFormat(*dataDir); err != nil {
		return fail("%v", err)
	}
	srcSnap, srcWAL := memberDirs(*dataDir, *walDir)
	c, err := takeConsistentCopy(srcSnap, srcWAL)
	if err != nil {
		return fail("%v", err)
	}
	b, err := makeBackup(c)
	if err != nil {
		return fail("%v", err)
	}
	dstSnap, dstWAL := memberDirs(*backupDir, *backupWALDir)
	if err := writeBackup(b, dstSnap, dstWAL); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(out, "backup of member %x (cluster %x) written to %s: snapshot at index %d, %d log entries after it (last index %d); new member id %x, cluster id %x: start it with --force-new-cluster\n",
		c.meta.MemberID, c.meta.ClusterID, *backupDir, c.snap.Index, b.entries, b.last, b.meta.MemberID, b.meta.ClusterID)
	if c.torn {
		fmt.Fprintln(out, "the log's last record was incomplete (being written, or torn by a crash) and is not in the backup")
	}
	return 0
}

// backupAllowed is the single check GET /v2/backup makes before it copies
// anything: with authentication enabled only a holder of the root role may
// take a backup (it holds every key, user and password hash); with it off,
// every client of the client URLs may, as every client may read every key.
func (s *server) backupAllowed(r *http.Request) error {
	if _, ok := s.authorized(r, (*authState).allowRoot); !ok {
		return errors.New("Insufficient credentials")
	}
	return nil
}

// handleBackup serves GET /v2/backup: the member's data as a tar of
// member/snap and member/wal, with new member and cluster ids, to be
// unpacked into an empty data dir and started with --force-new-cluster.
// When the cluster has a leader the copy holds every write acknowledged
// before the request (a quorum read first); without one, what this member
// had applied.
func (s *server) handleBackup(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, "GET") {
		return
	}
	if err := s.backupAllowed(r); err != nil {
		slog.Warn("backup refused", "remote", r.RemoteAddr, "err", err)
		writeMembersError(w, http.StatusUnauthorized, err.Error())
		return
	}
	if s.leader.Load() != 0 {
		if err := s.linearizableRead(r.Context()); err != nil {
			writeMembersError(w, http.StatusServiceUnavailable, "backup: "+err.Error())
			return
		}
	}
	// Everything applied so far is in the log once the raft loop has
	// finished the Ready it is in.
	if err := s.raftLoopBarrier(r.Context()); err != nil {
		writeMembersError(w, http.StatusServiceUnavailable, "backup: "+err.Error())
		return
	}
	snapDir, logDir := memberDirs(s.cfg.DataDir, s.cfg.WALDir)
	c, err := takeConsistentCopy(snapDir, logDir)
	if err != nil {
		slog.Error("backup", "err", err)
		writeMembersError(w, http.StatusInternalServerError, "backup: "+err.Error())
		return
	}
	b, err := makeBackup(c)
	if err != nil {
		slog.Error("backup", "err", err)
		writeMembersError(w, http.StatusInternalServerError, "backup: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Disposition", `attachment; filename="etcdlite-backup.tar"`)
	if err := writeBackupTar(w, b, time.Now().Truncate(time.Second)); err != nil {
		slog.Warn("backup: sending the tar", "remote", r.RemoteAddr, "err", err)
		return
	}
	slog.Info("backup sent", "remote", r.RemoteAddr, "snapshot-index", c.snap.Index, "entries", b.entries, "new-member", idString(b.meta.MemberID))
}

// writeBackupTar writes a backup's files as a tar of a data dir.
func writeBackupTar(w io.Writer, b *backupFiles, now time.Time) error {
	tw := tar.NewWriter(w)
	for _, d := range []string{"member/", "member/snap/", "member/wal/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o700, ModTime: now}); err != nil {
			return err
		}
	}
	file := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: now}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if b.snapName != "" {
		if err := file("member/snap/"+b.snapName, b.snapFile); err != nil {
			return err
		}
	}
	if err := file("member/wal/"+b.walName, b.wal); err != nil {
		return err
	}
	if err := file("member/"+dataFormatFile, backupFormatFile()); err != nil {
		return err
	}
	return tw.Close()
}

// raftLoopBarrier returns once the raft loop has come round to its inbox:
// the Ready it was handling, if any, is then persisted.
func (s *server) raftLoopBarrier(ctx context.Context) error {
	done := make(chan struct{})
	s.inbox.report(func(*raft.RawNode) { close(done) })
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stopc:
		return errStopped
	}
}
