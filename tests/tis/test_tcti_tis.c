/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hal/tis-mmio's TCTI against a software register window (tis_model.c)
 * backed by a real TPM 2.0: libtpms, in this process.  ESYS runs real
 * commands through the FIFO; then the window misbehaves in each way the
 * issue names, and every failure must come back as a clear error within
 * its timeout, leave no request or command behind, and never write past
 * a buffer (run under ASan too: -DVTPM_SANITIZE=ON).
 *
 * The timeouts are shortened (struct tis_timeouts) so the suite runs in
 * seconds; spec_timeouts_* prove the real defaults on a virtual clock.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>

#include "tis-mmio/tcti_tis.h"
#include "tis_model.h"

/* Distinct values, so an elapsed time also says which timeout fired. */
static const struct tis_timeouts fast = {
	.a_ms = 100, .b_ms = 150, .c_ms = 60, .d_ms = 80, .duration_ms = 300,
};
#define MARGIN_MS 400 /* scheduling, ASan, a loaded CI machine */

/* ---- libtpms as the TPM behind the window ------------------------------ */

static struct nv_blob {
	char name[32];
	unsigned char *data;
	uint32_t len;
} nv[4];

static struct nv_blob *nv_find(const char *name, int create)
{
	for (size_t i = 0; i < sizeof(nv) / sizeof(nv[0]); i++) {
		if (nv[i].name[0] && !strcmp(nv[i].name, name))
			return &nv[i];
	}
	for (size_t i = 0; create && i < sizeof(nv) / sizeof(nv[0]); i++) {
		if (!nv[i].name[0]) {
			snprintf(nv[i].name, sizeof(nv[i].name), "%s", name);
			return &nv[i];
		}
	}
	return NULL;
}

static TPM_RESULT nv_init(void)
{
	return TPM_SUCCESS;
}

static TPM_RESULT nv_load(unsigned char **data, uint32_t *length,
			  uint32_t tpm_number, const char *name)
{
	struct nv_blob *b = nv_find(name, 0);

	(void)tpm_number;
	*data = NULL;
	*length = 0;
	if (!b || !b->data)
		return TPM_RETRY; /* none yet: a manufactured TPM */
	*data = malloc(b->len);
	if (!*data)
		return TPM_FAIL;
	memcpy(*data, b->data, b->len);
	*length = b->len;
	return TPM_SUCCESS;
}

static TPM_RESULT nv_store(const unsigned char *data, uint32_t length,
			   uint32_t tpm_number, const char *name)
{
	struct nv_blob *b = nv_find(name, 1);
	unsigned char *copy = malloc(length ? length : 1);

	(void)tpm_number;
	if (!b || !copy) {
		free(copy);
		return TPM_FAIL;
	}
	memcpy(copy, data, length);
	free(b->data);
	b->data = copy;
	b->len = length;
	return TPM_SUCCESS;
}

static TPM_RESULT nv_delete(uint32_t tpm_number, const char *name,
			    TPM_BOOL must_exist)
{
	struct nv_blob *b = nv_find(name, 0);

	(void)tpm_number;
	if (!b)
		return must_exist ? TPM_FAIL : TPM_SUCCESS;
	free(b->data);
	memset(b, 0, sizeof(*b));
	return TPM_SUCCESS;
}

static unsigned int tpm_locality;

static TPM_RESULT io_init(void)
{
	return TPM_SUCCESS;
}

static TPM_RESULT io_locality(TPM_MODIFIER_INDICATOR *loc, uint32_t n)
{
	(void)n;
	*loc = tpm_locality;
	return TPM_SUCCESS;
}

static TPM_RESULT io_pp(TPM_BOOL *pp, uint32_t n)
{
	(void)n;
	*pp = 0;
	return TPM_SUCCESS;
}

static unsigned char *tpm_rbuf;
static uint32_t tpm_rbuf_size;

static int libtpms_backend(void *ctx, unsigned int locality,
			   const uint8_t *cmd, size_t len, uint8_t *rsp,
			   size_t rspmax, size_t *rsplen)
{
	uint32_t n = 0;

	(void)ctx;
	tpm_locality = locality;
	if (TPMLIB_Process(&tpm_rbuf, &n, &tpm_rbuf_size, (unsigned char *)cmd,
			   (uint32_t)len) != TPM_SUCCESS || n > rspmax)
		return -1;
	memcpy(rsp, tpm_rbuf, n);
	*rsplen = n;
	return 0;
}

static int tpm_start(void **state)
{
	static struct libtpms_callbacks cbs = {
		.sizeOfStruct = sizeof(struct libtpms_callbacks),
		.tpm_nvram_init = nv_init,
		.tpm_nvram_loaddata = nv_load,
		.tpm_nvram_storedata = nv_store,
		.tpm_nvram_deletename = nv_delete,
		.tpm_io_init = io_init,
		.tpm_io_getlocality = io_locality,
		.tpm_io_getphysicalpresence = io_pp,
	};
	static const uint8_t startup_clear[] = { 0x80, 0x01, 0, 0, 0, 12,
						 0, 0, 0x01, 0x44, 0, 0 };
	uint8_t rsp[64];
	size_t len = 0;

	(void)state;
	if (TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2) ||
	    TPMLIB_RegisterCallbacks(&cbs) || TPMLIB_MainInit())
		return -1;
	if (libtpms_backend(NULL, 0, startup_clear, sizeof(startup_clear), rsp,
			    sizeof(rsp), &len) || len != 10 || rsp[9] != 0)
		return -1;
	return 0;
}

static int tpm_stop(void **state)
{
	(void)state;
	TPMLIB_Terminate();
	free(tpm_rbuf);
	for (size_t i = 0; i < sizeof(nv) / sizeof(nv[0]); i++)
		free(nv[i].data);
	return 0;
}

/* ---- fixture and helpers ----------------------------------------------- */

struct fx {
	struct tis_model m;
	TSS2_TCTI_CONTEXT *tcti;
	char err[320];
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	tis_model_init(&fx->m, libtpms_backend, NULL);
	if (tcti_tis_init_ops(&tis_model_ops, &fx->m, 0, &fast, &fx->tcti,
			      fx->err, sizeof(fx->err))) {
		fprintf(stderr, "init: %s\n", fx->err);
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	if (fx->tcti) {
		Tss2_Tcti_Finalize(fx->tcti);
		free(fx->tcti);
	}
	free(fx);
	return 0;
}

/* A fresh model for tests about init; no TCTI yet. */
static int setup_bare(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	tis_model_init(&fx->m, libtpms_backend, NULL);
	*state = fx;
	return 0;
}

static uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define assert_took(t0, at_least_ms)                                      \
	do {                                                              \
		uint64_t took_ = ms_now() - (t0);                         \
		if (took_ < (at_least_ms) ||                              \
		    took_ > (uint64_t)(at_least_ms) + MARGIN_MS)          \
			fail_msg("took %llu ms, expected %u..%u",         \
				 (unsigned long long)took_,               \
				 (unsigned)(at_least_ms),                 \
				 (unsigned)(at_least_ms) + MARGIN_MS);    \
	} while (0)

#define assert_error_says(tcti, text)                                     \
	do {                                                              \
		const char *e_ = tcti_tis_last_error(tcti);               \
		if (!strstr(e_, (text)))                                  \
			fail_msg("error \"%s\" does not say \"%s\"", e_,  \
				 (text));                                 \
	} while (0)

static void getrandom_cmd(uint8_t cmd[12], uint16_t n)
{
	static const uint8_t hdr[10] = { 0x80, 0x01, 0, 0, 0, 12,
					 0, 0, 0x01, 0x7b };

	memcpy(cmd, hdr, 10);
	cmd[10] = (uint8_t)(n >> 8);
	cmd[11] = (uint8_t)n;
}

/* TPM2_GetRandom(n) as raw bytes through the TCTI. */
static TSS2_RC getrandom_raw(TSS2_TCTI_CONTEXT *tcti, uint16_t n, uint8_t *rsp,
			     size_t *len)
{
	uint8_t cmd[12];
	TSS2_RC rc;

	getrandom_cmd(cmd, n);
	rc = Tss2_Tcti_Transmit(tcti, sizeof(cmd), cmd);
	if (rc)
		return rc;
	return Tss2_Tcti_Receive(tcti, len, rsp, TSS2_TCTI_TIMEOUT_BLOCK);
}

static void getrandom_works(struct fx *fx)
{
	uint8_t rsp[TIS_BUFFER_MAX];
	size_t len = sizeof(rsp);
	TSS2_RC rc;

	rc = getrandom_raw(fx->tcti, 16, rsp, &len);
	if (rc)
		fail_msg("GetRandom: %s: %s", Tss2_RC_Decode(rc),
			 tcti_tis_last_error(fx->tcti));
	assert_int_equal(len, 10 + 2 + 16);
	assert_int_equal(rsp[9], 0); /* TPM_RC_SUCCESS, low byte */
}

/* After a failure nothing may be left behind: no locality, no request. */
static void assert_tpm_released(const struct fx *fx)
{
	assert_int_equal(fx->m.active, -1);
	assert_int_equal(fx->m.requested, 0);
}

static void set(struct fx *fx, const struct tis_faults *f)
{
	tis_model_set_faults(&fx->m, f);
}

/* ---- real commands through ESYS ---------------------------------------- */

static void esys_getrandom_reads_tpm_bytes_through_the_fifo(void **state)
{
	struct fx *fx = *state;
	TPM2B_DIGEST *a = NULL, *b = NULL;
	ESYS_CONTEXT *esys = NULL;

	assert_int_equal(Esys_Initialize(&esys, fx->tcti, NULL), 0);
	assert_int_equal(Esys_GetRandom(esys, ESYS_TR_NONE, ESYS_TR_NONE,
					ESYS_TR_NONE, 32, &a), 0);
	assert_int_equal(Esys_GetRandom(esys, ESYS_TR_NONE, ESYS_TR_NONE,
					ESYS_TR_NONE, 32, &b), 0);
	assert_int_equal(a->size, 32);
	assert_int_equal(b->size, 32);
	assert_memory_not_equal(a->buffer, b->buffer, 32);
	assert_true(fx->m.commands >= 2);
	assert_int_equal(fx->m.cmd_overflow, 0);
	assert_int_equal(fx->m.fifo_overread, 0);
	assert_tpm_released(fx);
	Esys_Free(a);
	Esys_Free(b);
	Esys_Finalize(&esys);
}

static const TPM2B_PUBLIC ecc_primary = {
	.publicArea = {
		.type = TPM2_ALG_ECC,
		.nameAlg = TPM2_ALG_SHA256,
		.objectAttributes = TPMA_OBJECT_RESTRICTED |
			TPMA_OBJECT_DECRYPT | TPMA_OBJECT_FIXEDTPM |
			TPMA_OBJECT_FIXEDPARENT |
			TPMA_OBJECT_SENSITIVEDATAORIGIN |
			TPMA_OBJECT_USERWITHAUTH,
		.parameters.eccDetail = {
			.symmetric = {
				.algorithm = TPM2_ALG_AES,
				.keyBits.aes = 128,
				.mode.aes = TPM2_ALG_CFB,
			},
			.scheme.scheme = TPM2_ALG_NULL,
			.curveID = TPM2_ECC_NIST_P256,
			.kdf.scheme = TPM2_ALG_NULL,
		},
	},
};

static void create_primary(ESYS_CONTEXT *esys, TPM2B_PUBLIC **pub)
{
	static const TPM2B_SENSITIVE_CREATE in;
	static const TPM2B_DATA outside;
	static const TPML_PCR_SELECTION pcrs;
	TPM2B_CREATION_DATA *cd = NULL;
	TPM2B_DIGEST *hash = NULL;
	TPMT_TK_CREATION *tk = NULL;
	ESYS_TR h = ESYS_TR_NONE;
	TSS2_RC rc;

	rc = Esys_CreatePrimary(esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD,
				ESYS_TR_NONE, ESYS_TR_NONE, &in, &ecc_primary,
				&outside, &pcrs, &h, pub, &cd, &hash, &tk);
	if (rc)
		fail_msg("CreatePrimary: %s", Tss2_RC_Decode(rc));
	Esys_Free(cd);
	Esys_Free(hash);
	Esys_Free(tk);
	assert_int_equal(Esys_FlushContext(esys, h), 0);
}

/* Hundreds of bytes each way in 7-byte bursts; same seed and template
 * give the same key, which only a real TPM does. */
static void esys_create_primary_works_in_seven_byte_bursts(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .burst = 7 };
	TPM2B_PUBLIC *p1 = NULL, *p2 = NULL;
	ESYS_CONTEXT *esys = NULL;

	set(fx, &f);
	assert_int_equal(Esys_Initialize(&esys, fx->tcti, NULL), 0);
	create_primary(esys, &p1);
	create_primary(esys, &p2);
	assert_int_equal(p1->publicArea.unique.ecc.x.size, 32);
	assert_int_equal(p1->publicArea.unique.ecc.y.size, 32);
	assert_memory_equal(&p1->publicArea.unique.ecc,
			    &p2->publicArea.unique.ecc,
			    sizeof(p1->publicArea.unique.ecc));
	assert_int_equal(fx->m.cmd_overflow, 0);
	assert_int_equal(fx->m.fifo_overread, 0);
	Esys_Free(p1);
	Esys_Free(p2);
	Esys_Finalize(&esys);
}

static void set_locality_sends_the_next_command_from_that_locality(void **state)
{
	struct fx *fx = *state;
	TPM2B_DIGEST *r = NULL;
	ESYS_CONTEXT *esys = NULL;

	assert_int_equal(Tss2_Tcti_SetLocality(fx->tcti, 2), 0);
	assert_int_equal(Esys_Initialize(&esys, fx->tcti, NULL), 0);
	assert_int_equal(Esys_GetRandom(esys, ESYS_TR_NONE, ESYS_TR_NONE,
					ESYS_TR_NONE, 8, &r), 0);
	assert_int_equal(fx->m.last_locality, 2);
	assert_int_equal(tpm_locality, 2);
	assert_tpm_released(fx);
	Esys_Free(r);
	Esys_Finalize(&esys);
}

/* ---- TCTI semantics ---------------------------------------------------- */

static void receive_without_a_buffer_returns_the_announced_size(void **state)
{
	struct fx *fx = *state;
	uint8_t cmd[12], *rsp;
	size_t len = 0;

	getrandom_cmd(cmd, 20);
	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, sizeof(cmd), cmd), 0);
	assert_int_equal(Tss2_Tcti_Receive(fx->tcti, &len, NULL, -1), 0);
	assert_int_equal(len, 10 + 2 + 20);
	/* Asking twice changes nothing. */
	len = 0;
	assert_int_equal(Tss2_Tcti_Receive(fx->tcti, &len, NULL, -1), 0);
	assert_int_equal(len, 32);
	rsp = malloc(len); /* exactly: ASan sees any byte past it */
	assert_non_null(rsp);
	assert_int_equal(Tss2_Tcti_Receive(fx->tcti, &len, rsp, -1), 0);
	assert_int_equal(len, 32);
	assert_int_equal(rsp[0] << 8 | rsp[1], 0x8001);
	assert_int_equal(rsp[10] << 8 | rsp[11], 20);
	free(rsp);
	assert_tpm_released(fx);
}

static void short_buffer_gets_insufficient_buffer_and_the_response_stays(void **state)
{
	struct fx *fx = *state;
	uint8_t cmd[12], *small, *big;
	size_t len;

	getrandom_cmd(cmd, 40);
	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, sizeof(cmd), cmd), 0);
	len = 51;
	small = malloc(len);
	assert_non_null(small);
	assert_int_equal(Tss2_Tcti_Receive(fx->tcti, &len, small, -1),
			 TSS2_TCTI_RC_INSUFFICIENT_BUFFER);
	assert_int_equal(len, 52); /* what it needs */
	assert_error_says(fx->tcti, "does not fit a 51-byte buffer");
	big = malloc(len);
	assert_non_null(big);
	assert_int_equal(Tss2_Tcti_Receive(fx->tcti, &len, big, -1), 0);
	assert_int_equal(len, 52);
	assert_int_equal(big[10] << 8 | big[11], 40);
	free(small);
	free(big);
	assert_int_equal(fx->m.fifo_overread, 0);
	assert_tpm_released(fx);
}

static void receive_with_a_timeout_says_try_again_while_the_tpm_works(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .exec_ms = 200 };
	uint8_t cmd[12], rsp[64];
	size_t len = sizeof(rsp);
	uint64_t t0;

	set(fx, &f);
	getrandom_cmd(cmd, 4);
	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, sizeof(cmd), cmd), 0);
	t0 = ms_now();
	assert_int_equal(Tss2_Tcti_Receive(fx->tcti, &len, rsp, 30),
			 TSS2_TCTI_RC_TRY_AGAIN);
	assert_took(t0, 30);
	assert_error_says(fx->tcti, "still running");
	assert_int_equal(Tss2_Tcti_Receive(fx->tcti, &len, rsp, 0),
			 TSS2_TCTI_RC_TRY_AGAIN);
	assert_int_equal(Tss2_Tcti_Receive(fx->tcti, &len, rsp, -1), 0);
	assert_int_equal(len, 16);
	assert_true(ms_now() - t0 >= 200);
	assert_tpm_released(fx);
}

static void calls_out_of_order_are_bad_sequence(void **state)
{
	struct fx *fx = *state;
	uint8_t cmd[12], rsp[64];
	size_t len = sizeof(rsp);

	assert_int_equal(Tss2_Tcti_Receive(fx->tcti, &len, rsp, -1),
			 TSS2_TCTI_RC_BAD_SEQUENCE);
	assert_int_equal(Tss2_Tcti_Cancel(fx->tcti), TSS2_TCTI_RC_BAD_SEQUENCE);
	getrandom_cmd(cmd, 4);
	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, sizeof(cmd), cmd), 0);
	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, sizeof(cmd), cmd),
			 TSS2_TCTI_RC_BAD_SEQUENCE);
	assert_int_equal(Tss2_Tcti_SetLocality(fx->tcti, 1),
			 TSS2_TCTI_RC_BAD_SEQUENCE);
	assert_int_equal(Tss2_Tcti_Receive(fx->tcti, NULL, rsp, -1),
			 TSS2_TCTI_RC_BAD_REFERENCE);
	assert_int_equal(Tss2_Tcti_Receive(fx->tcti, &len, rsp, -2),
			 TSS2_TCTI_RC_BAD_VALUE);
	assert_int_equal(Tss2_Tcti_Receive(fx->tcti, &len, rsp, -1), 0);
	assert_int_equal(fx->m.commands, 1);
}

static void transmit_refuses_commands_that_are_not_well_framed(void **state)
{
	struct fx *fx = *state;
	uint8_t cmd[TIS_BUFFER_MAX + 1] = { 0x80, 0x01, 0, 0, 0, 12,
					    0, 0, 0x01, 0x7b, 0, 4 };

	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, 9, cmd),
			 TSS2_TCTI_RC_BAD_VALUE);
	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, 13, cmd),
			 TSS2_TCTI_RC_BAD_VALUE);
	assert_error_says(fx->tcti, "header says 12 bytes, the buffer holds 13");
	cmd[2] = 0x00; cmd[3] = 0x00; cmd[4] = 0x10; cmd[5] = 0x01;
	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, sizeof(cmd), cmd),
			 TSS2_TCTI_RC_BAD_VALUE);
	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, 12, NULL),
			 TSS2_TCTI_RC_BAD_REFERENCE);
	assert_int_equal(fx->m.commands, 0);
	assert_int_equal(fx->m.grants, 0); /* refused before any MMIO */
}

static void cancel_sends_command_cancel_and_the_next_command_works(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .exec_ms = 10000 }, none = { 0 };
	uint8_t cmd[12], rsp[64];
	size_t len = sizeof(rsp);

	set(fx, &f);
	getrandom_cmd(cmd, 4);
	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, sizeof(cmd), cmd), 0);
	assert_int_equal(Tss2_Tcti_Receive(fx->tcti, &len, rsp, 0),
			 TSS2_TCTI_RC_TRY_AGAIN);
	assert_int_equal(Tss2_Tcti_Cancel(fx->tcti), 0);
	assert_int_equal(fx->m.cancels, 1);
	assert_tpm_released(fx);
	assert_int_equal(Tss2_Tcti_Receive(fx->tcti, &len, rsp, -1),
			 TSS2_TCTI_RC_BAD_SEQUENCE);
	set(fx, &none);
	getrandom_works(fx);
}

static void set_locality_accepts_0_to_4_only(void **state)
{
	struct fx *fx = *state;

	assert_int_equal(Tss2_Tcti_SetLocality(fx->tcti, 5),
			 TSS2_TCTI_RC_BAD_VALUE);
	assert_int_equal(Tss2_Tcti_SetLocality(fx->tcti, 255),
			 TSS2_TCTI_RC_BAD_VALUE);
	assert_int_equal(Tss2_Tcti_SetLocality(fx->tcti, 4), 0);
	assert_int_equal(Tss2_Tcti_SetLocality(fx->tcti, 0), 0);
	getrandom_works(fx);
	assert_int_equal(fx->m.last_locality, 0);
}

static void poll_handles_and_make_sticky_are_not_implemented(void **state)
{
	struct fx *fx = *state;
	size_t n = 0;
	TPM2_HANDLE h = 0x80000000;

	assert_int_equal(Tss2_Tcti_GetPollHandles(fx->tcti, NULL, &n),
			 TSS2_TCTI_RC_NOT_IMPLEMENTED);
	assert_int_equal(Tss2_Tcti_MakeSticky(fx->tcti, &h, 1),
			 TSS2_TCTI_RC_NOT_IMPLEMENTED);
	assert_int_equal(TSS2_TCTI_VERSION(fx->tcti), 2);
}

static void finalize_during_a_command_aborts_it_and_releases(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .exec_ms = 10000 };
	uint8_t cmd[12], rsp[64];
	size_t len = sizeof(rsp);

	set(fx, &f);
	getrandom_cmd(cmd, 4);
	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, sizeof(cmd), cmd), 0);
	assert_int_equal(fx->m.active, 0);
	Tss2_Tcti_Finalize(fx->tcti);
	assert_int_equal(fx->m.aborts, 1);
	assert_tpm_released(fx);
	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, sizeof(cmd), cmd),
			 TSS2_TCTI_RC_BAD_SEQUENCE);
	assert_int_equal(Tss2_Tcti_Receive(fx->tcti, &len, rsp, -1),
			 TSS2_TCTI_RC_BAD_SEQUENCE);
	Tss2_Tcti_Finalize(fx->tcti); /* twice is harmless */
}

static void last_error_of_a_foreign_context_says_so(void **state)
{
	uint64_t foreign[16] = { 0x1234 };

	(void)state;
	assert_string_equal(tcti_tis_last_error((TSS2_TCTI_CONTEXT *)foreign),
			    "not a tis-mmio TCTI context");
	assert_string_equal(tcti_tis_last_error(NULL),
			    "not a tis-mmio TCTI context");
	assert_int_equal(tcti_tis_did_vid(NULL), 0);
}

/* ---- a window that misbehaves ------------------------------------------ */

static void burst_count_zero_for_a_while_is_waited_out(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .burst = 5, .burst_zero_polls = 12 };

	set(fx, &f);
	getrandom_works(fx);
	assert_int_equal(fx->m.cmd_overflow, 0);
}

static void burst_count_zero_forever_fails_within_timeout_d(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .burst_zero_polls = UINT32_MAX };
	uint8_t cmd[12];
	uint64_t t0 = ms_now();

	set(fx, &f);
	getrandom_cmd(cmd, 4);
	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, sizeof(cmd), cmd),
			 TSS2_TCTI_RC_IO_ERROR);
	assert_took(t0, fast.d_ms);
	assert_error_says(fx->tcti, "burstCount stayed 0 for 80 ms with 0 of "
			  "12 command bytes sent");
	assert_tpm_released(fx);
	assert_int_equal(fx->m.commands, 0);
}

static void burst_count_zero_forever_while_reading_fails_within_timeout_d(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .burst = 4 };
	uint8_t cmd[12], rsp[64];
	size_t len = sizeof(rsp);
	uint64_t t0;

	set(fx, &f);
	getrandom_cmd(cmd, 8);
	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, sizeof(cmd), cmd), 0);
	f.burst_zero_polls = UINT32_MAX;
	set(fx, &f);
	t0 = ms_now();
	assert_int_equal(Tss2_Tcti_Receive(fx->tcti, &len, rsp, -1),
			 TSS2_TCTI_RC_IO_ERROR);
	assert_took(t0, fast.d_ms);
	assert_error_says(fx->tcti, "burstCount stayed 0");
	assert_error_says(fx->tcti, "response bytes read");
	assert_tpm_released(fx);
}

static void command_ready_never_set_fails_within_timeout_b(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .never_ready = true };
	uint8_t cmd[12];
	uint64_t t0 = ms_now();

	set(fx, &f);
	getrandom_cmd(cmd, 4);
	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, sizeof(cmd), cmd),
			 TSS2_TCTI_RC_IO_ERROR);
	assert_took(t0, fast.b_ms);
	assert_error_says(fx->tcti, "TPM_STS.commandReady not set within "
			  "150 ms");
	assert_tpm_released(fx);
}

static void locality_held_by_another_fails_init_within_timeout_a(void **state)
{
	struct fx *fx = *state;
	uint64_t t0 = ms_now();

	fx->m.active = 3; /* firmware or another agent holds locality 3 */
	assert_int_equal(tcti_tis_init_ops(&tis_model_ops, &fx->m, 0, &fast,
					   &fx->tcti, fx->err,
					   sizeof(fx->err)), -ETIMEDOUT);
	assert_took(t0, fast.a_ms);
	assert_null(fx->tcti);
	assert_non_null(strstr(fx->err, "locality 0 not granted within 100 "
			       "ms"));
	assert_non_null(strstr(fx->err, "another locality holds the TPM"));
	assert_int_equal(fx->m.requested, 0); /* the request was withdrawn */
	assert_int_equal(fx->m.active, 3);
}

static void locality_never_granted_fails_a_command_within_timeout_a(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .never_grant = true };
	uint8_t cmd[12];
	uint64_t t0;

	assert_int_equal(fx->m.active, -1); /* init gave it back */
	set(fx, &f);
	getrandom_cmd(cmd, 4);
	t0 = ms_now();
	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, sizeof(cmd), cmd),
			 TSS2_TCTI_RC_NO_CONNECTION);
	assert_took(t0, fast.a_ms);
	assert_error_says(fx->tcti, "locality 0 not granted within 100 ms");
	assert_tpm_released(fx);
}

static void access_never_valid_fails_init_within_timeout_a(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .valid_never = true };
	uint64_t t0 = ms_now();

	set(fx, &f);
	assert_int_equal(tcti_tis_init_ops(&tis_model_ops, &fx->m, 0, &fast,
					   &fx->tcti, fx->err,
					   sizeof(fx->err)), -ETIMEDOUT);
	assert_took(t0, fast.a_ms);
	assert_non_null(strstr(fx->err, "tpmRegValidSts not set"));
}

static void data_avail_never_set_fails_within_the_command_duration(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .data_avail_never = true };
	uint8_t cmd[12], rsp[64];
	size_t len = sizeof(rsp);
	uint64_t t0;

	set(fx, &f);
	getrandom_cmd(cmd, 4);
	t0 = ms_now();
	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, sizeof(cmd), cmd), 0);
	assert_int_equal(Tss2_Tcti_Receive(fx->tcti, &len, rsp, -1),
			 TSS2_TCTI_RC_IO_ERROR);
	assert_took(t0, fast.duration_ms);
	assert_error_says(fx->tcti, "no response to command 0x0000017b within "
			  "300 ms of tpmGo");
	assert_int_equal(fx->m.aborts, 1);
	assert_tpm_released(fx);
}

/* A caller that polls with short timeouts still hits the duration. */
static void polling_receive_still_ends_at_the_command_duration(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .data_avail_never = true };
	uint8_t cmd[12], rsp[64];
	size_t len = sizeof(rsp);
	TSS2_RC rc;
	uint64_t t0;
	int calls = 0;

	set(fx, &f);
	getrandom_cmd(cmd, 4);
	t0 = ms_now();
	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, sizeof(cmd), cmd), 0);
	do {
		rc = Tss2_Tcti_Receive(fx->tcti, &len, rsp, 25);
		calls++;
	} while (rc == TSS2_TCTI_RC_TRY_AGAIN && calls < 1000);
	assert_int_equal(rc, TSS2_TCTI_RC_IO_ERROR);
	assert_took(t0, fast.duration_ms);
	assert_true(calls > 5);
	assert_tpm_released(fx);
}

static void data_avail_still_set_after_the_response_is_an_error(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .data_avail_sticky = true };
	uint8_t rsp[64];
	size_t len = sizeof(rsp);

	set(fx, &f);
	assert_int_equal(getrandom_raw(fx->tcti, 4, rsp, &len),
			 TSS2_TCTI_RC_MALFORMED_RESPONSE);
	assert_error_says(fx->tcti, "response longer than announced");
	assert_int_equal(len, sizeof(rsp)); /* untouched on failure */
	assert_tpm_released(fx);
}

static void response_longer_than_its_header_is_an_error(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .extra_rsp_bytes = 6 };
	uint8_t *rsp = malloc(16 + 6); /* room for the lie, ASan-checked */
	size_t len = 16 + 6;

	assert_non_null(rsp);
	set(fx, &f);
	assert_int_equal(getrandom_raw(fx->tcti, 4, rsp, &len),
			 TSS2_TCTI_RC_MALFORMED_RESPONSE);
	assert_error_says(fx->tcti, "response longer than announced: "
			  "TPM_STS.dataAvail still set after the 16 bytes");
	assert_int_equal(fx->m.aborts, 1); /* commandReady dropped the rest */
	assert_tpm_released(fx);
	free(rsp);
}

static void response_that_stops_early_fails_within_timeout_c(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .cut_rsp_after = 13 };
	uint8_t rsp[64];
	size_t len = sizeof(rsp);
	uint8_t cmd[12];
	uint64_t t0;

	set(fx, &f);
	getrandom_cmd(cmd, 4);
	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, sizeof(cmd), cmd), 0);
	t0 = ms_now();
	assert_int_equal(Tss2_Tcti_Receive(fx->tcti, &len, rsp, -1),
			 TSS2_TCTI_RC_MALFORMED_RESPONSE);
	assert_took(t0, fast.c_ms);
	assert_error_says(fx->tcti, "TPM stopped offering data after 13 of 16 "
			  "response bytes");
	assert_tpm_released(fx);
}

static void response_size_field_below_10_is_an_error(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .rsp_size_override = true, .rsp_size = 9 };
	uint8_t rsp[64];
	size_t len = sizeof(rsp);

	set(fx, &f);
	assert_int_equal(getrandom_raw(fx->tcti, 4, rsp, &len),
			 TSS2_TCTI_RC_MALFORMED_RESPONSE);
	assert_error_says(fx->tcti, "TPM announced a response of 9 bytes "
			  "(a response is 10..4096)");
	assert_tpm_released(fx);
}

static void response_size_field_above_4096_is_an_error(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .rsp_size_override = true, .rsp_size = 4097 };
	uint8_t *rsp = malloc(8192);
	size_t len = 8192;

	assert_non_null(rsp);
	set(fx, &f);
	assert_int_equal(getrandom_raw(fx->tcti, 4, rsp, &len),
			 TSS2_TCTI_RC_MALFORMED_RESPONSE);
	assert_error_says(fx->tcti, "TPM announced a response of 4097 bytes");
	/* Also through a size query, which has no buffer to compare with. */
	f.rsp_size = 0xffffffff;
	set(fx, &f);
	len = 0;
	{
		uint8_t cmd[12];

		getrandom_cmd(cmd, 4);
		assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, 12, cmd), 0);
		assert_int_equal(Tss2_Tcti_Receive(fx->tcti, &len, NULL, -1),
				 TSS2_TCTI_RC_MALFORMED_RESPONSE);
		assert_int_equal(len, 0);
	}
	assert_tpm_released(fx);
	free(rsp);
}

static void response_size_field_above_the_buffer_writes_nothing_past_it(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .rsp_size_override = true, .rsp_size = 100 };
	uint8_t *rsp = malloc(40);
	size_t len = 40;

	assert_non_null(rsp);
	memset(rsp, 0x5a, 40);
	set(fx, &f);
	assert_int_equal(getrandom_raw(fx->tcti, 4, rsp, &len),
			 TSS2_TCTI_RC_INSUFFICIENT_BUFFER);
	assert_int_equal(len, 100);
	for (int i = 0; i < 40; i++)
		assert_int_equal(rsp[i], 0x5a);
	Tss2_Tcti_Cancel(fx->tcti); /* give up on it */
	assert_tpm_released(fx);
	free(rsp);
}

static void expect_cleared_before_the_last_byte_is_an_error(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .burst = 4, .expect_stops_after = 8 };
	uint8_t cmd[12];

	set(fx, &f);
	getrandom_cmd(cmd, 4);
	assert_int_equal(Tss2_Tcti_Transmit(fx->tcti, sizeof(cmd), cmd),
			 TSS2_TCTI_RC_IO_ERROR);
	assert_error_says(fx->tcti, "TPM stopped expecting data after 8 of 12 "
			  "command bytes");
	assert_int_equal(fx->m.commands, 0);
	assert_tpm_released(fx);
}

static void did_vid_all_ones_means_no_tpm(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .did_vid = 0xffffffff };

	set(fx, &f);
	assert_int_equal(tcti_tis_init_ops(&tis_model_ops, &fx->m, 0, &fast,
					   &fx->tcti, fx->err,
					   sizeof(fx->err)), -ENODEV);
	assert_null(fx->tcti);
	assert_string_equal(fx->err, "TPM locality 0: no TPM at this address: "
			    "DID_VID reads 0xffffffff");
	assert_int_equal(fx->m.grants, 0);
}

static void init_ops_refuses_missing_operations_and_locality_5(void **state)
{
	struct fx *fx = *state;
	struct tis_ops ops = tis_model_ops;

	ops.read32 = NULL;
	assert_int_equal(tcti_tis_init_ops(&ops, &fx->m, 0, &fast, &fx->tcti,
					   fx->err, sizeof(fx->err)), -EINVAL);
	assert_int_equal(tcti_tis_init_ops(&tis_model_ops, &fx->m, 5, &fast,
					   &fx->tcti, fx->err,
					   sizeof(fx->err)), -EINVAL);
	assert_non_null(strstr(fx->err, "locality 5 is not 0..4"));
	assert_null(fx->tcti);
}

static uint32_t zero_did_read32(void *opaque, uint32_t off)
{
	if (off % TIS_LOCALITY_SIZE == TIS_REG_DID_VID)
		return 0;
	return tis_model_ops.read32(opaque, off);
}

static void did_vid_reading_zero_means_no_tpm(void **state)
{
	struct fx *fx = *state;
	struct tis_ops ops = tis_model_ops;

	ops.read32 = zero_did_read32;
	assert_int_equal(tcti_tis_init_ops(&ops, &fx->m, 0, &fast, &fx->tcti,
					   fx->err, sizeof(fx->err)), -ENODEV);
	assert_non_null(strstr(fx->err, "DID_VID reads 0x00000000"));
}

static void crb_interface_is_refused(void **state)
{
	struct fx *fx = *state;
	struct tis_faults f = { .intf_id = 0x00000001 };

	set(fx, &f);
	assert_int_equal(tcti_tis_init_ops(&tis_model_ops, &fx->m, 0, &fast,
					   &fx->tcti, fx->err,
					   sizeof(fx->err)), -ENOTSUP);
	assert_non_null(strstr(fx->err, "speaks CRB"));
}

/* Each failure above, then a good command on the same context. */
static void every_failure_leaves_the_tcti_usable(void **state)
{
	static const struct tis_faults bad[] = {
		{ .burst_zero_polls = UINT32_MAX },
		{ .never_ready = true },
		{ .never_grant = true },
		{ .data_avail_never = true },
		{ .data_avail_sticky = true },
		{ .extra_rsp_bytes = 1 },
		{ .extra_rsp_bytes = 3000 },
		{ .cut_rsp_after = 5 },
		{ .rsp_size_override = true, .rsp_size = 0 },
		{ .rsp_size_override = true, .rsp_size = 10 },
		{ .rsp_size_override = true, .rsp_size = 4097 },
		{ .expect_stops_after = 3, .burst = 2 },
	};
	struct fx *fx = *state;
	struct tis_faults none = { 0 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t rsp[TIS_BUFFER_MAX];
		size_t len = sizeof(rsp);
		TSS2_RC rc;

		set(fx, &bad[i]);
		rc = getrandom_raw(fx->tcti, 4, rsp, &len);
		if (rc == 0)
			fail_msg("fault %zu was not detected", i);
		if (!*tcti_tis_last_error(fx->tcti))
			fail_msg("fault %zu: no message", i);
		assert_tpm_released(fx);
		set(fx, &none);
		getrandom_works(fx);
	}
}

/* ---- the spec's timeouts, on a virtual clock --------------------------- */

static void spec_timeouts_are_the_defaults(void **state)
{
	struct fx *fx = *state;
	TSS2_TCTI_CONTEXT *tcti = NULL;
	struct tis_faults f = { 0 };
	uint8_t cmd[12], rsp[64];
	size_t len = sizeof(rsp);
	uint64_t t0;

	fx->m.virtual_clock = true;
	fx->m.active = 3;
	t0 = fx->m.vclock_us;
	assert_int_equal(tcti_tis_init_ops(&tis_model_ops, &fx->m, 0, NULL,
					   &tcti, fx->err, sizeof(fx->err)),
			 -ETIMEDOUT);
	assert_in_range((fx->m.vclock_us - t0) / 1000, 750, 752);
	fx->m.active = 0;
	assert_int_equal(tcti_tis_init_ops(&tis_model_ops, &fx->m, 0, NULL,
					   &tcti, fx->err, sizeof(fx->err)), 0);

	getrandom_cmd(cmd, 4);
	f.never_ready = true;
	tis_model_set_faults(&fx->m, &f);
	t0 = fx->m.vclock_us;
	assert_int_equal(Tss2_Tcti_Transmit(tcti, 12, cmd),
			 TSS2_TCTI_RC_IO_ERROR);
	assert_in_range((fx->m.vclock_us - t0) / 1000, 2000, 2002);

	f.never_ready = false;
	f.data_avail_never = true;
	tis_model_set_faults(&fx->m, &f);
	assert_int_equal(Tss2_Tcti_Transmit(tcti, 12, cmd), 0);
	t0 = fx->m.vclock_us;
	assert_int_equal(Tss2_Tcti_Receive(tcti, &len, rsp, -1),
			 TSS2_TCTI_RC_IO_ERROR);
	assert_in_range((fx->m.vclock_us - t0) / 1000, 120000, 120002);
	assert_non_null(strstr(tcti_tis_last_error(tcti), "120000 ms"));
	Tss2_Tcti_Finalize(tcti);
	free(tcti);
}

/* ---- the conf string ---------------------------------------------------- */

static void conf_empty_or_null_gives_the_defaults(void **state)
{
	struct tis_conf c;
	char err[200] = "";

	(void)state;
	assert_int_equal(tcti_tis_conf_parse(NULL, &c, err, sizeof(err)), 0);
	assert_string_equal(c.path, "/dev/mem");
	assert_int_equal(c.base, 0xfed40000);
	assert_int_equal(c.locality, 0);
	memset(&c, 0x11, sizeof(c));
	assert_int_equal(tcti_tis_conf_parse("", &c, err, sizeof(err)), 0);
	assert_string_equal(c.path, "/dev/mem");
	assert_int_equal(c.base, 0xfed40000);
}

static void conf_takes_every_key_in_any_order(void **state)
{
	struct tis_conf c;
	char err[200] = "";

	(void)state;
	assert_int_equal(tcti_tis_conf_parse("locality=3,base=0X1000,path=/"
					     "tmp/regs", &c, err,
					     sizeof(err)), 0);
	assert_string_equal(c.path, "/tmp/regs");
	assert_int_equal(c.base, 0x1000);
	assert_int_equal(c.locality, 3);
	assert_int_equal(tcti_tis_conf_parse("base=4275306496", &c, err,
					     sizeof(err)), 0);
	assert_int_equal(c.base, 0xfed40000);
	assert_int_equal(tcti_tis_conf_parse("base=0", &c, err, sizeof(err)),
			 0);
	assert_int_equal(c.base, 0);
	assert_int_equal(tcti_tis_conf_parse("path=/dev/mem,base=0xfed40000,"
					     "locality=4", &c, err,
					     sizeof(err)), 0);
	assert_int_equal(c.locality, 4);
}

static void conf_rejects_hostile_strings(void **state)
{
	static const struct {
		const char *conf;
		const char *says;
	} bad[] = {
		{ "path", "is not key=value" },
		{ "=", "unknown key \"\"" },
		{ "=/dev/mem", "unknown key" },
		{ "path=", "is not an absolute path" },
		{ "path=dev/mem", "is not an absolute path" },
		{ "path=/dev/mem,path=/dev/mem", "path given twice" },
		{ "Path=/dev/mem", "unknown key \"Path\"" },
		{ "path =/dev/mem", "unknown key \"path \"" },
		{ "path=/a\x01" "b", "control character" },
		{ "path=/a\nb", "control character" },
		{ "foo=bar", "unknown key \"foo\"" },
		{ "locality=0,foo", "\"foo\" is not key=value" },
		{ ",", "empty item" },
		{ ",path=/dev/mem", "empty item" },
		{ "path=/dev/mem,", "empty item" },
		{ "path=/dev/mem,,base=0", "empty item" },
		{ "base=", "not a 0x-hex or decimal number" },
		{ "base=0x", "not a 0x-hex or decimal number" },
		{ "base=0xg000", "not a 0x-hex or decimal number" },
		{ "base=-4096", "not a 0x-hex or decimal number" },
		{ "base=+4096", "not a 0x-hex or decimal number" },
		{ "base= 4096", "not a 0x-hex or decimal number" },
		{ "base=4096 ", "not a 0x-hex or decimal number" },
		{ "base=0xfed40001", "is not 4 KiB aligned" },
		{ "base=0x10000000000000000", "not a 64-bit number" },
		{ "base=18446744073709551616", "not a 64-bit number" },
		{ "base=0xfffffffffffff000", "beyond what a file offset" },
		{ "base=0x7ffffffffffff000", "beyond what a file offset" },
		{ "locality=5", "is not one of 0, 1, 2, 3, 4" },
		{ "locality=00", "is not one of" },
		{ "locality=-1", "is not one of" },
		{ "locality=", "is not one of" },
		{ "locality=0x1", "is not one of" },
		{ "locality=\xff", "is not one of" },
	};
	char err[200];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct tis_conf c, before;

		memset(&c, 0x77, sizeof(c));
		before = c;
		err[0] = '\0';
		if (tcti_tis_conf_parse(bad[i].conf, &c, err, sizeof(err)) !=
		    -EINVAL)
			fail_msg("accepted \"%s\"", bad[i].conf);
		if (!strstr(err, bad[i].says))
			fail_msg("\"%s\": error \"%s\" does not say \"%s\"",
				 bad[i].conf, err, bad[i].says);
		assert_memory_equal(&c, &before, sizeof(c));
		for (const char *p = err; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
				fail_msg("\"%s\": unprintable byte in the "
					 "error", bad[i].conf);
	}
}

static void conf_rejects_oversized_strings(void **state)
{
	char *big = malloc(8192), err[200];
	struct tis_conf c;

	(void)state;
	assert_non_null(big);
	/* A path one byte too long. */
	memcpy(big, "path=/", 6);
	memset(big + 6, 'a', TIS_CONF_PATH_MAX - 1);
	big[5 + TIS_CONF_PATH_MAX] = '\0';
	assert_int_equal(tcti_tis_conf_parse(big, &c, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "at most 255"));
	big[4 + TIS_CONF_PATH_MAX] = '\0'; /* exactly 255 */
	assert_int_equal(tcti_tis_conf_parse(big, &c, err, sizeof(err)), 0);
	assert_int_equal(strlen(c.path), TIS_CONF_PATH_MAX - 1);
	/* 8 KiB of anything. */
	memset(big, ',', 8191);
	big[8191] = '\0';
	assert_int_equal(tcti_tis_conf_parse(big, &c, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "longer than 4095"));
	/* Tiny error buffers are filled, not overrun (ASan). */
	{
		char *tiny = malloc(3);

		assert_non_null(tiny);
		assert_int_equal(tcti_tis_conf_parse("foo=1", &c, tiny, 3),
				 -EINVAL);
		assert_int_equal(strlen(tiny), 2);
		assert_int_equal(tcti_tis_conf_parse("foo=1", &c, NULL, 0),
				 -EINVAL);
		free(tiny);
	}
	free(big);
}

/* ---- the MMIO backend, on a file ---------------------------------------- */

static char regfile[64];

static int make_regfile(uint64_t base, size_t size, int with_tpm)
{
	uint8_t *img = calloc(1, size);
	int fd;

	snprintf(regfile, sizeof(regfile), "/tmp/tis-regs-XXXXXX");
	fd = mkstemp(regfile);
	if (fd < 0 || !img) {
		free(img);
		return -1;
	}
	if (with_tpm) {
		uint8_t *l0 = img + base;

		l0[TIS_REG_ACCESS] = 0xa1; /* valid, active, as SeaBIOS leaves */
		l0[TIS_REG_DID_VID + 0] = 0x14;
		l0[TIS_REG_DID_VID + 1] = 0x10;
		l0[TIS_REG_DID_VID + 2] = 0x01;
		l0[TIS_REG_INTF_ID + 1] = 0x21;
		l0[TIS_REG_INTF_ID + 2] = 0x08;
		l0[TIS_REG_INT_ENABLE + 3] = 0x80; /* globalIntEnable */
	}
	if (write(fd, img, size) != (ssize_t)size) {
		close(fd);
		free(img);
		return -1;
	}
	close(fd);
	free(img);
	return 0;
}

static void mmio_on_a_missing_file_names_it(void **state)
{
	TSS2_TCTI_CONTEXT *tcti = NULL;
	char err[320];

	(void)state;
	assert_int_equal(tcti_tis_init_mmio("path=/nonexistent/regs", &tcti,
					    err, sizeof(err)), -ENOENT);
	assert_null(tcti);
	assert_non_null(strstr(err, "cannot open /nonexistent/regs"));
	assert_int_equal(tcti_tis_init_mmio("path=/dev/null,bogus=1", &tcti,
					    err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "unknown key \"bogus\""));
}

static void mmio_on_a_file_too_short_for_the_window_refuses(void **state)
{
	TSS2_TCTI_CONTEXT *tcti = NULL;
	char conf[128], err[320];

	(void)state;
	assert_int_equal(make_regfile(0, TIS_WINDOW_SIZE - 1, 0), 0);
	snprintf(conf, sizeof(conf), "path=%s", regfile);
	assert_int_equal(tcti_tis_init_mmio(conf, &tcti, err, sizeof(err)),
			 -ENODEV);
	assert_non_null(strstr(err, "the file is 20479 bytes"));
	/* The default base lies far past its end. */
	unlink(regfile);
	assert_int_equal(make_regfile(0, TIS_WINDOW_SIZE, 0), 0);
	snprintf(conf, sizeof(conf), "path=%s", regfile);
	assert_int_equal(tcti_tis_init_mmio(conf, &tcti, err, sizeof(err)),
			 -ENODEV);
	unlink(regfile);
}

static void mmio_on_zeroes_finds_no_tpm(void **state)
{
	TSS2_TCTI_CONTEXT *tcti = NULL;
	char conf[128], err[320];

	(void)state;
	assert_int_equal(make_regfile(0, TIS_WINDOW_SIZE, 0), 0);
	snprintf(conf, sizeof(conf), "path=%s,base=0", regfile);
	assert_int_equal(tcti_tis_init_mmio(conf, &tcti, err, sizeof(err)),
			 -ENODEV);
	assert_non_null(strstr(err, "no TPM at this address: DID_VID reads "
			       "0x00000000"));
	assert_non_null(strstr(err, regfile));
	unlink(regfile);
}

/* The register image of a TPM that firmware left in locality 0: init
 * reads DID_VID, switches the interrupt off and relinquishes, and the
 * writes land in the file through the mapping. */
static void mmio_on_a_register_image_probes_and_relinquishes(void **state)
{
	const uint64_t base = 0x3000;
	TSS2_TCTI_CONTEXT *tcti = NULL;
	char conf[128], err[320];
	uint8_t l0[TIS_LOCALITY_SIZE];
	int fd;

	(void)state;
	assert_int_equal(make_regfile(base, base + TIS_WINDOW_SIZE, 1), 0);
	snprintf(conf, sizeof(conf), "path=%s,base=0x%llx,locality=0",
		 regfile, (unsigned long long)base);
	if (tcti_tis_init_mmio(conf, &tcti, err, sizeof(err)))
		fail_msg("init: %s", err);
	assert_int_equal(tcti_tis_did_vid(tcti), 0x00011014);
	assert_string_equal(tcti_tis_last_error(tcti), "");
	Tss2_Tcti_Finalize(tcti);
	free(tcti);

	fd = open(regfile, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, l0, sizeof(l0), (off_t)base), sizeof(l0));
	close(fd);
	assert_int_equal(l0[TIS_REG_ACCESS], TIS_ACCESS_ACTIVE_LOCALITY);
	assert_int_equal(l0[TIS_REG_INT_ENABLE + 3], 0x00);
	unlink(regfile);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			esys_getrandom_reads_tpm_bytes_through_the_fifo, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			esys_create_primary_works_in_seven_byte_bursts, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			set_locality_sends_the_next_command_from_that_locality,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			receive_without_a_buffer_returns_the_announced_size,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			short_buffer_gets_insufficient_buffer_and_the_response_stays,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			receive_with_a_timeout_says_try_again_while_the_tpm_works,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			calls_out_of_order_are_bad_sequence, setup, teardown),
		cmocka_unit_test_setup_teardown(
			transmit_refuses_commands_that_are_not_well_framed,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			cancel_sends_command_cancel_and_the_next_command_works,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			set_locality_accepts_0_to_4_only, setup, teardown),
		cmocka_unit_test_setup_teardown(
			poll_handles_and_make_sticky_are_not_implemented,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			finalize_during_a_command_aborts_it_and_releases, setup,
			teardown),
		cmocka_unit_test(last_error_of_a_foreign_context_says_so),
		cmocka_unit_test_setup_teardown(
			burst_count_zero_for_a_while_is_waited_out, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			burst_count_zero_forever_fails_within_timeout_d, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			burst_count_zero_forever_while_reading_fails_within_timeout_d,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			command_ready_never_set_fails_within_timeout_b, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			locality_held_by_another_fails_init_within_timeout_a,
			setup_bare, teardown),
		cmocka_unit_test_setup_teardown(
			locality_never_granted_fails_a_command_within_timeout_a,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			access_never_valid_fails_init_within_timeout_a,
			setup_bare, teardown),
		cmocka_unit_test_setup_teardown(
			data_avail_never_set_fails_within_the_command_duration,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			polling_receive_still_ends_at_the_command_duration,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			data_avail_still_set_after_the_response_is_an_error,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			response_longer_than_its_header_is_an_error, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			response_that_stops_early_fails_within_timeout_c, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			response_size_field_below_10_is_an_error, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			response_size_field_above_4096_is_an_error, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			response_size_field_above_the_buffer_writes_nothing_past_it,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			expect_cleared_before_the_last_byte_is_an_error, setup,
			teardown),
		cmocka_unit_test_setup_teardown(did_vid_all_ones_means_no_tpm,
						setup_bare, teardown),
		cmocka_unit_test_setup_teardown(
			init_ops_refuses_missing_operations_and_locality_5,
			setup_bare, teardown),
		cmocka_unit_test_setup_teardown(
			did_vid_reading_zero_means_no_tpm, setup_bare,
			teardown),
		cmocka_unit_test_setup_teardown(crb_interface_is_refused,
						setup_bare, teardown),
		cmocka_unit_test_setup_teardown(
			every_failure_leaves_the_tcti_usable, setup, teardown),
		cmocka_unit_test_setup_teardown(spec_timeouts_are_the_defaults,
						setup_bare, teardown),
		cmocka_unit_test(conf_empty_or_null_gives_the_defaults),
		cmocka_unit_test(conf_takes_every_key_in_any_order),
		cmocka_unit_test(conf_rejects_hostile_strings),
		cmocka_unit_test(conf_rejects_oversized_strings),
		cmocka_unit_test(mmio_on_a_missing_file_names_it),
		cmocka_unit_test(
			mmio_on_a_file_too_short_for_the_window_refuses),
		cmocka_unit_test(mmio_on_zeroes_finds_no_tpm),
		cmocka_unit_test(
			mmio_on_a_register_image_probes_and_relinquishes),
	};

	return cmocka_run_group_tests(tests, tpm_start, tpm_stop);
}
