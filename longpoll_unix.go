//go:build unix

// This file owns waiting, without reading, for a parked watch's TLS
// connection to bring its next request (Unix systems: a peek at the socket).

package main

import (
	"errors"
	"net"
	"syscall"
)

// errNoPeek says the connection's socket cannot be peeked at.
var errNoPeek = errors.New("the connection's socket cannot be peeked at")

// awaitReadable blocks until nc's socket has a byte to read or its end
// (peeked at, nothing consumed), or nc's read deadline passes, or nc is
// closed (the error then). errNoPeek when nc is no socket.
func awaitReadable(nc net.Conn) error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return errNoPeek
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return errors.Join(errNoPeek, err)
	}
	var b [1]byte
	return rc.Read(func(fd uintptr) bool {
		for {
			// the socket is non-blocking: EAGAIN when there is nothing
			_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
			switch {
			case errors.Is(err, syscall.EINTR):
				continue
			case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK):
				return false // wait until it is readable, then peek again
			default:
				return true // a byte, the end, or an error net/http will meet
			}
		}
	})
}
