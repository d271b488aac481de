// Fuzz tests of the auth API's input.

package main

// Fuzz targets of the auth code: the permission matcher, the Basic auth
// header parser (against net/http's) and the auth API's user and role
// bodies through the replicated apply (whose state must survive a reload
// from the store, as after a snapshot). Seeds: testdata/fuzz/Fuzz*/.

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"etcdlite/kv"
)

// FuzzAuthMatch checks the matcher's laws on any pattern and key.
func FuzzAuthMatch(f *testing.F) {
	for _, s := range [][2]string{{"/foo", "/foo"}, {"/foo/*", "/foo/bar"}, {"*", "/"}, {"/foo*", "/foobar"}, {"", ""}, {"/a", "/a/"}} {
		f.Add(s[0], s[1], "/x")
	}
	f.Fuzz(func(t *testing.T, pattern, key, suffix string) {
		simple, prefix := simpleMatch(pattern, key), prefixMatch(pattern, key)
		if prefix && !simple {
			t.Fatalf("prefixMatch(%q, %q) without simpleMatch", pattern, key)
		}
		if prefix && !prefixMatch(pattern, key+suffix) {
			t.Fatalf("prefixMatch(%q, %q) but not for %q", pattern, key, key+suffix)
		}
		if !strings.HasSuffix(pattern, "*") && simple != (pattern != "" && pattern == key) {
			t.Fatalf("exact pattern %q against %q: %v", pattern, key, simple)
		}
		if strings.HasSuffix(pattern, "*") && simple != prefix {
			t.Fatalf("prefix pattern %q against %q: simple %v, recursive %v", pattern, key, simple, prefix)
		}
		if !simpleMatch("*", key) || !prefixMatch("*", key) {
			t.Fatalf("* does not match %q", key)
		}
		role := authRole{Role: "r", Permissions: authPerms{KV: authRW{Read: []string{pattern}}}}
		if role.hasKeyAccess(key, false, false) != simple || role.hasKeyAccess(key, false, true) != prefix {
			t.Fatalf("role with read %q disagrees with the matcher on %q", pattern, key)
		}
		if role.hasKeyAccess(key, true, false) || role.hasKeyAccess(key, true, true) {
			t.Fatalf("a read pattern %q grants writing %q", pattern, key)
		}
		root := authRole{Role: rootRoleName}
		if !root.hasKeyAccess(key, true, true) {
			t.Fatal("root refused")
		}
	})
}

// FuzzBasicAuth checks parseBasicAuth against net/http's parser.
func FuzzBasicAuth(f *testing.F) {
	for _, s := range []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("u:p")), "basic dTpw", "Basic !!!", "Bearer x", "Basic ", "Basic Og==", "BASIC dTpwOng="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		u, p, ok := parseBasicAuth(h)
		r := &http.Request{Header: http.Header{"Authorization": {h}}}
		wu, wp, wok := r.BasicAuth()
		if u != wu || p != wp || ok != wok {
			t.Fatalf("parseBasicAuth(%q) = %q, %q, %v; net/http: %q, %q, %v", h, u, p, ok, wu, wp, wok)
		}
		if ok {
			back := "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p))
			if u2, p2, ok2 := parseBasicAuth(back); !ok2 || u2 != u || p2 != p {
				t.Fatalf("round trip of %q, %q failed", u, p)
			}
		}
	})
}

// authFuzzServer is the part of a server the auth apply uses.
func authFuzzServer() *server {
	return &server{store: kv.New(clusterPrefix, keysPrefix), waits: waitList{m: map[uint64]waiter{}}}
}

// FuzzAuthBodies sends a user body and a role body (as the handlers
// decode them) through every change they can make, in turn, and checks
// that nothing panics, every answer encodes, and the state rebuilt from
// the store equals the state applied.
func FuzzAuthBodies(f *testing.F) {
	f.Add([]byte(`{"user":"root","password":"pw"}`), []byte(`{"role":"rkt","permissions":{"kv":{"read":["/rkt/*"],"write":["/rkt/*"]}}}`))
	f.Add([]byte(`{"user":"u","password":"p","roles":["a","a"]}`), []byte(`{"role":"r","grant":{"kv":{"read":["/a","/a"]}}}`))
	f.Add([]byte(`{"user":"u","grant":["r"],"revoke":["x"]}`), []byte(`{"role":"guest","revoke":{"kv":{"write":["/*"]}}}`))
	f.Add([]byte(`{"user":"","roles":[]}`), []byte(`{"role":"root"}`))
	f.Add([]byte(`notjson`), []byte(`{"role":"r","grant":{}}`))
	f.Fuzz(func(t *testing.T, userBody, roleBody []byte) {
		s := authFuzzServer()
		var u authUser
		uok := json.Unmarshal(userBody, &u) == nil
		var r authRole
		rok := json.Unmarshal(roleBody, &r) == nil
		var changes []*authChange
		if rok {
			for _, op := range []string{authOpCreateRole, authOpUpdateRole} {
				rc := r
				changes = append(changes, &authChange{Op: op, Name: r.Role, Role: &rc})
			}
		}
		if uok {
			for _, op := range []string{authOpCreateUser, authOpCreateOrUpdateUser, authOpUpdateUser} {
				uc := u
				changes = append(changes, &authChange{Op: op, Name: u.User, User: &uc})
			}
			root := authUser{User: rootUserName, Password: "x"}
			changes = append(changes, &authChange{Op: authOpCreateUser, User: &root}, &authChange{Op: authOpEnable})
			for _, g := range u.Grant {
				changes = append(changes, &authChange{Op: authOpUpdateUser, User: &authUser{User: u.User, Grant: []string{g}}})
			}
		}
		if rok {
			rc := r
			changes = append(changes, &authChange{Op: authOpUpdateRole, Role: &rc}, &authChange{Op: authOpDeleteRole, Name: r.Role})
		}
		if uok {
			changes = append(changes, &authChange{Op: authOpDeleteUser, Name: u.User}, &authChange{Op: authOpDisable})
		}
		for _, c := range changes {
			// through the entry encoding, as raft carries it
			data, err := encodeAuthChange(c)
			if err != nil {
				t.Fatal(err)
			}
			dc, err := decodeAuthChange(data)
			if err != nil {
				t.Fatalf("decode %q: %v", data, err)
			}
			res := s.applyAuthChange(dc, 0)
			if res.err == nil && res.user == nil && res.role == nil && dc.Op != authOpDeleteUser && dc.Op != authOpDeleteRole && dc.Op != authOpEnable && dc.Op != authOpDisable {
				t.Fatalf("%s succeeded without an answer", dc.Op)
			}
			if _, err := json.Marshal(res.user); err != nil {
				t.Fatal(err)
			}
			if _, err := json.Marshal(res.role); err != nil {
				t.Fatal(err)
			}
			applied := s.auth.state()
			s.loadAuth()
			loaded := s.auth.state()
			if applied.enabled != loaded.enabled || !reflect.DeepEqual(applied.users, loaded.users) || !reflect.DeepEqual(applied.roles, loaded.roles) {
				t.Fatalf("after %s the state reloaded from the store differs:\n applied %v %v %v\n loaded  %v %v %v", dc.Op,
					applied.enabled, applied.users, applied.roles, loaded.enabled, loaded.users, loaded.roles)
			}
		}
	})
}
