// proxy.go owns proxy mode (--proxy on|readonly, and a member that found
// its discovery token full): the client API forwarded to the cluster's
// members, their list kept fresh from the peers, failed members skipped for
// a while, over TLS where the URLs are https (the client side's listener
// and certificate, the peer side's for the member list). A proxy keeps no
// raft state; it writes only proxy/cluster (the peer URLs it knows) in its
// data dir, as etcd's v2 proxy does.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// proxyEndpoint is one member's client URL and when it may be tried again
// after a failure.
type proxyEndpoint struct {
	url       *url.URL
	failedFor time.Time // unavailable until then
}

// proxy forwards client requests to the cluster's members.
type proxy struct {
	cfg         *config
	readonly    bool
	failureWait time.Duration
	transport   *http.Transport // to the members, with the proxy's timeouts
	peerClient  *http.Transport // to the peers, for the member list
	tls         *tlsSetup       // the client side serves the https listeners
	clusterFile string
	metrics     *proxyMetrics // etcd_proxy_* (proxymetrics.go)

	mu        sync.Mutex
	peerURLs  []string // peer URLs the member list is fetched from
	endpoints []*proxyEndpoint

	httpServers []*http.Server
	listeners   []net.Listener
	stopc       chan struct{}
	done        chan struct{}
	wg          sync.WaitGroup
	stopOnce    sync.Once
}

// proxyClusterFile is what proxy/cluster holds.
type proxyClusterFile struct {
	PeerURLs []string
}

// ms is a duration of n milliseconds.
func ms(n uint) time.Duration { return time.Duration(n) * time.Millisecond }

// startProxy starts a proxy in front of the cluster whose peers are, in
// etcd's order of precedence: those saved in proxy/cluster by an earlier
// run, the members found (a full discovery token), those --discovery
// finds, those --discovery-srv finds, those of --initial-cluster.
func startProxy(ctx context.Context, cfg *config, found map[string][]*url.URL) (*proxy, error) {
	p := &proxy{
		cfg:         cfg,
		readonly:    cfg.Proxy == "readonly",
		failureWait: ms(cfg.ProxyFailureWaitMs),
		clusterFile: filepath.Join(cfg.DataDir, "proxy", "cluster"),
		stopc:       make(chan struct{}),
		done:        make(chan struct{}),
		metrics:     newProxyMetrics(),
	}
	if err := p.setupTransports(); err != nil {
		return nil, err
	}
	slog.Warn("proxy: this proxy supports v2 API only!")
	if len(cfg.ListenMetricsURLs) > 0 {
		// etcd's proxy does not listen on them either
		slog.Warn("proxy: --listen-metrics-urls is not served in proxy mode; /metrics is on the client URLs", "urls", cfg.ListenMetricsURLs)
	}
	peers, err := p.initialPeers(ctx, found)
	if err != nil {
		return nil, err
	}
	slog.Info("proxy: using peer urls", "urls", peers)
	p.peerURLs = peers
	if err := os.MkdirAll(filepath.Dir(p.clusterFile), 0o700); err != nil {
		return nil, fmt.Errorf("proxy: create data dir: %w", err)
	}
	if err := p.saveClusterFile(peers); err != nil {
		return nil, err
	}
	if cfg.DiscoverySRV != "" {
		// clients' SRV records give endpoints to start with, should no
		// peer answer yet
		if urls, err := srvClientURLs(ctx, resolverOf(cfg), cfg.DiscoverySRV, cfg.DiscoverySRVName); err == nil {
			for _, u := range urls {
				p.endpoints = append(p.endpoints, &proxyEndpoint{url: u})
			}
		}
	}
	p.refresh()
	// the limits, CORS and host checks of a member's client handler
	// (http.go); limits.go's code needs only the configuration
	limits := &server{cfg: cfg}
	handler := hostGuard(newHostPolicy(cfg.HostWhitelist), limits.limitRequests(p.handler()))
	for _, u := range cfg.ListenClientURLs {
		ln, err := net.Listen("tcp", u.Host)
		if err != nil {
			for _, l := range p.listeners {
				l.Close()
			}
			return nil, fmt.Errorf("listen on client URL %s: %w", u, err)
		}
		if u.Scheme == "https" {
			ln = newTLSListener(ln, p.tls.client) // newTLSSetup made sure it is set
		}
		p.listeners = append(p.listeners, ln)
		srv := &http.Server{Addr: ln.Addr().String(), Handler: handler}
		limits.limitServer(srv)
		p.httpServers = append(p.httpServers, srv)
	}
	for i, srv := range p.httpServers {
		go func(srv *http.Server, ln net.Listener) {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				slog.Error("proxy: http server", "addr", srv.Addr, "err", err)
			}
		}(srv, p.listeners[i])
		slog.Info("v2 proxy started listening on client requests", "addr", srv.Addr, "readonly", p.readonly)
	}
	p.wg.Add(1)
	go p.refreshLoop()
	return p, nil
}

// initialPeers finds the peer URLs to ask for the member list.
func (p *proxy) initialPeers(ctx context.Context, found map[string][]*url.URL) ([]string, error) {
	if b, err := os.ReadFile(p.clusterFile); err == nil {
		var f proxyClusterFile
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("proxy: read %s: %w", p.clusterFile, err)
		}
		if len(f.PeerURLs) > 0 {
			slog.Info("proxy: peer urls from cluster file", "file", p.clusterFile)
			return f.PeerURLs, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("proxy: read %s: %w", p.clusterFile, err)
	}
	cluster := found
	switch {
	case cluster != nil:
	case p.cfg.Discovery != "":
		d, err := newDiscovery(p.cfg, 0)
		if err != nil {
			return nil, err
		}
		if cluster, err = d.getCluster(ctx); err != nil {
			return nil, fmt.Errorf("proxy: discovery: %w", err)
		}
	case p.cfg.DiscoverySRV != "":
		urls, err := srvPeerURLs(ctx, p.cfg)
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		return urlsToStrings(urls), nil
	default:
		cluster = p.cfg.InitialCluster
	}
	var out []string
	for _, urls := range cluster {
		out = append(out, urlsToStrings(urls)...)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, errors.New("proxy: no peer URLs: give --initial-cluster, --discovery or --discovery-srv")
	}
	return out, nil
}

// saveClusterFile writes proxy/cluster atomically.
func (p *proxy) saveClusterFile(peers []string) error {
	b, err := json.Marshal(proxyClusterFile{PeerURLs: peers})
	if err != nil {
		return fmt.Errorf("proxy: encode cluster file: %w", err)
	}
	tmp := p.clusterFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("proxy: write cluster file: %w", err)
	}
	if err := os.Rename(tmp, p.clusterFile); err != nil {
		return fmt.Errorf("proxy: write cluster file: %w", err)
	}
	return nil
}

// refreshLoop refreshes the member list every --proxy-refresh-interval,
// and every second while it has no member yet.
func (p *proxy) refreshLoop() {
	defer p.wg.Done()
	every := ms(p.cfg.ProxyRefreshIntervalMs)
	if every <= 0 {
		every = 30 * time.Second
	}
	for {
		// while no member has answered yet, ask again soon
		wait := every
		p.mu.Lock()
		if len(p.endpoints) == 0 && wait > time.Second {
			wait = time.Second
		}
		p.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-p.stopc:
			t.Stop()
			return
		case <-t.C:
			p.refresh()
		}
	}
}

// refresh asks the peers, first to answer wins, for the members and takes
// their client URLs (shuffled, so that proxies spread their clients) and
// peer URLs. When no peer answers, the list stays as it was.
func (p *proxy) refresh() {
	p.mu.Lock()
	peers := append([]string(nil), p.peerURLs...)
	p.mu.Unlock()
	client := &http.Client{Transport: p.peerClient, Timeout: 5 * time.Second}
	var members []memberView
	var lastErr error
	for _, peer := range peers {
		ms, err := fetchPeerMembers(client, peer)
		if err != nil {
			lastErr = err
			continue
		}
		members = ms
		break
	}
	if members == nil {
		slog.Warn("proxy: could not fetch the member list from any peer", "peers", peers, "err", lastErr)
		return
	}
	var clientURLs, peerURLs []string
	for _, m := range members {
		clientURLs = append(clientURLs, m.ClientURLs...)
		peerURLs = append(peerURLs, m.PeerURLs...)
	}
	sort.Strings(peerURLs)
	rand.Shuffle(len(clientURLs), func(i, j int) { clientURLs[i], clientURLs[j] = clientURLs[j], clientURLs[i] })
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(clientURLs) > 0 {
		old := map[string]*proxyEndpoint{}
		for _, e := range p.endpoints {
			old[e.url.String()] = e
		}
		var eps []*proxyEndpoint
		for _, s := range clientURLs {
			if e, ok := old[s]; ok {
				eps = append(eps, e) // keeps its failure time
				continue
			}
			u, err := url.Parse(s)
			if err != nil || u.Host == "" {
				continue
			}
			eps = append(eps, &proxyEndpoint{url: u})
		}
		if !slices.Equal(endpointStrings(p.endpoints), endpointStrings(eps)) {
			slog.Info("proxy: endpoints found", "endpoints", clientURLs)
		}
		p.endpoints = eps
	}
	if len(peerURLs) > 0 && !slices.Equal(peerURLs, sortedCopy(p.peerURLs)) {
		slog.Info("proxy: updated peer urls in cluster file", "from", p.peerURLs, "to", peerURLs)
		p.peerURLs = peerURLs
		if err := p.saveClusterFile(peerURLs); err != nil {
			slog.Error("proxy: save cluster file", "err", err)
		}
	}
}

// fetchPeerMembers reads GET <peer>/members.
func fetchPeerMembers(client *http.Client, peer string) ([]memberView, error) {
	resp, err := client.Get(peer + "/members")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s/members: %s", peer, resp.Status)
	}
	ms, err := decodePeerMembers(b)
	if err != nil {
		return nil, fmt.Errorf("%s/members: %w", peer, err)
	}
	return ms, nil
}

// endpointStrings is the endpoints' URLs, sorted.
func endpointStrings(eps []*proxyEndpoint) []string {
	out := make([]string, len(eps))
	for i, e := range eps {
		out[i] = e.url.String()
	}
	sort.Strings(out)
	return out
}

// sortedCopy is a sorted copy of s.
func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// available returns the endpoints not held back by a recent failure, and
// how many endpoints there are in all.
func (p *proxy) available() []*proxyEndpoint {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*proxyEndpoint
	for _, e := range p.endpoints {
		if !now.Before(e.failedFor) {
			out = append(out, e)
		}
	}
	return out
}

// failed holds e back for --proxy-failure-wait.
func (p *proxy) failed(e *proxyEndpoint, err error) {
	slog.Info("proxy: failed to direct request", "endpoint", e.url.String(), "err", err)
	p.mu.Lock()
	e.failedFor = time.Now().Add(p.failureWait)
	p.mu.Unlock()
	slog.Info("proxy: marked endpoint unavailable", "endpoint", e.url.String(), "for", p.failureWait)
}

// handler is the proxy's client API: its own /metrics (before CORS and
// the readonly check, as etcd's) and /v2/config/local/proxy, and
// everything else forwarded, with --cors's headers; a readonly proxy
// refuses all but GET before CORS, as etcd's does.
func (p *proxy) handler() http.Handler {
	h := cors(newCORSPolicy(p.cfg.CORS), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/config/local/proxy" {
			p.serveConfig(w, r)
			return
		}
		p.forward(w, r)
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" { // the proxy's own, as etcd's: no CORS, not refused
			p.handleMetrics(w, r)
			return
		}
		if p.readonly && r.Method != http.MethodGet {
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusNotImplemented)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// serveConfig answers GET /v2/config/local/proxy with the endpoints.
func (p *proxy) serveConfig(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	p.mu.Lock()
	eps := make([]string, 0, len(p.endpoints))
	for _, e := range p.endpoints {
		eps = append(eps, e.url.String())
	}
	p.mu.Unlock()
	b := mustJSONBytes(map[string][]string{"endpoints": eps})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(b)
}

// hopHeaders are the hop-by-hop headers a proxy must not pass on.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// proxyError answers with etcd's proxy error body.
func proxyError(w http.ResponseWriter, status int, msg string) {
	b := mustJSONBytes(map[string]string{"message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// maxProxyBody is the largest request body a proxy buffers for retries.
const maxProxyBody = 64 << 20

// forward sends r to the first endpoint that answers. A request that could
// not reach an endpoint (refused, timed out dialing) moves on to the next;
// one that may have reached it moves on only when repeating it is harmless
// (GET, HEAD), so a write is never applied twice behind the client's back.
func (p *proxy) forward(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	mi := p.metrics.received(r.Method)
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxProxyBody+1))
		if err != nil {
			proxyError(w, http.StatusBadRequest, "httpproxy: failed to read request body: "+err.Error())
			return
		}
		if len(b) > maxProxyBody {
			proxyError(w, http.StatusRequestEntityTooLarge, "httpproxy: request body too large")
			return
		}
		body = b
	}
	eps := p.available()
	if len(eps) == 0 {
		p.metrics.drop(mi, dropZeroEndpoints)
		proxyError(w, http.StatusServiceUnavailable, "httpproxy: zero endpoints currently available")
		return
	}
	repeatable := r.Method == http.MethodGet || r.Method == http.MethodHead
	for _, e := range eps {
		out, err := p.outRequest(r, e.url, body)
		if err != nil {
			proxyError(w, http.StatusInternalServerError, "httpproxy: "+err.Error())
			return
		}
		resp, err := p.transport.RoundTrip(out)
		if err != nil {
			if r.Context().Err() != nil {
				return // the client left
			}
			p.failed(e, err)
			p.metrics.drop(mi, dropFailedSending)
			if !repeatable && !isDialError(err) {
				p.metrics.drop(mi, dropFailedGettingResponse)
				proxyError(w, http.StatusBadGateway, "httpproxy: the request may have reached "+e.url.String()+" before it failed: "+err.Error())
				return
			}
			continue
		}
		p.metrics.handle(mi, resp.StatusCode, start)
		copyResponse(w, resp)
		return
	}
	p.metrics.drop(mi, dropFailedGettingResponse)
	slog.Info("proxy: unable to get response", "endpoints", len(eps))
	proxyError(w, http.StatusBadGateway, fmt.Sprintf("httpproxy: unable to get response from %d endpoint(s)", len(eps)))
}

// isDialError tells whether err happened before any byte of the request
// was sent: dialing, or the TLS handshake.
func isDialError(err error) bool {
	var op *net.OpError
	var hs *handshakeError
	return (errors.As(err, &op) && op.Op == "dial") || errors.As(err, &hs)
}

// handshakeError is a failed TLS handshake with a member or peer: no byte
// of a request was sent.
type handshakeError struct {
	addr string
	err  error
}

// Error says with whom the handshake failed.
func (e *handshakeError) Error() string { return "TLS handshake with " + e.addr + ": " + e.err.Error() }

// Unwrap returns the handshake's error.
func (e *handshakeError) Unwrap() error { return e.err }

// setupTransports makes the proxy's TLS and its transports, as etcd's
// proxy does: to the members with the client TLS (--cert-file and
// --key-file as the client certificate, --trusted-ca-file for theirs), or
// the peer TLS when no client certificate is given, and to the peers (for
// the member list) with the peer TLS. Unlike etcd, a --trusted-ca-file
// given without a certificate is still used to check the members'.
func (p *proxy) setupTransports() error {
	setup, err := newTLSSetup(p.cfg)
	if err != nil {
		return err
	}
	p.tls = setup
	dial, read, write := ms(p.cfg.ProxyDialTimeoutMs), ms(p.cfg.ProxyReadTimeoutMs), ms(p.cfg.ProxyWriteTimeoutMs)
	var members func(string) (*tls.Config, error)
	switch sec := p.cfg.ClientTLS; {
	case setup.client != nil: // https listeners: the side is read already
		members = setup.client.clientConfig
	case sec.hasCert():
		ciphers, _ := tlsCipherSuites(p.cfg.CipherSuites) // newTLSSetup checked them
		side := &tlsSide{name: "client", sec: sec, ciphers: ciphers, now: time.Now}
		if err := side.refresh(); err != nil {
			return fmt.Errorf("client TLS: %w", err)
		}
		members = side.clientConfig
	case setup.peer != nil:
		members = setup.peer.clientConfig
	case sec.TrustedCAFile != "":
		if _, err := loadCertPool(sec.TrustedCAFile); err != nil {
			return fmt.Errorf("client TLS: %w", err)
		}
		members = func(host string) (*tls.Config, error) {
			pool, err := loadCertPool(sec.TrustedCAFile)
			if err != nil {
				return nil, err
			}
			return &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host, RootCAs: pool, NextProtos: []string{"http/1.1"}}, nil
		}
	}
	p.transport = withTLS(newTimeoutTransport(dial, read, write), members)
	var peers func(string) (*tls.Config, error)
	if setup.peer != nil {
		peers = setup.peer.clientConfig
	}
	p.peerClient = withTLS(newTimeoutTransport(dial, read, write), peers)
	return nil
}

// withTLS makes tr reach https URLs with the configuration conf gives for
// each host, asked for every new connection so that rotated files are
// used; with a nil conf, tr keeps Go's (the system's roots, no client
// certificate).
func withTLS(tr *http.Transport, conf func(host string) (*tls.Config, error)) *http.Transport {
	if conf == nil {
		return tr
	}
	dial := tr.DialContext
	tr.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		tc, err := conf(host)
		if err != nil {
			return nil, &handshakeError{addr: addr, err: err}
		}
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		conn := tls.Client(c, tc)
		if err := conn.HandshakeContext(ctx); err != nil {
			_ = c.Close()
			return nil, &handshakeError{addr: addr, err: err}
		}
		return conn, nil
	}
	return tr
}

// outRequest is r addressed to the endpoint target.
func (p *proxy) outRequest(r *http.Request, target *url.URL, body []byte) (*http.Request, error) {
	u := *r.URL
	u.Scheme, u.Host = target.Scheme, target.Host
	var rd io.Reader
	if len(body) > 0 {
		rd = bytes.NewReader(body)
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	for k, v := range r.Header {
		out.Header[k] = v
	}
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := r.Header.Get("X-Forwarded-For"); prior != "" {
			host = prior + ", " + host
		}
		out.Header.Set("X-Forwarded-For", host)
	}
	out.ContentLength = int64(len(body))
	return out, nil
}

// copyResponse passes resp on, flushing as each piece of its body arrives
// so that long-poll and streaming watches reach the client at once.
func copyResponse(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	for k, v := range resp.Header {
		// the cross-origin headers are the proxy's own (--cors, set
		// before forwarding): a member's "*" must not widen them. etcd's
		// proxy sends both, which browsers refuse as duplicates.
		if strings.HasPrefix(k, "Access-Control-") {
			continue
		}
		w.Header()[k] = v
	}
	for _, h := range hopHeaders {
		w.Header().Del(h)
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil { // a watch's headers come before its events
		return
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return // the client left; closing resp.Body ends the upstream request
			}
			if ferr := rc.Flush(); ferr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				// the status is sent: cut the client's connection so that
				// it sees a broken answer, not a short one
				slog.Info("proxy: response from member ended early", "err", err)
				panic(http.ErrAbortHandler)
			}
			return
		}
	}
}

// newTimeoutTransport is the proxy's transport to the members: dials give
// up after dial, and every read or write on a connection after read or
// write (0: no limit; a read limit would cut long-poll watches).
func newTimeoutTransport(dial, read, write time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if read == 0 && write == 0 {
				return c, nil
			}
			return &timeoutConn{Conn: c, read: read, write: write}, nil
		},
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
	}
}

// timeoutConn sets a deadline before every read and write.
type timeoutConn struct {
	net.Conn
	read, write time.Duration
}

// Read reads with the read deadline.
func (c *timeoutConn) Read(b []byte) (int, error) {
	if c.read > 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.read)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(b)
}

// Write writes with the write deadline.
func (c *timeoutConn) Write(b []byte) (int, error) {
	if c.write > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(c.write)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(b)
}

// ClientAddrs are the addresses the proxy listens on.
func (p *proxy) ClientAddrs() []string {
	out := make([]string, len(p.listeners))
	for i, l := range p.listeners {
		out[i] = l.Addr().String()
	}
	return out
}

// Done is closed when the proxy stops by itself (it never does).
func (p *proxy) Done() <-chan struct{} { return p.done }

// Shutdown stops serving and refreshing.
func (p *proxy) Shutdown(ctx context.Context) error {
	p.stopOnce.Do(func() {
		close(p.stopc)
		// long-poll watches keep connections busy for as long as they
		// wait: give requests a second, then close what is left
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		for _, srv := range p.httpServers {
			if err := srv.Shutdown(sctx); err != nil {
				srv.Close()
			}
		}
		p.wg.Wait()
		p.transport.CloseIdleConnections()
		p.peerClient.CloseIdleConnections()
	})
	return nil
}
