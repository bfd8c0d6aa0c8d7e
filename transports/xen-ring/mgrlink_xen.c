/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager link over the Xen vTPM ring (core/instance/mgrlink.h): this domain is
 * the frontend of a vtpm device whose backend is the manager's domain,
 * and manager-protocol frames are the ring's commands and responses.
 *
 * mgrlink is a blocking API, called from thread-pool jobs and before the
 * instance's loop runs; tpmfront is event-driven.  So the link owns a
 * thread running its own uv loop with the tpmfront on it.  A call copies
 * its frame under the mutex, wakes the loop with uv_async_send and waits
 * on the condition variable; the loop submits the frame once the ring is
 * connected (waiting at most the link's timeout for that), and the
 * response callback hands the answer back.  Calls carry an id, so an
 * answer to a call its caller gave up on is never taken for the next.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <xen/xen.h>

#include "lib/log.h"
#include "lib/hex.h"
#include "instance/mgrlink.h"
#include "xen-ring/mgrlink_xen.h"
#include "tpmif/tpmfront.h"

#define CANCEL_WAIT_MS 5000
#define EXTRA_PAGES 1 /* a 4096-byte frame needs 8 bytes past one page */

struct mgrlink_xen {
	struct xenif *xif;
	bool own_xif;
	struct mgrlink_xen_spec spec;
	uv_loop_t loop;
	uv_thread_t thr;
	uv_async_t wake;
	uv_timer_t conn_timer;
	struct tpmfront tf;
	bool tf_stopped;

	uv_mutex_t call_mu; /* one caller at a time */
	uv_mutex_t mu;	    /* everything below */
	uv_cond_t cv;
	uint64_t call_id;
	bool posted;  /* a call waits for its answer */
	bool fetched; /* the loop has taken it */
	bool done;
	bool stop;
	int status;
	unsigned int timeout_ms;
	uint8_t req[MGR_MAX_FRAME];
	size_t req_len;
	uint8_t rsp[MGR_MAX_FRAME];
	size_t rsp_len;
	char err[160];

	/* the loop thread's own */
	bool in_ring;
	uint64_t ring_id;
	uint8_t lreq[MGR_MAX_FRAME];
	size_t lreq_len;
	unsigned int ltimeout;
};

/* ---- the spec ---- */

bool mgrlink_spec_is_xen(const char *spec)
{
	return strcmp(spec, "xen-ring") == 0 ||
	       strncmp(spec, "xen-ring:", 9) == 0 ||
	       strncmp(spec, "xen-ring,", 9) == 0;
}

int mgrlink_parse_xen(const char *spec, struct mgrlink_xen_spec *out,
		      char *err, size_t errlen)
{
	bool seen_backend = false, seen_devid = false;
	const char *p;

	memset(out, 0, sizeof(*out));
	if (!mgrlink_spec_is_xen(spec)) {
		snprintf(err, errlen, "'%.40s' is not xen-ring[:backend=DOMID][,devid=N]",
			 spec);
		return -EINVAL;
	}
	p = spec + 8;
	if (*p == '\0')
		return 0;
	p++; /* ':' or ',' */
	for (;;) {
		const char *end = strchr(p, ','), *eq;
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char key[16], val[16];
		uint32_t v;
		int rc;

		eq = memchr(p, '=', n);
		if (!eq || (size_t)(eq - p) >= sizeof(key) ||
		    n - (size_t)(eq - p) - 1 >= sizeof(val)) {
			snprintf(err, errlen,
				 "the options are backend=DOMID and devid=N");
			return -EINVAL;
		}
		memcpy(key, p, (size_t)(eq - p));
		key[eq - p] = '\0';
		memcpy(val, eq + 1, n - (size_t)(eq - p) - 1);
		val[n - (size_t)(eq - p) - 1] = '\0';
		if (strcmp(key, "backend") == 0 && !seen_backend) {
			rc = dec_parse_u32(val, strlen(val),
					       DOMID_FIRST_RESERVED - 1, &v);
			seen_backend = true;
			out->have_backend = true;
			out->backend = v;
		} else if (strcmp(key, "devid") == 0 && !seen_devid) {
			rc = dec_parse_u32(val, strlen(val), INT32_MAX, &v);
			seen_devid = true;
			out->devid = v;
		} else {
			snprintf(err, errlen, "unknown or repeated option '%s'",
				 key);
			return -EINVAL;
		}
		if (rc) {
			snprintf(err, errlen, "bad %s '%s'", key, val);
			return -EINVAL;
		}
		if (!end)
			return 0;
		p = end + 1;
	}
}

/* ---- on the link's loop thread ---- */

/* Ends the posted call (if it is still the one the loop holds). */
static void lx_finish(struct mgrlink_xen *x, uint64_t id, int status,
		      const uint8_t *rsp, uint32_t len, const char *why)
{
	uv_mutex_lock(&x->mu);
	if (x->posted && x->call_id == id && !x->done) {
		if (status == 0 && len > sizeof(x->rsp)) {
			status = -EPROTO;
			why = "the manager's answer is larger than a frame";
		}
		x->status = status;
		if (status == 0) {
			memcpy(x->rsp, rsp, len);
			x->rsp_len = len;
		} else {
			snprintf(x->err, sizeof(x->err), "%s", why);
		}
		x->done = true;
		uv_cond_signal(&x->cv);
	}
	uv_mutex_unlock(&x->mu);
}

static void lx_on_rsp(struct tpmfront *tf, int status, const uint8_t *rsp,
		      uint32_t len, void *arg)
{
	struct mgrlink_xen *x = tf->data;
	const char *why;

	(void)arg;
	x->in_ring = false;
	switch (status) {
	case 0:
		why = "";
		break;
	case -ETIMEDOUT:
		why = "no answer from the manager in time";
		break;
	case -ECONNRESET:
		why = "the manager's ring went away";
		break;
	case -ECANCELED:
		why = "the manager abandoned the request";
		break;
	case -EPROTO:
		why = "the manager's answer does not fit the ring";
		break;
	case -ESHUTDOWN:
		why = "the link is closing";
		break;
	default:
		why = "ring error";
		break;
	}
	lx_finish(x, x->ring_id, status, rsp, len, why);
	/* A newer call may be waiting behind this one. */
	uv_async_send(&x->wake);
}

static void on_conn_timer(uv_timer_t *t);

/* Takes a newly posted call, and submits the one it holds once the ring
 * is connected; lx_on_state calls again when it connects. */
static void lx_try_submit(struct mgrlink_xen *x)
{
	bool fresh = false;
	int rc;

	if (x->in_ring || x->tf_stopped)
		return;
	uv_mutex_lock(&x->mu);
	if (!x->posted || x->done || x->stop) {
		uv_mutex_unlock(&x->mu);
		return;
	}
	if (!x->fetched) {
		x->fetched = true;
		fresh = true;
		memcpy(x->lreq, x->req, x->req_len);
		x->lreq_len = x->req_len;
		x->ltimeout = x->timeout_ms;
		x->ring_id = x->call_id;
	}
	uv_mutex_unlock(&x->mu);
	if (fresh) /* the wait for a connection is bounded too */
		uv_timer_start(&x->conn_timer, on_conn_timer, x->ltimeout, 0);
	if (!tpmfront_connected(&x->tf) || x->lreq_len == 0)
		return;
	uv_timer_stop(&x->conn_timer);
	rc = tpmfront_submit(&x->tf, x->lreq, (uint32_t)x->lreq_len, 0,
			     x->ltimeout, lx_on_rsp, NULL);
	explicit_bzero(x->lreq, sizeof(x->lreq));
	x->lreq_len = 0;
	if (rc) {
		lx_finish(x, x->ring_id, rc, NULL, 0,
			  rc == -EMSGSIZE ? "the frame does not fit the ring"
					  : "cannot submit to the ring");
		return;
	}
	x->in_ring = true;
}

static void on_conn_timer(uv_timer_t *t)
{
	struct mgrlink_xen *x = t->data;
	char why[160];

	if (x->in_ring)
		return;
	explicit_bzero(x->lreq, sizeof(x->lreq));
	x->lreq_len = 0;
	snprintf(why, sizeof(why),
		 "the manager's ring is not connected (%s)",
		 tpmfront_state_name(x->tf.state));
	uv_mutex_lock(&x->mu);
	if (x->posted && x->fetched && !x->done && x->call_id == x->ring_id) {
		x->status = -ETIMEDOUT;
		snprintf(x->err, sizeof(x->err), "%s", why);
		x->done = true;
		uv_cond_signal(&x->cv);
	}
	uv_mutex_unlock(&x->mu);
}

static void lx_tf_stopped(struct tpmfront *tf)
{
	((struct mgrlink_xen *)tf->data)->tf_stopped = true;
}

static void on_wake(uv_async_t *a)
{
	struct mgrlink_xen *x = a->data;
	bool stop;

	uv_mutex_lock(&x->mu);
	stop = x->stop;
	uv_mutex_unlock(&x->mu);
	if (stop) {
		uv_timer_stop(&x->conn_timer);
		/* Fails a request in flight (-ESHUTDOWN), says Closed. */
		tpmfront_stop(&x->tf, lx_tf_stopped);
		uv_close((uv_handle_t *)&x->wake, NULL);
		uv_close((uv_handle_t *)&x->conn_timer, NULL);
		return;
	}
	lx_try_submit(x);
}

static void lx_on_state(struct tpmfront *tf)
{
	struct mgrlink_xen *x = tf->data;

	if (tpmfront_connected(tf))
		lx_try_submit(x);
}

static void lx_thread(void *arg)
{
	struct mgrlink_xen *x = arg;

	uv_run(&x->loop, UV_RUN_DEFAULT);
}

/* ---- the blocking side ---- */

static void lx_free(struct mgrlink_xen *x)
{
	uv_loop_close(&x->loop);
	uv_mutex_destroy(&x->call_mu);
	uv_mutex_destroy(&x->mu);
	uv_cond_destroy(&x->cv);
	if (x->own_xif)
		xenif_close(x->xif);
	explicit_bzero(x, sizeof(*x));
	free(x);
}

int mgrlink_xen_open(struct mgrlink_xen **out, const char *spec,
		     struct xenif *xif, bool own_xif, char *err,
		     size_t errlen)
{
	struct tpmfront_config tc;
	struct mgrlink_xen *x;
	int rc;

	x = calloc(1, sizeof(*x));
	if (!x) {
		if (own_xif)
			xenif_close(xif);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	x->xif = xif;
	x->own_xif = own_xif;
	rc = mgrlink_parse_xen(spec, &x->spec, err, errlen);
	if (rc) {
		if (own_xif)
			xenif_close(xif);
		free(x);
		return rc;
	}
	uv_mutex_init(&x->call_mu);
	uv_mutex_init(&x->mu);
	uv_cond_init(&x->cv);
	rc = uv_loop_init(&x->loop);
	if (rc) {
		snprintf(err, errlen, "uv_loop_init: %s", uv_strerror(rc));
		uv_mutex_destroy(&x->call_mu);
		uv_mutex_destroy(&x->mu);
		uv_cond_destroy(&x->cv);
		if (own_xif)
			xenif_close(xif);
		free(x);
		return rc;
	}
	uv_async_init(&x->loop, &x->wake, on_wake);
	uv_timer_init(&x->loop, &x->conn_timer);
	x->wake.data = x->conn_timer.data = x;
	memset(&tc, 0, sizeof(tc));
	tc.devid = x->spec.devid;
	tc.have_backend = x->spec.have_backend;
	tc.backend_domid = x->spec.backend;
	tc.max_extra_pages = EXTRA_PAGES;
	tc.cancel_wait_ms = CANCEL_WAIT_MS;
	rc = tpmfront_init(&x->tf, &x->loop, xif, &tc, lx_on_state, x);
	if (!rc)
		rc = tpmfront_start(&x->tf);
	if (!rc)
		rc = uv_thread_create(&x->thr, lx_thread, x);
	if (rc) {
		snprintf(err, errlen, "manager ring (vtpm device %u): %s",
			 x->spec.devid, rc < 0 ? strerror(-rc) : "error");
		if (x->tf.loop)
			tpmfront_stop(&x->tf, NULL);
		uv_close((uv_handle_t *)&x->wake, NULL);
		uv_close((uv_handle_t *)&x->conn_timer, NULL);
		uv_run(&x->loop, UV_RUN_DEFAULT);
		lx_free(x);
		return rc < 0 ? rc : -EIO;
	}
	*out = x;
	return 0;
}

int mgrlink_xen_exchange(struct mgrlink_xen *x, const uint8_t *req,
			 size_t req_len, uint8_t *rsp, size_t *rsp_len,
			 int timeout_ms, char *err, size_t errlen)
{
	uint64_t budget_ns, t0;
	int rc;

	if (timeout_ms <= 0)
		timeout_ms = 60000;
	/* The loop enforces the timeouts: connection wait, then the
	 * request, then the cancel.  This bound only guards against a
	 * wedged link thread. */
	budget_ns = ((uint64_t)timeout_ms * 2 + CANCEL_WAIT_MS + 5000) *
		    1000000ull;
	uv_mutex_lock(&x->call_mu);
	uv_mutex_lock(&x->mu);
	x->call_id++;
	memcpy(x->req, req, req_len);
	x->req_len = req_len;
	x->timeout_ms = (unsigned int)timeout_ms;
	x->posted = true;
	x->fetched = false;
	x->done = false;
	x->err[0] = '\0';
	uv_mutex_unlock(&x->mu);
	uv_async_send(&x->wake);

	t0 = uv_hrtime();
	uv_mutex_lock(&x->mu);
	while (!x->done) {
		uint64_t spent = uv_hrtime() - t0;

		if (spent >= budget_ns)
			break;
		uv_cond_timedwait(&x->cv, &x->mu, budget_ns - spent);
	}
	if (!x->done) {
		rc = -ETIMEDOUT;
		snprintf(err, errlen, "the manager ring's thread does not "
				      "answer");
	} else if (x->status) {
		rc = x->status;
		snprintf(err, errlen, "%s", x->err);
	} else {
		memcpy(rsp, x->rsp, x->rsp_len);
		*rsp_len = x->rsp_len;
		rc = 0;
	}
	/* Whatever comes later for this call is dropped. */
	x->posted = false;
	x->call_id++;
	explicit_bzero(x->rsp, sizeof(x->rsp));
	explicit_bzero(x->req, sizeof(x->req));
	uv_mutex_unlock(&x->mu);
	uv_mutex_unlock(&x->call_mu);
	return rc;
}

void mgrlink_xen_close(struct mgrlink_xen *x)
{
	uv_mutex_lock(&x->mu);
	x->stop = true;
	uv_mutex_unlock(&x->mu);
	uv_async_send(&x->wake);
	uv_thread_join(&x->thr);
	lx_free(x);
}

static int frames_exchange(struct mgrlink_frames *f, const uint8_t *req,
			   size_t req_len, uint8_t *rsp, size_t *rsp_len,
			   int timeout_ms, char *err, size_t errlen)
{
	return mgrlink_xen_exchange((struct mgrlink_xen *)f, req, req_len, rsp,
				    rsp_len, timeout_ms, err, errlen);
}

static void frames_close(struct mgrlink_frames *f)
{
	mgrlink_xen_close((struct mgrlink_xen *)f);
}

static const struct mgrlink_frames_ops xen_frames_ops = {
	.exchange = frames_exchange,
	.close = frames_close,
};

static int attach(struct mgrlink *l, const char *spec, struct xenif *xif,
		  bool own_xif, char *err, size_t errlen)
{
	struct mgrlink_xen *x = NULL;
	int rc;

	mgrlink_init(l);
	rc = mgrlink_xen_open(&x, spec, xif, own_xif, err, errlen);
	if (rc)
		return rc;
	l->frames = (struct mgrlink_frames *)x;
	l->frames_ops = &xen_frames_ops;
	return 0;
}

int mgrlink_open_xen(struct mgrlink *l, const char *spec, struct xenif *xif,
		     char *err, size_t errlen)
{
	return attach(l, spec, xif, false, err, errlen);
}

int mgrlink_xen_prepare(const char *spec)
{
	return mgrlink_spec_is_xen(spec) ? xen_real_load() : 0;
}

int mgrlink_xen_dial(const char *spec, struct mgrlink *l, char *err,
		     size_t errlen)
{
	struct mgrlink_xen_spec sp;
	struct xenif *xif;
	int rc;

	if (!mgrlink_spec_is_xen(spec))
		return 1;
	/* Check the spec before touching Xen: a typo is fatal. */
	rc = mgrlink_parse_xen(spec, &sp, err, errlen);
	if (rc)
		return rc;
	rc = xen_real_open(&xif);
	if (rc) {
		snprintf(err, errlen,
			 "cannot open xenstore, grant sharing or event "
			 "channels: %s",
			 strerror(-rc));
		return rc;
	}
	return attach(l, spec, xif, true, err, errlen);
}
