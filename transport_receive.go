// The transport's receiving side: the /raft handler, the identity checks on
// every peer request (cluster, sender, recipient, removed members), the
// inbound streams read frame by frame and delivered to raft.

package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

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
