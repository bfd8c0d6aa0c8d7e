/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instance's end of the manager protocol: a blocking request/response
 * link, used only from engine jobs on the worker thread and before the loop
 * starts, never from the loop thread.
 *
 * The manager asks too: PCR_READ (an MREQ frame) may arrive on the link
 * at any time once the instance serves.  mgrlink_serve() hands the
 * socket's input to a reader thread that passes the manager's requests to
 * a callback and the answers to this instance's own requests to the
 * caller waiting in mgrlink_call(); before it (loading), a request of
 * the manager's that arrives while a call waits is dropped unanswered.
 *
 * Two variants behind one API: a UNIX socket (inherited or connected),
 * and a frame link that a transport provides (the Xen vTPM ring, where
 * this domain is the frontend of a vtpm device whose backend is the
 * manager's domain: transports/xen-ring/mgrlink_xen.c).  The instance
 * does not know the ring: main() registers its dialer.
 */
#ifndef VTPM_MGRLINK_H
#define VTPM_MGRLINK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/mgrproto.h"

struct mgrlink_frames;

/* A link that carries exactly one manager frame each way per call. */
struct mgrlink_frames_ops {
	/* One frame out, one frame back (rsp holds MGR_MAX_FRAME). */
	int (*exchange)(struct mgrlink_frames *f, const uint8_t *req,
			size_t req_len, uint8_t *rsp, size_t *rsp_len,
			int timeout_ms, char *err, size_t errlen);
	void (*close)(struct mgrlink_frames *f);
};

/* A request of the manager's (one whole MREQ frame), on the reader
 * thread: copy what is needed and return. */
typedef void (*mgrlink_request_fn)(void *ctx, const uint8_t *frame,
				   size_t len);

struct mgrlink {
	int fd;			 /* the socket variant, else -1 */
	int timeout_ms;		 /* per call (and per connection wait) */
	struct mgrlink_frames *frames; /* the frame variant, else NULL */
	const struct mgrlink_frames_ops *frames_ops;

	/* One request at a time, and the switch to serving waits for the
	 * one in flight: before it, the caller reads its own answer; after
	 * it, the reader thread does (two readers lose answers). */
	pthread_mutex_t xmu;
	/* Serving (socket variant): the reader thread owns the input. */
	bool serving;
	pthread_t reader;
	int stopfd;              /* eventfd: the reader's "stop", or -1 */
	pthread_mutex_t mu;      /* the fields below */
	pthread_cond_t cv;
	pthread_mutex_t wmu;     /* one writer at a time */
	bool hung_up, waiting, rsp_ready;
	uint8_t rsp[MGR_MAX_FRAME];
	size_t rsp_len;
	/* A posted request whose answer is still due (under xmu), and the
	 * sticky failure of one that was refused or lost. */
	bool trail;		 /* SAVEHASHKEY posted (MGR_LOAD_FLAG_TRAIL) */
	bool posted;
	enum mgr_msg posted_type;
	int post_rc;
	char post_err[200];
	mgrlink_request_fn on_request;
	void *ctx;
};

/*
 * A dialer claims the specs of a frame link: 1 when spec is not its own,
 * else 0 with l->frames and l->frames_ops set, or a negative errno with
 * err filled (-EINVAL: the spec itself is wrong).
 */
typedef int (*mgrlink_dialer)(const char *spec, struct mgrlink *l, char *err,
			      size_t errlen);

/* Not open: fd -1, no ring. */
void mgrlink_init(struct mgrlink *l);

/*
 * spec: "fd:N" (a socket inherited from the manager), a UNIX socket path,
 * or whatever dial (may be NULL) claims ("xen-ring[:backend=DOMID]
 * [,devid=N]").  0 or negative errno with err filled; -EINVAL means the
 * spec itself is wrong (retrying cannot help).
 */
int mgrlink_open(const char *spec, mgrlink_dialer dial, struct mgrlink *l,
		 char *err, size_t errlen);

bool mgrlink_is_open(const struct mgrlink *l);

/* An fd that reports the manager hanging up (POLLHUP), or -1: the ring
 * has none, a backend restart is ridden out instead. */
int mgrlink_pollfd(const struct mgrlink *l);

/* One round trip.  0 when a response of the request's type was decoded
 * (its status may still be an error); negative errno otherwise. */
int mgrlink_call(struct mgrlink *l, const struct mgr_req *req,
		 struct mgr_rsp *rsp, char *err, size_t errlen);
/* The same, waiting at most timeout_ms instead of the link's timeout. */
int mgrlink_call_within(struct mgrlink *l, const struct mgr_req *req,
			struct mgr_rsp *rsp, int timeout_ms, char *err,
			size_t errlen);

/* From now on the manager's requests go to on_request (reader thread).
 * 0; -EOPNOTSUPP on a frame link (the ring carries the instance's
 * requests only); or a negative errno. */
/*
 * Pipelining for the socket variants: mgrlink_post sends req and returns
 * without its answer; the next post, call or mgrlink_settle waits for
 * that answer first (the manager takes one request at a time) and
 * returns its failure, which sticks.  The ring does the whole exchange
 * in mgrlink_post.  0, or -errno with err set.
 */
int mgrlink_post(struct mgrlink *l, const struct mgr_req *req, char *err,
		 size_t errlen);
int mgrlink_settle(struct mgrlink *l, char *err, size_t errlen);

int mgrlink_serve(struct mgrlink *l, mgrlink_request_fn on_request,
		  void *ctx);

/* Ends serving: the reader thread is joined (the link stays open). */
void mgrlink_serve_stop(struct mgrlink *l);

/* An answer to a request of the manager's (one whole frame); any thread.
 * 0 or a negative errno. */
int mgrlink_send(struct mgrlink *l, const uint8_t *frame, size_t len);

void mgrlink_close(struct mgrlink *l);

#endif
