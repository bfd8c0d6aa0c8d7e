/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A tpm2-tss TCTI that drives a TPM's TIS 1.3 / PC Client PTP FIFO
 * register window itself: no kernel driver, only the TPM's MMIO pages
 * (five 4 KiB localities, physical 0xFED40000 on a PC).  The manager uses
 * the context it returns exactly as it uses one from the TCTI loader:
 * hand it to Esys_Initialize.  docs/tis-mmio.md says when and why.
 *
 * Every call blocks until the TPM answers or a timeout fires; every wait
 * is bounded (timeouts A-D of the spec, and a command duration).  One
 * context is used by one thread at a time.
 *
 * Failures return a TSS2_TCTI_RC_* and leave a one-line reason, naming the
 * register and what it read, in the context: tcti_tis_last_error().
 */
#ifndef VTPM_TCTI_TIS_H
#define VTPM_TCTI_TIS_H

#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tcti.h>

#define TIS_DEFAULT_PATH "/dev/mem"
#define TIS_DEFAULT_BASE UINT64_C(0xFED40000)
#define TIS_LOCALITIES 5
#define TIS_LOCALITY_SIZE 0x1000u
#define TIS_WINDOW_SIZE 0x5000u /* TIS_LOCALITIES * TIS_LOCALITY_SIZE */
#define TIS_BUFFER_MAX 4096u /* largest command or response we move */
#define TIS_CONF_PATH_MAX 256

/* Register offsets inside one locality (add locality * 0x1000). */
#define TIS_REG_ACCESS 0x000
#define TIS_REG_INT_ENABLE 0x008
#define TIS_REG_INTF_CAPS 0x014
#define TIS_REG_STS 0x018
#define TIS_REG_DATA_FIFO 0x024
#define TIS_REG_INTF_ID 0x030
#define TIS_REG_DID_VID 0xF00
#define TIS_REG_RID 0xF04

/* TPM_ACCESS bits. */
#define TIS_ACCESS_ESTABLISHMENT 0x01
#define TIS_ACCESS_REQUEST_USE 0x02
#define TIS_ACCESS_PENDING_REQUEST 0x04
#define TIS_ACCESS_SEIZE 0x08
#define TIS_ACCESS_BEEN_SEIZED 0x10
#define TIS_ACCESS_ACTIVE_LOCALITY 0x20 /* write 1: relinquish */
#define TIS_ACCESS_VALID 0x80           /* tpmRegValidSts */

/* TPM_STS bits. */
#define TIS_STS_RESPONSE_RETRY 0x02u
#define TIS_STS_SELFTEST_DONE 0x04u
#define TIS_STS_EXPECT 0x08u
#define TIS_STS_DATA_AVAIL 0x10u
#define TIS_STS_GO 0x20u
#define TIS_STS_COMMAND_READY 0x40u
#define TIS_STS_VALID 0x80u
#define TIS_STS_BURST_SHIFT 8
#define TIS_STS_BURST_MASK 0xFFFFu
#define TIS_STS_COMMAND_CANCEL (1u << 24) /* PTP; TPM 2.0 only */
#define TIS_STS_FAMILY_SHIFT 26
/* Bits that read as 0 on a working TPM: a window that reads all ones
 * (no TPM, or a locality we do not hold) is caught by them. */
#define TIS_STS_READ_ZERO 0x23u

#define TIS_INT_GLOBAL_ENABLE (1u << 31)

/*
 * Register access and time, chosen once at init: the MMIO backend maps
 * the window; tests plug a software model.  off is from the window base
 * (locality * 0x1000 + register), always < TIS_WINDOW_SIZE and naturally
 * aligned.  32-bit values are in host order (the backend converts from
 * the little-endian bus).  now_ms is a monotonic clock; sleep_us may
 * return early.
 */
struct tis_ops {
	uint8_t (*read8)(void *opaque, uint32_t off);
	uint32_t (*read32)(void *opaque, uint32_t off);
	void (*write8)(void *opaque, uint32_t off, uint8_t v);
	void (*write32)(void *opaque, uint32_t off, uint32_t v);
	uint64_t (*now_ms)(void *opaque);
	void (*sleep_us)(void *opaque, unsigned int us);
};

/*
 * Milliseconds.  a: locality grant and burstCount during reads; b:
 * commandReady; c: stsValid/dataAvail between bytes; d: burstCount going
 * nonzero; duration: tpmGo to the first response byte (key generation on
 * a slow TPM takes about two minutes).
 */
struct tis_timeouts {
	unsigned int a_ms, b_ms, c_ms, d_ms, duration_ms;
};
#define TIS_TIMEOUT_A_MS 750
#define TIS_TIMEOUT_B_MS 2000
#define TIS_TIMEOUT_C_MS 750
#define TIS_TIMEOUT_D_MS 750
#define TIS_DURATION_MS 120000

/* The conf string, parsed and checked. */
struct tis_conf {
	char path[TIS_CONF_PATH_MAX];
	uint64_t base;          /* 4 KiB aligned, window fits below 2^63 */
	unsigned int locality;  /* 0..4 */
};

/*
 * "path=/dev/mem,base=0xfed40000,locality=0": every key optional, each
 * at most once, in any order; NULL or "" gives the defaults.  path: any
 * absolute path without ','; base: 0x-hex or decimal, 4 KiB aligned;
 * locality: one digit 0..4.  No spaces, no empty items, no other keys.
 * Pure; 0 or -EINVAL with the reason in err.
 */
int tcti_tis_conf_parse(const char *conf, struct tis_conf *out, char *err,
			size_t errlen);

/*
 * Maps the window from conf's path at offset base (shared, read-write,
 * O_SYNC: uncached on /dev/mem), checks that a TPM answers there, and
 * returns a TCTI context.  Free it with Tss2_Tcti_Finalize(ctx) then
 * free(ctx).
 *   -EINVAL    bad conf string
 *   -ENOENT, -EACCES, -EPERM ...  open or mmap failed (EPERM on /dev/mem:
 *              a kernel driver owns the region, see docs/tis-mmio.md)
 *   -ENODEV    no TPM at this address (DID_VID reads all ones or zero),
 *              or the file is shorter than base + 20 KiB
 *   -ENOTSUP   the TPM speaks CRB, not the FIFO interface
 *   -ETIMEDOUT the locality was not granted within timeout A
 *   -ENOMEM
 */
int tcti_tis_init_mmio(const char *conf, TSS2_TCTI_CONTEXT **ctx, char *err,
		       size_t errlen);

/*
 * The same over caller-supplied register access (copied; opaque is the
 * caller's and must outlive the context).  timeouts NULL: the spec's.
 * Same return values as tcti_tis_init_mmio.
 */
int tcti_tis_init_ops(const struct tis_ops *ops, void *opaque,
		      unsigned int locality, const struct tis_timeouts *timeouts,
		      TSS2_TCTI_CONTEXT **ctx, char *err, size_t errlen);

/* Why the last call on ctx failed ("" if it did not); never NULL. */
const char *tcti_tis_last_error(TSS2_TCTI_CONTEXT *ctx);

/* DID_VID read at init (vendor in the low 16 bits); 0 if ctx is not ours. */
uint32_t tcti_tis_did_vid(TSS2_TCTI_CONTEXT *ctx);

#endif
