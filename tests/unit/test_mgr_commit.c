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
#include "lib/bytes.h"
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


/* ---- the slot file (issue 15) ---- */

#define SECT 512

static uint8_t *file_bytes(struct fixture *f, size_t *len)
{
	uint8_t *buf;

	assert_int_equal(store_read(f->m.dirfd, KEYSTORE_FILE, 64u << 20, &buf,
				    len), 0);
	return buf;
}

/* Puts bytes back as the key store file (a new inode: tests load it
 * with their own struct ksfile). */
static void put_bytes(struct fixture *f, const uint8_t *buf, size_t len)
{
	assert_int_equal(store_write_atomic(f->m.dirfd, KEYSTORE_FILE, buf, len),
			 0);
}

/* Loads the file as start-up does (without the TPM). */
static int load(struct fixture *f, struct keystore *ks,
		struct keystore_meta *meta, struct ksfile *kf)
{
	char err[256];
	int rc;

	ksfile_init(kf);
	rc = mgr_store_read(f->m.dirfd, f->m.root_key, ks, meta, kf, err,
			    sizeof(err));
	if (rc)
		memset(ks, 0, sizeof(*ks));
	return rc;
}

static ino_t file_ino(struct fixture *f, off_t *size)
{
	struct stat st;

	assert_int_equal(fstatat(f->m.dirfd, KEYSTORE_FILE, &st,
				 AT_SYMLINK_NOFOLLOW), 0);
	if (size)
		*size = st.st_size;
	return st.st_ino;
}

/* The first commit creates the slot file; every later one is one write
 * in place: same inode, same size, no rename. */
static void test_steady_state_in_place(void **state)
{
	struct fixture *f = fixture_new(60);
	struct waiter w;
	struct keystore ks;
	struct keystore_meta meta;
	struct ksfile kf;
	uint8_t *buf;
	size_t len;
	off_t size0, size1;
	ino_t ino;

	(void)state;
	commit_and_wait(f, false, &w);
	assert_int_equal(f->m.commits.file.replaced, 1);
	assert_int_equal(f->m.commits.file.in_place, 0);
	ino = file_ino(f, &size0);
	assert_int_equal(size0, KSSLOTS_HDR_LEN + 2 * KSSLOTS_MIN_SLOT);
	for (int i = 0; i < 5; i++) {
		add_vtpm(f, (uint8_t)(i + 1));
		commit_and_wait(f, false, &w);
	}
	assert_int_equal(f->m.commits.file.replaced, 1);
	assert_int_equal(f->m.commits.file.in_place, 5);
	assert_int_equal(f->m.commits.writes, 6);
	assert_true(file_ino(f, &size1) == ino);
	assert_int_equal(size1, size0);
	/* Alternating: slot 0 (create), 1, 0, 1, 0, 1: the next is 0. */
	assert_int_equal(f->m.commits.file.next, 0);
	assert_int_equal(faccessat(f->m.dirfd, KEYSTORE_FILE ".tmp", F_OK, 0), -1);
	buf = file_bytes(f, &len);
	assert_true(keystore_is_slots(buf, len));
	free(buf);
	assert_int_equal(load(f, &ks, &meta, &kf), 0);
	assert_int_equal(ks.nrecs, 5);
	assert_int_equal(meta.generation, f->m.store_generation);
	assert_int_equal(kf.next, 0); /* the slot that did not win */
	ksfile_close(&kf);
	keystore_free(&ks);
	fixture_free(f);
}

/* Group commit: several waiters, still one in-place write for them. */
static void test_group_commit_one_write(void **state)
{
	struct fixture *f = fixture_new(60);
	struct waiter w[4] = { 0 }, first;
	struct plug plug = { 0 };

	(void)state;
	commit_and_wait(f, false, &first);
	uv_sem_init(&plug.sem, 0);
	plug.task.work = plug_work;
	plug.task.done = plug_done;
	mgr_task_submit(&f->m, &plug.task);
	for (int i = 0; i < 4; i++) {
		add_vtpm(f, (uint8_t)(i + 1));
		mgr_commit(&f->m, false, waiter_cb, &w[i]);
	}
	uv_sem_post(&plug.sem);
	run_until(f, &w[3].done);
	/* The first was encoded before the plug let go; the other three
	 * shared the next write. */
	assert_int_equal(f->m.commits.file.in_place, 2);
	assert_int_equal(f->m.commits.file.replaced, 1);
	for (int i = 1; i < 4; i++)
		assert_int_equal(w[i].writes, 3);
	uv_sem_destroy(&plug.sem);
	fixture_free(f);
}

/* Copies sectors [from, to) of slot `slot` from src to dst. */
static void copy_sectors(uint8_t *dst, const uint8_t *src, uint32_t slot_size,
			 unsigned int slot, size_t from, size_t to)
{
	size_t off = (size_t)keystore_slot_off(slot_size, slot);

	memcpy(dst + off + from * SECT, src + off + from * SECT,
	       (to - from) * SECT);
}

/*
 * A power cut during a commit's write leaves any mix of old and new
 * sectors in the slot being written.  Torn at every 512-byte boundary,
 * from the front and from the back, the load gives the previous store
 * (fresh against the counter as it was: the increment comes only after
 * the flush) or, once the whole envelope is there, the new one (one
 * ahead of the counter: pending).  Never an error, never anything else.
 */
static void test_torn_slot_every_sector(void **state)
{
	struct fixture *f = fixture_new(0); /* every commit binds */
	struct waiter w;
	struct keystore ks;
	struct keystore_meta meta;
	struct ksfile kf;
	uint8_t *before, *after, *torn;
	size_t blen, alen, env_len, nsec;
	uint64_t c_before, g_before;
	uint32_t slot_size;
	unsigned int slot;
	int cases = 0;

	(void)state;
	for (int i = 0; i < 30; i++)
		add_vtpm(f, (uint8_t)(i + 1));
	for (int i = 0; i < 3; i++)
		commit_and_wait(f, false, &w);
	before = file_bytes(f, &blen);
	c_before = ftpm.counter;
	g_before = f->m.store_generation;
	slot = f->m.commits.file.next;
	slot_size = f->m.commits.file.slot_size;
	add_vtpm(f, 99);
	commit_and_wait(f, false, &w);
	after = file_bytes(f, &alen);
	assert_int_equal(alen, blen);
	assert_int_equal(ftpm.counter, c_before + 1);
	env_len = f->m.commits.file.used[slot];
	assert_true(env_len > 4 * SECT); /* worth tearing */
	nsec = (env_len + SECT - 1) / SECT;
	/* Only that slot changed. */
	assert_memory_equal(before, after,
			    (size_t)keystore_slot_off(slot_size, slot));
	torn = malloc(blen);
	for (int back = 0; back < 2; back++) {
		for (size_t k = 0; k <= nsec; k++) {
			bool whole;

			memcpy(torn, before, blen);
			if (!back)
				copy_sectors(torn, after, slot_size, slot, 0, k);
			else
				copy_sectors(torn, after, slot_size, slot, k,
					     nsec);
			whole = back ? k == 0 : k == nsec;
			put_bytes(f, torn, blen);
			assert_int_equal(load(f, &ks, &meta, &kf), 0);
			if (whole) {
				assert_int_equal(meta.generation, g_before + 1);
				assert_int_equal(ks.nrecs, 31);
				assert_int_equal(keystore_check_fresh(meta.nv_counter,
								      c_before),
						 KS_FRESH_PENDING);
				assert_int_not_equal(kf.next, slot);
			} else {
				assert_int_equal(meta.generation, g_before);
				assert_int_equal(ks.nrecs, 30);
				assert_int_equal(keystore_check_fresh(meta.nv_counter,
								      c_before),
						 0);
				/* The next write goes to the torn slot, never
				 * over the one that won. */
				assert_int_equal(kf.next, slot);
			}
			ksfile_close(&kf);
			keystore_free(&ks);
			cases++;
		}
	}
	assert_int_equal(cases, 2 * (int)(nsec + 1));
	free(torn);
	free(before);
	free(after);
	fixture_free(f);
}

/* Flips one byte of slot i's envelope at off. */
static void flip(uint8_t *buf, uint32_t slot_size, unsigned int i, size_t off)
{
	buf[keystore_slot_off(slot_size, i) + off] ^= 0x01;
}

static void test_both_slots_bad(void **state)
{
	struct fixture *f = fixture_new(60);
	struct waiter w;
	struct keystore ks;
	struct keystore_meta meta;
	struct ksfile kf;
	uint32_t ss;
	uint8_t *buf;
	size_t len;

	(void)state;
	commit_and_wait(f, false, &w);
	commit_and_wait(f, false, &w);
	ss = f->m.commits.file.slot_size;
	buf = file_bytes(f, &len);
	flip(buf, ss, 0, KEYSTORE_HDR_LEN + 3);
	flip(buf, ss, 1, KEYSTORE_HDR_LEN + 5);
	put_bytes(f, buf, len);
	assert_int_equal(load(f, &ks, &meta, &kf), KS_ERR_NO_SLOT);
	assert_int_equal(kf.fd, -1);
	/* Never written at all (zeroed) reads the same. */
	memset(buf + KSSLOTS_HDR_LEN, 0, len - KSSLOTS_HDR_LEN);
	put_bytes(f, buf, len);
	assert_int_equal(load(f, &ks, &meta, &kf), KS_ERR_NO_SLOT);
	free(buf);
	fixture_free(f);
}

/* The plaintext generation decides nothing before the tag is checked. */
static void test_higher_generation_bad_tag(void **state)
{
	struct fixture *f = fixture_new(60);
	struct waiter w;
	struct keystore ks;
	struct keystore_meta meta;
	struct ksfile kf;
	uint8_t *buf, *copy;
	size_t len;
	uint32_t ss;
	unsigned int newest;
	uint64_t g;

	(void)state;
	commit_and_wait(f, false, &w);
	add_vtpm(f, 1);
	commit_and_wait(f, false, &w);
	g = f->m.store_generation;
	newest = f->m.commits.file.next ? 0 : 1;
	ss = f->m.commits.file.slot_size;
	buf = file_bytes(f, &len);
	copy = malloc(len);
	/* The older slot claims a far higher generation: not authentic, so
	 * the newest still wins. */
	memcpy(copy, buf, len);
	be64_put(copy + keystore_slot_off(ss, 1 - newest) + 12, g + 100);
	put_bytes(f, copy, len);
	assert_int_equal(load(f, &ks, &meta, &kf), 0);
	assert_int_equal(meta.generation, g);
	assert_int_equal(ks.nrecs, 1);
	ksfile_close(&kf);
	keystore_free(&ks);
	/* The newest's tag broken: the older one wins. */
	memcpy(copy, buf, len);
	flip(copy, ss, newest, f->m.commits.file.used[newest] - 1);
	put_bytes(f, copy, len);
	assert_int_equal(load(f, &ks, &meta, &kf), 0);
	assert_int_equal(meta.generation, g - 1);
	assert_int_equal(ks.nrecs, 0);
	assert_int_equal(kf.next, newest);
	ksfile_close(&kf);
	keystore_free(&ks);
	/* A newer generation in the newest slot's header: no longer
	 * authentic either. */
	memcpy(copy, buf, len);
	be64_put(copy + keystore_slot_off(ss, newest) + 12, g + 1);
	put_bytes(f, copy, len);
	assert_int_equal(load(f, &ks, &meta, &kf), 0);
	assert_int_equal(meta.generation, g - 1);
	ksfile_close(&kf);
	keystore_free(&ks);
	free(copy);
	free(buf);
	fixture_free(f);
}

/*
 * Rollback: a copy of the file older than the counter is refused, and so
 * is the older slot of the current file when the newest slot is
 * destroyed, once the counter has moved past it.  Within
 * --counter-interval the older slot is bound to the same value and loads
 * (the window docs/manager-protocol.md names, as for a copy of the
 * single-copy file).
 */
static void test_rollback_refused(void **state)
{
	struct fixture *f = fixture_new(0);
	struct waiter w;
	struct keystore ks;
	struct keystore_meta meta;
	struct ksfile kf;
	uint8_t *old, *cur;
	size_t olen, clen;
	unsigned int newest;
	uint32_t ss;

	(void)state;
	commit_and_wait(f, false, &w);
	commit_and_wait(f, false, &w);
	old = file_bytes(f, &olen);
	add_vtpm(f, 1);
	commit_and_wait(f, false, &w);
	add_vtpm(f, 2);
	commit_and_wait(f, false, &w);
	cur = file_bytes(f, &clen);
	/* The whole file put back: both its slots are behind. */
	put_bytes(f, old, olen);
	assert_int_equal(load(f, &ks, &meta, &kf), 0);
	assert_int_equal(keystore_check_fresh(meta.nv_counter, ftpm.counter),
			 KS_ERR_ROLLBACK);
	ksfile_close(&kf);
	keystore_free(&ks);
	/* The newest slot destroyed: the older is one binding behind. */
	newest = f->m.commits.file.next ? 0 : 1;
	ss = f->m.commits.file.slot_size;
	flip(cur, ss, newest, KEYSTORE_HDR_LEN);
	put_bytes(f, cur, clen);
	assert_int_equal(load(f, &ks, &meta, &kf), 0);
	assert_int_equal(ks.nrecs, 1);
	assert_int_equal(keystore_check_fresh(meta.nv_counter, ftpm.counter),
			 KS_ERR_ROLLBACK);
	ksfile_close(&kf);
	keystore_free(&ks);
	free(old);
	free(cur);
	fixture_free(f);

	/* Unbound commits (interval 60): the older slot is the window. */
	f = fixture_new(60);
	commit_and_wait(f, true, &w);
	add_vtpm(f, 1);
	commit_and_wait(f, false, &w);
	newest = f->m.commits.file.next ? 0 : 1;
	ss = f->m.commits.file.slot_size;
	cur = file_bytes(f, &clen);
	flip(cur, ss, newest, KEYSTORE_HDR_LEN);
	put_bytes(f, cur, clen);
	assert_int_equal(load(f, &ks, &meta, &kf), 0);
	assert_int_equal(ks.nrecs, 0);
	assert_int_equal(keystore_check_fresh(meta.nv_counter, ftpm.counter), 0);
	ksfile_close(&kf);
	keystore_free(&ks);
	free(cur);
	fixture_free(f);
}

/* The single-copy file of before loads, and the first commit turns it
 * into a slot file holding everything. */
static void test_convert_single_copy(void **state)
{
	struct fixture *f = fixture_new(60);
	struct keystore old;
	struct keystore_rec r = { 0 };
	struct keystore_meta meta;
	struct ksfile kf;
	struct waiter w;
	uint8_t *buf;
	size_t len;
	char err[256];

	(void)state;
	assert_int_equal(keystore_init(&old), 0);
	r.tpm_version = 2;
	for (int i = 0; i < 3; i++) {
		memset(r.uuid, 0x40 + i, 16);
		assert_int_equal(keystore_add(&old, &r), 0);
	}
	assert_int_equal(keystore_encode(&old, f->m.root_key, 41, 7, &buf, &len),
			 0);
	keystore_free(&old);
	put_bytes(f, buf, len);
	free(buf);
	keystore_free(&f->m.ks);
	assert_int_equal(mgr_store_read(f->m.dirfd, f->m.root_key, &f->m.ks,
					&meta, &f->m.commits.file, err,
					sizeof(err)), 0);
	assert_int_equal(meta.generation, 41);
	assert_int_equal(meta.nv_counter, 7);
	assert_int_equal(f->m.ks.nrecs, 3);
	assert_int_equal(f->m.commits.file.fd, -1); /* converted on commit */
	f->m.store_generation = meta.generation;
	f->m.commits.last_increment_ms = fake_now;
	commit_and_wait(f, false, &w);
	assert_int_equal(f->m.commits.file.replaced, 1);
	buf = file_bytes(f, &len);
	assert_true(keystore_is_slots(buf, len));
	free(buf);
	commit_and_wait(f, false, &w);
	assert_int_equal(f->m.commits.file.in_place, 1);
	{
		struct keystore ks;

		assert_int_equal(load(f, &ks, &meta, &kf), 0);
		assert_int_equal(meta.generation, 43);
		assert_int_equal(meta.nv_counter, 7);
		assert_int_equal(ks.nrecs, 3);
		ksfile_close(&kf);
		keystore_free(&ks);
	}
	fixture_free(f);
}

/* A store that outgrows its slot: a new, bigger file by atomic replace,
 * then in place again. */
static void test_growth(void **state)
{
	struct fixture *f = fixture_new(60);
	struct keystore_rec r = { 0 };
	struct keystore ks;
	struct keystore_meta meta;
	struct ksfile kf;
	struct waiter w;
	off_t size;

	(void)state;
	commit_and_wait(f, false, &w);
	assert_int_equal(f->m.commits.file.slot_size, KSSLOTS_MIN_SLOT);
	r.tpm_version = 2;
	for (uint32_t i = 0; i < 1000; i++) {
		be32_put(r.uuid, i + 1);
		assert_int_equal(keystore_add(&f->m.ks, &r), 0);
	}
	commit_and_wait(f, false, &w);
	assert_int_equal(f->m.commits.file.replaced, 2);
	assert_true(f->m.commits.file.slot_size > KSSLOTS_MIN_SLOT);
	assert_int_equal(f->m.commits.file.slot_size % KSSLOTS_ALIGN, 0);
	file_ino(f, &size);
	assert_int_equal(size, KSSLOTS_HDR_LEN +
				       2 * (off_t)f->m.commits.file.slot_size);
	commit_and_wait(f, false, &w);
	assert_int_equal(f->m.commits.file.in_place, 1);
	assert_int_equal(load(f, &ks, &meta, &kf), 0);
	assert_int_equal(ks.nrecs, 1000);
	assert_int_equal(meta.generation, f->m.store_generation);
	ksfile_close(&kf);
	keystore_free(&ks);
	fixture_free(f);
}

/* Only a regular file, never through a symlink, never blocking. */
static void test_not_a_regular_file(void **state)
{
	struct fixture *f = fixture_new(60);
	struct keystore ks;
	struct keystore_meta meta;
	struct ksfile kf;

	(void)state;
	assert_int_equal(mkfifoat(f->m.dirfd, KEYSTORE_FILE, 0600), 0);
	assert_int_equal(load(f, &ks, &meta, &kf), -EINVAL);
	assert_int_equal(unlinkat(f->m.dirfd, KEYSTORE_FILE, 0), 0);
	assert_int_equal(symlinkat("/etc/passwd", f->m.dirfd, KEYSTORE_FILE), 0);
	assert_int_equal(load(f, &ks, &meta, &kf), -ELOOP);
	assert_int_equal(unlinkat(f->m.dirfd, KEYSTORE_FILE, 0), 0);
	assert_int_equal(load(f, &ks, &meta, &kf), -ENOENT);
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
		cmocka_unit_test(test_steady_state_in_place),
		cmocka_unit_test(test_group_commit_one_write),
		cmocka_unit_test(test_torn_slot_every_sector),
		cmocka_unit_test(test_both_slots_bad),
		cmocka_unit_test(test_higher_generation_bad_tag),
		cmocka_unit_test(test_rollback_refused),
		cmocka_unit_test(test_convert_single_copy),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_not_a_regular_file),
	};

	log_init("test_mgr_commit", LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
