//go:build !unix

// This file owns "mapping" files read-only where mmap is not available: the
// file is read into the heap instead.
package main

// mapFileReadOnly reads the whole file (a log segment, a snapshot); release
// does nothing. Unix systems map the file instead (mmap_unix.go).
func mapFileReadOnly(path string) (data []byte, release func(), err error) {
	return readWholeFile(path)
}
