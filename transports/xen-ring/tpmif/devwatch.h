/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * devwatch: which vTPM devices the toolstack has given this domain to
 * serve.  It watches /local/domain/B/backend/vtpm and reports each device
 * <F>/<D> once its `uuid` node is there (added), and again when the
 * device goes away or its uuid changes (removed).  The manager uses it to
 * start one xen-ring instance per device and stop it afterwards.
 *
 * Only the toolstack (dom0) writes below backend/vtpm; frontends can read
 * but not write there.  Still, every name and value is parsed strictly and
 * the number of devices is bounded.  Watch events are coalesced: a burst
 * of xenstore writes costs one rescan after a short delay.
 */
#ifndef VTPM_DEVWATCH_H
#define VTPM_DEVWATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/log.h"
#include "xenbus/xenif.h"
#include "xenbus/xenloop.h"

#define DEVWATCH_MAX_DEVICES 1024

struct devwatch;

struct devwatch_dev {
	uint32_t fe_domid;
	uint32_t devid;
	uint8_t uuid[16];
	bool seen; /* scratch, for one rescan */
};

struct devwatch_ops {
	void (*added)(struct devwatch *w, const struct devwatch_dev *d);
	void (*removed)(struct devwatch *w, const struct devwatch_dev *d);
};

struct devwatch {
	uv_loop_t *loop;
	struct xenif *xif;
	const struct devwatch_ops *ops;
	void *data;
	char base[64];

	struct devwatch_dev *devs;
	unsigned int ndevs;
	uint64_t rescans;

	/* private */
	struct xenloop io; /* the xenstore poll and its bounded drain */
	uv_timer_t timer;
	int open_handles;
	bool stopping;
	void (*stopped)(struct devwatch *w);
	struct log_ratelimit rl;
};

/* The delay that coalesces a burst of watch events into one rescan. */
#define DEVWATCH_SETTLE_MS 20

/* Watches /local/domain/<backend_domid>/backend/vtpm; 0 or -errno. */
int devwatch_start(struct devwatch *w, uv_loop_t *loop, struct xenif *xif,
		   uint32_t backend_domid, const struct devwatch_ops *ops,
		   void *data);

/* Rescans now (also what a watch event triggers, after the delay). */
void devwatch_rescan(struct devwatch *w);

/* Unwatches and closes its handles, then calls done (no removed()
 * callbacks: the devices are still there). */
void devwatch_stop(struct devwatch *w, void (*done)(struct devwatch *w));

#endif
