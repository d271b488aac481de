// proxymetrics.go owns a proxy's /metrics: etcd 3.4's etcd_proxy_* families
// (requests by method, handled by method and status, dropped by method and
// proxying error, the handling time histogram) beside the version, process
// and Go runtime families, written with metrics.go's exposition helpers.

package main

// What counts, as a real etcd 3.4.23 proxy counts it (the recordings and
// the request sequence are in testdata/proxymetrics): every request that
// reaches the forwarder counts in requests_total; one answered by a member
// counts in handled_total under the member's status and in the histogram
// with the time until the member's headers arrived (so a long-poll watch
// counts its wait for the headers only); a failed attempt at a member is
// dropped "failed_sending_request", no member answering at all is dropped
// "failed_getting_response", and no member available is dropped
// "zero_endpoints". /metrics itself, CORS preflights (OPTIONS),
// /v2/config/local/proxy and a readonly proxy's refusals are not forwarded
// and count nowhere. The hot path is atomics only.

import (
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"sync/atomic"
	"time"
)

// proxyMethods are the method labels of the etcd_proxy_* families. etcd
// labels with whatever method a client sent; any other method is counted
// as "other" here, so that clients cannot grow the series without end.
var proxyMethods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "other"}

// proxyDropReasons are etcd's proxying_error labels of
// etcd_proxy_dropped_total.
var proxyDropReasons = [...]string{"zero_endpoints", "failed_sending_request", "failed_getting_response"}

// Indexes into proxyDropReasons.
const (
	dropZeroEndpoints = iota
	dropFailedSending
	dropFailedGettingResponse
)

// proxyMinCode and proxyMaxCode bound the statuses handled_total counts
// one by one (Go's client refuses any status outside three digits); any
// other is counted as proxyMaxCode.
const (
	proxyMinCode = 100
	proxyMaxCode = 999
)

// proxyMetrics is what a proxy counts for /metrics.
type proxyMetrics struct {
	requests [len(proxyMethods)]atomic.Uint64
	handled  [len(proxyMethods)][proxyMaxCode - proxyMinCode + 1]atomic.Uint64
	dropped  [len(proxyMethods)][len(proxyDropReasons)]atomic.Uint64
	duration [len(proxyMethods)]*histogram
}

// newProxyMetrics returns zeroed metrics; the histogram has etcd's bounds
// (0.5 ms doubling to 2.048 s, the same as etcd_http_successful_*).
func newProxyMetrics() *proxyMetrics {
	m := &proxyMetrics{}
	for i := range m.duration {
		m.duration[i] = newHistogram(httpDurationBuckets)
	}
	return m
}

// proxyMethodIndex is the index of method's label in proxyMethods.
func proxyMethodIndex(method string) int {
	for i, m := range proxyMethods[:len(proxyMethods)-1] {
		if m == method {
			return i
		}
	}
	return len(proxyMethods) - 1
}

// received counts a request reaching the forwarder and returns its method
// index for the other counters.
func (m *proxyMetrics) received(method string) int {
	mi := proxyMethodIndex(method)
	m.requests[mi].Add(1)
	return mi
}

// drop counts a request of method index mi dropped for reason.
func (m *proxyMetrics) drop(mi, reason int) { m.dropped[mi][reason].Add(1) }

// handle counts a request of method index mi that a member answered with
// code, started at start.
func (m *proxyMetrics) handle(mi, code int, start time.Time) {
	code = min(max(code, proxyMinCode), proxyMaxCode)
	m.handled[mi][code-proxyMinCode].Add(1)
	m.duration[mi].observe(time.Since(start))
}

// handleMetrics serves a proxy's /metrics.
func (p *proxy) handleMetrics(w http.ResponseWriter, r *http.Request) {
	serveMetrics(w, r, p.metricsText)
}

// metricsText is a proxy's whole exposition, families sorted by name.
func (p *proxy) metricsText() []byte {
	set := &metricsSet{}
	add, gauge, counter, info := set.add, set.gauge, set.counter, set.info
	info("etcd_server_version", "Which version is running. 1 for 'server_version' label with current version.", "server_version", etcdServerVersion)
	info("etcd_server_go_version", "Which Go version server is running with. 1 for 'server_go_version' label with current version.", "server_go_version", runtime.Version())
	p.metrics.families(add)
	processFamilies(add, gauge, counter)
	goFamilies(add, gauge, counter)
	return set.text(16 << 10)
}

// families adds the etcd_proxy_* families, with a sample for each method
// (and status, or error) that has counted something, as etcd shows them.
func (m *proxyMetrics) families(add func(string, func(*expo))) {
	var requested, timed []int
	type pair struct{ mi, k int }
	var handled, dropped []pair
	for mi := range proxyMethods {
		if m.requests[mi].Load() > 0 {
			requested = append(requested, mi)
		}
		for k := range m.handled[mi] {
			if m.handled[mi][k].Load() > 0 {
				handled = append(handled, pair{mi, k})
			}
		}
		for k := range m.dropped[mi] {
			if m.dropped[mi][k].Load() > 0 {
				dropped = append(dropped, pair{mi, k})
			}
		}
		for k := range m.duration[mi].counts {
			if m.duration[mi].counts[k].Load() > 0 {
				timed = append(timed, mi)
				break
			}
		}
	}
	// samples in etcd's order: by label values, the labels sorted by name
	byMethod := func(a, b int) bool { return proxyMethods[a] < proxyMethods[b] }
	sort.Slice(requested, func(i, j int) bool { return byMethod(requested[i], requested[j]) })
	sort.Slice(timed, func(i, j int) bool { return byMethod(timed[i], timed[j]) })
	// handled: code before method; dropped: method before proxying_error
	sort.Slice(handled, func(i, j int) bool {
		if handled[i].k != handled[j].k {
			return handled[i].k < handled[j].k
		}
		return byMethod(handled[i].mi, handled[j].mi)
	})
	sort.Slice(dropped, func(i, j int) bool {
		if dropped[i].mi != dropped[j].mi {
			return byMethod(dropped[i].mi, dropped[j].mi)
		}
		return proxyDropReasons[dropped[i].k] < proxyDropReasons[dropped[j].k]
	})
	if len(requested) > 0 {
		add("etcd_proxy_requests_total", func(e *expo) {
			e.family("etcd_proxy_requests_total", "counter", "Counter requests incoming by method.")
			for _, mi := range requested {
				e.sample("etcd_proxy_requests_total", float64(m.requests[mi].Load()), "method", proxyMethods[mi])
			}
		})
	}
	if len(handled) > 0 {
		add("etcd_proxy_handled_total", func(e *expo) {
			e.family("etcd_proxy_handled_total", "counter", "Counter of requests fully handled (by authoratitave servers)")
			for _, h := range handled {
				e.sample("etcd_proxy_handled_total", float64(m.handled[h.mi][h.k].Load()), "code", strconv.Itoa(h.k+proxyMinCode), "method", proxyMethods[h.mi])
			}
		})
	}
	if len(dropped) > 0 {
		add("etcd_proxy_dropped_total", func(e *expo) {
			e.family("etcd_proxy_dropped_total", "counter", "Counter of requests dropped on the proxy.")
			for _, d := range dropped {
				e.sample("etcd_proxy_dropped_total", float64(m.dropped[d.mi][d.k].Load()), "method", proxyMethods[d.mi], "proxying_error", proxyDropReasons[d.k])
			}
		})
	}
	if len(timed) > 0 {
		add("etcd_proxy_handling_duration_seconds", func(e *expo) {
			e.family("etcd_proxy_handling_duration_seconds", "histogram", "Bucketed histogram of handling time of successful events (non-watches), by method (GET/PUT etc.).")
			for _, mi := range timed {
				e.histogram("etcd_proxy_handling_duration_seconds", m.duration[mi], "method", proxyMethods[mi])
			}
		})
	}
}
