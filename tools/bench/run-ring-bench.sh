#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The Xen vTPM ring against the UNIX socket, on real Xen under QEMU (TCG):
# one run of the Xen lab's manager scenario (tests/xen-lab/run.sh
# --host-restart). On the second host boot the guest, with the stock
# xen-tpmfront, times 3 x 500 TPM2_GetRandom(8) round trips through the
# ring (tpmraw -n, tests/xen-lab/tpmraw.c); then dom0, with nothing else running, times the same
# command 3 x 500 times over a vtpm-service UNIX socket. Prints the medians
# of the per-round averages (tpmraw's mean_us) and minimums and the ring/socket ratios.
# A benchmark: it fails only when the run fails.
#   run-ring-bench.sh [--bin-dir DIR]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=$ROOT/build
while [ $# -gt 0 ]; do
	case "$1" in
	--bin-dir) BIN=$2; shift 2 ;;
	*) echo "usage: $0 [--bin-dir DIR]" >&2; exit 2 ;;
	esac
done
WORK=$(mktemp -d /tmp/ringbench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
if ! bash "$ROOT/tests/xen-lab/run.sh" --workdir "$WORK/lab" --qemu-timeout 400 \
	--extra-bin "$BIN/vtpm-service" --extra-bin "$BIN/vtpm-service-manager" \
	--extra-bin "$BIN/vtpmctl" --extra-bin "$ROOT/tests/xen-lab/dom0-manager.sh" \
	--full --require-vtpm --host-tpm --state-disk --host-restart \
	--backend-cmd 'exec dom0-manager.sh' >"$WORK/lab.out" 2>&1; then
	echo "run-ring-bench: the lab run failed:" >&2
	grep -a 'XENLAB: FAIL\|check .* FAIL\|SKIPPED' "$WORK/lab.out" | tail -8 >&2
	cp "$WORK/lab.out" /tmp/ring-bench-lab.out 2>/dev/null &&
		echo "run-ring-bench: its output is in /tmp/ring-bench-lab.out" >&2
	exit 1
fi
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
field() { # KIND NAME: the values of NAME= on the "bench KIND" lines
	grep -a "XENLAB: bench $1:" "$WORK/lab/serial2.log" | sed -E "s/.* $2=([0-9.]+).*/\1/" | tr '\n' ' '
}
RA=$(field ring mean_us | median) RM=$(field ring min_us | median)
UA=$(field unix mean_us | median) UM=$(field unix min_us | median)
[ -n "$RA" ] && [ -n "$UA" ] || { echo "run-ring-bench: no bench lines in the lab's log" >&2; exit 1; }
echo "TPM2_GetRandom(8), 3 x 500 round trips each, medians (us):"
printf '  %-44s avg %8s  min %8s\n' "guest, stock xen-tpmfront, Xen ring" "$RA" "$RM"
printf '  %-44s avg %8s  min %8s\n' "dom0, vtpm-service UNIX socket" "$UA" "$UM"
awk -v ra="$RA" -v ua="$UA" -v rm="$RM" -v um="$UM" \
	'BEGIN { printf "  ring / socket: avg %.1fx, min %.1fx\n", ra / ua, rm / um }'
