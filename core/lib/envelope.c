/* SPDX-License-Identifier: BSD-3-Clause */
#include "lib/envelope.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bytes.h"

#define NONCE_OFF(f) ((size_t)(f)->hdr_len - ENVELOPE_SUFFIX_LEN)
#define CTLEN_OFF(f) ((size_t)(f)->hdr_len - 4)

_Static_assert(ENVELOPE_SUFFIX_LEN == AEAD_NONCE_LEN + 4,
	       "nonce and length end the header");

int envelope_key(const struct envelope_fmt *f, const uint8_t *ikm,
		 size_t ikmlen, uint8_t key[AEAD_KEY_LEN])
{
	return aead_hkdf_sha256(ikm, ikmlen, f->kdf_info, key, AEAD_KEY_LEN)
		   ? f->err[ENV_CRYPTO]
		   : 0;
}

/* A format that would let the length arithmetic below wrap is a bug of
 * its author; it is refused rather than trusted. */
static int fmt_sane(const struct envelope_fmt *f)
{
	return f->hdr_len >= ENVELOPE_MIN_HDR &&
	       f->max_body <= ENVELOPE_MAX_BODY_LIMIT;
}

static int gcm(const struct envelope_fmt *f, int enc,
	       const uint8_t key[AEAD_KEY_LEN], const uint8_t *hdr,
	       const uint8_t *in, size_t inlen, uint8_t *out, uint8_t *tag)
{
	int rc = aead_gcm(enc, key, hdr + NONCE_OFF(f), hdr, f->hdr_len, in,
			  inlen, out, tag);

	if (rc == -EBADMSG)
		return f->err[ENV_AUTH];
	if (rc == -ENOMEM)
		return f->err[ENV_NOMEM];
	return rc ? f->err[ENV_CRYPTO] : 0;
}

int envelope_seal(const struct envelope_fmt *f, const uint8_t key[AEAD_KEY_LEN],
		  const uint8_t *hdr, const uint8_t *body, size_t bodylen,
		  uint8_t **out, size_t *outlen)
{
	size_t total;
	uint8_t *file;
	int rc;

	if (!fmt_sane(f))
		return f->err[ENV_CRYPTO];
	if (bodylen > f->max_body)
		return f->err[ENV_FORMAT];
	total = f->hdr_len + bodylen + ENVELOPE_TAG_LEN;
	file = malloc(total);
	if (!file)
		return f->err[ENV_NOMEM];
	memcpy(file, f->magic, ENVELOPE_MAGIC_LEN);
	be16_put(file + ENVELOPE_MAGIC_LEN, f->version);
	memcpy(file + ENVELOPE_PREFIX_LEN, hdr + ENVELOPE_PREFIX_LEN,
	       NONCE_OFF(f) - ENVELOPE_PREFIX_LEN);
	if (RAND_bytes(file + NONCE_OFF(f), AEAD_NONCE_LEN) != 1) {
		free(file);
		return f->err[ENV_CRYPTO];
	}
	be32_put(file + CTLEN_OFF(f), (uint32_t)bodylen);
	rc = gcm(f, 1, key, file, body, bodylen, file + f->hdr_len,
		 file + f->hdr_len + bodylen);
	if (rc) {
		/* The ciphertext may be partly written; it is harmless, but
		 * nothing of a failed seal leaves this function. */
		OPENSSL_cleanse(file, total);
		free(file);
		return rc;
	}
	*out = file;
	*outlen = total;
	return 0;
}

int envelope_peek(const struct envelope_fmt *f, const uint8_t *buf, size_t len)
{
	if (len < ENVELOPE_MAGIC_LEN)
		return f->err[ENV_TRUNCATED];
	if (memcmp(buf, f->magic, ENVELOPE_MAGIC_LEN) != 0)
		return f->err[ENV_MAGIC];
	if (len < f->hdr_len)
		return f->err[ENV_TRUNCATED];
	if (be16_get(buf + ENVELOPE_MAGIC_LEN) != f->version)
		return f->err[ENV_VERSION];
	return 0;
}

int envelope_open(const struct envelope_fmt *f, const uint8_t key[AEAD_KEY_LEN],
		  const uint8_t *buf, size_t len, uint8_t **body,
		  size_t *bodylen)
{
	uint8_t tag[ENVELOPE_TAG_LEN];
	uint32_t ctlen;
	size_t total;
	uint8_t *plain;
	int rc;

	*body = NULL;
	*bodylen = 0;
	if (!fmt_sane(f))
		return f->err[ENV_CRYPTO];
	rc = envelope_peek(f, buf, len);
	if (rc)
		return rc;
	ctlen = be32_get(buf + CTLEN_OFF(f));
	if (ctlen > f->max_body)
		return f->err[ENV_FORMAT];
	/* Cannot wrap: both terms are bounded by fmt_sane. */
	total = f->hdr_len + (size_t)ctlen + ENVELOPE_TAG_LEN;
	if (len < total)
		return f->err[ENV_TRUNCATED];
	if (len > total)
		return f->err[ENV_FORMAT];
	plain = malloc(ctlen ? ctlen : 1);
	if (!plain)
		return f->err[ENV_NOMEM];
	memcpy(tag, buf + f->hdr_len + ctlen, ENVELOPE_TAG_LEN);
	rc = gcm(f, 0, key, buf, buf + f->hdr_len, ctlen, plain, tag);
	if (rc) {
		envelope_body_free(plain, ctlen);
		return rc;
	}
	*body = plain;
	*bodylen = ctlen;
	return 0;
}

void envelope_body_free(uint8_t *body, size_t bodylen)
{
	if (!body)
		return;
	OPENSSL_cleanse(body, bodylen);
	free(body);
}
