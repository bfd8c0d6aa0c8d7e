/* SPDX-License-Identifier: BSD-3-Clause */
/* The physical TPM seam (tpm.h) over hal/tss-device. */
#include "manager/manager.h"
#include "manager/tpm.h"

static int hal_counter_increment(struct manager *m, uint64_t *value,
				 char *err, size_t errlen)
{
	return tss_hal_counter_increment(m->hal, m->cfg->nv_index, m->nv_auth,
					 NV_AUTH_LEN, value, err, errlen);
}

static int hal_quote(struct manager *m, const uint8_t *qd, size_t qdlen,
		     uint8_t **attest, size_t *attest_len, uint8_t **sig,
		     size_t *sig_len, char *err, size_t errlen)
{
	return tss_hal_quote(m->hal, qd, qdlen, &m->sel, attest, attest_len,
			     sig, sig_len, err, errlen);
}

static int hal_ak(struct manager *m, uint8_t **spki, size_t *spki_len,
		  char *err, size_t errlen)
{
	return tss_hal_ak(m->hal, spki, spki_len, err, errlen);
}

static int hal_pcr_read(struct manager *m, uint8_t (*values)[32], char *err,
			size_t errlen)
{
	return tss_hal_pcr_read(m->hal, &m->sel, values, err, errlen);
}

static int hal_seal_root_key(struct manager *m, const uint8_t (*values)[32],
			     uint8_t **blob, size_t *bloblen, char *err,
			     size_t errlen)
{
	return tss_hal_seal(m->hal, m->root_key, KEYSTORE_ROOT_KEY_LEN, &m->sel,
			    values, blob, bloblen, err, errlen);
}

const struct mgr_tpm_ops mgr_tpm_hal = {
	.counter_increment = hal_counter_increment,
	.quote = hal_quote,
	.ak = hal_ak,
	.pcr_read = hal_pcr_read,
	.seal_root_key = hal_seal_root_key,
};
