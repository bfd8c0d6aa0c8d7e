/* SPDX-License-Identifier: BSD-3-Clause */
#include "instance/mgrlink.h"

#include <errno.h>
#include <time.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "lib/bytes.h"
#include "lib/log.h"
#include "proto/config.h"

static int settle_locked(struct mgrlink *l, char *err, size_t errlen);

void mgrlink_init(struct mgrlink *l)
{
	pthread_condattr_t ca;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	l->stopfd = -1;
	l->timeout_ms = 60000;
	pthread_mutex_init(&l->mu, NULL);
	pthread_mutex_init(&l->wmu, NULL);
	pthread_mutex_init(&l->xmu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
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

static int send_all(struct mgrlink *l, const uint8_t *buf, size_t len)
{
	size_t off = 0;
	int rc = 0;

	pthread_mutex_lock(&l->wmu);
	while (off < len) {
		ssize_t n = send(l->fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		off += (size_t)n;
	}
	pthread_mutex_unlock(&l->wmu);
	return rc;
}

/* Reads one answer frame into buf (MGR_MAX_FRAME bytes), the caller
 * owning the input (not serving). */
static int sock_recv(struct mgrlink *l, uint8_t *buf, size_t *flen_out,
		     char *err, size_t errlen)
{
	size_t off = 0;
	int rc, flen;

	for (;;) {
		ssize_t n;

		flen = mgrproto_frame_len(buf, off);
		if (flen < 0) {
			snprintf(err, errlen, "bad frame from manager: %s",
				 mgrproto_strerror(flen));
			return -EPROTO;
		}
		if (flen > 0 && be16_get(buf) == MGR_TAG_MREQ) {
			/* Not serving yet: the manager's request goes
			 * unanswered (its deadline tells it). */
			off -= (size_t)flen;
			memmove(buf, buf + flen, off);
			continue;
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

/* send_all, with the failure told in err. */
static int link_send(struct mgrlink *l, const uint8_t *buf, size_t len,
		     char *err, size_t errlen)
{
	int rc = send_all(l, buf, len);

	if (rc)
		snprintf(err, errlen, "send to manager: %s", strerror(-rc));
	return rc;
}

/* The manager's answer status as 0 or -errno, err set for a refusal. */
static int refusal(enum mgr_msg type, uint32_t status, char *err,
		   size_t errlen)
{
	if (status == MGR_SUCCESS)
		return 0;
	snprintf(err, errlen, "the manager refused %s: %s",
		 mgrproto_msg_name(type), mgrproto_status_str(status));
	return status == MGR_ROLLBACK ? -EPERM : -EIO;
}

static int encode(const struct mgr_req *req, uint8_t *buf, size_t *len,
		  char *err, size_t errlen)
{
	int rc = mgrproto_encode_req(req, buf, len);

	if (rc) {
		snprintf(err, errlen, "encode: %s", mgrproto_strerror(rc));
		return -EINVAL;
	}
	return 0;
}

/* Sends the frame in buf and reads one answer frame back into buf. */
static int sock_exchange(struct mgrlink *l, uint8_t *buf, size_t len,
			 size_t *flen_out, char *err, size_t errlen)
{
	int rc = link_send(l, buf, len, err, errlen);

	return rc ? rc : sock_recv(l, buf, flen_out, err, errlen);
}

/* The ring carries one frame per response: it must be exactly one. */
static int frames_exchange(struct mgrlink *l, uint8_t *buf, size_t len,
			   size_t *flen_out, int timeout_ms, char *err,
			   size_t errlen)
{
	size_t n = 0;
	int rc, flen;

	rc = l->frames_ops->exchange(l->frames, buf, len, buf, &n, timeout_ms,
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

/* Serving: the frame goes out, and the reader thread will hand its
 * answer over (served_recv). */
static int served_send(struct mgrlink *l, const uint8_t *buf, size_t len,
		       char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&l->mu);
	l->waiting = true;
	l->rsp_ready = false;
	pthread_mutex_unlock(&l->mu);
	rc = link_send(l, buf, len, err, errlen);
	if (rc) {
		pthread_mutex_lock(&l->mu);
		l->waiting = false;
		pthread_mutex_unlock(&l->mu);
	}
	return rc;
}

static int served_recv(struct mgrlink *l, uint8_t *buf, size_t *flen_out,
		       int timeout_ms, char *err, size_t errlen)
{
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&l->mu);
	while (!l->rsp_ready && !l->hung_up && rc == 0)
		rc = -pthread_cond_timedwait(&l->cv, &l->mu, &until);
	if (l->rsp_ready) {
		memcpy(buf, l->rsp, l->rsp_len);
		*flen_out = l->rsp_len;
		OPENSSL_cleanse(l->rsp, l->rsp_len);
		rc = 0;
	} else if (l->hung_up) {
		snprintf(err, errlen, "manager link closed");
		rc = -ECONNRESET;
	} else {
		snprintf(err, errlen, "waiting for the manager: %s",
			 strerror(-rc));
	}
	l->waiting = false;
	l->rsp_ready = false;
	pthread_mutex_unlock(&l->mu);
	return rc;
}

static int served_exchange(struct mgrlink *l, uint8_t *buf, size_t len,
			   size_t *flen_out, int timeout_ms, char *err,
			   size_t errlen)
{
	int rc = served_send(l, buf, len, err, errlen);

	return rc ? rc : served_recv(l, buf, flen_out, timeout_ms, err, errlen);
}

/* The reader thread: every frame the manager sends, once serving. */
static void reader_frame(struct mgrlink *l, const uint8_t *f, size_t len)
{
	if (be16_get(f) == MGR_TAG_MREQ) {
		l->on_request(l->ctx, f, len);
		return;
	}
	pthread_mutex_lock(&l->mu);
	if (l->waiting && !l->rsp_ready) {
		memcpy(l->rsp, f, len);
		l->rsp_len = len;
		l->rsp_ready = true;
		pthread_cond_broadcast(&l->cv);
	} else {
		log_warnx("manager link: an answer to no request: dropped");
	}
	pthread_mutex_unlock(&l->mu);
}

static void *reader_main(void *arg)
{
	struct mgrlink *l = arg;
	uint8_t buf[MGR_MAX_FRAME];
	size_t off = 0;

	for (;;) {
		/* Asleep until the manager writes or mgrlink_serve_stop
		 * says stop: an idle vTPM's reader never wakes. */
		struct pollfd p[2] = {
			{ .fd = l->fd, .events = POLLIN },
			{ .fd = l->stopfd, .events = POLLIN },
		};
		ssize_t n;
		int flen, rc;

		rc = poll(p, 2, -1);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0 || p[1].revents)
			break;
		n = recv(l->fd, buf + off, sizeof(buf) - off, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
		while ((flen = mgrproto_frame_len(buf, off)) > 0) {
			reader_frame(l, buf, (size_t)flen);
			off -= (size_t)flen;
			memmove(buf, buf + flen, off);
		}
		if (flen < 0) {
			log_warnx("bad frame from the manager: %s",
				  mgrproto_strerror(flen));
			break;
		}
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	pthread_mutex_lock(&l->mu);
	l->hung_up = true;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

int mgrlink_serve(struct mgrlink *l, mgrlink_request_fn on_request,
		  void *ctx)
{
	int rc;

	if (l->fd < 0)
		return -EOPNOTSUPP;
	if (l->serving)
		return -EALREADY;
	pthread_mutex_lock(&l->xmu);
	/* A posted answer still due is read here, or the reader would
	 * drop it (a failure sticks for the next call). */
	{
		char err[8];

		(void)settle_locked(l, err, sizeof(err));
	}
	l->on_request = on_request;
	l->ctx = ctx;
	l->hung_up = false;
	l->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->stopfd < 0) {
		rc = errno;
		pthread_mutex_unlock(&l->xmu);
		return -rc;
	}
	rc = pthread_create(&l->reader, NULL, reader_main, l);
	if (!rc) {
		l->serving = true;
	} else {
		close(l->stopfd);
		l->stopfd = -1;
	}
	pthread_mutex_unlock(&l->xmu);
	return -rc;
}

int mgrlink_send(struct mgrlink *l, const uint8_t *frame, size_t len)
{
	if (l->fd < 0)
		return -EOPNOTSUPP;
	return send_all(l, frame, len);
}

/*
 * The answer to a posted request (mgrlink_post), if one is outstanding:
 * 0 for MGR_SUCCESS.  A failure sticks: every later call, post or settle
 * returns it (the record of an answered state is not durable, the
 * instance must stop).  Called with xmu held.
 */
static int settle_locked(struct mgrlink *l, char *err, size_t errlen)
{
	uint8_t buf[MGR_MAX_FRAME];
	struct mgr_rsp rsp;
	size_t flen = 0;
	int rc;

	if (l->post_rc) {
		snprintf(err, errlen, "%s", l->post_err);
		return l->post_rc;
	}
	if (!l->posted)
		return 0;
	l->posted = false;
	rc = l->serving ? served_recv(l, buf, &flen, l->timeout_ms, l->post_err,
				      sizeof(l->post_err))
			: sock_recv(l, buf, &flen, l->post_err,
				    sizeof(l->post_err));
	if (!rc && mgrproto_decode_rsp(l->posted_type, buf, flen, &rsp)) {
		snprintf(l->post_err, sizeof(l->post_err),
			 "bad answer from manager");
		rc = -EPROTO;
	} else if (!rc) {
		rc = refusal(l->posted_type, rsp.status, l->post_err,
			     sizeof(l->post_err));
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	if (rc) {
		l->post_rc = rc;
		snprintf(err, errlen, "%s", l->post_err);
	}
	return rc;
}

int mgrlink_post(struct mgrlink *l, const struct mgr_req *req, char *err,
		 size_t errlen)
{
	uint8_t buf[MGR_MAX_FRAME];
	struct mgr_rsp rsp;
	size_t len;
	int rc;

	/* The ring has no pipelining: the whole exchange, now. */
	if (l->frames) {
		rc = mgrlink_call(l, req, &rsp, err, errlen);
		return rc ? rc : refusal(req->type, rsp.status, err, errlen);
	}
	rc = encode(req, buf, &len, err, errlen);
	if (rc)
		return rc;
	pthread_mutex_lock(&l->xmu);
	rc = settle_locked(l, err, errlen);
	if (!rc)
		rc = l->serving ? served_send(l, buf, len, err, errlen)
				: link_send(l, buf, len, err, errlen);
	if (!rc) {
		l->posted = true;
		l->posted_type = req->type;
	}
	pthread_mutex_unlock(&l->xmu);
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

int mgrlink_settle(struct mgrlink *l, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&l->xmu);
	rc = settle_locked(l, err, errlen);
	pthread_mutex_unlock(&l->xmu);
	return rc;
}

int mgrlink_call(struct mgrlink *l, const struct mgr_req *req,
		 struct mgr_rsp *rsp, char *err, size_t errlen)
{
	return mgrlink_call_within(l, req, rsp, l->timeout_ms, err, errlen);
}

int mgrlink_call_within(struct mgrlink *l, const struct mgr_req *req,
			struct mgr_rsp *rsp, int timeout_ms, char *err,
			size_t errlen)
{
	uint8_t buf[MGR_MAX_FRAME];
	size_t len, flen = 0;
	int rc;

	rc = encode(req, buf, &len, err, errlen);
	if (rc)
		return rc;
	pthread_mutex_lock(&l->xmu);
	rc = settle_locked(l, err, errlen);
	if (rc) {
		pthread_mutex_unlock(&l->xmu);
		OPENSSL_cleanse(buf, sizeof(buf));
		return rc;
	}
	if (l->frames)
		rc = frames_exchange(l, buf, len, &flen, timeout_ms, err,
				     errlen);
	else if (l->serving)
		rc = served_exchange(l, buf, len, &flen, timeout_ms, err,
				     errlen);
	else
		rc = sock_exchange(l, buf, len, &flen, err, errlen);
	pthread_mutex_unlock(&l->xmu);
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

void mgrlink_serve_stop(struct mgrlink *l)
{
	uint64_t one = 1;

	if (!l->serving)
		return;
	/* An eventfd's counter takes it (it is nowhere near its limit). */
	if (write(l->stopfd, &one, sizeof(one)) != (ssize_t)sizeof(one))
		log_warnx("cannot wake the manager link's reader: %s",
			  strerror(errno));
	pthread_join(l->reader, NULL);
	close(l->stopfd);
	l->stopfd = -1;
	l->serving = false;
}

void mgrlink_close(struct mgrlink *l)
{
	mgrlink_serve_stop(l);
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	if (l->frames)
		l->frames_ops->close(l->frames);
	l->frames = NULL;
	l->frames_ops = NULL;
}
