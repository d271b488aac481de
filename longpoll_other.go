//go:build !unix

// This file owns waiting for a parked watch's TLS connection to bring its
// next request where a socket cannot be peeked at: it does not wait.

package main

import (
	"errors"
	"net"
)

// errNoPeek says the connection's socket cannot be peeked at.
var errNoPeek = errors.New("the connection's socket cannot be peeked at")

// awaitReadable cannot wait without reading here: errNoPeek (the
// connection is then handed back at once).
func awaitReadable(net.Conn) error { return errNoPeek }
