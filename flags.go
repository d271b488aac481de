// The command line: the table of etcd 3.4's flags (each one's group as
// `etcd --help` shows it, its default, and what etcdlite does with it) and
// the parser that reads them from the arguments and from ETCD_* variables,
// or from --config-file instead (configfile.go reads that file).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// flagUse is what etcdlite does with a flag.
type flagUse int

const (
	// useUsed: etcdlite does what etcd does with it.
	useUsed flagUse = iota
	// useV3Only: accepted and checked like etcd, then ignored (logged once
	// at start): it only concerns etcd's v3 API or its bolt backend.
	useV3Only
	// useIgnored: accepted and checked like etcd, then ignored (logged once
	// at start) for the reason in the flag's Note.
	useIgnored
)

// flagKind is how the value of a flag that sets no config field is checked
// (a flag that sets a field is checked by the field's type).
type flagKind int

const (
	kindString flagKind = iota
	kindBool
	kindUint
	kindInt
	kindDuration
)

// The groups of `etcd --help`, in its order.
const (
	groupMember       = "Member"
	groupClustering   = "Clustering"
	groupSecurity     = "Security"
	groupAuth         = "Auth"
	groupProfiling    = "Profiling and Monitoring"
	groupLogging      = "Logging"
	groupProxy        = "v2 Proxy (to be deprecated in v4)"
	groupExperimental = "Experimental feature"
	groupUnsafe       = "Unsafe feature"
	groupDeprecated   = "TO BE DEPRECATED"
)

// flagGroups lists the groups in the order --help prints them.
var flagGroups = []string{groupMember, groupClustering, groupSecurity, groupAuth, groupProfiling,
	groupLogging, groupProxy, groupExperimental, groupUnsafe, groupDeprecated}

// flagDef is one flag of etcd 3.4 and what etcdlite does with it.
type flagDef struct {
	Name    string             // without dashes
	Group   string             // as etcd --help groups it
	Def     string             // default value, parsed into the field before anything else ("" : none)
	Help    string             // one line for --help
	Use     flagUse            // what etcdlite does with it
	To      func(*config) any  // the config field it sets (a pointer); nil for an ignored flag
	Kind    flagKind           // how an ignored flag's value is checked
	Choices []string           // the values it takes, when it takes only some
	Check   func(string) error // a further check of the value, when etcdlite needs one
	YAML    string             // its key in --config-file: "" is Name, "-" is none; nested keys joined by "."
	Note    string             // for an ignored flag why; else what etcdlite does differently, if anything
	ShowDef string             // the default --help shows, when not Def
	Hidden  bool               // accepted by etcd 3.4.23 but not in its --help
}

// etcdFlags is every flag etcd 3.4.23 accepts (besides --config-file,
// --version and --help, which the parser handles itself). A flag is one
// line: its To returns the config field it sets (a *string, *bool, *uint,
// *uint64, *[]string for comma-separated lists, *[]*url.URL or the
// initial-cluster map), and that field's type decides how the value is
// parsed, from the command line, ETCD_* and the config file alike.
var etcdFlags = []flagDef{
	// Member
	{Name: "name", Group: groupMember, Def: "default", Help: "Human-readable name for this member.", To: func(c *config) any { return &c.Name }},
	{Name: "data-dir", Group: groupMember, ShowDef: "${name}.etcd", Help: "Path to the data directory.", To: func(c *config) any { return &c.DataDir }},
	{Name: "wal-dir", Group: groupMember, Help: "Path to a dedicated directory for the write-ahead log (for example on another disk).", To: func(c *config) any { return &c.WALDir }},
	{Name: "snapshot-count", Group: groupMember, Def: "100000", Help: "Committed entries between two snapshots (0: the default).", To: func(c *config) any { return &c.SnapshotCount }},
	{Name: "heartbeat-interval", Group: groupMember, Def: "100", Help: "Time (in milliseconds) of a heartbeat interval.", To: func(c *config) any { return &c.HeartbeatMs }},
	{Name: "election-timeout", Group: groupMember, Def: "1000", Help: "Time (in milliseconds) for an election to time out.", To: func(c *config) any { return &c.ElectionMs }},
	{Name: "initial-election-tick-advance", Group: groupMember, Def: "true", Help: "Fast-forward the first election after boot.", Note: "a member alone in its cluster campaigns at once (false: after an election timeout); members of larger clusters are not fast-forwarded", To: func(c *config) any { return &c.InitialElectionTickAdvance }},
	{Name: "listen-peer-urls", Group: groupMember, Def: "http://localhost:2380", Help: "URLs to listen on for peer traffic.", To: func(c *config) any { return &c.ListenPeerURLs }},
	{Name: "listen-client-urls", Group: groupMember, Def: "http://localhost:2379", Help: "URLs to listen on for client traffic.", To: func(c *config) any { return &c.ListenClientURLs }},
	{Name: "max-snapshots", Group: groupMember, Def: "5", Help: "Snapshot files to keep (0: all).", To: func(c *config) any { return &c.MaxSnapshots }},
	{Name: "max-wals", Group: groupMember, Def: "5", Help: "Write-ahead log files to keep (0: all).", To: func(c *config) any { return &c.MaxWALs }},
	{Name: "quota-backend-bytes", Group: groupMember, Def: "0", Kind: kindInt, Use: useV3Only, Help: "Size of the v3 backend that raises an alarm."},
	{Name: "backend-batch-interval", Group: groupMember, Kind: kindDuration, Use: useV3Only, Help: "Longest time before the v3 backend commits."},
	{Name: "backend-batch-limit", Group: groupMember, Def: "0", Kind: kindInt, Use: useV3Only, Help: "Most operations before the v3 backend commits."},
	{Name: "max-txn-ops", Group: groupMember, Def: "128", Kind: kindUint, Use: useV3Only, Help: "Most operations in one v3 transaction."},
	{Name: "max-request-bytes", Group: groupMember, Def: "1572864", Kind: kindUint, Use: useV3Only, Help: "Largest v3 (gRPC) request accepted."},
	{Name: "max-concurrent-streams", Group: groupMember, Def: "4294967295", ShowDef: "math.MaxUint32", Kind: kindUint, Use: useV3Only, Help: "Most concurrent gRPC streams per client."},
	{Name: "grpc-keepalive-min-time", Group: groupMember, Def: "5s", Kind: kindDuration, Use: useV3Only, Help: "Shortest interval a gRPC client may ping at."},
	{Name: "grpc-keepalive-interval", Group: groupMember, Def: "2h", Kind: kindDuration, Use: useV3Only, Help: "Interval of the server's gRPC pings (0: none)."},
	{Name: "grpc-keepalive-timeout", Group: groupMember, Def: "20s", Kind: kindDuration, Use: useV3Only, Help: "Wait for a gRPC ping's answer (0: none)."},
	{Name: "enable-grpc-gateway", Group: groupMember, Def: "true", Kind: kindBool, Use: useV3Only, Hidden: true, Help: "Serve v3 JSON requests through the gRPC gateway."},

	// Clustering
	{Name: "initial-advertise-peer-urls", Group: groupClustering, Def: "http://localhost:2380", Help: "This member's peer URLs, advertised to the rest of the cluster.", To: func(c *config) any { return &c.InitialAdvertisePeerURLs }},
	{Name: "initial-cluster", Group: groupClustering, ShowDef: "default=http://localhost:2380", Help: "The members to bootstrap with, name=peer-url,...", To: func(c *config) any { return &c.InitialCluster }},
	{Name: "initial-cluster-state", Group: groupClustering, Def: "new", Choices: []string{"new", "existing"}, Help: "Initial cluster state ('new' or 'existing').", To: func(c *config) any { return &c.InitialClusterState }},
	{Name: "initial-cluster-token", Group: groupClustering, Def: "etcd-cluster", Help: "Token of the cluster, mixed into its member and cluster ids.", To: func(c *config) any { return &c.InitialClusterToken }},
	{Name: "advertise-client-urls", Group: groupClustering, Def: "http://localhost:2379", Help: "This member's client URLs, advertised to clients.", To: func(c *config) any { return &c.AdvertiseClientURLs }},
	{Name: "discovery", Group: groupClustering, Help: "Discovery URL to bootstrap the cluster with.", To: func(c *config) any { return &c.Discovery }},
	{Name: "discovery-fallback", Group: groupClustering, Def: "proxy", Choices: []string{"exit", "proxy"}, Help: "What to do when discovery fails ('exit' or 'proxy').", To: func(c *config) any { return &c.DiscoveryFallback }},
	{Name: "discovery-proxy", Group: groupClustering, Help: "HTTP proxy for the discovery service.", To: func(c *config) any { return &c.DiscoveryProxy }},
	{Name: "discovery-srv", Group: groupClustering, Help: "DNS SRV domain to bootstrap the cluster with.", To: func(c *config) any { return &c.DiscoverySRV }},
	{Name: "discovery-srv-name", Group: groupClustering, Help: "Suffix of the DNS SRV name queried.", To: func(c *config) any { return &c.DiscoverySRVName }},
	{Name: "strict-reconfig-check", Group: groupClustering, Def: "true", Help: "Refuse membership changes that would lose the quorum.", To: func(c *config) any { return &c.StrictReconfigCheck }},
	{Name: "pre-vote", Group: groupClustering, Def: "true", Help: "Run raft's pre-vote phase before an election.", Note: "on by default in etcdlite (etcd's default is off)", To: func(c *config) any { return &c.PreVote }},
	{Name: "auto-compaction-retention", Group: groupClustering, Def: "0", Use: useV3Only, Help: "Retention of the v3 auto compaction (0: none)."},
	{Name: "auto-compaction-mode", Group: groupClustering, Def: "periodic", Choices: []string{"periodic", "revision"}, Use: useV3Only, Help: "How the v3 auto compaction retention is read."},
	{Name: "enable-v2", Group: groupClustering, Def: "true", Kind: kindBool, Check: checkEnableV2, Help: "Serve the v2 API: always, etcdlite serves only v2.", Note: "--enable-v2=false is refused: etcdlite serves only the v2 API"},

	// Security
	{Name: "cert-file", Group: groupSecurity, YAML: "client-transport-security.cert-file", Help: "Client server TLS certificate file.", To: func(c *config) any { return &c.ClientTLS.CertFile }},
	{Name: "key-file", Group: groupSecurity, YAML: "client-transport-security.key-file", Help: "Client server TLS key file.", To: func(c *config) any { return &c.ClientTLS.KeyFile }},
	{Name: "client-cert-auth", Group: groupSecurity, Def: "false", YAML: "client-transport-security.client-cert-auth", Help: "Require client certificates.", To: func(c *config) any { return &c.ClientTLS.ClientCertAuth }},
	{Name: "client-crl-file", Group: groupSecurity, YAML: "-", Help: "Client certificate revocation list file.", To: func(c *config) any { return &c.ClientTLS.CRLFile }},
	{Name: "client-cert-allowed-hostname", Group: groupSecurity, YAML: "-", Help: "Hostname a client certificate must carry.", To: func(c *config) any { return &c.ClientTLS.AllowedHostname }},
	{Name: "trusted-ca-file", Group: groupSecurity, YAML: "client-transport-security.trusted-ca-file", Help: "CA file for client certificates.", To: func(c *config) any { return &c.ClientTLS.TrustedCAFile }},
	{Name: "auto-tls", Group: groupSecurity, Def: "false", YAML: "client-transport-security.auto-tls", Help: "Client TLS with generated certificates.", To: func(c *config) any { return &c.ClientTLS.AutoTLS }},
	{Name: "peer-cert-file", Group: groupSecurity, YAML: "peer-transport-security.cert-file", Help: "Peer server TLS certificate file.", To: func(c *config) any { return &c.PeerTLS.CertFile }},
	{Name: "peer-key-file", Group: groupSecurity, YAML: "peer-transport-security.key-file", Help: "Peer server TLS key file.", To: func(c *config) any { return &c.PeerTLS.KeyFile }},
	{Name: "peer-client-cert-auth", Group: groupSecurity, Def: "false", YAML: "peer-transport-security.client-cert-auth", Help: "Require peer client certificates.", To: func(c *config) any { return &c.PeerTLS.ClientCertAuth }},
	{Name: "peer-trusted-ca-file", Group: groupSecurity, YAML: "peer-transport-security.trusted-ca-file", Help: "CA file for peer certificates.", To: func(c *config) any { return &c.PeerTLS.TrustedCAFile }},
	{Name: "peer-cert-allowed-cn", Group: groupSecurity, YAML: "-", Help: "CN a peer's client certificate must carry.", To: func(c *config) any { return &c.PeerTLS.AllowedCN }},
	{Name: "peer-cert-allowed-hostname", Group: groupSecurity, YAML: "-", Help: "Hostname a peer certificate must carry.", To: func(c *config) any { return &c.PeerTLS.AllowedHostname }},
	{Name: "peer-auto-tls", Group: groupSecurity, Def: "false", YAML: "peer-transport-security.auto-tls", Help: "Peer TLS with generated certificates.", To: func(c *config) any { return &c.PeerTLS.AutoTLS }},
	{Name: "peer-crl-file", Group: groupSecurity, YAML: "-", Help: "Peer certificate revocation list file.", To: func(c *config) any { return &c.PeerTLS.CRLFile }},
	{Name: "cipher-suites", Group: groupSecurity, Help: "TLS cipher suites, comma-separated (empty: Go's).", To: func(c *config) any { return &c.CipherSuites }},
	{Name: "cors", Group: groupSecurity, Def: "*", Help: "Origins allowed by CORS, comma-separated (empty or *: all).", To: func(c *config) any { return corsFlag{&c.CORS} }},
	{Name: "host-whitelist", Group: groupSecurity, Def: "*", Help: "Host headers accepted when not serving TLS, comma-separated (empty or *: all).", To: func(c *config) any { return hostsFlag{&c.HostWhitelist} }},

	// Auth
	{Name: "auth-token", Group: groupAuth, Def: "simple", Use: useV3Only, Help: "Type of v3 auth tokens and their options."},
	{Name: "bcrypt-cost", Group: groupAuth, Def: "10", Kind: kindUint, Use: useV3Only, Help: "bcrypt cost of v3 auth passwords."},
	{Name: "auth-token-ttl", Group: groupAuth, Def: "300", Kind: kindUint, Use: useV3Only, Help: "Time (in seconds) a v3 auth token lives."},

	// Profiling and Monitoring
	{Name: "enable-pprof", Group: groupProfiling, Def: "false", Help: "Serve runtime profiles at the client URLs + /debug/pprof/.", To: func(c *config) any { return &c.EnablePprof }},
	{Name: "metrics", Group: groupProfiling, Def: "basic", Help: "Detail of the exported metrics ('basic' or 'extensive').", To: func(c *config) any { return &c.Metrics }},
	{Name: "listen-metrics-urls", Group: groupProfiling, Help: "URLs to serve the metrics and health endpoints on.", To: func(c *config) any { return &c.ListenMetricsURLs }},

	// Logging
	{Name: "logger", Group: groupLogging, Def: "capnslog", Choices: []string{"zap", "capnslog"}, Help: "'zap' logs JSON lines, 'capnslog' text lines.", To: func(c *config) any { return &c.Logger }},
	{Name: "log-outputs", Group: groupLogging, Def: "default", Help: "Where logs go, comma-separated: 'default' or 'stderr', 'stdout', file paths.", To: func(c *config) any { return &c.LogOutputs }},
	{Name: "log-level", Group: groupLogging, Def: "info", Choices: []string{"debug", "info", "warn", "error", "panic", "fatal"}, Help: "Log level: debug, info, warn, error, panic or fatal.", To: func(c *config) any { return &c.LogLevel }},

	// v2 Proxy
	{Name: "proxy", Group: groupProxy, Def: "off", Choices: []string{"off", "readonly", "on"}, Help: "Proxy mode ('off', 'readonly' or 'on').", To: func(c *config) any { return &c.Proxy }},
	{Name: "proxy-failure-wait", Group: groupProxy, Def: "5000", Help: "Time (in milliseconds) a failed endpoint is held failed.", To: func(c *config) any { return &c.ProxyFailureWaitMs }},
	{Name: "proxy-refresh-interval", Group: groupProxy, Def: "30000", Help: "Time (in milliseconds) between endpoint refreshes.", To: func(c *config) any { return &c.ProxyRefreshIntervalMs }},
	{Name: "proxy-dial-timeout", Group: groupProxy, Def: "1000", Help: "Time (in milliseconds) for a dial to time out.", To: func(c *config) any { return &c.ProxyDialTimeoutMs }},
	{Name: "proxy-write-timeout", Group: groupProxy, Def: "5000", Help: "Time (in milliseconds) for a write to time out.", To: func(c *config) any { return &c.ProxyWriteTimeoutMs }},
	{Name: "proxy-read-timeout", Group: groupProxy, Def: "0", Help: "Time (in milliseconds) for a read to time out (0: none).", To: func(c *config) any { return &c.ProxyReadTimeoutMs }},

	// Experimental feature
	{Name: "experimental-initial-corrupt-check", Group: groupExperimental, Def: "false", Kind: kindBool, Use: useV3Only, Help: "Check the v3 backend for corruption before serving."},
	{Name: "experimental-corrupt-check-time", Group: groupExperimental, Def: "0s", Kind: kindDuration, Use: useV3Only, Help: "Interval of the v3 backend's corruption checks."},
	{Name: "experimental-enable-v2v3", Group: groupExperimental, Use: useV3Only, Help: "Serve v2 requests from the v3 backend under this prefix.", Note: "etcdlite keeps the v2 store itself"},
	{Name: "experimental-backend-bbolt-freelist-type", Group: groupExperimental, Def: "array", Use: useV3Only, Help: "bbolt's freelist type (array or map)."},
	{Name: "experimental-enable-lease-checkpoint", Group: groupExperimental, Def: "false", Kind: kindBool, Use: useV3Only, Help: "Checkpoint the remaining TTL of v3 leases."},
	{Name: "experimental-enable-lease-checkpoint-persist", Group: groupExperimental, Def: "false", Kind: kindBool, Use: useV3Only, Hidden: true, Help: "Persist v3 lease checkpoints."},
	{Name: "experimental-compaction-batch-limit", Group: groupExperimental, Def: "1000", Kind: kindInt, Use: useV3Only, Help: "Most revisions removed in one v3 compaction batch."},
	{Name: "experimental-peer-skip-client-san-verification", Group: groupExperimental, Def: "false", Kind: kindBool, Use: useIgnored, YAML: "-", Help: "Skip the SAN check of peers' client certificates.", Note: "the check is never skipped"},
	{Name: "experimental-watch-progress-notify-interval", Group: groupExperimental, Def: "10m", Kind: kindDuration, Use: useV3Only, Help: "Interval of v3 watch progress notifications."},
	{Name: "experimental-warning-apply-duration", Group: groupExperimental, Def: "100ms", Kind: kindDuration, Use: useV3Only, Help: "v3 applies slower than this are logged."},

	// Unsafe feature
	{Name: "force-new-cluster", Group: groupUnsafe, Def: "false", Help: "Start a new one-member cluster from this member's data.", To: func(c *config) any { return &c.ForceNewCluster }},
	{Name: "unsafe-no-fsync", Group: groupUnsafe, Def: "false", Kind: kindBool, Use: useIgnored, Hidden: true, Help: "Do not fsync the log (unsafe).", Note: "etcdlite always fsyncs its log before answering"},

	// TO BE DEPRECATED
	{Name: "debug", Group: groupDeprecated, Def: "false", Help: "Log at debug level (the same as --log-level=debug).", To: func(c *config) any { return &c.Debug }},
	{Name: "log-package-levels", Group: groupDeprecated, Use: useIgnored, Help: "Log level of each etcd package.", Note: "etcdlite has a single log level, set by the log-level flag"},
}

// errVersion asks main to print the version and exit.
var errVersion = errors.New("version asked")

// usageError is the help text, printed to stdout with exit status 0.
type usageError string

// Error returns the help text.
func (u usageError) Error() string { return string(u) }

// exitError is a failure to start with the process exit status etcd uses
// for it: 2 for a malformed command line, 1 for the rest.
type exitError struct {
	code int
	err  error
}

// Error returns the message.
func (e *exitError) Error() string { return e.err.Error() }

// Unwrap returns the failure.
func (e *exitError) Unwrap() error { return e.err }

// exitCode is the exit status for err: an exitError's, else 1.
func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return 1
}

// checkEnableV2 refuses --enable-v2=false.
func checkEnableV2(v string) error {
	if b, err := strconv.ParseBool(v); err == nil && !b {
		return errors.New("etcdlite serves only etcd's v2 API, so it cannot run with the v2 API disabled; drop --enable-v2=false (or set it to true)")
	}
	return nil
}

// envName is the ETCD_* variable of a flag: ETCD_ and the name in capitals
// with dashes as underscores.
func envName(flagName string) string {
	return "ETCD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// yamlKey is the config file key of d, or "" when the file has none.
func (d *flagDef) yamlKey() string {
	switch d.YAML {
	case "":
		return d.Name
	case "-":
		return ""
	}
	return d.YAML
}

// isBool says whether the flag is a boolean (given alone means true).
func (d *flagDef) isBool() bool {
	if d.To == nil {
		return d.Kind == kindBool
	}
	_, ok := d.To(&config{}).(*bool)
	return ok
}

// set parses v and stores it in the field of c the flag sets, or only
// checks it for an ignored flag.
func (d *flagDef) set(c *config, v string) error {
	if len(d.Choices) > 0 && !contains(d.Choices, v) {
		return fmt.Errorf("must be one of %s", strings.Join(d.Choices, ", "))
	}
	if d.Check != nil {
		if err := d.Check(v); err != nil {
			return err
		}
	}
	if d.To == nil {
		return checkKind(d.Kind, v)
	}
	switch p := d.To(c).(type) {
	case *string:
		*p = v
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("parse error")
		}
		*p = b
	case *uint:
		n, err := strconv.ParseUint(v, 0, strconv.IntSize)
		if err != nil {
			return errors.New("parse error")
		}
		*p = uint(n)
	case *uint64:
		n, err := strconv.ParseUint(v, 0, 64)
		if err != nil {
			return errors.New("parse error")
		}
		*p = n
	case *[]string:
		*p = splitList(v)
	case *[]*url.URL:
		if strings.TrimSpace(v) == "" {
			*p = nil
			return nil
		}
		urls, err := parseURLs(v)
		if err != nil {
			return err
		}
		*p = urls
	case *map[string][]*url.URL:
		ic, err := parseInitialCluster(v)
		if err != nil {
			return err
		}
		*p = ic
	case flag.Value: // a field with a parser of its own (--cors, --host-whitelist)
		return p.Set(v)
	default:
		return fmt.Errorf("flag --%s sets a field of type %T, which the parser does not know", d.Name, p)
	}
	return nil
}

// checkKind checks the value of a flag that sets no field.
func checkKind(k flagKind, v string) error {
	var err error
	switch k {
	case kindBool:
		_, err = strconv.ParseBool(v)
	case kindUint:
		_, err = strconv.ParseUint(v, 0, 64)
	case kindInt:
		_, err = strconv.ParseInt(v, 0, 64)
	case kindDuration:
		_, err = time.ParseDuration(v)
	}
	if err != nil {
		return errors.New("parse error")
	}
	return nil
}

// splitList splits a comma-separated list, trimming spaces and dropping
// empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// contains says whether v is in list.
func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// flagByName finds a flag of the table.
func flagByName(name string) *flagDef {
	for i := range etcdFlags {
		if etcdFlags[i].Name == name {
			return &etcdFlags[i]
		}
	}
	return nil
}

// defaultConfig is the configuration when nothing is given.
func defaultConfig() *config {
	c := &config{given: map[string]string{}}
	for i := range etcdFlags {
		d := &etcdFlags[i]
		if d.To != nil && d.Def != "" {
			if err := d.set(c, d.Def); err != nil {
				panic(fmt.Sprintf("default of --%s: %v", d.Name, err))
			}
		}
	}
	return c
}

// flagValue binds one flag of the table to a config for package flag.
type flagValue struct {
	d *flagDef
	c *config
}

// String implements flag.Value.
func (v flagValue) String() string { return "" }

// Set implements flag.Value.
func (v flagValue) Set(s string) error { return v.d.set(v.c, s) }

// IsBoolFlag tells package flag that a boolean flag may stand alone.
func (v flagValue) IsBoolFlag() bool { return v.d.isBool() }

// stringValue is a plain string flag that is not in the table.
type stringValue struct{ p *string }

// String implements flag.Value.
func (v stringValue) String() string { return "" }

// Set implements flag.Value.
func (v stringValue) Set(s string) error { *v.p = s; return nil }

// boolValue is a plain boolean flag that is not in the table.
type boolValue struct{ p *bool }

// String implements flag.Value.
func (v boolValue) String() string { return "" }

// Set implements flag.Value.
func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("parse error")
	}
	*v.p = b
	return nil
}

// IsBoolFlag tells package flag that the flag may stand alone.
func (v boolValue) IsBoolFlag() bool { return true }

// parseConfig reads the flags in args and then the ETCD_* variables of env
// or, when --config-file (or ETCD_CONFIG_FILE) names a file, that file
// instead of both, as etcd 3.4 does; then it checks the result as etcd
// does before it starts.
func parseConfig(args []string, env []string) (*config, error) {
	c, err := loadConfig(args, env, readConfigFile)
	if err != nil {
		return nil, err
	}
	if err := checkConfig(c); err != nil {
		return nil, &exitError{1, err}
	}
	return c, nil
}

// loadConfig reads the configuration from args, env and the config file
// (read with readFile), without the start-up checks.
func loadConfig(args []string, env []string, readFile func(string) ([]byte, error)) (*config, error) {
	c := defaultConfig()
	fs := flag.NewFlagSet("etcdlite", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var configFile string
	var version bool
	for i := range etcdFlags {
		fs.Var(flagValue{&etcdFlags[i], c}, etcdFlags[i].Name, etcdFlags[i].Help)
	}
	fs.Var(stringValue{&configFile}, "config-file", "")
	fs.Var(boolValue{&version}, "version", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, usageError(helpText())
		}
		return nil, &exitError{2, err}
	}
	if fs.NArg() > 0 {
		return nil, &exitError{1, fmt.Errorf("'%s' is not a valid flag", fs.Arg(0))}
	}
	if version {
		return nil, errVersion
	}
	fs.Visit(func(f *flag.Flag) { c.given[f.Name] = "--" + f.Name })
	envs := map[string]string{}
	var envKeys []string
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "ETCD_") {
			if _, dup := envs[k]; !dup {
				envKeys = append(envKeys, k)
			}
			envs[k] = v
		}
	}
	if configFile == "" {
		configFile = envs[envName("config-file")]
	}
	if configFile != "" {
		return loadConfigFile(configFile, readFile, c.given, envKeys)
	}

	for _, k := range envKeys {
		v := envs[k]
		d := flagForEnv(k)
		switch {
		case k == envName("config-file"):
		case k == envName("version") || k == envName("help"):
			c.notes = append(c.notes, logNote{warn: true, msg: "environment variable ignored", args: []any{"var", k}})
		case d == nil:
			c.notes = append(c.notes, logNote{warn: true, msg: "unrecognized environment variable", args: []any{"var", k + "=" + v}})
		case c.given[d.Name] != "":
			return nil, &exitError{1, fmt.Errorf("conflicting environment variable %q is shadowed by the command-line flag --%s: unset the variable or drop the flag", k, d.Name)}
		case v == "":
			// As etcd: an empty variable sets nothing, and says so.
			c.notes = append(c.notes, logNote{warn: true, msg: "unrecognized environment variable (empty, not used)", args: []any{"var", k + "="}})
		default:
			if err := d.set(c, v); err != nil {
				return nil, &exitError{1, fmt.Errorf("invalid value %q for %s: %w", v, k, err)}
			}
			c.given[d.Name] = k
			c.notes = append(c.notes, logNote{msg: "recognized and used environment variable", args: []any{"var", k + "=" + v}})
		}
	}
	finishConfig(c)
	return c, nil
}

// flagForEnv is the flag whose ETCD_* variable k is, or nil.
func flagForEnv(k string) *flagDef {
	for i := range etcdFlags {
		if envName(etcdFlags[i].Name) == k {
			return &etcdFlags[i]
		}
	}
	return nil
}

// finishConfig fills in the defaults that depend on other flags and lists
// the ignored flags that were given.
func finishConfig(c *config) {
	if c.Debug {
		c.LogLevel = "debug"
	}
	if c.DataDir == "" {
		c.DataDir = c.Name + ".etcd"
	}
	if c.SnapshotCount == 0 {
		c.SnapshotCount = 100000 // as etcd: 0 is the default
	}
	if c.InitialCluster == nil {
		c.InitialCluster = map[string][]*url.URL{c.Name: c.InitialAdvertisePeerURLs}
	}
	c.Ignored = nil
	for i := range etcdFlags {
		if d := &etcdFlags[i]; d.Use != useUsed && c.given[d.Name] != "" {
			c.Ignored = append(c.Ignored, d.Name)
		}
	}
}

// ignoredReason is why etcdlite ignores a flag, as the log says it.
func (d *flagDef) ignoredReason() string {
	if d.Use == useV3Only {
		if d.Note != "" {
			return "applies to the v3 API only (" + d.Note + ")"
		}
		return "applies to the v3 API only"
	}
	return d.Note
}

// checkConfig makes etcd's start-up checks, and refuses what this build
// cannot do yet.
func checkConfig(c *config) error {
	if c.Name == "" {
		return errors.New("--name must not be empty")
	}
	if c.HeartbeatMs == 0 {
		return fmt.Errorf("--heartbeat-interval must be greater than 0 (it is %d ms)", c.HeartbeatMs)
	}
	if c.ElectionMs < 5*c.HeartbeatMs {
		return fmt.Errorf("--election-timeout (%d ms) must be at least 5 times --heartbeat-interval (%d ms)", c.ElectionMs, c.HeartbeatMs)
	}
	if c.ElectionMs > 50000 {
		return fmt.Errorf("--election-timeout (%d ms) is too long: it must be at most 50000 ms", c.ElectionMs)
	}
	// As etcd: a listen address given on the command line or in the
	// environment must come with the address clients are to use, unless
	// this may run as a proxy. (From a config file the default stands.)
	listen, advertise := c.given["listen-client-urls"], c.given["advertise-client-urls"]
	mayProxy := c.Proxy != "off" || (c.Discovery != "" && c.DiscoveryFallback == "proxy")
	if c.ConfigFile == "" && listen != "" && advertise == "" && !mayProxy {
		return fmt.Errorf("--advertise-client-urls is required when --listen-client-urls is set explicitly (%s): "+
			"when listening on specific addresses, the member must advertise URLs its clients can reach", listen)
	}
	c.initialClusterSet = c.given["initial-cluster"] != ""
	if c.Proxy != "off" || c.Discovery != "" || c.DiscoverySRV != "" {
		// the cluster comes from elsewhere: --initial-cluster need not name this member
	} else if mine, ok := c.InitialCluster[c.Name]; !ok {
		return fmt.Errorf("--initial-cluster has no member named %q (--name)", c.Name)
	} else if !sameURLs(mine, c.InitialAdvertisePeerURLs) {
		return fmt.Errorf("--initial-cluster gives %s peer URLs %s but --initial-advertise-peer-urls says %s",
			c.Name, strings.Join(urlStrings(mine), ","), strings.Join(urlStrings(c.InitialAdvertisePeerURLs), ","))
	}
	for _, o := range c.LogOutputs {
		if o == "" {
			return errors.New("--log-outputs: an empty output")
		}
	}
	return nil
}

// helpText is --help: the flags grouped as etcd groups them, with what
// etcdlite does with each.
func helpText() string {
	var b strings.Builder
	b.WriteString(`Usage:

  etcdlite [flags]
    Start an etcdlite member. It takes etcd 3.4's flags and speaks etcd's v2 API.

  etcdlite --version
    Show the version of etcdlite.

  etcdlite -h | --help
    Show this help.

  etcdlite --config-file FILE
    Read the configuration from etcd's YAML configuration file; the other flags and
    the ETCD_* environment variables are then ignored.

Every flag is also read from its ETCD_* variable (--data-dir: ETCD_DATA_DIR); a flag
given both ways is an error.
`)
	for _, g := range flagGroups {
		fmt.Fprintf(&b, "\n%s:\n", g)
		for i := range etcdFlags {
			d := &etcdFlags[i]
			if d.Group != g {
				continue
			}
			def := d.Def
			if d.ShowDef != "" {
				def = d.ShowDef
			}
			fmt.Fprintf(&b, "  --%s '%s'\n    %s\n", d.Name, def, d.Help)
			switch {
			case d.Use != useUsed:
				fmt.Fprintf(&b, "    [ignored: %s]\n", d.ignoredReason())
			case d.Note != "":
				fmt.Fprintf(&b, "    [%s]\n", d.Note)
			}
		}
	}
	return b.String()
}

// givenFlags lists, sorted, where each given flag came from.
func givenFlags(given map[string]string) []string {
	out := make([]string, 0, len(given))
	for _, src := range given {
		out = append(out, src)
	}
	sort.Strings(out)
	return out
}
