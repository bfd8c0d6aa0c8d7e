# SPDX-License-Identifier: BSD-3-Clause
# Sourced by quickstart.sh and test.sh: installs the Debian 12 packages a
# purpose needs, and nothing when they are all there already.  Recommends
# are not installed, so everything needed is named here: libc6-dev (only a
# Recommends of gcc) and libclang-rt-14-dev (clang's fuzzer and sanitizer
# runtimes, only a Recommends of clang).

DEPS_BUILD="cmake make gcc libc6-dev pkg-config libuv1-dev libtpms-dev libssl-dev
  libinih-dev libsystemd0 libtss2-dev libjson-c-dev libxen-dev libseccomp-dev"
DEPS_RUN="tpm2-tools swtpm swtpm-tools"
DEPS_TEST="libcmocka-dev python3 tpm2-tools swtpm swtpm-tools clang
  libclang-rt-14-dev cppcheck
  qemu-system-x86 busybox-static cpio linux-headers-amd64
  ovmf sbsigntool openssl pesign systemd-boot-efi dosfstools mtools"

deps_install() {
	local want="" p missing=""
	for purpose in "$@"; do
		case "$purpose" in
		build) want="$want $DEPS_BUILD" ;;
		run) want="$want $DEPS_RUN" ;;
		test) want="$want $DEPS_TEST" ;;
		esac
	done
	for p in $want; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "install ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "== installing:$missing"
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
		--no-install-recommends $missing
}
