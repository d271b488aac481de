// Tests of the flag and environment parser.

package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// helpFlag is one flag of etcd's --help, as recorded in testdata.
type helpFlag struct{ name, group, def string }

// readEtcdHelp reads the flags of etcd 3.4.23's --help output.
func readEtcdHelp(t *testing.T) []helpFlag {
	t.Helper()
	f, err := os.Open("testdata/cli/etcd-help.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []helpFlag
	group := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasSuffix(line, ":") && !strings.HasPrefix(line, " ") {
			group = strings.TrimSuffix(line, ":")
			continue
		}
		if group == "" || !strings.HasPrefix(line, "  --") {
			continue
		}
		name, def, _ := strings.Cut(strings.TrimPrefix(line, "  --"), " ")
		out = append(out, helpFlag{name: name, group: group, def: strings.Trim(def, "'")})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 80 {
		t.Fatalf("read only %d flags from etcd-help.txt", len(out))
	}
	return out
}

// TestFlagTableMatchesEtcdHelp checks that the table has every flag of
// etcd's --help, in its group, and nothing else but the flags etcd accepts
// without listing them.
func TestFlagTableMatchesEtcdHelp(t *testing.T) {
	inHelp := map[string]bool{}
	for _, h := range readEtcdHelp(t) {
		inHelp[h.name] = true
		d := flagByName(h.name)
		if d == nil {
			t.Errorf("--%s (%s) is not in the flag table", h.name, h.group)
			continue
		}
		if d.Group != h.group {
			t.Errorf("--%s: group %q, etcd's help says %q", h.name, d.Group, h.group)
		}
		def := d.Def
		if d.ShowDef != "" {
			def = d.ShowDef
		}
		// etcdlite's own defaults: enable-v2 is always on, pre-vote always runs.
		if def != h.def && h.name != "enable-v2" && h.name != "pre-vote" {
			t.Errorf("--%s: default %q, etcd's help says %q", h.name, def, h.def)
		}
		if d.Hidden {
			t.Errorf("--%s is marked hidden but etcd's help lists it", h.name)
		}
	}
	seen := map[string]bool{}
	for _, d := range etcdFlags {
		if seen[d.Name] {
			t.Errorf("--%s is twice in the table", d.Name)
		}
		seen[d.Name] = true
		if !inHelp[d.Name] && !d.Hidden {
			t.Errorf("--%s is not in etcd's help and not marked hidden", d.Name)
		}
		if d.Use != useUsed && d.To != nil {
			t.Errorf("--%s is ignored but sets a field", d.Name)
		}
		if d.Use == useUsed && d.To == nil && d.Check == nil {
			t.Errorf("--%s is used but sets nothing", d.Name)
		}
		if d.Use == useIgnored && d.Note == "" {
			t.Errorf("--%s is ignored without a reason", d.Name)
		}
		if !strings.Contains(helpText(), "  --"+d.Name+" ") {
			t.Errorf("--help does not list --%s", d.Name)
		}
	}
}

// sampleValue is a value other than the default for d, and how the YAML
// file writes it.
func sampleValue(d *flagDef) (arg, yaml string) {
	switch d.Name {
	case "enable-v2":
		return "true", "true"
	case "initial-cluster":
		return "n1=http://127.0.0.1:13001,n2=http://127.0.0.1:13002", "n1=http://127.0.0.1:13001,n2=http://127.0.0.1:13002"
	case "log-outputs":
		return "stdout,/tmp/x.log", "[stdout, /tmp/x.log]"
	case "cipher-suites":
		return "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
			"[TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256']"
	}
	for _, c := range d.Choices {
		if c != d.Def {
			return c, "'" + c + "'"
		}
	}
	if d.isBool() {
		if d.Def == "true" {
			return "false", "false"
		}
		return "true", "true"
	}
	if d.To == nil {
		switch d.Kind {
		case kindUint, kindInt:
			return "7", "7"
		case kindDuration:
			return "3s", "3s"
		}
		return "x-" + d.Name, "'x-" + d.Name + "'"
	}
	switch d.To(&config{}).(type) {
	case *uint, *uint64:
		return "7", "7"
	case *[]string:
		return "a.example,b.example", "'a.example,b.example'"
	case *string:
		return "/tmp/v-" + d.Name, "\"/tmp/v-" + d.Name + "\""
	}
	return "http://127.0.0.1:13001,http://127.0.0.1:13002", "http://127.0.0.1:13001,http://127.0.0.1:13002"
}

// yamlFor writes the YAML file that sets the flags of defs to their sample
// values, nesting keys as etcd's file does.
func yamlFor(defs []*flagDef) string {
	var top []string
	nested := map[string][]string{}
	for _, d := range defs {
		k := d.yamlKey()
		_, v := sampleValue(d)
		if parent, child, ok := strings.Cut(k, "."); ok {
			if _, seen := nested[parent]; !seen {
				top = append(top, parent)
			}
			nested[parent] = append(nested[parent], "  "+child+": "+v+" # a comment")
			continue
		}
		top = append(top, k+": "+v)
	}
	var b strings.Builder
	b.WriteString("# written by yamlFor\n---\n")
	for _, line := range top {
		if kids, ok := nested[line]; ok {
			b.WriteString(line + ":\n" + strings.Join(kids, "\n") + "\n\n")
			continue
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// normalized is c without what says where its values came from.
func normalized(c *config) *config {
	n := *c
	n.given, n.notes, n.ConfigFile = nil, nil, ""
	return &n
}

// loadFrom parses args and env with files read from the map.
func loadFrom(args, env []string, files map[string]string) (*config, error) {
	return loadConfig(args, env, func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, fmt.Errorf("open %s: %w", p, os.ErrNotExist)
	})
}

// TestFlagsEnvAndConfigFileAgree runs the parser over every flag of the
// table as --flag=value, -flag value, ETCD_* variable and YAML key, one at a
// time and all at once, and checks each gives the same config, and one
// that differs from the default (or names the flag as ignored).
func TestFlagsEnvAndConfigFileAgree(t *testing.T) {
	base := normalized(defaultConfig())
	finishConfig(base)
	var all []*flagDef
	var allArgs, allEnv []string
	for i := range etcdFlags {
		d := &etcdFlags[i]
		v, _ := sampleValue(d)
		all = append(all, d)
		allArgs = append(allArgs, "--"+d.Name+"="+v)
		allEnv = append(allEnv, envName(d.Name)+"="+v)
		t.Run(d.Name, func(t *testing.T) {
			forms := map[string]func() (*config, error){
				"--flag=value": func() (*config, error) { return loadFrom([]string{"--" + d.Name + "=" + v}, nil, nil) },
				"ETCD_*":       func() (*config, error) { return loadFrom(nil, []string{envName(d.Name) + "=" + v}, nil) },
			}
			if !d.isBool() {
				forms["-flag value"] = func() (*config, error) { return loadFrom([]string{"-" + d.Name, v}, nil, nil) }
				forms["--flag value"] = func() (*config, error) { return loadFrom([]string{"--" + d.Name, v}, nil, nil) }
			} else if v == "true" {
				forms["--flag"] = func() (*config, error) { return loadFrom([]string{"--" + d.Name}, nil, nil) }
			}
			if d.yamlKey() != "" {
				forms["config file"] = func() (*config, error) {
					return loadFrom([]string{"--config-file", "c.yml"}, nil, map[string]string{"c.yml": yamlFor([]*flagDef{d})})
				}
			}
			var want *config
			var wantForm string
			names := make([]string, 0, len(forms))
			for f := range forms {
				names = append(names, f)
			}
			sort.Strings(names)
			for _, form := range names {
				c, err := forms[form]()
				if err != nil {
					t.Fatalf("%s: %v", form, err)
				}
				got := normalized(c)
				if want == nil {
					want, wantForm = got, form
					continue
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s gives\n%+v\nbut %s gives\n%+v", form, got, wantForm, want)
				}
			}
			if d.Use == useUsed {
				if reflect.DeepEqual(want, base) && d.Name != "enable-v2" {
					t.Errorf("--%s=%s leaves the default config", d.Name, v)
				}
				if len(want.Ignored) != 0 {
					t.Errorf("--%s is used but listed as ignored: %v", d.Name, want.Ignored)
				}
			} else if !reflect.DeepEqual(want.Ignored, []string{d.Name}) {
				t.Errorf("ignored flags %v, want [%s]", want.Ignored, d.Name)
			}
		})
	}
	fromArgs, err := loadFrom(allArgs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	fromEnv, err := loadFrom(nil, allEnv, nil)
	if err != nil {
		t.Fatal(err)
	}
	var yamlDefs []*flagDef
	for _, d := range all {
		if d.yamlKey() != "" {
			yamlDefs = append(yamlDefs, d)
		}
	}
	fromFile, err := loadFrom([]string{"--config-file=c.yml"}, nil, map[string]string{"c.yml": yamlFor(yamlDefs)})
	if err != nil {
		t.Fatal(err)
	}
	if a, e := normalized(fromArgs), normalized(fromEnv); !reflect.DeepEqual(a, e) {
		t.Errorf("every flag at once: args give\n%+v\nenvironment gives\n%+v", a, e)
	}
	// The file cannot set the flags etcd's file has no key for; set those
	// on the args' config from the defaults again before comparing.
	a := normalized(fromArgs)
	for _, d := range all {
		if d.yamlKey() == "" && d.To != nil {
			reflect.ValueOf(d.To(a)).Elem().Set(reflect.ValueOf(d.To(base)).Elem())
		}
	}
	var ignored []string
	for _, name := range a.Ignored {
		if flagByName(name).yamlKey() != "" {
			ignored = append(ignored, name)
		}
	}
	a.Ignored = ignored
	if f := normalized(fromFile); !reflect.DeepEqual(a, f) {
		t.Errorf("every flag at once: args give\n%+v\nthe config file gives\n%+v", a, f)
	}
}

// TestEtcdSampleConfigFile reads the keys of etcd 3.4's sample
// etcd.conf.yml: none is unknown, and the values land where they should.
func TestEtcdSampleConfigFile(t *testing.T) {
	c, err := loadConfig([]string{"--config-file", "testdata/cli/etcd.conf.yml"}, nil, readConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.notes {
		if n.warn {
			t.Errorf("warning for the sample file: %s %v", n.msg, n.args)
		}
	}
	if c.SnapshotCount != 10000 || c.StrictReconfigCheck || !c.EnablePprof || c.Logger != "zap" ||
		!reflect.DeepEqual(c.LogOutputs, []string{"stderr"}) || c.DataDir != "default.etcd" || c.Proxy != "off" {
		t.Errorf("sample config read as %+v", c)
	}
	if want := []string{"quota-backend-bytes", "auto-compaction-retention", "auto-compaction-mode"}; !reflect.DeepEqual(c.Ignored, want) {
		t.Errorf("ignored %v, want %v", c.Ignored, want)
	}
	// The probe file sets every key etcd 3.4.23 logs (etcd-config-probe.log).
	p, err := loadConfig([]string{"--config-file", "testdata/cli/etcd-config-probe.yml"}, nil, readConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range p.notes {
		if n.warn {
			t.Errorf("warning for the probe file: %s %v", n.msg, n.args)
		}
	}
	if p.Name != "ymember" || p.WALDir != "/tmp/cli/yaml/wal" || p.SnapshotCount != 12345 || p.HeartbeatMs != 110 ||
		p.ElectionMs != 1200 || p.MaxSnapshots != 6 || p.MaxWALs != 7 || p.InitialClusterToken != "tok-y" ||
		!reflect.DeepEqual(p.CORS, []string{"http://a.example:80", "http://b.example:81"}) ||
		!reflect.DeepEqual(p.HostWhitelist, []string{"localhost", "127.0.0.1"}) || p.Metrics != "extensive" ||
		urlStrings(p.ListenMetricsURLs)[0] != "http://127.0.0.1:13381" || p.ProxyReadTimeoutMs != 1 || p.DiscoveryFallback != "exit" {
		t.Errorf("probe config read as %+v", p)
	}
}

// TestEnvironmentRules checks etcd 3.4's rules for ETCD_* variables.
func TestEnvironmentRules(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		env      []string
		code     int    // 0: no error
		errHas   string // in the error
		warnHas  string // in a warning
		noteHas  string // in an info note
		wantName string
	}{
		{name: "flag and variable", args: []string{"--name", "b"}, env: []string{"ETCD_NAME=a"}, code: 1,
			errHas: `conflicting environment variable "ETCD_NAME" is shadowed by the command-line flag --name`},
		{name: "flag and variable, other spelling", args: []string{"-name=b"}, env: []string{"ETCD_NAME=a"}, code: 1, errHas: "ETCD_NAME"},
		{name: "unknown variable", env: []string{"ETCD_FOO=bar"}, warnHas: "ETCD_FOO=bar", wantName: "default"},
		{name: "lower case is unknown", env: []string{"ETCD_name=x"}, warnHas: "ETCD_name=x", wantName: "default"},
		{name: "empty suffix", env: []string{"ETCD_=1"}, warnHas: "ETCD_=1", wantName: "default"},
		{name: "empty is not used", env: []string{"ETCD_NAME=", "ETCD_SNAPSHOT_COUNT="}, warnHas: "ETCD_SNAPSHOT_COUNT=", wantName: "default"},
		{name: "empty still conflicts", args: []string{"--name", "y"}, env: []string{"ETCD_NAME="}, code: 1, errHas: "ETCD_NAME"},
		{name: "used", env: []string{"ETCD_NAME=e"}, noteHas: "ETCD_NAME=e", wantName: "e"},
		{name: "not ETCD_", env: []string{"ETCDCTL_API=2", "NAME=x"}, wantName: "default"},
		{name: "bad value", env: []string{"ETCD_SNAPSHOT_COUNT=abc"}, code: 1, errHas: `invalid value "abc" for ETCD_SNAPSHOT_COUNT: parse error`},
		{name: "bad bool", env: []string{"ETCD_ENABLE_PPROF=maybe"}, code: 1, errHas: "ETCD_ENABLE_PPROF"},
		{name: "bad URL", env: []string{"ETCD_LISTEN_PEER_URLS=ftp://x:1"}, code: 1, errHas: "ETCD_LISTEN_PEER_URLS"},
		{name: "bad choice", env: []string{"ETCD_INITIAL_CLUSTER_STATE=bogus"}, code: 1, errHas: "must be one of new, existing"},
		{name: "ignored flag checked", env: []string{"ETCD_QUOTA_BACKEND_BYTES=lots"}, code: 1, errHas: "ETCD_QUOTA_BACKEND_BYTES"},
		{name: "config file from env", env: []string{"ETCD_CONFIG_FILE=c.yml", "ETCD_NAME=ignored"}, noteHas: "ETCD_NAME", wantName: "fromfile"},
		{name: "config file wins over flags", args: []string{"--name", "flag", "--config-file", "c.yml"}, noteHas: "--name", wantName: "fromfile"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadFrom(tc.args, tc.env, map[string]string{"c.yml": "name: fromfile\n"})
			if tc.code != 0 {
				if err == nil {
					t.Fatalf("no error, want exit %d with %q", tc.code, tc.errHas)
				}
				if exitCode(err) != tc.code || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("error %q (exit %d), want exit %d with %q", err, exitCode(err), tc.code, tc.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Name != tc.wantName {
				t.Errorf("name %q, want %q", c.Name, tc.wantName)
			}
			var warns, infos []string
			for _, n := range c.notes {
				s := n.msg + " " + fmt.Sprint(n.args...)
				if n.warn {
					warns = append(warns, s)
				} else {
					infos = append(infos, s)
				}
			}
			if tc.warnHas != "" && !strings.Contains(strings.Join(warns, "\n"), tc.warnHas) {
				t.Errorf("warnings %q, want one with %q", warns, tc.warnHas)
			}
			if tc.warnHas == "" && len(warns) > 0 {
				t.Errorf("unexpected warnings %q", warns)
			}
			if tc.noteHas != "" && !strings.Contains(strings.Join(infos, "\n"), tc.noteHas) {
				t.Errorf("notes %q, want one with %q", infos, tc.noteHas)
			}
		})
	}
}

// TestStartupChecks checks etcd's start-up rules and their exit codes.
func TestStartupChecks(t *testing.T) {
	peer := []string{"--listen-peer-urls", "http://127.0.0.1:13380", "--initial-advertise-peer-urls", "http://127.0.0.1:13380",
		"--initial-cluster", "default=http://127.0.0.1:13380"}
	with := func(extra ...string) []string { return append(append([]string{}, peer...), extra...) }
	cases := []struct {
		name   string
		args   []string
		env    []string
		file   string
		code   int
		errHas string
	}{
		{name: "defaults", code: 0},
		{name: "advertise missing", args: with("--listen-client-urls", "http://127.0.0.1:13379"), code: 1,
			errHas: "--advertise-client-urls is required when --listen-client-urls is set explicitly"},
		{name: "advertise missing, listen at the default", args: with("--listen-client-urls", "http://localhost:2379"), code: 1,
			errHas: "--advertise-client-urls is required"},
		{name: "advertise missing, listen from env", args: peer, env: []string{"ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:13379"}, code: 1,
			errHas: "ETCD_LISTEN_CLIENT_URLS"},
		{name: "advertise given", args: with("--listen-client-urls", "http://127.0.0.1:13379", "--advertise-client-urls", "http://127.0.0.1:13379")},
		{name: "advertise missing in a config file is fine", file: "listen-client-urls: http://127.0.0.1:13379\n"},
		{name: "election too short", args: with("--election-timeout", "100", "--heartbeat-interval", "100"), code: 1,
			errHas: "--election-timeout (100 ms) must be at least 5 times --heartbeat-interval (100 ms)"},
		{name: "election too long", args: with("--election-timeout", "60000"), code: 1, errHas: "--election-timeout (60000 ms) is too long"},
		{name: "heartbeat zero", args: with("--heartbeat-interval", "0"), code: 1, errHas: "--heartbeat-interval must be greater than 0"},
		{name: "initial cluster without this member", args: []string{"--initial-cluster", "foo=http://localhost:2380"}, code: 1,
			errHas: `--initial-cluster has no member named "default"`},
		{name: "initial cluster with other URLs", args: []string{"--initial-cluster", "default=http://127.0.0.1:13381",
			"--initial-advertise-peer-urls", "http://127.0.0.1:13380"}, code: 1, errHas: "--initial-advertise-peer-urls says http://127.0.0.1:13380"},
		{name: "ftp URL", args: []string{"--listen-peer-urls", "ftp://127.0.0.1:13380"}, code: 2, errHas: "-listen-peer-urls"},
		{name: "URL without port", args: []string{"--listen-peer-urls", "http://127.0.0.1"}, code: 2, errHas: "host:port"},
		{name: "URL with path", args: []string{"--listen-peer-urls", "http://127.0.0.1:1/foo"}, code: 2, errHas: "path"},
		{name: "unknown flag", args: []string{"--foo"}, code: 2, errHas: "flag provided but not defined: -foo"},
		{name: "not a flag", args: []string{"foo"}, code: 1, errHas: "'foo' is not a valid flag"},
		{name: "v2 off", args: []string{"--enable-v2=false"}, code: 2, errHas: "etcdlite serves only etcd's v2 API"},
		{name: "v2 off from env", env: []string{"ETCD_ENABLE_V2=false"}, code: 1, errHas: "etcdlite serves only etcd's v2 API"},
		{name: "v2 off in a file", file: "enable-v2: false\n", code: 1, errHas: "line 1"},
		{name: "bad log level", args: []string{"--log-level", "bogus"}, code: 2, errHas: "must be one of debug"},
		{name: "bad logger", args: []string{"--logger", "bogus"}, code: 2, errHas: "must be one of zap, capnslog"},
		{name: "TLS flag at its default", args: []string{"--client-cert-auth=false"}},
		{name: "CORS at its default", args: []string{"--cors", "*"}},
		{name: "snapshot count 0 is the default", args: []string{"--snapshot-count", "0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			files := map[string]string{}
			if tc.file != "" {
				files["c.yml"] = tc.file
				args = append([]string{"--config-file", "c.yml"}, args...)
			}
			c, err := loadFrom(args, tc.env, files)
			if err == nil {
				if err = checkConfig(c); err != nil {
					err = &exitError{1, err}
				}
			}
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want exit %d with %q", tc.code, tc.errHas)
			}
			if exitCode(err) != tc.code || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("error %q (exit %d), want exit %d with %q", err, exitCode(err), tc.code, tc.errHas)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is more than one line: %q", err)
			}
		})
	}
	if c, err := loadFrom([]string{"--snapshot-count", "0"}, nil, nil); err != nil || c.SnapshotCount != 100000 {
		t.Errorf("--snapshot-count 0 gives %v, %v; want etcd's default 100000", c.SnapshotCount, err)
	}
	if _, err := loadFrom([]string{"--version"}, nil, nil); !errors.Is(err, errVersion) {
		t.Errorf("--version: %v", err)
	}
	var usage usageError
	if _, err := loadFrom([]string{"-h"}, nil, nil); !errors.As(err, &usage) || !strings.Contains(string(usage), "[ignored: applies to the v3 API only]") {
		t.Errorf("-h: %v", err)
	}
}

// TestREADMEListsEveryFlag checks the README's flag table has a row for
// every flag of the table.
func TestREADMEListsEveryFlag(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "## Flags\n")
	end := strings.Index(s[start+1:], "\n## ")
	if start < 0 || end < 0 {
		t.Fatal("no Flags section in README.md")
	}
	section := s[start : start+1+end]
	for _, d := range etcdFlags {
		row := "| `--" + d.Name + "`"
		if !strings.Contains(section, row) {
			t.Errorf("README's flag table has no row for --%s", d.Name)
		}
		line, _, _ := strings.Cut(section[strings.Index(section, row):], "\n")
		if d.Use != useUsed && !strings.Contains(line, "| ignored") {
			t.Errorf("README does not say --%s is ignored", d.Name)
		}
	}
}

// TestInitialElectionTickAdvanceOff checks that a lone member given
// --initial-election-tick-advance=false waits an election timeout before it
// campaigns, and still leads.
func TestInitialElectionTickAdvanceOff(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.InitialElectionTickAdvance = false
	start := time.Now()
	startTestMember(t, cfg)
	if took, min := time.Since(start), time.Duration(cfg.ElectionMs)*time.Millisecond; took < min {
		t.Fatalf("led after %v, before one election timeout (%v)", took, min)
	}
}

// TestConfigFileKeysMatchEtcd checks that the config file keys of the
// table are exactly those etcd 3.4.23 reads (testdata/cli/etcd-config-keys.txt).
func TestConfigFileKeysMatchEtcd(t *testing.T) {
	b, err := os.ReadFile("testdata/cli/etcd-config-keys.txt")
	if err != nil {
		t.Fatal(err)
	}
	etcdReads := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		key, answer, ok := strings.Cut(line, "\t")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(answer, "reads it: ") {
			etcdReads[key] = true
		} else if answer != "NOT READ" {
			t.Fatalf("bad line %q", line)
		}
	}
	if len(etcdReads) < 70 {
		t.Fatalf("only %d keys read from the recording", len(etcdReads))
	}
	ours := map[string]bool{}
	for i := range etcdFlags {
		if k := etcdFlags[i].yamlKey(); k != "" {
			ours[k] = true
			if !etcdReads[k] {
				t.Errorf("the table reads key %s (--%s) from the config file; etcd does not", k, etcdFlags[i].Name)
			}
		}
	}
	for k := range etcdReads {
		if !ours[k] {
			t.Errorf("etcd reads key %s from the config file; the table does not", k)
		}
	}
}
