// SPDX-License-Identifier: BSD-3-Clause
/*
 * tpmraw: sends raw TPM commands, given as hex, to a TPM character device
 * and prints each response as one line of hex. Used inside the xen-lab
 * guest, whose busybox has no xxd.
 *
 *   tpmraw [-d /dev/tpm0 | -u SOCKET] [-n COUNT] HEX...
 *
 * -u sends to a vtpm-service (or swtpm) UNIX data socket instead of a
 * device.  -n sends each command COUNT times and prints, instead of the
 * responses, "tpmraw: N round trips: total_us=T avg_us=A min_us=M" (the
 * benchmark of tools/bench/run-ring-bench.sh).
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
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
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

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* A device answers a read with the whole response; a socket may split it:
 * read until the size field's worth has arrived. */
static ssize_t get_response(int fd, int is_sock, unsigned char *rsp, size_t cap)
{
	size_t got = 0, want = 10;

	if (!is_sock)
		return read(fd, rsp, cap);
	while (got < want) {
		ssize_t r = read(fd, rsp + got, cap - got);

		if (r <= 0)
			return r < 0 ? -1 : (ssize_t)got;
		got += (size_t)r;
		if (got >= 6) {
			want = (size_t)rsp[2] << 24 | (size_t)rsp[3] << 16 |
			       (size_t)rsp[4] << 8 | rsp[5];
			if (want < 10 || want > cap)
				return -1;
		}
	}
	return (ssize_t)got;
}

static int open_sock(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (fd < 0 || strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	static unsigned char cmd[8192], rsp[8192];
	const char *dev = "/dev/tpm0";
	int fd, i = 1, is_sock = 0;
	long count = 0;

	while (i + 1 < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-d") == 0) {
			dev = argv[i + 1];
		} else if (strcmp(argv[i], "-u") == 0) {
			dev = argv[i + 1];
			is_sock = 1;
		} else if (strcmp(argv[i], "-n") == 0) {
			count = strtol(argv[i + 1], NULL, 10);
			if (count < 1 || count > 10000000)
				return 2;
		} else {
			break;
		}
		i += 2;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: tpmraw [-d DEV | -u SOCKET] [-n COUNT] HEX...\n");
		return 2;
	}
	fd = is_sock ? open_sock(dev) : open(dev, O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "tpmraw: %s: %s\n", dev, strerror(errno));
		return 1;
	}
	for (; i < argc; i++) {
		long n = unhex(argv[i], cmd, sizeof(cmd));
		double t0, total = 0, min = 1e18;

		if (n < 10) {
			fprintf(stderr, "tpmraw: bad command hex: %s\n", argv[i]);
			return 2;
		}
		for (long k = 0; k < (count ? count : 1); k++) {
			ssize_t w, r;
			double dt;

			t0 = now_us();
			w = write(fd, cmd, (size_t)n);
			if (w != n) {
				fprintf(stderr, "tpmraw: write: %s\n",
					w < 0 ? strerror(errno) : "short write");
				return 1;
			}
			r = get_response(fd, is_sock, rsp, sizeof(rsp));
			if (r < 10) {
				fprintf(stderr, "tpmraw: read: %s\n",
					r < 0 ? strerror(errno) : "short response");
				return 1;
			}
			dt = now_us() - t0;
			total += dt;
			if (dt < min)
				min = dt;
			if (!count) {
				for (ssize_t q = 0; q < r; q++)
					printf("%02x", rsp[q]);
				printf("\n");
			}
		}
		if (count)
			printf("tpmraw: %ld round trips: total_us=%.0f avg_us=%.1f "
			       "min_us=%.1f\n", count, total, total / count, min);
		fflush(stdout);
	}
	close(fd);
	return 0;
}
