// discovery.go owns bootstrapping through a discovery URL (etcd's discovery
// protocol, spoken to any etcd v2 keys API: etcd itself or etcdlite) and the
// start-up choice between running a member and running a proxy.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The discovery errors etcd reports, worded as etcd words them.
var (
	errFullCluster   = errors.New("discovery: cluster is full")
	errDuplicateID   = errors.New("discovery: found duplicate id")
	errDuplicateName = errors.New("discovery: found duplicate name")
	errBadSizeKey    = errors.New("discovery: size key is bad")
)

// node is what start-up returns: a member or a proxy, which main waits on
// and stops alike.
type node interface {
	Done() <-chan struct{}
	Shutdown(ctx context.Context) error
}

// startNode starts what cfg and the data dir call for: a proxy (--proxy,
// or a data dir that already holds a proxy's config), a member that finds
// its cluster through --discovery or --discovery-srv, or a member of the
// cluster --initial-cluster names. A member that finds its discovery token
// full becomes a proxy (--discovery-fallback proxy) or fails.
func startNode(ctx context.Context, cfg *config) (node, error) {
	if err := checkBootstrapFlags(cfg); err != nil {
		return nil, err
	}
	hasWAL := walExists(filepath.Join(cfg.DataDir, "member", "wal"))
	_, statErr := os.Stat(filepath.Join(cfg.DataDir, "proxy"))
	hasProxy := statErr == nil
	switch {
	case cfg.Proxy != "" && cfg.Proxy != "off" && hasWAL:
		slog.Warn("the server is already initialized as member before, starting as etcd member...", "data-dir", cfg.DataDir)
		return startServer(cfg)
	case cfg.Proxy != "" && cfg.Proxy != "off":
		return startProxy(ctx, cfg, nil)
	case hasProxy && !hasWAL:
		slog.Warn("the server is already initialized as proxy before, starting as etcd proxy...", "data-dir", cfg.DataDir)
		pc := *cfg
		pc.Proxy = "on"
		return startProxy(ctx, &pc, nil)
	case hasWAL:
		if cfg.Discovery != "" {
			slog.Warn("discovery token ignored since a cluster has already been initialized", "wal", cfg.DataDir)
		}
		return startServer(cfg)
	case cfg.Discovery != "" && cfg.InitialClusterState == "new":
		return startDiscovered(ctx, cfg)
	case cfg.DiscoverySRV != "" && cfg.InitialClusterState == "new":
		cluster, err := srvCluster(ctx, cfg)
		if err != nil {
			return nil, err
		}
		mc := *cfg
		mc.InitialCluster = cluster
		return startServer(&mc)
	}
	return startServer(cfg)
}

// checkBootstrapFlags refuses more than one way of finding the cluster, as
// etcd does.
func checkBootstrapFlags(cfg *config) error {
	n := 0
	for _, set := range []bool{cfg.initialClusterSet, cfg.Discovery != "", cfg.DiscoverySRV != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return errors.New(`error verifying flags, multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery" or "discovery-srv". See 'etcd --help'.`)
	}
	switch cfg.DiscoveryFallback {
	case "", "proxy", "exit":
	default:
		return fmt.Errorf("invalid value %q for --discovery-fallback: must be exit or proxy", cfg.DiscoveryFallback)
	}
	return nil
}

// startDiscovered registers this member under the discovery token, waits
// for the rest and starts the member with the cluster found, or a proxy
// when the token is full and the fallback allows it.
func startDiscovered(ctx context.Context, cfg *config) (node, error) {
	peers := urlsToStrings(cfg.InitialAdvertisePeerURLs)
	id := memberID(peers, cfg.Discovery, 0)
	d, err := newDiscovery(cfg, id)
	if err != nil {
		return nil, err
	}
	cluster, err := d.joinCluster(ctx, initialClusterString(cfg.Name, peers))
	if errors.Is(err, errFullCluster) && cfg.DiscoveryFallback != "exit" {
		slog.Warn("discovery cluster full, falling back to proxy")
		pc := *cfg
		pc.Proxy = "on"
		return startProxy(ctx, &pc, cluster)
	}
	if err != nil {
		slog.Error("failed to join discovery cluster", "err", err)
		slog.Info(fmt.Sprintf("discovery token %s was used, but failed to bootstrap the cluster.", cfg.Discovery))
		slog.Info("please generate a new discovery token and try to bootstrap again.")
		return nil, fmt.Errorf("failed to join discovery cluster (%w)", err)
	}
	mc := *cfg
	mc.InitialCluster = cluster
	mc.InitialClusterToken = cfg.Discovery // etcd derives the ids from the discovery URL
	return startServer(&mc)
}

// initialClusterString is name=url,name=url for one member's peer URLs, the
// value a member registers under the discovery token.
func initialClusterString(name string, peerURLs []string) string {
	parts := make([]string, len(peerURLs))
	for i, u := range peerURLs {
		parts[i] = name + "=" + u
	}
	return strings.Join(parts, ",")
}

// discovery talks to one discovery token: a directory of an etcd v2 keys
// API, e.g. http://host:2379/v2/keys/_etcd/registry/<token>.
type discovery struct {
	base      *url.URL     // the token directory
	dirKey    string       // its key in the keys API, e.g. /_etcd/registry/<token>
	client    *http.Client // through --discovery-proxy when given
	selfID    uint64       // 0 for a proxy, which only reads
	retryBase time.Duration
}

// discoveryNode is one node of a keys API answer.
type discoveryNode struct {
	Key          string          `json:"key"`
	Value        string          `json:"value"`
	Dir          bool            `json:"dir"`
	CreatedIndex uint64          `json:"createdIndex"`
	Nodes        []discoveryNode `json:"nodes"`
}

// keysAPIError is an error answer of the keys API; it prints as etcd's
// client prints it: code: message (cause) [index].
type keysAPIError struct {
	Code    int    `json:"errorCode"`
	Message string `json:"message"`
	Cause   string `json:"cause"`
	Index   uint64 `json:"index"`
}

// Error formats the error as etcd's v2 client does.
func (e *keysAPIError) Error() string {
	return fmt.Sprintf("%d: %s (%s) [%d]", e.Code, e.Message, e.Cause, e.Index)
}

// newDiscovery checks the discovery URL and --discovery-proxy and makes a
// client for them.
func newDiscovery(cfg *config, selfID uint64) (*discovery, error) {
	u, err := url.Parse(cfg.Discovery)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid discovery URL %q: must be http(s)://host[:port]/path", cfg.Discovery)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	dirKey := strings.TrimPrefix(u.Path, "/v2/keys")
	if dirKey == u.Path || dirKey == "" {
		// not a keys API path (a discovery service that maps its own
		// paths): the token directory is the URL itself
		dirKey = u.Path
	}
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 0, // watches wait as long as they must
		MaxIdleConnsPerHost:   2,
	}
	if tr.TLSClientConfig, err = discoveryTLS(cfg); err != nil {
		return nil, err
	}
	if cfg.DiscoveryProxy != "" {
		pu, err := url.Parse(cfg.DiscoveryProxy)
		if err != nil || pu.Host == "" {
			return nil, fmt.Errorf("invalid --discovery-proxy %q", cfg.DiscoveryProxy)
		}
		slog.Info("discovery: using proxy", "proxy", pu.String())
		tr.Proxy = http.ProxyURL(pu)
	}
	retry := cfg.hooks.discoveryRetry
	if retry == 0 {
		retry = time.Second
	}
	return &discovery{base: u, dirKey: dirKey, client: &http.Client{Transport: tr}, selfID: selfID, retryBase: retry}, nil
}

// discoveryTLS is the TLS configuration for an https discovery URL: the
// system's roots, as etcd's discovery client trusts, and besides them the
// CAs of --peer-trusted-ca-file and --trusted-ca-file (so that a token on
// a cluster of the operator's own CA works); the peer certificate, when
// given, is presented should the service ask for one. nil when no CA file
// is given: Go's defaults.
func discoveryTLS(cfg *config) (*tls.Config, error) {
	var cas []string
	for _, f := range []string{cfg.PeerTLS.TrustedCAFile, cfg.ClientTLS.TrustedCAFile} {
		if f != "" {
			cas = append(cas, f)
		}
	}
	if len(cas) == 0 && !cfg.PeerTLS.hasCert() {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(cas) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		for _, f := range cas {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("discovery: read trusted CA: %w", err)
			}
			if !pool.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("discovery: %s: no PEM certificate found", f)
			}
		}
		tc.RootCAs = pool
	}
	if cfg.PeerTLS.CertFile != "" && cfg.PeerTLS.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.PeerTLS.CertFile, cfg.PeerTLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("discovery: peer certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// request sends one keys API request for the token directory (sub is a
// key below it, "" for the directory) and decodes its node, retrying
// failures to reach the service with a growing pause until ctx ends. It
// returns the node, the X-Etcd-Index header and a keys API error as
// *keysAPIError.
func (d *discovery) request(ctx context.Context, method, sub string, q url.Values, form url.Values) (*discoveryNode, uint64, error) {
	u := *d.base
	if sub != "" {
		u.Path = d.base.Path + "/" + sub
	}
	u.RawQuery = q.Encode()
	for attempt := 0; ; attempt++ {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
		if err != nil {
			return nil, 0, fmt.Errorf("discovery: %w", err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		n, index, err := d.do(req)
		if err == nil || !isUnreachable(err) || ctx.Err() != nil {
			return n, index, err
		}
		wait := d.retryBase << min(attempt, 4)
		slog.Warn("discovery: error connecting, retrying", "url", d.base.String(), "attempt", attempt+1, "wait", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("discovery: %w", ctx.Err())
		case <-time.After(wait):
		}
	}
}

// unreachableError wraps a failure to get any answer from the service.
type unreachableError struct{ err error }

// Error says what failed.
func (e *unreachableError) Error() string { return "discovery: " + e.err.Error() }

// Unwrap returns the transport's error.
func (e *unreachableError) Unwrap() error { return e.err }

// isUnreachable reports whether err is (or wraps) an unreachableError.
func isUnreachable(err error) bool {
	var u *unreachableError
	return errors.As(err, &u)
}

// do sends req and decodes the answer.
func (d *discovery) do(req *http.Request) (*discoveryNode, uint64, error) {
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, 0, &unreachableError{err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, 0, &unreachableError{err}
	}
	index, _ := strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusInternalServerError {
		// a gateway or proxy in the way that could not reach the service
		return nil, index, &unreachableError{fmt.Errorf("%s answered %s", req.URL.Host, resp.Status)}
	}
	if resp.StatusCode >= 400 {
		var ke keysAPIError
		if json.Unmarshal(b, &ke) == nil && ke.Code != 0 {
			return nil, index, &ke
		}
		return nil, index, fmt.Errorf("discovery: %s %s: %s: %s", req.Method, req.URL, resp.Status, strings.TrimSpace(string(b)))
	}
	var out struct {
		Node discoveryNode `json:"node"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, index, fmt.Errorf("discovery: %s %s: bad answer: %w", req.Method, req.URL, err)
	}
	return &out.Node, index, nil
}

// size reads the expected cluster size, <token>/_config/size.
func (d *discovery) size(ctx context.Context) (int, error) {
	n, _, err := d.request(ctx, http.MethodGet, "_config/size", nil, nil)
	if err != nil {
		return 0, err
	}
	size, err := strconv.Atoi(n.Value)
	if err != nil || size <= 0 {
		return 0, errBadSizeKey
	}
	return size, nil
}

// registered lists the members registered under the token, oldest first,
// and the keys API's index at the time.
func (d *discovery) registered(ctx context.Context) ([]discoveryNode, uint64, error) {
	n, index, err := d.request(ctx, http.MethodGet, "", nil, nil)
	if err != nil {
		return nil, 0, err
	}
	var out []discoveryNode
	for _, c := range n.Nodes {
		if path.Base(c.Key) == "_config" || c.Dir {
			continue
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedIndex < out[j].CreatedIndex })
	return out, index, nil
}

// check reads the size and the members registered. When the token holds
// at least size members, the first size of them are the cluster, and a
// member (selfID set) not among them finds the cluster full.
func (d *discovery) check(ctx context.Context) (nodes []discoveryNode, size int, index uint64, err error) {
	if size, err = d.size(ctx); err != nil {
		return nil, 0, 0, err
	}
	if nodes, index, err = d.registered(ctx); err != nil {
		return nil, 0, 0, err
	}
	if len(nodes) < size {
		return nodes, size, index, nil
	}
	nodes = nodes[:size]
	if d.selfID != 0 {
		self := path.Join(d.dirKey, idString(d.selfID))
		for _, n := range nodes {
			if n.Key == self {
				return nodes, size, index, nil
			}
		}
		return nodes, size, index, errFullCluster
	}
	return nodes, size, index, nil
}

// register creates <token>/<member id> = value; it must not exist yet.
func (d *discovery) register(ctx context.Context, value string) error {
	_, _, err := d.request(ctx, http.MethodPut, idString(d.selfID), url.Values{"prevExist": {"false"}}, url.Values{"value": {value}})
	var ke *keysAPIError
	if errors.As(err, &ke) && ke.Code == 105 { // node exists
		return errDuplicateID
	}
	return err
}

// waitChange waits for any change under the token after index. An index
// the keys API's history no longer holds returns at once, for the caller
// to list again.
func (d *discovery) waitChange(ctx context.Context, index uint64) error {
	q := url.Values{"wait": {"true"}, "recursive": {"true"}, "waitIndex": {strconv.FormatUint(index+1, 10)}}
	_, _, err := d.request(ctx, http.MethodGet, "", q, nil)
	var ke *keysAPIError
	if errors.As(err, &ke) && ke.Code == 401 { // event index cleared
		return nil
	}
	return err
}

// waitFull waits until the token holds its size of members and returns
// the first size of them.
func (d *discovery) waitFull(ctx context.Context) ([]discoveryNode, error) {
	for {
		nodes, size, index, err := d.check(ctx)
		if err != nil {
			return nodes, err
		}
		if len(nodes) >= size {
			slog.Info("discovery: found all needed peers", "size", size)
			return nodes, nil
		}
		slog.Info("discovery: waiting for other members", "registered", len(nodes), "size", size)
		if err := d.waitChange(ctx, index); err != nil {
			return nil, err
		}
	}
}

// joinCluster registers this member (value is its name=url list) and
// waits for the rest. It returns the initial cluster; with errFullCluster
// it returns the members that fill the token, for a proxy.
func (d *discovery) joinCluster(ctx context.Context, value string) (map[string][]*url.URL, error) {
	// fail fast when the token is full already
	if nodes, _, _, err := d.check(ctx); err != nil {
		if errors.Is(err, errFullCluster) {
			cluster, cerr := nodesToCluster(nodes)
			if cerr != nil {
				return nil, cerr
			}
			return cluster, err
		}
		return nil, err
	}
	if err := d.register(ctx, value); err != nil {
		return nil, err
	}
	slog.Info("discovery: registered", "member", idString(d.selfID), "url", d.base.String())
	nodes, err := d.waitFull(ctx)
	if err != nil && !errors.Is(err, errFullCluster) {
		return nil, err
	}
	cluster, cerr := nodesToCluster(nodes)
	if cerr != nil {
		return nil, cerr
	}
	return cluster, err
}

// getCluster waits until the token is full and returns its members, for a
// proxy (which never registers).
func (d *discovery) getCluster(ctx context.Context) (map[string][]*url.URL, error) {
	nodes, err := d.waitFull(ctx)
	if err != nil {
		return nil, err
	}
	return nodesToCluster(nodes)
}

// nodesToCluster parses the registered values (name=url,name=url each)
// into an initial cluster; two members of one name are refused.
func nodesToCluster(nodes []discoveryNode) (map[string][]*url.URL, error) {
	out := map[string][]*url.URL{}
	for _, n := range nodes {
		m, err := parseInitialCluster(n.Value)
		if err != nil {
			return nil, fmt.Errorf("discovery: bad registration %s=%q: %w", n.Key, n.Value, err)
		}
		for name, urls := range m {
			if _, dup := out[name]; dup {
				return nil, errDuplicateName
			}
			out[name] = urls
		}
	}
	return out, nil
}
