// ctl_client.go owns the small HTTP client of `etcdlite ctl`: the
// endpoints (flags, ETCDCTL_* variables, DNS SRV discovery), TLS, basic
// auth, the sync with /v2/members, trying each endpoint in turn, per
// request header timeouts, --debug's cURL lines, and etcd's client errors.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// ctlClusterError is every endpoint's failure for one request.
type ctlClusterError struct{ errs []error }

// Error is etcd client's message for an unreachable cluster.
func (e *ctlClusterError) Error() string {
	var b strings.Builder
	b.WriteString("client: etcd cluster is unavailable or misconfigured")
	for i, err := range e.errs {
		fmt.Fprintf(&b, "; error #%d: %s\n", i, err)
	}
	return b.String()
}

// Detail lists the endpoints' errors one a line.
func (e *ctlClusterError) Detail() string {
	var b strings.Builder
	for i, err := range e.errs {
		fmt.Fprintf(&b, "error #%d: %s\n", i, err)
	}
	return b.String()
}

// ctlMessageError is an error answer of the members or auth API.
type ctlMessageError struct {
	Message string `json:"message"`
}

// Error returns the server's message.
func (e *ctlMessageError) Error() string { return e.Message }

// ctlRequest is one request to the v2 API.
type ctlRequest struct {
	method string
	path   string
	query  url.Values
	form   url.Values // sent as the urlencoded body when non-nil
	json   []byte     // sent as a JSON body when non-nil
}

// ctlClient sends requests to a cluster's endpoints.
type ctlClient struct {
	eps      []*url.URL
	pinned   int
	hc       *http.Client
	timeout  time.Duration
	debug    bool
	stderr   io.Writer
	user     string
	password string
	hasAuth  bool
}

// endpointsFrom returns the endpoints etcdctl would use: --endpoints,
// ETCDCTL_ENDPOINTS, --endpoint, ETCDCTL_ENDPOINT, --peers, ETCDCTL_PEERS,
// in that order, else the default.
func endpointsFrom(c *ctlContext) []string {
	s := ""
	for _, src := range []func() string{
		func() string { return c.GlobalString("endpoints") },
		func() string { return c.io.getenv("ETCDCTL_ENDPOINTS") },
		func() string { return c.GlobalString("endpoint") },
		func() string { return c.io.getenv("ETCDCTL_ENDPOINT") },
		func() string { return c.GlobalString("peers") },
		func() string { return c.io.getenv("ETCDCTL_PEERS") },
	} {
		if s = src(); s != "" {
			break
		}
	}
	if s == "" {
		s = "http://127.0.0.1:2379,http://127.0.0.1:4001"
	}
	eps := strings.Split(s, ",")
	for i := range eps {
		eps[i] = strings.TrimSpace(eps[i])
	}
	return eps
}

// discoverEndpoints looks up the client URLs of --discovery-srv's domain
// (or ETCDCTL_DISCOVERY_SRV's) in DNS, or returns nil when none is given.
func discoverEndpoints(c *ctlContext) ([]string, error) {
	domain := c.GlobalString("discovery-srv")
	if domain == "" {
		domain = c.io.getenv("ETCDCTL_DISCOVERY_SRV")
	}
	if domain == "" {
		return nil, nil
	}
	insecure := c.GlobalBool("insecure-discovery") || c.io.getenv("ETCDCTL_INSECURE_DISCOVERY") != ""
	suffix := ""
	if n := c.io.getenv("ETCDCTL_DISCOVERY_SRV_NAME"); n != "" {
		suffix = "-" + n
	}
	var eps []string
	lookup := func(service, scheme string) error {
		_, addrs, err := net.LookupSRV(service, "tcp", domain)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			eps = append(eps, fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(strings.TrimSuffix(a.Target, "."), fmt.Sprint(a.Port))))
		}
		return nil
	}
	errHTTPS := lookup("etcd-client-ssl"+suffix, "https")
	errHTTP := lookup("etcd-client"+suffix, "http")
	if errHTTPS != nil && errHTTP != nil {
		return nil, fmt.Errorf("dns lookup errors: %s and %s", errHTTPS, errHTTP)
	}
	if insecure {
		return eps, nil
	}
	var secure []string
	for _, ep := range eps {
		if strings.HasPrefix(ep, "http://") {
			fmt.Fprintf(c.stderr(), "ignoring discovered insecure endpoint %q\n", ep)
			continue
		}
		secure = append(secure, ep)
	}
	return secure, nil
}

// transportFrom builds the HTTP transport: dial timeout --timeout, and TLS
// from --ca-file, --cert-file, --key-file or their ETCDCTL_ variables.
func transportFrom(c *ctlContext) (*http.Transport, error) {
	file := func(flagName, env string) string {
		if v := c.GlobalString(flagName); v != "" {
			return v
		}
		return c.io.getenv(env)
	}
	ca, cert, key := file("ca-file", "ETCDCTL_CA_FILE"), file("cert-file", "ETCDCTL_CERT_FILE"), file("key-file", "ETCDCTL_KEY_FILE")
	dialer := &net.Dialer{Timeout: c.GlobalDuration("timeout"), KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	if ca == "" && cert == "" && key == "" {
		return tr, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if (cert == "") != (key == "") {
		return nil, fmt.Errorf("KeyFile and CertFile must both be present[key: %v, cert: %v]", key, cert)
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if ca != "" {
		pool, err := loadCertPool(ca) // tls.go
		switch {
		case errors.Is(err, errNoPEMCertificate):
			// as etcdctl: a CA file without a certificate trusts nothing,
			// and the request fails on the server's certificate (exit 4)
			pool = x509.NewCertPool()
		case err != nil:
			return nil, err
		}
		cfg.RootCAs = pool
	}
	tr.TLSClientConfig = cfg
	return tr, nil
}

// newClientNoSync builds the client from the global flags, without the
// sync (for cluster-health). It returns an exit status when it cannot.
func newClientNoSync(c *ctlContext) (*ctlClient, int) {
	cl, code := buildClient(c)
	if cl != nil && cl.debug {
		fmt.Fprintf(c.stderr(), "Cluster-Endpoints: %s\n", strings.Join(cl.endpoints(), ", "))
	}
	return cl, code
}

// buildClient builds the client from the global flags.
func buildClient(c *ctlContext) (*ctlClient, int) {
	fail := func(err error) (*ctlClient, int) {
		fmt.Fprintln(c.stderr(), err.Error())
		return nil, ctlExitBadArgs
	}
	eps, err := discoverEndpoints(c)
	if err != nil {
		return fail(err)
	}
	if len(eps) == 0 {
		eps = endpointsFrom(c)
	}
	for i, ep := range eps {
		u, err := url.Parse(ep)
		if err != nil {
			return fail(err)
		}
		if u.Scheme == "" {
			u.Scheme = "http"
		}
		eps[i] = u.String()
	}
	tr, err := transportFrom(c)
	if err != nil {
		return fail(err)
	}
	cl := &ctlClient{
		hc:      &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		timeout: c.GlobalDuration("timeout"),
		debug:   c.GlobalBool("debug"),
		stderr:  c.stderr(),
	}
	if err := cl.setEndpoints(eps); err != nil {
		return fail(err)
	}
	user := c.GlobalString("username")
	if user == "" {
		user = c.io.getenv("ETCDCTL_USERNAME")
	}
	if user != "" {
		name, pass, ok := strings.Cut(user, ":")
		if !ok {
			if pass, err = askPassword(c, "Password: "); err != nil {
				return nil, c.handleError(ctlExitBadArgs, err)
			}
		}
		cl.user, cl.password, cl.hasAuth = name, pass, true
	}
	return cl, 0
}

// newClient builds the client and, unless --no-sync, learns the cluster's
// client URLs from /v2/members.
func newClient(c *ctlContext) (*ctlClient, int) {
	cl, code := buildClient(c)
	if cl == nil {
		return nil, code
	}
	if !c.GlobalBool("no-sync") {
		if cl.debug {
			fmt.Fprintf(c.stderr(), "start to sync cluster using endpoints(%s)\n", strings.Join(cl.endpoints(), ","))
		}
		ctx, cancel := c.totalTimeout()
		err := cl.sync(ctx)
		cancel()
		if err != nil {
			if errors.Is(err, errCtlNoEndpoints) {
				fmt.Fprintf(c.stderr(), "etcd cluster has no published client endpoints.\n")
				fmt.Fprintf(c.stderr(), "Try '--no-sync' if you want to access non-published client endpoints(%s).\n", strings.Join(cl.endpoints(), ","))
				return nil, c.handleError(ctlExitServerError, err)
			}
			if isConnectionError(err) {
				return nil, c.handleError(ctlExitBadConnection, err)
			}
		}
		if cl.debug {
			fmt.Fprintf(c.stderr(), "got endpoints(%s) after sync\n", strings.Join(cl.endpoints(), ","))
		}
	}
	if cl.debug {
		fmt.Fprintf(c.stderr(), "Cluster-Endpoints: %s\n", strings.Join(cl.endpoints(), ", "))
	}
	return cl, 0
}

// errCtlNoEndpoints is a sync that found no client URL.
var errCtlNoEndpoints = errors.New("client: no endpoints available")

// isConnectionError reports whether err is a failure to reach the
// cluster: to dial or read, a refused connection, a timeout (a context's
// deadline included), or a cluster error made only of those.
func isConnectionError(err error) bool {
	var cerr *ctlClusterError
	if errors.As(err, &cerr) {
		for _, e := range cerr.errs {
			if !isConnectionError(e) {
				return false
			}
		}
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && (op.Op == "dial" || op.Op == "read") {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// askPassword prompts on stdout and reads a line from stdin with the
// terminal's echo off (through stty, which complains when stdin is not a
// terminal).
func askPassword(c *ctlContext, prompt string) (string, error) {
	fmt.Fprint(c.stdout(), prompt)
	stty := func(arg string) {
		cmd := exec.Command("stty", arg)
		if f, ok := c.io.stdin.(*os.File); ok {
			cmd.Stdin = f
		}
		cmd.Stderr = c.stderr()
		_ = cmd.Run() // a failure is stty's message on stderr, as with etcdctl
	}
	stty("-echo")
	var line []byte
	var err error
	buf := make([]byte, 1)
	for {
		n, rerr := c.io.stdin.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				break
			}
			line = append(line, buf[0])
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) {
				err = rerr
			}
			break
		}
	}
	stty("echo")
	fmt.Fprintln(c.stdout())
	return strings.TrimSuffix(string(line), "\r"), err
}

// setEndpoints parses eps and puts them in a random order.
func (cl *ctlClient) setEndpoints(eps []string) error {
	if len(eps) == 0 {
		return errCtlNoEndpoints
	}
	us := make([]*url.URL, len(eps))
	for i, e := range eps {
		u, err := url.Parse(e)
		if err != nil {
			return err
		}
		us[i] = u
	}
	rand.Shuffle(len(us), func(i, j int) { us[i], us[j] = us[j], us[i] })
	cl.eps, cl.pinned = us, 0
	return nil
}

// endpoints returns the endpoints as strings.
func (cl *ctlClient) endpoints() []string { return urlsToStrings(cl.eps) }

// sync replaces the endpoints by the client URLs of the cluster's members.
func (cl *ctlClient) sync(ctx context.Context) error {
	ms, err := cl.listMembers(ctx)
	if err != nil {
		return err
	}
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.ClientURLs...)
	}
	sort.Strings(eps)
	cur := cl.endpoints()
	sort.Strings(cur)
	if strings.Join(eps, "\x00") == strings.Join(cur, "\x00") && len(eps) > 0 {
		return nil
	}
	return cl.setEndpoints(eps)
}

// listMembers is GET /v2/members.
func (cl *ctlClient) listMembers(ctx context.Context) ([]memberView, error) {
	resp, body, err := cl.do(ctx, &ctlRequest{method: "GET", path: "/v2/members"})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("unexpected status code %d", resp.StatusCode)
	}
	var ms struct {
		Members []memberView `json:"members"`
	}
	if err := json.Unmarshal(body, &ms); err != nil {
		return nil, err
	}
	return ms.Members, nil
}

// httpRequest builds the request for endpoint ep, and its cURL line.
func (cl *ctlClient) httpRequest(ctx context.Context, ep *url.URL, r *ctlRequest) (*http.Request, string, error) {
	u := *ep
	p := u.Path + r.path
	clean := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	u.Path, u.RawPath = clean, ""
	if r.query != nil {
		u.RawQuery = r.query.Encode()
	}
	var body io.Reader
	var bodyText string
	hasBody := false
	ctype := ""
	switch {
	case r.form != nil:
		bodyText, hasBody, ctype = r.form.Encode(), true, "application/x-www-form-urlencoded"
	case r.json != nil:
		bodyText, hasBody, ctype = string(r.json), true, "application/json"
	}
	if hasBody {
		body = strings.NewReader(bodyText)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, "", err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	} else if r.method == "DELETE" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cl.hasAuth {
		req.SetBasicAuth(cl.user, cl.password)
	}
	curl := fmt.Sprintf("curl -X %s %s", r.method, u.String())
	if hasBody {
		curl += fmt.Sprintf(" -d %q", bodyText)
	}
	return req, curl, nil
}

// doOne sends r to one endpoint; the response's headers must come within
// the header timeout (except for watches).
func (cl *ctlClient) doOne(ctx context.Context, ep *url.URL, r *ctlRequest) (*http.Response, []byte, error) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, curl, err := cl.httpRequest(rctx, ep, r)
	if err != nil {
		return nil, nil, err
	}
	if cl.debug {
		fmt.Fprintf(cl.stderr, "cURL Command: %s\n", curl)
	}
	var timedOut atomic.Bool
	if cl.timeout > 0 {
		t := time.AfterFunc(cl.timeout, func() { timedOut.Store(true); cancel() })
		resp, err := cl.hc.Do(req)
		t.Stop()
		if err != nil {
			if timedOut.Load() && ctx.Err() == nil {
				return nil, nil, fmt.Errorf("client: endpoint %s exceeded header timeout", ep)
			}
			return nil, nil, unwrapURLError(ctx, err)
		}
		if timedOut.Load() { // the timer fired just as the headers came
			resp.Body.Close()
			return nil, nil, fmt.Errorf("client: endpoint %s exceeded header timeout", ep)
		}
		return readBody(ctx, resp)
	}
	resp, err := cl.hc.Do(req)
	if err != nil {
		return nil, nil, unwrapURLError(ctx, err)
	}
	return readBody(ctx, resp)
}

// readBody reads and closes resp's body.
func readBody(ctx context.Context, resp *http.Response) (*http.Response, []byte, error) {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, err
	}
	return resp, b, nil
}

// unwrapURLError returns the context's error when it ended, else the
// error under net/http's *url.Error, which etcd's client does not add.
func unwrapURLError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		return cve.Err // etcdctl's Go did not wrap these yet
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// do sends r to the pinned endpoint, then to each other one in turn while
// they fail to answer or answer that they have no leader.
func (cl *ctlClient) do(ctx context.Context, r *ctlRequest) (*http.Response, []byte, error) {
	cerr := &ctlClusterError{}
	n := len(cl.eps)
	for i := cl.pinned; i < cl.pinned+n; i++ {
		k := i % n
		ep := cl.eps[k]
		resp, body, err := cl.doOne(ctx, ep, r)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return nil, nil, err
			}
			cerr.errs = append(cerr.errs, err)
			continue
		}
		if resp.StatusCode/100 == 5 {
			switch resp.StatusCode {
			case http.StatusInternalServerError, http.StatusServiceUnavailable:
				cerr.errs = append(cerr.errs, fmt.Errorf("client: etcd member %s has no leader", ep))
			default:
				cerr.errs = append(cerr.errs, fmt.Errorf("client: etcd member %s returns server error [%s]", ep, http.StatusText(resp.StatusCode)))
			}
			continue
		}
		cl.pinned = k
		return resp, body, nil
	}
	return nil, nil, cerr
}
