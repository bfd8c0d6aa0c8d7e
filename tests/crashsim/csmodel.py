# SPDX-License-Identifier: BSD-3-Clause
"""The power-cut model of the crash simulator: reads the interposer's log
(tests/crashsim/interpose.c), turns it into file-system operations on
inodes and names, decides when each one became durable, and builds the
disk states a power cut at any point could leave.

The model (after ALICE's abstract persistence model; no code copied):
- a write, truncate or fallocate of a file is durable once an fsync or
  fdatasync of that file follows it; until then it may be lost, kept, or
  torn: any subset of its 512-byte sectors (aligned in the file) reached
  the disk, the others keep what the disk held before (zeros past the old
  end of the file);
- a create, mkdir, rename, unlink or rmdir is durable once an fsync of
  the directory that holds the name follows it (both directories for a
  rename); until then it may be undone, independently of the others;
- what is not durable at the cut is chosen per operation, and the chosen
  ones are replayed in their original order on top of the durable past.
Nothing outside the watched directories is modelled: the physical TPM
(swtpm) is a separate watched directory whose operations are taken as
durable when they return (a TPM's NV write is).
"""

import hashlib
import os
import random
import struct

R_OPEN, R_WRITE, R_FSYNC, R_FDATASYNC, R_RENAME, R_UNLINK, R_RMDIR, \
    R_TRUNC, R_FALLOC, R_MKDIR, R_CLOSE, R_NOSYNC, R_NOTE = range(1, 14)
HDR = struct.Struct("<IIIiiIqqQIII")
MAGIC = 0x31525343
SECTOR = 512
O_ACCMODE, O_CREAT, O_TRUNC = 3, 0o100, 0o1000


def read_log(path):
    recs = []
    with open(path, "rb") as f:
        data = f.read()
    o = 0
    while o < len(data):
        (magic, total, typ, pid, fd, flags, off, arg, ino, plen, p2len,
         dlen) = HDR.unpack_from(data, o)
        if magic != MAGIC or total < HDR.size:
            raise ValueError("log corrupt at offset %d" % o)
        b = o + HDR.size
        p = data[b:b + plen].decode()
        p2 = data[b + plen:b + plen + p2len].decode()
        d = data[b + plen + p2len:o + total]
        recs.append((typ, pid, fd, flags, off, arg, ino, p, p2, d))
        o += total
    return recs


def note(logpath, text):
    """A client's record (SEND, ACK ...) in the same global order."""
    d = text.encode()
    rec = HDR.pack(MAGIC, HDR.size + len(d), R_NOTE, os.getpid(), -1, 0, 0,
                   0, 0, 0, 0, len(d)) + d
    fd = os.open(logpath, os.O_WRONLY | os.O_APPEND)
    try:
        if os.write(fd, rec) != len(rec):
            raise OSError("short log write")
    finally:
        os.close(fd)


def parent(p):
    return p.rsplit("/", 1)[0] or "/"


class State:
    """Names (path -> ('f', ino) or ('d', None)) and inode contents."""

    def __init__(self, ns=None, data=None):
        self.ns = ns if ns is not None else {}
        self.data = data if data is not None else {}

    def copy(self):
        return State(dict(self.ns), {k: bytearray(v) for k, v in
                                     self.data.items()})

    def files(self, roots):
        """path -> bytes and the set of directories, under roots."""
        out, dirs = {}, set()
        for p, (kind, ino) in self.ns.items():
            if not any(p == r or p.startswith(r + "/") for r in roots):
                continue
            # Reachable only if every ancestor up to its root exists.
            q = p
            ok = True
            while not any(q == r for r in roots):
                q = parent(q)
                if q not in self.ns:
                    ok = False
                    break
            if not ok:
                continue
            if kind == "f":
                out[p] = bytes(self.data.get(ino, b""))
            else:
                dirs.add(p)
        return out, dirs

    def digest(self, roots):
        files, dirs = self.files(roots)
        h = hashlib.sha256()
        for p in sorted(dirs):
            h.update(b"D" + p.encode() + b"\0")
        for p in sorted(files):
            h.update(b"F" + p.encode() + b"\0" +
                     hashlib.sha256(files[p]).digest())
        return h.hexdigest()


def snapshot(roots):
    """The model state of what is on disk now under roots."""
    st = State()
    n = 0
    for r in roots:
        if not os.path.isdir(r):
            continue
        for dp, dns, fns in os.walk(r):
            st.ns[dp] = ("d", None)
            for fn in fns:
                p = os.path.join(dp, fn)
                if not os.path.isfile(p) or os.path.islink(p):
                    continue  # sockets: not state
                n += 1
                ino = ("init", n)
                with open(p, "rb") as f:
                    st.data[ino] = bytearray(f.read())
                st.ns[p] = ("f", ino)
    return st


# ---- operations ----
# ("create", path, ino) ("mkdir", path) ("rename", src, dst, entry)
# ("unlink", path) ("rmdir", path) ("write", ino, off, data)
# ("trunc", ino, len) ("falloc", ino, off, len) ("syncfile", ino)
# ("syncdir", path) ("barrier",) ("nosync", what)

def chunks(off, n):
    """[(start, end)] of a write split at sector boundaries."""
    out = []
    s = off
    while s < off + n:
        e = min(off + n, (s // SECTOR + 1) * SECTOR)
        out.append((s, e))
        s = e
    return out


def apply(st, op, mask=None):
    k = op[0]
    if k == "create":
        _, p, ino = op
        if parent(p) in st.ns:
            st.ns[p] = ("f", ino)
        st.data.setdefault(ino, bytearray())
    elif k == "mkdir":
        if parent(op[1]) in st.ns:
            st.ns[op[1]] = ("d", None)
    elif k == "rename":
        _, src, dst, entry = op
        if parent(dst) not in st.ns:
            return
        if entry[0] == "d":
            moved = {q: v for q, v in st.ns.items()
                     if q == src or q.startswith(src + "/")}
            for q in moved:
                del st.ns[q]
            for q, v in moved.items():
                st.ns[dst + q[len(src):]] = v
            st.ns[dst] = ("d", None)
        else:
            if st.ns.get(src) == entry:
                del st.ns[src]
            st.ns[dst] = entry
            if entry[0] == "f":
                st.data.setdefault(entry[1], bytearray())
    elif k == "unlink":
        if op[1] in st.ns and st.ns[op[1]][0] == "f":
            del st.ns[op[1]]
    elif k == "rmdir":
        p = op[1]
        for q in [q for q in st.ns if q == p or q.startswith(p + "/")]:
            del st.ns[q]
    elif k == "write":
        _, ino, off, d = op
        buf = st.data.setdefault(ino, bytearray())
        parts = chunks(off, len(d))
        if mask is not None:
            keep = [c for i, c in enumerate(parts) if mask >> i & 1]
        else:
            keep = parts
        if not keep:
            return
        end = max(e for _, e in keep)
        if len(buf) < end:
            buf.extend(b"\0" * (end - len(buf)))
        for s, e in keep:
            buf[s:e] = d[s - off:e - off]
    elif k == "trunc":
        _, ino, n = op
        buf = st.data.setdefault(ino, bytearray())
        if n < len(buf):
            del buf[n:]
        else:
            buf.extend(b"\0" * (n - len(buf)))
    elif k == "falloc":
        _, ino, off, n, keep_size = op
        buf = st.data.setdefault(ino, bytearray())
        if not keep_size and off + n > len(buf):
            buf.extend(b"\0" * (off + n - len(buf)))


class Trace:
    """The operations of one recorded run, their durability, and the
    client's notes in the same order."""

    def __init__(self, recs, roots, durable_roots=(), init=None):
        self.roots = list(roots)
        self.durable_roots = list(durable_roots)
        self.init = init if init is not None else \
            snapshot(self.roots + self.durable_roots)
        self.ops = []        # model operations
        self.notes = []      # (number of ops before it, text)
        self.problems = []   # what the log could not explain
        self.nosyncs = 0
        self.counts = {}
        cur = self.init.copy()
        fds = {}
        nino = 0

        def under(p, rs):
            return any(p == r or p.startswith(r + "/") for r in rs)

        def add(op):
            self.ops.append(op)
            apply(cur, op)

        for (typ, pid, fd, flags, off, arg, ino, p, p2, d) in recs:
            name = {R_OPEN: "open", R_WRITE: "write", R_FSYNC: "fsync",
                    R_FDATASYNC: "fdatasync", R_RENAME: "rename",
                    R_UNLINK: "unlink", R_RMDIR: "rmdir", R_TRUNC:
                    "ftruncate", R_FALLOC: "fallocate", R_MKDIR: "mkdir",
                    R_CLOSE: "close", R_NOSYNC: "nosync",
                    R_NOTE: "note"}.get(typ, "?")
            self.counts[name] = self.counts.get(name, 0) + 1
            if typ == R_NOTE:
                self.notes.append((len(self.ops), d.decode()))
            elif typ == R_OPEN:
                e = cur.ns.get(p)
                if e and e[0] == "d":
                    fds[pid, fd] = ("d", p)
                elif e:
                    fds[pid, fd] = e
                    if (flags != 0xffffffff and flags & O_TRUNC and
                            flags & O_ACCMODE):
                        add(("trunc", e[1], 0))
                elif flags != 0xffffffff and flags & O_CREAT:
                    nino += 1
                    e = ("f", ("new", nino))
                    add(("create", p, e[1]))
                    fds[pid, fd] = e
                else:
                    self.problems.append("open of %s, unknown to the "
                                         "model" % p)
            elif typ == R_CLOSE:
                fds.pop((pid, fd), None)
            elif typ in (R_WRITE, R_TRUNC, R_FALLOC, R_FSYNC, R_FDATASYNC,
                         R_NOSYNC):
                if typ == R_FSYNC and fd == -1:
                    add(("barrier",))
                    continue
                e = fds.get((pid, fd))
                if e is None:
                    self.problems.append("op %s on fd %d of pid %d, not "
                                         "opened in the log" % (name, fd,
                                                                pid))
                    continue
                if typ == R_WRITE:
                    add(("write", e[1], off, bytes(d)))
                elif typ == R_TRUNC:
                    add(("trunc", e[1], arg))
                elif typ == R_FALLOC:
                    mode = (arg >> 56) & 0xff
                    add(("falloc", e[1], off, arg & ((1 << 56) - 1),
                         bool(mode & 1)))
                elif typ == R_NOSYNC:
                    self.nosyncs += 1
                    self.ops.append(("nosync", e))
                elif e[0] == "d":
                    add(("syncdir", e[1]))
                else:
                    add(("syncfile", e[1]))
            elif typ == R_RENAME:
                e = cur.ns.get(p)
                if e is None:
                    self.problems.append("rename of %s, unknown" % p)
                    continue
                add(("rename", p, p2, e))
            elif typ == R_UNLINK:
                add(("unlink", p))
            elif typ == R_RMDIR:
                add(("rmdir", p))
            elif typ == R_MKDIR:
                add(("mkdir", p))
        self.final = cur
        self._durability()

    def _durability(self):
        """dur[j]: index of the op that makes op j durable (or None)."""
        n = len(self.ops)
        self.dur = [None] * n
        droots = self.durable_roots

        def in_durable(p):
            return any(p == r or p.startswith(r + "/") for r in droots)

        durable_inos = set()
        for j, op in enumerate(self.ops):
            k = op[0]
            if k == "create" and in_durable(op[1]):
                durable_inos.add(op[2])
        # A forward scan with pending sets keyed by what syncs them.
        pend_file, pend_dir, pend_all = {}, {}, []
        for j, op in enumerate(self.ops):
            k = op[0]
            if k in ("write", "trunc", "falloc"):
                if op[1] in durable_inos or (
                        isinstance(op[1], tuple) and op[1][0] == "init" and
                        self._init_durable(op[1])):
                    self.dur[j] = j
                else:
                    pend_file.setdefault(op[1], []).append(j)
                    pend_all.append(j)
            elif k in ("create", "mkdir", "unlink", "rmdir", "rename"):
                paths = [op[1]] + ([op[2]] if k == "rename" else [])
                if all(in_durable(p) for p in paths):
                    self.dur[j] = j
                    continue
                dirs = {parent(p) for p in paths}
                self._need = getattr(self, "_need", {})
                self._need[j] = set(dirs)
                for dd in dirs:
                    pend_dir.setdefault(dd, []).append(j)
                pend_all.append(j)
            elif k == "syncfile":
                self.dur[j] = j
                for i in pend_file.pop(op[1], []):
                    self.dur[i] = j
            elif k == "syncdir":
                self.dur[j] = j
                for i in pend_dir.pop(op[1], []):
                    need = self._need[i]
                    need.discard(op[1])
                    if not need and self.dur[i] is None:
                        self.dur[i] = j
            elif k == "barrier":
                self.dur[j] = j
                for i in pend_all:
                    if self.dur[i] is None:
                        self.dur[i] = j
                pend_file, pend_dir, pend_all = {}, {}, []
            else:
                self.dur[j] = j  # syncs, nosync: no effect on content

    def _init_durable(self, ino):
        for p, e in self.init.ns.items():
            if e == ("f", ino):
                return any(p == r or p.startswith(r + "/")
                           for r in self.durable_roots)
        return False

    def roots_all(self):
        return self.roots + self.durable_roots

    def states(self, per_point_cap=200, seed=1, points=None):
        """Yield (crash point, State) for every crash point: after
        ops[0..k-1], before ops[k].  Deterministic."""
        n = len(self.ops)
        base = self.init.copy()
        bpos = 0
        ks = range(n + 1) if points is None else points
        for k in ks:
            pending = [j for j in range(bpos, k)
                       if self.dur[j] is None or self.dur[j] >= k]
            f = pending[0] if pending else k
            while bpos < f:
                apply(base, self.ops[bpos])
                bpos += 1
            pending = [j for j in range(f, k)
                       if self.dur[j] is None or self.dur[j] >= k]
            for choice in self._choices(k, pending, per_point_cap, seed):
                st = base.copy()
                for j in range(f, k):
                    if j in choice:
                        m = choice[j]
                        if m is False:
                            continue
                        apply(st, self.ops[j], None if m is True else m)
                    else:
                        apply(st, self.ops[j])
                yield k, st

    def _choices(self, k, pending, cap, seed):
        """Dicts j -> True (applied) / False (lost) / int (sector mask of
        a torn write), over the pending ops."""
        rng = random.Random(seed * 1000003 + k)
        p = len(pending)
        seen = set()
        out = []

        def emit(c):
            key = tuple(sorted((j, type(v).__name__, v)
                               for j, v in c.items()))
            if key not in seen and len(out) < cap:
                seen.add(key)
                out.append(c)

        allin = {j: True for j in pending}
        emit(dict(allin))
        emit({j: False for j in pending})
        for i in range(1, p):         # in-order persistence: a prefix
            emit({j: idx < i for idx, j in enumerate(pending)})
        for j in pending:              # one lost, the rest kept
            c = dict(allin)
            c[j] = False
            emit(c)
        if p <= 6:                     # every subset
            for bits in range(1 << p):
                emit({j: bool(bits >> i & 1) for i, j in
                      enumerate(pending)})
        # Torn writes: sectors of one pending write, with the others all
        # kept, or only those before it kept.
        for idx, j in enumerate(pending):
            op = self.ops[j]
            if op[0] != "write":
                continue
            ns = len(chunks(op[2], len(op[3])))
            if ns <= 1:
                continue
            full = (1 << ns) - 1
            if ns <= 5:
                masks = list(range(1, full))
            else:
                masks = set()
                for i in range(1, ns):
                    masks.add((1 << i) - 1)           # prefix
                    masks.add(full ^ ((1 << i) - 1))  # suffix
                for i in range(ns):
                    masks.add(1 << i)
                    masks.add(full ^ (1 << i))
                for _ in range(8):
                    masks.add(rng.randrange(1, full))
                masks = sorted(masks)
            for m in masks:
                c = dict(allin)
                c[j] = m
                emit(c)
                c = {jj: (ii < idx) for ii, jj in enumerate(pending)}
                c[j] = m
                emit(c)
        # Random subsets (with random tears) up to the cap.
        tries = 0
        while len(out) < cap and p > 6 and tries < cap * 4:
            tries += 1
            c = {}
            for j in pending:
                r = rng.random()
                op = self.ops[j]
                if op[0] == "write" and r < 0.2:
                    nsec = len(chunks(op[2], len(op[3])))
                    c[j] = rng.randrange(0, 1 << nsec) if nsec > 1 else \
                        bool(rng.getrandbits(1))
                else:
                    c[j] = r < 0.6
            emit(c)
        return out


def materialize(files, dirs, src_roots, dst_roots):
    """Writes a state's files, mapping each source root to its copy."""
    def mapp(p):
        for s, d in zip(src_roots, dst_roots):
            if p == s or p.startswith(s + "/"):
                return d + p[len(s):]
        raise ValueError(p)
    for d in sorted(dirs, key=len):
        os.makedirs(mapp(d), exist_ok=True)
    for p, data in files.items():
        q = mapp(p)
        with open(q, "wb") as f:
            f.write(data)


def compare_final(trace, roots):
    """Differences between the model's final state and the disk."""
    want, wdirs = trace.final.files(roots)
    have = snapshot(roots)
    hfiles, hdirs = have.files(roots)
    diffs = []
    for p in sorted(set(want) | set(hfiles)):
        if want.get(p) != hfiles.get(p):
            diffs.append("%s: model %s, disk %s" % (
                p, None if p not in want else len(want[p]),
                None if p not in hfiles else len(hfiles[p])))
    for p in sorted(wdirs ^ hdirs):
        diffs.append("dir %s: model %s, disk %s" % (p, p in wdirs,
                                                     p in hdirs))
    return diffs
