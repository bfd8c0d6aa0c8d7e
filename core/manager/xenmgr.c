/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager on a Xen host: one xen-ring instance per vtpm device the
 * toolstack gives this domain (backend/vtpm/<F>/<D>), started when the
 * device appears and stopped when it goes away.  The vTPM is the one the
 * device's `uuid` node names (the toolstack wrote it from the guest's
 * xl.cfg); nothing the guest writes chooses it.  A UUID the manager does
 * not know is refused, or created with --xen-unknown=create.
 *
 * An instance in its own domain (an instance domain, the three-domain
 * chain) reaches us on the ring of its own vtpm device, and cannot read
 * what Xen save/restore needs about the guest it serves: that guest's Xen
 * UUID and run state.  It asks (XEN_PEER, XEN_PEER_STATE); we answer only
 * about a domain whose vtpm device in that instance domain names the
 * ring's vTPM, and remember it for the run state asked after its device
 * is gone.  An @releaseDomain watch records the shutdown of such a domain
 * as it happens: xl save destroys the domain right after its devices are
 * removed, often before the instance's question arrives.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/config.h"
#include "lib/hex.h"
#include "tpmif/devwatch.h"
#include "proto/keystore.h"
#include "lib/log.h"
#include "manager/link.h"
#include "manager/manager.h"
#include "manager/xenmgr.h"
#include "proto/mgrproto.h"
#include "proto/resumetag.h"
#include "tpmif/tpmback.h"
#include "xenbus/xenloop.h"

#define RELEASE_TOKEN "vtpm-mgr-release"

struct mgr_xen {
	struct manager *m;
	struct xenif *xif;
	struct devwatch dw;
	uint32_t self;
	bool running;
	/* @releaseDomain (fires when a domain shuts down or dies), on a
	 * connection of its own; the run states of ring peers. */
	struct xenif *rxif;
	struct xenloop rloop;
	struct log_ratelimit rl;
	int closing; /* the devwatch and the release watch, while stopping */
};

static void serve(struct manager *m, struct vtpm_entry *e,
		  const struct devwatch_dev *d)
{
	e->xd.active = true;
	e->xd.fe = d->fe_domid;
	e->xd.dev = d->devid;
	e->rec.domid = d->fe_domid;
	e->rec.autostart = true;
	e->child.backoff_ms = 0;
	switch (e->child.state) {
	case CHILD_RUNNING:
		/* Still serving the guest's previous domain (a reboot makes
		 * a new domain): restart for this one. */
		e->xd.restart = true;
		sup_stop(e);
		break;
	case CHILD_STOPPING:
		e->xd.restart = true;
		break;
	case CHILD_BACKOFF:
		sup_stop(e); /* cancels the timer: start now */
		/* fall through */
	case CHILD_STOPPED:
		if (sup_start(e) < 0)
			log_warnx("vTPM %s: cannot start an instance for "
				  "domain %u", e->rec.uuid_str, d->fe_domid);
		break;
	}
	(void)m;
}

/* The supervisor reported e's instance stopped and reaped. */
void mgr_xen_child_stopped(struct vtpm_entry *e)
{
	if (!e->xd.restart)
		return;
	e->xd.restart = false;
	if (!e->rec.autostart || e->m->stopping)
		return;
	/* It served the guest's previous domain: now the new one. */
	log_info("vTPM %s: instance for the previous domain stopped; "
		 "starting one for domain %u", e->rec.uuid_str, e->xd.fe);
	if (sup_start(e) < 0)
		log_warnx("vTPM %s: cannot start an instance for domain %u",
			  e->rec.uuid_str, e->xd.fe);
}

/* ---- an instance in its own domain: the manager protocol on a ring ---- */

/* The ring of the vtpm device whose backend we are: a connection of the
 * vTPM's link (link.h). */
struct mgr_ring {
	struct tpmback tb;
	struct xenif *xif;
	struct vtpm_entry *e;
	/* The guest the instance serves, verified at XEN_PEER: XEN_PEER_STATE
	 * is answered for it only. */
	struct mgr_xen_peer peer;
	struct log_ratelimit rl;
};

static void ring_submit(struct tpmback *tb, const uint8_t *cmd, uint32_t len,
			unsigned int locality)
{
	struct mgr_ring *r = tb->data;

	(void)locality;
	mgr_link_request(r->e, cmd, len);
}

static void ring_cancel(struct tpmback *tb)
{
	struct mgr_ring *r = tb->data;

	/* Whatever was being prepared answers nobody now. */
	mgr_link_reset(r->e);
	tpmback_complete(tb, NULL, 0);
}

static void ring_power_cycle(struct tpmback *tb)
{
	struct mgr_ring *r = tb->data;

	mgr_link_reset(r->e);
}

static const struct tpmback_ops ring_ops = {
	.submit = ring_submit,
	.cancel = ring_cancel,
	.power_cycle = ring_power_cycle,
};

static void ring_stopped(struct tpmback *tb)
{
	struct mgr_ring *r = tb->data;

	xenif_close(r->xif);
	free(r);
}

/* The link's connection ops: the answer goes onto the ring's page. */
static void ring_send(void *conn, const uint8_t *frame, size_t len)
{
	struct mgr_ring *r = conn;

	tpmback_complete(&r->tb, frame, (uint32_t)len);
}

static void ring_close(void *conn)
{
	struct mgr_ring *r = conn;

	if (r->tb.busy)
		tpmback_complete(&r->tb, NULL, 0);
	tpmback_stop(&r->tb, ring_stopped);
}

/* ---- what an instance domain may learn about the guest it serves ---- */

/* The run state of domain dom as Xen says, or -errno (-ENOENT: gone). */
static int peer_run_state(struct xenif *xif, uint32_t dom, uint8_t *st)
{
	enum xenif_domain_state ds;
	int rc;

	if (!xif->ops->domain_state)
		return -ENOSYS;
	rc = xif->ops->domain_state(xif, dom, &ds);
	if (rc)
		return rc;
	*st = ds == XENIF_DOM_SUSPENDED ? MGR_XEN_SUSPENDED
	      : ds == XENIF_DOM_SHUTDOWN ? MGR_XEN_SHUTDOWN
	      : ds == XENIF_DOM_PAUSED	 ? MGR_XEN_PAUSED
					 : MGR_XEN_RUNNING;
	return 0;
}

void mgr_xen_peer_note(struct xenif *xif, struct mgr_xen_peer *p)
{
	uint8_t st;

	if (p->have && peer_run_state(xif, p->dom, &st) == 0)
		p->seen = st;
}

/*
 * Does domain F's vtpm device D, whose backend is the instance domain I,
 * name the vTPM?  0; -EPERM: another vTPM; -ENOENT: no such device; or
 * another -errno (unreadable, malformed).
 */
static int peer_names(struct xenif *xif, uint32_t I, uint32_t F, uint32_t D,
		      const uint8_t uuid[16])
{
	char path[96], *v = NULL;
	uint8_t u[16];
	size_t n = 0;
	int rc;

	snprintf(path, sizeof(path), "/local/domain/%u/backend/vtpm/%u/%u/uuid",
		 I, F, D);
	rc = xif->ops->xs_read(xif, path, &v, &n);
	if (rc == 0 && uuid_parse(v, n, u) != 0)
		rc = -EINVAL;
	free(v);
	if (rc == 0 && memcmp(u, uuid, 16) != 0)
		rc = -EPERM;
	return rc;
}

static int peer_vm(struct xenif *xif, uint32_t F, uint8_t vm[16])
{
	char path[64], *v = NULL;
	size_t n = 0;
	int rc;

	snprintf(path, sizeof(path), "/local/domain/%u/vm", F);
	rc = xif->ops->xs_read(xif, path, &v, &n);
	if (rc == 0)
		rc = resumetag_parse_vm_path(v, n, vm);
	free(v);
	return rc;
}

void mgr_xen_peer_answer(struct xenif *xif, uint32_t I, const uint8_t uuid[16],
			 const char *uuid_str, struct mgr_xen_peer *p,
			 struct log_ratelimit *rl, const struct mgr_req *req,
			 struct mgr_rsp *rsp)
{
	uint32_t F = req->u.xen_peer.domid, D = req->u.xen_peer.devid;
	const char *why = NULL;
	char us[37];
	uint8_t st;
	int rc;

	rsp->type = req->type;
	rsp->status = MGR_FORBIDDEN;
	if (req->type == MGR_MSG_XEN_PEER) {
		rc = F == I ? -EPERM : peer_names(xif, I, F, D, uuid);
		if (rc == -EPERM)
			why = "whose device there does not name this vTPM";
		else if (rc == -ENOENT)
			why = "which has no such device there";
		else if (rc)
			why = "whose device there is unreadable or malformed";
	} else if (req->type != MGR_MSG_XEN_PEER_STATE) {
		why = "(not a Xen peer request)";
	} else if (!p->have || F != p->dom || D != p->dev) {
		why = "not the domain it was told about at its connection";
	}
	if (why) {
		log_warnx_rl(rl, "xen: vTPM %s: its instance in domain %u asked "
			     "%s about domain %u vtpm %u, %s: refused", uuid_str,
			     I, mgrproto_msg_name(req->type), F, D, why);
		return;
	}
	if (req->type == MGR_MSG_XEN_PEER) {
		rc = peer_vm(xif, F, rsp->u.xen_peer.uuid);
		if (rc) {
			log_warnx_rl(rl, "xen: vTPM %s: /local/domain/%u/vm "
				     "unreadable (%s): its instance is not told "
				     "domain %u's Xen UUID", uuid_str, F,
				     strerror(-rc), F);
			memset(rsp->u.xen_peer.uuid, 0, 16);
			rsp->status = MGR_FAIL;
			return;
		}
		/* The last one asked wins: one guest at a time per vTPM. */
		p->have = true;
		p->dom = F;
		p->dev = D;
		p->seen = MGR_XEN_RUNNING;
		mgr_xen_peer_note(xif, p);
		uuid_format(rsp->u.xen_peer.uuid, us);
		log_info("xen: vTPM %s: its instance in domain %u serves domain "
			 "%u vtpm %u, Xen domain %s", uuid_str, I, F, D, us);
		rsp->status = MGR_SUCCESS;
		return;
	}
	rc = peer_run_state(xif, F, &st);
	if (rc == -ENOENT) {
		/* Gone: its last state; one never seen shut down was
		 * destroyed while running (or paused). */
		st = p->seen == MGR_XEN_SUSPENDED || p->seen == MGR_XEN_SHUTDOWN
			     ? p->seen
			     : MGR_XEN_GONE;
	} else if (rc) {
		log_warnx_rl(rl, "xen: vTPM %s: domain %u's run state is "
			     "unknown (%s): its instance is not told", uuid_str,
			     F, strerror(-rc));
		rsp->status = MGR_FAIL;
		return;
	} else {
		p->seen = st;
	}
	log_info("xen: vTPM %s: domain %u (served by its instance in domain "
		 "%u) is %s%s", uuid_str, F, I, mgrproto_xen_run_str(st),
		 rc ? ", and gone since" : "");
	rsp->u.xen_state.state = st;
	rsp->status = MGR_SUCCESS;
}

static void ring_xen_peer(void *conn, const struct mgr_req *req,
			  struct mgr_rsp *rsp)
{
	struct mgr_ring *r = conn;

	mgr_xen_peer_answer(r->xif, r->tb.cfg.frontend_domid, r->e->rec.uuid,
			    r->e->rec.uuid_str, &r->peer, &r->rl, req, rsp);
}

static const struct mgr_conn_ops ring_conn_ops = {
	.send = ring_send,
	.close = ring_close,
	.xen_peer = ring_xen_peer,
};

static bool has_ring(const struct vtpm_entry *e)
{
	return e->link.ops == &ring_conn_ops;
}

static void ring_stop(struct vtpm_entry *e)
{
	if (has_ring(e))
		mgr_link_close(e);
}

static void serve_ring(struct mgr_xen *x, struct vtpm_entry *e,
		       const struct devwatch_dev *d)
{
	struct tpmback_config tc;
	struct mgr_ring *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return;
	r->e = e;
	/* Its own connection: one uv_poll per xenstore fd. */
	rc = xen_real_open(&r->xif);
	if (rc) {
		log_warnx("vTPM %s: cannot open the Xen devices for domain %u's "
			  "ring: %s", e->rec.uuid_str, d->fe_domid, strerror(-rc));
		free(r);
		return;
	}
	tpmback_config_init(&tc, x->self, d->fe_domid, d->devid, d->uuid);
	tc.max_cmd = MGR_MAX_FRAME;
	rc = tpmback_serve(&r->tb, x->m->loop, r->xif, &tc, &ring_ops, r);
	if (rc) {
		log_warnx("vTPM %s: cannot serve domain %u's ring: %s",
			  e->rec.uuid_str, d->fe_domid, strerror(-rc));
		xenif_close(r->xif);
		free(r);
		return;
	}
	e->xd.active = true;
	e->xd.fe = d->fe_domid;
	e->xd.dev = d->devid;
	e->rec.domid = d->fe_domid;
	mgr_link_attach(e, &ring_conn_ops, r);
	log_info("xen: domain %u vtpm %u: the instance of vTPM %s runs there; "
		 "serving it the manager protocol on the ring", d->fe_domid,
		 d->devid, e->rec.uuid_str);
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
			  "device is not served", t->e->rec.uuid_str,
			  t->d.fe_domid);
	} else if (x && x->running && !m->stopping) {
		/* Still there? */
		for (unsigned int i = 0; i < x->dw.ndevs; i++)
			if (x->dw.devs[i].fe_domid == t->d.fe_domid &&
			    x->dw.devs[i].devid == t->d.devid &&
			    memcmp(x->dw.devs[i].uuid, t->e->rec.uuid, 16) == 0) {
				serve(m, t->e, &t->d);
				break;
			}
	}
	free(t);
}

/*
 * Whether domains a and b are one Xen domain: the same UUID in the
 * toolstack's /local/domain/N/vm.  Two exist at once during xl migrate on
 * one host (and xl save -p + xl restore): the destination is the source's
 * continuation, not another guest.
 */
static bool same_xen_domain(struct mgr_xen *x, uint32_t a, uint32_t b)
{
	uint8_t u[2][16];
	uint32_t dom[2] = { a, b };

	for (int i = 0; i < 2; i++) {
		char path[64], *val = NULL;
		size_t len = 0;
		int rc;

		snprintf(path, sizeof(path), "/local/domain/%u/vm", dom[i]);
		rc = x->xif->ops->xs_read(x->xif, path, &val, &len);
		if (rc == 0)
			rc = resumetag_parse_vm_path(val, len, u[i]);
		free(val);
		if (rc)
			return false;
	}
	return memcmp(u[0], u[1], 16) == 0;
}

static void dev_added(struct devwatch *w, const struct devwatch_dev *d)
{
	struct mgr_xen *x = w->data;
	struct manager *m = x->m;
	struct vtpm_entry *e = mgr_entry_find(m, d->uuid);
	char us[37];

	uuid_format(d->uuid, us);
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
	if (e->xd.active && e->xd.fe != d->fe_domid && e->xd.dev == d->devid &&
	    !mgr_entry_is_remote(e) && same_xen_domain(x, e->xd.fe, d->fe_domid)) {
		/* The instance of the source saves its guest's volatile
		 * state as it stops; the new one starts after it exited. */
		log_info("xen: domain %u vtpm %u names vTPM %s, which serves "
			 "domain %u, the same Xen domain: a restore or "
			 "migration destination; moving the vTPM to it",
			 d->fe_domid, d->devid, us, e->xd.fe);
		serve(m, e, d);
		return;
	}
	if (e->xd.active && (e->xd.fe != d->fe_domid || e->xd.dev != d->devid)) {
		log_warnx("xen: domain %u vtpm %u names vTPM %s, which already "
			  "serves domain %u vtpm %u: refused (one vTPM, one "
			  "device)", d->fe_domid, d->devid, us, e->xd.fe,
			  e->xd.dev);
		return;
	}
	if (!e->xd.active && (e->child.state == CHILD_RUNNING ||
			      e->child.state == CHILD_BACKOFF ||
			      e->child.state == CHILD_STOPPING)) {
		log_warnx("xen: domain %u vtpm %u names vTPM %s, which runs on "
			  "%s: refused (`vtpmctl stop %s` first)",
			  d->fe_domid, d->devid, us,
			  e->rec.transport[0] ? e->rec.transport
					      : "its UNIX socket", us);
		return;
	}
	if (mgr_entry_is_remote(e)) {
		serve_ring(x, e, d);
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

	if (!e || !e->xd.active || e->xd.fe != d->fe_domid ||
	    e->xd.dev != d->devid)
		return;
	if (has_ring(e)) {
		log_info("xen: domain %u vtpm %u is gone: the ring of vTPM %s's "
			 "instance is closed", d->fe_domid, d->devid,
			 e->rec.uuid_str);
		e->xd.active = false;
		ring_stop(e);
		return;
	}
	log_info("xen: domain %u vtpm %u is gone: stopping vTPM %s",
		 d->fe_domid, d->devid, e->rec.uuid_str);
	e->xd.active = false;
	e->xd.restart = false;
	e->rec.autostart = false;
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

/* ---- @releaseDomain: a domain shut down or died ---- */

static void release_watch(struct xenloop *xl)
{
	struct mgr_xen *x = xl->owner;
	struct vtpm_entry *e;

	if (!x->running)
		return;
	mgr_foreach_entry(e, x->m)
		if (has_ring(e)) {
			struct mgr_ring *r = e->link.conn;

			mgr_xen_peer_note(r->xif, &r->peer);
		}
}

static void one_closed(struct mgr_xen *x);

static void release_closed(struct xenloop *xl)
{
	one_closed(xl->owner);
}

static const struct xenloop_ops release_ops = {
	.watch = release_watch,
	.closed = release_closed,
};

/* Without it, a peer's run state is read only when its instance asks. */
static void release_start(struct mgr_xen *x)
{
	int rc;

	rc = xen_real_open(&x->rxif);
	if (rc)
		goto fail;
	xenloop_init(&x->rloop, x->m->loop, x->rxif, &release_ops, x, "xen",
		     &x->rl, 0, 0, 0, NULL);
	x->rloop.token = RELEASE_TOKEN;
	rc = x->rxif->ops->xs_watch(x->rxif, "@releaseDomain", RELEASE_TOKEN);
	if (rc == 0) {
		rc = xenloop_start(&x->rloop);
		if (rc)
			x->rxif->ops->xs_unwatch(x->rxif, "@releaseDomain",
						 RELEASE_TOKEN);
	}
	if (rc == 0)
		return;
	xenif_close(x->rxif);
	x->rxif = NULL;
fail:
	log_warnx("xen: cannot watch @releaseDomain: %s; the run state of a "
		  "guest served from an instance domain is read only when "
		  "asked", strerror(-rc));
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
	x->self = xenif_self_domid(x->xif);
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
	release_start(x);
	log_info("xen: serving the vtpm devices of domain %u "
		 "(/local/domain/%u/backend/vtpm; unknown UUIDs %s)", x->self,
		 x->self, m->cfg->xen_create_unknown ? "are created" : "refused");
	return 0;
}

static void one_closed(struct mgr_xen *x)
{
	if (--x->closing > 0)
		return;
	xenif_close(x->xif);
	xenif_close(x->rxif);
	x->m->xen = NULL;
	free(x);
}

static void dw_stopped(struct devwatch *w)
{
	one_closed(w->data);
}

void mgr_xen_stop(struct manager *m)
{
	struct mgr_xen *x = m->xen;
	struct vtpm_entry *e;

	if (!x || !x->running)
		return;
	x->running = false;
	mgr_foreach_entry(e, m)
		ring_stop(e);
	x->closing = x->rxif ? 2 : 1;
	if (x->rxif) {
		x->rxif->ops->xs_unwatch(x->rxif, "@releaseDomain",
					 RELEASE_TOKEN);
		xenloop_close(&x->rloop);
	}
	devwatch_stop(&x->dw, dw_stopped);
}
