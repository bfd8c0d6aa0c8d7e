#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""vtpmctl's command line against a running manager (swtpm as its TPM):
the global options --control and --json work before and after the
command, in both spellings (--control PATH, --control=PATH); a command's
own options and arguments come in any order; and an option vtpmctl does
not know, a value given to --json, a missing value, a command option
before the command, an extra argument or an unknown command is refused
with a message on stderr and the usage exit status, before anything is
sent to the manager."""

import json
import os
import subprocess

from vtpmtest import *

EXIT_USAGE = 1      # vtpmctl(8): usage errors, unknown options included

a = args()
wd = workdir(a, "vtpmctl-args")
os.chmod(wd, 0o711)
hw = HardwareTPM(wd).start()
m = Manager(a.vtpm, wd, hw, extra=["--counter-interval", "0"]).start()
C = m.control


def ctl(*argv):
    return subprocess.run([m.ctl_exe] + list(argv), capture_output=True,
                          timeout=60)


def as_json(r):
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


# ---- global options before and after the command ----
for argv in (["--control", C, "--json", "status"],
             ["--json", "status", "--control", C],
             ["status", "--json", "--control", C],
             ["status", "--control", C, "--json"],
             ["--control=" + C, "status", "--json"],
             ["status", "--json", "--control=" + C]):
    r = ctl(*argv)
    j = as_json(r)
    check(r.returncode == 0 and j is not None and j.get("ok") is True and
          "ak_spki" in j, "vtpmctl %s prints the JSON answer" %
          " ".join(x.replace(C, "S") for x in argv), r.stdout + r.stderr)

r = ctl("status", "--control", C)
check(r.returncode == 0 and as_json(r) is None and b"ak_spki: " in r.stdout,
      "vtpmctl status --control S (no --json) prints key: value lines",
      r.stdout)
r = ctl("status", "--control", os.path.join(wd, "nothing.sock"))
check(r.returncode == 7 and b"nothing.sock" in r.stderr,
      "--control after the command is the socket used (exit 7 when absent)",
      r.stderr)
r = ctl("--control", os.path.join(wd, "nothing.sock"), "status",
        "--control", C)
check(r.returncode == 0, "the last --control wins, wherever it stands",
      r.stderr)

# ---- a command's options, arguments and global options interleaved ----
r = ctl("create", "--json", "--domid", "3", "--control", C)
j = as_json(r)
check(r.returncode == 0 and j and len(j.get("uuid", "")) == 36,
      "vtpmctl create --json --domid 3 --control S", r.stdout + r.stderr)
uuid = j["uuid"] if j else ""
r = ctl("--control", C, "create", "--domid=4", "--json")
j = as_json(r)
check(r.returncode == 0 and j and len(j.get("uuid", "")) == 36,
      "vtpmctl --control S create --domid=4 --json", r.stdout + r.stderr)
r = ctl("list", "--control", C, "--json")
j = as_json(r)
check(r.returncode == 0 and j and len(j.get("vtpms", [])) == 2,
      "vtpmctl list --control S --json lists both", r.stdout + r.stderr)
r = ctl("show", "--json", uuid, "--control", C)
j = as_json(r)
check(r.returncode == 0 and j and j["vtpm"]["uuid"] == uuid,
      "vtpmctl show --json UUID --control S", r.stdout + r.stderr)
r = ctl("--control", C, "show", "--", uuid)
check(r.returncode == 0 and b"uuid: " + uuid.encode() in r.stdout,
      "vtpmctl show -- UUID: '--' ends the options", r.stdout + r.stderr)
r = ctl("start", uuid, "--control", C)
check(r.returncode == 0, "vtpmctl start UUID --control S", r.stderr)
check(m.wait_vtpm(uuid), "the vTPM serves")

q = os.path.join(wd, "q.json")
r = ctl("quote", "--out", q, uuid, "--control", C, "--nonce", "00112233")
check(r.returncode == 0 and os.path.getsize(q) > 0,
      "vtpmctl quote --out F UUID --control S --nonce N", r.stderr)
ak = m.ctl_json("status")["ak_spki"]
for argv in (["verify-quote", q, "--ak-spki", ak],
             ["verify-quote", "--ak-spki", ak, q],
             ["verify-quote", "--ak-spki=" + ak, q, "--json"],
             ["--json", "verify-quote", q, "--ak-spki", ak]):
    r = ctl(*argv)
    check(r.returncode == 0 and b"quote verifies" in r.stdout and
          b"(pinned)" in r.stdout, "vtpmctl %s" %
          " ".join(x.replace(ak, "AK").replace(q, "F") for x in argv),
          r.stdout + r.stderr)

# ---- refused: never ignored, never sent ----
before = m.ctl_json("status")
refused = [
    (["status", "--jsn", "--control", C], b"unknown option '--jsn'"),
    (["--jsn", "status", "--control", C], b"unknown option '--jsn'"),
    (["status", "--js", "--control", C], b"unknown option '--js'"),
    (["status", "-j", "--control", C], b"unknown option '-j'"),
    (["status", "--control", C, "--verbose"], b"unknown option '--verbose'"),
    (["create", "--domid", "5", "--uid", uuid, "--control", C],
     b"unknown option '--uid' for 'create'"),
    (["list", "--nonce", "00", "--control", C],
     b"unknown option '--nonce' for 'list'"),
    (["--domid", "5", "create", "--control", C],
     b"option '--domid' belongs after a command"),
    (["status", "--json=yes", "--control", C],
     b"option '--json' takes no value"),
    (["status", "--control"], b"option '--control' needs a value"),
    (["quote", uuid, "--control", C, "--nonce"],
     b"option '--nonce' needs a value"),
    (["status", "extra", "--control", C], b"takes no argument, not 'extra'"),
    (["stop", "--control", C], b"'stop' needs UUID"),
    (["stop", uuid, uuid, "--control", C], b"takes one argument"),
    (["stats", "--control", C], b"unknown command 'stats'"),
    (["status", "--timeout", "x", "--control", C], b"bad --timeout 'x'"),
    (["status", "--timeout=-1", "--control", C], b"bad --timeout '-1'"),
]
for argv, msg in refused:
    r = ctl(*argv)
    check(r.returncode == EXIT_USAGE and msg in r.stderr and not r.stdout,
          "vtpmctl %s: refused, exit %d, says %s" %
          (" ".join(x.replace(C, "S").replace(uuid, "U") for x in argv),
           EXIT_USAGE, msg.decode()), (r.returncode, r.stdout, r.stderr))
after = m.ctl_json("status")
check(after["vtpms"] == before["vtpms"] and after["running"] == 1,
      "no refused command line reached the manager (the vTPM still runs, "
      "nothing was created)", after)

# ---- help anywhere ----
for argv in (["--help"], ["status", "--help"], ["-h", "status"]):
    r = ctl(*argv)
    check(r.returncode == 0 and r.stdout.startswith(b"usage: vtpmctl"),
          "vtpmctl %s prints the usage and exits 0" % " ".join(argv),
          r.stdout + r.stderr)

# ---- --timeout: a manager that hangs ----
# One that accepts and never answers, and one whose backlog is full (it
# accepts nothing): vtpmctl gives up after --timeout with exit 7 and says
# which; the real manager answers well within it.
import socket
import time

mute = os.path.join(wd, "mute.sock")
ls = socket.socket(socket.AF_UNIX)
ls.bind(mute)
ls.listen(1)
t0 = time.monotonic()
r = ctl("status", "--control", mute, "--timeout", "1")
took = time.monotonic() - t0
check(r.returncode == 7 and b"no answer from the manager" in r.stderr and
      b"within 1 s" in r.stderr and 0.9 <= took < 10,
      "a manager that never answers: exit 7 after --timeout 1 (%.1f s)" %
      took, (r.returncode, r.stderr))
full = os.path.join(wd, "full.sock")
fs = socket.socket(socket.AF_UNIX)
fs.bind(full)
fs.listen(0)
fillers = []
for _ in range(4):  # fills the backlog: the next connect() waits
    c = socket.socket(socket.AF_UNIX)
    c.setblocking(False)
    try:
        c.connect(full)
    except OSError:
        pass
    fillers.append(c)
t0 = time.monotonic()
r = ctl("list", "--timeout=1", "--control", full)
took = time.monotonic() - t0
check(r.returncode == 7 and b"took no request" in r.stderr and
      0.9 <= took < 10,
      "a manager that accepts nothing: exit 7 after --timeout 1 (%.1f s), "
      "nothing sent" % took, (r.returncode, r.stderr))
r = ctl("status", "--timeout", "1", "--control", C)
check(r.returncode == 0 and b"ak_spki: " in r.stdout,
      "the real manager answers within --timeout 1", r.stdout + r.stderr)
r = ctl("status", "--timeout", "0", "--control", C)
check(r.returncode == 0, "--timeout 0 (no limit) is accepted", r.stderr)
for c in fillers:
    c.close()
fs.close()
ls.close()

m.stop()
hw.stop()
finish()
