/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * engine_load and engine_load_slots: 0 or a negative errno, and the state
 * file's verdict in its own field, never in the same int.  (Loading runs
 * no libtpms: the engine is not set up here.)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/store.h"
#include "proto/statefile.h"
#include "instance/engine.h"

static const uint8_t uuid_a[16] = { 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6,
				    0x4a, 0xa8, 0x8a, 0xaa, 0xab, 0xac,
				    0xad, 0xae, 0xaf, 0xa0 };
static const uint8_t uuid_b[16] = { 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
				    0x4b, 0xb8, 0x8b, 0xba, 0xbb, 0xbc,
				    0xbd, 0xbe, 0xbf, 0xb0 };
static const char perm[] = "a permanent state, as libtpms would store it";

struct fx {
	char dir[64];
	int dirfd;
	struct state_keys keys, other_keys;
};

static void keys_of(uint8_t seed, struct state_keys *k)
{
	uint8_t master[STATE_KEY_LEN];

	memset(master, seed, sizeof(master));
	assert_int_equal(state_keys_derive(master, k), 0);
}

static struct statefile_expect expect(const uint8_t *uuid, uint64_t min_gen)
{
	struct statefile_expect exp;

	memset(&exp, 0, sizeof(exp));
	exp.family = 2;
	exp.check_uuid = 1;
	memcpy(exp.uuid, uuid, 16);
	exp.min_generation = min_gen;
	return exp;
}

static void engine_blank(struct engine *e)
{
	memset(e, 0, sizeof(*e));
	e->version = TPM_VERSION_2;
	e->meta.family = 2;
	e->dirfd = -1;
}

/* Gives the engine a permanent blob and writes it (generation + 1). */
static void persist_one(struct engine *e)
{
	e->blobs.data[SF_BLOB_PERMANENT] = malloc(sizeof(perm));
	assert_non_null(e->blobs.data[SF_BLOB_PERMANENT]);
	memcpy(e->blobs.data[SF_BLOB_PERMANENT], perm, sizeof(perm));
	e->blobs.len[SF_BLOB_PERMANENT] = sizeof(perm);
	e->dirty = true;
	assert_int_equal(engine_persist(e), 0);
	assert_false(engine_is_dirty(e));
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_engine_load.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->dirfd < 0) {
		rmdir(f->dir);
		free(f);
		return -1;
	}
	keys_of(0x11, &f->keys);
	keys_of(0x22, &f->other_keys);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	close(f->dirfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* A state file "s" of uuid_a at generation 1. */
static void make_state(struct fx *f)
{
	struct statefile_expect exp = expect(uuid_a, 0);
	struct engine_load_result res;
	struct engine e;

	engine_blank(&e);
	assert_int_equal(engine_load(&e, f->dirfd, "s", &f->keys, &exp, &res), 0);
	assert_true(res.created);
	assert_int_equal(res.verdict, SF_OK);
	persist_one(&e);
	assert_int_equal(e.meta.generation, 1);
	engine_free(&e);
}

static void load(struct fx *f, const struct state_keys *k,
		 const uint8_t *uuid, uint64_t min_gen, int want_rc,
		 enum statefile_err want_verdict)
{
	struct statefile_expect exp = expect(uuid, min_gen);
	struct engine_load_result res;
	struct engine e;

	engine_blank(&e);
	assert_int_equal(engine_load(&e, f->dirfd, "s", k, &exp, &res),
			 want_rc);
	assert_int_equal(res.verdict, want_verdict);
	assert_false(res.created);
	if (want_rc == 0) {
		assert_int_equal(e.meta.generation, 1);
		assert_int_equal(e.blobs.len[SF_BLOB_PERMANENT], sizeof(perm));
		assert_memory_equal(e.blobs.data[SF_BLOB_PERMANENT], perm,
				    sizeof(perm));
	} else {
		assert_true(res.detail[0] != '\0');
		assert_null(e.blobs.data[SF_BLOB_PERMANENT]);
	}
	engine_free(&e);
}

static void a_good_file_loads(void **state)
{
	struct fx *f = *state;

	make_state(f);
	load(f, &f->keys, uuid_a, 0, 0, SF_OK);
	load(f, &f->keys, uuid_a, 1, 0, SF_OK);
}

static void a_refused_file_is_ebadmsg_with_its_verdict_beside(void **state)
{
	struct fx *f = *state;

	make_state(f);
	load(f, &f->keys, uuid_a, 2, -EBADMSG, SF_ERR_STALE);
	load(f, &f->other_keys, uuid_a, 0, -EBADMSG, SF_ERR_AUTH);
	load(f, &f->keys, uuid_b, 0, -EBADMSG, SF_ERR_UUID);
}

static void a_missing_file_already_seen_is_stale(void **state)
{
	struct fx *f = *state;

	load(f, &f->keys, uuid_a, 3, -EBADMSG, SF_ERR_STALE);
}

static void a_short_file_is_refused_not_an_errno(void **state)
{
	struct fx *f = *state;
	struct statefile_expect exp = expect(uuid_a, 0);
	struct engine_load_result res;
	struct engine e;

	/* SF_ERR_TRUNCATED was -1, -EPERM; now it never reaches rc. */
	assert_int_equal(store_write_atomic(f->dirfd, "s", (const uint8_t *)"VTP", 3), 0);
	engine_blank(&e);
	assert_int_equal(engine_load(&e, f->dirfd, "s", &f->keys, &exp, &res),
			 -EBADMSG);
	assert_int_not_equal(res.verdict, SF_OK);
	engine_free(&e);
}

static void an_unreadable_file_is_an_errno_without_verdict(void **state)
{
	struct fx *f = *state;
	struct statefile_expect exp = expect(uuid_a, 0);
	struct engine_load_result res;
	struct engine e;
	int rc;

	assert_int_equal(mkdirat(f->dirfd, "s", 0700), 0);
	engine_blank(&e);
	rc = engine_load(&e, f->dirfd, "s", &f->keys, &exp, &res);
	assert_true(rc < 0);
	assert_int_not_equal(rc, -EBADMSG);
	assert_int_equal(res.verdict, SF_OK);
	assert_false(res.created);
	engine_free(&e);
}

/* ---- manager mode: two slots, the manager's hash decides ---- */

/* The hash of slot i of a slot file, as the manager records it. */
static void slot_hash_i(struct fx *f, const char *name, int i, uint8_t out[32])
{
	struct statefile_expect exp = expect(uuid_a, 0);
	struct slotfile_view v;
	uint8_t *buf;
	size_t len;

	assert_int_equal(store_read(f->dirfd, name, SLOTFILE_MAX_LEN, &buf, &len), 0);
	assert_int_equal(slotfile_scan(&f->keys, buf, len, &exp, &v), SF_OK);
	assert_int_equal(v.slot[i].kind, SLOT_VALID);
	memcpy(out, v.slot[i].hash, 32);
	free(buf);
}

static int load_slots(struct fx *f, bool nostate, uint64_t gen,
		      const uint8_t hash[32], struct engine_load_result *res)
{
	struct statefile_expect exp = expect(uuid_a, gen);
	struct engine e;
	int rc;

	engine_blank(&e);
	rc = engine_load_slots(&e, f->dirfd, "m", &f->keys, &exp, nostate,
			       hash, res);
	if (rc == 0 && nostate)
		persist_one(&e); /* generation 1: slot 0 of m.0 */
	engine_free(&e);
	return rc;
}

static void slots_load_only_what_the_manager_recorded(void **state)
{
	struct fx *f = *state;
	struct engine_load_result res;
	uint8_t hash[32], wrong[32];

	memset(wrong, 0x5a, sizeof(wrong));
	/* Nothing recorded: no slot is read at all. */
	assert_int_equal(load_slots(f, false, 1, wrong, &res), -EBADMSG);
	assert_int_equal(res.verdict, SF_ERR_STALE);
	assert_int_equal(load_slots(f, true, 0, wrong, &res), 0);
	assert_true(res.created);
	assert_int_equal(res.verdict, SF_OK);
	slot_hash_i(f, "m.0", 0, hash);
	assert_int_equal(load_slots(f, false, 1, hash, &res), 0);
	assert_int_equal(res.verdict, SF_OK);
	/* A slot the manager did not record: rollback or replay. */
	assert_int_equal(load_slots(f, false, 1, wrong, &res), -EBADMSG);
	assert_int_equal(res.verdict, SF_ERR_STALE);
	/* The recorded bytes, but not the recorded generation. */
	assert_int_equal(load_slots(f, false, 2, hash, &res), -EBADMSG);
	assert_int_equal(res.verdict, SF_ERR_STALE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(a_good_file_loads),
		T(a_refused_file_is_ebadmsg_with_its_verdict_beside),
		T(a_missing_file_already_seen_is_stale),
		T(a_short_file_is_refused_not_an_errno),
		T(an_unreadable_file_is_an_errno_without_verdict),
		T(slots_load_only_what_the_manager_recorded),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
