// Tests of the store.

package kv

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The store reads no clock: every test passes its own times, based on t0.
const sec = int64(time.Second)

var t0 = time.Date(2024, time.March, 4, 5, 6, 7, 0, time.UTC).UnixNano()

// rfc is how an expiration appears in the JSON of an event.
func rfc(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

// evJSON is the event as the HTTP layer writes it (no namespace trimmed).
func evJSON(e *Event) string {
	if e == nil {
		return "<nil event>"
	}
	return strings.TrimSuffix(string(e.AppendJSON(nil, "", false)), "\n")
}

// must(t)(op(...)) returns op's event, failing the test on an error.
func must(t testing.TB) func(*Event, *Error) *Event {
	return func(e *Event, err *Error) *Event {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error %d %q (cause %q, index %d)", err.Code, err.Message(), err.Cause, err.Index)
		}
		if e == nil {
			t.Fatal("nil event without error")
		}
		return e
	}
}

func wantJSON(t *testing.T, what string, e *Event, want string) {
	t.Helper()
	if got := evJSON(e); got != want {
		t.Errorf("%s:\n got %s\nwant %s", what, got, want)
	}
}

// dump is the whole tree as a recursive sorted Get sees it, for checking
// that failed operations leave the store as it was.
func dump(t *testing.T, s *Store) string {
	t.Helper()
	e, err := s.Get("/", true, true, t0)
	if err != nil {
		t.Fatalf("get /: %v", err)
	}
	return fmt.Sprintf("%d %s", s.Index(), evJSON(e))
}

func storeStats(t *testing.T, s *Store) map[string]uint64 {
	t.Helper()
	m := map[string]uint64{}
	if err := json.Unmarshal(s.StatsJSON(), &m); err != nil {
		t.Fatalf("stats JSON %q: %v", s.StatsJSON(), err)
	}
	return m
}

func TestStoreSetGetIndexes(t *testing.T) {
	s := New()
	if s.Index() != 0 {
		t.Fatalf("new store index %d", s.Index())
	}
	e := must(t)(s.Set("/a/b/c", false, "1", TTLOptions{}, t0))
	wantJSON(t, "set with two missing parents", e,
		`{"action":"set","node":{"key":"/a/b/c","value":"1","modifiedIndex":1,"createdIndex":1}}`)
	if e.EtcdIndex != 1 || s.Index() != 1 || e.Index() != 1 || !e.IsCreated() {
		t.Errorf("EtcdIndex %d, store index %d, event index %d, created %v", e.EtcdIndex, s.Index(), e.Index(), e.IsCreated())
	}
	// intermediate directories carry the index of the write that made them
	e = must(t)(s.Get("/a", false, false, t0))
	wantJSON(t, "get /a", e,
		`{"action":"get","node":{"key":"/a","dir":true,"nodes":[{"key":"/a/b","dir":true,"modifiedIndex":1,"createdIndex":1}],"modifiedIndex":1,"createdIndex":1}}`)
	e = must(t)(s.Get("/a", true, false, t0))
	wantJSON(t, "recursive get /a", e,
		`{"action":"get","node":{"key":"/a","dir":true,"nodes":[{"key":"/a/b","dir":true,"nodes":[{"key":"/a/b/c","value":"1","modifiedIndex":1,"createdIndex":1}],"modifiedIndex":1,"createdIndex":1}],"modifiedIndex":1,"createdIndex":1}}`)

	// a second child does not touch the directory's indexes
	must(t)(s.Set("/a/b/d", false, "2", TTLOptions{}, t0))
	e = must(t)(s.Get("/a/b", false, true, t0))
	wantJSON(t, "get /a/b sorted", e,
		`{"action":"get","node":{"key":"/a/b","dir":true,"nodes":[{"key":"/a/b/c","value":"1","modifiedIndex":1,"createdIndex":1},{"key":"/a/b/d","value":"2","modifiedIndex":2,"createdIndex":2}],"modifiedIndex":1,"createdIndex":1}}`)
	if e.EtcdIndex != 2 {
		t.Errorf("get EtcdIndex %d, want 2", e.EtcdIndex)
	}

	e = must(t)(s.Update("/a/b/c", "3", TTLOptions{}, t0))
	wantJSON(t, "update", e,
		`{"action":"update","node":{"key":"/a/b/c","value":"3","modifiedIndex":3,"createdIndex":1},"prevNode":{"key":"/a/b/c","value":"1","modifiedIndex":1,"createdIndex":1}}`)
	e = must(t)(s.CompareAndSwap("/a/b/c", "3", 3, "4", TTLOptions{}, t0))
	wantJSON(t, "cas", e,
		`{"action":"compareAndSwap","node":{"key":"/a/b/c","value":"4","modifiedIndex":4,"createdIndex":1},"prevNode":{"key":"/a/b/c","value":"3","modifiedIndex":3,"createdIndex":1}}`)
	// set over a file replaces it: a new node with a new createdIndex
	e = must(t)(s.Set("/a/b/c", false, "5", TTLOptions{}, t0))
	wantJSON(t, "set over file", e,
		`{"action":"set","node":{"key":"/a/b/c","value":"5","modifiedIndex":5,"createdIndex":5},"prevNode":{"key":"/a/b/c","value":"4","modifiedIndex":4,"createdIndex":1}}`)
	if e.IsCreated() {
		t.Error("set over an existing file reported as created")
	}
	e = must(t)(s.Delete("/a/b/c", false, false, t0))
	wantJSON(t, "delete", e,
		`{"action":"delete","node":{"key":"/a/b/c","modifiedIndex":6,"createdIndex":5},"prevNode":{"key":"/a/b/c","value":"5","modifiedIndex":5,"createdIndex":5}}`)
	e = must(t)(s.CompareAndDelete("/a/b/d", "2", 0, t0))
	wantJSON(t, "cad", e,
		`{"action":"compareAndDelete","node":{"key":"/a/b/d","modifiedIndex":7,"createdIndex":2},"prevNode":{"key":"/a/b/d","value":"2","modifiedIndex":2,"createdIndex":2}}`)
	e = must(t)(s.Delete("/a", false, true, t0))
	wantJSON(t, "recursive delete", e,
		`{"action":"delete","node":{"key":"/a","dir":true,"modifiedIndex":8,"createdIndex":1},"prevNode":{"key":"/a","dir":true,"modifiedIndex":1,"createdIndex":1}}`)
	if s.Index() != 8 {
		t.Errorf("index %d after 8 writes", s.Index())
	}
	// failures do not use an index
	if _, err := s.Get("/a", false, false, t0); err == nil || err.Index != 8 {
		t.Errorf("get of deleted dir: %v", err)
	}
	if _, err := s.Create("/x", false, "", false, TTLOptions{}, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("/x", false, "", false, TTLOptions{}, t0); err == nil {
		t.Fatal("second create succeeded")
	}
	if s.Index() != 9 {
		t.Errorf("index %d, want 9", s.Index())
	}
}

func TestStoreEmptyValuesAndDirs(t *testing.T) {
	s := New()
	e := must(t)(s.Set("/empty", false, "", TTLOptions{}, t0))
	wantJSON(t, "empty value is still a value", e,
		`{"action":"set","node":{"key":"/empty","value":"","modifiedIndex":1,"createdIndex":1}}`)
	e = must(t)(s.Set("/d", true, "ignored", TTLOptions{}, t0))
	wantJSON(t, "set dir", e, `{"action":"set","node":{"key":"/d","dir":true,"modifiedIndex":2,"createdIndex":2}}`)
	e = must(t)(s.Get("/d", true, true, t0))
	wantJSON(t, "empty dir", e, `{"action":"get","node":{"key":"/d","dir":true,"modifiedIndex":2,"createdIndex":2}}`)
	// a file can be replaced by a directory (etcd does this), not the reverse
	e = must(t)(s.Set("/empty", true, "", TTLOptions{}, t0))
	wantJSON(t, "dir over file", e,
		`{"action":"set","node":{"key":"/empty","dir":true,"modifiedIndex":3,"createdIndex":3},"prevNode":{"key":"/empty","value":"","modifiedIndex":1,"createdIndex":1}}`)
	// delete: a file with dir=true is fine; an empty dir needs dir or recursive
	must(t)(s.Set("/f", false, "v", TTLOptions{}, t0))
	must(t)(s.Delete("/f", true, false, t0))
	must(t)(s.Delete("/d", true, false, t0))
	e = must(t)(s.Delete("/empty", false, true, t0))
	if e.Node.Key != "/empty" || !e.Node.Dir {
		t.Errorf("recursive delete of empty dir: %s", evJSON(e))
	}
	// the root lists the keys in name order when sorted
	for _, k := range []string{"/z", "/m", "/a", "/m2"} {
		must(t)(s.Set(k, false, k, TTLOptions{}, t0))
	}
	e = must(t)(s.Get("/", false, true, t0))
	var keys []string
	for _, n := range e.Node.Nodes {
		keys = append(keys, n.Key)
	}
	if got := strings.Join(keys, " "); got != "/a /m /m2 /z" {
		t.Errorf("sorted root listing %q", got)
	}
	if e.Node.Key != "/" || !e.Node.Dir {
		t.Errorf("root node %+v", e.Node)
	}
}

func TestStorePathsAreCleaned(t *testing.T) {
	s := New()
	must(t)(s.Set("a//b/./c/", false, "1", TTLOptions{}, t0))
	e := must(t)(s.Get("/a/x/../b/c", false, false, t0))
	if e.Node.Key != "/a/b/c" || e.Node.Value != "1" {
		t.Errorf("get through unclean path: %s", evJSON(e))
	}
	// ".." cannot climb above the root
	e = must(t)(s.Get("/../../a/b/c", false, false, t0))
	if e.Node.Key != "/a/b/c" {
		t.Errorf("got %s", evJSON(e))
	}
}

// TestStoreErrors covers every error code the store produces, its cause
// and index, the HTTP status it maps to, and that the failed operation
// leaves the tree and the index untouched.
func TestStoreErrors(t *testing.T) {
	setup := func(t *testing.T) *Store {
		s := New("/0", "/1")
		must(t)(s.Set("/1/file", false, "v", TTLOptions{}, t0))        // 1
		must(t)(s.Set("/1/dir/child", false, "c", TTLOptions{}, t0))   // 2
		must(t)(s.Set("/1/emptydir", true, "", TTLOptions{}, t0))      // 3
		must(t)(s.Set("/1/dir/_hidden", false, "h", TTLOptions{}, t0)) // 4
		return s
	}
	const idx = 4
	none := TTLOptions{}
	cases := []struct {
		name   string
		op     func(s *Store) (*Event, *Error)
		code   int
		cause  string
		status int
	}{
		{"get missing", func(s *Store) (*Event, *Error) { return s.Get("/1/nope", false, false, t0) }, 100, "/1/nope", 404},
		{"get names first missing element", func(s *Store) (*Event, *Error) { return s.Get("/1/nope/x/y", false, false, t0) }, 100, "/1/nope", 404},
		{"get missing in dir", func(s *Store) (*Event, *Error) { return s.Get("/1/dir/nope", true, true, t0) }, 100, "/1/dir/nope", 404},
		{"update missing", func(s *Store) (*Event, *Error) { return s.Update("/1/nope/a", "x", none, t0) }, 100, "/1/nope", 404},
		{"cas missing", func(s *Store) (*Event, *Error) { return s.CompareAndSwap("/1/nope", "x", 0, "y", none, t0) }, 100, "/1/nope", 404},
		{"cad missing", func(s *Store) (*Event, *Error) { return s.CompareAndDelete("/1/nope", "x", 0, t0) }, 100, "/1/nope", 404},
		{"delete missing", func(s *Store) (*Event, *Error) { return s.Delete("/1/nope/deeper", false, false, t0) }, 100, "/1/nope", 404},
		{"refresh missing", func(s *Store) (*Event, *Error) {
			return s.Set("/1/nope", false, "", TTLOptions{ExpireTime: t0 + sec, Refresh: true}, t0)
		}, 100, "/1/nope", 404},

		{"cas value", func(s *Store) (*Event, *Error) { return s.CompareAndSwap("/1/file", "x", 0, "y", none, t0) }, 101, "[x != v]", 412},
		{"cas index", func(s *Store) (*Event, *Error) { return s.CompareAndSwap("/1/file", "", 7, "y", none, t0) }, 101, "[7 != 1]", 412},
		{"cas both", func(s *Store) (*Event, *Error) { return s.CompareAndSwap("/1/file", "x", 7, "y", none, t0) }, 101, "[x != v] [7 != 1]", 412},
		{"cas value ok index bad", func(s *Store) (*Event, *Error) { return s.CompareAndSwap("/1/file", "v", 7, "y", none, t0) }, 101, "[7 != 1]", 412},
		{"cas index ok value bad", func(s *Store) (*Event, *Error) { return s.CompareAndSwap("/1/file", "x", 1, "y", none, t0) }, 101, "[x != v]", 412},
		{"cad value", func(s *Store) (*Event, *Error) { return s.CompareAndDelete("/1/file", "x", 0, t0) }, 101, "[x != v]", 412},
		{"cad index", func(s *Store) (*Event, *Error) { return s.CompareAndDelete("/1/file", "", 9, t0) }, 101, "[9 != 1]", 412},
		{"cad both", func(s *Store) (*Event, *Error) { return s.CompareAndDelete("/1/file", "x", 9, t0) }, 101, "[x != v] [9 != 1]", 412},

		{"set file over dir", func(s *Store) (*Event, *Error) { return s.Set("/1/dir", false, "x", none, t0) }, 102, "/1/dir", 403},
		{"set dir over dir", func(s *Store) (*Event, *Error) { return s.Set("/1/emptydir", true, "", none, t0) }, 102, "/1/emptydir", 403},
		{"delete dir without dir", func(s *Store) (*Event, *Error) { return s.Delete("/1/emptydir", false, false, t0) }, 102, "/1/emptydir", 403},
		{"cas dir", func(s *Store) (*Event, *Error) { return s.CompareAndSwap("/1/dir", "x", 0, "y", none, t0) }, 102, "/1/dir", 403},
		{"cad dir", func(s *Store) (*Event, *Error) { return s.CompareAndDelete("/1/dir", "x", 0, t0) }, 102, "/1/dir", 403},
		{"update dir with value", func(s *Store) (*Event, *Error) { return s.Update("/1/dir", "x", none, t0) }, 102, "/1/dir", 403},

		{"set under file", func(s *Store) (*Event, *Error) { return s.Set("/1/file/x", false, "x", none, t0) }, 104, "/1/file", 400},
		{"set deep under file", func(s *Store) (*Event, *Error) { return s.Set("/1/file/x/y", false, "x", none, t0) }, 104, "/1/file", 400},
		{"create under file", func(s *Store) (*Event, *Error) { return s.Create("/1/file/x", false, "x", false, none, t0) }, 104, "/1/file", 400},
		{"unique under file", func(s *Store) (*Event, *Error) { return s.Create("/1/file", false, "x", true, none, t0) }, 104, "/1/file", 400},
		{"get under file", func(s *Store) (*Event, *Error) { return s.Get("/1/file/x/y", false, false, t0) }, 104, "/1/file", 400},
		{"delete under file", func(s *Store) (*Event, *Error) { return s.Delete("/1/file/x", false, false, t0) }, 104, "/1/file", 400},

		{"create existing file", func(s *Store) (*Event, *Error) { return s.Create("/1/file", false, "x", false, none, t0) }, 105, "/1/file", 412},
		{"create existing dir", func(s *Store) (*Event, *Error) { return s.Create("/1/dir", true, "", false, none, t0) }, 105, "/1/dir", 412},
		{"create existing hidden", func(s *Store) (*Event, *Error) { return s.Create("/1/dir/_hidden", false, "", false, none, t0) }, 105, "/1/dir/_hidden", 412},

		{"set root", func(s *Store) (*Event, *Error) { return s.Set("/", false, "x", none, t0) }, 107, "/", 400},
		{"set namespace", func(s *Store) (*Event, *Error) { return s.Set("/1", true, "", none, t0) }, 107, "/", 400},
		{"create namespace", func(s *Store) (*Event, *Error) { return s.Create("/0", false, "x", false, none, t0) }, 107, "/", 400},
		{"update root", func(s *Store) (*Event, *Error) { return s.Update("/", "", TTLOptions{ExpireTime: t0 + sec}, t0) }, 107, "/", 400},
		{"update namespace", func(s *Store) (*Event, *Error) { return s.Update("/1/", "", none, t0) }, 107, "/", 400},
		{"cas namespace", func(s *Store) (*Event, *Error) { return s.CompareAndSwap("/1", "x", 0, "y", none, t0) }, 107, "/", 400},
		{"delete root", func(s *Store) (*Event, *Error) { return s.Delete("/", true, true, t0) }, 107, "/", 400},
		{"delete namespace", func(s *Store) (*Event, *Error) { return s.Delete("/1", true, true, t0) }, 107, "/", 400},

		{"delete non-empty dir", func(s *Store) (*Event, *Error) { return s.Delete("/1/dir", true, false, t0) }, 108, "/1/dir", 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := setup(t)
			before := dump(t, s)
			e, err := tc.op(s)
			if err == nil {
				t.Fatalf("no error; event %s", evJSON(e))
			}
			if e != nil {
				t.Errorf("event %s returned with an error", evJSON(e))
			}
			if err.Code != tc.code || err.Cause != tc.cause || err.Index != idx {
				t.Errorf("error {%d %q %d}, want {%d %q %d}", err.Code, err.Cause, err.Index, tc.code, tc.cause, idx)
			}
			if got := err.StatusCode(); got != tc.status {
				t.Errorf("status %d, want %d", got, tc.status)
			}
			if err.Message() == "" || !strings.HasPrefix(err.Error(), err.Message()) {
				t.Errorf("message %q, Error() %q", err.Message(), err.Error())
			}
			if after := dump(t, s); after != before {
				t.Errorf("failed operation changed the store:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// TestStoreStatsCounts checks the counters a failure adds, as etcd 3.4
// counts them (checked against it: a set whose parent is a file counts one
// setsFail; a create that fails on the path counts a setsFail and a
// createFail; a set on the root counts one setsFail).
func TestStoreStatsCounts(t *testing.T) {
	type delta map[string]uint64
	cases := []struct {
		name string
		op   func(s *Store)
		want delta
	}{
		{"set ok", func(s *Store) { s.Set("/new", false, "x", TTLOptions{}, t0) }, delta{"setsSuccess": 1}},
		{"set under file", func(s *Store) { s.Set("/f/x", false, "x", TTLOptions{}, t0) }, delta{"setsFail": 1}},
		{"set over dir", func(s *Store) { s.Set("/d", false, "x", TTLOptions{}, t0) }, delta{"setsFail": 1}},
		{"set root", func(s *Store) { s.Set("/", false, "x", TTLOptions{}, t0) }, delta{"setsFail": 1}},
		{"create ok", func(s *Store) { s.Create("/new", false, "x", false, TTLOptions{}, t0) }, delta{"createSuccess": 1}},
		{"create existing", func(s *Store) { s.Create("/f", false, "x", false, TTLOptions{}, t0) }, delta{"createFail": 1}},
		{"create under file", func(s *Store) { s.Create("/f/x", false, "x", false, TTLOptions{}, t0) }, delta{"createFail": 1, "setsFail": 1}},
		{"create root", func(s *Store) { s.Create("/", false, "x", false, TTLOptions{}, t0) }, delta{"createFail": 1}},
		{"get ok", func(s *Store) { s.Get("/f", false, false, t0) }, delta{"getsSuccess": 1}},
		{"get missing", func(s *Store) { s.Get("/nope", false, false, t0) }, delta{"getsFail": 1}},
		{"update ok", func(s *Store) { s.Update("/f", "y", TTLOptions{}, t0) }, delta{"updateSuccess": 1}},
		{"update missing", func(s *Store) { s.Update("/nope", "y", TTLOptions{}, t0) }, delta{"updateFail": 1}},
		{"cas ok", func(s *Store) { s.CompareAndSwap("/f", "v", 0, "y", TTLOptions{}, t0) }, delta{"compareAndSwapSuccess": 1}},
		{"cas fail", func(s *Store) { s.CompareAndSwap("/f", "no", 0, "y", TTLOptions{}, t0) }, delta{"compareAndSwapFail": 1}},
		{"cad ok", func(s *Store) { s.CompareAndDelete("/f", "v", 0, t0) }, delta{"compareAndDeleteSuccess": 1}},
		{"cad fail", func(s *Store) { s.CompareAndDelete("/f", "no", 0, t0) }, delta{"compareAndDeleteFail": 1}},
		{"delete ok", func(s *Store) { s.Delete("/f", false, false, t0) }, delta{"deleteSuccess": 1}},
		{"delete fail", func(s *Store) { s.Delete("/d", false, false, t0) }, delta{"deleteFail": 1}},
		{"expire", func(s *Store) { s.DeleteExpiredKeys(t0 + 10*sec) }, delta{"expireCount": 1}},
		{"get fail counted outside", func(s *Store) { s.CountGetFail() }, delta{"getsFail": 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := New()
			must(t)(s.Set("/f", false, "v", TTLOptions{}, t0))
			must(t)(s.Set("/d", true, "", TTLOptions{ExpireTime: t0 + 5*sec}, t0))
			before := storeStats(t, s)
			tc.op(s)
			after := storeStats(t, s)
			for name, v := range after {
				if d := v - before[name]; d != tc.want[name] {
					t.Errorf("%s went up by %d, want %d", name, d, tc.want[name])
				}
			}
		})
	}
}

func TestStoreHiddenNodes(t *testing.T) {
	s := New()
	must(t)(s.Set("/h/_hid", false, "1", TTLOptions{}, t0))    // 1
	must(t)(s.Set("/h/vis", false, "2", TTLOptions{}, t0))     // 2
	must(t)(s.Set("/h/_hdir/x", false, "3", TTLOptions{}, t0)) // 3
	must(t)(s.Set("/h/sub/_deep", false, "4", TTLOptions{}, t0))
	for _, recursive := range []bool{false, true} {
		e := must(t)(s.Get("/h", recursive, true, t0))
		var keys []string
		var walk func(ns []*NodeExtern)
		walk = func(ns []*NodeExtern) {
			for _, n := range ns {
				keys = append(keys, n.Key)
				walk(n.Nodes)
			}
		}
		walk(e.Node.Nodes)
		if got := strings.Join(keys, " "); got != "/h/sub /h/vis" {
			t.Errorf("recursive=%v listing %q, want hidden nodes left out", recursive, got)
		}
	}
	// hidden nodes are reachable by name, and a hidden dir lists its children
	e := must(t)(s.Get("/h/_hid", false, false, t0))
	wantJSON(t, "get hidden", e, `{"action":"get","node":{"key":"/h/_hid","value":"1","modifiedIndex":1,"createdIndex":1}}`)
	e = must(t)(s.Get("/h/_hdir", true, false, t0))
	wantJSON(t, "get hidden dir", e,
		`{"action":"get","node":{"key":"/h/_hdir","dir":true,"nodes":[{"key":"/h/_hdir/x","value":"3","modifiedIndex":3,"createdIndex":3}],"modifiedIndex":3,"createdIndex":3}}`)
	// names with an underscore that is not the first character are visible
	must(t)(s.Set("/h/a_b", false, "5", TTLOptions{}, t0))
	e = must(t)(s.Get("/h", false, true, t0))
	if len(e.Node.Nodes) != 3 || e.Node.Nodes[0].Key != "/h/a_b" {
		t.Errorf("listing %s", evJSON(e))
	}
}

func TestStoreInOrderKeys(t *testing.T) {
	s := New()
	must(t)(s.Set("/other", false, "x", TTLOptions{}, t0)) // 1
	var names []string
	for i := 0; i < 12; i++ {
		e := must(t)(s.Create("/q", false, fmt.Sprint(i), true, TTLOptions{}, t0))
		want := fmt.Sprintf("/q/%020d", i+2)
		if e.Node.Key != want || e.Action != ActionCreate || e.Node.CreatedIndex != uint64(i+2) || !e.IsCreated() {
			t.Fatalf("create %d: %s, want key %s", i, evJSON(e), want)
		}
		names = append(names, e.Node.Key)
	}
	e := must(t)(s.Get("/q", false, true, t0))
	if len(e.Node.Nodes) != 12 {
		t.Fatalf("listing has %d nodes", len(e.Node.Nodes))
	}
	for i, n := range e.Node.Nodes {
		if n.Key != names[i] || n.Value != fmt.Sprint(i) {
			t.Errorf("sorted item %d: %s=%s, want %s=%d", i, n.Key, n.Value, names[i], i)
		}
	}
	// the queue dir was made by the first create, with its index
	if e.Node.CreatedIndex != 2 {
		t.Errorf("queue dir createdIndex %d, want 2", e.Node.CreatedIndex)
	}
	// an in-order directory, and one at the root
	e = must(t)(s.Create("/q", true, "", true, TTLOptions{}, t0))
	if e.Node.Key != fmt.Sprintf("/q/%020d", 14) || !e.Node.Dir {
		t.Errorf("unique dir: %s", evJSON(e))
	}
	e = must(t)(s.Create("/", false, "r", true, TTLOptions{}, t0))
	if e.Node.Key != fmt.Sprintf("/%020d", 15) {
		t.Errorf("unique at root: %s", evJSON(e))
	}
}

func TestStoreTTL(t *testing.T) {
	s := New()
	exp := t0 + 5*sec
	e := must(t)(s.Set("/k", false, "v", TTLOptions{ExpireTime: exp}, t0))
	wantJSON(t, "set with ttl", e,
		`{"action":"set","node":{"key":"/k","value":"v","expiration":"`+rfc(exp)+`","ttl":5,"modifiedIndex":1,"createdIndex":1}}`)
	if s.NextExpiration() != exp {
		t.Errorf("NextExpiration %d, want %d", s.NextExpiration(), exp)
	}
	// the TTL shown is the time left, in seconds rounded up
	for _, tc := range []struct {
		now int64
		ttl int64
	}{
		{t0, 5}, {t0 + 1, 5}, {t0 + sec/2, 5}, {t0 + sec - 1, 5}, {t0 + sec, 4},
		{t0 + sec + 1, 4}, {t0 + 4*sec, 1}, {t0 + 4*sec + 1, 1}, {exp - 1, 1}, {exp, 0},
	} {
		e := must(t)(s.Get("/k", false, false, tc.now))
		if e.Node.TTL != tc.ttl || e.Node.Expiration != exp {
			t.Errorf("at +%v: ttl %d expiration %d, want ttl %d", time.Duration(tc.now-t0), e.Node.TTL, e.Node.Expiration, tc.ttl)
		}
	}
	// nothing expires before its time
	if evs := s.DeleteExpiredKeys(exp - 1); len(evs) != 0 {
		t.Fatalf("expired early: %d events", len(evs))
	}
	if s.Index() != 1 {
		t.Fatalf("index moved to %d without an expiry", s.Index())
	}
	// at its time exactly it does
	evs := s.DeleteExpiredKeys(exp)
	if len(evs) != 1 {
		t.Fatalf("%d expire events, want 1", len(evs))
	}
	wantJSON(t, "expire event", evs[0],
		`{"action":"expire","node":{"key":"/k","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","expiration":"`+rfc(exp)+`","modifiedIndex":1,"createdIndex":1}}`)
	if evs[0].EtcdIndex != 2 || s.Index() != 2 {
		t.Errorf("expire EtcdIndex %d, store index %d", evs[0].EtcdIndex, s.Index())
	}
	if _, err := s.Get("/k", false, false, exp); err == nil || err.Code != EcodeKeyNotFound {
		t.Errorf("expired key still there: %v", err)
	}
	if s.NextExpiration() != 0 {
		t.Errorf("NextExpiration %d after everything expired", s.NextExpiration())
	}
}

func TestStoreTTLRoundsUpPartialSeconds(t *testing.T) {
	s := New()
	e := must(t)(s.Set("/k", false, "v", TTLOptions{ExpireTime: t0 + 2500*int64(time.Millisecond)}, t0))
	if e.Node.TTL != 3 {
		t.Errorf("2.5 s left shows ttl %d, want 3", e.Node.TTL)
	}
	e = must(t)(s.Set("/k1", false, "v", TTLOptions{ExpireTime: t0 + 1}, t0))
	if e.Node.TTL != 1 {
		t.Errorf("1 ns left shows ttl %d, want 1", e.Node.TTL)
	}
}

func TestStoreExpireOrderAndIndexes(t *testing.T) {
	s := New()
	must(t)(s.Set("/b", false, "b", TTLOptions{ExpireTime: t0 + 2*sec}, t0)) // 1
	must(t)(s.Set("/a", false, "a", TTLOptions{ExpireTime: t0 + 2*sec}, t0)) // 2
	must(t)(s.Set("/c", false, "c", TTLOptions{ExpireTime: t0 + 1*sec}, t0)) // 3
	must(t)(s.Set("/late", false, "l", TTLOptions{ExpireTime: t0 + 9*sec}, t0))
	must(t)(s.Set("/perm", false, "p", TTLOptions{}, t0))
	// an expiration before 2000 is no expiration (etcd's minExpireTime)
	must(t)(s.Set("/ancient", false, "x", TTLOptions{ExpireTime: 1}, t0))
	e := must(t)(s.Get("/ancient", false, false, t0))
	if e.Node.Expiration != 0 || e.Node.TTL != 0 {
		t.Errorf("expiration before 2000 kept: %s", evJSON(e))
	}
	evs := s.DeleteExpiredKeys(t0 + 3*sec)
	var got []string
	for _, e := range evs {
		got = append(got, fmt.Sprintf("%s@%d/%d", e.Node.Key, e.Node.ModifiedIndex, e.EtcdIndex))
	}
	if strings.Join(got, " ") != "/c@7/7 /a@8/8 /b@9/9" {
		t.Errorf("expire events %v: want earliest first, ties by key, one index each", got)
	}
	if s.NextExpiration() != t0+9*sec {
		t.Errorf("NextExpiration %d", s.NextExpiration())
	}
	e = must(t)(s.Get("/", false, true, t0+3*sec))
	if len(e.Node.Nodes) != 3 {
		t.Errorf("left: %s", evJSON(e))
	}
	if evs := s.DeleteExpiredKeys(math.MaxInt64); len(evs) != 1 || evs[0].Node.Key != "/late" {
		t.Errorf("final sweep: %d events", len(evs))
	}
}

// TestStoreTTLChanges covers removing a TTL with an update that carries no
// expiration, moving a TTL later and earlier, and CAS with a TTL.
func TestStoreTTLChanges(t *testing.T) {
	s := New()
	must(t)(s.Set("/k", false, "v", TTLOptions{ExpireTime: t0 + 5*sec}, t0))
	e := must(t)(s.Update("/k", "v2", TTLOptions{ExpireTime: 0}, t0+sec))
	wantJSON(t, "update removing ttl", e,
		`{"action":"update","node":{"key":"/k","value":"v2","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","expiration":"`+rfc(t0+5*sec)+`","ttl":4,"modifiedIndex":1,"createdIndex":1}}`)
	if s.NextExpiration() != 0 {
		t.Errorf("TTL still scheduled: %d", s.NextExpiration())
	}
	if evs := s.DeleteExpiredKeys(t0 + 100*sec); len(evs) != 0 {
		t.Errorf("permanent key expired: %s", evJSON(evs[0]))
	}

	// several keys; move one earlier and one later
	must(t)(s.Set("/x", false, "x", TTLOptions{ExpireTime: t0 + 10*sec}, t0))
	must(t)(s.Set("/y", false, "y", TTLOptions{ExpireTime: t0 + 20*sec}, t0))
	must(t)(s.Set("/z", false, "z", TTLOptions{ExpireTime: t0 + 30*sec}, t0))
	must(t)(s.Update("/z", "z", TTLOptions{ExpireTime: t0 + 5*sec}, t0))
	must(t)(s.CompareAndSwap("/x", "x", 0, "x2", TTLOptions{ExpireTime: t0 + 40*sec}, t0))
	if s.NextExpiration() != t0+5*sec {
		t.Fatalf("NextExpiration %v", time.Duration(s.NextExpiration()-t0))
	}
	var got []string
	for _, e := range s.DeleteExpiredKeys(t0 + 25*sec) {
		got = append(got, e.Node.Key)
	}
	if strings.Join(got, " ") != "/z /y" {
		t.Errorf("expired %v, want /z /y", got)
	}
	// a CAS with no expiration makes /x permanent
	must(t)(s.CompareAndSwap("/x", "", 0, "x3", TTLOptions{}, t0))
	if evs := s.DeleteExpiredKeys(t0 + 100*sec); len(evs) != 0 {
		t.Errorf("%s expired after its TTL was removed by CAS", evs[0].Node.Key)
	}
	// a key deleted before its time leaves no stale entry behind
	must(t)(s.Set("/gone", false, "g", TTLOptions{ExpireTime: t0 + 200*sec}, t0))
	must(t)(s.Delete("/gone", false, false, t0))
	if s.NextExpiration() != 0 {
		t.Errorf("deleted key still scheduled")
	}
	// a key replaced by a set without TTL as well
	must(t)(s.Set("/r", false, "g", TTLOptions{ExpireTime: t0 + 200*sec}, t0))
	must(t)(s.Set("/r", false, "h", TTLOptions{}, t0))
	if evs := s.DeleteExpiredKeys(t0 + 300*sec); len(evs) != 0 {
		t.Errorf("replaced key expired: %s", evJSON(evs[0]))
	}
	// and the other way: a set with a TTL replacing a permanent key, then
	// one moving it later
	must(t)(s.Set("/r", false, "i", TTLOptions{ExpireTime: t0 + 400*sec}, t0))
	must(t)(s.Set("/r", false, "j", TTLOptions{ExpireTime: t0 + 500*sec}, t0))
	if s.NextExpiration() != t0+500*sec {
		t.Errorf("NextExpiration %v after two sets with TTLs, want 500s", time.Duration(s.NextExpiration()-t0))
	}
	if evs := s.DeleteExpiredKeys(t0 + 450*sec); len(evs) != 0 {
		t.Errorf("key expired at its replaced TTL: %s", evJSON(evs[0]))
	}
	if evs := s.DeleteExpiredKeys(t0 + 550*sec); len(evs) != 1 || evs[0].Node.Key != "/r" {
		t.Errorf("expired %d events at 550s, want /r", len(evs))
	}
}

// TestStoreSetReplacesFileInPlace checks that a set over a file reuses its
// node (recovered from a snapshot here), and that what clients see is that
// of a new node: new createdIndex, new value, the old one as prevNode.
func TestStoreSetReplacesFileInPlace(t *testing.T) {
	s := New()
	must(t)(s.Set("/d/k", false, "old", TTLOptions{}, t0))    // 1, /d too
	must(t)(s.Set("/d/k2", false, "other", TTLOptions{}, t0)) // 2
	s = saveAndRecover(t, s)
	before := s.root.children["d"].children["k"]
	e := must(t)(s.Set("/d/k", false, "new", TTLOptions{}, t0))
	wantJSON(t, "set over a recovered file", e,
		`{"action":"set","node":{"key":"/d/k","value":"new","modifiedIndex":3,"createdIndex":3},"prevNode":{"key":"/d/k","value":"old","modifiedIndex":1,"createdIndex":1}}`)
	if after := s.root.children["d"].children["k"]; after != before {
		t.Error("the set allocated a new node instead of reusing the file's")
	}
	e = must(t)(s.Get("/d", true, true, t0))
	wantJSON(t, "get after the set", e,
		`{"action":"get","node":{"key":"/d","dir":true,"nodes":[{"key":"/d/k","value":"new","modifiedIndex":3,"createdIndex":3},{"key":"/d/k2","value":"other","modifiedIndex":2,"createdIndex":2}],"modifiedIndex":1,"createdIndex":1}}`)
	// a directory set over a file replaces the node
	e = must(t)(s.Set("/d/k", true, "", TTLOptions{}, t0))
	if !e.Node.Dir {
		t.Fatalf("set dir over a file: %s", evJSON(e))
	}
	checkTree(t, s.root)
}

// TestStoreUpdateDirTTL: a directory's TTL can be set and removed by an
// update; the event shows the new modifiedIndex but the directory keeps its
// own (as etcd 3.4 does).
func TestStoreUpdateDirTTL(t *testing.T) {
	s := New()
	must(t)(s.Set("/d", true, "", TTLOptions{ExpireTime: t0 + 100*sec}, t0)) // 1
	e := must(t)(s.Update("/d", "", TTLOptions{ExpireTime: t0 + 200*sec}, t0))
	wantJSON(t, "update dir ttl", e,
		`{"action":"update","node":{"key":"/d","dir":true,"expiration":"`+rfc(t0+200*sec)+`","ttl":200,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/d","dir":true,"expiration":"`+rfc(t0+100*sec)+`","ttl":100,"modifiedIndex":1,"createdIndex":1}}`)
	e = must(t)(s.Get("/d", false, false, t0))
	wantJSON(t, "get dir after update", e,
		`{"action":"get","node":{"key":"/d","dir":true,"expiration":"`+rfc(t0+200*sec)+`","ttl":200,"modifiedIndex":1,"createdIndex":1}}`)
	e = must(t)(s.Update("/d", "", TTLOptions{}, t0))
	if e.Node.TTL != 0 || e.Node.Expiration != 0 || s.NextExpiration() != 0 {
		t.Errorf("dir TTL not removed: %s", evJSON(e))
	}
}

// TestStoreRefresh: a refresh keeps the value, resets the TTL, is recorded
// in the history but wakes no watcher and is skipped by watches from the
// past.
func TestStoreRefresh(t *testing.T) {
	s := New()
	must(t)(s.Set("/k", false, "v", TTLOptions{ExpireTime: t0 + 10*sec}, t0)) // 1
	w, werr := s.Watch("/k", false, false, 0)
	if werr != nil {
		t.Fatal(werr)
	}
	rw, werr := s.Watch("/", true, true, 0)
	if werr != nil {
		t.Fatal(werr)
	}

	e := must(t)(s.Set("/k", false, "", TTLOptions{ExpireTime: t0 + 20*sec, Refresh: true}, t0+sec)) // 2
	wantJSON(t, "refresh by set", e,
		`{"action":"set","node":{"key":"/k","value":"v","expiration":"`+rfc(t0+20*sec)+`","ttl":19,"modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/k","value":"v","expiration":"`+rfc(t0+10*sec)+`","ttl":9,"modifiedIndex":1,"createdIndex":1}}`)
	if !e.Refresh {
		t.Error("refresh event not marked Refresh")
	}
	e = must(t)(s.Update("/k", "", TTLOptions{ExpireTime: t0 + 30*sec, Refresh: true}, t0+2*sec)) // 3
	if e.Action != ActionUpdate || e.Node.Value != "v" || e.Node.TTL != 28 || e.Node.ModifiedIndex != 3 || !e.Refresh {
		t.Errorf("refresh by update: %s", evJSON(e))
	}
	e = must(t)(s.CompareAndSwap("/k", "v", 0, "", TTLOptions{ExpireTime: t0 + 40*sec, Refresh: true}, t0+3*sec)) // 4
	if e.Action != ActionCompareAndSwap || e.Node.Value != "v" || e.Node.TTL != 37 || !e.Refresh {
		t.Errorf("refresh by cas: %s", evJSON(e))
	}
	noEvent(t, w, "one-shot watcher after refreshes")
	noEvent(t, rw, "recursive stream watcher after refreshes")
	// the refreshed TTL holds
	if evs := s.DeleteExpiredKeys(t0 + 39*sec); len(evs) != 0 {
		t.Errorf("refreshed key expired at its old time")
	}
	// a watch from the refresh's index skips the refreshes and waits
	hw, werr := s.Watch("/k", false, false, 2)
	if werr != nil {
		t.Fatal(werr)
	}
	noEvent(t, hw, "watch from a refresh index")
	// the next real write wakes everyone
	must(t)(s.Set("/k", false, "new", TTLOptions{}, t0+4*sec)) // 5
	for _, x := range []*Watcher{w, rw, hw} {
		e := recv(t, x)
		if e.Node.ModifiedIndex != 5 || e.Node.Value != "new" {
			t.Errorf("woken by %s, want the set at 5", evJSON(e))
		}
	}
}

// TestStoreDirTTLExpiry: a directory expires with everything below it in
// one event, waking the watchers on its children and on it.
func TestStoreDirTTLExpiry(t *testing.T) {
	s := New()
	must(t)(s.Set("/d", true, "", TTLOptions{ExpireTime: t0 + 5*sec}, t0))       // 1
	must(t)(s.Set("/d/x", false, "1", TTLOptions{ExpireTime: t0 + 50*sec}, t0))  // 2
	must(t)(s.Set("/d/sub/y", false, "2", TTLOptions{}, t0))                     // 3
	must(t)(s.Set("/d/sub/_h", false, "3", TTLOptions{}, t0))                    // 4
	must(t)(s.Set("/keep", false, "k", TTLOptions{ExpireTime: t0 + 60*sec}, t0)) // 5
	watch := func(p string, recursive, stream bool) *Watcher {
		w, err := s.Watch(p, recursive, stream, 0)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	wx := watch("/d/x", false, false)
	wy := watch("/d/sub/y", false, false)
	wh := watch("/d/sub/_h", false, false)
	wsub := watch("/d/sub", false, false)
	wd := watch("/d", false, false)
	wroot := watch("/", true, true)
	wkeep := watch("/keep", false, false)
	wother := watch("/dx", false, false)

	evs := s.DeleteExpiredKeys(t0 + 5*sec)
	if len(evs) != 1 {
		t.Fatalf("%d expire events, want 1 for the directory", len(evs))
	}
	want := `{"action":"expire","node":{"key":"/d","dir":true,"modifiedIndex":6,"createdIndex":1},"prevNode":{"key":"/d","dir":true,"expiration":"` + rfc(t0+5*sec) + `","modifiedIndex":1,"createdIndex":1}}`
	wantJSON(t, "dir expire", evs[0], want)
	for name, w := range map[string]*Watcher{"/d/x": wx, "/d/sub/y": wy, "/d/sub/_h": wh, "/d/sub": wsub, "/d": wd, "/ recursive": wroot} {
		e := recv(t, w)
		if got := evJSON(e); got != want {
			t.Errorf("watcher on %s got %s", name, got)
		}
	}
	noEvent(t, wroot, "recursive root watcher after one expiry")
	noEvent(t, wkeep, "watcher on a key that did not expire")
	noEvent(t, wother, "watcher on a sibling sharing the name prefix")
	if _, err := s.Get("/d/sub/y", false, false, t0); err == nil {
		t.Error("child of an expired dir still there")
	}
	// the child's own TTL went with it
	if next := s.NextExpiration(); next != t0+60*sec {
		t.Errorf("NextExpiration %v, want only /keep left", time.Duration(next-t0))
	}
	if evs := s.DeleteExpiredKeys(t0 + 59*sec); len(evs) != 0 {
		t.Errorf("expired child came back: %s", evJSON(evs[0]))
	}
}

func TestStoreSaveRecover(t *testing.T) {
	s := New("/0", "/1")
	must(t)(s.Set("/0/members/abc/attributes", false, `{"name":"x"}`, TTLOptions{}, t0))
	must(t)(s.Set("/1/a/b/c", false, "1", TTLOptions{}, t0))
	must(t)(s.Set("/1/a/_hidden", false, "h", TTLOptions{}, t0))
	must(t)(s.Set("/1/ttl", false, "t", TTLOptions{ExpireTime: t0 + 10*sec}, t0))
	must(t)(s.Set("/1/tdir", true, "", TTLOptions{ExpireTime: t0 + 20*sec}, t0))
	must(t)(s.Set("/1/tdir/in", false, "i", TTLOptions{}, t0))
	must(t)(s.Set("/1/empty", true, "", TTLOptions{}, t0))
	must(t)(s.Set("/1/val", false, "", TTLOptions{}, t0))
	must(t)(s.Update("/1/a/b/c", "2", TTLOptions{}, t0))
	must(t)(s.Create("/1/q", false, "x\x00y\xff", true, TTLOptions{}, t0))
	must(t)(s.Set("/1/gone", false, "g", TTLOptions{}, t0))
	must(t)(s.Delete("/1/gone", false, false, t0))
	s.Get("/1/nope", false, false, t0) // a counted failure

	data, err := s.Save()
	if err != nil {
		t.Fatal(err)
	}
	r := New()
	watcher, werr := r.Watch("/1/after", false, false, 0)
	if werr != nil {
		t.Fatal(werr)
	}
	if err := r.Recover(data); err != nil {
		t.Fatal(err)
	}
	if r.Index() != s.Index() {
		t.Errorf("index %d after recover, want %d", r.Index(), s.Index())
	}
	a, b := storeStats(t, r), storeStats(t, s)
	delete(a, "watchers")
	delete(b, "watchers")
	if !reflect.DeepEqual(a, b) || b["getsFail"] == 0 {
		t.Errorf("stats not restored:\n got %v\nwant %v", a, b)
	}
	if got, want := dump(t, r), dump(t, s); got != want {
		t.Errorf("tree differs after recover:\n got %s\nwant %s", got, want)
	}
	for _, p := range []string{"/1/a/_hidden", "/1/a", "/1/tdir", "/1/val"} {
		a, _ := r.Get(p, true, true, t0+sec)
		b, _ := s.Get(p, true, true, t0+sec)
		if evJSON(a) != evJSON(b) {
			t.Errorf("%s: got %s, want %s", p, evJSON(a), evJSON(b))
		}
	}
	// the namespaces stay read-only
	if _, err := r.Set("/1", true, "", TTLOptions{}, t0); err == nil || err.Code != EcodeRootROnly {
		t.Errorf("set /1 after recover: %v", err)
	}
	// TTLs still run out, in the same way as on the original
	if r.NextExpiration() != t0+10*sec {
		t.Errorf("NextExpiration %d after recover", r.NextExpiration())
	}
	got, want := r.DeleteExpiredKeys(t0+30*sec), s.DeleteExpiredKeys(t0+30*sec)
	if len(got) != 2 || len(got) != len(want) {
		t.Fatalf("%d expirations after recover, %d on the original, want 2", len(got), len(want))
	}
	for i := range got {
		if evJSON(got[i]) != evJSON(want[i]) {
			t.Errorf("expiry %d: got %s, want %s", i, evJSON(got[i]), evJSON(want[i]))
		}
	}
	if _, err := r.Get("/1/tdir/in", false, false, t0); err == nil {
		t.Error("child of an expired dir survived recover + expiry")
	}
	// writes go on from the recovered index, and watchers kept work
	e := must(t)(r.Set("/1/after", false, "a", TTLOptions{}, t0))
	if e.Node.CreatedIndex != s.Index()+1 {
		t.Errorf("first write after recover at %d, want %d", e.Node.CreatedIndex, s.Index()+1)
	}
	if e := recv(t, watcher); e.Node.Key != "/1/after" {
		t.Errorf("watcher kept across recover got %s", evJSON(e))
	}
	// a second round trip of the recovered store gives the same tree
	r2 := saveAndRecover(t, r)
	if a, b := dump(t, r2), dump(t, r); a != b {
		t.Errorf("second round trip differs:\n got %s\nwant %s", a, b)
	}
}

func TestStoreRecoverRejectsGarbage(t *testing.T) {
	s := New("/1")
	must(t)(s.Set("/1/k", false, "v", TTLOptions{}, t0))
	before := dump(t, s)
	good, err := s.Save()
	if err != nil {
		t.Fatal(err)
	}
	inputs := [][]byte{nil, {}, []byte("not gob"), good[:len(good)/2], good[:len(good)-1]}
	for i, in := range inputs {
		if err := s.Recover(in); err == nil {
			t.Errorf("input %d (%d bytes): no error", i, len(in))
		}
		if after := dump(t, s); after != before {
			t.Errorf("input %d: failed recover changed the store: %s", i, after)
		}
	}
}

func sampleRequests() []Request {
	return []Request{
		{},
		{ID: 1, Method: MethodPut, Path: "/1/k", Value: "v", Time: t0},
		{ID: math.MaxUint64, Method: MethodPut, Path: "/1/k", Value: "v", PrevValue: "p", PrevIndex: math.MaxUint64,
			PrevExist: PrevExistTrue, Dir: true, Recursive: true, Refresh: true, Expiration: math.MaxInt64, Time: math.MinInt64},
		{ID: 300, Method: MethodDelete, Path: "/1/d", PrevExist: PrevExistFalse, Recursive: true, Expiration: -1, Time: -300},
		{Method: MethodPost, Path: "/1/q", Value: strings.Repeat("long value ", 200), Dir: true},
		{Method: MethodExpire, Time: t0},
		{Method: 'Z', Path: "\x00\xff binary \u2028", Value: "\x00", PrevValue: "\xff\xfe"},
	}
}

func TestRequestBinaryRoundTrip(t *testing.T) {
	for i, r := range sampleRequests() {
		b := r.AppendBinary(nil)
		if len(b) != r.binarySize() {
			t.Errorf("request %d: encoding of %d bytes, binarySize %d", i, len(b), r.binarySize())
		}
		// a buffer of exactly that capacity is written in place
		if exact := make([]byte, 0, r.binarySize()); &r.AppendBinary(exact)[:1][0] != &exact[:1][0] {
			t.Errorf("request %d: AppendBinary grew a buffer of binarySize", i)
		}
		var got Request
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("request %d:\n got %+v\nwant %+v", i, got, r)
		}
		// appending keeps what was there
		prefix := []byte("prefix")
		b2 := r.AppendBinary(prefix)
		if !bytes.Equal(b2[:6], []byte("prefix")) || !bytes.Equal(b2[6:], b) {
			t.Errorf("request %d: AppendBinary does not append", i)
		}
		// every truncation is an error, never a panic or a wrong request
		for n := 0; n < len(b); n++ {
			var x Request
			if err := x.UnmarshalBinary(b[:n:n]); err == nil {
				t.Errorf("request %d truncated to %d of %d bytes decoded as %+v", i, n, len(b), x)
			}
		}
		// so is trailing garbage
		var x Request
		if err := x.UnmarshalBinary(append(append([]byte{}, b...), 0)); err == nil {
			t.Errorf("request %d with a trailing byte decoded", i)
		}
	}
}

func TestRequestUnmarshalHostileInput(t *testing.T) {
	cases := [][]byte{
		{'P', 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},                     // varint overflow
		append([]byte{'P', 0, 0, 0, 0, 0, 0}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f),       // length 2^63-1
		append([]byte{'P', 0, 0, 0, 0, 0, 0}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), // length 2^64-1
		{'P', 0, 0, 0, 0, 0, 0, 5, 'a'},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		b := make([]byte, rng.IntN(40))
		for j := range b {
			b[j] = byte(rng.UintN(256))
		}
		cases = append(cases, b)
	}
	for i, b := range cases {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("input %d %x: panic %v", i, b, p)
				}
			}()
			var r Request
			if err := r.UnmarshalBinary(b); err == nil {
				// whatever decodes must encode and decode to the same request
				var again Request
				if err := again.UnmarshalBinary(r.AppendBinary(nil)); err != nil || !reflect.DeepEqual(again, r) {
					t.Errorf("input %x: re-encoding gives %+v, %v", b, again, err)
				}
			}
		}()
	}
	if err := (&Request{}).UnmarshalBinary(cases[0]); err == nil {
		t.Error("overflowing varint accepted")
	}
	for _, b := range cases[1:4] {
		if err := (&Request{}).UnmarshalBinary(b); err == nil {
			t.Errorf("impossible length %x accepted", b)
		}
	}
}

func FuzzRequestUnmarshalBinary(f *testing.F) {
	for _, r := range sampleRequests() {
		f.Add(r.AppendBinary(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Request
		if r.UnmarshalBinary(b) != nil {
			return
		}
		var again Request
		if err := again.UnmarshalBinary(r.AppendBinary(nil)); err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("re-encoding %+v gives %+v, %v", r, again, err)
		}
	})
}

// TestApplyDispatch checks which store operation each request becomes.
func TestApplyDispatch(t *testing.T) {
	setup := func(t *testing.T) *Store {
		s := New("/0", "/1")
		must(t)(s.Set("/1/k", false, "v", TTLOptions{}, t0))      // 1
		must(t)(s.Set("/1/d", true, "", TTLOptions{}, t0))        // 2
		must(t)(s.Set("/1/full/x", false, "x", TTLOptions{}, t0)) // 3
		return s
	}
	exp := t0 + 7*sec
	cases := []struct {
		name string
		req  Request
		want string // action and node, or the error code
	}{
		{"put new", Request{Method: MethodPut, Path: "/1/n", Value: "a"}, `set /1/n=a created`},
		{"put existing", Request{Method: MethodPut, Path: "/1/k", Value: "a"}, `set /1/k=a prev=v`},
		{"put dir", Request{Method: MethodPut, Path: "/1/nd", Dir: true}, `set /1/nd/ created`},
		{"put with ttl", Request{Method: MethodPut, Path: "/1/k", Value: "a", Expiration: exp, Time: t0}, `set /1/k=a prev=v ttl=7`},
		{"put prevExist true", Request{Method: MethodPut, Path: "/1/k", Value: "a", PrevExist: PrevExistTrue}, `update /1/k=a prev=v`},
		{"put prevExist true missing", Request{Method: MethodPut, Path: "/1/n", Value: "a", PrevExist: PrevExistTrue}, `error 100`},
		{"put prevExist false", Request{Method: MethodPut, Path: "/1/n", Value: "a", PrevExist: PrevExistFalse}, `create /1/n=a created`},
		{"put prevExist false dir", Request{Method: MethodPut, Path: "/1/nd", Dir: true, PrevExist: PrevExistFalse}, `create /1/nd/ created`},
		{"put prevExist false existing", Request{Method: MethodPut, Path: "/1/k", Value: "a", PrevExist: PrevExistFalse}, `error 105`},
		{"put prevValue", Request{Method: MethodPut, Path: "/1/k", Value: "a", PrevValue: "v"}, `compareAndSwap /1/k=a prev=v`},
		{"put prevValue wrong", Request{Method: MethodPut, Path: "/1/k", Value: "a", PrevValue: "w"}, `error 101`},
		{"put prevIndex", Request{Method: MethodPut, Path: "/1/k", Value: "a", PrevIndex: 1}, `compareAndSwap /1/k=a prev=v`},
		{"put prevIndex wrong", Request{Method: MethodPut, Path: "/1/k", Value: "a", PrevIndex: 2}, `error 101`},
		{"put prevExist true and prevValue", Request{Method: MethodPut, Path: "/1/k", Value: "a", PrevExist: PrevExistTrue, PrevValue: "v"}, `compareAndSwap /1/k=a prev=v`},
		{"put prevExist true and prevIndex wrong", Request{Method: MethodPut, Path: "/1/k", Value: "a", PrevExist: PrevExistTrue, PrevIndex: 9}, `error 101`},
		{"put refresh", Request{Method: MethodPut, Path: "/1/k", Refresh: true, Expiration: exp, Time: t0}, `set /1/k=v prev=v ttl=7 refresh`},
		{"put refresh update", Request{Method: MethodPut, Path: "/1/k", Refresh: true, PrevExist: PrevExistTrue, Expiration: exp, Time: t0}, `update /1/k=v prev=v ttl=7 refresh`},
		{"put refresh cas", Request{Method: MethodPut, Path: "/1/k", Refresh: true, PrevValue: "v", Expiration: exp, Time: t0}, `compareAndSwap /1/k=v prev=v ttl=7 refresh`},
		{"put on namespace", Request{Method: MethodPut, Path: "/1", Value: "a"}, `error 107`},
		{"post", Request{Method: MethodPost, Path: "/1/q", Value: "a"}, `create /1/q/00000000000000000004=a created`},
		{"post dir", Request{Method: MethodPost, Path: "/1/q", Dir: true}, `create /1/q/00000000000000000004/ created`},
		{"post under file", Request{Method: MethodPost, Path: "/1/k", Value: "a"}, `error 104`},
		{"delete", Request{Method: MethodDelete, Path: "/1/k"}, `delete /1/k prev=v`},
		{"delete missing", Request{Method: MethodDelete, Path: "/1/n"}, `error 100`},
		{"delete dir without dir", Request{Method: MethodDelete, Path: "/1/d"}, `error 102`},
		{"delete dir", Request{Method: MethodDelete, Path: "/1/d", Dir: true}, `delete /1/d/ prev=/`},
		{"delete full dir", Request{Method: MethodDelete, Path: "/1/full", Dir: true}, `error 108`},
		{"delete recursive", Request{Method: MethodDelete, Path: "/1/full", Recursive: true}, `delete /1/full/ prev=/`},
		{"delete prevValue", Request{Method: MethodDelete, Path: "/1/k", PrevValue: "v"}, `compareAndDelete /1/k prev=v`},
		{"delete prevIndex", Request{Method: MethodDelete, Path: "/1/k", PrevIndex: 1}, `compareAndDelete /1/k prev=v`},
		{"delete prevValue wrong", Request{Method: MethodDelete, Path: "/1/k", PrevValue: "w"}, `error 101`},
		{"delete prevIndex on dir", Request{Method: MethodDelete, Path: "/1/d", PrevIndex: 2, Dir: true}, `error 102`},
		{"expire nothing", Request{Method: MethodExpire, Time: t0}, `nil`},
		{"unknown method", Request{Method: 'Q', Path: "/1/k"}, `error 300`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := setup(t)
			before := dump(t, s)
			r := tc.req
			e, err := s.Apply(&r)
			var got string
			switch {
			case err != nil:
				got = fmt.Sprintf("error %d", err.Code)
				if e != nil {
					t.Errorf("event %s with error", evJSON(e))
				}
				if after := dump(t, s); after != before {
					t.Errorf("failed request changed the store: %s", after)
				}
			case e == nil:
				got = "nil"
			default:
				got = describe(e)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// describe is an event in short: action key[=value | /] [prev=...] [ttl=N] [refresh] [created].
func describe(e *Event) string {
	var b strings.Builder
	b.WriteString(e.Action + " " + e.Node.Key)
	if e.Node.Dir {
		b.WriteString("/")
	} else if e.Node.HasValue {
		b.WriteString("=" + e.Node.Value)
	}
	if e.PrevNode != nil {
		if e.PrevNode.Dir {
			b.WriteString(" prev=/")
		} else {
			b.WriteString(" prev=" + e.PrevNode.Value)
		}
	}
	if e.Node.TTL != 0 {
		fmt.Fprintf(&b, " ttl=%d", e.Node.TTL)
	}
	if e.Refresh {
		b.WriteString(" refresh")
	}
	if e.IsCreated() {
		b.WriteString(" created")
	}
	return b.String()
}

func TestApplyExpire(t *testing.T) {
	s := New("/1")
	for i, k := range []string{"/1/a", "/1/b", "/1/c"} {
		must(t)(s.Set(k, false, "v", TTLOptions{ExpireTime: t0 + int64(i+1)*sec}, t0))
	}
	e, err := s.Apply(&Request{Method: MethodExpire, Time: t0 + 2*sec})
	if err != nil || e == nil {
		t.Fatalf("expire: %v %v", e, err)
	}
	if e.Action != ActionExpire || e.Node.Key != "/1/b" || e.EtcdIndex != 5 {
		t.Errorf("expire sweep returned %s, want the last expiry (/1/b at 5)", evJSON(e))
	}
	if _, gerr := s.Get("/1/a", false, false, t0); gerr == nil {
		t.Error("/1/a not expired")
	}
	if _, gerr := s.Get("/1/c", false, false, t0); gerr != nil {
		t.Error("/1/c expired early")
	}
	// the request's time is the write's now
	e, err = s.Apply(&Request{Method: MethodPut, Path: "/1/t", Value: "x", Expiration: t0 + 100*sec, Time: t0 + 90*sec})
	if err != nil || e.Node.TTL != 10 {
		t.Errorf("ttl computed against the request time: %s %v", evJSON(e), err)
	}
}

func BenchmarkStoreSet(b *testing.B) {
	s := New("/0", "/1")
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("/1/bench/dir%d/key%d", i%16, i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Set(keys[i%len(keys)], false, "some value", TTLOptions{}, t0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkStoreGet(b *testing.B) {
	s := New("/0", "/1")
	for i := 0; i < 1024; i++ {
		if _, err := s.Set(fmt.Sprintf("/1/bench/dir%d/key%d", i%16, i), false, "some value", TTLOptions{}, t0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get("/1/bench/dir3/key515", false, false, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreSaveRecover saves and recovers a store of 100,000 keys.
func BenchmarkStoreSaveRecover(b *testing.B) {
	s := New("/0", "/1")
	for i := 0; i < 100000; i++ {
		s.Set(fmt.Sprintf("/1/d%d/k%d", i%100, i), false, "01234567890123456789012345678901234567890123456789012345678901234", TTLOptions{}, 0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		saveAndRecover(b, s)
	}
}

// TestRecoverKeepsHistoryAndRefusesOtherFormats checks that a recovered
// store answers watches from before the snapshot and that a snapshot of
// another format is refused rather than read as an empty store.
func TestRecoverKeepsHistoryAndRefusesOtherFormats(t *testing.T) {
	s := New("/0", "/1")
	for i := 0; i < 5; i++ {
		if _, err := s.Set("/1/h", false, fmt.Sprint(i), TTLOptions{}, 0); err != nil {
			t.Fatal(err)
		}
	}
	r := saveAndRecover(t, s)
	w, werr := r.Watch("/1/h", false, false, 2)
	if werr != nil {
		t.Fatalf("watch from index 2 after recovery: %v", werr)
	}
	select {
	case ev := <-w.EventChan():
		if ev.Node.ModifiedIndex != 2 || ev.Node.Value != "1" {
			t.Fatalf("got %+v, want the set at index 2", ev.Node)
		}
	default:
		t.Fatal("watch from the past not answered after recovery")
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&snapHeader{Format: snapFormat - 1, Index: 9}); err != nil {
		t.Fatal(err)
	}
	if err := New().Recover(buf.Bytes()); err == nil {
		t.Fatal("a snapshot of another format was accepted")
	}
}

// TestStoreRecoverRejectsDamage round-trips a store of many nodes (nested
// directories, TTLs) and checks that the snapshot cut anywhere, or with a
// byte changed in its node records, fails or recovers a well-formed tree,
// and that a failed recover leaves the store as it was.
func TestStoreRecoverRejectsDamage(t *testing.T) {
	s := New("/1")
	for i := 0; i < 3000; i++ {
		ttl := TTLOptions{}
		if i%5 == 0 {
			ttl.ExpireTime = t0 + int64(i)*1e9
		}
		must(t)(s.Set(fmt.Sprintf("/1/d%d/e%d/k%d", i%7, i%3, i), false, fmt.Sprint(i), ttl, t0))
	}
	r := saveAndRecover(t, s)
	if got, want := dump(t, r), dump(t, s); got != want {
		t.Fatal("tree differs after a round trip")
	}
	data, err := s.Save()
	if err != nil {
		t.Fatal(err)
	}
	if r.ttls.top() == nil || len(r.ttls.nodes) != len(s.ttls.nodes) {
		t.Fatalf("%d nodes with a TTL after recovery, want %d", len(r.ttls.nodes), len(s.ttls.nodes))
	}
	before := dump(t, r)
	goroutines := runtime.NumGoroutine()
	for cut := len(data) - 1; cut > 0; cut -= 1 + cut/50 {
		if err := r.Recover(data[:cut]); err == nil {
			t.Errorf("snapshot cut at %d of %d bytes: no error", cut, len(data))
		}
	}
	if err := r.Recover(append(data[:len(data):len(data)], 0)); err == nil {
		t.Error("a byte after the last node: no error")
	}
	if dump(t, r) != before {
		t.Error("a failed recover changed the store")
	}
	// the decoding goroutines of the failed recovers are gone
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > goroutines {
		t.Errorf("%d goroutines after failed recovers, %d before", g, goroutines)
	}
	// a changed byte is caught by the snapshot file's checksum; here it
	// must give an error or some tree, never a panic or a tree with a
	// node out of place
	for i := len(data) - 1; i > len(data)-5000; i -= 7 {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x5a
		q := New()
		if q.Recover(bad) == nil {
			checkTree(t, q.root)
		}
	}
}

// FuzzStoreRecoverNodes feeds Recover arbitrary node records after a
// valid header: it must fail or give a well-formed tree that survives
// another round trip unchanged, never panic or hang.
func FuzzStoreRecoverNodes(f *testing.F) {
	s := New("/1")
	must(f)(s.Set("/1/a", false, "v", TTLOptions{}, t0))
	must(f)(s.Set("/1/d/e/f", false, "", TTLOptions{ExpireTime: t0 + 5e9}, t0))
	must(f)(s.Set("/1/d/g", true, "", TTLOptions{}, t0))
	data, err := s.Save()
	if err != nil {
		f.Fatal(err)
	}
	in := bytes.NewReader(data)
	if err := gob.NewDecoder(in).Decode(new(snapHeader)); err != nil {
		f.Fatal(err)
	}
	header := data[:len(data)-in.Len()]
	f.Add(data[len(header):])
	f.Add(data[len(header) : len(data)-1])
	f.Fuzz(func(t *testing.T, nodes []byte) {
		r := New()
		if r.Recover(append(header[:len(header):len(header)], nodes...)) != nil {
			return
		}
		checkTree(t, r.root)
		if a, b := dump(t, saveAndRecover(t, r)), dump(t, r); a != b {
			t.Fatalf("second round trip differs:\n got %s\nwant %s", a, b)
		}
	})
}

// checkTree fails t unless every node under n is its parent's child under
// its own name and has a path that continues its parent's.
func checkTree(t *testing.T, n *node) {
	t.Helper()
	for name, c := range n.children {
		if c.parent != n || c.name() != name || path.Dir(c.path) != n.path {
			t.Fatalf("node %q (name %q) out of place under %q", c.path, name, n.path)
		}
		checkTree(t, c)
	}
}

// flatStore returns a store of 1,000,000 keys of 64 bytes in one
// directory, as restart-bench.sh writes them.
func flatStore() *Store {
	s := New("/0", "/1")
	v := strings.Repeat("x", 64)
	for i := 0; i < 1000000; i++ {
		s.Set(fmt.Sprintf("/1/k%d", i), false, v, TTLOptions{}, 0)
	}
	return s
}

// BenchmarkStoreSaveFlat encodes flatStore: the raft loop waits this long
// for each snapshot of such a store but the first (which sizes its buffer
// as it goes).
func BenchmarkStoreSaveFlat(b *testing.B) {
	s := flatStore()
	if _, err := s.Save(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Save(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreRecoverFlat recovers flatStore.
func BenchmarkStoreRecoverFlat(b *testing.B) {
	data, err := flatStore().Save()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := New().Recover(data); err != nil {
			b.Fatal(err)
		}
	}
}

// saveAndRecover returns a new store recovered from a snapshot of s.
func saveAndRecover(t testing.TB, s *Store) *Store {
	t.Helper()
	data, err := s.Save()
	if err != nil {
		t.Fatal(err)
	}
	r := New()
	if err := r.Recover(data); err != nil {
		t.Fatal(err)
	}
	return r
}

// BenchmarkStoreSaveToFile encodes flatStore straight into a file, as a
// snapshot is taken: the raft loop waits this long, and the heap holds no
// copy of the encoding.
func BenchmarkStoreSaveToFile(b *testing.B) {
	s := flatStore()
	path := filepath.Join(b.TempDir(), "snap")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.SaveTo(f); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// saveWriter records the writes SaveTo makes and fails once it has taken
// failAfter bytes (0: never); largest is the largest write after the first
// (which holds the header and the event history).
type saveWriter struct {
	bytes.Buffer
	writes, largest, failAfter int
}

func (w *saveWriter) Write(p []byte) (int, error) {
	if w.writes++; w.writes > 1 {
		w.largest = max(w.largest, len(p))
	}
	if w.failAfter > 0 && w.Len()+len(p) > w.failAfter {
		return 0, errors.New("disk full")
	}
	return w.Buffer.Write(p)
}

// TestStoreSaveToStreams checks that SaveTo writes the store in pieces of
// about snapChunk bytes (never the whole), that what it wrote recovers the
// same tree, and that a failing writer ends it with the writer's error.
func TestStoreSaveToStreams(t *testing.T) {
	s := New("/0", "/1")
	v := strings.Repeat("v", 100)
	for i := 0; i < 5000; i++ {
		if _, err := s.Set(fmt.Sprintf("/1/d%d/k%d", i%7, i), false, v, TTLOptions{}, 0); err != nil {
			t.Fatal(err)
		}
	}
	w := &saveWriter{}
	n, err := s.SaveTo(w)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(w.Len()) || w.writes < 5 || w.largest > snapChunk+200 {
		t.Fatalf("SaveTo: %d bytes said, %d written in %d writes, largest %d", n, w.Len(), w.writes, w.largest)
	}
	r := New()
	if err := r.Recover(w.Bytes()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5000; i += 499 {
		key := fmt.Sprintf("/1/d%d/k%d", i%7, i)
		ev, err := r.Get(key, false, false, 0)
		if err != nil || ev.Node.Value != v {
			t.Fatalf("%s after recovery: %v %v", key, ev, err)
		}
	}
	if r.Index() != s.Index() {
		t.Fatalf("recovered index %d, want %d", r.Index(), s.Index())
	}
	failing := &saveWriter{failAfter: 3 * snapChunk}
	if _, err := s.SaveTo(failing); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("SaveTo into a failing writer: %v", err)
	}
	if failing.writes > 4 {
		t.Fatalf("SaveTo went on writing after an error: %d writes", failing.writes)
	}
}
