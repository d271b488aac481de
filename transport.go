// The peer transport: raft messages between members over HTTP.

package main

// The peer transport: it carries raft messages between the members of the
// cluster over net/http.
//
// Wire format. Every request carries X-Etcd-Cluster-ID, X-Server-From and
// X-Raft-To, each a member or cluster id in lower-case hex.
//
//   - Stream, one per direction and pair of members: the sender opens
//     POST <peerURL>/raft/stream with a chunked body that never ends while the
//     connection is healthy. The receiver checks the headers, answers 200 at
//     once (full duplex) and reads the body until it ends. The body is a
//     sequence of frames: an 8-byte big-endian length n, then n bytes holding a
//     marshalled raftpb.Message. A frame with n = 0 is a keepalive. The
//     response body carries nothing; when it ends, the receiver has gone and
//     the sender reconnects.
//   - Snapshot: POST <peerURL>/raft/snapshot whose body is exactly one
//     marshalled MsgSnap (Content-Length set). The receiver answers 204 once
//     its raft node has taken the message, so the sender can report the
//     snapshot as finished.
//
// Streams and snapshots run alike over TCP (http peer URLs) and TLS (https).
//
// Refusals: 412 Precondition Failed for another cluster's id (or a request
// meant for another member), 410 Gone for a member that was removed.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Paths, headers and limits of the wire format.
const (
	// transportStreamPath is where a peer opens its long-lived message stream.
	transportStreamPath = "/raft/stream"
	// transportSnapshotPath is where a peer posts a MsgSnap.
	transportSnapshotPath = "/raft/snapshot"
	// transportHeaderClusterID names the cluster the sender belongs to (hex).
	transportHeaderClusterID = "X-Etcd-Cluster-ID"
	// transportHeaderFrom names the sending member (hex).
	transportHeaderFrom = "X-Server-From"
	// transportHeaderTo names the member the request is meant for (hex).
	transportHeaderTo = "X-Raft-To"
	// transportContentType is the media type of streams and snapshots.
	transportContentType = "application/x-etcdlite-raft"

	// transportQueueSize bounds the messages waiting for one peer's stream.
	transportQueueSize = 4096
	// transportMaxBatchBytes bounds how much one batch writes before it flushes.
	transportMaxBatchBytes = 1 << 20
	// transportMaxFrameSize bounds one message on a stream.
	transportMaxFrameSize = 256 << 20
	// transportMaxSnapshotSize bounds one MsgSnap on the snapshot path.
	transportMaxSnapshotSize int64 = 2 << 30
	// transportKeepBufSize is the largest scratch buffer kept between messages;
	// a larger one, grown for a big message, is let go.
	transportKeepBufSize = 1 << 20
	// transportRateWindow is how many seconds the send and receive rates span.
	transportRateWindow = 5
)

// Errors the transport reports about its connections.
var (
	trErrWriteTimeout = errors.New("raft stream write timed out")
	trErrStreamClosed = errors.New("raft stream closed by the peer")
	trErrStopped      = errors.New("raft transport stopped or peer removed")
)

// transportRaft is what the transport delivers to: the local raft node.
type transportRaft interface {
	// Process hands an incoming message to the local raft node (node.Step).
	Process(ctx context.Context, m raftpb.Message) error
	// ReportUnreachable tells raft that a message to id was lost.
	ReportUnreachable(id uint64)
	// ReportSnapshot tells raft how sending a snapshot to id ended.
	ReportSnapshot(id uint64, status raft.SnapshotStatus)
}

// trFilter is the fault-injection hook of SetFilter.
type trFilter func(from, to uint64, m *raftpb.Message) (drop bool, delay time.Duration)

// transportTimeouts are the transport's timings; tests shorten them before
// adding peers.
type transportTimeouts struct {
	backoffMin time.Duration // first wait after every URL of a peer failed
	backoffMax time.Duration // longest wait between rounds of connection attempts
	dial       time.Duration // TCP connect
	header     time.Duration // wait for the stream's response headers
	write      time.Duration // a batch must reach the connection within this
	keepalive  time.Duration // an idle stream sends an empty frame this often
	idle       time.Duration // a receiver drops a stream silent for this long
	snapshot   time.Duration // one snapshot POST, body and answer included
}

// transportDefaultTimeouts are the timings NewTransport starts with.
var transportDefaultTimeouts = transportTimeouts{
	backoffMin: 50 * time.Millisecond,
	backoffMax: time.Second,
	dial:       time.Second,
	header:     3 * time.Second,
	write:      5 * time.Second,
	keepalive:  time.Second,
	idle:       10 * time.Second,
	snapshot:   5 * time.Minute,
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

// Transport carries raft messages between this member and its peers: one
// outgoing stream per peer, a separate path for snapshots, and an HTTP
// handler that receives the peers' streams and snapshots.
type Transport struct {
	localID   uint64
	clusterID uint64
	raft      transportRaft

	// timeouts and queueSize are copied by each peer AddPeer creates, and
	// timeouts.idle is read by the handler; tests change them before use.
	timeouts  transportTimeouts
	queueSize int

	dialer     *net.Dialer // streams dial for themselves
	snapRT     *http.Transport
	snapClient *http.Client
	peerTLS    *tlsSide // for https peer URLs; nil: none (SetPeerTLS)

	filter    atomic.Pointer[trFilter]
	onRemoved atomic.Pointer[func()] // called when a peer says this member was removed

	mu       sync.RWMutex
	peers    map[uint64]*trPeer
	removed  map[uint64]bool
	inbound  map[*trInbound]struct{}
	stopped  bool
	stopOnce sync.Once
	wg       sync.WaitGroup // outgoing goroutines
	inWG     sync.WaitGroup // inbound handlers

	sendMsgs, sendBytes, recvMsgs, recvBytes atomic.Uint64
	sendAppend, recvAppend, dropped          atomic.Uint64
	sendRate, recvRate                       transportRate

	lastRefusalLog atomic.Int64 // unix nanos of the last refusal logged at Warn
}

// NewTransport returns a transport for member localID of cluster clusterID
// that delivers incoming messages to r. It has no peers until AddPeer.
func NewTransport(localID, clusterID uint64, r transportRaft) *Transport {
	t := &Transport{
		localID:   localID,
		clusterID: clusterID,
		raft:      r,
		timeouts:  transportDefaultTimeouts,
		queueSize: transportQueueSize,
		peers:     make(map[uint64]*trPeer),
		removed:   make(map[uint64]bool),
		inbound:   make(map[*trInbound]struct{}),
	}
	t.dialer = &net.Dialer{Timeout: t.timeouts.dial, KeepAlive: 30 * time.Second}
	t.snapRT = &http.Transport{
		DialContext:         t.dialer.DialContext,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     30 * time.Second,
	}
	t.snapClient = &http.Client{Transport: t.snapRT}
	now := time.Now()
	t.sendRate.start, t.recvRate.start = now, now
	return t
}

// SetPeerTLS gives the transport the peer TLS it needs for https peer
// URLs: the peer certificate as client certificate, the peer CA for the
// peers' certificates. Call it before AddPeer.
func (t *Transport) SetPeerTLS(side *tlsSide) {
	t.peerTLS = side
	t.snapRT.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := t.dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc, err := t.tlsClient(ctx, conn, addr)
		if err != nil {
			_ = conn.Close()
			return nil, err
		}
		return tc, nil
	}
}

// tlsClient completes the client side of a TLS handshake on conn, to the
// peer at addr (host:port).
func (t *Transport) tlsClient(ctx context.Context, conn net.Conn, addr string) (*tls.Conn, error) {
	if t.peerTLS == nil {
		return nil, errors.New("https peer URL, but no peer certificate (--peer-cert-file, --peer-key-file or --peer-auto-tls)")
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	cfg, err := t.peerTLS.clientConfig(host)
	if err != nil {
		return nil, fmt.Errorf("peer TLS: %w", err)
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// SetRemovedHandler sets f to be called when a peer refuses this member as
// removed from the cluster (HTTP 410): the member learns of its removal even
// if it never received the entry that removed it.
func (t *Transport) SetRemovedHandler(f func()) { t.onRemoved.Store(&f) }

// SetFilter installs a fault-injection hook, for tests: every outgoing
// message is passed to f (from is always the local member), which may drop
// it or delay it. Delayed messages may be reordered. A dropped MsgSnap is
// reported to raft as a failed snapshot. nil removes the hook. To partition
// member X, install on every transport a filter that drops messages whose
// from or to is X.
func (t *Transport) SetFilter(f func(from, to uint64, m *raftpb.Message) (drop bool, delay time.Duration)) {
	if f == nil {
		t.filter.Store(nil)
		return
	}
	ff := trFilter(f)
	t.filter.Store(&ff)
}

// AddPeer starts sending to member id at urls (its peer URLs, tried in turn).
// Adding a known peer updates its URLs; adding a removed member un-removes it.
func (t *Transport) AddPeer(id uint64, urls []string) {
	if id == t.localID || id == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	delete(t.removed, id)
	if p := t.peers[id]; p != nil {
		p.setURLs(urls)
		return
	}
	p := newTrPeer(t, id, urls)
	t.peers[id] = p
	t.wg.Add(3)
	go p.runStream()
	go p.runSnapshots()
	go p.runReports()
	slog.Info("raft transport: peer added", "local", idString(t.localID), "peer", idString(id), "urls", urls)
}

// RemovePeer stops sending to member id, closes its incoming streams and
// refuses it from now on (410 Gone). It does not wait for the peer's
// goroutines; Stop does.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	t.removed[id] = true
	p := t.peers[id]
	delete(t.peers, id)
	for in := range t.inbound {
		if in.from == id {
			in.kill()
		}
	}
	t.mu.Unlock()
	if p != nil {
		p.cancel()
	}
	slog.Info("raft transport: peer removed", "local", idString(t.localID), "peer", idString(id))
}

// Connected tells whether the outgoing stream to member id is up.
func (t *Transport) Connected(id uint64) bool {
	p := t.peer(id)
	return p != nil && p.connected.Load()
}

// Stop closes every connection, stops every goroutine of the transport and
// waits for them. Send, AddPeer and the handler do nothing useful after it.
func (t *Transport) Stop() {
	t.stopOnce.Do(func() {
		t.mu.Lock()
		t.stopped = true
		peers := t.peers
		t.peers = make(map[uint64]*trPeer)
		for in := range t.inbound {
			in.kill()
		}
		t.mu.Unlock()
		for _, p := range peers {
			p.cancel()
		}
		t.wg.Wait()
		t.inWG.Wait()
		t.snapRT.CloseIdleConnections()
		slog.Debug("raft transport stopped", "local", idString(t.localID))
	})
}

// peer returns the peer with id, or nil.
func (t *Transport) peer(id uint64) *trPeer {
	t.mu.RLock()
	p := t.peers[id]
	t.mu.RUnlock()
	return p
}

// Send queues messages for their peers and returns at once; it never blocks.
// A message that cannot be queued (peer not connected, queue full) is
// dropped, counted and reported with ReportUnreachable. MsgSnap goes to the
// snapshot path, and its outcome is reported with ReportSnapshot.
//
// When nothing is being written to a peer's stream, Send writes what it
// queued itself, with one non-blocking write, instead of waiting for the
// peer's pump goroutine to be scheduled: under load that wait was most of
// the cost of a message. What the socket does not take at once is left to
// the pump.
func (t *Transport) Send(msgs []raftpb.Message) {
	fp := t.filter.Load()
	var p *trPeer
	var queuedTo [4]*trPeer
	queued := queuedTo[:0] // peers to flush, each once
	for i := range msgs {
		m := &msgs[i]
		if p == nil || p.id != m.To {
			p = t.peer(m.To)
		}
		if p == nil {
			t.dropUnknown(m)
			continue
		}
		if fp != nil {
			drop, delay := (*fp)(t.localID, m.To, m)
			if drop {
				if m.Type == raftpb.MsgSnap {
					p.reportSnapshotFailure()
				}
				continue
			}
			if delay > 0 {
				mm, dp := *m, p
				time.AfterFunc(delay, func() {
					if dp.enqueue(&mm) {
						dp.flush()
					}
				})
				continue
			}
		}
		if p.enqueue(m) && !slices.Contains(queued, p) {
			queued = append(queued, p)
		}
	}
	for _, p := range queued {
		p.flush()
	}
}

// dropUnknown drops a message for a member the transport does not know.
func (t *Transport) dropUnknown(m *raftpb.Message) {
	t.dropped.Add(1)
	slog.Debug("raft transport: message to unknown peer dropped", "local", idString(t.localID), "to", idString(m.To), "type", m.Type.String())
	if m.Type != raftpb.MsgSnap {
		return
	}
	// raft waits for the outcome of every snapshot; tell it from another
	// goroutine so that Send stays non-blocking.
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.stopped {
		return
	}
	t.wg.Add(1)
	go func(to uint64) {
		defer t.wg.Done()
		t.raft.ReportSnapshot(to, raft.SnapshotFailure)
	}(m.To)
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

// idHeaders puts the identifying headers of a request to member to in h.
func (t *Transport) idHeaders(h http.Header, to uint64) {
	h.Set(transportHeaderClusterID, idString(t.clusterID))
	h.Set(transportHeaderFrom, idString(t.localID))
	h.Set(transportHeaderTo, idString(to))
	h.Set("Content-Type", transportContentType)
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

// ---- sending side ----

// trPeer is the sending side for one peer: a bounded queue drained by a
// stream goroutine (or by Send itself, with a non-blocking write, while that
// goroutine is idle), a snapshot goroutine and a goroutine that reports
// unreachability to raft, so that Send never waits for raft or the network.
type trPeer struct {
	t        *Transport
	id       uint64
	timeouts transportTimeouts // the transport's, when the peer was added
	ctx      context.Context   // cancelled when the peer is removed or the transport stops
	cancel   context.CancelFunc

	queue   trQueue                // messages for the stream
	cur     atomic.Pointer[trConn] // the open stream, for Send to write to
	snapc   chan raftpb.Message    // MsgSnap waiting for the snapshot goroutine
	reportc chan struct{}          // wakes the report goroutine
	urlc    chan struct{}          // the URLs changed

	connected    atomic.Bool
	unreachable  atomic.Bool  // ReportUnreachable pending
	snapFailures atomic.Int64 // ReportSnapshot(failure) pending
	batches      atomic.Uint64
	success      atomic.Uint64
	fail         atomic.Uint64
	sentBytes    atomic.Uint64 // for /metrics
	recvBytes    atomic.Uint64 // received from this peer, for /metrics
	disconnects  atomic.Uint64 // streams to this peer that broke, for /metrics
	rtt          *histogram    // heartbeat round trips, for /metrics

	mu      sync.Mutex
	urls    []string
	hbSent  time.Time // when the unanswered heartbeat was queued
	latency trLatency
}

// newTrPeer returns a peer ready to run; AddPeer starts its goroutines.
func newTrPeer(t *Transport, id uint64, urls []string) *trPeer {
	ctx, cancel := context.WithCancel(context.Background())
	return &trPeer{
		t:        t,
		id:       id,
		timeouts: t.timeouts,
		ctx:      ctx,
		cancel:   cancel,
		queue:    trQueue{limit: t.queueSize, wake: make(chan struct{}, 1)},
		snapc:    make(chan raftpb.Message, 1),
		reportc:  make(chan struct{}, 1),
		urlc:     make(chan struct{}, 1),
		urls:     trCleanURLs(urls),
		rtt:      newHistogram(peerRTTBuckets),
	}
}

// trCleanURLs copies urls without trailing slashes and empty entries.
func trCleanURLs(urls []string) []string {
	out := make([]string, 0, len(urls))
	for _, u := range urls {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// setURLs replaces the peer's URLs and tells the stream goroutine.
func (p *trPeer) setURLs(urls []string) {
	p.mu.Lock()
	p.urls = trCleanURLs(urls)
	p.mu.Unlock()
	select {
	case p.urlc <- struct{}{}:
	default:
	}
}

// urlList returns a copy of the peer's URLs.
func (p *trPeer) urlList() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.urls...)
}

// hasURL tells whether u is still one of the peer's URLs.
func (p *trPeer) hasURL(u string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, x := range p.urls {
		if x == u {
			return true
		}
	}
	return false
}

// enqueue queues one message without blocking, or drops it. It tells
// whether m went to the stream's queue, which the caller must then flush.
func (p *trPeer) enqueue(m *raftpb.Message) bool {
	if p.ctx.Err() != nil {
		return false
	}
	if m.Type == raftpb.MsgSnap {
		select {
		case p.snapc <- *m:
		default:
			p.reportSnapshotFailure()
		}
		return false
	}
	if !p.connected.Load() {
		p.drop(1)
		return false
	}
	// The measurement starts before the heartbeat is queued, so that its
	// answer cannot arrive first.
	measuring := m.Type == raftpb.MsgHeartbeat && p.heartbeatSent(time.Now())
	if !p.queue.push(m) {
		if measuring {
			p.heartbeatLost()
		}
		p.drop(1)
		return false
	}
	return true
}

// flush gets what is queued for the peer written: by the calling goroutine
// if nobody is writing to the stream, with one non-blocking write of at most
// about trChunkSize, else, and for whatever that write leaves, by the pump,
// which it wakes. It never blocks for long: the stream's lock is only tried.
func (p *trPeer) flush() {
	c := p.cur.Load()
	if c == nil || c.sock.raw == nil || !c.wmu.TryLock() {
		p.queue.wakePump()
		return
	}
	wake := p.writeNow(c)
	c.wmu.Unlock()
	if wake {
		p.queue.wakePump()
	}
}

// trDirectGap is how long a stream must have written nothing for Send to
// write to it itself. A faster flow of messages is left to the pump, which
// writes many in one call: Send's writes are for latency, and each costs a
// system call.
const trDirectGap = 20 * time.Microsecond

// writeNow is flush's part under c.wmu. It tells whether the pump has work.
func (p *trPeer) writeNow(c *trConn) bool {
	if c.ended || c.pendingB.msgs > 0 || len(c.carry) > 0 {
		return true // the pump writes that first, and what is queued after
	}
	now := time.Now()
	if now.Sub(c.lastWrite) < trDirectGap {
		return true
	}
	msgs := p.queue.take()
	defer p.queue.giveBack(msgs)
	if len(msgs) == 0 {
		return false
	}
	c.lastWrite = now
	c.armDeadline(now, p.timeouts.write)
	var b trBatch
	buf := trChunkStart(c.sendBuf)
	i := 0
	// One chunk at most: a large message is left to the pump, so that the
	// caller (the raft loop) never copies much.
	for i < len(msgs) && len(buf)+msgs[i].Size() <= trChunkRoom+trChunkSize {
		buf = p.encode(buf, &msgs[i], &b)
		i++
	}
	c.carry = append(c.carry[:0], msgs[i:]...)
	c.sendBuf = buf
	if cap(buf) > transportKeepBufSize {
		c.sendBuf = nil // pending may still point into it
	}
	if b.msgs == 0 {
		return len(c.carry) > 0
	}
	c.wrote = true
	if !c.sock.writeNonblocking(c.conn, trChunkFinish(buf)) {
		// The socket keeps the rest, which goes first when the pump next
		// writes; if the connection failed, the pump's write fails too and
		// the stream is reopened.
		c.pendingB = b
		return true
	}
	p.sent(b, now)
	return len(c.carry) > 0
}

// trQueue is a peer's bounded queue of messages for its stream. Send
// appends under a mutex and whoever writes takes everything queued at once:
// one lock per batch instead of a channel operation per message.
type trQueue struct {
	mu    sync.Mutex
	msgs  []raftpb.Message
	spare []raftpb.Message // a slice given back, for msgs once taken
	limit int
	// wake holds a token when the pump has work: queued messages nobody
	// wrote, or the rest of a write Send began.
	wake chan struct{}
}

// push queues a copy of m, or tells that the queue is full.
func (q *trQueue) push(m *raftpb.Message) bool {
	q.mu.Lock()
	if len(q.msgs) >= q.limit {
		q.mu.Unlock()
		return false
	}
	q.msgs = append(q.msgs, *m)
	q.mu.Unlock()
	return true
}

// wakePump wakes the pump without blocking.
func (q *trQueue) wakePump() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns every queued message and leaves the queue empty. The slice
// is the caller's until it gives it back.
func (q *trQueue) take() []raftpb.Message {
	q.mu.Lock()
	msgs := q.msgs
	q.msgs, q.spare = q.spare, nil
	q.mu.Unlock()
	return msgs
}

// trKeepQueueCap is the largest queue slice kept for reuse; one grown by a
// burst is let go.
const trKeepQueueCap = 1024

// giveBack clears msgs, which take returned, so that it holds no message
// data, and keeps it for reuse unless it grew too large.
func (q *trQueue) giveBack(msgs []raftpb.Message) {
	if cap(msgs) > trKeepQueueCap {
		return
	}
	clear(msgs)
	q.mu.Lock()
	if q.spare == nil {
		q.spare = msgs[:0]
	}
	q.mu.Unlock()
}

// drop counts n lost messages and has raft told that the peer is unreachable.
func (p *trPeer) drop(n uint64) {
	p.fail.Add(n)
	p.t.dropped.Add(n)
	p.unreachable.Store(true)
	p.wakeReporter()
}

// reportSnapshotFailure counts a failed snapshot and has raft told.
func (p *trPeer) reportSnapshotFailure() {
	p.fail.Add(1)
	p.t.dropped.Add(1)
	p.snapFailures.Add(1)
	p.wakeReporter()
}

// wakeReporter wakes the report goroutine without blocking.
func (p *trPeer) wakeReporter() {
	select {
	case p.reportc <- struct{}{}:
	default:
	}
}

// runReports tells raft, outside the raft loop, about lost messages and
// snapshots. Reports of unreachability are coalesced.
func (p *trPeer) runReports() {
	defer p.t.wg.Done()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.reportc:
		}
		for n := p.snapFailures.Swap(0); n > 0; n-- {
			p.t.raft.ReportSnapshot(p.id, raft.SnapshotFailure)
		}
		if p.unreachable.Swap(false) {
			p.t.raft.ReportUnreachable(p.id)
		}
	}
}

// failQueued drops whatever waits in the queue, e.g. when the stream broke.
func (p *trPeer) failQueued() {
	msgs := p.queue.take()
	if len(msgs) > 0 {
		p.drop(uint64(len(msgs)))
	}
	p.queue.giveBack(msgs)
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

// trConn is one outgoing stream: a connection of its own (TCP, or TLS over
// TCP) on which the stream's request was written by hand and accepted by
// the peer. The pump writes frames straight to it, with no goroutine in
// between.
type trConn struct {
	url       string
	conn      net.Conn      // what the frames are written to: sock, or a tls.Conn over it
	sock      *trSock       // the TCP connection underneath
	done      chan struct{} // closed once the peer's (empty) response has ended
	unhook    func() bool   // undoes closing conn when the peer's context ends
	closeOnce sync.Once

	// wmu is held by whoever writes to conn: the pump, or Send writing for
	// it (see flush). The fields below are guarded by it.
	wmu         sync.Mutex
	ended       bool             // the pump is done with conn: nothing more is written
	wrote       bool             // something was written since the last keepalive tick
	lastWrite   time.Time        // when the last batch was written, about
	deadlineSet time.Time        // when the write deadline was last moved
	pendingB    trBatch          // the messages of a chunk Send began whose rest the socket keeps, counted once it is written
	carry       []raftpb.Message // messages Send took from the queue and left for the pump
	sendBuf     []byte           // Send's chunk buffer
}

// close tears the stream down; a blocked write returns. The TCP connection
// is closed under TLS as well: no close alert to wait for.
func (c *trConn) close() {
	c.closeOnce.Do(func() {
		c.unhook()
		_ = c.sock.Close()
	})
}

// trSock is a stream's TCP connection as its writers see it. Besides
// ordinary (blocking) writes, it takes Send's non-blocking ones: what the
// socket does not take at once is kept, and written first by the next
// blocking write. Under TLS it sits beneath the tls.Conn, so that a chunk
// Send writes is encrypted once and then either sent or kept: the record
// stream stays whole whatever the socket takes, and the same code runs
// over TCP and TLS.
type trSock struct {
	net.Conn
	raw syscall.RawConn // the socket, for non-blocking writes; nil if none

	mu       sync.Mutex // held by Write; the fields below are guarded by it
	nonblock bool       // Write must not block: Send is writing
	backlog  []byte     // what non-blocking writes left unwritten
	err      error      // why a non-blocking write through TLS failed: the stream is broken
	rawWrite func(fd uintptr) bool
	rawBuf   []byte // what rawWriteOnce writes
	rawN     int    // and what it wrote
	rawErr   error
}

// newTrSock wraps conn.
func newTrSock(conn net.Conn) *trSock {
	s := &trSock{Conn: conn}
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			s.raw = raw
			s.rawWrite = s.rawWriteOnce
		}
	}
	return s
}

// Write writes b. In non-blocking mode it makes at most one attempt, never
// waiting, keeps the rest and reports all of b written; a failed socket is
// left for the next blocking write to find. Otherwise it first writes what
// is kept, then b.
func (s *trSock) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nonblock {
		n := len(b)
		if len(s.backlog) == 0 {
			b = b[s.tryWrite(b):]
		}
		s.backlog = append(s.backlog, b...)
		return n, nil
	}
	if err := s.flushLocked(); err != nil {
		return 0, err
	}
	return s.Conn.Write(b)
}

// flushLocked writes what non-blocking writes kept. s.mu is held.
func (s *trSock) flushLocked() error {
	if s.err != nil {
		return s.err
	}
	if len(s.backlog) == 0 {
		return nil
	}
	_, err := s.Conn.Write(s.backlog)
	s.backlog = s.backlog[:0]
	if cap(s.backlog) > transportKeepBufSize {
		s.backlog = nil
	}
	return err
}

// flush writes, blocking, what non-blocking writes kept.
func (s *trSock) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked()
}

// writeNonblocking writes b to w (the sock itself, or a tls.Conn over it)
// without blocking and tells whether the socket took all of it.
func (s *trSock) writeNonblocking(w io.Writer, b []byte) bool {
	s.mu.Lock()
	s.nonblock = true
	s.mu.Unlock()
	_, err := w.Write(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nonblock = false
	if err != nil && s.err == nil {
		s.err = err // a TLS connection already broken: the pump's to find
	}
	return len(s.backlog) == 0 && s.err == nil
}

// trChunkRoom is the room kept in front of a chunk's payload for its size
// line: at most 16 hex digits and CRLF.
const trChunkRoom = 18

// trChunkSize is about how much payload one chunk, and one write to the
// connection, carries; a larger batch is written in several chunks.
const trChunkSize = 64 << 10

// trChunkStart empties buf, keeping its storage, for a new chunk.
func trChunkStart(buf []byte) []byte {
	return append(buf[:0], make([]byte, trChunkRoom)...)
}

// armDeadline makes sure that a write starting at now may take d. The
// deadline is moved only when it has less than d left, giving between d and
// 1.25 d, so that most batches do not touch it.
func (c *trConn) armDeadline(now time.Time, d time.Duration) {
	if now.Sub(c.deadlineSet) > d/4 {
		_ = c.conn.SetWriteDeadline(now.Add(d + d/4))
		c.deadlineSet = now
	}
}

// trChunkFinish frames buf[trChunkRoom:] as one HTTP/1.1 chunk in place and
// returns the chunk. encode leaves room in buf for its final CRLF.
func trChunkFinish(buf []byte) []byte {
	var line [trChunkRoom]byte
	l := strconv.AppendUint(line[:0], uint64(len(buf)-trChunkRoom), 16)
	l = append(l, '\r', '\n')
	start := trChunkRoom - len(l)
	copy(buf[start:], l)
	return append(buf, '\r', '\n')[start:]
}

// trKeepalive is the chunk holding one empty frame.
var trKeepalive = []byte("8\r\n\x00\x00\x00\x00\x00\x00\x00\x00\r\n")

// trWriteErr names a write that hit the write deadline.
func trWriteErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return trErrWriteTimeout
	}
	return err
}

// writeChunk writes buf[trChunkRoom:] to the connection as one HTTP/1.1
// chunk and returns buf emptied for the next one. c.wmu is held.
func (c *trConn) writeChunk(buf []byte) ([]byte, error) {
	_, err := c.conn.Write(trChunkFinish(buf))
	c.wrote = true
	if err != nil {
		return buf[:trChunkRoom], trWriteErr(err)
	}
	return buf[:trChunkRoom], nil
}

// tryWrite makes one non-blocking write of b and returns how much the
// socket took: a full socket buffer, a failed or closed connection leave
// the rest to the next blocking write, which reports any error. s.mu is
// held.
func (s *trSock) tryWrite(b []byte) int {
	s.rawBuf, s.rawN, s.rawErr = b, 0, nil
	_ = s.raw.Write(s.rawWrite)
	n := max(s.rawN, 0)
	s.rawBuf, s.rawErr = nil, nil
	return n
}

// rawWriteOnce is tryWrite's function for the socket: one attempt, never
// waiting for the socket to take more. It is a method value made once per
// connection, so that a write allocates nothing. s.mu is held.
func (s *trSock) rawWriteOnce(fd uintptr) bool {
	s.rawN, s.rawErr = syscall.Write(int(fd), s.rawBuf)
	return true
}

// runStream keeps a stream to the peer open, reconnecting with backoff and
// trying the peer's URLs in turn, and writes queued messages to it.
func (p *trPeer) runStream() {
	defer p.t.wg.Done()
	to := p.timeouts
	var out []byte // the pump's reused chunk buffer
	backoff := to.backoffMin
	next := 0 // index of the URL to try next
	failedInRound := 0
	lastErr := map[string]string{} // per URL, so that a repeated failure logs at Debug
	for p.ctx.Err() == nil {
		urls := p.urlList()
		if len(urls) == 0 {
			select {
			case <-p.ctx.Done():
				return
			case <-p.urlc:
			}
			continue
		}
		u := urls[next%len(urls)]
		c, err := p.dial(u)
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			if msg := err.Error(); msg != lastErr[u] {
				lastErr[u] = msg
				slog.Warn("raft transport: cannot open stream to peer", "local", idString(p.t.localID), "peer", idString(p.id), "url", u, "err", err)
			} else {
				slog.Debug("raft transport: cannot open stream to peer", "local", idString(p.t.localID), "peer", idString(p.id), "url", u, "err", err)
			}
			next++
			failedInRound++
			if failedInRound < len(urls) {
				continue // try the next URL at once
			}
			failedInRound = 0
			select {
			case <-p.ctx.Done():
				return
			case <-p.urlc:
				next = 0
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, to.backoffMax)
			continue
		}
		backoff, failedInRound = to.backoffMin, 0
		clear(lastErr)
		p.failQueued() // anything queued before the stream came up is stale
		p.cur.Store(c)
		p.connected.Store(true)
		slog.Info("raft transport: stream to peer connected", "local", idString(p.t.localID), "peer", idString(p.id), "url", u)
		err = p.pump(c, &out)
		p.connected.Store(false)
		p.disconnects.Add(1)
		p.cur.Store(nil)
		p.endConn(c)
		p.failQueued()
		p.heartbeatLost()
		if p.ctx.Err() != nil {
			return
		}
		p.unreachable.Store(true)
		p.wakeReporter()
		slog.Warn("raft transport: stream to peer broken", "local", idString(p.t.localID), "peer", idString(p.id), "url", u, "err", err)
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(to.backoffMin):
		}
	}
}

// dial opens a stream at base URL u and waits for the peer to accept it.
// The request is an ordinary HTTP/1.1 POST with a chunked body, but it is
// written by hand on a connection of its own, so that the pump can write
// frames to the socket itself instead of handing them to net/http's writer.
func (p *trPeer) dial(u string) (*trConn, error) {
	deadline := time.Now().Add(p.timeouts.header)
	target, err := url.Parse(u + transportStreamPath)
	if err != nil {
		return nil, fmt.Errorf("parse stream URL %s: %w", u, err)
	}
	if (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return nil, fmt.Errorf("stream URL %s: want http(s)://host:port", u)
	}
	addr := target.Host
	if target.Port() == "" {
		addr = net.JoinHostPort(target.Hostname(), map[string]string{"http": "80", "https": "443"}[target.Scheme])
	}
	conn, err := p.t.dialer.DialContext(p.ctx, "tcp", addr)
	if err != nil {
		if p.ctx.Err() != nil {
			return nil, trErrStopped
		}
		return nil, fmt.Errorf("open raft stream to %s: %w", target, err)
	}
	sock := newTrSock(conn)
	c := &trConn{url: u, conn: sock, sock: sock, done: make(chan struct{})}
	c.unhook = context.AfterFunc(p.ctx, func() { _ = conn.Close() })
	if target.Scheme == "https" {
		ctx, cancel := context.WithDeadline(p.ctx, deadline)
		tc, err := p.t.tlsClient(ctx, sock, addr)
		cancel()
		if err != nil {
			c.close()
			if p.ctx.Err() != nil {
				return nil, trErrStopped
			}
			return nil, fmt.Errorf("open raft stream to %s: %w", target, err)
		}
		c.conn = tc
	}
	resp, err := p.handshake(c, target, deadline)
	if err != nil {
		c.close()
		if p.ctx.Err() != nil {
			return nil, trErrStopped
		}
		return nil, err
	}
	p.t.wg.Add(1)
	go func() {
		defer p.t.wg.Done()
		defer close(c.done)
		// The response carries nothing; it ends when the peer goes away.
		_, _ = io.Copy(io.Discard, resp.Body)
	}()
	return c, nil
}

// handshake writes the stream's request headers on c and reads the peer's
// answer, both before deadline. It returns the response once the peer
// accepted the stream; its body is to be read until the peer goes away.
func (p *trPeer) handshake(c *trConn, target *url.URL, deadline time.Time) (*http.Response, error) {
	_ = c.conn.SetDeadline(deadline)
	h := make(http.Header, 6)
	p.t.idHeaders(h, p.id)
	h.Set("User-Agent", "etcdlite")
	h.Set("Transfer-Encoding", "chunked")
	// A stream's connection is never reused. Saying so also keeps a
	// refusing server from first reading the body to its end (it never ends).
	h.Set("Connection", "close")
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\n", target.RequestURI(), target.Host)
	_ = h.Write(&b)
	b.WriteString("\r\n")
	timedOut := func(err error) error {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("post %s: no answer within %v", target, p.timeouts.header)
		}
		return err
	}
	if _, err := c.conn.Write(b.Bytes()); err != nil {
		return nil, timedOut(fmt.Errorf("send stream request to %s: %w", target, err))
	}
	req := &http.Request{Method: http.MethodPost, URL: target, Host: target.Host, Header: h}
	resp, err := http.ReadResponse(bufio.NewReaderSize(c.conn, 4096), req)
	if err != nil {
		return nil, timedOut(fmt.Errorf("read answer to stream request from %s: %w", target, err))
	}
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusGone {
			if f := p.t.onRemoved.Load(); f != nil {
				go (*f)()
			}
		}
		err := trStatusError(resp)
		_ = resp.Body.Close()
		return nil, err
	}
	_ = c.conn.SetDeadline(time.Time{})
	return resp, nil
}

// trStatusError turns a refusal into an error that carries the peer's text.
func trStatusError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Errorf("peer refused %s: %s: %s", resp.Request.URL.Path, resp.Status, strings.TrimSpace(string(b)))
}

// trBatch tallies one batch of messages written to a stream.
type trBatch struct {
	msgs, bytes, appends uint64
}

// pump writes queued messages to the stream until it breaks or the peer
// stops, and what Send left unwritten. It writes everything queued at once,
// in batches of at most transportMaxBatchBytes, each in chunks of about
// trChunkSize with one write call each.
func (p *trPeer) pump(c *trConn, out *[]byte) error {
	to := p.timeouts
	// An idle stream sends a keepalive at most to.keepalive after its last
	// write: the ticker runs twice as often and a tick sends one only if
	// nothing was written since the previous tick.
	tick := time.NewTicker(max(to.keepalive/2, time.Millisecond))
	defer tick.Stop()
	c.wmu.Lock()
	c.wrote = true
	c.wmu.Unlock()
	for {
		select {
		case <-p.ctx.Done():
			return trErrStopped
		case <-c.done:
			return trErrStreamClosed
		case <-p.urlc:
			if !p.hasURL(c.url) {
				return fmt.Errorf("peer URL %s is no longer listed", c.url)
			}
		case <-tick.C:
			c.wmu.Lock()
			var err error
			// Not in the middle of a chunk Send began: the pump writes its
			// rest first, as soon as it gets to it.
			if !c.wrote && c.pendingB.msgs == 0 {
				c.armDeadline(time.Now(), to.write)
				_, err = c.conn.Write(trKeepalive)
			}
			c.wrote = false
			c.wmu.Unlock()
			if err != nil {
				return fmt.Errorf("write keepalive: %w", trWriteErr(err))
			}
		case <-p.queue.wake:
			c.wmu.Lock()
			err := p.drain(c, out)
			c.wmu.Unlock()
			if err != nil {
				return err
			}
		}
	}
}

// drain writes, in order, the rest of a chunk Send began, the messages it
// left, and everything queued. c.wmu is held.
func (p *trPeer) drain(c *trConn, out *[]byte) error {
	now := time.Now()
	c.lastWrite = now
	if c.pendingB.msgs > 0 {
		c.armDeadline(now, p.timeouts.write)
		err := c.sock.flush()
		c.wrote = true
		if err != nil {
			return fmt.Errorf("write batch of %d messages: %w", c.pendingB.msgs, trWriteErr(err))
		}
		p.sent(c.pendingB, now)
		c.pendingB = trBatch{}
	}
	if len(c.carry) > 0 {
		err := p.send(c, out, c.carry)
		clear(c.carry)
		c.carry = c.carry[:0]
		if err != nil {
			return err
		}
	}
	msgs := p.queue.take()
	err := p.send(c, out, msgs)
	p.queue.giveBack(msgs)
	return err
}

// endConn marks c as no longer written to, and counts as lost what Send
// left on it unwritten.
func (p *trPeer) endConn(c *trConn) {
	c.wmu.Lock()
	c.ended = true
	lost := c.pendingB.msgs + uint64(len(c.carry))
	c.pendingB, c.carry, c.sendBuf = trBatch{}, nil, nil
	c.wmu.Unlock()
	if lost > 0 {
		p.drop(lost)
	}
	c.close()
}

// sent counts batch b, written to the stream at about now.
func (p *trPeer) sent(b trBatch, now time.Time) {
	if b.msgs == 0 {
		return
	}
	p.batches.Add(1)
	p.success.Add(b.msgs)
	p.sentBytes.Add(b.bytes)
	p.t.noteSent(now, b.msgs, b.bytes, b.appends)
}

// send writes msgs to the stream in batches of about
// transportMaxBatchBytes, each encoded into out and written in chunks of
// about trChunkSize, one write call each. Every batch is counted once
// written; on a failure, the rest of msgs is counted as lost with it.
func (p *trPeer) send(c *trConn, out *[]byte, msgs []raftpb.Message) error {
	for len(msgs) > 0 {
		now := time.Now()
		c.armDeadline(now, p.timeouts.write)
		var b trBatch
		var err error
		buf := trChunkStart(*out)
		i := 0
		for i < len(msgs) && b.bytes < transportMaxBatchBytes && err == nil {
			buf = p.encode(buf, &msgs[i], &b)
			i++
			if len(buf) >= trChunkRoom+trChunkSize {
				buf, err = c.writeChunk(buf)
			}
		}
		if err == nil && len(buf) > trChunkRoom {
			buf, err = c.writeChunk(buf)
		}
		if cap(buf) > transportKeepBufSize {
			buf = nil
		}
		*out = buf
		msgs = msgs[i:]
		if err != nil {
			p.drop(b.msgs + uint64(len(msgs)))
			return fmt.Errorf("write batch of %d messages: %w", b.msgs, err)
		}
		p.sent(b, now)
	}
	return nil
}

// encode appends m's frame to buf and counts it in b. A message that cannot
// be encoded is dropped.
func (p *trPeer) encode(buf []byte, m *raftpb.Message, b *trBatch) []byte {
	size := m.Size()
	if size > transportMaxFrameSize {
		slog.Error("raft transport: message too large, dropped", "local", idString(p.t.localID), "peer", idString(p.id), "type", m.Type.String(), "size", size)
		p.drop(1)
		return buf
	}
	off := len(buf)
	// Two bytes more of room for the CRLF that ends the chunk.
	buf = slices.Grow(buf, 8+size+2)[:off+8+size]
	binary.BigEndian.PutUint64(buf[off:], uint64(size))
	if _, err := m.MarshalToSizedBuffer(buf[off+8:]); err != nil {
		slog.Error("raft transport: cannot marshal message, dropped", "local", idString(p.t.localID), "peer", idString(p.id), "type", m.Type.String(), "err", err)
		p.drop(1)
		return buf[:off]
	}
	b.msgs++
	b.bytes += uint64(8 + size)
	if m.Type == raftpb.MsgApp {
		b.appends++
	}
	return buf
}

// runSnapshots sends MsgSnap messages one at a time on the snapshot path and
// reports each outcome to raft.
func (p *trPeer) runSnapshots() {
	defer p.t.wg.Done()
	for {
		var m raftpb.Message
		select {
		case <-p.ctx.Done():
			return
		case m = <-p.snapc:
		}
		size, err := p.sendSnapshot(&m)
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			p.fail.Add(1)
			slog.Warn("raft transport: snapshot to peer failed", "local", idString(p.t.localID), "peer", idString(p.id), "index", m.Snapshot.Metadata.Index, "err", err)
			p.t.raft.ReportSnapshot(p.id, raft.SnapshotFailure)
			continue
		}
		p.success.Add(1)
		p.sentBytes.Add(uint64(size))
		p.t.noteSent(time.Now(), 1, uint64(size), 0)
		slog.Info("raft transport: snapshot sent to peer", "local", idString(p.t.localID), "peer", idString(p.id), "index", m.Snapshot.Metadata.Index, "bytes", size)
		p.t.raft.ReportSnapshot(p.id, raft.SnapshotFinish)
	}
}

// sendSnapshot posts m to the peer's URLs in turn until one takes it.
func (p *trPeer) sendSnapshot(m *raftpb.Message) (int, error) {
	data, err := m.Marshal()
	if err != nil {
		return 0, fmt.Errorf("marshal snapshot message: %w", err)
	}
	urls := p.urlList()
	if len(urls) == 0 {
		return 0, errors.New("peer has no URLs")
	}
	var errs []error
	for _, u := range urls {
		err := p.postSnapshot(u, data)
		if err == nil {
			return len(data), nil
		}
		errs = append(errs, err)
		if p.ctx.Err() != nil {
			break
		}
	}
	return 0, errors.Join(errs...)
}

// postSnapshot makes one POST of a marshalled MsgSnap to base URL u.
func (p *trPeer) postSnapshot(u string, data []byte) error {
	ctx, cancel := context.WithTimeout(p.ctx, p.timeouts.snapshot)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u+transportSnapshotPath, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("build snapshot request for %s: %w", u, err)
	}
	p.t.idHeaders(req.Header, p.id)
	resp, err := p.t.snapClient.Do(req)
	if err != nil {
		return fmt.Errorf("send snapshot: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return trStatusError(resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	return nil
}

// ---- receiving side ----

// trInbound is one request being served: a peer's stream or snapshot.
type trInbound struct {
	from   uint64
	stream bool
	rc     *http.ResponseController
	ctx    context.Context
	cancel context.CancelFunc
	killed atomic.Bool
}

// kill ends the request: its context is cancelled and its blocked read
// returns. Call it with Transport.mu held, so that it never touches a
// request whose handler has returned.
func (in *trInbound) kill() {
	in.killed.Store(true)
	in.cancel()
	_ = in.rc.SetReadDeadline(time.Now())
}

// addInbound registers a request, or returns nil once the transport stopped.
// A new stream from a peer replaces the old one.
func (t *Transport) addInbound(r *http.Request, rc *http.ResponseController, from uint64, stream bool) *trInbound {
	ctx, cancel := context.WithCancel(r.Context())
	in := &trInbound{from: from, stream: stream, rc: rc, ctx: ctx, cancel: cancel}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		cancel()
		return nil
	}
	if stream {
		for old := range t.inbound {
			if old.stream && old.from == from {
				old.kill()
			}
		}
	}
	t.inbound[in] = struct{}{}
	t.inWG.Add(1)
	return in
}

// removeInbound unregisters a request whose handler is returning.
func (t *Transport) removeInbound(in *trInbound) {
	t.mu.Lock()
	delete(t.inbound, in)
	t.mu.Unlock()
	in.cancel()
	t.inWG.Done()
}

// Handler serves the peers' streams and snapshots. Mount it at "/raft" and
// "/raft/" on the peer listener (a prefix-stripped mount works as well).
// The listener's server must not need to wait for these requests to end
// before Stop: call Stop before shutting the server down.
func (t *Transport) Handler() http.Handler {
	return http.HandlerFunc(t.serveHTTP)
}

// serveHTTP routes a peer request after checking who sent it.
func (t *Transport) serveHTTP(w http.ResponseWriter, r *http.Request) {
	sub := strings.TrimPrefix(r.URL.Path, "/raft")
	if sub != "/stream" && sub != "/snapshot" {
		http.Error(w, "etcdlite: unknown raft transport path "+r.URL.Path, http.StatusNotFound)
		return
	}
	w.Header().Set(transportHeaderClusterID, idString(t.clusterID))
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "etcdlite: method not allowed", http.StatusMethodNotAllowed)
		return
	}
	from, ok := t.checkRequest(w, r)
	if !ok {
		return
	}
	if sub == "/stream" {
		t.serveStream(w, r, from)
	} else {
		t.serveSnapshot(w, r, from)
	}
}

// checkRequest validates the identifying headers and answers a refusal
// itself; it returns the sender's id.
func (t *Transport) checkRequest(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	refuse := func(code int, msg string) (uint64, bool) {
		t.logRefusal(r, code, msg)
		http.Error(w, msg, code)
		return 0, false
	}
	cid := r.Header.Get(transportHeaderClusterID)
	if cid == "" {
		return refuse(http.StatusPreconditionFailed, "etcdlite: missing "+transportHeaderClusterID+" header")
	}
	gotCluster, err := strconv.ParseUint(cid, 16, 64)
	if err != nil {
		return refuse(http.StatusBadRequest, fmt.Sprintf("etcdlite: malformed %s header %q", transportHeaderClusterID, cid))
	}
	if gotCluster != t.clusterID {
		return refuse(http.StatusPreconditionFailed, fmt.Sprintf("etcdlite: cluster ID mismatch: this member is in cluster %s, the request comes from cluster %s", idString(t.clusterID), idString(gotCluster)))
	}
	fh := r.Header.Get(transportHeaderFrom)
	from, err := strconv.ParseUint(fh, 16, 64)
	if err != nil || from == 0 {
		return refuse(http.StatusBadRequest, fmt.Sprintf("etcdlite: missing or malformed %s header %q", transportHeaderFrom, fh))
	}
	if th := r.Header.Get(transportHeaderTo); th != "" {
		to, err := strconv.ParseUint(th, 16, 64)
		if err != nil {
			return refuse(http.StatusBadRequest, fmt.Sprintf("etcdlite: malformed %s header %q", transportHeaderTo, th))
		}
		if to != t.localID {
			return refuse(http.StatusPreconditionFailed, fmt.Sprintf("etcdlite: member ID mismatch: this is member %s, the request is for member %s", idString(t.localID), idString(to)))
		}
	}
	t.mu.RLock()
	removed := t.removed[from]
	t.mu.RUnlock()
	if removed {
		return refuse(http.StatusGone, fmt.Sprintf("etcdlite: member %s was removed from cluster %s", idString(from), idString(t.clusterID)))
	}
	return from, true
}

// logRefusal logs a refused request, at Warn at most every ten seconds.
func (t *Transport) logRefusal(r *http.Request, code int, msg string) {
	now := time.Now().UnixNano()
	last := t.lastRefusalLog.Load()
	level := slog.LevelDebug
	if now-last > int64(10*time.Second) && t.lastRefusalLog.CompareAndSwap(last, now) {
		level = slog.LevelWarn
	}
	slog.Log(context.Background(), level, "raft transport: peer request refused", "local", idString(t.localID), "remote", r.RemoteAddr, "path", r.URL.Path, "code", code, "reason", msg)
}

// serveStream reads a peer's stream until it ends, handing each message to
// raft in order. One frame is in memory at a time.
func (t *Transport) serveStream(w http.ResponseWriter, r *http.Request, from uint64) {
	rc := http.NewResponseController(w)
	in := t.addInbound(r, rc, from, true)
	if in == nil {
		http.Error(w, "etcdlite: raft transport stopped", http.StatusServiceUnavailable)
		return
	}
	defer t.removeInbound(in)
	// Returning with unread body must not make the server drain it.
	defer func() { _ = rc.SetReadDeadline(time.Now()) }()
	// Reads interleave with the (empty) response; needed for HTTP/1.
	if err := rc.EnableFullDuplex(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		slog.Debug("raft transport: full duplex unavailable", "err", err)
	}
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", transportContentType)
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		slog.Debug("raft transport: cannot accept stream", "local", idString(t.localID), "peer", idString(from), "err", err)
		return
	}
	slog.Debug("raft transport: stream from peer accepted", "local", idString(t.localID), "peer", idString(from), "remote", r.RemoteAddr)
	err := t.readStream(in, r.Body)
	if in.killed.Load() {
		err = trErrStopped
	}
	slog.Debug("raft transport: stream from peer ended", "local", idString(t.localID), "peer", idString(from), "err", err)
}

// trStreamBody is a stream's request body as readStream reads it: the
// clock is read around each read from the network, not for every frame.
type trStreamBody struct {
	body        io.Reader
	in          *trInbound
	idle        time.Duration
	deadlineSet time.Time
	now         time.Time // when the last read returned
}

// Read reads from the body, first moving the idle deadline when it is due:
// a stream silent for too long (no keepalive) is dead. The deadline is moved
// only now and then, well before it expires.
func (b *trStreamBody) Read(p []byte) (int, error) {
	if now := time.Now(); now.Sub(b.deadlineSet) > min(time.Second, b.idle/4) {
		_ = b.in.rc.SetReadDeadline(now.Add(b.idle))
		b.deadlineSet = now
		if b.in.killed.Load() { // kill may have set its deadline before ours
			return 0, trErrStopped
		}
	}
	n, err := b.body.Read(p)
	b.now = time.Now()
	return n, err
}

// readStream is serveStream's loop; it returns why the stream ended.
func (t *Transport) readStream(in *trInbound, body io.Reader) error {
	sb := &trStreamBody{body: body, in: in, idle: t.timeouts.idle}
	br := bufio.NewReaderSize(sb, 64<<10)
	var hdr [8]byte
	var buf []byte
	peer := t.peer(in.from) // counts what it receives; nil for a peer not (yet) known
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return fmt.Errorf("read frame header: %w", err)
		}
		n := binary.BigEndian.Uint64(hdr[:])
		if n == 0 {
			continue // keepalive
		}
		if n > transportMaxFrameSize {
			slog.Warn("raft transport: oversized frame, closing stream", "local", idString(t.localID), "peer", idString(in.from), "size", n)
			return fmt.Errorf("frame of %d bytes exceeds the limit of %d", n, transportMaxFrameSize)
		}
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		frame := buf[:n]
		if _, err := io.ReadFull(br, frame); err != nil {
			return fmt.Errorf("read frame of %d bytes: %w", n, err)
		}
		var m raftpb.Message
		if err := m.Unmarshal(frame); err != nil { // copies what it keeps
			slog.Warn("raft transport: undecodable message, closing stream", "local", idString(t.localID), "peer", idString(in.from), "err", err)
			return fmt.Errorf("unmarshal message: %w", err)
		}
		if cap(buf) > transportKeepBufSize {
			buf = nil
		}
		if m.From != in.from && !t.relayed(&m) {
			slog.Warn("raft transport: message with a forged sender dropped", "local", idString(t.localID), "peer", idString(in.from), "from", idString(m.From), "type", m.Type.String())
			continue
		}
		t.noteReceived(&m, len(frame)+8, sb.now)
		if peer != nil {
			peer.recvBytes.Add(uint64(len(frame) + 8))
		}
		if err := t.raft.Process(in.ctx, m); err != nil {
			if in.ctx.Err() != nil {
				return fmt.Errorf("process %s: %w", m.Type, err)
			}
			slog.Debug("raft transport: raft refused message", "local", idString(t.localID), "peer", idString(in.from), "type", m.Type.String(), "err", err)
		}
	}
}

// relayed tells whether m, which came on another member's stream, is one
// that raft passes on for its sender: a follower forwards a proposal, a
// read-index request or a leadership transfer it received (or made) to the
// leader it knows, keeping the original From. Its sender must be a member
// this one knows (itself included: a proposal can come back to a member
// that has become the leader). Any other message must come from the
// member whose stream carries it.
func (t *Transport) relayed(m *raftpb.Message) bool {
	switch m.Type {
	case raftpb.MsgProp, raftpb.MsgReadIndex, raftpb.MsgTransferLeader:
	default:
		return false
	}
	if m.From == t.localID {
		return true
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.peers[m.From] != nil && !t.removed[m.From]
}

// serveSnapshot receives one MsgSnap and answers once raft has taken it.
func (t *Transport) serveSnapshot(w http.ResponseWriter, r *http.Request, from uint64) {
	rc := http.NewResponseController(w)
	in := t.addInbound(r, rc, from, false)
	if in == nil {
		http.Error(w, "etcdlite: raft transport stopped", http.StatusServiceUnavailable)
		return
	}
	defer t.removeInbound(in)
	_ = rc.SetReadDeadline(time.Time{}) // a snapshot may take long; kill still works
	if in.killed.Load() {
		http.Error(w, "etcdlite: raft transport stopped", http.StatusServiceUnavailable)
		return
	}
	if r.ContentLength > transportMaxSnapshotSize {
		http.Error(w, fmt.Sprintf("etcdlite: snapshot of %d bytes exceeds the limit of %d", r.ContentLength, transportMaxSnapshotSize), http.StatusRequestEntityTooLarge)
		return
	}
	var data []byte
	var err error
	if r.ContentLength >= 0 {
		data = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, data)
	} else {
		data, err = io.ReadAll(io.LimitReader(r.Body, transportMaxSnapshotSize+1))
		if err == nil && int64(len(data)) > transportMaxSnapshotSize {
			http.Error(w, "etcdlite: snapshot exceeds the size limit", http.StatusRequestEntityTooLarge)
			return
		}
	}
	if err != nil {
		slog.Warn("raft transport: cannot read snapshot", "local", idString(t.localID), "peer", idString(from), "err", err)
		http.Error(w, "etcdlite: cannot read snapshot: "+err.Error(), http.StatusBadRequest)
		return
	}
	var m raftpb.Message
	if err := m.Unmarshal(data); err != nil {
		http.Error(w, "etcdlite: cannot decode snapshot message: "+err.Error(), http.StatusBadRequest)
		return
	}
	if m.Type != raftpb.MsgSnap || m.From != from {
		http.Error(w, fmt.Sprintf("etcdlite: expected MsgSnap from %s, got %s from %s", idString(from), m.Type, idString(m.From)), http.StatusBadRequest)
		return
	}
	t.noteReceived(&m, len(data), time.Now())
	if p := t.peer(from); p != nil {
		p.recvBytes.Add(uint64(len(data)))
	}
	if err := t.raft.Process(in.ctx, m); err != nil {
		slog.Warn("raft transport: raft refused snapshot", "local", idString(t.localID), "peer", idString(from), "err", err)
		http.Error(w, "etcdlite: raft refused snapshot: "+err.Error(), http.StatusInternalServerError)
		return
	}
	slog.Info("raft transport: snapshot received", "local", idString(t.localID), "peer", idString(from), "index", m.Snapshot.Metadata.Index, "bytes", len(data))
	w.WriteHeader(http.StatusNoContent)
}

// ---- statistics ----

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
