/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The sealed-file envelope: the one shape of every encrypted file of this
 * project (the state file, the key store), as pure functions over byte
 * buffers.
 *
 *   0      8  magic
 *   8      2  format version
 *  10      .  the format's own header fields (fixed length, zero-filled
 *             by the writer where the format reserves them)
 *  H-16   12  AES-GCM nonce (random per write)
 *  H-4     4  ciphertext length N (at most the format's body limit)
 *  H       N  AES-256-GCM ciphertext of the body
 *  H+N    16  GCM tag; the H header bytes are the additional data
 *
 * H is the format's header length.  Integers are big-endian.  The AES key
 * is HKDF-SHA256(the format's input key, the format's info string).
 *
 * A format describes itself in a struct envelope_fmt, including the error
 * code of its own domain for each way an envelope can fail, so the
 * functions below return the caller's codes (0 on success).
 */
#ifndef VTPM_ENVELOPE_H
#define VTPM_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/aead.h"

#define ENVELOPE_MAGIC_LEN 8
#define ENVELOPE_PREFIX_LEN 10 /* magic and version */
#define ENVELOPE_SUFFIX_LEN 16 /* nonce and ciphertext length */
#define ENVELOPE_MIN_HDR (ENVELOPE_PREFIX_LEN + ENVELOPE_SUFFIX_LEN)
#define ENVELOPE_TAG_LEN AEAD_TAG_LEN
/* The GCM calls take int lengths. */
#define ENVELOPE_MAX_BODY_LIMIT 0x7fff0000u

/* The ways an envelope fails; the index of envelope_fmt.err. */
enum envelope_fail {
	ENV_TRUNCATED, /* shorter than the magic, header or length field */
	ENV_MAGIC,     /* another magic */
	ENV_VERSION,   /* another format version */
	ENV_FORMAT,    /* length field over the limit, or bytes after the tag */
	ENV_AUTH,      /* the tag does not verify: wrong key or modified */
	ENV_NOMEM,
	ENV_CRYPTO,
	ENV_FAIL_COUNT, /* one past the last */
};

/* A descriptor whose hdr_len or max_body is out of its bounds is refused
 * by seal and open with its err[ENV_CRYPTO] (a bug, not a bad file). */
struct envelope_fmt {
	const char *magic; /* ENVELOPE_MAGIC_LEN characters */
	uint16_t version;
	uint16_t hdr_len;	 /* H, at least ENVELOPE_MIN_HDR */
	uint32_t max_body;	 /* at most ENVELOPE_MAX_BODY_LIMIT */
	const char *kdf_info;	 /* HKDF info of the AES key */
	int err[ENV_FAIL_COUNT]; /* the format's code for each failure */
};

/* The AES key of a format from its input key; the caller wipes it. */
int envelope_key(const struct envelope_fmt *f, const uint8_t *ikm,
		 size_t ikmlen, uint8_t key[AEAD_KEY_LEN]);

/*
 * Seals body under key.  hdr is f->hdr_len bytes laid out as the file's
 * header: only the format's own fields (offsets 10 to H-16) are taken
 * from it; magic, version, a fresh nonce and the length are written
 * here.  *out (malloc'ed) gets H + bodylen + 16 bytes.
 */
int envelope_seal(const struct envelope_fmt *f, const uint8_t key[AEAD_KEY_LEN],
		  const uint8_t *hdr, const uint8_t *body, size_t bodylen,
		  uint8_t **out, size_t *outlen);

/*
 * Checks only the plaintext header (magic, length, version); no
 * authentication.  0 means buf holds f->hdr_len header bytes whose
 * fields can be read for messages.
 */
int envelope_peek(const struct envelope_fmt *f, const uint8_t *buf, size_t len);

/*
 * Checks the whole envelope and decrypts it: the header as envelope_peek,
 * the length field against the format's limit and the file's length
 * (exactly: bytes after the tag are refused), then the tag.  On success
 * the header fields are authentic and *body (malloc'ed, at least one
 * byte) holds *bodylen bytes of plaintext: free it with
 * envelope_body_free.  On failure *body is NULL.
 */
int envelope_open(const struct envelope_fmt *f, const uint8_t key[AEAD_KEY_LEN],
		  const uint8_t *buf, size_t len, uint8_t **body,
		  size_t *bodylen);

/* Wipes and frees a body of envelope_open (NULL is fine). */
void envelope_body_free(uint8_t *body, size_t bodylen);

#endif
