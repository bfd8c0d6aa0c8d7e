/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instance's end of the manager protocol: a blocking request/response
 * link, used only from engine jobs on the thread pool and before the loop
 * starts, never from the loop thread.
 *
 * Two variants behind one API: a UNIX socket (inherited or connected),
 * and the Xen vTPM ring, where this domain is the frontend of a vtpm
 * device whose backend is the manager's domain.  The ring variant runs a
 * tpmfront on its own thread and libuv loop; a call hands its frame to
 * that thread and waits for the answer.
 */
#ifndef VTPM_MGRLINK_H
#define VTPM_MGRLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mgrproto.h"

struct mgrlink_xen;
struct xenif;

struct mgrlink {
	int fd;			 /* the socket variant, else -1 */
	int timeout_ms;		 /* per call (and per connection wait) */
	struct mgrlink_xen *xen; /* the ring variant, else NULL */
};

/* Not open: fd -1, no ring. */
void mgrlink_init(struct mgrlink *l);

/*
 * spec: "fd:N" (a socket inherited from the manager), a UNIX socket path,
 * or "xen-ring[:backend=DOMID][,devid=N]" (the Xen vTPM ring: this
 * domain's vtpm device N, default 0, whose backend must be DOMID when
 * given).  0 or negative errno with err filled; -EINVAL means the spec
 * itself is wrong (retrying cannot help).
 */
int mgrlink_open(const char *spec, struct mgrlink *l, char *err, size_t errlen);

/* The ring variant on a given xenif (tests: a simulated Xen).  The link
 * uses xif on its own thread and does not close it. */
int mgrlink_open_xen(struct mgrlink *l, const char *spec, struct xenif *xif,
		     char *err, size_t errlen);

/* What "xen-ring..." says; -EINVAL (err filled) when it is malformed. */
struct mgrlink_xen_spec {
	bool have_backend;
	uint32_t backend;
	uint32_t devid;
};
int mgrlink_parse_xen(const char *spec, struct mgrlink_xen_spec *out,
		      char *err, size_t errlen);
/* Does spec name the ring ("xen-ring" alone or with options)? */
bool mgrlink_spec_is_xen(const char *spec);

bool mgrlink_is_open(const struct mgrlink *l);

/* An fd that reports the manager hanging up (POLLHUP), or -1: the ring
 * has none, a backend restart is ridden out instead. */
int mgrlink_pollfd(const struct mgrlink *l);

/* One round trip.  0 when a response of the request's type was decoded
 * (its status may still be an error); negative errno otherwise. */
int mgrlink_call(struct mgrlink *l, const struct mgr_req *req,
		 struct mgr_rsp *rsp, char *err, size_t errlen);

void mgrlink_close(struct mgrlink *l);

#endif
