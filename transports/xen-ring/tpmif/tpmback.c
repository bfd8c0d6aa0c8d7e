/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tpmback: the Xen PV vTPM backend for one device.  tb_reconcile() is the
 * one function that moves the xenbus state machine; it looks at what
 * xenstore holds now, never at what a watch event said, so a burst of
 * events (or a flapping guest) costs one pass.  The shared page is the
 * guest's: every field is loaded once into a local, checked, and only the
 * local is used.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xen/event_channel.h>
#include <xen/grant_table.h>
#include <xen/io/tpmif.h>
#include <xen/io/xenbus.h>

#include "tpmif/ring.h"
#include "tpmif/tpmback.h"
#include "lib/hex.h"

#define MAX_PORT ((uint32_t)EVTCHN_FIFO_NR_CHANNELS - 1)

static void tb_reconcile(struct tpmback *tb);
static void tb_check_page(struct tpmback *tb);
static void tb_finish_stop(struct tpmback *tb);

const char *tpmback_state_name(enum tpmback_state s)
{
	switch (s) {
	case TPMBACK_NO_DEVICE:
		return "no device";
	case TPMBACK_REFUSED:
		return "refused";
	case TPMBACK_INIT_WAIT:
		return "InitWait";
	case TPMBACK_CONNECTED:
		return "Connected";
	case TPMBACK_CLOSING:
		return "Closing";
	case TPMBACK_CLOSED:
		return "Closed";
	case TPMBACK_STOPPED:
		return "stopped";
	}
	return "?";
}

/* ---- shared page access: each load and store exactly once ---- */

static struct tpmif_shared_page *tb_shr(struct tpmback *tb)
{
	return tb->page;
}

static void tb_notify(struct tpmback *tb)
{
	int rc = tb->xif->ops->evtchn_notify(tb->xif, tb->local_port);

	if (rc)
		log_warnx_rl(&tb->rl, "dom%u vtpm %u: notify: %s",
			     tb->cfg.frontend_domid, tb->cfg.devid,
			     strerror(-rc));
}

/* The backend writes only IDLE or FINISH, after its data, then notifies. */
static void tb_set_page_state(struct tpmback *tb, uint8_t st)
{
	tpmif_state_store(tb_shr(tb), st);
	tb_notify(tb);
}

/*
 * The packet area: page[off .. TPMIF_PAGE) then the extra pages, as though
 * they sat right after the first.  off and len were checked against the
 * mapped size before either copy is called.
 */
static void area_copy_in(struct tpmback *tb, uint8_t *dst, uint32_t off,
			 uint32_t len)
{
	uint32_t first = TPMIF_PAGE - off < len ? TPMIF_PAGE - off : len;

	memcpy(dst, (const uint8_t *)tb->page + off, first);
	if (len > first)
		memcpy(dst + first, tb->extra, len - first);
}

static void area_copy_out(struct tpmback *tb, uint32_t off, const uint8_t *src,
			  uint32_t len)
{
	uint32_t first = TPMIF_PAGE - off < len ? TPMIF_PAGE - off : len;

	memcpy((uint8_t *)tb->page + off, src, first);
	if (len > first)
		memcpy(tb->extra, src + first, len - first);
}

/* ---- the connection ---- */

static void tb_unmap_extra(struct tpmback *tb)
{
	if (tb->extra) {
		tb->xif->ops->gnt_unmap(tb->xif, tb->extra, tb->extra_n);
		tb->extra = NULL;
		tb->extra_n = 0;
	}
}

static void tb_release(struct tpmback *tb)
{
	tb_unmap_extra(tb);
	if (tb->bound) {
		tb->xif->ops->evtchn_unbind(tb->xif, tb->local_port);
		tb->bound = false;
	}
	if (tb->page) {
		tb->xif->ops->gnt_unmap(tb->xif, tb->page, 1);
		tb->page = NULL;
	}
}

/*
 * The guest is gone or closing: stop touching its memory at once.  A
 * command in flight keeps running on our copy; its response is dropped.
 */
static void tb_disconnect(struct tpmback *tb, const char *why, bool closed)
{
	if (tb->state != TPMBACK_CONNECTED)
		return;
	tb->conn_gen++;
	tb_release(tb);
	/* Provisional: the caller sets the next state.  Set before the
	 * callbacks, which may complete the command in flight at once. */
	tb->state = TPMBACK_INIT_WAIT;
	if (tb->busy && tb->ops->cancel)
		tb->ops->cancel(tb);
	/* A frontend that never closed belongs to a domain that was
	 * suspended (xl save, xl migrate) or destroyed: its owner may keep
	 * the TPM's volatile state for a restore instead. */
	if (!closed && tb->ops->suspended) {
		xenbus_log_disconnect(&tb->xb, "disconnected (%s) without a "
				      "close: volatile state kept for a "
				      "restore", why);
		tb->stats.suspends++;
		tb->ops->suspended(tb);
		return;
	}
	xenbus_log_disconnect(&tb->xb, "disconnected (%s): power cycle", why);
	tb->stats.power_cycles++;
	if (tb->ops->power_cycle)
		tb->ops->power_cycle(tb);
}

/* Frontend Initialised or Connected: map, bind, Connected, serve. */
static void tb_connect(struct tpmback *tb)
{
	struct xenif *x = tb->xif;
	uint32_t F = tb->cfg.frontend_domid, ref, port;
	int rc;

	rc = xenbus_read_u32(&tb->xb, tb->xb.peer, "ring-ref", UINT32_MAX, &ref);
	if (rc == 0 && ref < GNTTAB_NR_RESERVED_ENTRIES)
		rc = -ERANGE;
	if (rc) {
		log_warnx_rl(&tb->rl,
			     "dom%u vtpm %u: bad ring-ref (%s); "
			     "waiting for the frontend to fix it",
			     F, tb->cfg.devid, strerror(-rc));
		return;
	}
	rc = xenbus_read_u32(&tb->xb, tb->xb.peer, "event-channel", MAX_PORT,
			     &port);
	if (rc == 0 && port == 0)
		rc = -ERANGE;
	if (rc) {
		log_warnx_rl(&tb->rl,
			     "dom%u vtpm %u: bad event-channel (%s); "
			     "waiting for the frontend to fix it",
			     F, tb->cfg.devid, strerror(-rc));
		return;
	}
	if (!xenbus_read_is(&tb->xb, tb->xb.peer, "feature-protocol-v2", "1")) {
		log_warnx_rl(&tb->rl,
			     "dom%u vtpm %u: the frontend does not "
			     "speak vTPM protocol v2 (feature-protocol-v2 "
			     "is not \"1\")",
			     F, tb->cfg.devid);
		return;
	}
	rc = x->ops->gnt_map(x, F, 1, &ref, &tb->page);
	if (rc) {
		tb->page = NULL;
		log_warnx_rl(&tb->rl,
			     "dom%u vtpm %u: cannot map ring-ref %u: "
			     "%s",
			     F, tb->cfg.devid, ref, strerror(-rc));
		return;
	}
	rc = x->ops->evtchn_bind(x, F, port, &tb->local_port);
	if (rc) {
		log_warnx_rl(&tb->rl,
			     "dom%u vtpm %u: cannot bind event "
			     "channel %u: %s",
			     F, tb->cfg.devid, port, strerror(-rc));
		x->ops->gnt_unmap(x, tb->page, 1);
		tb->page = NULL;
		return;
	}
	tb->bound = true;
	tb->ring_ref = ref;
	tb->state = TPMBACK_CONNECTED;
	tb->stats.connects++;
	xenbus_write(&tb->xb, "ready", "1");
	xenbus_switch_state(&tb->xb, XenbusStateConnected);
	xenbus_log_connect(&tb->xb, "connected (ring-ref %u, event channel %u)",
			   tb->ring_ref, tb->local_port);
	/* Before the first command: the owner decides what TPM it finds. */
	if (tb->ops->connected)
		tb->ops->connected(tb);
	/* Linux sends commands in its probe, right after state 3: its
	 * notify came before our bind and is lost, so look now. */
	tb_check_page(tb);
}

/* ---- requests ---- */

/* A request we will not run: abandon it (IDLE), which the protocol lets
 * a backend do for any reason; the guest sees its command cancelled. */
static void __attribute__((format(printf, 2, 3)))
tb_reject(struct tpmback *tb, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx_rl(&tb->rl, "dom%u vtpm %u: request refused: %s",
		     tb->cfg.frontend_domid, tb->cfg.devid, msg);
	tb->stats.rejected++;
	tb->stats.aborted++;
	tb_set_page_state(tb, TPMIF_STATE_IDLE);
}

static int tb_map_extra(struct tpmback *tb, uint32_t n, const uint32_t *refs)
{
	int rc;

	if (n == tb->extra_n &&
	    (n == 0 || memcmp(refs, tb->extra_refs, n * sizeof(*refs)) == 0))
		return 0;
	tb_unmap_extra(tb);
	if (n == 0)
		return 0;
	for (uint32_t i = 0; i < n; i++)
		if (refs[i] < GNTTAB_NR_RESERVED_ENTRIES)
			return -ERANGE;
	rc = tb->xif->ops->gnt_map(tb->xif, tb->cfg.frontend_domid, n, refs,
				   &tb->extra);
	if (rc) {
		tb->extra = NULL;
		return rc;
	}
	tb->extra_n = n;
	memcpy(tb->extra_refs, refs, n * sizeof(*refs));
	return 0;
}

static void tb_take_request(struct tpmback *tb)
{
	struct tpmif_shared_page *shr = tb_shr(tb);
	uint32_t refs[TPMBACK_MAX_EXTRA_PAGES];
	uint32_t len, n, loc, off, cap;
	int rc;

	len = __atomic_load_n(&shr->length, __ATOMIC_RELAXED);
	n = __atomic_load_n(&shr->nr_extra_pages, __ATOMIC_RELAXED);
	loc = __atomic_load_n(&shr->locality, __ATOMIC_RELAXED);
	if (n > tb->cfg.max_extra_pages) {
		tb_reject(tb, "nr_extra_pages %u, at most %u supported", n,
			  tb->cfg.max_extra_pages);
		return;
	}
	off = TPMIF_HDR_LEN + 4 * n;
	/* The refs are on our mapped page (off <= 8 + 4 * 8): copy once. */
	memcpy(refs, (const uint8_t *)tb->page + TPMIF_HDR_LEN, 4 * n);
	rc = tb_map_extra(tb, n, refs);
	if (rc) {
		tb_reject(tb, "cannot map its %u extra pages: %s", n,
			  strerror(-rc));
		return;
	}
	cap = TPMIF_PAGE - off + n * TPMIF_PAGE;
	if (len == 0 || len > cap) {
		tb_reject(tb, "length %u, the mapped area holds %u", len, cap);
		return;
	}
	if (tb->cfg.max_cmd && len > tb->cfg.max_cmd) {
		tb_reject(tb, "length %u, the TPM takes at most %u", len,
			  tb->cfg.max_cmd);
		return;
	}
	if (loc > TPMIF_MAX_LOCALITY) {
		tb_reject(tb, "locality %u, at most %u", loc, TPMIF_MAX_LOCALITY);
		return;
	}
	area_copy_in(tb, tb->cmd, off, len);
	tb->busy = true;
	tb->busy_gen = tb->conn_gen;
	tb->data_off = off;
	tb->data_cap = cap;
	tb->stats.commands++;
	/* The owner may answer from inside submit. */
	tb->ops->submit(tb, tb->cmd, len, loc);
}

/* Looks at the page once: what the guest asks for now. */
static void tb_check_page(struct tpmback *tb)
{
	uint8_t st;

	if (tb->state != TPMBACK_CONNECTED || tb->stopping)
		return;
	st = tpmif_state_load(tb_shr(tb));
	if (tb->busy) {
		/* SUBMIT is ours until we answer; CANCEL asks us to hurry. */
		if (st == TPMIF_STATE_CANCEL && tb->ops->cancel &&
		    !tb->cancel_sent) {
			tb->cancel_sent = true;
			tb->ops->cancel(tb);
		}
		return;
	}
	switch (st) {
	case TPMIF_STATE_SUBMIT:
		tb->cancel_sent = false;
		tb_take_request(tb);
		break;
	case TPMIF_STATE_CANCEL:
		/* Nothing runs: the cancel is complete. */
		tb_set_page_state(tb, TPMIF_STATE_IDLE);
		break;
	case TPMIF_STATE_IDLE:
	case TPMIF_STATE_FINISH:
		break; /* spurious, or a response not yet read */
	default:
		tb->stats.rejected++;
		log_warnx_rl(&tb->rl,
			     "dom%u vtpm %u: page state %u is not "
			     "a request; ignored",
			     tb->cfg.frontend_domid, tb->cfg.devid, st);
		break;
	}
}

void tpmback_complete(struct tpmback *tb, const uint8_t *rsp, uint32_t len)
{
	if (!tb->busy) {
		log_warnx("dom%u vtpm %u: a response with no command",
			  tb->cfg.frontend_domid, tb->cfg.devid);
		return;
	}
	tb->busy = false;
	if (tb->busy_gen != tb->conn_gen || tb->state != TPMBACK_CONNECTED) {
		/* Its guest went away; a new one may have asked already. */
		log_debug("dom%u vtpm %u: response dropped: the frontend "
			  "went away",
			  tb->cfg.frontend_domid, tb->cfg.devid);
		goto out;
	}
	if (!rsp) {
		tb->stats.aborted++;
		tb_set_page_state(tb, TPMIF_STATE_IDLE);
		goto out;
	}
	if (len > tb->data_cap) {
		log_warnx_rl(&tb->rl,
			     "dom%u vtpm %u: response of %u bytes "
			     "does not fit the %u mapped; command abandoned",
			     tb->cfg.frontend_domid, tb->cfg.devid, len,
			     tb->data_cap);
		tb->stats.aborted++;
		tb_set_page_state(tb, TPMIF_STATE_IDLE);
		goto out;
	}
	area_copy_out(tb, tb->data_off, rsp, len);
	__atomic_store_n(&tb_shr(tb)->length, len, __ATOMIC_RELAXED);
	tb->stats.responses++;
	tb_set_page_state(tb, TPMIF_STATE_FINISH);
out:
	if (tb->stopping)
		tb_finish_stop(tb);
	else if (tb->state == TPMBACK_CONNECTED && tb->busy_gen != tb->conn_gen)
		tb_check_page(tb);
}

/* ---- the xenbus state machine ---- */

/* Is this backend directory the device we serve, with a good uuid? */
static int tb_accept_device(struct tpmback *tb, const char *frontend,
			    size_t flen)
{
	char *v = NULL, why[200];
	size_t len = 0;
	uint32_t fid;
	int rc;

	why[0] = '\0';
	if (flen != strlen(tb->xb.peer) || strcmp(frontend, tb->xb.peer) != 0) {
		snprintf(why, sizeof(why), "frontend is \"%.60s\", not %s",
			 frontend, tb->xb.peer);
	} else if (xenbus_read_u32(&tb->xb, tb->xb.self, "frontend-id",
				   UINT32_MAX, &fid) ||
		   fid != tb->cfg.frontend_domid) {
		snprintf(why, sizeof(why), "frontend-id is not %u",
			 tb->cfg.frontend_domid);
	} else if ((rc = xenbus_read(&tb->xb, tb->xb.self, "uuid", &v, &len)) !=
		   0) {
		snprintf(why, sizeof(why), "no uuid node (%s)", strerror(-rc));
	} else if (uuid_parse(v, len, tb->uuid) != 0) {
		snprintf(why, sizeof(why), "uuid \"%.40s\" is malformed", v);
	} else if (tb->cfg.have_uuid &&
		   memcmp(tb->uuid, tb->cfg.uuid, 16) != 0) {
		char want[37];

		uuid_format(tb->cfg.uuid, want);
		snprintf(why, sizeof(why),
			 "uuid %.36s is unknown here (this "
			 "vTPM is %s)",
			 v, want);
	}
	free(v);
	if (why[0]) {
		xenbus_refuse(&tb->xb, "refusing the device: %s", why);
		return -EPERM;
	}
	xenbus_accept(&tb->xb);
	uuid_format(tb->uuid, tb->uuid_str);
	return 0;
}

/* The toolstack sets online=0 when it removes the device (xl
 * vtpm-detach) and then waits for our state to reach Closed. */
static bool tb_detaching(struct tpmback *tb)
{
	return xenbus_read_is(&tb->xb, tb->xb.self, "online", "0");
}

/*
 * A backend in a driver domain (not dom0) removes its own directory once
 * it is Closed for a removal: dom0's libxl leaves that to the backend's
 * domain (xl devd's job there) and waits 10 s for it, on every xl save,
 * shutdown and detach, before it gives up and removes it itself.
 */
static void tb_remove_if_driver_domain(struct tpmback *tb)
{
	int rc;

	if (tb->cfg.backend_domid == 0)
		return;
	rc = tb->xif->ops->xs_rm(tb->xif, tb->xb.self);
	if (rc && rc != -ENOENT)
		log_warnx_rl(&tb->rl, "dom%u vtpm %u: cannot remove %s: %s",
			     tb->cfg.frontend_domid, tb->cfg.devid,
			     tb->xb.self, strerror(-rc));
	else
		log_info("dom%u vtpm %u: closed for its removal; %s removed "
			 "(the backend domain's part)",
			 tb->cfg.frontend_domid, tb->cfg.devid, tb->xb.self);
}

/* One pass; returns true when another pass is needed at once. */
static bool tb_step(struct xenbus_dev *xb)
{
	struct tpmback *tb = xb->owner;
	char *fe = NULL;
	size_t flen = 0;
	int rc, fst;

	rc = xenbus_read(xb, xb->self, "frontend", &fe, &flen);
	if (rc) {
		free(fe);
		if (rc != -ENOENT) {
			log_warnx_rl(&tb->rl,
				     "dom%u vtpm %u: xenstore read: %s",
				     tb->cfg.frontend_domid, tb->cfg.devid,
				     strerror(-rc));
			return false;
		}
		/* Removed (xl vtpm-detach, domain destroyed), or not yet. */
		if (tb->state != TPMBACK_NO_DEVICE) {
			tb_disconnect(tb, "device removed", false);
			xenbus_watch_peer(xb, false);
			if (tb->state != TPMBACK_REFUSED)
				log_info("dom%u vtpm %u: device removed",
					 tb->cfg.frontend_domid, tb->cfg.devid);
			tb->state = TPMBACK_NO_DEVICE;
			xenbus_accept(xb);
		}
		return false;
	}
	if (tb->state == TPMBACK_NO_DEVICE || tb->state == TPMBACK_REFUSED) {
		rc = tb_accept_device(tb, fe, flen);
		free(fe);
		if (rc) {
			tb->state = TPMBACK_REFUSED;
			return false;
		}
		xenbus_watch_peer(xb, true);
		/* A device the toolstack just wrote (state 1, or none yet):
		 * it is waiting to read InitWait; hold it long enough. */
		tb->hold_until = 0;
		if (!xenbus_exists(xb, xb->self, "state") ||
		    xenbus_read_is(xb, xb->self, "state", "1"))
			tb->hold_until = uv_now(tb->loop) +
					 tb->cfg.initwait_hold_ms;
		/* Before InitWait: Linux reads it as soon as it sees 2. */
		xenbus_write(xb, "feature-protocol-v2", "1");
		/* How many extra grant pages we map: a frontend that knows
		 * this node may set nr_extra_pages up to it; the stock one
		 * ignores it and uses the single page. */
		if (tb->cfg.max_extra_pages)
			xenbus_write_u32(xb, "feature-extra-pages",
					 tb->cfg.max_extra_pages);
		xenbus_switch_state(xb, XenbusStateInitWait);
		tb->state = TPMBACK_INIT_WAIT;
		log_info("dom%u vtpm %u: device %s: InitWait",
			 tb->cfg.frontend_domid, tb->cfg.devid, tb->uuid_str);
	} else {
		free(fe);
	}

	/* Unreadable (EACCES): its domain is gone and xenstore no longer
	 * lets a driver domain read the node: no frontend either way. */
	fst = xenbus_peer_state(xb, true);
	if (fst < 0)
		return false;
	if (tb_detaching(tb)) {
		/* Let a connected frontend close first (the toolstack's
		 * state 5 told it to); a stuck one is removed by force. */
		if (tb->state == TPMBACK_CONNECTED &&
		    (fst == XenbusStateInitialised ||
		     fst == XenbusStateConnected))
			return false;
		/* A frontend directory removed with the device (libxl's
		 * forced removal when it destroys a domain, after xl save
		 * too) never closed. */
		tb_disconnect(tb, "device detached",
			      fst == XenbusStateClosing ||
				      fst == XenbusStateClosed);
		xenbus_switch_state(xb, XenbusStateClosed);
		tb->state = TPMBACK_CLOSED;
		tb_remove_if_driver_domain(tb);
		return false;
	}
	switch (tb->state) {
	case TPMBACK_INIT_WAIT:
		if (fst != XenbusStateInitialised &&
		    fst != XenbusStateConnected)
			break;
		if (tb->hold_until && uv_now(tb->loop) < tb->hold_until) {
			/* The frontend answered InitWait before the
			 * toolstack may have read it: a 2 -> 4 it never
			 * sees fails its device add.  Connect later. */
			xenloop_recheck(&xb->io,
					tb->hold_until - uv_now(tb->loop));
			break;
		}
		tb->hold_until = 0;
		tb_connect(tb);
		break;
	case TPMBACK_CONNECTED:
		if (fst == XenbusStateInitialised ||
		    fst == XenbusStateConnected)
			break;
		if (fst == XenbusStateReconfiguring ||
		    fst == XenbusStateReconfigured)
			break;
		tb_disconnect(tb, fst == XenbusStateUnknown
				      ? "frontend vanished"
				      : "frontend closed",
			      fst != XenbusStateUnknown);
		if (fst == XenbusStateClosing) {
			xenbus_switch_state(xb, XenbusStateClosing);
			tb->state = TPMBACK_CLOSING;
		} else {
			xenbus_switch_state(xb, XenbusStateInitWait);
			tb->state = TPMBACK_INIT_WAIT;
		}
		break;
	case TPMBACK_CLOSING:
		if (fst == XenbusStateClosing)
			break;
		/* Closed, or a new frontend already: ready for it. */
		xenbus_switch_state(xb, XenbusStateInitWait);
		tb->state = TPMBACK_INIT_WAIT;
		return true;
	case TPMBACK_CLOSED:
		/* The toolstack put the device back online. */
		xenbus_switch_state(xb, XenbusStateInitWait);
		tb->state = TPMBACK_INIT_WAIT;
		return true;
	default:
		break;
	}
	return false;
}

static void tb_reconcile(struct tpmback *tb)
{
	xenbus_reconcile(&tb->xb);
}

/* ---- the xenbus layer's callbacks ---- */

/* Our port fired, or a request may have come in while we were not
 * listening (a storm pause ended). */
static void xb_event(struct xenbus_dev *xb)
{
	tb_check_page(xb->owner);
}

static void tb_stopped(struct xenbus_dev *xb);

static const struct xenbus_ops xb_ops = {
	.step = tb_step,
	.event = xb_event,
	.closed = tb_stopped,
};

/* ---- lifetime ---- */

void tpmback_config_init(struct tpmback_config *cfg, uint32_t backend_domid,
			 uint32_t fe_domid, uint32_t devid,
			 const uint8_t uuid[16])
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->backend_domid = backend_domid;
	cfg->frontend_domid = fe_domid;
	cfg->devid = devid;
	cfg->have_uuid = uuid != NULL;
	if (uuid)
		memcpy(cfg->uuid, uuid, 16);
	cfg->max_extra_pages = TPMBACK_MAX_EXTRA_PAGES;
	cfg->initwait_hold_ms = TPMBACK_INITWAIT_HOLD_MS;
}

int tpmback_init(struct tpmback *tb, uv_loop_t *loop, struct xenif *xif,
		 const struct tpmback_config *cfg,
		 const struct tpmback_ops *ops, void *data)
{
	char name[48], path[96], token[64];
	struct xenbus_setup xs = {
	    .name = name,
	    .peer_role = "frontend",
	    .rl = &tb->rl,
	    .rejected = &tb->stats.rejected,
	    .throttled = &tb->stats.throttled,
	    .events = &tb->stats.events,
	    .port = &tb->local_port,
	    .bound = &tb->bound,
	    .stopping = &tb->stopping,
	    .storm_events = cfg->storm_events,
	    .storm_window_ms = cfg->storm_window_ms,
	    .storm_pause_ms = cfg->storm_pause_ms,
	};

	memset(tb, 0, sizeof(*tb));
	if (!ops || !ops->submit || !xif ||
	    cfg->max_extra_pages > TPMBACK_MAX_EXTRA_PAGES)
		return -EINVAL;
	tb->loop = loop;
	tb->xif = xif;
	tb->cfg = *cfg;
	tb->ops = ops;
	tb->data = data;
	snprintf(name, sizeof(name), "dom%u vtpm %u", cfg->frontend_domid,
		 cfg->devid);
	xenbus_init(&tb->xb, loop, xif, &xb_ops, tb, &xs);
	snprintf(path, sizeof(path), "/local/domain/%u/backend/vtpm/%u/%u",
		 cfg->backend_domid, cfg->frontend_domid, cfg->devid);
	snprintf(token, sizeof(token), "tpmback:be:%u:%u", cfg->frontend_domid,
		 cfg->devid);
	xenbus_set_self(&tb->xb, path, token);
	snprintf(path, sizeof(path), "/local/domain/%u/device/vtpm/%u",
		 cfg->frontend_domid, cfg->devid);
	snprintf(token, sizeof(token), "tpmback:fe:%u:%u", cfg->frontend_domid,
		 cfg->devid);
	xenbus_set_peer(&tb->xb, path, token);
	/* The largest command the mapped area can hold, allocated once. */
	tb->cmd = malloc((size_t)(1 + cfg->max_extra_pages) * TPMIF_PAGE);
	if (!tb->cmd)
		return -ENOMEM;
	return 0;
}

int tpmback_start(struct tpmback *tb)
{
	int rc;

	rc = xenbus_start(&tb->xb);
	if (rc)
		return rc;
	log_info("dom%u vtpm %u: watching %s", tb->cfg.frontend_domid,
		 tb->cfg.devid, tb->xb.self);
	/* A device already there gets InitWait now, not on the first event. */
	tb_reconcile(tb);
	return 0;
}

int tpmback_serve(struct tpmback *tb, uv_loop_t *loop, struct xenif *xif,
		  const struct tpmback_config *cfg,
		  const struct tpmback_ops *ops, void *data)
{
	int rc;

	rc = tpmback_init(tb, loop, xif, cfg, ops, data);
	if (!rc)
		rc = tpmback_start(tb);
	if (rc) {
		/* A failed start leaves no handle open: nothing to wait for. */
		free(tb->cmd);
		tb->cmd = NULL;
		xenbus_accept(&tb->xb);
	}
	return rc;
}

static void tb_stopped(struct xenbus_dev *xb)
{
	struct tpmback *tb = xb->owner;
	void (*cb)(struct tpmback *);

	tb->state = TPMBACK_STOPPED;
	free(tb->cmd);
	tb->cmd = NULL;
	cb = tb->stopped;
	tb->stopped = NULL;
	if (cb)
		cb(tb);
}

static void tb_finish_stop(struct tpmback *tb)
{
	/* Once: the owner's cancel may complete (and so get here) from
	 * inside tpmback_stop, which then calls this again. */
	if (tb->busy || tb->state == TPMBACK_STOPPED || tb->stop_done)
		return;
	tb->stop_done = true;
	/* Leave the xenbus state: a restarted backend picks the guest up. */
	tb_release(tb);
	xenbus_close(&tb->xb); /* tb_stopped when its handles are closed */
}

void tpmback_stop(struct tpmback *tb, void (*done)(struct tpmback *tb))
{
	if (tb->stopping)
		return;
	tb->stopping = true;
	tb->stopped = done;
	if (tb->busy && tb->ops->cancel)
		tb->ops->cancel(tb);
	/* A command in flight is answered first (tpmback_complete). */
	tb_finish_stop(tb);
}
