// The v2 API errors: codes, messages and the Error type.

package kv

import (
	"net/http"
	"strconv"
)

// Error codes of the etcd v2 API.
const (
	EcodeKeyNotFound   = 100
	EcodeTestFailed    = 101
	EcodeNotFile       = 102
	EcodeNotDir        = 104
	EcodeNodeExist     = 105
	EcodeRootROnly     = 107
	EcodeDirNotEmpty   = 108
	EcodeUnauthorized  = 110
	EcodeValueRequired = 200

	EcodePrevValueRequired  = 201
	EcodeTTLNaN             = 202
	EcodeIndexNaN           = 203
	EcodeInvalidField       = 209
	EcodeInvalidForm        = 210
	EcodeRefreshValue       = 211
	EcodeRefreshTTLRequired = 212

	EcodeRaftInternal = 300
	EcodeLeaderElect  = 301

	EcodeWatcherCleared    = 400
	EcodeEventIndexCleared = 401
)

var errorMessages = map[int]string{
	EcodeKeyNotFound:   "Key not found",
	EcodeTestFailed:    "Compare failed",
	EcodeNotFile:       "Not a file",
	EcodeNotDir:        "Not a directory",
	EcodeNodeExist:     "Key already exists",
	EcodeRootROnly:     "Root is read only",
	EcodeDirNotEmpty:   "Directory not empty",
	EcodeUnauthorized:  "The request requires user authentication",
	EcodeValueRequired: "Value is Required in POST form",

	EcodePrevValueRequired:  "PrevValue is Required in POST form",
	EcodeTTLNaN:             "The given TTL in POST form is not a number",
	EcodeIndexNaN:           "The given index in POST form is not a number",
	EcodeInvalidField:       "Invalid field",
	EcodeInvalidForm:        "Invalid POST form",
	EcodeRefreshValue:       "Value provided on refresh",
	EcodeRefreshTTLRequired: "A TTL must be provided on refresh",

	EcodeRaftInternal: "Raft Internal Error",
	EcodeLeaderElect:  "During Leader Election",

	EcodeWatcherCleared:    "watcher is cleared due to etcd recovery",
	EcodeEventIndexCleared: "The event in requested index is outdated and cleared",
}

// Error is an etcd v2 API error: a code, its fixed message, a cause (usually
// the key concerned) and the store index at the time of the error.
type Error struct {
	Code  int
	Cause string
	Index uint64
}

// NewError returns the error with the given code, cause and index.
func NewError(code int, cause string, index uint64) *Error {
	return &Error{Code: code, Cause: cause, Index: index}
}

// Message is the fixed text etcd gives for the error's code.
func (e *Error) Message() string { return errorMessages[e.Code] }

// Error is the message with the cause in parentheses.
func (e *Error) Error() string {
	if e.Cause == "" {
		return e.Message()
	}
	return e.Message() + " (" + e.Cause + ")"
}

// StatusCode is the HTTP status etcd answers the error with.
func (e *Error) StatusCode() int {
	switch e.Code {
	case EcodeKeyNotFound:
		return http.StatusNotFound
	case EcodeNotFile, EcodeDirNotEmpty:
		return http.StatusForbidden
	case EcodeUnauthorized:
		return http.StatusUnauthorized
	case EcodeTestFailed, EcodeNodeExist:
		return http.StatusPreconditionFailed
	case EcodeRaftInternal, EcodeLeaderElect:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// AppendJSON appends the error's JSON form, as etcd writes it, with a
// trailing newline. A non-empty trim prefix is removed from the cause.
func (e *Error) AppendJSON(b []byte, trim string) []byte {
	b = append(b, `{"errorCode":`...)
	b = strconv.AppendInt(b, int64(e.Code), 10)
	b = append(b, `,"message":`...)
	b = appendString(b, e.Message())
	cause := e.Cause
	if trim != "" && len(cause) >= len(trim) && cause[:len(trim)] == trim {
		cause = cause[len(trim):]
	}
	if cause != "" {
		b = append(b, `,"cause":`...)
		b = appendString(b, cause)
	}
	b = append(b, `,"index":`...)
	b = strconv.AppendUint(b, e.Index, 10)
	return append(b, "}\n"...)
}
