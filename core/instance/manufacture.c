/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Manufacturing a new vTPM (manufacture.h): TPM commands built here and
 * run through engine_process, certificates from the manager.
 */
#include "instance/manufacture.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "instance/engine.h"
#include "instance/mgrlink.h"
#include "instance/vtpm.h"
#include "lib/bytes.h"
#include "lib/log.h"
#include "proto/tpmframe.h"

#define TPM_ST_NO_SESSIONS_ 0x8001
#define TPM_ST_SESSIONS_ 0x8002
#define CC_CREATE_PRIMARY 0x131
#define CC_NV_DEFINE 0x12a
#define CC_NV_WRITE 0x137
#define CC_NV_WRITELOCK 0x138
#define CC_FLUSH 0x165
#define CC_GET_CAP 0x17a
#define CC_STARTUP 0x144
#define RH_ENDORSEMENT 0x4000000bu
#define RH_PLATFORM 0x4000000cu
#define RS_PW 0x40000009u
#define NV_CHUNK 1024 /* libtpms's MAX_NV_BUFFER_SIZE */

/* TCG EK Credential Profile 2.0, templates L-1 and L-2: the attributes
 * fixedTPM, fixedParent, sensitiveDataOrigin, adminWithPolicy,
 * restricted, decrypt, and PolicyA (PolicySecret(TPM_RH_ENDORSEMENT)). */
#define EK_ATTRS 0x000300b2u
static const uint8_t policy_a[32] = {
	0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc,
	0x8d, 0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52,
	0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};

/* ---- building commands ---- */

struct cmd {
	uint8_t b[NV_CHUNK + 128];
	size_t n;
};

static void put8(struct cmd *c, uint8_t v)
{
	c->b[c->n++] = v;
}

static void put16(struct cmd *c, uint16_t v)
{
	be16_put(c->b + c->n, v);
	c->n += 2;
}

static void put32(struct cmd *c, uint32_t v)
{
	be32_put(c->b + c->n, v);
	c->n += 4;
}

static void put_bytes(struct cmd *c, const uint8_t *p, size_t len)
{
	memcpy(c->b + c->n, p, len);
	c->n += len;
}

static void cmd_begin(struct cmd *c, uint16_t tag, uint32_t cc)
{
	c->n = 0;
	put16(c, tag);
	put32(c, 0); /* size, at the end */
	put32(c, cc);
}

/* A password session with an empty auth (the hierarchy's, fresh). */
static void put_pw_session(struct cmd *c)
{
	put32(c, 9);
	put32(c, RS_PW);
	put16(c, 0); /* nonce */
	put8(c, 0);  /* attributes */
	put16(c, 0); /* hmac */
}

static void put_ek_template(struct cmd *c, uint8_t kind)
{
	size_t at = c->n;

	put16(c, 0); /* TPM2B_PUBLIC size, below */
	put16(c, kind == MGR_EK_KIND_ECC ? 0x0023 : 0x0001);
	put16(c, 0x000b); /* sha256 */
	put32(c, EK_ATTRS);
	put16(c, sizeof(policy_a));
	put_bytes(c, policy_a, sizeof(policy_a));
	put16(c, 0x0006); /* AES */
	put16(c, 128);
	put16(c, 0x0043); /* CFB */
	put16(c, 0x0010); /* scheme NULL */
	if (kind == MGR_EK_KIND_ECC) {
		put16(c, 0x0003); /* NIST P-256 */
		put16(c, 0x0010); /* kdf NULL */
		put16(c, 32);     /* unique: zeros of the coordinates' size */
		memset(c->b + c->n, 0, 32);
		c->n += 32;
		put16(c, 32);
		memset(c->b + c->n, 0, 32);
		c->n += 32;
	} else {
		put16(c, 2048);
		put32(c, 0); /* exponent: the default, 65537 */
		put16(c, 256);
		memset(c->b + c->n, 0, 256);
		c->n += 256;
	}
	be16_put(c->b + at, (uint16_t)(c->n - at - 2));
}

/* Runs the command; the TPM's response code, *rsp valid until the next
 * engine call. */
static uint32_t run(struct engine *e, struct cmd *c, const uint8_t **rsp,
		    uint32_t *rsplen)
{
	const uint8_t *r;
	uint32_t rl;

	be32_put(c->b + 2, (uint32_t)c->n);
	engine_process(e, c->b, (uint32_t)c->n, &r, &rl);
	if (rsp) {
		*rsp = r;
		*rsplen = rl;
	}
	return tpm_rsp_code(r, rl);
}

/* ---- reading answers: a bounded cursor, sticky on error ---- */

struct rd {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};

static const uint8_t *take(struct rd *r, size_t n)
{
	const uint8_t *at;

	if (r->bad || r->len - r->off < n) {
		r->bad = true;
		return NULL;
	}
	at = r->p + r->off;
	r->off += n;
	return at;
}

static uint32_t get(struct rd *r, size_t n)
{
	const uint8_t *p = take(r, n);
	uint32_t v = 0;

	for (size_t i = 0; p && i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* A response header: tag and size agree with len; the response code. */
static int rsp_header(struct rd *r, uint16_t want_tag, uint32_t *rc)
{
	uint32_t tag = get(r, 2), size = get(r, 4);

	*rc = get(r, 4);
	if (r->bad || size != r->len)
		return -EBADMSG;
	if (*rc == 0 && tag != want_tag)
		return -EBADMSG;
	return 0;
}

int mf_parse_properties(const uint8_t *rsp, size_t len,
			struct mgr_ek_certify_req *id)
{
	struct rd r = { .p = rsp, .len = len };
	uint32_t rc, n;

	if (rsp_header(&r, TPM_ST_NO_SESSIONS_, &rc) || rc)
		return -EBADMSG;
	(void)get(&r, 1);           /* moreData */
	if (get(&r, 4) != 6)        /* TPM_CAP_TPM_PROPERTIES */
		return -EBADMSG;
	n = get(&r, 4);
	if (r.bad || n > 64)
		return -EBADMSG;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t prop = get(&r, 4), v = get(&r, 4);

		if (r.bad)
			return -EBADMSG;
		switch (prop) {
		case 0x101: /* TPM_PT_LEVEL */
			id->spec_level = v;
			break;
		case 0x102: /* TPM_PT_REVISION */
			id->spec_revision = v;
			break;
		case 0x105: /* TPM_PT_MANUFACTURER */
			id->manufacturer = v;
			break;
		case 0x106: case 0x107: case 0x108: case 0x109:
			/* TPM_PT_VENDOR_STRING_1..4: the model text */
			for (int k = 0; k < 4; k++) {
				uint8_t ch = (uint8_t)(v >> (24 - 8 * k));

				id->model[(prop - 0x106) * 4 + k] =
					ch >= 0x20 && ch <= 0x7e ? ch : 0;
			}
			break;
		case 0x10b: /* TPM_PT_FIRMWARE_VERSION_1 */
			id->fw_version[0] = v;
			break;
		case 0x10c:
			id->fw_version[1] = v;
			break;
		default:
			break;
		}
	}
	return r.off == r.len ? 0 : -EBADMSG;
}

/* A TPM2B whose size must be exactly want (the template's). */
static const uint8_t *tpm2b_exact(struct rd *r, size_t want)
{
	if (get(r, 2) != want) {
		r->bad = true;
		return NULL;
	}
	return take(r, want);
}

int mf_parse_primary(const uint8_t *rsp, size_t len, uint8_t kind,
		     uint32_t *handle, struct mgr_ek_certify_req *id)
{
	struct rd r = { .p = rsp, .len = len };
	const uint8_t *a, *b = NULL;
	uint32_t rc, psize, pubsize;
	bool ecc = kind == MGR_EK_KIND_ECC;
	size_t end;

	if (rsp_header(&r, TPM_ST_SESSIONS_, &rc))
		return -EBADMSG;
	if (rc)
		return rc > 0x7fffffff ? -EBADMSG : (int)rc;
	*handle = get(&r, 4);
	psize = get(&r, 4);
	if (r.bad || psize > r.len - r.off)
		return -EBADMSG;
	pubsize = get(&r, 2);
	if (r.bad || pubsize > r.len - r.off)
		return -EBADMSG;
	end = r.off + pubsize;
	/* The object is the template's: the key of exactly this EK. */
	if (get(&r, 2) != (ecc ? 0x0023u : 0x0001u) || get(&r, 2) != 0x000b ||
	    get(&r, 4) != EK_ATTRS)
		return -EBADMSG;
	a = tpm2b_exact(&r, sizeof(policy_a));
	if (!a || memcmp(a, policy_a, sizeof(policy_a)))
		return -EBADMSG;
	if (get(&r, 2) != 0x0006 || get(&r, 2) != 128 || get(&r, 2) != 0x0043 ||
	    get(&r, 2) != 0x0010)
		return -EBADMSG;
	if (ecc) {
		if (get(&r, 2) != 0x0003 || get(&r, 2) != 0x0010)
			return -EBADMSG;
		a = tpm2b_exact(&r, 32);
		b = tpm2b_exact(&r, 32);
	} else {
		if (get(&r, 2) != 2048)
			return -EBADMSG;
		(void)get(&r, 4); /* exponent: 0 means 65537 */
		a = tpm2b_exact(&r, 256);
	}
	if (r.bad || !a || r.off != end)
		return -EBADMSG;
	if (ecc) {
		memcpy(id->key, a, 32);
		memcpy(id->key + 32, b, 32);
		id->key_len = MGR_EK_ECC_LEN;
	} else {
		memcpy(id->key, a, 256);
		id->key_len = MGR_EK_RSA_LEN;
	}
	id->kind = kind;
	return 0;
}

/* ---- the steps ---- */

static int step_fail(const char *what, uint32_t rc)
{
	log_warnx("manufacture: %s: TPM rc 0x%x", what, rc);
	return -EIO;
}

static void create_primary_cmd(struct cmd *c, uint8_t kind)
{
	cmd_begin(c, TPM_ST_SESSIONS_, CC_CREATE_PRIMARY);
	put32(c, RH_ENDORSEMENT);
	put_pw_session(c);
	put16(c, 4); /* inSensitive: no auth, no data */
	put16(c, 0);
	put16(c, 0);
	put_ek_template(c, kind);
	put16(c, 0); /* outsideInfo */
	put32(c, 0); /* creationPCR */
	be32_put(c->b + 2, (uint32_t)c->n);
}

static void properties_cmd(struct cmd *c)
{
	cmd_begin(c, TPM_ST_NO_SESSIONS_, CC_GET_CAP);
	put32(c, 6);     /* TPM_CAP_TPM_PROPERTIES */
	put32(c, 0x101); /* TPM_PT_LEVEL .. */
	put32(c, 12);    /* .. TPM_PT_FIRMWARE_VERSION_2 */
	be32_put(c->b + 2, (uint32_t)c->n);
}

size_t mf_cmd_create_primary(uint8_t kind, uint8_t *out, size_t cap)
{
	struct cmd c;

	create_primary_cmd(&c, kind);
	if (c.n > cap)
		return 0;
	memcpy(out, c.b, c.n);
	return c.n;
}

size_t mf_cmd_properties(uint8_t *out, size_t cap)
{
	struct cmd c;

	properties_cmd(&c);
	if (c.n > cap)
		return 0;
	memcpy(out, c.b, c.n);
	return c.n;
}

static int ek_public(struct engine *e, uint8_t kind,
		     struct mgr_ek_certify_req *id)
{
	struct cmd c;
	const uint8_t *rsp;
	uint32_t rl, handle = 0, rc;
	int prc;

	create_primary_cmd(&c, kind);
	run(e, &c, &rsp, &rl);
	prc = mf_parse_primary(rsp, rl, kind, &handle, id);
	if (prc)
		return prc > 0 ? step_fail("TPM2_CreatePrimary of an EK",
					   (uint32_t)prc)
			       : step_fail("TPM2_CreatePrimary: malformed "
					   "answer", 0);
	cmd_begin(&c, TPM_ST_NO_SESSIONS_, CC_FLUSH);
	put32(&c, handle);
	rc = run(e, &c, NULL, NULL);
	return rc ? step_fail("TPM2_FlushContext of an EK", rc) : 0;
}

static int identity(struct engine *e, struct mgr_ek_certify_req *id)
{
	struct cmd c;
	const uint8_t *rsp;
	uint32_t rl;

	properties_cmd(&c);
	run(e, &c, &rsp, &rl);
	if (mf_parse_properties(rsp, rl, id))
		return step_fail("TPM2_GetCapability(TPM_PROPERTIES)",
				 tpm_rsp_code(rsp, rl));
	return 0;
}

static int nv_store(struct engine *e, uint32_t index, const uint8_t *der,
		    size_t len)
{
	struct cmd c;
	uint32_t rc;

	cmd_begin(&c, TPM_ST_SESSIONS_, CC_NV_DEFINE);
	put32(&c, RH_PLATFORM);
	put_pw_session(&c);
	put16(&c, 0); /* the index's auth: empty (AUTHREAD) */
	put16(&c, 14);
	put32(&c, index);
	put16(&c, 0x000b);
	put32(&c, MF_NV_ATTRS);
	put16(&c, 0); /* no policy */
	put16(&c, (uint16_t)len);
	rc = run(e, &c, NULL, NULL);
	if (rc)
		return step_fail("TPM2_NV_DefineSpace", rc);
	for (size_t off = 0; off < len; off += NV_CHUNK) {
		size_t n = len - off < NV_CHUNK ? len - off : NV_CHUNK;

		cmd_begin(&c, TPM_ST_SESSIONS_, CC_NV_WRITE);
		put32(&c, RH_PLATFORM);
		put32(&c, index);
		put_pw_session(&c);
		put16(&c, (uint16_t)n);
		put_bytes(&c, der + off, n);
		put16(&c, (uint16_t)off);
		rc = run(e, &c, NULL, NULL);
		if (rc)
			return step_fail("TPM2_NV_Write", rc);
	}
	cmd_begin(&c, TPM_ST_SESSIONS_, CC_NV_WRITELOCK);
	put32(&c, RH_PLATFORM);
	put32(&c, index);
	put_pw_session(&c);
	rc = run(e, &c, NULL, NULL);
	return rc ? step_fail("TPM2_NV_WriteLock", rc) : 0;
}

static int certify(struct vtpm *v, const struct mgr_ek_certify_req *id,
		   uint32_t index)
{
	static struct mgr_req req; /* one job at a time; 300 B + 4 KiB */
	static struct mgr_rsp rsp;
	char err[200];
	int rc;

	memset(&req, 0, sizeof(req));
	req.type = MGR_MSG_EK_CERTIFY;
	req.u.ek = *id;
	rc = mgrlink_call(&v->link, &req, &rsp, err, sizeof(err));
	if (rc) {
		log_warnx("manufacture: EK_CERTIFY: %s", err);
		return rc;
	}
	if (rsp.status != MGR_SUCCESS) {
		log_warnx("manufacture: the manager refused certificate kind "
			  "%u: %s", id->kind, mgrproto_status_str(rsp.status));
		return -EPERM;
	}
	return nv_store(&v->eng, index, rsp.u.ek.cert, rsp.u.ek.cert_len);
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int manufacture(struct vtpm *v)
{
	static struct mgr_ek_certify_req rsa_id, ecc_id;
	struct engine *e = &v->eng;
	struct cmd c;
	uint32_t rc;
	int err;

	/*
	 * A TPM reset, so that the platform hierarchy is open (with its
	 * empty auth) for this job only: nobody has used this TPM yet.
	 */
	if (engine_power_on(e, false))
		return -EIO;
	cmd_begin(&c, TPM_ST_NO_SESSIONS_, CC_STARTUP);
	put16(&c, 0); /* TPM_SU_CLEAR */
	rc = run(e, &c, NULL, NULL);
	if (rc)
		return step_fail("TPM2_Startup", rc);
	memset(&rsa_id, 0, sizeof(rsa_id));
	err = identity(e, &rsa_id);
	ecc_id = rsa_id;
	if (!err)
		err = ek_public(e, MGR_EK_KIND_RSA, &rsa_id);
	if (!err)
		err = ek_public(e, MGR_EK_KIND_ECC, &ecc_id);
	if (!err)
		err = certify(v, &rsa_id, MF_NV_RSA_CERT);
	if (!err)
		err = certify(v, &ecc_id, MF_NV_ECC_CERT);
	if (!err) {
		rsa_id.kind = MGR_EK_KIND_PLATFORM;
		err = certify(v, &rsa_id, MF_NV_PLATFORM_CERT);
	}
	rc = engine_platform_disable(e);
	if (rc && !err)
		err = step_fail("TPM2_HierarchyControl(PLATFORM, NO)", rc);
	return err;
}

static void work_call(struct vtpm *v, struct vtpm_job *job)
{
	struct manufacture *mf = job->data;
	double t0 = now_ms();

	mf->result = manufacture(v);
	mf->elapsed_ms = (uint32_t)(now_ms() - t0 + 0.5);
}

static void work_done(struct vtpm_job *job)
{
	struct manufacture *mf = job->data;

	if (job->status)
		mf->result = job->status;
	if (mf->result)
		log_warnx("manufacture failed: %s", strerror(-mf->result));
	else
		log_info("manufactured: EK certificates (RSA-2048 at 0x%08x, "
			 "ECC P-256 at 0x%08x) and the platform certificate "
			 "(0x%08x) in NV, in %u ms", MF_NV_RSA_CERT,
			 MF_NV_ECC_CERT, MF_NV_PLATFORM_CERT, mf->elapsed_ms);
}

/* After the work's state is durable (the queue persisted it first). */
static void report_call(struct vtpm *v, struct vtpm_job *job)
{
	struct manufacture *mf = job->data;
	struct mgr_req req = { .type = MGR_MSG_MANUFACTURED };
	struct mgr_rsp rsp;
	char err[200];

	req.u.made.result = mf->result ? 1 : 0;
	req.u.made.elapsed_ms = mf->elapsed_ms;
	if (mgrlink_call(&v->link, &req, &rsp, err, sizeof(err)))
		log_warnx("manufacture: MANUFACTURED: %s", err);
	else if (rsp.status != MGR_SUCCESS)
		log_warnx("manufacture: the manager answered MANUFACTURED: %s",
			  mgrproto_status_str(rsp.status));
}

static void report_done(struct vtpm_job *job)
{
	(void)job;
}

void manufacture_submit(struct vtpm *v)
{
	struct manufacture *mf = &v->mf;

	mf->work = (struct vtpm_job){
		.kind = VTPM_JOB_CALL,
		.call = work_call,
		.call_offloop = true,
		.done = work_done,
		.data = mf,
	};
	mf->report = (struct vtpm_job){
		.kind = VTPM_JOB_CALL,
		.call = report_call,
		.call_offloop = true,
		.done = report_done,
		.data = mf,
	};
	vtpm_submit(v, &mf->work);
	vtpm_submit(v, &mf->report);
}
