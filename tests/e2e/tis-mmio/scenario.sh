#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The manager scenario of issue 6, one HAL, one run. POSIX sh: runs under
# busybox ash inside the QEMU guest (--hal tis-mmio) and under bash on the
# host (--hal tss-device against a swtpm socket). run.sh drives it.
#
#   start the manager (a new root key is sealed to the physical TPM)
#   vtpmctl create, start; tpm2_nvdefine + tpm2_nvwrite through the vTPM
#   vtpmctl quote + verify-quote (pinned to the manager's AK)
#   SIGTERM the manager, start it again: the root key must UNSEAL
#   tpm2_nvread returns the same bytes; quote again, verify (same AK)
#
# Environment (all required unless noted):
#   HAL        tis-mmio | tss-device
#   TCTI       the manager's --tcti
#   BIN        directory with vtpm-service, vtpm-service-manager, vtpmctl
#   WD         scratch directory: state (WD/st), sockets (WD/run), outputs
#   DATE       a date(1) that knows %N (GNU coreutils; default: date)
#   WAIT_S     seconds to wait for the manager / a vTPM (default 60)
#   CMD_S      seconds any one vtpmctl / tpm2-tools command may take (30)
# Prints "TISE2E: ..." lines, ending with "TISE2E: PASS" or
# "TISE2E: FAIL reason"; exit 0 on PASS, 1 on FAIL.
set -u

: "${HAL:?}" "${TCTI:?}" "${BIN:?}" "${WD:?}"
DATE=${DATE:-date}
WAIT_S=${WAIT_S:-60}
CMD_S=${CMD_S:-30}
ST=$WD/st
RUN=$WD/run
CTL=$RUN/manager.sock
NV_IDX=0x1500016
NONCE=00112233
MGR=""
STEP="setup"

M() { echo "TISE2E: $*"; }
now_ms() { $DATE +%s%3N; }
# Every client command under timeout: a TCTI that hangs must end as a FAIL
# naming the step, not as the whole run's timeout.
ctl() { timeout "$CMD_S" "$BIN/vtpmctl" --control "$CTL" "$@"; }
why() { # exit status -> words
	case "$1" in
	124 | 143) echo "timed out after ${CMD_S}s" ;;
	*) echo "exit $1" ;;
	esac
}

show_tail() { # file [lines]
	[ -s "$1" ] || return 0
	echo "--- $1 (tail) ---"
	tail -n "${2:-25}" "$1"
}

stop_manager() { # [seconds to wait before SIGKILL, default WAIT_S]
	[ -n "$MGR" ] || return 0
	kill -TERM "$MGR" 2>/dev/null
	end=$(($(now_ms) + ${1:-$WAIT_S} * 1000))
	while kill -0 "$MGR" 2>/dev/null && [ "$(now_ms)" -lt $end ]; do
		sleep 0.1
	done
	if kill -0 "$MGR" 2>/dev/null; then
		kill -KILL "$MGR" 2>/dev/null
		wait "$MGR" 2>/dev/null
		MGR=""
		return 124
	fi
	wait "$MGR"
	rc=$?
	MGR=""
	return $rc
}

fail() {
	M "FAIL $*"
	for f in "$WD"/mgr*.log "$WD"/tools.log; do show_tail "$f"; done
	stop_manager 5 >/dev/null 2>&1
	exit 1
}

# run NAME CMD...: runs CMD with its output in WD/tools.log; FAIL on error.
run() {
	name=$1
	shift
	echo "+ $*" >>"$WD/tools.log"
	timeout "$CMD_S" "$@" >>"$WD/tools.log" 2>&1 || fail "$name ($(why $?): $*)"
}

# start_manager LOG: starts it, waits for its "ready" line; prints the time
# from exec to ready in ms into READY_MS.
start_manager() {
	log=$1
	rm -f "$CTL"
	# The log is emptied here, before the fork: the redirection below is
	# done by the child, later, and until then the loop would read the
	# previous run's log in a reused WD and take its " ready: " for this
	# manager's (a FAIL under load, or a stale PASS).
	: >"$log" || fail "cannot write $log"
	t0=$(now_ms)
	"$BIN/vtpm-service" --role=manager --hal "$HAL" --tcti "$TCTI" \
		--state-dir "$ST" --control "$CTL" --run-dir "$RUN" >"$log" 2>&1 &
	MGR=$!
	end=$((t0 + WAIT_S * 1000))
	while ! grep -q ' ready: ' "$log" 2>/dev/null; do
		if ! kill -0 "$MGR" 2>/dev/null; then
			wait "$MGR"
			rc=$?
			MGR=""
			if grep -q 'not implemented yet' "$log"; then
				fail "--hal $HAL is not implemented yet: the manager refused it" \
					"(exit $rc: $(grep 'not implemented' "$log" | head -n 1))"
			fi
			fail "$STEP: the manager exited with status $rc before it was ready" \
				"($(grep -v '^ ' "$log" | grep -v '^usage' | tail -n 1))"
		fi
		if [ "$(now_ms)" -ge $end ]; then
			fail "$STEP: the manager was not ready within ${WAIT_S}s"
		fi
		sleep 0.01
	done
	READY_MS=$(($(now_ms) - t0))
}

# wait_vtpm U: until the vTPM's socket answers TPM2_GetRandom.
wait_vtpm() {
	sock=$RUN/$1/tpm
	end=$(($(now_ms) + WAIT_S * 1000))
	while :; do
		if [ -S "$sock" ] &&
			TPM2TOOLS_TCTI="swtpm:path=$sock" timeout 10 tpm2_getrandom --hex 4 >/dev/null 2>&1; then
			return 0
		fi
		[ "$(now_ms)" -ge $end ] && fail "$STEP: vTPM $1 did not answer on $sock within ${WAIT_S}s"
		sleep 0.1
	done
}

json_str() { # key: the first "key": "value" of stdin
	sed -n "s/.*\"$1\": *\"\\([^\"]*\\)\".*/\\1/p" | head -n 1
}

# Nothing a previous run left in a reused WD may answer for this one.
rm -rf "$ST" "$RUN"
rm -f "$WD"/mgr1.log "$WD"/mgr2.log "$WD"/nv.in "$WD"/nv1.out "$WD"/nv2.out \
	"$WD"/q1.json "$WD"/q2.json
mkdir -p "$RUN" || fail "mkdir $RUN"
: >"$WD/tools.log"
M "scenario: hal=$HAL tcti=$TCTI"

# ---- 1. first start: a new root key, sealed
STEP="first manager start"
start_manager "$WD/mgr1.log"
SEAL_MS=$READY_MS
grep -q 'new root key sealed' "$WD/mgr1.log" || fail "first start did not seal a new root key"
AK=$(ctl --json status | json_str ak_spki)
[ -n "$AK" ] || fail "vtpmctl status has no ak_spki"
M "manager ready (new root key sealed) in ${SEAL_MS}ms; AK ${AK%"${AK#????????????????}"}..."

# ---- 2. a vTPM, NV written through it
STEP="create/start"
t0=$(now_ms)
U=$(ctl create --domid 1 2>>"$WD/tools.log") || fail "vtpmctl create ($(why $?))"
CREATE_MS=$(($(now_ms) - t0))
[ ${#U} -eq 36 ] || fail "vtpmctl create printed '$U', not a UUID"
t0=$(now_ms)
run "vtpmctl start" "$BIN/vtpmctl" --control "$CTL" start "$U"
wait_vtpm "$U"
START_MS=$(($(now_ms) - t0))
M "vTPM $U created in ${CREATE_MS}ms, serving ${START_MS}ms after start"
PID=$(ctl --json list | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -n 1)
if [ "$(id -u)" = 0 ]; then
	[ -n "$PID" ] && [ -r "/proc/$PID/status" ] || fail "vtpmctl list names no running instance pid"
	IUID=$(sed -n 's/^Uid:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$PID/status")
	[ "$IUID" != 0 ] || fail "the instance (pid $PID) runs as root"
	M "instance pid $PID runs as uid $IUID"
fi

STEP="NV write"
export TPM2TOOLS_TCTI="swtpm:path=$RUN/$U/tpm"
DATA=$(timeout "$CMD_S" tpm2_getrandom --hex 16 2>>"$WD/tools.log") ||
	fail "tpm2_getrandom through the vTPM ($(why $?))"
[ ${#DATA} -eq 32 ] || fail "tpm2_getrandom printed '$DATA'"
printf '%s' "$DATA" >"$WD/nv.in"
run tpm2_nvdefine tpm2_nvdefine "$NV_IDX" -C o -s 32 -a "ownerread|ownerwrite|authread|authwrite"
run tpm2_nvwrite tpm2_nvwrite "$NV_IDX" -C o -i "$WD/nv.in"
run tpm2_nvread tpm2_nvread "$NV_IDX" -C o -s 32 -o "$WD/nv1.out"
cmp -s "$WD/nv.in" "$WD/nv1.out" || fail "NV read back differs before the restart"
M "NV $NV_IDX written through the vTPM: $DATA"

# ---- 3. deep quote
STEP="quote 1"
t0=$(now_ms)
run "vtpmctl quote" "$BIN/vtpmctl" --control "$CTL" quote "$U" --nonce "$NONCE" --out "$WD/q1.json"
QUOTE1_MS=$(($(now_ms) - t0))
V=$(timeout "$CMD_S" "$BIN/vtpmctl" verify-quote "$WD/q1.json" --ak-spki "$AK" 2>&1) ||
	fail "verify-quote q1.json: $V"
M "quote 1 in ${QUOTE1_MS}ms: $(echo "$V" | head -n 1)"

# ---- 4. manager restart: the root key must unseal
STEP="manager stop"
stop_manager
rc=$?
[ $rc -eq 0 ] || fail "the manager exited with status $rc on SIGTERM"
[ -S "$RUN/$U/tpm" ] && fail "the vTPM socket outlived its manager"
M "manager stopped (SIGTERM, exit 0)"

STEP="manager restart"
start_manager "$WD/mgr2.log"
UNSEAL_MS=$READY_MS
grep -q 'root key unsealed by the physical TPM' "$WD/mgr2.log" ||
	fail "the restarted manager did not unseal the root key"
AK2=$(ctl --json status | json_str ak_spki)
[ "$AK2" = "$AK" ] || fail "the attestation key changed across the restart"
M "manager ready again (root key unsealed) in ${UNSEAL_MS}ms"

STEP="vTPM after restart"
wait_vtpm "$U"
run tpm2_nvread tpm2_nvread "$NV_IDX" -C o -s 32 -o "$WD/nv2.out"
cmp -s "$WD/nv.in" "$WD/nv2.out" ||
	fail "NV after the restart reads '$(cat "$WD/nv2.out")', not '$DATA'"
M "NV after the restart: same 32 bytes"

STEP="quote 2"
t0=$(now_ms)
run "vtpmctl quote" "$BIN/vtpmctl" --control "$CTL" quote "$U" --nonce "$NONCE" --out "$WD/q2.json"
QUOTE2_MS=$(($(now_ms) - t0))
V=$(timeout "$CMD_S" "$BIN/vtpmctl" verify-quote "$WD/q2.json" --ak-spki "$AK" 2>&1) ||
	fail "verify-quote q2.json: $V"
M "quote 2 in ${QUOTE2_MS}ms: $(echo "$V" | head -n 1)"

STEP="final stop"
stop_manager
rc=$?
[ $rc -eq 0 ] || fail "the manager exited with status $rc on the final SIGTERM"

M "unseal_ms=$UNSEAL_MS quote_ms=$QUOTE2_MS"
M "times hal=$HAL seal_ms=$SEAL_MS unseal_ms=$UNSEAL_MS create_ms=$CREATE_MS start_ms=$START_MS quote1_ms=$QUOTE1_MS quote2_ms=$QUOTE2_MS"
M "PASS"
exit 0
