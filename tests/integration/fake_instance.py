#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Stands in for an instance (vtpm-service --instance-exe) to probe what a
process holding a manager link can get: its own key, nothing else."""

import json
import os
import struct
import sys

args = sys.argv
uuid = args[args.index("--uuid") + 1]
link = 3


def call(tag, ordinal, payload=b""):
    frame = struct.pack(">HII", tag, 10 + len(payload), ordinal) + payload
    os.write(link, frame)
    hdr = b""
    while len(hdr) < 10:
        hdr += os.read(link, 10 - len(hdr))
    size = struct.unpack(">I", hdr[2:6])[0]
    body = b""
    while len(body) < size - 10:
        body += os.read(link, size - 10 - len(body))
    return struct.unpack(">I", hdr[6:10])[0], body


res = {}
st, body = call(0x01C1, 2)                  # LOADHASHKEY
res["own_status"] = st
if st == 0:
    res["own_key"] = body[40:72].hex()
other = bytes.fromhex("00000000000040008000000000000000")
st, body = call(0x01C1, 2, other)           # LOADHASHKEY "for" another UUID
res["claim_other_status"] = st
if st == 0:
    res["claim_other_key"] = body[40:72].hex()
st, body = call(0x01C2, 0x02000201, struct.pack(">II", 0, 0))  # VTPM_LIST
res["manage_status"] = st
out = os.environ.get("FAKE_OUT", "/tmp")
with open(os.path.join(out, "fake-%s.json" % uuid), "w") as f:
    json.dump(res, f)
# Stay alive like an instance until stopped.
import signal
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
signal.pause()
