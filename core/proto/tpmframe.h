/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Framing of TPM commands on a byte stream (the data socket): raw TPM
 * frames delimited by their own size field, or Microsoft-simulator
 * framing (u32 TPM_SEND_COMMAND, u8 locality, u32 size, command).
 * Pure functions: they never see a socket.
 */
#ifndef VTPM_TPMFRAME_H
#define VTPM_TPMFRAME_H

#include <stddef.h>
#include <stdint.h>

#define TPM_HEADER_LEN 10
#define MSSIM_SEND_COMMAND 8
#define MSSIM_HEADER_LEN 9

enum tpmframe_kind {
	TPMFRAME_RAW = 0,
	TPMFRAME_MSSIM = 1,
};

enum tpmframe_err {
	TPMFRAME_NEED_MORE = 0,
	TPMFRAME_ERR_SIZE_SMALL = -1, /* size field below a TPM header */
	TPMFRAME_ERR_SIZE_BIG = -2,   /* size field above the buffer */
	TPMFRAME_ERR_LOCALITY = -4,   /* simulator locality above 4 */
};

struct tpmframe {
	enum tpmframe_kind kind;
	int locality;       /* -1: the frame carries none */
	size_t cmd_off;     /* TPM command starts here in the buffer */
	uint32_t cmd_len;   /* and is this long */
	size_t consumed;    /* bytes of the stream this frame occupies */
};

/*
 * Looks at the bytes buffered so far.  Returns 1 with *f filled when a
 * whole frame is there, TPMFRAME_NEED_MORE (0), or a negative
 * tpmframe_err.  max_cmd is the engine's buffer size.
 */
int tpmframe_parse(const uint8_t *buf, size_t len, uint32_t max_cmd,
		   struct tpmframe *f);

const char *tpmframe_strerror(int err);

/* Command/response header fields, for logging and dispatch decisions. */
uint32_t tpm_cmd_code(const uint8_t *cmd, uint32_t len);
uint32_t tpm_rsp_code(const uint8_t *rsp, uint32_t len);

/* Writes a 10-byte error response in the family's format. */
void tpm_error_response(uint8_t out[TPM_HEADER_LEN], int tpm2, uint32_t rc);

#endif
