// Benchmarks of the client HTTP handlers.

package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"etcdlite/kv"
)

// discardWriter is a reusable http.ResponseWriter for handler benchmarks:
// it keeps the status and the body length and drops the body.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}

func (w *discardWriter) reset() {
	clear(w.h)
	w.status, w.n = 0, 0
}

// rewindBody is a request body that can be read again after reset.
type rewindBody struct{ strings.Reader }

func (*rewindBody) Close() error { return nil }

// benchRequest is a request that can be served again and again: reset
// drops what parsing it left behind and rewinds its body.
type benchRequest struct {
	r    *http.Request
	body *rewindBody
	text string
}

func newBenchRequest(method, target, body string) *benchRequest {
	br := &benchRequest{text: body}
	if body == "" {
		br.r = httptest.NewRequest(method, target, nil)
		return br
	}
	br.body = &rewindBody{}
	br.r = httptest.NewRequest(method, target, nil)
	br.r.Body = br.body
	br.r.ContentLength = int64(len(body))
	br.r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return br
}

func (br *benchRequest) reset() *http.Request {
	br.r.Form, br.r.PostForm = nil, nil
	if br.body != nil {
		br.body.Reset(br.text)
	}
	return br.r
}

// BenchmarkKeysHandler drives the client handler in process, without the
// network: what the keys path itself costs per request.
func BenchmarkKeysHandler(b *testing.B) {
	m := startTestMember(b, nil)
	value := strings.Repeat("x", 64)
	m.do(b, "PUT", "/v2/keys/bench/k0", map[string][]string{"value": {value}})
	h := m.clientHandler()
	cases := []struct {
		name, method, target, body string
		status                     int
	}{
		{"GET", "GET", "/v2/keys/bench/k0", "", http.StatusOK},
		{"GETmissing", "GET", "/v2/keys/bench/nope", "", http.StatusNotFound},
		{"PUT", "PUT", "/v2/keys/bench/k0", "value=" + value, http.StatusOK},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			br := newBenchRequest(c.method, c.target, c.body)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				h.ServeHTTP(w, br.reset())
				if w.status != c.status {
					b.Fatalf("status %d, want %d", w.status, c.status)
				}
			}
		})
	}
}

// BenchmarkParseKeyRequest is the parsing of a keys request alone, by the
// hand form parser and by http.Request.ParseForm (the parser's fallback).
func BenchmarkParseKeyRequest(b *testing.B) {
	value := strings.Repeat("x", 64)
	cases := []struct{ name, method, target, body string }{
		{"GET", "GET", "/v2/keys/bench/k0", ""},
		{"GETquery", "GET", "/v2/keys/bench?recursive=true&sorted=true", ""},
		{"PUT", "PUT", "/v2/keys/bench/k0", "value=" + value},
		{"PUTcas", "PUT", "/v2/keys/bench/k0?prevIndex=12", "value=" + value + "&ttl=30&prevExist=true"},
	}
	now := time.Now()
	for _, c := range cases {
		for _, variant := range []struct {
			name string
			fast bool
		}{{"hand", true}, {"ParseForm", false}} {
			b.Run(c.name+"/"+variant.name, func(b *testing.B) {
				saved := formFastPath
				formFastPath = variant.fast
				defer func() { formFastPath = saved }()
				br := newBenchRequest(c.method, c.target, c.body)
				var kr keyRequest
				b.ReportAllocs()
				for b.Loop() {
					kr = keyRequest{}
					if err := parseKeyRequest(br.reset(), now, &kr); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkWriteEvent is the writing of one answer: headers and body.
func BenchmarkWriteEvent(b *testing.B) {
	s := &server{}
	s.clusterIDHeader = []string{"cdf818194e3a8c32"}
	ev := &kv.Event{
		Action:    kv.ActionSet,
		Node:      &kv.NodeExtern{Key: "/1/bench/k0", Value: strings.Repeat("x", 64), HasValue: true, ModifiedIndex: 12345, CreatedIndex: 12345},
		PrevNode:  &kv.NodeExtern{Key: "/1/bench/k0", Value: strings.Repeat("x", 64), HasValue: true, ModifiedIndex: 12344, CreatedIndex: 12344},
		EtcdIndex: 12345,
	}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		s.writeEvent(w, ev, false)
	}
}

// BenchmarkHTTPReadBare is the floor BenchmarkHTTPRead is measured
// against: the same client and a net/http handler that answers a fixed
// body of the same size with no work at all.
func BenchmarkHTTPReadBare(b *testing.B) {
	body := []byte(`{"action":"get","node":{"key":"/bench/k","value":"` + strings.Repeat("x", 64) + `","modifiedIndex":4,"createdIndex":4}}` + "\n")
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Write(body)
	}))
	b.Cleanup(ts.Close)
	benchParallelGets(b, ts.URL+"/v2/keys/bench/k")
}
