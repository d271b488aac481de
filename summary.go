// The start-up summary: once the member serves, one block of log lines
// says what it is (version, name, ids, directories, URLs, what it
// recovered, the members, the flags ignored); and systemd is told it is
// ready.
package main

import (
	"log/slog"
	"os"
	"strings"
)

// announceReady waits until srv serves its clients (or stops), then logs
// the summary and sends READY=1 to systemd when $NOTIFY_SOCKET is set.
func announceReady(srv *server, cfg *config, notifySocket string) {
	select {
	case <-srv.ready:
	case <-srv.Done():
		return
	case <-srv.stopc:
		return
	}
	logSummary(srv, cfg)
	if err := sdNotify(notifySocket, "READY=1"); err != nil {
		slog.Warn("could not tell systemd the member is ready", "err", err)
	} else if notifySocket != "" {
		slog.Info("told systemd the member is ready", "socket", notifySocket)
	}
}

// logSummary logs the start-up summary block.
func logSummary(srv *server, cfg *config) {
	host, _ := os.Hostname()
	slog.Info("etcdlite serving", "version", Version, "etcd-api", etcdServerVersion+" (v2)", "name", cfg.Name, "host", host)
	slog.Info("  member", "id", idString(srv.id), "cluster", idString(srv.clusterID))
	slog.Info("  storage", "data-dir", cfg.DataDir, "wal-dir", walDirOf(cfg),
		"applied-index", srv.appliedIndexPub.Load(), "recovered-snapshot-index", srv.startSnapshotIndex)
	slog.Info("  client URLs", "listen", strings.Join(urlStrings(cfg.ListenClientURLs), ","),
		"advertise", strings.Join(urlStrings(cfg.AdvertiseClientURLs), ","))
	slog.Info("  peer URLs", "listen", strings.Join(urlStrings(cfg.ListenPeerURLs), ","),
		"advertise", strings.Join(urlStrings(cfg.InitialAdvertisePeerURLs), ","))
	for _, m := range membersFromStore(srv.store) {
		slog.Info("  cluster member", "id", idString(m.ID), "name", m.Name,
			"peer-urls", strings.Join(m.PeerURLs, ","), "client-urls", strings.Join(m.ClientURLs, ","))
	}
	if cfg.ConfigFile != "" {
		slog.Info("  configured by", "config-file", cfg.ConfigFile)
	}
	if len(cfg.Ignored) > 0 {
		slog.Info("  ignored flags (named above at start)", "count", len(cfg.Ignored))
	} else {
		slog.Info("  ignored flags", "count", 0)
	}
}
