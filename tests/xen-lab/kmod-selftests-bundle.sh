#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Packs the Linux kernel's TPM 2.0 selftests (tools/testing/selftests/tpm2,
# from a kernel source tree such as Debian's linux-source-6.1) with the
# python3.11 interpreter, the part of its standard library they import and
# the shared libraries of both, into one tar.gz that run.sh --extra-bin
# copies into the xen-lab guest (name it tpm2-selftests.tgz); guest-kmod.sh
# unpacks it in a tmpfs and runs the tests (SmokeTest, SpaceTest,
# AsyncTest) through vtpm_front.
#
# Usage: kmod-selftests-bundle.sh KERNEL_SRC_DIR OUT.tgz
set -eu
KSRC=$1 OUT=$2
ST=$KSRC/tools/testing/selftests/tpm2
PY=/usr/bin/python3.11
[ -f "$ST/tpm2_tests.py" ] || { echo "no $ST/tpm2_tests.py" >&2; exit 1; }
[ -x "$PY" ] || { echo "no $PY (apt-get install python3.11)" >&2; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
R=$W/root
mkdir -p "$R/opt/tpm2-selftests"
cp "$ST"/tpm2.py "$ST"/tpm2_tests.py "$R/opt/tpm2-selftests/"
# What the tests import: the files python -v reports (no TPM needed here).
(cd "$ST" && PYTHONDONTWRITEBYTECODE=1 "$PY" -v -m unittest tpm2_tests.SmokeTest \
  tpm2_tests.SpaceTest tpm2_tests.AsyncTest) >"$W/v.log" 2>&1 || true
grep -oE "/usr/lib/python3\.11/[^ ']*" "$W/v.log" | sort -u >"$W/files"
add() { # FILE: FILE and, for an ELF, every library ldd lists
  local f=$1 l
  [ -e "$R$f" ] && return 0
  install -D -m 644 "$f" "$R$f"
  ldd "$f" 2>/dev/null | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' |
    while read -r l; do [ -e "$R$l" ] || install -D -m 755 "$l" "$R$l"; done
}
while read -r f; do
  case "$f" in
  */__pycache__/*.pyc)
    s=${f%/__pycache__/*}/$(basename "$f" | sed 's/\.cpython-311.*\.pyc$/.py/')
    [ -f "$s" ] && add "$s" ;;
  *.py|*.so) [ -f "$f" ] && add "$f" ;;
  esac
done <"$W/files"
add "$PY"
chmod 755 "$R$PY"
# Landmarks python looks for to find its prefix.
for f in /usr/lib/python3.11/os.py /usr/lib/python3.11/encodings/__init__.py; do add "$f"; done
mkdir -p "$R/usr/lib/python3.11/lib-dynload"
tar -C "$R" -czf "$OUT" .
echo "$OUT: $(tar -tzf "$OUT" | grep -c '\.py$') python files," \
     "$(( $(stat -c %s "$OUT") / 1024 )) KiB"
