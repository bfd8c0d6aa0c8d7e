#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Stands in for an instance (vtpm-service --instance-exe) to probe what a
process holding a manager link can get certified (issue 14): only while
its vTPM is being manufactured, each kind once, only real public keys."""

import json
import os
import signal
import struct
import sys

args = sys.argv
uuid = args[args.index("--uuid") + 1]
link = 3

# P-256's generator: a point on the curve.
GX = bytes.fromhex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296")
GY = bytes.fromhex("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")
RSA_N = b"\xff" * 256  # 2048 bits, odd: a modulus as far as a parser sees


def call(ordinal, payload=b""):
    frame = struct.pack(">HII", 0x01C1, 10 + len(payload), ordinal) + payload
    os.write(link, frame)
    hdr = b""
    while len(hdr) < 10:
        hdr += os.read(link, 10 - len(hdr))
    size = struct.unpack(">I", hdr[2:6])[0]
    body = b""
    while len(body) < size - 10:
        body += os.read(link, size - 10 - len(body))
    return struct.unpack(">I", hdr[6:10])[0], body


def certify(kind, key):
    p = struct.pack(">BI", kind, 0x49424D00) + b"fake".ljust(16, b"\0")
    p += struct.pack(">IIII", 1, 2, 0, 164) + struct.pack(">H", len(key))
    return call(0x10, p + key)


# A stop may come while it probes (create stops it once it reported):
# finish the probes and the report first.
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
res = {}
st, body = call(2)                                   # LOADHASHKEY
res["flags"] = struct.unpack(">I", body[72:76])[0] if st == 0 else None
st, body = certify(1, RSA_N)
res["rsa"] = st
if st == 0:
    n = struct.unpack(">H", body[:2])[0]
    res["rsa_cert"] = body[2:2 + n].hex()
res["rsa_again"] = certify(1, RSA_N)[0]
res["ecc_off_curve"] = certify(2, b"\0" * 64)[0]
res["ecc"] = certify(2, GX + GY)[0]
res["made"] = call(0x11, struct.pack(">II", 0, 7))[0]  # MANUFACTURED
res["platform_after"] = certify(3, RSA_N)[0]
res["made_again"] = call(0x11, struct.pack(">II", 0, 7))[0]
out = os.environ.get("FAKE_OUT", "/tmp")
with open(os.path.join(out, "fake-%s.json" % uuid), "w") as f:
    json.dump(res, f)
if stop:
    sys.exit(0)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
signal.pause()
