/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * State file decoding under a fixed key.  Random bytes almost never
 * authenticate, so half of the inputs are sealed first: the body parser
 * then sees attacker-chosen plaintext, as it would with a stolen key.
 * Every refusal is a state file verdict, never an errno; a file that
 * decodes re-encodes to the same size and decodes to the same blobs.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/statefile.h"

/* What decoded survives a write: the same size, the same blobs. */
static void same_again(const struct state_keys *keys,
		       const struct statefile_expect *exp,
		       const struct statefile_meta *meta,
		       const struct statefile_blobs *b, size_t size)
{
	struct statefile_meta meta2;
	struct statefile_blobs again;
	uint8_t *re;
	size_t relen;

	if (statefile_encode(keys, meta, b, &re, &relen) != 0 || relen != size)
		abort();
	if (statefile_decode(keys, re, relen, exp, &meta2, &again) != 0 ||
	    meta2.generation != meta->generation)
		abort();
	for (int i = 0; i < SF_BLOB_COUNT; i++)
		if (again.len[i] != b->len[i] || !again.data[i] != !b->data[i] ||
		    (b->data[i] && memcmp(again.data[i], b->data[i], b->len[i])))
			abort();
	statefile_blobs_free(&again);
	free(re);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct state_keys keys;
	static int ready;
	struct statefile_expect exp = { .check_uuid = 0, .family = 2 };
	struct statefile_meta meta = { .family = 2, .generation = 1 };
	struct statefile_blobs out;
	uint8_t *file = NULL;
	size_t len;
	int rc;

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
	rc = statefile_decode(&keys, data, size, &exp, &meta, &out);
	if (rc && !statefile_is_err(rc))
		abort();
	if (rc == 0) {
		same_again(&keys, &exp, &meta, &out, size);
		statefile_blobs_free(&out);
	}
	{
		uint64_t g;
		uint8_t uuid[16] = { 0 };

		rc = watermark_decode(&keys, data, size, uuid, &g);
		if (rc && !statefile_is_err(rc))
			abort();
	}
	free(file);
	return 0;
}
