/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Every Xen call the vTPM backend and frontend make, behind one thin
 * table: xenstore (read, write, rm, watch), grant mapping and sharing, and
 * event channels.  xen_real.c implements it on libxenstore, libxengnttab
 * (xengnttab and xengntshr) and libxenevtchn; tests/xen-sim/xensim.c
 * implements it in memory, so the real backend (tpmback.c) and frontend
 * (tpmfront.c) run in CI without a hypervisor.
 *
 * Every call returns 0 or a negative errno.  Both pollable fds are
 * level-triggered: readable while something is pending, so a caller
 * drains them (xs_watch_read / evtchn_pending until -EAGAIN).
 */
#ifndef VTPM_XENIF_H
#define VTPM_XENIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XENIF_PAGE_SIZE 4096u

struct xenif;

enum xenif_domain_state {
	XENIF_DOM_RUNNING,
	XENIF_DOM_PAUSED,    /* paused, not shut down */
	XENIF_DOM_SUSPENDED, /* shut down for a suspend (xl save, migrate) */
	XENIF_DOM_SHUTDOWN,  /* shut down for another reason (crash, ...) */
};

struct xenif_ops {
	const char *name;
	void (*close)(struct xenif *x);

	/* xenstore: absolute paths; *val is malloc'd and NUL-terminated,
	 * *len excludes the NUL (a value may hold a NUL before it). */
	int (*xs_read)(struct xenif *x, const char *path, char **val,
		       size_t *len);
	int (*xs_write)(struct xenif *x, const char *path, const char *val);
	int (*xs_rm)(struct xenif *x, const char *path);
	int (*xs_watch)(struct xenif *x, const char *path, const char *token);
	int (*xs_unwatch)(struct xenif *x, const char *path, const char *token);
	int (*xs_fd)(struct xenif *x);
	/* One fired watch, path and token malloc'd; -EAGAIN when none. */
	int (*xs_watch_read)(struct xenif *x, char **path, char **token);
	/* The children of path: *names is ONE malloc'd block holding the
	 * array and the strings (free(*names) frees all), *n entries. */
	int (*xs_directory)(struct xenif *x, const char *path, char ***names,
			    unsigned int *n);

	/* Maps `count` grant refs of `domid` read-write at one contiguous
	 * address; unmap takes that address and the same count. */
	int (*gnt_map)(struct xenif *x, uint32_t domid, uint32_t count,
		       const uint32_t *refs, void **addr);
	int (*gnt_unmap)(struct xenif *x, void *addr, uint32_t count);

	/* Event channels: bind the peer's unbound port, get a local one. */
	int (*evtchn_bind)(struct xenif *x, uint32_t domid,
			   uint32_t remote_port, uint32_t *local_port);
	int (*evtchn_unbind)(struct xenif *x, uint32_t local_port);
	int (*evtchn_notify)(struct xenif *x, uint32_t local_port);
	int (*evtchn_fd)(struct xenif *x);
	/* A port that fired (it stays masked until unmask); -EAGAIN when
	 * none. */
	int (*evtchn_pending)(struct xenif *x, uint32_t *port);
	int (*evtchn_unmask)(struct xenif *x, uint32_t port);

	/* ---- what a frontend needs ---- */
	/* Shares `count` fresh zeroed pages with `domid`, which may write
	 * them: refs[i] names page i, *addr is our contiguous mapping of
	 * all of them.  unshare takes that address and the same count. */
	int (*gnt_share)(struct xenif *x, uint32_t domid, uint32_t count,
			 uint32_t *refs, void **addr);
	int (*gnt_unshare)(struct xenif *x, void *addr, uint32_t count);
	/* A fresh local port that `domid` may bind (evtchn_bind there);
	 * pending/unmask/notify/unbind then work on it as on a bound one. */
	int (*evtchn_alloc_unbound)(struct xenif *x, uint32_t domid,
				    uint32_t *local_port);
	/* The id of the domain we run in. */
	int (*self_domid)(struct xenif *x, uint32_t *domid);
	/* Optional (NULL, or -ENOSYS without the privileged interface):
	 * domain domid's run state as Xen's domain info says; -ENOENT when
	 * it is gone. */
	int (*domain_state)(struct xenif *x, uint32_t domid,
			    enum xenif_domain_state *state);
};

/* An implementation embeds this first in its own handle. */
struct xenif {
	const struct xenif_ops *ops;
};

/* The real one (xen_real.c): 0 or -errno, *out freed with xenif_close. */
int xen_real_open(struct xenif **out);
/* Loads the Xen libraries (dlopen; xen_real_open does it too): 0, or
 * -ENOENT with the reason logged.  Before a sandbox hides them. */
int xen_real_load(void);

/* The domain we run in; 0 (dom0) when xenstore has no "domid" for us. */
static inline uint32_t xenif_self_domid(struct xenif *x)
{
	uint32_t id = 0;

	if (x->ops->self_domid(x, &id))
		id = 0;
	return id;
}

static inline void xenif_close(struct xenif *x)
{
	if (x)
		x->ops->close(x);
}

#endif
