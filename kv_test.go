package main

import (
	"net/url"
	"strings"
	"testing"
)

// TestKeysSmoke checks a set and a get through the whole path: HTTP, raft,
// the log, the store.
func TestKeysSmoke(t *testing.T) {
	m := startTestMember(t, nil)
	code, h, body := m.do(t, "PUT", "/v2/keys/message", url.Values{"value": {"Hello world"}})
	if code != 201 || !strings.Contains(body, `"value":"Hello world"`) {
		t.Fatalf("set: %d %s", code, body)
	}
	if h.Get("X-Etcd-Index") != "4" {
		t.Errorf("X-Etcd-Index = %q, want 4 (three cluster writes come first, as in etcd)", h.Get("X-Etcd-Index"))
	}
	code, _, body = m.do(t, "GET", "/v2/keys/message", nil)
	want := `{"action":"get","node":{"key":"/message","value":"Hello world","modifiedIndex":4,"createdIndex":4}}` + "\n"
	if code != 200 || body != want {
		t.Fatalf("get: %d %q, want 200 %q", code, body, want)
	}
}
