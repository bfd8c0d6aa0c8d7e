/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Online migration (online.h, docs/migration.md).
 *
 * A connection (struct olconn) carries one exchange of four frames
 * (proto/migwire.h) with a deadline for each frame awaited.  The source's
 * side is struct olout (one per attempt: the MIGRATE of vtpmctl migrate,
 * then a COMMIT, retried with backoff until acknowledged, or an ABORT),
 * the destination's struct olin (one per incoming connection).  Both
 * only ask: the TPM queue certifies, quotes and decrypts (migrate.c,
 * quote.c), the store queue reads and writes state files, the commit
 * path makes the key store durable; nothing blocks the loop.
 *
 * The source's states (keystore_tx): OUT_PREPARING (record LEAVING: no
 * start here; a restart or any failure aborts), then, at the reply
 * PREPARED, the commit point: one forced commit of the tombstone with
 * OUT_COMMITTED; COMMIT is then sent until the destination answers DONE
 * (OUT_DONE).  The destination: IN_PENDING (record PENDING: no start)
 * from its forced commit before it answers PREPARED, IN_DONE at COMMIT.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hex.h"
#include "lib/list.h"
#include "lib/log.h"
#include "manager/control.h"
#include "manager/manager.h"
#include "manager/migrate.h"
#include "manager/online.h"
#include "manager/quote.h"
#include "proto/migkey.h"
#include "proto/migwire.h"
#include "proto/quote.h"

#define OL_FRAME_MS 30000        /* a frame awaited */
#define OL_REQUEST_MS 60000      /* the destination awaits the source's
				  * stop, read and quote */
#define OL_RETRY_MIN_MS 200
#define OL_RETRY_MAX_MS 10000
#define OL_ABORT_TRIES 5
#define OL_READ_CHUNK 65536
#define OL_MAX_INCOMING 16       /* connections from sources at once */

struct online {
	uv_tcp_t listener;
	bool listening;
	bool stopping;
	struct list_node outs;   /* struct olout: every source attempt */
	unsigned int incoming;   /* struct olin alive */
	/* The migration key's certification, made once (TPM2_Certify):
	 * what every CHALLENGE carries.  An unauthenticated peer then costs
	 * the TPM nothing before its REQUEST. */
	uint8_t *cert;           /* pub, attest, sig back to back */
	size_t pub_len, attest_len, sig_len;
	/* Moves aborted at start-up (mgr_online_recover): their ABORT is
	 * sent once the loop runs. */
	struct keystore_tx *aborted;
	size_t naborted;
};

static struct online *ol_of(struct manager *m);

/* ================= a connection ================= */

struct olconn;
struct olconn_ops {
	void (*connected)(struct olconn *c);
	/* One whole frame, malloc'd: the callee's. */
	void (*frame)(struct olconn *c, uint8_t *buf, size_t len);
	void (*fail)(struct olconn *c, const char *why);
};

struct olconn {
	struct manager *m;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t creq;
	int open;                    /* handles not yet closed */
	bool dead;
	bool close_after_write;
	const struct olconn_ops *ops;
	void *owner;
	uint8_t *rx;
	size_t rxlen, rxcap;
	char peer[96];
	/* the transcript: HELLO and CHALLENGE as sent */
	uint8_t *hello, *chal;
	size_t hello_len, chal_len;
	uint8_t T[32];
};

struct olwrite {
	uv_write_t req;
	struct olconn *c;
	uint8_t *buf;
};

static void conn_closed(uv_handle_t *h)
{
	struct olconn *c = h->data;

	if (--c->open > 0)
		return;
	free(c->rx);
	free(c->hello);
	free(c->chal);
	free(c);
}

static void conn_close(struct olconn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	c->owner = NULL;
	uv_close((uv_handle_t *)&c->timer, conn_closed);
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void conn_fail(struct olconn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void conn_fail(struct olconn *c, const char *fmt, ...)
{
	char why[300];
	va_list ap;

	if (c->dead)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (c->owner)
		c->ops->fail(c, why);
	conn_close(c);
}

static void on_deadline(uv_timer_t *t)
{
	struct olconn *c = t->data;

	conn_fail(c, "no answer from %s within the deadline", c->peer);
}

static void conn_wait(struct olconn *c, unsigned int ms)
{
	if (!c->dead)
		uv_timer_start(&c->timer, on_deadline, ms, 0);
}

static struct olconn *conn_new(struct manager *m, const struct olconn_ops *ops,
			       void *owner)
{
	struct olconn *c = calloc(1, sizeof(*c));

	if (!c)
		fatalx("out of memory");
	c->m = m;
	c->ops = ops;
	c->owner = owner;
	uv_tcp_init(m->loop, &c->tcp);
	uv_timer_init(m->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->open = 2;
	return c;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)h;
	(void)hint;
	b->base = malloc(OL_READ_CHUNK);
	b->len = b->base ? OL_READ_CHUNK : 0;
}

/* Whole frames out of the buffer, one at a time. */
static void conn_frames(struct olconn *c)
{
	size_t total;
	uint8_t *f;
	int rc;

	while (!c->dead) {
		rc = migwire_frame_len(c->rx, c->rxlen, &total);
		if (rc == -EAGAIN || (rc == 0 && c->rxlen < total))
			return;
		if (rc) {
			conn_fail(c, "%s sent a malformed frame header",
				  c->peer);
			return;
		}
		f = malloc(total);
		if (!f)
			fatalx("out of memory");
		memcpy(f, c->rx, total);
		memmove(c->rx, c->rx + total, c->rxlen - total);
		c->rxlen -= total;
		uv_timer_stop(&c->timer);
		c->ops->frame(c, f, total);
	}
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct olconn *c = s->data;
	size_t need;

	if (n < 0) {
		free(b->base);
		conn_fail(c, "connection with %s: %s", c->peer,
			  n == UV_EOF ? "closed by the peer" : uv_strerror((int)n));
		return;
	}
	if (c->dead || n == 0) {
		free(b->base);
		return;
	}
	need = c->rxlen + (size_t)n;
	if (need > MIGWIRE_HDR_LEN + MIGWIRE_MAX_BODY + OL_READ_CHUNK) {
		free(b->base);
		conn_fail(c, "%s sent more than a frame may hold", c->peer);
		return;
	}
	if (need > c->rxcap) {
		size_t cap = c->rxcap ? c->rxcap : OL_READ_CHUNK;
		uint8_t *p;

		while (cap < need)
			cap *= 2;
		p = realloc(c->rx, cap);
		if (!p)
			fatalx("out of memory");
		c->rx = p;
		c->rxcap = cap;
	}
	memcpy(c->rx + c->rxlen, b->base, (size_t)n);
	c->rxlen = need;
	free(b->base);
	conn_frames(c);
}

static void on_written(uv_write_t *req, int status)
{
	struct olwrite *w = req->data;
	struct olconn *c = w->c;

	free(w->buf);
	free(w);
	if (status < 0)
		conn_fail(c, "cannot send to %s: %s", c->peer,
			  uv_strerror(status));
	else if (c->close_after_write)
		conn_close(c);
}

/* Sends buf (the connection's from now on; a copy is kept for the
 * transcript by the caller when needed). */
static void conn_send(struct olconn *c, uint8_t *buf, size_t len)
{
	struct olwrite *w;
	uv_buf_t b = uv_buf_init((char *)buf, (unsigned int)len);
	int rc;

	if (c->dead) {
		free(buf);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		fatalx("out of memory");
	w->c = c;
	w->buf = buf;
	w->req.data = w;
	rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
	if (rc) {
		free(buf);
		free(w);
		conn_fail(c, "cannot send to %s: %s", c->peer, uv_strerror(rc));
	}
}

static int conn_start_reading(struct olconn *c)
{
	return uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* Encodes and sends m; a copy of the frame into *keep when keep. */
static int send_msg(struct olconn *c, const struct migwire_msg *msg,
		    uint8_t **keep, size_t *keep_len)
{
	uint8_t *buf;
	size_t len;
	int rc = migwire_encode(msg, &buf, &len);

	if (rc)
		return rc;
	if (keep) {
		*keep = malloc(len);
		if (!*keep)
			fatalx("out of memory");
		memcpy(*keep, buf, len);
		*keep_len = len;
	}
	conn_send(c, buf, len);
	return 0;
}

static void transcript(struct olconn *c)
{
	migwire_transcript(c->hello, c->hello_len, c->chal, c->chal_len, c->T);
}

/* ================= pins ================= */

/* Whether the AK spki is one of the migrate-peer pins (each the hex of
 * a DER SPKI or of its SHA-256). */
static bool peer_pinned(const struct manager *m, const uint8_t *spki,
			size_t len)
{
	const struct config *cfg = m->cfg;
	uint8_t sha[32], pin[CONFIG_PEER_HEX_MAX / 2], psha[32];
	size_t n;

	SHA256(spki, len, sha);
	for (unsigned int i = 0; i < cfg->n_migrate_peers; i++) {
		n = strlen(cfg->migrate_peer[i]) / 2;
		if (hex_decode(cfg->migrate_peer[i], 2 * n, pin, n))
			continue;
		if (n == 32) {
			memcpy(psha, pin, 32);
		} else {
			SHA256(pin, n, psha);
		}
		if (CRYPTO_memcmp(psha, sha, 32) == 0)
			return true;
	}
	return false;
}

static void sha_hex(const uint8_t sha[32], char out[65])
{
	hex_encode(sha, 32, out);
}

/* ================= the destination ================= */

struct olin {
	struct manager *m;
	struct olconn *c;
	int refs;                /* callbacks outstanding */
	uint8_t op, flags;
	uint8_t uuid[16], txid[16];
	char uuid_str[UUID_STR_LEN];
	uint8_t src_ak[32];
	bool got_request;        /* one REQUEST per connection */
	uint8_t status;
	char msg[MIGWIRE_MSG_MAX + 1];
};

static void in_put(struct olin *in)
{
	if (--in->refs > 0)
		return;
	ol_of(in->m)->incoming--;
	free(in);
}

static void in_fail(struct olconn *c, const char *why)
{
	struct olin *in = c->owner;

	log_warnx("online migration from %s: %s", c->peer, why);
	in->c = NULL;
	in_put(in);
}

static void in_quoted(void *arg, int rc, const struct mgr_quote *q,
		      const char *err)
{
	struct olin *in = arg;
	struct migwire_msg r = { .type = MIGWIRE_REPLY };
	struct olconn *c = in->c;

	if (!c || c->dead) {
		in_put(in);
		return;
	}
	/* The connection's reference ends here: it closes after the send. */
	in->c = NULL;
	c->owner = NULL;
	in_put(in);
	if (rc) {
		log_warnx("online migration from %s: cannot quote the reply: "
			  "%s", c->peer, err);
		conn_close(c);
		in_put(in);
		return;
	}
	r.status = in->status;
	r.message = (struct migwire_bytes){ (const uint8_t *)in->msg,
					    strlen(in->msg) };
	r.attest = (struct migwire_bytes){ q->attest, q->attest_len };
	r.sig = (struct migwire_bytes){ q->sig, q->sig_len };
	c->close_after_write = true;
	if (send_msg(c, &r, NULL, NULL))
		conn_close(c);
	in_put(in);
}

/* Answers status and msg, with the AK's quote over them. */
static void in_reply(struct olin *in, uint8_t status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void in_reply(struct olin *in, uint8_t status, const char *fmt, ...)
{
	uint8_t qd[32];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(in->msg, sizeof(in->msg), fmt, ap);
	va_end(ap);
	for (char *p = in->msg; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
	in->status = status;
	if (!in->c || in->c->dead)
		return;
	log_info("online migration %s of vTPM %s from %s: %s: %s",
		 migwire_op_name(in->op), in->uuid_str, in->c->peer,
		 status == MIGWIRE_OK ? "ok"
		 : status == MIGWIRE_REFUSED ? "refused" : "failed",
		 in->msg);
	migwire_reply_qd(in->c->T, status, (const uint8_t *)in->msg,
			 strlen(in->msg), qd);
	in->refs++;
	mgr_quote(in->m, qd, in_quoted, in);
}

static void in_imported(void *arg, const struct mgr_online_res *r)
{
	struct olin *in = arg;

	if (r->rc == 0)
		in_reply(in, MIGWIRE_OK, "prepared: vTPM %s imported, pending "
			 "the commit", in->uuid_str);
	else
		in_reply(in, r->rc == -EPERM ? MIGWIRE_REFUSED : MIGWIRE_FAILED,
			 "%s", r->err);
	in_put(in);
}

static void in_committed(struct manager *m, int rc, void *arg)
{
	struct olin *in = arg;
	struct vtpm_entry *e = mgr_entry_find(m, in->uuid);

	if (rc) {
		in_reply(in, MIGWIRE_FAILED, "cannot commit the key store");
		in_put(in);
		return;
	}
	if (in->op == MIGWIRE_OP_COMMIT && e && (in->flags & MIGWIRE_F_START) &&
	    mgr_vtpm_start(e) == 0) {
		mgr_commit(m, false, NULL, NULL);
		in_reply(in, MIGWIRE_OK, "done: vTPM %s is here and started",
			 in->uuid_str);
	} else if (in->op == MIGWIRE_OP_COMMIT) {
		in_reply(in, MIGWIRE_OK, "done: vTPM %s is here (stopped)",
			 in->uuid_str);
	} else {
		if (e == NULL)
			mgr_vtpm_remove_state(m, in->uuid);
		in_reply(in, MIGWIRE_OK, "aborted: the pending import of vTPM "
			 "%s is discarded", in->uuid_str);
	}
	in_put(in);
}

static void in_commit(struct olin *in)
{
	struct manager *m = in->m;
	struct keystore_tx *tx = keystore_tx_find(&m->ks, in->uuid);
	struct keystore_rec *r = keystore_find(&m->ks, in->uuid);

	if (!tx || memcmp(tx->txid, in->txid, 16) ||
	    CRYPTO_memcmp(tx->peer_ak_sha256, in->src_ak, 32)) {
		in_reply(in, MIGWIRE_REFUSED, "no transaction of vTPM %s with "
			 "this id from this source here", in->uuid_str);
		return;
	}
	if (tx->state == KS_TX_IN_DONE) {
		in_reply(in, MIGWIRE_OK, "done: vTPM %s was committed here "
			 "before", in->uuid_str);
		return;
	}
	if (tx->state != KS_TX_IN_PENDING || !r ||
	    !(r->flags & KS_REC_PENDING)) {
		in_reply(in, MIGWIRE_REFUSED, "vTPM %s: no pending import "
			 "here (deleted by the operator?)", in->uuid_str);
		return;
	}
	r->flags &= ~KS_REC_PENDING;
	tx->state = KS_TX_IN_DONE;
	m->entries_dirty = true;
	log_info("vTPM %s: online migration committed by its source: "
		 "startable here", in->uuid_str);
	in->refs++;
	mgr_commit(m, true, in_committed, in);
}

static void in_abort(struct olin *in)
{
	struct manager *m = in->m;
	struct keystore_tx *tx = keystore_tx_find(&m->ks, in->uuid);
	struct vtpm_entry *e = mgr_entry_find(m, in->uuid);
	const struct keystore_rec *r = keystore_find(&m->ks, in->uuid);

	if (!tx || memcmp(tx->txid, in->txid, 16) ||
	    CRYPTO_memcmp(tx->peer_ak_sha256, in->src_ak, 32) ||
	    tx->state != KS_TX_IN_PENDING) {
		if (tx && !memcmp(tx->txid, in->txid, 16) &&
		    tx->state == KS_TX_IN_DONE)
			in_reply(in, MIGWIRE_REFUSED, "vTPM %s: the transaction "
				 "was committed here", in->uuid_str);
		else
			in_reply(in, MIGWIRE_OK, "aborted: nothing of it is "
				 "pending here");
		return;
	}
	if (e && r && (r->flags & KS_REC_PENDING) && mgr_vtpm_delete(m, e)) {
		in_reply(in, MIGWIRE_FAILED, "vTPM %s: busy", in->uuid_str);
		return;
	}
	keystore_tx_del(&m->ks, in->uuid);
	m->entries_dirty = true;
	in->refs++;
	mgr_commit(m, true, in_committed, in);
}

static void in_request(struct olconn *c, uint8_t *buf, size_t len)
{
	struct olin *in = c->owner;
	struct manager *m = in->m;
	struct migwire_msg rq;
	struct quote_expect want = { 0 };
	uint8_t qd[32];
	char err[300];

	if (migwire_decode(buf, len, &rq, err, sizeof(err)) ||
	    rq.type != MIGWIRE_REQUEST) {
		conn_fail(c, "%s: expected a REQUEST: %s", c->peer,
			  rq.type ? "another frame" : err);
		free(buf);
		return;
	}
	if (!peer_pinned(m, rq.ak_spki.p, rq.ak_spki.n)) {
		in_reply(in, MIGWIRE_REFUSED, "the source's attestation key is "
			 "not pinned here (migrate-peer)");
		free(buf);
		return;
	}
	SHA256(rq.ak_spki.p, rq.ak_spki.n, in->src_ak);
	migwire_request_qd(c->T, rq.ak_spki.p, rq.ak_spki.n, rq.payload.p,
			   rq.payload.n, qd);
	want.qd = qd;
	want.qd_len = sizeof(qd);
	if (quote_verify(rq.ak_spki.p, rq.ak_spki.n, rq.attest.p, rq.attest.n,
			 rq.sig.p, rq.sig.n, &want, NULL, err, sizeof(err))) {
		in_reply(in, MIGWIRE_REFUSED, "the source's quote does not "
			 "verify over this exchange (%s): tampered or replayed",
			 err);
		free(buf);
		return;
	}
	switch (in->op) {
	case MIGWIRE_OP_MIGRATE:
		if (!rq.payload.n) {
			in_reply(in, MIGWIRE_REFUSED, "no blob");
			break;
		}
		in->refs++;
		mgr_online_import(m, rq.payload.p, rq.payload.n, in->uuid,
				  in->txid, in->src_ak, in_imported, in);
		break;
	case MIGWIRE_OP_COMMIT:
		in_commit(in);
		break;
	default:
		in_abort(in);
		break;
	}
	free(buf);
}

static void in_challenge(struct olin *in)
{
	struct online *ol = ol_of(in->m);
	struct migwire_msg ch = { .type = MIGWIRE_CHALLENGE };
	struct olconn *c = in->c;

	RAND_bytes(ch.nonce, sizeof(ch.nonce));
	ch.key_public = (struct migwire_bytes){ ol->cert, ol->pub_len };
	ch.key_attest = (struct migwire_bytes){ ol->cert + ol->pub_len,
						ol->attest_len };
	ch.key_sig = (struct migwire_bytes){ ol->cert + ol->pub_len +
						     ol->attest_len,
					     ol->sig_len };
	ch.ak_spki = (struct migwire_bytes){ in->m->ak_spki,
					     in->m->ak_spki_len };
	if (send_msg(c, &ch, &c->chal, &c->chal_len)) {
		conn_fail(c, "cannot encode the CHALLENGE");
		in_put(in);
		return;
	}
	transcript(c);
	conn_wait(c, OL_REQUEST_MS);
}

static void in_certified(void *arg, const struct mgr_online_res *r)
{
	struct olin *in = arg;
	struct online *ol = ol_of(in->m);
	struct olconn *c = in->c;

	if (r->rc == 0 && !ol->cert) {
		ol->cert = malloc(r->pub_len + r->attest_len + r->sig_len);
		if (!ol->cert)
			fatalx("out of memory");
		memcpy(ol->cert, r->pub, r->pub_len);
		memcpy(ol->cert + r->pub_len, r->attest, r->attest_len);
		memcpy(ol->cert + r->pub_len + r->attest_len, r->sig,
		       r->sig_len);
		ol->pub_len = r->pub_len;
		ol->attest_len = r->attest_len;
		ol->sig_len = r->sig_len;
	}
	if (!c || c->dead) {
		in_put(in);
		return;
	}
	if (r->rc) {
		conn_fail(c, "cannot certify the migration key: %s", r->err);
		in_put(in);
		return;
	}
	in_challenge(in);
	in_put(in);
}

static void in_frame(struct olconn *c, uint8_t *buf, size_t len);

static const struct olconn_ops in_ops = {
	.frame = in_frame,
	.fail = in_fail,
};

static void in_frame(struct olconn *c, uint8_t *buf, size_t len)
{
	struct olin *in = c->owner;
	struct migwire_msg h;
	char err[300];

	if (c->chal && !in->got_request) {
		in->got_request = true;
		in_request(c, buf, len);
		return;
	}
	if (in->got_request) {
		conn_fail(c, "%s sent a frame after its REQUEST", c->peer);
		free(buf);
		return;
	}
	if (c->hello || migwire_decode(buf, len, &h, err, sizeof(err)) ||
	    h.type != MIGWIRE_HELLO) {
		conn_fail(c, "%s: expected a HELLO: %s", c->peer,
			  c->hello ? "a second frame" : err);
		free(buf);
		return;
	}
	c->hello = buf;
	c->hello_len = len;
	in->op = h.op;
	in->flags = h.flags;
	memcpy(in->uuid, h.uuid, 16);
	memcpy(in->txid, h.txid, 16);
	uuid_format(in->uuid, in->uuid_str);
	if (ol_of(in->m)->cert) {
		in_challenge(in);
		return;
	}
	in->refs++;
	mgr_online_certify(in->m, in_certified, in);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct manager *m = server->data;
	struct olconn *c;
	struct olin *in;
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char host[64] = "?";

	if (status < 0)
		return;
	in = calloc(1, sizeof(*in));
	if (!in)
		fatalx("out of memory");
	in->m = m;
	in->refs = 1;
	ol_of(m)->incoming++;
	c = conn_new(m, &in_ops, in);
	in->c = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) ||
	    ol_of(m)->stopping || ol_of(m)->incoming > OL_MAX_INCOMING) {
		if (!ol_of(m)->stopping)
			log_warnx("online migration: more than %d sources at "
				  "once: a connection refused", OL_MAX_INCOMING);
		conn_close(c);
		in->c = NULL;
		in_put(in);
		return;
	}
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET)
			uv_ip4_name((struct sockaddr_in *)&ss, host,
				    sizeof(host));
		else
			uv_ip6_name((struct sockaddr_in6 *)&ss, host,
				    sizeof(host));
	}
	snprintf(c->peer, sizeof(c->peer), "source %s", host);
	conn_wait(c, OL_FRAME_MS);
	if (conn_start_reading(c))
		conn_fail(c, "cannot read");
}

/* ================= the source ================= */

enum out_phase { OUT_HANDSHAKE, OUT_LEAVING, OUT_STOPPING, OUT_EXPORT,
		 OUT_QUOTE, OUT_SENT, OUT_COMMITTING, OUT_FINISHED };

struct olout {
	struct list_node node;   /* online->outs */
	struct manager *m;
	struct olconn *c;
	int refs;
	uint8_t op;
	bool start_on_arrival;
	uint8_t uuid[16], txid[16], nonce[MIGWIRE_NONCE_LEN];
	char uuid_str[UUID_STR_LEN];
	char addr[KEYSTORE_TX_ADDR_LEN];
	bool have_pin;
	uint8_t pin_sha[32];     /* the destination's AK, when pinned */
	uint8_t *dest_spki;
	size_t dest_spki_len;
	struct migkey dest;
	uint8_t *blob;
	size_t blob_len;
	uint64_t generation;
	bool had_volatile;
	struct ctl_call *call;   /* vtpmctl migrate, until answered */
	enum out_phase phase;
	bool request_sent;
	unsigned int tries;
	unsigned int backoff_ms;
	uv_timer_t retry;
	bool retry_open;
	uint64_t t0_ms, t_down_ms, t_commit_ms;
};

static void out_connect(struct olout *o);
static void out_abort(struct olout *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static struct olout *out_new(struct manager *m, uint8_t op,
			     const uint8_t uuid[16], const uint8_t txid[16],
			     const char *addr);

static void out_freed(uv_handle_t *h)
{
	struct olout *o = h->data;

	free(o->dest_spki);
	free(o->blob);
	OPENSSL_cleanse(o, sizeof(*o));
	free(o);
}

static void out_put(struct olout *o)
{
	if (--o->refs > 0)
		return;
	list_remove(&o->node);
	if (o->retry_open)
		uv_close((uv_handle_t *)&o->retry, out_freed);
	else
		out_freed((uv_handle_t *)&o->retry);
}

/* Closes the connection and drops its reference (the caller holds
 * one of its own). */
static void out_drop_conn(struct olout *o)
{
	if (o->c) {
		conn_close(o->c);
		o->c = NULL;
		out_put(o);
	}
}

/* The answer to vtpmctl, once. */
static void out_answer_ok(struct olout *o, bool acked, const char *note)
{
	json_object *r;

	if (!o->call)
		return;
	r = ctl_ok();
	json_object_object_add(r, "uuid", json_object_new_string(o->uuid_str));
	{
		char hx[33];

		hex_encode(o->txid, 16, hx);
		json_object_object_add(r, "txid", json_object_new_string(hx));
	}
	json_object_object_add(r, "to", json_object_new_string(o->addr));
	json_object_object_add(r, "generation",
			       json_object_new_int64((int64_t)o->generation));
	json_object_object_add(r, "volatile",
			       json_object_new_boolean(o->had_volatile));
	json_object_object_add(r, "bytes",
			       json_object_new_int64((int64_t)o->blob_len));
	json_object_object_add(r, "acknowledged",
			       json_object_new_boolean(acked));
	json_object_object_add(r, "migrate_ms",
			       json_object_new_int64((int64_t)(mgr_now(o->m) -
							       o->t0_ms)));
	if (o->t_down_ms)
		json_object_object_add(r, "downtime_ms",
				       json_object_new_int64((int64_t)(
					       o->t_commit_ms - o->t_down_ms)));
	if (note)
		json_object_object_add(r, "note", json_object_new_string(note));
	ctl_reply(o->call, r);
	o->call = NULL;
}

static void out_answer_err(struct olout *o, enum ctl_code code,
			   const char *msg)
{
	if (!o->call)
		return;
	ctl_reply_error(o->call, code, "%s", msg);
	o->call = NULL;
}

/* COMMIT and ABORT are sent again after a failure, with backoff. */
static void retry_fire(uv_timer_t *t)
{
	struct olout *o = t->data;

	if (ol_of(o->m)->stopping) {
		out_put(o);
		return;
	}
	out_connect(o);
	out_put(o);
}

static void out_retry(struct olout *o, const char *why)
{
	struct online *ol = ol_of(o->m);

	out_drop_conn(o);
	o->tries++;
	/* The move is decided (committed here): vtpmctl hears so. */
	out_answer_ok(o, false, why);
	if (ol->stopping ||
	    (o->op == MIGWIRE_OP_ABORT && o->tries >= OL_ABORT_TRIES)) {
		log_warnx("online migration of vTPM %s: %s to %s not "
			  "delivered (%s)%s", o->uuid_str,
			  migwire_op_name(o->op), o->addr, why,
			  o->op == MIGWIRE_OP_COMMIT
				  ? "; retried at the next start" : "");
		return;
	}
	o->backoff_ms = o->backoff_ms ? o->backoff_ms * 2 : OL_RETRY_MIN_MS;
	if (o->backoff_ms > OL_RETRY_MAX_MS)
		o->backoff_ms = OL_RETRY_MAX_MS;
	log_info("online migration of vTPM %s: %s to %s failed (%s); again "
		 "in %u ms", o->uuid_str, migwire_op_name(o->op), o->addr, why,
		 o->backoff_ms);
	if (!o->retry_open) {
		uv_timer_init(o->m->loop, &o->retry);
		o->retry_open = true;
	}
	o->refs++;
	uv_timer_start(&o->retry, retry_fire, o->backoff_ms, 0);
}

static void out_fail(struct olconn *c, const char *why)
{
	struct olout *o = c->owner;

	o->c = NULL;
	if (o->op == MIGWIRE_OP_MIGRATE)
		out_abort(o, "%s", why);
	else
		out_retry(o, why);
	out_put(o);
}

struct restart {
	struct manager *m;
	uint8_t uuid[16];
};

static void restart_stopped(void *arg)
{
	struct restart *rs = arg;
	struct vtpm_entry *e = mgr_entry_find(rs->m, rs->uuid);

	if (e && e->rec.autostart && !mgr_entry_frozen(e) &&
	    !rs->m->stopping)
		sup_start(e);
	free(rs);
}

/* Starts e again (once its instance, if stopping, is gone). */
static void restart_when_stopped(struct vtpm_entry *e)
{
	struct restart *rs;

	if (e->child.state != CHILD_STOPPING) {
		sup_start(e);
		return;
	}
	rs = calloc(1, sizeof(*rs));
	if (!rs)
		fatalx("out of memory");
	rs->m = e->m;
	memcpy(rs->uuid, e->rec.uuid, 16);
	sup_wait_stopped(e, restart_stopped, rs);
}

/* Before the commit point: the vTPM is this host's again. */
static void out_abort(struct olout *o, const char *fmt, ...)
{
	struct manager *m = o->m;
	struct vtpm_entry *e = mgr_entry_find(m, o->uuid);
	struct keystore_rec *r = keystore_find(&m->ks, o->uuid);
	struct keystore_tx *tx = keystore_tx_find(&m->ks, o->uuid);
	char msg[512];
	va_list ap;

	if (o->phase >= OUT_COMMITTING)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("online migration of vTPM %s to %s aborted: %s; it stays "
		  "here%s", o->uuid_str, o->addr, msg,
		  o->start_on_arrival ? " and runs again" : "");
	if (r && (r->flags & KS_REC_LEAVING)) {
		r->flags &= ~KS_REC_LEAVING;
		if (tx && !memcmp(tx->txid, o->txid, 16))
			keystore_tx_del(&m->ks, o->uuid);
		m->entries_dirty = true;
		mgr_commit(m, false, NULL, NULL);
	}
	if (e) {
		e->migrating = false;
		e->leaving = false;
		if (o->start_on_arrival && e->rec.autostart)
			restart_when_stopped(e);
	}
	o->phase = OUT_FINISHED;
	out_answer_err(o, CTL_EFAIL, msg);
	out_drop_conn(o);
	/* The destination may hold a pending import: tell it. */
	if (o->request_sent) {
		struct olout *a = out_new(m, MIGWIRE_OP_ABORT, o->uuid, o->txid,
					  o->addr);

		a->have_pin = o->have_pin;
		memcpy(a->pin_sha, o->pin_sha, 32);
		out_connect(a);
		out_put(a);
	}
}

static void out_committed(struct manager *m, int rc, void *arg);

static void out_reply(struct olout *o, uint8_t *buf, size_t len)
{
	struct manager *m = o->m;
	struct migwire_msg rp;
	struct quote_expect want = { 0 };
	uint8_t qd[32];
	char err[300], msg[MIGWIRE_MSG_MAX + 1];
	struct keystore_rec *r;
	struct keystore_tx *tx;
	struct vtpm_entry *e;

	if (migwire_decode(buf, len, &rp, err, sizeof(err)) ||
	    rp.type != MIGWIRE_REPLY) {
		free(buf);
		conn_fail(o->c, "%s: expected a REPLY: %s", o->c->peer,
			  rp.type ? "another frame" : err);
		return;
	}
	migwire_reply_qd(o->c->T, rp.status, rp.message.p, rp.message.n, qd);
	want.qd = qd;
	want.qd_len = sizeof(qd);
	if (quote_verify(o->dest_spki, o->dest_spki_len, rp.attest.p,
			 rp.attest.n, rp.sig.p, rp.sig.n, &want, NULL, err,
			 sizeof(err))) {
		free(buf);
		conn_fail(o->c, "the destination's reply does not verify with "
			  "its AK (%s)", err);
		return;
	}
	memcpy(msg, rp.message.p, rp.message.n);
	msg[rp.message.n] = '\0';
	free(buf);
	out_drop_conn(o);
	if (rp.status != MIGWIRE_OK) {
		if (o->op == MIGWIRE_OP_MIGRATE)
			out_abort(o, "the destination %s: %s",
				  rp.status == MIGWIRE_REFUSED ? "refused"
							       : "failed", msg);
		else if (rp.status == MIGWIRE_FAILED)
			out_retry(o, msg);
		else
			log_warnx("online migration of vTPM %s: %s refused by "
				  "%s: %s", o->uuid_str,
				  migwire_op_name(o->op), o->addr, msg);
		out_answer_ok(o, false, msg);
		return;
	}
	log_info("online migration of vTPM %s: %s to %s: %s", o->uuid_str,
		 migwire_op_name(o->op), o->addr, msg);
	if (o->op == MIGWIRE_OP_ABORT)
		return;
	tx = keystore_tx_find(&m->ks, o->uuid);
	if (o->op == MIGWIRE_OP_COMMIT) {
		if (tx && !memcmp(tx->txid, o->txid, 16) &&
		    tx->state == KS_TX_OUT_COMMITTED) {
			tx->state = KS_TX_OUT_DONE;
			m->entries_dirty = true;
			mgr_commit(m, false, NULL, NULL);
		}
		o->t_commit_ms = o->t_commit_ms ? o->t_commit_ms : mgr_now(m);
		out_answer_ok(o, true, NULL);
		return;
	}
	/* MIGRATE, PREPARED: the commit point. */
	r = keystore_find(&m->ks, o->uuid);
	e = mgr_entry_find(m, o->uuid);
	if (!r || !e || !tx || memcmp(tx->txid, o->txid, 16)) {
		out_abort(o, "the vTPM's record changed under the migration");
		return;
	}
	r->flags = KS_REC_TOMBSTONE;
	r->generation = o->generation;
	memcpy(r->state_hash, o->dest.name + 2, 32);
	memcpy(r->state_key, o->dest.ak_sha256, 32);
	tx->state = KS_TX_OUT_COMMITTED;
	tx->flags = o->start_on_arrival ? KS_TX_F_START : 0;
	e->rec.autostart = false;
	m->entries_dirty = true;
	o->phase = OUT_COMMITTING;
	o->refs++;
	mgr_commit(m, true, out_committed, o);
}

static void out_committed(struct manager *m, int rc, void *arg)
{
	struct olout *o = arg;
	struct vtpm_entry *e = mgr_entry_find(m, o->uuid);
	struct olout *cm;

	if (e) {
		e->migrating = false;
		e->leaving = false;
	}
	o->t_commit_ms = mgr_now(m);
	if (rc) {
		log_warnx("online migration of vTPM %s: the commit of the "
			  "tombstone failed: the move is decided at the next "
			  "durable commit", o->uuid_str);
		out_answer_err(o, CTL_EFAIL, "cannot commit the key store");
		out_put(o);
		return;
	}
	log_info("vTPM %s: online migration to %s committed (generation "
		 "%llu%s): a tombstone remains here", o->uuid_str, o->addr,
		 (unsigned long long)o->generation,
		 o->had_volatile ? ", volatile state included" : "");
	o->phase = OUT_FINISHED;
	cm = out_new(m, MIGWIRE_OP_COMMIT, o->uuid, o->txid, o->addr);
	cm->have_pin = true;
	memcpy(cm->pin_sha, o->dest.ak_sha256, 32);
	cm->start_on_arrival = o->start_on_arrival;
	/* The control client hears once the COMMIT was answered (or the
	 * first attempt failed). */
	cm->call = o->call;
	o->call = NULL;
	cm->t0_ms = o->t0_ms;
	cm->t_down_ms = o->t_down_ms;
	cm->t_commit_ms = o->t_commit_ms;
	cm->generation = o->generation;
	cm->had_volatile = o->had_volatile;
	cm->blob_len = o->blob_len;
	out_connect(cm);
	out_put(cm);
	out_put(o);
}

static void out_quoted(void *arg, int rc, const struct mgr_quote *q,
		       const char *err)
{
	struct olout *o = arg;
	struct migwire_msg rq = { .type = MIGWIRE_REQUEST };

	if (!o->c || o->c->dead) {
		out_put(o);
		return;
	}
	if (rc) {
		if (o->op == MIGWIRE_OP_MIGRATE)
			out_abort(o, "cannot quote the request: %s", err);
		else
			out_retry(o, err);
		out_put(o);
		return;
	}
	rq.ak_spki = (struct migwire_bytes){ o->m->ak_spki, o->m->ak_spki_len };
	rq.attest = (struct migwire_bytes){ q->attest, q->attest_len };
	rq.sig = (struct migwire_bytes){ q->sig, q->sig_len };
	rq.payload = (struct migwire_bytes){ o->blob, o->blob_len };
	if (o->op != MIGWIRE_OP_MIGRATE)
		rq.payload.n = 0;
	if (send_msg(o->c, &rq, NULL, NULL)) {
		if (o->op == MIGWIRE_OP_MIGRATE)
			out_abort(o, "cannot encode the request");
		else
			out_retry(o, "cannot encode the request");
		out_put(o);
		return;
	}
	o->request_sent = true;
	o->phase = OUT_SENT;
	conn_wait(o->c, OL_FRAME_MS);
	out_put(o);
}

static void out_request(struct olout *o)
{
	uint8_t qd[32];

	o->phase = OUT_QUOTE;
	migwire_request_qd(o->c->T, o->m->ak_spki, o->m->ak_spki_len,
			   o->op == MIGWIRE_OP_MIGRATE ? o->blob : NULL,
			   o->op == MIGWIRE_OP_MIGRATE ? o->blob_len : 0, qd);
	o->refs++;
	mgr_quote(o->m, qd, out_quoted, o);
}

static void out_exported(void *arg, const struct mgr_online_res *r)
{
	struct olout *o = arg;

	if (!o->c || o->c->dead || o->phase == OUT_FINISHED) {
		out_put(o);
		return;
	}
	if (r->rc) {
		out_abort(o, "cannot read and seal its state: %s", r->err);
		out_put(o);
		return;
	}
	o->blob = malloc(r->blob_len);
	if (!o->blob)
		fatalx("out of memory");
	memcpy(o->blob, r->blob, r->blob_len);
	o->blob_len = r->blob_len;
	o->generation = r->generation;
	o->had_volatile = r->had_volatile;
	out_request(o);
	out_put(o);
}

static void out_stopped(void *arg)
{
	struct olout *o = arg;
	struct vtpm_entry *e = mgr_entry_find(o->m, o->uuid);

	if (!o->c || o->c->dead || o->phase == OUT_FINISHED || !e) {
		if (o->phase != OUT_FINISHED)
			out_abort(o, "the vTPM went away");
		out_put(o);
		return;
	}
	o->phase = OUT_EXPORT;
	mgr_online_export(o->m, e, &o->dest, out_exported, o);
}

static void out_leaving(struct manager *m, int rc, void *arg)
{
	struct olout *o = arg;
	struct vtpm_entry *e = mgr_entry_find(m, o->uuid);

	if (o->phase == OUT_FINISHED) {
		out_put(o);
		return;
	}
	if (rc || !e) {
		out_abort(o, "cannot commit the key store");
		out_put(o);
		return;
	}
	o->phase = OUT_STOPPING;
	o->t_down_ms = mgr_now(m);
	e->leaving = true;
	if (!sup_stopped(e)) {
		/* SIGUSR2: the instance saves its volatile state. */
		sup_stop_sig(e, SIGUSR2);
	}
	sup_wait_stopped(e, out_stopped, o);
}

static void out_challenge(struct olout *o, uint8_t *buf, size_t len)
{
	struct manager *m = o->m;
	struct migwire_msg ch;
	struct olconn *c = o->c;
	struct keystore_rec *r;
	struct keystore_tx tx = { .state = KS_TX_OUT_PREPARING };
	uint8_t sha[32];
	char err[300];

	if (migwire_decode(buf, len, &ch, err, sizeof(err)) ||
	    ch.type != MIGWIRE_CHALLENGE) {
		free(buf);
		conn_fail(c, "%s: expected a CHALLENGE: %s", c->peer,
			  ch.type ? "another frame" : err);
		return;
	}
	c->chal = buf;
	c->chal_len = len;
	transcript(c);
	if (migkey_verify(ch.key_public.p, ch.key_public.n, ch.key_attest.p,
			  ch.key_attest.n, ch.key_sig.p, ch.key_sig.n,
			  ch.ak_spki.p, ch.ak_spki.n, NULL, 0, &o->dest, err,
			  sizeof(err))) {
		conn_fail(c, "the destination's migration key: %s", err);
		return;
	}
	SHA256(ch.ak_spki.p, ch.ak_spki.n, sha);
	if (o->have_pin ? CRYPTO_memcmp(sha, o->pin_sha, 32) != 0
			: !peer_pinned(m, ch.ak_spki.p, ch.ak_spki.n)) {
		char hx[65];

		sha_hex(sha, hx);
		conn_fail(c, "the destination's attestation key (SHA-256 %s) "
			  "is not the pinned one (%s)", hx,
			  o->have_pin ? "--ak-spki or the recorded one"
				      : "migrate-peer");
		return;
	}
	o->dest_spki = malloc(ch.ak_spki.n);
	if (!o->dest_spki)
		fatalx("out of memory");
	memcpy(o->dest_spki, ch.ak_spki.p, ch.ak_spki.n);
	o->dest_spki_len = ch.ak_spki.n;
	if (o->op != MIGWIRE_OP_MIGRATE) {
		out_request(o);
		return;
	}
	/* Durable before the vTPM stops: a restart from here on aborts. */
	r = keystore_find(&m->ks, o->uuid);
	if (!r || (r->flags & (KS_REC_TOMBSTONE | KS_REC_PENDING |
			       KS_REC_LEAVING))) {
		out_abort(o, "its record is no longer whole");
		return;
	}
	memcpy(tx.uuid, o->uuid, 16);
	memcpy(tx.txid, o->txid, 16);
	memcpy(tx.peer_ak_sha256, o->dest.ak_sha256, 32);
	snprintf(tx.addr, sizeof(tx.addr), "%s", o->addr);
	tx.flags = o->start_on_arrival ? KS_TX_F_START : 0;
	if (keystore_tx_put(&m->ks, &tx)) {
		out_abort(o, "cannot record the transaction");
		return;
	}
	r->flags |= KS_REC_LEAVING;
	m->entries_dirty = true;
	o->phase = OUT_LEAVING;
	o->refs++;
	mgr_commit(m, true, out_leaving, o);
}

static void out_frame(struct olconn *c, uint8_t *buf, size_t len)
{
	struct olout *o = c->owner;

	o->refs++;
	if (!c->chal && o->phase == OUT_HANDSHAKE) {
		out_challenge(o, buf, len);
	} else if (o->phase == OUT_SENT) {
		out_reply(o, buf, len);
	} else {
		free(buf);
		conn_fail(c, "%s sent a frame out of turn", c->peer);
	}
	out_put(o);
}

static void out_connected_cb(uv_connect_t *req, int status)
{
	struct olconn *c = req->data;
	struct olout *o = c->owner;
	struct migwire_msg h = { .type = MIGWIRE_HELLO };
	uint8_t *keep;

	if (c->dead)
		return;
	if (status < 0) {
		conn_fail(c, "cannot connect to %s: %s", c->peer,
			  uv_strerror(status));
		return;
	}
	h.op = o->op;
	h.flags = o->start_on_arrival && o->op == MIGWIRE_OP_COMMIT
			  ? MIGWIRE_F_START : 0;
	memcpy(h.uuid, o->uuid, 16);
	memcpy(h.txid, o->txid, 16);
	memcpy(h.nonce, o->nonce, sizeof(h.nonce));
	if (send_msg(c, &h, &keep, &c->hello_len)) {
		conn_fail(c, "cannot encode HELLO");
		return;
	}
	c->hello = keep;
	conn_wait(c, OL_FRAME_MS);
	if (conn_start_reading(c))
		conn_fail(c, "cannot read from %s", c->peer);
}

static const struct olconn_ops out_ops = {
	.frame = out_frame,
	.fail = out_fail,
};

static void out_connect(struct olout *o)
{
	struct sockaddr_storage ss;
	char host[64];
	uint16_t port;
	int rc;

	o->phase = OUT_HANDSHAKE;
	RAND_bytes(o->nonce, sizeof(o->nonce));
	free(o->dest_spki);
	o->dest_spki = NULL;
	o->c = conn_new(o->m, &out_ops, o);
	o->refs++;                        /* the connection's */
	snprintf(o->c->peer, sizeof(o->c->peer), "destination %s", o->addr);
	o->c->creq.data = o->c;
	rc = config_parse_hostport(o->addr, host, sizeof(host), &port);
	if (!rc)
		rc = strchr(host, ':')
			     ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss)
			     : uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
	if (!rc)
		rc = uv_tcp_connect(&o->c->creq, &o->c->tcp,
				    (struct sockaddr *)&ss, out_connected_cb);
	if (rc)
		conn_fail(o->c, "cannot connect to %s: %s", o->addr,
			  rc == -EINVAL ? "not a numeric HOST:PORT"
					: uv_strerror(rc));
}

static struct olout *out_new(struct manager *m, uint8_t op,
			     const uint8_t uuid[16], const uint8_t txid[16],
			     const char *addr)
{
	struct olout *o = calloc(1, sizeof(*o));

	if (!o)
		fatalx("out of memory");
	o->m = m;
	o->retry.data = o;
	o->refs = 1;
	o->op = op;
	memcpy(o->uuid, uuid, 16);
	memcpy(o->txid, txid, 16);
	uuid_format(uuid, o->uuid_str);
	snprintf(o->addr, sizeof(o->addr), "%s", addr);
	o->t0_ms = mgr_now(m);
	list_push_back(&ol_of(m)->outs, &o->node);
	return o;
}


/* ================= control ================= */

static int pin_arg(json_object *req, uint8_t sha[32], bool *have)
{
	const char *s = ctl_str_arg(req, "ak_spki_pinned");
	size_t n;
	uint8_t *der;

	*have = false;
	if (!s)
		return 0;
	n = strlen(s);
	if (n == 0 || n % 2 || n / 2 > MIGKEY_SPKI_MAX)
		return -EINVAL;
	der = malloc(n / 2);
	if (!der)
		fatalx("out of memory");
	if (hex_decode(s, n, der, n / 2)) {
		free(der);
		return -EINVAL;
	}
	if (n / 2 == 32)
		memcpy(sha, der, 32);
	else
		SHA256(der, n / 2, sha);
	free(der);
	*have = true;
	return 0;
}

void mgr_cmd_migrate(struct ctl_call *c, json_object *req)
{
	struct manager *m = c->m;
	struct vtpm_entry *e = ctl_entry_arg(c, req);
	const struct keystore_rec *r;
	const char *to = ctl_str_arg(req, "to");
	char host[64];
	uint16_t port;
	uint8_t txid[16];
	struct olout *o;
	bool have;
	uint8_t pin[32];

	if (!e)
		return;
	if (!to || strlen(to) >= KEYSTORE_TX_ADDR_LEN ||
	    config_parse_hostport(to, host, sizeof(host), &port)) {
		ctl_reply_error(c, CTL_EINVAL, "\"to\": the destination "
				"manager's migrate-listen address, HOST:PORT "
				"(numeric)");
		return;
	}
	if (pin_arg(req, pin, &have)) {
		ctl_reply_error(c, CTL_EINVAL, "\"ak_spki_pinned\": the "
				"destination AK's DER SPKI (or its SHA-256) "
				"in hex");
		return;
	}
	if (!have && m->cfg->n_migrate_peers == 0) {
		ctl_reply_error(c, CTL_EINVAL, "refusing to migrate vTPM %s: "
				"the destination's attestation key is pinned "
				"neither by --ak-spki nor by migrate-peer",
				e->rec.uuid_str);
		return;
	}
	if (!m->hal || !m->ak_spki) {
		ctl_reply_error(c, CTL_EFAIL, "this manager has no physical "
				"TPM attestation key");
		return;
	}
	r = keystore_find(&m->ks, e->rec.uuid);
	if (mgr_entry_frozen(e) || !r) {
		ctl_reply_error(c, CTL_EBUSY, "cannot migrate vTPM %s: %s",
				e->rec.uuid_str,
				r && (r->flags & KS_REC_TOMBSTONE)
					? "it left this host (a tombstone)"
					: "an export, import, clone or "
					  "migration of it is under way");
		return;
	}
	if (mgr_entry_is_remote(e)) {
		ctl_reply_error(c, CTL_EBUSY, "cannot migrate vTPM %s: it runs "
				"in its own domain", e->rec.uuid_str);
		return;
	}
	if (sup_has_waiters(e) || e->child.state == CHILD_STOPPING) {
		ctl_reply_error(c, CTL_EBUSY, "cannot migrate vTPM %s: it is "
				"stopping", e->rec.uuid_str);
		return;
	}
	RAND_bytes(txid, sizeof(txid));
	o = out_new(m, MIGWIRE_OP_MIGRATE, e->rec.uuid, txid, to);
	o->call = c;
	o->have_pin = have;
	memcpy(o->pin_sha, pin, 32);
	o->start_on_arrival = !sup_stopped(e);
	e->migrating = true;
	{
		char hx[33];

		hex_encode(txid, 16, hx);
		log_info("vTPM %s: online migration %s to %s begins",
			 e->rec.uuid_str, hx, to);
	}
	out_connect(o);
	out_put(o);
}

void mgr_online_show(const struct vtpm_entry *e, json_object *o)
{
	const struct keystore_tx *tx = keystore_tx_find(&e->m->ks, e->rec.uuid);
	static const char *const names[] = {
		[KS_TX_OUT_PREPARING] = "migrating out",
		[KS_TX_OUT_COMMITTED] = "migrated out, commit not yet "
					"acknowledged",
		[KS_TX_OUT_DONE] = "migrated out",
		[KS_TX_IN_PENDING] = "migrating in, pending the source's "
				     "commit",
		[KS_TX_IN_DONE] = "migrated in",
	};
	json_object *j;
	char hx[65];

	if (!tx)
		return;
	j = json_object_new_object();
	json_object_object_add(j, "state",
			       json_object_new_string(names[tx->state]));
	hex_encode(tx->txid, 16, hx);
	json_object_object_add(j, "txid", json_object_new_string(hx));
	sha_hex(tx->peer_ak_sha256, hx);
	json_object_object_add(j, "peer_ak_sha256", json_object_new_string(hx));
	if (tx->addr[0])
		json_object_object_add(j, "to", json_object_new_string(tx->addr));
	json_object_object_add(o, "migration", j);
}

/* ================= start, recovery, stop ================= */

static struct online *ol_of(struct manager *m)
{
	if (!m->online) {
		struct online *ol = calloc(1, sizeof(*ol));

		if (!ol)
			fatalx("out of memory");
		list_init(&ol->outs);
		m->online = ol;
	}
	return m->online;
}

/* The destination may hold a pending import of tx: ABORT it later. */
static void keep_aborted(struct manager *m, const struct keystore_tx *tx)
{
	struct online *ol = ol_of(m);
	struct keystore_tx *n;

	n = realloc(ol->aborted, (ol->naborted + 1) * sizeof(*n));
	if (!n)
		fatalx("out of memory");
	ol->aborted = n;
	ol->aborted[ol->naborted++] = *tx;
}

void mgr_online_recover(struct manager *m)
{
	struct keystore *ks = &m->ks;
	char hx[33];

	for (size_t i = 0; i < ks->ntxs;) {
		struct keystore_tx *tx = &ks->txs[i];
		struct keystore_rec *r = keystore_find(ks, tx->uuid);
		char us[UUID_STR_LEN];

		if (tx->state != KS_TX_OUT_PREPARING) {
			i++;
			continue;
		}
		uuid_format(tx->uuid, us);
		hex_encode(tx->txid, 16, hx);
		log_warnx("vTPM %s: online migration %s to %s was not "
			  "committed before the stop: aborted, the vTPM stays "
			  "here", us, hx, tx->addr);
		keep_aborted(m, tx);
		if (r)
			r->flags &= ~KS_REC_LEAVING;
		keystore_tx_del(ks, tx->uuid);
		m->entries_dirty = true;
	}
}

int mgr_online_start(struct manager *m)
{
	struct online *ol = ol_of(m);
	const struct config *cfg = m->cfg;
	struct sockaddr_storage ss;
	int rc;

	for (size_t i = 0; i < ol->naborted; i++) {
		const struct keystore_tx *tx = &ol->aborted[i];
		struct olout *o;

		o = out_new(m, MIGWIRE_OP_ABORT, tx->uuid, tx->txid, tx->addr);
		o->have_pin = true;
		memcpy(o->pin_sha, tx->peer_ak_sha256, 32);
		out_connect(o);
		out_put(o);
	}
	free(ol->aborted);
	ol->aborted = NULL;
	ol->naborted = 0;
	for (size_t i = 0; i < m->ks.ntxs; i++) {
		const struct keystore_tx *tx = &m->ks.txs[i];
		struct olout *o;

		if (tx->state != KS_TX_OUT_COMMITTED)
			continue;
		o = out_new(m, MIGWIRE_OP_COMMIT, tx->uuid, tx->txid, tx->addr);
		o->have_pin = true;
		memcpy(o->pin_sha, tx->peer_ak_sha256, 32);
		o->start_on_arrival = tx->flags & KS_TX_F_START;
		log_info("vTPM %s: its online migration to %s was committed "
			 "here but not acknowledged: sending COMMIT again",
			 o->uuid_str, o->addr);
		out_connect(o);
		out_put(o);
	}
	if (!cfg->migrate_host[0])
		return 0;
	rc = strchr(cfg->migrate_host, ':')
		     ? uv_ip6_addr(cfg->migrate_host, cfg->migrate_port,
				   (struct sockaddr_in6 *)&ss)
		     : uv_ip4_addr(cfg->migrate_host, cfg->migrate_port,
				   (struct sockaddr_in *)&ss);
	if (!rc)
		rc = uv_tcp_init(m->loop, &ol->listener);
	if (rc)
		return rc;
	ol->listener.data = m;
	ol->listening = true;
	rc = uv_tcp_bind(&ol->listener, (struct sockaddr *)&ss, 0);
	if (!rc)
		rc = uv_listen((uv_stream_t *)&ol->listener, 16, on_connection);
	if (rc) {
		log_warnx("migrate-listen %s:%u: %s", cfg->migrate_host,
			  cfg->migrate_port, uv_strerror(rc));
		return rc;
	}
	log_info("online migration: listening on %s:%u (%u pinned peer%s)",
		 cfg->migrate_host, cfg->migrate_port, cfg->n_migrate_peers,
		 cfg->n_migrate_peers == 1 ? "" : "s");
	return 0;
}

void mgr_online_stop(struct manager *m)
{
	struct online *ol = ol_of(m);

	ol->stopping = true;
	if (ol->listening) {
		uv_close((uv_handle_t *)&ol->listener, NULL);
		ol->listening = false;
	}
}
