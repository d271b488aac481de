// Auth answers checked against etcd's recorded ones (testdata/auth).

package main

// Golden files of the v2 auth API: testdata/auth/*.json, each a scenario of
// requests with the responses etcd 3.4 gave them, recorded against a fresh
// etcd (--enable-v2) by testdata/auth/record.sh, i.e.
//
//	go test -run 'TestAuthGolden/NAME$' -auth.record=http://127.0.0.1:PORT
//
// Without the flag every scenario is replayed against a fresh in-process
// member and compared: status, the headers that matter and the body, with
// store indexes made relative to the index at the start of the scenario.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var authRecordURL = flag.String("auth.record", "", "record the responses of testdata/auth/*.json from the (fresh) etcd at this URL")

// authScenario is one file of testdata/auth.
type authScenario struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	Recorded    string      `json:"recorded,omitempty"`
	Steps       []*authStep `json:"steps"`
}

// authStep is one request. Auth "user:password" sends Basic credentials;
// Header sends an Authorization header verbatim. Form is sent as a
// urlencoded body, Body as it is. Compare "status" compares the status and
// headers only.
type authStep struct {
	Comment  string        `json:"comment,omitempty"`
	Method   string        `json:"method"`
	Path     string        `json:"path"`
	Auth     string        `json:"auth,omitempty"`
	Header   string        `json:"header,omitempty"`
	Form     string        `json:"form,omitempty"`
	Body     *string       `json:"body,omitempty"`
	Compare  string        `json:"compare,omitempty"`
	Response *authResponse `json:"response,omitempty"`
}

// authResponse is a recorded or live response.
type authResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// authHeaderNames are the headers recorded and compared.
var authHeaderNames = []string{"Content-Type", "X-Etcd-Index", "X-Etcd-Cluster-Id", "Www-Authenticate", "Allow"}

// authDo sends one step to base.
func authDo(base string, st *authStep) (*authResponse, error) {
	var body io.Reader
	ctype := ""
	switch {
	case st.Body != nil:
		body = strings.NewReader(*st.Body)
	case st.Form != "":
		body = strings.NewReader(st.Form)
		ctype = "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequest(st.Method, base+st.Path, body)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	switch {
	case st.Auth != "":
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(st.Auth)))
	case st.Header != "":
		req.Header.Set("Authorization", st.Header)
	}
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := &authResponse{Status: resp.StatusCode, Headers: map[string]string{}, Body: string(b)}
	for _, h := range authHeaderNames {
		if v, ok := resp.Header[http.CanonicalHeaderKey(h)]; ok {
			out.Headers[h] = strings.Join(v, ", ")
		}
	}
	return out, nil
}

// authBaseIndex is the store index a server reports before a scenario.
func authBaseIndex(base string) (int64, error) {
	resp, err := http.Get(base + "/v2/keys/")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return strconv.ParseInt(resp.Header.Get("X-Etcd-Index"), 10, 64)
}

var authIndexRe = regexp.MustCompile(`("(?:modifiedIndex|createdIndex|index)":)(\d+)|/(\d{20})"`)

// authNormalise makes a response comparable across servers: indexes
// relative to base (0 stays 0), the cluster id reduced to its presence.
func authNormalise(r *authResponse, base int64) authResponse {
	rel := func(s string) string {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n == 0 {
			return s
		}
		return fmt.Sprintf("<idx%+d>", n-base)
	}
	out := authResponse{Status: r.Status, Headers: map[string]string{}}
	for k, v := range r.Headers {
		switch k {
		case "X-Etcd-Index":
			v = rel(v)
		case "X-Etcd-Cluster-Id":
			v = "<present>"
		}
		out.Headers[k] = v
	}
	out.Body = authIndexRe.ReplaceAllStringFunc(r.Body, func(m string) string {
		sm := authIndexRe.FindStringSubmatch(m)
		if sm[1] != "" {
			return sm[1] + rel(sm[2])
		}
		return "/" + rel(sm[3]) + `"`
	})
	return out
}

func TestAuthGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/auth/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in testdata/auth: %v", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var sc authScenario
		if err := json.Unmarshal(raw, &sc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		t.Run(sc.Name, func(t *testing.T) {
			if *authRecordURL != "" {
				authRecord(t, f, &sc)
				return
			}
			m := startTestMember(t, nil)
			authReplay(t, m.URL, &sc)
		})
	}
}

// authRecord runs sc against the etcd of -auth.record and rewrites f.
func authRecord(t *testing.T, f string, sc *authScenario) {
	base := strings.TrimRight(*authRecordURL, "/")
	for i, st := range sc.Steps {
		resp, err := authDo(base, st)
		if err != nil {
			t.Fatalf("step %d %s %s: %v", i, st.Method, st.Path, err)
		}
		st.Response = resp
	}
	sc.Recorded = "etcd 3.4.23 (--enable-v2)"
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(sc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// authReplay runs sc against base and compares every response with the
// golden one.
func authReplay(t *testing.T, base string, sc *authScenario) {
	goldenBase := int64(-1)
	liveBase, err := authBaseIndex(base)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range sc.Steps {
		if st.Response == nil {
			t.Fatalf("step %d has no recorded response: record the scenario first", i)
		}
		if goldenBase < 0 {
			goldenBase = authGoldenBase(sc)
		}
		got, err := authDo(base, st)
		if err != nil {
			t.Fatalf("step %d %s %s: %v", i, st.Method, st.Path, err)
		}
		want := authNormalise(st.Response, goldenBase)
		have := authNormalise(got, liveBase)
		if st.Compare == "status" {
			want.Body, have.Body = "", ""
		}
		if want.Status != have.Status || !equalHeaders(want.Headers, have.Headers) || want.Body != have.Body {
			t.Errorf("step %d (%s) %s %s auth=%q:\n want %d %v %q\n have %d %v %q", i, st.Comment, st.Method, st.Path, st.Auth,
				want.Status, want.Headers, want.Body, have.Status, have.Headers, have.Body)
		}
	}
}

// authGoldenBase is the index etcd had before the scenario: the first
// step of every scenario is a GET of /v2/keys/ made for that.
func authGoldenBase(sc *authScenario) int64 {
	if len(sc.Steps) > 0 && sc.Steps[0].Path == "/v2/keys/" && sc.Steps[0].Response != nil {
		n, _ := strconv.ParseInt(sc.Steps[0].Response.Headers["X-Etcd-Index"], 10, 64)
		return n
	}
	return 0
}

func equalHeaders(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
