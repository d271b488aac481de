// Tests of request limits.

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestInboxTakeCapsProposalBytes checks that the raft loop takes at most
// maxBatchBytes of proposals per pass (a larger one alone), leaves the
// rest queued and is woken again for it; small proposals all go at once.
func TestInboxTakeCapsProposalBytes(t *testing.T) {
	in := newRaftInbox()
	big := make([]byte, 3<<20)
	for i := range 5 {
		in.propose(proposal{id: uint64(i), data: big, ctx: context.Background()})
	}
	<-in.wake
	var b inboxBatch
	var got []int
	for {
		in.take(&b, false)
		if len(b.props) == 0 {
			break
		}
		got = append(got, len(b.props))
		if n := proposalsWithin(b.props, maxBatchBytes); n != len(b.props) {
			t.Fatalf("took %d proposals, more than %d bytes", len(b.props), maxBatchBytes)
		}
		select {
		case <-in.wake:
		default:
			if fmt.Sprint(got) != "[2 2 1]" {
				t.Fatalf("proposals left without a wake-up after takes %v", got)
			}
		}
		b.clear()
	}
	if fmt.Sprint(got) != "[2 2 1]" {
		t.Errorf("batches %v, want [2 2 1]", got)
	}
	huge := make([]byte, maxBatchBytes+1)
	in.propose(proposal{id: 9, data: huge, ctx: context.Background()})
	in.propose(proposal{id: 10, data: []byte("x"), ctx: context.Background()})
	if in.take(&b, false); len(b.props) != 1 || b.props[0].id != 9 {
		t.Errorf("a proposal over the cap: took %d", len(b.props))
	}
	for i := range 1000 {
		in.propose(proposal{id: uint64(100 + i), data: make([]byte, 300), ctx: context.Background()})
	}
	if in.take(&b, false); len(b.props) != 1001 {
		t.Errorf("small proposals: took %d of 1001 at once", len(b.props))
	}
}

// TestByteBudget checks the large-body budget: granted in arrival order,
// a waiter that gives up frees its place, nothing is lost.
func TestByteBudget(t *testing.T) {
	b := newByteBudget(100)
	ctx := context.Background()
	if err := b.acquire(ctx, 60); err != nil {
		t.Fatal(err)
	}
	granted := make(chan int64, 3)
	wait := func(n int64, ctx context.Context) {
		go func() {
			if err := b.acquire(ctx, n); err == nil {
				granted <- n
			} else {
				granted <- -n
			}
		}()
	}
	waiters := func() int {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.waiters)
	}
	wait(50, ctx) // does not fit
	waitFor(t, 5*time.Second, "the first waiter", func() bool { return waiters() == 1 })
	wait(10, ctx) // fits, but waits its turn
	waitFor(t, 5*time.Second, "the second waiter", func() bool { return waiters() == 2 })
	select {
	case n := <-granted:
		t.Fatalf("granted %d out of turn", n)
	case <-time.After(50 * time.Millisecond):
	}
	cctx, cancel := context.WithCancel(ctx)
	wait(1000, cctx) // more than the budget: takes all of it
	waitFor(t, 5*time.Second, "the third waiter", func() bool { return waiters() == 3 })
	b.release(60)
	if a, c := <-granted, <-granted; a+c != 60 {
		t.Errorf("granted %d and %d, want 50 and 10", a, c)
	}
	cancel()
	if n := <-granted; n != -1000 {
		t.Errorf("the cancelled waiter: %d", n)
	}
	b.release(50)
	b.release(10)
	if b.free != 100 || len(b.waiters) != 0 {
		t.Errorf("free %d, waiters %d after everything was released", b.free, len(b.waiters))
	}
	if bodyWeight(100) != 0 || bodyWeight(largeBody) != largeBody || bodyWeight(-1) != maxFormBody+1 || bodyWeight(maxFormBody) != maxFormBody || bodyWeight(1<<40) != 0 {
		t.Error("bodyWeight")
	}
}

// rawAnswer sends raw to addr and reads the answer, or reports how the
// connection ended without one.
func rawAnswer(addr string, raw []byte, readFor time.Duration) (int, string, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(readFor))
	go conn.Write(raw)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestMalformedRequestsStayOutOfRaft hammers a member with malformed
// requests (oversized bodies, lying lengths, stalled bodies, huge headers,
// broken framing, overlong request lines): each is refused with a clear
// error without anything reaching the raft log, and /health answers 200
// after every round. Health could fail before when big bodies were held
// and handed to raft in one piece; that they never reach it is what
// keeps it healthy here.
func TestMalformedRequestsStayOutOfRaft(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.hooks.bodyTimeout = 300 * time.Millisecond
	m := startTestMember(t, cfg)
	addr := strings.TrimPrefix(m.URL, "http://")
	e2eForm(t, m, "PUT", "/v2/keys/sentinel", url.Values{"value": {"keep"}})
	waitFor(t, 5*time.Second, "the start-up writes", func() bool {
		_, err := m.store.Lookup(versionKey, false, false, 0)
		return err == nil
	})
	// a quorum read returns once the published applied index covers every
	// write answered so far (a write's client is woken inside the apply
	// loop, before the index is published)
	if r := e2eDo(t, m, "GET", "/v2/keys/sentinel?quorum=true", "", ""); r.code != 200 {
		t.Fatalf("quorum read: %d %s", r.code, r.body)
	}
	applied := m.appliedIndexPub.Load()
	before := e2eTree(t, m)
	oversized := "value=" + strings.Repeat("a", maxFormBody)
	put := "PUT /v2/keys/sentinel HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
	cases := []struct {
		name   string
		raw    string
		status int
		code   int // errorCode of a JSON answer
	}{
		{"oversized body", put + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(oversized)) + oversized, 400, 210},
		{"oversized chunked body", put + "Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(oversized), oversized), 400, 210},
		{"body shorter than its length, then silence", put + "Content-Length: 1000\r\n\r\nvalue=x", 400, 210},
		{"length announced, nothing sent", put + "Content-Length: 10000000\r\n\r\n", 400, 210},
		{"length not a number", put + "Content-Length: 12x\r\n\r\nvalue=x", 400, 0},
		{"huge header", "GET /v2/keys/sentinel HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("h", 1100000) + "\r\n\r\n", 431, 0},
		{"many headers", "GET /v2/keys/sentinel HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: b\r\n", 200000) + "\r\n", 431, 0},
		{"bad chunk", put + "Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400, 210},
		{"overlong request line", "PUT /v2/keys/" + strings.Repeat("k", 5000) + " HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\nvalue=x", 414, 0},
	}
	for round := range 5 {
		for _, c := range cases {
			status, body, err := rawAnswer(addr, []byte(c.raw), 10*time.Second)
			if err != nil || status != c.status {
				t.Fatalf("round %d, %s: %d %.200q %v, want %d", round, c.name, status, body, err, c.status)
			}
			if c.code != 0 {
				var e struct {
					ErrorCode int    `json:"errorCode"`
					Cause     string `json:"cause"`
				}
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.ErrorCode != c.code || e.Cause == "" {
					t.Errorf("%s: answer %q, want error %d with a cause", c.name, body, c.code)
				}
			}
		}
		if r := e2eDo(t, m, "GET", "/health", "", ""); r.code != 200 {
			t.Fatalf("round %d: health %d %s", round, r.code, r.body)
		}
	}
	if got := m.appliedIndexPub.Load(); got != applied {
		t.Errorf("the raft log moved from %d to %d: a malformed request was proposed", applied, got)
	}
	if after := e2eTree(t, m); after != before {
		t.Errorf("the store changed:\nbefore %.300s\nafter  %.300s", before, after)
	}
}

// TestSlowClientsCutOffWatchesKept checks that a connection trickling its
// header, or sending nothing, is closed after the header timeout, while a
// long-poll watch and a stream live on far beyond it and get their events.
func TestSlowClientsCutOffWatchesKept(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.hooks.headerTimeout = 200 * time.Millisecond
	cfg.hooks.bodyTimeout = 200 * time.Millisecond
	m := startTestMember(t, cfg)
	addr := strings.TrimPrefix(m.URL, "http://")

	longPoll := e2eWatch(t, m, "/v2/keys/w?wait=true")
	stream := make(chan string, 4)
	go func() {
		resp, err := http.Get(m.URL + "/v2/keys/s?wait=true&stream=true")
		if err != nil {
			stream <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var ev struct {
				Node struct {
					Value string `json:"value"`
				} `json:"node"`
			}
			if err := dec.Decode(&ev); err != nil {
				stream <- "error: " + err.Error()
				return
			}
			stream <- ev.Node.Value
		}
	}()
	waitFor(t, 5*time.Second, "the stream watcher", func() bool { return e2eWatchers(t, m) == 2 })

	for _, c := range []struct{ name, partial string }{
		{"nothing sent", ""},
		{"header trickled", "GET /v2/keys/ HTTP/1.1\r\nHost: x\r\nX-Slow: "},
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		conn.Write([]byte(c.partial))
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(conn) // until the server closes
		conn.Close()
		if err != nil || (len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 408")) {
			t.Errorf("%s: %q %v after %v, want the connection closed", c.name, b, err, time.Since(start))
		}
	}

	time.Sleep(5 * cfg.hooks.headerTimeout) // the watches outlive every timeout
	e2eForm(t, m, "PUT", "/v2/keys/s", url.Values{"value": {"one"}})
	if v := <-stream; v != "one" {
		t.Fatalf("stream: %s", v)
	}
	e2eNoAnswer(t, longPoll, "long poll before its event")
	time.Sleep(5 * cfg.hooks.headerTimeout)
	e2eForm(t, m, "PUT", "/v2/keys/w", url.Values{"value": {"now"}})
	if r := e2eAwait(t, longPoll, "long poll"); r.code != 200 || !strings.Contains(r.body, `"value":"now"`) {
		t.Errorf("long poll: %d %s", r.code, r.body)
	}
	e2eForm(t, m, "PUT", "/v2/keys/s", url.Values{"value": {"two"}})
	if v := <-stream; v != "two" {
		t.Errorf("stream: %s", v)
	}
	// a write whose body arrives in time is untouched by the body deadline
	if r := e2eForm(t, m, "PUT", "/v2/keys/ok", url.Values{"value": {strings.Repeat("v", 2<<20)}}); r.code != 201 {
		t.Errorf("a 2 MB write: %d %.200s", r.code, r.body)
	}
}

// heavyLimits runs TestHealthDuringLargeWrites, which holds a one-second
// deadline (etcd's for /health) and so needs a quiet machine.
var heavyLimits = flag.Bool("limits.heavy", false, "run the heavy health-under-large-writes test")

// TestHealthDuringLargeWrites writes values near the 10 MB limit from
// many clients at once and checks /health all the while. It answered 503
// when the raft loop took every such write in one pass (one Ready of
// 100 MB and more, one fsync of it) and answered read indexes only after
// that fsync; now a pass takes at most maxBatchBytes, large bodies wait
// for their share of largeBodyBudget, and read indexes go first.
func TestHealthDuringLargeWrites(t *testing.T) {
	if !*heavyLimits {
		t.Skip("writes about 200 MB and needs a machine that is not overloaded: -limits.heavy runs it")
	}
	m := startTestMember(t, nil)
	value := strings.Repeat("v", maxFormBody-100)
	done := make(chan error, 10)
	var written atomic.Int32
	for w := range cap(done) {
		go func() {
			for i := range 2 {
				r := e2eRaw(context.Background(), m, "PUT", fmt.Sprintf("/v2/keys/big%d", w), url.Values{"value": {value}}.Encode(), "application/x-www-form-urlencoded")
				switch {
				case r.err == nil && (r.code == 200 || r.code == 201):
					written.Add(1)
				case r.err == nil && r.code == 500 && strings.Contains(r.body, "request timed out"):
					// a slow machine: the write waited too long for its turn
				default:
					done <- fmt.Errorf("write %d of writer %d: %d %.200s %v", i, w, r.code, r.body, r.err)
					return
				}
			}
			done <- nil
		}()
	}
	probes, writers := 0, cap(done)
	for writers > 0 {
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
			writers--
			continue
		case <-time.After(50 * time.Millisecond):
		}
		probes++
		if r := e2eDo(t, m, "GET", "/health", "", ""); r.code != 200 {
			t.Errorf("health during the writes (probe %d): %d %s", probes, r.code, r.body)
		}
	}
	if written.Load() == 0 {
		t.Error("no write went through")
	}
	t.Logf("%d writes of %d MB, %d health probes", written.Load(), len(value)>>20, probes)
}

// TestBodyGivenBackClosed checks that limitRequests hands the handler a
// body under a deadline and, once the handler is done, gives the request
// its own body back: closed when it was read to its end (net/http need not
// drain it), open when it was not (net/http drains it). The connection
// stays usable for the next request in both cases.
func TestBodyGivenBackClosed(t *testing.T) {
	s := &server{cfg: testConfig(t, t.TempDir())}
	type seen struct {
		wrapped, restored bool
		readAfter         error
	}
	got := make(chan seen, 1)
	readAll := true
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, wrapped := r.Body.(*deadlineBody)
		if readAll {
			io.Copy(io.Discard, r.Body)
		} else {
			r.Body.Read(make([]byte, 2))
		}
		got <- seen{wrapped: wrapped}
	})
	limited := s.limitRequests(inner)
	outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limited.ServeHTTP(w, r)
		v := <-got
		_, stillWrapped := r.Body.(*deadlineBody)
		v.restored = !stillWrapped
		_, v.readAfter = r.Body.Read(make([]byte, 1))
		got <- v
	})
	ts := httptest.NewServer(outer)
	defer ts.Close()
	for _, tt := range []struct {
		readAll  bool
		wantRead error // reading the given-back body after the handler
	}{
		{true, http.ErrBodyReadAfterClose},
		{false, nil}, // open, the rest unread
	} {
		readAll = tt.readAll
		for i := range 2 { // the second request reuses the connection
			resp, err := http.Post(ts.URL, "application/x-www-form-urlencoded", strings.NewReader("value=abcdef"))
			if err != nil {
				t.Fatalf("read all %v, request %d: %v", tt.readAll, i, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			v := <-got
			if !v.wrapped || !v.restored || v.readAfter != tt.wantRead {
				t.Errorf("read all %v, request %d: wrapped %v, given back %v, a read after: %v (want %v)",
					tt.readAll, i, v.wrapped, v.restored, v.readAfter, tt.wantRead)
			}
		}
	}
}

// TestBodyTimedByReaper sends writes on one kept-alive connection of a
// member whose reaper times bodies (limit 300 ms, checked every 75 ms): a
// body arriving late but within its limit is served, the connection then
// serves the next write with no deadline left over, and a body that stalls
// fails with error 210 after its limit, not before.
func TestBodyTimedByReaper(t *testing.T) {
	const limit = 300 * time.Millisecond
	cfg := testConfig(t, t.TempDir())
	cfg.hooks.bodyTimeout = limit
	m := startTestMember(t, cfg)
	conn, err := net.Dial("tcp", strings.TrimPrefix(m.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	put := func(value string, pause time.Duration, sendAll bool) (int, string, time.Duration) {
		t.Helper()
		body := "value=" + value
		start := time.Now()
		fmt.Fprintf(conn, "PUT /v2/keys/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n", len(body))
		time.Sleep(pause)
		if !sendAll {
			body = body[:3]
		}
		io.WriteString(conn, body)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("value %q: %v", value, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b), time.Since(start)
	}
	for i, pause := range []time.Duration{limit / 2, 0, limit / 2, 0} {
		if code, body, _ := put(fmt.Sprintf("v%d", i), pause, true); code != 200 && code != 201 {
			t.Fatalf("write %d (body after %v): %d %s", i, pause, code, body)
		}
	}
	code, body, took := put("never", 0, false)
	if code != 400 || !strings.Contains(body, `"errorCode":210`) || took < limit {
		t.Errorf("stalled body: %d %s after %v, want 400 with error 210 after at least %v", code, body, took, limit)
	}
	if took > 10*limit {
		t.Errorf("stalled body answered after %v, limit %v", took, limit)
	}
	if r := e2eDo(t, m, "GET", "/v2/keys/slow", "", ""); r.code != 200 || !strings.Contains(r.body, `"v3"`) {
		t.Errorf("after the writes: %d %s", r.code, r.body)
	}
}
