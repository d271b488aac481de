// v2 auth's replicated changes: the auth entries (authChange, tagged
// authEntryTag in the raft log), applying them in log order to the auth
// state and its records under /2 in the store, loading that state from the
// store after a snapshot or at start, and proposing a change.

package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"sync/atomic"

	"etcdlite/kv"
)

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
	ch := s.waits.register(c.ID, s.waitDeadline())
	if !s.inbox.propose(proposal{id: c.ID, data: data, ctx: ctx}) {
		s.waits.cancel(c.ID)
		return nil, errStopped
	}
	res, err := s.waits.await(ch)
	if err != nil {
		return nil, err
	}
	ar, ok := res.value.(*authResult)
	if !ok {
		return nil, errors.New("auth change applied without a result")
	}
	return ar, nil
}
