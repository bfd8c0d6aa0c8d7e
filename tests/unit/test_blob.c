/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/bytes.h"
#include "proto/migblob.h"
#include "proto/swtpm_blob.h"

static void wrap_matches_swtpm_layout(void **state)
{
	/* Header and TLV sizes as swtpm 0.7.1 sends a 1299-byte blob. */
	static const uint8_t expect[] = { 0x02, 0x01, 0x00, 0x0a, 0x00, 0x04,
					  0x00, 0x00, 0x05, 0x29, 0x00, 0x04,
					  0x00, 0x00, 0x05, 0x19, 0x00, 0x01,
					  0x00, 0x00, 0x05, 0x13 };
	uint8_t raw[1299];
	uint8_t *out;
	uint32_t len;
	const uint8_t *r;
	uint32_t rlen;

	(void)state;
	memset(raw, 0x5a, sizeof(raw));
	assert_int_equal(swtpm_blob_wrap(raw, sizeof(raw), &out, &len), 0);
	assert_int_equal(len, sizeof(raw) + SWTPM_BLOB_OVERHEAD);
	assert_memory_equal(out, expect, sizeof(expect));
	assert_int_equal(swtpm_blob_unwrap(out, len, &r, &rlen), 0);
	assert_int_equal(rlen, sizeof(raw));
	assert_memory_equal(r, raw, sizeof(raw));
	free(out);
}

static void plain_envelope_without_migration_flag_is_accepted(void **state)
{
	uint8_t b[10 + 6 + 3] = { 2, 1, 0, 10, 0, 0 };
	const uint8_t *r;
	uint32_t rlen;

	(void)state;
	be32_put(b + 6, sizeof(b));
	be16_put(b + 10, 1);
	be32_put(b + 12, 3);
	memcpy(b + 16, "abc", 3);
	assert_int_equal(swtpm_blob_unwrap(b, sizeof(b), &r, &rlen), 0);
	assert_int_equal(rlen, 3);
	assert_memory_equal(r, "abc", 3);
}

static void hostile_envelopes_are_refused(void **state)
{
	uint8_t raw[16] = { 0 };
	uint8_t *good;
	uint32_t len;
	const uint8_t *r;
	uint32_t rlen;

	(void)state;
	assert_int_equal(swtpm_blob_wrap(raw, sizeof(raw), &good, &len), 0);
	for (uint32_t n = 0; n < len; n++)
		assert_int_not_equal(swtpm_blob_unwrap(good, n, &r, &rlen), 0);
	/* encrypted */
	good[5] |= 1;
	assert_int_equal(swtpm_blob_unwrap(good, len, &r, &rlen),
			 SWTPM_BLOB_ERR_ENCRYPTED);
	good[5] &= (uint8_t)~1;
	/* header size beyond the blob */
	be16_put(good + 2, 0xffff);
	assert_int_equal(swtpm_blob_unwrap(good, len, &r, &rlen),
			 SWTPM_BLOB_ERR_HEADER);
	be16_put(good + 2, 10);
	/* inner length larger than the outer record */
	be32_put(good + 18, 0x7fffffff);
	assert_int_equal(swtpm_blob_unwrap(good, len, &r, &rlen),
			 SWTPM_BLOB_ERR_TLV);
	be32_put(good + 18, 16);
	/* a raw libtpms blob (no envelope) */
	assert_int_not_equal(swtpm_blob_unwrap(good + 22, 16, &r, &rlen), 0);
	/* a newer min_version */
	good[1] = 3;
	assert_int_equal(swtpm_blob_unwrap(good, len, &r, &rlen),
			 SWTPM_BLOB_ERR_HEADER);
	free(good);
}

static void sealed_blob_opens_only_whole_of_its_type_under_its_key(
	void **state)
{
	uint8_t master[32], key[MIGBLOB_KEY_LEN], key2[MIGBLOB_KEY_LEN];
	uint8_t plain[100], *sealed, *out;
	size_t slen, olen;

	(void)state;
	memset(master, 7, sizeof(master));
	assert_int_equal(migblob_derive_key(master, key), 0);
	master[0] ^= 1;
	assert_int_equal(migblob_derive_key(master, key2), 0);
	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (uint8_t)i;
	assert_int_equal(migblob_seal(key, 2, plain, sizeof(plain), &sealed,
				      &slen), 0);
	assert_int_equal(slen, sizeof(plain) + MIGBLOB_OVERHEAD);
	assert_memory_equal(sealed, "VTPMMIG1", 8);
	assert_int_equal(be32_get(sealed + 8), 2);
	assert_int_equal(migblob_open(key, 2, sealed, slen, &out, &olen), 0);
	assert_int_equal(olen, sizeof(plain));
	assert_memory_equal(out, plain, olen);
	free(out);
	/* Every single bit flipped, anywhere: refused. */
	for (size_t i = 0; i < slen; i++) {
		for (int bit = 0; bit < 8; bit++) {
			sealed[i] ^= (uint8_t)(1u << bit);
			assert_int_not_equal(migblob_open(key, 2, sealed, slen,
							  &out, &olen), 0);
			assert_null(out);
			sealed[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* Every shorter length, another type, another key. */
	for (size_t n = 0; n < slen; n++)
		assert_int_not_equal(migblob_open(key, 2, sealed, n, &out,
						  &olen), 0);
	assert_int_equal(migblob_open(key, 1, sealed, slen, &out, &olen),
			 -EPROTO);
	assert_int_equal(migblob_open(key2, 2, sealed, slen, &out, &olen),
			 -EBADMSG);
	assert_int_equal(migblob_open(key, 2, sealed, 10, &out, &olen), -EINVAL);
	free(sealed);
	/* An empty blob seals and opens too. */
	assert_int_equal(migblob_seal(key, 1, plain, 0, &sealed, &slen), 0);
	assert_int_equal(migblob_open(key, 1, sealed, slen, &out, &olen), 0);
	assert_int_equal(olen, 0);
	free(out);
	free(sealed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sealed_blob_opens_only_whole_of_its_type_under_its_key),
		cmocka_unit_test(wrap_matches_swtpm_layout),
		cmocka_unit_test(plain_envelope_without_migration_flag_is_accepted),
		cmocka_unit_test(hostile_envelopes_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
