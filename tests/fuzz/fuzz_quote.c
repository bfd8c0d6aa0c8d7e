/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * core/proto/quote.c, what vtpmctl verify-quote runs on a file anyone can
 * write.  Random bytes never carry a valid signature, so the first byte
 * picks what the input is:
 *   0  the attestation itself, parsed, and then signed here so that
 *      quote_verify reaches its parser with attacker-chosen signed data
 *   1  edits (offset, byte) and a cut applied to a well-formed quote
 *      built here, then signed: the parser's deep paths without a corpus
 *   2  the signature bytes, against a fixed attestation and key
 *   3  the key bytes (SubjectPublicKeyInfo)
 * Invariants: quote_verify and quote_parse agree on signed data; what
 * quote_parse reports points inside the input; a key or signature that
 * the fuzzer invents never verifies.
 *
 * Speed (what does not depend on the input is done once per process):
 * OpenSSL 3's d2i_PUBKEY builds a decoder chain per call and was 64% of
 * the time, though in cases 0..2 it decodes the same fixed key every
 * time.  This file defines d2i_PUBKEY, which quote.c's call resolves to:
 * those exact bytes give the key the real d2i_PUBKEY decoded from them
 * at start-up (one more reference); any other bytes, all of case 3, go
 * to the real one.  The signing context is made once, and case 3's
 * signature over the fixed quote is made once.
 */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "proto/quote.h"

static EVP_PKEY *key;        /* the signer's key pair */
static EVP_PKEY *pub;        /* the real d2i_PUBKEY of spki */
static EVP_PKEY_CTX *signer; /* signs SHA-256 digests with key */
static uint8_t spki[256];
static size_t spki_len;

typedef EVP_PKEY *d2i_pubkey_fn(EVP_PKEY **, const unsigned char **, long);
static d2i_pubkey_fn *real_d2i_pubkey;

EVP_PKEY *d2i_PUBKEY(EVP_PKEY **a, const unsigned char **pp, long length)
{
	if (!real_d2i_pubkey) {
		real_d2i_pubkey = (d2i_pubkey_fn *)dlsym(RTLD_NEXT,
							 "d2i_PUBKEY");
		if (!real_d2i_pubkey)
			abort();
	}
	if (pub && !a && pp && *pp && length == (long)spki_len &&
	    memcmp(*pp, spki, spki_len) == 0) {
		if (EVP_PKEY_up_ref(pub) != 1)
			abort();
		*pp += spki_len;
		return pub;
	}
	return real_d2i_pubkey(a, pp, length);
}

static size_t sign(const uint8_t *msg, size_t len, uint8_t *sig, size_t max)
{
	uint8_t md[32];
	size_t n = max;

	SHA256(msg, len, md);
	if (EVP_PKEY_sign(signer, sig, &n, md, sizeof(md)) != 1)
		abort();
	return n;
}

static size_t good_quote(uint8_t *b);

static uint8_t good[QUOTE_ATTEST_MAX + 64], good_sig[128];
static size_t good_len, good_sig_len;

static void init(void)
{
	const uint8_t *q = spki;
	uint8_t *p = spki;
	int n;

	if (key)
		return;
	key = EVP_EC_gen("P-256");
	n = key ? i2d_PUBKEY(key, NULL) : -1;
	if (n <= 0 || (size_t)n > sizeof(spki) || i2d_PUBKEY(key, &p) != n)
		abort();
	spki_len = (size_t)n;
	pub = d2i_PUBKEY(NULL, &q, (long)spki_len); /* the real one: !pub */
	if (!pub || q != spki + spki_len || EVP_PKEY_eq(pub, key) != 1)
		abort();
	signer = EVP_PKEY_CTX_new(key, NULL);
	if (!signer || EVP_PKEY_sign_init(signer) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(signer, EVP_sha256()) != 1)
		abort();
	good_len = good_quote(good);
	good_sig_len = sign(good, good_len, good_sig, sizeof(good_sig));
}

/* A well-formed quote: magic, type, a 34-byte name, 32 bytes extraData,
 * clock info, firmware, one sha256 bank {0,2,4,7}, a 32-byte digest. */
static size_t good_quote(uint8_t *b)
{
	static const uint8_t head[] = {
		0xff, 0x54, 0x43, 0x47, 0x80, 0x18, 0x00, 0x22,
	};
	size_t n = 0;

	memcpy(b, head, sizeof(head));
	n += sizeof(head);
	memset(b + n, 0x5a, 34);
	n += 34;
	b[n++] = 0;
	b[n++] = 32;
	memset(b + n, 0x11, 32);
	n += 32;
	memset(b + n, 0x01, 8 + 4 + 4);         /* clock, resets, restarts */
	n += 16;
	b[n++] = 1;                             /* safe */
	memset(b + n, 0x02, 8);                 /* firmware */
	n += 8;
	memcpy(b + n, "\x00\x00\x00\x01\x00\x0b\x03\x95\x00\x00\x00\x20", 12);
	n += 12;
	memset(b + n, 0x33, 32);
	return n + 32;
}

/* Every pointer quote_parse gave lies inside [buf, buf + len). */
static void inside(const struct quote_info *q, const uint8_t *buf, size_t len)
{
	if (q->signer_len && (q->signer < buf ||
			      q->signer + q->signer_len > buf + len))
		abort();
	if (q->extra_len && (q->extra < buf || q->extra + q->extra_len > buf + len))
		abort();
	if (q->extra_len > QUOTE_DATA_MAX || !q->pcr_mask ||
	    (q->pcr_mask >> QUOTE_PCR_COUNT))
		abort();
}

/* Signs buf and checks that quote_verify agrees with quote_parse. */
static void signed_agrees(const uint8_t *buf, size_t len)
{
	uint8_t sig[128];
	struct quote_info q, v;
	const uint8_t *msg;
	size_t msg_len, sig_len;
	int prc, vrc;
	struct quote_expect want = { 0 };

	prc = quote_parse(buf, len, &q, &msg, &msg_len, NULL, 0);
	if (prc == QUOTE_OK) {
		inside(&q, buf, len);
		if (msg < buf || msg + msg_len != buf + len)
			abort();
		if (q.extra_len > QUOTE_QD_MAX)
			return;
		want.qd = q.extra;
		want.qd_len = q.extra_len;
		sig_len = sign(msg, msg_len, sig, sizeof(sig));
	} else {
		if (len > QUOTE_ATTEST_MAX + 2)
			return;
		/* Sign what quote_verify will take as the TPMS_ATTEST. */
		msg = buf;
		msg_len = len;
		if (len >= 6 && memcmp(buf, "\xff\x54\x43\x47", 4) &&
		    ((size_t)buf[0] << 8 | buf[1]) == len - 2) {
			msg = buf + 2;
			msg_len = len - 2;
		}
		sig_len = sign(msg, msg_len, sig, sizeof(sig));
	}
	vrc = quote_verify(spki, spki_len, buf, len, sig, sig_len, &want, &v,
			   NULL, 0);
	if (prc == QUOTE_OK && vrc != QUOTE_OK)
		abort();
	if (prc != QUOTE_OK && vrc == QUOTE_OK)
		abort();
	if (vrc == QUOTE_OK && (v.pcr_mask != q.pcr_mask ||
				memcmp(v.pcr_digest, q.pcr_digest, 32)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t buf[QUOTE_ATTEST_MAX + 64];
	size_t n;

	init();
	if (!size)
		return 0;
	switch (data[0] & 3) {
	case 0:
		signed_agrees(data + 1, size - 1);
		break;
	case 1:
		n = good_quote(buf);
		/* (offset, value) pairs; an odd last byte cuts the quote. */
		for (size_t i = 1; i + 1 < size; i += 2)
			buf[data[i] % n] = data[i + 1];
		if ((size - 1) % 2)
			n = data[size - 1] % (n + 1);
		signed_agrees(buf, n);
		break;
	case 2:
		if (quote_sig_verify(spki, spki_len, good, good_len, data + 1,
				     size - 1, NULL, 0) == QUOTE_OK)
			abort();
		break;
	case 3:
		/* Only our own key (in whatever encoding) verifies it. */
		if (quote_sig_verify(data + 1, size - 1, good, good_len,
				     good_sig, good_sig_len, NULL,
				     0) == QUOTE_OK) {
			const uint8_t *p = data + 1;
			EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)(size - 1));

			if (!k || EVP_PKEY_eq(k, key) != 1)
				abort();
			EVP_PKEY_free(k);
		}
		break;
	}
	return 0;
}
