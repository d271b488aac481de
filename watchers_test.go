// Tests of watches through the HTTP API.

package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var watchersN = flag.Int("watchers.n", 300, "long-poll watchers in TestManyWatchers (10000 by hand)")

// rssKB reads a process's resident memory from /proc.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			return n
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}

// TestManyWatchers opens many long-poll watches on distinct keys against
// the real binary, measures its memory per watcher, then writes every key
// and checks that each watcher got its own key's event.
func TestManyWatchers(t *testing.T) {
	if testing.Short() {
		t.Skip("opens many connections")
	}
	n := *watchersN
	bin := confBuild(t)
	dir := t.TempDir()
	c := startCrashChild(t, bin, filepath.Join(dir, "data"), filepath.Join(dir, "log"))
	defer c.kill()
	u, _ := url.Parse(c.url)
	hc := &http.Client{Timeout: 10 * time.Second}
	if code, _, err := linHTTP(hc, "PUT", c.url+"/v2/keys/w/warm", url.Values{"value": {"x"}}); err != nil || code != 201 {
		t.Fatalf("warm-up write: %d %v", code, err)
	}
	before := rssKB(t, c.cmd.Process.Pid)

	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			conn, err := net.Dial("tcp", u.Host)
			if err != nil {
				errs <- err
				return
			}
			fmt.Fprintf(conn, "GET /v2/keys/w/k%d?wait=true HTTP/1.1\r\nHost: %s\r\n\r\n", i, u.Host)
			br := bufio.NewReader(conn)
			// the headers come at once: the watch is registered
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					errs <- fmt.Errorf("watch %d: %w", i, err)
					conn.Close()
					return
				}
				if line == "\r\n" {
					break
				}
			}
			conns[i], readers[i] = conn, br
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	defer func() {
		for _, conn := range conns {
			conn.Close()
		}
	}()
	after := rssKB(t, c.cmd.Process.Pid)
	code, body, err := linHTTP(hc, "GET", c.url+"/v2/stats/store", nil)
	if err != nil || code != 200 || !strings.Contains(body, fmt.Sprintf(`"watchers":%d`, n)) {
		t.Fatalf("store stats with %d watchers: %d %s %v", n, code, body, err)
	}
	t.Logf("%d watchers: RSS %d kB -> %d kB, about %.1f kB per watcher", n, before, after, float64(after-before)/float64(n))

	// write every key; each watcher must get exactly its own key's event
	start := time.Now()
	wg = sync.WaitGroup{}
	werrs := make(chan error, n)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 32 {
				if code, body, err := linHTTP(hc, "PUT", c.url+fmt.Sprintf("/v2/keys/w/k%d", i), url.Values{"value": {fmt.Sprint(i)}}); err != nil || code != 201 {
					werrs <- fmt.Errorf("write k%d: %d %s %v", i, code, body, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(werrs)
	for err := range werrs {
		t.Fatal(err)
	}
	for i, br := range readers {
		conns[i].SetReadDeadline(time.Now().Add(10 * time.Second))
		var got string
		for !strings.Contains(got, "}\n") {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("watcher %d not woken: %v (read %q)", i, err, got)
			}
			got += line
		}
		want := fmt.Sprintf(`"key":"/w/k%d","value":"%d"`, i, i)
		if !strings.Contains(got, want) {
			t.Fatalf("watcher %d got %q, want an event with %s", i, got, want)
		}
	}
	t.Logf("%d writes woke %d watchers in %v", n, n, time.Since(start).Round(time.Millisecond))
}
