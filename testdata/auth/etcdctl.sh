#!/bin/bash
# ctl.sh URL: the etcdctl auth walk of authentication.md, every command's output and exit code
# Record: testdata/auth/etcdctl.sh http://ETCD > testdata/auth/etcdctl-etcd3.4.txt (fresh etcd 3.4,
# --enable-v2); check: run it against a fresh etcdlite, replace its ports by etcd's, diff.
E=$1
c(){ echo "\$ etcdctl $*"; ETCDCTL_API=2 timeout 10 etcdctl --endpoints "$E" "$@" 2>&1 | sed -E 's/[0-9a-f]{16}/<id>/g; s/(index|Index)[: ]+[0-9]+/\1 N/g'; echo "exit=${PIPESTATUS[0]}"; }
c auth enable
c user add root:rootpw
c user add root:rootpw
c user list
c user get root
c auth enable
c auth enable
c user list
c --username root:rootpw user list
c --username root:wrong user list
c --username root:rootpw role list
c --username root:rootpw role get guest
c --username root:rootpw role get nope
c --username root:rootpw role add myrolename
c --username root:rootpw role add myrolename
c --username root:rootpw role grant myrolename --path '/foo/*' --readwrite
c --username root:rootpw role grant myrolename --path '/foo/*' --read
c --username root:rootpw role grant myrolename --path '/bar' --read
c --username root:rootpw role grant myrolename --path '/baz'
c --username root:rootpw role get myrolename
c --username root:rootpw role revoke myrolename --path '/foo/*' --write
c --username root:rootpw role revoke myrolename --path '/nope' --write
c --username root:rootpw role get myrolename
c --username root:rootpw user add myusername:userpw
c --username root:rootpw user grant myusername --roles myrolename
c --username root:rootpw user grant myusername --roles myrolename
c --username root:rootpw user grant myusername --roles nosuchrole
c --username root:rootpw user revoke myusername --roles nosuchrole
c --username root:rootpw user revoke myusername --roles nosuchrole
c --username root:rootpw user get myusername
c --username root:rootpw user get nobody
c --username myusername:userpw set /foo/bar value
c --username myusername:userpw get /foo/bar
c --username myusername:userpw set /other value
c --username myusername:userpw get /bar
c --username myusername:userpw ls /foo
c --username myusername:userpw ls --recursive /foo
c --username myusername:userpw mkdir /foo/dir
c --username myusername:userpw rm /foo/bar
c --username myusername:wrong get /foo/bar
c set /guest value
c get /guest
c --username root:rootpw role revoke guest --path '/*' --readwrite
c set /guest value2
c get /guest
c --username myusername:userpw user list
c --username myusername:userpw auth disable
c --username root:rootpw user remove root
c --username root:rootpw role remove root
c --username root:rootpw role remove myrolename
c --username root:rootpw role remove myrolename
c --username root:rootpw user remove myusername
c --username root:rootpw user remove myusername
c --username root:rootpw member list
c member list
c --username root:rootpw auth disable
c auth disable
c set /guest value3
c user list
c user remove root
c user list
