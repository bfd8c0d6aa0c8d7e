/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager's requests to this instance (pcrserve.h): PCR_READ, for a
 * deep quote.  The link's reader thread hands a request over (one at a
 * time: the manager has at most one in flight per link); the loop queues
 * it as a job, so the PCRs are read between two guest commands, with the
 * engine to itself, on the worker thread; the answer goes back from there.
 *
 * A link that carries this instance's requests only (the Xen ring: the
 * manager's domain is the backend and can only answer) is polled
 * instead: every PCR_POLL_MS a job asks PCR_FETCH and, when the manager
 * wants PCRs, reads them and sends PCR_REPORT.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "instance/pcrserve.h"
#include "instance/vtpm.h"
#include "lib/log.h"
#include "proto/mgrproto.h"

#define PCR_POLL_MS 1000
#define PCR_POLL_CALL_MS 2000   /* a poll never holds the engine longer */

struct pcrserve {
	struct vtpm *v;
	uv_async_t async;
	uv_timer_t poll;
	pthread_mutex_t mu;
	uint8_t in[MGR_MAX_FRAME];   /* the request handed over */
	size_t in_len;
	bool busy;                   /* a job runs or is queued */
	unsigned int skip, backoff;  /* polls to skip after a failed one */
	struct mgr_req req;
	struct vtpm_job job;
	struct mgr_rsp rsp;
};

static struct log_ratelimit pcr_rl;

/* The sha256 PCRs in mask through the engine into acc: 0 or -errno. */
static int read_pcrs(struct vtpm *v, uint32_t mask,
		     struct mgr_pcr_read_rsp *acc)
{
	uint8_t cmd[MGR_PCR_READ_CMD_LEN];
	int rc = 0;

	memset(acc, 0, sizeof(*acc));
	if (!engine_is_running(vtpm_engine(v))) {
		log_warnx_rl(&pcr_rl, "PCR_READ from the manager: the TPM is "
			     "not running (not started by a client yet)");
		return -EAGAIN;
	}
	while (!rc && mgrproto_pcr_read_cmd(mask, acc, cmd) == 0) {
		const uint8_t *r;
		uint32_t rlen, trc;

		engine_process(vtpm_engine(v), cmd, sizeof(cmd), &r, &rlen);
		rc = mgrproto_pcr_read_parse(r, rlen, mask, acc, &trc);
		if (rc)
			log_warnx("PCR_READ from the manager: TPM2_PCR_Read: %s "
				  "(rc 0x%x)", mgrproto_strerror(rc), trc);
	}
	return rc ? -EIO : 0;
}

/* Worker thread, the engine to itself. */
static void pcr_read_call(struct vtpm *v, struct vtpm_job *job)
{
	struct pcrserve *s = job->data;
	uint8_t out[MGR_MAX_FRAME];
	size_t outlen;
	int rc;

	memset(&s->rsp, 0, sizeof(s->rsp));
	s->rsp.type = MGR_MSG_PCR_READ;
	rc = read_pcrs(v, s->req.u.pcr_read.pcr_mask, &s->rsp.u.pcr_read);
	s->rsp.status = rc ? MGR_FAIL : MGR_SUCCESS;
	if (mgrproto_encode_rsp(&s->rsp, out, &outlen) == 0) {
		rc = mgrlink_send(&v->link, out, outlen);
		if (rc)
			log_warnx("PCR_READ: answering the manager: %s",
				  strerror(-rc));
	}
	OPENSSL_cleanse(out, sizeof(out));
}

static void pcr_read_done(struct vtpm_job *job)
{
	struct pcrserve *s = job->data;

	bool next;

	pthread_mutex_lock(&s->mu);
	s->busy = false;
	next = s->in_len != 0;
	pthread_mutex_unlock(&s->mu);
	/* The manager may ask again as soon as it has the answer, before
	 * this job is done: that request waited in s->in. */
	if (next)
		uv_async_send(&s->async);
}

/* Loop thread: the request handed over becomes a job. */
static void on_async(uv_async_t *h)
{
	struct pcrserve *s = h->data;
	uint8_t st[MGR_HDR_LEN];
	int rc;

	pthread_mutex_lock(&s->mu);
	if (!s->in_len || s->busy) {
		pthread_mutex_unlock(&s->mu);
		return;
	}
	rc = mgrproto_decode_req(s->in, s->in_len, &s->req);
	if (rc) {
		mgrproto_encode_status(s->in, s->in_len, mgrproto_err_status(rc),
				       st);
		s->in_len = 0;
		pthread_mutex_unlock(&s->mu);
		log_warnx_rl(&pcr_rl, "manager request: %s",
			     mgrproto_strerror(rc));
		(void)mgrlink_send(&s->v->link, st, sizeof(st));
		return;
	}
	s->in_len = 0;
	if (s->req.type != MGR_MSG_PCR_READ) {
		pthread_mutex_unlock(&s->mu);
		memset(st, 0, sizeof(st));
		mgrproto_encode_status((const uint8_t[]){ 0x01, 0xc3 }, 2,
				       MGR_UNSUPPORTED, st);
		(void)mgrlink_send(&s->v->link, st, sizeof(st));
		return;
	}
	s->busy = true;
	pthread_mutex_unlock(&s->mu);
	s->job = (struct vtpm_job){
		.kind = VTPM_JOB_CALL,
		.call = pcr_read_call,
		.call_offloop = true,
		.done = pcr_read_done,
		.data = s,
	};
	vtpm_submit(s->v, &s->job);
}

/* ---- polled: PCR_FETCH, then PCR_REPORT ---- */

/* Worker thread, the engine to itself. */
static void fetch_call(struct vtpm *v, struct vtpm_job *job)
{
	struct pcrserve *s = job->data;
	char err[160];
	uint32_t mask;
	int rc;

	memset(&s->req, 0, sizeof(s->req));
	s->req.type = MGR_MSG_PCR_FETCH;
	rc = mgrlink_call_within(&v->link, &s->req, &s->rsp, PCR_POLL_CALL_MS,
				 err, sizeof(err));
	/* An unreachable manager costs the engine one short call per
	 * backoff (up to a minute), not one a second. */
	s->backoff = rc ? (s->backoff ? s->backoff * 2 : 1) : 0;
	if (s->backoff > 60)
		s->backoff = 60;
	s->skip = s->backoff;
	if (rc || s->rsp.status != MGR_SUCCESS ||
	    !s->rsp.u.pcr_fetch.pcr_mask)
		return;
	mask = s->rsp.u.pcr_fetch.pcr_mask;
	s->req.type = MGR_MSG_PCR_REPORT;
	if (read_pcrs(v, mask, &s->req.u.pcr_report))
		return;  /* the manager's deadline tells the requester */
	rc = mgrlink_call_within(&v->link, &s->req, &s->rsp, PCR_POLL_CALL_MS,
				 err, sizeof(err));
	if (rc || s->rsp.status != MGR_SUCCESS)
		log_warnx("PCR_REPORT to the manager: %s",
			  rc ? err : mgrproto_status_str(s->rsp.status));
	OPENSSL_cleanse(&s->req, sizeof(s->req));
}

static void on_poll(uv_timer_t *h)
{
	struct pcrserve *s = h->data;

	pthread_mutex_lock(&s->mu);
	if (s->busy || s->v->stopping || s->skip) {
		if (!s->busy && s->skip)
			s->skip--;
		pthread_mutex_unlock(&s->mu);
		return;
	}
	s->busy = true;
	pthread_mutex_unlock(&s->mu);
	s->job = (struct vtpm_job){
		.kind = VTPM_JOB_CALL,
		.call = fetch_call,
		.call_offloop = true,
		.done = pcr_read_done,
		.data = s,
	};
	vtpm_submit(s->v, &s->job);
}

/* Reader thread. */
static void on_request(void *ctx, const uint8_t *frame, size_t len)
{
	struct pcrserve *s = ctx;

	pthread_mutex_lock(&s->mu);
	if (s->in_len) {
		/* The manager has one in flight per link: a third while
		 * one runs and one waits is a broken manager. */
		pthread_mutex_unlock(&s->mu);
		log_warnx_rl(&pcr_rl, "manager request while one is served: "
			     "dropped");
		return;
	}
	memcpy(s->in, frame, len);
	s->in_len = len;
	pthread_mutex_unlock(&s->mu);
	uv_async_send(&s->async);
}

int pcrserve_start(struct vtpm *v, struct pcrserve **out)
{
	struct pcrserve *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->v = v;
	pthread_mutex_init(&s->mu, NULL);
	uv_async_init(v->loop, &s->async, on_async);
	s->async.data = s;
	/* It must not keep a stopping instance's loop alive. */
	uv_unref((uv_handle_t *)&s->async);
	uv_timer_init(v->loop, &s->poll);
	s->poll.data = s;
	rc = mgrlink_serve(&v->link, on_request, s);
	if (rc == -EOPNOTSUPP && mgrlink_is_open(&v->link)) {
		uv_timer_start(&s->poll, on_poll, PCR_POLL_MS, PCR_POLL_MS);
		uv_unref((uv_handle_t *)&s->poll);
		rc = 0;
	}
	if (rc)
		return rc;  /* fatal for the caller: nothing to release */
	*out = s;
	return 0;
}

void pcrserve_stop(struct vtpm *v, struct pcrserve *s)
{
	if (!s)
		return;
	mgrlink_serve_stop(&v->link);
	/* A normal stop closed every handle already (close_walk_cb). */
	if (!uv_is_closing((uv_handle_t *)&s->poll))
		uv_close((uv_handle_t *)&s->poll, NULL);
	if (!uv_is_closing((uv_handle_t *)&s->async))
		uv_close((uv_handle_t *)&s->async, NULL);
	uv_run(v->loop, UV_RUN_NOWAIT);   /* the close callbacks */
	pthread_mutex_destroy(&s->mu);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}
