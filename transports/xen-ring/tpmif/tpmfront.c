/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tpmfront: the Xen PV vTPM frontend for one device, in user space.
 * tf_reconcile() is the one function that moves the xenbus state machine;
 * like tpmback's it looks at what xenstore holds now, never at what a
 * watch event said.  The backend's page state and length are loaded once
 * into locals and checked before anything is copied.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xen/io/tpmif.h>
#include <xen/io/xenbus.h>
#include <xen/xen.h>

#include "tpmif/ring.h"
#include "tpmif/tpmfront.h"

#define MAX_DOMID ((uint32_t)DOMID_FIRST_RESERVED - 1)

static void tf_reconcile(struct tpmfront *tf);
static void tf_check_page(struct tpmfront *tf);
static void tf_finish_stop(struct tpmfront *tf);

const char *tpmfront_state_name(enum tpmfront_state s)
{
	switch (s) {
	case TPMFRONT_NO_DEVICE:
		return "no device";
	case TPMFRONT_REFUSED:
		return "refused";
	case TPMFRONT_WAIT_BACKEND:
		return "waiting for the backend";
	case TPMFRONT_INITIALISED:
		return "Initialised";
	case TPMFRONT_CONNECTED:
		return "Connected";
	case TPMFRONT_STOPPED:
		return "stopped";
	}
	return "?";
}

/* Is our device directory still there?  Writing into a removed one would
 * make it again, owned by us. */
static bool tf_device_exists(struct tpmfront *tf)
{
	return xenbus_exists(&tf->xb, tf->xb.self, "backend");
}

static bool tf_backend_v2(struct tpmfront *tf)
{
	return xenbus_read_is(&tf->xb, tf->xb.peer, "feature-protocol-v2", "1");
}

/* ---- the shared page: each backend-written field loaded once ---- */

static struct tpmif_shared_page *tf_shr(struct tpmfront *tf)
{
	return (struct tpmif_shared_page *)tf->area;
}

static void tf_notify(struct tpmfront *tf)
{
	int rc = tf->xif->ops->evtchn_notify(tf->xif, tf->port);

	if (rc)
		log_warnx_rl(&tf->rl, "vtpm front %u: notify: %s",
			     tf->cfg.devid, strerror(-rc));
}

/* We write SUBMIT or CANCEL (then notify), and IDLE once we have taken a
 * response, so that a stale FINISH is never read twice. */
static void tf_set_page_state(struct tpmfront *tf, uint8_t st, bool notify)
{
	tpmif_state_store(tf_shr(tf), st);
	if (notify)
		tf_notify(tf);
}

/* ---- requests ---- */

static void tf_complete(struct tpmfront *tf, int status, const uint8_t *rsp,
			uint32_t len)
{
	tpmfront_cb cb = tf->cb;
	void *arg = tf->cb_arg;

	if (tf->req == TF_REQ_NONE)
		return;
	tf->req = TF_REQ_NONE;
	tf->cb = NULL;
	tf->cb_arg = NULL;
	tf->timed_out = false;
	uv_timer_stop(&tf->req_timer);
	if (status == 0)
		tf->stats.responses++;
	else
		tf->stats.failed++;
	if (cb)
		cb(tf, status, rsp, len, arg);
}

uint32_t tpmfront_capacity(const struct tpmfront *tf)
{
	return tpmfront_connected(tf) ? tf->data_cap : 0;
}

static void on_req_timer(uv_timer_t *t);

int tpmfront_submit(struct tpmfront *tf, const uint8_t *cmd, uint32_t len,
		    unsigned int locality, unsigned int timeout_ms,
		    tpmfront_cb cb, void *arg)
{
	struct tpmif_shared_page *shr;

	if (!tpmfront_connected(tf))
		return -ENOTCONN;
	if (tf->req != TF_REQ_NONE)
		return -EBUSY;
	if (len == 0 || len > tf->data_cap)
		return -EMSGSIZE;
	if (locality > TPMIF_MAX_LOCALITY)
		return -EINVAL;
	shr = tf_shr(tf);
	/* The header is ours to write: set all of it, every time. */
	shr->nr_extra_pages = (uint8_t)tf->n_extra;
	memcpy(tf->area + TPMIF_HDR_LEN, &tf->refs[1], 4 * tf->n_extra);
	shr->locality = (uint8_t)locality;
	shr->pad = 0;
	memcpy(tf->area + tf->data_off, cmd, len);
	__atomic_store_n(&shr->length, len, __ATOMIC_RELAXED);
	tf->req = TF_REQ_SUBMITTED;
	tf->timed_out = false;
	tf->cb = cb;
	tf->cb_arg = arg;
	tf->stats.submits++;
	if (timeout_ms)
		uv_timer_start(&tf->req_timer, on_req_timer, timeout_ms, 0);
	tf_set_page_state(tf, TPMIF_STATE_SUBMIT, true);
	return 0;
}

static void tf_send_cancel(struct tpmfront *tf)
{
	tf->req = TF_REQ_CANCELLING;
	tf->stats.cancels++;
	uv_timer_start(&tf->req_timer, on_req_timer, tf->cfg.cancel_wait_ms, 0);
	tf_set_page_state(tf, TPMIF_STATE_CANCEL, true);
}

int tpmfront_cancel(struct tpmfront *tf)
{
	if (tf->req != TF_REQ_SUBMITTED || !tpmfront_connected(tf))
		return -ENOENT;
	tf_send_cancel(tf);
	return 0;
}

/* Looks at the page once: what the backend says now. */
static void tf_check_page(struct tpmfront *tf)
{
	struct tpmif_shared_page *shr;
	uint32_t len;
	uint8_t st;

	if (tf->state != TPMFRONT_CONNECTED || tf->stopping)
		return;
	shr = tf_shr(tf);
	st = tpmif_state_load(shr);
	if (st > TPMIF_STATE_CANCEL) {
		tf->stats.rejected++;
		log_warnx_rl(&tf->rl,
			     "vtpm front %u: the backend wrote page state "
			     "%u; ignored",
			     tf->cfg.devid, st);
		return;
	}
	if (tf->req == TF_REQ_NONE) {
		if (st == TPMIF_STATE_FINISH) {
			tf->stats.rejected++;
			log_warnx_rl(&tf->rl,
				     "vtpm front %u: a response with no "
				     "request; ignored",
				     tf->cfg.devid);
		}
		return;
	}
	switch (st) {
	case TPMIF_STATE_FINISH:
		len = __atomic_load_n(&shr->length, __ATOMIC_RELAXED);
		if (len == 0 || len > tf->data_cap) {
			tf->stats.rejected++;
			log_warnx_rl(&tf->rl,
				     "vtpm front %u: response length %u, the "
				     "shared area holds %u; request failed",
				     tf->cfg.devid, len, tf->data_cap);
			tf_set_page_state(tf, TPMIF_STATE_IDLE, false);
			tf_complete(tf, -EPROTO, NULL, 0);
			return;
		}
		memcpy(tf->rsp, tf->area + tf->data_off, len);
		/* Responses may carry secrets (a state key): none stays on
		 * the page or in our buffer once the owner has it. */
		explicit_bzero(tf->area + tf->data_off, len);
		tf_set_page_state(tf, TPMIF_STATE_IDLE, false);
		tf_complete(tf, 0, tf->rsp, len);
		explicit_bzero(tf->rsp, len);
		return;
	case TPMIF_STATE_IDLE:
		/* Abandoned by the backend, or our cancel completed. */
		tf_complete(tf, tf->timed_out ? -ETIMEDOUT : -ECANCELED, NULL,
			    0);
		return;
	case TPMIF_STATE_SUBMIT:
		return; /* ours: the backend is working */
	case TPMIF_STATE_CANCEL:
		if (tf->req != TF_REQ_CANCELLING) {
			tf->stats.rejected++;
			log_warnx_rl(&tf->rl,
				     "vtpm front %u: the backend wrote "
				     "CANCEL; ignored",
				     tf->cfg.devid);
		}
		return;
	}
}

/* ---- the connection ---- */

static void tf_release(struct tpmfront *tf)
{
	struct xenif *x = tf->xif;

	if (tf->have_port) {
		x->ops->evtchn_unbind(x, tf->port);
		tf->have_port = false;
	}
	if (tf->area) {
		x->ops->gnt_unshare(x, tf->area, tf->area_pages);
		tf->area = NULL;
		tf->area_pages = 0;
	}
	tf->n_extra = tf->data_off = tf->data_cap = 0;
}

static void tf_state_changed(struct tpmfront *tf)
{
	if (tf->on_state && !tf->stopping)
		tf->on_state(tf);
}

/*
 * The connection is over: fail the request in flight, give back the page
 * and the port, and say Closed when asked (and the device is still
 * there), so that the backend lets go of our old ring.
 */
static void tf_drop(struct tpmfront *tf, const char *why, int status,
		    bool say_closed)
{
	bool was = tf->state == TPMFRONT_INITIALISED ||
		   tf->state == TPMFRONT_CONNECTED;

	if (!was)
		return;
	tf->stats.resets++;
	tf_release(tf);
	tf->state = TPMFRONT_WAIT_BACKEND;
	if (say_closed && tf_device_exists(tf))
		xenbus_switch_state(&tf->xb, XenbusStateClosed);
	xenbus_log_disconnect(&tf->xb, "disconnected from dom%u (%s)", tf->bdom,
			      why);
	tf_complete(tf, status, NULL, 0);
	tf_state_changed(tf);
}

/* The backend is at InitWait: share, allocate, publish, Initialised. */
static void tf_publish(struct tpmfront *tf)
{
	struct xenif *x = tf->xif;
	uint32_t be_extra = 0, n;
	int rc;

	if (!tf_backend_v2(tf)) {
		xenbus_refuse(&tf->xb, "the backend does not speak vTPM "
				       "protocol v2 (feature-protocol-v2 is not "
				       "\"1\"); waiting");
		return;
	}
	rc = xenbus_read_u32(&tf->xb, tf->xb.peer, "feature-extra-pages",
			     UINT32_MAX, &be_extra);
	if (rc == -ENOENT) {
		be_extra = 0;
	} else if (rc) {
		tf->stats.rejected++;
		log_warnx_rl(&tf->rl,
			     "vtpm front %u: feature-extra-pages holds junk "
			     "(%s); using one page",
			     tf->cfg.devid, strerror(-rc));
		be_extra = 0;
	}
	n = be_extra < tf->cfg.max_extra_pages ? be_extra
					       : tf->cfg.max_extra_pages;
	rc = x->ops->gnt_share(x, tf->bdom, 1 + n, tf->refs,
			       (void **)&tf->area);
	if (rc) {
		tf->area = NULL;
		log_warnx_rl(&tf->rl,
			     "vtpm front %u: cannot share %u pages with "
			     "dom%u: %s",
			     tf->cfg.devid, 1 + n, tf->bdom, strerror(-rc));
		return;
	}
	tf->area_pages = 1 + n;
	tf->n_extra = n;
	tf->data_off = TPMIF_HDR_LEN + 4 * n;
	tf->data_cap = (1 + n) * TPMIF_PAGE - tf->data_off;
	rc = x->ops->evtchn_alloc_unbound(x, tf->bdom, &tf->port);
	if (rc) {
		log_warnx_rl(&tf->rl,
			     "vtpm front %u: cannot allocate an event "
			     "channel for dom%u: %s",
			     tf->cfg.devid, tf->bdom, strerror(-rc));
		tf_release(tf);
		return;
	}
	tf->have_port = true;
	memset(tf->area, 0, TPMIF_HDR_LEN);
	tf_shr(tf)->nr_extra_pages = (uint8_t)n;
	memcpy(tf->area + TPMIF_HDR_LEN, &tf->refs[1], 4 * n);
	tf->state = TPMFRONT_INITIALISED;
	rc = xenbus_write_u32(&tf->xb, "ring-ref", tf->refs[0]);
	if (!rc)
		rc = xenbus_write_u32(&tf->xb, "event-channel", tf->port);
	if (!rc)
		rc = xenbus_write(&tf->xb, "feature-protocol-v2", "1");
	if (!rc)
		rc = xenbus_write(&tf->xb, "state", "3");
	if (rc) {
		tf_drop(tf, "cannot publish the ring", -ECONNRESET, false);
		return;
	}
	xenbus_accept(&tf->xb);
	log_debug("vtpm front %u: ring-ref %u (+%u extra), event channel %u "
		  "published for dom%u",
		  tf->cfg.devid, tf->refs[0], n, tf->port, tf->bdom);
}

static void tf_connected(struct tpmfront *tf)
{
	xenbus_switch_state(&tf->xb, XenbusStateConnected);
	tf->state = TPMFRONT_CONNECTED;
	tf->stats.connects++;
	xenbus_log_connect(&tf->xb,
			   "connected to dom%u (ring-ref %u, event channel "
			   "%u, %u bytes per message)",
			   tf->bdom, tf->refs[0], tf->port, tf->data_cap);
	tf_state_changed(tf);
}

/*
 * Our device's backend and backend-id, read strictly: backend-id a plain
 * domid (the one configured, if any; our own is allowed, a loopback
 * device as tests/xen-lab's frontprobe uses), backend exactly
 * /local/domain/<backend-id>/backend/vtpm/<self>/<devid>.  0 with
 * *bdom and want[] filled, -ENOENT when there is no device, or -EPERM
 * (refused, logged).
 */
static int tf_read_device(struct tpmfront *tf, uint32_t *bdom, char *want,
			  size_t wantlen)
{
	char *be = NULL, why[200];
	size_t blen = 0;
	uint32_t id;
	int rc;

	rc = xenbus_read(&tf->xb, tf->xb.self, "backend", &be, &blen);
	if (rc) {
		free(be);
		if (rc != -ENOENT)
			log_warnx_rl(&tf->rl,
				     "vtpm front %u: xenstore read: %s",
				     tf->cfg.devid, strerror(-rc));
		return rc == -ENOENT ? -ENOENT : -EAGAIN;
	}
	why[0] = '\0';
	rc = xenbus_read_u32(&tf->xb, tf->xb.self, "backend-id", MAX_DOMID, &id);
	if (rc == -ENOENT) {
		snprintf(why, sizeof(why), "no backend-id node");
	} else if (rc) {
		snprintf(why, sizeof(why), "backend-id is not a domain id (%s)",
			 strerror(-rc));
	} else if (tf->cfg.have_backend && id != tf->cfg.backend_domid) {
		snprintf(why, sizeof(why),
			 "backend-id is %u, the configured backend is dom%u",
			 id, tf->cfg.backend_domid);
	} else {
		snprintf(want, wantlen, "/local/domain/%u/backend/vtpm/%u/%u",
			 id, tf->self, tf->cfg.devid);
		if (blen != strlen(be) || strcmp(be, want) != 0)
			snprintf(why, sizeof(why),
				 "backend is \"%.60s\", not %s", be, want);
	}
	free(be);
	if (why[0]) {
		xenbus_refuse(&tf->xb, "refusing the device: %s", why);
		return -EPERM;
	}
	*bdom = id;
	return 0;
}

/* One pass; returns true when another pass is needed at once. */
static bool tf_step(struct xenbus_dev *xb)
{
	struct tpmfront *tf = xb->owner;
	char want[96], token[64];
	uint32_t bdom;
	int rc, bst;

	rc = tf_read_device(tf, &bdom, want, sizeof(want));
	if (rc == -EAGAIN)
		return false;
	if (rc) {
		/* A refused device still exists: Closed lets the backend
		 * drop a ring we had published. */
		tf_drop(tf, rc == -ENOENT ? "device removed" : "device refused",
			-ECONNRESET, rc != -ENOENT);
		xenbus_watch_peer(xb, false);
		if (rc == -ENOENT && tf->state != TPMFRONT_NO_DEVICE) {
			if (tf->state != TPMFRONT_REFUSED)
				log_info("vtpm front %u: no device", tf->cfg.devid);
			xenbus_accept(xb);
		}
		tf->state = rc == -ENOENT ? TPMFRONT_NO_DEVICE : TPMFRONT_REFUSED;
		return false;
	}
	if (tf->stopping)
		return false;
	if (xb->peer_watched && strcmp(want, xb->peer) != 0) {
		/* The toolstack moved the device to another backend. */
		tf_drop(tf, "backend changed", -ECONNRESET, true);
		xenbus_watch_peer(xb, false);
	}
	if (tf->stopping)
		return false;
	if (!xb->peer_watched) {
		snprintf(token, sizeof(token), "tpmfront:be:%u", tf->cfg.devid);
		xenbus_set_peer(xb, want, token);
		tf->bdom = bdom;
		xenbus_watch_peer(xb, true);
	}
	if (tf->state == TPMFRONT_NO_DEVICE || tf->state == TPMFRONT_REFUSED) {
		xenbus_accept(xb);
		tf->state = TPMFRONT_WAIT_BACKEND;
		log_info("vtpm front %u: device found, backend dom%u",
			 tf->cfg.devid, tf->bdom);
	}
	bst = xenbus_peer_state(xb, false);
	if (bst < 0)
		return false;
	switch (tf->state) {
	case TPMFRONT_WAIT_BACKEND:
		if (bst == XenbusStateInitWait) {
			tf_publish(tf);
		} else if (bst == XenbusStateInitialised ||
			   bst == XenbusStateConnected ||
			   bst == XenbusStateClosing) {
			/* It still holds a ring of ours (an earlier run):
			 * Closed makes it let go and return to InitWait. */
			xenbus_switch_state(&tf->xb, XenbusStateClosed);
		}
		break;
	case TPMFRONT_INITIALISED:
		if (bst == XenbusStateConnected) {
			if (!tf_backend_v2(tf)) {
				tf_drop(tf, "backend lost feature-protocol-v2",
					-ECONNRESET, true);
				break;
			}
			tf_connected(tf);
			/* A response may already be waiting (none should). */
			tf_check_page(tf);
		} else if (bst != XenbusStateInitWait &&
			   bst != XenbusStateInitialised) {
			tf_drop(tf, "backend left during the handshake",
				-ECONNRESET, true);
			return !tf->stopping;
		}
		break;
	case TPMFRONT_CONNECTED:
		if (bst == XenbusStateConnected ||
		    bst == XenbusStateReconfiguring ||
		    bst == XenbusStateReconfigured)
			break;
		{
			char why[48];

			snprintf(why, sizeof(why), "backend state %d", bst);
			tf_drop(tf, why, -ECONNRESET, true);
		}
		return !tf->stopping;
	default:
		break;
	}
	return false;
}

static void tf_reconcile(struct tpmfront *tf)
{
	xenbus_reconcile(&tf->xb);
}

/* ---- timers ---- */

static void on_req_timer(uv_timer_t *t)
{
	struct tpmfront *tf = t->data;

	if (tf->stopping || tf->state != TPMFRONT_CONNECTED)
		return;
	if (tf->req == TF_REQ_SUBMITTED) {
		log_warnx_rl(&tf->rl,
			     "vtpm front %u: no response from dom%u in time; "
			     "cancelling",
			     tf->cfg.devid, tf->bdom);
		tf->timed_out = true;
		tf_send_cancel(tf);
		return;
	}
	if (tf->req == TF_REQ_CANCELLING) {
		/* The backend ignores us; the page is not ours to reuse
		 * while it may still write it.  Start over on a new ring. */
		log_warnx_rl(&tf->rl,
			     "vtpm front %u: dom%u did not answer the cancel "
			     "within %u ms; resetting the connection",
			     tf->cfg.devid, tf->bdom, tf->cfg.cancel_wait_ms);
		tf_drop(tf, "cancel unanswered",
			tf->timed_out ? -ETIMEDOUT : -ECANCELED, true);
		tf_reconcile(tf);
	}
}

/* ---- the xenbus layer's callbacks ---- */

/* Our port fired, or a response may have come while we were not
 * listening (a storm pause ended). */
static void xb_event(struct xenbus_dev *xb)
{
	tf_check_page(xb->owner);
}

static void tf_closed_one(struct tpmfront *tf);

static void xb_closed(struct xenbus_dev *xb)
{
	tf_closed_one(xb->owner);
}

static const struct xenbus_ops xb_ops = {
	.step = tf_step,
	.event = xb_event,
	.closed = xb_closed,
};

/* ---- lifetime ---- */

int tpmfront_init(struct tpmfront *tf, uv_loop_t *loop, struct xenif *xif,
		  const struct tpmfront_config *cfg,
		  void (*on_state)(struct tpmfront *tf), void *data)
{
	char name[48];
	struct xenbus_setup xs = {
	    .name = name,
	    .peer_role = "backend",
	    .rl = &tf->rl,
	    .rejected = &tf->stats.rejected,
	    .throttled = &tf->stats.throttled,
	    .events = &tf->stats.events,
	    .port = &tf->port,
	    .bound = &tf->have_port,
	    .stopping = &tf->stopping,
	    .storm_events = cfg->storm_events,
	    .storm_window_ms = cfg->storm_window_ms,
	    .storm_pause_ms = cfg->storm_pause_ms,
	};

	memset(tf, 0, sizeof(*tf));
	if (!xif || !xif->ops->gnt_share || !xif->ops->evtchn_alloc_unbound ||
	    !xif->ops->self_domid ||
	    cfg->max_extra_pages > TPMFRONT_MAX_EXTRA_PAGES ||
	    (cfg->have_backend && cfg->backend_domid > MAX_DOMID))
		return -EINVAL;
	tf->loop = loop;
	tf->xif = xif;
	tf->cfg = *cfg;
	tf->on_state = on_state;
	tf->data = data;
	if (!tf->cfg.cancel_wait_ms)
		tf->cfg.cancel_wait_ms = 5000;
	snprintf(name, sizeof(name), "vtpm front %u", cfg->devid);
	xenbus_init(&tf->xb, loop, xif, &xb_ops, tf, &xs);
	tf->rsp = malloc((size_t)(1 + cfg->max_extra_pages) * TPMIF_PAGE);
	if (!tf->rsp)
		return -ENOMEM;
	uv_timer_init(loop, &tf->req_timer);
	tf->req_timer.data = tf;
	tf->req_timer_live = true;
	return 0;
}

int tpmfront_start(struct tpmfront *tf)
{
	struct xenif *x = tf->xif;
	char path[96], token[64];
	int rc;

	rc = x->ops->self_domid(x, &tf->self);
	if (rc) {
		log_warnx("vtpm front %u: cannot learn our domain id: %s",
			  tf->cfg.devid, strerror(-rc));
		return rc;
	}
	snprintf(path, sizeof(path), "/local/domain/%u/device/vtpm/%u",
		 tf->self, tf->cfg.devid);
	snprintf(token, sizeof(token), "tpmfront:fe:%u", tf->cfg.devid);
	xenbus_set_self(&tf->xb, path, token);
	rc = xenbus_start(&tf->xb);
	if (rc)
		return rc;
	log_info("vtpm front %u: dom%u watching %s", tf->cfg.devid, tf->self,
		 tf->xb.self);
	tf_reconcile(tf);
	return 0;
}

static void tf_stopped(struct tpmfront *tf)
{
	void (*cb)(struct tpmfront *);

	tf->state = TPMFRONT_STOPPED;
	if (tf->rsp)
		explicit_bzero(tf->rsp,
			       (size_t)(1 + tf->cfg.max_extra_pages) * TPMIF_PAGE);
	free(tf->rsp);
	tf->rsp = NULL;
	cb = tf->stopped;
	tf->stopped = NULL;
	if (cb)
		cb(tf);
}

static void tf_closed_one(struct tpmfront *tf)
{
	if (--tf->closes == 0)
		tf_stopped(tf);
}

static void on_req_timer_closed(uv_handle_t *h)
{
	tf_closed_one(h->data);
}

static void tf_finish_stop(struct tpmfront *tf)
{
	bool published = tf->state == TPMFRONT_INITIALISED ||
			 tf->state == TPMFRONT_CONNECTED;

	if (tf->state == TPMFRONT_STOPPED)
		return;
	tf_complete(tf, -ESHUTDOWN, NULL, 0);
	if (published && tf_device_exists(tf)) {
		/* Closing then Closed: the backend unmaps and waits for the
		 * next frontend at InitWait. */
		xenbus_switch_state(&tf->xb, XenbusStateClosing);
		xenbus_switch_state(&tf->xb, XenbusStateClosed);
	}
	tf_release(tf);
	/* tf_stopped once the xenbus layer's handles and the timer are
	 * closed; it unwatches both directories. */
	tf->closes = tf->req_timer_live ? 2 : 1;
	if (tf->req_timer_live) {
		uv_timer_stop(&tf->req_timer);
		uv_close((uv_handle_t *)&tf->req_timer, on_req_timer_closed);
	}
	xenbus_close(&tf->xb);
}

void tpmfront_stop(struct tpmfront *tf, void (*done)(struct tpmfront *tf))
{
	if (tf->stopping)
		return;
	tf->stopping = true;
	tf->stopped = done;
	tf_finish_stop(tf);
}
