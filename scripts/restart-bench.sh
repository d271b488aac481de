#!/bin/bash
# restart-bench.sh: fill a fresh one-member server with KEYS distinct keys
# (/v2/keys/k<N>, 64-byte values) through wrk, report its resident memory,
# kill it with SIGKILL, restart it on the same data dir and time how long it
# takes until a GET of a key written by the load answers 200. Then the same
# against etcd 3.4 (Debian's etcd-server, --enable-v2=true) unless ETCD=0.
#
#   KEYS=100000 scripts/restart-bench.sh ./etcdlite
#   KEYS=1000000 ETCD=0 ROUNDS=3 scripts/restart-bench.sh ./etcdlite
#
# REWRITE=M then overwrites k0..k<M-1>, so that the log holds up to M entries
# after the last snapshot (--snapshot-count is 100000 by default): the
# restart replays them.
# ROUNDS restarts are timed per server (each a kill -9 of the last one).
# KEEP=DIR keeps a copy of etcdlite's data dir (member "etcdlite") for
# go test -run TestRestartFromDir -restart.dir DIR -cpuprofile cpu.out .
# PORT (24379) and ETCD_PORT (25379) are the client ports (the peer port is
# one above); TMPDIR holds the data dirs.
# TARGET_FLAGS adds flags to etcdlite's command line (e.g. --snapshot-count).
# Needs wrk and curl; timings on a shared machine are noisy: repeat them.
set -u
bin=$(readlink -f "${1:-./etcdlite}")
KEYS=${KEYS:-100000}; REWRITE=${REWRITE:-0}; ROUNDS=${ROUNDS:-2}; ETCD=${ETCD:-1}; CONNS=${CONNS:-64}
PORT=${PORT:-24379}; ETCD_PORT=${ETCD_PORT:-25379}
work=$(mktemp -d "${TMPDIR:-/tmp}/restartbench.XXXX")
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

cat >"$work/fill.lua" <<'LUA'
-- each wrk thread writes keys tid, tid+threads, tid+2*threads, ... until
-- its quota is written, then reads.
local threads, quota = 0, 0
local sent = 0
local value = "value=" .. string.rep("x", 64)
local counter = 1
setup = function(thread)
  thread:set("tid", counter - 1)
  counter = counter + 1
end
init = function(args)
  threads, quota = tonumber(args[1]), tonumber(args[2])
end
request = function()
  if sent < quota then
    local k = sent * threads + tid
    sent = sent + 1
    return wrk.format("PUT", "/v2/keys/k" .. k, {["Content-Type"] = "application/x-www-form-urlencoded"}, value)
  end
  return wrk.format("GET", "/v2/keys/k0")
end
LUA

# start NAME EXE PORT [flags]: runs EXE in the background on 127.0.0.1:PORT
# (peer PORT+1) with data in $work/NAME; sets pid.
start() {
  local name=$1 exe=$2 port=$3; shift 3
  local c=http://127.0.0.1:$port p=http://127.0.0.1:$((port + 1))
  "$exe" --name "$name" --data-dir "$work/$name" \
    --listen-client-urls $c --advertise-client-urls $c \
    --listen-peer-urls $p --initial-advertise-peer-urls $p \
    --initial-cluster "$name=$p" "$@" >>"$work/$name.log" 2>&1 &
  pid=$!
}

# first_read URL KEY: seconds until GET URL/v2/keys/KEY answers 200.
first_read() {
  local t0 t1
  t0=$(date +%s.%N)
  for _ in $(seq 1 6000); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/v2/keys/$2")" = 200 ]; then
      t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}'; return 0
    fi
    sleep 0.01
  done
  echo "never"
}

rss() { awk '/VmRSS/ {printf "%d MB", $2 / 1024}' /proc/$1/status; }

# fill URL N: PUTs keys k0..k<N-1> through wrk with CONNS connections.
fill() {
  local u=$1 n=$2 threads=2 base sets
  base=$(curl -s "$u/v2/stats/store" | sed -n 's/.*"setsSuccess":\([0-9]*\).*/\1/p')
  # wrk runs for its -d however early its threads stop: stop it once the
  # store counts every write
  wrk -t$threads -c"$CONNS" -d3600s -s "$work/fill.lua" "$u" -- $threads $((n / threads)) >"$work/wrk.out" &
  local wrkpid=$!
  while kill -0 $wrkpid 2>/dev/null; do
    sets=$(curl -s "$u/v2/stats/store" | sed -n 's/.*"setsSuccess":\([0-9]*\).*/\1/p')
    [ "${sets:-0}" -ge $((base + n - 8)) ] && break # wrk may drop a request or two
    sleep 0.2
  done
  kill $wrkpid 2>/dev/null; wait $wrkpid 2>/dev/null
}

run() { # run NAME EXE PORT [flags]
  local name=$1 exe=$2 port=$3; shift 3
  local u=http://127.0.0.1:$port
  start "$name" "$exe" "$port" "$@"
  local ready; ready=$(first_read "$u" "" )
  [ "$ready" = never ] && { echo "$name did not start"; tail "$work/$name.log"; return 1; }
  local t0=$(date +%s.%N)
  fill "$u" "$KEYS"
  [ "$REWRITE" -gt 0 ] && fill "$u" "$REWRITE"
  local t1=$(date +%s.%N)
  local last=$((KEYS - 1))
  curl -sf "$u/v2/keys/k$last" >/dev/null || curl -sf "$u/v2/keys/k$((last - 1))" >/dev/null || echo "$name: k$last missing after the load"
  echo "$name: $KEYS keys (+$REWRITE rewrites) written in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s," \
    "RSS $(rss $pid) (peak $(awk '/VmHWM/ {printf "%d MB", $2 / 1024}' /proc/$pid/status))"
  sleep 2 # let a snapshot being written finish, as it would on a server that keeps running
  echo "$name: RSS 2 s after the load $(rss $pid)"
  for r in $(seq 1 "$ROUNDS"); do
    kill -9 "$pid"; wait "$pid" 2>/dev/null
    start "$name" "$exe" "$port" "$@"
    local took; took=$(first_read "$u" "k$last")
    echo "$name: restart $r: first read after ${took} s, RSS $(rss $pid)"
    sleep 1
  done
  grep -h "recovery complete\|recovered" "$work/$name.log" | tail -n $((2 * ROUNDS)) | sed "s/^/  $name log: /"
  kill -9 "$pid"; wait "$pid" 2>/dev/null; pid=""
  if [ -n "${KEEP:-}" ] && [ "$name" = etcdlite ]; then rm -rf "$KEEP"; cp -a --sparse=always "$work/$name" "$KEEP"; echo "data dir kept in $KEEP"; fi
}

echo "keys: $KEYS of 64 bytes, $REWRITE of them rewritten, $ROUNDS restarts each"
run etcdlite "$bin" "$PORT" ${TARGET_FLAGS:-}
if [ "$ETCD" = 1 ]; then
  command -v etcd >/dev/null || { echo "etcd not installed (apt-get install etcd-server)"; exit 2; }
  run etcd etcd "$ETCD_PORT" --enable-v2=true
fi
