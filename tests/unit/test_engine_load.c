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

/* ---- the slot file: in place, conversion, growth, hostile paths ---- */

static void set_perm(struct engine *e, size_t len, uint8_t fill)
{
	uint8_t *p = malloc(len);

	assert_non_null(p);
	memset(p, fill, len);
	free(e->blobs.data[SF_BLOB_PERMANENT]);
	e->blobs.data[SF_BLOB_PERMANENT] = p;
	e->blobs.len[SF_BLOB_PERMANENT] = (uint32_t)len;
	e->dirty = true;
}

static void read_file(struct fx *f, const char *name, uint8_t **buf,
		      size_t *len)
{
	assert_int_equal(store_read(f->dirfd, name, SLOTFILE_MAX_LEN, buf, len), 0);
}

static void write_file(struct fx *f, const char *name, const uint8_t *buf,
		       size_t len)
{
	assert_int_equal(store_write_atomic(f->dirfd, name, buf, len), 0);
}

static ino_t inode_of(struct fx *f, const char *name)
{
	struct stat st;

	assert_int_equal(fstatat(f->dirfd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
	return st.st_ino;
}

/* Loads "s" standalone; the loaded generation (or -1 when refused). */
static long long load_gen(struct fx *f, uint64_t min_gen, size_t *permlen,
			  struct engine_load_result *res)
{
	struct statefile_expect exp = expect(uuid_a, min_gen);
	struct engine e;
	long long g = -1;

	engine_blank(&e);
	if (engine_load(&e, f->dirfd, "s", &f->keys, &exp, res) == 0) {
		g = (long long)e.meta.generation;
		if (permlen)
			*permlen = e.blobs.len[SF_BLOB_PERMANENT];
	}
	engine_free(&e);
	return g;
}

static void writes_go_in_place_into_alternate_slots(void **state)
{
	struct fx *f = *state;
	struct statefile_expect exp = expect(uuid_a, 0);
	struct engine_load_result res;
	struct slotfile_view v;
	struct engine e;
	uint8_t *buf;
	size_t len;
	ino_t ino;

	engine_blank(&e);
	assert_int_equal(engine_load(&e, f->dirfd, "s", &f->keys, &exp, &res), 0);
	assert_true(res.created);
	set_perm(&e, 3000, 1);
	assert_int_equal(engine_persist(&e), 0); /* creates the file */
	assert_int_equal(e.slot_cur, 0);
	ino = inode_of(f, "s");
	for (int i = 2; i <= 6; i++) {
		set_perm(&e, 3000, (uint8_t)i);
		assert_int_equal(engine_persist(&e), 0);
		assert_int_equal(e.slot_cur, (i - 1) % 2);
		/* No rename: the same file, written in place. */
		assert_int_equal(inode_of(f, "s"), ino);
		assert_int_equal(load_gen(f, 0, NULL, &res), i);
	}
	engine_free(&e);
	read_file(f, "s", &buf, &len);
	assert_int_equal(slotfile_scan(&f->keys, buf, len, &exp, &v), SF_OK);
	assert_int_equal(v.slot[0].generation, 5);
	assert_int_equal(v.slot[1].generation, 6);
	free(buf);
	/* The watermark is the floor, across slots too. */
	assert_int_equal(load_gen(f, 6, NULL, &res), 6);
	assert_int_equal(load_gen(f, 7, NULL, &res), -1);
	assert_int_equal(res.verdict, SF_ERR_STALE);
}

/* The write of generation 4 torn at every sector: 3 or 4 loads, and the
 * next write never goes over the slot that holds 3. */
static void a_torn_slot_write_loads_the_previous_state(void **state)
{
	struct fx *f = *state;
	struct statefile_expect exp = expect(uuid_a, 0);
	struct engine_load_result res;
	struct engine e;
	uint8_t *before, *after, *mix;
	size_t len, alen;

	make_state(f); /* generation 1, format 1 */
	engine_blank(&e);
	assert_int_equal(engine_load(&e, f->dirfd, "s", &f->keys, &exp, &res), 0);
	for (int i = 2; i <= 3; i++) {
		set_perm(&e, 5000, (uint8_t)i);
		assert_int_equal(engine_persist(&e), 0);
	}
	read_file(f, "s", &before, &len);
	set_perm(&e, 7000, 4);
	assert_int_equal(engine_persist(&e), 0);
	engine_free(&e);
	read_file(f, "s", &after, &alen);
	assert_int_equal(alen, len);
	mix = malloc(len);
	for (size_t k = 0; k <= len / 512; k++) {
		long long g;

		memcpy(mix, before, len);
		memcpy(mix, after, k * 512);
		write_file(f, "s", mix, len);
		g = load_gen(f, 3, NULL, &res);
		assert_true(g == 3 || g == 4);
		if (g == 3 && memcmp(mix, after, len) != 0) {
			/* Carry on from 3: the write goes to the torn slot. */
			engine_blank(&e);
			assert_int_equal(engine_load(&e, f->dirfd, "s", &f->keys,
						     &exp, &res), 0);
			set_perm(&e, 100, 9);
			assert_int_equal(engine_persist(&e), 0);
			engine_free(&e);
			assert_int_equal(load_gen(f, 4, NULL, &res), 4);
		}
	}
	free(mix);
	free(before);
	free(after);
}

static void a_state_that_outgrows_its_slot_rebuilds_the_file(void **state)
{
	struct fx *f = *state;
	struct statefile_expect exp = expect(uuid_a, 0);
	struct engine_load_result res;
	struct slotfile_view v;
	struct engine e;
	uint8_t *buf;
	size_t len, permlen = 0;

	engine_blank(&e);
	assert_int_equal(engine_load(&e, f->dirfd, "s", &f->keys, &exp, &res), 0);
	set_perm(&e, 1000, 1);
	assert_int_equal(engine_persist(&e), 0);
	set_perm(&e, 2000, 2);
	assert_int_equal(engine_persist(&e), 0);
	assert_int_equal(e.slot_size, SLOTFILE_MIN_SLOT);
	set_perm(&e, 100000, 3);
	assert_int_equal(engine_persist(&e), 0);
	assert_true(e.slot_size >= 100000);
	assert_int_equal(e.slot_cur, 0);
	set_perm(&e, 100000, 4);
	assert_int_equal(engine_persist(&e), 0);
	assert_int_equal(e.slot_cur, 1);
	engine_free(&e);
	assert_int_equal(load_gen(f, 0, &permlen, &res), 4);
	assert_int_equal(permlen, 100000);
	read_file(f, "s", &buf, &len);
	assert_int_equal(slotfile_scan(&f->keys, buf, len, &exp, &v), SF_OK);
	assert_int_equal(v.slot[0].generation, 3);
	assert_int_equal(v.slot[1].generation, 4);
	free(buf);
}

static void a_format1_file_converts_on_the_first_write(void **state)
{
	struct fx *f = *state;
	struct statefile_expect exp = expect(uuid_a, 1);
	struct engine_load_result res;
	struct slotfile_view v;
	struct engine e;
	uint8_t *old, *buf, h[32];
	size_t oldlen, len;

	make_state(f);
	/* make_state wrote a slot file; put a format-1 file in its place. */
	{
		struct statefile_meta meta = { .family = 2, .generation = 1 };
		struct statefile_blobs b = { 0 };

		memcpy(meta.uuid, uuid_a, 16);
		b.data[SF_BLOB_PERMANENT] = (uint8_t *)perm;
		b.len[SF_BLOB_PERMANENT] = sizeof(perm);
		assert_int_equal(statefile_encode(&f->keys, &meta, &b, &old,
						  &oldlen), 0);
		write_file(f, "s", old, oldlen);
	}
	SHA256(old, oldlen, h);
	load(f, &f->keys, uuid_a, 1, 0, SF_OK); /* still readable */
	/* Refused format-1 files stay as they are (rollback). */
	load(f, &f->keys, uuid_a, 2, -EBADMSG, SF_ERR_STALE);
	read_file(f, "s", &buf, &len);
	assert_int_equal(len, oldlen);
	assert_memory_equal(buf, old, len);
	free(buf);
	engine_blank(&e);
	assert_int_equal(engine_load(&e, f->dirfd, "s", &f->keys, &exp, &res), 0);
	assert_int_equal(e.slot_fd, -1);
	set_perm(&e, 500, 7);
	assert_int_equal(engine_persist(&e), 0);
	assert_null(e.carry);
	engine_free(&e);
	read_file(f, "s", &buf, &len);
	assert_true(slotfile_is_slotfile(buf, len));
	assert_int_equal(slotfile_scan(&f->keys, buf, len, &exp, &v), SF_OK);
	assert_int_equal(v.slot[0].generation, 2);
	/* The old state was carried, byte for byte. */
	assert_int_equal(v.slot[1].generation, 1);
	assert_memory_equal(v.slot[1].hash, h, 32);
	free(buf);
	free(old);
	assert_int_equal(load_gen(f, 2, NULL, &res), 2);
}

/* after_persist: what the manager would record. */
struct recorder {
	int calls, fail;
	uint64_t gen;
	uint8_t hash[32];
	struct fx *f;
	const char *file;
};

static int record(struct engine *e, uint64_t generation, const uint8_t hash[32],
		  void *ctx)
{
	struct recorder *r = ctx;
	struct statefile_expect exp = expect(uuid_a, 0);
	struct slotfile_view v;
	uint8_t *buf;
	size_t len;

	(void)e;
	r->calls++;
	/* The slot is on disk before the manager hears of it. */
	read_file(r->f, r->file, &buf, &len);
	assert_int_equal(slotfile_scan(&r->f->keys, buf, len, &exp, &v), SF_OK);
	assert_true(slotfile_find_hash(&v, hash) >= 0);
	free(buf);
	if (r->fail) {
		r->fail--;
		return -EPIPE;
	}
	r->gen = generation;
	memcpy(r->hash, hash, 32);
	return 0;
}

static int managed_load(struct fx *f, struct engine *e, bool nostate,
			uint64_t gen, const uint8_t hash[32],
			struct recorder *r, struct engine_load_result *res)
{
	struct statefile_expect exp = expect(uuid_a, gen);
	int rc;

	engine_blank(e);
	rc = engine_load_slots(e, f->dirfd, "m", &f->keys, &exp, nostate,
			       hash, res);
	e->after_persist = record;
	e->after_ctx = r;
	return rc;
}

static void legacy_slot_files_convert_and_the_old_record_still_loads(void **state)
{
	struct fx *f = *state;
	struct engine_load_result res;
	struct recorder r = { .f = f, .file = "m.0" };
	struct statefile_meta meta = { .family = 2 };
	struct statefile_blobs b = { 0 };
	struct engine e;
	uint8_t *l[2], h1[32], h2[32], hnew[32];
	size_t ll[2];
	struct stat st;

	/* What the code before the slot file left: m.0 at generation 2,
	 * m.1 at 1, and the manager's record names m.0. */
	memcpy(meta.uuid, uuid_a, 16);
	b.data[SF_BLOB_PERMANENT] = (uint8_t *)perm;
	b.len[SF_BLOB_PERMANENT] = sizeof(perm);
	for (int i = 0; i < 2; i++) {
		meta.generation = 2 - (uint64_t)i;
		assert_int_equal(statefile_encode(&f->keys, &meta, &b, &l[i],
						  &ll[i]), 0);
		write_file(f, i ? "m.1" : "m.0", l[i], ll[i]);
	}
	SHA256(l[0], ll[0], h2);
	SHA256(l[1], ll[1], h1);
	/* The record decides: m.1's bytes, but not its generation. */
	assert_int_equal(managed_load(f, &e, false, 2, h1, &r, &res), -EBADMSG);
	assert_int_equal(res.verdict, SF_ERR_STALE);
	engine_free(&e);
	assert_int_equal(managed_load(f, &e, false, 2, h2, &r, &res), 0);
	assert_int_equal(e.meta.generation, 2);
	/* The manager is unreachable: the write fails, its record never
	 * goes out; the slot is durable all the same. */
	r.fail = 1;
	set_perm(&e, 700, 3);
	assert_int_equal(engine_persist(&e), -EPIPE);
	engine_free(&e);
	/* m.0 is the slot file now: 3 in slot 0, the recorded 2 in slot 1.
	 * The newer authentic state within the trail loads. */
	assert_int_equal(managed_load(f, &e, false, 2, h2, &r, &res), 0);
	assert_int_equal(e.meta.generation, 3);
	assert_int_equal(e.slot_cur, 0);
	set_perm(&e, 700, 4);
	assert_int_equal(engine_persist(&e), 0);
	assert_int_equal(r.gen, 4);
	assert_int_equal(e.slot_cur, 1);
	memcpy(hnew, r.hash, 32);
	engine_free(&e);
	/* The legacy m.1 is gone after the first write that counted. */
	assert_int_equal(fstatat(f->dirfd, "m.1", &st, 0), -1);
	/* The record trails by two at most (4 loads for record 2 as for
	 * 4); three behind, or the recorded generation with other bytes,
	 * is refused. */
	assert_int_equal(managed_load(f, &e, false, 2, h2, &r, &res), 0);
	assert_int_equal(e.meta.generation, 4);
	engine_free(&e);
	assert_int_equal(managed_load(f, &e, false, 1, h1, &r, &res), -EBADMSG);
	assert_int_equal(res.verdict, SF_ERR_STALE);
	assert_non_null(strstr(res.detail, "older than the state"));
	engine_free(&e);
	assert_int_equal(managed_load(f, &e, false, 4, h2, &r, &res), -EBADMSG);
	assert_int_equal(res.verdict, SF_ERR_STALE);
	engine_free(&e);
	assert_int_equal(managed_load(f, &e, false, 5, hnew, &r, &res), -EBADMSG);
	assert_non_null(strstr(res.detail, "rollback or replay"));
	engine_free(&e);
	assert_int_equal(managed_load(f, &e, false, 4, hnew, &r, &res), 0);
	/* Steady state: never over the current slot. */
	for (int i = 5; i <= 8; i++) {
		int before = e.slot_cur;

		set_perm(&e, 700, (uint8_t)i);
		if (i == 7)
			r.fail = 1;
		assert_int_equal(engine_persist(&e), i == 7 ? -EPIPE : 0);
		if (i == 7) {
			/* Not recorded: the same slot is written again. */
			assert_int_equal(e.slot_cur, before);
			set_perm(&e, 700, (uint8_t)i);
			assert_int_equal(engine_persist(&e), 0);
		}
		assert_int_equal(e.slot_cur, 1 - before);
		assert_int_equal(r.gen, (uint64_t)i);
	}
	memcpy(hnew, r.hash, 32);
	engine_free(&e);
	assert_int_equal(managed_load(f, &e, false, 8, hnew, &r, &res), 0);
	engine_free(&e);
	assert_int_equal(managed_load(f, &e, false, 8, h2, &r, &res), -EBADMSG);
	assert_int_equal(res.verdict, SF_ERR_STALE);
	engine_free(&e);
	free(l[0]);
	free(l[1]);
}

static void fifos_and_symlinks_are_not_followed(void **state)
{
	struct fx *f = *state;
	struct statefile_expect exp = expect(uuid_a, 0);
	struct engine_load_result res;
	struct recorder r = { .f = f, .file = "m.0" };
	uint8_t h[32] = { 0 };
	struct engine e;
	int rc;

	/* A FIFO: no hang (O_NONBLOCK), refused as not a regular file. */
	assert_int_equal(mkfifoat(f->dirfd, "s", 0600), 0);
	engine_blank(&e);
	rc = engine_load(&e, f->dirfd, "s", &f->keys, &exp, &res);
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(res.detail, "not a regular file"));
	assert_false(res.created);
	engine_free(&e);
	assert_int_equal(mkfifoat(f->dirfd, "m.0", 0600), 0);
	rc = managed_load(f, &e, false, 1, h, &r, &res);
	assert_int_equal(rc, -EINVAL);
	engine_free(&e);
	assert_int_equal(unlinkat(f->dirfd, "m.0", 0), 0);
	assert_int_equal(mkfifoat(f->dirfd, "m.1", 0600), 0);
	rc = managed_load(f, &e, false, 1, h, &r, &res);
	assert_int_equal(rc, -EINVAL);
	engine_free(&e);
	/* A symlink, even to a good state file. */
	assert_int_equal(unlinkat(f->dirfd, "s", 0), 0);
	make_state(f);
	assert_int_equal(renameat(f->dirfd, "s", f->dirfd, "real"), 0);
	assert_int_equal(symlinkat("real", f->dirfd, "s"), 0);
	engine_blank(&e);
	rc = engine_load(&e, f->dirfd, "s", &f->keys, &exp, &res);
	assert_int_equal(rc, -ELOOP);
	assert_false(res.created);
	engine_free(&e);
}

/* A file no slot of which verifies is refused and left as it is. */
static void a_refused_slot_file_is_never_overwritten(void **state)
{
	struct fx *f = *state;
	struct engine_load_result res;
	uint8_t *buf, *again;
	size_t len, len2;

	make_state(f);
	read_file(f, "s", &buf, &len);
	buf[SLOTFILE_HDR_LEN + 100] ^= 1; /* the only state: torn */
	write_file(f, "s", buf, len);
	assert_int_equal(load_gen(f, 0, NULL, &res), -1);
	assert_int_equal(res.verdict, SF_ERR_AUTH);
	assert_non_null(strstr(res.detail, "s"));
	assert_false(res.created);
	read_file(f, "s", &again, &len2);
	assert_int_equal(len2, len);
	assert_memory_equal(again, buf, len);
	/* Truncated: refused with its reason. */
	write_file(f, "s", buf, len - 512);
	assert_int_equal(load_gen(f, 0, NULL, &res), -1);
	assert_int_equal(res.verdict, SF_ERR_TRUNCATED);
	free(buf);
	free(again);
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
		T(writes_go_in_place_into_alternate_slots),
		T(a_torn_slot_write_loads_the_previous_state),
		T(a_state_that_outgrows_its_slot_rebuilds_the_file),
		T(a_format1_file_converts_on_the_first_write),
		T(legacy_slot_files_convert_and_the_old_record_still_loads),
		T(fifos_and_symlinks_are_not_followed),
		T(a_refused_slot_file_is_never_overwritten),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
