//go:build !linux

// This file is the fallback for platforms without /proc: no process_*
// families are exported there.
package main

// processStats reports that the process's figures are not known here.
func processStats() (processInfo, bool) { return processInfo{}, false }
