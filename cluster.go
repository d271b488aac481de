// Membership: the /v2/members and /v2/machines handlers, the proposals that
// add, remove and update members, applying a conf change to raft, the store
// and the transport, joining a running cluster, and publishing this member's
// attributes. The records themselves and the ids are in members.go.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"etcdlite/kv"

	"go.etcd.io/raft/v3/raftpb"
)

// Errors of membership changes, worded as etcd words them.
var (
	errMemberNotFound   = errors.New("membership: member not found")
	errPeerURLExists    = errors.New("membership: peerURL exists")
	errMemberRemoved    = errors.New("membership: member removed")
	errUnhealthyCluster = errors.New("etcdserver: unhealthy cluster")
)

// memberChangeRequest is the body of POST and PUT /v2/members. It is
// anonymous, as etcd's is, so that decoding errors name the same type.
type memberChangeRequest = struct {
	PeerURLs []string `json:"peerURLs"`
}

// maxMemberBody bounds a members API body (limits.go).
const maxMemberBody = 1 << 20

// readMemberChange decodes and checks a members API body as etcd does: the
// whole body is one JSON object, and each peer URL passes etcd's URL
// checks (parseEtcdURL, whose words name unix and unixs as etcd's do) and
// is http or https: unix sockets are refused. The URLs come back in their
// canonical spelling.
func readMemberChange(r *http.Request) ([]string, int, error) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/json" {
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("Bad Content-Type %s, accept application/json", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxMemberBody+1))
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	if len(body) > maxMemberBody {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes", maxMemberBody)
	}
	var req memberChangeRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, http.StatusBadRequest, err
	}
	if len(req.PeerURLs) == 0 {
		return nil, http.StatusBadRequest, errors.New("no valid URLs given")
	}
	urls := make([]string, 0, len(req.PeerURLs))
	for _, s := range req.PeerURLs {
		u, err := parseEtcdURL(s)
		if err != nil {
			return nil, http.StatusBadRequest, err
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, http.StatusBadRequest, fmt.Errorf("URL %s: unix sockets are not supported", s)
		}
		urls = append(urls, u.String())
	}
	return urls, 0, nil
}

// handleMemberChange serves POST, PUT and DELETE on /v2/members.
func (s *server) handleMemberChange(w http.ResponseWriter, r *http.Request, idPart string) {
	switch r.Method {
	case http.MethodPost:
		if idPart != "" {
			writeMembersError(w, http.StatusNotFound, "Not found")
			return
		}
		urls, status, err := readMemberChange(r)
		if err != nil {
			writeMembersError(w, status, err.Error())
			return
		}
		m, err := s.addMember(r.Context(), urls)
		if err != nil {
			writeMembersError(w, memberErrorStatus(err), err.Error())
			return
		}
		writeJSON(w, http.StatusCreated, append(mustJSONBytes(m.view()), '\n'))
	case http.MethodDelete, http.MethodPut:
		id, perr := parseID(idPart)
		if perr != nil || idPart == "" {
			writeMembersError(w, http.StatusNotFound, "No such member: "+idPart)
			return
		}
		var err error
		if r.Method == http.MethodDelete {
			err = s.removeMember(r.Context(), id)
		} else {
			urls, status, rerr := readMemberChange(r)
			if rerr != nil {
				writeMembersError(w, status, rerr.Error())
				return
			}
			err = s.updateMember(r.Context(), id, urls)
		}
		switch {
		case errors.Is(err, errMemberNotFound):
			writeMembersError(w, http.StatusNotFound, "No such member: "+idPart)
		case errors.Is(err, errMemberRemoved):
			writeMembersError(w, http.StatusGone, "Member permanently removed: "+idPart)
		case err != nil:
			writeMembersError(w, memberErrorStatus(err), err.Error())
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

// memberErrorStatus is the HTTP status etcd answers a failed membership
// change with.
func memberErrorStatus(err error) int {
	switch {
	case errors.Is(err, errPeerURLExists):
		return http.StatusConflict
	case errors.Is(err, errMemberNotFound):
		return http.StatusNotFound
	case errors.Is(err, errMemberRemoved):
		return http.StatusGone
	case errors.Is(err, errUnhealthyCluster):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// isRemoved reports whether the store records member id as removed.
func (s *server) isRemoved(id uint64) bool {
	_, err := s.store.Lookup(clusterPrefix+"/removed_members/"+idString(id), false, false, 0)
	return err == nil
}

// sharesURL reports whether a member's peer URLs have and the URLs asked
// for want have one in common (etcd refuses such a change).
func sharesURL(have, want []string) bool {
	for _, h := range have {
		if slices.Contains(want, h) {
			return true
		}
	}
	return false
}

// addMember proposes a new (not yet started) member with peer URLs urls.
func (s *server) addMember(ctx context.Context, urls []string) (*member, error) {
	s.memberMu.Lock()
	defer s.memberMu.Unlock()
	ms := membersFromStore(s.store)
	for _, m := range ms {
		if sharesURL(m.PeerURLs, urls) {
			return nil, errPeerURLExists
		}
	}
	if s.cfg.StrictReconfigCheck && !s.readyToAddMember(ms) {
		return nil, errUnhealthyCluster
	}
	m := &member{ID: memberID(urls, s.cfg.InitialClusterToken, time.Now().Unix()), PeerURLs: urls, ClientURLs: []string{}}
	ctxData := mustJSONBytes(m)
	cc := raftpb.ConfChange{Type: raftpb.ConfChangeAddNode, NodeID: m.ID, Context: ctxData}
	if err := s.proposeConfChange(ctx, cc); err != nil {
		return nil, err
	}
	return m, nil
}

// removeMember proposes to remove member id.
func (s *server) removeMember(ctx context.Context, id uint64) error {
	s.memberMu.Lock()
	defer s.memberMu.Unlock()
	if s.isRemoved(id) {
		return errMemberRemoved
	}
	ms := membersFromStore(s.store)
	found := false
	for _, m := range ms {
		found = found || m.ID == id
	}
	if !found {
		return errMemberNotFound
	}
	if s.cfg.StrictReconfigCheck && !s.readyToRemoveMember(ms, id) {
		return errUnhealthyCluster
	}
	return s.proposeConfChange(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeRemoveNode, NodeID: id})
}

// updateMember proposes new peer URLs for member id.
func (s *server) updateMember(ctx context.Context, id uint64, urls []string) error {
	s.memberMu.Lock()
	defer s.memberMu.Unlock()
	if s.isRemoved(id) {
		return errMemberRemoved
	}
	var target *member
	for _, m := range membersFromStore(s.store) {
		if m.ID == id {
			target = m
			continue
		}
		if sharesURL(m.PeerURLs, urls) {
			return errPeerURLExists
		}
	}
	if target == nil {
		return errMemberNotFound
	}
	m := member{ID: id, Name: target.Name, PeerURLs: urls}
	ctxData := mustJSONBytes(m)
	return s.proposeConfChange(ctx, raftpb.ConfChange{Type: raftpb.ConfChangeUpdateNode, NodeID: id, Context: ctxData})
}

// readyToAddMember refuses a new voter when the members now running could
// not make a quorum of the larger cluster.
func (s *server) readyToAddMember(ms []*member) bool {
	started := s.activeMembers(ms)
	n := len(ms) + 1
	if started == 1 && n == 2 {
		return true // growing a one-member cluster
	}
	return started >= n/2+1
}

// readyToRemoveMember refuses a removal that would leave too few running
// members for a quorum.
func (s *server) readyToRemoveMember(ms []*member, id uint64) bool {
	started := s.activeMembers(ms)
	for _, m := range ms {
		if m.ID == id && s.memberActive(m.ID) {
			started--
		}
	}
	n := len(ms) - 1
	return started >= n/2+1
}

// activeMembers counts the members this member can reach now (itself
// included).
func (s *server) activeMembers(ms []*member) int {
	n := 0
	for _, m := range ms {
		if s.memberActive(m.ID) {
			n++
		}
	}
	return n
}

// proposeConfChange sends a membership change through raft and waits
// until it is applied.
func (s *server) proposeConfChange(ctx context.Context, cc raftpb.ConfChange) error {
	if err := s.writable(); err != nil {
		return err
	}
	cc.ID = nextRequestID()
	ch := s.waits.register(cc.ID, s.waitDeadline())
	if !s.inbox.change(cc) {
		s.waits.cancel(cc.ID)
		return errStopped
	}
	_, err := s.waits.await(ch)
	return err
}

// fetchCluster asks the members listed in --initial-cluster (other than
// this one) for the running cluster's id and members.
func fetchCluster(cfg *config, peerTLS *tlsSide) (uint64, []memberView, error) {
	hc := &http.Client{Timeout: 2 * time.Second}
	if peerTLS != nil {
		tc, err := peerTLS.clientConfig("")
		if err != nil {
			return 0, nil, fmt.Errorf("peer TLS: %w", err)
		}
		hc.Transport = &http.Transport{TLSClientConfig: tc}
	}
	var lastErr error
	for name, urls := range cfg.InitialCluster {
		if name == cfg.Name {
			continue
		}
		for _, u := range urls {
			resp, err := hc.Get(strings.TrimSuffix(u.String(), "/") + "/members")
			if err != nil {
				lastErr = err
				continue
			}
			b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
			resp.Body.Close()
			var ms []memberView
			if err == nil {
				ms, err = decodePeerMembers(b)
			}
			if err != nil {
				lastErr = fmt.Errorf("%s/members: %w", u, err)
				continue
			}
			cid, err := parseID(resp.Header.Get("X-Etcd-Cluster-Id"))
			if err != nil {
				lastErr = fmt.Errorf("%s/members: no cluster id: %w", u, err)
				continue
			}
			return cid, ms, nil
		}
	}
	if lastErr == nil {
		lastErr = errors.New("--initial-cluster names no other member")
	}
	return 0, nil, fmt.Errorf("could not reach the existing cluster: %w", lastErr)
}

// memberActive reports whether member id is reachable now.
func (s *server) memberActive(id uint64) bool {
	return id == s.id || s.transport.Connected(id)
}

// handleMembers serves /v2/members and /v2/members/leader.
func (s *server) handleMembers(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, "GET", "POST", "DELETE", "PUT") {
		return
	}
	if !s.authorizeWriteRoot(r) {
		writeNoAuth(w)
		return
	}
	w.Header()["X-Etcd-Cluster-Id"] = []string{idString(s.clusterID)}
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/v2/members"), "/")
	if r.Method != http.MethodGet {
		s.handleMemberChange(w, r, rest)
		return
	}
	switch rest {
	case "":
		ms := membersFromStore(s.store)
		views := make([]memberView, len(ms))
		for i, m := range ms {
			views[i] = m.view()
		}
		b := mustJSONBytes(struct {
			Members []memberView `json:"members"`
		}{views})
		writeJSON(w, http.StatusOK, append(b, '\n'))
	case "leader":
		lead := s.leader.Load()
		for _, m := range membersFromStore(s.store) {
			if m.ID == lead {
				writeJSON(w, http.StatusOK, append(mustJSONBytes(m.view()), '\n'))
				return
			}
		}
		writeMembersError(w, http.StatusServiceUnavailable, "During Leader Election")
	default:
		writeMembersError(w, http.StatusNotFound, "Not found")
	}
}

// writeMembersError answers with status and etcd's {"message": ...} body.
func writeMembersError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, mustJSONBytes(struct {
		Message string `json:"message"`
	}{msg}))
}

// handleMachines lists every member's client URLs.
func (s *server) handleMachines(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, "GET", "HEAD") {
		return
	}
	var urls []string
	for _, m := range membersFromStore(s.store) {
		urls = append(urls, m.ClientURLs...)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(strings.Join(urls, ", ")))
}

// syncPeers makes the transport know every member the store records.
func (s *server) syncPeers() {
	if s.transport == nil {
		return
	}
	for _, m := range membersFromStore(s.store) {
		if m.ID != s.id {
			s.transport.AddPeer(m.ID, m.PeerURLs) // a known peer only gets its URLs updated
		}
	}
}

// join finds this member in the running cluster that --initial-cluster
// points at (it must have been added with the members API first) and
// creates its empty log.
func (s *server) join(walDir string) ([]memberView, error) {
	mine := urlStrings(s.cfg.InitialAdvertisePeerURLs)
	var cid uint64
	var ms []memberView
	// a member that lags behind the one that took the member add may not
	// know this member yet: ask again for a little while
	for attempt := 0; s.id == 0 && attempt < 50; attempt++ {
		if attempt > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		var err error
		cid, ms, err = fetchCluster(s.cfg, s.tls.peer)
		if err != nil {
			if attempt < 49 {
				continue
			}
			return nil, err
		}
		for _, m := range ms {
			if sameURLStrings(m.PeerURLs, mine) {
				id, err := parseID(m.ID)
				if err != nil {
					return nil, fmt.Errorf("member %q of the running cluster has a bad id: %w", m.ID, err)
				}
				s.id, s.clusterID = id, cid
				break
			}
		}
	}
	if s.id == 0 {
		return nil, fmt.Errorf("the running cluster %s has no member with peer URLs %s: add it first (etcdctl member add %s --peer-urls=%s)",
			idString(cid), strings.Join(mine, ","), s.cfg.Name, strings.Join(mine, ","))
	}
	w, _, err := OpenWAL(walDir, WALMetadata{MemberID: s.id, ClusterID: s.clusterID, Name: s.cfg.Name}, 0, 0, s.cfg.hooks.wal)
	if err != nil {
		return nil, fmt.Errorf("create write-ahead log: %w", err)
	}
	s.wal = w
	return ms, nil
}

// publish makes this member's name and client URLs known through raft, and
// has the first leader record the cluster version, as etcd does.
func (s *server) publish() {
	attrs := mustJSON(attributes{Name: s.cfg.Name, ClientURLs: urlsToStrings(s.cfg.AdvertiseClientURLs)})
	first := s.leaderSeen // the first leader wakes this at once; later waits poll
	for {
		if s.leader.Load() == 0 {
			select {
			case <-s.stopc:
				return
			case <-first:
				first = nil
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
		_, err := s.propose(ctx, &kv.Request{Method: kv.MethodPut, Path: memberDir(s.id) + "/attributes", Value: attrs})
		cancel()
		if err != nil {
			slog.Warn("publish member attributes", "err", err)
			select {
			case <-s.stopc:
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		break
	}
	s.serveClients()
	for {
		if s.leader.Load() == s.id {
			if _, err := s.store.Lookup(versionKey, false, false, 0); err != nil {
				ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
				_, err := s.propose(ctx, &kv.Request{Method: kv.MethodPut, Path: versionKey, Value: etcdClusterVersion})
				cancel()
				if err != nil {
					slog.Warn("set cluster version", "err", err)
				}
			}
			return
		}
		select {
		case <-s.stopc:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// applyConfChange changes the membership in raft and in the store. A store
// error is logged, not returned: every member applies the same entry to the
// same store and meets the same error, so the members still agree, and the
// raft membership has changed already.
func (s *server) applyConfChange(cc raftpb.ConfChange) {
	logErr := func(op, key string, err *kv.Error) {
		if err != nil {
			slog.Error("conf change: store update failed", "op", op, "key", key, "id", idString(cc.NodeID), "err", err)
		}
	}
	s.confState = *s.rn.ApplyConfChange(cc)
	switch cc.Type {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode, raftpb.ConfChangeUpdateNode:
		var m member
		if err := json.Unmarshal(cc.Context, &m); err != nil {
			slog.Warn("conf change without member", "id", idString(cc.NodeID), "err", err)
			break
		}
		ra := raftAttributes{PeerURLs: m.PeerURLs, IsLearner: cc.Type == raftpb.ConfChangeAddLearnerNode}
		_, err := s.store.Set(memberDir(cc.NodeID)+"/raftAttributes", false, mustJSON(ra), kv.TTLOptions{}, 0)
		logErr("set", memberDir(cc.NodeID)+"/raftAttributes", err)
		if m.Name != "" && cc.Type != raftpb.ConfChangeUpdateNode {
			a := attributes{Name: m.Name, ClientURLs: m.ClientURLs}
			_, err := s.store.Set(memberDir(cc.NodeID)+"/attributes", false, mustJSON(a), kv.TTLOptions{}, 0)
			logErr("set", memberDir(cc.NodeID)+"/attributes", err)
		}
		if cc.NodeID != s.id && s.transport != nil {
			s.transport.AddPeer(cc.NodeID, m.PeerURLs) // a known peer only gets its URLs updated
		}
	case raftpb.ConfChangeRemoveNode:
		_, err := s.store.Delete(memberDir(cc.NodeID), true, true, 0)
		logErr("delete", memberDir(cc.NodeID), err)
		_, err = s.store.Set(clusterPrefix+"/removed_members/"+idString(cc.NodeID), false, "removed", kv.TTLOptions{}, 0)
		logErr("set", clusterPrefix+"/removed_members/"+idString(cc.NodeID), err)
		if cc.NodeID != s.id && s.transport != nil {
			s.transport.RemovePeer(cc.NodeID)
		}
		if cc.NodeID == s.id {
			slog.Warn("this member was removed from the cluster; shutting down")
			go s.fail(errors.New("this member was removed from the cluster"))
		}
	}
	s.waits.trigger(cc.ID, applyResult{})
}
