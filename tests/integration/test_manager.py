#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The manager role with swtpm as the physical TPM: vTPM keys sealed to
PCRs, NV survives restarts of manager and instance, PCR change refuses to
unlock and changes nothing, rollback of a state file or of the key store
is refused, deep quotes verify (and fail when altered), the link is the
identity."""

import json
import os
import shutil
import re
import signal
import struct
import subprocess
import time

from vtpmtest import *

a = args()
wd = workdir(a, "manager")
# Instances run as an unprivileged user: it must reach its directories.
os.chmod(wd, 0o711)
hw = HardwareTPM(wd).start()
m = Manager(a.vtpm, wd, hw, extra=["--counter-interval", "0"]).start()

st = m.ctl_json("status")
check(st["ok"] and st["vtpms"] == 0 and st["pcrs"] == "sha256:0,2,4,7",
      "a new manager seals a root key and answers status", st)
check(oct(os.stat(m.control).st_mode & 0o777) == "0o600",
      "the control socket is mode 0600")

# Many requests in one write are served one after the other without
# growing the manager's stack (it used to recurse once per line with a
# 64 KiB buffer a level: 1000 lines overflowed it and killed the manager).
import socket as _socket
N_LINES = 2000
cs = _socket.socket(_socket.AF_UNIX)
cs.settimeout(60)
cs.connect(m.control)
cs.sendall(b'{"cmd":"status"}\n' * N_LINES)
got = b""
try:
    while got.count(b"\n") < N_LINES:
        chunk = cs.recv(1 << 16)
        if not chunk:
            break
        got += chunk
except OSError:
    pass
cs.close()
lines = got.split(b"\n")[:-1]
check(len(lines) == N_LINES and all(json.loads(l)["ok"] for l in lines),
      "%d requests in one write: %d answers, all ok" % (N_LINES, N_LINES),
      len(lines))
check(m.proc.poll() is None and m.ctl_json("status")["ok"],
      "the manager still serves after them")

# A link planted where the manager makes a vTPM's run directory: the
# manager (root) must not chown or chmod the link's target.
victim = os.path.join(wd, "victim")
with open(victim, "w") as f:
    f.write("not yours\n")
os.chmod(victim, 0o644)
victim_before = os.stat(victim)
# --no-ek-cert: create leaves the run directory to "start" (a
# manufacture would start the instance and make it).
u_link = m.ctl("create", "--domid", "9",
               "--no-ek-cert").stdout.decode().strip()
os.makedirs(m.run_dir, exist_ok=True)
planted = os.path.join(m.run_dir, u_link)
os.symlink(victim, planted)
r = m.ctl("start", u_link, check_rc=False)
time.sleep(0.5)
victim_after = os.stat(victim)
check((victim_after.st_uid, victim_after.st_gid, victim_after.st_mode) ==
      (victim_before.st_uid, victim_before.st_gid, victim_before.st_mode),
      "a link planted at a vTPM's run directory: its target's owner and "
      "mode are untouched", r.stdout.decode() + r.stderr.decode())
m.ctl("stop", u_link, check_rc=False)
os.unlink(planted)
had_dir = os.path.isdir(m.vtpm_dir(u_link))
r = m.ctl("delete", u_link, check_rc=False)
check(r.returncode == 0 and had_dir and not os.path.exists(m.vtpm_dir(u_link)),
      "vtpmctl delete: answered once the store is committed, the state "
      "directory removed by then", (had_dir, r.returncode))

r = m.ctl("create", "--domid", "5")
uuid = r.stdout.decode().strip()
check(len(uuid) == 36, "vtpmctl create prints the new vTPM's UUID", uuid)
j = m.ctl_json("create", "--domid", "6")
uuid_b = j["uuid"]
check(len(uuid_b) == 36, "vtpmctl --json create carries the uuid")
r = m.ctl("create", "--uuid", uuid, check_rc=False)
check(r.returncode == 4, "creating an existing UUID fails with exit 4",
      r.returncode)
r = m.ctl("show", "00000000-0000-4000-8000-000000000000", check_rc=False)
check(r.returncode == 3, "show of an unknown vTPM exits 3", r.returncode)
m.ctl("start", uuid)
m.ctl("start", uuid_b)
check(m.wait_vtpm(uuid) and m.wait_vtpm(uuid_b), "both vTPMs serve")
lst = m.ctl_json("list")["vtpms"]
check(sorted(v["uuid"] for v in lst) == sorted([uuid, uuid_b]) and
      all(v["state"] == "running" for v in lst),
      "vtpmctl list shows both running")
pid = [v["pid"] for v in lst if v["uuid"] == uuid][0]
with open("/proc/%d/status" % pid) as f:
    uid_line = [l for l in f if l.startswith("Uid:")][0]
check(os.geteuid() != 0 or uid_line.split()[1] != "0",
      "instances run as an unprivileged user", uid_line)


def switches(p):
    """Context switches of every thread of process p so far."""
    n = 0
    for t in os.listdir("/proc/%d/task" % p):
        try:
            with open("/proc/%d/task/%s/status" % (p, t)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:",
                                        "nonvoluntary_ctxt_switches:")):
                        n += int(line.split()[1])
        except FileNotFoundError:
            pass  # a thread that just ended
    return n


# An idle managed instance sleeps: none of its threads wakes on a timer
# (the manager link's reader thread used to poll every 200 ms: 10
# wake-ups in 2 s).
time.sleep(0.5)
sw0 = switches(pid)
time.sleep(2.0)
sw1 = switches(pid)
check(sw1 - sw0 <= 1, "an idle managed instance does not wake up: %d "
      "context switches in 2 s" % (sw1 - sw0), (sw0, sw1))

# An instance that cannot be restarted (its state directory taken over
# by another uid after a crash) is retried with a doubling backoff, not
# at a fixed interval, and comes back once the directory is fixed.
u_bo = m.ctl("create", "--domid", "11", "--no-ek-cert").stdout.decode().strip()
m.ctl("start", u_bo)
check(m.wait_vtpm(u_bo), "backoff: the vTPM serves")
bo_pid = [v["pid"] for v in m.ctl_json("list")["vtpms"] if v["uuid"] == u_bo][0]
bo_dir = m.vtpm_dir(u_bo)
bo_st = os.stat(bo_dir)
os.chown(bo_dir, 4242, 4242)
os.kill(bo_pid, signal.SIGKILL)
time.sleep(4.5)
tries = [int(x) for x in re.findall(
    r"vTPM %s: its instance did not start; next try in (\d+) ms" % u_bo,
    m.log_text())]
refused = len(re.findall(r"vTPM %s: .* is owned by uid 4242" % u_bo,
                         m.log_text()))
check(len(tries) >= 2 and all(b == 2 * a for a, b in zip(tries, tries[1:]))
      and 2 <= refused <= 4,
      "backoff: a restart that fails waits twice as long each time",
      (tries, refused))
os.chown(bo_dir, bo_st.st_uid, bo_st.st_gid)
check(m.wait_vtpm(u_bo, timeout=20),
      "backoff: the vTPM comes back once its directory is usable again")
m.ctl("stop", u_bo)
m.ctl("delete", u_bo)

# NV through the vTPM, then restart manager and instances.
IDX = 0x01500040
s = m.connect_vtpm(uuid)
check(rc_of(transact(s, nv_define(IDX, 8))) == 0, "NV define in the vTPM")
check(rc_of(transact(s, nv_write(IDX, b"managed!"))) == 0, "NV write")
s.close()
check(m.stop() == 0, "the manager stops (and its instances) with exit 0")
check(not os.path.exists(m.vtpm_sock(uuid)),
      "the instance is gone with its manager")
m.start()
check(m.wait_vtpm(uuid), "after a restart the vTPM serves again")
s = m.connect_vtpm(uuid)
r = transact(s, nv_read(IDX, 8))
s.close()
check(rc_of(r) == 0 and nv_read_data(r) == b"managed!",
      "NV written before the restart reads back")

# ---- deep quote ----
q = os.path.join(wd, "quote.json")
m.ctl("quote", uuid, "--nonce", "0123456789abcdef", "--out", q)
ak = m.ctl_json("status")["ak_spki"]
r = m.ctl("verify-quote", q, "--ak-spki", ak, check_rc=False)
check(r.returncode == 0 and b"quote verifies" in r.stdout,
      "a deep quote verifies against the hardware TPM's key", r.stdout)
with open(q) as f:
    quote = json.load(f)
failures = []
for field in ("attest", "signature", "nonce", "vtpm_pcr_digest"):
    val = quote[field]
    step = max(2, len(val) // 16 // 2 * 2)
    for pos in range(0, len(val), step):
        bad = dict(quote)
        flipped = "%02x" % (int(val[pos:pos + 2], 16) ^ 0x01)
        bad[field] = val[:pos] + flipped + val[pos + 2:]
        path = os.path.join(wd, "bad.json")
        with open(path, "w") as f:
            json.dump(bad, f)
        r = m.ctl("verify-quote", path, "--ak-spki", ak, check_rc=False)
        if r.returncode == 0 and field != "vtpm_pcr_digest":
            failures.append("%s byte %d" % (field, pos // 2))
bad = dict(quote)
bad["vtpm_pcrs"] = list(quote["vtpm_pcrs"])
bad["vtpm_pcrs"][3] = "11" + bad["vtpm_pcrs"][3][2:]
with open(os.path.join(wd, "bad.json"), "w") as f:
    json.dump(bad, f)
r = m.ctl("verify-quote", os.path.join(wd, "bad.json"), "--ak-spki", ak,
          check_rc=False)
if r.returncode == 0:
    failures.append("a vTPM PCR value")
bad = dict(quote)
bad["uuid"] = uuid_b
with open(os.path.join(wd, "bad.json"), "w") as f:
    json.dump(bad, f)
r = m.ctl("verify-quote", os.path.join(wd, "bad.json"), "--ak-spki", ak,
          check_rc=False)
if r.returncode == 0:
    failures.append("the uuid")
check(not failures, "an altered quote (any byte of attest, signature or "
      "nonce, a PCR value, the UUID) fails to verify", failures)
other_ak = ak[:-20] + "%02x" % (int(ak[-20:-18], 16) ^ 0xff) + ak[-18:]
r = m.ctl("verify-quote", q, "--ak-spki", other_ak, check_rc=False)
check(r.returncode == 8, "a quote checked against another key fails")

# ---- rollback of a vTPM state file ----
vdir = m.vtpm_dir(uuid)
old = os.path.join(wd, "old-slots")
shutil.rmtree(old, ignore_errors=True)
shutil.copytree(vdir, old)
s = m.connect_vtpm(uuid)
check(rc_of(transact(s, nv_write(IDX, b"newer---"))) == 0, "write again")
check(rc_of(transact(s, nv_write(IDX, b"newest--"))) == 0, "and again")
s.close()
m.ctl("stop", uuid)
# A stopped instance exits 0 by itself: no signal (it once aborted in a
# double uv_close of the PCR server's handles after its last state write).
want = "vTPM %s: instance stopped (status 0)" % uuid
deadline = time.time() + 5
while want not in m.log_text() and time.time() < deadline:
    time.sleep(0.1)
stops = [l for l in m.log_text().splitlines()
         if ("vTPM %s: instance stopped" % uuid) in l]
check(stops and stops[-1].endswith(want),
      "vtpmctl stop: the instance exits 0, no signal", "\n".join(stops))
for f in os.listdir(old):
    shutil.copy(os.path.join(old, f), os.path.join(vdir, f))
m.ctl("start", uuid)
time.sleep(2)
log = m.log_text()
check("rollback or replay detected" in log,
      "an old copy of the vTPM's state is refused (rollback)",
      log[-1500:])
check(not m.wait_vtpm(uuid, timeout=2), "and that vTPM serves nothing")
m.ctl("stop", uuid)
shutil.rmtree(old)

# ---- another vTPM's key: the link is the identity ----
check(m.wait_vtpm(uuid_b), "the other vTPM is unaffected")
for cmd in ("list", "show " + uuid_b, "status"):
    out = m.ctl("--json", *cmd.split()).stdout.decode()
    if "key" in out.replace("ak_spki", "").lower():
        check(False, "no control command shows a state key", out)
        break
else:
    check(True, "no control command shows a state key")

fake = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    "fake_instance.py")
fwd = os.path.join(wd, "fake")
os.makedirs(fwd, exist_ok=True)
os.chmod(fwd, 0o777)
m.stop()
os.environ["FAKE_OUT"] = fwd
mf = Manager(a.vtpm, wd, hw, extra=["--counter-interval", "0",
                                    "--instance-exe", fake])
mf.start()
mf.ctl("start", uuid_b)
time.sleep(2)
mf.ctl("stop", uuid_b)
res = {}
for fn in os.listdir(fwd):
    with open(os.path.join(fwd, fn)) as f:
        res.update(json.load(f))
check(res.get("own_status") == 0 and len(res.get("own_key", "")) == 64,
      "an instance gets its own vTPM's key over its link", res)
check(res.get("claim_other_status") == 5 and "claim_other_key" not in res,
      "asking with another vTPM's UUID in the request gets nothing "
      "(INVALID_REQUEST)", res)
check(res.get("manage_status") == 3,
      "management ordinals on a vTPM link are FORBIDDEN", res)
mf.stop()

# ---- a planned upgrade: re-seal to predicted PCR values ----
import hashlib
m = Manager(a.vtpm, wd, hw, extra=["--counter-interval", "0"]).start()
r = hw.tools("tpm2_pcrread", "sha256:7", "-o", os.path.join(wd, "pcr7"))
old7 = open(os.path.join(wd, "pcr7"), "rb").read()
step = bytes([0x0a]) * 32
new7 = hashlib.sha256(old7 + step).hexdigest()
r = m.ctl("reseal", "--pcr", "7=" + new7, check_rc=False)
check(r.returncode == 0, "vtpmctl reseal seals the root key to a predicted "
      "PCR 7", r.stdout + r.stderr)
check(m.stop() == 0, "manager stops before the 'upgrade'")
hw.tools("tpm2_pcrextend", "7:sha256=" + step.hex())
m.start()
m.ctl("start", uuid_b)
check(m.wait_vtpm(uuid_b), "after the upgrade (PCR 7 as predicted) the "
      "manager unlocks and the vTPMs serve")
check(m.stop() == 0, "and stops")
hw.stop()
hw.start()   # a power cycle: the PCRs of the configuration before
m.start()
check("previous seal" in m.log_text(), "booting the old configuration "
      "again still unlocks, with the previous seal")
check(m.stop() == 0, "and stops")

# ---- commits that overlap, two predictions in a row, SIGTERM mid-task ----
m = Manager(a.vtpm, wd, hw, extra=["--counter-interval", "0"]).start()
procs = [subprocess.Popen([m.ctl_exe, "--control", m.control, "create"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
         for _ in range(6)]
rcs = [p.wait(60) for p in procs]
check(rcs == [0] * 6, "six concurrent creates all succeed", rcs)
wrong = "ab" * 32
m.ctl("reseal", "--pcr", "7=" + wrong)
m.ctl("reseal", "--pcr", "7=" + "cd" * 32)
check(m.stop() == 0, "manager stops after the creates and two reseals")
m.start()
check("previous seal" in m.log_text().split("signal 15")[-1],
      "two wrong predictions in a row: the seal of the running "
      "configuration still opens (kept as .prev)")
n = m.ctl_json("status")["vtpms"]
check(n == 8, "the store holds all vTPMs after overlapping commits", n)
m.ctl("reseal")           # back to a seal of the current values
p = subprocess.Popen([m.ctl_exe, "--control", m.control, "reseal"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(0.005)
m.proc.send_signal(15)
try:
    rc = m.proc.wait(30)
except subprocess.TimeoutExpired:
    rc = None
    m.proc.kill()
p.wait(30)
check(rc == 0, "SIGTERM while a TPM task runs still stops the manager", rc)

# ---- the physical TPM's PCRs changed: refuse, change nothing ----
m = Manager(a.vtpm, wd, hw, extra=["--counter-interval", "0"])


def snapshot():
    out = {}
    for root, dirs, files in os.walk(m.state_dir):
        for fn in files:
            if not fn.endswith(".lock"):
                p = os.path.join(root, fn)
                out[p] = sha256_file(p)
    return out


before = snapshot()
r = hw.tools("tpm2_pcrextend", "7:sha256=" + "00" * 31 + "07")
check(r.returncode == 0, "extend PCR 7 of the hardware TPM")
rc = m.run_to_exit()
log = m.log_text().splitlines()[-1]
check(rc not in (0, None) and "PCR 7" in log and "differs" in log,
      "the manager refuses to unlock, naming PCR 7", log)
check(snapshot() == before, "state and store files are byte-for-byte "
      "unchanged")

# Back to the sealed PCR values: a power cycle of the hardware TPM.
hw.stop()
hw.start()

# ---- rollback of the key store ----
m = Manager(a.vtpm, wd, hw, extra=["--counter-interval", "0"]).start()
store = os.path.join(m.state_dir, "keystore")
shutil.copy(store, os.path.join(wd, "old-store"))
m.ctl("create")
check(m.stop() == 0, "manager stops after a create")
shutil.copy(os.path.join(wd, "old-store"), store)
before = snapshot()
rc = m.run_to_exit()
log = m.log_text().splitlines()[-1]
check(rc not in (0, None) and "older copy of the store" in log,
      "an older copy of the key store is refused (NV counter)", log)
check(snapshot() == before, "and nothing on disk changed")
hw.stop()
finish()
