// Tests of v2 auth: users, roles, permissions and their API.

package main

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"etcdlite/kv"
)

// authReq sends a request with optional Basic credentials ("user:pw") and
// body, and returns the status and body.
func authReq(t *testing.T, method, u, cred, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(body, "value=") || strings.HasPrefix(body, "dir=") {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cred != "" {
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(cred)))
	}
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// authMust sends a request and fails the test unless it gets want.
func authMust(t *testing.T, want int, method, u, cred, body string) string {
	t.Helper()
	code, b := authReq(t, method, u, cred, body)
	if code != want {
		t.Fatalf("%s %s (%s): %d %s, want %d", method, u, cred, code, b, want)
	}
	return b
}

const authRootCred = "root:rootpw"

// authSetup creates root, enables auth, restricts guest to reading /pub/*
// and creates user "alice" (password "apw") with role "app": read and
// write /app/* and /app, read /ro, write /wo.
func authSetup(t *testing.T, base string) {
	t.Helper()
	authMust(t, 201, "PUT", base+"/v2/auth/users/root", "", `{"user":"root","password":"rootpw"}`)
	authMust(t, 200, "PUT", base+"/v2/auth/enable", "", "")
	authMust(t, 200, "PUT", base+"/v2/auth/roles/guest", authRootCred, `{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}`)
	authMust(t, 200, "PUT", base+"/v2/auth/roles/guest", authRootCred, `{"role":"guest","grant":{"kv":{"read":["/pub/*"]}}}`)
	authMust(t, 201, "PUT", base+"/v2/auth/roles/app", authRootCred, `{"role":"app","permissions":{"kv":{"read":["/app/*","/app","/ro"],"write":["/app/*","/app","/wo"]}}}`)
	authMust(t, 200, "PUT", base+"/v2/auth/users/alice", authRootCred, `{"user":"alice","password":"apw","roles":["app"]}`)
}

// TestAuthPermissionsEveryOperation checks each kind of keys request as
// root, as a user with a role, with wrong credentials and as guest.
func TestAuthPermissionsEveryOperation(t *testing.T) {
	m := startTestMember(t, nil)
	for _, k := range []string{"/app/a", "/app/d/x", "/ro", "/wo", "/pub/p", "/secret"} {
		authMust(t, 201, "PUT", m.URL+"/v2/keys"+k, "", "value=1")
	}
	authSetup(t, m.URL)
	const alice, wrong, guest = "alice:apw", "alice:nope", ""
	cases := []struct {
		name, method, path, cred, body string
		want                           int
	}{
		{"get granted", "GET", "/app/a", alice, "", 200},
		{"head granted", "HEAD", "/app/a", alice, "", 200},
		{"get not granted", "GET", "/secret", alice, "", 401},
		{"get read-only", "GET", "/ro", alice, "", 200},
		{"get write-only", "GET", "/wo", alice, "", 401},
		{"quorum get", "GET", "/app/a?quorum=true", alice, "", 200},
		{"recursive get under prefix", "GET", "/app/?recursive=true", alice, "", 200},
		{"recursive get of the dir itself", "GET", "/app?recursive=true", alice, "", 401},
		{"recursive get of the root", "GET", "/?recursive=true", alice, "", 401},
		{"put granted", "PUT", "/app/b", alice, "value=2", 201},
		{"put read-only", "PUT", "/ro", alice, "value=2", 401},
		{"put write-only", "PUT", "/wo", alice, "value=2", 200},
		{"cas granted", "PUT", "/app/a?prevValue=1", alice, "value=3", 200},
		{"create dir", "PUT", "/app/newdir", alice, "dir=true", 201},
		{"post in order", "POST", "/app", alice, "value=q", 201},
		{"post in order not granted", "POST", "/secret", alice, "value=q", 401},
		{"delete granted", "DELETE", "/app/b", alice, "", 200},
		{"delete not granted", "DELETE", "/secret", alice, "", 401},
		{"recursive delete under prefix", "DELETE", "/app/d?recursive=true", alice, "", 200},
		{"recursive delete without prefix pattern", "DELETE", "/app?recursive=true", alice, "", 401},
		{"compare-and-delete", "DELETE", "/app/a?prevValue=3", alice, "", 200},
		{"watch from history", "GET", "/app/a?wait=true&waitIndex=1", alice, "", 200},
		{"recursive watch without prefix pattern", "GET", "/app?wait=true&recursive=true", alice, "", 401},
		{"watch not granted", "GET", "/secret?wait=true", alice, "", 401},
		{"wrong password read", "GET", "/app/a", wrong, "", 401},
		{"wrong password write", "PUT", "/app/a", wrong, "value=1", 401},
		{"unknown user", "GET", "/pub/p", "mallory:x", "", 401},
		{"empty user name", "GET", "/pub/p", ":x", "", 401},
		{"guest read granted", "GET", "/pub/p", guest, "", 200},
		{"guest read not granted", "GET", "/app/a", guest, "", 401},
		{"guest write", "PUT", "/pub/p", guest, "value=2", 401},
		{"guest recursive", "GET", "/pub/?recursive=true", guest, "", 200},
		{"root reads", "GET", "/secret", authRootCred, "", 200},
		{"root writes", "PUT", "/secret", authRootCred, "value=2", 200},
		{"root recursive delete", "DELETE", "/pub?recursive=true", authRootCred, "", 200},
		{"bad form first", "PUT", "/app/a?ttl=x", wrong, "value=1", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := authReq(t, c.method, m.URL+"/v2/keys"+c.path, c.cred, c.body)
			if code != c.want {
				t.Fatalf("%s %s as %q: %d %s, want %d", c.method, c.path, c.cred, code, body, c.want)
			}
			if code == 401 && c.method != "HEAD" && body != `{"errorCode":110,"message":"The request requires user authentication","cause":"Insufficient credentials","index":0}`+"\n" {
				t.Fatalf("401 body %q", body)
			}
		})
	}
	// what only root may do
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v2/auth/users", ""}, {"GET", "/v2/auth/roles", ""}, {"GET", "/v2/auth/users/alice", ""},
		{"PUT", "/v2/auth/users/alice", `{"user":"alice","password":"x"}`}, {"DELETE", "/v2/auth/roles/app", ""},
		{"DELETE", "/v2/auth/enable", ""}, {"POST", "/v2/members", `{"peerURLs":["http://127.0.0.1:1"]}`},
	} {
		if code, body := authReq(t, c.method, m.URL+c.path, alice, c.body); code != 401 || body != `{"message":"Insufficient credentials"}` {
			t.Errorf("%s %s as alice: %d %q", c.method, c.path, code, body)
		}
	}
	authMust(t, 200, "GET", m.URL+"/v2/members", alice, "")
	authMust(t, 200, "GET", m.URL+"/v2/stats/self", "", "")
}

// TestAuthCluster makes a role change on one member and checks that the
// others enforce it at once (once they have applied what was committed
// before their read) and after they restart.
func TestAuthCluster(t *testing.T) {
	c := startTestCluster(t, 3, nil)
	authSetup(t, c.members[0].url)
	authMust(t, 201, "PUT", c.members[1].url+"/v2/keys/app/x", "alice:apw", "value=1")
	authMust(t, 201, "PUT", c.members[2].url+"/v2/keys/other", authRootCred, "value=1")
	// the change, made on member 0
	authMust(t, 200, "PUT", c.members[0].url+"/v2/auth/roles/app", authRootCred, `{"role":"app","revoke":{"kv":{"write":["/app/*"]}}}`)
	authMust(t, 201, "PUT", c.members[0].url+"/v2/auth/roles/extra", authRootCred, `{"role":"extra","permissions":{"kv":{"read":["/other"]}}}`)
	authMust(t, 200, "PUT", c.members[1].url+"/v2/auth/users/alice", authRootCred, `{"user":"alice","grant":["extra"]}`)
	for i := 1; i < 3; i++ {
		// a quorum read orders this member after the change
		authMust(t, 200, "GET", c.members[i].url+"/v2/keys/app/x?quorum=true", "alice:apw", "")
		authMust(t, 401, "PUT", c.members[i].url+"/v2/keys/app/x", "alice:apw", "value=2")
		authMust(t, 200, "GET", c.members[i].url+"/v2/keys/app/x", "alice:apw", "")
		authMust(t, 401, "GET", c.members[i].url+"/v2/keys/other", "", "")
		authMust(t, 200, "GET", c.members[i].url+"/v2/keys/other", "alice:apw", "")
	}
	// a password change made on member 2 is enforced on member 1
	authMust(t, 200, "PUT", c.members[2].url+"/v2/auth/users/alice", authRootCred, `{"user":"alice","password":"new"}`)
	authMust(t, 200, "GET", c.members[1].url+"/v2/keys/app/x?quorum=true", "alice:new", "")
	authMust(t, 401, "GET", c.members[1].url+"/v2/keys/app/x", "alice:apw", "")
	want := authMust(t, 200, "GET", c.members[0].url+"/v2/auth/users/alice", authRootCred, "")
	c.waitConverged()
	for i := range c.members {
		c.stop(i)
	}
	for i := range c.members {
		c.start(i)
	}
	c.waitReady()
	for i := range c.members {
		u := c.members[i].url
		if got := authMust(t, 200, "GET", u+"/v2/auth/users/alice", authRootCred, ""); got != want {
			t.Errorf("member %d after restart: %s, want %s", i, got, want)
		}
		authMust(t, 200, "GET", u+"/v2/keys/app/x", "alice:new", "")
		authMust(t, 401, "PUT", u+"/v2/keys/app/x", "alice:new", "value=3")
		authMust(t, 401, "GET", u+"/v2/keys/app/x", "alice:apw", "")
		authMust(t, 401, "GET", u+"/v2/keys/other", "", "")
		if b := authMust(t, 200, "GET", u+"/v2/auth/enable", "", ""); b != `{"enabled":true}`+"\n" {
			t.Errorf("member %d: enabled %s", i, b)
		}
	}
}

// TestAuthSnapshotRoundTrip takes snapshots with auth state in them and
// checks that a restarted member recovers it from the snapshot (not only
// from the log), and that a store snapshot carries it to a fresh store.
func TestAuthSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.SnapshotCount = 5
	cfg.hooks.catchUpEntries = 1
	m := startTestMember(t, cfg)
	authSetup(t, m.URL)
	for i := 0; i < 12; i++ {
		authMust(t, 201, "PUT", fmt.Sprintf("%s/v2/keys/app/k%d", m.URL, i), "alice:apw", "value=1")
	}
	waitFor(t, 10*time.Second, "a snapshot", func() bool {
		names, _ := filepath.Glob(filepath.Join(dir, "member", "snap", "*.snap"))
		return len(names) > 0 && !m.snapshotting.Load()
	})
	users := authMust(t, 200, "GET", m.URL+"/v2/auth/users", authRootCred, "")
	roles := authMust(t, 200, "GET", m.URL+"/v2/auth/roles", authRootCred, "")
	// the store's snapshot data into a fresh store: the same auth state
	data, err := m.store.Save()
	if err != nil {
		t.Fatal(err)
	}
	fresh := authFuzzServer()
	if err := fresh.store.Recover(data); err != nil {
		t.Fatal(err)
	}
	fresh.loadAuth()
	a, b := m.auth.state(), fresh.auth.state()
	if a.enabled != b.enabled || fmt.Sprint(a.userNames(), a.roleNames()) != fmt.Sprint(b.userNames(), b.roleNames()) {
		t.Fatalf("recovered state %v %v %v, want %v %v %v", b.enabled, b.userNames(), b.roleNames(), a.enabled, a.userNames(), a.roleNames())
	}
	m.stop(t)
	// the log before the snapshot is gone: the state must come from it
	m2 := startTestMember(t, cfg)
	if m2.snapshotIndex == 0 {
		t.Fatal("restarted without a snapshot")
	}
	if got := authMust(t, 200, "GET", m2.URL+"/v2/auth/users", authRootCred, ""); got != users {
		t.Errorf("users after restart %s, want %s", got, users)
	}
	if got := authMust(t, 200, "GET", m2.URL+"/v2/auth/roles", authRootCred, ""); got != roles {
		t.Errorf("roles after restart %s, want %s", got, roles)
	}
	authMust(t, 200, "GET", m2.URL+"/v2/keys/app/k0", "alice:apw", "")
	authMust(t, 401, "GET", m2.URL+"/v2/keys/app/k0", "", "")
}

// TestAuthEntryReplayedFromLog checks that auth changes, raft entries of
// their own kind, are applied again from the log on restart.
func TestAuthEntryReplayedFromLog(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	m := startTestMember(t, cfg)
	authSetup(t, m.URL)
	m.stop(t)
	m2 := startTestMember(t, cfg)
	if m2.snapshotIndex != 0 {
		t.Fatalf("a snapshot was taken (index %d): the test wants the log", m2.snapshotIndex)
	}
	authMust(t, 404, "GET", m2.URL+"/v2/keys/app/none", "alice:apw", "")
	authMust(t, 401, "GET", m2.URL+"/v2/keys/app/none", "", "")
	authMust(t, 401, "GET", m2.URL+"/v2/keys/app/none", "alice:wrong", "")
}

// TestAuthClientCertificateUser checks that with no Authorization header
// the verified client certificate's common name is the user.
func TestAuthClientCertificateUser(t *testing.T) {
	s := authFuzzServer()
	for _, c := range []*authChange{
		{Op: authOpCreateUser, User: &authUser{User: "root", Password: mustHash(t, "r")}},
		{Op: authOpCreateRole, Role: &authRole{Role: "app", Permissions: authPerms{KV: authRW{Read: []string{"/app/*"}}}}},
		{Op: authOpCreateUser, User: &authUser{User: "svc", Password: mustHash(t, "s"), Roles: []string{"app"}}},
		{Op: authOpEnable},
		{Op: authOpUpdateRole, Role: &authRole{Role: "guest", Revoke: &authPerms{KV: authRW{Read: []string{"/*"}, Write: []string{"/*"}}}}},
	} {
		if res := s.applyAuthChange(c, 0); res.err != nil {
			t.Fatalf("%s: %v", c.Op, res.err)
		}
	}
	st := s.auth.state()
	withCert := func(cn string, verified bool) *http.Request {
		r := httptest.NewRequest("GET", "/v2/keys/app/x", nil)
		cert := &x509.Certificate{Subject: pkix.Name{CommonName: cn}}
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
		if verified {
			r.TLS.VerifiedChains = [][]*x509.Certificate{{cert}}
		}
		return r
	}
	if !st.allowKey(withCert("svc", true), "/app/x", false) {
		t.Error("verified certificate of svc refused")
	}
	if st.allowKey(withCert("svc", false), "/app/x", false) {
		t.Error("unverified certificate accepted")
	}
	if st.allowKey(withCert("nobody", true), "/app/x", false) {
		t.Error("certificate of an unknown user accepted (guest has nothing)")
	}
	if st.allowKey(withCert("svc", true), "/other", false) {
		t.Error("certificate user got more than its role")
	}
	if !st.allowRoot(withCert("root", true)) {
		t.Error("root certificate not root")
	}
	r := withCert("root", true)
	r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("svc:wrong")))
	if st.allowRoot(r) {
		t.Error("bad Basic credentials beside a root certificate accepted")
	}
}

func mustHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := hashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestAuthPasswordHash checks the stored form: salted, verified in
// constant time, never the password itself.
func TestAuthPasswordHash(t *testing.T) {
	a, b := mustHash(t, "secret"), mustHash(t, "secret")
	if a == b {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	if strings.Contains(a, "secret") || !strings.HasPrefix(a, "pbkdf2-sha256$100000$") {
		t.Fatalf("hash %q", a)
	}
	for _, c := range []struct {
		hash, pw string
		want     bool
	}{
		{a, "secret", true}, {b, "secret", true}, {a, "Secret", false}, {a, "", false},
		{"", "", false}, {"pbkdf2-sha256$0$AA$AA", "", false}, {"pbkdf2-sha256$1$!!$AA", "x", false},
		{"plain", "plain", false}, {"pbkdf2-sha256$99999999999$AA$AA", "x", false},
		{noUserHash, "no such user", true}, {noUserHash, "", false},
	} {
		if got := checkPassword(c.hash, c.pw); got != c.want {
			t.Errorf("checkPassword(%q, %q) = %v", c.hash, c.pw, got)
		}
	}
}

// TestAuthCredentialCache checks that a verified header is cached, that
// a wrong one is not, and that any change drops the cache.
func TestAuthCredentialCache(t *testing.T) {
	s := authFuzzServer()
	s.applyAuthChange(&authChange{Op: authOpCreateUser, User: &authUser{User: "root", Password: mustHash(t, "r")}}, 0)
	s.applyAuthChange(&authChange{Op: authOpEnable}, 0)
	st := s.auth.state()
	good := "Basic " + base64.StdEncoding.EncodeToString([]byte("root:r"))
	bad := "Basic " + base64.StdEncoding.EncodeToString([]byte("root:x"))
	if _, ok := st.basicUser(bad); ok {
		t.Fatal("wrong password accepted")
	}
	if _, ok := st.basicUser(good); !ok {
		t.Fatal("right password refused")
	}
	if len(st.cache.m) != 1 {
		t.Fatalf("cache holds %d entries, want 1", len(st.cache.m))
	}
	start := time.Now()
	for i := 0; i < 1000; i++ {
		if _, ok := st.basicUser(good); !ok {
			t.Fatal("cached check failed")
		}
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("1000 cached checks took %v: not cached", d)
	}
	s.applyAuthChange(&authChange{Op: authOpCreateRole, Role: &authRole{Role: "x"}}, 0)
	if n := len(s.auth.state().cache.m); n != 0 {
		t.Fatalf("cache after a change holds %d entries", n)
	}
}

// BenchmarkAuthCheckCached is the per-request cost of the permission
// check for a non-root user whose credentials are cached.
func BenchmarkAuthCheckCached(b *testing.B) {
	s := authFuzzServer()
	for _, c := range []*authChange{
		{Op: authOpCreateUser, User: &authUser{User: "root", Password: mustHash(b, "r")}},
		{Op: authOpCreateRole, Role: &authRole{Role: "app", Permissions: authPerms{KV: authRW{Read: []string{"/a/*", "/b/*", "/app/*"}, Write: []string{"/app/*"}}}}},
		{Op: authOpCreateUser, User: &authUser{User: "alice", Password: mustHash(b, "apw"), Roles: []string{"other", "app"}}},
		{Op: authOpEnable},
	} {
		if res := s.applyAuthChange(c, 0); res.err != nil {
			b.Fatal(res.err)
		}
	}
	r := httptest.NewRequest("PUT", "/v2/keys/app/x", nil)
	r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("alice:apw")))
	if !s.authorizeKey(r, "/app/x", false) {
		b.Fatal("refused")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !s.authorizeKey(r, "/app/x", false) {
			b.Fatal("refused")
		}
	}
}

// BenchmarkAuthCheckDisabled is the cost of the check with auth off.
func BenchmarkAuthCheckDisabled(b *testing.B) {
	s := authFuzzServer()
	r := httptest.NewRequest("PUT", "/v2/keys/app/x", nil)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if !s.authorizeKey(r, "/app/x", false) {
			b.Fatal("refused")
		}
	}
}

// BenchmarkKeysHandlerAuth is BenchmarkKeysHandler's GET with auth off,
// then on with a non-root user's (cached) credentials: what auth adds to
// a read.
func BenchmarkKeysHandlerAuth(b *testing.B) {
	m := startTestMember(b, nil)
	m.do(b, "PUT", "/v2/keys/app/k0", map[string][]string{"value": {strings.Repeat("x", 64)}})
	h := m.clientHandler()
	run := func(b *testing.B) {
		br := newBenchRequest("GET", "/v2/keys/app/k0", "")
		br.r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("alice:apw")))
		w := &discardWriter{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			w.reset()
			h.ServeHTTP(w, br.reset())
			if w.status != http.StatusOK {
				b.Fatalf("status %d", w.status)
			}
		}
	}
	b.Run("off", run)
	authSetupB(b, m.URL)
	b.Run("on", run)
}

// authSetupB is authSetup for benchmarks.
func authSetupB(b *testing.B, base string) {
	for _, s := range []struct {
		want                     int
		method, path, cred, body string
	}{
		{201, "PUT", "/v2/auth/users/root", "", `{"user":"root","password":"rootpw"}`},
		{200, "PUT", "/v2/auth/enable", "", ""},
		{201, "PUT", "/v2/auth/roles/app", authRootCred, `{"role":"app","permissions":{"kv":{"read":["/app/*"],"write":["/app/*"]}}}`},
		{200, "PUT", "/v2/auth/users/alice", authRootCred, `{"user":"alice","password":"apw","roles":["app"]}`},
	} {
		req, _ := http.NewRequest(s.method, base+s.path, strings.NewReader(s.body))
		if s.cred != "" {
			req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(s.cred)))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != s.want {
			b.Fatalf("%s %s: %d", s.method, s.path, resp.StatusCode)
		}
	}
}

// TestAuthFollowerCatchesUpFromSnapshot stops a follower while auth is
// set up and the log is trimmed behind it: the snapshot it is sent must
// carry users, roles and the enabled flag.
func TestAuthFollowerCatchesUpFromSnapshot(t *testing.T) {
	c := startTestCluster(t, 3, func(cfg *config) {
		cfg.hooks.catchUpEntries, cfg.hooks.trimEvery = 5, 20
	})
	lead := c.leader()
	follower := (lead + 1) % 3
	c.stop(follower)
	authSetup(t, c.members[lead].url)
	for i := 0; i < 60; i++ {
		authMust(t, 201, "PUT", fmt.Sprintf("%s/v2/keys/app/k%03d", c.members[lead].url, i), "alice:apw", "value=1")
	}
	c.start(follower)
	c.waitReady()
	c.waitConverged()
	if c.srv(follower).snapshotIndex == 0 {
		t.Fatal("the follower caught up without a snapshot, though the leader's log was trimmed")
	}
	u := c.members[follower].url
	want := authMust(t, 200, "GET", c.members[lead].url+"/v2/auth/users", authRootCred, "")
	if got := authMust(t, 200, "GET", u+"/v2/auth/users", authRootCred, ""); got != want {
		t.Fatalf("follower's users %s, want %s", got, want)
	}
	authMust(t, 200, "GET", u+"/v2/keys/app/k000", "alice:apw", "")
	authMust(t, 401, "GET", u+"/v2/keys/app/k000", "", "")
	authMust(t, 401, "GET", u+"/v2/keys/app/k000", "alice:wrong", "")
	authMust(t, 401, "GET", u+"/v2/auth/users", "alice:apw", "")
}

// TestAuthLoad checks the state rebuilt from a store: one without auth
// records (a snapshot of an older build) has auth off; a damaged record
// is skipped while the enabled flag holds (auth fails closed).
func TestAuthLoad(t *testing.T) {
	s := authFuzzServer()
	s.store.Set(keysPrefix+"/k", false, "v", kv.TTLOptions{}, 0)
	s.loadAuth()
	if st := s.auth.state(); st.enabled || len(st.users) != 0 || len(st.roles) != 0 {
		t.Fatalf("state of a store without auth records: %+v", st)
	}
	for _, c := range []*authChange{
		{Op: authOpCreateUser, User: &authUser{User: "root", Password: mustHash(t, "r")}},
		{Op: authOpCreateUser, User: &authUser{User: "bob", Password: mustHash(t, "b")}},
		{Op: authOpEnable},
	} {
		if res := s.applyAuthChange(c, 0); res.err != nil {
			t.Fatal(res.err)
		}
	}
	s.store.Set(authUserKey("bob"), false, "{not json", kv.TTLOptions{}, 0)
	s.loadAuth()
	st := s.auth.state()
	if !st.enabled || len(st.users) != 1 || st.users["root"] == nil || len(st.roles) != 1 {
		t.Fatalf("state after a damaged record: enabled %v users %v roles %v", st.enabled, st.userNames(), st.roleNames())
	}
	r := httptest.NewRequest("GET", "/v2/keys/k", nil)
	r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("bob:b")))
	if st.allowKey(r, "/k", false) {
		t.Fatal("the user whose record is damaged got in")
	}
}

// TestAuthBackupRootOnly checks that with auth enabled GET /v2/backup (a
// copy of every key and password hash) is refused to guest and to a user
// without the root role, and given to root.
func TestAuthBackupRootOnly(t *testing.T) {
	m := startTestMember(t, nil)
	authSetup(t, m.URL)
	for _, cred := range []string{"", "alice:apw", "root:wrong"} {
		if code, body := authReq(t, "GET", m.URL+"/v2/backup", cred, ""); code != http.StatusUnauthorized {
			t.Errorf("GET /v2/backup as %q: %d %.100s, want 401", cred, code, body)
		}
	}
	if code, body := authReq(t, "GET", m.URL+"/v2/backup", authRootCred, ""); code != http.StatusOK || !strings.Contains(body, "member/snap") && !strings.Contains(body, "member/wal") {
		t.Errorf("GET /v2/backup as root: %d, %d bytes", code, len(body))
	}
}
