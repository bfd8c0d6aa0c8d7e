# SPDX-License-Identifier: BSD-3-Clause
# Sourced by the xen-lab dom0's /init with --guest-kmod (busybox sh), after
# vtpm-detach/attach of the rebooted guest: xl save and xl restore while
# the guest's vtpm_front holds the device. The restored guest is a new
# domain; --backend-per-domain starts its backend. The guest then checks
# that the same /dev/tpm0 works (guest-kmod.sh, kmod_save_restore).

kmod_dom0() {
	local d1 d2
	if ! wait_log "XENLAB: guest ready-for-save" 120; then
		check xl-save FAIL "the guest never got ready for the save"
		guest_diag
		return 1
	fi
	d1=$(xl domid guest1 2>/dev/null)
	# The image holds the guest's memory: a tmpfs of its own, sized for it.
	mkdir -p /run/save
	mount -t tmpfs -o size=280m tmpfs /run/save
	xl_run save 180 save guest1 /run/save/guest1.save
	if [ "$XRC" = 0 ] && ! xl domid guest1 >/dev/null 2>&1; then
		check xl-save ok "xl save guest1 rc=0 after ${XDT}s, $(($(stat -c %s /run/save/guest1.save) / 1024)) KiB, domain $d1 gone"
	else
		check xl-save FAIL "rc=$XRC after ${XDT}s"
		tail -n 15 /tmp/xl-save.log | prefix "XENLAB: diag: [xl save] "
		backend_diag "$d1" "xl save failed"
		return 1
	fi
	xl_run restore 180 restore /run/save/guest1.save
	d2=$(xl domid guest1 2>/dev/null)
	if [ "$XRC" = 0 ] && [ -n "$d2" ]; then
		check xl-restore ok "xl restore rc=0 after ${XDT}s; domid $d1 -> $d2"
	else
		check xl-restore FAIL "rc=$XRC after ${XDT}s"
		tail -n 15 /tmp/xl-restore.log | prefix "XENLAB: diag: [xl restore] "
		backend_diag "$d1" "xl restore failed; the saved domain"
		backend_diag "$((d1 + 1))" "xl restore failed; the restored domain"
		guest_diag
		return 1
	fi
	rm -f /run/save/guest1.save
	umount /run/save
	xs_dump "after xl restore"
}
