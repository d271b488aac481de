// limits.go owns what keeps one bad client from hurting the others: how
// long a request's header and body may take to arrive, how large its
// request line, header and body may be, how many large bodies the member
// holds at once, and how much of them the raft loop takes in one pass.
package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

const (
	// readHeaderTimeout bounds how long a connection may take to send a
	// request's header (or, kept alive, to start the next one): a client
	// that trickles its header a byte at a time is cut off.
	readHeaderTimeout = 20 * time.Second
	// idleTimeout is how long a kept-alive connection may sit between
	// requests. Long-poll watches and streams are requests in progress,
	// not idle, and are not bounded by it.
	idleTimeout = 5 * time.Minute
	// maxHeaderBytes is the most a request's header may take, as in etcd
	// (net/http's default): larger is 431 Request Header Fields Too Large.
	maxHeaderBytes = 1 << 20
	// bodyReadTimeout bounds how long a write's body may take to arrive
	// once its header has: a body shorter than its Content-Length does not
	// hold a handler forever.
	bodyReadTimeout = 60 * time.Second
	// maxRequestLine is the longest request line (method, target and
	// protocol) etcd 3.4 serves: it cuts the connection on a longer one.
	// It bounds a key's length (and so its depth) too: keys are in the URL.
	maxRequestLine = 4094
	// largeBody is the body size from which a request takes its share of
	// largeBodyBudget before it is read.
	largeBody = 1 << 20
	// largeBodyBudget is how many bytes of large bodies the member takes
	// in at once; more wait for their turn (at most a request timeout).
	largeBodyBudget = 32 << 20
	// maxBatchBytes is how many bytes of proposals the raft loop takes in
	// one pass (one larger proposal alone), so that a burst of large values
	// cannot make one Ready, and what waits behind it, arbitrarily slow.
	maxBatchBytes = 8 << 20
)

// bodyTimeout is how long a write's body may take to arrive.
func (s *server) bodyTimeout() time.Duration {
	if s.cfg.hooks.bodyTimeout > 0 {
		return s.cfg.hooks.bodyTimeout
	}
	return bodyReadTimeout
}

// reapedConnKey is the context key of the watched connection a request
// came on (withReapedConn).
type reapedConnKey struct{}

// withReapedConn is an http.Server's ConnContext: it gives the requests of
// a watched connection the connection, whose reaper times their bodies.
func withReapedConn(ctx context.Context, nc net.Conn) context.Context {
	if c := reapedOf(nc); c != nil {
		return context.WithValue(ctx, reapedConnKey{}, c)
	}
	return ctx
}

// limitServer sets the limits of an http.Server that serves clients or
// peers, and returns its listener ln watched for the header, idle and body
// limits (connreaper.go): a TLS listener goes over what it returns.
func (s *server) limitServer(srv *http.Server, ln net.Listener) net.Listener {
	header := readHeaderTimeout
	if s.cfg.hooks.headerTimeout > 0 {
		header = s.cfg.hooks.headerTimeout
	}
	reaper := newConnReaper(header, idleTimeout, s.bodyTimeout())
	srv.ConnState = reaper.connState
	srv.ConnContext = withReapedConn
	srv.MaxHeaderBytes = maxHeaderBytes
	return reaper.listen(ln)
}

// proposalsWithin is how many of the first proposals fit in max bytes,
// at least one.
func proposalsWithin(props []proposal, max int) int {
	size := 0
	for i, p := range props {
		size += len(p.data)
		if size > max && i > 0 {
			return i
		}
	}
	return len(props)
}

// limitRequests refuses client requests whose request line is longer than
// etcd serves, bounds the time a write's body may take to arrive, and
// makes large bodies wait for a share of the member's budget for them.
func (s *server) limitRequests(next http.Handler) http.Handler {
	budget := newByteBudget(largeBodyBudget)
	bodyTimeout := s.bodyTimeout()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.Method)+len(r.RequestURI)+len(r.Proto)+2 > maxRequestLine {
			slog.Warn("refused a client request with a request line longer than etcd serves",
				"remote", r.RemoteAddr, "method", r.Method, "length", len(r.RequestURI))
			http.Error(w, "request line too long: at most 4094 bytes (method, URL and protocol)", http.StatusRequestURITooLong)
			return
		}
		if r.ContentLength == 0 || (r.Method != http.MethodPut && r.Method != http.MethodPost && r.Method != http.MethodPatch) {
			next.ServeHTTP(w, r)
			return
		}
		if c, ok := r.Context().Value(reapedConnKey{}).(*reapedConn); ok {
			// the connection's reaper times the body (connreaper.go)
			db := &deadlineBody{body: r.Body, conn: c}
			c.beginBody()
			r.Body = db
			defer db.unwrap(r)
		} else {
			// served on a listener without a reaper: a deadline of its own
			db := &deadlineBody{body: r.Body, rc: *http.NewResponseController(w)} // one allocation for both
			if err := db.rc.SetReadDeadline(time.Now().Add(bodyTimeout)); err == nil {
				r.Body = db
				defer db.unwrap(r)
			} else if !errors.Is(err, http.ErrNotSupported) {
				slog.Warn("set a deadline for a request body", "remote", r.RemoteAddr, "err", err)
			}
		}
		if n := bodyWeight(r.ContentLength); n > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), s.requestTimeout())
			err := budget.acquire(ctx, n)
			cancel()
			if err != nil {
				slog.Warn("a large request waited too long for other large requests to finish",
					"remote", r.RemoteAddr, "bytes", r.ContentLength)
				s.writeError(w, errTimeout)
				return
			}
			defer budget.release(n)
		}
		next.ServeHTTP(w, r)
	})
}

// bodyWeight is the share of the large-body budget a body of the given
// Content-Length takes: nothing for a small one, nor for one announced
// over maxFormBody (refused unread, form.go), its length for a large one,
// and the most a form may be for one of unknown length (chunked).
func bodyWeight(contentLength int64) int64 {
	switch {
	case contentLength < 0:
		return maxFormBody + 1
	case contentLength < largeBody, contentLength > maxFormBody:
		return 0
	}
	return contentLength
}

// deadlineBody is a request body read under a deadline, which is lifted
// once the body has been read to its end: what follows (a watch's wait,
// net/http's check for the client going away) has none.
type deadlineBody struct {
	body io.ReadCloser
	conn *reapedConn             // whose reaper keeps the limit, or nil
	rc   http.ResponseController // without one: sets the deadline
	done bool
}

// Read implements io.Reader.
func (d *deadlineBody) Read(p []byte) (int, error) {
	n, err := d.body.Read(p)
	// only at the end: after a timeout the deadline stays, so that
	// net/http's draining of the rest cannot wait forever either
	if err == io.EOF && !d.done {
		d.done = true
		if d.conn != nil {
			d.conn.endBody()
		} else if derr := d.rc.SetReadDeadline(time.Time{}); derr != nil {
			slog.Debug("lift a request body's deadline", "err", derr)
		}
	}
	return n, err
}

// Close implements io.Closer.
func (d *deadlineBody) Close() error { return d.body.Close() }

// unwrap gives r its own body back once the handler is done, closed if it
// was read to its end: net/http then knows there is nothing left to drain,
// where behind a wrapper it would copy the rest to io.Discard (1.2% of a
// write's CPU in a profile under 64 writing clients). A body not read to
// its end is drained by net/http as before, under the deadline.
func (d *deadlineBody) unwrap(r *http.Request) {
	r.Body = d.body
	if d.done {
		if err := d.body.Close(); err != nil {
			slog.Debug("close a request body read to its end", "err", err)
		}
	}
}

// byteBudget is a weighted semaphore over bytes, granted in arrival order.
type byteBudget struct {
	mu      sync.Mutex
	size    int64
	free    int64
	waiters []*budgetWaiter
}

// budgetWaiter is a request waiting for n bytes of a budget.
type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed once granted
}

// newByteBudget returns a budget of size bytes, all free.
func newByteBudget(size int64) *byteBudget { return &byteBudget{size: size, free: size} }

// acquire takes n bytes (at most the whole budget), waiting behind
// earlier requests until they are free or ctx ends.
func (b *byteBudget) acquire(ctx context.Context, n int64) error {
	n = min(n, b.size)
	b.mu.Lock()
	if len(b.waiters) == 0 && b.free >= n {
		b.free -= n
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	for i, x := range b.waiters {
		if x == w {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			b.grant() // those behind it may fit now
			b.mu.Unlock()
			return ctx.Err()
		}
	}
	b.mu.Unlock()
	b.release(n) // granted meanwhile: give it back
	return ctx.Err()
}

// release gives back n bytes taken by acquire.
func (b *byteBudget) release(n int64) {
	n = min(n, b.size)
	b.mu.Lock()
	b.free += n
	b.grant()
	b.mu.Unlock()
}

// grant wakes the waiters at the head of the line that fit; b.mu is held.
func (b *byteBudget) grant() {
	for len(b.waiters) > 0 && b.free >= b.waiters[0].n {
		w := b.waiters[0]
		b.waiters = b.waiters[1:]
		b.free -= w.n
		close(w.ready)
	}
}
