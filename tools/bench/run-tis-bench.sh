#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# hal/tis-mmio against hal/tss-device on the same TPM: one QEMU guest
# (TCG) with QEMU's tpm-tis device backed by swtpm; the manager reaches it
# either through our TIS TCTI on /dev/mem (tis-mmio) or through the
# kernel's tpm_tis driver and /dev/tpmrm0 (tss-device).  Runs the two
# interleaved, ROUNDS times each, and prints the medians of one unseal
# (manager start to ready) and one deep quote, and their ratio.
# A benchmark: it fails only when a run fails.
#   run-tis-bench.sh [--bin-dir DIR] [--rounds N]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=$ROOT/build
ROUNDS=3
while [ $# -gt 0 ]; do
	case "$1" in
	--bin-dir) BIN=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	*) echo "usage: $0 [--bin-dir DIR] [--rounds N]" >&2; exit 2 ;;
	esac
done
WORK=$(mktemp -d /tmp/tisbench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
declare -A UNSEAL QUOTE
for r in $(seq "$ROUNDS"); do
	for hal in tis-mmio tss-device-guest; do
		log=$WORK/$hal-$r.log
		if ! bash "$ROOT/tests/e2e/tis-mmio/run.sh" --bin-dir "$BIN" \
			--workdir "$WORK/w" --hal "$hal" >"$log" 2>&1; then
			echo "run-tis-bench: the $hal run failed:" >&2
			grep TISE2E "$log" | tail -5 >&2
			exit 1
		fi
		line=$(grep "TISE2E: times" "$log" | tail -1)
		u=$(sed -E 's/.*unseal_ms=([0-9]+).*/\1/' <<<"$line")
		q1=$(sed -E 's/.*quote1_ms=([0-9]+).*/\1/' <<<"$line")
		q2=$(sed -E 's/.*quote2_ms=([0-9]+).*/\1/' <<<"$line")
		UNSEAL[$hal]+="$u "
		QUOTE[$hal]+="$q1 $q2 "
		echo "run-tis-bench: round $r $hal: unseal ${u} ms, quotes ${q1}/${q2} ms" >&2
	done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ut=$(median <<<"${UNSEAL[tis-mmio]}"); ud=$(median <<<"${UNSEAL[tss-device-guest]}")
qt=$(median <<<"${QUOTE[tis-mmio]}"); qd=$(median <<<"${QUOTE[tss-device-guest]}")
printf '\n%-48s %10s %10s %7s\n' "metric (QEMU TCG guest, swtpm behind tpm-tis)" tis-mmio tss-device ratio
printf '%-48s %10s %10s %6.2fx\n' "one unseal: manager start to ready [ms]" "$ut" "$ud" "$(awk -v a="$ut" -v b="$ud" 'BEGIN{print a/b}')"
printf '%-48s %10s %10s %6.2fx\n' "one deep quote: vtpmctl quote [ms]" "$qt" "$qd" "$(awk -v a="$qt" -v b="$qd" 'BEGIN{print a/b}')"
echo "medians of $ROUNDS rounds (quotes: 2 per round); ratio tis-mmio / tss-device, lower is faster."
echo "Both figures include process start-up and run under TCG emulation."
