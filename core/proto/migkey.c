/* SPDX-License-Identifier: BSD-3-Clause */
#include "proto/migkey.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lib/bytes.h"
#include "lib/errbuf.h"
#include "proto/quote.h"

#define ALG_RSA 0x0001u
#define ALG_NULL 0x0010u
#define ST_ATTEST_CERTIFY 0x8017u


void migkey_qd(uint8_t qd[32])
{
	SHA256((const uint8_t *)MIGKEY_QD_LABEL, strlen(MIGKEY_QD_LABEL), qd);
}

/* A bounded reader: every get fails once past the end, and stays failed. */
struct rd {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};

static const uint8_t *rd_take(struct rd *r, size_t n)
{
	const uint8_t *p;

	if (r->bad || n > r->len - r->off) {
		r->bad = true;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

static uint16_t rd_u16(struct rd *r)
{
	const uint8_t *p = rd_take(r, 2);

	return p ? be16_get(p) : 0;
}

static uint32_t rd_u32(struct rd *r)
{
	const uint8_t *p = rd_take(r, 4);

	return p ? be32_get(p) : 0;
}

/* A TPM2B of at most max bytes. */
static const uint8_t *rd_2b(struct rd *r, size_t max, size_t *n)
{
	uint16_t size = rd_u16(r);

	if (size > max) {
		r->bad = true;
		return NULL;
	}
	*n = size;
	return rd_take(r, size);
}

int migkey_parse_public(const uint8_t *pub, size_t len, struct migkey *out,
			char *err, size_t errlen)
{
	struct rd r = { .p = pub, .len = len };
	const uint8_t *area, *unique;
	size_t area_len, n;
	uint8_t digest[32];

	memset(out, 0, sizeof(*out));
	if (!pub || len > MIGKEY_PUBLIC_MAX)
		return seterrc(err, errlen, -EINVAL, "migration key: public area "
			    "missing or over %d bytes", MIGKEY_PUBLIC_MAX);
	area = rd_2b(&r, MIGKEY_PUBLIC_MAX, &area_len);
	if (r.bad || r.off != len)
		return seterrc(err, errlen, -EINVAL, "migration key: public area "
			    "truncated or followed by trailing bytes");
	r = (struct rd){ .p = area, .len = area_len };
	if (rd_u16(&r) != ALG_RSA || rd_u16(&r) != TPM_ALG_SHA256 ||
	    rd_u32(&r) != MIGKEY_ATTRS)
		return seterrc(err, errlen, -EINVAL, "migration key: not an RSA "
			    "key with SHA-256 names and the attributes of a "
			    "migration key (fixedTPM, fixedParent, "
			    "sensitiveDataOrigin, userWithAuth, noDA, decrypt)");
	(void)rd_2b(&r, 64, &n);
	if (r.bad || n != 0)
		return seterrc(err, errlen, -EINVAL, "migration key: has an "
			    "authorization policy");
	/* symmetric NULL, scheme NULL, 2048 bits, the default exponent */
	if (rd_u16(&r) != ALG_NULL || rd_u16(&r) != ALG_NULL ||
	    rd_u16(&r) != 2048 || rd_u32(&r) != 0)
		return seterrc(err, errlen, -EINVAL, "migration key: not an "
			    "unrestricted RSA-2048 key with exponent 65537");
	unique = rd_2b(&r, MIGKEY_MODULUS_LEN, &n);
	if (r.bad || n != MIGKEY_MODULUS_LEN || r.off != area_len ||
	    !(unique[0] & 0x80))
		return seterrc(err, errlen, -EINVAL, "migration key: modulus "
			    "not 2048 bits, or trailing bytes");
	memcpy(out->modulus, unique, MIGKEY_MODULUS_LEN);
	SHA256(area, area_len, digest);
	be16_put(out->name, TPM_ALG_SHA256);
	memcpy(out->name + 2, digest, 32);
	return 0;
}

/* TPMS_ATTEST of TPM2_Certify: the certified name, after checking the
 * magic, the type and the qualifying data. */
static int parse_certify(const uint8_t *a, size_t len, const uint8_t **name,
			 size_t *name_len, char *err, size_t errlen)
{
	struct rd r = { .p = a, .len = len };
	const uint8_t *extra;
	uint8_t qd[32];
	size_t n;
	uint32_t magic;
	uint16_t type;

	magic = rd_u32(&r);
	type = rd_u16(&r);
	if (r.bad || magic != TPM_GENERATED_VALUE || type != ST_ATTEST_CERTIFY)
		return seterrc(err, errlen, -EINVAL, "migration key: the "
			    "certification is not a TPM's TPM2_Certify");
	(void)rd_2b(&r, QUOTE_NAME_MAX, &n);          /* qualifiedSigner */
	extra = rd_2b(&r, QUOTE_DATA_MAX, &n);
	migkey_qd(qd);
	if (r.bad || n != 32 || memcmp(extra, qd, 32) != 0)
		return seterrc(err, errlen, -EINVAL, "migration key: certified "
			    "for another purpose (qualifying data)");
	(void)rd_take(&r, 8 + 4 + 4 + 1 + 8); /* clockInfo, firmwareVersion */
	*name = rd_2b(&r, QUOTE_NAME_MAX, name_len);
	(void)rd_2b(&r, QUOTE_NAME_MAX, &n);          /* qualifiedName */
	if (r.bad || r.off != len)
		return seterrc(err, errlen, -EINVAL, "migration key: the "
			    "certification is truncated or has trailing bytes");
	return 0;
}

int migkey_verify(const uint8_t *pub, size_t publen, const uint8_t *attest,
		  size_t attestlen, const uint8_t *sig, size_t siglen,
		  const uint8_t *ak, size_t aklen, const uint8_t *pinned,
		  size_t pinnedlen, struct migkey *out, char *err,
		  size_t errlen)
{
	const uint8_t *name = NULL;
	size_t name_len = 0;
	char why[160];
	int rc;

	if (!attest || !sig || !ak || attestlen > MIGKEY_ATTEST_MAX ||
	    siglen > MIGKEY_SIG_MAX || aklen > MIGKEY_SPKI_MAX || !aklen)
		return seterrc(err, errlen, -EINVAL, "migration key: "
			    "certification, signature or AK missing or "
			    "oversize");
	rc = migkey_parse_public(pub, publen, out, err, errlen);
	if (rc)
		return rc;
	if (pinned && (pinnedlen != aklen || memcmp(pinned, ak, aklen) != 0))
		return seterrc(err, errlen, -EPERM, "migration key: certified by "
			    "an attestation key other than the pinned one");
	rc = quote_sig_verify(ak, aklen, attest, attestlen, sig, siglen, why,
			      sizeof(why));
	if (rc != QUOTE_OK)
		return seterrc(err, errlen, rc == QUOTE_E_SIGNATURE ? -EBADMSG
								 : -EINVAL,
			    "migration key: certification signature: %s", why);
	rc = parse_certify(attest, attestlen, &name, &name_len, err, errlen);
	if (rc)
		return rc;
	if (name_len != MIGKEY_NAME_LEN ||
	    memcmp(name, out->name, MIGKEY_NAME_LEN) != 0)
		return seterrc(err, errlen, -EBADMSG, "migration key: the "
			    "certification names another key");
	SHA256(ak, aklen, out->ak_sha256);
	return 0;
}

int migkey_wrap(const struct migkey *k, const uint8_t *in, size_t inlen,
		uint8_t out[MIGKEY_MODULUS_LEN])
{
	static const uint8_t e[3] = { 0x01, 0x00, 0x01 };
	uint8_t n_le[MIGKEY_MODULUS_LEN], e_le[3];
	EVP_PKEY_CTX *ctx = NULL, *enc = NULL;
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM params[3];
	unsigned char *label = NULL;
	size_t outlen = MIGKEY_MODULUS_LEN;
	int ret = -EIO;

	/* OSSL_PARAM integers are native-endian byte strings. */
	for (size_t i = 0; i < sizeof(n_le); i++)
		n_le[i] = k->modulus[sizeof(n_le) - 1 - i];
	for (size_t i = 0; i < sizeof(e_le); i++)
		e_le[i] = e[sizeof(e_le) - 1 - i];
	params[0] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_N, n_le,
					    sizeof(n_le));
	params[1] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_RSA_E, e_le,
					    sizeof(e_le));
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		goto out;
	enc = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	/* The TPM terminates a label with a zero byte: so do we. */
	label = OPENSSL_memdup(MIGKEY_OAEP_LABEL, sizeof(MIGKEY_OAEP_LABEL));
	if (!enc || !label || EVP_PKEY_encrypt_init(enc) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(enc, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(enc, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(enc, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set0_rsa_oaep_label(enc, label,
					     sizeof(MIGKEY_OAEP_LABEL)) <= 0)
		goto out;
	label = NULL; /* the context owns it */
	if (EVP_PKEY_encrypt(enc, out, &outlen, in, inlen) <= 0 ||
	    outlen != MIGKEY_MODULUS_LEN)
		goto out;
	ret = 0;
out:
	OPENSSL_free(label);
	EVP_PKEY_CTX_free(enc);
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return ret;
}
