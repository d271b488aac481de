// The transport's sending side: each peer's bounded queue, Send's direct
// write when the stream is idle, and the stream goroutine that dials,
// writes the request by hand and pumps batches of frames to the peer.

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

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
