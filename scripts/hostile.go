//go:build ignore

// Hostile hammers one member's client URL with malformed and oversized
// requests from many connections while it asks GET /health every 50 ms,
// and reports how many health answers were not 200. It is how the 503
// under malformed requests was reproduced (limits.go says what fixed it).
//
//	go run scripts/hostile.go -addr 127.0.0.1:2379 -n 30 -c 16
//	go run scripts/hostile.go -kinds near,oversize,lie   # with 10 MB writes
//
// Kinds: oversize (a body over 10 MB), near (a valid write just under the
// limit), lie (a Content-Length longer than the body, then a close),
// lieshort (a Content-Length shorter than the body, the rest garbage),
// hdr (a 1.1 MB header), chunked (a broken chunked body). Only ever point
// it at a member on 127.0.0.1 that you started.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:2379", "the member's client address")
	n := flag.Int("n", 30, "requests per connection worker")
	c := flag.Int("c", 16, "concurrent workers")
	kinds := flag.String("kinds", "oversize,lie,lieshort,hdr,chunked", "comma-separated kinds of request")
	flag.Parse()
	if h, _, err := net.SplitHostPort(*addr); err != nil || (h != "127.0.0.1" && h != "localhost") {
		fmt.Fprintln(os.Stderr, "hostile: -addr must be 127.0.0.1:port or localhost:port")
		os.Exit(2)
	}
	oversize := "value=" + strings.Repeat("a", 11<<20)
	near := "value=" + strings.Repeat("a", 10<<20-100)
	put := "PUT /v2/keys/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
	reqs := map[string]string{
		"oversize": fmt.Sprintf(put, "big") + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(oversize)) + oversize,
		"near":     fmt.Sprintf(put, "near") + fmt.Sprintf("Connection: close\r\nContent-Length: %d\r\n\r\n", len(near)) + near,
		"lie":      fmt.Sprintf(put, "lie") + "Content-Length: 1000000\r\n\r\nvalue=1",
		"lieshort": fmt.Sprintf(put, "lie") + "Content-Length: 3\r\n\r\nvalue=123456\r\nGARBAGE\r\n\r\n",
		"hdr":      "GET /v2/keys/ HTTP/1.1\r\nHost: x\r\nX-A: " + strings.Repeat("a", 1100000) + "\r\n\r\n",
		"chunked":  fmt.Sprintf(put, "ch") + "Transfer-Encoding: chunked\r\n\r\nzz\r\n",
	}
	ks := strings.Split(*kinds, ",")
	for _, k := range ks {
		if reqs[k] == "" {
			fmt.Fprintf(os.Stderr, "hostile: unknown kind %q\n", k)
			os.Exit(2)
		}
	}
	var mu sync.Mutex
	results := map[string]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for w := range *c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range *n {
				k := ks[(w+i)%len(ks)]
				r := send(*addr, reqs[k], k != "lie")
				mu.Lock()
				results[k+" "+r]++
				mu.Unlock()
			}
		}()
	}
	stop := make(chan struct{})
	healthDone := make(chan [2]int)
	go func() {
		bad, total := 0, 0
		for {
			select {
			case <-stop:
				healthDone <- [2]int{bad, total}
				return
			case <-time.After(50 * time.Millisecond):
			}
			t := time.Now()
			r := send(*addr, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", true)
			total++
			if r != "200" {
				bad++
				fmt.Printf("health: %s after %v\n", r, time.Since(t).Round(time.Millisecond))
			}
		}
	}()
	wg.Wait()
	close(stop)
	h := <-healthDone
	var lines []string
	for k, v := range results {
		lines = append(lines, fmt.Sprintf("  %-24s %d", k, v))
	}
	sort.Strings(lines)
	fmt.Printf("took %v; health not 200: %d of %d\n%s\n", time.Since(start).Round(100*time.Millisecond), h[0], h[1], strings.Join(lines, "\n"))
}

// send writes raw on a new connection and returns the answer's status, or
// what ended the exchange.
func send(addr, raw string, wait bool) string {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "dial error"
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	go conn.Write([]byte(raw))
	if !wait {
		time.Sleep(10 * time.Millisecond)
		return "sent"
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "no answer"
	}
	resp.Body.Close()
	return fmt.Sprint(resp.StatusCode)
}
