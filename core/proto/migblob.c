/* SPDX-License-Identifier: BSD-3-Clause */
#include "proto/migblob.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "lib/aead.h"
#include "lib/bytes.h"

static const uint8_t magic[8] = { 'V', 'T', 'P', 'M', 'M', 'I', 'G', '1' };

int migblob_derive_key(const uint8_t master[32],
		       uint8_t key[MIGBLOB_KEY_LEN])
{
	return aead_hkdf_sha256(master, 32, "vtpm-service migration blob v1",
				key, MIGBLOB_KEY_LEN);
}

int migblob_seal(const uint8_t key[MIGBLOB_KEY_LEN], uint32_t type,
		 const uint8_t *in, size_t inlen, uint8_t **out,
		 size_t *outlen)
{
	uint8_t *b;
	int rc;

	*out = NULL;
	*outlen = 0;
	if (inlen > (1u << 30))
		return -EINVAL;
	b = malloc(MIGBLOB_OVERHEAD + inlen);
	if (!b)
		return -ENOMEM;
	memcpy(b, magic, sizeof(magic));
	be32_put(b + 8, type);
	if (RAND_bytes(b + 12, AEAD_NONCE_LEN) != 1) {
		free(b);
		return -EIO;
	}
	rc = aead_gcm(1, key, b + 12, b, MIGBLOB_HEADER_LEN, in, inlen,
		      b + MIGBLOB_HEADER_LEN, b + MIGBLOB_HEADER_LEN + inlen);
	if (rc) {
		OPENSSL_cleanse(b, MIGBLOB_OVERHEAD + inlen);
		free(b);
		return rc;
	}
	*out = b;
	*outlen = MIGBLOB_OVERHEAD + inlen;
	return 0;
}

int migblob_open(const uint8_t key[MIGBLOB_KEY_LEN], uint32_t type,
		 const uint8_t *in, size_t inlen, uint8_t **out,
		 size_t *outlen)
{
	uint8_t tag[AEAD_TAG_LEN];
	size_t n;
	uint8_t *p;
	int rc;

	*out = NULL;
	*outlen = 0;
	if (inlen < MIGBLOB_OVERHEAD || memcmp(in, magic, sizeof(magic)))
		return -EINVAL;
	if (be32_get(in + 8) != type)
		return -EPROTO;
	n = inlen - MIGBLOB_OVERHEAD;
	p = malloc(n ? n : 1);
	if (!p)
		return -ENOMEM;
	memcpy(tag, in + MIGBLOB_HEADER_LEN + n, sizeof(tag));
	rc = aead_gcm(0, key, in + 12, in, MIGBLOB_HEADER_LEN,
		      in + MIGBLOB_HEADER_LEN, n, p, tag);
	if (rc) {
		OPENSSL_cleanse(p, n);
		free(p);
		return rc;
	}
	*out = p;
	*outlen = n;
	return 0;
}
