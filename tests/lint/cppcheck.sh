#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# cppcheck over every C source the build compiles, with the include paths
# and defines the build uses: the entries of BUILD/compile_commands.json
# (CMAKE_EXPORT_COMPILE_COMMANDS) whose file is in the source tree, the
# production code (core/, transports/, hal/, tools/vtpmctl.c) and the tests
# alike (a source compiled twice, as core/main.c is, is checked in both
# configurations).
#
#   tests/lint/cppcheck.sh BUILD_DIR [SOURCE_DIR]
#       exit 0 clean, 1 findings (printed) or a check that analysed too
#       little, 2 usage or setup error
#   tests/lint/cppcheck.sh --selftest BUILD_DIR [SOURCE_DIR]
#       copies one source, plants one defect at a time (an out-of-bounds
#       write through a size from a project header, an uninitialized read,
#       a leaked descriptor), runs the same check on the copy and expects
#       each caught; then drops the copy's include paths and expects that
#       caught too (the way this check used to analyse nothing)
#
# Findings are reported, never fixed silently: fix the code, or suppress
# one finding inline (// cppcheck-suppress ID, with the reason), or, for a
# file someone else is changing, in tests/lint/cppcheck-suppressions.txt.
# Settings: --enable=warning,performance,portability,missingInclude, the
# posix, gnu and openssl library configurations and tests/lint/vtpm.cfg
# (what cppcheck cannot see in the system headers, which it does not parse:
# missingIncludeSystem is expected and suppressed).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SELFTEST=0
if [ "${1:-}" = "--selftest" ]; then
	SELFTEST=1
	shift
fi
BUILD=${1:-}
SRC=${2:-$(cd "$HERE/../.." && pwd)}
[ -n "$BUILD" ] || { sed -n '3,/^set /p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2; }
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || { echo "cppcheck.sh: no build dir $1" >&2; exit 2; }
SRC=$(cd "$SRC" && pwd)
CC_JSON=$BUILD/compile_commands.json
[ -s "$CC_JSON" ] || {
	echo "cppcheck.sh: $CC_JSON missing (configure with CMAKE_EXPORT_COMPILE_COMMANDS=ON)" >&2
	exit 2
}
CPPCHECK=${CPPCHECK:-cppcheck}   # ctest passes the one CMake found
command -v "$CPPCHECK" >/dev/null || { echo "cppcheck.sh: $CPPCHECK not installed" >&2; exit 2; }
command -v python3 >/dev/null || { echo "cppcheck.sh: python3 not installed" >&2; exit 2; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# select OUT_JSON [FILE...]: the project's entries (or those of FILEs, as
# paths relative to SRC) into OUT_JSON; prints how many.
select_entries() {
	python3 - "$CC_JSON" "$SRC" "$BUILD" "$@" <<'EOF'
import json, os, sys
cc, src, build, out, only = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
keep = []
for e in json.load(open(cc)):
    path = os.path.join(e["directory"], e["file"])
    f = os.path.relpath(path, src)
    if only:
        ok = f in only
    else:   # in the source tree, not generated into the build tree
        ok = not f.startswith("../") and \
            os.path.relpath(path, build).startswith("../")
    if ok:
        keep.append(e)
json.dump(keep, open(out, "w"), indent=1)
print(len(keep))
EOF
}

# check JSON N LOG: cppcheck on the entries of JSON (N of them); findings
# on stdout; 0 clean, 1 not.
check() {
	local json=$1 n=$2 log=$3 rc checked
	"$CPPCHECK" --project="$json" --error-exitcode=1 --inline-suppr \
		--enable=warning,performance,portability,missingInclude \
		--library=posix --library=gnu --library=openssl \
		--library="$HERE/vtpm.cfg" --suppress=missingIncludeSystem \
		--suppressions-list="$HERE/cppcheck-suppressions.txt" \
		--template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
		>"$log.progress" 2>"$log"
	rc=$?
	cat "$log"
	# A check that cannot fail is a defect: every entry must have been
	# analysed, and every "quoted" include found.
	checked=$(grep -c '^Checking .* \.\.\.$' "$log.progress")
	if [ "$checked" -ne "$n" ]; then
		echo "cppcheck.sh: cppcheck analysed $checked of the $n entries"
		rc=1
	fi
	if grep -q '\[missingInclude\]' "$log"; then
		echo "cppcheck.sh: a project header was not found: the include paths are stale"
		rc=1
	fi
	[ "$rc" = 0 ]
}

if [ "$SELFTEST" = 0 ]; then
	n=$(select_entries "$TMP/cc.json") || exit 2
	# At least the libraries of the layer section of CMakeLists.txt.
	[ "$n" -ge 30 ] || { echo "cppcheck.sh: only $n of the project's sources in $CC_JSON"; exit 1; }
	t0=$(date +%s.%N)
	check "$TMP/cc.json" "$n" "$TMP/out"
	rc=$?
	t=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
	if [ "$rc" = 0 ]; then
		echo "cppcheck.sh: $n sources analysed in ${t}s, no findings"
		exit 0
	fi
	echo "cppcheck.sh: findings in $n sources (${t}s)"
	exit 1
fi

# ---- self-test: the same check on a copy with one planted defect at a time
VICTIM=core/lib/hex.c   # small, stable, and includes a header with a size
[ "$(select_entries "$TMP/one.json" "$VICTIM")" = 1 ] ||
	{ echo "selftest: $VICTIM is not in $CC_JSON"; exit 2; }
mkdir -p "$TMP/copy"
# plant NAME ID CODE [JSON-EDIT]: the copy with CODE appended; expects ID.
fails=0
plant() {
	local name=$1 id=$2 code=$3 edit=${4:-} f="$TMP/copy/hex.c"
	cp "$SRC/$VICTIM" "$f"
	[ -n "$code" ] && printf '\n%s\n' "$code" >>"$f"
	python3 - "$TMP/one.json" "$f" "$edit" >"$TMP/plant.json" <<'EOF'
import json, re, sys
e = json.load(open(sys.argv[1]))
old = e[0]["file"]
e[0]["file"] = sys.argv[2]
e[0]["command"] = e[0]["command"].replace(old, sys.argv[2])
if sys.argv[3] == "no-include-paths":
    e[0]["command"] = re.sub(r" -I\S+", "", e[0]["command"])
json.dump(e, sys.stdout)
EOF
	if check "$TMP/plant.json" 1 "$TMP/plant.out" >"$TMP/plant.res"; then
		echo "selftest: NOT caught: $name"
		fails=$((fails + 1))
	elif [ -n "$id" ] && ! grep -q "hex.c:.*\[$id\]" "$TMP/plant.res"; then
		echo "selftest: $name failed the check, but not as [$id]:"
		sed 's/^/  /' "$TMP/plant.res"
		fails=$((fails + 1))
	else
		echo "selftest: caught $name: $(grep -m1 "\[$id\]\|cppcheck.sh:" "$TMP/plant.res")"
	fi
}
cp "$SRC/$VICTIM" "$TMP/copy/hex.c"
if ! check "$TMP/one.json" 1 "$TMP/clean.out" >"$TMP/clean.res"; then
	echo "selftest: $VICTIM itself does not pass:"; cat "$TMP/clean.res"
	exit 1
fi
plant "an out-of-bounds write (UUID_STR_LEN from lib/hex.h)" arrayIndexOutOfBounds \
	'int planted_oob(void); int planted_oob(void) { char s[UUID_STR_LEN]; s[UUID_STR_LEN] = 0; return s[0]; }'
plant "an uninitialized read" uninitvar \
	'int planted_uninit(int c); int planted_uninit(int c) { int v; if (c) v = 1; return v; }'
plant "a leaked descriptor" resourceLeak \
	'#include <fcntl.h>
int planted_leak(const char *p); int planted_leak(const char *p) { int fd = open(p, O_RDONLY); if (fd < 0) return -1; return 0; }'
plant "the include paths dropped from the build's flags" "" "" no-include-paths
[ "$fails" = 0 ] && echo "selftest: ok" && exit 0
exit 1
