/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * devwatch (transports/xen-ring) against the simulated xenstore: the
 * manager's view of which vtpm devices the toolstack has given it.  The
 * test plays xl: it writes and removes backend/vtpm/<F>/<D> directories
 * the way libxl does, including on a guest reboot (old domain's device
 * removed, a new domid's added), and hostile or junk names and values.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/config.h"
#include "lib/hex.h"
#include "tpmif/devwatch.h"
#include "lib/log.h"
#include "xensim.h"

static const char UUID_A[] = "4a1e0b8e-2f33-4c6a-9d2e-0123456789ab";
static const char UUID_B[] = "00000000-1111-2222-3333-444444444444";

#define MAXEV 2048

struct ev {
	char kind; /* '+' added, '-' removed */
	uint32_t fe, dev;
	char uuid[37];
};

struct world {
	uv_loop_t loop;
	struct xensim *sim;
	struct xenif *x;
	struct devwatch dw;
	struct ev ev[MAXEV];
	unsigned int nev;
	bool stopped;
};

static void record(struct devwatch *w, char kind, const struct devwatch_dev *d)
{
	struct world *W = w->data;

	assert_true(W->nev < MAXEV);
	W->ev[W->nev].kind = kind;
	W->ev[W->nev].fe = d->fe_domid;
	W->ev[W->nev].dev = d->devid;
	uuid_format(d->uuid, W->ev[W->nev].uuid);
	W->nev++;
}

static void added(struct devwatch *w, const struct devwatch_dev *d)
{
	record(w, '+', d);
}

static void removed(struct devwatch *w, const struct devwatch_dev *d)
{
	record(w, '-', d);
}

static const struct devwatch_ops ops = { .added = added, .removed = removed };

/* What libxl writes for one device, in the order it writes it. */
static void xl_add(struct world *W, uint32_t fe, uint32_t dev, const char *uuid)
{
	char p[160], v[80];

	snprintf(p, sizeof(p), "/local/domain/0/backend/vtpm/%u/%u/frontend", fe, dev);
	snprintf(v, sizeof(v), "/local/domain/%u/device/vtpm/%u", fe, dev);
	xensim_write(W->sim, p, v);
	snprintf(p, sizeof(p), "/local/domain/0/backend/vtpm/%u/%u/frontend-id", fe, dev);
	snprintf(v, sizeof(v), "%u", fe);
	xensim_write(W->sim, p, v);
	snprintf(p, sizeof(p), "/local/domain/0/backend/vtpm/%u/%u/state", fe, dev);
	xensim_write(W->sim, p, "1");
	snprintf(p, sizeof(p), "/local/domain/0/backend/vtpm/%u/%u/uuid", fe, dev);
	xensim_write(W->sim, p, uuid);
}

static void xl_remove(struct world *W, uint32_t fe)
{
	char p[96];

	snprintf(p, sizeof(p), "/local/domain/0/backend/vtpm/%u", fe);
	xensim_rm(W->sim, p);
}

/* Runs the loop until the settle timer has fired and nothing is left. */
static void settle(struct world *W)
{
	struct timespec ts = { 0, (DEVWATCH_SETTLE_MS + 10) * 1000000L };

	uv_run(&W->loop, UV_RUN_NOWAIT);
	nanosleep(&ts, NULL);
	uv_run(&W->loop, UV_RUN_NOWAIT);
	uv_run(&W->loop, UV_RUN_NOWAIT);
}

static int setup(void **state)
{
	struct world *W = calloc(1, sizeof(*W));

	assert_non_null(W);
	assert_int_equal(uv_loop_init(&W->loop), 0);
	W->sim = xensim_new();
	W->x = xensim_open(W->sim, 0);
	*state = W;
	return 0;
}

static void on_stopped(struct devwatch *w)
{
	((struct world *)w->data)->stopped = true;
}

static int teardown(void **state)
{
	struct world *W = *state;

	devwatch_stop(&W->dw, on_stopped);
	uv_run(&W->loop, UV_RUN_NOWAIT);
	assert_true(W->stopped);
	xenif_close(W->x);
	xensim_free(W->sim);
	assert_int_equal(uv_loop_close(&W->loop), 0);
	free(W);
	return 0;
}

static void start(struct world *W)
{
	assert_int_equal(devwatch_start(&W->dw, &W->loop, W->x, 0, &ops, W), 0);
}

static void expect(struct world *W, unsigned int i, char kind, uint32_t fe,
		   uint32_t dev, const char *uuid)
{
	assert_true(i < W->nev);
	assert_int_equal(W->ev[i].kind, kind);
	assert_int_equal(W->ev[i].fe, fe);
	assert_int_equal(W->ev[i].dev, dev);
	assert_string_equal(W->ev[i].uuid, uuid);
}

static void nothing_there_nothing_reported(void **state)
{
	struct world *W = *state;

	start(W);
	settle(W);
	assert_int_equal(W->nev, 0);
}

static void devices_present_at_start_are_reported_at_once(void **state)
{
	struct world *W = *state;

	xl_add(W, 3, 0, UUID_A);
	xl_add(W, 7, 1, UUID_B);
	start(W); /* no loop turn needed: the first scan is synchronous */
	assert_int_equal(W->nev, 2);
	settle(W);
	assert_int_equal(W->nev, 2); /* and not twice */
}

static void add_then_remove(void **state)
{
	struct world *W = *state;

	start(W);
	xl_add(W, 2, 0, UUID_A);
	settle(W);
	assert_int_equal(W->nev, 1);
	expect(W, 0, '+', 2, 0, UUID_A);
	/* The backend's own writes (state, ready) change nothing. */
	xensim_write(W->sim, "/local/domain/0/backend/vtpm/2/0/state", "4");
	xensim_write(W->sim, "/local/domain/0/backend/vtpm/2/0/ready", "1");
	settle(W);
	assert_int_equal(W->nev, 1);
	xl_remove(W, 2);
	settle(W);
	assert_int_equal(W->nev, 2);
	expect(W, 1, '-', 2, 0, UUID_A);
}

static void reboot_is_removal_then_addition_with_a_new_domid(void **state)
{
	struct world *W = *state;

	start(W);
	xl_add(W, 2, 0, UUID_A);
	settle(W);
	/* xl destroys domain 2 and builds domain 3 within one settle. */
	xl_remove(W, 2);
	xl_add(W, 3, 0, UUID_A);
	settle(W);
	assert_int_equal(W->nev, 3);
	expect(W, 1, '-', 2, 0, UUID_A);
	expect(W, 2, '+', 3, 0, UUID_A);
}

static void device_without_uuid_waits_for_it(void **state)
{
	struct world *W = *state;

	start(W);
	xensim_write(W->sim, "/local/domain/0/backend/vtpm/4/0/state", "1");
	settle(W);
	assert_int_equal(W->nev, 0);
	xensim_write(W->sim, "/local/domain/0/backend/vtpm/4/0/uuid", UUID_B);
	settle(W);
	assert_int_equal(W->nev, 1);
	expect(W, 0, '+', 4, 0, UUID_B);
}

static void uuid_change_is_removal_and_addition(void **state)
{
	struct world *W = *state;

	start(W);
	xl_add(W, 5, 0, UUID_A);
	settle(W);
	xensim_write(W->sim, "/local/domain/0/backend/vtpm/5/0/uuid", UUID_B);
	settle(W);
	assert_int_equal(W->nev, 3);
	expect(W, 1, '-', 5, 0, UUID_A);
	expect(W, 2, '+', 5, 0, UUID_B);
}

static void junk_names_and_values_are_ignored(void **state)
{
	struct world *W = *state;
	static const char *const bad_uuids[] = {
		"", "x", "4a1e0b8e-2f33-4c6a-9d2e-0123456789a",
		"4a1e0b8e-2f33-4c6a-9d2e-0123456789abc",
		"4a1e0b8e+2f33-4c6a-9d2e-0123456789ab",
		"4a1e0b8e-2f33-4c6a-9d2e-0123456789ag",
	};
	char p[128];

	start(W);
	/* Domain and device names that are not numbers, or out of range. */
	xl_add(W, 1, 0, UUID_A); /* the one good device */
	xensim_write(W->sim, "/local/domain/0/backend/vtpm/abc/0/uuid", UUID_B);
	xensim_write(W->sim, "/local/domain/0/backend/vtpm/-1/0/uuid", UUID_B);
	xensim_write(W->sim, "/local/domain/0/backend/vtpm/32752/0/uuid", UUID_B);
	xensim_write(W->sim, "/local/domain/0/backend/vtpm/99999999999/0/uuid", UUID_B);
	xensim_write(W->sim, "/local/domain/0/backend/vtpm/02/0/uuid", UUID_B);
	xensim_write(W->sim, "/local/domain/0/backend/vtpm/9/x/uuid", UUID_B);
	xensim_write(W->sim, "/local/domain/0/backend/vtpm/9/65536/uuid", UUID_B);
	for (size_t i = 0; i < sizeof(bad_uuids) / sizeof(bad_uuids[0]); i++) {
		snprintf(p, sizeof(p), "/local/domain/0/backend/vtpm/%zu/0/uuid",
			 10 + i);
		xensim_write(W->sim, p, bad_uuids[i]);
	}
	/* A NUL inside the value. */
	xensim_write_raw(W->sim, "/local/domain/0/backend/vtpm/20/0/uuid",
			 "4a1e0b8e-2f33-4c6a-9d2e-0123456789ab\0x", 38);
	settle(W);
	assert_int_equal(W->nev, 1);
	expect(W, 0, '+', 1, 0, UUID_A);
}

static void a_burst_of_writes_costs_one_rescan(void **state)
{
	struct world *W = *state;
	uint64_t before;

	start(W);
	before = W->dw.rescans;
	for (int i = 0; i < 5000; i++)
		xensim_write(W->sim, "/local/domain/0/backend/vtpm/2/0/state",
			     i & 1 ? "1" : "2");
	settle(W);
	assert_true(W->dw.rescans - before <= 2);
	assert_int_equal(W->nev, 0); /* no uuid, no device */
}

static void device_count_is_bounded(void **state)
{
	struct world *W = *state;
	char p[96];

	for (unsigned int i = 0; i < DEVWATCH_MAX_DEVICES + 10; i++) {
		snprintf(p, sizeof(p), "/local/domain/0/backend/vtpm/%u/0/uuid",
			 i + 1);
		xensim_write(W->sim, p, UUID_A);
	}
	start(W);
	assert_int_equal(W->nev, DEVWATCH_MAX_DEVICES);
	assert_int_equal(W->dw.ndevs, DEVWATCH_MAX_DEVICES);
}

static void other_backend_domains_are_not_ours(void **state)
{
	struct world *W = *state;

	start(W);
	xensim_write(W->sim, "/local/domain/5/backend/vtpm/2/0/uuid", UUID_A);
	settle(W);
	assert_int_equal(W->nev, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(nothing_there_nothing_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(devices_present_at_start_are_reported_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(add_then_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(reboot_is_removal_then_addition_with_a_new_domid, setup, teardown),
		cmocka_unit_test_setup_teardown(device_without_uuid_waits_for_it, setup, teardown),
		cmocka_unit_test_setup_teardown(uuid_change_is_removal_and_addition, setup, teardown),
		cmocka_unit_test_setup_teardown(junk_names_and_values_are_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(a_burst_of_writes_costs_one_rescan, setup, teardown),
		cmocka_unit_test_setup_teardown(device_count_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(other_backend_domains_are_not_ours, setup, teardown),
	};

	log_init("test_devwatch", LOG_LVL_WARNING);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
