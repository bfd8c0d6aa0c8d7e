#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""QEMU's -tpmdev emulator migrating between two QEMUs, each with a
vtpm-service instance, under a migration key (issue 12, item 4).

The source QEMU (paused: no guest code runs, so the TPM's contents are
only what this test puts there) uses instance SRC; a PCR is extended with
a random digest through SRC's data socket (instances serve several
clients).  QEMU migrates to a file ("exec:cat > FILE"): its tpm-emulator
fetches the state blobs with GET_STATEBLOB.  The destination QEMU loads
the file with instance DST (same migration key): it hands the blobs back
with SET_STATEBLOB and the flags the source gave, then INIT.  Checks:
the stream holds sealed blobs only (the VTPMMIG1 magic, no swtpm
envelope), DST's PCR reads the source's value, and a destination whose
instance has another key refuses the blobs (QEMU fails the load).

Exit 0 pass, 1 fail, 77 QEMU cannot run here."""

import argparse
import json
import os
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

p = argparse.ArgumentParser()
p.add_argument("--vtpm", required=True)
p.add_argument("--workdir", default=None)
a = p.parse_args()

if not shutil.which("qemu-system-x86_64"):
    print("SKIPPED: qemu-system-x86_64 not installed")
    sys.exit(77)

wd = a.workdir or tempfile.mkdtemp(prefix="vtpm-mig-")
shutil.rmtree(wd, ignore_errors=True)
os.makedirs(wd)
procs = []
failed = 0


def check(cond, name, detail=""):
    global failed
    print("%s %s %s" % ("ok  " if cond else "FAIL", name,
                        "" if cond else detail), flush=True)
    if not cond:
        failed += 1


def key(path):
    with open(path, "w") as f:
        f.write(secrets.token_bytes(32).hex() + "\n")
    os.chmod(path, 0o600)
    return path


def instance(name, mkey):
    d = os.path.join(wd, name)
    os.makedirs(d)
    sock = os.path.join(d, "tpm.sock")
    log = open(os.path.join(d, "log"), "wb")
    pr = subprocess.Popen([a.vtpm, "--role=instance", "--domid", "1",
                           "--transport", "unix:" + sock,
                           "--state-key", key(os.path.join(d, "key")),
                           "--state-dir", os.path.join(d, "st"),
                           "--migration-key", "file=%s" % mkey],
                          stdout=log, stderr=subprocess.STDOUT)
    procs.append(pr)
    for _ in range(1000):
        if os.path.exists(sock + ".ctrl") and os.path.exists(sock):
            return sock
        time.sleep(0.01)
    raise RuntimeError("instance %s did not start" % name)


def qemu(name, ctrl, extra):
    qmp = os.path.join(wd, name + ".qmp")
    err = open(os.path.join(wd, name + ".stderr"), "wb")
    pr = subprocess.Popen(
        ["qemu-system-x86_64", "-machine", "pc", "-accel", "tcg",
         "-nodefaults", "-display", "none", "-S", "-m", "128",
         "-chardev", "socket,id=chrtpm,path=" + ctrl,
         "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
         "-device", "tpm-tis,tpmdev=tpm0",
         "-qmp", "unix:%s,server=on,wait=off" % qmp] + extra,
        stdout=err, stderr=subprocess.STDOUT)
    procs.append(pr)
    for _ in range(1000):
        if os.path.exists(qmp):
            break
        if pr.poll() is not None:
            break
        time.sleep(0.01)
    return pr, qmp


class QMP:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(60)
        self.s.connect(path)
        self.f = self.s.makefile("rwb")
        self._read()
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("QMP closed")
            o = json.loads(line)
            if "event" not in o:
                return o

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args})
                     .encode() + b"\n")
        self.f.flush()
        return self._read()


def tpm(sock, cmd):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(sock)
    s.sendall(cmd)
    hdr = b""
    while len(hdr) < 10:
        hdr += s.recv(10 - len(hdr))
    n = struct.unpack(">I", hdr[2:6])[0]
    body = b""
    while len(body) < n - 10:
        body += s.recv(n - 10 - len(body))
    s.close()
    return hdr + body


def rc(r):
    return struct.unpack(">I", r[6:10])[0]


def cmd(tag, cc, body):
    return struct.pack(">HII", tag, 10 + len(body), cc) + body


PW = struct.pack(">IHBH", 0x40000009, 0, 1, 0)
STARTUP = cmd(0x8001, 0x144, struct.pack(">H", 0))


def extend(pcr, digest):
    return cmd(0x8002, 0x182, struct.pack(">II", pcr, len(PW)) + PW +
               struct.pack(">IH", 1, 0x000B) + digest)


def read_pcr(pcr):
    bm = bytearray(3)
    bm[pcr // 8] |= 1 << (pcr % 8)
    return cmd(0x8001, 0x17E, struct.pack(">IHB", 1, 0x000B, 3) + bytes(bm))


def wait_migrated(q, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        st = q.cmd("query-migrate")["return"].get("status")
        if st in ("completed", "failed", "cancelled"):
            return st
        time.sleep(0.2)
    return "timeout"


try:
    mkey = key(os.path.join(wd, "migration.key"))
    okey = key(os.path.join(wd, "other.key"))
    src = instance("src", mkey)
    dst = instance("dst", mkey)
    oth = instance("other", okey)

    qs, qmp_s = qemu("qemu-src", src + ".ctrl", [])
    if qs.poll() is not None:
        print("SKIPPED: QEMU does not start here: %s" %
              open(os.path.join(wd, "qemu-src.stderr")).read()[-500:])
        sys.exit(77)
    q = QMP(qmp_s)
    time.sleep(0.5)  # QEMU's reset has run INIT on the paused machine
    r = tpm(src, STARTUP)
    check(rc(r) in (0, 0x100), "TPM2_Startup on the source (QEMU paused)",
          r.hex())
    digest = secrets.token_bytes(32)
    check(rc(tpm(src, extend(16, digest))) == 0,
          "PCR 16 extended on the source")
    pcr_src = tpm(src, read_pcr(16))
    stream = os.path.join(wd, "migration.stream")
    r = q.cmd("migrate", uri="exec:cat > " + stream)
    st = wait_migrated(q)
    check(st == "completed", "the source QEMU migrated", "%s %s" % (st, r))
    q.cmd("quit")
    qs.wait(30)
    data = open(stream, "rb").read()
    check(data.count(b"VTPMMIG1") >= 1,
          "the migration stream carries sealed blobs (VTPMMIG1)",
          "%d bytes" % len(data))
    # swtpm's envelope: version 2, min 1, header size 10, migration flag.
    check(b"\x02\x01\x00\x0a\x00\x04" not in data,
          "no state blob in the clear in the migration stream")

    qd, qmp_d = qemu("qemu-dst", dst + ".ctrl",
                     ["-incoming", "exec:cat " + stream])
    qq = QMP(qmp_d)
    st = wait_migrated(qq)
    check(st == "completed", "the destination QEMU loaded the stream", st)
    pcr_dst = tpm(dst, read_pcr(16))
    check(rc(pcr_dst) == 0 and pcr_dst == pcr_src,
          "the destination vTPM has the source's PCR 16",
          "%s vs %s" % (pcr_dst.hex(), pcr_src.hex()))
    qq.cmd("quit")
    qd.wait(30)

    qo, qmp_o = qemu("qemu-other", oth + ".ctrl",
                     ["-incoming", "exec:cat " + stream])
    try:
        qo_q = QMP(qmp_o)
        st = wait_migrated(qo_q, 60)
    except (EOFError, OSError):
        st = "exited"
    try:
        qo.wait(30)
    except subprocess.TimeoutExpired:
        qo.kill()
    err = open(os.path.join(wd, "qemu-other.stderr"), "rb").read()
    check(st != "completed" and b"stateblob" in err.lower(),
          "a destination whose instance has another key refuses the blobs",
          "%s: %s" % (st, err[-400:]))
    pcr_oth = tpm(oth, read_pcr(16))
    check(pcr_oth != pcr_src, "and its vTPM does not take the source's PCRs")
finally:
    for pr in procs:
        if pr.poll() is None:
            pr.terminate()
            try:
                pr.wait(10)
            except subprocess.TimeoutExpired:
                pr.kill()
print("%s" % ("PASS" if not failed else "FAIL (logs in %s)" % wd))
sys.exit(1 if failed else 0)
