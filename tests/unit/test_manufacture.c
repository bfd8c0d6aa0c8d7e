/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * core/instance/manufacture: the parsers of the engine's answers, fed the
 * real libtpms's answers and then every truncation and flip of them; and
 * the platform hierarchy an instance-made Startup leaves closed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <string.h>

#include "instance/engine.h"
#include "instance/manufacture.h"
#include "lib/bytes.h"
#include "proto/ekcert.h"
#include "proto/tpmframe.h"

static struct engine eng;

static uint32_t run_bytes(const uint8_t *cmd, size_t len, uint8_t *rsp,
			  size_t *rsplen)
{
	const uint8_t *r;
	uint32_t rl;

	engine_process(&eng, cmd, (uint32_t)len, &r, &rl);
	memcpy(rsp, r, rl);
	*rsplen = rl;
	return tpm_rsp_code(r, rl);
}

static void startup_raw(void)
{
	static const uint8_t su[] = { 0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01,
				      0x44, 0, 0 };
	uint8_t rsp[64];
	size_t n;

	assert_int_equal(engine_power_on(&eng, false), 0);
	assert_int_equal(run_bytes(su, sizeof(su), rsp, &n), 0);
}

static void flush(uint32_t handle)
{
	uint8_t cmd[14] = { 0x80, 0x01, 0, 0, 0, 14, 0, 0, 0x01, 0x65 };
	uint8_t rsp[64];
	size_t n;

	be32_put(cmd + 10, handle);
	assert_int_equal(run_bytes(cmd, sizeof(cmd), rsp, &n), 0);
}

/* The real engine's answer to CreatePrimary of an EK template. */
static void create_primary(uint8_t kind, uint8_t *rsp, size_t *len)
{
	uint8_t cmd[600];
	size_t n = mf_cmd_create_primary(kind, cmd, sizeof(cmd));

	assert_true(n > 0);
	assert_int_equal(run_bytes(cmd, n, rsp, len), 0);
}

static int setup(void **state)
{
	(void)state;
	if (engine_setup(&eng, TPM_VERSION_2, 0))
		return -1;
	startup_raw();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	engine_free(&eng);
	return 0;
}

static void ek_publics_come_from_the_templates(void **state)
{
	static uint8_t rsp[4096], again[4096];
	struct mgr_ek_certify_req a, b;
	uint32_t h, h2;
	EVP_PKEY *k;
	size_t n, n2;

	(void)state;
	memset(&a, 0, sizeof(a));
	create_primary(MGR_EK_KIND_RSA, rsp, &n);
	assert_int_equal(mf_parse_primary(rsp, n, MGR_EK_KIND_RSA, &h, &a), 0);
	assert_int_equal(a.kind, MGR_EK_KIND_RSA);
	assert_int_equal(a.key_len, MGR_EK_RSA_LEN);
	assert_int_equal(h >> 24, 0x80); /* a transient object */
	assert_int_equal(ekcert_rsa_key(a.key, a.key_len, &k), 0);
	EVP_PKEY_free(k);
	flush(h);
	/* Same seed, same template: the same key (what tpm2_createek
	 * finds later). */
	create_primary(MGR_EK_KIND_RSA, again, &n2);
	memset(&b, 0, sizeof(b));
	assert_int_equal(mf_parse_primary(again, n2, MGR_EK_KIND_RSA, &h2, &b),
			 0);
	assert_memory_equal(a.key, b.key, MGR_EK_RSA_LEN);
	flush(h2);
	/* An RSA answer is no ECC key. */
	assert_int_equal(mf_parse_primary(rsp, n, MGR_EK_KIND_ECC, &h, &b),
			 -EBADMSG);

	create_primary(MGR_EK_KIND_ECC, rsp, &n);
	assert_int_equal(mf_parse_primary(rsp, n, MGR_EK_KIND_ECC, &h, &a), 0);
	assert_int_equal(a.key_len, MGR_EK_ECC_LEN);
	assert_int_equal(ekcert_ecc_key(a.key, a.key_len, &k), 0);
	EVP_PKEY_free(k);
	flush(h);
	assert_int_equal(mf_parse_primary(rsp, n, MGR_EK_KIND_RSA, &h, &b),
			 -EBADMSG);
}

/* Offsets in a CreatePrimary answer: header 10, handle 4, parameterSize 4,
 * then TPM2B_PUBLIC's size at 18 and the TPMT_PUBLIC at 20. */
static void every_cut_and_flip_of_the_public_is_seen(void **state)
{
	static uint8_t rsp[4096], b[4096];
	struct mgr_ek_certify_req id;
	/* RSA: type .. keyBits end at 72, the exponent (ignored: 0 or
	 * 65537 alike) at 72..76, the modulus's size at 76..78. */
	const size_t fixed_end = 72, exp_end = 76, unique_end = 78;
	uint32_t h;
	size_t n;

	(void)state;
	create_primary(MGR_EK_KIND_RSA, rsp, &n);
	assert_int_equal(mf_parse_primary(rsp, n, MGR_EK_KIND_RSA, &h, &id), 0);
	flush(h);
	for (size_t cut = 0; cut < n; cut++) {
		memcpy(b, rsp, cut);
		assert_int_equal(mf_parse_primary(b, cut, MGR_EK_KIND_RSA, &h,
						  &id), -EBADMSG);
		/* The size field made to agree: still not a whole answer
		 * up to the end of the public area. */
		if (cut >= 10 && cut < 78 + 256) {
			be32_put(b + 2, (uint32_t)cut);
			assert_true(mf_parse_primary(b, cut, MGR_EK_KIND_RSA,
						     &h, &id) != 0);
		}
	}
	for (size_t pos = 18; pos < unique_end; pos++) {
		if (pos >= fixed_end && pos < exp_end)
			continue;
		for (unsigned x = 1; x < 256; x <<= 1) {
			memcpy(b, rsp, n);
			b[pos] ^= (uint8_t)x;
			if (mf_parse_primary(b, n, MGR_EK_KIND_RSA, &h, &id) !=
			    -EBADMSG)
				fail_msg("flip at %zu ^ 0x%x accepted", pos, x);
		}
	}
	/* A TPM error is passed up as itself. */
	memcpy(b, rsp, 10);
	be32_put(b + 2, 10);
	be16_put(b, 0x8001);
	be32_put(b + 6, 0x185);
	assert_int_equal(mf_parse_primary(b, 10, MGR_EK_KIND_RSA, &h, &id),
			 0x185);
	be32_put(b + 6, 0x80000000u);
	assert_int_equal(mf_parse_primary(b, 10, MGR_EK_KIND_RSA, &h, &id),
			 -EBADMSG);
}

static void properties_name_the_tpm(void **state)
{
	uint8_t cmd[64], rsp[512], b[512];
	struct mgr_ek_certify_req id;
	char mf[12], model[17], ver[12];
	struct ekcert_tpm t;
	size_t n, cl;

	(void)state;
	cl = mf_cmd_properties(cmd, sizeof(cmd));
	assert_true(cl > 0);
	assert_int_equal(run_bytes(cmd, cl, rsp, &n), 0);
	memset(&id, 0, sizeof(id));
	assert_int_equal(mf_parse_properties(rsp, n, &id), 0);
	assert_int_equal(id.manufacturer, 0x49424d00); /* "IBM" */
	assert_int_equal(id.spec_level, 0);
	assert_true(id.spec_revision >= 116);
	assert_true(id.fw_version[0] != 0);
	memset(&t, 0, sizeof(t));
	memcpy(t.model, id.model, sizeof(t.model));
	ekcert_tpm_strings(&t, mf, model, ver);
	assert_true(strlen(model) > 0 && strcmp(model, "unknown") != 0);
	for (size_t cut = 0; cut < n; cut++)
		assert_int_equal(mf_parse_properties(rsp, cut, &id), -EBADMSG);
	/* A count past what the answer holds, or past any real one. */
	memcpy(b, rsp, n);
	be32_put(b + 15, 65);
	assert_int_equal(mf_parse_properties(b, n, &id), -EBADMSG);
	be32_put(b + 15, 13);
	assert_int_equal(mf_parse_properties(b, n, &id), -EBADMSG);
	/* Another capability. */
	memcpy(b, rsp, n);
	be32_put(b + 11, 5);
	assert_int_equal(mf_parse_properties(b, n, &id), -EBADMSG);
}

/* TPM2_NV_DefineSpace of a small index with the platform's empty auth:
 * the TPM's response code. */
static uint32_t platform_define(uint32_t index)
{
	uint8_t cmd[64], rsp[64];
	size_t n;

	memset(cmd, 0, sizeof(cmd));
	be16_put(cmd, 0x8002);
	be32_put(cmd + 6, 0x12a);
	be32_put(cmd + 10, 0x4000000c);
	be32_put(cmd + 14, 9);
	be32_put(cmd + 18, 0x40000009);
	/* nonce 0, attrs 0, hmac 0: cmd[22..26] */
	be16_put(cmd + 27, 0);  /* auth */
	be16_put(cmd + 29, 14); /* publicInfo */
	be32_put(cmd + 31, index);
	be16_put(cmd + 35, 0x000b);
	be32_put(cmd + 37, MF_NV_ATTRS);
	be16_put(cmd + 41, 0);
	be16_put(cmd + 43, 8);
	be32_put(cmd + 2, 45);
	return run_bytes(cmd, 45, rsp, &n);
}

static void startup_by_the_instance_closes_the_platform(void **state)
{
	(void)state;
	/* A TPM the platform firmware started: the hierarchy is open. */
	startup_raw();
	assert_int_equal(platform_define(0x01c00100), 0);
	/* The instance's own Startup: closed to everyone after it. */
	assert_int_equal(engine_power_on(&eng, false), 0);
	assert_int_equal(engine_startup_clear(&eng), 0);
	assert_int_equal(platform_define(0x01c00101) & 0xfff, 0x185);
	assert_int_equal(engine_platform_disable(&eng) & 0xfff, 0x185);
	/* And at the next power cycle too. */
	engine_power_off(&eng);
	assert_int_equal(engine_power_on(&eng, false), 0);
	assert_int_equal(engine_startup_clear(&eng), 0);
	assert_int_equal(platform_define(0x01c00102) & 0xfff, 0x185);
	startup_raw();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ek_publics_come_from_the_templates),
		cmocka_unit_test(every_cut_and_flip_of_the_public_is_seen),
		cmocka_unit_test(properties_name_the_tpm),
		cmocka_unit_test(startup_by_the_instance_closes_the_platform),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
