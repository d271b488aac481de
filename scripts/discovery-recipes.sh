#!/usr/bin/env bash
# discovery-recipes.sh: runs the README's operations recipes (bootstrap through a
# discovery token, the fallback to a proxy, --discovery-fallback exit, a
# proxy per host with a member killed behind it, a readonly proxy) with one
# server binary, and prints what each step gave. Run it once with etcdlite
# and once with etcd 3.4 to compare:
#
#   go build -o etcdlite . && scripts/discovery-recipes.sh ./etcdlite
#   scripts/discovery-recipes.sh /usr/bin/etcd
#
# Everything listens on 127.0.0.1, ports BASE..BASE+99 (BASE=15200 unless
# set); data in a temporary directory removed at the end.
set -uo pipefail
bin=$(realpath "$1")
base=${BASE:-15200}
work=$(mktemp -d)
cd "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; cd /; rm -rf "$work"; }
trap cleanup EXIT
extra=()
[[ "$(basename "$bin")" == etcd ]] && extra=(--enable-v2=true)
ctl() { ETCDCTL_API=2 etcdctl "$@"; }
until_ok() { # until_ok CMD...: retry for up to 20 s
  for _ in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "gave up waiting for: $*"
}
c() { echo "http://127.0.0.1:$((base + $1))"; } # client URL of slot N
p() { echo "http://127.0.0.1:$((base + $1 + 1))"; } # peer URL of slot N
start() { # start NAME SLOT ARGS...: a server in the background
  local name=$1 slot=$2; shift 2
  "$bin" "${extra[@]}" --name "$name" --data-dir "$name.etcd" \
    --listen-client-urls "$(c "$slot")" --advertise-client-urls "$(c "$slot")" \
    --listen-peer-urls "$(p "$slot")" --initial-advertise-peer-urls "$(p "$slot")" "$@" >"$name.log" 2>&1 &
  pids+=($!)
  eval "pid_$name=$!"
}

echo "== 1. a discovery service (any etcd v2 keys API) and a token of size 3"
start disc 0
until_ok curl -sf "$(c 0)/health"
token=$(cat /proc/sys/kernel/random/uuid)
durl="$(c 0)/v2/keys/_etcd/registry/$token"
curl -s -XPUT "$durl/_config/size" -d value=3 | sed 's/"modifiedIndex".*//'
echo

echo "== 2. three members bootstrap through it"
for i in 1 2 3; do start "infra$i" $((10 * i)) --discovery "$durl"; done
until_ok ctl --endpoints "$(c 10)" cluster-health
ctl --endpoints "$(c 10)" member list | sed 's/^[0-9a-f]*: //' | sort
ctl --endpoints "$(c 10)" cluster-health | tail -1
curl -s "$durl" | grep -o '"key":"/_etcd/registry/'"$token"'/[0-9a-f]*"' | wc -l | sed 's/^/registered: /'

echo "== 3. a fourth member finds the token full: it becomes a proxy"
start infra4 40 --discovery "$durl"
until_ok curl -sf "$(c 40)/health"
ctl --endpoints "$(c 40)" set /via-fallback-proxy ok
ctl --endpoints "$(c 20)" get /via-fallback-proxy
echo "infra4 data dir: $(cd infra4.etcd && find . -type f | sort | tr '\n' ' ')"
cat infra4.etcd/proxy/cluster; echo

echo "== 4. a fifth with --discovery-fallback exit stops"
"$bin" "${extra[@]}" --name infra5 --data-dir infra5.etcd --listen-client-urls "$(c 50)" --advertise-client-urls "$(c 50)" \
  --listen-peer-urls "$(p 50)" --initial-advertise-peer-urls "$(p 50)" --discovery "$durl" --discovery-fallback exit >infra5.log 2>&1
echo "exit status $?"
grep -o 'failed to join discovery cluster (.*' infra5.log | tail -1

echo "== 5. a proxy on this host, in front of the members"
"$bin" "${extra[@]}" --proxy on --name proxy0 --data-dir proxy0.etcd --listen-client-urls "$(c 60)" \
  --initial-cluster "infra1=$(p 10),infra2=$(p 20),infra3=$(p 30)" >proxy0.log 2>&1 &
pids+=($!)
until_ok curl -sf "$(c 60)/health"
ctl --endpoints "$(c 60)" set /via-proxy 1
ctl --endpoints "$(c 60)" member list | wc -l | sed 's/^/members seen through the proxy: /'
curl -s "$(c 60)/v2/config/local/proxy" | tr ',' '\n' | grep -c http | sed 's/^/proxy endpoints: /'
leader=$(ctl --endpoints "$(c 60)" member list | grep isLeader=true | sed 's/.*name=\(infra[0-9]\).*/\1/')
echo "-- the leader killed (SIGTERM)"
eval kill "\$pid_$leader"
sleep 0.2
( curl -s -m 20 "$(c 60)/v2/keys/watched?wait=true" >watch.out ) &
sleep 0.5
ok=0
for i in $(seq 1 10); do
  if ctl --endpoints "$(c 60)" set /watched "v$i" >/dev/null 2>&1; then ok=$((ok + 1)); fi
done
echo "writes through the proxy with the old leader down: $ok of 10 acknowledged"
ctl --endpoints "$(c 60)" get /watched
ctl --endpoints "$(c 60)" member list | grep -c isLeader=true | sed 's/^/members that lead: /'
sleep 0.5
echo "the watch through the proxy saw: $(grep -o '"action":"[a-z]*"' watch.out || echo nothing)"

echo "== 6. a readonly proxy refuses writes"
"$bin" "${extra[@]}" --proxy readonly --name proxy1 --data-dir proxy1.etcd --listen-client-urls "$(c 70)" \
  --initial-cluster "infra1=$(p 10),infra2=$(p 20),infra3=$(p 30)" >proxy1.log 2>&1 &
pids+=($!)
until_ok curl -sf "$(c 70)/health"
curl -s -o /dev/null -w 'PUT through the readonly proxy: %{http_code}, %{size_download} bytes\n' -XPUT "$(c 70)/v2/keys/ro" -d value=1
ctl --endpoints "$(c 70)" get /via-proxy
