// This file owns the Linux system calls of the write-ahead log:
// fdatasync, fallocate, and finding where a segment's data ends
// (SEEK_DATA/SEEK_HOLE). sync_other.go has the portable fallbacks.
package main

import (
	"os"
	"syscall"
)

// lseek's whence values that find data and holes (Linux).
const (
	seekData = 3
	seekHole = 4
)

// walDataEnd returns how much of the file at path (size bytes) may hold
// data: the file system reports everything beyond as a hole or as space
// preallocated and never written, which reads as zeros. The replay then
// need not read the preallocated end of the last segment, tens of megabytes
// of zeros that cost 50-150 ms of page faults at every start on a virtual
// machine. It returns size when the file system cannot tell.
func walDataEnd(path string, size int) int {
	f, err := os.Open(path)
	if err != nil {
		return size
	}
	defer f.Close()
	fd := int(f.Fd())
	end, pos := int64(0), int64(0)
	for pos < int64(size) {
		data, err := syscall.Seek(fd, pos, seekData)
		if err == syscall.ENXIO {
			break // no data from pos on
		}
		if err != nil {
			return size
		}
		hole, err := syscall.Seek(fd, data, seekHole)
		if err != nil {
			return size
		}
		end, pos = hole, hole
	}
	return int(min(end, int64(size)))
}

// walPreallocate reserves size bytes for f (filled with zeros) so that
// appends do not grow the file and fdatasync need not write its size.
// Where the file system cannot, the file just grows as it is written.
func walPreallocate(f *os.File, size int64) {
	if fi, err := f.Stat(); err == nil && fi.Size() < size {
		_ = syscall.Fallocate(int(f.Fd()), 0, 0, size)
	}
}

// walFdatasync flushes f's data (and the size, when it grew) to disk.
func walFdatasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
