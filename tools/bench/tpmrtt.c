// SPDX-License-Identifier: BSD-3-Clause
/*
 * tpmrtt: round-trip time of TPM2_GetRandom(8) through a TPM character
 * device, for comparing guest drivers (tools/bench/run-kmod-bench.sh).
 *
 *   tpmrtt [-d /dev/tpm0] [-n 200] [-l label]
 *
 * Prints one line:
 *   tpmrtt label=L dev=D n=N ok=K min_us=.. median_us=.. mean_us=.. p95_us=.. max_us=..
 * and exits 0 only if every command was answered with TPM_RC_SUCCESS.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	static const unsigned char cmd[12] = {
		0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, /* NO_SESSIONS, 12 bytes */
		0x00, 0x00, 0x01, 0x7b, 0x00, 0x08  /* GetRandom, 8 bytes */
	};
	const char *dev = "/dev/tpm0", *label = "-";
	unsigned char rsp[4096];
	uint64_t *t, sum = 0;
	int n = 200, ok = 0, fd, i, c;

	while ((c = getopt(argc, argv, "d:n:l:")) != -1) {
		switch (c) {
		case 'd': dev = optarg; break;
		case 'n': n = atoi(optarg); break;
		case 'l': label = optarg; break;
		default:
			fprintf(stderr, "usage: tpmrtt [-d dev] [-n count] [-l label]\n");
			return 2;
		}
	}
	if (n < 1 || n > 100000)
		return 2;
	t = calloc((size_t)n, sizeof(*t));
	fd = open(dev, O_RDWR);
	if (!t || fd < 0) {
		fprintf(stderr, "tpmrtt: %s: %s\n", dev, strerror(errno));
		return 1;
	}
	for (i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		ssize_t r;

		if (write(fd, cmd, sizeof(cmd)) != (ssize_t)sizeof(cmd)) {
			fprintf(stderr, "tpmrtt: write: %s\n", strerror(errno));
			break;
		}
		r = read(fd, rsp, sizeof(rsp));
		t[i] = now_ns() - t0;
		if (r >= 10 && !rsp[6] && !rsp[7] && !rsp[8] && !rsp[9])
			ok++;
	}
	close(fd);
	if (i == 0)
		return 1;
	n = i;
	for (i = 0; i < n; i++)
		sum += t[i];
	qsort(t, (size_t)n, sizeof(*t), cmp_u64);
	printf("tpmrtt label=%s dev=%s n=%d ok=%d min_us=%llu median_us=%llu "
	       "mean_us=%llu p95_us=%llu max_us=%llu\n",
	       label, dev, n, ok, (unsigned long long)(t[0] / 1000),
	       (unsigned long long)(t[n / 2] / 1000),
	       (unsigned long long)(sum / (uint64_t)n / 1000),
	       (unsigned long long)(t[(n * 95) / 100 < n ? (n * 95) / 100 : n - 1] / 1000),
	       (unsigned long long)(t[n - 1] / 1000));
	free(t);
	return ok == n ? 0 : 1;
}
