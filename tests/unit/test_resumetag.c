/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The resume tag of a Xen save (proto/resumetag.h) and the toolstack's
 * /local/domain/N/vm value: well-formed input round-trips, every hostile
 * variation is refused; the state file carries the tag as record 4.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/bytes.h"
#include "proto/resumetag.h"
#include "proto/statefile.h"

static const struct resume_tag good = {
	.domid = 7,
	.devid = 0,
	.vm = { 0x5c, 0x0b, 0xa5, 0xe4, 0x3b, 0x1f, 0x4e, 0x8e, 0x9c, 0x2a,
		0x6f, 0x1d, 0x2a, 0x3b, 0x4c, 0x5d },
};

static void a_tag_round_trips(void **state)
{
	uint8_t b[RESUMETAG_LEN];
	struct resume_tag t;

	(void)state;
	resumetag_encode(&good, b);
	assert_memory_equal(b, "XRSM", 4);
	assert_int_equal(be16_get(b + 4), RESUMETAG_VERSION);
	assert_int_equal(resumetag_decode(b, sizeof(b), &t), 0);
	assert_int_equal(t.domid, 7);
	assert_int_equal(t.devid, 0);
	assert_memory_equal(t.vm, good.vm, 16);
	assert_true(resumetag_matches(&t, good.vm, 0));
}

static void every_cut_and_extension_is_refused(void **state)
{
	uint8_t b[RESUMETAG_LEN + 8];
	struct resume_tag t;

	(void)state;
	resumetag_encode(&good, b);
	for (size_t n = 0; n < sizeof(b); n++)
		if (n != RESUMETAG_LEN)
			assert_int_equal(resumetag_decode(b, n, &t), -EBADMSG);
	assert_int_equal(resumetag_decode(NULL, RESUMETAG_LEN, &t), -EBADMSG);
}

static void every_flipped_header_byte_is_refused(void **state)
{
	uint8_t b[RESUMETAG_LEN];
	struct resume_tag t;

	(void)state;
	for (int i = 0; i < 8; i++) {
		for (int bit = 0; bit < 8; bit++) {
			resumetag_encode(&good, b);
			b[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(resumetag_decode(b, sizeof(b), &t),
					 -EBADMSG);
		}
	}
}

static void out_of_range_ids_are_refused(void **state)
{
	uint8_t b[RESUMETAG_LEN];
	struct resume_tag t;

	(void)state;
	resumetag_encode(&good, b);
	be32_put(b + 8, RESUMETAG_DOMID_LIMIT);
	assert_int_equal(resumetag_decode(b, sizeof(b), &t), -EBADMSG);
	be32_put(b + 8, UINT32_MAX);
	assert_int_equal(resumetag_decode(b, sizeof(b), &t), -EBADMSG);
	be32_put(b + 8, RESUMETAG_DOMID_LIMIT - 1);
	assert_int_equal(resumetag_decode(b, sizeof(b), &t), 0);
	be32_put(b + 12, 0x80000000u);
	assert_int_equal(resumetag_decode(b, sizeof(b), &t), -EBADMSG);
}

static void another_domain_or_device_does_not_match(void **state)
{
	struct resume_tag t = good;
	uint8_t vm[16];

	(void)state;
	memcpy(vm, good.vm, 16);
	vm[15] ^= 1;
	assert_false(resumetag_matches(&t, vm, 0));
	assert_false(resumetag_matches(&t, good.vm, 1));
	/* The domid is not part of the match: a restore has a new one. */
	t.domid = 99;
	assert_true(resumetag_matches(&t, good.vm, 0));
}

static void the_vm_path_parses_exactly(void **state)
{
	static const char ok[] = "/vm/5c0ba5e4-3b1f-4e8e-9c2a-6f1d2a3b4c5d";
	static const char *const bad[] = {
		"",
		"/vm/",
		"/vm/5c0ba5e4-3b1f-4e8e-9c2a-6f1d2a3b4c5",
		"/vm/5c0ba5e4-3b1f-4e8e-9c2a-6f1d2a3b4c5d0",
		"/vm/5c0ba5e4-3b1f-4e8e-9c2a-6f1d2a3b4c5d\n",
		"/VM/5c0ba5e4-3b1f-4e8e-9c2a-6f1d2a3b4c5d",
		"vm//5c0ba5e4-3b1f-4e8e-9c2a-6f1d2a3b4c5d",
		"/vm/5c0ba5e4x3b1f-4e8e-9c2a-6f1d2a3b4c5d",
		"/vm/5c0ba5e4-3b1f-4e8e-9c2a-6f1d2a3b4cgd",
		"/local/domain/0/5c0ba5e4-3b1f-4e8e-9c2a",
	};
	char nul[sizeof(ok)];
	uint8_t vm[16];

	(void)state;
	assert_int_equal(resumetag_parse_vm_path(ok, strlen(ok), vm), 0);
	assert_memory_equal(vm, good.vm, 16);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(resumetag_parse_vm_path(bad[i], strlen(bad[i]),
							 vm),
				 -EINVAL);
	memcpy(nul, ok, sizeof(ok));
	nul[20] = '\0';
	assert_int_equal(resumetag_parse_vm_path(nul, strlen(ok), vm), -EINVAL);
	assert_int_equal(resumetag_parse_vm_path(NULL, 40, vm), -EINVAL);
	/* A length that stops short of the NUL is what counts. */
	assert_int_equal(resumetag_parse_vm_path(ok, strlen(ok) - 1, vm),
			 -EINVAL);
}

static void the_state_file_carries_the_tag_as_record_4(void **state)
{
	uint8_t master[STATE_KEY_LEN], tag[RESUMETAG_LEN], *out;
	static const uint8_t vol[] = "volatile";
	struct statefile_meta meta = { .family = 2, .generation = 3 };
	struct statefile_expect exp = { .family = 2 };
	struct statefile_blobs in, back;
	struct state_keys k;
	struct resume_tag t;
	size_t outlen;

	(void)state;
	memset(master, 0x42, sizeof(master));
	assert_int_equal(state_keys_derive(master, &k), 0);
	memset(&in, 0, sizeof(in));
	resumetag_encode(&good, tag);
	in.data[SF_BLOB_VOLATILE] = (uint8_t *)vol;
	in.len[SF_BLOB_VOLATILE] = sizeof(vol);
	in.data[SF_BLOB_RESUME] = tag;
	in.len[SF_BLOB_RESUME] = sizeof(tag);
	assert_int_equal(statefile_encode(&k, &meta, &in, &out, &outlen), 0);
	assert_int_equal(statefile_decode(&k, out, outlen, &exp, &meta, &back),
			 0);
	assert_int_equal(resumetag_decode(back.data[SF_BLOB_RESUME],
					  back.len[SF_BLOB_RESUME], &t),
			 0);
	assert_memory_equal(t.vm, good.vm, 16);
	statefile_blobs_free(&back);
	free(out);
}

static void a_record_type_past_the_tag_is_refused(void **state)
{
	uint8_t master[STATE_KEY_LEN], body[5 + 4], *out;
	struct statefile_meta meta = { .family = 2, .generation = 3 };
	struct statefile_expect exp = { .family = 2 };
	struct statefile_blobs back;
	struct state_keys k;
	size_t outlen;

	(void)state;
	memset(master, 0x42, sizeof(master));
	assert_int_equal(state_keys_derive(master, &k), 0);
	body[0] = SF_BLOB_COUNT;
	be32_put(body + 1, 4);
	memset(body + 5, 0, 4);
	assert_int_equal(statefile_seal(&k, &meta, body, sizeof(body), &out,
					&outlen),
			 0);
	assert_int_equal(statefile_decode(&k, out, outlen, &exp, &meta, &back),
			 SF_ERR_FORMAT);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_tag_round_trips),
		cmocka_unit_test(every_cut_and_extension_is_refused),
		cmocka_unit_test(every_flipped_header_byte_is_refused),
		cmocka_unit_test(out_of_range_ids_are_refused),
		cmocka_unit_test(another_domain_or_device_does_not_match),
		cmocka_unit_test(the_vm_path_parses_exactly),
		cmocka_unit_test(the_state_file_carries_the_tag_as_record_4),
		cmocka_unit_test(a_record_type_past_the_tag_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
