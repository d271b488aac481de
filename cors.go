// cors.go owns what the client API checks about where a request comes
// from: the cross-origin headers (--cors) and the Host header check
// against DNS rebinding (--host-whitelist), answered as etcd 3.4 answers.
package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// corsFlag is the value of --cors: "*" (every origin, the default) or a
// comma-separated list of origin URLs.
type corsFlag struct{ origins *[]string }

// String implements flag.Value.
func (f corsFlag) String() string {
	if f.origins == nil {
		return ""
	}
	return strings.Join(*f.origins, ",")
}

// Set implements flag.Value.
func (f corsFlag) Set(v string) error {
	origins, err := parseCORS(v)
	if err != nil {
		return err
	}
	*f.origins = origins
	return nil
}

// parseCORS checks a --cors value as etcd does: "*" alone, or URLs with a
// scheme etcd knows, a host:port and no path. Each origin is kept in its
// URL's canonical spelling (scheme in lower case), which is what an
// Origin header must equal.
func parseCORS(v string) ([]string, error) {
	if strings.TrimSpace(v) == "*" {
		return []string{"*"}, nil
	}
	var out []string
	seen := map[string]bool{}
	for _, s := range strings.Split(v, ",") {
		u, err := parseEtcdURL(s)
		if err != nil {
			return nil, err
		}
		if o := u.String(); !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	return out, nil
}

// parseEtcdURL parses one URL of a list etcd takes (--cors, the members
// API's peer URLs), with etcd's checks in etcd's order and words: spaces
// around it trimmed, a scheme etcd knows, a host:port, no path.
func parseEtcdURL(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "http", "https", "unix", "unixs":
	default:
		return nil, fmt.Errorf("URL scheme must be http, https, unix, or unixs: %s", s)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		return nil, fmt.Errorf(`URL address does not have the form "host:port": %s`, s)
	}
	if u.Path != "" {
		return nil, fmt.Errorf("URL must not contain a path: %s", s)
	}
	return u, nil
}

// hostsFlag is the value of --host-whitelist: comma-separated host names,
// taken as they are written (etcd neither trims nor checks them); empty or
// "*" allows every host.
type hostsFlag struct{ hosts *[]string }

// String implements flag.Value.
func (f hostsFlag) String() string {
	if f.hosts == nil {
		return ""
	}
	return strings.Join(*f.hosts, ",")
}

// Set implements flag.Value.
func (f hostsFlag) Set(v string) error {
	*f.hosts = strings.Split(v, ",")
	return nil
}

// corsPolicy says which origins get the cross-origin headers.
type corsPolicy struct {
	any     bool            // every origin: "Access-Control-Allow-Origin: *"
	allowed map[string]bool // else the origins that do
}

// newCORSPolicy is the policy of a --cors list; an empty list (the flag
// not given) allows every origin, as etcd's default "*" does.
func newCORSPolicy(origins []string) *corsPolicy {
	p := &corsPolicy{allowed: map[string]bool{}}
	for _, o := range origins {
		if o == "*" {
			p.any = true
		}
		p.allowed[o] = true
	}
	p.any = p.any || len(origins) == 0
	return p
}

// setHeaders adds the cross-origin headers to an answer to r when its
// origin is allowed. With a list, the allowed origin is echoed back; a
// request from another origin (or none) is still served, without them,
// and the browser keeps its answer from the page.
func (p *corsPolicy) setHeaders(h http.Header, r *http.Request) {
	if p.any {
		h["Access-Control-Allow-Headers"] = corsAllowHeaders
		h["Access-Control-Allow-Methods"] = corsAllowMethods
		h["Access-Control-Allow-Origin"] = corsAllowOrigin
		return
	}
	origin := r.Header.Get("Origin")
	if origin == "" || !p.allowed[origin] {
		return
	}
	h["Access-Control-Allow-Headers"] = corsAllowHeaders
	h["Access-Control-Allow-Methods"] = corsAllowMethods
	h["Access-Control-Allow-Origin"] = []string{origin}
}

// hostPolicy says which Host headers a plain-http client request may carry.
type hostPolicy struct {
	any   bool
	hosts map[string]bool
}

// newHostPolicy is the policy of a --host-whitelist list: empty or
// containing "*" allows every host.
func newHostPolicy(hosts []string) *hostPolicy {
	p := &hostPolicy{hosts: map[string]bool{}}
	for _, h := range hosts {
		if h == "*" {
			p.any = true
		}
		if h != "" {
			p.hosts[h] = true
		}
	}
	p.any = p.any || len(p.hosts) == 0
	return p
}

// hostGuard refuses, with etcd's 421 and explanation, a plain-http
// request whose Host is not in the whitelist; requests over TLS pass (a
// rebinding attacker cannot present the server's certificate).
func hostGuard(p *hostPolicy, next http.Handler) http.Handler {
	if p.any {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			host := r.Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			if !p.hosts[host] {
				slog.Warn("refused a client request with a Host not in --host-whitelist",
					"host", host, "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
				http.Error(w, hostRefusedMessage(host), http.StatusMisdirectedRequest)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// hostRefusedMessage is the body of the 421 answer (etcd's, to the byte;
// http.Error adds the final newline).
func hostRefusedMessage(host string) string {
	return "\netcd received your request, but the Host header was unrecognized.\n\n" +
		"To fix this, choose one of the following options:\n" +
		"- Enable TLS, then any HTTPS request will be allowed.\n" +
		"- Add the hostname you want to use to the whitelist in settings.\n" +
		"  - e.g. etcd --host-whitelist \"" + host + "\"\n\n" +
		"This requirement has been added to help prevent \"DNS Rebinding\" attacks (CVE-2018-5702).\n"
}
