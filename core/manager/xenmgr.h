/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager on a Xen host: serves the vtpm devices the toolstack gives
 * this domain (xenmgr.c).
 */
#ifndef VTPM_MANAGER_XENMGR_H
#define VTPM_MANAGER_XENMGR_H

#include <stdbool.h>
#include <stdint.h>

struct manager;
struct vtpm_entry;

/* The vtpm device a vTPM serves. */
struct vtpm_xendev {
	bool active;              /* a device names it: serve it there */
	uint32_t fe, dev;         /* frontend domain, device number */
	bool restart;             /* start again once the old one exited */
};

int mgr_xen_start(struct manager *m);
void mgr_xen_stop(struct manager *m);
/* e's instance stopped (supervisor event): maybe serve the new domain. */
void mgr_xen_child_stopped(struct vtpm_entry *e);

#endif
