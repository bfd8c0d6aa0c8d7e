/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Offline migration and clones (migrate.h, docs/migration.md).
 *
 * The migration key lives on the TPM queue: only its tasks touch
 * m->migkey.  State files are read and written on the store queue.  A
 * vTPM being exported, imported or cloned is frozen (e->migrating): it
 * does not start and its instance gets no key until the operation ends.
 * An export answers with the blob only once the tombstone is durable; an
 * import records the blob's id with the new vTPM in the same commit.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/aead.h"
#include "lib/bytes.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "lib/store.h"
#include "manager/control.h"
#include "manager/manager.h"
#include "manager/migrate.h"
#include "manager/online.h"
#include "proto/expblob.h"
#include "proto/migkey.h"
#include "proto/resumetag.h"
#include "proto/statefile.h"
#include "tss-device/tss_hal.h"

#define MIGKEY_AUTH_LEN 32
/* How far a slot may be above the record and still be the vTPM's state:
 * the instance's loader rule (instance/engine.h, ENGINE_RECORD_TRAIL),
 * which an export and a clone follow so they carry what a start would
 * load. */
#define RECORD_TRAIL 2

struct mgr_migkey {
	uint8_t *blob;           /* TPM-wrapped (migration.key) */
	size_t len;
	uint8_t name[MIGKEY_NAME_LEN];
};

void mgr_migrate_free(struct manager *m)
{
	if (m->migkey) {
		free(m->migkey->blob);
		free(m->migkey);
		m->migkey = NULL;
	}
}

bool mgr_entry_frozen(const struct vtpm_entry *e)
{
	const struct keystore_rec *r = keystore_find(&e->m->ks, e->rec.uuid);

	return e->migrating ||
	       (r && (r->flags & (KS_REC_TOMBSTONE | KS_REC_PENDING |
				  KS_REC_LEAVING)));
}

void mgr_migrate_show(const struct vtpm_entry *e, json_object *o)
{
	const struct keystore_rec *r = keystore_find(&e->m->ks, e->rec.uuid);
	json_object *to;
	char hx[2 * MIGKEY_NAME_LEN + 1];
	uint8_t name[MIGKEY_NAME_LEN];

	mgr_online_show(e, o);
	if (!r || !(r->flags & KS_REC_TOMBSTONE))
		return;
	to = json_object_new_object();
	be16_put(name, 0x000b);
	memcpy(name + 2, r->state_hash, 32);
	hex_encode(name, sizeof(name), hx);
	json_object_object_add(to, "key_name", json_object_new_string(hx));
	hex_encode(r->state_key, 32, hx);
	json_object_object_add(to, "ak_sha256", json_object_new_string(hx));
	json_object_object_add(o, "exported_to", to);
}

/* ---- arguments ---- */

/* key's hex string, 1..max bytes, into a malloc'd buffer. */
static int hex_field(json_object *o, const char *key, size_t max,
		     uint8_t **out, size_t *n)
{
	const char *s = ctl_str_arg(o, key);
	size_t len;

	*out = NULL;
	*n = 0;
	if (!s)
		return -ENOENT;
	len = strlen(s);
	if (len == 0 || len % 2 || len / 2 > max)
		return -EINVAL;
	*out = malloc(len / 2);
	if (!*out)
		return -ENOMEM;
	if (hex_decode(s, len, *out, len / 2)) {
		free(*out);
		*out = NULL;
		return -EINVAL;
	}
	*n = len / 2;
	return 0;
}

static void hex_add(json_object *o, const char *key, const uint8_t *b,
		    size_t n)
{
	char *s = malloc(2 * n + 1);

	if (!s)
		fatalx("out of memory");
	hex_encode(b, n, s);
	json_object_object_add(o, key, json_object_new_string(s));
	free(s);
}

/* A vTPM whose state this manager may read now: stopped, here, whole. */
static bool entry_quiet(struct ctl_call *c, struct vtpm_entry *e,
			const char *what)
{
	const struct keystore_rec *r = keystore_find(&c->m->ks, e->rec.uuid);
	char hx[2 * MIGKEY_NAME_LEN + 1];
	uint8_t name[MIGKEY_NAME_LEN];

	if (r && (r->flags & KS_REC_TOMBSTONE)) {
		be16_put(name, 0x000b);
		memcpy(name + 2, r->state_hash, 32);
		hex_encode(name, sizeof(name), hx);
		ctl_reply_error(c, CTL_EBUSY, "cannot %s vTPM %s: it was "
				"exported to migration key %s and is only a "
				"tombstone here (vtpmctl delete removes it)",
				what, e->rec.uuid_str, hx);
		return false;
	}
	if (e->migrating || (r && (r->flags & (KS_REC_PENDING |
						 KS_REC_LEAVING)))) {
		ctl_reply_error(c, CTL_EBUSY, "cannot %s vTPM %s: an export, "
				"import, clone or online migration of it is "
				"under way", what, e->rec.uuid_str);
		return false;
	}
	if (mgr_entry_is_remote(e)) {
		ctl_reply_error(c, CTL_EBUSY, "cannot %s vTPM %s: it runs in "
				"its own domain, its state is not on this "
				"host's disk", what, e->rec.uuid_str);
		return false;
	}
	if (!sup_stopped(e) || sup_has_waiters(e) || e->link.ops) {
		ctl_reply_error(c, CTL_EBUSY, "cannot %s vTPM %s: it is %s: "
				"stop it first", what, e->rec.uuid_str,
				sup_has_waiters(e) ? "stopping"
						   : sup_state_name(e->child.state));
		return false;
	}
	return true;
}

/* ---- one operation: export, import or clone ---- */

enum mig_kind { MIG_KEY, MIG_EXPORT, MIG_IMPORT, MIG_CLONE,
	/* for online.c: certify, read and seal, import as pending */
	MIG_ONLINE_KEY, MIG_ONLINE_OUT, MIG_ONLINE_IN };

struct mig_op {
	struct mgr_task task;
	enum mig_kind kind;
	struct ctl_call *c;
	bool answered;            /* the TPM deadline answered already */
	uint64_t t0_ms;
	/* the vTPM read (export, clone source) or written (import, clone) */
	uint8_t uuid[16];
	char uuid_str[UUID_STR_LEN];
	uint8_t family;
	uint64_t generation;
	uint32_t flags;           /* KS_REC_* of the source */
	bool plaintext;
	uint8_t state_key[32];
	uint8_t state_hash[32];
	struct expblob_body body; /* the permanent state, in the clear */
	/* migration key (TPM queue) */
	uint8_t auth[MIGKEY_AUTH_LEN];
	uint8_t *pub, *attest, *sig;
	size_t pub_len, attest_len, sig_len;
	uint8_t key_name[MIGKEY_NAME_LEN];
	/* export: the destination; import: the blob */
	struct migkey dest;
	uint8_t *blob;
	size_t blob_len;
	struct expblob_hdr hdr;
	uint8_t aes[EXPBLOB_KEY_LEN];
	/* a new vTPM's state file (import, clone) */
	uint8_t new_hash[32];
	size_t state_file_len;
	/* online.c's requests: called instead of a control reply */
	mgr_online_cb cb;
	void *cb_arg;
	uint8_t txid[16];
	uint8_t peer_ak[32];
};

static void op_free(struct mig_op *op)
{
	expblob_body_free(&op->body);
	free(op->pub);
	free(op->attest);
	free(op->sig);
	free(op->blob);
	OPENSSL_cleanse(op, sizeof(*op));
	free(op);
}

static struct mig_op *op_new(struct ctl_call *c, enum mig_kind kind)
{
	struct mig_op *op = calloc(1, sizeof(*op));

	if (!op)
		fatalx("out of memory");
	op->c = c;
	op->kind = kind;
	op->t0_ms = mgr_now(c->m);
	return op;
}

static bool online(const struct mig_op *op)
{
	return op->kind >= MIG_ONLINE_KEY;
}

/* The end of an online request: its callback hears rc and what there is. */
static void online_end(struct mig_op *op, int rc, const char *err)
{
	struct mgr_online_res r = {
		.rc = rc,
		.err = err ? err : "",
		.pub = op->pub, .pub_len = op->pub_len,
		.attest = op->attest, .attest_len = op->attest_len,
		.sig = op->sig, .sig_len = op->sig_len,
		.blob = op->blob, .blob_len = op->blob_len,
		.generation = op->generation,
		.had_volatile = op->body.vol_len != 0,
	};

	op->cb(op->cb_arg, &r);
	op_free(op);
}

/* A refusal or failure: the control client's, or online.c's. */
static void op_fail(struct mig_op *op, enum ctl_code code, const char *fmt,
		    ...) __attribute__((format(printf, 3, 4)));
static void op_fail(struct mig_op *op, enum ctl_code code, const char *fmt,
		    ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (online(op)) {
		online_end(op, code == CTL_EFAIL ? -EIO : -EPERM, msg);
		return;
	}
	ctl_reply_error(op->c, code, "%s", msg);
	op_free(op);
}

static void unfreeze(struct manager *m, const uint8_t uuid[16])
{
	struct vtpm_entry *e = mgr_entry_find(m, uuid);

	if (e)
		e->migrating = false;
}

/* The auth value of the migration key: only a manager that unsealed the
 * store can use the key. */
static int migkey_auth(struct manager *m, uint8_t auth[MIGKEY_AUTH_LEN])
{
	if (aead_hkdf_sha256(m->root_key, KEYSTORE_ROOT_KEY_LEN,
			     "vtpm-service migration key auth v1", auth,
			     MIGKEY_AUTH_LEN))
		return -EIO;
	/* The TPM drops trailing zero bytes of an auth value. */
	auth[MIGKEY_AUTH_LEN - 1] |= 1;
	return 0;
}

/* The name of a key blob's public area (VTPMMKEY header, then the
 * TPM2B_PUBLIC). */
static int blob_name(const uint8_t *blob, size_t len,
		     uint8_t name[MIGKEY_NAME_LEN], char *err, size_t errlen)
{
	const size_t off = 8 + 2 + TSS_HAL_NAME_LEN;
	struct migkey k;
	size_t n;
	int rc;

	if (len < off + 2)
		return -EINVAL;
	n = 2 + (size_t)be16_get(blob + off);
	if (n > len - off)
		return -EINVAL;
	rc = migkey_parse_public(blob + off, n, &k, err, errlen);
	if (!rc)
		memcpy(name, k.name, MIGKEY_NAME_LEN);
	return rc;
}

/* TPM queue: the key from migration.key, or a new one (also when the
 * old one was made under another storage key: the owner hierarchy was
 * cleared, and blobs sealed to the old key are lost with it). */
static int migkey_ensure(struct mig_op *op)
{
	struct manager *m = op->task.m;
	struct mgr_migkey *k = m->migkey;
	uint8_t pname[TSS_HAL_NAME_LEN];
	char *err = op->task.err;
	size_t errlen = sizeof(op->task.err);
	int rc;

	if (k)
		return 0;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	/* A TPM that cannot name its storage key now is no reason to
	 * replace the migration key: fail, and try again next time. */
	rc = tss_hal_primary_name(m->hal, pname, err, errlen);
	if (rc) {
		free(k);
		return rc;
	}
	rc = store_read(m->dirfd, MIGKEY_FILE, TSS_HAL_BLOB_MAX, &k->blob,
			&k->len);
	if (rc == 0 && (k->len < 10 + TSS_HAL_NAME_LEN ||
			memcmp(k->blob + 10, pname, TSS_HAL_NAME_LEN) != 0)) {
		log_warnx("%s: made under another storage key (the TPM's "
			  "owner hierarchy was cleared): a new migration key",
			  MIGKEY_FILE);
		free(k->blob);
		k->blob = NULL;
		rc = -ENOENT;
	}
	if (rc == -ENOENT) {
		rc = tss_hal_migkey_create(m->hal, op->auth, sizeof(op->auth),
					   &k->blob, &k->len, err, errlen);
		if (!rc) {
			rc = store_write_atomic(m->dirfd, MIGKEY_FILE, k->blob,
						k->len);
			if (rc)
				snprintf(err, errlen, "%s: %s", MIGKEY_FILE,
					 strerror(-rc));
			else
				log_info("migration key: new RSA-2048 key in "
					 "the physical TPM (%s)", MIGKEY_FILE);
		}
	} else if (rc) {
		snprintf(err, errlen, "%s: %s", MIGKEY_FILE, strerror(-rc));
	}
	if (!rc && blob_name(k->blob, k->len, k->name, err, errlen))
		rc = -EINVAL;
	if (rc) {
		free(k->blob);
		free(k);
		return rc;
	}
	m->migkey = k;
	return 0;
}

static void migkey_work(struct mgr_task *t)
{
	struct mig_op *op = (struct mig_op *)t;
	struct manager *m = t->m;
	uint8_t qd[32];
	size_t n = sizeof(op->aes);

	t->rc = migkey_ensure(op);
	if (t->rc)
		return;
	memcpy(op->key_name, m->migkey->name, MIGKEY_NAME_LEN);
	if (op->kind == MIG_KEY || op->kind == MIG_ONLINE_KEY) {
		migkey_qd(qd);
		t->rc = tss_hal_migkey_certify(m->hal, m->migkey->blob,
					       m->migkey->len, op->auth,
					       sizeof(op->auth), qd, &op->pub,
					       &op->pub_len, &op->attest,
					       &op->attest_len, &op->sig,
					       &op->sig_len, t->err,
					       sizeof(t->err));
		return;
	}
	/* MIG_IMPORT */
	if (memcmp(op->hdr.dest_name, op->key_name, MIGKEY_NAME_LEN) != 0) {
		t->rc = -EXDEV;
		return;
	}
	t->rc = tss_hal_migkey_decrypt(m->hal, m->migkey->blob, m->migkey->len,
				       op->auth, sizeof(op->auth),
				       MIGKEY_OAEP_LABEL, op->hdr.wrapped,
				       sizeof(op->hdr.wrapped), op->aes, &n,
				       t->err, sizeof(t->err));
	if (!t->rc && n != sizeof(op->aes)) {
		snprintf(t->err, sizeof(t->err), "the wrapped key is %zu "
			 "bytes, not %zu", n, sizeof(op->aes));
		t->rc = -EBADMSG;
	}
}

static void migkey_expire(struct mgr_task *t, int rc, const char *err)
{
	struct mig_op *op = (struct mig_op *)t;

	op->answered = true;
	if (op->kind == MIG_IMPORT)
		unfreeze(t->m, op->uuid);
	if (online(op)) {
		struct mgr_online_res r = { .rc = rc, .err = err };

		op->cb(op->cb_arg, &r);
		return;
	}
	ctl_reply_error(op->c, CTL_EFAIL, "physical TPM: %s (%s)", err,
			strerror(-rc));
}

static void submit_tpm(struct manager *m, struct mig_op *op,
		       void (*done)(struct mgr_task *t), const char *call)
{
	if (migkey_auth(m, op->auth)) {
		op_fail(op, CTL_EFAIL, "cannot derive the migration key's auth "
			"value");
		return;
	}
	op->task.work = migkey_work;
	op->task.done = done;
	op->task.expire = migkey_expire;
	op->task.call = call;
	mgr_tpm_submit(m, &op->task);
}

/* ---- migration-key ---- */

static void migkey_done(struct mgr_task *t)
{
	struct mig_op *op = (struct mig_op *)t;
	struct manager *m = t->m;
	json_object *o;

	if (op->answered) {
		op_free(op);
		return;
	}
	if (t->rc) {
		ctl_reply_error(op->c, CTL_EFAIL, "migration key: %s",
				t->err[0] ? t->err : strerror(-t->rc));
		op_free(op);
		return;
	}
	o = ctl_ok();
	json_object_object_add(o, "format",
			       json_object_new_string("vtpm-service migration key v1"));
	hex_add(o, "key_name", op->key_name, sizeof(op->key_name));
	hex_add(o, "key_public", op->pub, op->pub_len);
	hex_add(o, "attest", op->attest, op->attest_len);
	hex_add(o, "signature", op->sig, op->sig_len);
	hex_add(o, "ak_spki", m->ak_spki, m->ak_spki_len);
	ctl_reply(op->c, o);
	op_free(op);
}

void mgr_cmd_migration_key(struct ctl_call *c, json_object *req)
{
	(void)req;
	if (!c->m->hal || !c->m->ak_spki) {
		ctl_reply_error(c, CTL_EFAIL, "this manager has no physical "
				"TPM attestation key");
		return;
	}
	submit_tpm(c->m, op_new(c, MIG_KEY), migkey_done,
		   "TPM2_Certify (migration key)");
}

/* ---- reading and writing a vTPM's state (store queue) ---- */

static int vtpm_dir(struct manager *m, const char *us, bool create, int *dfd)
{
	int vfd, rc;

	rc = store_dir_open(m->dirfd, "vtpms", create ? 0711 : 0, &vfd);
	if (rc)
		return rc;
	rc = store_dir_open(vfd, us, create ? 0700 : 0, dfd);
	if (!rc && create && (fsync(vfd) < 0 || fsync(m->dirfd) < 0))
		rc = -errno;
	close(vfd);
	if (rc && create && *dfd >= 0) {
		close(*dfd);
		*dfd = -1;
	}
	return rc;
}

/* Decodes the sealed state at buf, which must be the committed one. */
static int open_sealed(struct mig_op *op, const struct state_keys *keys,
		       const uint8_t *buf, size_t len)
{
	struct statefile_expect exp = { .check_uuid = 1 };
	struct statefile_meta meta;
	struct statefile_blobs blobs = { 0 };
	int rc;

	memcpy(exp.uuid, op->uuid, 16);
	exp.family = op->family;
	rc = statefile_decode(keys, buf, len, &exp, &meta, &blobs);
	if (rc) {
		snprintf(op->task.err, sizeof(op->task.err), "%s",
			 statefile_strerror(rc));
		return -EBADMSG;
	}
	if (meta.generation != op->generation ||
	    !blobs.data[SF_BLOB_PERMANENT]) {
		statefile_blobs_free(&blobs);
		snprintf(op->task.err, sizeof(op->task.err), "the committed "
			 "state holds no permanent state of generation %llu",
			 (unsigned long long)op->generation);
		return -EBADMSG;
	}
	/* Only the permanent state travels: the copy starts as after a
	 * power cycle. */
	op->body.state = blobs.data[SF_BLOB_PERMANENT];
	op->body.state_len = blobs.len[SF_BLOB_PERMANENT];
	blobs.data[SF_BLOB_PERMANENT] = NULL;
	/* Online, the volatile state the stopped instance saved, with its
	 * tag, travels too. */
	if (op->kind == MIG_ONLINE_OUT && blobs.data[SF_BLOB_VOLATILE] &&
	    blobs.len[SF_BLOB_VOLATILE] <= EXPBLOB_MAX_STATE &&
	    blobs.len[SF_BLOB_RESUME] <= EXPBLOB_MAX_TAG) {
		op->body.vol = blobs.data[SF_BLOB_VOLATILE];
		op->body.vol_len = blobs.len[SF_BLOB_VOLATILE];
		blobs.data[SF_BLOB_VOLATILE] = NULL;
		if (blobs.len[SF_BLOB_RESUME])
			memcpy(op->body.tag, blobs.data[SF_BLOB_RESUME],
			       blobs.len[SF_BLOB_RESUME]);
		op->body.tag_len = blobs.len[SF_BLOB_RESUME];
	}
	statefile_blobs_free(&blobs);
	return 0;
}

/* The state the key store recorded (its hash), from the slot file or
 * from the older pair of files, decrypted. */
static int read_state(struct mig_op *op)
{
	struct manager *m = op->task.m;
	struct statefile_expect exp = { .check_uuid = 1 };
	struct state_keys keys;
	struct slotfile_view v;
	uint8_t *buf = NULL, digest[32];
	size_t len;
	char name[200];
	int dfd = -1, rc, i;

	rc = vtpm_dir(m, op->uuid_str, false, &dfd);
	if (rc) {
		snprintf(op->task.err, sizeof(op->task.err), "vtpms/%s: %s",
			 op->uuid_str, strerror(-rc));
		return rc;
	}
	if (state_keys_derive(op->state_key, &keys)) {
		close(dfd);
		return -EIO;
	}
	memcpy(exp.uuid, op->uuid, 16);
	exp.family = op->family;
	rc = -ENOENT;
	for (i = 0; i < 2 && rc; i++) {
		snprintf(name, sizeof(name), "vtpm-%s.state.%d", op->uuid_str,
			 i);
		free(buf);
		buf = NULL;
		if (store_read(dfd, name, SLOTFILE_MAX_LEN, &buf, &len))
			continue;
		if (i == 0 && slotfile_is_slotfile(buf, len)) {
			int s = -1;

			if (slotfile_scan(&keys, buf, len, &exp, &v) != SF_OK)
				break;
			/* The newest authentic slot, if it is the recorded
			 * state or a state whose record trailed (the loader's
			 * rule): older or further ahead is refused. */
			for (int j = 0; j < (int)v.nslots; j++)
				if (v.slot[j].kind == SLOT_VALID &&
				    (s < 0 || v.slot[j].generation >
						      v.slot[s].generation))
					s = j;
			if (s >= 0 &&
			    ((v.slot[s].generation == op->generation &&
			      CRYPTO_memcmp(v.slot[s].hash, op->state_hash,
					    32) == 0) ||
			     (v.slot[s].generation > op->generation &&
			      v.slot[s].generation - op->generation <=
				      RECORD_TRAIL))) {
				op->generation = v.slot[s].generation;
				rc = open_sealed(op, &keys,
						 buf + v.slot[s].offset,
						 v.slot[s].sealed_len);
			}
			break;
		}
		SHA256(buf, len, digest);
		if (CRYPTO_memcmp(digest, op->state_hash, 32) == 0)
			rc = open_sealed(op, &keys, buf, len);
	}
	if (rc == -ENOENT)
		snprintf(op->task.err, sizeof(op->task.err), "no state file "
			 "of vtpms/%s is the state the key store recorded "
			 "(generation %llu)", op->uuid_str,
			 (unsigned long long)op->generation);
	if (buf) {
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
	state_keys_wipe(&keys);
	close(dfd);
	return rc;
}

/* A new vTPM's state: the permanent state under its new key, as the
 * first file of the pair (the instance converts it to a slot file at
 * its first write).  op->new_hash: what the key store records. */
static int write_state(struct mig_op *op)
{
	struct manager *m = op->task.m;
	struct statefile_meta meta = { .family = op->family };
	struct statefile_blobs blobs = { 0 };
	struct state_keys keys;
	uint8_t *file = NULL;
	size_t len;
	char name[200];
	int dfd = -1, rc;

	memcpy(meta.uuid, op->uuid, 16);
	meta.generation = op->generation;
	blobs.data[SF_BLOB_PERMANENT] = op->body.state;
	blobs.len[SF_BLOB_PERMANENT] = op->body.state_len;
	if (op->body.vol_len) {
		/* A Xen domain's tag stays (its restore on this host resumes
		 * it); any other becomes this transaction's. */
		struct resume_tag xt;

		if (resumetag_decode(op->body.tag, op->body.tag_len, &xt)) {
			migtag_encode(op->txid, op->body.tag);
			op->body.tag_len = MIGTAG_LEN;
		}
		blobs.data[SF_BLOB_VOLATILE] = op->body.vol;
		blobs.len[SF_BLOB_VOLATILE] = op->body.vol_len;
		blobs.data[SF_BLOB_RESUME] = op->body.tag;
		blobs.len[SF_BLOB_RESUME] = op->body.tag_len;
	}
	if (state_keys_derive(op->state_key, &keys))
		return -EIO;
	rc = statefile_encode(&keys, &meta, &blobs, &file, &len);
	state_keys_wipe(&keys);
	if (rc) {
		snprintf(op->task.err, sizeof(op->task.err), "%s",
			 statefile_strerror(rc));
		return -EIO;
	}
	SHA256(file, len, op->new_hash);
	op->state_file_len = len;
	rc = vtpm_dir(m, op->uuid_str, true, &dfd);
	if (!rc) {
		snprintf(name, sizeof(name), "vtpm-%s.state.0", op->uuid_str);
		rc = store_write_atomic(dfd, name, file, len);
		close(dfd);
	}
	if (rc)
		snprintf(op->task.err, sizeof(op->task.err), "vtpms/%s: %s",
			 op->uuid_str, strerror(-rc));
	free(file);
	return rc;
}

/* ---- export ---- */

static void export_work(struct mgr_task *t)
{
	struct mig_op *op = (struct mig_op *)t;

	if (!(op->flags & KS_REC_NOSTATE)) {
		t->rc = read_state(op);
		if (t->rc)
			return;
	}
	op->body.family = op->family;
	op->body.flags = (op->flags & KS_REC_NOSTATE ? EXPBLOB_F_NOSTATE : 0) |
			 (op->plaintext ? EXPBLOB_F_PLAINTEXT : 0) |
			 (op->body.vol_len ? EXPBLOB_F_VOLATILE : 0);
	memcpy(op->hdr.uuid, op->uuid, 16);
	op->hdr.generation = op->generation;
	memcpy(op->hdr.dest_name, op->dest.name, MIGKEY_NAME_LEN);
	if (RAND_priv_bytes(op->aes, sizeof(op->aes)) != 1 ||
	    migkey_wrap(&op->dest, op->aes, sizeof(op->aes), op->hdr.wrapped)) {
		snprintf(t->err, sizeof(t->err), "cannot wrap the blob key "
			 "to the destination's key");
		t->rc = -EIO;
		return;
	}
	t->rc = expblob_seal(&op->hdr, op->aes, &op->body, &op->blob,
			     &op->blob_len);
	OPENSSL_cleanse(op->aes, sizeof(op->aes));
	if (t->rc)
		snprintf(t->err, sizeof(t->err), "cannot seal the blob: %s",
			 strerror(-t->rc));
}

static void exported(struct manager *m, int rc, void *arg)
{
	struct mig_op *op = arg;
	json_object *o;
	char hx[2 * MIGKEY_NAME_LEN + 1];

	unfreeze(m, op->uuid);
	if (rc) {
		ctl_reply_error(op->c, CTL_EFAIL, "cannot commit the key store: "
				"the blob is not handed out");
		op_free(op);
		return;
	}
	hex_encode(op->dest.name, MIGKEY_NAME_LEN, hx);
	log_info("vTPM %s exported (generation %llu, %zu bytes) to migration "
		 "key %s: a tombstone remains", op->uuid_str,
		 (unsigned long long)op->generation, op->blob_len, hx);
	o = ctl_ok();
	json_object_object_add(o, "uuid", json_object_new_string(op->uuid_str));
	json_object_object_add(o, "generation",
			       json_object_new_int64((int64_t)op->generation));
	json_object_object_add(o, "bytes",
			       json_object_new_int64((int64_t)op->blob_len));
	json_object_object_add(o, "export_ms",
			       json_object_new_int64((int64_t)(mgr_now(m) -
							       op->t0_ms)));
	hex_add(o, "blob", op->blob, op->blob_len);
	ctl_reply(op->c, o);
	op_free(op);
}

static void export_done(struct mgr_task *t)
{
	struct mig_op *op = (struct mig_op *)t;
	struct manager *m = t->m;
	struct vtpm_entry *e = mgr_entry_find(m, op->uuid);
	struct keystore_rec *r = keystore_find(&m->ks, op->uuid);

	if (online(op)) {
		/* online.c writes the tombstone at its commit point. */
		online_end(op, t->rc ? t->rc : (!e || !r) ? -ENOENT : 0,
			   t->rc ? t->err : "it vanished");
		return;
	}
	expblob_body_free(&op->body);
	if (t->rc || !e || !r) {
		unfreeze(m, op->uuid);
		ctl_reply_error(op->c, CTL_EFAIL, "export of vTPM %s: %s",
				op->uuid_str, t->rc ? t->err : "it vanished");
		op_free(op);
		return;
	}
	/* The tombstone: no key, only where it went, and the generation
	 * it left with. */
	r->flags = KS_REC_TOMBSTONE;
	r->generation = op->generation;
	memcpy(r->state_hash, op->dest.name + 2, 32);
	memcpy(r->state_key, op->dest.ak_sha256, 32);
	e->rec.autostart = false;
	m->entries_dirty = true;
	mgr_commit(m, true, exported, op);
}

/* What an export, a clone or an online move takes from the vTPM's entry
 * and its key store record. */
static void op_fill(struct mig_op *op, const struct vtpm_entry *e,
		    const struct keystore_rec *r)
{
	memcpy(op->uuid, e->rec.uuid, 16);
	memcpy(op->uuid_str, e->rec.uuid_str, sizeof(op->uuid_str));
	op->family = r->tpm_version;
	op->generation = r->generation;
	op->flags = r->flags;
	op->plaintext = e->rec.allow_plaintext_state;
	memcpy(op->state_key, r->state_key, 32);
	memcpy(op->state_hash, r->state_hash, 32);
}

void mgr_cmd_export(struct ctl_call *c, json_object *req)
{
	struct manager *m = c->m;
	struct vtpm_entry *e = ctl_entry_arg(c, req);
	struct keystore_rec *r;
	uint8_t *pub = NULL, *att = NULL, *sig = NULL, *ak = NULL, *pin = NULL;
	size_t publen, attlen, siglen, aklen, pinlen = 0;
	json_object *dest;
	struct mig_op *op;
	char err[256];
	int rc;

	if (!e || !entry_quiet(c, e, "export"))
		return;
	if (!json_object_object_get_ex(req, "dest", &dest) ||
	    !json_object_is_type(dest, json_type_object)) {
		ctl_reply_error(c, CTL_EINVAL, "\"dest\": the destination's "
				"migration key (vtpmctl migration-key)");
		return;
	}
	op = op_new(c, MIG_EXPORT);
	rc = hex_field(dest, "key_public", MIGKEY_PUBLIC_MAX, &pub, &publen);
	if (!rc)
		rc = hex_field(dest, "attest", MIGKEY_ATTEST_MAX, &att, &attlen);
	if (!rc)
		rc = hex_field(dest, "signature", MIGKEY_SIG_MAX, &sig, &siglen);
	if (!rc)
		rc = hex_field(dest, "ak_spki", MIGKEY_SPKI_MAX, &ak, &aklen);
	if (!rc && ctl_str_arg(req, "ak_spki_pinned"))
		rc = hex_field(req, "ak_spki_pinned", MIGKEY_SPKI_MAX, &pin,
			       &pinlen);
	if (rc) {
		ctl_reply_error(c, CTL_EINVAL, "destination: key_public, attest, "
				"signature and ak_spki must be hex strings "
				"(and ak_spki_pinned, when given)");
		goto out;
	}
	rc = migkey_verify(pub, publen, att, attlen, sig, siglen, ak, aklen,
			   pin, pinlen, &op->dest, err, sizeof(err));
	if (rc) {
		ctl_reply_error(c, CTL_EINVAL, "refusing to export vTPM %s: %s",
				e->rec.uuid_str, err);
		goto out;
	}
	r = keystore_find(&m->ks, e->rec.uuid);
	op_fill(op, e, r);
	SHA256(m->ak_spki, m->ak_spki_len, op->body.src_ak_sha256);
	e->migrating = true;
	op->task.work = export_work;
	op->task.done = export_done;
	mgr_task_submit(m, &op->task);
	op = NULL;
out:
	free(pub);
	free(att);
	free(sig);
	free(ak);
	free(pin);
	if (op)
		op_free(op);
}

/* ---- import and clone: a new vTPM from a permanent state ---- */

static void created_committed(struct manager *m, int rc, void *arg)
{
	struct mig_op *op = arg;
	json_object *o;

	unfreeze(m, op->uuid);
	if (rc) {
		op_fail(op, CTL_EFAIL, "cannot commit the key store");
		return;
	}
	if (online(op)) {
		log_info("vTPM %s imported by online migration, pending its "
			 "commit (generation %llu%s)", op->uuid_str,
			 (unsigned long long)op->generation,
			 op->body.vol_len ? ", volatile state included" : "");
		online_end(op, 0, NULL);
		return;
	}
	log_info("vTPM %s %s (generation %llu)", op->uuid_str,
		 op->kind == MIG_IMPORT ? "imported" : "cloned",
		 (unsigned long long)op->generation);
	o = ctl_ok();
	json_object_object_add(o, "uuid", json_object_new_string(op->uuid_str));
	json_object_object_add(o, "generation",
			       json_object_new_int64((int64_t)op->generation));
	json_object_object_add(o, op->kind == MIG_IMPORT ? "import_ms"
							 : "clone_ms",
			       json_object_new_int64((int64_t)(mgr_now(m) -
							       op->t0_ms)));
	ctl_reply(op->c, o);
	op_free(op);
}

/* The new vTPM's record takes its state (or none), and an import its
 * blob's id, in one commit. */
static void new_vtpm_commit(struct manager *m, struct mig_op *op)
{
	struct keystore_rec *r = keystore_find(&m->ks, op->uuid);
	int rc = 0;

	if (op->body.state_len) {
		r->generation = op->generation;
		memcpy(r->state_hash, op->new_hash, 32);
		r->flags &= ~KS_REC_NOSTATE;
	}
	if (op->kind == MIG_IMPORT || op->kind == MIG_ONLINE_IN)
		rc = keystore_import_add(&m->ks, op->hdr.id);
	if (op->kind == MIG_ONLINE_IN && !rc) {
		struct keystore_tx tx = { .state = KS_TX_IN_PENDING };

		memcpy(tx.uuid, op->uuid, 16);
		memcpy(tx.txid, op->txid, 16);
		memcpy(tx.peer_ak_sha256, op->peer_ak, 32);
		r->flags |= KS_REC_PENDING;
		rc = keystore_tx_put(&m->ks, &tx);
	}
	if (rc)
		log_warnx("vTPM %s: cannot record the blob as imported: %s",
			  op->uuid_str, keystore_strerror(rc));
	mgr_commit(m, true, created_committed, op);
}

static void write_work(struct mgr_task *t)
{
	struct mig_op *op = (struct mig_op *)t;

	t->rc = write_state(op);
}

/* The new vTPM is gone from the durable store: its files may go too. */
static void abandoned(struct manager *m, int rc, void *arg)
{
	struct mig_op *op = arg;

	if (!rc)
		mgr_vtpm_remove_state(m, op->uuid);
	op_fail(op, CTL_EFAIL, "cannot write the state of vTPM %s: %s",
		op->uuid_str, op->task.err);
}

static void write_done(struct mgr_task *t)
{
	struct mig_op *op = (struct mig_op *)t;
	struct manager *m = t->m;
	struct vtpm_entry *e = mgr_entry_find(m, op->uuid);

	if (t->rc || !e) {
		if (!t->rc)
			snprintf(t->err, sizeof(t->err), "it vanished");
		if (e) {
			e->migrating = false;
			if (mgr_vtpm_delete(m, e) == 0) {
				mgr_commit(m, false, abandoned, op);
				return;
			}
		}
		abandoned(m, -1, op);
		return;
	}
	new_vtpm_commit(m, op);
}

/* Creates the entry and record (new key, uid as create allocates), then
 * writes its state on the store queue. */
static void new_vtpm(struct manager *m, struct mig_op *op)
{
	struct vtpm_entry *e;
	struct keystore_rec *r;
	int rc;

	rc = mgr_vtpm_create(m, op->uuid, op->family, 0, "", &e);
	if (rc) {
		op_fail(op, rc == KS_ERR_EXISTS ? CTL_EEXIST : CTL_EFAIL,
			"vTPM %s: %s", op->uuid_str, keystore_strerror(rc));
		return;
	}
	e->migrating = true;
	e->rec.allow_plaintext_state = op->plaintext;
	if (!op->body.state_len) {
		new_vtpm_commit(m, op);
		return;
	}
	r = keystore_find(&m->ks, op->uuid);
	memcpy(op->state_key, r->state_key, 32);
	memset(&op->task, 0, sizeof(op->task));
	op->task.work = write_work;
	op->task.done = write_done;
	mgr_task_submit(m, &op->task);
}

/* ---- import ---- */

/* Refusals that hold before and after the TPM's part: nothing changed.
 * CTL_OK, or the code with msg set.  Online, a pending import of an
 * earlier transaction gives way too (its source aborted it). */
static enum ctl_code import_refusal(struct manager *m, struct mig_op *op,
				    char *msg, size_t len)
{
	struct vtpm_entry *e = mgr_entry_find(m, op->hdr.uuid);
	const struct keystore_rec *r = keystore_find(&m->ks, op->hdr.uuid);
	uint32_t replaceable = KS_REC_TOMBSTONE |
			       (online(op) ? KS_REC_PENDING : 0);
	char hx[2 * EXPBLOB_ID_LEN + 1];

	if (keystore_import_has(&m->ks, op->hdr.id)) {
		hex_encode(op->hdr.id, EXPBLOB_ID_LEN, hx);
		snprintf(msg, len, "refusing the blob: it was imported here "
			 "before (blob id %s); a blob is imported once, even "
			 "after its vTPM was deleted", hx);
		return CTL_EEXIST;
	}
	if (e && e->migrating) {
		snprintf(msg, len, "vTPM %s: an export, import, clone or "
			 "migration of it is under way", e->rec.uuid_str);
		return CTL_EBUSY;
	}
	if (r && !(r->flags & replaceable)) {
		snprintf(msg, len, "refusing the blob: vTPM %s already exists "
			 "here", op->uuid_str);
		return CTL_EEXIST;
	}
	if (r && (r->flags & KS_REC_TOMBSTONE) &&
	    op->hdr.generation < r->generation) {
		snprintf(msg, len, "refusing the blob: vTPM %s left this host "
			 "at generation %llu, the blob holds the older "
			 "generation %llu", op->uuid_str,
			 (unsigned long long)r->generation,
			 (unsigned long long)op->hdr.generation);
		return CTL_EINVAL;
	}
	return CTL_OK;
}

static void import_decrypted(struct mgr_task *t)
{
	struct mig_op *op = (struct mig_op *)t;
	struct manager *m = t->m;
	struct vtpm_entry *e;
	char a[2 * MIGKEY_NAME_LEN + 1], b[2 * MIGKEY_NAME_LEN + 1];
	char err[300];
	enum ctl_code code;
	int rc;

	if (op->answered) {
		op_free(op);
		return;
	}
	if (t->rc == -EXDEV) {
		hex_encode(op->hdr.dest_name, MIGKEY_NAME_LEN, a);
		hex_encode(op->key_name, MIGKEY_NAME_LEN, b);
		op_fail(op, CTL_EINVAL, "refusing the blob: it is for another "
			"manager (sealed to migration key %s; this manager's "
			"is %s)", a, b);
		return;
	}
	if (t->rc) {
		op_fail(op, t->rc == -EBADMSG ? CTL_EINVAL : CTL_EFAIL,
			"refusing the blob: %s%s", t->err,
			t->rc == -EBADMSG ? " (altered, or not for this "
					    "manager)" : "");
		return;
	}
	rc = expblob_open(op->blob, op->blob_len, op->aes, &op->body, err,
			  sizeof(err));
	OPENSSL_cleanse(op->aes, sizeof(op->aes));
	if (rc) {
		op_fail(op, CTL_EINVAL, "refusing the blob: %s", err);
		return;
	}
	if (!online(op) && op->body.vol_len) {
		op_fail(op, CTL_EINVAL, "refusing the blob: it carries a "
			"running TPM's volatile state (an online migration's), "
			"which an import does not take");
		return;
	}
	code = import_refusal(m, op, err, sizeof(err));
	if (code != CTL_OK) {
		op_fail(op, code, "%s", err);
		return;
	}
	memcpy(op->uuid, op->hdr.uuid, 16);
	op->family = op->body.family;
	op->generation = op->hdr.generation;
	op->plaintext = op->body.flags & EXPBLOB_F_PLAINTEXT;
	/* It comes back: the tombstone (or an aborted pending import)
	 * gives way. */
	e = mgr_entry_find(m, op->uuid);
	if (e) {
		rc = mgr_vtpm_delete(m, e);
		if (rc) {
			op_fail(op, CTL_EFAIL, "vTPM %s: cannot remove its "
				"tombstone: %s", op->uuid_str,
				rc == -EBUSY ? "busy" : keystore_strerror(rc));
			return;
		}
	}
	new_vtpm(m, op);
}

void mgr_cmd_import(struct ctl_call *c, json_object *req)
{
	struct manager *m = c->m;
	struct mig_op *op = op_new(c, MIG_IMPORT);
	char err[300];
	int rc;

	rc = hex_field(req, "blob", EXPBLOB_MAX_LEN, &op->blob, &op->blob_len);
	if (rc) {
		ctl_reply_error(c, CTL_EINVAL, "\"blob\": the export blob in hex "
				"(at most %d bytes)", EXPBLOB_MAX_LEN);
		op_free(op);
		return;
	}
	rc = expblob_parse(op->blob, op->blob_len, &op->hdr, err, sizeof(err));
	if (rc) {
		ctl_reply_error(c, CTL_EINVAL, "refusing the blob: %s", err);
		op_free(op);
		return;
	}
	uuid_format(op->hdr.uuid, op->uuid_str);
	if (import_refusal(m, op, err, sizeof(err)) != CTL_OK) {
		op_fail(op, import_refusal(m, op, err, sizeof(err)), "%s", err);
		return;
	}
	if (!m->hal) {
		ctl_reply_error(c, CTL_EFAIL, "this manager has no physical TPM");
		op_free(op);
		return;
	}
	submit_tpm(m, op, import_decrypted, "TPM2_RSA_Decrypt (import)");
}

/* ---- clone ---- */

static void clone_read_work(struct mgr_task *t)
{
	struct mig_op *op = (struct mig_op *)t;

	t->rc = read_state(op);
}

static void clone_read_done(struct mgr_task *t)
{
	struct mig_op *op = (struct mig_op *)t;
	struct manager *m = t->m;

	unfreeze(m, op->uuid);
	if (t->rc) {
		ctl_reply_error(op->c, CTL_EFAIL, "clone of vTPM %s: %s",
				op->uuid_str, t->err);
		op_free(op);
		return;
	}
	/* The copy: a new UUID, a new key, generation 1. */
	RAND_bytes(op->uuid, 16);
	op->uuid[6] = (op->uuid[6] & 0x0f) | 0x40;
	op->uuid[8] = (op->uuid[8] & 0x3f) | 0x80;
	uuid_format(op->uuid, op->uuid_str);
	op->generation = 1;
	new_vtpm(m, op);
}

/* --unique: a new TPM as create makes one, of the same family. */
static void clone_unique(struct ctl_call *c, json_object *req,
			 const struct vtpm_entry *e)
{
	json_object *cr = json_object_new_object(), *v;

	json_object_object_add(cr, "cmd", json_object_new_string("create"));
	json_object_object_add(cr, "tpm_version",
			       json_object_new_string(e->rec.tpm_version == 1
							      ? "1.2"
							      : "2.0"));
	if (json_object_object_get_ex(req, "ek_cert", &v))
		json_object_object_add(cr, "ek_cert", json_object_get(v));
	if (e->rec.allow_plaintext_state)
		json_object_object_add(cr, "allow_plaintext_state",
				       json_object_new_boolean(1));
	ctl_dispatch(c, json_object_to_json_string(cr));
	json_object_put(cr);
}

void mgr_cmd_clone(struct ctl_call *c, json_object *req)
{
	struct manager *m = c->m;
	struct vtpm_entry *e = ctl_entry_arg(c, req);
	const struct keystore_rec *r;
	struct mig_op *op;
	json_object *v;

	if (!e)
		return;
	if (json_object_object_get_ex(req, "unique", &v) &&
	    json_object_get_boolean(v)) {
		const struct keystore_rec *t = keystore_find(&m->ks, e->rec.uuid);

		if (t && (t->flags & KS_REC_TOMBSTONE)) {
			(void)entry_quiet(c, e, "clone");
			return;
		}
		clone_unique(c, req, e);
		return;
	}
	if (!entry_quiet(c, e, "clone"))
		return;
	r = keystore_find(&m->ks, e->rec.uuid);
	op = op_new(c, MIG_CLONE);
	op_fill(op, e, r);
	op->body.family = op->family;
	op->task.m = m;
	if (r->flags & KS_REC_NOSTATE) {
		/* Never started: nothing to copy, a copy is a new vTPM. */
		clone_read_done(&op->task);
		return;
	}
	e->migrating = true;
	op->task.work = clone_read_work;
	op->task.done = clone_read_done;
	mgr_task_submit(m, &op->task);
}

/* ---- for online migration ---- */

static void online_key_done(struct mgr_task *t)
{
	struct mig_op *op = (struct mig_op *)t;

	if (op->answered) {
		op_free(op);
		return;
	}
	online_end(op, t->rc, t->rc ? (t->err[0] ? t->err : strerror(-t->rc))
				    : NULL);
}

static struct mig_op *online_op(struct manager *m, enum mig_kind kind,
				mgr_online_cb cb, void *arg)
{
	struct mig_op *op = calloc(1, sizeof(*op));

	if (!op)
		fatalx("out of memory");
	op->kind = kind;
	op->cb = cb;
	op->cb_arg = arg;
	op->task.m = m;
	op->t0_ms = mgr_now(m);
	return op;
}

void mgr_online_certify(struct manager *m, mgr_online_cb cb, void *arg)
{
	struct mig_op *op = online_op(m, MIG_ONLINE_KEY, cb, arg);

	if (!m->hal || !m->ak_spki) {
		online_end(op, -EIO, "this manager has no physical TPM "
			   "attestation key");
		return;
	}
	submit_tpm(m, op, online_key_done, "TPM2_Certify (migration key)");
}

void mgr_online_export(struct manager *m, struct vtpm_entry *e,
		       const struct migkey *dest, mgr_online_cb cb, void *arg)
{
	struct mig_op *op = online_op(m, MIG_ONLINE_OUT, cb, arg);
	const struct keystore_rec *r = keystore_find(&m->ks, e->rec.uuid);

	if (!r) {
		online_end(op, -ENOENT, "no key store record");
		return;
	}
	op_fill(op, e, r);
	memcpy(&op->dest, dest, sizeof(op->dest));
	SHA256(m->ak_spki, m->ak_spki_len, op->body.src_ak_sha256);
	op->task.work = export_work;
	op->task.done = export_done;
	mgr_task_submit(m, &op->task);
}

void mgr_online_import(struct manager *m, const uint8_t *blob, size_t len,
		       const uint8_t uuid[16], const uint8_t txid[16],
		       const uint8_t peer_ak[32], mgr_online_cb cb, void *arg)
{
	struct mig_op *op = online_op(m, MIG_ONLINE_IN, cb, arg);
	char err[300];
	enum ctl_code code;

	memcpy(op->txid, txid, 16);
	memcpy(op->peer_ak, peer_ak, 32);
	op->blob = malloc(len ? len : 1);
	if (!op->blob)
		fatalx("out of memory");
	memcpy(op->blob, blob, len);
	op->blob_len = len;
	if (expblob_parse(op->blob, op->blob_len, &op->hdr, err,
			  sizeof(err))) {
		op_fail(op, CTL_EINVAL, "refusing the blob: %s", err);
		return;
	}
	uuid_format(op->hdr.uuid, op->uuid_str);
	if (memcmp(op->hdr.uuid, uuid, 16) != 0) {
		op_fail(op, CTL_EINVAL, "refusing the blob: it holds vTPM %s, "
			"not the one the transaction names", op->uuid_str);
		return;
	}
	code = import_refusal(m, op, err, sizeof(err));
	if (code != CTL_OK) {
		op_fail(op, code, "%s", err);
		return;
	}
	if (!m->hal) {
		op_fail(op, CTL_EFAIL, "this manager has no physical TPM");
		return;
	}
	submit_tpm(m, op, import_decrypted,
		   "TPM2_RSA_Decrypt (online migration)");
}
