/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * core/manager's supervisor (supervisor.c): the restart delays after
 * crashes grow and cap, and start afresh after a stable run (a fake
 * clock decides how long an instance was up); with real processes, a
 * crashing instance is restarted with those delays and each event is
 * reported by callback; a stop waiter is called back once the instance
 * is reaped.
 */
#include "mgr_fixture.h"

/* ---- the policy ---- */

static void test_backoff_grows_and_caps(void **state)
{
	unsigned int d = 0;
	const unsigned int want[] = { 500, 1000, 2000, 4000, 8000, 16000,
				      30000, 30000, 30000 };

	(void)state;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		d = sup_backoff_next(d, 100);
		assert_int_equal(d, want[i]);
	}
}

static void test_backoff_resets_after_stable_run(void **state)
{
	(void)state;
	assert_int_equal(sup_backoff_next(16000, SUP_STABLE_MS - 1), 30000);
	assert_int_equal(sup_backoff_next(16000, SUP_STABLE_MS), 500);
	assert_int_equal(sup_backoff_next(30000, 3600 * 1000), 500);
	/* the first crash */
	assert_int_equal(sup_backoff_next(0, 0), 500);
}

/* ---- real processes ---- */

struct events {
	unsigned int started, exited, stopped;
	unsigned int delays[8];
	unsigned int ndelays;
	uint64_t advance_on_start;  /* fake ms an instance is "up" */
};

static struct events ev;

static void on_started(struct vtpm_entry *e, int fd)
{
	(void)e;
	close(fd);
	ev.started++;
	fake_now += ev.advance_on_start;
}

static void on_exited(struct vtpm_entry *e, int64_t status, int sig)
{
	(void)e;
	(void)status;
	(void)sig;
	ev.exited++;
}

static void on_backoff(struct vtpm_entry *e, unsigned int delay_ms)
{
	(void)e;
	if (ev.ndelays < 8)
		ev.delays[ev.ndelays++] = delay_ms;
}

static void on_stopped(struct vtpm_entry *e)
{
	(void)e;
	ev.stopped++;
}

static const struct sup_events test_events = {
	.started = on_started,
	.exited = on_exited,
	.backoff = on_backoff,
	.stopped = on_stopped,
};

static struct vtpm_entry *new_vtpm(struct fixture *f, uint8_t b)
{
	struct vtpm_entry *e;
	uint8_t uuid[16];

	memset(uuid, b, 16);
	assert_int_equal(mgr_entry_new(&f->m, uuid, 2, &e), 0);
	return e;
}

static bool reached(unsigned int have, unsigned int want)
{
	return have >= want;
}

static void wait_delays(struct fixture *f, unsigned int n)
{
	bool ok = false;

	for (int i = 0; i < 10000 && !ok; i++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		ok = reached(ev.ndelays, n);
		if (!ok)
			usleep(1000);
	}
	assert_true(ok);
}

static void test_crash_restarts_with_backoff(void **state)
{
	struct fixture *f = fixture_new(60);
	struct vtpm_entry *e;

	(void)state;
	memset(&ev, 0, sizeof(ev));
	f->m.sup = &test_events;
	fixture_exe(f, "exit 3");
	e = new_vtpm(f, 1);
	e->rec.autostart = true;
	assert_int_equal(mgr_vtpm_start(e), 0);
	assert_int_equal(e->child.state, CHILD_RUNNING);
	wait_delays(f, 2);     /* two crashes: 500, then 1000 */
	assert_int_equal(ev.delays[0], 500);
	assert_int_equal(ev.delays[1], 1000);
	assert_int_equal(e->child.restarts, 2);
	assert_int_equal(e->child.last_exit, 3);
	assert_int_equal(e->child.state, CHILD_BACKOFF);
	/* The next run is "stable" (a minute on the fake clock): the
	 * delay after it starts afresh. */
	ev.advance_on_start = SUP_STABLE_MS;
	wait_delays(f, 3);
	assert_int_equal(ev.delays[2], 500);
	assert_int_equal(ev.started, 3);
	assert_true(ev.exited >= 3);
	fixture_free(f);
}

static void set_flag(void *arg)
{
	*(bool *)arg = true;
}

static void test_stop_waiter_called_back(void **state)
{
	struct fixture *f = fixture_new(60);
	struct vtpm_entry *e;
	bool stopped = false;

	(void)state;
	memset(&ev, 0, sizeof(ev));
	f->m.sup = &test_events;
	fixture_exe(f, "exec sleep 30");
	e = new_vtpm(f, 2);
	assert_int_equal(mgr_vtpm_start(e), 0);
	assert_int_equal(e->child.state, CHILD_RUNNING);
	assert_false(sup_stopped(e));
	mgr_vtpm_stop(e, set_flag, &stopped);
	assert_false(stopped);
	assert_true(sup_has_waiters(e));
	assert_int_equal(e->child.state, CHILD_STOPPING);
	run_until(f, &stopped);
	assert_true(sup_stopped(e));
	assert_false(sup_has_waiters(e));
	assert_int_equal(ev.stopped, 1);
	assert_int_equal(ev.ndelays, 0);        /* no restart */
	assert_false(e->rec.autostart);
	/* Already stopped: called back at once. */
	stopped = false;
	mgr_vtpm_stop(e, set_flag, &stopped);
	assert_true(stopped);
	fixture_free(f);
}

static void test_stop_in_backoff(void **state)
{
	struct fixture *f = fixture_new(60);
	struct vtpm_entry *e;
	bool stopped = false;

	(void)state;
	memset(&ev, 0, sizeof(ev));
	f->m.sup = &test_events;
	fixture_exe(f, "exit 1");
	e = new_vtpm(f, 3);
	assert_int_equal(mgr_vtpm_start(e), 0);
	wait_delays(f, 1);
	run_for(f, 20);                         /* reaped */
	assert_int_equal(e->child.state, CHILD_BACKOFF);
	mgr_vtpm_stop(e, set_flag, &stopped);
	assert_true(stopped);
	assert_int_equal(e->child.state, CHILD_STOPPED);
	run_for(f, 700);                        /* past the restart delay */
	assert_int_equal(ev.started, 1);        /* it did not come back */
	fixture_free(f);
}

/* An instance binary that cannot be run: every start fails in uv_spawn,
 * and each failed handle is closed before the next start reuses it (two
 * insertions of one handle corrupt the loop's handle list: uv_walk and
 * uv_loop_close at fixture_free would loop or crash). */
static void count_processes(uv_handle_t *h, void *arg)
{
	if (h->type == UV_PROCESS)
		(*(int *)arg)++;
}

static void test_failed_spawns_close_their_handle(void **state)
{
	struct fixture *f = fixture_new(60);
	struct vtpm_entry *e;
	int fails = 0;

	(void)state;
	memset(&ev, 0, sizeof(ev));
	f->m.sup = &test_events;
	snprintf(f->m.exe, sizeof(f->m.exe), "%s/no-such-instance", f->dir);
	e = new_vtpm(f, 4);
	for (int i = 0; i < 5; i++) {
		int rc = sup_start(e);

		if (rc < 0)
			fails++;
		run_for(f, 20);
		assert_false(e->child.proc_open);
		assert_true(sup_stopped(e));
	}
	assert_int_equal(fails, 5);
	assert_int_equal(ev.started, 0);
	/* No process handle left on the loop (a corrupted list loops
	 * forever here: the alarm ends the test). */
	fails = 0;
	alarm(10);
	uv_walk(&f->loop, count_processes, &fails);
	alarm(0);
	assert_int_equal(fails, 0);
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_grows_and_caps),
		cmocka_unit_test(test_backoff_resets_after_stable_run),
		cmocka_unit_test(test_crash_restarts_with_backoff),
		cmocka_unit_test(test_stop_waiter_called_back),
		cmocka_unit_test(test_stop_in_backoff),
		cmocka_unit_test(test_failed_spawns_close_their_handle),
	};

	log_init("test_mgr_supervisor", LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
