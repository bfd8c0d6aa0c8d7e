#!/bin/busybox sh
# SPDX-License-Identifier: BSD-3-Clause
# /init of the tis-mmio guest (run.sh builds the initramfs around it).
# /e2e.conf sets MODE:
#   tis-mmio          no kernel TPM driver (initcall_blacklist=init_tis):
#                     preflight through /dev/mem with busybox devmem, then
#                     the scenario with --hal tis-mmio --tcti path=/dev/mem
#   tss-device-guest  the kernel's tpm_tis owns the device: the scenario with
#                     --hal tss-device --tcti device:/dev/tpmrm0 (a harness
#                     self-test and a same-guest baseline for the benchmark)
/bin/busybox mkdir -p /proc /sys /dev /tmp /run
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox mount -t tmpfs -o mode=0755 tmpfs /run
/bin/busybox mount -t tmpfs -o mode=1777 tmpfs /tmp
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=/usr/bin:/bin:/opt/vtpm
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu
export HOME=/root
. /e2e.conf

M() { echo "TISE2E: $*"; }
finish() {
	if [ "$1" != 0 ]; then
		echo "--- dmesg (tpm/tis, tail) ---"
		dmesg | grep -i -E 'tpm|tis|devmem|mem' | tail -n 20
	fi
	sync
	poweroff -f
	sleep 5
	echo o >/proc/sysrq-trigger
}
gfail() {
	M "FAIL $*"
	finish 1
}

echo   # the console line may still hold firmware escape sequences
M "init started, kernel $(uname -r), uptime $(cut -d' ' -f1 /proc/uptime)s, mode $MODE"

# ---------------------------------------------------------------- TIS
# Locality 0 of the TIS window (PC Client PTP / TIS 1.3 register map).
ACC=0xfed40000     # TPM_ACCESS_0 (8): 0x80 regValid, 0x20 active, 0x02 requestUse
STS=0xfed40018     # TPM_STS_0 (32): 0x80 stsValid, 0x40 commandReady,
                   #   0x20 tpmGo, 0x10 dataAvail, 0x08 expect, 8..23 burstCount
FIFO=0xfed40024    # TPM_DATA_FIFO_0 (8)
DIDVID=0xfed40f00  # TPM_DID_VID_0 (32)
TIS_ERR=""

dm() { # devmem with its error kept for the report
	devmem "$@" 2>/tmp/devmem.err || {
		TIS_ERR="devmem $*: $(cat /tmp/devmem.err)"
		return 1
	}
}
tis_wait() { # addr width mask want tries: until (reg & mask) == want
	n=0
	while [ $n -lt "$5" ]; do
		TIS_V=$(dm "$1" "$2") || return 2
		[ $((TIS_V & $3)) -eq $(($4)) ] && return 0
		n=$((n + 1))
	done
	return 1
}
tis_request() {
	dm $ACC 8 0x02 || return 1
	tis_wait $ACC 8 0xa0 0xa0 200 ||
		{ TIS_ERR="${TIS_ERR:-locality 0 not granted (ACCESS=$TIS_V)}"; return 1; }
}
tis_release() { dm $ACC 8 0x20; }
# tis_xfer HEX: one command through the FIFO; the response in TIS_RSP (hex)
tis_xfer() {
	TIS_RSP=""
	dm $STS 32 0x40 || return 1
	tis_wait $STS 32 0x40 0x40 200 ||
		{ TIS_ERR="${TIS_ERR:-commandReady not set (STS=$TIS_V)}"; return 1; }
	for b in $(echo "$1" | sed 's/../& /g'); do
		dm $FIFO 8 "0x$b" || return 1
	done
	tis_wait $STS 32 0x88 0x80 100 ||
		{ TIS_ERR="${TIS_ERR:-expect still set after the whole command (STS=$TIS_V)}"; return 1; }
	dm $STS 32 0x20 || return 1
	tis_wait $STS 32 0x90 0x90 5000 ||
		{ TIS_ERR="${TIS_ERR:-no dataAvail after tpmGo (STS=$TIS_V)}"; return 1; }
	n=0
	while [ $n -lt 6 ]; do
		v=$(dm $FIFO 8) || return 1
		TIS_RSP="$TIS_RSP${v#0x}"
		n=$((n + 1))
	done
	size=$((0x${TIS_RSP:4:8}))
	[ "$size" -ge 10 ] && [ "$size" -le 4096 ] ||
		{ TIS_ERR="response size $size"; return 1; }
	while [ $n -lt "$size" ]; do
		v=$(dm $FIFO 8) || return 1
		TIS_RSP="$TIS_RSP${v#0x}"
		n=$((n + 1))
	done
	dm $STS 32 0x40 >/dev/null || return 1
	TIS_RSP=$(echo "$TIS_RSP" | tr 'A-F' 'a-f')
}

preflight_tis() {
	[ -c /dev/mem ] || gfail "no /dev/mem in the guest"
	[ -e /sys/class/tpm/tpm0 ] &&
		gfail "a kernel TPM driver owns the device (initcall_blacklist=init_tis missing?)"
	a0=$(dm $ACC 8) || gfail "cannot map the TIS window through /dev/mem: $TIS_ERR"
	tis_request || gfail "TIS: $TIS_ERR"
	did=$(dm $DIDVID 32) || gfail "TIS: $TIS_ERR"
	M "TIS ACCESS at start=$a0, after request=$TIS_V; DID_VID=$did"
	[ "$did" = 0x00011014 ] || gfail "DID_VID is $did, not 0x00011014 (QEMU tpm-tis)"
	t0=$(/usr/bin/date +%s%3N)
	# TPM2_GetCapability(TPM_CAP_TPM_PROPERTIES, TPM_PT_STARTUP_CLEAR, 1)
	tis_xfer 8001000000160000017a000000060000020100000001 ||
		gfail "TIS GetCapability: $TIS_ERR"
	t1=$(/usr/bin/date +%s%3N)
	rc=${TIS_RSP:12:8}
	[ "$rc" = 00000000 ] || gfail "TIS GetCapability answered rc 0x$rc ($TIS_RSP)"
	sc=$((0x${TIS_RSP:46:8}))
	M "TIS GetCapability through devmem in $((t1 - t0))ms: startupClear=0x${TIS_RSP:46:8}"
	# The manager needs the storage (shEnable) and endorsement (ehEnable)
	# hierarchies; SeaBIOS disables them when its own TPM2_Startup fails.
	[ $((sc & 6)) -eq 6 ] ||
		gfail "physical TPM hierarchies disabled (startupClear=0x${TIS_RSP:46:8}): did SeaBIOS's TPM2_Startup fail?"
	# TPM2_PCR_Read(sha256: PCR0)
	tis_xfer 8001000000140000017e00000001000b03010000 || gfail "TIS PCR_Read: $TIS_ERR"
	[ "${TIS_RSP:12:8}" = 00000000 ] || gfail "TIS PCR_Read answered rc 0x${TIS_RSP:12:8}"
	M "TIS PCR_Read sha256:0 = ${TIS_RSP:60:64}"
	tis_release || gfail "TIS: $TIS_ERR"
}

# ---------------------------------------------------------- preflight
if [ "$MODE" = tis-mmio ]; then
	preflight_tis
	HAL=tis-mmio TCTI=path=/dev/mem
else
	i=0
	while [ ! -c /dev/tpmrm0 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	[ -c /dev/tpmrm0 ] || gfail "no /dev/tpmrm0 (kernel tpm_tis did not bind)"
	M "kernel driver: /dev/tpmrm0 present"
	HAL=tss-device TCTI=device:/dev/tpmrm0
fi

out=$(vtpm-service --role=manager --help 2>&1) ||
	gfail "vtpm-service --role=manager --help: exit $?: $out"
case "$out" in *"--role=manager"*) ;; *) gfail "vtpm-service --help printed no usage: $out" ;; esac
out=$(vtpmctl --help 2>&1) || gfail "vtpmctl --help: exit $?: $out"
out=$(tpm2_getrandom -v 2>&1) || gfail "tpm2_getrandom -v: exit $?: $out"
M "binaries load in the guest: vtpm-service --role=manager --help, vtpmctl --help, tpm2_getrandom -v"

# ----------------------------------------------------------- scenario
mkdir -p /e2e
HAL=$HAL TCTI=$TCTI BIN=/opt/vtpm WD=/e2e DATE=/usr/bin/date WAIT_S=$WAIT_S \
	sh /scenario.sh
finish $?
