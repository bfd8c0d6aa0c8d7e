/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The libuv side that tpmback, tpmfront and devwatch share: a uv_poll on
 * the xenstore watch fd and one on the event-channel fd of one xenif, the
 * drains of both (bounded per callback), and the event-storm throttle (a
 * peer notifying in a tight loop gets the channel paused, so it cannot
 * keep the loop, or the machine, busy).  An owner with no event channel
 * (devwatch) leaves ours/event/resumed NULL and gets the xenstore side
 * only.  Nothing here blocks.
 */
#ifndef VTPM_XENLOOP_H
#define VTPM_XENLOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/log.h"
#include "xenbus/xenif.h"

struct xenloop;

struct xenloop_ops {
	/* Watches fired (all read and dropped): look at xenstore now. */
	void (*watch)(struct xenloop *xl);
	/* The event channel side; all three NULL: none is polled. */
	/* Is this port the owner's connection? */
	bool (*ours)(struct xenloop *xl, uint32_t port);
	/* Our port fired. */
	void (*event)(struct xenloop *xl);
	/* A storm pause ended: something may have come meanwhile. */
	void (*resumed)(struct xenloop *xl);
	/* Every handle is closed (after xenloop_close). */
	void (*closed)(struct xenloop *xl);
};

struct xenloop {
	/* set by xenloop_init */
	uv_loop_t *loop;
	struct xenif *xif;
	const struct xenloop_ops *ops;
	void *owner;
	char name[48]; /* what log lines start with */
	struct log_ratelimit *rl;
	unsigned int storm_events, storm_window_ms, storm_pause_ms;
	uint64_t *throttled; /* the owner's counter of pauses */
	/* Set after init when the xif carries other watches too: only
	 * events with this token call ops->watch (NULL: every event). */
	const char *token;

	/* private */
	uv_poll_t xs_poll, ev_poll;
	uv_timer_t storm_timer, xs_more_timer, recheck_timer;
	bool evtchn; /* the event channel side is polled */
	bool ev_polling;
	bool closing;
	int open_handles;
	uint64_t storm_window_start;
	unsigned int storm_count;
};

/* Storm settings of 0 take the defaults: 256 events in 100 ms pause the
 * channel for 20 ms. */
void xenloop_init(struct xenloop *xl, uv_loop_t *loop, struct xenif *xif,
		  const struct xenloop_ops *ops, void *owner, const char *name,
		  struct log_ratelimit *rl, unsigned int storm_events,
		  unsigned int storm_window_ms, unsigned int storm_pause_ms,
		  uint64_t *throttled);

/* Opens and starts the polls and timers: 0 or -errno. */
int xenloop_start(struct xenloop *xl);

/* Closes them; ops->closed runs once they are (at once if none was
 * open).  Calling it again does nothing. */
void xenloop_close(struct xenloop *xl);

/* ops->watch once more, ms from now, as though a watch fired then (an
 * owner that must wait before its next step).  A later call replaces an
 * earlier one; nothing after xenloop_close or before xenloop_start. */
void xenloop_recheck(struct xenloop *xl, uint64_t ms);

#endif
