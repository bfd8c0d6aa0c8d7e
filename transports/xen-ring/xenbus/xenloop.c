/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The polls, drains and storm throttle tpmback and tpmfront share; see
 * xenloop.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xenbus/xenloop.h"

#define WATCH_DRAIN_MAX 1024 /* watch events per callback, then yield */
#define EVTCHN_DRAIN_MAX 64

void xenloop_init(struct xenloop *xl, uv_loop_t *loop, struct xenif *xif,
		  const struct xenloop_ops *ops, void *owner, const char *name,
		  struct log_ratelimit *rl, unsigned int storm_events,
		  unsigned int storm_window_ms, unsigned int storm_pause_ms,
		  uint64_t *throttled)
{
	memset(xl, 0, sizeof(*xl));
	xl->loop = loop;
	xl->xif = xif;
	xl->ops = ops;
	xl->owner = owner;
	snprintf(xl->name, sizeof(xl->name), "%s", name);
	xl->rl = rl;
	xl->storm_events = storm_events ? storm_events : 256;
	xl->storm_window_ms = storm_window_ms ? storm_window_ms : 100;
	xl->storm_pause_ms = storm_pause_ms ? storm_pause_ms : 20;
	xl->throttled = throttled;
}

static void on_xs_more(uv_timer_t *t);

static void drain_watches(struct xenloop *xl)
{
	struct xenif *x = xl->xif;
	char *path, *token;
	bool ours = !xl->token;
	int n, rc;

	for (n = 0; n < WATCH_DRAIN_MAX; n++) {
		rc = x->ops->xs_watch_read(x, &path, &token);
		if (rc == -EAGAIN)
			break;
		if (rc) {
			log_warnx_rl(xl->rl, "%s: reading xenstore watches: %s",
				     xl->name, strerror(-rc));
			break;
		}
		/* The path says little: the owner reads what is there now. */
		if (xl->token && strcmp(token, xl->token) == 0)
			ours = true;
		free(path);
		free(token);
	}
	/* More than a burst: finish on the next turn, as libxenstore may
	 * not flag its fd readable again for events already queued. */
	if (n == WATCH_DRAIN_MAX)
		uv_timer_start(&xl->xs_more_timer, on_xs_more, 0, 0);
	if (ours)
		xl->ops->watch(xl);
}

static void on_xs_more(uv_timer_t *t)
{
	struct xenloop *xl = t->data;

	if (!xl->closing)
		drain_watches(xl);
}

static void on_xs(uv_poll_t *p, int status, int events)
{
	struct xenloop *xl = p->data;

	(void)events;
	if (status < 0) {
		log_warnx_rl(xl->rl, "%s: xenstore fd: %s", xl->name,
			     uv_strerror(status));
		return;
	}
	drain_watches(xl);
}

static void on_evtchn(uv_poll_t *p, int status, int events);

static void on_storm_over(uv_timer_t *t)
{
	struct xenloop *xl = t->data;

	if (xl->closing)
		return;
	xl->storm_window_start = uv_now(xl->loop);
	xl->storm_count = 0;
	xl->ev_polling = true;
	uv_poll_start(&xl->ev_poll, UV_READABLE, on_evtchn);
	xl->ops->resumed(xl);
}

static void storm_check(struct xenloop *xl)
{
	uint64_t now = uv_now(xl->loop);

	if (now - xl->storm_window_start >= xl->storm_window_ms) {
		xl->storm_window_start = now;
		xl->storm_count = 0;
	}
	if (++xl->storm_count <= xl->storm_events)
		return;
	if (xl->throttled)
		(*xl->throttled)++;
	log_warnx_rl(xl->rl,
		     "%s: more than %u events in %u ms; pausing the event "
		     "channel for %u ms",
		     xl->name, xl->storm_events, xl->storm_window_ms,
		     xl->storm_pause_ms);
	uv_poll_stop(&xl->ev_poll);
	xl->ev_polling = false;
	uv_timer_start(&xl->storm_timer, on_storm_over, xl->storm_pause_ms, 0);
}

static void on_evtchn(uv_poll_t *p, int status, int events)
{
	struct xenloop *xl = p->data;
	struct xenif *x = xl->xif;
	bool ours = false;
	uint32_t port;
	int n, rc;

	(void)events;
	if (status < 0) {
		log_warnx_rl(xl->rl, "%s: event channel fd: %s", xl->name,
			     uv_strerror(status));
		return;
	}
	for (n = 0; n < EVTCHN_DRAIN_MAX; n++) {
		rc = x->ops->evtchn_pending(x, &port);
		if (rc == -EAGAIN)
			break;
		if (rc) {
			log_warnx_rl(xl->rl, "%s: event channel: %s", xl->name,
				     strerror(-rc));
			break;
		}
		if (xl->ops->ours(xl, port))
			ours = true;
		x->ops->evtchn_unmask(x, port);
	}
	if (!ours || xl->closing)
		return;
	xl->ops->event(xl);
	if (!xl->closing)
		storm_check(xl);
}

int xenloop_start(struct xenloop *xl)
{
	struct xenif *x = xl->xif;
	int xfd, efd = -1, rc;

	xl->evtchn = xl->ops->event != NULL;
	xfd = x->ops->xs_fd(x);
	if (xfd < 0)
		return xfd;
	if (xl->evtchn) {
		efd = x->ops->evtchn_fd(x);
		if (efd < 0)
			return efd;
	}
	rc = uv_poll_init(xl->loop, &xl->xs_poll, xfd);
	if (rc)
		return rc;
	xl->open_handles++;
	if (xl->evtchn) {
		rc = uv_poll_init(xl->loop, &xl->ev_poll, efd);
		if (rc) {
			uv_close((uv_handle_t *)&xl->xs_poll, NULL);
			xl->open_handles--;
			return rc;
		}
		xl->open_handles++;
		uv_timer_init(xl->loop, &xl->storm_timer);
		xl->open_handles++;
		xl->ev_poll.data = xl->storm_timer.data = xl;
	}
	uv_timer_init(xl->loop, &xl->xs_more_timer);
	xl->open_handles++;
	uv_timer_init(xl->loop, &xl->recheck_timer);
	xl->open_handles++;
	xl->xs_poll.data = xl->xs_more_timer.data = xl->recheck_timer.data = xl;
	uv_poll_start(&xl->xs_poll, UV_READABLE, on_xs);
	if (xl->evtchn) {
		uv_poll_start(&xl->ev_poll, UV_READABLE, on_evtchn);
		xl->ev_polling = true;
	}
	xl->storm_window_start = uv_now(xl->loop);
	return 0;
}

static void on_closed(uv_handle_t *h)
{
	struct xenloop *xl = h->data;

	if (--xl->open_handles == 0)
		xl->ops->closed(xl);
}

void xenloop_close(struct xenloop *xl)
{
	if (xl->closing)
		return;
	xl->closing = true;
	if (xl->open_handles == 0) {
		xl->ops->closed(xl); /* never started */
		return;
	}
	uv_close((uv_handle_t *)&xl->xs_poll, on_closed);
	uv_close((uv_handle_t *)&xl->xs_more_timer, on_closed);
	uv_close((uv_handle_t *)&xl->recheck_timer, on_closed);
	if (xl->evtchn) {
		uv_close((uv_handle_t *)&xl->ev_poll, on_closed);
		uv_close((uv_handle_t *)&xl->storm_timer, on_closed);
	}
}

static void on_recheck(uv_timer_t *t)
{
	struct xenloop *xl = t->data;

	if (!xl->closing)
		xl->ops->watch(xl);
}

void xenloop_recheck(struct xenloop *xl, uint64_t ms)
{
	if (xl->closing || xl->open_handles == 0)
		return;
	uv_timer_start(&xl->recheck_timer, on_recheck, ms, 0);
}
