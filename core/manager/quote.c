/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Quotes (quote.h): an instance's, and the deep quote that binds a vTPM's
 * PCRs (from the PCR source, m->pcrs) into a quote by the physical TPM.
 */
#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "manager/manager.h"
#include "manager/quote.h"
#include "manager/tpm.h"

/* ---- an instance's quote ---- */

struct quote_task {
	struct mgr_task task;
	uint8_t qd[32];
	struct mgr_quote q;
	void (*cb)(void *arg, int rc, const struct mgr_quote *q,
		   const char *err);
	void *arg;
};

static void quote_work(struct mgr_task *t)
{
	struct quote_task *q = (struct quote_task *)t;

	t->rc = t->m->tpm->quote(t->m, q->qd, sizeof(q->qd), &q->q.attest,
				 &q->q.attest_len, &q->q.sig, &q->q.sig_len,
				 t->err, sizeof(t->err));
}

static void quote_done(struct mgr_task *t)
{
	struct quote_task *q = (struct quote_task *)t;

	q->cb(q->arg, t->rc, &q->q, t->err);
	free(q->q.attest);
	free(q->q.sig);
	free(q);
}

void mgr_quote(struct manager *m, const uint8_t qd[32],
	       void (*cb)(void *arg, int rc, const struct mgr_quote *q,
			  const char *err),
	       void *arg)
{
	struct quote_task *q = calloc(1, sizeof(*q));

	if (!q)
		fatalx("out of memory");
	memcpy(q->qd, qd, 32);
	q->cb = cb;
	q->arg = arg;
	q->task.work = quote_work;
	q->task.done = quote_done;
	mgr_task_submit(m, &q->task);
}

/* ---- the deep quote ---- */

struct deep_task {
	struct mgr_task task;
	struct mgr_deep_quote q;
	mgr_deep_quote_cb cb;
	void *arg;
};

static void deep_work(struct mgr_task *t)
{
	struct deep_task *d = (struct deep_task *)t;
	struct mgr_deep_quote *q = &d->q;
	struct manager *m = t->m;

	t->rc = m->tpm->quote(m, q->qd, sizeof(q->qd), &q->attest,
			      &q->attest_len, &q->sig, &q->sig_len, t->err,
			      sizeof(t->err));
	if (t->rc)
		return;
	t->rc = m->tpm->ak(m, &q->spki, &q->spki_len, t->err, sizeof(t->err));
}

static void deep_free(struct deep_task *d)
{
	free(d->q.attest);
	free(d->q.sig);
	free(d->q.spki);
	free(d);
}

static void deep_done(struct mgr_task *t)
{
	struct deep_task *d = (struct deep_task *)t;

	d->cb(d->arg, t->rc, &d->q, t->err);
	deep_free(d);
}

static void pcrs_read(void *arg, int rc, const struct mgr_pcr_values *v,
		      const char *err)
{
	struct deep_task *d = arg;
	struct mgr_deep_quote *q = &d->q;

	if (rc) {
		d->cb(d->arg, rc, q, err);
		deep_free(d);
		return;
	}
	q->pcrs = *v;
	SHA256(&q->pcrs.v[0][0], 32 * (size_t)q->pcrs.n, q->digest);
	mgrproto_deepquote_qd(q->uuid, q->pcrs.mask, q->digest, q->nonce,
			      q->nonce_len, q->qd);
	d->task.work = deep_work;
	d->task.done = deep_done;
	mgr_task_submit(d->task.m, &d->task);
}

int mgr_deep_quote(struct manager *m, struct vtpm_entry *e,
		   const uint8_t *nonce, size_t nonce_len, uint32_t mask,
		   mgr_deep_quote_cb cb, void *arg, char *err, size_t errlen)
{
	struct deep_task *d;
	int rc;

	if (!nonce_len || nonce_len > MGR_NONCE_MAX || !mask ||
	    (mask & ~0x00ffffffu)) {
		snprintf(err, errlen, "bad nonce or PCR mask");
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	d->task.m = m;
	memcpy(d->q.uuid, e->rec.uuid, 16);
	memcpy(d->q.nonce, nonce, nonce_len);
	d->q.nonce_len = nonce_len;
	d->cb = cb;
	d->arg = arg;
	rc = m->pcrs->read(m, e, mask, pcrs_read, d, err, errlen);
	if (rc)
		free(d);
	return rc;
}
