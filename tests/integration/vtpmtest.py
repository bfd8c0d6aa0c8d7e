# SPDX-License-Identifier: BSD-3-Clause
"""Shared pieces of the integration tests: start and stop real
vtpm-service processes, talk raw TPM 2.0 and swtpm control bytes to them,
and run the real tpm2-tools against them."""

import argparse
import atexit
import hashlib
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

TPM_RS_PW = 0x40000009
TPM_RH_OWNER = 0x40000001

_results = {"passed": 0, "failed": 0}
_instances = []
_hardware = []   # swtpms standing in for physical TPMs: stopped at exit


def args():
    p = argparse.ArgumentParser()
    p.add_argument("--vtpm", required=True, help="path of vtpm-service")
    p.add_argument("--workdir", default=None)
    return p.parse_args()


def check(cond, name, detail=""):
    if cond:
        _results["passed"] += 1
        print("ok   %s" % name, flush=True)
    else:
        _results["failed"] += 1
        print("FAIL %s %s" % (name, detail), flush=True)
    return cond


def finish():
    # Sanitizer builds print their findings into the instance logs.
    for inst in _instances:
        text = inst.log_text()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                       "runtime error:"):
            if marker in text:
                check(False, "no sanitizer report in %s" % inst.log_path,
                      text[text.index(marker):][:2000])
                break
    print("%d passed, %d failed" % (_results["passed"], _results["failed"]))
    # Whatever a test left running (a manager restarted in a loop, say)
    # ends with it: a test run leaves no process behind.
    for inst in _instances:
        try:
            inst.stop()
        except (OSError, subprocess.SubprocessError):
            pass
    stop_hardware()
    sys.exit(1 if _results["failed"] or not _results["passed"] else 0)


def stop_hardware():
    """Every HardwareTPM still running (tests that forget hw.stop(), or
    end with an exception) goes: the swtpms outlived every run of
    test_tpm_deadline and test_hostile_quote."""
    for hw in _hardware:
        try:
            hw.stop()
        except Exception:
            pass


atexit.register(stop_hardware)


def workdir(a, name):
    base = a.workdir or tempfile.mkdtemp(prefix="vtpm-%s-" % name)
    os.makedirs(base, exist_ok=True)
    return base


def proc_status(pid, field):
    """An integer field of /proc/PID/status ("Threads", "VmRSS"), -1 if
    absent."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def make_key(path, raw=False):
    data = secrets.token_bytes(32)
    with open(path, "wb") as f:
        f.write(data if raw else data.hex().encode() + b"\n")
    os.chmod(path, 0o600)
    return path


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Instance:
    """One vtpm-service --role=instance process."""

    def __init__(self, exe, wd, domid=1, key=None, extra=(), sock=None,
                 tpm_version=None, uuid=None, transport=None):
        self.exe = exe
        self.wd = wd
        os.makedirs(wd, exist_ok=True)
        self.domid = domid
        self.sock = sock or os.path.join(wd, "dom%d.sock" % domid)
        self.ctrl = self.sock + ".ctrl"
        self.state_dir = os.path.join(wd, "state")
        self.key = key or make_key(os.path.join(wd, "key"))
        self.extra = list(extra)
        self.tpm_version = tpm_version
        self.uuid = uuid
        self.transport = transport or "unix:" + self.sock
        self.proc = None
        self.log_path = os.path.join(wd, "dom%d.log" % domid)
        _instances.append(self)

    def argv(self):
        a = [self.exe, "--role=instance", "--domid", str(self.domid),
             "--transport", self.transport, "--state-key", self.key,
             "--state-dir", self.state_dir]
        if self.tpm_version:
            a += ["--tpm-version", self.tpm_version]
        if self.uuid:
            a += ["--uuid", self.uuid]
        return a + self.extra

    def start(self, wait=True, env=None):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("instance exited with %d: %s" %
                                   (self.proc.returncode, self.log_text()))
            if self.transport.startswith("unix:"):
                try:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.connect(self.sock)
                    s.close()
                    return
                except OSError:
                    pass
            else:
                host, port = self.transport[4:].rsplit(":", 1)
                try:
                    socket.create_connection((host, int(port)), 0.5).close()
                    return
                except OSError:
                    pass
            time.sleep(0.005)
        raise RuntimeError("instance not ready after %.0fs" % timeout)

    def run_to_exit(self, timeout=30):
        """Start and expect the process to end by itself; returns rc."""
        self.start(wait=False)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def kill(self):
        return self.stop(signal.SIGKILL)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def state_files(self):
        return sorted(f for f in os.listdir(self.state_dir)
                      if f.endswith(".state"))

    def state_path(self):
        # The first state write runs right after the socket opens.
        for _ in range(500):
            if os.path.isdir(self.state_dir) and self.state_files():
                break
            time.sleep(0.01)
        return os.path.join(self.state_dir, self.state_files()[0])

    def tools(self, *cmd, check_rc=True, inp=None):
        env = dict(os.environ, TPM2TOOLS_TCTI="swtpm:path=" + self.sock)
        r = subprocess.run(list(cmd), env=env, capture_output=True,
                           input=inp, timeout=60)
        if check_rc and r.returncode != 0:
            raise RuntimeError("%s failed (%d): %s" %
                               (" ".join(cmd), r.returncode,
                                r.stderr.decode(errors="replace")))
        return r

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(self.sock)
        return s

    def connect_ctrl(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(self.ctrl)
        return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" %
                           (len(buf), n))
        buf += chunk
    return buf


def recv_tpm(s):
    hdr = recv_exact(s, 10)
    size = struct.unpack(">I", hdr[2:6])[0]
    return hdr + recv_exact(s, size - 10)


def transact(s, cmd):
    s.sendall(cmd)
    return recv_tpm(s)


def rc_of(rsp):
    return struct.unpack(">I", rsp[6:10])[0]


def ctrl(s, code, body=b"", reply_len=4):
    s.sendall(struct.pack(">I", code) + body)
    return recv_exact(s, reply_len)


# ---- TPM 2.0 commands built by hand (TPM 2.0 Part 3) ----

def cmd(tag, cc, body):
    return struct.pack(">HII", tag, 10 + len(body), cc) + body


def pw_session():
    # sessionHandle, nonce(0), attributes(continueSession), hmac(0)
    s = struct.pack(">IHBH", TPM_RS_PW, 0, 1, 0)
    return struct.pack(">I", len(s)) + s


def getrandom(n):
    return cmd(0x8001, 0x17B, struct.pack(">H", n))


def nv_define(index, size):
    # TPMS_NV_PUBLIC: index, nameAlg sha256, attributes
    # OWNERWRITE|AUTHWRITE|OWNERREAD|AUTHREAD, no policy, data size.
    public = struct.pack(">IHIHH", index, 0x000B, 0x00060006, 0, size)
    body = struct.pack(">I", TPM_RH_OWNER) + pw_session()
    body += struct.pack(">H", 0)                      # auth (empty)
    body += struct.pack(">H", len(public)) + public   # TPM2B_NV_PUBLIC
    return cmd(0x8002, 0x12A, body)


def nv_undefine(index):
    body = struct.pack(">II", TPM_RH_OWNER, index) + pw_session()
    return cmd(0x8002, 0x122, body)


def nv_write(index, data, offset=0):
    body = struct.pack(">II", TPM_RH_OWNER, index) + pw_session()
    body += struct.pack(">H", len(data)) + data + struct.pack(">H", offset)
    return cmd(0x8002, 0x137, body)


def nv_read(index, size, offset=0):
    body = struct.pack(">II", TPM_RH_OWNER, index) + pw_session()
    body += struct.pack(">HH", size, offset)
    return cmd(0x8002, 0x14E, body)


def nv_read_data(rsp):
    # header(10) paramSize(4) TPM2B(2+n) ...
    n = struct.unpack(">H", rsp[14:16])[0]
    return rsp[16:16 + n]


def pcr_extend(pcr, digest):
    body = struct.pack(">I", pcr) + pw_session()
    body += struct.pack(">IH", 1, 0x000B) + digest
    return cmd(0x8002, 0x182, body)


def create_primary_rsa():
    """TPM2_CreatePrimary of an RSA-2048 storage key: slow on purpose
    (prime generation takes tens to hundreds of milliseconds)."""
    sensitive = struct.pack(">HH", 0, 0)
    public = struct.pack(">HHI", 0x0001, 0x000B, 0x00030072)
    public += struct.pack(">H", 0)                        # authPolicy
    public += struct.pack(">HHHHHI", 0x0006, 128, 0x0043,  # AES-128-CFB
                          0x0010, 2048, 0)                # no scheme
    public += struct.pack(">H", 0)                        # unique
    body = struct.pack(">I", TPM_RH_OWNER) + pw_session()
    body += struct.pack(">H", len(sensitive)) + sensitive
    body += struct.pack(">H", len(public)) + public
    body += struct.pack(">H", 0) + struct.pack(">I", 0)    # outside, pcrs
    return cmd(0x8002, 0x131, body)


# ---- the manager role, with swtpm standing in for the physical TPM ----

class HardwareTPM:
    """swtpm as the host's physical TPM."""

    def __init__(self, wd):
        self.dir = os.path.join(wd, "hwtpm")
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, "s")
        self.tcti = "swtpm:path=" + self.sock
        self.proc = None
        _hardware.append(self)

    def start(self):
        self.proc = subprocess.Popen(
            ["swtpm", "socket", "--tpm2", "--tpmstate", "dir=" + self.dir,
             "--server", "type=unixio,path=" + self.sock,
             "--ctrl", "type=unixio,path=" + self.sock + ".ctrl",
             "--flags", "not-need-init,startup-clear"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(500):
            if os.path.exists(self.sock):
                return self
            time.sleep(0.01)
        raise RuntimeError("swtpm did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)   # a test may stop it
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tools(self, *cmd):
        env = dict(os.environ, TPM2TOOLS_TCTI=self.tcti)
        return subprocess.run(list(cmd), env=env, capture_output=True,
                              timeout=60)


class Manager:
    """vtpm-service --role=manager, and vtpmctl to talk to it."""

    def __init__(self, exe, wd, hw, extra=()):
        self.exe = exe
        self.ctl_exe = os.path.join(os.path.dirname(exe), "vtpmctl")
        self.wd = wd
        self.hw = hw
        self.state_dir = os.path.join(wd, "mgrstate")
        self.run_dir = os.path.join(wd, "run")
        self.control = os.path.join(wd, "ctl.sock")
        self.log_path = os.path.join(wd, "manager.log")
        self.extra = list(extra)
        self.proc = None
        _instances.append(self)

    def argv(self):
        return [self.exe, "--role=manager", "--state-dir", self.state_dir,
                "--tcti", self.hw.tcti, "--control", self.control,
                "--run-dir", self.run_dir] + self.extra

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=self.log,
                                     stderr=subprocess.STDOUT)
        if wait:
            end = time.monotonic() + 30
            while time.monotonic() < end:
                if self.proc.poll() is not None:
                    raise RuntimeError("manager exited %d: %s" %
                                       (self.proc.returncode,
                                        self.log_text()[-2000:]))
                if os.path.exists(self.control):
                    try:
                        s = socket.socket(socket.AF_UNIX)
                        s.connect(self.control)
                        s.close()
                        return self
                    except OSError:
                        pass
                time.sleep(0.02)
            raise RuntimeError("manager not ready")
        return self

    def run_to_exit(self, timeout=60):
        self.start(wait=False)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def ctl(self, *args, check_rc=True):
        r = subprocess.run([self.ctl_exe, "--control", self.control] +
                           list(args), capture_output=True, timeout=60)
        if check_rc and r.returncode != 0:
            raise RuntimeError("vtpmctl %s: rc %d: %s%s" %
                               (" ".join(args), r.returncode,
                                r.stdout.decode(), r.stderr.decode()))
        return r

    def ctl_json(self, *args):
        import json
        r = self.ctl("--json", *args)
        return json.loads(r.stdout)

    def vtpm_sock(self, uuid):
        return os.path.join(self.run_dir, uuid, "tpm")

    def wait_vtpm(self, uuid, timeout=30):
        """Until the vTPM answers a GetRandom on its socket."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                s = socket.socket(socket.AF_UNIX)
                s.settimeout(5)
                s.connect(self.vtpm_sock(uuid))
                r = transact(s, getrandom(4))
                s.close()
                if rc_of(r) == 0:
                    return True
            except (OSError, EOFError):
                pass
            time.sleep(0.05)
        return False

    def connect_vtpm(self, uuid):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(30)
        s.connect(self.vtpm_sock(uuid))
        return s

    def vtpm_dir(self, uuid):
        return os.path.join(self.state_dir, "vtpms", uuid)
