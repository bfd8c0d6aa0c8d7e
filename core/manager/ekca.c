/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The EK CA (ekca.h): its key in the physical TPM, its certificate, and
 * the certificates it issues to vTPMs being manufactured.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/aead.h"
#include "lib/log.h"
#include "lib/store.h"
#include "manager/ekca.h"
#include "manager/manager.h"
#include "proto/ekcert.h"
#include "tss-device/tss_hal.h"

#define EKCA_KEY_FILE "ekca.key"
#define EKCA_CERT_FILE "ekca.crt"
#define EKCA_AUTH_LEN 32
#define EKCA_CERT_MAX 4096

/* What the platform certificate names (docs/ekcert.md). */
static const char *const platform_names[3] = { "vtpm-service", "vTPM",
					       "1.0" };

struct mgr_ekca {
	uint8_t *key;            /* the TPM-wrapped blob */
	size_t key_len;
	uint8_t *cert;           /* DER */
	size_t cert_len;
	X509 *x509;              /* the same, parsed: the issuer of leaves */
	uint8_t auth[EKCA_AUTH_LEN];
};

static void ekca_free(struct mgr_ekca *ca)
{
	if (!ca)
		return;
	free(ca->key);
	free(ca->cert);
	X509_free(ca->x509);
	OPENSSL_cleanse(ca->auth, sizeof(ca->auth));
	free(ca);
}

void mgr_ekca_free(struct manager *m)
{
	ekca_free(m->ekca);
	m->ekca = NULL;
}

/* A random positive serial number, never zero. */
static int make_serial(uint8_t serial[EKCERT_SERIAL_LEN])
{
	if (RAND_bytes(serial, EKCERT_SERIAL_LEN) != 1)
		return -EIO;
	serial[0] = (serial[0] & 0x7f) | 0x01;
	return 0;
}

/* Has the TPM sign tbs and assembles the signed object (a task on the
 * thread pool, or start-up before the loop runs); frees tbs. */
static int sign_tbs(struct manager *m, struct mgr_ekca *ca, uint8_t *tbs,
		    size_t tbs_len, uint8_t **der, size_t *der_len, char *err,
		    size_t errlen)
{
	uint8_t *sig = NULL, *cert = NULL, digest[32];
	size_t sig_len, cert_len;
	int rc;

	SHA256(tbs, tbs_len, digest);
	rc = tss_hal_signkey_sign(m->hal, ca->key, ca->key_len, ca->auth,
				  sizeof(ca->auth), digest, &sig, &sig_len,
				  err, errlen);
	if (rc == 0) {
		rc = ekcert_assemble(tbs, tbs_len, sig, sig_len, &cert,
				     &cert_len);
		if (rc) {
			snprintf(err, errlen, "certificate: %s",
				 ekcert_strerror(rc));
			rc = -EIO;
		}
	}
	OPENSSL_free(tbs);
	free(sig);
	if (rc)
		return rc;
	*der = malloc(cert_len);
	if (!*der) {
		OPENSSL_free(cert);
		return -ENOMEM;
	}
	memcpy(*der, cert, cert_len);
	*der_len = cert_len;
	OPENSSL_free(cert);
	return 0;
}

/* Builds one certificate and has the CA key sign it. */
static int issue(struct manager *m, struct mgr_ekca *ca,
		 const struct ekcert_params *p, uint8_t **der, size_t *der_len,
		 char *err, size_t errlen)
{
	uint8_t *tbs = NULL;
	size_t tbs_len;
	int rc;

	rc = ekcert_tbs(p, &tbs, &tbs_len);
	if (rc) {
		snprintf(err, errlen, "certificate: %s", ekcert_strerror(rc));
		return -EINVAL;
	}
	return sign_tbs(m, ca, tbs, tbs_len, der, der_len, err, errlen);
}

static int parse_cert(struct mgr_ekca *ca, char *err, size_t errlen)
{
	const unsigned char *p = ca->cert;

	X509_free(ca->x509);
	ca->x509 = d2i_X509(NULL, &p, (long)ca->cert_len);
	if (!ca->x509 || p != ca->cert + ca->cert_len) {
		snprintf(err, errlen, "%s: not one DER certificate",
			 EKCA_CERT_FILE);
		return -EINVAL;
	}
	return 0;
}

/* Whether the certificate holds the key of the blob. */
static bool cert_matches_key(struct mgr_ekca *ca)
{
	uint8_t *spki = NULL;
	const unsigned char *p;
	EVP_PKEY *k = NULL;
	size_t len;
	char err[160];
	bool same = false;

	if (tss_hal_signkey_public(ca->key, ca->key_len, &spki, &len, err,
				   sizeof(err)) == 0) {
		p = spki;
		k = d2i_PUBKEY(NULL, &p, (long)len);
		same = k && EVP_PKEY_eq(k, X509_get0_pubkey(ca->x509)) == 1;
	}
	EVP_PKEY_free(k);
	free(spki);
	return same;
}

static int make_cert(struct manager *m, struct mgr_ekca *ca, char *err,
		     size_t errlen)
{
	struct ekcert_params p;
	const unsigned char *q;
	uint8_t *spki = NULL;
	char host[64], name[96];
	size_t len;
	int rc;

	memset(&p, 0, sizeof(p));
	rc = tss_hal_signkey_public(ca->key, ca->key_len, &spki, &len, err,
				    errlen);
	if (rc)
		return rc;
	q = spki;
	p.subject_key = d2i_PUBKEY(NULL, &q, (long)len);
	free(spki);
	if (!p.subject_key) {
		snprintf(err, errlen, "CA key: cannot read its public key");
		return -EINVAL;
	}
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown host");
	host[sizeof(host) - 1] = '\0';
	snprintf(name, sizeof(name), "vTPM EK CA %.50s", host);
	p.type = EKCERT_CA;
	p.ca_name = name;
	p.not_before = time(NULL);
	rc = make_serial(p.serial);
	if (!rc)
		rc = issue(m, ca, &p, &ca->cert, &ca->cert_len, err, errlen);
	EVP_PKEY_free(p.subject_key);
	if (rc)
		return rc;
	rc = parse_cert(ca, err, errlen);
	if (!rc) {
		rc = store_write_atomic(m->dirfd, EKCA_CERT_FILE, ca->cert,
					ca->cert_len);
		if (rc)
			snprintf(err, errlen, "%s: %s", EKCA_CERT_FILE,
				 strerror(-rc));
	}
	return rc;
}

static int make_key(struct manager *m, struct mgr_ekca *ca, char *err,
		    size_t errlen)
{
	int rc;

	free(ca->key);
	ca->key = NULL;
	rc = tss_hal_signkey_create(m->hal, ca->auth, sizeof(ca->auth),
				    &ca->key, &ca->key_len, err, errlen);
	if (rc)
		return rc;
	rc = store_write_atomic(m->dirfd, EKCA_KEY_FILE, ca->key, ca->key_len);
	if (rc)
		snprintf(err, errlen, "%s: %s", EKCA_KEY_FILE, strerror(-rc));
	return rc;
}

/* A blob made under this TPM's storage key (else the owner hierarchy was
 * cleared: the key cannot load). */
static bool key_usable(struct manager *m, struct mgr_ekca *ca)
{
	uint8_t name[TSS_HAL_NAME_LEN];
	char err[160];

	return ca->key_len > 10 + TSS_HAL_NAME_LEN &&
	       tss_hal_primary_name(m->hal, name, err, sizeof(err)) == 0 &&
	       memcmp(ca->key + 10, name, TSS_HAL_NAME_LEN) == 0;
}

static int ekca_open(struct manager *m, struct mgr_ekca *ca, char *err,
		     size_t errlen)
{
	char why[200];
	int rc;

	if (aead_hkdf_sha256(m->root_key, KEYSTORE_ROOT_KEY_LEN,
			     "vtpm-service ek ca auth v1", ca->auth,
			     sizeof(ca->auth)))
		return -EIO;
	/* The TPM drops trailing zero bytes of an auth value. */
	ca->auth[EKCA_AUTH_LEN - 1] |= 1;
	rc = store_read(m->dirfd, EKCA_KEY_FILE, TSS_HAL_BLOB_MAX, &ca->key,
			&ca->key_len);
	if (rc == 0 && !key_usable(m, ca)) {
		log_warnx("%s: made under another storage key (the TPM's "
			  "owner hierarchy was cleared): a new EK CA; "
			  "certificates of the old one no longer chain to "
			  "it", EKCA_KEY_FILE);
		rc = -ENOENT;
	}
	if (rc == -ENOENT) {
		rc = make_key(m, ca, err, errlen);
		if (rc)
			return rc;
		log_info("EK CA: new signing key in the physical TPM (%s)",
			 EKCA_KEY_FILE);
		return make_cert(m, ca, err, errlen);
	}
	if (rc) {
		snprintf(err, errlen, "%s: %s", EKCA_KEY_FILE, strerror(-rc));
		return rc;
	}
	rc = store_read(m->dirfd, EKCA_CERT_FILE, EKCA_CERT_MAX, &ca->cert,
			&ca->cert_len);
	if (rc == 0)
		rc = parse_cert(ca, why, sizeof(why));
	if (rc == 0 && !cert_matches_key(ca)) {
		snprintf(why, sizeof(why), "it does not hold the key of %s",
			 EKCA_KEY_FILE);
		rc = -EINVAL;
	}
	if (rc) {
		if (rc != -ENOENT)
			log_warnx("%s: %s; making it again", EKCA_CERT_FILE,
				  rc == -EINVAL ? why : strerror(-rc));
		free(ca->cert);
		ca->cert = NULL;
		return make_cert(m, ca, err, errlen);
	}
	return 0;
}

void mgr_ekca_load(struct manager *m)
{
	struct mgr_ekca *ca = calloc(1, sizeof(*ca));
	char err[256] = "";
	int rc;

	if (!ca)
		fatalx("out of memory");
	rc = ekca_open(m, ca, err, sizeof(err));
	if (rc) {
		log_warnx("EK CA unavailable, vTPMs get no EK certificates: %s",
			  err[0] ? err : strerror(-rc));
		ekca_free(ca);
		return;
	}
	m->ekca = ca;
	log_info("EK CA: %s", X509_NAME_oneline(X509_get_subject_name(ca->x509),
						  err, sizeof(err)));
}

/* DER as PEM with the label ("CERTIFICATE"), malloc()ed. */
static char *pem_of(const uint8_t *der, size_t len, const char *label)
{
	size_t b64 = 4 * ((len + 2) / 3), n;
	unsigned char *tmp = malloc(b64 + 1);
	char *pem = malloc(b64 + b64 / 64 + 2 + 2 * (strlen(label) + 32));

	if (!tmp || !pem) {
		free(tmp);
		free(pem);
		return NULL;
	}
	EVP_EncodeBlock(tmp, der, (int)len);
	n = (size_t)sprintf(pem, "-----BEGIN %s-----\n", label);
	for (size_t i = 0; i < b64; i += 64) {
		size_t k = b64 - i < 64 ? b64 - i : 64;

		memcpy(pem + n, tmp + i, k);
		n += k;
		pem[n++] = '\n';
	}
	sprintf(pem + n, "-----END %s-----\n", label);
	free(tmp);
	return pem;
}

char *mgr_ekca_pem(struct manager *m, char *err, size_t errlen)
{
	char *pem;

	if (!m->ekca) {
		snprintf(err, errlen, "this manager has no EK CA (see its log)");
		return NULL;
	}
	pem = pem_of(m->ekca->cert, m->ekca->cert_len, "CERTIFICATE");
	if (!pem)
		snprintf(err, errlen, "out of memory");
	return pem;
}

/* ---- an operator's CA above ours: the request, the import ---- */

static EVP_PKEY *ca_public(struct mgr_ekca *ca)
{
	uint8_t *spki = NULL;
	const unsigned char *p;
	EVP_PKEY *k = NULL;
	size_t len;
	char err[160];

	if (tss_hal_signkey_public(ca->key, ca->key_len, &spki, &len, err,
				   sizeof(err)) == 0) {
		p = spki;
		k = d2i_PUBKEY(NULL, &p, (long)len);
	}
	free(spki);
	return k;
}

struct ca_task {
	struct mgr_task task;
	uint8_t *der;             /* CSR: the request; import: the cert */
	size_t der_len;
	X509 *x509;               /* import: parsed */
	mgr_ca_cb cb;
	void *arg;
};

static void csr_work(struct mgr_task *t)
{
	struct ca_task *c = (struct ca_task *)t;
	struct mgr_ekca *ca = t->m->ekca;
	EVP_PKEY *k = ca_public(ca);
	uint8_t *info = NULL;
	size_t info_len;
	char host[64], cn[96];

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown host");
	host[sizeof(host) - 1] = '\0';
	snprintf(cn, sizeof(cn), "vTPM EK CA %.50s", host);
	t->rc = k ? ekcert_csr_info(k, cn, &info, &info_len) : -EINVAL;
	EVP_PKEY_free(k);
	if (t->rc) {
		snprintf(t->err, sizeof(t->err), "certificate request: %s",
			 ekcert_strerror(t->rc));
		t->rc = -EINVAL;
		return;
	}
	t->rc = sign_tbs(t->m, ca, info, info_len, &c->der, &c->der_len,
			 t->err, sizeof(t->err));
}

static void ca_task_done(struct mgr_task *t)
{
	struct ca_task *c = (struct ca_task *)t;
	char *pem = NULL;

	if (t->rc == 0 && c->x509) {
		/* The import is on disk: the CA issues under it from now. */
		struct mgr_ekca *ca = t->m->ekca;

		free(ca->cert);
		X509_free(ca->x509);
		ca->cert = c->der;
		ca->cert_len = c->der_len;
		ca->x509 = c->x509;
		c->der = NULL;
		c->x509 = NULL;
		log_info("EK CA: imported certificate %s: issued by %s",
			 EKCA_CERT_FILE,
			 X509_NAME_oneline(X509_get_issuer_name(ca->x509),
					   t->err, sizeof(t->err)));
		pem = mgr_ekca_pem(t->m, t->err, sizeof(t->err));
	} else if (t->rc == 0) {
		pem = pem_of(c->der, c->der_len, "CERTIFICATE REQUEST");
	}
	if (t->rc == 0 && !pem) {
		t->rc = -ENOMEM;
		snprintf(t->err, sizeof(t->err), "out of memory");
	}
	c->cb(c->arg, t->rc, pem, t->err);
	free(pem);
	free(c->der);
	X509_free(c->x509);
	free(c);
}

void mgr_ekca_csr(struct manager *m, mgr_ca_cb cb, void *arg)
{
	struct ca_task *c;

	if (!m->ekca) {
		cb(arg, -ENODEV, NULL, "this manager has no EK CA (see its log)");
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		fatalx("out of memory");
	c->cb = cb;
	c->arg = arg;
	c->task.work = csr_work;
	c->task.done = ca_task_done;
	c->task.call = "TPM2_Sign (EK CA request)";
	mgr_tpm_submit(m, &c->task);
}

static void import_work(struct mgr_task *t)
{
	struct ca_task *c = (struct ca_task *)t;

	t->rc = store_write_atomic(t->m->dirfd, EKCA_CERT_FILE, c->der,
				   c->der_len);
	if (t->rc)
		snprintf(t->err, sizeof(t->err), "%s: %s", EKCA_CERT_FILE,
			 strerror(-t->rc));
}

void mgr_ekca_import(struct manager *m, const char *pem, mgr_ca_cb cb,
		     void *arg)
{
	struct ca_task *c;
	unsigned char *der = NULL;
	char err[200];
	EVP_PKEY *k;
	BIO *b;
	X509 *x;
	int len;

	if (!m->ekca) {
		cb(arg, -ENODEV, NULL, "this manager has no EK CA (see its log)");
		return;
	}
	b = BIO_new_mem_buf(pem, -1);
	x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (!x) {
		cb(arg, -EINVAL, NULL, "not a PEM certificate");
		return;
	}
	k = ca_public(m->ekca);
	if (!k || ekcert_check_ca(x, k, err, sizeof(err))) {
		EVP_PKEY_free(k);
		X509_free(x);
		cb(arg, -EINVAL, NULL, k ? err : "CA key unreadable");
		return;
	}
	EVP_PKEY_free(k);
	len = i2d_X509(x, &der);
	c = calloc(1, sizeof(*c));
	if (len <= 0 || len > EKCA_CERT_MAX || !c) {
		OPENSSL_free(der);
		X509_free(x);
		free(c);
		cb(arg, -EINVAL, NULL, "certificate too big");
		return;
	}
	c->der = malloc((size_t)len);
	if (!c->der)
		fatalx("out of memory");
	memcpy(c->der, der, (size_t)len);
	c->der_len = (size_t)len;
	OPENSSL_free(der);
	c->x509 = x;
	c->cb = cb;
	c->arg = arg;
	c->task.work = import_work;
	c->task.done = ca_task_done;
	c->task.call = "EK CA import";
	mgr_tpm_submit(m, &c->task);
}

/* ---- manufacture ---- */

int mgr_ekca_expect(struct vtpm_entry *e, mgr_made_cb cb, void *arg,
		    char *err, size_t errlen)
{
	if (!e->m->ekca) {
		snprintf(err, errlen, "this manager has no EK CA (see its log)");
		return -ENODEV;
	}
	e->ek.wanted = true;
	e->ek.issued = 0;
	e->ek.cb = cb;
	e->ek.arg = arg;
	e->ek.started_ms = mgr_now(e->m);
	return 0;
}

bool mgr_ekca_wanted(const struct vtpm_entry *e)
{
	return e->ek.wanted && e->m->ekca;
}

static void made(struct vtpm_entry *e, int rc, uint32_t instance_ms,
		 const char *why)
{
	mgr_made_cb cb = e->ek.cb;
	struct mgr_made r;

	memset(&r, 0, sizeof(r));
	r.rc = rc;
	r.instance_ms = instance_ms;
	r.total_ms = mgr_now(e->m) - e->ek.started_ms;
	snprintf(r.err, sizeof(r.err), "%s", why);
	e->ek.wanted = false;
	e->ek.cb = NULL;
	if (rc)
		log_warnx("vTPM %s: manufacture failed: %s", e->rec.uuid_str,
			  why);
	else
		log_info("vTPM %s: manufactured with EK certificates in %u ms "
			 "(%llu ms from its start)", e->rec.uuid_str,
			 instance_ms, (unsigned long long)r.total_ms);
	if (cb)
		cb(e->ek.arg, &r);
}

uint32_t mgr_ekca_manufactured(struct vtpm_entry *e,
			       const struct mgr_manufactured_req *r)
{
	if (!e->ek.wanted)
		return MGR_FORBIDDEN;
	made(e, r->result ? -EIO : 0, r->elapsed_ms,
	     r->result ? "the instance could not write its certificates "
			 "(see its log)" : "");
	return MGR_SUCCESS;
}

void mgr_ekca_child_exited(struct vtpm_entry *e)
{
	if (e->ek.wanted && e->ek.cb)
		made(e, -ECHILD, 0, "the instance exited before it was "
				    "manufactured");
}

struct certify_task {
	struct mgr_task task;
	struct ekcert_params p;
	uint8_t *der;
	size_t der_len;
	uint32_t status;
	char uuid[UUID_STR_LEN];
	mgr_certified_cb cb;
	void *arg;
};

static void certify_work(struct mgr_task *t)
{
	struct certify_task *c = (struct certify_task *)t;

	/* The issuer as it is now: an import that ran before this task
	 * replaced it (tasks run one at a time, done before the next). */
	c->p.issuer = t->m->ekca->x509;
	t->rc = issue(t->m, t->m->ekca, &c->p, &c->der, &c->der_len, t->err,
		      sizeof(t->err));
}

static void certify_done(struct mgr_task *t)
{
	struct certify_task *c = (struct certify_task *)t;

	if (t->rc)
		log_warnx("vTPM %s: EK certificate: %s", c->uuid, t->err);
	else if (c->der_len > MGR_EKCERT_MAX)
		log_warnx("vTPM %s: EK certificate of %zu bytes: too big",
			  c->uuid, c->der_len);
	if (t->rc || c->der_len > MGR_EKCERT_MAX)
		c->cb(c->arg, MGR_FAIL, NULL, 0);
	else
		c->cb(c->arg, MGR_SUCCESS, c->der, c->der_len);
	EVP_PKEY_free(c->p.subject_key);
	free(c->der);
	free(c);
}

static const enum ekcert_type kind_type[] = {
	[MGR_EK_KIND_RSA] = EKCERT_EK_RSA,
	[MGR_EK_KIND_ECC] = EKCERT_EK_ECC,
	[MGR_EK_KIND_PLATFORM] = EKCERT_PLATFORM,
};

void mgr_ekca_certify(struct vtpm_entry *e, const struct mgr_ek_certify_req *r,
		      mgr_certified_cb cb, void *arg)
{
	struct manager *m = e->m;
	struct keystore_rec *rec = keystore_find(&m->ks, e->rec.uuid);
	struct certify_task *c;
	int rc;

	/*
	 * Only a vTPM being manufactured gets certificates, each kind once,
	 * and only until it reported MANUFACTURED: its instance asks before
	 * it runs any guest command (the manufacture is its first job), so
	 * an instance a guest took over cannot have the CA certify a key of
	 * its choosing.
	 */
	if (!mgr_ekca_wanted(e) || !rec || (e->ek.issued & (1u << r->kind))) {
		log_warnx("vTPM %s: EK_CERTIFY refused: not a vTPM being "
			  "manufactured, or kind %u already certified",
			  e->rec.uuid_str, r->kind);
		cb(arg, MGR_FORBIDDEN, NULL, 0);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		fatalx("out of memory");
	c->p.type = kind_type[r->kind];
	c->p.not_before = time(NULL);
	c->p.tpm.manufacturer = r->manufacturer;
	memcpy(c->p.tpm.model, r->model, sizeof(c->p.tpm.model));
	c->p.tpm.fw_version[0] = r->fw_version[0];
	c->p.tpm.fw_version[1] = r->fw_version[1];
	c->p.tpm.spec_level = r->spec_level;
	c->p.tpm.spec_revision = r->spec_revision;
	memcpy(c->p.platform, platform_names, sizeof(c->p.platform));
	rc = r->kind == MGR_EK_KIND_ECC
		     ? ekcert_ecc_key(r->key, r->key_len, &c->p.subject_key)
		     : ekcert_rsa_key(r->key, r->key_len, &c->p.subject_key);
	if (rc || make_serial(c->p.serial)) {
		log_warnx("vTPM %s: EK_CERTIFY of kind %u: %s", e->rec.uuid_str,
			  r->kind, ekcert_strerror(rc));
		free(c);
		cb(arg, MGR_INVALID_REQUEST, NULL, 0);
		return;
	}
	e->ek.issued |= (uint8_t)(1u << r->kind);
	memcpy(c->uuid, e->rec.uuid_str, sizeof(c->uuid));
	c->cb = cb;
	c->arg = arg;
	c->task.work = certify_work;
	c->task.done = certify_done;
	c->task.call = "TPM2_Sign (EK certificate)";
	mgr_tpm_submit(m, &c->task);
}
