// Tests of the GET answers and their cache.

package kv

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// getJSON is the answer Get and Event.AppendJSON give, the reference
// AppendGet must match byte for byte.
func getJSON(s *Store, p string, recursive, sorted bool, now int64, trim string) (string, uint64, *Error) {
	e, err := s.Lookup(p, recursive, sorted, now)
	if err != nil {
		return "", 0, err
	}
	return string(e.AppendJSON(nil, trim, false)), e.EtcdIndex, nil
}

// checkAppendGet compares AppendGet with getJSON for path p, each read
// twice (the second from the cache when the first filled it).
func checkAppendGet(t *testing.T, s *Store, p string, recursive, sorted bool, now int64, trim string) {
	t.Helper()
	want, wantIndex, wantErr := getJSON(s, p, recursive, sorted, now, trim)
	for round := 0; round < 2; round++ {
		prefix := []byte("already here|")
		b, index, err := s.AppendGet(prefix, p, recursive, sorted, now, trim)
		if (err == nil) != (wantErr == nil) || (err != nil && (err.Code != wantErr.Code || err.Index != wantErr.Index || err.Cause != wantErr.Cause)) {
			t.Fatalf("AppendGet(%q) round %d: error %v, want %v", p, round, err, wantErr)
		}
		if err != nil {
			if string(b) != string(prefix) {
				t.Fatalf("AppendGet(%q) failed but appended %q", p, b[len(prefix):])
			}
			continue
		}
		if got := string(b[len(prefix):]); got != want || index != wantIndex || string(b[:len(prefix)]) != string(prefix) {
			t.Fatalf("AppendGet(%q, recursive %v, sorted %v, trim %q) round %d:\n got %d %q\nwant %d %q",
				p, recursive, sorted, trim, round, index, b, wantIndex, want)
		}
	}
}

func TestAppendGetCases(t *testing.T) {
	s := New("/0", "/1")
	must(t)(s.Set("/1/file", false, "v", TTLOptions{}, t0))
	must(t)(s.Set("/1/dir/a", false, "<&>\u2028", TTLOptions{}, t0))
	must(t)(s.Set("/1/dir/_hidden", false, "h", TTLOptions{}, t0))
	must(t)(s.Set("/1/dir/sub/b", false, "b", TTLOptions{}, t0))
	must(t)(s.Set("/1/ttl", false, "t", TTLOptions{ExpireTime: t0 + 10*sec}, t0))
	must(t)(s.Set("/1/empty", false, "", TTLOptions{}, t0))
	must(t)(s.Set("/1/big", false, string(make([]byte, 3*maxCachedAnswer)), TTLOptions{}, t0))
	for _, c := range []struct {
		path      string
		recursive bool
		sorted    bool
		trim      string
	}{
		{"/1/file", false, false, "/1"},
		{"/1/file", true, true, "/1"},
		{"/1/file", false, false, ""}, // the same file under another trim: its own answer
		{"/1/file/", false, false, "/1"},
		{"/1/dir", false, true, "/1"}, // (unsorted, a listing's order is the map's)
		{"/1/dir", true, true, "/1"},
		{"/1/dir/_hidden", false, false, "/1"},
		{"/1/ttl", false, false, "/1"},
		{"/1/empty", false, false, "/1"},
		{"/1/big", false, false, "/1"},
		{"/1", true, true, "/1"},
		{"/1/missing", false, false, "/1"},
		{"/1/file/under", false, false, "/1"},
		{"1//dir/../file", false, false, "/1"},
	} {
		for _, now := range []int64{t0, t0 + 3*sec + 1} {
			checkAppendGet(t, s, c.path, c.recursive, c.sorted, now, c.trim)
		}
	}
	// a big value is answered, not kept
	if _, _, err := s.AppendGet(nil, "/1/big", false, false, t0, "/1"); err != nil {
		t.Fatal(err)
	}
	n, _ := s.get("/1/big")
	if a := s.answers.slots[n.modifiedIndex&(answerSlots-1)].Load(); a != nil && a.path == "/1/big" {
		t.Errorf("an answer of %d bytes was cached", len(a.json))
	}
}

// TestAppendGetSlotReuse writes a file again at an index that picks the
// slot its old answer is in: the old answer must not be served.
func TestAppendGetSlotReuse(t *testing.T) {
	s := New("/0", "/1")
	must(t)(s.Set("/1/a", false, "old", TTLOptions{}, t0))
	checkAppendGet(t, s, "/1/a", false, false, t0, "/1")
	for s.Index()%answerSlots != 0 {
		must(t)(s.Set("/1/other", false, "o", TTLOptions{}, t0))
	}
	must(t)(s.Set("/1/a", false, "new", TTLOptions{}, t0))
	checkAppendGet(t, s, "/1/a", false, false, t0, "/1")
	b, _, _ := s.AppendGet(nil, "/1/a", false, false, t0, "/1")
	if !strings.Contains(string(b), `"new"`) {
		t.Errorf("answer %s, want the new value", b)
	}
}

// TestAppendGetRandomized runs random writes, expiries and recoveries
// against a store while checking every key's answer against Get's after
// each step, with readers filling the cache concurrently (run with -race).
func TestAppendGetRandomized(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 3))
	s := New("/0", "/1")
	keys := []string{"/1/a", "/1/b", "/1/d/x", "/1/d/y", "/1/d/_h", "/1/d", "/1/e/f/g"}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() { // concurrent readers: they fill slots while writes go on
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s.AppendGet(nil, keys[i%len(keys)], false, false, t0, "/1")
			}
		}()
	}
	now := t0
	for step := 0; step < 4000; step++ {
		now += int64(rng.IntN(3)) * sec / 2
		k := keys[rng.IntN(len(keys))]
		v := fmt.Sprintf("v%d", rng.IntN(4))
		var opts TTLOptions
		if rng.IntN(4) == 0 {
			opts.ExpireTime = now + int64(1+rng.IntN(3))*sec
		}
		switch rng.IntN(9) {
		case 0, 1:
			s.Set(k, false, v, opts, now)
		case 2:
			s.Set(k, true, "", opts, now)
		case 3:
			s.Update(k, v, opts, now)
		case 4:
			opts.Refresh = true
			s.Update(k, "", opts, now)
		case 5:
			s.CompareAndSwap(k, fmt.Sprintf("v%d", rng.IntN(4)), 0, v, opts, now)
		case 6:
			s.Delete(k, rng.IntN(2) == 0, rng.IntN(2) == 0, now)
		case 7:
			s.DeleteExpiredKeys(now)
		case 8:
			if rng.IntN(20) == 0 { // a store recovered from another's snapshot
				other := New("/0", "/1")
				for i, ok := range keys {
					other.Set(ok, false, fmt.Sprintf("other%d", i), TTLOptions{}, now)
				}
				data, err := other.Save()
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Recover(data); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, p := range keys {
			checkAppendGet(t, s, p, false, true, now, "/1") // sorted: some are directories
		}
		checkAppendGet(t, s, "/1", true, true, now, "/1")
	}
	close(stop)
	wg.Wait()
}

// BenchmarkAppendGet reads one file of 1024 with a 64-byte value, as a GET
// of the keys API does: with AppendGet (from the cache), and as the server
// did before it, with Get's event encoded by Event.AppendJSON.
func BenchmarkAppendGet(b *testing.B) {
	s := New("/0", "/1")
	for i := 0; i < 1024; i++ {
		if _, err := s.Set(fmt.Sprintf("/1/bench/k%d", i), false, strings.Repeat("x", 64), TTLOptions{}, t0); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]byte, 0, 512)
	b.Run("AppendGet", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var err *Error
			if buf, _, err = s.AppendGet(buf[:0], "/1/bench/k515", false, false, t0, "/1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GetAppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e, err := s.Get("/1/bench/k515", false, false, t0)
			if err != nil {
				b.Fatal(err)
			}
			buf = e.AppendJSON(buf[:0], "/1", false)
		}
	})
}
