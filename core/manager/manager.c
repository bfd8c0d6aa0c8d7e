/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager role: unseals the root key with the physical TPM, keeps the
 * key store fresh against a TPM NV counter, and answers the manager
 * protocol on the link of every instance it started.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/aead.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "lib/notify.h"
#include "manager/manager.h"
#include "proto/mgrproto.h"
#include "lib/store.h"
#include "tpmif/tpmback.h"

#define ROOTKEY_FILE "rootkey.sealed"
#define KEYSTORE_FILE "keystore"
#define ENTRIES_FILE "instances.json"

uint64_t mgr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the task queue: the only user of the TPM and the store files ---- */

static void task_run_next(struct manager *m);

static void task_work(uv_work_t *req)
{
	struct mgr_task *t = req->data;

	t->work(t);
}

static void task_after(uv_work_t *req, int status)
{
	struct mgr_task *t = req->data;
	struct manager *m = t->m;

	(void)status;
	m->cur = NULL;
	t->done(t);
	task_run_next(m);
	mgr_maybe_exit(m);
}

static void task_run_next(struct manager *m)
{
	struct mgr_task *t;

	if (m->cur || !m->head)
		return;
	t = m->head;
	m->head = t->next;
	if (!m->head)
		m->tail = NULL;
	m->cur = t;
	t->req.data = t;
	uv_queue_work(m->loop, &t->req, task_work, task_after);
}

void mgr_task_submit(struct manager *m, struct mgr_task *t)
{
	t->m = m;
	t->next = NULL;
	t->rc = 0;
	t->err[0] = '\0';
	if (m->tail)
		m->tail->next = t;
	else
		m->head = t;
	m->tail = t;
	task_run_next(m);
}

/* ---- store commits (group commit, NV counter binding) ---- */

struct mgr_commit {
	struct mgr_commit *next;
	void (*cb)(struct manager *m, int rc, void *arg);
	void *arg;
};

struct commit_task {
	struct mgr_task task;
	struct mgr_commit *waiters;
	uint8_t *store;
	size_t store_len;
	char *entries;
	bool bind;             /* increment the NV counter after the write */
	uint64_t file_counter;
	uint64_t new_counter;
};

static char *entries_json(struct manager *m);

static void commit_work(struct mgr_task *t)
{
	struct commit_task *c = (struct commit_task *)t;
	struct manager *m = t->m;
	int rc;

	/*
	 * The file first, then the counter: a crash in between leaves a file
	 * one ahead of the TPM, which start-up recognises and completes.
	 * The other way round would leave a counter no file matches.
	 */
	rc = store_write_atomic(m->dirfd, KEYSTORE_FILE, c->store, c->store_len);
	if (rc) {
		t->rc = rc;
		snprintf(t->err, sizeof(t->err), "writing %s: %s", KEYSTORE_FILE,
			 strerror(-rc));
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
		return;
	}
	if (c->bind) {
		rc = tss_hal_counter_increment(m->hal, m->cfg->nv_index,
					       m->nv_auth, NV_AUTH_LEN,
					       &c->new_counter, t->err,
					       sizeof(t->err));
		if (!rc && c->new_counter != c->file_counter) {
			snprintf(t->err, sizeof(t->err),
				 "NV counter moved to %llu, expected %llu",
				 (unsigned long long)c->new_counter,
				 (unsigned long long)c->file_counter);
			rc = -EIO;
		}
		t->rc = rc;
	}
}

static void commit_start(struct manager *m, bool force);

static void commit_done(struct mgr_task *t)
{
	struct commit_task *c = (struct commit_task *)t;
	struct manager *m = t->m;
	struct mgr_commit *w, *next;
	int rc = t->rc;

	log_debug("key store commit done (rc %d)", rc);
	OPENSSL_cleanse(c->store, c->store_len);
	free(c->store);
	free(c->entries);
	if (t->rc) {
		/* Carrying on would answer requests whose effect is not on
		 * disk: stop; the instances stop with us. */
		log_errx("cannot commit the key store: %s; stopping", t->err);
		m->exit_code = 1;
	} else if (c->bind) {
		m->tpm_counter = c->new_counter;
		m->last_increment_ms = mgr_now_ms();
		m->increments++;
	}
	for (w = c->waiters; w; w = next) {
		next = w->next;
		if (w->cb)
			w->cb(m, t->rc, w->arg);
		free(w);
	}
	free(c);
	m->commit_queued = false;
	if (rc) {
		raise(SIGTERM);
		return;
	}
	if (m->pending)
		commit_start(m, false);
}

static void commit_start(struct manager *m, bool force)
{
	struct commit_task *c = calloc(1, sizeof(*c));
	uint64_t now = mgr_now_ms();
	int rc;

	if (!c)
		fatalx("out of memory");
	/* Bounded NV wear: at most one increment per counter-interval, plus
	 * one for every create, delete and shutdown (force). */
	c->bind = force || m->force_next || m->cfg->counter_interval_s == 0 ||
		  now - m->last_increment_ms >=
			  (uint64_t)m->cfg->counter_interval_s * 1000;
	m->force_next = false;
	/* One commit at a time (mgr_commit), so the counter is exactly where
	 * the previous commit left it. */
	c->file_counter = m->tpm_counter + (c->bind ? 1 : 0);
	rc = keystore_encode(&m->ks, m->root_key, m->store_generation + 1,
			     c->file_counter, &c->store, &c->store_len);
	if (rc)
		fatalx("cannot encode the key store: %s", keystore_strerror(rc));
	m->store_generation++;
	log_debug("key store commit %llu queued (bind to counter: %s)",
		  (unsigned long long)m->store_generation, c->bind ? "yes" : "no");
	c->entries = m->entries_dirty ? entries_json(m) : NULL;
	m->entries_dirty = false;
	c->waiters = m->pending;
	m->pending = NULL;
	m->commit_queued = true;
	c->task.work = commit_work;
	c->task.done = commit_done;
	mgr_task_submit(m, &c->task);
}

void mgr_commit(struct manager *m, bool force,
		void (*cb)(struct manager *m, int rc, void *arg), void *arg)
{
	struct mgr_commit *w = calloc(1, sizeof(*w));

	if (!w)
		fatalx("out of memory");
	w->cb = cb;
	w->arg = arg;
	w->next = m->pending;
	m->pending = w;
	/*
	 * One commit in flight at a time: it has encoded the store already,
	 * so later changes wait for the next one, which starts when it is
	 * done and takes every change made meanwhile (group commit).  Two in
	 * flight would each bind to the same counter value.
	 */
	if (m->commit_queued) {
		if (force)
			m->force_next = true;
		return;
	}
	commit_start(m, force);
}

/* ---- instances.json: the operational part of each vTPM ---- */

static char *entries_json(struct manager *m)
{
	json_object *arr = json_object_new_array();
	struct vtpm_entry *e;
	char *s;

	for (e = m->entries; e; e = e->next) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "uuid", json_object_new_string(e->uuid_str));
		json_object_object_add(o, "domid", json_object_new_int64(e->domid));
		json_object_object_add(o, "transport",
				       json_object_new_string(e->transport));
		json_object_object_add(o, "tpm_version",
				       json_object_new_string(e->tpm_version == 1 ? "1.2" : "2.0"));
		json_object_object_add(o, "autostart",
				       json_object_new_boolean(e->autostart));
		json_object_array_add(arr, o);
	}
	s = strdup(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY));
	json_object_put(arr);
	if (!s)
		fatalx("out of memory");
	return s;
}

struct vtpm_entry *mgr_entry_find(struct manager *m, const uint8_t uuid[16])
{
	struct vtpm_entry *e;

	for (e = m->entries; e; e = e->next)
		if (memcmp(e->uuid, uuid, 16) == 0)
			return e;
	return NULL;
}

int mgr_entry_new(struct manager *m, const uint8_t uuid[16], int tpm_version,
		  struct vtpm_entry **out)
{
	struct keystore_rec rec;
	struct vtpm_entry *e = calloc(1, sizeof(*e));
	int rc;

	*out = NULL;
	if (!e)
		return KS_ERR_NOMEM;
	memset(&rec, 0, sizeof(rec));
	memcpy(rec.uuid, uuid, 16);
	rec.group = KEYSTORE_DEFAULT_GROUP;
	rec.flags = KS_REC_NOSTATE;
	rec.tpm_version = (uint8_t)tpm_version;
	if (RAND_priv_bytes(rec.state_key, sizeof(rec.state_key)) != 1) {
		free(e);
		return KS_ERR_CRYPTO;
	}
	rc = keystore_add(&m->ks, &rec);
	OPENSSL_cleanse(&rec, sizeof(rec));
	if (rc) {
		free(e);
		return rc;
	}
	e->m = m;
	e->tpm_version = tpm_version;
	memcpy(e->uuid, uuid, 16);
	uuid_format(e->uuid, e->uuid_str);
	e->next = m->entries;
	m->entries = e;
	m->entries_dirty = true;
	*out = e;
	return 0;
}

static void load_entries(struct manager *m)
{
	uint8_t *buf;
	size_t len;
	json_object *arr;
	int rc;

	rc = store_read(m->dirfd, ENTRIES_FILE, 16 << 20, &buf, &len);
	if (rc == -ENOENT)
		return;
	if (rc)
		fatalx("%s: %s", ENTRIES_FILE, strerror(-rc));
	buf[len] = '\0';
	arr = json_tokener_parse((char *)buf);
	free(buf);
	if (!arr || !json_object_is_type(arr, json_type_array))
		fatalx("%s/%s: not a JSON array", m->cfg->state_dir, ENTRIES_FILE);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *o = json_object_array_get_idx(arr, i), *v;
		struct vtpm_entry *e = calloc(1, sizeof(*e));
		const char *us;

		if (!e)
			fatalx("out of memory");
		e->m = m;
		if (!json_object_object_get_ex(o, "uuid", &v) ||
		    !(us = json_object_get_string(v)) ||
		    config_parse_uuid(us, e->uuid))
			fatalx("%s: entry %zu has no valid uuid", ENTRIES_FILE, i);
		uuid_format(e->uuid, e->uuid_str);
		if (json_object_object_get_ex(o, "domid", &v))
			e->domid = json_object_get_int64(v);
		if (json_object_object_get_ex(o, "transport", &v))
			snprintf(e->transport, sizeof(e->transport), "%s",
				 json_object_get_string(v));
		e->tpm_version = 2;
		if (json_object_object_get_ex(o, "tpm_version", &v) &&
		    strcmp(json_object_get_string(v), "1.2") == 0)
			e->tpm_version = 1;
		if (json_object_object_get_ex(o, "autostart", &v))
			e->autostart = json_object_get_boolean(v);
		if (!keystore_find(&m->ks, e->uuid)) {
			log_warnx("%s: %s has no key store record; ignoring it",
				  ENTRIES_FILE, e->uuid_str);
			free(e);
			continue;
		}
		e->next = m->entries;
		m->entries = e;
	}
	json_object_put(arr);
}

/* ---- the manager protocol on an instance's link ---- */

static void link_read_start(struct vtpm_entry *e);

static void link_after_write(uv_write_t *w, int status)
{
	(void)status;
	free(w->data);
	free(w);
}

static void link_send(struct vtpm_entry *e, const uint8_t *buf, size_t len)
{
	uv_write_t *w;
	uint8_t *copy;
	uv_buf_t b;

	if (e->ring) {
		/* The ring's page takes the answer (copied there). */
		tpmback_complete(e->ring, buf, (uint32_t)len);
		return;
	}
	w = malloc(sizeof(*w));
	copy = malloc(len);

	if (!w || !copy || !e->link_open) {
		free(w);
		free(copy);
		return;
	}
	memcpy(copy, buf, len);
	w->data = copy;
	b = uv_buf_init((char *)copy, (unsigned int)len);
	if (uv_write(w, (uv_stream_t *)&e->link, &b, 1, link_after_write) < 0) {
		free(copy);
		free(w);
	}
}

static void link_reply(struct vtpm_entry *e, struct mgr_rsp *rsp)
{
	uint8_t buf[MGR_MAX_FRAME];
	size_t len;

	if (mgrproto_encode_rsp(rsp, buf, &len) == 0)
		link_send(e, buf, len);
	OPENSSL_cleanse(buf, sizeof(buf));
	mgrproto_rsp_wipe(rsp);
	e->busy = false;
	link_read_start(e);
}

/* An answer for a link: dropped if the instance it was for is gone. */
struct link_ticket {
	struct vtpm_entry *e;
	unsigned int epoch;
};

static struct link_ticket *ticket(struct vtpm_entry *e)
{
	struct link_ticket *t = malloc(sizeof(*t));

	if (!t)
		fatalx("out of memory");
	t->e = e;
	t->epoch = e->link_epoch;
	return t;
}

static bool link_alive(struct vtpm_entry *e)
{
	return e->link_open || e->ring;
}

static bool ticket_valid(struct link_ticket *t)
{
	return t->epoch == t->e->link_epoch && link_alive(t->e);
}

static void save_committed(struct manager *m, int rc, void *arg)
{
	struct link_ticket *t = arg;
	struct mgr_rsp rsp = { .type = MGR_MSG_SAVEHASHKEY };

	(void)m;
	rsp.status = rc ? MGR_FAIL : MGR_SUCCESS;
	if (ticket_valid(t))
		link_reply(t->e, &rsp);
	free(t);
}

struct quote_task {
	struct mgr_task task;
	struct vtpm_entry *e;
	unsigned int epoch;
	uint8_t qd[32];
	uint8_t *attest, *sig;
	size_t attest_len, sig_len;
};

static void quote_work(struct mgr_task *t)
{
	struct quote_task *q = (struct quote_task *)t;

	t->rc = tss_hal_quote(t->m->hal, q->qd, sizeof(q->qd), &t->m->sel,
			      &q->attest, &q->attest_len, &q->sig, &q->sig_len,
			      t->err, sizeof(t->err));
}

static void quote_done(struct mgr_task *t)
{
	struct quote_task *q = (struct quote_task *)t;
	struct mgr_rsp rsp = { .type = MGR_MSG_GET_QUOTE };

	if (t->rc || q->attest_len > MGR_QUOTE_BLOB_MAX ||
	    q->sig_len > MGR_QUOTE_BLOB_MAX) {
		log_warnx("vTPM %s: quote failed: %s", q->e->uuid_str, t->err);
		rsp.status = MGR_FAIL;
	} else {
		rsp.status = MGR_SUCCESS;
		rsp.u.quote.attest_len = (uint16_t)q->attest_len;
		memcpy(rsp.u.quote.attest, q->attest, q->attest_len);
		rsp.u.quote.sig_len = (uint16_t)q->sig_len;
		memcpy(rsp.u.quote.sig, q->sig, q->sig_len);
	}
	free(q->attest);
	free(q->sig);
	if (q->epoch == q->e->link_epoch && link_alive(q->e))
		link_reply(q->e, &rsp);
	free(q);
}

static struct log_ratelimit link_rl;

/* Identity is the link itself: the manager made it for this UUID. */
static void link_handle(struct vtpm_entry *e, const uint8_t *frame, size_t len)
{
	struct manager *m = e->m;
	struct keystore_rec *rec = keystore_find(&m->ks, e->uuid);
	struct mgr_req req;
	struct mgr_rsp rsp;
	int rc;

	memset(&rsp, 0, sizeof(rsp));
	rc = mgrproto_decode_req(frame, len, &req);
	if (rc) {
		uint8_t out[MGR_HDR_LEN];

		log_warnx_rl(&link_rl, "vTPM %s: bad request: %s", e->uuid_str,
			     mgrproto_strerror(rc));
		mgrproto_encode_status(frame, len, mgrproto_err_status(rc), out);
		link_send(e, out, sizeof(out));
		e->busy = false;
		link_read_start(e);
		return;
	}
	rsp.type = req.type;
	if (!rec) {
		rsp.status = MGR_NOT_FOUND;
		link_reply(e, &rsp);
		return;
	}
	switch (req.type) {
	case MGR_MSG_LOADHASHKEY:
		rsp.status = MGR_SUCCESS;
		rsp.u.load.generation = rec->generation;
		memcpy(rsp.u.load.state_hash, rec->state_hash, 32);
		memcpy(rsp.u.load.state_key, rec->state_key, 32);
		rsp.u.load.flags = (rec->flags & KS_REC_NOSTATE)
					   ? MGR_LOAD_FLAG_NOSTATE
					   : 0;
		log_info("vTPM %s: key handed to its instance (generation %llu)",
			 e->uuid_str, (unsigned long long)rec->generation);
		link_reply(e, &rsp);
		return;
	case MGR_MSG_SAVEHASHKEY:
		if (!(rec->flags & KS_REC_NOSTATE) &&
		    req.u.save.generation <= rec->generation) {
			log_warnx("vTPM %s: SAVEHASHKEY of generation %llu, not "
				  "above the recorded %llu: refused",
				  e->uuid_str,
				  (unsigned long long)req.u.save.generation,
				  (unsigned long long)rec->generation);
			rsp.status = MGR_ROLLBACK;
			link_reply(e, &rsp);
			return;
		}
		rec->generation = req.u.save.generation;
		memcpy(rec->state_hash, req.u.save.state_hash, 32);
		rec->flags &= ~KS_REC_NOSTATE;
		mgr_commit(m, false, save_committed, ticket(e));
		return;
	case MGR_MSG_GET_QUOTE: {
		struct quote_task *q = calloc(1, sizeof(*q));

		if (!q) {
			rsp.status = MGR_FAIL;
			link_reply(e, &rsp);
			return;
		}
		q->e = e;
		q->epoch = e->link_epoch;
		mgrproto_deepquote_qd(e->uuid, req.u.quote.pcr_mask,
				      req.u.quote.pcr_digest, req.u.quote.nonce,
				      req.u.quote.nonce_len, q->qd);
		q->task.work = quote_work;
		q->task.done = quote_done;
		mgr_task_submit(m, &q->task);
		return;
	}
	default:
		/* Management goes through the control socket, not a vTPM. */
		rsp.status = MGR_FORBIDDEN;
		link_reply(e, &rsp);
		return;
	}
}

static void link_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct vtpm_entry *e = h->data;

	(void)hint;
	*buf = uv_buf_init((char *)e->rbuf + e->rlen,
			   (unsigned int)(sizeof(e->rbuf) - e->rlen));
}

static void link_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct vtpm_entry *e = s->data;
	int flen;

	(void)buf;
	if (n == 0)
		return;
	if (n < 0) {
		uv_read_stop(s);
		return; /* the process exit tells the rest */
	}
	e->rlen += (size_t)n;
	flen = mgrproto_frame_len(e->rbuf, e->rlen);
	if (flen == 0)
		return;
	if (flen < 0 || (size_t)flen != e->rlen) {
		/* One request at a time: anything else is a broken peer. */
		log_warnx_rl(&link_rl, "vTPM %s: malformed link traffic; "
			     "closing its link", e->uuid_str);
		uv_read_stop(s);
		/* The instance cannot go on without its link: it stops, and
		 * the supervisor restarts it. */
		e->link_epoch++;
		return;
	}
	uv_read_stop(s);
	e->busy = true;
	e->rlen = 0;
	link_handle(e, e->rbuf, (size_t)flen);
}

void mgr_ring_request(struct vtpm_entry *e, const uint8_t *frame, size_t len)
{
	e->busy = true;
	link_handle(e, frame, len);
}

void mgr_ring_reset(struct vtpm_entry *e)
{
	/* A commit or quote in flight answers nobody. */
	e->link_epoch++;
	e->busy = false;
}

static void link_read_start(struct vtpm_entry *e)
{
	if (e->ring)
		return; /* the ring hands over the next request itself */
	if (e->link_open && !e->busy)
		uv_read_start((uv_stream_t *)&e->link, link_alloc, link_on_read);
}

void mgr_link_start(struct vtpm_entry *e)
{
	e->rlen = 0;
	e->busy = false;
	e->link.data = e;
	link_read_start(e);
}

/* ---- start-up ---- */

static uint8_t *locked_key_page(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (size_t)pg, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		fatal("mmap");
	if (mlock(p, (size_t)pg) < 0)
		log_warn("mlock of the root key page");
	madvise(p, (size_t)pg, MADV_DONTDUMP);
	return p;
}

/*
 * The NV counter's authorization: derived from the root key, so only the
 * manager that can unseal the store can move the counter (with an empty
 * one, anyone with TPM access could make every start read as rollback).
 */
static void derive_nv_auth(struct manager *m)
{
	if (aead_hkdf_sha256(m->root_key, KEYSTORE_ROOT_KEY_LEN,
			     "vtpm-service nv counter auth v1", m->nv_auth,
			     NV_AUTH_LEN))
		fatalx("cannot derive the NV counter's authorization");
}

static void unlock_root_key(struct manager *m)
{
	const struct config *cfg = m->cfg;
	uint8_t *blob = NULL;
	size_t bloblen = 0, keylen = TSS_HAL_SECRET_MAX;
	uint8_t secret[TSS_HAL_SECRET_MAX];
	char err[512];
	int rc;

	rc = tss_hal_open_by_name(cfg->hal, cfg->tcti, &m->hal, err,
				  sizeof(err));
	if (rc)
		fatalx("physical TPM (%s %s): %s", cfg->hal, cfg->tcti, err);
	rc = tss_hal_primary(m->hal, err, sizeof(err));
	if (rc)
		fatalx("physical TPM: storage primary key: %s", err);
	m->root_key = locked_key_page();
	m->nv_auth = m->root_key + KEYSTORE_ROOT_KEY_LEN;

	rc = store_read(m->dirfd, ROOTKEY_FILE, TSS_HAL_BLOB_MAX, &blob, &bloblen);
	if (rc == 0) {
		rc = tss_hal_unseal(m->hal, blob, bloblen, secret, &keylen, err,
				    sizeof(err));
		free(blob);
		m->main_seal_verified = rc == 0;
		if (rc == -EACCES && store_read(m->dirfd, ROOTKEY_FILE ".prev",
						TSS_HAL_BLOB_MAX, &blob,
						&bloblen) == 0) {
			/* An upgrade re-sealed the key, but the host booted
			 * the configuration of before: the old seal opens. */
			char err2[512];
			size_t len2 = TSS_HAL_SECRET_MAX;

			if (tss_hal_unseal(m->hal, blob, bloblen, secret, &len2,
					   err2, sizeof(err2)) == 0) {
				m->main_seal_verified = false;
				log_warnx("root key unsealed with the previous "
					  "seal %s.prev: the host runs the "
					  "configuration from before the last "
					  "reseal", ROOTKEY_FILE);
				keylen = len2;
				rc = 0;
			}
			free(blob);
		}
		if (rc)
			fatalx("refusing to start: cannot unseal the root key "
			       "%s/%s: %s; nothing was changed on disk",
			       cfg->state_dir, ROOTKEY_FILE, err);
		if (keylen != KEYSTORE_ROOT_KEY_LEN)
			fatalx("%s: unsealed %zu bytes, not a root key",
			       ROOTKEY_FILE, keylen);
		memcpy(m->root_key, secret, KEYSTORE_ROOT_KEY_LEN);
		OPENSSL_cleanse(secret, sizeof(secret));
		log_info("root key unsealed by the physical TPM (PCRs %s)",
			 cfg->pcrs);
		return;
	}
	if (rc != -ENOENT)
		fatalx("%s/%s: %s", cfg->state_dir, ROOTKEY_FILE, strerror(-rc));
	if (faccessat(m->dirfd, KEYSTORE_FILE, F_OK, 0) == 0)
		fatalx("refusing to start: %s/%s exists but %s does not: the "
		       "key store cannot be opened without its sealed root key",
		       cfg->state_dir, KEYSTORE_FILE, ROOTKEY_FILE);
	/* First start: a new root key, sealed to the PCRs as they are. */
	if (RAND_priv_bytes(m->root_key, KEYSTORE_ROOT_KEY_LEN) != 1)
		fatalx("no randomness for the root key");
	rc = tss_hal_seal(m->hal, m->root_key, KEYSTORE_ROOT_KEY_LEN, &m->sel,
			  NULL, &blob, &bloblen, err, sizeof(err));
	if (rc)
		fatalx("cannot seal a new root key: %s", err);
	/* The sealed key first, then the counter (load_store): a counter
	 * whose auth derives from a root key that never reached the disk
	 * would lock every later start out. */
	rc = store_write_atomic(m->dirfd, ROOTKEY_FILE, blob, bloblen);
	free(blob);
	if (rc)
		fatalx("%s/%s: %s", cfg->state_dir, ROOTKEY_FILE, strerror(-rc));
	m->new_root_key = true;
	m->main_seal_verified = true;
	log_info("new root key sealed to PCRs %s in %s/%s", cfg->pcrs,
		 cfg->state_dir, ROOTKEY_FILE);
}

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
	rc = store_write_atomic(m->dirfd, KEYSTORE_FILE, buf, len);
	free(buf);
	if (rc)
		fatalx("%s/%s: %s", cfg->state_dir, KEYSTORE_FILE, strerror(-rc));
	m->entries_dirty = true;
	log_info("new key store, bound to NV counter 0x%08x at %llu",
		 cfg->nv_index, (unsigned long long)m->tpm_counter);
}

static void load_store(struct manager *m)
{
	const struct config *cfg = m->cfg;
	struct keystore_meta meta;
	uint8_t *buf;
	size_t len;
	char err[256];
	int rc, store_rc;

	derive_nv_auth(m);
	store_rc = store_read(m->dirfd, KEYSTORE_FILE, 64u << 20, &buf, &len);
	if (m->new_root_key) {
		if (store_rc == 0)
			free(buf);
		first_store(m);
		return;
	}
	/* The counter must still be ours: same attributes, and only the
	 * holder of the root key may increment it. */
	rc = tss_hal_counter_check(m->hal, cfg->nv_index, m->nv_auth,
				   NV_AUTH_LEN, err, sizeof(err));
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
	rc = store_rc;
	if (rc == -ENOENT)
		fatalx("refusing to start: %s/%s is missing but its root key "
		       "and NV counter exist: the key store was deleted or "
		       "moved; an empty store would abandon every vTPM",
		       cfg->state_dir, KEYSTORE_FILE);
	if (rc)
		fatalx("%s/%s: %s", cfg->state_dir, KEYSTORE_FILE, strerror(-rc));
	rc = keystore_decode(buf, len, m->root_key, &m->ks, &meta);
	free(buf);
	if (rc)
		fatalx("refusing to start: key store %s/%s: %s; nothing was "
		       "changed on disk",
		       cfg->state_dir, KEYSTORE_FILE, keystore_strerror(rc));
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

/* ---- shutdown ---- */

static void final_committed(struct manager *m, int rc, void *arg)
{
	(void)arg;
	if (rc)
		m->exit_code = 1;
	tss_hal_close(m->hal);
	m->hal = NULL;
	uv_stop(m->loop);
}

void mgr_maybe_exit(struct manager *m)
{
	static bool done;

	if (!m->stopping || done || !sup_all_stopped(m) || m->cur || m->head)
		return;
	done = true;
	/* Bind the final store to the counter, so no older copy loads. */
	mgr_commit(m, true, final_committed, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct manager *m = s->data;
	struct vtpm_entry *e;

	if (m->stopping)
		return;
	log_info("signal %d: stopping the instances, then the manager", signum);
	m->stopping = true;
	control_stop(m);
	mgr_xen_stop(m);
	for (e = m->entries; e; e = e->next)
		sup_stop(e);
	mgr_maybe_exit(m);
}

/* Instances are not the service systemd waits for: no NOTIFY_SOCKET. */
static char **instance_environment(void)
{
	extern char **environ;
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 1, sizeof(*env));
	if (!env)
		fatalx("out of memory");
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0)
			env[k++] = environ[i];
	return env;
}

static void resolve_instance_user(struct manager *m)
{
	const struct passwd *pw;

	m->drop_privileges = geteuid() == 0;
	if (!m->drop_privileges)
		return;
	pw = getpwnam(m->cfg->instance_user);
	if (!pw)
		fatalx("instance user '%s' does not exist", m->cfg->instance_user);
	if (pw->pw_uid == 0)
		fatalx("instance user '%s' is root: instances must not run "
		       "privileged", m->cfg->instance_user);
	m->inst_uid = pw->pw_uid;
	m->inst_gid = pw->pw_gid;
}

int manager_main(const struct config *cfg)
{
	static struct manager mgr;
	struct manager *m = &mgr;
	struct vtpm_entry *e;
	char err[256];
	int lockfd;
	ssize_t n;

	log_set_subject("manager");
	m->cfg = cfg;
	m->started_ms = mgr_now_ms();
	if (pcr_sel_parse(cfg->pcrs, &m->sel))
		fatalx("--pcrs '%s': expected like sha256:0,2,4,7", cfg->pcrs);
	if (mkdir(cfg->state_dir, 0711) < 0 && errno != EEXIST)
		fatal("%s", cfg->state_dir);
	m->dirfd = open(cfg->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m->dirfd < 0)
		fatal("%s", cfg->state_dir);
	lockfd = openat(m->dirfd, "manager.lock", O_RDWR | O_CREAT | O_CLOEXEC,
			0600);
	if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0)
		fatalx("%s: another manager uses this state directory",
		       cfg->state_dir);
	if (cfg->instance_exe[0]) {
		snprintf(m->exe, sizeof(m->exe), "%s", cfg->instance_exe);
	} else {
		char *slash;

		/* Instances run the lean sibling image, vtpm-service. */
		n = readlink("/proc/self/exe", m->exe, sizeof(m->exe) - 32);
		if (n < 0)
			fatal("/proc/self/exe");
		m->exe[n] = '\0';
		slash = strrchr(m->exe, '/');
		strcpy(slash ? slash + 1 : m->exe, "vtpm-service");
	}
	resolve_instance_user(m);
	setenv("UV_THREADPOOL_SIZE", "1", 1);
	m->child_env = instance_environment();
	/* Our own messages name the problem; tpm2-tss's would only repeat
	 * it in its words (TSS2_LOG=... still overrides). */
	setenv("TSS2_LOG", "all+none", 0);

	unlock_root_key(m);
	if (tss_hal_ak(m->hal, &m->ak_spki, &m->ak_spki_len, err, sizeof(err)))
		fatalx("attestation key: %s", err);
	load_store(m);
	load_entries(m);

	m->loop = uv_default_loop();
	signal(SIGPIPE, SIG_IGN);
	uv_signal_init(m->loop, &m->sigterm);
	uv_signal_init(m->loop, &m->sigint);
	m->sigterm.data = m->sigint.data = m;
	uv_signal_start(&m->sigterm, on_signal, SIGTERM);
	uv_signal_start(&m->sigint, on_signal, SIGINT);
	if (control_start(m))
		fatalx("cannot open the control socket %s", cfg->control);
	if (m->entries_dirty)
		mgr_commit(m, false, NULL, NULL);
	for (e = m->entries; e; e = e->next)
		if (e->autostart)
			sup_start(e);
	if (mgr_xen_start(m))
		fatalx("--xen on: cannot serve Xen vtpm devices");
	(void)err;
	vtpm_notify_ready();
	log_info("ready: %zu vTPMs, control socket %s", m->ks.nrecs,
		 cfg->control);
	uv_run(m->loop, UV_RUN_DEFAULT);

	keystore_free(&m->ks);
	OPENSSL_cleanse(m->root_key, KEYSTORE_ROOT_KEY_LEN + NV_AUTH_LEN);
	log_info("stopped");
	return m->exit_code;
}
