/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The xenbus layer (transports/xen-ring/xenbus/xenbus.c) on its own,
 * against the simulated xenstore: strict reads of values a peer wrote
 * (junk, huge, NUL inside, missing), our writes, switching state only when
 * it changes, the peer's state, refusing once per reason, the flap count,
 * the reconcile trigger (re-entry, the pass cap, stopping), the xenloop
 * token filter, the one tpmback setup, and a start
 * that fails leaving nothing open.  A thin wrapper around the simulated
 * xenif counts writes and makes calls fail on demand.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xen/io/xenbus.h>

#include "lib/log.h"
#include "tpmif/tpmback.h"
#include "xenbus/xenbus.h"
#include "xensim.h"

#define SELF "/local/domain/0/backend/vtpm/5/0"
#define PEER "/local/domain/5/device/vtpm/0"

/* ---- a xenif that counts writes and fails on demand ---- */

struct spy {
	struct xenif base;
	struct xenif *in;
	unsigned int writes;
	int read_err;  /* every read fails with it (0: pass through) */
	int write_err; /* every write fails with it */
	int watch_err; /* every watch fails with it */
};

static struct xenif *in_of(struct xenif *x)
{
	return ((struct spy *)x)->in;
}

static void spy_close(struct xenif *x)
{
	xenif_close(in_of(x));
	free(x);
}

static int spy_read(struct xenif *x, const char *p, char **v, size_t *l)
{
	struct spy *s = (struct spy *)x;

	if (s->read_err)
		return s->read_err;
	return s->in->ops->xs_read(s->in, p, v, l);
}

static int spy_write(struct xenif *x, const char *p, const char *v)
{
	struct spy *s = (struct spy *)x;

	s->writes++;
	if (s->write_err)
		return s->write_err;
	return s->in->ops->xs_write(s->in, p, v);
}

static int spy_watch(struct xenif *x, const char *p, const char *t)
{
	struct spy *s = (struct spy *)x;

	if (s->watch_err)
		return s->watch_err;
	return s->in->ops->xs_watch(s->in, p, t);
}

static int spy_unwatch(struct xenif *x, const char *p, const char *t)
{
	return in_of(x)->ops->xs_unwatch(in_of(x), p, t);
}

static int spy_xs_fd(struct xenif *x)
{
	return in_of(x)->ops->xs_fd(in_of(x));
}

static int spy_watch_read(struct xenif *x, char **p, char **t)
{
	return in_of(x)->ops->xs_watch_read(in_of(x), p, t);
}

static int spy_ev_fd(struct xenif *x)
{
	return in_of(x)->ops->evtchn_fd(in_of(x));
}

static int spy_pending(struct xenif *x, uint32_t *port)
{
	return in_of(x)->ops->evtchn_pending(in_of(x), port);
}

static int spy_unmask(struct xenif *x, uint32_t port)
{
	return in_of(x)->ops->evtchn_unmask(in_of(x), port);
}

static const struct xenif_ops spy_ops = {
    .name = "spy",
    .close = spy_close,
    .xs_read = spy_read,
    .xs_write = spy_write,
    .xs_watch = spy_watch,
    .xs_unwatch = spy_unwatch,
    .xs_fd = spy_xs_fd,
    .xs_watch_read = spy_watch_read,
    .evtchn_fd = spy_ev_fd,
    .evtchn_pending = spy_pending,
    .evtchn_unmask = spy_unmask,
};

/* ---- the world ---- */

struct world {
	uv_loop_t loop;
	struct xensim *sim;
	struct spy *spy;
	struct xenbus_dev d;
	struct log_ratelimit rl;
	uint64_t rejected, throttled, events;
	bool stopping, bound;
	uint32_t port;
	/* the owner's state machine */
	unsigned int steps, want_again, reenter;
	bool stop_in_step;
	unsigned int event_calls;
	bool closed;
};

static bool w_step(struct xenbus_dev *d)
{
	struct world *W = d->owner;

	W->steps++;
	if (W->reenter) {
		/* A callback from inside a pass asks for another one. */
		W->reenter--;
		xenbus_reconcile(d);
	}
	if (W->stop_in_step)
		W->stopping = true;
	if (W->want_again) {
		W->want_again--;
		return true;
	}
	return false;
}

static void w_event(struct xenbus_dev *d)
{
	((struct world *)d->owner)->event_calls++;
}

static void w_closed(struct xenbus_dev *d)
{
	((struct world *)d->owner)->closed = true;
}

static const struct xenbus_ops w_ops = {
    .step = w_step,
    .event = w_event,
    .closed = w_closed,
};

static int setup(void **state)
{
	struct world *W = calloc(1, sizeof(*W));
	struct xenbus_setup s = {
	    .name = "dom5 vtpm 0",
	    .peer_role = "frontend",
	    .rl = &W->rl,
	    .rejected = &W->rejected,
	    .throttled = &W->throttled,
	    .events = &W->events,
	    .stopping = &W->stopping,
	    .port = &W->port,
	    .bound = &W->bound,
	};

	assert_non_null(W);
	assert_int_equal(uv_loop_init(&W->loop), 0);
	W->sim = xensim_new();
	assert_non_null(W->sim);
	W->spy = calloc(1, sizeof(*W->spy));
	assert_non_null(W->spy);
	W->spy->base.ops = &spy_ops;
	W->spy->in = xensim_open(W->sim, 0);
	assert_non_null(W->spy->in);
	xenbus_init(&W->d, &W->loop, &W->spy->base, &w_ops, W, &s);
	assert_int_equal(xenbus_set_self(&W->d, SELF, "t:self"), 0);
	assert_int_equal(xenbus_set_peer(&W->d, PEER, "t:peer"), 0);
	*state = W;
	return 0;
}

static int teardown(void **state)
{
	struct world *W = *state;

	xenbus_close(&W->d);
	for (int i = 0; i < 10 && !W->closed; i++)
		uv_run(&W->loop, UV_RUN_NOWAIT);
	assert_true(W->closed);
	assert_null(W->d.refused_why);
	assert_int_equal(uv_loop_close(&W->loop), 0);
	xenif_close(&W->spy->base);
	xensim_free(W->sim);
	free(W);
	return 0;
}

static void put(struct world *W, const char *path, const char *val)
{
	assert_int_equal(xensim_write(W->sim, path, val), 0);
}

static void put_raw(struct world *W, const char *path, const char *val,
		    size_t len)
{
	assert_int_equal(xensim_write_raw(W->sim, path, val, len), 0);
}

/* ---- strict reads ---- */

static void read_u32_takes_only_plain_decimals_in_range(void **state)
{
	struct world *W = *state;
	static const char *const junk[] = {
	    "",	  "x",	  "4x",	 "-1",	"+1",  " 1", "1 ",
	    "01", "0x10", "1e3", "1.0", "\t7", "１",
	};
	uint32_t v = 77;

	put(W, PEER "/n", "42");
	assert_int_equal(xenbus_read_u32(&W->d, PEER, "n", 100, &v), 0);
	assert_int_equal(v, 42);
	put(W, PEER "/n", "0");
	assert_int_equal(xenbus_read_u32(&W->d, PEER, "n", 100, &v), 0);
	assert_int_equal(v, 0);
	put(W, PEER "/n", "4294967295");
	assert_int_equal(xenbus_read_u32(&W->d, PEER, "n", UINT32_MAX, &v), 0);
	assert_int_equal(v, UINT32_MAX);
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		v = 77;
		put(W, PEER "/n", junk[i]);
		assert_int_equal(xenbus_read_u32(&W->d, PEER, "n", 100, &v),
				 -EINVAL);
		assert_int_equal(v, 77);
	}
}

static void read_u32_refuses_huge_values_and_above_max(void **state)
{
	struct world *W = *state;
	char big[8192];
	uint32_t v = 77;
	int rc;

	put(W, PEER "/n", "101");
	assert_int_equal(xenbus_read_u32(&W->d, PEER, "n", 100, &v), -ERANGE);
	put(W, PEER "/n", "4294967296");
	rc = xenbus_read_u32(&W->d, PEER, "n", UINT32_MAX, &v);
	assert_true(rc == -ERANGE || rc == -EINVAL);
	memset(big, '9', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	put(W, PEER "/n", big);
	rc = xenbus_read_u32(&W->d, PEER, "n", UINT32_MAX, &v);
	assert_true(rc == -ERANGE || rc == -EINVAL);
	assert_int_equal(v, 77);
}

static void read_u32_refuses_a_nul_inside_and_missing_nodes(void **state)
{
	struct world *W = *state;
	uint32_t v = 77;

	put_raw(W, PEER "/n",
		"4\0"
		"2",
		3);
	assert_int_equal(xenbus_read_u32(&W->d, PEER, "n", 100, &v), -EINVAL);
	put_raw(W, PEER "/n", "4\0", 2);
	assert_int_equal(xenbus_read_u32(&W->d, PEER, "n", 100, &v), -EINVAL);
	assert_int_equal(xenbus_read_u32(&W->d, PEER, "none", 100, &v),
			 -ENOENT);
	assert_int_equal(
	    xenbus_read_u32(&W->d, "/local/domain/99", "n", 100, &v), -ENOENT);
	assert_int_equal(v, 77);
}

static void read_is_matches_exactly(void **state)
{
	struct world *W = *state;
	char big[4096];

	put(W, PEER "/f", "1");
	assert_true(xenbus_read_is(&W->d, PEER, "f", "1"));
	assert_false(xenbus_read_is(&W->d, PEER, "f", "0"));
	put(W, PEER "/f", "11");
	assert_false(xenbus_read_is(&W->d, PEER, "f", "1"));
	put(W, PEER "/f", "");
	assert_false(xenbus_read_is(&W->d, PEER, "f", "1"));
	put_raw(W, PEER "/f", "1\0junk", 6);
	assert_false(xenbus_read_is(&W->d, PEER, "f", "1"));
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	put(W, PEER "/f", big);
	assert_false(xenbus_read_is(&W->d, PEER, "f", "1"));
	assert_false(xenbus_read_is(&W->d, PEER, "missing", "1"));
	assert_false(xenbus_exists(&W->d, PEER, "missing"));
	assert_true(xenbus_exists(&W->d, PEER, "f"));
}

static void an_unreadable_store_reads_as_absent_values(void **state)
{
	struct world *W = *state;
	uint32_t v = 77;

	put(W, PEER "/n", "1");
	W->spy->read_err = -EACCES;
	assert_int_equal(xenbus_read_u32(&W->d, PEER, "n", 100, &v), -EACCES);
	assert_false(xenbus_read_is(&W->d, PEER, "n", "1"));
	assert_false(xenbus_exists(&W->d, PEER, "n"));
	assert_int_equal(v, 77);
	W->spy->read_err = 0;
}

static void a_path_too_long_is_refused_not_cut(void **state)
{
	struct world *W = *state;
	char node[300], path[320];
	char *v = (char *)1;
	size_t len = 5;

	memset(node, 'a', sizeof(node) - 1);
	node[sizeof(node) - 1] = '\0';
	assert_int_equal(xenbus_read(&W->d, PEER, node, &v, &len),
			 -ENAMETOOLONG);
	assert_null(v); /* free(v) is always safe */
	assert_int_equal(xenbus_write(&W->d, node, "1"), -ENAMETOOLONG);
	assert_int_equal(W->spy->writes, 0);
	snprintf(path, sizeof(path), "/local/%s", node);
	assert_int_equal(xenbus_set_self(&W->d, path, "t"), -ENAMETOOLONG);
	assert_int_equal(xenbus_set_peer(&W->d, path, "t"), -ENAMETOOLONG);
	assert_string_equal(W->d.self, SELF);
	assert_string_equal(W->d.peer, PEER);
}

/* ---- writes and states ---- */

static void write_goes_to_our_directory(void **state)
{
	struct world *W = *state;
	char *v;

	assert_int_equal(xenbus_write(&W->d, "ready", "1"), 0);
	assert_int_equal(xenbus_write_u32(&W->d, "ring-ref", 4294967295u), 0);
	v = xensim_read(W->sim, SELF "/ready");
	assert_string_equal(v, "1");
	free(v);
	v = xensim_read(W->sim, SELF "/ring-ref");
	assert_string_equal(v, "4294967295");
	free(v);
	W->spy->write_err = -ENOSPC;
	assert_int_equal(xenbus_write(&W->d, "ready", "0"), -ENOSPC);
	W->spy->write_err = 0;
	v = xensim_read(W->sim, SELF "/ready");
	assert_string_equal(v, "1");
	free(v);
}

static void switch_state_writes_only_a_change(void **state)
{
	struct world *W = *state;
	char *v;

	xenbus_switch_state(&W->d, XenbusStateInitWait);
	assert_int_equal(W->spy->writes, 1);
	xenbus_switch_state(&W->d, XenbusStateInitWait);
	assert_int_equal(W->spy->writes, 1);
	/* The toolstack wrote something else (or junk): ours again. */
	put(W, SELF "/state", "5");
	xenbus_switch_state(&W->d, XenbusStateInitWait);
	assert_int_equal(W->spy->writes, 2);
	put_raw(W, SELF "/state", "2\0x", 3);
	xenbus_switch_state(&W->d, XenbusStateInitWait);
	assert_int_equal(W->spy->writes, 3);
	v = xensim_read(W->sim, SELF "/state");
	assert_string_equal(v, "2");
	free(v);
	xenbus_switch_state(&W->d, XenbusStateConnected);
	assert_int_equal(W->spy->writes, 4);
	v = xensim_read(W->sim, SELF "/state");
	assert_string_equal(v, "4");
	free(v);
}

static void peer_state_is_strict(void **state)
{
	struct world *W = *state;

	assert_int_equal(xenbus_peer_state(&W->d, false), XenbusStateUnknown);
	put(W, PEER "/state", "3");
	assert_int_equal(xenbus_peer_state(&W->d, false),
			 XenbusStateInitialised);
	put(W, PEER "/state", "8");
	assert_int_equal(xenbus_peer_state(&W->d, false),
			 XenbusStateReconfigured);
	assert_int_equal(W->rejected, 0);
	put(W, PEER "/state", "9");
	assert_int_equal(xenbus_peer_state(&W->d, false), -1);
	put(W, PEER "/state", "4 ");
	assert_int_equal(xenbus_peer_state(&W->d, false), -1);
	put(W, PEER "/state", "99999999999999999999999");
	assert_int_equal(xenbus_peer_state(&W->d, false), -1);
	put_raw(W, PEER "/state", "4\0", 2);
	assert_int_equal(xenbus_peer_state(&W->d, false), -1);
	assert_int_equal(W->rejected, 4);
	/* A destroyed domain's nodes: gone only when the owner says so. */
	W->spy->read_err = -EACCES;
	assert_int_equal(xenbus_peer_state(&W->d, true), XenbusStateUnknown);
	assert_int_equal(xenbus_peer_state(&W->d, false), -1);
	assert_int_equal(W->rejected, 5);
	W->spy->read_err = 0;
}

/* ---- the log ---- */

static void a_refusal_is_kept_once_per_reason(void **state)
{
	struct world *W = *state;
	char *first;

	xenbus_refuse(&W->d, "refusing the device: %s", "uuid unknown");
	first = W->d.refused_why;
	assert_non_null(first);
	assert_string_equal(first, "refusing the device: uuid unknown");
	/* The same reason again is not logged again (nor copied again). */
	xenbus_refuse(&W->d, "refusing the device: %s", "uuid unknown");
	assert_ptr_equal(W->d.refused_why, first);
	xenbus_refuse(&W->d, "refusing the device: %s", "no uuid node");
	assert_string_equal(W->d.refused_why,
			    "refusing the device: no uuid node");
	xenbus_accept(&W->d);
	assert_null(W->d.refused_why);
	/* A hostile reason as long as it likes is cut, not overflowed. */
	{
		char big[2000];

		memset(big, 'z', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		xenbus_refuse(&W->d, "frontend is \"%s\"", big);
		assert_true(strlen(W->d.refused_why) < 256);
	}
	/* Left set: teardown checks the close frees it. */
}

static void connects_beyond_the_quiet_count_are_a_flap(void **state)
{
	struct world *W = *state;

	for (unsigned int i = 1; i <= XENBUS_FLAP_QUIET + 3; i++) {
		xenbus_log_connect(&W->d, "connected (%u)", i);
		assert_int_equal(W->d.flap_count, i);
		xenbus_log_disconnect(&W->d, "disconnected (%u)", i);
	}
}

/* ---- the reconcile trigger ---- */

static void reconcile_folds_reentry_into_one_more_pass(void **state)
{
	struct world *W = *state;

	xenbus_reconcile(&W->d);
	assert_int_equal(W->steps, 1);
	W->steps = 0;
	W->reenter = 1;
	xenbus_reconcile(&W->d);
	assert_int_equal(W->steps, 2);
	assert_false(W->d.in_reconcile);
}

static void reconcile_makes_at_most_the_pass_cap(void **state)
{
	struct world *W = *state;

	W->want_again = 100;
	xenbus_reconcile(&W->d);
	assert_int_equal(W->steps, XENBUS_RECONCILE_PASSES);
	W->steps = 0;
	W->want_again = 0;
	W->reenter = 100;
	xenbus_reconcile(&W->d);
	assert_int_equal(W->steps, XENBUS_RECONCILE_PASSES);
}

static void reconcile_stops_with_its_owner(void **state)
{
	struct world *W = *state;

	W->want_again = 3;
	W->stop_in_step = true;
	xenbus_reconcile(&W->d);
	assert_int_equal(W->steps, 1);
	xenbus_reconcile(&W->d);
	assert_int_equal(W->steps, 1);
	W->stopping = false;
}

/* ---- lifetime ---- */

static void start_watches_and_a_watch_runs_a_pass(void **state)
{
	struct world *W = *state;

	assert_int_equal(xenbus_start(&W->d), 0);
	assert_true(W->d.self_watched);
	for (int i = 0; i < 10 && W->steps == 0; i++)
		uv_run(&W->loop, UV_RUN_NOWAIT);
	assert_true(W->steps >= 1); /* the watch's first event */
	W->steps = 0;
	put(W, SELF "/frontend", PEER);
	for (int i = 0; i < 10 && W->steps == 0; i++)
		uv_run(&W->loop, UV_RUN_NOWAIT);
	assert_true(W->steps >= 1);
	xenbus_watch_peer(&W->d, true);
	assert_true(W->d.peer_watched);
	xenbus_watch_peer(&W->d, false);
	assert_false(W->d.peer_watched);
}

static void a_failed_start_leaves_nothing_open(void **state)
{
	struct world *W = *state;

	W->spy->watch_err = -ENOSPC;
	assert_int_equal(xenbus_start(&W->d), -ENOSPC);
	assert_false(W->d.self_watched);
	assert_int_equal(uv_loop_alive(&W->loop), 0);
	/* A peer watch that cannot be set is tried again later. */
	xenbus_watch_peer(&W->d, true);
	assert_false(W->d.peer_watched);
	W->spy->watch_err = 0;
	xenbus_watch_peer(&W->d, true);
	assert_true(W->d.peer_watched);
}

/* ---- xenloop on its own: the xenstore side only, one token ---- */

struct xs_only {
	unsigned int watches;
	bool closed;
};

static void xo_watch(struct xenloop *xl)
{
	((struct xs_only *)xl->owner)->watches++;
}

static void xo_closed(struct xenloop *xl)
{
	((struct xs_only *)xl->owner)->closed = true;
}

static const struct xenloop_ops xo_ops = {
    .watch = xo_watch,
    .closed = xo_closed,
};

static void turns(struct world *W, int n)
{
	while (n-- > 0)
		uv_run(&W->loop, UV_RUN_NOWAIT);
}

static void xenloop_wakes_its_owner_only_for_its_token(void **state)
{
	struct world *W = *state;
	struct xenif *x = xensim_open(W->sim, 0);
	struct xs_only o = {0};
	struct xenloop xl;

	assert_non_null(x);
	xenloop_init(&xl, &W->loop, x, &xo_ops, &o, "xs-only", &W->rl, 0, 0, 0,
		     NULL);
	xl.token = "mine";
	assert_int_equal(x->ops->xs_watch(x, "/a", "other"), 0);
	assert_int_equal(xenloop_start(&xl), 0);
	assert_false(xl.evtchn); /* no event channel polled */
	turns(W, 3);
	assert_int_equal(o.watches, 0); /* "other" fired at once: not ours */
	assert_int_equal(x->ops->xs_watch(x, "/b", "mine"), 0);
	turns(W, 3);
	assert_int_equal(o.watches, 1);
	put(W, "/a/x", "1");
	turns(W, 3);
	assert_int_equal(o.watches, 1);
	put(W, "/b/x", "1");
	turns(W, 3);
	assert_int_equal(o.watches, 2);
	xenloop_close(&xl);
	turns(W, 3);
	assert_true(o.closed);
	xenif_close(x);
}

/* ---- the one tpmback setup (tpmif, on this layer) ---- */

static void tpmback_config_init_is_the_one_default(void **state)
{
	static const uint8_t u[16] = {1, 2, 3};
	struct tpmback_config c;

	(void)state;
	memset(&c, 0xa5, sizeof(c));
	tpmback_config_init(&c, 7, 5, 2, u);
	assert_int_equal(c.backend_domid, 7);
	assert_int_equal(c.frontend_domid, 5);
	assert_int_equal(c.devid, 2);
	assert_true(c.have_uuid);
	assert_memory_equal(c.uuid, u, 16);
	assert_int_equal(c.max_extra_pages, TPMBACK_MAX_EXTRA_PAGES);
	assert_int_equal(c.max_cmd, 0);
	assert_int_equal(c.storm_events, 0);
	assert_int_equal(c.initwait_hold_ms, TPMBACK_INITWAIT_HOLD_MS);
	tpmback_config_init(&c, 0, 5, 0, NULL);
	assert_false(c.have_uuid);
}

static void be_submit(struct tpmback *tb, const uint8_t *cmd, uint32_t len,
		      unsigned int locality)
{
	(void)cmd;
	(void)len;
	(void)locality;
	tpmback_complete(tb, NULL, 0);
}

static const struct tpmback_ops be_ops = {.submit = be_submit};

static void a_backend_that_cannot_start_leaves_nothing_behind(void **state)
{
	struct world *W = *state;
	struct tpmback_config c;
	struct tpmback *tb = calloc(1, sizeof(*tb));

	assert_non_null(tb);
	tpmback_config_init(&c, 0, 5, 0, NULL);
	W->spy->watch_err = -ENOSPC;
	assert_int_equal(
	    tpmback_serve(tb, &W->loop, &W->spy->base, &c, &be_ops, NULL),
	    -ENOSPC);
	W->spy->watch_err = 0;
	/* No handle in the loop, nothing allocated: free at once. */
	assert_int_equal(uv_loop_alive(&W->loop), 0);
	assert_null(tb->cmd);
	free(tb);
	c.max_extra_pages = TPMBACK_MAX_EXTRA_PAGES + 1;
	tb = calloc(1, sizeof(*tb));
	assert_int_equal(
	    tpmback_serve(tb, &W->loop, &W->spy->base, &c, &be_ops, NULL),
	    -EINVAL);
	assert_null(tb->cmd);
	free(tb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T(read_u32_takes_only_plain_decimals_in_range),
	    T(read_u32_refuses_huge_values_and_above_max),
	    T(read_u32_refuses_a_nul_inside_and_missing_nodes),
	    T(read_is_matches_exactly),
	    T(an_unreadable_store_reads_as_absent_values),
	    T(a_path_too_long_is_refused_not_cut),
	    T(write_goes_to_our_directory),
	    T(switch_state_writes_only_a_change),
	    T(peer_state_is_strict),
	    T(a_refusal_is_kept_once_per_reason),
	    T(connects_beyond_the_quiet_count_are_a_flap),
	    T(reconcile_folds_reentry_into_one_more_pass),
	    T(reconcile_makes_at_most_the_pass_cap),
	    T(reconcile_stops_with_its_owner),
	    T(start_watches_and_a_watch_runs_a_pass),
	    T(a_failed_start_leaves_nothing_open),
	    T(xenloop_wakes_its_owner_only_for_its_token),
	    T(tpmback_config_init_is_the_one_default),
	    T(a_backend_that_cannot_start_leaves_nothing_behind),
#undef T
	};

	log_init("test_xenbus", LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
