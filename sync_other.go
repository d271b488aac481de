//go:build !linux

// This file owns the portable fallbacks for the write-ahead log's Linux
// system calls (sync_linux.go): a full fsync where fdatasync is missing, a
// file that grows as it is written where fallocate is missing, and no
// knowledge of where a segment's data ends. Durability is the same: every
// acknowledged write is on disk before the answer.
package main

import "os"

// walDataEnd returns size: without SEEK_DATA the whole segment is read.
func walDataEnd(path string, size int) int { return size }

// walPreallocate does nothing: the segment grows as it is written, and each
// sync also writes its new size.
func walPreallocate(f *os.File, size int64) {}

// walFdatasync flushes f's data and metadata to disk with fsync (on macOS
// os.File.Sync asks for F_FULLFSYNC, which reaches the platter).
func walFdatasync(f *os.File) error {
	if err := f.Sync(); err != nil {
		return &os.PathError{Op: "fsync", Path: f.Name(), Err: err}
	}
	return nil
}
