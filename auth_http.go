// The v2 auth API handlers (/v2/auth/...).

package main

// This file serves the v2 auth API (/v2/auth/enable, /v2/auth/users,
// /v2/auth/roles) and the answers etcd gives a request its credentials do
// not allow. Changes become authChange proposals (auth.go); reads answer
// from the member's current auth state.

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"etcdlite/kv"
)

// authURLPrefix is where the auth API is served.
const authURLPrefix = "/v2/auth"

// authRecheckWait bounds how long a refused request waits for the member
// to catch up before the refusal is final (long enough for a loaded
// machine; a member without a leader refuses after it).
const authRecheckWait = 5 * time.Second

// authBodyLimit is the largest auth API body read; a larger one is not
// valid JSON as far as the API is concerned.
const authBodyLimit = 1 << 20

// registerAuth adds the auth API to the client mux.
func (s *server) registerAuth(mux *http.ServeMux) {
	mux.HandleFunc(authURLPrefix+"/enable", s.handleAuthEnable)
	mux.HandleFunc(authURLPrefix+"/users", s.handleAuthUsers)
	mux.HandleFunc(authURLPrefix+"/users/", s.handleAuthUsers)
	mux.HandleFunc(authURLPrefix+"/roles", s.handleAuthRoles)
	mux.HandleFunc(authURLPrefix+"/roles/", s.handleAuthRoles)
}

// writeNoAuth answers a request of the members or auth API that its
// credentials do not allow.
func writeNoAuth(w http.ResponseWriter) {
	writeMembersError(w, http.StatusUnauthorized, "Insufficient credentials")
}

// writeKeyNoAuth answers a keys request that its credentials do not allow.
func (s *server) writeKeyNoAuth(w http.ResponseWriter) {
	s.writeError(w, kv.NewError(kv.EcodeUnauthorized, "Insufficient credentials", 0))
}

// authorizeKey reports whether r may do what it asks to key (the request
// path after /v2/keys).
func (s *server) authorizeKey(r *http.Request, key string, recursive bool) bool {
	st := s.auth.state()
	if st.allowKey(r, key, recursive) {
		return true
	}
	_, ok := s.authRecheck(r, st, func(st *authState) bool { return st.allowKey(r, key, recursive) })
	return ok
}

// logRefusal records a refused request: who (the user its credentials
// name, verified or not) and what.
func logRefusal(r *http.Request) {
	user := "(guest)"
	if h := r.Header.Get("Authorization"); h != "" {
		user = "(malformed credentials)"
		if u, _, ok := parseBasicAuth(h); ok {
			user = u
		}
	} else if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		user = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	slog.Warn("auth: request refused", "remote", r.RemoteAddr, "user", user, "method", r.Method, "path", r.URL.Path)
}

// authorizeWriteRoot reports whether r may change what only root may
// change (reads are open to all).
func (s *server) authorizeWriteRoot(r *http.Request) bool {
	_, ok := s.authorized(r, (*authState).allowWriteRoot)
	return ok
}

// authorized decides r with check against the auth state, and returns
// the state it decided on.
func (s *server) authorized(r *http.Request, check func(*authState, *http.Request) bool) (*authState, bool) {
	st := s.auth.state()
	if check(st, r) {
		return st, true
	}
	return s.authRecheck(r, st, func(st *authState) bool { return check(st, r) })
}

// authRecheck is asked when st refused r: a change made through another
// member (a user just created, a role just granted) may be committed but
// not applied here yet, so the member first catches up with what the
// cluster has committed (a ReadIndex, as for a quorum read) and decides
// again on the newer state, if there is one. A refusal costs that round
// trip; an allowed request none.
func (s *server) authRecheck(r *http.Request, st *authState, check func(*authState) bool) (*authState, bool) {
	// without a leader the refusal stands after the wait
	ctx, cancel := context.WithTimeout(r.Context(), authRecheckWait)
	defer cancel()
	if err := s.linearizableRead(ctx); err == nil {
		if now := s.auth.state(); now != st {
			st = now
			if check(st) {
				return st, true
			}
		}
	}
	logRefusal(r)
	return st, false
}

// writeAuthJSON answers with v as JSON, as etcd's encoder writes it.
func writeAuthJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeMembersError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeAuthError answers with an auth error, or a failure of the
// proposal as an internal error.
func writeAuthError(w http.ResponseWriter, err error) {
	if ae, ok := err.(*authError); ok {
		writeMembersError(w, ae.status, ae.msg)
		return
	}
	writeMembersError(w, http.StatusInternalServerError, err.Error())
}

// rootRequest admits a request of the root user's API: the method must be
// one of methods and the credentials root's, or the refusal is answered and
// ok is false; else the auth headers are set and st is the state to use.
func (s *server) rootRequest(w http.ResponseWriter, r *http.Request, methods ...string) (st *authState, ok bool) {
	if !allowMethod(w, r, methods...) {
		return nil, false
	}
	if st, ok = s.authorized(r, (*authState).allowRoot); !ok {
		writeNoAuth(w)
		return nil, false
	}
	s.authHeaders(w)
	return st, true
}

// authHeaders sets the headers every allowed auth answer has.
func (s *server) authHeaders(w http.ResponseWriter) {
	h := w.Header()
	h["X-Etcd-Cluster-Id"] = s.clusterIDHeader
	h["Content-Type"] = jsonContentType
}

// handleAuthEnable serves /v2/auth/enable.
func (s *server) handleAuthEnable(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, "GET", "PUT", "DELETE") {
		return
	}
	st, ok := s.authorized(r, (*authState).allowWriteRoot)
	if !ok {
		writeNoAuth(w)
		return
	}
	s.authHeaders(w)
	switch r.Method {
	case http.MethodGet:
		writeAuthJSON(w, http.StatusOK, struct {
			Enabled bool `json:"enabled"`
		}{st.enabled})
	case http.MethodPut:
		s.authChangeAndAnswer(w, r, &authChange{Op: authOpEnable}, nil)
	case http.MethodDelete:
		s.authChangeAndAnswer(w, r, &authChange{Op: authOpDisable}, nil)
	}
}

// authPathName splits an auth API path into its pieces: ok with name ""
// for the collection itself, ok with a name for one member of it, not ok
// for anything deeper.
func authPathName(p string) (name string, ok bool) {
	pieces := strings.Split(path.Clean(p[len(authURLPrefix):]), "/")
	switch len(pieces) {
	case 2:
		return "", true
	case 3:
		return pieces[2], true
	}
	return "", false
}

// authChangeAndAnswer proposes c and answers with what applying it gave:
// answer writes a success (nil: an empty 200).
func (s *server) authChangeAndAnswer(w http.ResponseWriter, r *http.Request, c *authChange, answer func(*authResult)) {
	res, err := s.proposeAuth(r.Context(), c)
	switch {
	case err != nil:
		writeAuthError(w, err)
	case res.err != nil:
		writeAuthError(w, res.err)
	case answer != nil:
		answer(res)
	}
}

// readAuthBody decodes an auth API body into v.
func readAuthBody(r *http.Request, v any) bool {
	return json.NewDecoder(io.LimitReader(r.Body, authBodyLimit)).Decode(v) == nil
}

// userWithRoles is a user with its roles spelled out, as GET answers.
type userWithRoles struct {
	User  string     `json:"user"`
	Roles []authRole `json:"roles,omitempty"`
}

// handleAuthUsers serves /v2/auth/users and /v2/auth/users/<name>.
func (s *server) handleAuthUsers(w http.ResponseWriter, r *http.Request) {
	name, ok := authPathName(r.URL.Path)
	if !ok {
		writeMembersError(w, http.StatusBadRequest, "Invalid path")
		return
	}
	if name == "" {
		st, ok := s.rootRequest(w, r, "GET")
		if !ok {
			return
		}
		var list struct {
			Users []userWithRoles `json:"users"`
		}
		for _, n := range st.userNames() {
			u, _ := st.user(n)
			uw := userWithRoles{User: u.User}
			for _, rn := range u.Roles {
				if role, err := st.role(rn); err == nil {
					uw.Roles = append(uw.Roles, role)
				}
			}
			list.Users = append(list.Users, uw)
		}
		writeAuthJSON(w, http.StatusOK, list)
		return
	}
	st, ok := s.rootRequest(w, r, "GET", "PUT", "DELETE")
	if !ok {
		return
	}
	switch r.Method {
	case http.MethodGet:
		u, aerr := st.user(name)
		if aerr != nil {
			writeAuthError(w, aerr)
			return
		}
		uw := userWithRoles{User: u.User}
		for _, rn := range u.Roles {
			role, aerr := st.role(rn)
			if aerr != nil {
				writeAuthError(w, aerr)
				return
			}
			uw.Roles = append(uw.Roles, role)
		}
		writeAuthJSON(w, http.StatusOK, uw)
	case http.MethodDelete:
		s.authChangeAndAnswer(w, r, &authChange{Op: authOpDeleteUser, Name: name}, nil)
	case http.MethodPut:
		var in authUser
		if !readAuthBody(r, &in) {
			writeMembersError(w, http.StatusBadRequest, "Invalid JSON in request body.")
			return
		}
		if in.User != name {
			writeMembersError(w, http.StatusBadRequest, "User JSON name does not match the name in the URL")
			return
		}
		op := authOpUpdateUser
		if len(in.Grant) == 0 && len(in.Revoke) == 0 {
			op = authOpCreateOrUpdateUser
			if len(in.Roles) != 0 {
				op = authOpCreateUser
			}
		} else if len(in.Roles) != 0 {
			writeMembersError(w, http.StatusBadRequest, "User JSON contains both roles and grant/revoke")
			return
		}
		if in.Password != "" {
			h, err := hashPassword(in.Password)
			if err != nil {
				writeAuthError(w, err)
				return
			}
			in.Password = h
		}
		s.authChangeAndAnswer(w, r, &authChange{Op: op, Name: name, User: &in}, func(res *authResult) {
			out := *res.user
			out.Password = ""
			status := http.StatusOK
			if res.created {
				status = http.StatusCreated
			}
			writeAuthJSON(w, status, out)
		})
	}
}

// handleAuthRoles serves /v2/auth/roles and /v2/auth/roles/<name>.
func (s *server) handleAuthRoles(w http.ResponseWriter, r *http.Request) {
	name, ok := authPathName(r.URL.Path)
	if !ok {
		writeMembersError(w, http.StatusBadRequest, "Invalid path")
		return
	}
	if name == "" {
		st, ok := s.rootRequest(w, r, "GET")
		if !ok {
			return
		}
		list := struct {
			Roles []authRole `json:"roles"`
		}{Roles: []authRole{}}
		for _, n := range st.roleNames() {
			if role, err := st.role(n); err == nil {
				list.Roles = append(list.Roles, role)
			}
		}
		writeAuthJSON(w, http.StatusOK, list)
		return
	}
	st, ok := s.rootRequest(w, r, "GET", "PUT", "DELETE")
	if !ok {
		return
	}
	switch r.Method {
	case http.MethodGet:
		role, aerr := st.role(name)
		if aerr != nil {
			writeAuthError(w, aerr)
			return
		}
		writeAuthJSON(w, http.StatusOK, role)
	case http.MethodDelete:
		s.authChangeAndAnswer(w, r, &authChange{Op: authOpDeleteRole, Name: name}, nil)
	case http.MethodPut:
		var in authRole
		if !readAuthBody(r, &in) {
			writeMembersError(w, http.StatusBadRequest, "Invalid JSON in request body.")
			return
		}
		if in.Role != name {
			writeMembersError(w, http.StatusBadRequest, "Role JSON name does not match the name in the URL")
			return
		}
		op := authOpCreateRole
		if !in.Grant.isEmpty() || !in.Revoke.isEmpty() {
			if !in.Permissions.isEmpty() {
				writeMembersError(w, http.StatusBadRequest, "Role JSON contains both permissions and grant/revoke")
				return
			}
			op = authOpUpdateRole
		}
		s.authChangeAndAnswer(w, r, &authChange{Op: op, Name: name, Role: &in}, func(res *authResult) {
			status := http.StatusOK
			if res.created {
				status = http.StatusCreated
			}
			writeAuthJSON(w, status, res.role)
		})
	}
}
