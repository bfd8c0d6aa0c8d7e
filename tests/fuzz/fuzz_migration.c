/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Offline migration's parsers: the export blob a destination manager is
 * handed (proto/expblob) and the DEST.json parts a source checks
 * (proto/migkey).  Random bytes never authenticate, so the first byte
 * picks what the input is:
 *   0  a whole blob: framing, then opening under a fixed key
 *   1  a blob body, sealed here under the key: the body parser proper
 *   2  a migration key's public area
 *   3  a certification (TPMS_ATTEST), signed here by a fixed AK and
 *      checked against a fixed, well-formed public area
 * Invariants: what parses is within the input; an opened body's state
 * length is what is left of it; a certification that verifies names the
 * public area's key and carries the purpose's qualifying data.
 */
#define _GNU_SOURCE /* memmem */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "lib/aead.h"
#include "lib/bytes.h"
#include "proto/expblob.h"
#include "proto/migkey.h"

static const uint8_t key[EXPBLOB_KEY_LEN] = { 1, 2, 3 };
static EVP_PKEY *ak;
static uint8_t spki[256];
static size_t spki_len;
static uint8_t pub[2 + 22 + 256];
static uint8_t name[MIGKEY_NAME_LEN];

static void init(void)
{
	uint8_t *p = spki, *a = pub + 2;
	int n;

	if (ak)
		return;
	ak = EVP_EC_gen("P-256");
	n = ak ? i2d_PUBKEY(ak, NULL) : -1;
	if (n <= 0 || (size_t)n > sizeof(spki) || i2d_PUBKEY(ak, &p) != n)
		abort();
	spki_len = (size_t)n;
	be16_put(pub, sizeof(pub) - 2);
	be16_put(a, 0x0001);
	be16_put(a + 2, 0x000b);
	be32_put(a + 4, MIGKEY_ATTRS);
	be16_put(a + 8, 0);
	be16_put(a + 10, 0x0010);
	be16_put(a + 12, 0x0010);
	be16_put(a + 14, 2048);
	be32_put(a + 16, 0);
	be16_put(a + 20, 256);
	memset(a + 22, 0xc3, 256);
	be16_put(name, 0x000b);
	SHA256(a, sizeof(pub) - 2, name + 2);
}

static void whole_blob(const uint8_t *d, size_t n)
{
	struct expblob_hdr h;
	struct expblob_body b;

	if (expblob_parse(d, n, &h, NULL, 0) == 0 &&
	    n < EXPBLOB_HDR_LEN + EXPBLOB_BODY_FIXED + EXPBLOB_TAG_LEN)
		abort();
	if (expblob_open(d, n, key, &b, NULL, 0) == 0)
		abort(); /* the fuzzer cannot forge a GCM tag */
}

static void body(const uint8_t *d, size_t n)
{
	struct expblob_body b;
	uint8_t *blob;
	size_t len = EXPBLOB_HDR_LEN + n + EXPBLOB_TAG_LEN;

	if (n > EXPBLOB_MAX_BODY)
		return;
	blob = malloc(len);
	if (!blob)
		return;
	memset(blob, 0, EXPBLOB_HDR_LEN);
	memcpy(blob, EXPBLOB_MAGIC, 8);
	be16_put(blob + 8, EXPBLOB_VERSION);
	be16_put(blob + 10, EXPBLOB_WRAPPED_LEN);
	be32_put(blob + EXPBLOB_HDR_LEN - 4, (uint32_t)n);
	if (aead_gcm(1, key, blob + EXPBLOB_HDR_LEN - 16, blob, EXPBLOB_HDR_LEN,
		     d, n, blob + EXPBLOB_HDR_LEN, blob + EXPBLOB_HDR_LEN + n))
		abort();
	if (expblob_open(blob, len, key, &b, NULL, 0) == 0) {
		/* Opened: the body is exactly the permanent state, then
		 * (EXPBLOB_F_VOLATILE) u32 V, the volatile state, u32 R and
		 * the tag; every part as the input holds it. */
		size_t want = EXPBLOB_BODY_FIXED + (size_t)b.state_len;
		const uint8_t *v = d + want + 4;

		if (b.flags & EXPBLOB_F_VOLATILE)
			want += 8 + (size_t)b.vol_len + b.tag_len;
		if (n < EXPBLOB_BODY_FIXED || n != want ||
		    (b.state_len && memcmp(b.state, d + EXPBLOB_BODY_FIXED,
					   b.state_len)) ||
		    (b.family != 1 && b.family != 2))
			abort();
		if ((b.flags & EXPBLOB_F_VOLATILE) &&
		    (!b.state_len || !b.vol_len ||
		     memcmp(b.vol, v, b.vol_len) ||
		     memcmp(b.tag, v + b.vol_len + 4, b.tag_len)))
			abort();
		if (!(b.flags & EXPBLOB_F_VOLATILE) && (b.vol_len || b.tag_len))
			abort();
		expblob_body_free(&b);
	}
	free(blob);
}

static void certification(const uint8_t *d, size_t n)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct migkey k;
	uint8_t sig[128], qd[32];
	size_t sl = sizeof(sig);

	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, ak) != 1 ||
	    EVP_DigestSign(md, sig, &sl, d, n) != 1)
		abort();
	EVP_MD_CTX_free(md);
	if (migkey_verify(pub, sizeof(pub), d, n, sig, sl, spki, spki_len,
			  NULL, 0, &k, NULL, 0) == 0) {
		/* Verified: it names our key and has our purpose. */
		migkey_qd(qd);
		if (memcmp(k.name, name, sizeof(name)) ||
		    !memmem(d, n, qd, sizeof(qd)) ||
		    !memmem(d, n, name, sizeof(name)))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct migkey k;

	init();
	if (!size)
		return 0;
	switch (data[0] & 3) {
	case 0:
		whole_blob(data + 1, size - 1);
		break;
	case 1:
		body(data + 1, size - 1);
		break;
	case 2:
		if (migkey_parse_public(data + 1, size - 1, &k, NULL, 0) == 0 &&
		    size - 1 != 2 + 22 + MIGKEY_MODULUS_LEN)
			abort();
		break;
	case 3:
		certification(data + 1, size - 1);
		break;
	}
	return 0;
}
