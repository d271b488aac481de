// The stream writer's socket layer: HTTP/1.1 chunk framing done in place, the
// write deadline, and trSock, the connection wrapper that lets Send make one
// non-blocking write straight to the socket.

package main

import (
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

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
