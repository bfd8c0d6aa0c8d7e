/* SPDX-License-Identifier: BSD-3-Clause */
#include "proto/tpmframe.h"

#include "lib/bytes.h"
#include "proto/tpmcodes.h"

int tpmframe_parse(const uint8_t *buf, size_t len, uint32_t max_cmd,
		   struct tpmframe *f)
{
	uint32_t size;

	if (len < 6)
		return TPMFRAME_NEED_MORE;
	/* No TPM tag is 0x0000, so a first word of 8 is the simulator's
	 * TPM_SEND_COMMAND, as swtpm decides it too. */
	if (len >= 4 && be32_get(buf) == MSSIM_SEND_COMMAND) {
		if (len < MSSIM_HEADER_LEN)
			return TPMFRAME_NEED_MORE;
		if (buf[4] > 4)
			return TPMFRAME_ERR_LOCALITY;
		size = be32_get(buf + 5);
		if (size < TPM_HEADER_LEN)
			return TPMFRAME_ERR_SIZE_SMALL;
		if (size > max_cmd)
			return TPMFRAME_ERR_SIZE_BIG;
		if (len - MSSIM_HEADER_LEN < size)
			return TPMFRAME_NEED_MORE;
		f->kind = TPMFRAME_MSSIM;
		f->locality = buf[4];
		f->cmd_off = MSSIM_HEADER_LEN;
		f->cmd_len = size;
		f->consumed = MSSIM_HEADER_LEN + (size_t)size;
		return 1;
	}
	size = be32_get(buf + 2);
	if (size < TPM_HEADER_LEN)
		return TPMFRAME_ERR_SIZE_SMALL;
	if (size > max_cmd)
		return TPMFRAME_ERR_SIZE_BIG;
	if (len < size)
		return TPMFRAME_NEED_MORE;
	f->kind = TPMFRAME_RAW;
	f->locality = -1;
	f->cmd_off = 0;
	f->cmd_len = size;
	f->consumed = size;
	return 1;
}

const char *tpmframe_strerror(int err)
{
	switch (err) {
	case TPMFRAME_NEED_MORE:
		return "incomplete frame";
	case TPMFRAME_ERR_SIZE_SMALL:
		return "size field smaller than a TPM header";
	case TPMFRAME_ERR_SIZE_BIG:
		return "size field larger than the TPM buffer";
	case TPMFRAME_ERR_LOCALITY:
		return "locality above 4";
	}
	return "bad frame";
}

uint32_t tpm_cmd_code(const uint8_t *cmd, uint32_t len)
{
	return len >= TPM_HEADER_LEN ? be32_get(cmd + 6) : 0;
}

uint32_t tpm_rsp_code(const uint8_t *rsp, uint32_t len)
{
	return len >= TPM_HEADER_LEN ? be32_get(rsp + 6) : 0xffffffffu;
}

void tpm_error_response(uint8_t out[TPM_HEADER_LEN], int tpm2, uint32_t rc)
{
	be16_put(out, tpm2 ? TPM_ST_NO_SESSIONS : TPM12_TAG_RSP_COMMAND);
	be32_put(out + 2, TPM_HEADER_LEN);
	be32_put(out + 6, rc);
}
