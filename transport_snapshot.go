// The transport's snapshot path: a MsgSnap sent by its own goroutine as one
// POST to /raft/snapshot, and the receiving handler that hands it to raft.

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// runSnapshots sends MsgSnap messages one at a time on the snapshot path and
// reports each outcome to raft.
func (p *trPeer) runSnapshots() {
	defer p.t.wg.Done()
	for {
		var m raftpb.Message
		select {
		case <-p.ctx.Done():
			return
		case m = <-p.snapc:
		}
		size, err := p.sendSnapshot(&m)
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			p.fail.Add(1)
			slog.Warn("raft transport: snapshot to peer failed", "local", idString(p.t.localID), "peer", idString(p.id), "index", m.Snapshot.Metadata.Index, "err", err)
			p.t.raft.ReportSnapshot(p.id, raft.SnapshotFailure)
			continue
		}
		p.success.Add(1)
		p.sentBytes.Add(uint64(size))
		p.t.noteSent(time.Now(), 1, uint64(size), 0)
		slog.Info("raft transport: snapshot sent to peer", "local", idString(p.t.localID), "peer", idString(p.id), "index", m.Snapshot.Metadata.Index, "bytes", size)
		p.t.raft.ReportSnapshot(p.id, raft.SnapshotFinish)
	}
}

// sendSnapshot posts m to the peer's URLs in turn until one takes it.
func (p *trPeer) sendSnapshot(m *raftpb.Message) (int, error) {
	data, err := m.Marshal()
	if err != nil {
		return 0, fmt.Errorf("marshal snapshot message: %w", err)
	}
	urls := p.urlList()
	if len(urls) == 0 {
		return 0, errors.New("peer has no URLs")
	}
	var errs []error
	for _, u := range urls {
		err := p.postSnapshot(u, data)
		if err == nil {
			return len(data), nil
		}
		errs = append(errs, err)
		if p.ctx.Err() != nil {
			break
		}
	}
	return 0, errors.Join(errs...)
}

// postSnapshot makes one POST of a marshalled MsgSnap to base URL u.
func (p *trPeer) postSnapshot(u string, data []byte) error {
	ctx, cancel := context.WithTimeout(p.ctx, p.timeouts.snapshot)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u+transportSnapshotPath, bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("build snapshot request for %s: %w", u, err)
	}
	p.t.idHeaders(req.Header, p.id)
	resp, err := p.t.snapClient.Do(req)
	if err != nil {
		return fmt.Errorf("send snapshot: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return trStatusError(resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	return nil
}

// serveSnapshot receives one MsgSnap and answers once raft has taken it.
func (t *Transport) serveSnapshot(w http.ResponseWriter, r *http.Request, from uint64) {
	rc := http.NewResponseController(w)
	in := t.addInbound(r, rc, from, false)
	if in == nil {
		http.Error(w, "etcdlite: raft transport stopped", http.StatusServiceUnavailable)
		return
	}
	defer t.removeInbound(in)
	_ = rc.SetReadDeadline(time.Time{}) // a snapshot may take long; kill still works
	if in.killed.Load() {
		http.Error(w, "etcdlite: raft transport stopped", http.StatusServiceUnavailable)
		return
	}
	if r.ContentLength > transportMaxSnapshotSize {
		http.Error(w, fmt.Sprintf("etcdlite: snapshot of %d bytes exceeds the limit of %d", r.ContentLength, transportMaxSnapshotSize), http.StatusRequestEntityTooLarge)
		return
	}
	var data []byte
	var err error
	if r.ContentLength >= 0 {
		data = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, data)
	} else {
		data, err = io.ReadAll(io.LimitReader(r.Body, transportMaxSnapshotSize+1))
		if err == nil && int64(len(data)) > transportMaxSnapshotSize {
			http.Error(w, "etcdlite: snapshot exceeds the size limit", http.StatusRequestEntityTooLarge)
			return
		}
	}
	if err != nil {
		slog.Warn("raft transport: cannot read snapshot", "local", idString(t.localID), "peer", idString(from), "err", err)
		http.Error(w, "etcdlite: cannot read snapshot: "+err.Error(), http.StatusBadRequest)
		return
	}
	var m raftpb.Message
	if err := m.Unmarshal(data); err != nil {
		http.Error(w, "etcdlite: cannot decode snapshot message: "+err.Error(), http.StatusBadRequest)
		return
	}
	if m.Type != raftpb.MsgSnap || m.From != from {
		http.Error(w, fmt.Sprintf("etcdlite: expected MsgSnap from %s, got %s from %s", idString(from), m.Type, idString(m.From)), http.StatusBadRequest)
		return
	}
	t.noteReceived(&m, len(data), time.Now())
	if p := t.peer(from); p != nil {
		p.recvBytes.Add(uint64(len(data)))
	}
	if err := t.raft.Process(in.ctx, m); err != nil {
		slog.Warn("raft transport: raft refused snapshot", "local", idString(t.localID), "peer", idString(from), "err", err)
		http.Error(w, "etcdlite: raft refused snapshot: "+err.Error(), http.StatusInternalServerError)
		return
	}
	slog.Info("raft transport: snapshot received", "local", idString(t.localID), "peer", idString(from), "index", m.Snapshot.Metadata.Index, "bytes", len(data))
	w.WriteHeader(http.StatusNoContent)
}
