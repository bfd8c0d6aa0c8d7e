/* SPDX-License-Identifier: BSD-3-Clause */
#include "proto/statefile.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "lib/aead.h"
#include "lib/bytes.h"
#include "lib/envelope.h"

/* The state file's own header fields, between the envelope's version and
 * its nonce (statefile.h has the whole layout). */
#define FAMILY_OFF 10
#define RESERVED8_OFF 11
#define RESERVED32_OFF 12
#define UUID_OFF 16
#define GEN_OFF 32

_Static_assert(STATEFILE_TAG_LEN == ENVELOPE_TAG_LEN, "one GCM tag");
_Static_assert(GEN_OFF + 8 == STATEFILE_HDR_LEN - ENVELOPE_SUFFIX_LEN,
	       "the nonce follows the generation");

static const struct envelope_fmt sf_fmt = {
	.magic = STATEFILE_MAGIC,
	.version = STATEFILE_VERSION,
	.hdr_len = STATEFILE_HDR_LEN,
	.max_body = STATEFILE_MAX_BODY,
	.kdf_info = "vtpm-service state v1",
	.err = {
		[ENV_TRUNCATED] = SF_ERR_TRUNCATED,
		[ENV_MAGIC] = SF_ERR_MAGIC,
		[ENV_VERSION] = SF_ERR_VERSION,
		[ENV_FORMAT] = SF_ERR_FORMAT,
		[ENV_AUTH] = SF_ERR_AUTH,
		[ENV_NOMEM] = SF_ERR_NOMEM,
		[ENV_CRYPTO] = SF_ERR_CRYPTO,
	},
};

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

enum statefile_err state_keys_derive(const uint8_t master[STATE_KEY_LEN],
				     struct state_keys *out)
{
	if (envelope_key(&sf_fmt, master, STATE_KEY_LEN, out->enc) ||
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

enum statefile_err statefile_seal(const struct state_keys *k,
				  const struct statefile_meta *meta,
				  const uint8_t *body, size_t bodylen,
				  uint8_t **out, size_t *outlen)
{
	uint8_t hdr[STATEFILE_HDR_LEN] = { 0 };

	hdr[FAMILY_OFF] = meta->family;
	memcpy(hdr + UUID_OFF, meta->uuid, 16);
	be64_put(hdr + GEN_OFF, meta->generation);
	return envelope_seal(&sf_fmt, k->enc, hdr, body, bodylen, out, outlen);
}

enum statefile_err statefile_encode(const struct state_keys *k,
				    const struct statefile_meta *meta,
				    const struct statefile_blobs *blobs,
				    uint8_t **out, size_t *outlen)
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

enum statefile_err statefile_peek(const uint8_t *buf, size_t len,
				  struct statefile_meta *meta)
{
	int rc = envelope_peek(&sf_fmt, buf, len);

	if (rc)
		return rc;
	meta->family = buf[FAMILY_OFF];
	memcpy(meta->uuid, buf + UUID_OFF, 16);
	meta->generation = be64_get(buf + GEN_OFF);
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

enum statefile_err statefile_decode(const struct state_keys *k,
				    const uint8_t *buf, size_t len,
				    const struct statefile_expect *exp,
				    struct statefile_meta *meta,
				    struct statefile_blobs *out)
{
	uint8_t *body;
	size_t bodylen;
	int rc;

	memset(out, 0, sizeof(*out));
	/* meta is filled whenever the header is readable, so that a
	 * refusal can name the file's generation. */
	rc = statefile_peek(buf, len, meta);
	if (rc)
		return rc;
	rc = envelope_open(&sf_fmt, k->enc, buf, len, &body, &bodylen);
	if (rc)
		return rc;
	/* Reserved bytes are authenticated, so nonzero means a newer
	 * writer we do not understand. */
	if (buf[RESERVED8_OFF] || be32_get(buf + RESERVED32_OFF))
		rc = SF_ERR_VERSION;
	else if (exp->check_uuid && memcmp(exp->uuid, meta->uuid, 16) != 0)
		rc = SF_ERR_UUID;
	else if (meta->family != exp->family)
		rc = SF_ERR_FAMILY;
	else if (meta->generation < exp->min_generation)
		rc = SF_ERR_STALE;
	else
		rc = parse_body(body, bodylen, out);
	envelope_body_free(body, bodylen);
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

enum statefile_err watermark_decode(const struct state_keys *k,
				    const uint8_t *buf, size_t len,
				    const uint8_t uuid[16],
				    uint64_t *generation)
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

/* ---- the slot file ---- */

#define SLOT_VERSION_OFF 8
#define SLOT_COUNT_OFF 10
#define SLOT_SIZE_OFF 12
#define SLOT_RESERVED_OFF 16
#define SLOT_MAC_OFF (SLOTFILE_HDR_LEN - 32)
/* Where the sealed state's ciphertext length lies (envelope.h). */
#define SEALED_LEN_OFF (STATEFILE_HDR_LEN - 4)
#define SEALED_OVERHEAD (STATEFILE_HDR_LEN + STATEFILE_TAG_LEN)

_Static_assert(SLOTFILE_MAX_SLOT % SLOTFILE_ALIGN == 0, "aligned slots");
_Static_assert(SLOTFILE_MIN_SLOT % SLOTFILE_ALIGN == 0, "aligned slots");

int slotfile_is_slotfile(const uint8_t *buf, size_t len)
{
	return len >= ENVELOPE_MAGIC_LEN &&
	       memcmp(buf, SLOTFILE_MAGIC, ENVELOPE_MAGIC_LEN) == 0;
}

uint32_t slotfile_slot_size_for(size_t len)
{
	uint64_t want = (uint64_t)len * 2;

	if (len > SLOTFILE_MAX_SLOT)
		return 0;
	if (want < SLOTFILE_MIN_SLOT)
		want = SLOTFILE_MIN_SLOT;
	want = (want + SLOTFILE_ALIGN - 1) / SLOTFILE_ALIGN * SLOTFILE_ALIGN;
	if (want > SLOTFILE_MAX_SLOT)
		want = SLOTFILE_MAX_SLOT;
	return (uint32_t)want;
}

/* HMAC-SHA256 under the watermark key of the header before the MAC; the
 * magic keeps it apart from the watermark's message ("VTPMGEN1"). */
static void slot_header_mac(const struct state_keys *k, const uint8_t *hdr,
			    uint8_t mac[32])
{
	unsigned int maclen = 32;

	HMAC(EVP_sha256(), k->mark, sizeof(k->mark), hdr, SLOT_MAC_OFF, mac,
	     &maclen);
}

void slotfile_header_seal(const struct state_keys *k,
			  uint8_t hdr[SLOTFILE_HDR_LEN])
{
	slot_header_mac(k, hdr, hdr + SLOT_MAC_OFF);
}

static int all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static void scan_slot(const struct state_keys *k, const uint8_t *p,
		      uint32_t slot_size, const struct statefile_expect *exp,
		      struct slotfile_slot *s)
{
	struct statefile_expect any = *exp;
	struct statefile_blobs blobs;
	struct statefile_meta meta;
	uint32_t n;
	int rc;

	any.min_generation = 0;
	if (all_zero(p, STATEFILE_HDR_LEN)) {
		s->kind = SLOT_EMPTY;
		return;
	}
	s->kind = SLOT_BAD;
	/* The sealed header lies in the slot's first sector: a crash leaves
	 * it whole, old or new.  So a header that does not read is no
	 * crash of ours. */
	rc = statefile_peek(p, slot_size, &meta);
	if (rc) {
		s->verdict = rc;
		return;
	}
	s->generation = meta.generation;
	n = be32_get(p + SEALED_LEN_OFF);
	if (n > slot_size - SEALED_OVERHEAD || n > STATEFILE_MAX_BODY) {
		s->verdict = SF_ERR_FORMAT;
		return;
	}
	s->sealed_len = SEALED_OVERHEAD + n;
	SHA256(p, s->sealed_len, s->hash);
	rc = statefile_decode(k, p, s->sealed_len, &any, &meta, &blobs);
	if (rc == SF_ERR_AUTH) {
		s->kind = SLOT_TORN;
		s->verdict = rc;
		return;
	}
	if (rc == SF_OK && !blobs.data[SF_BLOB_PERMANENT])
		rc = SF_ERR_FORMAT;
	statefile_blobs_free(&blobs);
	if (rc) {
		s->verdict = rc;
		return;
	}
	s->kind = SLOT_VALID;
	s->verdict = SF_OK;
	s->generation = meta.generation;
}

enum statefile_err slotfile_scan(const struct state_keys *k,
				 const uint8_t *buf, size_t len,
				 const struct statefile_expect *exp,
				 struct slotfile_view *v)
{
	uint8_t mac[32];
	uint64_t want;

	memset(v, 0, sizeof(*v));
	if (len < ENVELOPE_MAGIC_LEN)
		return SF_ERR_TRUNCATED;
	if (!slotfile_is_slotfile(buf, len))
		return SF_ERR_MAGIC;
	if (len < SLOTFILE_HDR_LEN)
		return SF_ERR_TRUNCATED;
	if (be16_get(buf + SLOT_VERSION_OFF) != SLOTFILE_VERSION)
		return SF_ERR_VERSION;
	slot_header_mac(k, buf, mac);
	if (CRYPTO_memcmp(mac, buf + SLOT_MAC_OFF, 32) != 0)
		return SF_ERR_AUTH;
	v->nslots = be16_get(buf + SLOT_COUNT_OFF);
	v->slot_size = be32_get(buf + SLOT_SIZE_OFF);
	if (v->nslots != SLOTFILE_NSLOTS || v->slot_size < SLOTFILE_MIN_SLOT ||
	    v->slot_size > SLOTFILE_MAX_SLOT ||
	    v->slot_size % SLOTFILE_ALIGN != 0 ||
	    !all_zero(buf + SLOT_RESERVED_OFF, SLOT_MAC_OFF - SLOT_RESERVED_OFF))
		return SF_ERR_FORMAT;
	want = SLOTFILE_HDR_LEN + (uint64_t)v->nslots * v->slot_size;
	if (len < want)
		return SF_ERR_TRUNCATED;
	if (len > want)
		return SF_ERR_FORMAT;
	for (uint32_t i = 0; i < v->nslots; i++) {
		v->slot[i].offset = SLOTFILE_HDR_LEN + (uint64_t)i * v->slot_size;
		scan_slot(k, buf + v->slot[i].offset, v->slot_size, exp,
			  &v->slot[i]);
	}
	return SF_OK;
}

enum statefile_err slotfile_choose(const struct slotfile_view *v,
				   int *winner, int *culprit)
{
	int w = -1, torn = -1;

	*winner = -1;
	*culprit = -1;
	for (uint32_t i = 0; i < v->nslots; i++) {
		const struct slotfile_slot *s = &v->slot[i];

		if (s->kind == SLOT_BAD) {
			*culprit = (int)i;
			return s->verdict;
		}
		if (s->kind == SLOT_TORN && torn < 0)
			torn = (int)i;
		if (s->kind != SLOT_VALID)
			continue;
		if (w >= 0 && v->slot[w].generation == s->generation) {
			*culprit = (int)i;
			return SF_ERR_FORMAT;
		}
		if (w < 0 || s->generation > v->slot[w].generation)
			w = (int)i;
	}
	if (w < 0) {
		/* Nothing authentic: every slot torn (or a wrong key), or
		 * never a state at all.  Never a new TPM. */
		*culprit = torn;
		return torn >= 0 ? SF_ERR_AUTH : SF_ERR_FORMAT;
	}
	for (uint32_t i = 0; i < v->nslots; i++) {
		const struct slotfile_slot *s = &v->slot[i];
		uint64_t g = v->slot[w].generation;

		if (s->kind == SLOT_TORN && s->generation != g + 1 &&
		    (g == 0 || s->generation != g - 1)) {
			*culprit = (int)i;
			return SF_ERR_AUTH;
		}
	}
	*winner = w;
	return SF_OK;
}

int slotfile_find_hash(const struct slotfile_view *v, const uint8_t hash[32])
{
	for (uint32_t i = 0; i < v->nslots; i++)
		if (v->slot[i].kind == SLOT_VALID &&
		    CRYPTO_memcmp(v->slot[i].hash, hash, 32) == 0)
			return (int)i;
	return -1;
}

enum statefile_err slotfile_build(const struct state_keys *k,
				  uint32_t slot_size,
				  const uint8_t *const sealed[SLOTFILE_NSLOTS],
				  const size_t len[SLOTFILE_NSLOTS],
				  uint8_t **out, size_t *outlen)
{
	size_t total = SLOTFILE_HDR_LEN + (size_t)SLOTFILE_NSLOTS * slot_size;
	uint8_t *f;

	*out = NULL;
	if (slot_size < SLOTFILE_MIN_SLOT || slot_size > SLOTFILE_MAX_SLOT ||
	    slot_size % SLOTFILE_ALIGN)
		return SF_ERR_FORMAT;
	for (int i = 0; i < SLOTFILE_NSLOTS; i++)
		if (len[i] > slot_size)
			return SF_ERR_FORMAT;
	f = calloc(1, total);
	if (!f)
		return SF_ERR_NOMEM;
	memcpy(f, SLOTFILE_MAGIC, ENVELOPE_MAGIC_LEN);
	be16_put(f + SLOT_VERSION_OFF, SLOTFILE_VERSION);
	be16_put(f + SLOT_COUNT_OFF, SLOTFILE_NSLOTS);
	be32_put(f + SLOT_SIZE_OFF, slot_size);
	slot_header_mac(k, f, f + SLOT_MAC_OFF);
	for (int i = 0; i < SLOTFILE_NSLOTS; i++)
		if (len[i])
			memcpy(f + SLOTFILE_HDR_LEN + (size_t)i * slot_size,
			       sealed[i], len[i]);
	*out = f;
	*outlen = total;
	return SF_OK;
}
