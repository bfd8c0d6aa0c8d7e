#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Bad keys and bad state files: the instance refuses to start, exits
non-zero, names the file and the reason, and changes nothing on disk --
in particular it never replaces a state file with a fresh TPM."""

import os
import shutil
import stat
import struct

from vtpmtest import *

a = args()
wd = workdir(a, "refuse")
UUID_A = "5c0ba5e4-3b1f-4e8e-9c2a-6f1d2a3b4c5d"
UUID_B = "0b5e6f7a-1111-4222-8333-944455556666"


def snapshot(d):
    return {f: sha256_file(os.path.join(d, f)) for f in sorted(os.listdir(d))
            if not f.endswith(".lock")}


def expect_refusal(name, inst, *needles):
    before = snapshot(inst.state_dir)
    rc = inst.run_to_exit()
    log = inst.log_text().splitlines()[-1] if inst.log_text() else ""
    ok = rc not in (0, None) and all(n in log for n in needles)
    check(ok, "%s: refused (rc=%s)" % (name, rc), "log: %s" % log)
    check(snapshot(inst.state_dir) == before,
          "%s: state directory byte-for-byte unchanged" % name)
    # Sockets listen before the state loads: the refusal removes them.
    check(not os.path.lexists(inst.sock) and
          not os.path.lexists(inst.sock + ".ctrl"),
          "%s: no socket file left behind" % name)
    os.truncate(inst.log_path, 0)


# ---- keys ----
kd = os.path.join(wd, "keys")
os.makedirs(kd, exist_ok=True)
for n, content in (("short", os.urandom(31)), ("long", os.urandom(33)),
                   ("hex63", b"a" * 63), ("nonhex", b"z" * 64)):
    p = os.path.join(kd, n)
    with open(p, "wb") as f:
        f.write(content)
    os.chmod(p, 0o600)
    inst = Instance(a.vtpm, os.path.join(wd, "k-" + n), key=p)
    os.makedirs(inst.wd, exist_ok=True)
    rc = inst.run_to_exit()
    check(rc not in (0, None) and "state key" in inst.log_text(),
          "key file '%s' is refused with a clear error" % n,
          inst.log_text())
p = make_key(os.path.join(kd, "open"))
os.chmod(p, 0o640)
inst = Instance(a.vtpm, os.path.join(wd, "k-open"), key=p)
os.makedirs(inst.wd, exist_ok=True)
rc = inst.run_to_exit()
check(rc not in (0, None) and "group or others" in inst.log_text(),
      "a key file readable by its group is refused", inst.log_text())
check(not os.path.exists(inst.state_dir) or not os.listdir(inst.state_dir),
      "no state was created with a refused key")

# ---- state files ----
key = make_key(os.path.join(wd, "key"))
A = Instance(a.vtpm, wd, key=key, uuid=UUID_A)
A.start()
A.transact = None
s = A.connect()
check(rc_of(transact(s, nv_define(0x01500020, 8))) == 0, "define NV index")
check(rc_of(transact(s, nv_write(0x01500020, b"first---"))) == 0, "write 1")
s.close()
A.stop()
state = A.state_path()
old_copy = state + ".old-copy"
shutil.copy(state, os.path.join(wd, "old-copy"))
A.start()
s = A.connect()
check(rc_of(transact(s, nv_write(0x01500020, b"second--"))) == 0, "write 2")
s.close()
check(A.stop() == 0, "clean stop")
good = os.path.join(wd, "good-copy")
shutil.copy(state, good)
fname = os.path.basename(state)

with open(state, "r+b") as f:
    f.seek(100)
    b = f.read(1)
    f.seek(100)
    f.write(bytes([b[0] ^ 0x01]))
expect_refusal("one flipped byte", A, fname, "authentication failed")

shutil.copy(good, state)
with open(good, "rb") as f:
    data = f.read()
with open(state, "wb") as f:
    f.write(data[:len(data) // 2])
expect_refusal("truncated file", A, fname, "truncated")

with open(state, "wb") as f:
    f.write(b"")
expect_refusal("empty file", A, fname, "truncated")

# Another vTPM's authentic file (same key) under A's name.
wdb = os.path.join(wd, "b")
os.makedirs(wdb, exist_ok=True)
B = Instance(a.vtpm, wdb, key=key, uuid=UUID_B, domid=2).start()
B.stop()
shutil.copy(B.state_path(), state)
expect_refusal("another vTPM's state file", A, fname, "another vTPM")

shutil.copy(os.path.join(wd, "old-copy"), state)
expect_refusal("older generation put back", A, fname, "rollback")

os.unlink(state)
expect_refusal("state file deleted", A, fname, "missing")

shutil.copy(good, state)
other = make_key(os.path.join(wd, "other-key"))
W = Instance(a.vtpm, wd, key=other, uuid=UUID_A)
expect_refusal("wrong key", W, "authentication failed")

V = Instance(a.vtpm, wd, key=key, uuid=UUID_A, tpm_version="1.2")
expect_refusal("TPM 1.2 engine on a TPM 2.0 state", V, "another TPM version")

# After all that, the good state still loads with its data.
A.start()
s = A.connect()
r = transact(s, nv_read(0x01500020, 8))
check(rc_of(r) == 0 and nv_read_data(r) == b"second--",
      "the untouched state still loads with the last write")
s.close()
A.stop()

# ---- the slot file (docs/state-format.md) ----


def slots(path):
    """(offset, claimed generation) of each non-empty slot."""
    with open(path, "rb") as f:
        data = f.read()
    check(data[:8] == b"VTPMSLOT", "the state is a slot file")
    n, size = struct.unpack(">HI", data[10:16])
    out = []
    for i in range(n):
        off = 4096 + i * size
        if data[off:off + 8] == b"VTPMSTAT":
            out.append((off, struct.unpack(">Q", data[off + 32:off + 40])[0]))
    return out


def flip(path, off):
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0x01]))


# The newest slot damaged after a clean stop: the older slot is below the
# watermark of that stop, so the file is refused, not rolled back.
good2 = os.path.join(wd, "good-copy-2")
shutil.copy(state, good2)
shutil.copy(good2, state)
newest = max(slots(state), key=lambda x: x[1])
flip(state, newest[0] + 200)
expect_refusal("newest slot damaged after a clean stop", A, fname, "rollback")

# A crash: the write of the newest slot was cut (a torn slot); the state
# before it loads, with the previous NV write.
shutil.copy(good2, state)
A.start()
s = A.connect()
check(rc_of(transact(s, nv_write(0x01500020, b"third---"))) == 0, "write 3")
check(rc_of(transact(s, nv_write(0x01500020, b"fourth--"))) == 0, "write 4")
s.close()
A.kill()
newest = max(slots(state), key=lambda x: x[1])
flip(state, newest[0] + 200)
A.start()
s = A.connect()
r = transact(s, nv_read(0x01500020, 8))
check(rc_of(r) == 0 and nv_read_data(r) == b"third---",
      "a torn newest slot after a crash loads the state before it")
s.close()
A.stop()
check("is torn" in A.log_text(), "the torn slot is logged")
os.truncate(A.log_path, 0)

# A FIFO at the state file's name: refused at once (no hang), nothing made.
os.unlink(state)
os.mkfifo(state, 0o600)
rc = A.run_to_exit(timeout=20)
log = A.log_text()
check(rc not in (0, None) and "not a regular file" in log and fname in log,
      "a FIFO at the state path is refused without hanging (rc=%s)" % rc,
      log)
check(stat.S_ISFIFO(os.lstat(state).st_mode), "the FIFO is left as it is")
os.unlink(state)
os.truncate(A.log_path, 0)
# A symlink to a good state file is not followed.
shutil.copy(good, os.path.join(wd, "elsewhere"))
os.symlink(os.path.join(wd, "elsewhere"), state)
expect_refusal("a symlink at the state path", A, fname)
os.unlink(state)

# ---- TPM 1.2 ----
wd12 = os.path.join(wd, "tpm12")
os.makedirs(wd12, exist_ok=True)
T = Instance(a.vtpm, wd12, key=key, tpm_version="1.2", domid=5).start()
s = T.connect()
r = transact(s, struct.pack(">HIII", 0x00C1, 14, 0x46, 16))
check(r[:2] == b"\x00\xc4" and rc_of(r) == 0 and len(r) == 14 + 16,
      "TPM 1.2 engine answers TPM_GetRandom", r.hex())
s.close()
check(T.stop() == 0, "TPM 1.2 instance stops cleanly")
T.start()
s = T.connect()
r = transact(s, struct.pack(">HIII", 0x00C1, 14, 0x46, 16))
check(rc_of(r) == 0, "TPM 1.2 state reloads after restart")
s.close()
T.stop()
finish()
