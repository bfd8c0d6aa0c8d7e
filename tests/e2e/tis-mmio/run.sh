#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# End-to-end test of issue 6: the manager driving a TPM through its TIS
# registers. A small Linux guest boots under QEMU (TCG) with
#   -tpmdev emulator + -device tpm-tis, backed by a swtpm started here,
# and initcall_blacklist=init_tis so no kernel driver owns 0xFED40000. Inside
# the guest: a preflight through /dev/mem (busybox devmem: locality request,
# DID_VID, TPM2_GetCapability and TPM2_PCR_Read through the FIFO), then
# scenario.sh: vtpm-service --role=manager --hal tis-mmio --tcti path=/dev/mem,
# vtpmctl create/start, NV written with tpm2-tools through the vTPM, a deep
# quote that verifies, SIGTERM and restart of the manager (the root key must
# unseal through tis-mmio), the same NV bytes, a second quote that verifies.
#
# Usage:
#   run.sh --bin-dir DIR [--workdir DIR] [--hal tis-mmio|tss-device|tss-device-guest]
#          [--cache-dir DIR] [--qemu-timeout SECS] [--keep]
#
#   --bin-dir DIR   holds vtpm-service, vtpm-service-manager and vtpmctl
#                   (e.g. build/ after cmake --build build)
#   --hal tis-mmio  (default) the guest run above
#   --hal tss-device
#                   the same scenario on THIS host, no QEMU: the manager with
#                   --hal tss-device against a swtpm's socket (the comparison)
#   --hal tss-device-guest
#                   the guest run, but the kernel's tpm_tis owns the device and
#                   the manager uses --hal tss-device --tcti device:/dev/tpmrm0:
#                   a self-test of this harness and a same-guest baseline
#   --cache-dir     where the Debian kernel is kept (default: $VTPM_E2E_CACHE,
#                   else /var/cache/vtpm-tests if writable, else WORKDIR/cache;
#                   shared with tests/e2e/qemu-tpmdev)
#
# Output: the "TISE2E: ..." lines of the scenario, among them
#   TISE2E: unseal_ms=N quote_ms=N        (as measured where the manager runs)
# and finally "TISE2E: PASS" or "TISE2E: FAIL reason".
# Exit: 0 PASS, 1 FAIL, 2 usage error, 77 SKIPPED (QEMU cannot run here).
set -u
set -o pipefail

BIN_DIR=""
WORKDIR=""
HAL=tis-mmio
CACHE_DIR="${VTPM_E2E_CACHE:-}"
QEMU_TIMEOUT=150
HOST_TIMEOUT=120
WAIT_S=60
KEEP=0
RESULT=1   # 0 pass, 1 fail, 77 skipped
HERE=$(cd "$(dirname "$0")" && pwd)

usage() { sed -n '3,37p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) BIN_DIR="${2:-}"; shift 2 ;;
    --bin-dir=*) BIN_DIR="${1#*=}"; shift ;;
    --workdir) WORKDIR="${2:-}"; shift 2 ;;
    --workdir=*) WORKDIR="${1#*=}"; shift ;;
    --hal) HAL="${2:-}"; shift 2 ;;
    --hal=*) HAL="${1#*=}"; shift ;;
    --cache-dir) CACHE_DIR="${2:-}"; shift 2 ;;
    --cache-dir=*) CACHE_DIR="${1#*=}"; shift ;;
    --qemu-timeout) QEMU_TIMEOUT="${2:-}"; shift 2 ;;
    --qemu-timeout=*) QEMU_TIMEOUT="${1#*=}"; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

case "$HAL" in
  tis-mmio|tss-device|tss-device-guest) ;;
  *) echo "run.sh: --hal must be tis-mmio, tss-device or tss-device-guest" >&2; exit 2 ;;
esac
[ -n "$BIN_DIR" ] || { echo "run.sh: --bin-dir DIR is required" >&2; usage >&2; exit 2; }
case "$QEMU_TIMEOUT" in ''|*[!0-9]*) echo "run.sh: bad --qemu-timeout" >&2; exit 2 ;; esac

T_START=$(date +%s.%N)
log() { printf '[tis-mmio %6.1fs] %s\n' "$(awk -v a="$(date +%s.%N)" -v b="$T_START" 'BEGIN{print a-b}')" "$*"; }
skip() { echo "SKIPPED: $*"; echo "SKIPPED: $*" >&2; RESULT=77; exit 77; }
failnow() { echo "TISE2E: FAIL $*"; RESULT=1; exit 1; }

BIN_DIR=$(cd "$BIN_DIR" 2>/dev/null && pwd) || failnow "--bin-dir: no such directory"
for b in vtpm-service vtpm-service-manager vtpmctl; do
  [ -x "$BIN_DIR/$b" ] || failnow "$BIN_DIR/$b missing (build: cmake -S . -B build && cmake --build build)"
done

CREATED_WORKDIR=0
if [ -z "$WORKDIR" ]; then
  WORKDIR=$(mktemp -d /tmp/vtpm-e2e-tis.XXXXXX) || failnow "mktemp"
  CREATED_WORKDIR=1
else
  mkdir -p "$WORKDIR" || failnow "cannot create workdir $WORKDIR"
fi
WORKDIR=$(cd "$WORKDIR" && pwd)
# Instances run as an unprivileged user: they must reach their directories
# (only adds search permission; the host scenario keeps its state here).
chmod go+x "$WORKDIR"
# The deepest socket: the host scenario's run/UUID/tpm.ctrl.
if [ $(( ${#WORKDIR} + 60 )) -gt 107 ]; then
  failnow "workdir path too long for AF_UNIX sockets (${#WORKDIR} chars): $WORKDIR; use a shorter --workdir"
fi

SERIAL_LOG="$WORKDIR/serial.log"
QEMU_ERR="$WORKDIR/qemu.stderr"
SWTPM_LOG="$WORKDIR/swtpm.log"
HOST_LOG="$WORKDIR/host-scenario.log"

# ---------------------------------------------------------------- cleanup
SWTPM_PID=""
QEMU_PID=""
SCEN_PID=""
stop_pid() { # pid [group]: TERM, up to 3 s, then KILL
  local p=$1 g=${2:-}
  [ -n "$p" ] || return 0
  if [ -n "$g" ]; then kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null
  else kill -TERM "$p" 2>/dev/null; fi
  for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if [ -n "$g" ]; then kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null
  else kill -KILL "$p" 2>/dev/null; fi
  wait "$p" 2>/dev/null
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  stop_pid "$QEMU_PID"
  stop_pid "$SCEN_PID" group    # the host scenario, its manager and instances
  stop_pid "$SWTPM_PID" group
  if [ "$RESULT" != 1 ] && [ "$CREATED_WORKDIR" = 1 ] && [ "$KEEP" = 0 ]; then
    rm -rf "$WORKDIR"
  elif [ "$RESULT" = 1 ]; then
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
apt_install() { # pkgs...; 0 if installed
  [ "$(id -u)" = 0 ] || return 1
  apt_update_once || true
  log "apt-get install -y $*"
  DEBIAN_FRONTEND=noninteractive timeout 1200 apt-get install -y -qq "$@" \
    >"$WORKDIR/apt-install.log" 2>&1 || { tail -n 20 "$WORKDIR/apt-install.log"; return 1; }
}

# Tools of the test itself (missing ones are a FAIL, not a skip).
missing=()
command -v swtpm >/dev/null 2>&1 || missing+=(swtpm)
command -v tpm2 >/dev/null 2>&1 || missing+=(tpm2-tools)
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}" || failnow "missing ${missing[*]} (apt-get install ${missing[*]})"
fi
date +%3N | grep -q '^[0-9]\{3\}$' || failnow "date(1) does not know %N (GNU coreutils needed)"

# ==================================================== --hal tss-device (host)
if [ "$HAL" = tss-device ]; then
  rm -rf "$WORKDIR/hwtpm"; mkdir -p "$WORKDIR/hwtpm"   # a fresh TPM each run
  rm -f "$WORKDIR/hw.sock" "$WORKDIR/hw.sock.ctrl"
  setsid swtpm socket --tpm2 --tpmstate dir="$WORKDIR/hwtpm" \
    --server type=unixio,path="$WORKDIR/hw.sock" \
    --ctrl type=unixio,path="$WORKDIR/hw.sock.ctrl" \
    --flags not-need-init,startup-clear </dev/null >"$SWTPM_LOG" 2>&1 &
  SWTPM_PID=$!
  for _ in $(seq 100); do [ -S "$WORKDIR/hw.sock" ] && break; sleep 0.05; done
  [ -S "$WORKDIR/hw.sock" ] || { cat "$SWTPM_LOG"; failnow "swtpm did not create $WORKDIR/hw.sock"; }
  if [ "$(id -u)" = 0 ] && command -v runuser >/dev/null 2>&1 &&
     ! runuser -u nobody -- test -x "$WORKDIR" 2>/dev/null; then
    failnow "user nobody (the manager's instances) cannot reach $WORKDIR: use a --workdir whose parents are searchable by all"
  fi
  log "swtpm (stand-in physical TPM) on $WORKDIR/hw.sock; scenario on the host"
  HAL=tss-device TCTI="swtpm:path=$WORKDIR/hw.sock" BIN="$BIN_DIR" WD="$WORKDIR" \
    DATE=date WAIT_S=$WAIT_S setsid timeout -k 5 "$HOST_TIMEOUT" sh "$HERE/scenario.sh" \
    </dev/null >"$HOST_LOG" 2>&1 &
  SCEN_PID=$!
  wait "$SCEN_PID"
  SRC=$?
  SCEN_PID=""
  cat "$HOST_LOG"
  if [ "$SRC" = 0 ] && grep -q '^TISE2E: PASS' "$HOST_LOG"; then
    RESULT=0; log "PASS"; exit 0
  fi
  [ "$SRC" = 124 ] && echo "TISE2E: FAIL the host scenario timed out after ${HOST_TIMEOUT}s"
  grep -q '^TISE2E: FAIL' "$HOST_LOG" || echo "TISE2E: FAIL no PASS marker (scenario exit $SRC)"
  RESULT=1; log "FAIL"; exit 1
fi

# ========================================================== guest (QEMU)
gmissing=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || gmissing+=(qemu-system-x86)
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 &&
  /bin/busybox --list 2>/dev/null | grep -qx devmem; } || gmissing+=(busybox-static)
command -v cpio >/dev/null 2>&1 || gmissing+=(cpio)
if [ ${#gmissing[@]} -gt 0 ]; then
  apt_install "${gmissing[@]}" || skip "cannot install ${gmissing[*]}"
fi
command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 not available"
qemu-system-x86_64 -version >/dev/null 2>&1 || skip "qemu-system-x86_64 does not run"
[ -x /bin/busybox ] || skip "/bin/busybox (busybox-static) not available"

# Kernel: the image package linux-image-amd64 depends on, extracted (not
# installed) into the cache tests/e2e/qemu-tpmdev uses too.
if [ -z "$CACHE_DIR" ]; then
  if mkdir -p /var/cache/vtpm-tests 2>/dev/null && [ -w /var/cache/vtpm-tests ]; then
    CACHE_DIR=/var/cache/vtpm-tests
  else
    CACHE_DIR="$WORKDIR/cache"
  fi
fi
mkdir -p "$CACHE_DIR" || failnow "cannot create cache dir $CACHE_DIR"

kernel_pkg_name() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
KPKG=$(kernel_pkg_name)
if [ -z "$KPKG" ]; then
  apt_update_once || true
  KPKG=$(kernel_pkg_name)
fi
VMLINUZ=""
if [ -n "$KPKG" ] && [ -s "$CACHE_DIR/$KPKG/vmlinuz" ]; then
  VMLINUZ="$CACHE_DIR/$KPKG/vmlinuz"
elif [ -n "$KPKG" ]; then
  log "fetching kernel package $KPKG into $CACHE_DIR"
  dl=$(mktemp -d "$CACHE_DIR/.dl.XXXXXX")
  ok=0
  for _attempt in 1 2; do
    if (cd "$dl" && timeout 900 apt-get download -o APT::Sandbox::User=root "$KPKG") \
         >"$WORKDIR/apt-download.log" 2>&1; then ok=1; break; fi
    [ "$APT_UPDATED" = 1 ] && break
    apt_update_once || break
    KPKG=$(kernel_pkg_name); [ -n "$KPKG" ] || break
    if [ -s "$CACHE_DIR/$KPKG/vmlinuz" ]; then VMLINUZ="$CACHE_DIR/$KPKG/vmlinuz"; break; fi
  done
  if [ "$ok" = 1 ]; then
    deb=$(ls "$dl"/*.deb 2>/dev/null | head -n 1)
    mkdir -p "$dl/x"
    if [ -n "$deb" ] && dpkg-deb -x "$deb" "$dl/x"; then
      k=$(ls "$dl"/x/boot/vmlinuz-* 2>/dev/null | head -n 1)
      if [ -n "$k" ]; then
        mkdir -p "$CACHE_DIR/$KPKG"
        cp "$k" "$CACHE_DIR/$KPKG/vmlinuz.tmp" &&
          cp "$dl"/x/boot/config-* "$CACHE_DIR/$KPKG/" 2>/dev/null
        mv "$CACHE_DIR/$KPKG/vmlinuz.tmp" "$CACHE_DIR/$KPKG/vmlinuz"
        VMLINUZ="$CACHE_DIR/$KPKG/vmlinuz"
      fi
    fi
  elif [ -z "$VMLINUZ" ]; then
    tail -n 5 "$WORKDIR/apt-download.log"
  fi
  rm -rf "$dl"
fi
if [ -z "$VMLINUZ" ]; then
  VMLINUZ=$(ls -t "$CACHE_DIR"/linux-image-*/vmlinuz 2>/dev/null | head -n 1)
fi
[ -n "$VMLINUZ" ] && [ -s "$VMLINUZ" ] ||
  skip "no Debian kernel image available (apt-cache depends linux-image-amd64 / apt-get download failed)"
log "kernel: $VMLINUZ"

# ------------------------------------------------------------- initramfs
ROOT="$WORKDIR/initramfs"
LIBDIR=lib/x86_64-linux-gnu
put() { # src dst-inside-root: a regular file (symlinks resolved)
  mkdir -p "$ROOT/$(dirname "$2")" && cp -L "$1" "$ROOT/$2"
}
put_libs() { # binaries...: every library ldd lists, by its soname
  local f l
  for f in "$@"; do
    ldd "$f" >"$WORKDIR/ldd.out" 2>&1 || { cat "$WORKDIR/ldd.out"; return 1; }
    if grep -q 'not found' "$WORKDIR/ldd.out"; then
      echo "ldd $f:"; grep 'not found' "$WORKDIR/ldd.out"; return 1
    fi
    while read -r l; do
      case "$l" in
        */ld-linux*) [ -e "$ROOT/lib64/$(basename "$l")" ] || put "$l" "lib64/$(basename "$l")" ;;
        /*) [ -e "$ROOT/$LIBDIR/$(basename "$l")" ] || put "$l" "$LIBDIR/$(basename "$l")" ;;
      esac || return 1
    done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3; next } $1 ~ /^\// { print $1 }' "$WORKDIR/ldd.out")
  done
}

build_initrd() {
  rm -rf "$ROOT"
  mkdir -p "$ROOT"/{bin,dev,proc,sys,tmp,run,root,etc,opt/vtpm,usr/bin,lib64,$LIBDIR} || return 1
  chmod 755 "$ROOT"; chmod 1777 "$ROOT/tmp"
  cp /bin/busybox "$ROOT/bin/busybox" || return 1
  local b t tctis=()
  for b in vtpm-service vtpm-service-manager vtpmctl; do
    put "$BIN_DIR/$b" "opt/vtpm/$b" || return 1
  done
  # tpm2-tools is one multi-call binary behind tpm2_* links.
  t=$(readlink -f "$(command -v tpm2)") || return 1
  put "$t" usr/bin/tpm2 || return 1
  for b in tpm2_nvdefine tpm2_nvwrite tpm2_nvread tpm2_getrandom; do
    ln -s tpm2 "$ROOT/usr/bin/$b"
  done
  # GNU date: busybox's has no %N.
  put "$(readlink -f "$(command -v date)")" usr/bin/date || return 1
  # TCTIs that tss2-tctildr dlopens (swtpm for tpm2-tools, device for the
  # tss-device-guest mode, the rest for completeness).
  for t in /usr/lib/x86_64-linux-gnu/libtss2-tcti-{swtpm,device,mssim,cmd}.so.0; do
    [ -e "$t" ] || continue
    put "$t" "$LIBDIR/$(basename "$t")" || return 1
    tctis+=("$t")
  done
  [ -e "$ROOT/$LIBDIR/libtss2-tcti-swtpm.so.0" ] || { echo "no libtss2-tcti-swtpm.so.0 on the host"; return 1; }
  put_libs "$BIN_DIR"/vtpm-service "$BIN_DIR"/vtpm-service-manager "$BIN_DIR"/vtpmctl \
    "$(readlink -f "$(command -v tpm2)")" "$(readlink -f "$(command -v date)")" \
    "${tctis[@]}" || return 1
  # glibc dlopens libgcc_s for pthread_cancel and backtraces.
  t=$(ls /lib/x86_64-linux-gnu/libgcc_s.so.1 /usr/lib/x86_64-linux-gnu/libgcc_s.so.1 2>/dev/null | head -n 1)
  [ -n "$t" ] && put "$t" "$LIBDIR/libgcc_s.so.1"
  cat >"$ROOT/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
  cat >"$ROOT/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
EOF
  printf 'passwd: files\ngroup: files\nshadow: files\n' >"$ROOT/etc/nsswitch.conf"
  local mode=tis-mmio
  [ "$HAL" = tss-device-guest ] && mode=tss-device-guest
  printf 'MODE=%s\nWAIT_S=%s\n' "$mode" "$WAIT_S" >"$ROOT/e2e.conf"
  cp "$HERE/guest-init.sh" "$ROOT/init" && chmod 755 "$ROOT/init" || return 1
  cp "$HERE/scenario.sh" "$ROOT/scenario.sh" || return 1
  (cd "$ROOT" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) \
    >"$WORKDIR/initrd.gz" || return 1
}
build_initrd >"$WORKDIR/initrd-build.log" 2>&1 ||
  { cat "$WORKDIR/initrd-build.log"; failnow "cannot build the initramfs"; }
log "initramfs built ($(stat -c %s "$WORKDIR/initrd.gz") bytes, $(du -sm "$ROOT" | cut -f1) MB unpacked)"

# ----------------------------------------------------------------- swtpm
CTRL="$WORKDIR/swtpm.ctrl"
rm -f "$CTRL"
rm -rf "$WORKDIR/hwtpm"; mkdir -p "$WORKDIR/hwtpm"   # a fresh TPM each run
# --ctrl only: QEMU hands swtpm the data channel (CMD_SET_DATAFD). swtpm
# exits by itself when QEMU disconnects.
setsid swtpm socket --tpm2 --tpmstate dir="$WORKDIR/hwtpm" \
  --ctrl type=unixio,path="$CTRL" --flags not-need-init,startup-clear \
  </dev/null >"$SWTPM_LOG" 2>&1 &
SWTPM_PID=$!
for _ in $(seq 100); do [ -S "$CTRL" ] && break; sleep 0.05; done
[ -S "$CTRL" ] || { cat "$SWTPM_LOG"; failnow "swtpm did not create $CTRL"; }
log "swtpm on $CTRL"

# ------------------------------------------------------------------- QEMU
APPEND="console=ttyS0 panic=-1 oops=panic loglevel=4"
[ "$HAL" = tis-mmio ] && APPEND="$APPEND initcall_blacklist=init_tis"
# shellcheck disable=SC2054  # commas are QEMU option syntax
QEMU_ARGS=(
  -accel tcg -m 512 -nographic -no-reboot -nic none
  -kernel "$VMLINUZ" -initrd "$WORKDIR/initrd.gz"
  -append "$APPEND"
  -chardev "socket,id=chrtpm,path=$CTRL"
  -tpmdev emulator,id=tpm0,chardev=chrtpm
  -device tpm-tis,tpmdev=tpm0
)
echo "qemu-system-x86_64 ${QEMU_ARGS[*]}" >"$WORKDIR/qemu.cmdline"
log "starting QEMU (TCG, timeout ${QEMU_TIMEOUT}s), guest mode $HAL"
timeout -k 5 "$QEMU_TIMEOUT" qemu-system-x86_64 "${QEMU_ARGS[@]}" \
  </dev/null >"$SERIAL_LOG" 2>"$QEMU_ERR" &
QEMU_PID=$!
wait "$QEMU_PID"
QRC=$?
QEMU_PID=""
log "QEMU exited with status $QRC"

grep -ao 'TISE2E:.*' "$SERIAL_LOG" | tr -d '\r'

if grep -aq 'TISE2E: PASS' "$SERIAL_LOG" && ! grep -aq 'TISE2E: FAIL' "$SERIAL_LOG"; then
  RESULT=0
  log "PASS"
  exit 0
fi

if grep -aq 'TISE2E: FAIL' "$SERIAL_LOG"; then
  :
elif [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then
  echo "TISE2E: FAIL QEMU timed out after ${QEMU_TIMEOUT}s"
elif ! grep -aq 'TISE2E: init started' "$SERIAL_LOG"; then
  echo "TISE2E: FAIL the guest never reached /init (QEMU exit $QRC)"
else
  echo "TISE2E: FAIL no PASS marker in the serial log"
fi
if grep -aq 'is not implemented yet' "$SERIAL_LOG" &&
   grep -aq 'TISE2E: binaries load' "$SERIAL_LOG"; then
  echo "run.sh: the harness itself ran (guest booted, TIS preflight passed);" \
       "the manager does not implement --hal $HAL yet"
fi
echo "--- QEMU stderr ---"; tail -n 20 "$QEMU_ERR"
echo "--- serial log (tail) ---"; tail -n 60 "$SERIAL_LOG" | tr -d '\r'
echo "--- swtpm log ---"; tail -n 20 "$SWTPM_LOG"
RESULT=1
log "FAIL"
exit 1
