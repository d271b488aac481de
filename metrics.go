// /metrics: etcd 3.4's metrics in the Prometheus text format.

package main

// This file owns /metrics: the Prometheus text exposition format (version
// 0.0.4), written by hand, with etcd 3.4's metric names, types and help
// texts for what applies to a v2 server (testdata/metrics holds what a real
// etcd 3.4.23 exports). What the hot paths count (writes, fsyncs, peer
// bytes, requests) is atomics only: no lock and no allocation per event.
// Everything else (store counters, raft positions, process and Go runtime
// figures) is read when /metrics is scraped. --listen-metrics-urls serves
// /metrics and /health on listeners of their own.

import (
	"encoding/json"
	"math"
	"net/http"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"etcdlite/kv"
)

// Bucket upper bounds, in seconds, as etcd 3.4 defines them.
var (
	// etcd_disk_wal_fsync_duration_seconds: 1 ms doubling to 8.192 s
	walFsyncBuckets = expBuckets(0.001, 2, 14)
	// etcd_network_peer_round_trip_time_seconds: 0.1 ms doubling to 3.2768 s
	peerRTTBuckets = expBuckets(0.0001, 2, 16)
	// etcd_http_successful_duration_seconds: 0.5 ms doubling to 2.048 s
	httpDurationBuckets = expBuckets(0.0005, 2, 13)
)

// expBuckets returns n bounds from start, each factor times the last.
func expBuckets(start, factor float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = start
		start *= factor
	}
	return out
}

// histogram is a Prometheus histogram updated with atomics only.
type histogram struct {
	bounds []float64       // upper bounds in seconds, ascending
	limits []int64         // the same in nanoseconds
	counts []atomic.Uint64 // per bucket (not cumulative); the last is +Inf
	sumNs  atomic.Int64
}

// newHistogram returns an empty histogram with the given bounds.
func newHistogram(bounds []float64) *histogram {
	h := &histogram{bounds: bounds, limits: make([]int64, len(bounds)), counts: make([]atomic.Uint64, len(bounds)+1)}
	for i, b := range bounds {
		h.limits[i] = int64(math.Round(b * 1e9))
	}
	return h
}

// observe records one duration.
func (h *histogram) observe(d time.Duration) {
	ns := int64(d)
	i := 0
	for i < len(h.limits) && ns > h.limits[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(ns)
}

// walMetrics is what the write-ahead log counts.
type walMetrics struct {
	fsync   *histogram
	written atomic.Uint64 // bytes written
}

// httpMethods are the method labels of the etcd_http_* families, as etcd
// names them (a quorum GET is QGET).
var httpMethods = [...]string{"GET", "QGET", "PUT", "POST", "DELETE", "HEAD"}

// httpStatuses are the statuses failed requests are counted under; any
// other is counted as 500.
var httpStatuses = [...]int{400, 401, 403, 404, 405, 409, 412, 500, 503}

// httpMetrics counts the keys API's requests as etcd's etcd_http_* do.
type httpMetrics struct {
	received [len(httpMethods)]atomic.Uint64
	failed   [len(httpMethods)][len(httpStatuses)]atomic.Uint64
	success  [len(httpMethods)]*histogram
}

// httpMethodIndex is the index of a request's label in httpMethods.
func httpMethodIndex(method string, quorum bool) int {
	switch method {
	case http.MethodGet:
		if quorum {
			return 1
		}
		return 0
	case http.MethodPut:
		return 2
	case http.MethodPost:
		return 3
	case http.MethodDelete:
		return 4
	}
	return 5
}

// serverMetrics is what a member counts for /metrics.
type serverMetrics struct {
	leaderChanges    atomic.Uint64
	committed        atomic.Uint64 // commit index
	failed           atomic.Uint64 // proposals that failed (not a store error)
	healthSuccess    atomic.Uint64
	healthFailures   atomic.Uint64
	watchRequests    atomic.Uint64
	snapshotDuration *histogram // etcd_debugging_snap_save_total_duration_seconds
	wal              walMetrics
	http             httpMetrics
}

// newServerMetrics returns zeroed metrics.
func newServerMetrics() *serverMetrics {
	m := &serverMetrics{snapshotDuration: newHistogram(walFsyncBuckets)}
	m.wal.fsync = newHistogram(walFsyncBuckets)
	for i := range m.http.success {
		m.http.success[i] = newHistogram(httpDurationBuckets)
	}
	return m
}

// keysFailed counts a keys request of method index mi that failed with err.
func (m *serverMetrics) keysFailed(mi int, err error) {
	status := http.StatusInternalServerError
	if kerr, ok := err.(*kv.Error); ok {
		status = kerr.StatusCode()
	}
	si := 7 // 500
	for i, st := range httpStatuses {
		if st == status {
			si = i
		}
	}
	m.http.failed[mi][si].Add(1)
}

// keysError counts a failed keys request and answers it.
func (s *server) keysError(w http.ResponseWriter, mi int, err error) {
	s.metrics.keysFailed(mi, err)
	s.writeError(w, err)
}

// expo writes the text exposition format.
type expo struct {
	b []byte
}

// family starts a metric family.
func (e *expo) family(name, typ, help string) {
	e.b = append(e.b, "# HELP "...)
	e.b = append(e.b, name...)
	e.b = append(e.b, ' ')
	e.b = appendEscaped(e.b, help, false)
	e.b = append(e.b, "\n# TYPE "...)
	e.b = append(e.b, name...)
	e.b = append(e.b, ' ')
	e.b = append(e.b, typ...)
	e.b = append(e.b, '\n')
}

// sample writes one sample; labels are name, value pairs.
func (e *expo) sample(name string, v float64, labels ...string) {
	e.b = append(e.b, name...)
	if len(labels) > 0 {
		e.b = append(e.b, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			e.b = append(e.b, labels[i]...)
			e.b = append(e.b, `="`...)
			e.b = appendEscaped(e.b, labels[i+1], true)
			e.b = append(e.b, '"')
		}
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, ' ')
	e.b = appendFloat(e.b, v)
	e.b = append(e.b, '\n')
}

// appendEscaped appends s with backslashes and newlines escaped, and
// double quotes too when quotes is set (a label value), as the format
// requires.
func appendEscaped(b []byte, s string, quotes bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quotes:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat formats a sample value as Prometheus' Go client does.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// single writes a family of one unlabelled sample.
func (e *expo) single(name, typ, help string, v float64) {
	e.family(name, typ, help)
	e.sample(name, v)
}

// histogram writes the samples of h: cumulative buckets, +Inf, sum, count.
func (e *expo) histogram(name string, h *histogram, labels ...string) {
	var cum uint64
	lb := append(append([]string(nil), labels...), "le", "")
	for i := range h.counts {
		cum += h.counts[i].Load()
		if i < len(h.bounds) {
			lb[len(lb)-1] = string(appendFloat(nil, h.bounds[i]))
		} else {
			lb[len(lb)-1] = "+Inf"
		}
		e.sample(name+"_bucket", float64(cum), lb...)
	}
	e.sample(name+"_sum", float64(h.sumNs.Load())/1e9, labels...)
	e.sample(name+"_count", float64(cum), labels...)
}

// metricsFamily is one family's name and the function writing it.
type metricsFamily struct {
	name  string
	write func(e *expo)
}

// metricsSet collects the families of one exposition.
type metricsSet struct{ fams []metricsFamily }

// add adds a family written by write.
func (m *metricsSet) add(name string, write func(e *expo)) {
	m.fams = append(m.fams, metricsFamily{name, write})
}

// gauge adds a family of one gauge sample.
func (m *metricsSet) gauge(name, help string, v float64) {
	m.add(name, func(e *expo) { e.single(name, "gauge", help, v) })
}

// counter adds a family of one counter sample.
func (m *metricsSet) counter(name, help string, v float64) {
	m.add(name, func(e *expo) { e.single(name, "counter", help, v) })
}

// info adds a gauge family of one sample 1 with one label.
func (m *metricsSet) info(name, help, label, value string) {
	m.add(name, func(e *expo) { e.family(name, "gauge", help); e.sample(name, 1, label, value) })
}

// text writes the families sorted by name, into a buffer of sizeHint bytes
// to begin with.
func (m *metricsSet) text(sizeHint int) []byte {
	sort.Slice(m.fams, func(i, j int) bool { return m.fams[i].name < m.fams[j].name })
	e := &expo{b: make([]byte, 0, sizeHint)}
	for _, f := range m.fams {
		f.write(e)
	}
	return e.b
}

// serveMetrics answers a GET or HEAD of /metrics with the exposition text
// makes.
func serveMetrics(w http.ResponseWriter, r *http.Request, text func() []byte) {
	if !allowMethod(w, r, "GET", "HEAD") {
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write(text())
}

// handleMetrics serves /metrics.
func (s *server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	serveMetrics(w, r, s.metricsText)
}

// metricsText is the whole exposition, families sorted by name.
func (s *server) metricsText() []byte {
	set := &metricsSet{}
	add, gauge, counter, info := set.add, set.gauge, set.counter, set.info
	m := s.metrics
	lead := s.leader.Load()
	gauge("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.", b2f(lead != 0))
	gauge("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.", b2f(lead != 0 && lead == s.id))
	gauge("etcd_server_is_learner", "Whether or not this member is a learner. 1 if is, 0 otherwise.", 0)
	counter("etcd_server_leader_changes_seen_total", "The number of leader changes seen.", float64(m.leaderChanges.Load()))
	applied := s.appliedIndexPub.Load()
	// the commit index is known from the first hard state raft hands over;
	// until then (a restart), what is applied was committed
	gauge("etcd_server_proposals_committed_total", "The total number of consensus proposals committed.", float64(max(m.committed.Load(), applied)))
	gauge("etcd_server_proposals_applied_total", "The total number of consensus proposals applied.", float64(applied))
	gauge("etcd_server_proposals_pending", "The current number of pending proposals to commit.", float64(s.waits.len()))
	counter("etcd_server_proposals_failed_total", "The total number of failed proposals seen.", float64(m.failed.Load()))
	counter("etcd_server_health_success", "The total number of successful health checks", float64(m.healthSuccess.Load()))
	counter("etcd_server_health_failures", "The total number of failed health checks", float64(m.healthFailures.Load()))
	info("etcd_server_id", "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.", "server_id", idString(s.id))
	info("etcd_server_version", "Which version is running. 1 for 'server_version' label with current version.", "server_version", etcdServerVersion)
	info("etcd_cluster_version", "Which version is running. 1 for 'cluster_version' label with current cluster version", "cluster_version", etcdClusterVersion[:strings.LastIndexByte(etcdClusterVersion, '.')])
	info("etcd_server_go_version", "Which Go version server is running with. 1 for 'server_go_version' label with current version.", "server_go_version", runtime.Version())

	add("etcd_disk_wal_fsync_duration_seconds", func(e *expo) {
		e.family("etcd_disk_wal_fsync_duration_seconds", "histogram", "The latency distributions of fsync called by WAL.")
		e.histogram("etcd_disk_wal_fsync_duration_seconds", m.wal.fsync)
	})
	gauge("etcd_disk_wal_write_bytes_total", "Total number of bytes written in WAL.", float64(m.wal.written.Load()))
	add("etcd_debugging_snap_save_total_duration_seconds", func(e *expo) {
		e.family("etcd_debugging_snap_save_total_duration_seconds", "histogram", "The total latency distributions of save called by snapshot.")
		e.histogram("etcd_debugging_snap_save_total_duration_seconds", m.snapshotDuration)
	})

	s.peerFamilies(add)
	s.storeFamilies(add, gauge, counter)
	httpFamilies(m, add)
	processFamilies(add, gauge, counter)
	goFamilies(add, gauge, counter)

	return set.text(32 << 10)
}

// b2f is 1 for true, 0 for false.
func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// peerFamilies adds the etcd_network_* families, one sample per peer.
func (s *server) peerFamilies(add func(string, func(*expo))) {
	peers := s.transport.PeerMetrics()
	if len(peers) == 0 {
		return
	}
	local := idString(s.id)
	add("etcd_network_active_peers", func(e *expo) {
		e.family("etcd_network_active_peers", "gauge", "The current number of active peer connections.")
		for _, p := range peers {
			e.sample("etcd_network_active_peers", b2f(p.connected), "Local", local, "Remote", idString(p.id))
		}
	})
	var failed, disconnected []peerMetric
	for _, p := range peers {
		if p.failed > 0 {
			failed = append(failed, p)
		}
		if p.disconnects > 0 {
			disconnected = append(disconnected, p)
		}
	}
	if len(failed) > 0 {
		add("etcd_network_peer_sent_failures_total", func(e *expo) {
			e.family("etcd_network_peer_sent_failures_total", "counter", "The total number of send failures from peers.")
			for _, p := range failed {
				e.sample("etcd_network_peer_sent_failures_total", float64(p.failed), "To", idString(p.id))
			}
		})
	}
	if len(disconnected) > 0 {
		add("etcd_network_disconnected_peers_total", func(e *expo) {
			e.family("etcd_network_disconnected_peers_total", "counter", "The total number of disconnected peers.")
			for _, p := range disconnected {
				e.sample("etcd_network_disconnected_peers_total", float64(p.disconnects), "Local", local, "Remote", idString(p.id))
			}
		})
	}
	add("etcd_network_peer_sent_bytes_total", func(e *expo) {
		e.family("etcd_network_peer_sent_bytes_total", "counter", "The total number of bytes sent to peers.")
		for _, p := range peers {
			e.sample("etcd_network_peer_sent_bytes_total", float64(p.sent), "To", idString(p.id))
		}
	})
	add("etcd_network_peer_received_bytes_total", func(e *expo) {
		e.family("etcd_network_peer_received_bytes_total", "counter", "The total number of bytes received from peers.")
		for _, p := range peers {
			e.sample("etcd_network_peer_received_bytes_total", float64(p.received), "From", idString(p.id))
		}
	})
	add("etcd_network_peer_round_trip_time_seconds", func(e *expo) {
		e.family("etcd_network_peer_round_trip_time_seconds", "histogram", "Round-Trip-Time histogram between peers")
		for _, p := range peers {
			e.histogram("etcd_network_peer_round_trip_time_seconds", p.rtt, "To", idString(p.id))
		}
	})
}

// storeFamilies adds the v2 store's etcd_debugging_store_* families, from
// the counters /v2/stats/store reports.
func (s *server) storeFamilies(add func(string, func(*expo)), gauge, counter func(string, string, float64)) {
	var st map[string]uint64
	if err := json.Unmarshal(s.store.StatsJSON(), &st); err != nil {
		return
	}
	add("etcd_debugging_store_reads_total", func(e *expo) {
		e.family("etcd_debugging_store_reads_total", "counter", "Total number of reads action by (get/getRecursive), local to this member.")
		e.sample("etcd_debugging_store_reads_total", float64(st["getsSuccess"]+st["getsFail"]), "action", "get")
	})
	add("etcd_debugging_store_reads_failed_total", func(e *expo) {
		e.family("etcd_debugging_store_reads_failed_total", "counter", "Failed read actions by (get/getRecursive), local to this member.")
		e.sample("etcd_debugging_store_reads_failed_total", float64(st["getsFail"]), "action", "get")
	})
	writes := []struct{ action, stat string }{
		{"compareAndDelete", "compareAndDelete"}, {"compareAndSwap", "compareAndSwap"}, {"create", "create"},
		{"delete", "delete"}, {"set", "sets"}, {"update", "update"},
	}
	add("etcd_debugging_store_writes_total", func(e *expo) {
		e.family("etcd_debugging_store_writes_total", "counter", "Total number of writes (e.g. set/compareAndDelete) seen by this member.")
		for _, w := range writes {
			e.sample("etcd_debugging_store_writes_total", float64(st[w.stat+"Success"]+st[w.stat+"Fail"]), "action", w.action)
		}
	})
	add("etcd_debugging_store_writes_failed_total", func(e *expo) {
		e.family("etcd_debugging_store_writes_failed_total", "counter", "Failed write actions (e.g. set/compareAndDelete), seen by this member.")
		for _, w := range writes {
			e.sample("etcd_debugging_store_writes_failed_total", float64(st[w.stat+"Fail"]), "action", w.action)
		}
	})
	counter("etcd_debugging_store_expires_total", "Total number of expired keys.", float64(st["expireCount"]))
	gauge("etcd_debugging_store_watchers", "Count of currently active watchers.", float64(st["watchers"]))
	counter("etcd_debugging_store_watch_requests_total", "Total number of incoming watch requests (new or reestablished).", float64(s.metrics.watchRequests.Load()))
}

// httpFamilies adds the keys API's etcd_http_* families, with a sample for
// each method (and status) that has counted something, as etcd shows them.
func httpFamilies(m *serverMetrics, add func(string, func(*expo))) {
	var received, succeeded []int
	for i := range httpMethods {
		if m.http.received[i].Load() > 0 {
			received = append(received, i)
		}
		var n uint64
		for k := range m.http.success[i].counts {
			n += m.http.success[i].counts[k].Load()
		}
		if n > 0 {
			succeeded = append(succeeded, i)
		}
	}
	if len(received) > 0 {
		add("etcd_http_received_total", func(e *expo) {
			e.family("etcd_http_received_total", "counter", "Counter of requests received into the system (successfully parsed and authd).")
			for _, i := range received {
				e.sample("etcd_http_received_total", float64(m.http.received[i].Load()), "method", httpMethods[i])
			}
		})
	}
	var failed [][2]int
	for i := range httpMethods {
		for k := range httpStatuses {
			if m.http.failed[i][k].Load() > 0 {
				failed = append(failed, [2]int{i, k})
			}
		}
	}
	if len(failed) > 0 {
		add("etcd_http_failed_total", func(e *expo) {
			e.family("etcd_http_failed_total", "counter", "Counter of handle failures of requests (non-watches), by method (GET/PUT etc.) and code (400, 500 etc.).")
			for _, f := range failed {
				e.sample("etcd_http_failed_total", float64(m.http.failed[f[0]][f[1]].Load()), "code", strconv.Itoa(httpStatuses[f[1]]), "method", httpMethods[f[0]])
			}
		})
	}
	if len(succeeded) > 0 {
		add("etcd_http_successful_duration_seconds", func(e *expo) {
			e.family("etcd_http_successful_duration_seconds", "histogram", "Bucketed histogram of processing time (s) of successfully handled requests (non-watches), by method (GET/PUT etc.).")
			for _, i := range succeeded {
				e.histogram("etcd_http_successful_duration_seconds", m.http.success[i], "method", httpMethods[i])
			}
		})
	}
}

// processFamilies adds the process_* and os_fd_* families where the
// platform tells them (see processStats).
func processFamilies(add func(string, func(*expo)), gauge, counter func(string, string, float64)) {
	p, ok := processStats()
	if !ok {
		return
	}
	counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", p.cpuSeconds)
	gauge("process_open_fds", "Number of open file descriptors.", p.openFDs)
	gauge("process_max_fds", "Maximum number of open file descriptors.", p.maxFDs)
	gauge("process_resident_memory_bytes", "Resident memory size in bytes.", p.residentBytes)
	gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", p.virtualBytes)
	gauge("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", p.virtualMaxBytes)
	gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", p.startTime)
	gauge("os_fd_used", "The number of used file descriptors.", p.openFDs)
	gauge("os_fd_limit", "The file descriptor limit.", p.maxFDs)
}

// processInfo is what processStats reads about this process.
type processInfo struct {
	cpuSeconds, openFDs, maxFDs, residentBytes, virtualBytes, virtualMaxBytes, startTime float64
}

// goFamilies adds the go_* families Prometheus' Go collector exports, read
// from runtime/metrics (which, unlike runtime.ReadMemStats, does not stop
// the world) and debug.ReadGCStats.
func goFamilies(add func(string, func(*expo)), gauge, counter func(string, string, float64)) {
	names := []string{
		"/sched/goroutines:goroutines",
		"/memory/classes/heap/objects:bytes",
		"/memory/classes/heap/unused:bytes",
		"/memory/classes/heap/free:bytes",
		"/memory/classes/heap/released:bytes",
		"/memory/classes/heap/stacks:bytes",
		"/memory/classes/os-stacks:bytes",
		"/memory/classes/total:bytes",
		"/gc/heap/allocs:bytes",
		"/gc/heap/allocs:objects",
		"/gc/heap/frees:objects",
		"/gc/heap/tiny/allocs:objects",
		"/gc/heap/objects:objects",
		"/gc/heap/goal:bytes",
	}
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	metrics.Read(samples)
	v := map[string]float64{}
	for _, s := range samples {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			v[s.Name] = float64(s.Value.Uint64())
		case metrics.KindFloat64:
			v[s.Name] = s.Value.Float64()
		}
	}
	threads, _ := runtime.ThreadCreateProfile(nil)
	gauge("go_goroutines", "Number of goroutines that currently exist.", v["/sched/goroutines:goroutines"])
	gauge("go_threads", "Number of OS threads created.", float64(threads))
	add("go_info", func(e *expo) {
		e.family("go_info", "gauge", "Information about the Go environment.")
		e.sample("go_info", 1, "version", runtime.Version())
	})
	objects := v["/memory/classes/heap/objects:bytes"]
	gauge("go_memstats_alloc_bytes", "Number of bytes allocated and still in use.", objects)
	counter("go_memstats_alloc_bytes_total", "Total number of bytes allocated, even if freed.", v["/gc/heap/allocs:bytes"])
	counter("go_memstats_mallocs_total", "Total number of mallocs.", v["/gc/heap/allocs:objects"]+v["/gc/heap/tiny/allocs:objects"])
	counter("go_memstats_frees_total", "Total number of frees.", v["/gc/heap/frees:objects"]+v["/gc/heap/tiny/allocs:objects"])
	gauge("go_memstats_sys_bytes", "Number of bytes obtained from system.", v["/memory/classes/total:bytes"])
	gauge("go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and still in use.", objects)
	gauge("go_memstats_heap_sys_bytes", "Number of heap bytes obtained from system.", objects+v["/memory/classes/heap/unused:bytes"]+v["/memory/classes/heap/free:bytes"]+v["/memory/classes/heap/released:bytes"])
	gauge("go_memstats_heap_idle_bytes", "Number of heap bytes waiting to be used.", v["/memory/classes/heap/free:bytes"]+v["/memory/classes/heap/released:bytes"])
	gauge("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", objects+v["/memory/classes/heap/unused:bytes"])
	gauge("go_memstats_heap_released_bytes", "Number of heap bytes released to OS.", v["/memory/classes/heap/released:bytes"])
	gauge("go_memstats_heap_objects", "Number of allocated objects.", v["/gc/heap/objects:objects"])
	gauge("go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place.", v["/gc/heap/goal:bytes"])
	gauge("go_memstats_stack_inuse_bytes", "Number of bytes in use by the stack allocator.", v["/memory/classes/heap/stacks:bytes"])
	gauge("go_memstats_stack_sys_bytes", "Number of bytes obtained from system for stack allocator.", v["/memory/classes/heap/stacks:bytes"]+v["/memory/classes/os-stacks:bytes"])
	var gc debug.GCStats
	gc.PauseQuantiles = make([]time.Duration, 5)
	debug.ReadGCStats(&gc)
	lastGC := 0.0
	if !gc.LastGC.IsZero() {
		lastGC = float64(gc.LastGC.UnixNano()) / 1e9
	}
	gauge("go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", lastGC)
	add("go_gc_duration_seconds", func(e *expo) {
		e.family("go_gc_duration_seconds", "summary", "A summary of the pause duration of garbage collection cycles.")
		for i, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
			d := 0.0
			if gc.NumGC > 0 {
				d = gc.PauseQuantiles[i].Seconds()
			}
			e.sample("go_gc_duration_seconds", d, "quantile", q)
		}
		e.sample("go_gc_duration_seconds_sum", gc.PauseTotal.Seconds())
		e.sample("go_gc_duration_seconds_count", float64(gc.NumGC))
	})
}

// metricsHandler serves --listen-metrics-urls: /metrics and /health only.
func (s *server) metricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", s.handleMetrics)
	mux.HandleFunc("/health", s.handleHealth)
	return mux
}

// peerMetric is what /metrics reports about one peer.
type peerMetric struct {
	id             uint64
	connected      bool
	sent, received uint64
	failed         uint64 // messages dropped or lost
	disconnects    uint64
	rtt            *histogram
}

// PeerMetrics returns the counters of every peer, sorted by id.
func (t *Transport) PeerMetrics() []peerMetric {
	t.mu.RLock()
	out := make([]peerMetric, 0, len(t.peers))
	for _, p := range t.peers {
		out = append(out, peerMetric{id: p.id, connected: p.connected.Load(), sent: p.sentBytes.Load(), received: p.recvBytes.Load(),
			failed: p.fail.Load(), disconnects: p.disconnects.Load(), rtt: p.rtt})
	}
	t.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
