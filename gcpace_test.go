// Tests of the collector's pacing (gcpace.go).

package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// TestGCPercentFor checks the GOGC chosen for a live heap: the floor's
// growth below it, the runtime's own smallest goal bounding it for a tiny
// heap, and the default from the floor up.
func TestGCPercentFor(t *testing.T) {
	const mb = 1 << 20
	tests := []struct {
		live, floor uint64
		want        int
	}{
		{3 * mb, 8 * mb, 266},   // grows by 8 MB: goal 11 MB
		{4 * mb, 8 * mb, 200},   // goal 12 MB
		{6 * mb, 8 * mb, 133},   // goal 14 MB
		{8 * mb, 8 * mb, 100},   // the floor reached: the default
		{100 * mb, 8 * mb, 100}, // a large store: the default
		{2 * mb, 8 * mb, 250},   // the runtime's minimum (4 MB x 2.5 = 10 MB) bounds it
		{0, 8 * mb, 200},        // nothing live yet: goal 8 MB
		{mb, mb, 100},
		{3 * mb, 1, 100}, // no floor to speak of
	}
	for _, tt := range tests {
		if got := gcPercentFor(tt.live, tt.floor); got != tt.want {
			t.Errorf("gcPercentFor(%d, %d) = %d, want %d", tt.live, tt.floor, got, tt.want)
		}
		// the goal it gives is at most live + floor (and at least the default's)
		p := uint64(gcPercentFor(tt.live, tt.floor))
		goal := max(tt.live+tt.live*p/100, gcHeapMinimum*p/100)
		if tt.live < tt.floor && goal > tt.live+tt.floor+1 {
			t.Errorf("live %d floor %d: GOGC %d gives a goal of %d, more than live + floor", tt.live, tt.floor, p, goal)
		}
	}
}

// TestGCPacer runs the pacer in this process: after a collection GOGC is
// what gcPercentFor says for the live heap; stopped, it changes no more;
// and while a recovery has the collector off it is left off.
func TestGCPacer(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	gogc := func() uint64 {
		s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	const floor = 1 << 40 // far above any live heap here: the runtime's minimum decides
	p := startGCPacer(floor)
	waitPercent := func(ok func(uint64) bool) uint64 {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			runtime.GC()
			if g := gogc(); ok(g) || time.Now().After(deadline) {
				return g
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if g := waitPercent(func(g uint64) bool { return g > 100 }); g <= 100 {
		t.Fatalf("GOGC %d after collections with a floor of 1 TB, want more than 100", g)
	}

	resume := pauseGC()
	runtime.GC() // the pacer runs after it and must not turn the collector on
	time.Sleep(50 * time.Millisecond)
	if g := int64(gogc()); g != -1 {
		resume()
		t.Fatalf("GOGC %d during a paused recovery, want off (-1)", g)
	}
	resume()
	if g := gogc(); g <= 100 {
		t.Errorf("GOGC %d after the recovery resumed, want the pacer's (more than 100)", g)
	}

	p.stop()
	runtime.GC() // the cleanup that sees stop
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	debug.SetGCPercent(100)
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if g := gogc(); g != 100 {
		t.Errorf("GOGC %d after the pacer stopped, want 100 (left as set)", g)
	}
}
