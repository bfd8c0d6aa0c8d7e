/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>

#include "lib/bytes.h"
#include "lib/hex.h"
#include "proto/resumetag.h"

void resumetag_encode(const struct resume_tag *t, uint8_t out[RESUMETAG_LEN])
{
	memcpy(out, RESUMETAG_MAGIC, 4);
	be16_put(out + 4, RESUMETAG_VERSION);
	be16_put(out + 6, 0);
	be32_put(out + 8, t->domid);
	be32_put(out + 12, t->devid);
	memcpy(out + 16, t->vm, 16);
}

int resumetag_decode(const uint8_t *buf, size_t len, struct resume_tag *t)
{
	if (!buf || len != RESUMETAG_LEN || memcmp(buf, RESUMETAG_MAGIC, 4) ||
	    be16_get(buf + 4) != RESUMETAG_VERSION || be16_get(buf + 6) != 0)
		return -EBADMSG;
	t->domid = be32_get(buf + 8);
	t->devid = be32_get(buf + 12);
	if (t->domid >= RESUMETAG_DOMID_LIMIT || t->devid > INT32_MAX)
		return -EBADMSG;
	memcpy(t->vm, buf + 16, 16);
	return 0;
}

int resumetag_parse_vm_path(const char *val, size_t len, uint8_t vm[16])
{
	if (!val || len != 4 + 36 || memcmp(val, "/vm/", 4) != 0)
		return -EINVAL;
	return uuid_parse(val + 4, 36, vm);
}

bool resumetag_matches(const struct resume_tag *t, const uint8_t vm[16],
		       uint32_t devid)
{
	return t->devid == devid && memcmp(t->vm, vm, 16) == 0;
}

void migtag_encode(const uint8_t txid[16], uint8_t out[MIGTAG_LEN])
{
	memcpy(out, MIGTAG_MAGIC, 4);
	be16_put(out + 4, MIGTAG_VERSION);
	be16_put(out + 6, 0);
	memcpy(out + 8, txid, 16);
}

int migtag_decode(const uint8_t *buf, size_t len, uint8_t txid[16])
{
	if (!buf || len != MIGTAG_LEN || memcmp(buf, MIGTAG_MAGIC, 4) ||
	    be16_get(buf + 4) != MIGTAG_VERSION || be16_get(buf + 6) != 0)
		return -EBADMSG;
	memcpy(txid, buf + 8, 16);
	return 0;
}
