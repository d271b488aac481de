// Crash tests: a killed member loses no acknowledged write.

package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

var (
	crashRounds = flag.Int("crash.rounds", 4, "kill -9 rounds in TestCrashRecovery")
	crashSeed   = flag.Uint64("crash.seed", 0, "seed for TestCrashRecovery (0: from the clock)")
)

// crashChild is the etcdlite binary running as a child process on a data
// dir that outlives it.
type crashChild struct {
	cmd    *exec.Cmd
	url    string
	exited chan struct{}
	log    string
}

func startCrashChild(t *testing.T, bin, dataDir, logPath string) *crashChild {
	t.Helper()
	for attempt := 0; attempt < 3; attempt++ {
		client := fmt.Sprintf("http://127.0.0.1:%d", confFreePort(t))
		peer := fmt.Sprintf("http://127.0.0.1:%d", confFreePort(t))
		logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		cmd := childCommand(bin, "--name", "crash", "--data-dir", dataDir,
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", "crash="+peer, "--snapshot-count", "300")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		c := &crashChild{cmd: cmd, url: client, exited: make(chan struct{}), log: logPath}
		go func() { cmd.Wait(); logf.Close(); close(c.exited) }()
		if confWaitReady(client, c.exited, 20*time.Second) {
			return c
		}
		c.kill()
	}
	b, _ := os.ReadFile(logPath)
	t.Fatalf("etcdlite did not start on %s; log:\n%s", dataDir, tail(string(b), 3000))
	return nil
}

func (c *crashChild) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// ackedWrite is a write whose success response the client received.
type ackedWrite struct {
	key, value string
	index      uint64
}

// TestCrashRecovery writes from many clients, kills the server with
// SIGKILL at random moments, sometimes leaves a torn record at the end of
// the log, restarts it and checks that every acknowledged write is there.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process many times")
	}
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d, %d rounds", seed, *crashRounds)
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	bin := confBuild(t)
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	logPath := filepath.Join(dir, "log")
	var acked []ackedWrite
	var mu sync.Mutex
	hc := &http.Client{Timeout: 10 * time.Second}
	for round := 0; round < *crashRounds; round++ {
		c := startCrashChild(t, bin, dataDir, logPath)
		verifyAcked(t, hc, c.url, acked, round)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for g := 0; g < 16; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for seq := 0; ; seq++ {
					select {
					case <-stop:
						return
					default:
					}
					key := fmt.Sprintf("/r%d/c%d/k%d", round, g, seq)
					value := fmt.Sprintf("v-%d-%d-%d", round, g, seq)
					idx, ok := putKey(hc, c.url, key, value)
					if !ok {
						return // the server died under us
					}
					mu.Lock()
					acked = append(acked, ackedWrite{key: key, value: value, index: idx})
					mu.Unlock()
				}
			}(g)
		}
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		c.kill()
		close(stop)
		wg.Wait()
		if round%2 == 1 {
			tearTail(t, rng, filepath.Join(dataDir, "member", "wal"))
		}
	}
	c := startCrashChild(t, bin, dataDir, logPath)
	verifyAcked(t, hc, c.url, acked, *crashRounds)
	c.kill()
	t.Logf("%d acknowledged writes checked after %d kills", len(acked), *crashRounds)
}

// putKey sets key and returns the index of the write when it was
// acknowledged.
func putKey(hc *http.Client, base, key, value string) (uint64, bool) {
	code, body, err := linHTTP(hc, "PUT", base+"/v2/keys"+key, url.Values{"value": {value}})
	if err != nil || code/100 != 2 {
		return 0, false
	}
	var ev struct {
		Node struct {
			ModifiedIndex uint64 `json:"modifiedIndex"`
		} `json:"node"`
	}
	if json.Unmarshal([]byte(body), &ev) != nil {
		return 0, false
	}
	return ev.Node.ModifiedIndex, true
}

// verifyAcked checks every acknowledged write against the server.
func verifyAcked(t *testing.T, hc *http.Client, base string, acked []ackedWrite, round int) {
	t.Helper()
	missing := 0
	for _, w := range acked {
		resp, err := hc.Get(base + "/v2/keys" + w.key)
		if err != nil {
			t.Fatalf("round %d: get %s: %v", round, w.key, err)
		}
		var ev struct {
			Node struct {
				Value         string `json:"value"`
				ModifiedIndex uint64 `json:"modifiedIndex"`
			} `json:"node"`
		}
		err = json.NewDecoder(resp.Body).Decode(&ev)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || ev.Node.Value != w.value || ev.Node.ModifiedIndex < w.index {
			missing++
			if missing <= 5 {
				t.Errorf("round %d: acknowledged write %s=%s@%d: status %d, got %q@%d", round, w.key, w.value, w.index, resp.StatusCode, ev.Node.Value, ev.Node.ModifiedIndex)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("round %d: %d of %d acknowledged writes lost", round, missing, len(acked))
	}
}

// tearTail writes what a crash in the middle of a write leaves right after
// the last record of the newest log segment: part of a record, zeros, or
// garbage.
func tearTail(t *testing.T, rng *rand.Rand, walDir string) {
	t.Helper()
	segs, _, err := walListSegments(walDir)
	if err != nil || len(segs) == 0 {
		t.Fatalf("no wal segments in %s: %v", walDir, err)
	}
	// where the valid records of the newest segment end, as the log reads it
	r := &walReplay{}
	if err := walReplayDir(segs, r); err != nil {
		t.Fatalf("log damaged before the tear: %v", err)
	}
	last, end := segs[len(segs)-1].path, r.validEnd
	var junk []byte
	switch rng.IntN(3) {
	case 0: // zeros over a half-written block
		junk = make([]byte, 1+rng.IntN(4096))
	case 1: // the first part of a new entry record
		e := raftpb.Entry{Term: 99, Index: 1 << 40, Data: make([]byte, 64+rng.IntN(512))}
		rec, _, err := walAppendEntry(nil, &e, rng.Uint32())
		if err != nil {
			t.Fatal(err)
		}
		junk = rec[:1+rng.IntN(len(rec)-1)]
	default: // random bytes
		junk = make([]byte, 1+rng.IntN(100))
		for i := range junk {
			junk[i] = byte(rng.IntN(256))
		}
	}
	f, err := os.OpenFile(last, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(junk, int64(end)); err != nil {
		t.Fatal(err)
	}
	f.Close()
}
