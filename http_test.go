// Tests of the client HTTP API helpers.

package main

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestPositionHeadersFor(t *testing.T) {
	steps := []struct {
		etcd, raft, term uint64
		same             bool // the previous step's values come back
	}{
		{0, 0, 0, false},
		{7, 9, 2, false},
		{7, 9, 2, true},
		{8, 9, 2, false},
		{8, 10, 2, false},
		{8, 10, 3, false},
		{8, 10, 3, true},
		{18446744073709551615, 18446744073709551615, 18446744073709551615, false},
	}
	var pc positionHeaderCache
	var prev *positionHeaders
	for _, st := range steps {
		c := pc.positionHeadersFor(st.etcd, st.raft, st.term)
		want := [3]string{strconv.FormatUint(st.etcd, 10), strconv.FormatUint(st.raft, 10), strconv.FormatUint(st.term, 10)}
		if c.vals != want {
			t.Errorf("positionHeadersFor(%d, %d, %d) = %q, want %q", st.etcd, st.raft, st.term, c.vals, want)
		}
		if (c == prev) != st.same {
			t.Errorf("positionHeadersFor(%d, %d, %d): shared %v, want %v", st.etcd, st.raft, st.term, c == prev, st.same)
		}
		prev = c
	}
}

// TestPositionHeadersConcurrent has answers at different positions race
// for the shared values (run with -race).
func TestPositionHeadersConcurrent(t *testing.T) {
	var pc positionHeaderCache
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				e, r, term := uint64(i%7+g), uint64(i%5), uint64(g)
				c := pc.positionHeadersFor(e, r, term)
				if c.vals[0] != strconv.FormatUint(e, 10) || c.vals[1] != strconv.FormatUint(r, 10) || c.vals[2] != strconv.FormatUint(term, 10) {
					t.Errorf("positionHeadersFor(%d, %d, %d) = %q", e, r, term, c.vals)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestKeysAnswerFraming checks that answers carry their length, small ones
// (net/http measures them) and large ones (writeEvent sets it) alike, and
// that a HEAD gets the headers of the GET.
func TestKeysAnswerFraming(t *testing.T) {
	m := startTestMember(t, nil)
	value := strings.Repeat("v", 100)
	for i := range 30 {
		if code, _, body := m.do(t, "PUT", fmt.Sprintf("/v2/keys/dir/k%02d", i), map[string][]string{"value": {value}}); code/100 != 2 {
			t.Fatalf("PUT: %d %s", code, body)
		}
	}
	tests := []struct {
		name, path string
		large      bool
	}{
		{"small", "/v2/keys/dir/k00", false},
		{"large", "/v2/keys/dir?recursive=true&sorted=true", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(m.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if (len(body) >= bufferedBody) != tt.large {
				t.Fatalf("body of %d bytes: not the size this case is about", len(body))
			}
			if resp.ContentLength != int64(len(body)) || len(resp.TransferEncoding) != 0 {
				t.Errorf("Content-Length %d, Transfer-Encoding %q; body of %d bytes", resp.ContentLength, resp.TransferEncoding, len(body))
			}
			if !strings.HasSuffix(string(body), "}\n") {
				t.Errorf("body %q does not end the JSON", body[max(0, len(body)-20):])
			}
			head, err := http.Head(m.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			head.Body.Close()
			if head.ContentLength != int64(len(body)) {
				t.Errorf("HEAD Content-Length %d, want %d", head.ContentLength, len(body))
			}
			// The raft position may move between the two requests (an
			// entry of the member's own, on a slow machine): then the
			// headers of a new GET and HEAD are compared.
			for try := 0; resp.Header.Get("X-Raft-Index") != head.Header.Get("X-Raft-Index") && try < 3; try++ {
				if resp, err = http.Get(m.URL + tt.path); err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if head, err = http.Head(m.URL + tt.path); err != nil {
					t.Fatal(err)
				}
				head.Body.Close()
			}
			for _, k := range []string{"Content-Type", "X-Etcd-Index", "X-Raft-Index", "X-Raft-Term", "X-Etcd-Cluster-Id", "Access-Control-Allow-Origin"} {
				if g, h := resp.Header.Get(k), head.Header.Get(k); g == "" || g != h {
					t.Errorf("%s: GET %q, HEAD %q", k, g, h)
				}
			}
		})
	}
}
