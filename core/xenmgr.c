/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager on a Xen host: one xen-ring instance per vtpm device the
 * toolstack gives this domain (backend/vtpm/<F>/<D>), started when the
 * device appears and stopped when it goes away.  The vTPM is the one the
 * device's `uuid` node names (the toolstack wrote it from the guest's
 * xl.cfg); nothing the guest writes chooses it.  A UUID the manager does
 * not know is refused, or created with --xen-unknown=create.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "devwatch.h"
#include "keystore.h"
#include "log.h"
#include "manager.h"
#include "tpmback.h"

struct mgr_xen {
	struct manager *m;
	struct xenif *xif;
	struct devwatch dw;
	uint32_t self;
	bool running;
};

static void serve(struct manager *m, struct vtpm_entry *e,
		  const struct devwatch_dev *d)
{
	e->xen = true;
	e->xen_fe = d->fe_domid;
	e->xen_dev = d->devid;
	e->domid = d->fe_domid;
	e->autostart = true;
	e->backoff_ms = 0;
	switch (e->state) {
	case CHILD_RUNNING:
		/* Still serving the guest's previous domain (a reboot makes
		 * a new domain): restart for this one. */
		e->xen_restart = true;
		sup_stop(e);
		break;
	case CHILD_STOPPING:
		e->xen_restart = true;
		break;
	case CHILD_BACKOFF:
		sup_stop(e); /* cancels the timer: start now */
		/* fall through */
	case CHILD_STOPPED:
		if (sup_start(e) < 0)
			log_warnx("vTPM %s: cannot start an instance for "
				  "domain %u", e->uuid_str, d->fe_domid);
		break;
	}
	(void)m;
}

struct create_ticket {
	struct vtpm_entry *e;
	struct devwatch_dev d;
};

static void created(struct manager *m, int rc, void *arg)
{
	struct create_ticket *t = arg;
	struct mgr_xen *x = m->xen;

	if (rc) {
		log_warnx("vTPM %s: cannot commit the key store; domain %u's "
			  "device is not served", t->e->uuid_str, t->d.fe_domid);
	} else if (x && x->running && !m->stopping) {
		/* Still there? */
		for (unsigned int i = 0; i < x->dw.ndevs; i++)
			if (x->dw.devs[i].fe_domid == t->d.fe_domid &&
			    x->dw.devs[i].devid == t->d.devid &&
			    memcmp(x->dw.devs[i].uuid, t->e->uuid, 16) == 0) {
				serve(m, t->e, &t->d);
				break;
			}
	}
	free(t);
}

static void dev_added(struct devwatch *w, const struct devwatch_dev *d)
{
	struct mgr_xen *x = w->data;
	struct manager *m = x->m;
	struct vtpm_entry *e = mgr_entry_find(m, d->uuid);
	char us[37];

	config_format_uuid(d->uuid, us);
	if (m->stopping)
		return;
	if (!e) {
		struct create_ticket *t;
		int rc;

		if (!m->cfg->xen_create_unknown) {
			log_warnx("xen: domain %u vtpm %u names vTPM %s, which "
				  "this manager does not know: refused (create "
				  "it with `vtpmctl create --uuid %s`, or set "
				  "xen-unknown=create)",
				  d->fe_domid, d->devid, us, us);
			return;
		}
		rc = mgr_entry_new(m, d->uuid, 2, &e);
		if (rc) {
			log_warnx("xen: domain %u vtpm %u: cannot create vTPM "
				  "%s: %s", d->fe_domid, d->devid, us,
				  keystore_strerror(rc));
			return;
		}
		log_info("xen: domain %u vtpm %u: created vTPM %s "
			 "(xen-unknown=create)", d->fe_domid, d->devid, us);
		t = malloc(sizeof(*t));
		if (!t)
			fatalx("out of memory");
		t->e = e;
		t->d = *d;
		/* A new key: bound to the counter before it is used. */
		mgr_commit(m, true, created, t);
		return;
	}
	if (e->xen && (e->xen_fe != d->fe_domid || e->xen_dev != d->devid)) {
		log_warnx("xen: domain %u vtpm %u names vTPM %s, which already "
			  "serves domain %u vtpm %u: refused (one vTPM, one "
			  "device)", d->fe_domid, d->devid, us, e->xen_fe,
			  e->xen_dev);
		return;
	}
	if (!e->xen && (e->state == CHILD_RUNNING || e->state == CHILD_BACKOFF ||
			e->state == CHILD_STOPPING)) {
		log_warnx("xen: domain %u vtpm %u names vTPM %s, which runs on "
			  "%s: refused (`vtpmctl stop %s` first)",
			  d->fe_domid, d->devid, us,
			  e->transport[0] ? e->transport : "its UNIX socket", us);
		return;
	}
	log_info("xen: domain %u vtpm %u: serving vTPM %s", d->fe_domid,
		 d->devid, us);
	serve(m, e, d);
}

static void dev_removed(struct devwatch *w, const struct devwatch_dev *d)
{
	struct mgr_xen *x = w->data;
	struct vtpm_entry *e = mgr_entry_find(x->m, d->uuid);

	if (!e || !e->xen || e->xen_fe != d->fe_domid || e->xen_dev != d->devid)
		return;
	log_info("xen: domain %u vtpm %u is gone: stopping vTPM %s",
		 d->fe_domid, d->devid, e->uuid_str);
	e->xen = false;
	e->xen_restart = false;
	e->autostart = false;
	sup_stop(e);
}

static const struct devwatch_ops dw_ops = {
	.added = dev_added,
	.removed = dev_removed,
};

/* Is this a Xen domain with xenstore reachable? */
static bool xen_present(void)
{
	return access("/dev/xen/xenbus", F_OK) == 0 ||
	       access("/proc/xen/xenbus", F_OK) == 0 ||
	       access("/run/xenstored/socket", F_OK) == 0 ||
	       access("/var/run/xenstored/socket", F_OK) == 0;
}

static uint32_t own_domid(struct xenif *xif)
{
	char *v = NULL;
	size_t len = 0;
	uint32_t id = 0;

	if (xif->ops->xs_read(xif, "domid", &v, &len) == 0) {
		if (tpmback_parse_u32(v, len, 0x7fef, &id))
			id = 0;
		free(v);
	}
	return id;
}

int mgr_xen_start(struct manager *m)
{
	struct mgr_xen *x;
	int rc;

	if (m->cfg->xen == XEN_OFF ||
	    (m->cfg->xen == XEN_AUTO && !xen_present()))
		return 0;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->m = m;
	rc = xen_real_open(&x->xif);
	if (rc) {
		log_warnx("xen: cannot open xenstore, grant table or event "
			  "channels: %s%s", strerror(-rc),
			  m->cfg->xen == XEN_AUTO ? "; not serving Xen guests" : "");
		free(x);
		return m->cfg->xen == XEN_ON ? rc : 0;
	}
	x->self = own_domid(x->xif);
	m->xen = x;
	rc = devwatch_start(&x->dw, m->loop, x->xif, x->self, &dw_ops, x);
	if (rc) {
		log_warnx("xen: cannot watch /local/domain/%u/backend/vtpm: %s",
			  x->self, strerror(-rc));
		m->xen = NULL;
		xenif_close(x->xif);
		free(x);
		return m->cfg->xen == XEN_ON ? rc : 0;
	}
	x->running = true;
	log_info("xen: serving the vtpm devices of domain %u "
		 "(/local/domain/%u/backend/vtpm; unknown UUIDs %s)", x->self,
		 x->self, m->cfg->xen_create_unknown ? "are created" : "refused");
	return 0;
}

static void dw_stopped(struct devwatch *w)
{
	struct mgr_xen *x = w->data;

	xenif_close(x->xif);
	x->m->xen = NULL;
	free(x);
}

void mgr_xen_stop(struct manager *m)
{
	struct mgr_xen *x = m->xen;

	if (!x || !x->running)
		return;
	x->running = false;
	devwatch_stop(&x->dw, dw_stopped);
}
