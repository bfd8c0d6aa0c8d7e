/* SPDX-License-Identifier: BSD-3-Clause */
#include "proto/mgrproto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#include "lib/bytes.h"
#include "proto/tpmcodes.h"

/* PCR_READ's answer: TPML_PCR_SELECTION (count, hash, sizeofSelect,
 * pcrSelect[3]) and TPML_DIGEST (count, then each a u16 size + 32). */
#define PCR_READ_SEL_LEN (4 + 2 + 1 + MGR_PCR_SELECT)
#define PCR_READ_DIGEST_LEN (2 + MGR_HASH_LEN)

/* EK_CERTIFY's fields before its key. */
#define EK_REQ_FIXED (1 + 4 + MGR_EK_MODEL_LEN + 8 + 4 + 4 + 2)

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
	[MGR_MSG_EK_CERTIFY] = { "EK_CERTIFY", MGR_ORD_EK_CERTIFY, MGR_TAG_REQ,
				 EK_REQ_FIXED + MGR_EK_ECC_LEN,
				 EK_REQ_FIXED + MGR_EK_RSA_LEN, 2 + 1,
				 MGR_MAX_PAYLOAD },
	[MGR_MSG_MANUFACTURED] = { "MANUFACTURED", MGR_ORD_MANUFACTURED,
				   MGR_TAG_REQ, 8, 8, 0, 0 },
	[MGR_MSG_PCR_READ] = { "PCR_READ", MGR_ORD_PCR_READ, MGR_TAG_MREQ,
			       4, 4, PCR_READ_SEL_LEN + 4 + PCR_READ_DIGEST_LEN,
			       PCR_READ_SEL_LEN + 4 +
				       MGR_PCRS * PCR_READ_DIGEST_LEN },
	[MGR_MSG_PCR_FETCH] = { "PCR_FETCH", MGR_ORD_PCR_FETCH, MGR_TAG_REQ,
				0, 0, 4, 4 },
	[MGR_MSG_PCR_REPORT] = { "PCR_REPORT", MGR_ORD_PCR_REPORT, MGR_TAG_REQ,
				 PCR_READ_SEL_LEN + 4 + PCR_READ_DIGEST_LEN,
				 PCR_READ_SEL_LEN + 4 +
					 MGR_PCRS * PCR_READ_DIGEST_LEN,
				 0, 0 },
	[MGR_MSG_XEN_PEER] = { "XEN_PEER", MGR_ORD_XEN_PEER, MGR_TAG_REQ, 8, 8,
			       MGR_UUID_LEN, MGR_UUID_LEN },
	[MGR_MSG_XEN_PEER_STATE] = { "XEN_PEER_STATE", MGR_ORD_XEN_PEER_STATE,
				     MGR_TAG_REQ, 8, 8, 1, 1 },
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

const char *mgrproto_xen_run_str(uint32_t state)
{
	switch (state) {
	case MGR_XEN_RUNNING:
		return "running";
	case MGR_XEN_PAUSED:
		return "paused";
	case MGR_XEN_SUSPENDED:
		return "shut down for a suspend";
	case MGR_XEN_SHUTDOWN:
		return "shut down (not for a suspend)";
	case MGR_XEN_GONE:
		return "gone";
	}
	return "?";
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
	       tag == MGR_TAG_MREQ || tag == MGR_TAG_RSP ||
	       tag == MGR_TAG_RSP2 || tag == MGR_TAG_MRSP;
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

/*
 * A cursor over a payload that reads the fields (decoding, in != NULL) or
 * writes them (encoding, out != NULL), so that each message's layout is
 * written once, in req_fields and rsp_fields, for both directions.  It is
 * sticky: a read past the payload's end reads nothing and records
 * MGR_ERR_PAYLOAD_SHORT, a write past the frame writes nothing and records
 * MGR_ERR_RANGE (a message too big for one frame), so a parser checks
 * once, at its end.
 */
struct cur {
	const uint8_t *in;
	uint8_t *out;
	size_t off, len;
	int err;
};

/* The offset of the next n bytes, or -1 (and the sticky error). */
static long cur_take(struct cur *c, size_t n)
{
	size_t at = c->off;

	if (c->err)
		return -1;
	if (c->len - c->off < n) {
		c->err = c->out ? MGR_ERR_RANGE : MGR_ERR_PAYLOAD_SHORT;
		return -1;
	}
	c->off += n;
	return (long)at;
}

static void cur_bytes(struct cur *c, uint8_t *v, size_t n)
{
	long at = cur_take(c, n);

	if (at >= 0 && c->out)
		memcpy(c->out + at, v, n);
	else if (at >= 0)
		memcpy(v, c->in + at, n);
}

static void cur_u8(struct cur *c, uint8_t *v)
{
	cur_bytes(c, v, 1);
}

/* cur_u16, cur_u32, cur_u64: a big-endian integer, either way. */
#define CUR_UINT(bits)                                                         \
	static void cur_u##bits(struct cur *c, uint##bits##_t *v)              \
	{                                                                      \
		long at = cur_take(c, bits / 8);                               \
                                                                               \
		if (at >= 0 && c->out)                                         \
			be##bits##_put(c->out + at, *v);                       \
		else if (at >= 0)                                              \
			*v = be##bits##_get(c->in + at);                       \
	}
CUR_UINT(16)
CUR_UINT(32)
CUR_UINT(64)
#undef CUR_UINT

/* Decoding: the payload must end where its fields do. */
static int cur_end(const struct cur *c)
{
	if (c->err)
		return c->err;
	return c->in && c->off != c->len ? MGR_ERR_PAYLOAD_LONG : 0;
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

static int group_list_check(const struct mgr_group_list_rsp *l)
{
	for (uint32_t i = 1; i < l->count; i++)
		if (l->group_id[i] <= l->group_id[i - 1])
			return MGR_ERR_ORDER;
	return 0;
}

/* The key's length follows from its kind; the model is text. */
static int ek_certify_check(const struct mgr_ek_certify_req *k)
{
	size_t want;

	switch (k->kind) {
	case MGR_EK_KIND_RSA:
	case MGR_EK_KIND_PLATFORM:
		want = MGR_EK_RSA_LEN;
		break;
	case MGR_EK_KIND_ECC:
		want = MGR_EK_ECC_LEN;
		break;
	default:
		return MGR_ERR_RANGE;
	}
	if (k->key_len != want)
		return MGR_ERR_RANGE;
	for (size_t i = 0; i < MGR_EK_MODEL_LEN; i++)
		if (k->model[i] && (k->model[i] < 0x20 || k->model[i] > 0x7e))
			return MGR_ERR_RANGE;
	return 0;
}

static int vtpm_list_check(const struct mgr_vtpm_list_rsp *l)
{
	for (uint32_t i = 1; i < l->count; i++)
		if (memcmp(l->uuid[i], l->uuid[i - 1], MGR_UUID_LEN) <= 0)
			return MGR_ERR_ORDER;
	return 0;
}

/*
 * The payload of each message, read or written.  A count or length that
 * sizes what follows is checked as soon as it is known, so neither
 * direction runs past a field; the other values are checked after the
 * end, so that a payload that does not add up is reported as such even
 * when its misread fields are also out of range.  An encoder thus refuses
 * what the decoder would refuse, with the same error.
 */
static int pcr_read_fields(struct cur *c, struct mgr_pcr_read_rsp *r);

static int req_fields(struct cur *c, struct mgr_req *q)
{
	int rc;

	switch (q->type) {
	case MGR_MSG_SAVEHASHKEY:
		cur_u64(c, &q->u.save.generation);
		cur_bytes(c, q->u.save.state_hash, MGR_HASH_LEN);
		break;
	case MGR_MSG_GET_QUOTE:
		cur_u8(c, &q->u.quote.nonce_len);
		if (q->u.quote.nonce_len > MGR_NONCE_MAX)
			return MGR_ERR_RANGE;
		cur_bytes(c, q->u.quote.nonce, q->u.quote.nonce_len);
		cur_bytes(c, q->u.quote.pcr_digest, MGR_HASH_LEN);
		cur_u32(c, &q->u.quote.pcr_mask);
		rc = cur_end(c);
		if (!rc && (q->u.quote.pcr_mask & ~MGR_PCR_MASK_VALID))
			rc = MGR_ERR_RANGE;
		return rc;
	case MGR_MSG_GROUP_DEL:
		cur_u32(c, &q->u.group_del.group_id);
		break;
	case MGR_MSG_VTPM_LIST:
		cur_u32(c, &q->u.vtpm_list.group_id);
		cur_u32(c, &q->u.vtpm_list.offset);
		break;
	case MGR_MSG_VTPM_NEW:
		cur_u32(c, &q->u.vtpm_new.group_id);
		cur_bytes(c, q->u.vtpm_new.uuid, MGR_UUID_LEN);
		cur_u8(c, &q->u.vtpm_new.tpm_version);
		rc = cur_end(c);
		if (!rc && q->u.vtpm_new.tpm_version != 1 &&
		    q->u.vtpm_new.tpm_version != 2)
			rc = MGR_ERR_RANGE;
		return rc;
	case MGR_MSG_VTPM_DEL:
		cur_bytes(c, q->u.vtpm_del.uuid, MGR_UUID_LEN);
		break;
	case MGR_MSG_EK_CERTIFY:
		cur_u8(c, &q->u.ek.kind);
		cur_u32(c, &q->u.ek.manufacturer);
		cur_bytes(c, q->u.ek.model, MGR_EK_MODEL_LEN);
		cur_u32(c, &q->u.ek.fw_version[0]);
		cur_u32(c, &q->u.ek.fw_version[1]);
		cur_u32(c, &q->u.ek.spec_level);
		cur_u32(c, &q->u.ek.spec_revision);
		cur_u16(c, &q->u.ek.key_len);
		if (q->u.ek.key_len > MGR_EK_RSA_LEN)
			return MGR_ERR_RANGE;
		cur_bytes(c, q->u.ek.key, q->u.ek.key_len);
		rc = cur_end(c);
		return rc ? rc : ek_certify_check(&q->u.ek);
	case MGR_MSG_MANUFACTURED:
		cur_u32(c, &q->u.made.result);
		cur_u32(c, &q->u.made.elapsed_ms);
		break;
	case MGR_MSG_PCR_REPORT:
		return pcr_read_fields(c, &q->u.pcr_report);
	case MGR_MSG_PCR_READ:
		cur_u32(c, &q->u.pcr_read.pcr_mask);
		rc = cur_end(c);
		if (!rc && (!q->u.pcr_read.pcr_mask ||
			    (q->u.pcr_read.pcr_mask & ~MGR_PCR_MASK_VALID)))
			rc = MGR_ERR_RANGE;
		return rc;
	case MGR_MSG_XEN_PEER:
	case MGR_MSG_XEN_PEER_STATE:
		cur_u32(c, &q->u.xen_peer.domid);
		cur_u32(c, &q->u.xen_peer.devid);
		rc = cur_end(c);
		if (!rc && (q->u.xen_peer.domid > MGR_XEN_DOMID_MAX ||
			    q->u.xen_peer.devid > MGR_XEN_DEVID_MAX))
			rc = MGR_ERR_RANGE;
		return rc;
	case MGR_MSG_LOADHASHKEY:
	case MGR_MSG_GROUP_LIST:
	case MGR_MSG_GROUP_NEW:
	case MGR_MSG_PCR_FETCH:
	case MGR_MSG_COUNT:
		break;
	}
	return cur_end(c);
}

/* A blob length of a quote: 1..MGR_QUOTE_BLOB_MAX. */
static int quote_blob(struct cur *c, uint16_t *len, uint8_t *blob)
{
	cur_u16(c, len);
	/* A zero length is refused before the payload runs out, so the
	 * error names the field rather than the end. */
	if (!c->err && (*len == 0 || *len > MGR_QUOTE_BLOB_MAX))
		return MGR_ERR_RANGE;
	cur_bytes(c, blob, *len);
	return 0;
}

/*
 * PCR_READ's answer.  The fixed fields (one selection, sha256, 3 bytes of
 * select, 32-byte digests) are still fields: a decoder refuses any other
 * value, so every byte is checked and the encoding stays canonical.
 */
static int pcr_read_fields(struct cur *c, struct mgr_pcr_read_rsp *r)
{
	uint32_t nsel = 1;
	uint16_t alg = TPM_ALG_SHA256, dsize = MGR_HASH_LEN;
	uint8_t sizeof_select = MGR_PCR_SELECT, sel[MGR_PCR_SELECT];
	int rc;

	sel[0] = (uint8_t)r->pcr_mask;
	sel[1] = (uint8_t)(r->pcr_mask >> 8);
	sel[2] = (uint8_t)(r->pcr_mask >> 16);
	cur_u32(c, &nsel);
	if (!c->err && nsel != 1)
		return MGR_ERR_RANGE;
	cur_u16(c, &alg);
	cur_u8(c, &sizeof_select);
	if (!c->err && (alg != TPM_ALG_SHA256 || sizeof_select != MGR_PCR_SELECT))
		return MGR_ERR_RANGE;
	cur_bytes(c, sel, sizeof(sel));
	cur_u32(c, &r->count);
	if (!c->err && r->count > MGR_PCRS)
		return MGR_ERR_RANGE;
	for (uint32_t i = 0; i < r->count && !c->err; i++) {
		cur_u16(c, &dsize);
		if (!c->err && dsize != MGR_HASH_LEN)
			return MGR_ERR_RANGE;
		cur_bytes(c, r->digest[i], MGR_HASH_LEN);
	}
	rc = cur_end(c);
	if (rc)
		return rc;
	r->pcr_mask = sel[0] | (uint32_t)sel[1] << 8 | (uint32_t)sel[2] << 16;
	if (!r->pcr_mask ||
	    (uint32_t)__builtin_popcount(r->pcr_mask) != r->count)
		return MGR_ERR_RANGE;
	return 0;
}

static int rsp_fields(struct cur *c, struct mgr_rsp *s)
{
	int rc;

	switch (s->type) {
	case MGR_MSG_LOADHASHKEY:
		cur_u64(c, &s->u.load.generation);
		cur_bytes(c, s->u.load.state_hash, MGR_HASH_LEN);
		cur_bytes(c, s->u.load.state_key, MGR_KEY_LEN);
		cur_u32(c, &s->u.load.flags);
		rc = cur_end(c);
		if (!rc && (s->u.load.flags & ~MGR_LOAD_FLAGS_KNOWN))
			rc = MGR_ERR_RANGE;
		return rc;
	case MGR_MSG_GET_QUOTE:
		rc = quote_blob(c, &s->u.quote.attest_len, s->u.quote.attest);
		if (!rc)
			rc = quote_blob(c, &s->u.quote.sig_len, s->u.quote.sig);
		if (rc)
			return rc;
		break;
	case MGR_MSG_GROUP_LIST:
		cur_u32(c, &s->u.group_list.count);
		if (s->u.group_list.count > MGR_GROUP_LIST_MAX)
			return MGR_ERR_RANGE;
		for (uint32_t i = 0; i < s->u.group_list.count; i++)
			cur_u32(c, &s->u.group_list.group_id[i]);
		rc = cur_end(c);
		return rc ? rc : group_list_check(&s->u.group_list);
	case MGR_MSG_GROUP_NEW:
		cur_u32(c, &s->u.group_new.group_id);
		break;
	case MGR_MSG_VTPM_LIST:
		cur_u32(c, &s->u.vtpm_list.total);
		cur_u32(c, &s->u.vtpm_list.count);
		if (s->u.vtpm_list.count > MGR_VTPM_LIST_MAX ||
		    s->u.vtpm_list.count > s->u.vtpm_list.total)
			return MGR_ERR_RANGE;
		for (uint32_t i = 0; i < s->u.vtpm_list.count; i++)
			cur_bytes(c, s->u.vtpm_list.uuid[i], MGR_UUID_LEN);
		rc = cur_end(c);
		return rc ? rc : vtpm_list_check(&s->u.vtpm_list);
	case MGR_MSG_VTPM_NEW:
		cur_bytes(c, s->u.vtpm_new.uuid, MGR_UUID_LEN);
		break;
	case MGR_MSG_EK_CERTIFY:
		cur_u16(c, &s->u.ek.cert_len);
		if (!c->err && (s->u.ek.cert_len == 0 ||
				s->u.ek.cert_len > MGR_EKCERT_MAX))
			return MGR_ERR_RANGE;
		cur_bytes(c, s->u.ek.cert, s->u.ek.cert_len);
		break;
	case MGR_MSG_PCR_READ:
		return pcr_read_fields(c, &s->u.pcr_read);
	case MGR_MSG_PCR_FETCH:
		cur_u32(c, &s->u.pcr_fetch.pcr_mask);
		rc = cur_end(c);
		if (!rc && (s->u.pcr_fetch.pcr_mask & ~MGR_PCR_MASK_VALID))
			rc = MGR_ERR_RANGE;
		return rc;
	case MGR_MSG_XEN_PEER:
		cur_bytes(c, s->u.xen_peer.uuid, MGR_UUID_LEN);
		break;
	case MGR_MSG_XEN_PEER_STATE:
		cur_u8(c, &s->u.xen_state.state);
		rc = cur_end(c);
		if (!rc && s->u.xen_state.state >= MGR_XEN_RUN_COUNT)
			rc = MGR_ERR_RANGE;
		return rc;
	case MGR_MSG_SAVEHASHKEY:
	case MGR_MSG_GROUP_DEL:
	case MGR_MSG_VTPM_DEL:
	case MGR_MSG_MANUFACTURED:
	case MGR_MSG_PCR_REPORT:
	case MGR_MSG_COUNT:
		break;
	}
	return cur_end(c);
}

static struct cur payload_reader(const uint8_t *buf, size_t len)
{
	return (struct cur){ .in = buf + MGR_HDR_LEN, .len = len - MGR_HDR_LEN };
}

static struct cur payload_writer(uint8_t out[MGR_MAX_FRAME])
{
	return (struct cur){ .out = out + MGR_HDR_LEN, .len = MGR_MAX_PAYLOAD };
}

int mgrproto_decode_req(const uint8_t *buf, size_t len, struct mgr_req *out)
{
	const struct mgr_msg_info *mi;
	struct cur c;
	uint16_t tag;
	enum mgr_msg type;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = check_frame(buf, len);
	if (rc)
		return rc;
	tag = be16_get(buf);
	if (tag != MGR_TAG_REQ && tag != MGR_TAG_REQ2 && tag != MGR_TAG_MREQ)
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
	c = payload_reader(buf, len);
	rc = req_fields(&c, out);
	if (rc)
		memset(out, 0, sizeof(*out));
	return rc;
}

int mgrproto_decode_rsp(enum mgr_msg expect, const uint8_t *buf, size_t len,
			struct mgr_rsp *out)
{
	const struct mgr_msg_info *mi;
	struct cur c;
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
	if (tag != MGR_TAG_RSP && tag != MGR_TAG_RSP2 && tag != MGR_TAG_MRSP)
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
	c = payload_reader(buf, len);
	rc = rsp_fields(&c, out);
out:
	if (rc)
		mgrproto_rsp_wipe(out);
	return rc;
}

/* Writes the header of a frame whose payload c wrote. */
static void frame_finish(uint8_t out[MGR_MAX_FRAME], const struct cur *c,
			 uint16_t tag, uint32_t code, size_t *outlen)
{
	*outlen = MGR_HDR_LEN + c->off;
	be16_put(out, tag);
	be32_put(out + 2, (uint32_t)*outlen);
	be32_put(out + 6, code);
}

int mgrproto_encode_req(const struct mgr_req *req, uint8_t out[MGR_MAX_FRAME],
			size_t *outlen)
{
	struct cur c = payload_writer(out);
	int rc;

	if (!msg_valid(req->type))
		return MGR_ERR_TYPE;
	/* A writing cursor only reads the struct. */
	rc = req_fields(&c, (struct mgr_req *)req);
	if (rc)
		return rc;
	frame_finish(out, &c, msg_info[req->type].tag,
		     msg_info[req->type].ordinal, outlen);
	return 0;
}

int mgrproto_encode_rsp(const struct mgr_rsp *rsp, uint8_t out[MGR_MAX_FRAME],
			size_t *outlen)
{
	struct cur c = payload_writer(out);
	int rc;

	if (!msg_valid(rsp->type))
		return MGR_ERR_TYPE;
	if (rsp->status >= MGR_STATUS_COUNT)
		return MGR_ERR_STATUS;
	if (rsp->status == MGR_SUCCESS) {
		/* A writing cursor only reads the struct. */
		rc = rsp_fields(&c, (struct mgr_rsp *)rsp);
		if (rc)
			return rc;
	}
	frame_finish(out, &c, (uint16_t)(msg_info[rsp->type].tag + 3),
		     rsp->status, outlen);
	return 0;
}

uint32_t mgrproto_err_status(int err)
{
	return err == MGR_ERR_ORDINAL ? MGR_UNSUPPORTED : MGR_INVALID_REQUEST;
}

void mgrproto_encode_status(const uint8_t *req, size_t req_len,
			    uint32_t status, uint8_t out[MGR_HDR_LEN])
{
	uint16_t tag = req_len >= 2 ? be16_get(req) : 0;

	be16_put(out, tag == MGR_TAG_REQ2   ? MGR_TAG_RSP2
		      : tag == MGR_TAG_MREQ ? MGR_TAG_MRSP
					    : MGR_TAG_RSP);
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
	static const char label[] = MGR_DEEPQUOTE_LABEL;
	uint8_t msg[sizeof(label) - 1 + MGR_UUID_LEN + 4 + MGR_HASH_LEN + 1 +
		    MGR_NONCE_MAX];
	uint8_t *p = msg;
	unsigned int n = MGR_HASH_LEN;

	if (nonce_len > MGR_NONCE_MAX || (pcr_mask & ~MGR_PCR_MASK_VALID))
		return MGR_ERR_RANGE;
	memcpy(p, label, sizeof(label) - 1);
	p += sizeof(label) - 1;
	memcpy(p, uuid, MGR_UUID_LEN);
	p += MGR_UUID_LEN;
	be32_put(p, pcr_mask);
	p += 4;
	memcpy(p, pcr_digest, MGR_HASH_LEN);
	p += MGR_HASH_LEN;
	*p++ = (uint8_t)nonce_len;
	if (nonce_len)
		memcpy(p, nonce, nonce_len);
	p += nonce_len;
	if (EVP_Digest(msg, (size_t)(p - msg), out, &n, EVP_sha256(), NULL) != 1)
		return MGR_ERR_CRYPTO;
	return 0;
}

/* ---- TPM2_PCR_Read, for PCR_READ ---- */

int mgrproto_pcr_read_cmd(uint32_t mask, const struct mgr_pcr_read_rsp *acc,
			  uint8_t cmd[MGR_PCR_READ_CMD_LEN])
{
	uint32_t left = mask & ~acc->pcr_mask;

	if (!mask || (mask & ~MGR_PCR_MASK_VALID) || !left)
		return MGR_ERR_RANGE;
	be16_put(cmd, TPM_ST_NO_SESSIONS);
	be32_put(cmd + 2, MGR_PCR_READ_CMD_LEN);
	be32_put(cmd + 6, TPM_CC_PCR_Read);
	be32_put(cmd + 10, 1);            /* one selection */
	be16_put(cmd + 14, TPM_ALG_SHA256);
	cmd[16] = MGR_PCR_SELECT;
	cmd[17] = (uint8_t)left;
	cmd[18] = (uint8_t)(left >> 8);
	cmd[19] = (uint8_t)(left >> 16);
	return 0;
}

/*
 * Response: header (10), pcrUpdateCounter (4), TPML_PCR_SELECTION,
 * TPML_DIGEST.  A TPM answers the lowest PCRs asked for first, so values
 * are appended in ascending order only when this read's PCRs all lie above
 * the ones already read: anything else is refused.
 */
int mgrproto_pcr_read_parse(const uint8_t *rsp, size_t len, uint32_t mask,
			    struct mgr_pcr_read_rsp *acc, uint32_t *tpm_rc)
{
	struct mgr_pcr_read_rsp r;
	struct cur c;
	uint32_t size, below;
	int rc;

	*tpm_rc = 0;
	if (len < MGR_HDR_LEN)
		return MGR_ERR_SHORT;
	size = be32_get(rsp + 2);
	if (size != len)
		return size > len ? MGR_ERR_PAYLOAD_SHORT : MGR_ERR_PAYLOAD_LONG;
	*tpm_rc = be32_get(rsp + 6);
	if (*tpm_rc != TPM_RC_SUCCESS)
		return MGR_ERR_STATUS;
	if (len < MGR_HDR_LEN + 4)
		return MGR_ERR_PAYLOAD_SHORT;
	memset(&r, 0, sizeof(r));
	c = (struct cur){ .in = rsp + MGR_HDR_LEN + 4,
			  .len = len - MGR_HDR_LEN - 4 };
	rc = pcr_read_fields(&c, &r);
	if (rc)
		return rc;
	/* acc's PCRs and all below its highest (acc: within 0..23) */
	below = acc->pcr_mask ? (2u << (31 - __builtin_clz(acc->pcr_mask))) - 1
			      : 0;
	if ((r.pcr_mask & ~mask) || (r.pcr_mask & below))
		return MGR_ERR_RANGE;
	memcpy(acc->digest[acc->count], r.digest, MGR_HASH_LEN * (size_t)r.count);
	acc->count += r.count;
	acc->pcr_mask |= r.pcr_mask;
	OPENSSL_cleanse(&r, sizeof(r));
	return 0;
}
