// In-process multi-member cluster helpers and membership tests.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"etcdlite/kv"
)

// testCluster is a cluster of in-process members on 127.0.0.1, each with
// its own temporary data dir and kernel-chosen ports.
type testCluster struct {
	t       *testing.T
	mu      sync.Mutex
	members []*clusterMember
}

// clusterMember is one member of a testCluster; srv is nil while stopped.
type clusterMember struct {
	cfg *config
	srv *server
	url string
}

func freePortURL(t testing.TB) string {
	return fmt.Sprintf("http://127.0.0.1:%d", confFreePort(t.(*testing.T)))
}

// clusterConfig makes the configuration of member name of a cluster whose
// members' peer URLs are given.
func clusterConfig(t *testing.T, name, clientURL string, peers map[string]string, state string) *config {
	t.Helper()
	cfg := memberConfig(t, name, t.TempDir(), clientURL, peers)
	cfg.InitialClusterState = state
	cfg.InitialClusterToken = "test-cluster"
	cfg.HeartbeatMs, cfg.ElectionMs = 20, 200
	return cfg
}

// startTestCluster starts n members and waits until they have a leader and
// have all published themselves.
func startTestCluster(t *testing.T, n int, tune func(*config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t}
	peers := map[string]string{}
	for i := 0; i < n; i++ {
		peers[fmt.Sprintf("m%d", i)] = freePortURL(t)
	}
	for i := 0; i < n; i++ {
		cfg := clusterConfig(t, fmt.Sprintf("m%d", i), freePortURL(t), peers, "new")
		if tune != nil {
			tune(cfg)
		}
		c.members = append(c.members, &clusterMember{cfg: cfg, url: cfg.AdvertiseClientURLs[0].String()})
	}
	for i := range c.members {
		c.start(i)
	}
	t.Cleanup(c.stopAll)
	c.waitReady()
	return c
}

func (c *testCluster) start(i int) {
	c.t.Helper()
	m := c.members[i]
	srv, err := startServer(m.cfg)
	if err != nil {
		c.t.Fatalf("start %s: %v", m.cfg.Name, err)
	}
	c.mu.Lock()
	m.srv = srv
	c.mu.Unlock()
}

func (c *testCluster) stop(i int) {
	c.mu.Lock()
	srv := c.members[i].srv
	c.members[i].srv = nil
	c.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
}

func (c *testCluster) stopAll() {
	for i := range c.members {
		c.stop(i)
	}
}

func (c *testCluster) running() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i, m := range c.members {
		if m.srv != nil {
			out = append(out, i)
		}
	}
	return out
}

func (c *testCluster) srv(i int) *server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[i].srv
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leader returns the index of the running member that leads, waiting for
// the running members to agree on one.
func (c *testCluster) leader() int {
	c.t.Helper()
	lead := -1
	waitFor(c.t, 15*time.Second, "a leader", func() bool {
		var id uint64
		for _, i := range c.running() {
			l := c.srv(i).leader.Load()
			if l == 0 || (id != 0 && l != id) {
				return false
			}
			id = l
		}
		for _, i := range c.running() {
			if c.srv(i).id == id {
				lead = i
				return true
			}
		}
		return false
	})
	return lead
}

// waitReady waits until every running member serves clients.
func (c *testCluster) waitReady() {
	c.t.Helper()
	c.leader()
	for _, i := range c.running() {
		s := c.srv(i)
		select {
		case <-s.ready:
		case <-time.After(15 * time.Second):
			c.t.Fatalf("member %s never served clients", c.members[i].cfg.Name)
		}
	}
}

// waitConverged waits until every running member has applied the same
// index and holds the same keys, and returns that tree.
func (c *testCluster) waitConverged() string {
	c.t.Helper()
	var dump string
	waitFor(c.t, 20*time.Second, "members to converge", func() bool {
		dump = ""
		for n, i := range c.running() {
			d := storeDump(c.srv(i).store)
			if n > 0 && d != dump {
				return false
			}
			dump = d
		}
		return true
	})
	return dump
}

// storeDump is the whole user tree of a store, sorted, without TTLs (which
// depend on the time of the read).
func storeDump(st *kv.Store) string {
	ev, err := st.Get(keysPrefix, true, true, 0)
	if err != nil {
		return err.Error()
	}
	var strip func(n *kv.NodeExtern)
	strip = func(n *kv.NodeExtern) {
		n.TTL = 0
		for _, c := range n.Nodes {
			strip(c)
		}
	}
	strip(ev.Node)
	ev.EtcdIndex = st.Index()
	return string(ev.AppendJSON(nil, keysPrefix, false))
}

// httpDo sends a request to a member and returns status and body.
func httpDo(t *testing.T, method, u string, form url.Values) (int, string) {
	t.Helper()
	code, body, err := linHTTP(&http.Client{Timeout: 20 * time.Second}, method, u, form)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	return code, body
}

// postMember asks member URL u to add a member with peer URL peer.
func postMember(t *testing.T, u, peer string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u+"/v2/members", strings.NewReader(`{"peerURLs":["`+peer+`"]}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestClusterWritesThroughEveryMember(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d members", n), func(t *testing.T) { testWritesThroughEveryMember(t, n) })
	}
}

func testWritesThroughEveryMember(t *testing.T, n int) {
	c := startTestCluster(t, n, nil)
	lead := c.leader()
	follower := (lead + 1) % n
	// a watch on a follower sees a write made on the leader
	watch := make(chan string, 1)
	go func() {
		resp, err := http.Get(c.members[follower].url + "/v2/keys/watched?wait=true")
		if err != nil {
			watch <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		watch <- string(b)
	}()
	time.Sleep(100 * time.Millisecond)
	if code, body := httpDo(t, "PUT", c.members[lead].url+"/v2/keys/watched", url.Values{"value": {"w"}}); code != 201 {
		t.Fatalf("put on leader: %d %s", code, body)
	}
	select {
	case got := <-watch:
		if !strings.Contains(got, `"value":"w"`) {
			t.Fatalf("watch on follower got %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch on follower not woken")
	}
	for i, m := range c.members {
		code, body := httpDo(t, "PUT", m.url+fmt.Sprintf("/v2/keys/k%d", i), url.Values{"value": {fmt.Sprint(i)}})
		if code != 201 {
			t.Fatalf("put through member %d: %d %s", i, code, body)
		}
	}
	for _, m := range c.members {
		for i := range c.members {
			code, body := httpDo(t, "GET", m.url+fmt.Sprintf("/v2/keys/k%d?quorum=true", i), nil)
			if code != 200 || !strings.Contains(body, fmt.Sprintf(`"value":"%d"`, i)) {
				t.Fatalf("quorum read of k%d on %s: %d %s", i, m.url, code, body)
			}
		}
	}
	c.waitConverged()
	// the members API and the machines list show everyone
	code, body := httpDo(t, "GET", c.members[follower].url+"/v2/members", nil)
	if code != 200 || strings.Count(body, `"name":"m`) != n {
		t.Fatalf("members: %d %s", code, body)
	}
	code, body = httpDo(t, "GET", c.members[follower].url+"/v2/machines", nil)
	if code != 200 || strings.Count(body, "http://") != n {
		t.Fatalf("machines: %d %s", code, body)
	}
	code, body = httpDo(t, "GET", c.members[lead].url+"/v2/stats/leader", nil)
	var ls struct {
		Followers map[string]transportPeerStats `json:"followers"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &ls) != nil || len(ls.Followers) != n-1 {
		t.Fatalf("leader stats: %d %s", code, body)
	}
}

func TestClusterLeaderAndFollowerFailure(t *testing.T) {
	c := startTestCluster(t, 3, nil)
	lead := c.leader()
	follower := (lead + 1) % 3
	put := func(i int, key, value string) {
		t.Helper()
		code, body := httpDo(t, "PUT", c.members[i].url+"/v2/keys/"+key, url.Values{"value": {value}})
		if code/100 != 2 {
			t.Fatalf("put %s via %s: %d %s", key, c.members[i].cfg.Name, code, body)
		}
	}
	put(lead, "before", "1")
	// a follower goes away and comes back
	c.stop(follower)
	put(lead, "while-follower-down", "2")
	c.start(follower)
	c.waitReady()
	c.waitConverged()
	// the leader goes away: another is elected and serves
	c.stop(lead)
	newLead := c.leader()
	if newLead == lead {
		t.Fatal("stopped member still leads")
	}
	put(newLead, "after-failover", "3")
	other := 3 - lead - newLead
	put(other, "through-follower", "4")
	c.start(lead)
	c.waitReady()
	dump := c.waitConverged()
	for _, k := range []string{"before", "while-follower-down", "after-failover", "through-follower"} {
		if !strings.Contains(dump, `"/`+k+`"`) {
			t.Fatalf("key %s lost: %s", k, dump)
		}
	}
}

func TestClusterAddMemberCatchesUpFromSnapshot(t *testing.T) {
	c := startTestCluster(t, 3, func(cfg *config) {
		cfg.SnapshotCount = 50
		cfg.hooks.catchUpEntries = 10
	})
	lead := c.leader()
	for i := 0; i < 200; i++ {
		code, body := httpDo(t, "PUT", c.members[i%3].url+fmt.Sprintf("/v2/keys/pre/k%03d", i), url.Values{"value": {fmt.Sprint(i)}})
		if code != 201 {
			t.Fatalf("put %d: %d %s", i, code, body)
		}
	}
	// add a fourth member through the members API, then start it
	peerURL, clientURL := freePortURL(t), freePortURL(t)
	if code, body := postMember(t, c.members[lead].url, peerURL); code != 201 || !strings.Contains(body, peerURL) {
		t.Fatalf("member add: %d %s", code, body)
	}
	peers := map[string]string{"m3": peerURL}
	for _, m := range c.members {
		peers[m.cfg.Name] = m.cfg.InitialAdvertisePeerURLs[0].String()
	}
	cfg := clusterConfig(t, "m3", clientURL, peers, "existing")
	cfg.SnapshotCount, cfg.hooks.catchUpEntries = 50, 10
	c.members = append(c.members, &clusterMember{cfg: cfg, url: clientURL})
	c.start(3)
	c.waitReady()
	c.waitConverged()
	if s := c.srv(3); s.snapshotIndex == 0 {
		t.Errorf("new member caught up without a snapshot (log was compacted to 10 entries)")
	}
	code, body := httpDo(t, "GET", clientURL+"/v2/keys/pre/k000", nil)
	if code != 200 {
		t.Fatalf("new member lacks old keys: %d %s", code, body)
	}
	code, body = httpDo(t, "GET", c.members[0].url+"/v2/members", nil)
	if code != 200 || strings.Count(body, `"id"`) != 4 {
		t.Fatalf("members after add: %s", body)
	}
	// remove a follower that is not the new one: it shuts itself down
	victim := (lead + 1) % 3
	vid := c.srv(victim).id
	code, body = httpDo(t, "DELETE", c.members[lead].url+"/v2/members/"+idString(vid), nil)
	if code != 204 {
		t.Fatalf("member remove: %d %s", code, body)
	}
	select {
	case <-c.srv(victim).Done():
	case <-time.After(10 * time.Second):
		t.Fatal("removed member did not stop")
	}
	c.stop(victim)
	code, body = httpDo(t, "GET", c.members[lead].url+"/v2/members", nil)
	if code != 200 || strings.Count(body, `"id"`) != 3 || strings.Contains(body, idString(vid)) {
		t.Fatalf("members after remove: %s", body)
	}
	code, _ = httpDo(t, "DELETE", c.members[lead].url+"/v2/members/"+idString(vid), nil)
	if code != 410 {
		t.Fatalf("removing a removed member: %d, want 410", code)
	}
	if code, body := httpDo(t, "PUT", clientURL+"/v2/keys/after", url.Values{"value": {"x"}}); code != 201 {
		t.Fatalf("write through new member after remove: %d %s", code, body)
	}
	c.waitConverged()
}

func TestClusterUpdatePeerURL(t *testing.T) {
	c := startTestCluster(t, 3, nil)
	lead := c.leader()
	target := (lead + 1) % 3
	newPeer := freePortURL(t)
	tid := c.srv(target).id
	req, _ := http.NewRequest("PUT", c.members[lead].url+"/v2/members/"+idString(tid), strings.NewReader(`{"peerURLs":["`+newPeer+`"]}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("member update: %d", resp.StatusCode)
	}
	// restart the member on its new peer URL
	c.stop(target)
	u := mustURLs(t, newPeer)
	c.members[target].cfg.ListenPeerURLs = u
	c.members[target].cfg.InitialAdvertisePeerURLs = u
	c.members[target].cfg.InitialCluster[c.members[target].cfg.Name] = u
	c.start(target)
	c.waitReady()
	if code, body := httpDo(t, "PUT", c.members[target].url+"/v2/keys/moved", url.Values{"value": {"1"}}); code != 201 {
		t.Fatalf("write through moved member: %d %s", code, body)
	}
	c.waitConverged()
	code, body := httpDo(t, "GET", c.members[lead].url+"/v2/members", nil)
	if code != 200 || !strings.Contains(body, newPeer) {
		t.Fatalf("members after update: %s", body)
	}
}

// TestClusterRefusesChangesThatLoseQuorum: with one of three members down,
// removing a running member or adding a fourth would leave the cluster
// without a quorum of running members, so both are refused.
func TestClusterRefusesChangesThatLoseQuorum(t *testing.T) {
	c := startTestCluster(t, 3, nil)
	lead := c.leader()
	down, up := (lead+1)%3, (lead+2)%3
	c.stop(down)
	upID := c.srv(up).id
	waitFor(t, 10*time.Second, "the leader to notice the stopped member", func() bool {
		tr := c.srv(lead).transport
		return tr.Connected(upID) && !tr.Connected(idOf(c, down))
	})
	code, body := httpDo(t, "DELETE", c.members[lead].url+"/v2/members/"+idString(upID), nil)
	if code != 503 || !strings.Contains(body, "unhealthy cluster") {
		t.Fatalf("removing a running member with another down: %d %s, want 503", code, body)
	}
	if code, body := postMember(t, c.members[lead].url, freePortURL(t)); code != 503 {
		t.Fatalf("adding a member with one of three down: %d %s, want 503", code, body)
	}
	// removing the member that is down keeps a quorum: allowed
	code, body = httpDo(t, "DELETE", c.members[lead].url+"/v2/members/"+idString(idOf(c, down)), nil)
	if code != 204 {
		t.Fatalf("removing the stopped member: %d %s", code, body)
	}
}

// idOf is the id member i had (it may be stopped now).
func idOf(c *testCluster, i int) uint64 {
	urls := urlsToStrings(c.members[i].cfg.InitialAdvertisePeerURLs)
	return memberID(urls, c.members[i].cfg.InitialClusterToken, 0)
}

// A follower that was away while the leader trimmed its in-memory log (no
// snapshot file taken yet) catches up from a snapshot built from the
// leader's applied state.
func TestClusterFollowerCatchesUpAfterLogTrim(t *testing.T) {
	c := startTestCluster(t, 3, func(cfg *config) {
		cfg.hooks.catchUpEntries, cfg.hooks.trimEvery = 5, 20
	})
	lead := c.leader()
	follower := (lead + 1) % 3
	c.stop(follower)
	for i := 0; i < 100; i++ {
		code, body := httpDo(t, "PUT", c.members[lead].url+fmt.Sprintf("/v2/keys/trim/k%03d", i), url.Values{"value": {fmt.Sprint(i)}})
		if code != 201 {
			t.Fatalf("put %d: %d %s", i, code, body)
		}
	}
	first, err := c.srv(lead).storage.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	if applied := c.srv(lead).appliedIndexPub.Load(); applied-first > 30 {
		t.Fatalf("raft's in-memory log holds %d entries (first %d, applied %d); trimming keeps at most 5 + 20", applied-first, first, applied)
	}
	if c.srv(lead).snapshotIndex != 0 {
		t.Fatalf("a snapshot file was taken (index %d); the test means to catch up without one", c.srv(lead).snapshotIndex)
	}
	c.start(follower)
	c.waitReady()
	dump := c.waitConverged()
	if !strings.Contains(dump, `"/trim/k000"`) || !strings.Contains(dump, `"/trim/k099"`) {
		t.Fatalf("the follower lacks keys written while it was away: %s", dump)
	}
	if c.srv(follower).snapshotIndex == 0 {
		t.Fatal("the follower caught up without a snapshot, though the leader's log was trimmed")
	}
}

// A quorum read through a follower whose read-index request is lost on the
// way to the leader is asked for again and answered, not left to time out.
func TestClusterQuorumReadSurvivesLostReadIndex(t *testing.T) {
	c := startTestCluster(t, 3, nil)
	lead := c.leader()
	follower := (lead + 1) % 3
	if code, body := httpDo(t, "PUT", c.members[lead].url+"/v2/keys/q", url.Values{"value": {"v"}}); code != 201 {
		t.Fatalf("put: %d %s", code, body)
	}
	var dropped atomic.Int32
	c.srv(follower).transport.SetFilter(func(from, to uint64, m *raftpb.Message) (bool, time.Duration) {
		return m.Type == raftpb.MsgReadIndex && dropped.Add(1) == 1, 0
	})
	start := time.Now()
	code, body := httpDo(t, "GET", c.members[follower].url+"/v2/keys/q?quorum=true", nil)
	if code != 200 || !strings.Contains(body, `"value":"v"`) {
		t.Fatalf("quorum read: %d %s", code, body)
	}
	if dropped.Load() < 2 {
		t.Fatalf("the read index was asked for %d times; the first was dropped, so it must have been asked again", dropped.Load())
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("quorum read took %v", took)
	}
}

// TestClusterLeaderKeepsLeadingWhileEncodingSnapshot holds the leader's
// encoding of a snapshot for five election timeouts. Its raft loop must go
// on heartbeating and replicating meanwhile: nobody takes over, the
// followers apply what the leader has not yet, and the writes waiting for
// the leader are answered once the encoding ends.
func TestClusterLeaderKeepsLeadingWhileEncodingSnapshot(t *testing.T) {
	release := make(chan struct{})
	var leaderID atomic.Uint64
	var held atomic.Bool
	c := startTestCluster(t, 3, func(cfg *config) {
		cfg.SnapshotCount = 20
		cfg.hooks.encodeHook = func(id uint64) {
			if id == leaderID.Load() && held.CompareAndSwap(false, true) {
				<-release
			}
		}
	})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce) // before the members stop
	lead := c.leader()
	leaderID.Store(c.srv(lead).id)
	term := c.srv(lead).term.Load()

	const writes = 60
	errs := make(chan error, 1)
	go func() {
		client := &http.Client{Timeout: 20 * time.Second}
		for i := 0; i < writes; i++ {
			code, body, err := linHTTP(client, "PUT", c.members[lead].url+fmt.Sprintf("/v2/keys/k%02d", i), url.Values{"value": {fmt.Sprint(i)}})
			if err == nil && code != 201 {
				err = fmt.Errorf("put %d: %d %s", i, code, body)
			}
			if err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	waitFor(t, 10*time.Second, "the leader to start encoding a snapshot", held.Load)
	time.Sleep(5 * time.Duration(c.members[lead].cfg.ElectionMs) * time.Millisecond)
	for _, i := range c.running() {
		if s := c.srv(i); s.leader.Load() != leaderID.Load() || s.term.Load() != term {
			t.Errorf("member %d: leader %x term %d while the leader encoded, want %x term %d",
				i, s.leader.Load(), s.term.Load(), leaderID.Load(), term)
		}
	}
	leaderApplied := c.srv(lead).appliedIndexPub.Load()
	for _, i := range c.running() {
		if i != lead && c.srv(i).appliedIndexPub.Load() <= leaderApplied {
			t.Errorf("follower %d applied %d, no further than the encoding leader (%d)", i, c.srv(i).appliedIndexPub.Load(), leaderApplied)
		}
	}
	releaseOnce()
	select {
	case err := <-errs:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("writes not answered after the encoding ended")
	}
	dump := c.waitConverged()
	for i := 0; i < writes; i++ {
		if !strings.Contains(dump, fmt.Sprintf(`"/k%02d"`, i)) {
			t.Fatalf("key k%02d missing: %s", i, dump)
		}
	}
	snapDir := filepath.Join(c.members[lead].cfg.DataDir, "member", "snap")
	waitFor(t, 10*time.Second, "the leader's snapshot file", func() bool {
		des, _ := os.ReadDir(snapDir)
		return len(des) > 0
	})
}

// TestPeerMembersAsEtcd: a peer's GET /members gives each id as a JSON
// number, field for field as etcd 3.4 does (testdata/proxytls holds
// etcd's answer), so etcd's proxies and joining members read it; and
// what it gives decodes back to the members.
func TestPeerMembersAsEtcd(t *testing.T) {
	m := startTestMember(t, nil)
	rec := httptest.NewRecorder()
	m.peerHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/members", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /members: %d %s", rec.Code, rec.Body)
	}
	want := fmt.Sprintf(`[{"id":%d,"peerURLs":`, m.id)
	if !strings.HasPrefix(rec.Body.String(), want) {
		t.Fatalf("GET /members: %s, want it to start %s", rec.Body, want)
	}
	ms, err := decodePeerMembers(rec.Body.Bytes())
	if err != nil || len(ms) != 1 || ms[0].ID != idString(m.id) || ms[0].Name != "t" {
		t.Fatalf("decoded %+v, %v", ms, err)
	}
}
