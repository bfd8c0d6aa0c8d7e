/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager protocol: frames between an instance (or a management
 * client) and the manager, as pure functions over byte buffers.  The
 * wire format is documented in docs/manager-protocol.md.
 *
 *   0  2  tag: REQ 0x01C1, REQ2 0x01C2, MREQ 0x01C3,
 *            RSP 0x01C4, RSP2 0x01C5, MRSP 0x01C6
 *   2  4  size of the whole frame, header included (10..4096)
 *   6  4  ordinal (requests) or status (responses)
 *  10  .  payload of the message type
 *
 * All integers are big-endian.  A response carries its request's tag + 3
 * (RSP answers REQ, RSP2 answers REQ2) and, unless its status is
 * MGR_SUCCESS, no payload.  Responses do not name their ordinal: the
 * receiver decodes a response as the type of the request it sent.
 *
 * Every message type has one row in a size table (payload minimum and
 * maximum, as OpenBSD's IMSG_SIZE_CHECK) and one list of its fields, which
 * the decoder reads into a checked struct and the encoder writes from one
 * (the same code, so the two cannot drift apart); nothing past the decoder
 * sees raw bytes.  Decoding is canonical: whatever decodes re-encodes to
 * the same bytes.
 */
#ifndef VTPM_MGRPROTO_H
#define VTPM_MGRPROTO_H

#include <stddef.h>
#include <stdint.h>

#define MGR_HDR_LEN 10
#define MGR_MAX_FRAME 4096
#define MGR_MAX_PAYLOAD (MGR_MAX_FRAME - MGR_HDR_LEN)

#define MGR_TAG_REQ 0x01C1  /* vTPM ordinals, from an instance */
#define MGR_TAG_REQ2 0x01C2 /* management ordinals */
#define MGR_TAG_RSP 0x01C4  /* answers REQ */
#define MGR_TAG_RSP2 0x01C5 /* answers REQ2 */
/* The manager's requests to an instance, on the link it made for it
 * (PCR_READ), and the instance's answers. */
#define MGR_TAG_MREQ 0x01C3
#define MGR_TAG_MRSP 0x01C6 /* answers MREQ */

#define MGR_PRIV_BASE 0x02000000u
#define MGR_ORD_SAVEHASHKEY 0x00000001u
#define MGR_ORD_LOADHASHKEY 0x00000002u
#define MGR_ORD_GET_QUOTE 0x00000004u
#define MGR_ORD_EK_CERTIFY 0x00000010u   /* manufacture: certify an EK */
#define MGR_ORD_MANUFACTURED 0x00000011u /* manufacture: done, durable */
#define MGR_ORD_PCR_READ 0x00000100u /* manager to instance, MREQ */
/* The same, for a link that carries the instance's requests only (the Xen
 * ring): the instance fetches the manager's PCR_READ and reports. */
#define MGR_ORD_PCR_FETCH 0x00000101u
#define MGR_ORD_PCR_REPORT 0x00000102u
/* An instance in its own domain asks the manager what only dom0 can read
 * about the frontend domain its ring serves (docs/migration.md): the
 * domain's Xen UUID when it connects, its run state when its device goes
 * away.  The manager answers only about a domain whose vtpm device in the
 * link's domain names the link's vTPM. */
#define MGR_ORD_XEN_PEER 0x00000200u
#define MGR_ORD_XEN_PEER_STATE 0x00000201u
#define MGR_ORD_GROUP_LIST (MGR_PRIV_BASE + 0x101)
#define MGR_ORD_GROUP_NEW (MGR_PRIV_BASE + 0x102)
#define MGR_ORD_GROUP_DEL (MGR_PRIV_BASE + 0x103)
#define MGR_ORD_VTPM_LIST (MGR_PRIV_BASE + 0x201)
#define MGR_ORD_VTPM_NEW (MGR_PRIV_BASE + 0x204)
#define MGR_ORD_VTPM_DEL (MGR_PRIV_BASE + 0x205)

#define MGR_HASH_LEN 32  /* SHA-256 */
#define MGR_KEY_LEN 32   /* a vTPM's state key */
#define MGR_UUID_LEN 16
#define MGR_NONCE_MAX 32
#define MGR_PCR_MASK_VALID 0x00ffffffu /* PCRs 0..23 */
#define MGR_LOAD_FLAG_NOSTATE 0x1u     /* no state committed yet */
#define MGR_LOAD_FLAG_MANUFACTURE 0x2u  /* make EK certificates first */
/* The record may trail what was answered: SAVEHASHKEY is posted once
 * the slot is durable and the answer goes out; its commit overlaps the
 * next command (the manager binds commits to its NV counter only every
 * --counter-interval, a window longer than this trail). */
#define MGR_LOAD_FLAG_TRAIL 0x4u
#define MGR_LOAD_FLAGS_KNOWN \
	(MGR_LOAD_FLAG_NOSTATE | MGR_LOAD_FLAG_MANUFACTURE | MGR_LOAD_FLAG_TRAIL)

/* EK_CERTIFY: which certificate, and the public key it certifies. */
#define MGR_EK_KIND_RSA 1      /* RSA-2048 EK (template L-1), NV 0x01C00002 */
#define MGR_EK_KIND_ECC 2      /* ECC P-256 EK (template L-2), NV 0x01C0000A */
#define MGR_EK_KIND_PLATFORM 3 /* platform certificate over the RSA EK */
#define MGR_EK_RSA_LEN 256     /* the modulus, big-endian (exponent 65537) */
#define MGR_EK_ECC_LEN 64      /* x || y, 32 bytes each */
#define MGR_EK_MODEL_LEN 16    /* TPM_PT_VENDOR_STRING_1..4 */
#define MGR_EKCERT_MAX (MGR_MAX_PAYLOAD - 2) /* a certificate's DER */

/* Bounds that keep every message inside one frame. */
/* attest and sig: two u16 lengths, and the other blob has a byte. */
#define MGR_QUOTE_BLOB_MAX (MGR_MAX_PAYLOAD - 4 - 1)          /* 4081 */
#define MGR_GROUP_LIST_MAX ((MGR_MAX_PAYLOAD - 4) / 4)        /* 1020 */
#define MGR_VTPM_LIST_MAX ((MGR_MAX_PAYLOAD - 8) / MGR_UUID_LEN) /* 254 */
#define MGR_PCRS 24        /* PCRs a vTPM's sha256 bank has */
#define MGR_XEN_DOMID_MAX 0x7fefu  /* below DOMID_FIRST_RESERVED */
#define MGR_XEN_DEVID_MAX 0x7fffffffu
#define MGR_PCR_SELECT 3   /* sizeofSelect of that bank */

/* Status codes of responses; 6 and 7 are ours, not vtpmmgr's. */
enum mgr_status {
	MGR_SUCCESS = 0,
	MGR_FAIL = 1,
	MGR_UNSUPPORTED = 2,            /* unknown ordinal */
	MGR_FORBIDDEN = 3,              /* not allowed on this connection */
	MGR_RESTORE_CONTEXT_FAILED = 4, /* the manager cannot use its store */
	MGR_INVALID_REQUEST = 5,        /* malformed frame or field */
	MGR_NOT_FOUND = 6,              /* no such vTPM or group */
	MGR_ROLLBACK = 7,               /* generation not above the recorded one */
	MGR_STATUS_COUNT = 8,           /* one past the last */
};

/* Message types, one per ordinal; the index of the size table. */
enum mgr_msg {
	MGR_MSG_SAVEHASHKEY = 0,
	MGR_MSG_LOADHASHKEY,
	MGR_MSG_GET_QUOTE,
	MGR_MSG_GROUP_LIST,
	MGR_MSG_GROUP_NEW,
	MGR_MSG_GROUP_DEL,
	MGR_MSG_VTPM_LIST,
	MGR_MSG_VTPM_NEW,
	MGR_MSG_VTPM_DEL,
	MGR_MSG_EK_CERTIFY,
	MGR_MSG_MANUFACTURED,
	MGR_MSG_PCR_READ, /* the manager asks, the instance answers */
	MGR_MSG_PCR_FETCH,  /* the instance asks what the manager wants */
	MGR_MSG_PCR_REPORT, /* and reports it */
	MGR_MSG_XEN_PEER,       /* the Xen UUID of the ring's frontend domain */
	MGR_MSG_XEN_PEER_STATE, /* that domain's run state */
	MGR_MSG_COUNT, /* one past the last */
};

enum mgrproto_err {
	MGR_OK = 0,
	MGR_ERR_SHORT = -1,         /* fewer bytes than a frame header */
	MGR_ERR_SIZE = -2,          /* size field outside 10..4096 */
	MGR_ERR_TRUNCATED = -3,     /* fewer bytes than the size field says */
	MGR_ERR_TRAILING = -4,      /* more bytes than the size field says */
	MGR_ERR_TAG = -5,           /* not a manager protocol tag */
	MGR_ERR_ORDINAL = -6,       /* unknown ordinal */
	MGR_ERR_WRONG_TAG = -7,     /* vTPM ordinal under REQ2, or back */
	MGR_ERR_PAYLOAD_SHORT = -8, /* payload ends inside its fields */
	MGR_ERR_PAYLOAD_LONG = -9,  /* payload goes on after its fields */
	MGR_ERR_RANGE = -10,        /* a field outside its bounds */
	MGR_ERR_STATUS = -11,       /* unknown status code */
	MGR_ERR_TYPE = -12,         /* caller passed no valid message type */
	MGR_ERR_ORDER = -13,        /* list not strictly ascending */
	MGR_ERR_CRYPTO = -14,
};

struct mgr_savehashkey_req {
	uint64_t generation;
	uint8_t state_hash[MGR_HASH_LEN]; /* SHA-256 of the whole state file */
};

struct mgr_loadhashkey_rsp {
	uint64_t generation;
	uint8_t state_hash[MGR_HASH_LEN];
	uint8_t state_key[MGR_KEY_LEN]; /* secret: wipe after use */
	uint32_t flags;                 /* MGR_LOAD_FLAG_* */
};

struct mgr_quote_req {
	uint8_t nonce_len; /* <= MGR_NONCE_MAX; bytes past it are zero */
	uint8_t nonce[MGR_NONCE_MAX];
	uint8_t pcr_digest[MGR_HASH_LEN]; /* SHA-256 over the selected PCRs */
	uint32_t pcr_mask;                /* which sha256 PCRs, bit n = PCR n */
};

struct mgr_quote_rsp {
	uint16_t attest_len; /* >= 1; marshalled TPMS_ATTEST */
	uint8_t attest[MGR_QUOTE_BLOB_MAX];
	uint16_t sig_len;    /* >= 1; marshalled TPMT_SIGNATURE */
	uint8_t sig[MGR_QUOTE_BLOB_MAX];
};

/* Lists are strictly ascending (by id, by UUID bytes): no duplicates,
 * and one encoding per list. */
struct mgr_group_list_rsp {
	uint32_t count;
	uint32_t group_id[MGR_GROUP_LIST_MAX];
};

struct mgr_group_id {
	uint32_t group_id;
};

struct mgr_vtpm_list_req {
	uint32_t group_id;
	uint32_t offset;
};

struct mgr_vtpm_list_rsp {
	uint32_t total; /* vTPMs in the group */
	uint32_t count; /* on this page; <= total, <= MGR_VTPM_LIST_MAX */
	uint8_t uuid[MGR_VTPM_LIST_MAX][MGR_UUID_LEN];
};

struct mgr_vtpm_new_req {
	uint32_t group_id;
	uint8_t uuid[MGR_UUID_LEN]; /* all zero: the manager picks one */
	uint8_t tpm_version;        /* 1 or 2 */
};

struct mgr_uuid {
	uint8_t uuid[MGR_UUID_LEN];
};

/* A new vTPM asks for one certificate (docs/ekcert.md).  The TPM's
 * identity comes from its TPM2_GetCapability(TPM_PROPERTIES). */
struct mgr_ek_certify_req {
	uint8_t kind;                     /* MGR_EK_KIND_* */
	uint32_t manufacturer;            /* TPM_PT_MANUFACTURER */
	uint8_t model[MGR_EK_MODEL_LEN];  /* printable ASCII, NUL padded */
	uint32_t fw_version[2];           /* TPM_PT_FIRMWARE_VERSION_1, _2 */
	uint32_t spec_level;              /* TPM_PT_LEVEL */
	uint32_t spec_revision;           /* TPM_PT_REVISION */
	uint16_t key_len;                 /* RSA/PLATFORM: 256, ECC: 64 */
	uint8_t key[MGR_EK_RSA_LEN];
};

struct mgr_ek_certify_rsp {
	uint16_t cert_len;                /* 1..MGR_EKCERT_MAX */
	uint8_t cert[MGR_EKCERT_MAX];     /* DER X.509 */
};

/* The manufacture of a new vTPM ended and its state is durable. */
struct mgr_manufactured_req {
	uint32_t result;                  /* 0: certificates written */
	uint32_t elapsed_ms;              /* keys, certificates, NV writes */
};

/* PCR_READ: the sha256 PCRs in pcr_mask (non-empty, within 0..23). */
struct mgr_pcr_read_req {
	uint32_t pcr_mask;
};

/*
 * PCR_READ's answer: TPM2_PCR_Read's pcrSelectionOut (a TPML_PCR_SELECTION
 * of exactly one sha256 selection of 3 bytes) and pcrValues (a TPML_DIGEST
 * of 32-byte digests, one per selected PCR, ascending), as the vTPM's
 * engine reported them.  The manager checks the selection against the
 * one it asked for.
 */
struct mgr_pcr_read_rsp {
	uint32_t pcr_mask;             /* pcrSelect, bit n = PCR n */
	uint32_t count;                /* digests; = popcount(pcr_mask) */
	uint8_t digest[MGR_PCRS][MGR_HASH_LEN];
};

/* XEN_PEER and XEN_PEER_STATE: the frontend domain of a vtpm device the
 * instance serves (backend: the instance's own domain), and its number. */
struct mgr_xen_peer_req {
	uint32_t domid; /* <= MGR_XEN_DOMID_MAX */
	uint32_t devid; /* <= MGR_XEN_DEVID_MAX */
};

/* XEN_PEER_STATE's answer: the domain's run state as Xen's domain info
 * says.  A domain gone since the manager saw it shut down is reported
 * as that shutdown (the toolstack destroys a saved domain right after
 * its devices are removed); GONE: gone without a shutdown seen. */
enum mgr_xen_run {
	MGR_XEN_RUNNING = 0,
	MGR_XEN_PAUSED = 1,    /* paused, not shut down */
	MGR_XEN_SUSPENDED = 2, /* shut down for a suspend (xl save, migrate) */
	MGR_XEN_SHUTDOWN = 3,  /* shut down for another reason */
	MGR_XEN_GONE = 4,
	MGR_XEN_RUN_COUNT = 5, /* one past the last */
};

struct mgr_xen_state_rsp {
	uint8_t state; /* enum mgr_xen_run */
};

/* A decoded request.  Types without a payload use no union member. */
struct mgr_req {
	enum mgr_msg type;
	union {
		struct mgr_savehashkey_req save;  /* SAVEHASHKEY */
		struct mgr_quote_req quote;       /* GET_QUOTE */
		struct mgr_group_id group_del;    /* GROUP_DEL */
		struct mgr_vtpm_list_req vtpm_list; /* VTPM_LIST */
		struct mgr_vtpm_new_req vtpm_new; /* VTPM_NEW */
		struct mgr_uuid vtpm_del;         /* VTPM_DEL */
		struct mgr_ek_certify_req ek;     /* EK_CERTIFY */
		struct mgr_manufactured_req made; /* MANUFACTURED */
		struct mgr_pcr_read_req pcr_read; /* PCR_READ */
		struct mgr_pcr_read_rsp pcr_report; /* PCR_REPORT */
		struct mgr_xen_peer_req xen_peer; /* XEN_PEER, XEN_PEER_STATE */
	} u;
};

/* A decoded response.  The union is used only when status is SUCCESS. */
struct mgr_rsp {
	enum mgr_msg type;
	uint32_t status; /* enum mgr_status */
	union {
		struct mgr_loadhashkey_rsp load;        /* LOADHASHKEY */
		struct mgr_quote_rsp quote;             /* GET_QUOTE */
		struct mgr_group_list_rsp group_list;   /* GROUP_LIST */
		struct mgr_group_id group_new;          /* GROUP_NEW */
		struct mgr_vtpm_list_rsp vtpm_list;     /* VTPM_LIST */
		struct mgr_uuid vtpm_new;               /* VTPM_NEW */
		struct mgr_ek_certify_rsp ek;           /* EK_CERTIFY */
		struct mgr_pcr_read_rsp pcr_read;       /* PCR_READ */
		struct mgr_pcr_read_req pcr_fetch;      /* PCR_FETCH; mask 0:
							 * nothing wanted */
		struct mgr_uuid xen_peer;               /* XEN_PEER: the Xen
							 * UUID (/vm/UUID) */
		struct mgr_xen_state_rsp xen_state;     /* XEN_PEER_STATE */
	} u;
};

const char *mgrproto_strerror(int err);
const char *mgrproto_status_str(uint32_t status);
const char *mgrproto_msg_name(enum mgr_msg type);
/* "running", "paused", ...; "?" for a value outside enum mgr_xen_run. */
const char *mgrproto_xen_run_str(uint32_t state);

/* The request tag and ordinal of a type (0 for an invalid type). */
uint16_t mgrproto_msg_tag(enum mgr_msg type);
uint32_t mgrproto_msg_ordinal(enum mgr_msg type);

/*
 * For reads from a stream: 0 when more bytes are needed, the length of
 * the frame at the start of buf when it is all there, or a negative
 * mgrproto_err (unknown tag, size field out of range) when the stream is
 * not speaking this protocol and should be closed.
 */
int mgrproto_frame_len(const uint8_t *buf, size_t len);

/* Decode exactly one whole frame (len is the frame length). */
int mgrproto_decode_req(const uint8_t *buf, size_t len, struct mgr_req *out);
int mgrproto_decode_rsp(enum mgr_msg expect, const uint8_t *buf, size_t len,
			struct mgr_rsp *out);

/* Build a frame in out; *outlen gets its length.  The fields are checked
 * as the decoder checks them (MGR_ERR_RANGE, MGR_ERR_STATUS). */
int mgrproto_encode_req(const struct mgr_req *req, uint8_t out[MGR_MAX_FRAME],
			size_t *outlen);
int mgrproto_encode_rsp(const struct mgr_rsp *rsp, uint8_t out[MGR_MAX_FRAME],
			size_t *outlen);

/*
 * The status that answers a request whose decoding failed with err:
 * MGR_UNSUPPORTED for an unknown ordinal, MGR_INVALID_REQUEST otherwise.
 */
uint32_t mgrproto_err_status(int err);

/*
 * Writes the 10-byte status-only response to the request in req (which
 * may be undecodable): its tag is RSP2 when req starts with REQ2, else RSP.
 */
void mgrproto_encode_status(const uint8_t *req, size_t req_len,
			    uint32_t status, uint8_t out[MGR_HDR_LEN]);

/* Wipes a response (LOADHASHKEY carries a state key). */
void mgrproto_rsp_wipe(struct mgr_rsp *rsp);

/*
 * TPM2_PCR_Read on the vTPM side of PCR_READ.  A TPM answers at most 8
 * digests per read, so the instance reads until the mask is covered:
 * mgrproto_pcr_read_cmd builds the command for the PCRs of mask not yet
 * in acc (cmd: 20 bytes; 0, or MGR_ERR_RANGE when none are left or mask
 * is invalid), and mgrproto_pcr_read_parse adds one response's values to
 * acc (whose pcr_mask and count start at 0): 0; MGR_ERR_STATUS for a TPM
 * error (*tpm_rc set); MGR_ERR_SHORT / MGR_ERR_PAYLOAD_SHORT /
 * MGR_ERR_PAYLOAD_LONG for a response that does not add up; MGR_ERR_RANGE
 * for a selection other than one sha256 bank of 3 bytes, an empty one, a
 * PCR not asked for or already read, or a digest not of 32 bytes.
 */
#define MGR_PCR_READ_CMD_LEN 20
int mgrproto_pcr_read_cmd(uint32_t mask, const struct mgr_pcr_read_rsp *acc,
			  uint8_t cmd[MGR_PCR_READ_CMD_LEN]);
int mgrproto_pcr_read_parse(const uint8_t *rsp, size_t len, uint32_t mask,
			    struct mgr_pcr_read_rsp *acc, uint32_t *tpm_rc);

/*
 * The qualifying data of a deep quote, as the manager passes it to
 * TPM2_Quote and a verifier recomputes it:
 * SHA-256("VTPM-DEEPQUOTE-v1" || uuid[16] || u32 pcr_mask ||
 *         pcr_digest[32] || u8 nonce_len || nonce).
 * The label is its 17 ASCII bytes, no terminator; pcr_mask is big-endian.
 */
#define MGR_DEEPQUOTE_LABEL "VTPM-DEEPQUOTE-v1"
int mgrproto_deepquote_qd(const uint8_t uuid[MGR_UUID_LEN], uint32_t pcr_mask,
			  const uint8_t pcr_digest[MGR_HASH_LEN],
			  const uint8_t *nonce, size_t nonce_len,
			  uint8_t out[MGR_HASH_LEN]);

#endif
