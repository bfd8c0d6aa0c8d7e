/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * swtpm's control channel (CMD_* of <swtpm/tpm_ioctl.h>), as swtpm 0.7.1
 * answers it on a socket.  Requests: big-endian u32 code, then the
 * request fields.  Replies: big-endian u32 result, then response fields
 * (GET_CAPABILITY alone has no result word).
 *
 * swtpm treats everything that arrives in one read as one request; a
 * well-behaved client writes one request and waits for its reply.  We
 * keep that rule for the body of commands without a fixed size, and wait
 * (with a deadline, like swtpm) for fixed-size bodies.
 */
#ifndef VTPM_SWTPM_CTRL_H
#define VTPM_SWTPM_CTRL_H

#include <stddef.h>
#include <stdint.h>

#include "proto/tpmcodes.h"

struct vtpm;

enum {
	CTRL_GET_CAPABILITY = 0x01,
	CTRL_INIT = 0x02,
	CTRL_SHUTDOWN = 0x03,
	CTRL_GET_TPMESTABLISHED = 0x04,
	CTRL_SET_LOCALITY = 0x05,
	CTRL_HASH_START = 0x06,
	CTRL_HASH_DATA = 0x07,
	CTRL_HASH_END = 0x08,
	CTRL_CANCEL_TPM_CMD = 0x09,
	CTRL_STORE_VOLATILE = 0x0a,
	CTRL_RESET_TPMESTABLISHED = 0x0b,
	CTRL_GET_STATEBLOB = 0x0c,
	CTRL_SET_STATEBLOB = 0x0d,
	CTRL_STOP = 0x0e,
	CTRL_GET_CONFIG = 0x0f,
	CTRL_SET_DATAFD = 0x10,
	CTRL_SET_BUFFERSIZE = 0x11,
	CTRL_GET_INFO = 0x12,
};

/* Result codes (TPM 1.2 numbering, as swtpm uses them). */
#define CTRL_RES_OK TPM12_SUCCESS
#define CTRL_RES_FAIL TPM12_FAIL
#define CTRL_RES_BAD_PARAMETER TPM12_BAD_PARAMETER
#define CTRL_RES_BAD_ORDINAL TPM12_BAD_ORDINAL
#define CTRL_RES_KEYNOTFOUND TPM12_KEYNOTFOUND
#define CTRL_RES_IOERROR TPM12_IOERROR
#define CTRL_RES_BAD_LOCALITY TPM12_BAD_LOCALITY
#define CTRL_RES_RETRY TPM12_RETRY

/* Flags of swtpm's requests and replies (PTM_*_FLAG_* of tpm_ioctl.h). */
#define CTRL_INIT_FLAG_DELETE_VOLATILE 0x1u  /* INIT */
#define CTRL_STATE_FLAG_ENCRYPTED 0x2u       /* GET/SET_STATEBLOB */
#define CTRL_CONFIG_FLAG_FILE_KEY 0x1u       /* GET_CONFIG */

/* Every command we implement (swtpm 0.7.1 reports the same 16 bits). */
#define CTRL_CAPABILITIES 0xffffull

/* The largest blob SET_STATEBLOB takes; libtpms states are far smaller. */
#define CTRL_MAX_BLOB (1u << 20)
#define CTRL_HASH_DATA_MAX 4096u
#define CTRL_STATE_BLOB_CHUNK (3 * 1024)
#define CTRL_GETINFO_MAX (3 * 1024)

struct ctrl_req {
	uint32_t code;
	const uint8_t *body;  /* every byte after the code */
	size_t body_len;
};

/*
 * 1 with *req filled when buf holds a request (it then consumes all of
 * buf), 0 when more bytes are needed.  Never fails: a malformed body is
 * the executor's to answer.
 */
int ctrl_frame(const uint8_t *buf, size_t len, struct ctrl_req *req);

/* Commands that need exclusive use of the engine (the job queue). */
int ctrl_needs_engine(uint32_t code);

struct ctrl_reply {
	uint8_t *buf; /* malloc'd */
	size_t len;
};

/* SET_LOCALITY's verdict: CTRL_RES_OK for 0..4 (4 only where allowed),
 * else CTRL_RES_BAD_LOCALITY.  The locality is the caller's to keep. */
uint32_t ctrl_locality_check(struct vtpm *v, const struct ctrl_req *req);

/* Builds a reply of just a result word. */
int ctrl_reply_res(struct ctrl_reply *r, uint32_t res);

/*
 * Executes a request against the instance (engine commands must be run
 * from a job call).  Commands handled by the transport itself
 * (SET_DATAFD, SHUTDOWN) are not handled here.
 */
int ctrl_execute(struct vtpm *v, const struct ctrl_req *req,
		 struct ctrl_reply *out);

#endif
