#!/bin/bash
# scripts/lat1.sh: one writing client against two etcdlite binaries, in turn (A B, B A, ...), and
# per write the fsync's time and the server's own time beyond it.
#
#   scripts/lat1.sh OLD NEW            # ROUNDS=8 DUR=3 by default
#
# One client's rate follows the disk: here its fsync moves between 170 and 350 us from round to
# round, so a rate A/B at one client mostly measures the disk. The server's time beyond the
# fsync does not: it is the PUT duration histogram's sum minus the fsync histogram's sum over
# the same writes (etcd_http_successful_duration_seconds, etcd_disk_wal_fsync_duration_seconds
# on /metrics), divided by the writes. Each row: round, then per binary rate, mean fsync (us)
# and the time beyond it (us).
set -u
A=$(readlink -f "$1") B=$(readlink -f "$2") R=${ROUNDS:-8} D=${DUR:-3}
w=$(mktemp -d /tmp/lat1.XXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$w"; }
trap cleanup EXIT
cp "$(dirname "$0")/put.lua" "$w/put.lua"
start() { # start EXE NAME PORT
	"$1" --name m --data-dir "$w/$2" --listen-client-urls http://127.0.0.1:$3 --advertise-client-urls http://127.0.0.1:$3 \
		--listen-peer-urls http://127.0.0.1:$(($3 + 1)) --initial-advertise-peer-urls http://127.0.0.1:$(($3 + 1)) \
		--initial-cluster m=http://127.0.0.1:$(($3 + 1)) >"$w/$2.log" 2>&1 &
	pids+=($!)
}
start "$A" a 9600
start "$B" b 9610
for p in 9600 9610; do
	for i in $(seq 1 100); do curl -sf -XPUT http://127.0.0.1:$p/v2/keys/warm -d value=x >/dev/null && break; sleep 0.1; done
done
sums() { # fsync sum, fsync count, PUT duration sum
	curl -s http://127.0.0.1:$1/metrics | awk '/^etcd_disk_wal_fsync_duration_seconds_(sum|count)/ {v[$1]=$2}
		/^etcd_http_successful_duration_seconds_sum\{method="PUT"\}/ {h=$2}
		END {print v["etcd_disk_wal_fsync_duration_seconds_sum"], v["etcd_disk_wal_fsync_duration_seconds_count"], h}'
}
one() { # one PORT -> rate, fsync us, beyond us
	local s0 n0 h0 s1 n1 h1 r
	read -r s0 n0 h0 < <(sums "$1")
	r=$(wrk -t1 -c1 -d"${D}s" -s "$w/put.lua" http://127.0.0.1:$1 | awk '/Requests\/sec/ {print $2}')
	read -r s1 n1 h1 < <(sums "$1")
	awk -v r="$r" -v s="$s0" -v S="$s1" -v n="$n0" -v N="$n1" -v h="$h0" -v H="$h1" \
		'BEGIN {k = N - n; printf "%.0f %.1f %.1f", r, (S - s) / k * 1e6, ((H - h) - (S - s)) / k * 1e6}'
}
echo "A=$A B=$B; per binary: writes/s, fsync us, server us beyond the fsync"
for r in $(seq 1 "$R"); do
	if [ $((r % 2)) = 1 ]; then a=$(one 9600); b=$(one 9610); else b=$(one 9610); a=$(one 9600); fi
	echo "$r A $a B $b"
done | tee "$w/rows"
awk '{a += $5; b += $9; n++} END {printf "mean time beyond the fsync: A %.1f us, B %.1f us, B/A %.3f\n", a/n, b/n, b/a}' "$w/rows"
