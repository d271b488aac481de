// The proxy's HTTP transports: to the members' client URLs and to the peers
// for their member lists, with etcd's dial, read and write timeouts and TLS
// where the URLs are https, and the errors a failed dial or handshake gives.

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// isDialError tells whether err happened before any byte of the request
// was sent: dialing, or the TLS handshake.
func isDialError(err error) bool {
	var op *net.OpError
	var hs *handshakeError
	return (errors.As(err, &op) && op.Op == "dial") || errors.As(err, &hs)
}

// handshakeError is a failed TLS handshake with a member or peer: no byte
// of a request was sent.
type handshakeError struct {
	addr string
	err  error
}

// Error says with whom the handshake failed.
func (e *handshakeError) Error() string { return "TLS handshake with " + e.addr + ": " + e.err.Error() }

// Unwrap returns the handshake's error.
func (e *handshakeError) Unwrap() error { return e.err }

// setupTransports makes the proxy's TLS and its transports, as etcd's
// proxy does: to the members with the client TLS (--cert-file and
// --key-file as the client certificate, --trusted-ca-file for theirs), or
// the peer TLS when no client certificate is given, and to the peers (for
// the member list) with the peer TLS. Unlike etcd, a --trusted-ca-file
// given without a certificate is still used to check the members'.
func (p *proxy) setupTransports() error {
	setup, err := newTLSSetup(p.cfg)
	if err != nil {
		return err
	}
	p.tls = setup
	dial, read, write := ms(p.cfg.ProxyDialTimeoutMs), ms(p.cfg.ProxyReadTimeoutMs), ms(p.cfg.ProxyWriteTimeoutMs)
	var members func(string) (*tls.Config, error)
	switch sec := p.cfg.ClientTLS; {
	case setup.client != nil: // https listeners: the side is read already
		members = setup.client.clientConfig
	case sec.hasCert():
		ciphers, _ := tlsCipherSuites(p.cfg.CipherSuites) // newTLSSetup checked them
		side := &tlsSide{name: "client", sec: sec, ciphers: ciphers, now: time.Now}
		if err := side.refresh(); err != nil {
			return fmt.Errorf("client TLS: %w", err)
		}
		members = side.clientConfig
	case setup.peer != nil:
		members = setup.peer.clientConfig
	case sec.TrustedCAFile != "":
		if _, err := loadCertPool(sec.TrustedCAFile); err != nil {
			return fmt.Errorf("client TLS: %w", err)
		}
		members = func(host string) (*tls.Config, error) {
			pool, err := loadCertPool(sec.TrustedCAFile)
			if err != nil {
				return nil, err
			}
			return &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host, RootCAs: pool, NextProtos: []string{"http/1.1"}}, nil
		}
	}
	p.transport = withTLS(newTimeoutTransport(dial, read, write), members)
	var peers func(string) (*tls.Config, error)
	if setup.peer != nil {
		peers = setup.peer.clientConfig
	}
	p.peerClient = withTLS(newTimeoutTransport(dial, read, write), peers)
	return nil
}

// withTLS makes tr reach https URLs with the configuration conf gives for
// each host, asked for every new connection so that rotated files are
// used; with a nil conf, tr keeps Go's (the system's roots, no client
// certificate).
func withTLS(tr *http.Transport, conf func(host string) (*tls.Config, error)) *http.Transport {
	if conf == nil {
		return tr
	}
	dial := tr.DialContext
	tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		tc, err := conf(host)
		if err != nil {
			return nil, &handshakeError{addr: addr, err: err}
		}
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		conn := tls.Client(c, tc)
		if err := conn.HandshakeContext(ctx); err != nil {
			_ = c.Close()
			return nil, &handshakeError{addr: addr, err: err}
		}
		return conn, nil
	}
	return tr
}

// newTimeoutTransport is the proxy's transport to the members: dials give
// up after dial, and every read or write on a connection after read or
// write (0: no limit; a read limit would cut long-poll watches).
func newTimeoutTransport(dial, read, write time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if read == 0 && write == 0 {
				return c, nil
			}
			return &timeoutConn{Conn: c, read: read, write: write}, nil
		},
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
	}
}

// timeoutConn sets a deadline before every read and write.
type timeoutConn struct {
	net.Conn
	read, write time.Duration
}

// Read reads with the read deadline.
func (c *timeoutConn) Read(b []byte) (int, error) {
	if c.read > 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.read)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(b)
}

// Write writes with the write deadline.
func (c *timeoutConn) Write(b []byte) (int, error) {
	if c.write > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.write)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(b)
}
