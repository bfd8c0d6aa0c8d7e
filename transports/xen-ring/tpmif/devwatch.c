/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * devwatch: the vTPM devices below /local/domain/B/backend/vtpm.  See
 * devwatch.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tpmif/devwatch.h"
#include "lib/hex.h"

#define TOKEN "vtpm-devwatch"
/* Domain ids above this are reserved (DOMID_FIRST_RESERVED - 1). */
#define MAX_DOMID 0x7fefu
#define MAX_DEVID 0xffffu

static bool parse_id(const char *s, uint32_t max, uint32_t *out)
{
	return dec_parse_u32(s, strlen(s), max, out) == 0;
}

static int read_uuid(struct devwatch *w, uint32_t fe, uint32_t dev,
		     uint8_t uuid[16])
{
	char path[128], *v = NULL;
	size_t len = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/%u/%u/uuid", w->base, fe, dev);
	rc = w->xif->ops->xs_read(w->xif, path, &v, &len);
	if (rc)
		return rc;
	rc = uuid_parse(v, len, uuid) ? -EINVAL : 0;
	if (rc)
		log_warnx_rl(&w->rl, "xen: %s is not a UUID (\"%.40s\"); "
			     "device ignored", path, v);
	free(v);
	return rc;
}

static struct devwatch_dev *find(struct devwatch_dev *v, unsigned int n,
				 const struct devwatch_dev *d)
{
	for (unsigned int i = 0; i < n; i++)
		if (v[i].fe_domid == d->fe_domid && v[i].devid == d->devid &&
		    memcmp(v[i].uuid, d->uuid, 16) == 0)
			return &v[i];
	return NULL;
}

/* The devices there now; -errno only when the scan itself failed. */
static int scan(struct devwatch *w, struct devwatch_dev **out, unsigned int *nout)
{
	char **doms = NULL;
	unsigned int ndoms = 0, n = 0;
	struct devwatch_dev *v;
	bool full = false;
	int rc;

	*out = NULL;
	*nout = 0;
	rc = w->xif->ops->xs_directory(w->xif, w->base, &doms, &ndoms);
	if (rc == -ENOENT)
		return 0; /* no vtpm device yet */
	if (rc)
		return rc;
	v = calloc(DEVWATCH_MAX_DEVICES, sizeof(*v));
	if (!v) {
		free(doms);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < ndoms; i++) {
		char path[128], **devs = NULL;
		unsigned int ndevs = 0;
		uint32_t fe;

		if (!parse_id(doms[i], MAX_DOMID, &fe)) {
			log_warnx_rl(&w->rl, "xen: %s/%.20s is not a domain "
				     "id; ignored", w->base, doms[i]);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%u", w->base, fe);
		if (w->xif->ops->xs_directory(w->xif, path, &devs, &ndevs))
			continue; /* gone meanwhile */
		for (unsigned int j = 0; j < ndevs; j++) {
			struct devwatch_dev d;

			memset(&d, 0, sizeof(d));
			d.fe_domid = fe;
			if (!parse_id(devs[j], MAX_DEVID, &d.devid)) {
				log_warnx_rl(&w->rl, "xen: %s/%.20s is not a "
					     "device id; ignored", path, devs[j]);
				continue;
			}
			/* No uuid yet: the toolstack is still writing. */
			if (read_uuid(w, fe, d.devid, d.uuid))
				continue;
			if (n == DEVWATCH_MAX_DEVICES) {
				full = true;
				break;
			}
			v[n++] = d;
		}
		free(devs);
		if (full) {
			log_warnx_rl(&w->rl, "xen: more than %u vtpm devices; "
				     "the rest are ignored",
				     DEVWATCH_MAX_DEVICES);
			break;
		}
	}
	free(doms);
	*out = v;
	*nout = n;
	return 0;
}

void devwatch_rescan(struct devwatch *w)
{
	struct devwatch_dev *now;
	unsigned int n;
	int rc;

	if (w->stopping)
		return;
	rc = scan(w, &now, &n);
	if (rc) {
		log_warnx_rl(&w->rl, "xen: cannot list %s: %s", w->base,
			     strerror(-rc));
		return;
	}
	w->rescans++;
	/* Removals first: a rebooted guest's old device stops before the
	 * same vTPM is started for its new domain. */
	for (unsigned int i = 0; i < w->ndevs; i++)
		if (!find(now, n, &w->devs[i]) && w->ops->removed)
			w->ops->removed(w, &w->devs[i]);
	for (unsigned int i = 0; i < n; i++)
		if (!find(w->devs, w->ndevs, &now[i]) && w->ops->added)
			w->ops->added(w, &now[i]);
	free(w->devs);
	w->devs = now;
	w->ndevs = n;
}

static void settle_cb(uv_timer_t *t)
{
	devwatch_rescan(t->data);
}

/* Our watch fired (xenloop drained the events): rescan once they settle. */
static void io_watch(struct xenloop *xl)
{
	struct devwatch *w = xl->owner;

	if (!w->stopping && !uv_is_active((uv_handle_t *)&w->timer))
		uv_timer_start(&w->timer, settle_cb, DEVWATCH_SETTLE_MS, 0);
}

static void one_closed(struct devwatch *w);

static void io_closed(struct xenloop *xl)
{
	one_closed(xl->owner);
}

/* The xenstore side only: no event channel. */
static const struct xenloop_ops io_ops = {
	.watch = io_watch,
	.closed = io_closed,
};

int devwatch_start(struct devwatch *w, uv_loop_t *loop, struct xenif *xif,
		   uint32_t backend_domid, const struct devwatch_ops *ops,
		   void *data)
{
	int rc;

	memset(w, 0, sizeof(*w));
	w->loop = loop;
	w->xif = xif;
	w->ops = ops;
	w->data = data;
	if (backend_domid > MAX_DOMID)
		return -EINVAL;
	snprintf(w->base, sizeof(w->base), "/local/domain/%u/backend/vtpm",
		 backend_domid);
	xenloop_init(&w->io, loop, xif, &io_ops, w, "xen", &w->rl, 0, 0, 0,
		     NULL);
	w->io.token = TOKEN;
	rc = xif->ops->xs_watch(xif, w->base, TOKEN);
	if (rc)
		return rc;
	rc = xenloop_start(&w->io);
	if (rc) {
		xif->ops->xs_unwatch(xif, w->base, TOKEN);
		return rc;
	}
	uv_timer_init(loop, &w->timer);
	w->timer.data = w;
	w->open_handles = 2; /* the timer and the xenloop */
	/* The devices that are already there. */
	devwatch_rescan(w);
	return 0;
}

static void one_closed(struct devwatch *w)
{
	if (--w->open_handles == 0) {
		free(w->devs);
		w->devs = NULL;
		w->ndevs = 0;
		if (w->stopped)
			w->stopped(w);
	}
}

static void timer_closed(uv_handle_t *h)
{
	one_closed(h->data);
}

void devwatch_stop(struct devwatch *w, void (*done)(struct devwatch *w))
{
	if (w->stopping)
		return;
	w->stopping = true;
	w->stopped = done;
	w->xif->ops->xs_unwatch(w->xif, w->base, TOKEN);
	xenloop_close(&w->io);
	uv_close((uv_handle_t *)&w->timer, timer_closed);
}
