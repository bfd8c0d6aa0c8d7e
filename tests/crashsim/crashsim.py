#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Power-cut crash simulator (issue 15, item 3).

1. Record: run a workload against the real binaries with interpose.so
   preloaded; every file operation under the watched directories, and the
   client's SEND/ACK notes, land in one log in one global order.
2. Build crash states with the model of csmodel.py (unflushed writes lost,
   kept or torn at 512-byte sectors; names not made durable by a
   directory fsync undone), deduplicated by content hash.
3. Check each distinct state with the real binaries: it must start with
   every write acknowledged before the cut (or the one in flight), or
   refuse with a clear error.  A silent loss, a fresh TPM, a crash or a
   hang is a violation.

Workloads: "standalone" (vtpm-service --state-key, NV define and writes,
clean stop, SIGKILL, restarts) and "manager" (vtpm-service-manager on
swtpm as the physical TPM: vtpmctl create, NV writes through the managed
vTPM, a second create, delete; every commit of the key store).
"""

import argparse
import concurrent.futures
import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import csmodel  # noqa: E402
from vtpmtest import (nv_define, nv_write, nv_read, nv_read_data,  # noqa
                      rc_of, transact, getrandom, make_key)

RC_NV_UNINITIALIZED = 0x14A


def value_of(rsp):
    rc = rc_of(rsp)
    if rc == 0:
        return nv_read_data(rsp).hex()
    if rc == RC_NV_UNINITIALIZED:
        return "uninit"
    if rc & 0x80 and rc & 0x3F == 0x0B:   # TPM_RC_HANDLE, any handle
        return "undef"
    return "rc:%x" % rc


class Client:
    """Writes NV indices on a TPM socket, noting SEND before and ACK
    after every command in the log."""

    def __init__(self, log, connect):
        self.log = log
        self.connect = connect
        self.s = None
        self.acked = 0

    def _cmd(self, tag, idx, val, cmd):
        if self.s is None:
            self.s = self.connect()
        csmodel.note(self.log, "SEND %s %x %s" % (tag, idx, val))
        r = transact(self.s, cmd)
        if rc_of(r) != 0:
            raise RuntimeError("%s %x: rc 0x%x" % (tag, idx, rc_of(r)))
        csmodel.note(self.log, "ACK %s %x %s" % (tag, idx, val))
        self.acked += 1

    def define(self, idx):
        self._cmd("define", idx, "uninit", nv_define(idx, 8))

    def write(self, idx, n):
        v = struct.pack(">Q", n)
        self._cmd("write", idx, v.hex(), nv_write(idx, v))

    def close(self):
        if self.s:
            self.s.close()
            self.s = None


class Expect:
    """What a cut must keep, from the client's notes up to that point:
    nv: idx -> (acked value, values in flight); vt: uuid -> (acked
    "present"/"absent", in flight).  Notes are applied in log order."""

    def __init__(self, notes):
        self.notes = notes
        self.i = 0
        self.nv = {}
        self.vt = {}
        self.snap = ({}, {})

    def at(self, k):
        changed = False
        while self.i < len(self.notes) and self.notes[self.i][0] <= k:
            self.apply(self.notes[self.i][1])
            self.i += 1
            changed = True
        if changed:
            self.snap = (dict(self.nv), dict(self.vt))
        return self.snap

    def apply(self, text):
        w = text.split()
        nv, vt = self.nv, self.vt
        if w[1] in ("define", "write"):
            idx = w[2]
            acked, infl = nv.get(idx, ("undef", frozenset()))
            if w[0] == "SEND":
                infl = infl | {w[3]}
            else:
                acked, infl = w[3], frozenset()
            nv[idx] = (acked, infl)
        elif w[1] == "create" and w[0] == "ACK":
            # Before its ACK a new vTPM may or may not be there.
            vt[w[2]] = ("present", frozenset())
        elif w[1] == "delete":
            u = w[2]
            if w[0] == "SEND":
                vt[u] = (vt[u][0], frozenset({"absent"}))
            else:
                vt[u] = ("absent", frozenset())


def judge(outcome, exps):
    """outcome: ("refused", text) | ("ok", nv values, vtpms) |
    ("error", text).  exps: the expectations of every crash point that
    can leave this state.  Returns (verdict, detail)."""
    if outcome[0] == "refused":
        return "refused", exps[-1][0], outcome[1]
    if outcome[0] == "error":
        return "violation", exps[-1][0], outcome[1]
    _, vals, vts, refusals = outcome
    for k, (nv, vt) in exps:
        for idx, (acked, infl) in nv.items():
            got = vals.get(idx)
            if got is None:
                continue  # the vTPM holding it is gone: judged below
            if got != acked and got not in infl:
                return "violation", k, ("cut before op %d: index %s reads %s,"
                                     " acknowledged %s, in flight %s" %
                                     (k, idx, got, acked,
                                      sorted(infl) or "none"))
        for u, (acked, infl) in vt.items():
            got = "present" if u in vts else "absent"
            if got != acked and got not in infl:
                return "violation", k, ("cut before op %d: vTPM %s is %s, "
                                     "acknowledged %s" % (k, u, got, acked))
    if refusals:
        return "refused", exps[-1][0], refusals[0]
    return "ok", None, ""


# ---------------------------------------------------------------- standalone

class Standalone:
    """vtpm-service --role=instance --state-key on one state directory."""

    IDX = (0x01500060, 0x01500061)
    BULK = 0x01500062

    def __init__(self, a, wd):
        self.a = a
        self.wd = wd
        self.state = os.path.join(wd, "state")
        self.key = make_key(os.path.join(wd, "key"))
        self.log = os.path.join(wd, "ops.log")

    def argv(self, state_dir, sock):
        # --no-sandbox: the interposer finds paths through /proc/self/fd
        # and appends to its log by name, neither of which the
        # sandbox's private root shows.
        return [self.a.vtpm, "--role=instance", "--domid", "1",
                "--transport", "unix:" + sock, "--state-key", self.key,
                "--state-dir", state_dir, "--no-sandbox"]

    def start(self, env):
        sock = os.path.join(self.wd, "tpm.sock")
        p = subprocess.Popen(self.argv(self.state, sock), env=env,
                             stdout=self.out, stderr=subprocess.STDOUT)
        wait_sock(p, sock, 20)
        return p, sock

    def record(self, writes):
        os.makedirs(self.state)
        open(self.log, "wb").close()
        self.roots = [self.state]
        self.init_snapshot = csmodel.snapshot(self.roots)
        env = preload_env(self.a, self.roots, self.log)
        self.out = open(os.path.join(self.wd, "record.out"), "ab")
        p, sock = self.start(env)
        c = Client(self.log, lambda: connect(sock))
        A, B = self.IDX
        c.define(A)
        # A 2 KiB index makes the state span several sectors, so that
        # sector tears of a state write are many and different.
        s = connect(sock)
        if rc_of(transact(s, nv_define(self.BULK, 2048))) != 0:
            raise RuntimeError("define the bulk index")
        for off in (0, 1024):
            if rc_of(transact(s, nv_write(self.BULK, os.urandom(1024),
                                          off))) != 0:
                raise RuntimeError("write the bulk index")
        s.close()
        n = 0
        phase = max(1, writes // 4)
        for i in range(phase):
            n += 1
            c.write(A, n)
        c.close()
        p.send_signal(signal.SIGTERM)          # clean stop: watermark
        p.wait(20)
        p, sock = self.start(env)
        c = Client(self.log, lambda: connect(sock))
        c.define(B)
        for i in range(phase):
            n += 1
            c.write(A if i % 2 else B, n)
        c.close()
        p.kill()                                # crash, then start-up
        p.wait(20)
        p, sock = self.start(env)
        c = Client(self.log, lambda: connect(sock))
        while c.acked < writes + 2:
            n += 1
            c.write(B if n % 3 else A, n)
        c.close()
        p.send_signal(signal.SIGTERM)
        rc = p.wait(20)
        return c.acked, rc

    def check_setup(self, wdir):
        return {"state": os.path.join(wdir, "state"),
                "sock": os.path.join(wdir, "s")}

    def check(self, ctx, files, dirs):
        state = ctx["state"]
        shutil.rmtree(state, ignore_errors=True)
        csmodel.materialize(files, dirs, self.roots, [state])
        # The state directory itself may be gone in a crash state; the
        # instance makes it (as it does at a first start).
        outp = os.path.join(os.path.dirname(state), "out")
        with open(outp, "wb") as out:
            p = subprocess.Popen(self.argv(state, ctx["sock"]), stdout=out,
                                 stderr=subprocess.STDOUT)
            try:
                st = wait_sock(p, ctx["sock"], 20, quiet=True)
                if st != "ready":
                    return exited(p, outp, st)
                s = connect(ctx["sock"])
                vals = {}
                for idx in self.IDX:
                    vals["%x" % idx] = value_of(transact(s, nv_read(idx, 8)))
                s.close()
                return ("ok", vals, set(), [])
            except (OSError, EOFError) as e:
                return ("error", "instance: %s: %s" % (e, tail(outp)))
            finally:
                if p.poll() is None:
                    p.kill()
                p.wait()


# ------------------------------------------------------------------- manager

class Managed:
    """vtpm-service-manager with swtpm as the physical TPM, and its
    managed instances."""

    IDX = 0x01500070

    def __init__(self, a, wd):
        self.a = a
        self.wd = wd
        self.mgr = os.path.join(wd, "mgrstate")
        self.hw = os.path.join(wd, "hwtpm")
        self.log = os.path.join(wd, "ops.log")
        self.ctl = os.path.join(os.path.dirname(a.vtpm), "vtpmctl")
        self.mexe = a.vtpm

    def swtpm(self, hwdir, env=None):
        sock = os.path.join(hwdir, "s")
        p = subprocess.Popen(
            ["swtpm", "socket", "--tpm2", "--tpmstate", "dir=" + hwdir,
             "--server", "type=unixio,path=" + sock,
             "--ctrl", "type=unixio,path=" + sock + ".ctrl",
             "--flags", "not-need-init,startup-clear"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        for _ in range(1000):
            if os.path.exists(sock):
                return p, sock
            if p.poll() is not None:
                break
            time.sleep(0.005)
        raise RuntimeError("swtpm did not start")

    def margv(self, mgr, hwsock, control, run):
        return [self.mexe, "--role=manager", "--state-dir", mgr,
                "--tcti", "swtpm:path=" + hwsock, "--control", control,
                "--run-dir", run, "--counter-interval", "0", "--no-sandbox"]

    def vtpmctl(self, control, *args, check=True):
        r = subprocess.run([self.ctl, "--control", control] + list(args),
                           capture_output=True, timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError("vtpmctl %s: %s%s" % (
                " ".join(args), r.stdout.decode(), r.stderr.decode()))
        return r

    def record(self, writes):
        os.chmod(self.wd, 0o711)
        os.makedirs(self.hw)
        os.makedirs(self.mgr, 0o711)
        os.chmod(self.mgr, 0o711)
        open(self.log, "wb").close()
        os.chmod(self.log, 0o666)   # instances run as the instance user
        control = os.path.join(self.wd, "ctl.sock")
        run = os.path.join(self.wd, "run")
        self.out = open(os.path.join(self.wd, "record.out"), "ab")
        # First start (root key, counter, empty store) not recorded: the
        # recorded run starts from that directory.
        hwp, hwsock = self.swtpm(self.hw)
        m = subprocess.Popen(self.margv(self.mgr, hwsock, control, run),
                             stdout=self.out, stderr=subprocess.STDOUT)
        wait_sock(m, control, 30)
        m.send_signal(signal.SIGTERM)
        m.wait(30)
        hwp.terminate()
        hwp.wait(10)
        self.roots = [self.mgr]
        self.durable = [self.hw]
        self.init_snapshot = csmodel.snapshot(self.roots + self.durable)
        env = preload_env(self.a, self.roots + self.durable, self.log)
        hwp, hwsock = self.swtpm(self.hw, env)
        m = subprocess.Popen(self.margv(self.mgr, hwsock, control, run),
                             stdout=self.out, stderr=subprocess.STDOUT,
                             env=env)
        wait_sock(m, control, 30)
        acked = 0

        def create():
            csmodel.note(self.log, "SEND create ?")
            u = self.vtpmctl(control, "create").stdout.decode().strip()
            csmodel.note(self.log, "ACK create %s" % u)
            self.vtpmctl(control, "start", u)
            if not wait_vtpm(os.path.join(run, u, "tpm"), 40):
                raise RuntimeError("vTPM %s does not serve" % u)
            return u

        u1 = create()
        self.uuids = [u1]
        c = Client(self.log, lambda: connect(os.path.join(run, u1, "tpm")))
        c._tag = u1
        idx = self.IDX
        self.note_uuid = {}
        c.define(idx)
        for n in range(1, writes // 2 + 1):
            c.write(idx, n)
        u2 = create()
        self.uuids.append(u2)
        c2 = Client(self.log, lambda: connect(os.path.join(run, u2, "tpm")))
        c2.define(idx + 1)
        for n in range(writes // 2 + 1, writes + 1):
            (c if n % 2 else c2).write(idx if n % 2 else idx + 1, n)
        c.close()
        c2.close()
        acked = c.acked + c2.acked
        self.vtpmctl(control, "stop", u2)
        csmodel.note(self.log, "SEND delete %s" % u2)
        self.vtpmctl(control, "delete", u2)
        csmodel.note(self.log, "ACK delete %s" % u2)
        # One more write to the survivor after the delete.
        c.write(idx, writes + 1)
        c.close()
        acked += 1
        m.send_signal(signal.SIGTERM)
        rc = m.wait(30)
        hwp.terminate()
        hwp.wait(10)
        self.which = {"%x" % idx: u1, "%x" % (idx + 1): u2}
        return acked, rc

    def check_setup(self, wdir):
        os.makedirs(wdir, exist_ok=True)
        os.chmod(wdir, 0o711)
        return {"dir": wdir}

    def check(self, ctx, files, dirs):
        # A fresh directory per state: the instances of the last manager
        # (killed) get SIGTERM from their parent-death signal and may
        # still flush their state for a moment; they must not write into
        # the next state.  Directories three states old are removed.
        ctx["n"] = ctx.get("n", 0) + 1
        d = os.path.join(ctx["dir"], str(ctx["n"]))
        shutil.rmtree(os.path.join(ctx["dir"], str(ctx["n"] - 3)),
                      ignore_errors=True)
        os.makedirs(d)
        os.chmod(d, 0o711)
        mgr, hw = os.path.join(d, "m"), os.path.join(d, "h")
        run = os.path.join(d, "run")
        control = os.path.join(d, "c.sock")
        csmodel.materialize(files, dirs, [self.mgr, self.hw], [mgr, hw])
        if os.path.isdir(mgr):
            os.chmod(mgr, 0o711)
        for dp, dns, fns in os.walk(mgr):
            for x in dns:
                os.chmod(os.path.join(dp, x), 0o711 if dp == mgr else 0o700)
        # The instances run as the instance user (the manager runs as
        # root): their directories and files are theirs, as recorded.
        if os.geteuid() == 0:
            pw = pwd.getpwnam("nobody")
            vt = os.path.join(mgr, "vtpms")
            for dp, dns, fns in os.walk(vt):
                for x in dns + fns:
                    os.chown(os.path.join(dp, x), pw.pw_uid, pw.pw_gid)
        outp = os.path.join(d, "out")
        hwp = m = None
        with open(outp, "wb") as out:
            try:
                hwp, hwsock = self.swtpm(hw)
                m = subprocess.Popen(self.margv(mgr, hwsock, control, run),
                                     stdout=out, stderr=subprocess.STDOUT)
                st = wait_sock(m, control, 30, quiet=True)
                if st != "ready":
                    return exited(m, outp, st)
                r = self.vtpmctl(control, "--json", "list", check=False)
                if r.returncode != 0:
                    return ("error", "vtpmctl list: %s" % r.stderr.decode())
                vts = {v["uuid"] for v in json.loads(r.stdout)["vtpms"]}
                vals = {}
                refusals = []
                for idx, u in self.which.items():
                    if u not in vts:
                        continue
                    self.vtpmctl(control, "start", u, check=False)
                    sock = os.path.join(run, u, "tpm")
                    st = wait_vtpm(sock, 20, m, outp, u)
                    if st == "exited":
                        return exited(m, outp, "exited")
                    if st != "ready":
                        # One vTPM refusing does not excuse the others:
                        # they are still read and judged.
                        lines = [x for x in tail(outp, 1 << 20).splitlines()
                                 if u in x]
                        ref = [x for x in lines if "refusing to start" in x]
                        if ref:
                            refusals.append(ref[-1])
                            continue
                        return ("error", "vTPM %s does not serve (%s): %s"
                                % (u, st, "\n".join(lines[-4:])))
                    s = connect(sock)
                    vals[idx] = value_of(transact(s, nv_read(int(idx, 16),
                                                             8)))
                    s.close()
                return ("ok", vals, vts, refusals)
            except (OSError, EOFError, RuntimeError,
                    subprocess.TimeoutExpired) as e:
                return ("error", "manager: %s: %s" % (e, tail(outp)))
            finally:
                if m and m.poll() is None:
                    m.kill()
                    m.wait()
                if hwp:
                    hwp.kill()
                    hwp.wait()
                # The instances follow the manager (parent death signal).


# --------------------------------------------------------------- plumbing

def preload_env(a, roots, log):
    env = dict(os.environ, LD_PRELOAD=a.preload,
               CRASHSIM_DIR=":".join(roots), CRASHSIM_LOG=log)
    if a.nosync:
        env["CRASHSIM_NOSYNC"] = a.nosync
    return env


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    return s


def wait_sock(p, path, timeout, quiet=False):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if p.poll() is not None:
            if quiet:
                return "exited"
            raise RuntimeError("exited with %d" % p.returncode)
        try:
            connect(path).close()
            return "ready"
        except OSError:
            pass
        time.sleep(0.002)
    if quiet:
        return "timeout"
    raise RuntimeError("%s not ready" % path)


def wait_vtpm(sock, timeout, mgr=None, outp=None, uuid=None):
    """Until the vTPM answers a GetRandom; with the manager's process
    and output: "exited" or "died" as soon as either shows it."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if mgr is not None:
            if mgr.poll() is not None:
                return "exited"
            if "vTPM %s: instance died" % uuid in tail(outp, 1 << 20):
                return "died"
        try:
            s = connect(sock)
            s.settimeout(5)
            r = transact(s, getrandom(4))
            s.close()
            if rc_of(r) == 0:
                return "ready" if mgr is not None else True
        except (OSError, EOFError):
            pass
        time.sleep(0.005)
    return "timeout" if mgr is not None else False


def tail(path, n=600):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")[-n:].strip()
    except OSError:
        return ""


def exited(p, outp, st):
    if st == "timeout":
        return ("error", "not ready and not exited: %s" % tail(outp))
    text = tail(outp, 1 << 20)
    ref = [x for x in text.splitlines() if "refusing" in x]
    if p.returncode == 1 and ref:
        return ("refused", ref[-1])
    text = text[-600:]
    return ("error", "exited with %s without a clear refusal: %s" %
            (p.returncode, text))


def record_and_build(a, wd, writes, t0):
    """Records a run and builds its distinct crash states."""
    t0 = time.monotonic()
    W = Standalone if a.workload == "standalone" else Managed
    w = W(a, wd)
    acked, rc = w.record(writes)
    t_rec = time.monotonic() - t0
    t0 = time.monotonic()
    recs = csmodel.read_log(w.log)
    roots = w.roots
    durable = getattr(w, "durable", [])
    # The model starts from the directories as they were before the run.
    tr = csmodel.Trace(recs, roots, durable, w.init_snapshot)
    print("recorded %d operations (%s), %d acknowledged TPM commands, "
          "in %.1fs" % (len(tr.ops), ", ".join(
              "%s %d" % kv for kv in sorted(tr.counts.items())), acked,
              t_rec), flush=True)
    failed = []
    if tr.problems:
        failed.append("log not understood: %s" % "; ".join(tr.problems[:5]))
    diffs = csmodel.compare_final(tr, roots + durable)
    if diffs:
        failed.append("replaying the log does not give the final "
                      "directory: %s" % "; ".join(diffs[:10]))
    else:
        print("log complete: replaying all %d operations gives the final "
              "directories byte for byte" % len(tr.ops))
    if rc != 0 and not a.nosync:
        failed.append("the recorded run did not stop cleanly (rc %s)" % rc)

    # ---- crash states, deduplicated
    t1 = time.monotonic()
    allroots = roots + durable
    states = {}
    order = []
    points = 0
    raw = 0
    ex = Expect(tr.notes)
    lastk = None
    for k, st in tr.states(per_point_cap=a.cap, seed=a.seed):
        raw += 1
        h = st.digest(allroots)
        if k != lastk:
            e = ex.at(k)
            lastk = k
            points += 1
        if h not in states:
            files, dirs = st.files(allroots)
            states[h] = [files, dirs, []]
            order.append(h)
        lst = states[h][2]
        if not lst or lst[-1][1] is not e:
            lst.append((k, e))
    print("%d crash points, %d crash states built, %d distinct by content,"
          " in %.1fs" % (points, raw, len(states), time.monotonic() - t1),
          flush=True)
    return w, tr, failed, states, order, t_rec, t1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vtpm", required=True)
    ap.add_argument("--preload", required=True)
    ap.add_argument("--workload", choices=["standalone", "manager"],
                    required=True)
    ap.add_argument("--writes", type=int, default=100)
    ap.add_argument("--cap", type=int, default=200,
                    help="crash states per crash point, at most")
    ap.add_argument("--max-states", type=int, default=0,
                    help="check at most this many distinct states "
                    "(deterministic sample), 0: all")
    ap.add_argument("--min-states", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--nosync", default="",
                    help="planted bug: the interposer drops fsync and "
                    "fdatasync of these (data, dir, all)")
    ap.add_argument("--expect-violations", action="store_true")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    t0 = time.monotonic()
    writes = a.writes
    for attempt in range(3):
        wd = a.workdir or tempfile.mkdtemp(prefix="crashsim-%s-" %
                                           a.workload)
        if a.workdir and attempt:
            wd = os.path.join(a.workdir, "run%d" % attempt)
        os.makedirs(wd, exist_ok=True)
        w, tr, failed, states, order, t_rec, t1 = record_and_build(
            a, wd, writes, t0)
        # The number of distinct states per write depends on the write
        # pattern of the code under test: record a longer run when short.
        if len(order) >= a.min_states or a.expect_violations or failed:
            break
        writes = int(writes * a.min_states / max(1, len(order)) * 1.15) + 1
        print("%d distinct states, fewer than %d: recording again with %d "
              "writes" % (len(order), a.min_states, writes), flush=True)
        if not a.workdir:
            shutil.rmtree(wd, ignore_errors=True)
    todo = order
    if a.max_states and len(order) > a.max_states:
        import random
        rng = random.Random(a.seed)
        todo = sorted(rng.sample(order, a.max_states), key=order.index)
        print("checking a deterministic sample of %d" % len(todo))

    # ---- check with the real binaries, in parallel
    t2 = time.monotonic()
    verdicts = {"ok": 0, "refused": 0, "violation": 0}
    examples = {"refused": [], "violation": []}
    reasons = {"refused": {}, "violation": {}}
    lock = threading.Lock()
    local = threading.local()
    base = tempfile.mkdtemp(prefix="crashsim-chk-", dir="/dev/shm"
                            if os.path.isdir("/dev/shm") else None)
    os.chmod(base, 0o711)
    counter = [0]

    def one(h):
        if not hasattr(local, "ctx"):
            with lock:
                counter[0] += 1
                n = counter[0]
            local.ctx = w.check_setup(os.path.join(base, "w%d" % n))
        files, dirs, exps = states[h]
        outcome = w.check(local.ctx, files, dirs)
        v, k, detail = judge(outcome, exps)
        with lock:
            verdicts[v] += 1
            if v != "ok":
                r = reason(detail)
                reasons[v][r] = reasons[v].get(r, 0) + 1
            if v != "ok" and reasons[v][r] <= 2:
                examples[v].append("state %s, cut before op %d %s: %s" % (
                    h[:12], k, describe(tr, k), detail))
        return v

    with concurrent.futures.ThreadPoolExecutor(a.jobs) as ex:
        list(ex.map(one, todo))
    shutil.rmtree(base, ignore_errors=True)
    dt = time.monotonic() - t0
    print("distinct crash states checked: %d; violations: %d; refused "
          "with a clear error: %d; held every acknowledged write: %d" %
          (len(todo), verdicts["violation"], verdicts["refused"],
           verdicts["ok"]))
    for v in ("violation", "refused"):
        for r, n in sorted(reasons[v].items(), key=lambda x: -x[1]):
            print("  %s x%d: %s" % (v, n, r))
        for x in examples[v]:
            print("  %s, e.g.: %s" % (v, x))
    print("time: %.1fs (record %.1fs, build %.1fs, check %.1fs, %d jobs)" %
          (dt, t_rec, t2 - t1, time.monotonic() - t2, a.jobs))
    if a.expect_violations:
        if tr.nosyncs == 0:
            failed.append("the planted bug removed no flush")
        if verdicts["violation"] == 0:
            failed.append("a flush was removed on purpose and the "
                          "simulator found no violation")
        else:
            print("self-test: %d flushes removed on purpose, %d violations"
                  " found" % (tr.nosyncs, verdicts["violation"]))
    else:
        if verdicts["violation"]:
            failed.append("%d violations" % verdicts["violation"])
        if len(todo) < a.min_states:
            failed.append("only %d distinct states, want %d" %
                          (len(todo), a.min_states))
    for f in failed:
        print("FAIL " + f)
    if failed:
        print("the recorded run and its log are kept in %s" % wd)
    if not a.workdir and not failed:
        shutil.rmtree(wd, ignore_errors=True)
    sys.exit(1 if failed else 0)


def reason(detail):
    """A verdict's detail without its paths, UUIDs and numbers."""
    import re
    d = detail.splitlines()[-1] if detail else ""
    d = re.sub(r"<\d>vtpm-service\[[^]]*\]: ", "", d)
    d = re.sub(r"/\S+", "<path>", d)
    d = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<uuid>", d)
    d = re.sub(r"\b[0-9a-f]{16}\b", "<value>", d)
    d = re.sub(r"\d+", "N", d)
    return d[:300]


def describe(tr, k):
    """The op a cut lands before, and the one before it, for reports."""
    def d(op):
        x = list(op)
        if x[0] == "write":
            x[3] = "%d bytes" % len(x[3])
        return " ".join(str(y) for y in x)
    prev = d(tr.ops[k - 1]) if k > 0 else "start"
    nxt = d(tr.ops[k]) if k < len(tr.ops) else "end"
    return "[after: %s; before: %s]" % (prev, nxt)


if __name__ == "__main__":
    main()
