#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Installs what is missing, builds, and runs every test through ctest:
#   build/       gcc -Werror: unit, integration (real tpm2-tools, swtpm,
#                swtpm_ioctl) and end to end (QEMU guest on a vTPM)
#   build-asan/  the unit and integration suites under ASan + UBSan
#   build-fuzz/  clang libFuzzer targets, VTPM_FUZZ_SECONDS each (20)
#   build-release/  built only: -O3 (Release) with -Werror, whose warnings
#                the default RelWithDebInfo build does not show
# Ends with one line: "total: N passed, M failed[, K skipped]".
set -uo pipefail
cd "$(dirname "$0")/.."
. tools/deps.sh
deps_install build test || exit 1

JOBS=$(nproc)
PASSED=0 FAILED=0 SKIPPED=0 BROKEN=0

build() { # name builddir -- cmake-args; a failure counts as BROKEN
	local name=$1 dir=$2
	shift 2
	echo "== $name: configure and build ($dir)"
	if ! cmake -S . -B "$dir" "$@" >"$dir.cmake.log" 2>&1; then
		cat "$dir.cmake.log"; BROKEN=$((BROKEN + 1)); return 1
	fi
	if ! cmake --build "$dir" -j"$JOBS" >"$dir.build.log" 2>&1; then
		tail -50 "$dir.build.log"; BROKEN=$((BROKEN + 1)); return 1
	fi
}

suite() { # name builddir ctest-args -- cmake-args
	local name=$1 dir=$2 ctargs=$3
	shift 3
	build "$name" "$dir" "$@" || return
	echo "== $name: ctest $ctargs"
	local out
	out=$(cd "$dir" && ctest --output-on-failure -j2 $ctargs 2>&1)
	echo "$out"
	local line total failed skipped
	line=$(echo "$out" | grep -E 'tests passed, [0-9]+ tests? failed out of' | tail -1)
	if [ -z "$line" ]; then
		BROKEN=$((BROKEN + 1)); return
	fi
	total=$(echo "$line" | sed -E 's/.*out of ([0-9]+).*/\1/')
	failed=$(echo "$line" | sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/')
	skipped=$(echo "$out" | grep -cE '\*\*\*Skipped|Not Run' || true)
	PASSED=$((PASSED + total - failed - skipped))
	FAILED=$((FAILED + failed))
	SKIPPED=$((SKIPPED + skipped))
}

suite "main" build "" -DVTPM_WERROR=ON -DVTPM_TESTS=ON -DVTPM_SANITIZE=OFF
# integ_hostile checks the instance's sandbox, which the sanitizer build
# leaves off (LeakSanitizer needs /proc and ptrace at exit): main runs it.
suite "asan+ubsan" build-asan "-L unit|integration -E ^integ_hostile$" -DVTPM_SANITIZE=ON -DVTPM_TESTS=ON
suite "fuzz" build-fuzz "" -DCMAKE_C_COMPILER=clang -DVTPM_FUZZ=ON \
	-DVTPM_TESTS=OFF -DVTPM_FUZZ_SECONDS="${VTPM_FUZZ_SECONDS:-20}"

# Built, not run: an operator's Release build must compile cleanly too.
build "release" build-release -DCMAKE_BUILD_TYPE=Release -DVTPM_WERROR=ON \
	-DVTPM_TESTS=OFF && echo "== release: built"

FAILED=$((FAILED + BROKEN))
if [ "$SKIPPED" -gt 0 ]; then
	echo "total: $PASSED passed, $FAILED failed, $SKIPPED skipped"
else
	echo "total: $PASSED passed, $FAILED failed"
fi
[ "$FAILED" -eq 0 ]
