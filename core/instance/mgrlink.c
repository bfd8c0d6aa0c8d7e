/* SPDX-License-Identifier: BSD-3-Clause */
#include "instance/mgrlink.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "proto/config.h"

void mgrlink_init(struct mgrlink *l)
{
	l->fd = -1;
	l->timeout_ms = 60000;
	l->frames = NULL;
	l->frames_ops = NULL;
}

bool mgrlink_is_open(const struct mgrlink *l)
{
	return l->fd >= 0 || l->frames;
}

int mgrlink_pollfd(const struct mgrlink *l)
{
	return l->fd;
}

int mgrlink_open(const char *spec, mgrlink_dialer dial, struct mgrlink *l,
		 char *err, size_t errlen)
{
	struct sockaddr_un sa;
	int fd;

	mgrlink_init(l);
	if (dial) {
		int rc = dial(spec, l, err, errlen);

		if (rc <= 0)
			return rc;
	}
	if (strncmp(spec, "fd:", 3) == 0) {
		long n;

		if (config_parse_long(spec + 3, 3, 1 << 20, &n)) {
			snprintf(err, errlen, "bad manager link '%s'", spec);
			return -EINVAL;
		}
		l->fd = (int)n;
		return 0;
	}
	if (strlen(spec) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "manager socket path too long");
		return -ENAMETOOLONG;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, spec);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int rc = -errno;
		snprintf(err, errlen, "%s: %s", spec, strerror(errno));
		close(fd);
		return rc;
	}
	l->fd = fd;
	return 0;
}

static int io_wait(int fd, short ev, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int n;

	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

/* Sends the frame in buf and reads one answer frame back into buf. */
static int sock_exchange(struct mgrlink *l, uint8_t *buf, size_t len,
			 size_t *flen_out, char *err, size_t errlen)
{
	size_t off = 0;
	int rc, flen;

	while (off < len) {
		ssize_t n = send(l->fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			snprintf(err, errlen, "send to manager: %s", strerror(errno));
			return rc;
		}
		off += (size_t)n;
	}
	off = 0;
	for (;;) {
		ssize_t n;

		flen = mgrproto_frame_len(buf, off);
		if (flen < 0) {
			snprintf(err, errlen, "bad frame from manager: %s",
				 mgrproto_strerror(flen));
			return -EPROTO;
		}
		if (flen > 0)
			break;
		rc = io_wait(l->fd, POLLIN, l->timeout_ms);
		if (rc) {
			snprintf(err, errlen, "waiting for the manager: %s",
				 strerror(-rc));
			return rc;
		}
		n = recv(l->fd, buf + off, MGR_MAX_FRAME - off, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "manager link closed");
			return n < 0 ? -errno : -ECONNRESET;
		}
		off += (size_t)n;
	}
	/* One request in flight: nothing may follow its answer. */
	if ((size_t)flen != off) {
		snprintf(err, errlen, "unexpected bytes after the manager's answer");
		return -EPROTO;
	}
	*flen_out = (size_t)flen;
	return 0;
}

/* The ring carries one frame per response: it must be exactly one. */
static int frames_exchange(struct mgrlink *l, uint8_t *buf, size_t len,
			size_t *flen_out, char *err, size_t errlen)
{
	size_t n = 0;
	int rc, flen;

	rc = l->frames_ops->exchange(l->frames, buf, len, buf, &n, l->timeout_ms,
				  err, errlen);
	if (rc)
		return rc;
	flen = mgrproto_frame_len(buf, n);
	if (flen < 0 || (size_t)flen != n) {
		snprintf(err, errlen, "bad frame from manager: %s",
			 flen < 0 ? mgrproto_strerror(flen)
				  : (flen == 0 ? "truncated"
					       : "bytes after the frame"));
		return -EPROTO;
	}
	*flen_out = n;
	return 0;
}

int mgrlink_call(struct mgrlink *l, const struct mgr_req *req,
		 struct mgr_rsp *rsp, char *err, size_t errlen)
{
	uint8_t buf[MGR_MAX_FRAME];
	size_t len, flen = 0;
	int rc;

	rc = mgrproto_encode_req(req, buf, &len);
	if (rc) {
		snprintf(err, errlen, "encode: %s", mgrproto_strerror(rc));
		return -EINVAL;
	}
	if (l->frames)
		rc = frames_exchange(l, buf, len, &flen, err, errlen);
	else
		rc = sock_exchange(l, buf, len, &flen, err, errlen);
	if (rc) {
		OPENSSL_cleanse(buf, sizeof(buf));
		return rc;
	}
	rc = mgrproto_decode_rsp(req->type, buf, flen, rsp);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (rc) {
		snprintf(err, errlen, "bad answer from manager: %s",
			 mgrproto_strerror(rc));
		return -EPROTO;
	}
	return 0;
}

void mgrlink_close(struct mgrlink *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	if (l->frames)
		l->frames_ops->close(l->frames);
	l->frames = NULL;
	l->frames_ops = NULL;
}
