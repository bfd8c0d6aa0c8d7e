/* SPDX-License-Identifier: BSD-3-Clause */
#include "proto/mgrproto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#include "lib/bytes.h"

/* One row per message type: what the request and a successful response
 * may weigh.  The decoders check this before they look inside. */
static const struct mgr_msg_info {
	const char *name;
	uint32_t ordinal;
	uint16_t tag;
	uint16_t req_min, req_max;
	uint16_t rsp_min, rsp_max;
} msg_info[MGR_MSG_COUNT] = {
	[MGR_MSG_SAVEHASHKEY] = { "SAVEHASHKEY", MGR_ORD_SAVEHASHKEY,
				  MGR_TAG_REQ, 8 + MGR_HASH_LEN,
				  8 + MGR_HASH_LEN, 0, 0 },
	[MGR_MSG_LOADHASHKEY] = { "LOADHASHKEY", MGR_ORD_LOADHASHKEY,
				  MGR_TAG_REQ, 0, 0,
				  8 + MGR_HASH_LEN + MGR_KEY_LEN + 4,
				  8 + MGR_HASH_LEN + MGR_KEY_LEN + 4 },
	[MGR_MSG_GET_QUOTE] = { "GET_QUOTE", MGR_ORD_GET_QUOTE, MGR_TAG_REQ,
				1 + MGR_HASH_LEN + 4,
				1 + MGR_NONCE_MAX + MGR_HASH_LEN + 4,
				2 + 1 + 2 + 1, MGR_MAX_PAYLOAD },
	[MGR_MSG_GROUP_LIST] = { "GROUP_LIST", MGR_ORD_GROUP_LIST,
				 MGR_TAG_REQ2, 0, 0, 4,
				 4 + 4 * MGR_GROUP_LIST_MAX },
	[MGR_MSG_GROUP_NEW] = { "GROUP_NEW", MGR_ORD_GROUP_NEW, MGR_TAG_REQ2,
				0, 0, 4, 4 },
	[MGR_MSG_GROUP_DEL] = { "GROUP_DEL", MGR_ORD_GROUP_DEL, MGR_TAG_REQ2,
				4, 4, 0, 0 },
	[MGR_MSG_VTPM_LIST] = { "VTPM_LIST", MGR_ORD_VTPM_LIST, MGR_TAG_REQ2,
				8, 8, 8,
				8 + MGR_UUID_LEN * MGR_VTPM_LIST_MAX },
	[MGR_MSG_VTPM_NEW] = { "VTPM_NEW", MGR_ORD_VTPM_NEW, MGR_TAG_REQ2,
			       4 + MGR_UUID_LEN + 1, 4 + MGR_UUID_LEN + 1,
			       MGR_UUID_LEN, MGR_UUID_LEN },
	[MGR_MSG_VTPM_DEL] = { "VTPM_DEL", MGR_ORD_VTPM_DEL, MGR_TAG_REQ2,
			       MGR_UUID_LEN, MGR_UUID_LEN, 0, 0 },
};

const char *mgrproto_strerror(int err)
{
	switch (err) {
	case MGR_OK:
		return "ok";
	case MGR_ERR_SHORT:
		return "shorter than a manager protocol header";
	case MGR_ERR_SIZE:
		return "size field outside 10..4096";
	case MGR_ERR_TRUNCATED:
		return "frame shorter than its size field says";
	case MGR_ERR_TRAILING:
		return "bytes beyond the frame's size field";
	case MGR_ERR_TAG:
		return "not a manager protocol tag";
	case MGR_ERR_ORDINAL:
		return "unknown ordinal";
	case MGR_ERR_WRONG_TAG:
		return "ordinal under the wrong tag (vTPM vs management)";
	case MGR_ERR_PAYLOAD_SHORT:
		return "payload shorter than its message needs";
	case MGR_ERR_PAYLOAD_LONG:
		return "payload longer than its message allows";
	case MGR_ERR_RANGE:
		return "a field is out of range";
	case MGR_ERR_STATUS:
		return "unknown status code";
	case MGR_ERR_TYPE:
		return "invalid message type";
	case MGR_ERR_ORDER:
		return "list not strictly ascending (duplicate or out of order)";
	case MGR_ERR_CRYPTO:
		return "crypto library failure";
	}
	return "unknown error";
}

const char *mgrproto_status_str(uint32_t status)
{
	switch (status) {
	case MGR_SUCCESS:
		return "success";
	case MGR_FAIL:
		return "failed";
	case MGR_UNSUPPORTED:
		return "unsupported ordinal";
	case MGR_FORBIDDEN:
		return "forbidden on this connection";
	case MGR_RESTORE_CONTEXT_FAILED:
		return "manager cannot restore its context";
	case MGR_INVALID_REQUEST:
		return "invalid request";
	case MGR_NOT_FOUND:
		return "no such vTPM or group";
	case MGR_ROLLBACK:
		return "generation not above the recorded one (rollback)";
	}
	return "unknown status";
}

static int msg_valid(enum mgr_msg type)
{
	return (unsigned)type < MGR_MSG_COUNT;
}

const char *mgrproto_msg_name(enum mgr_msg type)
{
	return msg_valid(type) ? msg_info[type].name : "?";
}

uint16_t mgrproto_msg_tag(enum mgr_msg type)
{
	return msg_valid(type) ? msg_info[type].tag : 0;
}

uint32_t mgrproto_msg_ordinal(enum mgr_msg type)
{
	return msg_valid(type) ? msg_info[type].ordinal : 0;
}

static int tag_known(uint16_t tag)
{
	return tag == MGR_TAG_REQ || tag == MGR_TAG_REQ2 ||
	       tag == MGR_TAG_RSP || tag == MGR_TAG_RSP2;
}

int mgrproto_frame_len(const uint8_t *buf, size_t len)
{
	uint32_t size;

	if (len >= 2 && !tag_known(be16_get(buf)))
		return MGR_ERR_TAG;
	if (len < 6)
		return 0;
	size = be32_get(buf + 2);
	if (size < MGR_HDR_LEN || size > MGR_MAX_FRAME)
		return MGR_ERR_SIZE;
	return len < size ? 0 : (int)size;
}

/* The checks every frame passes, whatever its direction. */
static int check_frame(const uint8_t *buf, size_t len)
{
	uint32_t size;

	if (len < MGR_HDR_LEN)
		return MGR_ERR_SHORT;
	size = be32_get(buf + 2);
	if (size < MGR_HDR_LEN || size > MGR_MAX_FRAME)
		return MGR_ERR_SIZE;
	if (len < size)
		return MGR_ERR_TRUNCATED;
	if (len > size)
		return MGR_ERR_TRAILING;
	return 0;
}

static int check_payload(size_t len, uint16_t min, uint16_t max)
{
	if (len < min)
		return MGR_ERR_PAYLOAD_SHORT;
	if (len > max)
		return MGR_ERR_PAYLOAD_LONG;
	return 0;
}

/* A reader over a payload: a read past its end reads nothing and sets a
 * sticky error, so a parser checks once, at its end. */
struct rd {
	const uint8_t *p;
	size_t left;
	int err;
};

static const uint8_t *rd_take(struct rd *r, size_t n)
{
	const uint8_t *p = r->p;

	if (r->err)
		return NULL;
	if (r->left < n) {
		r->err = MGR_ERR_PAYLOAD_SHORT;
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return p;
}

static void rd_bytes(struct rd *r, uint8_t *dst, size_t n)
{
	const uint8_t *p = rd_take(r, n);

	if (p)
		memcpy(dst, p, n);
}

static uint8_t rd_u8(struct rd *r)
{
	const uint8_t *p = rd_take(r, 1);

	return p ? p[0] : 0;
}

static uint16_t rd_u16(struct rd *r)
{
	const uint8_t *p = rd_take(r, 2);

	return p ? be16_get(p) : 0;
}

static uint32_t rd_u32(struct rd *r)
{
	const uint8_t *p = rd_take(r, 4);

	return p ? be32_get(p) : 0;
}

static uint64_t rd_u64(struct rd *r)
{
	const uint8_t *p = rd_take(r, 8);

	return p ? be64_get(p) : 0;
}

static int rd_end(const struct rd *r)
{
	if (r->err)
		return r->err;
	return r->left ? MGR_ERR_PAYLOAD_LONG : 0;
}

static int ordinal_type(uint32_t ordinal, enum mgr_msg *type)
{
	for (int i = 0; i < MGR_MSG_COUNT; i++) {
		if (msg_info[i].ordinal == ordinal) {
			*type = (enum mgr_msg)i;
			return 0;
		}
	}
	return MGR_ERR_ORDINAL;
}

static int quote_req_check(const struct mgr_quote_req *q)
{
	if (q->nonce_len > MGR_NONCE_MAX || (q->pcr_mask & ~MGR_PCR_MASK_VALID))
		return MGR_ERR_RANGE;
	return 0;
}

static int vtpm_new_req_check(const struct mgr_vtpm_new_req *n)
{
	return n->tpm_version == 1 || n->tpm_version == 2 ? 0 : MGR_ERR_RANGE;
}

/* Lengths first, then values: a payload that does not add up is
 * reported as such even when its misread fields are also out of range. */
static int parse_req(struct rd *r, struct mgr_req *q)
{
	int rc;

	switch (q->type) {
	case MGR_MSG_SAVEHASHKEY:
		q->u.save.generation = rd_u64(r);
		rd_bytes(r, q->u.save.state_hash, MGR_HASH_LEN);
		break;
	case MGR_MSG_GET_QUOTE:
		q->u.quote.nonce_len = rd_u8(r);
		if (q->u.quote.nonce_len > MGR_NONCE_MAX)
			return MGR_ERR_RANGE;
		rd_bytes(r, q->u.quote.nonce, q->u.quote.nonce_len);
		rd_bytes(r, q->u.quote.pcr_digest, MGR_HASH_LEN);
		q->u.quote.pcr_mask = rd_u32(r);
		rc = rd_end(r);
		return rc ? rc : quote_req_check(&q->u.quote);
	case MGR_MSG_GROUP_DEL:
		q->u.group_del.group_id = rd_u32(r);
		break;
	case MGR_MSG_VTPM_LIST:
		q->u.vtpm_list.group_id = rd_u32(r);
		q->u.vtpm_list.offset = rd_u32(r);
		break;
	case MGR_MSG_VTPM_NEW:
		q->u.vtpm_new.group_id = rd_u32(r);
		rd_bytes(r, q->u.vtpm_new.uuid, MGR_UUID_LEN);
		q->u.vtpm_new.tpm_version = rd_u8(r);
		rc = rd_end(r);
		return rc ? rc : vtpm_new_req_check(&q->u.vtpm_new);
	case MGR_MSG_VTPM_DEL:
		rd_bytes(r, q->u.vtpm_del.uuid, MGR_UUID_LEN);
		break;
	case MGR_MSG_LOADHASHKEY:
	case MGR_MSG_GROUP_LIST:
	case MGR_MSG_GROUP_NEW:
	case MGR_MSG_COUNT:
		break;
	}
	return rd_end(r);
}

int mgrproto_decode_req(const uint8_t *buf, size_t len, struct mgr_req *out)
{
	const struct mgr_msg_info *mi;
	struct rd r;
	uint16_t tag;
	enum mgr_msg type;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = check_frame(buf, len);
	if (rc)
		return rc;
	tag = be16_get(buf);
	if (tag != MGR_TAG_REQ && tag != MGR_TAG_REQ2)
		return MGR_ERR_TAG;
	rc = ordinal_type(be32_get(buf + 6), &type);
	if (rc)
		return rc;
	mi = &msg_info[type];
	if (mi->tag != tag)
		return MGR_ERR_WRONG_TAG;
	rc = check_payload(len - MGR_HDR_LEN, mi->req_min, mi->req_max);
	if (rc)
		return rc;
	out->type = type;
	r = (struct rd){ buf + MGR_HDR_LEN, len - MGR_HDR_LEN, 0 };
	rc = parse_req(&r, out);
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

static int quote_rsp_check(const struct mgr_quote_rsp *q)
{
	if (q->attest_len == 0 || q->sig_len == 0 ||
	    q->attest_len > MGR_QUOTE_BLOB_MAX || q->sig_len > MGR_QUOTE_BLOB_MAX ||
	    4 + (size_t)q->attest_len + q->sig_len > MGR_MAX_PAYLOAD)
		return MGR_ERR_RANGE;
	return 0;
}

static int group_list_check(const struct mgr_group_list_rsp *l)
{
	if (l->count > MGR_GROUP_LIST_MAX)
		return MGR_ERR_RANGE;
	for (uint32_t i = 1; i < l->count; i++)
		if (l->group_id[i] <= l->group_id[i - 1])
			return MGR_ERR_ORDER;
	return 0;
}

static int vtpm_list_count_check(const struct mgr_vtpm_list_rsp *l)
{
	return l->count > MGR_VTPM_LIST_MAX || l->count > l->total ?
		       MGR_ERR_RANGE : 0;
}

static int vtpm_list_check(const struct mgr_vtpm_list_rsp *l)
{
	int rc = vtpm_list_count_check(l);

	if (rc)
		return rc;
	for (uint32_t i = 1; i < l->count; i++)
		if (memcmp(l->uuid[i], l->uuid[i - 1], MGR_UUID_LEN) <= 0)
			return MGR_ERR_ORDER;
	return 0;
}

static int parse_rsp(struct rd *r, struct mgr_rsp *s)
{
	int rc;

	switch (s->type) {
	case MGR_MSG_LOADHASHKEY:
		s->u.load.generation = rd_u64(r);
		rd_bytes(r, s->u.load.state_hash, MGR_HASH_LEN);
		rd_bytes(r, s->u.load.state_key, MGR_KEY_LEN);
		s->u.load.flags = rd_u32(r);
		rc = rd_end(r);
		if (!rc && (s->u.load.flags & ~MGR_LOAD_FLAGS_KNOWN))
			rc = MGR_ERR_RANGE;
		return rc;
	case MGR_MSG_GET_QUOTE:
		/* A zero length is refused before the payload runs out, so
		 * the error names the field rather than the end. */
		s->u.quote.attest_len = rd_u16(r);
		if (s->u.quote.attest_len == 0 ||
		    s->u.quote.attest_len > MGR_QUOTE_BLOB_MAX)
			return MGR_ERR_RANGE;
		rd_bytes(r, s->u.quote.attest, s->u.quote.attest_len);
		s->u.quote.sig_len = rd_u16(r);
		if (!r->err && (s->u.quote.sig_len == 0 ||
				s->u.quote.sig_len > MGR_QUOTE_BLOB_MAX))
			return MGR_ERR_RANGE;
		rd_bytes(r, s->u.quote.sig, s->u.quote.sig_len);
		break;
	case MGR_MSG_GROUP_LIST:
		s->u.group_list.count = rd_u32(r);
		if (s->u.group_list.count > MGR_GROUP_LIST_MAX)
			return MGR_ERR_RANGE;
		for (uint32_t i = 0; i < s->u.group_list.count; i++)
			s->u.group_list.group_id[i] = rd_u32(r);
		rc = rd_end(r);
		return rc ? rc : group_list_check(&s->u.group_list);
	case MGR_MSG_GROUP_NEW:
		s->u.group_new.group_id = rd_u32(r);
		break;
	case MGR_MSG_VTPM_LIST:
		s->u.vtpm_list.total = rd_u32(r);
		s->u.vtpm_list.count = rd_u32(r);
		if (vtpm_list_count_check(&s->u.vtpm_list))
			return MGR_ERR_RANGE;
		for (uint32_t i = 0; i < s->u.vtpm_list.count; i++)
			rd_bytes(r, s->u.vtpm_list.uuid[i], MGR_UUID_LEN);
		rc = rd_end(r);
		return rc ? rc : vtpm_list_check(&s->u.vtpm_list);
	case MGR_MSG_VTPM_NEW:
		rd_bytes(r, s->u.vtpm_new.uuid, MGR_UUID_LEN);
		break;
	case MGR_MSG_SAVEHASHKEY:
	case MGR_MSG_GROUP_DEL:
	case MGR_MSG_VTPM_DEL:
	case MGR_MSG_COUNT:
		break;
	}
	return rd_end(r);
}

int mgrproto_decode_rsp(enum mgr_msg expect, const uint8_t *buf, size_t len,
			struct mgr_rsp *out)
{
	const struct mgr_msg_info *mi;
	struct rd r;
	uint16_t tag;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!msg_valid(expect))
		return MGR_ERR_TYPE;
	mi = &msg_info[expect];
	rc = check_frame(buf, len);
	if (rc)
		return rc;
	tag = be16_get(buf);
	if (tag != MGR_TAG_RSP && tag != MGR_TAG_RSP2)
		return MGR_ERR_TAG;
	if (tag != mi->tag + 3)
		return MGR_ERR_WRONG_TAG;
	out->type = expect;
	out->status = be32_get(buf + 6);
	if (out->status >= MGR_STATUS_COUNT) {
		rc = MGR_ERR_STATUS;
		goto out;
	}
	if (out->status != MGR_SUCCESS) {
		rc = len > MGR_HDR_LEN ? MGR_ERR_PAYLOAD_LONG : 0;
		goto out;
	}
	rc = check_payload(len - MGR_HDR_LEN, mi->rsp_min, mi->rsp_max);
	if (rc)
		goto out;
	r = (struct rd){ buf + MGR_HDR_LEN, len - MGR_HDR_LEN, 0 };
	rc = parse_rsp(&r, out);
out:
	if (rc)
		mgrproto_rsp_wipe(out);
	return rc;
}

/* A writer into a frame buffer; the encoders check lengths first, so it
 * never runs past MGR_MAX_FRAME. */
struct wr {
	uint8_t *p;
	size_t off;
};

static void wr_bytes(struct wr *w, const uint8_t *src, size_t n)
{
	memcpy(w->p + w->off, src, n);
	w->off += n;
}

static void wr_u8(struct wr *w, uint8_t v)
{
	w->p[w->off++] = v;
}

static void wr_u16(struct wr *w, uint16_t v)
{
	be16_put(w->p + w->off, v);
	w->off += 2;
}

static void wr_u32(struct wr *w, uint32_t v)
{
	be32_put(w->p + w->off, v);
	w->off += 4;
}

static void wr_u64(struct wr *w, uint64_t v)
{
	be64_put(w->p + w->off, v);
	w->off += 8;
}

static void wr_finish(struct wr *w, uint16_t tag, uint32_t code,
		      size_t *outlen)
{
	be16_put(w->p, tag);
	be32_put(w->p + 2, (uint32_t)w->off);
	be32_put(w->p + 6, code);
	*outlen = w->off;
}

int mgrproto_encode_req(const struct mgr_req *req, uint8_t out[MGR_MAX_FRAME],
			size_t *outlen)
{
	struct wr w = { out, MGR_HDR_LEN };
	int rc = 0;

	if (!msg_valid(req->type))
		return MGR_ERR_TYPE;
	switch (req->type) {
	case MGR_MSG_SAVEHASHKEY:
		wr_u64(&w, req->u.save.generation);
		wr_bytes(&w, req->u.save.state_hash, MGR_HASH_LEN);
		break;
	case MGR_MSG_GET_QUOTE:
		rc = quote_req_check(&req->u.quote);
		if (rc)
			return rc;
		wr_u8(&w, req->u.quote.nonce_len);
		wr_bytes(&w, req->u.quote.nonce, req->u.quote.nonce_len);
		wr_bytes(&w, req->u.quote.pcr_digest, MGR_HASH_LEN);
		wr_u32(&w, req->u.quote.pcr_mask);
		break;
	case MGR_MSG_GROUP_DEL:
		wr_u32(&w, req->u.group_del.group_id);
		break;
	case MGR_MSG_VTPM_LIST:
		wr_u32(&w, req->u.vtpm_list.group_id);
		wr_u32(&w, req->u.vtpm_list.offset);
		break;
	case MGR_MSG_VTPM_NEW:
		rc = vtpm_new_req_check(&req->u.vtpm_new);
		if (rc)
			return rc;
		wr_u32(&w, req->u.vtpm_new.group_id);
		wr_bytes(&w, req->u.vtpm_new.uuid, MGR_UUID_LEN);
		wr_u8(&w, req->u.vtpm_new.tpm_version);
		break;
	case MGR_MSG_VTPM_DEL:
		wr_bytes(&w, req->u.vtpm_del.uuid, MGR_UUID_LEN);
		break;
	case MGR_MSG_LOADHASHKEY:
	case MGR_MSG_GROUP_LIST:
	case MGR_MSG_GROUP_NEW:
	case MGR_MSG_COUNT:
		break;
	}
	wr_finish(&w, msg_info[req->type].tag, msg_info[req->type].ordinal,
		  outlen);
	return 0;
}

static int encode_rsp_payload(const struct mgr_rsp *rsp, struct wr *w)
{
	int rc;

	switch (rsp->type) {
	case MGR_MSG_LOADHASHKEY:
		if (rsp->u.load.flags & ~MGR_LOAD_FLAGS_KNOWN)
			return MGR_ERR_RANGE;
		wr_u64(w, rsp->u.load.generation);
		wr_bytes(w, rsp->u.load.state_hash, MGR_HASH_LEN);
		wr_bytes(w, rsp->u.load.state_key, MGR_KEY_LEN);
		wr_u32(w, rsp->u.load.flags);
		break;
	case MGR_MSG_GET_QUOTE:
		if (quote_rsp_check(&rsp->u.quote))
			return MGR_ERR_RANGE;
		wr_u16(w, rsp->u.quote.attest_len);
		wr_bytes(w, rsp->u.quote.attest, rsp->u.quote.attest_len);
		wr_u16(w, rsp->u.quote.sig_len);
		wr_bytes(w, rsp->u.quote.sig, rsp->u.quote.sig_len);
		break;
	case MGR_MSG_GROUP_LIST:
		rc = group_list_check(&rsp->u.group_list);
		if (rc)
			return rc;
		wr_u32(w, rsp->u.group_list.count);
		for (uint32_t i = 0; i < rsp->u.group_list.count; i++)
			wr_u32(w, rsp->u.group_list.group_id[i]);
		break;
	case MGR_MSG_GROUP_NEW:
		wr_u32(w, rsp->u.group_new.group_id);
		break;
	case MGR_MSG_VTPM_LIST:
		rc = vtpm_list_check(&rsp->u.vtpm_list);
		if (rc)
			return rc;
		wr_u32(w, rsp->u.vtpm_list.total);
		wr_u32(w, rsp->u.vtpm_list.count);
		for (uint32_t i = 0; i < rsp->u.vtpm_list.count; i++)
			wr_bytes(w, rsp->u.vtpm_list.uuid[i], MGR_UUID_LEN);
		break;
	case MGR_MSG_VTPM_NEW:
		wr_bytes(w, rsp->u.vtpm_new.uuid, MGR_UUID_LEN);
		break;
	case MGR_MSG_SAVEHASHKEY:
	case MGR_MSG_GROUP_DEL:
	case MGR_MSG_VTPM_DEL:
	case MGR_MSG_COUNT:
		break;
	}
	return 0;
}

int mgrproto_encode_rsp(const struct mgr_rsp *rsp, uint8_t out[MGR_MAX_FRAME],
			size_t *outlen)
{
	struct wr w = { out, MGR_HDR_LEN };
	int rc;

	if (!msg_valid(rsp->type))
		return MGR_ERR_TYPE;
	if (rsp->status >= MGR_STATUS_COUNT)
		return MGR_ERR_STATUS;
	if (rsp->status == MGR_SUCCESS) {
		rc = encode_rsp_payload(rsp, &w);
		if (rc)
			return rc;
	}
	wr_finish(&w, (uint16_t)(msg_info[rsp->type].tag + 3), rsp->status,
		  outlen);
	return 0;
}

uint32_t mgrproto_err_status(int err)
{
	return err == MGR_ERR_ORDINAL ? MGR_UNSUPPORTED : MGR_INVALID_REQUEST;
}

void mgrproto_encode_status(const uint8_t *req, size_t req_len,
			    uint32_t status, uint8_t out[MGR_HDR_LEN])
{
	int mgmt = req_len >= 2 && be16_get(req) == MGR_TAG_REQ2;

	be16_put(out, mgmt ? MGR_TAG_RSP2 : MGR_TAG_RSP);
	be32_put(out + 2, MGR_HDR_LEN);
	be32_put(out + 6, status);
}

void mgrproto_rsp_wipe(struct mgr_rsp *rsp)
{
	OPENSSL_cleanse(rsp, sizeof(*rsp));
}

int mgrproto_deepquote_qd(const uint8_t uuid[MGR_UUID_LEN], uint32_t pcr_mask,
			  const uint8_t pcr_digest[MGR_HASH_LEN],
			  const uint8_t *nonce, size_t nonce_len,
			  uint8_t out[MGR_HASH_LEN])
{
	uint8_t msg[sizeof(MGR_DEEPQUOTE_LABEL) - 1 + MGR_UUID_LEN + 4 +
		    MGR_HASH_LEN + 1 + MGR_NONCE_MAX];
	struct wr w = { msg, 0 };
	unsigned int n = MGR_HASH_LEN;

	if (nonce_len > MGR_NONCE_MAX || (pcr_mask & ~MGR_PCR_MASK_VALID))
		return MGR_ERR_RANGE;
	wr_bytes(&w, (const uint8_t *)MGR_DEEPQUOTE_LABEL,
		 sizeof(MGR_DEEPQUOTE_LABEL) - 1);
	wr_bytes(&w, uuid, MGR_UUID_LEN);
	wr_u32(&w, pcr_mask);
	wr_bytes(&w, pcr_digest, MGR_HASH_LEN);
	wr_u8(&w, (uint8_t)nonce_len);
	if (nonce_len)
		wr_bytes(&w, nonce, nonce_len);
	if (EVP_Digest(msg, w.off, out, &n, EVP_sha256(), NULL) != 1)
		return MGR_ERR_CRYPTO;
	return 0;
}
