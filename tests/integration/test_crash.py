#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Crash consistency: SIGKILL the instance at random moments while a
client writes an NV index as fast as it can (and sometimes while the
instance is still starting).  Every restart must load a valid state that
holds the last acknowledged write, or the one that was in flight."""

import random
import struct
import threading
import time

from vtpmtest import *

a = args()
wd = workdir(a, "crash")
rng = random.Random(int(os.environ.get("VTPM_CRASH_SEED", "0")) or None)
seed = rng.randrange(1 << 30)
rng.seed(seed)
print("seed %d" % seed)

IDX = 0x01500030
inst = Instance(a.vtpm, wd).start()
s = inst.connect()
check(rc_of(transact(s, nv_define(IDX, 8))) == 0, "define NV index")
check(rc_of(transact(s, nv_write(IDX, struct.pack(">Q", 0)))) == 0,
      "initial write")
s.close()

acked = 0
total_acked = 0
kills = startup_kills = 0
bad = []
ROUNDS = int(os.environ.get("VTPM_CRASH_ROUNDS", "30"))

rnd = -1
while True:
    rnd += 1
    # At least ROUNDS kills, and on until several hundred acknowledged
    # writes (slow or sanitizer builds acknowledge fewer per round).
    if rnd >= ROUNDS and (total_acked >= 300 or rnd >= 4 * ROUNDS):
        break
    if rnd % 6 == 5:
        # Kill during start-up, before or while it loads its state.
        inst.kill()
        inst.start(wait=False)
        time.sleep(rng.uniform(0, 0.01))
        inst.kill()
        startup_kills += 1
        inst.start()
    delay = rng.uniform(0.01, 0.25)
    killer = threading.Timer(delay, inst.proc.kill)
    s = inst.connect()
    killer.start()
    inflight = None
    try:
        while True:
            inflight = acked + 1
            r = transact(s, nv_write(IDX, struct.pack(">Q", inflight)))
            if rc_of(r) != 0:
                bad.append("write %d rc 0x%x" % (inflight, rc_of(r)))
                break
            acked = inflight
            total_acked += 1
    except (EOFError, OSError):
        pass
    killer.join()
    inst.proc.wait()
    kills += 1
    s.close()
    inst.start()
    s = inst.connect()
    r = transact(s, nv_read(IDX, 8))
    s.close()
    if rc_of(r) != 0:
        bad.append("round %d: nvread rc 0x%x" % (rnd, rc_of(r)))
        break
    v = struct.unpack(">Q", nv_read_data(r))[0]
    if v not in (acked, inflight):
        bad.append("round %d: read %d, acked %d, in flight %s" %
                   (rnd, v, acked, inflight))
    acked = v

inst.stop()
print("%d kills during writes, %d during start-up, %d acknowledged writes"
      % (kills, startup_kills, total_acked))
check(not bad, "every restart held the last acknowledged (or in-flight) "
      "write", "; ".join(bad))
check(total_acked >= 300, "several hundred NV writes were acknowledged",
      "only %d" % total_acked)
finish()
