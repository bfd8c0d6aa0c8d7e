#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Round trip of TPM2_GetRandom(8) from a Xen PV guest, through kmod's
# vtpm_front against the stock xen-tpmfront, same backend (vtpm-service
# --transport xen-ring), same guest boot: tests/xen-lab/run.sh --guest-kmod
# (--kmod-bench) makes the guest time N round trips with tpmraw -n through
# vtpm_front, unbind + rmmod it, insmod xen-tpmfront and time again, swap
# back, three times over, and once more through vtpm_front at the end.
# Everything runs under QEMU TCG (no KVM here): absolute figures are those
# of an emulated CPU; the ratio is the point.
#
#   run-kmod-bench.sh [--rounds R] [--selftests KERNEL_SRC_DIR]
#
# N = 200 round trips per timing, 3 interleaved cycles per boot (BENCH_N,
# BENCH_CYCLES in tests/xen-lab/guest-kmod.sh).
#
# --selftests also runs the kernel's TPM 2.0 selftests in the first round.
# A benchmark: it fails only when a lab run fails.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=1 N=200 KSRC=""
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=$2; shift 2 ;;
	--selftests) KSRC=$2; shift 2 ;;
	*) echo "usage: $0 [--rounds R] [--selftests KSRC]" >&2; exit 2 ;;
	esac
done
[ -x "$ROOT/build/vtpm-service" ] || { echo "build vtpm-service first (cmake --build build)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/kmodbench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
make -s -C "$ROOT/kmod" O="$WORK/kmod" >"$WORK/kmod.log" 2>&1 || { cat "$WORK/kmod.log"; exit 1; }
BE='umask 077; [ -s /vtpm.key ] || head -c 32 /dev/urandom > /vtpm.key; mkdir -p /var/lib/vtpm; exec vtpm-service --role=instance --domid "$DOMID" --uuid 5c0ba5e4-3b1f-4e8e-9c2a-6f1d2a3b4c5d --transport xen-ring --state-key /vtpm.key --state-dir /var/lib/vtpm'
for r in $(seq "$ROUNDS"); do
	extra=()
	if [ -n "$KSRC" ] && [ "$r" = 1 ]; then
		bash "$ROOT/tests/xen-lab/kmod-selftests-bundle.sh" "$KSRC" "$WORK/tpm2-selftests.tgz" >&2
		extra=(--extra-bin "$WORK/tpm2-selftests.tgz")
	fi
	log=$WORK/lab-$r.log
	echo "== round $r: xen-lab --guest-kmod (N=$N)" >&2
	if ! bash "$ROOT/tests/xen-lab/run.sh" --workdir "$WORK/lab" \
		--qemu-timeout 1500 --extra-bin "$ROOT/build/vtpm-service" \
		"${extra[@]}" --backend-per-domain --full \
		--require-vtpm --guest-kmod "$WORK/kmod/vtpm_front.ko" --kmod-bench \
		--backend-cmd "$BE" >"$log" 2>&1; then
		tail -n 40 "$log"
		echo "FAIL: lab round $r failed (log above)" >&2
		exit 1
	fi
	cp "$WORK/lab/serial.log" "$WORK/serial-$r.log"
	rm -rf "$WORK/lab"
	grep -a '\[guest1\] XENLAB: bench tpmraw' "$WORK/serial-$r.log" | sed 's/.*XENLAB: bench //' \
		>>"$WORK/bench.txt"
	grep -a 'XENLAB: selftests:' "$WORK/serial-$r.log" | sed "s/.*XENLAB: /round $r: /" \
		>>"$WORK/selftests.txt" || true
done
echo "TPM2_GetRandom(8) round trips from the PV guest, N=$N per line, microseconds"
echo "(QEMU TCG, 2 vCPUs; $ROUNDS lab run(s); $(date -u +%F), commit $(git -C "$ROOT" rev-parse --short HEAD))"
printf '%-22s %6s %6s %9s %9s %9s %9s %9s\n' driver n ok min median mean p95 max
sed 's/[a-z0-9_]*=//g' "$WORK/bench.txt" |
	awk '{ printf "%-22s %6s %6s %9s %9s %9s %9s %9s\n", $2, $4, $5, $6, $7, $8, $9, $10 }'
# Per driver: the median of the runs' medians and of their minimums.
awk 'function med(a, n,   i, j, t) {
	     for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
		     t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	     return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
     { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
       d = v["label"] == "xen-tpmfront" ? "s" : "k"
       n[d]++; md[d, n[d]] = v["median_us"]; mn[d, n[d]] = v["min_us"] }
     END {
	     if (!n["s"] || !n["k"]) exit
	     for (d in n) { for (i = 1; i <= n[d]; i++) { x[i] = md[d, i]; y[i] = mn[d, i] }
		     M[d] = med(x, n[d]); m[d] = med(y, n[d]) }
	     printf "median of the medians: xen-tpmfront %.0f us (%d runs), vtpm_front %.0f us (%d runs): %.1fx\n",
		    M["s"], n["s"], M["k"], n["k"], M["s"] / M["k"]
	     printf "median of the minimums: xen-tpmfront %.0f us, vtpm_front %.0f us: %.1fx\n",
		    m["s"], m["k"], m["s"] / m["k"] }' "$WORK/bench.txt"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -s "$WORK/selftests.txt" ] && { echo "kernel TPM 2.0 selftests through vtpm_front:"; cat "$WORK/selftests.txt"; }
exit 0
