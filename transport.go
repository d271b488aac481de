// The peer transport's API and peers: raft messages between members over
// HTTP, the Transport type, adding and removing peers, Send, and the
// reports of lost messages to raft. The sending streams are in
// transport_stream.go and transport_sock.go, receiving in
// transport_receive.go, snapshots in transport_snapshot.go, the counters in
// stats.go.

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
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// idHeaders puts the identifying headers of a request to member to in h.
func (t *Transport) idHeaders(h http.Header, to uint64) {
	h.Set(transportHeaderClusterID, idString(t.clusterID))
	h.Set(transportHeaderFrom, idString(t.localID))
	h.Set(transportHeaderTo, idString(to))
	h.Set("Content-Type", transportContentType)
}

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
