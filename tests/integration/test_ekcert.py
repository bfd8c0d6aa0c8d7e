#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""vTPMs manufactured with EK certificates (issue 14): a real manager
whose physical TPM is swtpm creates vTPMs; their EK certificates (RSA,
ECC) and platform certificate are read from NV with tpm2_nvread over the
vTPM's socket and verified against `vtpmctl ca-cert` with openssl; the
certified keys are the ones tpm2_createek makes; the Keylime enrolment
(tpm2_makecredential offline with the EK from the certificate,
tpm2_activatecredential inside the vTPM) works; the guest can neither
delete nor overwrite the certificate indices.  Then the manufacturing time
per vTPM over N creates, beside swtpm_setup's for the same on this
machine."""

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from vtpmtest import *

RSA_IDX, ECC_IDX, PLAT_IDX = 0x01C00002, 0x01C0000A, 0x01C08000
N_TIMED = int(os.environ.get("EKCERT_TIMED_CREATES", "10"))

a = args()
wd = workdir(a, "ekcert")
os.chmod(wd, 0o711)
hw = HardwareTPM(wd).start()
m = Manager(a.vtpm, wd, hw).start()


def run(*cmd, env=None, inp=None):
    return subprocess.run(list(cmd), capture_output=True, timeout=120,
                          env=env, input=inp)


def openssl(*args):
    return run("openssl", *args)


def guest(uuid, *cmd):
    """A tpm2-tools command in the guest: over the vTPM's socket."""
    env = dict(os.environ, TPM2TOOLS_TCTI="swtpm:path=" + m.vtpm_sock(uuid))
    return run(*cmd, env=env)


def out_of(r):
    return (r.stdout + r.stderr).decode(errors="replace")


# ---- the CA ----
ca = os.path.join(wd, "ca.pem")
r = m.ctl("ca-cert", "--out", ca)
r2 = m.ctl("ca-cert")
with open(ca) as f:
    ca_pem = f.read()
check(ca_pem.startswith("-----BEGIN CERTIFICATE-----") and
      r2.stdout.decode() == ca_pem,
      "vtpmctl ca-cert prints the CA certificate as PEM, --out writes it")
t = openssl("x509", "-in", ca, "-noout", "-text")
txt = out_of(t)
check(t.returncode == 0 and "CA:TRUE" in txt and "Certificate Sign" in txt
      and "ecdsa-with-SHA256" in txt,
      "the CA certificate: a P-256 CA, self-signed with ECDSA-SHA256", txt)
check(openssl("verify", "-CAfile", ca, ca).returncode == 0,
      "the CA certificate verifies against itself (signed by TPM2_Sign)")
with open(os.path.join(m.state_dir, "ekca.key"), "rb") as f:
    blob = f.read()
check(blob.startswith(b"VTPMSKEY") and b"PRIVATE KEY" not in blob,
      "the CA key is only a TPM-wrapped blob in the manager's state")

# ---- two vTPMs ----
uuids = []
for d in (11, 12):
    t0 = time.monotonic()
    r = m.ctl("create", "--domid", str(d))
    uuid = r.stdout.decode().strip()
    check(len(uuid) == 36 and "manufactured with EK certificates" in
          r.stderr.decode(),
          "vtpmctl create manufactures vTPM %d and says how long it took"
          % d, out_of(r))
    uuids.append(uuid)
    m.ctl("start", uuid)
    check(m.wait_vtpm(uuid), "vTPM %d serves" % d)

cert_pubs = {}
for n, uuid in enumerate(uuids):
    tag = "vTPM %d" % (n + 1)
    d = tempfile.mkdtemp(dir=wd)
    for name, idx in (("rsa", RSA_IDX), ("ecc", ECC_IDX),
                      ("platform", PLAT_IDX)):
        der = os.path.join(d, name + ".der")
        pem = os.path.join(d, name + ".pem")
        r = guest(uuid, "tpm2_nvread", "0x%08x" % idx, "-o", der)
        check(r.returncode == 0 and os.path.getsize(der) > 300,
              "%s: tpm2_nvread of the %s certificate at 0x%08x" %
              (tag, name, idx), out_of(r))
        openssl("x509", "-inform", "der", "-in", der, "-out", pem)
        v = openssl("verify", "-CAfile", ca, pem)
        check(v.returncode == 0,
              "%s: openssl verify -CAfile <(vtpmctl ca-cert) %s certificate"
              % (tag, name), out_of(v))
        txt = out_of(openssl("x509", "-in", pem, "-noout", "-text"))
        if name == "platform":
            want = ["2.23.133.5.1.1=vtpm-service", "2.23.133.8.2",
                    "Key Encipherment", "CA:FALSE"]
        else:
            want = ["2.23.133.2.1=id:", "2.23.133.2.2=", "2.23.133.2.3=id:",
                    "2.23.133.8.1", "CA:FALSE", "Authority Key Identifier",
                    "Key Encipherment" if name == "rsa" else "Key Agreement"]
        check(all(w in txt for w in want) and
              "Subject Alternative Name: critical" in txt,
              "%s: the %s certificate carries the TCG fields" % (tag, name),
              txt)
        pub = openssl("x509", "-in", pem, "-pubkey", "-noout").stdout
        cert_pubs[(uuid, name)] = pub
        with open(os.path.join(d, name + ".pub.pem"), "wb") as f:
            f.write(pub)
        r = guest(uuid, "tpm2_nvreadpublic", "0x%08x" % idx)
        txt = out_of(r)
        check(r.returncode == 0 and "platformcreate" in txt and
              "writelocked" in txt and "ppwrite" in txt and
              "ownerwrite" not in txt and "authwrite" not in txt,
              "%s: 0x%08x is platform-created, PP-written and write-locked"
              % (tag, idx), txt)

    # What a verifier's X.509 library (Keylime's: python cryptography)
    # makes of them.
    try:
        from cryptography import x509 as cx509
        from cryptography.hazmat.primitives.asymmetric import ec as cec
        have_crypto = True
    except ImportError:
        have_crypto = False
        print("SKIPPED: python cryptography is not installed")
    if have_crypto:
        cac = cx509.load_pem_x509_certificate(ca_pem.encode())
        seen = []
        for name in ("rsa", "ecc", "platform"):
            c = cx509.load_der_x509_certificate(
                open(os.path.join(d, name + ".der"), "rb").read())
            cac.public_key().verify(c.signature, c.tbs_certificate_bytes,
                                    cec.ECDSA(c.signature_hash_algorithm))
            san = c.extensions.get_extension_for_class(
                cx509.SubjectAlternativeName)
            dn = san.value.get_values_for_type(cx509.DirectoryName)[0]
            seen.append((san.critical, len(c.subject),
                         sorted(a.oid.dotted_string for a in dn)))
        check(seen[0] == (True, 0, ["2.23.133.2.1", "2.23.133.2.2",
                                    "2.23.133.2.3"]) and
              seen[2][2] == ["2.23.133.5.1.1", "2.23.133.5.1.4",
                             "2.23.133.5.1.5"],
              "%s: python cryptography verifies all three certificates "
              "and reads the TPM's names" % tag, seen)

    # What Keylime's agent runs to fetch them.
    ga, gb = os.path.join(d, "get-rsa.der"), os.path.join(d, "get-ecc.der")
    r = guest(uuid, "tpm2_getekcertificate", "-o", ga, "-o", gb)
    check(r.returncode == 0 and os.path.exists(gb) and
          open(ga, "rb").read() == open(os.path.join(d, "rsa.der"),
                                        "rb").read() and
          open(gb, "rb").read() == open(os.path.join(d, "ecc.der"),
                                        "rb").read(),
          "%s: tpm2_getekcertificate returns both EK certificates" % tag,
          out_of(r))

    # The certified EKs are tpm2_createek's.
    for alg in ("rsa", "ecc"):
        ctx = os.path.join(d, "ek-%s.ctx" % alg)
        pub = os.path.join(d, "ek-%s.pem" % alg)
        r = guest(uuid, "tpm2_createek", "-G", alg, "-c", ctx, "-u", pub,
                  "-f", "pem")
        got = open(pub, "rb").read() if os.path.exists(pub) else b""
        check(r.returncode == 0 and got == cert_pubs[(uuid, alg)],
              "%s: tpm2_createek -G %s returns the key its certificate "
              "holds" % (tag, alg), out_of(r))
        guest(uuid, "tpm2_flushcontext", "-t")

    # Keylime's enrolment: the registrar encrypts a secret to the EK of
    # the certificate, offline; only this vTPM can activate it.
    ekctx = os.path.join(d, "ek.ctx")
    r = guest(uuid, "tpm2_createek", "-G", "rsa", "-c", ekctx)
    akctx, akname = os.path.join(d, "ak.ctx"), os.path.join(d, "ak.name")
    r2 = guest(uuid, "tpm2_createak", "-C", ekctx, "-c", akctx, "-G", "rsa",
               "-g", "sha256", "-s", "rsassa", "-n", akname)
    guest(uuid, "tpm2_flushcontext", "-t")
    secret = os.urandom(32)
    sf, blobf = os.path.join(d, "secret"), os.path.join(d, "cred.blob")
    with open(sf, "wb") as f:
        f.write(secret)
    name_hex = open(akname, "rb").read().hex() if os.path.exists(akname) \
        else ""
    r3 = run("tpm2_makecredential", "-T", "none", "-u",
             os.path.join(d, "rsa.pub.pem"), "-G", "rsa", "-s", sf,
             "-n", name_hex, "-o", blobf)
    sess = os.path.join(d, "session.ctx")
    outf = os.path.join(d, "secret.out")
    r4 = guest(uuid, "tpm2_startauthsession", "--policy-session", "-S", sess)
    r5 = guest(uuid, "tpm2_policysecret", "-S", sess, "-c", "e")
    r6 = guest(uuid, "tpm2_activatecredential", "-c", akctx, "-C", ekctx,
               "-i", blobf, "-o", outf, "-P", "session:" + sess)
    guest(uuid, "tpm2_flushcontext", sess)
    guest(uuid, "tpm2_flushcontext", "-t")
    got = open(outf, "rb").read() if os.path.exists(outf) else b""
    check(all(x.returncode == 0 for x in (r, r2, r3, r4, r5, r6)) and
          got == secret,
          "%s: tpm2_makecredential -T none with the certificate's EK, "
          "tpm2_activatecredential in the vTPM returns the secret" % tag,
          "".join(out_of(x) for x in (r, r2, r3, r4, r5, r6)))

    # The guest cannot delete or overwrite the certificates.
    junk = os.path.join(d, "junk")
    with open(junk, "wb") as f:
        f.write(b"x" * 16)
    txt = out_of(guest(uuid, "tpm2_getcap", "properties-variable"))
    check("phEnable:                   0" in txt or
          "phEnable: 0" in " ".join(txt.split()),
          "%s: the guest sees the platform hierarchy disabled" % tag, txt)
    # Each attempt fails for its own reason: the platform hierarchy is
    # disabled (0x185), the owner may not undefine a platform index
    # (0x149), writes are locked (0x148), the index has no auth write
    # (0x12f).
    for idx in (RSA_IDX, ECC_IDX, PLAT_IDX):
        attempts = [
            (("tpm2_nvundefine", "0x%08x" % idx, "-C", "p"), "0x185"),
            (("tpm2_nvundefine", "0x%08x" % idx, "-C", "o"), "0x149"),
            (("tpm2_nvwrite", "0x%08x" % idx, "-C", "p", "-i", junk),
             "0x185"),
            (("tpm2_nvwrite", "0x%08x" % idx, "-C", "o", "-i", junk),
             "0x148"),
            (("tpm2_nvwrite", "0x%08x" % idx, "-i", junk), "0x12f"),
        ]
        res = [(guest(uuid, *cmd), code) for cmd, code in attempts]
        check(all(x.returncode != 0 and code in out_of(x).lower()
                  for x, code in res),
              "%s: tpm2_nvundefine/tpm2_nvwrite of 0x%08x (platform, "
              "owner, index auth) all fail, each with its TPM error" %
              (tag, idx),
              " | ".join(out_of(x).strip()[-160:] for x, _ in res))
    # The same tools on an index of the guest's own work (the attempts
    # above fail for what they met, not for how they were called).
    uidx = "0x01500020"
    ok = [guest(uuid, "tpm2_nvdefine", uidx, "-C", "o", "-s", "16", "-a",
                "ownerread|ownerwrite|authread|authwrite"),
          guest(uuid, "tpm2_nvwrite", uidx, "-C", "o", "-i", junk),
          guest(uuid, "tpm2_nvwrite", uidx, "-i", junk),
          guest(uuid, "tpm2_nvundefine", uidx, "-C", "o")]
    check(all(x.returncode == 0 for x in ok),
          "%s: the same tpm2_nvwrite/tpm2_nvundefine work on the guest's "
          "own index" % tag, " | ".join(out_of(x)[-160:] for x in ok))
    after = os.path.join(d, "rsa.after.der")
    guest(uuid, "tpm2_nvread", "0x%08x" % RSA_IDX, "-o", after)
    check(open(after, "rb").read() == open(os.path.join(d, "rsa.der"),
                                           "rb").read(),
          "%s: the RSA certificate reads back unchanged" % tag)

# Across a restart of its instance (a new Startup), still closed.
m.ctl("stop", uuids[0])
m.ctl("start", uuids[0])
check(m.wait_vtpm(uuids[0]), "vTPM 1 serves again after a restart")
r = guest(uuids[0], "tpm2_nvundefine", "0x%08x" % RSA_IDX, "-C", "p")
r2 = guest(uuids[0], "tpm2_nvreadpublic", "0x%08x" % RSA_IDX)
check(r.returncode != 0 and r2.returncode == 0,
      "after a restart the platform hierarchy is closed again and the "
      "certificate is there", out_of(r) + out_of(r2))
check(cert_pubs[(uuids[0], "rsa")] != cert_pubs[(uuids[1], "rsa")],
      "the two vTPMs have different EKs")

# --no-ek-cert: no certificates, no manufacture.
r = m.ctl("create", "--domid", "13", "--no-ek-cert")
u3 = r.stdout.decode().strip()
m.ctl("start", u3)
m.wait_vtpm(u3)
r = guest(u3, "tpm2_nvreadpublic")
check("0x1c00002" not in out_of(r) and "manufactured" not in
      r.stderr.decode(),
      "create --no-ek-cert: no certificate indices", out_of(r))
m.ctl("stop", u3)

# ---- the time it takes, beside swtpm_setup (interleaved, one run) ----
sd = os.path.join(wd, "swtpm_setup")
have_setup = shutil.which("swtpm_setup") and shutil.which("swtpm_localca")
if have_setup:
    os.makedirs(os.path.join(sd, "ca"), exist_ok=True)
    with open(os.path.join(sd, "localca.conf"), "w") as f:
        f.write("statedir = %s/ca\nsigningkey = %s/ca/signkey.pem\n"
                "issuercert = %s/ca/issuercert.pem\n"
                "certserial = %s/ca/certserial\n" % (sd, sd, sd, sd))
    with open(os.path.join(sd, "localca.options"), "w") as f:
        f.write("--platform-manufacturer vtpm-service\n"
                "--platform-version 1.0\n--platform-model vTPM\n")
    with open(os.path.join(sd, "setup.conf"), "w") as f:
        f.write("create_certs_tool = %s\ncreate_certs_tool_config = "
                "%s/localca.conf\ncreate_certs_tool_options = "
                "%s/localca.options\n" % (shutil.which("swtpm_localca"),
                                           sd, sd))


def swtpm_setup(i):
    st = os.path.join(sd, "st%d" % i)
    os.makedirs(st, exist_ok=True)
    t0 = time.monotonic()
    r = run("swtpm_setup", "--tpm2", "--tpmstate", st, "--create-ek-cert",
            "--create-platform-cert", "--lock-nvram", "--config",
            os.path.join(sd, "setup.conf"), "--overwrite")
    return r, (time.monotonic() - t0) * 1000


if have_setup:
    swtpm_setup(0)  # makes swtpm_localca's own CA: not timed
ours, ours_total, theirs = [], [], []
for i in range(N_TIMED):
    j = m.ctl_json("create", "--domid", str(100 + i))
    ours.append(j["manufacture_ms"])
    ours_total.append(j["manufacture_total_ms"])
    if have_setup:
        r, ms = swtpm_setup(i + 1)
        if r.returncode != 0:
            check(False, "swtpm_setup runs", out_of(r))
            have_setup = False
        else:
            theirs.append(ms)
print("manufacture per vTPM (RSA-2048 + ECC P-256 EKs, 3 certificates "
      "signed by the TPM-held CA, NV writes, durable): median %.0f ms, "
      "min %.0f, max %.0f over %d creates; with the instance's start: "
      "median %.0f ms, min %.0f, max %.0f" %
      (statistics.median(ours), min(ours), max(ours), N_TIMED,
       statistics.median(ours_total), min(ours_total), max(ours_total)),
      flush=True)
check(len(ours) == N_TIMED and all(x > 0 for x in ours),
      "%d creates timed" % N_TIMED)
if theirs:
    print("swtpm_setup --tpm2 --create-ek-cert --create-platform-cert "
          "--lock-nvram (swtpm_localca; its ECC EK is P-384), interleaved: "
          "median %.0f ms, min %.0f, max %.0f over %d runs; %.1fx ours "
          "with the instance's start" %
          (statistics.median(theirs), min(theirs), max(theirs), len(theirs),
           statistics.median(theirs) / statistics.median(ours_total)),
          flush=True)
elif not shutil.which("swtpm_setup"):
    print("SKIPPED: swtpm_setup comparison: swtpm-tools not installed")

m.stop()

# ---- what a process holding a vTPM's link can get certified ----
fake = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                    "fake_ekinstance.py")
fwd = os.path.join(wd, "fake")
os.makedirs(fwd, exist_ok=True)
os.chmod(fwd, 0o777)
os.environ["FAKE_OUT"] = fwd
mf = Manager(a.vtpm, wd, hw, extra=["--instance-exe", fake]).start()
j = mf.ctl_json("create", "--domid", "20")
u_made = j["uuid"]
u_plain = mf.ctl("create", "--domid", "21",
                 "--no-ek-cert").stdout.decode().strip()
mf.ctl("start", u_plain)
res = {}
for _ in range(100):
    if os.path.exists(os.path.join(fwd, "fake-%s.json" % u_plain)):
        break
    time.sleep(0.05)
mf.ctl("stop", u_plain)
for u in (u_made, u_plain):
    try:
        with open(os.path.join(fwd, "fake-%s.json" % u)) as f:
            res[u] = json.load(f)
    except OSError:
        res[u] = {}
r = res[u_made]
check(j["ok"] and j["manufacture_ms"] == 7 and r.get("flags") == 7,
      "a new vTPM's link: LOADHASHKEY says NOSTATE|MANUFACTURE|TRAIL; create "
      "reports the instance's time", (j, r))
pem = os.path.join(fwd, "fake.pem")
if r.get("rsa_cert"):
    with open(os.path.join(fwd, "fake.der"), "wb") as f:
        f.write(bytes.fromhex(r["rsa_cert"]))
    openssl("x509", "-inform", "der", "-in", os.path.join(fwd, "fake.der"),
            "-out", pem)
check(r.get("rsa") == 0 and os.path.exists(pem) and
      openssl("verify", "-CAfile", ca, pem).returncode == 0,
      "while manufacturing: an RSA EK is certified by the same CA", r)
check(r.get("rsa_again") == 3 and r.get("ecc_off_curve") == 5 and
      r.get("ecc") == 0,
      "each kind once (FORBIDDEN), and only a real key (a point off the "
      "curve: INVALID_REQUEST)", r)
check(r.get("made") == 0 and r.get("platform_after") == 3 and
      r.get("made_again") == 3,
      "after MANUFACTURED nothing more is certified (FORBIDDEN)", r)
r = res[u_plain]
check(r.get("flags") == 5 and r.get("rsa") == 3 and r.get("ecc") == 3 and
      r.get("made") == 3,
      "a vTPM created --no-ek-cert: no MANUFACTURE flag, EK_CERTIFY and "
      "MANUFACTURED are FORBIDDEN", r)
mf.stop()

# ---- an operator's CA above ours: the CA key becomes an intermediate ----
m.start()
csr = os.path.join(wd, "ekca.csr")
m.ctl("ca-csr", "--out", csr)
r = openssl("req", "-in", csr, "-verify", "-noout")
csr_pub = openssl("req", "-in", csr, "-pubkey", "-noout").stdout
ca_pub = openssl("x509", "-in", ca, "-pubkey", "-noout").stdout
check(r.returncode == 0 and csr_pub == ca_pub and csr_pub,
      "vtpmctl ca-csr: a request for the CA key, its signature (by "
      "TPM2_Sign) verifies", out_of(r))
root_key, root = os.path.join(wd, "root.key"), os.path.join(wd, "root.pem")
openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-nodes", "-keyout", root_key, "-out",
        root, "-subj", "/CN=Operator Root", "-days", "3650", "-addext",
        "basicConstraints=critical,CA:TRUE", "-addext",
        "keyUsage=critical,keyCertSign,cRLSign")
ext = os.path.join(wd, "inter.ext")
with open(ext, "w") as f:
    f.write("basicConstraints=critical,CA:TRUE,pathlen:0\n"
            "keyUsage=critical,keyCertSign,cRLSign\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
inter = os.path.join(wd, "inter.pem")
r = openssl("x509", "-req", "-in", csr, "-CA", root, "-CAkey", root_key,
            "-CAcreateserial", "-out", inter, "-days", "3650", "-extfile",
            ext)
check(r.returncode == 0, "the operator's CA signs the request", out_of(r))
leafext = os.path.join(wd, "leaf.ext")
with open(leafext, "w") as f:
    f.write("basicConstraints=critical,CA:FALSE\n"
            "subjectKeyIdentifier=hash\n")
leaf = os.path.join(wd, "leaf.pem")
openssl("x509", "-req", "-in", csr, "-CA", root, "-CAkey", root_key,
        "-CAcreateserial", "-out", leaf, "-extfile", leafext)
bad = [m.ctl("ca-import", root, check_rc=False),
       m.ctl("ca-import", leaf, check_rc=False),
       m.ctl("ca-import", ext, check_rc=False)]
check([x.returncode for x in bad] == [2, 2, 2] and
      m.ctl("ca-cert").stdout.decode() == ca_pem,
      "ca-import refuses a certificate of another key, one that is not a "
      "CA, and what is not a certificate; the CA stays",
      " | ".join(out_of(x) for x in bad))
r = m.ctl("ca-import", inter)
now = os.path.join(wd, "now.pem")


def fingerprint(path):
    return openssl("x509", "-in", path, "-noout", "-fingerprint").stdout


m.ctl("ca-cert", "--out", now)
check(r.returncode == 0 and fingerprint(now) == fingerprint(inter),
      "ca-import installs the intermediate; ca-cert prints it", out_of(r))
m.stop()
m.start()
m.ctl("ca-cert", "--out", now)
check(fingerprint(now) == fingerprint(inter),
      "after a restart ca-cert is still the imported intermediate")
u = m.ctl("create", "--domid", "30").stdout.decode().strip()
m.ctl("start", u)
m.wait_vtpm(u)
der, pem = os.path.join(wd, "i-ek.der"), os.path.join(wd, "i-ek.pem")
guest(u, "tpm2_nvread", "0x%08x" % ECC_IDX, "-o", der)
openssl("x509", "-inform", "der", "-in", der, "-out", pem)
v = openssl("verify", "-CAfile", root, "-untrusted", inter, pem)
check(v.returncode == 0,
      "a vTPM made after the import: its EK certificate chains to the "
      "operator's root through the TPM-held intermediate", out_of(v))
m.stop()
hw.stop()
finish()
