/* SPDX-License-Identifier: BSD-3-Clause */
#include "proto/statefile.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "lib/aead.h"
#include "lib/bytes.h"
#include <errno.h>

#define NONCE_OFF 40
#define NONCE_LEN 12
#define CTLEN_OFF 52

const char *statefile_strerror(int err)
{
	switch (err) {
	case SF_OK:
		return "ok";
	case SF_ERR_TRUNCATED:
		return "truncated (shorter than its header says)";
	case SF_ERR_MAGIC:
		return "not a vtpm-service state file (bad magic)";
	case SF_ERR_VERSION:
		return "unknown state file format version";
	case SF_ERR_AUTH:
		return "authentication failed (wrong key, or the file was modified)";
	case SF_ERR_UUID:
		return "the file belongs to another vTPM (UUID mismatch)";
	case SF_ERR_STALE:
		return "older generation than one already seen (rollback)";
	case SF_ERR_FAMILY:
		return "state of another TPM version (1.2 vs 2.0)";
	case SF_ERR_FORMAT:
		return "malformed contents";
	case SF_ERR_NOMEM:
		return "out of memory";
	case SF_ERR_CRYPTO:
		return "crypto library failure";
	}
	return "unknown error";
}

int state_keys_derive(const uint8_t master[STATE_KEY_LEN],
		      struct state_keys *out)
{
	if (aead_hkdf_sha256(master, STATE_KEY_LEN, "vtpm-service state v1",
			     out->enc, sizeof(out->enc)) ||
	    aead_hkdf_sha256(master, STATE_KEY_LEN, "vtpm-service watermark v1",
			     out->mark, sizeof(out->mark))) {
		state_keys_wipe(out);
		return SF_ERR_CRYPTO;
	}
	return 0;
}

void state_keys_wipe(struct state_keys *k)
{
	OPENSSL_cleanse(k, sizeof(*k));
}

void statefile_blobs_free(struct statefile_blobs *b)
{
	for (int i = 0; i < SF_BLOB_COUNT; i++) {
		if (b->data[i]) {
			OPENSSL_cleanse(b->data[i], b->len[i]);
			free(b->data[i]);
		}
		b->data[i] = NULL;
		b->len[i] = 0;
	}
}

static int gcm(int enc, const uint8_t key[32], const uint8_t *nonce,
	       const uint8_t *aad, size_t aadlen, const uint8_t *in,
	       size_t inlen, uint8_t *out, uint8_t *tag)
{
	int rc = aead_gcm(enc, key, nonce, aad, aadlen, in, inlen, out, tag);

	if (rc == -EBADMSG)
		return SF_ERR_AUTH;
	if (rc == -ENOMEM)
		return SF_ERR_NOMEM;
	return rc ? SF_ERR_CRYPTO : 0;
}

int statefile_seal(const struct state_keys *k, const struct statefile_meta *meta,
		   const uint8_t *body, size_t bodylen, uint8_t **out,
		   size_t *outlen)
{
	uint8_t *file;
	int rc;

	if (bodylen > STATEFILE_MAX_BODY)
		return SF_ERR_FORMAT;
	file = malloc(STATEFILE_HDR_LEN + bodylen + STATEFILE_TAG_LEN);
	if (!file)
		return SF_ERR_NOMEM;
	memset(file, 0, STATEFILE_HDR_LEN);
	memcpy(file, STATEFILE_MAGIC, 8);
	be16_put(file + 8, STATEFILE_VERSION);
	file[10] = meta->family;
	memcpy(file + 16, meta->uuid, 16);
	be64_put(file + 32, meta->generation);
	if (RAND_bytes(file + NONCE_OFF, NONCE_LEN) != 1) {
		free(file);
		return SF_ERR_CRYPTO;
	}
	be32_put(file + CTLEN_OFF, (uint32_t)bodylen);
	rc = gcm(1, k->enc, file + NONCE_OFF, file, STATEFILE_HDR_LEN, body,
		 bodylen, file + STATEFILE_HDR_LEN,
		 file + STATEFILE_HDR_LEN + bodylen);
	if (rc) {
		free(file);
		return rc;
	}
	*out = file;
	*outlen = STATEFILE_HDR_LEN + bodylen + STATEFILE_TAG_LEN;
	return 0;
}

int statefile_encode(const struct state_keys *k,
		     const struct statefile_meta *meta,
		     const struct statefile_blobs *blobs, uint8_t **out,
		     size_t *outlen)
{
	size_t bodylen = 0, off = 0;
	uint8_t *body;
	int rc;

	for (int i = 1; i < SF_BLOB_COUNT; i++)
		if (blobs->data[i])
			bodylen += 5 + (size_t)blobs->len[i];
	if (bodylen > STATEFILE_MAX_BODY)
		return SF_ERR_FORMAT;
	body = malloc(bodylen ? bodylen : 1);
	if (!body)
		return SF_ERR_NOMEM;
	for (int i = 1; i < SF_BLOB_COUNT; i++) {
		if (!blobs->data[i])
			continue;
		body[off] = (uint8_t)i;
		be32_put(body + off + 1, blobs->len[i]);
		memcpy(body + off + 5, blobs->data[i], blobs->len[i]);
		off += 5 + blobs->len[i];
	}
	rc = statefile_seal(k, meta, body, bodylen, out, outlen);
	OPENSSL_cleanse(body, bodylen);
	free(body);
	return rc;
}

int statefile_peek(const uint8_t *buf, size_t len, struct statefile_meta *meta)
{
	if (len < 8 || memcmp(buf, STATEFILE_MAGIC, 8) != 0)
		return len < 8 ? SF_ERR_TRUNCATED : SF_ERR_MAGIC;
	if (len < STATEFILE_HDR_LEN)
		return SF_ERR_TRUNCATED;
	if (be16_get(buf + 8) != STATEFILE_VERSION)
		return SF_ERR_VERSION;
	meta->family = buf[10];
	memcpy(meta->uuid, buf + 16, 16);
	meta->generation = be64_get(buf + 32);
	return 0;
}

static int parse_body(const uint8_t *body, size_t len,
		      struct statefile_blobs *out)
{
	size_t off = 0;

	while (off < len) {
		uint8_t type;
		uint32_t blen;

		if (len - off < 5)
			return SF_ERR_FORMAT;
		type = body[off];
		blen = be32_get(body + off + 1);
		off += 5;
		if (type == 0 || type >= SF_BLOB_COUNT || out->data[type] ||
		    blen > len - off)
			return SF_ERR_FORMAT;
		out->data[type] = malloc(blen ? blen : 1);
		if (!out->data[type])
			return SF_ERR_NOMEM;
		memcpy(out->data[type], body + off, blen);
		out->len[type] = blen;
		off += blen;
	}
	return 0;
}

int statefile_decode(const struct state_keys *k, const uint8_t *buf,
		     size_t len, const struct statefile_expect *exp,
		     struct statefile_meta *meta, struct statefile_blobs *out)
{
	uint32_t ctlen;
	uint8_t *body;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = statefile_peek(buf, len, meta);
	if (rc)
		return rc;
	ctlen = be32_get(buf + CTLEN_OFF);
	if (ctlen > STATEFILE_MAX_BODY)
		return SF_ERR_FORMAT;
	if (len < STATEFILE_HDR_LEN + (size_t)ctlen + STATEFILE_TAG_LEN)
		return SF_ERR_TRUNCATED;
	if (len > STATEFILE_HDR_LEN + (size_t)ctlen + STATEFILE_TAG_LEN)
		return SF_ERR_FORMAT;
	body = malloc(ctlen ? ctlen : 1);
	if (!body)
		return SF_ERR_NOMEM;
	rc = gcm(0, k->enc, buf + NONCE_OFF, buf, STATEFILE_HDR_LEN,
		 buf + STATEFILE_HDR_LEN, ctlen, body,
		 (uint8_t *)(buf + STATEFILE_HDR_LEN + ctlen));
	if (rc)
		goto out;
	/* Reserved bytes are authenticated, so nonzero means a newer
	 * writer we do not understand. */
	if (buf[11] || be32_get(buf + 12)) {
		rc = SF_ERR_VERSION;
		goto out;
	}
	if (exp->check_uuid && memcmp(exp->uuid, meta->uuid, 16) != 0) {
		rc = SF_ERR_UUID;
		goto out;
	}
	if (meta->family != exp->family) {
		rc = SF_ERR_FAMILY;
		goto out;
	}
	if (meta->generation < exp->min_generation) {
		rc = SF_ERR_STALE;
		goto out;
	}
	rc = parse_body(body, ctlen, out);
out:
	OPENSSL_cleanse(body, ctlen);
	free(body);
	if (rc)
		statefile_blobs_free(out);
	return rc;
}

static void watermark_mac(const struct state_keys *k, const uint8_t *msg,
			  uint8_t mac[32])
{
	unsigned int maclen = 32;

	HMAC(EVP_sha256(), k->mark, sizeof(k->mark), msg, 32, mac, &maclen);
}

void watermark_encode(const struct state_keys *k, const uint8_t uuid[16],
		      uint64_t generation, uint8_t out[WATERMARK_LEN])
{
	memcpy(out, "VTPMGEN1", 8);
	memcpy(out + 8, uuid, 16);
	be64_put(out + 24, generation);
	watermark_mac(k, out, out + 32);
}

int watermark_decode(const struct state_keys *k, const uint8_t *buf,
		     size_t len, const uint8_t uuid[16], uint64_t *generation)
{
	uint8_t mac[32];

	if (len != WATERMARK_LEN)
		return SF_ERR_TRUNCATED;
	if (memcmp(buf, "VTPMGEN1", 8) != 0)
		return SF_ERR_MAGIC;
	watermark_mac(k, buf, mac);
	if (CRYPTO_memcmp(mac, buf + 32, 32) != 0)
		return SF_ERR_AUTH;
	if (memcmp(buf + 8, uuid, 16) != 0)
		return SF_ERR_UUID;
	*generation = be64_get(buf + 24);
	return 0;
}
