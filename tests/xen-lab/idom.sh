#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The xen-lab's instance domain (--chain), run by the guest image's /init
# when XENLAB_PHASE=idom (busybox sh, a PV domU): the role of a
# vtpm-stubdom. Its own vtpm device (backend dom0, uuid $XENLAB_UUID) is
# its link to the manager; its disk (xvda, ext4) holds the vTPM's state;
# it runs one
#   vtpm-service --role=instance --manager xen-ring --transport xen-ring
#                --domid any --uuid $XENLAB_UUID
# which serves whichever guest's vtpm device (backend: this domain) names
# that UUID, and the next one once that device is gone. The instance takes its key (and
# the hash of its last state) from the manager over the ring; the manager
# knows it by the uuid node the toolstack wrote, not by anything it says.
set -u
M() { echo "XENLAB: idom: $*"; }
U=${XENLAB_UUID:?no XENLAB_UUID on the kernel command line}

i=0
while [ ! -b /dev/xvda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mkdir -p /var/lib/vtpm
mount -t ext4 /dev/xvda /var/lib/vtpm || { M "FAIL cannot mount /dev/xvda"; exit 1; }
SELF=$(xenstore-read domid) || { M "FAIL no xenstore (domid)"; exit 1; }
M "domain $SELF, state disk holds: $(ls /var/lib/vtpm | tr '\n' ' ')"
M "link to the manager: $(xenstore-read device/vtpm/0/backend 2>/dev/null) uuid $U"
M "ready"
# The instance's sandbox, from /proc once it has locked itself in (its
# pid is this shell's: exec keeps it); dom0 turns the line into the
# chain-idom-sandbox check.
( i=0
  while [ $i -lt 1200 ]; do
    st=$(grep -E '^(CapBnd|NoNewPrivs|Seccomp):' /proc/$$/status 2>/dev/null |
      tr -s '\t ' ' ' | tr '\n' ' ')
    case "$st" in *"Seccomp: 2 "*) break ;; esac
    sleep 0.1; i=$((i + 1))
  done
  M "instance sandbox: $st" ) &
# One instance serves whichever guest's vtpm device names $U (a rebooted
# guest is a new domain): --domid any.
exec vtpm-service --role=instance --manager xen-ring --transport xen-ring \
  --domid any --uuid "$U" --state-dir "/var/lib/vtpm/$U" --log-level info
