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
struct xenif;
struct log_ratelimit;
struct mgr_req;
struct mgr_rsp;

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

/* What a ring link remembers of the guest its instance domain serves
 * (XEN_PEER), for the XEN_PEER_STATE asked after its device is gone. */
struct mgr_xen_peer {
	bool have;
	uint32_t dom, dev;
	uint8_t seen; /* MGR_XEN_*: its run state when last seen */
};

/*
 * XEN_PEER and XEN_PEER_STATE from the instance in domain I (the link's
 * own device's frontend, as the toolstack made it), whose link is the
 * vTPM uuid: sets rsp's status and answer, through xif (xenstore and
 * Xen's domain info as this domain sees them).  XEN_PEER is answered only
 * for a domain F != I whose vtpm device in I names uuid, and remembered
 * in p; XEN_PEER_STATE only for p's domain and device.  Refusals are
 * FORBIDDEN, logged through rl.
 */
void mgr_xen_peer_answer(struct xenif *xif, uint32_t I, const uint8_t uuid[16],
			 const char *uuid_str, struct mgr_xen_peer *p,
			 struct log_ratelimit *rl, const struct mgr_req *req,
			 struct mgr_rsp *rsp);
/* Records p's domain's run state now, if it still exists (@releaseDomain). */
void mgr_xen_peer_note(struct xenif *xif, struct mgr_xen_peer *p);

#endif
