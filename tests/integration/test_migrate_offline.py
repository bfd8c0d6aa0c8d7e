#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Offline migration between two managers, each with its own swtpm as its
physical TPM (issue 13, items 2 and 5): migration-key, export, import and
back, NV kept and PCRs reset (a power cycle), the tombstone, every refusal
leaving the destination unchanged, and clones with and without --unique."""

import json
import os
import struct
import time

from vtpmtest import *

a = args()
wd = workdir(a, "migrate")
os.chmod(wd, 0o711)
hosts = {}
for name in ("A", "B"):
    d = os.path.join(wd, name)
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o711)
    hw = HardwareTPM(d).start()
    hosts[name] = Manager(a.vtpm, d, hw,
                          extra=["--counter-interval", "0"]).start()
A, B = hosts["A"], hosts["B"]
IDX = 0x01500020
PCR = 16


def out(r):
    return (r.stdout + r.stderr).decode(errors="replace")


def vtpms(m):
    return sorted((v["uuid"], v.get("generation"))
                  for v in m.ctl_json("list")["vtpms"])


def pcr_read(s, pcr):
    sel = bytearray(3)
    sel[pcr // 8] |= 1 << (pcr % 8)
    body = struct.pack(">IHB", 1, 0x000B, 3) + bytes(sel)
    r = transact(s, cmd(0x8001, 0x17E, body))
    if rc_of(r) != 0:
        return None
    # update counter, TPML_PCR_SELECTION (10), count, TPM2B
    return r[30:62]


def ek_public(s):
    """The public key of an ECC P-256 primary in the endorsement
    hierarchy: derived from the endorsement seed alone."""
    sensitive = struct.pack(">HH", 0, 0)
    public = struct.pack(">HHI", 0x0023, 0x000B, 0x00030072)
    public += struct.pack(">H", 0)
    public += struct.pack(">HHH", 0x0006, 128, 0x0043)    # AES-128-CFB
    public += struct.pack(">HHH", 0x0010, 0x0003, 0x0010)  # P-256
    public += struct.pack(">HH", 0, 0)                     # unique
    body = struct.pack(">I", 0x4000000B) + pw_session()
    body += struct.pack(">H", len(sensitive)) + sensitive
    body += struct.pack(">H", len(public)) + public
    body += struct.pack(">H", 0) + struct.pack(">I", 0)
    r = transact(s, cmd(0x8002, 0x131, body))
    if rc_of(r) != 0:
        return None
    handle = r[10:14]
    n = struct.unpack(">H", r[18:20])[0]
    pub = r[20:20 + n]
    transact(s, cmd(0x8001, 0x165, handle))               # FlushContext
    return pub


def start_and_connect(m, u):
    m.ctl("start", u)
    if not m.wait_vtpm(u):
        raise RuntimeError("vTPM %s did not answer: %s" % (u, m.log_text()[-3000:]))
    return m.connect_vtpm(u)


def nv_value(m, u):
    s = start_and_connect(m, u)
    r = transact(s, nv_read(IDX, 8))
    p = pcr_read(s, PCR)
    ek = ek_public(s)
    s.close()
    m.ctl("stop", u)
    return (nv_read_data(r) if rc_of(r) == 0 else None), p, ek


# ---- a vTPM on A: NV written, a PCR extended ----
u = A.ctl("create").stdout.decode().strip()
s = start_and_connect(A, u)
check(rc_of(transact(s, nv_define(IDX, 8))) == 0 and
      rc_of(transact(s, nv_write(IDX, b"hostA-01"))) == 0,
      "A: NV defined and written through the vTPM")
check(rc_of(transact(s, pcr_extend(PCR, b"\x11" * 32))) == 0 and
      pcr_read(s, PCR) != b"\0" * 32, "A: PCR 16 extended")
ek_a = ek_public(s)
s.close()
A.ctl("stop", u)

# ---- the destination's migration key ----
dest_b = os.path.join(wd, "destB.json")
r = B.ctl("migration-key", "--out", dest_b)
d = json.load(open(dest_b))
check(r.returncode == 0 and len(d["key_name"]) == 68 and
      d["ak_spki"] == B.ctl_json("status")["ak_spki"],
      "B: migration-key writes DEST.json with the key's name and B's AK",
      out(r))
r2 = B.ctl("migration-key", "--out", os.path.join(wd, "destB2.json"))
d2 = json.load(open(os.path.join(wd, "destB2.json")))
check(d2["key_name"] == d["key_name"],
      "B: the migration key is the same on every call (kept in the TPM's "
      "blob, not made again)")

# ---- export refusals on A: running, forged DEST.json, wrong pinned AK ----
s = start_and_connect(A, u)
s.close()
r = A.ctl("export", u, "--to", dest_b, "--out", os.path.join(wd, "x"),
          check_rc=False)
check(r.returncode == 5 and "stop it first" in out(r),
      "A: export of a running vTPM is refused", out(r))
A.ctl("stop", u)
forged = dict(d)
pub = bytearray(bytes.fromhex(d["key_public"]))
pub[-5] ^= 1                               # another modulus
forged["key_public"] = pub.hex()
json.dump(forged, open(os.path.join(wd, "forged.json"), "w"))
r = A.ctl("export", u, "--to", os.path.join(wd, "forged.json"), "--out",
          os.path.join(wd, "x"), check_rc=False)
check(r.returncode != 0 and "another key" in out(r) and
      not os.path.exists(os.path.join(wd, "x")),
      "A: a DEST.json whose key is not the certified one is refused", out(r))
forged = dict(d)
att = bytearray(bytes.fromhex(d["attest"]))
att[-3] ^= 0x40
forged["attest"] = att.hex()
json.dump(forged, open(os.path.join(wd, "forged2.json"), "w"))
r = A.ctl("export", u, "--to", os.path.join(wd, "forged2.json"), "--out",
          os.path.join(wd, "x"), check_rc=False)
check(r.returncode != 0 and "signature" in out(r),
      "A: a DEST.json with an altered certification is refused", out(r))
ak_a = A.ctl_json("status")["ak_spki"]
r = A.ctl("export", u, "--to", dest_b, "--ak-spki", ak_a, "--out",
          os.path.join(wd, "x"), check_rc=False)
check(r.returncode != 0 and "pinned" in out(r),
      "A: a destination AK other than the pinned one is refused", out(r))
check(A.ctl_json("show", u)["vtpm"].get("exported_to") is None and
      A.ctl("start", u, check_rc=False).returncode == 0,
      "A: after the refusals the vTPM is untouched and starts")
A.ctl("stop", u)

# ---- export A -> B ----
blob = os.path.join(wd, "u.blob")
t0 = time.monotonic()
r = A.ctl("--json", "export", u, "--to", dest_b, "--ak-spki", d["ak_spki"],
          "--out", blob)
export_s = time.monotonic() - t0
ex = json.loads(r.stdout)
size = os.path.getsize(blob)
check(ex["ok"] and size == ex["bytes"],
      "A: export with the pinned AK writes the blob (%d bytes, %d ms in "
      "the manager, %.0f ms for vtpmctl)" % (size, ex["export_ms"],
                                             export_s * 1000), out(r))
r = A.ctl("start", u, check_rc=False)
check(r.returncode == 5 and "exported" in out(r),
      "A: the exported vTPM does not start (tombstone)", out(r))
r = A.ctl("export", u, "--to", dest_b, "--out", os.path.join(wd, "y"),
          check_rc=False)
check(r.returncode == 5 and "tombstone" in out(r),
      "A: nor is it exported again", out(r))
sh = A.ctl_json("show", u)["vtpm"]
check(sh.get("exported_to", {}).get("key_name") == d["key_name"],
      "A: show says where it went (the destination key's name)", sh)

# ---- refusals on B: each leaves B unchanged ----
before = vtpms(B)
data = open(blob, "rb").read()
bad_ok = True
for off in (0, 9, 20, 40, 100, 400, 355, len(data) // 2, len(data) - 1):
    t = bytearray(data)
    t[off] ^= 0x01
    p = os.path.join(wd, "tampered.blob")
    open(p, "wb").write(bytes(t))
    r = B.ctl("import", p, check_rc=False)
    if r.returncode == 0 or "refusing" not in out(r):
        bad_ok = False
        print("byte %d: %s" % (off, out(r)))
check(bad_ok and vtpms(B) == before,
      "B: a blob with any byte flipped (magic, header, wrapped key, nonce, "
      "ciphertext, tag) is refused, nothing changed")
open(p, "wb").write(data[:-1])
r = B.ctl("import", p, check_rc=False)
check(r.returncode != 0 and "truncated" in out(r), "B: a truncated blob is "
      "refused", out(r))

# A blob for another manager: A exports a second vTPM to A's own key.
dest_a = os.path.join(wd, "destA.json")
A.ctl("migration-key", "--out", dest_a)
u2 = A.ctl("create", "--no-ek-cert").stdout.decode().strip()
blob2 = os.path.join(wd, "u2.blob")
A.ctl("export", u2, "--to", dest_a, "--out", blob2)
r = B.ctl("import", blob2, check_rc=False)
check(r.returncode != 0 and "another manager" in out(r) and
      vtpms(B) == before,
      "B: a blob sealed to another manager's key is refused, nothing "
      "changed", out(r))
r = A.ctl("import", blob2, check_rc=False)
check(r.returncode == 0 and A.ctl("start", u2, check_rc=False).returncode == 0,
      "A: a blob of its own tombstone comes back (import replaces the "
      "tombstone)", out(r))
A.ctl("stop", u2)

# The UUID exists on the destination.
u3 = "6d1c3a2e-0b7f-4c3e-9a51-3f6d2c1b0a99"
B.ctl("create", "--uuid", u3, "--no-ek-cert")
A.ctl("create", "--uuid", u3, "--no-ek-cert")
blob3 = os.path.join(wd, "u3.blob")
A.ctl("export", u3, "--to", dest_b, "--out", blob3)
before = vtpms(B)
r = B.ctl("import", blob3, check_rc=False)
check(r.returncode == 4 and "already exists" in out(r) and
      vtpms(B) == before,
      "B: a blob of a UUID that exists there is refused, nothing changed",
      out(r))

# Deleting an imported vTPM does not make its blob importable again.
ud = A.ctl("create", "--no-ek-cert").stdout.decode().strip()
blob_d = os.path.join(wd, "ud.blob")
A.ctl("export", ud, "--to", dest_b, "--out", blob_d)
r1 = B.ctl("import", blob_d, check_rc=False)
r2 = B.ctl("delete", ud, check_rc=False)
before = vtpms(B)
r3 = B.ctl("import", blob_d, check_rc=False)
check(r1.returncode == 0 and r2.returncode == 0 and r3.returncode == 4 and
      "imported here before" in out(r3) and vtpms(B) == before,
      "B: an imported vTPM deleted, its blob is refused a second time",
      out(r1) + out(r2) + out(r3))

# ---- import on B ----
t0 = time.monotonic()
r = B.ctl("--json", "import", blob)
im = json.loads(r.stdout)
check(im["ok"] and im["uuid"] == u,
      "B: import creates the vTPM (%d ms in the manager, %.0f ms for "
      "vtpmctl)" % (im["import_ms"], (time.monotonic() - t0) * 1000),
      out(r))
before = vtpms(B)
r = B.ctl("import", blob, check_rc=False)
check(r.returncode == 4 and "imported here before" in out(r) and
      vtpms(B) == before,
      "B: the same blob a second time is refused, nothing changed", out(r))
nv, p, ek_b = nv_value(B, u)
check(nv == b"hostA-01", "B: NV written on A reads back on B", nv)
check(p == b"\0" * 32, "B: PCR 16 reads zero (offline is a power cycle)", p)
check(ek_b is not None and ek_b == ek_a,
      "B: the same endorsement seed (EK public equal)")
s = start_and_connect(B, u)
check(rc_of(transact(s, nv_write(IDX, b"hostB-02"))) == 0, "B: NV written")
s.close()
B.ctl("stop", u)

# ---- back B -> A: A still holds the tombstone; import replaces it ----
blob_back = os.path.join(wd, "back.blob")
B.ctl("export", u, "--to", dest_a, "--out", blob_back)
r = B.ctl("start", u, check_rc=False)
check(r.returncode == 5, "B: its tombstone does not start either", out(r))
r = A.ctl("import", blob_back, check_rc=False)
check(r.returncode == 0, "A: the blob from B replaces A's tombstone",
      out(r))
nv, p, ek_back = nv_value(A, u)
check(nv == b"hostB-02" and p == b"\0" * 32 and ek_back == ek_a,
      "A: back home, NV written on B intact, PCRs reset, same EK", nv)

# The destination's tombstone deleted: the old blob still does not import.
r = B.ctl("delete", u, check_rc=False)
check(r.returncode == 0 and u not in [v[0] for v in vtpms(B)],
      "B: delete removes the tombstone", out(r))
r = B.ctl("import", blob, check_rc=False)
check(r.returncode == 4 and "imported here before" in out(r),
      "B: after delete, the first blob is still refused (the key store "
      "keeps the ids of imported blobs)", out(r))

# ---- clones on A ----
r = A.ctl("clone", u)
c1 = r.stdout.decode().strip()
nv, p, ek_c = nv_value(A, c1)
check(c1 != u and nv == b"hostB-02" and ek_c == ek_a,
      "clone: a new UUID, NV and EK public kept", (c1, nv))
r = A.ctl("clone", u, "--unique")
c2 = r.stdout.decode().strip()
nv, p, ek_u = nv_value(A, c2)
check(c2 not in (u, c1) and nv is None and ek_u is not None and
      ek_u != ek_a,
      "clone --unique: a new UUID, NV gone, another EK public", (c2, nv))
s = start_and_connect(A, u)
check(rc_of(transact(s, nv_read(IDX, 8))) == 0,
      "the source still runs after being cloned")
s.close()
A.ctl("stop", u)
r = A.ctl("start", u)
r = A.ctl("clone", u, check_rc=False)
check(r.returncode == 5 and "stop it first" in out(r),
      "clone of a running vTPM is refused", out(r))
A.ctl("stop", u)

# The largest state: NV full (1 KiB indices until the TPM says NV_SPACE).
ub = A.ctl("create", "--no-ek-cert").stdout.decode().strip()
s = start_and_connect(A, ub)
n_idx = 0
last = b""
for i in range(400):
    if rc_of(transact(s, nv_define(0x01500100 + i, 1024))) != 0:
        break
    last = os.urandom(512)
    transact(s, nv_write(0x01500100 + i, last, 512))
    n_idx += 1
s.close()
A.ctl("stop", ub)
big = os.path.join(wd, "big.blob")
A.ctl("export", ub, "--to", dest_b, "--out", big)
r = B.ctl("--json", "import", big, check_rc=False)
ok = r.returncode == 0
if ok:
    s = start_and_connect(B, ub)
    rr = transact(s, nv_read(0x01500100 + n_idx - 1, 512, 512))
    s.close()
    B.ctl("stop", ub)
    ok = rc_of(rr) == 0 and nv_read_data(rr) == last
check(n_idx > 50 and ok,
      "a vTPM with full NV (%d indices of 1 KiB) moves: a %d-byte blob "
      "imports, its last index intact" % (n_idx, os.path.getsize(big)),
      out(r))

# Restarts keep tombstones, imported ids and the migration key.
B.stop()
B.start()
r = B.ctl("import", blob, check_rc=False)
check(r.returncode == 4 and "imported here before" in out(r),
      "B restarted: the imported-blob list survives", out(r))
r = B.ctl("migration-key", "--out", os.path.join(wd, "destB3.json"))
check(json.load(open(os.path.join(wd, "destB3.json")))["key_name"] ==
      d["key_name"], "B restarted: the same migration key")
A.stop()
A.start()
r = A.ctl("start", u3, check_rc=False)
check(r.returncode == 5 and "exported" in out(r),
      "A restarted: the tombstone of %s survives" % u3, out(r))

for m in (A, B):
    m.stop()
    m.hw.stop()
finish()
