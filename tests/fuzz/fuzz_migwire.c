/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The online migration frames (proto/migwire.h) and the migration tag:
 * whatever decodes re-encodes to the same bytes, and the frame length the
 * header announces is the length decode accepted.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/migwire.h"
#include "proto/resumetag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct migwire_msg m;
	uint8_t *again, tag[MIGTAG_LEN], txid[16];
	size_t len, total;
	char err[200];

	if (migwire_decode(data, size, &m, err, sizeof(err)) == 0) {
		if (migwire_frame_len(data, size, &total) || total != size)
			abort();
		if (migwire_encode(&m, &again, &len) || len != size ||
		    memcmp(again, data, size))
			abort();
		free(again);
	}
	if (migtag_decode(data, size, txid) == 0) {
		migtag_encode(txid, tag);
		if (size != MIGTAG_LEN || memcmp(tag, data, size))
			abort();
	}
	return 0;
}
