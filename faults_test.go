// Fault-injection tests of the cluster.

package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

var (
	linSeed   = flag.Uint64("lin.seed", 0, "seed for TestClusterLinearizableUnderFaults (0: from the clock)")
	linRounds = flag.Int("lin.rounds", 1, "fault rounds in TestClusterLinearizableUnderFaults")
)

// faultPlan is one fault the test injects into every member's transport.
type faultPlan struct {
	name   string
	filter func(c *testCluster, rng *rand.Rand) func(from, to uint64, m *raftpb.Message) (bool, time.Duration)
}

// isolate cuts member id off from everyone, both ways.
func isolate(id uint64) func(from, to uint64, m *raftpb.Message) (bool, time.Duration) {
	return func(from, to uint64, m *raftpb.Message) (bool, time.Duration) {
		return from == id || to == id, 0
	}
}

var faultPlans = []faultPlan{
	{"partition the leader", func(c *testCluster, rng *rand.Rand) func(uint64, uint64, *raftpb.Message) (bool, time.Duration) {
		return isolate(c.srv(c.leader()).id)
	}},
	{"partition a follower", func(c *testCluster, rng *rand.Rand) func(uint64, uint64, *raftpb.Message) (bool, time.Duration) {
		return isolate(c.srv((c.leader() + 1) % len(c.members)).id)
	}},
	{"drop 20% of messages", func(c *testCluster, rng *rand.Rand) func(uint64, uint64, *raftpb.Message) (bool, time.Duration) {
		var mu sync.Mutex
		r := rand.New(rand.NewPCG(rng.Uint64(), 1))
		return func(from, to uint64, m *raftpb.Message) (bool, time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			return r.IntN(5) == 0, 0
		}
	}},
	{"delay messages up to 60 ms", func(c *testCluster, rng *rand.Rand) func(uint64, uint64, *raftpb.Message) (bool, time.Duration) {
		var mu sync.Mutex
		r := rand.New(rand.NewPCG(rng.Uint64(), 2))
		return func(from, to uint64, m *raftpb.Message) (bool, time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			return false, time.Duration(r.IntN(60)) * time.Millisecond
		}
	}},
}

// setFilter installs f (nil: none) on every running member's transport.
func (c *testCluster) setFilter(f func(from, to uint64, m *raftpb.Message) (bool, time.Duration)) {
	for _, i := range c.running() {
		c.srv(i).transport.SetFilter(f)
	}
}

// TestClusterLinearizableUnderFaults runs clients doing reads (quorum),
// writes and compare-and-swaps on one key through random members while
// the transports drop, delay and partition messages, then checks that the
// history is linearizable, that the members converge, and that no
// acknowledged write is lost.
func TestClusterLinearizableUnderFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster under faults for several seconds")
	}
	seed := *linSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	t.Logf("seed %d", seed)
	c := startTestCluster(t, 3, nil)
	hc := &http.Client{Timeout: 2 * time.Second}
	const key = "/v2/keys/lin/register"
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }

	var mu sync.Mutex
	var history []linOp
	var acked []string // values whose write was acknowledged
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for cl := 0; cl < 6; cl++ {
		wg.Add(1)
		go func(cl int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(cl)+100))
			last := ""
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				m := c.members[r.IntN(len(c.members))]
				op := linOp{Client: cl, Call: now()}
				var code int
				var body string
				var err error
				switch k := r.IntN(10); {
				case k < 4:
					op.Kind = linRead
					code, body, err = linHTTP(hc, "GET", m.url+key+"?quorum=true", nil)
				case k < 7 || last == "":
					op.Kind = linWrite
					op.Value = fmt.Sprintf("c%d-%d", cl, n)
					code, body, err = linHTTP(hc, "PUT", m.url+key, url.Values{"value": {op.Value}})
				default:
					op.Kind = linCAS
					op.Expect = last
					op.Value = fmt.Sprintf("c%d-%d", cl, n)
					code, body, err = linHTTP(hc, "PUT", m.url+key+"?prevValue="+url.QueryEscape(last), url.Values{"value": {op.Value}})
				}
				op.Return = now()
				switch {
				case err != nil || code >= 500:
					if op.Kind == linRead {
						continue // a read that failed tells nothing
					}
					op.Unknown, op.Return = true, linInfinity
				case op.Kind == linRead && code == 200:
					op.Found, op.Value = true, linValue(body)
					last = op.Value
				case op.Kind == linRead && code == 404:
					op.Found = false
				case op.Kind == linWrite && code/100 == 2:
					mu.Lock()
					acked = append(acked, op.Value)
					mu.Unlock()
				case op.Kind == linCAS && code == 200:
					op.Found = true
				case op.Kind == linCAS && (code == 412 || code == 404):
					op.Found = false
				default:
					t.Errorf("unexpected answer %d %s", code, body)
					continue
				}
				mu.Lock()
				history = append(history, op)
				mu.Unlock()
			}
		}(cl)
	}
	for round := 0; round < *linRounds; round++ {
		for _, i := range rng.Perm(len(faultPlans)) {
			p := faultPlans[i]
			t.Logf("fault: %s", p.name)
			c.setFilter(p.filter(c, rng))
			time.Sleep(time.Duration(600+rng.IntN(600)) * time.Millisecond)
			c.setFilter(nil)
			time.Sleep(time.Duration(200+rng.IntN(300)) * time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()
	c.waitConverged()
	// a final read through every member, after everything: an acknowledged
	// write that was lost would make it (and the history) wrong
	for _, m := range c.members {
		op := linOp{Client: 99, Kind: linRead, Call: now()}
		code, body, err := linHTTP(hc, "GET", m.url+key+"?quorum=true", nil)
		op.Return = now()
		if err != nil || (code != 200 && code != 404) {
			t.Fatalf("final read via %s: %d %s %v", m.url, code, body, err)
		}
		op.Found, op.Value = code == 200, linValue(body)
		history = append(history, op)
	}

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d operations (%d acknowledged writes)", len(history), len(acked))
	if len(history) < 50 {
		t.Fatalf("only %d operations completed: the cluster made too little progress", len(history))
	}
	ok, timedOut, explain := linCheck(history, 60*time.Second)
	switch {
	case timedOut:
		t.Logf("linearizability check inconclusive (search cut short): %s", explain)
	case !ok:
		t.Fatalf("history is not linearizable (seed %d): %s", seed, explain)
	}
}

// linHTTP sends one request and returns status and body.
func linHTTP(hc *http.Client, method, u string, form url.Values) (int, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return 0, "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// linValue extracts node.value from a keys answer.
func linValue(body string) string {
	const marker = `"value":"`
	i := strings.Index(body, marker)
	if i < 0 {
		return ""
	}
	rest := body[i+len(marker):]
	return rest[:strings.IndexByte(rest, '"')]
}
