/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the manager's tasks ask of the physical TPM once it is serving
 * (start-up talks to hal/tss-device directly): a small seam, so the
 * machinery can be tested against a fake as well as a real TPM.  All
 * are called on the thread pool, from tasks (task.h), one at a time.
 */
#ifndef VTPM_MANAGER_TPM_H
#define VTPM_MANAGER_TPM_H

#include <stddef.h>
#include <stdint.h>

struct manager;

struct mgr_tpm_ops {
	/* The key store's NV counter, by one; *value is the new value. */
	int (*counter_increment)(struct manager *m, uint64_t *value,
				 char *err, size_t errlen);
	/* A quote by the AK over the manager's PCR selection. */
	int (*quote)(struct manager *m, const uint8_t *qd, size_t qdlen,
		     uint8_t **attest, size_t *attest_len, uint8_t **sig,
		     size_t *sig_len, char *err, size_t errlen);
	/* The AK's public key (DER SPKI, malloc()ed). */
	int (*ak)(struct manager *m, uint8_t **spki, size_t *spki_len,
		  char *err, size_t errlen);
	/* The current values of the manager's PCR selection. */
	int (*pcr_read)(struct manager *m, uint8_t (*values)[32], char *err,
			size_t errlen);
	/* The root key sealed to the selection with these values. */
	int (*seal_root_key)(struct manager *m, const uint8_t (*values)[32],
			     uint8_t **blob, size_t *bloblen, char *err,
			     size_t errlen);
};

/* hal/tss-device, through m->hal. */
extern const struct mgr_tpm_ops mgr_tpm_hal;

#endif
