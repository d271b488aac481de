// v2 auth: users, roles, permissions and their replicated changes (details below).

package main

// This file owns the v2 auth state: users, roles and whether auth is on,
// the permission matcher, the replicated changes to that state (raft
// entries tagged authEntryTag, applied in log order by the raft loop), the
// password hashes and the credential checks with their cache.
//
// The state lives in the store under /2 as etcd v2 kept it (/2/enabled,
// /2/users/<name>, /2/roles/<name>, each a JSON record), written only by
// applying auth entries, so snapshots carry it and every member rebuilds
// the same state from them. The raft loop keeps a decoded, immutable copy
// (authState) that request handlers read without locks; each change
// replaces it, and with it the credential cache.

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"etcdlite/kv"
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

// ---------------------------------------------------------------------------
// Replicated changes

// The operations of an auth entry.
const (
	authOpCreateUser         = "createUser"         // create with the roles given
	authOpCreateOrUpdateUser = "createOrUpdateUser" // create, or change the password of an existing user
	authOpUpdateUser         = "updateUser"         // grant, revoke, password
	authOpDeleteUser         = "deleteUser"
	authOpCreateRole         = "createRole"
	authOpUpdateRole         = "updateRole" // grant, revoke
	authOpDeleteRole         = "deleteRole"
	authOpEnable             = "enable"
	authOpDisable            = "disable"
)

// authChange is one change to the auth state as it travels through the
// raft log (JSON after authEntryTag). A password in it is already hashed.
type authChange struct {
	ID   uint64    `json:"id"`
	Op   string    `json:"op"`
	Name string    `json:"name,omitempty"`
	User *authUser `json:"user,omitempty"`
	Role *authRole `json:"role,omitempty"`
}

// authResult is what applying an authChange produced.
type authResult struct {
	user    *authUser
	role    *authRole
	created bool
	err     *authError
}

// encodeAuthChange is c as a raft entry.
func encodeAuthChange(c *authChange) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode auth change: %w", err)
	}
	return append([]byte{authEntryTag}, b...), nil
}

// decodeAuthChange reads an entry made by encodeAuthChange.
func decodeAuthChange(data []byte) (*authChange, error) {
	if len(data) == 0 || data[0] != authEntryTag {
		return nil, errors.New("not an auth entry")
	}
	var c authChange
	if err := json.Unmarshal(data[1:], &c); err != nil {
		return nil, fmt.Errorf("decode auth change: %w", err)
	}
	return &c, nil
}

// authStore is a member's auth state: the published version, read by
// handlers, and changed by the raft loop only.
type authStore struct {
	cur atomic.Pointer[authState]
}

// state is the current version.
func (a *authStore) state() *authState {
	if st := a.cur.Load(); st != nil {
		return st
	}
	// nothing loaded or applied yet: auth is off
	a.cur.CompareAndSwap(nil, newAuthState())
	return a.cur.Load()
}

// applyAuthEntry applies an auth entry (raft loop only) and wakes its
// proposer.
func (s *server) applyAuthEntry(data []byte, now int64) error {
	c, err := decodeAuthChange(data)
	if err != nil {
		return err
	}
	res := s.applyAuthChange(c, now)
	s.waits.trigger(c.ID, applyResult{value: res})
	return nil
}

// applyAuthChange carries out c against the current state, writes what
// changed to the store and publishes the new state. It is deterministic:
// every member gets the same result from the same state.
func (s *server) applyAuthChange(c *authChange, now int64) *authResult {
	old := s.auth.state()
	st := old.clone()
	res := &authResult{}
	var writes []func() *kv.Error
	setUser := func(u *authUser) {
		st.users[u.User] = u
		writes = append(writes, func() *kv.Error { return authStoreSet(s.store, authUserKey(u.User), u, now) })
	}
	setRole := func(r *authRole) {
		st.roles[r.Role] = r
		writes = append(writes, func() *kv.Error { return authStoreSet(s.store, authRoleKey(r.Role), r, now) })
	}
	switch c.Op {
	case authOpCreateUser, authOpCreateOrUpdateUser, authOpUpdateUser:
		if c.User == nil {
			res.err = &authError{status: http.StatusBadRequest, msg: "auth: malformed change"}
			break
		}
		in := *c.User
		_, exists := st.users[in.User]
		switch {
		case c.Op == authOpCreateUser || c.Op == authOpCreateOrUpdateUser && !exists:
			if in.Password == "" {
				res.err = authErrorf(http.StatusBadRequest, "Cannot create user %s with an empty password", in.User)
				break
			}
			if exists {
				res.err = authErrorf(http.StatusConflict, "User %s already exists.", in.User)
				break
			}
			if in.User == rootUserName && !containsString(in.Roles, rootRoleName) {
				in.Roles = append(in.Roles, rootRoleName)
			}
			in.Grant, in.Revoke = nil, nil
			u := in
			setUser(&u)
			res.user, res.created = &in, c.Op == authOpCreateOrUpdateUser
		default:
			cur, aerr := st.user(in.User)
			if aerr != nil {
				res.err = aerr
				break
			}
			nu, aerr := mergeUser(cur, in)
			if aerr != nil {
				res.err = aerr
				break
			}
			if reflect.DeepEqual(cur, nu) {
				res.err = authErrorf(http.StatusBadRequest, "User not updated. Use grant/revoke/password to update the user.")
				break
			}
			setUser(&nu)
			res.user = &nu
		}
	case authOpDeleteUser:
		if st.enabled && c.Name == rootUserName {
			res.err = authErrorf(http.StatusForbidden, "Cannot delete root user while auth is enabled.")
			break
		}
		if _, ok := st.users[c.Name]; !ok {
			res.err = authErrorf(http.StatusNotFound, "User %s does not exist", c.Name)
			break
		}
		delete(st.users, c.Name)
		name := c.Name
		writes = append(writes, func() *kv.Error { return authStoreDelete(s.store, authUserKey(name), now) })
	case authOpCreateRole:
		if c.Role == nil {
			res.err = &authError{status: http.StatusBadRequest, msg: "auth: malformed change"}
			break
		}
		if c.Role.Role == rootRoleName {
			res.err = authErrorf(http.StatusForbidden, "Cannot modify role %s: is root role.", c.Role.Role)
			break
		}
		if _, ok := st.roles[c.Role.Role]; ok {
			res.err = authErrorf(http.StatusConflict, "Role %s already exists.", c.Role.Role)
			break
		}
		r := *c.Role
		setRole(&r)
		res.role, res.created = c.Role, true
	case authOpUpdateRole:
		if c.Role == nil {
			res.err = &authError{status: http.StatusBadRequest, msg: "auth: malformed change"}
			break
		}
		if c.Role.Role == rootRoleName {
			res.err = authErrorf(http.StatusForbidden, "Cannot modify role %s: is root role.", c.Role.Role)
			break
		}
		cur, aerr := st.role(c.Role.Role)
		if aerr != nil {
			res.err = aerr
			break
		}
		perms, aerr := cur.Permissions.grant(c.Role.Grant)
		if aerr != nil {
			res.err = aerr
			break
		}
		nr := authRole{Role: cur.Role, Permissions: perms.revoke(c.Role.Revoke)}
		if reflect.DeepEqual(cur, nr) {
			res.err = authErrorf(http.StatusBadRequest, "Role not updated. Use grant/revoke to update the role.")
			break
		}
		setRole(&nr)
		res.role = &nr
	case authOpDeleteRole:
		if c.Name == rootRoleName {
			res.err = authErrorf(http.StatusForbidden, "Cannot modify role %s: is root role.", c.Name)
			break
		}
		if _, ok := st.roles[c.Name]; !ok {
			res.err = authErrorf(http.StatusNotFound, "Role %s doesn't exist.", c.Name)
			break
		}
		delete(st.roles, c.Name)
		name := c.Name
		writes = append(writes, func() *kv.Error { return authStoreDelete(s.store, authRoleKey(name), now) })
	case authOpEnable:
		if st.enabled {
			res.err = authErrorf(http.StatusConflict, "already enabled")
			break
		}
		if _, ok := st.users[rootUserName]; !ok {
			res.err = authErrorf(http.StatusConflict, "No root user available, please create one")
			break
		}
		if _, ok := st.roles[guestRoleName]; !ok {
			g := guestRoleDefault
			setRole(&g)
		}
		st.enabled = true
		writes = append(writes, func() *kv.Error { return authStoreSetRaw(s.store, authEnabledKey, "true", now) })
	case authOpDisable:
		if !st.enabled {
			res.err = authErrorf(http.StatusConflict, "already disabled")
			break
		}
		st.enabled = false
		writes = append(writes, func() *kv.Error { return authStoreSetRaw(s.store, authEnabledKey, "false", now) })
	default:
		res.err = &authError{status: http.StatusBadRequest, msg: "auth: unknown change " + strconv.Quote(c.Op)}
	}
	if res.err != nil {
		return res
	}
	if _, err := s.store.Lookup(authStorePrefix, false, false, 0); err != nil {
		// the first change ever: etcd makes the directories and the flag
		// first (four indexes), and so does this, to keep the same indexes
		writes = append([]func() *kv.Error{func() *kv.Error { return authEnsureDirs(s.store, now) }}, writes...)
	}
	for _, w := range writes {
		if kerr := w(); kerr != nil {
			// the store refused a write of the auth state: keep the old
			// state on every member alike (the store is deterministic)
			slog.Error("auth: store write failed", "op", c.Op, "err", kerr)
			return &authResult{err: &authError{status: http.StatusInternalServerError, msg: kerr.Error()}}
		}
	}
	s.auth.cur.Store(st)
	slog.Info("auth: changed", "op", c.Op, "name", c.Name)
	return res
}

// mergeUser applies in's password, grants and revokes to cur.
func mergeUser(cur, in authUser) (authUser, *authError) {
	out := authUser{User: cur.User, Password: cur.Password}
	if in.Password != "" {
		out.Password = in.Password
	}
	roles := newPermSet(cur.Roles)
	for _, g := range in.Grant {
		if roles[g] {
			return authUser{}, authErrorf(http.StatusConflict, "Granting duplicate role %s for user %s", g, in.User)
		}
		roles[g] = true
	}
	for _, r := range in.Revoke {
		if !roles[r] {
			return authUser{}, authErrorf(http.StatusConflict, "Revoking ungranted role %s for user %s", r, in.User)
		}
		delete(roles, r)
	}
	out.Roles = roles.sorted()
	return out, nil
}

// authUserKey is the store key of a user: names may hold anything, so
// they are hex-encoded.
func authUserKey(name string) string { return authUsersDir + "/" + hex.EncodeToString([]byte(name)) }

// authRoleKey is the store key of a role.
func authRoleKey(name string) string { return authRolesDir + "/" + hex.EncodeToString([]byte(name)) }

// authEnsureDirs creates /2, /2/users, /2/roles and /2/enabled (false).
func authEnsureDirs(store *kv.Store, now int64) *kv.Error {
	for _, d := range []string{authStorePrefix, authUsersDir, authRolesDir} {
		if _, kerr := store.Set(d, true, "", kv.TTLOptions{}, now); kerr != nil {
			return kerr
		}
	}
	return authStoreSetRaw(store, authEnabledKey, "false", now)
}

// authStoreSet writes v as JSON at key in the store.
func authStoreSet(store *kv.Store, key string, v any, now int64) *kv.Error {
	b, err := json.Marshal(v)
	if err != nil {
		return kv.NewError(kv.EcodeRaftInternal, err.Error(), 0)
	}
	return authStoreSetRaw(store, key, string(b), now)
}

// authStoreSetRaw writes value at key in the store.
func authStoreSetRaw(store *kv.Store, key, value string, now int64) *kv.Error {
	_, kerr := store.Set(key, false, value, kv.TTLOptions{}, now)
	return kerr
}

// authStoreDelete removes the file at key from the store.
func authStoreDelete(store *kv.Store, key string, now int64) *kv.Error {
	_, kerr := store.Delete(key, false, false, now)
	return kerr
}

// loadAuth rebuilds the auth state from the store (after a snapshot was
// installed or recovered). A record that does not decode is skipped and
// logged: an enabled flag still holds, so auth fails closed.
func (s *server) loadAuth() {
	st := newAuthState()
	if ev, err := s.store.Lookup(authEnabledKey, false, false, 0); err == nil && ev.Node != nil {
		st.enabled = ev.Node.Value == "true"
	}
	if ev, err := s.store.Lookup(authUsersDir, true, false, 0); err == nil && ev.Node != nil {
		for _, n := range ev.Node.Nodes {
			var u authUser
			if err := json.Unmarshal([]byte(n.Value), &u); err != nil || u.User == "" {
				slog.Error("auth: a user record does not decode; skipped", "key", n.Key, "err", err)
				continue
			}
			st.users[u.User] = &u
		}
	}
	if ev, err := s.store.Lookup(authRolesDir, true, false, 0); err == nil && ev.Node != nil {
		for _, n := range ev.Node.Nodes {
			var r authRole
			if err := json.Unmarshal([]byte(n.Value), &r); err != nil || r.Role == "" {
				slog.Error("auth: a role record does not decode; skipped", "key", n.Key, "err", err)
				continue
			}
			st.roles[r.Role] = &r
		}
	}
	s.auth.cur.Store(st)
}

// proposeAuth sends c through raft and waits until it is applied.
func (s *server) proposeAuth(ctx context.Context, c *authChange) (*authResult, error) {
	if err := s.writable(); err != nil {
		return nil, err
	}
	c.ID = nextRequestID()
	data, err := encodeAuthChange(c)
	if err != nil {
		return nil, err
	}
	ch := s.waits.register(c.ID, time.Now().Add(s.requestTimeout()))
	if !s.inbox.propose(proposal{id: c.ID, data: data, ctx: ctx}) {
		s.waits.cancel(c.ID)
		return nil, errStopped
	}
	res, err := s.await(ctx, c.ID, ch, &s.waits)
	if err != nil {
		return nil, err
	}
	ar, ok := res.value.(*authResult)
	if !ok {
		return nil, errors.New("auth change applied without a result")
	}
	return ar, nil
}
