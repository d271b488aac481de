// Tests of --config-file.

package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestParseYAML checks the subset of YAML etcd's config files use.
func TestParseYAML(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want map[string]yamlValue
	}{
		{"scalars", "a: 1\nb: 'x y'\nc: \"q\\\"t\"\nd: plain text # comment\ne: 'it''s'\n", map[string]yamlValue{
			"a": {line: 1, scalar: "1"}, "b": {line: 2, scalar: "x y"}, "c": {line: 3, scalar: `q"t`},
			"d": {line: 4, scalar: "plain text"}, "e": {line: 5, scalar: "it's"}}},
		{"null and empty", "a:\nb: ~\nc: ''\n", map[string]yamlValue{
			"a": {line: 1, null: true}, "b": {line: 2, null: true}, "c": {line: 3, scalar: ""}}},
		{"hash inside a value", "a: http://x:1/#frag\nb: 'x # y'\n", map[string]yamlValue{
			"a": {line: 1, scalar: "http://x:1/#frag"}, "b": {line: 2, scalar: "x # y"}}},
		{"nested", "# top\n---\nt:\n  a: 1\n\n  # inside\n  b: true\nc: 2\n", map[string]yamlValue{
			"t.a": {line: 4, scalar: "1"}, "t.b": {line: 7, scalar: "true"}, "c": {line: 8, scalar: "2"}}},
		{"nested at the end, empty child", "t:\n  a:\n", map[string]yamlValue{"t.a": {line: 2, null: true}}},
		{"flow list", "l: [a, 'b,c', \"d\"]\nm: []\n", map[string]yamlValue{
			"l": {line: 1, isList: true, list: []string{"a", "b,c", "d"}}, "m": {line: 2, isList: true}}},
		{"block list", "l:\n  - a\n  - 'b'\nn:\n- c\nx: 1\n", map[string]yamlValue{
			"l": {line: 1, isList: true, list: []string{"a", "b"}}, "n": {line: 4, isList: true, list: []string{"c"}},
			"x": {line: 6, scalar: "1"}}},
		{"CRLF", "a: 1\r\nb: 2\r\n", map[string]yamlValue{"a": {line: 1, scalar: "1"}, "b": {line: 2, scalar: "2"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseYAML(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestParseYAMLErrors checks that what the parser does not take is an
// error naming its line.
func TestParseYAMLErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"unclosed flow list", "name: [a\n  b: c\n", "line 1"},
		{"continuation line", "name: a\nfoo: 1\n  bad\n", "line 3"},
		{"no colon", "a: 1\njust text\n", "line 2"},
		{"tab indentation", "t:\n\ta: 1\n", "line 2"},
		{"anchor", "a: &x 1\n", "line 1"},
		{"alias", "a: *x\n", "line 1"},
		{"block scalar", "a: |\n  text\n", "line 1"},
		{"flow map", "a: {b: 1}\n", "line 1"},
		{"duplicate key", "a: 1\nb: 2\na: 3\n", "line 3"},
		{"duplicate nested", "t:\n  a: 1\nt:\n  b: 2\n", "line 3"},
		{"unterminated quote", "a: 'x\n", "line 1"},
		{"bad indentation", "a: 1\n  b: 2\n", "line 2"},
		{"second document", "a: 1\n---\nb: 2\n", "line 2"},
		{"list where a key is", "t:\n  a: 1\n  - x\n", "line 3"},
		{"quoted key", "'a': 1\n", "line 1"},
		{"colon in plain value", "a: b: c\n", "line 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseYAML(tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}

// TestConfigFileValues checks how the file's values reach the config:
// errors name the file and line, unknown keys are a warning, YAML's
// booleans and etcd's durations in nanoseconds are read.
func TestConfigFileValues(t *testing.T) {
	load := func(src string) (*config, error) {
		return loadFrom([]string{"--config-file", "e.yml"}, nil, map[string]string{"e.yml": src})
	}
	for _, tc := range []struct{ src, want string }{
		{"name: a\nsnapshot-count: abc\n", "e.yml line 2: invalid value \"abc\" for snapshot-count"},
		{"enable-pprof: [true]\n", "e.yml line 1: enable-pprof must be true or false"},
		{"client-transport-security:\n  client-cert-auth: sometimes\n", "line 2: invalid value \"sometimes\" for client-transport-security.client-cert-auth"},
		{"listen-peer-urls: http://x\n", "line 1"},
		{"a: [\n", "e.yml: line 1"},
	} {
		if _, err := load(tc.src); err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != 1 {
			t.Errorf("%q: error %v, want exit 1 with %q", tc.src, err, tc.want)
		}
	}
	if _, err := loadFrom([]string{"--config-file", "missing.yml"}, nil, nil); err == nil || !strings.Contains(err.Error(), "missing.yml") {
		t.Errorf("missing file: %v", err)
	}
	c, err := load("enable-pprof: yes\nstrict-reconfig-check: off\nfoo: 1\npeer-transport-security:\n  bar: 2\ngrpc-keepalive-min-time: 6000000000\n")
	if err != nil {
		t.Fatal(err)
	}
	if !c.EnablePprof || c.StrictReconfigCheck {
		t.Errorf("YAML booleans read as pprof %v, strict %v", c.EnablePprof, c.StrictReconfigCheck)
	}
	var warned []string
	for _, n := range c.notes {
		if n.warn {
			warned = append(warned, fmt.Sprintf("%s %v", n.msg, n.args))
		}
	}
	if len(warned) != 2 || !strings.Contains(warned[0], "key foo") || !strings.Contains(warned[1], "key peer-transport-security.bar") {
		t.Errorf("warnings %q, want the unknown keys foo and peer-transport-security.bar", warned)
	}
}

// TestConfigFileTLS starts a 2-member cluster from YAML config files whose
// client-transport-security and peer-transport-security blocks give TLS
// with client certificates on both sides: the members find each other over
// https peer URLs, serve https clients with a certificate of the CA, and
// refuse a client without one and plain http on the peer port.
func TestConfigFileTLS(t *testing.T) {
	p := newTestPKI(t)
	srv := p.leaf("server", leafOpts{cn: "server", ca: p.ca})
	client := p.leaf("client", leafOpts{cn: "client", ca: p.ca, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	freeURL := func() string { return fmt.Sprintf("https://127.0.0.1:%d", confFreePort(t)) }
	names := []string{"y0", "y1"}
	cu := []string{freeURL(), freeURL()}
	pu := []string{freeURL(), freeURL()}
	initial := fmt.Sprintf("%s=%s,%s=%s", names[0], pu[0], names[1], pu[1])
	servers := make([]*server, 2)
	t.Cleanup(func() {
		for _, s := range servers {
			if s == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			s.Shutdown(ctx)
			cancel()
		}
	})
	for i := range names {
		src := fmt.Sprintf(`# etcd.conf.yml
name: %s
data-dir: %s
listen-client-urls: %s
advertise-client-urls: %s
listen-peer-urls: %s
initial-advertise-peer-urls: %s
initial-cluster: %s
initial-cluster-state: new
initial-cluster-token: yaml-tls
heartbeat-interval: 20
election-timeout: 200
client-transport-security:
  cert-file: %s
  key-file: %s
  client-cert-auth: true
  trusted-ca-file: %s
  auto-tls: false
peer-transport-security:
  cert-file: '%s'
  key-file: "%s"
  client-cert-auth: true
  trusted-ca-file: %s
  auto-tls: false
`, names[i], t.TempDir(), cu[i], cu[i], pu[i], pu[i], initial, srv.cert, srv.key, p.ca.file, srv.cert, srv.key, p.ca.file)
		cfg, err := loadFrom([]string{"--config-file", "etcd.yml"}, nil, map[string]string{"etcd.yml": src})
		if err != nil {
			t.Fatal(err)
		}
		want := transportSecurity{CertFile: srv.cert, KeyFile: srv.key, ClientCertAuth: true, TrustedCAFile: p.ca.file}
		if cfg.ClientTLS != want || cfg.PeerTLS != want {
			t.Fatalf("config file TLS: client %+v, peer %+v, want both %+v", cfg.ClientTLS, cfg.PeerTLS, want)
		}
		// one after the other, as startTestCluster does: start-up sets
		// process-wide WAL settings
		s, err := startServer(cfg)
		if err != nil {
			t.Fatalf("start %s: %v", names[i], err)
		}
		servers[i] = s
	}
	hc := tlsClient(t, p.ca.file, &client)
	req, _ := http.NewRequest("PUT", cu[0]+"/v2/keys/yaml", strings.NewReader("value=tls"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var put *http.Response
	waitFor(t, 15*time.Second, "a write through the first member", func() bool {
		r, err := hc.Do(req.Clone(context.Background()))
		if err != nil {
			return false
		}
		r.Body.Close()
		put = r
		req.Body = io.NopCloser(strings.NewReader("value=tls"))
		return r.StatusCode == 201
	})
	if put.StatusCode != 201 {
		t.Fatalf("PUT: %d", put.StatusCode)
	}
	waitFor(t, 10*time.Second, "the write on the second member", func() bool {
		r, err := hc.Get(cu[1] + "/v2/keys/yaml")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		return r.StatusCode == 200 && strings.Contains(string(b), `"value":"tls"`)
	})
	if _, err := tlsClient(t, p.ca.file, nil).Get(cu[1] + "/v2/keys/yaml"); err == nil {
		t.Error("a client without a certificate was served")
	}
	plain := &http.Client{Timeout: 5 * time.Second}
	if r, err := plain.Get(strings.Replace(pu[0], "https", "http", 1) + "/members"); err == nil {
		r.Body.Close()
		t.Errorf("plain http on the peer port answered %d", r.StatusCode)
	}
	r, err := hc.Get(pu[0] + "/members")
	if err != nil {
		t.Fatalf("peer port with a certificate: %v", err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || strings.Count(string(b), "https://") != 4 {
		t.Errorf("peer /members: %d %s", r.StatusCode, b)
	}
}
