/* SPDX-License-Identifier: BSD-3-Clause */
#include "proto/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/hex.h"

int keyfile_parse(const uint8_t *buf, size_t len, uint8_t key[32], char *err,
		  size_t errlen)
{
	if (len == 32) {
		memcpy(key, buf, 32);
		return 0;
	}
	if (len == 65 && buf[64] == '\n')
		len = 64;
	else if (len == 66 && buf[64] == '\r' && buf[65] == '\n')
		len = 64;
	if (len != 64) {
		snprintf(err, errlen,
			 "key must be 32 raw bytes or 64 hex characters, got %zu bytes",
			 len);
		return -EINVAL;
	}
	if (hex_decode((const char *)buf, 64, key, 32) != 0) {
		size_t off = 0;

		while (hex_digit(buf[off]) >= 0)
			off++;
		OPENSSL_cleanse(key, 32);
		snprintf(err, errlen,
			 "64-character key has a non-hex character at offset %zu",
			 off);
		return -EINVAL;
	}
	return 0;
}

int keyfile_load(const char *path, uint8_t key[32], char *err, size_t errlen)
{
	uint8_t buf[128];
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "%s: not a regular file", path);
		return -EINVAL;
	}
	if (st.st_mode & 077) {
		close(fd);
		snprintf(err, errlen,
			 "%s: key file is accessible by group or others (mode %04o); "
			 "chmod 600 it",
			 path, (unsigned int)(st.st_mode & 07777));
		return -EPERM;
	}
	while (len < sizeof(buf)) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			close(fd);
			OPENSSL_cleanse(buf, sizeof(buf));
			return rc;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	rc = keyfile_parse(buf, len, key, err, errlen);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (rc) {
		char tmp[200];
		snprintf(tmp, sizeof(tmp), "%s", err);
		snprintf(err, errlen, "%s: %s", path, tmp);
	}
	return rc;
}
