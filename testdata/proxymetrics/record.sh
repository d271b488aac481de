#!/bin/sh
# record.sh: what a real etcd 3.4 proxy's /metrics shows after a fixed
# sequence of requests (TestProxyMetricsMatchEtcd replays the same sequence
# through etcdlite's proxy). Needs /usr/bin/etcd 3.4; ports 17001-17020 on
# 127.0.0.1, data under /tmp/pm/rec. Run from the repository root:
#   sh testdata/proxymetrics/record.sh
set -eu
D=/tmp/pm/rec
OUT=testdata/proxymetrics
rm -rf "$D"; mkdir -p "$D"
/usr/bin/etcd --enable-v2=true --name m1 --data-dir "$D/m1" \
  --listen-client-urls http://127.0.0.1:17001 --advertise-client-urls http://127.0.0.1:17001 \
  --listen-peer-urls http://127.0.0.1:17002 --initial-advertise-peer-urls http://127.0.0.1:17002 \
  --initial-cluster m1=http://127.0.0.1:17002 >"$D/m1.log" 2>&1 &
M=$!
sleep 2
/usr/bin/etcd --proxy on --name px --data-dir "$D/px" --initial-cluster m1=http://127.0.0.1:17002 \
  --listen-client-urls http://127.0.0.1:17010 --listen-metrics-urls http://127.0.0.1:17011 >"$D/px.log" 2>&1 &
P1=$!
/usr/bin/etcd --proxy readonly --name pr --data-dir "$D/pr" --initial-cluster m1=http://127.0.0.1:17002 \
  --listen-client-urls http://127.0.0.1:17020 >"$D/pr.log" 2>&1 &
P2=$!
trap 'kill $M $P1 $P2 2>/dev/null || true' EXIT
sleep 2
P=http://127.0.0.1:17010
R=http://127.0.0.1:17020
c() { curl -s -o /dev/null -w '%{http_code}\n' "$@"; }
{
echo "# before any request"
curl -s $P/metrics | grep -c '^etcd_proxy_' || true
echo "# the sequence (status of each answer)"
c $P/v2/keys/
c -XPUT $P/v2/keys/a -d value=1
c $P/v2/keys/a
c $P/v2/keys/nope
c -XPOST $P/v2/keys/q -d value=x
c -I $P/v2/keys/a
c -XDELETE $P/v2/keys/a
c -XPATCH $P/v2/keys/a
c -XOPTIONS $P/v2/keys/a
c $P/v2/config/local/proxy
c $P/metrics
c -XPUT "$P/v2/keys/a?prevExist=true" -d value=1
c $P/v2/members
c $P/version
c $P/health
curl -s -o "$D/w.out" "$P/v2/keys/w?wait=true" & W=$!
sleep 1
c -XPUT $P/v2/keys/w -d value=2
wait $W
c $R/v2/keys/w
c -XPUT $R/v2/keys/w -d value=3
c -XDELETE $R/v2/keys/w
c -XOPTIONS $R/v2/keys/w
echo "# --listen-metrics-urls on a proxy"
c http://127.0.0.1:17011/metrics || true
} >"$OUT/etcd-3.4-sequence.txt" 2>&1
curl -s $P/metrics >"$OUT/etcd-3.4-proxy.txt"
curl -s $R/metrics >"$OUT/etcd-3.4-proxy-readonly.txt"
kill $M; wait $M || true
sleep 1
{
echo "# member down"
c $P/v2/keys/a
c -XPUT $P/v2/keys/a -d value=1
} >>"$OUT/etcd-3.4-sequence.txt" 2>&1
curl -s $P/metrics >"$OUT/etcd-3.4-proxy-memberdown.txt"
