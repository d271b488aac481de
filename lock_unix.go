//go:build unix

// This file owns the data-dir lock's system calls on Unix systems (flock).
package main

import (
	"errors"
	"os"
	"syscall"
)

// errLockHeld says another process holds the lock.
var errLockHeld = errors.New("lock held by another process")

// flockExclusive takes an exclusive, non-blocking lock on f; it returns
// errLockHeld when another process has it.
func flockExclusive(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errLockHeld
	}
	return err
}

// funlock releases a lock taken by flockExclusive.
func funlock(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
