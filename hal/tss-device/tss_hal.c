/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The physical TPM through tpm2-tss ESYS.  Layout of this file: errors,
 * PCR selections and the policy digest (pure), open/close, sessions and
 * primaries, PCRs, the sealed blob (pure), seal/unseal, NV counters,
 * attestation key and quotes.  docs/sealing.md explains the why.
 */
#include "tss-device/tss_hal.h"
#include "tis-mmio/tcti_tis.h"
#include "lib/errbuf.h"
#include "lib/hex.h"
#include "lib/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#define PCR_MASK_ALL ((UINT32_C(1) << TSS_HAL_PCR_COUNT) - 1)
#define PCR_SELECT_BYTES (TSS_HAL_PCR_COUNT / 8)
#define BLOB_HDR_LEN (8 + 2 + 2 + 4 + TSS_HAL_NAME_LEN)

/* A sealed-data object that only its policy opens: no password use, no
 * admin role by password (adminWithPolicy with no matching policy), never
 * leaves this TPM or this parent. */
#define SEAL_ATTRS (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
		    TPMA_OBJECT_ADMINWITHPOLICY)

/*
 * The key store's counter (docs/sealing.md).  Only its auth value, which
 * only the manager has, lets a command increment it: AUTHWRITE, and
 * neither OWNERWRITE nor PPWRITE nor POLICYWRITE.  Reading is harmless:
 * the auth value or the owner's auth.  NO_DA: a wrong guess does not feed
 * the TPM's dictionary-attack lockout (nor is the counter blocked while
 * the TPM is locked out).  No lock attribute (WRITEDEFINE, WRITE_STCLEAR,
 * READ_STCLEAR, GLOBALLOCK): nobody can lock writes or reads of it.  An
 * empty authPolicy: TPM2_NV_ChangeAuth, whose role is ADMIN, is impossible.
 */
#define COUNTER_ATTRS (((TPMA_NV)TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT) | \
		       TPMA_NV_AUTHWRITE | TPMA_NV_AUTHREAD |                \
		       TPMA_NV_OWNERREAD | TPMA_NV_NO_DA)
/* The counter of releases before it had an auth value: named in errors. */
#define COUNTER_ATTRS_V0 (COUNTER_ATTRS | TPMA_NV_OWNERWRITE)
/* Set by the TPM as an index is used, not chosen by whoever defined it. */
#define NV_STATE_ATTRS (TPMA_NV_WRITTEN | TPMA_NV_WRITELOCKED | \
			TPMA_NV_READLOCKED)

struct tss_hal {
	TSS2_TCTI_CONTEXT *tcti;
	bool own_tcti_ldr;               /* opened with the TCTI loader */
	ESYS_CONTEXT *esys;
	ESYS_TR primary;                 /* ESYS_TR_NONE until first use */
	uint8_t primary_name[TSS_HAL_NAME_LEN];
	ESYS_TR ak;
	TPM2B_PUBLIC ak_pub;
};

/* The blob, parsed and checked (docs/sealing.md has the byte layout). */
struct seal_blob {
	uint32_t mask;
	uint8_t parent[TSS_HAL_NAME_LEN];
	uint8_t values[TSS_HAL_PCR_COUNT][32];
	TPM2B_PUBLIC pub;
	TPM2B_PRIVATE priv;
};

/* Same seed + same template = same key: nothing to store for it. */
static const TPM2B_PUBLIC storage_template = {
	.publicArea = {
		.type = TPM2_ALG_ECC,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = TPMA_OBJECT_RESTRICTED |
			TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM |
			TPMA_OBJECT_FIXEDPARENT |
			TPMA_OBJECT_SENSITIVEDATAORIGIN |
			TPMA_OBJECT_USERWITHAUTH,
		.parameters.eccDetail = {
			.symmetric = {
				.algorithm = TPM2_ALG_AES,
				.keyBits.aes = 128,
				.mode.aes = TPM2_ALG_CFB,
			},
			.scheme.scheme = TPM2_ALG_NULL,
			.curveID = TPM2_ECC_NIST_P256,
			.kdf.scheme = TPM2_ALG_NULL,
		},
	},
};

static const TPM2B_PUBLIC ak_template = {
	.publicArea = {
		.type = TPM2_ALG_ECC,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = TPMA_OBJECT_RESTRICTED |
			TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
			TPMA_OBJECT_FIXEDPARENT |
			TPMA_OBJECT_SENSITIVEDATAORIGIN |
			TPMA_OBJECT_USERWITHAUTH,
		.parameters.eccDetail = {
			.symmetric.algorithm = TPM2_ALG_NULL,
			.scheme = {
				.scheme = TPM2_ALG_ECDSA,
				.details.ecdsa.hashAlg = TPM2_ALG_SHA256,
			},
			.curveID = TPM2_ECC_NIST_P256,
			.kdf.scheme = TPM2_ALG_NULL,
		},
	},
};

static const TPM2B_SENSITIVE_CREATE no_sensitive;
static const TPM2B_DATA no_outside_info;
static const TPML_PCR_SELECTION no_creation_pcrs;

/* ---- errors (seterr: lib/errbuf.h) ----------------------------------- */

/*
 * The TPM's code without the handle/session/parameter number that format-1
 * codes carry, so it compares equal to a TPM2_RC_* constant.  A resource
 * manager may pass TPM codes up in its own layer.
 */
static TSS2_RC rc_base(TSS2_RC rc)
{
	if ((rc & TSS2_RC_LAYER_MASK) == TSS2_RESMGR_TPM_RC_LAYER)
		rc &= ~TSS2_RC_LAYER_MASK;
	if (rc & TSS2_RC_LAYER_MASK)
		return rc;
	if (rc & TPM2_RC_FMT1)
		return rc & (TPM2_RC_FMT1 | 0x3f);
	return rc;
}

static bool rc_is_tpm_format1(TSS2_RC rc)
{
	rc = rc_base(rc);
	return !(rc & TSS2_RC_LAYER_MASK) && (rc & TPM2_RC_FMT1);
}

static int rc_errno(TSS2_RC rc)
{
	switch (rc_base(rc)) {
	case TPM2_RC_LOCKOUT:
	case TPM2_RC_AUTH_FAIL:
	case TPM2_RC_BAD_AUTH:
	case TPM2_RC_HIERARCHY:
	case TPM2_RC_LOCALITY:
		return -EPERM;
	case TPM2_RC_OBJECT_MEMORY:
	case TPM2_RC_SESSION_MEMORY:
	case TPM2_RC_NV_SPACE:
		return -ENOSPC;
	case TPM2_RC_NV_RATE:
	case TPM2_RC_RETRY:
	case TPM2_RC_YIELDED:
	case TPM2_RC_TESTING:
		return -EBUSY;
	}
	return -EIO;
}

/* "what: decoded TPM error (rc 0x...)"; returns the errno for rc. */
static int tpm_fail(char *err, size_t errlen, TSS2_RC rc, const char *fmt,
		    ...) __attribute__((format(printf, 4, 5)));

static int tpm_fail(char *err, size_t errlen, TSS2_RC rc, const char *fmt,
		    ...)
{
	char what[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	seterr(err, errlen, "%s: %s (rc 0x%x)", what, Tss2_RC_Decode(rc), rc);
	return rc_errno(rc);
}

/* ---- PCR selections and the PolicyPCR digest (no TPM) ----------------- */

static bool sel_valid(const struct pcr_sel *sel)
{
	return sel && sel->mask && !(sel->mask & ~PCR_MASK_ALL);
}

unsigned int pcr_sel_count(const struct pcr_sel *sel)
{
	if (!sel)
		return 0;
	return (unsigned int)__builtin_popcount(sel->mask & PCR_MASK_ALL);
}

static unsigned int mask_count(uint32_t mask)
{
	struct pcr_sel s = { .mask = mask };

	return pcr_sel_count(&s);
}

int pcr_sel_parse(const char *s, struct pcr_sel *out)
{
	static const char bank[] = "sha256:";
	uint32_t mask = 0;
	const char *p;

	if (!s || !out || strncmp(s, bank, sizeof(bank) - 1))
		return -EINVAL;
	p = s + sizeof(bank) - 1;
	for (;;) {
		unsigned int n = 0, digits = 0;

		/* Two digits reach 23; a third means garbage, not PCR 100. */
		while (*p >= '0' && *p <= '9' && digits < 3) {
			n = n * 10 + (unsigned int)(*p - '0');
			p++;
			digits++;
		}
		if (!digits || digits > 2 || n >= TSS_HAL_PCR_COUNT ||
		    (mask & (UINT32_C(1) << n)))
			return -EINVAL;
		mask |= UINT32_C(1) << n;
		if (*p == '\0')
			break;
		if (*p != ',')
			return -EINVAL;
		p++;
	}
	out->mask = mask;
	return 0;
}

/* Always three select bytes: the digest must be computed over exactly
 * the selection the TPM is sent, and PCRs 0..23 need three. */
static void sel_to_tpml(uint32_t mask, TPML_PCR_SELECTION *t)
{
	memset(t, 0, sizeof(*t));
	t->count = 1;
	t->pcrSelections[0].hash = TPM2_ALG_SHA256;
	t->pcrSelections[0].sizeofSelect = PCR_SELECT_BYTES;
	for (unsigned int i = 0; i < PCR_SELECT_BYTES; i++)
		t->pcrSelections[0].pcrSelect[i] = (uint8_t)(mask >> (8 * i));
}

/* -ERANGE if the TPM selected something outside 0..23. */
static int sel_from_tpms(const TPMS_PCR_SELECTION *s, uint32_t *mask)
{
	uint32_t m = 0;

	if (s->sizeofSelect > TPM2_PCR_SELECT_MAX)
		return -ERANGE;
	for (unsigned int i = 0; i < s->sizeofSelect; i++) {
		if (i >= PCR_SELECT_BYTES && s->pcrSelect[i])
			return -ERANGE;
		if (i < PCR_SELECT_BYTES)
			m |= (uint32_t)s->pcrSelect[i] << (8 * i);
	}
	*mask = m;
	return 0;
}

int pcr_policy_digest(const struct pcr_sel *sel, const uint8_t (*values)[32],
		      uint8_t out[32])
{
	uint8_t buf[32 + 4 + sizeof(TPML_PCR_SELECTION) + 32];
	TPML_PCR_SELECTION t;
	size_t off = 32;

	if (!sel_valid(sel) || !values || !out)
		return -EINVAL;
	/* A fresh policy session's digest is all zeros. */
	memset(buf, 0, 32);
	sel_to_tpml(sel->mask, &t);
	if (Tss2_MU_UINT32_Marshal(TPM2_CC_PolicyPCR, buf, sizeof(buf), &off) ||
	    Tss2_MU_TPML_PCR_SELECTION_Marshal(&t, buf, sizeof(buf), &off))
		return -EINVAL;
	SHA256(values[0], (size_t)pcr_sel_count(sel) * 32, buf + off);
	off += 32;
	SHA256(buf, off, out);
	return 0;
}

/* ---- open, close, handles, sessions ---------------------------------- */

static void flush(struct tss_hal *h, ESYS_TR *tr)
{
	if (*tr == ESYS_TR_NONE)
		return;
	if (Esys_FlushContext(h->esys, *tr) != TSS2_RC_SUCCESS)
		Esys_TR_Close(h->esys, tr);
	*tr = ESYS_TR_NONE;
}

static void flush_tpm_handle(struct tss_hal *h, TPM2_HANDLE handle)
{
	ESYS_TR tr;

	if (Esys_TR_FromTPMPublic(h->esys, handle, ESYS_TR_NONE, ESYS_TR_NONE,
				  ESYS_TR_NONE, &tr) == TSS2_RC_SUCCESS)
		flush(h, &tr);
}

/*
 * A TPM without a resource manager (swtpm, /dev/tpm0) keeps the objects
 * and sessions of a killed predecessor loaded, and it has only a few slots
 * (swtpm: three of each).  Behind /dev/tpmrm0 a new connection sees none.
 * This is also the first command: it proves the TPM answers.
 */
static int flush_stale(struct tss_hal *h, char *err, size_t errlen)
{
	/* Not TPM2_HR_*: tss2's macros shift 0x80 into an int's sign bit. */
	static const TPM2_HANDLE first[] = {
		(TPM2_HANDLE)TPM2_HT_TRANSIENT << TPM2_HR_SHIFT,
		(TPM2_HANDLE)TPM2_HT_LOADED_SESSION << TPM2_HR_SHIFT,
	};

	for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++) {
		TPMS_CAPABILITY_DATA *cap = NULL;
		TPMI_YES_NO more;
		TSS2_RC rc;

		rc = Esys_GetCapability(h->esys, ESYS_TR_NONE, ESYS_TR_NONE,
					ESYS_TR_NONE, TPM2_CAP_HANDLES, first[i],
					TPM2_MAX_CAP_HANDLES, &more, &cap);
		if (rc != TSS2_RC_SUCCESS) {
			tpm_fail(err, errlen, rc, "TPM2_GetCapability");
			return -ENODEV;
		}
		for (UINT32 j = 0; j < cap->data.handles.count; j++) {
			TPM2_HANDLE hd = cap->data.handles.handle[j];
			TPM2_HT type = (TPM2_HT)(hd >> TPM2_HR_SHIFT);

			if (type == TPM2_HT_TRANSIENT ||
			    type == TPM2_HT_HMAC_SESSION ||
			    type == TPM2_HT_POLICY_SESSION)
				flush_tpm_handle(h, hd);
		}
		Esys_Free(cap);
	}
	return 0;
}

/* ESYS over an open TCTI, and the stale-handle flush; takes the TCTI. */
static int hal_attach(struct tss_hal *h, const char *what, char *err,
		      size_t errlen)
{
	TSS2_RC rc;
	int ret;

	rc = Esys_Initialize(&h->esys, h->tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		seterr(err, errlen, "TPM at %s: ESYS: %s", what,
		       Tss2_RC_Decode(rc));
		tss_hal_close(h);
		return -ENODEV;
	}
	ret = flush_stale(h, err, errlen);
	if (ret) {
		char why[200];

		snprintf(why, sizeof(why), "%s", err ? err : "");
		seterr(err, errlen, "TPM at %s does not answer: %s", what, why);
		tss_hal_close(h);
		return ret;
	}
	return 0;
}

static struct tss_hal *hal_new(char *err, size_t errlen)
{
	struct tss_hal *h = calloc(1, sizeof(*h));

	if (!h) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	h->primary = ESYS_TR_NONE;
	h->ak = ESYS_TR_NONE;
	return h;
}

int tss_hal_open(const char *tcti, struct tss_hal **out, char *err,
		 size_t errlen)
{
	struct tss_hal *h;
	char what[300];
	TSS2_RC rc;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!tcti)
		tcti = TSS_HAL_TCTI_DEFAULT;
	h = hal_new(err, errlen);
	if (!h)
		return -ENOMEM;
	rc = Tss2_TctiLdr_Initialize(tcti, &h->tcti);
	if (rc != TSS2_RC_SUCCESS) {
		seterr(err, errlen, "TPM at TCTI \"%s\": cannot open it: %s",
		       tcti, Tss2_RC_Decode(rc));
		free(h);
		return -ENODEV;
	}
	h->own_tcti_ldr = true;
	snprintf(what, sizeof(what), "TCTI \"%s\"", tcti);
	ret = hal_attach(h, what, err, errlen);
	if (ret)
		return ret;
	*out = h;
	return 0;
}

int tss_hal_open_tcti(TSS2_TCTI_CONTEXT *tcti, const char *what,
		      struct tss_hal **out, char *err, size_t errlen)
{
	struct tss_hal *h;
	int ret;

	if (!out || !tcti)
		return -EINVAL;
	*out = NULL;
	h = hal_new(err, errlen);
	if (!h) {
		Tss2_Tcti_Finalize(tcti);
		free(tcti);
		return -ENOMEM;
	}
	h->tcti = tcti;
	ret = hal_attach(h, what, err, errlen);
	if (ret)
		return ret;
	*out = h;
	return 0;
}

int tss_hal_open_by_name(const char *hal, const char *tcti,
			 struct tss_hal **out, char *err, size_t errlen)
{
	TSS2_TCTI_CONTEXT *tis;
	int rc;

	if (strcmp(hal, "tis-mmio") != 0)
		return tss_hal_open(tcti, out, err, errlen);
	/* Our own TCTI on the TPM's register window: no kernel driver.
	 * tcti holds its conf ("path=/dev/mem,base=0xfed40000"). */
	if (!tcti || strcmp(tcti, TSS_HAL_TCTI_DEFAULT) == 0)
		tcti = "";
	rc = tcti_tis_init_mmio(tcti, &tis, err, errlen);
	if (rc)
		return rc;
	log_info("physical TPM through its TIS registers (DID_VID 0x%08x)",
		 tcti_tis_did_vid(tis));
	return tss_hal_open_tcti(tis, "TIS registers", out, err, errlen);
}

void tss_hal_close(struct tss_hal *h)
{
	if (!h)
		return;
	if (h->esys) {
		flush(h, &h->ak);
		flush(h, &h->primary);
		Esys_Finalize(&h->esys);
	}
	if (h->tcti && h->own_tcti_ldr) {
		Tss2_TctiLdr_Finalize(&h->tcti);
	} else if (h->tcti) {
		/* A TCTI handed to tss_hal_open_tcti: malloc'd by its init. */
		Tss2_Tcti_Finalize(h->tcti);
		free(h->tcti);
	}
	free(h);
}

/*
 * A session salted with the storage primary: the one parameter it
 * encrypts (crypt: the secret going in or coming out) never crosses the
 * bus to a discrete TPM in the clear.
 */
static int session_start(struct tss_hal *h, TPM2_SE type, TPMA_SESSION crypt,
			 ESYS_TR *sess, char *err, size_t errlen)
{
	static const TPMT_SYM_DEF aes = {
		.algorithm = TPM2_ALG_AES,
		.keyBits.aes = 128,
		.mode.aes = TPM2_ALG_CFB,
	};
	TSS2_RC rc;

	*sess = ESYS_TR_NONE;
	rc = Esys_StartAuthSession(h->esys, h->primary, ESYS_TR_NONE,
				   ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
				   NULL, type, &aes, TPM2_ALG_SHA256, sess);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(err, errlen, rc, "TPM2_StartAuthSession");
	rc = Esys_TRSess_SetAttributes(h->esys, *sess,
				       crypt | TPMA_SESSION_CONTINUESESSION,
				       0xff);
	if (rc != TSS2_RC_SUCCESS) {
		flush(h, sess);
		return tpm_fail(err, errlen, rc, "session attributes");
	}
	return 0;
}

static int primary_create(struct tss_hal *h, ESYS_TR hierarchy,
			  const TPM2B_PUBLIC *tmpl, const char *what,
			  ESYS_TR *tr, TPM2B_PUBLIC *pub, char *err,
			  size_t errlen)
{
	TPM2B_PUBLIC *out_pub = NULL;
	TSS2_RC rc;

	rc = Esys_CreatePrimary(h->esys, hierarchy, ESYS_TR_PASSWORD,
				ESYS_TR_NONE, ESYS_TR_NONE, &no_sensitive, tmpl,
				&no_outside_info, &no_creation_pcrs, tr,
				&out_pub, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		*tr = ESYS_TR_NONE;
		return tpm_fail(err, errlen, rc, "TPM2_CreatePrimary of the %s",
				what);
	}
	if (pub)
		*pub = *out_pub;
	Esys_Free(out_pub);
	return 0;
}

int tss_hal_primary(struct tss_hal *h, char *err, size_t errlen)
{
	TPM2B_NAME *name = NULL;
	TSS2_RC rc;
	int ret;

	if (!h)
		return -EINVAL;
	if (h->primary != ESYS_TR_NONE)
		return 0;
	ret = primary_create(h, ESYS_TR_RH_OWNER, &storage_template,
			     "storage key (owner hierarchy)", &h->primary, NULL,
			     err, errlen);
	if (ret)
		return ret;
	rc = Esys_TR_GetName(h->esys, h->primary, &name);
	if (rc != TSS2_RC_SUCCESS || name->size != TSS_HAL_NAME_LEN) {
		Esys_Free(name);
		flush(h, &h->primary);
		seterr(err, errlen, "storage key: cannot compute its name");
		return -EIO;
	}
	memcpy(h->primary_name, name->name, TSS_HAL_NAME_LEN);
	Esys_Free(name);
	return 0;
}

int tss_hal_primary_name(struct tss_hal *h, uint8_t name[TSS_HAL_NAME_LEN],
			 char *err, size_t errlen)
{
	int ret;

	if (!name)
		return -EINVAL;
	ret = tss_hal_primary(h, err, errlen);
	if (!ret)
		memcpy(name, h->primary_name, TSS_HAL_NAME_LEN);
	return ret;
}

/* ---- PCRs ------------------------------------------------------------ */

/* Index of PCR pcr in a values array for mask (ascending order). */
static unsigned int mask_rank(uint32_t mask, unsigned int pcr)
{
	return mask_count(mask & ((UINT32_C(1) << pcr) - 1));
}

/*
 * One TPM2_PCR_Read for the PCRs in `left`; the TPM may return only some
 * of them (at most eight digests per response).  *got says which.
 */
static int pcr_read_chunk(struct tss_hal *h, uint32_t mask, uint32_t left,
			  uint8_t (*values)[32], uint32_t *got,
			  UINT32 *counter, char *err, size_t errlen)
{
	TPML_PCR_SELECTION in, *sel = NULL;
	TPML_DIGEST *dig = NULL;
	uint32_t m = 0;
	unsigned int k = 0;
	TSS2_RC rc;
	int ret = -EIO;

	sel_to_tpml(left, &in);
	rc = Esys_PCR_Read(h->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
			   &in, counter, &sel, &dig);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(err, errlen, rc, "TPM2_PCR_Read");
	for (UINT32 i = 0; i < sel->count; i++) {
		uint32_t part;

		if (sel->pcrSelections[i].hash != TPM2_ALG_SHA256 ||
		    sel_from_tpms(&sel->pcrSelections[i], &part))
			goto bad;
		m |= part;
	}
	if (!m || (m & ~left) || mask_count(m) != dig->count) {
		if (!m) {
			seterr(err, errlen, "TPM2_PCR_Read: the TPM returned no "
			       "sha256 PCR (is the sha256 bank allocated?)");
			ret = -ENOTSUP;
			goto out;
		}
		goto bad;
	}
	for (unsigned int pcr = 0; pcr < TSS_HAL_PCR_COUNT; pcr++) {
		if (!(m & (UINT32_C(1) << pcr)))
			continue;
		if (dig->digests[k].size != 32)
			goto bad;
		memcpy(values[mask_rank(mask, pcr)], dig->digests[k].buffer, 32);
		k++;
	}
	*got = m;
	ret = 0;
	goto out;
bad:
	seterr(err, errlen, "TPM2_PCR_Read: malformed answer from the TPM");
out:
	Esys_Free(sel);
	Esys_Free(dig);
	return ret;
}

/* All of mask, from one consistent moment (the TPM's update counter did
 * not move between chunks). */
static int pcr_read_mask(struct tss_hal *h, uint32_t mask,
			 uint8_t (*values)[32], char *err, size_t errlen)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		uint32_t left = mask, got = 0;
		UINT32 first = 0, counter = 0;
		bool moved = false;
		int ret;

		while (left && !moved) {
			ret = pcr_read_chunk(h, mask, left, values, &got,
					     &counter, err, errlen);
			if (ret)
				return ret;
			if (left == mask)
				first = counter;
			moved = counter != first;
			left &= ~got;
		}
		if (!moved)
			return 0;
	}
	seterr(err, errlen, "PCRs kept changing while being read");
	return -EAGAIN;
}

int tss_hal_pcr_read(struct tss_hal *h, const struct pcr_sel *sel,
		     uint8_t (*values)[32], char *err, size_t errlen)
{
	if (!h || !values || !sel_valid(sel)) {
		seterr(err, errlen, "PCR read: empty or out-of-range selection");
		return -EINVAL;
	}
	return pcr_read_mask(h, sel->mask, values, err, errlen);
}

int tss_hal_pcr_extend(struct tss_hal *h, unsigned int pcr,
		       const uint8_t digest[32], char *err, size_t errlen)
{
	TPML_DIGEST_VALUES d = {
		.count = 1,
		.digests[0].hashAlg = TPM2_ALG_SHA256,
	};
	TSS2_RC rc;

	if (!h || !digest || pcr >= TSS_HAL_PCR_COUNT) {
		seterr(err, errlen, "PCR %u: out of range 0..%d", pcr,
		       TSS_HAL_PCR_COUNT - 1);
		return -EINVAL;
	}
	memcpy(d.digests[0].digest.sha256, digest, 32);
	rc = Esys_PCR_Extend(h->esys, ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD,
			     ESYS_TR_NONE, ESYS_TR_NONE, &d);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(err, errlen, rc, "TPM2_PCR_Extend of PCR %u",
				pcr);
	return 0;
}

/* ---- the sealed blob (no TPM) ---------------------------------------- */

static int blob_encode(const struct seal_blob *b, uint8_t **out,
		       size_t *outlen)
{
	size_t n = mask_count(b->mask), off = 8;
	size_t cap = BLOB_HDR_LEN + n * 32 + sizeof(TPM2B_PUBLIC) +
		     sizeof(TPM2B_PRIVATE);
	uint8_t *buf = malloc(cap);
	TSS2_RC rc;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, TSS_HAL_BLOB_MAGIC, 8);
	rc = Tss2_MU_UINT16_Marshal(TSS_HAL_BLOB_VERSION, buf, cap, &off);
	if (!rc)
		rc = Tss2_MU_UINT16_Marshal(TPM2_ALG_SHA256, buf, cap, &off);
	if (!rc)
		rc = Tss2_MU_UINT32_Marshal(b->mask, buf, cap, &off);
	if (!rc) {
		memcpy(buf + off, b->parent, TSS_HAL_NAME_LEN);
		off += TSS_HAL_NAME_LEN;
		memcpy(buf + off, b->values, n * 32);
		off += n * 32;
		rc = Tss2_MU_TPM2B_PUBLIC_Marshal(&b->pub, buf, cap, &off);
	}
	if (!rc)
		rc = Tss2_MU_TPM2B_PRIVATE_Marshal(&b->priv, buf, cap, &off);
	if (rc) {
		free(buf);
		return -EINVAL;
	}
	*out = buf;
	*outlen = off;
	return 0;
}

/* What only our seal produces, and the recorded PCR values must be the
 * ones the policy was computed from: they are what unseal reports. */
static int blob_check_public(const struct seal_blob *b, char *err,
			     size_t errlen)
{
	const TPMT_PUBLIC *p = &b->pub.publicArea;
	struct pcr_sel sel = { .mask = b->mask };
	uint8_t policy[32];

	if (p->type != TPM2_ALG_KEYEDHASH || p->nameAlg != TPM2_ALG_SHA256 ||
	    p->objectAttributes != SEAL_ATTRS ||
	    p->parameters.keyedHashDetail.scheme.scheme != TPM2_ALG_NULL) {
		seterr(err, errlen, "sealed blob: its object is not a "
		       "policy-only sealed-data object");
		return -EINVAL;
	}
	if (pcr_policy_digest(&sel, (const uint8_t (*)[32])b->values, policy) ||
	    p->authPolicy.size != 32 || memcmp(p->authPolicy.buffer, policy, 32)) {
		seterr(err, errlen, "sealed blob: its recorded PCR values do "
		       "not match its policy (altered blob)");
		return -EINVAL;
	}
	return 0;
}

static int blob_truncated(size_t len, char *err, size_t errlen)
{
	seterr(err, errlen, "sealed blob: truncated (%zu bytes)", len);
	return -EINVAL;
}

static int blob_parse(const uint8_t *buf, size_t len, struct seal_blob *b,
		      char *err, size_t errlen)
{
	size_t off = 8, start, n;
	uint16_t version, alg;

	memset(b, 0, sizeof(*b));
	if (!buf || len < 8 || memcmp(buf, TSS_HAL_BLOB_MAGIC, 8)) {
		seterr(err, errlen, "not a sealed blob (bad magic)");
		return -EINVAL;
	}
	if (len > TSS_HAL_BLOB_MAX) {
		seterr(err, errlen, "sealed blob: %zu bytes, more than %d",
		       len, TSS_HAL_BLOB_MAX);
		return -EINVAL;
	}
	if (Tss2_MU_UINT16_Unmarshal(buf, len, &off, &version) ||
	    Tss2_MU_UINT16_Unmarshal(buf, len, &off, &alg) ||
	    Tss2_MU_UINT32_Unmarshal(buf, len, &off, &b->mask))
		return blob_truncated(len, err, errlen);
	if (version != TSS_HAL_BLOB_VERSION) {
		seterr(err, errlen, "sealed blob: format version %u, this "
		       "build reads version %d", version, TSS_HAL_BLOB_VERSION);
		return -EINVAL;
	}
	if (alg != TPM2_ALG_SHA256) {
		seterr(err, errlen, "sealed blob: PCR bank 0x%04x, only "
		       "sha256 (0x000b) is supported", alg);
		return -EINVAL;
	}
	if (!b->mask || (b->mask & ~PCR_MASK_ALL)) {
		seterr(err, errlen, "sealed blob: invalid PCR selection 0x%08x",
		       b->mask);
		return -EINVAL;
	}
	n = mask_count(b->mask);
	if (len - off < TSS_HAL_NAME_LEN + n * 32)
		return blob_truncated(len, err, errlen);
	memcpy(b->parent, buf + off, TSS_HAL_NAME_LEN);
	off += TSS_HAL_NAME_LEN;
	memcpy(b->values, buf + off, n * 32);
	off += n * 32;
	start = off;
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, len, &off, &b->pub) ||
	    off - start != 2u + b->pub.size) {
		seterr(err, errlen, "sealed blob: malformed TPM2B_PUBLIC");
		return -EINVAL;
	}
	if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(buf, len, &off, &b->priv) ||
	    !b->priv.size) {
		seterr(err, errlen, "sealed blob: malformed TPM2B_PRIVATE");
		return -EINVAL;
	}
	if (off != len) {
		seterr(err, errlen, "sealed blob: %zu bytes of trailing garbage",
		       len - off);
		return -EINVAL;
	}
	return blob_check_public(b, err, errlen);
}

/* ---- seal and unseal ------------------------------------------------- */

static void seal_template(TPM2B_PUBLIC *t, const uint8_t policy[32])
{
	memset(t, 0, sizeof(*t));
	t->publicArea.type = TPM2_ALG_KEYEDHASH;
	t->publicArea.nameAlg = TPM2_ALG_SHA256;
	t->publicArea.objectAttributes = SEAL_ATTRS;
	t->publicArea.authPolicy.size = 32;
	memcpy(t->publicArea.authPolicy.buffer, policy, 32);
	t->publicArea.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;
}

static int seal_create(struct tss_hal *h, const uint8_t *secret, size_t len,
		       struct seal_blob *b, char *err, size_t errlen)
{
	struct pcr_sel sel = { .mask = b->mask };
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_PRIVATE *priv = NULL;
	TPM2B_PUBLIC tmpl, *pub = NULL;
	uint8_t policy[32];
	ESYS_TR sess;
	TSS2_RC rc;
	int ret;

	ret = pcr_policy_digest(&sel, (const uint8_t (*)[32])b->values, policy);
	if (ret)
		return ret;
	seal_template(&tmpl, policy);
	ret = session_start(h, TPM2_SE_HMAC, TPMA_SESSION_DECRYPT, &sess, err,
			    errlen);
	if (ret)
		return ret;
	memset(&sens, 0, sizeof(sens));
	sens.sensitive.data.size = (UINT16)len;
	memcpy(sens.sensitive.data.buffer, secret, len);
	rc = Esys_Create(h->esys, h->primary, sess, ESYS_TR_NONE, ESYS_TR_NONE,
			 &sens, &tmpl, &no_outside_info, &no_creation_pcrs,
			 &priv, &pub, NULL, NULL, NULL);
	OPENSSL_cleanse(&sens, sizeof(sens));
	flush(h, &sess);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(err, errlen, rc,
				"TPM2_Create of the sealed object");
	b->pub = *pub;
	b->priv = *priv;
	Esys_Free(pub);
	Esys_Free(priv);
	return 0;
}

int tss_hal_seal(struct tss_hal *h, const uint8_t *secret, size_t len,
		 const struct pcr_sel *sel, const uint8_t (*expected)[32],
		 uint8_t **blob, size_t *bloblen, char *err, size_t errlen)
{
	struct seal_blob *b;
	int ret;

	if (!h || !secret || !blob || !bloblen)
		return -EINVAL;
	if (!len || len > TSS_HAL_SECRET_MAX) {
		seterr(err, errlen, "seal: a secret of %zu bytes; 1..%d fit",
		       len, TSS_HAL_SECRET_MAX);
		return -EINVAL;
	}
	if (!sel_valid(sel)) {
		seterr(err, errlen, "seal: empty or out-of-range PCR selection");
		return -EINVAL;
	}
	ret = tss_hal_primary(h, err, errlen);
	if (ret)
		return ret;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->mask = sel->mask;
	memcpy(b->parent, h->primary_name, TSS_HAL_NAME_LEN);
	if (expected)
		memcpy(b->values, expected, (size_t)pcr_sel_count(sel) * 32);
	else
		ret = pcr_read_mask(h, b->mask, b->values, err, errlen);
	if (!ret)
		ret = seal_create(h, secret, len, b, err, errlen);
	if (!ret)
		ret = blob_encode(b, blob, bloblen);
	free(b);
	return ret;
}

/* Names the PCRs whose current value differs from the blob's record. */
static int unseal_explain(struct tss_hal *h, const struct seal_blob *b,
			  char *err, size_t errlen)
{
	uint8_t cur[TSS_HAL_PCR_COUNT][32];
	char list[TSS_HAL_PCR_COUNT * 4] = "";
	size_t used = 0;
	unsigned int bad = 0, last = 0;

	if (pcr_read_mask(h, b->mask, cur, err, errlen)) {
		char why[200];

		snprintf(why, sizeof(why), "%s", err ? err : "");
		seterr(err, errlen, "the PCR policy of the sealed blob does "
		       "not hold (cannot read PCRs to say which: %s)", why);
		return -EACCES;
	}
	for (unsigned int pcr = 0; pcr < TSS_HAL_PCR_COUNT; pcr++) {
		unsigned int k = mask_rank(b->mask, pcr);

		if (!(b->mask & (UINT32_C(1) << pcr)) ||
		    !memcmp(cur[k], b->values[k], 32))
			continue;
		used += (size_t)snprintf(list + used, sizeof(list) - used,
					 "%s%u", bad ? ", " : "", pcr);
		bad++;
		last = pcr;
	}
	if (bad == 1)
		seterr(err, errlen, "PCR %u (sha256) differs from the sealed "
		       "value", last);
	else if (bad > 1)
		seterr(err, errlen, "PCRs %s (sha256) differ from the sealed "
		       "values", list);
	else
		seterr(err, errlen, "the PCR policy of the sealed blob did not "
		       "hold, yet the selected PCRs now match the sealed values");
	return -EACCES;
}

static int unseal_load(struct tss_hal *h, const struct seal_blob *b,
		       ESYS_TR *obj, char *err, size_t errlen)
{
	TSS2_RC rc;
	char want[17], have[17];

	/* Skip the 2-byte hash algorithm id: the digest is what differs. */
	if (memcmp(b->parent, h->primary_name, TSS_HAL_NAME_LEN)) {
		hex_encode(b->parent + 2, 8, want);
		hex_encode(h->primary_name + 2, 8, have);
		seterr(err, errlen, "sealed blob: sealed under storage key "
		       "%s..., this TPM's is %s...: the TPM's owner hierarchy "
		       "was cleared, or the blob is another host's", want,
		       have);
		return -EINVAL;
	}
	rc = Esys_Load(h->esys, h->primary, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		       ESYS_TR_NONE, &b->priv, &b->pub, obj);
	if (rc == TSS2_RC_SUCCESS)
		return 0;
	*obj = ESYS_TR_NONE;
	/* The TPM's verdict on the bytes themselves (integrity, size,
	 * attributes...), or marshalling refusing them: an altered blob. */
	if (rc_is_tpm_format1(rc) || (rc & TSS2_RC_LAYER_MASK) ==
	    TSS2_MU_RC_LAYER) {
		seterr(err, errlen, "sealed blob: the TPM refuses its object "
		       "(altered blob): %s", Tss2_RC_Decode(rc));
		return -EINVAL;
	}
	return tpm_fail(err, errlen, rc, "TPM2_Load of the sealed object");
}

/*
 * PolicyPCR with an empty digest makes the TPM use its current values;
 * TPM2_Unseal then fails with POLICY_FAIL unless they are the sealed
 * ones.  PCR_CHANGED: an extend slipped in between; try again.
 */
static int unseal_policy(struct tss_hal *h, const struct seal_blob *b,
			 ESYS_TR obj, TPM2B_SENSITIVE_DATA **data, char *err,
			 size_t errlen)
{
	static const TPM2B_DIGEST current;
	TPML_PCR_SELECTION pcrs;

	sel_to_tpml(b->mask, &pcrs);
	for (int attempt = 0;; attempt++) {
		const char *what = "TPM2_PolicyPCR";
		ESYS_TR sess;
		TSS2_RC rc;
		int ret;

		ret = session_start(h, TPM2_SE_POLICY, TPMA_SESSION_ENCRYPT,
				    &sess, err, errlen);
		if (ret)
			return ret;
		rc = Esys_PolicyPCR(h->esys, sess, ESYS_TR_NONE, ESYS_TR_NONE,
				    ESYS_TR_NONE, &current, &pcrs);
		if (rc == TSS2_RC_SUCCESS) {
			what = "TPM2_Unseal";
			rc = Esys_Unseal(h->esys, obj, sess, ESYS_TR_NONE,
					 ESYS_TR_NONE, data);
		}
		flush(h, &sess);
		if (rc == TSS2_RC_SUCCESS)
			return 0;
		if (rc_base(rc) == TPM2_RC_POLICY_FAIL)
			return unseal_explain(h, b, err, errlen);
		if (rc_base(rc) != TPM2_RC_PCR_CHANGED || attempt == 2)
			return tpm_fail(err, errlen, rc, "%s", what);
	}
}

int tss_hal_unseal(struct tss_hal *h, const uint8_t *blob, size_t bloblen,
		   uint8_t *out, size_t *outlen, char *err, size_t errlen)
{
	TPM2B_SENSITIVE_DATA *data = NULL;
	ESYS_TR obj = ESYS_TR_NONE;
	struct seal_blob *b;
	int ret;

	if (!h || !out || !outlen)
		return -EINVAL;
	b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	ret = blob_parse(blob, bloblen, b, err, errlen);
	if (!ret)
		ret = tss_hal_primary(h, err, errlen);
	if (!ret)
		ret = unseal_load(h, b, &obj, err, errlen);
	if (!ret)
		ret = unseal_policy(h, b, obj, &data, err, errlen);
	if (!ret && !data)
		ret = -EIO;
	if (!ret && data->size > *outlen) {
		seterr(err, errlen, "unseal: the secret is %u bytes, the "
		       "buffer %zu", data->size, *outlen);
		ret = -ENOBUFS;
	} else if (!ret) {
		memcpy(out, data->buffer, data->size);
		*outlen = data->size;
	}
	if (data) {
		OPENSSL_cleanse(data, sizeof(*data));
		Esys_Free(data);
	}
	flush(h, &obj);
	free(b);
	return ret;
}

/* ---- NV counters ----------------------------------------------------- */

static int nv_index_check(struct tss_hal *h, uint32_t idx, char *err,
			  size_t errlen)
{
	if (!h)
		return -EINVAL;
	if ((idx & TPM2_HR_RANGE_MASK) != TPM2_HR_NV_INDEX) {
		seterr(err, errlen, "0x%08x is not an NV index handle "
		       "(0x01xxxxxx)", idx);
		return -EINVAL;
	}
	return 0;
}

/*
 * The TPM drops trailing zero bytes of an authValue (NV_DefineSpace, and
 * every HMAC over it), so this does too: the HMACs then agree whichever
 * side trimmed.  What is left must not be empty, or the counter would have
 * no auth at all: all-zero bytes are refused.  Never names the bytes.
 */
static int counter_auth(uint32_t idx, const uint8_t *auth, size_t len,
			TPM2B_AUTH *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!auth || !len || len > TSS_HAL_COUNTER_AUTH_MAX) {
		seterr(err, errlen, "NV counter 0x%08x: an auth value of %zu "
		       "bytes, 1..%d fit", idx, len, TSS_HAL_COUNTER_AUTH_MAX);
		return -EINVAL;
	}
	while (len && !auth[len - 1])
		len--;
	if (!len) {
		seterr(err, errlen, "NV counter 0x%08x: the auth value is all "
		       "zero bytes, which the TPM takes as no auth at all", idx);
		return -EINVAL;
	}
	out->size = (UINT16)len;
	memcpy(out->buffer, auth, len);
	return 0;
}

static int nv_open(struct tss_hal *h, uint32_t idx, ESYS_TR *tr, char *err,
		   size_t errlen)
{
	TSS2_RC rc;

	rc = Esys_TR_FromTPMPublic(h->esys, idx, ESYS_TR_NONE, ESYS_TR_NONE,
				   ESYS_TR_NONE, tr);
	if (rc == TSS2_RC_SUCCESS)
		return 0;
	*tr = ESYS_TR_NONE;
	if (rc_base(rc) == TPM2_RC_HANDLE) {
		seterr(err, errlen, "NV counter 0x%08x is not defined", idx);
		return -ENOENT;
	}
	return tpm_fail(err, errlen, rc, "NV counter 0x%08x", idx);
}

/* Drops the auth value ESYS keeps with the handle, then the handle. */
static void nv_close(struct tss_hal *h, ESYS_TR *tr)
{
	static const TPM2B_AUTH none;

	if (*tr != ESYS_TR_NONE) {
		Esys_TR_SetAuth(h->esys, *tr, &none);
		Esys_TR_Close(h->esys, tr);
	}
	*tr = ESYS_TR_NONE;
}

static bool counter_is_ours(const TPMS_NV_PUBLIC *p)
{
	return (p->attributes & ~NV_STATE_ATTRS) == COUNTER_ATTRS &&
	       p->nameAlg == TPM2_ALG_SHA256 && p->dataSize == 8 &&
	       !p->authPolicy.size;
}

/* What is at the index: *ours, and its attributes for messages. */
static int counter_public(struct tss_hal *h, ESYS_TR tr, uint32_t idx,
			  bool *ours, TPMA_NV *attrs, char *err,
			  size_t errlen)
{
	TPM2B_NV_PUBLIC *pub = NULL;
	TSS2_RC rc;

	rc = Esys_NV_ReadPublic(h->esys, tr, ESYS_TR_NONE, ESYS_TR_NONE,
				ESYS_TR_NONE, &pub, NULL);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(err, errlen, rc, "TPM2_NV_ReadPublic of 0x%08x",
				idx);
	*ours = counter_is_ours(&pub->nvPublic);
	*attrs = pub->nvPublic.attributes;
	Esys_Free(pub);
	return 0;
}

/* For messages: says so when attrs are an earlier release's counter. */
static const char *counter_attrs_why(TPMA_NV attrs)
{
	if ((attrs & ~NV_STATE_ATTRS) == COUNTER_ATTRS_V0)
		return ", the layout of an earlier vtpm-service whose counter "
		       "anyone could increment";
	return "";
}

static bool rc_is_auth_fail(TSS2_RC rc)
{
	rc = rc_base(rc);
	return rc == TPM2_RC_AUTH_FAIL || rc == TPM2_RC_BAD_AUTH;
}

static int counter_auth_refused(uint32_t idx, const char *what, char *err,
				size_t errlen)
{
	seterr(err, errlen, "NV counter 0x%08x refuses the manager's auth "
	       "value (%s): it was undefined and defined again by someone "
	       "else, or with another root key; undefine it (tpm2_nvundefine "
	       "-C o 0x%08x) or pick another nv-index", idx, what, idx);
	return -EPERM;
}

/*
 * Reads the counter.  auth_handle is the index itself (sess: a salted HMAC
 * session, the index's auth set on tr) or ESYS_TR_RH_OWNER (sess:
 * ESYS_TR_PASSWORD, the owner's empty auth: nothing secret).
 */
static int counter_get(struct tss_hal *h, ESYS_TR auth_handle, ESYS_TR tr,
		       ESYS_TR sess, uint32_t idx, uint64_t *value, char *err,
		       size_t errlen)
{
	TPM2B_MAX_NV_BUFFER *d = NULL;
	uint64_t v = 0;
	TSS2_RC rc;

	rc = Esys_NV_Read(h->esys, auth_handle, tr, sess, ESYS_TR_NONE,
			  ESYS_TR_NONE, 8, 0, &d);
	if (rc_base(rc) == TPM2_RC_NV_UNINITIALIZED) {
		seterr(err, errlen, "NV counter 0x%08x was never incremented "
		       "(define it with tss_hal_counter_define)", idx);
		return -ENODATA;
	}
	if (rc_is_auth_fail(rc) && auth_handle != ESYS_TR_RH_OWNER)
		return counter_auth_refused(idx, "TPM2_NV_Read", err, errlen);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(err, errlen, rc, "TPM2_NV_Read of counter "
				"0x%08x", idx);
	if (d->size != 8) {
		seterr(err, errlen, "NV counter 0x%08x: read %u bytes, not 8",
		       idx, d->size);
		Esys_Free(d);
		return -EIO;
	}
	for (int i = 0; i < 8; i++)
		v = v << 8 | d->buffer[i];
	Esys_Free(d);
	*value = v;
	return 0;
}

/*
 * A session for the counter's auth role: HMAC, salted with the storage
 * primary.  The auth value never travels, only HMACs keyed with it and
 * the session key; the salt keeps an eavesdropper from testing guesses
 * of it offline.  crypt: TPMA_SESSION_DECRYPT where the command's first
 * parameter is the auth value itself (NV_DefineSpace).
 */
static int counter_session(struct tss_hal *h, TPMA_SESSION crypt,
			   ESYS_TR *sess, char *err, size_t errlen)
{
	int ret = tss_hal_primary(h, err, errlen);

	if (ret) {
		*sess = ESYS_TR_NONE;
		return ret;
	}
	return session_start(h, TPM2_SE_HMAC, crypt, sess, err, errlen);
}

/* The index, opened, with the auth value set for its auth role. */
static int counter_open(struct tss_hal *h, uint32_t idx,
			const TPM2B_AUTH *auth, ESYS_TR *tr, char *err,
			size_t errlen)
{
	TSS2_RC rc;
	int ret;

	ret = nv_open(h, idx, tr, err, errlen);
	if (ret)
		return ret;
	rc = Esys_TR_SetAuth(h->esys, *tr, auth);
	if (rc != TSS2_RC_SUCCESS) {
		nv_close(h, tr);
		return tpm_fail(err, errlen, rc, "NV counter 0x%08x: set auth",
				idx);
	}
	return 0;
}

/* TPM2_NV_Increment in the index's auth role, then its new value. */
static int counter_bump(struct tss_hal *h, ESYS_TR tr, uint32_t idx,
			uint64_t *value, char *err, size_t errlen)
{
	ESYS_TR sess;
	TSS2_RC rc;
	int ret;

	ret = counter_session(h, 0, &sess, err, errlen);
	if (ret)
		return ret;
	rc = Esys_NV_Increment(h->esys, tr, tr, sess, ESYS_TR_NONE,
			       ESYS_TR_NONE);
	if (rc_is_auth_fail(rc))
		ret = counter_auth_refused(idx, "TPM2_NV_Increment", err,
					   errlen);
	else if (rc != TSS2_RC_SUCCESS)
		ret = tpm_fail(err, errlen, rc, "TPM2_NV_Increment of counter "
			       "0x%08x", idx);
	else if (value)
		ret = counter_get(h, tr, tr, sess, idx, value, err, errlen);
	flush(h, &sess);
	return ret;
}

/* The index handle and the auth value: -EINVAL before any TPM work. */
static int counter_args(struct tss_hal *h, uint32_t idx, const uint8_t *auth,
			size_t auth_len, TPM2B_AUTH *a, char *err,
			size_t errlen)
{
	int ret = nv_index_check(h, idx, err, errlen);

	if (!ret)
		ret = counter_auth(idx, auth, auth_len, a, err, errlen);
	return ret;
}

int tss_hal_counter_define(struct tss_hal *h, uint32_t nv_index,
			   const uint8_t *auth, size_t auth_len, char *err,
			   size_t errlen)
{
	TPM2B_NV_PUBLIC pub = {
		.nvPublic = {
			.nvIndex = nv_index,
			.nameAlg = TPM2_ALG_SHA256,
			.attributes = COUNTER_ATTRS,
			.dataSize = 8,
		},
	};
	ESYS_TR tr = ESYS_TR_NONE, sess;
	TPMA_NV attrs = 0;
	TPM2B_AUTH a;
	bool ours = true;
	TSS2_RC rc;
	int ret;

	ret = counter_args(h, nv_index, auth, auth_len, &a, err, errlen);
	if (!ret)
		ret = counter_session(h, TPMA_SESSION_DECRYPT, &sess, err,
				      errlen);
	if (ret)
		goto out;
	/* The owner's (empty) auth in the salted session, so that the
	 * index's auth value, the first parameter, goes encrypted. */
	rc = Esys_NV_DefineSpace(h->esys, ESYS_TR_RH_OWNER, sess, ESYS_TR_NONE,
				 ESYS_TR_NONE, &a, &pub, &tr);
	flush(h, &sess);
	if (rc_base(rc) == TPM2_RC_NV_DEFINED) {
		ret = counter_open(h, nv_index, &a, &tr, err, errlen);
		if (!ret)
			ret = counter_public(h, tr, nv_index, &ours, &attrs,
					     err, errlen);
		if (!ret && !ours) {
			seterr(err, errlen, "NV index 0x%08x exists but is not "
			       "our counter (attributes 0x%08x%s; want 0x%08x, 8 "
			       "bytes, no policy): pick another nv-index, or "
			       "undefine it (tpm2_nvundefine -C o 0x%08x) if "
			       "nothing else uses it", nv_index, attrs,
			       counter_attrs_why(attrs), COUNTER_ATTRS,
			       nv_index);
			ret = -EEXIST;
		}
	} else if (rc != TSS2_RC_SUCCESS) {
		ret = tpm_fail(err, errlen, rc, "TPM2_NV_DefineSpace of "
			       "counter 0x%08x", nv_index);
	} else {
		attrs = COUNTER_ATTRS;
	}
	/* A counter reads only once incremented: make it readable (this
	 * also finishes a define that stopped before it). */
	if (!ret && !(attrs & TPMA_NV_WRITTEN))
		ret = counter_bump(h, tr, nv_index, NULL, err, errlen);
	nv_close(h, &tr);
	if (!ret)
		ret = tss_hal_counter_check(h, nv_index, auth, auth_len, err,
					    errlen);
out:
	OPENSSL_cleanse(&a, sizeof(a));
	return ret;
}

int tss_hal_counter_check(struct tss_hal *h, uint32_t nv_index,
			  const uint8_t *auth, size_t auth_len, char *err,
			  size_t errlen)
{
	ESYS_TR tr = ESYS_TR_NONE, sess = ESYS_TR_NONE;
	TPMA_NV attrs = 0;
	TPM2B_AUTH a;
	uint64_t v;
	bool ours = false;
	int ret;

	ret = counter_args(h, nv_index, auth, auth_len, &a, err, errlen);
	if (!ret)
		ret = counter_open(h, nv_index, &a, &tr, err, errlen);
	if (!ret)
		ret = counter_public(h, tr, nv_index, &ours, &attrs, err,
				     errlen);
	if (!ret && !ours) {
		seterr(err, errlen, "NV index 0x%08x is not the manager's "
		       "counter any more (attributes 0x%08x%s; want 0x%08x, 8 "
		       "bytes, no policy): someone undefined it and defined "
		       "another index there", nv_index, attrs,
		       counter_attrs_why(attrs), COUNTER_ATTRS);
		ret = -EPERM;
	}
	/* Proof of the auth value that changes nothing: a read in the
	 * index's own role, whose response HMAC only a TPM that holds the
	 * same auth value can compute. */
	if (!ret)
		ret = counter_session(h, 0, &sess, err, errlen);
	if (!ret)
		ret = counter_get(h, tr, tr, sess, nv_index, &v, err, errlen);
	flush(h, &sess);
	nv_close(h, &tr);
	OPENSSL_cleanse(&a, sizeof(a));
	return ret;
}

int tss_hal_counter_read(struct tss_hal *h, uint32_t nv_index,
			 uint64_t *value, char *err, size_t errlen)
{
	ESYS_TR tr;
	int ret;

	if (!value)
		return -EINVAL;
	ret = nv_index_check(h, nv_index, err, errlen);
	if (!ret)
		ret = nv_open(h, nv_index, &tr, err, errlen);
	if (ret)
		return ret;
	ret = counter_get(h, ESYS_TR_RH_OWNER, tr, ESYS_TR_PASSWORD, nv_index,
			  value, err, errlen);
	nv_close(h, &tr);
	return ret;
}

int tss_hal_counter_increment(struct tss_hal *h, uint32_t nv_index,
			      const uint8_t *auth, size_t auth_len,
			      uint64_t *new_value, char *err, size_t errlen)
{
	ESYS_TR tr = ESYS_TR_NONE;
	TPM2B_AUTH a;
	int ret;

	if (!new_value)
		return -EINVAL;
	ret = counter_args(h, nv_index, auth, auth_len, &a, err, errlen);
	if (!ret)
		ret = counter_open(h, nv_index, &a, &tr, err, errlen);
	if (!ret)
		ret = counter_bump(h, tr, nv_index, new_value, err, errlen);
	nv_close(h, &tr);
	OPENSSL_cleanse(&a, sizeof(a));
	return ret;
}

/* ---- attestation key and quotes --------------------------------------- */

static int ak_ensure(struct tss_hal *h, char *err, size_t errlen)
{
	if (h->ak != ESYS_TR_NONE)
		return 0;
	return primary_create(h, ESYS_TR_RH_ENDORSEMENT, &ak_template,
			      "attestation key (endorsement hierarchy)", &h->ak,
			      &h->ak_pub, err, errlen);
}

/* Right-aligned: a TPM may drop leading zero bytes of a coordinate. */
static int ecc_coord(const TPM2B_ECC_PARAMETER *c, uint8_t out[32])
{
	if (c->size > 32)
		return -EIO;
	memset(out, 0, 32);
	memcpy(out + 32 - c->size, c->buffer, c->size);
	return 0;
}

static int spki_from_point(const TPMS_ECC_POINT *pt, uint8_t **der,
			   size_t *len)
{
	static char group[] = "prime256v1";
	uint8_t raw[65], *buf = NULL, *p;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM params[3];
	int n, ret = -EIO;

	raw[0] = 0x04;  /* uncompressed point */
	if (ecc_coord(&pt->x, raw + 1) || ecc_coord(&pt->y, raw + 33))
		return -EIO;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
						     group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
						      raw, sizeof(raw));
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto out;
	n = i2d_PUBKEY(pkey, NULL);
	if (n <= 0)
		goto out;
	buf = malloc((size_t)n);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	p = buf;
	if (i2d_PUBKEY(pkey, &p) != n) {
		free(buf);
		goto out;
	}
	*der = buf;
	*len = (size_t)n;
	ret = 0;
out:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return ret;
}

int tss_hal_ak(struct tss_hal *h, uint8_t **spki_der, size_t *spki_len,
	       char *err, size_t errlen)
{
	int ret;

	if (!h || !spki_der || !spki_len)
		return -EINVAL;
	ret = ak_ensure(h, err, errlen);
	if (ret)
		return ret;
	ret = spki_from_point(&h->ak_pub.publicArea.unique.ecc, spki_der,
			      spki_len);
	if (ret)
		seterr(err, errlen, "attestation key: cannot encode its public "
		       "key as SubjectPublicKeyInfo");
	return ret;
}

static int sig_to_der(const TPMT_SIGNATURE *s, uint8_t **der, size_t *len)
{
	const TPMS_SIGNATURE_ECC *e = &s->signature.ecdsa;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *sv = NULL;
	uint8_t *buf, *p;
	int n, ret = -EIO;

	if (s->sigAlg != TPM2_ALG_ECDSA || e->signatureR.size > 32 ||
	    e->signatureS.size > 32)
		return -EIO;
	es = ECDSA_SIG_new();
	r = BN_bin2bn(e->signatureR.buffer, e->signatureR.size, NULL);
	sv = BN_bin2bn(e->signatureS.buffer, e->signatureS.size, NULL);
	if (!es || !r || !sv || !ECDSA_SIG_set0(es, r, sv)) {
		BN_free(r);
		BN_free(sv);
		goto out;
	}
	n = i2d_ECDSA_SIG(es, NULL);
	if (n <= 0)
		goto out;
	buf = malloc((size_t)n);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	p = buf;
	if (i2d_ECDSA_SIG(es, &p) != n) {
		free(buf);
		goto out;
	}
	*der = buf;
	*len = (size_t)n;
	ret = 0;
out:
	ECDSA_SIG_free(es);
	ERR_clear_error();
	return ret;
}

static int dup_bytes(const uint8_t *src, size_t len, uint8_t **out,
		     size_t *outlen)
{
	*out = malloc(len ? len : 1);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, src, len);
	*outlen = len;
	return 0;
}

int tss_hal_quote(struct tss_hal *h, const uint8_t *qd, size_t qdlen,
		  const struct pcr_sel *sel, uint8_t **attest,
		  size_t *attest_len, uint8_t **sig, size_t *sig_len,
		  char *err, size_t errlen)
{
	static const TPMT_SIG_SCHEME ecdsa = {
		.scheme = TPM2_ALG_ECDSA,
		.details.ecdsa.hashAlg = TPM2_ALG_SHA256,
	};
	TPM2B_DATA data = { .size = (UINT16)qdlen };
	TPML_PCR_SELECTION pcrs;
	TPM2B_ATTEST *q = NULL;
	TPMT_SIGNATURE *s = NULL;
	TSS2_RC rc;
	int ret;

	if (!h || (!qd && qdlen) || !attest || !attest_len || !sig ||
	    !sig_len)
		return -EINVAL;
	if (qdlen > TSS_HAL_QD_MAX || !sel_valid(sel)) {
		seterr(err, errlen, "quote: qualifying data of %zu bytes "
		       "(at most %d) or a bad PCR selection", qdlen,
		       TSS_HAL_QD_MAX);
		return -EINVAL;
	}
	ret = ak_ensure(h, err, errlen);
	if (ret)
		return ret;
	if (qdlen)
		memcpy(data.buffer, qd, qdlen);
	sel_to_tpml(sel->mask, &pcrs);
	rc = Esys_Quote(h->esys, h->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE,
			ESYS_TR_NONE, &data, &ecdsa, &pcrs, &q, &s);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(err, errlen, rc, "TPM2_Quote");
	ret = sig_to_der(s, sig, sig_len);
	if (ret) {
		seterr(err, errlen, "quote: the TPM's signature is not a "
		       "P-256 ECDSA signature");
	} else {
		ret = dup_bytes(q->attestationData, q->size, attest,
				attest_len);
		if (ret) {
			free(*sig);
			*sig = NULL;
		}
	}
	Esys_Free(q);
	Esys_Free(s);
	return ret;
}

/* ---- keys of ours under the storage primary, kept as blobs ------------ */

/*
 * A blob: an 8-byte magic, a 2-byte big-endian version, the name of the
 * storage primary it was made under, then the key's TPM2B_PUBLIC and
 * TPM2B_PRIVATE as the TPM made them.  The private part is the TPM's own
 * wrapping: the blob loads only under that primary.  Each kind of key
 * checks its public area against its own template at every parse.
 */
#define KEYBLOB_HDR_LEN (8 + 2 + TSS_HAL_NAME_LEN)

struct keyblob {
	uint8_t parent[TSS_HAL_NAME_LEN];
	TPM2B_PUBLIC pub;
	TPM2B_PRIVATE priv;
};

struct keykind {
	const char *magic;          /* 8 bytes */
	uint16_t version;
	const char *what;           /* "signing key", for messages */
	const TPM2B_PUBLIC *tmpl;   /* made from this... */
	TPMA_OBJECT attrs;          /* ...with these attributes */
	bool (*fits)(const TPMT_PUBLIC *p);
	const char *shape;          /* what fits() wants, for messages */
};

static int keyblob_parse(const struct keykind *k, const uint8_t *buf,
			 size_t len, struct keyblob *b, char *err,
			 size_t errlen)
{
	size_t off = KEYBLOB_HDR_LEN;
	const TPMT_PUBLIC *p;

	memset(b, 0, sizeof(*b));
	if (!buf || len < KEYBLOB_HDR_LEN || len > TSS_HAL_BLOB_MAX ||
	    memcmp(buf, k->magic, 8) != 0 ||
	    ((uint16_t)buf[8] << 8 | buf[9]) != k->version) {
		seterr(err, errlen, "%s blob: not a version %d blob of %s",
		       k->what, k->version, k->magic);
		return -EINVAL;
	}
	memcpy(b->parent, buf + 10, TSS_HAL_NAME_LEN);
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, len, &off, &b->pub) !=
		    TSS2_RC_SUCCESS ||
	    Tss2_MU_TPM2B_PRIVATE_Unmarshal(buf, len, &off, &b->priv) !=
		    TSS2_RC_SUCCESS ||
	    off != len) {
		seterr(err, errlen, "%s blob: truncated or trailing bytes",
		       k->what);
		return -EINVAL;
	}
	p = &b->pub.publicArea;
	if (p->nameAlg != TPM2_ALG_SHA256 || p->objectAttributes != k->attrs ||
	    !k->fits(p)) {
		seterr(err, errlen, "%s blob: not %s with our attributes",
		       k->what, k->shape);
		return -EINVAL;
	}
	return 0;
}

/* An auth value as the TPM takes it: 1..64 bytes, no trailing zero (the
 * TPM strips those, so such a value would not be the one checked). */
static int key_auth(const struct keykind *k, const uint8_t *auth,
		    size_t len, TPM2B_AUTH *a, char *err, size_t errlen)
{
	if (!auth || !len || len > sizeof(a->buffer) || auth[len - 1] == 0) {
		seterr(err, errlen, "%s: auth value of %zu bytes (1..%zu, not "
		       "ending in a zero byte)", k->what, len,
		       sizeof(a->buffer));
		return -EINVAL;
	}
	a->size = (UINT16)len;
	memcpy(a->buffer, auth, len);
	return 0;
}

/* A new key of kind k under the storage primary, with auth as its auth
 * value (sent in a salted session): its blob in *blob (malloc'd). */
static int keyblob_create(struct tss_hal *h, const struct keykind *k,
			  const uint8_t *auth, size_t auth_len,
			  uint8_t **blob, size_t *bloblen, char *err,
			  size_t errlen)
{
	TPM2B_PUBLIC tmpl = *k->tmpl;
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_PRIVATE *priv = NULL;
	TPM2B_PUBLIC *pub = NULL;
	uint8_t *buf;
	size_t off = KEYBLOB_HDR_LEN;
	ESYS_TR sess;
	TSS2_RC rc;
	int ret;

	if (!h || !blob || !bloblen)
		return -EINVAL;
	memset(&sens, 0, sizeof(sens));
	ret = key_auth(k, auth, auth_len, &sens.sensitive.userAuth, err,
		       errlen);
	if (!ret)
		ret = tss_hal_primary(h, err, errlen);
	if (!ret)
		ret = session_start(h, TPM2_SE_HMAC, TPMA_SESSION_DECRYPT,
				    &sess, err, errlen);
	if (ret) {
		OPENSSL_cleanse(&sens, sizeof(sens));
		return ret;
	}
	tmpl.publicArea.objectAttributes = k->attrs;
	rc = Esys_Create(h->esys, h->primary, sess, ESYS_TR_NONE, ESYS_TR_NONE,
			 &sens, &tmpl, &no_outside_info, &no_creation_pcrs,
			 &priv, &pub, NULL, NULL, NULL);
	OPENSSL_cleanse(&sens, sizeof(sens));
	flush(h, &sess);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_fail(err, errlen, rc, "TPM2_Create of the %s",
				k->what);
	buf = malloc(TSS_HAL_BLOB_MAX);
	ret = buf ? 0 : -ENOMEM;
	if (buf) {
		memcpy(buf, k->magic, 8);
		buf[8] = (uint8_t)(k->version >> 8);
		buf[9] = (uint8_t)k->version;
		memcpy(buf + 10, h->primary_name, TSS_HAL_NAME_LEN);
		if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, TSS_HAL_BLOB_MAX,
						 &off) != TSS2_RC_SUCCESS ||
		    Tss2_MU_TPM2B_PRIVATE_Marshal(priv, buf, TSS_HAL_BLOB_MAX,
						  &off) != TSS2_RC_SUCCESS) {
			free(buf);
			seterr(err, errlen, "%s: cannot marshal it", k->what);
			ret = -EIO;
		} else {
			*blob = buf;
			*bloblen = off;
		}
	}
	Esys_Free(pub);
	Esys_Free(priv);
	return ret;
}

/* Loads the key of a blob with its auth set: *key, flush it after. */
static int keyblob_load(struct tss_hal *h, const struct keykind *k,
			const uint8_t *blob, size_t bloblen,
			const uint8_t *auth, size_t auth_len,
			struct keyblob *b, ESYS_TR *key, char *err,
			size_t errlen)
{
	TPM2B_AUTH a;
	TSS2_RC rc;
	int ret;

	*key = ESYS_TR_NONE;
	ret = keyblob_parse(k, blob, bloblen, b, err, errlen);
	if (!ret)
		ret = key_auth(k, auth, auth_len, &a, err, errlen);
	if (!ret)
		ret = tss_hal_primary(h, err, errlen);
	if (ret)
		goto out;
	if (memcmp(b->parent, h->primary_name, TSS_HAL_NAME_LEN)) {
		seterr(err, errlen, "%s blob: made under another storage key "
		       "(the TPM's owner hierarchy was cleared, or the blob is "
		       "another host's)", k->what);
		ret = -EINVAL;
		goto out;
	}
	rc = Esys_Load(h->esys, h->primary, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		       ESYS_TR_NONE, &b->priv, &b->pub, key);
	if (rc != TSS2_RC_SUCCESS) {
		*key = ESYS_TR_NONE;
		ret = tpm_fail(err, errlen, rc, "TPM2_Load of the %s", k->what);
		goto out;
	}
	rc = Esys_TR_SetAuth(h->esys, *key, &a);
	if (rc != TSS2_RC_SUCCESS) {
		flush(h, key);
		ret = tpm_fail(err, errlen, rc, "%s: set auth", k->what);
	}
out:
	OPENSSL_cleanse(&a, sizeof(a));
	return ret;
}

/* ---- a signing key under the storage primary (the EK CA) ------------- */

#define SIGNKEY_MAGIC "VTPMSKEY"
#define SIGNKEY_VERSION 1
/* Signs any digest (certificates are not TPM-made structures, so not a
 * restricted key); never leaves this TPM or this parent; used only with
 * its auth value, in a salted HMAC session. */
#define SIGNKEY_ATTRS (TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM | \
		       TPMA_OBJECT_FIXEDPARENT |                         \
		       TPMA_OBJECT_SENSITIVEDATAORIGIN |                 \
		       TPMA_OBJECT_USERWITHAUTH)

static bool signkey_fits(const TPMT_PUBLIC *p)
{
	return p->type == TPM2_ALG_ECC &&
	       p->parameters.eccDetail.curveID == TPM2_ECC_NIST_P256 &&
	       p->parameters.eccDetail.scheme.scheme == TPM2_ALG_ECDSA;
}

static const struct keykind signkey_kind = {
	.magic = SIGNKEY_MAGIC,
	.version = SIGNKEY_VERSION,
	.what = "signing key",
	.tmpl = &ak_template,
	.attrs = SIGNKEY_ATTRS,
	.fits = signkey_fits,
	.shape = "an ECC P-256 ECDSA signing key",
};

int tss_hal_signkey_public(const uint8_t *blob, size_t bloblen,
			   uint8_t **spki_der, size_t *spki_len, char *err,
			   size_t errlen)
{
	struct keyblob b;
	int ret;

	if (!blob || !spki_der || !spki_len)
		return -EINVAL;
	ret = keyblob_parse(&signkey_kind, blob, bloblen, &b, err, errlen);
	if (ret)
		return ret;
	ret = spki_from_point(&b.pub.publicArea.unique.ecc, spki_der,
			      spki_len);
	if (ret)
		seterr(err, errlen, "signing key blob: its public point is "
		       "not on P-256");
	return ret;
}

int tss_hal_signkey_create(struct tss_hal *h, const uint8_t *auth,
			   size_t auth_len, uint8_t **blob, size_t *bloblen,
			   char *err, size_t errlen)
{
	return keyblob_create(h, &signkey_kind, auth, auth_len, blob, bloblen,
			      err, errlen);
}

int tss_hal_signkey_sign(struct tss_hal *h, const uint8_t *blob,
			 size_t bloblen, const uint8_t *auth, size_t auth_len,
			 const uint8_t digest[32], uint8_t **sig,
			 size_t *sig_len, char *err, size_t errlen)
{
	static const TPMT_SIG_SCHEME ecdsa = {
		.scheme = TPM2_ALG_ECDSA,
		.details.ecdsa.hashAlg = TPM2_ALG_SHA256,
	};
	static const TPMT_TK_HASHCHECK no_ticket = {
		.tag = TPM2_ST_HASHCHECK,
		.hierarchy = TPM2_RH_NULL,
	};
	TPM2B_DIGEST d = { .size = 32 };
	struct keyblob b;
	TPMT_SIGNATURE *s = NULL;
	ESYS_TR key = ESYS_TR_NONE, sess = ESYS_TR_NONE;
	TSS2_RC rc;
	int ret;

	if (!h || !blob || !digest || !sig || !sig_len)
		return -EINVAL;
	ret = keyblob_load(h, &signkey_kind, blob, bloblen, auth, auth_len, &b,
			   &key, err, errlen);
	if (!ret)
		ret = session_start(h, TPM2_SE_HMAC, 0, &sess, err, errlen);
	if (ret)
		goto out;
	memcpy(d.buffer, digest, 32);
	rc = Esys_Sign(h->esys, key, sess, ESYS_TR_NONE, ESYS_TR_NONE, &d,
		       &ecdsa, &no_ticket, &s);
	if (rc != TSS2_RC_SUCCESS) {
		ret = tpm_fail(err, errlen, rc, "TPM2_Sign by the signing key");
		goto out;
	}
	ret = sig_to_der(s, sig, sig_len);
	if (ret)
		seterr(err, errlen, "signing key: the TPM's signature is not a "
		       "P-256 ECDSA signature");
out:
	Esys_Free(s);
	flush(h, &sess);
	flush(h, &key);
	return ret;
}
/* ---- the migration key: an RSA decryption key under the storage primary */

#define MIGKEY_MAGIC "VTPMMKEY"
#define MIGKEY_VERSION 1
/* noDA: its auth value is a 32-byte key derived from the root key, not a
 * password; a wrong one (another manager's) must not feed the TPM's
 * dictionary-attack lockout, which would block every DA-protected object
 * of the host. */
#define MIGKEY_ATTRS (TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM |      \
		      TPMA_OBJECT_FIXEDPARENT |                        \
		      TPMA_OBJECT_SENSITIVEDATAORIGIN |                \
		      TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA)

static const TPM2B_PUBLIC migkey_template = {
	.publicArea = {
		.type = TPM2_ALG_RSA,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = MIGKEY_ATTRS,
		.parameters.rsaDetail = {
			.symmetric.algorithm = TPM2_ALG_NULL,
			.scheme.scheme = TPM2_ALG_NULL,
			.keyBits = 2048,
			.exponent = 0,
		},
	},
};

static bool migkey_fits(const TPMT_PUBLIC *p)
{
	return p->type == TPM2_ALG_RSA &&
	       p->parameters.rsaDetail.keyBits == 2048;
}

static const struct keykind migkey_kind = {
	.magic = MIGKEY_MAGIC,
	.version = MIGKEY_VERSION,
	.what = "migration key",
	.tmpl = &migkey_template,
	.attrs = MIGKEY_ATTRS,
	.fits = migkey_fits,
	.shape = "an RSA-2048 decryption key",
};

int tss_hal_migkey_create(struct tss_hal *h, const uint8_t *auth,
			  size_t auth_len, uint8_t **blob, size_t *bloblen,
			  char *err, size_t errlen)
{
	return keyblob_create(h, &migkey_kind, auth, auth_len, blob, bloblen,
			      err, errlen);
}

int tss_hal_migkey_certify(struct tss_hal *h, const uint8_t *blob,
			   size_t bloblen, const uint8_t *auth,
			   size_t auth_len, const uint8_t qd[32],
			   uint8_t **pub, size_t *pub_len, uint8_t **attest,
			   size_t *attest_len, uint8_t **sig, size_t *sig_len,
			   char *err, size_t errlen)
{
	static const TPMT_SIG_SCHEME ecdsa = {
		.scheme = TPM2_ALG_ECDSA,
		.details.ecdsa.hashAlg = TPM2_ALG_SHA256,
	};
	TPM2B_DATA data = { .size = 32 };
	struct keyblob b;
	TPM2B_ATTEST *q = NULL;
	TPMT_SIGNATURE *s = NULL;
	ESYS_TR key = ESYS_TR_NONE, sess = ESYS_TR_NONE;
	uint8_t *pb = NULL;
	size_t off = 0;
	TSS2_RC rc;
	int ret;

	if (!h || !qd || !pub || !pub_len || !attest || !attest_len || !sig ||
	    !sig_len)
		return -EINVAL;
	*pub = *attest = *sig = NULL;
	ret = ak_ensure(h, err, errlen);
	if (!ret)
		ret = keyblob_load(h, &migkey_kind, blob, bloblen, auth,
				   auth_len, &b, &key, err, errlen);
	if (!ret)
		ret = session_start(h, TPM2_SE_HMAC, 0, &sess, err, errlen);
	if (ret)
		goto out;
	memcpy(data.buffer, qd, 32);
	rc = Esys_Certify(h->esys, key, h->ak, sess, ESYS_TR_PASSWORD,
			  ESYS_TR_NONE, &data, &ecdsa, &q, &s);
	if (rc != TSS2_RC_SUCCESS) {
		ret = tpm_fail(err, errlen, rc, "TPM2_Certify of the migration "
			       "key");
		goto out;
	}
	pb = malloc(sizeof(TPM2B_PUBLIC) + 2);
	if (!pb ||
	    Tss2_MU_TPM2B_PUBLIC_Marshal(&b.pub, pb, sizeof(TPM2B_PUBLIC) + 2,
					 &off) != TSS2_RC_SUCCESS) {
		seterr(err, errlen, "migration key: cannot marshal its public "
		       "area");
		ret = -EIO;
		goto out;
	}
	ret = sig_to_der(s, sig, sig_len);
	if (ret) {
		seterr(err, errlen, "certify: the TPM's signature is not a "
		       "P-256 ECDSA signature");
		goto out;
	}
	ret = dup_bytes(q->attestationData, q->size, attest, attest_len);
	if (ret) {
		free(*sig);
		*sig = NULL;
		goto out;
	}
	*pub = pb;
	*pub_len = off;
	pb = NULL;
out:
	free(pb);
	Esys_Free(q);
	Esys_Free(s);
	flush(h, &sess);
	flush(h, &key);
	return ret;
}

int tss_hal_migkey_decrypt(struct tss_hal *h, const uint8_t *blob,
			   size_t bloblen, const uint8_t *auth,
			   size_t auth_len, const char *label,
			   const uint8_t *in, size_t inlen, uint8_t *out,
			   size_t *outlen, char *err, size_t errlen)
{
	static const TPMT_RSA_DECRYPT oaep = {
		.scheme = TPM2_ALG_OAEP,
		.details.oaep.hashAlg = TPM2_ALG_SHA256,
	};
	TPM2B_PUBLIC_KEY_RSA c;
	TPM2B_PUBLIC_KEY_RSA *msg = NULL;
	TPM2B_DATA l;
	struct keyblob b;
	ESYS_TR key = ESYS_TR_NONE, sess = ESYS_TR_NONE;
	size_t llen = label ? strlen(label) + 1 : 0;
	TSS2_RC rc;
	int ret;

	if (!h || !in || !out || !outlen || inlen > sizeof(c.buffer) ||
	    llen > sizeof(l.buffer))
		return -EINVAL;
	c.size = (UINT16)inlen;
	memcpy(c.buffer, in, inlen);
	l.size = (UINT16)llen;
	if (llen)
		memcpy(l.buffer, label, llen);
	ret = keyblob_load(h, &migkey_kind, blob, bloblen, auth, auth_len, &b,
			   &key, err, errlen);
	if (!ret)
		ret = session_start(h, TPM2_SE_HMAC, TPMA_SESSION_ENCRYPT,
				    &sess, err, errlen);
	if (ret)
		goto out;
	rc = Esys_RSA_Decrypt(h->esys, key, sess, ESYS_TR_NONE, ESYS_TR_NONE,
			      &c, &oaep, &l, &msg);
	if (rc != TSS2_RC_SUCCESS) {
		ret = tpm_fail(err, errlen, rc, "TPM2_RSA_Decrypt by the "
			       "migration key (not wrapped to this key, or "
			       "altered)");
		/* A TPM answers a bad OAEP encoding with TPM_RC_VALUE;
		 * libtpms (swtpm) with TPM_RC_FAILURE, and serves on. */
		if (rc_is_tpm_format1(rc) || rc_base(rc) == TPM2_RC_FAILURE)
			ret = -EBADMSG;
		goto out;
	}
	if (msg->size > *outlen) {
		seterr(err, errlen, "migration key: decrypted %u bytes, room "
		       "for %zu", msg->size, *outlen);
		ret = -ENOBUFS;
		goto out;
	}
	memcpy(out, msg->buffer, msg->size);
	*outlen = msg->size;
out:
	if (msg) {
		OPENSSL_cleanse(msg, sizeof(*msg));
		Esys_Free(msg);
	}
	flush(h, &sess);
	flush(h, &key);
	return ret;
}
