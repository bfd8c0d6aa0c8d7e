/* SPDX-License-Identifier: BSD-3-Clause */
/* Data-socket framing: any byte stream, any buffer size. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "proto/swtpm_blob.h"
#include "proto/tpmframe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tpmframe f;
	uint32_t max = 4096;
	int rc;

	if (size >= 2) {
		max = 10 + ((uint32_t)data[0] << 8 | data[1]) % 4096;
		data += 2;
		size -= 2;
	}
	{
		/* The state-blob envelope of SET_STATEBLOB. */
		const uint8_t *raw;
		uint32_t rawlen;
		if (swtpm_blob_unwrap(data, size, &raw, &rawlen) == 0 &&
		    (raw < data || raw + rawlen > data + size))
			abort();
	}
	rc = tpmframe_parse(data, size, max, &f);
	if (rc == 1) {
		/* The frame must lie inside what was given. */
		if (f.consumed > size || f.cmd_off + f.cmd_len > f.consumed ||
		    f.cmd_len < TPM_HEADER_LEN || f.cmd_len > max)
			abort();
		(void)tpm_cmd_code(data + f.cmd_off, f.cmd_len);
	}
	return 0;
}
