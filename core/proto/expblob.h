/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The blob of an offline migration (vtpmctl export / import;
 * docs/migration.md).  Integers big-endian.
 *
 *   0   8  magic "VTPMEXP1"
 *   8   2  format version (1)
 *  10   2  wrapped key length W (EXPBLOB_WRAPPED_LEN: RSA-2048)
 *  12  16  vTPM UUID
 *  28   8  generation of the state it carries
 *  36  34  TPM name of the destination's migration key
 *  70   W  a fresh AES-256 key, RSA-OAEP (SHA-256, label
 *          "vtpm-service export v1") to the destination's migration key
 *  70+W 12 AES-GCM nonce
 *  82+W 4  ciphertext length N (at most EXPBLOB_MAX_BODY)
 *  86+W N  AES-256-GCM ciphertext of the body
 *  86+W+N 16 GCM tag; bytes 0..86+W are authenticated as AAD
 *
 * Body:
 *   0   1  TPM family (1 = TPM 1.2, 2 = TPM 2.0)
 *   1   1  flags: EXPBLOB_F_NOSTATE (never started: no state),
 *          EXPBLOB_F_PLAINTEXT (the vTPM may hand out plaintext blobs)
 *   2   2  zero
 *   4  32  SHA-256 of the source manager's AK (where it came from)
 *  36   4  permanent state length P (0 exactly with NOSTATE)
 *  40   P  the permanent state (libtpms blob): what survives a power
 *          cycle; volatile state does not travel offline
 *
 * The blob's id (what the destination records to refuse a second import)
 * is the SHA-256 of its authenticated header, bytes 0..86+W: it holds the
 * wrapped key and the nonce, fresh for every export.
 */
#ifndef VTPM_PROTO_EXPBLOB_H
#define VTPM_PROTO_EXPBLOB_H

#include <stddef.h>
#include <stdint.h>

#include "proto/migkey.h"

#define EXPBLOB_MAGIC "VTPMEXP1"
#define EXPBLOB_VERSION 1
#define EXPBLOB_WRAPPED_LEN MIGKEY_MODULUS_LEN
#define EXPBLOB_HDR_LEN (86 + EXPBLOB_WRAPPED_LEN)
#define EXPBLOB_TAG_LEN 16
#define EXPBLOB_BODY_FIXED 40
#define EXPBLOB_MAX_STATE (4u << 20) /* the state file's body limit */
/* A body with EXPBLOB_F_VOLATILE: the permanent state, then u32 V, the
 * volatile state (V bytes, at most EXPBLOB_MAX_STATE), u32 R and the
 * resume tag (R bytes, at most EXPBLOB_MAX_TAG): online migration. */
#define EXPBLOB_MAX_TAG 64
#define EXPBLOB_MAX_BODY                                                       \
	(EXPBLOB_BODY_FIXED + 2 * EXPBLOB_MAX_STATE + 8 + EXPBLOB_MAX_TAG)
#define EXPBLOB_MAX_LEN (EXPBLOB_HDR_LEN + EXPBLOB_MAX_BODY + EXPBLOB_TAG_LEN)
#define EXPBLOB_KEY_LEN 32
#define EXPBLOB_ID_LEN 32

#define EXPBLOB_F_NOSTATE 0x01u
#define EXPBLOB_F_PLAINTEXT 0x02u
#define EXPBLOB_F_VOLATILE 0x04u /* the running TPM's volatile state */
#define EXPBLOB_F_KNOWN                                                        \
	(EXPBLOB_F_NOSTATE | EXPBLOB_F_PLAINTEXT | EXPBLOB_F_VOLATILE)

/* What the plaintext header says (authenticated only once opened). */
struct expblob_hdr {
	uint8_t uuid[16];
	uint64_t generation;
	uint8_t dest_name[MIGKEY_NAME_LEN];
	uint8_t wrapped[EXPBLOB_WRAPPED_LEN];
	uint8_t id[EXPBLOB_ID_LEN];
};

struct expblob_body {
	uint8_t family;
	uint8_t flags;
	uint8_t src_ak_sha256[32];
	uint8_t *state;        /* malloc'd by open; the caller's on seal */
	uint32_t state_len;
	/* EXPBLOB_F_VOLATILE: never without a permanent state */
	uint8_t *vol;          /* malloc'd by open; the caller's on seal */
	uint32_t vol_len;      /* > 0 with the flag, 0 without */
	uint8_t tag[EXPBLOB_MAX_TAG];
	uint32_t tag_len;
};

/* Seals: h's uuid, generation, dest_name and wrapped (the key wrapped by
 * migkey_wrap) with key, a fresh nonce.  *out malloc'd.  0, -EINVAL (a
 * body the format cannot hold), -ENOMEM, -EIO. */
int expblob_seal(const struct expblob_hdr *h,
		 const uint8_t key[EXPBLOB_KEY_LEN],
		 const struct expblob_body *b, uint8_t **out, size_t *outlen);

/* Checks the framing (magic, version, lengths exactly the buffer's) and
 * fills h, id included.  Nothing is authentic yet.  0 or -EINVAL
 * (err says what). */
int expblob_parse(const uint8_t *buf, size_t len, struct expblob_hdr *h,
		  char *err, size_t errlen);

/* Authenticates and decrypts a parsed blob with the unwrapped key, then
 * parses the body strictly.  0, -EBADMSG (altered, or another key),
 * -EINVAL (authentic but malformed), -ENOMEM, -EIO.  expblob_body_free
 * wipes the state. */
int expblob_open(const uint8_t *buf, size_t len,
		 const uint8_t key[EXPBLOB_KEY_LEN], struct expblob_body *b,
		 char *err, size_t errlen);
void expblob_body_free(struct expblob_body *b);

#endif
