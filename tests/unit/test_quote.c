/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * core/proto/quote.c, the offline quote check vtpmctl uses.  The quotes
 * are made here: a TPMS_ATTEST marshalled by hand field by field (TPM 2.0
 * Part 2, 10.12.12), signed with OpenSSL keys made for the test, so every
 * hostile case is a signed structure that only the parser can refuse.
 * tests/unit/quote_tpm2_tools.sh runs this binary with --vectors DIR on
 * quotes that swtpm made through tpm2-tools.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "lib/hex.h"
#include "proto/quote.h"

#define ALG_SHA1 0x0004u
#define ALG_RSASSA 0x0014u
#define ALG_RSAPSS 0x0016u
#define ALG_ECDSA 0x0018u
#define ST_ATTEST_CERTIFY 0x8017u

static char err[256];

/* ---- keys ---------------------------------------------------------------- */

struct key {
	EVP_PKEY *pkey;
	uint8_t spki[QUOTE_SPKI_MAX];
	size_t spki_len;
};

static struct key ec, ec2, rsa;

static void key_make(struct key *k, const char *type)
{
	uint8_t *p = k->spki;
	int n;

	k->pkey = strcmp(type, "EC") == 0 ? EVP_EC_gen("P-256")
					  : EVP_RSA_gen(2048);
	assert_non_null(k->pkey);
	n = i2d_PUBKEY(k->pkey, NULL);
	assert_true(n > 0 && (size_t)n <= sizeof(k->spki));
	assert_int_equal(i2d_PUBKEY(k->pkey, &p), n);
	k->spki_len = (size_t)n;
}

static int keys_make(void **state)
{
	(void)state;
	key_make(&ec, "EC");
	key_make(&ec2, "EC");
	key_make(&rsa, "RSA");
	return 0;
}

static int keys_free(void **state)
{
	(void)state;
	EVP_PKEY_free(ec.pkey);
	EVP_PKEY_free(ec2.pkey);
	EVP_PKEY_free(rsa.pkey);
	return 0;
}

/* ---- a TPMS_ATTEST, field by field ----------------------------------------- */

struct attest {
	uint32_t magic;
	uint16_t type;
	uint16_t signer_size;           /* as written; bytes are 0x5a */
	uint16_t extra_size;            /* as written */
	uint8_t extra[128];
	uint64_t clock;
	uint32_t reset, restart;
	uint8_t safe;
	uint64_t firmware;
	uint32_t count;                 /* banks as written; one is marshalled */
	uint16_t hash;
	uint8_t select_size;            /* as written */
	uint8_t select[8];
	uint16_t digest_size;           /* as written */
	uint8_t digest[128];
	size_t trailing;                /* zero bytes after the structure */
};

struct buf {
	uint8_t b[4096];
	size_t n;
};

static void put(struct buf *b, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b->b[b->n++] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static void put_bytes(struct buf *b, const uint8_t *p, size_t n)
{
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

static const uint8_t pcr_vals[4][32] = {
	{ 0x01 }, { 0x02, 0x02 }, { 0x03, 0x03, 0x03 }, { 0x04 },
};
#define GOOD_MASK 0x95u         /* PCRs 0, 2, 4, 7 */
static const uint8_t nonce[32] = "a verifier's fresh nonce, 32 B.";

/* A well-formed quote over GOOD_MASK with pcr_vals and the nonce. */
static struct attest good(void)
{
	struct attest a = {
		.magic = TPM_GENERATED_VALUE,
		.type = TPM_ST_ATTEST_QUOTE,
		.signer_size = 34,
		.extra_size = 32,
		.clock = 123456789,
		.reset = 3,
		.restart = 1,
		.safe = 1,
		.firmware = 0x2019102400100002ull,
		.count = 1,
		.hash = TPM_ALG_SHA256,
		.select_size = 3,
		.select = { GOOD_MASK, 0, 0 },
		.digest_size = 32,
	};

	memcpy(a.extra, nonce, 32);
	SHA256(&pcr_vals[0][0], sizeof(pcr_vals), a.digest);
	return a;
}

/* Marshals a as written; sizes over the data are written, not followed. */
static void marshal(const struct attest *a, struct buf *b)
{
	uint8_t name[0x100];

	memset(name, 0x5a, sizeof(name));
	b->n = 0;
	put(b, a->magic, 4);
	put(b, a->type, 2);
	put(b, a->signer_size, 2);
	put_bytes(b, name, a->signer_size < sizeof(name) ? a->signer_size : 0);
	put(b, a->extra_size, 2);
	put_bytes(b, a->extra, a->extra_size <= sizeof(a->extra) ? a->extra_size : 0);
	put(b, a->clock, 8);
	put(b, a->reset, 4);
	put(b, a->restart, 4);
	put(b, a->safe, 1);
	put(b, a->firmware, 8);
	put(b, a->count, 4);
	put(b, a->hash, 2);
	put(b, a->select_size, 1);
	put_bytes(b, a->select, a->select_size <= sizeof(a->select) ? a->select_size : 0);
	put(b, a->digest_size, 2);
	put_bytes(b, a->digest, a->digest_size <= sizeof(a->digest) ? a->digest_size : 0);
	for (size_t i = 0; i < a->trailing; i++)
		put(b, 0, 1);
}

/* ---- signatures -------------------------------------------------------------- */

enum sig_form { DER, TPMT };

/* sig over msg with k: DER or TPMT_SIGNATURE (ECDSA for EC keys; for RSA
 * keys alg picks RSASSA or RSAPSS). */
static void sign(const struct key *k, uint16_t alg, enum sig_form form,
		 const uint8_t *msg, size_t len, struct buf *sig)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	uint8_t raw[1024];
	size_t rawlen = sizeof(raw);

	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL,
					    k->pkey), 1);
	if (alg == ALG_RSASSA)
		assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0);
	if (alg == ALG_RSAPSS) {
		assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
		assert_true(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) > 0);
	}
	assert_int_equal(EVP_DigestSign(md, raw, &rawlen, msg, len), 1);
	EVP_MD_CTX_free(md);
	sig->n = 0;
	if (form == DER) {
		put_bytes(sig, raw, rawlen);
		return;
	}
	put(sig, alg, 2);
	put(sig, TPM_ALG_SHA256, 2);
	if (alg == ALG_ECDSA) {
		const uint8_t *p = raw;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)rawlen);
		uint8_t r[32], s[32];

		assert_non_null(es);
		assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), r, 32), 32);
		assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), s, 32), 32);
		ECDSA_SIG_free(es);
		put(sig, 32, 2);
		put_bytes(sig, r, 32);
		put(sig, 32, 2);
		put_bytes(sig, s, 32);
	} else {
		put(sig, rawlen, 2);
		put_bytes(sig, raw, rawlen);
	}
}

/* ---- helpers --------------------------------------------------------------- */

static const struct quote_expect want_nonce = { .qd = nonce, .qd_len = 32 };

/* Marshal a, sign it with the EC key (DER), verify against want. */
static int check(const struct attest *a, const struct quote_expect *want)
{
	struct buf m, s;

	marshal(a, &m);
	sign(&ec, ALG_ECDSA, DER, m.b, m.n, &s);
	return quote_verify(ec.spki, ec.spki_len, m.b, m.n, s.b, s.n, want,
			    NULL, err, sizeof(err));
}

#define EXPECT(call, status)                                               \
	do {                                                               \
		int rc_ = (call);                                          \
		if (rc_ != (status))                                       \
			fail_msg("%s = %d, not %d (%s): %s", #call, rc_,   \
				 (status), #status, err);                  \
	} while (0)

/* ---- good quotes ---------------------------------------------------------- */

static void good_quotes_verify_in_every_form(void **state)
{
	struct attest a = good();
	struct buf m, s, b2;
	struct quote_info q;
	const uint16_t rsa_algs[] = { ALG_RSASSA, ALG_RSAPSS };

	(void)state;
	marshal(&a, &m);
	sign(&ec, ALG_ECDSA, DER, m.b, m.n, &s);
	EXPECT(quote_verify(ec.spki, ec.spki_len, m.b, m.n, s.b, s.n,
			    &want_nonce, &q, err, sizeof(err)), QUOTE_OK);
	assert_int_equal(q.type, TPM_ST_ATTEST_QUOTE);
	assert_int_equal(q.pcr_mask, GOOD_MASK);
	assert_memory_equal(q.pcr_digest, a.digest, 32);
	assert_int_equal(q.extra_len, 32);
	assert_memory_equal(q.extra, nonce, 32);
	assert_int_equal(q.signer_len, 34);
	assert_true(q.clock == 123456789 && q.reset_count == 3 &&
		    q.restart_count == 1 && q.safe == 1 &&
		    q.firmware == 0x2019102400100002ull);

	/* A TPMT_SIGNATURE, as tpm2_quote writes it. */
	sign(&ec, ALG_ECDSA, TPMT, m.b, m.n, &s);
	EXPECT(quote_verify(ec.spki, ec.spki_len, m.b, m.n, s.b, s.n,
			    &want_nonce, NULL, err, sizeof(err)), QUOTE_OK);

	/* A TPM2B_ATTEST: the same behind its size; the signature is over
	 * the TPMS_ATTEST. */
	b2.n = 0;
	put(&b2, m.n, 2);
	put_bytes(&b2, m.b, m.n);
	EXPECT(quote_verify(ec.spki, ec.spki_len, b2.b, b2.n, s.b, s.n,
			    &want_nonce, NULL, err, sizeof(err)), QUOTE_OK);
	b2.b[1] ^= 1;   /* a size that is not the rest: not a TPM2B */
	EXPECT(quote_verify(ec.spki, ec.spki_len, b2.b, b2.n, s.b, s.n,
			    &want_nonce, NULL, err, sizeof(err)),
	       QUOTE_E_SIGNATURE);

	for (size_t i = 0; i < 2; i++) {
		sign(&rsa, rsa_algs[i], TPMT, m.b, m.n, &s);
		EXPECT(quote_verify(rsa.spki, rsa.spki_len, m.b, m.n, s.b, s.n,
				    &want_nonce, NULL, err, sizeof(err)),
		       QUOTE_OK);
		s.b[s.n - 1] ^= 1;
		EXPECT(quote_verify(rsa.spki, rsa.spki_len, m.b, m.n, s.b, s.n,
				    &want_nonce, NULL, err, sizeof(err)),
		       QUOTE_E_SIGNATURE);
	}

	/* quote_parse alone reads the same. */
	memset(&q, 0, sizeof(q));
	EXPECT(quote_parse(m.b, m.n, &q, NULL, NULL, err, sizeof(err)),
	       QUOTE_OK);
	assert_int_equal(q.pcr_mask, GOOD_MASK);
}

static void pcr_values_are_checked_against_the_digest(void **state)
{
	uint8_t vals[4][32];
	struct attest a = good();
	struct quote_expect w = want_nonce;

	(void)state;
	memcpy(vals, pcr_vals, sizeof(vals));
	w.pcr_mask = GOOD_MASK;
	w.pcr_values = (const uint8_t (*)[32])vals;
	EXPECT(check(&a, &w), QUOTE_OK);
	for (size_t i = 0; i < sizeof(vals); i++) {
		vals[i / 32][i % 32] ^= 0x80;
		EXPECT(check(&a, &w), QUOTE_E_PCR_DIGEST);
		vals[i / 32][i % 32] ^= 0x80;
	}
	/* The values in another order are other values. */
	memcpy(vals[0], pcr_vals[1], 32);
	memcpy(vals[1], pcr_vals[0], 32);
	EXPECT(check(&a, &w), QUOTE_E_PCR_DIGEST);
	memcpy(vals, pcr_vals, sizeof(vals));

	/* Another selection than expected, even with a digest to match. */
	w.pcr_mask = 0x96;
	EXPECT(check(&a, &w), QUOTE_E_PCR_SELECT);
	w.pcr_values = NULL;
	EXPECT(check(&a, &w), QUOTE_E_PCR_SELECT);
	w.pcr_mask = GOOD_MASK;
	EXPECT(check(&a, &w), QUOTE_OK);

	/* A wrong digest in a signed quote. */
	a.digest[31] ^= 1;
	w.pcr_values = (const uint8_t (*)[32])vals;
	EXPECT(check(&a, &w), QUOTE_E_PCR_DIGEST);
}

/* ---- hostile quotes ------------------------------------------------------- */

static void wrong_nonce_is_refused(void **state)
{
	struct attest a = good();
	uint8_t other[QUOTE_QD_MAX + 1];
	struct quote_expect w = { .qd = other };

	(void)state;
	memcpy(other, nonce, 32);
	for (size_t i = 0; i < 32; i++) {
		other[i] ^= 0x01;
		w.qd_len = 32;
		EXPECT(check(&a, &w), QUOTE_E_NONCE);
		other[i] ^= 0x01;
	}
	w.qd_len = 31;                  /* a prefix */
	EXPECT(check(&a, &w), QUOTE_E_NONCE);
	w.qd_len = 0;                   /* none expected */
	EXPECT(check(&a, &w), QUOTE_E_NONCE);
	assert_non_null(strstr(err, "qualifying data"));
	a.extra_size = 33;              /* one byte more in the quote */
	a.extra[32] = 0;
	w.qd_len = 32;
	EXPECT(check(&a, &w), QUOTE_E_NONCE);
	a.extra_size = 0;               /* none in the quote */
	EXPECT(check(&a, &w), QUOTE_E_NONCE);
	w.qd_len = 0;
	EXPECT(check(&a, &w), QUOTE_OK);
	w.qd_len = QUOTE_QD_MAX + 1;    /* the caller's mistake */
	EXPECT(check(&a, &w), QUOTE_E_ARGS);
}

static void wrong_magic_or_type_is_refused(void **state)
{
	struct attest a = good();

	(void)state;
	a.magic = 0xff544348;
	EXPECT(check(&a, &want_nonce), QUOTE_E_MAGIC);
	a.magic = 0;
	EXPECT(check(&a, &want_nonce), QUOTE_E_MAGIC);
	a = good();
	a.type = ST_ATTEST_CERTIFY;
	EXPECT(check(&a, &want_nonce), QUOTE_E_TYPE);
	a.type = 0x1880;                /* byte-swapped */
	EXPECT(check(&a, &want_nonce), QUOTE_E_TYPE);
}

static void bad_signatures_are_refused(void **state)
{
	struct attest a = good();
	struct buf m, s;
	const enum sig_form forms[] = { DER, TPMT };

	(void)state;
	marshal(&a, &m);
	for (size_t f = 0; f < 2; f++) {
		sign(&ec, ALG_ECDSA, forms[f], m.b, m.n, &s);
		for (size_t i = 0; i < s.n; i++) {
			for (int bit = 0; bit < 8; bit++) {
				s.b[i] ^= (uint8_t)(1u << bit);
				if (quote_verify(ec.spki, ec.spki_len, m.b, m.n,
						 s.b, s.n, &want_nonce, NULL,
						 err, sizeof(err)) == QUOTE_OK)
					fail_msg("form %zu byte %zu bit %d "
						 "verifies", f, i, bit);
				s.b[i] ^= (uint8_t)(1u << bit);
			}
		}
		/* Truncated, or a byte more. */
		for (size_t n = 0; n < s.n; n++)
			if (quote_verify(ec.spki, ec.spki_len, m.b, m.n, s.b, n,
					 &want_nonce, NULL, err,
					 sizeof(err)) == QUOTE_OK)
				fail_msg("form %zu: %zu of %zu bytes verify", f,
					 n, s.n);
		s.b[s.n] = 0;
		assert_int_not_equal(quote_verify(ec.spki, ec.spki_len, m.b,
						  m.n, s.b, s.n + 1,
						  &want_nonce, NULL, err,
						  sizeof(err)), QUOTE_OK);
		/* Another key's signature; another message's. */
		sign(&ec2, ALG_ECDSA, forms[f], m.b, m.n, &s);
		EXPECT(quote_verify(ec.spki, ec.spki_len, m.b, m.n, s.b, s.n,
				    &want_nonce, NULL, err, sizeof(err)),
		       QUOTE_E_SIGNATURE);
		sign(&ec, ALG_ECDSA, forms[f], m.b, m.n - 1, &s);
		EXPECT(quote_verify(ec.spki, ec.spki_len, m.b, m.n, s.b, s.n,
				    &want_nonce, NULL, err, sizeof(err)),
		       QUOTE_E_SIGNATURE);
	}
	/* Any changed attestation byte breaks the signature first. */
	sign(&ec, ALG_ECDSA, DER, m.b, m.n, &s);
	for (size_t i = 0; i < m.n; i++) {
		m.b[i] ^= 0x40;
		EXPECT(quote_verify(ec.spki, ec.spki_len, m.b, m.n, s.b, s.n,
				    &want_nonce, NULL, err, sizeof(err)),
		       QUOTE_E_SIGNATURE);
		m.b[i] ^= 0x40;
	}
}

static void malformed_signatures_and_keys_are_refused(void **state)
{
	struct attest a = good();
	struct buf m, s;
	uint8_t spki[QUOTE_SPKI_MAX + 2];

	(void)state;
	marshal(&a, &m);
	/* An RSA signature for an EC key, and the reverse. */
	sign(&rsa, ALG_RSASSA, TPMT, m.b, m.n, &s);
	EXPECT(quote_verify(ec.spki, ec.spki_len, m.b, m.n, s.b, s.n,
			    &want_nonce, NULL, err, sizeof(err)),
	       QUOTE_E_SIG_FORMAT);
	sign(&ec, ALG_ECDSA, TPMT, m.b, m.n, &s);
	EXPECT(quote_verify(rsa.spki, rsa.spki_len, m.b, m.n, s.b, s.n,
			    &want_nonce, NULL, err, sizeof(err)),
	       QUOTE_E_SIG_FORMAT);
	sign(&ec, ALG_ECDSA, DER, m.b, m.n, &s);
	EXPECT(quote_verify(rsa.spki, rsa.spki_len, m.b, m.n, s.b, s.n,
			    &want_nonce, NULL, err, sizeof(err)),
	       QUOTE_E_SIG_FORMAT);

	/* TPMT_SIGNATURE: another algorithm, another hash, sizes over their
	 * bound or past the end, bytes after it. */
	sign(&ec, ALG_ECDSA, TPMT, m.b, m.n, &s);
	s.b[1] = 0x1a;                                  /* ECDAA */
	EXPECT(quote_verify(ec.spki, ec.spki_len, m.b, m.n, s.b, s.n,
			    &want_nonce, NULL, err, sizeof(err)),
	       QUOTE_E_SIG_FORMAT);
	s.b[1] = 0x18;
	s.b[3] = ALG_SHA1;
	EXPECT(quote_verify(ec.spki, ec.spki_len, m.b, m.n, s.b, s.n,
			    &want_nonce, NULL, err, sizeof(err)),
	       QUOTE_E_SIG_FORMAT);
	s.b[3] = TPM_ALG_SHA256;
	s.b[4] = 0xff;                                  /* r: 0xff20 bytes */
	EXPECT(quote_verify(ec.spki, ec.spki_len, m.b, m.n, s.b, s.n,
			    &want_nonce, NULL, err, sizeof(err)),
	       QUOTE_E_SIG_FORMAT);
	s.b[4] = 0;
	s.b[5] = 67;                                    /* over P-521's 66 */
	EXPECT(quote_verify(ec.spki, ec.spki_len, m.b, m.n, s.b, s.n,
			    &want_nonce, NULL, err, sizeof(err)),
	       QUOTE_E_SIG_FORMAT);
	s.b[5] = 32;
	s.b[s.n] = 0;
	EXPECT(quote_verify(ec.spki, ec.spki_len, m.b, m.n, s.b, s.n + 1,
			    &want_nonce, NULL, err, sizeof(err)),
	       QUOTE_E_SIG_FORMAT);
	sign(&rsa, ALG_RSASSA, TPMT, m.b, m.n, &s);
	s.b[4] = 0x02;                                  /* 513 bytes */
	s.b[5] = 0x01;
	EXPECT(quote_verify(rsa.spki, rsa.spki_len, m.b, m.n, s.b, s.n,
			    &want_nonce, NULL, err, sizeof(err)),
	       QUOTE_E_SIG_FORMAT);
	memset(s.b, 0x30, QUOTE_SIG_MAX + 1);           /* oversize */
	EXPECT(quote_verify(ec.spki, ec.spki_len, m.b, m.n, s.b,
			    QUOTE_SIG_MAX + 1, &want_nonce, NULL, err,
			    sizeof(err)), QUOTE_E_SIG_FORMAT);

	/* Keys: truncated, a byte more, garbage, oversize, empty. */
	sign(&ec, ALG_ECDSA, DER, m.b, m.n, &s);
	memcpy(spki, ec.spki, ec.spki_len);
	spki[ec.spki_len] = 0;
	EXPECT(quote_verify(spki, ec.spki_len + 1, m.b, m.n, s.b, s.n,
			    &want_nonce, NULL, err, sizeof(err)), QUOTE_E_KEY);
	for (size_t n = 0; n < ec.spki_len; n++)
		EXPECT(quote_verify(spki, n, m.b, m.n, s.b, s.n, &want_nonce,
				    NULL, err, sizeof(err)), QUOTE_E_KEY);
	memset(spki, 0xa5, sizeof(spki));
	EXPECT(quote_verify(spki, 91, m.b, m.n, s.b, s.n, &want_nonce, NULL,
			    err, sizeof(err)), QUOTE_E_KEY);
	EXPECT(quote_verify(spki, QUOTE_SPKI_MAX + 1, m.b, m.n, s.b, s.n,
			    &want_nonce, NULL, err, sizeof(err)), QUOTE_E_KEY);

	/* Arguments. */
	EXPECT(quote_verify(NULL, 0, m.b, m.n, s.b, s.n, &want_nonce, NULL,
			    err, sizeof(err)), QUOTE_E_ARGS);
	EXPECT(quote_verify(ec.spki, ec.spki_len, m.b, m.n, s.b, s.n, NULL,
			    NULL, err, sizeof(err)), QUOTE_E_ARGS);
	EXPECT(quote_verify(ec.spki, ec.spki_len, m.b, m.n, s.b, s.n,
			    &(struct quote_expect){ .qd_len = 1 }, NULL, err,
			    sizeof(err)), QUOTE_E_ARGS);
	EXPECT(quote_verify(ec.spki, ec.spki_len, m.b, m.n, s.b, s.n,
			    &(struct quote_expect){ .qd = nonce, .qd_len = 32,
						    .pcr_mask = 1u << 24 },
			    NULL, err, sizeof(err)), QUOTE_E_ARGS);
	/* No err buffer is fine. */
	assert_int_equal(quote_verify(ec.spki, ec.spki_len, m.b, m.n, s.b,
				      s.n, &want_nonce, NULL, NULL, 0),
			 QUOTE_OK);
}

static void truncated_quotes_are_refused(void **state)
{
	struct attest a = good();
	struct quote_info q;
	struct buf m, s;

	(void)state;
	marshal(&a, &m);
	/* Every prefix, each signed: only the parser can refuse it. */
	for (size_t n = 0; n < m.n; n++) {
		int rc;

		sign(&ec, ALG_ECDSA, DER, m.b, n, &s);
		rc = quote_verify(ec.spki, ec.spki_len, m.b, n, s.b, s.n,
				  &want_nonce, NULL, err, sizeof(err));
		if (rc != QUOTE_E_FORMAT)
			fail_msg("%zu of %zu bytes: %d (%s)", n, m.n, rc, err);
		assert_int_equal(quote_parse(m.b, n, &q, NULL, NULL, err,
					     sizeof(err)), QUOTE_E_FORMAT);
	}
	/* And a byte more, or many. */
	for (size_t t = 1; t < 300; t += 37) {
		a.trailing = t;
		EXPECT(check(&a, &want_nonce), QUOTE_E_FORMAT);
	}
}

static void oversize_sizes_are_refused(void **state)
{
	static const uint16_t big16[] = { 0xffff, 0x8000, 0x1000, 0x0101 };
	struct attest a;
	struct buf m;
	struct quote_info q;

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		/* Sizes the buffer cannot hold: truncated. */
		a = good();
		a.signer_size = big16[i];
		EXPECT(check(&a, &want_nonce), QUOTE_E_FORMAT);
		a = good();
		a.extra_size = big16[i];
		EXPECT(check(&a, &want_nonce), QUOTE_E_FORMAT);
		a = good();
		a.digest_size = big16[i];
		EXPECT(check(&a, &want_nonce), QUOTE_E_FORMAT);
	}
	/* Sizes the buffer holds, over their type's bound. */
	a = good();
	a.signer_size = QUOTE_NAME_MAX + 1;
	EXPECT(check(&a, &want_nonce), QUOTE_E_FORMAT);
	a = good();
	a.extra_size = QUOTE_DATA_MAX + 1;
	EXPECT(check(&a, &want_nonce), QUOTE_E_FORMAT);
	a = good();
	a.digest_size = QUOTE_DIGEST_MAX + 1;
	EXPECT(check(&a, &want_nonce), QUOTE_E_FORMAT);
	a = good();
	a.select_size = QUOTE_SELECT_MAX + 1;
	EXPECT(check(&a, &want_nonce), QUOTE_E_FORMAT);
	a.select_size = 0xff;
	EXPECT(check(&a, &want_nonce), QUOTE_E_FORMAT);
	a = good();
	a.count = QUOTE_BANKS_MAX + 1;
	EXPECT(check(&a, &want_nonce), QUOTE_E_FORMAT);
	a.count = 0xffffffff;
	EXPECT(check(&a, &want_nonce), QUOTE_E_FORMAT);
	/* A whole attestation over the bound, whatever it holds. */
	a = good();
	a.trailing = QUOTE_ATTEST_MAX;
	marshal(&a, &m);
	assert_int_equal(quote_parse(m.b, m.n, &q, NULL, NULL, err,
				     sizeof(err)), QUOTE_E_FORMAT);
	EXPECT(check(&a, &want_nonce), QUOTE_E_FORMAT);
	/* The one-byte boolean is 0 or 1. */
	a = good();
	a.safe = 2;
	EXPECT(check(&a, &want_nonce), QUOTE_E_FORMAT);
}

static void other_pcr_selections_are_refused(void **state)
{
	struct attest a;

	(void)state;
	a = good();
	a.count = 0;                    /* no bank */
	EXPECT(check(&a, &want_nonce), QUOTE_E_PCR_SELECT);
	a = good();
	a.count = 2;                    /* two banks */
	EXPECT(check(&a, &want_nonce), QUOTE_E_PCR_SELECT);
	a = good();
	a.hash = ALG_SHA1;
	EXPECT(check(&a, &want_nonce), QUOTE_E_PCR_SELECT);
	a = good();
	a.select_size = 4;              /* PCR 24 */
	a.select[3] = 0x01;
	EXPECT(check(&a, &want_nonce), QUOTE_E_PCR_SELECT);
	assert_non_null(strstr(err, "above 23"));
	a.select[3] = 0;                /* four bytes, none above 23: fine */
	EXPECT(check(&a, &want_nonce), QUOTE_OK);
	a = good();
	a.select[0] = 0;                /* nothing selected */
	EXPECT(check(&a, &want_nonce), QUOTE_E_PCR_SELECT);
	a = good();
	a.select_size = 0;
	EXPECT(check(&a, &want_nonce), QUOTE_E_PCR_SELECT);
	a = good();
	a.digest_size = 20;             /* a sha1-sized digest */
	EXPECT(check(&a, &want_nonce), QUOTE_E_PCR_SELECT);
	a = good();
	a.select_size = 1;              /* one select byte is enough */
	EXPECT(check(&a, &want_nonce), QUOTE_OK);
}

static void every_status_has_a_message(void **state)
{
	(void)state;
	for (int i = -1; i <= QUOTE_E_PCR_DIGEST + 1; i++)
		assert_non_null(quote_strerror(i));
	assert_string_equal(quote_strerror(QUOTE_E_NONCE),
			    "made for other qualifying data");
}

/* ---- quotes from a real TPM (tests/unit/quote_tpm2_tools.sh) --------------- */

static size_t slurp(const char *dir, const char *name, uint8_t *out,
		    size_t max)
{
	char path[512];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "test_quote: cannot open %s\n", path);
		exit(1);
	}
	n = fread(out, 1, max, f);
	fclose(f);
	return n;
}

/*
 * DIR/<k>.ak.der, <k>.attest, <k>.sig (TPMT_SIGNATURE), <k>.pcrs (the
 * values, concatenated), <k>.mask (hex) and nonce (hex) for each key
 * kind k in argv: verify, then refuse altered copies.
 */
static int vectors(const char *dir, int nkinds, char **kinds)
{
	static uint8_t spki[QUOTE_SPKI_MAX], attest[QUOTE_ATTEST_MAX + 2];
	static uint8_t sig[QUOTE_SIG_MAX], pcrs[QUOTE_PCR_COUNT * 32];
	uint8_t qd[QUOTE_QD_MAX];
	char text[128], name[64];
	size_t spki_len, attest_len, sig_len, pcrs_len, n;
	unsigned long mask;
	int failures = 0;

	n = slurp(dir, "nonce", (uint8_t *)text, sizeof(text) - 1);
	while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
		n--;
	if (n % 2 || n / 2 > sizeof(qd) || hex_decode(text, n, qd, n / 2)) {
		fprintf(stderr, "test_quote: bad nonce file\n");
		return 1;
	}
	for (int k = 0; k < nkinds; k++) {
		struct quote_expect w = { .qd = qd, .qd_len = n / 2 };
		struct quote_info q;
		int rc;

#define LOAD(var, suffix)                                                     \
	(snprintf(name, sizeof(name), "%s.%s", kinds[k], suffix),             \
	 var##_len = slurp(dir, name, var, sizeof(var)))
		LOAD(spki, "ak.der");
		LOAD(attest, "attest");
		LOAD(sig, "sig");
		LOAD(pcrs, "pcrs");
		snprintf(name, sizeof(name), "%s.mask", kinds[k]);
		text[slurp(dir, name, (uint8_t *)text, sizeof(text) - 1)] = 0;
		mask = strtoul(text, NULL, 16);
		w.pcr_mask = (uint32_t)mask;
		w.pcr_values = (const uint8_t (*)[32])pcrs;
		if (pcrs_len != 32 * (size_t)__builtin_popcountl(mask)) {
			fprintf(stderr, "%s: %zu bytes of PCR values for mask "
				"0x%lx\n", kinds[k], pcrs_len, mask);
			failures++;
			continue;
		}
		rc = quote_verify(spki, spki_len, attest, attest_len, sig,
				  sig_len, &w, &q, err, sizeof(err));
		printf("%s: tpm2_quote by swtpm: %s%s%s\n", kinds[k],
		       quote_strerror(rc), rc ? ": " : "", rc ? err : "");
		failures += rc != QUOTE_OK;
		/* Altered: a PCR value, the nonce, a signed byte, the sig. */
		pcrs[0] ^= 1;
		rc = quote_verify(spki, spki_len, attest, attest_len, sig,
				  sig_len, &w, &q, err, sizeof(err));
		printf("%s: one PCR value altered: %s\n", kinds[k], err);
		failures += rc != QUOTE_E_PCR_DIGEST;
		pcrs[0] ^= 1;
		qd[0] ^= 1;
		rc = quote_verify(spki, spki_len, attest, attest_len, sig,
				  sig_len, &w, &q, err, sizeof(err));
		printf("%s: another nonce: %s\n", kinds[k], err);
		failures += rc != QUOTE_E_NONCE;
		qd[0] ^= 1;
		for (size_t i = 0; i < attest_len; i++) {
			attest[i] ^= 0x10;
			rc = quote_verify(spki, spki_len, attest, attest_len,
					  sig, sig_len, &w, &q, err,
					  sizeof(err));
			if (rc != QUOTE_E_SIGNATURE) {
				printf("%s: attest byte %zu altered: %d\n",
				       kinds[k], i, rc);
				failures++;
			}
			attest[i] ^= 0x10;
		}
		sig[sig_len - 1] ^= 1;
		rc = quote_verify(spki, spki_len, attest, attest_len, sig,
				  sig_len, &w, &q, err, sizeof(err));
		printf("%s: signature altered: %s\n", kinds[k], err);
		failures += rc == QUOTE_OK;
	}
	printf("%s\n", failures ? "FAILED" : "all as expected");
	return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_quotes_verify_in_every_form),
		cmocka_unit_test(pcr_values_are_checked_against_the_digest),
		cmocka_unit_test(wrong_nonce_is_refused),
		cmocka_unit_test(wrong_magic_or_type_is_refused),
		cmocka_unit_test(bad_signatures_are_refused),
		cmocka_unit_test(malformed_signatures_and_keys_are_refused),
		cmocka_unit_test(truncated_quotes_are_refused),
		cmocka_unit_test(oversize_sizes_are_refused),
		cmocka_unit_test(other_pcr_selections_are_refused),
		cmocka_unit_test(every_status_has_a_message),
	};

	if (argc >= 3 && strcmp(argv[1], "--vectors") == 0)
		return vectors(argv[2], argc - 3, argv + 3);
	return cmocka_run_group_tests(tests, keys_make, keys_free);
}
