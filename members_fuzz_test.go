// Fuzz tests of the members API's input.

package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// FuzzMemberChangeBody feeds the members API's body parser (POST and PUT
// /v2/members) any body: it must never panic, refuse with a 4xx whose
// message is a valid JSON answer, and accept only peer URLs that pass
// etcd's checks again unchanged. Seeds: testdata/fuzz/FuzzMemberChangeBody.
func FuzzMemberChangeBody(f *testing.F) {
	for _, s := range []string{
		`{"peerURLs":["http://127.0.0.1:2380"]}`,
		`{"peerURLs":["http://a.com:1","http://b.com:2"]}`,
		`{"peerURLs":[" http://a.com:1 "]}`,
		`{"peerURLs":["http://a.com"]}`,
		`{"peerURLs":["http://a.com:1/p"]}`,
		`{"peerURLs":["a.com:1"]}`,
		`{"peerURLs":[]}`, `{}`, ``, `null`, `[1]`,
		`{"peerURLs":"http://a.com:1"}`,
		`{"peerURLs":["http://a.com:1"]} x`,
		`{"peerURLs":["http://[::1:1"]}`,
		`{"PEERURLS":["http://a.com:1"],"x":1}`,
		`{"peerURLs":["HTTP://A.com:1?q#f"]}`,
		`{"peerURLs":["http://u:p@a.com:1"]}`,
		`{"peerURLs":["unix://a.com:1"]}`,
		`{"peerURLs":["http://%41:1"]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/v2/members", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		urls, status, err := readMemberChange(r)
		if err != nil {
			if status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge {
				t.Fatalf("refused with status %d: %v", status, err)
			}
			w := httptest.NewRecorder()
			writeMembersError(w, status, err.Error())
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("error answer is not JSON: %q", w.Body.String())
			}
			return
		}
		if len(urls) == 0 {
			t.Fatal("accepted no peer URLs")
		}
		for _, s := range urls {
			u, err := parseEtcdURL(s)
			if err != nil || u.String() != s || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				t.Fatalf("accepted peer URL %q: %v", s, err)
			}
		}
		// what it accepted, sent again, gives the same
		again, _ := json.Marshal(memberChangeRequest{PeerURLs: urls})
		r2 := httptest.NewRequest("PUT", "/v2/members/1", strings.NewReader(string(again)))
		r2.Header.Set("Content-Type", "application/json")
		urls2, _, err := readMemberChange(r2)
		if err != nil || !slices.Equal(urls, urls2) {
			t.Fatalf("%s accepted as %q, then %q, %v", body, urls, urls2, err)
		}
	})
}
