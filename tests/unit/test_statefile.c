/* SPDX-License-Identifier: BSD-3-Clause */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/bytes.h"
#include "proto/statefile.h"

static const uint8_t uuid_a[16] = { 0x5c, 0x0b, 0xa5, 0xe4, 0x3b, 0x1f, 0x4e, 0x8e,
				    0x9c, 0x2a, 0x6f, 0x1d, 0x2a, 0x3b, 0x4c, 0x5d };
static const uint8_t uuid_b[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

struct fixture {
	struct state_keys keys;
	uint8_t *file;
	size_t len;
	uint8_t perm[300], vol[40];
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	uint8_t master[32];
	struct statefile_meta meta = { .family = 2, .generation = 7 };
	struct statefile_blobs b = { 0 };

	for (int i = 0; i < 32; i++)
		master[i] = (uint8_t)i;
	assert_int_equal(state_keys_derive(master, &fx->keys), 0);
	memcpy(meta.uuid, uuid_a, 16);
	for (size_t i = 0; i < sizeof(fx->perm); i++)
		fx->perm[i] = (uint8_t)(i * 7);
	memset(fx->vol, 0xaa, sizeof(fx->vol));
	b.data[SF_BLOB_PERMANENT] = fx->perm;
	b.len[SF_BLOB_PERMANENT] = sizeof(fx->perm);
	b.data[SF_BLOB_VOLATILE] = fx->vol;
	b.len[SF_BLOB_VOLATILE] = sizeof(fx->vol);
	assert_int_equal(statefile_encode(&fx->keys, &meta, &b, &fx->file, &fx->len), 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	free(fx->file);
	free(fx);
	return 0;
}

static struct statefile_expect expect_a(uint64_t min_gen)
{
	struct statefile_expect e = { .check_uuid = 1, .family = 2,
				      .min_generation = min_gen };
	memcpy(e.uuid, uuid_a, 16);
	return e;
}

static void round_trip_restores_every_blob(void **state)
{
	struct fixture *fx = *state;
	struct statefile_expect e = expect_a(7);
	struct statefile_meta m;
	struct statefile_blobs out;

	assert_int_equal(fx->len, STATEFILE_HDR_LEN + 5 + 300 + 5 + 40 + STATEFILE_TAG_LEN);
	assert_int_equal(statefile_decode(&fx->keys, fx->file, fx->len, &e, &m, &out), 0);
	assert_int_equal(m.generation, 7);
	assert_memory_equal(m.uuid, uuid_a, 16);
	assert_int_equal(out.len[SF_BLOB_PERMANENT], 300);
	assert_memory_equal(out.data[SF_BLOB_PERMANENT], fx->perm, 300);
	assert_memory_equal(out.data[SF_BLOB_VOLATILE], fx->vol, 40);
	assert_null(out.data[SF_BLOB_SAVESTATE]);
	statefile_blobs_free(&out);
}

static void plaintext_does_not_appear_in_the_file(void **state)
{
	struct fixture *fx = *state;

	assert_null(memmem(fx->file, fx->len, fx->perm + 10, 16));
}

static void every_flipped_byte_is_rejected(void **state)
{
	struct fixture *fx = *state;
	struct statefile_expect e = expect_a(0);
	struct statefile_meta m;
	struct statefile_blobs out;

	for (size_t i = 0; i < fx->len; i++) {
		for (int bit = 0; bit < 8; bit += 3) {
			fx->file[i] ^= (uint8_t)(1u << bit);
			int rc = statefile_decode(&fx->keys, fx->file, fx->len, &e, &m, &out);
			fx->file[i] ^= (uint8_t)(1u << bit);
			if (rc == 0)
				fail_msg("flip of byte %zu bit %d was accepted", i, bit);
			/* Each region fails for its own reason. */
			if (i < 8)
				assert_int_equal(rc, SF_ERR_MAGIC);
			else if (i < 10)
				assert_int_equal(rc, SF_ERR_VERSION);
			else if (i >= 52 && i < 56)
				assert_true(rc == SF_ERR_TRUNCATED || rc == SF_ERR_FORMAT);
			else
				assert_int_equal(rc, SF_ERR_AUTH);
		}
	}
}

static void wrong_key_fails_authentication(void **state)
{
	struct fixture *fx = *state;
	struct statefile_expect e = expect_a(0);
	struct state_keys other;
	uint8_t master[32] = { 0 };
	struct statefile_meta m;
	struct statefile_blobs out;

	assert_int_equal(state_keys_derive(master, &other), 0);
	assert_int_equal(statefile_decode(&other, fx->file, fx->len, &e, &m, &out),
			 SF_ERR_AUTH);
}

static void another_vtpms_file_is_refused(void **state)
{
	struct fixture *fx = *state;
	struct statefile_expect e = expect_a(0);
	struct statefile_meta m;
	struct statefile_blobs out;

	memcpy(e.uuid, uuid_b, 16);
	assert_int_equal(statefile_decode(&fx->keys, fx->file, fx->len, &e, &m, &out),
			 SF_ERR_UUID);
	/* Adopting (no expected UUID) accepts it and reports its UUID. */
	e.check_uuid = 0;
	assert_int_equal(statefile_decode(&fx->keys, fx->file, fx->len, &e, &m, &out), 0);
	assert_memory_equal(m.uuid, uuid_a, 16);
	statefile_blobs_free(&out);
}

static void every_truncation_is_refused(void **state)
{
	struct fixture *fx = *state;
	struct statefile_expect e = expect_a(0);
	struct statefile_meta m;
	struct statefile_blobs out;

	for (size_t n = 0; n < fx->len; n++) {
		int rc = statefile_decode(&fx->keys, fx->file, n, &e, &m, &out);
		assert_int_equal(rc, SF_ERR_TRUNCATED);
	}
}

static void trailing_bytes_are_refused(void **state)
{
	struct fixture *fx = *state;
	struct statefile_expect e = expect_a(0);
	struct statefile_meta m;
	struct statefile_blobs out;
	uint8_t *longer = malloc(fx->len + 1);

	memcpy(longer, fx->file, fx->len);
	longer[fx->len] = 0;
	assert_int_equal(statefile_decode(&fx->keys, longer, fx->len + 1, &e, &m, &out),
			 SF_ERR_FORMAT);
	free(longer);
}

static void older_generation_is_refused_as_rollback(void **state)
{
	struct fixture *fx = *state;
	struct statefile_expect e = expect_a(8);
	struct statefile_meta m;
	struct statefile_blobs out;

	assert_int_equal(statefile_decode(&fx->keys, fx->file, fx->len, &e, &m, &out),
			 SF_ERR_STALE);
	assert_int_equal(m.generation, 7);
}

static void other_tpm_family_is_refused(void **state)
{
	struct fixture *fx = *state;
	struct statefile_expect e = expect_a(0);
	struct statefile_meta m;
	struct statefile_blobs out;

	e.family = 1;
	assert_int_equal(statefile_decode(&fx->keys, fx->file, fx->len, &e, &m, &out),
			 SF_ERR_FAMILY);
}

/* Bodies that authenticate but lie about their records. */
static void authentic_malformed_bodies_are_refused(void **state)
{
	static const struct {
		const char *what;
		uint8_t body[16];
		size_t len;
	} cases[] = {
		{ "record header cut short", { 1, 0, 0 }, 3 },
		{ "length beyond the body", { 1, 0, 0, 0, 200, 9, 9, 9 }, 8 },
		{ "type 0", { 0, 0, 0, 0, 1, 9 }, 6 },
		{ "unknown type 5 (4 is the resume tag)", { 5, 0, 0, 0, 1, 9 }, 6 },
		{ "type twice", { 1, 0, 0, 0, 1, 9, 1, 0, 0, 0, 1, 8 }, 12 },
		{ "no permanent blob is still well-formed here", { 2, 0, 0, 0, 0 }, 5 },
	};
	struct fixture *fx = *state;
	struct statefile_expect e = expect_a(0);
	struct statefile_meta meta = { .family = 2, .generation = 1 };
	struct statefile_meta m;
	struct statefile_blobs out;

	memcpy(meta.uuid, uuid_a, 16);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *file;
		size_t len;
		int rc;

		assert_int_equal(statefile_seal(&fx->keys, &meta, cases[i].body,
						cases[i].len, &file, &len), 0);
		rc = statefile_decode(&fx->keys, file, len, &e, &m, &out);
		free(file);
		if (i == sizeof(cases) / sizeof(cases[0]) - 1) {
			/* The engine, not the format, requires permanent state. */
			assert_int_equal(rc, 0);
			statefile_blobs_free(&out);
			continue;
		}
		if (rc != SF_ERR_FORMAT)
			fail_msg("%s: got %d", cases[i].what, rc);
	}
}

static void watermark_round_trip_and_tamper(void **state)
{
	struct fixture *fx = *state;
	uint8_t w[WATERMARK_LEN];
	uint64_t g = 0;

	watermark_encode(&fx->keys, uuid_a, 42, w);
	assert_int_equal(watermark_decode(&fx->keys, w, sizeof(w), uuid_a, &g), 0);
	assert_int_equal(g, 42);
	assert_int_equal(watermark_decode(&fx->keys, w, sizeof(w), uuid_b, &g), SF_ERR_UUID);
	assert_int_equal(watermark_decode(&fx->keys, w, 63, uuid_a, &g), SF_ERR_TRUNCATED);
	for (size_t i = 8; i < sizeof(w); i++) {
		w[i] ^= 1;
		assert_int_equal(watermark_decode(&fx->keys, w, sizeof(w), uuid_a, &g),
				 SF_ERR_AUTH);
		w[i] ^= 1;
	}
	w[0] ^= 1;
	assert_int_equal(watermark_decode(&fx->keys, w, sizeof(w), uuid_a, &g), SF_ERR_MAGIC);
}

static void error_strings_are_distinct(void **state)
{
	(void)state;
	for (int a = SF_ERR_LAST; a <= SF_ERR_TRUNCATED; a++) {
		assert_string_not_equal(statefile_strerror(a), "unknown error");
		assert_string_not_equal(statefile_strerror(a), statefile_strerror(SF_OK));
		for (int b = a + 1; b <= SF_ERR_TRUNCATED; b++)
			assert_string_not_equal(statefile_strerror(a), statefile_strerror(b));
	}
}

/* Issue 11: SF_ERR_TRUNCATED was -1 == -EPERM and SF_ERR_MAGIC -2 ==
 * -ENOENT, so an int holding either domain was ambiguous.  Now no code
 * is a negative errno (the kernel's are -4095..-1), and an errno is not
 * taken for a verdict. */
static void errors_never_equal_a_negative_errno(void **state)
{
	(void)state;
	for (int a = SF_ERR_LAST; a <= SF_ERR_TRUNCATED; a++) {
		assert_true(a < -4095);
		assert_true(statefile_is_err(a));
	}
	for (int e = 0; e <= 4095; e++) {
		assert_false(statefile_is_err(-e));
		assert_string_equal(statefile_strerror(-e),
				    e ? "unknown error" : "ok");
	}
	assert_int_not_equal(SF_ERR_TRUNCATED, -EPERM);
	assert_int_not_equal(SF_ERR_MAGIC, -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(round_trip_restores_every_blob, setup, teardown),
		cmocka_unit_test_setup_teardown(plaintext_does_not_appear_in_the_file, setup, teardown),
		cmocka_unit_test_setup_teardown(every_flipped_byte_is_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(wrong_key_fails_authentication, setup, teardown),
		cmocka_unit_test_setup_teardown(another_vtpms_file_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(every_truncation_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(trailing_bytes_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(older_generation_is_refused_as_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(other_tpm_family_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(authentic_malformed_bodies_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(watermark_round_trip_and_tamper, setup, teardown),
		cmocka_unit_test(error_strings_are_distinct),
		cmocka_unit_test(errors_never_equal_a_negative_errno),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
