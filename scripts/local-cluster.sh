#!/usr/bin/env bash
# local-cluster.sh: a three-member etcdlite cluster on 127.0.0.1, for trying
# clusters out on one machine.
#
#   scripts/local-cluster.sh start      # build, then start m1 m2 m3 (clients on 22379, 22389, 22399)
#   scripts/local-cluster.sh add m4     # add a fourth member through the members API and start it
#   scripts/local-cluster.sh remove m2  # remove a member (it stops by itself)
#   scripts/local-cluster.sh status     # member list and health
#   scripts/local-cluster.sh stop       # stop every member (data stays in ./local-cluster)
#   scripts/local-cluster.sh clean      # stop and delete the data
#
# Member mN listens for clients on 22379+10*(N-1) and for peers on that + 1.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=local-cluster
bin=$dir/etcdlite
client() { echo "http://127.0.0.1:$((22379 + 10 * ($1 - 1)))"; }
peer() { echo "http://127.0.0.1:$((22380 + 10 * ($1 - 1)))"; }
num() { echo "${1#m}"; }

run() { # run NAME INITIAL_CLUSTER STATE
  local n; n=$(num "$1")
  mkdir -p "$dir"
  "$bin" --name "$1" --data-dir "$dir/$1.etcd" \
    --listen-client-urls "$(client "$n")" --advertise-client-urls "$(client "$n")" \
    --listen-peer-urls "$(peer "$n")" --initial-advertise-peer-urls "$(peer "$n")" \
    --initial-cluster "$2" --initial-cluster-state "$3" --initial-cluster-token local-cluster \
    >>"$dir/$1.log" 2>&1 &
  echo $! >"$dir/$1.pid"
  echo "started $1: client $(client "$n"), peer $(peer "$n"), log $dir/$1.log"
}

endpoints() {
  local e=""
  for f in "$dir"/m*.pid; do
    [ -e "$f" ] || continue
    local m; m=$(basename "$f" .pid)
    kill -0 "$(cat "$f")" 2>/dev/null && e="$e${e:+,}$(client "$(num "$m")")"
  done
  echo "$e"
}

case "${1:-}" in
  start)
    mkdir -p "$dir"
    go build -o "$bin" .
    cluster="m1=$(peer 1),m2=$(peer 2),m3=$(peer 3)"
    for m in m1 m2 m3; do run "$m" "$cluster" new; done
    for _ in $(seq 1 150); do curl -sf "$(client 1)/v2/members" >/dev/null && break; sleep 0.1; done
    curl -s "$(client 1)/v2/members"; echo
    ;;
  add)
    m=${2:?member name like m4}; n=$(num "$m")
    ep=$(endpoints); first=${ep%%,*}
    curl -s -XPOST "$first/v2/members" -H 'Content-Type: application/json' -d "{\"peerURLs\":[\"$(peer "$n")\"]}"; echo
    cluster=$(curl -s "$first/v2/members" | python3 -c '
import json, sys
ms = json.load(sys.stdin)["members"]
print(",".join("%s=%s" % (m["name"] or sys.argv[1], u) for m in ms for u in m["peerURLs"]))' "$m")
    run "$m" "$cluster" existing
    ;;
  remove)
    m=${2:?member name}; ep=$(endpoints); first=${ep%%,*}
    id=$(curl -s "$first/v2/members" | python3 -c '
import json, sys
print([m["id"] for m in json.load(sys.stdin)["members"] if m["name"] == sys.argv[1]][0])' "$m")
    curl -s -XDELETE "$first/v2/members/$id" -o /dev/null -w "remove $m ($id): HTTP %{http_code}\n"
    ;;
  status)
    ep=$(endpoints)
    ETCDCTL_API=2 etcdctl --endpoints "$ep" member list 2>/dev/null || curl -s "${ep%%,*}/v2/members"
    ETCDCTL_API=2 etcdctl --endpoints "$ep" cluster-health 2>/dev/null || true
    ;;
  stop)
    for f in "$dir"/m*.pid; do
      [ -e "$f" ] || continue
      kill "$(cat "$f")" 2>/dev/null || true
      rm -f "$f"
    done
    ;;
  clean)
    "$0" stop; rm -rf "$dir"
    ;;
  *)
    sed -n '2,13p' "$0"; exit 2
    ;;
esac
