#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A hostile local user against a real manager with two vTPMs (issue 12,
"Why" bullets 1, 7 and 8).  Runs as root and uses setpriv to act as the
other vTPM's uid, as an unrelated user (uid 65000) and as a member of the
client group.  Each attack prints one line:

  attack: WHAT before: WHAT MAIN DID after: WHAT HAPPENS NOW

and is checked: refused where it must be, served where it must be (the
client group reaches the sockets, the vTPM its own files)."""

import os
import shutil
import socket
import stat
import struct
import subprocess
import sys
import time

from vtpmtest import *

a = args()
if os.geteuid() != 0 or not shutil.which("setpriv"):
    print("SKIPPED: needs root and setpriv (util-linux) to act as other "
          "users")
    sys.exit(77)

wd = workdir(a, "hostile")
# Everyone may walk to the run directory: only the modes the manager
# sets may keep anyone out.
os.chmod(wd, 0o755)

UID_LO = 1500000
CLIENT_GROUP = "users"     # stands for the group QEMU runs as
CLIENT_GID = 100
STRANGER = (65000, 65000)
CLIENT = (65001, CLIENT_GID)

hw = HardwareTPM(os.path.join(wd, "hw")).start()
m = Manager(a.vtpm, os.path.join(wd, "mgr"), hw,
            extra=["--instance-uids", "%d-%d" % (UID_LO, UID_LO + 99),
                   "--client-group", CLIENT_GROUP])
os.makedirs(m.wd, exist_ok=True)
os.chmod(m.wd, 0o755)
m.start()

ua = m.ctl("create", "--domid", "11").stdout.decode().strip()
ub = m.ctl("create", "--domid", "12").stdout.decode().strip()
m.ctl("start", ua)
m.ctl("start", ub)
check(m.wait_vtpm(ua) and m.wait_vtpm(ub), "both vTPMs serve")
pids = {v["uuid"]: v["pid"] for v in m.ctl_json("list")["vtpms"]}
sa = os.stat(m.vtpm_dir(ua))
sb = os.stat(m.vtpm_dir(ub))
ids_a = (sa.st_uid, sa.st_gid)
ids_b = (sb.st_uid, sb.st_gid)
check(ids_a != ids_b and UID_LO <= ids_a[0] < UID_LO + 100 and
      UID_LO <= ids_b[0] < UID_LO + 100,
      "each vTPM has its own uid from instance-uids", (ids_a, ids_b))
with open("/proc/%d/status" % pids[ua]) as f:
    status = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
check(status["Uid"].split()[0] == str(ids_a[0]),
      "vTPM A's instance runs as its uid", status["Uid"])

PROBE = r'''
import errno, os, socket, struct, sys
what, arg = sys.argv[1], sys.argv[2]
def err(e):
    print("refused (%s)" % errno.errorcode.get(e.errno, e.errno))
try:
    if what == "connect":
        s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(arg)
        s.sendall(struct.pack(">HII", 0x8001, 12, 0x17B) + b"\0\x08")
        r = s.recv(64)
        print("served (%d bytes)" % len(r))
    elif what == "stateblob":
        s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(arg)
        s.sendall(struct.pack(">IIII", 0x0C, 0, 1, 0))
        r = s.recv(16)
        res = struct.unpack(">I", r[:4])[0] if len(r) >= 4 else None
        print("blob (result %s, %d bytes)" % (res, len(r)))
    elif what == "read":
        with open(arg, "rb") as f:
            print("read (%d bytes)" % len(f.read()))
    elif what == "replace":
        with open(arg, "r+b") as f:
            f.write(b"X")
        print("replaced")
    elif what == "delete":
        os.unlink(arg)
        print("deleted")
    elif what == "list":
        print("listed (%d names)" % len(os.listdir(arg)))
    elif what == "mkfifo":
        os.mkfifo(arg)
        print("planted")
    elif what == "mem":
        with open(arg, "rb") as f:
            print("opened")
except OSError as e:
    err(e)
'''


def probe(ids, what, arg):
    r = subprocess.run(["setpriv", "--reuid", str(ids[0]), "--regid",
                        str(ids[1]), "--clear-groups", sys.executable, "-c",
                        PROBE, what, arg], capture_output=True, timeout=30)
    out = (r.stdout.decode().strip() or r.stderr.decode().strip())
    return out.splitlines()[-1] if out else "no output"


def attack(name, before, after, refused=True):
    print("attack: %s before: %s after: %s" % (name, before, after),
          flush=True)
    ok = after.startswith("refused") if refused else not after.startswith(
        "refused")
    check(ok, name, after)


sock_a = m.vtpm_sock(ua)
ctrl_a = sock_a + ".ctrl"
state_a = os.path.join(m.vtpm_dir(ua), "vtpm-%s.state.0" % ua)
check(os.path.exists(state_a), "vTPM A has a state file", state_a)

# ---- bullet 1: another vTPM's uid ----
attack("vTPM B's uid connects to A's data socket",
       "served (every instance ran as nobody)",
       probe(ids_b, "connect", sock_a))
attack("vTPM B's uid takes A's permanent state with GET_STATEBLOB",
       "blob in plaintext (seeds, NV)", probe(ids_b, "stateblob", ctrl_a))
attack("vTPM B's uid reads A's state file", "read",
       probe(ids_b, "read", state_a))
attack("vTPM B's uid replaces A's state file", "replaced",
       probe(ids_b, "replace", state_a))
attack("vTPM B's uid deletes A's state file", "deleted",
       probe(ids_b, "delete", state_a))
attack("vTPM B's uid deletes A's socket", "deleted",
       probe(ids_b, "delete", sock_a))
attack("vTPM B's uid opens A's /proc/PID/mem", "opened (same uid, dumpable)",
       probe(ids_b, "mem", "/proc/%d/mem" % pids[ua]))
attack("vTPM A's own uid opens its /proc/PID/mem (not dumpable)",
       "opened", probe(ids_a, "mem", "/proc/%d/mem" % pids[ua]))

# ---- an unrelated user ----
attack("uid 65000 connects to A's data socket",
       "refused (run dir 0700 nobody)", probe(STRANGER, "connect", sock_a))
attack("uid 65000 lists A's state directory", "refused (0700 nobody)",
       probe(STRANGER, "list", m.vtpm_dir(ua)))
attack("uid 65000 reads A's state file", "refused",
       probe(STRANGER, "read", state_a))

# ---- the client group: served, but only the sockets ----
attack("client group connects to A's data socket (must be served)",
       "refused (no client group)", probe(CLIENT, "connect", sock_a),
       refused=False)
attack("client group reads A's state file", "refused",
       probe(CLIENT, "read", state_a))
attack("client group deletes A's socket", "refused",
       probe(CLIENT, "delete", sock_a))

# ---- bullet 7: FIFOs and links ----
attack("vTPM B's uid plants a FIFO at A's .tmp", "planted (shared uid)",
       probe(ids_b, "mkfifo", state_a + ".tmp"))
check(m.wait_vtpm(ua), "vTPM A still serves after the attacks on it")

# A FIFO at the state file and at its .tmp (planted by whoever owns the
# directory): a clear error, no hang, no followed link.
for name, planted in (("state file", "vtpm-dom1.state"),
                      (".tmp", "vtpm-dom1.state.tmp")):
    i = Instance(a.vtpm, os.path.join(wd, "fifo-" + name.strip(".")))
    os.makedirs(i.state_dir, mode=0o700, exist_ok=True)
    os.mkfifo(os.path.join(i.state_dir, planted))
    t0 = time.monotonic()
    rc = i.run_to_exit(timeout=20)
    took = time.monotonic() - t0
    log = i.log_text().strip().splitlines()
    errs = [l for l in log if l.startswith("<3>")]
    last = errs[-1] if errs else (log[-1] if log else "")
    after = ("refused in %.1f s: %s" % (took, last.split("]: ", 1)[-1])
             if rc not in (0, None) else "rc %s after %.1f s" % (rc, took))
    attack("FIFO planted at the %s" % name, "the instance hung in open()",
           after)
    check(rc not in (0, None) and took < 15 and
          "not a regular file" in last,
          "the FIFO at the %s gives a clear error" % name, log[-3:])

# A link planted in a run directory others may write: root must not
# chown its target, and the run directory itself is refused.
ww = os.path.join(wd, "wwrun")
os.makedirs(ww, exist_ok=True)
os.chmod(ww, 0o1777)
target = os.path.join(wd, "target")
os.makedirs(target, exist_ok=True)
os.chmod(target, 0o755)
m2 = Manager(a.vtpm, os.path.join(wd, "mgr2"), hw,
             extra=["--instance-uids", "%d-%d" % (UID_LO + 100, UID_LO + 199),
                    "--nv-index", "0x01500600"])
m2.run_dir = ww
os.makedirs(m2.wd, exist_ok=True)
m2.start()
uc = m2.ctl("create", "--domid", "13", "--no-ek-cert").stdout.decode().strip()
os.symlink(target, os.path.join(ww, uc))
m2.ctl("start", uc, check_rc=False)
time.sleep(1.0)
st = os.stat(target)
after = ("refused: target still %d:%d %o" %
         (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
         if (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o755)
         else "target now %d:%d %o" % (st.st_uid, st.st_gid,
                                      stat.S_IMODE(st.st_mode)))
attack("a link planted in a world-writable run dir (root chowns its target?)",
       "chowned by path (own_dir)", after)
check("writable by group or others" in m2.log_text(),
      "the world-writable run directory is refused by name",
      m2.log_text()[-600:])
m2.stop()

# ---- bullet 8: the instance's own confinement ----
want = {"Seccomp": "2", "NoNewPrivs": "1", "CapBnd": "0000000000000000",
        "CapEff": "0000000000000000"}
got = {k: status.get(k, "").strip() for k in want}
print("attack: /proc/PID/status of a managed instance before: Seccomp 0, "
      "NoNewPrivs 0, CapBnd 000001ffffffffff after: " +
      ", ".join("%s %s" % kv for kv in got.items()), flush=True)
check(got == want, "instance: Seccomp 2, NoNewPrivs 1, no capabilities", got)
ns_self = os.readlink("/proc/self/ns/mnt"), os.readlink("/proc/self/ns/net")
ns_inst = (os.readlink("/proc/%d/ns/mnt" % pids[ua]),
           os.readlink("/proc/%d/ns/net" % pids[ua]))
print("attack: the instance's mount and network namespaces before: the "
      "host's after: %s" % ("its own" if ns_inst[0] != ns_self[0] and
                            ns_inst[1] != ns_self[1] else "the host's"),
      flush=True)
check(ns_inst[0] != ns_self[0] and ns_inst[1] != ns_self[1],
      "the instance has private mount and network namespaces")
root = os.listdir("/proc/%d/root/" % pids[ua])
check(root == [m.wd.split("/")[1]] or len(root) == 1,
      "the instance's root shows only the path to its directories", root)

m.stop()
hw.stop()
finish()
