// TLS for the client and peer listeners and the peer transport.

package main

// TLS for the client and the peer listeners and for the peer transport's
// connections, as etcd 3.4 sets it up from --cert-file, --peer-cert-file
// and their kin: certificates re-read when their files change, client
// certificates checked against the trusted CA, a CRL and an allowed CN or
// host name, self-signed certificates for --auto-tls, and one log line for
// every connection refused.
//
// What etcd 3.4 does, and etcdlite with it (testdata/tls/NOTES):
//   - a trusted CA file alone already demands client certificates;
//   - an https listen URL without a certificate stops start-up;
//   - an http URL while a certificate is given serves plain http, with a
//     warning;
//   - --auto-tls without a certificate makes a self-signed one (ECDSA
//     P-521, O=etcd, a year) in <data-dir>/fixtures/client (peer: .../peer)
//     and, as a client of such peers, does not verify theirs;
//   - TLS 1.2 or newer; a plain-text request on a TLS port is closed
//     without an answer.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// transportSecurity is the TLS configuration of one side, clients or
// peers, as the flags give it.
type transportSecurity struct {
	CertFile, KeyFile string
	ClientCertAuth    bool
	TrustedCAFile     string
	CRLFile           string
	AutoTLS           bool
	AllowedCN         string // peers only: the CN a peer's certificate must have
	AllowedHostname   string // peers only: a name a peer's certificate must be valid for
}

// hasCert tells whether a certificate and key are configured.
func (ts transportSecurity) hasCert() bool { return ts.CertFile != "" || ts.KeyFile != "" }

// tlsCipherSuites maps cipher suite names to ids, refusing unknown names
// with etcd's message.
func tlsCipherSuites(names []string) ([]uint16, error) {
	if len(names) == 0 {
		return nil, nil
	}
	known := map[string]uint16{}
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		known[cs.Name] = cs.ID
	}
	out := make([]uint16, 0, len(names))
	for _, n := range names {
		id, ok := known[n]
		if !ok {
			return nil, fmt.Errorf("unexpected TLS cipher suite %q", n)
		}
		out = append(out, id)
	}
	return out, nil
}

// tlsSide is the live TLS state of one side: the files it reads, what it
// last read from them, and the configurations it hands out.
type tlsSide struct {
	name       string // "client" or "peer", for logs
	sec        transportSecurity
	selfSigned bool // made by --auto-tls: as a client, do not verify the other end
	ciphers    []uint16
	now        func() time.Time

	mu      sync.Mutex
	cert    tlsFile[*tls.Certificate]
	pool    tlsFile[*x509.CertPool]
	revoked tlsFile[map[string]bool] // serial numbers (hex) the CRL revokes
}

// tlsFile is what was last read from a file (or a pair, for a key pair)
// and the modification times and sizes it was read at.
type tlsFile[T any] struct {
	val   T
	stamp string
	err   error // the last failure to read a changed file, logged once
}

// fileStamp identifies a version of each of paths by modification time and
// size: a new stamp means the files changed.
func fileStamp(paths ...string) (string, error) {
	var b strings.Builder
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return b.String(), nil
}

// reload re-reads f from paths with load when their stamp changed. A file
// that cannot be read leaves the last good value in place (and logs once);
// the first read's failure is returned.
func reload[T any](side *tlsSide, what string, f *tlsFile[T], load func() (T, error), paths ...string) error {
	stamp, err := fileStamp(paths...)
	if err == nil && stamp == f.stamp {
		return nil
	}
	var v T
	if err == nil {
		v, err = load()
	}
	if err != nil {
		if f.stamp == "" {
			return err
		}
		if f.err == nil || f.err.Error() != err.Error() {
			slog.Warn("TLS: cannot re-read file, keeping the last good one", "side", side.name, "what", what, "err", err)
		}
		f.err = err
		return nil
	}
	if f.stamp != "" {
		slog.Info("TLS: file changed, re-read", "side", side.name, "what", what, "files", paths)
	}
	f.val, f.stamp, f.err = v, stamp, nil
	return nil
}

// refresh re-reads whatever changed on disk. It is called for every
// handshake; an unchanged file costs a stat.
func (s *tlsSide) refresh() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := reload(s, "certificate", &s.cert, func() (*tls.Certificate, error) {
		c, err := tls.LoadX509KeyPair(s.sec.CertFile, s.sec.KeyFile)
		if err != nil {
			return nil, err
		}
		return &c, nil
	}, s.sec.CertFile, s.sec.KeyFile); err != nil {
		return err
	}
	if s.sec.TrustedCAFile != "" {
		if err := reload(s, "trusted CA", &s.pool, func() (*x509.CertPool, error) {
			return loadCertPool(s.sec.TrustedCAFile)
		}, s.sec.TrustedCAFile); err != nil {
			return err
		}
	}
	if s.sec.CRLFile != "" {
		if err := reload(s, "CRL", &s.revoked, func() (map[string]bool, error) {
			return loadCRL(s.sec.CRLFile)
		}, s.sec.CRLFile); err != nil {
			return err
		}
	}
	return nil
}

// errNoPEMCertificate is loadCertPool's error for a file that holds no
// PEM certificate.
var errNoPEMCertificate = errors.New("no PEM certificate found")

// loadCertPool reads the PEM certificates of file into a pool.
func loadCertPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: %w", file, errNoPEMCertificate)
	}
	return pool, nil
}

// loadCRL reads a CRL, PEM or DER, and returns the serial numbers it revokes.
func loadCRL(file string) (map[string]bool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if b, _ := pem.Decode(data); b != nil {
		data = b.Bytes
	}
	crl, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, fmt.Errorf("parse CRL %s: %w", file, err)
	}
	out := map[string]bool{}
	for _, e := range crl.RevokedCertificateEntries {
		out[e.SerialNumber.Text(16)] = true
	}
	return out, nil
}

// state returns what the side last read.
func (s *tlsSide) state() (*tls.Certificate, *x509.CertPool, map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cert.val, s.pool.val, s.revoked.val
}

// requireClientCert tells whether the listener demands a certificate of
// every client: --client-cert-auth, or a trusted CA file alone, as in etcd.
func (s *tlsSide) requireClientCert() bool {
	return !s.selfSigned && (s.sec.ClientCertAuth || s.sec.TrustedCAFile != "")
}

// tlsRefusal is why a client's certificate was refused, and whose it was.
type tlsRefusal struct {
	cn     string
	reason string
}

// Error implements error.
func (r *tlsRefusal) Error() string { return r.reason }

// checkClient is the part of a client certificate's check that crypto/tls
// does not do: the CRL over the verified chains, the allowed CN and host
// name of the leaf. The chain itself (signed by the trusted CA, or the
// system's when none is given, for client use, valid now) crypto/tls has
// verified, so that r.TLS.VerifiedChains holds it.
func (s *tlsSide) checkClient(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return &tlsRefusal{reason: "no client certificate"}
	}
	leaf := cs.PeerCertificates[0]
	cn := leaf.Subject.CommonName
	_, _, revoked := s.state()
	for _, chain := range cs.VerifiedChains {
		for _, c := range chain {
			if revoked[c.SerialNumber.Text(16)] {
				return &tlsRefusal{cn: cn, reason: fmt.Sprintf("certificate with serial %s is revoked by %s", c.SerialNumber.Text(16), s.sec.CRLFile)}
			}
		}
	}
	if s.sec.AllowedCN != "" && cn != s.sec.AllowedCN {
		return &tlsRefusal{cn: cn, reason: fmt.Sprintf("CommonName %q is not the allowed %q", cn, s.sec.AllowedCN)}
	}
	if s.sec.AllowedHostname != "" {
		if err := leaf.VerifyHostname(s.sec.AllowedHostname); err != nil {
			return &tlsRefusal{cn: cn, reason: fmt.Sprintf("certificate not valid for the allowed host name: %v", err)}
		}
	}
	return nil
}

// refusedCN is the CN of the client certificate a handshake error refused,
// or "" when there was none.
func refusedCN(err error) string {
	var ref *tlsRefusal
	if errors.As(err, &ref) {
		return ref.cn
	}
	var ve *tls.CertificateVerificationError
	if errors.As(err, &ve) && len(ve.UnverifiedCertificates) > 0 {
		return ve.UnverifiedCertificates[0].Subject.CommonName
	}
	return ""
}

// serverConfig is the configuration of the side's listeners: the current
// certificate and CA, read again when their files changed, for every
// handshake.
func (s *tlsSide) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			if err := s.refresh(); err != nil {
				return nil, err
			}
			cert, pool, _ := s.state()
			c := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				CipherSuites: s.ciphers,
				Certificates: []tls.Certificate{*cert},
				NextProtos:   []string{"http/1.1"},
				Time:         s.now,
			}
			if s.requireClientCert() {
				c.ClientAuth = tls.RequireAndVerifyClientCert
				c.ClientCAs = pool // nil: the system's
				c.VerifyConnection = s.checkClient
			}
			return c, nil
		},
	}
}

// clientConfig is the configuration of a connection to a peer at host:
// this side's certificate as the client certificate, the side's trusted
// CA (the system's when none) for the peer's certificate.
func (s *tlsSide) clientConfig(host string) (*tls.Config, error) {
	if err := s.refresh(); err != nil {
		return nil, err
	}
	cert, pool, _ := s.state()
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		CipherSuites:       s.ciphers,
		ServerName:         host,
		RootCAs:            pool,
		InsecureSkipVerify: s.selfSigned, // as etcd does for --peer-auto-tls
		Certificates:       []tls.Certificate{*cert},
		NextProtos:         []string{"http/1.1"},
		// A stream carries batches: full-sized records from the start.
		DynamicRecordSizingDisabled: true,
	}, nil
}

// tlsSetup is the TLS state of a member: each side's, nil when the side
// has no certificate.
type tlsSetup struct {
	client, peer *tlsSide
}

// newTLSSetup checks the TLS flags of cfg against its URLs as etcd does,
// makes the --auto-tls certificates, and reads every file once.
func newTLSSetup(cfg *config) (*tlsSetup, error) {
	ciphers, err := tlsCipherSuites(cfg.CipherSuites)
	if err != nil {
		return nil, err
	}
	now := time.Now // certificates are valid by the wall clock, never a test's
	out := &tlsSetup{}
	sides := []struct {
		name   string
		sec    transportSecurity
		listen []*url.URL
		dst    **tlsSide
	}{
		{"client", cfg.ClientTLS, cfg.ListenClientURLs, &out.client},
		{"peer", cfg.PeerTLS, cfg.ListenPeerURLs, &out.peer},
	}
	for _, sd := range sides {
		side := &tlsSide{name: sd.name, sec: sd.sec, ciphers: ciphers, now: now}
		if sd.sec.AutoTLS && sd.sec.hasCert() {
			slog.Warn("TLS: ignoring --auto-tls since certificates are given", "side", sd.name)
		} else if sd.sec.AutoTLS {
			dir := filepath.Join(cfg.DataDir, "fixtures", sd.name)
			certFile, keyFile, err := selfCert(dir, sd.listen, now())
			if err != nil {
				return nil, fmt.Errorf("--%sauto-tls: %w", peerPrefix(sd.name), err)
			}
			side.sec = transportSecurity{CertFile: certFile, KeyFile: keyFile}
			side.selfSigned = true
		}
		if side.sec.AllowedCN != "" && side.sec.AllowedHostname != "" {
			return nil, fmt.Errorf("AllowedCN and AllowedHostname are mutually exclusive (cn=%q, hostname=%q)", side.sec.AllowedCN, side.sec.AllowedHostname)
		}
		anyTLS := false
		for _, u := range sd.listen {
			anyTLS = anyTLS || u.Scheme == "https"
			switch {
			case u.Scheme == "https" && !side.sec.hasCert() && sd.name == "client":
				return nil, fmt.Errorf("TLS key/cert (--cert-file, --key-file) must be provided for client url %s with HTTPS scheme", u)
			case u.Scheme == "https" && !side.sec.hasCert():
				return nil, fmt.Errorf("cannot listen on TLS for %s: KeyFile and CertFile are not presented", u.Host)
			case u.Scheme == "http" && (side.sec.hasCert() || side.sec.ClientCertAuth) && !side.selfSigned:
				slog.Warn("TLS: the scheme of the URL is http while key/cert files or client cert auth are given; they are ignored for it", "side", sd.name, "url", u.String())
			}
		}
		// Clients: files beside http URLs only are ignored, as etcd does.
		// The peer certificate also serves for reaching https peers.
		if !side.sec.hasCert() || (sd.name == "client" && !anyTLS) {
			continue
		}
		if side.sec.CertFile == "" || side.sec.KeyFile == "" {
			return nil, fmt.Errorf("--%scert-file and --%skey-file must be given together", peerPrefix(sd.name), peerPrefix(sd.name))
		}
		if err := side.refresh(); err != nil {
			return nil, fmt.Errorf("%s TLS: %w", sd.name, err)
		}
		slog.Info("TLS", "side", sd.name, "cert", side.sec.CertFile, "key", side.sec.KeyFile, "trusted-ca", side.sec.TrustedCAFile,
			"client-cert-auth", side.requireClientCert(), "crl-file", side.sec.CRLFile, "auto-tls", side.selfSigned)
		*sd.dst = side
	}
	return out, nil
}

// peerPrefix is "peer-" for the peer side's flag names.
func peerPrefix(side string) string {
	if side == "peer" {
		return "peer-"
	}
	return ""
}

// selfCert makes (or reuses) the self-signed certificate of --auto-tls in
// dir, valid for the hosts of urls, and returns its files.
func selfCert(dir string, urls []*url.URL, now time.Time) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, err1 := os.Stat(certFile); err1 == nil {
		if _, err2 := os.Stat(keyFile); err2 == nil {
			return certFile, keyFile, nil
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("create %s: %w", dir, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return "", "", fmt.Errorf("generate serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"etcd"}},
		NotBefore:             now,
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	for _, u := range urls {
		h := u.Hostname()
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", fmt.Errorf("create certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("encode key: %w", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", fmt.Errorf("write %s: %w", keyFile, err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", fmt.Errorf("write %s: %w", certFile, err)
	}
	slog.Info("TLS: self-signed certificate made", "cert", certFile, "key", keyFile)
	return certFile, keyFile, nil
}

// tlsHandshakeTimeout bounds a TLS handshake on a listener.
const tlsHandshakeTimeout = 10 * time.Second

// tlsListener accepts TCP connections and completes their TLS handshakes
// itself, each in its own goroutine, so that a slow or refused client holds
// up nobody and every refusal is logged once, with who and why. Accept
// returns only connections whose handshake succeeded.
type tlsListener struct {
	net.Listener
	side   *tlsSide
	cfg    *tls.Config
	conns  chan net.Conn
	errc   chan error
	done   chan struct{}
	once   sync.Once
	ctx    context.Context // the handshakes', cancelled by Close
	cancel context.CancelFunc

	timeout time.Duration // a handshake's limit

	// handshakes counts the handshakes that succeeded: with clients that
	// keep their connections alive, one per client, not one per request.
	handshakes atomic.Int64
}

// newTLSListener serves side's TLS on ln.
func newTLSListener(ln net.Listener, side *tlsSide) *tlsListener {
	return newTLSListenerTimeout(ln, side, tlsHandshakeTimeout)
}

// newTLSListenerTimeout is newTLSListener with a handshake timeout of its
// own.
func newTLSListenerTimeout(ln net.Listener, side *tlsSide, timeout time.Duration) *tlsListener {
	l := &tlsListener{
		Listener: ln,
		side:     side,
		cfg:      side.serverConfig(),
		conns:    make(chan net.Conn),
		errc:     make(chan error, 1),
		done:     make(chan struct{}),
		timeout:  timeout,
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	go l.acceptLoop()
	return l
}

// acceptLoop accepts connections and starts their handshakes until the
// listener fails.
func (l *tlsListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			select {
			case l.errc <- err:
			case <-l.done:
			}
			return
		}
		go l.handshake(c)
	}
}

// handshake completes one connection's handshake and hands it to Accept,
// or logs why it was refused and closes it.
func (l *tlsListener) handshake(c net.Conn) {
	tc := tls.Server(c, l.cfg)
	ctx, cancel := context.WithTimeout(l.ctx, l.timeout)
	err := tc.HandshakeContext(ctx) // closes c if ctx ends first
	cancel()
	if err != nil {
		_ = c.Close()
		if l.ctx.Err() != nil {
			return // the listener closed
		}
		level := slog.LevelWarn
		if errors.Is(err, io.EOF) {
			level = slog.LevelInfo // gone before the handshake ended: nothing refused
		}
		slog.Log(context.Background(), level, "TLS: connection refused", "side", l.side.name, "remote", c.RemoteAddr().String(), "cn", refusedCN(err), "reason", err.Error())
		return
	}
	n := l.handshakes.Add(1)
	if slog.Default().Enabled(context.Background(), slog.LevelDebug) {
		st := tc.ConnectionState()
		slog.Debug("TLS: handshake done", "side", l.side.name, "remote", c.RemoteAddr().String(),
			"version", tls.VersionName(st.Version), "cipher", tls.CipherSuiteName(st.CipherSuite), "resumed", st.DidResume, "handshakes", n)
	}
	select {
	case l.conns <- tc:
	case <-l.done:
		_ = c.Close()
	}
}

// Accept returns the next connection whose handshake succeeded.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		l.errc <- err // every later Accept fails too
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections being handshaken are closed.
func (l *tlsListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.cancel()
	})
	return l.Listener.Close()
}
