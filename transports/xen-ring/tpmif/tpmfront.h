/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tpmfront: the frontend half of one Xen PV vTPM device (protocol v2) in
 * user space, the role Mini-OS tpmfront plays: this domain (S) is the
 * frontend of device D, whose backend runs in domain B.
 *
 * Xenstore:  /local/domain/S/device/vtpm/D       (the toolstack made it;
 *                                                  we write our nodes)
 *            /local/domain/B/backend/vtpm/S/D    (the backend's)
 * `backend` and `backend-id` are read strictly: the path must be exactly
 * the one backend-id names.  Everything the backend controls (its nodes,
 * the shared page's state and length) is read once into a local, checked,
 * and only the local is used.
 *
 * All I/O is on one libuv loop: a uv_poll on the xenstore watch fd and one
 * on the event-channel fd, plus timers.  Nothing here blocks.  One request
 * is in flight at a time; its callback always runs exactly once.
 */
#ifndef VTPM_TPMFRONT_H
#define VTPM_TPMFRONT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/log.h"
#include "xenbus/xenbus.h"
#include "xenbus/xenif.h"

/* Extra grant pages we may attach after the shared page. */
#define TPMFRONT_MAX_EXTRA_PAGES 8

struct tpmfront;

struct tpmfront_config {
	uint32_t devid;		/* D, usually 0 */
	bool have_backend;	/* backend-id must equal backend_domid */
	uint32_t backend_domid;
	/* Extra pages to share when the backend's feature-extra-pages
	 * allows them (0 .. TPMFRONT_MAX_EXTRA_PAGES).  They are attached
	 * to every request, so responses may use them too. */
	unsigned int max_extra_pages;
	/* How long a CANCEL may stay unanswered before the connection is
	 * reset (our state Closed, then a fresh ring).  0: 5000. */
	unsigned int cancel_wait_ms;
	/* Event-storm throttle, as tpmback's: more than storm_events within
	 * storm_window_ms pauses our event channel for storm_pause_ms. */
	unsigned int storm_events;    /* 0: 256 */
	unsigned int storm_window_ms; /* 0: 100 */
	unsigned int storm_pause_ms;  /* 0: 20 */
};

/*
 * The end of one request.  status 0: rsp/len hold the response, valid
 * only during the call (the buffer is wiped afterwards).  Otherwise rsp is
 * NULL and status is
 *   -ECANCELED   the backend abandoned the command (state IDLE), or an
 *                explicit tpmfront_cancel completed;
 *   -ETIMEDOUT   the request's timeout expired (and the cancel completed,
 *                or the connection was reset because it did not);
 *   -ECONNRESET  the backend went away (Closing, Closed, vanished,
 *                restarted) or the device was removed;
 *   -EPROTO      the backend's answer was malformed (length too big);
 *   -ESHUTDOWN   tpmfront_stop.
 */
typedef void (*tpmfront_cb)(struct tpmfront *tf, int status,
			    const uint8_t *rsp, uint32_t len, void *arg);

enum tpmfront_state {
	TPMFRONT_NO_DEVICE = 0, /* no device directory (yet) */
	TPMFRONT_REFUSED,	/* backend/backend-id nodes rejected */
	TPMFRONT_WAIT_BACKEND,	/* waiting for the backend's InitWait */
	TPMFRONT_INITIALISED,	/* ring published, state 3 */
	TPMFRONT_CONNECTED,	/* both at 4: requests may go */
	TPMFRONT_STOPPED,
};

struct tpmfront_stats {
	uint64_t events;    /* event-channel wake-ups for our port */
	uint64_t submits;
	uint64_t responses; /* status 0 callbacks */
	uint64_t failed;    /* other callbacks */
	uint64_t cancels;   /* CANCEL written */
	uint64_t rejected;  /* hostile or malformed things the backend did */
	uint64_t connects;
	uint64_t resets; /* connections dropped */
	uint64_t throttled;
};

struct tpmfront {
	/* set by tpmfront_init */
	uv_loop_t *loop;
	struct xenif *xif;
	struct tpmfront_config cfg;
	void (*on_state)(struct tpmfront *tf); /* optional */
	void *data;			       /* the owner's */

	enum tpmfront_state state;
	struct tpmfront_stats stats;

	/* private */
	uint32_t self;
	/* xenstore, watches, polls: our directory (self) is the device's,
	 * the other end (peer) is the backend's */
	struct xenbus_dev xb;
	uint32_t bdom;

	uv_timer_t req_timer;
	bool req_timer_live;
	int closes; /* handles left to close when stopping */

	/* the connection */
	uint8_t *area; /* 1 + n_extra shared pages, contiguous */
	uint32_t area_pages;
	uint32_t refs[1 + TPMFRONT_MAX_EXTRA_PAGES];
	uint32_t port;
	bool have_port;
	uint32_t n_extra;
	uint32_t data_off; /* 8 + 4 * n_extra */
	uint32_t data_cap; /* bytes from data_off to the area's end */

	/* the request in flight */
	enum { TF_REQ_NONE, TF_REQ_SUBMITTED, TF_REQ_CANCELLING } req;
	bool timed_out;
	tpmfront_cb cb;
	void *cb_arg;
	uint8_t *rsp; /* (1 + max_extra_pages) pages, wiped after use */

	bool stopping;
	void (*stopped)(struct tpmfront *tf);

	struct log_ratelimit rl;
};

/* 0 or -errno (a bad config).  Nothing is started yet. */
int tpmfront_init(struct tpmfront *tf, uv_loop_t *loop, struct xenif *xif,
		  const struct tpmfront_config *cfg,
		  void (*on_state)(struct tpmfront *tf), void *data);

/* Learns our domid, watches our device and connects when it can. */
int tpmfront_start(struct tpmfront *tf);

static inline bool tpmfront_connected(const struct tpmfront *tf)
{
	return tf->state == TPMFRONT_CONNECTED && !tf->stopping;
}

/* The largest request (and response) the connected ring holds; 0 when
 * not connected. */
uint32_t tpmfront_capacity(const struct tpmfront *tf);

/*
 * Sends one request: copied to the page, then length, locality, a
 * barrier, state SUBMIT, notify.  timeout_ms 0: no timeout.  0 when cb
 * will be called (never from inside this call); -ENOTCONN (not
 * connected), -EBUSY (a request is in flight), -EMSGSIZE (len is 0 or
 * above tpmfront_capacity), -EINVAL (locality above 4).
 */
int tpmfront_submit(struct tpmfront *tf, const uint8_t *cmd, uint32_t len,
		    unsigned int locality, unsigned int timeout_ms,
		    tpmfront_cb cb, void *arg);

/* Asks the backend to cancel the request in flight: 0, or -ENOENT when
 * none is (or a cancel already is). */
int tpmfront_cancel(struct tpmfront *tf);

/*
 * Stops: fails a request in flight (-ESHUTDOWN), writes Closing then
 * Closed when we had published a ring, unshares, unbinds, unwatches and
 * closes its handles, then calls done.
 */
void tpmfront_stop(struct tpmfront *tf, void (*done)(struct tpmfront *tf));

const char *tpmfront_state_name(enum tpmfront_state s);

#endif
