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

#include "tpmif/tpmback.h"
#include "lib/hex.h"

#define PAGE XENIF_PAGE_SIZE
#define HDR_LEN ((uint32_t)sizeof(struct tpmif_shared_page))
#define MAX_PORT ((uint32_t)EVTCHN_FIFO_NR_CHANNELS - 1)
#define MAX_LOCALITY 4
#define FLAP_WINDOW_MS 10000
#define FLAP_QUIET 4 /* connects per window logged at info */

_Static_assert(sizeof(struct tpmif_shared_page) == 8,
	       "the packet starts at 8 + 4 * nr_extra_pages");

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

/* ---- xenstore helpers ---- */

static int tb_read(struct tpmback *tb, const char *dir, const char *node,
		   char **val, size_t *len)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/%s", dir, node);
	return tb->xif->ops->xs_read(tb->xif, path, val, len);
}

static int tb_write(struct tpmback *tb, const char *node, const char *val)
{
	char path[160];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", tb->bpath, node);
	rc = tb->xif->ops->xs_write(tb->xif, path, val);
	if (rc)
		log_warnx_rl(&tb->rl, "dom%u vtpm %u: cannot write %s: %s",
			     tb->cfg.frontend_domid, tb->cfg.devid, path,
			     strerror(-rc));
	return rc;
}

/*
 * Our xenbus state, written only when the node holds something else: our
 * own write fires our own watch, and the toolstack writes this node too
 * (1 at creation, 5 when it detaches the device).
 */
static void tb_set_xenbus(struct tpmback *tb, int st)
{
	char want[4], *cur = NULL;
	size_t len = 0;
	int same;

	snprintf(want, sizeof(want), "%d", st);
	same = tb_read(tb, tb->bpath, "state", &cur, &len) == 0 &&
	       strcmp(cur, want) == 0;
	free(cur);
	if (!same)
		tb_write(tb, "state", want);
}

static int tb_read_u32(struct tpmback *tb, const char *dir, const char *node,
		       uint32_t max, uint32_t *out)
{
	char *v = NULL;
	size_t len = 0;
	int rc;

	rc = tb_read(tb, dir, node, &v, &len);
	if (rc == 0)
		rc = dec_parse_u32(v, len, max, out);
	free(v);
	return rc;
}

/* ---- shared page access: each load and store exactly once ---- */

static struct tpmif_shared_page *tb_shr(struct tpmback *tb)
{
	return tb->page;
}

static uint8_t shr_state(struct tpmback *tb)
{
	return __atomic_load_n(&tb_shr(tb)->state, __ATOMIC_RELAXED);
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
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&tb_shr(tb)->state, st, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	tb_notify(tb);
}

/*
 * The packet area: page[off .. PAGE) then the extra pages, as though
 * they sat right after the first.  off and len were checked against the
 * mapped size before either copy is called.
 */
static void area_copy_in(struct tpmback *tb, uint8_t *dst, uint32_t off,
			 uint32_t len)
{
	uint32_t first = PAGE - off < len ? PAGE - off : len;

	memcpy(dst, (const uint8_t *)tb->page + off, first);
	if (len > first)
		memcpy(dst + first, tb->extra, len - first);
}

static void area_copy_out(struct tpmback *tb, uint32_t off, const uint8_t *src,
			  uint32_t len)
{
	uint32_t first = PAGE - off < len ? PAGE - off : len;

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
static void tb_disconnect(struct tpmback *tb, const char *why)
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
	if (tb->flap_count <= FLAP_QUIET)
		log_info("dom%u vtpm %u: disconnected (%s): power cycle",
			 tb->cfg.frontend_domid, tb->cfg.devid, why);
	else
		log_debug("dom%u vtpm %u: disconnected (%s): power cycle",
			  tb->cfg.frontend_domid, tb->cfg.devid, why);
	tb->stats.power_cycles++;
	if (tb->ops->power_cycle)
		tb->ops->power_cycle(tb);
}

/* A guest reconnecting in a loop gets one rate-limited line, not one
 * line per reconnect. */
static void tb_log_connect(struct tpmback *tb)
{
	uint64_t now = uv_now(tb->loop);

	if (tb->flap_count == 0 || now - tb->flap_start >= FLAP_WINDOW_MS) {
		tb->flap_start = now;
		tb->flap_count = 0;
	}
	if (++tb->flap_count <= FLAP_QUIET)
		log_info("dom%u vtpm %u: connected (ring-ref %u, event "
			 "channel %u)",
			 tb->cfg.frontend_domid, tb->cfg.devid, tb->ring_ref,
			 tb->local_port);
	else
		log_warnx_rl(&tb->rl,
			     "dom%u vtpm %u: %u connects within "
			     "%u s: the frontend is flapping its state",
			     tb->cfg.frontend_domid, tb->cfg.devid,
			     tb->flap_count, FLAP_WINDOW_MS / 1000);
}

/* Frontend Initialised or Connected: map, bind, Connected, serve. */
static void tb_connect(struct tpmback *tb)
{
	struct xenif *x = tb->xif;
	uint32_t F = tb->cfg.frontend_domid, ref, port;
	char *v = NULL;
	size_t len = 0;
	int rc;

	rc = tb_read_u32(tb, tb->fpath, "ring-ref", UINT32_MAX, &ref);
	if (rc == 0 && ref < GNTTAB_NR_RESERVED_ENTRIES)
		rc = -ERANGE;
	if (rc) {
		log_warnx_rl(&tb->rl,
			     "dom%u vtpm %u: bad ring-ref (%s); "
			     "waiting for the frontend to fix it",
			     F, tb->cfg.devid, strerror(-rc));
		return;
	}
	rc = tb_read_u32(tb, tb->fpath, "event-channel", MAX_PORT, &port);
	if (rc == 0 && port == 0)
		rc = -ERANGE;
	if (rc) {
		log_warnx_rl(&tb->rl,
			     "dom%u vtpm %u: bad event-channel (%s); "
			     "waiting for the frontend to fix it",
			     F, tb->cfg.devid, strerror(-rc));
		return;
	}
	rc = tb_read(tb, tb->fpath, "feature-protocol-v2", &v, &len);
	if (rc || len != 1 || v[0] != '1') {
		free(v);
		log_warnx_rl(&tb->rl,
			     "dom%u vtpm %u: the frontend does not "
			     "speak vTPM protocol v2 (feature-protocol-v2 "
			     "is not \"1\")",
			     F, tb->cfg.devid);
		return;
	}
	free(v);
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
	tb_write(tb, "ready", "1");
	tb_set_xenbus(tb, XenbusStateConnected);
	tb_log_connect(tb);
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
	off = HDR_LEN + 4 * n;
	/* The refs are on our mapped page (off <= 8 + 4 * 8): copy once. */
	memcpy(refs, (const uint8_t *)tb->page + HDR_LEN, 4 * n);
	rc = tb_map_extra(tb, n, refs);
	if (rc) {
		tb_reject(tb, "cannot map its %u extra pages: %s", n,
			  strerror(-rc));
		return;
	}
	cap = PAGE - off + n * PAGE;
	if (len == 0 || len > cap) {
		tb_reject(tb, "length %u, the mapped area holds %u", len, cap);
		return;
	}
	if (tb->cfg.max_cmd && len > tb->cfg.max_cmd) {
		tb_reject(tb, "length %u, the TPM takes at most %u", len,
			  tb->cfg.max_cmd);
		return;
	}
	if (loc > MAX_LOCALITY) {
		tb_reject(tb, "locality %u, at most %u", loc, MAX_LOCALITY);
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
	st = shr_state(tb);
	/* Read the rest of the page only after the state. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
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
	if (flen != strlen(tb->fpath) || strcmp(frontend, tb->fpath) != 0) {
		snprintf(why, sizeof(why), "frontend is \"%.60s\", not %s",
			 frontend, tb->fpath);
	} else if (tb_read_u32(tb, tb->bpath, "frontend-id", UINT32_MAX,
			       &fid) ||
		   fid != tb->cfg.frontend_domid) {
		snprintf(why, sizeof(why), "frontend-id is not %u",
			 tb->cfg.frontend_domid);
	} else if ((rc = tb_read(tb, tb->bpath, "uuid", &v, &len)) != 0) {
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
		/* Once per distinct reason: the watch fires on every write. */
		if (!tb->refused_why || strcmp(tb->refused_why, why) != 0) {
			log_warnx("dom%u vtpm %u: refusing the device: %s",
				  tb->cfg.frontend_domid, tb->cfg.devid, why);
			free(tb->refused_why);
			tb->refused_why = strdup(why);
		}
		return -EPERM;
	}
	free(tb->refused_why);
	tb->refused_why = NULL;
	uuid_format(tb->uuid, tb->uuid_str);
	return 0;
}

static void tb_watch_frontend(struct tpmback *tb, bool on)
{
	char token[64];
	int rc;

	if (tb->fe_watched == on)
		return;
	snprintf(token, sizeof(token), "tpmback:fe:%u:%u",
		 tb->cfg.frontend_domid, tb->cfg.devid);
	if (on)
		rc = tb->xif->ops->xs_watch(tb->xif, tb->fpath, token);
	else
		rc = tb->xif->ops->xs_unwatch(tb->xif, tb->fpath, token);
	if (rc && on) {
		log_warnx_rl(&tb->rl, "dom%u vtpm %u: cannot watch %s: %s",
			     tb->cfg.frontend_domid, tb->cfg.devid, tb->fpath,
			     strerror(-rc));
		return;
	}
	tb->fe_watched = on;
}

/* The frontend's xenbus state; -1 when the node holds junk. */
static int tb_frontend_state(struct tpmback *tb)
{
	uint32_t st;
	int rc;

	rc = tb_read_u32(tb, tb->fpath, "state", XenbusStateReconfigured, &st);
	/* Gone, or (EACCES) its domain is gone and xenstore no longer lets
	 * a driver domain read the node: no frontend either way. */
	if (rc == -ENOENT || rc == -EACCES)
		return XenbusStateUnknown;
	if (rc) {
		tb->stats.rejected++;
		log_warnx_rl(&tb->rl,
			     "dom%u vtpm %u: frontend state node "
			     "holds junk (%s); ignored",
			     tb->cfg.frontend_domid, tb->cfg.devid,
			     strerror(-rc));
		return -1;
	}
	return (int)st;
}

/* The toolstack sets online=0 when it removes the device (xl
 * vtpm-detach) and then waits for our state to reach Closed. */
static bool tb_detaching(struct tpmback *tb)
{
	char *v = NULL;
	size_t len = 0;
	bool off;

	off = tb_read(tb, tb->bpath, "online", &v, &len) == 0 &&
	      strcmp(v, "0") == 0;
	free(v);
	return off;
}

/* One pass; returns true when another pass is needed at once. */
static bool tb_step(struct tpmback *tb)
{
	char *fe = NULL;
	size_t flen = 0;
	int rc, fst;

	rc = tb_read(tb, tb->bpath, "frontend", &fe, &flen);
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
			tb_disconnect(tb, "device removed");
			tb_watch_frontend(tb, false);
			if (tb->state != TPMBACK_REFUSED)
				log_info("dom%u vtpm %u: device removed",
					 tb->cfg.frontend_domid, tb->cfg.devid);
			tb->state = TPMBACK_NO_DEVICE;
			free(tb->refused_why);
			tb->refused_why = NULL;
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
		tb_watch_frontend(tb, true);
		/* Before InitWait: Linux reads it as soon as it sees 2. */
		tb_write(tb, "feature-protocol-v2", "1");
		/* How many extra grant pages we map: a frontend that knows
		 * this node may set nr_extra_pages up to it; the stock one
		 * ignores it and uses the single page. */
		if (tb->cfg.max_extra_pages) {
			char n[12];

			snprintf(n, sizeof(n), "%u", tb->cfg.max_extra_pages);
			tb_write(tb, "feature-extra-pages", n);
		}
		tb_set_xenbus(tb, XenbusStateInitWait);
		tb->state = TPMBACK_INIT_WAIT;
		log_info("dom%u vtpm %u: device %s: InitWait",
			 tb->cfg.frontend_domid, tb->cfg.devid, tb->uuid_str);
	} else {
		free(fe);
	}

	fst = tb_frontend_state(tb);
	if (fst < 0)
		return false;
	if (tb_detaching(tb)) {
		/* Let a connected frontend close first (the toolstack's
		 * state 5 told it to); a stuck one is removed by force. */
		if (tb->state == TPMBACK_CONNECTED &&
		    (fst == XenbusStateInitialised ||
		     fst == XenbusStateConnected))
			return false;
		tb_disconnect(tb, "device detached");
		tb_set_xenbus(tb, XenbusStateClosed);
		tb->state = TPMBACK_CLOSED;
		return false;
	}
	switch (tb->state) {
	case TPMBACK_INIT_WAIT:
		if (fst == XenbusStateInitialised ||
		    fst == XenbusStateConnected)
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
				      : "frontend closed");
		if (fst == XenbusStateClosing) {
			tb_set_xenbus(tb, XenbusStateClosing);
			tb->state = TPMBACK_CLOSING;
		} else {
			tb_set_xenbus(tb, XenbusStateInitWait);
			tb->state = TPMBACK_INIT_WAIT;
		}
		break;
	case TPMBACK_CLOSING:
		if (fst == XenbusStateClosing)
			break;
		/* Closed, or a new frontend already: ready for it. */
		tb_set_xenbus(tb, XenbusStateInitWait);
		tb->state = TPMBACK_INIT_WAIT;
		return true;
	case TPMBACK_CLOSED:
		/* The toolstack put the device back online. */
		tb_set_xenbus(tb, XenbusStateInitWait);
		tb->state = TPMBACK_INIT_WAIT;
		return true;
	default:
		break;
	}
	return false;
}

static void tb_reconcile(struct tpmback *tb)
{
	int passes = 0;

	if (tb->stopping || tb->state == TPMBACK_STOPPED)
		return;
	if (tb->in_reconcile) {
		tb->reconcile_again = true;
		return;
	}
	tb->in_reconcile = true;
	do {
		tb->reconcile_again = false;
		if (tb_step(tb))
			tb->reconcile_again = true;
	} while (tb->reconcile_again && !tb->stopping && ++passes < 4);
	tb->in_reconcile = false;
}

/* ---- libuv glue (xenloop) ---- */

static struct tpmback *tb_of(struct xenloop *xl)
{
	return xl->owner;
}

static void io_watch(struct xenloop *xl)
{
	tb_reconcile(tb_of(xl));
}

static bool io_ours(struct xenloop *xl, uint32_t port)
{
	struct tpmback *tb = tb_of(xl);

	return tb->bound && port == tb->local_port;
}

static void io_event(struct xenloop *xl)
{
	struct tpmback *tb = tb_of(xl);

	if (tb->stopping)
		return;
	tb->stats.events++;
	tb_check_page(tb);
}

/* A request may have come in while we were not listening. */
static void io_resumed(struct xenloop *xl)
{
	struct tpmback *tb = tb_of(xl);

	if (!tb->stopping)
		tb_check_page(tb);
}

static void tb_stopped(struct tpmback *tb);

static void io_closed(struct xenloop *xl)
{
	tb_stopped(tb_of(xl));
}

static const struct xenloop_ops io_ops = {
	.watch = io_watch,
	.ours = io_ours,
	.event = io_event,
	.resumed = io_resumed,
	.closed = io_closed,
};

/* ---- lifetime ---- */

int tpmback_init(struct tpmback *tb, uv_loop_t *loop, struct xenif *xif,
		 const struct tpmback_config *cfg,
		 const struct tpmback_ops *ops, void *data)
{
	memset(tb, 0, sizeof(*tb));
	if (!ops || !ops->submit || !xif ||
	    cfg->max_extra_pages > TPMBACK_MAX_EXTRA_PAGES)
		return -EINVAL;
	tb->loop = loop;
	tb->xif = xif;
	tb->cfg = *cfg;
	tb->ops = ops;
	tb->data = data;
	{
		char name[48];

		snprintf(name, sizeof(name), "dom%u vtpm %u",
			 cfg->frontend_domid, cfg->devid);
		xenloop_init(&tb->io, loop, xif, &io_ops, tb, name, &tb->rl,
			     cfg->storm_events, cfg->storm_window_ms,
			     cfg->storm_pause_ms, &tb->stats.throttled);
	}
	snprintf(tb->bpath, sizeof(tb->bpath),
		 "/local/domain/%u/backend/vtpm/%u/%u", cfg->backend_domid,
		 cfg->frontend_domid, cfg->devid);
	snprintf(tb->fpath, sizeof(tb->fpath),
		 "/local/domain/%u/device/vtpm/%u", cfg->frontend_domid,
		 cfg->devid);
	/* The largest command the mapped area can hold, allocated once. */
	tb->cmd = malloc((size_t)(1 + cfg->max_extra_pages) * PAGE);
	if (!tb->cmd)
		return -ENOMEM;
	return 0;
}

int tpmback_start(struct tpmback *tb)
{
	struct xenif *x = tb->xif;
	char token[64];
	int rc;

	rc = xenloop_start(&tb->io);
	if (rc)
		return rc;
	snprintf(token, sizeof(token), "tpmback:be:%u:%u",
		 tb->cfg.frontend_domid, tb->cfg.devid);
	rc = x->ops->xs_watch(x, tb->bpath, token);
	if (rc) {
		log_warnx("dom%u vtpm %u: cannot watch %s: %s",
			  tb->cfg.frontend_domid, tb->cfg.devid, tb->bpath,
			  strerror(-rc));
		return rc;
	}
	log_info("dom%u vtpm %u: watching %s", tb->cfg.frontend_domid,
		 tb->cfg.devid, tb->bpath);
	/* A device already there gets InitWait now, not on the first event. */
	tb_reconcile(tb);
	return 0;
}

static void tb_stopped(struct tpmback *tb)
{
	void (*cb)(struct tpmback *);

	tb->state = TPMBACK_STOPPED;
	free(tb->cmd);
	tb->cmd = NULL;
	free(tb->refused_why);
	tb->refused_why = NULL;
	cb = tb->stopped;
	tb->stopped = NULL;
	if (cb)
		cb(tb);
}

static void tb_finish_stop(struct tpmback *tb)
{
	char token[64];

	/* Once: the owner's cancel may complete (and so get here) from
	 * inside tpmback_stop, which then calls this again. */
	if (tb->busy || tb->state == TPMBACK_STOPPED || tb->stop_done)
		return;
	tb->stop_done = true;
	snprintf(token, sizeof(token), "tpmback:be:%u:%u",
		 tb->cfg.frontend_domid, tb->cfg.devid);
	tb->xif->ops->xs_unwatch(tb->xif, tb->bpath, token);
	tb_watch_frontend(tb, false);
	/* Leave the xenbus state: a restarted backend picks the guest up. */
	tb_release(tb);
	xenloop_close(&tb->io); /* tb_stopped when its handles are closed */
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
