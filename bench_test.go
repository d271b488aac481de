// Benchmarks of the write and read paths.

package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkHTTPWrite is an end-to-end write: HTTP PUT, raft, the WAL with
// its fsync, the store, the answer; parallel clients share fsyncs.
func BenchmarkHTTPWrite(b *testing.B) {
	m := startTestMember(b, nil)
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	hc := &http.Client{Transport: tr}
	b.Cleanup(tr.CloseIdleConnections)
	body := "value=" + strings.Repeat("x", 64)
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v2/keys/bench/k%d", m.URL, n.Add(1)%1000), strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := hc.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}

// BenchmarkHTTPRead is an end-to-end read of one key.
func BenchmarkHTTPRead(b *testing.B) {
	m := startTestMember(b, nil)
	m.do(b, "PUT", "/v2/keys/bench/k", map[string][]string{"value": {strings.Repeat("x", 64)}})
	benchParallelGets(b, m.URL+"/v2/keys/bench/k")
}

// benchParallelGets measures GETs of url from 16 parallel clients per CPU.
func benchParallelGets(b *testing.B, url string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	hc := &http.Client{Transport: tr}
	b.Cleanup(tr.CloseIdleConnections)
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := hc.Get(url)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
