/* SPDX-License-Identifier: BSD-3-Clause */
#include "proto/expblob.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/aead.h"
#include "lib/bytes.h"
#include "lib/errbuf.h"

#define OFF_VERSION 8
#define OFF_WLEN 10
#define OFF_UUID 12
#define OFF_GEN 28
#define OFF_NAME 36
#define OFF_WRAPPED 70
#define OFF_NONCE (OFF_WRAPPED + EXPBLOB_WRAPPED_LEN)
#define OFF_CLEN (OFF_NONCE + AEAD_NONCE_LEN)

_Static_assert(OFF_CLEN + 4 == EXPBLOB_HDR_LEN, "header layout");
_Static_assert(AEAD_TAG_LEN == EXPBLOB_TAG_LEN, "one GCM tag");
_Static_assert(AEAD_KEY_LEN == EXPBLOB_KEY_LEN, "AES-256");

/* The volatile part: with the flag, a permanent state, a volatile one
 * and a tag within their limits; without it, none. */
static int vol_ok(const struct expblob_body *b)
{
	if (!(b->flags & EXPBLOB_F_VOLATILE))
		return b->vol_len == 0 && b->tag_len == 0;
	return b->state_len && b->vol && b->vol_len &&
	       b->vol_len <= EXPBLOB_MAX_STATE &&
	       b->tag_len <= EXPBLOB_MAX_TAG;
}

/* The volatile part of an opened body at p (rest bytes after the
 * permanent state). */
static int vol_split(struct expblob_body *b, const uint8_t *p, size_t rest)
{
	uint32_t v, r;

	if (!(b->flags & EXPBLOB_F_VOLATILE))
		return rest == 0 ? 0 : -EINVAL;
	if (rest < 8)
		return -EINVAL;
	v = be32_get(p);
	if (v == 0 || v > EXPBLOB_MAX_STATE || v > rest - 8)
		return -EINVAL;
	r = be32_get(p + 4 + v);
	if (r > EXPBLOB_MAX_TAG || (size_t)r != rest - 8 - v)
		return -EINVAL;
	b->vol = malloc(v);
	if (!b->vol)
		return -ENOMEM;
	memcpy(b->vol, p + 4, v);
	b->vol_len = v;
	memcpy(b->tag, p + 8 + v, r);
	b->tag_len = r;
	return 0;
}

int expblob_seal(const struct expblob_hdr *h,
		 const uint8_t key[EXPBLOB_KEY_LEN],
		 const struct expblob_body *b, uint8_t **out, size_t *outlen)
{
	size_t n, total;
	uint8_t *buf, *body;
	int rc;

	*out = NULL;
	*outlen = 0;
	if (b->state_len > EXPBLOB_MAX_STATE || (b->flags & ~EXPBLOB_F_KNOWN) ||
	    (b->family != 1 && b->family != 2) ||
	    !(b->flags & EXPBLOB_F_NOSTATE) != (b->state_len != 0) ||
	    (b->state_len && !b->state) || !vol_ok(b))
		return -EINVAL;
	n = EXPBLOB_BODY_FIXED + b->state_len;
	if (b->flags & EXPBLOB_F_VOLATILE)
		n += 8 + (size_t)b->vol_len + b->tag_len;
	total = EXPBLOB_HDR_LEN + n + EXPBLOB_TAG_LEN;
	buf = malloc(total);
	body = malloc(n);
	if (!buf || !body) {
		free(buf);
		free(body);
		return -ENOMEM;
	}
	memcpy(buf, EXPBLOB_MAGIC, 8);
	be16_put(buf + OFF_VERSION, EXPBLOB_VERSION);
	be16_put(buf + OFF_WLEN, EXPBLOB_WRAPPED_LEN);
	memcpy(buf + OFF_UUID, h->uuid, 16);
	be64_put(buf + OFF_GEN, h->generation);
	memcpy(buf + OFF_NAME, h->dest_name, MIGKEY_NAME_LEN);
	memcpy(buf + OFF_WRAPPED, h->wrapped, EXPBLOB_WRAPPED_LEN);
	be32_put(buf + OFF_CLEN, (uint32_t)n);
	body[0] = b->family;
	body[1] = b->flags;
	body[2] = body[3] = 0;
	memcpy(body + 4, b->src_ak_sha256, 32);
	be32_put(body + 36, b->state_len);
	if (b->state_len)
		memcpy(body + EXPBLOB_BODY_FIXED, b->state, b->state_len);
	if (b->flags & EXPBLOB_F_VOLATILE) {
		uint8_t *p = body + EXPBLOB_BODY_FIXED + b->state_len;

		be32_put(p, b->vol_len);
		memcpy(p + 4, b->vol, b->vol_len);
		be32_put(p + 4 + b->vol_len, b->tag_len);
		if (b->tag_len)
			memcpy(p + 8 + b->vol_len, b->tag, b->tag_len);
	}
	rc = RAND_bytes(buf + OFF_NONCE, AEAD_NONCE_LEN) == 1 ? 0 : -EIO;
	if (!rc)
		rc = aead_gcm(1, key, buf + OFF_NONCE, buf, EXPBLOB_HDR_LEN,
			      body, n, buf + EXPBLOB_HDR_LEN,
			      buf + EXPBLOB_HDR_LEN + n);
	OPENSSL_cleanse(body, n);
	free(body);
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	*outlen = total;
	return 0;
}

int expblob_parse(const uint8_t *buf, size_t len, struct expblob_hdr *h,
		  char *err, size_t errlen)
{
	uint32_t n;

	memset(h, 0, sizeof(*h));
	if (!buf || len < 8 || memcmp(buf, EXPBLOB_MAGIC, 8) != 0)
		return seterrc(err, errlen, -EINVAL, "not a vTPM export blob "
			    "(magic)");
	if (len < EXPBLOB_HDR_LEN)
		return seterrc(err, errlen, -EINVAL, "export blob truncated "
			    "(%zu bytes, its header alone is %d)", len,
			    EXPBLOB_HDR_LEN);
	if (be16_get(buf + OFF_VERSION) != EXPBLOB_VERSION)
		return seterrc(err, errlen, -EINVAL, "export blob of format "
			    "version %u (this manager reads %d)",
			    be16_get(buf + OFF_VERSION), EXPBLOB_VERSION);
	if (be16_get(buf + OFF_WLEN) != EXPBLOB_WRAPPED_LEN)
		return seterrc(err, errlen, -EINVAL, "export blob: wrapped key of "
			    "%u bytes (an RSA-2048 one has %d)",
			    be16_get(buf + OFF_WLEN), EXPBLOB_WRAPPED_LEN);
	n = be32_get(buf + OFF_CLEN);
	if (n < EXPBLOB_BODY_FIXED || n > EXPBLOB_MAX_BODY ||
	    len - EXPBLOB_HDR_LEN != (size_t)n + EXPBLOB_TAG_LEN)
		return seterrc(err, errlen, -EINVAL, "export blob: its length "
			    "(%zu bytes) is not what its header says "
			    "(truncated or trailing bytes)", len);
	memcpy(h->uuid, buf + OFF_UUID, 16);
	h->generation = be64_get(buf + OFF_GEN);
	memcpy(h->dest_name, buf + OFF_NAME, MIGKEY_NAME_LEN);
	memcpy(h->wrapped, buf + OFF_WRAPPED, EXPBLOB_WRAPPED_LEN);
	SHA256(buf, EXPBLOB_HDR_LEN, h->id);
	return 0;
}

void expblob_body_free(struct expblob_body *b)
{
	if (b->state) {
		OPENSSL_cleanse(b->state, b->state_len);
		free(b->state);
	}
	if (b->vol) {
		OPENSSL_cleanse(b->vol, b->vol_len);
		free(b->vol);
	}
	OPENSSL_cleanse(b->tag, sizeof(b->tag));
	memset(b, 0, sizeof(*b));
}

int expblob_open(const uint8_t *buf, size_t len,
		 const uint8_t key[EXPBLOB_KEY_LEN], struct expblob_body *b,
		 char *err, size_t errlen)
{
	struct expblob_hdr h;
	uint8_t tag[EXPBLOB_TAG_LEN], *body;
	size_t n;
	int rc;

	memset(b, 0, sizeof(*b));
	rc = expblob_parse(buf, len, &h, err, errlen);
	if (rc)
		return rc;
	n = len - EXPBLOB_HDR_LEN - EXPBLOB_TAG_LEN;
	body = malloc(n);
	if (!body)
		return -ENOMEM;
	memcpy(tag, buf + EXPBLOB_HDR_LEN + n, sizeof(tag));
	rc = aead_gcm(0, key, buf + OFF_NONCE, buf, EXPBLOB_HDR_LEN,
		      buf + EXPBLOB_HDR_LEN, n, body, tag);
	if (rc) {
		OPENSSL_cleanse(body, n);
		free(body);
		return seterrc(err, errlen, rc == -EBADMSG ? -EBADMSG : rc,
			    "export blob: authentication failed (altered, or "
			    "not sealed for this key)");
	}
	b->family = body[0];
	b->flags = body[1];
	memcpy(b->src_ak_sha256, body + 4, 32);
	b->state_len = be32_get(body + 36);
	rc = 0;
	if ((b->family != 1 && b->family != 2) ||
	    (b->flags & ~EXPBLOB_F_KNOWN) || body[2] || body[3] ||
	    (size_t)b->state_len > n - EXPBLOB_BODY_FIXED ||
	    !(b->flags & EXPBLOB_F_NOSTATE) != (b->state_len != 0) ||
	    ((b->flags & EXPBLOB_F_VOLATILE) && !b->state_len))
		rc = -EINVAL;
	if (!rc)
		rc = vol_split(b, body + EXPBLOB_BODY_FIXED + b->state_len,
			       n - EXPBLOB_BODY_FIXED - b->state_len);
	if (rc == -EINVAL)
		rc = seterrc(err, errlen, -EINVAL, "export blob: authentic but "
			  "malformed body");
	if (!rc && b->state_len) {
		b->state = malloc(b->state_len);
		if (!b->state)
			rc = -ENOMEM;
		else
			memcpy(b->state, body + EXPBLOB_BODY_FIXED,
			       b->state_len);
	}
	OPENSSL_cleanse(body, n);
	free(body);
	if (rc) {
		b->state_len = b->state ? b->state_len : 0;
		b->vol_len = b->vol ? b->vol_len : 0;
		expblob_body_free(b);
	}
	return rc;
}
