// Tests of the keys form parser against ParseForm.

package main

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
)

// formRequest is a server-side request as the keys handler sees it.
func formRequest(method, ctype, query string, body io.Reader, length int64) *http.Request {
	r := &http.Request{
		Method:        method,
		URL:           &url.URL{Path: "/v2/keys/a", RawQuery: query},
		Header:        http.Header{},
		Body:          http.NoBody,
		ContentLength: length,
	}
	if body != nil {
		r.Body = io.NopCloser(body)
	}
	if ctype != "" {
		r.Header["Content-Type"] = []string{ctype}
	}
	return r
}

// paramsByParseForm is what the keys handler read before the hand parser:
// ParseForm's error and the first value of each parameter of r.Form.
func paramsByParseForm(r *http.Request) (keyParams, error) {
	var p keyParams
	err := r.ParseForm()
	for i, name := range keyParamNames {
		if vs, ok := r.Form[name]; ok && len(vs) > 0 {
			p.set[i], p.val[i] = true, vs[0]
		}
	}
	return p, err
}

// checkSameParams fails unless readKeyParams and ParseForm agree on the
// request newReq makes (called twice: each reads its own body).
func checkSameParams(t *testing.T, newReq func() *http.Request) {
	t.Helper()
	want, wantErr := paramsByParseForm(newReq())
	var got keyParams
	gotErr := readKeyParams(newReq(), &got)
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("error %v, ParseForm's %v", gotErr, wantErr)
	}
	for i, name := range keyParamNames {
		if got.set[i] != want.set[i] || got.val[i] != want.val[i] {
			t.Errorf("%s: (%v, %q), ParseForm's (%v, %q)", name, got.set[i], got.val[i], want.set[i], want.val[i])
		}
	}
}

func TestReadKeyParamsAgreesWithParseForm(t *testing.T) {
	const form = "application/x-www-form-urlencoded"
	big := strings.Repeat("x", maxFormBody)
	tests := []struct {
		name                string
		method, ctype       string
		query, body         string
		readErr             error // the body fails with it after body
		fast                bool  // the hand parser must take it
		lengthUnknown, huge bool
	}{
		{name: "no form", method: "GET", fast: true},
		{name: "query", method: "GET", query: "recursive=true&sorted=true&wait=false", fast: true},
		{name: "query escapes", method: "GET", query: "prevValue=a+b%20c%2B%26&val%75e=%e2%82%ac", fast: true},
		{name: "duplicates: first wins", method: "GET", query: "ttl=1&ttl=2&value=&value=x", fast: true},
		{name: "empty segments and no =", method: "GET", query: "&&dir&=x&quorum=&&", fast: true},
		{name: "second = in value", method: "GET", query: "value=a=b=c", fast: true},
		{name: "unknown params", method: "GET", query: "foo=1&Value=2&value%00=3&stream=1", fast: true},
		{name: "semicolon", method: "GET", query: "value=1;ttl=2"},
		{name: "semicolon in unknown", method: "GET", query: "x;y&value=1"},
		{name: "bad escape in value", method: "GET", query: "value=%zz"},
		{name: "short escape at end", method: "GET", query: "ttl=1&value=%4"},
		{name: "bad escape in key", method: "GET", query: "val%u=1&value=2"},
		{name: "bad escape across =", method: "GET", query: "a%4=1"},
		{name: "bad escape in unknown param", method: "GET", query: "value=1&x=%"},
		{name: "body", method: "PUT", ctype: form, body: "value=hello+world&ttl=5", fast: true},
		{name: "body before query", method: "PUT", ctype: form, query: "value=q&prevIndex=3", body: "value=b&ttl=5", fast: true},
		{name: "body escapes", method: "POST", ctype: form, body: "value=%7B%22a%22%3A1%7D&prevV%61lue=x+y", fast: true},
		{name: "body, unknown length", method: "PUT", ctype: form, body: "value=v&dir=false", lengthUnknown: true, fast: true},
		{name: "body bad escape", method: "PUT", ctype: form, query: "ttl=3", body: "value=%g0"},
		{name: "body semicolon", method: "PUT", ctype: form, query: "ttl=3", body: "value=1;2"},
		{name: "body fine, query bad", method: "PUT", ctype: form, query: "ttl=%", body: "value=v"},
		{name: "body ignored on DELETE", method: "DELETE", ctype: form, query: "dir=true", body: "value=v", fast: true},
		{name: "body ignored on GET", method: "GET", ctype: form, body: "value=%zz", fast: true},
		{name: "no content type", method: "PUT", query: "ttl=1", body: "value=v", fast: true},
		{name: "other content type", method: "PUT", ctype: "text/plain", query: "ttl=1", body: "value=v"},
		{name: "content type with charset", method: "PUT", ctype: form + "; charset=utf-8", body: "value=v"},
		{name: "content type in capitals", method: "PUT", ctype: "Application/X-WWW-Form-Urlencoded", body: "value=v"},
		{name: "malformed content type", method: "PUT", ctype: "form;", body: "value=v"},
		{name: "multipart", method: "POST", ctype: "multipart/form-data; boundary=x", query: "ttl=1", body: "--x--"},
		{name: "body read fails", method: "PUT", ctype: form, query: "ttl=1", body: "value=abc", readErr: errors.New("connection reset")},
		{name: "body too large", method: "PUT", ctype: form, query: "ttl=1", body: "value=" + big, huge: true},
		{name: "too many params", method: "GET", query: strings.Repeat("a=1&", maxFastParams) + "value=v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newReq := func() *http.Request {
				var body io.Reader
				length := int64(len(tt.body))
				if tt.body != "" {
					body = strings.NewReader(tt.body)
					if tt.readErr != nil {
						body = io.MultiReader(body, errReader{tt.readErr})
						length = -1
					}
				}
				if tt.lengthUnknown {
					length = -1
				}
				return formRequest(tt.method, tt.ctype, tt.query, body, length)
			}
			checkSameParams(t, newReq)
			if tt.huge {
				return
			}
			var p keyParams
			if fast := readKeyParamsFast(newReq(), &p); fast != tt.fast {
				t.Errorf("hand parser took it: %v, want %v", fast, tt.fast)
			}
		})
	}
}

// FuzzReadKeyParams checks the hand parser against ParseForm on any query,
// body, method and content type.
func FuzzReadKeyParams(f *testing.F) {
	f.Add(uint8(0), false, "recursive=true&sorted=false", "")
	f.Add(uint8(1), true, "ttl=5", "value=a+b%20c&prevExist=false")
	f.Add(uint8(2), true, "value=1;x", "value=%zz&value=2")
	f.Add(uint8(1), false, "&&=&value&%76alue=x", "value=y")
	f.Add(uint8(3), true, "prevValue=%", "dir=true")
	f.Fuzz(func(t *testing.T, method uint8, form bool, query, body string) {
		m := [...]string{"GET", "PUT", "POST", "DELETE", "HEAD"}[int(method)%5]
		ctype := ""
		if form {
			ctype = "application/x-www-form-urlencoded"
		}
		checkSameParams(t, func() *http.Request {
			return formRequest(m, ctype, query, strings.NewReader(body), int64(len(body)))
		})
	})
}

func TestIsCleanPath(t *testing.T) {
	for _, p := range []string{
		"", "/", "//", "/a", "/a/", "/a//b", "/a/./b", "/a/../b", "/.", "/..", "/a/.", "/a/..",
		"a", "a/b", "/.a", "/a./b", "/..a/", "/a/b/c", "/a/b/c/", "///", "/_x/y", "/a/./",
	} {
		for _, slash := range []bool{false, true} {
			// path.Clean leaves it alone, apart from a trailing slash if allowed
			c := path.Clean(p)
			want := p != "" && p[0] == '/' && (c == p || slash && c != "/" && c+"/" == p)
			if got := isCleanPath(p, slash); got != want {
				t.Errorf("isCleanPath(%q, %v) = %v, want %v", p, slash, got, want)
			}
		}
	}
}
