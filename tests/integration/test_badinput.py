#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Hostile clients on the data and control sockets.  Each gets a TPM
error or a closed connection; the instance keeps serving everyone else,
logs (rate-limited), and its state does not change."""

import os
import random
import socket
import struct
import time

from vtpmtest import *

a = args()
wd = workdir(a, "badinput")
# Garbage parsing is the subject here: 40 clients at once (above the
# default --max-connections) and state blobs in the clear (their parser);
# integ_hostile_conn tests the cap and the refusal of plaintext blobs.
inst = Instance(a.vtpm, wd, extra=["--client-timeout-ms", "300",
                                   "--max-connections", "64",
                                   "--allow-plaintext-state"]).start()


def still_serving(name):
    s = inst.connect()
    r = transact(s, getrandom(16))
    s.close()
    check(rc_of(r) == 0 and len(r) == 12 + 16,
          "%s: the next client is still served" % name)


def closed(s, timeout=3.0):
    s.settimeout(timeout)
    try:
        return s.recv(100) == b""
    except (ConnectionResetError, socket.timeout):
        return False


state_before = sha256_file(inst.state_path())

# A frame whose size field is below a TPM header, or above the buffer.
for name, size in (("size 5", 5), ("size 0", 0), ("size 100000", 100000),
                   ("size 4097", 4097), ("size 0xffffffff", 0xffffffff)):
    s = inst.connect()
    s.sendall(struct.pack(">HII", 0x8001, size, 0x17B))
    r = recv_tpm(s)
    check(rc_of(r) == 0x142, "%s: answered TPM_RC_COMMAND_SIZE" % name,
          r.hex())
    check(closed(s), "%s: then the connection is closed" % name)
    still_serving(name)

# Fewer bytes than a header, then hang up.
s = inst.connect()
s.sendall(b"\x80\x01\x00")
s.close()
still_serving("3 bytes then close")

# Half a frame that stalls: dropped after the client timeout, while a
# second client is served in the meantime.
s = inst.connect()
s.sendall(getrandom(16)[:7])
still_serving("during a stalled half frame")
check(closed(s), "a stalled half frame is dropped after the timeout")

# Disconnect before the response of a slow command.
s = inst.connect()
s.sendall(create_primary_rsa())
s.close()
still_serving("client gone before its response")

# A client that never reads its responses does not block others.
s = inst.connect()
s.setblocking(False)
burst = getrandom(32) * 4000
sent = 0
try:
    while sent < len(burst):
        sent += s.send(burst[sent:])
except BlockingIOError:
    pass
still_serving("a client that never reads")
s.close()

# Microsoft-simulator framing and its hostile variants.
s = inst.connect()
cmd = getrandom(8)
s.sendall(struct.pack(">IBI", 8, 0, len(cmd)) + cmd)
n = struct.unpack(">I", recv_exact(s, 4))[0]
rsp = recv_exact(s, n)
trailer = recv_exact(s, 4)
check(rc_of(rsp) == 0 and trailer == b"\0\0\0\0",
      "MS-simulator framed GetRandom answered in MS-simulator framing")
s.sendall(struct.pack(">IBI", 8, 9, len(cmd)) + cmd)
r = recv_tpm(s)
check(rc_of(r) == 0x142 and closed(s),
      "MS-simulator locality 9 gets an error and a closed connection")
still_serving("MS-simulator locality 9")

# Many clients sending random garbage at once.
rng = random.Random(7)
socks = []
for i in range(40):
    s = inst.connect()
    s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))))
    socks.append(s)
still_serving("40 garbage clients connected")
for s in socks:
    s.close()
check(sha256_file(inst.state_path()) == state_before,
      "no hostile data client changed the state file")

# ---- control socket ----
c = inst.connect_ctrl()
check(ctrl(c, 0x77) == struct.pack(">I", 0x0a),
      "unknown control command: TPM_BAD_ORDINAL, connection kept")
check(ctrl(c, 0x0e, b"\x01") == struct.pack(">I", 0x03),
      "STOP with a stray byte: TPM_BAD_PARAMETER, TPM not stopped")
check(ctrl(c, 0x05, b"\x07") == struct.pack(">I", 0x3d),
      "SET_LOCALITY 7: TPM_BAD_LOCALITY")
check(ctrl(c, 0x0d, struct.pack(">III", 0, 1, 0xffffffff)) ==
      struct.pack(">I", 0x0a),
      "SET_STATEBLOB while running: TPM_BAD_ORDINAL")
check(ctrl(c, 0x0c, struct.pack(">III", 0, 9, 0), 16)[:4] ==
      struct.pack(">I", 0x800),
      "GET_STATEBLOB of an unknown type: TPM_RETRY")
c.close()
still_serving("control garbage")

c = inst.connect_ctrl()
c.sendall(b"\x00\x00")
t0 = time.monotonic()
check(closed(c), "a control request shorter than its code is dropped")
dt = time.monotonic() - t0
check(0.3 < dt < 2.0, "after about 500 ms, as swtpm does", "%.2fs" % dt)
c = inst.connect_ctrl()
c.sendall(struct.pack(">I", 2) + b"\x00")
check(closed(c), "INIT with half its flags is dropped unanswered")

# A stopped TPM with a garbage state blob: refused, nothing persisted.
c = inst.connect_ctrl()
check(ctrl(c, 0x0e) == b"\0\0\0\0", "STOP")
junk = os.urandom(2000)
check(ctrl(c, 0x0d, struct.pack(">III", 0, 1, len(junk)) + junk) ==
      struct.pack(">I", 0x03),
      "SET_STATEBLOB with a garbage permanent blob: TPM_BAD_PARAMETER")
check(ctrl(c, 0x02, b"\0\0\0\0") == b"\0\0\0\0", "INIT")
c.close()
s = inst.connect()
r = transact(s, bytes.fromhex("80010000000c000001440000"))
s.close()
check(rc_of(r) == 0, "the previous state boots after the refused blob")
still_serving("garbage state blob")

# A frame trickled one byte at a time, each within the timeout: the
# deadline runs from the frame's first byte, so it is still dropped.
s = inst.connect()
frame = struct.pack(">HII", 0x8001, 1000, 0x17B) + b"\0" * 990
t0 = time.monotonic()
dropped = None
s.setblocking(False)
for i in range(30):  # 3 s of trickling, ten times the timeout
    try:
        s.sendall(frame[i:i + 1])
        if s.recv(100) == b"":
            dropped = time.monotonic() - t0
            break
    except BlockingIOError:
        pass
    except OSError:
        dropped = time.monotonic() - t0
        break
    time.sleep(0.1)
s.setblocking(True)
check(dropped is not None and dropped < 1.5,
      "a frame trickled a byte per 100 ms (timeout 300 ms) is dropped "
      "(after %s s)" % (dropped and round(dropped, 2)))
s.close()
still_serving("trickled frame")

# Descriptors passed on the control channel (SCM_RIGHTS): closed unless
# the request takes one; SET_DATAFD takes only a connected UNIX stream
# socket to a peer, one per control connection.
def nfds():
    return len(os.listdir("/proc/%d/fd" % inst.proc.pid))


def send_fds(sock, data, fds):
    sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                           struct.pack("%di" % len(fds), *fds))])


c = socket.socket(socket.AF_UNIX)
c.settimeout(10)
c.connect(inst.ctrl)
devnull = os.open("/dev/null", os.O_RDONLY)
fds_before = nfds()
for i in range(300):
    send_fds(c, struct.pack(">I", 0x01), [devnull, devnull])  # GET_CAPABILITY
    recv_exact(c, 8)
fds_after = nfds()
check(fds_after <= fds_before + 1,
      "300 control requests carrying 2 descriptors each: none kept "
      "(%d -> %d open)" % (fds_before, fds_after))
c.close()

SET_DATAFD = 0x10
c = socket.socket(socket.AF_UNIX)
c.settimeout(10)
c.connect(inst.ctrl)
lst = socket.socket(socket.AF_UNIX)
lst.bind(os.path.join(wd, "listening.sock"))
lst.listen(1)
loop = socket.socket(socket.AF_UNIX)
loop.connect(inst.sock)
dg1, dg2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
for name, fd in (("a listening socket", lst.fileno()),
                 ("a connection to the instance's own data socket",
                  loop.fileno()),
                 ("a datagram socket", dg2.fileno()),
                 ("/dev/null", devnull)):
    send_fds(c, struct.pack(">I", SET_DATAFD), [fd])
    check(recv_exact(c, 4) == struct.pack(">I", 0x03),
          "SET_DATAFD with %s: TPM_BAD_PARAMETER" % name)
x, y = socket.socketpair()
send_fds(c, struct.pack(">I", SET_DATAFD), [y.fileno()])
check(recv_exact(c, 4) == b"\0\0\0\0", "SET_DATAFD with a socketpair end: OK")
y.close()
x.settimeout(10)
check(rc_of(transact(x, getrandom(8))) == 0,
      "commands flow over the SET_DATAFD socket")
x2, y2 = socket.socketpair()
send_fds(c, struct.pack(">I", SET_DATAFD), [y2.fileno()])
check(recv_exact(c, 4) == struct.pack(">I", 0x1f),
      "a second SET_DATAFD on the same control connection: TPM_IOERROR")
for s_ in (c, lst, loop, dg1, dg2, x, x2, y2):
    s_.close()
os.close(devnull)
still_serving("descriptors on the control channel")

inst.stop()
inst.start()
still_serving("restart after hostile clients")
inst.stop()
log = inst.log_text()
check(log.count("closing it") < 60,
      "warnings about hostile clients are rate-limited",
      "%d lines" % log.count("closing it"))
finish()
