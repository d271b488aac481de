#!/usr/bin/env bash
# ctl-record.sh: record the etcdctl sessions of testdata/ctl/ from a real
# etcd 3.4 and etcdctl, or replay them with any etcdctl against any server.
#
#   scripts/ctl-record.sh record
#       fresh single-member /usr/bin/etcd (--enable-v2), /usr/bin/etcdctl:
#       rewrites testdata/ctl/session.golden and session-auth.golden
#   scripts/ctl-record.sh compare SERVER ETCDCTL [MEMBERS]
#       fresh cluster of MEMBERS (1 or 3) SERVER processes (etcd or an
#       etcdlite binary: they take the same flags), the sessions run with the
#       binary ETCDCTL (e.g. etcdlite symlinked as etcdctl) and are compared
#       with the golden files
#
# Ports: members use CTL_PORT (default 16379) + 10*i for clients and +1 for
# peers, on 127.0.0.1; data in CTL_DATA (default /tmp/ctl/record).
set -euo pipefail
cd "$(dirname "$0")/.."
base=${CTL_PORT:-16379}
data=${CTL_DATA:-/tmp/ctl/record}
pids=()

stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap stop EXIT

start() { # start SERVER MEMBERS
  local server=$1 n=$2 cluster="" i
  rm -rf "$data"; mkdir -p "$data"
  for ((i = 0; i < n; i++)); do cluster="$cluster${cluster:+,}e$((i + 1))=http://127.0.0.1:$((base + 10 * i + 1))"; done
  for ((i = 0; i < n; i++)); do
    local c=http://127.0.0.1:$((base + 10 * i)) p=http://127.0.0.1:$((base + 10 * i + 1))
    "$server" --name "e$((i + 1))" --data-dir "$data/e$((i + 1))" --enable-v2=true \
      --listen-client-urls "$c" --advertise-client-urls "$c" \
      --listen-peer-urls "$p" --initial-advertise-peer-urls "$p" \
      --initial-cluster "$cluster" >"$data/e$((i + 1)).log" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$base/health" | grep -q true && return 0
    sleep 0.1
  done
  echo "the cluster did not become healthy; logs in $data" >&2
  return 1
}

session() { # session TEST ETCDCTL RECORD
  CTL_RECORD=$3 CTL_ETCDCTL=$2 CTL_ENDPOINT=http://127.0.0.1:$base \
    go test -count=1 -timeout 300s -run "^$1\$" -v . 2>&1 | grep -v "^=== RUN" | head -3000 || true
}

case "${1:-}" in
  record)
    for t in TestCtlSession TestCtlSessionAuth; do
      start /usr/bin/etcd 1
      session "$t" /usr/bin/etcdctl 1
      stop
    done
    ;;
  compare)
    server=${2:?server binary}; ctl=${3:?etcdctl binary}; n=${4:-1}
    for t in TestCtlSession TestCtlSessionAuth; do
      start "$server" "$n"
      session "$t" "$ctl" 0
      stop
    done
    ;;
  *)
    sed -n '2,/^set -e/p' "$0" | sed '$d'
    exit 2
    ;;
esac
