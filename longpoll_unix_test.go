//go:build unix

// Tests of parked long-poll watches over TLS where the socket is peeked at
// (longpoll_unix.go).

package main

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// TestParkedWatchTLSClientLeaves checks that parked watches over https
// wait without a TLS read in progress (only a peek at the socket, so that
// their goroutines' stacks stay small), that one whose client closes its
// connection is removed at once, and that a request the client sends
// ahead is read (the watch is then answered and the connection closed).
func TestParkedWatchTLSClientLeaves(t *testing.T) {
	p := newTestPKI(t)
	srv := p.leaf("server", leafOpts{cn: "server", ca: p.ca})
	m := startTLSMember(t, transportSecurity{CertFile: srv.cert, KeyFile: srv.key})
	pool, err := loadCertPool(p.ca.file)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(m.URL, "https://")
	hc, _, _ := countingClient(t, p.ca.file, 1)
	watchers := func(n int) {
		t.Helper()
		waitFor(t, 10*time.Second, "the watcher count", func() bool {
			resp, err := hc.Get(m.URL + "/v2/stats/store")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var st map[string]float64
			return json.NewDecoder(resp.Body).Decode(&st) == nil && int(st["watchers"]) == n
		})
	}
	dial := func(key string) *tls.Conn {
		c, err := tls.Dial("tcp", host, &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET /v2/keys/"+key+"?wait=true HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
		return c
	}
	a, b, ahead := dial("gone"), dial("stays"), dial("ahead")
	defer b.Close()
	defer ahead.Close()
	watchers(3)
	waitFor(t, 10*time.Second, "the watches to be parked", func() bool { return parkedWaiting(t) == 3 })
	var sb strings.Builder
	if err := pprof.Lookup("goroutine").WriteTo(&sb, 1); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sb.String(), ".(*parkedWatch).readOne+") {
		t.Errorf("a parked watch over https waits in a TLS read:\n%s", sb.String())
	}
	a.Close()
	watchers(2)
	waitFor(t, 5*time.Second, "the parked watch to end", func() bool { return parkedWaiting(t) == 2 })

	// a request sent ahead over TLS: read while the watch waits
	io.WriteString(ahead, "GET /v2/keys/ahead HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	time.Sleep(100 * time.Millisecond)
	if waiting := parkedWaiting(t); waiting != 2 {
		t.Errorf("%d watches parked after a request sent ahead, want 2", waiting)
	}
	if err := doKeepAlive(hc, http.MethodPut, m.URL+"/v2/keys/ahead", "value=v"); err != nil {
		t.Fatal(err)
	}
	ahead.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(ahead)
	if err != nil {
		t.Fatalf("the watch with a request sent ahead: %v", err)
	}
	if !strings.Contains(string(got), `"key":"/ahead"`) || !strings.HasSuffix(string(got), "\r\n0\r\n\r\n") {
		t.Errorf("the watch with a request sent ahead: %q", got)
	}
	watchers(1)
}
