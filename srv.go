// srv.go owns DNS SRV discovery (--discovery-srv, --discovery-srv-name):
// the cluster's peers from _etcd-server-ssl._tcp and _etcd-server._tcp
// records, its client URLs from _etcd-client._tcp and _etcd-client-ssl._tcp,
// looked up with net's resolver.
package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// srvService is one SRV service name and the URL scheme its records mean.
type srvService struct {
	service string // e.g. etcd-server, looked up as _etcd-server._tcp.<domain>
	scheme  string
}

// srvServices are the services looked up for peers or for clients, in
// etcd's order, each with --discovery-srv-name's suffix.
func srvServices(clients bool, srvName string) []srvService {
	suffix := ""
	if srvName != "" {
		suffix = "-" + srvName
	}
	if clients {
		return []srvService{{"etcd-client" + suffix, "http"}, {"etcd-client-ssl" + suffix, "https"}}
	}
	return []srvService{{"etcd-server-ssl" + suffix, "https"}, {"etcd-server" + suffix, "http"}}
}

// resolverOf is the resolver cfg names (tests inject one), else net's.
func resolverOf(cfg *config) *net.Resolver {
	if cfg.hooks.resolver != nil {
		return cfg.hooks.resolver
	}
	return net.DefaultResolver
}

// srvTarget is one SRV record as a URL.
type srvTarget struct {
	url  *url.URL // scheme://target:port, the target without its trailing dot
	host string   // the target as looked up
	port uint16
}

// lookupSRVTargets returns the records of every service, in order; a
// service without records is skipped. It fails only when none has any.
func lookupSRVTargets(ctx context.Context, r *net.Resolver, domain string, services []srvService) ([]srvTarget, error) {
	var out []srvTarget
	var errs []string
	for _, s := range services {
		_, addrs, err := r.LookupSRV(ctx, s.service, "tcp", domain)
		if err != nil {
			errs = append(errs, fmt.Sprintf("_%s._tcp.%s: %v", s.service, domain, err))
			continue
		}
		for _, a := range addrs {
			host := strings.TrimSuffix(a.Target, ".")
			out = append(out, srvTarget{
				url:  &url.URL{Scheme: s.scheme, Host: net.JoinHostPort(host, strconv.Itoa(int(a.Port)))},
				host: a.Target,
				port: a.Port,
			})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("error querying DNS SRV records: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

// hostPorts resolves host to its addresses, each joined with port.
func hostPorts(ctx context.Context, r *net.Resolver, host string, port string) ([]string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []string{net.JoinHostPort(ip.String(), port)}, nil
	}
	addrs, err := r.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = net.JoinHostPort(a.IP.String(), port)
	}
	return out, nil
}

// srvCluster builds the initial cluster from the server SRV records of
// --discovery-srv. The record whose target resolves to one of this
// member's advertised peer addresses is this member (its --name); the
// others are named by their position, as etcd names them. A member not
// found among the records is refused.
func srvCluster(ctx context.Context, cfg *config) (map[string][]*url.URL, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r := resolverOf(cfg)
	self := map[string]*url.URL{}
	for _, u := range cfg.InitialAdvertisePeerURLs {
		addrs, err := hostPorts(ctx, r, u.Hostname(), u.Port())
		if err != nil {
			return nil, fmt.Errorf("resolve --initial-advertise-peer-urls %s: %w", u, err)
		}
		for _, a := range addrs {
			self[a] = u
		}
	}
	targets, err := lookupSRVTargets(ctx, r, cfg.DiscoverySRV, srvServices(false, cfg.DiscoverySRVName))
	if err != nil {
		return nil, err
	}
	cluster := map[string][]*url.URL{}
	others := 0
	for _, t := range targets {
		addrs, err := hostPorts(ctx, r, strings.TrimSuffix(t.host, "."), strconv.Itoa(int(t.port)))
		if err != nil {
			return nil, fmt.Errorf("resolve SRV target %s: %w", t.host, err)
		}
		var mine *url.URL
		for _, a := range addrs {
			if u, ok := self[a]; ok {
				mine = u
				break
			}
		}
		name := cfg.Name
		if mine == nil {
			name = strconv.Itoa(others)
			others++
		} else if mine.Scheme != t.url.Scheme {
			return nil, fmt.Errorf("bootstrap at %s from DNS has scheme mismatch with expected peer %s", t.url, mine)
		}
		cluster[name] = append(cluster[name], t.url)
	}
	if _, ok := cluster[cfg.Name]; !ok {
		return nil, fmt.Errorf("cannot find local etcd member %q in SRV records", cfg.Name)
	}
	return cluster, nil
}

// srvPeerURLs returns every peer URL the server SRV records of
// --discovery-srv name, for a proxy.
func srvPeerURLs(ctx context.Context, cfg *config) ([]*url.URL, error) {
	return srvTargetURLs(ctx, resolverOf(cfg), cfg.DiscoverySRV, srvServices(false, cfg.DiscoverySRVName))
}

// srvClientURLs returns the client URLs the client SRV records of domain
// name (what clients such as etcdctl --discovery-srv look up).
func srvClientURLs(ctx context.Context, r *net.Resolver, domain, srvName string) ([]*url.URL, error) {
	return srvTargetURLs(ctx, r, domain, srvServices(true, srvName))
}

// srvTargetURLs returns the URL of every target of the SRV records of
// domain for services.
func srvTargetURLs(ctx context.Context, r *net.Resolver, domain string, services []srvService) ([]*url.URL, error) {
	targets, err := lookupSRVTargets(ctx, r, domain, services)
	if err != nil {
		return nil, err
	}
	out := make([]*url.URL, len(targets))
	for i, t := range targets {
		out[i] = t.url
	}
	return out, nil
}
