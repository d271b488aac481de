// connreaper.go owns the time limits of a served connection: a request's
// header must arrive within the header timeout of its first byte (of the
// connection's start, for its first request), a kept-alive connection may
// idle for the idle timeout between requests, and a write's body must
// arrive within the body timeout of its header (limits.go says when a
// body's clock runs).
//
// net/http's own ReadHeaderTimeout and IdleTimeout arm a runtime timer as
// a read deadline on every request and disarm it once the header is in:
// two timers armed and one disarmed per request, where a server without
// them only clears deadlines that are not set. Here one goroutine per
// server enforces both limits from a coarse clock, and a request costs two
// ConnState calls and an atomic load per read. Measured against the build
// before it on one member (12 s of wrk, /proc CPU per request, four and
// three interleaved rounds, 2026-12-02): 2.4% less CPU per read under 64
// readers (9.87 against 10.12 µs) and about 1.3% less per write under 256
// writers (20.66 against 20.98 µs); under 64 writers within the noise.
//
// A body's limit was a read deadline set as the handler began and lifted at
// the body's end, two timers armed per write; here the reaper sets a past
// read deadline only on a body that is late, so that its read fails as the
// deadline's did. CPU profiles of one member under 256 writers (11 s,
// 2026-12-03): the body's limit took 2.8% of a write's CPU before
// (limitRequests' own work, nearly all of it the two deadlines), 0.6%
// after; the runtime's deadline work fell from 2.9% to 1.6% (what is left
// is net/http's own). CPU per write from /proc, six interleaved runs each:
// medians 59.8 and 59.7 µs at 256 writers, 60.9 and 57.9 at 64 (three),
// inside this machine's noise.

package main

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// connReaper closes the connections of one listener that exceed the
// header or idle limit. Its clock is a count of ticks (epochs): a
// connection's phase records the epoch it began in, and so began before
// the next epoch did, from which the reaper counts its limit; a limit
// never ends early, even when the reaper's goroutine runs late.
type connReaper struct {
	header, idle, body, tick time.Duration
	epoch                    atomic.Int64 // the ticks so far

	starts []int64 // when each of the last len(starts) epochs began (unix ns), at epoch % len; the reaper's goroutine's alone

	mu    sync.Mutex
	conns map[*reapedConn]struct{} // the open connections
	stop  chan struct{}
	once  sync.Once
}

// The phases of a reapedConn, in the low bits of its state (the epoch the
// phase began in above them).
const (
	phaseNone     = 0 // in a request, or taken over: no limit
	phaseHeader   = 1 // a request's header is on its way
	phaseIdle     = 2 // between requests
	phaseClosing  = 3 // the reaper is closing it
	phaseBody     = 4 // a write's body is on its way
	phaseBodyLate = 5 // its body was late: reads fail until it ends
	phaseBits     = 3
	phaseMask     = 1<<phaseBits - 1
)

// newConnReaper starts a reaper for the given limits; its tick is a
// quarter of the shortest one, at most a second, and it remembers the
// starts of enough epochs to time the longest one twice over.
func newConnReaper(header, idle, body time.Duration) *connReaper {
	tick := min(header, idle, body, 4*time.Second) / 4
	r := &connReaper{header: header, idle: idle, body: body, tick: tick,
		starts: make([]int64, 2*int(max(header, idle, body)/tick)+2),
		conns:  map[*reapedConn]struct{}{}, stop: make(chan struct{})}
	r.starts[0] = time.Now().UnixNano()
	go r.run()
	return r
}

// run ticks until stopped, closing what is late at each tick.
func (r *connReaper) run() {
	t := time.NewTicker(r.tick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.reap(time.Now().UnixNano()) // not the tick's time: this goroutine may run late
		case <-r.stop:
			return
		}
	}
}

// reap begins a new epoch at now, closes the connections past their
// header or idle limit and fails the reads of bodies past theirs.
func (r *connReaper) reap(now int64) {
	k := r.epoch.Load() + 1
	n := int64(len(r.starts))
	r.starts[k%n] = now
	r.epoch.Store(k)
	oldest := r.starts[(k+1)%n] // epoch k-n+1's start (0 until the ring is full)
	late := func(state int64) bool {
		phase, e := state&phaseMask, state>>phaseBits
		var limit time.Duration
		switch phase {
		case phaseHeader:
			limit = r.header
		case phaseIdle:
			limit = r.idle
		case phaseBody:
			limit = r.body
		default:
			return false
		}
		if e+1 >= k {
			return false // began in the epoch just ended: too recent to tell
		}
		begun := oldest // began before every epoch remembered
		if k-(e+1) < n {
			begun = r.starts[(e+1)%n]
		}
		return now-begun >= int64(limit)
	}
	var closing []*reapedConn
	var slow []lateBody
	r.mu.Lock()
	for c := range r.conns {
		state := c.state.Load()
		switch {
		case !late(state):
		case state&phaseMask == phaseBody:
			slow = append(slow, lateBody{c, state})
		case c.state.CompareAndSwap(state, phaseClosing):
			closing = append(closing, c)
		}
	}
	r.mu.Unlock()
	for _, b := range slow {
		b.c.bodyLate(b.state)
	}
	for _, c := range closing {
		slog.Debug("closed a connection past its header or idle time", "remote", c.RemoteAddr())
		if err := c.Close(); err != nil {
			slog.Debug("close a late connection", "remote", c.RemoteAddr(), "err", err)
		}
	}
}

// begin is the state of a phase beginning now.
func (r *connReaper) begin(phase int64) int64 {
	return r.epoch.Load()<<phaseBits | phase
}

// connState is the http.Server's ConnState hook: it sets the deadline of
// the connection for its new state.
func (r *connReaper) connState(nc net.Conn, state http.ConnState) {
	c := reapedOf(nc)
	if c == nil {
		return
	}
	switch state {
	case http.StateNew: // served now (after a TLS handshake, or handed back by a parked watch)
		c.state.Store(r.begin(phaseHeader))
	case http.StateActive, http.StateHijacked: // the header is in, or the connection taken over
		c.state.Store(phaseNone)
	case http.StateIdle: // between requests: the next one's first byte starts its header clock
		if c.state.Load()&phaseMask >= phaseBody {
			c.endBody() // its body was read (net/http reuses no connection otherwise)
		}
		c.state.Store(r.begin(phaseIdle))
	}
}

// listen wraps a listener so that its connections are watched; closing
// it stops the reaper.
func (r *connReaper) listen(ln net.Listener) net.Listener {
	return &reapingListener{Listener: ln, r: r}
}

// reapingListener is a listener whose connections a connReaper watches.
type reapingListener struct {
	net.Listener
	r *connReaper
}

// Accept watches the connection it returns (with no limit until the
// http.Server takes it: a TLS handshake has a limit of its own).
func (l *reapingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &reapedConn{Conn: nc, r: l.r}
	l.r.mu.Lock()
	l.r.conns[c] = struct{}{}
	l.r.mu.Unlock()
	return c, nil
}

// Close closes the listener and stops the reaper.
func (l *reapingListener) Close() error {
	l.r.once.Do(func() { close(l.r.stop) })
	return l.Listener.Close()
}

// reapedConn is a connection a connReaper watches.
type reapedConn struct {
	net.Conn
	r      *connReaper
	state  atomic.Int64 // its phase, and the epoch that began in
	closed atomic.Bool
	bodyMu sync.Mutex // orders a body's end with the reaper's deadline for it
}

// beginBody starts the clock of a request's body: a read of it past the
// body limit fails as a read past a deadline does.
func (c *reapedConn) beginBody() {
	c.state.Store(c.r.begin(phaseBody))
}

// endBody stops the clock of a body read to its end, lifting the deadline
// the reaper may have set just as it ended.
func (c *reapedConn) endBody() {
	c.bodyMu.Lock()
	defer c.bodyMu.Unlock()
	switch c.state.Load() & phaseMask {
	case phaseBody:
		c.state.Store(phaseNone)
	case phaseBodyLate:
		if err := c.Conn.SetReadDeadline(time.Time{}); err != nil {
			slog.Debug("lift a body's deadline", "remote", c.RemoteAddr(), "err", err)
		}
		c.state.Store(phaseNone)
	}
}

// lateBody is a connection whose body the reaper found late, in the state
// it found it in.
type lateBody struct {
	c     *reapedConn
	state int64
}

// bodyLate fails the reads of a body past its limit with a deadline in the
// past, unless the connection left the state the reaper found it in (the
// body ended). The deadline stays until the body ends, so that net/http's
// draining of the rest cannot wait forever either.
func (c *reapedConn) bodyLate(state int64) {
	c.bodyMu.Lock()
	defer c.bodyMu.Unlock()
	if c.state.Load() != state {
		return
	}
	slog.Debug("failed the reads of a body past its time", "remote", c.RemoteAddr())
	if err := c.Conn.SetReadDeadline(time.Unix(1, 0)); err != nil {
		slog.Debug("set a late body's deadline", "remote", c.RemoteAddr(), "err", err)
	}
	c.state.Store(phaseBodyLate)
}

// Read reads, and starts the header clock when an idle connection's next
// request begins (net/http reads no byte between requests but the next
// request's).
func (c *reapedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		if state := c.state.Load(); state&phaseMask == phaseIdle {
			c.state.CompareAndSwap(state, c.r.begin(phaseHeader))
		}
	}
	return n, err
}

// Close closes the connection and forgets it.
func (c *reapedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.r.mu.Lock()
		delete(c.r.conns, c)
		c.r.mu.Unlock()
	}
	return c.Conn.Close()
}

// errNoSocket is what SyscallConn returns for a connection that is no
// socket.
var errNoSocket = errors.New("the connection is no socket")

// SyscallConn gives the socket's raw connection (longpoll_unix.go peeks at
// it), as the connection it wraps does.
func (c *reapedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errNoSocket
	}
	return sc.SyscallConn()
}

// reapedOf is the watched connection under what the http.Server serves:
// itself, a TLS connection over it, or a parked watch's handed-back
// connection; nil for any other.
func reapedOf(nc net.Conn) *reapedConn {
	for {
		switch c := nc.(type) {
		case *reapedConn:
			return c
		case *tls.Conn:
			nc = c.NetConn()
		case *prefixConn:
			nc = c.Conn
		default:
			return nil
		}
	}
}

// CloseWrite shuts the sending side down, as the connection it wraps
// does: net/http does so before it closes a connection whose request it
// refused, so that the client reads the refusal rather than a reset.
func (c *reapedConn) CloseWrite() error {
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok {
		return errNoSocket
	}
	return cw.CloseWrite()
}
