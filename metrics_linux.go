//go:build linux

// This file reads the process_* figures from /proc on Linux.
package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// clockTicks is the unit of /proc/<pid>/stat's times (USER_HZ, 100 on
// every Linux architecture Go supports).
const clockTicks = 100

// processStats reads this process's CPU time, memory, file descriptors and
// start time from /proc; ok is false when /proc cannot be read.
func processStats() (p processInfo, ok bool) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return p, false
	}
	// the fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14, stime 15, starttime 22,
	// vsize 23, rss 24
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return p, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 22 {
		return p, false
	}
	field := func(n int) float64 { // n counts from 1 as proc(5) does
		v, _ := strconv.ParseFloat(f[n-3], 64)
		return v
	}
	p.cpuSeconds = (field(14) + field(15)) / clockTicks
	p.virtualBytes = field(23)
	p.residentBytes = field(24) * float64(os.Getpagesize())
	if btime, ok := bootTime(); ok {
		p.startTime = btime + field(22)/clockTicks
	}
	if des, err := os.ReadDir("/proc/self/fd"); err == nil {
		p.openFDs = float64(len(des))
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		p.maxFDs = float64(lim.Cur)
	}
	if syscall.Getrlimit(syscall.RLIMIT_AS, &lim) == nil {
		p.virtualMaxBytes = float64(lim.Cur)
	}
	return p, true
}

// bootTime is the btime line of /proc/stat: when the system booted, in
// seconds since the epoch.
func bootTime() (float64, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			t, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return t, err == nil
		}
	}
	return 0, false
}
