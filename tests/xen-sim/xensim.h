/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A simulated Xen for tests: an in-memory xenstore whose watches are
 * delivered through an eventfd, a grant table backed by pages of one
 * memfd, and event channels whose backend end is an eventfd.  A backend
 * gets a struct xenif (the same table xen_real.c fills), so the real
 * tpmback runs against it; the test plays toolstack and guest through
 * the xensim_* calls.
 *
 * Every mapping (the backend's and the guest's view) sits between two
 * PROT_NONE guard pages, and an unmapped area is left PROT_NONE: a
 * backend that reads or writes outside what it mapped, or after it
 * unmapped, takes SIGSEGV.
 *
 * Event channels behave like Linux's /dev/xen/evtchn: a port that fired
 * stays masked until the backend unmasks it, so notifications coalesce.
 *
 * A frontend can be a xenif too (the real tpmfront): its gnt_share grants
 * pages that a backend's gnt_map finds, and its evtchn_alloc_unbound
 * makes a port a backend binds; notify on either end wakes the other.
 * Every call takes one lock, so a frontend and a backend may run on two
 * threads, each with its own xenif.
 */
#ifndef VTPM_XENSIM_H
#define VTPM_XENSIM_H

#include <stddef.h>
#include <stdint.h>

#include "xenbus/xenif.h"

struct xensim;

struct xensim *xensim_new(void);
void xensim_free(struct xensim *w);

/* A backend's or frontend's connection, as domain `domid`. */
struct xenif *xensim_open(struct xensim *w, uint32_t domid);

/* ---- toolstack and guest: xenstore ---- */
int xensim_write(struct xensim *w, const char *path, const char *val);
/* val of len bytes, which may hold a NUL */
int xensim_write_raw(struct xensim *w, const char *path, const char *val,
		     size_t len);
/* Removes path and everything below it. */
int xensim_rm(struct xensim *w, const char *path);
/* malloc'd copy, or NULL when absent */
char *xensim_read(struct xensim *w, const char *path);

/* ---- guest: grants ---- */
/* Grants n fresh zeroed pages of domain `from` to domain `to`: refs[i]
 * for page i; *view is the guest's own contiguous, guarded mapping. */
int xensim_grant(struct xensim *w, uint32_t from, uint32_t to, uint32_t n,
		 uint32_t *refs, uint8_t **view);

/* ---- guest: event channels ---- */
int xensim_evtchn_alloc_unbound(struct xensim *w, uint32_t dom, uint32_t remote,
				uint32_t *port);
/* Notify from the guest's port; lost if nobody bound it yet. */
int xensim_evtchn_send(struct xensim *w, uint32_t dom, uint32_t port);
/* Notifications the guest's port received from its peer. */
uint64_t xensim_evtchn_received(struct xensim *w, uint32_t dom, uint32_t port);
/* The guest closes its port (it is going away). */
int xensim_evtchn_close(struct xensim *w, uint32_t dom, uint32_t port);

/* ---- what the backends hold now ---- */
size_t xensim_maps_live(struct xensim *w);  /* mapped areas */
size_t xensim_binds_live(struct xensim *w); /* bound ports */
uint64_t xensim_map_calls(struct xensim *w);
/* ... and what frontends hold: shared areas, allocated ports. */
size_t xensim_shares_live(struct xensim *w);
size_t xensim_front_ports_live(struct xensim *w);

#endif
