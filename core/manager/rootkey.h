/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The root key: unsealed by the physical TPM at start-up (or made and
 * sealed at the first), the NV counter's auth derived from it, and
 * re-sealed to predicted PCR values for a planned upgrade, the seal that
 * opened this boot kept as the previous seal.
 */
#ifndef VTPM_MANAGER_ROOTKEY_H
#define VTPM_MANAGER_ROOTKEY_H

#include <stdint.h>

struct manager;

#define ROOTKEY_FILE "rootkey.sealed"
#define ROOTKEY_PREV_FILE "rootkey.sealed.prev"

/* Start-up: opens the physical TPM, unseals (or creates) the root key
 * and derives the NV counter's auth.  Fatal on failure. */
void mgr_rootkey_unlock(struct manager *m);
void mgr_rootkey_derive_nv_auth(struct manager *m);

/* The PCR values a reseal sealed to (the selection's, ascending). */
struct mgr_reseal_result {
	unsigned int n;
	uint8_t values[24][32];
	uint32_t predicted;       /* PCRs whose value was given */
};

/* Re-seals the root key to the selection's current values, except the
 * PCRs in given, for which predicted[pcr] is used; rotates the seal
 * files; cb(arg, rc, result, err) on the loop thread. */
void mgr_rootkey_reseal(struct manager *m, uint32_t given,
			const uint8_t (*predicted)[32],
			void (*cb)(void *arg, int rc,
				   const struct mgr_reseal_result *r,
				   const char *err),
			void *arg);

#endif
