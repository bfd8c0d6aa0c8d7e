#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""A physical TPM that hangs (issue 12, item 9): swtpm, standing in for
it, is stopped with SIGSTOP.  Every call to it has a deadline
(--tpm-timeout): the call that overran is reported in the log and in
`vtpmctl status`, the quote that made it fails within the deadline with a
clear message, later TPM calls are refused at once while it hangs, and
guests' commands that need no TPM call (NV writes, the key store commits
behind them) are still served.  After SIGCONT everything recovers: the
late call returns, quotes work, and the key store is bound to the NV
counter again."""

import os
import signal
import time

from vtpmtest import *

TIMEOUT_S = 3
a = args()
wd = workdir(a, "tpm-deadline")
os.chmod(wd, 0o711)
hw = HardwareTPM(wd).start()
m = Manager(a.vtpm, wd, hw, extra=["--counter-interval", "0",
                                   "--tpm-timeout", str(TIMEOUT_S)]).start()
ak = m.ctl_json("status")["ak_spki"]
u = m.ctl("create", "--domid", "21").stdout.decode().strip()
m.ctl("start", u)
check(m.wait_vtpm(u), "a managed vTPM serves")
st = m.ctl_json("status")
check(st["physical_tpm"] == "ok", "status: physical TPM ok", st)
r = m.ctl("status")
check(b"physical_tpm: ok" in r.stdout, "vtpmctl status prints it", r.stdout)

os.kill(hw.proc.pid, signal.SIGSTOP)
t0 = time.monotonic()
r = m.ctl("quote", u, "--nonce", "0102", check_rc=False)
elapsed = time.monotonic() - t0
msg = r.stderr.decode()
print("quote with the TPM stopped: rc %d after %.2f s: %s" %
      (r.returncode, elapsed, msg.strip()), flush=True)
check(r.returncode != 0 and "physical TPM" in msg and "TPM2_Quote" in msg,
      "the quote fails with a clear message naming the TPM and the call",
      msg)
check(elapsed < TIMEOUT_S + 2, "within the deadline (%d s)" % TIMEOUT_S,
      "%.2f s" % elapsed)
time.sleep(0.5)
r = m.ctl("status")
line = [l for l in r.stdout.decode().splitlines()
        if l.startswith("physical_tpm:")]
print("vtpmctl status: %s" % (line[0] if line else r.stdout), flush=True)
check(line and "unresponsive since" in line[0] and "TPM2_Quote" in line[0],
      "vtpmctl status reports the TPM unresponsive and the call", line)
check("physical TPM unresponsive" in m.log_text(), "the log reports it")

# Guests' commands that need no TPM call go on.
s = m.connect_vtpm(u)
IDX = 0x01500200
lat = []
for data in (b"written1", b"written2"):
    t1 = time.monotonic()
    rc = rc_of(transact(s, nv_define(IDX, 8))) if data == b"written1" else 0
    rc = rc or rc_of(transact(s, nv_write(IDX, data)))
    lat.append(time.monotonic() - t1)
    check(rc == 0, "NV define/write in the vTPM while the TPM hangs")
r = transact(s, nv_read(IDX, 8))
s.close()
check(rc_of(r) == 0 and nv_read_data(r) == b"written2", "NV reads back")
print("NV write latency while the TPM hangs: %s ms" %
      ", ".join("%.1f" % (x * 1000) for x in lat), flush=True)
check(max(lat) < 1.0, "NV writes are not held up by the TPM (< 1 s)",
      lat)

# Another TPM call while it hangs: refused at once.
t0 = time.monotonic()
r = m.ctl("quote", u, "--nonce", "0103", check_rc=False)
check(r.returncode != 0 and time.monotonic() - t0 < 1.0 and
      b"unresponsive" in r.stderr,
      "a second quote is refused at once while the call is outstanding",
      r.stderr)

incr_before = m.ctl_json("status")["counter_increments"]
os.kill(hw.proc.pid, signal.SIGCONT)
ok = False
for _ in range(100):
    if m.ctl_json("status")["physical_tpm"] == "ok":
        ok = True
        break
    time.sleep(0.1)
check(ok, "after SIGCONT the TPM is reported ok again")
check("serving TPM calls again" in m.log_text(),
      "the log says the late call returned")
r = m.ctl("quote", u, "--nonce", "0104", "--out",
          os.path.join(wd, "q.json"), check_rc=False)
check(r.returncode == 0, "a quote works again", r.stderr)
v = m.ctl("verify-quote", os.path.join(wd, "q.json"), "--ak-spki", ak,
          check_rc=False)
check(v.returncode == 0, "and verifies", v.stdout)
s = m.connect_vtpm(u)
check(rc_of(transact(s, nv_write(IDX, b"written3"))) == 0,
      "an NV write after recovery")
s.close()
st = m.ctl_json("status")
check(st["counter_increments"] > incr_before,
      "the key store is bound to the NV counter again",
      (incr_before, st["counter_increments"]))
check(m.stop() == 0, "the manager stops cleanly")
m.start()
check(m.wait_vtpm(u), "and starts again: the store is fresh")
s = m.connect_vtpm(u)
r = transact(s, nv_read(IDX, 8))
s.close()
check(rc_of(r) == 0 and nv_read_data(r) == b"written3",
      "the last NV write survived")

# A manager asked to stop while a TPM call hangs still stops (the call's
# thread is left behind), and the store it leaves loads again.
os.kill(hw.proc.pid, signal.SIGSTOP)
m.ctl("quote", u, "--nonce", "0105", check_rc=False)
s = m.connect_vtpm(u)
check(rc_of(transact(s, nv_write(IDX, b"written4"))) == 0,
      "an NV write while the TPM hangs again")
s.close()
t0 = time.monotonic()
rc = m.stop(timeout=20)
check(rc == 0 and time.monotonic() - t0 < 10,
      "the manager stops with exit 0 while a TPM call hangs",
      (rc, time.monotonic() - t0))
os.kill(hw.proc.pid, signal.SIGCONT)
m.start()
check(m.wait_vtpm(u), "it starts again with the TPM back: the store loads")
s = m.connect_vtpm(u)
r = transact(s, nv_read(IDX, 8))
s.close()
check(rc_of(r) == 0 and nv_read_data(r) == b"written4",
      "the NV write made while the TPM hung survived")
m.stop()

# Start-up calls (unseal, AK, EK CA key, counter) have a deadline too:
# a TPM that hangs before anything is served ends the start, naming the
# phase, within 6 x --tpm-timeout; nothing on disk changes.
store = open(os.path.join(m.state_dir, "keystore"), "rb").read() \
    if os.path.exists(os.path.join(m.state_dir, "keystore")) else None
os.kill(hw.proc.pid, signal.SIGSTOP)
t0 = time.monotonic()
rc = m.run_to_exit(timeout=6 * TIMEOUT_S + 15)
elapsed = time.monotonic() - t0
os.kill(hw.proc.pid, signal.SIGCONT)
lines = [l for l in m.log_text().splitlines() if "during start-up" in l]
print("start with the TPM stopped: rc %s after %.1f s: %s" %
      (rc, elapsed, lines[-1] if lines else "-"), flush=True)
check(rc == 1 and lines and "unsealing" in lines[-1],
      "a start with a hung TPM ends (exit 1) naming the phase", lines)
check(6 * TIMEOUT_S - 1 < elapsed < 6 * TIMEOUT_S + 8,
      "after 6 x --tpm-timeout (%d s)" % (6 * TIMEOUT_S), "%.1f s" % elapsed)
check(store is None or
      open(os.path.join(m.state_dir, "keystore"), "rb").read() == store,
      "the key store is untouched")
m.start()
check(m.wait_vtpm(u), "with the TPM back the manager starts and serves")
m.stop()
finish()
