/* SPDX-License-Identifier: BSD-3-Clause */
#define _GNU_SOURCE
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
#include "proto/keystore.h"
#include "proto/statefile.h"

static const uint8_t root_a[32] = { 0x52, 0x4f, 0x4f, 0x54, 1, 2, 3, 4, 5, 6, 7, 8,
				    9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
				    21, 22, 23, 24, 25, 26, 27, 28 };

static void make_rec(struct keystore_rec *r, uint8_t seed, uint32_t group)
{
	memset(r, 0, sizeof(*r));
	for (int i = 0; i < 16; i++)
		r->uuid[i] = (uint8_t)(seed * 17 + i);
	r->group = group;
	r->flags = seed & 1 ? KS_REC_NOSTATE : 0;
	r->tpm_version = seed % 3 == 0 ? 1 : 2;
	r->generation = (uint64_t)seed << 40 | seed;
	if (seed % 4) {
		r->uid = 1000000u + seed;
		r->gid = 2000000u + seed;
	}
	for (int i = 0; i < 32; i++) {
		r->state_hash[i] = (uint8_t)(seed ^ (0x40 + i));
		r->state_key[i] = (uint8_t)(seed ^ (0xc0 + i));
	}
}

static void assert_rec_equal(const struct keystore_rec *a, const struct keystore_rec *b)
{
	assert_memory_equal(a->uuid, b->uuid, 16);
	assert_int_equal(a->group, b->group);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->tpm_version, b->tpm_version);
	assert_int_equal(a->generation, b->generation);
	assert_memory_equal(a->state_hash, b->state_hash, 32);
	assert_memory_equal(a->state_key, b->state_key, 32);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->gid, b->gid);
}

struct fixture {
	struct keystore ks;
	uint8_t *file;
	size_t len;
};

/* Groups 0, 2, 3 (1 was deleted); five vTPMs added out of order. */
static int setup(void **state)
{
	static const uint8_t seeds[] = { 9, 3, 14, 1, 6 };
	struct fixture *fx = calloc(1, sizeof(*fx));
	uint32_t id;

	assert_int_equal(keystore_init(&fx->ks), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(keystore_group_new(&fx->ks, &id), 0);
	assert_int_equal(keystore_group_del(&fx->ks, 1), 0);
	for (size_t i = 0; i < sizeof(seeds); i++) {
		struct keystore_rec r;

		make_rec(&r, seeds[i], i % 2 ? 2 : (i ? 3 : 0));
		assert_int_equal(keystore_add(&fx->ks, &r), 0);
	}
	assert_int_equal(keystore_encode(&fx->ks, root_a, 77, 1000, &fx->file, &fx->len), 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	keystore_free(&fx->ks);
	free(fx->file);
	free(fx);
	return 0;
}

static void round_trip_restores_every_record_and_group(void **state)
{
	struct fixture *fx = *state;
	struct keystore ks;
	struct keystore_meta m;

	assert_int_equal(fx->len, KEYSTORE_HDR_LEN + 12 + 3 * 4 + 5 * KEYSTORE_REC_IDS_LEN +
					  KEYSTORE_TAG_LEN);
	assert_int_equal(keystore_decode(fx->file, fx->len, root_a, &ks, &m), 0);
	assert_int_equal(m.generation, 77);
	assert_int_equal(m.nv_counter, 1000);
	assert_int_equal(ks.next_group_id, 4);
	assert_int_equal(ks.ngroups, 3);
	assert_int_equal(ks.groups[0], 0);
	assert_int_equal(ks.groups[1], 2);
	assert_int_equal(ks.groups[2], 3);
	assert_int_equal(ks.nrecs, 5);
	for (size_t i = 0; i < ks.nrecs; i++) {
		const struct keystore_rec *r = keystore_find(&fx->ks, ks.recs[i].uuid);

		assert_non_null(r);
		assert_rec_equal(r, &ks.recs[i]);
		if (i)
			assert_true(memcmp(ks.recs[i - 1].uuid, ks.recs[i].uuid, 16) < 0);
	}
	keystore_free(&ks);
}

static void empty_store_round_trips(void **state)
{
	struct keystore ks, out;
	struct keystore_meta m;
	uint8_t *file;
	size_t len;

	(void)state;
	assert_int_equal(keystore_init(&ks), 0);
	assert_int_equal(keystore_encode(&ks, root_a, 0, 0, &file, &len), 0);
	assert_int_equal(keystore_decode(file, len, root_a, &out, &m), 0);
	assert_int_equal(out.nrecs, 0);
	assert_int_equal(out.ngroups, 1);
	assert_int_equal(out.groups[0], KEYSTORE_DEFAULT_GROUP);
	assert_int_equal(out.next_group_id, 1);
	keystore_free(&out);
	keystore_free(&ks);
	free(file);
}

static void many_records_round_trip_sorted(void **state)
{
	struct keystore ks, out;
	struct keystore_meta m;
	uint8_t *file;
	size_t len;
	uint32_t x = 12345;

	(void)state;
	assert_int_equal(keystore_init(&ks), 0);
	for (int i = 0; i < 1000; i++) {
		struct keystore_rec r;

		make_rec(&r, (uint8_t)i, 0);
		for (int j = 0; j < 16; j++) {
			x = x * 1103515245u + 12345u;
			r.uuid[j] = (uint8_t)(x >> 16);
		}
		assert_int_equal(keystore_add(&ks, &r), 0);
	}
	for (size_t i = 1; i < ks.nrecs; i++)
		assert_true(memcmp(ks.recs[i - 1].uuid, ks.recs[i].uuid, 16) < 0);
	assert_int_equal(keystore_encode(&ks, root_a, 1, 2, &file, &len), 0);
	assert_int_equal(keystore_decode(file, len, root_a, &out, &m), 0);
	assert_int_equal(out.nrecs, 1000);
	for (size_t i = 0; i < out.nrecs; i++)
		assert_rec_equal(&out.recs[i], &ks.recs[i]);
	keystore_free(&out);
	keystore_free(&ks);
	free(file);
}

/* The format as docs/manager-protocol.md describes it, built with
 * OpenSSL directly: the documented recipe is what the code reads. */
static void seal_by_recipe(const uint8_t root[32], const uint8_t hdr[KEYSTORE_HDR_LEN],
			   const uint8_t *body, size_t n, uint8_t *out)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	OSSL_PARAM p[4];
	uint8_t key[32];
	int l;

	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
	p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)root, 32);
	p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
						 "vtpm-service keystore v1", 24);
	p[3] = OSSL_PARAM_construct_end();
	assert_int_equal(EVP_KDF_derive(kctx, key, 32, p), 1);
	memcpy(out, hdr, KEYSTORE_HDR_LEN);
	be32_put(out + 40, (uint32_t)n);
	assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, out + 28), 1);
	assert_int_equal(EVP_EncryptUpdate(c, NULL, &l, out, KEYSTORE_HDR_LEN), 1);
	if (n)
		assert_int_equal(EVP_EncryptUpdate(c, out + KEYSTORE_HDR_LEN, &l, body, (int)n), 1);
	assert_int_equal(EVP_EncryptFinal_ex(c, out + KEYSTORE_HDR_LEN + n, &l), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16,
					     out + KEYSTORE_HDR_LEN + n), 1);
	EVP_CIPHER_CTX_free(c);
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
}

static void header_by_recipe(uint8_t hdr[KEYSTORE_HDR_LEN], uint16_t version,
			     uint16_t reserved)
{
	memset(hdr, 0, KEYSTORE_HDR_LEN);
	memcpy(hdr, "VTPMKEYS", 8);
	be16_put(hdr + 8, version);
	be16_put(hdr + 10, reserved);
	be64_put(hdr + 12, 5);
	be64_put(hdr + 20, 6);
	memset(hdr + 28, 0x4e, 12);
}

static void documented_recipe_decodes(void **state)
{
	/* next 1, groups {0}, one record. */
	uint8_t body[12 + 4 + KEYSTORE_REC_LEN] = { 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0,
						    0, 0, 0, 1 };
	uint8_t hdr[KEYSTORE_HDR_LEN], file[KEYSTORE_HDR_LEN + sizeof(body) + 16];
	uint8_t *r = body + 16;
	struct keystore ks;
	struct keystore_meta m;

	(void)state;
	memset(r, 0xab, 16);           /* uuid */
	be32_put(r + 16, 0);           /* group */
	be32_put(r + 20, 1);           /* flags: no state yet */
	r[24] = 2;                     /* TPM 2.0 */
	be64_put(r + 25, 9);           /* generation */
	memset(r + 33, 0x11, 32);      /* state hash */
	memset(r + 65, 0x22, 32);      /* state key */
	header_by_recipe(hdr, 1, 0);
	seal_by_recipe(root_a, hdr, body, sizeof(body), file);
	assert_int_equal(keystore_decode(file, sizeof(file), root_a, &ks, &m), 0);
	assert_int_equal(m.generation, 5);
	assert_int_equal(m.nv_counter, 6);
	assert_int_equal(ks.nrecs, 1);
	assert_int_equal(ks.recs[0].flags, KS_REC_NOSTATE);
	assert_int_equal(ks.recs[0].tpm_version, 2);
	assert_int_equal(ks.recs[0].generation, 9);
	assert_int_equal(ks.recs[0].state_key[31], 0x22);
	keystore_free(&ks);
}

/* A store written before instance-uids (layout 0, 97-byte records)
 * loads with no ids; the next write carries them (layout 1). */
static void layout0_store_loads_and_is_rewritten_with_ids(void **state)
{
	uint8_t body[12 + 4 + 2 * KEYSTORE_REC_LEN] = { 0, 0, 0, 1, 0, 0, 0, 1,
							0, 0, 0, 0, 0, 0, 0, 2 };
	uint8_t *file, *re;
	size_t len, relen;
	struct keystore ks, again;
	struct keystore_meta m;

	(void)state;
	for (int i = 0; i < 2; i++) {
		uint8_t *r = body + 16 + i * KEYSTORE_REC_LEN;

		memset(r, 0x10 + i, 16);
		r[24] = 2;
	}
	assert_int_equal(keystore_seal(root_a, 3, 4, body, sizeof(body), &file,
				       &len), 0);
	assert_int_equal(keystore_decode(file, len, root_a, &ks, &m), 0);
	assert_int_equal(ks.nrecs, 2);
	assert_int_equal(ks.recs[0].uid, 0);
	assert_int_equal(ks.recs[1].gid, 0);
	ks.recs[1].uid = ks.recs[1].gid = 1000000;
	assert_int_equal(keystore_encode(&ks, root_a, 4, 4, &re, &relen), 0);
	assert_int_equal(relen, len + 2 * (KEYSTORE_REC_IDS_LEN - KEYSTORE_REC_LEN));
	assert_int_equal(be16_get(re + 10), KEYSTORE_LAYOUT_IDS);
	assert_int_equal(keystore_decode(re, relen, root_a, &again, &m), 0);
	assert_int_equal(again.recs[0].uid, 0);
	assert_int_equal(again.recs[1].uid, 1000000);
	assert_int_equal(again.recs[1].gid, 1000000);
	/* The same 105-byte body sealed as layout 0 is trailing garbage. */
	free(file);
	keystore_free(&again);
	keystore_free(&ks);
	free(re);
}

/* Authentic records with half an identity, or (uid_t)-1, are refused. */
static void records_with_bad_ids_are_refused(void **state)
{
	static const uint32_t bad[][2] = { { 5, 0 }, { 0, 5 },
					   { UINT32_MAX, 5 }, { 5, UINT32_MAX } };
	uint8_t body[12 + 4 + KEYSTORE_REC_IDS_LEN] = { 0, 0, 0, 1, 0, 0, 0, 1,
							0, 0, 0, 0, 0, 0, 0, 1 };
	uint8_t *r = body + 16, *file;
	size_t len;
	struct keystore ks;
	struct keystore_meta m;
	struct keystore_rec rec;

	(void)state;
	memset(r, 0x33, 16);
	r[24] = 2;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		be32_put(r + 97, bad[i][0]);
		be32_put(r + 101, bad[i][1]);
		assert_int_equal(keystore_seal_layout(root_a, 1, 1, KEYSTORE_LAYOUT_IDS,
						      body, sizeof(body), &file,
						      &len), 0);
		assert_int_equal(keystore_decode(file, len, root_a, &ks, &m),
				 KS_ERR_FORMAT);
		free(file);
		/* And through the front door. */
		assert_int_equal(keystore_init(&ks), 0);
		make_rec(&rec, 5, 0);
		rec.uid = bad[i][0];
		rec.gid = bad[i][1];
		assert_int_equal(keystore_add(&ks, &rec), KS_ERR_INVALID);
		keystore_free(&ks);
	}
	/* A layout 1 body cut to layout 0's record length is refused. */
	assert_int_equal(keystore_seal_layout(root_a, 1, 1, KEYSTORE_LAYOUT_IDS, body,
					      sizeof(body) - 8, &file, &len), 0);
	assert_int_equal(keystore_decode(file, len, root_a, &ks, &m), KS_ERR_FORMAT);
	free(file);
}

static void uid_alloc_takes_the_lowest_free_one(void **state)
{
	struct keystore ks;
	struct keystore_rec rec;
	uint32_t uid;

	(void)state;
	assert_int_equal(keystore_init(&ks), 0);
	assert_int_equal(keystore_uid_alloc(&ks, 100, 102, &uid), 0);
	assert_int_equal(uid, 100);
	assert_int_equal(keystore_uid_alloc(&ks, 0, 102, &uid), KS_ERR_INVALID);
	assert_int_equal(keystore_uid_alloc(&ks, 103, 102, &uid), KS_ERR_INVALID);
	/* 100 taken as a uid, 101 as another record's gid, one without ids. */
	make_rec(&rec, 1, 0);
	rec.uid = 100;
	rec.gid = 100;
	assert_int_equal(keystore_add(&ks, &rec), 0);
	make_rec(&rec, 2, 0);
	rec.uid = 5000;
	rec.gid = 101;
	assert_int_equal(keystore_add(&ks, &rec), 0);
	make_rec(&rec, 4, 0);
	rec.uid = rec.gid = 0;
	assert_int_equal(keystore_add(&ks, &rec), 0);
	assert_int_equal(keystore_uid_alloc(&ks, 100, 102, &uid), 0);
	assert_int_equal(uid, 102);
	make_rec(&rec, 5, 0);
	rec.uid = rec.gid = 102;
	assert_int_equal(keystore_add(&ks, &rec), 0);
	assert_int_equal(keystore_uid_alloc(&ks, 100, 102, &uid), KS_ERR_FULL);
	/* A duplicate (an edited store) does not hide a free one. */
	make_rec(&rec, 6, 0);
	rec.uid = rec.gid = 100;
	assert_int_equal(keystore_add(&ks, &rec), 0);
	assert_int_equal(keystore_uid_alloc(&ks, 100, 103, &uid), 0);
	assert_int_equal(uid, 103);
	assert_int_equal(keystore_uid_alloc(&ks, UINT32_MAX - 1, UINT32_MAX - 1,
					    &uid), 0);
	assert_int_equal(uid, UINT32_MAX - 1);
	keystore_free(&ks);
}

static void authentic_unknown_version_or_reserved_is_refused(void **state)
{
	uint8_t body[16] = { 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 };
	uint8_t hdr[KEYSTORE_HDR_LEN], file[KEYSTORE_HDR_LEN + sizeof(body) + 16];
	struct keystore ks;
	struct keystore_meta m;

	(void)state;
	header_by_recipe(hdr, 1, 0);
	seal_by_recipe(root_a, hdr, body, sizeof(body), file);
	assert_int_equal(keystore_decode(file, sizeof(file), root_a, &ks, &m), 0);
	keystore_free(&ks);
	/* Layout 1 (records with ids) is known; an empty store is one. */
	header_by_recipe(hdr, 1, 1);
	seal_by_recipe(root_a, hdr, body, sizeof(body), file);
	assert_int_equal(keystore_decode(file, sizeof(file), root_a, &ks, &m), 0);
	keystore_free(&ks);
	/* Layouts 2 (the imported-blob list) and 3 (online migrations) are
	 * known too: 4 is not. */
	header_by_recipe(hdr, 1, 4);
	seal_by_recipe(root_a, hdr, body, sizeof(body), file);
	assert_int_equal(keystore_decode(file, sizeof(file), root_a, &ks, &m),
			 KS_ERR_VERSION);
	header_by_recipe(hdr, 2, 0);
	seal_by_recipe(root_a, hdr, body, sizeof(body), file);
	assert_int_equal(keystore_decode(file, sizeof(file), root_a, &ks, &m),
			 KS_ERR_VERSION);
}

static void keys_do_not_appear_in_the_file(void **state)
{
	struct fixture *fx = *state;

	for (size_t i = 0; i < fx->ks.nrecs; i++)
		assert_null(memmem(fx->file, fx->len, fx->ks.recs[i].state_key, 16));
}

static void every_flipped_bit_is_refused(void **state)
{
	struct fixture *fx = *state;
	struct keystore ks;
	struct keystore_meta m;

	for (size_t i = 0; i < fx->len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			int rc;

			fx->file[i] ^= (uint8_t)(1u << bit);
			rc = keystore_decode(fx->file, fx->len, root_a, &ks, &m);
			fx->file[i] ^= (uint8_t)(1u << bit);
			if (rc == 0)
				fail_msg("flip of byte %zu bit %d was accepted", i, bit);
			if (i < 8)
				assert_int_equal(rc, KS_ERR_MAGIC);
			else if (i < 10)
				assert_int_equal(rc, KS_ERR_VERSION);
			else if (i >= 40 && i < 44)
				assert_true(rc == KS_ERR_TRUNCATED || rc == KS_ERR_FORMAT);
			else
				assert_int_equal(rc, KS_ERR_AUTH);
			assert_int_equal(ks.nrecs, 0);
			assert_null(ks.recs);
		}
	}
}

static void every_truncation_is_refused(void **state)
{
	struct fixture *fx = *state;
	struct keystore ks;
	struct keystore_meta m;

	for (size_t n = 0; n < fx->len; n++)
		assert_int_equal(keystore_decode(fx->file, n, root_a, &ks, &m),
				 KS_ERR_TRUNCATED);
}

static void trailing_bytes_are_refused(void **state)
{
	struct fixture *fx = *state;
	uint8_t *longer = malloc(fx->len + 1);
	struct keystore ks;
	struct keystore_meta m;

	memcpy(longer, fx->file, fx->len);
	longer[fx->len] = 0;
	assert_int_equal(keystore_decode(longer, fx->len + 1, root_a, &ks, &m),
			 KS_ERR_FORMAT);
	free(longer);
}

static void ciphertext_length_lies_are_refused(void **state)
{
	struct fixture *fx = *state;
	uint32_t ct = be32_get(fx->file + 40);
	struct keystore ks;
	struct keystore_meta m;

	be32_put(fx->file + 40, ct + 1);
	assert_int_equal(keystore_decode(fx->file, fx->len, root_a, &ks, &m),
			 KS_ERR_TRUNCATED);
	be32_put(fx->file + 40, ct - 1);
	assert_int_equal(keystore_decode(fx->file, fx->len, root_a, &ks, &m),
			 KS_ERR_FORMAT);
	be32_put(fx->file + 40, KEYSTORE_MAX_BODY + 1);
	assert_int_equal(keystore_decode(fx->file, fx->len, root_a, &ks, &m),
			 KS_ERR_FORMAT);
	be32_put(fx->file + 40, 0xffffffffu);
	assert_int_equal(keystore_decode(fx->file, fx->len, root_a, &ks, &m),
			 KS_ERR_FORMAT);
	be32_put(fx->file + 40, ct);
	assert_int_equal(keystore_decode(fx->file, fx->len, root_a, &ks, &m), 0);
	keystore_free(&ks);
}

static void wrong_root_key_fails_authentication(void **state)
{
	struct fixture *fx = *state;
	uint8_t other[32];
	struct keystore ks;
	struct keystore_meta m;

	memcpy(other, root_a, 32);
	other[31] ^= 1;
	assert_int_equal(keystore_decode(fx->file, fx->len, other, &ks, &m), KS_ERR_AUTH);
}

static void peek_reads_the_header_without_the_key(void **state)
{
	struct fixture *fx = *state;
	struct keystore_meta m;

	assert_int_equal(keystore_peek(fx->file, fx->len, &m), 0);
	assert_int_equal(m.generation, 77);
	assert_int_equal(m.nv_counter, 1000);
	assert_int_equal(keystore_peek(fx->file, 43, &m), KS_ERR_TRUNCATED);
	assert_int_equal(keystore_peek((const uint8_t *)"VTPMSTAT", 8, &m), KS_ERR_MAGIC);
}

/* A plaintext body, written field by field. */
struct body {
	uint8_t b[8192];
	size_t n;
};

static void b32(struct body *b, uint32_t v)
{
	be32_put(b->b + b->n, v);
	b->n += 4;
}

static void brec(struct body *b, uint8_t first, uint32_t group, uint32_t flags,
		 uint8_t version)
{
	uint8_t *p = b->b + b->n;

	memset(p, 0x5a, KEYSTORE_REC_LEN);
	memset(p, 0, 16);
	p[0] = first;
	p[15] = 1;
	be32_put(p + 16, group);
	be32_put(p + 20, flags);
	p[24] = version;
	b->n += KEYSTORE_REC_LEN;
}

/* A body made anew of n u32 words. */
static void bwords(struct body *b, const uint32_t *w, size_t n)
{
	b->n = 0;
	for (size_t i = 0; i < n; i++)
		b32(b, w[i]);
}

#define BWORDS(b, ...)                                                         \
	bwords(b, (const uint32_t[]){ __VA_ARGS__ },                            \
	       sizeof((const uint32_t[]){ __VA_ARGS__ }) / sizeof(uint32_t))

/* next 3, groups {0, 2}, then what the case adds. */
static void bgroups(struct body *b)
{
	BWORDS(b, 3, 2, 0, 2);
}

struct rec_spec {
	uint8_t first; /* of the UUID; its last byte is 1 */
	uint32_t group, flags;
	uint8_t version;
};

/* Groups {0, 2}, a record count, then records. */
static void brecs(struct body *b, uint32_t count, const struct rec_spec *r,
		  size_t n)
{
	bgroups(b);
	b32(b, count);
	for (size_t i = 0; i < n; i++)
		brec(b, r[i].first, r[i].group, r[i].flags, r[i].version);
}

#define BRECS(b, count, ...)                                                   \
	brecs(b, count, (const struct rec_spec[]){ __VA_ARGS__ },               \
	      sizeof((const struct rec_spec[]){ __VA_ARGS__ }) /                \
		      sizeof(struct rec_spec))

static int decode_body(const struct body *b)
{
	struct keystore ks;
	struct keystore_meta m;
	uint8_t *file;
	size_t len;
	int rc;

	assert_int_equal(keystore_seal(root_a, 1, 1, b->b, b->n, &file, &len), 0);
	rc = keystore_decode(file, len, root_a, &ks, &m);
	if (rc == 0)
		keystore_free(&ks);
	else
		assert_null(ks.recs);
	free(file);
	return rc;
}

/* Bodies that authenticate but lie. */
static void authentic_malformed_bodies_are_refused(void **state)
{
	struct body b;

	(void)state;
	/* The baseline is well-formed: two records in two groups. */
	BRECS(&b, 2, { 1, 0, 0, 2 }, { 2, 2, KS_REC_NOSTATE, 1 });
	assert_int_equal(decode_body(&b), 0);

#define REFUSED(what)                                                          \
	do {                                                                   \
		int rc_ = decode_body(&b);                                     \
		if (rc_ != KS_ERR_FORMAT)                                      \
			fail_msg("%s: got %s", what, keystore_strerror(rc_));  \
	} while (0)

	b.n = 0;
	REFUSED("empty body");
	BWORDS(&b, 1, 1);
	REFUSED("group list cut short");
	BWORDS(&b, 1, 0, 0);
	REFUSED("no group at all");
	BWORDS(&b, 1, 0xffffffffu, 0, 0);
	REFUSED("group count beyond the body");
	BWORDS(&b, 2000, KEYSTORE_MAX_GROUPS + 1);
	for (uint32_t i = 0; i <= KEYSTORE_MAX_GROUPS && b.n + 4 <= sizeof(b.b); i++)
		b32(&b, i);
	REFUSED("more groups than the limit");
	BWORDS(&b, 3, 1, 2, 0);
	REFUSED("default group missing");
	BWORDS(&b, 3, 3, 0, 2, 2, 0);
	REFUSED("duplicate group");
	BWORDS(&b, 3, 3, 0, 2, 1, 0);
	REFUSED("groups out of order");
	BWORDS(&b, 2, 2, 0, 2, 0);
	REFUSED("group id not below next_group_id");
	bgroups(&b);
	REFUSED("record count missing");
	BRECS(&b, 3, { 1, 0, 0, 2 }, { 2, 0, 0, 2 });
	REFUSED("record count beyond the body");
	BRECS(&b, 0xffffffffu, { 1, 0, 0, 2 });
	REFUSED("record count far beyond the limit");
	BRECS(&b, 1, { 1, 0, 0, 2 }, { 2, 0, 0, 2 });
	REFUSED("record count short of the body");
	BRECS(&b, 1, { 1, 0, 0, 2 });
	b.b[b.n++] = 0;
	REFUSED("trailing byte after the records");
	BRECS(&b, 2, { 1, 0, 0, 2 }, { 1, 2, 0, 2 });
	REFUSED("duplicate uuid");
	BRECS(&b, 2, { 2, 0, 0, 2 }, { 1, 0, 0, 2 });
	REFUSED("uuids out of order");
	BRECS(&b, 1, { 0, 0, 0, 2 });
	b.b[b.n - KEYSTORE_REC_LEN + 15] = 0;
	REFUSED("all-zero uuid");
	BRECS(&b, 1, { 1, 1, 0, 2 });
	REFUSED("record in a deleted group");
	BRECS(&b, 1, { 1, 7, 0, 2 });
	REFUSED("record in an unknown group");
	BRECS(&b, 1, { 1, 0, 0, 3 });
	REFUSED("TPM version 3");
	BRECS(&b, 1, { 1, 0, 0, 0 });
	REFUSED("TPM version 0");
	BRECS(&b, 1, { 1, 0, 0x10, 2 });
	REFUSED("unknown record flag");
#undef REFUSED
}

static void add_find_del(void **state)
{
	struct keystore ks;
	struct keystore_rec r, bad;

	(void)state;
	assert_int_equal(keystore_init(&ks), 0);
	make_rec(&r, 5, 0);
	assert_null(keystore_find(&ks, r.uuid));
	assert_int_equal(keystore_add(&ks, &r), 0);
	assert_rec_equal(keystore_find(&ks, r.uuid), &r);
	assert_int_equal(keystore_add(&ks, &r), KS_ERR_EXISTS);
	bad = r;
	bad.uuid[0] ^= 1;
	bad.group = 1;
	assert_int_equal(keystore_add(&ks, &bad), KS_ERR_NO_GROUP);
	bad.group = 0;
	bad.tpm_version = 3;
	assert_int_equal(keystore_add(&ks, &bad), KS_ERR_INVALID);
	bad.tpm_version = 2;
	bad.flags = 0x80;
	assert_int_equal(keystore_add(&ks, &bad), KS_ERR_INVALID);
	bad.flags = 0;
	memset(bad.uuid, 0, 16);
	assert_int_equal(keystore_add(&ks, &bad), KS_ERR_INVALID);
	assert_int_equal(ks.nrecs, 1);
	assert_int_equal(keystore_del(&ks, bad.uuid), KS_ERR_NOT_FOUND);
	assert_int_equal(keystore_del(&ks, r.uuid), 0);
	assert_null(keystore_find(&ks, r.uuid));
	assert_int_equal(keystore_del(&ks, r.uuid), KS_ERR_NOT_FOUND);
	keystore_free(&ks);
}

static void deleted_record_leaves_no_key_behind(void **state)
{
	struct keystore ks;
	struct keystore_rec r;
	static const uint8_t zero[sizeof(struct keystore_rec)];

	(void)state;
	assert_int_equal(keystore_init(&ks), 0);
	for (uint8_t s = 1; s <= 20; s++) {
		make_rec(&r, s, 0);
		assert_int_equal(keystore_add(&ks, &r), 0);
	}
	make_rec(&r, 3, 0);
	assert_int_equal(keystore_del(&ks, r.uuid), 0);
	/* The slot freed at the end of the array is wiped. */
	assert_memory_equal(&ks.recs[ks.nrecs], zero, sizeof(zero));
	assert_null(memmem(ks.recs, ks.caprecs * sizeof(*ks.recs), r.state_key, 32));
	keystore_free(&ks);
	assert_null(ks.recs);
	assert_int_equal(ks.nrecs, 0);
}

static void group_ids_grow_and_are_never_reused(void **state)
{
	struct keystore ks, out;
	struct keystore_meta m;
	struct keystore_rec r;
	uint8_t *file;
	size_t len;
	uint32_t a, b, c;

	(void)state;
	assert_int_equal(keystore_init(&ks), 0);
	assert_true(keystore_group_has(&ks, KEYSTORE_DEFAULT_GROUP));
	assert_int_equal(keystore_group_new(&ks, &a), 0);
	assert_int_equal(keystore_group_new(&ks, &b), 0);
	assert_int_equal(a, 1);
	assert_int_equal(b, 2);
	assert_int_equal(keystore_group_del(&ks, b), 0);
	assert_false(keystore_group_has(&ks, b));
	assert_int_equal(keystore_group_del(&ks, b), KS_ERR_NO_GROUP);
	/* Also across a commit and a restart. */
	assert_int_equal(keystore_encode(&ks, root_a, 1, 1, &file, &len), 0);
	assert_int_equal(keystore_decode(file, len, root_a, &out, &m), 0);
	assert_int_equal(keystore_group_new(&out, &c), 0);
	assert_int_equal(c, 3);
	/* A group that holds a vTPM stays; the default group always stays. */
	make_rec(&r, 1, a);
	assert_int_equal(keystore_add(&out, &r), 0);
	assert_int_equal(keystore_group_del(&out, a), KS_ERR_GROUP_BUSY);
	assert_int_equal(keystore_group_del(&out, KEYSTORE_DEFAULT_GROUP),
			 KS_ERR_DEFAULT_GROUP);
	assert_int_equal(keystore_del(&out, r.uuid), 0);
	assert_int_equal(keystore_group_del(&out, a), 0);
	assert_int_equal(out.ngroups, 2);
	assert_int_equal(out.groups[0], 0);
	assert_int_equal(out.groups[1], 3);
	keystore_free(&out);
	keystore_free(&ks);
	free(file);
}

static void group_limits_are_enforced(void **state)
{
	struct keystore ks;
	uint32_t id;

	(void)state;
	assert_int_equal(keystore_init(&ks), 0);
	while (ks.ngroups < KEYSTORE_MAX_GROUPS)
		assert_int_equal(keystore_group_new(&ks, &id), 0);
	assert_int_equal(keystore_group_new(&ks, &id), KS_ERR_FULL);
	keystore_free(&ks);

	assert_int_equal(keystore_init(&ks), 0);
	ks.next_group_id = UINT32_MAX - 1;
	assert_int_equal(keystore_group_new(&ks, &id), 0);
	assert_int_equal(id, UINT32_MAX - 1);
	assert_int_equal(keystore_group_new(&ks, &id), KS_ERR_FULL);
	keystore_free(&ks);
}

static void record_limit_fits_the_body_limit(void **state)
{
	struct keystore ks, out;
	struct keystore_meta m;
	struct keystore_rec r;
	uint8_t *file;
	size_t len;
	uint32_t id;

	(void)state;
	assert_int_equal(keystore_init(&ks), 0);
	while (ks.ngroups < KEYSTORE_MAX_GROUPS)
		assert_int_equal(keystore_group_new(&ks, &id), 0);
	make_rec(&r, 1, 0);
	for (uint32_t i = 0; i < KEYSTORE_MAX_RECORDS; i++) {
		be32_put(r.uuid + 12, i); /* ascending: appends */
		assert_int_equal(keystore_add(&ks, &r), 0);
	}
	be32_put(r.uuid + 12, KEYSTORE_MAX_RECORDS);
	assert_int_equal(keystore_add(&ks, &r), KS_ERR_FULL);
	assert_int_equal(keystore_encode(&ks, root_a, 1, 1, &file, &len), 0);
	/* The body limit also holds a full imported-blob list and a full
	 * list of online migrations. */
	assert_int_equal(len, KEYSTORE_HDR_LEN + KEYSTORE_MAX_BODY - 4 -
				      KEYSTORE_IMPORT_ID_LEN * KEYSTORE_MAX_IMPORTS -
				      4 - KEYSTORE_TX_LEN * KEYSTORE_MAX_TX +
				      KEYSTORE_TAG_LEN);
	assert_int_equal(keystore_decode(file, len, root_a, &out, &m), 0);
	assert_int_equal(out.nrecs, KEYSTORE_MAX_RECORDS);
	keystore_free(&out);
	keystore_free(&ks);
	free(file);
}

static void freshness_rule(void **state)
{
	(void)state;
	assert_int_equal(keystore_check_fresh(10, 10), 0);
	assert_int_equal(keystore_check_fresh(11, 10), KS_FRESH_PENDING);
	assert_int_equal(keystore_check_fresh(9, 10), KS_ERR_ROLLBACK);
	assert_int_equal(keystore_check_fresh(0, 10), KS_ERR_ROLLBACK);
	assert_int_equal(keystore_check_fresh(12, 10), KS_ERR_AHEAD);
	assert_int_equal(keystore_check_fresh(UINT64_MAX, 10), KS_ERR_AHEAD);
	/* At the ends of the counter's range nothing wraps. */
	assert_int_equal(keystore_check_fresh(0, UINT64_MAX), KS_ERR_ROLLBACK);
	assert_int_equal(keystore_check_fresh(UINT64_MAX, UINT64_MAX), 0);
	assert_int_equal(keystore_check_fresh(UINT64_MAX, UINT64_MAX - 1),
			 KS_FRESH_PENDING);
	assert_int_equal(keystore_check_fresh(1, 0), KS_FRESH_PENDING);
}

static void error_strings_are_distinct(void **state)
{
	static const int ok[] = { KS_OK, KS_FRESH_PENDING };

	(void)state;
	for (int a = KS_ERR_LAST; a <= KS_ERR_TRUNCATED; a++) {
		assert_string_not_equal(keystore_strerror(a), "unknown error");
		for (size_t i = 0; i < 2; i++)
			assert_string_not_equal(keystore_strerror(a),
						keystore_strerror(ok[i]));
		for (int b = a + 1; b <= KS_ERR_TRUNCATED; b++)
			assert_string_not_equal(keystore_strerror(a), keystore_strerror(b));
	}
	assert_string_not_equal(keystore_strerror(KS_OK),
				keystore_strerror(KS_FRESH_PENDING));
	assert_string_equal(keystore_strerror(-100), "unknown error");
}

/* No result is a negative errno (the kernel's are -4095..-1) or a state
 * file verdict; the errors stay negative, which keystore_check_fresh's
 * callers rely on (KS_FRESH_PENDING is positive and not an error). */
static void errors_are_their_own_domain(void **state)
{
	(void)state;
	for (int a = KS_ERR_LAST; a <= KS_ERR_TRUNCATED; a++) {
		assert_true(a < -4095);
		assert_true(keystore_is_err(a));
		assert_false(statefile_is_err(a));
	}
	for (int a = SF_ERR_LAST; a <= SF_ERR_TRUNCATED; a++)
		assert_false(keystore_is_err(a));
	for (int e = 0; e <= 4095; e++)
		assert_false(keystore_is_err(-e));
	assert_false(keystore_is_err(KS_FRESH_PENDING));
}


/* ---- the slot file ---- */

static uint8_t *env(uint64_t gen, uint64_t nvc, int nrecs, size_t *len)
{
	struct keystore ks;
	struct keystore_rec r;
	uint8_t *out;

	assert_int_equal(keystore_init(&ks), 0);
	for (int i = 0; i < nrecs; i++) {
		make_rec(&r, (uint8_t)(i + 1), 0);
		assert_int_equal(keystore_add(&ks, &r), 0);
	}
	assert_int_equal(keystore_encode(&ks, root_a, gen, nvc, &out, len), 0);
	keystore_free(&ks);
	return out;
}

/* A slot file with a in slot 0 and b (if any) in slot 1. */
static uint8_t *slots(uint32_t ss, const uint8_t *a, size_t alen,
		      const uint8_t *b, size_t blen, size_t *len)
{
	uint8_t *f;

	assert_int_equal(keystore_slots_new(ss, a, alen, &f, len), 0);
	if (b)
		memcpy(f + keystore_slot_off(ss, 1), b, blen);
	return f;
}

static int slots_load(const uint8_t *f, size_t len, struct keystore_meta *m,
		      struct keystore_slots *info)
{
	struct keystore ks;
	int rc = keystore_slots_decode(f, len, root_a, &ks, m, info);

	if (!rc)
		keystore_free(&ks);
	return rc;
}

static void slot_size_rule(void **state)
{
	(void)state;
	assert_int_equal(keystore_slot_size_for(0), KSSLOTS_MIN_SLOT);
	assert_int_equal(keystore_slot_size_for(KSSLOTS_MIN_SLOT / 2),
			 KSSLOTS_MIN_SLOT);
	assert_int_equal(keystore_slot_size_for(KSSLOTS_MIN_SLOT / 2 + 1),
			 KSSLOTS_MIN_SLOT + KSSLOTS_ALIGN);
	assert_int_equal(keystore_slot_size_for(KSSLOTS_MAX_SLOT),
			 KSSLOTS_MAX_SLOT);
	assert_int_equal(keystore_slot_size_for(KSSLOTS_MAX_SLOT + 1), 0);
	/* The largest store fits the largest slot. */
	assert_true(KEYSTORE_HDR_LEN + KEYSTORE_MAX_BODY + KEYSTORE_TAG_LEN <=
		    KSSLOTS_MAX_SLOT);
}

static void slots_newest_authentic_wins(void **state)
{
	size_t alen, blen, len;
	uint8_t *a = env(5, 3, 2, &alen), *b = env(6, 4, 3, &blen), *f;
	struct keystore_meta m;
	struct keystore_slots info;

	(void)state;
	f = slots(KSSLOTS_MIN_SLOT, a, alen, b, blen, &len);
	assert_true(keystore_is_slots(f, len));
	assert_false(keystore_is_slots(a, alen));
	assert_int_equal(slots_load(f, len, &m, &info), 0);
	assert_int_equal(info.winner, 1);
	assert_int_equal(m.generation, 6);
	assert_int_equal(m.nv_counter, 4);
	assert_int_equal(info.used[0], alen);
	assert_int_equal(info.used[1], blen);
	free(f);
	f = slots(KSSLOTS_MIN_SLOT, b, blen, a, alen, &len);
	assert_int_equal(slots_load(f, len, &m, &info), 0);
	assert_int_equal(info.winner, 0);
	assert_int_equal(m.generation, 6);
	/* Only one slot written (a new file): it wins; the other is
	 * unauthentic, all zero: nothing in it to cover. */
	free(f);
	f = slots(KSSLOTS_MIN_SLOT, a, alen, NULL, 0, &len);
	assert_int_equal(slots_load(f, len, &m, &info), 0);
	assert_int_equal(info.winner, 0);
	assert_int_equal(info.err[1], KS_ERR_MAGIC);
	assert_int_equal(info.used[1], 0);
	/* Cut short inside slot 1: torn, slot 0 still wins. */
	assert_int_equal(slots_load(f, len - 1, &m, &info), 0);
	assert_int_equal(slots_load(f, keystore_slot_off(KSSLOTS_MIN_SLOT, 1),
				    &m, &info), 0);
	free(f);
	f = slots(KSSLOTS_MIN_SLOT, a, alen, b, blen, &len);
	assert_int_equal(slots_load(f, keystore_slot_off(KSSLOTS_MIN_SLOT, 1) +
					       blen - 1,
				    &m, &info), 0);
	assert_int_equal(info.winner, 0);
	assert_int_equal(info.err[1], KS_ERR_TRUNCATED);
	/* A torn slot: covered up to its last nonzero byte. */
	assert_true(info.used[1] <= blen - 1 && info.used[1] > blen - 64);
	free(f);
	free(a);
	free(b);
}

static void slots_no_writer_leaves_these(void **state)
{
	size_t alen, blen, clen, len;
	uint8_t *a = env(5, 3, 1, &alen), *b = env(5, 3, 2, &blen),
		*c = env(6, 2, 1, &clen), *f;
	struct keystore_meta m;
	struct keystore_slots info;

	(void)state;
	/* Two authentic slots of one generation. */
	f = slots(KSSLOTS_MIN_SLOT, a, alen, b, blen, &len);
	assert_int_equal(slots_load(f, len, &m, &info), KS_ERR_SLOTS);
	free(f);
	/* The newer bound to a lower counter than the older. */
	f = slots(KSSLOTS_MIN_SLOT, a, alen, c, clen, &len);
	assert_int_equal(slots_load(f, len, &m, &info), KS_ERR_SLOTS);
	free(f);
	free(a);
	free(b);
	free(c);
}

static void slots_both_bad_and_header(void **state)
{
	size_t alen, blen, len;
	uint8_t *a = env(5, 3, 2, &alen), *b = env(6, 3, 2, &blen), *f, *g;
	struct keystore_meta m;
	struct keystore_slots info;
	const uint32_t ss = KSSLOTS_MIN_SLOT;

	(void)state;
	f = slots(ss, a, alen, b, blen, &len);
	g = malloc(len);
	/* Both slots modified. */
	memcpy(g, f, len);
	g[keystore_slot_off(ss, 0) + alen - 1] ^= 1;
	g[keystore_slot_off(ss, 1) + KEYSTORE_HDR_LEN] ^= 1;
	assert_int_equal(slots_load(g, len, &m, &info), KS_ERR_NO_SLOT);
	assert_int_equal(info.err[0], KS_ERR_AUTH);
	assert_int_equal(info.err[1], KS_ERR_AUTH);
	/* A higher generation written over the newest's header: its tag
	 * no longer verifies, and the older slot wins. */
	memcpy(g, f, len);
	be64_put(g + keystore_slot_off(ss, 1) + 12, 1000);
	assert_int_equal(slots_load(g, len, &m, &info), 0);
	assert_int_equal(m.generation, 5);
	assert_int_equal(info.err[1], KS_ERR_AUTH);
	/* A length field pointing past the slot. */
	memcpy(g, f, len);
	be32_put(g + keystore_slot_off(ss, 1) + KEYSTORE_HDR_LEN - 4, ss);
	assert_int_equal(slots_load(g, len, &m, &info), 0);
	assert_int_equal(info.err[1], KS_ERR_TRUNCATED);
	/* A slot of a newer format version: a newer writer's, never
	 * skipped in favour of the older slot. */
	memcpy(g, f, len);
	g[keystore_slot_off(ss, 1) + 9] = 2;
	assert_int_equal(slots_load(g, len, &m, &info), KS_ERR_VERSION);
	memcpy(g, f, len);
	g[keystore_slot_off(ss, 0) + 9] = 2;
	assert_int_equal(slots_load(g, len, &m, &info), KS_ERR_VERSION);
	/* The header. */
	assert_int_equal(slots_load(f, KSSLOTS_HDR_LEN - 1, &m, &info),
			 KS_ERR_TRUNCATED);
	memcpy(g, f, len);
	g[9] = 2;
	assert_int_equal(slots_load(g, len, &m, &info), KS_ERR_VERSION);
	memcpy(g, f, len);
	g[11] = 3;
	assert_int_equal(slots_load(g, len, &m, &info), KS_ERR_SLOTS);
	memcpy(g, f, len);
	be32_put(g + 12, ss + 512);
	assert_int_equal(slots_load(g, len, &m, &info), KS_ERR_SLOTS);
	memcpy(g, f, len);
	be32_put(g + 12, 0);
	assert_int_equal(slots_load(g, len, &m, &info), KS_ERR_SLOTS);
	memcpy(g, f, len);
	g[KSSLOTS_HDR_LEN - 1] = 1;
	assert_int_equal(slots_load(g, len, &m, &info), KS_ERR_SLOTS);
	memcpy(g, f, len);
	g[0] = 'X';
	assert_int_equal(slots_load(g, len, &m, &info), KS_ERR_MAGIC);
	free(g);
	free(f);
	free(a);
	free(b);
}

/* A new envelope torn over an old one in the same slot at every 512-byte
 * boundary: the other slot's store wins until the whole envelope is in. */
static void slots_torn_at_every_sector(void **state)
{
	size_t alen, blen, nlen, len;
	uint8_t *a = env(5, 3, 10, &alen), *b = env(6, 3, 20, &blen),
		*n = env(7, 4, 30, &nlen), *f, *g;
	struct keystore_meta m;
	struct keystore_slots info;
	const uint32_t ss = KSSLOTS_MIN_SLOT;
	size_t nsec = (nlen + 511) / 512, off = keystore_slot_off(ss, 0);

	(void)state;
	assert_true(nsec >= 4);
	f = slots(ss, a, alen, b, blen, &len);
	g = malloc(len);
	for (size_t k = 0; k <= nsec; k++) {
		size_t cut = k * 512 < nlen ? k * 512 : nlen;

		/* front k sectors new */
		memcpy(g, f, len);
		memcpy(g + off, n, cut);
		assert_int_equal(slots_load(g, len, &m, &info), 0);
		assert_int_equal(m.generation, k == nsec ? 7 : 6);
		/* back sectors from k new */
		memcpy(g, f, len);
		memcpy(g + off + cut, n + cut, nlen - cut);
		assert_int_equal(slots_load(g, len, &m, &info), 0);
		assert_int_equal(m.generation, k == 0 ? 7 : 6);
	}
	free(g);
	free(f);
	free(a);
	free(b);
	free(n);
}

int main(void)
{
#define FX(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
	const struct CMUnitTest tests[] = {
		FX(round_trip_restores_every_record_and_group),
		cmocka_unit_test(empty_store_round_trips),
		cmocka_unit_test(many_records_round_trip_sorted),
		cmocka_unit_test(documented_recipe_decodes),
		cmocka_unit_test(authentic_unknown_version_or_reserved_is_refused),
		cmocka_unit_test(layout0_store_loads_and_is_rewritten_with_ids),
		cmocka_unit_test(records_with_bad_ids_are_refused),
		cmocka_unit_test(uid_alloc_takes_the_lowest_free_one),
		FX(keys_do_not_appear_in_the_file),
		FX(every_flipped_bit_is_refused),
		FX(every_truncation_is_refused),
		FX(trailing_bytes_are_refused),
		FX(ciphertext_length_lies_are_refused),
		FX(wrong_root_key_fails_authentication),
		FX(peek_reads_the_header_without_the_key),
		cmocka_unit_test(authentic_malformed_bodies_are_refused),
		cmocka_unit_test(add_find_del),
		cmocka_unit_test(deleted_record_leaves_no_key_behind),
		cmocka_unit_test(group_ids_grow_and_are_never_reused),
		cmocka_unit_test(group_limits_are_enforced),
		cmocka_unit_test(record_limit_fits_the_body_limit),
		cmocka_unit_test(freshness_rule),
		cmocka_unit_test(error_strings_are_distinct),
		cmocka_unit_test(errors_are_their_own_domain),
		cmocka_unit_test(slot_size_rule),
		cmocka_unit_test(slots_newest_authentic_wins),
		cmocka_unit_test(slots_no_writer_leaves_these),
		cmocka_unit_test(slots_both_bad_and_header),
		cmocka_unit_test(slots_torn_at_every_sector),
	};
#undef FX
	return cmocka_run_group_tests(tests, NULL, NULL);
}
