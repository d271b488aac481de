// The proxy's list of members: the peers it starts from (flags, discovery,
// or proxy/cluster in its data dir), refreshed from their member lists, saved
// back to proxy/cluster, and which members are skipped for a while after
// they failed.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"time"
)

// proxyClusterFile is what proxy/cluster holds.
type proxyClusterFile struct {
	PeerURLs []string
}

// initialPeers finds the peer URLs to ask for the member list.
func (p *proxy) initialPeers(ctx context.Context, found map[string][]*url.URL) ([]string, error) {
	if b, err := os.ReadFile(p.clusterFile); err == nil {
		var f proxyClusterFile
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("proxy: read %s: %w", p.clusterFile, err)
		}
		if len(f.PeerURLs) > 0 {
			slog.Info("proxy: peer urls from cluster file", "file", p.clusterFile)
			return f.PeerURLs, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("proxy: read %s: %w", p.clusterFile, err)
	}
	cluster := found
	switch {
	case cluster != nil:
	case p.cfg.Discovery != "":
		d, err := newDiscovery(p.cfg, 0)
		if err != nil {
			return nil, err
		}
		if cluster, err = d.getCluster(ctx); err != nil {
			return nil, fmt.Errorf("proxy: discovery: %w", err)
		}
	case p.cfg.DiscoverySRV != "":
		urls, err := srvPeerURLs(ctx, p.cfg)
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		return urlsToStrings(urls), nil
	default:
		cluster = p.cfg.InitialCluster
	}
	var out []string
	for _, urls := range cluster {
		out = append(out, urlsToStrings(urls)...)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, errors.New("proxy: no peer URLs: give --initial-cluster, --discovery or --discovery-srv")
	}
	return out, nil
}

// saveClusterFile writes proxy/cluster atomically.
func (p *proxy) saveClusterFile(peers []string) error {
	b, err := json.Marshal(proxyClusterFile{PeerURLs: peers})
	if err != nil {
		return fmt.Errorf("proxy: encode cluster file: %w", err)
	}
	tmp := p.clusterFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("proxy: write cluster file: %w", err)
	}
	if err := os.Rename(tmp, p.clusterFile); err != nil {
		return fmt.Errorf("proxy: write cluster file: %w", err)
	}
	return nil
}

// refreshLoop refreshes the member list every --proxy-refresh-interval,
// and every second while it has no member yet.
func (p *proxy) refreshLoop() {
	defer p.wg.Done()
	every := ms(p.cfg.ProxyRefreshIntervalMs)
	if every <= 0 {
		every = 30 * time.Second
	}
	for {
		// while no member has answered yet, ask again soon
		wait := every
		p.mu.Lock()
		if len(p.endpoints) == 0 && wait > time.Second {
			wait = time.Second
		}
		p.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-p.stopc:
			t.Stop()
			return
		case <-t.C:
			p.refresh()
		}
	}
}

// refresh asks the peers, first to answer wins, for the members and takes
// their client URLs (shuffled, so that proxies spread their clients) and
// peer URLs. When no peer answers, the list stays as it was.
func (p *proxy) refresh() {
	p.mu.Lock()
	peers := append([]string(nil), p.peerURLs...)
	p.mu.Unlock()
	client := &http.Client{Transport: p.peerClient, Timeout: 5 * time.Second}
	var members []memberView
	var lastErr error
	for _, peer := range peers {
		ms, err := fetchPeerMembers(client, peer)
		if err != nil {
			lastErr = err
			continue
		}
		members = ms
		break
	}
	if members == nil {
		slog.Warn("proxy: could not fetch the member list from any peer", "peers", peers, "err", lastErr)
		return
	}
	var clientURLs, peerURLs []string
	for _, m := range members {
		clientURLs = append(clientURLs, m.ClientURLs...)
		peerURLs = append(peerURLs, m.PeerURLs...)
	}
	sort.Strings(peerURLs)
	rand.Shuffle(len(clientURLs), func(i, j int) { clientURLs[i], clientURLs[j] = clientURLs[j], clientURLs[i] })
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(clientURLs) > 0 {
		old := map[string]*proxyEndpoint{}
		for _, e := range p.endpoints {
			old[e.url.String()] = e
		}
		var eps []*proxyEndpoint
		for _, s := range clientURLs {
			if e, ok := old[s]; ok {
				eps = append(eps, e) // keeps its failure time
				continue
			}
			u, err := url.Parse(s)
			if err != nil || u.Host == "" {
				continue
			}
			eps = append(eps, &proxyEndpoint{url: u})
		}
		if !slices.Equal(endpointStrings(p.endpoints), endpointStrings(eps)) {
			slog.Info("proxy: endpoints found", "endpoints", clientURLs)
		}
		p.endpoints = eps
	}
	if len(peerURLs) > 0 && !slices.Equal(peerURLs, sortedCopy(p.peerURLs)) {
		slog.Info("proxy: updated peer urls in cluster file", "from", p.peerURLs, "to", peerURLs)
		p.peerURLs = peerURLs
		if err := p.saveClusterFile(peerURLs); err != nil {
			slog.Error("proxy: save cluster file", "err", err)
		}
	}
}

// fetchPeerMembers reads GET <peer>/members.
func fetchPeerMembers(client *http.Client, peer string) ([]memberView, error) {
	resp, err := client.Get(peer + "/members")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s/members: %s", peer, resp.Status)
	}
	ms, err := decodePeerMembers(b)
	if err != nil {
		return nil, fmt.Errorf("%s/members: %w", peer, err)
	}
	return ms, nil
}

// endpointStrings is the endpoints' URLs, sorted.
func endpointStrings(eps []*proxyEndpoint) []string {
	out := make([]string, len(eps))
	for i, e := range eps {
		out[i] = e.url.String()
	}
	sort.Strings(out)
	return out
}

// sortedCopy is a sorted copy of s.
func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// available returns the endpoints not held back by a recent failure, and
// how many endpoints there are in all.
func (p *proxy) available() []*proxyEndpoint {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*proxyEndpoint
	for _, e := range p.endpoints {
		if !now.Before(e.failedFor) {
			out = append(out, e)
		}
	}
	return out
}

// failed holds e back for --proxy-failure-wait.
func (p *proxy) failed(e *proxyEndpoint, err error) {
	slog.Info("proxy: failed to direct request", "endpoint", e.url.String(), "err", err)
	p.mu.Lock()
	e.failedFor = time.Now().Add(p.failureWait)
	p.mu.Unlock()
	slog.Info("proxy: marked endpoint unavailable", "endpoint", e.url.String(), "for", p.failureWait)
}
