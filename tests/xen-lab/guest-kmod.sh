# SPDX-License-Identifier: BSD-3-Clause
# Sourced by the xen-lab guest's /init with --guest-kmod (busybox sh, after
# guest-full.sh, whose check() and tpm helpers it uses). The guest booted
# with vtpm_front.ko (kmod/) instead of xen-tpmfront. Each check prints
#   XENLAB: check NAME ok|FAIL (detail)
# and run.sh requires all of KMOD_CHECKS (listed there) to be ok.
#
# kmod_boot1 (first boot, after the raw --full checks): the driver is the
#   TPM 2.0 one, tpm2-tools through /dev/tpmrm0, the kernel's hwrng, a
#   4096-byte command, then rmmod, the stock driver timed against ours
#   (tpmraw -n, with run.sh --kmod-bench), insmod again.
# kmod_save_restore (rebooted guest, after vtpm-detach/attach): dom0 runs
#   xl save + xl restore; the same /dev/tpm0 must work afterwards.

KMOD=1
export TPM2TOOLS_TCTI=device:/dev/tpmrm0
KMOD_NV=0x01500020
KMOD_TMP=/tmp/kmod
BENCH_N=200
BENCH_CYCLES=3

# kmod_wait_dev PRESENT|GONE DEV SECS
kmod_wait_dev() {
	local d
	d=$(awk -v a="$(up)" -v s="$3" 'BEGIN { print a + s }')
	while ! past "$d"; do
		if [ "$1" = PRESENT ]; then [ -c "$2" ] && return 0
		else [ -e "$2" ] || return 0; fi
		sleep 0.1
	done
	return 1
}

# t2 NAME CMD...: runs a tpm2 tool, its output in $KMOD_TMP/NAME.out;
# retries TPM_RC_RETRY (0x922: libtpms after NV_DefineSpace) a few times.
t2() {
	local name=$1 n=0 rc
	shift
	while :; do
		timeout 120 "$@" >"$KMOD_TMP/$name.out" 2>&1
		rc=$?
		[ $rc = 0 ] && return 0
		grep -q '0x922\|0x00000922\|retry' "$KMOD_TMP/$name.out" || break
		n=$((n + 1))
		[ $n -lt 5 ] || break
		sleep 0.2
	done
	echo "guest: $* -> rc=$rc: $(tr '\n' ' ' <"$KMOD_TMP/$name.out" | cut -c1-300)"
	return $rc
}

kmod_driver_checks() {
	local mods v ring
	mods=$(cut -d' ' -f1 /proc/modules | tr '\n' ' ')
	case " $mods " in
	*" vtpm_front "*" xen_tpmfront "* | *" xen_tpmfront "*)
		check kmod-loaded FAIL "xen_tpmfront is loaded: $mods" ;;
	*" vtpm_front "*)
		check kmod-loaded ok "modules: $mods" ;;
	*)
		check kmod-loaded FAIL "vtpm_front not loaded: $mods" ;;
	esac
	v=$(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null)
	if [ "$v" = 2 ] && [ -c /dev/tpmrm0 ]; then
		check kmod-tpm2 ok "tpm_version_major=2, /dev/tpmrm0 present"
	else
		check kmod-tpm2 FAIL "tpm_version_major=${v:-none}, tpmrm0 $([ -c /dev/tpmrm0 ] && echo present || echo missing)"
	fi
	ring=$(dmesg | grep 'vtpm_front vtpm-0: ring of' | tail -n 1)
	case "$ring" in
	*"ring of 2 page(s), up to 4096 bytes"*)
		check kmod-extra-pages ok "${ring#*: }" ;;
	*)
		check kmod-extra-pages FAIL "dmesg: ${ring:-no ring line}" ;;
	esac
}

kmod_tools_checks() {
	local r p want
	mkdir -p "$KMOD_TMP"
	cd "$KMOD_TMP" || return
	if t2 getrandom tpm2_getrandom --hex 16; then
		check tools-getrandom ok "$(cat getrandom.out)"
	else
		check tools-getrandom FAIL "tpm2_getrandom failed"
	fi
	if t2 createprimary tpm2_createprimary -C o -g sha256 -G ecc -c primary.ctx; then
		check tools-createprimary ok "ECC P-256 primary in the owner hierarchy"
	else
		check tools-createprimary FAIL "tpm2_createprimary failed"
	fi
	if t2 create tpm2_create -C primary.ctx -G ecc -u key.pub -r key.priv &&
	   t2 load tpm2_load -C primary.ctx -u key.pub -r key.priv -c key.ctx; then
		check tools-create-load ok "ECC child key created and loaded"
	else
		check tools-create-load FAIL "tpm2_create/tpm2_load failed"
	fi
	head -c 24 /dev/urandom | hexdump -v -e '1/1 "%02x"' >secret
	if t2 seal tpm2_create -C primary.ctx -i secret -u seal.pub -r seal.priv &&
	   t2 sealload tpm2_load -C primary.ctx -u seal.pub -r seal.priv -c seal.ctx &&
	   t2 unseal tpm2_unseal -c seal.ctx -o unsealed && cmp -s secret unsealed; then
		check tools-seal-unseal ok "48-byte secret sealed and unsealed"
	else
		check tools-seal-unseal FAIL "seal/unseal failed or data differs"
	fi
	want=$PCREXPECT
	if t2 pcrextend tpm2_pcrextend "23:sha256=$PCRDIGEST" &&
	   t2 pcrread tpm2_pcrread sha256:23; then
		p=$(grep -o '0x[0-9A-Fa-f]*' pcrread.out | tail -n 1 | cut -c3- | tr 'A-F' 'a-f')
		if [ "$p" = "$want" ]; then
			check tools-pcr ok "PCR 23 = $p"
		else
			check tools-pcr FAIL "PCR 23 = ${p:-none}, want $want"
		fi
	else
		check tools-pcr FAIL "tpm2_pcrextend/pcrread failed"
	fi
	# The kernel's own TPM 2.0 PCR read (tpm2_pcr_read) behind sysfs.
	p=$(tr 'A-F' 'a-f' </sys/class/tpm/tpm0/pcr-sha256/23 2>/dev/null)
	if [ "$p" = "$want" ]; then
		check sysfs-pcr ok "/sys/class/tpm/tpm0/pcr-sha256/23 = $p"
	else
		check sysfs-pcr FAIL "/sys/class/tpm/tpm0/pcr-sha256/23 = ${p:-unreadable}, want $want"
	fi
	head -c 32 /dev/urandom >nvdata
	if t2 nvdefine tpm2_nvdefine -C o -s 32 -a "ownerread|ownerwrite|authread|authwrite" $KMOD_NV &&
	   t2 nvwrite tpm2_nvwrite -C o -i nvdata $KMOD_NV &&
	   t2 nvread tpm2_nvread -C o -s 32 -o nvback $KMOD_NV && cmp -s nvdata nvback; then
		check tools-nv ok "index $KMOD_NV: 32 bytes written and read back"
	else
		check tools-nv FAIL "nvdefine/nvwrite/nvread failed or data differs"
	fi
	cd /
}

kmod_hwrng_check() {
	local cur n
	cur=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)
	n=$(timeout 30 head -c 32 /dev/hwrng 2>/dev/null | wc -c)
	case "$cur" in
	tpm-rng-*)
		if [ "$n" = 32 ]; then
			check hwrng ok "rng_current=$cur, 32 bytes from /dev/hwrng"
		else
			check hwrng FAIL "rng_current=$cur, read $n bytes"
		fi ;;
	*) check hwrng FAIL "rng_current=${cur:-none}" ;;
	esac
}

# A 4096-byte TPM2_GetRandom (padded with zeros): larger than the 4088
# bytes one page holds. libtpms parses all of it and answers TPM_RC_SIZE
# (0x95) for the trailing bytes; a truncated command would give
# TPM_RC_COMMAND_SIZE (0x142), and the stock driver refuses it (-EINVAL).
kmod_big_cmd() { # DEV: prints the response or "error"
	local hex
	hex="8001000010000000017b0008$(head -c 4084 /dev/zero | hexdump -v -e '1/1 "%02x"')"
	timeout 60 tpmraw -d "$1" "$hex" 2>&1 || echo "error"
}

kmod_big_check() {
	local r
	r=$(kmod_big_cmd /dev/tpm0)
	if [ "$r" = 80010000000a00000095 ]; then
		check big-command ok "4096-byte command answered by the TPM: $r (TPM_RC_SIZE, the whole command parsed)"
	else
		check big-command FAIL "4096-byte command: '$r'"
	fi
}

# run.sh --kmod-bench leaves /etc/xenlab/kmod-bench: time the drivers.
kmod_bench_on() { [ -e /etc/xenlab/kmod-bench ]; }

kmod_bench() { # LABEL
	if kmod_bench_on; then
		M "bench $(timeout 300 tpmraw -d /dev/tpm0 -n "$BENCH_N" -l "$1" 2>&1)"
	fi
}

# kmod_swap_out DRIVER MODULE: unbind and rmmod it (xenbus holds a
# module reference per bound device), until /dev/tpm0 is gone.
kmod_swap_out() {
	echo vtpm-0 >"/sys/bus/xen/drivers/$1/unbind"
	rmmod "$2" && kmod_wait_dev GONE /dev/tpm0 30 && kmod_wait_dev GONE /dev/tpmrm0 5
}

kmod_stock_in() {
	local ko
	for ko in $(cat /etc/xenlab/stock-modules 2>/dev/null); do
		insmod "/lib/modules/xenlab/$ko"
	done
	kmod_wait_dev PRESENT /dev/tpm0 60
}

# Unload and reload; in between, the stock driver on the same backend. With
# --kmod-bench, BENCH_CYCLES interleaved timings of each driver.
kmod_reload_checks() {
	local t c=1 cycles=1
	kmod_bench_on && cycles=$BENCH_CYCLES
	while [ $c -le $cycles ]; do
		kmod_bench vtpm_front
		t=$(up)
		if kmod_swap_out vtpm_front vtpm_front; then
			[ $c = 1 ] && check kmod-rmmod ok "unbind + rmmod vtpm_front rc=0, /dev/tpm0 and /dev/tpmrm0 gone after $(since "$t")s"
		else
			[ $c = 1 ] && check kmod-rmmod FAIL "rmmod failed or /dev/tpm0 still there"
			return
		fi
		if kmod_bench_on; then
			if kmod_stock_in; then
				[ $c = 1 ] && M "guest: xen-tpmfront: tpm_version_major=$(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null), 4096-byte command: $(kmod_big_cmd /dev/tpm0 | tail -n 1)"
				kmod_bench xen-tpmfront
			else
				M "guest: xen-tpmfront brought no /dev/tpm0"
			fi
			kmod_swap_out vtpm xen_tpmfront || M "guest: xen-tpmfront did not go away"
		fi
		t=$(up)
		insmod /lib/modules/xenlab/vtpm_front.ko
		if kmod_wait_dev PRESENT /dev/tpmrm0 60 && kmod_wait_dev PRESENT /dev/tpm0 5 &&
		   t2 reload-getrandom tpm2_getrandom --hex 8; then
			[ $c = 1 ] && check kmod-reload ok "insmod again: /dev/tpmrm0 back after $(since "$t")s, getrandom $(cat "$KMOD_TMP/reload-getrandom.out")"
		else
			check kmod-reload FAIL "no working /dev/tpmrm0 after insmod (cycle $c)"
			return
		fi
		c=$((c + 1))
	done
	kmod_bench vtpm_front
}

# The kernel's own TPM 2.0 selftests (tools/testing/selftests/tpm2), when
# run.sh --extra-bin copied their bundle (kmod-selftests-bundle.sh) in.
# Reported, not a check: the counts are the suite's.
kmod_selftests() {
	local b=/usr/local/bin/tpm2-selftests.tgz r=/opt/st rc
	[ -f "$b" ] || return 0
	# A tmpfs of its own: the guest's root has little room left.
	mkdir -p "$r" && mount -t tmpfs -o size=64m tmpfs "$r" &&
		gzip -dc "$b" | tar -C "$r" -x && rm -f "$b" ||
		{ M "selftests: cannot unpack $b"; return 0; }
	cd "$r/opt/tpm2-selftests" || return 0
	LD_LIBRARY_PATH=$r/lib/x86_64-linux-gnu:$r/usr/lib/x86_64-linux-gnu \
	PYTHONHOME=$r/usr PYTHONDONTWRITEBYTECODE=1 timeout 900 "$r/usr/bin/python3.11" \
		-m unittest -v tpm2_tests.SmokeTest tpm2_tests.SpaceTest tpm2_tests.AsyncTest \
		>/tmp/selftests.log 2>&1
	rc=$?
	cd /
	sed 's/^/guest: selftests: /' /tmp/selftests.log | tail -n 60
	M "selftests: rc=$rc, $(grep -c ' \.\.\. ok$' /tmp/selftests.log) ok," \
	  "$(grep -c ' \.\.\. FAIL$' /tmp/selftests.log) failed," \
	  "$(grep -c ' \.\.\. ERROR$' /tmp/selftests.log) errors," \
	  "$(grep -c ' \.\.\. skipped' /tmp/selftests.log) skipped; $(grep '^Ran ' /tmp/selftests.log)"
	umount -l "$r"
}

kmod_boot1() {
	kmod_driver_checks
	kmod_tools_checks
	kmod_hwrng_check
	kmod_big_check
	kmod_reload_checks
	kmod_selftests
	return 0
}

kmod_save_restore() {
	local t d p
	# PCR 16 is 0 after the reboot: extend it once, to see what a restore keeps.
	tpm "$CMD_PCR_EXTEND" >/dev/null
	M "guest: PCR 16 before the save: $(pcr16)"
	echo "XENLAB: guest ready-for-save"
	t=$(up)
	d=$(awk -v a="$t" 'BEGIN { print a + 180 }')
	while ! dmesg | grep -q 'vtpm_front.*after the restore' && ! past "$d"; do
		sleep 0.2
	done
	if ! dmesg | grep -q 'vtpm_front.*after the restore'; then
		check restore-tpm0 FAIL "no restore seen within 180 s"
		return
	fi
	dmesg | grep -i 'tpm\|vtpm\|xen.*suspend\|xen.*resum' | tail -n 15 | sed 's/^/guest: dmesg: /'
	if [ -c /dev/tpm0 ] && [ -c /dev/tpmrm0 ] &&
	   ! dmesg | grep -q 'vtpm_front.*after the restore failed'; then
		check restore-tpm0 ok "$(dmesg | grep 'vtpm_front.*after the restore' | tail -n 1 | sed 's/.*vtpm_front [^:]*: //'); /dev/tpm0 and /dev/tpmrm0 kept"
	else
		check restore-tpm0 FAIL "/dev/tpm0 or /dev/tpmrm0 missing, or the TPM restart failed"
	fi
	mkdir -p "$KMOD_TMP"
	if t2 restore-getrandom tpm2_getrandom --hex 16; then
		check restore-getrandom ok "tpm2_getrandom: $(cat "$KMOD_TMP/restore-getrandom.out")"
	else
		check restore-getrandom FAIL "tpm2_getrandom after the restore"
	fi
	check_nv_read restore-nv-read
	# The backend resumed the TPM saved when the domain was suspended
	# (issue 13 item 1): PCR 16 as extended before the save, no Startup.
	p=$(pcr16)
	if [ -n "$p" ] && [ "$p" = "$PCREXPECT" ]; then
		check restore-pcr16 ok "PCR 16 = $p, as before the save (the TPM resumed, not power-cycled)"
	elif [ "$p" = "$ZERO64" ]; then
		check restore-pcr16 FAIL "PCR 16 = 0...0: the backend started the TPM afresh"
	else
		check restore-pcr16 FAIL "PCR 16 = ${p:-unreadable}, want $PCREXPECT"
	fi
}
