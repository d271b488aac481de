//go:build ignore

// Watchers measures what long-poll watchers cost a v2 server (etcd 3.4 or
// etcdlite, already running) in resident memory: it reads the server's
// VmRSS, opens N watchers on one key (GET /v2/keys/<key>?wait=true, each on
// its own TCP connection), waits until the server's /v2/stats/store counts
// them all, reads VmRSS again, writes the key once and checks that every
// watcher got that write's event. It prints the RSS before and after, the
// bytes per watcher and how long the wake-up took.
//
//	ulimit -n 30000
//	go run scripts/watchers.go -url http://127.0.0.1:17101 -pid $(pgrep -n etcdlite) -n 10000
//
// An https URL is dialled with TLS (HTTP/1.1, no ALPN), trusting -cacert and
// presenting -cert/-certkey when given:
//
//	go run scripts/watchers.go -url https://127.0.0.1:17101 -cacert ca.crt -cert client.crt -certkey client.key -pid ... -n 2000
//
// Only 127.0.0.1 is meant: the watchers' connections are all from here.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:2379", "the server's client URL")
	pid := flag.Int("pid", 0, "the server's process id (for /proc/<pid>/status)")
	n := flag.Int("n", 10000, "watchers")
	key := flag.String("key", "foo", "the key watched")
	settle := flag.Duration("settle", 2*time.Second, "wait after the watchers are registered before reading RSS")
	hold := flag.Duration("hold", 0, "keep the watchers open this long after reading RSS (to profile the server)")
	cacert := flag.String("cacert", "", "https: the CA certificate to trust")
	cert := flag.String("cert", "", "https: the client certificate to present")
	keyFile := flag.String("certkey", "", "https: the client certificate's key")
	flag.Parse()
	tc, err := tlsConfig(*cacert, *cert, *keyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "watchers:", err)
		os.Exit(1)
	}
	if err := run(*base, *pid, *n, *key, *settle, *hold, tc); err != nil {
		fmt.Fprintln(os.Stderr, "watchers:", err)
		os.Exit(1)
	}
}

// tlsConfig is the client's TLS configuration from the -cacert, -cert and
// -certkey files (each optional).
func tlsConfig(cacert, cert, key string) (*tls.Config, error) {
	tc := &tls.Config{}
	if cacert != "" {
		pem, err := os.ReadFile(cacert)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no certificate", cacert)
		}
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// run is the whole measurement.
func run(base string, pid, n int, key string, settle, hold time.Duration, tc *tls.Config) error {
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	if pid <= 0 {
		return fmt.Errorf("-pid is needed")
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	dial := func() (net.Conn, error) { return net.Dial("tcp", u.Host) }
	if u.Scheme == "https" {
		dial = func() (net.Conn, error) { return tls.Dial("tcp", u.Host, tc) }
	}
	if err := put(hc, base, key, "warm"); err != nil {
		return fmt.Errorf("warm-up write: %w", err)
	}
	w0, err := storeWatchers(hc, base)
	if err != nil {
		return err
	}
	before, err := rssKB(pid)
	if err != nil {
		return err
	}

	start := time.Now()
	conns := make([]net.Conn, n)
	req := "GET /v2/keys/" + key + "?wait=true HTTP/1.1\r\nHost: " + u.Host + "\r\n\r\n"
	for i := range conns {
		c, err := dial()
		if err != nil {
			return fmt.Errorf("watcher %d: %w (ulimit -n?)", i, err)
		}
		if _, err := io.WriteString(c, req); err != nil {
			return fmt.Errorf("watcher %d: %w", i, err)
		}
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		w, err := storeWatchers(hc, base)
		if err != nil {
			return err
		}
		if w-w0 >= n {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d watchers registered", w-w0, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	registered := time.Since(start)
	time.Sleep(settle)
	after, err := rssKB(pid)
	if err != nil {
		return err
	}
	if hold > 0 {
		fmt.Printf("rss %d kB with %d watchers; holding them %v\n", after, n, hold)
		time.Sleep(hold)
	}

	// the write, and every watcher's event
	value := "v" + strconv.FormatInt(time.Now().UnixNano(), 10)
	var woken, wrong atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4*runtime.GOMAXPROCS(0)*64)
	wstart := time.Now()
	if err := put(hc, base, key, value); err != nil {
		return fmt.Errorf("the write: %w", err)
	}
	for _, c := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func(c net.Conn) {
			defer wg.Done()
			defer func() { <-sem }()
			c.SetReadDeadline(time.Now().Add(time.Minute))
			body, err := readAnswer(bufio.NewReader(c))
			switch {
			case err != nil:
				firstErr.CompareAndSwap(nil, err)
				wrong.Add(1)
			case strings.Contains(body, `"action":"set"`) && strings.Contains(body, `"value":"`+value+`"`):
				woken.Add(1)
			default:
				firstErr.CompareAndSwap(nil, fmt.Errorf("unexpected event %q", body))
				wrong.Add(1)
			}
		}(c)
	}
	wg.Wait()
	wake := time.Since(wstart)
	fmt.Printf("watchers %d registered in %v\n", n, registered.Round(time.Millisecond))
	fmt.Printf("rss before %d kB, after %d kB: %.1f kB per watcher\n", before, after, float64(after-before)/float64(n))
	fmt.Printf("woken correctly %d of %d (wrong %d) in %v\n", woken.Load(), n, wrong.Load(), wake.Round(time.Millisecond))
	if e := firstErr.Load(); e != nil {
		fmt.Printf("first error: %v\n", e)
	}
	if int(woken.Load()) != n {
		return fmt.Errorf("%d watchers were not woken correctly", n-int(woken.Load()))
	}
	return nil
}

// readAnswer reads one HTTP answer and returns its body (chunked or not).
func readAnswer(r *bufio.Reader) (string, error) {
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil && len(b) == 0 {
		return "", err
	}
	return string(b), nil
}

// put writes key=value.
func put(hc *http.Client, base, key, value string) error {
	req, err := http.NewRequest("PUT", base+"/v2/keys/"+key, strings.NewReader("value="+url.QueryEscape(value)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("PUT %s: %s", key, resp.Status)
	}
	return nil
}

// storeWatchers is /v2/stats/store's watcher count.
func storeWatchers(hc *http.Client, base string) (int, error) {
	resp, err := hc.Get(base + "/v2/stats/store")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var st map[string]float64
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0, fmt.Errorf("/v2/stats/store: %w", err)
	}
	return int(st["watchers"]), nil
}

// rssKB is VmRSS of pid, in kB.
func rssKB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			return strconv.Atoi(strings.Fields(line)[1])
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
