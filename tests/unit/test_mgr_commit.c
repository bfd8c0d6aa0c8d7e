/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * core/manager's task queue and group commit (task.c, commit.c), with a
 * fake clock and a fake NV counter: tasks run one at a time in order;
 * commits waiting while one is under way are made durable by the next
 * single write; a forced commit binds the store to a counter increment,
 * an unforced one within --counter-interval does not, and the store on
 * disk carries the counter value it is bound to.
 */
#include "mgr_fixture.h"
#include "lib/store.h"

#include <stdatomic.h>

/* ---- the task queue ---- */

struct probe_task {
	struct mgr_task task;
	int id;
	int *order;
	int *n;
	atomic_int *running;
	bool overlap;
};

static void probe_work(struct mgr_task *t)
{
	struct probe_task *p = (struct probe_task *)t;

	if (atomic_fetch_add(p->running, 1) != 0)
		p->overlap = true;
	usleep(2000);
	atomic_fetch_sub(p->running, 1);
}

static void probe_done(struct mgr_task *t)
{
	struct probe_task *p = (struct probe_task *)t;

	assert_false(p->overlap);
	p->order[(*p->n)++] = p->id;
}

static int afters;

static void count_after(void *arg)
{
	(void)arg;
	afters++;
}

static void test_taskq_order(void **state)
{
	struct fixture *f = fixture_new(60);
	struct mgr_taskq q;
	struct probe_task t[5];
	atomic_int running = 0;
	int order[5], n = 0;
	bool all = false;

	(void)state;
	afters = 0;
	mgr_taskq_init(&q, &f->loop, count_after, NULL);
	assert_true(mgr_taskq_idle(&q));
	for (int i = 0; i < 5; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].id = i;
		t[i].order = order;
		t[i].n = &n;
		t[i].running = &running;
		t[i].task.work = probe_work;
		t[i].task.done = probe_done;
		mgr_taskq_submit(&q, &t[i].task);
	}
	assert_false(mgr_taskq_idle(&q));
	while (!all) {
		uv_run(&f->loop, UV_RUN_ONCE);
		all = n == 5;
	}
	for (int i = 0; i < 5; i++)
		assert_int_equal(order[i], i);
	assert_int_equal(afters, 5);
	assert_true(mgr_taskq_idle(&q));
	fixture_free(f);
}

/* A task submitted from another's done runs after it. */
struct chain_task {
	struct mgr_task task;
	struct mgr_taskq *q;
	struct chain_task *next;
	int *log;
	int *n;
	int id;
};

static void chain_work(struct mgr_task *t)
{
	(void)t;
}

static void chain_done(struct mgr_task *t)
{
	struct chain_task *c = (struct chain_task *)t;

	c->log[(*c->n)++] = c->id;
	if (c->next)
		mgr_taskq_submit(c->q, &c->next->task);
}

static void test_taskq_submit_from_done(void **state)
{
	struct fixture *f = fixture_new(60);
	struct mgr_taskq q;
	struct chain_task a = { 0 }, b = { 0 }, c = { 0 };
	int log[3], n = 0;

	(void)state;
	mgr_taskq_init(&q, &f->loop, NULL, NULL);
	a.q = b.q = c.q = &q;
	a.log = b.log = c.log = log;
	a.n = b.n = c.n = &n;
	a.id = 1, b.id = 2, c.id = 3;
	a.next = &c; /* a's done submits c, after b */
	a.task.work = b.task.work = c.task.work = chain_work;
	a.task.done = b.task.done = c.task.done = chain_done;
	mgr_taskq_submit(&q, &a.task);
	mgr_taskq_submit(&q, &b.task);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(n, 3);
	assert_int_equal(log[0], 1);
	assert_int_equal(log[1], 2);
	assert_int_equal(log[2], 3);
	assert_true(mgr_taskq_idle(&q));
	fixture_free(f);
}

/* ---- group commit ---- */

struct waiter {
	bool done;
	int rc;
	unsigned long writes;     /* store writes when it was called */
	uint64_t counter;         /* m->tpm_counter then */
};

static void waiter_cb(struct manager *m, int rc, void *arg)
{
	struct waiter *w = arg;

	w->done = true;
	w->rc = rc;
	w->writes = m->commits.writes;
	w->counter = m->tpm_counter;
}

/* The key store file as it is on disk. */
static void read_store(struct fixture *f, struct keystore *ks,
		       struct keystore_meta *meta)
{
	struct ksfile kf;
	char err[256];

	ksfile_init(&kf);
	assert_int_equal(mgr_store_read(f->m.dirfd, f->m.root_key, ks, meta,
					&kf, err, sizeof(err)), 0);
	ksfile_close(&kf);
}

/* A task that holds the queue until released. */
struct plug {
	struct mgr_task task;
	uv_sem_t sem;
};

static void plug_work(struct mgr_task *t)
{
	uv_sem_wait(&((struct plug *)t)->sem);
}

static void plug_done(struct mgr_task *t)
{
	(void)t;
}

static void add_vtpm(struct fixture *f, uint8_t b)
{
	struct vtpm_entry *e;
	uint8_t uuid[16];

	memset(uuid, b, 16);
	assert_int_equal(mgr_entry_new(&f->m, uuid, 2, &e), 0);
}

static void test_group_commit(void **state)
{
	struct fixture *f = fixture_new(60);
	struct waiter w[4] = { 0 };
	struct plug plug = { 0 };
	struct keystore ks;
	struct keystore_meta meta;

	(void)state;
	uv_sem_init(&plug.sem, 0);
	plug.task.work = plug_work;
	plug.task.done = plug_done;
	mgr_task_submit(&f->m, &plug.task);
	/* The first commit is encoded at once and waits behind the plug;
	 * the three after it wait for the next one. */
	add_vtpm(f, 1);
	mgr_commit(&f->m, false, waiter_cb, &w[0]);
	add_vtpm(f, 2);
	mgr_commit(&f->m, false, waiter_cb, &w[1]);
	add_vtpm(f, 3);
	mgr_commit(&f->m, false, waiter_cb, &w[2]);
	mgr_commit(&f->m, false, waiter_cb, &w[3]);
	uv_sem_post(&plug.sem);
	run_until(f, &w[3].done);
	for (int i = 0; i < 4; i++) {
		assert_true(w[i].done);
		assert_int_equal(w[i].rc, 0);
	}
	/* Four commits, two writes: the last three shared one. */
	assert_int_equal(f->m.commits.writes, 2);
	assert_int_equal(w[0].writes, 1);
	assert_int_equal(w[1].writes, 2);
	assert_int_equal(w[2].writes, 2);
	assert_int_equal(w[3].writes, 2);
	/* ... and it holds every change. */
	read_store(f, &ks, &meta);
	assert_int_equal(ks.nrecs, 3);
	assert_int_equal(meta.generation, f->m.store_generation);
	keystore_free(&ks);
	/* instances.json too. */
	assert_int_equal(faccessat(f->m.dirfd, ENTRIES_FILE, F_OK, 0), 0);
	assert_true(mgr_taskq_idle(&f->m.tasks));
	uv_sem_destroy(&plug.sem);
	fixture_free(f);
}

/* ---- the NV counter binding ---- */

static void commit_and_wait(struct fixture *f, bool force, struct waiter *w)
{
	memset(w, 0, sizeof(*w));
	mgr_commit(&f->m, force, waiter_cb, w);
	run_until(f, &w->done);
	assert_int_equal(w->rc, 0);
}

static void test_forced_commit_binds(void **state)
{
	struct fixture *f = fixture_new(60);
	struct keystore ks;
	struct keystore_meta meta;
	struct waiter w;

	(void)state;
	/* Just after an increment: an unforced commit would not bind. */
	f->m.commits.last_increment_ms = fake_now;
	commit_and_wait(f, true, &w);
	assert_int_equal(ftpm.increments, 1);
	assert_int_equal(ftpm.counter, 8);
	assert_int_equal(f->m.tpm_counter, 8);
	assert_int_equal(f->m.commits.increments, 1);
	read_store(f, &ks, &meta);
	assert_int_equal(meta.nv_counter, 8);   /* bound to the new value */
	assert_int_equal(keystore_check_fresh(meta.nv_counter, ftpm.counter), 0);
	keystore_free(&ks);
	fixture_free(f);
}

static void test_unforced_within_interval(void **state)
{
	struct fixture *f = fixture_new(60);
	struct keystore ks;
	struct keystore_meta meta;
	struct waiter w;

	(void)state;
	commit_and_wait(f, true, &w);           /* binds: counter 8 */
	assert_int_equal(ftpm.increments, 1);
	fake_now += 10 * 1000;                  /* within 60 s */
	add_vtpm(f, 9);
	commit_and_wait(f, false, &w);
	assert_int_equal(ftpm.increments, 1);   /* no increment */
	assert_int_equal(f->m.tpm_counter, 8);
	read_store(f, &ks, &meta);
	assert_int_equal(ks.nrecs, 1);          /* durable all the same */
	assert_int_equal(meta.nv_counter, 8);   /* bound to the same value */
	assert_int_equal(keystore_check_fresh(meta.nv_counter, ftpm.counter), 0);
	keystore_free(&ks);

	fake_now += 51 * 1000;                  /* 61 s since the increment */
	commit_and_wait(f, false, &w);
	assert_int_equal(ftpm.increments, 2);
	assert_int_equal(f->m.tpm_counter, 9);
	read_store(f, &ks, &meta);
	assert_int_equal(meta.nv_counter, 9);
	keystore_free(&ks);
	fixture_free(f);
}

static void test_interval_zero_binds_every_commit(void **state)
{
	struct fixture *f = fixture_new(0);
	struct waiter w;

	(void)state;
	for (int i = 0; i < 3; i++)
		commit_and_wait(f, false, &w);
	assert_int_equal(ftpm.increments, 3);
	assert_int_equal(f->m.tpm_counter, 10);
	fixture_free(f);
}

/* A forced commit that arrives while one is under way binds the next. */
static void test_force_while_queued(void **state)
{
	struct fixture *f = fixture_new(60);
	struct waiter a, b;
	struct keystore ks;
	struct keystore_meta meta;

	(void)state;
	f->m.commits.last_increment_ms = fake_now;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	mgr_commit(&f->m, false, waiter_cb, &a); /* under way, unbound */
	mgr_commit(&f->m, true, waiter_cb, &b);  /* waits; must bind */
	run_until(f, &b.done);
	assert_true(a.done);
	assert_int_equal(a.counter, 7);
	assert_int_equal(b.counter, 8);
	assert_int_equal(ftpm.increments, 1);
	read_store(f, &ks, &meta);
	assert_int_equal(meta.nv_counter, 8);
	keystore_free(&ks);
	fixture_free(f);
}

/* Someone else moved the counter: the commit fails and the manager
 * stops rather than answer. */
static bool failed_called;

static void on_failed(struct manager *m)
{
	(void)m;
	failed_called = true;
}

static void test_counter_moved(void **state)
{
	struct fixture *f = fixture_new(60);
	struct waiter w = { 0 };

	(void)state;
	failed_called = false;
	f->m.commits.failed = on_failed;
	ftpm.skew = 1;
	mgr_commit(&f->m, true, waiter_cb, &w);
	run_until(f, &w.done);
	assert_int_not_equal(w.rc, 0);
	assert_true(failed_called);
	assert_int_equal(f->m.exit_code, 1);
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_taskq_order),
		cmocka_unit_test(test_taskq_submit_from_done),
		cmocka_unit_test(test_group_commit),
		cmocka_unit_test(test_forced_commit_binds),
		cmocka_unit_test(test_unforced_within_interval),
		cmocka_unit_test(test_interval_zero_binds_every_commit),
		cmocka_unit_test(test_force_while_queued),
		cmocka_unit_test(test_counter_moved),
	};

	log_init("test_mgr_commit", LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
