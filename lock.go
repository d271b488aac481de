// The data-dir lock that keeps a second process out of a data dir.

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// dataDirLockName is the lock file inside the data directory.
const dataDirLockName = "lock"

// dataDirLocks keeps the lock files of held data directory locks reachable,
// so that the garbage collector never closes one (which would drop the lock).
var dataDirLocks = struct {
	sync.Mutex
	files map[*os.File]struct{}
}{files: map[*os.File]struct{}{}}

// lockDataDir creates dir if needed and takes an exclusive, non-blocking
// flock on <dir>/lock so that two etcdlite processes never share a data
// directory. The lock lasts until release is called or the process exits.
func lockDataDir(dir string) (release func() error, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dir, dataDirLockName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open data dir lock: %w", err)
	}
	if err := flockExclusive(f); err != nil {
		f.Close()
		if errors.Is(err, errLockHeld) {
			return nil, fmt.Errorf("data dir %s is in use by another etcdlite process", dir)
		}
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	dataDirLocks.Lock()
	dataDirLocks.files[f] = struct{}{}
	dataDirLocks.Unlock()
	var once sync.Once
	var rerr error
	return func() error {
		once.Do(func() { rerr = dataDirUnlock(dir, f) })
		return rerr
	}, nil
}

// dataDirUnlock releases a lock taken by lockDataDir.
func dataDirUnlock(dir string, f *os.File) error {
	dataDirLocks.Lock()
	delete(dataDirLocks.files, f)
	dataDirLocks.Unlock()
	uerr := funlock(f)
	cerr := f.Close()
	if uerr != nil {
		return fmt.Errorf("unlock data dir %s: %w", dir, uerr)
	}
	if cerr != nil {
		return fmt.Errorf("close data dir lock: %w", cerr)
	}
	return nil
}

// hexPairName is the name of a data-dir file numbered by two values, as
// "%016x-%016x" followed by ext (log segments, snapshots).
func hexPairName(a, b uint64, ext string) string {
	return fmt.Sprintf("%016x-%016x%s", a, b, ext)
}

// parseHexPairName parses a name made by hexPairName with ext.
func parseHexPairName(name, ext string) (a, b uint64, ok bool) {
	if len(name) != 33+len(ext) || !strings.HasSuffix(name, ext) || name[16] != '-' {
		return 0, 0, false
	}
	a, err1 := strconv.ParseUint(name[:16], 16, 64)
	b, err2 := strconv.ParseUint(name[17:33], 16, 64)
	if err1 != nil || err2 != nil || hexPairName(a, b, ext) != name {
		return 0, 0, false
	}
	return a, b, true
}
