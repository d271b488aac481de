// connreaper_test.go checks the header and idle limits of connreaper.go on
// real connections, plain and TLS.

package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestConnReaperLimits serves a handler behind a connReaper with short
// limits and checks, for each way a client may behave, whether and when
// its connection is closed: never before its limit, soon after it.
func TestConnReaperLimits(t *testing.T) {
	const header, idle = 150 * time.Millisecond, 1500 * time.Millisecond
	const request = "GET /x HTTP/1.1\r\nHost: x\r\n\r\n"
	const slowRequest = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
	pki := newTestPKI(t)
	ca := pki.newCA("reaper CA")
	leaf := pki.leaf("reaper", leafOpts{cn: "reaper", ca: ca})
	cert, err := tls.LoadX509KeyPair(leaf.cert, leaf.key)
	if err != nil {
		t.Fatal(err)
	}
	for _, secure := range []bool{false, true} {
		reaper := newConnReaper(header, idle, time.Minute)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" { // a request in progress far beyond both limits
				time.Sleep(idle + 2*header)
			}
			io.WriteString(w, "ok")
		}), ConnState: reaper.connState}
		raw, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln := reaper.listen(raw)
		if secure {
			ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
		}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		dial := func(t *testing.T) net.Conn {
			var c net.Conn
			var err error
			if secure {
				c, err = tls.Dial("tcp", raw.Addr().String(), &tls.Config{InsecureSkipVerify: true})
			} else {
				c, err = net.Dial("tcp", raw.Addr().String())
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		}
		// ask sends a whole request and reads its answer.
		ask := func(t *testing.T, c net.Conn, br *bufio.Reader, req string) {
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatalf("send %q: %v", req, err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("answer to %q: %v", req, err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(b) != "ok" {
				t.Fatalf("answer to %q: %d %q", req, resp.StatusCode, b)
			}
		}
		cases := []struct {
			name string
			// client behaves on a connection dialed at dialed, and returns
			// when the limit starts to run and how long it is (0: the
			// connection must stay open)
			client func(t *testing.T, c net.Conn, br *bufio.Reader, dialed time.Time) (time.Time, time.Duration)
			within time.Duration // the latest the connection may be closed, after its limit started
		}{
			{"nothing sent", func(t *testing.T, c net.Conn, br *bufio.Reader, dialed time.Time) (time.Time, time.Duration) {
				return dialed, header
			}, header + time.Second},
			{"first header trickled", func(t *testing.T, c net.Conn, br *bufio.Reader, dialed time.Time) (time.Time, time.Duration) {
				io.WriteString(c, "GET /x HTTP/1.1\r\n")
				return dialed, header // the first request's clock runs from the connection's start
			}, header + time.Second},
			{"idle past the header limit, then closed after the idle limit", func(t *testing.T, c net.Conn, br *bufio.Reader, dialed time.Time) (time.Time, time.Duration) {
				ask(t, c, br, request)
				time.Sleep(3 * header)
				ask(t, c, br, request)
				return time.Now(), idle
			}, idle + time.Second},
			{"a header trickled after an idle spell has the header limit", func(t *testing.T, c net.Conn, br *bufio.Reader, dialed time.Time) (time.Time, time.Duration) {
				ask(t, c, br, request)
				time.Sleep(idle / 2)
				start := time.Now()
				io.WriteString(c, "GET /x HTTP/1.1\r\n")
				return start, header
			}, idle / 2}, // an idle clock still running would close it only after that
			{"a request in progress has no limit", func(t *testing.T, c net.Conn, br *bufio.Reader, dialed time.Time) (time.Time, time.Duration) {
				ask(t, c, br, slowRequest)
				ask(t, c, br, request)
				return time.Time{}, 0
			}, 0},
		}
		for _, tc := range cases {
			t.Run(map[bool]string{false: "plain/", true: "tls/"}[secure]+tc.name, func(t *testing.T) {
				t.Parallel()
				dialed := time.Now()
				c := dial(t)
				br := bufio.NewReader(c)
				if secure { // the handshake, before the server takes the connection
					if err := c.(*tls.Conn).Handshake(); err != nil {
						t.Fatal(err)
					}
				}
				start, limit := tc.client(t, c, br, dialed)
				if limit == 0 {
					return
				}
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err := br.ReadByte()
				took := time.Since(start)
				var ne net.Error
				switch {
				case errors.As(err, &ne) && ne.Timeout():
					t.Fatalf("still open after %v, want closed after %v", took, limit)
				case err == nil:
					t.Fatalf("an answer after %v, want the connection closed", took)
				case took < limit:
					t.Fatalf("closed after %v, before its limit of %v", took, limit)
				case took > tc.within:
					t.Errorf("closed only after %v, limit %v", took, limit)
				}
			})
		}
	}
}

// TestConnReaperForgetsClosed checks that a reaper forgets the connections
// that were closed, by whichever side, and stops with its listener.
func TestConnReaperForgetsClosed(t *testing.T) {
	reaper := newConnReaper(time.Second, time.Second, time.Second)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}), ConnState: reaper.connState}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(reaper.listen(raw))
	defer srv.Close()
	tracked := func() int {
		reaper.mu.Lock()
		defer reaper.mu.Unlock()
		return len(reaper.conns)
	}
	for i := range 5 {
		resp, err := http.Get("http://" + raw.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if i%2 == 0 {
			http.DefaultClient.CloseIdleConnections() // the client closes
		}
	}
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") // the server closes
	io.ReadAll(c)
	c.Close()
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for tracked() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := tracked(); n != 0 {
		t.Errorf("%d closed connections still tracked", n)
	}
	srv.Close()
	select {
	case <-reaper.stop:
	case <-time.After(5 * time.Second):
		t.Error("the reaper runs on after its listener was closed")
	}
}
