// One member: the server type, start-up (bootstrap or recovery, the data dir,
// the WAL and snapshots opened), listeners, serving and shutdown.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"etcdlite/kv"
)

// server is one etcdlite member: the raft node, its log and snapshots, the
// store they feed and the HTTP servers in front of it.
type server struct {
	cfg       *config
	id        uint64
	clusterID uint64
	store     *kv.Store
	rn        *raft.RawNode // owned by the raft loop
	inbox     *raftInbox    // what other goroutines hand the raft loop
	storage   *raftStorage  // raft's in-memory log (raftstorage.go)
	wal       *WAL
	snapper   *Snapshotter
	transport *Transport
	tls       *tlsSetup // each side's TLS; a side is nil without certificates
	unlock    func() error
	stats     *serverStats
	metrics   *serverMetrics
	now       func() time.Time // the clock writes are stamped with; tests replace it
	clockHook bool             // now is a test's clock, not time.Now

	sweepClock sweepClock // the wait sweep's time, for deadlines (propose.go)

	startSnapshotIndex uint64 // the snapshot recovery started from (0: none), for the start-up summary

	// owned by the raft loop
	appliedIndex  uint64
	appliedTerm   uint64
	snapshotIndex uint64
	trimmedAt     uint64 // applied index of the last trim of raft's in-memory log
	confState     raftpb.ConfState
	campaigned    bool
	batch         inboxBatch            // the inbox's last take, reused
	readBatches   map[uint64]*readBatch // quorum reads waiting for a read index, by batch
	replayFrom    uint64                // applied index when recovery began
	replayTo      uint64                // commit index the log held at start; 0 once replayed
	replayStart   time.Time             // when recovery began
	recoveryGC    func()                // resumes the collector recovery paused (startup.go); nil once called
	leaderSeen    chan struct{}         // closed once this member first knows a leader (publish waits for it)
	sawLeader     bool                  // leaderSeen is closed
	encoding      bool                  // the store is being encoded for a snapshot: committed entries wait
	encodingStart time.Time             // when it began
	deferred      []raftpb.Entry        // committed entries waiting for the encoding to end

	storageErr      atomic.Pointer[error] // set when the log can no longer be written
	snapshotting    atomic.Bool           // a local snapshot is being written
	snapshotWG      sync.WaitGroup        // the goroutines encoding the store for it and writing it
	encoded         chan encodedStore     // the store encoded for a snapshot, back to the raft loop
	applier         *applier              // the goroutine that applies committed entries (applier.go), made by run
	memberMu        sync.Mutex            // one membership change at a time from this member
	appliedIndexPub atomic.Uint64         // appliedIndex, for readers outside the raft loop
	clusterIDHeader []string              // the X-Etcd-Cluster-Id header value, shared by all responses
	posHeaders      positionHeaderCache   // the X-Etcd-Index, X-Raft-Index, X-Raft-Term values answered last
	leader          atomic.Uint64
	term            atomic.Uint64
	waits           waitList
	readIndexes     waitList
	appliedWait     appliedNotifier
	auth            authStore // users, roles and whether auth is on (auth.go)

	httpServers []*http.Server
	listeners   []net.Listener
	stopc       chan struct{} // closed to stop every goroutine
	runDone     chan struct{} // closed when the raft loop has returned
	done        chan struct{} // closed when the server stopped by itself
	ready       chan struct{} // closed once clients are served
	failOnce    sync.Once
	stopOnce    sync.Once
	failErr     error
}

// startServer recovers or bootstraps the member cfg describes and starts
// serving.
func startServer(cfg *config) (*server, error) {
	s := &server{
		cfg:         cfg,
		store:       kv.New(clusterPrefix, keysPrefix),
		storage:     newRaftStorage(raftLogRoom),
		stopc:       make(chan struct{}),
		runDone:     make(chan struct{}),
		encoded:     make(chan encodedStore, 1),
		done:        make(chan struct{}),
		ready:       make(chan struct{}),
		leaderSeen:  make(chan struct{}),
		waits:       waitList{m: map[uint64]waiter{}},
		readIndexes: waitList{m: map[uint64]waiter{}},
		inbox:       newRaftInbox(),
		readBatches: map[uint64]*readBatch{},
		appliedWait: appliedNotifier{ch: make(chan struct{})},
		now:         cfg.hooks.clock,
		metrics:     newServerMetrics(),
	}
	s.clockHook = s.now != nil
	if s.now == nil {
		s.now = time.Now
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s.unlock = unlock
	ok := false
	defer func() {
		if !ok {
			s.closeStorage()
			s.resumeRecoveryGC()
		}
	}()
	if err := ensureDataFormat(cfg.DataDir); err != nil {
		return nil, err
	}
	if s.tls, err = newTLSSetup(cfg); err != nil {
		return nil, err
	}
	walDir, err := resolveWALDir(cfg)
	if err != nil {
		return nil, err
	}
	s.snapper = NewSnapshotter(filepath.Join(cfg.DataDir, "member", "snap"), int(cfg.MaxSnapshots))
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "member", "snap"), 0o700); err != nil {
		return nil, fmt.Errorf("create snapshot dir: %w", err)
	}

	var peers []raft.Peer
	start := time.Now()
	if walExists(walDir) {
		if err := s.recover(walDir); err != nil {
			return nil, err
		}
		s.transport = s.newTransport()
		s.syncPeers()
		slog.Info("recovered", "member", idString(s.id), "snapshot-index", s.snapshotIndex,
			"took", time.Since(start).Round(time.Millisecond))
	} else {
		if cfg.InitialClusterState == "existing" {
			existing, err := s.join(walDir)
			if err != nil {
				return nil, err
			}
			s.transport = s.newTransport()
			for _, m := range existing {
				if id, err := parseID(m.ID); err == nil && id != s.id {
					s.transport.AddPeer(id, m.PeerURLs)
				}
			}
			slog.Info("joining an existing cluster", "member", idString(s.id), "cluster", idString(s.clusterID), "members", len(existing))
		} else {
			if peers, err = s.bootstrap(walDir); err != nil {
				return nil, err
			}
			s.transport = s.newTransport()
			for _, p := range peers {
				var m member
				if p.ID != s.id && json.Unmarshal(p.Context, &m) == nil {
					s.transport.AddPeer(p.ID, m.PeerURLs)
				}
			}
			slog.Info("bootstrapped a new cluster", "member", idString(s.id), "cluster", idString(s.clusterID))
		}
	}
	s.startSnapshotIndex = s.snapshotIndex
	s.wal.metrics = &s.metrics.wal
	s.wal.maxFiles = int(cfg.MaxWALs)
	s.stats = newServerStats(cfg.Name, s.id)
	s.clusterIDHeader = []string{idString(s.clusterID)}
	s.transport.SetRemovedHandler(func() {
		slog.Warn("a peer says this member was removed from the cluster; shutting down")
		s.fail(errors.New("this member was removed from the cluster"))
	})
	rc := s.raftConfig()
	rc.Applied = s.appliedIndex
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	if peers != nil {
		if err := rn.Bootstrap(peers); err != nil {
			return nil, fmt.Errorf("bootstrap raft: %w", err)
		}
	}
	s.rn = rn
	if err := s.listen(); err != nil {
		return nil, err
	}
	ok = true
	// A lone member with nothing to replay need not wait for a Ready (there
	// may be none before the election timeout) to start its election.
	s.campaignIfAlone()
	go s.run()
	go s.expireWaits()
	go s.expiryLoop()
	go s.publish()
	for _, srv := range s.httpServers {
		slog.Info("serving", "addr", srv.Addr)
	}
	return s, nil
}

// newTransport makes the member's peer transport, with the peer TLS.
func (s *server) newTransport() *Transport {
	t := NewTransport(s.id, s.clusterID, s)
	t.SetPeerTLS(s.tls.peer)
	return t
}

// bootstrap creates the log of a member of a new cluster and returns the
// initial members for raft.
func (s *server) bootstrap(walDir string) ([]raft.Peer, error) {
	names := make([]string, 0, len(s.cfg.InitialCluster))
	for name := range s.cfg.InitialCluster {
		names = append(names, name)
	}
	sort.Strings(names)
	var ids []uint64
	var peers []raft.Peer
	for _, name := range names {
		urls := urlsToStrings(s.cfg.InitialCluster[name])
		id := memberID(urls, s.cfg.InitialClusterToken, 0)
		ids = append(ids, id)
		m := member{ID: id, Name: "", PeerURLs: urls}
		ctx := mustJSONBytes(m)
		peers = append(peers, raft.Peer{ID: id, Context: ctx})
		if name == s.cfg.Name {
			s.id = id
		}
	}
	s.clusterID = clusterID(ids)
	w, _, err := OpenWAL(walDir, WALMetadata{MemberID: s.id, ClusterID: s.clusterID, Name: s.cfg.Name}, 0, 0, s.cfg.hooks.wal)
	if err != nil {
		return nil, fmt.Errorf("create write-ahead log: %w", err)
	}
	s.wal = w
	return peers, nil
}

// recover loads the newest usable snapshot and the log after it.
func (s *server) recover(walDir string) error {
	meta, err := walReadMetadata(walDir)
	if err != nil {
		return fmt.Errorf("read write-ahead log: %w", err)
	}
	if meta.Name != s.cfg.Name {
		return fmt.Errorf("data dir %s belongs to member %q, not %q (--name)", s.cfg.DataDir, meta.Name, s.cfg.Name)
	}
	s.id, s.clusterID = meta.MemberID, meta.ClusterID
	// What recovery allocates (the tree, the log after the snapshot) stays
	// live: collecting while the heap grows from nothing to that would
	// only mark it again and again (at a million keys, a dozen cycles and
	// write barriers on every node built). One collection, once the log is
	// replayed and clients are served, does (startup.go).
	s.recoveryGC = pauseGC()
	// The newest snapshot that verifies, then the log after it. Should the
	// log not continue from it (a crash between writing the snapshot and
	// recording it in the log), let the log say which snapshot it covers.
	snap, release, err := s.snapper.Load(nil)
	if err != nil && !errors.Is(err, ErrNoSnapshot) {
		return fmt.Errorf("load snapshot: %w", err)
	}
	// The snapshot's data is its file mapped into memory: every path below
	// has waited for the store to finish with it before returning.
	defer func() { release() }()
	// The store decodes the snapshot while the log is read: on two cores
	// the log costs nothing on top.
	var decoded chan error
	if !raft.IsEmptySnap(snap) {
		decoded = make(chan error, 1)
		go func(data []byte) { decoded <- s.store.Recover(data) }(snap.Data)
	}
	w, st, err := OpenWAL(walDir, meta, snap.Metadata.Index, snap.Metadata.Term, s.cfg.hooks.wal)
	if err != nil && !raft.IsEmptySnap(snap) {
		<-decoded // start again from an empty store: the log chooses the snapshot
		decoded = nil
		release()
		release = func() {}
		s.store = kv.New(clusterPrefix, keysPrefix)
		slog.Warn("the log does not continue from the newest snapshot; choosing by the log", "snapshot-index", snap.Metadata.Index, "err", err)
		usable, uerr := walSnapshotUsable(walDir)
		if uerr != nil {
			return fmt.Errorf("read write-ahead log: %w", uerr)
		}
		snap, release, err = s.snapper.Load(usable)
		if err != nil && !errors.Is(err, ErrNoSnapshot) {
			return fmt.Errorf("load snapshot: %w", err)
		}
		w, st, err = OpenWAL(walDir, meta, snap.Metadata.Index, snap.Metadata.Term, s.cfg.hooks.wal)
	}
	if err != nil {
		return fmt.Errorf("open write-ahead log: %w", err)
	}
	s.wal = w
	switch {
	case decoded != nil:
		if err := <-decoded; err != nil {
			return fmt.Errorf("snapshot %d: %w", snap.Metadata.Index, err)
		}
		if err := s.applySnapshotMetadata(snap); err != nil {
			return err
		}
		s.adoptSnapshot(snap)
	case !raft.IsEmptySnap(snap):
		if err := s.installSnapshot(snap); err != nil {
			return err
		}
	}
	if s.cfg.ForceNewCluster {
		if err := s.forceNewCluster(snap.Metadata.ConfState, snap.Metadata.Index, st); err != nil {
			return err
		}
	}
	s.warnIfNotMember(snap.Metadata.ConfState, st)
	if err := s.storage.SetHardState(st.HardState); err != nil {
		return fmt.Errorf("restore hard state: %w", err)
	}
	if err := s.storage.Append(st.Entries); err != nil {
		return fmt.Errorf("restore %d log entries: %w", len(st.Entries), err)
	}
	s.term.Store(st.HardState.Term)
	s.replayTo = st.HardState.Commit
	s.replayFrom = s.appliedIndex
	s.replayStart = time.Now()
	switch {
	case s.replayTo <= s.appliedIndex:
		s.replayed() // nothing committed after the snapshot: nothing to replay (startup.go)
	case !replayFitsPause(len(snap.Data), st.Entries, s.appliedIndex, s.replayTo):
		s.resumeRecoveryGC() // a long log: collect while it is replayed
	}
	return nil
}

// gcPause counts recoveries in progress in this process (tests run several
// members in one): the collector is off while there is any. It stays a
// package variable on purpose: the setting it guards (debug.SetGCPercent)
// belongs to the process, so one count must serve every server in it, or
// one server's resume would turn the collector back on under another's
// recovery.
var gcPause struct {
	sync.Mutex
	n       int
	percent int // the setting to restore
}

// pauseGC turns the garbage collector off until the returned function is
// called.
func pauseGC() (resume func()) {
	gcPause.Lock()
	if gcPause.n == 0 {
		gcPause.percent = debug.SetGCPercent(-1)
	}
	gcPause.n++
	gcPause.Unlock()
	return func() {
		gcPause.Lock()
		if gcPause.n--; gcPause.n == 0 {
			debug.SetGCPercent(gcPause.percent)
		}
		gcPause.Unlock()
	}
}

// listen binds the client and peer URLs and starts serving.
func (s *server) listen() error {
	handler := s.clientHandler()
	for _, u := range s.cfg.ListenClientURLs {
		if err := s.serve(u, handler, false, s.tls.client); err != nil {
			return fmt.Errorf("listen on client URL %s: %w", u, err)
		}
	}
	for _, u := range s.cfg.ListenMetricsURLs {
		if u.Scheme == "https" && s.tls.client == nil {
			return fmt.Errorf("listen on metrics URL %s: https needs the client certificate (--cert-file and --key-file, or --auto-tls)", u)
		}
		if err := s.serve(u, s.metricsHandler(), true, s.tls.client); err != nil {
			return fmt.Errorf("listen on metrics URL %s: %w", u, err)
		}
	}
	peer := s.peerHandler()
	for _, u := range s.cfg.ListenPeerURLs {
		if err := s.serve(u, peer, true, s.tls.peer); err != nil {
			return fmt.Errorf("listen on peer URL %s: %w", u, err)
		}
	}
	return nil
}

// serve binds u (TLS over it for https, with side) for handler h and serves
// it at once if now is set (the client listeners wait for serveClients).
func (s *server) serve(u *url.URL, h http.Handler, now bool, side *tlsSide) error {
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		for _, l := range s.listeners {
			l.Close()
		}
		return err
	}
	// No whole-request read timeout (a watch may last for hours): with one,
	// net/http arms a timer for every request (about 4% of a read's CPU).
	srv := &http.Server{Addr: ln.Addr().String(), Handler: h}
	ln = s.limitServer(srv, ln) // limits.go: header size and time, idle connections
	if u.Scheme == "https" {
		ln = newTLSListener(ln, side) // newTLSSetup made sure side is set
	}
	s.listeners = append(s.listeners, ln)
	s.httpServers = append(s.httpServers, srv)
	if now {
		go s.serveOn(srv, ln)
	}
	return nil
}

// serveOn serves srv on ln until it is closed; any other end is logged.
func (s *server) serveOn(srv *http.Server, ln net.Listener) {
	pl := newParkingListener(ln) // longpoll.go: parked watches' connections come back through it
	srv.BaseContext = pl.baseContext
	if err := srv.Serve(pl); err != nil && !errors.Is(err, http.ErrServerClosed) {
		slog.Error("http server", "addr", srv.Addr, "err", err)
	}
}

// serveClients starts answering on the client listeners (bound at start,
// served once the member has published itself, as etcd does).
func (s *server) serveClients() {
	for i := range s.cfg.ListenClientURLs {
		go s.serveOn(s.httpServers[i], s.listeners[i])
	}
	close(s.ready)
}

// ClientAddrs are the addresses the client listeners are bound to.
func (s *server) ClientAddrs() []string {
	var out []string
	for i := range s.cfg.ListenClientURLs {
		out = append(out, s.listeners[i].Addr().String())
	}
	return out
}

// Done is closed when the server stops by itself (removed, or a fatal
// storage error).
func (s *server) Done() <-chan struct{} { return s.done }

// fail stops the server after an unrecoverable error.
func (s *server) fail(err error) {
	s.failOnce.Do(func() {
		s.failErr = err
		close(s.done)
	})
}

// Shutdown stops serving, stops raft and closes the log.
func (s *server) Shutdown(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		s.transferLeadership() // leadertransfer.go
		for _, srv := range s.httpServers {
			srv.Close()
		}
		close(s.stopc)
		s.transport.Stop()
		<-s.runDone
		s.snapshotWG.Wait()
		select {
		case enc := <-s.encoded: // encoded after the raft loop stopped
			enc.abandon()
		default:
		}
		s.closeStorage()
		err = s.failErr
	})
	return err
}

// closeStorage closes the WAL (a failure is logged) and releases the
// data-dir lock.
func (s *server) closeStorage() {
	if s.wal != nil {
		if err := s.wal.Close(); err != nil {
			slog.Warn("close write-ahead log", "err", err)
		}
		s.wal = nil
	}
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
}
