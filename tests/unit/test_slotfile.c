/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The slot file's parser and load rule (core/proto/statefile.c), with the
 * states a crash can leave (a slot write torn at every 512-byte sector)
 * and states no crash of ours leaves (which are refused).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/bytes.h"
#include "proto/statefile.h"

#define SECTOR 512

static const uint8_t uuid_a[16] = { 0x5c, 0x0b, 0xa5, 0xe4, 0x3b, 0x1f,
				    0x4e, 0x8e, 0x9c, 0x2a, 0x6f, 0x1d,
				    0x2a, 0x3b, 0x4c, 0x5d };
static const uint8_t uuid_b[16] = { 1, 2, 3, 4, 5, 6, 7, 8,
				    9, 10, 11, 12, 13, 14, 15, 16 };

static struct state_keys keys, other_keys;

static void keys_of(uint8_t seed, struct state_keys *k)
{
	uint8_t master[32];

	memset(master, seed, sizeof(master));
	assert_int_equal(state_keys_derive(master, k), 0);
}

static struct statefile_expect expect_a(void)
{
	struct statefile_expect exp;

	memset(&exp, 0, sizeof(exp));
	exp.check_uuid = 1;
	exp.family = 2;
	memcpy(exp.uuid, uuid_a, 16);
	return exp;
}

/* A sealed state of uuid at generation gen, with a permanent blob of
 * permlen bytes whose contents depend on gen. */
static uint8_t *sealed_state(const uint8_t *uuid, uint8_t family, uint64_t gen,
			     size_t permlen, size_t *len)
{
	struct statefile_meta meta = { .family = family, .generation = gen };
	struct statefile_blobs b = { 0 };
	uint8_t *perm = malloc(permlen), *out;

	assert_non_null(perm);
	for (size_t i = 0; i < permlen; i++)
		perm[i] = (uint8_t)(i * 13 + gen);
	memcpy(meta.uuid, uuid, 16);
	b.data[SF_BLOB_PERMANENT] = perm;
	b.len[SF_BLOB_PERMANENT] = (uint32_t)permlen;
	assert_int_equal(statefile_encode(&keys, &meta, &b, &out, len), SF_OK);
	free(perm);
	return out;
}

/* A slot file with generations g0, g1 in slots 0, 1 (0 = empty). */
static uint8_t *slot_file(uint64_t g0, uint64_t g1, size_t permlen,
			  size_t *len)
{
	const uint8_t *parts[SLOTFILE_NSLOTS];
	size_t lens[SLOTFILE_NSLOTS];
	uint8_t *s[2] = { NULL, NULL }, *out;
	uint64_t g[2] = { g0, g1 };

	for (int i = 0; i < 2; i++) {
		lens[i] = 0;
		if (g[i])
			s[i] = sealed_state(uuid_a, 2, g[i], permlen, &lens[i]);
		parts[i] = s[i];
	}
	assert_int_equal(slotfile_build(&keys, slotfile_slot_size_for(lens[0] > lens[1] ? lens[0] : lens[1]),
					parts, lens, &out, len), SF_OK);
	free(s[0]);
	free(s[1]);
	return out;
}

static enum statefile_err scan_choose(const uint8_t *f, size_t len,
				      int *winner, int *culprit,
				      struct slotfile_view *v)
{
	struct statefile_expect exp = expect_a();
	enum statefile_err rc = slotfile_scan(&keys, f, len, &exp, v);

	if (rc)
		return rc;
	return slotfile_choose(v, winner, culprit);
}

static void newest_valid_slot_wins(void **state)
{
	struct slotfile_view v;
	int w, c;
	size_t len;
	uint8_t *f;

	(void)state;
	f = slot_file(5, 4, 3000, &len);
	assert_int_equal(len, SLOTFILE_HDR_LEN + 2 * SLOTFILE_MIN_SLOT);
	assert_int_equal(scan_choose(f, len, &w, &c, &v), SF_OK);
	assert_int_equal(w, 0);
	assert_int_equal(v.slot[0].generation, 5);
	assert_int_equal(v.slot[1].kind, SLOT_VALID);
	free(f);
	f = slot_file(6, 7, 3000, &len);
	assert_int_equal(scan_choose(f, len, &w, &c, &v), SF_OK);
	assert_int_equal(w, 1);
	free(f);
	/* One empty slot: a new file, or just after growth. */
	f = slot_file(1, 0, 3000, &len);
	assert_int_equal(scan_choose(f, len, &w, &c, &v), SF_OK);
	assert_int_equal(w, 0);
	assert_int_equal(v.slot[1].kind, SLOT_EMPTY);
	free(f);
}

/*
 * Slot 0 holds generation 10 (the last acknowledged); generation 11 is
 * being written over slot 1's generation 9.  Every way the write can be
 * cut at sector granularity: a prefix of k sectors, and every single
 * sector missing.  The load takes 10, or 11 only when all of it landed.
 */
static void a_torn_write_at_every_sector_loads_the_acknowledged_state(void **state)
{
	struct slotfile_view v;
	size_t len, nlen;
	uint8_t *before, *after, *mix;
	uint32_t slot_size;
	int w, c;

	(void)state;
	/* Sizes differ so that the old and new lengths tear differently. */
	before = slot_file(10, 9, 5000, &len);
	slot_size = be32_get(before + 12);
	{
		uint8_t *s11 = sealed_state(uuid_a, 2, 11, 7000, &nlen);
		assert_true(nlen <= slot_size);
		after = malloc(len);
		memcpy(after, before, len);
		memcpy(after + SLOTFILE_HDR_LEN + slot_size, s11, nlen);
		free(s11);
	}
	mix = malloc(len);
	size_t first = (SLOTFILE_HDR_LEN + slot_size) / SECTOR;
	size_t nsec = (nlen + SECTOR - 1) / SECTOR;
	for (size_t k = 0; k <= nsec; k++) {
		memcpy(mix, before, len);
		memcpy(mix + first * SECTOR, after + first * SECTOR, k * SECTOR);
		assert_int_equal(scan_choose(mix, len, &w, &c, &v), SF_OK);
		assert_int_equal(v.slot[w].generation, k == nsec ? 11 : 10);
		assert_int_equal(w, k == nsec ? 1 : 0);
	}
	for (size_t j = 0; j < nsec; j++) {
		memcpy(mix, after, len);
		memcpy(mix + (first + j) * SECTOR, before + (first + j) * SECTOR,
		       SECTOR);
		assert_int_equal(scan_choose(mix, len, &w, &c, &v), SF_OK);
		assert_int_equal(w, 0);
		assert_int_equal(v.slot[1].kind, SLOT_TORN);
	}
	free(before);
	free(after);
	free(mix);
}

static void both_slots_torn_is_refused(void **state)
{
	struct slotfile_view v;
	size_t len;
	int w, c;
	uint8_t *f = slot_file(3, 4, 2000, &len);

	(void)state;
	f[SLOTFILE_HDR_LEN + 700] ^= 1;
	f[SLOTFILE_HDR_LEN + SLOTFILE_MIN_SLOT + 700] ^= 1;
	assert_int_equal(scan_choose(f, len, &w, &c, &v), SF_ERR_AUTH);
	assert_int_equal(w, -1);
	assert_true(c == 0 || c == 1);
	free(f);
}

static void a_higher_generation_with_a_bad_tag(void **state)
{
	struct slotfile_view v;
	size_t len;
	int w, c;
	uint8_t *f = slot_file(4, 5, 2000, &len);
	uint8_t *s1 = f + SLOTFILE_HDR_LEN + SLOTFILE_MIN_SLOT;

	(void)state;
	/* Generation 5 does not authenticate: a write of 5 cut short. */
	s1[1000] ^= 0x80;
	assert_int_equal(scan_choose(f, len, &w, &c, &v), SF_OK);
	assert_int_equal(w, 0);
	assert_int_equal(v.slot[1].kind, SLOT_TORN);
	assert_int_equal(v.slot[1].generation, 5);
	/* A slot claiming generation 9 over 4 is no crash of ours. */
	be64_put(s1 + 32, 9);
	assert_int_equal(scan_choose(f, len, &w, &c, &v), SF_ERR_AUTH);
	assert_int_equal(c, 1);
	assert_int_equal(w, -1);
	free(f);
}

static void another_vtpm_or_family_is_refused(void **state)
{
	const uint8_t *parts[2];
	size_t lens[2], len;
	struct slotfile_view v;
	uint8_t *good, *bad, *f;
	int w, c;

	(void)state;
	good = sealed_state(uuid_a, 2, 7, 1000, &lens[0]);
	bad = sealed_state(uuid_b, 2, 6, 1000, &lens[1]);
	parts[0] = good;
	parts[1] = bad;
	assert_int_equal(slotfile_build(&keys, SLOTFILE_MIN_SLOT, parts, lens,
					&f, &len), SF_OK);
	/* The older slot is another vTPM's: refused all the same. */
	assert_int_equal(scan_choose(f, len, &w, &c, &v), SF_ERR_UUID);
	assert_int_equal(c, 1);
	assert_int_equal(v.slot[1].kind, SLOT_BAD);
	free(f);
	free(bad);
	bad = sealed_state(uuid_a, 1, 6, 1000, &lens[1]);
	parts[1] = bad;
	assert_int_equal(slotfile_build(&keys, SLOTFILE_MIN_SLOT, parts, lens,
					&f, &len), SF_OK);
	assert_int_equal(scan_choose(f, len, &w, &c, &v), SF_ERR_FAMILY);
	free(f);
	free(bad);
	free(good);
}

static void truncated_or_extended_files_are_refused(void **state)
{
	struct slotfile_view v;
	size_t len;
	int w, c;
	uint8_t *f = slot_file(2, 1, 1000, &len), *big;

	(void)state;
	for (size_t cut = 0; cut < len; cut += SECTOR) {
		enum statefile_err rc = scan_choose(f, cut, &w, &c, &v);
		assert_int_equal(rc, SF_ERR_TRUNCATED);
	}
	assert_int_equal(scan_choose(f, len - 1, &w, &c, &v), SF_ERR_TRUNCATED);
	big = calloc(1, len + SECTOR);
	memcpy(big, f, len);
	assert_int_equal(scan_choose(big, len + SECTOR, &w, &c, &v), SF_ERR_FORMAT);
	assert_int_equal(scan_choose(f, len, &w, &c, &v), SF_OK);
	free(big);
	free(f);
}

static void oversized_length_fields_are_refused(void **state)
{
	struct statefile_expect exp = expect_a();
	struct slotfile_view v;
	size_t len;
	int w, c;
	uint8_t *f = slot_file(2, 1, 1000, &len);
	uint8_t *s1 = f + SLOTFILE_HDR_LEN + SLOTFILE_MIN_SLOT;
	static const uint32_t sizes[] = { 0, 4095, SLOTFILE_MAX_SLOT + 4096,
					  0xfffff000u, SLOTFILE_MIN_SLOT - 4096 };

	(void)state;
	/* A sealed length past the slot's end. */
	be32_put(s1 + STATEFILE_HDR_LEN - 4,
		 SLOTFILE_MIN_SLOT - STATEFILE_HDR_LEN - STATEFILE_TAG_LEN + 1);
	assert_int_equal(scan_choose(f, len, &w, &c, &v), SF_ERR_FORMAT);
	assert_int_equal(c, 1);
	be32_put(s1 + STATEFILE_HDR_LEN - 4, 0xffffffffu);
	assert_int_equal(scan_choose(f, len, &w, &c, &v), SF_ERR_FORMAT);
	free(f);
	/* Authentic headers (MAC recomputed) with impossible layouts. */
	f = slot_file(2, 1, 1000, &len);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		be32_put(f + 12, sizes[i]);
		slotfile_header_seal(&keys, f);
		assert_int_equal(slotfile_scan(&keys, f, len, &exp, &v),
				 SF_ERR_FORMAT);
	}
	be32_put(f + 12, SLOTFILE_MIN_SLOT);
	be16_put(f + 10, 3);
	slotfile_header_seal(&keys, f);
	assert_int_equal(slotfile_scan(&keys, f, len, &exp, &v), SF_ERR_FORMAT);
	be16_put(f + 10, 2);
	f[100] = 1; /* reserved */
	slotfile_header_seal(&keys, f);
	assert_int_equal(slotfile_scan(&keys, f, len, &exp, &v), SF_ERR_FORMAT);
	f[100] = 0;
	be16_put(f + 8, 2);
	slotfile_header_seal(&keys, f);
	assert_int_equal(slotfile_scan(&keys, f, len, &exp, &v), SF_ERR_VERSION);
	be16_put(f + 8, 1);
	slotfile_header_seal(&keys, f);
	assert_int_equal(slotfile_scan(&keys, f, len, &exp, &v), SF_OK);
	free(f);
}

static void a_modified_header_or_wrong_key_fails_authentication(void **state)
{
	struct statefile_expect exp = expect_a();
	struct slotfile_view v;
	size_t len;
	uint8_t *f = slot_file(2, 1, 1000, &len);

	(void)state;
	assert_int_equal(slotfile_scan(&other_keys, f, len, &exp, &v),
			 SF_ERR_AUTH);
	for (size_t off = 10; off < SLOTFILE_HDR_LEN; off += 331) {
		f[off] ^= 4;
		assert_int_equal(slotfile_scan(&keys, f, len, &exp, &v),
				 SF_ERR_AUTH);
		f[off] ^= 4;
	}
	f[3] ^= 4;
	assert_int_equal(slotfile_scan(&keys, f, len, &exp, &v), SF_ERR_MAGIC);
	free(f);
}

static void no_state_or_two_of_one_generation_is_refused(void **state)
{
	struct slotfile_view v;
	size_t len;
	int w, c;
	uint8_t *f = slot_file(0, 0, 1000, &len);

	(void)state;
	assert_int_equal(scan_choose(f, len, &w, &c, &v), SF_ERR_FORMAT);
	assert_int_equal(w, -1);
	free(f);
	f = slot_file(3, 3, 1000, &len);
	assert_int_equal(scan_choose(f, len, &w, &c, &v), SF_ERR_FORMAT);
	free(f);
	/* A header that is not zero yet reads as no state: refused. */
	f = slot_file(3, 0, 1000, &len);
	f[SLOTFILE_HDR_LEN + SLOTFILE_MIN_SLOT + 20] = 1;
	assert_int_equal(scan_choose(f, len, &w, &c, &v), SF_ERR_MAGIC);
	assert_int_equal(c, 1);
	free(f);
}

static void the_manager_finds_its_slot_by_hash(void **state)
{
	struct statefile_expect exp = expect_a();
	struct slotfile_view v;
	uint8_t h[32];
	size_t len, n;
	uint8_t *f = slot_file(8, 9, 1000, &len);
	uint8_t *s9 = sealed_state(uuid_a, 2, 9, 1000, &n);

	(void)state;
	assert_int_equal(slotfile_scan(&keys, f, len, &exp, &v), SF_OK);
	memcpy(h, v.slot[0].hash, 32);
	assert_int_equal(slotfile_find_hash(&v, h), 0);
	memcpy(h, v.slot[1].hash, 32);
	assert_int_equal(slotfile_find_hash(&v, h), 1);
	h[0] ^= 1;
	assert_int_equal(slotfile_find_hash(&v, h), -1);
	/* A torn slot is never found, even by its own bytes' hash. */
	f[SLOTFILE_HDR_LEN + 500] ^= 1;
	assert_int_equal(slotfile_scan(&keys, f, len, &exp, &v), SF_OK);
	assert_int_equal(slotfile_find_hash(&v, v.slot[0].hash), -1);
	free(s9);
	free(f);
}

static void slot_sizes(void **state)
{
	(void)state;
	assert_int_equal(slotfile_slot_size_for(1), SLOTFILE_MIN_SLOT);
	assert_int_equal(slotfile_slot_size_for(20000), 40960);
	assert_int_equal(slotfile_slot_size_for(SLOTFILE_MAX_SLOT),
			 SLOTFILE_MAX_SLOT);
	assert_int_equal(slotfile_slot_size_for(SLOTFILE_MAX_SLOT + 1), 0);
	assert_true(slotfile_slot_size_for(STATEFILE_HDR_LEN + STATEFILE_MAX_BODY +
					   STATEFILE_TAG_LEN) >=
		    STATEFILE_HDR_LEN + STATEFILE_MAX_BODY + STATEFILE_TAG_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(newest_valid_slot_wins),
		cmocka_unit_test(a_torn_write_at_every_sector_loads_the_acknowledged_state),
		cmocka_unit_test(both_slots_torn_is_refused),
		cmocka_unit_test(a_higher_generation_with_a_bad_tag),
		cmocka_unit_test(another_vtpm_or_family_is_refused),
		cmocka_unit_test(truncated_or_extended_files_are_refused),
		cmocka_unit_test(oversized_length_fields_are_refused),
		cmocka_unit_test(a_modified_header_or_wrong_key_fails_authentication),
		cmocka_unit_test(no_state_or_two_of_one_generation_is_refused),
		cmocka_unit_test(the_manager_finds_its_slot_by_hash),
		cmocka_unit_test(slot_sizes),
	};

	keys_of(0x31, &keys);
	keys_of(0x32, &other_keys);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
