/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Durable file I/O for the state store.  Blocking calls: run them on the
 * thread pool, never on the loop thread.
 */
#ifndef VTPM_STORE_H
#define VTPM_STORE_H

#include <stddef.h>
#include <stdint.h>

/* Reads a whole regular file (at most maxlen bytes); -ENOENT if absent,
 * -EFBIG if larger than maxlen. */
int store_read(int dirfd, const char *name, size_t maxlen, uint8_t **buf,
	       size_t *len);

/*
 * Replaces `name` in the directory atomically and durably: writes
 * name.tmp, fsyncs it, renames it over name, fsyncs the directory.
 * A crash at any point leaves the old or the new contents.
 */
int store_write_atomic(int dirfd, const char *name, const uint8_t *buf,
		       size_t len);

#endif
