#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The xen-lab's --backend-cmd for the manager scenario (busybox sh, dom0):
# the manager, sealed to the physical TPM QEMU gives dom0 (tpm-tis backed
# by a swtpm on the host, /dev/tpmrm0 through the kernel's tpm_tis), keeps
# its state on the lab's state disk (/var/lib/vtpm) and serves every vtpm
# device xl gives dom0 by its uuid node. On the first host boot it creates
# the guest's vTPM; on the next ones the same record unlocks.
#   $VTPM_UUID   the guest's vTPM (from /etc/xenlab/env)
set -u
. /etc/xenlab/env
say() { echo "XENLAB: dom0-manager: $*"; }

i=0
while [ ! -c /dev/tpmrm0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -c /dev/tpmrm0 ] || { say "FAIL no /dev/tpmrm0 (tpm_tis)"; dmesg | grep -i tpm; exit 1; }
say "physical TPM: /dev/tpmrm0 ($(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null))"
mkdir -p /var/lib/vtpm /run/vtpm
say "state directory holds: $(ls /var/lib/vtpm 2>/dev/null | tr '\n' ' ')"
# --chain also checks --xen-unknown create (the other runs check refuse).
UNKNOWN=refuse
[ "${CHAIN:-0}" = 1 ] && UNKNOWN=create
vtpm-service --role=manager --state-dir /var/lib/vtpm \
  --tcti device:/dev/tpmrm0 --xen on --xen-unknown "$UNKNOWN" --log-level info &
MPID=$!
i=0
while [ ! -S /run/vtpm/manager.sock ] && [ $i -lt 600 ]; do
  kill -0 $MPID 2>/dev/null || { say "FAIL the manager exited"; exit 1; }
  sleep 0.1; i=$((i + 1))
done
[ -S /run/vtpm/manager.sock ] || { say "FAIL no control socket after 60 s"; exit 1; }
if vtpmctl show "$VTPM_UUID" >/dev/null 2>&1; then
  say "vTPM $VTPM_UUID known (host boot ${XENLAB_BOOT:-1}); not created again"
else
  vtpmctl create --uuid "$VTPM_UUID" && say "created vTPM $VTPM_UUID" ||
    say "FAIL vtpmctl create"
fi
# --chain: a vTPM whose instance runs in the instance domain (vtpmdom) and
# asks for its key over the ring of vtpmdom's vtpm device.
if [ "${CHAIN:-0}" = 1 ] && ! vtpmctl show "$CHAIN_UUID" >/dev/null 2>&1; then
  vtpmctl create --uuid "$CHAIN_UUID" --transport xen-domain &&
    say "created vTPM $CHAIN_UUID (its instance runs in its own domain)" ||
    say "FAIL vtpmctl create --transport xen-domain"
fi
# A TPM 1.2 vTPM for the guest of the second host boot. Its first start
# manufactures the TPM (an RSA-2048 endorsement key): 12-20 s under TCG.
# A xen-ring instance answers InitWait before it powers the engine on, but
# the stock driver's probe would wait that long for its first answer; so
# it is started once here, on its UNIX socket, and stopped again, as an
# operator would provision a vTPM before its guest first boots.
if ! vtpmctl show "$VTPM12_UUID" >/dev/null 2>&1; then
  if vtpmctl create --uuid "$VTPM12_UUID" --tpm-version 1.2; then
    say "created TPM 1.2 vTPM $VTPM12_UUID"
    t0=$(cut -d' ' -f1 /proc/uptime)
    vtpmctl start "$VTPM12_UUID"
    i=0
    until [ -S "/run/vtpm/$VTPM12_UUID/tpm" ] || [ $i -ge 1200 ]; do sleep 0.1; i=$((i + 1)); done
    vtpmctl stop "$VTPM12_UUID"
    say "TPM 1.2 vTPM manufactured in $(awk -v a="$(cut -d' ' -f1 /proc/uptime)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')s"
  else
    say "FAIL vtpmctl create --tpm-version 1.2"
  fi
fi
vtpmctl status | sed 's/^/XENLAB: dom0-manager: status: /'
say "ready"
wait $MPID
say "manager exited with status $?"
