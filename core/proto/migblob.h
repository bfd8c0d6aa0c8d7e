/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A state blob sealed for migration (GET_STATEBLOB with a migration key;
 * docs/state-format.md): AES-256-GCM under a key derived from the
 * operator's migration key, the blob type in the authenticated header, so
 * a blob is refused under another key, as another type, or altered:
 *
 *   "VTPMMIG1" | u32 blob type | 12-byte nonce | ciphertext | 16-byte tag
 *
 * The plaintext is swtpm's envelope (swtpm_blob.h) around the libtpms blob.
 */
#ifndef VTPM_MIGBLOB_H
#define VTPM_MIGBLOB_H

#include <stddef.h>
#include <stdint.h>

#define MIGBLOB_KEY_LEN 32
#define MIGBLOB_HEADER_LEN 24
#define MIGBLOB_OVERHEAD (MIGBLOB_HEADER_LEN + 16)

/* The sealing key from the operator's key file (HKDF-SHA256, its own
 * label).  0 or -EIO. */
int migblob_derive_key(const uint8_t master[32],
		       uint8_t key[MIGBLOB_KEY_LEN]);

/* Seals in[0..inlen) as a blob of type; *out is malloc'd.  0, -ENOMEM,
 * -EINVAL (too large) or -EIO. */
int migblob_seal(const uint8_t key[MIGBLOB_KEY_LEN], uint32_t type,
		 const uint8_t *in, size_t inlen, uint8_t **out,
		 size_t *outlen);

/* Opens a sealed blob that must be of type; *out is malloc'd (the caller
 * wipes it).  0; -EINVAL not a sealed blob (short, magic); -EPROTO of
 * another type; -EBADMSG forged or under another key; -ENOMEM, -EIO. */
int migblob_open(const uint8_t key[MIGBLOB_KEY_LEN], uint32_t type,
		 const uint8_t *in, size_t inlen, uint8_t **out,
		 size_t *outlen);

#endif
