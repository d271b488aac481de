// Where the write-ahead log lives: <data-dir>/member/wal, or the directory
// --wal-dir names (its segments directly in it, as etcd lays them out). A
// data dir whose log is elsewhere records where, in member/wal-dir, so that
// it refuses to start without --wal-dir rather than start an empty log.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// walDirMarker is the file in <data-dir>/member that names the dedicated
// WAL directory the data dir was started with.
const walDirMarker = "wal-dir"

// defaultWALDir is the log's directory when --wal-dir is not given.
func defaultWALDir(dataDir string) string { return filepath.Join(dataDir, "member", "wal") }

// walDirOf is where cfg's log is (no checks).
func walDirOf(cfg *config) string {
	if cfg.WALDir == "" {
		return defaultWALDir(cfg.DataDir)
	}
	return cfg.WALDir
}

// resolveWALDir checks that cfg.WALDir agrees with the data dir, records a
// dedicated WAL dir in the data dir, and returns the log's directory. The
// data dir must exist.
func resolveWALDir(cfg *config) (string, error) {
	marker := filepath.Join(cfg.DataDir, "member", walDirMarker)
	recorded := ""
	switch b, err := os.ReadFile(marker); {
	case err == nil:
		recorded = strings.TrimSpace(string(b))
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read %s: %w", marker, err)
	}
	def := defaultWALDir(cfg.DataDir)
	if cfg.WALDir == "" {
		if recorded != "" && walExists(recorded) {
			return "", fmt.Errorf("data dir %s keeps its write-ahead log in %s: start with --wal-dir %s", cfg.DataDir, recorded, recorded)
		}
		if recorded != "" {
			slog.Warn("the dedicated WAL dir this data dir names holds no log; using the data dir's own", "wal-dir", recorded, "file", marker)
			if err := os.Remove(marker); err != nil {
				return "", fmt.Errorf("remove %s: %w", marker, err)
			}
		}
		return def, nil
	}
	dir, err := filepath.Abs(cfg.WALDir)
	if err != nil {
		return "", fmt.Errorf("--wal-dir %s: %w", cfg.WALDir, err)
	}
	if walExists(def) {
		return "", fmt.Errorf("data dir %s has its write-ahead log in %s, not in --wal-dir %s: move the .wal files there or drop --wal-dir", cfg.DataDir, def, cfg.WALDir)
	}
	if recorded != "" && recorded != dir && walExists(recorded) && !walExists(dir) {
		return "", fmt.Errorf("data dir %s keeps its write-ahead log in %s, and --wal-dir %s holds none: start with --wal-dir %s or move the .wal files", cfg.DataDir, recorded, cfg.WALDir, recorded)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create --wal-dir %s: %w", cfg.WALDir, err)
	}
	if recorded != dir {
		if err := writeFileSync(marker, []byte(dir+"\n")); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// writeFileSync writes a small file durably: a temporary file, fsynced,
// renamed over path, and the directory fsynced.
func writeFileSync(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := walSyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
