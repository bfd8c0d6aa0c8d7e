# SPDX-License-Identifier: BSD-3-Clause
# Sourced by the xen-lab dom0's /init with --saverestore (busybox sh), after
# the vtpm-detach/attach of the rebooted guest (full_dom0).  The guest
# (guest-saverestore.sh) has extended PCR 16 and sealed a secret to it:
#   1. xl save + xl restore: a new domain with the same Xen UUID;
#   2. xl migrate guest1 localhost: source and destination exist at once
#      (the destination's device appears while the source's instance
#      still serves it; the manager stops that one, which saves, first);
#   3. xl destroy of the running guest (its frontend never closes) and
#      xl create of guest1 again: a new boot, which must not resume.
# Checks: sr-deep-quote, sr-quote-verifies, sr-quote-pcr16 (before the
# save), sr-xl-save, sr-xl-restore, sr-migrate-step, sr-xl-destroy,
# sr-xl-create; the guest checks the TPM after each step.  Where xl migrate
# cannot run (no log-dirty paging for PV guests: this lab's Xen under
# QEMU), sr-migrate-step runs its sequence by hand (sr_overlap) and says so.

SR_LOGS="$GLOG /var/log/xen/guest-guest1--incoming.log"

# sr_wait PATTERN SECS: PATTERN in guest1's console log under any of the
# names xenconsoled gave it (a migrated domain is "guest1--incoming" when
# its console is opened).
sr_wait() {
  local d; d=$(deadline "$2")
  while ! cat $SR_LOGS 2>/dev/null | grep -q "$1"; do
    past "$d" && return 1
    sleep 0.2
  done
}

# sr_overlap SRC_DOMID: what xl migrate does on one host, without the
# live memory copy: source suspended and left paused (xl save -p), renamed
# guest1--migratedaway, destination built from the image under the name
# guest1 with the same Xen UUID while the source still exists (its vtpm
# device appears while the source's instance still serves the vTPM), then
# the source destroyed.  Sets SR_D3.
sr_overlap() {
  local t
  t=$(up)
  mount -t tmpfs -o size=280m tmpfs /run/save
  xl_run srsavep 180 save -p guest1 /run/save/guest1.mig
  [ "$XRC" = 0 ] && xl domid guest1 >/dev/null 2>&1 ||
    { check sr-migrate-step FAIL "xl save -p rc=$XRC"; return 1; }
  xl_run srrename 30 rename guest1 guest1--migratedaway
  [ "$XRC" = 0 ] || { check sr-migrate-step FAIL "xl rename rc=$XRC"; return 1; }
  xl_run srrestore2 180 restore /run/save/guest1.mig
  SR_D3=$(xl domid guest1 2>/dev/null)
  [ "$XRC" = 0 ] && [ -n "$SR_D3" ] ||
    { check sr-migrate-step FAIL "xl restore beside the source rc=$XRC"; guest_diag; return 1; }
  xl list 2>&1 | prefix "[xl list, both] "
  xl_run srdestroysrc 60 destroy guest1--migratedaway
  rm -f /run/save/guest1.mig
  umount /run/save
  if [ "$XRC" = 0 ]; then
    check sr-migrate-step ok "xl save -p + xl restore beside the paused source + xl destroy of the source after $(since "$t")s; domid $1 -> $SR_D3"
  else
    check sr-migrate-step FAIL "xl destroy guest1--migratedaway rc=$XRC"
    return 1
  fi
}

sr_dom0() {
  local d1 d2 d3 d4
  ( tail -n +1 -F /var/log/xen/guest-guest1--incoming.log 2>/dev/null | prefix "[guest1] " ) &
  if ! sr_wait "XENLAB: guest ready-for-save" 240; then
    check sr-xl-save FAIL "the guest never got ready for the save"
    guest_diag
    return 1
  fi
  # A deep quote of the guest's vTPM, whose instance runs in dom0 on the
  # Xen ring: the manager fetches its PCRs over the link (run.sh).
  deep_quote sr "$VTPM_UUID" "guest1's vTPM (xen-ring instance in dom0)"
  d1=$(xl domid guest1 2>/dev/null)
  mkdir -p /run/save
  mount -t tmpfs -o size=280m tmpfs /run/save
  xl_run srsave 180 save guest1 /run/save/guest1.save
  if [ "$XRC" = 0 ] && ! xl domid guest1 >/dev/null 2>&1; then
    check sr-xl-save ok "xl save guest1 rc=0 after ${XDT}s, $(($(stat -c %s /run/save/guest1.save) / 1024)) KiB, domain $d1 gone"
  else
    check sr-xl-save FAIL "rc=$XRC after ${XDT}s"
    return 1
  fi
  vtpmctl status 2>&1 | prefix "[after xl save] "
  xl_run srrestore 180 restore /run/save/guest1.save
  d2=$(xl domid guest1 2>/dev/null)
  if [ "$XRC" = 0 ] && [ -n "$d2" ]; then
    check sr-xl-restore ok "xl restore rc=0 after ${XDT}s; domid $d1 -> $d2"
  else
    check sr-xl-restore FAIL "rc=$XRC after ${XDT}s"
    guest_diag
    return 1
  fi
  rm -f /run/save/guest1.save
  umount /run/save
  if ! sr_wait "XENLAB: guest ready-for-migrate" 240; then
    check sr-xl-migrate FAIL "the guest never got ready for the migration"
    guest_diag
    return 1
  fi
  # No ssh: -s "" runs the "host" argument itself as the receiving side,
  # through a pipe (xl's own localhost path).
  xl_run srmigrate 300 migrate -s "" guest1 "xl migrate-receive"
  d3=$(xl domid guest1 2>/dev/null)
  if [ "$XRC" = 0 ] && [ -n "$d3" ] && [ "$d3" != "$d2" ]; then
    check sr-migrate-step ok "xl migrate guest1 localhost rc=0 after ${XDT}s; domid $d2 -> $d3"
  elif grep -q "Failed to enable logdirty" /tmp/xl-srmigrate.log && [ "$d3" = "$d2" ]; then
    # xl migrate is always live, and live migration of a PV guest needs
    # log-dirty (shadow) paging, which this hypervisor refuses (95,
    # EOPNOTSUPP); the guest runs on untouched.  The same sequence by
    # hand: the source suspended and kept, the destination restored from
    # its image while the source still exists, then the source destroyed.
    M "note: xl migrate failed before the suspend: this Xen has no log-dirty paging for PV guests (xl migrate is always live); running the same overlap with xl save -p + xl restore"
    sr_overlap "$d2" || return 1
    d3=$SR_D3
  else
    check sr-migrate-step FAIL "xl migrate rc=$XRC after ${XDT}s; domid $d2 -> ${d3:-none}"
    guest_diag
    return 1
  fi
  xl list 2>&1 | prefix "[xl list] "
  if ! sr_wait "XENLAB: guest ready-for-destroy" 240; then
    check sr-xl-destroy FAIL "the guest never got ready for the destroy"
    guest_diag
    return 1
  fi
  xl_run srdestroy 60 destroy guest1
  if [ "$XRC" = 0 ] && ! xl domid guest1 >/dev/null 2>&1; then
    check sr-xl-destroy ok "xl destroy guest1 (domain $d3, running) rc=0 after ${XDT}s"
  else
    check sr-xl-destroy FAIL "rc=$XRC after ${XDT}s"
    return 1
  fi
  xl_create sr /etc/xen/guest1-vtpm-sr.cfg
  while [ ! -e /tmp/xl-sr.rc ]; do sleep 0.1; done
  d4=$(xl domid guest1 2>/dev/null)
  if [ "$(cat /tmp/xl-sr.rc)" = 0 ] && [ -n "$d4" ]; then
    check sr-xl-create ok "xl create guest1 again: domid $d4"
  else
    check sr-xl-create FAIL "rc=$(cat /tmp/xl-sr.rc)"
    return 1
  fi
  sr_wait "XENLAB: guest sr-result:" 180 ||
    M "dom0: no sr-result from the new guest1 within 180 s"
}
