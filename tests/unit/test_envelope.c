/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The sealed-file envelope (lib/envelope.h) against hostile input, and
 * proof that the state file and the key store kept their on-disk format
 * when both moved onto it (issue 11):
 *
 * - old_state_file and old_key_store below were written by the code
 *   before the envelope existed (commit 0292606, statefile_encode and
 *   keystore_encode, linked from that build's libvtpm_proto.a by a
 *   throw-away program).  Their inputs are the constants of
 *   fixture_inputs(); the files must still load, with every field.
 * - Files written now are opened by a decoder written from
 *   docs/state-format.md and docs/manager-protocol.md with OpenSSL alone
 *   (open_by_recipe), and their headers are compared byte for byte with
 *   the old files' (only the random nonce differs).
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "lib/bytes.h"
#include "lib/envelope.h"
#include "proto/keystore.h"
#include "proto/statefile.h"

/* ---- files written by the pre-envelope code ---- */

/* Inputs: state key bytes 0xa0..0xbf; TPM 2.0; UUID 11 22 .. ff 11;
 * generation 7; permanent "permanent-state-fixture", volatile
 * "volatile", no save-state. */
static const uint8_t old_state_file[113] = {
    0x56, 0x54, 0x50, 0x4d, 0x53, 0x54, 0x41, 0x54, 0x00, 0x01, 0x02, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
    0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x11, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x07, 0x9f, 0xbd, 0x89, 0x93, 0x3e, 0xab, 0x1f, 0xe6,
    0x13, 0x93, 0x8b, 0x64, 0x00, 0x00, 0x00, 0x29, 0x99, 0x84, 0xe6, 0x81,
    0xfe, 0xd7, 0x98, 0x25, 0xb4, 0x84, 0x4e, 0x4a, 0xf9, 0x49, 0x8d, 0x65,
    0x79, 0x20, 0x23, 0xad, 0x69, 0xb6, 0x79, 0x22, 0x08, 0x79, 0xa1, 0x66,
    0xc8, 0xa0, 0x34, 0xfe, 0x6f, 0x62, 0x2e, 0xc6, 0xab, 0xbd, 0x4a, 0x37,
    0xe9, 0xed, 0xad, 0xcb, 0x1d, 0x1e, 0x9a, 0x08, 0x03, 0x47, 0x0a, 0xaf,
    0xff, 0x42, 0x14, 0xf6, 0xf2,
};
/* Inputs: root key bytes 0x30..0x4f; store generation 42, NV counter 41;
 * groups {0, 1}, next group id 2; two vTPMs: UUID 01..10 in group 1, no
 * flags, TPM 2.0, generation 5, hash 0x40.., key 0x80..; UUID f0..ff in
 * group 0, NOSTATE, TPM 1.2, generation 0, hash 0, key 0xc0.. */
static const uint8_t old_key_store[274] = {
    0x56, 0x54, 0x50, 0x4d, 0x4b, 0x45, 0x59, 0x53, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x29, 0xa5, 0x3d, 0x08, 0x9a, 0xb4, 0xa9, 0x07, 0x25,
    0x82, 0x26, 0x35, 0x12, 0x00, 0x00, 0x00, 0xd6, 0xc9, 0x0d, 0xcd, 0xa1,
    0x66, 0x75, 0x39, 0x4e, 0x32, 0xc8, 0x14, 0xfe, 0x60, 0x2f, 0x1e, 0x23,
    0x83, 0x4a, 0xaa, 0x99, 0x5e, 0x6b, 0xbf, 0xbb, 0xfa, 0x9d, 0xe2, 0xc1,
    0x77, 0x0b, 0x03, 0xb6, 0xa0, 0x15, 0x7d, 0x91, 0x7a, 0x44, 0xaf, 0x4c,
    0x44, 0x40, 0x94, 0xe2, 0x44, 0x72, 0x7b, 0x81, 0x5c, 0x20, 0xfc, 0x9a,
    0xb7, 0x72, 0xcc, 0x58, 0x8f, 0x0b, 0x52, 0x83, 0xa3, 0xb7, 0x41, 0x9d,
    0xdc, 0x80, 0x2c, 0xe4, 0x21, 0xd2, 0x03, 0x83, 0xd3, 0x13, 0x12, 0x30,
    0xb9, 0x0c, 0x74, 0x5b, 0xbf, 0x7f, 0x6c, 0x73, 0xa6, 0x09, 0x9f, 0x13,
    0xae, 0xab, 0x78, 0x0d, 0x07, 0x8e, 0x86, 0x33, 0xce, 0xe8, 0x6a, 0x21,
    0xbd, 0x2a, 0xc6, 0x22, 0xfa, 0x41, 0xcf, 0x40, 0x41, 0x07, 0x8e, 0xd8,
    0x82, 0x97, 0x97, 0x7b, 0xb1, 0x52, 0x26, 0x36, 0x61, 0xbe, 0x51, 0xd2,
    0x82, 0xa7, 0x8c, 0x68, 0xb7, 0xc9, 0xc2, 0x30, 0xe3, 0x0b, 0x62, 0xc3,
    0x81, 0x77, 0x70, 0x17, 0xf2, 0xb5, 0xcc, 0x28, 0x8a, 0x51, 0xbb, 0xc1,
    0xbf, 0x92, 0x54, 0xd0, 0xe5, 0xd8, 0x6f, 0x21, 0x5a, 0xae, 0x67, 0xe5,
    0xac, 0xaf, 0xe9, 0xc3, 0xb9, 0x8d, 0x7c, 0xb0, 0x82, 0xe5, 0x32, 0xb3,
    0xc4, 0x86, 0x24, 0x40, 0x53, 0x5f, 0x12, 0x76, 0xbb, 0x4f, 0x4e, 0x7c,
    0x8b, 0x77, 0xc6, 0xa7, 0x55, 0x6d, 0xb0, 0x12, 0xe4, 0xc1, 0xc6, 0x3c,
    0x58, 0xc6, 0xb5, 0x1c, 0x24, 0x12, 0xbe, 0x13, 0xe6, 0x27, 0x63, 0xfa,
    0x86, 0x25, 0x44, 0x75, 0x39, 0x61, 0xa3, 0xbc, 0xac, 0x25, 0x7c, 0xa0,
    0x7c, 0x33, 0x85, 0xa0, 0x1d, 0x34, 0xbf, 0xd4, 0x32, 0x99,
};
static void fixture_inputs(uint8_t master[32], uint8_t root[32],
			   uint8_t uuid[16])
{
	for (int i = 0; i < 32; i++) {
		master[i] = (uint8_t)(0xa0 + i);
		root[i] = (uint8_t)(0x30 + i);
	}
	for (int i = 0; i < 16; i++)
		uuid[i] = (uint8_t)(0x11 * (i % 15 + 1));
}

/* ---- the formats by their documents, with OpenSSL alone ---- */

static void hkdf_by_recipe(const uint8_t ikm[32], const char *info,
			   uint8_t out[32])
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
	OSSL_PARAM p[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256",
					     0),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm,
					      32),
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
					      strlen(info)),
	    OSSL_PARAM_construct_end(),
	};

	assert_int_equal(EVP_KDF_derive(ctx, out, 32, p), 1);
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
}

/* Decrypts a file of header length hdr_len: the nonce is the 12 bytes
 * before the last 4 of the header, those 4 the length N, the header the
 * AAD, the tag the last 16 bytes.  Returns N, or -1 if it does not open. */
static long open_by_recipe(const uint8_t ikm[32], const char *info,
			   size_t hdr_len, const uint8_t *file, size_t len,
			   uint8_t *body)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	uint8_t key[32];
	uint32_t n = be32_get(file + hdr_len - 4);
	int outl, ok;

	assert_int_equal(len, hdr_len + n + 16);
	hkdf_by_recipe(ikm, info, key);
	ok = EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
	     EVP_DecryptInit_ex(c, NULL, NULL, key, file + hdr_len - 16) == 1 &&
	     EVP_DecryptUpdate(c, NULL, &outl, file, (int)hdr_len) == 1 &&
	     EVP_DecryptUpdate(c, body, &outl, file + hdr_len, (int)n) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16,
				 (void *)(file + hdr_len + n)) == 1 &&
	     EVP_DecryptFinal_ex(c, body + n, &outl) == 1;
	EVP_CIPHER_CTX_free(c);
	return ok ? (long)n : -1;
}

/* ---- the old files still load ---- */

static void old_state_file_still_loads(void **state)
{
	uint8_t master[32], root[32], uuid[16];
	struct statefile_expect exp = {
	    .check_uuid = 1, .family = 2, .min_generation = 7};
	struct statefile_meta meta;
	struct statefile_blobs b;
	struct state_keys k;

	(void)state;
	fixture_inputs(master, root, uuid);
	memcpy(exp.uuid, uuid, 16);
	assert_int_equal(state_keys_derive(master, &k), 0);
	assert_int_equal(statefile_decode(&k, old_state_file,
					  sizeof(old_state_file), &exp, &meta,
					  &b),
			 0);
	assert_int_equal(meta.family, 2);
	assert_int_equal(meta.generation, 7);
	assert_memory_equal(meta.uuid, uuid, 16);
	assert_int_equal(b.len[SF_BLOB_PERMANENT], 23);
	assert_memory_equal(b.data[SF_BLOB_PERMANENT],
			    "permanent-state-fixture", 23);
	assert_int_equal(b.len[SF_BLOB_VOLATILE], 8);
	assert_memory_equal(b.data[SF_BLOB_VOLATILE], "volatile", 8);
	assert_null(b.data[SF_BLOB_SAVESTATE]);
	statefile_blobs_free(&b);
	state_keys_wipe(&k);
}

static void old_key_store_still_loads(void **state)
{
	uint8_t master[32], root[32], uuid[16];
	struct keystore_meta meta;
	struct keystore ks;

	(void)state;
	fixture_inputs(master, root, uuid);
	assert_int_equal(keystore_decode(old_key_store, sizeof(old_key_store),
					 root, &ks, &meta),
			 0);
	assert_int_equal(meta.generation, 42);
	assert_int_equal(meta.nv_counter, 41);
	assert_int_equal(ks.next_group_id, 2);
	assert_int_equal(ks.ngroups, 2);
	assert_int_equal(ks.groups[1], 1);
	assert_int_equal(ks.nrecs, 2);
	assert_int_equal(ks.recs[0].uuid[0], 0x01);
	assert_int_equal(ks.recs[0].group, 1);
	assert_int_equal(ks.recs[0].flags, 0);
	assert_int_equal(ks.recs[0].tpm_version, 2);
	assert_int_equal(ks.recs[0].generation, 5);
	assert_int_equal(ks.recs[0].state_hash[31], 0x40 + 31);
	assert_int_equal(ks.recs[0].state_key[0], 0x80);
	assert_int_equal(ks.recs[1].uuid[15], 0xff);
	assert_int_equal(ks.recs[1].group, 0);
	assert_int_equal(ks.recs[1].flags, KS_REC_NOSTATE);
	assert_int_equal(ks.recs[1].tpm_version, 1);
	assert_int_equal(ks.recs[1].state_key[31], 0xc0 + 31);
	keystore_free(&ks);
}

/* ---- what is written now is the old format, byte for byte (the key
 * store: plus the ids of record layout 1) ---- */

/* The same header but for the nonce; the same plaintext. */
static void assert_same_file(const uint8_t ikm[32], const char *info,
			     size_t hdr_len, const uint8_t *old, size_t oldlen,
			     const uint8_t *now, size_t nowlen)
{
	uint8_t *a = malloc(oldlen), *b = malloc(nowlen);

	assert_int_equal(nowlen, oldlen);
	assert_memory_equal(now, old, hdr_len - 16);
	assert_memory_equal(now + hdr_len - 4, old + hdr_len - 4, 4);
	assert_memory_not_equal(now + hdr_len - 16, old + hdr_len - 16, 12);
	assert_int_equal(open_by_recipe(ikm, info, hdr_len, old, oldlen, a),
			 (long)(oldlen - hdr_len - 16));
	assert_int_equal(open_by_recipe(ikm, info, hdr_len, now, nowlen, b),
			 (long)(oldlen - hdr_len - 16));
	assert_memory_equal(a, b, oldlen - hdr_len - 16);
	free(a);
	free(b);
}

static void state_file_is_written_as_before(void **state)
{
	uint8_t master[32], root[32], uuid[16], *file;
	struct statefile_meta meta = {.family = 2, .generation = 7};
	struct statefile_blobs b = {0};
	struct state_keys k;
	size_t len;

	(void)state;
	fixture_inputs(master, root, uuid);
	memcpy(meta.uuid, uuid, 16);
	b.data[SF_BLOB_PERMANENT] = (uint8_t *)"permanent-state-fixture";
	b.len[SF_BLOB_PERMANENT] = 23;
	b.data[SF_BLOB_VOLATILE] = (uint8_t *)"volatile";
	b.len[SF_BLOB_VOLATILE] = 8;
	assert_int_equal(state_keys_derive(master, &k), 0);
	assert_int_equal(statefile_encode(&k, &meta, &b, &file, &len), 0);
	assert_same_file(master, "vtpm-service state v1", STATEFILE_HDR_LEN,
			 old_state_file, sizeof(old_state_file), file, len);
	free(file);
	state_keys_wipe(&k);
}

/* Since instance-uids the key store is written with record layout 1:
 * the same envelope, the layout field 1, and every record of the old
 * plaintext followed by its uid and gid (0 and 0: none yet). */
static void key_store_is_written_as_before_plus_ids(void **state)
{
	uint8_t master[32], root[32], uuid[16], *file, *a, *b;
	struct keystore_meta meta;
	struct keystore ks;
	size_t len, oldbody = sizeof(old_key_store) - KEYSTORE_HDR_LEN - 16;
	size_t prefix, nrecs;

	(void)state;
	fixture_inputs(master, root, uuid);
	assert_int_equal(keystore_decode(old_key_store, sizeof(old_key_store),
					 root, &ks, &meta),
			 0);
	nrecs = ks.nrecs;
	prefix = 12 + 4 * ks.ngroups;
	assert_int_equal(keystore_encode(&ks, root, 42, 41, &file, &len), 0);
	assert_int_equal(len, sizeof(old_key_store) +
				      nrecs * (KEYSTORE_REC_IDS_LEN - KEYSTORE_REC_LEN));
	assert_memory_equal(file, old_key_store, 10);
	assert_int_equal(file[10], 0);
	assert_int_equal(file[11], KEYSTORE_LAYOUT_IDS);
	assert_memory_equal(file + 12, old_key_store + 12, 16);
	a = malloc(oldbody);
	b = malloc(len);
	assert_int_equal(open_by_recipe(root, "vtpm-service keystore v1",
					KEYSTORE_HDR_LEN, old_key_store,
					sizeof(old_key_store), a),
			 (long)oldbody);
	assert_int_equal(open_by_recipe(root, "vtpm-service keystore v1",
					KEYSTORE_HDR_LEN, file, len, b),
			 (long)(len - KEYSTORE_HDR_LEN - 16));
	assert_memory_equal(a, b, prefix);
	for (size_t i = 0; i < nrecs; i++) {
		static const uint8_t zero[8];

		assert_memory_equal(b + prefix + i * KEYSTORE_REC_IDS_LEN,
				    a + prefix + i * KEYSTORE_REC_LEN,
				    KEYSTORE_REC_LEN);
		assert_memory_equal(b + prefix + i * KEYSTORE_REC_IDS_LEN +
					    KEYSTORE_REC_LEN, zero, 8);
	}
	free(a);
	free(b);
	free(file);
	keystore_free(&ks);
}

/* ---- the envelope itself, under a format of its own ---- */

enum { T_TRUNC = 101, T_MAGIC, T_VERSION, T_FORMAT, T_AUTH, T_NOMEM, T_CRYPTO };

/* magic, version, 6 bytes of "id", nonce, length: H = 32. */
static const struct envelope_fmt tfmt = {
    .magic = "TESTENV1",
    .version = 3,
    .hdr_len = 32,
    .max_body = 64,
    .kdf_info = "envelope test",
    .err = {T_TRUNC, T_MAGIC, T_VERSION, T_FORMAT, T_AUTH, T_NOMEM, T_CRYPTO},
};

struct tfx {
	uint8_t key[AEAD_KEY_LEN];
	uint8_t body[40];
	uint8_t *file;
	size_t len;
};

static int tsetup(void **state)
{
	static const uint8_t ikm[32] = {9, 8, 7};
	uint8_t hdr[32] = {0};
	struct tfx *fx = calloc(1, sizeof(*fx));

	assert_int_equal(envelope_key(&tfmt, ikm, sizeof(ikm), fx->key), 0);
	for (size_t i = 0; i < sizeof(fx->body); i++)
		fx->body[i] = (uint8_t)(i * 7 + 1);
	memcpy(hdr + 10, "id-one", 6);
	assert_int_equal(envelope_seal(&tfmt, fx->key, hdr, fx->body,
				       sizeof(fx->body), &fx->file, &fx->len),
			 0);
	*state = fx;
	return 0;
}

static int tteardown(void **state)
{
	struct tfx *fx = *state;

	free(fx->file);
	free(fx);
	return 0;
}

/* Opens buf; on success checks the body, on failure that none is given. */
static int topen(const struct tfx *fx, const uint8_t *key, const uint8_t *buf,
		 size_t len)
{
	uint8_t *body = (uint8_t *)1;
	size_t bodylen = 99;
	int rc = envelope_open(&tfmt, key, buf, len, &body, &bodylen);

	if (rc == 0) {
		assert_int_equal(bodylen, sizeof(fx->body));
		assert_memory_equal(body, fx->body, bodylen);
	} else {
		assert_null(body);
		assert_int_equal(bodylen, 0);
	}
	envelope_body_free(body, bodylen);
	return rc;
}

static void seal_lays_out_the_header(void **state)
{
	struct tfx *fx = *state;

	assert_int_equal(fx->len, 32 + sizeof(fx->body) + 16);
	assert_memory_equal(fx->file, "TESTENV1", 8);
	assert_int_equal(be16_get(fx->file + 8), 3);
	assert_memory_equal(fx->file + 10, "id-one", 6);
	assert_int_equal(be32_get(fx->file + 28), sizeof(fx->body));
	assert_null(memmem(fx->file, fx->len, fx->body + 8, 16));
	assert_int_equal(topen(fx, fx->key, fx->file, fx->len), 0);
	assert_int_equal(envelope_peek(&tfmt, fx->file, fx->len), 0);
}

static void every_truncation_is_refused(void **state)
{
	struct tfx *fx = *state;

	for (size_t n = 0; n < fx->len; n++) {
		uint8_t *copy = malloc(n ? n : 1);

		/* A copy of exactly n bytes, so a read past it is caught by
		 * ASan and valgrind. */
		memcpy(copy, fx->file, n);
		assert_int_equal(topen(fx, fx->key, copy, n), T_TRUNC);
		assert_int_equal(envelope_peek(&tfmt, copy, n),
				 n < 32 ? T_TRUNC : 0);
		free(copy);
	}
}

static void trailing_bytes_are_refused(void **state)
{
	struct tfx *fx = *state;
	uint8_t *longer = calloc(1, fx->len + 1);

	memcpy(longer, fx->file, fx->len);
	assert_int_equal(topen(fx, fx->key, longer, fx->len + 1), T_FORMAT);
	free(longer);
}

static void every_flipped_bit_is_refused(void **state)
{
	struct tfx *fx = *state;

	for (size_t i = 0; i < fx->len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			int rc;

			fx->file[i] ^= (uint8_t)(1u << bit);
			rc = topen(fx, fx->key, fx->file, fx->len);
			fx->file[i] ^= (uint8_t)(1u << bit);
			if (i < 8)
				assert_int_equal(rc, T_MAGIC);
			else if (i < 10)
				assert_int_equal(rc, T_VERSION);
			else if (i >= 28 && i < 32)
				/* The length: over the limit, or not the
				 * file's length. */
				assert_true(rc == T_TRUNC || rc == T_FORMAT);
			else
				/* id, nonce, ciphertext, tag */
				assert_int_equal(rc, T_AUTH);
		}
	}
	assert_int_equal(topen(fx, fx->key, fx->file, fx->len), 0);
}

static void wrong_key_is_refused(void **state)
{
	struct tfx *fx = *state;
	uint8_t key[AEAD_KEY_LEN];

	for (size_t i = 0; i < sizeof(key); i++) {
		memcpy(key, fx->key, sizeof(key));
		key[i] ^= 0x80;
		assert_int_equal(topen(fx, key, fx->file, fx->len), T_AUTH);
	}
}

static void another_id_or_format_is_refused(void **state)
{
	struct tfx *fx = *state;
	struct envelope_fmt other = tfmt;
	uint8_t *body;
	size_t bodylen;

	/* The id is authenticated: a header naming another is not this
	 * file's, even when the rest is intact. */
	memcpy(fx->file + 10, "id-two", 6);
	assert_int_equal(topen(fx, fx->key, fx->file, fx->len), T_AUTH);
	memcpy(fx->file + 10, "id-one", 6);
	/* Another format's magic, version or header length. */
	other.magic = "TESTENV2";
	assert_int_equal(
	    envelope_open(&other, fx->key, fx->file, fx->len, &body, &bodylen),
	    T_MAGIC);
	other = tfmt;
	other.version = 4;
	assert_int_equal(
	    envelope_open(&other, fx->key, fx->file, fx->len, &body, &bodylen),
	    T_VERSION);
	other = tfmt;
	other.hdr_len = 36;
	assert_int_not_equal(
	    envelope_open(&other, fx->key, fx->file, fx->len, &body, &bodylen),
	    0);
	/* Real files of the other formats are refused by their magic. */
	assert_int_equal(envelope_open(&tfmt, fx->key, old_state_file,
				       sizeof(old_state_file), &body, &bodylen),
			 T_MAGIC);
}

static void length_field_lies_are_refused(void **state)
{
	struct tfx *fx = *state;
	static const uint32_t lies[] = {
	    0, 1, 39, 41, 64, 65, 1u << 31, 0x7fffffffu, 0xffffffffu};

	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		int rc;

		be32_put(fx->file + 28, lies[i]);
		rc = topen(fx, fx->key, fx->file, fx->len);
		if (lies[i] > tfmt.max_body)
			assert_int_equal(rc, T_FORMAT); /* over the limit */
		else if (lies[i] > sizeof(fx->body))
			assert_int_equal(rc, T_TRUNC); /* more than the file */
		else
			assert_int_equal(rc,
					 T_FORMAT); /* less: trailing bytes */
	}
	be32_put(fx->file + 28, sizeof(fx->body));
	assert_int_equal(topen(fx, fx->key, fx->file, fx->len), 0);
}

static void seal_refuses_what_open_would(void **state)
{
	struct tfx *fx = *state;
	uint8_t hdr[32] = {0}, big[65] = {0}, *out = NULL;
	struct envelope_fmt bad = tfmt;
	size_t outlen = 0;

	assert_int_equal(
	    envelope_seal(&tfmt, fx->key, hdr, big, sizeof(big), &out, &outlen),
	    T_FORMAT);
	assert_null(out);
	assert_int_equal(
	    envelope_seal(&tfmt, fx->key, hdr, big, 64, &out, &outlen), 0);
	free(out);
	/* A format whose header cannot hold the nonce and length, or whose
	 * limit lets the lengths wrap, is refused, not trusted. */
	bad.hdr_len = ENVELOPE_MIN_HDR - 1;
	out = NULL;
	assert_int_equal(
	    envelope_seal(&bad, fx->key, hdr, big, 1, &out, &outlen), T_CRYPTO);
	assert_null(out);
	bad = tfmt;
	bad.max_body = 0xffffffffu;
	assert_int_equal(
	    envelope_seal(&bad, fx->key, hdr, big, 1, &out, &outlen), T_CRYPTO);
	assert_int_equal(topen(fx, fx->key, fx->file, fx->len), 0);
}

static void empty_body_round_trips(void **state)
{
	struct tfx *fx = *state;
	uint8_t hdr[32] = {0}, *out, *body;
	size_t outlen, bodylen;

	assert_int_equal(
	    envelope_seal(&tfmt, fx->key, hdr, NULL, 0, &out, &outlen), 0);
	assert_int_equal(outlen, 32 + 16);
	assert_int_equal(
	    envelope_open(&tfmt, fx->key, out, outlen, &body, &bodylen), 0);
	assert_non_null(body);
	assert_int_equal(bodylen, 0);
	envelope_body_free(body, bodylen);
	envelope_body_free(NULL, 0);
	out[outlen - 1] ^= 1;
	assert_int_equal(
	    envelope_open(&tfmt, fx->key, out, outlen, &body, &bodylen),
	    T_AUTH);
	free(out);
}

static void nonces_differ_per_seal(void **state)
{
	struct tfx *fx = *state;
	uint8_t hdr[32] = {0}, *out;
	size_t outlen;

	memcpy(hdr + 10, "id-one", 6);
	assert_int_equal(envelope_seal(&tfmt, fx->key, hdr, fx->body,
				       sizeof(fx->body), &out, &outlen),
			 0);
	assert_int_equal(outlen, fx->len);
	assert_memory_equal(out, fx->file, 16);
	assert_memory_not_equal(out + 16, fx->file + 16, 12);
	free(out);
}

int main(void)
{
#define FX(t) cmocka_unit_test_setup_teardown(t, tsetup, tteardown)
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(old_state_file_still_loads),
	    cmocka_unit_test(old_key_store_still_loads),
	    cmocka_unit_test(state_file_is_written_as_before),
	    cmocka_unit_test(key_store_is_written_as_before_plus_ids),
	    FX(seal_lays_out_the_header),
	    FX(every_truncation_is_refused),
	    FX(trailing_bytes_are_refused),
	    FX(every_flipped_bit_is_refused),
	    FX(wrong_key_is_refused),
	    FX(another_id_or_format_is_refused),
	    FX(length_field_lies_are_refused),
	    FX(seal_refuses_what_open_would),
	    FX(empty_body_round_trips),
	    FX(nonces_differ_per_seal),
	};
#undef FX
	return cmocka_run_group_tests(tests, NULL, NULL);
}
