// Tests of --force-new-cluster.

package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestForceNewClusterAfterLosingMajority: of three members two are lost
// for good; the survivor, restarted with --force-new-cluster, serves alone
// with every write it acknowledged and its member id, and a member added
// back with the members API catches up and takes writes.
func TestForceNewClusterAfterLosingMajority(t *testing.T) {
	c := startTestCluster(t, 3, func(cfg *config) { cfg.SnapshotCount = 40 })
	lead := c.leader()
	survivor := (lead + 1) % 3
	surv := c.members[survivor]
	oldID, oldCluster := c.srv(survivor).id, c.srv(survivor).clusterID
	for i := 0; i < 60; i++ {
		if code, body := httpDo(t, "PUT", c.members[i%3].url+fmt.Sprintf("/v2/keys/before/k%02d", i), url.Values{"value": {fmt.Sprint(i)}}); code != 201 {
			t.Fatalf("put %d: %d %s", i, code, body)
		}
	}
	// writes through the survivor up to the moment the others die: every
	// one it acknowledged must survive
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			hc := &http.Client{Timeout: 2 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("during/w%d-%03d", w, i)
				code, _, err := linHTTP(hc, "PUT", surv.url+"/v2/keys/"+key, url.Values{"value": {key}})
				if err == nil && code == 201 {
					mu.Lock()
					acked = append(acked, key)
					mu.Unlock()
				}
			}
		}(w)
	}
	time.Sleep(300 * time.Millisecond)
	for i := range c.members {
		if i != survivor {
			c.stop(i)
		}
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	c.stop(survivor)
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged before the majority was lost")
	}

	surv.cfg.ForceNewCluster = true
	c.start(survivor)
	c.waitReady()
	s := c.srv(survivor)
	if s.id != oldID || s.clusterID != oldCluster {
		t.Fatalf("member %x of cluster %x after --force-new-cluster, want %x of %x (etcd keeps both)", s.id, s.clusterID, oldID, oldCluster)
	}
	if v := s.confState.Voters; len(v) != 1 || v[0] != oldID {
		t.Fatalf("voters after --force-new-cluster: %x", v)
	}
	code, body := httpDo(t, "GET", surv.url+"/v2/members", nil)
	if code != 200 || strings.Count(body, `"id"`) != 1 || !strings.Contains(body, idString(oldID)) {
		t.Fatalf("members after --force-new-cluster: %d %s", code, body)
	}
	dump := storeDump(s.store)
	for i := 0; i < 60; i++ {
		if !strings.Contains(dump, fmt.Sprintf(`"/before/k%02d"`, i)) {
			t.Fatalf("before/k%02d lost", i)
		}
	}
	for _, k := range acked {
		if !strings.Contains(dump, `"/`+k+`"`) {
			t.Fatalf("acknowledged write %s lost (%d acknowledged)", k, len(acked))
		}
	}
	if code, body := httpDo(t, "PUT", surv.url+"/v2/keys/after", url.Values{"value": {"alone"}}); code != 201 {
		t.Fatalf("write on the new one-member cluster: %d %s", code, body)
	}

	// restarting without the flag keeps the one-member cluster
	c.stop(survivor)
	surv.cfg.ForceNewCluster = false
	c.start(survivor)
	c.waitReady()

	// a member added back catches up and takes writes
	peerURL, clientURL := freePortURL(t), freePortURL(t)
	if code, body := postMember(t, surv.url, peerURL); code != 201 {
		t.Fatalf("member add: %d %s", code, body)
	}
	peers := map[string]string{"back": peerURL, surv.cfg.Name: surv.cfg.InitialAdvertisePeerURLs[0].String()}
	cfg := clusterConfig(t, "back", clientURL, peers, "existing")
	c.members = append(c.members, &clusterMember{cfg: cfg, url: clientURL})
	c.start(len(c.members) - 1)
	c.waitReady()
	if code, body := httpDo(t, "PUT", clientURL+"/v2/keys/through-new", url.Values{"value": {"x"}}); code != 201 {
		t.Fatalf("write through the member added back: %d %s", code, body)
	}
	dump2 := c.waitConverged()
	if !strings.Contains(dump2, `"/through-new"`) || !strings.Contains(dump2, `"/after"`) || !strings.Contains(dump2, `"/before/k00"`) {
		t.Fatalf("the member added back is not in sync: %s", dump2)
	}
	code, body = httpDo(t, "GET", clientURL+"/v2/members", nil)
	if code != 200 || strings.Count(body, `"id"`) != 2 {
		t.Fatalf("members after adding one back: %d %s", code, body)
	}
}

// TestForceNewClusterAfterKill kills a member with SIGKILL right after a
// write load (so that the commit index its log recorded lags what it
// acknowledged: etcdlite writes a commit-only hard state lazily, with the
// next entries) and restarts it with
// --force-new-cluster: every acknowledged write is there. Dropping the
// entries after the recorded commit index, as etcd does, would lose some.
func TestForceNewClusterAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := confBuild(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	child := startCrashChild(t, bin, data, filepath.Join(dir, "log"))
	load := startWriteLoad(child.url, 8)
	time.Sleep(700 * time.Millisecond)
	// the writes stop first: the commit index of the last ones stays in
	// memory (no later entries carry it to the log) when the kill comes
	load.finish()
	child.kill()
	acked := load.ackedSoFar()
	if len(acked) == 0 {
		t.Fatal("nothing acknowledged before the kill")
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", confFreePort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", confFreePort(t))
	cmd := exec.Command(bin, "--name", "crash", "--data-dir", data,
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "crash="+peer, "--force-new-cluster")
	logf, err := os.Create(filepath.Join(dir, "restart.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	defer func() { cmd.Process.Kill(); <-exited }()
	if !confWaitReady(client, exited, 20*time.Second) {
		b, _ := os.ReadFile(filepath.Join(dir, "restart.log"))
		t.Fatalf("the member did not start with --force-new-cluster:\n%s", b)
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	for _, k := range acked {
		code, body, err := linHTTP(hc, "GET", client+"/v2/keys/"+k, nil)
		if err != nil || code != 200 || !strings.Contains(body, `"value":"`+k+`"`) {
			t.Fatalf("acknowledged write %s lost after --force-new-cluster (%d acknowledged): %d %s %v", k, len(acked), code, body, err)
		}
	}
	t.Logf("%d acknowledged writes all there", len(acked))
}
