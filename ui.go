// ui.go owns the status page at /ui/: the embedded HTML, CSS and JavaScript
// in ui/, the headers they are served with, and the two small JSON
// endpoints the page reads besides the v2 API: /ui/api/self (this member's
// raft position, state and health) and /ui/api/cluster (every member's,
// gathered by the serving member from its peers' client URLs, so that the
// page works through any member and behind a proxy).
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// uiFiles is the status page: plain files, served as they are.
//
//go:embed ui
var uiFiles embed.FS

// uiCSP is the Content-Security-Policy of every /ui/ answer: the page runs
// only its own script and style, talks only to the member that served it,
// and cannot be framed.
const uiCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// uiPeerTimeout bounds how long /ui/api/cluster waits for one peer.
const uiPeerTimeout = 1500 * time.Millisecond

// uiHealthTimeout bounds the quorum read /ui/api/self checks health with.
const uiHealthTimeout = time.Second

// uiContentType is the type a page's file is served with, by its
// extension: fixed here, not read from the host's MIME database, so that
// it never varies.
func uiContentType(ext string) string {
	switch ext {
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// uiAsset is one embedded file, ready to serve.
type uiAsset struct {
	body        []byte
	gzipped     []byte // nil when compressing does not pay
	contentType string
	etag        string // of body
	gzipETag    string // of gzipped: each encoding is its own representation
}

// loadUIAssets reads the embedded files once, with their ETags and
// gzipped forms.
func loadUIAssets() (map[string]*uiAsset, error) {
	assets := map[string]*uiAsset{}
	err := fs.WalkDir(uiFiles, "ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := uiFiles.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read embedded %s: %w", p, err)
		}
		sum := sha256.Sum256(b)
		a := &uiAsset{
			body:        b,
			contentType: uiContentType(path.Ext(p)),
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
		}
		var z bytes.Buffer
		zw, err := gzip.NewWriterLevel(&z, gzip.BestCompression)
		if err != nil {
			return fmt.Errorf("gzip %s: %w", p, err)
		}
		if _, err := zw.Write(b); err != nil {
			return fmt.Errorf("gzip %s: %w", p, err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("gzip %s: %w", p, err)
		}
		if z.Len() < len(b) {
			a.gzipped = z.Bytes()
			a.gzipETag = strings.TrimSuffix(a.etag, `"`) + `-gz"`
		}
		assets[strings.TrimPrefix(p, "ui/")] = a
		return nil
	})
	return assets, err
}

// mountUI puts the status page on the client API's mux.
func (s *server) mountUI(mux *http.ServeMux) {
	h := s.uiHandler()
	mux.Handle("/ui", h)
	mux.Handle("/ui/", h)
}

// uiHandler serves /ui/: the page's files, /ui/api/self and
// /ui/api/cluster. It is read-only: every other method is refused.
func (s *server) uiHandler() http.Handler {
	assets, err := loadUIAssets()
	if err != nil {
		// the files are compiled in: this cannot happen in a built binary
		slog.Error("status page", "err", err)
	}
	peers := &http.Client{
		Timeout: uiPeerTimeout,
		Transport: &http.Transport{
			Proxy:               nil, // peers are reached directly, never through HTTP_PROXY
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     30 * time.Second,
			DialTLSContext:      s.uiDialTLS,
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", uiCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if r.URL.Path == "/ui" {
			// relative, so that it still points at the page behind a
			// proxy that serves the cluster under a path of its own
			h.Set("Location", "ui/")
			w.WriteHeader(http.StatusMovedPermanently)
			return
		}
		if !allowMethod(w, r, "GET", "HEAD") {
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/ui/")
		switch name {
		case "api/self":
			h.Set("Cache-Control", "no-store")
			b, err := json.Marshal(s.uiSelfStatus(r.Context()))
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			writeJSON(w, http.StatusOK, b)
			return
		case "api/cluster":
			h.Set("Cache-Control", "no-store")
			b, err := json.Marshal(s.uiClusterStatus(r.Context(), peers))
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			writeJSON(w, http.StatusOK, b)
			return
		case "":
			name = "index.html"
		}
		a := assets[name]
		if a == nil {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", a.contentType)
		h.Set("Cache-Control", "no-cache") // revalidated, so a new binary's page is seen at once
		h.Set("Vary", "Accept-Encoding")
		body, etag := a.body, a.etag
		if a.gzipped != nil && acceptsGzip(r) && r.Header.Get("Range") == "" {
			h.Set("Content-Encoding", "gzip")
			body, etag = a.gzipped, a.gzipETag
		}
		h.Set("ETag", etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
	})
}

// uiDialTLS connects to another member's https client URL as a client of
// the client side's TLS: its CA (--trusted-ca-file) for the other member's
// certificate and this member's certificate as the client certificate, so
// that members under --client-cert-auth answer.
func (s *server) uiDialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	if s.tls == nil || s.tls.client == nil {
		return nil, fmt.Errorf("dial %s: an https client URL, but this member has no client TLS (--cert-file, --key-file)", addr)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	cfg, err := s.tls.client.clientConfig(host)
	if err != nil {
		return nil, fmt.Errorf("dial %s: client TLS: %w", addr, err)
	}
	d := &tls.Dialer{Config: cfg}
	return d.DialContext(ctx, network, addr)
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
				return true
			}
		}
	}
	return false
}

// uiSelf is /ui/api/self: this member's /v2/stats/self with the raft and
// store positions and the health /health would report.
type uiSelf struct {
	Stats     json.RawMessage `json:"stats"`
	Term      uint64          `json:"term"`
	RaftIndex uint64          `json:"raftIndex"`
	EtcdIndex uint64          `json:"etcdIndex"`
	Healthy   bool            `json:"healthy"`
	Version   string          `json:"version"`
}

// uiSelfStatus is this member's uiSelf; it waits for a quorum read (at
// most uiHealthTimeout) to tell its health.
func (s *server) uiSelfStatus(ctx context.Context) uiSelf {
	healthy := s.leader.Load() != 0
	if healthy {
		hctx, cancel := context.WithTimeout(ctx, uiHealthTimeout)
		healthy = s.linearizableRead(hctx) == nil
		cancel()
	}
	return uiSelf{
		Stats:     s.stats.selfJSON(s.transport.Totals()),
		Term:      s.term.Load(),
		RaftIndex: s.appliedIndexPub.Load(),
		EtcdIndex: s.store.Index(),
		Healthy:   healthy,
		Version:   etcdServerVersion,
	}
}

// uiMember is one member in /ui/api/cluster: its record, and its status
// as it reported it, or why it could not.
type uiMember struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	Status     *uiSelf  `json:"status,omitempty"`
	Error      string   `json:"error,omitempty"`
}

// uiCluster is /ui/api/cluster.
type uiCluster struct {
	ClusterID   string          `json:"clusterId"`
	Self        string          `json:"self"`
	Leader      string          `json:"leader"`
	Term        uint64          `json:"term"`
	Version     string          `json:"version"`
	Members     []uiMember      `json:"members"`
	Store       json.RawMessage `json:"store"`
	LeaderStats json.RawMessage `json:"leaderStats,omitempty"`
	LeaderError string          `json:"leaderError,omitempty"`
}

// uiClusterStatus gathers every member's status: this member's directly,
// the others' from /ui/api/self on their client URLs, all at once and each
// within uiPeerTimeout; and the leader's /v2/stats/leader.
func (s *server) uiClusterStatus(ctx context.Context, peers *http.Client) uiCluster {
	lead := s.leader.Load()
	out := uiCluster{
		ClusterID: idString(s.clusterID),
		Self:      idString(s.id),
		Leader:    idString(lead),
		Term:      s.term.Load(),
		Version:   etcdServerVersion,
		Store:     s.store.StatsJSON(),
	}
	if lead == 0 {
		out.Leader = ""
	}
	ms := membersFromStore(s.store)
	out.Members = make([]uiMember, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		um := &out.Members[i]
		*um = uiMember{ID: idString(m.ID), Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs}
		if m.ID == s.id {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st := s.uiSelfStatus(ctx)
				um.Status = &st
			}()
			continue
		}
		if len(m.ClientURLs) == 0 {
			um.Error = "not started yet: it has not published its client URLs"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st uiSelf
			if err := fetchFromMember(ctx, peers, m.ClientURLs, "/ui/api/self", &st); err != nil {
				um.Error = err.Error()
				return
			}
			um.Status = &st
		}()
	}
	if lead == s.id {
		if b, ok := s.stats.leaderJSON(s.transport.PeerStats()); ok {
			out.LeaderStats = b
		}
	} else if lead != 0 {
		var urls []string
		for _, m := range ms {
			if m.ID == lead {
				urls = m.ClientURLs
			}
		}
		var raw json.RawMessage
		if err := fetchFromMember(ctx, peers, urls, "/v2/stats/leader", &raw); err != nil {
			out.LeaderError = err.Error()
		} else {
			out.LeaderStats = raw
		}
	}
	wg.Wait()
	return out
}

// fetchFromMember GETs path from the first of a member's client URLs that
// answers 200 and decodes the JSON answer into v.
func fetchFromMember(ctx context.Context, c *http.Client, urls []string, path string, v any) error {
	if len(urls) == 0 {
		return fmt.Errorf("no client URL")
	}
	var errs []string
	for _, u := range urls {
		err := fetchJSON(ctx, c, strings.TrimSuffix(u, "/")+path, v)
		if err == nil {
			return nil
		}
		errs = append(errs, err.Error())
	}
	return fmt.Errorf("%s", strings.Join(errs, "; "))
}

// fetchJSON GETs url and decodes its JSON answer into v.
func fetchJSON(ctx context.Context, c *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err // it names the method and the URL
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}
