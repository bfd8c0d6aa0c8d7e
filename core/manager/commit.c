/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The key store on disk (commit.h): start-up checks it against the TPM's
 * NV counter; then every change is made durable by a group commit, bound
 * to the counter when forced (create, delete, shutdown) or when
 * --counter-interval has passed since the last increment.
 *
 * The files are written on the store queue (m->tasks), the increment is
 * a call on the TPM queue (m->tpmq), so a TPM that hangs does not stop
 * commits: one whose increment overruns its deadline is answered anyway
 * (its file is durable and bound to the next counter value, which a
 * start completes: the pending case of the freshness rule), and while the
 * TPM stays unresponsive commits are written unbound, the binding due
 * when it is back.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/store.h"
#include "manager/commit.h"
#include "manager/manager.h"
#include "manager/tpm.h"

/* Someone waiting for the next commit. */
struct mgr_commit {
	struct list_node node;
	mgr_commit_cb cb;
	void *arg;
};

struct commit_task {
	struct mgr_task task;
	struct list_node waiters;
	uint8_t *store;
	size_t store_len;
	char *entries;
	bool bind;             /* increment the NV counter after the write */
	uint64_t file_counter;
	uint64_t new_counter;
};

void mgr_commits_init(struct mgr_commits *c)
{
	memset(c, 0, sizeof(*c));
	list_init(&c->pending);
	ksfile_init(&c->file);
}

void mgr_commits_close(struct mgr_commits *c)
{
	ksfile_close(&c->file);
}

/* The increment that binds a commit, on the TPM queue. */
struct counter_task {
	struct mgr_task task;
	struct commit_task *c;  /* NULL once the commit was answered */
	uint64_t file_counter;
	uint64_t new_counter;
};

static void commit_work(struct mgr_task *t)
{
	struct commit_task *c = (struct commit_task *)t;
	struct manager *m = t->m;
	int rc;

	/*
	 * The file first, then the counter: a crash in between leaves a file
	 * one ahead of the TPM, which start-up recognises and completes.
	 * The other way round would leave a counter no file matches.  The
	 * write goes to the slot not holding the newest store (one pwrite,
	 * one fdatasync), so a torn write leaves that store to load.
	 */
	rc = ksfile_write(&m->commits.file, m->dirfd, KEYSTORE_FILE, c->store,
			  c->store_len, t->err, sizeof(t->err));
	if (rc) {
		t->rc = rc;
		return;
	}
	/* instances.json only when it changed: most commits are a vTPM's
	 * SAVEHASHKEY, and each file costs an fsync. */
	rc = c->entries ? store_write_atomic(m->dirfd, ENTRIES_FILE,
					     (uint8_t *)c->entries,
					     strlen(c->entries))
			: 0;
	if (rc) {
		t->rc = rc;
		snprintf(t->err, sizeof(t->err), "writing %s: %s", ENTRIES_FILE,
			 strerror(-rc));
	}
}

static void commit_start(struct manager *m, bool force);
static void commit_finish(struct manager *m, struct commit_task *c, int rc,
			  const char *err);

static void counter_work(struct mgr_task *t)
{
	struct counter_task *k = (struct counter_task *)t;
	struct manager *m = t->m;

	t->rc = m->tpm->counter_increment(m, &k->new_counter, t->err,
					  sizeof(t->err));
	if (!t->rc && k->new_counter != k->file_counter) {
		snprintf(t->err, sizeof(t->err),
			 "NV counter moved to %llu, expected %llu",
			 (unsigned long long)k->new_counter,
			 (unsigned long long)k->file_counter);
		t->rc = -EIO;
	}
}

/* The TPM did not answer in time (or is still stuck in an earlier call):
 * the store is durable, bound to a value one ahead of the TPM's, which a
 * start completes; answer, and bind again once the TPM is back. */
static void counter_deferred(struct counter_task *k, const char *why)
{
	struct manager *m = k->task.m;
	struct commit_task *c = k->c;

	log_warnx("key store commit: NV counter increment to %llu not "
		  "confirmed (%s); the store is durable, binding deferred "
		  "until the physical TPM answers",
		  (unsigned long long)k->file_counter, why);
	m->commits.force_next = true;
	k->c = NULL;
	commit_finish(m, c, 0, NULL);
}

static void counter_expire(struct mgr_task *t, int rc, const char *err)
{
	(void)rc;
	counter_deferred((struct counter_task *)t, err);
}

static void counter_done(struct mgr_task *t)
{
	struct counter_task *k = (struct counter_task *)t;
	struct manager *m = t->m;

	if (!t->rc) {
		m->tpm_counter = k->new_counter;
		m->commits.last_increment_ms = mgr_now(m);
		m->commits.increments++;
		if (t->expired)
			log_warnx("the late NV counter increment completed: "
				  "counter at %llu",
				  (unsigned long long)k->new_counter);
	} else if (t->expired) {
		log_warnx("the late NV counter increment failed: %s; the next "
			  "commit binds again", t->err);
	}
	if (k->c && t->rc == -EAGAIN) {
		counter_deferred(k, t->err);
	} else if (k->c) {
		struct commit_task *c = k->c;

		k->c = NULL;
		commit_finish(m, c, t->rc, t->err);
	}
	free(k);
}

static void commit_done(struct mgr_task *t)
{
	struct commit_task *c = (struct commit_task *)t;
	struct manager *m = t->m;
	struct counter_task *k;

	log_debug("key store commit written (rc %d)", t->rc);
	OPENSSL_cleanse(c->store, c->store_len);
	free(c->store);
	c->store = NULL;
	free(c->entries);
	c->entries = NULL;
	m->commits.writes++;
	if (t->rc || !c->bind) {
		commit_finish(m, c, t->rc, t->err);
		return;
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		fatalx("out of memory");
	k->c = c;
	k->file_counter = c->file_counter;
	k->task.work = counter_work;
	k->task.done = counter_done;
	k->task.expire = counter_expire;
	k->task.call = "TPM2_NV_Increment";
	mgr_tpm_submit(m, &k->task);
}

/* Every waiter of c hears rc; then the next commit, if any waits. */
static void commit_finish(struct manager *m, struct commit_task *c, int rc,
			  const char *err)
{
	struct list_node *n, *tmp;

	if (rc) {
		/* Carrying on would answer requests whose effect is not on
		 * disk (or not bound as it must be): stop; the instances
		 * stop with us. */
		log_errx("cannot commit the key store: %s; stopping", err);
		m->exit_code = 1;
	}
	list_for_each_safe(n, tmp, &c->waiters) {
		struct mgr_commit *w = list_item(n, struct mgr_commit, node);

		list_remove(n);
		if (w->cb)
			w->cb(m, rc, w->arg);
		free(w);
	}
	free(c);
	m->commits.queued = false;
	if (rc) {
		if (m->commits.failed)
			m->commits.failed(m);
		else
			raise(SIGTERM);
		return;
	}
	if (!list_empty(&m->commits.pending))
		commit_start(m, false);
}

static void commit_start(struct manager *m, bool force)
{
	struct commit_task *c = calloc(1, sizeof(*c));
	uint64_t now = mgr_now(m);
	struct list_node *n, *tmp;
	int rc;

	uint64_t since, base;
	const char *call;
	bool want;

	if (!c)
		fatalx("out of memory");
	/* Bounded NV wear: at most one increment per counter-interval, plus
	 * one for every create, delete and shutdown (force). */
	want = force || m->commits.force_next ||
	       m->cfg->counter_interval_s == 0 ||
	       now - m->commits.last_increment_ms >=
		       (uint64_t)m->cfg->counter_interval_s * 1000;
	/* A TPM stuck in a call cannot bind: write unbound, bind later. */
	c->bind = want && !mgr_taskq_stuck(&m->tpmq, &since, &call);
	m->commits.force_next = want && !c->bind;
	/*
	 * One commit at a time (mgr_commit), so the counter is exactly where
	 * the previous commit left it, or, when that commit's increment was
	 * not confirmed, one below the value its file carries: then binding
	 * means reaching that value, and until then commits carry it too.
	 */
	base = m->commits.file_counter > m->tpm_counter ? m->commits.file_counter
							: m->tpm_counter;
	c->file_counter = c->bind && base == m->tpm_counter ? base + 1 : base;
	m->commits.file_counter = c->file_counter;
	rc = keystore_encode(&m->ks, m->root_key, m->store_generation + 1,
			     c->file_counter, &c->store, &c->store_len);
	if (rc)
		fatalx("cannot encode the key store: %s", keystore_strerror(rc));
	m->store_generation++;
	log_debug("key store commit %llu queued (bind to counter: %s)",
		  (unsigned long long)m->store_generation, c->bind ? "yes" : "no");
	c->entries = m->entries_dirty ? mgr_entries_json(m) : NULL;
	m->entries_dirty = false;
	/* Every waiter so far, in the order they came. */
	list_init(&c->waiters);
	list_for_each_safe(n, tmp, &m->commits.pending) {
		list_remove(n);
		list_push_back(&c->waiters, n);
	}
	m->commits.queued = true;
	c->task.work = commit_work;
	c->task.done = commit_done;
	mgr_task_submit(m, &c->task);
}

void mgr_commit(struct manager *m, bool force, mgr_commit_cb cb, void *arg)
{
	struct mgr_commit *w = calloc(1, sizeof(*w));

	if (!w)
		fatalx("out of memory");
	w->cb = cb;
	w->arg = arg;
	list_push_back(&m->commits.pending, &w->node);
	/*
	 * One commit in flight at a time: it has encoded the store already,
	 * so later changes wait for the next one, which starts when it is
	 * done and takes every change made meanwhile (group commit).  Two in
	 * flight would each bind to the same counter value.
	 */
	if (m->commits.queued) {
		if (force)
			m->commits.force_next = true;
		return;
	}
	commit_start(m, force);
}

/* ---- start-up ---- */

/* First start (or one that stopped before its store existed): define the
 * counter, and write an empty store bound to it before serving. */
static void first_store(struct manager *m)
{
	const struct config *cfg = m->cfg;
	uint8_t *buf;
	size_t len;
	char err[256];
	int rc;

	rc = tss_hal_counter_define(m->hal, cfg->nv_index, m->nv_auth,
				    NV_AUTH_LEN, err, sizeof(err));
	if (rc)
		fatalx("NV counter 0x%08x: %s", cfg->nv_index, err);
	rc = tss_hal_counter_read(m->hal, cfg->nv_index, &m->tpm_counter, err,
				  sizeof(err));
	if (rc)
		fatalx("NV counter 0x%08x: %s", cfg->nv_index, err);
	keystore_init(&m->ks);
	m->store_generation = 1;
	rc = keystore_encode(&m->ks, m->root_key, m->store_generation,
			     m->tpm_counter, &buf, &len);
	if (rc)
		fatalx("cannot encode the key store: %s", keystore_strerror(rc));
	rc = ksfile_write(&m->commits.file, m->dirfd, KEYSTORE_FILE, buf, len,
			  err, sizeof(err));
	OPENSSL_cleanse(buf, len);
	free(buf);
	if (rc)
		fatalx("%s: %s", cfg->state_dir, err);
	m->entries_dirty = true;
	log_info("new key store, bound to NV counter 0x%08x at %llu",
		 cfg->nv_index, (unsigned long long)m->tpm_counter);
}

int mgr_store_read(int dirfd, const uint8_t root_key[KEYSTORE_ROOT_KEY_LEN],
		   struct keystore *ks, struct keystore_meta *meta,
		   struct ksfile *kf, char *err, size_t errlen)
{
	struct keystore_slots info;
	uint8_t *buf;
	size_t len;
	int fd, rc;

	memset(ks, 0, sizeof(*ks));
	rc = ksfile_read(dirfd, KEYSTORE_FILE, &fd, &buf, &len, err, errlen);
	if (rc)
		return rc;
	if (!keystore_is_slots(buf, len)) {
		/* The single-copy file of before: read as it always was; the
		 * first commit writes a slot file over it. */
		rc = keystore_decode(buf, len, root_key, ks, meta);
		free(buf);
		close(fd);
		ksfile_close(kf);
		if (rc)
			snprintf(err, errlen, "%s", keystore_strerror(rc));
		else
			log_info("key store in the single-copy format: the "
				 "first commit converts it to slots");
		return rc;
	}
	rc = keystore_slots_decode(buf, len, root_key, ks, meta, &info);
	free(buf);
	if (rc) {
		close(fd);
		if (rc == KS_ERR_NO_SLOT || rc == KS_ERR_SLOTS)
			snprintf(err, errlen, "%s (slot 0: %s; slot 1: %s)",
				 keystore_strerror(rc),
				 info.err[0] ? keystore_strerror(info.err[0])
					     : "authentic",
				 info.err[1] ? keystore_strerror(info.err[1])
					     : "authentic");
		else
			snprintf(err, errlen, "%s", keystore_strerror(rc));
		return rc;
	}
	for (int i = 0; i < KSSLOTS_COUNT; i++)
		if (info.err[i])
			log_info("key store slot %d not authentic (%s): an "
				 "interrupted write or none yet; the next "
				 "commit writes it", i,
				 keystore_strerror(info.err[i]));
	ksfile_adopt(kf, fd, &info);
	log_debug("key store slot %d of %u bytes: generation %llu", info.winner,
		  info.slot_size, (unsigned long long)meta->generation);
	return 0;
}

void mgr_store_load(struct manager *m)
{
	const struct config *cfg = m->cfg;
	struct keystore_meta meta;
	char err[256], ferr[256];
	int rc, store_rc;

	if (m->new_root_key) {
		first_store(m);
		return;
	}
	/* The counter must still be ours: same attributes, and only the
	 * holder of the root key may increment it. */
	rc = tss_hal_counter_check(m->hal, cfg->nv_index, m->nv_auth,
				   NV_AUTH_LEN, err, sizeof(err));
	store_rc = faccessat(m->dirfd, KEYSTORE_FILE, F_OK, AT_SYMLINK_NOFOLLOW)
			   ? -errno
			   : 0;
	if ((rc == -ENOENT || rc == -ENODATA) && store_rc == -ENOENT) {
		/* The sealed key is there, counter and store are not: the
		 * first start stopped half-way, before anything was served. */
		log_warnx("finishing an interrupted first start");
		first_store(m);
		return;
	}
	if (rc)
		fatalx("refusing to start: NV counter 0x%08x: %s; nothing "
		       "was changed on disk", cfg->nv_index, err);
	rc = tss_hal_counter_read(m->hal, cfg->nv_index, &m->tpm_counter, err,
				  sizeof(err));
	if (rc)
		fatalx("NV counter 0x%08x: %s", cfg->nv_index, err);
	if (store_rc == -ENOENT)
		fatalx("refusing to start: %s/%s is missing but its root key "
		       "and NV counter exist: the key store was deleted or "
		       "moved; an empty store would abandon every vTPM",
		       cfg->state_dir, KEYSTORE_FILE);
	rc = mgr_store_read(m->dirfd, m->root_key, &m->ks, &meta,
			    &m->commits.file, ferr, sizeof(ferr));
	if (rc < 0 && !keystore_is_err(rc))
		fatalx("%s/%s", cfg->state_dir, ferr);
	if (rc)
		fatalx("refusing to start: key store %s/%s: %s; nothing was "
		       "changed on disk",
		       cfg->state_dir, KEYSTORE_FILE, ferr);
	rc = keystore_check_fresh(meta.nv_counter, m->tpm_counter);
	if (rc < 0)
		fatalx("refusing to start: key store %s/%s is bound to NV "
		       "counter value %llu but the TPM's counter 0x%08x is at "
		       "%llu: %s; nothing was changed on disk",
		       cfg->state_dir, KEYSTORE_FILE,
		       (unsigned long long)meta.nv_counter, cfg->nv_index,
		       (unsigned long long)m->tpm_counter,
		       rc == KS_ERR_ROLLBACK
			       ? "an older copy of the store was put back"
			       : "the store is newer than the counter can explain");
	if (rc == KS_FRESH_PENDING) {
		/* The last commit wrote its file but did not get to the
		 * increment: finish it. */
		rc = tss_hal_counter_increment(m->hal, cfg->nv_index,
					       m->nv_auth, NV_AUTH_LEN,
					       &m->tpm_counter, err, sizeof(err));
		if (rc || m->tpm_counter != meta.nv_counter)
			fatalx("cannot complete the interrupted commit: %s", err);
		log_info("completed an interrupted key store commit");
	}
	m->store_generation = meta.generation;
	log_info("key store: %zu vTPMs, generation %llu, NV counter %llu",
		 m->ks.nrecs, (unsigned long long)meta.generation,
		 (unsigned long long)m->tpm_counter);
}
