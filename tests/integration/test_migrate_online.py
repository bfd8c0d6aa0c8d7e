#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Online migration of a running vTPM between two managers, each with its
own swtpm as its physical TPM (issue 13, item 3): A -> B -> A with the
volatile state (a PCR as it was, a transient object still loaded, no
Startup), NV kept; start refused where the vTPM is not; refusals (unpinned
or wrong AK on either side, a tampered REQUEST, a replayed REQUEST, a
second migrate); and a kill test: SIGKILL of either manager at random
points of a migration, both restarted, exactly one can start the vTPM and
its NV is intact."""

import hashlib
import json
import os
import random
import signal
import socket
import struct
import subprocess
import threading
import time

from vtpmtest import *

a = args()
wd = workdir(a, "migrate_online")
os.chmod(wd, 0o711)
IDX = 0x01500030
PCR = 16
KILL_ROUNDS = int(os.environ.get("VTPM_KILL_ROUNDS", "36"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def out(r):
    return (r.stdout + r.stderr).decode(errors="replace")


hosts = {}
ports = {}
for name in ("A", "B"):
    d = os.path.join(wd, name)
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o711)
    hw = HardwareTPM(d).start()
    ports[name] = free_port()
    hosts[name] = Manager(a.vtpm, d, hw,
                          extra=["--counter-interval", "0"]).start()
A, B = hosts["A"], hosts["B"]
ak = {n: hosts[n].ctl_json("status")["ak_spki"] for n in hosts}
addr = {n: "127.0.0.1:%d" % ports[n] for n in hosts}


def configure(m, name, peers):
    m.extra = ["--counter-interval", "0", "--migrate-listen", addr[name]]
    for p in peers:
        m.extra += ["--migrate-peer", p]


def restart(m):
    m.stop()
    m.start()


# Each pins the other's AK (one as the DER SPKI, one as its SHA-256).
configure(A, "A", [ak["B"]])
configure(B, "B", [hashlib.sha256(bytes.fromhex(ak["A"])).hexdigest()])
restart(A)
restart(B)


def pcr_read(s, pcr):
    sel = bytearray(3)
    sel[pcr // 8] |= 1 << (pcr % 8)
    body = struct.pack(">IHB", 1, 0x000B, 3) + bytes(sel)
    r = transact(s, cmd(0x8001, 0x17E, body))
    if rc_of(r) != 0:
        return None
    return r[30:62]


def ecc_primary(s):
    """An ECC P-256 primary in the owner hierarchy, left loaded: a
    transient object of the TPM's volatile state."""
    sensitive = struct.pack(">HH", 0, 0)
    public = struct.pack(">HHI", 0x0023, 0x000B, 0x00030072)
    public += struct.pack(">H", 0)
    public += struct.pack(">HHH", 0x0006, 128, 0x0043)
    public += struct.pack(">HHH", 0x0010, 0x0003, 0x0010)
    public += struct.pack(">HH", 0, 0)
    body = struct.pack(">I", TPM_RH_OWNER) + pw_session()
    body += struct.pack(">H", len(sensitive)) + sensitive
    body += struct.pack(">H", len(public)) + public
    body += struct.pack(">H", 0) + struct.pack(">I", 0)
    r = transact(s, cmd(0x8002, 0x131, body))
    if rc_of(r) != 0:
        return None, None
    handle = struct.unpack(">I", r[10:14])[0]
    n = struct.unpack(">H", r[18:20])[0]
    return handle, r[20:20 + n]


def read_public(s, handle):
    r = transact(s, cmd(0x8001, 0x173, struct.pack(">I", handle)))
    if rc_of(r) != 0:
        return None
    n = struct.unpack(">H", r[10:12])[0]
    return r[12:12 + n]


def start_and_connect(m, u):
    m.ctl("start", u)
    if not m.wait_vtpm(u):
        raise RuntimeError("vTPM %s did not answer: %s" %
                           (u, m.log_text()[-3000:]))
    return m.connect_vtpm(u)


def state_of(m, u):
    """(instance state, migration state); (None, None) where the vTPM is
    unknown (a pending import its source aborted is deleted)."""
    r = m.ctl("--json", "show", u, check_rc=False)
    if r.returncode == 3:
        return None, None
    v = json.loads(r.stdout)["vtpm"]
    return v.get("state"), v.get("migration", {}).get("state")


def migrate(src, dst_name, u, *extra, check_rc=True):
    t0 = time.monotonic()
    r = src.ctl("--json", "migrate", u, "--to", addr[dst_name], *extra,
                check_rc=check_rc)
    return r, time.monotonic() - t0


# ---- (a) A vTPM on A, running, with NV, a PCR and a loaded object ----
u = A.ctl("create").stdout.decode().strip()
s = start_and_connect(A, u)
check(rc_of(transact(s, nv_define(IDX, 8))) == 0 and
      rc_of(transact(s, nv_write(IDX, b"online01"))) == 0,
      "A: NV defined and written through the vTPM")
check(rc_of(transact(s, pcr_extend(PCR, b"\x22" * 32))) == 0,
      "A: PCR 16 extended")
pcr_a = pcr_read(s, PCR)
handle, pub = ecc_primary(s)
check(handle is not None and read_public(s, handle) == pub,
      "A: a transient ECC primary is loaded (handle 0x%x)" %
      (handle or 0))
s.close()

# ---- refusals before anything moves ----
r, _ = migrate(A, "B", u, "--ak-spki", ak["A"], check_rc=False)
check(r.returncode != 0 and "not the pinned one" in out(r) and
      state_of(A, u)[0] == "running",
      "A: a destination whose AK is not --ak-spki is refused; the vTPM "
      "keeps running on A", out(r))
r = A.ctl("migrate", u, "--to", "127.0.0.1:1", check_rc=False)
check(r.returncode != 0 and state_of(A, u)[0] == "running" and
      A.wait_vtpm(u),
      "A: an unreachable destination: refused, the vTPM runs on", out(r))

# ---- A -> B ----
r, secs = migrate(A, "B", u)
res = json.loads(r.stdout)
check(res["ok"] and res["acknowledged"] and res["volatile"],
      "A -> B: migrated online with the volatile state (%d bytes, %d ms "
      "in the manager, %.0f ms for vtpmctl, downtime %s ms)" %
      (res["bytes"], res["migrate_ms"], secs * 1000,
       res.get("downtime_ms")), out(r))
check(B.wait_vtpm(u), "B: the vTPM was started on arrival (it ran on A)")
s = B.connect_vtpm(u)
check(pcr_read(s, PCR) == pcr_a and pcr_a != b"\0" * 32,
      "B: PCR 16 is as it was on A (no reset, no Startup)")
check(read_public(s, handle) == pub,
      "B: the transient object is still loaded at the same handle")
rr = transact(s, nv_read(IDX, 8))
check(rc_of(rr) == 0 and nv_read_data(rr) == b"online01", "B: NV kept")
s.close()
check("resumes the TPM moved here by online migration" in B.log_text(),
      "B: the instance resumed the volatile state it was sent")
r = A.ctl("start", u, check_rc=False)
check(r.returncode == 5 and state_of(A, u)[1] == "migrated out",
      "A: start refused (a tombstone), show says migrated out", out(r))
check(state_of(B, u)[1] == "migrated in", "B: show says migrated in")
r, _ = migrate(A, "B", u, check_rc=False)
check(r.returncode == 5 and "tombstone" in out(r),
      "A: a second migrate of the same vTPM is refused", out(r))

# ---- B -> A ----
s = B.connect_vtpm(u)
transact(s, pcr_extend(PCR, b"\x33" * 32))
pcr_b = pcr_read(s, PCR)
transact(s, nv_write(IDX, b"online02"))
s.close()
r, secs = migrate(B, "A", u)
res = json.loads(r.stdout)
check(res["ok"] and res["acknowledged"] and res["volatile"],
      "B -> A: migrated back online (%d ms, downtime %s ms)" %
      (res["migrate_ms"], res.get("downtime_ms")), out(r))
check(A.wait_vtpm(u), "A: running again")
s = A.connect_vtpm(u)
rr = transact(s, nv_read(IDX, 8))
check(pcr_read(s, PCR) == pcr_b and read_public(s, handle) == pub and
      rc_of(rr) == 0 and nv_read_data(rr) == b"online02",
      "A: PCR 16, the loaded object and NV as B left them")
s.close()
r = B.ctl("start", u, check_rc=False)
check(r.returncode == 5, "B: start refused now", out(r))


# ---- a man in the middle: records frames, tampers with one ----

def read_frame(sock):
    hdr = recv_exact(sock, 12)
    n = struct.unpack(">I", hdr[8:12])[0]
    return hdr + (recv_exact(sock, n) if n else b"")


class Proxy:
    """Listens on a port of its own and relays each connection to dst,
    frame by frame; tamper(type, frame) may return another frame."""

    def __init__(self, dst_port, tamper=None):
        self.dst = dst_port
        self.tamper = tamper
        self.conns = []                  # per connection: [(dir, frame)]
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def relay(self, src, dst, direction, frames):
        try:
            while True:
                f = read_frame(src)
                frames.append((direction, f))
                if self.tamper:
                    f = self.tamper(f[5], f)
                dst.sendall(f)
        except (OSError, EOFError):
            pass
        for x in (src, dst):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def serve(self):
        while True:
            c, _ = self.ls.accept()
            d = socket.create_connection(("127.0.0.1", self.dst))
            frames = []
            self.conns.append(frames)
            threading.Thread(target=self.relay, args=(c, d, ">", frames),
                             daemon=True).start()
            threading.Thread(target=self.relay, args=(d, c, "<", frames),
                             daemon=True).start()


def flip_in(ftype, offset_from_end):
    def t(typ, f):
        if typ != ftype:
            return f
        b = bytearray(f)
        b[len(b) - offset_from_end] ^= 0x01
        return bytes(b)
    return t


def migrate_via(src, proxy, u, check_rc=True):
    return src.ctl("--json", "migrate", u, "--to",
                   "127.0.0.1:%d" % proxy.port, check_rc=check_rc)


# A tampered REQUEST (a byte of the blob): B refuses, A keeps the vTPM.
px = Proxy(ports["B"], flip_in(3, 100))
r = migrate_via(A, px, u, check_rc=False)
check(r.returncode != 0 and "tampered or replayed" in out(r) and
      A.wait_vtpm(u) and state_of(A, u)[0] == "running" and
      state_of(A, u)[1] is None,
      "A -> B with a byte of the REQUEST's blob flipped: B refuses, the "
      "vTPM runs on A again, no transaction left", out(r))
r = B.ctl("start", u, check_rc=False)
check(r.returncode == 5, "B: and it still does not start there", out(r))
# A tampered CHALLENGE (the migration key's public area): A refuses.
px.tamper = flip_in(2, 700)
r = migrate_via(A, px, u, check_rc=False)
check(r.returncode != 0 and A.wait_vtpm(u) and
      state_of(A, u)[0] == "running",
      "A -> B with the CHALLENGE's certified key altered: A refuses, the "
      "vTPM runs on A", out(r))

# A replayed REQUEST: the frames of that refused exchange, and then of a
# successful one, sent again on a new connection.
def replay(frames):
    hello = [f for d, f in frames if d == ">" and f[5] == 1][0]
    req = [f for d, f in frames if d == ">" and f[5] == 3][0]
    c = socket.create_connection(("127.0.0.1", ports["B"]))
    c.settimeout(30)
    c.sendall(hello)
    chal = read_frame(c)
    c.sendall(req)
    rep = read_frame(c)
    c.close()
    n = struct.unpack(">H", rep[16:18])[0]
    return chal[5], rep[12], rep[18:18 + n].decode(errors="replace")


px.tamper = None
px.conns = []
r = migrate_via(A, px, u)
check(json.loads(r.stdout)["ok"] and B.wait_vtpm(u) and
      len(px.conns) == 2,
      "A -> B through the relay, untouched: migrated (MIGRATE, COMMIT)")
ctype, status, msg = replay(px.conns[0])
check(ctype == 2 and status == 1 and "replayed" in msg,
      "B: a replayed MIGRATE (its HELLO and its REQUEST with the blob) is "
      "refused", msg)
ctype, status, msg = replay(px.conns[1])
check(ctype == 2 and status == 1 and "replayed" in msg,
      "B: a replayed COMMIT is refused", msg)
check(B.wait_vtpm(u) and A.ctl("start", u, check_rc=False).returncode == 5,
      "after the replays: running on B, still refused on A")
r = B.ctl("--json", "migrate", u, "--to", addr["A"])
check(json.loads(r.stdout)["ok"] and A.wait_vtpm(u), "B -> A again")

# B pins no longer A's AK: B refuses A as a source.
configure(B, "B", ["00" * 32])
restart(B)
r, _ = migrate(A, "B", u, check_rc=False)
check(r.returncode != 0 and "not pinned" in out(r) and A.wait_vtpm(u) and
      state_of(A, u)[0] == "running",
      "B without A's AK pinned refuses A; the vTPM runs on A", out(r))
configure(B, "B", [hashlib.sha256(bytes.fromhex(ak["A"])).hexdigest()])
restart(B)

# ---- (c) kills: SIGKILL of the source or the destination at a random
# point of an online migration; both restarted; once recovery has run,
# exactly one of them starts the vTPM, with its NV intact. ----

def settled(m):
    st = state_of(m, u)[1]
    return st not in ("migrating out",
                      "migrated out, commit not yet acknowledged")


def nv_check(m, value):
    s = m.connect_vtpm(u)
    rr = transact(s, nv_read(IDX, 8))
    s.close()
    return rc_of(rr) == 0 and nv_read_data(rr) == value


def log_size(m):
    try:
        return os.path.getsize(m.log_path)
    except OSError:
        return 0


def wait_log(m, pos, text, timeout=5.0):
    """Until text appears in m's log after byte pos (polled each ms)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with open(m.log_path, "rb") as f:
            f.seek(pos)
            if text in f.read():
                return True
        time.sleep(0.001)
    return False


# Kill points: a random delay, or the moment a step's log line appears
# (on the source "src", or the destination "dst").
POINTS = [None,
          ("src", b"online migration"),                 # handshake
          ("src", b"stopping for an online migration"),  # instance stop
          ("dst", b"imported by online migration"),      # pending there
          ("src", b"a tombstone remains here"),          # commit point
          ("dst", b"committed by its source")]           # COMMIT there
outcomes = {}
rng = random.Random(int(os.environ.get("VTPM_KILL_SEED", "13")))
here, there = A, B
names = {id(A): "A", id(B): "B"}
counts = {"A": 0, "B": 0, "two": 0, "none": 0, "nv_bad": 0}
t_kill0 = time.monotonic()
value = b"online02"
for rnd in range(KILL_ROUNDS):
    if not here.wait_vtpm(u):
        check(False, "round %d: the vTPM runs on %s before the round" %
              (rnd, names[id(here)]), here.log_text()[-2000:])
        break
    value = b"kill%04d" % rnd
    s = here.connect_vtpm(u)
    transact(s, nv_write(IDX, value))
    s.close()
    victim = here if rnd % 2 == 0 else there
    dst = "B" if here is A else "A"
    point = POINTS[(rnd // 2) % len(POINTS)]
    pos = {"src": log_size(here), "dst": log_size(there)}
    p = subprocess.Popen([here.ctl_exe, "--control", here.control, "--json",
                          "migrate", u, "--to", addr[dst]],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if point is None:
        time.sleep(rng.uniform(0.0, 1.0))
    else:
        side = here if point[0] == "src" else there
        wait_log(side, pos[point[0]], point[1])
    victim.proc.kill()
    victim.proc.wait()
    try:
        p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
    victim.start()
    end = time.monotonic() + 60
    while time.monotonic() < end and not (settled(A) and settled(B)):
        time.sleep(0.1)
    runs = []
    for m in (A, B):
        r = m.ctl("start", u, check_rc=False)
        if r.returncode == 0 and m.wait_vtpm(u, timeout=20):
            runs.append(m)
    where = ("%s kill %s" % ("random" if point is None else
                             point[1].decode(),
                             "source" if victim is here else "destination"))
    if len(runs) == 1:
        counts[names[id(runs[0])]] += 1
        key = "%s: %s" % (where, "moved" if runs[0] is there else "stayed")
        outcomes[key] = outcomes.get(key, 0) + 1
        if not nv_check(runs[0], value):
            counts["nv_bad"] += 1
        here = runs[0]
        there = B if here is A else A
    else:
        counts["two" if runs else "none"] += 1
        print("round %d: %d managers start it" % (rnd, len(runs)))
        break
kill_s = time.monotonic() - t_kill0
for k in sorted(outcomes):
    print("  %2d x %s" % (outcomes[k], k))
print("kill rounds: %d in %.0f s, ended on A %d, on B %d, two %d, none %d, "
      "NV wrong %d" % (KILL_ROUNDS, kill_s, counts["A"], counts["B"],
                       counts["two"], counts["none"], counts["nv_bad"]))
check(counts["A"] + counts["B"] == KILL_ROUNDS and counts["nv_bad"] == 0,
      "kills of either manager during %d online migrations: every time "
      "exactly one manager starts the vTPM, NV intact (ended on A %d, on "
      "B %d)" % (KILL_ROUNDS, counts["A"], counts["B"]))

finish()
