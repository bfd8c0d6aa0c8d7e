/* SPDX-License-Identifier: BSD-3-Clause */
#include "proto/ekcert.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

const char *ekcert_strerror(int err)
{
	switch (err) {
	case EKCERT_OK:
		return "ok";
	case EKCERT_ERR_KEY:
		return "not a public key of the expected kind";
	case EKCERT_ERR_PARAM:
		return "a certificate field is out of range";
	case EKCERT_ERR_CRYPTO:
		return "crypto library failure";
	case EKCERT_ERR_FORMAT:
		return "malformed DER";
	}
	return "unknown error";
}

static int key_fromdata(OSSL_PARAM_BLD *bld, const char *type, EVP_PKEY **out)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	int rc = EKCERT_ERR_KEY;

	*out = NULL;
	if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) == 1)
		rc = 0;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return rc;
}

int ekcert_rsa_key(const uint8_t *n, size_t len, EVP_PKEY **out)
{
	OSSL_PARAM_BLD *bld;
	BIGNUM *bn_n, *bn_e;
	int rc = EKCERT_ERR_CRYPTO;

	*out = NULL;
	/* A 2048-bit modulus has its top bit set and is odd. */
	if (len != EKCERT_RSA_LEN || !(n[0] & 0x80) || !(n[len - 1] & 1))
		return EKCERT_ERR_KEY;
	bld = OSSL_PARAM_BLD_new();
	bn_n = BN_bin2bn(n, (int)len, NULL);
	bn_e = BN_new();
	if (bld && bn_n && bn_e && BN_set_word(bn_e, 65537) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
		rc = key_fromdata(bld, "RSA", out);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn_n);
	BN_free(bn_e);
	return rc;
}

int ekcert_ecc_key(const uint8_t *xy, size_t len, EVP_PKEY **out)
{
	uint8_t point[1 + EKCERT_ECC_LEN];
	OSSL_PARAM_BLD *bld;
	int rc = EKCERT_ERR_CRYPTO;

	*out = NULL;
	if (len != EKCERT_ECC_LEN)
		return EKCERT_ERR_KEY;
	point[0] = 0x04; /* uncompressed */
	memcpy(point + 1, xy, len);
	bld = OSSL_PARAM_BLD_new();
	if (bld &&
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
					    "prime256v1", 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
					     point, sizeof(point)))
		rc = key_fromdata(bld, "EC", out);
	OSSL_PARAM_BLD_free(bld);
	/* fromdata takes any point; a certificate only one on the curve. */
	if (rc == 0) {
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, *out, NULL);

		if (!c || EVP_PKEY_public_check(c) != 1) {
			EVP_PKEY_free(*out);
			*out = NULL;
			rc = EKCERT_ERR_KEY;
		}
		EVP_PKEY_CTX_free(c);
	}
	return rc;
}

void ekcert_tpm_strings(const struct ekcert_tpm *t, char manufacturer[12],
			char model[EKCERT_MODEL_LEN + 1], char version[12])
{
	size_t n = 0;

	snprintf(manufacturer, 12, "id:%08X", (unsigned)t->manufacturer);
	snprintf(version, 12, "id:%08X", (unsigned)t->fw_version[0]);
	/* The vendor strings are four groups of four characters, NUL
	 * padded; the model is their printable characters, trimmed. */
	for (size_t i = 0; i < EKCERT_MODEL_LEN; i++)
		if (t->model[i] >= 0x20 && t->model[i] <= 0x7e)
			model[n++] = (char)t->model[i];
	while (n && model[n - 1] == ' ')
		n--;
	model[n] = '\0';
	if (n == 0)
		snprintf(model, EKCERT_MODEL_LEN + 1, "unknown");
}

/* ---- extensions ---- */

static int add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok = ext && X509_add_ext(x, ext, -1) == 1;

	X509_EXTENSION_free(ext);
	return ok ? 0 : EKCERT_ERR_CRYPTO;
}

/* A critical subjectAltName of one directoryName with three attributes,
 * each its own RDN (as swtpm_cert writes them). */
static int add_san_dirname(X509 *x, const char *const oids[3],
			   const char *const values[3])
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	X509_NAME *dn = X509_NAME_new();
	int rc = EKCERT_ERR_CRYPTO;

	if (!gens || !gn || !dn)
		goto out;
	for (int i = 0; i < 3; i++) {
		ASN1_OBJECT *obj = OBJ_txt2obj(oids[i], 1);
		int ok = obj && X509_NAME_add_entry_by_OBJ(
					dn, obj, MBSTRING_UTF8,
					(const unsigned char *)values[i], -1,
					-1, 0) == 1;

		ASN1_OBJECT_free(obj);
		if (!ok)
			goto out;
	}
	GENERAL_NAME_set0_value(gn, GEN_DIRNAME, dn);
	dn = NULL;
	if (!sk_GENERAL_NAME_push(gens, gn))
		goto out;
	gn = NULL;
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 1,
			      X509V3_ADD_DEFAULT) == 1)
		rc = 0;
out:
	X509_NAME_free(dn);
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(gens);
	return rc;
}

/* DER: a tag and its length (up to 65535 content bytes). */
static size_t der_head(uint8_t *p, uint8_t tag, size_t len)
{
	p[0] = tag;
	if (len < 0x80) {
		p[1] = (uint8_t)len;
		return 2;
	}
	if (len < 0x100) {
		p[1] = 0x81;
		p[2] = (uint8_t)len;
		return 3;
	}
	p[1] = 0x82;
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	return 4;
}

/* A non-negative INTEGER below 2^31. */
static size_t der_uint(uint8_t *p, uint32_t v)
{
	uint8_t b[5];
	size_t n = 0, h;

	do {
		b[4 - n++] = (uint8_t)v;
		v >>= 8;
	} while (v);
	if (b[5 - n] & 0x80)
		b[4 - n++] = 0;
	h = der_head(p, 0x02, n);
	memcpy(p + h, b + 5 - n, n);
	return h + n;
}

/*
 * subjectDirectoryAttributes with the TPM specification the EK profile
 * names: SEQUENCE { SEQUENCE { tcg-at-tpmSpecification, SET {
 * TPMSpecification ::= SEQUENCE { family UTF8String, level INTEGER,
 * revision INTEGER } } } }.
 */
static int add_tpm_spec(X509 *x, const struct ekcert_tpm *t)
{
	static const uint8_t oid[] = { 0x06, 0x05, 0x67, 0x81, 0x05, 0x02, 0x10 };
	static const uint8_t family[] = { 0x0c, 0x03, '2', '.', '0' };
	uint8_t ints[14], out[48];
	size_t il, spec, n = 0;
	ASN1_OCTET_STRING *os;
	X509_EXTENSION *ext = NULL;
	int rc = EKCERT_ERR_CRYPTO;

	if (t->spec_level > 0x7fffffff || t->spec_revision > 0x7fffffff)
		return EKCERT_ERR_PARAM;
	il = der_uint(ints, t->spec_level);
	il += der_uint(ints + il, t->spec_revision);
	/* Every length is below 128: one length byte each. */
	spec = sizeof(family) + il;
	out[n++] = 0x30; /* SEQUENCE OF Attribute */
	out[n++] = (uint8_t)(2 + sizeof(oid) + 2 + 2 + spec);
	out[n++] = 0x30; /* Attribute */
	out[n++] = (uint8_t)(sizeof(oid) + 2 + 2 + spec);
	memcpy(out + n, oid, sizeof(oid));
	n += sizeof(oid);
	out[n++] = 0x31; /* SET OF value */
	out[n++] = (uint8_t)(2 + spec);
	out[n++] = 0x30; /* TPMSpecification */
	out[n++] = (uint8_t)spec;
	memcpy(out + n, family, sizeof(family));
	n += sizeof(family);
	memcpy(out + n, ints, il);
	n += il;
	os = ASN1_OCTET_STRING_new();
	if (os && ASN1_OCTET_STRING_set(os, out, (int)n) == 1)
		ext = X509_EXTENSION_create_by_NID(
			NULL, NID_subject_directory_attributes, 0, os);
	if (ext && X509_add_ext(x, ext, -1) == 1)
		rc = 0;
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	return rc;
}

static int add_extensions(X509 *x, const struct ekcert_params *p)
{
	static const char *const tpm_oids[3] = {
		EKCERT_OID_TPM_MANUFACTURER, EKCERT_OID_TPM_MODEL,
		EKCERT_OID_TPM_VERSION,
	};
	static const char *const platform_oids[3] = {
		EKCERT_OID_PLATFORM_MANUFACTURER, EKCERT_OID_PLATFORM_MODEL,
		EKCERT_OID_PLATFORM_VERSION,
	};
	char mf[12], model[EKCERT_MODEL_LEN + 1], ver[12];
	const char *vals[3] = { mf, model, ver };
	X509V3_CTX ctx;
	int rc;

	X509V3_set_ctx(&ctx, p->type == EKCERT_CA ? x : p->issuer, x, NULL,
		       NULL, 0);
	if (p->type == EKCERT_CA) {
		if ((rc = add_conf_ext(x, &ctx, NID_basic_constraints,
				       "critical,CA:TRUE,pathlen:0")) ||
		    (rc = add_conf_ext(x, &ctx, NID_key_usage,
				       "critical,keyCertSign,cRLSign")) ||
		    (rc = add_conf_ext(x, &ctx, NID_subject_key_identifier,
				       "hash")) ||
		    (rc = add_conf_ext(x, &ctx, NID_authority_key_identifier,
				       "keyid:always")))
			return rc;
		return 0;
	}
	if (p->type == EKCERT_PLATFORM) {
		for (int i = 0; i < 3; i++)
			if (!p->platform[i] || !p->platform[i][0] ||
			    strlen(p->platform[i]) > 64)
				return EKCERT_ERR_PARAM;
		rc = add_san_dirname(x, platform_oids, p->platform);
	} else {
		ekcert_tpm_strings(&p->tpm, mf, model, ver);
		rc = add_san_dirname(x, tpm_oids, vals);
	}
	if (rc ||
	    (rc = add_conf_ext(x, &ctx, NID_basic_constraints,
			       "critical,CA:FALSE")) ||
	    (rc = add_conf_ext(x, &ctx, NID_key_usage,
			       p->type == EKCERT_EK_ECC
				       ? "critical,keyAgreement"
				       : "critical,keyEncipherment")) ||
	    (rc = add_conf_ext(x, &ctx, NID_ext_key_usage,
			       p->type == EKCERT_PLATFORM
				       ? EKCERT_OID_PLATFORM_CERT
				       : EKCERT_OID_EK_CERT)) ||
	    (rc = add_conf_ext(x, &ctx, NID_authority_key_identifier,
			       "keyid:always")))
		return rc;
	if (p->type != EKCERT_PLATFORM)
		return add_tpm_spec(x, &p->tpm);
	return 0;
}

/* ---- the certificate ---- */

static int check_key(const struct ekcert_params *p)
{
	int id = EVP_PKEY_get_base_id(p->subject_key);

	switch (p->type) {
	case EKCERT_EK_RSA:
	case EKCERT_PLATFORM:
		return id == EVP_PKEY_RSA && EVP_PKEY_get_bits(p->subject_key) ==
						     2048 ? 0 : EKCERT_ERR_KEY;
	case EKCERT_EK_ECC:
	case EKCERT_CA:
		return id == EVP_PKEY_EC && EVP_PKEY_get_bits(p->subject_key) ==
						    256 ? 0 : EKCERT_ERR_KEY;
	}
	return EKCERT_ERR_PARAM;
}

static int set_names(X509 *x, const struct ekcert_params *p)
{
	X509_NAME *n;
	int ok;

	if (p->type != EKCERT_CA) {
		/* The EK profile's subject is empty: the subjectAltName,
		 * critical, names the TPM (or the platform). */
		return X509_set_issuer_name(x, X509_get_subject_name(p->issuer))
			       == 1 ? 0 : EKCERT_ERR_CRYPTO;
	}
	if (!p->ca_name || !p->ca_name[0] || strlen(p->ca_name) > 64)
		return EKCERT_ERR_PARAM;
	n = X509_NAME_new();
	ok = n &&
	     X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
					(const unsigned char *)"vtpm-service",
					-1, -1, 0) == 1 &&
	     X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
					(const unsigned char *)p->ca_name, -1,
					-1, 0) == 1 &&
	     X509_set_subject_name(x, n) == 1 && X509_set_issuer_name(x, n) == 1;
	X509_NAME_free(n);
	return ok ? 0 : EKCERT_ERR_CRYPTO;
}

static int set_serial_validity(X509 *x, const struct ekcert_params *p)
{
	BIGNUM *bn = BN_bin2bn(p->serial, EKCERT_SERIAL_LEN, NULL);
	ASN1_INTEGER *ai = NULL;
	int ok;

	if (!bn)
		return EKCERT_ERR_CRYPTO;
	if ((p->serial[0] & 0x80) || BN_is_zero(bn)) {
		BN_free(bn);
		return EKCERT_ERR_PARAM;
	}
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	ok = ai && X509_set_serialNumber(x, ai) == 1 &&
	     ASN1_TIME_set(X509_getm_notBefore(x), p->not_before) &&
	     /* RFC 5280 4.1.2.5: no well-defined expiration date. */
	     ASN1_TIME_set_string(X509_getm_notAfter(x), "99991231235959Z") == 1;
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return ok ? 0 : EKCERT_ERR_CRYPTO;
}

int ekcert_tbs(const struct ekcert_params *p, uint8_t **tbs, size_t *tbs_len)
{
	X509 *x;
	X509_ALGOR *alg;
	unsigned char *der = NULL;
	int rc, n;

	*tbs = NULL;
	*tbs_len = 0;
	if (!p->subject_key || (p->type != EKCERT_CA && !p->issuer))
		return EKCERT_ERR_PARAM;
	rc = check_key(p);
	if (rc)
		return rc;
	x = X509_new();
	if (!x)
		return EKCERT_ERR_CRYPTO;
	rc = EKCERT_ERR_CRYPTO;
	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    X509_set_pubkey(x, p->subject_key) != 1)
		goto out;
	if ((rc = set_serial_validity(x, p)) || (rc = set_names(x, p)) ||
	    (rc = add_extensions(x, p)))
		goto out;
	/*
	 * The signature is made elsewhere (the physical TPM), so nothing
	 * here signs: the TBSCertificate's algorithm is set directly.  The
	 * object is the certificate's own, only the accessor is const.
	 */
	alg = (X509_ALGOR *)X509_get0_tbs_sigalg(x);
	rc = EKCERT_ERR_CRYPTO;
	if (X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ecdsa_with_SHA256),
			    V_ASN1_UNDEF, NULL) != 1)
		goto out;
	n = i2d_re_X509_tbs(x, &der);
	if (n <= 0)
		goto out;
	*tbs = der;
	*tbs_len = (size_t)n;
	rc = 0;
out:
	X509_free(x);
	return rc;
}

int ekcert_csr_info(EVP_PKEY *key, const char *cn, uint8_t **info,
		    size_t *info_len)
{
	X509_REQ *r;
	X509_NAME *n;
	unsigned char *der = NULL;
	int len, rc = EKCERT_ERR_CRYPTO;

	*info = NULL;
	*info_len = 0;
	if (!key || !cn || !cn[0] || strlen(cn) > 64)
		return EKCERT_ERR_PARAM;
	r = X509_REQ_new();
	n = X509_NAME_new();
	if (r && n &&
	    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8,
				       (const unsigned char *)"vtpm-service",
				       -1, -1, 0) == 1 &&
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
				       (const unsigned char *)cn, -1, -1,
				       0) == 1 &&
	    X509_REQ_set_version(r, X509_REQ_VERSION_1) == 1 &&
	    X509_REQ_set_subject_name(r, n) == 1 &&
	    X509_REQ_set_pubkey(r, key) == 1) {
		len = i2d_re_X509_REQ_tbs(r, &der);
		if (len > 0) {
			*info = der;
			*info_len = (size_t)len;
			rc = 0;
		}
	}
	X509_NAME_free(n);
	X509_REQ_free(r);
	return rc;
}

int ekcert_check_ca(X509 *x, EVP_PKEY *key, char *err, size_t errlen)
{
	const char *why = NULL;

	if (X509_get_version(x) != X509_VERSION_3)
		why = "not an X.509 v3 certificate";
	else if (!X509_get0_pubkey(x) ||
		 EVP_PKEY_eq(X509_get0_pubkey(x), key) != 1)
		why = "it certifies another key than the CA key in the TPM";
	else if (X509_check_ca(x) != 1 ||
		 !(X509_get_extension_flags(x) & EXFLAG_BCONS))
		why = "it is not a CA certificate (basicConstraints CA:TRUE)";
	else if ((X509_get_extension_flags(x) & EXFLAG_KUSAGE) &&
		 !(X509_get_key_usage(x) & KU_KEY_CERT_SIGN))
		why = "its keyUsage lacks keyCertSign";
	else if (!X509_get0_subject_key_id(x))
		why = "it has no subjectKeyIdentifier";
	if (why) {
		snprintf(err, errlen, "%s", why);
		return EKCERT_ERR_PARAM;
	}
	return 0;
}

int ekcert_assemble(const uint8_t *tbs, size_t tbs_len, const uint8_t *sig,
		    size_t sig_len, uint8_t **cert, size_t *cert_len)
{
	/* AlgorithmIdentifier { ecdsa-with-SHA256 } (RFC 5758: no params). */
	static const uint8_t alg[] = { 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
				       0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
	uint8_t bh[4], ch[4];
	size_t bhl, chl, body, off;
	uint8_t *out;

	*cert = NULL;
	*cert_len = 0;
	/* tbs: one SEQUENCE; sig: one SEQUENCE (ECDSA-Sig-Value). */
	if (tbs_len < 2 || tbs[0] != 0x30 || sig_len < 8 || sig[0] != 0x30 ||
	    tbs_len > 16384 || sig_len > 256)
		return EKCERT_ERR_FORMAT;
	bhl = der_head(bh, 0x03, sig_len + 1);
	body = tbs_len + sizeof(alg) + bhl + 1 + sig_len;
	chl = der_head(ch, 0x30, body);
	out = OPENSSL_malloc(chl + body);
	if (!out)
		return EKCERT_ERR_CRYPTO;
	off = 0;
	memcpy(out + off, ch, chl);
	off += chl;
	memcpy(out + off, tbs, tbs_len);
	off += tbs_len;
	memcpy(out + off, alg, sizeof(alg));
	off += sizeof(alg);
	memcpy(out + off, bh, bhl);
	off += bhl;
	out[off++] = 0; /* no unused bits */
	memcpy(out + off, sig, sig_len);
	off += sig_len;
	*cert = out;
	*cert_len = off;
	return 0;
}
