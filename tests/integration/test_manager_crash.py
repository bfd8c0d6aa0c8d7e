#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""SIGKILL the manager or the instance at random moments while a client
writes an NV index through the vTPM as fast as it can.  After every
restart the vTPM loads and holds the last acknowledged write (or the one
in flight): the two-party commit (state slot, then the manager's key
store, then the NV counter) never loses an acknowledged write and never
leaves something that fails to load."""

import os
import random
import signal
import struct
import threading
import time

from vtpmtest import *

a = args()
wd = workdir(a, "mgrcrash")
os.chmod(wd, 0o711)
rng = random.Random()
seed = int(os.environ.get("VTPM_CRASH_SEED", "0")) or rng.randrange(1 << 30)
rng.seed(seed)
print("seed %d" % seed)
ROUNDS = int(os.environ.get("VTPM_CRASH_ROUNDS", "16"))

hw = HardwareTPM(wd).start()
m = Manager(a.vtpm, wd, hw, extra=["--counter-interval", "0"]).start()
uuid = m.ctl("create").stdout.decode().strip()
m.ctl("start", uuid)
check(m.wait_vtpm(uuid), "the vTPM serves")
IDX = 0x01500050
s = m.connect_vtpm(uuid)
check(rc_of(transact(s, nv_define(IDX, 8))) == 0, "define NV index")
s.close()

acked = 0
total = 0
bad = []
kills = {"manager": 0, "instance": 0}


def instance_pid():
    try:
        for v in m.ctl_json("list")["vtpms"]:
            if v["uuid"] == uuid and "pid" in v:
                return v["pid"]
    except Exception:  # noqa: manager just died
        pass
    return None


# At least ROUNDS kills, and on until a hundred writes were acknowledged
# (a slow machine, or a sanitizer build, acknowledges fewer per round).
rnd = -1
while True:
    rnd += 1
    if rnd >= ROUNDS and (total >= 100 or rnd >= 4 * ROUNDS):
        break
    victim = "manager" if rnd % 2 else "instance"
    pid = m.proc.pid if victim == "manager" else instance_pid()
    if pid is None:
        bad.append("round %d: no instance pid" % rnd)
        break
    delay = rng.uniform(0.02, 0.3)
    killer = threading.Timer(delay, os.kill, (pid, signal.SIGKILL))
    inflight = None
    try:
        s = m.connect_vtpm(uuid)
        killer.start()
        while True:
            inflight = acked + 1
            r = transact(s, nv_write(IDX, struct.pack(">Q", inflight)))
            if rc_of(r) != 0:
                break
            acked = inflight
            total += 1
    except (EOFError, OSError):
        pass
    killer.join()
    kills[victim] += 1
    if victim == "manager":
        m.proc.wait()
        # Its instance follows it (parent death signal); start again.
        m.start()
    if not m.wait_vtpm(uuid, timeout=40):
        bad.append("round %d: vTPM does not come back after killing the %s"
                   % (rnd, victim))
        break
    s = m.connect_vtpm(uuid)
    r = transact(s, nv_read(IDX, 8))
    s.close()
    v = struct.unpack(">Q", nv_read_data(r))[0] if rc_of(r) == 0 else None
    if v not in (acked, inflight):
        bad.append("round %d (%s killed): read %s, acked %d, in flight %s" %
                   (rnd, victim, v, acked, inflight))
    if v is not None:
        acked = v

print("%d manager kills, %d instance kills, %d acknowledged writes" %
      (kills["manager"], kills["instance"], total))
check(not bad, "after every kill the vTPM holds the last acknowledged "
      "(or in-flight) write", "; ".join(bad) + "\n" + m.log_text()[-3000:])
check(total >= 100, "over a hundred acknowledged NV writes", total)
check(m.stop() == 0, "the manager stops cleanly at the end")
hw.stop()
finish()
