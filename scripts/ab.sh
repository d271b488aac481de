#!/bin/bash
# scripts/ab.sh: an interleaved A/B of two etcdlite binaries on this machine.
#
#   scripts/ab.sh OLD NEW                 # one member each
#   MEMBERS=3 scripts/ab.sh OLD NEW       # 3-member clusters, load on each cluster's leader
#   MEMBERS=3 ROLE=follower scripts/ab.sh OLD NEW
#
# Both servers run side by side (A on ports 9600+, B on 9640+), fresh data dirs in /tmp,
# and the runs alternate A B, B A, A B, ... so that the machine's noise, and any trend over the
# run, falls on both alike.
# Each row: round, binary, workload, requests/s, CPU per request in microseconds (user +
# system time of all members, from /proc/<pid>/stat), and with perf installed the system
# calls and context switches per request (all members). Judge by the medians over the
# rounds; on a 2-core machine shared with other work, throughput alone says little.
#   ROUNDS=5 DUR=4 WORKLOADS="write_c1 write_c64 write_c256 read_c64"
set -u
A=$(readlink -f "$1") B=$(readlink -f "$2")
ROUNDS=${ROUNDS:-5} DUR=${DUR:-4} MEMBERS=${MEMBERS:-1} ROLE=${ROLE:-leader}
WORKLOADS=${WORKLOADS:-"write_c64 write_c256 read_c64"}
w=$(mktemp -d /tmp/ab.XXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
	rm -rf "$w"
}
trap cleanup EXIT
cp "$(dirname "$0")/put.lua" "$w/put.lua"

# start NAME EXE BASE: MEMBERS members, client port BASE+2i, peer port BASE+2i+1
start() {
	local name=$1 exe=$2 base=$3 cl="" i
	for i in $(seq 0 $((MEMBERS - 1))); do cl="$cl${cl:+,}$name$i=http://127.0.0.1:$((base + 2 * i + 1))"; done
	for i in $(seq 0 $((MEMBERS - 1))); do
		"$exe" --name "$name$i" --data-dir "$w/$name$i" \
			--listen-client-urls http://127.0.0.1:$((base + 2 * i)) --advertise-client-urls http://127.0.0.1:$((base + 2 * i)) \
			--listen-peer-urls http://127.0.0.1:$((base + 2 * i + 1)) --initial-advertise-peer-urls http://127.0.0.1:$((base + 2 * i + 1)) \
			--initial-cluster "$cl" --initial-cluster-token "ab-$name" >"$w/$name$i.log" 2>&1 &
		pids+=($!)
	done
}
start a "$A" 9600
start b "$B" 9640
for i in $(seq 1 150); do
	curl -sf -XPUT http://127.0.0.1:9600/v2/keys/warm -d value=x >/dev/null &&
		curl -sf -XPUT http://127.0.0.1:9640/v2/keys/warm -d value=x >/dev/null && break
	sleep 0.1
done
sleep 1

# pick BASE: the client port of the member that takes the load
pick() {
	local base=$1 i st
	[ "$MEMBERS" = 1 ] && { echo "$base"; return; }
	for i in $(seq 0 $((MEMBERS - 1))); do
		st=$(curl -s http://127.0.0.1:$((base + 2 * i))/v2/stats/self | grep -o '"state":"[A-Za-z]*"')
		if [ "$ROLE" = leader ] && [[ $st == *Leader* ]]; then echo $((base + 2 * i)); return; fi
		if [ "$ROLE" = follower ] && [[ $st == *Follower* ]]; then echo $((base + 2 * i)); return; fi
	done
	echo "no $ROLE found in cluster at $base" >&2
	exit 2
}
PA=$(pick 9600) PB=$(pick 9640)
echo "A=$A (port $PA), B=$B (port $PB), members=$MEMBERS, load on the $ROLE"
for p in $PA $PB; do
	curl -s -XPUT http://127.0.0.1:$p/v2/keys/bench/k0 -d value=$(head -c 64 /dev/zero | tr '\0' x) >/dev/null
	wrk -t2 -c64 -d1s -s "$w/put.lua" http://127.0.0.1:$p >/dev/null 2>&1
done
cpu() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done; echo $t; }
tick=$(getconf CLK_TCK)
perf=""; command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -p $$ -- true >/dev/null 2>&1 && perf=1
for r in $(seq 1 "$ROUNDS"); do
	order="A B"
	[ $((r % 2)) = 0 ] && order="B A" # A B B A A B ...: a trend over the run (the disk, the page cache) falls on both alike
	for ab in $order; do
		if [ $ab = A ]; then p=$PA mine=("${pids[@]:0:$MEMBERS}"); else p=$PB mine=("${pids[@]:$MEMBERS:$MEMBERS}"); fi
		for wl in $WORKLOADS; do
			c=${wl#*_c}
			t=2; [ "$c" -lt 2 ] && t=1 # wrk wants a connection per thread at least
			args=(-t"$t" -c"$c" -d"${DUR}s")
			if [[ $wl == write* ]]; then args+=(-s "$w/put.lua"); u=http://127.0.0.1:$p; else u=http://127.0.0.1:$p/v2/keys/bench/k0; fi
			[ -n "$perf" ] && { perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$(IFS=,; echo "${mine[*]}")" -o "$w/perf" -- sleep "$DUR" & pp=$!; }
			c0=$(cpu "${mine[@]}")
			out=$(wrk "${args[@]}" "$u" 2>/dev/null)
			c1=$(cpu "${mine[@]}")
			extra=""
			if [ -n "$perf" ]; then
				while kill -0 $pp 2>/dev/null; do sleep 0.05; done
				extra=$(awk -F, -v n="$(echo "$out" | awk '/requests in/ {print $1}')" \
					'/raw_syscalls/ {s=$1} /context-switches/ {c=$1} END {printf " syscalls/req=%.2f cs/req=%.2f", s/n, c/n}' "$w/perf")
			fi
			n=$(echo "$out" | awk '/requests in/ {print $1}')
			rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
			echo "$r $ab $wl rps=$rps cpu_us/req=$(awk -v c=$((c1 - c0)) -v n="$n" -v t="$tick" 'BEGIN{printf "%.1f", c*1e6/t/n}')$extra" | tee -a "$w/rows"
		done
	done
done

# medians: one row per workload, A and B side by side, and B/A
median() { sort -n | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else printf "%.2f\n", (v[NR/2]+v[NR/2+1])/2}'; }
echo
printf '%-11s %-16s %10s %10s %6s\n' workload metric A B B/A
for wl in $WORKLOADS; do
	for m in rps cpu_us/req syscalls/req cs/req; do
		grep -q "$m=" "$w/rows" || continue
		a=$(awk -v wl="$wl" -v m="$m" '$2=="A" && $3==wl {for (i=4;i<=NF;i++) if (index($i, m"=")==1) print substr($i, length(m)+2)}' "$w/rows" | median)
		b=$(awk -v wl="$wl" -v m="$m" '$2=="B" && $3==wl {for (i=4;i<=NF;i++) if (index($i, m"=")==1) print substr($i, length(m)+2)}' "$w/rows" | median)
		printf '%-11s %-16s %10s %10s %6.3f\n' "$wl" "$m" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN{print (a>0)?b/a:0}')"
	done
done
