// `etcdlite verify`: an offline check of a data dir.

package main

// This file owns `etcdlite verify --data-dir D [--wal-dir W]`: an offline
// check of a data dir. It reads every snapshot file and every log record,
// checks their checksums and the log's chain and order, replays the log
// from the newest sound snapshot as recovery would (decoding every entry
// into a store of its own), and prints what it found: the member, the
// segments and their index ranges, the terms, the hard state, the
// snapshots and the members. It changes nothing and takes no lock. The
// exit status is 0 when everything verifies (a torn tail, which recovery
// cuts without losing an acknowledged write, is reported but is not
// damage) and 1 otherwise.

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.etcd.io/raft/v3/raftpb"

	"etcdlite/kv"
)

// runVerify is `etcdlite verify`; it returns the exit status.
func runVerify(args []string, out, errOut io.Writer) int {
	fs := flag.NewFlagSet("etcdlite verify", flag.ContinueOnError)
	fs.SetOutput(errOut)
	dataDir := fs.String("data-dir", "", "Path to the data dir")
	walDir := fs.String("wal-dir", "", "Path to the wal dir (default <data-dir>/member/wal)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	if fs.NArg() > 0 || *dataDir == "" {
		fmt.Fprintln(errOut, "etcdlite verify: usage: etcdlite verify --data-dir DIR [--wal-dir DIR]")
		return 1
	}
	if _, _, err := checkDataFormat(*dataDir); err != nil {
		fmt.Fprintf(errOut, "etcdlite verify: %v\n", err)
		return 1
	}
	snapDir, logDir := memberDirs(*dataDir, *walDir)
	problems := verifyDataDir(snapDir, logDir, out)
	if len(problems) > 0 {
		fmt.Fprintf(out, "result: DAMAGED (%d problems)\n", len(problems))
		for _, p := range problems {
			fmt.Fprintf(out, "  %s\n", p)
		}
		return 1
	}
	fmt.Fprintln(out, "result: ok")
	return 0
}

// verifyDataDir checks the snapshots in snapDir and the log in logDir,
// printing a report to out, and returns the problems found.
func verifyDataDir(snapDir, logDir string, out io.Writer) []string {
	var problems []string
	problem := func(format string, a ...any) {
		problems = append(problems, fmt.Sprintf(format, a...))
	}

	// snapshots
	type goodSnap struct {
		e    snapEntry
		snap raftpb.Snapshot
	}
	var good []goodSnap // oldest first
	snaps, _, err := NewSnapshotter(snapDir, 0).list()
	switch {
	case errors.Is(err, os.ErrNotExist):
		fmt.Fprintf(out, "snapshots: none (%s does not exist)\n", snapDir)
	case err != nil:
		problem("%v", err)
	default:
		fmt.Fprintf(out, "snapshots: %d in %s\n", len(snaps), snapDir)
		for _, e := range snaps {
			file, err := os.ReadFile(e.path)
			if err != nil {
				problem("snapshot %s: %v", e.path, err)
				continue
			}
			snap, err := snapDecode(file, e)
			if err != nil {
				fmt.Fprintf(out, "  %s: DAMAGED: %v\n", filepath.Base(e.path), err)
				problem("snapshot %s: %v", e.path, err)
				continue
			}
			fmt.Fprintf(out, "  %s: index %d, term %d, %d voters, %d bytes: checksum ok\n",
				filepath.Base(e.path), snap.Metadata.Index, snap.Metadata.Term, len(snap.Metadata.ConfState.Voters), len(file))
			good = append(good, goodSnap{e, snap})
		}
		if broken, _ := filepath.Glob(filepath.Join(snapDir, "*"+snapExt+snapBrokenExt)); len(broken) > 0 {
			fmt.Fprintf(out, "  (%d snapshot files set aside as damaged by an earlier start: %s)\n", len(broken), strings.Join(baseNames(broken), ", "))
		}
	}

	// every log record
	if !walExists(logDir) {
		problem("no write-ahead log segments in %s", logDir)
		return problems
	}
	meta, err := walReadMetadata(logDir)
	if err != nil {
		problem("%v", err)
		return problems
	}
	fmt.Fprintf(out, "member: %x, cluster: %x, name: %q\n", meta.MemberID, meta.ClusterID, meta.Name)
	segs, temps, err := walListSegments(logDir)
	if err != nil {
		problem("%v", err)
		return problems
	}
	fmt.Fprintf(out, "log: %d segments in %s\n", len(segs), logDir)
	for _, t := range temps {
		fmt.Fprintf(out, "  (leftover temporary file %s, removed at the next start)\n", filepath.Base(t))
	}
	r := &walReplay{meta: &meta}
	for i, seg := range segs {
		if i > 0 && seg.seq != segs[i-1].seq+1 {
			problem("%v", walCorrupt(seg.path, 0, "segment sequence gap: expected sequence %d, found %d", segs[i-1].seq+1, seg.seq))
			break
		}
		data, release, err := mapFileReadOnly(seg.path)
		if err != nil {
			problem("%v", err)
			break
		}
		isLast := i == len(segs)-1
		if isLast {
			data = data[:walDataEnd(seg.path, len(data))]
		}
		before := r.log.last
		err = r.segment(seg, data, isLast, i > 0)
		release()
		if err != nil {
			fmt.Fprintf(out, "  %s: DAMAGED: %v\n", filepath.Base(seg.path), err)
			problem("%v", err)
			break
		}
		if i == 0 {
			before = r.walBase
		}
		fmt.Fprintf(out, "  %s: %s\n", filepath.Base(seg.path), indexRange(before, r.log.last))
		if isLast && r.torn {
			fmt.Fprintf(out, "  torn tail at offset %d of %s: a write interrupted by a crash, never acknowledged; the next start cuts it\n", r.validEnd, filepath.Base(seg.path))
		}
	}
	if len(problems) == 0 || r.started {
		terms := "none"
		if n := len(r.log.runs); n > 0 {
			terms = fmt.Sprintf("%d-%d", r.log.runs[0].term, r.log.runs[n-1].term)
		}
		fmt.Fprintf(out, "log entries: %s, terms %s\n", indexRange(r.walBase, r.log.last), terms)
		fmt.Fprintf(out, "hard state: term %d, vote %x, commit %d\n", r.hs.Term, r.hs.Vote, r.hs.Commit)
		var ms []string
		for _, m := range r.markers {
			ms = append(ms, fmt.Sprintf("%d (term %d)", m.index, m.term))
		}
		fmt.Fprintf(out, "snapshot markers: %d %s\n", len(ms), strings.Join(ms, ", "))
	}
	if len(problems) > 0 {
		return problems
	}

	// what recovery would do: the newest sound snapshot the log continues
	// from, then every entry after it
	for i := len(good); i >= 0; i-- {
		var snap raftpb.Snapshot
		if i > 0 {
			snap = good[i-1].snap
		}
		rr := &walReplay{meta: &meta, snapIndex: snap.Metadata.Index, snapTerm: snap.Metadata.Term, strict: true, keep: true}
		from := 0
		for k, seg := range segs {
			if seg.first <= snap.Metadata.Index+1 {
				from = k
			}
		}
		if err := walReplayDir(segs[from:], rr); err != nil {
			if i > 0 {
				fmt.Fprintf(out, "recovery: the log does not continue from snapshot %d (%v); trying an older one\n", snap.Metadata.Index, err)
				continue
			}
			problem("recovery: %v", err)
			return problems
		}
		st := kv.New(clusterPrefix, keysPrefix)
		if i > 0 {
			if err := st.Recover(snap.Data); err != nil {
				problem("snapshot %s: the store does not decode: %v", good[i-1].e.path, err)
				return problems
			}
		}
		if err := verifyApply(st, rr.ents); err != nil {
			problem("%v", err)
			return problems
		}
		last := snap.Metadata.Index
		if n := len(rr.ents); n > 0 {
			last = rr.ents[n-1].Index
		}
		fmt.Fprintf(out, "recovery: from snapshot at index %d, %d entries replayed, last index %d, store index %d\n",
			snap.Metadata.Index, len(rr.ents), last, st.Index())
		members := membersFromStore(st)
		fmt.Fprintf(out, "members: %d\n", len(members))
		for _, m := range members {
			fmt.Fprintf(out, "  %x name=%q peerURLs=%s clientURLs=%s\n", m.ID, m.Name, strings.Join(m.PeerURLs, ","), strings.Join(m.ClientURLs, ","))
		}
		return problems
	}
	return problems
}

// verifyApply applies the log's entries to st as a member would, so that
// every entry is decoded and the members are known at the end. Membership
// changes make the store changes raft.go's applyConfChange makes.
func verifyApply(st *kv.Store, ents []raftpb.Entry) error {
	var req kv.Request
	for _, e := range ents {
		switch e.Type {
		case raftpb.EntryNormal:
			if len(e.Data) == 0 {
				continue
			}
			if err := req.UnmarshalBinary(e.Data); err != nil {
				return fmt.Errorf("entry %d: %w", e.Index, err)
			}
			st.Apply(&req)
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := cc.Unmarshal(e.Data); err != nil {
				return fmt.Errorf("entry %d: decode conf change: %w", e.Index, err)
			}
			switch cc.Type {
			case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode, raftpb.ConfChangeUpdateNode:
				var m member
				if err := json.Unmarshal(cc.Context, &m); err != nil {
					return fmt.Errorf("entry %d: conf change without member: %w", e.Index, err)
				}
				ra := raftAttributes{PeerURLs: m.PeerURLs, IsLearner: cc.Type == raftpb.ConfChangeAddLearnerNode}
				st.Set(memberDir(cc.NodeID)+"/raftAttributes", false, mustJSON(ra), kv.TTLOptions{}, 0)
				if m.Name != "" && cc.Type != raftpb.ConfChangeUpdateNode {
					st.Set(memberDir(cc.NodeID)+"/attributes", false, mustJSON(attributes{Name: m.Name, ClientURLs: m.ClientURLs}), kv.TTLOptions{}, 0)
				}
			case raftpb.ConfChangeRemoveNode:
				st.Delete(memberDir(cc.NodeID), true, true, 0)
			}
		default:
			return fmt.Errorf("entry %d: unexpected entry type %v", e.Index, e.Type)
		}
	}
	return nil
}

// indexRange describes the entries after index base up to last.
func indexRange(base, last uint64) string {
	if last <= base {
		return "no entries"
	}
	return fmt.Sprintf("entries %d-%d", base+1, last)
}

// baseNames returns the last element of each path.
func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}
