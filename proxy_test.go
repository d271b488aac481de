// Tests of proxy mode.

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTestProxy starts a proxy (mode "on" or "readonly") in front of the
// members whose peer URLs are given.
func startTestProxy(t *testing.T, mode, dataDir string, peers ...string) (*proxy, string) {
	t.Helper()
	ic := map[string][]*url.URL{}
	for i, p := range peers {
		ic[fmt.Sprintf("m%d", i)] = mustURLs(t, p)
	}
	cfg := &config{Name: "proxy", DataDir: dataDir, Proxy: mode, InitialCluster: ic, initialClusterSet: true,
		ListenClientURLs: mustURLs(t, "http://127.0.0.1:0"), InitialClusterState: "new", DiscoveryFallback: "proxy"}
	setProxyTimings(cfg)
	p := startProxyNode(t, cfg)
	return p, "http://" + p.ClientAddrs()[0]
}

// startProxyNode starts cfg, which must make a proxy, and stops it when the
// test ends.
func startProxyNode(t *testing.T, cfg *config) *proxy {
	t.Helper()
	n, err := startNode(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopNode(t, n)
	p, ok := n.(*proxy)
	if !ok {
		t.Fatalf("started a %T, want a proxy", n)
	}
	return p
}

// fixedPortConfig is a single member's configuration on ports chosen now,
// so that its advertised peer URL is one a proxy can reach.
func fixedPortConfig(t *testing.T) *config {
	return memberConfig(t, "t", t.TempDir(), freePortURL(t), map[string]string{"t": freePortURL(t)})
}

// clusterPeers are the peer URLs of c's members.
func clusterPeers(c *testCluster) []string {
	var out []string
	for _, m := range c.members {
		out = append(out, m.cfg.InitialAdvertisePeerURLs[0].String())
	}
	return out
}

// TestProxyFailover kills each member of a three-member cluster in turn
// behind a proxy while clients write and read through it: reads never
// fail, writes fail at most while a new leader is elected, and every
// acknowledged write is there at the end.
func TestProxyFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := startTestCluster(t, 3, nil)
	_, purl := startTestProxy(t, "on", t.TempDir(), clusterPeers(c)...)
	client := &http.Client{Timeout: 20 * time.Second}
	type result struct {
		at  time.Time
		err error
	}
	var mu sync.Mutex
	acked := map[string]string{}
	var writes, reads []result
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key, val := fmt.Sprintf("w%d-%d", w, i), fmt.Sprintf("v%d", i)
				req, _ := http.NewRequest(http.MethodPut, purl+"/v2/keys/"+key, strings.NewReader("value="+val))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				mu.Lock()
				writes = append(writes, result{time.Now(), err})
				if err == nil {
					acked[key] = val
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}(w)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := client.Get(purl + "/v2/keys/?recursive=false")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %s", resp.Status)
				}
			}
			mu.Lock()
			reads = append(reads, result{time.Now(), err})
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var kills []time.Time
	for i := range c.members {
		time.Sleep(300 * time.Millisecond)
		kills = append(kills, time.Now())
		c.stop(i)
		time.Sleep(1500 * time.Millisecond) // an election and writes through the others
		c.start(i)
		waitFor(t, 15*time.Second, "the restarted member to serve", func() bool {
			select {
			case <-c.srv(i).ready:
				return true
			default:
				return false
			}
		})
	}
	// writes sent to a follower just before it learns that the leader is
	// gone are lost with the old leader: the member fails them after its
	// request timeout (5 s and two election timeouts). Wait for writes to
	// succeed again after the last kill.
	last := kills[len(kills)-1]
	waitFor(t, 15*time.Second, "a write through the proxy after the last kill", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, w := range writes {
			if w.err == nil && w.at.After(last) {
				return true
			}
		}
		return false
	})
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	var failedReads, failedWrites int
	for _, r := range reads {
		if r.err != nil {
			failedReads++
			t.Errorf("a read through the proxy failed at %v: %v", r.at.Format("15:04:05.000"), r.err)
		}
	}
	for _, k := range kills {
		// after each kill, writes succeed again within an election plus
		// the member's own timeout for a write lost with the old leader
		ok := false
		for _, w := range writes {
			if w.err == nil && w.at.After(k) && w.at.Before(k.Add(10*time.Second)) {
				ok = true
				break
			}
		}
		if !ok {
			t.Errorf("no write succeeded through the proxy within 10 s of the kill at %v", k.Format("15:04:05.000"))
		}
	}
	window := 5*time.Second + 4*time.Duration(c.members[0].cfg.ElectionMs)*time.Millisecond
	for _, w := range writes {
		if w.err == nil {
			continue
		}
		failedWrites++
		t.Logf("write failed at %v: %v", w.at.Format("15:04:05.000"), w.err)
		inWindow := false
		for _, k := range kills {
			if !w.at.Before(k) && w.at.Before(k.Add(window)) {
				inWindow = true
			}
		}
		if !inWindow {
			t.Errorf("a write failed at %v, more than %v after any kill", w.at.Format("15:04:05.000"), window)
		}
	}
	if failedWrites > 2*2*len(kills) {
		t.Errorf("%d of %d writes failed: more than the writes in flight at each kill", failedWrites, len(writes))
	}
	t.Logf("%d writes (%d failed), %d reads (%d failed) through the proxy, 3 members killed in turn", len(writes), failedWrites, len(reads), failedReads)
	if len(acked) < 6 {
		t.Fatalf("only %d writes acknowledged", len(acked))
	}
	for k, v := range acked {
		resp, err := client.Get(purl + "/v2/keys/" + k + "?quorum=true")
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Node struct{ Value string } `json:"node"`
		}
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if out.Node.Value != v {
			t.Errorf("acknowledged %s=%s reads %q", k, v, out.Node.Value)
		}
	}
}

// TestProxyWatch runs a long-poll watch and a streaming watch through a
// proxy: each event reaches the client as it happens.
func TestProxyWatch(t *testing.T) {
	c := startTestCluster(t, 3, nil)
	_, purl := startTestProxy(t, "on", t.TempDir(), clusterPeers(c)...)

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(purl + "/v2/keys/watched?wait=true")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	time.Sleep(200 * time.Millisecond)
	putValue(t, purl, "watched", "1")
	select {
	case b := <-got:
		if !strings.Contains(b, `"action":"set"`) || !strings.Contains(b, `"value":"1"`) {
			t.Errorf("long-poll watch through the proxy got %q", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the long-poll watch through the proxy never returned")
	}

	resp, err := http.Get(purl + "/v2/keys/streamed?wait=true&stream=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 4)
	go func() {
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadString('\n')
			if strings.TrimSpace(line) != "" {
				lines <- line
			}
			if err != nil {
				close(lines)
				return
			}
		}
	}()
	for i := 1; i <= 3; i++ {
		time.Sleep(50 * time.Millisecond)
		putValue(t, purl, "streamed", fmt.Sprint(i))
		select {
		case l := <-lines:
			if !strings.Contains(l, fmt.Sprintf(`"value":"%d"`, i)) {
				t.Errorf("event %d through the proxy: %q", i, l)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d of the stream did not come through the proxy", i)
		}
	}
}

// TestProxyReadonly checks that a readonly proxy refuses every method but
// GET with etcd's 501 and empty body, and forwards reads.
func TestProxyReadonly(t *testing.T) {
	g := loadEtcdGolden(t).Proxy
	m := startTestMember(t, fixedPortConfig(t))
	putValue(t, m.URL, "ro", "x")
	_, purl := startTestProxy(t, "readonly", t.TempDir(), m.cfg.InitialAdvertisePeerURLs[0].String())
	for _, method := range g.ReadonlyRefused.Methods {
		for _, path := range []string{"/v2/keys/ro", "/v2/members", "/v2/keys/ro?wait=true"} {
			req, _ := http.NewRequest(method, purl+path, strings.NewReader("value=y"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != g.ReadonlyRefused.Status || string(b) != g.ReadonlyRefused.Body {
				t.Errorf("%s %s: %d %q, etcd answers %d %q", method, path, resp.StatusCode, b, g.ReadonlyRefused.Status, g.ReadonlyRefused.Body)
			}
		}
	}
	if v := getValue(t, m.URL, "ro"); v != "x" {
		t.Errorf("a refused write went through: ro=%q", v)
	}
	if v := getValue(t, purl, "ro"); v != "x" {
		t.Errorf("GET through the readonly proxy: %q", v)
	}
	resp, err := http.Get(purl + "/v2/config/local/proxy")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf(`{"endpoints":["%s"]}`, m.URL); string(b) != want {
		t.Errorf("/v2/config/local/proxy: %s, want %s", b, want)
	}
}

// TestProxyMembersDown checks etcd's answers when no member answers (502)
// and while every member is held back after a failure (503), and that the
// proxy recovers once a member is back.
func TestProxyMembersDown(t *testing.T) {
	g := loadEtcdGolden(t).Proxy
	cfg := fixedPortConfig(t)
	m := startTestMember(t, cfg)
	_, purl := startTestProxy(t, "on", t.TempDir(), cfg.InitialAdvertisePeerURLs[0].String())
	if v := getValue(t, purl, "nothing"); v != "" {
		t.Fatalf("got %q", v)
	}
	m.stop(t)
	get := func() (int, string) {
		resp, err := http.Get(purl + "/v2/keys/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != g.AllFailedStatus || body != g.AllFailedBody {
		t.Errorf("all members down: %d %s, etcd %d %s", code, body, g.AllFailedStatus, g.AllFailedBody)
	}
	if code, body := get(); code != g.NoneAvailableStatus || body != g.NoneAvailableBody {
		t.Errorf("every member held back: %d %s, etcd %d %s", code, body, g.NoneAvailableStatus, g.NoneAvailableBody)
	}
	// the same member back on its address: served again after --proxy-failure-wait
	m2 := startTestMember(t, cfg)
	defer m2.stop(t)
	waitFor(t, 5*time.Second, "the proxy to use the member again", func() bool {
		code, _ := get()
		return code == http.StatusNotFound
	})
}

// TestProxyDataDir checks that a proxy writes only proxy/cluster, in
// etcd's format, and that a restarted proxy takes its peers from it.
func TestProxyDataDir(t *testing.T) {
	g := loadEtcdGolden(t).Proxy
	var want proxyClusterFile
	if err := json.Unmarshal([]byte(g.ClusterFileBody), &want); err != nil {
		t.Fatal(err)
	}
	m := startTestMember(t, fixedPortConfig(t))
	dir := t.TempDir()
	peer := m.cfg.InitialAdvertisePeerURLs[0].String()
	p, _ := startTestProxy(t, "on", dir, peer)
	var files []string
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, rel)
		}
		return nil
	})
	if len(files) != 1 || files[0] != filepath.Join("proxy", "cluster") {
		t.Fatalf("data dir holds %v, want only proxy/cluster", files)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "proxy", "cluster"))
	if wantBody := strings.Replace(g.ClusterFileBody, want.PeerURLs[0], peer, 1); string(b) != wantBody {
		t.Errorf("proxy/cluster = %s, want %s (etcd's format)", b, wantBody)
	}
	p.Shutdown(context.Background())
	// restarted with a wrong --initial-cluster, and no --proxy: the data
	// dir says it is a proxy and which peers to ask
	cfg := &config{Name: "proxy", DataDir: dir, Proxy: "off", InitialCluster: map[string][]*url.URL{"x": mustURLs(t, freePortURL(t))},
		ListenClientURLs: mustURLs(t, "http://127.0.0.1:0"), InitialClusterState: "new", DiscoveryFallback: "proxy"}
	setProxyTimings(cfg)
	p2 := startProxyNode(t, cfg)
	putValue(t, "http://"+p2.ClientAddrs()[0], "again", "1")
	if v := getValue(t, m.URL, "again"); v != "1" {
		t.Errorf("write through the restarted proxy: %q", v)
	}
}

// TestProxyTimeouts checks that --proxy-read-timeout cuts a watch that
// waits longer (the client sees a broken answer, not an empty one), and
// that a proxy started before its member finds it within seconds.
func TestProxyTimeouts(t *testing.T) {
	cfg := fixedPortConfig(t)
	peer := cfg.InitialAdvertisePeerURLs[0].String()
	ic := map[string][]*url.URL{"t": mustURLs(t, peer)}
	pcfg := &config{Name: "proxy", DataDir: t.TempDir(), Proxy: "on", InitialCluster: ic, initialClusterSet: true,
		ListenClientURLs: mustURLs(t, "http://127.0.0.1:0"), InitialClusterState: "new", DiscoveryFallback: "proxy"}
	setProxyTimings(pcfg)
	pcfg.ProxyRefreshIntervalMs = 60000 // only the quick retries while no member answers
	pcfg.ProxyReadTimeoutMs = 300
	n, err := startNode(context.Background(), pcfg)
	if err != nil {
		t.Fatal(err)
	}
	stopNode(t, n)
	purl := "http://" + n.(*proxy).ClientAddrs()[0]
	m := startTestMember(t, cfg) // after the proxy
	waitFor(t, 5*time.Second, "the proxy to find the member started after it", func() bool {
		resp, err := http.Get(purl + "/v2/keys/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	start := time.Now()
	client := &http.Client{Timeout: 8 * time.Second} // without the proxy's timeout: this one, then the check below
	resp, err := client.Get(purl + "/v2/keys/never?wait=true")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("a watch through a proxy with a 300 ms read timeout ended cleanly without an event")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the read timeout cut the watch after %v", d)
	}
	putValue(t, m.URL, "after", "1") // the member is still fine
}
