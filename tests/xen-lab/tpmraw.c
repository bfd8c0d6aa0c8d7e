// SPDX-License-Identifier: BSD-3-Clause
/*
 * tpmraw: sends raw TPM commands, given as hex, to a TPM character device
 * and prints each response as one line of hex. Used inside the xen-lab
 * guest, whose busybox has no xxd.
 *
 *   tpmraw [-d /dev/tpm0] HEX...
 *
 * Spaces inside a HEX argument are ignored. Exit 0 once every command was
 * written and answered (whatever the TPM response code), 1 on an I/O error,
 * 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int nibble(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static long unhex(const char *s, unsigned char *out, size_t cap)
{
	size_t n = 0;
	int hi = -1, v;

	for (; *s; s++) {
		if (*s == ' ' || *s == ':' || *s == '\n')
			continue;
		v = nibble((unsigned char)*s);
		if (v < 0)
			return -1;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n >= cap)
			return -1;
		out[n++] = (unsigned char)(hi << 4 | v);
		hi = -1;
	}
	return hi < 0 ? (long)n : -1;
}

int main(int argc, char **argv)
{
	static unsigned char cmd[8192], rsp[8192];
	const char *dev = "/dev/tpm0";
	int fd, i = 1;

	if (argc > 2 && strcmp(argv[1], "-d") == 0) {
		dev = argv[2];
		i = 3;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: tpmraw [-d DEV] HEX...\n");
		return 2;
	}
	fd = open(dev, O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "tpmraw: %s: %s\n", dev, strerror(errno));
		return 1;
	}
	for (; i < argc; i++) {
		long n = unhex(argv[i], cmd, sizeof(cmd));
		ssize_t w, r;

		if (n < 10) {
			fprintf(stderr, "tpmraw: bad command hex: %s\n", argv[i]);
			return 2;
		}
		w = write(fd, cmd, (size_t)n);
		if (w != n) {
			fprintf(stderr, "tpmraw: write: %s\n",
				w < 0 ? strerror(errno) : "short write");
			return 1;
		}
		r = read(fd, rsp, sizeof(rsp));
		if (r < 10) {
			fprintf(stderr, "tpmraw: read: %s\n",
				r < 0 ? strerror(errno) : "short response");
			return 1;
		}
		for (ssize_t k = 0; k < r; k++)
			printf("%02x", rsp[k]);
		printf("\n");
		fflush(stdout);
	}
	close(fd);
	return 0;
}
