/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The engine's side of Xen save/restore on the real libtpms: the volatile
 * state saved with a resume tag survives a state file round trip and a
 * new power-on (PCR 16 and a loaded object as they were, the TPM already
 * started), and, once forgotten, the next power-on is a fresh boot (PCR
 * 16 reset, persistent state kept).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "instance/engine.h"
#include "lib/bytes.h"
#include "proto/resumetag.h"
#include "proto/statefile.h"
#include "proto/tpmframe.h"

#define RC_INITIALIZE 0x100u

static struct engine eng;
static const uint8_t digest[32] = { 0x16, 0x16, 0x16, 0x16, 1, 2, 3, 4 };

static uint32_t run(const uint8_t *cmd, size_t len, uint8_t *rsp,
		    uint32_t *rsplen)
{
	const uint8_t *r;
	uint32_t rl;

	engine_process(&eng, cmd, (uint32_t)len, &r, &rl);
	if (rsp) {
		memcpy(rsp, r, rl);
		*rsplen = rl;
	}
	return tpm_rsp_code(r, rl);
}

static void pcr16_extend(void)
{
	uint8_t cmd[65] = { 0x80, 0x02, 0, 0, 0, 65, 0, 0, 0x01, 0x82,
			    0, 0, 0, 16, 0, 0, 0, 9, 0x40, 0, 0, 9,
			    0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0x0b };

	memcpy(cmd + 33, digest, 32);
	assert_int_equal(run(cmd, sizeof(cmd), NULL, NULL), 0);
}

static void pcr16_read(uint8_t out[32])
{
	static const uint8_t cmd[] = { 0x80, 0x01, 0, 0, 0, 20, 0, 0, 0x01,
				       0x7e, 0, 0, 0, 1, 0, 0x0b, 3, 0, 0, 1 };
	uint8_t rsp[128];
	uint32_t n;

	assert_int_equal(run(cmd, sizeof(cmd), rsp, &n), 0);
	assert_int_equal(n, 62);
	memcpy(out, rsp + 30, 32);
}

/* TPM2_GetCapability(TPM_CAP_HANDLES, transient): how many are loaded. */
static uint32_t transient_count(void)
{
	static const uint8_t cmd[] = { 0x80, 0x01, 0, 0, 0, 22, 0, 0, 0x01,
				       0x7a, 0, 0, 0, 1, 0x80, 0, 0, 0,
				       0, 0, 0, 8 };
	uint8_t rsp[256];
	uint32_t n;

	assert_int_equal(run(cmd, sizeof(cmd), rsp, &n), 0);
	return be32_get(rsp + 15);
}

/* A primary ECC key under the null hierarchy: a loaded transient. */
static void load_primary(void)
{
	static const uint8_t cmd[] = {
		0x80, 0x02, 0, 0, 0, 0x43, 0, 0, 0x01, 0x31,
		0x40, 0, 0, 0x07,		/* TPM_RH_NULL */
		0, 0, 0, 9, 0x40, 0, 0, 9, 0, 0, 0, 0, 0,
		0, 4, 0, 0, 0, 0,		/* no sensitive */
		0, 0x1a, 0, 0x23, 0, 0x0b,	/* ECC, sha256 */
		0, 0x03, 0, 0x72,		/* fixed*, sensitiveData, user, restricted, decrypt */
		0, 0,				/* no policy */
		0, 0x06, 0, 0x80, 0, 0x43,	/* AES-128-CFB */
		0, 0x10, 0, 0x03,		/* no scheme, NIST P-256 */
		0, 0x10, 0, 0, 0, 0,		/* no kdf, empty point */
		0, 0, 0, 0, 0, 0,		/* outsideInfo, creationPCR */
	};
	uint8_t rsp[1024];
	uint32_t n;

	assert_int_equal(run(cmd, sizeof(cmd), rsp, &n), 0);
}

/* What the instance writes and a new process loads. */
static void state_file_round_trip(void)
{
	uint8_t master[STATE_KEY_LEN], *buf;
	struct statefile_meta meta = { .family = 2, .generation = 1 };
	struct statefile_expect exp = { .family = 2 };
	struct statefile_blobs back;
	struct state_keys k;
	size_t len;

	memset(master, 7, sizeof(master));
	assert_int_equal(state_keys_derive(master, &k), 0);
	assert_int_equal(statefile_encode(&k, &meta, &eng.blobs, &buf, &len),
			 0);
	assert_int_equal(statefile_decode(&k, buf, len, &exp, &meta, &back), 0);
	free(buf);
	engine_power_off(&eng);
	statefile_blobs_free(&eng.blobs);
	eng.blobs = back;
}

static void a_saved_volatile_state_resumes_then_a_forgotten_one_does_not(
	void **state)
{
	static const uint8_t zero[32];
	struct resume_tag t = { .domid = 5, .devid = 0, .vm = { 0xab } }, got;
	uint8_t tag[RESUMETAG_LEN], before[32], after[32];
	const uint8_t *b;
	uint32_t n;

	(void)state;
	assert_int_equal(engine_setup(&eng, TPM_VERSION_2, 0), 0);
	assert_int_equal(engine_power_on(&eng, false), 0);
	assert_int_equal(engine_startup_clear(&eng), 0);
	pcr16_extend();
	pcr16_read(before);
	assert_memory_not_equal(before, zero, 32);
	load_primary();
	assert_int_equal(transient_count(), 1);

	resumetag_encode(&t, tag);
	assert_int_equal(engine_suspend_save(&eng, tag, sizeof(tag)), 0);
	assert_true(engine_is_dirty(&eng));
	assert_true(engine_has_volatile(&eng));
	b = engine_resume_tag(&eng, &n);
	assert_int_equal(resumetag_decode(b, n, &got), 0);
	assert_int_equal(got.domid, 5);

	/* A new process: the file, a power-on, no Startup. */
	state_file_round_trip();
	assert_non_null(engine_resume_tag(&eng, &n));
	assert_int_equal(engine_power_on(&eng, false), 0);
	assert_int_equal(engine_startup_clear(&eng), RC_INITIALIZE);
	pcr16_read(after);
	assert_memory_equal(after, before, 32);
	assert_int_equal(transient_count(), 1);

	/* Used once: forgotten, the next power-on is a new boot. */
	engine_resume_forget(&eng);
	assert_null(engine_resume_tag(&eng, &n));
	assert_false(engine_has_volatile(&eng));
	state_file_round_trip();
	assert_int_equal(engine_power_on(&eng, true), 0);
	assert_int_equal(engine_startup_clear(&eng), 0);
	pcr16_read(after);
	assert_memory_equal(after, zero, 32);
	assert_int_equal(transient_count(), 0);
	engine_free(&eng);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			a_saved_volatile_state_resumes_then_a_forgotten_one_does_not),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
