// Command etcdlite is a small, durable, consistent key-value server that
// speaks etcd's v2 HTTP API and takes etcd's command-line flags.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Version is etcdlite's own version.
const Version = "0.1.0"

// etcdServerVersion and etcdClusterVersion are the etcd versions whose v2
// API etcdlite speaks; /version reports them so clients that check a
// server's version accept it.
const (
	etcdServerVersion  = "3.4.23"
	etcdClusterVersion = "3.4.0"
)

// config is everything the command line, the environment or the config
// file say (flags.go reads them).
type config struct {
	Name                     string
	DataDir                  string
	ListenClientURLs         []*url.URL
	AdvertiseClientURLs      []*url.URL
	ListenPeerURLs           []*url.URL
	InitialAdvertisePeerURLs []*url.URL
	InitialCluster           map[string][]*url.URL // name -> peer URLs
	InitialClusterState      string
	InitialClusterToken      string
	SnapshotCount            uint64
	HeartbeatMs              uint
	ElectionMs               uint
	MaxSnapshots             uint
	MaxWALs                  uint
	EnablePprof              bool
	StrictReconfigCheck      bool
	LogLevel                 string

	// Added with the command line of etcd 3.4 (flags.go).
	Debug                      bool   // --debug: the same as --log-level=debug
	PreVote                    bool   // raft's pre-vote (on by default in etcdlite)
	InitialElectionTickAdvance bool   // a lone member campaigns at once rather than after an election timeout
	WALDir                     string // the log's own directory ("": <data-dir>/member/wal)
	ClientTLS, PeerTLS         transportSecurity
	CipherSuites               []string
	CORS                       []string
	HostWhitelist              []string
	LogOutputs                 []string // "default", "stderr", "stdout" or file paths
	Logger                     string   // "zap" (JSON lines) or "capnslog" (text lines)
	ListenMetricsURLs          []*url.URL
	Metrics                    string // "basic" or "extensive"
	ForceNewCluster            bool
	Discovery                  string
	DiscoveryFallback          string
	DiscoveryProxy             string
	DiscoverySRV               string
	DiscoverySRVName           string
	Proxy                      string // "off", "on" or "readonly"
	ProxyFailureWaitMs         uint
	ProxyRefreshIntervalMs     uint
	ProxyDialTimeoutMs         uint
	ProxyWriteTimeoutMs        uint
	ProxyReadTimeoutMs         uint
	ConfigFile                 string   // the --config-file the rest was read from, if any
	Ignored                    []string // the flags given that etcdlite ignores (flags.go says why)

	given map[string]string // flag name -> where it was given ("--name", "ETCD_NAME", "file:line")
	notes []logNote         // what the parser has to say once logging is set up

	initialClusterSet bool      // --initial-cluster was given (not derived from --name)
	hooks             testHooks // tests only; the zero value is what a real start has
}

// testHooks are the settings only tests change, each zero in a real start.
type testHooks struct {
	resolver       *net.Resolver    // the resolver for --discovery-srv (nil: net's)
	discoveryRetry time.Duration    // first pause before retrying the discovery service (0: 1 s)
	clock          func() time.Time // the clock writes are stamped with
	catchUpEntries uint64           // entries kept after a snapshot (0: 5000)
	trimEvery      uint64           // applied entries between trims of raft's in-memory log (0: 10000)
	encodeHook     func(id uint64)  // runs (with the member's id) before the store is encoded for a snapshot
	headerTimeout  time.Duration    // how long a request's header may take (0: readHeaderTimeout)
	bodyTimeout    time.Duration    // how long a write's body may take (0: bodyReadTimeout)
	wal            walOptions       // how the log is opened: segment size, preallocation
}

// parseURLs parses a comma-separated list of http(s)://host:port URLs.
func parseURLs(v string) ([]*url.URL, error) {
	var out []*url.URL
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a URL: %w", s, err)
		}
		switch {
		case u.Scheme != "http" && u.Scheme != "https":
			return nil, fmt.Errorf("%q: URL scheme must be http or https", s)
		case u.Port() == "" || u.Hostname() == "":
			return nil, fmt.Errorf("%q: URL must be http(s)://host:port", s)
		case u.Path != "" && u.Path != "/":
			return nil, fmt.Errorf("%q: URL must not have a path", s)
		}
		u.Path = ""
		out = append(out, u)
	}
	if len(out) == 0 {
		return nil, errors.New("no URL given")
	}
	return out, nil
}

// parseInitialCluster parses name=url,name=url.
func parseInitialCluster(v string) (map[string][]*url.URL, error) {
	out := map[string][]*url.URL{}
	for _, kv := range strings.Split(v, ",") {
		name, raw, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%q is not name=url", kv)
		}
		urls, err := parseURLs(raw)
		if err != nil {
			return nil, err
		}
		out[name] = append(out[name], urls...)
	}
	return out, nil
}

// urlStrings is urlsToStrings sorted: the order-free form of a URL list
// for messages and comparisons.
func urlStrings(us []*url.URL) []string {
	out := urlsToStrings(us)
	sort.Strings(out)
	return out
}

// sameURLs reports whether a and b hold the same URLs in any order.
func sameURLs(a, b []*url.URL) bool {
	return sameURLStrings(urlsToStrings(a), urlsToStrings(b))
}

// sameURLStrings reports whether a and b hold the same strings in any
// order; neither is changed.
func sameURLStrings(a, b []string) bool {
	x, y := append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(x)
	sort.Strings(y)
	return slices.Equal(x, y)
}

// main runs etcdlite, or `ctl` when invoked as etcdctl, or a subcommand.
func main() {
	if args, ok := isCtlInvocation(os.Args); ok {
		os.Exit(ctlMain(args))
	}
	if len(os.Args) > 1 {
		switch os.Args[1] { // subcommands (backup.go, verify.go)
		case "backup":
			os.Exit(runBackup(os.Args[2:], os.Stdout, os.Stderr))
		case "verify":
			os.Exit(runVerify(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	cfg, err := parseConfig(os.Args[1:], os.Environ())
	var usage usageError
	switch {
	case errors.Is(err, errVersion):
		fmt.Printf("etcdlite Version: %s\nAPI Version: 2 (etcd %s)\nGo Version: %s\nGo OS/Arch: %s/%s\n",
			Version, etcdServerVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return
	case errors.As(err, &usage):
		fmt.Print(usage)
		return
	case err != nil:
		fmt.Fprintf(os.Stderr, "etcdlite: %v\n", err)
		os.Exit(exitCode(err))
	}
	logger, closeLog, err := newLogger(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcdlite: %v\n", err)
		os.Exit(1)
	}
	defer closeLog()
	slog.SetDefault(logger)
	logStartNotes(cfg)

	if os.Getenv("GOGC") == "" { // the operator's setting wins (gcpace.go)
		startGCPacer(gcHeapFloor)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv, err := startNode(ctx, cfg)
	if err != nil {
		slog.Error("cannot start", "err", err)
		if !contains(cfg.LogOutputs, "default") && !contains(cfg.LogOutputs, "stderr") {
			fmt.Fprintf(os.Stderr, "etcdlite: %v\n", err)
		}
		os.Exit(1)
	}
	if member, ok := srv.(*server); ok {
		go announceReady(member, cfg, os.Getenv("NOTIFY_SOCKET"))
	} else if err := sdNotify(os.Getenv("NOTIFY_SOCKET"), "READY=1"); err != nil { // a proxy serves once started
		slog.Warn("could not tell systemd the proxy is ready", "err", err)
	}
	select {
	case <-ctx.Done():
		slog.Info("shutting down", "signal", "received")
	case <-srv.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		fmt.Fprintf(os.Stderr, "etcdlite: %v\n", err)
		os.Exit(1)
	}
}
