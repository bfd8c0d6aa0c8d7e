/* SPDX-License-Identifier: BSD-3-Clause */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lib/bytes.h"
#include "proto/tpmframe.h"

static const uint8_t getrandom[] = { 0x80, 0x01, 0, 0, 0, 12, 0, 0, 1, 0x7b, 0, 16 };

static void raw_frame_complete_is_returned_whole(void **state)
{
	struct tpmframe f;

	(void)state;
	assert_int_equal(tpmframe_parse(getrandom, sizeof(getrandom), 4096, &f), 1);
	assert_int_equal(f.kind, TPMFRAME_RAW);
	assert_int_equal(f.locality, -1);
	assert_int_equal(f.cmd_off, 0);
	assert_int_equal(f.cmd_len, 12);
	assert_int_equal(f.consumed, 12);
}

static void every_prefix_of_a_frame_needs_more(void **state)
{
	struct tpmframe f;

	(void)state;
	for (size_t n = 0; n < sizeof(getrandom); n++)
		assert_int_equal(tpmframe_parse(getrandom, n, 4096, &f),
				 TPMFRAME_NEED_MORE);
}

static void pipelined_frames_are_taken_one_at_a_time(void **state)
{
	uint8_t two[24];
	struct tpmframe f;

	(void)state;
	memcpy(two, getrandom, 12);
	memcpy(two + 12, getrandom, 12);
	assert_int_equal(tpmframe_parse(two, sizeof(two), 4096, &f), 1);
	assert_int_equal(f.consumed, 12);
}

static void size_below_header_is_rejected(void **state)
{
	uint8_t b[12];
	struct tpmframe f;

	(void)state;
	for (uint32_t sz = 0; sz < TPM_HEADER_LEN; sz++) {
		memcpy(b, getrandom, sizeof(b));
		be32_put(b + 2, sz);
		assert_int_equal(tpmframe_parse(b, sizeof(b), 4096, &f),
				 TPMFRAME_ERR_SIZE_SMALL);
	}
}

static void size_above_buffer_is_rejected_before_the_body_arrives(void **state)
{
	uint8_t b[10];
	struct tpmframe f;

	(void)state;
	memcpy(b, getrandom, sizeof(b));
	be32_put(b + 2, 4097);
	assert_int_equal(tpmframe_parse(b, 6, 4096, &f), TPMFRAME_ERR_SIZE_BIG);
	be32_put(b + 2, 0xffffffffu);
	assert_int_equal(tpmframe_parse(b, 6, 4096, &f), TPMFRAME_ERR_SIZE_BIG);
	be32_put(b + 2, 4096);
	assert_int_equal(tpmframe_parse(b, 10, 4096, &f), TPMFRAME_NEED_MORE);
}

static void mssim_frame_carries_locality_and_size(void **state)
{
	uint8_t b[9 + 12];
	struct tpmframe f;

	(void)state;
	be32_put(b, MSSIM_SEND_COMMAND);
	b[4] = 3;
	be32_put(b + 5, 12);
	memcpy(b + 9, getrandom, 12);
	for (size_t n = 0; n < sizeof(b); n++)
		assert_int_equal(tpmframe_parse(b, n, 4096, &f), TPMFRAME_NEED_MORE);
	assert_int_equal(tpmframe_parse(b, sizeof(b), 4096, &f), 1);
	assert_int_equal(f.kind, TPMFRAME_MSSIM);
	assert_int_equal(f.locality, 3);
	assert_int_equal(f.cmd_off, 9);
	assert_int_equal(f.cmd_len, 12);
	assert_int_equal(f.consumed, 21);
}

static void mssim_hostile_headers_are_rejected(void **state)
{
	uint8_t b[9];
	struct tpmframe f;

	(void)state;
	be32_put(b, MSSIM_SEND_COMMAND);
	b[4] = 5;
	be32_put(b + 5, 12);
	assert_int_equal(tpmframe_parse(b, 9, 4096, &f), TPMFRAME_ERR_LOCALITY);
	b[4] = 0;
	be32_put(b + 5, 3);
	assert_int_equal(tpmframe_parse(b, 9, 4096, &f), TPMFRAME_ERR_SIZE_SMALL);
	be32_put(b + 5, 0x7fffffff);
	assert_int_equal(tpmframe_parse(b, 9, 4096, &f), TPMFRAME_ERR_SIZE_BIG);
}

static void error_response_has_family_tag(void **state)
{
	uint8_t r[10];

	(void)state;
	tpm_error_response(r, 1, 0x142);
	assert_int_equal(be16_get(r), 0x8001);
	assert_int_equal(be32_get(r + 2), 10);
	assert_int_equal(tpm_rsp_code(r, 10), 0x142);
	tpm_error_response(r, 0, 0x19);
	assert_int_equal(be16_get(r), 0x00c4);
	assert_int_equal(tpm_rsp_code(r, 9), 0xffffffffu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(raw_frame_complete_is_returned_whole),
		cmocka_unit_test(every_prefix_of_a_frame_needs_more),
		cmocka_unit_test(pipelined_frames_are_taken_one_at_a_time),
		cmocka_unit_test(size_below_header_is_rejected),
		cmocka_unit_test(size_above_buffer_is_rejected_before_the_body_arrives),
		cmocka_unit_test(mssim_frame_carries_locality_and_size),
		cmocka_unit_test(mssim_hostile_headers_are_rejected),
		cmocka_unit_test(error_response_has_family_tag),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
