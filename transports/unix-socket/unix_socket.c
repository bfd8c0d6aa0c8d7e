/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * swtpm-compatible sockets: a data socket (TPM frames) and a control
 * socket (swtpm's CMD_* protocol), on UNIX paths PATH and PATH.ctrl or
 * on TCP ports P and P+1.  Unlike swtpm, any number of clients may be
 * connected; their commands are run one at a time in arrival order.
 */
#define _GNU_SOURCE /* struct ucred */
#include <errno.h>
#include <stddef.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/bytes.h"
#include "lib/list.h"
#include "lib/log.h"
#include "unix-socket/swtpm_ctrl.h"
#include "proto/tpmcodes.h"
#include "proto/tpmframe.h"
#include "instance/engine.h"
#include "instance/vtpm.h"
#include "unix-socket/unix_socket.h"

#define CTRL_DEADLINE_MS 500
#define MSSIM_TRAILER_LEN 4
#define CTRL_RBUF_INIT (4 + 12 + 4096)
#define REFUSAL_LOG_PERIOD_MS 10000
#define PEER_LOCALITIES 8

enum conn_kind { CONN_DATA, CONN_CTRL };

/* What a connection's clock measures: nothing, an idle client (the
 * transport's idle sweep, below), or a request that stalls half-way (the
 * connection's own uv timer). */
enum conn_timer { TIMER_OFF, TIMER_IDLE, TIMER_STALL };

/* Who is at the other end: for a UNIX socket its process (SO_PEERCRED);
 * over TCP nobody can tell, and every TCP client is the same peer. */
struct peer {
	bool known;
	pid_t pid;
	uid_t uid;
};

/* The locality a peer set on the control channel, for the data
 * connections it opens afterwards (tpm2-tss's swtpm TCTI sets it on a
 * control connection of its own, then sends on the data socket). */
struct peer_locality {
	struct peer peer;
	int locality;
	bool used;
};

struct usock;

struct conn {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_pipe_t pipe;
		uv_tcp_t tcp;
	} h;
	uv_timer_t timer;            /* the stall deadline */
	enum conn_timer timer_kind;
	uint64_t idle_since;         /* uv_now when it last went idle */
	enum conn_kind kind;
	struct usock *us;
	struct list_node node;       /* in usock.conns */
	unsigned int id;
	struct peer peer;
	int locality;                /* data: of this client's commands */
	unsigned int owner_id;       /* data: the control client that passed
					it with SET_DATAFD, else 0 */
	bool held;                   /* a hypervisor's connection (SET_DATAFD
					and its control channel): no idle
					timeout */

	uint8_t *rbuf;
	size_t rlen, rcap;
	bool reading;
	bool pumping, repump;

	struct vtpm_job job;
	bool job_pending;
	struct tpmframe frame;       /* data: the frame being served */
	struct ctrl_req req;         /* ctrl: the request being served */
	struct ctrl_reply reply;

	uv_write_t wreq;
	uint8_t *wbuf;
	bool close_after_write;
	bool closing;
	bool datafd_taken;           /* ctrl: its one SET_DATAFD is used */
	int refs;
};

struct listener {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_pipe_t pipe;
		uv_tcp_t tcp;
	} h;
	enum conn_kind kind;
	struct usock *us;
	bool active;
	char path[112];
};

struct usock {
	struct transport *t;
	struct listener data, ctrl;
	struct list_node conns;      /* of conn.node */
	unsigned int next_id;
	unsigned int nconns;         /* of conns: counted against the cap */
	int open_handles;
	void (*stopped)(struct transport *t);
	struct log_ratelimit rl;
	uint64_t refused_logged_at;  /* uv_now of the last refusal line */
	unsigned int refused;        /* refusals not reported yet */
	struct peer_locality peer_loc[PEER_LOCALITIES];
	unsigned int peer_loc_next;
	uv_poll_t idle_poll;         /* on idle_fd, a timerfd */
	int idle_fd;                 /* -1: no idle timeout */
	uint64_t idle_due;           /* uv_now the timerfd fires at; 0: off */
};

static void conn_read_start(struct conn *c);
static void conn_close(struct conn *c);

/* Once stopping and every handle is closed: the transport is gone (its
 * memory too) and the instance hears so. */
static void usock_maybe_stopped(struct usock *us)
{
	void (*cb)(struct transport *) = us->stopped;
	struct transport *t = us->t;

	if (!cb || !list_empty(&us->conns) || us->open_handles > 0)
		return;
	t->priv = NULL;
	free(us);
	cb(t);
}

/* ---- connection lifetime ---- */

static void conn_unref(struct conn *c)
{
	struct usock *us = c->us;

	if (--c->refs > 0)
		return;
	list_remove(&c->node);
	us->nconns--;
	free(c->rbuf);
	free(c->wbuf);
	free(c->reply.buf);
	free(c);
	usock_maybe_stopped(us);
}

static void conn_handle_closed(uv_handle_t *h)
{
	conn_unref(h->data);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close(&c->h.handle, conn_handle_closed);
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
	/* A queued command of a gone client is not run at all. */
	if (c->job_pending && vtpm_withdraw(c->us->t->vtpm, &c->job)) {
		c->job_pending = false;
		conn_unref(c);
	}
}

/* For a connection whose stream handle was never initialised. */
static void conn_abort(struct conn *c)
{
	c->closing = true;
	c->refs = 1;
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static struct conn *conn_new(struct usock *us, enum conn_kind kind)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->kind = kind;
	c->us = us;
	c->id = ++us->next_id;
	c->rcap = kind == CONN_DATA
			  ? MSSIM_HEADER_LEN +
				    engine_buffer_size(vtpm_engine(us->t->vtpm))
			  : CTRL_RBUF_INIT;
	c->rbuf = malloc(c->rcap);
	if (!c->rbuf) {
		free(c);
		return NULL;
	}
	c->h.handle.data = c;
	c->timer.data = c;
	uv_timer_init(us->t->loop, &c->timer);
	c->refs = 2; /* the stream handle and the timer */
	list_push_front(&us->conns, &c->node);
	us->nconns++;
	return c;
}

/* ---- timers: idle clients and stalled requests ----
 *
 * The idle timeout is not a uv timer per connection.  A pending uv timer
 * gives every epoll_wait a finite timeout, and the kernel arms and cancels
 * a high-resolution timer each time the loop sleeps: measured here on a
 * socketpair ping-pong, 10.3 us a round trip with epoll_wait(-1) against
 * 10.7-12.4 us with a timeout, which is most of a GetRandom's cost beyond
 * swtpm's.  So a connection going idle only notes the loop's clock, and one
 * timerfd per transport (in the epoll set, armed for the earliest possible
 * expiry, rarely re-armed) wakes a sweep that closes the clients idle for
 * long enough.  A request that stalls half-way still has its own uv timer:
 * that deadline is short and exists only while a frame is incomplete.
 */

static void conn_idle_timeout(struct conn *c);
static void conn_stall_timeout(uv_timer_t *t);

/* The sweep runs no later than due (uv_now milliseconds). */
static void idle_arm(struct usock *us, uint64_t due)
{
	uint64_t now = uv_now(us->t->loop), ms;
	struct itimerspec it;

	if (us->idle_fd < 0 || (us->idle_due && us->idle_due <= due))
		return;
	ms = due > now ? due - now : 1;
	memset(&it, 0, sizeof(it));
	it.it_value.tv_sec = (time_t)(ms / 1000);
	it.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
	if (timerfd_settime(us->idle_fd, 0, &it, NULL) < 0) {
		log_warn("idle timer");
		return;
	}
	us->idle_due = due;
}

static void idle_sweep(uv_poll_t *p, int status, int events)
{
	struct usock *us = p->data;
	uint64_t fired, now, next = 0;
	long ms = us->t->cfg->idle_timeout_ms;
	struct list_node *n, *nx;

	(void)status;
	(void)events;
	if (read(us->idle_fd, &fired, sizeof(fired)) < 0 && errno != EAGAIN)
		log_warn("idle timer");
	us->idle_due = 0;
	uv_update_time(us->t->loop);
	now = uv_now(us->t->loop);
	/* conn_close only marks and defers: the list stays as it is. */
	list_for_each_safe(n, nx, &us->conns) {
		struct conn *c = list_item(n, struct conn, node);
		uint64_t due = c->idle_since + (uint64_t)ms;

		if (c->timer_kind != TIMER_IDLE || c->closing)
			continue;
		if (due <= now)
			conn_idle_timeout(c);
		else if (!next || due < next)
			next = due;
	}
	if (next)
		idle_arm(us, next);
}

static void conn_timer_stop(struct conn *c)
{
	if (c->timer_kind == TIMER_STALL)
		uv_timer_stop(&c->timer);
	c->timer_kind = TIMER_OFF;
}

/* Nothing buffered, nothing running: the idle clock starts again.  A
 * hypervisor's connection is exempt: QEMU holds it for the guest's
 * lifetime and a guest may leave its TPM alone for days. */
static void conn_timer_idle(struct conn *c)
{
	long ms = c->us->t->cfg->idle_timeout_ms;

	if (c->closing || c->held || ms <= 0) {
		conn_timer_stop(c);
		return;
	}
	if (c->timer_kind == TIMER_STALL)
		uv_timer_stop(&c->timer);
	c->timer_kind = TIMER_IDLE;
	c->idle_since = uv_now(c->us->t->loop);
	idle_arm(c->us, c->idle_since + (uint64_t)ms);
}

/* A request began: its deadline runs from its first byte and is not
 * restarted by more bytes (a byte every second would otherwise hold the
 * connection forever). */
static void conn_timer_stall(struct conn *c, uint64_t ms)
{
	if (c->timer_kind == TIMER_STALL || c->closing)
		return;
	c->timer_kind = TIMER_STALL;
	uv_timer_start(&c->timer, conn_stall_timeout, ms, 0);
}

static void conn_idle_timeout(struct conn *c)
{
	c->timer_kind = TIMER_OFF;
	log_warnx_rl(&c->us->rl,
		     "%s client %u: idle for %ld ms; closing it",
		     c->kind == CONN_DATA ? "data" : "control", c->id,
		     c->us->t->cfg->idle_timeout_ms);
	conn_close(c);
}

/* ---- peers and their localities ---- */

static void conn_get_peer(struct conn *c)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	uv_os_fd_t fd;

	memset(&c->peer, 0, sizeof(c->peer));
	if (c->h.handle.type != UV_NAMED_PIPE ||
	    uv_fileno(&c->h.handle, &fd) ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) ||
	    cr.pid <= 0)
		return;
	c->peer.known = true;
	c->peer.pid = cr.pid;
	c->peer.uid = cr.uid;
}

static bool peer_same(const struct peer *a, const struct peer *b)
{
	if (a->known != b->known)
		return false;
	return !a->known || (a->pid == b->pid && a->uid == b->uid);
}

static struct peer_locality *peer_loc_find(struct usock *us,
					   const struct peer *p)
{
	for (unsigned int i = 0; i < PEER_LOCALITIES; i++)
		if (us->peer_loc[i].used && peer_same(&us->peer_loc[i].peer, p))
			return &us->peer_loc[i];
	return NULL;
}

/* The locality a new data client starts at: what its own process set on
 * the control channel, else 0.  Never another client's. */
static int peer_loc_initial(struct usock *us, const struct peer *p)
{
	struct peer_locality *pl = peer_loc_find(us, p);

	return pl ? pl->locality : 0;
}

/*
 * SET_LOCALITY from control client c: the data connections it passed
 * (SET_DATAFD) and those of its own process take the locality, now and
 * when they connect later.  No other client's commands change.
 */
static void ctrl_apply_locality(struct conn *c, int locality)
{
	struct usock *us = c->us;
	struct peer_locality *pl = peer_loc_find(us, &c->peer);
	struct list_node *n, *next;

	if (!pl) {
		pl = &us->peer_loc[us->peer_loc_next++ % PEER_LOCALITIES];
		pl->used = true;
		pl->peer = c->peer;
	}
	pl->locality = locality;
	list_for_each_safe(n, next, &us->conns) {
		struct conn *d = list_item(n, struct conn, node);

		if (d->kind == CONN_DATA &&
		    (d->owner_id == c->id || peer_same(&d->peer, &c->peer)))
			d->locality = locality;
	}
}

/* ---- writing ---- */

static void data_pump(struct conn *c);

/* A reply has gone out completely: serve what the client sent next. */
static void conn_reply_sent(struct conn *c)
{
	if (c->close_after_write) {
		conn_close(c);
		return;
	}
	if (c->closing)
		return;
	if (c->kind == CONN_DATA)
		data_pump(c);
	else
		conn_read_start(c);
}

static void conn_after_write(uv_write_t *w, int status)
{
	struct conn *c = w->data;

	free(c->wbuf);
	c->wbuf = NULL;
	if (status < 0)
		conn_close(c);
	else
		conn_reply_sent(c);
	conn_unref(c);
}

/*
 * Sends a reply.  The common case is one write() that takes it all;
 * otherwise the rest is copied and queued.  buf stays the caller's.
 */
static void conn_send(struct conn *c, const uint8_t *buf, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)buf, (unsigned int)len);
	int n;

	if (c->closing)
		return;
	n = uv_try_write(&c->h.stream, &b, 1);
	if (n == (int)len) {
		conn_reply_sent(c);
		return;
	}
	if (n < 0 && n != UV_EAGAIN) {
		conn_close(c);
		return;
	}
	if (n < 0)
		n = 0;
	c->wbuf = malloc(len - (size_t)n);
	if (!c->wbuf) {
		conn_close(c);
		return;
	}
	memcpy(c->wbuf, buf + n, len - (size_t)n);
	b = uv_buf_init((char *)c->wbuf, (unsigned int)(len - (size_t)n));
	c->wreq.data = c;
	c->refs++;
	if (uv_write(&c->wreq, &c->h.stream, &b, 1, conn_after_write) < 0) {
		c->refs--;
		free(c->wbuf);
		c->wbuf = NULL;
		conn_close(c);
	}
}

/* ---- data connections ---- */

static void data_job_done(struct vtpm_job *job)
{
	struct conn *c = job->data;
	struct tpmframe *f = &c->frame;

	c->job_pending = false;
	if (job->status == -ECANCELED || c->closing) {
		conn_unref(c);
		return;
	}
	/* The frame is answered: drop it from the buffer. */
	memmove(c->rbuf, c->rbuf + f->consumed, c->rlen - f->consumed);
	c->rlen -= f->consumed;
	if (f->kind == TPMFRAME_MSSIM) {
		/* Length, response, a zero word: rare, so it is copied. */
		uint8_t *all = malloc(job->rsp_len + 8);

		if (!all) {
			conn_close(c);
		} else {
			be32_put(all, job->rsp_len);
			memcpy(all + 4, job->rsp, job->rsp_len);
			be32_put(all + 4 + job->rsp_len, 0);
			conn_send(c, all, job->rsp_len + 8);
			free(all);
		}
	} else {
		conn_send(c, job->rsp, job->rsp_len);
	}
	conn_unref(c);
}

static void conn_stall_timeout(uv_timer_t *t)
{
	struct conn *c = t->data;

	c->timer_kind = TIMER_OFF;
	log_warnx_rl(&c->us->rl,
		     "%s client %u: stalled for %ld ms in the middle of a "
		     "request; closing it",
		     c->kind == CONN_DATA ? "data" : "control", c->id,
		     c->kind == CONN_DATA ? c->us->t->cfg->client_timeout_ms
					  : (long)CTRL_DEADLINE_MS);
	conn_close(c);
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void conn_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/*
 * Serves the frames buffered on a data connection, one at a time.  Reading
 * goes on while a command runs (no epoll changes per command); it pauses
 * only when the buffer is full.  A reply sent at once re-enters here; the
 * guard turns that recursion into this loop.
 */
static void data_pump(struct conn *c)
{
	struct engine *e = vtpm_engine(c->us->t->vtpm);
	int rc;

	if (c->pumping) {
		c->repump = true;
		return;
	}
	c->pumping = true;
	do {
		c->repump = false;
		if (c->closing || c->job_pending || c->wbuf)
			break;
		rc = tpmframe_parse(c->rbuf, c->rlen, engine_buffer_size(e),
				    &c->frame);
		if (rc == TPMFRAME_NEED_MORE) {
			if (c->rlen)
				conn_timer_stall(c, (uint64_t)c->us->t->cfg
							    ->client_timeout_ms);
			else
				conn_timer_idle(c);
			if (!c->reading) {
				if (uv_read_start(&c->h.stream, conn_alloc,
						  conn_on_read) == 0)
					c->reading = true;
				else
					conn_close(c);
			}
			break;
		}
		conn_timer_stop(c);
		if (rc < 0) {
			/* The stream cannot be resynchronised: answer, then
			 * close. */
			uint8_t out[TPM_HEADER_LEN];
			bool tpm2 = engine_version(e) == TPM_VERSION_2;

			log_warnx_rl(&c->us->rl, "data client %u: %s; closing it",
				     c->id, tpmframe_strerror(rc));
			tpm_error_response(out, tpm2,
					   tpm2 ? TPM_RC_COMMAND_SIZE
						: TPM12_BAD_PARAM_SIZE);
			c->close_after_write = true;
			if (c->reading) {
				uv_read_stop(&c->h.stream);
				c->reading = false;
			}
			conn_send(c, out, TPM_HEADER_LEN);
			break;
		}
		c->job.kind = VTPM_JOB_CMD;
		c->job.cmd = c->rbuf + c->frame.cmd_off;
		c->job.cmd_len = c->frame.cmd_len;
		/* Every command runs at its own client's locality: an
		 * MS-simulator header sets it for this connection only. */
		if (c->frame.locality >= 0 &&
		    !(c->frame.locality == 4 &&
		      vtpm_rejects_locality4(c->us->t->vtpm)))
			c->locality = c->frame.locality;
		c->job.locality = c->frame.locality >= 0 ? c->frame.locality
							  : c->locality;
		c->job.done = data_job_done;
		c->job.data = c;
		c->job_pending = true;
		c->refs++;
		/* A quick command is answered inside vtpm_submit. */
		vtpm_submit(c->us->t->vtpm, &c->job);
	} while (!c->closing && !c->job_pending && !c->wbuf);
	c->pumping = false;
}

/* ---- control connections ---- */

static void ctrl_send_reply(struct conn *c)
{
	uint8_t *buf = c->reply.buf;
	size_t len = c->reply.len;

	c->reply.buf = NULL;
	c->reply.len = 0;
	c->rlen = 0; /* the request took all buffered bytes */
	if (c->rcap > CTRL_RBUF_INIT) {
		/* A large request (a state blob) is done: its buffer goes
		 * back, the connection keeps only the small one. */
		uint8_t *small = malloc(CTRL_RBUF_INIT);

		if (small) {
			free(c->rbuf);
			c->rbuf = small;
			c->rcap = CTRL_RBUF_INIT;
		}
	}
	if (!buf) {
		conn_close(c);
		return;
	}
	conn_send(c, buf, len);
	free(buf);
}

static void ctrl_job_call(struct vtpm *v, struct vtpm_job *job)
{
	struct conn *c = job->data;

	if (ctrl_execute(v, &c->req, &c->reply) < 0) {
		free(c->reply.buf);
		c->reply.buf = NULL;
	}
}

static void ctrl_job_done(struct vtpm_job *job)
{
	struct conn *c = job->data;

	c->job_pending = false;
	if (job->status == -ECANCELED || c->closing) {
		conn_unref(c);
		return;
	}
	ctrl_send_reply(c);
	conn_unref(c);
}

static struct conn *data_conn_adopt(struct conn *ctrl, uv_stream_t *from);

static void pending_fd_closed(uv_handle_t *h)
{
	free(h);
}

/*
 * Closes every descriptor a control client passed (SCM_RIGHTS) that the
 * request it came with does not take: only SET_DATAFD takes one.  libuv
 * would otherwise keep them queued for the connection's lifetime, and a
 * client could exhaust the instance's descriptors.
 */
static void drop_pending_fds(struct conn *c)
{
	if (c->h.handle.type != UV_NAMED_PIPE)
		return;
	while (uv_pipe_pending_count(&c->h.pipe) > 0) {
		uv_pipe_t *p = malloc(sizeof(*p));

		/* Accepted into a pipe handle whatever it is, then closed. */
		if (!p || uv_pipe_init(c->us->t->loop, p, 0)) {
			free(p);
			conn_close(c); /* closing the connection closes them */
			return;
		}
		if (uv_accept(&c->h.stream, (uv_stream_t *)p))
			log_debug("control client %u: a passed descriptor "
				  "could not be taken; closed", c->id);
		uv_close((uv_handle_t *)p, pending_fd_closed);
	}
}

static void ctrl_handle_request(struct conn *c)
{
	struct vtpm *v = c->us->t->vtpm;
	uint32_t code = c->req.code;

	if (code == CTRL_SET_DATAFD) {
		uint32_t res = CTRL_RES_BAD_PARAMETER;

		if (c->datafd_taken) {
			/* one per control connection, as swtpm answers */
			res = CTRL_RES_IOERROR;
		} else if (c->h.handle.type == UV_NAMED_PIPE &&
			   uv_pipe_pending_count(&c->h.pipe) > 0 &&
			   data_conn_adopt(c, &c->h.stream)) {
			res = CTRL_RES_OK;
			c->datafd_taken = true;
			c->held = true;
		}
		drop_pending_fds(c);
		if (ctrl_reply_res(&c->reply, res) == 0)
			ctrl_send_reply(c);
		else
			conn_close(c);
		return;
	}
	if (code == CTRL_SET_LOCALITY) {
		uint32_t res = ctrl_locality_check(v, &c->req);

		if (res == CTRL_RES_OK)
			ctrl_apply_locality(c, c->req.body[0]);
		if (ctrl_reply_res(&c->reply, res) == 0)
			ctrl_send_reply(c);
		else
			conn_close(c);
		return;
	}
	if (code == CTRL_SHUTDOWN) {
		uint32_t res = c->req.body_len ? CTRL_RES_BAD_PARAMETER
					       : CTRL_RES_OK;
		if (ctrl_reply_res(&c->reply, res)) {
			conn_close(c);
			return;
		}
		if (res == CTRL_RES_OK) {
			log_info("control client %u: SHUTDOWN", c->id);
			c->close_after_write = true;
		}
		ctrl_send_reply(c);
		if (res == CTRL_RES_OK)
			vtpm_shutdown(v, 0);
		return;
	}
	if (!ctrl_needs_engine(code)) {
		if (ctrl_execute(v, &c->req, &c->reply) < 0) {
			conn_close(c);
			return;
		}
		ctrl_send_reply(c);
		return;
	}
	c->job.kind = VTPM_JOB_CALL;
	c->job.call = ctrl_job_call;
	c->job.done = ctrl_job_done;
	c->job.data = c;
	c->job_pending = true;
	c->refs++;
	vtpm_submit(v, &c->job);
}

static void ctrl_try_request(struct conn *c)
{
	if (!ctrl_frame(c->rbuf, c->rlen, &c->req)) {
		/* swtpm's rule: a request must be complete 500 ms after its
		 * first byte, else the connection is closed unanswered. */
		if (c->rlen)
			conn_timer_stall(c, CTRL_DEADLINE_MS);
		else
			conn_timer_idle(c);
		return;
	}
	conn_timer_stop(c);
	uv_read_stop(&c->h.stream);
	c->reading = false;
	if (c->req.code != CTRL_SET_DATAFD)
		drop_pending_fds(c);
	ctrl_handle_request(c);
}

/* ---- reading ---- */

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)hint;
	if (c->kind == CONN_CTRL && c->rlen == c->rcap &&
	    c->rcap < 16 + CTRL_MAX_BLOB) {
		/* Only SET_STATEBLOB grows past the first buffer. */
		size_t ncap = c->rcap * 2;
		uint8_t *n;

		if (ncap > 16 + CTRL_MAX_BLOB)
			ncap = 16 + CTRL_MAX_BLOB;
		n = realloc(c->rbuf, ncap);
		if (n) {
			c->rbuf = n;
			c->rcap = ncap;
		}
	}
	*buf = uv_buf_init((char *)c->rbuf + c->rlen,
			   (unsigned int)(c->rcap - c->rlen));
}

static void conn_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	(void)buf;
	if (n == 0)
		return;
	if (n == UV_ENOBUFS) {
		uv_read_stop(s);
		c->reading = false;
		return;
	}
	if (n < 0) {
		if (n != UV_EOF && n != UV_ECONNRESET)
			log_debug("client %u: read: %s", c->id, uv_strerror((int)n));
		conn_close(c);
		return;
	}
	c->rlen += (size_t)n;
	if (c->kind == CONN_DATA) {
		if (c->rlen == c->rcap) {
			/* Full: wait until the client's frames are served. */
			uv_read_stop(s);
			c->reading = false;
		}
		data_pump(c);
		return;
	}
	if (c->rlen == c->rcap && c->rcap >= 16 + CTRL_MAX_BLOB &&
	    !ctrl_frame(c->rbuf, c->rlen, &c->req)) {
		log_warnx_rl(&c->us->rl,
			     "control client %u: request larger than %zu bytes; closing it",
			     c->id, c->rcap);
		conn_close(c);
		return;
	}
	ctrl_try_request(c);
}

static void conn_read_start(struct conn *c)
{
	if (c->closing)
		return;
	if (c->kind == CONN_DATA) {
		data_pump(c);
		return;
	}
	/* Control: one request at a time, each one read whole. */
	if (c->reading || c->job_pending || c->wbuf)
		return;
	if (c->rlen) {
		ctrl_try_request(c);
		if (c->job_pending || c->closing || c->wbuf || !c->rlen)
			return;
	} else {
		conn_timer_idle(c);
	}
	if (uv_read_start(&c->h.stream, conn_alloc, conn_on_read) == 0)
		c->reading = true;
	else
		conn_close(c);
}

/* ---- accepting ---- */

static int conn_init_stream(struct usock *us, struct conn *c,
			    uv_handle_type type, bool ipc)
{
	if (type == UV_TCP)
		return uv_tcp_init(us->t->loop, &c->h.tcp);
	return uv_pipe_init(us->t->loop, &c->h.pipe, ipc);
}

/*
 * SET_DATAFD's descriptor must be what QEMU passes: a connected AF_UNIX
 * stream socket (a socketpair end), not a listening socket, not another
 * kind of file, and not a connection to one of this instance's own
 * sockets.
 */
static bool datafd_acceptable(struct usock *us, uv_stream_t *s)
{
	struct sockaddr_un peer;
	socklen_t plen = sizeof(peer);
	int fd, domain = 0, type = 0, listening = 1;
	socklen_t ol = sizeof(int);
	uv_os_fd_t ufd;

	if (uv_fileno((uv_handle_t *)s, &ufd))
		return false;
	fd = ufd;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &ol) ||
	    (ol = sizeof(int), getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ol)) ||
	    (ol = sizeof(int),
	     getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ol)))
		return false;
	if (domain != AF_UNIX || type != SOCK_STREAM || listening)
		return false;
	memset(&peer, 0, sizeof(peer));
	if (getpeername(fd, (struct sockaddr *)&peer, &plen))
		return false; /* not connected */
	if (plen > offsetof(struct sockaddr_un, sun_path) && peer.sun_path[0]) {
		if ((us->data.path[0] &&
		     strncmp(peer.sun_path, us->data.path,
			     sizeof(peer.sun_path)) == 0) ||
		    (us->ctrl.path[0] &&
		     strncmp(peer.sun_path, us->ctrl.path,
			     sizeof(peer.sun_path)) == 0))
			return false; /* a loop back into ourselves */
	}
	return true;
}

static bool over_cap(struct usock *us);

static struct conn *data_conn_adopt(struct conn *ctrl, uv_stream_t *from)
{
	uv_handle_type type = uv_pipe_pending_type((uv_pipe_t *)from);
	struct usock *us = ctrl->us;
	struct conn *c;

	if (type != UV_NAMED_PIPE || over_cap(us))
		return NULL;
	c = conn_new(us, CONN_DATA);
	if (!c)
		return NULL;
	if (conn_init_stream(us, c, type, false)) {
		conn_abort(c);
		return NULL;
	}
	c->h.handle.data = c;
	if (uv_accept(from, &c->h.stream)) {
		conn_close(c);
		return NULL;
	}
	if (!datafd_acceptable(us, &c->h.stream)) {
		log_warnx_rl(&us->rl, "SET_DATAFD: refused a descriptor that "
			     "is not a connected UNIX stream socket to a peer");
		conn_close(c);
		return NULL;
	}
	log_debug("data client %u: connected through SET_DATAFD", c->id);
	conn_get_peer(c);
	c->owner_id = ctrl->id;
	c->held = true;
	c->locality = peer_loc_initial(us, &ctrl->peer);
	conn_read_start(c);
	return c;
}

/*
 * --max-connections: one more client would pass the cap.  Refusals are
 * counted and reported at most once per period, with their number.
 */
static bool over_cap(struct usock *us)
{
	const struct config *cfg = us->t->cfg;
	uint64_t now = uv_now(us->t->loop);

	if (us->nconns < config_max_connections(cfg, false))
		return false;
	us->refused++;
	if (us->refused_logged_at == 0 ||
	    now - us->refused_logged_at >= REFUSAL_LOG_PERIOD_MS) {
		log_warnx("refused %u client connection%s: %u open, "
			  "--max-connections %u",
			  us->refused, us->refused == 1 ? "" : "s", us->nconns,
			  config_max_connections(cfg, false));
		us->refused = 0;
		us->refused_logged_at = now ? now : 1;
	}
	return true;
}

static void refused_closed(uv_handle_t *h)
{
	struct usock *us = h->data;

	free(h);
	us->open_handles--;
	usock_maybe_stopped(us);
}

/* Takes the connection off the backlog and closes it at once: the client
 * sees it end instead of waiting in the queue. */
static void refuse_connection(struct usock *us, uv_stream_t *server)
{
	uv_handle_t *h;
	int rc;

	if (server->type == UV_TCP) {
		h = malloc(sizeof(uv_tcp_t));
		rc = h ? uv_tcp_init(us->t->loop, (uv_tcp_t *)h) : -ENOMEM;
	} else {
		h = malloc(sizeof(uv_pipe_t));
		rc = h ? uv_pipe_init(us->t->loop, (uv_pipe_t *)h, 0) : -ENOMEM;
	}
	if (rc) {
		free(h);
		return;
	}
	h->data = us;
	us->open_handles++;
	(void)uv_accept(server, (uv_stream_t *)h);
	uv_close(h, refused_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct listener *l = server->data;
	struct usock *us = l->us;
	struct conn *c;

	if (status < 0) {
		log_warnx_rl(&us->rl, "accept: %s", uv_strerror(status));
		return;
	}
	if (over_cap(us)) {
		refuse_connection(us, server);
		return;
	}
	c = conn_new(us, l->kind);
	if (!c)
		return;
	/* The control channel receives the data fd of SET_DATAFD. */
	if (conn_init_stream(us, c, server->type,
			     l->kind == CONN_CTRL && server->type == UV_NAMED_PIPE)) {
		conn_abort(c);
		return;
	}
	c->h.handle.data = c;
	if (uv_accept(server, &c->h.stream)) {
		conn_close(c);
		return;
	}
	if (c->h.handle.type == UV_TCP)
		uv_tcp_nodelay(&c->h.tcp, 1);
	conn_get_peer(c);
	if (c->kind == CONN_DATA)
		c->locality = peer_loc_initial(us, &c->peer);
	log_debug("%s client %u: connected",
		  l->kind == CONN_DATA ? "data" : "control", c->id);
	conn_read_start(c);
}

/* Removes a stale socket file, but never a live socket or another file. */
/*
 * The socket files this process has bound and not yet closed.  Sockets
 * listen before the state loads (instance.c), so a start refused after
 * that exits with them bound: the exit removes them, and a client is
 * not left a path that nothing serves.
 */
static struct listener *bound[2];

static void unlink_bound(void)
{
	for (size_t i = 0; i < 2; i++)
		if (bound[i] && bound[i]->path[0])
			unlink(bound[i]->path);
}

static void bound_add(struct listener *l)
{
	static bool registered;

	if (!registered && atexit(unlink_bound) == 0)
		registered = true;
	for (size_t i = 0; i < 2; i++)
		if (!bound[i]) {
			bound[i] = l;
			return;
		}
}

static void bound_drop(struct listener *l)
{
	for (size_t i = 0; i < 2; i++)
		if (bound[i] == l)
			bound[i] = NULL;
}

static int prepare_socket_path(const char *path)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (rc == 0)
		return -EADDRINUSE;
	return unlink(path) < 0 ? -errno : 0;
}

static int listen_unix(struct usock *us, struct listener *l, const char *path)
{
	const struct config *cfg = us->t->cfg;
	mode_t old;
	int rc;

	rc = prepare_socket_path(path);
	if (rc) {
		log_warnx("socket %s: %s", path,
			  rc == -EADDRINUSE ? "another server is listening on it"
			  : rc == -EEXIST   ? "exists and is not a socket"
					    : strerror(-rc));
		return rc;
	}
	uv_pipe_init(us->t->loop, &l->h.pipe, 0);
	l->h.handle.data = l;
	us->open_handles++;
	l->active = true;
	/* Created 0600 from the start; no window with a wider mode. */
	old = umask(0177);
	rc = uv_pipe_bind(&l->h.pipe, path);
	umask(old);
	if (rc)
		return rc;
	/* Ours from here on: removed at exit if the handle never closes
	 * (a refused start); a close removes it itself (libuv unlinks a
	 * bound path before it closes the descriptor). */
	snprintf(l->path, sizeof(l->path), "%s", path);
	bound_add(l);
	if (cfg->socket_group[0]) {
		struct group *g = getgrnam(cfg->socket_group);
		if (!g) {
			log_warnx("socket group %s: no such group", cfg->socket_group);
			return -EINVAL;
		}
		if (chown(path, (uid_t)-1, g->gr_gid) < 0)
			return -errno;
	}
	if (cfg->socket_mode != 0600 && chmod(path, cfg->socket_mode) < 0)
		return -errno;
	return uv_listen(&l->h.stream, 64,
			 on_connection);
}

static int listen_tcp(struct usock *us, struct listener *l, const char *host,
		      int port)
{
	struct sockaddr_storage ss;
	int rc;

	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) &&
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss))
		return -EINVAL;
	uv_tcp_init(us->t->loop, &l->h.tcp);
	l->h.handle.data = l;
	us->open_handles++;
	l->active = true;
	rc = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&ss, 0);
	if (rc)
		return rc;
	return uv_listen(&l->h.stream, 64, on_connection);
}

static void idle_closed(uv_handle_t *h)
{
	struct usock *us = h->data;

	close(us->idle_fd);
	us->idle_fd = -1;
	us->open_handles--;
	usock_maybe_stopped(us);
}

/* The idle sweep's timerfd, when idle clients are closed at all. */
static int idle_start(struct usock *us)
{
	int fd, rc;

	if (us->t->cfg->idle_timeout_ms <= 0)
		return 0;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		log_warn("idle timer");
		return rc;
	}
	rc = uv_poll_init(us->t->loop, &us->idle_poll, fd);
	if (rc) {
		close(fd);
		log_warnx("idle timer: %s", uv_strerror(rc));
		return rc;
	}
	us->idle_fd = fd;
	us->idle_poll.data = us;
	us->open_handles++;
	rc = uv_poll_start(&us->idle_poll, UV_READABLE, idle_sweep);
	if (rc) {
		log_warnx("idle timer: %s", uv_strerror(rc));
		uv_close((uv_handle_t *)&us->idle_poll, idle_closed);
	}
	return rc;
}

static int usock_start(struct transport *t)
{
	const struct transport_spec *ts = &t->cfg->transport;
	struct usock *us = calloc(1, sizeof(*us));
	char ctrlpath[120];
	int rc;

	if (!us)
		return -ENOMEM;
	t->priv = us;
	us->t = t;
	list_init(&us->conns);
	us->data.kind = CONN_DATA;
	us->ctrl.kind = CONN_CTRL;
	us->data.us = us->ctrl.us = us;
	us->idle_fd = -1;
	rc = idle_start(us);
	if (rc)
		return rc;
	if (ts->kind == TRANSPORT_UNIX) {
		snprintf(ctrlpath, sizeof(ctrlpath), "%s.ctrl", ts->path);
		rc = listen_unix(us, &us->ctrl, ctrlpath);
		if (!rc)
			rc = listen_unix(us, &us->data, ts->path);
		/* Before the state is loaded, so before the log lines name
		 * the vTPM's UUID: the instance's "ready" line says where it
		 * serves. */
		if (!rc)
			log_debug("listening on %s (data) and %s (control)",
				  ts->path, ctrlpath);
	} else if (ts->kind == TRANSPORT_TCP) {
		rc = listen_tcp(us, &us->data, ts->host, ts->port);
		if (!rc)
			rc = listen_tcp(us, &us->ctrl, ts->host, ts->port + 1);
		if (!rc)
			log_debug("listening on %s port %u (data) and %u (control)",
				  ts->host, ts->port, ts->port + 1);
	} else {
		rc = -EINVAL;
	}
	return rc;
}

static void listener_closed(uv_handle_t *h)
{
	struct listener *l = h->data;
	struct usock *us = l->us;

	us->open_handles--;
	usock_maybe_stopped(us);
}

static void usock_stop(struct transport *t, void (*done)(struct transport *t))
{
	struct usock *us = t->priv;
	struct list_node *n, *next;

	us->stopped = done;
	if (us->idle_fd >= 0 && !uv_is_closing((uv_handle_t *)&us->idle_poll))
		uv_close((uv_handle_t *)&us->idle_poll, idle_closed);
	/* uv_close unlinks a bound path before it closes the descriptor;
	 * nothing here unlinks it again (another server may have bound it
	 * since), not even at exit. */
	if (us->data.active && !uv_is_closing(&us->data.h.handle)) {
		bound_drop(&us->data);
		uv_close(&us->data.h.handle, listener_closed);
	}
	if (us->ctrl.active && !uv_is_closing(&us->ctrl.h.handle)) {
		bound_drop(&us->ctrl);
		uv_close(&us->ctrl.h.handle, listener_closed);
	}
	list_for_each_safe(n, next, &us->conns) {
		struct conn *c = list_item(n, struct conn, node);

		/* The running command finishes and its client still gets
		 * the answer; idle clients are cut at once. */
		if (c->job_pending || c->wbuf) {
			c->close_after_write = true;
			uv_read_stop(&c->h.stream);
			c->reading = false;
		} else {
			conn_close(c);
		}
	}
	usock_maybe_stopped(us);
}

const struct transport_ops unix_socket_transport_ops = {
	.name = "unix-socket",
	.start = usock_start,
	.stop = usock_stop,
};
