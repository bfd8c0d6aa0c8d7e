/* SPDX-License-Identifier: BSD-3-Clause */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/bytes.h"
#include "proto/statefile.h"
#include "proto/migblob.h"
#include "proto/swtpm_blob.h"
#include "proto/tpmcodes.h"
#include "unix-socket/swtpm_ctrl.h"
#include "instance/engine.h"
#include "instance/vtpm.h"

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


/* ---- the handlers, against a real engine (in memory, never persisted) ---- */

static struct vtpm the_vtpm;
static struct config the_cfg;

static int engine_group_setup(void **state)
{
	struct engine *e = vtpm_engine(&the_vtpm);

	(void)state;
	config_defaults(&the_cfg);
	the_vtpm.cfg = &the_cfg;
	if (engine_setup(e, TPM_VERSION_2, 0) || engine_power_on(e, false))
		return -1;
	engine_startup_clear(e);
	return 0;
}

static int engine_group_teardown(void **state)
{
	(void)state;
	engine_free(vtpm_engine(&the_vtpm));
	return 0;
}

/* Each test starts with a running TPM, plaintext blobs allowed, no
 * migration key and locality 4 allowed (a standalone socket instance of
 * an operator who opted in). */
static int running(void **state)
{
	struct engine *e = vtpm_engine(&the_vtpm);

	(void)state;
	the_cfg.allow_plaintext_state = true;
	the_vtpm.have_migration_key = false;
	the_vtpm.reject_locality4 = false;
	if (!engine_is_running(e)) {
		if (engine_power_on(e, false))
			return -1;
		engine_startup_clear(e);
	}
	return 0;
}

/* Runs one request; the reply's result word (GET_CAPABILITY has none). */
static uint32_t exec(uint32_t code, const uint8_t *body, size_t n,
		     struct ctrl_reply *out)
{
	static uint8_t b[4 + 16 + 8192];
	struct ctrl_req r;

	assert_true(n <= sizeof(b) - 4);
	assert_int_equal(ctrl_frame(b, req(b, code, body, n), &r), 1);
	assert_int_equal(ctrl_execute(&the_vtpm, &r, out), 0);
	assert_non_null(out->buf);
	assert_true(out->len >= 4);
	return be32_get(out->buf);
}

static uint32_t exec_res(uint32_t code, const uint8_t *body, size_t n)
{
	struct ctrl_reply out;
	uint32_t res = exec(code, body, n, &out);

	assert_int_equal(out.len, 4);
	free(out.buf);
	return res;
}

static void capabilities_are_swtpm_0_7_1s(void **state)
{
	struct ctrl_reply out;

	(void)state;
	exec(CTRL_GET_CAPABILITY, NULL, 0, &out);
	assert_int_equal(out.len, 8);
	assert_int_equal(be64_get(out.buf), CTRL_CAPABILITIES);
	free(out.buf);
}

static void locality_above_four_is_refused(void **state)
{
	uint8_t loc = 5;

	(void)state;
	assert_int_equal(exec_res(CTRL_SET_LOCALITY, &loc, 1),
			 CTRL_RES_BAD_LOCALITY);
	loc = 3;
	assert_int_equal(exec_res(CTRL_SET_LOCALITY, &loc, 1), CTRL_RES_OK);
	loc = 0;
	assert_int_equal(exec_res(CTRL_SET_LOCALITY, &loc, 1), CTRL_RES_OK);
}

static void establishment_bit_resets_from_locality_3_only(void **state)
{
	struct ctrl_reply out;
	uint8_t loc = 0;

	(void)state;
	assert_int_equal(exec(CTRL_GET_TPMESTABLISHED, NULL, 0, &out),
			 CTRL_RES_OK);
	assert_int_equal(out.len, 8);
	free(out.buf);
	assert_int_not_equal(exec_res(CTRL_RESET_TPMESTABLISHED, &loc, 1),
			     CTRL_RES_OK);
	loc = 3;
	assert_int_equal(exec_res(CTRL_RESET_TPMESTABLISHED, &loc, 1),
			 CTRL_RES_OK);
	assert_int_equal(exec(CTRL_GET_TPMESTABLISHED, NULL, 0, &out),
			 CTRL_RES_OK);
	assert_int_equal(out.buf[4], 0);
	free(out.buf);
}

static void hash_sequence_runs_start_data_end(void **state)
{
	uint8_t body[4 + 3] = { 0, 0, 0, 3, 'a', 'b', 'c' };
	uint8_t empty[4] = { 0 };

	(void)state;
	assert_int_equal(exec_res(CTRL_HASH_START, NULL, 0), CTRL_RES_OK);
	assert_int_equal(exec_res(CTRL_HASH_DATA, body, sizeof(body)),
			 CTRL_RES_OK);
	assert_int_equal(exec_res(CTRL_HASH_DATA, empty, sizeof(empty)),
			 CTRL_RES_OK);
	assert_int_equal(exec_res(CTRL_HASH_END, NULL, 0), CTRL_RES_OK);
	/* A body that holds more than it says. */
	be32_put(body, 2);
	assert_int_equal(exec_res(CTRL_HASH_DATA, body, sizeof(body)),
			 CTRL_RES_BAD_PARAMETER);
}

static void buffer_size_changes_only_on_a_stopped_tpm(void **state)
{
	struct engine *e = vtpm_engine(&the_vtpm);
	uint8_t want[4];
	struct ctrl_reply out;
	uint32_t cur, min;

	(void)state;
	be32_put(want, 0);
	assert_int_equal(exec(CTRL_SET_BUFFERSIZE, want, 4, &out), CTRL_RES_OK);
	assert_int_equal(out.len, 16);
	cur = be32_get(out.buf + 4);
	assert_int_equal(cur, engine_buffer_size(e));
	min = be32_get(out.buf + 8);
	assert_true(min < cur);
	assert_true(cur <= be32_get(out.buf + 12));
	free(out.buf);
	be32_put(want, min);
	assert_int_equal(exec_res(CTRL_SET_BUFFERSIZE, want, 4),
			 CTRL_RES_BAD_ORDINAL);
	assert_int_equal(exec_res(CTRL_STOP, NULL, 0), CTRL_RES_OK);
	assert_int_equal(exec(CTRL_SET_BUFFERSIZE, want, 4, &out), CTRL_RES_OK);
	assert_int_equal(be32_get(out.buf + 4), min);
	assert_int_equal(engine_buffer_size(e), min);
	free(out.buf);
	be32_put(want, cur);
	assert_int_equal(exec(CTRL_SET_BUFFERSIZE, want, 4, &out), CTRL_RES_OK);
	free(out.buf);
}

static void running_only_commands_are_refused_when_stopped(void **state)
{
	static const uint32_t codes[] = {
		CTRL_GET_TPMESTABLISHED, CTRL_HASH_START, CTRL_HASH_END,
		CTRL_STORE_VOLATILE,
	};
	uint8_t get[12] = { 0 };

	(void)state;
	assert_int_equal(exec_res(CTRL_STOP, NULL, 0), CTRL_RES_OK);
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		assert_int_equal(exec_res(codes[i], NULL, 0),
				 CTRL_RES_BAD_ORDINAL);
	be32_put(get + 4, SF_BLOB_PERMANENT);
	assert_int_equal(exec_res(CTRL_GET_STATEBLOB, get, 12),
			 CTRL_RES_BAD_ORDINAL);
}

/* GET_STATEBLOB of one type: the unwrapped blob (caller frees). */
static uint8_t *get_blob(uint32_t type, uint32_t *len, uint8_t **wrapped,
			 uint32_t *wlen)
{
	uint8_t body[12] = { 0 };
	struct ctrl_reply out;
	const uint8_t *raw;
	uint32_t n;
	uint8_t *copy;

	be32_put(body + 4, type);
	assert_int_equal(exec(CTRL_GET_STATEBLOB, body, 12, &out), CTRL_RES_OK);
	assert_int_equal(be32_get(out.buf + 4), 0); /* not encrypted */
	n = be32_get(out.buf + 8);
	assert_int_equal(be32_get(out.buf + 12), n);
	assert_int_equal(out.len, 16 + (size_t)n);
	assert_int_equal(swtpm_blob_unwrap(out.buf + 16, n, &raw, len), 0);
	copy = malloc(*len);
	assert_non_null(copy);
	memcpy(copy, raw, *len);
	*wrapped = malloc(n);
	assert_non_null(*wrapped);
	memcpy(*wrapped, out.buf + 16, n);
	*wlen = n;
	free(out.buf);
	return copy;
}

static uint32_t set_blob(uint32_t type, const uint8_t *data, uint32_t len)
{
	uint8_t *body = malloc(12 + (size_t)len);
	uint32_t res;

	assert_non_null(body);
	be32_put(body, 0);
	be32_put(body + 4, type);
	be32_put(body + 8, len);
	memcpy(body + 12, data, len);
	res = exec_res(CTRL_SET_STATEBLOB, body, 12 + (size_t)len);
	free(body);
	return res;
}

static void state_blobs_go_out_and_back_in(void **state)
{
	struct engine *e = vtpm_engine(&the_vtpm);
	uint8_t *perm, *wrapped, init[4] = { 0 };
	uint32_t len, wlen;

	(void)state;
	perm = get_blob(SF_BLOB_PERMANENT, &len, &wrapped, &wlen);
	assert_memory_equal(perm, e->blobs.data[SF_BLOB_PERMANENT], len);
	/* Only into a stopped TPM. */
	assert_int_equal(set_blob(SF_BLOB_PERMANENT, wrapped, wlen),
			 CTRL_RES_BAD_ORDINAL);
	assert_int_equal(exec_res(CTRL_STOP, NULL, 0), CTRL_RES_OK);
	assert_int_equal(set_blob(SF_BLOB_PERMANENT, wrapped, wlen),
			 CTRL_RES_OK);
	assert_int_equal(exec_res(CTRL_INIT, init, 4), CTRL_RES_OK);
	assert_true(engine_is_running(e));
	assert_memory_equal(perm, e->blobs.data[SF_BLOB_PERMANENT], len);
	free(perm);
	free(wrapped);
}

static void a_blob_libtpms_refuses_is_a_bad_parameter(void **state)
{
	struct engine *e = vtpm_engine(&the_vtpm);
	uint8_t junk[64], *wrapped, *before;
	uint32_t wlen, len = e->blobs.len[SF_BLOB_PERMANENT];

	(void)state;
	before = malloc(len);
	assert_non_null(before);
	memcpy(before, e->blobs.data[SF_BLOB_PERMANENT], len);
	memset(junk, 0xa5, sizeof(junk));
	assert_int_equal(exec_res(CTRL_STOP, NULL, 0), CTRL_RES_OK);
	/* No envelope at all. */
	assert_int_equal(set_blob(SF_BLOB_PERMANENT, junk, sizeof(junk)),
			 CTRL_RES_BAD_PARAMETER);
	/* A good envelope around bytes that are no TPM state. */
	assert_int_equal(swtpm_blob_wrap(junk, sizeof(junk), &wrapped, &wlen),
			 0);
	assert_int_equal(set_blob(SF_BLOB_PERMANENT, wrapped, wlen),
			 CTRL_RES_BAD_PARAMETER);
	/* Nothing was staged: the TPM boots from what it had. */
	assert_false(e->staged);
	assert_int_equal(e->blobs.len[SF_BLOB_PERMANENT], len);
	assert_memory_equal(e->blobs.data[SF_BLOB_PERMANENT], before, len);
	free(before);
	free(wrapped);
}

static void volatile_state_handed_out_is_consumed(void **state)
{
	struct engine *e = vtpm_engine(&the_vtpm);
	uint8_t *vol, *wrapped;
	uint32_t len, wlen;

	(void)state;
	assert_int_equal(exec_res(CTRL_STORE_VOLATILE, NULL, 0), CTRL_RES_OK);
	assert_non_null(e->blobs.data[SF_BLOB_VOLATILE]);
	vol = get_blob(SF_BLOB_VOLATILE, &len, &wrapped, &wlen);
	assert_true(len > 0);
	/* A later INIT must not resume it as well (as swtpm). */
	assert_null(e->blobs.data[SF_BLOB_VOLATILE]);
	assert_true(engine_is_dirty(e));
	free(vol);
	free(wrapped);
}

static uint32_t set_blob_flags(uint32_t flags, uint32_t type,
			       const uint8_t *data, uint32_t len)
{
	uint8_t *body = malloc(12 + (size_t)len);
	uint32_t res;

	assert_non_null(body);
	be32_put(body, flags);
	be32_put(body + 4, type);
	be32_put(body + 8, len);
	memcpy(body + 12, data, len);
	res = exec_res(CTRL_SET_STATEBLOB, body, 12 + (size_t)len);
	free(body);
	return res;
}

static void use_migration_key(uint8_t fill)
{
	uint8_t master[32];

	memset(master, fill, sizeof(master));
	assert_int_equal(migblob_derive_key(master, the_vtpm.migration_key), 0);
	the_vtpm.have_migration_key = true;
}

static void state_blobs_are_refused_without_a_key_or_the_opt_in(void **state)
{
	struct engine *e = vtpm_engine(&the_vtpm);
	uint8_t get[12] = { 0 }, junk[32] = { 0 };
	struct ctrl_reply out;

	(void)state;
	the_cfg.allow_plaintext_state = false;
	be32_put(get + 4, SF_BLOB_PERMANENT);
	assert_int_equal(exec(CTRL_GET_STATEBLOB, get, 12, &out), CTRL_RES_FAIL);
	/* Nothing of the state in the reply: the result word alone. */
	assert_int_equal(out.len, 4);
	free(out.buf);
	assert_int_equal(exec_res(CTRL_STOP, NULL, 0), CTRL_RES_OK);
	assert_int_equal(set_blob_flags(0, SF_BLOB_PERMANENT, junk, 32),
			 CTRL_RES_FAIL);
	assert_false(e->staged);
}

/* GET_STATEBLOB sealed: the reply's payload (caller frees). */
static uint8_t *get_sealed(uint32_t type, uint32_t *n)
{
	uint8_t body[12] = { 0 }, *copy;
	struct ctrl_reply out;

	be32_put(body + 4, type);
	assert_int_equal(exec(CTRL_GET_STATEBLOB, body, 12, &out), CTRL_RES_OK);
	assert_int_equal(be32_get(out.buf + 4), CTRL_STATE_FLAG_ENCRYPTED);
	*n = be32_get(out.buf + 8);
	assert_int_equal(out.len, 16 + (size_t)*n);
	copy = malloc(*n);
	assert_non_null(copy);
	memcpy(copy, out.buf + 16, *n);
	free(out.buf);
	return copy;
}

static void sealed_blobs_go_out_and_back_in_under_the_migration_key(
	void **state)
{
	struct engine *e = vtpm_engine(&the_vtpm);
	uint8_t *sealed, *perm, init[4] = { 0 };
	const uint8_t *raw;
	uint32_t n, rawlen, len = e->blobs.len[SF_BLOB_PERMANENT];

	(void)state;
	the_cfg.allow_plaintext_state = false;
	use_migration_key(0x11);
	perm = malloc(len);
	assert_non_null(perm);
	memcpy(perm, e->blobs.data[SF_BLOB_PERMANENT], len);
	sealed = get_sealed(SF_BLOB_PERMANENT, &n);
	assert_int_equal(n, len + SWTPM_BLOB_OVERHEAD + MIGBLOB_OVERHEAD);
	assert_memory_equal(sealed, "VTPMMIG1", 8);
	/* No swtpm envelope and no libtpms blob in the clear. */
	assert_int_not_equal(swtpm_blob_unwrap(sealed, n, &raw, &rawlen), 0);
	assert_null(memmem(sealed, n, perm, len < 64 ? len : 64));
	assert_int_equal(exec_res(CTRL_STOP, NULL, 0), CTRL_RES_OK);
	assert_int_equal(set_blob_flags(CTRL_STATE_FLAG_ENCRYPTED,
					SF_BLOB_PERMANENT, sealed, n),
			 CTRL_RES_OK);
	assert_int_equal(exec_res(CTRL_INIT, init, 4), CTRL_RES_OK);
	assert_int_equal(e->blobs.len[SF_BLOB_PERMANENT], len);
	assert_memory_equal(e->blobs.data[SF_BLOB_PERMANENT], perm, len);
	free(perm);
	free(sealed);
}

static void sealed_blobs_altered_retyped_or_under_another_key_are_refused(
	void **state)
{
	struct engine *e = vtpm_engine(&the_vtpm);
	uint8_t *sealed, *wrapped;
	uint32_t n, wlen, len;

	(void)state;
	the_cfg.allow_plaintext_state = false;
	use_migration_key(0x22);
	sealed = get_sealed(SF_BLOB_PERMANENT, &n);
	assert_int_equal(exec_res(CTRL_STOP, NULL, 0), CTRL_RES_OK);
	/* One bit flipped, in the header, the ciphertext and the tag. */
	for (uint32_t at = 10; at < n; at += n / 3) {
		sealed[at] ^= 1;
		assert_int_equal(set_blob_flags(CTRL_STATE_FLAG_ENCRYPTED,
						SF_BLOB_PERMANENT, sealed, n),
				 CTRL_RES_BAD_PARAMETER);
		sealed[at] ^= 1;
	}
	/* The permanent blob offered as the volatile one. */
	assert_int_equal(set_blob_flags(CTRL_STATE_FLAG_ENCRYPTED,
					SF_BLOB_VOLATILE, sealed, n),
			 CTRL_RES_BAD_PARAMETER);
	/* Another vTPM's migration key. */
	use_migration_key(0x33);
	assert_int_equal(set_blob_flags(CTRL_STATE_FLAG_ENCRYPTED,
					SF_BLOB_PERMANENT, sealed, n),
			 CTRL_RES_BAD_PARAMETER);
	/* In the clear while a key is configured, without the opt-in. */
	wrapped = NULL;
	len = e->blobs.len[SF_BLOB_PERMANENT];
	assert_int_equal(swtpm_blob_wrap(e->blobs.data[SF_BLOB_PERMANENT], len,
					 &wrapped, &wlen), 0);
	assert_int_equal(set_blob_flags(0, SF_BLOB_PERMANENT, wrapped, wlen),
			 CTRL_RES_FAIL);
	/* Sealed, to a vTPM with no key (that takes blobs in the clear). */
	the_vtpm.have_migration_key = false;
	the_cfg.allow_plaintext_state = true;
	assert_int_equal(set_blob_flags(CTRL_STATE_FLAG_ENCRYPTED,
					SF_BLOB_PERMANENT, sealed, n),
			 CTRL_RES_KEYNOTFOUND);
	assert_false(e->staged);
	free(sealed);
	free(wrapped);
}

static void locality_4_is_refused_under_reject_4(void **state)
{
	uint8_t loc = 4;

	(void)state;
	the_vtpm.reject_locality4 = true;
	assert_int_equal(exec_res(CTRL_SET_LOCALITY, &loc, 1),
			 CTRL_RES_BAD_LOCALITY);
	loc = 3;
	assert_int_equal(exec_res(CTRL_SET_LOCALITY, &loc, 1), CTRL_RES_OK);
	the_vtpm.reject_locality4 = false;
	loc = 4;
	assert_int_equal(exec_res(CTRL_SET_LOCALITY, &loc, 1), CTRL_RES_OK);
}

static void info_is_libtpms_json_in_chunks(void **state)
{
	uint8_t body[16] = { 0 };
	struct ctrl_reply out;
	uint32_t tot, n;

	(void)state;
	be64_put(body, 1); /* TPMLIB_INFO_TPMSPECIFICATION */
	assert_int_equal(exec(CTRL_GET_INFO, body, 16, &out), CTRL_RES_OK);
	tot = be32_get(out.buf + 4);
	n = be32_get(out.buf + 8);
	assert_int_equal(out.len, 12 + (size_t)n);
	assert_int_equal(n, tot);
	assert_int_equal(out.buf[12], '{');
	assert_int_equal(out.buf[12 + n - 1], 0);
	free(out.buf);
	be32_put(body + 8, tot); /* past the end */
	assert_int_equal(exec_res(CTRL_GET_INFO, body, 16),
			 CTRL_RES_BAD_PARAMETER);
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
	const struct CMUnitTest engine_tests[] = {
#define T(fn) cmocka_unit_test_setup(fn, running)
		T(capabilities_are_swtpm_0_7_1s),
		T(locality_above_four_is_refused),
		T(establishment_bit_resets_from_locality_3_only),
		T(hash_sequence_runs_start_data_end),
		T(buffer_size_changes_only_on_a_stopped_tpm),
		T(running_only_commands_are_refused_when_stopped),
		T(state_blobs_go_out_and_back_in),
		T(a_blob_libtpms_refuses_is_a_bad_parameter),
		T(volatile_state_handed_out_is_consumed),
		T(info_is_libtpms_json_in_chunks),
		T(state_blobs_are_refused_without_a_key_or_the_opt_in),
		T(sealed_blobs_go_out_and_back_in_under_the_migration_key),
		T(sealed_blobs_altered_retyped_or_under_another_key_are_refused),
		T(locality_4_is_refused_under_reject_4),
#undef T
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);

	return failed + cmocka_run_group_tests(engine_tests, engine_group_setup,
					       engine_group_teardown);
}
