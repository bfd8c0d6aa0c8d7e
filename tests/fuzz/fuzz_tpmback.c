/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The real tpmback (transports/xen-ring/tpmif) against the simulated Xen
 * (tests/xen-sim/xensim.c), with the fuzz input playing a hostile guest
 * (domain 5) and a careless toolstack: a sequence of actions, each one
 * opcode byte and its operands.
 *
 *   byte 0   config: bits 0..3 max_extra_pages (% 9), bit 4 a configured
 *            uuid, bits 5..7 max_cmd (0: none, else 12 << k)
 *   byte 1   storm_events (0: the default; small values throttle)
 *   then     actions; opcode & 0x0f picks one, opcode & 0x80 runs one
 *            loop turn after it (the backend sees several changes at once
 *            otherwise, as it does from a burst of watch events)
 *
 *   0 toolstack adds the device      8  loop turn
 *   1 frontend node := value         9  a well-formed request and a kick
 *   2 frontend node removed          10 backend node := value
 *   3 frontend state := 0..8         11 device removed (either side)
 *   4 page header (state, length,    12 engine mode (canned, deferred,
 *     locality, nr_extra_pages)         too big, abort) and cancel style
 *   5 an extra-page ref on the page  13 the owner answers a deferred one
 *   6 bytes anywhere on the pages    14 fresh ring page, or fresh port
 *   7 event-channel kick             15 backend stopped and restarted
 *
 * Values for xenstore nodes are the refs and port the guest owns, refs
 * granted by another domain or to another domain, small and huge numbers,
 * junk with NULs, the empty string and a 3000-byte value.
 *
 * Must hold (abort otherwise): no access outside a mapping (ASan, and
 * xensim's PROT_NONE guard pages and tombstones: SIGSEGV); submit gets
 * 1 <= len <= the mapped area's capacity and <= max_cmd, locality <= 4,
 * exactly the length the page holds and exactly the bytes on the mapped
 * pages, never a second command before the first is answered; after
 * every turn the state is a valid one and the backend holds a mapping
 * and a bound port exactly when Connected; stopping leaves nothing
 * mapped or bound and the loop closes.
 *
 * Seed: corpus/tpmback/handshake, 33 bytes, a Linux guest's life:
 *   02 00        max_extra_pages 2, no uuid, no max_cmd; default storm
 *   80           toolstack adds the device; turn (backend: InitWait)
 *   01 01 00     frontend ring-ref := the ring page's ref
 *   01 02 02 00  frontend event-channel := the guest's port
 *   01 03 05     frontend feature-protocol-v2 := "1"
 *   83 03        frontend state 3; turn (backend maps, binds: Connected)
 *   83 04        frontend state 4; turn
 *   89 00 00 0c 80 00  a 12-byte request on the ring page, locality 0
 *   89 02 20 00 41 01  an 8193-byte request over 2 extra pages, loc. 1
 *   83 05 83 06  frontend Closing, then Closed (backend: InitWait)
 * FUZZ_VERBOSE=1 prints each run's stats: this one connects once and
 * answers both commands.
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
#include "tpmif/tpmback.h"
#include "xensim.h"

#define BDOM 0u
#define FDOM 5u
#define ODOM 7u /* another guest */
#define PG 4096u
#define NPAGES (1 + TPMBACK_MAX_EXTRA_PAGES)
#define MAX_ACTIONS 256
#define MAX_REGRANTS 8

#define BE "/local/domain/0/backend/vtpm/5/0"
#define FE "/local/domain/5/device/vtpm/0"

static const char UUID_A[] = "4a1e0b8e-2f33-4c6a-9d2e-0123456789ab";
static const uint8_t UUID_A_BIN[16] = {0x4a, 0x1e, 0x0b, 0x8e, 0x2f, 0x33,
				       0x4c, 0x6a, 0x9d, 0x2e, 0x01, 0x23,
				       0x45, 0x67, 0x89, 0xab};
static const uint8_t RSP[] = {0x80, 0x01, 0x00, 0x00, 0x00, 0x0a,
			      0x00, 0x00, 0x00, 0x00};

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

enum eng { ENG_CANNED, ENG_DEFER, ENG_HUGE, ENG_ABORT };

struct world {
	uv_loop_t loop;
	struct xensim *w;
	struct xenif *bx;
	struct tpmback tb;
	struct tpmback_config cfg;
	bool running, stopped;
	enum eng eng;
	bool cancel_aborts;
	bool pending; /* a command the owner has not answered */
	/* the guest */
	uint32_t refs[NPAGES]; /* ring page, then the extra pages */
	uint8_t *view;	       /* the guest's NPAGES contiguous pages */
	uint32_t port, oport;  /* ours; one allocated for domain 9 */
	uint32_t fref, tref;   /* granted by ODOM; granted by us to dom 9 */
	unsigned int regrants;
};

static uint8_t huge_rsp[NPAGES * PG + 16];
static bool verbose; /* FUZZ_VERBOSE set: each run's stats on stderr */

/* ---- the owner ---- */

static void eng_submit(struct tpmback *tb, const uint8_t *cmd, uint32_t len,
		       unsigned int loc)
{
	struct world *W = tb->data;
	const struct tpmif_shared_page *shr = tb->page;
	uint32_t n = tb->extra_n, off = 8 + 4 * n;
	uint32_t cap = PG - off + n * PG, first;

	CHECK(!W->pending);
	CHECK(W->tb.state == TPMBACK_CONNECTED && tb->page);
	CHECK(n <= W->cfg.max_extra_pages);
	CHECK(n == 0 || tb->extra != NULL);
	CHECK(len >= 1 && len <= cap);
	CHECK(!W->cfg.max_cmd || len <= W->cfg.max_cmd);
	CHECK(loc <= 4);
	CHECK(tb->data_off == off && tb->data_cap == cap);
	/* What the page says, and the bytes it holds (single-threaded: the
	 * guest cannot have changed them since the backend looked). */
	CHECK(shr->length == len && shr->nr_extra_pages == n);
	CHECK(shr->locality == loc);
	first = PG - off < len ? PG - off : len;
	CHECK(memcmp(cmd, (const uint8_t *)tb->page + off, first) == 0);
	if (len > first)
		CHECK(memcmp(cmd + first, tb->extra, len - first) == 0);

	W->pending = true;
	switch (W->eng) {
	case ENG_CANNED:
		W->pending = false;
		tpmback_complete(tb, RSP, sizeof(RSP));
		break;
	case ENG_HUGE:
		W->pending = false;
		tpmback_complete(tb, huge_rsp, sizeof(huge_rsp));
		break;
	case ENG_ABORT:
		W->pending = false;
		tpmback_complete(tb, NULL, 0);
		break;
	case ENG_DEFER:
		break;
	}
}

static void eng_cancel(struct tpmback *tb)
{
	struct world *W = tb->data;

	CHECK(W->pending);
	if (W->cancel_aborts || tb->stopping) {
		W->pending = false;
		tpmback_complete(tb, NULL, 0);
	}
}

static void eng_power_cycle(struct tpmback *tb)
{
	(void)tb;
}

static const struct tpmback_ops eng_ops = {
    .submit = eng_submit,
    .cancel = eng_cancel,
    .power_cycle = eng_power_cycle,
};

/* ---- invariants ---- */

static void check_state(struct world *W)
{
	struct tpmback *tb = &W->tb;

	if (!W->running)
		return;
	CHECK(tb->state <= TPMBACK_CLOSED);
	CHECK(tb->busy == W->pending);
	CHECK(tb->extra_n <= W->cfg.max_extra_pages);
	if (tb->state == TPMBACK_CONNECTED) {
		CHECK(tb->page && tb->bound);
		CHECK(xensim_maps_live(W->w) == 1u + (tb->extra != NULL));
		CHECK(xensim_binds_live(W->w) == 1);
	} else {
		CHECK(!tb->page && !tb->bound && !tb->extra);
		CHECK(xensim_maps_live(W->w) == 0);
		CHECK(xensim_binds_live(W->w) == 0);
	}
}

static void turn(struct world *W)
{
	uv_run(&W->loop, UV_RUN_NOWAIT);
	check_state(W);
}

/* ---- the backend's lifetime ---- */

static void be_stopped(struct tpmback *tb)
{
	((struct world *)tb->data)->stopped = true;
}

static void be_start(struct world *W)
{
	W->bx = xensim_open(W->w, BDOM);
	CHECK(W->bx);
	CHECK(tpmback_serve(&W->tb, &W->loop, W->bx, &W->cfg, &eng_ops, W) ==
	      0);
	W->running = true;
	W->stopped = false;
	check_state(W);
}

static void be_stop(struct world *W)
{
	W->running = false;
	tpmback_stop(&W->tb, be_stopped);
	for (int i = 0; i < 8 && !W->stopped; i++)
		uv_run(&W->loop, UV_RUN_NOWAIT);
	CHECK(W->stopped);
	CHECK(!W->pending);
	CHECK(W->tb.state == TPMBACK_STOPPED);
	CHECK(xensim_maps_live(W->w) == 0);
	CHECK(xensim_binds_live(W->w) == 0);
	xenif_close(W->bx);
	W->bx = NULL;
	uv_run(&W->loop, UV_RUN_NOWAIT);
}

/* ---- the guest and the toolstack ---- */

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
	put(W, BE "/handle", "0");
	put(W, BE "/uuid", UUID_A);
	put(W, BE "/state", "1");
	put(W, FE "/backend", BE);
	put(W, FE "/backend-id", "0");
	put(W, FE "/state", "1");
}

static const char *const fe_nodes[] = {
    "state",		   "ring-ref", "event-channel",
    "feature-protocol-v2", "backend",  "backend-id",
};
static const char *const be_nodes[] = {
    "frontend", "frontend-id", "online", "uuid", "state", "handle",
};

/* A value a guest or toolstack might write to a node. */
static void put_value(struct world *W, struct in *in, const char *path)
{
	static char big[3001];
	char junk[24];
	uint8_t sel = u8(in), b;

	switch (sel % 12) {
	case 0:
		put_u32(W, path, W->refs[0]);
		break;
	case 1:
		b = u8(in);
		put_u32(W, path,
			b & 0x80 ? (b & 1 ? W->fref : W->tref)
				 : W->refs[b % NPAGES]);
		break;
	case 2:
		put_u32(W, path, u8(in) & 1 ? W->oport : W->port);
		break;
	case 3:
		put_u32(W, path, u8(in));
		break;
	case 4:
		put_u32(W, path, u32(in));
		break;
	case 5:
		put(W, path, "1");
		break;
	case 6:
		b = u8(in) % sizeof(junk);
		for (uint8_t i = 0; i < b; i++)
			junk[i] = (char)u8(in);
		xensim_write_raw(W->w, path, junk, b);
		break;
	case 7:
		put(W, path, "");
		break;
	case 8:
		put(W, path, "99999999999999999999");
		break;
	case 9:
		if (!big[0])
			memset(big, '1', sizeof(big) - 1);
		put(W, path, big);
		break;
	case 10:
		put(W, path, FE);
		break;
	case 11:
		put(W, path, UUID_A);
		break;
	}
}

static struct tpmif_shared_page *gshr(struct world *W)
{
	return (struct tpmif_shared_page *)W->view;
}

static void kick(struct world *W)
{
	xensim_evtchn_send(W->w, FDOM, W->port);
}

/* The request a correct frontend writes: data, header, SUBMIT. */
static void good_request(struct world *W, struct in *in)
{
	uint32_t n = u8(in) % (TPMBACK_MAX_EXTRA_PAGES + 1);
	uint32_t off = 8 + 4 * n, cap = NPAGES * PG - off;
	uint32_t len = ((uint32_t)u8(in) << 8 | u8(in)) % cap + 1;
	uint8_t fill = u8(in);

	memset(W->view + off, fill, len);
	memcpy(W->view + 8, &W->refs[1], 4 * n);
	gshr(W)->nr_extra_pages = (uint8_t)n;
	gshr(W)->locality = u8(in) % 5;
	gshr(W)->length = len;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	gshr(W)->state = TPMIF_STATE_SUBMIT;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	kick(W);
}

static uint32_t any_len(struct world *W, struct in *in)
{
	uint8_t sel = u8(in);
	uint32_t n = W->tb.extra_n;

	switch (sel % 8) {
	case 0:
		return 0;
	case 1:
		return PG - 8 - 4 * n; /* exactly the first page */
	case 2:
		return PG - 8 - 4 * n + 1;
	case 3:
		return NPAGES * PG - 8; /* more than any mapping holds */
	case 4:
		return UINT32_MAX;
	case 5:
		return W->cfg.max_cmd + (u8(in) & 1);
	default:
		return u32(in);
	}
}

static void page_header(struct world *W, struct in *in)
{
	uint8_t st = u8(in);

	gshr(W)->length = any_len(W, in);
	gshr(W)->locality = u8(in);
	gshr(W)->nr_extra_pages = u8(in);
	gshr(W)->pad = u8(in);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	/* Mostly the protocol's states, sometimes any byte. */
	gshr(W)->state = st & 0x80 ? st : st % 4;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static void page_ref(struct world *W, struct in *in)
{
	uint8_t i = u8(in) % TPMBACK_MAX_EXTRA_PAGES, b = u8(in);
	uint32_t v;

	switch (b % 6) {
	case 0:
		v = W->refs[0];
		break;
	case 1:
		v = W->fref;
		break;
	case 2:
		v = W->tref;
		break;
	case 3:
		v = u32(in);
		break;
	case 4:
		v = b >> 3; /* reserved refs */
		break;
	default:
		v = W->refs[1 + (b >> 3) % TPMBACK_MAX_EXTRA_PAGES];
		break;
	}
	memcpy(W->view + 8 + 4 * i, &v, 4);
}

static void page_bytes(struct world *W, struct in *in)
{
	uint32_t off = u32(in) % (NPAGES * PG);
	uint8_t n = u8(in) % 32;

	for (uint8_t i = 0; i < n && off + i < NPAGES * PG; i++)
		W->view[off + i] = u8(in);
}

/* A fresh ring page (the guest rebooted), or a fresh event channel. */
static void regrant(struct world *W, struct in *in)
{
	if (W->regrants >= MAX_REGRANTS)
		return;
	W->regrants++;
	if (u8(in) & 1) {
		uint32_t port;

		if (xensim_evtchn_alloc_unbound(W->w, FDOM, BDOM, &port) == 0) {
			xensim_evtchn_close(W->w, FDOM, W->port);
			W->port = port;
		}
	} else {
		uint32_t refs[NPAGES];
		uint8_t *view;

		if (xensim_grant(W->w, FDOM, BDOM, NPAGES, refs, &view) == 0) {
			memcpy(W->refs, refs, sizeof(refs));
			W->view = view;
		}
	}
}

static void do_action(struct world *W, struct in *in, uint8_t op)
{
	char path[128];
	uint8_t b;

	switch (op & 0x0f) {
	case 0:
		toolstack_add(W);
		break;
	case 1:
		b = u8(in) % (sizeof(fe_nodes) / sizeof(fe_nodes[0]));
		snprintf(path, sizeof(path), FE "/%s", fe_nodes[b]);
		put_value(W, in, path);
		break;
	case 2:
		b = u8(in) % (sizeof(fe_nodes) / sizeof(fe_nodes[0]));
		snprintf(path, sizeof(path), FE "/%s", fe_nodes[b]);
		xensim_rm(W->w, path);
		break;
	case 3:
		put_u32(W, FE "/state", u8(in) % 9);
		break;
	case 4:
		page_header(W, in);
		break;
	case 5:
		page_ref(W, in);
		break;
	case 6:
		page_bytes(W, in);
		break;
	case 7:
		kick(W);
		break;
	case 8:
		break; /* the turn below */
	case 9:
		good_request(W, in);
		break;
	case 10:
		b = u8(in) % (sizeof(be_nodes) / sizeof(be_nodes[0]));
		snprintf(path, sizeof(path), BE "/%s", be_nodes[b]);
		put_value(W, in, path);
		break;
	case 11:
		b = u8(in);
		if (b & 1)
			xensim_rm(W->w, FE);
		if (b & 2)
			xensim_rm(W->w, BE);
		break;
	case 12:
		b = u8(in);
		W->eng = (enum eng)(b % 4);
		W->cancel_aborts = b & 4;
		break;
	case 13:
		if (W->pending) {
			b = u8(in) % 3;
			W->pending = false;
			tpmback_complete(&W->tb, b == 0	  ? RSP
						 : b == 1 ? huge_rsp
							  : NULL,
					 b == 0 ? sizeof(RSP)
					 : b == 1 ? sizeof(huge_rsp)
						  : 0);
		}
		break;
	case 14:
		regrant(W, in);
		break;
	case 15:
		be_stop(W);
		be_start(W);
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
	/* The backend's warnings are what the input provokes: keep quiet. */
	log_init("fuzz_tpmback", LOG_LVL_ERR);
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	struct world *W = calloc(1, sizeof(*W));
	uint8_t c, storm;
	int actions = 0;

	CHECK(W);
	c = u8(&in);
	storm = u8(&in);
	tpmback_config_init(&W->cfg, BDOM, FDOM, 0,
			    c & 0x10 ? UUID_A_BIN : NULL);
	W->cfg.max_extra_pages = (c & 0x0f) % (TPMBACK_MAX_EXTRA_PAGES + 1);
	W->cfg.max_cmd = c >> 5 ? 12u << (c >> 5) : 0;
	W->cfg.storm_events = storm;
	/* Inputs step the loop without time passing: no InitWait hold
	 * (unit_tpmback covers it). */
	W->cfg.initwait_hold_ms = 0;
	CHECK(uv_loop_init(&W->loop) == 0);
	W->w = xensim_new();
	CHECK(W->w);
	CHECK(xensim_grant(W->w, FDOM, BDOM, NPAGES, W->refs, &W->view) == 0);
	{
		uint8_t *v;

		CHECK(xensim_grant(W->w, ODOM, BDOM, 1, &W->fref, &v) == 0);
		CHECK(xensim_grant(W->w, FDOM, 9, 1, &W->tref, &v) == 0);
	}
	CHECK(xensim_evtchn_alloc_unbound(W->w, FDOM, BDOM, &W->port) == 0);
	CHECK(xensim_evtchn_alloc_unbound(W->w, FDOM, 9, &W->oport) == 0);
	be_start(W);

	while (in.n && actions++ < MAX_ACTIONS)
		do_action(W, &in, u8(&in));
	turn(W);
	if (verbose)
		fprintf(stderr,
			"tpmback: state %s, connects %llu, commands %llu, "
			"responses %llu, aborted %llu, rejected %llu\n",
			tpmback_state_name(W->tb.state),
			(unsigned long long)W->tb.stats.connects,
			(unsigned long long)W->tb.stats.commands,
			(unsigned long long)W->tb.stats.responses,
			(unsigned long long)W->tb.stats.aborted,
			(unsigned long long)W->tb.stats.rejected);

	be_stop(W);
	CHECK(uv_loop_close(&W->loop) == 0);
	xensim_free(W->w);
	free(W);
	return 0;
}
