/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The real tpmfront (transports/xen-ring) against the real tpmback
 * through a simulated Xen (xensim.c), both on one uv loop, each with its
 * own xenif (the frontend as domain FDOM, the backend as dom0): the
 * handshake, commands, cancel, timeouts, backend restart and detach,
 * frontend teardown.  The hostile cases play the backend by hand through
 * the sim: they map the frontend's page and write what a broken or
 * malicious backend would.  Every shared page sits between PROT_NONE
 * guard pages and an unshared one becomes PROT_NONE, so a frontend
 * access outside its area, or after it gave it back, is a SIGSEGV.
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
#include <unistd.h>

#include <xen/io/tpmif.h>

#include "lib/log.h"
#include "instance/mgrlink.h"
#include "xen-ring/mgrlink_xen.h"
#include "proto/mgrproto.h"
#include "tpmif/tpmback.h"
#include "tpmif/tpmfront.h"
#include "xensim.h"

#define BDOM 0u
#define FDOM 5u
#define PG 4096u
#define OFF 8u

static const char UUID_A[] = "4a1e0b8e-2f33-4c6a-9d2e-0123456789ab";

/* ---- a backend: the real tpmback with a fake engine ---- */

enum engine_mode { ENG_ECHO, ENG_DEFER };

struct be {
	struct tpmback tb;
	struct xenif *x;
	enum engine_mode mode;
	bool cancel_aborts; /* the engine gives up when cancelled */
	unsigned int submits, cancels, power_cycles;
	bool stopped;
};

static void eng_submit(struct tpmback *tb, const uint8_t *cmd, uint32_t len,
		       unsigned int loc)
{
	struct be *b = tb->data;

	(void)loc;
	b->submits++;
	if (b->mode == ENG_ECHO)
		tpmback_complete(tb, cmd, len);
}

static void eng_cancel(struct tpmback *tb)
{
	struct be *b = tb->data;

	b->cancels++;
	if (b->cancel_aborts)
		tpmback_complete(tb, NULL, 0);
}

static void eng_power_cycle(struct tpmback *tb)
{
	((struct be *)tb->data)->power_cycles++;
}

static const struct tpmback_ops eng_ops = {
    .submit = eng_submit,
    .cancel = eng_cancel,
    .power_cycle = eng_power_cycle,
};

/* ---- the world ---- */

struct result {
	int calls;
	int status;
	uint8_t data[2 * PG];
	uint32_t len;
};

struct world {
	uv_loop_t loop;
	struct xensim *w;
	struct be be;
	struct tpmfront tf;
	struct xenif *fx;
	bool fe_started, fe_stopped;
	struct result res;
	unsigned int state_calls;
	/* a backend played by hand */
	struct xenif *hx;
	uint8_t *hpage;
	uint32_t hport;
};

static void turn(struct world *W)
{
	uv_run(&W->loop, UV_RUN_NOWAIT);
}

/* Runs the loop until cond or ms pass; nothing in the loop blocks. */
#define RUN_UNTIL(W, cond, ms)                                           \
	do {                                                             \
		uint64_t t0_ = uv_hrtime();                              \
		while (!(cond) &&                                        \
		       uv_hrtime() - t0_ < (uint64_t)(ms) * 1000000u) {  \
			turn(W);                                         \
			if (!(cond))                                     \
				usleep(500);                             \
		}                                                        \
	} while (0)

static void turns(struct world *W, int n)
{
	while (n-- > 0)
		turn(W);
}

static char *rd(struct world *W, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static char *rd(struct world *W, const char *fmt, ...)
{
	char p[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p, sizeof(p), fmt, ap);
	va_end(ap);
	return xensim_read(W->w, p);
}

static void wr(struct world *W, const char *val, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void wr(struct world *W, const char *val, const char *fmt, ...)
{
	char p[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p, sizeof(p), fmt, ap);
	va_end(ap);
	assert_int_equal(xensim_write(W->w, p, val), 0);
}

#define BE "/local/domain/0/backend/vtpm/5/0"
#define FE "/local/domain/5/device/vtpm/0"

static void assert_node(struct world *W, const char *path, const char *want)
{
	char *v = xensim_read(W->w, path);

	if (!want) {
		assert_null(v);
		return;
	}
	assert_non_null(v);
	assert_string_equal(v, want);
	free(v);
}

/* What libxl writes for vtpm=["backend=0,uuid=..."] in domain FDOM. */
static void toolstack_add(struct world *W)
{
	wr(W, FE, BE "/frontend");
	wr(W, "5", BE "/frontend-id");
	wr(W, "1", BE "/online");
	wr(W, "0", BE "/handle");
	wr(W, UUID_A, BE "/uuid");
	wr(W, "1", BE "/state");
	wr(W, BE, FE "/backend");
	wr(W, "0", FE "/backend-id");
	wr(W, "0", FE "/handle");
	wr(W, "1", FE "/state");
}

static void be_start(struct world *W, unsigned int max_extra)
{
	struct tpmback_config cfg;
	struct be *b = &W->be;

	tpmback_config_init(&cfg, BDOM, FDOM, 0, NULL);
	cfg.initwait_hold_ms = 0; /* tests step the loop; no hold */
	cfg.max_extra_pages = max_extra;
	b->stopped = false;
	b->x = xensim_open(W->w, BDOM);
	assert_non_null(b->x);
	assert_int_equal(
	    tpmback_serve(&b->tb, &W->loop, b->x, &cfg, &eng_ops, b), 0);
}

static void be_stopped(struct tpmback *tb)
{
	((struct be *)tb->data)->stopped = true;
}

static void be_stop(struct world *W)
{
	tpmback_stop(&W->be.tb, be_stopped);
	RUN_UNTIL(W, W->be.stopped, 1000);
	assert_true(W->be.stopped);
	xenif_close(W->be.x);
	W->be.x = NULL;
}

static void on_state(struct tpmfront *tf)
{
	((struct world *)tf->data)->state_calls++;
}

static void fe_start_cfg(struct world *W, const struct tpmfront_config *cfg)
{
	W->fx = xensim_open(W->w, FDOM);
	assert_non_null(W->fx);
	assert_int_equal(
	    tpmfront_init(&W->tf, &W->loop, W->fx, cfg, on_state, W), 0);
	assert_int_equal(tpmfront_start(&W->tf), 0);
	W->fe_started = true;
}

static void fe_start(struct world *W, unsigned int max_extra)
{
	struct tpmfront_config cfg = {
	    .devid = 0,
	    .have_backend = true,
	    .backend_domid = BDOM,
	    .max_extra_pages = max_extra,
	    .cancel_wait_ms = 100,
	};

	fe_start_cfg(W, &cfg);
}

static void fe_stopped(struct tpmfront *tf)
{
	((struct world *)tf->data)->fe_stopped = true;
}

static void fe_stop(struct world *W)
{
	tpmfront_stop(&W->tf, fe_stopped);
	RUN_UNTIL(W, W->fe_stopped, 1000);
	assert_true(W->fe_stopped);
}

static void on_rsp(struct tpmfront *tf, int status, const uint8_t *rsp,
		   uint32_t len, void *arg)
{
	struct result *r = arg;

	(void)tf;
	r->calls++;
	r->status = status;
	r->len = len;
	if (status == 0) {
		assert_non_null(rsp);
		assert_true(len <= sizeof(r->data));
		memcpy(r->data, rsp, len);
	} else {
		assert_null(rsp);
	}
}

static int submit(struct world *W, const uint8_t *cmd, uint32_t len,
		  unsigned int timeout_ms)
{
	memset(&W->res, 0, sizeof(W->res));
	return tpmfront_submit(&W->tf, cmd, len, 0, timeout_ms, on_rsp,
			       &W->res);
}

static void connect_both(struct world *W, unsigned int be_extra,
			 unsigned int fe_extra)
{
	toolstack_add(W);
	be_start(W, be_extra);
	fe_start(W, fe_extra);
	RUN_UNTIL(W, tpmfront_connected(&W->tf) &&
			 W->be.tb.state == TPMBACK_CONNECTED,
		  2000);
	assert_true(tpmfront_connected(&W->tf));
	assert_int_equal(W->be.tb.state, TPMBACK_CONNECTED);
}

static int setup(void **state)
{
	struct world *W = calloc(1, sizeof(*W));

	assert_non_null(W);
	assert_int_equal(uv_loop_init(&W->loop), 0);
	W->w = xensim_new();
	assert_non_null(W->w);
	*state = W;
	return 0;
}

static int teardown(void **state)
{
	struct world *W = *state;

	if (W->fe_started && !W->fe_stopped)
		fe_stop(W);
	if (W->be.x)
		be_stop(W);
	turns(W, 3);
	/* Everything shared, mapped or bound was given back. */
	assert_int_equal(xensim_shares_live(W->w), 0);
	assert_int_equal(xensim_front_ports_live(W->w), 0);
	assert_int_equal(xensim_maps_live(W->w), 0);
	assert_int_equal(xensim_binds_live(W->w), 0);
	xenif_close(W->fx);
	xenif_close(W->hx);
	assert_int_equal(uv_loop_close(&W->loop), 0);
	xensim_free(W->w);
	free(W);
	return 0;
}

/* ---- with the real backend ---- */

static void handshake_publishes_and_connects(void **state)
{
	struct world *W = *state;
	char *ref, *port;

	connect_both(W, 0, 0);
	assert_node(W, FE "/state", "4");
	assert_node(W, FE "/feature-protocol-v2", "1");
	assert_node(W, BE "/state", "4");
	ref = rd(W, FE "/ring-ref");
	port = rd(W, FE "/event-channel");
	assert_non_null(ref);
	assert_non_null(port);
	assert_int_equal(atoi(ref), W->be.tb.ring_ref);
	free(ref);
	free(port);
	assert_int_equal(xensim_shares_live(W->w), 1);
	assert_int_equal(xensim_front_ports_live(W->w), 1);
	assert_int_equal(xensim_maps_live(W->w), 1);
	assert_int_equal(xensim_binds_live(W->w), 1);
	assert_int_equal(tpmfront_capacity(&W->tf), PG - OFF);
	assert_int_equal(W->tf.stats.connects, 1);
	assert_true(W->state_calls >= 1);
}

static void fill(uint8_t *b, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		b[i] = (uint8_t)(i * 31 + seed);
}

static void echo_sizes(struct world *W, const uint32_t *sizes, size_t n)
{
	static uint8_t cmd[2 * PG];

	for (size_t i = 0; i < n; i++) {
		fill(cmd, sizes[i], (uint32_t)i);
		assert_int_equal(submit(W, cmd, sizes[i], 1000), 0);
		assert_int_equal(W->res.calls, 0); /* never from inside */
		RUN_UNTIL(W, W->res.calls, 1000);
		assert_int_equal(W->res.calls, 1);
		assert_int_equal(W->res.status, 0);
		assert_int_equal(W->res.len, sizes[i]);
		assert_memory_equal(W->res.data, cmd, sizes[i]);
	}
}

static void commands_of_several_sizes_up_to_a_page(void **state)
{
	struct world *W = *state;
	static const uint32_t sizes[] = {1, 10, 12, 100, 1000, 4000, PG - OFF};
	static uint8_t big[PG];

	connect_both(W, 2, 0);
	W->be.mode = ENG_ECHO;
	echo_sizes(W, sizes, sizeof(sizes) / sizeof(sizes[0]));
	assert_int_equal(W->be.submits, 7);
	assert_int_equal(submit(W, big, PG - OFF + 1, 0), -EMSGSIZE);
	assert_int_equal(submit(W, big, 0, 0), -EMSGSIZE);
	assert_int_equal(tpmfront_submit(&W->tf, big, 10, 5, 0, on_rsp,
					 &W->res),
			 -EINVAL);
	/* The response was wiped from the shared page. */
	for (uint32_t i = 0; i < PG - OFF; i++)
		assert_int_equal(((uint8_t *)W->tf.area)[OFF + i], 0);
}

static void extra_pages_when_the_backend_offers_them(void **state)
{
	struct world *W = *state;
	static const uint32_t sizes[] = {100, PG, MGR_MAX_FRAME, 2 * PG - 12};

	connect_both(W, 2, 1);
	assert_node(W, BE "/feature-extra-pages", "2");
	assert_int_equal(W->tf.n_extra, 1);
	assert_int_equal(tpmfront_capacity(&W->tf), 2 * PG - 12);
	W->be.mode = ENG_ECHO;
	echo_sizes(W, sizes, sizeof(sizes) / sizeof(sizes[0]));
	assert_int_equal(W->be.tb.extra_n, 1);
}

static void busy_and_not_connected_are_refused(void **state)
{
	struct world *W = *state;
	uint8_t cmd[10] = {0};

	toolstack_add(W);
	fe_start(W, 0);
	turns(W, 5);
	assert_int_equal(submit(W, cmd, sizeof(cmd), 0), -ENOTCONN);
	be_start(W, 0);
	RUN_UNTIL(W, tpmfront_connected(&W->tf), 1000);
	W->be.mode = ENG_DEFER;
	assert_int_equal(submit(W, cmd, sizeof(cmd), 0), 0);
	assert_int_equal(tpmfront_submit(&W->tf, cmd, 10, 0, 0, on_rsp, NULL),
			 -EBUSY);
	RUN_UNTIL(W, W->be.submits == 1, 1000);
	tpmback_complete(&W->be.tb, cmd, sizeof(cmd));
	RUN_UNTIL(W, W->res.calls, 1000);
	assert_int_equal(W->res.status, 0);
}

static void cancel_aborted_by_the_backend(void **state)
{
	struct world *W = *state;
	uint8_t cmd[20] = {1, 2, 3};

	connect_both(W, 0, 0);
	W->be.mode = ENG_DEFER;
	W->be.cancel_aborts = true;
	assert_int_equal(tpmfront_cancel(&W->tf), -ENOENT);
	assert_int_equal(submit(W, cmd, sizeof(cmd), 0), 0);
	RUN_UNTIL(W, W->be.submits == 1, 1000);
	assert_int_equal(tpmfront_cancel(&W->tf), 0);
	assert_int_equal(tpmfront_cancel(&W->tf), -ENOENT);
	RUN_UNTIL(W, W->res.calls, 1000);
	assert_int_equal(W->res.calls, 1);
	assert_int_equal(W->res.status, -ECANCELED);
	assert_int_equal(W->be.cancels, 1);
	/* Usable again at once. */
	W->be.mode = ENG_ECHO;
	assert_int_equal(submit(W, cmd, sizeof(cmd), 0), 0);
	RUN_UNTIL(W, W->res.calls, 1000);
	assert_int_equal(W->res.status, 0);
}

static void cancel_that_finishes_anyway_delivers(void **state)
{
	struct world *W = *state;
	uint8_t cmd[20] = {7};

	connect_both(W, 0, 0);
	W->be.mode = ENG_DEFER;
	assert_int_equal(submit(W, cmd, sizeof(cmd), 0), 0);
	RUN_UNTIL(W, W->be.submits == 1, 1000);
	assert_int_equal(tpmfront_cancel(&W->tf), 0);
	RUN_UNTIL(W, W->be.cancels == 1, 1000);
	assert_int_equal(W->be.cancels, 1);
	tpmback_complete(&W->be.tb, cmd, sizeof(cmd));
	RUN_UNTIL(W, W->res.calls, 1000);
	assert_int_equal(W->res.status, 0);
	assert_int_equal(W->res.len, sizeof(cmd));
}

static void timeout_cancels_then_fails(void **state)
{
	struct world *W = *state;
	uint8_t cmd[12] = {0x80};

	connect_both(W, 0, 0);
	W->be.mode = ENG_DEFER;
	W->be.cancel_aborts = true;
	assert_int_equal(submit(W, cmd, sizeof(cmd), 30), 0);
	RUN_UNTIL(W, W->res.calls, 2000);
	assert_int_equal(W->res.calls, 1);
	assert_int_equal(W->res.status, -ETIMEDOUT);
	assert_int_equal(W->be.cancels, 1);
	assert_int_equal(W->tf.stats.cancels, 1);
	assert_true(tpmfront_connected(&W->tf));
}

/* A backend that ignores the cancel too: a fresh ring after the bound. */
static void unanswered_cancel_resets_the_ring(void **state)
{
	struct world *W = *state;
	uint8_t cmd[12] = {0x80};
	uint32_t old_ref;

	connect_both(W, 0, 0);
	old_ref = W->tf.refs[0];
	W->be.mode = ENG_DEFER;
	assert_int_equal(submit(W, cmd, sizeof(cmd), 30), 0);
	RUN_UNTIL(W, W->res.calls, 3000);
	assert_int_equal(W->res.status, -ETIMEDOUT);
	assert_true(W->be.cancels >= 1);
	/* The frontend said Closed: the backend dropped the old ring (its
	 * command's answer will be dropped) and waits at InitWait. */
	RUN_UNTIL(W, W->be.tb.state == TPMBACK_INIT_WAIT ||
			 W->be.tb.conn_gen > 0,
		  1000);
	assert_true(W->be.tb.conn_gen > 0);
	tpmback_complete(&W->be.tb, NULL, 0); /* the engine ends late */
	RUN_UNTIL(W, tpmfront_connected(&W->tf) &&
			 W->be.tb.state == TPMBACK_CONNECTED,
		  2000);
	assert_true(tpmfront_connected(&W->tf));
	assert_int_not_equal(W->tf.refs[0], old_ref);
	assert_int_equal(W->tf.stats.resets, 1);
	assert_int_equal(xensim_shares_live(W->w), 1);
	W->be.mode = ENG_ECHO;
	assert_int_equal(submit(W, cmd, sizeof(cmd), 1000), 0);
	RUN_UNTIL(W, W->res.calls, 1000);
	assert_int_equal(W->res.status, 0);
}

/* tpmback_stop aborts the command in flight; a new tpmback resumes the
 * same ring, as a restarted backend service does. */
static void backend_restart_fails_inflight_and_resumes(void **state)
{
	struct world *W = *state;
	uint8_t cmd[30] = {9, 9};

	connect_both(W, 0, 0);
	W->be.mode = ENG_DEFER;
	W->be.cancel_aborts = true;
	assert_int_equal(submit(W, cmd, sizeof(cmd), 0), 0);
	RUN_UNTIL(W, W->be.submits == 1, 1000);
	be_stop(W);
	RUN_UNTIL(W, W->res.calls, 1000);
	assert_int_equal(W->res.calls, 1);
	assert_int_equal(W->res.status, -ECANCELED);
	assert_int_equal(xensim_maps_live(W->w), 0);
	be_start(W, 0);
	W->be.mode = ENG_ECHO;
	RUN_UNTIL(W, W->be.tb.state == TPMBACK_CONNECTED, 1000);
	assert_int_equal(W->be.tb.state, TPMBACK_CONNECTED);
	assert_true(tpmfront_connected(&W->tf));
	assert_int_equal(submit(W, cmd, sizeof(cmd), 1000), 0);
	RUN_UNTIL(W, W->res.calls, 1000);
	assert_int_equal(W->res.status, 0);
	assert_memory_equal(W->res.data, cmd, sizeof(cmd));
}

/* xl vtpm-detach: online=0 and state 5 on the backend; the frontend
 * fails what runs, closes, and both end Closed; re-attached, they
 * connect again on a fresh ring. */
static void backend_detach_closes_and_reattach_reconnects(void **state)
{
	struct world *W = *state;
	uint8_t cmd[16] = {1};

	connect_both(W, 0, 0);
	W->be.mode = ENG_DEFER;
	assert_int_equal(submit(W, cmd, sizeof(cmd), 0), 0);
	RUN_UNTIL(W, W->be.submits == 1, 1000);
	wr(W, "0", BE "/online");
	wr(W, "5", BE "/state");
	RUN_UNTIL(W, W->res.calls && W->be.tb.state == TPMBACK_CLOSED, 1000);
	assert_int_equal(W->res.status, -ECONNRESET);
	assert_node(W, FE "/state", "6");
	assert_node(W, BE "/state", "6");
	assert_int_equal(W->tf.state, TPMFRONT_WAIT_BACKEND);
	assert_int_equal(xensim_shares_live(W->w), 0);
	assert_int_equal(xensim_front_ports_live(W->w), 0);
	assert_int_equal(xensim_maps_live(W->w), 0);
	tpmback_complete(&W->be.tb, NULL, 0);
	/* Back online. */
	W->be.mode = ENG_ECHO;
	wr(W, "1", BE "/online");
	RUN_UNTIL(W, tpmfront_connected(&W->tf) &&
			 W->be.tb.state == TPMBACK_CONNECTED,
		  2000);
	assert_true(tpmfront_connected(&W->tf));
	assert_int_equal(W->tf.stats.connects, 2);
	assert_int_equal(submit(W, cmd, sizeof(cmd), 1000), 0);
	RUN_UNTIL(W, W->res.calls, 1000);
	assert_int_equal(W->res.status, 0);
	/* Then removed for good. */
	wr(W, "0", BE "/online");
	wr(W, "5", BE "/state");
	RUN_UNTIL(W, W->be.tb.state == TPMBACK_CLOSED, 1000);
	xensim_rm(W->w, FE);
	xensim_rm(W->w, BE);
	RUN_UNTIL(W, W->tf.state == TPMFRONT_NO_DEVICE, 1000);
	assert_int_equal(W->tf.state, TPMFRONT_NO_DEVICE);
	assert_null(rd(W, FE "/state")); /* not written back */
}

static void frontend_teardown_closes(void **state)
{
	struct world *W = *state;
	uint8_t cmd[16] = {1};

	connect_both(W, 0, 0);
	W->be.mode = ENG_DEFER;
	assert_int_equal(submit(W, cmd, sizeof(cmd), 0), 0);
	RUN_UNTIL(W, W->be.submits == 1, 1000);
	tpmfront_stop(&W->tf, fe_stopped);
	/* The callback ran at once, never again. */
	assert_int_equal(W->res.calls, 1);
	assert_int_equal(W->res.status, -ESHUTDOWN);
	assert_node(W, FE "/state", "6");
	assert_int_equal(xensim_shares_live(W->w), 0);
	assert_int_equal(xensim_front_ports_live(W->w), 0);
	RUN_UNTIL(W, W->fe_stopped && W->be.tb.state == TPMBACK_INIT_WAIT,
		  1000);
	assert_true(W->fe_stopped);
	assert_int_equal(W->tf.state, TPMFRONT_STOPPED);
	assert_int_equal(W->be.tb.state, TPMBACK_INIT_WAIT);
	assert_int_equal(W->be.power_cycles, 1);
	tpmback_complete(&W->be.tb, NULL, 0);
	assert_int_equal(W->res.calls, 1);
	assert_int_equal(xensim_maps_live(W->w), 0);
}

/* A frontend restarted while the backend still holds its old ring: it
 * says Closed first and connects on a fresh one. */
static void stale_connection_is_closed_first(void **state)
{
	struct world *W = *state;
	uint8_t cmd[8] = {3};

	connect_both(W, 0, 0);
	/* The process dies: no stop, its xenif is closed by the kernel. */
	uv_close((uv_handle_t *)&W->tf.xb.io.xs_poll, NULL);
	uv_close((uv_handle_t *)&W->tf.xb.io.ev_poll, NULL);
	uv_close((uv_handle_t *)&W->tf.xb.io.storm_timer, NULL);
	uv_close((uv_handle_t *)&W->tf.xb.io.xs_more_timer, NULL);
	uv_close((uv_handle_t *)&W->tf.xb.io.recheck_timer, NULL);
	uv_close((uv_handle_t *)&W->tf.req_timer, NULL);
	free(W->tf.rsp);
	xenif_close(W->fx);
	turns(W, 3);
	assert_node(W, FE "/state", "4");
	W->fe_started = false;
	fe_start(W, 0);
	W->be.mode = ENG_ECHO;
	RUN_UNTIL(W, tpmfront_connected(&W->tf) &&
			 W->be.tb.state == TPMBACK_CONNECTED,
		  2000);
	assert_true(tpmfront_connected(&W->tf));
	assert_int_equal(W->be.tb.ring_ref, W->tf.refs[0]);
	assert_int_equal(submit(W, cmd, sizeof(cmd), 1000), 0);
	RUN_UNTIL(W, W->res.calls, 1000);
	assert_int_equal(W->res.status, 0);
}

/* ---- a backend played by hand ---- */

static void hb_init(struct world *W, bool v2)
{
	toolstack_add(W);
	W->hx = xensim_open(W->w, BDOM);
	assert_non_null(W->hx);
	if (v2)
		wr(W, "1", BE "/feature-protocol-v2");
	wr(W, "2", BE "/state");
}

static void hb_connect(struct world *W)
{
	char *ref = rd(W, FE "/ring-ref"), *port = rd(W, FE "/event-channel");
	uint32_t r, p;
	void *page;

	assert_non_null(ref);
	assert_non_null(port);
	r = (uint32_t)atoi(ref);
	p = (uint32_t)atoi(port);
	free(ref);
	free(port);
	assert_int_equal(W->hx->ops->gnt_map(W->hx, FDOM, 1, &r, &page), 0);
	W->hpage = page;
	assert_int_equal(W->hx->ops->evtchn_bind(W->hx, FDOM, p, &W->hport),
			 0);
	wr(W, "4", BE "/state");
}

static void hb_release(struct world *W)
{
	if (W->hpage) {
		W->hx->ops->gnt_unmap(W->hx, W->hpage, 1);
		W->hpage = NULL;
	}
	if (W->hport) {
		W->hx->ops->evtchn_unbind(W->hx, W->hport);
		W->hport = 0;
	}
}

static struct tpmif_shared_page *hshr(struct world *W)
{
	return (struct tpmif_shared_page *)W->hpage;
}

static void hb_notify(struct world *W)
{
	assert_int_equal(W->hx->ops->evtchn_notify(W->hx, W->hport), 0);
}

static void hb_finish(struct world *W, uint32_t len, const uint8_t *data)
{
	if (data)
		memcpy(W->hpage + OFF, data, len);
	hshr(W)->length = len;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	hshr(W)->state = TPMIF_STATE_FINISH;
	hb_notify(W);
}

static void hand_connect(struct world *W)
{
	hb_init(W, true);
	fe_start(W, 0);
	RUN_UNTIL(W, W->tf.state == TPMFRONT_INITIALISED, 1000);
	assert_int_equal(W->tf.state, TPMFRONT_INITIALISED);
	assert_node(W, FE "/state", "3");
	hb_connect(W);
	RUN_UNTIL(W, tpmfront_connected(&W->tf), 1000);
	assert_true(tpmfront_connected(&W->tf));
	assert_node(W, FE "/state", "4");
}

static int hteardown(void **state)
{
	struct world *W = *state;

	if (W->fe_started && !W->fe_stopped)
		fe_stop(W);
	hb_release(W);
	return teardown(state);
}

static void no_protocol_v2_no_ring(void **state)
{
	struct world *W = *state;

	hb_init(W, false);
	fe_start(W, 0);
	turns(W, 10);
	assert_int_equal(W->tf.state, TPMFRONT_WAIT_BACKEND);
	assert_null(rd(W, FE "/ring-ref"));
	assert_node(W, FE "/state", "1");
	assert_int_equal(xensim_shares_live(W->w), 0);
	wr(W, "0", BE "/feature-protocol-v2");
	turns(W, 5);
	assert_null(rd(W, FE "/ring-ref"));
	wr(W, "1 ", BE "/feature-protocol-v2");
	turns(W, 5);
	assert_null(rd(W, FE "/ring-ref"));
	wr(W, "1", BE "/feature-protocol-v2");
	RUN_UNTIL(W, W->tf.state == TPMFRONT_INITIALISED, 1000);
	assert_int_equal(W->tf.state, TPMFRONT_INITIALISED);
	/* Withdrawn before Connected: not connected. */
	wr(W, "0", BE "/feature-protocol-v2");
	hb_connect(W);
	turns(W, 10);
	assert_false(tpmfront_connected(&W->tf));
	assert_int_equal(xensim_shares_live(W->w), 0);
	hb_release(W);
}

static void bogus_backend_nodes_are_refused(void **state)
{
	struct world *W = *state;
	static const char *bad_id[] = {"x", "-1", "00", "32752", "4294967296",
				       "", " 0", "0x0", "0\n"};
	static const char *bad_path[] = {
	    "/local/domain/0/backend/vtpm/5/1",
	    "/local/domain/0/backend/vtpm/5/0/",
	    "/local/domain/0/backend/vtpm/5/0/../0",
	    "/local/domain/1/backend/vtpm/5/0",
	    "/local/domain/0/backend/vif/5/0",
	    "local/domain/0/backend/vtpm/5/0",
	    "",
	};

	hb_init(W, true);
	fe_start(W, 0);
	RUN_UNTIL(W, W->tf.state == TPMFRONT_INITIALISED, 1000);
	for (size_t i = 0; i < sizeof(bad_id) / sizeof(bad_id[0]); i++) {
		wr(W, bad_id[i], FE "/backend-id");
		turns(W, 4);
		assert_int_equal(W->tf.state, TPMFRONT_REFUSED);
		assert_int_equal(xensim_shares_live(W->w), 0);
	}
	wr(W, "0", FE "/backend-id");
	for (size_t i = 0; i < sizeof(bad_path) / sizeof(bad_path[0]); i++) {
		wr(W, bad_path[i], FE "/backend");
		turns(W, 4);
		assert_int_equal(W->tf.state, TPMFRONT_REFUSED);
		assert_int_equal(xensim_shares_live(W->w), 0);
	}
	/* A NUL inside the value. */
	assert_int_equal(xensim_write_raw(W->w, FE "/backend",
					  BE "\0x", sizeof(BE) + 1),
			 0);
	turns(W, 4);
	assert_int_equal(W->tf.state, TPMFRONT_REFUSED);
	/* A backend-id other than the configured one, with a path to it. */
	wr(W, "7", FE "/backend-id");
	wr(W, "/local/domain/7/backend/vtpm/5/0", FE "/backend");
	turns(W, 4);
	assert_int_equal(W->tf.state, TPMFRONT_REFUSED);
	/* Fixed: it goes ahead. */
	wr(W, "0", FE "/backend-id");
	wr(W, BE, FE "/backend");
	RUN_UNTIL(W, W->tf.state == TPMFRONT_INITIALISED, 1000);
	assert_int_equal(W->tf.state, TPMFRONT_INITIALISED);
	/* Junk in the backend's state node is ignored. */
	wr(W, "4x", BE "/state");
	turns(W, 4);
	assert_int_equal(W->tf.state, TPMFRONT_INITIALISED);
	hb_connect(W);
	RUN_UNTIL(W, tpmfront_connected(&W->tf), 1000);
	assert_true(tpmfront_connected(&W->tf));
	assert_true(W->tf.stats.rejected >= 1);
}

static void finish_length_beyond_the_area_fails(void **state)
{
	struct world *W = *state;
	static const uint32_t bad[] = {PG - OFF + 1, PG, 0xffffffffu, 0};
	uint8_t cmd[12] = {0x80, 1}, ok[5] = {1, 2, 3, 4, 5};

	hand_connect(W);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(submit(W, cmd, sizeof(cmd), 0), 0);
		turns(W, 2);
		assert_int_equal(hshr(W)->state, TPMIF_STATE_SUBMIT);
		assert_int_equal(hshr(W)->length, sizeof(cmd));
		assert_memory_equal(W->hpage + OFF, cmd, sizeof(cmd));
		hb_finish(W, bad[i], NULL);
		RUN_UNTIL(W, W->res.calls, 1000);
		assert_int_equal(W->res.calls, 1);
		assert_int_equal(W->res.status, -EPROTO);
	}
	/* Still usable; a full page is fine. */
	assert_int_equal(submit(W, cmd, sizeof(cmd), 0), 0);
	turns(W, 2);
	hb_finish(W, sizeof(ok), ok);
	RUN_UNTIL(W, W->res.calls, 1000);
	assert_int_equal(W->res.status, 0);
	assert_int_equal(W->res.len, sizeof(ok));
	assert_memory_equal(W->res.data, ok, sizeof(ok));
	assert_int_equal(hshr(W)->state, TPMIF_STATE_IDLE);
	assert_int_equal(submit(W, cmd, sizeof(cmd), 0), 0);
	turns(W, 2);
	memset(W->hpage + OFF, 0xab, PG - OFF);
	hb_finish(W, PG - OFF, NULL);
	RUN_UNTIL(W, W->res.calls, 1000);
	assert_int_equal(W->res.status, 0);
	assert_int_equal(W->res.len, PG - OFF);
}

static void finish_without_submission_and_garbage_are_ignored(void **state)
{
	struct world *W = *state;
	static const uint8_t junk[] = {4, 7, 0x80, 0xff};
	uint8_t cmd[12] = {0x80, 1}, ok[3] = {9, 8, 7};

	hand_connect(W);
	hb_finish(W, 3, ok);
	turns(W, 5);
	assert_int_equal(W->res.calls, 0);
	assert_true(W->tf.stats.rejected >= 1);
	assert_int_equal(submit(W, cmd, sizeof(cmd), 0), 0);
	turns(W, 2);
	for (size_t i = 0; i < sizeof(junk); i++) {
		hshr(W)->state = junk[i];
		hb_notify(W);
		turns(W, 3);
		assert_int_equal(W->res.calls, 0);
	}
	hshr(W)->state = TPMIF_STATE_CANCEL; /* not the backend's to write */
	hb_notify(W);
	turns(W, 3);
	assert_int_equal(W->res.calls, 0);
	hb_finish(W, sizeof(ok), ok);
	RUN_UNTIL(W, W->res.calls, 1000);
	assert_int_equal(W->res.status, 0);
	assert_memory_equal(W->res.data, ok, sizeof(ok));
	assert_true(W->tf.stats.rejected >= 6);
}

static void event_storm_is_throttled(void **state)
{
	struct world *W = *state;
	struct tpmfront_config cfg = {
	    .devid = 0,
	    .have_backend = true,
	    .backend_domid = BDOM,
	    .cancel_wait_ms = 100,
	    .storm_events = 50,
	    .storm_window_ms = 1000,
	    .storm_pause_ms = 50,
	};
	uint64_t t0;
	int rounds = 0;

	hb_init(W, true);
	fe_start_cfg(W, &cfg);
	RUN_UNTIL(W, W->tf.state == TPMFRONT_INITIALISED, 1000);
	hb_connect(W);
	RUN_UNTIL(W, tpmfront_connected(&W->tf), 1000);
	t0 = uv_hrtime();
	while (uv_hrtime() - t0 < 200 * 1000000ull) {
		hb_notify(W);
		turn(W);
		rounds++;
	}
	assert_true(W->tf.stats.throttled >= 1);
	/* Paused windows swallow the storm: far fewer wake-ups than
	 * notifications. */
	assert_true(W->tf.stats.events < (uint64_t)rounds / 2);
	assert_true(tpmfront_connected(&W->tf));
}

/* feature-extra-pages is the backend's: junk means none, a huge value
 * is capped at ours. */
static void extra_pages_node_is_bounded(void **state)
{
	struct world *W = *state;
	static const char *vals[] = {"junk", "-1", "01", "4294967296",
				     "1000"};
	static const uint32_t want[] = {0, 0, 0, 0, 1};

	hb_init(W, true);
	wr(W, vals[0], BE "/feature-extra-pages");
	fe_start(W, 1);
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		wr(W, vals[i], BE "/feature-extra-pages");
		RUN_UNTIL(W, W->tf.state == TPMFRONT_INITIALISED, 1000);
		assert_int_equal(W->tf.state, TPMFRONT_INITIALISED);
		assert_int_equal(W->tf.n_extra, want[i]);
		assert_int_equal(W->tf.data_off, OFF + 4 * want[i]);
		assert_int_equal(W->tf.data_cap,
				 (1 + want[i]) * PG - OFF - 4 * want[i]);
		/* Closed and back to InitWait: a fresh ring each time. */
		wr(W, "6", BE "/state");
		RUN_UNTIL(W, W->tf.state == TPMFRONT_WAIT_BACKEND, 1000);
		assert_int_equal(xensim_shares_live(W->w), 0);
		wr(W, "2", BE "/state");
	}
	assert_true(W->tf.stats.rejected >= 4);
}

/* A backend that never answers anything: timeout, cancel, reset, and
 * Closed until the backend comes back to InitWait. */
static void backend_that_never_answers(void **state)
{
	struct world *W = *state;
	uint8_t cmd[12] = {0x80, 1};

	hand_connect(W);
	assert_int_equal(submit(W, cmd, sizeof(cmd), 20), 0);
	RUN_UNTIL(W, W->res.calls, 3000);
	assert_int_equal(W->res.calls, 1);
	assert_int_equal(W->res.status, -ETIMEDOUT);
	assert_int_equal(hshr(W)->state, TPMIF_STATE_CANCEL);
	assert_node(W, FE "/state", "6");
	assert_int_equal(W->tf.state, TPMFRONT_WAIT_BACKEND);
	assert_int_equal(xensim_shares_live(W->w), 0);
	assert_int_equal(xensim_front_ports_live(W->w), 0);
	/* The backend lets go and waits again: a new ring. */
	hb_release(W);
	wr(W, "2", BE "/state");
	RUN_UNTIL(W, W->tf.state == TPMFRONT_INITIALISED, 1000);
	assert_int_equal(W->tf.state, TPMFRONT_INITIALISED);
	hb_connect(W);
	RUN_UNTIL(W, tpmfront_connected(&W->tf), 1000);
	assert_true(tpmfront_connected(&W->tf));
}

/* The backend restarts through Closing and Closed to InitWait. */
static void backend_closing_fails_and_reconnects(void **state)
{
	struct world *W = *state;
	uint8_t cmd[12] = {0x80, 1};
	static const char *gone[] = {"5", "6", "1", NULL};

	hand_connect(W);
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
		assert_int_equal(submit(W, cmd, sizeof(cmd), 0), 0);
		turns(W, 2);
		if (gone[i])
			wr(W, gone[i], BE "/state");
		else
			xensim_rm(W->w, BE "/state");
		RUN_UNTIL(W, W->res.calls, 1000);
		assert_int_equal(W->res.status, -ECONNRESET);
		assert_node(W, FE "/state", "6");
		assert_int_equal(xensim_shares_live(W->w), 0);
		hb_release(W);
		wr(W, "2", BE "/state");
		RUN_UNTIL(W, W->tf.state == TPMFRONT_INITIALISED, 1000);
		assert_node(W, FE "/state", "3");
		hb_connect(W);
		RUN_UNTIL(W, tpmfront_connected(&W->tf), 1000);
		assert_true(tpmfront_connected(&W->tf));
	}
	assert_int_equal(W->tf.stats.connects, 5);
}

/* ---- the manager link over the ring ---- */

struct mgr_backend {
	struct world *W;
	uv_thread_t thr;
	uv_async_t stop;
	volatile int ready;
	unsigned int loads, saves;
	uint8_t key[MGR_KEY_LEN];
};

/* The manager's end: decode, answer LOADHASHKEY/SAVEHASHKEY. */
static void mgr_submit(struct tpmback *tb, const uint8_t *cmd, uint32_t len,
		       unsigned int loc)
{
	struct mgr_backend *m = tb->data;
	uint8_t out[MGR_MAX_FRAME];
	struct mgr_req req;
	struct mgr_rsp rsp;
	size_t olen;
	int rc;

	(void)loc;
	memset(&rsp, 0, sizeof(rsp));
	rc = mgrproto_decode_req(cmd, len, &req);
	if (rc) {
		mgrproto_encode_status(cmd, len, mgrproto_err_status(rc), out);
		tpmback_complete(tb, out, MGR_HDR_LEN);
		return;
	}
	rsp.type = req.type;
	if (req.type == MGR_MSG_LOADHASHKEY) {
		m->loads++;
		rsp.status = MGR_SUCCESS;
		rsp.u.load.generation = 41;
		memset(rsp.u.load.state_hash, 0x5a, MGR_HASH_LEN);
		memcpy(rsp.u.load.state_key, m->key, MGR_KEY_LEN);
	} else if (req.type == MGR_MSG_SAVEHASHKEY) {
		m->saves++;
		rsp.status = req.u.save.generation > 41 ? MGR_SUCCESS
							: MGR_ROLLBACK;
	} else if (req.type == MGR_MSG_EK_CERTIFY) {
		/* The largest certificate a frame carries, its bytes named
		 * after the key's first byte. */
		rsp.status = MGR_SUCCESS;
		rsp.u.ek.cert_len = MGR_EKCERT_MAX;
		memset(rsp.u.ek.cert, req.u.ek.key[0], MGR_EKCERT_MAX);
	} else {
		rsp.status = MGR_FORBIDDEN;
	}
	assert_int_equal(mgrproto_encode_rsp(&rsp, out, &olen), 0);
	tpmback_complete(tb, out, (uint32_t)olen);
	memset(out, 0, sizeof(out));
	mgrproto_rsp_wipe(&rsp);
}

static const struct tpmback_ops mgr_ops = {.submit = mgr_submit};

static void mgr_stopped(struct tpmback *tb)
{
	((struct mgr_backend *)tb->data)->W->be.stopped = true;
}

static void mgr_stop_cb(uv_async_t *a)
{
	struct mgr_backend *m = a->data;

	tpmback_stop(&m->W->be.tb, mgr_stopped);
	uv_close((uv_handle_t *)a, NULL);
}

static void mgr_thread(void *arg)
{
	struct mgr_backend *m = arg;
	struct world *W = m->W;
	struct tpmback_config cfg;

	tpmback_config_init(&cfg, BDOM, FDOM, 0, NULL);
	cfg.initwait_hold_ms = 0;
	cfg.max_extra_pages = 1;
	W->be.x = xensim_open(W->w, BDOM);
	if (tpmback_serve(&W->be.tb, &W->loop, W->be.x, &cfg, &mgr_ops, m))
		abort();
	uv_async_init(&W->loop, &m->stop, mgr_stop_cb);
	m->stop.data = m;
	m->ready = 1;
	uv_run(&W->loop, UV_RUN_DEFAULT);
}

static void mgrlink_over_the_ring(void **state)
{
	struct world *W = *state;
	struct mgr_backend m = {.W = W};
	struct mgr_req req = {.type = MGR_MSG_LOADHASHKEY};
	struct mgrlink l;
	struct mgr_rsp rsp;
	char err[200];

	memset(m.key, 0xc3, sizeof(m.key));
	toolstack_add(W);
	assert_int_equal(uv_thread_create(&m.thr, mgr_thread, &m), 0);
	while (!m.ready)
		usleep(1000);
	/* The link's own thread and loop, on a xenif of domain FDOM. */
	W->fx = xensim_open(W->w, FDOM);
	assert_int_equal(mgrlink_open_xen(&l, "xen-ring:backend=0", W->fx, err,
					  sizeof(err)),
			 0);
	assert_true(mgrlink_is_open(&l));
	assert_int_equal(mgrlink_pollfd(&l), -1);
	l.timeout_ms = 5000;
	assert_int_equal(mgrlink_call(&l, &req, &rsp, err, sizeof(err)), 0);
	assert_int_equal(rsp.status, MGR_SUCCESS);
	assert_int_equal(rsp.u.load.generation, 41);
	assert_memory_equal(rsp.u.load.state_key, m.key, MGR_KEY_LEN);
	mgrproto_rsp_wipe(&rsp);
	req.type = MGR_MSG_SAVEHASHKEY;
	req.u.save.generation = 42;
	assert_int_equal(mgrlink_call(&l, &req, &rsp, err, sizeof(err)), 0);
	assert_int_equal(rsp.status, MGR_SUCCESS);
	req.u.save.generation = 40;
	assert_int_equal(mgrlink_call(&l, &req, &rsp, err, sizeof(err)), 0);
	assert_int_equal(rsp.status, MGR_ROLLBACK);
	/* Manufacture over the ring: an EK up, a full-frame certificate
	 * back (issue 14). */
	memset(&req, 0, sizeof(req));
	req.type = MGR_MSG_EK_CERTIFY;
	req.u.ek.kind = MGR_EK_KIND_RSA;
	req.u.ek.key_len = MGR_EK_RSA_LEN;
	memset(req.u.ek.key, 0xe7, MGR_EK_RSA_LEN);
	assert_int_equal(mgrlink_call(&l, &req, &rsp, err, sizeof(err)), 0);
	assert_int_equal(rsp.status, MGR_SUCCESS);
	assert_int_equal(rsp.u.ek.cert_len, MGR_EKCERT_MAX);
	assert_int_equal(rsp.u.ek.cert[0], 0xe7);
	assert_int_equal(rsp.u.ek.cert[MGR_EKCERT_MAX - 1], 0xe7);
	mgrlink_close(&l);
	assert_false(mgrlink_is_open(&l));
	assert_int_equal(m.loads, 1);
	assert_int_equal(m.saves, 2);
	assert_node(W, FE "/state", "6");
	uv_async_send(&m.stop);
	uv_thread_join(&m.thr);
	assert_true(W->be.stopped);
	xenif_close(W->be.x);
	W->be.x = NULL;
}

/* No backend at all: a call ends at the link's timeout. */
static void mgrlink_without_a_backend_times_out(void **state)
{
	struct world *W = *state;
	struct mgr_req req = {.type = MGR_MSG_LOADHASHKEY};
	struct mgrlink l;
	struct mgr_rsp rsp;
	char err[200];
	uint64_t t0;

	toolstack_add(W);
	W->fx = xensim_open(W->w, FDOM);
	assert_int_equal(
	    mgrlink_open_xen(&l, "xen-ring", W->fx, err, sizeof(err)), 0);
	l.timeout_ms = 100;
	t0 = uv_hrtime();
	assert_int_equal(mgrlink_call(&l, &req, &rsp, err, sizeof(err)),
			 -ETIMEDOUT);
	assert_true(uv_hrtime() - t0 < 3000 * 1000000ull);
	assert_non_null(strstr(err, "not connected"));
	mgrlink_close(&l);
}

static void mgrlink_spec_is_strict(void **state)
{
	static const char *bad[] = {
	    "xen-ring:",	     "xen-ring:backend=",
	    "xen-ring:backend=x",    "xen-ring:backend=-1",
	    "xen-ring:backend=01",   "xen-ring:backend=32752",
	    "xen-ring:devid=",	     "xen-ring:devid=1,devid=2",
	    "xen-ring:backend=0,",   "xen-ring:frob=1",
	    "xen-ring:backend=0;x",  "xen-ring:backend=0,,devid=1",
	    "xen-ringx",	     "xen-ring:devid=99999999999",
	};
	static const char *good[] = {"xen-ring", "xen-ring:backend=0",
				     "xen-ring:devid=3",
				     "xen-ring:backend=12,devid=1",
				     "xen-ring:devid=1,backend=2",
				     "xen-ring,devid=2"};
	struct mgrlink_xen_spec sp;
	char err[200];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(mgrlink_parse_xen(bad[i], &sp, err,
						   sizeof(err)),
				 -EINVAL);
		assert_true(err[0] != '\0');
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(
		    mgrlink_parse_xen(good[i], &sp, err, sizeof(err)), 0);
	assert_int_equal(mgrlink_parse_xen("xen-ring:backend=12,devid=1", &sp,
					   err, sizeof(err)),
			 0);
	assert_true(sp.have_backend);
	assert_int_equal(sp.backend, 12);
	assert_int_equal(sp.devid, 1);
	assert_int_equal(mgrlink_parse_xen("xen-ring", &sp, err, sizeof(err)),
			 0);
	assert_false(sp.have_backend);
	assert_int_equal(sp.devid, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define H(f) cmocka_unit_test_setup_teardown(f, setup, hteardown)
	const struct CMUnitTest tests[] = {
	    T(handshake_publishes_and_connects),
	    T(commands_of_several_sizes_up_to_a_page),
	    T(extra_pages_when_the_backend_offers_them),
	    T(busy_and_not_connected_are_refused),
	    T(cancel_aborted_by_the_backend),
	    T(cancel_that_finishes_anyway_delivers),
	    T(timeout_cancels_then_fails),
	    T(unanswered_cancel_resets_the_ring),
	    T(backend_restart_fails_inflight_and_resumes),
	    T(backend_detach_closes_and_reattach_reconnects),
	    T(frontend_teardown_closes),
	    T(stale_connection_is_closed_first),
	    H(no_protocol_v2_no_ring),
	    H(bogus_backend_nodes_are_refused),
	    H(finish_length_beyond_the_area_fails),
	    H(finish_without_submission_and_garbage_are_ignored),
	    H(event_storm_is_throttled),
	    H(extra_pages_node_is_bounded),
	    H(backend_that_never_answers),
	    H(backend_closing_fails_and_reconnects),
	    T(mgrlink_over_the_ring),
	    T(mgrlink_without_a_backend_times_out),
	    cmocka_unit_test(mgrlink_spec_is_strict),
	};

	log_init("test_tpmfront", getenv("TEST_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_WARNING);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
