/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The online migration protocol between two managers (docs/migration.md,
 * "Between hosts, online"; docs/manager-protocol.md has the sequence).
 * One TCP connection carries one exchange of four frames:
 *
 *   source -> destination  HELLO      op, flags, UUID, transaction id,
 *                                     nonce_s
 *   destination -> source  CHALLENGE  nonce_d, its certified migration key
 *   source -> destination  REQUEST    its AK, a quote over the transcript,
 *                                     the export blob (op MIGRATE)
 *   destination -> source  REPLY      status, message, a quote by its AK
 *
 * Frame: magic "VMIG", u8 version (1), u8 type, u16 zero, u32 body
 * length, body.  Integers big-endian; every variable field a length (u16,
 * or u32 for the blob) and its bytes, each within its bound, the body
 * consumed exactly.  Pure functions: no I/O, no TPM.
 */
#ifndef VTPM_PROTO_MIGWIRE_H
#define VTPM_PROTO_MIGWIRE_H

#include <stddef.h>
#include <stdint.h>

#include "proto/expblob.h"

#define MIGWIRE_MAGIC "VMIG"
#define MIGWIRE_VERSION 1
#define MIGWIRE_HDR_LEN 12
#define MIGWIRE_NONCE_LEN 32
#define MIGWIRE_MSG_MAX 512          /* a REPLY's message */
#define MIGWIRE_ATTEST_MAX 2048
#define MIGWIRE_SIG_MAX 1024
#define MIGWIRE_SPKI_MAX 4096
#define MIGWIRE_PUBLIC_MAX 1024
#define MIGWIRE_MAX_BODY (EXPBLOB_MAX_LEN + 16384)

enum migwire_type {
	MIGWIRE_HELLO = 1,
	MIGWIRE_CHALLENGE = 2,
	MIGWIRE_REQUEST = 3,
	MIGWIRE_REPLY = 4,
};

enum migwire_op {
	MIGWIRE_OP_MIGRATE = 1, /* REQUEST carries the blob; REPLY: prepared */
	MIGWIRE_OP_COMMIT = 2,  /* the source committed: make it startable */
	MIGWIRE_OP_ABORT = 3,   /* the source aborted: discard the import */
};

#define MIGWIRE_F_START 0x01u /* HELLO of a COMMIT: start it on arrival */

enum migwire_status {
	MIGWIRE_OK = 0,         /* PREPARED, DONE or ABORTED, by op */
	MIGWIRE_REFUSED = 1,    /* will not: the message says why */
	MIGWIRE_FAILED = 2,     /* could not now (may be retried) */
};

struct migwire_bytes {
	const uint8_t *p;       /* into the decoded frame */
	size_t n;
};

struct migwire_msg {
	uint8_t type;
	/* HELLO */
	uint8_t op;
	uint8_t flags;                      /* MIGWIRE_F_* */
	uint8_t uuid[16];
	uint8_t txid[16];
	uint64_t generation;
	uint8_t nonce[MIGWIRE_NONCE_LEN];   /* HELLO, CHALLENGE */
	/* CHALLENGE: the certified migration key (migkey_verify) */
	struct migwire_bytes key_public, key_attest, key_sig;
	struct migwire_bytes ak_spki;       /* CHALLENGE, REQUEST */
	/* REQUEST, REPLY: a quote by the sender's AK */
	struct migwire_bytes attest, sig;
	struct migwire_bytes payload;       /* REQUEST: the blob, or empty */
	/* REPLY */
	uint8_t status;
	struct migwire_bytes message;       /* printable ASCII */
};

/* The frame's total length from its first bytes: 0 (*total set),
 * -EAGAIN with fewer than MIGWIRE_HDR_LEN bytes, -EBADMSG for a header
 * that is not a version-1 frame of a known type within the bounds. */
int migwire_frame_len(const uint8_t *buf, size_t len, size_t *total);

/* A whole frame (exactly len bytes) into m, whose pointers point into
 * buf; 0 or -EBADMSG with err set. */
int migwire_decode(const uint8_t *buf, size_t len, struct migwire_msg *m,
		   char *err, size_t errlen);

/* m (by m->type) into a malloc'd frame; 0, -EINVAL (a field out of its
 * bounds) or -ENOMEM. */
int migwire_encode(const struct migwire_msg *m, uint8_t **out,
		   size_t *outlen);

/* The transcript: SHA-256 over a label, the HELLO and the CHALLENGE
 * frames as sent. */
void migwire_transcript(const uint8_t *hello, size_t hello_len,
			const uint8_t *chal, size_t chal_len,
			uint8_t out[32]);

/* The qualifying data of the source's quote: SHA-256 over "request",
 * the transcript, the source AK and the payload's SHA-256. */
void migwire_request_qd(const uint8_t transcript[32], const uint8_t *spki,
			size_t spki_len, const uint8_t *payload,
			size_t payload_len, uint8_t out[32]);

/* The qualifying data of the destination's quote: SHA-256 over "reply",
 * the transcript, the status and the message. */
void migwire_reply_qd(const uint8_t transcript[32], uint8_t status,
		      const uint8_t *msg, size_t msg_len, uint8_t out[32]);

const char *migwire_op_name(uint8_t op);

#endif
