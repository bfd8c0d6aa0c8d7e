/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * frontprobe: the real tpmfront and the manager link's ring variant on
 * the real Xen libraries (xen_real.c: xengntshr, unbound event channels,
 * our own domid), run by tests/xen-lab's dom0 (--dom0-check).  dom0 plays
 * both domains of one vtpm device (backend dom0, frontend dom0, devid
 * DEVID): it grants pages to itself, binds its own unbound port, and a
 * tpmback on the same loop answers.  Then mgrlink ("xen-ring:backend=0,
 * devid=DEVID") does LOADHASHKEY and SAVEHASHKEY against a tpmback that
 * speaks the manager protocol on another thread.
 *
 * Prints "frontprobe: ok" and exits 0, or names what failed and exits 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "lib/log.h"
#include "instance/mgrlink.h"
#include "proto/mgrproto.h"
#include "tpmif/tpmback.h"
#include "tpmif/tpmfront.h"
#include "xenbus/xenif.h"
#include "xen-ring/mgrlink_xen.h"

#define DEVID 7u
#define BE "/local/domain/0/backend/vtpm/0/7"
#define FE "/local/domain/0/device/vtpm/7"
#define UUID "6a0f2c1e-7d3b-4e59-8a21-3c4d5e6f7081"

static int failures;

#define CHECK(cond, ...)                                                 \
	do {                                                             \
		if (cond) {                                              \
			printf("frontprobe: ok: " __VA_ARGS__);          \
		} else {                                                 \
			printf("frontprobe: FAIL: " __VA_ARGS__);        \
			failures++;                                      \
		}                                                        \
		printf("\n");                                            \
		fflush(stdout);                                          \
	} while (0)

static struct xenif *bx, *fx;
static uv_loop_t loop;

static int xs_put(const char *path, const char *val)
{
	return bx->ops->xs_write(bx, path, val);
}

/* What libxl writes for a vtpm device (here dom0 on both ends). */
static int toolstack_add(void)
{
	int rc = 0;

	xs_put(BE "/frontend", FE);
	xs_put(BE "/frontend-id", "0");
	xs_put(BE "/online", "1");
	xs_put(BE "/handle", "7");
	xs_put(BE "/uuid", UUID);
	xs_put(BE "/state", "1");
	xs_put(FE "/backend", BE);
	xs_put(FE "/backend-id", "0");
	xs_put(FE "/handle", "7");
	rc = xs_put(FE "/state", "1");
	return rc;
}

static void toolstack_remove(void)
{
	bx->ops->xs_rm(bx, FE);
	bx->ops->xs_rm(bx, BE);
}

/* Directories this probe makes, removed at the end: the lab starts a
 * backend for every domain with a backend/vtpm/<domid> node. */
#define BE_PARENT "/local/domain/0/backend/vtpm/0"
#define FE_PARENT "/local/domain/0/device/vtpm"

static bool absent(const char *path)
{
	char *v = NULL;
	int rc = bx->ops->xs_read(bx, path, &v, NULL);

	free(v);
	return rc == -ENOENT;
}

/* ---- phase 1: tpmfront and an echoing tpmback on one loop ---- */

static void echo_submit(struct tpmback *tb, const uint8_t *cmd, uint32_t len,
			unsigned int loc)
{
	(void)loc;
	tpmback_complete(tb, cmd, len);
}

static const struct tpmback_ops echo_ops = {.submit = echo_submit};

struct res {
	int calls, status;
	uint32_t len;
	uint8_t data[8192];
};

static void on_rsp(struct tpmfront *tf, int status, const uint8_t *rsp,
		   uint32_t len, void *arg)
{
	struct res *r = arg;

	(void)tf;
	r->calls++;
	r->status = status;
	r->len = len;
	if (status == 0 && len <= sizeof(r->data))
		memcpy(r->data, rsp, len);
}

static bool run_until(bool (*cond)(void *), void *arg, unsigned int ms)
{
	uint64_t t0 = uv_hrtime();

	while (!cond(arg)) {
		if (uv_hrtime() - t0 > (uint64_t)ms * 1000000u)
			return false;
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	return true;
}

struct pair {
	struct tpmfront *tf;
	struct tpmback *tb;
};

static bool both_connected(void *arg)
{
	struct pair *p = arg;

	return tpmfront_connected(p->tf) && p->tb->state == TPMBACK_CONNECTED;
}

static bool got_answer(void *arg)
{
	return ((struct res *)arg)->calls > 0;
}

static bool flag_set(void *arg)
{
	return *(bool *)arg;
}

static bool be_initwait(void *arg)
{
	return ((struct tpmback *)arg)->state == TPMBACK_INIT_WAIT;
}

static void tf_done(struct tpmfront *tf)
{
	*(bool *)tf->data = true;
}

static void tb_done(struct tpmback *tb)
{
	*(bool *)tb->data = true;
}

static void phase_ring(void)
{
	struct tpmback_config bc = {.backend_domid = 0,
				    .frontend_domid = 0,
				    .devid = DEVID,
				    .max_extra_pages = 2};
	struct tpmfront_config fc = {.devid = DEVID,
				     .have_backend = true,
				     .backend_domid = 0,
				     .max_extra_pages = 1};
	static const uint32_t sizes[] = {12, 1000, 4088, 4096, 8180};
	static uint8_t cmd[8192];
	static struct tpmback tb;
	static struct tpmfront tf;
	static struct res r;
	struct pair p = {&tf, &tb};
	bool fe_stopped = false, be_stopped = false;

	CHECK(tpmback_init(&tb, &loop, bx, &bc, &echo_ops, &be_stopped) == 0 &&
		  tpmback_start(&tb) == 0,
	      "tpmback started");
	CHECK(tpmfront_init(&tf, &loop, fx, &fc, NULL, &fe_stopped) == 0 &&
		  tpmfront_start(&tf) == 0,
	      "tpmfront started (self domid %u)", tf.self);
	CHECK(run_until(both_connected, &p, 20000),
	      "connected: ring-ref %u + %u extra, port %u, capacity %u",
	      tf.refs[0], tf.n_extra, tf.port, tpmfront_capacity(&tf));
	if (!both_connected(&p))
		return;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (uint32_t j = 0; j < sizes[i]; j++)
			cmd[j] = (uint8_t)(j * 7 + i);
		memset(&r, 0, sizeof(r));
		if (tpmfront_submit(&tf, cmd, sizes[i], 0, 5000, on_rsp, &r)) {
			CHECK(0, "submit %u bytes", sizes[i]);
			continue;
		}
		run_until(got_answer, &r, 10000);
		CHECK(r.calls == 1 && r.status == 0 && r.len == sizes[i] &&
			  memcmp(r.data, cmd, sizes[i]) == 0,
		      "echo of %u bytes (status %d, len %u)", sizes[i],
		      r.status, r.len);
	}
	tpmfront_stop(&tf, tf_done);
	run_until(flag_set, &fe_stopped, 5000);
	CHECK(fe_stopped, "tpmfront stopped");
	run_until(be_initwait, &tb, 5000);
	CHECK(tb.state == TPMBACK_INIT_WAIT,
	      "the backend went back to InitWait (%s)",
	      tpmback_state_name(tb.state));
	tpmback_stop(&tb, tb_done);
	run_until(flag_set, &be_stopped, 5000);
	CHECK(be_stopped, "tpmback stopped");
}

/* ---- phase 2: mgrlink over the ring, the manager on a thread ---- */

static const uint8_t KEY[MGR_KEY_LEN] = {0x11, 0x22, 0x33};

static void mgr_submit(struct tpmback *tb, const uint8_t *cmd, uint32_t len,
		       unsigned int loc)
{
	uint8_t out[MGR_MAX_FRAME];
	struct mgr_req req;
	struct mgr_rsp rsp;
	size_t olen = 0;

	(void)loc;
	memset(&rsp, 0, sizeof(rsp));
	if (mgrproto_decode_req(cmd, len, &req)) {
		tpmback_complete(tb, NULL, 0);
		return;
	}
	rsp.type = req.type;
	rsp.status = MGR_SUCCESS;
	if (req.type == MGR_MSG_LOADHASHKEY) {
		rsp.u.load.generation = 3;
		memcpy(rsp.u.load.state_key, KEY, sizeof(KEY));
	} else if (req.type != MGR_MSG_SAVEHASHKEY) {
		rsp.status = MGR_FORBIDDEN;
	}
	mgrproto_encode_rsp(&rsp, out, &olen);
	tpmback_complete(tb, out, (uint32_t)olen);
}

static const struct tpmback_ops mgr_ops = {.submit = mgr_submit};
static struct tpmback mtb;
static uv_async_t mstop;
static bool mstopped;

static void mgr_stopped(struct tpmback *tb)
{
	(void)tb;
	mstopped = true;
}

static void on_mstop(uv_async_t *a)
{
	tpmback_stop(&mtb, mgr_stopped);
	uv_close((uv_handle_t *)a, NULL);
}

static void mgr_thread(void *arg)
{
	(void)arg;
	uv_run(&loop, UV_RUN_DEFAULT);
}

static void phase_mgrlink(void)
{
	struct tpmback_config bc = {.backend_domid = 0,
				    .frontend_domid = 0,
				    .devid = DEVID,
				    .max_extra_pages = 8};
	struct mgr_req req = {.type = MGR_MSG_LOADHASHKEY};
	struct mgr_rsp rsp;
	struct mgrlink l;
	uv_thread_t thr;
	char err[200];
	int rc;

	if (tpmback_init(&mtb, &loop, bx, &bc, &mgr_ops, NULL) ||
	    tpmback_start(&mtb)) {
		CHECK(0, "manager tpmback started");
		return;
	}
	uv_async_init(&loop, &mstop, on_mstop);
	uv_thread_create(&thr, mgr_thread, NULL);
	/* As vtpm-service's main() does: the ring variant is a transport's. */
	rc = mgrlink_open("xen-ring:backend=0,devid=7", mgrlink_xen_dial, &l,
			  err, sizeof(err));
	CHECK(rc == 0, "mgrlink_open xen-ring (%s)", rc ? err : "");
	if (rc == 0) {
		l.timeout_ms = 20000;
		rc = mgrlink_call(&l, &req, &rsp, err, sizeof(err));
		CHECK(rc == 0 && rsp.status == MGR_SUCCESS &&
			  rsp.u.load.generation == 3 &&
			  memcmp(rsp.u.load.state_key, KEY, sizeof(KEY)) == 0,
		      "LOADHASHKEY over the ring (%s)", rc ? err : "");
		mgrproto_rsp_wipe(&rsp);
		req.type = MGR_MSG_SAVEHASHKEY;
		req.u.save.generation = 4;
		rc = mgrlink_call(&l, &req, &rsp, err, sizeof(err));
		CHECK(rc == 0 && rsp.status == MGR_SUCCESS,
		      "SAVEHASHKEY over the ring (%s)", rc ? err : "");
		mgrlink_close(&l);
	}
	uv_async_send(&mstop);
	uv_thread_join(&thr);
	CHECK(mstopped, "manager tpmback stopped");
}

int main(void)
{
	bool made_be, made_fe;
	int rc;

	log_init("frontprobe", LOG_LVL_INFO);
	if ((rc = xen_real_open(&bx)) || (rc = xen_real_open(&fx))) {
		printf("frontprobe: FAIL: xen_real_open: %s\n", strerror(-rc));
		return 1;
	}
	made_be = absent(BE_PARENT);
	made_fe = absent(FE_PARENT);
	CHECK(toolstack_add() == 0, "device nodes written");
	uv_loop_init(&loop);
	phase_ring();
	/* A fresh device for the link: the frontend said Closed. */
	toolstack_remove();
	toolstack_add();
	phase_mgrlink();
	toolstack_remove();
	if (made_be)
		bx->ops->xs_rm(bx, BE_PARENT);
	if (made_fe)
		bx->ops->xs_rm(bx, FE_PARENT);
	CHECK(absent(BE_PARENT) || !made_be, "%s removed", BE_PARENT);
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_loop_close(&loop);
	xenif_close(fx);
	xenif_close(bx);
	printf("frontprobe: %s (%d failures)\n", failures ? "FAIL" : "ok",
	       failures);
	return failures ? 1 : 0;
}
