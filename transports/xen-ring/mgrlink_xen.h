/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Xen-ring variant of the instance's manager link (core/instance/
 * mgrlink.h): a tpmfront on its own thread and libuv loop; a call hands
 * its frame to that thread and waits for the answer.  main() registers
 * mgrlink_xen_dial so that "xen-ring..." specs reach it.
 */
#ifndef VTPM_MGRLINK_XEN_H
#define VTPM_MGRLINK_XEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "instance/mgrlink.h"
#include "xenbus/xenif.h"

struct mgrlink_xen;

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

/* Before the sandbox: loads the Xen libraries a "xen-ring..." spec will
 * dial through (0 for any other spec), as instance_transports'
 * dial_prepare. */
int mgrlink_xen_prepare(const char *spec);

/* The dialer for mgrlink_open: claims "xen-ring..." specs and opens
 * the real Xen devices. */
int mgrlink_xen_dial(const char *spec, struct mgrlink *l, char *err,
		     size_t errlen);

/* The ring variant on a given xenif (tests: a simulated Xen).  The link
 * uses xif on its own thread and does not close it. */
int mgrlink_open_xen(struct mgrlink *l, const char *spec, struct xenif *xif,
		     char *err, size_t errlen);

/* Parses spec, starts the link thread and its tpmfront; xif is closed
 * with the link when own_xif (and on failure).  0 or -errno, err set. */
int mgrlink_xen_open(struct mgrlink_xen **out, const char *spec,
		     struct xenif *xif, bool own_xif, char *err,
		     size_t errlen);

/* One frame out, one frame back (rsp holds MGR_MAX_FRAME). */
int mgrlink_xen_exchange(struct mgrlink_xen *x, const uint8_t *req,
			 size_t req_len, uint8_t *rsp, size_t *rsp_len,
			 int timeout_ms, char *err, size_t errlen);

void mgrlink_xen_close(struct mgrlink_xen *x);

#endif
