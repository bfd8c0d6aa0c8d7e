/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Manufacturing a new vTPM (docs/ekcert.md): its EKs from the TCG default
 * templates (EK Credential Profile 2.0, L-1 RSA-2048 and L-2 ECC P-256,
 * what tpm2_createek makes), their certificates and the platform
 * certificate from the manager's CA (EK_CERTIFY over the manager link),
 * written to NV at the TCG indices, platform-created and write-locked;
 * then the platform hierarchy closed.  Two engine jobs on the worker
 * thread: the work (its NV changes made durable after it, like any
 * command's), then the report to the manager (MANUFACTURED).
 *
 * The parsers of the engine's answers are pure and exported for tests.
 */
#ifndef VTPM_MANUFACTURE_H
#define VTPM_MANUFACTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "instance/jobq.h"
#include "proto/mgrproto.h"

#define MF_NV_RSA_CERT 0x01c00002u
#define MF_NV_ECC_CERT 0x01c0000au
#define MF_NV_PLATFORM_CERT 0x01c08000u
/* PLATFORMCREATE | PPWRITE | WRITEDEFINE | PPREAD | OWNERREAD | AUTHREAD
 * | NO_DA, as swtpm_setup defines its certificate indices. */
#define MF_NV_ATTRS 0x42072001u

struct vtpm;

struct manufacture {
	struct vtpm_job work, report;
	int result;                 /* 0, or a negative errno */
	uint32_t elapsed_ms;
};

/* Queues the two jobs (loop thread, before any guest command). */
void manufacture_submit(struct vtpm *v);

/* The TPM's identity from a TPM2_GetCapability(TPM_PROPERTIES, 0x101,
 * 12) response.  0 or -EBADMSG. */
int mf_parse_properties(const uint8_t *rsp, size_t len,
			struct mgr_ek_certify_req *id);
/* The public key of a TPM2_CreatePrimary response for kind (RSA: the
 * 256-byte modulus; ECC: x || y) into id->key; *handle the object.
 * 0, -EBADMSG (malformed, or not the key of that template), or the
 * TPM's response code as a positive number. */
int mf_parse_primary(const uint8_t *rsp, size_t len, uint8_t kind,
		     uint32_t *handle, struct mgr_ek_certify_req *id);

/* The commands whose answers those parse (for tests and fuzzers): the
 * length written to out, 0 if cap is too small. */
size_t mf_cmd_create_primary(uint8_t kind, uint8_t *out, size_t cap);
size_t mf_cmd_properties(uint8_t *out, size_t cap);

#endif
