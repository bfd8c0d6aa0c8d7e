/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The on-disk format of one vTPM's state, as pure functions over byte
 * buffers (no I/O; see store.h for that).
 *
 *   0  8  magic "VTPMSTAT"
 *   8  2  format version (1)
 *  10  1  TPM family (1 = TPM 1.2, 2 = TPM 2.0)
 *  11  1  reserved, 0
 *  12  4  reserved, 0
 *  16 16  vTPM UUID
 *  32  8  generation: grows by one with every write
 *  40 12  AES-GCM nonce (random per write)
 *  52  4  ciphertext length N
 *  56  N  AES-256-GCM ciphertext of the body
 *  56+N 16 GCM tag; bytes 0..55 are authenticated as AAD
 *
 * All integers are big-endian.  The body is a list of records
 * { u8 type; u32 length; bytes }, each type at most once.
 * The AES key is HKDF-SHA256(state key, info "vtpm-service state v1").
 * Magic, version, nonce, length, ciphertext and tag are the sealed-file
 * envelope of lib/envelope.h, shared with the key store.
 */
#ifndef VTPM_STATEFILE_H
#define VTPM_STATEFILE_H

#include <stddef.h>
#include <stdint.h>

#define STATEFILE_MAGIC "VTPMSTAT"
#define STATEFILE_VERSION 1
#define STATEFILE_HDR_LEN 56
#define STATEFILE_TAG_LEN 16
#define STATEFILE_MAX_BODY (4u << 20)
#define STATE_KEY_LEN 32

enum statefile_blob {
	SF_BLOB_PERMANENT = 1,
	SF_BLOB_VOLATILE = 2,
	SF_BLOB_SAVESTATE = 3,
	SF_BLOB_COUNT = 4, /* one past the last */
};

/*
 * Errors of this file's functions: their own domain, never a negative
 * errno.  The values lie below -4095 (the kernel's MAX_ERRNO), so no
 * -errno, no KS_ERR_* and no other domain's code can equal one, while a
 * test for "< 0" still reads them as failures.  Use the names, never the
 * numbers; statefile_is_err() tells one from an errno in a mixed int.
 */
#define SF_ERR_BASE (-5100)
enum statefile_err {
	SF_OK = 0,
	SF_ERR_TRUNCATED = SF_ERR_BASE - 1, /* shorter than its header says */
	SF_ERR_MAGIC = SF_ERR_BASE - 2,     /* not a vtpm-service state file */
	SF_ERR_VERSION = SF_ERR_BASE - 3,   /* format version we do not know */
	SF_ERR_AUTH = SF_ERR_BASE - 4,      /* wrong key or modified bytes */
	SF_ERR_UUID = SF_ERR_BASE - 5,      /* authentic, but another vTPM's */
	SF_ERR_STALE = SF_ERR_BASE - 6,     /* authentic, older than one seen */
	SF_ERR_FAMILY = SF_ERR_BASE - 7,    /* TPM 1.2 state for 2.0, or back */
	SF_ERR_FORMAT = SF_ERR_BASE - 8,    /* authentic but malformed body, or
					     * a length field over the limit */
	SF_ERR_NOMEM = SF_ERR_BASE - 9,
	SF_ERR_CRYPTO = SF_ERR_BASE - 10,
	SF_ERR_LAST = SF_ERR_CRYPTO, /* the lowest */
};

static inline int statefile_is_err(int rc)
{
	return rc <= SF_ERR_TRUNCATED && rc >= SF_ERR_LAST;
}

struct state_keys {
	uint8_t enc[32];  /* AES-256-GCM key of the state file */
	uint8_t mark[32]; /* HMAC key of the generation watermark */
};

struct statefile_meta {
	uint8_t family;     /* 1 or 2 */
	uint8_t uuid[16];
	uint64_t generation;
};

/* Blobs of one state; data[i] == NULL means absent.  Owned by the caller
 * on encode; allocated by decode (free with statefile_blobs_free). */
struct statefile_blobs {
	uint8_t *data[SF_BLOB_COUNT];
	uint32_t len[SF_BLOB_COUNT];
};

/* What decode must check.  check_uuid = 0 adopts the file's UUID. */
struct statefile_expect {
	int check_uuid;
	uint8_t uuid[16];
	uint8_t family;
	uint64_t min_generation;
};

/* A message for SF_OK or any SF_ERR_*; "unknown error" otherwise. */
const char *statefile_strerror(int err);

enum statefile_err state_keys_derive(const uint8_t master[STATE_KEY_LEN],
				     struct state_keys *out);
void state_keys_wipe(struct state_keys *k);

enum statefile_err statefile_encode(const struct state_keys *k,
				    const struct statefile_meta *meta,
				    const struct statefile_blobs *blobs,
				    uint8_t **out, size_t *outlen);

/* Encrypts an already laid out body under a fresh header (encode uses
 * it; tests use it to build authentic but malformed files). */
enum statefile_err statefile_seal(const struct state_keys *k,
				  const struct statefile_meta *meta,
				  const uint8_t *body, size_t bodylen,
				  uint8_t **out, size_t *outlen);

/* Reads only the plaintext header (no authentication): for messages. */
enum statefile_err statefile_peek(const uint8_t *buf, size_t len,
				  struct statefile_meta *meta);

enum statefile_err statefile_decode(const struct state_keys *k,
				    const uint8_t *buf, size_t len,
				    const struct statefile_expect *exp,
				    struct statefile_meta *meta,
				    struct statefile_blobs *out);

void statefile_blobs_free(struct statefile_blobs *b);

/*
 * Generation watermark: the highest generation this vTPM is known to have
 * reached, authenticated by HMAC under the state key.  64 bytes:
 * "VTPMGEN1", uuid[16], u64 generation, HMAC-SHA256 over the first 32.
 */
#define WATERMARK_LEN 64
void watermark_encode(const struct state_keys *k, const uint8_t uuid[16],
		      uint64_t generation, uint8_t out[WATERMARK_LEN]);
enum statefile_err watermark_decode(const struct state_keys *k,
				    const uint8_t *buf, size_t len,
				    const uint8_t uuid[16],
				    uint64_t *generation);

#endif
