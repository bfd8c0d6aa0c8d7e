/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vTPM shared page as both ends see it (xen/io/tpmif.h, protocol v2):
 * its size, where the packet starts, the highest locality, and the two
 * accesses to its state byte that order everything else on the page.
 * The state is the one field both ends write, so it is loaded and stored
 * exactly once per look, never re-read.
 */
#ifndef VTPM_TPMIF_RING_H
#define VTPM_TPMIF_RING_H

#include <stdint.h>

#include <xen/io/tpmif.h>

#include "xenbus/xenif.h"

#define TPMIF_PAGE XENIF_PAGE_SIZE
/* The header; the extra pages' refs follow it, then the packet. */
#define TPMIF_HDR_LEN ((uint32_t)sizeof(struct tpmif_shared_page))
#define TPMIF_MAX_LOCALITY 4

_Static_assert(sizeof(struct tpmif_shared_page) == 8,
	       "the packet starts at 8 + 4 * nr_extra_pages");

/* The state now; the rest of the page is read only after it. */
static inline uint8_t tpmif_state_load(struct tpmif_shared_page *shr)
{
	uint8_t st = __atomic_load_n(&shr->state, __ATOMIC_RELAXED);

	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return st;
}

/* A new state, after everything written before it and before anything
 * written after it (the notify). */
static inline void tpmif_state_store(struct tpmif_shared_page *shr, uint8_t st)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&shr->state, st, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

#endif
