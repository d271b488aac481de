// The client HTTP API: routing, the keys handlers, the answers' headers and
// bodies.

package main

import (
	"context"
	"net/http"
	"net/http/pprof"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"etcdlite/kv"
)

// keysURLPrefix is the path of the keys API.
const keysURLPrefix = "/v2/keys"

// bufPool holds the buffers answers are written in and form bodies are
// read into (form.go).
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// putBuf gives a buffer back to bufPool, b being what it grew into,
// unless it grew too large to keep around.
func putBuf(bp *[]byte, b []byte) {
	if cap(b) <= 64<<10 {
		*bp = b
		bufPool.Put(bp)
	}
}

// clientHandler routes the client API.
func (s *server) clientHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(keysURLPrefix, s.handleKeys)
	mux.HandleFunc(keysURLPrefix+"/", s.handleKeys)
	mux.HandleFunc("/v2/members", s.handleMembers)
	mux.HandleFunc("/v2/members/", s.handleMembers)
	mux.HandleFunc("/v2/machines", s.handleMachines)
	s.registerAuth(mux)
	mux.HandleFunc("/v2/stats/self", s.handleStatsSelf)
	mux.HandleFunc("/v2/stats/leader", s.handleStatsLeader)
	mux.HandleFunc("/v2/stats/store", s.handleStatsStore)
	mux.HandleFunc("/version", s.handleVersion)
	mux.HandleFunc("/health", s.handleHealth)
	s.mountUI(mux)
	mux.HandleFunc("/v2/backup", s.handleBackup)
	mux.HandleFunc("/metrics", s.handleMetrics)
	if s.cfg.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	keys := http.HandlerFunc(s.handleKeys)
	return hostGuard(newHostPolicy(s.cfg.HostWhitelist), s.limitRequests(cors(newCORSPolicy(s.cfg.CORS), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// the keys API is nearly all the traffic: skip the mux for it
		if p := r.URL.Path; len(p) >= len(keysURLPrefix) && p[:len(keysURLPrefix)] == keysURLPrefix &&
			(len(p) == len(keysURLPrefix) || p[len(keysURLPrefix)] == '/') {
			keys.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	}))))
}

// Header values every answer shares. They are never modified: net/http
// copies the header map before it writes it out.
var (
	corsAllowHeaders = []string{"accept, content-type, authorization"}
	corsAllowMethods = []string{"POST, GET, OPTIONS, PUT, DELETE"}
	corsAllowOrigin  = []string{"*"}
	jsonContentType  = []string{"application/json"}
)

// cors adds the cross-origin headers etcd sends (to the origins policy
// allows, cors.go) and answers preflights.
func cors(policy *corsPolicy, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		policy.setHeaders(w.Header(), r)
		if r.Method == http.MethodOptions {
			return
		}
		if p := cleanURLPath(r.URL.Path); p != r.URL.Path {
			// as etcd (and Go's mux of its day) does: a permanent redirect
			u := *r.URL
			u.Path = p
			http.Redirect(w, r, u.RequestURI(), http.StatusMovedPermanently)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cleanURLPath is p without . and .. elements or doubled slashes, keeping
// a trailing slash.
func cleanURLPath(p string) string {
	if isCleanPath(p, true) {
		return p
	}
	return canonicalPath(p)
}

// canonicalPath cleans p as etcd does for URL paths, keeping a trailing
// slash.
func canonicalPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// allowMethod answers 405 unless the request's method is one of ms.
func allowMethod(w http.ResponseWriter, r *http.Request, ms ...string) bool {
	for _, m := range ms {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(ms, ","))
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	return false
}

// keyRequest is a parsed /v2/keys request.
type keyRequest struct {
	req              kv.Request
	wait             bool
	stream           bool
	quorum           bool
	sorted           bool
	since            uint64
	noValueOnSuccess bool
}

// parseKeyRequest reads a keys request's form and query the way etcd does,
// checking the fields in etcd's order so the same error wins. It fills kr,
// which the caller owns (so that a request costs no allocation for it).
func parseKeyRequest(r *http.Request, now time.Time, kr *keyRequest) *kv.Error {
	var form keyParams
	if err := readKeyParams(r, &form); err != nil {
		return kv.NewError(kv.EcodeInvalidForm, err.Error(), 0)
	}
	kr.req.Path = keyPath(r.URL.Path[len(keysURLPrefix):])
	if err := form.uintParam(paramPrevIndex, &kr.req.PrevIndex); err != nil {
		return err
	}
	if err := form.uintParam(paramWaitIndex, &kr.since); err != nil {
		return err
	}
	for _, f := range [...]struct {
		param int
		dst   *bool
	}{
		{paramRecursive, &kr.req.Recursive},
		{paramSorted, &kr.sorted},
		{paramWait, &kr.wait},
		{paramDir, &kr.req.Dir},
		{paramQuorum, &kr.quorum},
		{paramStream, &kr.stream},
	} {
		if err := form.boolParam(f.param, "", f.dst); err != nil {
			return err
		}
	}
	if kr.wait && r.Method != http.MethodGet {
		return kv.NewError(kv.EcodeInvalidField, `"wait" can only be used with GET requests`, 0)
	}
	kr.req.PrevValue = form.get(paramPrevValue)
	if form.has(paramPrevValue) && kr.req.PrevValue == "" {
		return kv.NewError(kv.EcodePrevValueRequired, `"prevValue" cannot be empty`, 0)
	}
	if err := form.boolParam(paramNoValueOnSuccess, "", &kr.noValueOnSuccess); err != nil {
		return err
	}
	var ttl uint64
	hasTTL := false
	if v := form.get(paramTTL); len(v) > 0 {
		n, perr := strconv.ParseUint(v, 10, 64)
		if perr != nil {
			return kv.NewError(kv.EcodeTTLNaN, `invalid value for "ttl"`, 0)
		}
		ttl, hasTTL = n, true
	}
	if form.has(paramPrevExist) {
		var pe bool
		if err := form.boolParam(paramPrevExist, "invalid value for prevExist", &pe); err != nil {
			return err
		}
		kr.req.PrevExist = kv.PrevExistFalse
		if pe {
			kr.req.PrevExist = kv.PrevExistTrue
		}
	}
	if form.has(paramRefresh) {
		if err := form.boolParam(paramRefresh, "invalid value for refresh", &kr.req.Refresh); err != nil {
			return err
		}
		if kr.req.Refresh {
			if form.get(paramValue) != "" {
				return kv.NewError(kv.EcodeRefreshValue, "A value was provided on a refresh", 0)
			}
			if !hasTTL {
				return kv.NewError(kv.EcodeRefreshTTLRequired, "No TTL value set", 0)
			}
		}
	}
	kr.req.Value = form.get(paramValue)
	kr.req.Time = now.UnixNano()
	if hasTTL {
		kr.req.Expiration = expirationFor(kr.req.Time, ttl)
	}
	return nil
}

// uintParam parses the parameter, when given, as an index into dst.
func (p *keyParams) uintParam(i int, dst *uint64) *kv.Error {
	if !p.has(i) {
		return nil
	}
	v, err := strconv.ParseUint(p.get(i), 10, 64)
	if err != nil {
		return kv.NewError(kv.EcodeIndexNaN, `invalid value for "`+keyParamNames[i]+`"`, 0)
	}
	*dst = v
	return nil
}

// boolParam parses the parameter, when given, into dst; a bad value is
// error 209 with cause, or by default one that names the parameter.
func (p *keyParams) boolParam(i int, cause string, dst *bool) *kv.Error {
	if !p.has(i) {
		return nil
	}
	v, err := strconv.ParseBool(p.get(i))
	if err != nil {
		if cause == "" {
			cause = `invalid value for "` + keyParamNames[i] + `"`
		}
		return kv.NewError(kv.EcodeInvalidField, cause, 0)
	}
	*dst = v
	return nil
}

// keyPath is the store path of the key named by rest, the URL path after
// /v2/keys. A clean one (the usual case) costs one concatenation.
func keyPath(rest string) string {
	if isCleanPath(rest, false) && rest != "/" {
		return keysPrefix + rest
	}
	return path.Join(keysPrefix, rest)
}

// isCleanPath reports whether p is absolute with no empty, "." or ".."
// element, so that path.Clean would return it unchanged, apart from a
// trailing slash when trailingSlash is set.
func isCleanPath(p string, trailingSlash bool) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	start := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		switch p[start:i] {
		case "":
			if i != len(p) || !(trailingSlash || i == 1) {
				return false
			}
		case ".", "..":
			return false
		}
		start = i + 1
	}
	return true
}

// expirationFor is when a node written at now with ttl seconds expires.
// The arithmetic wraps around as etcd's does, so absurd TTLs behave as
// there: one that wraps into the past expires at the next sweep, one that
// wraps below the year 2000 never expires.
func expirationFor(now int64, ttl uint64) int64 {
	return now + int64(ttl)*int64(time.Second)
}

// handleKeys serves /v2/keys.
func (s *server) handleKeys(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, "HEAD", "GET", "PUT", "POST", "DELETE") {
		return
	}
	w.Header()["X-Etcd-Cluster-Id"] = s.clusterIDHeader
	var kr keyRequest
	start := time.Now() // the request's duration, and its time unless a test's clock runs
	now := start
	if s.clockHook {
		now = s.now()
	}
	if kerr := parseKeyRequest(r, now, &kr); kerr != nil {
		s.writeError(w, kerr)
		return
	}
	if !s.authorizeKey(r, r.URL.Path[len(keysURLPrefix):], kr.req.Recursive) {
		s.writeKeyNoAuth(w)
		return
	}
	var ev *kv.Event
	var err error
	mi := httpMethodIndex(r.Method, kr.quorum)
	s.metrics.http.received[mi].Add(1)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if kr.wait && !kr.quorum { // etcd: a quorum read ignores wait
			s.metrics.watchRequests.Add(1)
			s.handleWatch(w, r, &kr)
			return
		}
		if kr.quorum {
			if err := s.linearizableRead(r.Context()); err != nil {
				s.keysError(w, mi, err)
				return
			}
			now = s.now() // the TTLs as of the read, after the wait
		}
		if kerr := s.writeRead(w, &kr, now); kerr != nil {
			s.keysError(w, mi, kerr)
			return
		}
		s.metrics.http.success[mi].observe(time.Since(start))
		return
	case http.MethodPut:
		kr.req.Method = kv.MethodPut
		ev, err = s.propose(r.Context(), &kr.req)
	case http.MethodPost:
		kr.req.Method = kv.MethodPost
		ev, err = s.propose(r.Context(), &kr.req)
	case http.MethodDelete:
		kr.req.Method = kv.MethodDelete
		ev, err = s.propose(r.Context(), &kr.req)
	}
	if err != nil {
		s.keysError(w, mi, err)
		return
	}
	s.writeEvent(w, ev, kr.noValueOnSuccess)
	s.metrics.http.success[mi].observe(time.Since(start))
}

// writePositionHeaders sets X-Etcd-Index to etcdIndex and the raft
// position of this member.
func (s *server) writePositionHeaders(h http.Header, etcdIndex uint64) {
	c := s.posHeaders.positionHeadersFor(etcdIndex, s.appliedIndexPub.Load(), s.term.Load())
	h["X-Etcd-Index"] = c.vals[0:1:1]
	h["X-Raft-Index"] = c.vals[1:2:2]
	h["X-Raft-Term"] = c.vals[2:3:3]
}

// positionHeaders holds the values of X-Etcd-Index, X-Raft-Index and
// X-Raft-Term for one position of the store and raft, made once and shared
// by every answer given at that position (net/http copies the header map
// before it writes it, and nothing changes the values in it).
type positionHeaders struct {
	etcdIndex, raftIndex, term uint64
	vals                       [3]string
}

// positionHeaderCache holds the position a server answered last: reads
// between writes, and many answers after one commit, find their values
// there. Each server has its own (server.posHeaders).
type positionHeaderCache struct {
	last atomic.Pointer[positionHeaders]
}

// positionHeadersFor returns the header values of a position, shared
// when it is the one answered last.
func (pc *positionHeaderCache) positionHeadersFor(etcdIndex, raftIndex, term uint64) *positionHeaders {
	if c := pc.last.Load(); c != nil && c.etcdIndex == etcdIndex && c.raftIndex == raftIndex && c.term == term {
		return c
	}
	c := &positionHeaders{etcdIndex: etcdIndex, raftIndex: raftIndex, term: term}
	var buf [3 * 20]byte
	b := strconv.AppendUint(buf[:0], etcdIndex, 10)
	e := len(b)
	b = strconv.AppendUint(b, raftIndex, 10)
	r := len(b)
	b = strconv.AppendUint(b, term, 10)
	all := string(b)
	c.vals = [3]string{all[:e], all[e:r], all[r:]}
	pc.last.Store(c)
	return c
}

// bufferedBody is how much of a body net/http holds before it starts
// sending: a smaller one it measures itself, a larger one it would send in
// chunks unless told the length.
const bufferedBody = 2048

// writeRead answers a read of the store as of now, its JSON appended by the
// store straight into a pooled buffer; a failed read answers nothing.
func (s *server) writeRead(w http.ResponseWriter, kr *keyRequest, now time.Time) *kv.Error {
	bp := bufPool.Get().(*[]byte)
	b, index, kerr := s.store.AppendGet((*bp)[:0], kr.req.Path, kr.req.Recursive, kr.sorted, now.UnixNano(), keysPrefix)
	if kerr == nil {
		s.writeAnswer(w, index, false, b)
	}
	putBuf(bp, b)
	return kerr
}

// writeEvent answers with ev, as etcd does, with the store's and raft's
// positions in the headers; noValue drops the nodes of a successful write.
func (s *server) writeEvent(w http.ResponseWriter, ev *kv.Event, noValue bool) {
	omit := noValue && (ev.Action == kv.ActionSet || ev.Action == kv.ActionCompareAndSwap ||
		ev.Action == kv.ActionCreate || ev.Action == kv.ActionUpdate)
	bp := bufPool.Get().(*[]byte)
	b := ev.AppendJSON((*bp)[:0], keysPrefix, omit)
	s.writeAnswer(w, ev.EtcdIndex, ev.IsCreated(), b)
	putBuf(bp, b)
}

// writeAnswer answers with the JSON body b, the store's position
// etcdIndex and raft's in the headers, and 201 when created is set.
func (s *server) writeAnswer(w http.ResponseWriter, etcdIndex uint64, created bool, b []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	s.writePositionHeaders(h, etcdIndex)
	if len(b) >= bufferedBody {
		h["Content-Length"] = []string{strconv.Itoa(len(b))}
	}
	if created {
		w.WriteHeader(http.StatusCreated)
	}
	w.Write(b)
}

// writeError answers with an etcd error; errors that are not the store's
// become error 300 with the reason as cause.
func (s *server) writeError(w http.ResponseWriter, err error) {
	kerr, ok := err.(*kv.Error)
	if !ok {
		kerr = kv.NewError(kv.EcodeRaftInternal, err.Error(), 0)
	}
	h := w.Header()
	// an error's index is mostly the store's current one: the one the
	// answers around it share
	h["X-Etcd-Index"] = s.posHeaders.positionHeadersFor(kerr.Index, s.appliedIndexPub.Load(), s.term.Load()).vals[0:1:1]
	h["Content-Type"] = jsonContentType
	w.WriteHeader(kerr.StatusCode())
	bp := bufPool.Get().(*[]byte)
	b := kerr.AppendJSON((*bp)[:0], keysPrefix)
	w.Write(b)
	putBuf(bp, b)
}

// handleWatch serves a wait=true GET: it answers with the first matching
// event, or with every one when stream is set, until the client leaves.
func (s *server) handleWatch(w http.ResponseWriter, r *http.Request, kr *keyRequest) {
	watcher, kerr := s.store.Watch(kr.req.Path, kr.req.Recursive, kr.stream, kr.since)
	if kerr != nil {
		s.store.CountGetFail()
		s.writeError(w, kerr)
		return
	}
	parked := false
	defer func() {
		if !parked {
			s.store.Unwatch(watcher)
		}
	}()
	h := w.Header()
	h["Content-Type"] = jsonContentType
	s.writePositionHeaders(h, watcher.StartIndex())
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	if !kr.stream && s.parkWatch(w, r, watcher) { // longpoll.go: it waits outside net/http
		parked = true
		return
	}
	ctx := r.Context()
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.stopc:
			return
		case ev, ok := <-watcher.EventChan():
			if !ok {
				return
			}
			buf = ev.AppendJSON(buf[:0], keysPrefix, false)
			if _, err := w.Write(buf); err != nil {
				return
			}
			if !kr.stream {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
	}
}

// writeJSON answers with status and the JSON body b.
func writeJSON(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// handleVersion serves /version.
func (s *server) handleVersion(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, "GET") {
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"etcdserver":"`+etcdServerVersion+`","etcdcluster":"`+etcdClusterVersion+`"}`))
}

// handleHealth reports healthy when there is a leader and a quorum read
// goes through.
func (s *server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if !allowMethod(w, r, "GET") {
		return
	}
	healthy := s.leader.Load() != 0
	if healthy {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		healthy = s.linearizableRead(ctx) == nil
		cancel()
	}
	if healthy {
		s.metrics.healthSuccess.Add(1)
	} else {
		s.metrics.healthFailures.Add(1)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !healthy {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"health":"false"}`))
		return
	}
	w.Write([]byte(`{"health":"true"}`))
}

// peerHandler serves the peer URLs: raft traffic between members (/raft,
// the transport's handler), and what etcd's peer endpoint answers about
// membership and version.
func (s *server) peerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/members", func(w http.ResponseWriter, r *http.Request) {
		ms := membersFromStore(s.store)
		views := make([]peerMemberView, len(ms))
		for i, m := range ms {
			views[i] = peerMemberView{ID: m.ID, PeerURLs: m.PeerURLs, Name: m.Name, ClientURLs: m.ClientURLs}
		}
		b := mustJSONBytes(views)
		w.Header()["X-Etcd-Cluster-Id"] = []string{idString(s.clusterID)}
		writeJSON(w, http.StatusOK, b)
	})
	mux.HandleFunc("/version", s.handleVersion)
	mux.Handle("/raft", s.transport.Handler())
	mux.Handle("/raft/", s.transport.Handler())
	return mux
}
