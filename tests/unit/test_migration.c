/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Offline migration's codecs: the destination's migration key and its
 * certification (proto/migkey), the export blob (proto/expblob), and the
 * key store's tombstones and imported-blob list (proto/keystore, layout
 * 2).  Keys are made here with OpenSSL: an RSA-2048 key standing in for
 * the TPM's migration key, an ECC P-256 key for the AK.  Hostile inputs:
 * every truncation, every flipped byte, authentic but malformed bodies.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "lib/aead.h"
#include "lib/bytes.h"
#include "proto/expblob.h"
#include "proto/keystore.h"
#include "proto/migkey.h"

static EVP_PKEY *rsa, *ak, *ak2;
static uint8_t spki[256], spki2[256];
static size_t spki_len, spki2_len;
static uint8_t pub[600];       /* TPM2B_PUBLIC of the RSA key */
static size_t pub_len;
static uint8_t name[MIGKEY_NAME_LEN];
static uint8_t attest[300];
static size_t attest_len;
static uint8_t sig[128];
static size_t sig_len;

static size_t der_spki(EVP_PKEY *k, uint8_t *out, size_t max)
{
	uint8_t *p = out;
	int n = i2d_PUBKEY(k, NULL);

	assert_true(n > 0 && (size_t)n <= max);
	assert_int_equal(i2d_PUBKEY(k, &p), n);
	return (size_t)n;
}

static size_t make_public(const uint8_t *mod, uint32_t attrs, uint16_t bits,
			  uint8_t *out)
{
	uint8_t *a = out + 2;
	size_t n = 0;

	be16_put(a + n, 0x0001); n += 2;
	be16_put(a + n, 0x000b); n += 2;
	be32_put(a + n, attrs); n += 4;
	be16_put(a + n, 0); n += 2;           /* authPolicy */
	be16_put(a + n, 0x0010); n += 2;      /* symmetric NULL */
	be16_put(a + n, 0x0010); n += 2;      /* scheme NULL */
	be16_put(a + n, bits); n += 2;
	be32_put(a + n, 0); n += 4;           /* exponent */
	be16_put(a + n, 256); n += 2;
	memcpy(a + n, mod, 256); n += 256;
	be16_put(out, (uint16_t)n);
	return n + 2;
}

static size_t make_attest(const uint8_t *certified, const uint8_t qd[32],
			  uint8_t *out)
{
	size_t n = 0;

	be32_put(out + n, 0xff544347u); n += 4;
	be16_put(out + n, 0x8017); n += 2;
	be16_put(out + n, 34); n += 2;
	memset(out + n, 0xaa, 34); n += 34;   /* qualifiedSigner */
	be16_put(out + n, 32); n += 2;
	memcpy(out + n, qd, 32); n += 32;
	memset(out + n, 0, 17 + 8); n += 25;  /* clockInfo, firmware */
	be16_put(out + n, 34); n += 2;
	memcpy(out + n, certified, 34); n += 34;
	be16_put(out + n, 34); n += 2;
	memset(out + n, 0xbb, 34); n += 34;   /* qualifiedName */
	return n;
}

static size_t sign_with(EVP_PKEY *k, const uint8_t *msg, size_t len,
			uint8_t *out)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t n = 128;

	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_equal(EVP_DigestSign(md, out, &n, msg, len), 1);
	EVP_MD_CTX_free(md);
	return n;
}

static int setup(void **state)
{
	BIGNUM *n = NULL;
	uint8_t mod[256], qd[32];

	(void)state;
	rsa = EVP_RSA_gen(2048);
	ak = EVP_EC_gen("P-256");
	ak2 = EVP_EC_gen("P-256");
	assert_non_null(rsa);
	assert_non_null(ak);
	assert_non_null(ak2);
	assert_int_equal(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	assert_int_equal(BN_bn2binpad(n, mod, sizeof(mod)), 256);
	BN_free(n);
	spki_len = der_spki(ak, spki, sizeof(spki));
	spki2_len = der_spki(ak2, spki2, sizeof(spki2));
	pub_len = make_public(mod, MIGKEY_ATTRS, 2048, pub);
	be16_put(name, 0x000b);
	SHA256(pub + 2, pub_len - 2, name + 2);
	migkey_qd(qd);
	attest_len = make_attest(name, qd, attest);
	sig_len = sign_with(ak, attest, attest_len, sig);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ak);
	EVP_PKEY_free(ak2);
	return 0;
}

static int verify(const uint8_t *p, size_t pl, const uint8_t *a, size_t al,
		  const uint8_t *s, size_t sl, const uint8_t *pin, size_t pinl,
		  struct migkey *k)
{
	char err[200];

	return migkey_verify(p, pl, a, al, s, sl, spki, spki_len, pin, pinl,
			     k, err, sizeof(err));
}

/* ---- migkey ---- */

static void certified_key_verifies_and_names_itself(void **state)
{
	struct migkey k;
	uint8_t want[32];

	(void)state;
	assert_int_equal(verify(pub, pub_len, attest, attest_len, sig, sig_len,
				NULL, 0, &k), 0);
	assert_memory_equal(k.name, name, sizeof(name));
	SHA256(spki, spki_len, want);
	assert_memory_equal(k.ak_sha256, want, 32);
	/* Pinned to the same AK: fine; to another: -EPERM. */
	assert_int_equal(verify(pub, pub_len, attest, attest_len, sig, sig_len,
				spki, spki_len, &k), 0);
	assert_int_equal(verify(pub, pub_len, attest, attest_len, sig, sig_len,
				spki2, spki2_len, &k), -EPERM);
}

static void every_truncation_of_the_public_area_is_refused(void **state)
{
	struct migkey k;
	uint8_t longer[sizeof(pub) + 1];
	char err[200];

	(void)state;
	for (size_t n = 0; n < pub_len; n++)
		assert_int_equal(migkey_parse_public(pub, n, &k, err,
						     sizeof(err)), -EINVAL);
	memcpy(longer, pub, pub_len);
	longer[pub_len] = 0;
	assert_int_equal(migkey_parse_public(longer, pub_len + 1, &k, err,
					     sizeof(err)), -EINVAL);
	assert_int_equal(migkey_parse_public(NULL, 0, &k, err, sizeof(err)),
			 -EINVAL);
}

static void public_areas_not_of_a_migration_key_are_refused(void **state)
{
	uint8_t mod[256], p[600];
	struct migkey k;
	char err[200];
	size_t n;

	(void)state;
	memcpy(mod, pub + 24, 256);
	/* restricted, signing, no fixedTPM, admin by policy */
	static const uint32_t attrs[] = { MIGKEY_ATTRS | 0x10000,
					  MIGKEY_ATTRS | 0x40000,
					  MIGKEY_ATTRS & ~0x2u,
					  MIGKEY_ATTRS | 0x80 };
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		n = make_public(mod, attrs[i], 2048, p);
		assert_int_equal(migkey_parse_public(p, n, &k, err, sizeof(err)),
				 -EINVAL);
	}
	n = make_public(mod, MIGKEY_ATTRS, 1024, p);
	assert_int_equal(migkey_parse_public(p, n, &k, err, sizeof(err)), -EINVAL);
	/* an ECC key's type */
	n = make_public(mod, MIGKEY_ATTRS, 2048, p);
	be16_put(p + 2, 0x0023);
	assert_int_equal(migkey_parse_public(p, n, &k, err, sizeof(err)), -EINVAL);
	/* a modulus whose top bit is clear (not 2048 bits) */
	n = make_public(mod, MIGKEY_ATTRS, 2048, p);
	p[n - 256] = 0x01;
	assert_int_equal(migkey_parse_public(p, n, &k, err, sizeof(err)), -EINVAL);
	/* the outer size says more than there is */
	n = make_public(mod, MIGKEY_ATTRS, 2048, p);
	be16_put(p, (uint16_t)(n - 1));
	assert_int_equal(migkey_parse_public(p, n, &k, err, sizeof(err)), -EINVAL);
	be16_put(p, 0xffff);
	assert_int_equal(migkey_parse_public(p, n, &k, err, sizeof(err)), -EINVAL);
	/* an authorization policy */
	n = make_public(mod, MIGKEY_ATTRS, 2048, p);
	be16_put(p + 2 + 8, 1);
	assert_int_equal(migkey_parse_public(p, n, &k, err, sizeof(err)), -EINVAL);
}

static void any_altered_certification_is_refused(void **state)
{
	uint8_t a[sizeof(attest)], s[sizeof(sig)], p[sizeof(pub)];
	struct migkey k;

	(void)state;
	for (size_t i = 0; i < attest_len; i++) {
		memcpy(a, attest, attest_len);
		a[i] ^= 0x01;
		assert_int_not_equal(verify(pub, pub_len, a, attest_len, sig,
					    sig_len, NULL, 0, &k), 0);
	}
	for (size_t i = 0; i < sig_len; i++) {
		memcpy(s, sig, sig_len);
		s[i] ^= 0x01;
		assert_int_not_equal(verify(pub, pub_len, attest, attest_len, s,
					    sig_len, NULL, 0, &k), 0);
	}
	/* another key's public area under this certification */
	memcpy(p, pub, pub_len);
	p[pub_len - 7] ^= 0x01;
	assert_int_equal(verify(p, pub_len, attest, attest_len, sig, sig_len,
				NULL, 0, &k), -EBADMSG);
	for (size_t n = 0; n < attest_len; n++)
		assert_int_not_equal(verify(pub, pub_len, attest, n, sig,
					    sig_len, NULL, 0, &k), 0);
	assert_int_not_equal(verify(pub, pub_len, attest, attest_len, sig, 0,
				    NULL, 0, &k), 0);
}

/* Signed by the AK, but not what a migration key's certification is. */
static void signed_attestations_of_another_kind_are_refused(void **state)
{
	uint8_t a[sizeof(attest) + 8], s[128], qd[32];
	struct migkey k;
	size_t n, sl;

	(void)state;
	memset(qd, 0x55, sizeof(qd)); /* another purpose */
	n = make_attest(name, qd, a);
	sl = sign_with(ak, a, n, s);
	assert_int_equal(verify(pub, pub_len, a, n, s, sl, NULL, 0, &k), -EINVAL);
	migkey_qd(qd);
	n = make_attest(name, qd, a);
	be16_put(a + 4, 0x8018); /* a quote */
	sl = sign_with(ak, a, n, s);
	assert_int_equal(verify(pub, pub_len, a, n, s, sl, NULL, 0, &k), -EINVAL);
	n = make_attest(name, qd, a);
	a[n++] = 0; /* trailing */
	sl = sign_with(ak, a, n, s);
	assert_int_equal(verify(pub, pub_len, a, n, s, sl, NULL, 0, &k), -EINVAL);
	n = make_attest(name, qd, a);
	be16_put(a + 6, 0xfff0); /* signer name over its bound */
	sl = sign_with(ak, a, n, s);
	assert_int_equal(verify(pub, pub_len, a, n, s, sl, NULL, 0, &k), -EINVAL);
	/* signed by another key than the AK it comes with */
	n = make_attest(name, qd, a);
	sl = sign_with(ak2, a, n, s);
	assert_int_equal(verify(pub, pub_len, a, n, s, sl, NULL, 0, &k), -EBADMSG);
}

static void wrapped_key_opens_with_the_private_key_and_label(void **state)
{
	struct migkey k;
	uint8_t in[32], w[MIGKEY_MODULUS_LEN], outb[256];
	size_t outlen = sizeof(outb);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(rsa, NULL);
	unsigned char *label = OPENSSL_memdup(MIGKEY_OAEP_LABEL,
					      sizeof(MIGKEY_OAEP_LABEL));

	(void)state;
	assert_int_equal(verify(pub, pub_len, attest, attest_len, sig, sig_len,
				NULL, 0, &k), 0);
	RAND_bytes(in, sizeof(in));
	assert_int_equal(migkey_wrap(&k, in, sizeof(in), w), 0);
	assert_non_null(c);
	assert_int_equal(EVP_PKEY_decrypt_init(c), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()), 1);
	/* The label with its zero byte, as the TPM counts it. */
	assert_int_equal(EVP_PKEY_CTX_set0_rsa_oaep_label(c, label,
							  sizeof(MIGKEY_OAEP_LABEL)), 1);
	assert_int_equal(EVP_PKEY_decrypt(c, outb, &outlen, w, sizeof(w)), 1);
	assert_int_equal(outlen, sizeof(in));
	assert_memory_equal(outb, in, sizeof(in));
	EVP_PKEY_CTX_free(c);
}

/* ---- expblob ---- */

static const uint8_t key[32] = { 7, 7, 7 };
static const uint8_t other_key[32] = { 8 };

static void sample_hdr(struct expblob_hdr *h)
{
	memset(h, 0, sizeof(*h));
	memset(h->uuid, 0x42, 16);
	h->generation = 9;
	memcpy(h->dest_name, name, sizeof(name));
	memset(h->wrapped, 0x99, sizeof(h->wrapped));
}

static size_t sample_blob(uint8_t **out, uint32_t state_len)
{
	struct expblob_hdr h;
	struct expblob_body b = { .family = 2 };
	uint8_t *st = malloc(state_len ? state_len : 1);
	size_t len;

	assert_non_null(st);
	memset(st, 0x5a, state_len);
	sample_hdr(&h);
	b.state = st;
	b.state_len = state_len;
	b.flags = state_len ? EXPBLOB_F_PLAINTEXT : EXPBLOB_F_NOSTATE;
	memset(b.src_ak_sha256, 0x31, 32);
	assert_int_equal(expblob_seal(&h, key, &b, out, &len), 0);
	free(st);
	return len;
}

static void blob_round_trip_keeps_header_and_body(void **state)
{
	struct expblob_hdr h, want;
	struct expblob_body b;
	uint8_t *blob, id[32];
	size_t len = sample_blob(&blob, 3000);
	char err[200];

	(void)state;
	assert_int_equal(len, EXPBLOB_HDR_LEN + EXPBLOB_BODY_FIXED + 3000 +
				      EXPBLOB_TAG_LEN);
	assert_int_equal(expblob_parse(blob, len, &h, err, sizeof(err)), 0);
	sample_hdr(&want);
	assert_memory_equal(h.uuid, want.uuid, 16);
	assert_int_equal(h.generation, 9);
	assert_memory_equal(h.dest_name, name, sizeof(name));
	assert_memory_equal(h.wrapped, want.wrapped, sizeof(want.wrapped));
	SHA256(blob, EXPBLOB_HDR_LEN, id);
	assert_memory_equal(h.id, id, 32);
	assert_int_equal(expblob_open(blob, len, key, &b, err, sizeof(err)), 0);
	assert_int_equal(b.family, 2);
	assert_int_equal(b.flags, EXPBLOB_F_PLAINTEXT);
	assert_int_equal(b.state_len, 3000);
	assert_int_equal(b.state[0], 0x5a);
	assert_int_equal(b.state[2999], 0x5a);
	expblob_body_free(&b);
	assert_int_equal(expblob_open(blob, len, other_key, &b, err,
				      sizeof(err)), -EBADMSG);
	free(blob);
	/* Without state: NOSTATE and an empty body. */
	len = sample_blob(&blob, 0);
	assert_int_equal(expblob_open(blob, len, key, &b, err, sizeof(err)), 0);
	assert_int_equal(b.flags, EXPBLOB_F_NOSTATE);
	assert_null(b.state);
	free(blob);
}

static void two_exports_of_one_state_have_different_ids(void **state)
{
	struct expblob_hdr h1, h2;
	uint8_t *b1, *b2;
	size_t l1 = sample_blob(&b1, 10), l2 = sample_blob(&b2, 10);

	(void)state;
	assert_int_equal(expblob_parse(b1, l1, &h1, NULL, 0), 0);
	assert_int_equal(expblob_parse(b2, l2, &h2, NULL, 0), 0);
	assert_memory_not_equal(h1.id, h2.id, 32);
	free(b1);
	free(b2);
}

static void any_flipped_byte_or_cut_of_a_blob_is_refused(void **state)
{
	struct expblob_body b;
	uint8_t *blob, *t;
	size_t len = sample_blob(&blob, 64);
	char err[200];

	(void)state;
	t = malloc(len + 1);
	assert_non_null(t);
	for (size_t i = 0; i < len; i++) {
		memcpy(t, blob, len);
		t[i] ^= 0x01;
		assert_int_not_equal(expblob_open(t, len, key, &b, err,
						  sizeof(err)), 0);
		assert_null(b.state);
	}
	for (size_t n = 0; n < len; n++)
		assert_int_equal(expblob_open(blob, n, key, &b, err, sizeof(err)),
				 -EINVAL);
	memcpy(t, blob, len);
	t[len] = 0;
	assert_int_equal(expblob_open(t, len + 1, key, &b, err, sizeof(err)),
			 -EINVAL);
	free(t);
	free(blob);
}

static void header_lengths_over_their_bounds_are_refused(void **state)
{
	struct expblob_hdr h;
	uint8_t *blob;
	size_t len = sample_blob(&blob, 16);

	(void)state;
	be32_put(blob + EXPBLOB_HDR_LEN - 4, EXPBLOB_MAX_BODY + 1);
	assert_int_equal(expblob_parse(blob, len, &h, NULL, 0), -EINVAL);
	be32_put(blob + EXPBLOB_HDR_LEN - 4, 0xffffffffu);
	assert_int_equal(expblob_parse(blob, len, &h, NULL, 0), -EINVAL);
	be32_put(blob + EXPBLOB_HDR_LEN - 4, EXPBLOB_BODY_FIXED - 1);
	assert_int_equal(expblob_parse(blob, len, &h, NULL, 0), -EINVAL);
	be32_put(blob + EXPBLOB_HDR_LEN - 4, EXPBLOB_BODY_FIXED + 16);
	be16_put(blob + 10, 512); /* an RSA-4096 wrapped key */
	assert_int_equal(expblob_parse(blob, len, &h, NULL, 0), -EINVAL);
	be16_put(blob + 10, EXPBLOB_WRAPPED_LEN);
	be16_put(blob + 8, 2);
	assert_int_equal(expblob_parse(blob, len, &h, NULL, 0), -EINVAL);
	free(blob);
}

/* Authentic (sealed under the key) but not a body any writer makes. */
static size_t seal_raw_body(const uint8_t *body, size_t n, uint8_t **out)
{
	uint8_t *s, *b = malloc(EXPBLOB_HDR_LEN + n + EXPBLOB_TAG_LEN);

	assert_non_null(b);
	(void)sample_blob(&s, 0);
	memcpy(b, s, EXPBLOB_HDR_LEN);
	free(s);
	be32_put(b + EXPBLOB_HDR_LEN - 4, (uint32_t)n);
	assert_int_equal(aead_gcm(1, key, b + EXPBLOB_HDR_LEN - 16, b,
				  EXPBLOB_HDR_LEN, body, n, b + EXPBLOB_HDR_LEN,
				  b + EXPBLOB_HDR_LEN + n), 0);
	*out = b;
	return EXPBLOB_HDR_LEN + n + EXPBLOB_TAG_LEN;
}

static void authentic_malformed_bodies_are_refused(void **state)
{
	uint8_t body[EXPBLOB_BODY_FIXED + 4], *blob;
	struct expblob_body b;
	size_t len;

	(void)state;
	struct {
		uint8_t family, flags, pad;
		uint32_t state_len;
		size_t n;
	} cases[] = {
		{ 3, 0, 0, 4, sizeof(body) },                  /* family */
		{ 2, 0x80, 0, 4, sizeof(body) },               /* flags */
		{ 2, 0, 1, 4, sizeof(body) },                  /* padding */
		{ 2, 0, 0, 5, sizeof(body) },                  /* length lies */
		{ 2, 0, 0, 3, sizeof(body) },
		{ 2, EXPBLOB_F_NOSTATE, 0, 4, sizeof(body) },  /* state anyway */
		{ 2, 0, 0, 0, EXPBLOB_BODY_FIXED },            /* none, no flag */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(body, 0, sizeof(body));
		body[0] = cases[i].family;
		body[1] = cases[i].flags;
		body[3] = cases[i].pad;
		be32_put(body + 36, cases[i].state_len);
		len = seal_raw_body(body, cases[i].n, &blob);
		assert_int_equal(expblob_open(blob, len, key, &b, NULL, 0),
				 -EINVAL);
		assert_null(b.state);
		free(blob);
	}
	/* and the well-formed one of the same shape opens */
	memset(body, 0, sizeof(body));
	body[0] = 2;
	be32_put(body + 36, 4);
	len = seal_raw_body(body, sizeof(body), &blob);
	assert_int_equal(expblob_open(blob, len, key, &b, NULL, 0), 0);
	expblob_body_free(&b);
	free(blob);
}

static void seal_refuses_bodies_the_format_cannot_hold(void **state)
{
	struct expblob_hdr h;
	struct expblob_body b = { .family = 2 };
	uint8_t st[4] = { 1, 2, 3, 4 }, *out;
	size_t len;

	(void)state;
	sample_hdr(&h);
	b.state = st;
	b.state_len = EXPBLOB_MAX_STATE + 1;
	assert_int_equal(expblob_seal(&h, key, &b, &out, &len), -EINVAL);
	b.state_len = 4;
	b.flags = EXPBLOB_F_NOSTATE;
	assert_int_equal(expblob_seal(&h, key, &b, &out, &len), -EINVAL);
	b.flags = 0;
	b.family = 0;
	assert_int_equal(expblob_seal(&h, key, &b, &out, &len), -EINVAL);
}

/* ---- keystore: tombstones, the imported-blob list ---- */

static const uint8_t root[32] = { 3 };

static void store_with(struct keystore *ks, size_t nimports)
{
	struct keystore_rec r;
	uint8_t id[32];

	assert_int_equal(keystore_init(ks), 0);
	memset(&r, 0, sizeof(r));
	memset(r.uuid, 0x11, 16);
	r.tpm_version = 2;
	r.flags = KS_REC_TOMBSTONE;
	memset(r.state_hash, 0x22, 32);
	assert_int_equal(keystore_add(ks, &r), 0);
	for (size_t i = 0; i < nimports; i++) {
		memset(id, 0, sizeof(id));
		be32_put(id, (uint32_t)(nimports - i)); /* descending in */
		assert_int_equal(keystore_import_add(ks, id), 0);
	}
}

static void imports_and_tombstones_round_trip(void **state)
{
	struct keystore ks, out;
	struct keystore_meta m;
	uint8_t *file, id[32] = { 0 };
	size_t len;

	(void)state;
	store_with(&ks, 3);
	assert_int_equal(keystore_import_add(&ks, ks.imports[1]), KS_ERR_EXISTS);
	assert_int_equal(keystore_encode(&ks, root, 5, 5, &file, &len), 0);
	assert_int_equal(be16_get(file + 10), KEYSTORE_LAYOUT_IMPORTS);
	assert_int_equal(keystore_decode(file, len, root, &out, &m), 0);
	assert_int_equal(out.nimports, 3);
	for (uint32_t i = 1; i <= 3; i++) {
		be32_put(id, i);
		assert_true(keystore_import_has(&out, id));
		assert_int_equal(be32_get(out.imports[i - 1]), i);
	}
	be32_put(id, 4);
	assert_false(keystore_import_has(&out, id));
	assert_int_equal(out.recs[0].flags, KS_REC_TOMBSTONE);
	keystore_free(&out);
	keystore_free(&ks);
	free(file);
	/* No imports: layout 1, as releases before migration wrote. */
	store_with(&ks, 0);
	assert_int_equal(keystore_encode(&ks, root, 5, 5, &file, &len), 0);
	assert_int_equal(be16_get(file + 10), KEYSTORE_LAYOUT_IDS);
	keystore_free(&ks);
	free(file);
}

static void malformed_import_lists_are_refused(void **state)
{
	/* groups (1: group 0), one record, then the list */
	uint8_t body[16 + KEYSTORE_REC_IDS_LEN + 4 + 3 * 32 + 1];
	size_t base = 16 + KEYSTORE_REC_IDS_LEN;
	struct keystore ks;
	struct keystore_meta m;
	uint8_t *file;
	size_t len;

	(void)state;
	memset(body, 0, sizeof(body));
	be32_put(body, 1);
	be32_put(body + 4, 1);
	be32_put(body + 12, 1);
	memset(body + 16, 0x33, 16);
	body[16 + 24] = 2;
	struct {
		uint32_t count;
		uint8_t first[2]; /* first byte of ids 0 and 1 */
		size_t n;         /* ids present */
		size_t extra;     /* trailing bytes */
	} cases[] = {
		{ 0, { 0, 0 }, 0, 0 },  /* an empty list is never written */
		{ 2, { 1, 1 }, 2, 0 },  /* duplicate */
		{ 2, { 2, 1 }, 2, 0 },  /* descending */
		{ 3, { 1, 2 }, 2, 0 },  /* fewer than the count */
		{ 1, { 1, 0 }, 2, 0 },  /* more */
		{ 1, { 1, 0 }, 1, 1 },  /* trailing byte */
		{ KEYSTORE_MAX_IMPORTS + 1, { 1, 2 }, 2, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(body + base, 0, sizeof(body) - base);
		be32_put(body + base, cases[i].count);
		body[base + 4] = cases[i].first[0];
		body[base + 4 + 32] = cases[i].first[1];
		len = base + 4 + 32 * cases[i].n + cases[i].extra;
		assert_int_equal(keystore_seal_layout(root, 1, 1,
						      KEYSTORE_LAYOUT_IMPORTS,
						      body, len, &file, &len), 0);
		assert_int_equal(keystore_decode(file, len, root, &ks, &m),
				 KS_ERR_FORMAT);
		free(file);
	}
	/* A list cut off entirely (layout 2, no count). */
	assert_int_equal(keystore_seal_layout(root, 1, 1, KEYSTORE_LAYOUT_IMPORTS,
					      body, base, &file, &len), 0);
	assert_int_equal(keystore_decode(file, len, root, &ks, &m), KS_ERR_FORMAT);
	free(file);
	/* Layout 4 is a newer writer's. */
	assert_int_equal(keystore_seal_layout(root, 1, 1, 4, body, base, &file,
					      &len), 0);
	assert_int_equal(keystore_decode(file, len, root, &ks, &m), KS_ERR_VERSION);
	free(file);
	/* An unknown record flag is refused. */
	body[16 + 23] = 0x10;
	be32_put(body + base, 1);
	body[base + 4] = 1;
	assert_int_equal(keystore_seal_layout(root, 1, 1, KEYSTORE_LAYOUT_IMPORTS,
					      body, base + 36, &file, &len), 0);
	assert_int_equal(keystore_decode(file, len, root, &ks, &m), KS_ERR_FORMAT);
	free(file);
}

static void the_import_list_has_a_limit(void **state)
{
	struct keystore ks;
	uint8_t id[32] = { 0 };

	(void)state;
	assert_int_equal(keystore_init(&ks), 0);
	for (uint32_t i = 0; i < KEYSTORE_MAX_IMPORTS; i++) {
		be32_put(id, i); /* ascending: appends */
		assert_int_equal(keystore_import_add(&ks, id), 0);
	}
	be32_put(id, KEYSTORE_MAX_IMPORTS);
	assert_int_equal(keystore_import_add(&ks, id), KS_ERR_FULL);
	keystore_free(&ks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(certified_key_verifies_and_names_itself),
		cmocka_unit_test(every_truncation_of_the_public_area_is_refused),
		cmocka_unit_test(public_areas_not_of_a_migration_key_are_refused),
		cmocka_unit_test(any_altered_certification_is_refused),
		cmocka_unit_test(signed_attestations_of_another_kind_are_refused),
		cmocka_unit_test(wrapped_key_opens_with_the_private_key_and_label),
		cmocka_unit_test(blob_round_trip_keeps_header_and_body),
		cmocka_unit_test(two_exports_of_one_state_have_different_ids),
		cmocka_unit_test(any_flipped_byte_or_cut_of_a_blob_is_refused),
		cmocka_unit_test(header_lengths_over_their_bounds_are_refused),
		cmocka_unit_test(authentic_malformed_bodies_are_refused),
		cmocka_unit_test(seal_refuses_bodies_the_format_cannot_hold),
		cmocka_unit_test(imports_and_tombstones_round_trip),
		cmocka_unit_test(malformed_import_lists_are_refused),
		cmocka_unit_test(the_import_list_has_a_limit),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
