#!/usr/bin/env bash
# run-bench.sh: vtpm-service against swtpm 0.7.1, side by side, in one run.
#
#   tools/bench/run-bench.sh [--vtpm PATH] [--rounds N] [--json FILE] [options]
#
# Starts one swtpm and one vtpm-service (fresh temp state dirs, a generated
# state key), pins them with taskset, and measures interleaved (ABBA order
# per round) with tools/bench/tpmbench:
#   - round trips/s of GetRandom(32), PCR_Extend(16, sha256), NV_Write(32 B)
#     in each CPU layout (default: "cross" = server CPU 1, client CPU 0, and
#     "same" = server and client both on CPU 1); median over rounds
#   - idle memory after the rounds (Private_Clean+Private_Dirty from
#     /proc/PID/smaps_rollup, and Rss), summed over the server's processes
#   - start to first GetRandom response, median of --starts starts each,
#     both into a fresh state dir per start and into an existing state dir
# A benchmark, not a test: slow figures never fail it; errors do.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

VTPM=${VTPM_SERVICE:-}
SWTPM=${SWTPM:-swtpm}
ROUNDS=8
DURATION=0.5
STARTS=20
JSON=""
LAYOUTS="cross,same"
SERVER_CPU=1
CLIENT_CPU=0
TMPBASE=${TMPDIR:-/tmp}
KEEP=0

usage() {
	cat <<EOF
usage: $0 [--vtpm PATH] [--rounds N] [--json FILE] [options]
  --vtpm PATH        vtpm-service binary (default: \$VTPM_SERVICE, build/vtpm-service,
                     or vtpm-service in PATH); for self-checks:
                     --vtpm tools/bench/swtpm-as-vtpm.sh
  --rounds N         interleaved rounds per rate metric (default $ROUNDS)
  --duration SEC     length of one rate measurement (default $DURATION)
  --starts N         starts per server and start mode (default $STARTS)
  --layouts LIST     comma list of cross, same, none (default $LAYOUTS)
                       cross: server on --server-cpu, client on --client-cpu
                       same:  server and client both on --server-cpu
                       none:  nothing pinned (the scheduler decides)
  --server-cpu N     (default $SERVER_CPU)
  --client-cpu N     (default $CLIENT_CPU)
  --tmpdir DIR       where state dirs and sockets go (default \$TMPDIR or /tmp);
                     its file system decides what vtpm-service's fsync costs
  --json FILE        also write the results as JSON
  --swtpm PATH       swtpm binary (default swtpm)
  --keep             keep the work dir (logs, state) for inspection
EOF
}

die() { echo "run-bench: $*" >&2; exit 1; }
note() { echo "run-bench: $*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	--vtpm) VTPM=${2:?}; shift 2 ;;
	--vtpm=*) VTPM=${1#*=}; shift ;;
	--rounds) ROUNDS=${2:?}; shift 2 ;;
	--rounds=*) ROUNDS=${1#*=}; shift ;;
	--duration) DURATION=${2:?}; shift 2 ;;
	--duration=*) DURATION=${1#*=}; shift ;;
	--starts) STARTS=${2:?}; shift 2 ;;
	--starts=*) STARTS=${1#*=}; shift ;;
	--layouts) LAYOUTS=${2:?}; shift 2 ;;
	--layouts=*) LAYOUTS=${1#*=}; shift ;;
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

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "bad --rounds: $ROUNDS"
[[ $STARTS =~ ^[1-9][0-9]*$ ]] || die "bad --starts: $STARTS"
[[ $DURATION =~ ^[0-9]*\.?[0-9]+$ ]] || die "bad --duration: $DURATION"
DURATION=$(awk -v d="$DURATION" 'BEGIN{printf "%g", d}') # also a valid JSON number
for l in ${LAYOUTS//,/ }; do
	case $l in cross|same|none) ;; *) die "bad layout: $l" ;; esac
done

# ---- tools -----------------------------------------------------------------

if [ -z "$VTPM" ]; then
	for c in "$ROOT/build/vtpm-service" "$ROOT/build/src/vtpm-service" "$ROOT/vtpm-service"; do
		[ -x "$c" ] && { VTPM=$c; break; }
	done
	[ -n "$VTPM" ] || VTPM=$(command -v vtpm-service || true)
	[ -n "$VTPM" ] || die "no vtpm-service found; pass --vtpm PATH (self-check: --vtpm $HERE/swtpm-as-vtpm.sh)"
fi
case $VTPM in
*/*) ;;
*) VTPM=$(command -v "$VTPM" || true) ;;
esac
[ -n "$VTPM" ] && [ -f "$VTPM" ] && [ -x "$VTPM" ] || die "--vtpm: not an executable"
VTPM=$(cd "$(dirname "$VTPM")" && pwd)/$(basename "$VTPM")
command -v "$SWTPM" >/dev/null || die "$SWTPM not found (apt-get install swtpm)"
command -v taskset >/dev/null || die "taskset not found (util-linux)"

NCPU=$(nproc)
if [ "$NCPU" -lt 2 ]; then
	note "only $NCPU CPU: server and client share CPU 0, so cross == same"
	SERVER_CPU=0 CLIENT_CPU=0
fi
[ "$SERVER_CPU" -lt "$NCPU" ] && [ "$CLIENT_CPU" -lt "$NCPU" ] || die "CPU numbers beyond $NCPU CPUs"
ALL_CPUS="0-$((NCPU - 1))"

TPMBENCH=$HERE/tpmbench
if [ ! -x "$TPMBENCH" ] || [ "$HERE/tpmbench.c" -nt "$TPMBENCH" ]; then
	note "compiling tpmbench"
	${CC:-cc} -std=c11 -O2 -Wall -Wextra -Werror -o "$TPMBENCH.tmp.$$" "$HERE/tpmbench.c" ||
		die "tpmbench does not compile"
	mv -f "$TPMBENCH.tmp.$$" "$TPMBENCH"
fi

# ---- work dir, key, cleanup ------------------------------------------------

W=$(mktemp -d "$TMPBASE/vtpm-bench.XXXXXX")
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
	for p in "${PIDS[@]}"; do kill_tree "$p"; done
	for p in "${PIDS[@]}"; do
		for i in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		kill -KILL -- "-$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	# kept after an error (logs), not after an interrupt
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

(umask 077; head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' > "$W/state.key")
chmod 600 "$W/state.key"

server_argv() { # NAME SOCK STATEDIR -> ARGV array
	if [ "$1" = swtpm ]; then
		ARGV=("$SWTPM" socket --tpm2 --tpmstate "dir=$3" --server "type=unixio,path=$2"
			--ctrl "type=unixio,path=$2.ctrl" --flags not-need-init,startup-clear)
	else
		ARGV=("$VTPM" --role=instance --domid 1 --transport "unix:$2"
			--state-key "$W/state.key" --state-dir "$3")
	fi
}

show_log() {
	[ -s "$1" ] || return 0
	echo "---- last lines of $1:" >&2
	tail -n 20 "$1" >&2
}

# tpmbench, pinned per layout; any failure ends the run with the logs
bench() { # LAYOUT NAME ARGS...
	local layout=$1 name=$2 out
	shift 2
	local pin=()
	case $layout in
	cross) pin=(taskset -c "$CLIENT_CPU") ;;
	same) pin=(taskset -c "$SERVER_CPU") ;;
	esac
	if ! out=$("${pin[@]}" "$TPMBENCH" "$@" 2>>"$W/tpmbench-$name.log"); then
		show_log "$W/tpmbench-$name.log"
		show_log "$W/$name.log"
		die "tpmbench $* failed against $name"
	fi
	echo "$out"
}

kv() { # KEY LINE -> value
	local k=$1 w
	for w in $2; do [ "${w%%=*}" = "$k" ] && { echo "${w#*=}"; return; }; done
	die "no $k in: $2"
}

# ---- servers ---------------------------------------------------------------

declare -A PID SOCK
for name in swtpm vtpm; do
	SOCK[$name]=$W/$name.sock
	mkdir -p "$W/$name-state"
	server_argv "$name" "${SOCK[$name]}" "$W/$name-state"
	# setsid: own process group (killed as one); taskset pins every thread
	setsid taskset -c "$SERVER_CPU" "${ARGV[@]}" >"$W/$name.log" 2>&1 </dev/null &
	PID[$name]=$!
	PIDS+=("$!")
done
for name in swtpm vtpm; do
	for i in $(seq 200); do # up to 10 s for the socket; fail early if the server died
		[ -S "${SOCK[$name]}" ] && break
		kill -0 "${PID[$name]}" 2>/dev/null || { show_log "$W/$name.log"; die "$name exited at start"; }
		sleep 0.05
	done
	bench cross "$name" -s "${SOCK[$name]}" --connect-wait 1000 ping >/dev/null
	kill -0 "${PID[$name]}" 2>/dev/null || { show_log "$W/$name.log"; die "$name exited after start"; }
done

set_layout() { # LAYOUT: pin the running servers for it
	local mask=$SERVER_CPU name
	[ "$1" = none ] && mask=$ALL_CPUS
	for name in swtpm vtpm; do
		taskset -a -p -c "$mask" "${PID[$name]}" >/dev/null ||
			die "cannot pin $name (pid ${PID[$name]})"
	done
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
BUSY0=$(cpu_busy_pct) # before our servers do anything: other work
[ "$BUSY0" -lt 20 ] || note "warning: the machine is busy ($BUSY0% CPU in use before the run); figures will be noisy"
statefs=$(findmnt -n -o FSTYPE -T "$W" 2>/dev/null || stat -f -c %T "$W")
note "work dir $W (file system: $statefs); swtpm: $("$SWTPM" --version 2>&1 | head -n1)"
note "vtpm-service: $VTPM"
note "$ROUNDS rounds x $DURATION s per rate metric, layouts $LAYOUTS; server CPU $SERVER_CPU, client CPU $CLIENT_CPU"

# ---- rates -----------------------------------------------------------------

declare -A SAMPLES # key "metric|server" -> space-separated samples
add() { SAMPLES[$1|$2]="${SAMPLES[$1|$2]:-}${SAMPLES[$1|$2]:+ }$3"; }

MODES="getrandom pcrextend nvwrite"
t_start=$(date +%s)
for layout in ${LAYOUTS//,/ }; do
	set_layout "$layout"
	for r in $(seq "$ROUNDS"); do
		order="swtpm vtpm"
		[ $((r % 2)) = 0 ] && order="vtpm swtpm"
		for mode in $MODES; do
			for name in $order; do
				line=$(bench "$layout" "$name" -s "${SOCK[$name]}" -d "$DURATION" "$mode")
				rate=$(kv rate "$line")
				p50=$(kv lat_p50_us "$line")
				add "${mode}_$layout" "$name" "$rate"
				add "${mode}_${layout}_p50" "$name" "$p50"
			done
		done
		note "layout $layout: round $r/$ROUNDS done"
	done
done
set_layout cross

# ---- idle memory -----------------------------------------------------------

proc_tree() { # PID -> PID and all its descendants
	local k
	echo "$1"
	for k in $(ps -o pid= --ppid "$1" 2>/dev/null || true); do proc_tree "$k"; done
}
sleep 1 # idle after the warm-up (the rate rounds)
for name in swtpm vtpm; do
	kill -0 "${PID[$name]}" 2>/dev/null || die "$name died during the run"
	priv=0 rss=0 threads=0 nproc=0
	for p in $(proc_tree "${PID[$name]}"); do
		[ -r "/proc/$p/smaps_rollup" ] || continue
		read -r pc pd rs < <(awk '/^Private_Clean:/{c=$2} /^Private_Dirty:/{d=$2}
			/^Rss:/{r=$2} END{print c+0, d+0, r+0}' "/proc/$p/smaps_rollup")
		t=$(awk '/^Threads:/{print $2}' "/proc/$p/status")
		priv=$((priv + pc + pd)) rss=$((rss + rs)) threads=$((threads + t)) nproc=$((nproc + 1))
	done
	add mem_private "$name" "$priv"
	add mem_rss "$name" "$rss"
	add threads "$name" "$threads"
	add processes "$name" "$nproc"
	bytes=$(du -sb "$W/$name-state" | cut -f1)
	add state_bytes "$name" "$bytes"
done

# ---- start to first response -----------------------------------------------

start_once() { # NAME STATEDIR TAG -> appends first_response_ms and connect_ms
	local name=$1 dir=$2 tag=$3 line
	server_argv "$name" "$W/start-$name.sock" "$dir"
	line=$(bench cross "$name" -s "$W/start-$name.sock" --child-cpu "$SERVER_CPU" \
		--connect-wait 10000 start -- "${ARGV[@]}")
	local first conn sent
	first=$(kv first_response_ms "$line")
	conn=$(kv connect_ms "$line")
	sent=$(kv startup_sent "$line")
	add "start_${tag}" "$name" "$first"
	add "connect_${tag}" "$name" "$conn"
	add "startup_sent_${tag}" "$name" "$sent"
}
for name in swtpm vtpm; do # the existing state: one start creates it
	mkdir -p "$W/start-$name-state"
	start_once "$name" "$W/start-$name-state" prime
done
for i in $(seq "$STARTS"); do
	order="swtpm vtpm"
	[ $((i % 2)) = 0 ] && order="vtpm swtpm"
	for name in $order; do
		start_once "$name" "$W/start-$name-state" existing
		mkdir -p "$W/start-fresh/$name-$i"
		start_once "$name" "$W/start-fresh/$name-$i" fresh
	done
done
note "starts done; $(($(date +%s) - t_start)) s since the first round"

# ---- report ----------------------------------------------------------------

median() { tr ' ' '\n' | sort -g | awk '{a[NR]=$1} END{if (NR==0) print "nan";
	else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
jnum() { case $1 in nan|"") echo null ;; *) echo "$1" ;; esac; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "nan" || b == "nan" || b == 0) print "nan";
	else printf "%.2f", a/b }'; }
# Median of the per-pair ratios (the i-th vtpm sample over the i-th swtpm
# sample, measured back to back): cancels load that drifts over the run.
paired_ratio() { # "SWTPM SAMPLES" "VTPM SAMPLES"
	paste -d' ' <(tr ' ' '\n' <<<"$1") <(tr ' ' '\n' <<<"$2") |
		awk '$1 > 0 && $2 != "" {print $2/$1}' | tr '\n' ' ' | sed 's/ $//' | median |
		awk '{ if ($1 == "nan") print "nan"; else printf "%.2f", $1 }'
}
meets() { # RATIO OP LIMIT -> yes/no
	awk -v r="$1" -v op="$2" -v l="$3" 'BEGIN{ if (r == "nan") print "n/a";
		else if ((op == ">=" && r >= l) || (op == "<=" && r <= l)) print "yes"; else print "no" }'
}

ROWS=() # metric key|label|unit|better|target op|target limit|target text|fmt[|json]
# (rows ending in |json go to the JSON file only)
for layout in ${LAYOUTS//,/ }; do
	case $layout in
	cross) where="srv CPU$SERVER_CPU, cli CPU$CLIENT_CPU" ;;
	same) where="srv+cli CPU$SERVER_CPU" ;;
	none) where="unpinned" ;;
	esac
	ROWS+=("getrandom_$layout|GetRandom rate ($where)|ops/s|higher|>=|1.0|>=1.0x (aim 1.2x)|%.0f")
	ROWS+=("pcrextend_$layout|PCR_Extend rate ($where)|ops/s|higher|>=|1.0|>=1.0x (aim 1.2x)|%.0f")
	ROWS+=("nvwrite_$layout|NV_Write rate ($where)*|ops/s|higher|>=|1.0|>=1.0x (aim 1.2x)|%.0f")
	for mode in $MODES; do
		ROWS+=("${mode}_${layout}_p50|$mode median latency ($where)|us|lower|||-|%.1f|json")
	done
done
ROWS+=("start_existing|start to 1st response, existing state|ms|lower|<=|0.5|<=0.5x|%.2f")
ROWS+=("start_fresh|start to 1st response, fresh state|ms|lower|<=|0.5|<=0.5x|%.2f")
ROWS+=("connect_existing|start to accept(), existing state|ms|lower|||-|%.2f")
ROWS+=("mem_private|idle private memory (Private_*)|KiB|lower|<=|1.0|<=1.0x|%.0f")
ROWS+=("mem_rss|idle RSS|KiB|lower|||-|%.0f")
ROWS+=("threads|threads (idle)|n|-|||-|%.0f")
ROWS+=("state_bytes|state dir size after the run|bytes|-|||-|%.0f")

printf '\n%-48s %12s %13s %7s %-7s %-18s %s\n' metric swtpm vtpm-service ratio better target met
json_metrics=""
for row in "${ROWS[@]}"; do
	IFS='|' read -r key label unit better op limit ttext fmt only <<<"$row"
	s=$(median <<<"${SAMPLES[$key|swtpm]}")
	v=$(median <<<"${SAMPLES[$key|vtpm]}")
	rt=$(paired_ratio "${SAMPLES[$key|swtpm]}" "${SAMPLES[$key|vtpm]}")
	rm_=$(ratio "$v" "$s")
	met="-"
	[ -n "$op" ] && met=$(meets "$rt" "$op" "$limit")
	[ "$only" = json ] ||
		printf "%-48s %12s %13s %6sx %-7s %-18s %s\n" "$label [$unit]" "$(printf "$fmt" "$s")" \
			"$(printf "$fmt" "$v")" "$rt" "$better" "$ttext" "$met"
	js=$(tr ' ' ',' <<<"${SAMPLES[$key|swtpm]}")
	jv=$(tr ' ' ',' <<<"${SAMPLES[$key|vtpm]}")
	jt="null"
	[ -n "$op" ] && jt="{\"op\": \"$op\", \"ratio\": $limit, \"met\": $([ "$met" = yes ] && echo true || echo false)}"
	json_metrics+="${json_metrics:+,
}    {\"name\": \"$key\", \"label\": \"$label\", \"unit\": \"$unit\", \"better\": \"$better\", \"swtpm\": $(jnum "$s"), \"vtpm\": $(jnum "$v"), \"ratio\": $(jnum "$rt"), \"ratio_of_medians\": $(jnum "$rm_"), \"target\": $jt, \"samples\": {\"swtpm\": [$js], \"vtpm\": [$jv]}}"
done
cat <<EOF

swtpm, vtpm-service: medians of $ROUNDS rounds x ${DURATION}s (rates) and $STARTS starts each.
ratio: vtpm-service / swtpm, median of the ratios of back-to-back pairs.
Start: fork+exec to first successful GetRandom, child on CPU $SERVER_CPU, client on CPU $CLIENT_CPU;
  "existing" reuses one state dir, "fresh" uses a new empty one per start.
* NV_Write: vtpm-service fsyncs before answering, swtpm does not; state on $statefs.
EOF
echo "Other load: ${BUSY0}% CPU busy just before the run; load average $LOAD0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end."
[ "$BUSY0" -lt 20 ] || echo "WARNING: the machine was busy before the run started; rerun on an idle machine for figures to trust."
sent=$(median <<<"${SAMPLES[startup_sent_existing|vtpm]}")
[ "$sent" = 0 ] || echo "Note: vtpm-service needed TPM2_Startup from the client (counted in its start time)."

if [ -n "$JSON" ]; then
	cat >"$JSON" <<EOF
{
  "tool": "vtpm-service tools/bench/run-bench.sh",
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "config": {"vtpm": "$VTPM", "swtpm": "$("$SWTPM" --version 2>&1 | head -n1)",
    "rounds": $ROUNDS, "duration_s": $DURATION, "starts": $STARTS,
    "layouts": "$LAYOUTS", "server_cpu": $SERVER_CPU, "client_cpu": $CLIENT_CPU,
    "cpus": $NCPU, "state_fs": "$statefs", "kernel": "$(uname -r)",
    "cpu_busy_pct_before": $BUSY0, "loadavg_start": "$LOAD0", "loadavg_end": "$(cut -d' ' -f1-3 /proc/loadavg)"},
  "metrics": [
$json_metrics
  ]
}
EOF
	note "JSON written to $JSON"
fi
