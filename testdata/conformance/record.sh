#!/bin/bash
# record.sh: re-record the golden responses of testdata/conformance/*.json from a
# fresh reference etcd 3.4 (v2 API enabled), then replay the new golden files
# against a second fresh etcd, which must pass: that checks the normaliser.
#
#   testdata/conformance/record.sh            # every scenario
#   testdata/conformance/record.sh 'seed|ttl' # only these (a go test -run pattern)
#
# Needs go and etcd (Debian: apt-get install etcd-server).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
only=${1:-}
command -v etcd >/dev/null || { echo "record.sh: etcd not found (apt-get install etcd-server)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/conf-record.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

freeport() {
	if command -v python3 >/dev/null; then
		python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
	else
		echo $((20000 + RANDOM % 20000))
	fi
}

# start_etcd NAME: starts a fresh single-member etcd named t, prints its client URL
start_etcd() {
	local dir="$work/$1" cp pp
	mkdir -p "$dir"
	for attempt in 1 2 3; do
		cp=$(freeport)
		pp=$(freeport)
		etcd --name t --data-dir "$dir/data$attempt" --enable-v2=true \
			--listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
			--listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
			--initial-cluster "t=http://127.0.0.1:$pp" >"$dir/log$attempt" 2>&1 &
		pids+=($!)
		for _ in $(seq 1 100); do
			if curl -sf "http://127.0.0.1:$cp/health" >/dev/null 2>&1; then
				# let the start-up writes (membership, cluster version) settle
				local a b
				a=$(curl -s -o /dev/null -D - "http://127.0.0.1:$cp/v2/keys/" | tr -d '\r' | sed -n 's/^X-Etcd-Index: //Ip')
				sleep 1
				b=$(curl -s -o /dev/null -D - "http://127.0.0.1:$cp/v2/keys/" | tr -d '\r' | sed -n 's/^X-Etcd-Index: //Ip')
				if [ -n "$a" ] && [ "$a" = "$b" ]; then
					echo "http://127.0.0.1:$cp"
					return 0
				fi
			fi
			sleep 0.1
		done
		kill "${pids[-1]}" 2>/dev/null || true
		echo "etcd did not start (attempt $attempt):" >&2
		tail -5 "$dir/log$attempt" >&2
	done
	return 1
}

run=(-run "TestConformance${only:+/($only)}")
cd "$root"
url=$(start_etcd rec)
echo "recording from $url ($(etcd --version | head -1))"
go test -count=1 "${run[@]}" -conf.record="$url" .

url2=$(start_etcd check)
echo "replaying against a second fresh etcd at $url2"
go test -count=1 "${run[@]}" -conf.target="$url2" .
