#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The xen-lab's manager domain (--mgrdom), run by the guest image's /init
# when XENLAB_PHASE=mgrdom (busybox sh, a PV domU): the role of Xen's
# vtpmmgr-stubdom. xl gave it the TPM's register pages (iomem=["fed40,5"],
# e820_host=1 so that its kernel maps them 1:1); it runs the manager with
# --hal tis-mmio on /dev/mem, keeps the manager's state on its own disk
# (xvda), and is the backend of the instance domain's link (vtpmdom's
# vtpm device names backend=mgrdom). dom0 holds no TPM access.
#   $XENLAB_UUID   the vTPM whose instance runs in vtpmdom
# Commands from dom0 arrive in this domain's xenstore node data/lab-cmd
# (dom0 writes it; nothing else can): "quote NONCE" runs vtpmctl quote of
# that vTPM and prints the quote and its verification to the console.
set -u
M() { echo "XENLAB: mgrdom: $*"; }
C() { echo "XENLAB: check $*"; }   # NAME ok|FAIL DETAIL, collected by run.sh
U=${XENLAB_UUID:?no XENLAB_UUID on the kernel command line}
CTL=/run/vtpm/manager.sock

i=0
while [ ! -b /dev/xvda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mkdir -p /var/lib/vtpm /run/vtpm
mount -t ext4 /dev/xvda /var/lib/vtpm || { M "FAIL cannot mount /dev/xvda"; exit 1; }
SELF=$(xenstore-read domid) || { M "FAIL no xenstore (domid)"; exit 1; }
M "domain $SELF, state disk holds: $(ls /var/lib/vtpm | tr '\n' ' ')"

# The TPM's pages, before the manager: TPM_DID_VID (0xF00) and the
# locality-0 access register through /dev/mem.
DIDVID=$(devmem 0xfed40f00 32 2>&1)
ACCESS=$(devmem 0xfed40000 8 2>&1)
case "$DIDVID" in
  0x*) if [ "$DIDVID" != 0xFFFFFFFF ] && [ "$DIDVID" != 0x00000000 ]; then
         C "mgrdom-tis-pages ok TPM_DID_VID=$DIDVID TPM_ACCESS_0=$ACCESS through /dev/mem"
       else
         C "mgrdom-tis-pages FAIL TPM_DID_VID reads $DIDVID (pages not mapped to the TPM)"
       fi ;;
  *) C "mgrdom-tis-pages FAIL devmem: $DIDVID" ;;
esac

t0=$(cut -d' ' -f1 /proc/uptime)
vtpm-service --role=manager --hal tis-mmio --tcti path=/dev/mem \
  --state-dir /var/lib/vtpm --control "$CTL" --run-dir /run/vtpm \
  --xen on --xen-unknown refuse --log-level info >/run/manager.log 2>&1 &
MPID=$!
( tail -n +1 -f /run/manager.log | sed 's/^/[manager] /' ) &
i=0
while ! grep -q ' ready: ' /run/manager.log 2>/dev/null && [ $i -lt 1200 ]; do
  kill -0 $MPID 2>/dev/null || { C "mgrdom-manager FAIL the manager exited"; sleep 1; exit 1; }
  sleep 0.1; i=$((i + 1))
done
if grep -q ' ready: ' /run/manager.log; then
  KEY=$(grep -m1 -o -E 'new root key sealed|root key unsealed[^;]*' /run/manager.log)
  C "mgrdom-manager ok ready $(awk -v a="$(cut -d' ' -f1 /proc/uptime)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')s after start (--hal tis-mmio): $KEY"
else
  C "mgrdom-manager FAIL not ready within 120 s"
  exit 1
fi
if vtpmctl --control "$CTL" show "$U" >/dev/null 2>&1; then
  M "vTPM $U known (boot $(grep -c . /var/lib/vtpm/.boots 2>/dev/null || echo 0)): not created again"
else
  vtpmctl --control "$CTL" create --uuid "$U" --transport xen-domain &&
    M "created vTPM $U (its instance runs in vtpmdom)" ||
    M "FAIL vtpmctl create --transport xen-domain"
fi
echo boot >>/var/lib/vtpm/.boots
sync
vtpmctl --control "$CTL" status | sed 's/^/XENLAB: mgrdom: status: /'
M "ready"

# dom0's commands (this domain's data/lab-cmd); each answered once.
last=""
while kill -0 $MPID 2>/dev/null; do
  c=$(xenstore-read data/lab-cmd 2>/dev/null)
  if [ -n "$c" ] && [ "$c" != "$last" ]; then
    last=$c
    set -- $c
    case "$1" in
      quote)
        AK=$(vtpmctl --control "$CTL" --json status | sed -n 's/.*"ak_spki": *"\([^"]*\)".*/\1/p' | head -n 1)
        if vtpmctl --control "$CTL" quote "$U" --nonce "$2" --out /run/q.json >/run/q.log 2>&1; then
          sed 's/^/XENLAB: mgrdom: quote: /' /run/q.json
          if V=$(vtpmctl verify-quote /run/q.json --ak-spki "$AK" 2>&1); then
            C "mgrdom-quote ok $V"
          else
            C "mgrdom-quote FAIL verify-quote: $V"
          fi
          # The quote's vTPM PCR 16 (the 17th value) is guest1's extend.
          P16=$(tr -d ' \n' </run/q.json | sed 's/.*"vtpm_pcrs":\[//; s/\].*//' | tr ',' '\n' | sed -n 17p | tr -d '"')
          if [ "$P16" = "$3" ]; then
            C "mgrdom-quote-pcr16 ok the quote's vTPM PCR 16 = guest1's extend ($P16)"
          else
            C "mgrdom-quote-pcr16 FAIL vTPM PCR 16 in the quote '$P16', want '$3'"
          fi
        else
          C "mgrdom-quote FAIL vtpmctl quote: $(cat /run/q.log)"
        fi ;;
    esac
    M "lab-cmd done: $c"
  fi
  sleep 0.3
done
M "the manager exited"
