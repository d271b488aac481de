// ctl_members.go owns `etcdlite ctl member list|add|remove|update` and
// `cluster-health`: the members API requests and their output.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ctlMemberCommand is the `member` group.
func ctlMemberCommand() *ctlCommand {
	return &ctlCommand{name: "member", usage: "member add, remove and list subcommands", args: "command [command options] [arguments...]", helpOpt: true,
		subs: []*ctlCommand{
			{name: "list", usage: "enumerate existing cluster members", args: " ", run: ctlMemberList},
			{name: "add", usage: "add a new member to the etcd cluster", args: "<name> <peerURL>", run: ctlMemberAdd},
			{name: "remove", usage: "remove an existing member from the etcd cluster", args: "<memberID>", run: ctlMemberRemove},
			{name: "update", usage: "update an existing member in the etcd cluster", args: "<memberID> <peerURLs>", run: ctlMemberUpdate},
		}}
}

// memberRequest sends a members API request with a JSON body of peer URLs
// (when urls is non-nil).
func (cl *ctlClient) memberRequest(ctx context.Context, method, path string, urls []string) (*http.Response, []byte, error) {
	r := &ctlRequest{method: method, path: path}
	if urls != nil {
		b, err := json.Marshal(struct {
			PeerURLs []string `json:"peerURLs"`
		}{urls})
		if err != nil {
			return nil, nil, err
		}
		r.json = b
	}
	return cl.do(ctx, r)
}

// memberError is the server's message in body, or the status code.
func memberError(resp *http.Response, body []byte, expected ...int) error {
	for _, s := range expected {
		if resp.StatusCode == s {
			var m ctlMessageError
			if err := json.Unmarshal(body, &m); err != nil {
				return err
			}
			return &m
		}
	}
	return fmt.Errorf("unexpected status code %d", resp.StatusCode)
}

// checkPeerURLs validates URLs as etcd's client does before adding or
// updating a member.
func checkPeerURLs(urls []string) error {
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			return err
		}
		if u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "unix" && u.Scheme != "unixs" {
			return fmt.Errorf("URL scheme must be http, https, unix, or unixs: %s", s)
		}
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			return fmt.Errorf(`URL address does not have the form "host:port": %s`, s)
		}
		if u.Path != "" {
			return fmt.Errorf("URL must not contain a path: %s", s)
		}
	}
	return nil
}

// ctlMemberList is `member list`.
func ctlMemberList(c *ctlContext) int {
	cl, code := newClient(c)
	if cl == nil {
		return code
	}
	ctx, cancel := c.totalTimeout()
	ms, err := cl.listMembers(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(c.stderr(), err.Error())
		return ctlExitBadArgs
	}
	ctx, cancel = c.totalTimeout()
	leader, err := cl.leader(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(c.stdout(), "Failed to get leader: ", err)
		return ctlExitBadArgs
	}
	for _, m := range ms {
		if m.Name == "" {
			fmt.Fprintf(c.stdout(), "%s[unstarted]: peerURLs=%s\n", m.ID, strings.Join(m.PeerURLs, ","))
		} else {
			fmt.Fprintf(c.stdout(), "%s: name=%s peerURLs=%s clientURLs=%s isLeader=%v\n", m.ID, m.Name,
				strings.Join(m.PeerURLs, ","), strings.Join(m.ClientURLs, ","), m.ID == leader.ID)
		}
	}
	return ctlExitSuccess
}

// leader is GET /v2/members/leader.
func (cl *ctlClient) leader(ctx context.Context) (*memberView, error) {
	resp, body, err := cl.memberRequest(ctx, "GET", "/v2/members/leader", nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("unexpected status code %d", resp.StatusCode)
	}
	var m memberView
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// ctlMemberAdd is `member add`.
func ctlMemberAdd(c *ctlContext) int {
	if len(c.args) != 2 {
		fmt.Fprintln(c.stderr(), "Provide a name and a single member peerURL")
		return ctlExitBadArgs
	}
	cl, code := newClient(c)
	if cl == nil {
		return code
	}
	name, peer := c.args[0], c.args[1]
	fail := func(err error) int {
		fmt.Fprintln(c.stderr(), err.Error())
		return ctlExitBadArgs
	}
	if err := checkPeerURLs([]string{peer}); err != nil {
		return fail(err)
	}
	ctx, cancel := c.totalTimeout()
	resp, body, err := cl.memberRequest(ctx, "POST", "/v2/members", []string{peer})
	cancel()
	if err != nil {
		return fail(err)
	}
	if resp.StatusCode != http.StatusCreated {
		return fail(memberError(resp, body, http.StatusConflict))
	}
	var m memberView
	if err := json.Unmarshal(body, &m); err != nil {
		return fail(err)
	}
	fmt.Fprintf(c.stdout(), "Added member named %s with ID %s to cluster\n", name, m.ID)
	ctx, cancel = c.totalTimeout()
	ms, err := cl.listMembers(ctx)
	cancel()
	if err != nil {
		return fail(err)
	}
	var conf []string
	for _, mm := range ms {
		for _, u := range mm.PeerURLs {
			n := mm.Name
			if mm.ID == m.ID {
				n = name
			}
			conf = append(conf, fmt.Sprintf("%s=%s", n, u))
		}
	}
	fmt.Fprint(c.stdout(), "\n")
	fmt.Fprintf(c.stdout(), "ETCD_NAME=%q\n", name)
	fmt.Fprintf(c.stdout(), "ETCD_INITIAL_CLUSTER=%q\n", strings.Join(conf, ","))
	fmt.Fprintf(c.stdout(), "ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n")
	return ctlExitSuccess
}

// ctlMemberRemove is `member remove`.
func ctlMemberRemove(c *ctlContext) int {
	if len(c.args) != 1 {
		fmt.Fprintln(c.stderr(), "Provide a single member ID")
		return ctlExitBadArgs
	}
	cl, code := newClient(c)
	if cl == nil {
		return code
	}
	id := c.args[0]
	ctx, cancel := c.totalTimeout()
	ms, err := cl.listMembers(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(c.stderr(), "Error while verifying ID against known members:", err.Error())
		return ctlExitBadArgs
	}
	found := false
	for _, m := range ms {
		if m.ID == id {
			found = true
		}
		if m.Name == id {
			fmt.Fprintf(c.stderr(), "Found a member named %s; if this is correct, please use its ID, eg:\n\tetcdctl member remove %s\n", m.Name, m.ID)
			fmt.Fprintf(c.stderr(), "For more details, read the documentation at https://github.com/etcd-io/etcd/blob/master/Documentation/runtime-configuration.md#remove-a-member\n\n")
		}
	}
	if !found {
		fmt.Fprintf(c.stderr(), "Couldn't find a member in the cluster with an ID of %s.\n", id)
		return ctlExitBadArgs
	}
	ctx, cancel = c.totalTimeout()
	resp, body, err := cl.memberRequest(ctx, "DELETE", "/v2/members/"+id, nil)
	cancel()
	if err == nil && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusGone {
		err = memberError(resp, body, http.StatusNotFound)
	}
	if err != nil {
		fmt.Fprintf(c.stderr(), "Received an error trying to remove member %s: %s", id, err.Error())
		return ctlExitBadArgs
	}
	fmt.Fprintf(c.stdout(), "Removed member %s from cluster\n", id)
	return ctlExitSuccess
}

// ctlMemberUpdate is `member update`.
func ctlMemberUpdate(c *ctlContext) int {
	if len(c.args) != 2 {
		fmt.Fprintln(c.stderr(), "Provide an ID and a list of comma separated peerURL (0xabcd http://example.com,http://example1.com)")
		return ctlExitBadArgs
	}
	cl, code := newClient(c)
	if cl == nil {
		return code
	}
	id, urls := c.args[0], strings.Split(c.args[1], ",")
	err := checkPeerURLs(urls)
	if err == nil {
		ctx, cancel := c.totalTimeout()
		var resp *http.Response
		var body []byte
		resp, body, err = cl.memberRequest(ctx, "PUT", "/v2/members/"+id, urls)
		cancel()
		if err == nil && resp.StatusCode != http.StatusNoContent {
			err = memberError(resp, body, http.StatusNotFound, http.StatusConflict)
		}
	}
	if err != nil {
		fmt.Fprintln(c.stderr(), err.Error())
		return ctlExitBadArgs
	}
	fmt.Fprintf(c.stdout(), "Updated member with ID %s in cluster\n", id)
	return ctlExitSuccess
}

// ctlClusterHealth is `cluster-health`: each member's /health, then the
// verdict; with --forever again every 10 seconds until interrupted.
func ctlClusterHealth(c *ctlContext) int {
	cl, code := newClientNoSync(c)
	if cl == nil {
		return code
	}
	forever := c.Bool("forever")
	out := c.stdout()
	ms, err := cl.listMembers(c.ctx)
	if err != nil {
		fmt.Fprintln(out, "cluster may be unhealthy: failed to list members")
		return c.handleError(ctlExitServerError, err)
	}
	hc := &http.Client{Transport: cl.hc.Transport}
	for {
		healthy := 0
		for _, m := range ms {
			if len(m.ClientURLs) == 0 {
				fmt.Fprintf(out, "member %s is unreachable: no available published client urls\n", m.ID)
				continue
			}
			checked := false
			for _, u := range m.ClientURLs {
				req, err := http.NewRequestWithContext(c.ctx, "GET", u+"/health", nil)
				if err != nil {
					fmt.Fprintf(out, "failed to check the health of member %s on %s: %v\n", m.ID, u, err)
					continue
				}
				resp, err := hc.Do(req)
				if err != nil {
					fmt.Fprintf(out, "failed to check the health of member %s on %s: %v\n", m.ID, u, err)
					continue
				}
				var result struct{ Health string }
				err = json.NewDecoder(resp.Body).Decode(&result)
				resp.Body.Close()
				if err != nil {
					fmt.Fprintf(out, "failed to check the health of member %s on %s: %v\n", m.ID, u, err)
					continue
				}
				checked = true
				if result.Health == "true" {
					fmt.Fprintf(out, "member %v is healthy: got healthy result from %s\n", m.ID, u)
					healthy++
				} else {
					fmt.Fprintf(out, "member %v is unhealthy: got unhealthy result from %s\n", m.ID, u)
				}
				break
			}
			if !checked {
				fmt.Fprintf(out, "member %v is unreachable: %v are all unreachable\n", m.ID, m.ClientURLs)
			}
		}
		switch healthy {
		case len(ms):
			fmt.Fprintln(out, "cluster is healthy")
		case 0:
			fmt.Fprintln(out, "cluster is unavailable")
		default:
			fmt.Fprintln(out, "cluster is degraded")
		}
		if !forever {
			if healthy == len(ms) {
				return ctlExitSuccess
			}
			return ctlExitClusterNotHealthy
		}
		fmt.Fprintf(out, "\nnext check after 10 second...\n\n")
		select {
		case <-c.ctx.Done():
			return ctlExitSuccess
		case <-time.After(10 * time.Second):
		}
	}
}
