/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The envelope swtpm puts around libtpms state blobs in GET_STATEBLOB and
 * expects in SET_STATEBLOB, so that state moves between swtpm and
 * vtpm-service (QEMU migration, swtpm_ioctl --save/--load):
 *
 *   u8 version (2), u8 min_version (1), u16 header size (10),
 *   u16 flags (0x0004: migration data), u32 total length,
 *   TLV { u16 tag 4 (migration data), u32 len,
 *         TLV { u16 tag 1 (data), u32 len, libtpms blob } }
 *
 * Without the migration flag the data TLV stands at the top level.
 * Encrypted envelopes (flags 0x1, 0x2) need keys we do not have.
 */
#ifndef VTPM_SWTPM_BLOB_H
#define VTPM_SWTPM_BLOB_H

#include <stddef.h>
#include <stdint.h>

#define SWTPM_BLOB_OVERHEAD 22

enum swtpm_blob_err {
	SWTPM_BLOB_OK = 0,
	SWTPM_BLOB_ERR_SHORT = -1,     /* not even a header */
	SWTPM_BLOB_ERR_HEADER = -2,    /* bad version, size or length */
	SWTPM_BLOB_ERR_ENCRYPTED = -3, /* needs a key */
	SWTPM_BLOB_ERR_TLV = -4,       /* no (or a broken) data record */
};

/* Wraps raw bytes; *out is malloc'd.  0 or -ENOMEM/-EINVAL. */
int swtpm_blob_wrap(const uint8_t *raw, uint32_t rawlen, uint8_t **out,
		    uint32_t *outlen);

/* Finds the libtpms blob inside an envelope: *raw points into buf. */
int swtpm_blob_unwrap(const uint8_t *buf, size_t len, const uint8_t **raw,
		      uint32_t *rawlen);

#endif
