#!/usr/bin/env bash
# run-manager-bench.sh: the manager role's costs, measured in one run.
#
#   tools/bench/run-manager-bench.sh [--vtpm PATH] [--json FILE] [options]
#
# swtpm 0.7.1 stands in for the physical TPM (one per manager, as in
# tests/integration/vtpmtest.py). Two managers run side by side, one with
# --counter-interval 0 (an NV counter increment on every commit) and one
# with the default 60 s, each supervising one vTPM; next to them a
# standalone instance (--state-key) and a plain swtpm. It measures:
#   1. NV_Write rate and latency on all four, interleaved per round
#      (a managed write = state slot + SAVEHASHKEY + key store commit
#      [+ NV counter increment when due]); paired ratios
#   2. start to first GetRandom response: "vtpmctl start U" under each
#      manager (LOADHASHKEY, first state write, SAVEHASHKEY) against
#      tpmbench start of a standalone instance and of swtpm
#   3. manager start (exec, unseal, store) until "status" answers
#   4. N vTPMs started at once: instances/s, idle private memory per
#      instance and of the manager
#   5. NV counter increments per hour under a steady NV write load, for
#      the default interval and for --counter-interval 0, against the
#      bound the design enforces
# A benchmark, not a test: slow figures never fail it; errors do.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

VTPM=${VTPM_SERVICE:-}
SWTPM=${SWTPM:-swtpm}
ROUNDS=6
DURATION=0.5
STARTS=10
MGR_STARTS=5
NINST=20
MANY_REPS=3
LOAD_SECS=30
LOAD0_SECS=5
INTERVAL=60
JSON=""
SERVER_CPU=1
CLIENT_CPU=0
TMPBASE=${TMPDIR:-/tmp}
KEEP=0

usage() {
	cat <<EOF
usage: $0 [--vtpm PATH] [--json FILE] [options]
  --vtpm PATH          vtpm-service binary (default: \$VTPM_SERVICE, build/vtpm-service,
                       or vtpm-service in PATH); vtpm-service-manager and vtpmctl
                       must be next to it
  --rounds N           interleaved NV_Write rounds (default $ROUNDS)
  --duration SEC       length of one NV_Write measurement (default $DURATION)
  --starts N           starts per kind for start to first response (default $STARTS)
  --mgr-starts N       manager starts (default $MGR_STARTS)
  --instances N        vTPMs started at once (default $NINST)
  --many-reps N        times they are started at once, stopped in between (default $MANY_REPS)
  --load-secs SEC      steady NV load with the default counter interval (default $LOAD_SECS)
  --load0-secs SEC     steady NV load with --counter-interval 0 (default $LOAD0_SECS)
  --server-cpu N       CPU of every server process (default $SERVER_CPU)
  --client-cpu N       CPU of the measuring clients (default $CLIENT_CPU)
  --tmpdir DIR         where state, stores and sockets go (default \$TMPDIR or /tmp);
                       its file system decides what every fsync costs
  --json FILE          also write the results as JSON
  --swtpm PATH         swtpm binary (default swtpm)
  --keep               keep the work dir (logs, state) for inspection
EOF
}

die() { echo "run-manager-bench: $*" >&2; exit 1; }
note() { echo "run-manager-bench: $*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	--vtpm) VTPM=${2:?}; shift 2 ;;
	--vtpm=*) VTPM=${1#*=}; shift ;;
	--rounds) ROUNDS=${2:?}; shift 2 ;;
	--duration) DURATION=${2:?}; shift 2 ;;
	--starts) STARTS=${2:?}; shift 2 ;;
	--mgr-starts) MGR_STARTS=${2:?}; shift 2 ;;
	--instances) NINST=${2:?}; shift 2 ;;
	--many-reps) MANY_REPS=${2:?}; shift 2 ;;
	--load-secs) LOAD_SECS=${2:?}; shift 2 ;;
	--load0-secs) LOAD0_SECS=${2:?}; shift 2 ;;
	--server-cpu) SERVER_CPU=${2:?}; shift 2 ;;
	--client-cpu) CLIENT_CPU=${2:?}; shift 2 ;;
	--tmpdir) TMPBASE=${2:?}; shift 2 ;;
	--json) JSON=${2:?}; shift 2 ;;
	--json=*) JSON=${1#*=}; shift ;;
	--swtpm) SWTPM=${2:?}; shift 2 ;;
	--keep) KEEP=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done

for v in ROUNDS STARTS MGR_STARTS NINST MANY_REPS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "bad --$(tr 'A-Z_' 'a-z-' <<<"$v"): ${!v}"
done
[ "$NINST" -le 500 ] || die "--instances: at most 500"
for v in DURATION LOAD_SECS LOAD0_SECS; do
	[[ ${!v} =~ ^[0-9]*\.?[0-9]+$ ]] || die "bad ${v,,}: ${!v}"
	printf -v "$v" '%s' "$(awk -v d="${!v}" 'BEGIN{printf "%g", d}')"
done

# ---- tools -----------------------------------------------------------------

if [ -z "$VTPM" ]; then
	for c in "$ROOT/build/vtpm-service" "$ROOT/vtpm-service"; do
		[ -x "$c" ] && { VTPM=$c; break; }
	done
	[ -n "$VTPM" ] || VTPM=$(command -v vtpm-service || true)
	[ -n "$VTPM" ] || die "no vtpm-service found; build it (cmake --build build) or pass --vtpm PATH"
fi
case $VTPM in
*/*) ;;
*) VTPM=$(command -v "$VTPM" || true) ;;
esac
[ -n "$VTPM" ] && [ -f "$VTPM" ] && [ -x "$VTPM" ] || die "--vtpm: not an executable"
VTPM=$(cd "$(dirname "$VTPM")" && pwd)/$(basename "$VTPM")
BINDIR=$(dirname "$VTPM")
VTPMCTL=$BINDIR/vtpmctl
[ -x "$BINDIR/vtpm-service-manager" ] || die "no vtpm-service-manager next to $VTPM"
[ -x "$VTPMCTL" ] || die "no vtpmctl next to $VTPM"
command -v "$SWTPM" >/dev/null || die "$SWTPM not found (apt-get install swtpm)"
command -v taskset >/dev/null || die "taskset not found (util-linux)"

NCPU=$(nproc)
if [ "$NCPU" -lt 2 ]; then
	note "only $NCPU CPU: servers and clients share CPU 0"
	SERVER_CPU=0 CLIENT_CPU=0
fi
[ "$SERVER_CPU" -lt "$NCPU" ] && [ "$CLIENT_CPU" -lt "$NCPU" ] || die "CPU numbers beyond $NCPU CPUs"
ALL_CPUS="0-$((NCPU - 1))"

# ---- work dir, cleanup -----------------------------------------------------

[ -d "$TMPBASE" ] || die "--tmpdir $TMPBASE: no such directory"
W=$(mktemp -d "$TMPBASE/vtpm-mgrbench.XXXXXX")
# As root the manager runs its instances as "nobody": they must get
# through every directory above their own.
chmod 0711 "$W"
# The longest socket path: RUN/UUID/tpm.ctrl within sun_path (108).
[ $(( ${#W} + 60 )) -lt 108 ] || die "work dir path too long for UNIX socket paths: $W"
PIDS=()

kill_tree() { # kill PID, its descendants and its process group
	local pid=$1 kids k
	kids=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
	for k in $kids; do kill_tree "$k"; done
	kill -TERM "$pid" 2>/dev/null || true
	kill -TERM -- "-$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? p i
	trap - EXIT INT TERM
	[ -z "${CLIENT_PID:-}" ] || kill_tree "$CLIENT_PID"
	for p in "${PIDS[@]}"; do kill_tree "$p"; done
	for p in "${PIDS[@]}"; do
		for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		kill -KILL -- "-$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ "$KEEP" = 1 ] || { [ "$rc" != 0 ] && [ "$rc" != 130 ] && [ "$rc" != 143 ]; }; then
		note "work dir kept: $W"
	else
		rm -rf "$W"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget_pid() { # drop a PID we stopped ourselves from the cleanup list
	local p keep=()
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

TPMBENCH=$HERE/tpmbench
if [ ! -x "$TPMBENCH" ] || [ "$HERE/tpmbench.c" -nt "$TPMBENCH" ]; then
	TPMBENCH=$W/tpmbench
	${CC:-cc} -std=c11 -O2 -Wall -Wextra -Werror -o "$TPMBENCH" "$HERE/tpmbench.c" ||
		die "tpmbench does not compile"
fi
MGRBENCH=$W/mgrbench
${CC:-cc} -std=c11 -O2 -Wall -Wextra -Werror -o "$MGRBENCH" "$HERE/mgrbench.c" ||
	die "mgrbench does not compile"

(umask 077; head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' > "$W/state.key")

show_log() {
	[ -s "$1" ] || return 0
	echo "---- last lines of $1:" >&2
	tail -n 20 "$1" >&2
}

kv() { # KEY LINE -> value
	local k=$1 w
	for w in $2; do [ "${w%%=*}" = "$k" ] && { echo "${w#*=}"; return; }; done
	die "no $k in: $2"
}

jget() { # KEY JSON -> the first integer value of "KEY"
	local v
	v=$(tr -d ' \n' <<<"$2" | grep -o "\"$1\":[0-9-]*" | head -n1 | cut -d: -f2)
	[ -n "$v" ] || die "no $1 in: $2"
	echo "$v"
}

now() { date +%s.%N; }

# ---- servers ---------------------------------------------------------------

declare -A PID SOCK CTL RUN LOG UUID

launch() { # NAME ARGV... : in its own session, pinned to the server CPU
	local name=$1
	shift
	LOG[$name]=$W/$name.log
	setsid taskset -c "$SERVER_CPU" "$@" >>"${LOG[$name]}" 2>&1 </dev/null &
	PID[$name]=$!
	PIDS+=("$!")
}

alive() { # NAME
	kill -0 "${PID[$1]}" 2>/dev/null || { show_log "${LOG[$1]}"; die "$1 exited unexpectedly"; }
}

wait_path() { # NAME PATH: until PATH is a socket (10 s)
	local i
	for i in $(seq 200); do
		[ -S "$2" ] && return 0
		alive "$1"
		sleep 0.05
	done
	show_log "${LOG[$1]}"
	die "$1: no socket $2 after 10 s"
}

ctl() { # MANAGER ARGS... -> vtpmctl's stdout; any failure ends the run
	local m=$1 out
	shift
	if ! out=$("$VTPMCTL" --control "${CTL[$m]}" "$@" 2>>"$W/vtpmctl.log"); then
		show_log "$W/vtpmctl.log"
		show_log "${LOG[$m]}"
		die "vtpmctl $* failed against $m"
	fi
	echo "$out"
}

wait_ctl() { # MANAGER: until "vtpmctl status" answers (30 s)
	local i
	for i in $(seq 600); do
		"$VTPMCTL" --control "${CTL[$1]}" status >/dev/null 2>&1 && return 0
		alive "$1"
		sleep 0.05
	done
	show_log "${LOG[$1]}"
	die "$1: no answer to vtpmctl status after 30 s"
}

# Client-side tools, pinned to the client CPU (or not, with CPU "-"); their
# stdout ends up in $OUT. They run in the background and the shell waits
# with "wait", so that a signal reaches the traps at once, not only after a
# 30-s load has finished.
OUT=""
CLIENT_PID=""
run_pinned() { # CPU LOGNAME WHAT CMD...
	local cpu=$1 log=$W/$2.log what=$3 rc=0 n
	shift 3
	local pin=()
	[ "$cpu" = - ] || pin=(taskset -c "$cpu")
	"${pin[@]}" "$@" >"$W/client.out" 2>>"$log" </dev/null &
	CLIENT_PID=$!
	wait "$CLIENT_PID" || rc=$?
	CLIENT_PID=""
	if [ "$rc" != 0 ]; then
		for n in "${!LOG[@]}"; do
			case $n in *-hw) ;; *) show_log "${LOG[$n]}" ;; esac
		done
		show_log "$log"
		die "$what failed"
	fi
	OUT=$(<"$W/client.out")
}
bench() { # NAME ARGS... (tpmbench against server NAME)
	local name=$1
	shift
	run_pinned "$CLIENT_CPU" "tpmbench-$name" "tpmbench $* against $name" "$TPMBENCH" "$@"
}

mgr_argv() { # MANAGER INTERVAL [LOG-LEVEL] -> ARGV
	ARGV=("$VTPM" --role=manager --state-dir "$W/$1/state" --tcti "swtpm:path=$W/$1/hw/s"
		--control "${CTL[$1]}" --run-dir "${RUN[$1]}" --counter-interval "$2"
		--log-level "${3:-info}")
}

stop_mgr() { # MANAGER: SIGTERM, which must end in exit 0
	local rc=0
	kill -TERM "${PID[$1]}"
	wait "${PID[$1]}" || rc=$?
	forget_pid "${PID[$1]}"
	[ "$rc" = 0 ] || { show_log "${LOG[$1]}"; die "manager $1 exited with $rc on SIGTERM"; }
}

hw_start() { # MANAGER: its swtpm "physical TPM"
	mkdir -p "$W/$1/hw"
	launch "$1-hw" "$SWTPM" socket --tpm2 --tpmstate "dir=$W/$1/hw" \
		--server "type=unixio,path=$W/$1/hw/s" --ctrl "type=unixio,path=$W/$1/hw/s.ctrl" \
		--flags not-need-init,startup-clear
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
cpu_busy_pct() { # CPU use of the whole machine over 0.5 s, in percent
	local a b
	a=$(head -n1 /proc/stat)
	sleep 0.5
	b=$(head -n1 /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN{ n = split(a, x); split(b, y); t = 0
		for (i = 2; i <= n; i++) t += y[i] - x[i]
		idle = (y[5] - x[5]) + (y[6] - x[6])
		printf "%.0f", (t > 0 ? 100 * (t - idle) / t : 0) }'
}
BUSY0=$(cpu_busy_pct)
[ "$BUSY0" -lt 20 ] || note "warning: the machine is busy ($BUSY0% CPU in use before the run); figures will be noisy"
statefs=$(findmnt -n -o FSTYPE -T "$W" 2>/dev/null | head -n1 || true)
[ -n "$statefs" ] || statefs=$(stat -f -c %T "$W")
SWTPM_VERSION=$("$SWTPM" --version 2>&1 | head -n1 | grep -o 'version [0-9.]*' | sed 's/^version/swtpm/' || true)
[ -n "$SWTPM_VERSION" ] || SWTPM_VERSION=swtpm
note "work dir $W (file system: $statefs); $SWTPM_VERSION"
note "vtpm-service: $VTPM; servers on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU"
T_START=$(date +%s)
SRC_REV=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)

# swtpm, and a standalone instance (the same command line as run-bench.sh)
SOCK[swtpm]=$W/swtpm.sock
mkdir -p "$W/swtpm-state" "$W/sa-state"
launch swtpm "$SWTPM" socket --tpm2 --tpmstate "dir=$W/swtpm-state" \
	--server "type=unixio,path=${SOCK[swtpm]}" --ctrl "type=unixio,path=${SOCK[swtpm]}.ctrl" \
	--flags not-need-init,startup-clear
SOCK[sa]=$W/sa.sock
launch sa "$VTPM" --role=instance --domid 1 --transport "unix:${SOCK[sa]}" \
	--state-key "$W/state.key" --state-dir "$W/sa-state"

# the two managers, each with its physical TPM, and one vTPM each
declare -A INTERVAL_OF=([m0]=0 [m60]=$INTERVAL)
for m in m0 m60; do
	mkdir -p "$W/$m"
	chmod 0711 "$W/$m"
	CTL[$m]=$W/$m/ctl.sock
	RUN[$m]=$W/$m/run
	hw_start "$m"
done
for m in m0 m60; do
	wait_path "$m-hw" "$W/$m/hw/s"
	mgr_argv "$m" "${INTERVAL_OF[$m]}"
	launch "$m" "${ARGV[@]}"
done
for m in m0 m60; do
	wait_ctl "$m"
	UUID[$m]=$(ctl "$m" create)
	ctl "$m" start "${UUID[$m]}" >/dev/null
	SOCK[$m]=${RUN[$m]}/${UUID[$m]}/tpm
done
for name in swtpm sa m0 m60; do
	bench "$name" -s "${SOCK[$name]}" --connect-wait 10000 ping >/dev/null
done
note "servers up: swtpm, standalone instance, managers with --counter-interval 0 and $INTERVAL"

# ---- samples ---------------------------------------------------------------

declare -A S # "metric|column" -> space-separated samples
add() { S[$1|$2]="${S[$1|$2]:-}${S[$1|$2]:+ }$3"; }

median() { tr ' ' '\n' | awk NF | sort -g | awk '{a[NR]=$1} END{if (NR==0) print "nan";
	else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
minmax() { tr ' ' '\n' | awk NF | sort -g | awk 'NR==1{a=$1} {b=$1} END{print a"|"b}'; }
jnum() { case $1 in nan|"") echo null ;; *) echo "$1" ;; esac; }
jarr() { echo "[$(tr ' ' ',' <<<"$1")]"; }
fmt() { # PRINTF-FORMAT VALUE
	case $2 in nan|"") echo "-" ;; *) printf "$1" "$2" ;; esac
}
calc() { awk "BEGIN{ printf \"%.6g\", $1 }"; }
paired_ratio() { # "DENOMINATOR SAMPLES" "NUMERATOR SAMPLES" -> median of pairwise ratios
	paste -d' ' <(tr ' ' '\n' <<<"$1") <(tr ' ' '\n' <<<"$2") |
		awk '$1 > 0 && $2 != "" {print $2/$1}' | tr '\n' ' ' | median |
		awk '{ if ($1 == "nan") print "nan"; else printf "%.2f", $1 }'
}

private_kib() { # PID -> Private_Clean + Private_Dirty in KiB (one process)
	awk '/^Private_Clean:/{c=$2} /^Private_Dirty:/{d=$2} END{print c+d}' "/proc/$1/smaps_rollup"
}
rss_kib() { awk '/^Rss:/{print $2}' "/proc/$1/smaps_rollup"; }
instance_pid() { # MANAGER UUID -> pid from vtpmctl --json list
	ctl "$1" --json list | tr -d ' \n' | grep -o "\"uuid\":\"$2\"[^}]*" |
		grep -o '"pid":[0-9]*' | cut -d: -f2
}

# ---- 1. NV_Write: SAVEHASHKEY round trip as seen by a write ----------------

COLS="swtpm sa m0 m60"
declare -A ST0
for m in m0 m60; do ST0[$m]=$(ctl "$m" --json status); done
declare -A NVOPS=([m0]=0 [m60]=0)
for r in $(seq "$ROUNDS"); do
	# rotate the order each round, so no server always follows another
	set -- $COLS
	for _ in $(seq $(( (r - 1) % 4 ))); do set -- "${@:2}" "$1"; done
	for name in "$@"; do
		bench "$name" -s "${SOCK[$name]}" -w 20 -d "$DURATION" nvwrite
		line=$OUT
		add nv_rate "$name" "$(kv rate "$line")"
		add nv_p50 "$name" "$(kv lat_p50_us "$line")"
		add nv_p99 "$name" "$(kv lat_p99_us "$line")"
		case $name in m0|m60) NVOPS[$name]=$(( NVOPS[$name] + $(kv ops "$line") + 20 )) ;; esac
	done
	# what one atomic replace costs on this file system, in the same rounds
	run_pinned "$SERVER_CPU" mgrbench "mgrbench atomic" "$MGRBENCH" -d "$W" -n 100 atomic
	line=$OUT
	add atomic_replace_us x "$(kv replace_p50_us "$line")"
	add inplace_us x "$(kv inplace_p50_us "$line")"
	note "NV_Write: round $r/$ROUNDS done"
done
declare -A COMMITS_PER_WRITE INCS_PER_WRITE
for m in m0 m60; do
	st=$(ctl "$m" --json status)
	g=$(( $(jget store_generation "$st") - $(jget store_generation "${ST0[$m]}") ))
	i=$(( $(jget counter_increments "$st") - $(jget counter_increments "${ST0[$m]}") ))
	# each tpmbench run also defines and undefines its index: 2 more writes
	w=$(( NVOPS[$m] + 2 * ROUNDS ))
	COMMITS_PER_WRITE[$m]=$(calc "$g / $w")
	INCS_PER_WRITE[$m]=$(calc "$i / $w")
	add commits_per_write "$m" "${COMMITS_PER_WRITE[$m]}"
	add increments_per_write "$m" "${INCS_PER_WRITE[$m]}"
done

# idle memory after the NV load, the same for all four
sleep 1
for name in swtpm sa; do
	alive "$name"
	add mem_private "$name" "$(private_kib "${PID[$name]}")"
	add mem_rss "$name" "$(rss_kib "${PID[$name]}")"
done
for m in m0 m60; do
	p=$(instance_pid "$m" "${UUID[$m]}")
	[ -n "$p" ] || die "$m: no pid for vTPM ${UUID[$m]}"
	add mem_private "$m" "$(private_kib "$p")"
	add mem_rss "$m" "$(rss_kib "$p")"
done

ATOMIC_US=$(median <<<"${S[atomic_replace_us|x]}")
INPLACE_US=$(median <<<"${S[inplace_us|x]}")
SLOT_BYTES=$(stat -c %s "$W/m60/state/vtpms/${UUID[m60]}/"*.state.[01] 2>/dev/null | sort -n | tail -n1 || echo 0)
STORE_BYTES=$(stat -c %s "$W/m60/state/keystore")
ENTRIES_BYTES=$(stat -c %s "$W/m60/state/instances.json")

# ---- 5. NV counter increments under a steady NV write load -----------------

steady() { # MANAGER SECONDS -> sets INC_K INC_W INC_OPS INC_COMMITS
	local m=$1 secs=$2 st0 st1 t0 t1 line
	st0=$(ctl "$m" --json status)
	t0=$(now)
	bench "$m" -s "${SOCK[$m]}" -w 0 -d "$secs" nvwrite
	line=$OUT
	t1=$(now)
	st1=$(ctl "$m" --json status)
	INC_K=$(( $(jget counter_increments "$st1") - $(jget counter_increments "$st0") ))
	INC_COMMITS=$(( $(jget store_generation "$st1") - $(jget store_generation "$st0") ))
	INC_W=$(calc "$t1 - $t0")
	INC_OPS=$(kv ops "$line")
}
note "steady NV_Write load: ${LOAD_SECS}s under --counter-interval $INTERVAL, ${LOAD0_SECS}s under 0"
steady m60 "$LOAD_SECS"
add incs_window m60 "$INC_K"
add incs_per_hour m60 "$(calc "$INC_K * 3600 / $INC_W")"
add load_window_s m60 "$INC_W"
add load_writes m60 "$INC_OPS"
add load_commits m60 "$INC_COMMITS"
add incs_bound_per_hour m60 "$(calc "3600 / $INTERVAL")"
steady m0 "$LOAD0_SECS"
add incs_window m0 "$INC_K"
add incs_per_hour m0 "$(calc "$INC_K * 3600 / $INC_W")"
add load_window_s m0 "$INC_W"
add load_writes m0 "$INC_OPS"
add load_commits m0 "$INC_COMMITS"

# ---- 2. start to first response: LOADHASHKEY under the manager ------------

# Restart both managers at --log-level debug, which they pass on to their
# instances: those then log how long their start phases took. (Not during
# the NV rounds: the manager logs each commit at that level.) The vTPMs
# come back by themselves (autostart).
for m in m0 m60; do
	stop_mgr "$m"
	mgr_argv "$m" "${INTERVAL_OF[$m]}" debug
	launch "$m" "${ARGV[@]}"
done
for m in m0 m60; do
	wait_ctl "$m"
	bench "$m" -s "${SOCK[$m]}" --connect-wait 10000 ping >/dev/null
done

server_argv() { # swtpm|sa SOCK STATEDIR -> ARGV
	if [ "$1" = swtpm ]; then
		ARGV=("$SWTPM" socket --tpm2 --tpmstate "dir=$3" --server "type=unixio,path=$2"
			--ctrl "type=unixio,path=$2.ctrl" --flags not-need-init,startup-clear)
	else
		ARGV=("$VTPM" --role=instance --domid 2 --transport "unix:$2"
			--state-key "$W/state.key" --state-dir "$3" --log-level debug)
	fi
}
start_once() { # NAME: one start, existing state
	local name=$1 line
	case $name in
	swtpm|sa)
		server_argv "$name" "$W/start-$name.sock" "$W/start-$name-state"
		bench "$name" -s "$W/start-$name.sock" --child-cpu "$SERVER_CPU" \
			--connect-wait 10000 start -- "${ARGV[@]}"
		line=$OUT
		add start "$name" "$(kv first_response_ms "$line")"
		;;
	m0|m60)
		ctl "$name" stop "${UUID[$name]}" >/dev/null
		run_pinned "$CLIENT_CPU" mgrbench "vtpmctl start under $name" "$MGRBENCH" \
			-s "${SOCK[$name]}" --wait 30000 start-wait -- \
			"$VTPMCTL" --control "${CTL[$name]}" start "${UUID[$name]}"
		line=$OUT
		add start "$name" "$(kv first_response_ms "$line")"
		add ctl_start_exit "$name" "$(kv cmd_exit_ms "$line")"
		;;
	esac
}
for name in swtpm sa; do # the existing state: one start creates it
	mkdir -p "$W/start-$name-state"
	server_argv "$name" "$W/start-$name.sock" "$W/start-$name-state"
	bench "$name" -s "$W/start-$name.sock" --connect-wait 10000 start -- "${ARGV[@]}" >/dev/null
done
for i in $(seq "$STARTS"); do
	set -- $COLS
	for _ in $(seq $(( (i - 1) % 4 ))); do set -- "${@:2}" "$1"; done
	for name in "$@"; do start_once "$name"; done
	# what an admin's "vtpmctl ..." costs by itself: exec + one request
	run_pinned "$CLIENT_CPU" mgrbench "vtpmctl status" "$MGRBENCH" exec -- \
		"$VTPMCTL" --control "${CTL[m60]}" status
	line=$OUT
	add ctl_status_exec x "$(kv ms "$line")"
done
note "starts done"
# The instances' own account (--log-level debug) of the last STARTS starts:
# main() to state loaded (standalone: key file, state file, watermark;
# managed: LOADHASHKEY over the link, then the slots) and to listening.
phase_ms() { # LOGFILE FILTER PHASE -> the last STARTS values
	grep -F -- "$2" "$1" | grep -F "start: $3 after" |
		sed -n 's/.* after \([0-9.]*\) ms.*/\1/p' | tail -n "$STARTS" | tr '\n' ' '
}
for name in sa m0 m60; do
	case $name in
	sa) f=$W/tpmbench-sa.log filt="[dom2/" ;;
	*) f=${LOG[$name]} filt="/${UUID[$name]}]" ;;
	esac
	for ph in "state loaded" listening; do
		for v in $(phase_ms "$f" "$filt" "$ph"); do add "inst_${ph// /_}" "$name" "$v"; done
	done
done

# ---- 4. N vTPMs started at once by the supervisor -------------------------

MANY=()
for i in $(seq "$NINST"); do MANY+=("$(ctl m60 create)"); done
# both CPUs for the manager and what it spawns from now on
for p in "${PID[m60]}" "${PID[m60-hw]}"; do
	taskset -a -p -c "$ALL_CPUS" "$p" >/dev/null || die "cannot unpin pid $p"
done
stop_many() { # UUID...: all at once, as many "vtpmctl stop" in parallel
	local u p stops=()
	for u in "$@"; do
		"$VTPMCTL" --control "${CTL[m60]}" stop "$u" >/dev/null 2>>"$W/vtpmctl.log" &
		stops+=("$!")
	done
	for p in "${stops[@]}"; do
		wait "$p" || { show_log "$W/vtpmctl.log"; die "vtpmctl stop failed"; }
	done
}
for rep in $(seq "$MANY_REPS"); do
	[ "$rep" = 1 ] || stop_many "${MANY[@]}"
	run_pinned - mgrbench "start-all" "$MGRBENCH" -c "${CTL[m60]}" -r "${RUN[m60]}" \
		--wait 60000 start-all "${MANY[@]}"
	line=$OUT
	add many_all_ms x "$(kv all_ms "$line")"
	add many_per_s x "$(kv per_sec "$line")"
	add many_p50_ms x "$(kv p50_ms "$line")"
	add many_first_ms x "$(kv first_ms "$line")"
	add many_ctl_ms x "$(kv ctl_all_ms "$line")"
done
MANY_STATE="1 s after a start from existing state"
[ "$MANY_REPS" -gt 1 ] || MANY_STATE="1 s after the first start (new TPM)"
sleep 1
list=$(ctl m60 --json list | tr -d ' \n')
sum=0
for u in "${MANY[@]}"; do
	p=$(grep -o "\"uuid\":\"$u\"[^}]*" <<<"$list" | grep -o '"pid":[0-9]*' | cut -d: -f2)
	[ -n "$p" ] || die "vTPM $u has no pid after start-all"
	v=$(private_kib "$p")
	add many_mem_private x "$v"
	add many_mem_rss x "$(rss_kib "$p")"
	sum=$((sum + v))
done
add many_mem_private_sum x "$sum"
alive m60
add mgr_mem_private x "$(private_kib "${PID[m60]}")"
add mgr_mem_rss x "$(rss_kib "${PID[m60]}")"
note "$NINST vTPMs started ($MANY_REPS times); stopping them"
stop_many "${MANY[@]}" "${UUID[m60]}"

# ---- 3. manager start (one unseal) to ready --------------------------------

stop_mgr m60
mgr_argv m60 "$INTERVAL"
for i in $(seq "$MGR_STARTS"); do
	run_pinned "$CLIENT_CPU" "mgr-start" "manager start" "$MGRBENCH" -c "${CTL[m60]}" \
		--child-cpu "$SERVER_CPU" --wait 30000 mgr-start -- "${ARGV[@]}"
	line=$OUT
	add mgr_ready_ms x "$(kv ready_ms "$line")"
	add mgr_accept_ms x "$(kv accept_ms "$line")"
	add mgr_stop_ms x "$(kv stop_ms "$line")"
	MGR_VTPMS=$(kv vtpms "$line")
done
T_ALL=$(( $(date +%s) - T_START ))
note "done in ${T_ALL}s"

# ---- report ----------------------------------------------------------------

med() { median <<<"${S[$1|$2]:-}"; }

echo
echo "Side by side (servers on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU; state on $statefs):"
printf '%-42s %9s %10s %9s %9s %8s %8s %9s\n' metric swtpm standalone "mgr ci=0" "mgr ci=$INTERVAL" \
	"ci0/sa" "ci$INTERVAL/sa" "ci$INTERVAL/sw"
JROWS=""
row1() { # KEY LABEL UNIT FMT
	local key=$1 label=$2 unit=$3 f=$4 c vals=() js="" jv=""
	for c in $COLS; do
		vals+=("$(med "$key" "$c")")
	done
	local r0 r60 rs
	r0=$(paired_ratio "${S[$key|sa]:-}" "${S[$key|m0]:-}")
	r60=$(paired_ratio "${S[$key|sa]:-}" "${S[$key|m60]:-}")
	rs=$(paired_ratio "${S[$key|swtpm]:-}" "${S[$key|m60]:-}")
	printf '%-42s %9s %10s %9s %9s %8s %8s %9s\n' "$label [$unit]" "$(fmt "$f" "${vals[0]}")" \
		"$(fmt "$f" "${vals[1]}")" "$(fmt "$f" "${vals[2]}")" "$(fmt "$f" "${vals[3]}")" \
		"$(fmt %sx "$r0")" "$(fmt %sx "$r60")" "$(fmt %sx "$rs")"
	jv="\"swtpm\": $(jnum "${vals[0]}"), \"standalone\": $(jnum "${vals[1]}"), \"managed_ci0\": $(jnum "${vals[2]}"), \"managed_ci$INTERVAL\": $(jnum "${vals[3]}")"
	js="\"swtpm\": $(jarr "${S[$key|swtpm]:-}"), \"standalone\": $(jarr "${S[$key|sa]:-}"), \"managed_ci0\": $(jarr "${S[$key|m0]:-}"), \"managed_ci$INTERVAL\": $(jarr "${S[$key|m60]:-}")"
	JROWS+="${JROWS:+,
}    {\"name\": \"$key\", \"label\": \"$label\", \"unit\": \"$unit\", \"values\": {$jv}, \"ratios\": {\"managed_ci0/standalone\": $(jnum "$r0"), \"managed_ci$INTERVAL/standalone\": $(jnum "$r60"), \"managed_ci$INTERVAL/swtpm\": $(jnum "$rs")}, \"samples\": {$js}}"
}
row1 nv_rate "NV_Write rate" "ops/s" "%.0f"
row1 nv_p50 "NV_Write median latency" "us" "%.0f"
row1 nv_p99 "NV_Write p99 latency" "us" "%.0f"
row1 start "start to 1st GetRandom response" "ms" "%.2f"
row1 inst_state_loaded "  instance main() to state loaded" "ms" "%.2f"
row1 inst_listening "  instance main() to listening" "ms" "%.2f"
row1 mem_private "idle private memory after NV load" "KiB" "%.0f"
row1 mem_rss "idle RSS after NV load" "KiB" "%.0f"

echo
echo "Manager:"
printf '%-54s %10s   %s\n' metric value detail
row2() { # KEY COLUMN LABEL UNIT FMT DETAIL
	local key=$1 col=$2 label=$3 unit=$4 f=$5 detail=$6 v mm
	v=$(med "$key" "$col")
	printf '%-54s %10s   %s\n' "$label [$unit]" "$(fmt "$f" "$v")" "$detail"
	JROWS+="${JROWS:+,
}    {\"name\": \"${key}_$col\", \"label\": \"$label\", \"unit\": \"$unit\", \"value\": $(jnum "$v"), \"detail\": \"$detail\", \"samples\": $(jarr "${S[$key|$col]:-}")}"
}
range() { # KEY COLUMN FMT -> "min..max"
	local mm
	mm=$(minmax <<<"${S[$1|$2]:-}")
	echo "$(fmt "$3" "${mm%|*}")..$(fmt "$3" "${mm#*|}")"
}
row2 ctl_start_exit m0 "vtpmctl start returns, ci=0" ms "%.2f" \
	"median of $STARTS; after its commit (with NV increment)"
row2 ctl_start_exit m60 "vtpmctl start returns, ci=$INTERVAL" ms "%.2f" "median of $STARTS; after its commit"
row2 ctl_status_exec x "vtpmctl status: exec to exit" ms "%.2f" \
	"median of $STARTS; the exec share of the vtpmctl figures"
row2 commits_per_write m0 "key store commits per NV write, ci=0" "n" "%.3f" "in the NV_Write rounds (one writer)"
row2 commits_per_write m60 "key store commits per NV write, ci=$INTERVAL" "n" "%.3f" "in the NV_Write rounds (one writer)"
row2 increments_per_write m0 "NV counter increments per NV write, ci=0" "n" "%.3f" "in the NV_Write rounds"
row2 increments_per_write m60 "NV counter increments per NV write, ci=$INTERVAL" "n" "%.4f" "in the NV_Write rounds"
row2 mgr_ready_ms x "manager exec to status answered (one unseal)" ms "%.1f" \
	"median of $MGR_STARTS ($(range mgr_ready_ms x %.1f)); store of $MGR_VTPMS vTPMs, none autostarting"
row2 mgr_accept_ms x "manager exec to control socket accept()" ms "%.1f" "median of $MGR_STARTS"
row2 mgr_stop_ms x "manager SIGTERM to exit" ms "%.1f" "median of $MGR_STARTS; final commit + NV increment"
row2 many_all_ms x "$NINST vTPMs: start all to all answering" ms "%.0f" \
	"median of $MANY_REPS ($(range many_all_ms x %.0f)); all sent at once; unpinned"
row2 many_per_s x "  instances started per second" "1/s" "%.1f" "$NINST / the time above"
row2 many_first_ms x "  first vTPM answering" ms "%.1f" ""
row2 many_p50_ms x "  median vTPM answering" ms "%.1f" ""
row2 many_ctl_ms x "  all $NINST control answers back" ms "%.1f" "each waits for a (shared) commit"
row2 many_mem_private x "idle private memory per managed instance" KiB "%.0f" \
	"$MANY_STATE; median of $NINST ($(range many_mem_private x %.0f)); sum $(med many_mem_private_sum x) KiB"
row2 many_mem_rss x "idle RSS per managed instance" KiB "%.0f" "$MANY_STATE; median of $NINST"
row2 mgr_mem_private x "idle private memory of the manager process" KiB "%.0f" \
	"$((NINST + 1)) vTPMs running; RSS $(med mgr_mem_rss x) KiB"
row2 incs_per_hour m60 "NV counter increments/hour, ci=$INTERVAL, NV load" "1/h" "%.0f" \
	"$(med incs_window m60) in $(fmt %.1f "$(med load_window_s m60)") s ($(med load_writes m60) writes, $(med load_commits m60) commits), extrapolated"
row2 incs_bound_per_hour m60 "  bound: 3600/interval + 1 per create/delete/stop" "1/h" "%.0f" \
	"<= 1 timed increment per ${INTERVAL} s, however many commits"
row2 incs_per_hour m0 "NV counter increments/hour, ci=0, NV load" "1/h" "%.0f" \
	"$(med incs_window m0) in $(fmt %.1f "$(med load_window_s m0)") s ($(med load_writes m0) writes), extrapolated; no bound"
row2 atomic_replace_us x "atomic replace, 4 KiB, on $statefs" us "%.0f" \
	"write+fdatasync+rename+dir fsync; median of $ROUNDS x p50 of 100"
row2 inplace_us x "in-place write, 4 KiB, on $statefs" us "%.0f" \
	"pwrite into a preallocated file + fdatasync (the key store's slots); median of $ROUNDS x p50 of 100"

sa50=$(med nv_p50 sa) m6050=$(med nv_p50 m60) m050=$(med nv_p50 m0)
cat <<EOF

Where a managed NV_Write's time goes (medians): standalone $(fmt %.0f "$sa50") us = TPM work + one
in-place write of a slot of the ${SLOT_BYTES}-byte state file (pwrite + fdatasync, ~$(fmt %.0f "$INPLACE_US") us here).
Under the manager with ci=$INTERVAL: $(fmt %+.0f "$(calc "$m6050 - $sa50")") us: the answer waits for the slot and for the send
of SAVEHASHKEY; the manager's commit (one in-place write of a key store slot, file ${STORE_BYTES} B, ~$(fmt %.0f "$INPLACE_US") us)
runs while the client sends its next command, and the next write's SAVEHASHKEY waits for it (TRAIL).
ci=0: another +$(fmt %.0f "$(calc "$m050 - $m6050")") us = the answer waits for the commit, the link round trip and
TPM2_NV_Increment on the physical TPM (here swtpm via tpm2-tss).

ci=N: vtpm-service --role=manager --counter-interval N; sa: standalone --role=instance --state-key.
Ratios: median of the ratios of samples taken in the same round (NV_Write: $ROUNDS rounds x ${DURATION}s,
order rotated per round; start: $STARTS starts each). Start: swtpm and standalone by tpmbench start
(fork+exec, existing state); managed: fork+exec "vtpmctl start U" (after "vtpmctl stop U") until
RUN/U/tpm answers GetRandom: LOADHASHKEY, engine start, first state write + SAVEHASHKEY + commit.
Increments/hour: a window shorter than the interval holds 0 or 1 timed increments, so its
extrapolation reads 0 or ~$(fmt %.0f "$(calc "3600 / $LOAD_SECS")")/h; under continuous load the long-run rate is the bound.
Physical TPM: $SWTPM_VERSION, one per manager. Source tree $SRC_REV. Run took ${T_ALL}s.
EOF
echo "Other load: ${BUSY0}% CPU busy just before the run; load average $LOAD0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end."
[ "$BUSY0" -lt 20 ] || echo "WARNING: the machine was busy before the run started; rerun on an idle machine for figures to trust."

if [ -n "$JSON" ]; then
	cat >"$JSON" <<EOF
{
  "tool": "vtpm-service tools/bench/run-manager-bench.sh",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "config": {"vtpm": "$VTPM", "source": "$SRC_REV", "swtpm": "$SWTPM_VERSION",
    "rounds": $ROUNDS, "duration_s": $DURATION, "starts": $STARTS, "mgr_starts": $MGR_STARTS,
    "instances": $NINST, "many_reps": $MANY_REPS, "load_secs": $LOAD_SECS, "load0_secs": $LOAD0_SECS,
    "counter_interval_s": $INTERVAL, "server_cpu": $SERVER_CPU, "client_cpu": $CLIENT_CPU,
    "cpus": $NCPU, "state_fs": "$statefs", "kernel": "$(uname -r)", "euid": $(id -u),
    "state_slot_bytes": $SLOT_BYTES, "keystore_bytes": $STORE_BYTES, "instances_json_bytes": $ENTRIES_BYTES,
    "run_s": $T_ALL, "cpu_busy_pct_before": $BUSY0,
    "loadavg_start": "$LOAD0", "loadavg_end": "$(cut -d' ' -f1-3 /proc/loadavg)"},
  "metrics": [
$JROWS
  ]
}
EOF
	note "JSON written to $JSON"
fi
