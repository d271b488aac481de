#!/bin/bash
# record.sh: re-record the etcd 3.4 responses of testdata/auth/*.json, each
# scenario against a fresh single-member etcd (--enable-v2=true), then
# replay them against etcdlite (go test -run TestAuthGolden).
#
#   testdata/auth/record.sh              # every scenario
#   testdata/auth/record.sh 'users|keys' # only these
#
# PORT_BASE (default 11379) is the first of the two ports each etcd uses.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
only=${1:-}
port=${PORT_BASE:-11379}
command -v etcd >/dev/null || { echo "record.sh: etcd not found" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/auth-record.XXXXXX")
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cd "$root"
for f in "$here"/*.json; do
	name=$(basename "$f" .json)
	if [ -n "$only" ] && ! [[ $name =~ ^($only)$ ]]; then continue; fi
	cp=$port pp=$((port + 1))
	etcd --name ref --data-dir "$work/$name" --enable-v2=true \
		--listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
		--listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
		--initial-cluster "ref=http://127.0.0.1:$pp" >"$work/$name.log" 2>&1 &
	pid=$!
	for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$cp/health" >/dev/null 2>&1 && break; sleep 0.1; done
	sleep 1 # let the start-up writes settle
	echo "recording $name from $(etcd --version | head -1)"
	go test -count=1 -run "TestAuthGolden/^${name}\$" -auth.record="http://127.0.0.1:$cp" .
	kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
go test -count=1 -run TestAuthGolden .
