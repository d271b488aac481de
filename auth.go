// v2 auth: the users, roles and permissions, the permission checks of a
// request, passwords and the credential cache (details below); the
// replicated changes are in auth_apply.go, the HTTP handlers in auth_http.go.

package main

// This file owns the v2 auth state: users, roles and whether auth is on,
// the permission matcher, the password hashes and the credential checks
// with their cache. The changes to that state are raft entries tagged
// authEntryTag, applied in log order by the raft loop (auth_apply.go).
//
// The state lives in the store under /2 as etcd v2 kept it (/2/enabled,
// /2/users/<name>, /2/roles/<name>, each a JSON record), written only by
// applying auth entries, so snapshots carry it and every member rebuilds
// the same state from them. The raft loop keeps a decoded, immutable copy
// (authState) that request handlers read without locks; each change
// replaces it, and with it the credential cache.

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// authEntryTag is the first byte of a raft entry that changes the auth
// state; a store request (kv.Request) starts with its method, never this.
const authEntryTag = 'A'

// The store paths of the auth state.
const (
	authStorePrefix = "/2"
	authEnabledKey  = authStorePrefix + "/enabled"
	authUsersDir    = authStorePrefix + "/users"
	authRolesDir    = authStorePrefix + "/roles"
)

// The built-in names.
const (
	rootUserName  = "root"
	rootRoleName  = "root"
	guestRoleName = "guest"
)

// pbkdf2Iterations is the PBKDF2-SHA256 work factor of new password
// hashes (the stored hash says its own, so it can change later).
const pbkdf2Iterations = 100000

// noUserHash is what the password is checked against (and the result
// ignored) when the user named does not exist, so that a refusal costs the
// same time either way. It is the hash of "no such user".
const noUserHash = "pbkdf2-sha256$100000$ZXRjZGxpdGUtbm91c2VyIQ$NraTvKTpoQ3fEkblShyMj7osPLcL1Pfv2wpTjiOJub4"

// authCacheMax bounds the credential cache; once full it starts again.
const authCacheMax = 4096

// authUser is a user as the auth API's bodies and the store hold it. In
// the store Password is the hash; in a request it is the new password.
type authUser struct {
	User     string   `json:"user"`
	Password string   `json:"password,omitempty"`
	Roles    []string `json:"roles"`
	Grant    []string `json:"grant,omitempty"`
	Revoke   []string `json:"revoke,omitempty"`
}

// authRW is a permission list: key patterns that may be read and written.
type authRW struct {
	Read  []string `json:"read"`
	Write []string `json:"write"`
}

// authPerms holds the key-value permissions of a role.
type authPerms struct {
	KV authRW `json:"kv"`
}

// authRole is a role as the auth API's bodies and the store hold it.
type authRole struct {
	Role        string     `json:"role"`
	Permissions authPerms  `json:"permissions"`
	Grant       *authPerms `json:"grant,omitempty"`
	Revoke      *authPerms `json:"revoke,omitempty"`
}

// rootRole is the built-in root role: everything.
var rootRole = authRole{Role: rootRoleName, Permissions: authPerms{KV: authRW{Read: []string{"/*"}, Write: []string{"/*"}}}}

// guestRoleDefault is the guest role created when auth is first enabled:
// the whole key space, as before auth.
var guestRoleDefault = authRole{Role: guestRoleName, Permissions: authPerms{KV: authRW{Read: []string{"/*"}, Write: []string{"/*"}}}}

// authError is a refusal of the auth API: an HTTP status and a message.
type authError struct {
	status int
	msg    string
}

// Error implements error.
func (e *authError) Error() string { return e.msg }

// authErrorf is an auth store error, which etcd prefixes with "auth: ".
func authErrorf(status int, format string, args ...any) *authError {
	return &authError{status: status, msg: "auth: " + fmt.Sprintf(format, args...)}
}

// authState is one version of the auth state. It is never modified once
// published; a change makes a new one.
type authState struct {
	enabled bool
	users   map[string]*authUser // by name, as stored (roles as stored, no root attached)
	roles   map[string]*authRole // by name, root not among them
	cache   *credCache           // verified credentials of this version
}

// newAuthState is the state of a store without auth records.
func newAuthState() *authState {
	return &authState{users: map[string]*authUser{}, roles: map[string]*authRole{}, cache: newCredCache()}
}

// clone is a copy of st to change (records are shared: they are replaced,
// never modified), with an empty cache.
func (st *authState) clone() *authState {
	n := &authState{enabled: st.enabled, users: make(map[string]*authUser, len(st.users)),
		roles: make(map[string]*authRole, len(st.roles)), cache: newCredCache()}
	for k, v := range st.users {
		n.users[k] = v
	}
	for k, v := range st.roles {
		n.roles[k] = v
	}
	return n
}

// user is the named user as etcd reads it: the root user always has the
// root role.
func (st *authState) user(name string) (authUser, *authError) {
	u, ok := st.users[name]
	if !ok {
		return authUser{}, authErrorf(http.StatusNotFound, "User %s does not exist.", name)
	}
	out := *u
	if out.User == rootUserName && !containsString(out.Roles, rootRoleName) {
		out.Roles = append(out.Roles[:len(out.Roles):len(out.Roles)], rootRoleName)
	}
	return out, nil
}

// role is the named role; root is built in.
func (st *authState) role(name string) (authRole, *authError) {
	r, ok := st.lookupRole(name)
	if !ok {
		return authRole{}, authErrorf(http.StatusNotFound, "Role %s does not exist.", name)
	}
	return *r, nil
}

// lookupRole is role for the permission checks: no copy, no error.
func (st *authState) lookupRole(name string) (*authRole, bool) {
	if name == rootRoleName {
		return &rootRole, true
	}
	r, ok := st.roles[name]
	return r, ok
}

// userNames are the users' names, sorted, as etcd lists them: without
// those that begin with "_" (hidden nodes in etcd's store).
func (st *authState) userNames() []string {
	names := make([]string, 0, len(st.users))
	for n := range st.users {
		if !strings.HasPrefix(n, "_") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// roleNames are the roles' names, root included, sorted, without those
// that begin with "_" (as userNames).
func (st *authState) roleNames() []string {
	names := make([]string, 0, len(st.roles)+1)
	names = append(names, rootRoleName)
	for n := range st.roles {
		if n != rootRoleName && !strings.HasPrefix(n, "_") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// containsString reports whether ss holds s.
func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// Permissions

// simpleMatch reports whether pattern grants key: a pattern ending in '*'
// is a prefix, any other must equal the key. An empty pattern grants
// nothing.
func simpleMatch(pattern, key string) bool {
	if pattern == "" {
		return false
	}
	if pattern[len(pattern)-1] == '*' {
		return strings.HasPrefix(key, pattern[:len(pattern)-1])
	}
	return key == pattern
}

// prefixMatch reports whether pattern grants key and everything under it
// (a recursive request): only a prefix pattern can.
func prefixMatch(pattern, key string) bool {
	if pattern == "" || pattern[len(pattern)-1] != '*' {
		return false
	}
	return strings.HasPrefix(key, pattern[:len(pattern)-1])
}

// hasAccess reports whether the list for write (or read) grants key,
// recursively when recursive is set.
func (rw *authRW) hasAccess(key string, write, recursive bool) bool {
	list := rw.Read
	if write {
		list = rw.Write
	}
	for _, p := range list {
		if recursive && prefixMatch(p, key) || !recursive && simpleMatch(p, key) {
			return true
		}
	}
	return false
}

// hasKeyAccess reports whether the role grants key.
func (r *authRole) hasKeyAccess(key string, write, recursive bool) bool {
	if r.Role == rootRoleName {
		return true
	}
	return r.Permissions.KV.hasAccess(key, write, recursive)
}

// permSet is a permission list's patterns as a set.
type permSet map[string]bool

// newPermSet is the set of list's patterns.
func newPermSet(list []string) permSet {
	s := permSet{}
	for _, p := range list {
		s[p] = true
	}
	return s
}

// sorted is the set's patterns in order.
func (s permSet) sorted() []string {
	out := make([]string, 0, len(s))
	for p := range s {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// grant adds n's patterns to p; one already there is a conflict.
func (p authPerms) grant(n *authPerms) (authPerms, *authError) {
	var g authRW
	if n != nil {
		g = n.KV
	}
	read, write := newPermSet(p.KV.Read), newPermSet(p.KV.Write)
	for _, x := range g.Read {
		if read[x] {
			return authPerms{}, authErrorf(http.StatusConflict, "Granting duplicate read permission %s", x)
		}
		read[x] = true
	}
	for _, x := range g.Write {
		if write[x] {
			return authPerms{}, authErrorf(http.StatusConflict, "Granting duplicate write permission %s", x)
		}
		write[x] = true
	}
	return authPerms{KV: authRW{Read: read.sorted(), Write: write.sorted()}}, nil
}

// revoke removes n's patterns from p; one not there is ignored.
func (p authPerms) revoke(n *authPerms) authPerms {
	var r authRW
	if n != nil {
		r = n.KV
	}
	read, write := newPermSet(p.KV.Read), newPermSet(p.KV.Write)
	for _, x := range r.Read {
		delete(read, x)
	}
	for _, x := range r.Write {
		delete(write, x)
	}
	return authPerms{KV: authRW{Read: read.sorted(), Write: write.sorted()}}
}

// isEmpty reports whether p grants or revokes nothing.
func (p *authPerms) isEmpty() bool {
	return p == nil || len(p.KV.Read) == 0 && len(p.KV.Write) == 0
}

// ---------------------------------------------------------------------------
// Passwords

// hashPassword returns a salted PBKDF2-SHA256 hash of password, as
// "pbkdf2-sha256$<iterations>$<salt>$<key>" (base64).
func hashPassword(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key, err := pbkdf2.Key(sha256.New, password, salt, pbkdf2Iterations, 32)
	if err != nil {
		return "", fmt.Errorf("password hash: %w", err)
	}
	enc := base64.RawStdEncoding
	return "pbkdf2-sha256$" + strconv.Itoa(pbkdf2Iterations) + "$" + enc.EncodeToString(salt) + "$" + enc.EncodeToString(key), nil
}

// checkPassword reports whether password matches hash, comparing in
// constant time. A malformed hash matches nothing.
func checkPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" {
		return false
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 || iter > 10_000_000 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[2])
	want, err2 := enc.DecodeString(parts[3])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 64 {
		return false
	}
	got, err := pbkdf2.Key(sha256.New, password, salt, iter, len(want))
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(got, want) == 1
}

// parseBasicAuth parses an Authorization header of the Basic scheme into
// a user name and a password, as net/http's Request.BasicAuth does.
func parseBasicAuth(h string) (user, password string, ok bool) {
	const prefix = "Basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", "", false
	}
	b, err := base64.StdEncoding.DecodeString(h[len(prefix):])
	if err != nil {
		return "", "", false
	}
	user, password, ok = strings.Cut(string(b), ":")
	if !ok {
		return "", "", false
	}
	return user, password, true
}

// credCache remembers which Authorization headers verified as which user,
// so that a client's repeated requests cost no password hash. It belongs
// to one authState and so is dropped with it at every change. Only
// successful checks are kept, under a SHA-256 of the header.
type credCache struct {
	mu sync.RWMutex
	m  map[[32]byte]string
}

// newCredCache is an empty cache.
func newCredCache() *credCache { return &credCache{m: map[[32]byte]string{}} }

// get is the user the header with hash k verified as.
func (c *credCache) get(k [32]byte) (string, bool) {
	c.mu.RLock()
	u, ok := c.m[k]
	c.mu.RUnlock()
	return u, ok
}

// put records that the header with hash k verified as user.
func (c *credCache) put(k [32]byte, user string) {
	c.mu.Lock()
	if len(c.m) >= authCacheMax {
		c.m = map[[32]byte]string{}
	}
	c.m[k] = user
	c.mu.Unlock()
}

// basicUser is the user an Authorization header authenticates, or false
// when it is malformed, names no user or has the wrong password.
func (st *authState) basicUser(header string) (authUser, bool) {
	k := sha256.Sum256([]byte(header))
	if name, ok := st.cache.get(k); ok {
		u, err := st.user(name)
		return u, err == nil
	}
	name, password, ok := parseBasicAuth(header)
	if !ok {
		return authUser{}, false
	}
	u, aerr := st.user(name)
	if aerr != nil {
		// as long as for a user that exists: the time of a refusal does
		// not tell which names exist
		checkPassword(noUserHash, password)
		return authUser{}, false
	}
	if !checkPassword(u.Password, password) {
		return authUser{}, false
	}
	st.cache.put(k, name)
	return u, true
}

// requestUser is who a request is made by: the user of its Basic
// credentials; without an Authorization header the common name of its
// verified client certificate when that names a user; otherwise nobody
// (guest is true). ok is false when the credentials given do not verify.
func (st *authState) requestUser(r *http.Request) (u authUser, guest, ok bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.PeerCertificates) > 0 {
			if cu, err := st.user(r.TLS.PeerCertificates[0].Subject.CommonName); err == nil {
				return cu, false, true
			}
		}
		return authUser{}, true, true
	}
	u, ok = st.basicUser(h)
	return u, false, ok
}

// allowKey reports whether r may read (GET, HEAD) or write key, the
// request path after /v2/keys, recursively when recursive is set.
func (st *authState) allowKey(r *http.Request, key string, recursive bool) bool {
	if !st.enabled {
		return true
	}
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	u, guest, ok := st.requestUser(r)
	if !ok {
		return false
	}
	if guest {
		// as etcd: the guest role is matched as for a single key even
		// for a recursive request
		g, ok := st.lookupRole(guestRoleName)
		return ok && g.hasKeyAccess(key, write, false)
	}
	for _, name := range u.Roles {
		role, ok := st.lookupRole(name)
		if !ok {
			continue
		}
		if role.hasKeyAccess(key, write, recursive) {
			return true
		}
	}
	return false
}

// allowRoot reports whether r is made by a holder of the root role (or
// auth is off).
func (st *authState) allowRoot(r *http.Request) bool {
	if !st.enabled {
		return true
	}
	u, guest, ok := st.requestUser(r)
	if !ok || guest {
		return false
	}
	return containsString(u.Roles, rootRoleName)
}

// allowWriteRoot is allowRoot for anything but GET and HEAD.
func (st *authState) allowWriteRoot(r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	return st.allowRoot(r)
}
