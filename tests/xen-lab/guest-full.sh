# SPDX-License-Identifier: BSD-3-Clause
# Sourced by the xen-lab guest's /init with --full (busybox sh). Raw TPM 2.0
# checks through /dev/tpm0 with tpmraw. Each check prints one line
#   XENLAB: check NAME ok|FAIL (detail)
# The values come from /etc/xenlab/full.env, written by run.sh per run:
#   NVDATA (8 bytes, hex), PCRDIGEST (32 bytes, hex) and PCREXPECT
#   (sha256(32 zero bytes || PCRDIGEST), i.e. PCR 16 after one extend);
#   PCR12DIGEST and PCR12EXPECT, the same for a TPM 1.2 (SHA-1).

. /etc/xenlab/full.env
NVIDX=01500016
PWSESS=00000009400000090000000000   # authSize 9: TPM_RS_PW, no nonce, no attrs, empty hmac
ZERO64=0000000000000000000000000000000000000000000000000000000000000000
# PCR_Extend(16, sha256:PCRDIGEST)
CMD_PCR_EXTEND="80020000004100000182 00000010 $PWSESS 00000001 000b $PCRDIGEST"
# PCR_Read(sha256: PCR 16)
CMD_PCR_READ="80010000001400 00017e 00000001 000b 03 000001"
# NV_DefineSpace(owner, empty auth, index NVIDX, sha256,
#   OWNERWRITE|AUTHWRITE|OWNERREAD|AUTHREAD = 0x00060006, 8 bytes)
CMD_NV_DEFINE="8002 0000002d 0000012a 40000001 $PWSESS 0000 000e $NVIDX 000b 00060006 0000 0008"
# NV_Write(index auth, NVDATA at offset 0)
CMD_NV_WRITE="8002 0000002b 00000137 $NVIDX $NVIDX $PWSESS 0008 $NVDATA 0000"
# NV_Read(index auth, 8 bytes at offset 0)
CMD_NV_READ="8002 00000023 0000014e $NVIDX $NVIDX $PWSESS 0008 0000"
CMD_GETRANDOM="8001 0000000c 0000017b 0010"

FULL_RES=ok
check() { # NAME ok|FAIL [DETAIL]
  echo "XENLAB: check $1 $2${3:+ ($3)}"
  [ "$2" = ok ] || FULL_RES=FAIL
}
tpmdev() { ls /dev/tpm[0-9]* 2>/dev/null | head -n 1; }
# tpm CMDHEX: the response hex on stdout (empty on an I/O error). Retries
# the warnings a TSS retries (YIELDED, NV_RATE, RETRY, NV_UNAVAILABLE).
tpm() {
  local r rc n=0 dev
  dev=$(tpmdev)
  [ -n "$dev" ] || { echo "guest: tpm: no /dev/tpm*" >&2; return 1; }
  while :; do
    r=$(timeout 30 tpmraw -d "$dev" "$1") || { echo "guest: tpmraw failed" >&2; return 1; }
    rc=$(echo "$r" | cut -c13-20)
    case "$rc" in
      00000908|00000920|00000922|00000923)
        n=$((n + 1))
        if [ $n -lt 20 ]; then echo "guest: rc=0x$rc, retrying" >&2; sleep 0.2; continue; fi ;;
    esac
    echo "$r"
    return 0
  done
}
rc_of() { echo "$1" | cut -c13-20; }
ok_rc() { [ "$(rc_of "$1")" = 00000000 ]; }

check_getrandom() { # NAME
  local r
  r=$(tpm "$CMD_GETRANDOM")
  if ok_rc "$r" && [ ${#r} -eq 56 ]; then check "$1" ok "16 bytes ${r#????????????????????????}"
  else check "$1" FAIL "response '$r'"; fi
}
pcr16() { # prints PCR 16 (sha256) or nothing
  local r
  r=$(tpm "$CMD_PCR_READ")
  echo "guest: PCR_Read response $r" >&2
  ok_rc "$r" && [ ${#r} -eq 124 ] && echo "$r" | cut -c61-124
}
check_nv_read() { # NAME
  local r d
  r=$(tpm "$CMD_NV_READ")
  echo "guest: NV_Read response $r"
  d=$(echo "$r" | cut -c33-48)
  if ok_rc "$r" && [ ${#r} -eq 58 ] && [ "$d" = "$NVDATA" ]; then check "$1" ok "index 0x$NVIDX = $d"
  else check "$1" FAIL "rc=0x$(rc_of "$r") data=${d:-none}, want $NVDATA"; fi
}

# First boot: extend and read PCR 16, define, write and read the NV index.
full_boot1() {
  local r p
  r=$(tpm "$CMD_PCR_EXTEND")
  echo "guest: PCR_Extend response $r"
  if ok_rc "$r"; then check pcr-extend ok "PCR 16 sha256 += $PCRDIGEST"
  else check pcr-extend FAIL "rc=0x$(rc_of "$r")"; fi
  p=$(pcr16)
  if [ "$p" = "$PCREXPECT" ]; then check pcr-read ok "PCR 16 = $p"
  else check pcr-read FAIL "PCR 16 = ${p:-none}, want $PCREXPECT"; fi
  r=$(tpm "$CMD_NV_DEFINE")
  echo "guest: NV_DefineSpace response $r"
  if ok_rc "$r"; then check nv-define ok "index 0x$NVIDX, 8 bytes, attributes 0x00060006"
  else check nv-define FAIL "rc=0x$(rc_of "$r")"; fi
  r=$(tpm "$CMD_NV_WRITE")
  echo "guest: NV_Write response $r"
  if ok_rc "$r"; then check nv-write ok "$NVDATA"
  else check nv-write FAIL "rc=0x$(rc_of "$r")"; fi
  check_nv_read nv-read
}

# After the reboot: NV kept, PCR 16 reset.
full_boot2() {
  local p
  check_getrandom reboot-getrandom
  check_nv_read reboot-nv-read
  p=$(pcr16)
  if [ "$p" = "$ZERO64" ]; then check reboot-pcr-reset ok "PCR 16 = 0...0"
  else check reboot-pcr-reset FAIL "PCR 16 = ${p:-none}"; fi
}

# After the host was powered off and booted again (--host-restart): the
# vTPM the manager brings back holds the NV index; PCRs start from zero.
full_host2() {
  local p
  check_getrandom host2-getrandom
  check_nv_read host2-nv-read
  p=$(pcr16)
  if [ "$p" = "$ZERO64" ]; then check host2-pcr-reset ok "PCR 16 = 0...0"
  else check host2-pcr-reset FAIL "PCR 16 = ${p:-none}"; fi
}

# A TPM 1.2 vTPM behind the stock driver (--host-restart, host boot 2):
# the durations the driver read from the engine, TPM_GetRandom, and
# TPM_Extend of PCR 16 (SHA-1) with the value the host computed.
full_tpm12() {
  local r d ok=1 n
  d=$(cat /sys/class/tpm/tpm0/durations 2>/dev/null)
  echo "guest: durations: $d; timeouts: $(cat /sys/class/tpm/tpm0/timeouts 2>/dev/null)"
  # short, medium, long in microseconds: each must leave a slow durable
  # write far behind (Xen's own emulator needed 3 s / 3 s / 600 s).
  set -- $d
  if [ $# -ge 3 ]; then
    for n in "$1" "$2" "$3"; do [ "$n" -ge 3000000 ] 2>/dev/null || ok=0; done
  else
    ok=0
  fi
  if [ $ok = 1 ]; then check tpm12-durations ok "$d (us)"
  else check tpm12-durations FAIL "'$d'"; fi
  r=$(tpm "00c1 0000000e 00000046 00000010")
  if ok_rc "$r" && [ ${#r} -eq 60 ]; then check tpm12-getrandom ok "16 bytes ${r#????????????????????????????}"
  else check tpm12-getrandom FAIL "response '$r'"; fi
  r=$(tpm "00c1 00000022 00000014 00000010 $PCR12DIGEST")
  echo "guest: TPM_Extend response $r"
  if ok_rc "$r" && [ "${r#????????????????????}" = "$PCR12EXPECT" ]; then
    check tpm12-pcr-extend ok "PCR 16 = $PCR12EXPECT"
  else
    check tpm12-pcr-extend FAIL "response '$r', want PCR 16 = $PCR12EXPECT"
  fi
}

# --chain: guest1 served by the instance domain (its key from the manager
# over a ring): raw TPM 2.0 as on the first boot, and tpm2-tools.
tools() { TPM2TOOLS_TCTI=device:$(tpmdev) timeout 60 tpm2 "$@"; }
full_chain1() {
  local r p
  check_getrandom chain1-getrandom
  r=$(tools getrandom 8 --hex 2>&1)
  if [ ${#r} -eq 16 ]; then check chain1-tools-getrandom ok "tpm2 getrandom 8: $r"
  else check chain1-tools-getrandom FAIL "'$r'"; fi
  full_boot1
  p=$(tools pcrread sha256:16 2>&1 | tr -d ' \n' | sed -n 's/.*16:0x\([0-9A-Fa-f]*\).*/\1/p' |
      tr 'A-F' 'a-f')
  if [ "$p" = "$PCREXPECT" ]; then check chain1-tools-pcrread ok "tpm2 pcrread sha256:16 = $p"
  else check chain1-tools-pcrread FAIL "'$(tools pcrread sha256:16 2>&1 | tr '\n' ' ')'"; fi
  # dom0 quotes this vTPM now (its PCR 16 as extended above): stay up
  # and connected meanwhile (a closed connection resets the PCRs).
  echo "XENLAB: guest chain1-quote-now"
  sleep 12
  [ -e /etc/xenlab/chain-sr ] && chain_sr
}
# --chain (not --mgrdom): dom0 runs xl save + xl restore of this domain
# while vtpmdom serves it. The instance there asks the manager for this
# domain's Xen UUID and run state; the restored domain must find the same
# TPM: PCR 16 as extended above (no Startup since) and a policy session
# started before the save.
chain_sr() {
  local n p q d r
  tools startauthsession --policy-session -S /tmp/chsess.ctx >/tmp/chsess.out 2>&1 ||
    echo "guest: startauthsession: $(tr '\n' ' ' </tmp/chsess.out | cut -c1-200)"
  p=$(pcr16)
  n=$(dmesg | grep -c 'Restarting tasks')
  M "guest: before the save: PCR 16 $p"
  echo "XENLAB: guest chain-sr-ready"
  d=$(awk -v a="$(up)" 'BEGIN { print a + 240 }')
  while [ "$(dmesg | grep -c 'Restarting tasks')" -le "$n" ] && ! past "$d"; do sleep 0.2; done
  r=""
  while ! past "$d"; do
    if [ -n "$(tpmdev)" ]; then r=$(tpm "$CMD_GETRANDOM" 2>/dev/null); ok_rc "$r" && break; fi
    sleep 0.2
  done
  if ! ok_rc "$r"; then
    check chain-sr-restore-pcr16 FAIL "no resume with a working /dev/tpm0 within 240 s"
    return
  fi
  M "guest: resumed after xl save + xl restore (uptime $(up)s)"
  q=$(pcr16)
  if [ -n "$q" ] && [ "$q" = "$p" ] && [ "$q" = "$PCREXPECT" ]; then
    check chain-sr-restore-pcr16 ok "PCR 16 = $q, as before the save"
  else
    check chain-sr-restore-pcr16 FAIL "PCR 16 = ${q:-none}, before the save: ${p:-none}"
  fi
  if tools policypcr -S /tmp/chsess.ctx -l sha256:16 >/tmp/chsess2.out 2>&1; then
    check chain-sr-restore-session ok "the policy session started before the save is satisfied now"
  else
    check chain-sr-restore-session FAIL "$(tr '\n' ' ' </tmp/chsess2.out | cut -c1-200)"
  fi
}
# guest1 again, as a new domain: served by the same instance (chainb), or
# after the instance domain was destroyed and created again (chain2).
full_chain2() { # PREFIX
  local p
  check_getrandom "$1-getrandom"
  check_nv_read "$1-nv-read"
  p=$(pcr16)
  if [ "$p" = "$ZERO64" ]; then check "$1-pcr-reset" ok "PCR 16 = 0...0"
  else check "$1-pcr-reset" FAIL "PCR 16 = ${p:-none}"; fi
}

# After the reboot checks: dom0 detaches and re-attaches the vtpm.
full_detach_attach() { # T0 (uptime when the wait starts)
  local d t
  echo "XENLAB: guest ready-for-detach"
  t=$(up); d=$(awk -v a="$t" 'BEGIN { print a + 60 }')
  while [ -n "$(tpmdev)" ] && ! past "$d"; do sleep 0.1; done
  if [ -z "$(tpmdev)" ]; then check detach-tpm0-gone ok "/dev/tpm0 went away $(since "$t")s after ready-for-detach"
  else check detach-tpm0-gone FAIL "$(tpmdev) still there after 60 s"; fi
  ls /sys/bus/xen/devices/ 2>/dev/null | tr '\n' ' ' | sed 's/^/guest: xen devices after detach: /'; echo
  t=$(up); d=$(awk -v a="$t" 'BEGIN { print a + 60 }')
  while [ -z "$(tpmdev)" ] && ! past "$d"; do sleep 0.1; done
  if [ -n "$(tpmdev)" ]; then
    check reattach-tpm0 ok "$(tpmdev) back $(since "$t")s after it went away, no rmmod/insmod"
    check_getrandom reattach-getrandom
    check_nv_read reattach-nv-read
  else
    check reattach-tpm0 FAIL "no /dev/tpm* within 60 s after the detach"
    ls /sys/bus/xen/devices/ 2>/dev/null | tr '\n' ' ' | sed 's/^/guest: xen devices: /'; echo
  fi
}
