# verify-python-etcd.py: python-etcd's auth (etcd.auth: EtcdUser, EtcdRole, Auth) and TLS
# (protocol https, cert, ca_cert) against a 3-member TLS cluster whose client
# ports are BASE+1..3, certificates in CERTDIR (ca.crt, client.crt/key), as
# scripts/verify-security.sh makes them; prints one line per step, to diff
# against the same run on etcd 3.4. Leaves auth disabled.
#   /usr/bin/python3 scripts/verify-python-etcd.py BASE CERTDIR
import sys, etcd, etcd.auth, logging
logging.basicConfig(level=logging.CRITICAL)
base = int(sys.argv[1]); C = sys.argv[2]
hosts = tuple(('127.0.0.1', base + i) for i in (1, 2, 3))
def client(**kw):
    return etcd.Client(host=hosts, protocol='https', cert=(C + '/client.crt', C + '/client.key'),
                       ca_cert=C + '/ca.crt', allow_reconnect=True, **kw)
def step(name, f):
    try:
        r = f()
        print(name, '->', r)
    except Exception as e:
        print(name, '-> EXC', type(e).__name__, e)
c = client()
step('machines', lambda: sorted(c.machines))
step('leader', lambda: sorted(c.leader.keys()))
step('write', lambda: c.write('/py/a', '1').value)
step('read', lambda: c.read('/py/a').value)
step('members', lambda: len(c.members))
a = etcd.auth.Auth(c)
step('auth active', lambda: a.active)
def mkuser(name, pw, roles):
    u = etcd.auth.EtcdUser(c, name); u.password = pw; u.roles = set(roles); u.write(); return u.name
def mkrole(name, acls):
    r = etcd.auth.EtcdRole(c, name); r.acls = acls; r.write(); return sorted(r.acls.items())
step('root user', lambda: mkuser('root', 'rootpw', ['root']))
step('role', lambda: mkrole('pyrole', {'/py/*': 'RW', '/ro/*': 'R'}))
step('user', lambda: mkuser('pyuser', 'pypw', ['pyrole']))
def getuser(name, cl=c):
    u = etcd.auth.EtcdUser(cl, name); u.read(); return (u.name, sorted(u.roles))
def getrole(name, cl=c):
    r = etcd.auth.EtcdRole(cl, name); r.read(); return sorted(r.acls.items())
step('get user', lambda: getuser('pyuser'))
step('get role', lambda: getrole('pyrole'))
step('user names', lambda: sorted(etcd.auth.EtcdUser(c, '').names))
step('role names', lambda: sorted(etcd.auth.EtcdRole(c, '').names))
def grant():
    r = etcd.auth.EtcdRole(c, 'pyrole'); r.read(); r.grant('/g/*', 'W'); r.revoke('/ro/*', 'R'); r.write(); r.read(); return sorted(r.acls.items())
step('grant/revoke', grant)
step('get missing user', lambda: getuser('nosuch'))
def enable(): a.active = True; return a.active
step('enable', enable)
step('auth active (guest)', lambda: a.active)
root = client(username='root', password='rootpw')
ra = etcd.auth.Auth(root)
def guest_off():
    r = etcd.auth.EtcdRole(root, 'guest'); r.read(); r.revoke('/*', 'RW'); r.write(); r.read(); return sorted(r.acls.items())
step('guest off', guest_off)
step('anon read', lambda: c.read('/py/a').value)
step('anon write', lambda: c.write('/py/b', '1').value)
u = client(username='pyuser', password='pypw')
step('user write', lambda: u.write('/py/b', '2').value)
step('user read', lambda: u.read('/py/b').value)
step('user write ro', lambda: u.write('/ro/x', '2').value)
step('user write g', lambda: u.write('/g/x', '2').value)
step('user read g', lambda: u.read('/g/x').value)
step('user recursive', lambda: [x.key for x in u.read('/py', recursive=True).leaves])
step('user delete', lambda: u.delete('/py/b').key)
step('user in-order', lambda: u.write('/py/q', 'v', append=True).value)
step('user read users', lambda: getuser('pyuser', u))
bad = client(username='pyuser', password='wrong')
step('bad password', lambda: bad.read('/py/a').value)
def passwd():
    x = etcd.auth.EtcdUser(root, 'pyuser'); x.read(); x.password = 'newpw'; x.write(); return 'ok'
step('passwd', passwd)
step('old password', lambda: u.read('/py/a').value)
step('new password', lambda: client(username='pyuser', password='newpw').read('/py/a').value)
step('root read users', lambda: getuser('pyuser', root))
def deluser(): etcd.auth.EtcdUser(root, 'pyuser').delete(); return 'ok'
step('delete user', deluser)
def delrole(): etcd.auth.EtcdRole(root, 'pyrole').delete(); return 'ok'
step('delete role', delrole)
step('delete root role', lambda: etcd.auth.EtcdRole(root, 'root').delete())
def disable(): ra.active = False; return ra.active
step('disable', disable)
step('anon write after', lambda: c.write('/py/c', '1').value)
step('no client cert', lambda: etcd.Client(host=hosts, protocol='https', ca_cert=C + '/ca.crt').read('/py/a').value)
