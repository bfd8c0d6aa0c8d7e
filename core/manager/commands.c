/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control commands (control.h): each handler reads its arguments,
 * asks the module that owns the state, and shapes the answer.  vtpmctl(8)
 * documents them.
 */
#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hex.h"
#include "lib/log.h"
#include "manager/control.h"
#include "manager/manager.h"
#include "manager/migrate.h"
#include "manager/online.h"
#include "manager/quote.h"
#include "manager/rootkey.h"
#include "proto/mgrproto.h"

/* ---- arguments and answers ---- */

static void hex_add(json_object *o, const char *key, const uint8_t *b,
		    size_t n)
{
	char *s = malloc(2 * n + 1);

	if (!s)
		return;
	hex_encode(b, n, s);
	json_object_object_add(o, key, json_object_new_string(s));
	free(s);
}

/* Up to max bytes of hex, an even number of digits. */
static int hex_arg(const char *s, uint8_t *out, size_t max, size_t *n)
{
	size_t len = strlen(s);

	if (len % 2 || len / 2 > max || hex_decode(s, len, out, len / 2))
		return -EINVAL;
	*n = len / 2;
	return 0;
}

const char *ctl_str_arg(json_object *req, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(req, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

struct vtpm_entry *ctl_entry_arg(struct ctl_call *c, json_object *req)
{
	const char *us = ctl_str_arg(req, "uuid");
	uint8_t uuid[16];
	struct vtpm_entry *e;

	if (!us || uuid_parse_str(us, uuid)) {
		ctl_reply_error(c, CTL_EINVAL, "a valid \"uuid\" is required");
		return NULL;
	}
	e = mgr_entry_find(c->m, uuid);
	if (!e)
		ctl_reply_error(c, CTL_ENOENT, "no vTPM %s", us);
	return e;
}

static json_object *entry_json(struct vtpm_entry *e, bool details)
{
	struct keystore_rec *rec = keystore_find(&e->m->ks, e->rec.uuid);
	json_object *o = json_object_new_object();

	json_object_object_add(o, "uuid", json_object_new_string(e->rec.uuid_str));
	json_object_object_add(o, "domid", json_object_new_int64(e->rec.domid));
	json_object_object_add(o, "transport",
			       json_object_new_string(e->rec.transport[0]
							      ? e->rec.transport
							      : "(default)"));
	json_object_object_add(o, "allow_plaintext_state",
			       json_object_new_boolean(
				       e->rec.allow_plaintext_state));
	json_object_object_add(o, "tpm_version",
			       json_object_new_string(e->rec.tpm_version == 1
							      ? "1.2"
							      : "2.0"));
	json_object_object_add(o, "state",
			       json_object_new_string(sup_state_name(e->child.state)));
	json_object_object_add(o, "autostart",
			       json_object_new_boolean(e->rec.autostart));
	if (e->child.state == CHILD_RUNNING)
		json_object_object_add(o, "pid",
				       json_object_new_int(e->child.proc.pid));
	if (rec) {
		json_object_object_add(o, "generation",
				       json_object_new_int64((int64_t)rec->generation));
		json_object_object_add(o, "group", json_object_new_int64(rec->group));
	}
	if (details && rec) {
		json_object_object_add(o, "restarts",
				       json_object_new_int((int)e->child.restarts));
		json_object_object_add(o, "last_exit",
				       json_object_new_int(e->child.last_exit));
		hex_add(o, "state_hash", rec->state_hash, 32);
		json_object_object_add(o, "has_state",
				       json_object_new_boolean(!(rec->flags & KS_REC_NOSTATE)));
	}
	return o;
}

/* Answers once the store is durable. */
static void committed_ok(struct manager *m, int rc, void *arg)
{
	struct ctl_call *c = arg;

	(void)m;
	if (rc)
		ctl_reply_error(c, CTL_EFAIL, "cannot commit the key store");
	else
		ctl_reply(c, ctl_ok());
}

/* ---- create / delete / start / stop ---- */

struct create_ticket {
	struct ctl_call *c;
	char uuid_str[UUID_STR_LEN];
	uint8_t uuid[16];
	bool ek_cert;             /* manufacture with EK certificates */
	struct mgr_made made;
};

static void create_reply(struct create_ticket *t)
{
	json_object *o = ctl_ok();

	json_object_object_add(o, "uuid", json_object_new_string(t->uuid_str));
	json_object_object_add(o, "ek_cert", json_object_new_boolean(t->ek_cert));
	if (t->ek_cert) {
		json_object_object_add(o, "manufacture_ms",
				       json_object_new_int64(t->made.instance_ms));
		json_object_object_add(o, "manufacture_total_ms",
				       json_object_new_int64((int64_t)t->made.total_ms));
	}
	ctl_reply(t->c, o);
	free(t);
}

/* The instance that manufactured is gone again: create ends as it found
 * the vTPM, stopped. */
static void manufacture_stopped(void *arg)
{
	struct create_ticket *t = arg;

	if (t->made.rc) {
		ctl_reply_error(t->c, CTL_EFAIL, "vTPM %s created, but its "
				"manufacture failed: %s", t->uuid_str,
				t->made.err);
		free(t);
		return;
	}
	create_reply(t);
}

static void manufactured(void *arg, const struct mgr_made *r)
{
	struct create_ticket *t = arg;
	struct vtpm_entry *e = mgr_entry_find(t->c->m, t->uuid);

	t->made = *r;
	if (!e) {
		manufacture_stopped(t);
		return;
	}
	sup_stop(e);
	sup_wait_stopped(e, manufacture_stopped, t);
}

static void created(struct manager *m, int rc, void *arg)
{
	struct create_ticket *t = arg;
	struct vtpm_entry *e = mgr_entry_find(m, t->uuid);
	char err[200];

	if (rc) {
		ctl_reply_error(t->c, CTL_EFAIL, "cannot commit the key store");
		free(t);
		return;
	}
	log_info("vTPM %s created", t->uuid_str);
	if (!t->ek_cert || !e) {
		create_reply(t);
		return;
	}
	/* Manufacture now, by its instance, then stop it again; a vTPM
	 * whose instance runs in its own domain is manufactured at its
	 * first start there. */
	if (mgr_ekca_expect(e, manufactured, t, err, sizeof(err))) {
		ctl_reply_error(t->c, CTL_EFAIL, "vTPM %s created without EK "
				"certificates: %s", t->uuid_str, err);
		free(t);
		return;
	}
	if (mgr_entry_is_remote(e)) {
		e->ek.cb = NULL;
		create_reply(t);
		return;
	}
	rc = sup_start(e);
	if (rc) {
		e->ek.wanted = false;
		e->ek.cb = NULL;
		ctl_reply_error(t->c, CTL_EFAIL, "vTPM %s created, but its "
				"instance cannot start to manufacture it: %s",
				t->uuid_str, strerror(-rc));
		free(t);
	}
}

static void cmd_create(struct ctl_call *c, json_object *req)
{
	struct manager *m = c->m;
	struct vtpm_entry *e;
	struct transport_spec ts;
	uint8_t uuid[16];
	char transport[sizeof(e->rec.transport)] = "";
	long domid = 0;
	int tpm_version = 2;
	bool ek_cert = true;
	const char *s;
	json_object *v, *pv = NULL;
	bool plaintext;
	struct create_ticket *t;
	int rc;

	if ((s = ctl_str_arg(req, "uuid"))) {
		if (uuid_parse_str(s, uuid)) {
			ctl_reply_error(c, CTL_EINVAL, "bad uuid '%s'", s);
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
			ctl_reply_error(c, CTL_EINVAL, "domid out of range");
			return;
		}
		domid = (long)d;
	}
	if ((s = ctl_str_arg(req, "transport")) &&
	    strcmp(s, MGR_TRANSPORT_XEN_DOMAIN) == 0) {
		/* Its instance runs in a domain of its own and asks for its
		 * key over the ring of a vtpm device naming this UUID. */
		snprintf(transport, sizeof(transport), "%s", s);
	} else if (s) {
		if (config_parse_transport(s, &ts) ||
		    ts.kind == TRANSPORT_XEN_RING) {
			ctl_reply_error(c, CTL_EINVAL,
					"transport '%s': unix:PATH, tcp:ADDR:PORT "
					"or xen-domain "
					"(a vTPM for a Xen guest needs none: it is "
					"served on the ring when the toolstack adds "
					"a vtpm device naming its UUID)", s);
			return;
		}
		snprintf(transport, sizeof(transport), "%s", s);
	}
	if ((s = ctl_str_arg(req, "tpm_version"))) {
		if (strcmp(s, "1.2") == 0) {
			tpm_version = 1;
		} else if (strcmp(s, "2.0") != 0) {
			ctl_reply_error(c, CTL_EINVAL, "tpm_version is 2.0 or 1.2");
			return;
		}
	}
	if (json_object_object_get_ex(req, "ek_cert", &v)) {
		if (!json_object_is_type(v, json_type_boolean)) {
			ctl_reply_error(c, CTL_EINVAL, "ek_cert is true or false");
			return;
		}
		ek_cert = json_object_get_boolean(v);
	}
	if (ek_cert && !m->ekca) {
		if (json_object_object_get_ex(req, "ek_cert", &v)) {
			ctl_reply_error(c, CTL_EFAIL, "this manager has no EK "
					"CA (see its log): create with "
					"--no-ek-cert");
			return;
		}
		/* The default, where there is no CA: a vTPM without. */
		log_warnx("no EK CA: the new vTPM gets no EK certificates");
		ek_cert = false;
	}
	if (json_object_object_get_ex(req, "allow_plaintext_state", &pv) &&
	    !json_object_is_type(pv, json_type_boolean)) {
		ctl_reply_error(c, CTL_EINVAL,
				"allow_plaintext_state is true or false");
		return;
	}
	plaintext = pv && json_object_get_boolean(pv);
	rc = mgr_vtpm_create(m, uuid, tpm_version, domid, transport, &e);
	if (rc) {
		ctl_reply_error(c, rc == KS_ERR_EXISTS ? CTL_EEXIST : CTL_EFAIL,
				"%s", keystore_strerror(rc));
		return;
	}
	/* Recorded with the vTPM; its instance gets --allow-plaintext-state. */
	e->rec.allow_plaintext_state = plaintext;
	t = malloc(sizeof(*t));
	if (!t)
		fatalx("out of memory");
	memset(t, 0, sizeof(*t));
	t->c = c;
	memcpy(t->uuid_str, e->rec.uuid_str, sizeof(t->uuid_str));
	memcpy(t->uuid, e->rec.uuid, sizeof(t->uuid));
	/* TPM 1.2 has no EK certificate profile here. */
	t->ek_cert = ek_cert && tpm_version == 2;
	/* A new key: bind the store to the counter right away. */
	mgr_commit(m, true, created, t);
}

struct delete_ticket {
	struct ctl_call *c;
	uint8_t uuid[16];
};

/* The store no longer names the vTPM: now its files may go. */
static void deleted(struct manager *m, int rc, void *arg)
{
	struct delete_ticket *t = arg;

	if (!rc)
		mgr_vtpm_remove_state(m, t->uuid);
	committed_ok(m, rc, t->c);
	free(t);
}

static void cmd_delete(struct ctl_call *c, json_object *req)
{
	struct vtpm_entry *e = ctl_entry_arg(c, req);
	struct delete_ticket *t;
	uint8_t uuid[16];
	int rc;

	if (!e)
		return;
	memcpy(uuid, e->rec.uuid, 16);   /* e is gone after the delete */
	rc = mgr_vtpm_delete(c->m, e);
	if (rc == -EBUSY) {
		ctl_reply_error(c, CTL_EBUSY, "vTPM %s is %s: stop it first",
				e->rec.uuid_str,
				sup_has_waiters(e) ? "stopping"
						   : sup_state_name(e->child.state));
		return;
	}
	if (rc) {
		ctl_reply_error(c, CTL_EFAIL, "%s", keystore_strerror(rc));
		return;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		fatalx("out of memory");
	t->c = c;
	memcpy(t->uuid, uuid, 16);
	mgr_commit(c->m, true, deleted, t);
}

static const char *start_refusal(const struct vtpm_entry *e)
{
	const struct keystore_rec *r = keystore_find(&e->m->ks, e->rec.uuid);

	if (e->migrating)
		return "is being exported, imported, cloned or migrated";
	if (r && (r->flags & KS_REC_LEAVING))
		return "is migrating to another host";
	if (r && (r->flags & KS_REC_PENDING))
		return "was migrated here, pending its source's commit";
	return "was exported or migrated to another host (a tombstone; "
	       "vtpmctl show says where)";
}

static void cmd_start(struct ctl_call *c, json_object *req)
{
	struct vtpm_entry *e = ctl_entry_arg(c, req);
	int rc;

	if (!e)
		return;
	if (mgr_entry_frozen(e)) {
		ctl_reply_error(c, CTL_EBUSY, "vTPM %s %s: it does not start "
				"here", e->rec.uuid_str, start_refusal(e));
		return;
	}
	rc = mgr_vtpm_start(e);
	if (rc == -EPERM) {
		ctl_reply_error(c, CTL_EBUSY, "vTPM %s runs in its own domain "
				"(transport xen-domain): the manager does not "
				"start it", e->rec.uuid_str);
		return;
	}
	if (rc) {
		ctl_reply_error(c, CTL_EFAIL, "cannot start vTPM %s: %s",
				e->rec.uuid_str, strerror(-rc));
		return;
	}
	mgr_commit(c->m, false, committed_ok, c);
}

static void stopped(void *arg)
{
	struct ctl_call *c = arg;

	mgr_commit(c->m, false, committed_ok, c);
}

static void cmd_stop(struct ctl_call *c, json_object *req)
{
	struct vtpm_entry *e = ctl_entry_arg(c, req);

	if (e)
		mgr_vtpm_stop(e, stopped, c);
}

/* ---- list / show / status ---- */

static void cmd_list(struct ctl_call *c, json_object *req)
{
	json_object *o = ctl_ok(), *arr = json_object_new_array();
	struct vtpm_entry *e;

	(void)req;
	mgr_foreach_entry(e, c->m)
		json_object_array_add(arr, entry_json(e, false));
	json_object_object_add(o, "vtpms", arr);
	ctl_reply(c, o);
}

static void cmd_show(struct ctl_call *c, json_object *req)
{
	struct vtpm_entry *e = ctl_entry_arg(c, req);
	json_object *o;

	if (!e)
		return;
	o = ctl_ok();
	json_object_object_add(o, "vtpm", entry_json(e, true));
	mgr_migrate_show(e, json_object_object_get(o, "vtpm"));
	ctl_reply(c, o);
}

/* The physical TPM's health: a call past its deadline is reported here
 * until it returns (task.h). */
static void tpm_health_add(struct manager *m, json_object *o)
{
	const char *call;
	uint64_t since;
	char buf[160];

	if (mgr_taskq_stuck(&m->tpmq, &since, &call))
		snprintf(buf, sizeof(buf), "unresponsive since %llu s, call %s",
			 (unsigned long long)((uv_now(m->loop) - since) / 1000),
			 call);
	else
		snprintf(buf, sizeof(buf), "ok");
	json_object_object_add(o, "physical_tpm", json_object_new_string(buf));
	json_object_object_add(o, "physical_tpm_overruns",
			       json_object_new_int64((int64_t)m->tpmq.overruns));
}

static void cmd_status(struct ctl_call *c, json_object *req)
{
	struct manager *m = c->m;
	json_object *o = ctl_ok();
	struct vtpm_entry *e;
	uint64_t up = (mgr_now(m) - m->started_ms) / 1000;
	int running = 0;

	(void)req;
	mgr_foreach_entry(e, m)
		running += e->child.state == CHILD_RUNNING;
	json_object_object_add(o, "tcti", json_object_new_string(m->cfg->tcti));
	json_object_object_add(o, "pcrs", json_object_new_string(m->cfg->pcrs));
	json_object_object_add(o, "nv_index", json_object_new_int64(m->cfg->nv_index));
	json_object_object_add(o, "nv_counter",
			       json_object_new_int64((int64_t)m->tpm_counter));
	json_object_object_add(o, "counter_increments",
			       json_object_new_int64((int64_t)m->commits.increments));
	json_object_object_add(o, "counter_interval_s",
			       json_object_new_int64(m->cfg->counter_interval_s));
	json_object_object_add(o, "store_generation",
			       json_object_new_int64((int64_t)m->store_generation));
	json_object_object_add(o, "vtpms", json_object_new_int((int)m->ks.nrecs));
	json_object_object_add(o, "running", json_object_new_int(running));
	json_object_object_add(o, "uptime_s", json_object_new_int64((int64_t)up));
	hex_add(o, "ak_spki", m->ak_spki, m->ak_spki_len);
	tpm_health_add(m, o);
	ctl_reply(c, o);
}

/* ---- quote: the vTPM's PCRs, bound into a quote by the physical TPM ---- */

static void deep_quoted(void *arg, int rc, const struct mgr_deep_quote *q,
			const char *err)
{
	struct ctl_call *c = arg;
	json_object *o, *vals;
	char us[UUID_STR_LEN], hx[65];

	if (rc) {
		ctl_reply_error(c, CTL_EFAIL, "quote: %s", err);
		return;
	}
	o = ctl_ok();
	uuid_format(q->uuid, us);
	json_object_object_add(o, "uuid", json_object_new_string(us));
	hex_add(o, "nonce", q->nonce, q->nonce_len);
	json_object_object_add(o, "vtpm_pcr_mask",
			       json_object_new_int64(q->pcrs.mask));
	vals = json_object_new_array();
	for (unsigned int i = 0; i < q->pcrs.n; i++) {
		hex_encode(q->pcrs.v[i], 32, hx);
		json_object_array_add(vals, json_object_new_string(hx));
	}
	json_object_object_add(o, "vtpm_pcrs", vals);
	hex_add(o, "vtpm_pcr_digest", q->digest, 32);
	hex_add(o, "qualifying_data", q->qd, 32);
	json_object_object_add(o, "host_pcrs",
			       json_object_new_string(c->m->cfg->pcrs));
	hex_add(o, "attest", q->attest, q->attest_len);
	hex_add(o, "signature", q->sig, q->sig_len);
	hex_add(o, "ak_spki", q->spki, q->spki_len);
	ctl_reply(c, o);
}

static void cmd_quote(struct ctl_call *c, json_object *req)
{
	struct vtpm_entry *e = ctl_entry_arg(c, req);
	uint8_t nonce[MGR_NONCE_MAX];
	size_t nonce_len = 0;
	uint32_t mask = 0x00ffffff;
	const char *s;
	json_object *v;
	char err[256];
	int rc;

	if (!e)
		return;
	/* An instance in a domain of its own is no child of ours: its
	 * link says it runs. */
	if (e->child.state != CHILD_RUNNING && !e->link.ops) {
		ctl_reply_error(c, CTL_EBUSY, "vTPM %s is not running",
				e->rec.uuid_str);
		return;
	}
	s = ctl_str_arg(req, "nonce");
	if (!s || hex_arg(s, nonce, sizeof(nonce), &nonce_len) ||
	    nonce_len == 0) {
		ctl_reply_error(c, CTL_EINVAL, "\"nonce\": 1 to %d bytes in hex",
				MGR_NONCE_MAX);
		return;
	}
	if (json_object_object_get_ex(req, "pcr_mask", &v))
		mask = (uint32_t)json_object_get_int64(v) & 0x00ffffff;
	if (!mask) {
		ctl_reply_error(c, CTL_EINVAL, "empty pcr_mask");
		return;
	}
	rc = mgr_deep_quote(c->m, e, nonce, nonce_len, mask, deep_quoted, c,
			    err, sizeof(err));
	if (rc)
		ctl_reply_error(c, rc == -EINVAL ? CTL_EINVAL : CTL_EFAIL, "%s",
				err);
}

/* ---- reseal: the planned-upgrade path ---- */

static void resealed(void *arg, int rc, const struct mgr_reseal_result *r,
		     const char *err)
{
	struct ctl_call *c = arg;
	json_object *o, *arr;
	char hx[65];

	if (rc) {
		ctl_reply_error(c, CTL_EFAIL, "reseal: %s", err);
		return;
	}
	o = ctl_ok();
	arr = json_object_new_array();
	for (unsigned int i = 0; i < r->n; i++) {
		hex_encode(r->values[i], 32, hx);
		json_object_array_add(arr, json_object_new_string(hx));
	}
	json_object_object_add(o, "pcrs", json_object_new_string(c->m->cfg->pcrs));
	json_object_object_add(o, "sealed_to", arr);
	ctl_reply(c, o);
}

/* {"cmd":"reseal","pcr_values":{"7":"<64 hex>", ...}}: values not given
 * are the current ones. */
static void cmd_reseal(struct ctl_call *c, json_object *req)
{
	uint8_t predicted[24][32];
	uint32_t given = 0;
	json_object *vals;

	memset(predicted, 0, sizeof(predicted));
	if (json_object_object_get_ex(req, "pcr_values", &vals)) {
		if (!json_object_is_type(vals, json_type_object)) {
			ctl_reply_error(c, CTL_EINVAL,
					"pcr_values: {\"N\": \"hex\"}");
			return;
		}
		json_object_object_foreach(vals, key, val) {
			long pcr;
			size_t n;

			if (config_parse_long(key, 0, 23, &pcr) ||
			    !(c->m->sel.mask & (1u << pcr)) ||
			    !json_object_is_type(val, json_type_string) ||
			    hex_arg(json_object_get_string(val), predicted[pcr],
				    32, &n) || n != 32) {
				ctl_reply_error(c, CTL_EINVAL,
						"pcr_values: PCR %s is not in %s or "
						"its value is not 32 bytes of hex",
						key, c->m->cfg->pcrs);
				return;
			}
			given |= 1u << pcr;
		}
	}
	mgr_rootkey_reseal(c->m, given, (const uint8_t(*)[32])predicted,
			   resealed, c);
}

/* ---- ca-cert: the EK CA's certificate, for verifiers ---- */

static void cmd_ca_cert(struct ctl_call *c, json_object *req)
{
	char err[200], *pem;
	json_object *o;

	(void)req;
	pem = mgr_ekca_pem(c->m, err, sizeof(err));
	if (!pem) {
		ctl_reply_error(c, CTL_EFAIL, "%s", err);
		return;
	}
	o = ctl_ok();
	json_object_object_add(o, "pem", json_object_new_string(pem));
	free(pem);
	ctl_reply(c, o);
}

static void ca_answered(void *arg, int rc, const char *pem, const char *err)
{
	struct ctl_call *c = arg;
	json_object *o;

	if (rc) {
		ctl_reply_error(c, rc == -EINVAL ? CTL_EINVAL : CTL_EFAIL, "%s",
				err);
		return;
	}
	o = ctl_ok();
	json_object_object_add(o, "pem", json_object_new_string(pem));
	ctl_reply(c, o);
}

/* ca-csr: a request for the CA key, signed in the TPM, for an operator's
 * CA to make ours an intermediate. */
static void cmd_ca_csr(struct ctl_call *c, json_object *req)
{
	(void)req;
	mgr_ekca_csr(c->m, ca_answered, c);
}

/* ca-import {"pem": "..."}: the certificate the operator's CA made. */
static void cmd_ca_import(struct ctl_call *c, json_object *req)
{
	const char *pem = ctl_str_arg(req, "pem");

	if (!pem) {
		ctl_reply_error(c, CTL_EINVAL, "\"pem\": the CA certificate");
		return;
	}
	mgr_ekca_import(c->m, pem, ca_answered, c);
}

const struct ctl_command ctl_commands[] = {
	{ "create", cmd_create, false },
	{ "delete", cmd_delete, false },
	{ "start", cmd_start, false },
	{ "stop", cmd_stop, false },
	{ "list", cmd_list, true },
	{ "show", cmd_show, false },
	{ "status", cmd_status, true },
	{ "quote", cmd_quote, false },
	{ "reseal", cmd_reseal, false },
	{ "ca-cert", cmd_ca_cert, true },
	{ "ca-csr", cmd_ca_csr, false },
	{ "ca-import", cmd_ca_import, false },
	{ "migration-key", mgr_cmd_migration_key, false },
	{ "export", mgr_cmd_export, false },
	{ "import", mgr_cmd_import, false },
	{ "migrate", mgr_cmd_migrate, false },
	{ "clone", mgr_cmd_clone, false },
	{ NULL, NULL, false },
};
