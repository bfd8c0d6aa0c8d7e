/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The real tpmfront (transports/xen-ring/tpmif), as domain 5, against a
 * hostile backend in domain 0 that the fuzz input plays through the
 * simulated Xen (tests/xen-sim/xensim.c): its xenstore nodes, the shared
 * page it maps (state, length, garbage anywhere), its notifications, and
 * the toolstack's device nodes; the input also plays tpmfront's owner
 * (submit, cancel, stop and restart).  One opcode byte per action, then
 * its operands.
 *
 *   byte 0   config: bits 0..3 max_extra_pages (% 9), bit 4 backend-id
 *            must be 0, bits 5..7 storm_events (0: default, else 1 << k)
 *   then     actions; opcode & 0x0f picks one, opcode & 0x80 runs one
 *            loop turn after it
 *
 *   0 toolstack adds the device       8  loop turn
 *   1 backend node := value           9  owner submits (len, locality)
 *   2 backend node removed            10 owner cancels
 *   3 backend state := 0..8           11 backend answers like a correct
 *   4 frontend device node := value      one (response, FINISH, notify)
 *   5 backend maps the ring and the      of a length the input picks
 *     extra pages the header names,   12 backend unmaps and unbinds
 *     binds the event channel         13 device removed (either side)
 *   6 page: state and length          14 frontend stopped and restarted
 *   7 bytes anywhere it mapped        15 backend notifies
 *
 * Must hold (abort otherwise): no access outside what the frontend
 * shared (ASan; xensim's guard pages and the PROT_NONE tombstone an
 * unshared area becomes: SIGSEGV); submit's return code is exactly what
 * tpmfront.h promises for the state it was called in; every accepted
 * request gets exactly one callback, never from inside submit, with a
 * documented status; a response has 1 <= len <= the capacity, and the
 * page no longer holds it when the owner gets it; after every turn the
 * state is a valid one and the frontend shares an area and owns a port
 * exactly when Initialised or Connected, with the capacity its extra
 * pages give; stopping fails the request in flight, shares nothing,
 * owns no port, and the loop closes.
 *
 * Seed: corpus/tpmfront/handshake, 32 bytes, a correct backend's life:
 *   02           max_extra_pages 2, any backend-id, default storm
 *   80           toolstack adds the device; turn (front: waits)
 *   01 01 02     backend feature-protocol-v2 := "1"
 *   01 02 00 02  backend feature-extra-pages := "2"
 *   83 02        backend InitWait; turn (front shares 3 pages: state 3)
 *   85 00        backend maps the ring and its 2 extra pages, binds; turn
 *   83 04        backend Connected; turn (front: Connected)
 *   89 03 00 00 10     owner submits 17 bytes at locality 0; turn
 *   8b 41 00 20  backend answers 33 bytes, FINISH, notify; turn (ok)
 *   89 01 02     owner submits a full-capacity request, locality 2
 *   8a           owner cancels; turn
 *   86 00        backend writes IDLE; turn (callback: -ECANCELED)
 *   83 05        backend Closing; turn (front drops the ring)
 * FUZZ_VERBOSE=1 prints each run's stats: connects 1, ok 1, failed 1.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>
#include <xen/io/tpmif.h>

#include "lib/log.h"
#include "tpmif/tpmfront.h"
#include "xensim.h"

#define BDOM 0u
#define FDOM 5u
#define PG 4096u
#define NPAGES (1 + TPMFRONT_MAX_EXTRA_PAGES)
#define MAX_ACTIONS 256

#define BE "/local/domain/0/backend/vtpm/5/0"
#define FE "/local/domain/5/device/vtpm/0"

#define CHECK(c)                                                         \
	do {                                                             \
		if (!(c)) {                                              \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", \
				__FILE__, __LINE__, #c);                 \
			abort();                                         \
		}                                                        \
	} while (0)

struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct in *in)
{
	uint8_t v;

	if (!in->n)
		return 0;
	v = *in->p++;
	in->n--;
	return v;
}

static uint32_t u32(struct in *in)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v = v << 8 | u8(in);
	return v;
}

struct world {
	uv_loop_t loop;
	struct xensim *w;
	struct xenif *fx; /* the frontend's */
	struct xenif *hx; /* the hostile backend's */
	struct tpmfront tf;
	struct tpmfront_config cfg;
	bool running, stopped, in_submit;
	unsigned int outstanding; /* accepted requests not yet called back */
	uint64_t ok, failed;
	/* the backend's view */
	uint8_t *page;	/* the ring page it mapped */
	uint8_t *extra; /* the extra pages it mapped */
	uint32_t extra_n;
	uint32_t hport;
	bool bound;
};

static uint8_t cmdbuf[NPAGES * PG + 16];
static bool verbose; /* FUZZ_VERBOSE set: each run's stats on stderr */

static struct tpmif_shared_page *hshr(struct world *W)
{
	return (struct tpmif_shared_page *)W->page;
}

/* ---- the owner ---- */

static void on_rsp(struct tpmfront *tf, int status, const uint8_t *rsp,
		   uint32_t len, void *arg)
{
	struct world *W = arg;

	CHECK(W == tf->data);
	CHECK(!W->in_submit);
	CHECK(W->outstanding == 1);
	W->outstanding--;
	if (status == 0) {
		CHECK(rsp && len >= 1);
		CHECK(tf->state == TPMFRONT_CONNECTED && tf->area);
		CHECK(len <= tf->data_cap);
		/* A response is wiped off the shared page before the owner
		 * sees it. */
		for (uint32_t i = 0; i < len; i++)
			CHECK(tf->area[tf->data_off + i] == 0);
		W->ok++;
		return;
	}
	CHECK(!rsp && len == 0);
	CHECK(status == -ECANCELED || status == -ETIMEDOUT ||
	      status == -ECONNRESET || status == -EPROTO ||
	      status == -ESHUTDOWN);
	W->failed++;
}

/* ---- invariants ---- */

static void check_state(struct world *W)
{
	struct tpmfront *tf = &W->tf;

	if (!W->running)
		return;
	CHECK(tf->state <= TPMFRONT_CONNECTED);
	CHECK(W->outstanding == (tf->req != TF_REQ_NONE));
	if (tf->state == TPMFRONT_INITIALISED ||
	    tf->state == TPMFRONT_CONNECTED) {
		uint32_t n = tf->n_extra;

		CHECK(tf->area && tf->have_port);
		CHECK(n <= W->cfg.max_extra_pages);
		CHECK(tf->area_pages == 1 + n);
		CHECK(tf->data_off == 8 + 4 * n);
		CHECK(tf->data_cap == (1 + n) * PG - tf->data_off);
		CHECK(xensim_shares_live(W->w) == 1);
		CHECK(xensim_front_ports_live(W->w) == 1);
	} else {
		CHECK(!tf->area && !tf->have_port);
		CHECK(tf->req == TF_REQ_NONE);
		CHECK(xensim_shares_live(W->w) == 0);
		CHECK(xensim_front_ports_live(W->w) == 0);
	}
	CHECK(tpmfront_capacity(tf) ==
	      (tf->state == TPMFRONT_CONNECTED ? tf->data_cap : 0));
}

static void turn(struct world *W)
{
	uv_run(&W->loop, UV_RUN_NOWAIT);
	check_state(W);
}

/* ---- the frontend's lifetime ---- */

static void fe_stopped(struct tpmfront *tf)
{
	((struct world *)tf->data)->stopped = true;
}

static void fe_start(struct world *W)
{
	W->fx = xensim_open(W->w, FDOM);
	CHECK(W->fx);
	CHECK(tpmfront_init(&W->tf, &W->loop, W->fx, &W->cfg, NULL, W) == 0);
	CHECK(tpmfront_start(&W->tf) == 0);
	W->running = true;
	W->stopped = false;
	check_state(W);
}

static void fe_stop(struct world *W)
{
	W->running = false;
	tpmfront_stop(&W->tf, fe_stopped);
	CHECK(W->outstanding == 0); /* failed with -ESHUTDOWN at once */
	for (int i = 0; i < 8 && !W->stopped; i++)
		uv_run(&W->loop, UV_RUN_NOWAIT);
	CHECK(W->stopped);
	CHECK(W->tf.state == TPMFRONT_STOPPED);
	CHECK(xensim_shares_live(W->w) == 0);
	CHECK(xensim_front_ports_live(W->w) == 0);
	xenif_close(W->fx);
	W->fx = NULL;
	uv_run(&W->loop, UV_RUN_NOWAIT);
}

/* ---- the backend and the toolstack ---- */

static void put(struct world *W, const char *path, const char *val)
{
	xensim_write(W->w, path, val);
}

static void put_u32(struct world *W, const char *path, uint32_t v)
{
	char s[16];

	snprintf(s, sizeof(s), "%u", v);
	put(W, path, s);
}

static void toolstack_add(struct world *W)
{
	put(W, BE "/frontend", FE);
	put(W, BE "/frontend-id", "5");
	put(W, BE "/online", "1");
	put(W, BE "/state", "1");
	put(W, FE "/backend", BE);
	put(W, FE "/backend-id", "0");
	put(W, FE "/handle", "0");
	put(W, FE "/state", "1");
}

static const char *const be_nodes[] = {
    "state", "feature-protocol-v2", "feature-extra-pages", "frontend",
};
static const char *const fe_nodes[] = {
    "backend", "backend-id", "state", "ring-ref", "event-channel",
};

static void put_value(struct world *W, struct in *in, const char *path)
{
	static char big[3001];
	char junk[24];
	uint8_t sel = u8(in), b;

	switch (sel % 10) {
	case 0:
		put_u32(W, path, u8(in) % 10);
		break;
	case 1:
		put_u32(W, path, u32(in));
		break;
	case 2:
		put(W, path, "1");
		break;
	case 3:
		b = u8(in) % sizeof(junk);
		for (uint8_t i = 0; i < b; i++)
			junk[i] = (char)u8(in);
		xensim_write_raw(W->w, path, junk, b);
		break;
	case 4:
		put(W, path, "");
		break;
	case 5:
		put(W, path, "99999999999999999999");
		break;
	case 6:
		if (!big[0])
			memset(big, '1', sizeof(big) - 1);
		put(W, path, big);
		break;
	case 7:
		put(W, path, BE);
		break;
	case 8:
		put(W, path, "/local/domain/7/backend/vtpm/5/0");
		break;
	case 9:
		put(W, path, "0");
		break;
	}
}

static void be_unmap(struct world *W)
{
	if (W->extra) {
		W->hx->ops->gnt_unmap(W->hx, W->extra, W->extra_n);
		W->extra = NULL;
		W->extra_n = 0;
	}
	if (W->page) {
		W->hx->ops->gnt_unmap(W->hx, W->page, 1);
		W->page = NULL;
	}
	if (W->bound) {
		W->hx->ops->evtchn_unbind(W->hx, W->hport);
		W->bound = false;
	}
}

static bool read_u32(struct world *W, const char *path, uint32_t *v)
{
	char *s = xensim_read(W->w, path), *end;
	unsigned long x;
	bool ok;

	if (!s)
		return false;
	x = strtoul(s, &end, 10);
	ok = *s && !*end && x <= UINT32_MAX;
	free(s);
	*v = (uint32_t)x;
	return ok;
}

/* What a backend does at Initialised: map what the frontend published
 * (and the extra pages its header names), bind its port. */
static void be_map(struct world *W, struct in *in)
{
	struct xenif *x = W->hx;
	uint32_t ref, port, refs[TPMFRONT_MAX_EXTRA_PAGES], n;
	void *p;

	be_unmap(W);
	if (read_u32(W, FE "/ring-ref", &ref) &&
	    x->ops->gnt_map(x, FDOM, 1, &ref, &p) == 0) {
		W->page = p;
		n = hshr(W)->nr_extra_pages;
		if (u8(in) & 1)
			n = u8(in);
		if (n > TPMFRONT_MAX_EXTRA_PAGES)
			n = TPMFRONT_MAX_EXTRA_PAGES;
		memcpy(refs, W->page + 8, 4 * n);
		if (n && x->ops->gnt_map(x, FDOM, n, refs, &p) == 0) {
			W->extra = p;
			W->extra_n = n;
		}
	}
	if (read_u32(W, FE "/event-channel", &port) &&
	    x->ops->evtchn_bind(x, FDOM, port, &W->hport) == 0)
		W->bound = true;
}

static void be_notify(struct world *W)
{
	if (W->bound)
		W->hx->ops->evtchn_notify(W->hx, W->hport);
}

/* The capacity the backend believes in: what the header says. */
static uint32_t be_cap(struct world *W)
{
	uint32_t n = W->extra_n;

	return PG - 8 - 4 * n + n * PG;
}

static uint32_t any_len(struct world *W, struct in *in)
{
	uint8_t sel = u8(in);
	uint32_t cap = W->tf.data_cap;

	switch (sel % 8) {
	case 0:
		return 0;
	case 1:
		return cap;
	case 2:
		return cap + 1;
	case 3:
		return be_cap(W) + (sel >> 7);
	case 4:
		return UINT32_MAX;
	case 5:
		return NPAGES * PG;
	default:
		return u32(in);
	}
}

static void be_page(struct world *W, struct in *in)
{
	uint8_t st = u8(in);

	if (!W->page)
		return;
	if (st & 0x40)
		hshr(W)->length = any_len(W, in);
	if (st & 0x20)
		hshr(W)->nr_extra_pages = u8(in);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	hshr(W)->state = st & 0x80 ? st : st % 4;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static void be_bytes(struct world *W, struct in *in)
{
	uint32_t off = u32(in) % ((1 + W->extra_n) * PG);
	uint8_t n = u8(in) % 32;

	if (!W->page)
		return;
	for (uint8_t i = 0; i < n; i++, off++) {
		uint8_t b = u8(in);

		if (off < PG)
			W->page[off] = b;
		else if (off < (1 + W->extra_n) * PG)
			W->extra[off - PG] = b;
	}
}

/* A correct backend's answer: data after the header and refs, length,
 * FINISH, notify. */
static void be_answer(struct world *W, struct in *in)
{
	uint32_t off, len, first;
	uint8_t fill = u8(in);

	if (!W->page)
		return;
	off = 8 + 4 * W->extra_n;
	len = ((uint32_t)u8(in) << 8 | u8(in)) % be_cap(W) + 1;
	first = PG - off < len ? PG - off : len;
	memset(W->page + off, fill | 1, first);
	if (len > first)
		memset(W->extra, fill | 1, len - first);
	hshr(W)->length = len;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	hshr(W)->state = TPMIF_STATE_FINISH;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	be_notify(W);
}

/* ---- the owner ---- */

static void owner_submit(struct world *W, struct in *in)
{
	struct tpmfront *tf = &W->tf;
	uint8_t sel = u8(in);
	unsigned int loc = u8(in) % 6;
	uint32_t cap = tpmfront_capacity(tf), len;
	int want, rc;

	switch (sel % 4) {
	case 0:
		len = 0;
		break;
	case 1:
		len = cap;
		break;
	case 2:
		len = cap + 1;
		break;
	default:
		len = ((uint32_t)u8(in) << 8 | u8(in)) % (NPAGES * PG) + 1;
		break;
	}
	if (len > sizeof(cmdbuf))
		len = sizeof(cmdbuf);
	if (!tpmfront_connected(tf))
		want = -ENOTCONN;
	else if (tf->req != TF_REQ_NONE)
		want = -EBUSY;
	else if (len == 0 || len > cap)
		want = -EMSGSIZE;
	else if (loc > 4)
		want = -EINVAL;
	else
		want = 0;
	memset(cmdbuf, sel, len);
	W->in_submit = true;
	rc = tpmfront_submit(tf, cmdbuf, len, loc, 0, on_rsp, W);
	W->in_submit = false;
	CHECK(rc == want);
	if (rc == 0) {
		CHECK(W->outstanding == 0);
		W->outstanding++;
		/* What went on the page: the header and the bytes. */
		CHECK(((struct tpmif_shared_page *)tf->area)->state ==
		      TPMIF_STATE_SUBMIT);
		CHECK(((struct tpmif_shared_page *)tf->area)->length == len);
		CHECK(memcmp(tf->area + tf->data_off, cmdbuf, len) == 0);
	}
}

static void do_action(struct world *W, struct in *in, uint8_t op)
{
	char path[128];
	uint8_t b;
	int rc;

	switch (op & 0x0f) {
	case 0:
		toolstack_add(W);
		break;
	case 1:
		b = u8(in) % (sizeof(be_nodes) / sizeof(be_nodes[0]));
		snprintf(path, sizeof(path), BE "/%s", be_nodes[b]);
		put_value(W, in, path);
		break;
	case 2:
		b = u8(in) % (sizeof(be_nodes) / sizeof(be_nodes[0]));
		snprintf(path, sizeof(path), BE "/%s", be_nodes[b]);
		xensim_rm(W->w, path);
		break;
	case 3:
		put_u32(W, BE "/state", u8(in) % 9);
		break;
	case 4:
		b = u8(in) % (sizeof(fe_nodes) / sizeof(fe_nodes[0]));
		snprintf(path, sizeof(path), FE "/%s", fe_nodes[b]);
		put_value(W, in, path);
		break;
	case 5:
		be_map(W, in);
		break;
	case 6:
		be_page(W, in);
		break;
	case 7:
		be_bytes(W, in);
		break;
	case 8:
		break; /* the turn below */
	case 9:
		owner_submit(W, in);
		break;
	case 10:
		b = W->tf.req == TF_REQ_SUBMITTED && tpmfront_connected(&W->tf);
		rc = tpmfront_cancel(&W->tf);
		CHECK(rc == (b ? 0 : -ENOENT));
		break;
	case 11:
		be_answer(W, in);
		break;
	case 12:
		be_unmap(W);
		break;
	case 13:
		b = u8(in);
		if (b & 1)
			xensim_rm(W->w, FE);
		if (b & 2)
			xensim_rm(W->w, BE);
		break;
	case 14:
		fe_stop(W);
		fe_start(W);
		break;
	case 15:
		be_notify(W);
		break;
	}
	if (op & 0x80)
		turn(W);
	else
		check_state(W);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init("fuzz_tpmfront", LOG_LVL_ERR);
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	struct world *W = calloc(1, sizeof(*W));
	int actions = 0;
	uint8_t c;

	CHECK(W);
	c = u8(&in);
	W->cfg.devid = 0;
	W->cfg.max_extra_pages = (c & 0x0f) % (TPMFRONT_MAX_EXTRA_PAGES + 1);
	W->cfg.have_backend = c & 0x10;
	W->cfg.backend_domid = BDOM;
	/* No timer may fire by itself: a run must not depend on the clock. */
	W->cfg.cancel_wait_ms = 3600000;
	W->cfg.storm_events = c >> 5 ? 1u << (c >> 5) : 0;
	CHECK(uv_loop_init(&W->loop) == 0);
	W->w = xensim_new();
	CHECK(W->w);
	W->hx = xensim_open(W->w, BDOM);
	CHECK(W->hx);
	fe_start(W);

	while (in.n && actions++ < MAX_ACTIONS)
		do_action(W, &in, u8(&in));
	turn(W);
	if (verbose)
		fprintf(stderr,
			"tpmfront: state %s, connects %llu, submits %llu, "
			"ok %llu, failed %llu, rejected %llu, resets %llu\n",
			tpmfront_state_name(W->tf.state),
			(unsigned long long)W->tf.stats.connects,
			(unsigned long long)W->tf.stats.submits,
			(unsigned long long)W->ok,
			(unsigned long long)W->failed,
			(unsigned long long)W->tf.stats.rejected,
			(unsigned long long)W->tf.stats.resets);

	fe_stop(W);
	be_unmap(W);
	xenif_close(W->hx);
	uv_run(&W->loop, UV_RUN_NOWAIT);
	CHECK(uv_loop_close(&W->loop) == 0);
	xensim_free(W->w);
	free(W);
	return 0;
}
