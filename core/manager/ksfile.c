/* SPDX-License-Identifier: BSD-3-Clause */
#include "manager/ksfile.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/store.h"

/* In-place writes cover whole 512-byte sectors: the tail of a shorter
 * store is zeroed rather than left for later. */
#define SECTOR 512u

void ksfile_init(struct ksfile *kf)
{
	memset(kf, 0, sizeof(*kf));
	kf->fd = -1;
}

void ksfile_close(struct ksfile *kf)
{
	if (kf->fd >= 0)
		close(kf->fd);
	kf->fd = -1;
}

static int open_file(int dirfd, const char *name, int *fdp, uint64_t *size,
		     char *err, size_t errlen)
{
	int rc = store_open_regular(dirfd, name, O_RDWR, fdp, size);

	if (rc == -EINVAL)
		snprintf(err, errlen, "%s: not a regular file", name);
	else if (rc)
		snprintf(err, errlen, "%s: %s", name, strerror(-rc));
	return rc;
}

int ksfile_read(int dirfd, const char *name, int *fdp, uint8_t **bufp,
		size_t *lenp, char *err, size_t errlen)
{
	const size_t max = KSSLOTS_HDR_LEN + (size_t)KSSLOTS_COUNT * KSSLOTS_MAX_SLOT;
	uint64_t fsize;
	uint8_t *buf;
	size_t len = 0, size;
	int fd, rc;

	rc = open_file(dirfd, name, &fd, &fsize, err, errlen);
	if (rc)
		return rc;
	if (fsize > max) {
		snprintf(err, errlen, "%s: larger than any key store (%lld bytes)",
			 name, (long long)fsize);
		close(fd);
		return -EFBIG;
	}
	size = (size_t)fsize;
	buf = malloc(size ? size : 1);
	if (!buf) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	while (len < size) {
		ssize_t n = pread(fd, buf + len, size - len, (off_t)len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			snprintf(err, errlen, "reading %s: %s", name,
				 strerror(-rc));
			free(buf);
			close(fd);
			return rc;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*fdp = fd;
	*bufp = buf;
	*lenp = len;
	return 0;
}

void ksfile_adopt(struct ksfile *kf, int fd, const struct keystore_slots *s)
{
	ksfile_close(kf);
	kf->fd = fd;
	kf->slot_size = s->slot_size;
	kf->next = s->winner == 0 ? 1 : 0;
	for (int i = 0; i < KSSLOTS_COUNT; i++)
		kf->used[i] = s->used[i];
}

static int write_in_place(struct ksfile *kf, const uint8_t *store, size_t len,
			  char *err, size_t errlen)
{
	unsigned int slot = kf->next;
	size_t n = len > kf->used[slot] ? len : kf->used[slot];
	uint8_t *buf;
	int rc;

	n = (n + SECTOR - 1) / SECTOR * SECTOR;
	if (n > kf->slot_size)
		n = kf->slot_size;
	buf = calloc(1, n);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(buf, store, len);
	rc = store_pwrite_durable(kf->fd, buf, n,
				  keystore_slot_off(kf->slot_size, slot));
	OPENSSL_cleanse(buf, len);
	free(buf);
	if (rc) {
		snprintf(err, errlen, "writing key store slot %u: %s", slot,
			 strerror(-rc));
		return rc;
	}
	/* Durable: this slot now holds the newest store, the next write
	 * goes to the other one. */
	kf->used[slot] = len;
	kf->next = slot ? 0 : 1;
	kf->in_place++;
	return 0;
}

static int replace(struct ksfile *kf, int dirfd, const char *name,
		   const uint8_t *store, size_t len, char *err, size_t errlen)
{
	uint32_t slot_size = keystore_slot_size_for(len);
	uint64_t fsize;
	uint8_t *file;
	size_t flen;
	int fd, rc;

	if (!slot_size) {
		snprintf(err, errlen, "key store of %zu bytes: too large", len);
		return -EFBIG;
	}
	rc = keystore_slots_new(slot_size, store, len, &file, &flen);
	if (rc) {
		snprintf(err, errlen, "key store slot file: %s",
			 keystore_strerror(rc));
		return rc == KS_ERR_NOMEM ? -ENOMEM : -EINVAL;
	}
	rc = store_write_atomic(dirfd, name, file, flen);
	OPENSSL_cleanse(file, flen);
	free(file);
	if (rc) {
		snprintf(err, errlen, "writing %s: %s", name, strerror(-rc));
		return rc;
	}
	/* The new file is durable; its descriptor for the writes to come. */
	rc = open_file(dirfd, name, &fd, &fsize, err, errlen);
	if (rc)
		return rc;
	ksfile_close(kf);
	kf->fd = fd;
	kf->slot_size = slot_size;
	kf->used[0] = len;
	kf->used[1] = 0;
	kf->next = 1;
	kf->replaced++;
	return 0;
}

int ksfile_write(struct ksfile *kf, int dirfd, const char *name,
		 const uint8_t *store, size_t len, char *err, size_t errlen)
{
	if (kf->fd >= 0 && len <= kf->slot_size)
		return write_in_place(kf, store, len, err, errlen);
	return replace(kf, dirfd, name, store, len, err, errlen);
}
