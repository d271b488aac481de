#!/usr/bin/env bash
# verify-security.sh: runs one etcdctl (v2) script against a 3-member cluster
# on https client and peer URLs with client-certificate auth on both sides,
# once for a server binary, and records every command's stdout, stderr and
# exit code, so that the records for etcdlite and etcd 3.4 can be diffed.
#
#   scripts/verify-security.sh BINARY OUTDIR [CERTDIR]
#     BINARY   etcdlite or /usr/bin/etcd (etcd gets --enable-v2=true)
#     OUTDIR   where the records go (OUTDIR/transcript) and the data dirs
#     CERTDIR  ca.crt, server.crt/key (SAN 127.0.0.1), client.crt/key;
#              made with openssl when absent (default OUTDIR/certs)
#
#   scripts/verify-security.sh etcdlite /tmp/a
#   scripts/verify-security.sh /usr/bin/etcd /tmp/b
#   diff /tmp/a/transcript /tmp/b/transcript
#
# Only which member leads (member list's isLeader) differs between runs.
#
# Ports: clients on $BASE+1..3, peers on $BASE+11..13 (BASE=19100 unless set).
set -uo pipefail
bin=${1:?binary}
out=${2:?output dir}
certs=${3:-$out/certs}
base=${BASE:-19100}
etcdctl=${ETCDCTL:-/usr/bin/etcdctl}

mkdir -p "$out" "$certs"
if [ ! -e "$certs/ca.crt" ]; then
  (
    cd "$certs" || exit 1
    printf '[srv]\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n[cli]\nextendedKeyUsage=clientAuth\n' >ext.cnf
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 -subj /CN=verify-ca 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=etcd-server 2>/dev/null
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 30 -extfile ext.cnf -extensions srv 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=etcdctl-client 2>/dev/null
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 30 -extfile ext.cnf -extensions cli 2>/dev/null
  ) || { echo "cannot make certificates" >&2; exit 1; }
fi
if [ ! -e "$certs/cnuser.crt" ]; then
  # a client certificate whose CN is the user myusername
  (
    cd "$certs" || exit 1
    openssl req -newkey rsa:2048 -nodes -keyout cnuser.key -out cnuser.csr -subj /CN=myusername 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >cnuser.cnf
    openssl x509 -req -in cnuser.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out cnuser.crt -days 30 -extfile cnuser.cnf 2>/dev/null
  ) || { echo "cannot make the CN certificate" >&2; exit 1; }
fi

extra=()
case "$(basename "$bin")" in etcd) extra=(--enable-v2=true) ;; esac

cluster=""
for i in 1 2 3; do cluster="$cluster${cluster:+,}m$i=https://127.0.0.1:$((base + 10 + i))"; done
pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap stop EXIT
for i in 1 2 3; do
  rm -rf "$out/m$i.etcd"
  "$bin" "${extra[@]}" --name "m$i" --data-dir "$out/m$i.etcd" \
    --listen-client-urls "https://127.0.0.1:$((base + i))" --advertise-client-urls "https://127.0.0.1:$((base + i))" \
    --listen-peer-urls "https://127.0.0.1:$((base + 10 + i))" --initial-advertise-peer-urls "https://127.0.0.1:$((base + 10 + i))" \
    --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token verify-security \
    --cert-file "$certs/server.crt" --key-file "$certs/server.key" --client-cert-auth --trusted-ca-file "$certs/ca.crt" \
    --peer-cert-file "$certs/server.crt" --peer-key-file "$certs/server.key" --peer-client-cert-auth --peer-trusted-ca-file "$certs/ca.crt" \
    >"$out/m$i.log" 2>&1 &
  pids+=($!)
done

eps="https://127.0.0.1:$((base + 1)),https://127.0.0.1:$((base + 2)),https://127.0.0.1:$((base + 3))"
tlsargs=(--ca-file "$certs/ca.crt" --cert-file "$certs/client.crt" --key-file "$certs/client.key")
for _ in $(seq 1 100); do
  ETCDCTL_API=2 "$etcdctl" "${tlsargs[@]}" --endpoints "$eps" cluster-health >/dev/null 2>&1 && break
  sleep 0.2
done

t="$out/transcript"
: >"$t"
# run ARGS...: one etcdctl command; its output with the member IDs, ports
# and indexes that differ between runs left as they are (diff shows them).
run() {
  local o e rc
  o=$(ETCDCTL_API=2 "$etcdctl" "${tlsargs[@]}" --endpoints "$eps" "$@" 2>"$out/stderr")
  rc=$?
  e=$(cat "$out/stderr")
  {
    echo "\$ etcdctl $*"
    [ -n "$o" ] && echo "$o"
    [ -n "$e" ] && echo "$e" | sed 's/^/stderr: /'
    echo "exit: $rc"
  } >>"$t"
}
# runtty INPUT ARGS...: run with a terminal (script(1)) typing INPUT, for
# the commands that prompt for a password.
runtty() {
  local in=$1 o rc
  shift
  o=$(printf '%b' "$in" | ETCDCTL_API=2 script -qec "$(printf '%q ' "$etcdctl" "${tlsargs[@]}" --endpoints "$eps" "$@")" /dev/null 2>&1)
  rc=$?
  {
    echo "\$ etcdctl $* (on a terminal)"
    [ -n "$o" ] && echo "$o" | tr -d '\r'
    echo "exit: $rc"
  } >>"$t"
}
# runcn ARGS...: run with the certificate whose CN is myusername.
runcn() {
  local save=("${tlsargs[@]}")
  tlsargs=(--ca-file "$certs/ca.crt" --cert-file "$certs/cnuser.crt" --key-file "$certs/cnuser.key")
  echo "# as CN=myusername" >>"$t"
  run "$@"
  tlsargs=("${save[@]}")
}
# curlr ARGS...: one curl request, status and body.
curlr() {
  {
    echo "\$ curl $*"
    curl -s -w '\nstatus: %{http_code}\n' --cacert "$certs/ca.crt" --cert "$certs/client.crt" --key "$certs/client.key" "$@" |
      sed -E 's/"(modifiedIndex|createdIndex|index|etcdIndex)":[0-9]+/"\1":N/g'
  } >>"$t"
}
u1="https://127.0.0.1:$((base + 1))"

run member list
run cluster-health
run set /foo bar
run get /foo
run mk /dir/a 1
run ls --sort --recursive / # without --sort the order is random, in etcd too
run update /foo baz
run rm /foo
run get /foo
run mkdir /d2
run rmdir /d2
# the user, role and auth subcommands of authentication.md
run user list
run user add root:rootpw
run user add myusername:mypw
run user add myusername:again
run user add myusername:mypw
run user list
run role list
run role add myrolename
run role add myrolename
run role grant myrolename -path '/foo/*' -read
run role grant myrolename -path '/foo/bar' -write
run role grant myrolename -path '/pub/*' -readwrite
run role grant myrolename -path '/pub*' -readwrite
run role get myrolename
run role revoke myrolename -path '/foo/bar' -write
run role get myrolename
run role add foo
run role add bar
run role add baz
# -roles a,b is one role named "a,b" to etcdctl (etcd accepts it too)
run user grant myusername -roles foo,bar,baz
run user revoke myusername -roles foo,bar,baz
run user grant myusername -roles foo -roles bar -roles baz
run user revoke myusername -roles bar -roles baz
run user get myusername
run user grant myusername -roles myrolename
run user get myusername
run user grant myusername -roles nosuchrole
run user get nosuchuser
run auth enable
run auth enable
run --username root:rootpw role get guest
run --username root:rootpw role revoke guest -path '*' -readwrite
run --username root:rootpw role revoke guest -path '/*' -readwrite
run --username root:rootpw role get guest
run set /foo/x 1
run get /foo/x
run --username root:rootpw set /foo/x 1
run --username root:wrong get /foo/x
run --username myusername:mypw get /foo/x
run --username myusername:mypw set /foo/x 2
run --username myusername:mypw set /foo/bar w
run --username myusername:mypw set /pub/a 1
run --username myusername:mypw ls /pub
run --username myusername:mypw get /pub/a
run --username myusername:mypw rm /pub/a
run --username myusername:mypw ls --recursive /
run --username myusername:mypw mkdir /pubd
run --username myusername:mypw rmdir /pubd
run --username myusername:mypw user get myusername
run --username myusername:mypw cluster-health
run --username myusername:mypw auth disable
run --username nosuch:pw get /pub/a
runtty 'newpw\n' --username root:rootpw user passwd myusername
run --username myusername:mypw get /foo/x
run --username myusername:newpw get /foo/x
runtty 'newpw\n' --username myusername get /foo/x
runtty 'wrong\n' --username myusername get /foo/x
# with --client-cert-auth and auth on, the certificate's CN is the user
runcn get /foo/x
runcn set /foo/x 3
runcn set /pub/cn 1
runcn ls /pub
runcn --username root:rootpw set /foo/x 4
runcn user list
run --username myusername:mypw user list
run --username myusername:mypw member list
run --username root:rootpw member list
run --username root:rootpw user list
run --username root:rootpw role list
run --username root:rootpw user get root
run --username root:rootpw role get root
run --username root:rootpw user remove myusername
run --username root:rootpw user remove myusername
run --username root:rootpw role remove myrolename
run --username root:rootpw role remove root
run --username root:rootpw user revoke root -roles root
run --username root:rootpw cluster-health
run --username root:rootpw auth disable
run auth disable
run user list
run user remove root
run role list
curlr "$u1/v2/auth/enable"
curlr "$u1/v2/auth/users"
curlr "$u1/v2/auth/roles/guest"
curlr "$u1/v2/keys/pub/a"
{
  echo "\$ curl without a client certificate"
  # curl's exit code is 55 or 56 by a race (etcd too): only refused or not
  curl -s -o /dev/null -w 'status: %{http_code}\n' --cacert "$certs/ca.crt" "$u1/v2/keys/" && echo "served" || echo "refused"
} >>"$t"
rm -f "$out/stderr"
echo "transcript: $t"
# AFTER: a command run while the cluster is still up, with BASE and CERTS
# set, its output in OUTDIR/after, e.g.
#   AFTER='/usr/bin/python3 scripts/verify-python-etcd.py $BASE $CERTS'
if [ -n "${AFTER:-}" ]; then
  BASE=$base CERTS=$certs bash -c "$AFTER" >"$out/after" 2>&1
  echo "after: $out/after"
fi
