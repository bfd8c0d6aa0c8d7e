// SPDX-License-Identifier: BSD-3-Clause
/*
 * tpmraw: raw TPM commands, given as hex, to a TPM character device or a
 * vtpm-service (or swtpm) UNIX data socket; prints each response as one
 * line of hex, or times round trips.  The Xen lab's guest uses it (its
 * busybox has no xxd), and so do the benchmarks (tools/bench): the one
 * round-trip timer of the project.
 *
 *   tpmraw [-d DEV | -u SOCKET] HEX...
 *   tpmraw [-d DEV | -u SOCKET] -n COUNT [-l LABEL] [HEX...]
 *
 * -d    the device (default /dev/tpm0); -u a UNIX socket instead.
 * HEX   a whole command; spaces, colons and newlines in it are ignored.
 * -n    sends each command COUNT times and prints, instead of responses,
 *       one line per command:
 *         tpmraw label=L dev=D n=N ok=K min_us=.. median_us=.. mean_us=..
 *                p95_us=.. max_us=.. total_us=..
 *       (ok: answers with TPM_RC_SUCCESS; L is "-" without -l).  Without
 *       HEX it times TPM2_GetRandom(8), 80010000000c0000017b0008.
 *
 * Exit: 0 once every command was written and answered (without -n,
 * whatever the TPM response code; with -n, every answer TPM_RC_SUCCESS),
 * 1 on an I/O error or (with -n) a failed answer, 2 on bad usage.  With -n,
 * an I/O error still prints the line for the round trips done before it.
 */
#define _GNU_SOURCE /* clock_gettime, SOCK_CLOEXEC also with -std=c11 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_COUNT 1000000L
#define GETRANDOM8 "80010000000c0000017b0008"

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

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double us(uint64_t ns)
{
	return (double)ns / 1e3;
}

/* The -n line for the n round trips in t[] (sorted here). */
static void report(const char *label, const char *dev, uint64_t *t, long n,
		   long ok)
{
	uint64_t sum = 0;
	long p95 = n * 95 / 100;

	for (long i = 0; i < n; i++)
		sum += t[i];
	qsort(t, (size_t)n, sizeof(*t), cmp_u64);
	printf("tpmraw label=%s dev=%s n=%ld ok=%ld min_us=%.1f median_us=%.1f "
	       "mean_us=%.1f p95_us=%.1f max_us=%.1f total_us=%.0f\n",
	       label, dev, n, ok, us(t[0]), us(t[n / 2]), us(sum) / (double)n,
	       us(t[p95 < n ? p95 : n - 1]), us(t[n - 1]), us(sum));
	fflush(stdout);
}

static void usage(void)
{
	fprintf(stderr, "usage: tpmraw [-d DEV | -u SOCKET] HEX...\n"
			"       tpmraw [-d DEV | -u SOCKET] -n COUNT [-l LABEL] [HEX...]\n");
}

int main(int argc, char **argv)
{
	static unsigned char cmd[8192], rsp[8192];
	static char *dflt[] = { GETRANDOM8, NULL };
	const char *dev = "/dev/tpm0", *label = "-";
	char **hex;
	uint64_t *t = NULL;
	long count = 0;
	int fd, c, is_sock = 0, rc = 0;

	while ((c = getopt(argc, argv, "+d:u:n:l:h")) != -1) {
		char *end;

		switch (c) {
		case 'd':
			dev = optarg;
			is_sock = 0;
			break;
		case 'u':
			dev = optarg;
			is_sock = 1;
			break;
		case 'n':
			errno = 0;
			count = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || count < 1 ||
			    count > MAX_COUNT) {
				fprintf(stderr, "tpmraw: -n takes 1 to %ld\n",
					MAX_COUNT);
				return 2;
			}
			break;
		case 'l':
			label = optarg;
			break;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 2;
		}
	}
	hex = argv + optind;
	if (!*hex) {
		if (!count) {
			usage();
			return 2;
		}
		hex = dflt;
	}
	/* Every command is checked before the first is sent. */
	for (char **h = hex; *h; h++) {
		if (unhex(*h, cmd, sizeof(cmd)) < 10) {
			fprintf(stderr, "tpmraw: bad command hex: %s\n", *h);
			return 2;
		}
	}
	if (count && !(t = calloc((size_t)count, sizeof(*t)))) {
		fprintf(stderr, "tpmraw: out of memory\n");
		return 1;
	}
	fd = is_sock ? open_sock(dev) : open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "tpmraw: %s: %s\n", dev, strerror(errno));
		free(t);
		return 1;
	}
	for (; *hex && !rc; hex++) {
		long n = unhex(*hex, cmd, sizeof(cmd)), k, ok = 0;

		for (k = 0; k < (count ? count : 1); k++) {
			uint64_t t0 = now_ns();
			ssize_t w, r;

			w = write(fd, cmd, (size_t)n);
			if (w != n) {
				fprintf(stderr, "tpmraw: write: %s\n",
					w < 0 ? strerror(errno) : "short write");
				rc = 1;
				break;
			}
			r = get_response(fd, is_sock, rsp, sizeof(rsp));
			if (r < 10) {
				fprintf(stderr, "tpmraw: read: %s\n",
					r < 0 ? strerror(errno) : "short response");
				rc = 1;
				break;
			}
			if (count) {
				t[k] = now_ns() - t0;
				if (!rsp[6] && !rsp[7] && !rsp[8] && !rsp[9])
					ok++;
				continue;
			}
			for (ssize_t q = 0; q < r; q++)
				printf("%02x", rsp[q]);
			printf("\n");
			fflush(stdout);
		}
		if (count && k > 0) {
			report(label, dev, t, k, ok);
			if (ok != k)
				rc = 1;
		}
	}
	close(fd);
	free(t);
	return rc;
}
