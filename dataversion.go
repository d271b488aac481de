// The data dir's format number: <data-dir>/member/version holds the number
// of the on-disk format (FORMAT.md) the data dir is written in, so that a
// later etcdlite can tell what it reads, and this one refuses a data dir a
// later one wrote rather than take it for damage. A data dir without the
// file was written before the file existed, in format 1.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// dataFormat is the data-dir format this etcdlite writes and reads.
const dataFormat = 1

// dataFormatFile is the file in <data-dir>/member that holds the format.
const dataFormatFile = "version"

// dataFormatPath is where dataDir's format number is kept.
func dataFormatPath(dataDir string) string {
	return filepath.Join(dataDir, "member", dataFormatFile)
}

// readDataFormat returns the format dataDir says it is written in; found
// is false when the data dir has no version file.
func readDataFormat(dataDir string) (format int, found bool, err error) {
	p := dataFormatPath(dataDir)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read data dir format: %w", err)
	}
	text := strings.TrimSpace(string(b))
	n, err := strconv.Atoi(text)
	if err != nil || n < 1 {
		return 0, true, fmt.Errorf("data dir %s: %s holds %q, not a format number; this etcdlite reads format %d", dataDir, p, text, dataFormat)
	}
	return n, true, nil
}

// checkDataFormat refuses a data dir written in a format other than
// dataFormat, naming the format that wrote it; found is false when the
// data dir has no version file (format 1).
func checkDataFormat(dataDir string) (found bool, err error) {
	n, found, err := readDataFormat(dataDir)
	if err != nil {
		return found, err
	}
	if found && n != dataFormat {
		return found, fmt.Errorf("data dir %s written by etcdlite format %d; this etcdlite reads format %d", dataDir, n, dataFormat)
	}
	return found, nil
}

// ensureDataFormat checks dataDir's format and, when the data dir has no
// version file yet (a new one, or one written before the file existed, in
// format 1), writes it. The caller holds the data-dir lock.
func ensureDataFormat(dataDir string) error {
	if found, err := checkDataFormat(dataDir); err != nil || found {
		return err
	}
	if err := writeFileSync(dataFormatPath(dataDir), []byte(strconv.Itoa(dataFormat)+"\n")); err != nil {
		return fmt.Errorf("record data dir format: %w", err)
	}
	slog.Debug("recorded the data dir format", "file", dataFormatPath(dataDir), "format", dataFormat)
	return nil
}
