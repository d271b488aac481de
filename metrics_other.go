//go:build !linux

package main

// This file is the fallback for platforms without /proc: no process_*
// families are exported there.

// processStats reports that the process's figures are not known here.
func processStats() (processInfo, bool) { return processInfo{}, false }
