/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * core/proto/ekcert: the certificates of a manufactured vTPM, built,
 * signed by a software P-256 key standing in for the physical TPM's CA
 * key (the signature is the caller's business), parsed back by OpenSSL
 * and checked field by field against the TCG EK Credential Profile; and
 * the hostile inputs of the key decoders and the assembler.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "proto/ekcert.h"

static EVP_PKEY *ca_key, *rsa_ek, *ecc_ek;
static X509 *ca_cert;

/* A signature as the TPM would make it: DER ECDSA over SHA-256(tbs). */
static void sign_tbs(const uint8_t *tbs, size_t len, uint8_t *sig,
		     size_t *sig_len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
					    ca_key), 1);
	*sig_len = 128;
	assert_int_equal(EVP_DigestSign(md, sig, sig_len, tbs, len), 1);
	EVP_MD_CTX_free(md);
}

static X509 *build(const struct ekcert_params *p)
{
	uint8_t *tbs, *der, sig[128];
	const unsigned char *q;
	size_t tbs_len, der_len, sig_len;
	X509 *x;

	assert_int_equal(ekcert_tbs(p, &tbs, &tbs_len), 0);
	sign_tbs(tbs, tbs_len, sig, &sig_len);
	assert_int_equal(ekcert_assemble(tbs, tbs_len, sig, sig_len, &der,
					 &der_len), 0);
	q = der;
	x = d2i_X509(NULL, &q, (long)der_len);
	assert_non_null(x);
	assert_ptr_equal(q, der + der_len); /* nothing after it */
	OPENSSL_free(tbs);
	OPENSSL_free(der);
	return x;
}

static void params_for(struct ekcert_params *p, enum ekcert_type t)
{
	memset(p, 0, sizeof(*p));
	p->type = t;
	p->issuer = ca_cert;
	memset(p->serial, 0x5a, sizeof(p->serial));
	p->not_before = 1700000000;
	p->tpm.manufacturer = 0x49424d00;
	memcpy(p->tpm.model, "SW  \0TPM\0\0\0\0\0\0\0\0", 16);
	p->tpm.fw_version[0] = 0x20191023;
	p->tpm.spec_level = 0;
	p->tpm.spec_revision = 164;
	p->platform[0] = "vtpm-service";
	p->platform[1] = "vTPM";
	p->platform[2] = "1.0";
	p->subject_key = t == EKCERT_EK_ECC ? ecc_ek : rsa_ek;
}

static int setup(void **state)
{
	struct ekcert_params p;

	(void)state;
	ca_key = EVP_EC_gen("P-256");
	rsa_ek = EVP_RSA_gen(2048);
	ecc_ek = EVP_EC_gen("P-256");
	if (!ca_key || !rsa_ek || !ecc_ek)
		return -1;
	memset(&p, 0, sizeof(p));
	p.type = EKCERT_CA;
	p.subject_key = ca_key;
	p.ca_name = "vtpm-service EK CA test";
	p.serial[15] = 1;
	p.not_before = 1700000000;
	ca_cert = build(&p);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	X509_free(ca_cert);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(rsa_ek);
	EVP_PKEY_free(ecc_ek);
	return 0;
}

/* The chain as `openssl verify -CAfile ca.pem ek.pem` checks it. */
static void assert_chains(X509 *x)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();

	assert_int_equal(X509_STORE_add_cert(st, ca_cert), 1);
	assert_int_equal(X509_STORE_CTX_init(ctx, st, x, NULL), 1);
	if (X509_verify_cert(ctx) != 1)
		fail_msg("verify: %s", X509_verify_cert_error_string(
					       X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
}

static void assert_dirname(X509 *x, const char *const oids[3],
			   const char *const vals[3])
{
	int crit = -1;
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit,
					       NULL);
	const GENERAL_NAME *gn;
	X509_NAME *dn;

	assert_non_null(gens);
	assert_int_equal(crit, 1); /* empty subject: the SAN is critical */
	assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
	gn = sk_GENERAL_NAME_value(gens, 0);
	assert_int_equal(gn->type, GEN_DIRNAME);
	dn = gn->d.directoryName;
	assert_int_equal(X509_NAME_entry_count(dn), 3);
	for (int i = 0; i < 3; i++) {
		X509_NAME_ENTRY *ne = X509_NAME_get_entry(dn, i);
		char oid[32];
		const ASN1_STRING *v = X509_NAME_ENTRY_get_data(ne);

		OBJ_obj2txt(oid, sizeof(oid), X509_NAME_ENTRY_get_object(ne), 1);
		assert_string_equal(oid, oids[i]);
		assert_int_equal(ASN1_STRING_type(v), V_ASN1_UTF8STRING);
		assert_int_equal(ASN1_STRING_length(v), (int)strlen(vals[i]));
		assert_memory_equal(ASN1_STRING_get0_data(v), vals[i],
				    strlen(vals[i]));
	}
	GENERAL_NAMES_free(gens);
}

static void assert_eku(X509 *x, const char *oid)
{
	int crit = -1;
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit,
						   NULL);
	char txt[32];

	assert_non_null(eku);
	assert_int_equal(crit, 0);
	assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
	OBJ_obj2txt(txt, sizeof(txt), sk_ASN1_OBJECT_value(eku, 0), 1);
	assert_string_equal(txt, oid);
	EXTENDED_KEY_USAGE_free(eku);
}

/* What every leaf has: v3, the serial, validity, empty subject, the CA as
 * issuer and authority key id, CA:FALSE critical, the key usage. */
static void assert_leaf(X509 *x, EVP_PKEY *key, uint32_t ku)
{
	const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(ca_cert);
	const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(x);
	BIGNUM *sn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	uint8_t want[16], got[16];
	BASIC_CONSTRAINTS *bc;
	int crit = -1;

	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	memset(want, 0x5a, sizeof(want));
	assert_int_equal(BN_bn2binpad(sn, got, sizeof(got)), 16);
	assert_memory_equal(got, want, 16);
	BN_free(sn);
	assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(x)), 0);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x),
				       X509_get_subject_name(ca_cert)), 0);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_get0_notBefore(x),
					      1700000000), 0);
	assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
	assert_non_null(skid);
	assert_non_null(akid);
	assert_int_equal(ASN1_OCTET_STRING_cmp(skid, akid), 0);
	bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_false(bc->ca);
	BASIC_CONSTRAINTS_free(bc);
	assert_true(X509_get_extension_flags(x) & EXFLAG_KUSAGE);
	assert_int_equal(X509_get_key_usage(x), ku);
	assert_int_equal(X509_get_ext_by_critical(x, 1, -1) >= 0, 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), key), 1);
	assert_chains(x);
}

/* subjectDirectoryAttributes: SEQUENCE OF Attribute { tcg-at-tpmSpecification,
 * SET { TPMSpecification { "2.0", level 0, revision 164 } } }. */
static void assert_tpm_spec(X509 *x)
{
	static const uint8_t want[] = {
		0x30, 0x19, 0x30, 0x17, 0x06, 0x05, 0x67, 0x81, 0x05,
		0x02, 0x10, 0x31, 0x0e, 0x30, 0x0c, 0x0c, 0x03, '2',
		'.',  '0',  0x02, 0x01, 0x00, 0x02, 0x02, 0x00, 0xa4,
	};
	int i = X509_get_ext_by_NID(x, NID_subject_directory_attributes, -1);
	X509_EXTENSION *ext;
	const ASN1_OCTET_STRING *v;

	assert_true(i >= 0);
	ext = X509_get_ext(x, i);
	assert_int_equal(X509_EXTENSION_get_critical(ext), 0);
	v = X509_EXTENSION_get_data(ext);
	assert_int_equal(ASN1_STRING_length(v), (int)sizeof(want));
	assert_memory_equal(ASN1_STRING_get0_data(v), want, sizeof(want));
}

static void rsa_ek_certificate_follows_the_profile(void **state)
{
	static const char *const oids[3] = { "2.23.133.2.1", "2.23.133.2.2",
					     "2.23.133.2.3" };
	static const char *const vals[3] = { "id:49424D00", "SW  TPM",
					     "id:20191023" };
	struct ekcert_params p;
	X509 *x;

	(void)state;
	params_for(&p, EKCERT_EK_RSA);
	x = build(&p);
	assert_leaf(x, rsa_ek, KU_KEY_ENCIPHERMENT);
	assert_dirname(x, oids, vals);
	assert_eku(x, "2.23.133.8.1");
	assert_tpm_spec(x);
	X509_free(x);
}

static void ecc_ek_certificate_follows_the_profile(void **state)
{
	static const char *const oids[3] = { "2.23.133.2.1", "2.23.133.2.2",
					     "2.23.133.2.3" };
	static const char *const vals[3] = { "id:49424D00", "SW  TPM",
					     "id:20191023" };
	struct ekcert_params p;
	X509 *x;

	(void)state;
	params_for(&p, EKCERT_EK_ECC);
	x = build(&p);
	assert_leaf(x, ecc_ek, KU_KEY_AGREEMENT);
	assert_dirname(x, oids, vals);
	assert_eku(x, "2.23.133.8.1");
	assert_tpm_spec(x);
	X509_free(x);
}

static void platform_certificate_names_the_platform(void **state)
{
	static const char *const oids[3] = { "2.23.133.5.1.1", "2.23.133.5.1.4",
					     "2.23.133.5.1.5" };
	static const char *const vals[3] = { "vtpm-service", "vTPM", "1.0" };
	struct ekcert_params p;
	X509 *x;

	(void)state;
	params_for(&p, EKCERT_PLATFORM);
	x = build(&p);
	assert_leaf(x, rsa_ek, KU_KEY_ENCIPHERMENT);
	assert_dirname(x, oids, vals);
	assert_eku(x, "2.23.133.8.2");
	assert_int_equal(X509_get_ext_by_NID(x, NID_subject_directory_attributes,
					     -1), -1);
	X509_free(x);
}

static void ca_certificate_is_a_self_signed_ca(void **state)
{
	BASIC_CONSTRAINTS *bc;
	int crit = -1;
	char cn[64];

	(void)state;
	assert_int_equal(X509_get_version(ca_cert), X509_VERSION_3);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(ca_cert),
				       X509_get_subject_name(ca_cert)), 0);
	X509_NAME_get_text_by_NID(X509_get_subject_name(ca_cert),
				  NID_commonName, cn, sizeof(cn));
	assert_string_equal(cn, "vtpm-service EK CA test");
	assert_int_equal(X509_verify(ca_cert, ca_key), 1);
	bc = X509_get_ext_d2i(ca_cert, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_true(bc->ca);
	BASIC_CONSTRAINTS_free(bc);
	assert_int_equal(X509_get_key_usage(ca_cert),
			 KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_true(X509_check_ca(ca_cert) > 0);
	assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(ca_cert),
					       X509_get0_authority_key_id(ca_cert)),
			 0);
}

/* A signature by another key does not verify: the signature covers the
 * bytes ekcert_tbs returned, nothing else. */
static void signature_by_another_key_does_not_chain(void **state)
{
	EVP_PKEY *saved = ca_key;
	struct ekcert_params p;
	X509_STORE *st;
	X509_STORE_CTX *ctx;
	X509 *x;

	(void)state;
	params_for(&p, EKCERT_EK_ECC);
	ca_key = EVP_EC_gen("P-256");
	x = build(&p);
	EVP_PKEY_free(ca_key);
	ca_key = saved;
	st = X509_STORE_new();
	ctx = X509_STORE_CTX_new();
	X509_STORE_add_cert(st, ca_cert);
	X509_STORE_CTX_init(ctx, st, x, NULL);
	assert_int_equal(X509_verify_cert(ctx), 0);
	assert_int_equal(X509_STORE_CTX_get_error(ctx),
			 X509_V_ERR_CERT_SIGNATURE_FAILURE);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_free(x);
}

static void hostile_keys_are_refused(void **state)
{
	uint8_t n[EKCERT_RSA_LEN], xy[EKCERT_ECC_LEN + 1];
	EVP_PKEY *k = (EVP_PKEY *)1;
	size_t len = sizeof(xy);

	(void)state;
	memset(n, 0xff, sizeof(n));
	assert_int_equal(ekcert_rsa_key(n, sizeof(n), &k), 0);
	assert_int_equal(EVP_PKEY_get_bits(k), 2048);
	EVP_PKEY_free(k);
	assert_int_equal(ekcert_rsa_key(n, sizeof(n) - 1, &k), EKCERT_ERR_KEY);
	assert_null(k);
	n[0] = 0x7f; /* 2047 bits */
	assert_int_equal(ekcert_rsa_key(n, sizeof(n), &k), EKCERT_ERR_KEY);
	n[0] = 0xff;
	n[255] = 0xfe; /* even */
	assert_int_equal(ekcert_rsa_key(n, sizeof(n), &k), EKCERT_ERR_KEY);

	/* The real point of a key, then one off the curve, then zeros. */
	assert_int_equal(EVP_PKEY_get_octet_string_param(
				 ecc_ek, OSSL_PKEY_PARAM_PUB_KEY, xy, sizeof(xy),
				 &len), 1);
	assert_int_equal(len, 65);
	assert_int_equal(ekcert_ecc_key(xy + 1, 64, &k), 0);
	assert_int_equal(EVP_PKEY_eq(k, ecc_ek), 1);
	EVP_PKEY_free(k);
	xy[64] ^= 1;
	assert_int_equal(ekcert_ecc_key(xy + 1, 64, &k), EKCERT_ERR_KEY);
	assert_null(k);
	memset(xy, 0, sizeof(xy));
	assert_int_equal(ekcert_ecc_key(xy + 1, 64, &k), EKCERT_ERR_KEY);
	assert_int_equal(ekcert_ecc_key(xy + 1, 63, &k), EKCERT_ERR_KEY);
}

static void wrong_parameters_are_refused(void **state)
{
	struct ekcert_params p;
	uint8_t *tbs;
	size_t len;

	(void)state;
	params_for(&p, EKCERT_EK_RSA);
	p.subject_key = ecc_ek; /* an RSA certificate over an ECC key */
	assert_int_equal(ekcert_tbs(&p, &tbs, &len), EKCERT_ERR_KEY);
	params_for(&p, EKCERT_EK_ECC);
	p.subject_key = rsa_ek;
	assert_int_equal(ekcert_tbs(&p, &tbs, &len), EKCERT_ERR_KEY);
	params_for(&p, EKCERT_EK_RSA);
	p.serial[0] = 0x80; /* negative */
	assert_int_equal(ekcert_tbs(&p, &tbs, &len), EKCERT_ERR_PARAM);
	memset(p.serial, 0, sizeof(p.serial));
	assert_int_equal(ekcert_tbs(&p, &tbs, &len), EKCERT_ERR_PARAM);
	params_for(&p, EKCERT_EK_RSA);
	p.issuer = NULL;
	assert_int_equal(ekcert_tbs(&p, &tbs, &len), EKCERT_ERR_PARAM);
	params_for(&p, EKCERT_PLATFORM);
	p.platform[1] = "";
	assert_int_equal(ekcert_tbs(&p, &tbs, &len), EKCERT_ERR_PARAM);
	params_for(&p, EKCERT_EK_ECC);
	p.tpm.spec_revision = 0x80000000u;
	assert_int_equal(ekcert_tbs(&p, &tbs, &len), EKCERT_ERR_PARAM);
	params_for(&p, (enum ekcert_type)99);
	assert_int_equal(ekcert_tbs(&p, &tbs, &len), EKCERT_ERR_PARAM);
	assert_null(tbs);
}

static void model_text_is_printable_and_trimmed(void **state)
{
	struct ekcert_tpm t;
	char mf[12], model[17], ver[12];

	(void)state;
	memset(&t, 0, sizeof(t));
	ekcert_tpm_strings(&t, mf, model, ver);
	assert_string_equal(mf, "id:00000000");
	assert_string_equal(model, "unknown");
	memcpy(t.model, "\x01\x7f" "ab  \n" "c   \0\0\0\0\0\0\0", 16);
	t.manufacturer = 0xdeadbeef;
	ekcert_tpm_strings(&t, mf, model, ver);
	assert_string_equal(mf, "id:DEADBEEF");
	assert_string_equal(model, "ab  c");
}

static void assemble_refuses_what_is_not_der(void **state)
{
	uint8_t tbs[4] = { 0x30, 0x02, 0x05, 0x00 }, sig[8] = { 0x30, 6 };
	uint8_t *cert;
	size_t len;

	(void)state;
	assert_int_equal(ekcert_assemble(tbs, 4, sig, 8, &cert, &len), 0);
	assert_int_equal(len, 2 + 4 + 12 + 2 + 1 + 8);
	assert_int_equal(cert[0], 0x30);
	assert_int_equal(cert[1], len - 2);
	OPENSSL_free(cert);
	tbs[0] = 0x31;
	assert_int_equal(ekcert_assemble(tbs, 4, sig, 8, &cert, &len),
			 EKCERT_ERR_FORMAT);
	tbs[0] = 0x30;
	assert_int_equal(ekcert_assemble(tbs, 4, sig, 7, &cert, &len),
			 EKCERT_ERR_FORMAT);
	assert_int_equal(ekcert_assemble(tbs, 1, sig, 8, &cert, &len),
			 EKCERT_ERR_FORMAT);
	assert_null(cert);
}

/* ca-csr: the request names the CA key and its signature verifies. */
static void csr_requests_the_ca_key(void **state)
{
	uint8_t *info, *der, sig[128];
	const unsigned char *q;
	size_t info_len, der_len, sig_len;
	X509_REQ *r;
	char cn[64];

	(void)state;
	assert_int_equal(ekcert_csr_info(ca_key, "vTPM EK CA h", &info,
					 &info_len), 0);
	sign_tbs(info, info_len, sig, &sig_len);
	assert_int_equal(ekcert_assemble(info, info_len, sig, sig_len, &der,
					 &der_len), 0);
	q = der;
	r = d2i_X509_REQ(NULL, &q, (long)der_len);
	assert_non_null(r);
	assert_int_equal(X509_REQ_verify(r, ca_key), 1);
	assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(r), ca_key), 1);
	X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(r), NID_commonName,
				  cn, sizeof(cn));
	assert_string_equal(cn, "vTPM EK CA h");
	X509_REQ_free(r);
	OPENSSL_free(info);
	OPENSSL_free(der);
	assert_int_equal(ekcert_csr_info(ca_key, "", &info, &info_len),
			 EKCERT_ERR_PARAM);
	assert_int_equal(ekcert_csr_info(NULL, "x", &info, &info_len),
			 EKCERT_ERR_PARAM);
}

/* ca-import: only a v3 CA certificate of the CA key, with keyCertSign
 * and a key id, is taken. */
static void import_check_takes_only_a_ca_of_our_key(void **state)
{
	struct ekcert_params p;
	char err[128];
	X509 *x;

	(void)state;
	assert_int_equal(ekcert_check_ca(ca_cert, ca_key, err, sizeof(err)), 0);
	/* Another key. */
	assert_int_equal(ekcert_check_ca(ca_cert, ecc_ek, err, sizeof(err)),
			 EKCERT_ERR_PARAM);
	assert_non_null(strstr(err, "another key"));
	/* A leaf (CA:FALSE) of the right key type. */
	params_for(&p, EKCERT_EK_ECC);
	x = build(&p);
	assert_int_equal(ekcert_check_ca(x, ecc_ek, err, sizeof(err)),
			 EKCERT_ERR_PARAM);
	assert_non_null(strstr(err, "not a CA"));
	X509_free(x);
	/* A v1 certificate. */
	x = X509_dup(ca_cert);
	X509_set_version(x, X509_VERSION_1);
	assert_int_equal(ekcert_check_ca(x, ca_key, err, sizeof(err)),
			 EKCERT_ERR_PARAM);
	X509_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ca_certificate_is_a_self_signed_ca),
		cmocka_unit_test(rsa_ek_certificate_follows_the_profile),
		cmocka_unit_test(ecc_ek_certificate_follows_the_profile),
		cmocka_unit_test(platform_certificate_names_the_platform),
		cmocka_unit_test(signature_by_another_key_does_not_chain),
		cmocka_unit_test(hostile_keys_are_refused),
		cmocka_unit_test(wrong_parameters_are_refused),
		cmocka_unit_test(model_text_is_printable_and_trimmed),
		cmocka_unit_test(assemble_refuses_what_is_not_der),
		cmocka_unit_test(csr_requests_the_ca_key),
		cmocka_unit_test(import_check_takes_only_a_ca_of_our_key),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
