/* SPDX-License-Identifier: BSD-3-Clause */
/* The two primitives every encrypted file of this project uses. */
#ifndef VTPM_AEAD_H
#define VTPM_AEAD_H

#include <stddef.h>
#include <stdint.h>

#define AEAD_KEY_LEN 32
#define AEAD_NONCE_LEN 12
#define AEAD_TAG_LEN 16

/* HKDF-SHA256 without salt.  0 or -EIO. */
int aead_hkdf_sha256(const uint8_t *ikm, size_t ikmlen, const char *info,
		     uint8_t *out, size_t outlen);

/*
 * AES-256-GCM of in[0..inlen) to out with aad authenticated; encrypting
 * writes tag, decrypting checks it.  0, -EBADMSG when the tag does not
 * verify, -ENOMEM or -EIO.
 */
int aead_gcm(int enc, const uint8_t key[AEAD_KEY_LEN],
	     const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *aad,
	     size_t aadlen, const uint8_t *in, size_t inlen, uint8_t *out,
	     uint8_t tag[AEAD_TAG_LEN]);

#endif
