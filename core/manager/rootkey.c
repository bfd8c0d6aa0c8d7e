/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The root key (rootkey.h): sealed to the physical TPM's PCRs in
 * rootkey.sealed; after a reseal for a planned upgrade, the seal that
 * opened this boot configuration is kept as rootkey.sealed.prev.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/aead.h"
#include "lib/log.h"
#include "lib/store.h"
#include "manager/manager.h"
#include "manager/rootkey.h"
#include "manager/tpm.h"

static uint8_t *locked_key_page(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		fatal("mmap");
	if (mlock(p, (size_t)pg) < 0)
		log_warn("mlock of the root key page");
	madvise(p, (size_t)pg, MADV_DONTDUMP);
	return p;
}

/*
 * The NV counter's authorization: derived from the root key, so only the
 * manager that can unseal the store can move the counter (with an empty
 * one, anyone with TPM access could make every start read as rollback).
 */
void mgr_rootkey_derive_nv_auth(struct manager *m)
{
	if (aead_hkdf_sha256(m->root_key, KEYSTORE_ROOT_KEY_LEN,
			     "vtpm-service nv counter auth v1", m->nv_auth,
			     NV_AUTH_LEN))
		fatalx("cannot derive the NV counter's authorization");
}

void mgr_rootkey_unlock(struct manager *m)
{
	const struct config *cfg = m->cfg;
	uint8_t *blob = NULL;
	size_t bloblen = 0, keylen = TSS_HAL_SECRET_MAX;
	uint8_t secret[TSS_HAL_SECRET_MAX];
	char err[512];
	int rc;

	rc = tss_hal_open_by_name(cfg->hal, cfg->tcti, &m->hal, err,
				  sizeof(err));
	if (rc)
		fatalx("physical TPM (%s %s): %s", cfg->hal, cfg->tcti, err);
	rc = tss_hal_primary(m->hal, err, sizeof(err));
	if (rc)
		fatalx("physical TPM: storage primary key: %s", err);
	m->root_key = locked_key_page();
	m->nv_auth = m->root_key + KEYSTORE_ROOT_KEY_LEN;

	rc = store_read(m->dirfd, ROOTKEY_FILE, TSS_HAL_BLOB_MAX, &blob, &bloblen);
	if (rc == 0) {
		rc = tss_hal_unseal(m->hal, blob, bloblen, secret, &keylen, err,
				    sizeof(err));
		free(blob);
		m->main_seal_verified = rc == 0;
		if (rc == -EACCES && store_read(m->dirfd, ROOTKEY_PREV_FILE,
						TSS_HAL_BLOB_MAX, &blob,
						&bloblen) == 0) {
			/* An upgrade re-sealed the key, but the host booted
			 * the configuration of before: the old seal opens. */
			char err2[512];
			size_t len2 = TSS_HAL_SECRET_MAX;

			if (tss_hal_unseal(m->hal, blob, bloblen, secret, &len2,
					   err2, sizeof(err2)) == 0) {
				m->main_seal_verified = false;
				log_warnx("root key unsealed with the previous "
					  "seal %s.prev: the host runs the "
					  "configuration from before the last "
					  "reseal", ROOTKEY_FILE);
				keylen = len2;
				rc = 0;
			}
			free(blob);
		}
		if (rc)
			fatalx("refusing to start: cannot unseal the root key "
			       "%s/%s: %s; nothing was changed on disk",
			       cfg->state_dir, ROOTKEY_FILE, err);
		if (keylen != KEYSTORE_ROOT_KEY_LEN)
			fatalx("%s: unsealed %zu bytes, not a root key",
			       ROOTKEY_FILE, keylen);
		memcpy(m->root_key, secret, KEYSTORE_ROOT_KEY_LEN);
		OPENSSL_cleanse(secret, sizeof(secret));
		log_info("root key unsealed by the physical TPM (PCRs %s)",
			 cfg->pcrs);
		mgr_rootkey_derive_nv_auth(m);
		return;
	}
	if (rc != -ENOENT)
		fatalx("%s/%s: %s", cfg->state_dir, ROOTKEY_FILE, strerror(-rc));
	if (faccessat(m->dirfd, KEYSTORE_FILE, F_OK, 0) == 0)
		fatalx("refusing to start: %s/%s exists but %s does not: the "
		       "key store cannot be opened without its sealed root key",
		       cfg->state_dir, KEYSTORE_FILE, ROOTKEY_FILE);
	/* First start: a new root key, sealed to the PCRs as they are. */
	if (RAND_priv_bytes(m->root_key, KEYSTORE_ROOT_KEY_LEN) != 1)
		fatalx("no randomness for the root key");
	rc = tss_hal_seal(m->hal, m->root_key, KEYSTORE_ROOT_KEY_LEN, &m->sel,
			  NULL, &blob, &bloblen, err, sizeof(err));
	if (rc)
		fatalx("cannot seal a new root key: %s", err);
	/* The sealed key first, then the counter (mgr_store_load): a
	 * counter whose auth derives from a root key that never reached the
	 * disk would lock every later start out. */
	rc = store_write_atomic(m->dirfd, ROOTKEY_FILE, blob, bloblen);
	free(blob);
	if (rc)
		fatalx("%s/%s: %s", cfg->state_dir, ROOTKEY_FILE, strerror(-rc));
	m->new_root_key = true;
	m->main_seal_verified = true;
	log_info("new root key sealed to PCRs %s in %s/%s", cfg->pcrs,
		 cfg->state_dir, ROOTKEY_FILE);
	mgr_rootkey_derive_nv_auth(m);
}

/* ---- reseal: the planned-upgrade path ---- */

struct reseal_task {
	struct mgr_task task;
	uint32_t given;              /* PCRs with a predicted value */
	uint8_t predicted[24][32];
	struct mgr_reseal_result res;
	void (*cb)(void *arg, int rc, const struct mgr_reseal_result *r,
		   const char *err);
	void *arg;
};

static void reseal_work(struct mgr_task *t)
{
	struct reseal_task *r = (struct reseal_task *)t;
	struct manager *m = t->m;
	uint8_t *blob = NULL, *old = NULL;
	size_t bloblen, oldlen;
	unsigned int k = 0;
	int rc;

	rc = m->tpm->pcr_read(m, r->res.values, t->err, sizeof(t->err));
	if (rc) {
		t->rc = rc;
		return;
	}
	for (unsigned int i = 0; i < 24; i++) {
		if (!(m->sel.mask & (1u << i)))
			continue;
		if (r->given & (1u << i))
			memcpy(r->res.values[k], r->predicted[i], 32);
		k++;
	}
	r->res.n = k;
	rc = m->tpm->seal_root_key(m, (const uint8_t(*)[32])r->res.values,
				   &blob, &bloblen, t->err, sizeof(t->err));
	if (rc) {
		t->rc = rc;
		return;
	}
	/*
	 * The seal that opened this boot configuration stays as .prev, so
	 * the host can always come back to it.  A main seal that is itself
	 * only a prediction (an earlier reseal) is simply replaced.
	 */
	rc = 0;
	if (m->main_seal_verified) {
		rc = store_read(m->dirfd, ROOTKEY_FILE, TSS_HAL_BLOB_MAX, &old,
				&oldlen);
		if (rc == 0)
			rc = store_write_atomic(m->dirfd, ROOTKEY_PREV_FILE, old,
						oldlen);
		free(old);
	}
	if (rc == 0)
		rc = store_write_atomic(m->dirfd, ROOTKEY_FILE, blob, bloblen);
	free(blob);
	if (rc) {
		t->rc = rc;
		snprintf(t->err, sizeof(t->err), "writing the sealed key: %s",
			 strerror(-rc));
		return;
	}
	/* Decided on the loop thread in reseal_done. */
}

static void reseal_done(struct mgr_task *t)
{
	struct reseal_task *r = (struct reseal_task *)t;

	if (!t->rc) {
		/* rootkey.sealed is now a prediction until a start opens it. */
		t->m->main_seal_verified = false;
		log_info("root key re-sealed (%u predicted PCR values); the "
			 "previous seal is kept as %s",
			 (unsigned int)__builtin_popcount(r->given),
			 ROOTKEY_PREV_FILE);
	}
	if (!t->expired)
		r->cb(r->arg, t->rc, &r->res, t->err);
	OPENSSL_cleanse(r, sizeof(*r));
	free(r);
}

/* The TPM overran its deadline: the caller hears it now; reseal_done
 * still records the outcome when the call returns. */
static void reseal_expire(struct mgr_task *t, int rc, const char *err)
{
	struct reseal_task *r = (struct reseal_task *)t;

	r->cb(r->arg, rc, &r->res, err);
}

void mgr_rootkey_reseal(struct manager *m, uint32_t given,
			const uint8_t (*predicted)[32],
			void (*cb)(void *arg, int rc,
				   const struct mgr_reseal_result *r,
				   const char *err),
			void *arg)
{
	struct reseal_task *r = calloc(1, sizeof(*r));

	if (!r)
		fatalx("out of memory");
	r->given = given;
	r->res.predicted = given;
	for (unsigned int i = 0; i < 24; i++)
		if (given & (1u << i))
			memcpy(r->predicted[i], predicted[i], 32);
	r->cb = cb;
	r->arg = arg;
	r->task.work = reseal_work;
	r->task.done = reseal_done;
	r->task.expire = reseal_expire;
	r->task.call = "TPM2_PCR_Read/TPM2_Create (reseal)";
	mgr_tpm_submit(m, &r->task);
}
