#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The main job on an embedded default: installs what is missing, builds,
# starts the manager -- on /dev/tpmrm0 if this host has a TPM, else on a
# swtpm it starts as the stand-in physical TPM -- creates and starts one
# vTPM (TPM 2.0, domain 1), and shows tpm2-tools using it.
# Runs in the foreground; Ctrl-C (SIGINT) or SIGTERM stops it cleanly, and
# running it again resumes the same vTPM.
#
#   VTPM_DEMO_DIR  state (default /var/lib/vtpm-demo)
#   VTPM_RUN_DIR   sockets (default /run/vtpm)
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/deps.sh
deps_install build run

cmake -S . -B build -DVTPM_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)"

DIR=${VTPM_DEMO_DIR:-/var/lib/vtpm-demo}
RUN=${VTPM_RUN_DIR:-/run/vtpm}
CTL=$RUN/manager.sock
mkdir -p "$DIR" "$RUN"
# Instances run as an unprivileged user: it must reach its directories.
chmod 711 "$DIR"

PIDS=()
cleanup() {
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill -TERM "${PIDS[$i]}" 2>/dev/null || true
		wait "${PIDS[$i]}" 2>/dev/null || true
	done
}
trap cleanup EXIT
trap 'exit 0' INT TERM

if [ -c /dev/tpmrm0 ]; then
	TCTI=device:/dev/tpmrm0
	echo "== physical TPM: /dev/tpmrm0"
else
	# No TPM here: swtpm stands in for the physical TPM.
	mkdir -p "$DIR/hwtpm"
	swtpm socket --tpm2 --tpmstate dir="$DIR/hwtpm" \
		--server type=unixio,path="$DIR/hwtpm.sock" \
		--ctrl type=unixio,path="$DIR/hwtpm.sock.ctrl" \
		--flags not-need-init,startup-clear >"$DIR/hwtpm.log" 2>&1 &
	PIDS+=($!)
	TCTI=swtpm:path=$DIR/hwtpm.sock
	for _ in $(seq 200); do [ -S "$DIR/hwtpm.sock" ] && break; sleep 0.05; done
	echo "== no /dev/tpmrm0: swtpm stands in for the physical TPM ($TCTI)"
fi

./build/vtpm-service --role=manager --state-dir "$DIR/manager" --tcti "$TCTI" \
	--control "$CTL" --run-dir "$RUN" &
MGR=$!
PIDS+=($MGR)
for _ in $(seq 400); do
	./build/vtpmctl --control "$CTL" status >/dev/null 2>&1 && break
	kill -0 $MGR 2>/dev/null || { echo "the manager did not start" >&2; exit 1; }
	sleep 0.05
done

UUID=$(./build/vtpmctl --control "$CTL" list | awk 'NR == 2 { print $1 }')
if [ -z "$UUID" ]; then
	UUID=$(./build/vtpmctl --control "$CTL" create --domid 1)
	echo "== created vTPM $UUID"
fi
./build/vtpmctl --control "$CTL" start "$UUID"
SOCK=$RUN/$UUID/tpm
for _ in $(seq 400); do [ -S "$SOCK" ] && break; sleep 0.05; done

export TPM2TOOLS_TCTI="swtpm:path=$SOCK"
echo "== the vTPM answers: tpm2_getrandom --hex 16 -> $(tpm2_getrandom --hex 16)"
./build/vtpmctl --control "$CTL" list
cat <<EOT

vtpm-service is running: a manager (pid $MGR) holding the key store in
$DIR/manager (root key sealed to the TPM's PCRs sha256:0,2,4,7), and the
vTPM $UUID for domain 1, running as an unprivileged user.  Try, in another
shell:

  export TPM2TOOLS_TCTI=swtpm:path=$SOCK
  tpm2_getrandom --hex 16
  tpm2_pcrextend 16:sha256=$(printf '%064d' 1) && tpm2_pcrread sha256:16
  tpm2_createprimary -C o -G ecc -c primary.ctx
  tpm2_nvdefine 0x1500016 -C o -s 32 -a "ownerread|ownerwrite|authread|authwrite"
  echo hello > msg && tpm2_nvwrite 0x1500016 -C o -i msg && tpm2_nvread 0x1500016 -C o -s 6

  ./build/vtpmctl --control $CTL status
  ./build/vtpmctl --control $CTL quote $UUID --nonce 00112233 --out q.json
  ./build/vtpmctl verify-quote q.json

QEMU: -chardev socket,id=chrtpm,path=$SOCK.ctrl -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0

Press Ctrl-C to stop (state is kept; run this again to resume).
EOT
wait $MGR
