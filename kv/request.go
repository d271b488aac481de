// Requests: the replicated form of a keys write and its binary encoding.

package kv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
)

// Methods a Request can carry.
const (
	MethodPut    = 'P' // set, create, update or compare-and-swap, by the conditions given
	MethodPost   = 'O' // create an in-order key under Path
	MethodDelete = 'D' // delete or compare-and-delete
	MethodExpire = 'X' // remove every node expired at Time
)

// PrevExist values of a Request.
const (
	PrevExistAny   = 0
	PrevExistFalse = 1
	PrevExistTrue  = 2
)

// Request is one write to the store as it travels through the raft log.
type Request struct {
	ID         uint64 // matches the result to the waiting client
	Method     byte
	Path       string
	Value      string
	PrevValue  string
	PrevIndex  uint64
	PrevExist  byte
	Dir        bool
	Recursive  bool
	Refresh    bool
	Expiration int64 // Unix nanoseconds the node expires at; 0 for none
	Time       int64 // Unix nanoseconds when the write was proposed: the "now" of the write
}

// Apply carries out r and returns its event, or for an expiry sweep the
// last expire event (nil if nothing expired).
func (s *Store) Apply(r *Request) (*Event, *Error) {
	opts := TTLOptions{ExpireTime: r.Expiration, Refresh: r.Refresh}
	switch r.Method {
	case MethodPost:
		return s.Create(r.Path, r.Dir, r.Value, true, opts, r.Time)
	case MethodPut:
		switch {
		case r.PrevExist == PrevExistTrue:
			if r.PrevIndex == 0 && r.PrevValue == "" {
				return s.Update(r.Path, r.Value, opts, r.Time)
			}
			return s.CompareAndSwap(r.Path, r.PrevValue, r.PrevIndex, r.Value, opts, r.Time)
		case r.PrevExist == PrevExistFalse:
			return s.Create(r.Path, r.Dir, r.Value, false, opts, r.Time)
		case r.PrevIndex > 0 || r.PrevValue != "":
			return s.CompareAndSwap(r.Path, r.PrevValue, r.PrevIndex, r.Value, opts, r.Time)
		}
		return s.Set(r.Path, r.Dir, r.Value, opts, r.Time)
	case MethodDelete:
		if r.PrevIndex > 0 || r.PrevValue != "" {
			return s.CompareAndDelete(r.Path, r.PrevValue, r.PrevIndex, r.Time)
		}
		return s.Delete(r.Path, r.Dir, r.Recursive, r.Time)
	case MethodExpire:
		evs := s.DeleteExpiredKeys(r.Time)
		if len(evs) == 0 {
			return nil, nil
		}
		return evs[len(evs)-1], nil
	}
	return nil, NewError(EcodeRaftInternal, fmt.Sprintf("unknown method %q", r.Method), s.Index())
}

const (
	flagDir = 1 << iota
	flagRecursive
	flagRefresh
)

// AppendBinary appends r's compact binary encoding, growing b at most once.
func (r *Request) AppendBinary(b []byte) []byte {
	b = slices.Grow(b, r.binarySize())
	b = append(b, r.Method, r.PrevExist)
	var flags byte
	if r.Dir {
		flags |= flagDir
	}
	if r.Recursive {
		flags |= flagRecursive
	}
	if r.Refresh {
		flags |= flagRefresh
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, r.ID)
	b = binary.AppendUvarint(b, r.PrevIndex)
	b = binary.AppendVarint(b, r.Expiration)
	b = binary.AppendVarint(b, r.Time)
	for _, s := range [...]string{r.Path, r.Value, r.PrevValue} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// binarySize is the length of r's binary encoding.
func (r *Request) binarySize() int {
	n := 3 + uvarintSize(r.ID) + uvarintSize(r.PrevIndex) + varintSize(r.Expiration) + varintSize(r.Time)
	for _, s := range [...]string{r.Path, r.Value, r.PrevValue} {
		n += uvarintSize(uint64(len(s))) + len(s)
	}
	return n
}

// uvarintSize is how many bytes binary.AppendUvarint writes for x.
func uvarintSize(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// varintSize is how many bytes binary.AppendVarint writes for x.
func varintSize(x int64) int { return uvarintSize(uint64(x)<<1 ^ uint64(x>>63)) }

var errShortRequest = errors.New("request encoding is truncated")

// UnmarshalBinary decodes what AppendBinary wrote.
func (r *Request) UnmarshalBinary(b []byte) error {
	if len(b) < 3 {
		return errShortRequest
	}
	r.Method, r.PrevExist = b[0], b[1]
	flags := b[2]
	r.Dir, r.Recursive, r.Refresh = flags&flagDir != 0, flags&flagRecursive != 0, flags&flagRefresh != 0
	b = b[3:]
	var n int
	if r.ID, n = binary.Uvarint(b); n <= 0 {
		return errShortRequest
	}
	b = b[n:]
	if r.PrevIndex, n = binary.Uvarint(b); n <= 0 {
		return errShortRequest
	}
	b = b[n:]
	if r.Expiration, n = binary.Varint(b); n <= 0 {
		return errShortRequest
	}
	b = b[n:]
	if r.Time, n = binary.Varint(b); n <= 0 {
		return errShortRequest
	}
	b = b[n:]
	for _, dst := range [...]*string{&r.Path, &r.Value, &r.PrevValue} {
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return errShortRequest
		}
		*dst = string(b[n : n+int(l)])
		b = b[n+int(l):]
	}
	if len(b) != 0 {
		return fmt.Errorf("request encoding has %d trailing bytes", len(b))
	}
	return nil
}
