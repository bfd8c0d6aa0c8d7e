/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instance served over the Xen vTPM ring (xen_ring.c): this domain is
 * the backend of the guest's vtpm device.
 */
#ifndef VTPM_XEN_RING_H
#define VTPM_XEN_RING_H

#include "instance/vtpm.h"

extern const struct transport_ops xen_ring_transport_ops;

#endif
