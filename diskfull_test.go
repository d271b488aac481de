// Tests of a full disk under the WAL.

package main

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDiskFull fills a small file system under the data dir: the write
// that cannot be made durable fails with error 300 and HTTP 500, reads of
// everything acknowledged go on, and after a restart on a bigger disk every
// acknowledged write is still there. It needs to mount a tmpfs (root).
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a file system")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	mounted := true
	unmount := func() {
		if mounted {
			exec.Command("umount", dir).Run()
			mounted = false
		}
	}
	t.Cleanup(unmount)
	cfg := testConfig(t, dir+"/data")
	m := startTestMember(t, cfg)
	value := strings.Repeat("v", 20000)
	var acked []int
	failed := false
	for i := 0; i < 100 && !failed; i++ {
		code, _, body := m.do(t, "PUT", fmt.Sprintf("/v2/keys/full/k%d", i), url.Values{"value": {value}})
		switch {
		case code == 201:
			acked = append(acked, i)
		case code == 500 && strings.Contains(body, `"errorCode":300`) && strings.Contains(body, "no space left"):
			failed = true
		default:
			t.Fatalf("write %d: unexpected answer %d %s", i, code, body)
		}
	}
	if !failed || len(acked) == 0 {
		t.Fatalf("the disk never filled (%d writes acknowledged)", len(acked))
	}
	// later writes fail at once, reads go on
	if code, _, body := m.do(t, "PUT", "/v2/keys/full/after", url.Values{"value": {"x"}}); code != 500 {
		t.Fatalf("write after the disk filled: %d %s", code, body)
	}
	for _, i := range acked {
		if code, _, _ := m.do(t, "GET", fmt.Sprintf("/v2/keys/full/k%d", i), nil); code != 200 {
			t.Fatalf("read of acknowledged k%d after the disk filled: %d", i, code)
		}
	}
	m.stop(t)
	// move the data to a roomy disk and restart: nothing acknowledged is lost
	roomy := t.TempDir()
	if out, err := exec.Command("cp", "-a", dir+"/data", roomy+"/data").CombinedOutput(); err != nil {
		t.Fatalf("copy data dir: %v %s", err, out)
	}
	unmount()
	os.RemoveAll(dir)
	cfg.DataDir = roomy + "/data"
	m = startTestMember(t, cfg)
	for _, i := range acked {
		if code, _, _ := m.do(t, "GET", fmt.Sprintf("/v2/keys/full/k%d", i), nil); code != 200 {
			t.Fatalf("acknowledged k%d lost after restart: %d", i, code)
		}
	}
	if code, _, body := m.do(t, "PUT", "/v2/keys/full/again", url.Values{"value": {"x"}}); code != 201 {
		t.Fatalf("write after restart on a roomy disk: %d %s", code, body)
	}
}
