/* SPDX-License-Identifier: BSD-3-Clause */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "lib/bytes.h"
#include "proto/mgrproto.h"

/* Decoded responses are large (a quote holds two 4 KiB blobs). */
static struct mgr_rsp rsp_a, rsp_b;

static void fill(uint8_t *p, size_t n, uint8_t start)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(start + i);
}

/* One request of every type, with every field set to something. */
static void sample_req(enum mgr_msg t, struct mgr_req *q)
{
	memset(q, 0, sizeof(*q));
	q->type = t;
	switch (t) {
	case MGR_MSG_SAVEHASHKEY:
		q->u.save.generation = 0x0102030405060708ull;
		fill(q->u.save.state_hash, 32, 0xa0);
		break;
	case MGR_MSG_GET_QUOTE:
		q->u.quote.nonce_len = 5;
		memcpy(q->u.quote.nonce, "nonce", 5);
		fill(q->u.quote.pcr_digest, 32, 0x20);
		q->u.quote.pcr_mask = 0x481;
		break;
	case MGR_MSG_GROUP_DEL:
		q->u.group_del.group_id = 0x11223344;
		break;
	case MGR_MSG_VTPM_LIST:
		q->u.vtpm_list.group_id = 3;
		q->u.vtpm_list.offset = 254;
		break;
	case MGR_MSG_VTPM_NEW:
		q->u.vtpm_new.group_id = 7;
		fill(q->u.vtpm_new.uuid, 16, 0x10);
		q->u.vtpm_new.tpm_version = 2;
		break;
	case MGR_MSG_VTPM_DEL:
		fill(q->u.vtpm_del.uuid, 16, 0x40);
		break;
	case MGR_MSG_EK_CERTIFY:
		q->u.ek.kind = MGR_EK_KIND_RSA;
		q->u.ek.manufacturer = 0x49424d00;
		memcpy(q->u.ek.model, "SW   TPM", 8);
		q->u.ek.fw_version[0] = 0x20191023;
		q->u.ek.fw_version[1] = 0x00163636;
		q->u.ek.spec_level = 0;
		q->u.ek.spec_revision = 164;
		q->u.ek.key_len = MGR_EK_RSA_LEN;
		fill(q->u.ek.key, MGR_EK_RSA_LEN, 0xc0);
		break;
	case MGR_MSG_MANUFACTURED:
		q->u.made.result = 0;
		q->u.made.elapsed_ms = 1234;
		break;
	case MGR_MSG_PCR_READ:
		q->u.pcr_read.pcr_mask = 0x810481;
		break;
	case MGR_MSG_PCR_REPORT:
		q->u.pcr_report.pcr_mask = 0x810481;
		q->u.pcr_report.count = 5;
		for (int i = 0; i < 5; i++)
			fill(q->u.pcr_report.digest[i], 32, (uint8_t)(0x22 * i));
		break;
	case MGR_MSG_XEN_PEER:
	case MGR_MSG_XEN_PEER_STATE:
		q->u.xen_peer.domid = 0x1234;
		q->u.xen_peer.devid = 3;
		break;
	default:
		break;
	}
}

/* One successful response of every type. */
static void sample_rsp(enum mgr_msg t, struct mgr_rsp *s)
{
	memset(s, 0, sizeof(*s));
	s->type = t;
	switch (t) {
	case MGR_MSG_LOADHASHKEY:
		s->u.load.generation = 42;
		fill(s->u.load.state_hash, 32, 0x60);
		fill(s->u.load.state_key, 32, 0x80);
		s->u.load.flags = MGR_LOAD_FLAG_NOSTATE;
		break;
	case MGR_MSG_GET_QUOTE:
		s->u.quote.attest_len = 40;
		fill(s->u.quote.attest, 40, 0x30);
		s->u.quote.sig_len = 20;
		fill(s->u.quote.sig, 20, 0x90);
		break;
	case MGR_MSG_GROUP_LIST:
		s->u.group_list.count = 4;
		s->u.group_list.group_id[0] = 0;
		s->u.group_list.group_id[1] = 2;
		s->u.group_list.group_id[2] = 5;
		s->u.group_list.group_id[3] = 0x10000;
		break;
	case MGR_MSG_GROUP_NEW:
		s->u.group_new.group_id = 9;
		break;
	case MGR_MSG_VTPM_LIST:
		s->u.vtpm_list.total = 10;
		s->u.vtpm_list.count = 3;
		fill(s->u.vtpm_list.uuid[0], 16, 0x00);
		fill(s->u.vtpm_list.uuid[1], 16, 0x01);
		fill(s->u.vtpm_list.uuid[2], 16, 0xf0);
		break;
	case MGR_MSG_VTPM_NEW:
		fill(s->u.vtpm_new.uuid, 16, 0x50);
		break;
	case MGR_MSG_EK_CERTIFY:
		s->u.ek.cert_len = 100;
		fill(s->u.ek.cert, 100, 0x30);
		break;
	case MGR_MSG_PCR_READ:
		s->u.pcr_read.pcr_mask = 0x810481; /* PCRs 0, 7, 10, 16, 23 */
		s->u.pcr_read.count = 5;
		for (int i = 0; i < 5; i++)
			fill(s->u.pcr_read.digest[i], 32, (uint8_t)(0x11 * i));
		break;
	case MGR_MSG_PCR_FETCH:
		s->u.pcr_fetch.pcr_mask = 0x810481;
		break;
	case MGR_MSG_XEN_PEER:
		fill(s->u.xen_peer.uuid, 16, 0x70);
		break;
	case MGR_MSG_XEN_PEER_STATE:
		s->u.xen_state.state = MGR_XEN_SUSPENDED;
		break;
	default:
		break;
	}
}

static void encode_req_ok(enum mgr_msg t, uint8_t *buf, size_t *len)
{
	struct mgr_req q;

	sample_req(t, &q);
	assert_int_equal(mgrproto_encode_req(&q, buf, len), 0);
}

static void encode_rsp_ok(enum mgr_msg t, uint8_t *buf, size_t *len)
{
	sample_rsp(t, &rsp_a);
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, len), 0);
}

/* Decodes, re-encodes and demands the same bytes: one encoding only. */
static void assert_req_canonical(const uint8_t *buf, size_t len)
{
	uint8_t re[MGR_MAX_FRAME];
	struct mgr_req q;
	size_t rl;

	assert_int_equal(mgrproto_decode_req(buf, len, &q), 0);
	assert_int_equal(mgrproto_encode_req(&q, re, &rl), 0);
	assert_int_equal(rl, len);
	assert_memory_equal(re, buf, len);
}

static void assert_rsp_canonical(enum mgr_msg t, const uint8_t *buf, size_t len)
{
	uint8_t re[MGR_MAX_FRAME];
	size_t rl;

	assert_int_equal(mgrproto_decode_rsp(t, buf, len, &rsp_b), 0);
	assert_int_equal(mgrproto_encode_rsp(&rsp_b, re, &rl), 0);
	assert_int_equal(rl, len);
	assert_memory_equal(re, buf, len);
}

static void every_request_round_trips(void **state)
{
	(void)state;
	for (int t = 0; t < MGR_MSG_COUNT; t++) {
		uint8_t buf[MGR_MAX_FRAME];
		struct mgr_req in, out;
		size_t len;

		sample_req((enum mgr_msg)t, &in);
		assert_int_equal(mgrproto_encode_req(&in, buf, &len), 0);
		assert_int_equal(be16_get(buf), mgrproto_msg_tag((enum mgr_msg)t));
		assert_int_equal(be32_get(buf + 2), len);
		assert_int_equal(be32_get(buf + 6), mgrproto_msg_ordinal((enum mgr_msg)t));
		assert_int_equal(mgrproto_frame_len(buf, len), (int)len);
		assert_int_equal(mgrproto_decode_req(buf, len, &out), 0);
		assert_int_equal(out.type, t);
		assert_req_canonical(buf, len);
	}
}

static void decoded_request_fields_match(void **state)
{
	uint8_t buf[MGR_MAX_FRAME];
	struct mgr_req in, out;
	size_t len;

	(void)state;
	encode_req_ok(MGR_MSG_GET_QUOTE, buf, &len);
	sample_req(MGR_MSG_GET_QUOTE, &in);
	assert_int_equal(mgrproto_decode_req(buf, len, &out), 0);
	assert_int_equal(out.u.quote.nonce_len, 5);
	assert_memory_equal(out.u.quote.nonce, in.u.quote.nonce, MGR_NONCE_MAX);
	assert_memory_equal(out.u.quote.pcr_digest, in.u.quote.pcr_digest, 32);
	assert_int_equal(out.u.quote.pcr_mask, 0x481);

	encode_req_ok(MGR_MSG_VTPM_NEW, buf, &len);
	sample_req(MGR_MSG_VTPM_NEW, &in);
	assert_int_equal(mgrproto_decode_req(buf, len, &out), 0);
	assert_int_equal(out.u.vtpm_new.group_id, 7);
	assert_memory_equal(out.u.vtpm_new.uuid, in.u.vtpm_new.uuid, 16);
	assert_int_equal(out.u.vtpm_new.tpm_version, 2);

	encode_req_ok(MGR_MSG_VTPM_LIST, buf, &len);
	assert_int_equal(mgrproto_decode_req(buf, len, &out), 0);
	assert_int_equal(out.u.vtpm_list.group_id, 3);
	assert_int_equal(out.u.vtpm_list.offset, 254);
}

static void every_response_round_trips(void **state)
{
	(void)state;
	for (int t = 0; t < MGR_MSG_COUNT; t++) {
		uint8_t buf[MGR_MAX_FRAME];
		size_t len;

		encode_rsp_ok((enum mgr_msg)t, buf, &len);
		assert_int_equal(be16_get(buf), mgrproto_msg_tag((enum mgr_msg)t) + 3);
		assert_int_equal(be32_get(buf + 6), MGR_SUCCESS);
		assert_int_equal(mgrproto_frame_len(buf, len), (int)len);
		assert_rsp_canonical((enum mgr_msg)t, buf, len);
		assert_int_equal(rsp_b.status, MGR_SUCCESS);
		assert_int_equal(rsp_b.type, t);
	}
}

static void decoded_response_fields_match(void **state)
{
	uint8_t buf[MGR_MAX_FRAME];
	size_t len;

	(void)state;
	encode_rsp_ok(MGR_MSG_LOADHASHKEY, buf, &len);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_LOADHASHKEY, buf, len, &rsp_b), 0);
	assert_int_equal(rsp_b.u.load.generation, 42);
	assert_memory_equal(rsp_b.u.load.state_hash, rsp_a.u.load.state_hash, 32);
	assert_memory_equal(rsp_b.u.load.state_key, rsp_a.u.load.state_key, 32);
	assert_int_equal(rsp_b.u.load.flags, MGR_LOAD_FLAG_NOSTATE);

	encode_rsp_ok(MGR_MSG_GET_QUOTE, buf, &len);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_GET_QUOTE, buf, len, &rsp_b), 0);
	assert_int_equal(rsp_b.u.quote.attest_len, 40);
	assert_memory_equal(rsp_b.u.quote.attest, rsp_a.u.quote.attest, 40);
	assert_int_equal(rsp_b.u.quote.sig_len, 20);
	assert_memory_equal(rsp_b.u.quote.sig, rsp_a.u.quote.sig, 20);

	encode_rsp_ok(MGR_MSG_VTPM_LIST, buf, &len);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_VTPM_LIST, buf, len, &rsp_b), 0);
	assert_int_equal(rsp_b.u.vtpm_list.total, 10);
	assert_int_equal(rsp_b.u.vtpm_list.count, 3);
	assert_memory_equal(rsp_b.u.vtpm_list.uuid, rsp_a.u.vtpm_list.uuid, 3 * 16);

	encode_rsp_ok(MGR_MSG_GROUP_LIST, buf, &len);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_GROUP_LIST, buf, len, &rsp_b), 0);
	assert_int_equal(rsp_b.u.group_list.count, 4);
	assert_int_equal(rsp_b.u.group_list.group_id[3], 0x10000);
}

static void error_responses_round_trip_without_payload(void **state)
{
	(void)state;
	for (int t = 0; t < MGR_MSG_COUNT; t++) {
		for (uint32_t st = 1; st < MGR_STATUS_COUNT; st++) {
			uint8_t buf[MGR_MAX_FRAME];
			size_t len;

			/* The payload of a failed response is never sent. */
			sample_rsp((enum mgr_msg)t, &rsp_a);
			rsp_a.status = st;
			assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, &len), 0);
			assert_int_equal(len, MGR_HDR_LEN);
			assert_rsp_canonical((enum mgr_msg)t, buf, len);
			assert_int_equal(rsp_b.status, st);
		}
	}
}

/* The byte tables of docs/manager-protocol.md, as frames. */
static void frames_match_the_documented_bytes(void **state)
{
	static const uint8_t save[] = {
		0x01, 0xc1, 0, 0, 0, 50, 0, 0, 0, 1,
		1, 2, 3, 4, 5, 6, 7, 8,
		0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
		0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
		0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7,
		0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
	};
	static const uint8_t vnew[] = {
		0x01, 0xc2, 0, 0, 0, 31, 0x02, 0, 0x02, 0x04,
		0, 0, 0, 7,
		0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
		0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
		2,
	};
	static const uint8_t notfound2[] = { 0x01, 0xc5, 0, 0, 0, 10, 0, 0, 0, 6 };
	uint8_t buf[MGR_MAX_FRAME];
	size_t len;

	(void)state;
	encode_req_ok(MGR_MSG_SAVEHASHKEY, buf, &len);
	assert_int_equal(len, sizeof(save));
	assert_memory_equal(buf, save, sizeof(save));
	encode_req_ok(MGR_MSG_VTPM_NEW, buf, &len);
	assert_int_equal(len, sizeof(vnew));
	assert_memory_equal(buf, vnew, sizeof(vnew));
	sample_rsp(MGR_MSG_VTPM_DEL, &rsp_a);
	rsp_a.status = MGR_NOT_FOUND;
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, &len), 0);
	assert_int_equal(len, sizeof(notfound2));
	assert_memory_equal(buf, notfound2, sizeof(notfound2));
	/* LOADHASHKEY: 86 bytes, request tag + 3. */
	encode_rsp_ok(MGR_MSG_LOADHASHKEY, buf, &len);
	assert_int_equal(len, 86);
	assert_int_equal(be16_get(buf), 0x01c4);
	assert_int_equal(be32_get(buf + 82), 1);
}

static void largest_messages_fill_one_frame(void **state)
{
	uint8_t buf[MGR_MAX_FRAME];
	size_t len;

	(void)state;
	sample_rsp(MGR_MSG_GROUP_LIST, &rsp_a);
	rsp_a.u.group_list.count = MGR_GROUP_LIST_MAX;
	for (uint32_t i = 0; i < MGR_GROUP_LIST_MAX; i++)
		rsp_a.u.group_list.group_id[i] = i * 3;
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, &len), 0);
	assert_true(len <= MGR_MAX_FRAME);
	assert_rsp_canonical(MGR_MSG_GROUP_LIST, buf, len);

	sample_rsp(MGR_MSG_VTPM_LIST, &rsp_a);
	rsp_a.u.vtpm_list.count = rsp_a.u.vtpm_list.total = MGR_VTPM_LIST_MAX;
	for (uint32_t i = 0; i < MGR_VTPM_LIST_MAX; i++) {
		memset(rsp_a.u.vtpm_list.uuid[i], 0, 16);
		be32_put(rsp_a.u.vtpm_list.uuid[i] + 12, i + 1);
	}
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, &len), 0);
	assert_true(len <= MGR_MAX_FRAME);
	assert_rsp_canonical(MGR_MSG_VTPM_LIST, buf, len);

	sample_rsp(MGR_MSG_GET_QUOTE, &rsp_a);
	rsp_a.u.quote.attest_len = MGR_QUOTE_BLOB_MAX;
	rsp_a.u.quote.sig_len = 1;
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, &len), 0);
	assert_int_equal(len, MGR_MAX_FRAME);
	assert_rsp_canonical(MGR_MSG_GET_QUOTE, buf, len);
	rsp_a.u.quote.sig_len = 2;
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, &len), MGR_ERR_RANGE);
}

/* Every frame of the samples, requests and responses. */
struct frame {
	int is_rsp;
	enum mgr_msg type;
	uint8_t buf[MGR_MAX_FRAME];
	size_t len;
};

static int decode_any(const struct frame *f, const uint8_t *buf, size_t len)
{
	struct mgr_req q;

	if (f->is_rsp)
		return mgrproto_decode_rsp(f->type, buf, len, &rsp_b);
	return mgrproto_decode_req(buf, len, &q);
}

static void for_each_frame(void (*fn)(const struct frame *))
{
	static struct frame f;

	for (int rsp = 0; rsp < 2; rsp++) {
		for (int t = 0; t < MGR_MSG_COUNT; t++) {
			f.is_rsp = rsp;
			f.type = (enum mgr_msg)t;
			if (rsp)
				encode_rsp_ok(f.type, f.buf, &f.len);
			else
				encode_req_ok(f.type, f.buf, &f.len);
			fn(&f);
		}
	}
}

static void truncations_of(const struct frame *f)
{
	uint8_t b[MGR_MAX_FRAME];

	for (size_t n = 0; n < f->len; n++) {
		int rc = decode_any(f, f->buf, n);

		assert_int_equal(rc, n < MGR_HDR_LEN ? MGR_ERR_SHORT : MGR_ERR_TRUNCATED);
		assert_int_equal(mgrproto_frame_len(f->buf, n), 0);
		/* Cut, and the size field made to agree: the payload is short. */
		if (n >= MGR_HDR_LEN) {
			memcpy(b, f->buf, n);
			be32_put(b + 2, (uint32_t)n);
			rc = decode_any(f, b, n);
			if (rc != MGR_ERR_PAYLOAD_SHORT)
				fail_msg("%s %s cut to %zu: %s",
					 mgrproto_msg_name(f->type),
					 f->is_rsp ? "rsp" : "req", n,
					 mgrproto_strerror(rc));
		}
	}
}

static void every_truncation_is_refused(void **state)
{
	(void)state;
	for_each_frame(truncations_of);
}

static void extensions_of(const struct frame *f)
{
	uint8_t b[MGR_MAX_FRAME];

	memcpy(b, f->buf, f->len);
	b[f->len] = 0;
	/* One more byte than the size field says. */
	assert_int_equal(decode_any(f, b, f->len + 1), MGR_ERR_TRAILING);
	/* The size field lying upwards and downwards. */
	be32_put(b + 2, (uint32_t)f->len + 1);
	assert_int_equal(decode_any(f, b, f->len), MGR_ERR_TRUNCATED);
	assert_int_equal(mgrproto_frame_len(b, f->len), 0);
	if (f->len > MGR_HDR_LEN) {
		be32_put(b + 2, (uint32_t)f->len - 1);
		assert_int_equal(decode_any(f, b, f->len), MGR_ERR_TRAILING);
		assert_int_equal(mgrproto_frame_len(b, f->len), (int)f->len - 1);
	}
	/* An honest frame with one byte too many: the payload is long. */
	be32_put(b + 2, (uint32_t)f->len + 1);
	assert_int_equal(decode_any(f, b, f->len + 1), MGR_ERR_PAYLOAD_LONG);
	/* Sizes outside the protocol's range. */
	for (uint32_t sz = 0; sz < MGR_HDR_LEN; sz++) {
		be32_put(b + 2, sz);
		assert_int_equal(decode_any(f, b, f->len), MGR_ERR_SIZE);
		assert_int_equal(mgrproto_frame_len(b, f->len), MGR_ERR_SIZE);
	}
	be32_put(b + 2, MGR_MAX_FRAME + 1);
	assert_int_equal(decode_any(f, b, f->len), MGR_ERR_SIZE);
	assert_int_equal(mgrproto_frame_len(b, f->len), MGR_ERR_SIZE);
	be32_put(b + 2, 0xffffffffu);
	assert_int_equal(decode_any(f, b, f->len), MGR_ERR_SIZE);
}

static void size_field_lies_are_refused(void **state)
{
	(void)state;
	for_each_frame(extensions_of);
}

static int is_one_of(int rc, const int *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (rc == set[i])
			return 1;
	return 0;
}

/*
 * Flipping any bits of any byte: the header is always refused, with the
 * error of the field; in the payload only the bounded fields are checked
 * (hashes, keys and UUIDs are opaque), and whatever is accepted must
 * re-encode to the flipped bytes.
 */
static void flips_of(const struct frame *f)
{
	static const int tag_errs[] = { MGR_ERR_TAG, MGR_ERR_WRONG_TAG };
	static const int size_errs[] = { MGR_ERR_SIZE, MGR_ERR_TRUNCATED,
					 MGR_ERR_TRAILING };
	/* An ordinal flipped into another type's is read as that type. */
	static const int code_errs[] = { MGR_ERR_ORDINAL, MGR_ERR_WRONG_TAG,
					 MGR_ERR_STATUS, MGR_ERR_PAYLOAD_SHORT,
					 MGR_ERR_PAYLOAD_LONG, MGR_ERR_RANGE };
	static const int body_errs[] = { MGR_ERR_PAYLOAD_SHORT,
					 MGR_ERR_PAYLOAD_LONG, MGR_ERR_RANGE,
					 MGR_ERR_ORDER };
	uint8_t b[MGR_MAX_FRAME];

	for (size_t pos = 0; pos < f->len; pos++) {
		for (unsigned x = 1; x < 256; x++) {
			int rc;

			memcpy(b, f->buf, f->len);
			b[pos] ^= (uint8_t)x;
			rc = decode_any(f, b, f->len);
			if (pos < 2) {
				assert_true(is_one_of(rc, tag_errs, 2));
			} else if (pos < 6) {
				assert_true(is_one_of(rc, size_errs, 3));
			} else if (rc == 0) {
				if (f->is_rsp)
					assert_rsp_canonical(f->type, b, f->len);
				else
					assert_req_canonical(b, f->len);
			} else if (pos < 10) {
				if (!is_one_of(rc, code_errs, 6))
					fail_msg("%s code flip %zu^%u: %s",
						 mgrproto_msg_name(f->type), pos, x,
						 mgrproto_strerror(rc));
			} else if (!is_one_of(rc, body_errs, 4)) {
				fail_msg("%s payload flip %zu^%u: %s",
					 mgrproto_msg_name(f->type), pos, x,
					 mgrproto_strerror(rc));
			}
		}
	}
}

static void every_byte_flip_is_refused_or_canonical(void **state)
{
	(void)state;
	for_each_frame(flips_of);
}

static int flip_req(enum mgr_msg t, size_t pos, uint8_t x)
{
	uint8_t buf[MGR_MAX_FRAME];
	struct mgr_req q;
	size_t len;

	encode_req_ok(t, buf, &len);
	buf[pos] ^= x;
	return mgrproto_decode_req(buf, len, &q);
}

/* Fields whose every flip the format can see. */
static void bounded_fields_refuse_every_flip(void **state)
{
	(void)state;
	for (unsigned x = 1; x < 256; x++) {
		int rc;

		/* nonce_len: the payload no longer adds up, or it is > 32. */
		rc = flip_req(MGR_MSG_GET_QUOTE, MGR_HDR_LEN, (uint8_t)x);
		assert_true(rc == MGR_ERR_RANGE || rc == MGR_ERR_PAYLOAD_SHORT ||
			    rc == MGR_ERR_PAYLOAD_LONG);
		/* The top byte of the PCR mask: there are 24 PCRs. */
		rc = flip_req(MGR_MSG_GET_QUOTE, MGR_HDR_LEN + 1 + 5 + 32, (uint8_t)x);
		assert_int_equal(rc, MGR_ERR_RANGE);
		/* tpm_version: only 1 and 2. */
		rc = flip_req(MGR_MSG_VTPM_NEW, MGR_HDR_LEN + 4 + 16, (uint8_t)x);
		assert_int_equal(rc, (2 ^ x) == 1 ? 0 : MGR_ERR_RANGE);
		/* The request tag: another request tag is a wrong tag. */
		rc = flip_req(MGR_MSG_SAVEHASHKEY, 1, (uint8_t)x);
		assert_int_equal(rc, (0xc1 ^ x) == 0xc2 || (0xc1 ^ x) == 0xc3
					     ? MGR_ERR_WRONG_TAG
					     : MGR_ERR_TAG);
	}
}

static void request_under_the_other_tag_is_invalid(void **state)
{
	uint8_t buf[MGR_MAX_FRAME];
	struct mgr_req q;
	size_t len;
	int rc;

	(void)state;
	encode_req_ok(MGR_MSG_GROUP_NEW, buf, &len);
	be16_put(buf, MGR_TAG_REQ);
	rc = mgrproto_decode_req(buf, len, &q);
	assert_int_equal(rc, MGR_ERR_WRONG_TAG);
	assert_int_equal(mgrproto_err_status(rc), MGR_INVALID_REQUEST);
	encode_req_ok(MGR_MSG_LOADHASHKEY, buf, &len);
	be16_put(buf, MGR_TAG_REQ2);
	assert_int_equal(mgrproto_decode_req(buf, len, &q), MGR_ERR_WRONG_TAG);
	/* A response tag is not a request. */
	be16_put(buf, MGR_TAG_RSP);
	assert_int_equal(mgrproto_decode_req(buf, len, &q), MGR_ERR_TAG);
	/* An unknown ordinal is unsupported, not invalid. */
	be16_put(buf, MGR_TAG_REQ);
	be32_put(buf + 6, 0x3);
	rc = mgrproto_decode_req(buf, len, &q);
	assert_int_equal(rc, MGR_ERR_ORDINAL);
	assert_int_equal(mgrproto_err_status(rc), MGR_UNSUPPORTED);
	be16_put(buf, MGR_TAG_REQ2);
	be32_put(buf + 6, MGR_PRIV_BASE + 0x104);
	assert_int_equal(mgrproto_decode_req(buf, len, &q), MGR_ERR_ORDINAL);
}

static void response_under_the_wrong_tag_is_refused(void **state)
{
	uint8_t buf[MGR_MAX_FRAME];
	size_t len;

	(void)state;
	encode_rsp_ok(MGR_MSG_VTPM_NEW, buf, &len);
	be16_put(buf, MGR_TAG_RSP);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_VTPM_NEW, buf, len, &rsp_b),
			 MGR_ERR_WRONG_TAG);
	be16_put(buf, MGR_TAG_REQ2);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_VTPM_NEW, buf, len, &rsp_b),
			 MGR_ERR_TAG);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_COUNT, buf, len, &rsp_b),
			 MGR_ERR_TYPE);
}

static void failed_response_with_payload_is_refused(void **state)
{
	uint8_t buf[MGR_MAX_FRAME];
	size_t len;

	(void)state;
	encode_rsp_ok(MGR_MSG_LOADHASHKEY, buf, &len);
	be32_put(buf + 6, MGR_FAIL);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_LOADHASHKEY, buf, len, &rsp_b),
			 MGR_ERR_PAYLOAD_LONG);
	/* Nothing of the key is left in the decoded struct. */
	for (size_t i = 0; i < 32; i++)
		assert_int_equal(rsp_b.u.load.state_key[i], 0);
	be32_put(buf + 6, MGR_STATUS_COUNT);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_LOADHASHKEY, buf, len, &rsp_b),
			 MGR_ERR_STATUS);
	be32_put(buf + 6, 0x0000001e); /* a TCG code such as TPM_BAD_... */
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_LOADHASHKEY, buf, len, &rsp_b),
			 MGR_ERR_STATUS);
}

/* One change to a sample frame: a big-endian field of width 1, 2 or 4
 * bytes at off set to v, then the decoder's verdict (or none, to change
 * two fields at once).  Each step keeps the changes before it. */
#define NO_CHECK 1 /* no decoder returns 1 */
struct patch {
	size_t off;
	int width;
	uint32_t v;
	int want;
};

static void put_field(uint8_t *p, int width, uint32_t v)
{
	if (width == 1)
		p[0] = (uint8_t)v;
	else if (width == 2)
		be16_put(p, (uint16_t)v);
	else
		be32_put(p, v);
}

static void patched(int is_rsp, enum mgr_msg t, const struct patch *p,
		    size_t n)
{
	uint8_t buf[MGR_MAX_FRAME];
	struct mgr_req q;
	size_t len;

	if (is_rsp)
		encode_rsp_ok(t, buf, &len);
	else
		encode_req_ok(t, buf, &len);
	for (size_t i = 0; i < n; i++) {
		int rc;

		put_field(buf + p[i].off, p[i].width, p[i].v);
		if (p[i].want == NO_CHECK)
			continue;
		rc = is_rsp ? mgrproto_decode_rsp(t, buf, len, &rsp_b)
			    : mgrproto_decode_req(buf, len, &q);
		if (rc != p[i].want)
			fail_msg("%s %s, step %zu: %s, want %s",
				 mgrproto_msg_name(t), is_rsp ? "rsp" : "req", i,
				 mgrproto_strerror(rc),
				 mgrproto_strerror(p[i].want));
	}
}

#define PATCHED(is_rsp, t, ...)                                                \
	do {                                                                   \
		static const struct patch p_[] = { __VA_ARGS__ };              \
		patched(is_rsp, t, p_, sizeof(p_) / sizeof(p_[0]));            \
	} while (0)

static void oversized_counts_and_lengths_are_refused(void **state)
{
	(void)state;
	/* GROUP_LIST: 4 ids in the payload. */
	PATCHED(1, MGR_MSG_GROUP_LIST,
		{ 10, 4, MGR_GROUP_LIST_MAX + 1, MGR_ERR_RANGE },
		{ 10, 4, 0xffffffffu, MGR_ERR_RANGE },
		{ 10, 4, 5, MGR_ERR_PAYLOAD_SHORT },
		{ 10, 4, 3, MGR_ERR_PAYLOAD_LONG });
	/* VTPM_LIST: total 10, count 3. */
	PATCHED(1, MGR_MSG_VTPM_LIST,
		{ 14, 4, MGR_VTPM_LIST_MAX + 1, NO_CHECK },
		{ 10, 4, 0xffffffffu, MGR_ERR_RANGE },
		{ 10, 4, 2, NO_CHECK }, /* count above total */
		{ 14, 4, 3, MGR_ERR_RANGE },
		{ 10, 4, 10, NO_CHECK },
		{ 14, 4, 4, MGR_ERR_PAYLOAD_SHORT },
		{ 14, 4, 2, MGR_ERR_PAYLOAD_LONG });
	/* GET_QUOTE response: attest 40, sig 20. */
	PATCHED(1, MGR_MSG_GET_QUOTE,
		{ 10, 2, 63, MGR_ERR_PAYLOAD_SHORT }, /* past the payload */
		{ 10, 2, 0, MGR_ERR_RANGE },
		{ 10, 2, 0xffff, MGR_ERR_RANGE },
		{ 10, 2, 40, NO_CHECK },
		{ 52, 2, 0, MGR_ERR_RANGE },
		{ 52, 2, 19, MGR_ERR_PAYLOAD_LONG },
		{ 52, 2, 21, MGR_ERR_PAYLOAD_SHORT });
	/* GET_QUOTE request: nonce_len 5. */
	PATCHED(0, MGR_MSG_GET_QUOTE,
		{ 10, 1, MGR_NONCE_MAX + 1, MGR_ERR_RANGE },
		{ 10, 1, 0xff, MGR_ERR_RANGE },
		{ 10, 1, 6, MGR_ERR_PAYLOAD_SHORT },
		{ 10, 1, 4, MGR_ERR_PAYLOAD_LONG });
}

static void duplicate_list_entries_are_refused(void **state)
{
	uint8_t buf[MGR_MAX_FRAME];
	size_t len;

	(void)state;
	encode_rsp_ok(MGR_MSG_GROUP_LIST, buf, &len);
	be32_put(buf + 18, 0); /* second id equal to the first */
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_GROUP_LIST, buf, len, &rsp_b),
			 MGR_ERR_ORDER);
	encode_rsp_ok(MGR_MSG_VTPM_LIST, buf, &len);
	memcpy(buf + 18 + 16, buf + 18, 16);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_VTPM_LIST, buf, len, &rsp_b),
			 MGR_ERR_ORDER);
	encode_rsp_ok(MGR_MSG_VTPM_LIST, buf, &len);
	buf[18 + 32] = 0; /* third below the second */
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_VTPM_LIST, buf, len, &rsp_b),
			 MGR_ERR_ORDER);
	/* The encoder holds the manager to the same rule. */
	sample_rsp(MGR_MSG_GROUP_LIST, &rsp_a);
	rsp_a.u.group_list.group_id[2] = 2;
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, &len), MGR_ERR_ORDER);
}

static void encoders_refuse_what_decoders_refuse(void **state)
{
	uint8_t buf[MGR_MAX_FRAME];
	struct mgr_req q;
	size_t len;

	(void)state;
	sample_req(MGR_MSG_GET_QUOTE, &q);
	q.u.quote.nonce_len = MGR_NONCE_MAX + 1;
	assert_int_equal(mgrproto_encode_req(&q, buf, &len), MGR_ERR_RANGE);
	sample_req(MGR_MSG_GET_QUOTE, &q);
	q.u.quote.pcr_mask = 1u << 24;
	assert_int_equal(mgrproto_encode_req(&q, buf, &len), MGR_ERR_RANGE);
	sample_req(MGR_MSG_VTPM_NEW, &q);
	q.u.vtpm_new.tpm_version = 3;
	assert_int_equal(mgrproto_encode_req(&q, buf, &len), MGR_ERR_RANGE);
	q.type = MGR_MSG_COUNT;
	assert_int_equal(mgrproto_encode_req(&q, buf, &len), MGR_ERR_TYPE);

	sample_rsp(MGR_MSG_LOADHASHKEY, &rsp_a);
	rsp_a.u.load.flags = 8;
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, &len), MGR_ERR_RANGE);
	rsp_a.status = MGR_STATUS_COUNT;
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, &len), MGR_ERR_STATUS);
	sample_rsp(MGR_MSG_GROUP_LIST, &rsp_a);
	rsp_a.u.group_list.count = MGR_GROUP_LIST_MAX + 1;
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, &len), MGR_ERR_RANGE);
	sample_rsp(MGR_MSG_VTPM_LIST, &rsp_a);
	rsp_a.u.vtpm_list.total = 2;
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, &len), MGR_ERR_RANGE);
	sample_rsp(MGR_MSG_GET_QUOTE, &rsp_a);
	rsp_a.u.quote.sig_len = 0;
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, &len), MGR_ERR_RANGE);
}

/* The encoder's cursor refuses a message too big for one frame before it
 * writes past the frame (issue 11: one cursor reads and writes). */
static void encoder_never_writes_past_the_frame(void **state)
{
	uint8_t buf[MGR_MAX_FRAME + 64];
	size_t len = 0;

	(void)state;
	sample_rsp(MGR_MSG_GET_QUOTE, &rsp_a);
	rsp_a.u.quote.attest_len = MGR_QUOTE_BLOB_MAX;
	rsp_a.u.quote.sig_len = MGR_QUOTE_BLOB_MAX;
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, &len), MGR_ERR_RANGE);
	assert_int_equal(len, 0);
	for (size_t i = MGR_MAX_FRAME; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xee);
	/* Exactly one full frame is fine. */
	rsp_a.u.quote.sig_len = MGR_MAX_PAYLOAD - 4 - MGR_QUOTE_BLOB_MAX;
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, &len), 0);
	assert_int_equal(len, MGR_MAX_FRAME);
	for (size_t i = MGR_MAX_FRAME; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xee);
}

static void load_flags_beyond_nostate_are_refused(void **state)
{
	uint8_t buf[MGR_MAX_FRAME];
	size_t len;

	(void)state;
	encode_rsp_ok(MGR_MSG_LOADHASHKEY, buf, &len);
	be32_put(buf + 82, 3); /* NOSTATE | MANUFACTURE */
	assert_rsp_canonical(MGR_MSG_LOADHASHKEY, buf, len);
	be32_put(buf + 82, 7); /* NOSTATE | MANUFACTURE | TRAIL */
	assert_rsp_canonical(MGR_MSG_LOADHASHKEY, buf, len);
	be32_put(buf + 82, 8);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_LOADHASHKEY, buf, len, &rsp_b),
			 MGR_ERR_RANGE);
	be32_put(buf + 82, 0x80000004u);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_LOADHASHKEY, buf, len, &rsp_b),
			 MGR_ERR_RANGE);
	be32_put(buf + 82, 0);
	assert_rsp_canonical(MGR_MSG_LOADHASHKEY, buf, len);
}

/* EK_CERTIFY: the key's length follows from its kind, the model is text,
 * and a certificate is never empty nor longer than a frame holds. */
static void ek_certify_fields_are_checked(void **state)
{
	uint8_t buf[MGR_MAX_FRAME];
	struct mgr_req q, out;
	size_t len;

	(void)state;
	sample_req(MGR_MSG_EK_CERTIFY, &q);
	q.u.ek.kind = MGR_EK_KIND_ECC; /* with a 256-byte key */
	assert_int_equal(mgrproto_encode_req(&q, buf, &len), MGR_ERR_RANGE);
	q.u.ek.key_len = MGR_EK_ECC_LEN;
	assert_int_equal(mgrproto_encode_req(&q, buf, &len), 0);
	assert_int_equal(len, MGR_HDR_LEN + 39 + MGR_EK_ECC_LEN);
	assert_int_equal(mgrproto_decode_req(buf, len, &out), 0);
	assert_int_equal(out.u.ek.kind, MGR_EK_KIND_ECC);
	assert_memory_equal(out.u.ek.key, q.u.ek.key, MGR_EK_ECC_LEN);
	/* An ECC key claimed to be RSA: the payload is short of its key. */
	buf[MGR_HDR_LEN] = MGR_EK_KIND_PLATFORM;
	be16_put(buf + MGR_HDR_LEN + 37, MGR_EK_RSA_LEN);
	assert_int_equal(mgrproto_decode_req(buf, len, &out),
			 MGR_ERR_PAYLOAD_SHORT);
	for (unsigned k = 0; k < 256; k++) {
		sample_req(MGR_MSG_EK_CERTIFY, &q);
		q.u.ek.kind = (uint8_t)k;
		assert_int_equal(mgrproto_encode_req(&q, buf, &len),
				 k == MGR_EK_KIND_RSA || k == MGR_EK_KIND_PLATFORM
					 ? 0
					 : MGR_ERR_RANGE);
	}
	sample_req(MGR_MSG_EK_CERTIFY, &q);
	q.u.ek.key_len = MGR_EK_RSA_LEN + 1;
	assert_int_equal(mgrproto_encode_req(&q, buf, &len), MGR_ERR_RANGE);
	sample_req(MGR_MSG_EK_CERTIFY, &q);
	q.u.ek.model[3] = '\n';
	assert_int_equal(mgrproto_encode_req(&q, buf, &len), MGR_ERR_RANGE);
	q.u.ek.model[3] = 0x80;
	assert_int_equal(mgrproto_encode_req(&q, buf, &len), MGR_ERR_RANGE);

	sample_rsp(MGR_MSG_EK_CERTIFY, &rsp_a);
	rsp_a.u.ek.cert_len = 0;
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, &len), MGR_ERR_RANGE);
	rsp_a.u.ek.cert_len = MGR_EKCERT_MAX;
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, &len), 0);
	assert_int_equal(len, MGR_MAX_FRAME);
	assert_rsp_canonical(MGR_MSG_EK_CERTIFY, buf, len);
	rsp_a.u.ek.cert_len = MGR_EKCERT_MAX + 1;
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, &len), MGR_ERR_RANGE);
}

static void status_reply_follows_the_request_tag(void **state)
{
	static const uint8_t req2[] = { 0x01, 0xc2, 0, 0, 0, 10, 0xde, 0xad, 0, 0 };
	static const uint8_t junk[] = { 0xff };
	uint8_t out[MGR_HDR_LEN];

	(void)state;
	mgrproto_encode_status(req2, sizeof(req2), MGR_UNSUPPORTED, out);
	assert_int_equal(be16_get(out), MGR_TAG_RSP2);
	assert_int_equal(be32_get(out + 2), MGR_HDR_LEN);
	assert_int_equal(be32_get(out + 6), MGR_UNSUPPORTED);
	mgrproto_encode_status(junk, sizeof(junk), MGR_INVALID_REQUEST, out);
	assert_int_equal(be16_get(out), MGR_TAG_RSP);
	assert_int_equal(be32_get(out + 6), MGR_INVALID_REQUEST);
	/* What the manager sends decodes as a failure of that request. */
	mgrproto_encode_status(req2, sizeof(req2), MGR_FORBIDDEN, out);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_VTPM_DEL, out, sizeof(out), &rsp_b), 0);
	assert_int_equal(rsp_b.status, MGR_FORBIDDEN);
}

static void frame_len_follows_a_stream(void **state)
{
	uint8_t two[2 * MGR_MAX_FRAME];
	size_t a, b;

	(void)state;
	encode_req_ok(MGR_MSG_SAVEHASHKEY, two, &a);
	encode_req_ok(MGR_MSG_VTPM_NEW, two + a, &b);
	assert_int_equal(mgrproto_frame_len(two, a + b), (int)a);
	assert_int_equal(mgrproto_frame_len(two + a, b), (int)b);
	assert_int_equal(mgrproto_frame_len(two, 0), 0);
	assert_int_equal(mgrproto_frame_len(two, 1), 0);
	/* A stranger is caught at its second byte. */
	two[0] = 0x80;
	two[1] = 0x01;
	assert_int_equal(mgrproto_frame_len(two, 2), MGR_ERR_TAG);
	assert_int_equal(mgrproto_frame_len(two, 1), 0);
}

static void deep_quote_qd_matches_the_documented_vector(void **state)
{
	static const uint8_t want[32] = {
		0xe6, 0x1f, 0xcb, 0x8f, 0x77, 0xad, 0x74, 0x0f,
		0xe5, 0xbb, 0xc9, 0xf0, 0xb1, 0xb6, 0x52, 0xbb,
		0xed, 0xd5, 0xc0, 0x83, 0xe3, 0x63, 0xdb, 0x4e,
		0x97, 0x12, 0x76, 0x8e, 0x26, 0x54, 0x2b, 0x51,
	};
	uint8_t uuid[16], digest[32], qd[32];

	(void)state;
	fill(uuid, 16, 0);
	fill(digest, 32, 0x20);
	assert_int_equal(mgrproto_deepquote_qd(uuid, 0x481, digest,
					       (const uint8_t *)"nonce", 5, qd), 0);
	assert_memory_equal(qd, want, 32);
}

static void deep_quote_qd_changes_with_every_input(void **state)
{
	uint8_t uuid[16], digest[32], nonce[32], base[32], qd[32];

	(void)state;
	fill(uuid, 16, 1);
	fill(digest, 32, 2);
	fill(nonce, 32, 3);
	assert_int_equal(mgrproto_deepquote_qd(uuid, 0x81, digest, nonce, 20, base), 0);
	for (size_t i = 0; i < 16 * 8; i++) {
		uuid[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_equal(mgrproto_deepquote_qd(uuid, 0x81, digest, nonce, 20, qd), 0);
		assert_memory_not_equal(qd, base, 32);
		uuid[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	for (int bit = 0; bit < 24; bit++) {
		assert_int_equal(mgrproto_deepquote_qd(uuid, 0x81 ^ (1u << bit), digest,
						       nonce, 20, qd), 0);
		assert_memory_not_equal(qd, base, 32);
	}
	for (size_t i = 0; i < 32 * 8; i++) {
		digest[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_equal(mgrproto_deepquote_qd(uuid, 0x81, digest, nonce, 20, qd), 0);
		assert_memory_not_equal(qd, base, 32);
		digest[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	for (size_t i = 0; i < 20 * 8; i++) {
		nonce[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_int_equal(mgrproto_deepquote_qd(uuid, 0x81, digest, nonce, 20, qd), 0);
		assert_memory_not_equal(qd, base, 32);
		nonce[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	/* Bytes past nonce_len do not count; nonce_len itself does. */
	nonce[25] ^= 1;
	assert_int_equal(mgrproto_deepquote_qd(uuid, 0x81, digest, nonce, 20, qd), 0);
	assert_memory_equal(qd, base, 32);
	for (size_t n = 0; n <= MGR_NONCE_MAX; n++) {
		if (n == 20)
			continue;
		assert_int_equal(mgrproto_deepquote_qd(uuid, 0x81, digest, nonce, n, qd), 0);
		assert_memory_not_equal(qd, base, 32);
	}
	assert_int_equal(mgrproto_deepquote_qd(uuid, 0x81, digest, nonce, 33, qd),
			 MGR_ERR_RANGE);
	assert_int_equal(mgrproto_deepquote_qd(uuid, 1u << 24, digest, nonce, 20, qd),
			 MGR_ERR_RANGE);
}

static void error_and_status_strings_are_distinct(void **state)
{
	(void)state;
	for (int a = MGR_ERR_CRYPTO; a <= 0; a++)
		for (int b = a + 1; b <= 0; b++)
			assert_string_not_equal(mgrproto_strerror(a), mgrproto_strerror(b));
	for (uint32_t a = 0; a <= MGR_STATUS_COUNT; a++)
		for (uint32_t b = a + 1; b <= MGR_STATUS_COUNT; b++)
			assert_string_not_equal(mgrproto_status_str(a),
						mgrproto_status_str(b));
	for (int a = 0; a < MGR_MSG_COUNT; a++)
		for (int b = a + 1; b < MGR_MSG_COUNT; b++)
			assert_int_not_equal(mgrproto_msg_ordinal((enum mgr_msg)a),
					     mgrproto_msg_ordinal((enum mgr_msg)b));
}

/* ---- PCR_READ: the manager's request, the instance's answer ---- */

/* The documented bytes: request for PCRs 0, 7, 10, 16, 23; answer. */
static void pcr_read_frames_match_the_documented_bytes(void **state)
{
	static const uint8_t req[] = { 0x01, 0xc3, 0, 0, 0, 14, 0, 0, 1, 0,
				       0, 0x81, 0x04, 0x81 };
	uint8_t buf[MGR_MAX_FRAME];
	size_t len;

	(void)state;
	encode_req_ok(MGR_MSG_PCR_READ, buf, &len);
	assert_int_equal(len, sizeof(req));
	assert_memory_equal(buf, req, sizeof(req));
	encode_rsp_ok(MGR_MSG_PCR_READ, buf, &len);
	assert_int_equal(len, MGR_HDR_LEN + 10 + 4 + 5 * 34);
	assert_int_equal(be16_get(buf), MGR_TAG_MRSP);
	assert_int_equal(be32_get(buf + 10), 1);          /* one selection */
	assert_int_equal(be16_get(buf + 14), 0x000b);     /* sha256 */
	assert_int_equal(buf[16], 3);
	assert_int_equal(buf[17], 0x81);
	assert_int_equal(buf[18], 0x04);
	assert_int_equal(buf[19], 0x81);
	assert_int_equal(be32_get(buf + 20), 5);
	assert_int_equal(be16_get(buf + 24), 32);
	/* A failure to an MREQ is answered under MRSP. */
	mgrproto_encode_status(req, sizeof(req), MGR_FAIL, buf);
	assert_int_equal(be16_get(buf), MGR_TAG_MRSP);
}

static void pcr_read_request_masks_are_checked(void **state)
{
	uint8_t buf[MGR_MAX_FRAME];
	struct mgr_req q;
	size_t len;

	(void)state;
	sample_req(MGR_MSG_PCR_READ, &q);
	q.u.pcr_read.pcr_mask = 0;
	assert_int_equal(mgrproto_encode_req(&q, buf, &len), MGR_ERR_RANGE);
	q.u.pcr_read.pcr_mask = 1u << 24;
	assert_int_equal(mgrproto_encode_req(&q, buf, &len), MGR_ERR_RANGE);
	q.u.pcr_read.pcr_mask = 0xffffff;
	assert_int_equal(mgrproto_encode_req(&q, buf, &len), 0);
	assert_req_canonical(buf, len);
	be32_put(buf + 10, 0);
	assert_int_equal(mgrproto_decode_req(buf, len, &q), MGR_ERR_RANGE);
	be32_put(buf + 10, 0x01000001);
	assert_int_equal(mgrproto_decode_req(buf, len, &q), MGR_ERR_RANGE);
	/* PCR_READ is the manager's: under an instance's REQ it is refused. */
	be32_put(buf + 10, 1);
	be16_put(buf, MGR_TAG_REQ);
	assert_int_equal(mgrproto_decode_req(buf, len, &q), MGR_ERR_WRONG_TAG);
	/* and an instance's ordinal is not the manager's to send */
	encode_req_ok(MGR_MSG_LOADHASHKEY, buf, &len);
	be16_put(buf, MGR_TAG_MREQ);
	assert_int_equal(mgrproto_decode_req(buf, len, &q), MGR_ERR_WRONG_TAG);
}

/* Every hostile shape of the answer is refused with its own error. */
static void pcr_read_hostile_answers_are_refused(void **state)
{
	uint8_t buf[MGR_MAX_FRAME], b[MGR_MAX_FRAME];
	size_t len;

	(void)state;
	encode_rsp_ok(MGR_MSG_PCR_READ, buf, &len);
#define PATCH_RSP(stmt, want)                                                  \
	do {                                                                   \
		memcpy(b, buf, len);                                           \
		stmt;                                                          \
		assert_int_equal(mgrproto_decode_rsp(MGR_MSG_PCR_READ, b, len, \
						     &rsp_b),                  \
				 want);                                        \
	} while (0)
	PATCH_RSP(be32_put(b + 10, 2), MGR_ERR_RANGE);      /* two selections */
	PATCH_RSP(be32_put(b + 10, 0), MGR_ERR_RANGE);      /* none */
	PATCH_RSP(be16_put(b + 14, 0x0004), MGR_ERR_RANGE); /* sha1 */
	PATCH_RSP(b[16] = 4, MGR_ERR_RANGE);                /* sizeofSelect */
	PATCH_RSP(b[16] = 255, MGR_ERR_RANGE);
	PATCH_RSP(be32_put(b + 20, 25), MGR_ERR_RANGE);     /* count > 24 */
	PATCH_RSP(be32_put(b + 20, 0xffffffff), MGR_ERR_RANGE);
	PATCH_RSP(be32_put(b + 20, 6), MGR_ERR_PAYLOAD_SHORT); /* count lies */
	PATCH_RSP(be32_put(b + 20, 4), MGR_ERR_PAYLOAD_LONG);
	PATCH_RSP(be16_put(b + 24, 31), MGR_ERR_RANGE);     /* digest size */
	PATCH_RSP(be16_put(b + 24, 0xffff), MGR_ERR_RANGE);
	PATCH_RSP(b[19] = 0x01, MGR_ERR_RANGE);  /* 4 PCRs, 5 digests */
	PATCH_RSP(b[19] = 0x83, MGR_ERR_RANGE);  /* 6 PCRs, 5 digests */
#undef PATCH_RSP
	/* an empty selection with no digests: below the size row */
	memcpy(b, buf, 24);
	be32_put(b + 2, 24);
	b[17] = b[18] = b[19] = 0;
	be32_put(b + 20, 0);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_PCR_READ, b, 24, &rsp_b),
			 MGR_ERR_PAYLOAD_SHORT);
	/* all 24 PCRs fit one frame and round-trip */
	sample_rsp(MGR_MSG_PCR_READ, &rsp_a);
	rsp_a.u.pcr_read.pcr_mask = 0xffffff;
	rsp_a.u.pcr_read.count = 24;
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, b, &len), 0);
	assert_rsp_canonical(MGR_MSG_PCR_READ, b, len);
	/* the encoder refuses a count that does not match the mask */
	rsp_a.u.pcr_read.count = 23;
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, b, &len), MGR_ERR_RANGE);
	rsp_a.u.pcr_read.count = 25;
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, b, &len), MGR_ERR_RANGE);
}

/* A TPM2_PCR_Read response as libtpms writes it, for PCRs in sel. */
static size_t tpm_pcr_rsp(uint8_t *out, uint32_t sel, uint8_t seed)
{
	size_t off = 14, n = 0;

	be16_put(out, 0x8001);
	be32_put(out + 6, 0);
	be32_put(out + 10, 7);        /* pcrUpdateCounter */
	be32_put(out + off, 1);
	be16_put(out + off + 4, 0x000b);
	out[off + 6] = 3;
	out[off + 7] = (uint8_t)sel;
	out[off + 8] = (uint8_t)(sel >> 8);
	out[off + 9] = (uint8_t)(sel >> 16);
	off += 10;
	be32_put(out + off, (uint32_t)__builtin_popcount(sel));
	off += 4;
	for (int i = 0; i < 24; i++) {
		if (!(sel & (1u << i)))
			continue;
		be16_put(out + off, 32);
		memset(out + off + 2, seed + i, 32);
		off += 34;
		n++;
	}
	be32_put(out + 2, (uint32_t)off);
	return off;
}

/* The ring's variant: FETCH answers a mask (0: nothing), REPORT carries
 * PCR_READ's answer as a request, with the same checks. */
static void pcr_fetch_and_report_are_checked(void **state)
{
	uint8_t buf[MGR_MAX_FRAME], rd[MGR_MAX_FRAME];
	struct mgr_req q;
	size_t len, rlen;

	(void)state;
	sample_rsp(MGR_MSG_PCR_FETCH, &rsp_a);
	rsp_a.u.pcr_fetch.pcr_mask = 0;
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, &len), 0);
	assert_rsp_canonical(MGR_MSG_PCR_FETCH, buf, len);
	assert_int_equal(rsp_b.u.pcr_fetch.pcr_mask, 0);
	be32_put(buf + 10, 0x01000000);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_PCR_FETCH, buf, len, &rsp_b),
			 MGR_ERR_RANGE);
	/* REPORT's payload is byte for byte PCR_READ's answer */
	encode_req_ok(MGR_MSG_PCR_REPORT, buf, &len);
	sample_rsp(MGR_MSG_PCR_READ, &rsp_a);
	sample_req(MGR_MSG_PCR_REPORT, &q);
	rsp_a.u.pcr_read = q.u.pcr_report;
	assert_int_equal(mgrproto_encode_rsp(&rsp_a, rd, &rlen), 0);
	assert_int_equal(rlen, len);
	assert_memory_equal(rd + 10, buf + 10, len - 10);
	/* and refused as it is */
	buf[16] = 2;
	assert_int_equal(mgrproto_decode_req(buf, len, &q), MGR_ERR_RANGE);
	encode_req_ok(MGR_MSG_PCR_REPORT, buf, &len);
	buf[19] ^= 0x80;
	assert_int_equal(mgrproto_decode_req(buf, len, &q), MGR_ERR_RANGE);
}

static void pcr_read_codec_reads_in_steps_of_eight(void **state)
{
	struct mgr_pcr_read_rsp acc;
	uint8_t cmd[MGR_PCR_READ_CMD_LEN], r[1024];
	uint32_t trc;
	size_t len;

	(void)state;
	memset(&acc, 0, sizeof(acc));
	assert_int_equal(mgrproto_pcr_read_cmd(0xffffff, &acc, cmd), 0);
	assert_int_equal(be32_get(cmd + 6), 0x17e);
	assert_int_equal(cmd[17] | cmd[18] << 8 | cmd[19] << 16, 0xffffff);
	len = tpm_pcr_rsp(r, 0x0000ff, 0);
	assert_int_equal(mgrproto_pcr_read_parse(r, len, 0xffffff, &acc, &trc), 0);
	assert_int_equal(mgrproto_pcr_read_cmd(0xffffff, &acc, cmd), 0);
	assert_int_equal(cmd[17] | cmd[18] << 8 | cmd[19] << 16, 0xffff00);
	len = tpm_pcr_rsp(r, 0x00ff00, 0);
	assert_int_equal(mgrproto_pcr_read_parse(r, len, 0xffffff, &acc, &trc), 0);
	len = tpm_pcr_rsp(r, 0xff0000, 0);
	assert_int_equal(mgrproto_pcr_read_parse(r, len, 0xffffff, &acc, &trc), 0);
	assert_int_equal(acc.pcr_mask, 0xffffff);
	assert_int_equal(acc.count, 24);
	for (int i = 0; i < 24; i++)
		assert_int_equal(acc.digest[i][0], i);
	assert_int_equal(mgrproto_pcr_read_cmd(0xffffff, &acc, cmd), MGR_ERR_RANGE);
}

static void pcr_read_codec_refuses_hostile_tpm_answers(void **state)
{
	struct mgr_pcr_read_rsp acc;
	uint8_t r[1024];
	uint32_t trc;
	size_t len;

	(void)state;
	memset(&acc, 0, sizeof(acc));
	len = tpm_pcr_rsp(r, 0x81, 0);
	/* every truncation */
	for (size_t n = 0; n < len; n++) {
		memset(&acc, 0, sizeof(acc));
		assert_int_not_equal(mgrproto_pcr_read_parse(r, n, 0x81, &acc, &trc), 0);
		assert_int_equal(acc.count, 0);
	}
	/* a size field that lies either way */
	be32_put(r + 2, (uint32_t)len + 1);
	assert_int_equal(mgrproto_pcr_read_parse(r, len, 0x81, &acc, &trc),
			 MGR_ERR_PAYLOAD_SHORT);
	be32_put(r + 2, (uint32_t)len - 1);
	assert_int_equal(mgrproto_pcr_read_parse(r, len, 0x81, &acc, &trc),
			 MGR_ERR_PAYLOAD_LONG);
	/* a TPM error */
	len = tpm_pcr_rsp(r, 0x81, 0);
	be32_put(r + 6, 0x101);
	assert_int_equal(mgrproto_pcr_read_parse(r, len, 0x81, &acc, &trc),
			 MGR_ERR_STATUS);
	assert_int_equal(trc, 0x101);
	/* PCRs not asked for */
	len = tpm_pcr_rsp(r, 0x83, 0);
	assert_int_equal(mgrproto_pcr_read_parse(r, len, 0x81, &acc, &trc),
			 MGR_ERR_RANGE);
	/* PCRs already read, or below those: no duplicates, no reordering */
	memset(&acc, 0, sizeof(acc));
	len = tpm_pcr_rsp(r, 0x80, 0);
	assert_int_equal(mgrproto_pcr_read_parse(r, len, 0x181, &acc, &trc), 0);
	assert_int_equal(mgrproto_pcr_read_parse(r, len, 0x181, &acc, &trc),
			 MGR_ERR_RANGE);
	len = tpm_pcr_rsp(r, 0x01, 0);
	assert_int_equal(mgrproto_pcr_read_parse(r, len, 0x181, &acc, &trc),
			 MGR_ERR_RANGE);
	assert_int_equal(acc.count, 1);
	/* an empty selection (no sha256 bank) */
	len = tpm_pcr_rsp(r, 0, 0);
	assert_int_equal(mgrproto_pcr_read_parse(r, len, 0x181, &acc, &trc),
			 MGR_ERR_RANGE);
	/* a digest count above 24, a digest of another size */
	len = tpm_pcr_rsp(r, 0x100, 0);
	be32_put(r + 24, 0x10000);
	assert_int_equal(mgrproto_pcr_read_parse(r, len, 0x181, &acc, &trc),
			 MGR_ERR_RANGE);
	len = tpm_pcr_rsp(r, 0x100, 0);
	be16_put(r + 28, 20);
	assert_int_equal(mgrproto_pcr_read_parse(r, len, 0x181, &acc, &trc),
			 MGR_ERR_RANGE);
	assert_int_equal(acc.count, 1);
	len = tpm_pcr_rsp(r, 0x100, 0);
	assert_int_equal(mgrproto_pcr_read_parse(r, len, 0x181, &acc, &trc), 0);
	assert_int_equal(acc.count, 2);
	assert_int_equal(acc.pcr_mask, 0x180);
}

/* ---- XEN_PEER, XEN_PEER_STATE: an instance in its own domain asks ---- */

/* The documented bytes (docs/manager-protocol.md). */
static void xen_peer_frames_match_the_documented_bytes(void **state)
{
	static const uint8_t req[] = {
		0x01, 0xc1, 0, 0, 0, 18, 0, 0, 0x02, 0x00,
		0, 0, 0x12, 0x34, 0, 0, 0, 3,
	};
	static const uint8_t sreq[] = {
		0x01, 0xc1, 0, 0, 0, 18, 0, 0, 0x02, 0x01,
		0, 0, 0x12, 0x34, 0, 0, 0, 3,
	};
	static const uint8_t rsp[] = {
		0x01, 0xc4, 0, 0, 0, 26, 0, 0, 0, 0,
		0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77,
		0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f,
	};
	static const uint8_t srsp[] = {
		0x01, 0xc4, 0, 0, 0, 11, 0, 0, 0, 0, 2,
	};
	static const uint8_t refused[] = { 0x01, 0xc4, 0, 0, 0, 10, 0, 0, 0, 3 };
	uint8_t buf[MGR_MAX_FRAME];
	struct mgr_req q;
	size_t len;

	(void)state;
	encode_req_ok(MGR_MSG_XEN_PEER, buf, &len);
	assert_int_equal(len, sizeof(req));
	assert_memory_equal(buf, req, sizeof(req));
	encode_req_ok(MGR_MSG_XEN_PEER_STATE, buf, &len);
	assert_int_equal(len, sizeof(sreq));
	assert_memory_equal(buf, sreq, sizeof(sreq));
	assert_int_equal(mgrproto_decode_req(sreq, sizeof(sreq), &q), 0);
	assert_int_equal(q.type, MGR_MSG_XEN_PEER_STATE);
	assert_int_equal(q.u.xen_peer.domid, 0x1234);
	assert_int_equal(q.u.xen_peer.devid, 3);
	encode_rsp_ok(MGR_MSG_XEN_PEER, buf, &len);
	assert_int_equal(len, sizeof(rsp));
	assert_memory_equal(buf, rsp, sizeof(rsp));
	encode_rsp_ok(MGR_MSG_XEN_PEER_STATE, buf, &len);
	assert_int_equal(len, sizeof(srsp));
	assert_memory_equal(buf, srsp, sizeof(srsp));
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_XEN_PEER_STATE, srsp,
					     sizeof(srsp), &rsp_b), 0);
	assert_int_equal(rsp_b.u.xen_state.state, MGR_XEN_SUSPENDED);
	/* A refusal carries no payload and no UUID. */
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_XEN_PEER, refused,
					     sizeof(refused), &rsp_b), 0);
	assert_int_equal(rsp_b.status, MGR_FORBIDDEN);
}

static void xen_peer_hostile_frames_are_refused(void **state)
{
	uint8_t buf[MGR_MAX_FRAME];
	struct mgr_req q;
	size_t len;

	(void)state;
	for (int t = MGR_MSG_XEN_PEER; t <= MGR_MSG_XEN_PEER_STATE; t++) {
		/* domid: the first reserved one and above are no domain. */
		encode_req_ok((enum mgr_msg)t, buf, &len);
		be32_put(buf + MGR_HDR_LEN, MGR_XEN_DOMID_MAX);
		assert_int_equal(mgrproto_decode_req(buf, len, &q), 0);
		be32_put(buf + MGR_HDR_LEN, MGR_XEN_DOMID_MAX + 1);
		assert_int_equal(mgrproto_decode_req(buf, len, &q), MGR_ERR_RANGE);
		be32_put(buf + MGR_HDR_LEN, 0xffffffffu);
		assert_int_equal(mgrproto_decode_req(buf, len, &q), MGR_ERR_RANGE);
		/* devid: a non-negative int, as xenstore names it. */
		encode_req_ok((enum mgr_msg)t, buf, &len);
		be32_put(buf + MGR_HDR_LEN + 4, MGR_XEN_DEVID_MAX + 1);
		assert_int_equal(mgrproto_decode_req(buf, len, &q), MGR_ERR_RANGE);
		/* One byte short, one byte long. */
		encode_req_ok((enum mgr_msg)t, buf, &len);
		be32_put(buf + 2, (uint32_t)len - 1);
		assert_int_equal(mgrproto_decode_req(buf, len - 1, &q),
				 MGR_ERR_PAYLOAD_SHORT);
		buf[len] = 0;
		be32_put(buf + 2, (uint32_t)len + 1);
		assert_int_equal(mgrproto_decode_req(buf, len + 1, &q),
				 MGR_ERR_PAYLOAD_LONG);
		/* Under the management tag it is not a vTPM's request. */
		encode_req_ok((enum mgr_msg)t, buf, &len);
		be16_put(buf, MGR_TAG_REQ2);
		assert_int_equal(mgrproto_decode_req(buf, len, &q),
				 MGR_ERR_WRONG_TAG);
		/* The encoder refuses what the decoder refuses. */
		sample_req((enum mgr_msg)t, &q);
		q.u.xen_peer.domid = MGR_XEN_DOMID_MAX + 1;
		assert_int_equal(mgrproto_encode_req(&q, buf, &len), MGR_ERR_RANGE);
		sample_req((enum mgr_msg)t, &q);
		q.u.xen_peer.devid = 0x80000000u;
		assert_int_equal(mgrproto_encode_req(&q, buf, &len), MGR_ERR_RANGE);
	}
	/* The run state: every value past GONE is refused both ways. */
	for (unsigned v = 0; v < 256; v++) {
		encode_rsp_ok(MGR_MSG_XEN_PEER_STATE, buf, &len);
		buf[MGR_HDR_LEN] = (uint8_t)v;
		assert_int_equal(mgrproto_decode_rsp(MGR_MSG_XEN_PEER_STATE, buf,
						     len, &rsp_b),
				 v < MGR_XEN_RUN_COUNT ? 0 : MGR_ERR_RANGE);
		sample_rsp(MGR_MSG_XEN_PEER_STATE, &rsp_a);
		rsp_a.u.xen_state.state = (uint8_t)v;
		assert_int_equal(mgrproto_encode_rsp(&rsp_a, buf, &len),
				 v < MGR_XEN_RUN_COUNT ? 0 : MGR_ERR_RANGE);
		if (v < MGR_XEN_RUN_COUNT)
			assert_string_not_equal(mgrproto_xen_run_str(v), "?");
	}
	assert_string_equal(mgrproto_xen_run_str(MGR_XEN_RUN_COUNT), "?");
	/* The UUID answer: exactly 16 bytes, and a run state is no UUID. */
	encode_rsp_ok(MGR_MSG_XEN_PEER, buf, &len);
	be32_put(buf + 2, (uint32_t)len - 1);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_XEN_PEER, buf, len - 1,
					     &rsp_b), MGR_ERR_PAYLOAD_SHORT);
	encode_rsp_ok(MGR_MSG_XEN_PEER_STATE, buf, &len);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_XEN_PEER, buf, len, &rsp_b),
			 MGR_ERR_PAYLOAD_SHORT);
	encode_rsp_ok(MGR_MSG_XEN_PEER, buf, &len);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_XEN_PEER_STATE, buf, len,
					     &rsp_b), MGR_ERR_PAYLOAD_LONG);
	/* An answer under the management tag is not for a vTPM request. */
	encode_rsp_ok(MGR_MSG_XEN_PEER, buf, &len);
	be16_put(buf, MGR_TAG_RSP2);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_XEN_PEER, buf, len, &rsp_b),
			 MGR_ERR_WRONG_TAG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_request_round_trips),
		cmocka_unit_test(decoded_request_fields_match),
		cmocka_unit_test(every_response_round_trips),
		cmocka_unit_test(decoded_response_fields_match),
		cmocka_unit_test(error_responses_round_trip_without_payload),
		cmocka_unit_test(frames_match_the_documented_bytes),
		cmocka_unit_test(largest_messages_fill_one_frame),
		cmocka_unit_test(every_truncation_is_refused),
		cmocka_unit_test(size_field_lies_are_refused),
		cmocka_unit_test(every_byte_flip_is_refused_or_canonical),
		cmocka_unit_test(bounded_fields_refuse_every_flip),
		cmocka_unit_test(request_under_the_other_tag_is_invalid),
		cmocka_unit_test(response_under_the_wrong_tag_is_refused),
		cmocka_unit_test(failed_response_with_payload_is_refused),
		cmocka_unit_test(oversized_counts_and_lengths_are_refused),
		cmocka_unit_test(duplicate_list_entries_are_refused),
		cmocka_unit_test(encoders_refuse_what_decoders_refuse),
		cmocka_unit_test(encoder_never_writes_past_the_frame),
		cmocka_unit_test(load_flags_beyond_nostate_are_refused),
		cmocka_unit_test(ek_certify_fields_are_checked),
		cmocka_unit_test(status_reply_follows_the_request_tag),
		cmocka_unit_test(frame_len_follows_a_stream),
		cmocka_unit_test(deep_quote_qd_matches_the_documented_vector),
		cmocka_unit_test(deep_quote_qd_changes_with_every_input),
		cmocka_unit_test(error_and_status_strings_are_distinct),
		cmocka_unit_test(pcr_read_frames_match_the_documented_bytes),
		cmocka_unit_test(pcr_read_request_masks_are_checked),
		cmocka_unit_test(pcr_read_hostile_answers_are_refused),
		cmocka_unit_test(pcr_fetch_and_report_are_checked),
		cmocka_unit_test(pcr_read_codec_reads_in_steps_of_eight),
		cmocka_unit_test(pcr_read_codec_refuses_hostile_tpm_answers),
		cmocka_unit_test(xen_peer_frames_match_the_documented_bytes),
		cmocka_unit_test(xen_peer_hostile_frames_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
