// Command etcdlite is a small, durable, consistent key-value server that
// speaks etcd's v2 HTTP API and takes etcd's command-line flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"runtime"
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

// config is everything the command line and the environment say.
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

	clock          func() time.Time // tests only: the clock writes are stamped with
	catchUpEntries uint64           // tests only: entries kept after a snapshot (0: 5000)
	trimEvery      uint64           // tests only: applied entries between trims of raft's in-memory log (0: 10000)
	encodeHook     func(id uint64)  // tests only: runs (with the member's id) before the store is encoded for a snapshot
}

// urlsFlag is a comma-separated list of http URLs.
type urlsFlag struct {
	urls []*url.URL
	set  bool
}

// String implements flag.Value.
func (u *urlsFlag) String() string {
	s := make([]string, len(u.urls))
	for i, x := range u.urls {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}

// Set implements flag.Value: it parses a comma-separated list of URLs.
func (u *urlsFlag) Set(v string) error {
	urls, err := parseURLs(v)
	if err != nil {
		return err
	}
	u.urls, u.set = urls, true
	return nil
}

// parseURLs parses a comma-separated list of http://host:port URLs.
func parseURLs(v string) ([]*url.URL, error) {
	var out []*url.URL
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a URL: %w", s, err)
		}
		switch {
		case u.Scheme == "https" || u.Scheme == "unixs":
			return nil, fmt.Errorf("%q: TLS is not supported, use http", s)
		case u.Scheme != "http":
			return nil, fmt.Errorf("%q: URL scheme must be http", s)
		case u.Port() == "" || u.Hostname() == "":
			return nil, fmt.Errorf("%q: URL must be http://host:port", s)
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

// errVersion asks main to print the version and exit.
var errVersion = errors.New("version asked")

// parseConfig reads the flags in args, then ETCD_* variables from env for
// the flags not given.
func parseConfig(args []string, env []string) (*config, error) {
	fs := flag.NewFlagSet("etcdlite", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	c := &config{}
	var initialCluster, logger string
	var version, enableV2, debug bool
	listenClient := &urlsFlag{}
	advertiseClient := &urlsFlag{}
	listenPeer := &urlsFlag{}
	advertisePeer := &urlsFlag{}
	fs.StringVar(&c.Name, "name", "default", "human-readable name for this member")
	fs.StringVar(&c.DataDir, "data-dir", "", "path to the data directory (default ${name}.etcd)")
	fs.Var(listenClient, "listen-client-urls", "URLs to listen on for client traffic")
	fs.Var(advertiseClient, "advertise-client-urls", "client URLs to advertise to the rest of the cluster")
	fs.Var(listenPeer, "listen-peer-urls", "URLs to listen on for peer traffic")
	fs.Var(advertisePeer, "initial-advertise-peer-urls", "this member's peer URLs to advertise to the rest of the cluster")
	fs.StringVar(&initialCluster, "initial-cluster", "", "initial cluster configuration for bootstrapping, name=url,...")
	fs.StringVar(&c.InitialClusterState, "initial-cluster-state", "new", "initial cluster state: new or existing")
	fs.StringVar(&c.InitialClusterToken, "initial-cluster-token", "etcd-cluster", "initial cluster token for bootstrapping")
	fs.Uint64Var(&c.SnapshotCount, "snapshot-count", 100000, "number of committed entries that trigger a snapshot")
	fs.UintVar(&c.HeartbeatMs, "heartbeat-interval", 100, "time (in milliseconds) of a heartbeat interval")
	fs.UintVar(&c.ElectionMs, "election-timeout", 1000, "time (in milliseconds) for an election to timeout")
	fs.UintVar(&c.MaxSnapshots, "max-snapshots", 5, "maximum number of snapshot files to retain (0 is unlimited)")
	fs.UintVar(&c.MaxWALs, "max-wals", 5, "maximum number of WAL files to retain (0 is unlimited)")
	fs.BoolVar(&c.EnablePprof, "enable-pprof", false, "serve runtime profiling data at /debug/pprof/")
	fs.BoolVar(&c.StrictReconfigCheck, "strict-reconfig-check", true, "reject reconfiguration requests that would cause quorum loss")
	fs.BoolVar(&enableV2, "enable-v2", true, "accepted for compatibility: the v2 API is always on")
	fs.BoolVar(&version, "version", false, "print the version and exit")
	fs.StringVar(&logger, "logger", "zap", "accepted for compatibility")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&debug, "debug", false, "enable debug-level logging")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errUsage(fs)
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("'%s' is not a valid flag", fs.Arg(0))
	}
	if version {
		return nil, errVersion
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	envs := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "ETCD_") {
			envs[k] = v
		}
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		key := "ETCD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := envs[key]
		if !ok || given[f.Name] || envErr != nil {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = fmt.Errorf("invalid value %q for %s: %w", v, key, err)
		}
		given[f.Name] = true
	})
	if envErr != nil {
		return nil, envErr
	}
	if debug {
		c.LogLevel = "debug"
	}
	if c.Name == "" {
		return nil, errors.New("--name must not be empty")
	}
	if c.DataDir == "" {
		c.DataDir = c.Name + ".etcd"
	}
	defaults := func(f *urlsFlag, def string) []*url.URL {
		if f.set {
			return f.urls
		}
		u, _ := parseURLs(def)
		return u
	}
	c.ListenClientURLs = defaults(listenClient, "http://localhost:2379")
	c.AdvertiseClientURLs = defaults(advertiseClient, "http://localhost:2379")
	c.ListenPeerURLs = defaults(listenPeer, "http://localhost:2380")
	c.InitialAdvertisePeerURLs = defaults(advertisePeer, "http://localhost:2380")
	if initialCluster == "" {
		parts := make([]string, len(c.InitialAdvertisePeerURLs))
		for i, u := range c.InitialAdvertisePeerURLs {
			parts[i] = c.Name + "=" + u.String()
		}
		initialCluster = strings.Join(parts, ",")
	}
	var err error
	if c.InitialCluster, err = parseInitialCluster(initialCluster); err != nil {
		return nil, fmt.Errorf("invalid value for --initial-cluster: %w", err)
	}
	if c.InitialClusterState != "new" && c.InitialClusterState != "existing" {
		return nil, fmt.Errorf("invalid value %q for --initial-cluster-state: must be new or existing", c.InitialClusterState)
	}
	if mine, ok := c.InitialCluster[c.Name]; !ok {
		return nil, fmt.Errorf("--initial-cluster has no member named %q (--name)", c.Name)
	} else if !sameURLs(mine, c.InitialAdvertisePeerURLs) {
		return nil, fmt.Errorf("--initial-cluster gives %s peer URLs %s but --initial-advertise-peer-urls says %s",
			c.Name, urlStrings(mine), urlStrings(c.InitialAdvertisePeerURLs))
	}
	if c.HeartbeatMs == 0 || c.ElectionMs < 5*c.HeartbeatMs {
		return nil, fmt.Errorf("--election-timeout (%d ms) must be at least 5 times --heartbeat-interval (%d ms)", c.ElectionMs, c.HeartbeatMs)
	}
	if c.SnapshotCount == 0 {
		return nil, errors.New("--snapshot-count must be greater than 0")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return nil, fmt.Errorf("invalid value %q for --log-level", c.LogLevel)
	}
	return c, nil
}

func errUsage(fs *flag.FlagSet) error {
	var b strings.Builder
	b.WriteString("usage: etcdlite [flags]\n")
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return usageError(b.String())
}

// usageError is the help text, printed to stdout with exit status 0.
type usageError string

// Error returns the help text.
func (u usageError) Error() string { return string(u) }

func urlStrings(us []*url.URL) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.String()
	}
	sort.Strings(out)
	return out
}

func sameURLs(a, b []*url.URL) bool {
	x, y := urlStrings(a), urlStrings(b)
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

func main() {
	if args, ok := isCtlInvocation(os.Args); ok {
		os.Exit(ctlMain(args))
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
		os.Exit(2)
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv, err := startServer(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcdlite: %v\n", err)
		os.Exit(1)
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
