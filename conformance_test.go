// Conformance tests of the v2 API against etcd's recorded answers.

package main

// Golden-file conformance suite for the etcd v2 keys API.
//
// The scenarios live in testdata/conformance/*.json, one scenario per file
// (the step format is documented at confStep). Every step that produces a
// response carries the response a reference etcd 3.4 gave ("response": status,
// the headers that matter, the raw body), recorded with
//
//	go test -run TestConformance -conf.record=http://127.0.0.1:PORT
//
// testdata/conformance/record.sh starts a fresh etcd, records, then replays the
// new golden files against a second fresh etcd, which must pass: that proves
// the normaliser.
//
// Without flags, TestConformance builds etcdlite from the module root, runs it
// as a child process with etcd's command-line flags on free ports and replays
// every scenario over real HTTP (-conf.target=URL: against a running server
// instead; -conf.bin=PATH: a prebuilt binary). Both the golden and the live
// response are normalised the same way, then compared:
//
//   - indexes (createdIndex, modifiedIndex, an error's index, X-Etcd-Index,
//     the 20-digit names of in-order keys, the indexes quoted in the causes of
//     errors 101 and 401) become <idx+N>, relative to the X-Etcd-Index seen at
//     the start of the scenario; 0 stays 0, and so do numbers the scenario
//     wrote literally in the request;
//   - expiration becomes <time> (it must be RFC 3339 in UTC), ttl is compared
//     within one second, member ids become <id>, member URLs <client-url> and
//     <peer-url>; X-Raft-Index, X-Raft-Term and X-Etcd-Cluster-Id are
//     compared for presence only;
//   - listings not asked for with sorted=true are sorted by key first;
//   - bodies are then compared byte for byte (member order, escaping,
//     whitespace, the trailing newline), and a difference is reported as
//     either "JSON differs" or "same JSON; ..." (-conf.loosebytes turns the
//     latter into log lines);
//   - statistics and /version are compared by the set of their JSON key paths.
//
// When a step shows that the server has used more or fewer indexes than etcd,
// that is reported once as an INDEX DRIFT and the rest of the scenario is
// compared with the shifted indexes (see confIndexMap). When the server dies,
// the end of its log is reported and it is restarted for the next scenario.
//
// Every scenario works under its own key prefix (/v2/keys/<name>, or the keys
// listed in its "cleanup") and deletes it before and after it runs, so
// scenarios do not see each other even on a shared, long-running server.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	confRecordURL  = flag.String("conf.record", "", "record golden responses from the etcd at this URL, rewriting testdata/conformance/*.json")
	confTargetURL  = flag.String("conf.target", "", "replay against the already running server at this URL instead of a freshly built etcdlite")
	confBinary     = flag.String("conf.bin", "", "replay against this prebuilt etcdlite binary instead of building one")
	confLooseBytes = flag.Bool("conf.loosebytes", false, "report bodies that are the same JSON but differ in bytes (key order, escaping, whitespace) as logs instead of failures")
	confVerbose    = flag.Bool("conf.v", false, "log every compared step, not only mismatches")
)

const (
	confDir              = "testdata/conformance"
	confRequestTimeout   = 5 * time.Second
	confDefaultCollectMs = 5000
	confEarlyWait        = 500 * time.Millisecond
)

// ---------------------------------------------------------------------------
// Scenario data model

// confScenario is one file of testdata/conformance.
type confScenario struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Cleanup lists key paths deleted recursively before and after the
	// scenario (templates allowed; before the scenario only those without a
	// template). Defaults to /v2/keys/<name>.
	Cleanup  []string      `json:"cleanup,omitempty"`
	Recorded *confRecorded `json:"recorded,omitempty"`
	Steps    []*confStep   `json:"steps"`

	file string
}

// confRecorded says where and against what the golden responses were taken.
type confRecorded struct {
	Server    string `json:"server"`
	ClientURL string `json:"clientURL"`
	BaseIndex int64  `json:"baseIndex"`
}

// confStep is one step of a scenario.
//
// Kind is one of:
//
//	"" or "request"  an HTTP request, its response compared
//	"watch"          a request started in the background (long poll); ID names it
//	"stream"         like watch, for stream=true; Events is how many events to keep
//	"collect"        waits (at most Ms, default 5 s) for the watch or stream ID
//	                 and compares its response; on timeout "timeout" is recorded
//	"sleep"          sleeps Ms milliseconds
//	"bulk"           sends the request Count times (Parallel at once, ${i} is the
//	                 counter) and compares the tally of status codes
//
// Path is the raw, escaped request path. Query and Form are ordered parameter
// lists (value: a string or a list of strings); RawQuery is appended verbatim;
// Body with ContentType sends a raw body. Templates anywhere in those:
// ${idx+N} is the index seen at the start of the scenario plus N, ${idx+N:pad}
// the same zero-padded to 20 digits (in-order key names), ${rep:S:N} the string
// S repeated N times, ${i} the bulk counter.
//
// Compare is "" (everything), "shape" (status, headers and only the set of
// JSON key paths of the body) or "status" (status and headers only). Auth
// "user:password" sends them as Basic credentials.
type confStep struct {
	Comment     string        `json:"comment,omitempty"`
	Kind        string        `json:"kind,omitempty"`
	ID          string        `json:"id,omitempty"`
	Method      string        `json:"method,omitempty"`
	Path        string        `json:"path,omitempty"`
	Query       confParams    `json:"query,omitempty"`
	RawQuery    string        `json:"rawQuery,omitempty"`
	Form        *confParams   `json:"form,omitempty"`
	Body        *string       `json:"body,omitempty"`
	ContentType string        `json:"contentType,omitempty"`
	Events      int           `json:"events,omitempty"`
	Ms          int           `json:"ms,omitempty"`
	Count       int           `json:"count,omitempty"`
	Parallel    int           `json:"parallel,omitempty"`
	Compare     string        `json:"compare,omitempty"`
	Auth        string        `json:"auth,omitempty"`
	Response    *confResponse `json:"response,omitempty"`
}

// confResponse is a recorded (golden) or live response.
type confResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body"`
	// HeadersEarly (watches only): the status line and headers arrived
	// before the event, i.e. the server flushed them when the watch began.
	HeadersEarly *bool `json:"headersEarly,omitempty"`
	// Timeout (collect only): the watch had not finished within the deadline.
	Timeout bool `json:"timeout,omitempty"`
	// Error: the request failed at the transport level.
	Error string `json:"error,omitempty"`
}

func (s *confStep) kind() string {
	if s.Kind == "" {
		return "request"
	}
	return s.Kind
}

func (s *confStep) hasResponse() bool {
	switch s.kind() {
	case "request", "collect", "bulk":
		return true
	}
	return false
}

// confKV is one parameter of a confParams list.
type confKV struct {
	Key    string
	Values []string
	list   bool
}

// confParams is an ordered parameter list, written in JSON as an object
// whose member order is kept.
type confParams []confKV

func (p *confParams) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("parameters must be a JSON object, got %s", b)
	}
	out := confParams{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		var one string
		if err := json.Unmarshal(raw, &one); err == nil {
			out = append(out, confKV{Key: key, Values: []string{one}})
			continue
		}
		var many []string
		if err := json.Unmarshal(raw, &many); err != nil {
			return fmt.Errorf("parameter %q: want a string or a list of strings: %v", key, err)
		}
		out = append(out, confKV{Key: key, Values: many, list: true})
	}
	*p = out
	return nil
}

func (p confParams) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range p {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := confMarshal(kv.Key)
		b.Write(k)
		b.WriteByte(':')
		var v []byte
		if kv.list || len(kv.Values) != 1 {
			v, _ = confMarshal(kv.Values)
		} else {
			v, _ = confMarshal(kv.Values[0])
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// encode renders the list as application/x-www-form-urlencoded text, in order.
func (p confParams) encode(expand func(string) string) string {
	var parts []string
	for _, kv := range p {
		for _, v := range kv.Values {
			parts = append(parts, url.QueryEscape(expand(kv.Key))+"="+url.QueryEscape(expand(v)))
		}
	}
	return strings.Join(parts, "&")
}

func confMarshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func confMarshalIndent(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func confLoadScenarios(t *testing.T) []*confScenario {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(confDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no scenarios in %s", confDir)
	}
	sort.Strings(files)
	var out []*confScenario
	seen := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := &confScenario{file: f}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(sc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if sc.Name == "" {
			t.Fatalf("%s: scenario has no name", f)
		}
		if other, ok := seen[sc.Name]; ok {
			t.Fatalf("%s: scenario name %q already used by %s", f, sc.Name, other)
		}
		seen[sc.Name] = f
		if err := confCheckScenario(sc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, sc)
	}
	return out
}

func confCheckScenario(sc *confScenario) error {
	started := map[string]bool{}
	for i, st := range sc.Steps {
		switch st.kind() {
		case "request", "bulk":
			if st.Method == "" || st.Path == "" {
				return fmt.Errorf("step %d: method and path are required", i+1)
			}
		case "watch", "stream":
			if st.ID == "" || st.Path == "" {
				return fmt.Errorf("step %d: a %s needs an id and a path", i+1, st.Kind)
			}
			if started[st.ID] {
				return fmt.Errorf("step %d: id %q already pending", i+1, st.ID)
			}
			started[st.ID] = true
		case "collect":
			if !started[st.ID] {
				return fmt.Errorf("step %d: collect of unknown or already collected id %q", i+1, st.ID)
			}
			delete(started, st.ID)
		case "sleep":
			if st.Ms <= 0 {
				return fmt.Errorf("step %d: sleep needs ms", i+1)
			}
		default:
			return fmt.Errorf("step %d: unknown kind %q", i+1, st.Kind)
		}
		switch st.Compare {
		case "", "shape", "status", "prefix":
		default:
			return fmt.Errorf("step %d: unknown compare mode %q", i+1, st.Compare)
		}
	}
	if len(started) > 0 {
		return fmt.Errorf("watches never collected: %v", started)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Index mapping

// confIndexMap maps between a server's absolute indexes and indexes relative
// to the start of a scenario. Normally that is a plain offset (the base). When
// the replay finds that the server has used more or fewer indexes than etcd
// did, the checker adds a segment: indexes allocated from then on are shifted
// by a further offset, while older ones keep theirs, so one divergence is
// reported once instead of at every later step.
type confIndexMap struct {
	base int64
	segs []confIndexSeg
}

type confIndexSeg struct {
	fromRel, fromLive, off int64
}

// live is the absolute index for the relative index rel.
func (m *confIndexMap) live(rel int64) int64 {
	var off int64
	for _, s := range m.segs {
		if rel >= s.fromRel {
			off = s.off
		}
	}
	return m.base + rel + off
}

// rel is the relative index for the absolute index n.
func (m *confIndexMap) rel(n int64) int64 {
	var off int64
	for _, s := range m.segs {
		if n >= s.fromLive {
			off = s.off
		}
	}
	return n - m.base - off
}

func (m *confIndexMap) offset() int64 {
	if len(m.segs) == 0 {
		return 0
	}
	return m.segs[len(m.segs)-1].off
}

// ---------------------------------------------------------------------------
// Templates

var confTemplateRe = regexp.MustCompile(`\$\{(?:idx([+-]\d+)?(:pad)?|rep:([^:}]*):(\d+)|i)\}`)

func confExpander(m *confIndexMap, i int) func(string) string {
	return func(s string) string {
		if !strings.Contains(s, "${") {
			return s
		}
		return confTemplateRe.ReplaceAllStringFunc(s, func(tm string) string {
			sub := confTemplateRe.FindStringSubmatch(tm)
			switch {
			case strings.HasPrefix(tm, "${idx"):
				var d int64
				if sub[1] != "" {
					d, _ = strconv.ParseInt(sub[1], 10, 64)
				}
				n := m.live(d)
				if sub[2] != "" {
					return fmt.Sprintf("%020d", n)
				}
				return strconv.FormatInt(n, 10)
			case strings.HasPrefix(tm, "${rep:"):
				n, _ := strconv.Atoi(sub[4])
				return strings.Repeat(sub[3], n)
			default:
				return strconv.Itoa(i)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Sending requests

// confSent describes a request as it was sent.
type confSent struct {
	Method   string
	URI      string // path?query as sent
	Form     string // body, when any
	params   url.Values
	literals map[string]bool // prevIndex/waitIndex values written literally in the scenario
}

func (s *confSent) String() string {
	if s == nil {
		return "(no request)"
	}
	out := s.Method + " " + confTrunc(s.URI, 200)
	if s.Form != "" {
		out += "  body: " + confTrunc(s.Form, 200)
	}
	return out
}

func confTrunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("...(%d bytes)", len(s))
}

type confRunner struct {
	url    string
	client *http.Client
}

func confNewRunner(target string) *confRunner {
	tr := &http.Transport{
		DisableCompression:  true,
		MaxIdleConnsPerHost: 16,
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}
	return &confRunner{
		url: strings.TrimRight(target, "/"),
		client: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

func (r *confRunner) build(ctx context.Context, st *confStep, expand func(string) string) (*http.Request, *confSent, error) {
	method := st.Method
	if method == "" {
		method = http.MethodGet
	}
	path := expand(st.Path)
	var qs []string
	if len(st.Query) > 0 {
		qs = append(qs, st.Query.encode(expand))
	}
	if st.RawQuery != "" {
		qs = append(qs, expand(st.RawQuery))
	}
	rawQuery := strings.Join(qs, "&")
	var body io.Reader
	var bodyText, ctype string
	switch {
	case st.Body != nil:
		bodyText = expand(*st.Body)
		ctype = st.ContentType
		body = strings.NewReader(bodyText)
	case st.Form != nil:
		bodyText = st.Form.encode(expand)
		ctype = "application/x-www-form-urlencoded"
		if st.ContentType != "" {
			ctype = st.ContentType
		}
		body = strings.NewReader(bodyText)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.url, body)
	if err != nil {
		return nil, nil, err
	}
	// Opaque is sent verbatim as the request target: no re-escaping or
	// cleaning of the scenario's path.
	req.URL.Opaque = path
	req.URL.RawQuery = rawQuery
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if st.Auth != "" {
		user, password, _ := strings.Cut(st.Auth, ":")
		req.SetBasicAuth(user, password)
	}
	sent := &confSent{Method: method, URI: path, Form: bodyText, literals: map[string]bool{}}
	if rawQuery != "" {
		sent.URI += "?" + rawQuery
	}
	// The parameters as a form-parsing server sees them: body first, then query.
	sent.params = url.Values{}
	if strings.HasPrefix(ctype, "application/x-www-form-urlencoded") {
		if v, err := url.ParseQuery(bodyText); err == nil {
			for k, vs := range v {
				sent.params[k] = append(sent.params[k], vs...)
			}
		}
	}
	if v, err := url.ParseQuery(rawQuery); err == nil {
		for k, vs := range v {
			sent.params[k] = append(sent.params[k], vs...)
		}
	}
	// Index parameters written without a template are absolute numbers:
	// when an error cause quotes them they must not be made relative.
	var unexpanded []confKV
	unexpanded = append(unexpanded, st.Query...)
	if st.Form != nil {
		unexpanded = append(unexpanded, (*st.Form)...)
	}
	if v, err := url.ParseQuery(st.RawQuery); err == nil {
		for k, vs := range v {
			unexpanded = append(unexpanded, confKV{Key: k, Values: vs})
		}
	}
	for _, kv := range unexpanded {
		if kv.Key != "prevIndex" && kv.Key != "waitIndex" {
			continue
		}
		for _, v := range kv.Values {
			if !strings.Contains(v, "${") {
				sent.literals[v] = true
			}
		}
	}
	return req, sent, nil
}

func confRecordHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for _, rule := range confHeaderRules {
		if vs, ok := h[http.CanonicalHeaderKey(rule.name)]; ok {
			out[rule.name] = strings.Join(vs, ", ")
		}
	}
	return out
}

// do sends one request and reads the whole response.
func (r *confRunner) do(st *confStep, expand func(string) string) (*confSent, *confResponse) {
	ctx, cancel := context.WithTimeout(context.Background(), confRequestTimeout)
	defer cancel()
	req, sent, err := r.build(ctx, st, expand)
	if err != nil {
		return sent, &confResponse{Error: "bad request: " + err.Error()}
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return sent, &confResponse{Error: confErrText(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	out := &confResponse{Status: resp.StatusCode, Headers: confRecordHeaders(resp.Header), Body: string(body)}
	if err != nil {
		out.Error = "reading body: " + confErrText(err)
	}
	return sent, out
}

func confErrText(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return "connection error: " + oe.Op
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed"
	}
	return "error"
}

// confPending is a watch or stream running in the background.
type confPending struct {
	sent     *confSent
	events   int
	cancel   context.CancelFunc
	headers  chan struct{} // closed when the response headers arrived (or the request failed)
	done     chan struct{} // closed when the response is complete
	early    bool
	mu       sync.Mutex
	resp     confResponse
	finished bool
}

func (r *confRunner) start(st *confStep, expand func(string) string) *confPending {
	ctx, cancel := context.WithCancel(context.Background())
	p := &confPending{cancel: cancel, events: st.Events, headers: make(chan struct{}), done: make(chan struct{})}
	req, sent, err := r.build(ctx, st, expand)
	p.sent = sent
	if err != nil {
		p.resp.Error = "bad request: " + err.Error()
		close(p.headers)
		close(p.done)
		return p
	}
	go func() {
		defer close(p.done)
		resp, err := r.client.Do(req)
		if err != nil {
			p.mu.Lock()
			p.resp.Error = confErrText(err)
			p.mu.Unlock()
			close(p.headers)
			return
		}
		defer resp.Body.Close()
		p.mu.Lock()
		p.resp.Status = resp.StatusCode
		p.resp.Headers = confRecordHeaders(resp.Header)
		p.mu.Unlock()
		close(p.headers)
		var buf []byte
		chunk := make([]byte, 32*1024)
		for {
			n, err := resp.Body.Read(chunk)
			buf = append(buf, chunk[:n]...)
			if p.events > 0 {
				if end, ok := confCompleteValues(buf, p.events); ok {
					buf = buf[:end]
					p.mu.Lock()
					p.resp.Body = string(buf)
					p.finished = true
					p.mu.Unlock()
					return
				}
			}
			p.mu.Lock()
			p.resp.Body = string(buf)
			p.mu.Unlock()
			if err != nil {
				p.mu.Lock()
				if err == io.EOF {
					p.finished = true
				} else if !errors.Is(err, context.Canceled) {
					p.resp.Error = "reading body: " + confErrText(err)
				}
				p.mu.Unlock()
				return
			}
		}
	}()
	// Wait a little for the headers: etcd sends them as soon as the watcher is
	// registered, which makes the following writes race-free.
	select {
	case <-p.headers:
		p.early = true
	case <-time.After(confEarlyWait):
	}
	return p
}

func (r *confRunner) collect(p *confPending, ms int) *confResponse {
	if ms <= 0 {
		ms = confDefaultCollectMs
	}
	timedOut := false
	select {
	case <-p.done:
	case <-time.After(time.Duration(ms) * time.Millisecond):
		timedOut = true
	}
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.resp
	if timedOut && !p.finished {
		out.Timeout = true
		out.Error = ""
	}
	early := p.early
	out.HeadersEarly = &early
	return &out
}

// bulk sends the step Count times and tallies the status codes.
func (r *confRunner) bulk(st *confStep, m *confIndexMap) (*confSent, *confResponse) {
	par := st.Parallel
	if par <= 0 {
		par = 1
	}
	var mu sync.Mutex
	tally := map[string]int{}
	var first *confSent
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				sent, resp := r.do(st, confExpander(m, i))
				key := strconv.Itoa(resp.Status)
				if resp.Error != "" {
					key = resp.Error
				}
				mu.Lock()
				tally[key]++
				if i == 0 {
					first = sent
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < st.Count; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	var keys []string
	for k := range tally {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s x%d", k, tally[k]))
	}
	if first != nil {
		first = &confSent{Method: first.Method, URI: first.URI + fmt.Sprintf("  (x%d)", st.Count), Form: first.Form, params: first.params, literals: first.literals}
	}
	return first, &confResponse{Body: strings.Join(parts, ", ")}
}

// currentIndex reads X-Etcd-Index from a GET of the root.
func (r *confRunner) currentIndex() (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), confRequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"/v2/keys/", nil)
	if err != nil {
		return 0, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	h := resp.Header.Get("X-Etcd-Index")
	n, err := strconv.ParseInt(h, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("GET /v2/keys/: status %d, bad X-Etcd-Index %q", resp.StatusCode, h)
	}
	return n, nil
}

func (r *confRunner) simple(method, path string) {
	ctx, cancel := context.WithTimeout(context.Background(), confRequestTimeout)
	defer cancel()
	var body io.Reader
	if method == http.MethodPut {
		body = strings.NewReader("value=x")
	}
	req, err := http.NewRequestWithContext(ctx, method, r.url, body)
	if err != nil {
		return
	}
	req.URL.Opaque = path
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if resp, err := r.client.Do(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// warmup makes sure the server's index is above zero, so that a relative
// index is never confused with the literal 0 that etcd reports in errors
// raised before the store is reached.
func (r *confRunner) warmup() {
	r.simple(http.MethodPut, "/v2/keys/conf_warmup")
	r.simple(http.MethodDelete, "/v2/keys/conf_warmup")
}

func (r *confRunner) cleanup(sc *confScenario, expand func(string) string) {
	paths := sc.Cleanup
	if len(paths) == 0 {
		paths = []string{"/v2/keys/" + sc.Name}
	}
	for _, p := range paths {
		if expand == nil {
			if strings.Contains(p, "${") {
				continue
			}
		} else {
			p = expand(p)
		}
		r.simple(http.MethodDelete, p+"?recursive=true")
	}
}

// confRun is the outcome of running one scenario.
type confRun struct {
	base  int64
	sent  []*confSent
	resps []*confResponse
}

// confCheckFunc is called for every response as soon as it arrives; it may
// add segments to the index map (see confIndexMap) and returns abort to stop
// the scenario.
type confCheckFunc func(i int, sent *confSent, resp *confResponse, m *confIndexMap) (abort bool)

// run runs one scenario. Templates are expanded through the index map, so that
// a server that consumed one index too many earlier still gets meaningful
// prevIndex/waitIndex values later.
func (r *confRunner) run(sc *confScenario, check confCheckFunc) (*confRun, error) {
	r.cleanup(sc, nil)
	base, err := r.currentIndex()
	if err != nil {
		return nil, err
	}
	run := &confRun{base: base, sent: make([]*confSent, len(sc.Steps)), resps: make([]*confResponse, len(sc.Steps))}
	m := &confIndexMap{base: base}
	pending := map[string]*confPending{}
	defer func() {
		for _, p := range pending {
			p.cancel()
			<-p.done
		}
	}()
	for i, st := range sc.Steps {
		expand := confExpander(m, 0)
		switch st.kind() {
		case "request":
			run.sent[i], run.resps[i] = r.do(st, expand)
		case "watch", "stream":
			p := r.start(st, expand)
			pending[st.ID] = p
			run.sent[i] = p.sent
		case "collect":
			p := pending[st.ID]
			delete(pending, st.ID)
			run.sent[i] = p.sent
			run.resps[i] = r.collect(p, st.Ms)
		case "sleep":
			time.Sleep(time.Duration(st.Ms) * time.Millisecond)
		case "bulk":
			run.sent[i], run.resps[i] = r.bulk(st, m)
		}
		if check != nil && run.resps[i] != nil {
			if check(i, run.sent[i], run.resps[i], m) {
				return run, nil
			}
		}
	}
	r.cleanup(sc, confExpander(m, 0))
	return run, nil
}

// ---------------------------------------------------------------------------
// A small JSON parser that keeps byte offsets, so that a body can be
// normalised while every byte that is not normalised is kept as it was.

type confJV struct {
	kind       byte // '{', '[', '"', '0' (number), 'l' (true/false/null)
	start, end int
	names      []confJV // object member names
	elems      []confJV // object member values, array elements
}

type confJSONParser struct {
	b []byte
	i int
}

var confErrIncomplete = errors.New("incomplete JSON")

func (p *confJSONParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *confJSONParser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *confJSONParser) fail() error {
	if p.i >= len(p.b) {
		return confErrIncomplete
	}
	return fmt.Errorf("invalid JSON at byte %d", p.i)
}

func (p *confJSONParser) value() (confJV, error) {
	p.ws()
	start := p.i
	switch c := p.peek(); {
	case c == '{' || c == '[':
		v := confJV{kind: c, start: start}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		p.i++
		p.ws()
		if p.peek() == closer {
			p.i++
			v.end = p.i
			return v, nil
		}
		for {
			if c == '{' {
				p.ws()
				if p.peek() != '"' {
					return v, p.fail()
				}
				name, err := p.value()
				if err != nil {
					return v, err
				}
				p.ws()
				if p.peek() != ':' {
					return v, p.fail()
				}
				p.i++
				v.names = append(v.names, name)
			}
			elem, err := p.value()
			if err != nil {
				return v, err
			}
			v.elems = append(v.elems, elem)
			p.ws()
			switch p.peek() {
			case ',':
				p.i++
			case closer:
				p.i++
				v.end = p.i
				return v, nil
			default:
				return v, p.fail()
			}
		}
	case c == '"':
		p.i++
		for p.i < len(p.b) {
			switch p.b[p.i] {
			case '\\':
				p.i += 2
			case '"':
				p.i++
				v := confJV{kind: '"', start: start, end: p.i}
				if !json.Valid(p.b[start:p.i]) {
					return v, fmt.Errorf("invalid JSON string at byte %d", start)
				}
				return v, nil
			default:
				p.i++
			}
		}
		return confJV{}, confErrIncomplete
	case c == '-' || (c >= '0' && c <= '9'):
		for p.i < len(p.b) && strings.IndexByte("+-.eE0123456789", p.b[p.i]) >= 0 {
			p.i++
		}
		if p.i >= len(p.b) {
			// a number at the very end may still be growing (streams)
			if !json.Valid(p.b[start:p.i]) {
				return confJV{}, confErrIncomplete
			}
		}
		v := confJV{kind: '0', start: start, end: p.i}
		if !json.Valid(p.b[start:p.i]) {
			return v, fmt.Errorf("invalid JSON number at byte %d", start)
		}
		return v, nil
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(p.b[p.i:], []byte(lit)) {
				p.i += len(lit)
				return confJV{kind: 'l', start: start, end: p.i}, nil
			}
			if len(p.b)-p.i < len(lit) && bytes.HasPrefix([]byte(lit), p.b[p.i:]) {
				return confJV{}, confErrIncomplete
			}
		}
		return confJV{}, p.fail()
	default:
		return confJV{}, p.fail()
	}
}

// confParseSeq parses a sequence of JSON values separated by whitespace
// (one value for ordinary bodies, one per event for streams).
func confParseSeq(b []byte) ([]confJV, error) {
	p := &confJSONParser{b: b}
	var out []confJV
	for {
		p.ws()
		if p.i >= len(b) {
			break
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("empty")
	}
	return out, nil
}

// confCompleteValues reports whether b holds at least n complete JSON
// values, and where the n-th one ends (including the whitespace after it).
func confCompleteValues(b []byte, n int) (int, bool) {
	p := &confJSONParser{b: b}
	for k := 0; k < n; k++ {
		if _, err := p.value(); err != nil {
			return 0, false
		}
	}
	p.ws()
	return p.i, true
}

func confStr(b []byte, v confJV) string {
	var s string
	if v.kind == '"' {
		json.Unmarshal(b[v.start:v.end], &s)
	}
	return s
}

// ---------------------------------------------------------------------------
// Normalisation

var confHeaderRules = []struct{ name, rule string }{
	{"Content-Type", "value"},
	{"X-Etcd-Index", "index"},
	{"X-Raft-Index", "present"},
	{"X-Raft-Term", "present"},
	{"X-Etcd-Cluster-Id", "present"},
	{"Allow", "value"},
	{"Location", "value"},
	{"X-Content-Type-Options", "value"},
	{"Access-Control-Allow-Origin", "value"},
	{"Access-Control-Allow-Methods", "value"},
	{"Access-Control-Allow-Headers", "value"},
}

// confNorm is a response reduced to what must be equal between servers.
type confNorm struct {
	Status  int
	Error   string
	Timeout bool
	Early   string
	Headers []string
	Body    string // normalised raw body (or its shape)
	JSON    bool   // Body is a JSON value sequence
	TTLs    []int64
}

type confNormCtx struct {
	rel       func(int64) int64
	clientURL string
	sent      *confSent
	sorted    bool
	ttls      []int64
	b         []byte
}

func (c *confNormCtx) idx(n int64) string {
	if n == 0 {
		return "0"
	}
	d := c.rel(n)
	if d >= 0 {
		return fmt.Sprintf("<idx+%d>", d)
	}
	return fmt.Sprintf("<idx%d>", d)
}

// idxText relativises a decimal index quoted in an error cause, unless the
// scenario wrote that very number literally in the request.
func (c *confNormCtx) idxText(s string) string {
	if c.sent != nil && c.sent.literals[s] {
		return s
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return s
	}
	return c.idx(n)
}

var (
	confURLRe     = regexp.MustCompile(`http://(127\.0\.0\.1|localhost|\[::1\]):[0-9]+`)
	confIDRe      = regexp.MustCompile(`^"[0-9a-f]{1,16}"$`)
	confCompareRe = regexp.MustCompile(`\[([^\[\]]*?) != ([^\[\]]*?)\]`)
	confClearedRe = regexp.MustCompile(`\[([0-9]+)/([0-9]+)\]`)
)

// str normalises the text of a string (or of a non-JSON body): in-order key
// names embed an index, member URLs embed ports.
func (c *confNormCtx) str(s string) string {
	if c.clientURL != "" {
		s = strings.ReplaceAll(s, c.clientURL, "<client-url>")
	}
	s = confURLRe.ReplaceAllString(s, "<peer-url>")
	// runs of exactly 20 digits
	var out strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i {
			out.WriteByte(s[i])
			i++
			continue
		}
		if n, err := strconv.ParseInt(s[i:j], 10, 64); err == nil && j-i == 20 {
			out.WriteString(c.idx(n))
		} else {
			out.WriteString(s[i:j])
		}
		i = j
	}
	return out.String()
}

func (c *confNormCtx) cause(raw string, code int64) string {
	switch code {
	case 401:
		return confClearedRe.ReplaceAllStringFunc(raw, func(m string) string {
			sub := confClearedRe.FindStringSubmatch(m)
			return "[" + c.idx(confAtoi(sub[1])) + "/" + c.idxText(sub[2]) + "]"
		})
	case 101:
		if c.sent == nil || !c.sent.params.Has("prevIndex") {
			return raw
		}
		ms := confCompareRe.FindAllStringSubmatchIndex(raw, -1)
		which := -1
		switch len(ms) {
		case 2:
			which = 1
		case 1:
			left := raw[ms[0][2]:ms[0][3]]
			if !c.sent.params.Has("prevValue") || (left == c.sent.params.Get("prevIndex") && left != c.sent.params.Get("prevValue")) {
				which = 0
			}
		}
		if which < 0 {
			return raw
		}
		m := ms[which]
		return raw[:m[0]] + "[" + c.idxText(raw[m[2]:m[3]]) + " != " + c.idxText(raw[m[4]:m[5]]) + "]" + raw[m[1]:]
	}
	return raw
}

func confAtoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func (c *confNormCtx) emit(out *strings.Builder, v *confJV, name string, depth int, errCode int64) {
	raw := string(c.b[v.start:v.end])
	switch v.kind {
	case '{':
		code := int64(-1)
		if depth == 0 {
			for i := range v.names {
				if confStr(c.b, v.names[i]) == "errorCode" {
					code = confAtoi(string(c.b[v.elems[i].start:v.elems[i].end]))
				}
			}
		}
		cursor := v.start
		for i := range v.elems {
			out.Write(c.b[cursor:v.elems[i].start])
			c.emit(out, &v.elems[i], confStr(c.b, v.names[i]), depth+1, code)
			cursor = v.elems[i].end
		}
		out.Write(c.b[cursor:v.end])
	case '[':
		order := make([]int, len(v.elems))
		for i := range order {
			order[i] = i
		}
		if name == "nodes" && !c.sorted {
			keys := make([]string, len(v.elems))
			for i, e := range v.elems {
				for j := range e.names {
					if confStr(c.b, e.names[j]) == "key" {
						keys[i] = confStr(c.b, e.elems[j])
					}
				}
			}
			sort.SliceStable(order, func(a, b int) bool { return keys[order[a]] < keys[order[b]] })
		}
		cursor := v.start
		for i := range v.elems {
			out.Write(c.b[cursor:v.elems[i].start])
			c.emit(out, &v.elems[order[i]], "", depth+1, -1)
			cursor = v.elems[i].end
		}
		out.Write(c.b[cursor:v.end])
	case '0':
		n, err := strconv.ParseInt(raw, 10, 64)
		switch {
		case err != nil:
			out.WriteString(raw)
		case name == "createdIndex" || name == "modifiedIndex" || (name == "index" && errCode >= 0):
			out.WriteString(`"` + c.idx(n) + `"`)
		case name == "ttl":
			c.ttls = append(c.ttls, n)
			out.WriteString(`"<ttl>"`)
		default:
			out.WriteString(raw)
		}
	case '"':
		switch {
		case name == "expiration":
			s := confStr(c.b, *v)
			tm, err := time.Parse(time.RFC3339Nano, s)
			switch {
			case err != nil:
				out.WriteString(`"<bad time>"`)
			case tm.Location() != time.UTC:
				out.WriteString(`"<time, not UTC>"`)
			default:
				out.WriteString(`"<time>"`)
			}
		case (name == "id" || name == "leader") && confIDRe.MatchString(raw):
			// member ids are random
			out.WriteString(`"<id>"`)
		case name == "cause" && errCode >= 0:
			out.WriteString(c.str(c.cause(raw, errCode)))
		default:
			out.WriteString(c.str(raw))
		}
	default:
		out.WriteString(raw)
	}
}

// confShape lists the key paths of a JSON document with the type of each
// value, sorted: used for endpoints whose values are not comparable.
func confShape(b []byte) (string, bool) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", false
	}
	set := map[string]bool{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 0 {
				set[prefix+"{}"] = true
			}
			for k, e := range x {
				walk(prefix+k+".", e)
			}
		case []any:
			if len(x) == 0 {
				set[prefix+"[]"] = true
			}
			for _, e := range x {
				walk(prefix+"[].", e)
			}
		default:
			t := "null"
			switch x.(type) {
			case string:
				t = "string"
			case json.Number:
				t = "number"
			case bool:
				t = "bool"
			}
			set[strings.TrimSuffix(prefix, ".")+": "+t] = true
		}
	}
	walk("", v)
	var keys []string
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, "\n"), true
}

func confNormalise(resp *confResponse, sent *confSent, st *confStep, rel func(int64) int64, clientURL string) confNorm {
	n := confNorm{Status: resp.Status, Error: resp.Error, Timeout: resp.Timeout}
	if resp.HeadersEarly != nil {
		n.Early = strconv.FormatBool(*resp.HeadersEarly)
	}
	c := &confNormCtx{rel: rel, clientURL: clientURL, sent: sent, b: []byte(resp.Body)}
	if sent != nil {
		if v, err := strconv.ParseBool(sent.params.Get("sorted")); err == nil && v {
			c.sorted = true
		}
	}
	for _, rule := range confHeaderRules {
		v, ok := resp.Headers[rule.name]
		if !ok {
			continue
		}
		switch rule.rule {
		case "present":
			v = "<present>"
		case "index":
			if x, err := strconv.ParseInt(v, 10, 64); err == nil {
				v = c.idx(x)
			}
		default:
			v = c.str(v)
		}
		n.Headers = append(n.Headers, rule.name+": "+v)
	}
	switch {
	case st.Compare == "status":
		n.Body = "<not compared>"
		return n
	case st.Compare == "shape":
		if s, ok := confShape(c.b); ok {
			n.Body = s
		} else {
			n.Body = c.str(resp.Body)
		}
		return n
	case st.kind() == "bulk":
		n.Body = resp.Body
		return n
	}
	vals, err := confParseSeq(c.b)
	if err != nil {
		n.Body = c.str(resp.Body)
		return n
	}
	var out strings.Builder
	out.Write(c.b[:vals[0].start])
	for i := range vals {
		if i > 0 {
			out.Write(c.b[vals[i-1].end:vals[i].start])
		}
		c.emit(&out, &vals[i], "", 0, -1)
	}
	out.Write(c.b[vals[len(vals)-1].end:])
	n.Body = out.String()
	n.JSON = true
	n.TTLs = c.ttls
	return n
}

// ---------------------------------------------------------------------------
// Comparison

// confSemantic decodes a normalised body sequence into plain Go values
// (member order lost), to tell semantic from byte-level differences.
func confSemantic(s string) ([]any, bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var out []any
	for {
		var v any
		err := dec.Decode(&v)
		if err == io.EOF {
			return out, true
		}
		if err != nil {
			return nil, false
		}
		out = append(out, v)
	}
}

// confTopKeys lists the member names of each top-level object, in order.
func confTopKeys(s string) string {
	vals, err := confParseSeq([]byte(s))
	if err != nil {
		return ""
	}
	var parts []string
	for _, v := range vals {
		var names []string
		for _, nm := range v.names {
			names = append(names, confStr([]byte(s), nm))
		}
		parts = append(parts, strings.Join(names, ","))
	}
	return strings.Join(parts, " | ")
}

// confCompare returns the differences between the golden and the live
// response; bytesOnly is set when the only difference is in the bytes of
// bodies that decode to the same JSON.
func confCompare(want, got confNorm) (diffs []string, bytesOnly bool) {
	if want.Error != got.Error {
		// no response to compare: the rest would only be noise
		w, g := want.Error, got.Error
		if w == "" {
			w = fmt.Sprintf("a response (status %d)", want.Status)
		}
		if g == "" {
			g = fmt.Sprintf("a response (status %d)", got.Status)
		}
		return []string{fmt.Sprintf("transport: want %s, got %s", w, g)}, false
	}
	if want.Timeout != got.Timeout {
		diffs = append(diffs, fmt.Sprintf("watch still pending at the deadline: want %v, got %v", want.Timeout, got.Timeout))
	}
	if want.Early != got.Early {
		diffs = append(diffs, fmt.Sprintf("headers sent before the event (flushed at watch start): want %s, got %s", want.Early, got.Early))
	}
	if want.Status != got.Status {
		diffs = append(diffs, fmt.Sprintf("status: want %d, got %d", want.Status, got.Status))
	}
	wh, gh := map[string]string{}, map[string]string{}
	var names []string
	for _, h := range want.Headers {
		k, v, _ := strings.Cut(h, ": ")
		wh[k] = v
		names = append(names, k)
	}
	for _, h := range got.Headers {
		k, v, _ := strings.Cut(h, ": ")
		gh[k] = v
		if _, ok := wh[k]; !ok {
			names = append(names, k)
		}
	}
	for _, k := range names {
		w, wok := wh[k]
		g, gok := gh[k]
		switch {
		case wok && !gok:
			diffs = append(diffs, fmt.Sprintf("header %s: want %q, got none", k, w))
		case !wok && gok:
			diffs = append(diffs, fmt.Sprintf("header %s: want none, got %q", k, g))
		case w != g:
			diffs = append(diffs, fmt.Sprintf("header %s: want %q, got %q", k, w, g))
		}
	}
	if len(want.TTLs) != len(got.TTLs) {
		diffs = append(diffs, fmt.Sprintf("ttl values: want %v, got %v", want.TTLs, got.TTLs))
	} else {
		for i := range want.TTLs {
			if d := want.TTLs[i] - got.TTLs[i]; d > 1 || d < -1 {
				diffs = append(diffs, fmt.Sprintf("ttl #%d: want %d, got %d (±1 allowed)", i+1, want.TTLs[i], got.TTLs[i]))
			}
		}
	}
	if want.Body != got.Body {
		wv, wok := confSemantic(want.Body)
		gv, gok := confSemantic(got.Body)
		sameJSON := want.JSON && got.JSON && wok && gok && reflect.DeepEqual(wv, gv)
		var why string
		if sameJSON {
			switch {
			case strings.TrimSpace(want.Body) == strings.TrimSpace(got.Body):
				why = "same JSON; differs only in leading/trailing whitespace (e.g. the trailing newline)"
			case confTopKeys(want.Body) != confTopKeys(got.Body):
				why = fmt.Sprintf("same JSON; top-level member order differs: want [%s], got [%s]", confTopKeys(want.Body), confTopKeys(got.Body))
			default:
				why = "same JSON; bytes differ (nested member order, string escaping, number format or whitespace)"
			}
			bytesOnly = len(diffs) == 0
		} else if want.JSON && got.JSON {
			why = "JSON differs"
		} else {
			why = "body differs"
		}
		diffs = append(diffs, fmt.Sprintf("body: %s\n      want: %s\n      got:  %s", why, confQuoteBody(want.Body), confQuoteBody(got.Body)))
	}
	return diffs, bytesOnly
}

func confQuoteBody(s string) string {
	q := strconv.Quote(s)
	// keep it readable: the quotes of JSON are not escaped
	q = strings.ReplaceAll(q[1:len(q)-1], `\"`, `"`)
	return confTrunc(q, 1500)
}

// ---------------------------------------------------------------------------
// Running etcdlite

func confFreePort(t *testing.T) int {
	t.Helper()
	return testPorts.pick(t)
}

func confGoTool() (string, error) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err == nil {
		return goTool, nil
	}
	return exec.LookPath("go")
}

// confBuild builds etcdlite from the module root (unless -conf.bin).
func confBuild(t *testing.T) string {
	t.Helper()
	if *confBinary != "" {
		return *confBinary
	}
	goTool, err := confGoTool()
	if err != nil {
		t.Fatalf("cannot find the go tool: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "etcdlite")
	cmd := exec.Command(goTool, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// confChild is an etcdlite running as a child process.
type confChild struct {
	url     string
	logPath string
	exited  chan struct{}
	stop    func()
}

func (c *confChild) alive() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

func (c *confChild) logTail() string {
	b, _ := os.ReadFile(c.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// confStartChild runs bin with etcd's flags on free ports, retrying with new
// ports when it does not come up, and waits until it answers.
func confStartChild(t *testing.T, bin string) *confChild {
	t.Helper()
	tmp := t.TempDir()
	var lastLog string
	for attempt := 1; attempt <= 3; attempt++ {
		p, q := confFreePort(t), confFreePort(t)
		client := fmt.Sprintf("http://127.0.0.1:%d", p)
		peer := fmt.Sprintf("http://127.0.0.1:%d", q)
		c := &confChild{url: client, logPath: filepath.Join(tmp, fmt.Sprintf("log%d", attempt)), exited: make(chan struct{})}
		logf, err := os.Create(c.logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := childCommand(bin, "--name", "t", "--data-dir", filepath.Join(tmp, fmt.Sprintf("data%d", attempt)),
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", "t="+peer)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			t.Fatalf("starting %s: %v", bin, err)
		}
		go func() { cmd.Wait(); logf.Close(); close(c.exited) }()
		var once sync.Once
		c.stop = func() {
			once.Do(func() {
				cmd.Process.Kill()
				<-c.exited
			})
		}
		if confWaitReady(client, c.exited, 15*time.Second) {
			t.Cleanup(c.stop)
			if first, last, ok := confSettle(client); ok && first != last {
				t.Logf("note: etcdlite's X-Etcd-Index moved from %d to %d after it began to answer (etcd 3.4 does its start-up writes before it serves clients)", first, last)
			}
			return c
		}
		c.stop()
		lastLog = c.logTail()
		t.Logf("etcdlite did not come up on %s (attempt %d); log:\n%s", client, attempt, lastLog)
	}
	t.Fatalf("etcdlite did not start; last log:\n%s", lastLog)
	return nil
}

func confWaitReady(client string, exited <-chan struct{}, limit time.Duration) bool {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		for _, path := range []string{"/health", "/v2/keys/"} {
			resp, err := hc.Get(client + path)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return true
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// confSettle waits (at most 5 s) until the index has not moved for 500 ms,
// so that start-up writes do not land inside the first scenario.
func confSettle(url string) (first, last int64, ok bool) {
	r := confNewRunner(url)
	first, err := r.currentIndex()
	if err != nil {
		return 0, 0, false
	}
	last = first
	stable := time.Now()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		n, err := r.currentIndex()
		if err != nil {
			return first, last, false
		}
		if n != last {
			last, stable = n, time.Now()
		} else if time.Since(stable) >= 500*time.Millisecond {
			break
		}
	}
	return first, last, true
}

// confAnswers reports whether the server at url still answers HTTP.
func confAnswers(url string) bool {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(url + "/v2/keys/")
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return true
}

// ---------------------------------------------------------------------------
// The test

// confChecker compares the live responses of one scenario with the golden ones.
type confChecker struct {
	t       *testing.T
	sc      *confScenario
	url     string
	child   *confChild // nil with -conf.target
	stats   *confStats
	crashy  bool  // the server died or stopped answering during the scenario
	maxLive int64 // the highest X-Etcd-Index seen so far in the scenario
}

type confStats struct {
	compared, failed, bytesOnly, drifts, notRecorded int
}

// confDriftCandidate guesses the offset between the live and the golden
// indexes from the X-Etcd-Index headers of one response.
func confDriftCandidate(golden *confResponse, goldenBase int64, live *confResponse, liveBase int64) (int64, bool) {
	w, err1 := strconv.ParseInt(golden.Headers["X-Etcd-Index"], 10, 64)
	g, err2 := strconv.ParseInt(live.Headers["X-Etcd-Index"], 10, 64)
	if err1 != nil || err2 != nil || w == 0 || g == 0 {
		return 0, false
	}
	return (g - liveBase) - (w - goldenBase), true
}

func (c *confChecker) check(i int, sent *confSent, resp *confResponse, m *confIndexMap) bool {
	t, sc, st := c.t, c.sc, c.sc.Steps[i]
	label := fmt.Sprintf("%s step %d", sc.Name, i+1)
	if st.Comment != "" {
		label += " (" + st.Comment + ")"
	}
	req := sent.String()
	if st.kind() == "collect" {
		req = "collected watch " + st.ID + ": " + req
	}
	if c.maxLive < m.base {
		c.maxLive = m.base
	}
	defer func() {
		if n, err := strconv.ParseInt(resp.Headers["X-Etcd-Index"], 10, 64); err == nil && n > c.maxLive {
			c.maxLive = n
		}
	}()
	if st.Response == nil {
		c.stats.notRecorded++
		t.Errorf("%s has no recorded response; run testdata/conformance/record.sh", label)
		return false
	}
	c.stats.compared++
	rec := sc.Recorded
	goldenRel := func(n int64) int64 { return n - rec.BaseIndex }
	want := confNormalise(st.Response, sent, st, goldenRel, rec.ClientURL)
	got := confNormalise(resp, sent, st, m.rel, c.url)
	if st.Compare == "prefix" && strings.HasPrefix(got.Body, want.Body) {
		// a documented deviation: etcdlite answers what etcd does and more
		got.Body, got.Timeout = want.Body, want.Timeout
		if len(got.TTLs) > len(want.TTLs) {
			got.TTLs = got.TTLs[:len(want.TTLs)]
		}
	}
	diffs, onlyBytes := confCompare(want, got)
	var notes []string
	if len(diffs) > 0 && resp.Error == "" {
		old := m.offset()
		if nd, ok := confDriftCandidate(st.Response, rec.BaseIndex, resp, m.base); ok && nd != old {
			// indexes up to the last one seen keep the old offset
			seg := confIndexSeg{fromRel: c.maxLive + 1 - m.base - old, fromLive: c.maxLive + 1, off: nd}
			m.segs = append(m.segs, seg)
			got2 := confNormalise(resp, sent, st, m.rel, c.url)
			d2, ob2 := confCompare(want, got2)
			if len(d2) < len(diffs) {
				c.stats.drifts++
				notes = append(notes, fmt.Sprintf("INDEX DRIFT: from index %d on, the server's indexes are %+d from etcd's (before: %+d): since the previous step the server used a different number of indexes than etcd did. Later steps are compared (and their ${idx} templates expanded) with this offset for indexes from then on.", seg.fromLive, nd, old))
				diffs, onlyBytes = d2, ob2
			} else {
				m.segs = m.segs[:len(m.segs)-1]
			}
		}
	}
	abort := false
	if resp.Error != "" && resp.Error != "timeout" {
		dead := false
		if c.child != nil {
			time.Sleep(100 * time.Millisecond)
			dead = !c.child.alive() || !confAnswers(c.url)
		} else {
			dead = !confAnswers(c.url)
		}
		if dead {
			abort = true
			c.crashy = true
			msg := "THE SERVER DIED during this request; the rest of the scenario is skipped and the server restarted for the next one."
			if c.child != nil {
				msg += "\n    --- end of its log ---\n" + c.child.logTail()
			} else {
				msg = "THE SERVER STOPPED ANSWERING during this request; the rest of the scenario is skipped."
			}
			notes = append(notes, msg)
		}
	}
	all := append(notes, diffs...)
	switch {
	case len(all) == 0:
		if *confVerbose {
			t.Logf("ok %s: %s", label, req)
		}
	case len(notes) == 0 && onlyBytes && *confLooseBytes:
		c.stats.bytesOnly++
		t.Logf("BYTES %s\n    request: %s\n    %s", label, req, strings.Join(all, "\n    "))
	default:
		if onlyBytes && len(notes) == 0 {
			c.stats.bytesOnly++
		}
		c.stats.failed++
		t.Errorf("MISMATCH %s\n    request: %s\n    %s", label, req, strings.Join(all, "\n    "))
	}
	return abort
}

func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("conformance suite skipped in -short mode")
	}
	scenarios := confLoadScenarios(t)
	if *confRecordURL != "" {
		confRecordAll(t, scenarios)
		return
	}
	var bin string
	var child *confChild
	target := *confTargetURL
	if target == "" {
		bin = confBuild(t)
		child = confStartChild(t, bin)
		target = child.url
	}
	r := confNewRunner(target)
	r.warmup()
	start := time.Now()
	stats := &confStats{}
	restarts := 0
	for _, sc := range scenarios {
		if child != nil && !child.alive() {
			child.stop()
			restarts++
			child = confStartChild(t, bin)
			r = confNewRunner(child.url)
			r.warmup()
		}
		t.Run(sc.Name, func(t *testing.T) {
			if sc.Recorded == nil {
				stats.notRecorded++
				t.Errorf("%s: not recorded yet; run testdata/conformance/record.sh", sc.file)
				return
			}
			c := &confChecker{t: t, sc: sc, url: r.url, child: child, stats: stats}
			if _, err := r.run(sc, c.check); err != nil {
				if child != nil && !child.alive() {
					t.Fatalf("cannot run the scenario, the server died: %v\n    --- end of its log ---\n%s", err, child.logTail())
				}
				t.Fatalf("cannot run the scenario: %v", err)
			}
			if child != nil && c.crashy {
				child.stop() // restarted before the next scenario
			}
		})
	}
	t.Logf("conformance against %s: %d scenarios, %d compared steps, %d mismatching (%d byte-level only, %d index drifts), %d unrecorded, %d server restarts, %.1fs",
		target, len(scenarios), stats.compared, stats.failed, stats.bytesOnly, stats.drifts, stats.notRecorded, restarts, time.Since(start).Seconds())
}

// confRecordAll runs every scenario against the reference server and
// rewrites the golden files.
func confRecordAll(t *testing.T, scenarios []*confScenario) {
	r := confNewRunner(*confRecordURL)
	server := "unknown"
	if resp, err := r.client.Get(r.url + "/version"); err == nil {
		var v struct {
			Server string `json:"etcdserver"`
		}
		json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if v.Server != "" {
			server = "etcd " + v.Server
		}
	}
	r.warmup()
	for _, sc := range scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			run, err := r.run(sc, nil)
			if err != nil {
				t.Fatalf("cannot run scenario: %v", err)
			}
			sc.Recorded = &confRecorded{Server: server, ClientURL: r.url, BaseIndex: run.base}
			steps := 0
			for i, st := range sc.Steps {
				st.Response = nil
				if st.hasResponse() {
					st.Response = run.resps[i]
					steps++
					if run.resps[i].Error != "" {
						t.Logf("step %d: %s -> transport error %q", i+1, run.sent[i], run.resps[i].Error)
					}
				}
			}
			b, err := confMarshalIndent(sc)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(sc.file, b, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("recorded %s: %d responses", sc.file, steps)
		})
	}
}

// TestConformanceNormaliser checks the normaliser itself on hand-made
// responses (no server needed).
func TestConformanceNormaliser(t *testing.T) {
	get := &confStep{Method: "GET"}
	plain := &confSent{params: url.Values{}, literals: map[string]bool{}}
	m := &confIndexMap{base: 100}
	norm := func(sent *confSent, body string, m *confIndexMap) confNorm {
		return confNormalise(&confResponse{Status: 200, Headers: map[string]string{"X-Etcd-Index": "105"}, Body: body}, sent, get, m.rel, "http://127.0.0.1:1234")
	}

	// indexes, in-order key names, ttl, expiration, unsorted listing
	n := norm(plain, `{"action":"get","node":{"key":"/q","dir":true,"nodes":[`+
		`{"key":"/q/00000000000000000105","value":"b","expiration":"2026-01-01T00:00:00.5Z","ttl":7,"modifiedIndex":105,"createdIndex":105},`+
		`{"key":"/q/00000000000000000102/00000000000000000103","value":"a","modifiedIndex":103,"createdIndex":103}],"modifiedIndex":101,"createdIndex":101}}`+"\n", m)
	want := `{"action":"get","node":{"key":"/q","dir":true,"nodes":[` +
		`{"key":"/q/<idx+2>/<idx+3>","value":"a","modifiedIndex":"<idx+3>","createdIndex":"<idx+3>"},` +
		`{"key":"/q/<idx+5>","value":"b","expiration":"<time>","ttl":"<ttl>","modifiedIndex":"<idx+5>","createdIndex":"<idx+5>"}],"modifiedIndex":"<idx+1>","createdIndex":"<idx+1>"}}` + "\n"
	if n.Body != want || !reflect.DeepEqual(n.TTLs, []int64{7}) || !reflect.DeepEqual(n.Headers, []string{"X-Etcd-Index: <idx+5>"}) {
		t.Errorf("listing:\n got %s %v %v\nwant %s", n.Body, n.TTLs, n.Headers, want)
	}
	sorted := &confSent{params: url.Values{"sorted": {"true"}}, literals: map[string]bool{}}
	if n := norm(sorted, `{"node":{"nodes":[{"key":"/b"},{"key":"/a"}]}}`, m); n.Body != `{"node":{"nodes":[{"key":"/b"},{"key":"/a"}]}}` {
		t.Errorf("sorted=true listing was reordered: %s", n.Body)
	}

	// error causes: literal request indexes stay, the others become relative
	cas := &confSent{params: url.Values{"prevIndex": {"1"}, "prevValue": {"x"}}, literals: map[string]bool{"1": true}}
	n = norm(cas, `{"errorCode":101,"message":"Compare failed","cause":"[x != y] [1 != 104]","index":104}`, m)
	if want := `{"errorCode":101,"message":"Compare failed","cause":"[x != y] [1 != <idx+4>]","index":"<idx+4>"}`; n.Body != want {
		t.Errorf("101 cause:\n got %s\nwant %s", n.Body, want)
	}
	valueOnly := &confSent{params: url.Values{"prevIndex": {"104"}, "prevValue": {"2"}}, literals: map[string]bool{}}
	if n = norm(valueOnly, `{"errorCode":101,"cause":"[2 != 3]","index":104}`, m); !strings.Contains(n.Body, `"[2 != 3]"`) {
		t.Errorf("a value compare was taken for an index compare: %s", n.Body)
	}
	watch := &confSent{params: url.Values{"waitIndex": {"101"}}, literals: map[string]bool{}}
	n = norm(watch, `{"errorCode":401,"cause":"the requested history has been cleared [103/101]","index":0}`, m)
	if want := `{"errorCode":401,"cause":"the requested history has been cleared [<idx+3>/<idx+1>]","index":"0"}`; n.Body != want {
		t.Errorf("401 cause:\n got %s\nwant %s", n.Body, want)
	}

	// member ids and URLs
	n = norm(plain, `{"id":"8e9e05c52164694d","clientURLs":["http://127.0.0.1:1234"],"peerURLs":["http://127.0.0.1:999"]}`, m)
	if want := `{"id":"<id>","clientURLs":["<client-url>"],"peerURLs":["<peer-url>"]}`; n.Body != want {
		t.Errorf("member:\n got %s\nwant %s", n.Body, want)
	}

	// an index map with a drift segment: old indexes keep the old offset
	dm := &confIndexMap{base: 100, segs: []confIndexSeg{{fromRel: 5, fromLive: 105, off: 2}}}
	if dm.rel(104) != 4 || dm.rel(107) != 5 || dm.live(4) != 104 || dm.live(5) != 107 {
		t.Errorf("index map: rel(104)=%d rel(107)=%d live(4)=%d live(5)=%d", dm.rel(104), dm.rel(107), dm.live(4), dm.live(5))
	}
	if got := confExpander(dm, 3)("/k/${idx+6:pad}?i=${idx+1}&n=${i}&r=${rep:ab:2}"); got != "/k/00000000000000000108?i=101&n=3&r=abab" {
		t.Errorf("templates: %s", got)
	}

	// byte-level differences are told apart from JSON differences
	a := confNorm{Status: 200, JSON: true, Body: `{"a":1,"b":"<"}` + "\n"}
	for _, tc := range []struct{ body, why string }{
		{`{"a":1,"b":"<"}`, "whitespace"},
		{`{"b":"<","a":1}` + "\n", "top-level member order"},
		{`{"a":1,"b":"\u003c"}` + "\n", "escaping"},
		{`{"a":2,"b":"<"}` + "\n", "JSON differs"},
	} {
		b := a
		b.Body = tc.body
		diffs, _ := confCompare(a, b)
		if len(diffs) != 1 || !strings.Contains(diffs[0], tc.why) {
			t.Errorf("%q: %v", tc.body, diffs)
		}
	}

	// stream framing
	if end, ok := confCompleteValues([]byte("{\"a\":1}\n{\"b\":"), 1); !ok || end != 8 {
		t.Errorf("complete values: %d %v", end, ok)
	}
	if _, ok := confCompleteValues([]byte("{\"a\":1}\n{\"b\":"), 2); ok {
		t.Errorf("an incomplete value counted")
	}
}
