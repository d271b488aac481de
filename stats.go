package main

import (
	"encoding/json"
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
	recvAppend  uint64
	sendAppend  uint64
	appliedIdx  uint64
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

func (st *serverStats) applied(index uint64) {
	st.mu.Lock()
	st.appliedIdx = index
	st.mu.Unlock()
}

// selfJSON is /v2/stats/self.
func (st *serverStats) selfJSON() []byte {
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
		SendAppend uint64     `json:"sendAppendRequestCnt"`
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
		RecvAppend: st.recvAppend,
		SendAppend: st.sendAppend,
	}
	b, _ := json.Marshal(v)
	return b
}

// leaderJSON is /v2/stats/leader; ok is false when this member does not lead.
func (st *serverStats) leaderJSON() ([]byte, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.state != raft.StateLeader {
		return nil, false
	}
	v := struct {
		Leader    string         `json:"leader"`
		Followers map[string]any `json:"followers"`
	}{Leader: idString(st.id), Followers: map[string]any{}}
	b, _ := json.Marshal(v)
	return b, true
}
