/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Xen-ring variant of core/mgrlink (mgrlink_xen.c), for mgrlink.c.
 */
#ifndef VTPM_MGRLINK_XEN_H
#define VTPM_MGRLINK_XEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mgrlink.h"
#include "xenif.h"

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
