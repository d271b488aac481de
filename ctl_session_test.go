// ctl_session_test.go replays the etcdctl sessions of testdata/ctl/ (the
// commands in session*.txt, the transcripts real etcdctl 3.4 produced
// against etcd 3.4 in session*.golden) against `etcdlite ctl` running
// in-process on an in-process etcdlite, or, with CTL_ETCDCTL and
// CTL_ENDPOINT set, runs any etcdctl binary against any server (and with
// CTL_RECORD=1 rewrites the golden files: scripts/ctl-record.sh).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ctlSessionBase is the store index the first command of a session writes
// at: the runner pads the server up to it so indexes in the transcripts do
// not depend on how the server started.
const ctlSessionBase = 100

// sessionStep is one line of a session file.
type sessionStep struct {
	line  string   // as written
	op    string   // "run", "bg", "wait", "int", "sleep"
	name  string   // bg, wait, int: the background command's name
	env   []string // VAR=value before the command
	stdin string
	args  []string // after "etcdctl"
	sleep time.Duration
}

// splitShellWords splits s into words: blanks separate, '...' is literal,
// "..." knows \n, \" and \\, and a backslash outside quotes escapes the
// next character.
func splitShellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					switch s[i] {
					case 'n':
						cur.WriteByte('\n')
					default:
						cur.WriteByte(s[i])
					}
					continue
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated \" in %q", s)
			}
			inWord = true
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// parseSession reads a session file.
func parseSession(text string) ([]sessionStep, error) {
	var steps []sessionStep
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		w, err := splitShellWords(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		st := sessionStep{line: line, op: "run"}
		switch w[0] {
		case "sleep":
			d, err := time.ParseDuration(w[1])
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n+1, err)
			}
			st.op, st.sleep = "sleep", d
			steps = append(steps, st)
			continue
		case "wait", "int":
			st.op, st.name = w[0], w[1]
			steps = append(steps, st)
			continue
		case "bg":
			st.op, st.name = "bg", w[1]
			w = w[2:]
		}
		for len(w) > 0 && w[0] != "etcdctl" {
			k, v, ok := strings.Cut(w[0], "=")
			if !ok {
				return nil, fmt.Errorf("line %d: want VAR=value or etcdctl, got %q", n+1, w[0])
			}
			if k == "STDIN" {
				st.stdin = v
			} else {
				st.env = append(st.env, w[0])
			}
			w = w[1:]
		}
		if len(w) == 0 {
			return nil, fmt.Errorf("line %d: no etcdctl command", n+1)
		}
		st.args = w[1:]
		steps = append(steps, st)
	}
	return steps, nil
}

// sessionResult is what one command printed and its status.
type sessionResult struct {
	stdout, stderr string
	code           int
}

// sessionProc is a running command.
type sessionProc interface {
	interrupt()
	wait() sessionResult
}

// sessionRunner starts commands.
type sessionRunner interface {
	start(args, env []string, stdin string) sessionProc
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// inProcessRunner runs runCtl in goroutines; an interrupt cancels the
// command's context.
type inProcessRunner struct{ baseEnv []string }

type inProcessProc struct {
	cancel         context.CancelFunc
	done           chan int
	stdout, stderr *syncBuffer
}

func (r *inProcessRunner) start(args, env []string, stdin string) sessionProc {
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcessProc{cancel: cancel, done: make(chan int, 1), stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	cio := &ctlIO{stdin: strings.NewReader(stdin), stdout: p.stdout, stderr: p.stderr, environ: append(append([]string(nil), r.baseEnv...), env...)}
	go func() { p.done <- runCtl(ctx, args, cio) }()
	return p
}

func (p *inProcessProc) interrupt() { p.cancel() }

func (p *inProcessProc) wait() sessionResult {
	code := <-p.done
	p.cancel()
	return sessionResult{stdout: p.stdout.String(), stderr: p.stderr.String(), code: code}
}

// execRunner runs a binary; an interrupt is SIGINT.
type execRunner struct {
	bin     string
	baseEnv []string
}

type execProc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	err            error
}

func (r *execRunner) start(args, env []string, stdin string) sessionProc {
	p := &execProc{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	p.cmd = exec.Command(r.bin, args...)
	p.cmd.Env = append(append([]string(nil), r.baseEnv...), env...)
	p.cmd.Stdin = strings.NewReader(stdin)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.err = p.cmd.Start()
	return p
}

func (p *execProc) interrupt() {
	if p.err == nil {
		_ = p.cmd.Process.Signal(os.Interrupt)
	}
}

func (p *execProc) wait() sessionResult {
	if p.err != nil {
		return sessionResult{stderr: p.err.Error(), code: -1}
	}
	err := p.cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	} else if err != nil {
		code = -1
	}
	return sessionResult{stdout: p.stdout.String(), stderr: p.stderr.String(), code: code}
}

// sessionTarget is the server a session runs against and how its
// particulars are written in transcripts.
type sessionTarget struct {
	endpoint string // client URL given in ETCDCTL_ENDPOINTS
	dead     string // a URL where nothing listens
	id, peer string // the first member's id and peer URL
	repl     *strings.Replacer
}

// newSessionTarget asks the server for its members and builds the
// replacements of their URLs and ids by placeholders.
func newSessionTarget(t *testing.T, endpoint, dead string) *sessionTarget {
	t.Helper()
	resp, err := http.Get(endpoint + "/v2/members")
	if err != nil {
		t.Fatal(err)
	}
	var ms struct{ Members []memberView }
	err = json.NewDecoder(resp.Body).Decode(&ms)
	resp.Body.Close()
	if err != nil || len(ms.Members) == 0 {
		t.Fatalf("members of %s: %v %+v", endpoint, err, ms)
	}
	st := &sessionTarget{endpoint: endpoint, dead: dead, id: ms.Members[0].ID, peer: ms.Members[0].PeerURLs[0]}
	du, _ := url.Parse(dead)
	pairs := []string{dead, "$DEAD", du.Host, "$DEADHOST", endpoint, "$EP"}
	for _, m := range ms.Members {
		for _, u := range m.ClientURLs {
			pairs = append(pairs, u, "$EP")
		}
		for _, u := range m.PeerURLs {
			pairs = append(pairs, u, "$PEER")
		}
		pairs = append(pairs, m.ID, "$ID")
	}
	st.repl = strings.NewReplacer(pairs...)
	return st
}

// expand puts the target's values for $EP, $DEAD, $ID and $PEER in w.
func (st *sessionTarget) expand(w string) string {
	return strings.NewReplacer("$EP", st.endpoint, "$DEAD", st.dead, "$ID", st.id, "$PEER", st.peer).Replace(w)
}

var (
	ctlTimeRe = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	ctlTTLRe  = regexp.MustCompile(`("ttl":|TTL: )(99[0-9]|1000)\b`)
)

// normalise replaces what differs from run to run by placeholders.
func (st *sessionTarget) normalise(s string) string {
	s = st.repl.Replace(s)
	s = ctlTimeRe.ReplaceAllString(s, "$$TIME")
	return ctlTTLRe.ReplaceAllString(s, "${1}$$TTL1000")
}

// padIndex writes a hidden key until the server's index is base-1.
func padIndex(t *testing.T, endpoint string, base uint64) {
	t.Helper()
	for {
		resp, err := http.Get(endpoint + "/v2/keys/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		idx, _ := strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
		if idx >= base-1 {
			if idx > base-1 {
				t.Fatalf("server index %d is already past %d: use a fresh server", idx, base-1)
			}
			return
		}
		req, _ := http.NewRequest("PUT", endpoint+"/v2/keys/_ctlpad", strings.NewReader("value=pad"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
}

// writeResult appends one command's transcript.
func writeResult(b *strings.Builder, header string, r sessionResult, st *sessionTarget) {
	b.WriteString(header + "\n")
	section := func(name, text string) {
		if text == "" {
			return
		}
		text = st.normalise(text)
		b.WriteString("--- " + name + "\n" + text)
		if !strings.HasSuffix(text, "\n") {
			b.WriteString("\n(no newline at end)\n")
		}
	}
	section("stdout", r.stdout)
	section("stderr", r.stderr)
	fmt.Fprintf(b, "--- exit %d\n", r.code)
}

// runSession runs steps and returns the normalised transcript.
func runSession(t *testing.T, steps []sessionStep, r sessionRunner, st *sessionTarget) string {
	t.Helper()
	var b strings.Builder
	bg := map[string]sessionProc{}
	bgLine := map[string]string{}
	for _, s := range steps {
		args := make([]string, len(s.args))
		for i, a := range s.args {
			args[i] = st.expand(a)
		}
		env := make([]string, len(s.env))
		for i, e := range s.env {
			env[i] = st.expand(e)
		}
		switch s.op {
		case "sleep":
			time.Sleep(s.sleep)
		case "bg":
			bg[s.name] = r.start(args, env, s.stdin)
			bgLine[s.name] = s.line
		case "int", "wait":
			p := bg[s.name]
			if p == nil {
				t.Fatalf("%q: no background command %s", s.line, s.name)
			}
			if s.op == "int" {
				p.interrupt()
			}
			done := make(chan sessionResult, 1)
			go func() { done <- p.wait() }()
			select {
			case res := <-done:
				writeResult(&b, "$ "+bgLine[s.name]+"\n# "+s.line, res, st)
			case <-time.After(20 * time.Second):
				t.Fatalf("%q: %s did not end", s.line, s.name)
			}
			delete(bg, s.name)
		default:
			p := r.start(args, env, s.stdin)
			done := make(chan sessionResult, 1)
			go func() { done <- p.wait() }()
			select {
			case res := <-done:
				writeResult(&b, "$ "+s.line, res, st)
			case <-time.After(20 * time.Second):
				p.interrupt()
				t.Fatalf("%q did not end", s.line)
			}
		}
	}
	for name, p := range bg {
		p.interrupt()
		p.wait()
		t.Errorf("background command %s was never waited for", name)
	}
	return b.String()
}

// deadURL is a client URL on 127.0.0.1 where nothing listens.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// sessionEnv is the environment of every command: this process's, without
// ETCDCTL_* and ETCD_WATCH_*, plus the API version and the endpoint.
func sessionEnv(endpoint string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCDCTL_") && !strings.HasPrefix(kv, "ETCD_") {
			env = append(env, kv)
		}
	}
	return append(env, "ETCDCTL_API=2", "ETCDCTL_ENDPOINTS="+endpoint)
}

// startSessionMember starts the in-process member "e1" on free ports (so
// the client URL it advertises is the one it listens on).
func startSessionMember(t *testing.T) *testMember {
	t.Helper()
	client, peer := freePortURL(t), freePortURL(t)
	cfg := memberConfig(t, "e1", t.TempDir(), client, map[string]string{"e1": peer})
	return startTestMember(t, cfg)
}

// testCtlSession runs the session named name: against an in-process
// etcdlite with runCtl, or against CTL_ENDPOINT with the binary
// CTL_ETCDCTL; it compares with the golden transcript, or rewrites it when
// CTL_RECORD=1.
func testCtlSession(t *testing.T, name string, needAuth bool) {
	text, err := os.ReadFile(filepath.Join("testdata", "ctl", name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := parseSession(string(text))
	if err != nil {
		t.Fatal(err)
	}
	goldenPath := filepath.Join("testdata", "ctl", name+".golden")
	var runner sessionRunner
	var endpoint string
	if bin := os.Getenv("CTL_ETCDCTL"); bin != "" {
		endpoint = os.Getenv("CTL_ENDPOINT")
		if endpoint == "" {
			t.Fatal("CTL_ETCDCTL needs CTL_ENDPOINT")
		}
		runner = &execRunner{bin: bin, baseEnv: sessionEnv(endpoint)}
	} else {
		if testing.Short() {
			t.Skip("the session takes several seconds")
		}
		m := startSessionMember(t)
		endpoint = m.URL
		runner = &inProcessRunner{baseEnv: sessionEnv(endpoint)}
	}
	if needAuth {
		resp, err := http.Get(endpoint + "/v2/auth/enable")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			t.Skipf("%s has no v2 auth API (GET /v2/auth/enable: 404)", endpoint)
		}
	}
	st := newSessionTarget(t, endpoint, deadURL(t))
	padIndex(t, endpoint, ctlSessionBase)
	got := runSession(t, steps, runner, st)
	if os.Getenv("CTL_RECORD") == "1" {
		if err := os.WriteFile(goldenPath, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("recorded %s", goldenPath)
		return
	}
	want, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("transcript differs from %s:\n%s", goldenPath, transcriptDiff(string(want), got))
	}
}

// transcriptDiff shows the commands whose transcripts differ.
func transcriptDiff(want, got string) string {
	split := func(s string) []string {
		parts := strings.Split(s, "\n$ ")
		return parts
	}
	w, g := split(want), split(got)
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			fmt.Fprintf(&b, "=== want:\n$ %s\n=== got:\n$ %s\n", a, c)
		}
	}
	return b.String()
}

// TestCtlSession replays the keys, members, errors and help session.
func TestCtlSession(t *testing.T) { testCtlSession(t, "session", false) }

// TestCtlSessionAuth replays the users, roles and auth session; it needs a
// server with the v2 auth API.
func TestCtlSessionAuth(t *testing.T) { testCtlSession(t, "session-auth", true) }

// TestSplitShellWords checks the session files' quoting.
func TestSplitShellWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{`a b  c`, []string{"a", "b", "c"}},
		{`a 'b c' d`, []string{"a", "b c", "d"}},
		{`a "b\nc" d`, []string{"a", "b\nc", "d"}},
		{`x='$A "q"'`, []string{`x=$A "q"`}},
		{`a\ b`, []string{"a b"}},
		{`''`, []string{""}},
	}
	for _, tt := range tests {
		got, err := splitShellWords(tt.in)
		if err != nil || strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("splitShellWords(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := splitShellWords(`a 'b`); err == nil {
		t.Error("unterminated quote accepted")
	}
}
