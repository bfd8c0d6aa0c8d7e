# SPDX-License-Identifier: BSD-3-Clause
# Sourced by the xen-lab guest's /init with --saverestore (busybox sh),
# after guest-full.sh (its tpm, pcr16, check, tools helpers).  The stock
# xen-tpmfront drives the vTPM; tpm2-tools talk to /dev/tpm0 directly (no
# resource manager: every tool's transient objects are flushed here).
#   sr_guest     (rebooted guest, after vtpm-detach/attach): extend PCR 16,
#                seal a secret to it (persistent 0x81000016 and a loaded
#                copy), keep a policy session; dom0 runs xl save + xl
#                restore, then xl migrate guest1 localhost: after each, PCR
#                16, the unseals and the session must be as before.  Then
#                dom0 destroys this domain (its frontend never closes).
#   sr_fresh     (phase vtpm-sr: xl create after that xl destroy): a new
#                boot: PCR 16 reset, the unseal refused, NV kept.

SR_TMP=/tmp/sr
SR_HANDLE=0x81000016
SR_SECRET="xenlab-sr-$NVDATA"
SR_PCR=""

# srt NAME ARGS...: a tpm2 tool on /dev/tpm0, output in $SR_TMP/NAME.out.
srt() {
  local n=$1; shift
  TPM2TOOLS_TCTI=device:$(tpmdev) timeout 120 tpm2 "$@" >"$SR_TMP/$n.out" 2>&1 && return 0
  echo "guest: tpm2 $* failed: $(tr '\n' ' ' <"$SR_TMP/$n.out" | cut -c1-300)"
  return 1
}
sr_flush() { srt flush-t flushcontext -t; srt flush-s flushcontext -s; true; }
sr_transient() { TPM2TOOLS_TCTI=device:$(tpmdev) timeout 60 tpm2 getcap handles-transient 2>&1 | tr -d ' \n-'; }
sr_restarts() { dmesg | grep -c 'Restarting tasks'; }

# Seals SR_SECRET to PCR 16's current value.
sr_seal() {
  mkdir -p "$SR_TMP"
  printf '%s' "$SR_SECRET" >"$SR_TMP/secret"
  srt evict-old evictcontrol -C o -c "$SR_HANDLE" >/dev/null 2>&1  # a leftover: gone
  sr_flush
  srt prim createprimary -C o -G ecc -c "$SR_TMP/prim.ctx" && sr_flush &&
  srt pcrsel pcrread -o "$SR_TMP/pcr.bin" sha256:16 &&
  srt pol createpolicy --policy-pcr -l sha256:16 -f "$SR_TMP/pcr.bin" -L "$SR_TMP/pol.bin" &&
  srt create create -C "$SR_TMP/prim.ctx" -L "$SR_TMP/pol.bin" -i "$SR_TMP/secret" \
    -u "$SR_TMP/seal.pub" -r "$SR_TMP/seal.priv" && sr_flush &&
  srt load load -C "$SR_TMP/prim.ctx" -u "$SR_TMP/seal.pub" -r "$SR_TMP/seal.priv" \
    -c "$SR_TMP/seal.ctx" &&
  srt persist evictcontrol -C o -c "$SR_TMP/seal.ctx" "$SR_HANDLE" && sr_flush &&
  # A loaded copy stays in the TPM (its context in seal.ctx), and the
  # primary with it: what the TPM's volatile state holds.
  srt load2 load -C "$SR_TMP/prim.ctx" -u "$SR_TMP/seal.pub" -r "$SR_TMP/seal.priv" \
    -c "$SR_TMP/seal.ctx"
}
# A policy session, saved to a file: valid after a resume only.
sr_session() { # N
  srt sess$1 startauthsession --policy-session -S "$SR_TMP/sess$1.ctx"
}
sr_unseal() { # NAME CONTEXT AUTH
  local n=$1 out
  TPM2TOOLS_TCTI=device:$(tpmdev) timeout 120 tpm2 unseal -c "$2" -p "$3" >"$SR_TMP/$n.out" 2>"$SR_TMP/$n.err"
  out=$(cat "$SR_TMP/$n.out")
  [ "$out" = "$SR_SECRET" ]
}

# sr_wait_resume N: until the kernel has resumed N times in all and
# /dev/tpm0 answers again (xen-tpmfront probes again after a resume).
sr_wait_resume() {
  local d r
  d=$(awk -v a="$(up)" 'BEGIN { print a + 300 }')
  while [ "$(sr_restarts)" -lt "$1" ] && ! past "$d"; do sleep 0.2; done
  [ "$(sr_restarts)" -ge "$1" ] || return 1
  while ! past "$d"; do
    if [ -n "$(tpmdev)" ]; then
      r=$(tpm "$CMD_GETRANDOM" 2>/dev/null)
      ok_rc "$r" && return 0
    fi
    sleep 0.2
  done
  return 1
}

# sr_after PREFIX SESSION: what a resumed TPM must show.
sr_after() {
  local p h
  p=$(pcr16)
  if [ -n "$p" ] && [ "$p" = "$SR_PCR" ]; then check "$1-pcr16" ok "PCR 16 = $p, as before"
  else check "$1-pcr16" FAIL "PCR 16 = ${p:-none}, before: $SR_PCR"; fi
  if sr_unseal "$1-unseal" "$SR_HANDLE" pcr:sha256:16; then
    check "$1-unseal" ok "persistent $SR_HANDLE unseals with PCR 16's policy"
  else check "$1-unseal" FAIL "$(tr '\n' ' ' <"$SR_TMP/$1-unseal.err" | cut -c1-200)"; fi
  h=$(sr_transient)
  if [ -n "$h" ] && [ "$h" = "$SR_HANDLES" ]; then check "$1-loaded-objects" ok "transient handles as before: $h"
  else check "$1-loaded-objects" FAIL "transient handles '$h', before: '$SR_HANDLES'"; fi
  # The loaded copy's saved context loads only into the same TPM (no
  # Reset since), and the session saved before the save is still there.
  if srt "$1-policypcr" policypcr -S "$SR_TMP/sess$2.ctx" -l sha256:16 &&
     sr_unseal "$1-session" "$SR_TMP/seal.ctx" "session:$SR_TMP/sess$2.ctx"; then
    check "$1-session" ok "the policy session started before, satisfied now, unseals the loaded object"
  else
    check "$1-session" FAIL "$(cat "$SR_TMP/$1-policypcr.out" "$SR_TMP/$1-session.err" 2>/dev/null | tr '\n' ' ' | cut -c1-200)"
  fi
  sr_flush >/dev/null
  srt "$1-reload" load -C "$SR_TMP/prim.ctx" -u "$SR_TMP/seal.pub" -r "$SR_TMP/seal.priv" \
    -c "$SR_TMP/seal.ctx"
  SR_HANDLES=$(sr_transient)
}

sr_guest() {
  local r n
  r=$(tpm "$CMD_PCR_EXTEND")
  SR_PCR=$(pcr16)
  if ok_rc "$r" && [ "$SR_PCR" = "$PCREXPECT" ]; then check sr-pcr-extend ok "PCR 16 = $SR_PCR"
  else check sr-pcr-extend FAIL "PCR_Extend '$r', PCR 16 '$SR_PCR', want $PCREXPECT"; fi
  if sr_seal && sr_unseal sr-unseal-before "$SR_HANDLE" pcr:sha256:16; then
    check sr-seal ok "secret sealed to PCR 16 ($SR_HANDLE) and unsealed"
  else
    check sr-seal FAIL "$(tr '\n' ' ' <"$SR_TMP/sr-unseal-before.err" 2>/dev/null | cut -c1-200)"
  fi
  sr_flush >/dev/null
  srt load3 load -C "$SR_TMP/prim.ctx" -u "$SR_TMP/seal.pub" -r "$SR_TMP/seal.priv" -c "$SR_TMP/seal.ctx"
  sr_session 1
  SR_HANDLES=$(sr_transient)
  M "guest: before the save: PCR 16 $SR_PCR, transient handles $SR_HANDLES"
  n=$(sr_restarts)
  echo "XENLAB: guest ready-for-save"
  if sr_wait_resume $((n + 1)); then
    M "guest: resumed after xl save + xl restore (uptime $(up)s)"
    sr_after sr-restore 1
  else
    check sr-restore-pcr16 FAIL "no resume with a working /dev/tpm0 within 300 s"
  fi
  sr_session 2
  n=$(sr_restarts)
  echo "XENLAB: guest ready-for-migrate"
  if sr_wait_resume $((n + 1)); then
    M "guest: resumed after xl migrate (uptime $(up)s)"
    sr_after sr-migrate 2
  else
    check sr-migrate-pcr16 FAIL "no resume with a working /dev/tpm0 within 300 s"
  fi
  # dom0 destroys this domain now: its frontend never closes.
  echo "XENLAB: guest ready-for-destroy"
  sleep 600
}

sr_fresh() {
  local p
  mkdir -p "$SR_TMP"
  p=$(pcr16)
  if [ "$p" = "$ZERO64" ]; then check sr-destroy-pcr-reset ok "PCR 16 = 0...0"
  else check sr-destroy-pcr-reset FAIL "PCR 16 = ${p:-none}"; fi
  check_nv_read sr-destroy-nv-read
  if srt readpub readpublic -c "$SR_HANDLE"; then check sr-destroy-persistent-kept ok "$SR_HANDLE still there (NV kept)"
  else check sr-destroy-persistent-kept FAIL "no $SR_HANDLE"; fi
  if sr_unseal sr-destroy-unseal "$SR_HANDLE" pcr:sha256:16; then
    check sr-destroy-unseal-refused FAIL "the secret unsealed after a new boot"
  elif grep -qi 'policy\|0x99d\|value' "$SR_TMP/sr-destroy-unseal.err"; then
    check sr-destroy-unseal-refused ok "$(grep -i 'policy\|0x99d\|value' "$SR_TMP/sr-destroy-unseal.err" | head -n 1 | cut -c1-160)"
  else
    check sr-destroy-unseal-refused FAIL "refused, but not by the policy: $(tr '\n' ' ' <"$SR_TMP/sr-destroy-unseal.err" | cut -c1-200)"
  fi
  sr_flush >/dev/null
}
