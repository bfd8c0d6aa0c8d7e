/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instance's job queue (core/instance/jobq.c) against a fake engine:
 * order, withdraw, cancel, drain at shutdown, durable before done, and a
 * failed persist.  A real libuv loop and thread pool run it; the fake
 * engine records every call in one log, which each test compares with
 * what must have happened, in order.  Nothing here depends on time.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "instance/jobq.h"

/* ---- the fake engine ---- */

struct fake {
	uv_loop_t loop;
	struct worker worker;
	struct jobq q;

	pthread_mutex_t mu; /* the log and the flags: two threads use them */
	pthread_cond_t cond;
	char log[1024];
	bool dirty;
	int persisted;       /* successful persists of a dirty state */
	int persist_err;     /* what persist returns when dirty */
	bool started;        /* a blocking job entered run() */
	bool cancelled;      /* ops->cancel was called */
	bool released;       /* the test let a blocking job end */
	struct tjob *jobs;   /* 1..4 */
};

struct tjob {
	struct vtpm_job job;
	struct fake *f;
	int id;
	bool offloop;        /* runs on the worker */
	bool dirties;        /* changes persistent state */
	bool blocks;         /* runs until cancelled or released */
	bool was_dirty_at_done;
	int done_count;
};

static const uint8_t rsp_ok[] = { 0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0 };
static const uint8_t rsp_cancelled[] = { 0x80, 0x01, 0, 0, 0, 10, 0, 0, 9, 9 };
static const uint8_t rsp_failed[] = { 0x80, 0x01, 0, 0, 0, 10, 0, 0, 1, 1 };

static void __attribute__((format(printf, 2, 3)))
logf_(struct fake *f, const char *fmt, ...)
{
	size_t n;
	va_list ap;

	pthread_mutex_lock(&f->mu);
	n = strlen(f->log);
	if (n)
		f->log[n++] = ' ';
	va_start(ap, fmt);
	vsnprintf(f->log + n, sizeof(f->log) - n, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&f->mu);
}

static bool f_offloop(void *ctx, const struct vtpm_job *job)
{
	(void)ctx;
	return ((const struct tjob *)job->data)->offloop;
}

static void f_run(void *ctx, struct vtpm_job *job)
{
	struct fake *f = ctx;
	struct tjob *t = job->data;

	logf_(f, "run%d", t->id);
	pthread_mutex_lock(&f->mu);
	if (t->dirties)
		f->dirty = true;
	if (t->blocks) {
		struct timespec limit;

		/* A safety net only: a queue that never cancels fails the
		 * test in 10 s instead of hanging it. */
		clock_gettime(CLOCK_REALTIME, &limit);
		limit.tv_sec += 10;
		f->started = true;
		pthread_cond_broadcast(&f->cond);
		while (!f->cancelled && !f->released)
			if (pthread_cond_timedwait(&f->cond, &f->mu, &limit)) {
				f->released = true;
				snprintf(f->log + strlen(f->log),
					 sizeof(f->log) - strlen(f->log),
					 " (never cancelled)");
			}
	}
	pthread_mutex_unlock(&f->mu);
	if (job->kind == VTPM_JOB_CMD) {
		job->rsp = t->blocks && f->cancelled ? rsp_cancelled : rsp_ok;
		job->rsp_len = sizeof(rsp_ok);
	}
}

static bool f_dirty(void *ctx)
{
	struct fake *f = ctx;
	bool d;

	pthread_mutex_lock(&f->mu);
	d = f->dirty;
	pthread_mutex_unlock(&f->mu);
	return d;
}

static int f_persist(void *ctx)
{
	struct fake *f = ctx;
	int rc = 0;

	pthread_mutex_lock(&f->mu);
	if (f->dirty) {
		rc = f->persist_err;
		if (!rc) {
			f->dirty = false;
			f->persisted++;
		}
	}
	pthread_mutex_unlock(&f->mu);
	if (rc)
		logf_(f, "persist-failed");
	else
		logf_(f, "persist");
	return rc;
}

static void f_cancel(void *ctx)
{
	struct fake *f = ctx;

	logf_(f, "cancel");
	pthread_mutex_lock(&f->mu);
	f->cancelled = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->mu);
}

static void f_persist_failed(void *ctx, struct vtpm_job *job, int rc)
{
	struct tjob *t = job->data;

	assert_int_equal(job->status, -EIO);
	assert_int_equal(rc, -ENOSPC);
	logf_(ctx, "lost%d", t->id);
	job->rsp = rsp_failed;
	job->rsp_len = sizeof(rsp_failed);
}

static void f_fatal(void *ctx, int rc)
{
	assert_int_equal(rc, -ENOSPC);
	logf_(ctx, "fatal");
}

static void f_idle(void *ctx)
{
	logf_(ctx, "idle");
}

static const struct jobq_ops fake_ops = {
	.offloop = f_offloop,
	.run = f_run,
	.dirty = f_dirty,
	.persist = f_persist,
	.cancel = f_cancel,
	.persist_failed = f_persist_failed,
	.fatal = f_fatal,
	.idle = f_idle,
};

static void t_done(struct vtpm_job *job)
{
	struct tjob *t = job->data;

	t->done_count++;
	t->was_dirty_at_done = f_dirty(t->f);
	if (job->status == 0 && job->kind == VTPM_JOB_CMD)
		assert_non_null(job->rsp);
	logf_(t->f, "done%d:%d", t->id, job->status);
}

static void t_call(struct vtpm *v, struct vtpm_job *job)
{
	(void)v;
	(void)job;
	fail_msg("the queue runs calls through ops->run, never directly");
}

/* Waits (test thread) until a blocking job runs on the pool. */
static void wait_started(struct fake *f)
{
	pthread_mutex_lock(&f->mu);
	while (!f->started)
		pthread_cond_wait(&f->cond, &f->mu);
	pthread_mutex_unlock(&f->mu);
}

/* Lets a blocking job end without a cancel. */
static void release(struct fake *f)
{
	pthread_mutex_lock(&f->mu);
	f->released = true;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->mu);
}

/* Job number id (1..4), kept in the fixture: a test that fails midway
 * leaves its jobs valid for the teardown's loop run. */
static struct tjob *tjob(struct fake *f, int id, enum vtpm_job_kind kind)
{
	struct tjob *t = &f->jobs[id];

	memset(t, 0, sizeof(*t));
	t->f = f;
	t->id = id;
	t->job.kind = kind;
	t->job.locality = -1;
	t->job.call = kind == VTPM_JOB_CALL ? t_call : NULL;
	t->job.done = t_done;
	t->job.data = t;
	return t;
}

static int setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));

	if (!f || uv_loop_init(&f->loop))
		return -1;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cond, NULL);
	f->jobs = calloc(5, sizeof(*f->jobs));
	if (!f->jobs)
		return -1;
	if (worker_init(&f->worker, &f->loop, 20))
		return -1;
	jobq_init(&f->q, &f->worker, &fake_ops, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fake *f = *state;

	/* Whatever a failed test left behind ends. */
	release(f);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_false(jobq_busy(&f->q));
	worker_stop(&f->worker);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->mu);
	free(f->jobs);
	free(f);
	return 0;
}

/* ---- order ---- */

static void jobs_run_one_at_a_time_in_submission_order(void **state)
{
	struct fake *f = *state;

	struct tjob *a = tjob(f, 1, VTPM_JOB_CMD);
	a->offloop = true;
	a->blocks = true;
	struct tjob *b = tjob(f, 2, VTPM_JOB_CMD);   /* quick: on the loop thread */
	struct tjob *c = tjob(f, 3, VTPM_JOB_CALL);
	c->offloop = true;
	struct tjob *d = tjob(f, 4, VTPM_JOB_CALL);
	jobq_submit(&f->q, &a->job);
	jobq_submit(&f->q, &b->job);
	jobq_submit(&f->q, &c->job);
	jobq_submit(&f->q, &d->job);
	/* a runs on the pool; the quick b waits behind it all the same. */
	wait_started(f);
	assert_true(jobq_busy(&f->q));
	assert_int_equal(b->done_count, 0);
	assert_string_equal(f->log, "run1");
	release(f);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_string_equal(f->log, "run1 persist done1:0 run2 done2:0 "
				    "run3 persist done3:0 run4 done4:0");
	assert_int_equal(a->done_count + b->done_count + c->done_count +
				 d->done_count, 4);
	assert_false(jobq_busy(&f->q));
}

static void a_quick_job_on_an_idle_queue_is_done_inside_submit(void **state)
{
	struct fake *f = *state;

	struct tjob *a = tjob(f, 1, VTPM_JOB_CMD);
	jobq_submit(&f->q, &a->job);
	assert_int_equal(a->done_count, 1);
	assert_string_equal(f->log, "run1 done1:0");
	assert_false(jobq_busy(&f->q));
	/* The same job again, as a connection reuses its job. */
	jobq_submit(&f->q, &a->job);
	assert_int_equal(a->done_count, 2);
}

/* ---- withdraw ---- */

static void a_queued_job_is_withdrawn_and_never_runs(void **state)
{
	struct fake *f = *state;

	struct tjob *a = tjob(f, 1, VTPM_JOB_CMD);
	a->offloop = true;
	struct tjob *b = tjob(f, 2, VTPM_JOB_CMD);
	struct tjob *c = tjob(f, 3, VTPM_JOB_CMD);
	jobq_submit(&f->q, &a->job);
	jobq_submit(&f->q, &b->job);
	jobq_submit(&f->q, &c->job);
	assert_true(jobq_withdraw(&f->q, &b->job));
	/* Withdrawn twice: nothing more to remove. */
	assert_true(jobq_withdraw(&f->q, &b->job));
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_string_equal(f->log, "run1 persist done1:0 run3 done3:0");
	assert_int_equal(b->done_count, 0);
	/* Done jobs are on no queue. */
	assert_true(jobq_withdraw(&f->q, &a->job));
	assert_true(jobq_withdraw(&f->q, &c->job));
}

static void the_running_job_cannot_be_withdrawn(void **state)
{
	struct fake *f = *state;

	struct tjob *a = tjob(f, 1, VTPM_JOB_CMD);
	a->offloop = true;
	jobq_submit(&f->q, &a->job);
	assert_false(jobq_withdraw(&f->q, &a->job));
	uv_run(&f->loop, UV_RUN_DEFAULT);
	/* Its done() runs: the submitter learns the end there. */
	assert_int_equal(a->done_count, 1);
}

static void withdrawing_the_last_job_keeps_the_queue_whole(void **state)
{
	struct fake *f = *state;

	struct tjob *a = tjob(f, 1, VTPM_JOB_CMD);
	a->offloop = true;
	struct tjob *b = tjob(f, 2, VTPM_JOB_CMD);
	struct tjob *c = tjob(f, 3, VTPM_JOB_CMD);
	jobq_submit(&f->q, &a->job);
	jobq_submit(&f->q, &b->job);
	assert_true(jobq_withdraw(&f->q, &b->job));
	jobq_submit(&f->q, &c->job);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_string_equal(f->log, "run1 persist done1:0 run3 done3:0");
}

/* ---- cancel ---- */

static void cancel_reaches_the_running_command_then_the_queue_goes_on(
	void **state)
{
	struct fake *f = *state;

	struct tjob *a = tjob(f, 1, VTPM_JOB_CMD);
	a->offloop = true;
	a->blocks = true;
	struct tjob *b = tjob(f, 2, VTPM_JOB_CMD);
	jobq_submit(&f->q, &a->job);
	jobq_submit(&f->q, &b->job);
	/* Wait until a really runs on the pool. */
	wait_started(f);
	jobq_cancel(&f->q);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_string_equal(f->log, "run1 cancel persist done1:0 run2 done2:0");
	assert_int_equal(a->done_count, 1);
}

static void cancel_spares_calls_and_an_idle_queue(void **state)
{
	struct fake *f = *state;

	jobq_cancel(&f->q); /* nothing runs */
	struct tjob *a = tjob(f, 1, VTPM_JOB_CALL);
	a->offloop = true;
	jobq_submit(&f->q, &a->job);
	jobq_cancel(&f->q); /* a control-channel call is not a TPM command */
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_string_equal(f->log, "run1 persist done1:0");
	assert_false(f->cancelled);
}

/* ---- drain at shutdown ---- */

static void drain_cancels_every_queued_job_and_the_running_one_finishes(
	void **state)
{
	struct fake *f = *state;

	struct tjob *a = tjob(f, 1, VTPM_JOB_CMD);
	a->offloop = true;
	a->blocks = true;
	struct tjob *b = tjob(f, 2, VTPM_JOB_CMD);
	struct tjob *c = tjob(f, 3, VTPM_JOB_CALL);
	struct tjob *d = tjob(f, 4, VTPM_JOB_CMD);
	jobq_submit(&f->q, &a->job);
	jobq_submit(&f->q, &b->job);
	jobq_submit(&f->q, &c->job);
	wait_started(f);
	jobq_drain(&f->q);
	/* At once, in order, without running. */
	assert_string_equal(f->log, "run1 done2:-125 done3:-125");
	/* Later submissions too. */
	jobq_submit(&f->q, &d->job);
	assert_int_equal(d->done_count, 1);
	assert_int_equal(d->job.status, -ECANCELED);
	assert_true(jobq_busy(&f->q));
	release(f);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_string_equal(f->log, "run1 done2:-125 done3:-125 done4:-125 "
				    "persist done1:0 idle");
	assert_int_equal(a->job.status, 0);
}

static void drain_of_an_idle_queue_reports_idle_at_once(void **state)
{
	struct fake *f = *state;

	jobq_drain(&f->q);
	assert_string_equal(f->log, "idle");
	assert_false(jobq_busy(&f->q));
}

/* ---- durable before done ---- */

static void a_state_change_is_persisted_before_its_job_is_done(void **state)
{
	struct fake *f = *state;

	struct tjob *a = tjob(f, 1, VTPM_JOB_CMD);   /* quick, but it writes NV */
	a->dirties = true;
	struct tjob *b = tjob(f, 2, VTPM_JOB_CMD);   /* slow, and it writes NV */
	b->offloop = true;
	b->dirties = true;
	struct tjob *c = tjob(f, 3, VTPM_JOB_CMD);   /* quick, read-only */
	jobq_submit(&f->q, &a->job);
	/* Ran at once, but its answer waits for the disk (done() runs on
	 * the loop thread, after the pool's persist). */
	assert_int_equal(a->done_count, 0);
	assert_true(jobq_busy(&f->q));
	jobq_submit(&f->q, &b->job);
	jobq_submit(&f->q, &c->job);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_string_equal(f->log, "run1 persist done1:0 run2 persist done2:0 "
				    "run3 done3:0");
	assert_false(a->was_dirty_at_done);
	assert_false(b->was_dirty_at_done);
	assert_int_equal(f->persisted, 2);
}

static void a_failed_persist_fails_the_job_and_nothing_runs_after(
	void **state)
{
	struct fake *f = *state;

	f->persist_err = -ENOSPC;
	struct tjob *a = tjob(f, 1, VTPM_JOB_CMD);
	a->dirties = true;
	struct tjob *b = tjob(f, 2, VTPM_JOB_CMD);
	struct tjob *c = tjob(f, 3, VTPM_JOB_CALL);
	struct tjob *d = tjob(f, 4, VTPM_JOB_CMD);
	jobq_submit(&f->q, &a->job);
	jobq_submit(&f->q, &b->job);
	jobq_submit(&f->q, &c->job);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_string_equal(f->log, "run1 persist-failed lost1 done1:-5 fatal "
				    "done2:-125 done3:-125 idle");
	assert_ptr_equal(a->job.rsp, rsp_failed);
	jobq_submit(&f->q, &d->job);
	assert_int_equal(d->job.status, -ECANCELED);
	assert_int_equal(f->persisted, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(jobs_run_one_at_a_time_in_submission_order),
		T(a_quick_job_on_an_idle_queue_is_done_inside_submit),
		T(a_queued_job_is_withdrawn_and_never_runs),
		T(the_running_job_cannot_be_withdrawn),
		T(withdrawing_the_last_job_keeps_the_queue_whole),
		T(cancel_reaches_the_running_command_then_the_queue_goes_on),
		T(cancel_spares_calls_and_an_idle_queue),
		T(drain_cancels_every_queued_job_and_the_running_one_finishes),
		T(drain_of_an_idle_queue_reports_idle_at_once),
		T(a_state_change_is_persisted_before_its_job_is_done),
		T(a_failed_persist_fails_the_job_and_nothing_runs_after),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
