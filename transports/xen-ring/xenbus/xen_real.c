/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * xenif on the real Xen libraries: libxenstore, libxengnttab (grant
 * mapping, and xengntshr for sharing) and libxenevtchn.  Each call is one
 * library call turned into 0/-errno.
 *
 * None of them is linked: each is loaded with dlopen, by the SONAME the
 * build saw, when the first Xen interface opens (xen_real_load, before
 * the sandbox hides the file system).  A vTPM on a UNIX socket maps none
 * of them.  libxenctrl (why a domain shut down: save/restore) and its five
 * dependencies cost about 170 KiB of private memory per instance; the
 * three others and their two dependencies about 0.4 ms of every start
 * (an empty program linked with the vTPM's ten libraries starts in
 * 1.74-2.03 ms here, with libtpms, libcrypto and libuv alone in
 * 1.39-1.45 ms), and their relocations.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <xenctrl.h>
#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>
#include <xen/sched.h>
#include <xen/xen.h>

#include "lib/hex.h"
#include "lib/log.h"
#include "xenbus/xenif.h"

struct xen_real {
	struct xenif xif;
	struct xs_handle *xs;
	xengnttab_handle *gnt;
	xengntshr_handle *gsh; /* opened on first share: a backend needs none */
	xenevtchn_handle *evt;
	xc_interface *xc; /* domain info; NULL where this domain has none */
};

/* The calls on xenstore, grant tables and event channels, each with the
 * type its header declares, resolved once per process. */
#define XL_CALLS(X)                                                       \
	X(XS, xs_open) X(XS, xs_close) X(XS, xs_read) X(XS, xs_write)      \
	X(XS, xs_rm) X(XS, xs_watch) X(XS, xs_unwatch) X(XS, xs_fileno)    \
	X(XS, xs_check_watch) X(XS, xs_directory)                          \
	X(GNT, xengnttab_open) X(GNT, xengnttab_close)                     \
	X(GNT, xengnttab_map_domain_grant_refs) X(GNT, xengnttab_unmap)    \
	X(GNT, xengntshr_open) X(GNT, xengntshr_close)                     \
	X(GNT, xengntshr_share_pages) X(GNT, xengntshr_unshare)            \
	X(EVT, xenevtchn_open) X(EVT, xenevtchn_close)                     \
	X(EVT, xenevtchn_fd) X(EVT, xenevtchn_bind_interdomain)            \
	X(EVT, xenevtchn_bind_unbound_port) X(EVT, xenevtchn_unbind)       \
	X(EVT, xenevtchn_notify) X(EVT, xenevtchn_pending)                 \
	X(EVT, xenevtchn_unmask)

enum { XS, GNT, EVT, XL_NLIBS };

static const char *const xl_sonames[XL_NLIBS] = {
	VTPM_XENSTORE_SONAME, VTPM_XENGNTTAB_SONAME, VTPM_XENEVTCHN_SONAME,
};

#define XL_SLOT(lib, fn) __typeof__(fn) *fn;
static struct {
	bool tried;
	int err;
	void *dl[XL_NLIBS];
	XL_CALLS(XL_SLOT)
} xl;
#undef XL_SLOT

int xen_real_load(void)
{
	if (xl.tried)
		return xl.err;
	xl.tried = true;
	for (int i = 0; i < XL_NLIBS; i++) {
		/* Kept for the life of the process: handles live as long. */
		xl.dl[i] = dlopen(xl_sonames[i], RTLD_NOW | RTLD_LOCAL);
		if (!xl.dl[i]) {
			log_warnx("xen: cannot load %s: %s", xl_sonames[i],
				  dlerror());
			return xl.err = -ENOENT;
		}
	}
#define XL_SYM(lib, fn)                                                   \
	*(void **)&xl.fn = dlsym(xl.dl[lib], #fn);                         \
	if (!xl.fn) {                                                      \
		log_warnx("xen: %s has no %s", xl_sonames[lib], #fn);      \
		return xl.err = -ENOENT;                                   \
	}
	XL_CALLS(XL_SYM)
#undef XL_SYM
	return 0;
}

/* The four libxenctrl/libxentoollog calls, resolved once per process. */
static struct {
	bool tried;
	void *dl;
	xc_interface *(*open)(xentoollog_logger *, xentoollog_logger *,
			      unsigned int);
	int (*close)(xc_interface *);
	int (*getinfolist)(xc_interface *, uint32_t, unsigned int,
			   xc_domaininfo_t *);
	xentoollog_logger_stdiostream *(*logger)(FILE *, xentoollog_level,
						 unsigned int);
} xcl;

/* Loads libxenctrl (its SONAME, VTPM_XENCTRL_SONAME, from the build).
 * False, with the reason logged by the caller's fallback, where it
 * cannot: domain info is optional. */
static bool xcl_load(void)
{
	if (xcl.tried)
		return xcl.dl != NULL;
	xcl.tried = true;
	xcl.dl = dlopen(VTPM_XENCTRL_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!xcl.dl)
		return false;
	/* dlsym on the handle also searches its dependencies
	 * (libxentoollog for the logger). */
	*(void **)&xcl.open = dlsym(xcl.dl, "xc_interface_open");
	*(void **)&xcl.close = dlsym(xcl.dl, "xc_interface_close");
	*(void **)&xcl.getinfolist = dlsym(xcl.dl, "xc_domain_getinfolist");
	*(void **)&xcl.logger = dlsym(xcl.dl, "xtl_createlogger_stdiostream");
	if (!xcl.open || !xcl.close || !xcl.getinfolist || !xcl.logger) {
		dlclose(xcl.dl);
		xcl.dl = NULL;
		return false;
	}
	return true;
}

static struct xen_real *xr(struct xenif *x)
{
	return (struct xen_real *)x;
}

static int neg_errno(void)
{
	return errno ? -errno : -EIO;
}

static void xr_close(struct xenif *x)
{
	struct xen_real *r = xr(x);

	if (r->evt)
		xl.xenevtchn_close(r->evt);
	if (r->gsh)
		xl.xengntshr_close(r->gsh);
	if (r->gnt)
		xl.xengnttab_close(r->gnt);
	if (r->xs)
		xl.xs_close(r->xs);
	if (r->xc)
		xcl.close(r->xc);
	free(r);
}

static int xr_xs_read(struct xenif *x, const char *path, char **val,
		      size_t *len)
{
	unsigned int n = 0;
	char *v, *out;

	errno = 0;
	v = xl.xs_read(xr(x)->xs, XBT_NULL, path, &n);
	if (!v)
		return neg_errno();
	/* libxenstore NUL-terminates, but say so here rather than trust it. */
	out = malloc((size_t)n + 1);
	if (!out) {
		free(v);
		return -ENOMEM;
	}
	memcpy(out, v, n);
	out[n] = '\0';
	free(v);
	*val = out;
	if (len)
		*len = n;
	return 0;
}

static int xr_xs_write(struct xenif *x, const char *path, const char *val)
{
	errno = 0;
	if (!xl.xs_write(xr(x)->xs, XBT_NULL, path, val,
		      (unsigned int)strlen(val)))
		return neg_errno();
	return 0;
}

static int xr_xs_rm(struct xenif *x, const char *path)
{
	errno = 0;
	if (!xl.xs_rm(xr(x)->xs, XBT_NULL, path))
		return neg_errno();
	return 0;
}

static int xr_xs_watch(struct xenif *x, const char *path, const char *token)
{
	errno = 0;
	if (!xl.xs_watch(xr(x)->xs, path, token))
		return neg_errno();
	return 0;
}

static int xr_xs_unwatch(struct xenif *x, const char *path, const char *token)
{
	errno = 0;
	if (!xl.xs_unwatch(xr(x)->xs, path, token))
		return neg_errno();
	return 0;
}

static int xr_xs_fd(struct xenif *x)
{
	int fd = xl.xs_fileno(xr(x)->xs);

	return fd < 0 ? neg_errno() : fd;
}

static int xr_xs_watch_read(struct xenif *x, char **path, char **token)
{
	char **vec;

	errno = 0;
	vec = xl.xs_check_watch(xr(x)->xs);
	if (!vec)
		return errno == EAGAIN || errno == 0 ? -EAGAIN : -errno;
	*path = strdup(vec[XS_WATCH_PATH]);
	*token = strdup(vec[XS_WATCH_TOKEN]);
	free(vec);
	if (!*path || !*token) {
		free(*path);
		free(*token);
		return -ENOMEM;
	}
	return 0;
}

static int xr_xs_directory(struct xenif *x, const char *path, char ***names,
			   unsigned int *n)
{
	char **v;

	errno = 0;
	*n = 0;
	/* libxenstore returns one block: the array, then the strings. */
	v = xl.xs_directory(xr(x)->xs, XBT_NULL, path, n);
	if (!v)
		return neg_errno();
	*names = v;
	return 0;
}

static int xr_gnt_map(struct xenif *x, uint32_t domid, uint32_t count,
		      const uint32_t *refs, void **addr)
{
	void *p;

	errno = 0;
	p = xl.xengnttab_map_domain_grant_refs(
	    xr(x)->gnt, count, domid, (uint32_t *)refs, PROT_READ | PROT_WRITE);
	if (!p)
		return neg_errno();
	*addr = p;
	return 0;
}

static int xr_gnt_unmap(struct xenif *x, void *addr, uint32_t count)
{
	int rc = xl.xengnttab_unmap(xr(x)->gnt, addr, count);

	return rc < 0 ? neg_errno() : 0;
}

static int xr_evtchn_bind(struct xenif *x, uint32_t domid, uint32_t remote_port,
			  uint32_t *local_port)
{
	xenevtchn_port_or_error_t p;

	errno = 0;
	p = xl.xenevtchn_bind_interdomain(xr(x)->evt, domid, remote_port);
	if (p < 0)
		return neg_errno();
	*local_port = (uint32_t)p;
	return 0;
}

static int xr_evtchn_unbind(struct xenif *x, uint32_t port)
{
	return xl.xenevtchn_unbind(xr(x)->evt, port) < 0 ? neg_errno() : 0;
}

static int xr_evtchn_notify(struct xenif *x, uint32_t port)
{
	return xl.xenevtchn_notify(xr(x)->evt, port) < 0 ? neg_errno() : 0;
}

static int xr_evtchn_fd(struct xenif *x)
{
	int fd = xl.xenevtchn_fd(xr(x)->evt);

	return fd < 0 ? neg_errno() : fd;
}

static int xr_evtchn_pending(struct xenif *x, uint32_t *port)
{
	xenevtchn_port_or_error_t p;

	errno = 0;
	p = xl.xenevtchn_pending(xr(x)->evt);
	if (p < 0)
		return errno == EAGAIN || errno == 0 ? -EAGAIN : -errno;
	*port = (uint32_t)p;
	return 0;
}

static int xr_evtchn_unmask(struct xenif *x, uint32_t port)
{
	return xl.xenevtchn_unmask(xr(x)->evt, port) < 0 ? neg_errno() : 0;
}

static int xr_gnt_share(struct xenif *x, uint32_t domid, uint32_t count,
			uint32_t *refs, void **addr)
{
	struct xen_real *r = xr(x);
	void *p;

	if (count == 0 || count > 64)
		return -EINVAL;
	if (!r->gsh) {
		/* /dev/xen/gntalloc: the frontend side of grants. */
		errno = 0;
		r->gsh = xl.xengntshr_open(NULL, 0);
		if (!r->gsh)
			return neg_errno();
	}
	errno = 0;
	p = xl.xengntshr_share_pages(r->gsh, domid, (int)count, refs, 1);
	if (!p)
		return neg_errno();
	*addr = p;
	return 0;
}

static int xr_gnt_unshare(struct xenif *x, void *addr, uint32_t count)
{
	struct xen_real *r = xr(x);

	if (!r->gsh)
		return -EINVAL;
	errno = 0;
	return xl.xengntshr_unshare(r->gsh, addr, count) < 0 ? neg_errno() : 0;
}

static int xr_evtchn_alloc_unbound(struct xenif *x, uint32_t domid,
				   uint32_t *local_port)
{
	xenevtchn_port_or_error_t p;

	errno = 0;
	p = xl.xenevtchn_bind_unbound_port(xr(x)->evt, domid);
	if (p < 0)
		return neg_errno();
	*local_port = (uint32_t)p;
	return 0;
}

/* A relative path is our own /local/domain/<id>: "domid" is there in
 * every domain, dom0 included. */
static int xr_self_domid(struct xenif *x, uint32_t *domid)
{
	char *v = NULL;
	size_t len = 0;
	int rc;

	rc = xr_xs_read(x, "domid", &v, &len);
	if (rc == 0)
		rc = dec_parse_u32(v, len, DOMID_FIRST_RESERVED - 1, domid);
	free(v);
	return rc;
}

static int xr_domain_state(struct xenif *x, uint32_t domid,
			   enum xenif_domain_state *state)
{
	struct xen_real *r = xr(x);
	xc_domaininfo_t info;
	unsigned int why;
	int n;

	if (!r->xc)
		return -ENOSYS;
	errno = 0;
	/* The first domain at or above domid: none at all (domid was the
	 * newest and is gone) or another one means domid is gone. */
	n = xcl.getinfolist(r->xc, domid, 1, &info);
	if (n < 0)
		return neg_errno();
	if (n == 0 || info.domain != domid)
		return -ENOENT;
	why = (info.flags >> XEN_DOMINF_shutdownshift) &
	      XEN_DOMINF_shutdownmask;
	if (info.flags & XEN_DOMINF_shutdown)
		*state = why == SHUTDOWN_suspend ? XENIF_DOM_SUSPENDED
						 : XENIF_DOM_SHUTDOWN;
	else
		*state = info.flags & XEN_DOMINF_paused ? XENIF_DOM_PAUSED
							: XENIF_DOM_RUNNING;
	return 0;
}

static const struct xenif_ops xen_real_ops = {
    .name = "xen",
    .close = xr_close,
    .xs_read = xr_xs_read,
    .xs_write = xr_xs_write,
    .xs_rm = xr_xs_rm,
    .xs_watch = xr_xs_watch,
    .xs_unwatch = xr_xs_unwatch,
    .xs_fd = xr_xs_fd,
    .xs_watch_read = xr_xs_watch_read,
    .xs_directory = xr_xs_directory,
    .gnt_map = xr_gnt_map,
    .gnt_unmap = xr_gnt_unmap,
    .evtchn_bind = xr_evtchn_bind,
    .evtchn_unbind = xr_evtchn_unbind,
    .evtchn_notify = xr_evtchn_notify,
    .evtchn_fd = xr_evtchn_fd,
    .evtchn_pending = xr_evtchn_pending,
    .evtchn_unmask = xr_evtchn_unmask,
    .gnt_share = xr_gnt_share,
    .gnt_unshare = xr_gnt_unshare,
    .evtchn_alloc_unbound = xr_evtchn_alloc_unbound,
    .self_domid = xr_self_domid,
    .domain_state = xr_domain_state,
};

/* One for the process: only what libxenctrl calls critical. */
static xentoollog_logger *quiet_logger(void)
{
	static xentoollog_logger_stdiostream *l;

	if (!l)
		l = xcl.logger(stderr, XTL_CRITICAL, 0);
	return (xentoollog_logger *)l;
}

int xen_real_open(struct xenif **out)
{
	struct xen_real *r = calloc(1, sizeof(*r));
	int fd, fl, rc;

	if (!r)
		return -ENOMEM;
	rc = xen_real_load();
	if (rc) {
		free(r);
		return rc;
	}
	r->xif.ops = &xen_real_ops;
	/* No stale event for a watch once xs_unwatch has returned. */
	errno = 0;
	r->xs = xl.xs_open(XS_UNWATCH_FILTER);
	if (!r->xs)
		goto fail;
	errno = 0;
	r->gnt = xl.xengnttab_open(NULL, 0);
	if (!r->gnt)
		goto fail;
	errno = 0;
	r->evt = xl.xenevtchn_open(NULL, 0);
	if (!r->evt)
		goto fail;
	/* Domain info (why a domain shut down) needs the privileged
	 * interface: dom0 has it, a driver domain may not.  Optional. */
	if (xcl_load())
		r->xc = xcl.open(quiet_logger(), quiet_logger(), 0);
	/* The loop drains pending ports until EAGAIN: never block there. */
	fd = xl.xenevtchn_fd(r->evt);
	fl = fd < 0 ? -1 : fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		goto fail;
	*out = &r->xif;
	return 0;
fail:
	rc = neg_errno();
	xr_close(&r->xif);
	return rc;
}
