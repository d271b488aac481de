// The v2 stats of this member: /v2/stats/self and /v2/stats/leader.

package main

import (
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
)

// serverStats is what /v2/stats/self and /v2/stats/leader report.
type serverStats struct {
	mu          sync.Mutex
	name        string
	id          uint64
	state       raft.StateType
	startTime   time.Time
	leader      uint64
	leaderSince time.Time
}

func newServerStats(name string, id uint64) *serverStats {
	return &serverStats{name: name, id: id, startTime: time.Now(), state: raft.StateFollower}
}

func (st *serverStats) setState(state raft.StateType, leader uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.state = state
	if leader != st.leader {
		st.leader = leader
		st.leaderSince = time.Now()
	}
}

// selfJSON is /v2/stats/self, with the transport's counters and rates.
func (st *serverStats) selfJSON(tt transportTotals) []byte {
	st.mu.Lock()
	defer st.mu.Unlock()
	type leaderInfo struct {
		Leader    string    `json:"leader"`
		Uptime    string    `json:"uptime"`
		StartTime time.Time `json:"startTime"`
	}
	v := struct {
		Name       string     `json:"name"`
		ID         string     `json:"id"`
		State      string     `json:"state"`
		StartTime  time.Time  `json:"startTime"`
		LeaderInfo leaderInfo `json:"leaderInfo"`
		RecvAppend uint64     `json:"recvAppendRequestCnt"`
		RecvPkg    float64    `json:"recvPkgRate,omitempty"`
		RecvBW     float64    `json:"recvBandwidthRate,omitempty"`
		SendAppend uint64     `json:"sendAppendRequestCnt"`
		SendPkg    float64    `json:"sendPkgRate,omitempty"`
		SendBW     float64    `json:"sendBandwidthRate,omitempty"`
	}{
		Name:      st.name,
		ID:        idString(st.id),
		State:     st.state.String(),
		StartTime: st.startTime,
		LeaderInfo: leaderInfo{
			Leader:    idString(st.leader),
			Uptime:    time.Since(st.leaderSince).String(),
			StartTime: st.leaderSince,
		},
		RecvAppend: tt.RecvAppend,
		RecvPkg:    tt.RecvPkgRate,
		RecvBW:     tt.RecvBandwidthRate,
		SendAppend: tt.SendAppend,
		SendPkg:    tt.SendPkgRate,
		SendBW:     tt.SendBandwidthRate,
	}
	b, err := json.Marshal(v)
	if err != nil { // a rate that is not a number
		slog.Error("cannot encode /v2/stats/self", "err", err)
	}
	return b
}

// leaderJSON is /v2/stats/leader with the followers' latency and message
// counts; ok is false when this member does not lead.
func (st *serverStats) leaderJSON(peers map[uint64]transportPeerStats) ([]byte, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.state != raft.StateLeader {
		return nil, false
	}
	v := struct {
		Leader    string                        `json:"leader"`
		Followers map[string]transportPeerStats `json:"followers"`
	}{Leader: idString(st.id), Followers: map[string]transportPeerStats{}}
	for id, ps := range peers {
		v.Followers[idString(id)] = ps
	}
	b, err := json.Marshal(v)
	if err != nil { // a latency that is not a number
		slog.Error("cannot encode /v2/stats/leader", "err", err)
	}
	return b, true
}
