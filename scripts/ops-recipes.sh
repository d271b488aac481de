#!/usr/bin/env bash
# Runs the operations guide's recipes (README, "Operations guide": backup
# and restore, losing a majority, metrics) against etcdlite or, with
# ETCD=1, against etcd 3.4 (etcd --enable-v2=true and etcdctl backup), on
# 127.0.0.1 ports PORT..PORT+99 (default 14400) with data in DIR (default
# ./ops-recipes). It prints each step's command and outcome.
#
#   go build -o etcdlite . && scripts/ops-recipes.sh
#   ETCD=1 scripts/ops-recipes.sh
set -u
BIN=${BIN:-./etcdlite}
PORT=${PORT:-14400}
DIR=${DIR:-./ops-recipes}
export ETCDCTL_API=2
if [ "${ETCD:-0}" = 1 ]; then
	SERVER=(etcd --enable-v2=true)
	BACKUP=(etcdctl backup)
else
	SERVER=("$BIN")
	BACKUP=("$BIN" backup)
fi
rm -rf "$DIR" && mkdir -p "$DIR" && cd "$DIR" || exit 1
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT
step() { echo; echo "\$ $*"; "$@"; echo "(exit $?)"; }
client() { echo "http://127.0.0.1:$((PORT + 10 * $1 + 1))"; }
peer() { echo "http://127.0.0.1:$((PORT + 10 * $1))"; }
# member NAME N DATADIR EXTRA...: start member NAME on ports of slot N
declare -A pidof
member() {
	local name=$1 n=$2 data=$3
	shift 3
	"${SERVER[@]}" --name "$name" --data-dir "$data" \
		--listen-client-urls "$(client "$n")" --advertise-client-urls "$(client "$n")" \
		--listen-peer-urls "$(peer "$n")" --initial-advertise-peer-urls "$(peer "$n")" \
		--initial-cluster-token ops-recipes "$@" >>"$name.log" 2>&1 &
	pidof[$name]=$!
	pids+=($!)
}
waitfor() { for _ in $(seq 100); do curl -sf "$1/v2/keys/" >/dev/null && return 0; sleep 0.1; done; echo "no answer from $1"; return 1; }
ctl() { etcdctl --endpoints "$(client "$1")" "${@:2}"; }

echo "=== backup and restore ==="
member solo 1 solo.etcd --initial-cluster "solo=$(peer 1)" --snapshot-count 100
waitfor "$(client 1)"
for i in $(seq 1 300); do curl -s -XPUT "$(client 1)/v2/keys/app/k$i" -d value="v$i" >/dev/null; done
step "${BACKUP[@]}" --data-dir solo.etcd --backup-dir backup.etcd
if [ "${ETCD:-0}" != 1 ]; then
	step "$BIN" verify --data-dir backup.etcd
	mkdir -p http-backup.etcd
	step sh -c "curl -s $(client 1)/v2/backup | tar -x -C http-backup.etcd"
fi
kill "${pidof[solo]}"; wait "${pidof[solo]}" 2>/dev/null
rm -rf solo.etcd
member solo 1 backup.etcd --initial-cluster "solo=$(peer 1)" --force-new-cluster
waitfor "$(client 1)"
step ctl 1 get /app/k300
step ctl 1 member list
echo "keys under /app: $(ctl 1 ls /app | wc -l)"
kill "${pidof[solo]}"; wait "${pidof[solo]}" 2>/dev/null
if [ "${ETCD:-0}" != 1 ]; then
	member solo 1 http-backup.etcd --initial-cluster "solo=$(peer 1)" --force-new-cluster
	waitfor "$(client 1)"
	echo "from the HTTP backup: keys under /app: $(ctl 1 ls /app | wc -l)"
	kill "${pidof[solo]}"; wait "${pidof[solo]}" 2>/dev/null
fi

echo; echo "=== losing a majority ==="
IC="a=$(peer 2),b=$(peer 3),c=$(peer 4)"
member a 2 a.etcd --initial-cluster "$IC"
member b 3 b.etcd --initial-cluster "$IC"
member c 4 c.etcd --initial-cluster "$IC"
waitfor "$(client 2)"
step ctl 2 set /config/answer 42
# b and c are lost for good
kill -9 "${pidof[b]}" "${pidof[c]}"; wait "${pidof[b]}" "${pidof[c]}" 2>/dev/null
rm -rf b.etcd c.etcd
step ctl 2 --timeout 3s set /config/answer 43
kill "${pidof[a]}"; wait "${pidof[a]}" 2>/dev/null
member a 2 a.etcd --initial-cluster "$IC" --force-new-cluster
waitfor "$(client 2)"
step ctl 2 get /config/answer
step ctl 2 member list
step ctl 2 set /config/answer 44
# add b back, with an empty data dir
step ctl 2 member add b "$(peer 3)"
member b 3 b.etcd --initial-cluster "a=$(peer 2),b=$(peer 3)" --initial-cluster-state existing
waitfor "$(client 3)"
sleep 1
step ctl 3 get /config/answer
step ctl 2 cluster-health

echo; echo "=== metrics ==="
kill "${pidof[b]}"; wait "${pidof[b]}" 2>/dev/null
member m 5 m.etcd --initial-cluster "m=$(peer 5)" --listen-metrics-urls "http://127.0.0.1:$((PORT + 59))"
waitfor "$(client 5)"
ctl 5 set /x 1 >/dev/null
step sh -c "curl -s http://127.0.0.1:$((PORT + 59))/metrics | grep -E '^etcd_(server_has_leader|server_proposals_committed_total|disk_wal_fsync_duration_seconds_count|http_received_total)'"
step curl -s "http://127.0.0.1:$((PORT + 59))/health"
