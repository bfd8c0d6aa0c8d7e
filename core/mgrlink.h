/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instance's end of the manager protocol: a blocking request/response
 * link, used only from engine jobs on the thread pool and before the loop
 * starts, never from the loop thread.
 */
#ifndef VTPM_MGRLINK_H
#define VTPM_MGRLINK_H

#include <stddef.h>

#include "mgrproto.h"

struct mgrlink {
	int fd;
	int timeout_ms;
};

/* spec: "fd:N" (a socket inherited from the manager) or a UNIX socket
 * path.  0 or negative errno with err filled. */
int mgrlink_open(const char *spec, struct mgrlink *l, char *err, size_t errlen);

/* One round trip.  0 when a response of the request's type was decoded
 * (its status may still be an error); negative errno otherwise. */
int mgrlink_call(struct mgrlink *l, const struct mgr_req *req,
		 struct mgr_rsp *rsp, char *err, size_t errlen);

void mgrlink_close(struct mgrlink *l);

#endif
