/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The resume tag of a Xen save and the toolstack's /local/domain/N/vm
 * value: whatever decodes re-encodes to the same bytes; a vm path that
 * parses is "/vm/" and the UUID it names.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/hex.h"
#include "proto/resumetag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct resume_tag t;
	uint8_t again[RESUMETAG_LEN], vm[16];
	char s[UUID_STR_LEN];

	if (resumetag_decode(data, size, &t) == 0) {
		resumetag_encode(&t, again);
		if (size != RESUMETAG_LEN || memcmp(again, data, size) ||
		    !resumetag_matches(&t, t.vm, t.devid))
			abort();
	}
	if (resumetag_parse_vm_path((const char *)data, size, vm) == 0) {
		uuid_format(vm, s);
		if (size != 40 || strncasecmp((const char *)data + 4, s, 36))
			abort();
	}
	return 0;
}
