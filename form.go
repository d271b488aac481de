// The keys API form parser: the parameters of a keys request, read by hand or
// through ParseForm with the same result.

package main

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// The parameters a keys request reads, as indexes into keyParams.
const (
	paramPrevIndex = iota
	paramWaitIndex
	paramRecursive
	paramSorted
	paramWait
	paramDir
	paramQuorum
	paramStream
	paramPrevValue
	paramNoValueOnSuccess
	paramTTL
	paramPrevExist
	paramRefresh
	paramValue
	numKeyParams
)

// keyParamNames are the parameters' names, by index.
var keyParamNames = [numKeyParams]string{
	"prevIndex", "waitIndex", "recursive", "sorted", "wait", "dir", "quorum", "stream",
	"prevValue", "noValueOnSuccess", "ttl", "prevExist", "refresh", "value",
}

// keyParamIndex is the index of the parameter called name, or -1.
func keyParamIndex(name string) int {
	switch name {
	case "prevIndex":
		return paramPrevIndex
	case "waitIndex":
		return paramWaitIndex
	case "recursive":
		return paramRecursive
	case "sorted":
		return paramSorted
	case "wait":
		return paramWait
	case "dir":
		return paramDir
	case "quorum":
		return paramQuorum
	case "stream":
		return paramStream
	case "prevValue":
		return paramPrevValue
	case "noValueOnSuccess":
		return paramNoValueOnSuccess
	case "ttl":
		return paramTTL
	case "prevExist":
		return paramPrevExist
	case "refresh":
		return paramRefresh
	case "value":
		return paramValue
	}
	return -1
}

// keyParams is what a keys request's form says about the parameters it
// reads: whether each was given and its first value, the body's values
// coming before the query's as in http.Request.Form.
type keyParams struct {
	set [numKeyParams]bool
	val [numKeyParams]string
}

// has reports whether the parameter was given.
func (p *keyParams) has(i int) bool { return p.set[i] }

// get is the parameter's first value, "" when it was not given.
func (p *keyParams) get(i int) string { return p.val[i] }

// maxFormBody is how much of a form body http.Request.ParseForm reads
// before it gives up with "http: POST too large".
const maxFormBody = 10 << 20

// maxFormPrealloc bounds the room made for a form body before it arrives;
// a larger one grows as it comes.
const maxFormPrealloc = 64 << 10

// maxFastParams bounds the parameters the hand parser takes on; a form
// with more goes to ParseForm, which applies its own limit.
const maxFastParams = 1000

// formFastPath is false when GODEBUG may change url.ParseQuery's limit
// on parameters at start: then every form goes to ParseForm.
var formFastPath = !strings.Contains(os.Getenv("GODEBUG"), "urlmaxqueryparams")

// readKeyParams fills p from r's query and form body exactly as
// r.ParseForm followed by lookups in r.Form would, with the same error.
// The usual request (a query and, for POST and PUT, a body of type
// application/x-www-form-urlencoded, all well formed) is parsed by hand
// without building r.Form; anything else is handed to ParseForm, with the
// body replayed if it was read. The hand parser still pays
// (BenchmarkParseKeyRequest, medians of 6 interleaved runs, 2026-12-01):
// a PUT with a 64-byte value, ParseForm: 4605 ns/op, 12 allocs; this:
// 991 ns/op, 2 allocs; a GET with a query, 1456 vs 549 ns/op.
func readKeyParams(r *http.Request, p *keyParams) error {
	tooLarge := false
	if formFastPath && r.Form == nil && r.PostForm == nil && r.URL != nil {
		if readKeyParamsFast(r, p) {
			return nil
		}
		*p = keyParams{}
		// the hand parser marks a body too large to take by giving the
		// request an empty PostForm: ParseForm then reads only the query
		tooLarge = r.PostForm != nil
	}
	err := r.ParseForm()
	for i, name := range keyParamNames {
		if vs := r.Form[name]; len(vs) > 0 {
			p.set[i], p.val[i] = true, vs[0]
		}
	}
	if tooLarge {
		return errPostTooLarge
	}
	return err
}

// errPostTooLarge is ParseForm's error for a form body over maxFormBody.
var errPostTooLarge = errors.New("http: POST too large")

// readKeyParamsFast parses r's form by hand; false means it could not
// (p is then partly filled and r.Body, if read, is ready to be read again).
func readKeyParamsFast(r *http.Request, p *keyParams) bool {
	if r.Method != http.MethodPost && r.Method != http.MethodPut && r.Method != http.MethodPatch {
		return scanForm(r.URL.RawQuery, p)
	}
	if ct := r.Header["Content-Type"]; len(ct) > 0 && ct[0] != "" {
		// ParseForm treats a missing type as application/octet-stream
		// and reads no body then
		if ct[0] != "application/x-www-form-urlencoded" || r.Body == nil {
			return false
		}
		if r.ContentLength > maxFormBody {
			// announced too large: refused unread (ParseForm would read
			// 10 MB of it first)
			r.PostForm = url.Values{}
			return false
		}
		bp := bufPool.Get().(*[]byte) // the answers' pool (http.go)
		defer func() { putBuf(bp, *bp) }()
		b, err := readFormBody(r.Body, (*bp)[:0], r.ContentLength)
		*bp = b
		if err == nil && len(b) > maxFormBody {
			// refused whatever follows: ParseForm need not read it all again
			r.PostForm = url.Values{}
			return false
		}
		if err != nil || len(b) > maxFormBody || !scanForm(string(b), p) || !scanForm(r.URL.RawQuery, p) {
			r.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(bytes.Clone(b)), errOrRest(err, r.Body))}
			return false
		}
		return true
	}
	return scanForm(r.URL.RawQuery, p)
}

// readFormBody reads body to its end into b, or until it has more than
// maxFormBody bytes or fails.
func readFormBody(body io.Reader, b []byte, contentLength int64) ([]byte, error) {
	// room for what the header announces, up to maxFormPrealloc: a client
	// can announce any length and send nothing
	if contentLength > 0 && contentLength < maxFormPrealloc && int(contentLength) >= cap(b) {
		b = make([]byte, 0, contentLength+1)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := body.Read(b[len(b):min(cap(b), maxFormBody+1)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil || len(b) > maxFormBody {
			return b, err
		}
	}
}

// errOrRest is what follows the part of a body already read: the error
// reading it stopped at, or the rest of it.
func errOrRest(err error, body io.Reader) io.Reader {
	if err != nil {
		return errReader{err}
	}
	return body
}

// errReader is a body whose every read fails with err.
type errReader struct{ err error }

// Read fails with e.err.
func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// replayBody is a request body read again from a copy of its start.
type replayBody struct{ io.Reader }

// Close does nothing: the server closes the request's own body.
func (*replayBody) Close() error { return nil }

// scanForm adds the known parameters of the form s to p, first value
// first, as url.ParseQuery would split and decode it. It returns false,
// leaving the error to ParseQuery, when s has anything ParseQuery rejects
// (a semicolon, a malformed escape) or too many parameters. Its values are
// substrings of s where they need no decoding. Its searches are the
// standard library's vectorized byte searches, not a loop over each byte:
// BenchmarkParseKeyRequest, medians of 4 interleaved runs (2026-12-03),
// PUT/hand 655 ns/op with the byte loop, 456 with these; PUTcas/hand 1050
// and 660; GET/hand and GETquery/hand unchanged within the noise.
func scanForm(s string, p *keyParams) bool {
	if s == "" {
		return true
	}
	if len(s) >= maxFastParams && strings.Count(s, "&") >= maxFastParams || strings.IndexByte(s, ';') >= 0 {
		return false
	}
	escaped := strings.IndexByte(s, '+') >= 0
	for rest := s; ; {
		i := strings.IndexByte(rest, '%')
		if i < 0 {
			break
		}
		if i+2 >= len(rest) || !isHex(rest[i+1]) || !isHex(rest[i+2]) {
			return false
		}
		escaped = true
		rest = rest[i+3:]
	}
	for s != "" {
		var seg string
		seg, s, _ = strings.Cut(s, "&")
		if seg == "" {
			continue
		}
		key, val, _ := strings.Cut(seg, "=")
		if escaped {
			key, val = unescapeForm(key), unescapeForm(val)
		}
		if i := keyParamIndex(key); i >= 0 && !p.set[i] {
			p.set[i], p.val[i] = true, val
		}
	}
	return true
}

// isHex reports whether c is a hexadecimal digit.
func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unhex is the value of the hexadecimal digit c.
func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// unescapeForm decodes a form component whose escapes are well formed:
// %XX is the byte XX and + a space. One with neither is s itself.
func unescapeForm(s string) string {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%':
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		case '+':
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
