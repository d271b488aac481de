#!/usr/bin/python3
# The prompting etcdctl commands (user add without a password, user passwd, --username
# without one) driven through a pty: run with a fresh server's client URL; the output of etcd
# 3.4 is in etcdctl-passwd-etcd3.4.txt (compare with indexes and echoed input dropped).
import os, pty, sys, time, subprocess
def run(args, answers):
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["ETCDCTL_API"] = "2"
        os.execvp("etcdctl", ["etcdctl"] + args)
    out = b""; i = 0
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            data = os.read(fd, 1024)
        except OSError:
            break
        if not data: break
        out += data
        if i < len(answers) and out.rstrip().endswith(b":"):
            os.write(fd, answers[i].encode() + b"\n"); i += 1; out += b"<answered>"
    _, st = os.waitpid(pid, 0)
    return out.decode(errors="replace").replace("\r", ""), os.WEXITSTATUS(st)
E = sys.argv[1]
for args, ans in [
    (["--endpoints", E, "user", "add", "root"], ["rootpw"]),
    (["--endpoints", E, "auth", "enable"], []),
    (["--endpoints", E, "--username", "root:rootpw", "user", "add", "bob"], ["bobpw"]),
    (["--endpoints", E, "--username", "root:rootpw", "user", "passwd", "bob"], ["newpw"]),
    (["--endpoints", E, "--username", "bob:newpw", "get", "/x"], []),
    (["--endpoints", E, "--username", "bob:bobpw", "get", "/x"], []),
    (["--endpoints", E, "--username", "root", "user", "list"], ["rootpw"]),
    (["--endpoints", E, "--username", "root", "user", "list"], ["wrong"]),
    (["--endpoints", E, "--username", "root:rootpw", "user", "passwd", "nobody"], ["x"]),
    (["--endpoints", E, "--username", "root:rootpw", "auth", "disable"], []),
]:
    out, code = run(args, ans)
    print("$ etcdctl", " ".join(args[2:])); print(out.strip()); print("exit=%d" % code)
