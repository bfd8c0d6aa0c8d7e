#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Xen lab: boots a real Xen 4.17 hypervisor, a Debian dom0 and a PV guest
# inside QEMU (TCG) and drives `xl create` from dom0's /init.
#
# Usage:
#   run.sh [--workdir DIR] [--cache-dir DIR] [--backend-cmd 'CMD']
#          [--extra-bin PATH]... [--guest-cmd 'CMD'] [--require-vtpm]
#          [--vtpm-uuid UUID] [--qemu-timeout SECS] [--keep]
#          [--full] [--backend-per-domain] [--dom0-check 'CMD']
#          [--guest-kmod PATH.ko [--kmod-bench]] [--saverestore]
#          [--host-tpm] [--state-disk] [--host-restart] [--chain]
#
# Phases run by dom0's /init:
#   1. `xl create` of guest1 (PV, 256 MB) WITHOUT a vtpm line; the guest
#      prints "XENLAB: guest up", which dom0 reads from xenconsoled's log.
#   2. `xl create` of guest1 WITH vtpm=["backend=0,uuid=UUID"]. Without
#      --backend-cmd this reports what xl does when no backend answers
#      ("XENLAB: vtpm-without-backend: ..."); with it, the guest loads the
#      stock xen-tpmfront, waits for /dev/tpm0, sends TPM2_GetRandom and
#      runs --guest-cmd ("XENLAB: vtpm-with-backend: ok|FAIL ...").
#   Both phases print the xenstore nodes under /local/domain/0/backend/vtpm.
#
# --backend-cmd CMD  shell command run by dom0 (sh -c, in the background,
#                    output prefixed "[backend] ") after Xen's userspace is
#                    up and before the first `xl create`.
# --extra-bin PATH   copy PATH (and every library ldd lists for it) into
#                    /usr/local/bin of dom0 AND of the guest; repeatable.
# --guest-cmd CMD    shell command the guest runs (sh -c) once /dev/tpm0 is
#                    there in phase 2; a non-zero status fails phase 2.
# --require-vtpm     PASS also needs phase 2 to end in "vtpm-with-backend: ok"
#                    (and, with --full, every "XENLAB: check NAME" to be ok).
# --full             phase 2 goes on (needs --backend-cmd; compiles tpmraw.c):
#                    PCR_Extend/PCR_Read of PCR 16, NV_DefineSpace/Write/Read
#                    through /dev/tpm0; guest reboot (NV kept, PCR 16 reset);
#                    xl vtpm-detach + vtpm-attach (NV still there).
# --backend-per-domain  run --backend-cmd once per guest domain that gets a
#                    backend/vtpm/<domid> node, with $DOMID set, and stop it
#                    (SIGTERM to its session) once that domain is gone. A
#                    rebooted guest is a new domain with a new domid.
# --host-tpm         give dom0 a physical TPM: QEMU's tpm-tis backed by a
#                    swtpm on the host (dom0's built-in tpm_tis driver makes
#                    /dev/tpmrm0); its state lives for the whole run.
# --state-disk       give dom0 a disk (virtio-blk, ext4) mounted on
#                    /var/lib/vtpm before --backend-cmd starts; it lives
#                    for the whole run.
# --host-restart     after the first boot (needs --full, --host-tpm and
#                    --state-disk), power the host off and boot it again
#                    with the same disk and TPM: the guest's vTPM must come
#                    back with its NV data (checks host2-*).
# --chain            the three-domain chain instead of the phases above
#                    (needs --full, --host-tpm, --state-disk and a manager
#                    as --backend-cmd): an instance domain (vtpmdom, with a
#                    disk) takes its key from the manager over a Xen ring
#                    and serves guest1's vTPM over another; guest1 runs raw
#                    TPM 2.0, tpm2-tools and xl save/restore checks; vtpmdom
#                    is destroyed and created again; guest1 finds its NV (chain-*).
# --mgrdom          the whole seed chain, each part in a domain of its own
#                    (needs --full and --host-tpm, no --backend-cmd): a
#                    manager domain (mgrdom: iomem fed40-fed44, e820_host,
#                    its own disk) runs the manager with --hal tis-mmio
#                    through the TPM's mapped pages; dom0's kernel does not
#                    bind the TPM (initcall_blacklist=init_tis) and cannot
#                    read /dev/mem (lockdown=integrity); vtpmdom's link has
#                    backend=mgrdom; guest1 (stock xen-tpmfront) does NV and
#                    PCR work; a deep quote of guest1's vTPM is verified;
#                    all three domains are destroyed, mgrdom re-created
#                    unseals the root key again through the TIS pages, and
#                    guest1 finds its NV data (checks mgrdom-*, chain*).
# --dom0-check CMD   shell command dom0 runs (sh -c) once Xen's userspace
#                    is up, before any backend or guest; PASS then also
#                    needs it to exit 0 ("XENLAB: check dom0-check ok").
#                    Its output is prefixed "[dom0-check] ".
# --guest-kmod KO    (with --full) the guest loads KO (kmod/'s vtpm_front.ko)
#                    instead of xen-tpmfront; guest-kmod.sh and dom0-kmod.sh
#                    add tpm2-tools, hwrng, big-command, reload, benchmark
#                    and xl save/restore checks (see README.md).
# --kmod-bench       (with --guest-kmod) time both drivers: the unload and
#                    reload repeat BENCH_CYCLES times, tpmraw -n timing
#                    vtpm_front and xen-tpmfront in turn ("XENLAB: bench
#                    tpmraw ..." lines; tools/bench/run-kmod-bench.sh).
# --saverestore      (with --full) after vtpm-detach/attach: PCR 16 sealed,
#                    xl save + restore, xl migrate localhost, xl destroy +
#                    create (guest-/dom0-saverestore.sh, README.md).
# --cache-dir DIR    extracted packages (default /var/cache/vtpm-tests, or
#                    $VTPM_E2E_CACHE; shared with tests/e2e/qemu-tpmdev).
#
# Exit: 0 PASS, 1 FAIL, 2 usage error, 77 SKIPPED (QEMU/Xen cannot run here).
set -u
set -o pipefail

WORKDIR=""
CACHE_DIR="${VTPM_E2E_CACHE:-}"
BACKEND_CMD=""
GUEST_CMD=""
EXTRA_BINS=()
REQUIRE_VTPM=0
VTPM_UUID=5c0ba5e4-3b1f-4e8e-9c2a-6f1d2a3b4c5d
VTPM12_UUID=7d1c6a2e-0b5f-4f7e-8a1d-3c2b1a0f9e8d   # the TPM 1.2 one (--host-restart)
QEMU_TIMEOUT=300
KEEP=0
FULL=0
BACKEND_PER_DOMAIN=0
HOST_TPM=0
STATE_DISK=0
HOST_RESTART=0
CHAIN=0
CHAIN_UUID=3e0c5a7b-9d1f-4c2e-8b6a-5f4e3d2c1b0a   # the vTPM of --chain
MGRDOM=0
DOM0_CHECK=""
GUEST_KMOD=""
KMOD_BENCH=0
SAVERESTORE=0
GUEST_MEM=256
RESULT=1   # 0 pass, 1 fail, 77 skipped

XEN_VER=4.17
XEN_LIBEXEC=/usr/lib/xen-$XEN_VER/bin
# virtio and ext4: the --state-disk (loaded always: they cost nothing).
DOM0_MODULES="xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs virtio_pci virtio_blk ext4 crc32c_generic xen-blkback"
# The instance domain of --chain: its Xen devices and its disk.
IDOM_MODULES="xen-evtchn xen-gntdev xen-gntalloc xen-blkfront ext4 crc32c_generic"
GUEST_MODULES="xen-tpmfront"

usage() { sed -n '3,88p' "$0" | sed 's/^# \{0,1\}//'; }

need_arg() { [ $# -ge 2 ] || { echo "run.sh: $1 needs an argument" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case "$1" in
    --workdir) need_arg "$@"; WORKDIR=$2; shift 2 ;;
    --workdir=*) WORKDIR=${1#*=}; shift ;;
    --cache-dir) need_arg "$@"; CACHE_DIR=$2; shift 2 ;;
    --cache-dir=*) CACHE_DIR=${1#*=}; shift ;;
    --backend-cmd) need_arg "$@"; BACKEND_CMD=$2; shift 2 ;;
    --backend-cmd=*) BACKEND_CMD=${1#*=}; shift ;;
    --guest-cmd) need_arg "$@"; GUEST_CMD=$2; shift 2 ;;
    --guest-cmd=*) GUEST_CMD=${1#*=}; shift ;;
    --extra-bin) need_arg "$@"; EXTRA_BINS+=("$2"); shift 2 ;;
    --extra-bin=*) EXTRA_BINS+=("${1#*=}"); shift ;;
    --vtpm-uuid) need_arg "$@"; VTPM_UUID=$2; shift 2 ;;
    --vtpm-uuid=*) VTPM_UUID=${1#*=}; shift ;;
    --qemu-timeout) need_arg "$@"; QEMU_TIMEOUT=$2; shift 2 ;;
    --qemu-timeout=*) QEMU_TIMEOUT=${1#*=}; shift ;;
    --require-vtpm) REQUIRE_VTPM=1; shift ;;
    --keep) KEEP=1; shift ;;
    --full) FULL=1; shift ;;
    --backend-per-domain) BACKEND_PER_DOMAIN=1; shift ;;
    --host-tpm) HOST_TPM=1; shift ;;
    --state-disk) STATE_DISK=1; shift ;;
    --host-restart) HOST_RESTART=1; shift ;;
    --chain) CHAIN=1; shift ;;
    --mgrdom) MGRDOM=1; shift ;;
    --dom0-check) need_arg "$@"; DOM0_CHECK=$2; shift 2 ;;
    --dom0-check=*) DOM0_CHECK=${1#*=}; shift ;;
    --guest-kmod) need_arg "$@"; GUEST_KMOD=$2; shift 2 ;;
    --kmod-bench) KMOD_BENCH=1; shift ;;
    --saverestore) SAVERESTORE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

for b in "${EXTRA_BINS[@]}"; do
  [ -f "$b" ] && [ -r "$b" ] || { echo "run.sh: --extra-bin $b: not a readable file" >&2; exit 2; }
done
case "$VTPM_UUID" in
  *,*|*\"*|"") echo "run.sh: bad --vtpm-uuid" >&2; exit 2 ;;
esac
if [ "$MGRDOM" = 1 ]; then
  [ "$FULL" = 1 ] && [ "$HOST_TPM" = 1 ] && [ -z "$BACKEND_CMD" ] && [ "$CHAIN" = 0 ] &&
    [ "$STATE_DISK" = 0 ] && [ "$HOST_RESTART" = 0 ] ||
    { echo "run.sh: --mgrdom needs --full and --host-tpm (no --backend-cmd, --chain, --state-disk or --host-restart)" >&2; exit 2; }
  CHAIN=1   # the chain's domains and guest phases, with the manager in mgrdom
elif [ "$FULL" = 1 ] || [ "$BACKEND_PER_DOMAIN" = 1 ]; then
  [ -n "$BACKEND_CMD" ] || { echo "run.sh: --full and --backend-per-domain need --backend-cmd" >&2; exit 2; }
fi
if [ "$CHAIN" = 1 ] && [ "$MGRDOM" = 0 ]; then
  [ "$FULL" = 1 ] && [ "$HOST_TPM" = 1 ] && [ "$STATE_DISK" = 1 ] && [ "$HOST_RESTART" = 0 ] ||
    { echo "run.sh: --chain needs --full, --host-tpm and --state-disk (not --host-restart)" >&2; exit 2; }
  GUEST_MEM=192   # xl save of guest1 (chain-sr-*) writes it all to dom0's tmpfs
fi
if [ "$HOST_RESTART" = 1 ]; then
  [ "$FULL" = 1 ] && [ "$HOST_TPM" = 1 ] && [ "$STATE_DISK" = 1 ] ||
    { echo "run.sh: --host-restart needs --full, --host-tpm and --state-disk" >&2; exit 2; }
fi
if [ -n "$GUEST_KMOD" ]; then
  [ "$FULL" = 1 ] && [ -f "$GUEST_KMOD" ] || { echo "run.sh: --guest-kmod needs --full and a .ko file" >&2; exit 2; }
  GUEST_MEM=192   # room for tpm2-tools; xl save writes it all to dom0's tmpfs
fi
if [ "$SAVERESTORE" = 1 ]; then
  [ "$FULL" = 1 ] && [ "$CHAIN" = 0 ] || { echo "run.sh: --saverestore needs --full (not --chain)" >&2; exit 2; }
  GUEST_MEM=192   # xl save writes it all to dom0's tmpfs; xl migrate holds two
fi
if [ "$KMOD_BENCH" = 1 ] && [ -z "$GUEST_KMOD" ]; then
  echo "run.sh: --kmod-bench needs --guest-kmod" >&2; exit 2
fi
case "$QEMU_TIMEOUT" in
  ''|*[!0-9]*) echo "run.sh: --qemu-timeout must be a number of seconds" >&2; exit 2 ;;
esac

T_START=$(date +%s.%N)
elapsed() { awk -v a="$(date +%s.%N)" -v b="$T_START" 'BEGIN{printf "%.1f", a-b}'; }
log() { printf '[xen-lab %6.1fs] %s\n' "$(elapsed)" "$*"; }
skip() { echo "SKIPPED: $*"; RESULT=77; exit 77; }
die() { echo "XENLAB: FAIL $*"; RESULT=1; exit 1; }

CREATED_WORKDIR=0
if [ -z "$WORKDIR" ]; then
  WORKDIR=$(mktemp -d /tmp/vtpm-xen-lab.XXXXXX) || { echo "FAIL: mktemp"; exit 1; }
  CREATED_WORKDIR=1
else
  mkdir -p "$WORKDIR" || { echo "FAIL: cannot create workdir $WORKDIR"; exit 1; }
fi
WORKDIR=$(cd "$WORKDIR" && pwd)
SERIAL_LOG="$WORKDIR/serial.log"
QEMU_ERR="$WORKDIR/qemu.stderr"

# ---------------------------------------------------------------- cleanup
QEMU_PID=""
STAMP_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
    # QEMU_PID is coreutils timeout, which passes the signal on to QEMU.
    kill -TERM "$QEMU_PID" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$QEMU_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$QEMU_PID" 2>/dev/null
    wait "$QEMU_PID" 2>/dev/null
  fi
  if [ -n "${SWTPM_PID:-}" ] && kill -0 "$SWTPM_PID" 2>/dev/null; then
    kill -TERM "$SWTPM_PID" 2>/dev/null
  fi
  if [ -n "$STAMP_PID" ] && kill -0 "$STAMP_PID" 2>/dev/null; then
    kill -TERM "$STAMP_PID" 2>/dev/null
    wait "$STAMP_PID" 2>/dev/null
  fi
  if [ "$RESULT" != 1 ] && [ "$CREATED_WORKDIR" = 1 ] && [ "$KEEP" = 0 ]; then
    rm -rf "$WORKDIR"
  else
    echo "run.sh: logs kept in $WORKDIR"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted"; exit 130' INT TERM HUP

# ---------------------------------------------------------- prerequisites
APT_UPDATED=0
apt_update_once() {
  [ "$APT_UPDATED" = 1 ] && return 0
  APT_UPDATED=1
  log "apt-get update"
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get update -qq >"$WORKDIR/apt-update.log" 2>&1 ||
    { log "apt-get update failed (see $WORKDIR/apt-update.log)"; return 1; }
}

busybox_ok() {
  [ -x /bin/busybox ] || return 1
  ldd /bin/busybox >/dev/null 2>&1 && return 1   # must be static
  local applets a
  applets=" $(/bin/busybox --list 2>/dev/null | tr '\n' ' ') "
  for a in insmod hexdump timeout tail setsid poweroff; do
    case "$applets" in *" $a "*) ;; *) return 1 ;; esac
  done
}

ensure_pkgs() {
  local missing=()
  command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
  [ -x "$XEN_LIBEXEC/xl" ] && [ -x "$XEN_LIBEXEC/xenstored" ] && [ -x /usr/bin/xenstore ] ||
    missing+=("xen-utils-$XEN_VER")
  busybox_ok || missing+=(busybox-static)
  command -v cpio >/dev/null 2>&1 || missing+=(cpio)
  [ "$HOST_TPM" = 0 ] || command -v swtpm >/dev/null 2>&1 || missing+=(swtpm)
  [ "$STATE_DISK" = 0 ] || command -v mkfs.ext4 >/dev/null 2>&1 || missing+=(e2fsprogs)
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || skip "missing ${missing[*]} and not root to install them"
  apt_update_once || true
  # --no-install-recommends: xen-utils recommends xen-hypervisor and
  # grub-xen-host, which would make this host's bootloader boot Xen.
  log "apt-get install -y --no-install-recommends ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive timeout 1200 apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >"$WORKDIR/apt-install.log" 2>&1 || {
      tail -n 20 "$WORKDIR/apt-install.log"
      skip "cannot install ${missing[*]}"
    }
}

ensure_pkgs
command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 not available"
qemu-system-x86_64 -version >/dev/null 2>&1 || skip "qemu-system-x86_64 does not run"
qemu-system-x86_64 -accel help 2>/dev/null | grep -qx tcg || skip "this QEMU has no TCG accelerator"
busybox_ok || skip "/bin/busybox is not a static busybox with the applets needed"
for t in "$XEN_LIBEXEC/xl" "$XEN_LIBEXEC/xenstored" "$XEN_LIBEXEC/xenconsoled" \
         "$XEN_LIBEXEC/xen-init-dom0" /usr/bin/xenstore; do
  [ -x "$t" ] || skip "$t missing (xen-utils-$XEN_VER)"
done
for t in timeout perl gzip cpio dpkg-deb apt-get ldd; do
  command -v "$t" >/dev/null 2>&1 || skip "$t missing"
done
if [ "$FULL" = 1 ]; then
  # tpmraw: raw TPM commands from the guest's shell (busybox has no xxd),
  # and the round-trip timer of the bench lines (-n).
  SRC_DIR=$(cd "$(dirname "$0")" && pwd)
  command -v gcc >/dev/null 2>&1 || skip "--full needs gcc to build tpmraw.c"
  if gcc -static -O2 -o "$WORKDIR/tpmraw" "$SRC_DIR/tpmraw.c" 2>"$WORKDIR/tpmraw.build.log"; then
    log "tpmraw built (static)"
  elif gcc -O2 -o "$WORKDIR/tpmraw" "$SRC_DIR/tpmraw.c" 2>>"$WORKDIR/tpmraw.build.log"; then
    log "tpmraw built (dynamic: no static libc)"
  else
    cat "$WORKDIR/tpmraw.build.log"; die "cannot build tpmraw.c"
  fi
  EXTRA_BINS+=("$WORKDIR/tpmraw")
fi
mem_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
[ -n "$mem_kb" ] && [ "$mem_kb" -lt 1500000 ] &&
  skip "only $((mem_kb / 1024)) MB of memory available; QEMU needs about 1.1 GB"

# ------------------------------------------------- packages (cached, reused)
if [ -z "$CACHE_DIR" ]; then
  if mkdir -p /var/cache/vtpm-tests 2>/dev/null && [ -w /var/cache/vtpm-tests ]; then
    CACHE_DIR=/var/cache/vtpm-tests
  else
    CACHE_DIR="$WORKDIR/cache"
  fi
fi
mkdir -p "$CACHE_DIR" || die "cannot create cache dir $CACHE_DIR"
CACHE_DIR=$(cd "$CACHE_DIR" && pwd)

# apt_fetch PKG[=VERSION] DIR: downloads the .deb (never installs it) and
# extracts it into DIR/x.
apt_fetch() {
  local spec=$1 dir=$2 deb
  mkdir -p "$dir" || return 1
  if ! (cd "$dir" && timeout 900 apt-get download -o APT::Sandbox::User=root "$spec") \
       >"$WORKDIR/apt-download.log" 2>&1; then
    apt_update_once || return 1
    (cd "$dir" && timeout 900 apt-get download -o APT::Sandbox::User=root "$spec") \
      >"$WORKDIR/apt-download.log" 2>&1 || { tail -n 5 "$WORKDIR/apt-download.log"; return 1; }
  fi
  deb=$(ls "$dir"/*.deb 2>/dev/null | head -n 1)
  [ -n "$deb" ] && mkdir -p "$dir/x" && dpkg-deb -x "$deb" "$dir/x"
}

# The hypervisor must match the toolstack (libxenctrl checks the domctl
# interface version), so fetch the version of the installed xen-utils.
XEN_PKG=xen-hypervisor-$XEN_VER-amd64
XEN_UTILS_VERSION=$(dpkg-query -W -f='${Version}' "xen-utils-$XEN_VER" 2>/dev/null)
[ -n "$XEN_UTILS_VERSION" ] || skip "xen-utils-$XEN_VER is not installed as a package"
XEN_CACHE="$CACHE_DIR/${XEN_PKG}_$XEN_UTILS_VERSION"
XEN_ELF="$XEN_CACHE/xen.elf"
if [ ! -s "$XEN_ELF" ]; then
  log "fetching $XEN_PKG=$XEN_UTILS_VERSION into $XEN_CACHE"
  dl=$(mktemp -d "$CACHE_DIR/.dl.XXXXXX")
  if apt_fetch "$XEN_PKG=$XEN_UTILS_VERSION" "$dl"; then
    gz=$(ls "$dl"/x/boot/xen-*-amd64.gz "$dl"/x/boot/xen-*.gz 2>/dev/null | head -n 1)
    # QEMU's multiboot loader cannot read a gzipped Xen.
    if [ -n "$gz" ] && mkdir -p "$XEN_CACHE" && zcat "$gz" >"$XEN_ELF.tmp"; then
      mv "$XEN_ELF.tmp" "$XEN_ELF"
    fi
  fi
  rm -rf "$dl"
fi
[ -s "$XEN_ELF" ] || skip "cannot fetch $XEN_PKG=$XEN_UTILS_VERSION (apt-get download failed)"
log "hypervisor: $XEN_ELF"

kernel_pkg_name() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
KPKG=$(kernel_pkg_name)
if [ -z "$KPKG" ]; then apt_update_once || true; KPKG=$(kernel_pkg_name); fi
[ -n "$KPKG" ] || skip "apt-cache depends linux-image-amd64 names no kernel package"

# The kernel cache is shared with tests/e2e/qemu-tpmdev (KPKG/vmlinuz); the
# modules this lab needs (and their dependencies) go to KPKG/xenlab-modules.
KCACHE="$CACHE_DIR/$KPKG"
KMODS="$KCACHE/xenlab-modules"
WANT_MODULES="$DOM0_MODULES $GUEST_MODULES $IDOM_MODULES"

# ko_depends FILE: the module names FILE depends on (from .modinfo).
ko_depends() {
  tr '\0' '\n' <"$1" | sed -n 's/^depends=//p' | head -n 1 | tr ',' ' '
}
# find_ko ROOT NAME: path of module NAME (- and _ are the same) under ROOT.
find_ko() {
  local n1=${2//_/-} n2=${2//-/_}
  find "$1" \( -name "$n1.ko" -o -name "$n2.ko" \) -print 2>/dev/null | head -n 1
}

if [ ! -s "$KCACHE/vmlinuz" ] || [ "$(cat "$KMODS/.stamp" 2>/dev/null)" != "$WANT_MODULES" ]; then
  log "fetching kernel package $KPKG into $KCACHE"
  dl=$(mktemp -d "$CACHE_DIR/.dl.XXXXXX")
  if apt_fetch "$KPKG" "$dl"; then
    k=$(ls "$dl"/x/boot/vmlinuz-* 2>/dev/null | head -n 1)
    mroot=$(ls -d "$dl"/x/lib/modules/* 2>/dev/null | head -n 1)
    if [ -n "$k" ] && [ -n "$mroot" ]; then
      mkdir -p "$KCACHE"
      rm -rf "$KMODS.tmp"; mkdir -p "$KMODS.tmp"
      ok=1
      todo=$WANT_MODULES
      while [ -n "${todo// /}" ]; do
        set -- $todo; m=$1; shift; todo="$*"
        [ -e "$KMODS.tmp/${m//_/-}.ko" ] || [ -e "$KMODS.tmp/${m//-/_}.ko" ] && continue
        f=$(find_ko "$mroot" "$m")
        [ -n "$f" ] || { log "module $m not in $KPKG"; ok=0; break; }
        cp "$f" "$KMODS.tmp/" || { ok=0; break; }
        todo="$todo $(ko_depends "$f")"
      done
      if [ "$ok" = 1 ]; then
        basename "$mroot" >"$KMODS.tmp/.release"
        echo "$WANT_MODULES" >"$KMODS.tmp/.stamp"
        cp "$dl"/x/boot/config-* "$KCACHE/" 2>/dev/null
        cp "$k" "$KCACHE/vmlinuz.tmp" && mv "$KCACHE/vmlinuz.tmp" "$KCACHE/vmlinuz"
        rm -rf "$KMODS" && mv "$KMODS.tmp" "$KMODS"
      fi
    fi
  fi
  rm -rf "$dl" "$KMODS.tmp"
fi
[ -s "$KCACHE/vmlinuz" ] && [ -s "$KMODS/.stamp" ] ||
  skip "cannot fetch and extract $KPKG (kernel and modules)"
VMLINUZ="$KCACHE/vmlinuz"
log "kernel: $VMLINUZ ($(cat "$KMODS/.release")), modules: $KMODS"

# module_order NAME...: file names to insmod, dependencies first.
module_order() {
  local m f d seen=" " out=""
  visit() {
    local f d
    f=$(find_ko "$KMODS" "$1")
    [ -n "$f" ] || { echo "missing module $1" >&2; return 1; }
    case "$seen" in *" $f "*) return 0 ;; esac
    seen="$seen$f "
    for d in $(ko_depends "$f"); do visit "$d" || return 1; done
    out="$out $(basename "$f")"
  }
  for m in "$@"; do visit "$m" || return 1; done
  echo $out | tr ' ' '\n'
}

# ------------------------------------------------------------- images
# copy_bin ROOT SRC [DEST]: SRC to ROOT/DEST (default: same path) plus every
# library ldd lists, each at the path ldd printed.
copy_bin() {
  local root=$1 src=$2 dest=${3:-$2} lib
  install -D -m 755 "$src" "$root$dest" || return 1
  # ldd fails on scripts and static binaries: nothing to add then.
  { ldd "$src" 2>/dev/null || true; } | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' |
    while read -r lib; do
      [ -e "$root$lib" ] || install -D -m 755 "$lib" "$root$lib" || exit 1
    done
}

libgcc_path() {
  local p
  p=$(ldconfig -p 2>/dev/null | awk '$1 == "libgcc_s.so.1" && /x86-64/ { print $NF; exit }')
  [ -n "$p" ] || p=$(ls /lib/x86_64-linux-gnu/libgcc_s.so.1 /usr/lib/x86_64-linux-gnu/libgcc_s.so.1 2>/dev/null | head -n 1)
  echo "$p"
}

base_root() { # ROOT
  local root=$1
  rm -rf "$root"
  mkdir -p "$root"/{bin,sbin,dev,proc,sys,run,tmp,etc/xenlab,lib/modules/xenlab,usr/bin,usr/sbin,usr/local/bin,var/log,var/lib}
  ln -s ../run "$root/var/run"
  cp /bin/busybox "$root/bin/busybox"
  # nobody: the manager's instances drop to it.
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  printf 'passwd: files\ngroup: files\n' >"$root/etc/nsswitch.conf"
  local b
  for b in "${EXTRA_BINS[@]}"; do
    copy_bin "$root" "$b" "/usr/local/bin/$(basename "$b")" || return 1
  done
  # vtpm-service opens the Xen libraries with dlopen (xen_real.c), by the
  # SONAMEs of the build's development links; ldd cannot see them. Each
  # goes in at its SONAME's path, with what ldd lists for it.
  local n so p
  for n in xenstore xengnttab xenevtchn; do
    so=$(objdump -p "/usr/lib/x86_64-linux-gnu/lib$n.so" 2>/dev/null | awk '$1 == "SONAME" { print $2 }')
    p=$(ldconfig -p 2>/dev/null | awk -v l="$so" '$1 == l && /x86-64/ { print $NF; exit }')
    [ -n "$so" ] && [ -n "$p" ] || { echo "no lib$n.so SONAME or $so on this machine" >&2; return 1; }
    [ -e "$root$p" ] || copy_bin "$root" "$p" || return 1
  done
  local g; g=$(libgcc_path)
  # glibc dlopens libgcc_s for pthread_cancel; without it xl aborts on exit.
  [ -n "$g" ] && install -D -m 755 "$g" "$root$g"
  return 0
}

pack() { # ROOT OUT
  (cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) >"$2"
}

write_guest_init() {
  cat >"$1" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin
up() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$(up)" -v b="$1" 'BEGIN { printf "%.1f", a - b }'; }
past() { awk -v a="$(up)" -v d="$1" 'BEGIN { exit !(a >= d) }'; }
M() { echo "XENLAB: $*"; }
PHASE=${XENLAB_PHASE:-unknown}
M "guest up phase=$PHASE kernel=$(uname -r) uptime=$(up)s"
if [ "$PHASE" = idom ]; then
  # The instance domain (--chain): no TPM driver, the Xen devices instead.
  while read -r ko; do
    [ -n "$ko" ] && insmod "/lib/modules/xenlab/$ko"
  done </etc/xenlab/idom-modules
  sh /etc/xenlab/idom.sh
  M "idom: idom.sh ended ($?)"
  poweroff -f
fi
if [ "$PHASE" = mgrdom ]; then
  # The manager domain (--mgrdom): the TPM's pages, no TPM driver.
  while read -r ko; do
    [ -n "$ko" ] && insmod "/lib/modules/xenlab/$ko"
  done </etc/xenlab/idom-modules
  sh /etc/xenlab/mgrdom.sh
  M "mgrdom: mgrdom.sh ended ($?)"
  poweroff -f
fi
FULL=0
[ -s /etc/xenlab/guest-full.sh ] && FULL=1 && . /etc/xenlab/guest-full.sh
KMOD=0
[ -s /etc/xenlab/guest-kmod.sh ] && . /etc/xenlab/guest-kmod.sh
SR=0
[ -s /etc/xenlab/guest-saverestore.sh ] && SR=1 && . /etc/xenlab/guest-saverestore.sh

# insmod of xen-tpmfront blocks for as long as the driver's probe runs
# (the probe sends TPM commands), so run it aside and watch.
(
  rc=0
  while read -r ko; do
    [ -n "$ko" ] || continue
    insmod "/lib/modules/xenlab/$ko" || { rc=$?; break; }
  done </etc/xenlab/guest-modules
  echo "$rc" >/tmp/insmod.rc
) &
# plain: until insmod returns; vtpm: until /dev/tpm0 appears. 60 s at most.
T0=$(up)
D=$(awk -v a="$T0" 'BEGIN { print a + 60 }')
while ! past "$D"; do
  case "$PHASE" in
    vtpm*) [ -c /dev/tpm0 ] && break ;;
    *) [ -e /tmp/insmod.rc ] && break ;;
  esac
  sleep 0.1
done
if [ -e /tmp/insmod.rc ]; then
  M "guest: insmod xen-tpmfront rc=$(cat /tmp/insmod.rc) (returned within $(since "$T0")s)"
else
  M "guest: insmod xen-tpmfront still running after $(since "$T0")s"
fi

getrandom() { # $1 = device; prints the response as hex
  (
    exec 3<>"$1" || exit 1
    printf '\200\001\000\000\000\014\000\000\001\173\000\020' >&3 || exit 1
    dd bs=4096 count=1 <&3 2>/dev/null | hexdump -v -e '1/1 "%02x"'
  )
}

if [ "$PHASE" = vtpm ]; then
  RES=ok WHY=""
  bad() { RES=FAIL; [ -n "$WHY" ] || WHY="$*"; }
  if [ -c /dev/tpm0 ]; then
    M "guest: /dev/tpm0 present $(since "$T0")s after insmod started"
    V=$(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null)
    M "guest: tpm_version_major=$V"
    R=$(getrandom /dev/tpm0)
    M "guest: TPM2_GetRandom(16) response=$R"
    RC=$(echo "$R" | cut -c13-20)
    [ "$RC" = 00000000 ] && [ ${#R} -eq 56 ] || bad "TPM2_GetRandom rc=${RC:-none}"
    if [ "$FULL" = 1 ]; then
      full_boot1
      [ "$KMOD" = 1 ] && kmod_boot1
      [ "$FULL_RES" = ok ] || bad "a --full check failed"
    fi
    if [ -s /etc/xenlab/guest-cmd ]; then
      M "guest: running guest-cmd"
      sh -c "$(cat /etc/xenlab/guest-cmd)"
      GRC=$?
      M "guest: guest-cmd rc=$GRC"
      [ "$GRC" = 0 ] || bad "guest-cmd rc=$GRC"
    fi
  else
    bad "no /dev/tpm0 after 60 s"
  fi
  echo "--- guest dmesg (tpm) ---"
  dmesg | grep -i tpm | grep -v XENLAB_PHASE | tail -n 30
  M "guest vtpm-result: $RES${WHY:+ ($WHY)}"
  if [ "$FULL" = 1 ]; then
    # dom0 has set XENLAB_PHASE=vtpm-reboot for the next boot (xl
    # config-update); on_reboot="restart" makes xl build the guest again.
    M "guest: rebooting (reboot -f, uptime $(up)s)"
    sync
    reboot -f
    sleep 10
    echo b >/proc/sysrq-trigger
  fi
fi
if [ "$PHASE" = vtpm-reboot ]; then
  if [ -c /dev/tpm0 ]; then
    check reboot-tpm0 ok "/dev/tpm0 present $(since "$T0")s after insmod started"
    full_boot2
    full_detach_attach
    [ "$KMOD" = 1 ] && kmod_save_restore
    [ "$SR" = 1 ] && sr_guest
  else
    check reboot-tpm0 FAIL "no /dev/tpm0 after 60 s"
  fi
  echo "--- guest dmesg (tpm) ---"
  dmesg | grep -i tpm | grep -v XENLAB_PHASE | tail -n 30
  M "guest full-result: $FULL_RES"
fi
if [ "$PHASE" = vtpm-sr ]; then
  # --saverestore: xl create after an xl destroy of the running guest.
  if [ -c /dev/tpm0 ]; then
    check sr-destroy-tpm0 ok "/dev/tpm0 present $(since "$T0")s after insmod started"
    sr_fresh
  else
    check sr-destroy-tpm0 FAIL "no /dev/tpm0 after 60 s"
  fi
  dmesg | grep -i tpm | grep -v XENLAB_PHASE | tail -n 10
  M "guest sr-result: $FULL_RES"
  M "guest full-result: $FULL_RES"
fi
if [ "$PHASE" = vtpm-host2 ]; then
  # The host was powered off and booted again: the same vTPM, NV kept.
  if [ -c /dev/tpm0 ]; then
    check host2-tpm0 ok "/dev/tpm0 present $(since "$T0")s after insmod started"
    full_host2
    # The ring's round trip (tools/bench/run-ring-bench.sh): TPM2_GetRandom(8).
    for r in 1 2 3; do
      M "bench ring: $(tpmraw -d /dev/tpm0 -n 500 80010000000c0000017b0008 2>&1)"
    done
  else
    check host2-tpm0 FAIL "no /dev/tpm0 after 60 s"
  fi
  echo "--- guest dmesg (tpm) ---"
  dmesg | grep -i tpm | grep -v XENLAB_PHASE | tail -n 30
  M "guest host2-result: $FULL_RES"
fi
if [ "$PHASE" = vtpm-chain1 ] || [ "$PHASE" = vtpm-chainb ] || [ "$PHASE" = vtpm-chain2 ]; then
  if [ -c /dev/tpm0 ]; then
    check "${PHASE#vtpm-}-tpm0" ok "/dev/tpm0 present $(since "$T0")s after insmod started"
    if [ "$PHASE" = vtpm-chain1 ]; then full_chain1; else full_chain2 "${PHASE#vtpm-}"; fi
  else
    check "${PHASE#vtpm-}-tpm0" FAIL "no /dev/tpm0 after 60 s"
  fi
  dmesg | grep -i tpm | grep -v XENLAB_PHASE | tail -n 10
  M "guest ${PHASE#vtpm-}-result: $FULL_RES"
fi
if [ "$PHASE" = vtpm12 ]; then
  if [ -c /dev/tpm0 ]; then
    check tpm12-tpm0 ok "/dev/tpm0 present $(since "$T0")s after insmod started, version $(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null)"
    full_tpm12
  else
    check tpm12-tpm0 FAIL "no /dev/tpm0 after 60 s"
  fi
  dmesg | grep -i tpm | grep -v XENLAB_PHASE | tail -n 10
  M "guest vtpm12-result: $FULL_RES"
fi
M "guest: powering off (uptime $(up)s)"
sync
poweroff -f
sleep 10
echo o >/proc/sysrq-trigger
EOF
  chmod 755 "$1"
}

write_dom0_init() {
  cat >"$1" <<'EOF'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox mkdir -p /dev/pts
/bin/busybox mount -t devpts devpts /dev/pts
/bin/busybox mount -t tmpfs tmpfs /run
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/usr/local/sbin:/usr/lib/xen-4.17/bin:/usr/bin:/usr/sbin:/bin:/sbin
. /etc/xenlab/env
CR=$(printf '\r')
up() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$(up)" -v b="$1" 'BEGIN { printf "%.1f", a - b }'; }
past() { awk -v a="$(up)" -v d="$1" 'BEGIN { exit !(a >= d) }'; }
deadline() { awk -v a="$(up)" -v s="$1" 'BEGIN { printf "%.2f", a + s }'; }
M() { echo "XENLAB: $*"; }
prefix() { while IFS= read -r l; do echo "$1${l%"$CR"}"; done; }
finish() {
  M "dom0: powering off (uptime $(up)s)"
  # A clean host shutdown: the backend (the manager) first.
  if [ -s /run/be-session.pid ]; then
    kill -TERM "-$(cat /run/be-session.pid)" 2>/dev/null
    i=0
    while kill -0 "-$(cat /run/be-session.pid)" 2>/dev/null && [ $i -lt 100 ]; do
      sleep 0.1; i=$((i + 1))
    done
    M "dom0: backend stopped after $((i / 10)).$((i % 10))s"
  fi
  [ "$STATE_DISK" = 1 ] && umount /var/lib/vtpm
  sync
  poweroff -f
  sleep 10
  echo o >/proc/sysrq-trigger
  sleep 10
}
fatal() { M "dom0: FATAL $*"; finish; }
GLOG=/var/log/xen/guest-guest1.log

XENLAB_BOOT=1
for a in $(cat /proc/cmdline); do
  case "$a" in xenlab_boot=*) XENLAB_BOOT=${a#xenlab_boot=} ;; esac
done
export XENLAB_BOOT
M "dom0: init started (kernel $(uname -r), uptime $(up)s, host boot $XENLAB_BOOT)"
while read -r ko; do
  [ -n "$ko" ] || continue
  insmod "/lib/modules/xenlab/$ko" || fatal "insmod $ko failed"
done </etc/xenlab/dom0-modules
mkdir -p /proc/xen /run/xen /run/xenstored /run/lock /var/lib/xen /var/lib/xenstored /var/log/xen
mount -t xenfs xenfs /proc/xen || fatal "mount xenfs failed"
if [ "$STATE_DISK" = 1 ]; then
  i=0
  while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  mkdir -p /var/lib/vtpm
  mount -t ext4 /dev/vda /var/lib/vtpm || fatal "cannot mount the state disk /dev/vda"
  M "dom0: state disk mounted on /var/lib/vtpm: $(ls /var/lib/vtpm | tr '\n' ' ')"
fi

xenstored --pid-file /run/xenstored.pid || fatal "xenstored failed"
i=0
while [ ! -S /run/xenstored/socket ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
[ -S /run/xenstored/socket ] || fatal "xenstored made no /run/xenstored/socket"
xen-init-dom0 || fatal "xen-init-dom0 failed"
xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen ||
  fatal "xenconsoled failed"
( tail -n +1 -F "$GLOG" 2>/dev/null | prefix "[guest1] " ) &
IDLOG=/var/log/xen/guest-vtpmdom.log
[ "$CHAIN" = 1 ] && ( tail -n +1 -F "$IDLOG" 2>/dev/null | prefix "[vtpmdom] " ) &
MDLOG=/var/log/xen/guest-mgrdom.log
[ "$MGRDOM" = 1 ] && ( tail -n +1 -F "$MDLOG" 2>/dev/null | prefix "[mgrdom] " ) &
M "dom0: xen userspace up (uptime $(up)s)"
xl info 2>&1 | grep -E '^(xen_version|xen_commandline|free_memory|nr_cpus)' | prefix "XENLAB: dom0: xl info: "

if [ -s /etc/xenlab/dom0-check ]; then
  M "dom0: running the dom0 check: $(cat /etc/xenlab/dom0-check)"
  timeout 120 sh -c "$(cat /etc/xenlab/dom0-check)" </dev/null >/run/dom0-check.log 2>&1
  rc=$?
  prefix "[dom0-check] " </run/dom0-check.log
  if [ "$rc" = 0 ]; then M "check dom0-check ok"; else M "check dom0-check FAIL rc=$rc"; fi
fi

# start_backend DOMID: --backend-cmd with $DOMID set, in its own session
# (its id in /run/be/DOMID.pid), output prefixed "[backend dDOMID] ".
start_backend() {
  M "dom0: backend/vtpm/$1 appeared; starting the backend for domain $1"
  # The outer shell stays (a trap, not an ignore, so the backend still
  # gets TERM) to say how the backend ended; its log is kept per domain.
  ( export DOMID=$1
    setsid sh -c 'echo $$ >/run/be/$DOMID.pid; trap : TERM
      sh -c "$(cat /etc/xenlab/backend-cmd)"; rc=$?
      echo "XENLAB: dom0: the backend for domain $DOMID exited with status $rc"' \
      </dev/null 2>&1 | tee -a "/run/be/$1.log" | prefix "[backend d$1] " ) &
}
# backend_diag DOMID WHY: the backend's last lines, its processes, as
# XENLAB lines (what a CI log keeps).
backend_diag() {
  M "dom0: diagnostics ($2): the last lines of domain $1's backend"
  tail -n 25 "/run/be/$1.log" 2>/dev/null | prefix "XENLAB: diag: [backend d$1] "
  ps -o pid,stat,time,args 2>/dev/null | grep -v grep | grep vtpm-service | prefix "XENLAB: diag: ps: "
}
# The lab's stand-in for a supervisor: one backend per guest domain with a
# vtpm device, stopped once the domain is gone (not when the device is:
# vtpm-detach/attach must be handled by the running backend).
supervise_backends() {
  local d f pid
  mkdir -p /run/be
  while :; do
    for d in $(xenstore-list /local/domain/0/backend/vtpm 2>/dev/null); do
      [ -e "/run/be/$d.started" ] && continue
      : >"/run/be/$d.started"
      start_backend "$d"
    done
    for f in /run/be/*.pid; do
      [ -e "$f" ] || continue
      d=${f##*/}; d=${d%.pid}
      xenstore-exists "/local/domain/$d" 2>/dev/null && continue
      pid=$(cat "$f"); rm -f "$f"
      M "dom0: domain $d is gone; stopping its backend (session $pid)"
      kill -TERM "-$pid" 2>/dev/null
    done
    sleep 0.2
  done
}
if [ -s /etc/xenlab/backend-cmd ]; then
  if [ "$BACKEND_PER_DOMAIN" = 1 ]; then
    M "dom0: one backend per guest domain: $(cat /etc/xenlab/backend-cmd)"
    supervise_backends &
  else
    M "dom0: starting backend: $(cat /etc/xenlab/backend-cmd)"
    ( setsid sh -c 'echo $$ >/run/be-session.pid; exec sh -c "$(cat /etc/xenlab/backend-cmd)"' \
        </dev/null 2>&1 | tee -a /tmp/backend.log | prefix "[backend] " ) &
  fi
fi

# wait_gone SECS: until guest1 is no longer a domain (else destroy it).
wait_gone() {
  local d; d=$(deadline "$1")
  while xl domid guest1 >/dev/null 2>&1; do
    if past "$d"; then
      M "dom0: guest1 still there after $1 s; xl destroy"
      timeout 30 xl destroy guest1 2>&1 | prefix "[xl] "
      return 1
    fi
    sleep 0.2
  done
  return 0
}
# wait_log PATTERN SECS: until the guest console log has PATTERN.
wait_log() {
  local d; d=$(deadline "$2")
  while ! grep -q "$1" "$GLOG" 2>/dev/null; do
    past "$d" && return 1
    sleep 0.2
  done
}
xs_dump() { # WHEN
  M "xs: /local/domain/0/backend/vtpm ($1):"
  xenstore-ls -f -p /local/domain/0/backend/vtpm 2>&1 | prefix "XENLAB: xs:   "
  for fe in $(xenstore-list /local/domain/0/backend/vtpm 2>/dev/null); do
    M "xs: /local/domain/$fe/device/vtpm ($1):"
    xenstore-ls -f -p "/local/domain/$fe/device/vtpm" 2>&1 | prefix "XENLAB: xs:   "
  done
}
guest_diag() {
  M "dom0: diagnostics"
  xl list 2>&1 | prefix "[xl list] "
  tail -n 30 /var/log/xen/xl-guest1.log 2>/dev/null | prefix "[xl-guest1.log] "
}

# xl_create NAME CFG: runs `xl create CFG` in the background, its output
# shown live as "[xl] ..." and kept in /tmp/xl-NAME.log (each line after
# the dom0 uptime at which it came); the status lands
# in /tmp/xl-NAME.rc. (Not waited for as a pipeline: xl's monitoring child
# may keep the pipe open.)
xl_create() {
  rm -f "/tmp/xl-$1.rc" "/tmp/xl-$1.log"
  ( ( timeout 120 xl create "$2" 2>&1; echo $? >"/tmp/xl-$1.rc.tmp" ) |
      while IFS= read -r l; do echo "$(up) $l" >>"/tmp/xl-$1.log"; echo "[xl] $l"; done
    mv "/tmp/xl-$1.rc.tmp" "/tmp/xl-$1.rc" ) &
}
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

check() { # NAME ok|FAIL [DETAIL]
  M "check $1 $2${3:+ ($3)}"
}
# sandbox_ok "STATUS": true when the CapBnd, NoNewPrivs and Seccomp lines
# of /proc/PID/status (joined, in the kernel's order) say the instance is
# locked in (issue 12: Seccomp 2, NoNewPrivs 1, no capabilities).
sandbox_ok() {
  case "$1" in
    *"CapBnd: 0000000000000000 "*"NoNewPrivs: 1 "*"Seccomp: 2 "*) return 0 ;;
  esac
  return 1
}
# The sandbox of every vTPM instance running in dom0, from /proc.
sandbox_check() {
  local p n=0 bad= st
  for p in /proc/[0-9]*; do
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- '--role=instance' || continue
    st=$(grep -E '^(Seccomp|NoNewPrivs|CapBnd):' "$p/status" 2>/dev/null | tr -s '\t ' ' ' | tr '\n' ' ')
    n=$((n + 1))
    sandbox_ok "$st" || bad="$bad ${p#/proc/}: $st"
    M "dom0: instance ${p#/proc/}: $st"
  done
  if [ "$n" -gt 0 ] && [ -z "$bad" ]; then
    check instance-sandbox ok "$n instance(s): Seccomp 2, NoNewPrivs 1, CapBnd 0"
  else
    check instance-sandbox FAIL "$n instance(s);$bad"
  fi
}
# xl_run LOGNAME SECS ARGS...: runs xl ARGS under timeout, shows its output
# as "[xl] ...", sets XRC and XDT (seconds it took).
xl_run() {
  local n=$1 s=$2 t; shift 2
  t=$(up)
  timeout "$s" xl "$@" >"/tmp/xl-$n.log" 2>&1
  XRC=$?
  XDT=$(since "$t")
  prefix "[xl $1] " <"/tmp/xl-$n.log"
}
# --full, after the guest's first-boot checks: its reboot, then
# vtpm-detach and vtpm-attach while the rebooted guest runs.
full_dom0() {
  local d1=$VTPM_DOMID d2 t be
  t=$(up)
  if wait_log "XENLAB: guest up phase=vtpm-reboot" 120; then
    d2=$(xl domid guest1 2>/dev/null)
    check reboot ok "guest1 came back $(since "$t")s after its vtpm-result; domid $d1 -> $d2"
    sandbox_check
  else
    check reboot FAIL "no 'guest up phase=vtpm-reboot' within 120 s"
    guest_diag
    return 1
  fi
  xl list 2>&1 | prefix "[xl list] "
  if ! wait_log "XENLAB: guest ready-for-detach" 90; then
    check vtpm-detach FAIL "the rebooted guest never got ready for the detach"
    guest_diag
    xs_dump "rebooted guest not ready"
    return 1
  fi
  xs_dump "before vtpm-detach"
  xl_run list 20 vtpm-list guest1
  be=/local/domain/0/backend/vtpm/$d2/0
  xl_run detach 40 vtpm-detach guest1 0
  if [ "$XRC" = 0 ] && ! xenstore-exists "$be" 2>/dev/null; then
    check vtpm-detach ok "xl vtpm-detach guest1 0 rc=0 after ${XDT}s; $be removed"
  else
    check vtpm-detach FAIL "rc=$XRC after ${XDT}s; $be $(xenstore-exists "$be" 2>/dev/null && echo 'still there (state '"$(xenstore-read "$be/state" 2>/dev/null)"')' || echo removed)"
  fi
  xs_dump "after vtpm-detach"
  M "xs: /local/domain/$d2/device (after vtpm-detach):"
  xenstore-ls -f -p "/local/domain/$d2/device" 2>&1 | prefix "XENLAB: xs:   "
  wait_log "XENLAB: check detach-tpm0-gone" 30
  xl_run attach 40 vtpm-attach guest1 backend=0 "uuid=$VTPM_UUID"
  if [ "$XRC" = 0 ]; then
    check vtpm-attach ok "xl vtpm-attach guest1 backend=0 uuid=$VTPM_UUID rc=0 after ${XDT}s"
  else
    check vtpm-attach FAIL "rc=$XRC after ${XDT}s"
    backend_diag "$d2" "vtpm-attach failed"
    M "dom0: diagnostics: xl -vvv vtpm-attach (a second attempt)"
    timeout 40 xl -vvv vtpm-attach guest1 backend=0 "uuid=$VTPM_UUID" >/tmp/xl-attach-v.log 2>&1
    M "dom0: second attempt rc=$?"
    tail -n 30 /tmp/xl-attach-v.log | prefix "XENLAB: diag: [xl -vvv] "
  fi
  xl_run list 20 vtpm-list guest1
  [ -s /etc/xenlab/dom0-kmod.sh ] && . /etc/xenlab/dom0-kmod.sh && kmod_dom0
  [ -s /etc/xenlab/dom0-saverestore.sh ] && . /etc/xenlab/dom0-saverestore.sh && sr_dom0
  if wait_log "XENLAB: guest full-result:" 90; then
    M "dom0: guest $(grep -a "XENLAB: guest full-result:" "$GLOG" | tail -n 1 | tr -d '\r' | sed 's/.*XENLAB: guest //')"
  else
    M "dom0: no full-result from the rebooted guest within 90 s"
  fi
  xs_dump "after the re-attach"
}

# ---- --chain: manager (dom0) -> instance domain -> guest1
# wait_idom PATTERN SECS: until vtpmdom's console log has PATTERN.
wait_idom() {
  local d; d=$(deadline "$2")
  while ! grep -q "$1" "$IDLOG" 2>/dev/null; do
    past "$d" && return 1
    sleep 0.2
  done
}
# start_idom N: the instance domain, the Nth time; 0 once it is ready.
start_idom() {
  local t rc
  t=$(up)
  : >"$IDLOG.mark$1"
  xl_create idom$1 /etc/xen/vtpmdom.cfg
  while [ ! -e "/tmp/xl-idom$1.rc" ]; do sleep 0.1; done
  rc=$(cat "/tmp/xl-idom$1.rc")
  M "chain: xl create vtpmdom (#$1) rc=$rc after $(since "$t")s, domid $(xl domid vtpmdom 2>/dev/null)"
  [ "$rc" = 0 ] || return 1
  # Its console log is appended to: count the ready lines.
  local d; d=$(deadline 90)
  while [ "$(grep -c 'XENLAB: idom: ready' "$IDLOG" 2>/dev/null)" -lt "$1" ]; do
    past "$d" && { M "chain: vtpmdom (#$1) not ready within 90 s"; return 1; }
    sleep 0.2
  done
  M "chain: vtpmdom (#$1) ready $(since "$t")s after xl create started"
}
# deep_quote NAME UUID WHAT: while guest1 waits after extending PCR 16,
# dom0 has the manager quote the vTPM UUID: the PCRs come from its
# instance over the manager link (PCR_FETCH / PCR_REPORT; through
# vtpmdom's ring link for an instance in its own domain), the signature
# from the host's TPM; vtpmctl verify-quote checks it with the AK, and
# the quote's PCR 16 must be guest1's extend.  Checks NAME-deep-quote,
# NAME-quote-verifies, NAME-quote-pcr16.
deep_quote() {
  local t rc nonce ak p16 q=/tmp/$1quote.json
  t=$(up)
  nonce=$(head -c 16 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
  timeout 60 vtpmctl quote "$2" --nonce "$nonce" --out "$q" >/tmp/$1quote.log 2>&1
  rc=$?
  if [ "$rc" = 0 ]; then check $1-deep-quote ok "vtpmctl quote of $3 after $(since "$t")s"
  else check $1-deep-quote FAIL "rc $rc: $(tr '\n' ' ' </tmp/$1quote.log)"; return; fi
  ak=$(vtpmctl --json status | tr -d ' \n' | sed -n 's/.*"ak_spki":"\([0-9a-fA-F]*\)".*/\1/p')
  if vtpmctl verify-quote "$q" --ak-spki "$ak" >/tmp/$1verify.log 2>&1 &&
     grep -q "quote verifies" /tmp/$1verify.log; then
    check $1-quote-verifies ok "$(head -n 1 /tmp/$1verify.log)"
  else
    check $1-quote-verifies FAIL "$(tr '\n' ' ' </tmp/$1verify.log)"
  fi
  p16=$(tr -d ' \n' <"$q" | sed 's/.*"vtpm_pcrs":\[//; s/\].*//' | tr ',' '\n' | sed -n 17p | tr -d '"')
  if [ -n "$PCREXPECT" ] && [ "$p16" = "$PCREXPECT" ]; then
    check $1-quote-pcr16 ok "the quote's vTPM PCR 16 = guest1's extend ($p16)"
  else
    check $1-quote-pcr16 FAIL "vTPM PCR 16 in the quote '$p16', want '$PCREXPECT'"
  fi
}
chain_quote() {
  deep_quote chain1 "$CHAIN_UUID" "guest1's vTPM (instance in vtpmdom)"
}
# chain_sr: xl save + xl restore of guest1 while vtpmdom serves it (issue
# 13): the instance there cannot read guest1's Xen UUID nor its run state
# and asks the manager over its ring link (XEN_PEER, XEN_PEER_STATE). The
# guest checks its TPM after the restore (chain-sr-restore-*); dom0 checks
# vtpmdom's log: the manager told it of the suspend, and the restored
# domain resumed the saved TPM without a Startup.
chain_sr() {
  local d1 d2 t
  if ! wait_log "XENLAB: guest chain-sr-ready" "$GUEST_WAIT"; then
    check chain-sr-xl-save FAIL "guest1 never got ready for the save"
    return 1
  fi
  t=$(up)
  d1=$(xl domid guest1 2>/dev/null)
  mkdir -p /run/save
  mount -t tmpfs -o size=280m tmpfs /run/save
  xl_run chsave 180 save guest1 /run/save/guest1.save
  if [ "$XRC" = 0 ] && ! xl domid guest1 >/dev/null 2>&1; then
    check chain-sr-xl-save ok "xl save guest1 rc=0 after ${XDT}s, $(($(stat -c %s /run/save/guest1.save) / 1024)) KiB, domain $d1 gone"
  else
    check chain-sr-xl-save FAIL "rc=$XRC after ${XDT}s"
    umount /run/save
    return 1
  fi
  xl_run chrestore 180 restore /run/save/guest1.save
  d2=$(xl domid guest1 2>/dev/null)
  rm -f /run/save/guest1.save
  umount /run/save
  if [ "$XRC" = 0 ] && [ -n "$d2" ]; then
    check chain-sr-xl-restore ok "xl restore rc=0 after ${XDT}s; domid $d1 -> $d2"
  else
    check chain-sr-xl-restore FAIL "rc=$XRC after ${XDT}s"
    guest_diag
    return 1
  fi
  wait_log "XENLAB: check chain-sr-restore-session" 120 ||
    M "chain: guest1 did not report its TPM within 120 s of the restore"
  if grep -aq "the manager says domain $d1 shut down for a suspend" "$IDLOG" &&
     grep -aq "domain $d2 vtpm 0 resumes the TPM saved when domain $d1 " "$IDLOG"; then
    check chain-sr-resumed ok "vtpmdom's instance: the manager said domain $d1 shut down for a suspend; domain $d2 resumed its TPM, no Startup"
  else
    check chain-sr-resumed FAIL "vtpmdom's instance: $(grep -a 'xen-ring: .*\(manager\|resumes\|saved\|discarded\|power-cycled\)' "$IDLOG" | tail -n 4 | tr -d '\r' | tr '\n' ';')"
  fi
  M "chain: xl save + xl restore of guest1 and its checks took $(since "$t")s"
}
# chain_guest N: guest1 (phase vtpm-chainN) served by vtpmdom.
chain_guest() {
  local t rc
  t=$(up)
  xl_create chain$1 "/etc/xen/guest1-vtpm-chain$1.cfg"
  while [ ! -e "/tmp/xl-chain$1.rc" ]; do sleep 0.1; done
  rc=$(cat "/tmp/xl-chain$1.rc")
  M "chain: xl create guest1 (chain$1) rc=$rc after $(since "$t")s"
  xs_dump "chain$1: dom0's backends"
  M "xs: vtpmdom's backends:"
  xenstore-ls -f -p "/local/domain/$(xl domid vtpmdom 2>/dev/null)/backend/vtpm" 2>&1 | prefix "XENLAB: xs:   "
  if [ "$1" = 1 ] && [ "$rc" = 0 ]; then
    if wait_log "XENLAB: guest chain1-quote-now" "$GUEST_WAIT"; then
      if [ "$MGRDOM" = 1 ]; then mgrdom_quote; else chain_quote; fi
    else check chain1-deep-quote FAIL "guest1 never said chain1-quote-now"; fi
    [ "$MGRDOM" = 1 ] || chain_sr
  fi
  if [ "$rc" = 0 ] && wait_log "XENLAB: guest chain$1-result:" "$GUEST_WAIT"; then
    M "chain: $(grep -a "XENLAB: guest chain$1-result:" "$GLOG" | tail -n 1 | tr -d '\r' | sed 's/.*XENLAB: guest //')"
  else
    M "chain: FAIL no chain$1-result from guest1"
    guest_diag
  fi
  wait_gone 20
}
# ---- --mgrdom: the manager in a domain of its own, with the TPM's pages
# dom0_no_tpm: dom0's kernel has no TPM and cannot read the TPM's pages.
dom0_no_tpm() {
  local t r
  t=$(ls /dev/tpm* /sys/class/tpm 2>/dev/null | tr '\n' ' ')
  if [ -z "$(ls /dev/tpm* 2>/dev/null)" ] && [ -z "$(ls /sys/class/tpm 2>/dev/null)" ]; then
    check mgrdom-dom0-no-tpm ok "no /dev/tpm*, no /sys/class/tpm entry; cmdline: $(grep -o -E 'initcall_blacklist=[^ ]*|lockdown=[^ ]*' /proc/cmdline | tr '\n' ' ')"
  else
    check mgrdom-dom0-no-tpm FAIL "dom0 has $t"
  fi
  M "dom0: /proc/iomem at the TPM: $(grep -i -E 'fed4|MSFT0101|tpm' /proc/iomem | tr '\n' ';')"
  r=$(devmem 0xfed40f00 32 2>&1)
  case "$r" in
    0x*) check mgrdom-dom0-no-devmem FAIL "dom0 read TPM_DID_VID=$r through /dev/mem" ;;
    *) check mgrdom-dom0-no-devmem ok "devmem 0xfed40f00 in dom0: $r" ;;
  esac
}
# start_mgrdom N: the manager domain, the Nth time; 0 once it is ready.
start_mgrdom() {
  local t rc d
  t=$(up)
  xl_create mgrdom$1 /etc/xen/mgrdom.cfg
  while [ ! -e "/tmp/xl-mgrdom$1.rc" ]; do sleep 0.1; done
  rc=$(cat "/tmp/xl-mgrdom$1.rc")
  M "mgrdom: xl create mgrdom (#$1) rc=$rc after $(since "$t")s, domid $(xl domid mgrdom 2>/dev/null)"
  [ "$rc" = 0 ] || return 1
  d=$(deadline 150)
  while [ "$(grep -c 'XENLAB: mgrdom: ready' "$MDLOG" 2>/dev/null)" -lt "$1" ]; do
    past "$d" && { M "mgrdom: (#$1) not ready within 150 s"; return 1; }
    grep -q "mgrdom.sh ended" "$MDLOG" 2>/dev/null &&
      [ "$(grep -c 'mgrdom.sh ended' "$MDLOG")" -ge "$1" ] && { M "mgrdom: (#$1) ended early"; return 1; }
    sleep 0.2
  done
  M "mgrdom: (#$1) ready $(since "$t")s after xl create started"
}
# mgrdom_quote: while guest1 waits after extending PCR 16, the manager
# domain quotes guest1's vTPM (its instance is in vtpmdom), verifies it
# against its AK and compares the quote's PCR 16 with guest1's extend.
mgrdom_quote() {
  local md n d
  md=$(xl domid mgrdom 2>/dev/null) || { check mgrdom-quote FAIL "no mgrdom"; return; }
  n=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  xenstore-write "/local/domain/$md/data/lab-cmd" "quote $n ${PCREXPECT:-none}"
  d=$(deadline 90)
  until grep -q "lab-cmd done: quote $n" "$MDLOG" 2>/dev/null || past "$d"; do sleep 0.2; done
  grep -q "lab-cmd done: quote $n" "$MDLOG" || M "mgrdom: the quote did not finish within 90 s"
}
if [ "$CHAIN" = 1 ]; then
  if [ "$MGRDOM" = 1 ]; then
    dom0_no_tpm
    if start_mgrdom 1; then
      check mgrdom-started ok "the manager domain is up"
    else
      check mgrdom-started FAIL "see [mgrdom] above"
    fi
  else
    d=$(deadline 90)
    until grep -q 'dom0-manager: ready' /tmp/backend.log 2>/dev/null || past "$d"; do sleep 0.2; done
  fi
  if start_idom 1; then
    chain_guest 1
    # vtpmdom's instance, sandboxed in its own domain as in dom0.
    st=$(grep -a 'XENLAB: idom: instance sandbox:' "$IDLOG" | tail -n 1 | tr -d '\r' | sed 's/.*instance sandbox: //')
    if sandbox_ok "$st"; then
      check chain-idom-sandbox ok "vtpmdom's instance: $st"
    else
      check chain-idom-sandbox FAIL "vtpmdom's instance: ${st:-no report}"
    fi
    # guest1 again: a new domain (new domid) for the same instance (the
    # chain lab's check; --mgrdom saves the boot).
    [ "$MGRDOM" = 1 ] || chain_guest b
    # The instance domain goes away (destroyed, not shut down: what it
    # acknowledged must already be on its disk) and comes back.
    T=$(up)
    timeout 60 xl destroy vtpmdom 2>&1 | prefix "[xl] "
    check chain-idom-destroyed "$(xl domid vtpmdom >/dev/null 2>&1 && echo FAIL || echo ok)" "xl destroy vtpmdom after $(since "$T")s"
    if [ "$MGRDOM" = 1 ]; then
      # The manager domain goes too (destroyed: what it acknowledged is
      # on its disk) and comes back: it must unseal its root key again
      # through the TPM's pages, and vtpmdom's link finds it.
      T=$(up)
      timeout 60 xl destroy mgrdom 2>&1 | prefix "[xl] "
      check mgrdom-destroyed "$(xl domid mgrdom >/dev/null 2>&1 && echo FAIL || echo ok)" "xl destroy mgrdom after $(since "$T")s"
      if start_mgrdom 2 && grep -a 'XENLAB: check mgrdom-manager ok' "$MDLOG" | tail -n 1 | grep -q 'root key unsealed'; then
        check mgrdom-restarted ok "$(grep -a 'XENLAB: check mgrdom-manager ok' "$MDLOG" | tail -n 1 | sed 's/.*mgrdom-manager ok //')"
      else
        check mgrdom-restarted FAIL "the re-created manager domain did not unseal its root key"
      fi
    fi
    if start_idom 2; then
      check chain-idom-restarted ok "vtpmdom is back, domid $(xl domid vtpmdom 2>/dev/null)"
      chain_guest 2
    else
      check chain-idom-restarted FAIL "vtpmdom did not come back"
    fi
  fi
  timeout 60 xl destroy vtpmdom 2>&1 | prefix "[xl] "
  if [ "$MGRDOM" = 1 ]; then
    timeout 60 xl destroy mgrdom 2>&1 | prefix "[xl] "
    finish
  fi
  # --xen-unknown create: a device naming a UUID the manager does not know
  # (written by hand, as xl would, for domain 77) gets a new vTPM and an
  # instance, which answers InitWait; removing the device stops it.
  U=0badc0de-0000-4000-8000-00000000c0de
  for n in frontend-id:77 frontend:/local/domain/77/device/vtpm/0 state:1 "uuid:$U"; do
    xenstore-write "/local/domain/0/backend/vtpm/77/0/${n%%:*}" "${n#*:}"
  done
  d=$(deadline 30)
  until [ "$(xenstore-read /local/domain/0/backend/vtpm/77/0/state 2>/dev/null)" = 2 ] || past "$d"; do
    sleep 0.2
  done
  st=$(xenstore-read /local/domain/0/backend/vtpm/77/0/state 2>/dev/null)
  if grep -q "domain 77 vtpm 0: created vTPM $U (xen-unknown=create)" /tmp/backend.log && [ "$st" = 2 ]; then
    check chain-unknown-created ok "vTPM $U created; its instance answered InitWait"
  else
    check chain-unknown-created FAIL "state '$st'; $(grep -m1 'domain 77' /tmp/backend.log)"
  fi
  xenstore-rm /local/domain/0/backend/vtpm/77
  d=$(deadline 20)
  until grep -q "domain 77 vtpm 0 is gone: stopping vTPM $U" /tmp/backend.log || past "$d"; do sleep 0.2; done
  if grep -q "domain 77 vtpm 0 is gone: stopping vTPM $U" /tmp/backend.log; then
    check chain-unknown-stopped ok "device removed: instance stopped"
  else
    check chain-unknown-stopped FAIL "no stop logged within 20 s"
  fi
  finish
fi

# ---- host boot 2 (--host-restart): only the guest's vTPM, back again
if [ "$XENLAB_BOOT" != 1 ]; then
  d=$(deadline 90)
  until grep -q 'dom0-manager: ready' /tmp/backend.log 2>/dev/null || past "$d"; do sleep 0.2; done
  T=$(up)
  xl_create host2 /etc/xen/guest1-vtpm-host2.cfg
  while [ ! -e /tmp/xl-host2.rc ]; do sleep 0.1; done
  RC=$(cat /tmp/xl-host2.rc)
  M "host2: xl create rc=$RC after $(since "$T")s"
  xs_dump "host boot $XENLAB_BOOT, after xl create returned"
  if [ "$RC" = 0 ] && wait_log "XENLAB: guest host2-result:" "$GUEST_WAIT"; then
    M "host2: $(grep -a "XENLAB: guest host2-result:" "$GLOG" | tail -n 1 | tr -d '\r' | sed 's/.*XENLAB: guest //')"
  else
    M "host2: FAIL no host2-result from the guest"
    guest_diag
  fi
  wait_gone 15
  # A TPM 1.2 vTPM through the ring, with the stock driver.
  T=$(up)
  xl_create v12 /etc/xen/guest1-vtpm12.cfg
  while [ ! -e /tmp/xl-v12.rc ]; do sleep 0.1; done
  RC=$(cat /tmp/xl-v12.rc)
  M "vtpm12: xl create rc=$RC after $(since "$T")s"
  if [ "$RC" = 0 ] && wait_log "XENLAB: guest vtpm12-result:" "$GUEST_WAIT"; then
    M "vtpm12: $(grep -a "XENLAB: guest vtpm12-result:" "$GLOG" | tail -n 1 | tr -d '\r' | sed 's/.*XENLAB: guest //')"
  else
    M "vtpm12: FAIL no vtpm12-result from the guest"
    guest_diag
  fi
  wait_gone 15
  # A device naming a UUID the manager does not know is refused, with a
  # line that names it (written by hand, as xl would, for domain 77).
  U=0badc0de-0000-4000-8000-00000000bad0
  for n in frontend-id:77 frontend:/local/domain/77/device/vtpm/0 state:1 "uuid:$U"; do
    xenstore-write "/local/domain/0/backend/vtpm/77/0/${n%%:*}" "${n#*:}"
  done
  d=$(deadline 10)
  until grep -q "domain 77 vtpm 0 names vTPM $U, which this manager does not know: refused" \
      /tmp/backend.log || past "$d"; do sleep 0.2; done
  if grep -q "domain 77 vtpm 0 names vTPM $U, which this manager does not know: refused" /tmp/backend.log; then
    check unknown-uuid-refused ok "$(grep -m1 "domain 77 vtpm 0 names" /tmp/backend.log | sed 's/.*\]: //')"
  else
    check unknown-uuid-refused FAIL "no refusal logged within 10 s"
  fi
  st=$(xenstore-read /local/domain/0/backend/vtpm/77/0/state 2>/dev/null)
  if [ "$st" = 1 ] && ! ps w | grep -v grep | grep -q -- "--domid 77 "; then
    check unknown-uuid-untouched ok "state still 1, no instance for domain 77"
  else
    check unknown-uuid-untouched FAIL "state '$st', instance: $(ps w | grep -v grep | grep -- '--domid 77 ')"
  fi
  xenstore-rm /local/domain/0/backend/vtpm/77
  # The same command over a vtpm-service UNIX socket in dom0, nothing else
  # running (tools/bench/run-ring-bench.sh compares it with the ring's).
  mkdir -p /tmp/bench && head -c 32 /dev/urandom >/tmp/bench/key && chmod 600 /tmp/bench/key
  vtpm-service --role=instance --domid 99 --transport unix:/tmp/bench/tpm \
    --state-key /tmp/bench/key --state-dir /tmp/bench --log-level warning &
  BPID=$!
  d=$(deadline 30)
  while [ ! -S /tmp/bench/tpm ] && ! past "$d"; do sleep 0.1; done
  for r in 1 2 3; do
    M "bench unix: $(tpmraw -u /tmp/bench/tpm -n 500 80010000000c0000017b0008 2>&1)"
  done
  kill "$BPID"; wait "$BPID"
  finish
fi

# ---- phase 1: a plain PV guest proves the lab
T=$(up)
xl_create plain /etc/xen/guest1-plain.cfg
while [ ! -e /tmp/xl-plain.rc ]; do sleep 0.1; done
RC=$(cat /tmp/xl-plain.rc)
M "plain-guest: xl create rc=$RC after $(since "$T")s (domid $(xl domid guest1 2>/dev/null))"
if [ "$RC" = 0 ] && wait_log "XENLAB: guest up phase=plain" "$GUEST_WAIT"; then
  M "plain-guest: up ($(since "$T")s after xl create started)"
else
  M "plain-guest: NOT up"
  guest_diag
fi
wait_gone 60 && M "plain-guest: gone ($(since "$T")s after xl create started)"

# ---- phase 2: the same guest with a vtpm device
if [ "$HAVE_BACKEND" = 1 ]; then LABEL=vtpm-with-backend; else LABEL=vtpm-without-backend; fi
T=$(up)
xl_create vtpm /etc/xen/guest1-vtpm.cfg
SNAP=0 SEEN=""
# Snapshots: when xl's nodes appear, 9 s later (libxl waits 10 s for
# InitWait), 13 s later (during the removal that follows a failure).
while [ ! -e /tmp/xl-vtpm.rc ]; do
  NOW=$(up)
  if [ $SNAP = 0 ] && xenstore-list /local/domain/0/backend/vtpm >/dev/null 2>&1; then
    SEEN=$NOW
    xs_dump "first seen $(since "$T")s after xl create started"; SNAP=1
  elif [ $SNAP = 1 ] && ge "$(since "$SEEN")" 9; then
    xs_dump "$(since "$SEEN")s after they appeared"; SNAP=2
  elif [ $SNAP = 2 ] && ge "$(since "$SEEN")" 13; then
    xs_dump "$(since "$SEEN")s after they appeared"; SNAP=3
  fi
  sleep 0.2
done
RC=$(cat /tmp/xl-vtpm.rc)
DT=$(since "$T")
# when LINE: seconds from the vtpm nodes' appearance to the xl line LINE.
when() {
  awk -v s="${SEEN:-0}" '{ printf "%.1f", $1 - s; exit }' <<XLEOF
$1
XLEOF
}
WHY=$(grep 'unable to add vtpm devices' /tmp/xl-vtpm.log | head -n 1)
[ -n "$WHY" ] || WHY=$(grep -i 'error' /tmp/xl-vtpm.log | head -n 1)
REM=$(grep 'unable to remove device' /tmp/xl-vtpm.log | head -n 1)
if xl domid guest1 >/dev/null 2>&1; then DOM="guest1 exists"; else DOM="guest1 no longer exists"; fi
[ -n "$SEEN" ] && M "dom0: vtpm nodes appeared $(awk -v a="$SEEN" -v b="$T" 'BEGIN { printf "%.1f", a - b }')s after xl create started"
if [ "$RC" != 0 ]; then
  xs_dump "after xl create returned"
  xl list 2>&1 | prefix "[xl list] "
  M "dom0: xenstore domains: $(xenstore-list /local/domain | tr '\n' ' ')"
  if [ -n "$WHY" ] && [ -n "$SEEN" ]; then
    STEPS="'${WHY#* libxl: error: }' $(when "$WHY")s after the nodes appeared"
    [ -n "$REM" ] && STEPS="$STEPS, '${REM#* libxl: error: }' at $(when "$REM")s"
  else
    STEPS="${WHY:-no error line}"
  fi
  M "$LABEL: xl create failed rc=$RC after ${DT}s, $DOM; $STEPS"
else
  M "dom0: vtpm xl create rc=0 after ${DT}s, $DOM"
  VTPM_DOMID=$(xl domid guest1 2>/dev/null)
  if [ "$FULL" = 1 ]; then
    # The guest's next boot (after its reboot -f) gets XENLAB_PHASE=vtpm-reboot.
    timeout 30 xl config-update guest1 /etc/xen/guest1-vtpm-reboot.cfg >/tmp/xl-cu.log 2>&1
    M "dom0: xl config-update guest1 guest1-vtpm-reboot.cfg rc=$?"
    prefix "[xl] " </tmp/xl-cu.log
  fi
  xs_dump "after xl create returned"
  if wait_log "XENLAB: guest vtpm-result:" "$GUEST_WAIT"; then
    R=$(grep "XENLAB: guest vtpm-result:" "$GLOG" | tail -n 1 | tr -d '\r')
    M "$LABEL: ${R#*vtpm-result: }"
  else
    M "$LABEL: FAIL no vtpm-result from the guest within $GUEST_WAIT s"
    guest_diag
  fi
  xs_dump "after the guest's checks"
  [ "$FULL" = 1 ] && full_dom0
  # A guest whose xen-tpmfront probe is stuck cannot power off until the
  # probe gives up (about 2 minutes): destroy it after 15 s.
  wait_gone 15 && M "dom0: guest1 gone ($(since "$T")s after xl create started)"
  xs_dump "after the guest is gone"
fi
finish
EOF
  chmod 755 "$1"
}

TB=$(date +%s.%N)
GROOT="$WORKDIR/guest-root"
DROOT="$WORKDIR/dom0-root"

base_root "$GROOT" || die "cannot build the guest root"
GORDER=$(module_order $GUEST_MODULES) || die "guest modules: see above"
for ko in $GORDER; do cp "$KMODS/$ko" "$GROOT/lib/modules/xenlab/"; done
echo "$GORDER" >"$GROOT/etc/xenlab/guest-modules"
[ -n "$GUEST_CMD" ] && printf '%s\n' "$GUEST_CMD" >"$GROOT/etc/xenlab/guest-cmd"
if [ "$FULL" = 1 ]; then
  cp "$(cd "$(dirname "$0")" && pwd)/guest-full.sh" "$GROOT/etc/xenlab/guest-full.sh" ||
    die "cannot copy guest-full.sh"
  # Fresh values per run: what PCR 16 must hold after one extend, the NV bytes.
  hex() { head -c "$1" /dev/urandom | od -An -v -tx1 | tr -d ' \n'; }
  NVDATA=$(hex 8) PCRDIGEST=$(hex 32)
  PCREXPECT=$({ head -c 32 /dev/zero; perl -e 'print pack("H*", $ARGV[0])' "$PCRDIGEST"; } |
              sha256sum | cut -c1-64)
  PCR12DIGEST=$(hex 20)
  PCR12EXPECT=$({ head -c 20 /dev/zero; perl -e 'print pack("H*", $ARGV[0])' "$PCR12DIGEST"; } |
                sha1sum | cut -c1-40)
  printf 'NVDATA=%s\nPCRDIGEST=%s\nPCREXPECT=%s\nPCR12DIGEST=%s\nPCR12EXPECT=%s\n' \
    "$NVDATA" "$PCRDIGEST" "$PCREXPECT" "$PCR12DIGEST" "$PCR12EXPECT" \
    >"$GROOT/etc/xenlab/full.env"
  log "--full: NV bytes $NVDATA; PCR 16 extend by $PCRDIGEST must give $PCREXPECT"
fi
if [ "$CHAIN" = 1 ]; then
  XL_DIR=$(cd "$(dirname "$0")" && pwd)
  copy_bin "$GROOT" /usr/bin/xenstore || die "cannot copy /usr/bin/xenstore"
  for l in xenstore-read xenstore-write xenstore-list xenstore-exists xenstore-ls; do
    ln -sf xenstore "$GROOT/usr/bin/$l"
  done
  cp "$XL_DIR/idom.sh" "$GROOT/etc/xenlab/idom.sh" || die "cannot copy idom.sh"
  # guest1's xl save + xl restore while vtpmdom serves it (chain-sr-*).
  [ "$MGRDOM" = 1 ] || : >"$GROOT/etc/xenlab/chain-sr" || die "cannot write chain-sr"
  cp "$XL_DIR/mgrdom.sh" "$GROOT/etc/xenlab/mgrdom.sh" || die "cannot copy mgrdom.sh"
  IORDER=$(module_order $IDOM_MODULES) || die "instance domain modules: see above"
  for ko in $IORDER; do cp "$KMODS/$ko" "$GROOT/lib/modules/xenlab/"; done
  echo "$IORDER" >"$GROOT/etc/xenlab/idom-modules"
  # tpm2-tools in guest1: the multi-call tpm2 and the TCTI it dlopens.
  T2=$(command -v tpm2) || die "--chain needs tpm2-tools (tpm2)"
  copy_bin "$GROOT" "$(readlink -f "$T2")" /usr/bin/tpm2 || die "cannot copy $T2"
  for l in $(ldconfig -p | awk '/libtss2-tcti-device.so.0 .*x86-64/ { print $NF }'); do
    copy_bin "$GROOT" "$(readlink -f "$l")" "$l" || die "cannot copy $l"
  done
fi
if [ -n "$GUEST_KMOD" ]; then
  # The stock driver stays in the image (for the benchmark), not in the boot list.
  XL_DIR=$(cd "$(dirname "$0")" && pwd)
  mv "$GROOT/etc/xenlab/guest-modules" "$GROOT/etc/xenlab/stock-modules"
  cp "$GUEST_KMOD" "$GROOT/lib/modules/xenlab/vtpm_front.ko" || die "cannot copy $GUEST_KMOD"
  echo vtpm_front.ko >"$GROOT/etc/xenlab/guest-modules"
  cp "$XL_DIR/guest-kmod.sh" "$GROOT/etc/xenlab/" || die "cannot copy guest-kmod.sh"
  [ "$KMOD_BENCH" = 0 ] || : >"$GROOT/etc/xenlab/kmod-bench" || die "cannot write kmod-bench"
  # tpm2-tools: the multi-call tpm2, its tpm2_* links and the dlopen'ed TCTI.
  T2=$(command -v tpm2) || die "--guest-kmod needs tpm2-tools (tpm2)"
  copy_bin "$GROOT" "$T2" /usr/bin/tpm2 || die "cannot copy $T2"
  for l in /usr/bin/tpm2_*; do ln -sf tpm2 "$GROOT/usr/bin/${l##*/}"; done
  for l in $(ldconfig -p | awk '/libtss2-tcti-device.so.0 .*x86-64/ { print $NF }'); do
    copy_bin "$GROOT" "$(readlink -f "$l")" "$l" || die "cannot copy $l"
  done
fi
if [ "$SAVERESTORE" = 1 ]; then
  XL_DIR=$(cd "$(dirname "$0")" && pwd)
  cp "$XL_DIR/guest-saverestore.sh" "$GROOT/etc/xenlab/" || die "cannot copy guest-saverestore.sh"
  if [ ! -e "$GROOT/usr/bin/tpm2" ]; then
    T2=$(command -v tpm2) || die "--saverestore needs tpm2-tools (tpm2)"
    copy_bin "$GROOT" "$(readlink -f "$T2")" /usr/bin/tpm2 || die "cannot copy $T2"
    for l in $(ldconfig -p | awk '/libtss2-tcti-device.so.0 .*x86-64/ { print $NF }'); do
      copy_bin "$GROOT" "$(readlink -f "$l")" "$l" || die "cannot copy $l"
    done
  fi
fi
write_guest_init "$GROOT/init"
pack "$GROOT" "$WORKDIR/guest-initrd.gz" || die "cannot pack the guest initramfs"

base_root "$DROOT" || die "cannot build the dom0 root"
for b in xl xenstored xenconsoled xen-init-dom0; do
  copy_bin "$DROOT" "$XEN_LIBEXEC/$b" || die "cannot copy $XEN_LIBEXEC/$b"
done
copy_bin "$DROOT" /usr/bin/xenstore || die "cannot copy /usr/bin/xenstore"
for l in xenstore-ls xenstore-read xenstore-write xenstore-list xenstore-rm xenstore-exists \
         xenstore-chmod xenstore-watch; do
  ln -sf xenstore "$DROOT/usr/bin/$l"
done
DORDER=$(module_order $DOM0_MODULES) || die "dom0 modules: see above"
for ko in $DORDER; do cp "$KMODS/$ko" "$DROOT/lib/modules/xenlab/"; done
echo "$DORDER" >"$DROOT/etc/xenlab/dom0-modules"
mkdir -p "$DROOT/etc/xen" "$DROOT/guest"
: >"$DROOT/etc/xen/xl.conf"
cp "$VMLINUZ" "$DROOT/guest/vmlinuz"
cp "$WORKDIR/guest-initrd.gz" "$DROOT/guest/initrd.gz"
for phase in plain vtpm vtpm-reboot vtpm-host2 vtpm12 vtpm-chain1 vtpm-chainb vtpm-chain2 vtpm-sr; do
  {
    echo 'name = "guest1"'
    echo 'type = "pv"'
    echo 'kernel = "/guest/vmlinuz"'
    echo 'ramdisk = "/guest/initrd.gz"'
    echo "extra = \"console=hvc0 XENLAB_PHASE=$phase\""
    echo "memory = $GUEST_MEM"
    echo 'vcpus = 1'
    case "$phase" in
      vtpm12) echo "vtpm = [ \"backend=0,uuid=$VTPM12_UUID\" ]" ;;
      vtpm-chain*) echo "vtpm = [ \"backend=vtpmdom,uuid=$CHAIN_UUID\" ]" ;;
      vtpm*) echo 'on_reboot = "restart"'
             echo "vtpm = [ \"backend=0,uuid=$VTPM_UUID\" ]" ;;
    esac
  } >"$DROOT/etc/xen/guest1-$phase.cfg"
done
if [ -n "$DOM0_CHECK" ]; then
  printf '%s\n' "$DOM0_CHECK" >"$DROOT/etc/xenlab/dom0-check"
fi
if [ "$CHAIN" = 1 ]; then
  # The instance domain: its link to the manager is a vtpm device whose
  # backend is dom0; its state is on dom0's second virtio disk (/dev/vdb),
  # given to it through blkback with a minimal hotplug script.
  {
    echo 'name = "vtpmdom"'
    echo 'type = "pv"'
    echo 'kernel = "/guest/vmlinuz"'
    echo 'ramdisk = "/guest/initrd.gz"'
    echo "extra = \"console=hvc0 XENLAB_PHASE=idom XENLAB_UUID=$CHAIN_UUID\""
    echo 'memory = 160'
    echo 'vcpus = 1'
    if [ "$MGRDOM" = 1 ]; then
      echo "vtpm = [ \"backend=mgrdom,uuid=$CHAIN_UUID\" ]"
    else
      echo "vtpm = [ \"backend=0,uuid=$CHAIN_UUID\" ]"
    fi
    echo "disk = [ 'vdev=xvda, access=rw, format=raw, script=/etc/xen/scripts/lab-block, target=/dev/vdb' ]"
  } >"$DROOT/etc/xen/vtpmdom.cfg"
  # xl save + xl restore of guest1 (chain-sr-*) run libxl-save-helper.
  if [ "$MGRDOM" = 0 ] && [ ! -e "$DROOT$XEN_LIBEXEC/libxl-save-helper" ]; then
    copy_bin "$DROOT" "$XEN_LIBEXEC/libxl-save-helper" || die "cannot copy libxl-save-helper"
  fi
  if [ "$MGRDOM" = 1 ]; then
    # The manager domain (conf/xen/mgrdom.cfg is the documented form): the
    # TPM's five locality pages, mapped 1:1 (e820_host), its own disk.
    {
      echo 'name = "mgrdom"'
      echo 'type = "pv"'
      echo 'kernel = "/guest/vmlinuz"'
      echo 'ramdisk = "/guest/initrd.gz"'
      echo "extra = \"console=hvc0 XENLAB_PHASE=mgrdom XENLAB_UUID=$CHAIN_UUID\""
      echo 'memory = 192'
      echo 'vcpus = 1'
      echo 'iomem = [ "fed40,5" ]'
      echo 'e820_host = 1'
      echo "disk = [ 'vdev=xvda, access=rw, format=raw, script=/etc/xen/scripts/lab-block, target=/dev/vda' ]"
    } >"$DROOT/etc/xen/mgrdom.cfg"
  fi
  mkdir -p "$DROOT/etc/xen/scripts"
  cat >"$DROOT/etc/xen/scripts/lab-block" <<'EOS'
#!/bin/sh
# libxl's hotplug step for a phy disk, minimal: tell blkback which device.
case "$1" in
  add)
    dev=$(xenstore-read "$XENBUS_PATH/params") || exit 1
    mm=$(stat -L -c '%t:%T' "$dev") || exit 1
    xenstore-write "$XENBUS_PATH/physical-device" "$mm" \
      "$XENBUS_PATH/physical-device-path" "$dev" \
      "$XENBUS_PATH/hotplug-status" connected ;;
  remove) ;;
esac
exit 0
EOS
  chmod 755 "$DROOT/etc/xen/scripts/lab-block"
fi
HAVE_BACKEND=0
if [ -n "$BACKEND_CMD" ]; then
  printf '%s\n' "$BACKEND_CMD" >"$DROOT/etc/xenlab/backend-cmd"
  HAVE_BACKEND=1
fi
printf 'HAVE_BACKEND=%s\nGUEST_WAIT=%s\nFULL=%s\nBACKEND_PER_DOMAIN=%s\nVTPM_UUID=%s\nSTATE_DISK=%s\nVTPM12_UUID=%s\nCHAIN=%s\nCHAIN_UUID=%s\nMGRDOM=%s\nPCREXPECT=%s\n' \
  "$HAVE_BACKEND" 120 "$FULL" "$BACKEND_PER_DOMAIN" "$VTPM_UUID" "$STATE_DISK" "$VTPM12_UUID" "$CHAIN" "$CHAIN_UUID" "$MGRDOM" "${PCREXPECT:-}" \
  >"$DROOT/etc/xenlab/env"
if [ "$HOST_TPM" = 1 ]; then
  # The TCTI tss2-tctildr dlopens for device:/dev/tpmrm0 (ldd cannot see it).
  t=$(ls /usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0 2>/dev/null)
  [ -n "$t" ] || die "--host-tpm: no libtss2-tcti-device.so.0 on the host (libtss2-tcti-device0)"
  copy_bin "$DROOT" "$(readlink -f "$t")" "$t" || die "cannot copy $t"
fi
if [ -n "$GUEST_KMOD" ]; then   # xl save/restore run libxl-save-helper
  cp "$XL_DIR/dom0-kmod.sh" "$DROOT/etc/xenlab/" || die "cannot copy dom0-kmod.sh"
  copy_bin "$DROOT" "$XEN_LIBEXEC/libxl-save-helper" || die "cannot copy libxl-save-helper"
fi
if [ "$SAVERESTORE" = 1 ]; then   # xl save/restore/migrate run libxl-save-helper
  cp "$XL_DIR/dom0-saverestore.sh" "$DROOT/etc/xenlab/" || die "cannot copy dom0-saverestore.sh"
  [ -e "$DROOT$XEN_LIBEXEC/libxl-save-helper" ] ||
    copy_bin "$DROOT" "$XEN_LIBEXEC/libxl-save-helper" || die "cannot copy libxl-save-helper"
fi
write_dom0_init "$DROOT/init"
pack "$DROOT" "$WORKDIR/dom0-initrd.gz" || die "cannot pack the dom0 initramfs"
log "images built in $(awk -v a="$(date +%s.%N)" -v b="$TB" 'BEGIN{printf "%.1f", a-b}')s:" \
    "dom0 $(( $(stat -c %s "$WORKDIR/dom0-initrd.gz") / 1024 )) KiB," \
    "guest $(( $(stat -c %s "$WORKDIR/guest-initrd.gz") / 1024 )) KiB"

# ------------------------------------------------------------------- QEMU
# Multiboot modules are the comma-separated -initrd list, each followed by
# its command line: no commas in paths.
case "$VMLINUZ$WORKDIR" in *,*) die "paths must not contain commas: $VMLINUZ $WORKDIR" ;; esac
XEN_APPEND="console=com1 com1=115200,8n1 dom0_mem=512M,max:512M dom0_max_vcpus=1 loglvl=all guest_loglvl=all smap=0 smep=0 bootscrub=0"
if [ "$CHAIN" = 1 ]; then
  rm -f "$WORKDIR/idom.img"
  truncate -s 32M "$WORKDIR/idom.img" &&
    mkfs.ext4 -q -F -L idomstate "$WORKDIR/idom.img" >"$WORKDIR/mkfs-idom.log" 2>&1 ||
    { cat "$WORKDIR/mkfs-idom.log"; die "cannot make the instance domain's disk"; }
fi
if [ "$MGRDOM" = 1 ]; then
  rm -f "$WORKDIR/mgrdom.img"
  truncate -s 32M "$WORKDIR/mgrdom.img" &&
    mkfs.ext4 -q -F -L mgrstate "$WORKDIR/mgrdom.img" >"$WORKDIR/mkfs-mgrdom.log" 2>&1 ||
    { cat "$WORKDIR/mkfs-mgrdom.log"; die "cannot make the manager domain's disk"; }
fi
if [ "$STATE_DISK" = 1 ]; then
  rm -f "$WORKDIR/state.img"
  truncate -s 64M "$WORKDIR/state.img" &&
    mkfs.ext4 -q -F -L vtpmstate "$WORKDIR/state.img" >"$WORKDIR/mkfs.log" 2>&1 ||
    { cat "$WORKDIR/mkfs.log"; die "cannot make the state disk"; }
fi
HOSTTPM="$WORKDIR/hosttpm"
rm -rf "$HOSTTPM"; mkdir -p "$HOSTTPM/state"
# start_host_tpm: the stand-in physical TPM for one boot (its state
# directory is kept across boots, as a TPM's NV is).
start_host_tpm() {
  rm -f "$HOSTTPM/ctrl"
  # --ctrl only: QEMU hands swtpm the data channel; swtpm exits when QEMU
  # disconnects. No startup flags: SeaBIOS sends TPM2_Startup.
  setsid swtpm socket --tpm2 --tpmstate dir="$HOSTTPM/state" \
    --ctrl type=unixio,path="$HOSTTPM/ctrl" </dev/null >>"$WORKDIR/swtpm.log" 2>&1 &
  SWTPM_PID=$!
  for _ in $(seq 100); do [ -S "$HOSTTPM/ctrl" ] && break; sleep 0.05; done
  [ -S "$HOSTTPM/ctrl" ] || { cat "$WORKDIR/swtpm.log"; die "swtpm did not create $HOSTTPM/ctrl"; }
}

# No XSAVE/AVX: with three PV domains sharing the two vCPUs (--chain), user
# processes in every domain crashed at random (busybox, xl, tpmraw at its
# first %fs access, the manager inside libcrypto) under QEMU 7.2's TCG with
# -cpu max; without XSAVE and AVX, none did (and Xen falls back to FXSAVE).
QEMU_CPU=${XENLAB_QEMU_CPU:-max,-xsave,-avx,-avx2}
# boot_host N LOG: one boot of the host (Xen + dom0), serial output in LOG;
# sets QRC (QEMU's status) and QDT (seconds).
boot_host() {
  local n=$1 slog=$2 extra="" fifo
  [ "$n" = 1 ] || extra=" xenlab_boot=$n"
  # --mgrdom: dom0's kernel leaves the TPM alone and cannot read /dev/mem.
  [ "$MGRDOM" = 1 ] && extra="$extra initcall_blacklist=init_tis lockdown=integrity"
  QEMU_ARGS=(
    -accel tcg -cpu "$QEMU_CPU" -m 2048 -smp 2 -nographic -no-reboot -nic none
    -kernel "$XEN_ELF" -append "$XEN_APPEND"
    -initrd "$VMLINUZ console=hvc0 earlyprintk=xen$extra,$WORKDIR/dom0-initrd.gz"
  )
  [ "$STATE_DISK" = 1 ] && QEMU_ARGS+=(-drive "file=$WORKDIR/state.img,format=raw,if=virtio")
  [ "$MGRDOM" = 1 ] && QEMU_ARGS+=(-drive "file=$WORKDIR/mgrdom.img,format=raw,if=virtio")
  [ "$CHAIN" = 1 ] && QEMU_ARGS+=(-drive "file=$WORKDIR/idom.img,format=raw,if=virtio")
  if [ "$HOST_TPM" = 1 ]; then
    start_host_tpm
    QEMU_ARGS+=(-chardev "socket,id=chrtpm,path=$HOSTTPM/ctrl"
                -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0)
  fi
  printf '%q ' timeout "$QEMU_TIMEOUT" qemu-system-x86_64 "${QEMU_ARGS[@]}" >"$WORKDIR/qemu$n.cmdline"
  echo >>"$WORKDIR/qemu$n.cmdline"
  # Serial output is timestamped (seconds since QEMU started) on the way in.
  fifo="$WORKDIR/serial$n.fifo"
  rm -f "$fifo"; mkfifo "$fifo" || die "mkfifo $fifo"
  perl -MTime::HiRes=time -e '
    $| = 1; my $t0 = time;
    while (my $l = <STDIN>) { $l =~ s/\r//g; printf "[%7.2f] %s", time - $t0, $l; }' \
    <"$fifo" >"$slog" &
  STAMP_PID=$!
  log "host boot $n: starting QEMU (timeout ${QEMU_TIMEOUT}s): $(cat "$WORKDIR/qemu$n.cmdline")"
  TQ=$(date +%s.%N)
  timeout -k 5 "$QEMU_TIMEOUT" qemu-system-x86_64 "${QEMU_ARGS[@]}" </dev/null >"$fifo" 2>>"$QEMU_ERR" &
  QEMU_PID=$!
  wait "$QEMU_PID"
  QRC=$?
  QEMU_PID=""
  QDT=$(awk -v a="$(date +%s.%N)" -v b="$TQ" 'BEGIN{printf "%.1f", a-b}')
  wait "$STAMP_PID" 2>/dev/null
  STAMP_PID=""
  if [ -n "$SWTPM_PID" ]; then
    for _ in $(seq 50); do kill -0 "$SWTPM_PID" 2>/dev/null || break; sleep 0.1; done
    kill "$SWTPM_PID" 2>/dev/null; wait "$SWTPM_PID" 2>/dev/null; SWTPM_PID=""
  fi
  log "host boot $n: QEMU exited with status $QRC after ${QDT}s"
}
SWTPM_PID=""
: >"$QEMU_ERR"
boot_host 1 "$SERIAL_LOG"

grep -a 'XENLAB:' "$SERIAL_LOG" | grep -av '\[guest1\]'
echo "--- guest console lines with markers ---"
grep -a '\[guest1\].*XENLAB:' "$SERIAL_LOG"

# Milestones: the first serial line matching each pattern.
echo "--- timings (seconds since QEMU start) ---"
ms() {
  local t
  t=$(grep -a -m1 -E "$2" "$SERIAL_LOG" | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p')
  printf '  %-44s %s\n' "$1" "${t:--}"
}
ms "Xen banner" '\(XEN\) Xen version'
ms "dom0 kernel starts" 'Linux version [0-9]'
ms "dom0 /init" 'XENLAB: dom0: init started'
ms "Xen userspace up" 'XENLAB: dom0: xen userspace up'
ms "plain xl create returned" 'XENLAB: plain-guest: xl create rc='
ms "plain guest /init (seen by dom0)" '\[guest1\] XENLAB: guest up phase=plain'
ms "dom0 saw the plain guest up" 'XENLAB: plain-guest: up'
ms "plain guest gone" 'XENLAB: plain-guest: gone'
ms "vtpm nodes first seen" 'XENLAB: xs: .*first seen'
ms "vtpm xl create outcome" 'XENLAB: vtpm-with(out)?-backend: '
if [ "$FULL" = 1 ]; then
  ms "guest reboot -f" '\[guest1\] XENLAB: guest: rebooting'
  ms "rebooted guest /init" '\[guest1\] XENLAB: guest up phase=vtpm-reboot'
  ms "rebooted guest ready for vtpm-detach" '\[guest1\] XENLAB: guest ready-for-detach'
  ms "vtpm-detach done" 'XENLAB: check vtpm-detach '
  ms "vtpm-attach done" 'XENLAB: check vtpm-attach '
  ms "guest re-attach checks done" '\[guest1\] XENLAB: guest full-result:'
fi
ms "dom0 power off" 'XENLAB: dom0: powering off'
printf '  %-44s %s\n' "QEMU exit" "$QDT"

show_logs() {
  echo "--- QEMU stderr ---"; tail -n 30 "$QEMU_ERR"
  echo "--- serial log (tail) ---"; tail -n 100 "$SERIAL_LOG"
}

PLAIN_OK=0
grep -aq 'XENLAB: plain-guest: up' "$SERIAL_LOG" && PLAIN_OK=1
VTPM_OK=0
grep -aq 'XENLAB: vtpm-with-backend: ok' "$SERIAL_LOG" && VTPM_OK=1
# --full: every check below must be reported once as ok (guest checks come
# through dom0's tail of the guest console, prefixed [guest1]).
FULL_CHECKS="pcr-extend pcr-read nv-define nv-write nv-read reboot instance-sandbox
  reboot-tpm0 reboot-getrandom reboot-nv-read reboot-pcr-reset vtpm-detach
  detach-tpm0-gone vtpm-attach reattach-tpm0 reattach-getrandom reattach-nv-read"
if [ "$CHAIN" = 1 ]; then
  # The chain replaces the phases: its checks are the ones that count.
  FULL_CHECKS="chain1-tpm0 chain1-getrandom chain1-tools-getrandom pcr-extend pcr-read
    nv-define nv-write nv-read chain1-tools-pcrread chain1-deep-quote
    chain1-quote-verifies chain1-quote-pcr16 chainb-tpm0 chainb-getrandom
    chainb-nv-read chainb-pcr-reset chain-idom-destroyed chain-idom-restarted chain2-tpm0
    chain2-getrandom chain2-nv-read chain2-pcr-reset chain-unknown-created chain-unknown-stopped
    chain-sr-xl-save chain-sr-xl-restore chain-sr-restore-pcr16 chain-sr-restore-session chain-sr-resumed
    chain-idom-sandbox"
  [ "$MGRDOM" = 1 ] && FULL_CHECKS="mgrdom-dom0-no-tpm mgrdom-dom0-no-devmem mgrdom-tis-pages
    mgrdom-manager mgrdom-started chain1-tpm0 chain1-getrandom chain1-tools-getrandom pcr-extend
    pcr-read nv-define nv-write nv-read chain1-tools-pcrread mgrdom-quote mgrdom-quote-pcr16 chain-idom-destroyed mgrdom-destroyed
    mgrdom-restarted chain-idom-restarted chain2-tpm0 chain2-getrandom chain2-nv-read
    chain2-pcr-reset chain-idom-sandbox"
  PLAIN_OK=1 VTPM_OK=1
fi
[ -n "$GUEST_KMOD" ] && FULL_CHECKS="$FULL_CHECKS kmod-loaded kmod-tpm2 kmod-extra-pages
  tools-getrandom tools-createprimary tools-create-load tools-seal-unseal tools-pcr sysfs-pcr
  tools-nv hwrng big-command kmod-rmmod kmod-reload xl-save xl-restore restore-tpm0
  restore-getrandom restore-nv-read restore-pcr16"
[ "$SAVERESTORE" = 1 ] && FULL_CHECKS="$FULL_CHECKS sr-pcr-extend sr-seal sr-deep-quote
  sr-quote-verifies sr-quote-pcr16 sr-xl-save sr-xl-restore
  sr-restore-pcr16 sr-restore-unseal sr-restore-loaded-objects sr-restore-session sr-migrate-step
  sr-migrate-pcr16 sr-migrate-unseal sr-migrate-loaded-objects sr-migrate-session sr-xl-destroy
  sr-xl-create sr-destroy-tpm0 sr-destroy-pcr-reset sr-destroy-nv-read sr-destroy-persistent-kept
  sr-destroy-unseal-refused"
FULL_OK=1
if [ "$FULL" = 1 ]; then
  echo "--- --full checks ---"
  for c in $FULL_CHECKS; do
    l=$(grep -a -m1 -E "XENLAB: check $c (ok|FAIL)" "$SERIAL_LOG" | sed 's/.*XENLAB: check //')
    if [ -z "$l" ]; then
      echo "XENLAB: check $c FAIL (never reported)"; FULL_OK=0
    else
      echo "XENLAB: check $l"
      case "$l" in "$c ok"*) ;; *) FULL_OK=0 ;; esac
    fi
  done
  # --saverestore: the xen-ring instance in dom0 read Xen's domain info
  # (libxenctrl, loaded with dlopen) to tell the destroyed guest from a
  # suspended one; without it the checks above could pass on the Xen
  # UUID alone.
  if [ "$SAVERESTORE" = 1 ]; then
    if grep -aq "run state unknown" "$SERIAL_LOG"; then
      echo "XENLAB: check sr-domain-info FAIL an instance could not read a domain's run state: $(grep -a -m1 'run state unknown' "$SERIAL_LOG" | tr -d '\r')"; FULL_OK=0
    elif grep -aq "is paused with its device gone (destroyed): no state is kept" "$SERIAL_LOG"; then
      echo "XENLAB: check sr-domain-info ok the instance read from Xen that the destroyed guest was not suspended"
    else
      echo "XENLAB: check sr-domain-info FAIL no instance log of the destroyed guest's run state"; FULL_OK=0
    fi
  fi
  [ "$FULL_OK" = 1 ] && echo "XENLAB: --full: all checks ok" || echo "XENLAB: --full: some checks FAILED"
fi

# --host-restart: the host goes down (dom0 stops the manager, unmounts the
# state disk, powers off) and boots again with the same disk and TPM.
HOST2_CHECKS="host2-tpm0 host2-getrandom host2-nv-read host2-pcr-reset
  tpm12-tpm0 tpm12-durations tpm12-getrandom tpm12-pcr-extend unknown-uuid-refused
  unknown-uuid-untouched"
if [ "$HOST_RESTART" = 1 ]; then
  B1_QRC=$QRC B1_QDT=$QDT
  boot_host 2 "$WORKDIR/serial2.log"
  echo "--- host boot 2 ---"
  grep -a 'XENLAB:' "$WORKDIR/serial2.log" | grep -av '\[guest1\]'
  grep -a '\[guest1\].*XENLAB:' "$WORKDIR/serial2.log"
  echo "--- host boot 2: checks ---"
  for c in $HOST2_CHECKS; do
    l=$(grep -a -m1 -E "XENLAB: check $c (ok|FAIL)" "$WORKDIR/serial2.log" | sed 's/.*XENLAB: check //')
    if [ -z "$l" ]; then
      echo "XENLAB: check $c FAIL (never reported)"; FULL_OK=0
    else
      echo "XENLAB: check $l"
      case "$l" in "$c ok"*) ;; *) FULL_OK=0 ;; esac
    fi
  done
  printf '  %-44s %s\n' "host boot 2: QEMU exit" "$QDT"
  [ "$QRC" = 0 ] || { echo "XENLAB: host boot 2: QEMU status $QRC"; FULL_OK=0; }
  QRC=$B1_QRC QDT=$B1_QDT
fi

DOM0_CHECK_OK=1
if [ -n "$DOM0_CHECK" ]; then
  if grep -aq 'XENLAB: check dom0-check ok' "$SERIAL_LOG"; then
    echo "XENLAB: check dom0-check ok"
  else
    echo "XENLAB: check dom0-check FAIL"; DOM0_CHECK_OK=0
  fi
fi

if [ "$PLAIN_OK" = 1 ] && [ "$DOM0_CHECK_OK" = 1 ] && { [ "$REQUIRE_VTPM" = 0 ] || { [ "$VTPM_OK" = 1 ] && [ "$FULL_OK" = 1 ]; }; }; then
  RESULT=0
  echo "XENLAB: PASS"
  exit 0
fi

if ! grep -aq '(XEN) Xen version' "$SERIAL_LOG"; then
  if [ "$QRC" != 0 ] && [ "$QRC" != 124 ] && [ "$QRC" != 137 ]; then
    show_logs
    skip "QEMU exited with status $QRC before Xen printed anything (see $QEMU_ERR)"
  fi
  echo "XENLAB: FAIL Xen printed nothing (QEMU status $QRC)"
elif [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then
  echo "XENLAB: FAIL QEMU timed out after ${QEMU_TIMEOUT}s"
elif ! grep -aq 'XENLAB: dom0: init started' "$SERIAL_LOG"; then
  echo "XENLAB: FAIL dom0 never reached /init"
elif [ "$PLAIN_OK" = 0 ]; then
  echo "XENLAB: FAIL the plain guest did not come up"
elif [ "$DOM0_CHECK_OK" = 0 ]; then
  echo "XENLAB: FAIL --dom0-check did not pass (see [dom0-check] above)"
elif [ "$VTPM_OK" = 0 ]; then
  echo "XENLAB: FAIL --require-vtpm: no 'vtpm-with-backend: ok'"
else
  echo "XENLAB: FAIL --require-vtpm --full: a check failed (see above)"
fi
show_logs
RESULT=1
exit 1
