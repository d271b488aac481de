//go:build ignore

// Netfloor is a measuring stick, not a server: the least any v2 server
// built on net/http can do per request on a machine. It answers every PUT
// with a fixed etcd-sized "set" answer and every other request with a fixed
// "get" answer, with the headers etcd 3.4 and etcdlite send (the three
// Access-Control-* of etcd's default CORS policy, X-Etcd-Cluster-Id,
// Content-Type, X-Etcd-Index, X-Raft-Index, X-Raft-Term; before 2026-12-02
// it sent only the last four, which NETFLOOR_HEADERS=4 still does, for
// comparing with the numbers of earlier sessions); it keeps no store and runs
// no raft. With NETFLOOR_FSYNC=1 a PUT is answered only after a 300-byte
// record (about what one write costs in etcdlite's log) was written and
// fdatasynced; PUTs arriving during an fsync share the next one (group
// commit), as in etcdlite. With NETFLOOR_ZERO=1 as well, the log file is
// filled with zeros before it serves, so that every fdatasync overwrites
// written blocks and never commits the file system's journal for them; that
// is the best etcdlite's log can do (it writes zeros ahead of its records,
// walZeroAhead in wal.go).
//
// It takes etcd's command line, so ../shared/bench/compare.sh can run it in
// place of etcdlite; the ratios it prints are the ceiling for a server that
// uses net/http (and, with NETFLOOR_FSYNC=1, fsyncs before acknowledging):
//
//	go build -o netfloor scripts/netfloor.go
//	../shared/bench/compare.sh ./netfloor
//	NETFLOOR_FSYNC=1 ../shared/bench/compare.sh ./netfloor
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

const (
	setAnswer  = `{"action":"set","node":{"key":"/bench/k1","value":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","modifiedIndex":1000,"createdIndex":1000},"prevNode":{"key":"/bench/k1","value":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","modifiedIndex":999,"createdIndex":999}}` + "\n"
	getAnswer  = `{"action":"get","node":{"key":"/bench/k0","value":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","modifiedIndex":5,"createdIndex":5}}` + "\n"
	recordSize = 300
	logSize    = 64 << 20
)

// groupLog makes records durable in groups: callers wait while one
// goroutine writes everything queued so far and fsyncs it once.
type groupLog struct {
	f       *os.File
	off     int64
	mu      sync.Mutex
	queued  []chan struct{}
	wake    chan struct{}
	scratch []byte
}

// append returns once a record of its own is on disk.
func (g *groupLog) append() {
	done := make(chan struct{})
	g.mu.Lock()
	g.queued = append(g.queued, done)
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
	<-done
}

// run writes what is queued as one write, fsyncs it and wakes its callers,
// over and over.
func (g *groupLog) run() {
	for range g.wake {
		g.mu.Lock()
		batch := g.queued
		g.queued = nil
		g.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		n := len(batch) * recordSize
		if cap(g.scratch) < n {
			g.scratch = make([]byte, n)
		}
		if g.off+int64(n) > logSize {
			g.off = 0
		}
		if _, err := g.f.WriteAt(g.scratch[:n], g.off); err != nil {
			log.Fatal(err)
		}
		g.off += int64(n)
		if err := syscall.Fdatasync(int(g.f.Fd())); err != nil {
			log.Fatal(err)
		}
		for _, c := range batch {
			close(c)
		}
	}
}

func main() {
	listen := flag.String("listen-client-urls", "http://127.0.0.1:2379", "where to serve")
	dataDir := flag.String("data-dir", "netfloor.data", "where the log file goes")
	for _, ignored := range []string{"name", "advertise-client-urls", "listen-peer-urls",
		"initial-advertise-peer-urls", "initial-cluster", "initial-cluster-token"} {
		flag.String(ignored, "", "ignored (etcd's command line)")
	}
	flag.Parse()
	u, err := url.Parse(strings.Split(*listen, ",")[0])
	if err != nil {
		log.Fatal(err)
	}
	var glog *groupLog
	if os.Getenv("NETFLOOR_FSYNC") != "" {
		if err := os.MkdirAll(*dataDir, 0o755); err != nil {
			log.Fatal(err)
		}
		f, err := os.Create(filepath.Join(*dataDir, "log"))
		if err != nil {
			log.Fatal(err)
		}
		_ = syscall.Fallocate(int(f.Fd()), 0, 0, logSize)
		if os.Getenv("NETFLOOR_ZERO") != "" {
			if _, err := f.WriteAt(make([]byte, logSize), 0); err != nil {
				log.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				log.Fatal(err)
			}
		}
		glog = &groupLog{f: f, wake: make(chan struct{}, 1)}
		go glog.run()
	}
	var index atomic.Uint64
	set, get := []byte(setAnswer), []byte(getAnswer)
	contentType, term := []string{"application/json"}, []string{"2"}
	// the headers etcd 3.4 and etcdlite send with every keys answer besides
	// the four above (Date and Content-Length are net/http's)
	corsHeaders := []string{"accept, content-type, authorization"}
	corsMethods := []string{"POST, GET, OPTIONS, PUT, DELETE"}
	corsOrigin, clusterID := []string{"*"}, []string{"cdf818194e3a8c32"}
	fourHeaders := os.Getenv("NETFLOOR_HEADERS") == "4"
	log.Fatal(http.ListenAndServe(u.Host, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		answer := get
		if r.Method == http.MethodPut {
			answer = set
			if glog != nil {
				glog.append()
			}
		}
		i := []string{strconv.FormatUint(index.Add(1), 10)}
		h := w.Header()
		if !fourHeaders {
			h["Access-Control-Allow-Headers"] = corsHeaders
			h["Access-Control-Allow-Methods"] = corsMethods
			h["Access-Control-Allow-Origin"] = corsOrigin
			h["X-Etcd-Cluster-Id"] = clusterID
		}
		h["Content-Type"] = contentType
		h["X-Etcd-Index"] = i
		h["X-Raft-Index"] = i
		h["X-Raft-Term"] = term
		_, _ = w.Write(answer)
	})))
}
