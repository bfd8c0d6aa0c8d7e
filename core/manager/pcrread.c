/* SPDX-License-Identifier: BSD-3-Clause */
/* TPM2_PCR_Read over a vTPM's socket (pcrread.h). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/bytes.h"
#include "manager/pcrread.h"
#include "proto/tpmcodes.h"

#define PCRSRC_SELECT_BYTES 3     /* PCRs 0..23 */

static int sock_xfer(int fd, const uint8_t *cmd, size_t len, uint8_t *rsp,
		     size_t max, size_t *rlen)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(fd, cmd + off, len - off, MSG_NOSIGNAL);
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	off = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (off >= 10 && off >= be32_get(rsp + 2))
			break;
		if (poll(&p, 1, 10000) <= 0)
			return -ETIMEDOUT;
		n = recv(fd, rsp + off, max - off, 0);
		if (n <= 0)
			return -ECONNRESET;
		off += (size_t)n;
		if (off == max)
			return -EMSGSIZE;
	}
	*rlen = off;
	return 0;
}

/* TPM2_PCR_Read of the vTPM's sha256 PCRs in mask, through its socket. */
int pcrread_socket(const char *path, uint32_t mask, uint8_t (*values)[32],
		   unsigned int *n, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	uint32_t left = mask;
	int fd, rc = 0;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "vTPM socket path too long");
		return -ENAMETOOLONG;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		snprintf(err, errlen, "vTPM socket %s: %s", path,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	*n = 0;
	while (left && rc == 0) {
		uint8_t cmd[20], rsp[1024];
		size_t rlen = 0, off;
		uint32_t got, cnt;

		be16_put(cmd, TPM_ST_NO_SESSIONS);
		be32_put(cmd + 2, sizeof(cmd));
		be32_put(cmd + 6, TPM_CC_PCR_Read);
		be32_put(cmd + 10, 1);            /* one selection */
		be16_put(cmd + 14, TPM_ALG_SHA256);
		cmd[16] = PCRSRC_SELECT_BYTES;
		cmd[17] = (uint8_t)left;
		cmd[18] = (uint8_t)(left >> 8);
		cmd[19] = (uint8_t)(left >> 16);
		rc = sock_xfer(fd, cmd, sizeof(cmd), rsp, sizeof(rsp), &rlen);
		if (rc)
			break;
		/* header, updateCounter, one selection (count, alg, size, 3) */
		if (rlen < 30 || be32_get(rsp + 6) != TPM_RC_SUCCESS ||
		    be32_get(rsp + 14) != 1 ||
		    be16_get(rsp + 18) != TPM_ALG_SHA256 ||
		    rsp[20] != PCRSRC_SELECT_BYTES) {
			snprintf(err, errlen, "vTPM PCR_Read failed (rc 0x%x)",
				 rlen >= 10 ? be32_get(rsp + 6) : 0);
			rc = -EIO;
			break;
		}
		got = rsp[21] | (uint32_t)rsp[22] << 8 | (uint32_t)rsp[23] << 16;
		cnt = be32_get(rsp + 24);
		if (!got || (got & ~left) ||
		    cnt != (uint32_t)__builtin_popcount(got)) {
			rc = -EIO;
			snprintf(err, errlen, "vTPM PCR_Read answered oddly");
			break;
		}
		off = 28;
		for (unsigned int i = 0; i < PCRREAD_MAX; i++) {
			if (!(got & (1u << i)))
				continue;
			if (off + 34 > rlen || be16_get(rsp + off) != 32) {
				rc = -EIO;
				snprintf(err, errlen, "short PCR_Read answer");
				break;
			}
			/* Values arrive in ascending index order; each read
			 * takes the lowest left, so they stay ascending. */
			memcpy(values[(*n)++], rsp + off + 2, 32);
			off += 34;
		}
		left &= ~got;
	}
	close(fd);
	return rc;
}

