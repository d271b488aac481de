// Logging as the command line sets it up: --logger, --log-outputs,
// --log-level and --debug, and what the parser had to say before the log
// existed (notes, ignored flags).
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// logNote is a line the parser logs once logging is set up.
type logNote struct {
	warn bool
	msg  string
	args []any
}

// newLogger is the logger cfg asks for: JSON lines for --logger=zap, text
// lines for capnslog, written to every --log-outputs target. close closes
// the files it opened.
func newLogger(cfg *config) (logger *slog.Logger, close func() error, err error) {
	var ws []io.Writer
	var files []*os.File
	close = func() error {
		var errs []error
		for _, f := range files {
			errs = append(errs, f.Close())
		}
		return errors.Join(errs...)
	}
	seen := map[string]bool{}
	for _, o := range cfg.LogOutputs {
		if seen[o] {
			continue
		}
		seen[o] = true
		switch o {
		case "default", "stderr":
			// default: under systemd, stderr goes to the journal.
			if !seen["default"] || !seen["stderr"] {
				ws = append(ws, os.Stderr)
			}
		case "stdout":
			ws = append(ws, os.Stdout)
		default:
			f, err := os.OpenFile(o, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				_ = close()
				return nil, nil, fmt.Errorf("--log-outputs: %w", err)
			}
			files = append(files, f)
			ws = append(ws, f)
		}
	}
	var w io.Writer = os.Stderr
	switch len(ws) {
	case 0:
	case 1:
		w = ws[0]
	default:
		w = io.MultiWriter(ws...)
	}
	opts := &slog.HandlerOptions{Level: slogLevel(cfg.LogLevel)}
	if cfg.Logger == "zap" {
		return slog.New(slog.NewJSONHandler(w, opts)), close, nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), close, nil
}

// slogLevel maps etcd's log levels to slog's (panic and fatal log errors).
func slogLevel(l string) slog.Level {
	switch l {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error", "panic", "fatal":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// logStartNotes logs what the parser noted, then the ignored flags: one
// line for those that concern only the v3 API, one for each other, so each
// is named once.
func logStartNotes(cfg *config) {
	for _, n := range cfg.notes {
		if n.warn {
			slog.Warn(n.msg, n.args...)
		} else {
			slog.Info(n.msg, n.args...)
		}
	}
	var v3 []string
	for _, name := range cfg.Ignored {
		d := flagByName(name)
		if d.Use == useV3Only && d.Note == "" {
			v3 = append(v3, "--"+name)
			continue
		}
		args := []any{"flag", "--" + name}
		if src := cfg.given[name]; src != "--"+name {
			args = append(args, "given", src)
		}
		slog.Warn("ignored: "+d.ignoredReason(), args...)
	}
	if len(v3) > 0 {
		slog.Warn("ignored: applies to the v3 API only", "flags", strings.Join(v3, " "))
	}
}
