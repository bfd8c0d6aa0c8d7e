/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Quotes (quote.h): an instance's, and the deep quote that binds a vTPM's
 * PCRs (from the PCR source, m->pcrs) into a quote by the physical TPM.
 * The TPM's part runs on the TPM queue (task.h), under its deadline.
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

/* The deadline passed: the waiter hears now, the task is freed later. */
static void quote_expire(struct mgr_task *t, int rc, const char *err)
{
	struct quote_task *q = (struct quote_task *)t;
	struct mgr_quote none = { 0 };

	q->cb(q->arg, rc, &none, err);
}

static void quote_done(struct mgr_task *t)
{
	struct quote_task *q = (struct quote_task *)t;

	if (!t->expired)
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
	q->task.expire = quote_expire;
	q->task.call = "TPM2_Quote";
	mgr_tpm_submit(m, &q->task);
}

/* ---- the deep quote ---- */

/*
 * One deep quote: the PCR read, then the TPM task, one after the other
 * (the chain), and a timer for the whole.  Whichever ends first answers;
 * the object lives until the chain has ended too (a PCR answer or a TPM
 * call that comes after the deadline lands here, not in freed memory).
 */
struct deep_task {
	struct mgr_task task;
	struct mgr_deep_quote q;
	mgr_deep_quote_cb cb;
	void *arg;
	uv_timer_t timer;
	bool answered;
	const char *waiting;  /* what the deadline caught it waiting for */
	char uuid_str[40];
	struct vtpm_entry *e;
	bool reading;         /* the PCR read is out */
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

static void deep_freed(uv_handle_t *h)
{
	struct deep_task *d = h->data;

	free(d->q.attest);
	free(d->q.sig);
	free(d->q.spki);
	free(d);
}

static void deep_answer(struct deep_task *d, int rc, const char *err)
{
	if (d->answered)
		return;
	d->answered = true;
	uv_timer_stop(&d->timer);
	d->cb(d->arg, rc, &d->q, err);
}

/* The chain ended: answer if nobody has, then release. */
static void deep_end(struct deep_task *d, int rc, const char *err)
{
	deep_answer(d, rc, err);
	uv_close((uv_handle_t *)&d->timer, deep_freed);
}

static void deep_deadline(uv_timer_t *h)
{
	struct deep_task *d = h->data;
	char err[200];

	snprintf(err, sizeof(err),
		 "vTPM %s: not done within %ld s (the deadline of a quote): "
		 "waiting for %s", d->uuid_str, d->task.m->cfg->tpm_timeout_s,
		 d->waiting);
	log_warnx("deep quote of %s", err);
	deep_answer(d, -ETIMEDOUT, err);
	/* A vTPM that never answers must not keep this alive, nor its
	 * link busy: give the read up, and the chain ends here. */
	if (d->reading && d->task.m->pcrs->cancel) {
		d->task.m->pcrs->cancel(d->task.m, d->e, d);
		d->reading = false;
		deep_end(d, -ETIMEDOUT, err);
	}
}

static void deep_expire(struct mgr_task *t, int rc, const char *err)
{
	struct deep_task *d = (struct deep_task *)t;

	deep_answer(d, rc, err);
}

static void deep_done(struct mgr_task *t)
{
	struct deep_task *d = (struct deep_task *)t;

	deep_end(d, t->rc, t->err);
}

static void pcrs_read(void *arg, int rc, const struct mgr_pcr_values *v,
		      const char *err)
{
	struct deep_task *d = arg;
	struct mgr_deep_quote *q = &d->q;

	d->reading = false;
	if (rc || d->answered) {
		deep_end(d, rc, err);
		return;
	}
	q->pcrs = *v;
	SHA256(&q->pcrs.v[0][0], 32 * (size_t)q->pcrs.n, q->digest);
	mgrproto_deepquote_qd(q->uuid, q->pcrs.mask, q->digest, q->nonce,
			      q->nonce_len, q->qd);
	d->waiting = "the physical TPM (TPM2_Quote)";
	d->task.work = deep_work;
	d->task.done = deep_done;
	d->task.expire = deep_expire;
	d->task.call = "TPM2_Quote";
	mgr_tpm_submit(d->task.m, &d->task);
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
	snprintf(d->uuid_str, sizeof(d->uuid_str), "%s", e->rec.uuid_str);
	d->waiting = "its PCR values (PCR_READ on its manager link)";
	d->e = e;
	d->reading = true;
	uv_timer_init(m->loop, &d->timer);
	d->timer.data = d;
	uv_update_time(m->loop);
	uv_timer_start(&d->timer, deep_deadline,
		       (uint64_t)m->cfg->tpm_timeout_s * 1000, 0);
	rc = m->pcrs->read(m, e, mask, pcrs_read, d, err, errlen);
	if (rc) {
		d->reading = false;
		d->answered = true;   /* the caller hears rc */
		uv_timer_stop(&d->timer);
		uv_close((uv_handle_t *)&d->timer, deep_freed);
	}
	return rc;
}
