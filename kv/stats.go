// The store's counters (/v2/stats/store).

package kv

import (
	"strconv"
	"sync/atomic"
)

// The store's counters, in the order /v2/stats/store lists them.
const (
	statGetsSuccess = iota
	statGetsFail
	statSetsSuccess
	statSetsFail
	statDeleteSuccess
	statDeleteFail
	statUpdateSuccess
	statUpdateFail
	statCreateSuccess
	statCreateFail
	statCompareAndSwapSuccess
	statCompareAndSwapFail
	statCompareAndDeleteSuccess
	statCompareAndDeleteFail
	statExpireCount
	numStats
)

var statNames = [numStats]string{
	"getsSuccess", "getsFail", "setsSuccess", "setsFail", "deleteSuccess", "deleteFail",
	"updateSuccess", "updateFail", "createSuccess", "createFail",
	"compareAndSwapSuccess", "compareAndSwapFail", "compareAndDeleteSuccess", "compareAndDeleteFail",
	"expireCount",
}

// Stats counts the store's operations, as /v2/stats/store reports them.
// Counters are updated atomically: reads count concurrently.
type Stats struct {
	Counters [numStats]uint64
}

func (st *Stats) inc(i int) { atomic.AddUint64(&st.Counters[i], 1) }

// snapshot copies the counters.
func (st *Stats) snapshot() Stats {
	var c Stats
	for i := range st.Counters {
		c.Counters[i] = atomic.LoadUint64(&st.Counters[i])
	}
	return c
}

// StatsJSON is /v2/stats/store: the counters and the number of watchers.
func (s *Store) StatsJSON() []byte {
	s.mu.RLock()
	watchers := s.hub.count
	s.mu.RUnlock()
	c := s.stats.snapshot()
	b := []byte{'{'}
	for i, name := range statNames {
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, `":`...)
		b = strconv.AppendUint(b, c.Counters[i], 10)
		b = append(b, ',')
	}
	b = append(b, `"watchers":`...)
	b = strconv.AppendInt(b, int64(watchers), 10)
	return append(b, '}')
}

// CountGetFail counts a read that failed outside the store (a watch
// refused, say), as etcd does.
func (s *Store) CountGetFail() { s.stats.inc(statGetsFail) }
