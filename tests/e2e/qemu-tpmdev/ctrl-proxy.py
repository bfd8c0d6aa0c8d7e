#!/usr/bin/env python3
"""Logging proxy for swtpm's control channel (used by run.sh --trace-ctrl).

    ctrl-proxy.py LISTEN_CTRL UPSTREAM_CTRL [--startup-after-init]

Listens on LISTEN_CTRL (QEMU's -chardev socket path), connects to the
server's control socket UPSTREAM_CTRL, and logs every control command and
response in both directions. On CMD_SET_DATAFD it keeps QEMU's data fd, hands
the server the far end of a fresh socketpair instead, and relays (and logs)
each TPM command/response on the data channel.

--startup-after-init is a negative-test mode: after the server answers
CMD_INIT it injects TPM2_Startup(SU_CLEAR) itself, emulating a server that
auto-starts the TPM on CMD_INIT. SeaBIOS's own Startup then gets
TPM_RC_INITIALIZE and SeaBIOS disables the TPM, which run.sh must detect.
"""
import array
import socket
import struct
import sys
import threading
import time

CMDS = {1: 'GET_CAPABILITY', 2: 'INIT', 3: 'SHUTDOWN', 4: 'GET_TPMESTABLISHED',
        5: 'SET_LOCALITY', 6: 'HASH_START', 7: 'HASH_DATA', 8: 'HASH_END',
        9: 'CANCEL_TPM_CMD', 10: 'STORE_VOLATILE', 11: 'RESET_TPMESTABLISHED',
        12: 'GET_STATEBLOB', 13: 'SET_STATEBLOB', 14: 'STOP', 15: 'GET_CONFIG',
        16: 'SET_DATAFD', 17: 'SET_BUFFERSIZE', 18: 'GET_INFO', 19: 'LOCK_STORAGE'}
CCS = {0xf1: 'TPM1.2_GetTicks', 0x121: 'HierarchyControl', 0x129: 'HierarchyChangeAuth',
       0x143: 'SelfTest', 0x144: 'Startup', 0x145: 'Shutdown', 0x146: 'StirRandom',
       0x161: 'ContextLoad', 0x162: 'ContextSave', 0x165: 'FlushContext',
       0x17a: 'GetCapability', 0x17b: 'GetRandom', 0x17e: 'PCR_Read',
       0x181: 'ReadClock', 0x182: 'PCR_Extend'}

T0 = time.time()
LOG_LOCK = threading.Lock()


def log(*a):
    with LOG_LOCK:
        print('%8.3f' % (time.time() - T0), *a, flush=True)


def read_tpm_msg(sock):
    """Read one TPM command/response (10-byte header carries the size)."""
    buf = b''
    while len(buf) < 10:
        chunk = sock.recv(10 - len(buf))
        if not chunk:
            return None
        buf += chunk
    size = struct.unpack('>I', buf[2:6])[0]
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def main():
    listen_path, upstream_path = sys.argv[1], sys.argv[2]
    inject = '--startup-after-init' in sys.argv[3:]
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(listen_path)
    ls.listen(1)
    qemu, _ = ls.accept()
    up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    up.connect(upstream_path)
    state = {'srv_data': None, 'init_pending': False}
    data_lock = threading.Lock()

    def xfer(cmd):
        with data_lock:
            state['srv_data'].sendall(cmd)
            return read_tpm_msg(state['srv_data'])

    def data_loop(qd):
        while True:
            cmd = read_tpm_msg(qd)
            if cmd is None:
                log('DATA  QEMU closed the data channel')
                return
            rsp = xfer(cmd)
            if rsp is None:
                log('DATA  server closed the data channel')
                qd.close()
                return
            cc = struct.unpack('>I', cmd[6:10])[0]
            rc = struct.unpack('>I', rsp[6:10])[0]
            log('DATA  -> %-20s %s' % (CCS.get(cc, hex(cc)), cmd[:32].hex()))
            log('DATA  <- rc=0x%x tag=%s len=%d' % (rc, rsp[:2].hex(), len(rsp)))
            qd.sendall(rsp)

    def ctrl_up():
        while True:
            msg, anc, _flags, _addr = qemu.recvmsg(8192, socket.CMSG_SPACE(4 * 4))
            if not msg:
                log('CTRL  QEMU closed the control channel')
                up.shutdown(socket.SHUT_WR)
                return
            cmd = struct.unpack('>I', msg[:4])[0] if len(msg) >= 4 else -1
            fds = array.array('i')
            for level, typ, data in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    fds.frombytes(data[:len(data) - len(data) % 4])
            log('CTRL  -> %s (%d) payload=%s%s' % (CMDS.get(cmd, '?'), cmd,
                msg[4:].hex() or '-', ' +SCM_RIGHTS fd' if len(fds) else ''))
            if len(fds):
                qd = socket.socket(fileno=fds[0])
                mine, theirs = socket.socketpair()
                state['srv_data'] = mine
                threading.Thread(target=data_loop, args=(qd,), daemon=True).start()
                up.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                    array.array('i', [theirs.fileno()]))])
                theirs.close()
            else:
                if cmd == 2 and inject:
                    state['init_pending'] = True
                up.sendall(msg)

    threading.Thread(target=ctrl_up, daemon=True).start()
    while True:
        rsp = up.recv(8192)
        if not rsp:
            log('CTRL  server closed the control channel')
            qemu.close()
            return
        if state['init_pending'] and state['srv_data'] is not None:
            state['init_pending'] = False
            r = xfer(bytes.fromhex('80010000000c000001440000'))
            log('INJECTED TPM2_Startup(SU_CLEAR) after CMD_INIT: rc=0x%x'
                % struct.unpack('>I', r[6:10])[0])
        log('CTRL  <- %s' % rsp.hex())
        qemu.sendall(rsp)


if __name__ == '__main__':
    main()
