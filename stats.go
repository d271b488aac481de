// The v2 stats of this member: /v2/stats/self, /v2/stats/leader and
// /v2/stats/store, and the figures behind them (raft state, the transport's
// message counts, rates and heartbeat latencies).

package main

import (
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
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

// newServerStats starts the stats of member id, a follower from now.
func newServerStats(name string, id uint64) *serverStats {
	return &serverStats{name: name, id: id, startTime: time.Now(), state: raft.StateFollower}
}

// setState records the raft state and leader (and since when it leads).
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

// transportPeerStats is one peer's entry of /v2/stats/leader, shaped as etcd
// reports a follower.
type transportPeerStats struct {
	Latency transportLatency `json:"latency"`
	Counts  transportCounts  `json:"counts"`
}

// transportLatency is the heartbeat round trip to a peer, in milliseconds.
type transportLatency struct {
	Current           float64 `json:"current"`
	Average           float64 `json:"average"`
	StandardDeviation float64 `json:"standardDeviation"`
	Minimum           float64 `json:"minimum"`
	Maximum           float64 `json:"maximum"`
}

// transportCounts counts the messages to a peer: success when written to its
// connection, fail when dropped or lost.
type transportCounts struct {
	Fail    uint64 `json:"fail"`
	Success uint64 `json:"success"`
}

// transportTotals are the transport-wide counters and rates that
// /v2/stats/self reports.
type transportTotals struct {
	SendMsgs          uint64  `json:"sendMsgCount"`
	SendBytes         uint64  `json:"sendBytes"`
	RecvMsgs          uint64  `json:"recvMsgCount"`
	RecvBytes         uint64  `json:"recvBytes"`
	SendAppend        uint64  `json:"sendAppendRequestCnt"`
	RecvAppend        uint64  `json:"recvAppendRequestCnt"`
	Dropped           uint64  `json:"droppedMsgCount"`
	SendPkgRate       float64 `json:"sendPkgRate,omitempty"`
	SendBandwidthRate float64 `json:"sendBandwidthRate,omitempty"`
	RecvPkgRate       float64 `json:"recvPkgRate,omitempty"`
	RecvBandwidthRate float64 `json:"recvBandwidthRate,omitempty"`
}

// PeerStats returns latency and counts for every peer, keyed by member id.
func (t *Transport) PeerStats() map[uint64]transportPeerStats {
	t.mu.RLock()
	peers := make([]*trPeer, 0, len(t.peers))
	for _, p := range t.peers {
		peers = append(peers, p)
	}
	t.mu.RUnlock()
	out := make(map[uint64]transportPeerStats, len(peers))
	for _, p := range peers {
		out[p.id] = p.stats()
	}
	return out
}

// Totals returns the transport-wide counters, and the send and receive rates
// over the last few seconds.
func (t *Transport) Totals() transportTotals {
	now := time.Now()
	tt := transportTotals{
		SendMsgs:   t.sendMsgs.Load(),
		SendBytes:  t.sendBytes.Load(),
		RecvMsgs:   t.recvMsgs.Load(),
		RecvBytes:  t.recvBytes.Load(),
		SendAppend: t.sendAppend.Load(),
		RecvAppend: t.recvAppend.Load(),
		Dropped:    t.dropped.Load(),
	}
	tt.SendPkgRate, tt.SendBandwidthRate = t.sendRate.rates(now)
	tt.RecvPkgRate, tt.RecvBandwidthRate = t.recvRate.rates(now)
	return tt
}

// noteSent counts a batch written to a peer at about now.
func (t *Transport) noteSent(now time.Time, msgs, bytes, appends uint64) {
	t.sendMsgs.Add(msgs)
	t.sendBytes.Add(bytes)
	t.sendAppend.Add(appends)
	t.sendRate.add(now, msgs, bytes)
}

// noteReceived counts one message received at now and, for a heartbeat
// response, records the peer's latency.
func (t *Transport) noteReceived(m *raftpb.Message, size int, now time.Time) {
	t.recvMsgs.Add(1)
	t.recvBytes.Add(uint64(size))
	if m.Type == raftpb.MsgApp {
		t.recvAppend.Add(1)
	}
	t.recvRate.add(now, 1, uint64(size))
	if m.Type == raftpb.MsgHeartbeatResp {
		if p := t.peer(m.From); p != nil {
			p.heartbeatAnswered(now)
		}
	}
}

// heartbeatSent starts a latency measurement unless one is under way, and
// tells whether it did.
func (p *trPeer) heartbeatSent(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	// A heartbeat unanswered for long was lost: measure from this one.
	if p.hbSent.IsZero() || now.Sub(p.hbSent) > 5*time.Second {
		p.hbSent = now
		return true
	}
	return false
}

// heartbeatLost abandons the measurement of a heartbeat that was dropped.
func (p *trPeer) heartbeatLost() {
	p.mu.Lock()
	p.hbSent = time.Time{}
	p.mu.Unlock()
}

// heartbeatAnswered ends a latency measurement.
func (p *trPeer) heartbeatAnswered(now time.Time) {
	p.mu.Lock()
	if !p.hbSent.IsZero() {
		p.latency.observe(now.Sub(p.hbSent))
		p.rtt.observe(now.Sub(p.hbSent))
		p.hbSent = time.Time{}
	}
	p.mu.Unlock()
}

// stats returns the peer's entry of /v2/stats/leader.
func (p *trPeer) stats() transportPeerStats {
	p.mu.Lock()
	lat := p.latency.report()
	p.mu.Unlock()
	return transportPeerStats{
		Latency: lat,
		Counts:  transportCounts{Fail: p.fail.Load(), Success: p.success.Load()},
	}
}

// trLatency accumulates latency samples the way etcd's follower stats do.
type trLatency struct {
	n                   uint64
	current, avg, avgSq float64
	minimum, maximum    float64
}

// observe adds one sample.
func (l *trLatency) observe(d time.Duration) {
	ms := float64(d) / float64(time.Millisecond)
	l.n++
	l.current = ms
	if l.n == 1 || ms < l.minimum {
		l.minimum = ms
	}
	if ms > l.maximum {
		l.maximum = ms
	}
	n := float64(l.n)
	l.avg += (ms - l.avg) / n
	l.avgSq += (ms*ms - l.avgSq) / n
}

// report returns the samples' summary.
func (l *trLatency) report() transportLatency {
	return transportLatency{
		Current:           l.current,
		Average:           l.avg,
		StandardDeviation: math.Sqrt(max(0, l.avgSq-l.avg*l.avg)),
		Minimum:           l.minimum,
		Maximum:           l.maximum,
	}
}

// transportRate counts messages and bytes per second over the last
// transportRateWindow seconds.
type transportRate struct {
	mu    sync.Mutex
	start time.Time
	slots [transportRateWindow]struct {
		sec          int64
		pkgs, nbytes uint64
	}
}

// add counts pkgs messages of nbytes bytes at now.
func (r *transportRate) add(now time.Time, pkgs, nbytes uint64) {
	sec := now.Unix()
	r.mu.Lock()
	s := &r.slots[sec%transportRateWindow]
	if s.sec != sec {
		s.sec, s.pkgs, s.nbytes = sec, 0, 0
	}
	s.pkgs += pkgs
	s.nbytes += nbytes
	r.mu.Unlock()
}

// rates returns messages and bytes per second over the window ending now.
func (r *transportRate) rates(now time.Time) (pkgsPerSec, bytesPerSec float64) {
	sec := now.Unix()
	var pkgs, nbytes uint64
	r.mu.Lock()
	for _, s := range r.slots {
		if s.sec > sec-transportRateWindow && s.sec <= sec {
			pkgs += s.pkgs
			nbytes += s.nbytes
		}
	}
	start := r.start
	r.mu.Unlock()
	span := float64(transportRateWindow-1) + float64(now.Nanosecond())/1e9
	if since := now.Sub(start).Seconds(); since < span {
		span = since
	}
	span = max(span, 1)
	return float64(pkgs) / span, float64(nbytes) / span
}

// handleStatsSelf serves /v2/stats/self.
func (s *server) handleStatsSelf(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, "GET") {
		return
	}
	writeJSON(w, http.StatusOK, s.stats.selfJSON(s.transport.Totals()))
}

// handleStatsLeader serves /v2/stats/leader.
func (s *server) handleStatsLeader(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, "GET") {
		return
	}
	b, ok := s.stats.leaderJSON(s.transport.PeerStats())
	if !ok {
		writeJSON(w, http.StatusForbidden, []byte(`{"message":"not current leader"}`+"\n"))
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// handleStatsStore serves /v2/stats/store.
func (s *server) handleStatsStore(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, "GET") {
		return
	}
	writeJSON(w, http.StatusOK, s.store.StatsJSON())
}
