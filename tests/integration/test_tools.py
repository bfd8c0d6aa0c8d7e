#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""An instance driven by unmodified tpm2-tools and swtpm_ioctl: random,
PCRs, an ECC primary, NV define/write, SIGTERM, restart, NV read back,
and the control channel (capabilities, init, locality, stop, state blob
save and load)."""

import os
import stat
import subprocess
import time

from vtpmtest import *

a = args()
wd = workdir(a, "tools")
# swtpm_ioctl --save/--load move blobs in the clear, as swtpm serves them
# by default: this instance opts in (--allow-plaintext-state).
inst = Instance(a.vtpm, wd, extra=["--allow-plaintext-state"]).start()

r = inst.tools("tpm2_getrandom", "--hex", "16")
check(len(r.stdout.strip()) == 32, "tpm2_getrandom returns 16 bytes",
      r.stdout)

check(stat.S_IMODE(os.stat(inst.sock).st_mode) == 0o600 and
      stat.S_IMODE(os.stat(inst.ctrl).st_mode) == 0o600,
      "data and control sockets are mode 0600")

inst.tools("tpm2_pcrextend",
           "16:sha256=" + "00" * 31 + "01")
r = inst.tools("tpm2_pcrread", "sha256:16")
check(b"0x90F4B39548DF55AD6187A1D20D731ECEE78C545B94AFD16F42EF7592D99CD365"
      in r.stdout, "pcrextend then pcrread gives the expected PCR 16",
      r.stdout)

r = inst.tools("tpm2_createprimary", "-C", "o", "-G", "ecc",
               "-c", os.path.join(wd, "primary.ctx"))
check(b"ecc" in r.stdout.lower(), "createprimary ecc under owner")
inst.tools("tpm2_flushcontext", "-t")

data = os.urandom(32)
with open(os.path.join(wd, "nv.in"), "wb") as f:
    f.write(data)
inst.tools("tpm2_nvdefine", "0x1500016", "-C", "o", "-s", "32", "-a",
           "ownerread|ownerwrite|authread|authwrite")
inst.tools("tpm2_nvwrite", "0x1500016", "-C", "o", "-i",
           os.path.join(wd, "nv.in"))
gen_before = os.path.getsize(inst.state_path())

rc = inst.stop()
check(rc == 0, "SIGTERM stops the instance with exit 0", "rc=%s" % rc)
check(not os.path.exists(inst.sock) and not os.path.exists(inst.ctrl),
      "socket files are removed at exit (data and control)")

inst = Instance(a.vtpm, wd, key=inst.key,
               extra=["--allow-plaintext-state"]).start()
r = inst.tools("tpm2_nvread", "0x1500016", "-C", "o", "-s", "32")
check(r.stdout == data, "after restart nvread returns the written bytes")
r = inst.tools("tpm2_pcrread", "sha256:16")
check(b"0x0000000000000000000000000000000000000000000000000000000000000000"
      in r.stdout, "after restart PCR 16 is reset (a power cycle)")


def ioctl(*argv):
    return subprocess.run(["swtpm_ioctl", "--unix", inst.ctrl] + list(argv),
                          capture_output=True, timeout=30)


r = ioctl("-c")
check(r.returncode == 0 and b"0xffff" in r.stdout,
      "swtpm_ioctl -c reports capabilities 0xffff", r.stdout + r.stderr)
r = ioctl("-l", "3")
check(r.returncode == 0, "swtpm_ioctl -l 3 sets locality")
r = ioctl("-l", "5")
check(r.returncode != 0, "swtpm_ioctl -l 5 is refused")
ioctl("-l", "0")
r = ioctl("--info", "1")
check(b'"family":"2.0"' in r.stdout, "swtpm_ioctl --info 1 says TPM 2.0",
      r.stdout)
r = ioctl("-e")
check(r.returncode == 0 and b"tpmEstablished is 0" in r.stdout,
      "swtpm_ioctl -e reads tpmEstablished", r.stdout + r.stderr)
r = ioctl("-i")
check(r.returncode == 0, "swtpm_ioctl -i power-cycles the TPM")
inst.tools("tpm2_startup", "-c")

blob = os.path.join(wd, "perm.blob")
r = ioctl("--save", "permanent", blob)
check(r.returncode == 0 and os.path.getsize(blob) > 1000,
      "swtpm_ioctl --save permanent exports the permanent state")
r = ioctl("--stop")
check(r.returncode == 0, "swtpm_ioctl --stop stops the TPM")
r = inst.tools("tpm2_getrandom", "8", check_rc=False)
check(r.returncode != 0, "a stopped TPM answers commands with an error")
# Undefine the index in a *different* state, then restore the saved blob.
r = ioctl("-i")
inst.tools("tpm2_startup", "-c")
inst.tools("tpm2_nvundefine", "0x1500016", "-C", "o")
r = inst.tools("tpm2_nvread", "0x1500016", "-C", "o", "-s", "32",
               check_rc=False)
check(r.returncode != 0, "after nvundefine the index is gone")
ioctl("--stop")
r = ioctl("--load", "permanent", blob)
check(r.returncode == 0, "swtpm_ioctl --load permanent imports the blob",
      r.stderr)
r = ioctl("-i")
check(r.returncode == 0, "INIT after SET_STATEBLOB boots the imported state")
inst.tools("tpm2_startup", "-c")
r = inst.tools("tpm2_nvread", "0x1500016", "-C", "o", "-s", "32")
check(r.stdout == data, "the state blob round trip brought the index back")

# The imported state is durable: it survives a restart.
check(inst.stop() == 0, "second SIGTERM exits 0")
inst = Instance(a.vtpm, wd, key=inst.key,
               extra=["--allow-plaintext-state"]).start()
r = inst.tools("tpm2_nvread", "0x1500016", "-C", "o", "-s", "32")
check(r.stdout == data, "imported state survived a restart")

# SIGTERM during a slow command: the command finishes and is answered.
s = inst.connect()
s.sendall(create_primary_rsa())
time.sleep(0.05)
inst.proc.send_signal(15)
try:
    rsp = recv_tpm(s)
    check(rc_of(rsp) == 0, "SIGTERM lets the running RSA CreatePrimary finish",
          rsp[:10].hex())
except Exception as e:  # noqa
    check(False, "SIGTERM lets the running RSA CreatePrimary finish", str(e))
check(inst.proc.wait(30) == 0, "and then the instance exits 0")

log = inst.log_text()
lines = [l for l in log.splitlines() if l]
check(all(l.startswith("<") and "[dom1/" in l for l in lines),
      "every log line has a <N> priority and names dom1/UUID", lines[:3])
finish()
