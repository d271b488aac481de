package main

// Tests of how clients' TLS connections are used: kept alive across
// requests (one handshake per client, not per request) and each small
// answer sent as one TLS record, so that TLS costs a client no more round
// trips or reads than plain http.

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recordCounter is a client connection that counts the TLS records it
// receives, by type, from the raw bytes the server sends.
type recordCounter struct {
	net.Conn
	mu     sync.Mutex
	hdr    []byte // the part of the next record's header read so far
	skip   int    // bytes of the current record's body still to come
	byType map[byte]int
}

// Read implements net.Conn, counting the records in what it reads.
func (c *recordCounter) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	for b := p[:n]; len(b) > 0; {
		if c.skip > 0 {
			k := min(c.skip, len(b))
			c.skip -= k
			b = b[k:]
			continue
		}
		k := min(5-len(c.hdr), len(b))
		c.hdr = append(c.hdr, b[:k]...)
		b = b[k:]
		if len(c.hdr) == 5 {
			c.byType[c.hdr[0]]++
			c.skip = int(c.hdr[3])<<8 | int(c.hdr[4])
			c.hdr = c.hdr[:0]
		}
	}
	return n, err
}

// appData is how many application data records (type 23: every record
// once TLS 1.3's handshake is under way) were received.
func (c *recordCounter) appData() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byType[23]
}

// countingClient is a keep-alive https client trusting ca whose
// connections count their records; dials counts its connections.
func countingClient(t *testing.T, ca string, conns int) (*http.Client, *atomic.Int64, func() []*recordCounter) {
	t.Helper()
	pool, err := loadCertPool(ca)
	if err != nil {
		t.Fatal(err)
	}
	var dials atomic.Int64
	var mu sync.Mutex
	var all []*recordCounter
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		MaxIdleConnsPerHost: conns,
		// and no more at once: a request that finds none idle while
		// another's answer is still being read would otherwise dial one
		// more (net/http races the dial against the conn coming back),
		// which says nothing about the server keeping connections alive
		MaxConnsPerHost: conns,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			dials.Add(1)
			rc := &recordCounter{Conn: c, byType: map[byte]int{}}
			mu.Lock()
			all = append(all, rc)
			mu.Unlock()
			return rc, nil
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}, &dials, func() []*recordCounter {
		mu.Lock()
		defer mu.Unlock()
		return append([]*recordCounter(nil), all...)
	}
}

// doKeepAlive sends one request and reads its whole answer; an error, an
// error status or an answer that closes the connection is an error.
func doKeepAlive(hc *http.Client, method, url, body string) error {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, url, err)
	}
	if resp.StatusCode >= 300 || resp.Close {
		return fmt.Errorf("%s %s: %d (close %v) %s", method, url, resp.StatusCode, resp.Close, b)
	}
	return nil
}

// TestTLSKeepAlive: requests of one client over https reuse its one TLS
// connection (one dial and one handshake at the server for many writes
// and reads, from one client or several at once), and every answer to a
// small write or read comes in exactly one TLS record.
func TestTLSKeepAlive(t *testing.T) {
	p := newTestPKI(t)
	srv := p.leaf("server", leafOpts{cn: "server", ca: p.ca})
	m := startTLSMember(t, transportSecurity{CertFile: srv.cert, KeyFile: srv.key})
	ln, ok := m.listeners[0].(*tlsListener)
	if !ok {
		t.Fatalf("the client listener is a %T, not the TLS listener", m.listeners[0])
	}
	value := "value=" + strings.Repeat("x", 64)
	const n = 40

	cases := []struct {
		name    string
		clients int
	}{
		{"one client", 1},
		{"eight clients at once", 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hc, dials, _ := countingClient(t, p.ca.file, tc.clients)
			before := ln.handshakes.Load()
			var wg sync.WaitGroup
			var firstDone sync.WaitGroup
			firstDone.Add(tc.clients)
			var failed atomic.Bool
			for c := range tc.clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					// the first request makes the connection (and takes the
					// handshake's records and session tickets)
					err := doKeepAlive(hc, http.MethodPut, fmt.Sprintf("%s/v2/keys/ka/c%d", m.URL, c), value)
					firstDone.Done()
					firstDone.Wait() // every client holds its own connection from now on
					for i := 0; i < n && err == nil; i++ {
						if i%2 == 0 {
							err = doKeepAlive(hc, http.MethodPut, fmt.Sprintf("%s/v2/keys/ka/c%d-k%d", m.URL, c, i%10), value)
						} else {
							err = doKeepAlive(hc, http.MethodGet, fmt.Sprintf("%s/v2/keys/ka/c%d", m.URL, c), "")
						}
					}
					if err != nil {
						t.Error(err)
						failed.Store(true)
					}
				}()
			}
			wg.Wait()
			if failed.Load() {
				return
			}
			if d := dials.Load(); d != int64(tc.clients) {
				t.Errorf("%d clients dialled %d connections for %d requests each: connections not kept alive", tc.clients, d, n+1)
			}
			if h := ln.handshakes.Load() - before; h != int64(tc.clients) {
				t.Errorf("the server completed %d handshakes for %d clients", h, tc.clients)
			}
		})
	}

	t.Run("one record per answer", func(t *testing.T) {
		hc, _, conns := countingClient(t, p.ca.file, 1)
		for _, method := range []string{http.MethodPut, http.MethodGet} {
			body := value
			if method == http.MethodGet {
				body = ""
			}
			if err := doKeepAlive(hc, method, m.URL+"/v2/keys/ka/r", body); err != nil {
				t.Fatal(err)
			}
		}
		cs := conns()
		if len(cs) != 1 {
			t.Fatalf("%d connections for two requests", len(cs))
		}
		start := cs[0].appData()
		for i := range n {
			var err error
			if i%2 == 0 {
				err = doKeepAlive(hc, http.MethodPut, m.URL+"/v2/keys/ka/r", value)
			} else {
				err = doKeepAlive(hc, http.MethodGet, m.URL+"/v2/keys/ka/r", "")
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := cs[0].appData() - start; got != n {
			t.Errorf("%d answers came in %d TLS records, want one each", n, got)
		}
	})
}

// BenchmarkKeepAliveGet is a GET of a 64-byte value over kept-alive
// connections, plain http and https (TLS 1.3, AES-128-GCM), clients and
// member in this process: the difference per request is what TLS costs
// both ends together.
func BenchmarkKeepAliveGet(b *testing.B) {
	p := newTestPKI(b)
	srv := p.leaf("server", leafOpts{cn: "server", ca: p.ca})
	pool, err := loadCertPool(p.ca.file)
	if err != nil {
		b.Fatal(err)
	}
	for _, scheme := range []string{"http", "https"} {
		b.Run(scheme, func(b *testing.B) {
			cfg := memberConfig(b, "t", b.TempDir(), scheme+"://127.0.0.1:0", map[string]string{"t": "http://127.0.0.1:0"})
			if scheme == "https" {
				cfg.ClientTLS = transportSecurity{CertFile: srv.cert, KeyFile: srv.key}
			}
			m := startTestMember(b, cfg)
			url := scheme + "://" + m.ClientAddrs()[0] + "/v2/keys/bench"
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr}
			if err := doKeepAlive(hc, http.MethodPut, url, "value="+strings.Repeat("x", 64)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := doKeepAlive(hc, http.MethodGet, url, ""); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
