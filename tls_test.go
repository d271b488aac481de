// Tests of client and peer TLS.

package main

import (
	"bytes"
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
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// testPKI is a set of certificate files made for one test: a CA, an
// unrelated second CA, and leaf certificates signed by them.
type testPKI struct {
	t      testing.TB
	dir    string
	serial int64
	ca     *testCA
	other  *testCA
}

// testCA is a certificate authority of a testPKI.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // its certificate, PEM
}

// testLeaf names the files of a leaf certificate.
type testLeaf struct {
	cert, key string
	serial    *big.Int
}

// newTestPKI makes the two CAs in a temporary directory.
func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{t: t, dir: t.TempDir()}
	p.ca = p.newCA("test CA")
	p.other = p.newCA("unrelated CA")
	return p
}

// newKey makes an ECDSA P-256 key.
func (p *testPKI) newKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	return k
}

// write writes a PEM block to a new file named name and returns its path.
func (p *testPKI) write(name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// newCA makes a self-signed CA.
func (p *testPKI) newCA(cn string) *testCA {
	p.serial++
	key := p.newKey()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(p.serial),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		p.t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, file: p.write(fmt.Sprintf("ca-%d.pem", p.serial), "CERTIFICATE", der)}
}

// leafOpts describes a leaf certificate.
type leafOpts struct {
	cn      string
	ca      *testCA
	expired bool
	usages  []x509.ExtKeyUsage // default: server and client
}

// leaf makes a certificate for 127.0.0.1 and localhost with o's CN, signed
// by o.ca, and writes it and its key under name.
func (p *testPKI) leaf(name string, o leafOpts) testLeaf {
	p.serial++
	key := p.newKey()
	usages := o.usages
	if usages == nil {
		usages = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	notBefore, notAfter := time.Now().Add(-time.Hour), time.Now().Add(12*time.Hour)
	if o.expired {
		notBefore, notAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial),
		Subject:      pkix.Name{CommonName: o.cn},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usages,
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, o.ca.cert, &key.PublicKey, o.ca.key)
	if err != nil {
		p.t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	return testLeaf{cert: p.write(name+".pem", "CERTIFICATE", der), key: p.write(name+"-key.pem", "PRIVATE KEY", kder), serial: tmpl.SerialNumber}
}

// crl writes a CRL of ca revoking serials.
func (p *testPKI) crl(name string, ca *testCA, serials ...*big.Int) string {
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.cert, ca.key)
	if err != nil {
		p.t.Fatal(err)
	}
	return p.write(name, "X509 CRL", der)
}

// tlsClient is an HTTP client trusting ca and presenting leaf (if any)
// whatever the server asks for.
func tlsClient(t *testing.T, ca string, leaf *testLeaf) *http.Client {
	t.Helper()
	pool, err := loadCertPool(ca)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: pool}
	if leaf != nil {
		c, err := tls.LoadX509KeyPair(leaf.cert, leaf.key)
		if err != nil {
			t.Fatal(err)
		}
		// Presented whatever CAs the server asks for, as curl does.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

// captureLog collects the log lines written while the test runs. Tests that
// use it do not run in parallel.
type captureLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (c *captureLog) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(b)
}

// String returns everything logged so far.
func (c *captureLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// logTo sends slog's default logger's output to a captureLog (as well as
// the test's stderr) until the test ends.
func logTo(t *testing.T) *captureLog {
	c := &captureLog{}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.MultiWriter(c, os.Stderr), &slog.HandlerOptions{Level: slog.LevelWarn})))
	t.Cleanup(func() { slog.SetDefault(old) })
	return c
}

// startTLSMember starts one member serving clients on https with sec.
func startTLSMember(t *testing.T, sec transportSecurity, tweaks ...func(*config)) *testMember {
	t.Helper()
	cfg := memberConfig(t, "t", t.TempDir(), "https://127.0.0.1:0", map[string]string{"t": "http://127.0.0.1:0"})
	cfg.ClientTLS = sec
	for _, tweak := range tweaks {
		tweak(cfg)
	}
	s, err := startServer(cfg)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	m := &testMember{server: s, URL: "https://" + s.ClientAddrs()[0], cfg: cfg}
	t.Cleanup(func() { m.stop(t) })
	waitFor(t, 10*time.Second, "the member to lead", func() bool { return s.store.Index() >= 3 && s.leader.Load() == s.id })
	return m
}

// TestTLSClientCertificates: under --client-cert-auth, and under a trusted CA
// alone, a valid client certificate is served and none, another CA's, an
// expired, a revoked or a server-only one is refused with one log line naming
// the client and why; plain http and TLS 1.1 are refused too.
func TestTLSClientCertificates(t *testing.T) {
	log := logTo(t)
	p := newTestPKI(t)
	srv := p.leaf("server", leafOpts{cn: "server", ca: p.ca})
	good := p.leaf("alice", leafOpts{cn: "alice", ca: p.ca, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	foreign := p.leaf("mallory", leafOpts{cn: "mallory", ca: p.other})
	expired := p.leaf("old", leafOpts{cn: "old", ca: p.ca, expired: true})
	revoked := p.leaf("revoked", leafOpts{cn: "revoked", ca: p.ca})
	serverOnly := p.leaf("serveronly", leafOpts{cn: "serveronly", ca: p.ca, usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	crl := p.crl("ca.crl", p.ca, revoked.serial)

	for _, mode := range []struct {
		name string
		sec  transportSecurity
	}{
		{"client-cert-auth", transportSecurity{CertFile: srv.cert, KeyFile: srv.key, ClientCertAuth: true, TrustedCAFile: p.ca.file, CRLFile: crl}},
		// As in etcd 3.4, a trusted CA alone demands client certificates.
		{"trusted-ca alone", transportSecurity{CertFile: srv.cert, KeyFile: srv.key, TrustedCAFile: p.ca.file, CRLFile: crl}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			m := startTLSMember(t, mode.sec)
			cases := []struct {
				name   string
				leaf   *testLeaf
				ok     bool
				reason string // in the refusal's log line
			}{
				{"valid", &good, true, ""},
				{"none", nil, false, "client didn't provide a certificate"},
				{"wrong CA", &foreign, false, `cn=mallory reason="tls: failed to verify certificate: x509: certificate signed by unknown authority`},
				{"expired", &expired, false, `cn=old reason="tls: failed to verify certificate: x509: certificate has expired`},
				{"revoked", &revoked, false, fmt.Sprintf(`cn=revoked reason="certificate with serial %s is revoked`, revoked.serial.Text(16))},
				{"not for clients", &serverOnly, false, "cn=serveronly reason=\"tls: failed to verify certificate: x509: certificate specifies an incompatible key usage"},
			}
			for _, tc := range cases {
				hc := tlsClient(t, p.ca.file, tc.leaf)
				resp, err := hc.Get(m.URL + "/v2/keys/")
				if tc.ok {
					if err != nil {
						t.Fatalf("%s: %v", tc.name, err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || !strings.Contains(string(b), `"dir":true`) {
						t.Fatalf("%s: %d %s", tc.name, resp.StatusCode, b)
					}
					continue
				}
				if err == nil {
					resp.Body.Close()
					t.Fatalf("%s: request succeeded with status %d, want refusal", tc.name, resp.StatusCode)
				}
				waitFor(t, 2*time.Second, "the refusal's log line for "+tc.name, func() bool {
					return strings.Contains(log.String(), tc.reason)
				})
			}
			if n := strings.Count(log.String(), "TLS: connection refused"); n < len(cases)-1 {
				t.Fatalf("%d refusals logged, want %d:\n%s", n, len(cases)-1, log)
			}
			// A plain-text request on the TLS port: closed without an
			// answer, as etcd does, and logged.
			resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + strings.TrimPrefix(m.URL, "https://") + "/v2/keys/")
			if err == nil {
				resp.Body.Close()
				t.Fatalf("plain http on the TLS port answered %d", resp.StatusCode)
			}
			waitFor(t, 2*time.Second, "the plain-text refusal's log line", func() bool {
				return strings.Contains(log.String(), "does not look like a TLS handshake")
			})
			// TLS 1.1 is refused.
			old := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}}}
			if resp, err := old.Get(m.URL + "/version"); err == nil {
				resp.Body.Close()
				t.Fatal("a TLS 1.1 client was served")
			}
			waitFor(t, 2*time.Second, "the TLS 1.1 refusal's log line", func() bool {
				return strings.Contains(log.String(), "client offered only unsupported versions")
			})
		})
	}
}

// TestTLSStartupChecks: the flag combinations etcd 3.4 refuses stop
// start-up with its message.
func TestTLSStartupChecks(t *testing.T) {
	p := newTestPKI(t)
	srv := p.leaf("server", leafOpts{cn: "server", ca: p.ca})
	cases := []struct {
		name string
		tune func(c *config)
		want string
	}{
		{"https client URL without cert", func(c *config) {
			c.ListenClientURLs = mustURLs(t, "https://127.0.0.1:0")
		}, "TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:0 with HTTPS scheme"},
		{"https peer URL without cert", func(c *config) {
			c.ListenPeerURLs = mustURLs(t, "https://127.0.0.1:0")
		}, "cannot listen on TLS for 127.0.0.1:0: KeyFile and CertFile are not presented"},
		{"unknown cipher suite", func(c *config) {
			c.CipherSuites = []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "FOO"}
		}, `unexpected TLS cipher suite "FOO"`},
		{"missing cert file", func(c *config) {
			c.ListenClientURLs = mustURLs(t, "https://127.0.0.1:0")
			c.ClientTLS = transportSecurity{CertFile: filepath.Join(t.TempDir(), "none.pem"), KeyFile: srv.key}
		}, "no such file or directory"},
		{"cert without key", func(c *config) {
			c.ListenClientURLs = mustURLs(t, "https://127.0.0.1:0")
			c.ClientTLS = transportSecurity{CertFile: srv.cert}
		}, "--cert-file and --key-file must be given together"},
		{"allowed CN and host name", func(c *config) {
			c.PeerTLS = transportSecurity{CertFile: srv.cert, KeyFile: srv.key, AllowedCN: "peer", AllowedHostname: "localhost"}
		}, `AllowedCN and AllowedHostname are mutually exclusive (cn="peer", hostname="localhost")`},
	}
	// Client certificate files beside http client URLs only are ignored.
	cfg := testConfig(t, t.TempDir())
	cfg.ClientTLS = transportSecurity{CertFile: "/nonexistent.pem"}
	startTestMember(t, cfg)
	for _, tc := range cases {
		cfg := testConfig(t, t.TempDir())
		tc.tune(cfg)
		s, err := startServer(cfg)
		if err == nil {
			s.Shutdown(context.Background())
			t.Fatalf("%s: started", tc.name)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: error %q, want %q", tc.name, err, tc.want)
		}
	}
}

// TestTLSFlagsAndEnvironment: every TLS flag is read from the command line
// or its ETCD_* variable; one given both ways is refused, naming both.
func TestTLSFlagsAndEnvironment(t *testing.T) {
	c, err := parseConfig([]string{"--cert-file", "/c.pem", "--peer-client-cert-auth", "--cipher-suites", "A,B",
		"--listen-client-urls", "https://127.0.0.1:2379", "--advertise-client-urls", "https://127.0.0.1:2379"},
		[]string{"ETCD_KEY_FILE=/k.pem", "ETCD_PEER_CERT_ALLOWED_CN=etcd-peer", "ETCD_CLIENT_CERT_AUTH=true",
			"ETCD_TRUSTED_CA_FILE=/ca.pem", "ETCD_CLIENT_CRL_FILE=/crl", "ETCD_AUTO_TLS=true", "ETCD_PEER_AUTO_TLS=true",
			"ETCD_PEER_CERT_FILE=/pc", "ETCD_PEER_KEY_FILE=/pk", "ETCD_PEER_TRUSTED_CA_FILE=/pca", "ETCD_PEER_CRL_FILE=/pcrl",
			"ETCD_PEER_CERT_ALLOWED_HOSTNAME=h"})
	if err != nil {
		t.Fatal(err)
	}
	wantC := transportSecurity{CertFile: "/c.pem", KeyFile: "/k.pem", ClientCertAuth: true, TrustedCAFile: "/ca.pem", CRLFile: "/crl", AutoTLS: true}
	wantP := transportSecurity{CertFile: "/pc", KeyFile: "/pk", ClientCertAuth: true, TrustedCAFile: "/pca", CRLFile: "/pcrl", AutoTLS: true, AllowedCN: "etcd-peer", AllowedHostname: "h"}
	if c.ClientTLS != wantC || c.PeerTLS != wantP {
		t.Fatalf("client %+v peer %+v", c.ClientTLS, c.PeerTLS)
	}
	if strings.Join(c.CipherSuites, ",") != "A,B" || c.ListenClientURLs[0].Scheme != "https" {
		t.Fatalf("cipher suites %q, urls %v", c.CipherSuites, c.ListenClientURLs)
	}
	if _, err := parseConfig([]string{"--cert-file", "/c.pem"}, []string{"ETCD_CERT_FILE=/other.pem"}); err == nil ||
		!strings.Contains(err.Error(), "ETCD_CERT_FILE") || !strings.Contains(err.Error(), "--cert-file") {
		t.Fatalf("--cert-file and ETCD_CERT_FILE both given: %v", err)
	}
	if _, err := parseConfig([]string{"--listen-client-urls", "unixs://x:1"}, nil); err == nil {
		t.Fatal("unixs URL accepted")
	}
}

// TestTLSAutoTLS: --auto-tls and --peer-auto-tls make self-signed
// certificates in the data dir, as etcd does, and serve with them.
func TestTLSAutoTLS(t *testing.T) {
	cfg := memberConfig(t, "t", t.TempDir(), "https://127.0.0.1:0", map[string]string{"t": "https://127.0.0.1:0"})
	cfg.ClientTLS.AutoTLS, cfg.PeerTLS.AutoTLS = true, true
	s, err := startServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := &testMember{server: s, URL: "https://" + s.ClientAddrs()[0], cfg: cfg}
	t.Cleanup(func() { m.stop(t) })
	for _, side := range []string{"client", "peer"} {
		data, err := os.ReadFile(filepath.Join(cfg.DataDir, "fixtures", side, "cert.pem"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode(data)
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if cert.Subject.Organization[0] != "etcd" || len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
			t.Fatalf("%s: subject %v, IPs %v", side, cert.Subject, cert.IPAddresses)
		}
		if fi, err := os.Stat(filepath.Join(cfg.DataDir, "fixtures", side, "key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s key: %v %v", side, fi, err)
		}
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	waitFor(t, 10*time.Second, "the member to serve", func() bool {
		resp, err := hc.Get(m.URL + "/v2/keys/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// TestTLSCertificateRotation: a running member serves the new certificate
// once its files are replaced, and keeps the last good one over a broken file.
func TestTLSCertificateRotation(t *testing.T) {
	p := newTestPKI(t)
	first := p.leaf("server1", leafOpts{cn: "first", ca: p.ca})
	second := p.leaf("server2", leafOpts{cn: "second", ca: p.ca})
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	install := func(l testLeaf) {
		for src, dst := range map[string]string{l.cert: certFile, l.key: keyFile} {
			data, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			// Written beside and renamed, as certificate tools do.
			if err := os.WriteFile(dst+".tmp", data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(dst+".tmp", dst); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(first)
	m := startTLSMember(t, transportSecurity{CertFile: certFile, KeyFile: keyFile})
	served := func() string {
		hc := tlsClient(t, p.ca.file, nil)
		resp, err := hc.Get(m.URL + "/version")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	if cn := served(); cn != "first" {
		t.Fatalf("served %q before the rotation", cn)
	}
	install(second)
	if cn := served(); cn != "second" {
		t.Fatalf("served %q after the rotation, want the new certificate", cn)
	}
	// A broken file keeps the last good certificate in service.
	if err := os.WriteFile(certFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cn := served(); cn != "second" {
		t.Fatalf("served %q after a bad file", cn)
	}
}

// tlsPeerCluster starts a 3-member cluster on https peer URLs whose members
// demand peer certificates of the CA with CN "peer".
func tlsPeerCluster(t *testing.T, p *testPKI) *testCluster {
	peer := p.leaf("peer", leafOpts{cn: "peer", ca: p.ca})
	return startTestCluster(t, 3, func(c *config) {
		for _, list := range append([][]*url.URL{c.ListenPeerURLs, c.InitialAdvertisePeerURLs}, mapValues(c.InitialCluster)...) {
			for _, u := range list {
				u.Scheme = "https"
			}
		}
		c.PeerTLS = transportSecurity{CertFile: peer.cert, KeyFile: peer.key, ClientCertAuth: true, TrustedCAFile: p.ca.file, AllowedCN: "peer"}
	})
}

// mapValues returns m's values.
func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestTLSPeerCluster: a 3-member cluster on https peer URLs with peer client
// certificate auth and an allowed CN works; intruders with another CA's
// certificate or the wrong CN are refused and logged, a member with a foreign
// certificate cannot join, and the cluster is undisturbed; a rotated peer
// certificate is served at once.
func TestTLSPeerCluster(t *testing.T) {
	log := logTo(t)
	p := newTestPKI(t)
	c := tlsPeerCluster(t, p)
	for i := range c.members {
		if got := c.members[i].cfg.ListenPeerURLs[0].Scheme; got != "https" {
			t.Fatalf("member %d peer URL scheme %s", i, got)
		}
	}
	lead := c.leader()
	term := c.srv(lead).term.Load()
	for i := range c.members {
		code, body := httpDo(t, "PUT", c.members[i].url+fmt.Sprintf("/v2/keys/k%d", i), url.Values{"value": {"v"}})
		if code != 201 {
			t.Fatalf("write through member %d: %d %s", i, code, body)
		}
	}
	c.waitConverged()

	// Intruders knock on the leader's peer port with the right headers: a
	// certificate of another CA, one of the CA with the wrong CN, none.
	peerURL := c.members[lead].cfg.ListenPeerURLs[0].String()
	intruders := []struct {
		name   string
		leaf   testLeaf
		reason string
	}{
		{"foreign CA", p.leaf("foreign", leafOpts{cn: "peer", ca: p.other}), "cn=peer reason=\"tls: failed to verify certificate: x509: certificate signed by unknown authority"},
		{"wrong CN", p.leaf("wrongcn", leafOpts{cn: "intruder", ca: p.ca}), `cn=intruder reason="CommonName \"intruder\" is not the allowed \"peer\""`},
	}
	for _, in := range intruders {
		hc := tlsClient(t, p.ca.file, &in.leaf)
		req, _ := http.NewRequest("POST", peerURL+transportStreamPath, strings.NewReader(""))
		req.Header.Set(transportHeaderClusterID, idString(c.srv(lead).clusterID))
		req.Header.Set(transportHeaderFrom, "1234")
		req.Header.Set(transportHeaderTo, idString(c.srv(lead).id))
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("%s: peer request answered %d", in.name, resp.StatusCode)
		}
		resp, err := hc.Get(peerURL + "/members")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: /members answered %d", in.name, resp.StatusCode)
		}
		waitFor(t, 2*time.Second, "the refusal of "+in.name, func() bool { return strings.Contains(log.String(), in.reason) })
	}

	// A member with a foreign certificate, added to the cluster, cannot
	// join: it cannot fetch the cluster nor stream to its peers.
	p2 := p.leaf("foreign-member", leafOpts{cn: "peer", ca: p.other})
	newPeer := strings.Replace(freePortURL(t), "http://", "https://", 1)
	code, body := postMember(t, c.members[lead].url, newPeer)
	if code != 201 {
		t.Fatalf("member add: %d %s", code, body)
	}
	peers := map[string]string{"intruder": newPeer}
	for _, m := range c.members {
		peers[m.cfg.Name] = m.cfg.InitialAdvertisePeerURLs[0].String()
	}
	cfg := clusterConfig(t, "intruder", freePortURL(t), peers, "existing")
	cfg.PeerTLS = transportSecurity{CertFile: p2.cert, KeyFile: p2.key, TrustedCAFile: p.ca.file}
	done := make(chan error, 1)
	go func() {
		s, err := startServer(cfg)
		if err == nil {
			s.Shutdown(context.Background())
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "could not reach the existing cluster") {
			t.Fatalf("foreign member: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("foreign member start did not end")
	}
	// The cluster is undisturbed: same leader and term, writes work.
	if l := c.leader(); l != lead || c.srv(l).term.Load() != term {
		t.Fatalf("leader %d term %d, was %d term %d", l, c.srv(l).term.Load(), lead, term)
	}
	code, body = httpDo(t, "PUT", c.members[(lead+1)%3].url+"/v2/keys/after", url.Values{"value": {"v"}})
	if code != 201 {
		t.Fatalf("write after the intruders: %d %s", code, body)
	}

	// The peer certificate is rotated under the running members: the next
	// connection gets the new one, and the cluster keeps working.
	rotated := p.leaf("peer", leafOpts{cn: "peer", ca: p.ca}) // the same files, a new certificate
	hc := tlsClient(t, p.ca.file, &rotated)
	resp, err := hc.Get(peerURL + "/members")
	if err != nil {
		t.Fatalf("peer port after the rotation: %v", err)
	}
	resp.Body.Close()
	if got := resp.TLS.PeerCertificates[0].SerialNumber; got.Cmp(rotated.serial) != 0 {
		t.Fatalf("peer port serves serial %v after the rotation, want %v", got, rotated.serial)
	}
	code, body = httpDo(t, "PUT", c.members[(lead+2)%3].url+"/v2/keys/rotated", url.Values{"value": {"v"}})
	if code != 201 {
		t.Fatalf("write after the rotation: %d %s", code, body)
	}
}

// testPeerSide is a peer TLS side with leaf's certificate that demands
// certificates of p's CA.
func testPeerSide(t testing.TB, p *testPKI, leaf testLeaf) *tlsSide {
	t.Helper()
	s := &tlsSide{name: "peer", now: time.Now, sec: transportSecurity{CertFile: leaf.cert, KeyFile: leaf.key, ClientCertAuth: true, TrustedCAFile: p.ca.file}}
	if err := s.refresh(); err != nil {
		t.Fatal(err)
	}
	return s
}

// trStartTLSNode is trStartNode serving and dialing with TLS; r nil means
// a fresh trFakeRaft.
func trStartTLSNode(t testing.TB, id uint64, side *tlsSide, r transportRaft) *trNode {
	t.Helper()
	n := &trNode{id: id, reqs: &trRequestLog{}}
	if r == nil {
		n.fake = &trFakeRaft{}
		r = n.fake
	}
	n.tr = NewTransport(id, 0x77, r)
	trFast(n.tr)
	n.tr.SetPeerTLS(side)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/raft/", n.tr.Handler())
	n.srv = &http.Server{Handler: mux}
	go func() { _ = n.srv.Serve(newTLSListener(ln, side)) }()
	n.addr = ln.Addr().String()
	n.url = "https://" + n.addr
	t.Cleanup(n.stop)
	return n
}

// TestTransportOverTLS: the stream and the snapshot path work over TLS with
// client certificates, in order, small and large messages alike, written by
// Send itself or by the pump; a peer that stops reading blocks no one.
func TestTransportOverTLS(t *testing.T) {
	p := newTestPKI(t)
	side := testPeerSide(t, p, p.leaf("peer", leafOpts{cn: "peer", ca: p.ca}))
	a := trStartTLSNode(t, 1, side, nil)
	b := trStartTLSNode(t, 2, side, nil)
	trLink(t, a, b)

	large := bytes.Repeat([]byte("L"), 3<<20)
	var want []raftpb.Message
	for i := uint64(0); i < 2000; i += 10 {
		batch := make([]raftpb.Message, 0, 10)
		for j := i; j < i+10; j++ {
			m := trApp(1, 2, j)
			if j%500 == 7 {
				m.Entries[0].Data = large
			}
			batch = append(batch, m)
		}
		want = append(want, batch...)
		a.tr.Send(batch)
		if i%100 == 0 {
			time.Sleep(time.Millisecond) // an idle stream: Send writes itself
		}
	}
	trWait(t, 10*time.Second, func() bool { return b.fake.count() >= len(want) }, "%d messages at b", len(want))
	time.Sleep(20 * time.Millisecond)
	trSameMessages(t, b.fake.received(), want)
	if st := a.tr.PeerStats()[2]; st.Counts.Success != uint64(len(want)) || st.Counts.Fail != 0 {
		t.Fatalf("counts %+v", st.Counts)
	}

	snap := raftpb.Message{Type: raftpb.MsgSnap, From: 1, To: 2, Term: 3, Snapshot: &raftpb.Snapshot{Data: large, Metadata: raftpb.SnapshotMetadata{Index: 9, Term: 3}}}
	a.tr.Send([]raftpb.Message{snap})
	trWait(t, 10*time.Second, func() bool { return len(a.fake.snapReports()) > 0 }, "the snapshot's report")
	if r := a.fake.snapReports(); r[0].status != raft.SnapshotFinish {
		t.Fatalf("snapshot reports %+v", r)
	}

	// A TLS peer that accepts the stream and never reads it.
	release := make(chan struct{})
	defer close(release)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	slow := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		_ = rc.EnableFullDuplex()
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})}
	go func() { _ = slow.Serve(newTLSListener(ln, side)) }()
	defer slow.Close()
	a.tr.AddPeer(3, []string{"https://" + ln.Addr().String()})
	trWait(t, 3*time.Second, func() bool { return a.tr.Connected(3) }, "stream to the slow peer")
	big := []raftpb.Entry{{Term: 1, Index: 1, Data: bytes.Repeat([]byte("x"), 16<<10)}}
	msgs := make([]raftpb.Message, 20000)
	for i := range msgs {
		msgs[i] = raftpb.Message{Type: raftpb.MsgApp, From: 1, To: 3, Term: 1, Index: uint64(i), Entries: big}
	}
	start := time.Now()
	for i := 0; i < len(msgs); i += 100 {
		a.tr.Send(msgs[i : i+100])
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Send to a slow TLS peer took %v", d)
	}
	trWait(t, 5*time.Second, func() bool { return a.fake.unreachableCount(3) > 0 }, "ReportUnreachable(3)")
	start = time.Now()
	a.stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Stop took %v with a blocked TLS peer", d)
	}
}

// BenchmarkTransportPipelinedTLS is BenchmarkTransportPipelined over TLS
// with client certificates.
func BenchmarkTransportPipelinedTLS(b *testing.B) {
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	b.Cleanup(func() { slog.SetDefault(prev) })
	p := newTestPKI(b)
	side := testPeerSide(b, p, p.leaf("peer", leafOpts{cn: "peer", ca: p.ca}))
	ra := &trEchoRaft{got: make(chan raftpb.Message, 1024)}
	rb := &trEchoRaft{}
	a := trStartTLSNode(b, 1, side, ra)
	bn := trStartTLSNode(b, 2, side, rb)
	ra.send, rb.send = a.tr.Send, bn.tr.Send
	trLink(b, a, bn)
	const window = 64
	msgs := []raftpb.Message{trBenchApp(0)}
	b.ReportAllocs()
	b.ResetTimer()
	inflight := 0
	for i := 0; i < b.N; i++ {
		for ; inflight >= window; inflight-- {
			<-ra.got
		}
		msgs[0].Index = uint64(i)
		a.tr.Send(msgs)
		inflight++
	}
	for ; inflight > 0; inflight-- {
		<-ra.got
	}
}

// TestTLSCheckClient: the checks crypto/tls leaves to etcdlite (CRL, allowed
// CN and host name) accept and refuse as they should.
func TestTLSCheckClient(t *testing.T) {
	p := newTestPKI(t)
	good := p.leaf("peer", leafOpts{cn: "peer", ca: p.ca})
	revoked := p.leaf("revoked", leafOpts{cn: "peer", ca: p.ca})
	crl := p.crl("ca.crl", p.ca, revoked.serial)
	load := func(l testLeaf) tls.ConnectionState {
		c, err := tls.LoadX509KeyPair(l.cert, l.key)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf, p.ca.cert}}}
	}
	cases := []struct {
		name string
		sec  transportSecurity
		cs   tls.ConnectionState
		want string // "" for accepted
	}{
		{"accepted", transportSecurity{AllowedCN: "peer", AllowedHostname: "localhost", CRLFile: crl}, load(good), ""},
		{"no certificate", transportSecurity{}, tls.ConnectionState{}, "no client certificate"},
		{"wrong CN", transportSecurity{AllowedCN: "etcd"}, load(good), `CommonName "peer" is not the allowed "etcd"`},
		{"wrong host name", transportSecurity{AllowedHostname: "etcd.example"}, load(good), "certificate not valid for the allowed host name"},
		{"IP host name", transportSecurity{AllowedHostname: "127.0.0.1"}, load(good), ""},
		{"revoked", transportSecurity{CRLFile: crl}, load(revoked), "is revoked by"},
	}
	for _, tc := range cases {
		tc.sec.CertFile, tc.sec.KeyFile = good.cert, good.key
		s := &tlsSide{name: "peer", sec: tc.sec, now: time.Now}
		if err := s.refresh(); err != nil {
			t.Fatal(err)
		}
		err := s.checkClient(tc.cs)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		case err != nil && len(tc.cs.PeerCertificates) > 0 && refusedCN(err) != tc.cs.PeerCertificates[0].Subject.CommonName:
			t.Errorf("%s: refusal names CN %q", tc.name, refusedCN(err))
		}
	}
}

// TestTLSListenerSilentClient: a client that connects and never completes
// its handshake is dropped after the handshake timeout, logged; other
// clients are served meanwhile; Close ends handshakes under way.
func TestTLSListenerSilentClient(t *testing.T) {
	log := logTo(t)
	p := newTestPKI(t)
	srvLeaf := p.leaf("server", leafOpts{cn: "server", ca: p.ca})
	side := &tlsSide{name: "client", now: time.Now, sec: transportSecurity{CertFile: srvLeaf.cert, KeyFile: srvLeaf.key}}
	if err := side.refresh(); err != nil {
		t.Fatal(err)
	}
	serve := func(timeout time.Duration) (*http.Server, string) {
		raw, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln := newTLSListenerTimeout(raw, side, timeout)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { srv.Close() })
		return srv, raw.Addr().String()
	}
	_, addr := serve(300 * time.Millisecond)

	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	resp, err := tlsClient(t, p.ca.file, nil).Get("https://" + addr + "/")
	if err != nil {
		t.Fatalf("a client beside the silent one: %v", err)
	}
	resp.Body.Close()
	_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := silent.Read(make([]byte, 1)); err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("silent client: read %v after %v, want the connection closed", err, time.Since(start))
	}
	waitFor(t, 2*time.Second, "the silent client's log line", func() bool {
		return strings.Contains(log.String(), "context deadline exceeded")
	})

	srv, addr := serve(time.Minute)
	silent2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent2.Close()
	time.Sleep(50 * time.Millisecond) // its handshake is under way
	srv.Close()
	_ = silent2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent2.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("handshake under way at Close: read %v, want the connection closed", err)
	}
}
