// Tests of the built binary's command line.

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer collects a child's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is what was written so far.
func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// cliChild is the built binary running as a child process.
type cliChild struct {
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{}
	err    error
}

// startCLIChild starts bin with args and exactly the environment env, and
// kills it when the test ends.
func startCLIChild(t *testing.T, bin string, args, env []string) *cliChild {
	t.Helper()
	c := &cliChild{cmd: exec.Command(bin, args...), out: &lockedBuffer{}, exited: make(chan struct{})}
	c.cmd.Env = env
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.err = c.cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", bin, c.out)
		}
	})
	return c
}

// stop sends SIGTERM and waits for a clean exit.
func (c *cliChild) stop(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
		if c.err != nil {
			t.Errorf("exit after SIGTERM: %v", c.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit 10 s after SIGTERM")
	}
}

// runCLI runs bin to its end and returns its exit code and output.
func runCLI(t *testing.T, bin string, args, env []string) (int, string) {
	t.Helper()
	c := startCLIChild(t, bin, args, env)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("%v still running after 10 s", args)
	}
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		return ee.ExitCode(), c.out.String()
	}
	if c.err != nil {
		t.Fatal(c.err)
	}
	return 0, c.out.String()
}

// serves waits until a write and a read work at clientURL.
func serves(t *testing.T, c *cliChild, clientURL string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequest("PUT", clientURL+"/v2/keys/cli", strings.NewReader("value=ok"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 || resp.StatusCode == 201 {
				break
			}
		}
		select {
		case <-c.exited:
			t.Fatalf("exited: %v", c.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write answered at %s: %v", clientURL, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Get(clientURL + "/v2/keys/cli")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"value":"ok"`) {
		t.Fatalf("GET: %s", b)
	}
}

// baseEnv is a minimal environment, as systemd gives a service.
func baseEnv() []string {
	return []string{"PATH=/usr/bin:/bin", "LANG=C"}
}

// TestCLIBinary starts the built binary as an operator would: from
// Debian's etcd unit (environment only, Type=notify), from etcd's sample
// config file, with every flag of etcd's --help at once; and checks the
// refusals' exit codes and messages.
func TestCLIBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := confBuild(t)

	t.Run("debian unit file", func(t *testing.T) {
		// /lib/systemd/system/etcd.service: Environment=ETCD_NAME=%H,
		// ETCD_DATA_DIR=/var/lib/etcd/default, EnvironmentFile=-/etc/default/etcd,
		// Type=notify, ExecStart=/usr/bin/etcd $DAEMON_ARGS (empty). The
		// environment file sets the URLs here (free ports, a temp dir).
		host, err := os.Hostname()
		if err != nil {
			t.Fatal(err)
		}
		client, peer := freePortURL(t), freePortURL(t)
		sock := fmt.Sprintf("@etcdlite-cli-test-%d", os.Getpid())
		ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "\x00" + sock[1:], Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		env := append(baseEnv(), "DAEMON_ARGS=", "ETCD_NAME="+host, "ETCD_DATA_DIR="+filepath.Join(t.TempDir(), "default"),
			"ETCD_LISTEN_PEER_URLS="+peer, "ETCD_LISTEN_CLIENT_URLS="+client,
			"ETCD_INITIAL_ADVERTISE_PEER_URLS="+peer, "ETCD_ADVERTISE_CLIENT_URLS="+client,
			"ETCD_INITIAL_CLUSTER="+host+"="+peer, "ETCD_INITIAL_CLUSTER_TOKEN=etcd-cluster-1",
			"ETCD_INITIAL_CLUSTER_STATE=new", "ETCD_QUOTA_BACKEND_BYTES=8589934592", "ETCD_FOO=bar",
			"NOTIFY_SOCKET="+sock)
		c := startCLIChild(t, bin, nil, env)
		got := make(chan string, 1)
		go func() {
			buf := make([]byte, 256)
			ln.SetReadDeadline(time.Now().Add(15 * time.Second))
			n, _, err := ln.ReadFromUnix(buf)
			if err != nil {
				got <- err.Error()
				return
			}
			got <- string(buf[:n])
		}()
		if msg := <-got; msg != "READY=1" {
			t.Fatalf("systemd got %q, want READY=1", msg)
		}
		serves(t, c, client)
		out := c.out.String()
		for _, want := range []string{"unrecognized environment variable", "ETCD_FOO=bar", "ETCD_QUOTA_BACKEND_BYTES",
			`msg="ignored: applies to the v3 API only" flags=--quota-backend-bytes`, "etcdlite serving", "name=" + host} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q", want)
			}
		}
		c.stop(t)
	})

	t.Run("etcd sample config file", func(t *testing.T) {
		src, err := os.ReadFile("testdata/cli/etcd.conf.yml")
		if err != nil {
			t.Fatal(err)
		}
		client, peer := freePortURL(t), freePortURL(t)
		dir := t.TempDir()
		s := strings.NewReplacer("http://localhost:2380", peer, "http://localhost:2379", client).Replace(string(src))
		s = regexp.MustCompile(`(?m)^data-dir:$`).ReplaceAllString(s, "data-dir: "+filepath.Join(dir, "data"))
		s = regexp.MustCompile(`(?m)^wal-dir:$`).ReplaceAllString(s, "wal-dir: "+filepath.Join(dir, "wal"))
		path := filepath.Join(dir, "etcd.conf.yml")
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		// Flags and variables are ignored when a config file is given.
		c := startCLIChild(t, bin, []string{"--config-file", path, "--name", "ignored"}, append(baseEnv(), "ETCD_SNAPSHOT_COUNT=5"))
		serves(t, c, client)
		out := c.out.String()
		for _, want := range []string{`"msg":"loaded server configuration; other command-line flags and environment variables are ignored"`,
			`"ignored":"--name ETCD_SNAPSHOT_COUNT"`, `"name":"default"`, `"wal-dir":"` + filepath.Join(dir, "wal")} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %s", want)
			}
		}
		if segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*.wal")); len(segs) == 0 {
			t.Errorf("no WAL segment in the wal-dir")
		}
		c.stop(t)
	})

	t.Run("every flag at once", func(t *testing.T) {
		client, peer := freePortURL(t), freePortURL(t)
		dir := t.TempDir()
		logFile := filepath.Join(dir, "etcdlite.log")
		set := map[string]string{
			"name": "all", "data-dir": filepath.Join(dir, "data"), "wal-dir": filepath.Join(dir, "wal"),
			"listen-peer-urls": peer, "initial-advertise-peer-urls": peer, "initial-cluster": "all=" + peer,
			"listen-client-urls": client, "advertise-client-urls": client, "log-outputs": "stderr," + logFile,
			"initial-cluster-state": "new", "initial-cluster-token": "tok", "logger": "capnslog", "log-level": "info",
			"heartbeat-interval": "50", "election-timeout": "500", "snapshot-count": "1000", "debug": "false",
		}
		var args []string
		for i := range etcdFlags {
			d := &etcdFlags[i]
			v, ok := set[d.Name]
			switch {
			case ok:
			case d.Use != useUsed:
				v, _ = sampleValue(d)
			default:
				v = d.Def // what this build cannot do yet is given at its default
			}
			args = append(args, "--"+d.Name+"="+v)
		}
		c := startCLIChild(t, bin, args, baseEnv())
		serves(t, c, client)
		out := c.out.String()
		for i := range etcdFlags {
			d := &etcdFlags[i]
			n := len(regexp.MustCompile(`(?m)--`+regexp.QuoteMeta(d.Name)+`([ "]|$)`).FindAllString(out, -1))
			switch {
			case d.Use != useUsed && n != 1:
				t.Errorf("ignored --%s is named %d times in the log, want once", d.Name, n)
			case d.Use == useUsed && n != 0:
				t.Errorf("used --%s is named %d times in the log", d.Name, n)
			}
		}
		b, err := os.ReadFile(logFile)
		if err != nil || !strings.Contains(string(b), "etcdlite serving") {
			t.Errorf("--log-outputs file: %v %q", err, b)
		}
		c.stop(t)
	})

	t.Run("refusals", func(t *testing.T) {
		dir := t.TempDir()
		bad := filepath.Join(dir, "bad.yml")
		if err := os.WriteFile(bad, []byte("name: [a\n  b: c\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		dataDir := "--data-dir=" + filepath.Join(dir, "data")
		for _, tc := range []struct {
			name string
			args []string
			env  []string
			code int
			want string
		}{
			{"flag and variable", []string{"--name", "b", dataDir}, []string{"ETCD_NAME=a"}, 1,
				`conflicting environment variable "ETCD_NAME" is shadowed by the command-line flag --name`},
			{"bad YAML", []string{"--config-file", bad}, nil, 1, "bad.yml: line 1: a list in brackets must end on the same line"},
			{"missing advertise URL", []string{dataDir, "--listen-client-urls", "http://127.0.0.1:13379"}, nil, 1,
				"--advertise-client-urls is required when --listen-client-urls is set explicitly"},
			{"missing advertise URL, from the environment", []string{dataDir}, []string{"ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:13379"}, 1,
				"--advertise-client-urls is required"},
			{"unknown flag", []string{"--no-such-flag"}, nil, 2, "flag provided but not defined: -no-such-flag"},
			{"v2 disabled", []string{"--enable-v2=false"}, nil, 2, "etcdlite serves only etcd's v2 API"},
			{"election", []string{dataDir, "--election-timeout", "100"}, nil, 1, "--election-timeout (100 ms) must be at least 5 times"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, out := runCLI(t, bin, tc.args, append(baseEnv(), tc.env...))
				if code != tc.code || !strings.Contains(out, tc.want) {
					t.Fatalf("exit %d, output %q; want exit %d with %q", code, out, tc.code, tc.want)
				}
				if lines := strings.Count(strings.TrimSpace(out), "\n") + 1; lines != 1 {
					t.Errorf("%d lines of output, want one", lines)
				}
			})
		}
		code, out := runCLI(t, bin, []string{"--help"}, baseEnv())
		if code != 0 || !strings.Contains(out, "\nLogging:\n  --logger 'capnslog'") || !strings.Contains(out, "[ignored: applies to the v3 API only]") {
			t.Errorf("--help: exit %d\n%s", code, out)
		}
	})
}
