/* SPDX-License-Identifier: BSD-3-Clause */
/* The online migration protocol's frames (migwire.h). */
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bytes.h"
#include "lib/errbuf.h"
#include "proto/migwire.h"

#define TRANSCRIPT_LABEL "vtpm-service online migration v1"

const char *migwire_op_name(uint8_t op)
{
	switch (op) {
	case MIGWIRE_OP_MIGRATE:
		return "MIGRATE";
	case MIGWIRE_OP_COMMIT:
		return "COMMIT";
	case MIGWIRE_OP_ABORT:
		return "ABORT";
	}
	return "unknown";
}

int migwire_frame_len(const uint8_t *buf, size_t len, size_t *total)
{
	uint32_t n;

	if (len < MIGWIRE_HDR_LEN)
		return -EAGAIN;
	n = be32_get(buf + 8);
	if (memcmp(buf, MIGWIRE_MAGIC, 4) || buf[4] != MIGWIRE_VERSION ||
	    buf[5] < MIGWIRE_HELLO || buf[5] > MIGWIRE_REPLY || buf[6] ||
	    buf[7] || n > MIGWIRE_MAX_BODY)
		return -EBADMSG;
	*total = MIGWIRE_HDR_LEN + (size_t)n;
	return 0;
}

/* ---- reading a body ---- */

struct rd {
	const uint8_t *p;
	size_t left;
	int bad;
};

static const uint8_t *take(struct rd *r, size_t n)
{
	const uint8_t *p = r->p;

	if (r->bad || n > r->left) {
		r->bad = 1;
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return p;
}

static void take_to(struct rd *r, void *out, size_t n)
{
	const uint8_t *p = take(r, n);

	if (p)
		memcpy(out, p, n);
}

/* A u16- (or u32-, wide) prefixed field of lo..max bytes. */
static void take_var(struct rd *r, int wide, size_t lo, size_t max,
		     struct migwire_bytes *b)
{
	const uint8_t *p = take(r, wide ? 4 : 2);
	size_t n;

	b->p = NULL;
	b->n = 0;
	if (!p)
		return;
	n = wide ? be32_get(p) : be16_get(p);
	if (n < lo || n > max) {
		r->bad = 1;
		return;
	}
	b->p = take(r, n);
	b->n = b->p ? n : 0;
}

static int printable(const struct migwire_bytes *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->p[i] < 0x20 || b->p[i] > 0x7e)
			return 0;
	return 1;
}

int migwire_decode(const uint8_t *buf, size_t len, struct migwire_msg *m,
		   char *err, size_t errlen)
{
	struct rd r;
	size_t total;
	const uint8_t *z;

	memset(m, 0, sizeof(*m));
	if (!buf || migwire_frame_len(buf, len, &total) || total != len)
		return seterrc(err, errlen, -EBADMSG, "not an online migration "
			       "frame (magic, version, type or length)");
	m->type = buf[5];
	r = (struct rd){ .p = buf + MIGWIRE_HDR_LEN,
			 .left = len - MIGWIRE_HDR_LEN };
	switch (m->type) {
	case MIGWIRE_HELLO:
		z = take(&r, 4);
		if (z && (z[0] < MIGWIRE_OP_MIGRATE ||
			  z[0] > MIGWIRE_OP_ABORT ||
			  (z[1] & ~MIGWIRE_F_START) || z[2] || z[3]))
			r.bad = 1;
		m->op = z ? z[0] : 0;
		m->flags = z ? z[1] : 0;
		take_to(&r, m->uuid, 16);
		take_to(&r, m->txid, 16);
		z = take(&r, 8);
		m->generation = z ? be64_get(z) : 0;
		take_to(&r, m->nonce, MIGWIRE_NONCE_LEN);
		break;
	case MIGWIRE_CHALLENGE:
		take_to(&r, m->nonce, MIGWIRE_NONCE_LEN);
		take_var(&r, 0, 1, MIGWIRE_PUBLIC_MAX, &m->key_public);
		take_var(&r, 0, 1, MIGWIRE_ATTEST_MAX, &m->key_attest);
		take_var(&r, 0, 1, MIGWIRE_SIG_MAX, &m->key_sig);
		take_var(&r, 0, 1, MIGWIRE_SPKI_MAX, &m->ak_spki);
		break;
	case MIGWIRE_REQUEST:
		take_var(&r, 0, 1, MIGWIRE_SPKI_MAX, &m->ak_spki);
		take_var(&r, 0, 1, MIGWIRE_ATTEST_MAX, &m->attest);
		take_var(&r, 0, 1, MIGWIRE_SIG_MAX, &m->sig);
		take_var(&r, 1, 0, EXPBLOB_MAX_LEN, &m->payload);
		break;
	case MIGWIRE_REPLY:
		z = take(&r, 4);
		if (z && (z[0] > MIGWIRE_FAILED || z[1] || z[2] || z[3]))
			r.bad = 1;
		m->status = z ? z[0] : 0;
		take_var(&r, 0, 0, MIGWIRE_MSG_MAX, &m->message);
		if (!r.bad && !printable(&m->message))
			r.bad = 1;
		take_var(&r, 0, 1, MIGWIRE_ATTEST_MAX, &m->attest);
		take_var(&r, 0, 1, MIGWIRE_SIG_MAX, &m->sig);
		break;
	}
	if (r.bad || r.left) {
		uint8_t t = m->type;

		memset(m, 0, sizeof(*m));
		return seterrc(err, errlen, -EBADMSG, "malformed online "
			       "migration frame of type %u (a field out of "
			       "its bounds, or trailing bytes)", t);
	}
	return 0;
}

/* ---- writing ---- */

struct wr {
	uint8_t *p;
	size_t len;
};

static void put(struct wr *w, const void *b, size_t n)
{
	if (w->p && n)
		memcpy(w->p + w->len, b, n);
	w->len += n;
}

static void put_var(struct wr *w, int wide, const struct migwire_bytes *b)
{
	uint8_t h[4];

	if (wide)
		be32_put(h, (uint32_t)b->n);
	else
		be16_put(h, (uint16_t)b->n);
	put(w, h, wide ? 4 : 2);
	put(w, b->p, b->n);
}

static int var_ok(const struct migwire_bytes *b, size_t lo, size_t max)
{
	return b->n >= lo && b->n <= max && (b->p || !b->n);
}

static int fields_ok(const struct migwire_msg *m)
{
	switch (m->type) {
	case MIGWIRE_HELLO:
		return m->op >= MIGWIRE_OP_MIGRATE &&
		       m->op <= MIGWIRE_OP_ABORT && !(m->flags & ~MIGWIRE_F_START);
	case MIGWIRE_CHALLENGE:
		return var_ok(&m->key_public, 1, MIGWIRE_PUBLIC_MAX) &&
		       var_ok(&m->key_attest, 1, MIGWIRE_ATTEST_MAX) &&
		       var_ok(&m->key_sig, 1, MIGWIRE_SIG_MAX) &&
		       var_ok(&m->ak_spki, 1, MIGWIRE_SPKI_MAX);
	case MIGWIRE_REQUEST:
		return var_ok(&m->ak_spki, 1, MIGWIRE_SPKI_MAX) &&
		       var_ok(&m->attest, 1, MIGWIRE_ATTEST_MAX) &&
		       var_ok(&m->sig, 1, MIGWIRE_SIG_MAX) &&
		       var_ok(&m->payload, 0, EXPBLOB_MAX_LEN);
	case MIGWIRE_REPLY:
		return m->status <= MIGWIRE_FAILED &&
		       var_ok(&m->message, 0, MIGWIRE_MSG_MAX) &&
		       printable(&m->message) &&
		       var_ok(&m->attest, 1, MIGWIRE_ATTEST_MAX) &&
		       var_ok(&m->sig, 1, MIGWIRE_SIG_MAX);
	}
	return 0;
}

static void put_body(struct wr *w, const struct migwire_msg *m)
{
	uint8_t b[8] = { 0 };

	switch (m->type) {
	case MIGWIRE_HELLO:
		b[0] = m->op;
		b[1] = m->flags;
		put(w, b, 4);
		b[1] = 0;
		put(w, m->uuid, 16);
		put(w, m->txid, 16);
		be64_put(b, m->generation);
		put(w, b, 8);
		put(w, m->nonce, MIGWIRE_NONCE_LEN);
		break;
	case MIGWIRE_CHALLENGE:
		put(w, m->nonce, MIGWIRE_NONCE_LEN);
		put_var(w, 0, &m->key_public);
		put_var(w, 0, &m->key_attest);
		put_var(w, 0, &m->key_sig);
		put_var(w, 0, &m->ak_spki);
		break;
	case MIGWIRE_REQUEST:
		put_var(w, 0, &m->ak_spki);
		put_var(w, 0, &m->attest);
		put_var(w, 0, &m->sig);
		put_var(w, 1, &m->payload);
		break;
	case MIGWIRE_REPLY:
		b[0] = m->status;
		put(w, b, 4);
		put_var(w, 0, &m->message);
		put_var(w, 0, &m->attest);
		put_var(w, 0, &m->sig);
		break;
	}
}

int migwire_encode(const struct migwire_msg *m, uint8_t **out,
		   size_t *outlen)
{
	struct wr w = { 0 };
	uint8_t *buf;

	*out = NULL;
	*outlen = 0;
	if (!fields_ok(m))
		return -EINVAL;
	put_body(&w, m);
	if (w.len > MIGWIRE_MAX_BODY)
		return -EINVAL;
	buf = malloc(MIGWIRE_HDR_LEN + w.len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, MIGWIRE_MAGIC, 4);
	buf[4] = MIGWIRE_VERSION;
	buf[5] = m->type;
	buf[6] = buf[7] = 0;
	be32_put(buf + 8, (uint32_t)w.len);
	w = (struct wr){ .p = buf + MIGWIRE_HDR_LEN };
	put_body(&w, m);
	*out = buf;
	*outlen = MIGWIRE_HDR_LEN + w.len;
	return 0;
}

/* ---- what the quotes sign ---- */

static void sha256_parts(const void *const *parts, const size_t *lens,
			 int n, uint8_t out[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int olen = 32;

	if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
		abort();
	for (int i = 0; i < n; i++)
		if (EVP_DigestUpdate(c, parts[i], lens[i]) != 1)
			abort();
	if (EVP_DigestFinal_ex(c, out, &olen) != 1)
		abort();
	EVP_MD_CTX_free(c);
}

void migwire_transcript(const uint8_t *hello, size_t hello_len,
			const uint8_t *chal, size_t chal_len,
			uint8_t out[32])
{
	const void *p[] = { TRANSCRIPT_LABEL, hello, chal };
	size_t l[] = { sizeof(TRANSCRIPT_LABEL), hello_len, chal_len };

	sha256_parts(p, l, 3, out);
}

void migwire_request_qd(const uint8_t transcript[32], const uint8_t *spki,
			size_t spki_len, const uint8_t *payload,
			size_t payload_len, uint8_t out[32])
{
	uint8_t ph[32];
	const void *p[] = { "request", transcript, spki, ph };
	size_t l[] = { 8, 32, spki_len, 32 };
	const void *pp[] = { payload };
	size_t pl[] = { payload_len };

	sha256_parts(pp, pl, 1, ph);
	sha256_parts(p, l, 4, out);
}

void migwire_reply_qd(const uint8_t transcript[32], uint8_t status,
		      const uint8_t *msg, size_t msg_len, uint8_t out[32])
{
	const void *p[] = { "reply", transcript, &status, msg };
	size_t l[] = { 6, 32, 1, msg_len };

	sha256_parts(p, l, 4, out);
}
