// Tests of backups (etcdlite backup, GET /v2/backup).

package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// writeLoad writes distinct keys through url from several clients until
// stopped and remembers every acknowledged one.
type writeLoad struct {
	mu    sync.Mutex
	acked []string
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startWriteLoad(base string, clients int) *writeLoad {
	l := &writeLoad{stop: make(chan struct{})}
	for w := 0; w < clients; w++ {
		l.wg.Add(1)
		go func(w int) {
			defer l.wg.Done()
			hc := &http.Client{Timeout: 5 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				key := fmt.Sprintf("load/w%d/%05d", w, i)
				code, _, err := linHTTP(hc, "PUT", base+"/v2/keys/"+key, url.Values{"value": {key}})
				if err == nil && code == 201 {
					l.mu.Lock()
					l.acked = append(l.acked, key)
					l.mu.Unlock()
				}
			}
		}(w)
	}
	return l
}

// ackedSoFar is a copy of the keys acknowledged until now.
func (l *writeLoad) ackedSoFar() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.acked...)
}

func (l *writeLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}

// loadTestConfig is a single member that snapshots, rotates and removes
// log segments and prunes snapshots often, so that backups race with all
// of it.
func loadTestConfig(t *testing.T, dir string) *config {
	cfg := testConfig(t, dir)
	cfg.hooks.wal.segmentSize = 16 << 10
	cfg.SnapshotCount, cfg.MaxSnapshots, cfg.MaxWALs = 50, 2, 2
	cfg.hooks.catchUpEntries = 10
	return cfg
}

// restoreAndCheck starts a member on a backup with --force-new-cluster and
// checks that it holds every key in want, under a new identity.
func restoreAndCheck(t *testing.T, dir string, old *server, want []string) {
	t.Helper()
	var out bytes.Buffer
	if code := runVerify([]string{"--data-dir", dir}, &out, &out); code != 0 {
		t.Fatalf("verify of the backup: exit %d\n%s", code, out.String())
	}
	cfg := testConfig(t, dir)
	cfg.ForceNewCluster = true
	m := startTestMember(t, cfg)
	if m.id == old.id || m.clusterID == old.clusterID {
		t.Fatalf("restored member %x of cluster %x: the backup kept the old ids (%x, %x)", m.id, m.clusterID, old.id, old.clusterID)
	}
	dump := storeDump(m.store)
	for _, k := range want {
		if !strings.Contains(dump, `"key":"/`+k+`","value":"`+k+`"`) {
			t.Fatalf("acknowledged write %s missing from the restored backup (%d acknowledged before it)", k, len(want))
		}
	}
	code, _, body := m.do(t, "GET", "/v2/members", nil)
	if code != 200 || strings.Count(body, `"id"`) != 1 || !strings.Contains(body, `"id":"`+idString(m.id)+`"`) {
		t.Fatalf("members of the restored backup: %d %s", code, body)
	}
	if code, _, body := m.do(t, "PUT", "/v2/keys/restored", url.Values{"value": {"yes"}}); code != 201 {
		t.Fatalf("write on the restored backup: %d %s", code, body)
	}
	m.stop(t)
}

// TestBackupUnderWriteLoad takes backups with `etcdlite backup` from a
// member serving writes (while it snapshots, rotates, releases segments and
// prunes snapshots), wipes the member, and starts a new cluster from each
// backup: every write acknowledged before a backup began is in it.
func TestBackupUnderWriteLoad(t *testing.T) {
	dir := t.TempDir()
	m := startTestMember(t, loadTestConfig(t, dir))
	load := startWriteLoad(m.URL, 8)
	type taken struct {
		dir  string
		want []string
	}
	var backups []taken
	for i := 0; i < 4; i++ {
		time.Sleep(150 * time.Millisecond)
		b := taken{dir: filepath.Join(t.TempDir(), "backup"), want: load.ackedSoFar()}
		var out, errOut bytes.Buffer
		if code := runBackup([]string{"--data-dir", dir, "--backup-dir", b.dir}, &out, &errOut); code != 0 {
			load.finish()
			t.Fatalf("backup %d: exit %d: %s", i, code, errOut.String())
		}
		if !strings.Contains(out.String(), "--force-new-cluster") {
			t.Errorf("backup output: %s", out.String())
		}
		backups = append(backups, b)
	}
	load.finish()
	if snaps, _ := filepath.Glob(filepath.Join(dir, "member", "snap", "*.snap")); len(snaps) == 0 {
		t.Fatal("the member took no snapshot under the load; the test means to race with them")
	}
	old := m.server
	m.stop(t)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for i, b := range backups {
		t.Logf("backup %d: %d writes acknowledged before it", i, len(b.want))
		restoreAndCheck(t, b.dir, old, b.want)
	}
	// a backup refuses to overwrite one
	var out bytes.Buffer
	if code := runBackup([]string{"--data-dir", backups[0].dir, "--backup-dir", backups[1].dir}, &out, &out); code != 1 || !strings.Contains(out.String(), "to be empty") {
		t.Fatalf("backup into a non-empty dir: exit %d: %s", code, out.String())
	}
}

// TestBackupHTTP takes backups with GET /v2/backup under write load, and
// starts a new cluster from each tar.
func TestBackupHTTP(t *testing.T) {
	dir := t.TempDir()
	m := startTestMember(t, loadTestConfig(t, dir))
	load := startWriteLoad(m.URL, 8)
	type taken struct {
		dir  string
		want []string
	}
	var backups []taken
	for i := 0; i < 3; i++ {
		time.Sleep(150 * time.Millisecond)
		b := taken{dir: t.TempDir(), want: load.ackedSoFar()}
		resp, err := http.Get(m.URL + "/v2/backup")
		if err != nil {
			load.finish()
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-tar" {
			body, _ := io.ReadAll(resp.Body)
			load.finish()
			t.Fatalf("GET /v2/backup: %d %s", resp.StatusCode, body)
		}
		untar(t, resp.Body, b.dir)
		resp.Body.Close()
		backups = append(backups, b)
	}
	load.finish()
	code, _, _ := m.do(t, "POST", "/v2/backup", nil)
	if code != 405 {
		t.Errorf("POST /v2/backup: %d, want 405", code)
	}
	old := m.server
	m.stop(t)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for _, b := range backups {
		restoreAndCheck(t, b.dir, old, b.want)
	}
}

// untar unpacks a backup tar into dir, refusing names that leave it.
func untar(t *testing.T, r io.Reader, dir string) {
	t.Helper()
	tr := tar.NewReader(r)
	files := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		if !filepath.IsLocal(h.Name) {
			t.Fatalf("tar entry %q leaves the data dir", h.Name)
		}
		p := filepath.Join(dir, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			files++
		default:
			t.Fatalf("unexpected tar entry %q of type %c", h.Name, h.Typeflag)
		}
	}
	if files < 1 {
		t.Fatal("the tar holds no file")
	}
}

// TestVerify checks a good data dir, one with a torn tail, one with a bit
// flipped in the middle of the log and one with a damaged snapshot.
func TestVerify(t *testing.T) {
	good := t.TempDir()
	cfg := testConfig(t, good)
	cfg.hooks.wal.segmentSize = 16 << 10
	cfg.SnapshotCount, cfg.MaxWALs = 40, 0
	m := startTestMember(t, cfg)
	for i := 0; i < 300; i++ {
		if code, _, body := m.do(t, "PUT", fmt.Sprintf("/v2/keys/v/k%03d", i), url.Values{"value": {strings.Repeat("x", 100)}}); code != 201 {
			t.Fatalf("put: %d %s", code, body)
		}
	}
	m.stop(t)
	logDir := filepath.Join(good, "member", "wal")
	segs, _, err := walListSegments(logDir)
	if err != nil || len(segs) < 3 {
		t.Fatalf("want several segments, have %d (%v)", len(segs), err)
	}
	clone := func() string {
		d := t.TempDir()
		if err := os.CopyFS(d, os.DirFS(good)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	torn := clone()
	{
		tsegs, _, _ := walListSegments(filepath.Join(torn, "member", "wal"))
		r := &walReplay{}
		if err := walReplayDir(tsegs, r); err != nil {
			t.Fatal(err)
		}
		e := raftpb.Entry{Term: 9, Index: 1 << 30, Data: bytes.Repeat([]byte("x"), 200)}
		rec, _, err := walAppendEntry(nil, &e, r.chain)
		if err != nil {
			t.Fatal(err)
		}
		appendAt(t, tsegs[len(tsegs)-1].path, int64(r.validEnd), rec[:len(rec)/2])
	}
	flippedLog := clone()
	{
		fsegs, _, _ := walListSegments(filepath.Join(flippedLog, "member", "wal"))
		flipByte(t, fsegs[1].path, -1)
	}
	flippedSnap := clone()
	{
		snaps, _ := filepath.Glob(filepath.Join(flippedSnap, "member", "snap", "*.snap"))
		if len(snaps) == 0 {
			t.Fatal("no snapshot taken")
		}
		flipByte(t, snaps[len(snaps)-1], -1)
	}
	for _, tc := range []struct {
		name, dir string
		code      int
		want      []string
	}{
		{"good", good, 0, []string{"result: ok", "checksum ok", "log entries: entries 1-", "members: 1", "recovery: from snapshot at index"}},
		{"torn tail", torn, 0, []string{"result: ok", "torn tail at offset"}},
		{"bit flipped in the log", flippedLog, 1, []string{"DAMAGED", segs[1].path[len(good):]}},
		{"bit flipped in a snapshot", flippedSnap, 1, []string{"DAMAGED", "checksum mismatch"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			code := runVerify([]string{"--data-dir", tc.dir}, &out, &out)
			if code != tc.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tc.code, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
	var out bytes.Buffer
	if code := runVerify(nil, &out, &out); code != 1 {
		t.Errorf("verify without --data-dir: exit %d", code)
	}
}

// appendAt writes b into the file at path at offset off.
func appendAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// flipByte inverts one bit of the file at path, at offset off or (off < 0)
// in its middle.
func flipByte(t *testing.T, path string, off int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off = len(b) / 2
	}
	b[off] ^= 0x10
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBackupFromFollowerOfThree takes GET /v2/backup from a follower of a
// three-member cluster while writes go through the leader: the quorum read
// it starts with makes the copy hold every write acknowledged before the
// request, and the restored member removes all three old members.
func TestBackupFromFollowerOfThree(t *testing.T) {
	c := startTestCluster(t, 3, func(cfg *config) { cfg.SnapshotCount = 60 })
	lead := c.leader()
	follower := (lead + 1) % 3
	load := startWriteLoad(c.members[lead].url, 4)
	time.Sleep(400 * time.Millisecond)
	want := load.ackedSoFar()
	resp, err := http.Get(c.members[follower].url + "/v2/backup")
	if err != nil {
		load.finish()
		t.Fatal(err)
	}
	dir := t.TempDir()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		load.finish()
		t.Fatalf("GET /v2/backup on a follower: %d %s", resp.StatusCode, b)
	}
	untar(t, resp.Body, dir)
	resp.Body.Close()
	load.finish()
	old := c.srv(follower)
	c.stopAll()
	cfg := testConfig(t, dir)
	cfg.Name = c.members[follower].cfg.Name
	cfg.InitialCluster = map[string][]*url.URL{cfg.Name: cfg.InitialAdvertisePeerURLs}
	// restoreAndCheck's member is named "t": restore this one by hand
	var out bytes.Buffer
	if code := runVerify([]string{"--data-dir", dir}, &out, &out); code != 0 || !strings.Contains(out.String(), "members: 3") {
		t.Fatalf("verify of a follower's backup: exit %d\n%s", code, out.String())
	}
	cfg.ForceNewCluster = true
	m := startTestMember(t, cfg)
	if m.id == old.id || m.clusterID == old.clusterID {
		t.Fatal("the backup kept the old ids")
	}
	dump := storeDump(m.store)
	for _, k := range want {
		if !strings.Contains(dump, `"key":"/`+k+`"`) {
			t.Fatalf("write %s acknowledged before the backup is missing (%d acknowledged)", k, len(want))
		}
	}
	code, _, body := m.do(t, "GET", "/v2/members", nil)
	if code != 200 || strings.Count(body, `"id"`) != 1 {
		t.Fatalf("members after restoring a member of three: %s", body)
	}
}

// TestBackupAndVerifyCommands runs the built binary's backup and verify
// subcommands (dispatched at the top of main) against a running child.
func TestBackupAndVerifyCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := confBuild(t)
	dir := t.TempDir()
	child := startCrashChild(t, bin, filepath.Join(dir, "data"), filepath.Join(dir, "log"))
	defer child.kill()
	hc := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < 50; i++ {
		if _, ok := putKey(hc, child.url, fmt.Sprintf("/c%d", i), "v"); !ok {
			t.Fatalf("put %d failed", i)
		}
	}
	run := func(args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return code, string(out)
	}
	backup, wal := filepath.Join(dir, "backup"), filepath.Join(dir, "backup-wal")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"backup", "--data-dir", filepath.Join(dir, "data"), "--backup-dir", backup, "--backup-wal-dir", wal}, 0, "--force-new-cluster"},
		{[]string{"verify", "--data-dir", backup, "--wal-dir", wal}, 0, "result: ok"},
		{[]string{"verify", "--data-dir", filepath.Join(dir, "data")}, 0, "result: ok"},
		{[]string{"verify", "--data-dir", backup}, 1, "no write-ahead log"},
		{[]string{"verify", "--data-dir", filepath.Join(dir, "nothing")}, 1, "DAMAGED"},
		{[]string{"backup", "--data-dir", filepath.Join(dir, "data")}, 1, "--backup-dir is required"},
		{[]string{"backup", "--backup-dir", filepath.Join(dir, "b2")}, 1, "--data-dir is required"},
		{[]string{"backup", "--data-dir", filepath.Join(dir, "nothing"), "--backup-dir", filepath.Join(dir, "b3")}, 1, "no write-ahead log"},
		{[]string{"backup", "--bogus"}, 1, "flag provided but not defined"},
	} {
		code, out := run(c.args...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("etcdlite %s: exit %d, want %d with %q:\n%s", strings.Join(c.args, " "), code, c.code, c.want, out)
		}
	}
}
