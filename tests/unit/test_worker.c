/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instance's off-loop worker (core/instance/worker.h) on a real libuv
 * loop: work off the loop and in order, after on the loop and in order,
 * a thread only while there is work (counted in /proc/self/status), the
 * loop kept alive by queued work and not by an idle worker, signals left
 * to the loop, and work still done when no thread can be started.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "instance/worker.h"

#define LINGER_MS 30

struct req {
	struct worker_req r;
	struct fix *f;
	int id;
	bool off_loop;        /* work ran on another thread */
	bool term_blocked;    /* ... with SIGTERM blocked */
	bool after_on_loop;
	int chain;            /* after queues this many more */
};

struct fix {
	uv_loop_t loop;
	struct worker w;
	pthread_t loop_thread;
	pthread_mutex_t mu;
	int work_order[64], nwork;
	int after_order[64], nafter;
	struct req reqs[64];
	int next;
};

/* Threads of this process beyond those it had before any test (a
 * sanitizer's runtime may have its own), from /proc/self/status. */
static int base_threads;

static int threads_now(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	int n = -1;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	assert_true(n > 0);
	return n;
}

static int tasks(void)
{
	return threads_now() - base_threads + 1;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void r_work(struct worker_req *wr)
{
	struct req *q = wr->data;
	struct fix *f = q->f;
	sigset_t cur;

	q->off_loop = !pthread_equal(pthread_self(), f->loop_thread);
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	q->term_blocked = sigismember(&cur, SIGTERM) == 1;
	pthread_mutex_lock(&f->mu);
	if (f->nwork < 64)
		f->work_order[f->nwork++] = q->id;
	pthread_mutex_unlock(&f->mu);
}

static struct req *req_new(struct fix *f, int chain);

static void r_after(struct worker_req *wr)
{
	struct req *q = wr->data;
	struct fix *f = q->f;

	q->after_on_loop = pthread_equal(pthread_self(), f->loop_thread);
	if (f->nafter < 64)
		f->after_order[f->nafter++] = q->id;
	if (q->chain > 0)
		worker_queue(&f->w, &req_new(f, q->chain - 1)->r);
}

static struct req *req_new(struct fix *f, int chain)
{
	struct req *q;

	assert_true(f->next < 64);
	q = &f->reqs[f->next];
	*q = (struct req){ .f = f, .id = f->next, .chain = chain };
	f->next++;
	q->r = (struct worker_req){ .work = r_work, .after = r_after,
				    .data = q };
	return q;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	if (!f || uv_loop_init(&f->loop))
		return -1;
	f->loop_thread = pthread_self();
	pthread_mutex_init(&f->mu, NULL);
	if (worker_init(&f->w, &f->loop, LINGER_MS))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	worker_stop(&f->w);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	assert_int_equal(tasks(), 1);
	pthread_mutex_destroy(&f->mu);
	free(f);
	return 0;
}

static void work_off_the_loop_and_after_on_it_both_in_order(void **state)
{
	struct fix *f = *state;

	for (int i = 0; i < 40; i++)
		worker_queue(&f->w, &req_new(f, 0)->r);
	/* Never inside worker_queue. */
	assert_int_equal(f->nafter, 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(f->nwork, 40);
	assert_int_equal(f->nafter, 40);
	for (int i = 0; i < 40; i++) {
		assert_int_equal(f->work_order[i], i);
		assert_int_equal(f->after_order[i], i);
		assert_true(f->reqs[i].off_loop);
		assert_true(f->reqs[i].after_on_loop);
		assert_true(f->reqs[i].term_blocked);
	}
	/* One thread did it all. */
	assert_int_equal(f->w.started, 1);
}

static void an_after_may_queue_more_and_the_loop_waits_for_it(void **state)
{
	struct fix *f = *state;

	worker_queue(&f->w, &req_new(f, 9)->r);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(f->nafter, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(f->after_order[i], i);
}

static void the_thread_exists_only_while_there_is_work(void **state)
{
	struct fix *f = *state;

	assert_int_equal(tasks(), 1);
	assert_false(worker_thread_alive(&f->w));
	/* An idle worker does not keep the loop running. */
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);

	worker_queue(&f->w, &req_new(f, 0)->r);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(f->nafter, 1);
	/* Lingers a while after its work... */
	assert_true(worker_thread_alive(&f->w));
	assert_int_equal(tasks(), 2);
	/* ...and is gone after that, loop or no loop. */
	for (int i = 0; i < 100 && worker_thread_alive(&f->w); i++)
		sleep_ms(10);
	assert_false(worker_thread_alive(&f->w));
	for (int i = 0; i < 100 && tasks() != 1; i++)
		sleep_ms(10);
	assert_int_equal(tasks(), 1);
	assert_int_equal(f->w.started, 1);

	/* New work, a new thread. */
	worker_queue(&f->w, &req_new(f, 0)->r);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(f->nafter, 2);
	assert_true(f->reqs[1].off_loop);
	assert_int_equal(f->w.started, 2);
}

static void work_closer_than_the_linger_keeps_one_thread(void **state)
{
	struct fix *f = *state;

	for (int i = 0; i < 5; i++) {
		worker_queue(&f->w, &req_new(f, 0)->r);
		uv_run(&f->loop, UV_RUN_DEFAULT);
		sleep_ms(LINGER_MS / 3);
	}
	assert_int_equal(f->nafter, 5);
	assert_int_equal(f->w.started, 1);
}

static void stop_joins_a_lingering_thread(void **state)
{
	struct fix *f = *state;

	worker_queue(&f->w, &req_new(f, 0)->r);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(tasks(), 2);
	worker_stop(&f->w);
	assert_int_equal(tasks(), 1);
	/* teardown's second stop is harmless. */
}

/*
 * No thread can be started (the address space is full: a fresh stack
 * cannot be mapped): the work runs on the loop thread and after still
 * comes from the loop.  In a child, whose limits the test may spoil.
 */
static void without_a_thread_the_work_is_still_done(void **state)
{
	struct fix *f = *state;
	pid_t pid;
	int st;

	(void)f;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct fix *g = calloc(1, sizeof(*g));
		struct rlimit rl;
		pthread_attr_t a;
		FILE *fp = fopen("/proc/self/statm", "r");
		unsigned long pages = 0;

		if (!g || !fp || fscanf(fp, "%lu", &pages) != 1)
			_exit(10);
		fclose(fp);
		/* A stack larger than any cached one, in too little room. */
		pthread_attr_init(&a);
		pthread_attr_setstacksize(&a, 256UL << 20);
		if (pthread_setattr_default_np(&a))
			_exit(11);
		rl.rlim_cur = rl.rlim_max =
			pages * (unsigned long)sysconf(_SC_PAGESIZE) + (64UL << 20);
		if (setrlimit(RLIMIT_AS, &rl))
			_exit(12);
		g->loop_thread = pthread_self();
		pthread_mutex_init(&g->mu, NULL);
		if (uv_loop_init(&g->loop) ||
		    worker_init(&g->w, &g->loop, LINGER_MS))
			_exit(13);
		worker_queue(&g->w, &req_new(g, 0)->r);
		if (g->nafter != 0)
			_exit(15); /* after ran inside worker_queue */
		uv_run(&g->loop, UV_RUN_DEFAULT);
		if (g->nafter != 1 || g->nwork != 1)
			_exit(16);
		if (g->reqs[0].off_loop || !g->reqs[0].after_on_loop)
			_exit(17);
		if (g->w.started != 0 || tasks() != 1)
			_exit(18);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	base_threads = threads_now();
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(the_thread_exists_only_while_there_is_work),
		T(work_off_the_loop_and_after_on_it_both_in_order),
		T(an_after_may_queue_more_and_the_loop_waits_for_it),
		T(work_closer_than_the_linger_keeps_one_thread),
		T(stop_joins_a_lingering_thread),
		T(without_a_thread_the_work_is_still_done),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
