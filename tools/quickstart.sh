#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The main job on an embedded default: installs what is missing, builds,
# and runs one manager-less vTPM instance (TPM 2.0) on a UNIX socket with
# a generated development key, then shows how to use it with tpm2-tools.
# Runs in the foreground; Ctrl-C (SIGINT) or SIGTERM stops it cleanly.
#
#   VTPM_DEMO_DIR   state and key      (default /var/lib/vtpm-demo)
#   VTPM_DEMO_SOCK  data socket path   (default /run/vtpm/dom1)
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/deps.sh
deps_install build run

cmake -S . -B build -DVTPM_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)"

DIR=${VTPM_DEMO_DIR:-/var/lib/vtpm-demo}
SOCK=${VTPM_DEMO_SOCK:-/run/vtpm/dom1}
mkdir -p "$DIR" "$(dirname "$SOCK")"
chmod 700 "$DIR"
if [ ! -s "$DIR/dev.key" ]; then
	# A development key; a real host gets its keys from the manager.
	(umask 077 && head -c 32 /dev/urandom > "$DIR/dev.key")
	echo "== generated development key $DIR/dev.key"
fi

./build/vtpm-service --role=instance --domid 1 --transport "unix:$SOCK" \
	--state-key "$DIR/dev.key" --state-dir "$DIR/state" &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID' INT TERM
for _ in $(seq 200); do
	[ -S "$SOCK" ] && break
	kill -0 $PID 2>/dev/null || { wait $PID; exit 1; }
	sleep 0.05
done

export TPM2TOOLS_TCTI="swtpm:path=$SOCK"
echo "== the vTPM answers: tpm2_getrandom --hex 16 -> $(tpm2_getrandom --hex 16)"
cat <<EOT

vtpm-service is running (pid $PID): a TPM 2.0 for domain 1, state in
$DIR/state (AES-256-GCM, fsynced on every NV change).  Try, in another shell:

  export TPM2TOOLS_TCTI=swtpm:path=$SOCK
  tpm2_getrandom --hex 16
  tpm2_pcrextend 16:sha256=$(printf '%064d' 1) && tpm2_pcrread sha256:16
  tpm2_createprimary -C o -G ecc -c primary.ctx
  tpm2_nvdefine 0x1500016 -C o -s 32 -a "ownerread|ownerwrite|authread|authwrite"
  echo hello > msg && tpm2_nvwrite 0x1500016 -C o -i msg && tpm2_nvread 0x1500016 -C o -s 6
  swtpm_ioctl --unix $SOCK.ctrl -c

QEMU: -chardev socket,id=chrtpm,path=$SOCK.ctrl -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0

Press Ctrl-C to stop it (state is kept; run this again to resume).
EOT
wait $PID
