// Members as the store holds them: their records under /0, ids, views and
// JSON helpers.

package main

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"

	"etcdlite/kv"
)

// Store namespaces, as etcd lays them out: the cluster's own records live
// under /0, the keys of the v2 API under /1.
const (
	clusterPrefix = "/0"
	keysPrefix    = "/1"
	membersPrefix = clusterPrefix + "/members"
	versionKey    = clusterPrefix + "/version"
)

// member is one member of the cluster.
type member struct {
	ID         uint64   `json:"-"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

// raftAttributes is what the cluster agrees on through raft conf changes.
type raftAttributes struct {
	PeerURLs  []string `json:"peerURLs"`
	IsLearner bool     `json:"isLearner,omitempty"`
}

// attributes is what a member publishes about itself once it runs.
type attributes struct {
	Name       string   `json:"name,omitempty"`
	ClientURLs []string `json:"clientURLs,omitempty"`
}

// memberID derives a member's id from its peer URLs and the cluster token,
// as etcd does, so that every member computes the same ids at bootstrap.
// A member added at run time also mixes in the time (unix seconds).
func memberID(peerURLs []string, token string, unixTime int64) uint64 {
	sorted := append([]string(nil), peerURLs...)
	sort.Strings(sorted)
	b := []byte(strings.Join(sorted, ""))
	b = append(b, token...)
	if unixTime != 0 {
		b = strconv.AppendInt(b, unixTime, 10)
	}
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// clusterID derives the cluster id from the initial members' ids.
func clusterID(ids []uint64) uint64 {
	sorted := append([]uint64(nil), ids...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	b := make([]byte, 8*len(sorted))
	for i, id := range sorted {
		binary.BigEndian.PutUint64(b[8*i:], id)
	}
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// idString formats a member or cluster id in hex, as the wire, the API and
// the logs show it.
func idString(id uint64) string { return strconv.FormatUint(id, 16) }

// parseID parses an id written by idString.
func parseID(s string) (uint64, error) { return strconv.ParseUint(s, 16, 64) }

// memberDir is the store directory of member id's records.
func memberDir(id uint64) string { return path.Join(membersPrefix, idString(id)) }

// membersFromStore reads the member records the store holds, sorted by id.
func membersFromStore(st *kv.Store) []*member {
	ev, err := st.Lookup(membersPrefix, true, true, 0)
	if err != nil {
		return nil
	}
	var out []*member
	for _, d := range ev.Node.Nodes {
		id, perr := parseID(path.Base(d.Key))
		if perr != nil {
			continue
		}
		m := &member{ID: id, PeerURLs: []string{}, ClientURLs: []string{}}
		for _, f := range d.Nodes {
			switch path.Base(f.Key) {
			case "raftAttributes":
				var ra raftAttributes
				if json.Unmarshal([]byte(f.Value), &ra) == nil && ra.PeerURLs != nil {
					m.PeerURLs = ra.PeerURLs
				}
			case "attributes":
				var a attributes
				if json.Unmarshal([]byte(f.Value), &a) == nil {
					m.Name = a.Name
					if a.ClientURLs != nil {
						m.ClientURLs = a.ClientURLs
					}
				}
			}
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// memberView is a member as the members API shows it.
type memberView struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

// peerMemberView is a member as a peer's GET /members gives it: as etcd
// does, the id is a JSON number there (the client API's /v2/members gives
// it in hex), so that etcd's proxies and members read etcdlite's list.
type peerMemberView struct {
	ID         uint64   `json:"id"`
	PeerURLs   []string `json:"peerURLs"`
	Name       string   `json:"name"`
	ClientURLs []string `json:"clientURLs"`
}

// decodePeerMembers reads a peer's GET /members answer. The id is a JSON
// number (etcd, etcdlite) or a hex string (etcdlite builds before it
// followed etcd), so members of either kind can join through each other.
func decodePeerMembers(b []byte) ([]memberView, error) {
	var raw []struct {
		ID         json.RawMessage `json:"id"`
		Name       string          `json:"name"`
		PeerURLs   []string        `json:"peerURLs"`
		ClientURLs []string        `json:"clientURLs"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	ms := make([]memberView, len(raw))
	for i, r := range raw {
		var id uint64
		var hex string
		if err := json.Unmarshal(r.ID, &hex); err == nil {
			if id, err = parseID(hex); err != nil {
				return nil, fmt.Errorf("member %d: id %q: %w", i, hex, err)
			}
		} else if err := json.Unmarshal(r.ID, &id); err != nil {
			return nil, fmt.Errorf("member %d: id %s is neither a number nor a hex string", i, r.ID)
		}
		ms[i] = memberView{ID: idString(id), Name: r.Name, PeerURLs: r.PeerURLs, ClientURLs: r.ClientURLs}
	}
	return ms, nil
}

// view is the member as /v2/members shows it.
func (m *member) view() memberView {
	return memberView{ID: idString(m.ID), Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs}
}

// urlsToStrings is the text of each URL of us, in order.
func urlsToStrings(us []*url.URL) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.String()
	}
	return out
}

// mustJSON is the JSON text of v, a value of a type that always encodes
// (no floats, channels or funcs); a failure is a bug and panics.
func mustJSON(v any) string { return string(mustJSONBytes(v)) }

// mustJSONBytes is mustJSON as bytes.
func mustJSONBytes(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", v, err))
	}
	return b
}
