/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef VTPM_KEYFILE_H
#define VTPM_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parses key file contents: exactly 32 raw bytes, or 64 hex digits with an
 * optional trailing newline.  0 or -EINVAL with a reason in err.
 */
int keyfile_parse(const uint8_t *buf, size_t len, uint8_t key[32], char *err,
		  size_t errlen);

/* Opens, checks ownership bits (no group/other access), reads, parses. */
int keyfile_load(const char *path, uint8_t key[32], char *err, size_t errlen);

#endif
