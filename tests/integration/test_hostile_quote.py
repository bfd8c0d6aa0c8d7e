#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Deep quotes an impostor cannot forge and a stalled instance cannot
hold up (issue 12, item 5), against real processes: swtpm as the physical
TPM, the manager, two managed instances, vtpmctl.

impostor: rename a vTPM's socket and bind one that answers TPM2_PCR_Read
  with PCR values of the attacker's choosing.  The manager used to read
  the PCRs for `vtpmctl quote` from that path, so the physical TPM signed
  the chosen values and `verify-quote --ak-spki` accepted them.  Now the
  manager asks the instance over the link it made (PCR_READ): the quote
  carries the real values and the impostor socket is never connected to.
stall: an instance stopped with SIGSTOP while the manager waits for its
  PCRs.  The PCR read used to run on the manager's only task queue (10 s
  per read), so every other vTPM's NV define waited behind it.  Now only
  that quote waits, and fails at its deadline with a clear message.
"""

import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time

from vtpmtest import *

TIMEOUT_S = 4
a = args()
wd = workdir(a, "hostile-quote")
os.chmod(wd, 0o711)
hw = HardwareTPM(wd).start()
m = Manager(a.vtpm, wd, hw, extra=["--counter-interval", "0",
                                   "--tpm-timeout", str(TIMEOUT_S)]).start()
ak = m.ctl_json("status")["ak_spki"]
u_a = m.ctl("create", "--domid", "11").stdout.decode().strip()
u_b = m.ctl("create", "--domid", "12").stdout.decode().strip()
m.ctl("start", u_a)
m.ctl("start", u_b)
check(m.wait_vtpm(u_a) and m.wait_vtpm(u_b), "two managed vTPMs serve")

# The real PCR 16 of vTPM A: extended once by its guest.
real16 = hashlib.sha256(b"\0" * 32 + hashlib.sha256(b"guest").digest()).hexdigest()
s = m.connect_vtpm(u_a)
check(rc_of(transact(s, pcr_extend(16, hashlib.sha256(b"guest").digest()))) == 0,
      "the guest extends PCR 16 of vTPM A")
s.close()


# ---- impostor ----

class Impostor:
    """A socket at the vTPM's path that answers TPM2_PCR_Read with chosen
    values (0x41...) and counts who connects."""

    def __init__(self, path):
        self.path = path
        self.connections = 0
        self.srv = socket.socket(socket.AF_UNIX)
        self.srv.bind(path)
        os.chmod(path, 0o777)
        self.srv.listen(8)
        self.srv.settimeout(0.2)
        self.stop = False
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def answer(self, c):
        c.settimeout(5)
        while True:
            hdr = recv_exact(c, 10)
            size = struct.unpack(">I", hdr[2:6])[0]
            body = recv_exact(c, size - 10)
            sel = body[4 + 2 + 1:4 + 2 + 1 + 3]
            mask = sel[0] | sel[1] << 8 | sel[2] << 16
            n = min(8, bin(mask).count("1"))
            got, k = 0, 0
            for i in range(24):
                if mask >> i & 1 and k < n:
                    got |= 1 << i
                    k += 1
            p = struct.pack(">I", 1) + struct.pack(">IHB", 1, 0xB, 3)
            p += bytes([got & 0xff, got >> 8 & 0xff, got >> 16 & 0xff])
            p += struct.pack(">I", n) + (struct.pack(">H", 32) + b"A" * 32) * n
            c.sendall(struct.pack(">HII", 0x8001, 10 + len(p), 0) + p)

    def run(self):
        while not self.stop:
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            try:
                self.answer(c)
            except (OSError, EOFError, struct.error):
                pass
            c.close()

    def close(self):
        self.stop = True
        self.th.join(5)
        self.srv.close()
        os.unlink(self.path)


sock_a = m.vtpm_sock(u_a)
os.rename(sock_a, sock_a + ".real")
imp = Impostor(sock_a)
qf = os.path.join(wd, "quote-a.json")
r = m.ctl("quote", u_a, "--nonce", "00112233445566778899", "--out", qf,
          check_rc=False)
quoted = r.returncode == 0
vals, verified = [], False
if quoted:
    with open(qf) as f:
        vals = json.load(f)["vtpm_pcrs"]
    v = m.ctl("verify-quote", qf, "--ak-spki", ak, check_rc=False)
    verified = v.returncode == 0 and b"quote verifies" in v.stdout
imp.close()
os.rename(sock_a + ".real", sock_a)
chosen = "41" * 32
forged = quoted and verified and len(vals) == 24 and vals[16] == chosen
honest = quoted and verified and len(vals) == 24 and vals[16] == real16
print("attack: impostor socket at RUN_DIR/U/tpm answering chosen PCRs  "
      "before: the physical TPM signed the impostor's PCR values and "
      "verify-quote --ak-spki accepted them (main: PCR 16 = 4141...)  "
      "after: %s" %
      ("quote verifies with the real PCR 16 = %s...; impostor connections: "
       "%d" % (vals[16][:16], imp.connections) if honest else
       "FORGED" if forged else "quote failed: %s" % r.stderr.decode()),
      flush=True)
check(honest, "the quote verifies and carries vTPM A's real PCR 16, not the "
      "impostor's", (r.returncode, r.stderr, vals[16:17]))
check(imp.connections == 0, "the manager never connected to the socket path",
      imp.connections)

# ---- stall ----

pid_a = [v["pid"] for v in m.ctl_json("list")["vtpms"] if v["uuid"] == u_a][0]
os.kill(pid_a, signal.SIGSTOP)
t0 = time.monotonic()
qp = subprocess.Popen([m.ctl_exe, "--control", m.control, "quote", u_a,
                       "--nonce", "0011"], stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)
time.sleep(0.5)     # the manager is now waiting for A's PCRs
s = m.connect_vtpm(u_b)
lat = []
for i in range(3):
    idx = 0x01500100 + i
    t1 = time.monotonic()
    rc = rc_of(transact(s, nv_define(idx, 8)))
    lat.append(time.monotonic() - t1)
    check(rc == 0, "NV define %d in vTPM B while A is stopped mid-quote" % i)
s.close()
out, err = qp.communicate(timeout=60)
q_elapsed = time.monotonic() - t0
os.kill(pid_a, signal.SIGCONT)
worst = max(lat)
print("attack: instance stopped (SIGSTOP) while the manager waits for its "
      "PCRs  before: another vTPM's NV define waited behind the PCR read "
      "on the manager's only task queue (9.5 s measured on main, one 10 s "
      "read; 38 s reported in issue 12)  after: NV define in vTPM B took %.1f ms "
      "(worst of 3); the quote of A failed after %.1f s" %
      (worst * 1000, q_elapsed), flush=True)
check(worst < 1.0, "the stalled quote does not delay another vTPM's NV "
      "define (< 1 s)", "%.3f s" % worst)
check(qp.returncode != 0 and b"PCR" in err and
      q_elapsed < TIMEOUT_S + 3,
      "the quote of the stopped vTPM fails at its deadline with a clear "
      "message", (qp.returncode, err, q_elapsed))

# Once it runs again, a quote works again.
time.sleep(0.3)
r = m.ctl("quote", u_a, "--nonce", "aa", "--out", qf, check_rc=False)
check(r.returncode == 0, "after SIGCONT the vTPM can be quoted again",
      r.stderr)
v = m.ctl("verify-quote", qf, "--ak-spki", ak, check_rc=False)
check(v.returncode == 0, "and that quote verifies", v.stdout)
t0 = time.monotonic()
rcs = [m.ctl("quote", u_a, "--nonce", "%02x" % i, check_rc=False).returncode
       for i in range(5)]
check(rcs == [0] * 5, "five quotes back to back all succeed (%.2f s)" %
      (time.monotonic() - t0), rcs)

# Every transport: a vTPM served over TCP is quoted the same way (the
# socket source of before refused it).
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
u_c = m.ctl("create", "--domid", "13", "--transport",
            "tcp:127.0.0.1:%d" % port).stdout.decode().strip()
m.ctl("start", u_c)
up = False
for _ in range(200):
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=2)
        r = transact(c, pcr_extend(16, hashlib.sha256(b"tcp").digest()))
        c.close()
        up = rc_of(r) == 0
        break
    except OSError:
        time.sleep(0.05)
check(up, "a managed vTPM over tcp: serves, PCR 16 extended")
r = m.ctl("quote", u_c, "--nonce", "ab", "--out", qf, check_rc=False)
ok = r.returncode == 0
if ok:
    with open(qf) as f:
        ok = json.load(f)["vtpm_pcrs"][16] == hashlib.sha256(
            b"\0" * 32 + hashlib.sha256(b"tcp").digest()).hexdigest()
v = m.ctl("verify-quote", qf, "--ak-spki", ak, check_rc=False)
check(ok and v.returncode == 0, "its quote verifies and carries its PCR 16",
      (r.stderr, v.stdout))
check(m.stop() == 0, "the manager stops cleanly")
finish()
