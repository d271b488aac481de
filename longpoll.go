// longpoll.go owns parked long-poll watches: a one-shot wait=true GET whose
// headers are sent is taken out of net/http (hijacked) while it waits, so
// that a waiting watcher costs a small struct and two small goroutines
// instead of net/http's whole connection state (its serving goroutine,
// 4 kB read and write buffers, the response's 2 kB chunking buffer, the
// request); when its event comes, the answer is written as net/http would
// have ended it (the event as one chunk, then the last chunk) and the
// connection is handed back to the http.Server through its listener, which
// serves the connection's next requests as before. A plain connection is
// handed back once its next request begins (waiting for it as long as
// net/http's idle timeout), so that the header timeout runs from there; a
// TLS one likewise, its socket peeked at rather than read
// (longpoll_unix.go), so that it goes back as the *tls.Conn it is.

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"etcdlite/kv"
)

// parkedWriteTimeout bounds the write of a parked watch's answer, so that
// a client that reads nothing cannot hold it forever.
const parkedWriteTimeout = 30 * time.Second

// maxParkedPending is how many bytes a client may send ahead (a pipelined
// request) while its watch is parked before the connection is closed.
const maxParkedPending = 4 << 10

// aLongTimeAgo is a deadline in the past: it ends a blocked Read at once.
var aLongTimeAgo = time.Unix(1, 0)

// parkingListener is a listener that also returns connections handed
// back after a parked watch was answered, so that the http.Server serves
// their next requests.
type parkingListener struct {
	net.Listener
	conns chan net.Conn // accepted by the listener
	back  chan net.Conn // handed back
	errc  chan error
	done  chan struct{}
	once  sync.Once
}

// parkingKey is the request context key of the parkingListener a request
// came through.
type parkingKey struct{}

// newParkingListener wraps ln.
func newParkingListener(ln net.Listener) *parkingListener {
	l := &parkingListener{Listener: ln, conns: make(chan net.Conn), back: make(chan net.Conn),
		errc: make(chan error), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

// acceptLoop passes on what the listener accepts, errors included (the
// http.Server retries the temporary ones), until it is closed.
func (l *parkingListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case l.errc <- err:
			case <-l.done:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		select {
		case l.conns <- c:
		case <-l.done:
			c.Close()
			return
		}
	}
}

// Accept returns the next accepted or handed-back connection.
func (l *parkingListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.back:
		return c, nil
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and closes the listener.
func (l *parkingListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// giveBack hands c to the http.Server again; a closed listener closes it.
func (l *parkingListener) giveBack(c net.Conn) {
	select {
	case l.back <- c:
	case <-l.done:
		c.Close()
	}
}

// baseContext is the http.Server's BaseContext: requests know their
// listener.
func (l *parkingListener) baseContext(net.Listener) context.Context {
	return context.WithValue(context.Background(), parkingKey{}, l)
}

// parkWatch takes a one-shot watch whose headers are flushed out of
// net/http, and reports whether it did; it then answers the watch and
// unwatches it. It does not when the connection cannot be handed back as
// it is: not a bodiless HTTP/1.1 GET with keep-alive, not served through
// a parkingListener, or not hijackable (HTTP/2).
func (s *server) parkWatch(w http.ResponseWriter, r *http.Request, watcher *kv.Watcher) bool {
	pl, _ := r.Context().Value(parkingKey{}).(*parkingListener)
	// a body left unread would be taken for the next request: not those
	if pl == nil || r.Method != http.MethodGet || r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.Close || r.ContentLength != 0 {
		return false
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return false
	}
	c, rw, err := hj.Hijack()
	if err != nil {
		return false
	}
	p := &parkedWatch{s: s, pl: pl, c: c, watcher: watcher, read: make(chan error, 1)}
	if n := rw.Reader.Buffered(); n > 0 { // sent ahead by the client
		b, _ := rw.Reader.Peek(n)
		p.pending = append([]byte(nil), b...)
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		c.Close()
		s.store.Unwatch(watcher)
		return true
	}
	go p.wait()
	return true
}

// parkedWatch is a one-shot watch waiting outside net/http.
type parkedWatch struct {
	s       *server
	pl      *parkingListener
	c       net.Conn
	watcher *kv.Watcher
	pending []byte     // what the client sent ahead, for its next request
	b       [1]byte    // the reader's byte
	read    chan error // the reader's result: nil when it read a byte
}

// readOne is the reader: one byte, or the error that ends the connection
// (the client left), or the deadline that stops it.
func (p *parkedWatch) readOne() {
	n, err := p.c.Read(p.b[:])
	if n > 0 {
		err = nil
	}
	p.read <- err
}

// watchClient is the reader while the watch waits. Over TLS it first waits
// for the socket to bring something (peeked at, longpoll_unix.go), so that
// the waiting goroutine's stack stays small (a TLS read is deep), and only
// then reads, as readOne.
func (p *parkedWatch) watchClient() {
	if tc, ok := p.c.(*tls.Conn); ok {
		if err := awaitReadable(tc.NetConn()); err != nil && !errors.Is(err, errNoPeek) {
			p.read <- err
			return
		}
	}
	p.readOne()
}

// wait waits for the event, the client leaving or the member stopping,
// then answers.
func (p *parkedWatch) wait() {
	ev, ok, answer := p.waitEvent()
	p.s.store.Unwatch(p.watcher)
	if !answer {
		p.c.Close()
		return
	}
	p.answer(ev, ok)
}

// waitEvent returns the event (ok false when the watcher was dropped) and
// whether to answer; the reader is stopped when it returns.
func (p *parkedWatch) waitEvent() (ev *kv.Event, ok, answer bool) {
	go p.watchClient()
	for {
		select {
		case err := <-p.read:
			if err != nil { // the client left
				return nil, false, false
			}
			p.pending = append(p.pending, p.b[0])
			if len(p.pending) > maxParkedPending {
				return nil, false, false
			}
			go p.watchClient()
		case ev, ok = <-p.watcher.EventChan():
			// stop the reader, keeping a byte it may have read
			if err := p.c.SetReadDeadline(aLongTimeAgo); err != nil {
				p.c.Close() // ends the read
				<-p.read
				return nil, false, false
			}
			if err := <-p.read; err == nil {
				p.pending = append(p.pending, p.b[0])
			} else if !errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, false, false
			}
			if err := p.c.SetReadDeadline(time.Time{}); err != nil {
				return nil, false, false
			}
			return ev, ok, true
		case <-p.s.stopc:
			p.c.Close() // ends the read
			<-p.read
			return nil, false, false
		}
	}
}

// answer ends the chunked answer as net/http would have: the event (none
// when the watcher was dropped) as one chunk, then the last chunk; and
// hands the connection back.
func (p *parkedWatch) answer(ev *kv.Event, ok bool) {
	var b []byte
	if ok {
		body := ev.AppendJSON(make([]byte, 0, 256), keysPrefix, false)
		b = make([]byte, 0, len(body)+16)
		b = strconv.AppendInt(b, int64(len(body)), 16)
		b = append(b, "\r\n"...)
		b = append(b, body...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "0\r\n\r\n"...)
	if err := p.c.SetWriteDeadline(time.Now().Add(parkedWriteTimeout)); err != nil {
		p.c.Close()
		return
	}
	if _, err := p.c.Write(b); err != nil {
		p.c.Close()
		return
	}
	if err := p.c.SetWriteDeadline(time.Time{}); err != nil {
		p.c.Close()
		return
	}
	if _, isTLS := p.c.(*tls.Conn); isTLS {
		if len(p.pending) > 0 {
			// a wrapped TLS connection would lose its TLS state (and
			// its client certificate) in net/http's eyes: close it; the
			// answer is complete
			p.c.Close()
			return
		}
		// wait here for the next request to begin (without reading it:
		// the connection goes back as the *tls.Conn it is), so that the
		// header timeout runs from there, not from the answer
		if !p.awaitNextTLS() {
			p.c.Close()
			return
		}
		p.pl.giveBack(p.c)
		return
	}
	if len(p.pending) == 0 {
		// wait here, as net/http waits between requests (up to its idle
		// timeout), for the next request's first byte, so that the header
		// timeout runs from there
		if !p.awaitNext() {
			p.c.Close()
			return
		}
	}
	p.pl.giveBack(&prefixConn{Conn: p.c, prefix: p.pending})
}

// awaitNext waits for the client's next byte (into pending) for at most
// the idle timeout, and reports whether it came.
func (p *parkedWatch) awaitNext() bool {
	if err := p.c.SetReadDeadline(time.Now().Add(idleTimeout)); err != nil {
		return false
	}
	go p.readOne()
	select {
	case err := <-p.read:
		if err != nil || p.c.SetReadDeadline(time.Time{}) != nil {
			return false
		}
		p.pending = append(p.pending, p.b[0])
		return true
	case <-p.s.stopc:
		p.c.Close()
		<-p.read
		return false
	}
}

// awaitNextTLS waits, up to the idle timeout, until the TLS connection's
// socket has the client's next bytes, without reading them, and reports
// whether they came. Where a socket cannot be peeked at, it does not wait
// (the next request then has the header timeout to begin).
func (p *parkedWatch) awaitNextTLS() bool {
	tc, ok := p.c.(*tls.Conn)
	if !ok {
		return false
	}
	nc := tc.NetConn()
	if err := nc.SetReadDeadline(time.Now().Add(idleTimeout)); err != nil {
		return false
	}
	go func() { p.read <- awaitReadable(nc) }()
	select {
	case err := <-p.read:
		if err != nil && !errors.Is(err, errNoPeek) {
			return false // the idle timeout passed, or the connection failed
		}
		return nc.SetReadDeadline(time.Time{}) == nil
	case <-p.s.stopc:
		p.c.Close()
		<-p.read
		return false
	}
}

// prefixConn is a connection whose first bytes were read already.
type prefixConn struct {
	net.Conn
	prefix []byte
}

// Read returns the prefix first.
func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
