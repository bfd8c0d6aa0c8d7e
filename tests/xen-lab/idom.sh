#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# The xen-lab's instance domain (--chain), run by the guest image's /init
# when XENLAB_PHASE=idom (busybox sh, a PV domU): the role of a
# vtpm-stubdom. Its own vtpm device (backend dom0, uuid $XENLAB_UUID) is
# its link to the manager; its disk (xvda, ext4) holds the vTPM's state;
# for each guest domain whose vtpm device names this domain as backend it
# runs
#   vtpm-service --role=instance --manager xen-ring --transport xen-ring
#                --domid F --uuid $XENLAB_UUID
# and stops it when that device is gone. The instance takes its key (and
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
mkdir -p /run/inst
M "ready"
while :; do
  for f in $(xenstore-list "/local/domain/$SELF/backend/vtpm" 2>/dev/null); do
    [ -e "/run/inst/$f.pid" ] && continue
    M "backend/vtpm/$f appeared: starting the instance for domain $f"
    vtpm-service --role=instance --manager xen-ring --transport xen-ring \
      --domid "$f" --uuid "$U" --state-dir "/var/lib/vtpm/$U" --log-level info 2>&1 |
      sed "s/^/[inst d$f] /" &
    # The pipeline's pid is sed's; the instance is found by its --domid.
    echo started >"/run/inst/$f.pid"
  done
  for p in /run/inst/*.pid; do
    [ -e "$p" ] || continue
    f=${p##*/}; f=${f%.pid}
    # A domU cannot read other domains' nodes: the guest is gone when the
    # toolstack removed its device from our backend directory.
    xenstore-exists "/local/domain/$SELF/backend/vtpm/$f" 2>/dev/null && continue
    rm -f "$p"
    M "domain $f is gone: stopping its instance"
    for pid in $(ps w | grep "vtpm-service --role=instance" | grep -- "--domid $f " |
                 grep -v grep | awk '{ print $1 }'); do
      kill -TERM "$pid"
    done
  done
  sleep 0.2
done
