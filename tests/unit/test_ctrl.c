/* SPDX-License-Identifier: BSD-3-Clause */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/bytes.h"
#include "unix-socket/swtpm_ctrl.h"

static size_t req(uint8_t *b, uint32_t code, const uint8_t *body, size_t n)
{
	be32_put(b, code);
	if (n)
		memcpy(b + 4, body, n);
	return 4 + n;
}

static void fewer_than_four_bytes_need_more(void **state)
{
	uint8_t b[4] = { 0, 0, 0, 1 };
	struct ctrl_req r;

	(void)state;
	for (size_t n = 0; n < 4; n++)
		assert_int_equal(ctrl_frame(b, n, &r), 0);
	assert_int_equal(ctrl_frame(b, 4, &r), 1);
	assert_int_equal(r.code, CTRL_GET_CAPABILITY);
	assert_int_equal(r.body_len, 0);
}

static void fixed_size_bodies_are_waited_for(void **state)
{
	static const struct {
		uint32_t code;
		size_t need;
	} cases[] = {
		{ CTRL_INIT, 4 },
		{ CTRL_SET_LOCALITY, 1 },
		{ CTRL_RESET_TPMESTABLISHED, 1 },
		{ CTRL_GET_STATEBLOB, 12 },
	};
	uint8_t b[64] = { 0 };
	struct ctrl_req r;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		be32_put(b, cases[i].code);
		for (size_t n = 0; n < cases[i].need; n++)
			assert_int_equal(ctrl_frame(b, 4 + n, &r), 0);
		assert_int_equal(ctrl_frame(b, 4 + cases[i].need, &r), 1);
		assert_int_equal(r.body_len, cases[i].need);
	}
}

static void unsized_commands_take_all_buffered_bytes(void **state)
{
	uint8_t b[16] = { 0 };
	struct ctrl_req r;

	(void)state;
	be32_put(b, CTRL_STOP);
	assert_int_equal(ctrl_frame(b, 9, &r), 1);
	assert_int_equal(r.body_len, 5);
	be32_put(b, 0xdeadbeef);
	assert_int_equal(ctrl_frame(b, 4, &r), 1);
	assert_int_equal(r.code, 0xdeadbeef);
}

static void set_stateblob_waits_for_its_data(void **state)
{
	uint8_t body[12 + 100] = { 0 };
	uint8_t b[4 + sizeof(body)];
	struct ctrl_req r;
	size_t n;

	(void)state;
	be32_put(body + 4, 1);
	be32_put(body + 8, 100);
	n = req(b, CTRL_SET_STATEBLOB, body, sizeof(body));
	for (size_t k = 0; k < n; k++)
		assert_int_equal(ctrl_frame(b, k, &r), 0);
	assert_int_equal(ctrl_frame(b, n, &r), 1);
	assert_int_equal(r.body_len, 112);
}

static void oversized_lengths_complete_at_once_for_rejection(void **state)
{
	uint8_t body[12] = { 0 };
	uint8_t b[16];
	struct ctrl_req r;

	(void)state;
	be32_put(body + 8, 0xffffffffu);
	req(b, CTRL_SET_STATEBLOB, body, 12);
	assert_int_equal(ctrl_frame(b, 16, &r), 1);
	be32_put(body, CTRL_HASH_DATA_MAX + 1);
	req(b, CTRL_HASH_DATA, body, 4);
	assert_int_equal(ctrl_frame(b, 8, &r), 1);
	be32_put(body, 10);
	req(b, CTRL_HASH_DATA, body, 4);
	assert_int_equal(ctrl_frame(b, 8, &r), 0);
}

static void engine_free_commands_are_known(void **state)
{
	(void)state;
	assert_false(ctrl_needs_engine(CTRL_GET_CAPABILITY));
	assert_false(ctrl_needs_engine(CTRL_CANCEL_TPM_CMD));
	assert_false(ctrl_needs_engine(CTRL_SET_DATAFD));
	assert_true(ctrl_needs_engine(CTRL_INIT));
	assert_true(ctrl_needs_engine(CTRL_SET_LOCALITY));
	assert_true(ctrl_needs_engine(0x99));
}

static void result_reply_is_one_big_endian_word(void **state)
{
	struct ctrl_reply r;

	(void)state;
	assert_int_equal(ctrl_reply_res(&r, CTRL_RES_BAD_LOCALITY), 0);
	assert_int_equal(r.len, 4);
	assert_int_equal(be32_get(r.buf), 0x3d);
	free(r.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fewer_than_four_bytes_need_more),
		cmocka_unit_test(fixed_size_bodies_are_waited_for),
		cmocka_unit_test(unsized_commands_take_all_buffered_bytes),
		cmocka_unit_test(set_stateblob_waits_for_its_data),
		cmocka_unit_test(oversized_lengths_complete_at_once_for_rejection),
		cmocka_unit_test(engine_free_commands_are_known),
		cmocka_unit_test(result_reply_is_one_big_endian_word),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
