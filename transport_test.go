// Tests of the peer transport.

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// trSnapReport is one ReportSnapshot call seen by trFakeRaft.
type trSnapReport struct {
	id     uint64
	status raft.SnapshotStatus
}

// trFakeRaft records what a Transport delivers to it.
type trFakeRaft struct {
	mu          sync.Mutex
	msgs        []raftpb.Message
	unreachable map[uint64]int
	snaps       []trSnapReport
	// hook, if set, runs before a message is recorded; an error refuses it.
	hook func(ctx context.Context, m raftpb.Message) error
}

// Process records m unless the hook refuses it.
func (f *trFakeRaft) Process(ctx context.Context, m raftpb.Message) error {
	f.mu.Lock()
	hook := f.hook
	f.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, m); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.msgs = append(f.msgs, m)
	f.mu.Unlock()
	return nil
}

// ReportUnreachable counts the reports per peer.
func (f *trFakeRaft) ReportUnreachable(id uint64) {
	f.mu.Lock()
	if f.unreachable == nil {
		f.unreachable = make(map[uint64]int)
	}
	f.unreachable[id]++
	f.mu.Unlock()
}

// ReportSnapshot records the report.
func (f *trFakeRaft) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	f.mu.Lock()
	f.snaps = append(f.snaps, trSnapReport{id, status})
	f.mu.Unlock()
}

func (f *trFakeRaft) setHook(h func(ctx context.Context, m raftpb.Message) error) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}

func (f *trFakeRaft) received() []raftpb.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.msgs)
}

func (f *trFakeRaft) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.msgs)
}

func (f *trFakeRaft) unreachableCount(id uint64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unreachable[id]
}

func (f *trFakeRaft) snapReports() []trSnapReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.snaps)
}

// trRequestLog records the path and status of every request a node served.
type trRequestLog struct {
	mu   sync.Mutex
	seen []string // "path status"
}

func (l *trRequestLog) add(s string) {
	l.mu.Lock()
	l.seen = append(l.seen, s)
	l.mu.Unlock()
}

func (l *trRequestLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, x := range l.seen {
		if x == s {
			n++
		}
	}
	return n
}

// trStatusWriter captures the status a handler answered with.
type trStatusWriter struct {
	http.ResponseWriter
	code int
}

func (w *trStatusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *trStatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// trNode is one Transport serving its Handler on a loopback listener.
type trNode struct {
	id       uint64
	tr       *Transport
	fake     *trFakeRaft
	url      string
	addr     string
	reqs     *trRequestLog
	srv      *http.Server
	stopOnce sync.Once
}

// trFast shortens a transport's timings for tests.
func trFast(tr *Transport) {
	tr.timeouts.backoffMin = 10 * time.Millisecond
	tr.timeouts.backoffMax = 100 * time.Millisecond
	tr.timeouts.header = 2 * time.Second
	tr.timeouts.write = 2 * time.Second
	tr.timeouts.keepalive = 200 * time.Millisecond
	tr.timeouts.idle = 5 * time.Second
	tr.timeouts.snapshot = 5 * time.Second
}

// trServe serves h on addr (a kernel-chosen port when addr ends in ":0").
func trServe(t testing.TB, addr string, h http.Handler) (*http.Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	return srv, ln.Addr().String()
}

// trStartNode starts member id of cluster; r nil means a fresh trFakeRaft.
func trStartNode(t testing.TB, id, cluster uint64, r transportRaft, addr string) *trNode {
	t.Helper()
	n := &trNode{id: id, reqs: &trRequestLog{}}
	if r == nil {
		n.fake = &trFakeRaft{}
		r = n.fake
	}
	n.tr = NewTransport(id, cluster, r)
	trFast(n.tr)
	h := n.tr.Handler()
	mux := http.NewServeMux()
	logged := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		sw := &trStatusWriter{ResponseWriter: w}
		n.reqs.add("start " + req.URL.Path)
		h.ServeHTTP(sw, req)
		n.reqs.add(fmt.Sprintf("%s %d", req.URL.Path, sw.code))
	})
	mux.Handle("/raft", logged)
	mux.Handle("/raft/", logged)
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	n.srv, n.addr = trServe(t, addr, mux)
	n.url = "http://" + n.addr
	t.Cleanup(n.stop)
	return n
}

// stop stops the transport and closes the listener and its connections.
func (n *trNode) stop() {
	n.stopOnce.Do(func() {
		n.tr.Stop()
		_ = n.srv.Close()
	})
}

// trWait polls cond until it holds or d passes.
func trWait(t testing.TB, d time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", d, fmt.Sprintf(format, args...))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// trLink makes a and b peers of each other and waits for both streams.
func trLink(t testing.TB, a, b *trNode) {
	t.Helper()
	a.tr.AddPeer(b.id, []string{b.url})
	b.tr.AddPeer(a.id, []string{a.url})
	trWait(t, 3*time.Second, func() bool { return a.tr.Connected(b.id) && b.tr.Connected(a.id) }, "streams %x<->%x", a.id, b.id)
}

// trApp is a MsgApp carrying one entry, numbered by idx.
func trApp(from, to, idx uint64) raftpb.Message {
	return raftpb.Message{
		Type: raftpb.MsgApp, From: from, To: to, Term: 3, LogTerm: 3, Index: idx, Commit: idx,
		Entries: []raftpb.Entry{{Term: 3, Index: idx + 1, Data: []byte(fmt.Sprintf("entry-%d", idx))}},
	}
}

// trSameMessages fails unless got and want marshal identically, in order.
func trSameMessages(t testing.TB, got, want []raftpb.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		g, err1 := got[i].Marshal()
		w, err2 := want[i].Marshal()
		if err1 != nil || err2 != nil || !bytes.Equal(g, w) {
			t.Fatalf("message %d: got %s idx %d, want %s idx %d", i, got[i].Type, got[i].Index, want[i].Type, want[i].Index)
		}
	}
}

// trPost makes a raw request to a node's transport handler.
func trPost(t testing.TB, url string, headers map[string]string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("post %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// trDeadURL is a loopback URL nothing listens on.
func trDeadURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

// TestTransportDeliversInOrder: messages arrive complete and in order over one stream each way, and the counters agree.
func TestTransportDeliversInOrder(t *testing.T) {
	a := trStartNode(t, 1, 0x77, nil, "")
	b := trStartNode(t, 2, 0x77, nil, "")
	trLink(t, a, b)

	const n = 1000
	var want []raftpb.Message
	for i := uint64(0); i < n; i += 10 {
		batch := make([]raftpb.Message, 0, 10)
		for j := i; j < i+10; j++ {
			batch = append(batch, trApp(1, 2, j))
		}
		want = append(want, batch...)
		a.tr.Send(batch)
	}
	trWait(t, 5*time.Second, func() bool { return b.fake.count() >= n }, "%d messages at b", n)
	time.Sleep(20 * time.Millisecond) // nothing extra may follow
	trSameMessages(t, b.fake.received(), want)

	back := raftpb.Message{Type: raftpb.MsgAppResp, From: 2, To: 1, Term: 3, Index: n}
	b.tr.Send([]raftpb.Message{back})
	trWait(t, 3*time.Second, func() bool { return a.fake.count() == 1 }, "reply at a")
	trSameMessages(t, a.fake.received(), []raftpb.Message{back})

	st := a.tr.PeerStats()[2]
	if st.Counts.Success != n || st.Counts.Fail != 0 {
		t.Errorf("a's counts for b = %+v, want %d successes and no failure", st.Counts, n)
	}
	ta, tb := a.tr.Totals(), b.tr.Totals()
	if ta.SendMsgs != n || ta.SendAppend != n || tb.RecvMsgs != n || tb.RecvAppend != n {
		t.Errorf("totals: a sent %d (%d appends), b received %d (%d appends); want %d", ta.SendMsgs, ta.SendAppend, tb.RecvMsgs, tb.RecvAppend, n)
	}
	if ta.SendBytes == 0 || ta.SendBytes != tb.RecvBytes {
		t.Errorf("a sent %d bytes, b received %d", ta.SendBytes, tb.RecvBytes)
	}
	if ta.SendPkgRate <= 0 || tb.RecvBandwidthRate <= 0 {
		t.Errorf("rates: a sends %v pkg/s, b receives %v B/s; want both > 0", ta.SendPkgRate, tb.RecvBandwidthRate)
	}
	if f := a.fake.unreachableCount(2); f != 0 {
		t.Errorf("ReportUnreachable(2) called %d times on a healthy stream", f)
	}
	// One stream each way: b served a single stream request.
	if c := b.reqs.count("start /raft/stream"); c != 1 {
		t.Errorf("b served %d streams, want 1", c)
	}
}

// TestTransportBatchesMessages: a burst of queued messages is written in few flushes.
func TestTransportBatchesMessages(t *testing.T) {
	a := trStartNode(t, 1, 0x77, nil, "")
	b := trStartNode(t, 2, 0x77, nil, "")
	trLink(t, a, b)

	const n = 4000 // below the queue size: nothing may be dropped
	msgs := make([]raftpb.Message, n)
	for i := range msgs {
		msgs[i] = trApp(1, 2, uint64(i))
	}
	a.tr.Send(msgs)
	trWait(t, 5*time.Second, func() bool { return b.fake.count() >= n }, "%d messages at b", n)
	trSameMessages(t, b.fake.received(), msgs)
	batches := a.tr.peer(2).batches.Load()
	t.Logf("%d messages went in %d flushes", n, batches)
	if batches == 0 || batches > n/4 {
		t.Errorf("%d messages took %d flushes; want them batched (at most %d)", n, batches, n/4)
	}
}

// TestTransportLargeMessages: messages larger than a write chunk, and batches larger than
// transportMaxBatchBytes, arrive whole and in order.
func TestTransportLargeMessages(t *testing.T) {
	a := trStartNode(t, 1, 0x77, nil, "")
	b := trStartNode(t, 2, 0x77, nil, "")
	trLink(t, a, b)

	big := func(idx uint64, size int) raftpb.Message {
		m := trApp(1, 2, idx)
		m.Entries[0].Data = bytes.Repeat([]byte{byte(idx)}, size)
		return m
	}
	var msgs []raftpb.Message
	msgs = append(msgs, trApp(1, 2, 0), big(1, 3<<20))
	for i := uint64(2); i < 300; i++ {
		msgs = append(msgs, big(i, 10<<10))
	}
	msgs = append(msgs, big(300, 70<<10), trApp(1, 2, 301))
	a.tr.Send(msgs)
	trWait(t, 5*time.Second, func() bool { return b.fake.count() >= len(msgs) }, "%d messages at b", len(msgs))
	trSameMessages(t, b.fake.received(), msgs)
	if ta, tb := a.tr.Totals(), b.tr.Totals(); ta.SendBytes != tb.RecvBytes || ta.SendMsgs != uint64(len(msgs)) {
		t.Errorf("a sent %d messages, %d bytes; b received %d bytes", ta.SendMsgs, ta.SendBytes, tb.RecvBytes)
	}
}

// TestTransportBackpressure: messages sent one by one while the receiver stops reading
// fill the socket, so that Send's own writes are cut short and the pump finishes them;
// once the receiver reads again everything arrives whole and in order.
func TestTransportBackpressure(t *testing.T) {
	a := trStartNode(t, 1, 0x77, nil, "")
	b := trStartNode(t, 2, 0x77, nil, "")
	trLink(t, a, b)
	release := make(chan struct{})
	b.fake.setHook(func(ctx context.Context, m raftpb.Message) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	var want []raftpb.Message
	for i := uint64(0); i < 400; i++ {
		m := trApp(1, 2, i)
		m.Entries[0].Data = bytes.Repeat([]byte{byte(i)}, 30<<10+int(i)) // odd sizes: chunks cut anywhere
		want = append(want, m)
		a.tr.Send([]raftpb.Message{m})
		time.Sleep(50 * time.Microsecond) // apart enough for Send to write itself
	}
	close(release)
	trWait(t, 10*time.Second, func() bool { return b.fake.count() >= len(want) }, "%d messages at b", len(want))
	trSameMessages(t, b.fake.received(), want)
	if st := a.tr.PeerStats()[2]; st.Counts.Fail != 0 {
		t.Errorf("counts = %+v, want no failure", st.Counts)
	}
}

// TestTransportWriteTimeout: a stream whose peer stops reading is broken once a write
// has been blocked for the write timeout, and reopened.
func TestTransportWriteTimeout(t *testing.T) {
	var streams atomic.Int32
	stuck := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		streams.Add(1)
		rc := http.NewResponseController(w)
		_ = rc.EnableFullDuplex()
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		<-r.Context().Done() // never reads the body
	})
	srv, addr := trServe(t, "127.0.0.1:0", stuck)
	defer srv.Close()
	a := trStartNode(t, 1, 0x77, nil, "")
	a.tr.timeouts.write = 200 * time.Millisecond
	a.tr.AddPeer(3, []string{"http://" + addr})
	trWait(t, 3*time.Second, func() bool { return a.tr.Connected(3) }, "stream to the stuck peer")

	// Far more than the socket buffers hold.
	big := []raftpb.Entry{{Term: 1, Index: 1, Data: bytes.Repeat([]byte("x"), 64<<10)}}
	msgs := make([]raftpb.Message, 2000)
	for i := range msgs {
		msgs[i] = raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 3, Term: 1, Index: uint64(i), Entries: big}
	}
	start := time.Now()
	a.tr.Send(msgs)
	trWait(t, 5*time.Second, func() bool { return streams.Load() >= 2 }, "a to give up on the blocked stream and open another")
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("the blocked stream was given up after %v, before the write timeout", d)
	}
	if st := a.tr.PeerStats()[3]; st.Counts.Fail == 0 {
		t.Errorf("counts = %+v, want the lost messages counted", st.Counts)
	}
}

// TestTransportDeadPeerDoesNotBlock: Send to a peer nobody listens for drops at once and reports it unreachable.
func TestTransportDeadPeerDoesNotBlock(t *testing.T) {
	fake := &trFakeRaft{}
	tr := NewTransport(1, 0x77, fake)
	trFast(tr)
	defer tr.Stop()
	tr.AddPeer(2, []string{trDeadURL(t), trDeadURL(t)})

	const n = 100000
	msgs := make([]raftpb.Message, n)
	for i := range msgs {
		msgs[i] = raftpb.Message{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 1}
	}
	start := time.Now()
	tr.Send(msgs)
	for i := range 1000 {
		tr.Send(msgs[i : i+1])
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Send to a dead peer took %v", d)
	}
	trWait(t, 3*time.Second, func() bool { return fake.unreachableCount(2) > 0 }, "ReportUnreachable(2)")
	if st := tr.PeerStats()[2]; st.Counts.Fail != n+1000 || st.Counts.Success != 0 {
		t.Errorf("counts = %+v, want %d failures", st.Counts, n+1000)
	}
	if d := tr.Totals().Dropped; d != n+1000 {
		t.Errorf("dropped = %d, want %d", d, n+1000)
	}
}

// TestTransportSlowPeerDoesNotBlock: a peer that stops reading fills its own queue only; others and Stop are unaffected.
func TestTransportSlowPeerDoesNotBlock(t *testing.T) {
	// The slow peer accepts the stream and then never reads it.
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.EnableFullDuplex()
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv, addr := trServe(t, "127.0.0.1:0", slow)
	defer srv.Close()
	defer unblock()

	a := trStartNode(t, 1, 0x77, nil, "")
	b := trStartNode(t, 2, 0x77, nil, "")
	a.tr.timeouts.write = time.Second
	a.tr.AddPeer(3, []string{"http://" + addr})
	trLink(t, a, b)
	trWait(t, 3*time.Second, func() bool { return a.tr.Connected(3) }, "stream to the slow peer")

	big := []raftpb.Entry{{Term: 1, Index: 1, Data: bytes.Repeat([]byte("x"), 16<<10)}}
	const n = 100000
	msgs := make([]raftpb.Message, n)
	for i := range msgs {
		msgs[i] = raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 3, Term: 1, Index: uint64(i), Entries: big}
	}
	start := time.Now()
	a.tr.Send(msgs)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Send to a slow peer took %v", d)
	}
	trWait(t, 3*time.Second, func() bool { return a.fake.unreachableCount(3) > 0 }, "ReportUnreachable(3)")
	// The queue holds transportQueueSize; the stream took some before it blocked.
	if st := a.tr.PeerStats()[3]; st.Counts.Fail < n-2*transportQueueSize {
		t.Errorf("counts = %+v, want at least %d failures", st.Counts, n-2*transportQueueSize)
	}
	// The other peer is unaffected.
	m := trApp(1, 2, 42)
	trWait(t, 3*time.Second, func() bool {
		if a.tr.Connected(2) {
			a.tr.Send([]raftpb.Message{m})
		}
		time.Sleep(20 * time.Millisecond)
		return b.fake.count() > 0
	}, "message to the healthy peer (connected %v, stats %+v)", a.tr.Connected(2), a.tr.PeerStats()[2])

	// Stop returns promptly although writes to the slow peer are blocked.
	start = time.Now()
	a.stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Stop took %v with a blocked peer", d)
	}
}

// TestTransportReconnectsAfterRestart: the stream comes back when the receiver restarts on the same address.
func TestTransportReconnectsAfterRestart(t *testing.T) {
	a := trStartNode(t, 1, 0x77, nil, "")
	b := trStartNode(t, 2, 0x77, nil, "")
	a.tr.AddPeer(2, []string{b.url})
	trWait(t, 3*time.Second, func() bool { return a.tr.Connected(2) }, "stream a->b")
	a.tr.Send([]raftpb.Message{trApp(1, 2, 1)})
	trWait(t, 3*time.Second, func() bool { return b.fake.count() == 1 }, "first message")

	b.stop()
	trWait(t, 3*time.Second, func() bool { return !a.tr.Connected(2) }, "a to notice b is gone")
	a.tr.Send([]raftpb.Message{trApp(1, 2, 2)})
	trWait(t, 3*time.Second, func() bool { return a.fake.unreachableCount(2) > 0 }, "ReportUnreachable(2)")

	b2 := trStartNode(t, 2, 0x77, nil, b.addr) // same address, new process
	trWait(t, 5*time.Second, func() bool { return a.tr.Connected(2) }, "a to reconnect")
	want := []raftpb.Message{trApp(1, 2, 3), trApp(1, 2, 4), trApp(1, 2, 5)}
	a.tr.Send(want)
	trWait(t, 3*time.Second, func() bool { return b2.fake.count() == 3 }, "messages after restart")
	trSameMessages(t, b2.fake.received(), want)
}

// TestTransportTriesURLsInTurn: a dead first URL falls through to the next; AddPeer of a known peer moves the stream.
func TestTransportTriesURLsInTurn(t *testing.T) {
	a := trStartNode(t, 1, 0x77, nil, "")
	b := trStartNode(t, 2, 0x77, nil, "")
	a.tr.AddPeer(2, []string{trDeadURL(t), b.url + "/"})
	trWait(t, 3*time.Second, func() bool { return a.tr.Connected(2) }, "stream over the second URL")

	// Moving the peer to another URL reconnects there.
	b2srv, b2addr := trServe(t, "127.0.0.1:0", b.tr.Handler())
	defer b2srv.Close()
	a.tr.AddPeer(2, []string{"http://" + b2addr})
	trWait(t, 3*time.Second, func() bool { return b.reqs.count("/raft/stream 200") == 1 && a.tr.Connected(2) }, "stream on the new URL")
	m := trApp(1, 2, 7)
	trWait(t, 3*time.Second, func() bool {
		a.tr.Send([]raftpb.Message{m})
		time.Sleep(10 * time.Millisecond)
		return b.fake.count() > 0
	}, "message over the new URL")
}

// TestTransportRefusesOtherCluster: another cluster id is refused with 412, bad requests with 400 or 405.
func TestTransportRefusesOtherCluster(t *testing.T) {
	a := trStartNode(t, 1, 0x77, nil, "")
	b := trStartNode(t, 2, 0x78, nil, "")
	a.tr.AddPeer(2, []string{b.url})
	trWait(t, 3*time.Second, func() bool { return b.reqs.count("/raft/stream 412") >= 2 }, "b to refuse a's streams")
	if a.tr.Connected(2) {
		t.Fatal("a connected to a member of another cluster")
	}
	a.tr.Send([]raftpb.Message{trApp(1, 2, 1)})
	if c := b.fake.count(); c != 0 {
		t.Fatalf("b received %d messages from another cluster", c)
	}

	hdr := map[string]string{transportHeaderClusterID: "77", transportHeaderFrom: "1", transportHeaderTo: "2"}
	code, body := trPost(t, b.url+transportStreamPath, hdr, "")
	if code != http.StatusPreconditionFailed || !strings.Contains(body, "cluster ID mismatch") {
		t.Errorf("other cluster: got %d %q, want 412 and a cluster ID mismatch", code, body)
	}
	code, _ = trPost(t, b.url+transportSnapshotPath, hdr, "")
	if code != http.StatusPreconditionFailed {
		t.Errorf("snapshot from other cluster: got %d, want 412", code)
	}
	code, body = trPost(t, b.url+transportStreamPath, map[string]string{transportHeaderFrom: "1"}, "")
	if code != http.StatusPreconditionFailed || !strings.Contains(body, transportHeaderClusterID) {
		t.Errorf("no cluster header: got %d %q, want 412", code, body)
	}
	hdr = map[string]string{transportHeaderClusterID: "78", transportHeaderFrom: "1", transportHeaderTo: "5"}
	code, body = trPost(t, b.url+transportStreamPath, hdr, "")
	if code != http.StatusPreconditionFailed || !strings.Contains(body, "member ID mismatch") {
		t.Errorf("wrong target: got %d %q, want 412", code, body)
	}
	hdr = map[string]string{transportHeaderClusterID: "78"}
	if code, _ = trPost(t, b.url+transportStreamPath, hdr, ""); code != http.StatusBadRequest {
		t.Errorf("no sender: got %d, want 400", code)
	}
	resp, err := http.Get(b.url + transportStreamPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET stream: got %d, want 405", resp.StatusCode)
	}
}

// TestTransportRefusesRemovedMember: RemovePeer closes the member's stream and refuses it with 410.
func TestTransportRefusesRemovedMember(t *testing.T) {
	a := trStartNode(t, 1, 0x77, nil, "")
	b := trStartNode(t, 2, 0x77, nil, "")
	trLink(t, a, b)

	b.tr.RemovePeer(1)
	// b closes a's stream and refuses its attempts to reconnect.
	trWait(t, 3*time.Second, func() bool { return b.reqs.count("/raft/stream 410") >= 2 }, "b to refuse a's streams with 410")
	if a.tr.Connected(2) {
		t.Fatal("a still connected to b after its removal")
	}
	code, body := trPost(t, b.url+transportSnapshotPath, map[string]string{transportHeaderClusterID: "77", transportHeaderFrom: "1"}, "x")
	if code != http.StatusGone || !strings.Contains(body, "removed") {
		t.Errorf("removed member: got %d %q, want 410", code, body)
	}
	if _, ok := b.tr.PeerStats()[1]; ok {
		t.Error("b still lists the removed member in its stats")
	}
	a.tr.Send([]raftpb.Message{trApp(1, 2, 1)})
	b.tr.Send([]raftpb.Message{trApp(2, 1, 1)}) // to an unknown member: dropped
	time.Sleep(50 * time.Millisecond)
	if c := b.fake.count(); c != 0 {
		t.Errorf("b received %d messages from a removed member", c)
	}
	if c := a.fake.count(); c != 0 {
		t.Errorf("a received %d messages after b removed it", c)
	}
}

// TestTransportRemovedHandler: a member whose stream a peer refuses as removed learns it promptly.
func TestTransportRemovedHandler(t *testing.T) {
	a := trStartNode(t, 1, 0x77, nil, "")
	b := trStartNode(t, 2, 0x77, nil, "")
	var called atomic.Int32
	a.tr.SetRemovedHandler(func() { called.Add(1) })
	trLink(t, a, b)
	b.tr.RemovePeer(1)
	// Well before the stream's header timeout: the refusal is read at once.
	trWait(t, time.Second, func() bool { return called.Load() > 0 }, "a's removed handler")
}

// TestTransportSnapshot: MsgSnap takes the snapshot path without holding up the stream, and its outcome is reported.
func TestTransportSnapshot(t *testing.T) {
	a := trStartNode(t, 1, 0x77, nil, "")
	b := trStartNode(t, 2, 0x77, nil, "")
	trLink(t, a, b)

	snap := raftpb.Message{Type: raftpb.MsgSnap, From: 1, To: 2, Term: 4, Snapshot: &raftpb.Snapshot{
		Data:     bytes.Repeat([]byte("snapshot"), 256<<10), // 2 MiB
		Metadata: raftpb.SnapshotMetadata{Index: 100, Term: 4, ConfState: raftpb.ConfState{Voters: []uint64{1, 2}}},
	}}

	// The snapshot is held at b while stream messages keep flowing.
	release := make(chan struct{})
	b.fake.setHook(func(ctx context.Context, m raftpb.Message) error {
		if m.Type == raftpb.MsgSnap {
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	a.tr.Send([]raftpb.Message{snap, trApp(1, 2, 1), trApp(1, 2, 2)})
	trWait(t, 3*time.Second, func() bool { return b.fake.count() == 2 }, "stream messages while a snapshot is pending")
	if r := a.fake.snapReports(); len(r) != 0 {
		t.Fatalf("snapshot reported before b took it: %v", r)
	}
	close(release)
	trWait(t, 5*time.Second, func() bool { return len(a.fake.snapReports()) == 1 }, "ReportSnapshot")
	if r := a.fake.snapReports()[0]; r != (trSnapReport{2, raft.SnapshotFinish}) {
		t.Fatalf("report = %+v, want finish for 2", r)
	}
	got := b.fake.received()
	if len(got) != 3 || got[2].Type != raftpb.MsgSnap {
		t.Fatalf("b received %d messages, last %v; want the snapshot last", len(got), got[len(got)-1].Type)
	}
	trSameMessages(t, got[2:], []raftpb.Message{snap})
	if b.reqs.count("/raft/snapshot 204") != 1 || b.reqs.count("start /raft/stream") != 1 {
		t.Errorf("b served %v; want one snapshot POST", b.reqs.seen)
	}

	// b refuses the next snapshot: a reports a failure.
	b.fake.setHook(func(ctx context.Context, m raftpb.Message) error {
		if m.Type == raftpb.MsgSnap {
			return errors.New("snapshot refused by test")
		}
		return nil
	})
	a.tr.Send([]raftpb.Message{snap})
	trWait(t, 5*time.Second, func() bool { return len(a.fake.snapReports()) == 2 }, "second ReportSnapshot")
	if r := a.fake.snapReports()[1]; r != (trSnapReport{2, raft.SnapshotFailure}) {
		t.Errorf("report = %+v, want failure for 2", r)
	}
	if c := b.reqs.count("/raft/snapshot 500"); c != 1 {
		t.Errorf("b answered %d snapshots with 500, want 1", c)
	}

	// A snapshot to a dead peer, and to an unknown one, fails too.
	a.tr.AddPeer(9, []string{trDeadURL(t)})
	dead := snap
	dead.To = 9
	unknown := snap
	unknown.To = 10
	a.tr.Send([]raftpb.Message{dead, unknown})
	trWait(t, 5*time.Second, func() bool { return len(a.fake.snapReports()) == 4 }, "reports for dead and unknown peers")
	for _, r := range a.fake.snapReports()[2:] {
		if r.status != raft.SnapshotFailure || (r.id != 9 && r.id != 10) {
			t.Errorf("report = %+v, want failure for 9 or 10", r)
		}
	}
}

// TestTransportFilterDropsAndDelays: SetFilter drops and delays outgoing messages without blocking Send.
func TestTransportFilterDropsAndDelays(t *testing.T) {
	a := trStartNode(t, 1, 0x77, nil, "")
	b := trStartNode(t, 2, 0x77, nil, "")
	trLink(t, a, b)

	a.tr.SetFilter(func(from, to uint64, m *raftpb.Message) (bool, time.Duration) {
		if from != 1 || to != 2 {
			t.Errorf("filter called with from %d to %d", from, to)
		}
		return m.Type == raftpb.MsgSnap || m.Index%2 == 1, 0
	})
	var msgs, want []raftpb.Message
	for i := uint64(0); i < 100; i++ {
		msgs = append(msgs, trApp(1, 2, i))
		if i%2 == 0 {
			want = append(want, msgs[i])
		}
	}
	a.tr.Send(msgs)
	a.tr.Send([]raftpb.Message{{Type: raftpb.MsgSnap, From: 1, To: 2, Index: 2, Snapshot: &raftpb.Snapshot{}}})
	trWait(t, 3*time.Second, func() bool { return b.fake.count() >= 50 }, "the kept half")
	trWait(t, 3*time.Second, func() bool { return len(a.fake.snapReports()) == 1 }, "report of the dropped snapshot")
	time.Sleep(20 * time.Millisecond)
	trSameMessages(t, b.fake.received(), want)
	if r := a.fake.snapReports()[0]; r.status != raft.SnapshotFailure {
		t.Errorf("dropped snapshot reported as %v", r.status)
	}

	const delay = 150 * time.Millisecond
	a.tr.SetFilter(func(from, to uint64, m *raftpb.Message) (bool, time.Duration) { return false, delay })
	start := time.Now()
	a.tr.Send([]raftpb.Message{trApp(1, 2, 200)})
	if d := time.Since(start); d > delay/2 {
		t.Errorf("Send with a delaying filter blocked for %v", d)
	}
	trWait(t, 3*time.Second, func() bool { return b.fake.count() == 51 }, "delayed message")
	if d := time.Since(start); d < delay {
		t.Errorf("delayed message arrived after %v, want at least %v", d, delay)
	}

	a.tr.SetFilter(nil)
	a.tr.Send([]raftpb.Message{trApp(1, 2, 201)})
	trWait(t, 3*time.Second, func() bool { return b.fake.count() == 52 }, "message without filter")
}

// TestTransportLatencyStats: heartbeat round trips feed the latency stats, shaped as etcd reports them.
func TestTransportLatencyStats(t *testing.T) {
	a := trStartNode(t, 1, 0x77, nil, "")
	b := trStartNode(t, 2, 0x77, nil, "")
	trLink(t, a, b)
	// b answers every heartbeat, 5 ms later.
	b.fake.setHook(func(ctx context.Context, m raftpb.Message) error {
		if m.Type == raftpb.MsgHeartbeat {
			go func() {
				time.Sleep(5 * time.Millisecond)
				b.tr.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeatResp, From: 2, To: 1, Term: m.Term}})
			}()
		}
		return nil
	})
	for i := 1; i <= 3; i++ {
		a.tr.Send([]raftpb.Message{{Type: raftpb.MsgHeartbeat, From: 1, To: 2, Term: 1}})
		trWait(t, 3*time.Second, func() bool { return a.fake.count() == i }, "heartbeat answer %d", i)
	}
	st := a.tr.PeerStats()[2]
	l := st.Latency
	if l.Current < 5 || l.Minimum < 5 || l.Minimum > l.Average || l.Average > l.Maximum || l.StandardDeviation < 0 {
		t.Errorf("latency = %+v; want samples of at least 5 ms, min <= avg <= max", l)
	}
	if st.Counts.Success != 3 {
		t.Errorf("counts = %+v, want 3 successes", st.Counts)
	}
	b2, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var shape map[string]map[string]float64
	if err := json.Unmarshal(b2, &shape); err != nil {
		t.Fatalf("stats JSON %s: %v", b2, err)
	}
	for _, k := range []string{"current", "average", "standardDeviation", "minimum", "maximum"} {
		if _, ok := shape["latency"][k]; !ok {
			t.Errorf("stats JSON %s lacks latency.%s", b2, k)
		}
	}
	for _, k := range []string{"fail", "success"} {
		if _, ok := shape["counts"][k]; !ok {
			t.Errorf("stats JSON %s lacks counts.%s", b2, k)
		}
	}
}

// TestTransportStopNoLeaks: Stop is prompt, leaves no goroutine behind and makes the transport inert.
func TestTransportStopNoLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		var nodes []*trNode
		for id := uint64(1); id <= 3; id++ {
			nodes = append(nodes, trStartNode(t, id, 0x77, nil, ""))
		}
		trLink(t, nodes[0], nodes[1])
		trLink(t, nodes[1], nodes[2])
		trLink(t, nodes[0], nodes[2])
		nodes[0].tr.AddPeer(9, []string{trDeadURL(t)}) // keeps retrying
		for _, n := range nodes {
			for _, m := range nodes {
				if m != n {
					n.tr.Send([]raftpb.Message{trApp(n.id, m.id, 1)})
				}
			}
		}
		snap := raftpb.Message{Type: raftpb.MsgSnap, From: 1, To: 2, Snapshot: &raftpb.Snapshot{Data: []byte("s")}}
		nodes[0].tr.Send([]raftpb.Message{snap})
		for _, n := range nodes {
			trWait(t, 3*time.Second, func() bool { return n.fake.count() >= 2 }, "messages at %d", n.id)
		}
		trWait(t, 3*time.Second, func() bool { return len(nodes[0].fake.snapReports()) == 1 }, "snapshot report")
		start := time.Now()
		for _, n := range nodes {
			n.tr.Stop()
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Stop took %v", d)
		}
		// After Stop: no panic, nothing sent, the handler refuses.
		nodes[0].tr.Send([]raftpb.Message{trApp(1, 2, 5)})
		nodes[0].tr.AddPeer(4, []string{nodes[1].url})
		nodes[0].tr.Stop()
		hdr := map[string]string{transportHeaderClusterID: "77", transportHeaderFrom: "1"}
		if code, _ := trPost(t, nodes[1].url+transportStreamPath, hdr, ""); code != http.StatusServiceUnavailable {
			t.Errorf("stream to a stopped transport: got %d, want 503", code)
		}
		for _, n := range nodes {
			n.stop()
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			var buf bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Fatalf("goroutines: %d before, %d after Stop:\n%s", before, runtime.NumGoroutine(), buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ---- three real raft nodes over three transports ----

// trNodeRaft hands a transport's deliveries to a raft.Node.
type trNodeRaft struct{ n atomic.Pointer[raft.Node] }

func (r *trNodeRaft) Process(ctx context.Context, m raftpb.Message) error {
	return (*r.n.Load()).Step(ctx, m)
}
func (r *trNodeRaft) ReportUnreachable(id uint64) { (*r.n.Load()).ReportUnreachable(id) }
func (r *trNodeRaft) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	(*r.n.Load()).ReportSnapshot(id, status)
}

// trMember is one raft member of the test cluster with its Ready loop.
type trMember struct {
	*trNode
	node    raft.Node
	storage *raft.MemoryStorage
	mu      sync.Mutex
	applied []string
	stopc   chan struct{}
	done    chan struct{}
}

// run is a minimal Ready loop: persist, send, apply, advance.
func (m *trMember) run(t *testing.T) {
	defer close(m.done)
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			m.node.Tick()
		case rd := <-m.node.Ready():
			if !raft.IsEmptySnap(rd.Snapshot) {
				if err := m.storage.ApplySnapshot(rd.Snapshot); err != nil {
					t.Errorf("member %d: apply snapshot: %v", m.id, err)
				}
			}
			if err := m.storage.Append(rd.Entries); err != nil {
				t.Errorf("member %d: append: %v", m.id, err)
			}
			if !raft.IsEmptyHardState(rd.HardState) {
				if err := m.storage.SetHardState(rd.HardState); err != nil {
					t.Errorf("member %d: hard state: %v", m.id, err)
				}
			}
			m.tr.Send(rd.Messages)
			for _, e := range rd.CommittedEntries {
				switch e.Type {
				case raftpb.EntryNormal:
					if len(e.Data) > 0 {
						m.mu.Lock()
						m.applied = append(m.applied, string(e.Data))
						m.mu.Unlock()
					}
				case raftpb.EntryConfChange:
					var cc raftpb.ConfChange
					if err := cc.Unmarshal(e.Data); err != nil {
						t.Errorf("member %d: conf change: %v", m.id, err)
						continue
					}
					m.node.ApplyConfChange(cc)
				}
			}
			m.node.Advance()
		case <-m.stopc:
			return
		}
	}
}

func (m *trMember) hasApplied(v string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Contains(m.applied, v)
}

// trLeader returns the member all the given members agree leads, or nil.
func trLeader(ms []*trMember) *trMember {
	var lead uint64
	for _, m := range ms {
		st := m.node.Status()
		if st.Lead == 0 || (lead != 0 && st.Lead != lead) {
			return nil
		}
		lead = st.Lead
	}
	for _, m := range ms {
		if m.id == lead && m.node.Status().RaftState == raft.StateLeader {
			return m
		}
	}
	return nil
}

// trCommit proposes v through the leader of ms until every member of ms applied it.
func trCommit(t *testing.T, ms []*trMember, v string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if l := trLeader(ms); l != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = l.node.Propose(ctx, []byte(v))
			cancel()
			settle := time.Now().Add(time.Second)
			for time.Now().Before(settle) {
				all := true
				for _, m := range ms {
					all = all && m.hasApplied(v)
				}
				if all {
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%q not applied on all of %d members", v, len(ms))
}

// TestTransportRaftCluster: three raft nodes elect a leader and commit over the transports, and elect
// another leader when the first is partitioned away.
func TestTransportRaftCluster(t *testing.T) {
	const cluster = 0xc1
	var ms []*trMember
	var adapters []*trNodeRaft
	for id := uint64(1); id <= 3; id++ {
		ad := &trNodeRaft{}
		adapters = append(adapters, ad)
		ms = append(ms, &trMember{trNode: trStartNode(t, id, cluster, ad, ""), stopc: make(chan struct{}), done: make(chan struct{})})
	}
	for _, a := range ms {
		for _, b := range ms {
			if a != b {
				a.tr.AddPeer(b.id, []string{b.url})
			}
		}
	}
	for _, a := range ms {
		for _, b := range ms {
			if a != b {
				trWait(t, 3*time.Second, func() bool { return a.tr.Connected(b.id) }, "stream %d->%d", a.id, b.id)
			}
		}
	}
	peers := []raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}
	quiet := &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}
	for i, m := range ms {
		m.storage = raft.NewMemoryStorage()
		m.node = raft.StartNode(&raft.Config{
			ID:              m.id,
			ElectionTick:    10,
			HeartbeatTick:   1,
			Storage:         m.storage,
			MaxSizePerMsg:   1 << 20,
			MaxInflightMsgs: 256,
			CheckQuorum:     true,
			PreVote:         true,
			Logger:          quiet,
		}, peers)
		adapters[i].n.Store(&m.node)
	}
	for _, m := range ms { // no message flows before every node exists
		go m.run(t)
	}
	defer func() {
		for _, m := range ms {
			close(m.stopc)
			<-m.done
			m.node.Stop()
			m.trNode.stop()
		}
	}()

	trWait(t, 5*time.Second, func() bool { return trLeader(ms) != nil }, "a leader")
	for i := range 3 {
		trCommit(t, ms, fmt.Sprintf("before-%d", i))
	}
	old := trLeader(ms)
	if old == nil {
		t.Fatal("no stable leader after commits")
	}
	t.Logf("leader %d; stats %+v", old.id, old.tr.PeerStats())

	// Partition the leader from the others, both ways.
	isolate := func(from, to uint64, m *raftpb.Message) (bool, time.Duration) {
		return from == old.id || to == old.id, 0
	}
	var rest []*trMember
	for _, m := range ms {
		m.tr.SetFilter(isolate)
		if m != old {
			rest = append(rest, m)
		}
	}
	trWait(t, 5*time.Second, func() bool { l := trLeader(rest); return l != nil && l != old }, "a new leader among %d and %d", rest[0].id, rest[1].id)
	trCommit(t, rest, "during-partition")
	if old.hasApplied("during-partition") {
		t.Fatal("the isolated old leader applied an entry committed without it")
	}

	// Heal: the old leader follows the new one and catches up.
	for _, m := range ms {
		m.tr.SetFilter(nil)
	}
	trWait(t, 5*time.Second, func() bool { return old.hasApplied("during-partition") }, "the old leader to catch up")
	trCommit(t, ms, "after-heal")
}

// TestTransportKeepalive: keepalives hold an idle stream open past the
// receiver's idle timeout; without them the receiver drops it and the sender
// reconnects.
func TestTransportKeepalive(t *testing.T) {
	a := trStartNode(t, 1, 0x77, nil, "")
	b := trStartNode(t, 2, 0x77, nil, "")
	a.tr.timeouts.keepalive = 30 * time.Millisecond
	b.tr.timeouts.idle = 300 * time.Millisecond
	a.tr.AddPeer(2, []string{b.url})
	trWait(t, 3*time.Second, func() bool { return a.tr.Connected(2) }, "stream a->b")
	time.Sleep(time.Second)
	if c := b.reqs.count("start /raft/stream"); c != 1 || !a.tr.Connected(2) {
		t.Fatalf("idle stream with keepalives: %d streams started, connected %v; want 1, true", c, a.tr.Connected(2))
	}

	c := trStartNode(t, 3, 0x77, nil, "")
	c.tr.timeouts.idle = 300 * time.Millisecond
	a.tr.timeouts.keepalive = time.Hour // peers added from now on stay silent
	a.tr.AddPeer(3, []string{c.url})
	trWait(t, 3*time.Second, func() bool { return c.reqs.count("start /raft/stream") >= 2 }, "c to drop the silent stream and a to reconnect")
	trWait(t, 3*time.Second, func() bool { return a.tr.Connected(3) }, "stream a->c")
	m := trApp(1, 3, 1)
	trWait(t, 3*time.Second, func() bool {
		if a.tr.Connected(3) {
			a.tr.Send([]raftpb.Message{m})
		}
		time.Sleep(20 * time.Millisecond)
		return c.fake.count() > 0
	}, "message over the new stream")
}

// ---- benchmarks ----

// trEchoRaft is a transportRaft for benchmarks: a MsgApp is answered with a
// MsgAppResp through send, and every MsgAppResp is passed to got.
type trEchoRaft struct {
	send func([]raftpb.Message)
	got  chan raftpb.Message
}

func (e *trEchoRaft) Process(ctx context.Context, m raftpb.Message) error {
	switch m.Type {
	case raftpb.MsgApp:
		e.send([]raftpb.Message{{Type: raftpb.MsgAppResp, From: m.To, To: m.From, Term: m.Term, Index: m.Index + uint64(len(m.Entries))}})
	case raftpb.MsgAppResp:
		e.got <- m
	}
	return nil
}
func (e *trEchoRaft) ReportUnreachable(id uint64)                          {}
func (e *trEchoRaft) ReportSnapshot(id uint64, status raft.SnapshotStatus) {}

// trBenchPair links two transports whose raft answers MsgApp; replies to a
// arrive on the returned channel.
func trBenchPair(b *testing.B) (a *trNode, replies chan raftpb.Message) {
	// Tearing the pair down breaks its streams; that is no news here.
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	b.Cleanup(func() { slog.SetDefault(prev) })
	ra := &trEchoRaft{got: make(chan raftpb.Message, 1024)}
	rb := &trEchoRaft{}
	a = trStartNode(b, 1, 0x77, ra, "")
	bn := trStartNode(b, 2, 0x77, rb, "")
	ra.send, rb.send = a.tr.Send, bn.tr.Send
	trLink(b, a, bn)
	return a, ra.got
}

// trBenchApp is a MsgApp the size of one small client write.
func trBenchApp(idx uint64) raftpb.Message {
	return raftpb.Message{
		Type: raftpb.MsgApp, From: 1, To: 2, Term: 3, LogTerm: 3, Index: idx, Commit: idx,
		Entries: []raftpb.Entry{{Term: 3, Index: idx + 1, Data: bytes.Repeat([]byte("v"), 160)}},
	}
}

// BenchmarkTransportRoundTrip measures one MsgApp from a to b and its answer
// back, one at a time: the latency of two message hops.
func BenchmarkTransportRoundTrip(b *testing.B) {
	a, replies := trBenchPair(b)
	msgs := []raftpb.Message{trBenchApp(0)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msgs[0].Index = uint64(i)
		a.tr.Send(msgs)
		<-replies // a lost message hangs the benchmark until go test times out
	}
}

// BenchmarkTransportPipelined keeps up to 64 MsgApp in flight from a to b,
// each answered by b: the cost per message under load.
func BenchmarkTransportPipelined(b *testing.B) {
	a, replies := trBenchPair(b)
	const window = 64
	msgs := []raftpb.Message{trBenchApp(0)}
	b.ReportAllocs()
	b.ResetTimer()
	inflight := 0
	for i := 0; i < b.N; i++ {
		for ; inflight >= window; inflight-- {
			<-replies
		}
		msgs[0].Index = uint64(i)
		a.tr.Send(msgs)
		inflight++
	}
	for ; inflight > 0; inflight-- {
		<-replies
	}
	b.StopTimer()
	b.ReportMetric(float64(a.tr.peer(2).batches.Load())/float64(b.N), "batches/msg")
}
