/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The real tpmback (transports/xen-ring) against a simulated Xen
 * (xensim.c), driven the way xl and a Linux xen-tpmfront guest drive it:
 * handshake, commands, cancel, reboot, and every hostile case issue 4
 * names.  The engine is a fake that answers a canned TPM response (or
 * echoes the command).  Every mapping sits between guard pages and an
 * unmapped area stays PROT_NONE, so a backend access outside the pages
 * it mapped kills the test with SIGSEGV instead of passing silently.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xen/io/tpmif.h>

#include "lib/log.h"
#include "lib/hex.h"
#include "tpmif/tpmback.h"
#include "xensim.h"

/* The backend's domain: dom0, or a driver domain in one test. */
static uint32_t bdom;
#define BDOM bdom
#define PG 4096u
#define OFF 8u /* sizeof(struct tpmif_shared_page) */

static const char UUID_A[] = "4a1e0b8e-2f33-4c6a-9d2e-0123456789ab";
static const char UUID_B[] = "00000000-1111-2222-3333-444444444444";

/* TPM2_GetRandom(8) and a canned success answer. */
static const uint8_t CMD[] = {0x80, 0x01, 0x00, 0x00, 0x00, 0x0c,
			      0x00, 0x00, 0x01, 0x7b, 0x00, 0x08};
static const uint8_t RSP[] = {0x80, 0x01, 0x00, 0x00, 0x00, 0x14, 0x00,
			      0x00, 0x00, 0x00, 0x00, 0x08, 1,	  2,
			      3,    4,	  5,	6,    7,    8};

/* ---- the fake engine and one backend ---- */

enum engine_mode { ENG_CANNED, ENG_ECHO, ENG_DEFER, ENG_HUGE };

struct be {
	struct tpmback tb;
	struct xenif *x;
	enum engine_mode mode;
	bool cancel_aborts; /* cancel ends the command at once */
	unsigned int submits, cancels, power_cycles;
	/* with sr_ops: ended without a close; connects seen, and the
	 * submits that had come before the last of them */
	unsigned int suspends, connects, submits_at_connect;
	uint8_t last[40000];
	uint32_t last_len;
	unsigned int last_loc;
	bool stopped;
};

static void eng_submit(struct tpmback *tb, const uint8_t *cmd, uint32_t len,
		       unsigned int loc)
{
	struct be *b = tb->data;
	static uint8_t huge[8192];

	b->submits++;
	assert_true(len <= sizeof(b->last));
	memcpy(b->last, cmd, len);
	b->last_len = len;
	b->last_loc = loc;
	switch (b->mode) {
	case ENG_CANNED:
		tpmback_complete(tb, RSP, sizeof(RSP));
		break;
	case ENG_ECHO:
		tpmback_complete(tb, cmd, len);
		break;
	case ENG_HUGE:
		tpmback_complete(tb, huge, sizeof(huge));
		break;
	case ENG_DEFER:
		break;
	}
}

static void eng_cancel(struct tpmback *tb)
{
	struct be *b = tb->data;

	b->cancels++;
	/* As xen_ring.c does for a job withdrawn before it started. */
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

static void eng_suspended(struct tpmback *tb)
{
	((struct be *)tb->data)->suspends++;
}

static void eng_connected(struct tpmback *tb)
{
	struct be *b = tb->data;

	b->connects++;
	b->submits_at_connect = b->submits;
}

/* An owner that keeps the volatile state of a guest gone without a close
 * (xen_ring.c's Xen save/restore). */
static const struct tpmback_ops sr_ops = {
    .submit = eng_submit,
    .cancel = eng_cancel,
    .power_cycle = eng_power_cycle,
    .suspended = eng_suspended,
    .connected = eng_connected,
};
static const struct tpmback_ops *be_ops = &eng_ops;

/* ---- a guest: the Linux xen-tpmfront sequence ---- */

struct fe {
	uint32_t dom, devid;
	uint32_t ref, port;
	uint8_t *page;
	uint32_t xref[4];
	uint8_t *xpages;
};

struct world {
	uv_loop_t loop;
	struct xensim *w;
	struct be be[2];
	struct fe fe[2];
};

static struct tpmif_shared_page *shr(struct fe *f)
{
	return (struct tpmif_shared_page *)f->page;
}

static void path_of(char *buf, size_t len, const char *kind, const struct fe *f,
		    const char *node)
{
	if (strcmp(kind, "be") == 0)
		snprintf(buf, len, "/local/domain/%u/backend/vtpm/%u/%u/%s",
			 BDOM, f->dom, f->devid, node);
	else
		snprintf(buf, len, "/local/domain/%u/device/vtpm/%u/%s", f->dom,
			 f->devid, node);
}

static void fe_write(struct world *W, struct fe *f, const char *node,
		     const char *val)
{
	char p[160];

	path_of(p, sizeof(p), "fe", f, node);
	assert_int_equal(xensim_write(W->w, p, val), 0);
}

static char *be_read(struct world *W, struct fe *f, const char *node)
{
	char p[160];

	path_of(p, sizeof(p), "be", f, node);
	return xensim_read(W->w, p);
}

static void assert_be_state(struct world *W, struct fe *f, const char *want)
{
	char *v = be_read(W, f, "state");

	assert_non_null(v);
	assert_string_equal(v, want);
	free(v);
}

/* What libxl writes for vtpm=["backend=0,uuid=..."]. */
static void toolstack_add(struct world *W, struct fe *f, const char *uuid)
{
	char p[160], v[96];

	snprintf(v, sizeof(v), "/local/domain/%u/device/vtpm/%u", f->dom,
		 f->devid);
	path_of(p, sizeof(p), "be", f, "frontend");
	xensim_write(W->w, p, v);
	snprintf(v, sizeof(v), "%u", f->dom);
	path_of(p, sizeof(p), "be", f, "frontend-id");
	xensim_write(W->w, p, v);
	path_of(p, sizeof(p), "be", f, "online");
	xensim_write(W->w, p, "1");
	path_of(p, sizeof(p), "be", f, "handle");
	snprintf(v, sizeof(v), "%u", f->devid);
	xensim_write(W->w, p, v);
	if (uuid) {
		path_of(p, sizeof(p), "be", f, "uuid");
		xensim_write(W->w, p, uuid);
	}
	path_of(p, sizeof(p), "be", f, "state");
	xensim_write(W->w, p, "1");
	snprintf(v, sizeof(v), "/local/domain/%u/backend/vtpm/%u/%u", BDOM,
		 f->dom, f->devid);
	fe_write(W, f, "backend", v);
	fe_write(W, f, "backend-id", "0");
	fe_write(W, f, "state", "1");
}

static void toolstack_remove(struct world *W, struct fe *f)
{
	char p[160];

	snprintf(p, sizeof(p), "/local/domain/%u/device/vtpm/%u", f->dom,
		 f->devid);
	xensim_rm(W->w, p);
	snprintf(p, sizeof(p), "/local/domain/%u/backend/vtpm/%u/%u", BDOM,
		 f->dom, f->devid);
	xensim_rm(W->w, p);
}

/* How libxl starts a removal (xl vtpm-detach, shutdown, destroy): online
 * 0 and state 5 (Closing) in the backend's directory. */
static void toolstack_begin_remove(struct world *W, struct fe *f)
{
	char p[160];

	path_of(p, sizeof(p), "be", f, "online");
	xensim_write(W->w, p, "0");
	path_of(p, sizeof(p), "be", f, "state");
	xensim_write(W->w, p, "5");
}

/* The probe: page, port, nodes; no state change yet. */
static void fe_alloc(struct world *W, struct fe *f)
{
	assert_int_equal(xensim_grant(W->w, f->dom, BDOM, 1, &f->ref, &f->page),
			 0);
	assert_int_equal(
	    xensim_evtchn_alloc_unbound(W->w, f->dom, BDOM, &f->port), 0);
}

static void fe_publish(struct world *W, struct fe *f)
{
	char v[16];

	snprintf(v, sizeof(v), "%u", f->ref);
	fe_write(W, f, "ring-ref", v);
	snprintf(v, sizeof(v), "%u", f->port);
	fe_write(W, f, "event-channel", v);
	fe_write(W, f, "feature-protocol-v2", "1");
}

static void fe_notify(struct world *W, struct fe *f)
{
	assert_int_equal(xensim_evtchn_send(W->w, f->dom, f->port), 0);
}

/* xen-tpmfront's send: data, length, barrier, SUBMIT, barrier, notify. */
static void fe_put(struct fe *f, const uint8_t *cmd, uint32_t len,
		   uint8_t nextra, uint8_t loc)
{
	uint32_t off = OFF + 4u * nextra;
	uint32_t first = len < PG - off ? len : PG - off;

	shr(f)->nr_extra_pages = nextra;
	shr(f)->locality = loc;
	memcpy(f->page + off, cmd, first);
	if (len > first)
		memcpy(f->xpages, cmd + first, len - first);
	shr(f)->length = len;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	shr(f)->state = TPMIF_STATE_SUBMIT;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static void fe_submit(struct world *W, struct fe *f, const uint8_t *cmd,
		      uint32_t len)
{
	fe_put(f, cmd, len, 0, 0);
	fe_notify(W, f);
}

static void turn(struct world *W)
{
	uv_run(&W->loop, UV_RUN_NOWAIT);
}

static void turns(struct world *W, int n)
{
	while (n-- > 0)
		turn(W);
}

/* hold_ms: the InitWait hold for a new device (0 in most tests, which
 * step the loop without letting time pass). */
static void be_start_hold(struct world *W, int i, uint32_t fdom,
			  const char *uuid, unsigned int hold_ms)
{
	struct tpmback_config cfg;
	struct be *b = &W->be[i];
	uint8_t u[16];

	if (uuid)
		assert_int_equal(uuid_parse(uuid, strlen(uuid), u), 0);
	tpmback_config_init(&cfg, BDOM, fdom, 0, uuid ? u : NULL);
	assert_int_equal(cfg.initwait_hold_ms, TPMBACK_INITWAIT_HOLD_MS);
	cfg.initwait_hold_ms = hold_ms;
	cfg.max_extra_pages = 2;
	b->x = xensim_open(W->w, BDOM);
	assert_non_null(b->x);
	assert_int_equal(
	    tpmback_serve(&b->tb, &W->loop, b->x, &cfg, be_ops, b), 0);
	W->fe[i].dom = fdom;
	W->fe[i].devid = 0;
}

static void be_start(struct world *W, int i, uint32_t fdom, const char *uuid)
{
	be_start_hold(W, i, fdom, uuid, 0);
}

static void be_stopped(struct tpmback *tb)
{
	((struct be *)tb->data)->stopped = true;
}

static int setup(void **state)
{
	struct world *W = calloc(1, sizeof(*W));

	assert_non_null(W);
	bdom = 0;
	assert_int_equal(uv_loop_init(&W->loop), 0);
	W->w = xensim_new();
	assert_non_null(W->w);
	*state = W;
	return 0;
}

static int teardown(void **state)
{
	struct world *W = *state;

	for (int i = 0; i < 2; i++) {
		struct be *b = &W->be[i];

		if (!b->x)
			continue;
		tpmback_stop(&b->tb, be_stopped);
		turns(W, 3);
		assert_true(b->stopped);
	}
	uv_run(&W->loop, UV_RUN_NOWAIT);
	/* Stopping unmapped and unbound everything. */
	assert_int_equal(xensim_maps_live(W->w), 0);
	assert_int_equal(xensim_binds_live(W->w), 0);
	for (int i = 0; i < 2; i++)
		xenif_close(W->be[i].x);
	assert_int_equal(uv_loop_close(&W->loop), 0);
	xensim_free(W->w);
	free(W);
	return 0;
}

/* Device added, guest probed, connected, one command served. */
static void connect_guest(struct world *W, int i)
{
	struct fe *f = &W->fe[i];

	toolstack_add(W, f, UUID_A);
	turn(W);
	assert_be_state(W, f, "2");
	fe_alloc(W, f);
	fe_publish(W, f);
	fe_write(W, f, "state", "3");
	turn(W);
	assert_be_state(W, f, "4");
	fe_write(W, f, "state", "4");
	turn(W);
}

/* ---- parsers ---- */

static void parse_u32_is_strict(void **state)
{
	uint32_t v;
	static const char *bad[] = {"",		  " 1",		 "1 ",	 "+1",
				    "-1",	  "01",		 "0x10", "1e3",
				    "4294967296", "99999999999", "abc"};

	(void)state;
	assert_int_equal(dec_parse_u32("0", 1, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(dec_parse_u32("4294967295", 10, UINT32_MAX, &v),
			 0);
	assert_int_equal(v, UINT32_MAX);
	assert_int_equal(dec_parse_u32("11", 2, 10, &v), -ERANGE);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(
		    dec_parse_u32(bad[i], strlen(bad[i]), UINT32_MAX, &v),
		    0);
	/* A NUL inside the value is junk, not a shorter number. */
	assert_int_not_equal(dec_parse_u32("12\0"
					       "3",
					       4, UINT32_MAX, &v),
			     0);
}

static void parse_uuid_is_strict(void **state)
{
	uint8_t u[16];

	(void)state;
	assert_int_equal(uuid_parse(UUID_A, 36, u), 0);
	assert_int_equal(u[0], 0x4a);
	assert_int_equal(u[15], 0xab);
	assert_int_not_equal(
	    uuid_parse("4a1e0b8e2f334c6a9d2e0123456789ab", 32, u), 0);
	assert_int_not_equal(
	    uuid_parse("4a1e0b8e-2f33-4c6a-9d2e-0123456789ag", 36, u),
	    0);
	assert_int_not_equal(
	    uuid_parse("4a1e0b8e-2f33-4c6a-9d2e_0123456789ab", 36, u),
	    0);
}

/* ---- handshake and commands ---- */

static void initwait_at_once_with_protocol_v2(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];
	char *v;

	be_start(W, 0, 5, UUID_A);
	assert_int_equal(W->be[0].tb.state, TPMBACK_NO_DEVICE);
	toolstack_add(W, f, UUID_A);
	turn(W); /* libxl waits 10 s for this; we take one loop turn */
	assert_be_state(W, f, "2");
	v = be_read(W, f, "feature-protocol-v2");
	assert_non_null(v);
	assert_string_equal(v, "1");
	free(v);
	/* The extra pages we map, offered to frontends that know the node. */
	v = be_read(W, f, "feature-extra-pages");
	assert_non_null(v);
	assert_string_equal(v, "2"); /* be_start configures 2 */
	free(v);
	assert_int_equal(W->be[0].tb.state, TPMBACK_INIT_WAIT);
}

static void device_present_at_start_gets_initwait_without_an_event(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];

	f->dom = 5;
	toolstack_add(W, f, UUID_A);
	be_start(W, 0, 5, UUID_A);
	assert_be_state(W, f, "2");
}

/* The stock Linux driver sends TPM commands in its probe right after it
 * writes state 3, before it sees the backend Connected: the command
 * must be answered in the same loop turn that connects. */
static void probe_command_answered_in_the_connecting_turn(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];
	char *v;

	be_start(W, 0, 5, UUID_A);
	toolstack_add(W, f, UUID_A);
	turn(W);
	fe_alloc(W, f);
	fe_publish(W, f);
	fe_write(W, f, "state", "3");
	fe_put(f, CMD, sizeof(CMD), 0, 0);
	fe_notify(W, f); /* lost: nobody has bound the port yet */
	turn(W);
	assert_be_state(W, f, "4");
	v = be_read(W, f, "ready");
	assert_non_null(v);
	assert_string_equal(v, "1");
	free(v);
	assert_int_equal(W->be[0].submits, 1);
	assert_memory_equal(W->be[0].last, CMD, sizeof(CMD));
	assert_int_equal(shr(f)->state, TPMIF_STATE_FINISH);
	assert_int_equal(shr(f)->length, sizeof(RSP));
	assert_memory_equal(f->page + OFF, RSP, sizeof(RSP));
	assert_true(xensim_evtchn_received(W->w, f->dom, f->port) >= 1);
}

/* libxl's device add waits for the backend's state 2 and reads the node
 * when its watch fires: a frontend that answers InitWait at once must not
 * take the backend to 4 before the toolstack could read the 2 (xl
 * vtpm-attach then timed out after 10 s in the Xen lab). */
static void initwait_held_for_the_toolstack_on_a_new_device(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];
	uint64_t t0, dt;

	be_start_hold(W, 0, 5, UUID_A, 80);
	toolstack_add(W, f, UUID_A);
	turn(W);
	assert_be_state(W, f, "2");
	t0 = uv_hrtime();
	fe_alloc(W, f);
	fe_publish(W, f);
	fe_write(W, f, "state", "3");
	fe_put(f, CMD, sizeof(CMD), 0, 0);
	fe_notify(W, f);
	turns(W, 3);
	assert_be_state(W, f, "2"); /* held, not refused */
	assert_int_equal(W->be[0].submits, 0);
	while (W->be[0].tb.state != TPMBACK_CONNECTED &&
	       uv_hrtime() - t0 < 5000000000ull)
		uv_run(&W->loop, UV_RUN_ONCE);
	dt = (uv_hrtime() - t0) / 1000000;
	assert_be_state(W, f, "4");
	assert_true(dt >= 60 && dt < 2000);
	/* The probe's command, sent before we connected, is answered. */
	turn(W);
	assert_int_equal(W->be[0].submits, 1);
	assert_int_equal(shr(f)->state, TPMIF_STATE_FINISH);
}

/* A device the toolstack is not waiting for (our state node already past
 * 1: a restarted backend finds its guest connected) connects at once. */
static void no_hold_for_a_device_already_past_initialising(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];
	char p[160];

	f->dom = 5;
	toolstack_add(W, f, UUID_A);
	path_of(p, sizeof(p), "be", f, "state");
	xensim_write(W->w, p, "4");
	fe_alloc(W, f);
	fe_publish(W, f);
	fe_write(W, f, "state", "4");
	be_start_hold(W, 0, 5, UUID_A, 60000);
	turn(W);
	assert_be_state(W, f, "4");
	assert_int_equal(W->be[0].tb.state, TPMBACK_CONNECTED);
}

static void mini_os_frontend_jumping_to_4_connects(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];

	be_start(W, 0, 5, UUID_A);
	toolstack_add(W, f, UUID_A);
	turn(W);
	fe_alloc(W, f);
	fe_write(W, f, "feature-protocol-v2", "1");
	fe_publish(W, f);
	fe_write(W, f, "state", "4");
	turn(W);
	assert_be_state(W, f, "4");
}

static void commands_answered_with_length_barrier_and_notify(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];
	uint64_t got;

	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	for (int i = 0; i < 5; i++) {
		got = xensim_evtchn_received(W->w, f->dom, f->port);
		fe_put(f, CMD, sizeof(CMD), 0, (uint8_t)(i % 5));
		fe_notify(W, f);
		turn(W);
		assert_int_equal(shr(f)->state, TPMIF_STATE_FINISH);
		assert_int_equal(shr(f)->length, sizeof(RSP));
		assert_memory_equal(f->page + OFF, RSP, sizeof(RSP));
		assert_int_equal(W->be[0].last_loc, (unsigned int)(i % 5));
		assert_int_equal(xensim_evtchn_received(W->w, f->dom, f->port),
				 got + 1);
	}
	assert_int_equal(W->be[0].submits, 5);
	assert_int_equal(W->be[0].tb.stats.responses, 5);
}

static void largest_single_page_command_fits(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];
	static uint8_t big[PG - OFF];

	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	W->be[0].mode = ENG_ECHO;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	fe_submit(W, f, big, sizeof(big));
	turn(W);
	assert_int_equal(W->be[0].last_len, 4088);
	assert_int_equal(shr(f)->state, TPMIF_STATE_FINISH);
	assert_int_equal(shr(f)->length, 4088);
	assert_memory_equal(f->page + OFF, big, sizeof(big));
}

static void extra_pages_carry_a_command_larger_than_a_page(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];
	static uint8_t big[6000];

	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	W->be[0].mode = ENG_ECHO;
	assert_int_equal(
	    xensim_grant(W->w, f->dom, BDOM, 1, f->xref, &f->xpages), 0);
	shr(f)->extra_pages[0] = f->xref[0];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 13 + 1);
	fe_put(f, big, sizeof(big), 1, 0);
	fe_notify(W, f);
	turn(W);
	assert_int_equal(W->be[0].last_len, sizeof(big));
	assert_memory_equal(W->be[0].last, big, sizeof(big));
	assert_int_equal(shr(f)->state, TPMIF_STATE_FINISH);
	assert_int_equal(shr(f)->length, sizeof(big));
	assert_memory_equal(f->page + OFF + 4, big, PG - OFF - 4);
	assert_memory_equal(f->xpages, big + PG - OFF - 4,
			    sizeof(big) - (PG - OFF - 4));
	/* The same refs again: mapped once, reused. */
	fe_put(f, big, sizeof(big), 1, 0);
	fe_notify(W, f);
	turn(W);
	assert_int_equal(W->be[0].tb.stats.responses, 2);
	assert_int_equal(xensim_maps_live(W->w), 2);
}

static void cancel_while_idle_goes_idle(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];

	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	shr(f)->state = TPMIF_STATE_CANCEL;
	fe_notify(W, f);
	turn(W);
	assert_int_equal(shr(f)->state, TPMIF_STATE_IDLE);
	assert_int_equal(W->be[0].submits, 0);
}

static void cancel_while_running_reaches_the_engine_then_finishes(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];

	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	W->be[0].mode = ENG_DEFER;
	fe_submit(W, f, CMD, sizeof(CMD));
	turn(W);
	assert_int_equal(W->be[0].submits, 1);
	assert_int_equal(shr(f)->state, TPMIF_STATE_SUBMIT);
	shr(f)->state = TPMIF_STATE_CANCEL;
	fe_notify(W, f);
	turn(W);
	fe_notify(W, f);
	turn(W);
	assert_int_equal(W->be[0].cancels, 1); /* once per command */
	tpmback_complete(&W->be[0].tb, RSP, sizeof(RSP));
	assert_int_equal(shr(f)->state, TPMIF_STATE_FINISH);
	assert_memory_equal(f->page + OFF, RSP, sizeof(RSP));
}

static void engine_abort_leaves_the_page_idle(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];

	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	W->be[0].mode = ENG_DEFER;
	fe_submit(W, f, CMD, sizeof(CMD));
	turn(W);
	tpmback_complete(&W->be[0].tb, NULL, 0);
	assert_int_equal(shr(f)->state, TPMIF_STATE_IDLE);
	/* A response bigger than the mapped area is never written. */
	W->be[0].mode = ENG_HUGE;
	fe_submit(W, f, CMD, sizeof(CMD));
	turn(W);
	assert_int_equal(shr(f)->state, TPMIF_STATE_IDLE);
	assert_int_equal(shr(f)->length, sizeof(CMD));
}

/* ---- reboot, close, detach ---- */

static void guest_reboot_closes_reports_power_cycle_and_reconnects(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];

	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	fe_submit(W, f, CMD, sizeof(CMD));
	turn(W);
	fe_write(W, f, "state", "5");
	turn(W);
	assert_be_state(W, f, "5");
	assert_int_equal(xensim_maps_live(W->w), 0);
	assert_int_equal(xensim_binds_live(W->w), 0);
	assert_int_equal(W->be[0].power_cycles, 1);
	fe_write(W, f, "state", "6");
	turn(W);
	assert_be_state(W, f, "2");
	/* The rebooted guest probes afresh: new page, new port. */
	xensim_evtchn_close(W->w, f->dom, f->port);
	fe_alloc(W, f);
	fe_publish(W, f);
	fe_write(W, f, "state", "3");
	fe_put(f, CMD, sizeof(CMD), 0, 0);
	turn(W);
	assert_be_state(W, f, "4");
	assert_int_equal(shr(f)->state, TPMIF_STATE_FINISH);
	assert_int_equal(W->be[0].submits, 2);
	assert_int_equal(W->be[0].power_cycles, 1);
	/* Straight from Connected to Closed works too. */
	fe_write(W, f, "state", "6");
	turn(W);
	assert_be_state(W, f, "2");
	assert_int_equal(W->be[0].power_cycles, 2);
	assert_int_equal(xensim_maps_live(W->w), 0);
}

/* xl vtpm-detach: online=0 and state 5 in the backend dir, then libxl
 * waits (10 s) for the backend to reach Closed before it removes both
 * directories. */
static void detach_closes_for_libxl_and_reattach_serves_again(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];
	char *v;

	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	toolstack_begin_remove(W, f);
	turn(W);
	/* The frontend has not let go yet: still mapped. */
	assert_int_equal(xensim_maps_live(W->w), 1);
	assert_int_equal(W->be[0].power_cycles, 0);
	fe_write(W, f, "state", "6"); /* Linux saw 5: unregistered, Closed */
	turn(W);
	assert_be_state(W, f, "6");
	assert_int_equal(W->be[0].tb.state, TPMBACK_CLOSED);
	assert_int_equal(W->be[0].power_cycles, 1);
	assert_int_equal(xensim_maps_live(W->w), 0);
	assert_int_equal(xensim_binds_live(W->w), 0);
	toolstack_remove(W, f);
	turn(W);
	assert_int_equal(W->be[0].tb.state, TPMBACK_NO_DEVICE);
	/* Nothing was written back into the removed directory. */
	v = be_read(W, f, "state");
	assert_null(v);
	/* vtpm-attach: served again. */
	xensim_evtchn_close(W->w, f->dom, f->port);
	connect_guest(W, 0);
	fe_submit(W, f, CMD, sizeof(CMD));
	turn(W);
	assert_int_equal(shr(f)->state, TPMIF_STATE_FINISH);
}

/* In a driver domain the backend removes its directory once Closed
 * (dom0's libxl waits 10 s for that); dom0's backend leaves it to libxl
 * (the test above: the directory stays until toolstack_remove). */
static void driver_domain_removes_its_directory_when_closed(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];

	bdom = 7;
	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	toolstack_begin_remove(W, f);
	turn(W);
	/* The frontend has not let go yet: still connected. */
	assert_int_equal(W->be[0].tb.state, TPMBACK_CONNECTED);
	fe_write(W, f, "state", "6");
	turns(W, 2);
	assert_null(be_read(W, f, "state"));
	assert_null(be_read(W, f, "frontend"));
	assert_int_equal(W->be[0].tb.state, TPMBACK_NO_DEVICE);
	assert_int_equal(W->be[0].power_cycles, 1);
	assert_int_equal(xensim_maps_live(W->w), 0);
}

/* A toolstack that removes the directories at once (xl destroy, or a
 * forced detach) while the guest is connected. */
static void device_removed_under_a_connected_guest(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];

	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	toolstack_remove(W, f);
	turn(W);
	assert_int_equal(W->be[0].tb.state, TPMBACK_NO_DEVICE);
	assert_int_equal(W->be[0].power_cycles, 1);
	assert_int_equal(xensim_maps_live(W->w), 0);
	assert_int_equal(xensim_binds_live(W->w), 0);
	assert_null(be_read(W, f, "state"));
}

/* Xen save/restore: a guest gone without closing (the domain suspended
 * for xl save or xl migrate, then destroyed) is reported as suspended,
 * never as a power cycle, and the owner hears of every connection before
 * its first command. */
static void a_guest_gone_without_a_close_is_suspended_not_power_cycled(
	void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];

	be_ops = &sr_ops;
	be_start(W, 0, 5, UUID_A);
	toolstack_add(W, f, UUID_A);
	turn(W);
	fe_alloc(W, f);
	fe_publish(W, f);
	fe_write(W, f, "state", "3");
	fe_put(f, CMD, sizeof(CMD), 0, 0); /* Linux sends in its probe */
	turn(W);
	assert_int_equal(W->be[0].connects, 1);
	assert_int_equal(W->be[0].submits_at_connect, 0);
	assert_int_equal(W->be[0].submits, 1);
	/* The device goes while the frontend is still Connected. */
	toolstack_remove(W, f);
	turn(W);
	assert_int_equal(W->be[0].tb.state, TPMBACK_NO_DEVICE);
	assert_int_equal(W->be[0].suspends, 1);
	assert_int_equal(W->be[0].power_cycles, 0);
	assert_int_equal(W->be[0].tb.stats.suspends, 1);
	assert_int_equal(xensim_maps_live(W->w), 0);
	/* A new domain's device (the restore): connected again, and told. */
	xensim_evtchn_close(W->w, f->dom, f->port);
	connect_guest(W, 0);
	assert_int_equal(W->be[0].connects, 2);
	/* A guest that closes (reboot, shutdown) is a power cycle. */
	fe_write(W, f, "state", "5");
	turn(W);
	assert_int_equal(W->be[0].power_cycles, 1);
	assert_int_equal(W->be[0].suspends, 1);
	be_ops = &eng_ops;
}

static void a_frontend_that_vanishes_while_connected_is_suspended(
	void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];
	char p[160];

	be_ops = &sr_ops;
	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	/* Only the frontend's directory goes (its domain is torn down). */
	snprintf(p, sizeof(p), "/local/domain/%u/device/vtpm/%u", f->dom,
		 f->devid);
	xensim_rm(W->w, p);
	turn(W);
	assert_int_equal(W->be[0].suspends, 1);
	assert_int_equal(W->be[0].power_cycles, 0);
	be_ops = &eng_ops;
}

/* libxl destroying a suspended domain (after xl save): online=0 and
 * state 5 for the backend, and the frontend's directory removed in the
 * same go; the frontend never said Closing. */
static void a_forced_removal_of_a_suspended_guest_is_suspended(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];
	char p[160];

	be_ops = &sr_ops;
	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	toolstack_begin_remove(W, f);
	snprintf(p, sizeof(p), "/local/domain/%u/device/vtpm/%u", f->dom,
		 f->devid);
	xensim_rm(W->w, p);
	turn(W);
	assert_int_equal(W->be[0].suspends, 1);
	assert_int_equal(W->be[0].power_cycles, 0);
	assert_int_equal(xensim_maps_live(W->w), 0);
	be_ops = &eng_ops;
}

/* ---- identity ---- */

static void unknown_or_malformed_uuid_is_refused(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];
	char p[160];

	be_start(W, 0, 5, UUID_A);
	toolstack_add(W, f, UUID_B);
	turns(W, 2);
	assert_int_equal(W->be[0].tb.state, TPMBACK_REFUSED);
	assert_be_state(W, f, "1"); /* libxl times out: the attach fails */
	path_of(p, sizeof(p), "be", f, "uuid");
	xensim_write(W->w, p, "not-a-uuid");
	turn(W);
	assert_int_equal(W->be[0].tb.state, TPMBACK_REFUSED);
	xensim_rm(W->w, p);
	turn(W);
	assert_int_equal(W->be[0].tb.state, TPMBACK_REFUSED);
	/* A frontend path elsewhere is refused whatever the uuid. */
	xensim_write(W->w, p, UUID_A);
	path_of(p, sizeof(p), "be", f, "frontend");
	xensim_write(W->w, p, "/local/domain/0/device/vtpm/0");
	turn(W);
	assert_int_equal(W->be[0].tb.state, TPMBACK_REFUSED);
	/* The right identity: accepted. */
	xensim_write(W->w, p, "/local/domain/5/device/vtpm/0");
	turn(W);
	assert_be_state(W, f, "2");
	assert_int_equal(xensim_map_calls(W->w), 0);
}

/* ---- hostile frontends ---- */

static void length_beyond_the_mapped_area_is_refused(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];
	static const uint32_t lens[] = {PG - OFF + 1, PG, 65536, 0xffffffffu,
					0};

	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		fe_put(f, CMD, sizeof(CMD), 0, 0);
		shr(f)->length = lens[i];
		fe_notify(W, f);
		turn(W);
		assert_int_equal(shr(f)->state, TPMIF_STATE_IDLE);
	}
	assert_int_equal(W->be[0].submits, 0);
	assert_int_equal(W->be[0].tb.stats.rejected, 5);
	/* Locality above 4 likewise. */
	fe_put(f, CMD, sizeof(CMD), 0, 5);
	fe_notify(W, f);
	turn(W);
	assert_int_equal(shr(f)->state, TPMIF_STATE_IDLE);
	/* And the device still serves a good command. */
	fe_submit(W, f, CMD, sizeof(CMD));
	turn(W);
	assert_int_equal(shr(f)->state, TPMIF_STATE_FINISH);
}

static void extra_pages_beyond_what_was_granted_are_refused(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];
	struct fe other = {.dom = 9};
	uint8_t *oview;
	uint32_t oref;

	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	/* Beyond the configured maximum (2): never even looked at. */
	fe_put(f, CMD, sizeof(CMD), 255, 0);
	shr(f)->nr_extra_pages = 255;
	fe_notify(W, f);
	turn(W);
	assert_int_equal(shr(f)->state, TPMIF_STATE_IDLE);
	fe_put(f, CMD, sizeof(CMD), 3, 0);
	fe_notify(W, f);
	turn(W);
	assert_int_equal(shr(f)->state, TPMIF_STATE_IDLE);
	/* Within the maximum, but refs never granted. */
	fe_put(f, CMD, sizeof(CMD), 2, 0);
	shr(f)->extra_pages[0] = 200;
	shr(f)->extra_pages[1] = 201;
	fe_notify(W, f);
	turn(W);
	assert_int_equal(shr(f)->state, TPMIF_STATE_IDLE);
	/* A reserved ref, and a page another domain granted. */
	assert_int_equal(xensim_grant(W->w, other.dom, BDOM, 1, &oref, &oview),
			 0);
	fe_put(f, CMD, sizeof(CMD), 1, 0);
	shr(f)->extra_pages[0] = 3;
	fe_notify(W, f);
	turn(W);
	assert_int_equal(shr(f)->state, TPMIF_STATE_IDLE);
	fe_put(f, CMD, sizeof(CMD), 1, 0);
	shr(f)->extra_pages[0] = oref;
	fe_notify(W, f);
	turn(W);
	assert_int_equal(shr(f)->state, TPMIF_STATE_IDLE);
	/* One extra page granted, length claiming two. */
	assert_int_equal(
	    xensim_grant(W->w, f->dom, BDOM, 1, f->xref, &f->xpages), 0);
	fe_put(f, CMD, sizeof(CMD), 1, 0);
	shr(f)->extra_pages[0] = f->xref[0];
	shr(f)->length = PG - OFF - 4 + PG + 1;
	fe_notify(W, f);
	turn(W);
	assert_int_equal(shr(f)->state, TPMIF_STATE_IDLE);
	assert_int_equal(W->be[0].submits, 0);
	assert_int_equal(xensim_maps_live(W->w), 2); /* page + the 1 extra */
}

static void junk_xenstore_values_never_map_or_bind(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];
	static const char *bad_ref[] = {"abc",	"12 ", "-1",
					"0x10", "",    "99999999999",
					"007",	"3",   "4294967296"};
	static const char *bad_port[] = {"0", "131072", "x", "-5", "1.0"};
	static const char *bad_state[] = {"junk", "99", "3x", "", "-3"};
	char v[16];

	be_start(W, 0, 5, UUID_A);
	toolstack_add(W, f, UUID_A);
	turn(W);
	fe_alloc(W, f);
	fe_publish(W, f);
	fe_write(W, f, "state", "3");
	for (size_t i = 0; i < sizeof(bad_ref) / sizeof(bad_ref[0]); i++) {
		fe_write(W, f, "ring-ref", bad_ref[i]);
		turn(W);
		assert_be_state(W, f, "2");
	}
	snprintf(v, sizeof(v), "%u", f->ref);
	fe_write(W, f, "ring-ref", v);
	for (size_t i = 0; i < sizeof(bad_port) / sizeof(bad_port[0]); i++) {
		fe_write(W, f, "event-channel", bad_port[i]);
		turn(W);
		assert_be_state(W, f, "2");
	}
	fe_write(W, f, "event-channel", "77"); /* well-formed, not ours */
	turn(W);
	assert_be_state(W, f, "2");
	snprintf(v, sizeof(v), "%u", f->port);
	fe_write(W, f, "event-channel", v);
	fe_write(W, f, "feature-protocol-v2", "2");
	turn(W);
	assert_be_state(W, f, "2");
	assert_int_equal(xensim_maps_live(W->w), 0);
	assert_int_equal(xensim_binds_live(W->w), 0);
	for (size_t i = 0; i < sizeof(bad_state) / sizeof(bad_state[0]); i++) {
		fe_write(W, f, "state", bad_state[i]);
		turn(W);
		assert_be_state(W, f, "2");
	}
	/* Fixed: it connects and serves. */
	fe_write(W, f, "feature-protocol-v2", "1");
	fe_write(W, f, "state", "3");
	turn(W);
	assert_be_state(W, f, "4");
	/* Junk state while connected changes nothing. */
	fe_write(W, f, "state", "junk");
	turn(W);
	assert_be_state(W, f, "4");
	fe_submit(W, f, CMD, sizeof(CMD));
	turn(W);
	assert_int_equal(shr(f)->state, TPMIF_STATE_FINISH);
	/* Junk in the page's state byte is ignored. */
	shr(f)->state = 77;
	fe_notify(W, f);
	turn(W);
	assert_int_equal(shr(f)->state, 77);
	assert_int_equal(W->be[0].submits, 1);
}

static void state_flapping_leaks_nothing_and_still_serves(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];
	static const char *seq[] = {"3", "6", "4", "5", "1", "3",
				    "5", "6", "4", "0", "3", "2"};
	unsigned int i;

	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	for (i = 0; i < 600; i++) {
		fe_write(W, f, "state", seq[i % 12]);
		if (i % 3 == 0) /* sometimes several writes per turn */
			turn(W);
		if (i % 7 == 0 && W->be[0].tb.state == TPMBACK_CONNECTED) {
			fe_submit(W, f, CMD, sizeof(CMD));
			turn(W);
		}
	}
	turn(W);
	assert_true(W->be[0].tb.stats.connects > 10);
	fe_write(W, f, "state", "6");
	turn(W);
	assert_be_state(W, f, "2");
	assert_int_equal(xensim_maps_live(W->w), 0);
	assert_int_equal(xensim_binds_live(W->w), 0);
	/* Every connection that ended was reported as a power cycle. */
	assert_int_equal(W->be[0].power_cycles, W->be[0].tb.stats.connects);
	fe_write(W, f, "state", "3");
	shr(f)->state = TPMIF_STATE_IDLE;
	turn(W);
	fe_submit(W, f, CMD, sizeof(CMD));
	turn(W);
	assert_int_equal(shr(f)->state, TPMIF_STATE_FINISH);
}

/* A guest rewriting its xenstore nodes in a loop: drained in bursts,
 * one reconcile per burst, and the handshake still goes through. */
static void xenstore_write_flood_is_drained_in_bursts(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];
	char v[16];

	be_start(W, 0, 5, UUID_A);
	toolstack_add(W, f, UUID_A);
	turn(W);
	fe_alloc(W, f);
	for (int i = 0; i < 5000; i++) {
		snprintf(v, sizeof(v), "%d", i);
		fe_write(W, f, "noise", v);
	}
	fe_publish(W, f);
	fe_write(W, f, "state", "3");
	turn(W); /* the first burst already sees state 3 */
	assert_be_state(W, f, "4");
	turns(W, 10);
	assert_int_equal(W->be[0].tb.stats.connects, 1);
	fe_submit(W, f, CMD, sizeof(CMD));
	turn(W);
	assert_int_equal(shr(f)->state, TPMIF_STATE_FINISH);
}

/* A guest notifying in a loop: its events are throttled, the loop does
 * not spin, and another guest's vTPM on the same loop keeps serving. */
struct storm {
	struct world *W;
	uv_prepare_t prep;
	uv_timer_t stop, other;
	unsigned int answered;
	bool sent;
};

static void storm_prepare(uv_prepare_t *p)
{
	struct storm *s = p->data;

	for (int i = 0; i < 50; i++)
		fe_notify(s->W, &s->W->fe[0]);
}

static void storm_other(uv_timer_t *t)
{
	struct storm *s = t->data;
	struct fe *g = &s->W->fe[1];

	if (s->sent && shr(g)->state == TPMIF_STATE_FINISH) {
		s->answered++;
		s->sent = false;
	}
	if (!s->sent) {
		fe_submit(s->W, g, CMD, sizeof(CMD));
		s->sent = true;
	}
}

static void storm_stop(uv_timer_t *t)
{
	uv_stop(t->loop);
}

static void event_storm_is_throttled_and_others_unaffected(void **state)
{
	struct world *W = *state;
	struct storm s = {.W = W};
	struct xenloop *c;
	uint64_t ev, t0, ms;

	be_start(W, 0, 5, UUID_A);
	be_start(W, 1, 6, UUID_A);
	c = &W->be[0].tb.xb.io; /* the throttle's settings, after the start */
	c->storm_events = 50;
	c->storm_window_ms = 100;
	c->storm_pause_ms = 50;
	connect_guest(W, 0);
	connect_guest(W, 1);
	uv_prepare_init(&W->loop, &s.prep);
	uv_timer_init(&W->loop, &s.stop);
	uv_timer_init(&W->loop, &s.other);
	s.prep.data = s.other.data = &s;
	uv_prepare_start(&s.prep, storm_prepare);
	uv_timer_start(&s.other, storm_other, 2, 2);
	uv_timer_start(&s.stop, storm_stop, 400, 0);
	uv_update_time(&W->loop);
	t0 = uv_now(&W->loop);
	uv_run(&W->loop, UV_RUN_DEFAULT);
	uv_update_time(&W->loop);
	ms = uv_now(&W->loop) - t0;
	uv_prepare_stop(&s.prep);
	uv_timer_stop(&s.other);
	ev = W->be[0].tb.stats.events;
	/* Unthrottled, this is one event per loop iteration: thousands. */
	assert_true(W->be[0].tb.stats.throttled >= 1);
	assert_true(ev <= 51 * (ms / 50 + 2));
	assert_true(s.answered >= 20);
	assert_int_equal(W->be[1].tb.stats.throttled, 0);
	/* Once the storm stops, nothing is left running. */
	turns(W, 5);
	ev = W->be[0].tb.stats.events;
	turns(W, 50);
	assert_true(W->be[0].tb.stats.events <= ev + 1);
	uv_close((uv_handle_t *)&s.prep, NULL);
	uv_close((uv_handle_t *)&s.stop, NULL);
	uv_close((uv_handle_t *)&s.other, NULL);
	uv_run(&W->loop, UV_RUN_NOWAIT);
	/* The stormy guest is served again after its pause. */
	usleep(60 * 1000);
	uv_run(&W->loop, UV_RUN_NOWAIT);
	uv_update_time(&W->loop);
	for (int i = 0; i < 20 && W->be[0].tb.xb.io.ev_polling == false; i++) {
		usleep(10 * 1000);
		uv_run(&W->loop, UV_RUN_NOWAIT);
	}
	fe_submit(W, &W->fe[0], CMD, sizeof(CMD));
	turn(W);
	assert_int_equal(shr(&W->fe[0])->state, TPMIF_STATE_FINISH);
}

static void frontend_that_never_reads_its_response(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];

	be_start(W, 0, 5, UUID_A);
	be_start(W, 1, 6, UUID_A);
	connect_guest(W, 0);
	connect_guest(W, 1);
	fe_submit(W, f, CMD, sizeof(CMD));
	turn(W);
	assert_int_equal(shr(f)->state, TPMIF_STATE_FINISH);
	/* It pokes us again and again without reading: nothing is rerun,
	 * nothing waits on it. */
	for (int i = 0; i < 100; i++) {
		fe_notify(W, f);
		turn(W);
	}
	assert_int_equal(W->be[0].submits, 1);
	assert_false(W->be[0].tb.busy);
	fe_submit(W, &W->fe[1], CMD, sizeof(CMD));
	turn(W);
	assert_int_equal(shr(&W->fe[1])->state, TPMIF_STATE_FINISH);
	/* And stopping does not wait for it. */
	tpmback_stop(&W->be[0].tb, be_stopped);
	turns(W, 2);
	assert_true(W->be[0].stopped);
}

static void frontend_vanishing_mid_command(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];
	uint64_t got;

	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	W->be[0].mode = ENG_DEFER;
	fe_submit(W, f, CMD, sizeof(CMD));
	turn(W);
	assert_true(W->be[0].tb.busy);
	/* xl destroy: both directories go, the port is closed. */
	got = xensim_evtchn_received(W->w, f->dom, f->port);
	xensim_evtchn_close(W->w, f->dom, f->port);
	toolstack_remove(W, f);
	turn(W);
	assert_int_equal(xensim_maps_live(W->w), 0);
	assert_int_equal(xensim_binds_live(W->w), 0);
	assert_int_equal(W->be[0].cancels, 1);
	assert_int_equal(W->be[0].power_cycles, 1);
	/* The engine answers late: dropped, and the unmapped page (now
	 * PROT_NONE) is never touched. */
	tpmback_complete(&W->be[0].tb, RSP, sizeof(RSP));
	assert_int_equal(W->be[0].tb.stats.responses, 0);
	assert_int_equal(xensim_evtchn_received(W->w, f->dom, f->port), got);
}

static void reconnect_while_the_old_command_runs(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];

	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	W->be[0].mode = ENG_DEFER;
	fe_submit(W, f, CMD, sizeof(CMD));
	turn(W);
	fe_write(W, f, "state", "6");
	turn(W);
	assert_be_state(W, f, "2");
	/* The new guest submits in its probe while the old one runs. */
	xensim_evtchn_close(W->w, f->dom, f->port);
	fe_alloc(W, f);
	fe_publish(W, f);
	fe_put(f, CMD, sizeof(CMD), 0, 0);
	fe_write(W, f, "state", "3");
	turn(W);
	assert_be_state(W, f, "4");
	assert_int_equal(W->be[0].submits, 1); /* queued behind the old */
	W->be[0].mode = ENG_CANNED;
	tpmback_complete(&W->be[0].tb, RSP, sizeof(RSP)); /* old: dropped */
	/* ... and the new one was taken up at once. */
	assert_int_equal(W->be[0].submits, 2);
	assert_int_equal(shr(f)->state, TPMIF_STATE_FINISH);
	assert_int_equal(W->be[0].tb.stats.responses, 1);
}

static void stop_waits_for_the_command_in_flight(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];

	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	W->be[0].mode = ENG_DEFER;
	fe_submit(W, f, CMD, sizeof(CMD));
	turn(W);
	tpmback_stop(&W->be[0].tb, be_stopped);
	turns(W, 2);
	assert_false(W->be[0].stopped);
	assert_int_equal(W->be[0].cancels, 1);
	tpmback_complete(&W->be[0].tb, RSP, sizeof(RSP));
	assert_int_equal(shr(f)->state, TPMIF_STATE_FINISH);
	turns(W, 2);
	assert_true(W->be[0].stopped);
	assert_int_equal(xensim_maps_live(W->w), 0);
	/* The xenbus state is left for a restarted backend to resume. */
	assert_be_state(W, f, "4");
}

/* The owner's cancel completing inside tpmback_stop used to finish the
 * stop twice (uv_close on a closing handle: abort). */
static void stop_when_cancel_completes_at_once(void **state)
{
	struct world *W = *state;
	struct fe *f = &W->fe[0];

	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	W->be[0].mode = ENG_DEFER;
	W->be[0].cancel_aborts = true;
	fe_submit(W, f, CMD, sizeof(CMD));
	turn(W);
	assert_true(W->be[0].tb.busy);
	tpmback_stop(&W->be[0].tb, be_stopped);
	assert_int_equal(W->be[0].cancels, 1);
	assert_int_equal(shr(f)->state, TPMIF_STATE_IDLE);
	turns(W, 2);
	assert_true(W->be[0].stopped);
	assert_int_equal(xensim_maps_live(W->w), 0);
}

/* The guards are real: touching the page after the mapping faults. */
static void backend_mapping_is_fenced_by_guard_pages(void **state)
{
	struct world *W = *state;
	pid_t pid;
	int st;

	be_start(W, 0, 5, UUID_A);
	connect_guest(W, 0);
	for (int side = 0; side < 2; side++) {
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			volatile uint8_t *p = W->be[0].tb.page;

			signal(SIGSEGV, SIG_DFL);
			if (side)
				p[PG] = 1;
			else
				(void)p[-1];
			_exit(0);
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st));
		assert_int_equal(WTERMSIG(st), SIGSEGV);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parse_u32_is_strict),
	    cmocka_unit_test(parse_uuid_is_strict),
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T(initwait_at_once_with_protocol_v2),
	    T(device_present_at_start_gets_initwait_without_an_event),
	    T(probe_command_answered_in_the_connecting_turn),
	    T(initwait_held_for_the_toolstack_on_a_new_device),
	    T(no_hold_for_a_device_already_past_initialising),
	    T(mini_os_frontend_jumping_to_4_connects),
	    T(commands_answered_with_length_barrier_and_notify),
	    T(largest_single_page_command_fits),
	    T(extra_pages_carry_a_command_larger_than_a_page),
	    T(cancel_while_idle_goes_idle),
	    T(cancel_while_running_reaches_the_engine_then_finishes),
	    T(engine_abort_leaves_the_page_idle),
	    T(guest_reboot_closes_reports_power_cycle_and_reconnects),
	    T(detach_closes_for_libxl_and_reattach_serves_again),
	    T(driver_domain_removes_its_directory_when_closed),
	    T(device_removed_under_a_connected_guest),
	    T(unknown_or_malformed_uuid_is_refused),
	    T(length_beyond_the_mapped_area_is_refused),
	    T(extra_pages_beyond_what_was_granted_are_refused),
	    T(junk_xenstore_values_never_map_or_bind),
	    T(state_flapping_leaks_nothing_and_still_serves),
	    T(xenstore_write_flood_is_drained_in_bursts),
	    T(event_storm_is_throttled_and_others_unaffected),
	    T(frontend_that_never_reads_its_response),
	    T(frontend_vanishing_mid_command),
	    T(a_guest_gone_without_a_close_is_suspended_not_power_cycled),
	    T(a_frontend_that_vanishes_while_connected_is_suspended),
	    T(a_forced_removal_of_a_suspended_guest_is_suspended),
	    T(reconnect_while_the_old_command_runs),
	    T(stop_waits_for_the_command_in_flight),
	    T(stop_when_cancel_completes_at_once),
	    T(backend_mapping_is_fenced_by_guard_pages),
#undef T
	};

	log_init("test_tpmback",
		 getenv("VTPM_TEST_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
