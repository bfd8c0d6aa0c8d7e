/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Quotes by the physical TPM's attestation key: the one an instance asks
 * for on its link (its own qualifying data), and the deep quote control
 * asks for, which binds a vTPM's PCRs into a quote of the host's.
 *
 * The vTPM's PCR values come from a PCR source (struct mgr_pcr_source,
 * m->pcrs): in production the instance itself, asked with PCR_READ over
 * the manager link the manager made for it (link.c), never a socket path
 * anybody could have bound.  A deep quote has one deadline for the whole
 * (the PCR read and the TPM's quote: --tpm-timeout), and its TPM calls go
 * to the TPM queue (m->tpmq), never the store queue that commits wait on:
 * an instance that does not answer stalls nobody but its own quote.
 */
#ifndef VTPM_MANAGER_QUOTE_H
#define VTPM_MANAGER_QUOTE_H

#include <stddef.h>
#include <stdint.h>

#include "manager/link.h"
#include "proto/mgrproto.h"

struct manager;
struct vtpm_entry;

#define MGR_VTPM_PCRS 24

/* sha256 PCR values of a vTPM, ascending index. */
struct mgr_pcr_values {
	uint32_t mask;                    /* the PCRs read */
	unsigned int n;
	uint8_t v[MGR_VTPM_PCRS][32];
};

/* mgr_pcr_done: manager/link.h */

struct mgr_pcr_source {
	/* Reads e's PCRs in mask (non-empty, within 0..23) and calls done on
	 * the loop thread: then returns 0.  Or returns -EINVAL at once, err
	 * set, when it cannot read this vTPM's PCRs at all (done is not
	 * called). */
	int (*read)(struct manager *m, struct vtpm_entry *e, uint32_t mask,
		    mgr_pcr_done done, void *arg, char *err, size_t errlen);
	/* Optional: the read for arg is given up (its deadline passed):
	 * done will not be called, and e may be read again. */
	void (*cancel)(struct manager *m, struct vtpm_entry *e, void *arg);
};

/* PCR_READ over the vTPM's manager link (link.c): -ENOTCONN when the
 * vTPM has no link (not running), -EOPNOTSUPP when its link cannot carry
 * the manager's requests, -EBUSY while an earlier read is unanswered. */
extern const struct mgr_pcr_source mgr_pcr_source_link;

/* ---- the instance's quote (MGR_MSG_GET_QUOTE) ---- */

struct mgr_quote {
	uint8_t *attest, *sig;            /* freed after the callback */
	size_t attest_len, sig_len;
};

/* Quotes qd (32 bytes) with the AK; cb(arg, rc, quote, err), loop thread. */
void mgr_quote(struct manager *m, const uint8_t qd[32],
	       void (*cb)(void *arg, int rc, const struct mgr_quote *q,
			  const char *err),
	       void *arg);

/* ---- the deep quote ---- */

struct mgr_deep_quote {
	uint8_t uuid[16];
	uint8_t nonce[MGR_NONCE_MAX];
	size_t nonce_len;
	struct mgr_pcr_values pcrs;       /* the vTPM's */
	uint8_t digest[32];               /* sha256 of the values */
	uint8_t qd[32];                   /* mgrproto_deepquote_qd */
	uint8_t *attest, *sig, *spki;     /* freed after the callback */
	size_t attest_len, sig_len, spki_len;
};

typedef void (*mgr_deep_quote_cb)(void *arg, int rc,
				  const struct mgr_deep_quote *q,
				  const char *err);

/* e's PCRs in mask, bound by the physical TPM into a quote over the
 * host's PCRs.  0 and cb later (loop thread; -ETIMEDOUT when the whole
 * did not finish within --tpm-timeout), or a negative errno now with err
 * set (-EINVAL: bad arguments; the PCR source's errors). */
int mgr_deep_quote(struct manager *m, struct vtpm_entry *e,
		   const uint8_t *nonce, size_t nonce_len, uint32_t mask,
		   mgr_deep_quote_cb cb, void *arg, char *err, size_t errlen);

#endif
