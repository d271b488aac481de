// ctl_auth.go owns `etcdlite ctl user ...`, `role ...` and `auth
// enable|disable`: requests to the v2 auth API (/v2/auth/...) and their
// output.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// ctlUserCommand is the `user` group.
func ctlUserCommand() *ctlCommand {
	roles := []ctlFlag{{names: []string{"roles"}, kind: ctlStringSlice, left: "--roles value", usage: "List of roles to grant or revoke"}}
	return &ctlCommand{name: "user", usage: "user add, grant and revoke subcommands", args: "command [command options] [arguments...]", helpOpt: true,
		subs: []*ctlCommand{
			{name: "add", usage: "add a new user for the etcd cluster", args: "<user>", run: ctlUserAdd},
			{name: "get", usage: "get details for a user", args: "<user>", run: ctlUserGet},
			{name: "list", usage: "list all current users", args: "<user>", run: ctlUserList},
			{name: "remove", usage: "remove a user for the etcd cluster", args: "<user>", run: ctlUserRemove},
			{name: "grant", usage: "grant roles to an etcd user", args: "[command options] <user>", flags: roles, run: func(c *ctlContext) int { return ctlUserGrantRevoke(c, true) }},
			{name: "revoke", usage: "revoke roles for an etcd user", args: "[command options] <user>", flags: roles, run: func(c *ctlContext) int { return ctlUserGrantRevoke(c, false) }},
			{name: "passwd", usage: "change password for a user", args: "<user>", run: ctlUserPasswd},
		}}
}

// ctlRoleCommand is the `role` group.
func ctlRoleCommand() *ctlCommand {
	perm := func(verb string) []ctlFlag {
		return []ctlFlag{
			{names: []string{"path"}, kind: ctlString, left: "--path value", usage: "Path " + map[string]string{"Grant": "granted", "Revoke": "revoked"}[verb] + " for the role to access"},
			{names: []string{"read"}, kind: ctlBool, left: "--read", usage: verb + " read" + map[string]string{"Grant": "-only", "Revoke": ""}[verb] + " access"},
			{names: []string{"write"}, kind: ctlBool, left: "--write", usage: verb + " write" + map[string]string{"Grant": "-only", "Revoke": ""}[verb] + " access"},
			{names: []string{"readwrite", "rw"}, kind: ctlBool, left: "--readwrite, --rw", usage: verb + " read-write access"},
		}
	}
	return &ctlCommand{name: "role", usage: "role add, grant and revoke subcommands", args: "command [command options] [arguments...]", helpOpt: true,
		subs: []*ctlCommand{
			{name: "add", usage: "add a new role for the etcd cluster", args: "<role> ", run: ctlRoleAdd},
			{name: "get", usage: "get details for a role", args: "<role>", run: ctlRoleGet},
			{name: "list", usage: "list all roles", args: " ", run: ctlRoleList},
			{name: "remove", usage: "remove a role from the etcd cluster", args: "<role>", run: ctlRoleRemove},
			{name: "grant", usage: "grant path matches to an etcd role", args: "[command options] <role>", flags: perm("Grant"), run: func(c *ctlContext) int { return ctlRoleGrantRevoke(c, true) }},
			{name: "revoke", usage: "revoke path matches for an etcd role", args: "[command options] <role>", flags: perm("Revoke"), run: func(c *ctlContext) int { return ctlRoleGrantRevoke(c, false) }},
		}}
}

// ctlAuthCommand is the `auth` group.
func ctlAuthCommand() *ctlCommand {
	return &ctlCommand{name: "auth", usage: "overall auth controls", args: "command [command options] [arguments...]", helpOpt: true,
		subs: []*ctlCommand{
			{name: "enable", usage: "enable auth access controls", args: " ", run: func(c *ctlContext) int { return ctlAuthEnable(c, true) }},
			{name: "disable", usage: "disable auth access controls", args: " ", run: func(c *ctlContext) int { return ctlAuthEnable(c, false) }},
		}}
}

// authRequest sends a request to the auth API with an optional JSON body
// and returns the answer's body when its status is one of ok; otherwise
// the server's message is the error.
func (cl *ctlClient) authRequest(ctx context.Context, method, p string, body any, ok ...int) ([]byte, error) {
	r := &ctlRequest{method: method, path: p}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r.json = b
	}
	resp, b, err := cl.do(ctx, r)
	if err != nil {
		return nil, err
	}
	if slices.Contains(ok, resp.StatusCode) {
		return b, nil
	}
	var m ctlMessageError
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return nil, &m
}

// ctlUserAnswer is a user as the auth API gives it: its roles are names
// or whole role objects.
type ctlUserAnswer struct {
	User  string            `json:"user"`
	Roles []json.RawMessage `json:"roles"`
}

// roleNames returns the names of u's roles.
func (u *ctlUserAnswer) roleNames() []string {
	var out []string
	for _, r := range u.Roles {
		var name string
		if json.Unmarshal(r, &name) == nil {
			out = append(out, name)
			continue
		}
		var obj struct {
			Role string `json:"role"`
		}
		if json.Unmarshal(r, &obj) == nil {
			out = append(out, obj.Role)
		}
	}
	return out
}

// authArg returns the client and the one name argument, or prints msg and
// returns a status.
func authArg(c *ctlContext, msg string) (*ctlClient, string, int) {
	if len(c.args) != 1 {
		fmt.Fprintln(c.stderr(), msg)
		return nil, "", ctlExitBadArgs
	}
	cl, code := newClient(c)
	if cl == nil {
		return nil, "", code
	}
	return cl, c.args[0], 0
}

// authFail prints err and returns status 1.
func authFail(c *ctlContext, err error) int {
	fmt.Fprintln(c.stderr(), err.Error())
	return ctlExitBadArgs
}

// ctlUserPath is the auth API path of a user.
func ctlUserPath(name string) string { return "/v2/auth/users/" + name }

// ctlRolePath is the auth API path of a role.
func ctlRolePath(name string) string { return "/v2/auth/roles/" + name }

// ctlUserList is `user list`.
func ctlUserList(c *ctlContext) int {
	cl, code := newClient(c)
	if cl == nil {
		return code
	}
	ctx, cancel := c.totalTimeout()
	defer cancel()
	b, err := cl.authRequest(ctx, "GET", "/v2/auth/users", nil, http.StatusOK)
	if err != nil {
		return authFail(c, err)
	}
	var list struct {
		Users []json.RawMessage `json:"users"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return authFail(c, err)
	}
	return ctlPrintNames(c, list.Users, func(u json.RawMessage) (string, error) {
		var obj ctlUserAnswer
		err := json.Unmarshal(u, &obj)
		return obj.User, err
	})
}

// ctlPrintNames prints the names of a users or roles listing sorted, one a
// line. An entry is a bare name or an object, whose name objName decodes.
func ctlPrintNames(c *ctlContext, entries []json.RawMessage, objName func(json.RawMessage) (string, error)) int {
	var names []string
	for _, e := range entries {
		var name string
		if json.Unmarshal(e, &name) == nil {
			names = append(names, name)
			continue
		}
		name, err := objName(e)
		if err != nil {
			return authFail(c, err)
		}
		names = append(names, name)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(c.stdout(), "%s\n", n)
	}
	return ctlExitSuccess
}

// ctlUserAdd is `user add NAME[:PASSWORD]`; without a password it asks.
func ctlUserAdd(c *ctlContext) int {
	cl, arg, code := authArg(c, "Please provide a username")
	if cl == nil {
		return code
	}
	ctx, cancel := c.totalTimeout()
	defer cancel()
	name, pass, ok := strings.Cut(arg, ":")
	if !ok {
		var err error
		if pass, err = askPassword(c, "New password: "); err != nil {
			fmt.Fprintln(c.stderr(), "Error reading password:", err)
			return ctlExitBadArgs
		}
	}
	if _, err := cl.authRequest(ctx, "PUT", ctlUserPath(name), &authUser{User: name, Password: pass}, http.StatusOK, http.StatusCreated); err != nil {
		return authFail(c, err)
	}
	fmt.Fprintf(c.stdout(), "User %s created\n", name)
	return ctlExitSuccess
}

// ctlUserRemove is `user remove`.
func ctlUserRemove(c *ctlContext) int {
	cl, name, code := authArg(c, "Please provide a username")
	if cl == nil {
		return code
	}
	ctx, cancel := c.totalTimeout()
	defer cancel()
	if _, err := cl.authRequest(ctx, "DELETE", ctlUserPath(name), nil, http.StatusOK); err != nil {
		return authFail(c, err)
	}
	fmt.Fprintf(c.stdout(), "User %s removed\n", name)
	return ctlExitSuccess
}

// ctlUserGet is `user get`.
func ctlUserGet(c *ctlContext) int {
	cl, name, code := authArg(c, "Please provide a username")
	if cl == nil {
		return code
	}
	ctx, cancel := c.totalTimeout()
	defer cancel()
	b, err := cl.authRequest(ctx, "GET", ctlUserPath(name), nil, http.StatusOK)
	if err != nil {
		return authFail(c, err)
	}
	var u ctlUserAnswer
	if err := json.Unmarshal(b, &u); err != nil {
		return authFail(c, err)
	}
	fmt.Fprintf(c.stdout(), "User: %s\n", u.User)
	fmt.Fprint(c.stdout(), "Roles: ")
	for _, r := range u.roleNames() {
		fmt.Fprintf(c.stdout(), " %s", r)
	}
	fmt.Fprint(c.stdout(), "\n")
	return ctlExitSuccess
}

// ctlUserGrantRevoke is `user grant` and `user revoke`.
func ctlUserGrantRevoke(c *ctlContext, grant bool) int {
	roles := c.StringSlice("roles")
	if len(roles) == 0 {
		fmt.Fprintln(c.stderr(), "No roles specified; please use `--roles`")
		return ctlExitBadArgs
	}
	cl, name, code := authArg(c, "Please provide a username")
	if cl == nil {
		return code
	}
	ctx, cancel := c.totalTimeout()
	defer cancel()
	body := &authUser{User: name}
	if grant {
		body.Grant = roles
	} else {
		body.Revoke = roles
	}
	if _, err := cl.authRequest(ctx, "PUT", ctlUserPath(name), body, http.StatusOK); err != nil {
		return authFail(c, err)
	}
	fmt.Fprintf(c.stdout(), "User %s updated\n", name)
	return ctlExitSuccess
}

// ctlUserPasswd is `user passwd`: it asks for the new password.
func ctlUserPasswd(c *ctlContext) int {
	cl, name, code := authArg(c, "Please provide a username")
	if cl == nil {
		return code
	}
	ctx, cancel := c.totalTimeout()
	defer cancel()
	pass, err := askPassword(c, "New password: ")
	if err != nil {
		fmt.Fprintln(c.stderr(), "Error reading password:", err)
		return ctlExitBadArgs
	}
	if _, err := cl.authRequest(ctx, "PUT", ctlUserPath(name), &authUser{User: name, Password: pass}, http.StatusOK); err != nil {
		return authFail(c, err)
	}
	fmt.Fprintf(c.stdout(), "Password updated\n")
	return ctlExitSuccess
}

// getRole is GET /v2/auth/roles/NAME.
func (cl *ctlClient) getRole(ctx context.Context, name string) (*authRole, error) {
	b, err := cl.authRequest(ctx, "GET", ctlRolePath(name), nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	var r authRole
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// ctlRoleAdd is `role add`.
func ctlRoleAdd(c *ctlContext) int {
	cl, name, code := authArg(c, "Please provide a role name")
	if cl == nil {
		return code
	}
	ctx, cancel := c.totalTimeout()
	defer cancel()
	if r, _ := cl.getRole(ctx, name); r != nil {
		fmt.Fprintf(c.stderr(), "Role %s already exists\n", name)
		return ctlExitBadArgs
	}
	if _, err := cl.authRequest(ctx, "PUT", ctlRolePath(name), &authRole{Role: name}, http.StatusOK, http.StatusCreated); err != nil {
		return authFail(c, err)
	}
	fmt.Fprintf(c.stdout(), "Role %s created\n", name)
	return ctlExitSuccess
}

// ctlRoleRemove is `role remove`.
func ctlRoleRemove(c *ctlContext) int {
	cl, name, code := authArg(c, "Please provide a role name")
	if cl == nil {
		return code
	}
	ctx, cancel := c.totalTimeout()
	defer cancel()
	if _, err := cl.authRequest(ctx, "DELETE", ctlRolePath(name), nil, http.StatusOK); err != nil {
		return authFail(c, err)
	}
	fmt.Fprintf(c.stdout(), "Role %s removed\n", name)
	return ctlExitSuccess
}

// ctlRoleGet is `role get`.
func ctlRoleGet(c *ctlContext) int {
	cl, name, code := authArg(c, "Please provide a role name")
	if cl == nil {
		return code
	}
	ctx, cancel := c.totalTimeout()
	defer cancel()
	r, err := cl.getRole(ctx, name)
	if err != nil {
		return authFail(c, err)
	}
	w := c.stdout()
	fmt.Fprintf(w, "Role: %s\n", r.Role)
	fmt.Fprint(w, "KV Read:\n")
	for _, p := range r.Permissions.KV.Read {
		fmt.Fprintf(w, "\t%s\n", p)
	}
	fmt.Fprint(w, "KV Write:\n")
	for _, p := range r.Permissions.KV.Write {
		fmt.Fprintf(w, "\t%s\n", p)
	}
	return ctlExitSuccess
}

// ctlRoleList is `role list`.
func ctlRoleList(c *ctlContext) int {
	cl, code := newClient(c)
	if cl == nil {
		return code
	}
	ctx, cancel := c.totalTimeout()
	defer cancel()
	// unlike the other auth calls, etcd's client reports a failed role
	// listing by its status code only
	resp, b, err := cl.do(ctx, &ctlRequest{method: "GET", path: "/v2/auth/roles"})
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("unexpected status code %d", resp.StatusCode)
	}
	if err != nil {
		return authFail(c, err)
	}
	var list struct {
		Roles []json.RawMessage `json:"roles"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		return authFail(c, err)
	}
	return ctlPrintNames(c, list.Roles, func(r json.RawMessage) (string, error) {
		var obj authRole
		err := json.Unmarshal(r, &obj)
		return obj.Role, err
	})
}

// ctlRoleGrantRevoke is `role grant` and `role revoke`.
func ctlRoleGrantRevoke(c *ctlContext, grant bool) int {
	p := c.String("path")
	if p == "" {
		fmt.Fprintln(c.stderr(), "No path specified; please use `--path`")
		return ctlExitBadArgs
	}
	if cp := canonicalPath(p); cp != p {
		fmt.Fprintf(c.stderr(), "Not canonical path; please use `--path=%s`\n", cp)
		return ctlExitBadArgs
	}
	read, write, rw := c.Bool("read"), c.Bool("write"), c.Bool("readwrite")
	n := 0
	for _, v := range []bool{read, write, rw} {
		if v {
			n++
		}
	}
	if n != 1 {
		fmt.Fprintln(c.stderr(), "Please specify exactly one of --read, --write or --readwrite")
		return ctlExitBadArgs
	}
	cl, name, code := authArg(c, "Please provide a role name")
	if cl == nil {
		return code
	}
	ctx, cancel := c.totalTimeout()
	defer cancel()
	cur, err := cl.getRole(ctx, name)
	if err != nil {
		return authFail(c, err)
	}
	var perm authPerms
	if read || rw {
		perm.KV.Read = []string{p}
	}
	if write || rw {
		perm.KV.Write = []string{p}
	}
	body := &authRole{Role: name}
	if grant {
		body.Grant = &perm
	} else {
		body.Revoke = &perm
	}
	b, err := cl.authRequest(ctx, "PUT", ctlRolePath(name), body, http.StatusOK)
	if err != nil {
		return authFail(c, err)
	}
	var updated authRole
	if err := json.Unmarshal(b, &updated); err != nil {
		return authFail(c, err)
	}
	if slices.Equal(updated.Permissions.KV.Read, cur.Permissions.KV.Read) && slices.Equal(updated.Permissions.KV.Write, cur.Permissions.KV.Write) {
		if grant {
			fmt.Fprint(c.stdout(), "Role unchanged; already granted")
		} else {
			fmt.Fprint(c.stdout(), "Role unchanged; already revoked")
		}
	}
	fmt.Fprintf(c.stdout(), "Role %s updated\n", name)
	return ctlExitSuccess
}

// ctlAuthEnable is `auth enable` and `auth disable`.
func ctlAuthEnable(c *ctlContext, enable bool) int {
	if len(c.args) != 0 {
		fmt.Fprintln(c.stderr(), "No arguments accepted")
		return ctlExitBadArgs
	}
	cl, code := newClient(c)
	if cl == nil {
		return code
	}
	ctx, cancel := c.totalTimeout()
	defer cancel()
	method := "PUT"
	if !enable {
		method = "DELETE"
	}
	if _, err := cl.authRequest(ctx, method, "/v2/auth/enable", nil, http.StatusOK); err != nil {
		return authFail(c, err)
	}
	if enable {
		fmt.Fprintln(c.stdout(), "Authentication Enabled")
	} else {
		fmt.Fprintln(c.stdout(), "Authentication Disabled")
	}
	return ctlExitSuccess
}
