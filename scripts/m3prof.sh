#!/bin/bash
# scripts/m3prof.sh: where a 3-member cluster's CPU goes, member by member.
#
#   scripts/m3prof.sh ./etcdlite OUTDIR              # 64 writers on the leader
#   ROLE=follower scripts/m3prof.sh ./etcdlite OUTDIR  # on a follower (its writes are forwarded)
#   PERF=1 scripts/m3prof.sh ./etcdlite OUTDIR       # system calls by kind instead of profiles
#
# Starts 3 members on 127.0.0.1 (clients 9800, 9802, 9804; peers one above) with
# --enable-pprof in a temp dir, runs wrk (scripts/put.lua, 64 connections) for 12 s and
# takes a 10 s CPU profile of every member meanwhile (OUTDIR/m<i>.prof; read them with
# `go tool pprof -top BINARY OUTDIR/m0.prof`), or with PERF=1 counts each member's system
# calls (OUTDIR/perf.m<i>.txt). Prints the rate, then per member its role, CPU per write
# (user + system, /proc/<pid>/stat) and fdatasyncs per write (/metrics), and with PERF=1
# the system calls per write.
set -u
EXE=$(readlink -f "$1") OUT=$2 ROLE=${ROLE:-leader}
mkdir -p "$OUT"
w=$(mktemp -d /tmp/m3prof.XXXX)
lua=$(readlink -f "$(dirname "$0")/put.lua")
cl=""; for i in 0 1 2; do cl="$cl${cl:+,}m$i=http://127.0.0.1:$((9801 + 2 * i))"; done
pids=()
for i in 0 1 2; do
	"$EXE" --name m$i --data-dir "$w/m$i" --enable-pprof \
		--listen-client-urls http://127.0.0.1:$((9800 + 2 * i)) --advertise-client-urls http://127.0.0.1:$((9800 + 2 * i)) \
		--listen-peer-urls http://127.0.0.1:$((9801 + 2 * i)) --initial-advertise-peer-urls http://127.0.0.1:$((9801 + 2 * i)) \
		--initial-cluster "$cl" --initial-cluster-token m3prof >"$w/m$i.log" 2>&1 &
	pids+=($!)
done
cleanup() {
	kill "${pids[@]}" 2>/dev/null
	for p in "${pids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
	rm -rf "$w"
}
trap cleanup EXIT
for _ in $(seq 150); do curl -sf -XPUT http://127.0.0.1:9800/v2/keys/warm -d value=x >/dev/null && break; sleep 0.1; done
sleep 1
L="" F=""
for i in 0 1 2; do
	st=$(curl -s http://127.0.0.1:$((9800 + 2 * i))/v2/stats/self)
	[[ $st == *StateLeader* ]] && L=$i
	[[ $st == *StateFollower* ]] && F=$i
done
T=$L; [ "$ROLE" = follower ] && T=$F
[ -n "$T" ] || { echo "no $ROLE found" >&2; exit 2; }
P=$((9800 + 2 * T))
echo "leader m$L, load on m$T"
wrk -t2 -c64 -d2s -s "$lua" http://127.0.0.1:$P >/dev/null
cpu() { awk '{print $14 + $15}' /proc/$1/stat; }
fsyncs() { curl -s http://127.0.0.1:$1/metrics | awk '/^etcd_disk_wal_fsync_duration_seconds_count/ {print $2}'; }
declare -a c0 c1 f0 f1
for i in 0 1 2; do c0[$i]=$(cpu "${pids[$i]}"); f0[$i]=$(fsyncs $((9800 + 2 * i))); done
wrk -t2 -c64 -d12s -s "$lua" http://127.0.0.1:$P >"$OUT/wrk.txt" &
wp=$!
sleep 1
ev=$(printf 'syscalls:sys_enter_%s,' read write futex nanosleep epoll_pwait pwrite64 fdatasync sched_yield); ev=${ev%,}
sp=()
for i in 0 1 2; do
	if [ -n "${PERF:-}" ]; then
		perf stat -e "$ev" -p "${pids[$i]}" -o "$OUT/perf.m$i.txt" -- sleep 10 &
	else
		curl -s -o "$OUT/m$i.prof" "http://127.0.0.1:$((9800 + 2 * i))/debug/pprof/profile?seconds=10" &
	fi
	sp+=($!)
done
wait "$wp" "${sp[@]}"
for i in 0 1 2; do c1[$i]=$(cpu "${pids[$i]}"); f1[$i]=$(fsyncs $((9800 + 2 * i))); done
n=$(awk '/requests in/ {print $1}' "$OUT/wrk.txt")
grep Requests/sec "$OUT/wrk.txt"
tick=$(getconf CLK_TCK)
for i in 0 1 2; do
	role=follower; [ "$i" = "$L" ] && role=leader
	awk -v m=m$i -v r=$role -v c=$((c1[i] - c0[i])) -v f="$(awk -v a="${f1[$i]}" -v b="${f0[$i]}" 'BEGIN {print a - b}')" -v n="$n" -v t="$tick" \
		'BEGIN {printf "%s %-8s cpu_us/write=%.1f fsyncs/write=%.4f\n", m, r, c * 1e6 / t / n, f / n}'
	if [ -n "${PERF:-}" ]; then # perf counted 10 of wrk's 12 s
		awk -v n="$n" '/syscalls:/ {sub("syscalls:sys_enter_", "", $2); printf "   %s/write=%.3f\n", $2, $1 / (n * 10 / 12)}' "$OUT/perf.m$i.txt"
	fi
done
