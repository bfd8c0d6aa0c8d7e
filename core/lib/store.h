/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Durable file I/O for the state store.  Blocking calls: run them on the
 * thread pool, never on the loop thread.
 */
#ifndef VTPM_STORE_H
#define VTPM_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

/* As store_write_atomic, and *fd keeps the new file open read-write (the
 * inode now at `name`): the creation of a file written in place later. */
int store_write_atomic_keep(int dirfd, const char *name, const uint8_t *buf,
			    size_t len, int *fd);

/*
 * Opens `name` (flags: O_RDONLY, O_WRONLY or O_RDWR, maybe with O_CREAT
 * (mode 0600) and O_TRUNC) with O_NOFOLLOW and O_NONBLOCK,
 * so that neither a symlink nor a FIFO planted there is followed or
 * waited on, and checks that it is a regular file (-EINVAL if not;
 * -ELOOP for a symlink, -ENOENT if absent).  *size: its size.
 */
int store_open_regular(int dirfd, const char *name, int flags, int *fd,
		       uint64_t *size);

/* Reads exactly len bytes at off (-EIO on a short file). */
int store_pread_full(int fd, uint8_t *buf, size_t len, uint64_t off);

/* Writes len bytes at off in place, then fdatasync: one flush.  The
 * bytes may be torn by a crash before it returns, never after. */
int store_pwrite_durable(int fd, const uint8_t *buf, size_t len,
			 uint64_t off);

/* Removes the names that exist, then fsyncs the directory if any was
 * removed.  The number removed, or a negative errno. */
int store_unlink_durable(int dirfd, const char *const *names, size_t n);

/*
 * A directory below parentfd, created first (mkdirat) when create_mode is
 * not 0, opened O_DIRECTORY | O_NOFOLLOW: a link planted at name is
 * -ENOTDIR, never followed.  Owner and mode are then set and checked
 * through *fd (fchown, fchmod, store_dir_unsafe), never by name.  A
 * directory it made is made durable (its parent flushed) first.
 */
int store_dir_open(int parentfd, const char *name, mode_t create_mode,
		   int *fd);

/* Why the directory open at fd is unfit to hold state or sockets (owned
 * by neither owner nor alt_owner, or writable by group or others), or
 * NULL when it is fit. */
const char *store_dir_unsafe(int fd, uid_t owner, uid_t alt_owner);

#endif
