// proxy.go owns proxy mode (--proxy on|readonly, and a member that found
// its discovery token full): starting and stopping a proxy, and the client
// API forwarded to the cluster's members (the request copied out, the
// answer copied back, readonly refusals). Its list of members is
// proxy_members.go's, its transports (timeouts, TLS) proxy_transport.go's.
// A proxy keeps no raft state; it writes only proxy/cluster (the peer URLs
// it knows) in its data dir, as etcd's v2 proxy does.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
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
		srv := &http.Server{Addr: ln.Addr().String(), Handler: handler}
		ln = limits.limitServer(srv, ln)
		if u.Scheme == "https" {
			ln = newTLSListener(ln, p.tls.client) // newTLSSetup made sure it is set
		}
		p.listeners = append(p.listeners, ln)
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
