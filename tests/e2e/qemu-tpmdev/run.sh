#!/usr/bin/env bash
# End-to-end test: QEMU `-tpmdev emulator` + SeaBIOS + the Linux tpm_tis
# driver talking TPM 2.0 to a server that speaks swtpm 0.7.1's UNIX socket
# protocol (data socket SOCK, control socket SOCK.ctrl).
#
# Usage:
#   run.sh --server-cmd 'COMMAND with {SOCK} placeholder' [--workdir DIR]
#          [--cache-dir DIR] [--qemu-timeout SECS] [--keep] [--trace-ctrl]
#
# --trace-ctrl puts ctrl-proxy.py between QEMU and SOCK.ctrl and logs every
# control command/response and data-channel TPM command to
# WORKDIR/ctrl-trace.log (printed at the end).
#
# {SOCK} is replaced by WORKDIR/tpm.sock (every occurrence), {WORKDIR} by
# WORKDIR ({WORKDIR}/st is created before the server starts, for state).
# The server must create WORKDIR/tpm.sock.ctrl, and also WORKDIR/tpm.sock
# when {SOCK} appears other than as {SOCK}.ctrl (override: --data-sock
# yes|no). QEMU connects to the CONTROL socket only and hands the data
# channel over with CMD_SET_DATAFD (an fd passed with SCM_RIGHTS).
#
# Reference implementation (swtpm 0.7.1). NOTE: swtpm refuses CMD_SET_DATAFD
# (TPM_IOERROR 0x1f) when it also has a --server data socket, so with real
# swtpm QEMU only works with --ctrl alone:
#   run.sh --server-cmd 'swtpm socket --tpm2 --tpmstate dir={WORKDIR}/st
#          --ctrl type=unixio,path={SOCK}.ctrl --flags not-need-init'
#
# Exit: 0 PASS, 1 FAIL, 2 usage error, 77 SKIPPED (QEMU cannot run here).
set -u
set -o pipefail

SERVER_CMD=""
WORKDIR=""
CACHE_DIR="${VTPM_E2E_CACHE:-}"
QEMU_TIMEOUT=240
KEEP=0
SOCK_WAIT=30
DATA_SOCK=auto
TRACE_CTRL=0
RESULT=1   # 0 pass, 1 fail, 77 skipped
HERE=$(cd "$(dirname "$0")" && pwd)

usage() { sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --server-cmd) SERVER_CMD="${2:-}"; shift 2 ;;
    --server-cmd=*) SERVER_CMD="${1#*=}"; shift ;;
    --workdir) WORKDIR="${2:-}"; shift 2 ;;
    --workdir=*) WORKDIR="${1#*=}"; shift ;;
    --cache-dir) CACHE_DIR="${2:-}"; shift 2 ;;
    --cache-dir=*) CACHE_DIR="${1#*=}"; shift ;;
    --qemu-timeout) QEMU_TIMEOUT="${2:-}"; shift 2 ;;
    --qemu-timeout=*) QEMU_TIMEOUT="${1#*=}"; shift ;;
    --data-sock) DATA_SOCK="${2:-}"; shift 2 ;;
    --data-sock=*) DATA_SOCK="${1#*=}"; shift ;;
    --keep) KEEP=1; shift ;;
    --trace-ctrl) TRACE_CTRL=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

if [ -z "$SERVER_CMD" ]; then
  echo "run.sh: --server-cmd is required" >&2; usage >&2; exit 2
fi
case "$SERVER_CMD" in
  *"{SOCK}"*) ;;
  *) echo "run.sh: --server-cmd must contain the {SOCK} placeholder" >&2; exit 2 ;;
esac
# Wait for the data socket SOCK too? auto: yes when {SOCK} appears in the
# command other than as {SOCK}.ctrl (swtpm with only --ctrl has no SOCK).
case "$DATA_SOCK" in
  yes|no) ;;
  auto) _c=${SERVER_CMD//\{SOCK\}.ctrl/}
        case "$_c" in *"{SOCK}"*) DATA_SOCK=yes ;; *) DATA_SOCK=no ;; esac ;;
  *) echo "run.sh: --data-sock must be yes, no or auto" >&2; exit 2 ;;
esac

T_START=$(date +%s.%N)
log() { printf '[qemu-tpmdev %6.1fs] %s\n' "$(awk -v a="$(date +%s.%N)" -v b="$T_START" 'BEGIN{print a-b}')" "$*"; }

skip() { echo "SKIPPED: $*"; RESULT=77; exit 77; }

CREATED_WORKDIR=0
if [ -z "$WORKDIR" ]; then
  WORKDIR=$(mktemp -d /tmp/vtpm-e2e-qemu.XXXXXX) || { echo "FAIL: mktemp"; exit 1; }
  CREATED_WORKDIR=1
else
  mkdir -p "$WORKDIR" || { echo "FAIL: cannot create workdir $WORKDIR"; exit 1; }
fi
WORKDIR=$(cd "$WORKDIR" && pwd)
SOCK="$WORKDIR/tpm.sock"
if [ ${#SOCK} -gt 100 ]; then
  echo "FAIL: socket path too long for AF_UNIX (${#SOCK} chars): $SOCK; use a shorter --workdir"
  exit 1
fi

SERIAL_LOG="$WORKDIR/serial.log"
QEMU_ERR="$WORKDIR/qemu.stderr"
SERVER_LOG="$WORKDIR/server.log"

# ---------------------------------------------------------------- cleanup
SERVER_PID=""
QEMU_PID=""
PROXY_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
    kill -TERM "$QEMU_PID" 2>/dev/null
    sleep 0.5
    kill -KILL "$QEMU_PID" 2>/dev/null
  fi
  if [ -n "$PROXY_PID" ]; then
    kill -TERM "$PROXY_PID" 2>/dev/null
    wait "$PROXY_PID" 2>/dev/null
  fi
  if [ -n "$SERVER_PID" ]; then
    # The server runs in its own session/process group (setsid).
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
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

ensure_pkgs() {
  local missing=()
  command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
  local applets=""
  [ -x /bin/busybox ] && applets=" $(/bin/busybox --list 2>/dev/null | tr '\n' ' ') "
  case "$applets" in
    *" hexdump "*) ldd /bin/busybox >/dev/null 2>&1 && missing+=(busybox-static) ;;  # must be static
    *) missing+=(busybox-static) ;;
  esac
  command -v cpio >/dev/null 2>&1 || missing+=(cpio)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    skip "missing ${missing[*]} and not root to install them"
  fi
  apt_update_once || true
  log "apt-get install -y ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive timeout 1200 apt-get install -y -qq "${missing[@]}" \
    >"$WORKDIR/apt-install.log" 2>&1 || {
      tail -n 20 "$WORKDIR/apt-install.log"
      skip "cannot install ${missing[*]}"
    }
}

ensure_pkgs
command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 not available"
qemu-system-x86_64 -version >/dev/null 2>&1 || skip "qemu-system-x86_64 does not run"
[ -x /bin/busybox ] || skip "/bin/busybox (busybox-static) not available"
command -v timeout >/dev/null 2>&1 || skip "coreutils timeout missing"

# Kernel: the image package linux-image-amd64 depends on, extracted (not
# installed) into a cache directory and reused.
if [ -z "$CACHE_DIR" ]; then
  if mkdir -p /var/cache/vtpm-tests 2>/dev/null && [ -w /var/cache/vtpm-tests ]; then
    CACHE_DIR=/var/cache/vtpm-tests
  else
    CACHE_DIR="$WORKDIR/cache"
  fi
fi
mkdir -p "$CACHE_DIR" || { echo "FAIL: cannot create cache dir $CACHE_DIR"; exit 1; }

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
    # The package lists were stale: the dependency may name a newer ABI now.
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
  # Offline fallback: any kernel cached earlier.
  VMLINUZ=$(ls -t "$CACHE_DIR"/linux-image-*/vmlinuz 2>/dev/null | head -n 1)
fi
[ -n "$VMLINUZ" ] && [ -s "$VMLINUZ" ] ||
  skip "no Debian kernel image available (apt-cache depends linux-image-amd64 / apt-get download failed)"
log "kernel: $VMLINUZ"

# ------------------------------------------------------------- initramfs
build_initrd() {
  local root="$WORKDIR/initramfs"
  rm -rf "$root"
  mkdir -p "$root"/bin "$root"/dev "$root"/proc "$root"/sys "$root"/tmp
  cp /bin/busybox "$root/bin/busybox"
  cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=/bin

M() { echo "VTPM-E2E: $*"; }
finish() {
  if [ -n "$FAILED" ]; then
    M "FAIL $FAILED"
  else
    M "PASS"
  fi
  echo "--- dmesg (tpm) ---"
  dmesg | grep -i -E 'tpm|tis' | tail -n 40
  sync
  poweroff -f
  sleep 5
  echo o > /proc/sysrq-trigger
}
fail() { [ -z "$FAILED" ] && FAILED="$*"; M "check failed: $*"; }
FAILED=""

M "init started, kernel $(uname -r), uptime $(cut -d' ' -f1 /proc/uptime)s"

# Wait up to 30 s (guest time) for the kernel TPM driver to create /dev/tpm0.
i=0
while [ ! -c /dev/tpm0 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -c /dev/tpm0 ]; then
  fail "no /dev/tpm0 (tpm_tis did not bind; see dmesg)"
  finish
fi
M "/dev/tpm0 present after $((i * 100))ms wait"

V=$(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null)
M "tpm_version_major=$V"
[ "$V" = 2 ] || fail "tpm_version_major is '$V', not 2"

if [ -c /dev/tpmrm0 ]; then M "tpmrm0=present"; else fail "no /dev/tpmrm0"; fi

# TPM2_GetRandom(16): tag 0x8001 (no sessions), size 12, cc 0x17b, bytesRequested 16.
# Write and read on the same open file: the driver keeps the response per fd.
getrandom() { # $1 = device; prints the response as hex
  (
    exec 3<>"$1" || exit 1
    printf '\200\001\000\000\000\014\000\000\001\173\000\020' >&3 || exit 1
    dd bs=4096 count=1 <&3 2>/dev/null | hexdump -v -e '1/1 "%02x"'
  )
}
R=$(getrandom /dev/tpm0)
M "getrandom response=$R"
RC=$(echo "$R" | cut -c13-20)
M "getrandom rc=$RC"
if [ "$RC" != 00000000 ]; then
  fail "TPM2_GetRandom via /dev/tpm0 rc=$RC"
elif [ "$(echo "$R" | cut -c1-4)" != 8001 ] || [ "$(echo "$R" | cut -c5-12)" != 0000001c ] ||
     [ "$(echo "$R" | cut -c21-24)" != 0010 ] || [ ${#R} -ne 56 ]; then
  fail "TPM2_GetRandom via /dev/tpm0 malformed response"
fi

if [ -c /dev/tpmrm0 ]; then
  R2=$(getrandom /dev/tpmrm0)
  RC2=$(echo "$R2" | cut -c13-20)
  M "getrandom(tpmrm0) rc=$RC2"
  [ "$RC2" = 00000000 ] && [ ${#R2} -eq 56 ] || fail "TPM2_GetRandom via /dev/tpmrm0 rc=$RC2 resp=$R2"
  [ "$R2" != "$R" ] || fail "two GetRandom calls returned identical bytes"
fi

P=/sys/class/tpm/tpm0/pcr-sha256/0
if [ -e "$P" ]; then
  PV=$(cat "$P" 2>/dev/null)
  M "pcr-sha256/0=$PV"
  case "$PV" in
    0000000000000000000000000000000000000000000000000000000000000000)
      # SeaBIOS extends PCR0 after its own TPM2_Startup(SU_CLEAR). All zeros
      # means the firmware's TPM path failed (e.g. Startup answered
      # TPM_RC_INITIALIZE because the server started the TPM itself after
      # CMD_INIT; SeaBIOS then disables the hierarchies).
      fail "PCR0 is all zeros: SeaBIOS did not measure (firmware TPM init failed)" ;;
    ????????????????????????????????????????????????????????????????) ;;
    *) fail "cannot read $P ('$PV')" ;;
  esac
  for n in 1 2 3 4 5 6 7; do
    [ -e /sys/class/tpm/tpm0/pcr-sha256/$n ] && M "pcr-sha256/$n=$(cat /sys/class/tpm/tpm0/pcr-sha256/$n 2>/dev/null)"
  done
else
  M "pcr-sha256 not exposed by this kernel"
fi
finish
EOF
  chmod 755 "$root/init"
  (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) \
    >"$WORKDIR/initrd.gz" || return 1
}
build_initrd || { echo "FAIL: cannot build initramfs"; RESULT=1; exit 1; }
log "initramfs built ($(stat -c %s "$WORKDIR/initrd.gz") bytes)"

# ----------------------------------------------------------------- server
rm -f "$SOCK" "$SOCK.ctrl"
mkdir -p "$WORKDIR/st"
CMD=${SERVER_CMD//\{SOCK\}/$SOCK}
CMD=${CMD//\{WORKDIR\}/$WORKDIR}
log "server: $CMD"
setsid bash -c "exec $CMD" </dev/null >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

waited=0
sockets_ready() {
  [ -S "$SOCK.ctrl" ] || return 1
  [ "$DATA_SOCK" = no ] || [ -S "$SOCK" ]
}
while ! sockets_ready; do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "VTPM-E2E: FAIL server exited before creating its sockets"
    echo "--- server log ---"; tail -n 40 "$SERVER_LOG"
    exit 1
  fi
  if [ "$waited" -ge $((SOCK_WAIT * 10)) ]; then
    if [ "$DATA_SOCK" = yes ]; then w="$SOCK and $SOCK.ctrl"; else w="$SOCK.ctrl"; fi
    echo "VTPM-E2E: FAIL server did not create $w within ${SOCK_WAIT}s"
    ls -la "$WORKDIR"
    echo "--- server log ---"; tail -n 40 "$SERVER_LOG"
    exit 1
  fi
  sleep 0.1; waited=$((waited + 1))
done
log "server sockets ready (data socket expected: $DATA_SOCK)"

QEMU_CTRL="$SOCK.ctrl"
if [ "$TRACE_CTRL" = 1 ]; then
  command -v python3 >/dev/null 2>&1 || { echo "FAIL: --trace-ctrl needs python3"; exit 1; }
  QEMU_CTRL="$WORKDIR/proxy.ctrl"
  rm -f "$QEMU_CTRL"
  python3 "$HERE/ctrl-proxy.py" "$QEMU_CTRL" "$SOCK.ctrl" >"$WORKDIR/ctrl-trace.log" 2>&1 &
  PROXY_PID=$!
  for _ in $(seq 50); do [ -S "$QEMU_CTRL" ] && break; sleep 0.1; done
  [ -S "$QEMU_CTRL" ] || { echo "FAIL: ctrl-proxy.py did not start"; cat "$WORKDIR/ctrl-trace.log"; exit 1; }
  log "control-channel trace: $WORKDIR/ctrl-trace.log"
fi

# ------------------------------------------------------------------- QEMU
# shellcheck disable=SC2054  # commas are QEMU option syntax
QEMU_ARGS=(
  -accel tcg -m 512 -nographic -no-reboot -nic none
  -kernel "$VMLINUZ" -initrd "$WORKDIR/initrd.gz"
  -append "console=ttyS0 panic=-1 oops=panic loglevel=6"
  -chardev "socket,id=chrtpm,path=$QEMU_CTRL"
  -tpmdev emulator,id=tpm0,chardev=chrtpm
  -device tpm-tis,tpmdev=tpm0
)
echo "qemu-system-x86_64 ${QEMU_ARGS[*]}" >"$WORKDIR/qemu.cmdline"
log "starting QEMU (timeout ${QEMU_TIMEOUT}s)"
timeout -k 5 "$QEMU_TIMEOUT" qemu-system-x86_64 "${QEMU_ARGS[@]}" \
  </dev/null >"$SERIAL_LOG" 2>"$QEMU_ERR" &
QEMU_PID=$!
wait "$QEMU_PID"
QRC=$?
QEMU_PID=""
log "QEMU exited with status $QRC"

if [ -n "$PROXY_PID" ]; then
  # Let the proxy log the disconnect, then stop it.
  for _ in $(seq 20); do kill -0 "$PROXY_PID" 2>/dev/null || break; sleep 0.1; done
  kill -TERM "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null; PROXY_PID=""
  echo "--- control channel (ctrl-trace.log, CTRL lines) ---"
  grep -E 'CTRL|INJECT' "$WORKDIR/ctrl-trace.log"
fi

grep -a 'VTPM-E2E:' "$SERIAL_LOG" | tr -d '\r'

show_logs() {
  echo "--- QEMU stderr ---"; tail -n 30 "$QEMU_ERR"
  echo "--- serial log (tail) ---"; tail -n 80 "$SERIAL_LOG" | tr -d '\r'
  echo "--- server log (tail) ---"; tail -n 40 "$SERVER_LOG"
  if [ -s "$WORKDIR/ctrl-trace.log" ]; then
    echo "--- ctrl-trace.log (tail) ---"; tail -n 60 "$WORKDIR/ctrl-trace.log"
  fi
}

if grep -aq '^VTPM-E2E: PASS' "$SERIAL_LOG" && ! grep -aq '^VTPM-E2E: FAIL' "$SERIAL_LOG"; then
  RESULT=0
  log "PASS"
  echo "1 passed, 0 failed"
  exit 0
fi

if [ "$QRC" = 124 ] || [ "$QRC" = 137 ]; then
  echo "VTPM-E2E: FAIL QEMU timed out after ${QEMU_TIMEOUT}s"
elif ! grep -aq 'VTPM-E2E: init started' "$SERIAL_LOG"; then
  if [ "$QRC" != 0 ]; then
    echo "VTPM-E2E: FAIL QEMU exited with status $QRC before the guest reached /init (see QEMU stderr)"
  else
    echo "VTPM-E2E: FAIL guest never reached /init"
  fi
  if grep -q 'CMD_SET_DATAFD' "$QEMU_ERR"; then
    echo "hint: the server refused (or did not answer) CMD_SET_DATAFD on $SOCK.ctrl;" \
         "swtpm 0.7.1 refuses it with TPM_IOERROR when started with --server as well"
  fi
else
  grep -aq '^VTPM-E2E: FAIL' "$SERIAL_LOG" || echo "VTPM-E2E: FAIL no PASS marker in the serial log"
fi
show_logs
RESULT=1
log "FAIL"
echo "0 passed, 1 failed"
exit 1
