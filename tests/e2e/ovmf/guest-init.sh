#!/bin/busybox sh
# SPDX-License-Identifier: BSD-3-Clause
# /init of the UEFI guest (run.sh builds the initramfs around it). OVMF
# booted this kernel from fw_cfg and measured itself, its configuration and
# the kernel into the vTPM; here we prove that the TCG2 event log the
# firmware handed to Linux replays to the vTPM's PCRs, bank by bank.
#
# The kernel command line names the run (vtpm_e2e=crb|tis|sb, only
# printed); /e2e.conf sets EKCERT (1: read the EK certificate NV indices and
# print them for the host to verify).
# Prints "UEFI-E2E: ..." lines; the host decides PASS/FAIL from them.
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox mount -t tmpfs -o mode=1777 tmpfs /tmp
/bin/busybox mount -t securityfs securityfs /sys/kernel/security
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=/usr/bin:/bin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu
export HOME=/tmp
export TPM2TOOLS_TCTI=device:/dev/tpmrm0
. /e2e.conf
VARIANT=$(sed -n 's/.*vtpm_e2e=\([a-z-]*\).*/\1/p' /proc/cmdline)

LOG=/sys/kernel/security/tpm0/binary_bios_measurements
FAILED=""

M() { echo "UEFI-E2E: $*"; }
fail() {
	[ -n "$FAILED" ] || FAILED="$*"
	M "check failed: $*"
}
finish() {
	if [ -n "$FAILED" ]; then
		M "FAIL $FAILED"
		echo "--- dmesg (tpm, tail) ---"
		dmesg | grep -i -E 'tpm|tcg|efi' | tail -n 30
	else
		M "GUEST-DONE uptime $(cut -d' ' -f1 /proc/uptime)s"
	fi
	sync
	poweroff -f
	sleep 5
	echo o >/proc/sysrq-trigger
}

# "bank pcr HEX" lines, sorted, from the pcrs: section of tpm2_eventlog
# (the values it computed by replaying the log) ...
log_pcrs() {
	awk '/^pcrs:/ { p = 1; next }
	     p && /^[^ ]/ { p = 0 }
	     p && /^  [a-z0-9_]+:[ \t]*$/ { b = $1; sub(":", "", b); next }
	     p && /^    [0-9]+ *: *0x[0-9A-Fa-f]+/ {
		     split($0, f, ":"); i = f[1]; gsub(/ /, "", i)
		     v = f[2]; gsub(/[ \t]|0x/, "", v); print b, i, toupper(v) }' "$1" |
		sort
}
# ... and from tpm2_pcrread (the values the vTPM holds).
tpm_pcrs() {
	awk '/^  [a-z0-9_]+:[ \t]*$/ { b = $1; sub(":", "", b); next }
	     /^    [0-9]+ *: *0x[0-9A-Fa-f]+/ {
		     split($0, f, ":"); i = f[1]; gsub(/ /, "", i)
		     v = f[2]; gsub(/[ \t]|0x/, "", v); print b, i, toupper(v) }' "$1" |
		sort
}
# compare LOGPCRS TPMPCRS: one "mismatch"/"missing" line per PCR of the log
# whose value the TPM does not hold; prints nothing when all are equal.
compare() {
	awk 'NR == FNR { tpm[$1 " " $2] = $3; next }
	     !(($1 " " $2) in tpm) { print "missing", $1, $2, "log=" $3; next }
	     tpm[$1 " " $2] != $3 {
		     print "mismatch", $1, $2, "log=" $3, "tpm=" tpm[$1 " " $2] }' "$2" "$1"
}

echo # the console line may still hold firmware escape sequences
M "init started, variant $VARIANT, kernel $(uname -r), uptime $(cut -d' ' -f1 /proc/uptime)s"
M "efi: $([ -d /sys/firmware/efi ] && echo yes || echo no)"

i=0
while [ ! -c /dev/tpmrm0 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
[ -c /dev/tpmrm0 ] || { fail "no /dev/tpmrm0 (no TPM driver bound; see dmesg)"; finish; }
M "tpm driver: $(basename "$(readlink -f /sys/class/tpm/tpm0/device/driver)")" \
	"hid=$(cat /sys/class/tpm/tpm0/device/hid 2>/dev/null)"
[ -r "$LOG" ] || { fail "no $LOG (the firmware handed over no TCG2 event log)"; finish; }
M "event log: $(wc -c <"$LOG") bytes"

# The Secure Boot state as the firmware reports it (efivarfs not needed:
# the EFI stub logs it and sysfs keeps the variable).
SB=$(dmesg | grep -o 'Secure boot [a-z]*' | head -n 1)
M "secureboot: ${SB:-unknown}"

tpm2_eventlog "$LOG" >/tmp/log.yaml 2>/tmp/eventlog.err ||
	{ fail "tpm2_eventlog cannot parse the log: $(tail -n 3 /tmp/eventlog.err)"; finish; }
EVENTS=$(grep -c '^- EventNum:' /tmp/log.yaml)
LOGBANKS=$(awk '/^  SpecID:/ { s = 1 } s && /algorithmId:/ { print $2 } /^- EventNum: 1$/ { exit }' \
	/tmp/log.yaml | sed 's/^TPM2_ALG_//' | tr 'A-Z' 'a-z' | sort -u | tr '\n' ' ')
tpm2_getcap pcrs >/tmp/getcap.yaml 2>&1 || { fail "tpm2_getcap pcrs: $(tail -n 2 /tmp/getcap.yaml)"; finish; }
# Banks with at least one PCR allocated: "  - sha256: [ 0, 1, ... ]".
ACTIVE=$(awk '/^  - [a-z0-9_]+: *\[ *[0-9]/ { b = $2; sub(":", "", b); print b }' /tmp/getcap.yaml |
	sort -u | tr '\n' ' ')
M "log: $EVENTS events, banks in the log header: ${LOGBANKS:-none}; banks allocated in the TPM: ${ACTIVE:-none}"

tpm2_pcrread >/tmp/pcrread.yaml 2>/tmp/pcrread.err ||
	{ fail "tpm2_pcrread: $(tail -n 2 /tmp/pcrread.err)"; finish; }
log_pcrs /tmp/log.yaml >/tmp/log.pcrs
tpm_pcrs /tmp/pcrread.yaml >/tmp/tpm.pcrs
[ -s /tmp/log.pcrs ] || { fail "tpm2_eventlog computed no PCR values"; finish; }

# Every allocated bank is one the firmware must log and extend: a bank it
# skipped would hold values no verifier can reproduce.
for b in $ACTIVE; do
	grep -q "^$b " /tmp/log.pcrs || fail "bank $b is allocated in the TPM but the event log has no values for it"
done
grep -q '^sha256 ' /tmp/log.pcrs || fail "the event log has no sha256 bank"
for n in 0 1 2 3 4 5 6 7; do
	grep -q "^sha256 $n " /tmp/log.pcrs || fail "the event log does not replay PCR $n (sha256)"
done
Z64=0000000000000000000000000000000000000000000000000000000000000000
grep -q "^sha256 0 $Z64\$" /tmp/tpm.pcrs && fail "PCR 0 (sha256) is all zeros: the firmware measured nothing"

# What the firmware measured into PCR 4 (boot applications: the kernel)
# and PCR 7 (Secure Boot policy, and the db entry that let an image run),
# with the sha256 digest, for the host to check against the kernel it gave.
awk 'function out() { if (p == 4 || p == 7) print "event", p, t, (d == "" ? "-" : d) }
     /^- EventNum:/ { if (n++) out(); p = ""; t = ""; a = ""; d = ""; next }
     /^  PCRIndex:/ { p = $2 }
     /^  EventType:/ { t = $2 }
     /AlgorithmId:/ { a = $NF }
     /^ *Digest:/ && a == "sha256" { d = $2; gsub(/"/, "", d) }
     END { if (n) out() }' /tmp/log.yaml >/tmp/events
while read -r l; do M "$l"; done </tmp/events

compare /tmp/log.pcrs /tmp/tpm.pcrs >/tmp/diff
while read -r l; do
	M "replay $l"
done </tmp/log.pcrs
if [ -s /tmp/diff ]; then
	while read -r l; do M "REPLAY $l"; done </tmp/diff
	fail "the event log does not replay to the vTPM's PCRs ($(wc -l </tmp/diff) PCRs differ)"
else
	M "replay equal: $(wc -l </tmp/log.pcrs) PCR values in banks ${LOGBANKS}equal tpm2_pcrread"
fi
for n in 8 9 10 11 12 13 14; do
	grep "^sha256 $n " /tmp/tpm.pcrs | grep -qv " $Z64\$" &&
		! grep -q "^sha256 $n " /tmp/log.pcrs &&
		M "note: PCR $n (sha256) is extended but not in the firmware log (kernel measurement, e.g. IMA)"
done

# The checker itself must be able to fail: extend PCR 4 behind the log's
# back and the comparison must name exactly that PCR, in that bank alone.
if [ -z "$FAILED" ]; then
	tpm2_pcrextend 4:sha256=$Z64 >/tmp/extend.err 2>&1 ||
		fail "tpm2_pcrextend 4 (checker self-test): $(tail -n 2 /tmp/extend.err)"
	tpm2_pcrread >/tmp/pcrread2.yaml 2>/tmp/pcrread.err || fail "tpm2_pcrread after the extend"
	tpm_pcrs /tmp/pcrread2.yaml >/tmp/tpm2.pcrs
	compare /tmp/log.pcrs /tmp/tpm2.pcrs >/tmp/diff2
	if [ "$(cat /tmp/diff2 | cut -d' ' -f1-3)" = "mismatch sha256 4" ]; then
		M "checker self-test: an extend of PCR 4 behind the log is caught"
	else
		fail "checker self-test: after extending PCR 4 the comparison said '$(cat /tmp/diff2)'"
	fi
fi

# EK certificates (issue 14 items 1-2): the bytes at the TCG NV indices,
# printed for the host to verify against `vtpmctl ca-cert`.
if [ "${EKCERT:-0}" = 1 ]; then
	for kv in rsa:0x01c00002 ecc:0x01c0000a; do
		k=${kv%%:*}
		idx=${kv#*:}
		if tpm2_nvread "$idx" -C o -o /tmp/ek-$k.der >/tmp/nv.err 2>&1 ||
			tpm2_nvread "$idx" -C "$idx" -o /tmp/ek-$k.der >>/tmp/nv.err 2>&1; then
			M "ekcert $k $idx: $(wc -c </tmp/ek-$k.der) bytes"
			echo "UEFI-E2E-EKCERT-BEGIN $k"
			base64 </tmp/ek-$k.der
			echo "UEFI-E2E-EKCERT-END $k"
		else
			M "ekcert $k $idx: absent ($(tail -n 1 /tmp/nv.err))"
		fi
	done
fi
finish
