/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager's control socket: one JSON object per line each way.
 * Request {"cmd": "...", ...}; reply {"ok": true, ...} or
 * {"ok": false, "error": "...", "code": N}.  vtpmctl(8) documents the
 * commands.  Mode 0600, or 0660 with a configured group.
 */
#include <errno.h>
#include <grp.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/bytes.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "manager/manager.h"
#include "proto/mgrproto.h"
#include "lib/store.h"

#define LINE_MAX_BYTES 65536

/* Exit codes vtpmctl passes on; documented in vtpmctl(8). */
enum ctl_code {
	CTL_OK = 0,
	CTL_EINVAL = 2,    /* bad request */
	CTL_ENOENT = 3,    /* no such vTPM */
	CTL_EEXIST = 4,    /* already exists */
	CTL_EBUSY = 5,     /* wrong state for this (running, stopped) */
	CTL_EFAIL = 6,     /* the manager or the TPM failed */
};

struct ctl_conn {
	uv_pipe_t pipe;
	struct manager *m;
	char buf[LINE_MAX_BYTES];
	size_t len;
	bool busy, closing;
	int refs;
	uv_timer_t wait;      /* polls for "stopped" */
	bool wait_open;
	struct vtpm_entry *wait_entry;
};

struct control {
	uv_pipe_t server;
	bool open;
};

static void conn_read_start(struct ctl_conn *c);

static void conn_unref(struct ctl_conn *c)
{
	if (--c->refs == 0)
		free(c);
}

static void conn_closed(uv_handle_t *h)
{
	conn_unref(h->data);
}

static void conn_close(struct ctl_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->wait_entry) {
		c->wait_entry->stop_waiters--;
		c->wait_entry = NULL;
	}
	uv_close((uv_handle_t *)&c->pipe, conn_closed);
	if (c->wait_open)
		uv_close((uv_handle_t *)&c->wait, conn_closed);
}

static void after_write(uv_write_t *w, int status)
{
	struct ctl_conn *c = w->data;

	(void)status;
	free(((char **)(w + 1))[0]);
	free(w);
	conn_unref(c);
}

/* Sends the reply (and frees it), then reads the next request. */
static void reply(struct ctl_conn *c, json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	size_t n = strlen(s);
	uv_write_t *w = malloc(sizeof(*w) + sizeof(char *));
	char *copy = malloc(n + 1);
	uv_buf_t b;

	c->busy = false;
	if (!w || !copy || c->closing) {
		free(w);
		free(copy);
		json_object_put(o);
		return;
	}
	memcpy(copy, s, n);
	copy[n] = '\n';
	json_object_put(o);
	((char **)(w + 1))[0] = copy;
	w->data = c;
	b = uv_buf_init(copy, (unsigned int)(n + 1));
	c->refs++;
	if (uv_write(w, (uv_stream_t *)&c->pipe, &b, 1, after_write) < 0) {
		free(copy);
		free(w);
		conn_unref(c);
		conn_close(c);
		return;
	}
	conn_read_start(c);
}

static void reply_error(struct ctl_conn *c, enum ctl_code code,
			const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void reply_error(struct ctl_conn *c, enum ctl_code code,
			const char *fmt, ...)
{
	json_object *o = json_object_new_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	json_object_object_add(o, "code", json_object_new_int(code));
	reply(c, o);
}

static json_object *ok_object(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

static void hex_add(json_object *o, const char *key, const uint8_t *b,
		    size_t n)
{
	char *s = malloc(2 * n + 1);

	if (!s)
		return;
	for (size_t i = 0; i < n; i++)
		sprintf(s + 2 * i, "%02x", b[i]);
	s[2 * n] = '\0';
	json_object_object_add(o, key, json_object_new_string(s));
	free(s);
}

static int hex_parse(const char *s, uint8_t *out, size_t max, size_t *n)
{
	size_t len = strlen(s);

	if (len % 2 || len / 2 > max)
		return -EINVAL;
	for (size_t i = 0; i < len / 2; i++) {
		unsigned int v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	*n = len / 2;
	return 0;
}

static const char *str_arg(json_object *req, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(req, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static struct vtpm_entry *entry_arg(struct ctl_conn *c, json_object *req)
{
	const char *us = str_arg(req, "uuid");
	uint8_t uuid[16];
	struct vtpm_entry *e;

	if (!us || config_parse_uuid(us, uuid)) {
		reply_error(c, CTL_EINVAL, "a valid \"uuid\" is required");
		return NULL;
	}
	e = mgr_entry_find(c->m, uuid);
	if (!e)
		reply_error(c, CTL_ENOENT, "no vTPM %s", us);
	return e;
}

static json_object *entry_json(struct vtpm_entry *e, bool details)
{
	struct keystore_rec *rec = keystore_find(&e->m->ks, e->uuid);
	json_object *o = json_object_new_object();

	json_object_object_add(o, "uuid", json_object_new_string(e->uuid_str));
	json_object_object_add(o, "domid", json_object_new_int64(e->domid));
	json_object_object_add(o, "transport",
			       json_object_new_string(e->transport[0] ? e->transport
								       : "(default)"));
	json_object_object_add(o, "tpm_version",
			       json_object_new_string(e->tpm_version == 1 ? "1.2" : "2.0"));
	json_object_object_add(o, "state",
			       json_object_new_string(sup_state_name(e->state)));
	json_object_object_add(o, "autostart", json_object_new_boolean(e->autostart));
	if (e->state == CHILD_RUNNING)
		json_object_object_add(o, "pid", json_object_new_int(e->proc.pid));
	if (rec) {
		json_object_object_add(o, "generation",
				       json_object_new_int64((int64_t)rec->generation));
		json_object_object_add(o, "group", json_object_new_int64(rec->group));
	}
	if (details && rec) {
		json_object_object_add(o, "restarts", json_object_new_int((int)e->restarts));
		json_object_object_add(o, "last_exit", json_object_new_int(e->last_exit));
		hex_add(o, "state_hash", rec->state_hash, 32);
		json_object_object_add(o, "has_state",
				       json_object_new_boolean(!(rec->flags & KS_REC_NOSTATE)));
	}
	return o;
}

/* ---- create / delete / start / stop ---- */

struct ticket {
	struct ctl_conn *c;
	struct vtpm_entry *e;
};

static void created(struct manager *m, int rc, void *arg)
{
	struct ticket *t = arg;
	json_object *o;

	(void)m;
	if (rc) {
		reply_error(t->c, CTL_EFAIL, "cannot commit the key store");
	} else {
		o = ok_object();
		json_object_object_add(o, "uuid",
				       json_object_new_string(t->e->uuid_str));
		log_info("vTPM %s created", t->e->uuid_str);
		reply(t->c, o);
	}
	conn_unref(t->c);
	free(t);
}

static void cmd_create(struct ctl_conn *c, json_object *req)
{
	struct manager *m = c->m;
	struct vtpm_entry *e;
	struct transport_spec ts;
	uint8_t uuid[16];
	char transport[sizeof(e->transport)] = "";
	long domid = 0;
	int tpm_version = 2;
	const char *s;
	json_object *v;
	struct ticket *t;
	int rc;

	if ((s = str_arg(req, "uuid"))) {
		if (config_parse_uuid(s, uuid)) {
			reply_error(c, CTL_EINVAL, "bad uuid '%s'", s);
			return;
		}
	} else {
		RAND_bytes(uuid, 16);
		uuid[6] = (uuid[6] & 0x0f) | 0x40;
		uuid[8] = (uuid[8] & 0x3f) | 0x80;
	}
	if (json_object_object_get_ex(req, "domid", &v)) {
		int64_t d = json_object_get_int64(v);
		if (d < 0 || d > 0x7fef) {
			reply_error(c, CTL_EINVAL, "domid out of range");
			return;
		}
		domid = (long)d;
	}
	if ((s = str_arg(req, "transport")) &&
	    strcmp(s, MGR_TRANSPORT_XEN_DOMAIN) == 0) {
		/* Its instance runs in a domain of its own and asks for its
		 * key over the ring of a vtpm device naming this UUID. */
		snprintf(transport, sizeof(transport), "%s", s);
	} else if (s) {
		if (config_parse_transport(s, &ts) ||
		    ts.kind == TRANSPORT_XEN_RING) {
			reply_error(c, CTL_EINVAL,
				    "transport '%s': unix:PATH, tcp:ADDR:PORT or "
				    "xen-domain "
				    "(a vTPM for a Xen guest needs none: it is "
				    "served on the ring when the toolstack adds "
				    "a vtpm device naming its UUID)", s);
			return;
		}
		snprintf(transport, sizeof(transport), "%s", s);
	}
	if ((s = str_arg(req, "tpm_version"))) {
		if (strcmp(s, "1.2") == 0) {
			tpm_version = 1;
		} else if (strcmp(s, "2.0") != 0) {
			reply_error(c, CTL_EINVAL, "tpm_version is 2.0 or 1.2");
			return;
		}
	}
	rc = mgr_entry_new(m, uuid, tpm_version, &e);
	if (rc) {
		reply_error(c, rc == KS_ERR_EXISTS ? CTL_EEXIST : CTL_EFAIL,
			    "%s", keystore_strerror(rc));
		return;
	}
	e->domid = domid;
	snprintf(e->transport, sizeof(e->transport), "%s", transport);
	t = malloc(sizeof(*t));
	if (!t)
		fatalx("out of memory");
	t->c = c;
	t->e = e;
	c->refs++;
	/* A new key: bind the store to the counter right away. */
	mgr_commit(m, true, created, t);
}

static void committed_ok(struct manager *m, int rc, void *arg)
{
	struct ctl_conn *c = arg;

	(void)m;
	if (rc)
		reply_error(c, CTL_EFAIL, "cannot commit the key store");
	else
		reply(c, ok_object());
	conn_unref(c);
}

static void remove_tree(const char *dir)
{
	char path[700];
	static const char *const names[] = { ".0", ".1", ".lock", ".0.tmp",
					     ".1.tmp" };

	/* Only the files an instance writes, then the directory. */
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *slash = strrchr(dir, '/');
		snprintf(path, sizeof(path), "%s/vtpm-%s.state%s", dir,
			 slash ? slash + 1 : dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static void free_entry(uv_handle_t *h)
{
	free(h->data);
}

static void cmd_delete(struct ctl_conn *c, json_object *req)
{
	struct manager *m = c->m;
	struct vtpm_entry *e = entry_arg(c, req), **pp;
	char dir[300];
	int rc;

	if (!e)
		return;
	if (e->state != CHILD_STOPPED || e->proc_open || e->stop_waiters) {
		reply_error(c, CTL_EBUSY, "vTPM %s is %s: stop it first",
			    e->uuid_str, e->stop_waiters ? "stopping"
							: sup_state_name(e->state));
		return;
	}
	rc = keystore_del(&m->ks, e->uuid);
	if (rc) {
		reply_error(c, CTL_EFAIL, "%s", keystore_strerror(rc));
		return;
	}
	for (pp = &m->entries; *pp != e; pp = &(*pp)->next)
		;
	*pp = e->next;
	m->entries_dirty = true;
	/* Without its key the state is noise; remove it too. */
	snprintf(dir, sizeof(dir), "%s/vtpms/%s", m->cfg->state_dir, e->uuid_str);
	remove_tree(dir);
	log_info("vTPM %s deleted", e->uuid_str);
	if (e->timer_open)
		uv_close((uv_handle_t *)&e->timer, free_entry);
	else
		free(e);
	c->refs++;
	mgr_commit(m, true, committed_ok, c);
}

static void cmd_start(struct ctl_conn *c, json_object *req)
{
	struct vtpm_entry *e = entry_arg(c, req);
	int rc;

	if (!e)
		return;
	if (mgr_entry_is_remote(e)) {
		reply_error(c, CTL_EBUSY, "vTPM %s runs in its own domain "
			    "(transport xen-domain): the manager does not start "
			    "it", e->uuid_str);
		return;
	}
	e->autostart = true;
	c->m->entries_dirty = true;
	e->backoff_ms = 0;
	rc = sup_start(e);
	if (rc) {
		reply_error(c, CTL_EFAIL, "cannot start vTPM %s: %s", e->uuid_str,
			    strerror(-rc));
		return;
	}
	c->refs++;
	mgr_commit(c->m, false, committed_ok, c);
}

static void stop_poll(uv_timer_t *t)
{
	struct ctl_conn *c = t->data;
	struct vtpm_entry *e = c->wait_entry;

	if (e->state == CHILD_STOPPED && !e->proc_open) {
		uv_timer_stop(t);
		e->stop_waiters--;
		c->wait_entry = NULL;
		c->refs++;
		mgr_commit(c->m, false, committed_ok, c);
	}
}

static void cmd_stop(struct ctl_conn *c, json_object *req)
{
	struct vtpm_entry *e = entry_arg(c, req);

	if (!e)
		return;
	e->autostart = false;
	c->m->entries_dirty = true;
	sup_stop(e);
	/* Answer once the instance is gone, so "delete" can follow. */
	if (!c->wait_open) {
		uv_timer_init(c->m->loop, &c->wait);
		c->wait.data = c;
		c->wait_open = true;
		c->refs++;
	}
	if (c->wait_entry) {
		reply_error(c, CTL_EBUSY, "a stop is already pending here");
		return;
	}
	c->wait_entry = e;
	e->stop_waiters++;
	uv_timer_start(&c->wait, stop_poll, 0, 20);
}

static void cmd_list(struct ctl_conn *c)
{
	json_object *o = ok_object(), *arr = json_object_new_array();
	struct vtpm_entry *e;

	for (e = c->m->entries; e; e = e->next)
		json_object_array_add(arr, entry_json(e, false));
	json_object_object_add(o, "vtpms", arr);
	reply(c, o);
}

static void cmd_show(struct ctl_conn *c, json_object *req)
{
	struct vtpm_entry *e = entry_arg(c, req);
	json_object *o;

	if (!e)
		return;
	o = ok_object();
	json_object_object_add(o, "vtpm", entry_json(e, true));
	reply(c, o);
}

static void cmd_status(struct ctl_conn *c)
{
	struct manager *m = c->m;
	json_object *o = ok_object();
	struct vtpm_entry *e;
	uint64_t up = (mgr_now_ms() - m->started_ms) / 1000;
	int running = 0;

	for (e = m->entries; e; e = e->next)
		running += e->state == CHILD_RUNNING;
	json_object_object_add(o, "tcti", json_object_new_string(m->cfg->tcti));
	json_object_object_add(o, "pcrs", json_object_new_string(m->cfg->pcrs));
	json_object_object_add(o, "nv_index", json_object_new_int64(m->cfg->nv_index));
	json_object_object_add(o, "nv_counter",
			       json_object_new_int64((int64_t)m->tpm_counter));
	json_object_object_add(o, "counter_increments",
			       json_object_new_int64((int64_t)m->increments));
	json_object_object_add(o, "counter_interval_s",
			       json_object_new_int64(m->cfg->counter_interval_s));
	json_object_object_add(o, "store_generation",
			       json_object_new_int64((int64_t)m->store_generation));
	json_object_object_add(o, "vtpms", json_object_new_int((int)m->ks.nrecs));
	json_object_object_add(o, "running", json_object_new_int(running));
	json_object_object_add(o, "uptime_s", json_object_new_int64((int64_t)up));
	hex_add(o, "ak_spki", m->ak_spki, m->ak_spki_len);
	reply(c, o);
}

/* ---- quote: the vTPM's PCRs, bound into a quote by the physical TPM ---- */

struct quote_job {
	struct mgr_task task;
	struct ctl_conn *c;
	char sock[320];
	uint8_t uuid[16];
	uint32_t mask;
	uint8_t nonce[MGR_NONCE_MAX];
	size_t nonce_len;
	uint8_t values[24][32];
	unsigned int nvalues;
	uint8_t digest[32], qd[32];
	uint8_t *attest, *sig, *spki;
	size_t attest_len, sig_len, spki_len;
};

static int sock_xfer(int fd, const uint8_t *cmd, size_t len, uint8_t *rsp,
		     size_t max, size_t *rlen)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, cmd + off, len - off, MSG_NOSIGNAL);
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	off = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (off >= 10 && off >= be32_get(rsp + 2))
			break;
		if (poll(&p, 1, 10000) <= 0)
			return -ETIMEDOUT;
		n = recv(fd, rsp + off, max - off, 0);
		if (n <= 0)
			return -ECONNRESET;
		off += (size_t)n;
		if (off == max)
			return -EMSGSIZE;
	}
	*rlen = off;
	return 0;
}

/* TPM2_PCR_Read of the vTPM's sha256 PCRs in mask, through its socket. */
static int read_vtpm_pcrs(struct quote_job *q, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	uint32_t left = q->mask;
	int fd, rc = 0;

	if (strlen(q->sock) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "vTPM socket path too long");
		return -ENAMETOOLONG;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, q->sock, strlen(q->sock) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "vTPM socket %s: %s", q->sock,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	q->nvalues = 0;
	while (left && rc == 0) {
		uint8_t cmd[20], rsp[1024];
		size_t rlen = 0, off;
		uint32_t got, cnt;

		be16_put(cmd, 0x8001);
		be32_put(cmd + 2, 20);
		be32_put(cmd + 6, 0x17e); /* TPM2_PCR_Read */
		be32_put(cmd + 10, 1);
		be16_put(cmd + 14, 0x000b);
		cmd[16] = 3;
		cmd[17] = (uint8_t)left;
		cmd[18] = (uint8_t)(left >> 8);
		cmd[19] = (uint8_t)(left >> 16);
		rc = sock_xfer(fd, cmd, sizeof(cmd), rsp, sizeof(rsp), &rlen);
		if (rc)
			break;
		/* header, updateCounter, one selection (count, alg, size, 3) */
		if (rlen < 30 || be32_get(rsp + 6) != 0 || be32_get(rsp + 14) != 1 ||
		    be16_get(rsp + 18) != 0x000b || rsp[20] != 3) {
			snprintf(err, errlen, "vTPM PCR_Read failed (rc 0x%x)",
				 rlen >= 10 ? be32_get(rsp + 6) : 0);
			rc = -EIO;
			break;
		}
		got = rsp[21] | (uint32_t)rsp[22] << 8 | (uint32_t)rsp[23] << 16;
		cnt = be32_get(rsp + 24);
		if (!got || (got & ~left) || cnt != (uint32_t)__builtin_popcount(got)) {
			rc = -EIO;
			snprintf(err, errlen, "vTPM PCR_Read answered oddly");
			break;
		}
		off = 28;
		for (unsigned int i = 0; i < 24; i++) {
			if (!(got & (1u << i)))
				continue;
			if (off + 34 > rlen || be16_get(rsp + off) != 32) {
				rc = -EIO;
				snprintf(err, errlen, "short PCR_Read answer");
				break;
			}
			/* Values arrive in ascending index order. */
			memcpy(q->values[q->nvalues++], rsp + off + 2, 32);
			off += 34;
		}
		left &= ~got;
	}
	close(fd);
	if (rc == 0) {
		/* The ascending-order values may have come in several reads;
		 * ascending within each, and each read took the lowest. */
		SHA256(&q->values[0][0], 32 * (size_t)q->nvalues, q->digest);
	}
	return rc;
}

static void quote_job_work(struct mgr_task *t)
{
	struct quote_job *q = (struct quote_job *)t;
	struct manager *m = t->m;

	t->rc = read_vtpm_pcrs(q, t->err, sizeof(t->err));
	if (t->rc)
		return;
	mgrproto_deepquote_qd(q->uuid, q->mask, q->digest, q->nonce,
			      q->nonce_len, q->qd);
	t->rc = tss_hal_quote(m->hal, q->qd, sizeof(q->qd), &m->sel, &q->attest,
			      &q->attest_len, &q->sig, &q->sig_len, t->err,
			      sizeof(t->err));
	if (t->rc)
		return;
	t->rc = tss_hal_ak(m->hal, &q->spki, &q->spki_len, t->err,
			   sizeof(t->err));
}

static void quote_job_done(struct mgr_task *t)
{
	struct quote_job *q = (struct quote_job *)t;
	json_object *o, *vals;
	char us[37];

	if (t->rc) {
		reply_error(q->c, CTL_EFAIL, "quote: %s", t->err);
	} else {
		o = ok_object();
		uuid_format(q->uuid, us);
		json_object_object_add(o, "uuid", json_object_new_string(us));
		hex_add(o, "nonce", q->nonce, q->nonce_len);
		json_object_object_add(o, "vtpm_pcr_mask", json_object_new_int64(q->mask));
		vals = json_object_new_array();
		for (unsigned int i = 0; i < q->nvalues; i++) {
			char hx[65];
			for (int k = 0; k < 32; k++)
				sprintf(hx + 2 * k, "%02x", q->values[i][k]);
			json_object_array_add(vals, json_object_new_string(hx));
		}
		json_object_object_add(o, "vtpm_pcrs", vals);
		hex_add(o, "vtpm_pcr_digest", q->digest, 32);
		hex_add(o, "qualifying_data", q->qd, 32);
		json_object_object_add(o, "host_pcrs",
				       json_object_new_string(t->m->cfg->pcrs));
		hex_add(o, "attest", q->attest, q->attest_len);
		hex_add(o, "signature", q->sig, q->sig_len);
		hex_add(o, "ak_spki", q->spki, q->spki_len);
		reply(q->c, o);
	}
	free(q->attest);
	free(q->sig);
	free(q->spki);
	conn_unref(q->c);
	free(q);
}

static void cmd_quote(struct ctl_conn *c, json_object *req)
{
	struct vtpm_entry *e = entry_arg(c, req);
	struct quote_job *q;
	const char *nonce, *tr;
	json_object *v;

	if (!e)
		return;
	if (e->state != CHILD_RUNNING) {
		reply_error(c, CTL_EBUSY, "vTPM %s is not running", e->uuid_str);
		return;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		reply_error(c, CTL_EFAIL, "out of memory");
		return;
	}
	nonce = str_arg(req, "nonce");
	if (!nonce || hex_parse(nonce, q->nonce, sizeof(q->nonce), &q->nonce_len) ||
	    q->nonce_len == 0) {
		free(q);
		reply_error(c, CTL_EINVAL, "\"nonce\": 1 to %d bytes in hex",
			    MGR_NONCE_MAX);
		return;
	}
	q->mask = 0x00ffffff;
	if (json_object_object_get_ex(req, "pcr_mask", &v))
		q->mask = (uint32_t)json_object_get_int64(v) & 0x00ffffff;
	if (!q->mask) {
		free(q);
		reply_error(c, CTL_EINVAL, "empty pcr_mask");
		return;
	}
	tr = e->transport;
	if (tr[0] && strncmp(tr, "unix:", 5) != 0) {
		free(q);
		reply_error(c, CTL_EINVAL, "quote needs a unix: transport");
		return;
	}
	if (tr[0])
		snprintf(q->sock, sizeof(q->sock), "%s", tr + 5);
	else
		snprintf(q->sock, sizeof(q->sock), "%s/%s/tpm",
			 c->m->cfg->run_dir, e->uuid_str);
	memcpy(q->uuid, e->uuid, 16);
	q->c = c;
	c->refs++;
	q->task.work = quote_job_work;
	q->task.done = quote_job_done;
	mgr_task_submit(c->m, &q->task);
}

/* ---- reseal: the planned-upgrade path ---- */

struct reseal_job {
	struct mgr_task task;
	struct ctl_conn *c;
	uint32_t given;              /* PCRs with a predicted value */
	uint8_t predicted[24][32];
	uint8_t values[24][32];      /* what the new seal expects */
	unsigned int n;
};

static void reseal_work(struct mgr_task *t)
{
	struct reseal_job *r = (struct reseal_job *)t;
	struct manager *m = t->m;
	uint8_t *blob = NULL, *old = NULL;
	size_t bloblen, oldlen;
	unsigned int k = 0;
	int rc;

	rc = tss_hal_pcr_read(m->hal, &m->sel, r->values, t->err, sizeof(t->err));
	if (rc) {
		t->rc = rc;
		return;
	}
	for (unsigned int i = 0; i < 24; i++) {
		if (!(m->sel.mask & (1u << i)))
			continue;
		if (r->given & (1u << i))
			memcpy(r->values[k], r->predicted[i], 32);
		k++;
	}
	r->n = k;
	rc = tss_hal_seal(m->hal, m->root_key, KEYSTORE_ROOT_KEY_LEN, &m->sel,
			  (const uint8_t(*)[32])r->values, &blob, &bloblen,
			  t->err, sizeof(t->err));
	if (rc) {
		t->rc = rc;
		return;
	}
	/*
	 * The seal that opened this boot configuration stays as .prev, so
	 * the host can always come back to it.  A main seal that is itself
	 * only a prediction (an earlier reseal) is simply replaced.
	 */
	rc = 0;
	if (m->main_seal_verified) {
		rc = store_read(m->dirfd, "rootkey.sealed", TSS_HAL_BLOB_MAX,
				&old, &oldlen);
		if (rc == 0)
			rc = store_write_atomic(m->dirfd, "rootkey.sealed.prev",
						old, oldlen);
		free(old);
	}
	if (rc == 0)
		rc = store_write_atomic(m->dirfd, "rootkey.sealed", blob, bloblen);
	free(blob);
	if (rc) {
		t->rc = rc;
		snprintf(t->err, sizeof(t->err), "writing the sealed key: %s",
			 strerror(-rc));
		return;
	}
	/* Decided on the loop thread in reseal_done. */
}

static void reseal_done(struct mgr_task *t)
{
	struct reseal_job *r = (struct reseal_job *)t;
	json_object *o, *arr;
	char hx[65];

	if (t->rc) {
		reply_error(r->c, CTL_EFAIL, "reseal: %s", t->err);
	} else {
		/* rootkey.sealed is now a prediction until a start opens it. */
		t->m->main_seal_verified = false;
		o = ok_object();
		arr = json_object_new_array();
		for (unsigned int i = 0; i < r->n; i++) {
			for (int k = 0; k < 32; k++)
				sprintf(hx + 2 * k, "%02x", r->values[i][k]);
			json_object_array_add(arr, json_object_new_string(hx));
		}
		json_object_object_add(o, "pcrs",
				       json_object_new_string(t->m->cfg->pcrs));
		json_object_object_add(o, "sealed_to", arr);
		log_info("root key re-sealed (%u predicted PCR values); the "
			 "previous seal is kept as rootkey.sealed.prev",
			 (unsigned int)__builtin_popcount(r->given));
		reply(r->c, o);
	}
	conn_unref(r->c);
	free(r);
}

/* {"cmd":"reseal","pcr_values":{"7":"<64 hex>", ...}}: values not given
 * are the current ones. */
static void cmd_reseal(struct ctl_conn *c, json_object *req)
{
	struct reseal_job *r = calloc(1, sizeof(*r));
	json_object *vals;

	if (!r) {
		reply_error(c, CTL_EFAIL, "out of memory");
		return;
	}
	if (json_object_object_get_ex(req, "pcr_values", &vals)) {
		if (!json_object_is_type(vals, json_type_object)) {
			free(r);
			reply_error(c, CTL_EINVAL, "pcr_values: {\"N\": \"hex\"}");
			return;
		}
		json_object_object_foreach(vals, key, val) {
			long pcr;
			size_t n;

			if (config_parse_long(key, 0, 23, &pcr) ||
			    !(c->m->sel.mask & (1u << pcr)) ||
			    !json_object_is_type(val, json_type_string) ||
			    hex_parse(json_object_get_string(val), r->predicted[pcr],
				      32, &n) || n != 32) {
				free(r);
				reply_error(c, CTL_EINVAL,
					    "pcr_values: PCR %s is not in %s or its "
					    "value is not 32 bytes of hex",
					    key, c->m->cfg->pcrs);
				return;
			}
			r->given |= 1u << pcr;
		}
	}
	r->c = c;
	c->refs++;
	r->task.work = reseal_work;
	r->task.done = reseal_done;
	mgr_task_submit(c->m, &r->task);
}

/* ---- the socket ---- */

static void dispatch(struct ctl_conn *c, const char *line)
{
	json_object *req = json_tokener_parse(line);
	const char *cmd;

	c->busy = true;
	if (!req || !json_object_is_type(req, json_type_object) ||
	    !(cmd = str_arg(req, "cmd"))) {
		reply_error(c, CTL_EINVAL, "expected a JSON object with \"cmd\"");
		json_object_put(req);
		return;
	}
	if (c->m->stopping && strcmp(cmd, "status") != 0 &&
	    strcmp(cmd, "list") != 0)
		reply_error(c, CTL_EBUSY, "the manager is stopping");
	else if (strcmp(cmd, "create") == 0)
		cmd_create(c, req);
	else if (strcmp(cmd, "delete") == 0)
		cmd_delete(c, req);
	else if (strcmp(cmd, "start") == 0)
		cmd_start(c, req);
	else if (strcmp(cmd, "stop") == 0)
		cmd_stop(c, req);
	else if (strcmp(cmd, "list") == 0)
		cmd_list(c);
	else if (strcmp(cmd, "show") == 0)
		cmd_show(c, req);
	else if (strcmp(cmd, "status") == 0)
		cmd_status(c);
	else if (strcmp(cmd, "quote") == 0)
		cmd_quote(c, req);
	else if (strcmp(cmd, "reseal") == 0)
		cmd_reseal(c, req);
	else
		reply_error(c, CTL_EINVAL, "unknown command '%s'", cmd);
	json_object_put(req);
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct ctl_conn *c = h->data;

	(void)hint;
	*buf = uv_buf_init(c->buf + c->len, (unsigned int)(sizeof(c->buf) - 1 - c->len));
}

static void try_line(struct ctl_conn *c)
{
	char *nl = memchr(c->buf, '\n', c->len);
	size_t n;

	if (!nl) {
		if (c->len >= sizeof(c->buf) - 1) {
			log_warnx("control client: request line too long; closing");
			conn_close(c);
		}
		return;
	}
	*nl = '\0';
	n = (size_t)(nl - c->buf) + 1;
	uv_read_stop((uv_stream_t *)&c->pipe);
	{
		char line[LINE_MAX_BYTES];
		memcpy(line, c->buf, n);
		memmove(c->buf, c->buf + n, c->len - n);
		c->len -= n;
		dispatch(c, line);
	}
}

static void conn_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct ctl_conn *c = s->data;

	(void)buf;
	if (n < 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)n;
	try_line(c);
}

static void conn_read_start(struct ctl_conn *c)
{
	if (c->closing || c->busy)
		return;
	if (c->len && memchr(c->buf, '\n', c->len)) {
		try_line(c);
		return;
	}
	uv_read_start((uv_stream_t *)&c->pipe, conn_alloc, conn_on_read);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct manager *m = server->data;
	struct ctl_conn *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->m = m;
	c->refs = 1;
	uv_pipe_init(m->loop, &c->pipe, 0);
	c->pipe.data = c;
	c->wait.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe)) {
		conn_close(c);
		return;
	}
	conn_read_start(c);
}

int control_start(struct manager *m)
{
	static struct control ctl;
	const struct config *cfg = m->cfg;
	mode_t old;
	int rc;

	unlink(cfg->control);
	uv_pipe_init(m->loop, &ctl.server, 0);
	ctl.server.data = m;
	old = umask(0177);
	rc = uv_pipe_bind(&ctl.server, cfg->control);
	umask(old);
	if (rc) {
		log_warnx("control socket %s: %s", cfg->control, uv_strerror(rc));
		return rc;
	}
	if (cfg->socket_group[0]) {
		struct group *g = getgrnam(cfg->socket_group);
		if (!g || chown(cfg->control, (uid_t)-1, g->gr_gid) < 0 ||
		    chmod(cfg->control, 0660) < 0) {
			log_warnx("control socket group %s: cannot apply",
				  cfg->socket_group);
			return -EINVAL;
		}
	}
	rc = uv_listen((uv_stream_t *)&ctl.server, 16, on_connection);
	if (rc)
		return rc;
	ctl.open = true;
	m->control = &ctl;
	return 0;
}

void control_stop(struct manager *m)
{
	struct control *ctl = m->control;

	if (ctl && ctl->open) {
		uv_close((uv_handle_t *)&ctl->server, NULL);
		unlink(m->cfg->control);
		ctl->open = false;
	}
}
