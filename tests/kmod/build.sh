#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# build_kmod: builds kmod/ (vtpm_front.ko) out of tree in OUTDIR with W=1
# and fails on any compiler or modpost warning; then runs the kernel's
# checkpatch.pl on the sources when one can be found ($CHECKPATCH, the
# headers or a linux-source tree), failing on its errors and warnings.
#
# Usage: build.sh OUTDIR [KDIR]
set -u
SRC=$(cd "$(dirname "$0")/../../kmod" && pwd)
OUT=${1:?usage: build.sh OUTDIR [KDIR]}
KDIR_ARG=()
[ $# -ge 2 ] && [ -n "$2" ] && KDIR_ARG=("KDIR=$2")

KDIR=$(make -s -C "$SRC" "${KDIR_ARG[@]}" print-kdir)
if [ -z "$KDIR" ] || [ ! -e "$KDIR/Makefile" ]; then
  echo "FAIL: no kernel headers (apt-get install linux-headers-amd64, or pass KDIR)"
  exit 1
fi
echo "== kernel headers: $KDIR"
rm -rf "$OUT"
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
make -C "$SRC" "${KDIR_ARG[@]}" O="$OUT" W=1 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] || { echo "FAIL: make exited $rc"; exit 1; }
[ -s "$OUT/vtpm_front.ko" ] || { echo "FAIL: no $OUT/vtpm_front.ko"; exit 1; }
if grep -Ei '(warning|error):' "$LOG" >/dev/null; then
  echo "FAIL: the build printed warnings:"
  grep -Ei '(warning|error):' "$LOG"
  exit 1
fi
echo "== built $OUT/vtpm_front.ko with W=1, no warnings"

CP=${CHECKPATCH:-}
if [ -z "$CP" ]; then
  for c in "$KDIR/scripts/checkpatch.pl" /usr/src/linux-headers-*/scripts/checkpatch.pl \
           /usr/src/linux-source-*/scripts/checkpatch.pl; do
    [ -f "$c" ] && { CP=$c; break; }
  done
fi
if [ -z "$CP" ]; then
  echo "== checkpatch.pl not found (Debian's headers do not ship it; set CHECKPATCH=" \
       "to scripts/checkpatch.pl of a kernel tree): style not checked"
  exit 0
fi
echo "== $CP --no-tree --strict"
# CamelCase CHECKs come from Xen's own XenbusState* names.
# (from OUT: checkpatch leaves a .checkpatch-camelcase.* cache in its cwd)
(cd "$OUT" && perl "$CP" --no-tree --strict --ignore CAMELCASE -f "$SRC/vtpm_front.c" \
  "$SRC/vtpm_core.h" 2>/dev/null) | tee "$LOG"
if grep -E '^(ERROR|WARNING|CHECK):' "$LOG" >/dev/null; then
  echo "FAIL: checkpatch reported problems"
  exit 1
fi
echo "== checkpatch clean"
