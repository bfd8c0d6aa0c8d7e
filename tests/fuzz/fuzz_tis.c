/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hal/tis-mmio's TCTI against a register window (tests/tis/tis_model.c)
 * whose TPM answers with the fuzz input and misbehaves as the input's
 * first bytes say.  A virtual clock makes every timeout free.
 *
 *   0     flags: 1 never_ready, 2 data_avail_never, 4 data_avail_sticky,
 *         8 ask the size first (response NULL), 16 a second, larger
 *         buffer after INSUFFICIENT_BUFFER
 *   1     burstCount offered (0: 4096)
 *   2     STS reads with burstCount 0 per chunk (255: forever)
 *   3     bytes past the response
 *   4     dataAvail drops after this many response bytes (0: never)
 *   5..6  receive buffer size, big-endian
 *   7     expect clears after this many command bytes (0: never)
 *   8..   the response
 *
 * Must hold: no write past a buffer (ASan); a successful receive returns
 * exactly the bytes the header announced, and the TPM offered no more;
 * a failure has a message; and the next command on the same context
 * works once the window behaves.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tis-mmio/tcti_tis.h"
#include "tis_model.h"

#define HDR 8

struct fuzz_tpm {
	const uint8_t *rsp;
	size_t len;
};

static int fuzz_backend(void *ctx, unsigned int locality, const uint8_t *cmd,
			size_t len, uint8_t *rsp, size_t rspmax, size_t *rsplen)
{
	struct fuzz_tpm *f = ctx;
	size_t n = f->len < rspmax ? f->len : rspmax;

	(void)locality;
	(void)cmd;
	(void)len;
	memcpy(rsp, f->rsp, n);
	*rsplen = n;
	return 0;
}

/* Byte i of what the model offers: the response, then its filler. */
static uint8_t offered_at(const struct fuzz_tpm *t, size_t i)
{
	return i < t->len ? t->rsp[i] : 0xee;
}

/* What a correct TCTI may return: the announced bytes, if the TPM
 * offered exactly those and then dropped dataAvail. */
static int acceptable(const struct tis_faults *f, const struct fuzz_tpm *t,
		      const uint8_t *got, size_t gotlen)
{
	size_t offered = t->len + f->extra_rsp_bytes;
	uint32_t announced = 0;

	if (f->cut_rsp_after && f->cut_rsp_after < offered)
		offered = f->cut_rsp_after;
	if (offered < 10 || f->data_avail_sticky)
		return 0;
	for (size_t i = 2; i < 6; i++)
		announced = announced << 8 | offered_at(t, i);
	if (gotlen != announced || gotlen != offered)
		return 0;
	for (size_t i = 0; i < gotlen; i++)
		if (got[i] != offered_at(t, i))
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct tis_timeouts to = {
		.a_ms = 5, .b_ms = 5, .c_ms = 5, .d_ms = 5, .duration_ms = 20,
	};
	static const uint8_t getrandom[12] = { 0x80, 0x01, 0, 0, 0, 12,
					       0, 0, 0x01, 0x7b, 0, 8 };
	struct tis_model *m;
	struct tis_faults f = { 0 }, none = { 0 };
	struct fuzz_tpm tpm;
	TSS2_TCTI_CONTEXT *tcti = NULL;
	uint8_t *buf = NULL, big[TIS_BUFFER_MAX];
	size_t buflen, len;
	TSS2_RC rc;
	char err[320];

	if (size < HDR)
		return 0;
	f.never_ready = data[0] & 1;
	f.data_avail_never = data[0] & 2;
	f.data_avail_sticky = data[0] & 4;
	f.burst = data[1];
	f.burst_zero_polls = data[2] == 255 ? UINT32_MAX : data[2];
	f.extra_rsp_bytes = data[3];
	f.cut_rsp_after = data[4];
	buflen = (size_t)data[5] << 8 | data[6];
	f.expect_stops_after = data[7];
	tpm.rsp = data + HDR;
	tpm.len = size - HDR < TIS_BUFFER_MAX ? size - HDR : TIS_BUFFER_MAX;

	m = malloc(sizeof(*m));
	if (!m)
		return 0;
	tis_model_init(m, fuzz_backend, &tpm);
	m->virtual_clock = 1;
	if (tcti_tis_init_ops(&tis_model_ops, m, 0, &to, &tcti, err,
			      sizeof(err)))
		abort(); /* a well-behaved window always initialises */
	tis_model_set_faults(m, &f);

	rc = Tss2_Tcti_Transmit(tcti, sizeof(getrandom), getrandom);
	if (rc == TSS2_RC_SUCCESS && (data[0] & 8)) {
		len = 0;
		rc = Tss2_Tcti_Receive(tcti, &len, NULL, -1);
		if (rc == TSS2_RC_SUCCESS &&
		    (len < 10 || len > TIS_BUFFER_MAX))
			abort();
		if (rc == TSS2_RC_SUCCESS)
			rc = TSS2_TCTI_RC_TRY_AGAIN; /* go on reading */
	}
	if (rc == TSS2_RC_SUCCESS || rc == TSS2_TCTI_RC_TRY_AGAIN) {
		buf = malloc(buflen ? buflen : 1); /* exact: ASan guards it */
		if (!buf)
			abort();
		len = buflen;
		rc = Tss2_Tcti_Receive(tcti, &len, buf, -1);
		if (rc == TSS2_TCTI_RC_INSUFFICIENT_BUFFER) {
			if (len <= buflen || len > TIS_BUFFER_MAX ||
			    !*tcti_tis_last_error(tcti))
				abort();
			if (data[0] & 16) {
				len = sizeof(big);
				rc = Tss2_Tcti_Receive(tcti, &len, big, -1);
				if (rc == TSS2_RC_SUCCESS &&
				    !acceptable(&f, &tpm, big, len))
					abort();
			} else {
				rc = Tss2_Tcti_Cancel(tcti); /* give up */
				if (rc)
					abort();
			}
		} else if (rc == TSS2_RC_SUCCESS) {
			if (len > buflen || !acceptable(&f, &tpm, buf, len))
				abort();
		}
	}
	if (rc != TSS2_RC_SUCCESS && !*tcti_tis_last_error(tcti))
		abort();

	/* The window behaves again: the same context must work. */
	tis_model_set_faults(m, &none);
	m->backend = tis_fake_tpm;
	len = sizeof(big);
	if (Tss2_Tcti_Transmit(tcti, sizeof(getrandom), getrandom) ||
	    Tss2_Tcti_Receive(tcti, &len, big, -1) || len != 20)
		abort();

	Tss2_Tcti_Finalize(tcti);
	free(tcti);
	free(buf);
	free(m);
	return 0;
}
