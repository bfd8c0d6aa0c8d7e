/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The resume tag: which suspended Xen domain a vTPM's saved volatile state
 * belongs to (xl save, xl migrate; docs/state-format.md, record 4 of the
 * state file body).  A restored domain keeps the Xen UUID of the one that
 * was saved and gets a new domid, so the tag names the UUID, and the
 * volatile state is resumed only for a device of a domain with that UUID.
 *
 *   0  4  magic "XRSM"
 *   4  2  version (1)
 *   6  2  reserved, 0
 *   8  4  domid of the suspended domain (below 0x7FF0)
 *  12  4  its vtpm device number (below 2^31)
 *  16 16  its Xen UUID (the toolstack's /local/domain/N/vm)
 *
 * All integers big-endian; exactly RESUMETAG_LEN bytes.  Pure functions.
 */
#ifndef VTPM_RESUMETAG_H
#define VTPM_RESUMETAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RESUMETAG_MAGIC "XRSM"
#define RESUMETAG_VERSION 1
#define RESUMETAG_LEN 32
/* Xen's first reserved domid (DOMID_FIRST_RESERVED). */
#define RESUMETAG_DOMID_LIMIT 0x7FF0u

struct resume_tag {
	uint32_t domid;
	uint32_t devid;
	uint8_t vm[16];
};

void resumetag_encode(const struct resume_tag *t, uint8_t out[RESUMETAG_LEN]);

/* 0, or -EBADMSG for anything but a well-formed version-1 tag. */
int resumetag_decode(const uint8_t *buf, size_t len, struct resume_tag *t);

/*
 * The value of xenstore's /local/domain/N/vm, "/vm/UUID" (libxl writes
 * it, the guest cannot): exactly that, the UUID in canonical form, no
 * NUL inside; 0 or -EINVAL.
 */
int resumetag_parse_vm_path(const char *val, size_t len, uint8_t vm[16]);

/* Whether a tag belongs to the domain vm's device devid. */
bool resumetag_matches(const struct resume_tag *t, const uint8_t vm[16],
		       uint32_t devid);

/*
 * The online-migration tag (docs/migration.md, "Between hosts, online"):
 * the volatile state was saved by a vTPM stopped for an online move, on
 * any transport but a Xen ring, and resumes once on the destination.
 *
 *   0  4  magic "OMIG"
 *   4  2  version (1)
 *   6  2  reserved, 0
 *   8 16  the transaction id (zero on the source, where the instance
 *         does not know it; the destination's manager writes its own)
 */
#define MIGTAG_MAGIC "OMIG"
#define MIGTAG_VERSION 1
#define MIGTAG_LEN 24

void migtag_encode(const uint8_t txid[16], uint8_t out[MIGTAG_LEN]);
/* 0, or -EBADMSG for anything but a well-formed version-1 tag. */
int migtag_decode(const uint8_t *buf, size_t len, uint8_t txid[16]);

#endif
