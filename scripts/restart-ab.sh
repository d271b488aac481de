#!/bin/bash
# restart-ab.sh: time restarts of one or more etcdlite binaries on copies of
# one data dir (kept by KEEP=DIR scripts/restart-bench.sh), interleaved
# (A B A B ... then B A B A ..., so that a trend on a noisy machine falls on
# each binary alike): each restart is a kill -9 of the running member and a
# start on its own copy, timed until a GET of KEY answers 200, with the CPU
# time and minor page faults the process took until then; the resident
# memory WAIT seconds after that read and the peak are reported too.
#
#   DIR=/tmp/keep ROUNDS=10 scripts/restart-ab.sh ./old ./new
#
# PORT (24379) is the client port, the peer port one above; NAME (etcdlite)
# the member the data dir belongs to; KEY (k999999) the key read; WORK
# (a temporary dir under TMPDIR) holds the copies.
set -u
: "${DIR:?DIR= a kept data dir}"
ROUNDS=${ROUNDS:-10}; PORT=${PORT:-24379}; NAME=${NAME:-etcdlite}; KEY=${KEY:-k999999}; WAIT=${WAIT:-4}
work=$(mktemp -d "${TMPDIR:-/tmp}/restartab.XXXX")
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
c=http://127.0.0.1:$PORT p=http://127.0.0.1:$((PORT + 1))
bins=()
for b in "$@"; do bins+=("$(readlink -f "$b")"); done
# --sparse=always: the preallocated, never written end of the last segment
# stays a hole, as in the member's own data dir (a plain copy writes zeros)
for i in "${!bins[@]}"; do cp -a --sparse=always "$DIR" "$work/d$i"; done

# first_read: seconds until GET $c/v2/keys/$KEY answers 200.
first_read() {
  local t0=$1 t1
  for _ in $(seq 1 6000); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$c/v2/keys/$KEY")" = 200 ]; then
      t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}'; return 0
    fi
    sleep 0.01
  done
  echo never
}

for r in $(seq 1 "$ROUNDS"); do
  order=("${!bins[@]}")
  [ $((r % 2)) = 0 ] && order=($(printf '%s\n' "${order[@]}" | tac))
  for i in "${order[@]}"; do
    t0=$(date +%s.%N)
    "${bins[$i]}" --name "$NAME" --data-dir "$work/d$i" \
      --listen-client-urls $c --advertise-client-urls $c \
      --listen-peer-urls $p --initial-advertise-peer-urls $p \
      --initial-cluster "$NAME=$p" >>"$work/log$i" 2>&1 &
    pid=$!
    took=$(first_read "$t0")
    # CPU (user + system) and minor page faults of the process until then
    read -r cpu flt < <(sed 's/.*) //' /proc/$pid/stat | awk -v hz="$(getconf CLK_TCK)" '{printf "%d %d", ($12 + $13) * 1000 / hz, $8}')
    sleep "$WAIT"
    rss=$(awk '/VmRSS/ {printf "%d", $2 / 1024}' /proc/$pid/status)
    hwm=$(awk '/VmHWM/ {printf "%d", $2 / 1024}' /proc/$pid/status)
    echo "round $r bin $i ${bins[$i]}: first read after $took s, RSS ${rss} MB $WAIT s later, cpu $cpu ms, minflt $flt, peak $hwm MB"
    kill -9 "$pid"; wait "$pid" 2>/dev/null; pid=""
  done
done | tee "$work/out"
for i in "${!bins[@]}"; do
  grep " bin $i " "$work/out" | awk '{print $9, $12, $18, $21, $23}' | sort -n |
    awk -v b="$i ${bins[$i]}" '{t[NR]=$1; m+=$2; c+=$3; f+=$4; h+=$5} END {printf "bin %s: %d restarts, first read median %.3f s (min %.3f, max %.3f), RSS mean %.0f MB, cpu mean %.0f ms, minflt mean %.0f, peak mean %.0f MB\n", b, NR, (NR%2 ? t[(NR+1)/2] : (t[NR/2]+t[NR/2+1])/2), t[1], t[NR], m/NR, c/NR, f/NR, h/NR}'
done
