/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The TPM constants this code reads or writes itself, named once (TPM 2.0
 * Part 2, TPM 1.2 Part 2): tags, command codes and response codes.  The
 * engine and the transports use these names, never bare numbers.
 *
 * TPM 2.0 names are the specification's own (TPM_CC_Startup, TPM_RC_...):
 * tpm2-tss spells its macros TPM2_*, so a file may see both headers.
 */
#ifndef VTPM_PROTO_TPMCODES_H
#define VTPM_PROTO_TPMCODES_H

/* TPM 2.0 algorithms */
#define TPM_ALG_SHA256 0x000Bu

/* TPM 2.0 tags */
#define TPM_ST_NO_SESSIONS 0x8001u
#define TPM_ST_SESSIONS 0x8002u

/* TPM 2.0 command codes */
#define TPM_CC_NV_UndefineSpace 0x00000122u
#define TPM_CC_NV_DefineSpace 0x0000012Au
#define TPM_CC_NV_Write 0x00000137u
#define TPM_CC_Startup 0x00000144u
#define TPM_CC_Shutdown 0x00000145u
#define TPM_CC_GetRandom 0x0000017Bu
#define TPM_CC_PCR_Extend 0x00000182u
#define TPM_CC_PCR_Read 0x0000017Eu

/* TPM 2.0 startup and shutdown types */
#define TPM_SU_CLEAR 0x0000u
#define TPM_SU_STATE 0x0001u

/* TPM 2.0 response codes */
#define TPM_RC_SUCCESS 0x000u
#define TPM_RC_BAD_TAG 0x01Eu
#define TPM_RC_INITIALIZE 0x100u
#define TPM_RC_FAILURE 0x101u
#define TPM_RC_COMMAND_SIZE 0x142u
#define TPM_RC_COMMAND_CODE 0x143u
#define TPM_RC_NV_DEFINED 0x14Cu
#define TPM_RC_LOCALITY 0x907u
#define TPM_RC_YIELDED 0x908u
#define TPM_RC_CANCELED 0x909u
#define TPM_RC_TESTING 0x90Au
#define TPM_RC_NV_RATE 0x920u
#define TPM_RC_LOCKOUT 0x921u
#define TPM_RC_RETRY 0x922u
#define TPM_RC_NV_UNAVAILABLE 0x923u

/* TPM 1.2 tags, ordinals and return codes */
#define TPM12_TAG_RQU_COMMAND 0x00C1u
#define TPM12_TAG_RSP_COMMAND 0x00C4u
#define TPM12_ORD_SaveState 0x00000098u
#define TPM12_ORD_Startup 0x00000099u
#define TPM12_ST_CLEAR 0x0001u
#define TPM12_SUCCESS 0x00u
#define TPM12_FAIL 0x09u
#define TPM12_BAD_PARAM_SIZE 0x19u
#define TPM12_INVALID_POSTINIT 0x26u

/* TPM 2.0 command codes the engine runs on the loop thread (quick ones) */
#define TPM_CC_NV_Increment 0x00000134u
#define TPM_CC_NV_Extend 0x00000136u
#define TPM_CC_PCR_Event 0x0000013Cu
#define TPM_CC_PCR_Reset 0x0000013Du
#define TPM_CC_StirRandom 0x00000146u
#define TPM_CC_NV_Read 0x0000014Eu
#define TPM_CC_ContextLoad 0x00000161u
#define TPM_CC_ContextSave 0x00000162u
#define TPM_CC_FlushContext 0x00000165u
#define TPM_CC_NV_ReadPublic 0x00000169u
#define TPM_CC_ReadPublic 0x00000173u
#define TPM_CC_GetCapability 0x0000017Au
#define TPM_CC_GetTestResult 0x0000017Cu
#define TPM_CC_Hash 0x0000017Du
#define TPM_CC_ReadClock 0x00000181u
#define TPM_CC_TestParms 0x0000018Au

/* TPM 1.2 ordinals the engine runs on the loop thread */
#define TPM12_ORD_Extend 0x00000014u
#define TPM12_ORD_PcrRead 0x00000015u
#define TPM12_ORD_GetRandom 0x00000046u
#define TPM12_ORD_GetCapability 0x00000065u

/* TPM 1.2 return codes (swtpm's control channel answers with these too) */
#define TPM12_BAD_PARAMETER 0x03u
#define TPM12_BAD_ORDINAL 0x0Au
#define TPM12_KEYNOTFOUND 0x0Du
#define TPM12_SIZE 0x17u
#define TPM12_IOERROR 0x1Fu
#define TPM12_BAD_LOCALITY 0x3Du
#define TPM12_RETRY 0x800u

#endif
