/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The key store's file as the manager writes it: the slot file of
 * proto/keystore.h, written in place (one pwrite and one fdatasync per
 * commit), created, converted from the single-copy format and grown by
 * an atomic replace.  Blocking calls: the task queue's thread, or start-up.
 *
 * The in-place write is private here (a pwrite loop and fdatasync);
 * lib/store.c may later offer the same primitive.
 */
#ifndef VTPM_MANAGER_KSFILE_H
#define VTPM_MANAGER_KSFILE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/keystore.h"

struct ksfile {
	int fd;              /* -1: no slot file open (none yet, or the
			      * single-copy format: the next write
			      * creates one) */
	uint32_t slot_size;
	unsigned int next;   /* the slot the next write goes to: never the
			      * one holding the newest authentic store */
	size_t used[KSSLOTS_COUNT]; /* bytes to cover in each slot */
	unsigned long in_place, replaced; /* writes of each kind (tests) */
};

void ksfile_init(struct ksfile *kf);
void ksfile_close(struct ksfile *kf);

/*
 * Opens name in dirfd for reading and later writing (O_RDWR | O_NOFOLLOW
 * | O_NONBLOCK | O_CLOEXEC; a regular file, at most the largest slot
 * file) and reads it whole.  *fd stays open on success.  -errno, with a
 * sentence in err.
 */
int ksfile_read(int dirfd, const char *name, int *fd, uint8_t **buf,
		size_t *len, char *err, size_t errlen);

/* After a successful keystore_slots_decode of the file read on fd: the
 * next write goes to the slot that did not win. */
void ksfile_adopt(struct ksfile *kf, int fd, const struct keystore_slots *s);

/*
 * Makes store (an envelope of keystore_encode) durable: in place in the
 * slot kf->next when a slot file is open and the store fits, else a new
 * slot file (store in slot 0) by an atomic replace of name.  0 or -errno
 * with a sentence in err; on failure nothing moves (the next write goes
 * to the same slot).
 */
int ksfile_write(struct ksfile *kf, int dirfd, const char *name,
		 const uint8_t *store, size_t len, char *err, size_t errlen);

#endif
