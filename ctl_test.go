// ctl_test.go tests `etcdlite ctl` directly: how it is invoked, the
// argument reordering of etcdctl's command-line library, and the exit code
// of each class of error against an in-process member.
package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestIsCtlInvocation checks the two ways to reach the client.
func TestIsCtlInvocation(t *testing.T) {
	tests := []struct {
		args []string
		rest []string
		ok   bool
	}{
		{[]string{"/usr/local/bin/etcdctl", "get", "/a"}, []string{"get", "/a"}, true},
		{[]string{"etcdctl"}, []string{}, true},
		{[]string{"etcdlite", "ctl", "ls"}, []string{"ls"}, true},
		{[]string{"./etcdlite", "ctl"}, []string{}, true},
		{[]string{"etcdlite", "--name", "ctl"}, nil, false},
		{[]string{"etcdlite"}, nil, false},
		{[]string{"etcdctl.sh", "get"}, nil, false},
	}
	for _, tt := range tests {
		rest, ok := isCtlInvocation(tt.args)
		if ok != tt.ok || strings.Join(rest, " ") != strings.Join(tt.rest, " ") {
			t.Errorf("isCtlInvocation(%q) = %q, %v; want %q, %v", tt.args, rest, ok, tt.rest, tt.ok)
		}
	}
}

// TestReorderArgs checks that a command's own flags move in front of its
// arguments, with the value that may follow them, and that "--" ends it.
func TestReorderArgs(t *testing.T) {
	flags := []ctlFlag{
		{names: []string{"recursive", "r"}, kind: ctlBool},
		{names: []string{"after-index"}, kind: ctlInt},
	}
	tests := []struct{ in, want string }{
		{"/a -r", "-r /a"},
		{"-r /a", "-r /a"},
		{"/a --after-index 3 b", "--after-index 3 /a b"},
		{"/a --after-index=3 b", "--after-index=3 /a b"},
		{"/a -- sh -c x", "-- /a sh -c x"},
		{"-r /a -- sh -c x", "-r /a -- sh -c x"},
		{"/a -c x", "/a -c x"},
		{"- /a", "- /a"},
	}
	for _, tt := range tests {
		got := strings.Join(reorderArgs(flags, strings.Fields(tt.in)), " ")
		if got != tt.want {
			t.Errorf("reorderArgs(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

// runCtlTest runs one command line in-process with ETCDCTL_ENDPOINTS=ep.
func runCtlTest(t *testing.T, ep string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cio := &ctlIO{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb,
		environ: append(os.Environ(), "ETCDCTL_ENDPOINTS="+ep)}
	code = runCtl(ctx, args, cio)
	return code, out.String(), errb.String()
}

// TestCtlExitCodes checks the status of each class of outcome.
func TestCtlExitCodes(t *testing.T) {
	m := startSessionMember(t)
	dead := deadURL(t)
	if code, _, errs := runCtlTest(t, m.URL, "", "set", "/k", "v"); code != 0 {
		t.Fatalf("set: exit %d: %s", code, errs)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string // a part of it
	}{
		{"success", []string{"get", "/k"}, 0, ""},
		{"not found", []string{"get", "/nokey"}, 4, "100: Key not found (/nokey)"},
		{"exists", []string{"mk", "/k", "v"}, 4, "105: Key already exists"},
		{"CAS failure", []string{"set", "--swap-with-value", "x", "/k", "w"}, 4, "101: Compare failed ([x != v])"},
		{"CAD failure", []string{"rm", "--with-index", "1", "/k"}, 4, "101: Compare failed"},
		{"directory", []string{"get", "/"}, 1, ": is a directory"},
		{"unreachable", []string{"--endpoints", dead, "get", "/k"}, 2, "connection refused"},
		{"unreachable without sync", []string{"--no-sync", "--endpoints", dead, "get", "/k"}, 4, "connection refused"},
		{"bad global flag", []string{"--bogus", "get", "/k"}, 1, "flag provided but not defined: -bogus"},
		{"bad command flag", []string{"get", "--bogus", "/k"}, 1, "flag provided but not defined: -bogus"},
		{"bad flag value", []string{"set", "--ttl", "x", "/k", "v"}, 1, `invalid value "x" for flag -ttl`},
		{"missing key", []string{"get"}, 1, "key required"},
		{"missing value", []string{"set", "/k"}, 1, "value required"},
		{"unknown command", []string{"bogus"}, 3, "No help topic for 'bogus'"},
		{"unhealthy cluster listing", []string{"--no-sync", "--endpoints", dead, "cluster-health"}, 4, "connection refused"},
		{"healthy cluster", []string{"cluster-health"}, 0, ""},
		{"member not found", []string{"member", "remove", "1234"}, 1, "Couldn't find a member"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := runCtlTest(t, m.URL, "", tt.args...)
			if code != tt.code || !strings.Contains(errs, tt.stderr) {
				t.Errorf("%q: exit %d, stderr %q; want exit %d, stderr with %q", tt.args, code, errs, tt.code, tt.stderr)
			}
		})
	}
}

// TestCtlExecWatchRunsCommandPerEvent checks that exec-watch runs its
// command once for each event, with the event in its environment, and
// ends with status 0 when interrupted.
func TestCtlExecWatchRunsCommandPerEvent(t *testing.T) {
	m := startSessionMember(t)
	log := filepath.Join(t.TempDir(), "events")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	cio := &ctlIO{stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		environ: append(os.Environ(), "ETCDCTL_ENDPOINTS="+m.URL, "EVLOG="+log)}
	done := make(chan int, 1)
	go func() {
		done <- runCtl(ctx, []string{"exec-watch", "--recursive", "/ew", "--", "sh", "-c",
			`echo "$ETCD_WATCH_ACTION $ETCD_WATCH_KEY $ETCD_WATCH_VALUE $ETCD_WATCH_MODIFIED_INDEX" >> "$EVLOG"`}, cio)
	}()
	time.Sleep(300 * time.Millisecond) // the watch starts from the index current when it is registered
	var idx []string
	for _, kv := range [][2]string{{"/ew/a", "1"}, {"/ew/b", "2"}, {"/ew/a", "3"}} {
		code, o, e := runCtlTest(t, m.URL, "", "-o", "json", "set", kv[0], kv[1])
		if code != 0 {
			t.Fatalf("set: %d %s", code, e)
		}
		var resp ctlResponse
		if err := json.Unmarshal([]byte(o), &resp); err != nil {
			t.Fatalf("set: %q: %v", o, err)
		}
		idx = append(idx, strconv.FormatUint(resp.Node.ModifiedIndex, 10))
		time.Sleep(100 * time.Millisecond) // the commands run concurrently: keep their lines in order
	}
	want := "set /ew/a 1 " + idx[0] + "\nset /ew/b 2 " + idx[1] + "\nset /ew/a 3 " + idx[2] + "\n"
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(log)
		if string(b) == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events run: %q; want %q (stderr %q)", b, want, errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exec-watch ended with %d after the interrupt; want 0", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("exec-watch did not end after the interrupt")
	}
}

// TestCtlCAFile checks --ca-file as etcdctl takes it: a file with the CA
// trusts the member, a file without any certificate trusts nothing (the
// request fails on the member's certificate, exit 4, as etcdctl does), and a
// missing file is an error of the command line (exit 1).
func TestCtlCAFile(t *testing.T) {
	p := newTestPKI(t)
	srv := p.leaf("server", leafOpts{cn: "server", ca: p.ca})
	m := startTLSMember(t, transportSecurity{CertFile: srv.cert, KeyFile: srv.key})
	noCert := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(noCert, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, caFile string
		code         int
		stderr       string
	}{
		{"the CA", p.ca.file, 0, ""},
		{"no certificate in it", noCert, 4, "error #0: x509: certificate signed by unknown authority"},
		{"missing", filepath.Join(t.TempDir(), "missing.pem"), 1, "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := runCtlTest(t, m.URL, "", "--no-sync", "--ca-file", tt.caFile, "ls", "/")
			if code != tt.code || !strings.Contains(errs, tt.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errs, tt.code, tt.stderr)
			}
		})
	}
}
