#!/usr/bin/python3
# python-etcd (Debian python3-etcd) auth calls; output recorded against etcd 3.4 in
# python-etcd-etcd3.4.txt: run with the client port of a fresh server and diff.
import sys, etcd, etcd.auth as A
port = int(sys.argv[1])
out = []
def step(name, f):
    try:
        r = f()
        out.append("%s: ok %r" % (name, r))
    except Exception as e:
        out.append("%s: %s %s" % (name, type(e).__name__, str(e)[:120]))
c = etcd.Client(host="127.0.0.1", port=port)
au = A.Auth(c)
step("active", lambda: au.active)
def mkroot():
    u = A.EtcdUser(c, "root"); u.password = "rootpw"; u.write(); return "written"
step("root", mkroot)
step("enable", lambda: setattr(au, "active", True))
step("active2", lambda: au.active)
rc = etcd.Client(host="127.0.0.1", port=port, username="root", password="rootpw")
def mkrole():
    r = A.EtcdRole(rc, "app"); r.grant("/app/*", "RW"); r.grant("/pub", "R"); r.write()
    r2 = A.EtcdRole(rc, "app"); r2.read(); return sorted(r2.acls.items())
step("role", mkrole)
def mkuser():
    u = A.EtcdUser(rc, "alice"); u.password = "apw"; u.roles = set(["app"]); u.write()
    u2 = A.EtcdUser(rc, "alice"); u2.read(); return sorted(u2.roles)
step("user", mkuser)
step("users", lambda: sorted(A.EtcdUser(rc, "x").names))
step("roles", lambda: sorted(A.EtcdRole(rc, "x").names))
ac = etcd.Client(host="127.0.0.1", port=port, username="alice", password="apw")
step("alice write", lambda: ac.write("/app/k", "v").value)
step("alice read", lambda: ac.read("/app/k").value)
step("alice other", lambda: ac.write("/other", "v").value)
step("alice wrong", lambda: etcd.Client(host="127.0.0.1", port=port, username="alice", password="bad").read("/app/k").value)
step("guest read", lambda: c.read("/app/k").value)
def revoke():
    r = A.EtcdRole(rc, "app"); r.read(); r.revoke("/app/*", "W"); r.write(); r2 = A.EtcdRole(rc, "app"); r2.read(); return sorted(r2.acls.items())
step("revoke", revoke)
step("alice write2", lambda: ac.write("/app/k", "v2").value)
step("alice auth", lambda: A.EtcdUser(ac, "x").names)
step("delete user", lambda: A.EtcdUser(rc, "alice").delete())
step("delete role", lambda: A.EtcdRole(rc, "app").delete())
step("disable", lambda: setattr(A.Auth(rc), "active", False))
step("active3", lambda: au.active)
print("\n".join(out))
