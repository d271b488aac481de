#!/bin/bash
# scripts/memload.sh: resident memory of a member right after 100,000 distinct 64-byte keys were
# written by 64 clients (wrk), and its peak (VmHWM), as issue 16 measures it.
#
#   scripts/memload.sh ./etcdlite        # or /usr/bin/etcd (given --enable-v2=true here)
#   PORT=9950 PROF=heap.pb scripts/memload.sh ./etcdlite   # also a heap profile, smaps and MemStats
#
# Prints the idle RSS, RSS samples every 0.2 s during the load, RSS and VmHWM right after the
# 100,000th set, and again 5 s later. A fresh data dir in /tmp each run.
N=$1 PORT=${PORT:-9950}; w=$(mktemp -d /tmp/memload.XXXX)
cat >"$w/put.lua" <<'LUA'
local counter = 0
local value = "value=" .. string.rep("x", 64)
local id = 0
setup = function(thread) thread:set("id", id); id = id + 1 end
request = function()
  counter = counter + 1
  return wrk.format("PUT", "/v2/keys/mem/t" .. id .. "k" .. counter,
    {["Content-Type"] = "application/x-www-form-urlencoded"}, value)
end
LUA
if [ "$(basename $N)" = etcd ]; then X=--enable-v2=true; else X="${EXTRA:---enable-pprof}"; fi
"$N" --name m --data-dir "$w/d" --listen-client-urls http://127.0.0.1:$PORT --advertise-client-urls http://127.0.0.1:$PORT \
  --listen-peer-urls http://127.0.0.1:$((PORT+1)) --initial-advertise-peer-urls http://127.0.0.1:$((PORT+1)) --initial-cluster m=http://127.0.0.1:$((PORT+1)) $X >"$w/log" 2>&1 &
pid=$!; for i in $(seq 1 50); do curl -sf -XPUT http://127.0.0.1:$PORT/v2/keys/x -d value=1 >/dev/null && break; sleep 0.1; done
echo "idle: $(grep VmRSS /proc/$pid/status)"
# wrk cannot stop at N requests; run until the count is reached
(while kill -0 $pid 2>/dev/null; do echo "$(date +%s.%N | cut -c8-13) $(awk '/VmRSS/{print $2}' /proc/$pid/status)"; sleep 0.05; done >$w/rss) & sp=$!
wrk -t2 -c64 -d60s -s $w/put.lua http://127.0.0.1:$PORT >$w/wrk.out 2>&1 & wp=$!
while :; do n=$(curl -s http://127.0.0.1:$PORT/v2/stats/store | grep -o '"setsSuccess":[0-9]*' | cut -d: -f2); [ "${n:-0}" -ge 100000 ] && break; sleep 0.05; done
kill -INT $wp; while kill -0 $wp 2>/dev/null; do sleep 0.05; done
kill $sp; echo "rss samples (s kB):"; awk 'NR%4==0' $w/rss | tr "\n" " "; echo
echo "after $n sets: $(grep -E 'VmRSS|VmHWM' /proc/$pid/status | tr '\n' ' ')"
[ -n "${PROF:-}" ] && curl -s -o $PROF "http://127.0.0.1:$PORT/debug/pprof/heap" && cp /proc/$pid/smaps ${PROF%.pb}.smaps && curl -s "http://127.0.0.1:$PORT/debug/pprof/heap?debug=1" | grep "^# " > ${PROF%.pb}.memstats
sleep 5; echo "5s later: $(grep -E 'VmRSS|VmHWM' /proc/$pid/status | tr '\n' ' ')"
kill $pid; while kill -0 $pid 2>/dev/null; do sleep 0.1; done; rm -rf "$w"
