// Command goclient drives the Go client/v2 AuthAPI, AuthUserAPI and AuthRoleAPI against the
// server at os.Args[1] (fresh, auth off). Its output against etcd 3.4 is in
// ../goclient-etcd3.4.txt; etcdlite gives the same (indexes aside). A module of its own under
// testdata, so that etcdlite itself does not depend on the client.
package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"time"

	client "go.etcd.io/etcd/client/v2"
)

func main() {
	url := os.Args[1]
	mk := func(user, pw string) client.Client {
		c, err := client.New(client.Config{Endpoints: []string{url}, Username: user, Password: pw, HeaderTimeoutPerRequest: 3 * time.Second})
		if err != nil {
			panic(err)
		}
		return c
	}
	ctx := context.Background()
	anon := mk("", "")
	root := mk("root", "rootpw")
	p := func(name string, v any, err error) {
		if err != nil {
			fmt.Printf("%s: error %v\n", name, err)
			return
		}
		fmt.Printf("%s: %v\n", name, v)
	}
	e := func(name string, err error) { p(name, "ok", err) }
	e("add root", client.NewAuthUserAPI(anon).AddUser(ctx, "root", "rootpw"))
	e("enable", client.NewAuthAPI(anon).Enable(ctx))
	e("enable again", client.NewAuthAPI(root).Enable(ctx))
	ra := client.NewAuthRoleAPI(root)
	e("add role", ra.AddRole(ctx, "app"))
	e("add role again", ra.AddRole(ctx, "app"))
	r, err := ra.GrantRoleKV(ctx, "app", []string{"/app/*"}, client.ReadWritePermission)
	p("grant", r, err)
	r, err = ra.GrantRoleKV(ctx, "app", []string{"/app/*"}, client.ReadPermission)
	p("grant dup", r, err)
	r, err = ra.GetRole(ctx, "app")
	p("get role", r, err)
	roles, err := ra.ListRoles(ctx)
	sort.Strings(roles)
	p("list roles", roles, err)
	ua := client.NewAuthUserAPI(root)
	e("add user", ua.AddUser(ctx, "alice", "apw"))
	u, err := ua.GrantUser(ctx, "alice", []string{"app"})
	p("grant user", u, err)
	u, err = ua.GetUser(ctx, "alice")
	p("get user", u, err)
	users, err := ua.ListUsers(ctx)
	p("list users", users, err)
	u, err = ua.ChangePassword(ctx, "alice", "new")
	p("passwd", u, err)
	alice := client.NewKeysAPI(mk("alice", "new"))
	resp, err := alice.Set(ctx, "/app/k", "v", nil)
	if err == nil {
		p("alice set", resp.Node.Value, err)
	} else {
		p("alice set", nil, err)
	}
	_, err = alice.Set(ctx, "/other", "v", nil)
	p("alice set other", nil, err)
	_, err = client.NewKeysAPI(mk("alice", "apw")).Get(ctx, "/app/k", nil)
	p("old password", nil, err)
	_, err = client.NewAuthUserAPI(mk("alice", "new")).ListUsers(ctx)
	p("alice lists users", nil, err)
	r, err = ra.RevokeRoleKV(ctx, "app", []string{"/app/*"}, client.WritePermission)
	p("revoke", r, err)
	_, err = alice.Set(ctx, "/app/k", "v2", nil)
	p("alice set after revoke", nil, err)
	u, err = ua.RevokeUser(ctx, "alice", []string{"app"})
	p("revoke user", u, err)
	e("remove user", ua.RemoveUser(ctx, "alice"))
	e("remove user again", ua.RemoveUser(ctx, "alice"))
	e("remove role", ra.RemoveRole(ctx, "app"))
	e("remove root role", ra.RemoveRole(ctx, "root"))
	e("disable", client.NewAuthAPI(root).Disable(ctx))
	e("disable again", client.NewAuthAPI(root).Disable(ctx))
}
