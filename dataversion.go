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

// dataFormat is the data-dir format this etcdlite writes. Format 2 writes
// snapshot files of version 3 (their length and checksum after the data).
const dataFormat = 2

// dataFormatOldest is the oldest format this etcdlite reads (format 1: the
// same but for version 2 snapshot files, which it still reads).
const dataFormatOldest = 1

// readableFormats names the formats this etcdlite reads, for messages.
func readableFormats() string {
	if dataFormatOldest == dataFormat {
		return fmt.Sprintf("format %d", dataFormat)
	}
	return fmt.Sprintf("formats %d to %d", dataFormatOldest, dataFormat)
}

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
		return 0, true, fmt.Errorf("data dir %s: %s holds %q, not a format number; this etcdlite reads %s", dataDir, p, text, readableFormats())
	}
	return n, true, nil
}

// checkDataFormat refuses a data dir written in a format this etcdlite does
// not read, naming the format that wrote it; n is the format (1 when the
// data dir has no version file) and found whether it has one.
func checkDataFormat(dataDir string) (n int, found bool, err error) {
	n, found, err = readDataFormat(dataDir)
	if err != nil {
		return 0, found, err
	}
	if !found {
		return dataFormatOldest, false, nil
	}
	if n < dataFormatOldest || n > dataFormat {
		return n, found, fmt.Errorf("data dir %s written by etcdlite format %d; this etcdlite reads %s", dataDir, n, readableFormats())
	}
	return n, found, nil
}

// ensureDataFormat checks dataDir's format and, when the data dir has no
// version file yet (a new one, or one written before the file existed, in
// format 1) or an older format this etcdlite reads, records dataFormat
// before anything is written in it: what this etcdlite writes from now on
// is in its own format, which an older etcdlite must refuse as a whole. The
// caller holds the data-dir lock.
func ensureDataFormat(dataDir string) error {
	n, found, err := checkDataFormat(dataDir)
	if err != nil || found && n == dataFormat {
		return err
	}
	if err := writeFileSync(dataFormatPath(dataDir), []byte(strconv.Itoa(dataFormat)+"\n")); err != nil {
		return fmt.Errorf("record data dir format: %w", err)
	}
	if found {
		slog.Info("data dir taken up in this etcdlite's format; etcdlite before it will refuse the data dir", "file", dataFormatPath(dataDir), "was", n, "now", dataFormat)
	} else {
		slog.Debug("recorded the data dir format", "file", dataFormatPath(dataDir), "format", dataFormat)
	}
	return nil
}
