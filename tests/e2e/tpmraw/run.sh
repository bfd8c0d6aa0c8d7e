#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tpmraw (tests/xen-lab/tpmraw.c), the round-trip timer of the labs and
# benchmarks, against a vtpm-service instance on a UNIX socket, called the
# way each of its callers calls it:
#   guest-full.sh, guest-kmod.sh  tpmraw -d DEV HEX         (response hex)
#   guest-kmod.sh kmod_big_cmd    a 4096-byte command       (TPM_RC_SIZE)
#   run.sh bench ring/unix        tpmraw -u SOCK -n 500 HEX (run-ring-bench.sh)
#   guest-kmod.sh kmod_bench      tpmraw -d DEV -n N -l L   (run-kmod-bench.sh)
# (-u here where the guest says -d: the same code but for the read loop.)
#   run.sh TPMRAW VTPM_SERVICE WORKDIR
set -u
TPMRAW=$1 VTPM=$2 WD=$3
rm -rf "$WD" && mkdir -p "$WD" && chmod 700 "$WD" || exit 1
SOCK=$WD/tpm
head -c 32 /dev/urandom >"$WD/key" && chmod 600 "$WD/key"
"$VTPM" --role=instance --domid 99 --transport "unix:$SOCK" \
	--state-key "$WD/key" --state-dir "$WD" --log-level warning >"$WD/vtpm.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null' EXIT
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || { cat "$WD/vtpm.log"; echo "FAIL: no $SOCK"; exit 1; }

bad=0
check() { # NAME CONDITION-STATUS DETAIL
	if [ "$2" = 0 ]; then echo "ok   $1"; else echo "FAIL $1: $3"; bad=$((bad + 1)); fi
}
GR=80010000000c0000017b0008

out=$("$TPMRAW" -u "$SOCK" "$GR" "80 01 00 00 00 0c 00 00 01 7b 00 04"); rc=$?
echo "$out" | sed -n 1p | grep -qx '800100000014000000000008[0-9a-f]\{16\}' &&
	echo "$out" | sed -n 2p | grep -qx '800100000010000000000004[0-9a-f]\{8\}' && [ $rc = 0 ]
check "hex: one response line per command" $? "rc=$rc '$out'"

big="8001000010000000017b0008$(head -c 4084 /dev/zero | od -An -v -tx1 | tr -d ' \n')"
out=$("$TPMRAW" -u "$SOCK" "$big"); rc=$?
[ "$out" = 80010000000a00000095 ] && [ $rc = 0 ]
check "hex: a 4096-byte command answered whole (TPM_RC_SIZE)" $? "rc=$rc '$out'"

out=$("$TPMRAW" -u "$SOCK" -n 500 "$GR"); rc=$?
echo "$out" | grep -qE '^tpmraw label=- dev=[^ ]+ n=500 ok=500 min_us=[0-9.]+ median_us=[0-9.]+ mean_us=[0-9.]+ p95_us=[0-9.]+ max_us=[0-9.]+ total_us=[0-9]+$' && [ $rc = 0 ]
check "-n 500 HEX: the bench ring/unix line" $? "rc=$rc '$out'"
# run-ring-bench.sh's field(): the value after " mean_us=" and " min_us=".
v=$(echo "XENLAB: bench unix: $out" | sed -E "s/.* mean_us=([0-9.]+).*/\1/")
case "$v" in '' | *[!0-9.]*) false ;; *) true ;; esac
check "-n: run-ring-bench.sh reads mean_us" $? "'$v'"

out=$("$TPMRAW" -u "$SOCK" -n 20 -l vtpm_front); rc=$?
# run-kmod-bench.sh: keys stripped, then label, n, ok, min ... max by position.
pos=$(echo "$out" | sed 's/[a-z0-9_]*=//g' | awk '{ print $2, $4, $5, NF }')
[ "$pos" = "vtpm_front 20 20 11" ] && [ $rc = 0 ]
check "-n -l LABEL without HEX: GetRandom(8), the kmod bench line" $? "rc=$rc '$out' -> '$pos'"

out=$("$TPMRAW" -u "$SOCK" -n 3 80010000000c000000000008); rc=$?
echo "$out" | grep -q ' n=3 ok=0 ' && [ $rc = 1 ]
check "-n: an error response counts as not ok, exit 1" $? "rc=$rc '$out'"

"$TPMRAW" -u "$SOCK" 8001zz >/dev/null 2>&1; rc=$?
[ $rc = 2 ]; check "bad hex: exit 2" $? "rc=$rc"
"$TPMRAW" -u "$SOCK" >/dev/null 2>&1; rc=$?
[ $rc = 2 ]; check "no command and no -n: exit 2" $? "rc=$rc"
"$TPMRAW" -n 0 >/dev/null 2>&1; rc=$?
[ $rc = 2 ]; check "-n 0: exit 2" $? "rc=$rc"
"$TPMRAW" -d "$WD/none" "$GR" >/dev/null 2>&1; rc=$?
[ $rc = 1 ]; check "no such device: exit 1" $? "rc=$rc"

[ $bad = 0 ] && echo "tpmraw: PASS" && exit 0
echo "tpmraw: $bad FAIL"; exit 1
