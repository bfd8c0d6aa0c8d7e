/* SPDX-License-Identifier: BSD-3-Clause */
#include "proto/swtpm_blob.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bytes.h"

#define HDR_LEN 10
#define TLV_HDR 6
#define FLAG_ENCRYPTED 0x0001
#define FLAG_MIGRATION_ENCRYPTED 0x0002
#define FLAG_MIGRATION_DATA 0x0004
#define TAG_DATA 1
#define TAG_MIGRATION_DATA 4

int swtpm_blob_wrap(const uint8_t *raw, uint32_t rawlen, uint8_t **out,
		    uint32_t *outlen)
{
	uint32_t total;
	uint8_t *b;

	if (rawlen > UINT32_MAX - SWTPM_BLOB_OVERHEAD)
		return -EINVAL;
	total = rawlen + SWTPM_BLOB_OVERHEAD;
	b = malloc(total);
	if (!b)
		return -ENOMEM;
	b[0] = 2;
	b[1] = 1;
	be16_put(b + 2, HDR_LEN);
	be16_put(b + 4, FLAG_MIGRATION_DATA);
	be32_put(b + 6, total);
	be16_put(b + 10, TAG_MIGRATION_DATA);
	be32_put(b + 12, rawlen + TLV_HDR);
	be16_put(b + 16, TAG_DATA);
	be32_put(b + 18, rawlen);
	if (rawlen)
		memcpy(b + 22, raw, rawlen);
	*out = b;
	*outlen = total;
	return 0;
}

/* Looks for a record of `tag` in [p, p+len); TLVs of other tags are
 * skipped. */
static int find_tlv(const uint8_t *p, size_t len, uint16_t tag,
		    const uint8_t **val, uint32_t *vlen)
{
	size_t off = 0;

	while (len - off >= TLV_HDR) {
		uint16_t t = be16_get(p + off);
		uint32_t n = be32_get(p + off + 2);

		if (n > len - off - TLV_HDR)
			return SWTPM_BLOB_ERR_TLV;
		if (t == tag) {
			*val = p + off + TLV_HDR;
			*vlen = n;
			return 0;
		}
		off += TLV_HDR + n;
	}
	return SWTPM_BLOB_ERR_TLV;
}

int swtpm_blob_unwrap(const uint8_t *buf, size_t len, const uint8_t **raw,
		      uint32_t *rawlen)
{
	uint16_t hdrsize, flags;
	uint32_t total;
	const uint8_t *body;
	uint32_t blen;

	if (len < HDR_LEN)
		return SWTPM_BLOB_ERR_SHORT;
	hdrsize = be16_get(buf + 2);
	flags = be16_get(buf + 4);
	total = be32_get(buf + 6);
	/* We write version 2 and understand readers of version <= 2. */
	if (buf[0] < 1 || buf[1] > 2 || hdrsize < HDR_LEN || hdrsize > len ||
	    total != len)
		return SWTPM_BLOB_ERR_HEADER;
	if (flags & (FLAG_ENCRYPTED | FLAG_MIGRATION_ENCRYPTED))
		return SWTPM_BLOB_ERR_ENCRYPTED;
	body = buf + hdrsize;
	blen = (uint32_t)(len - hdrsize);
	if (flags & FLAG_MIGRATION_DATA) {
		const uint8_t *inner;
		uint32_t ilen;
		int rc = find_tlv(body, blen, TAG_MIGRATION_DATA, &inner, &ilen);

		if (rc)
			return rc;
		body = inner;
		blen = ilen;
	}
	return find_tlv(body, blen, TAG_DATA, raw, rawlen);
}
