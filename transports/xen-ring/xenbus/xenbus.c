/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The xenbus plumbing tpmback and tpmfront share; see xenbus.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xen/io/xenbus.h>

#include "lib/hex.h"
#include "xenbus/xenbus.h"

/* ---- the xenloop's callbacks, handed to the owner ---- */

static struct xenbus_dev *dev_of(struct xenloop *xl)
{
	return xl->owner;
}

static void io_watch(struct xenloop *xl)
{
	xenbus_reconcile(dev_of(xl));
}

static bool io_ours(struct xenloop *xl, uint32_t port)
{
	struct xenbus_dev *d = dev_of(xl);

	return *d->bound && port == *d->port;
}

static void io_event(struct xenloop *xl)
{
	struct xenbus_dev *d = dev_of(xl);

	if (*d->stopping)
		return;
	if (d->events)
		(*d->events)++;
	d->ops->event(d);
}

/* A storm pause ended: look, as something may have come meanwhile. */
static void io_resumed(struct xenloop *xl)
{
	struct xenbus_dev *d = dev_of(xl);

	if (!*d->stopping)
		d->ops->event(d);
}

static void io_closed(struct xenloop *xl)
{
	struct xenbus_dev *d = dev_of(xl);

	xenbus_accept(d);
	d->ops->closed(d);
}

static const struct xenloop_ops io_ops = {
    .watch = io_watch,
    .ours = io_ours,
    .event = io_event,
    .resumed = io_resumed,
    .closed = io_closed,
};

/* ---- lifetime ---- */

void xenbus_init(struct xenbus_dev *d, uv_loop_t *loop, struct xenif *xif,
		 const struct xenbus_ops *ops, void *owner,
		 const struct xenbus_setup *s)
{
	memset(d, 0, sizeof(*d));
	d->loop = loop;
	d->xif = xif;
	d->ops = ops;
	d->owner = owner;
	snprintf(d->name, sizeof(d->name), "%s", s->name);
	d->peer_role = s->peer_role;
	d->rl = s->rl;
	d->rejected = s->rejected;
	d->events = s->events;
	d->stopping = s->stopping;
	d->port = s->port;
	d->bound = s->bound;
	xenloop_init(&d->io, loop, xif, &io_ops, d, d->name, s->rl,
		     s->storm_events, s->storm_window_ms, s->storm_pause_ms,
		     s->throttled);
}

static int set_dir(char *path, size_t plen, char *tok, size_t tlen,
		   const char *p, const char *t)
{
	if (strlen(p) >= plen || strlen(t) >= tlen)
		return -ENAMETOOLONG;
	memcpy(path, p, strlen(p) + 1);
	memcpy(tok, t, strlen(t) + 1);
	return 0;
}

int xenbus_set_self(struct xenbus_dev *d, const char *path, const char *token)
{
	return set_dir(d->self, sizeof(d->self), d->self_token,
		       sizeof(d->self_token), path, token);
}

int xenbus_set_peer(struct xenbus_dev *d, const char *path, const char *token)
{
	return set_dir(d->peer, sizeof(d->peer), d->peer_token,
		       sizeof(d->peer_token), path, token);
}

int xenbus_start(struct xenbus_dev *d)
{
	struct xenif *x = d->xif;
	int rc;

	/* The watch first: its first event waits in the fd for the poll,
	 * and a failed start leaves no handle open for the owner to wait
	 * for (it may free the device at once). */
	rc = x->ops->xs_watch(x, d->self, d->self_token);
	if (rc) {
		log_warnx("%s: cannot watch %s: %s", d->name, d->self,
			  strerror(-rc));
		return rc;
	}
	rc = xenloop_start(&d->io);
	if (rc) {
		x->ops->xs_unwatch(x, d->self, d->self_token);
		return rc;
	}
	d->self_watched = true;
	return 0;
}

void xenbus_watch_peer(struct xenbus_dev *d, bool on)
{
	struct xenif *x = d->xif;
	int rc;

	if (d->peer_watched == on)
		return;
	if (on)
		rc = x->ops->xs_watch(x, d->peer, d->peer_token);
	else
		rc = x->ops->xs_unwatch(x, d->peer, d->peer_token);
	if (rc && on) {
		log_warnx_rl(d->rl, "%s: cannot watch %s: %s", d->name, d->peer,
			     strerror(-rc));
		return;
	}
	d->peer_watched = on;
}

void xenbus_close(struct xenbus_dev *d)
{
	if (d->self_watched) {
		d->xif->ops->xs_unwatch(d->xif, d->self, d->self_token);
		d->self_watched = false;
	}
	xenbus_watch_peer(d, false);
	xenloop_close(&d->io);
}

/* ---- xenstore ---- */

int xenbus_read(struct xenbus_dev *d, const char *dir, const char *node,
		char **val, size_t *len)
{
	char path[160];
	int n;

	*val = NULL;
	*len = 0;
	n = snprintf(path, sizeof(path), "%s/%s", dir, node);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	return d->xif->ops->xs_read(d->xif, path, val, len);
}

int xenbus_read_u32(struct xenbus_dev *d, const char *dir, const char *node,
		    uint32_t max, uint32_t *out)
{
	char *v;
	size_t len;
	int rc;

	rc = xenbus_read(d, dir, node, &v, &len);
	if (rc == 0)
		rc = dec_parse_u32(v, len, max, out);
	free(v);
	return rc;
}

bool xenbus_read_is(struct xenbus_dev *d, const char *dir, const char *node,
		    const char *want)
{
	char *v;
	size_t len;
	bool same;

	same = xenbus_read(d, dir, node, &v, &len) == 0 &&
	       len == strlen(want) && memcmp(v, want, len) == 0;
	free(v);
	return same;
}

bool xenbus_exists(struct xenbus_dev *d, const char *dir, const char *node)
{
	char *v;
	size_t len;
	int rc = xenbus_read(d, dir, node, &v, &len);

	free(v);
	return rc == 0;
}

int xenbus_write(struct xenbus_dev *d, const char *node, const char *val)
{
	char path[160];
	int n, rc;

	n = snprintf(path, sizeof(path), "%s/%s", d->self, node);
	if (n < 0 || (size_t)n >= sizeof(path))
		rc = -ENAMETOOLONG;
	else
		rc = d->xif->ops->xs_write(d->xif, path, val);
	if (rc)
		log_warnx_rl(d->rl, "%s: cannot write %s/%s: %s", d->name,
			     d->self, node, strerror(-rc));
	return rc;
}

int xenbus_write_u32(struct xenbus_dev *d, const char *node, uint32_t val)
{
	char v[12];

	snprintf(v, sizeof(v), "%u", val);
	return xenbus_write(d, node, v);
}

void xenbus_switch_state(struct xenbus_dev *d, int state)
{
	char want[12];

	snprintf(want, sizeof(want), "%d", state);
	if (!xenbus_read_is(d, d->self, "state", want))
		xenbus_write(d, "state", want);
}

int xenbus_peer_state(struct xenbus_dev *d, bool unreadable_is_gone)
{
	uint32_t st;
	int rc;

	rc = xenbus_read_u32(d, d->peer, "state", XenbusStateReconfigured, &st);
	if (rc == -ENOENT || (rc == -EACCES && unreadable_is_gone))
		return XenbusStateUnknown;
	if (rc) {
		if (d->rejected)
			(*d->rejected)++;
		log_warnx_rl(d->rl,
			     "%s: %s state node holds junk (%s); ignored",
			     d->name, d->peer_role, strerror(-rc));
		return -1;
	}
	return (int)st;
}

/* ---- the log ---- */

/* buf (an array) := the variadic function's fmt and arguments */
#define FORMAT_ARGS(buf, fmt)                                                  \
	do {                                                                   \
		va_list ap_;                                                   \
		va_start(ap_, fmt);                                            \
		vsnprintf(buf, sizeof(buf), fmt, ap_);                         \
		va_end(ap_);                                                   \
	} while (0)

void xenbus_refuse(struct xenbus_dev *d, const char *fmt, ...)
{
	char why[256];

	FORMAT_ARGS(why, fmt);
	if (d->refused_why && strcmp(d->refused_why, why) == 0)
		return;
	log_warnx("%s: %s", d->name, why);
	free(d->refused_why);
	d->refused_why = strdup(why);
}

void xenbus_accept(struct xenbus_dev *d)
{
	free(d->refused_why);
	d->refused_why = NULL;
}

void xenbus_log_connect(struct xenbus_dev *d, const char *fmt, ...)
{
	uint64_t now = uv_now(d->loop);
	char msg[200];

	if (d->flap_count == 0 ||
	    now - d->flap_start >= XENBUS_FLAP_WINDOW_MS) {
		d->flap_start = now;
		d->flap_count = 0;
	}
	if (++d->flap_count > XENBUS_FLAP_QUIET) {
		log_warnx_rl(d->rl,
			     "%s: %u connects within %u s: the %s is flapping "
			     "its state",
			     d->name, d->flap_count,
			     XENBUS_FLAP_WINDOW_MS / 1000, d->peer_role);
		return;
	}
	FORMAT_ARGS(msg, fmt);
	log_info("%s: %s", d->name, msg);
}

void xenbus_log_disconnect(struct xenbus_dev *d, const char *fmt, ...)
{
	char msg[200];

	FORMAT_ARGS(msg, fmt);
	if (d->flap_count <= XENBUS_FLAP_QUIET)
		log_info("%s: %s", d->name, msg);
	else
		log_debug("%s: %s", d->name, msg);
}

/* ---- the state machine ---- */

void xenbus_reconcile(struct xenbus_dev *d)
{
	int passes = 0;

	if (*d->stopping)
		return;
	if (d->in_reconcile) {
		d->reconcile_again = true;
		return;
	}
	d->in_reconcile = true;
	do {
		d->reconcile_again = false;
		if (d->ops->step(d))
			d->reconcile_again = true;
	} while (d->reconcile_again && !*d->stopping &&
		 ++passes < XENBUS_RECONCILE_PASSES);
	d->in_reconcile = false;
}
