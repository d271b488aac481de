// --force-new-cluster: restarting a member as its cluster's only one.

package main

// This file owns --force-new-cluster: restarting a recovered member as the
// only member of its cluster (disaster recovery after losing a majority,
// and restoring a backup). As etcd does, the member keeps its data and its
// member id; membership changes removing every other member (and adding
// itself, when the log does not know it, as after a backup) are appended to
// its log and committed at once, so they are applied like any other entry
// and reach the store, raft's configuration and the transport in log order.

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"

	"go.etcd.io/raft/v3/raftpb"
)

// logMemberIDs returns the ids of the members a snapshot's configuration
// and the membership changes in ents after it leave, sorted.
func logMemberIDs(cs raftpb.ConfState, ents []raftpb.Entry) ([]uint64, error) {
	set := map[uint64]bool{}
	for _, ids := range [][]uint64{cs.Voters, cs.Learners, cs.VotersOutgoing, cs.LearnersNext} {
		for _, id := range ids {
			set[id] = true
		}
	}
	for _, e := range ents {
		if e.Type != raftpb.EntryConfChange {
			continue
		}
		var cc raftpb.ConfChange
		if err := cc.Unmarshal(e.Data); err != nil {
			return nil, fmt.Errorf("entry %d: decode conf change: %w", e.Index, err)
		}
		switch cc.Type {
		case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
			set[cc.NodeID] = true
		case raftpb.ConfChangeRemoveNode:
			delete(set, cc.NodeID)
		}
	}
	ids := make([]uint64, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// forceNewCluster rewrites what recovery read (the snapshot's configuration
// cs and the log state st) so that this member is the cluster's only
// member: it appends to the log, durably, a removal of every other member
// (and an addition of this one if the log does not know it) at the current
// term, and commits everything the log holds.
//
// Unlike etcd, which drops the entries after the commit index its log
// recorded, every entry is kept: etcdlite writes a hard state that only
// moves the commit index lazily (with the next entries), so the recorded
// commit index may lag the last acknowledged write, and dropping the tail
// could lose it. An entry that was never committed becomes committed here,
// which is one of the outcomes its client, who never got an answer, must
// allow.
func (s *server) forceNewCluster(cs raftpb.ConfState, snapIndex uint64, st *WALState) error {
	ids, err := logMemberIDs(cs, st.Entries)
	if err != nil {
		return err
	}
	last := snapIndex
	if n := len(st.Entries); n > 0 {
		last = st.Entries[n-1].Index
	}
	term := st.HardState.Term
	if n := len(st.Entries); n > 0 && st.Entries[n-1].Term > term {
		term = st.Entries[n-1].Term
	}
	var ents []raftpb.Entry
	add := func(cc raftpb.ConfChange) error {
		data, err := cc.Marshal()
		if err != nil {
			return fmt.Errorf("encode conf change: %w", err)
		}
		last++
		ents = append(ents, raftpb.Entry{Type: raftpb.EntryConfChange, Term: term, Index: last, Data: data})
		return nil
	}
	found := false
	for _, id := range ids {
		found = found || id == s.id
	}
	// itself first: raft refuses a configuration without voters
	if !found {
		m := member{ID: s.id, PeerURLs: urlsToStrings(s.cfg.InitialAdvertisePeerURLs)}
		ctx, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode member: %w", err)
		}
		if err := add(raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: s.id, Context: ctx}); err != nil {
			return err
		}
	}
	var removed []string
	for _, id := range ids {
		if id == s.id {
			continue
		}
		removed = append(removed, idString(id))
		if err := add(raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: id}); err != nil {
			return err
		}
	}
	hs := st.HardState
	hs.Term, hs.Commit = term, last
	if err := s.wal.Save(hs, ents); err != nil {
		return fmt.Errorf("force new cluster: write the membership changes: %w", err)
	}
	st.Entries = append(st.Entries, ents...)
	st.HardState = hs
	slog.Warn("forcing a new cluster of this member alone", "member", idString(s.id), "removing", removed,
		"adding-self", !found, "commit-index", last)
	return nil
}

// warnIfNotMember logs a warning when the recovered log records members
// and this member is not one of them: the data dir is then most likely a
// backup (which gets a new member id) started without --force-new-cluster,
// and this member will never be elected nor hear from a leader.
func (s *server) warnIfNotMember(cs raftpb.ConfState, st *WALState) {
	if s.cfg.ForceNewCluster {
		return
	}
	ids, err := logMemberIDs(cs, st.Entries)
	if err != nil || len(ids) == 0 {
		return
	}
	for _, id := range ids {
		if id == s.id {
			return
		}
	}
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = idString(id)
	}
	slog.Warn("this member is not a member of the cluster its data dir records; if the data dir is a backup, start it with --force-new-cluster",
		"member", idString(s.id), "members", names)
}
