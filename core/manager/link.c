/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager protocol on an instance's link (link.h): LOADHASHKEY hands
 * the vTPM's key over, SAVEHASHKEY records the new state's hash (durable
 * before the answer), GET_QUOTE has the physical TPM quote for it.  The
 * other way, PCR_READ asks the instance for its PCR values (the PCR
 * source of deep quotes).  The connection is abstract; the socketpair of
 * a local instance is here.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/bytes.h"
#include "lib/log.h"
#include "manager/ekca.h"
#include "manager/link.h"
#include "manager/manager.h"
#include "manager/quote.h"
#include "proto/mgrproto.h"

static struct log_ratelimit link_rl;

/* Ends the PCR read in flight, if any (its waiter may start another). */
static void pcr_finish(struct vtpm_entry *e, int rc,
		       const struct mgr_pcr_values *v, const char *err)
{
	mgr_pcr_done done = e->link.pcr_done;
	void *arg = e->link.pcr_arg;

	if (!done)
		return;
	e->link.pcr_done = NULL;
	e->link.pcr_arg = NULL;
	e->link.pcr_mailbox = e->link.pcr_fetched = false;
	done(arg, rc, v, err);
}

static void pcr_values(struct vtpm_entry *e,
		       const struct mgr_pcr_read_rsp *r);

void mgr_link_reset(struct vtpm_entry *e)
{
	char err[160];

	/* A commit or quote in flight answers nobody. */
	e->link.epoch++;
	e->link.busy = false;
	snprintf(err, sizeof(err), "vTPM %s: its link closed before it "
		 "answered the PCR read", e->rec.uuid_str);
	pcr_finish(e, -ECONNRESET, NULL, err);
}

void mgr_link_attach(struct vtpm_entry *e, const struct mgr_conn_ops *ops,
		     void *conn)
{
	mgr_link_reset(e);
	e->link.ops = ops;
	e->link.conn = conn;
}

void mgr_link_close(struct vtpm_entry *e)
{
	const struct mgr_conn_ops *ops = e->link.ops;
	void *conn = e->link.conn;

	mgr_link_reset(e);
	e->link.ops = NULL;
	e->link.conn = NULL;
	if (ops)
		ops->close(conn);
}

static void link_send(struct vtpm_entry *e, const uint8_t *buf, size_t len)
{
	e->link.busy = false;
	if (e->link.ops)
		e->link.ops->send(e->link.conn, buf, len);
}

static void link_reply(struct vtpm_entry *e, struct mgr_rsp *rsp)
{
	uint8_t buf[MGR_MAX_FRAME];
	size_t len;

	if (mgrproto_encode_rsp(rsp, buf, &len) == 0)
		link_send(e, buf, len);
	else
		e->link.busy = false;
	OPENSSL_cleanse(buf, sizeof(buf));
	mgrproto_rsp_wipe(rsp);
}

/* An answer for a link: dropped if the connection it was for is gone. */
struct link_ticket {
	struct vtpm_entry *e;
	unsigned int epoch;
};

static struct link_ticket *ticket(struct vtpm_entry *e)
{
	struct link_ticket *t = malloc(sizeof(*t));

	if (!t)
		fatalx("out of memory");
	t->e = e;
	t->epoch = e->link.epoch;
	return t;
}

static bool ticket_valid(const struct link_ticket *t)
{
	return t->epoch == t->e->link.epoch && t->e->link.ops;
}

static void save_committed(struct manager *m, int rc, void *arg)
{
	struct link_ticket *t = arg;
	struct mgr_rsp rsp = { .type = MGR_MSG_SAVEHASHKEY };

	(void)m;
	rsp.status = rc ? MGR_FAIL : MGR_SUCCESS;
	if (ticket_valid(t))
		link_reply(t->e, &rsp);
	free(t);
}

static void quoted(void *arg, int rc, const struct mgr_quote *q,
		   const char *err)
{
	struct link_ticket *t = arg;
	struct mgr_rsp rsp = { .type = MGR_MSG_GET_QUOTE };

	if (rc || q->attest_len > MGR_QUOTE_BLOB_MAX ||
	    q->sig_len > MGR_QUOTE_BLOB_MAX) {
		log_warnx("vTPM %s: quote failed: %s", t->e->rec.uuid_str, err);
		rsp.status = MGR_FAIL;
	} else {
		rsp.status = MGR_SUCCESS;
		rsp.u.quote.attest_len = (uint16_t)q->attest_len;
		memcpy(rsp.u.quote.attest, q->attest, q->attest_len);
		rsp.u.quote.sig_len = (uint16_t)q->sig_len;
		memcpy(rsp.u.quote.sig, q->sig, q->sig_len);
	}
	if (ticket_valid(t))
		link_reply(t->e, &rsp);
	free(t);
}

static void ek_certified(void *arg, uint32_t status, const uint8_t *der,
			 size_t len)
{
	struct link_ticket *t = arg;
	struct mgr_rsp rsp = { .type = MGR_MSG_EK_CERTIFY };

	rsp.status = status;
	if (status == MGR_SUCCESS) {
		rsp.u.ek.cert_len = (uint16_t)len;
		memcpy(rsp.u.ek.cert, der, len);
	}
	if (ticket_valid(t))
		link_reply(t->e, &rsp);
	free(t);
}

void mgr_link_request(struct vtpm_entry *e, const uint8_t *frame, size_t len)
{
	struct manager *m = e->m;
	struct keystore_rec *rec = keystore_find(&m->ks, e->rec.uuid);
	struct mgr_req req;
	struct mgr_rsp rsp;
	uint8_t qd[32];
	int rc;

	e->link.busy = true;
	memset(&rsp, 0, sizeof(rsp));
	rc = mgrproto_decode_req(frame, len, &req);
	if (rc) {
		uint8_t out[MGR_HDR_LEN];

		log_warnx_rl(&link_rl, "vTPM %s: bad request: %s",
			     e->rec.uuid_str, mgrproto_strerror(rc));
		mgrproto_encode_status(frame, len, mgrproto_err_status(rc), out);
		link_send(e, out, sizeof(out));
		return;
	}
	rsp.type = req.type;
	if (!rec || (rec->flags & KS_REC_TOMBSTONE) ||
	    (e->migrating && !e->leaving)) {
		rsp.status = MGR_NOT_FOUND;
		link_reply(e, &rsp);
		return;
	}
	switch (req.type) {
	case MGR_MSG_LOADHASHKEY:
		rsp.status = MGR_SUCCESS;
		rsp.u.load.generation = rec->generation;
		memcpy(rsp.u.load.state_hash, rec->state_hash, 32);
		memcpy(rsp.u.load.state_key, rec->state_key, 32);
		rsp.u.load.flags = (rec->flags & KS_REC_NOSTATE)
					   ? MGR_LOAD_FLAG_NOSTATE
					   : 0;
		if ((rec->flags & KS_REC_NOSTATE) && mgr_ekca_wanted(e))
			rsp.u.load.flags |= MGR_LOAD_FLAG_MANUFACTURE;
		/* Every commit bound to the counter (--counter-interval 0):
		 * the answer waits for it. */
		if (m->cfg->counter_interval_s > 0)
			rsp.u.load.flags |= MGR_LOAD_FLAG_TRAIL;
		log_info("vTPM %s: key handed to its instance (generation %llu)",
			 e->rec.uuid_str, (unsigned long long)rec->generation);
		link_reply(e, &rsp);
		return;
	case MGR_MSG_SAVEHASHKEY:
		if (!(rec->flags & KS_REC_NOSTATE) &&
		    req.u.save.generation <= rec->generation) {
			log_warnx("vTPM %s: SAVEHASHKEY of generation %llu, not "
				  "above the recorded %llu: refused",
				  e->rec.uuid_str,
				  (unsigned long long)req.u.save.generation,
				  (unsigned long long)rec->generation);
			rsp.status = MGR_ROLLBACK;
			link_reply(e, &rsp);
			return;
		}
		rec->generation = req.u.save.generation;
		memcpy(rec->state_hash, req.u.save.state_hash, 32);
		rec->flags &= ~KS_REC_NOSTATE;
		mgr_commit(m, false, save_committed, ticket(e));
		return;
	case MGR_MSG_PCR_FETCH:
		/* What the manager wants read, once; 0: nothing. */
		rsp.status = MGR_SUCCESS;
		if (e->link.pcr_done && e->link.pcr_mailbox &&
		    !e->link.pcr_fetched) {
			rsp.u.pcr_fetch.pcr_mask = e->link.pcr_mask;
			e->link.pcr_fetched = true;
		}
		link_reply(e, &rsp);
		return;
	case MGR_MSG_PCR_REPORT:
		if (!e->link.pcr_done || !e->link.pcr_fetched) {
			rsp.status = MGR_FAIL;   /* nothing was asked */
			link_reply(e, &rsp);
			return;
		}
		rsp.status = MGR_SUCCESS;
		link_reply(e, &rsp);
		pcr_values(e, &req.u.pcr_report);
		return;
	case MGR_MSG_GET_QUOTE:
		mgrproto_deepquote_qd(e->rec.uuid, req.u.quote.pcr_mask,
				      req.u.quote.pcr_digest, req.u.quote.nonce,
				      req.u.quote.nonce_len, qd);
		mgr_quote(m, qd, quoted, ticket(e));
		return;
	case MGR_MSG_EK_CERTIFY:
		mgr_ekca_certify(e, &req.u.ek, ek_certified, ticket(e));
		return;
	case MGR_MSG_MANUFACTURED:
		rsp.status = mgr_ekca_manufactured(e, &req.u.made);
		link_reply(e, &rsp);
		return;
	case MGR_MSG_XEN_PEER:
	case MGR_MSG_XEN_PEER_STATE:
		/* Only a ring link knows the instance's domain. */
		if (e->link.ops && e->link.ops->xen_peer) {
			e->link.ops->xen_peer(e->link.conn, &req, &rsp);
		} else {
			log_warnx_rl(&link_rl, "vTPM %s: %s on a link without a "
				     "Xen domain: refused", e->rec.uuid_str,
				     mgrproto_msg_name(req.type));
			rsp.status = MGR_FORBIDDEN;
		}
		link_reply(e, &rsp);
		return;
	default:
		/* Management goes through the control socket, not a vTPM. */
		rsp.status = MGR_FORBIDDEN;
		link_reply(e, &rsp);
		return;
	}
}

/* ---- PCR_READ: the manager asks the instance ---- */

/* The values an instance reported, checked against what was asked. */
static void pcr_values(struct vtpm_entry *e,
		       const struct mgr_pcr_read_rsp *r)
{
	struct mgr_pcr_values v;
	char err[200];

	if (r->pcr_mask != e->link.pcr_mask) {
		snprintf(err, sizeof(err), "vTPM %s answered PCRs 0x%06x, "
			 "asked 0x%06x", e->rec.uuid_str, r->pcr_mask,
			 e->link.pcr_mask);
		log_warnx("%s", err);
		pcr_finish(e, -EPROTO, NULL, err);
		return;
	}
	memset(&v, 0, sizeof(v));
	v.mask = r->pcr_mask;
	v.n = r->count;
	memcpy(v.v, r->digest, 32 * (size_t)v.n);
	pcr_finish(e, 0, &v, "");
}

void mgr_link_answer(struct vtpm_entry *e, const uint8_t *frame, size_t len)
{
	static struct mgr_rsp rsp; /* loop thread only; 4 KiB-sized */
	char err[200];
	int rc;

	if (!e->link.pcr_done) {
		log_warnx_rl(&link_rl, "vTPM %s: an answer nobody asked for "
			     "on its link: ignored", e->rec.uuid_str);
		return;
	}
	rc = mgrproto_decode_rsp(MGR_MSG_PCR_READ, frame, len, &rsp);
	if (rc) {
		snprintf(err, sizeof(err), "vTPM %s: bad PCR_READ answer: %s",
			 e->rec.uuid_str, mgrproto_strerror(rc));
		log_warnx("%s", err);
		pcr_finish(e, -EPROTO, NULL, err);
		return;
	}
	if (rsp.status != MGR_SUCCESS) {
		snprintf(err, sizeof(err), "vTPM %s could not read its PCRs: %s",
			 e->rec.uuid_str, mgrproto_status_str(rsp.status));
		pcr_finish(e, -EIO, NULL, err);
		return;
	}
	pcr_values(e, &rsp.u.pcr_read);
}

static int link_pcr_read(struct manager *m, struct vtpm_entry *e,
			 uint32_t mask, mgr_pcr_done done, void *arg, char *err,
			 size_t errlen)
{
	struct mgr_req req = { .type = MGR_MSG_PCR_READ };
	uint8_t buf[MGR_MAX_FRAME];
	size_t len;
	int rc;

	(void)m;
	if (!e->link.ops) {
		snprintf(err, errlen, "vTPM %s has no manager link (not "
			 "running, or not connected yet)", e->rec.uuid_str);
		return -ENOTCONN;
	}
	if (e->link.pcr_done) {
		snprintf(err, errlen, "vTPM %s has not answered an earlier "
			 "PCR read yet", e->rec.uuid_str);
		return -EBUSY;
	}
	if (!e->link.ops->request) {
		/* The ring: the instance polls with PCR_FETCH. */
		e->link.pcr_done = done;
		e->link.pcr_arg = arg;
		e->link.pcr_mask = mask;
		e->link.pcr_mailbox = true;
		e->link.pcr_fetched = false;
		return 0;
	}
	req.u.pcr_read.pcr_mask = mask;
	rc = mgrproto_encode_req(&req, buf, &len);
	if (rc) {
		snprintf(err, errlen, "PCR_READ: %s", mgrproto_strerror(rc));
		return -EINVAL;
	}
	rc = e->link.ops->request(e->link.conn, buf, len);
	if (rc) {
		snprintf(err, errlen, "vTPM %s: sending the PCR read: %s",
			 e->rec.uuid_str, strerror(-rc));
		return rc;
	}
	e->link.pcr_done = done;
	e->link.pcr_arg = arg;
	e->link.pcr_mask = mask;
	return 0;
}

/* A late answer is then one nobody asked for, and ignored; a new read
 * may be sent meanwhile (an old answer of the same PCRs taken for it is
 * still the vTPM's own values, from its own link). */
static void link_pcr_cancel(struct manager *m, struct vtpm_entry *e,
			    void *arg)
{
	(void)m;
	if (!e->link.pcr_done || e->link.pcr_arg != arg)
		return;
	e->link.pcr_done = NULL;
	e->link.pcr_arg = NULL;
	e->link.pcr_mailbox = e->link.pcr_fetched = false;
}

const struct mgr_pcr_source mgr_pcr_source_link = {
	.read = link_pcr_read,
	.cancel = link_pcr_cancel,
};

/* ---- a local instance's socketpair as the connection ---- */

struct sock_conn {
	uv_pipe_t pipe;
	struct vtpm_entry *e;     /* NULL once detached */
	struct manager *m;
	uint8_t rbuf[4096];
	size_t rlen;
};

static void sock_read_start(struct sock_conn *s);

static void sock_after_write(uv_write_t *w, int status)
{
	(void)status;
	free(w->data);
	free(w);
}

static int sock_write(struct sock_conn *s, const uint8_t *buf, size_t len);

static void sock_send(void *conn, const uint8_t *buf, size_t len)
{
	struct sock_conn *s = conn;

	(void)sock_write(s, buf, len);
}

static void sock_closed(uv_handle_t *h)
{
	struct sock_conn *s = h->data;
	struct manager *m = s->m;

	m->links_open--;
	free(s);
	mgr_maybe_exit(m);
}

static void sock_close(void *conn)
{
	struct sock_conn *s = conn;

	s->e = NULL;
	if (!uv_is_closing((uv_handle_t *)&s->pipe))
		uv_close((uv_handle_t *)&s->pipe, sock_closed);
}

static int sock_write(struct sock_conn *s, const uint8_t *buf, size_t len)
{
	uv_write_t *w = malloc(sizeof(*w));
	uint8_t *copy = malloc(len);
	uv_buf_t b;
	int rc;

	if (!w || !copy) {
		free(w);
		free(copy);
		return -ENOMEM;
	}
	memcpy(copy, buf, len);
	w->data = copy;
	b = uv_buf_init((char *)copy, (unsigned int)len);
	rc = uv_write(w, (uv_stream_t *)&s->pipe, &b, 1, sock_after_write);
	if (rc < 0) {
		free(copy);
		free(w);
	}
	return rc;
}

static int sock_request(void *conn, const uint8_t *buf, size_t len)
{
	struct sock_conn *s = conn;

	if (!s->e || uv_is_closing((uv_handle_t *)&s->pipe))
		return -ENOTCONN;
	return sock_write(s, buf, len);
}

static const struct mgr_conn_ops sock_ops = {
	.send = sock_send,
	.close = sock_close,
	.request = sock_request,
};

static void sock_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct sock_conn *s = h->data;

	(void)hint;
	*buf = uv_buf_init((char *)s->rbuf + s->rlen,
			   (unsigned int)(sizeof(s->rbuf) - s->rlen));
}

/* A broken peer: what it has in flight answers nobody, and it is read no
 * more.  The instance cannot go on without its link: it stops, and the
 * supervisor restarts it. */
static void sock_broken(struct sock_conn *s, const char *why)
{
	log_warnx_rl(&link_rl, "vTPM %s: %s; closing its link",
		     s->e->rec.uuid_str, why);
	uv_read_stop((uv_stream_t *)&s->pipe);
	mgr_link_reset(s->e);
}

/*
 * The link is read all the time: the instance's requests (one at a time)
 * and its answers to the manager's PCR_READ (MRSP) may interleave.
 */
static void sock_on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct sock_conn *s = st->data;
	uint8_t frame[MGR_MAX_FRAME];
	int flen;

	(void)buf;
	if (n == 0)
		return;
	if (n < 0 || !s->e) {
		uv_read_stop(st);
		/* The process exit tells the rest; a PCR read cannot wait
		 * for it. */
		if (s->e) {
			char err[160];

			snprintf(err, sizeof(err), "vTPM %s hung up its link "
				 "before it answered the PCR read",
				 s->e->rec.uuid_str);
			pcr_finish(s->e, -ECONNRESET, NULL, err);
		}
		return;
	}
	s->rlen += (size_t)n;
	while (s->e && (flen = mgrproto_frame_len(s->rbuf, s->rlen)) != 0) {
		if (flen < 0) {
			sock_broken(s, "malformed link traffic");
			return;
		}
		memcpy(frame, s->rbuf, (size_t)flen);
		s->rlen -= (size_t)flen;
		memmove(s->rbuf, s->rbuf + flen, s->rlen);
		if (be16_get(frame) == MGR_TAG_MRSP) {
			mgr_link_answer(s->e, frame, (size_t)flen);
		} else if (s->e->link.busy) {
			/* One request at a time. */
			sock_broken(s, "a request before the last was answered");
			return;
		} else {
			mgr_link_request(s->e, frame, (size_t)flen);
		}
	}
	OPENSSL_cleanse(frame, sizeof(frame));
}

static void sock_read_start(struct sock_conn *s)
{
	if (s->e && !uv_is_closing((uv_handle_t *)&s->pipe))
		uv_read_start((uv_stream_t *)&s->pipe, sock_alloc, sock_on_read);
}

int mgr_link_open_socket(struct vtpm_entry *e, int fd)
{
	struct sock_conn *s = calloc(1, sizeof(*s));
	int rc;

	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	s->e = e;
	s->m = e->m;
	uv_pipe_init(e->m->loop, &s->pipe, 0);
	s->pipe.data = s;
	e->m->links_open++;
	rc = uv_pipe_open(&s->pipe, fd);
	if (rc) {
		close(fd);
		uv_close((uv_handle_t *)&s->pipe, sock_closed);
		return rc;
	}
	mgr_link_attach(e, &sock_ops, s);
	sock_read_start(s);
	return 0;
}
