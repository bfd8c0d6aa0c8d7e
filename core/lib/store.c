/* SPDX-License-Identifier: BSD-3-Clause */
#include "lib/store.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int store_read(int dirfd, const char *name, size_t maxlen, uint8_t **bufp,
	       size_t *lenp)
{
	uint8_t *buf;
	uint64_t size = 0;
	size_t len = 0;
	int fd, rc;

	/* O_NONBLOCK, O_NOFOLLOW, a regular file: store_open_regular. */
	rc = store_open_regular(dirfd, name, O_RDONLY, &fd, &size);
	if (rc)
		return rc;
	if (size > maxlen) {
		close(fd);
		return -EFBIG;
	}
	buf = malloc((size_t)size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (len < (size_t)size + 1) {
		ssize_t n = read(fd, buf + len, (size_t)size + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			free(buf);
			close(fd);
			return rc;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (len > (size_t)size) {
		/* Grew while we read: someone else is writing it. */
		free(buf);
		return -EAGAIN;
	}
	*bufp = buf;
	*lenp = len;
	return 0;
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	return 0;
}

static int write_atomic(int dirfd, const char *name, const uint8_t *buf,
			size_t len, int *keep)
{
	char tmp[300];
	int fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	/* A FIFO or link planted at the .tmp name is refused, not written
	 * to or followed (and a FIFO is never waited on). */
	rc = store_open_regular(dirfd, tmp,
				(keep ? O_RDWR : O_WRONLY) | O_CREAT | O_TRUNC,
				&fd, &(uint64_t){ 0 });
	if (rc)
		return rc;
	rc = write_all(fd, buf, len);
	if (rc)
		goto fail;
	/* A file to be written in place later is flushed whole (fsync:
	 * its size and blocks too), once, at its creation. */
	if ((keep ? fsync(fd) : fdatasync(fd)) < 0) {
		rc = -errno;
		goto fail;
	}
	if (!keep && close(fd) < 0) {
		rc = -errno;
		unlinkat(dirfd, tmp, 0);
		return rc;
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		rc = -errno;
		if (keep)
			close(fd);
		unlinkat(dirfd, tmp, 0);
		return rc;
	}
	/* The rename is durable only once the directory is. */
	if (fsync(dirfd) < 0) {
		rc = -errno;
		if (keep)
			close(fd);
		return rc;
	}
	if (keep)
		*keep = fd;
	return 0;
fail:
	close(fd);
	unlinkat(dirfd, tmp, 0);
	return rc;
}

int store_write_atomic(int dirfd, const char *name, const uint8_t *buf,
		       size_t len)
{
	return write_atomic(dirfd, name, buf, len, NULL);
}

int store_write_atomic_keep(int dirfd, const char *name, const uint8_t *buf,
			    size_t len, int *fd)
{
	*fd = -1;
	return write_atomic(dirfd, name, buf, len, fd);
}

int store_open_regular(int dirfd, const char *name, int flags, int *fdp,
		       uint64_t *size)
{
	struct stat st;
	int fd, rc;

	*fdp = -1;
	fd = openat(dirfd, name, flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK,
		    0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	*fdp = fd;
	*size = (uint64_t)st.st_size;
	return 0;
}

/* All of len bytes at off, or -errno (-EIO for an end of file). */
static int pio_full(int fd, uint8_t *buf, size_t len, uint64_t off,
		    bool write)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write ? pwrite(fd, buf + done, len - done,
					   (off_t)(off + done))
				  : pread(fd, buf + done, len - done,
					  (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

int store_pread_full(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	return pio_full(fd, buf, len, off, false);
}

int store_pwrite_durable(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
	/* pio_full only reads from buf when it writes. */
	int rc = pio_full(fd, (uint8_t *)buf, len, off, true);

	if (rc)
		return rc;
	/* The slots are preallocated (written in full at creation): the
	 * size does not change, fdatasync flushes the data alone. */
	if (fdatasync(fd) < 0)
		return -errno;
	return 0;
}

int store_unlink_durable(int dirfd, const char *const *names, size_t n)
{
	int removed = 0;

	for (size_t i = 0; i < n; i++) {
		if (unlinkat(dirfd, names[i], 0) == 0)
			removed++;
		else if (errno != ENOENT)
			return -errno;
	}
	if (removed && fsync(dirfd) < 0)
		return -errno;
	return removed;
}

/* The directory that holds name (relative to parentfd), flushed: a
 * directory just made survives a power cut. */
static int sync_parent(int parentfd, const char *name)
{
	const char *slash = strrchr(name, '/');
	char path[4096];
	int fd, rc = 0;

	if (slash) {
		size_t n = slash == name ? 1 : (size_t)(slash - name);

		if (n >= sizeof(path))
			return -ENAMETOOLONG;
		memcpy(path, name, n);
		path[n] = '\0';
		fd = openat(parentfd, path,
			    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	} else {
		fd = openat(parentfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int store_dir_open(int parentfd, const char *name, mode_t create_mode,
		   int *fdp)
{
	int fd, rc;

	*fdp = -1;
	if (create_mode && mkdirat(parentfd, name, create_mode) == 0) {
		rc = sync_parent(parentfd, name);
		if (rc)
			return rc;
	} else if (create_mode && errno != EEXIST) {
		return -errno;
	}
	fd = openat(parentfd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -ENOTDIR : -errno;
	*fdp = fd;
	return 0;
}

const char *store_dir_unsafe(int fd, uid_t owner, uid_t alt_owner)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return "cannot be examined (fstat failed)";
	if (!S_ISDIR(st.st_mode))
		return "is not a directory";
	if (st.st_uid != owner && st.st_uid != alt_owner)
		return "is owned by another user";
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return "is writable by group or others";
	return NULL;
}
