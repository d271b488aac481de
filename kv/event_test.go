// Tests of events and their JSON.

package kv

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// etcd 3.4 writes its v2 answers with encoding/json from structs tagged as
// below, through json.Encoder (so with HTML escaping and a newline). These
// mirrors give the reference bytes the hand-written encoder must match.

type refNode struct {
	Key           string     `json:"key,omitempty"`
	Value         *string    `json:"value,omitempty"`
	Dir           bool       `json:"dir,omitempty"`
	Expiration    *time.Time `json:"expiration,omitempty"`
	TTL           int64      `json:"ttl,omitempty"`
	Nodes         []*refNode `json:"nodes,omitempty"`
	ModifiedIndex uint64     `json:"modifiedIndex,omitempty"`
	CreatedIndex  uint64     `json:"createdIndex,omitempty"`
}

type refEvent struct {
	Action   string   `json:"action"`
	Node     *refNode `json:"node,omitempty"`
	PrevNode *refNode `json:"prevNode,omitempty"`
}

type refError struct {
	ErrorCode int    `json:"errorCode"`
	Message   string `json:"message"`
	Cause     string `json:"cause,omitempty"`
	Index     uint64 `json:"index"`
}

func toRefNode(n *NodeExtern, trim string) *refNode {
	if n == nil {
		return nil
	}
	r := &refNode{Key: strings.TrimPrefix(n.Key, trim), Dir: n.Dir, TTL: n.TTL,
		ModifiedIndex: n.ModifiedIndex, CreatedIndex: n.CreatedIndex}
	if n.HasValue {
		v := n.Value
		r.Value = &v
	}
	if n.Expiration != 0 {
		x := time.Unix(0, n.Expiration).UTC()
		r.Expiration = &x
	}
	for _, c := range n.Nodes {
		r.Nodes = append(r.Nodes, toRefNode(c, trim))
	}
	return r
}

func refEncode(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return go119Escapes(buf.Bytes())
}

func refEventJSON(t testing.TB, e *Event, trim string, omitNodes bool) []byte {
	r := refEvent{Action: e.Action}
	if !omitNodes {
		r.Node, r.PrevNode = toRefNode(e.Node, trim), toRefNode(e.PrevNode, trim)
	}
	return refEncode(t, r)
}

// go119Escapes rewrites the \b and \f escapes of newer encoding/json as
// \u0008 and \u000c, as Go 1.19 (which built etcd 3.4.x) wrote them: the one
// documented difference between appendString and today's encoding/json.
func go119Escapes(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		switch b[i+1] {
		case 'b':
			out = append(out, `\u0008`...)
		case 'f':
			out = append(out, `\u000c`...)
		default:
			out = append(out, b[i], b[i+1])
		}
		i++
	}
	return out
}

func TestGo119EscapesNormaliser(t *testing.T) {
	for in, want := range map[string]string{
		`"\b\f"`:       `"\u0008\u000c"`,
		`"\\b\\f"`:     `"\\b\\f"`,
		`"\\\b"`:       `"\\\u0008"`,
		`"\u0062\n"`:   `"\u0062\n"`,
		`{"a":"x\fy"}`: `{"a":"x\u000cy"}`,
	} {
		if got := string(go119Escapes([]byte(in))); got != want {
			t.Errorf("%s -> %s, want %s", in, got, want)
		}
	}
}

func TestAppendStringTable(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", `""`},
		{"plain text /a/b", `"plain text /a/b"`},
		{`say "hi"`, `"say \"hi\""`},
		{`back\slash`, `"back\\slash"`},
		{"\n\r\t", `"\n\r\t"`},
		{"\b\f", `"\u0008\u000c"`}, // Go 1.19's encoding/json, as etcd 3.4 wrote them
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"\x7f", "\"\x7f\""},
		{"<a href='x'>&amp;</a>", `"\u003ca href='x'\u003e\u0026amp;\u003c/a\u003e"`},
		{"line\u2028para\u2029end", `"line\u2028para\u2029end"`},
		{"\u2027\u202a", "\"\u2027\u202a\""},
		{"héllo wörld ✓ 😀", `"héllo wörld ✓ 😀"`},
		{"bad \xff byte", `"bad \ufffd byte"`},
		{"\xe2\x80", `"\ufffd\ufffd"`},                         // truncated sequence
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`},               // an encoded surrogate is invalid
		{"\xc0\xaf", `"\ufffd\ufffd"`},                         // overlong
		{"\uFFFD", "\"\uFFFD\""},                               // a real U+FFFD stays as it is
		{"ok\xf4\x90\x80\x80", `"ok\ufffd\ufffd\ufffd\ufffd"`}, // beyond U+10FFFF
	}
	for _, tc := range cases {
		got := string(appendString([]byte("prefix:"), tc.in))
		if got != "prefix:"+tc.want {
			t.Errorf("appendString(%q) = %s, want %s", tc.in, strings.TrimPrefix(got, "prefix:"), tc.want)
		}
		checkAgainstEncodingJSON(t, tc.in)
	}
}

// checkAgainstEncodingJSON compares appendString, and the string's use in
// an event and an error, with encoding/json.
func checkAgainstEncodingJSON(t *testing.T, s string) {
	t.Helper()
	ref, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := appendString(nil, s), go119Escapes(ref); !bytes.Equal(got, want) {
		t.Errorf("appendString(%q):\n got %s\nwant %s", s, got, want)
	}
	exp := t0 + int64(len(s))*1234567 + 1
	e := &Event{
		Action: s,
		Node: &NodeExtern{Key: "/1/" + s, Value: s, HasValue: true, Expiration: exp, TTL: int64(len(s)) - 3,
			ModifiedIndex: uint64(len(s)), CreatedIndex: 7},
		PrevNode: &NodeExtern{Key: "/1" + s, Dir: true, ModifiedIndex: 1,
			Nodes: []*NodeExtern{{Key: "/1/" + s + "/c", HasValue: true}, {Key: "/1/d", Dir: true, Nodes: []*NodeExtern{{Key: s}}}}},
	}
	for _, trim := range []string{"", "/1"} {
		for _, omit := range []bool{false, true} {
			got := e.AppendJSON(nil, trim, omit)
			if want := refEventJSON(t, e, trim, omit); !bytes.Equal(got, want) {
				t.Errorf("event with %q (trim %q, omit %v):\n got %s\nwant %s", s, trim, omit, got, want)
			}
		}
	}
	for _, cause := range []string{s, "/1" + s} {
		er := NewError(EcodeTestFailed, cause, uint64(len(s)))
		got := er.AppendJSON(nil, "/1")
		want := refEncode(t, refError{ErrorCode: er.Code, Message: er.Message(), Cause: strings.TrimPrefix(cause, "/1"), Index: er.Index})
		if !bytes.Equal(got, want) {
			t.Errorf("error with cause %q:\n got %s\nwant %s", cause, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "\b\f\n\r\t\x00\x1f", "<>&", "\u2028\u2029", "\xff\xfe", "é😀", `"\`, "\xed\xa0\x80", "/1/_x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkAgainstEncodingJSON(t, s)
	})
}

func TestEventAppendJSON(t *testing.T) {
	exp := time.Date(2024, 3, 4, 5, 6, 7, 123400000, time.UTC).UnixNano()
	cases := []struct {
		name string
		e    *Event
		trim string
		omit bool
		want string
	}{
		{"file", &Event{Action: "get", Node: &NodeExtern{Key: "/1/a", Value: "v", HasValue: true, ModifiedIndex: 4, CreatedIndex: 4}}, "/1", false,
			`{"action":"get","node":{"key":"/a","value":"v","modifiedIndex":4,"createdIndex":4}}`},
		{"namespace root has no key", &Event{Action: "get", Node: &NodeExtern{Key: "/1", Dir: true, Nodes: []*NodeExtern{{Key: "/1/x", Dir: true, ModifiedIndex: 2, CreatedIndex: 2}}}}, "/1", false,
			`{"action":"get","node":{"dir":true,"nodes":[{"key":"/x","dir":true,"modifiedIndex":2,"createdIndex":2}]}}`},
		{"empty dir lists no nodes", &Event{Action: "get", Node: &NodeExtern{Key: "/d", Dir: true, Nodes: []*NodeExtern{}, ModifiedIndex: 3, CreatedIndex: 3}}, "", false,
			`{"action":"get","node":{"key":"/d","dir":true,"modifiedIndex":3,"createdIndex":3}}`},
		{"ttl and expiration", &Event{Action: "set", Node: &NodeExtern{Key: "/t", Value: "", HasValue: true, Expiration: exp, TTL: 5, ModifiedIndex: 9, CreatedIndex: 9}}, "", false,
			`{"action":"set","node":{"key":"/t","value":"","expiration":"2024-03-04T05:06:07.1234Z","ttl":5,"modifiedIndex":9,"createdIndex":9}}`},
		{"prevNode", &Event{Action: "delete", Node: &NodeExtern{Key: "/k", ModifiedIndex: 6, CreatedIndex: 5}, PrevNode: &NodeExtern{Key: "/k", Value: "x", HasValue: true, ModifiedIndex: 5, CreatedIndex: 5}}, "", false,
			`{"action":"delete","node":{"key":"/k","modifiedIndex":6,"createdIndex":5},"prevNode":{"key":"/k","value":"x","modifiedIndex":5,"createdIndex":5}}`},
		{"noValueOnSuccess", &Event{Action: "set", Node: &NodeExtern{Key: "/k", Value: "x", HasValue: true}, PrevNode: &NodeExtern{Key: "/k"}}, "", true,
			`{"action":"set"}`},
		{"key outside trim kept", &Event{Action: "get", Node: &NodeExtern{Key: "/0/members", Dir: true}}, "/1", false,
			`{"action":"get","node":{"key":"/0/members","dir":true}}`},
	}
	for _, tc := range cases {
		got := string(tc.e.AppendJSON([]byte("keep"), tc.trim, tc.omit))
		if got != "keep"+tc.want+"\n" {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, strings.TrimPrefix(got, "keep"), tc.want)
		}
		if want := refEventJSON(t, tc.e, tc.trim, tc.omit); !bytes.Equal([]byte(got[4:]), want) {
			t.Errorf("%s differs from encoding/json:\n got %s\nwant %s", tc.name, got[4:], want)
		}
	}
}

func TestErrorAppendJSON(t *testing.T) {
	cases := []struct {
		err  *Error
		want string
	}{
		{NewError(EcodeKeyNotFound, "/1/foo/bar", 17), `{"errorCode":100,"message":"Key not found","cause":"/foo/bar","index":17}`},
		{NewError(EcodeRootROnly, "/", 3), `{"errorCode":107,"message":"Root is read only","cause":"/","index":3}`},
		{NewError(EcodeNotFile, "/1", 3), `{"errorCode":102,"message":"Not a file","index":3}`},
		{NewError(EcodeTestFailed, "[a != b] [1 != 2]", 0), `{"errorCode":101,"message":"Compare failed","cause":"[a != b] [1 != 2]","index":0}`},
		{NewError(EcodeEventIndexCleared, "the requested history has been cleared [50/5]", 1049),
			`{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared [50/5]","index":1049}`},
		{NewError(EcodeIndexNaN, `invalid value for "prevIndex"`, 0), `{"errorCode":203,"message":"The given index in POST form is not a number","cause":"invalid value for \"prevIndex\"","index":0}`},
	}
	for _, tc := range cases {
		if got := string(tc.err.AppendJSON(nil, "/1")); got != tc.want+"\n" {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
	if e := NewError(EcodeKeyNotFound, "/x", 1); e.Error() != "Key not found (/x)" {
		t.Errorf("Error() = %q", e.Error())
	}
	if e := NewError(EcodeKeyNotFound, "", 1); e.Error() != "Key not found" {
		t.Errorf("Error() = %q", e.Error())
	}
}

// TestStoreEventsMatchEncodingJSON runs real store events, with every kind
// of node, through both encoders.
func TestStoreEventsMatchEncodingJSON(t *testing.T) {
	s := New("/0", "/1")
	var evs []*Event
	add := func(e *Event, err *Error) {
		t.Helper()
		evs = append(evs, must(t)(e, err))
	}
	add(s.Set("/1/a/b", false, "v<&>\b", TTLOptions{ExpireTime: t0 + 1500*int64(time.Millisecond)}, t0))
	add(s.Set("/1/a/c", true, "", TTLOptions{}, t0))
	add(s.Set("/1/a/_h", false, "", TTLOptions{}, t0))
	add(s.Update("/1/a/b", "w", TTLOptions{ExpireTime: t0 + 99*sec}, t0))
	add(s.Create("/1/q", false, "\u2028", true, TTLOptions{}, t0))
	add(s.Get("/1", true, true, t0))
	add(s.Get("/1/a", false, true, t0+sec))
	add(s.Delete("/1/a", false, true, t0))
	evs = append(evs, s.DeleteExpiredKeys(t0+100*sec)...)
	for i, e := range evs {
		for _, trim := range []string{"", "/1"} {
			if got, want := e.AppendJSON(nil, trim, false), refEventJSON(t, e, trim, false); !bytes.Equal(got, want) {
				t.Errorf("event %d trim %q:\n got %s\nwant %s", i, trim, got, want)
			}
		}
	}
}

func BenchmarkEventAppendJSON(b *testing.B) {
	e := &Event{
		Action: ActionCompareAndSwap,
		Node: &NodeExtern{Key: "/1/service/backend/instance-42", Value: `{"host":"10.0.0.42","port":8080}`, HasValue: true,
			Expiration: t0 + 30*sec, TTL: 30, ModifiedIndex: 123456, CreatedIndex: 120000},
		PrevNode: &NodeExtern{Key: "/1/service/backend/instance-42", Value: `{"host":"10.0.0.41","port":8080}`, HasValue: true,
			Expiration: t0 + 10*sec, TTL: 10, ModifiedIndex: 123400, CreatedIndex: 120000},
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = e.AppendJSON(buf[:0], "/1", false)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkAppendString is the writing of one JSON string by appendString
// and by encoding/json.
func BenchmarkAppendString(b *testing.B) {
	for _, s := range []string{strings.Repeat("x", 64), `{"host":"10.0.0.42","port":8080,"tags":["a<b","c&d"]}`, "ünïcödé välüé " + strings.Repeat("é", 20)} {
		b.Run(strconv.Itoa(len(s))+"/hand", func(b *testing.B) {
			buf := make([]byte, 0, 256)
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				buf = appendString(buf[:0], s)
			}
		})
		// the standard library at its cheapest: an Encoder (HTML
		// escaping on, as etcd's) into a reused buffer
		b.Run(strconv.Itoa(len(s))+"/encoding-json", func(b *testing.B) {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				buf.Reset()
				if err := enc.Encode(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
