//go:build unix

// This file owns mapping files read-only on Unix systems, where mmap exists.
package main

import (
	"fmt"
	"os"
	"syscall"
)

// mapFileReadOnly maps a file (a log segment, a snapshot) read-only, so
// that reading it costs no heap: a mostly preallocated 64 MB segment, or a
// snapshot already in the page cache, is not copied into fresh memory (on a
// virtual machine first touches of fresh memory are what a restart spends
// most on). Nothing decoded from the mapping may keep pointing into it
// after release.
func mapFileReadOnly(path string) (data []byte, release func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("map %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("map %s: %w", path, err)
	}
	if fi.Size() == 0 {
		return nil, func() {}, nil
	}
	if int64(int(fi.Size())) != fi.Size() {
		return nil, nil, fmt.Errorf("map %s: %d bytes do not fit this machine's address space", path, fi.Size())
	}
	data, err = syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		// a file system that cannot map: read it instead
		return readWholeFile(path)
	}
	return data, func() { _ = syscall.Munmap(data) }, nil
}
