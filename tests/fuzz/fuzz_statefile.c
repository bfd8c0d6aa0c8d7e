/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * State file decoding under a fixed key.  Random bytes almost never
 * authenticate, so half of the inputs are sealed first: the body parser
 * then sees attacker-chosen plaintext, as it would with a stolen key.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/statefile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct state_keys keys;
	static int ready;
	struct statefile_expect exp = { .check_uuid = 0, .family = 2 };
	struct statefile_meta meta = { .family = 2, .generation = 1 };
	struct statefile_blobs out;
	uint8_t *file = NULL;
	size_t len;

	if (!ready) {
		uint8_t master[32] = { 1 };
		state_keys_derive(master, &keys);
		ready = 1;
	}
	if (size && (data[0] & 1)) {
		if (statefile_seal(&keys, &meta, data + 1, size - 1, &file, &len))
			return 0;
		data = file;
		size = len;
	}
	if (statefile_decode(&keys, data, size, &exp, &meta, &out) == 0)
		statefile_blobs_free(&out);
	{
		uint64_t g;
		uint8_t uuid[16] = { 0 };
		(void)watermark_decode(&keys, data, size, uuid, &g);
	}
	free(file);
	return 0;
}
