/* SPDX-License-Identifier: BSD-3-Clause */
#include "unix-socket/swtpm_ctrl.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bytes.h"
#include "proto/statefile.h"
#include "proto/tpmcodes.h"
#include "proto/swtpm_blob.h"
#include "instance/engine.h"
#include "instance/vtpm.h"

int ctrl_frame(const uint8_t *buf, size_t len, struct ctrl_req *req)
{
	size_t need = 0;
	const uint8_t *b = buf + 4;
	size_t blen;

	if (len < 4)
		return 0;
	blen = len - 4;
	req->code = be32_get(buf);
	switch (req->code) {
	case CTRL_INIT:
		need = 4;
		break;
	case CTRL_SET_LOCALITY:
	case CTRL_RESET_TPMESTABLISHED:
		need = 1;
		break;
	case CTRL_GET_STATEBLOB:
		need = 12;
		break;
	case CTRL_SET_STATEBLOB:
		need = 12;
		if (blen >= 12) {
			uint32_t n = be32_get(b + 8);
			/* Oversized: complete now, the executor refuses it. */
			if (n <= CTRL_MAX_BLOB)
				need += n;
		}
		break;
	case CTRL_HASH_DATA:
		need = 4;
		if (blen >= 4) {
			uint32_t n = be32_get(b);
			if (n <= CTRL_HASH_DATA_MAX)
				need += n;
		}
		break;
	default:
		break;
	}
	if (blen < need)
		return 0;
	req->body = b;
	req->body_len = blen;
	return 1;
}

int ctrl_needs_engine(uint32_t code)
{
	switch (code) {
	case CTRL_GET_CAPABILITY:
	case CTRL_SHUTDOWN:
	case CTRL_CANCEL_TPM_CMD:
	case CTRL_GET_CONFIG:
	case CTRL_SET_DATAFD:
		return 0;
	default:
		return 1;
	}
}

static int reply_alloc(struct ctrl_reply *r, size_t len)
{
	r->buf = calloc(1, len ? len : 1);
	r->len = len;
	return r->buf ? 0 : -ENOMEM;
}

int ctrl_reply_res(struct ctrl_reply *r, uint32_t res)
{
	if (reply_alloc(r, 4))
		return -ENOMEM;
	be32_put(r->buf, res);
	return 0;
}

static int ctrl_get_stateblob(struct engine *e, const struct ctrl_req *req,
			      struct ctrl_reply *out)
{
	uint32_t type, offset, blen = 0, n;
	uint8_t *blob = NULL;

	if (req->body_len < 12)
		return ctrl_reply_res(out, CTRL_RES_BAD_PARAMETER);
	type = be32_get(req->body + 4);
	offset = be32_get(req->body + 8);
	/* A volatile blob handed out is consumed (engine_get_blob). */
	if (type < SF_BLOB_PERMANENT || type > SF_BLOB_SAVESTATE ||
	    engine_get_blob(e, (enum statefile_blob)type, &blob, &blen) ||
	    !blob) {
		if (reply_alloc(out, 16))
			return -ENOMEM;
		be32_put(out->buf, CTRL_RES_RETRY);
		return 0;
	}
	/* swtpm's envelope, so that the blob also loads into swtpm. */
	{
		uint8_t *wrapped;
		uint32_t wlen;
		int rc = swtpm_blob_wrap(blob, blen, &wrapped, &wlen);

		OPENSSL_cleanse(blob, blen);
		free(blob);
		if (rc)
			return -ENOMEM;
		blob = wrapped;
		blen = wlen;
	}
	n = offset < blen ? blen - offset : 0;
	if (reply_alloc(out, 16 + (size_t)n)) {
		OPENSSL_cleanse(blob, blen);
		free(blob);
		return -ENOMEM;
	}
	be32_put(out->buf, CTRL_RES_OK);
	be32_put(out->buf + 4, 0); /* not encrypted: no migration key */
	be32_put(out->buf + 8, n);
	be32_put(out->buf + 12, n);
	if (n)
		memcpy(out->buf + 16, blob + offset, n);
	OPENSSL_cleanse(blob, blen);
	free(blob);
	return 0;
}

static int ctrl_set_stateblob(struct engine *e, const struct ctrl_req *req,
			      struct ctrl_reply *out)
{
	uint32_t flags, type, len, rawlen;
	const uint8_t *raw;

	if (engine_is_running(e))
		return ctrl_reply_res(out, CTRL_RES_BAD_ORDINAL);
	if (req->body_len < 12)
		return ctrl_reply_res(out, CTRL_RES_BAD_PARAMETER);
	flags = be32_get(req->body);
	type = be32_get(req->body + 4);
	len = be32_get(req->body + 8);
	if (flags & CTRL_STATE_FLAG_ENCRYPTED) /* we have no migration key */
		return ctrl_reply_res(out, CTRL_RES_KEYNOTFOUND);
	if (type < SF_BLOB_PERMANENT || type > SF_BLOB_SAVESTATE ||
	    len > CTRL_MAX_BLOB || req->body_len != 12 + (size_t)len)
		return ctrl_reply_res(out, CTRL_RES_BAD_PARAMETER);
	if (len == 0)
		return ctrl_reply_res(out, CTRL_RES_OK);
	switch (swtpm_blob_unwrap(req->body + 12, len, &raw, &rawlen)) {
	case SWTPM_BLOB_OK:
		break;
	case SWTPM_BLOB_ERR_ENCRYPTED:
		return ctrl_reply_res(out, CTRL_RES_KEYNOTFOUND);
	default:
		return ctrl_reply_res(out, CTRL_RES_BAD_PARAMETER);
	}
	/* The engine has libtpms check the blob's format, then stages it
	 * for the next INIT. */
	switch (engine_set_blob(e, (enum statefile_blob)type, raw, rawlen)) {
	case 0:
		return ctrl_reply_res(out, CTRL_RES_OK);
	case -EBADMSG:
		return ctrl_reply_res(out, CTRL_RES_BAD_PARAMETER);
	default:
		return ctrl_reply_res(out, CTRL_RES_FAIL);
	}
}

static int ctrl_get_info(struct engine *e, const struct ctrl_req *req,
			 struct ctrl_reply *out)
{
	uint64_t flags;
	uint32_t offset, tot, n;
	char *info;
	size_t slen;

	if (req->body_len < 16)
		return ctrl_reply_res(out, CTRL_RES_BAD_PARAMETER);
	flags = be64_get(req->body);
	offset = be32_get(req->body + 8);
	info = engine_get_info(e, flags);
	if (!info)
		return ctrl_reply_res(out, TPM12_SIZE);
	slen = strlen(info);
	if (offset >= slen) {
		free(info);
		return ctrl_reply_res(out, CTRL_RES_BAD_PARAMETER);
	}
	tot = (uint32_t)slen + 1;
	n = tot - offset;
	if (n > CTRL_GETINFO_MAX)
		n = CTRL_GETINFO_MAX;
	if (reply_alloc(out, 12 + (size_t)n)) {
		free(info);
		return -ENOMEM;
	}
	be32_put(out->buf, CTRL_RES_OK);
	be32_put(out->buf + 4, tot);
	be32_put(out->buf + 8, n);
	memcpy(out->buf + 12, info + offset, n);
	free(info);
	return 0;
}

static int ctrl_set_buffersize(struct engine *e, const struct ctrl_req *req,
			       struct ctrl_reply *out)
{
	struct engine_buffer_size bs;

	if (req->body_len < 4)
		return ctrl_reply_res(out, CTRL_RES_BAD_PARAMETER);
	if (engine_set_buffer_size(e, be32_get(req->body), &bs))
		return ctrl_reply_res(out, CTRL_RES_BAD_ORDINAL);
	if (reply_alloc(out, 16))
		return -ENOMEM;
	be32_put(out->buf, CTRL_RES_OK);
	be32_put(out->buf + 4, bs.size);
	be32_put(out->buf + 8, bs.min);
	be32_put(out->buf + 12, bs.max);
	return 0;
}

/* Commands that exist only while the TPM runs, as in swtpm. */
static int needs_running(uint32_t code)
{
	switch (code) {
	case CTRL_GET_TPMESTABLISHED:
	case CTRL_HASH_START:
	case CTRL_HASH_DATA:
	case CTRL_HASH_END:
	case CTRL_CANCEL_TPM_CMD:
	case CTRL_STORE_VOLATILE:
	case CTRL_RESET_TPMESTABLISHED:
	case CTRL_GET_STATEBLOB:
		return 1;
	default:
		return 0;
	}
}

int ctrl_execute(struct vtpm *v, const struct ctrl_req *req,
		 struct ctrl_reply *out)
{
	struct engine *e = vtpm_engine(v);
	const uint8_t *b = req->body;
	size_t blen = req->body_len;
	bool bit;
	uint32_t rc;

	out->buf = NULL;
	out->len = 0;
	if (needs_running(req->code) && !engine_is_running(e))
		return ctrl_reply_res(out, CTRL_RES_BAD_ORDINAL);

	switch (req->code) {
	case CTRL_GET_CAPABILITY:
		if (reply_alloc(out, 8))
			return -ENOMEM;
		be64_put(out->buf, CTRL_CAPABILITIES);
		return 0;
	case CTRL_INIT:
		if (blen != 4)
			return ctrl_reply_res(out, CTRL_RES_BAD_PARAMETER);
		/* A power cycle; swtpm runs no Startup here either. */
		rc = engine_power_on(e, be32_get(b) &
					       CTRL_INIT_FLAG_DELETE_VOLATILE)
			     ? CTRL_RES_FAIL
			     : CTRL_RES_OK;
		return ctrl_reply_res(out, rc);
	case CTRL_STOP:
		if (blen)
			return ctrl_reply_res(out, CTRL_RES_BAD_PARAMETER);
		engine_power_off(e);
		return ctrl_reply_res(out, CTRL_RES_OK);
	case CTRL_GET_TPMESTABLISHED:
		if (blen)
			return ctrl_reply_res(out, CTRL_RES_BAD_PARAMETER);
		rc = engine_get_established(e, &bit);
		if (reply_alloc(out, 8))
			return -ENOMEM;
		be32_put(out->buf, rc);
		out->buf[4] = bit ? 1 : 0;
		return 0;
	case CTRL_SET_LOCALITY:
		if (b[0] > 4)
			return ctrl_reply_res(out, CTRL_RES_BAD_LOCALITY);
		engine_set_locality(e, b[0]);
		return ctrl_reply_res(out, CTRL_RES_OK);
	case CTRL_RESET_TPMESTABLISHED:
		if (b[0] > 4)
			return ctrl_reply_res(out, CTRL_RES_BAD_LOCALITY);
		/* libtpms checks the locality (3 or 4). */
		return ctrl_reply_res(out, engine_reset_established(e, b[0]));
	case CTRL_HASH_START:
	case CTRL_HASH_END:
		if (blen)
			return ctrl_reply_res(out, CTRL_RES_BAD_PARAMETER);
		rc = req->code == CTRL_HASH_START ? engine_hash_start(e)
						  : engine_hash_end(e);
		return ctrl_reply_res(out, rc);
	case CTRL_HASH_DATA: {
		uint32_t n = be32_get(b);
		if (n > CTRL_HASH_DATA_MAX || blen != 4 + (size_t)n)
			return ctrl_reply_res(out, CTRL_RES_BAD_PARAMETER);
		rc = n ? engine_hash_data(e, b + 4, n) : CTRL_RES_OK;
		return ctrl_reply_res(out, rc);
	}
	case CTRL_CANCEL_TPM_CMD:
		if (blen)
			return ctrl_reply_res(out, CTRL_RES_BAD_PARAMETER);
		vtpm_cancel(v);
		return ctrl_reply_res(out, CTRL_RES_OK);
	case CTRL_STORE_VOLATILE:
		if (blen)
			return ctrl_reply_res(out, CTRL_RES_BAD_PARAMETER);
		return ctrl_reply_res(out, engine_store_volatile(e)
						   ? CTRL_RES_FAIL
						   : CTRL_RES_OK);
	case CTRL_GET_STATEBLOB:
		return ctrl_get_stateblob(e, req, out);
	case CTRL_SET_STATEBLOB:
		return ctrl_set_stateblob(e, req, out);
	case CTRL_GET_CONFIG:
		if (blen)
			return ctrl_reply_res(out, CTRL_RES_BAD_PARAMETER);
		if (reply_alloc(out, 8))
			return -ENOMEM;
		/* The state file is encrypted. */
		be32_put(out->buf + 4, CTRL_CONFIG_FLAG_FILE_KEY);
		return 0;
	case CTRL_SET_BUFFERSIZE:
		return ctrl_set_buffersize(e, req, out);
	case CTRL_GET_INFO:
		return ctrl_get_info(e, req, out);
	default:
		return ctrl_reply_res(out, CTRL_RES_BAD_ORDINAL);
	}
}
