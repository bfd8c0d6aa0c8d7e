/* SPDX-License-Identifier: BSD-3-Clause */
#include "unix-socket/swtpm_ctrl.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bytes.h"
#include "lib/log.h"
#include "proto/migblob.h"
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

uint32_t ctrl_locality_check(struct vtpm *v, const struct ctrl_req *req)
{
	if (req->code != CTRL_SET_LOCALITY || req->body_len < 1 ||
	    req->body[0] > 4)
		return CTRL_RES_BAD_LOCALITY;
	if (req->body[0] == 4 && vtpm_rejects_locality4(v)) {
		log_warnx("control: SET_LOCALITY 4 refused (--locality "
			  "reject-4)");
		return CTRL_RES_BAD_LOCALITY;
	}
	return CTRL_RES_OK;
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

/*
 * A state blob holds the TPM's seeds: it leaves (or enters) only sealed
 * under the operator's migration key, or in the clear where the operator
 * allowed that for this vTPM.  Otherwise the request is refused.
 */
static bool stateblob_refused(struct vtpm *v, const char *what)
{
	if (vtpm_migration_key(v) || vtpm_plaintext_state_allowed(v))
		return false;
	log_warnx("control: %s refused: no --migration-key and no "
		  "--allow-plaintext-state for this vTPM", what);
	return true;
}

/* Seals a wrapped blob under the migration key in place of *blob. */
static int seal_blob(const uint8_t *key, uint32_t type, uint8_t **blob,
		     uint32_t *blen)
{
	uint8_t *sealed;
	size_t slen;
	int rc = migblob_seal(key, type, *blob, *blen, &sealed, &slen);

	OPENSSL_cleanse(*blob, *blen);
	free(*blob);
	*blob = NULL;
	if (rc)
		return rc;
	if (slen > UINT32_MAX) {
		free(sealed);
		return -EINVAL;
	}
	*blob = sealed;
	*blen = (uint32_t)slen;
	return 0;
}

static int ctrl_get_stateblob(struct vtpm *v, const struct ctrl_req *req,
			      struct ctrl_reply *out)
{
	struct engine *e = vtpm_engine(v);
	const uint8_t *key = vtpm_migration_key(v);
	uint32_t type, offset, blen = 0, n;
	uint8_t *blob = NULL;

	if (req->body_len < 12)
		return ctrl_reply_res(out, CTRL_RES_BAD_PARAMETER);
	if (stateblob_refused(v, "GET_STATEBLOB"))
		return ctrl_reply_res(out, CTRL_RES_FAIL);
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
	if (key && seal_blob(key, type, &blob, &blen))
		return -ENOMEM;
	n = offset < blen ? blen - offset : 0;
	if (reply_alloc(out, 16 + (size_t)n)) {
		OPENSSL_cleanse(blob, blen);
		free(blob);
		return -ENOMEM;
	}
	be32_put(out->buf, CTRL_RES_OK);
	/* swtpm's flag for a blob sealed under the migration key; QEMU
	 * hands it back with the blob to SET_STATEBLOB. */
	be32_put(out->buf + 4, key ? CTRL_STATE_FLAG_ENCRYPTED : 0);
	be32_put(out->buf + 8, n);
	be32_put(out->buf + 12, n);
	if (n)
		memcpy(out->buf + 16, blob + offset, n);
	OPENSSL_cleanse(blob, blen);
	free(blob);
	return 0;
}

static uint32_t set_unwrapped(struct engine *e, uint32_t type,
			      const uint8_t *buf, size_t len)
{
	const uint8_t *raw;
	uint32_t rawlen = 0;

	switch (swtpm_blob_unwrap(buf, len, &raw, &rawlen)) {
	case SWTPM_BLOB_OK:
		break;
	case SWTPM_BLOB_ERR_ENCRYPTED:
		return CTRL_RES_KEYNOTFOUND;
	default:
		return CTRL_RES_BAD_PARAMETER;
	}
	/* The engine has libtpms check the blob's format, then stages it
	 * for the next INIT. */
	switch (engine_set_blob(e, (enum statefile_blob)type, raw, rawlen)) {
	case 0:
		return CTRL_RES_OK;
	case -EBADMSG:
		return CTRL_RES_BAD_PARAMETER;
	default:
		return CTRL_RES_FAIL;
	}
}

static uint32_t set_sealed(struct vtpm *v, uint32_t type, const uint8_t *buf,
			   size_t len)
{
	uint8_t *plain;
	size_t plen;
	uint32_t res;

	switch (migblob_open(vtpm_migration_key(v), type, buf, len, &plain,
			     &plen)) {
	case 0:
		break;
	case -ENOMEM:
	case -EIO:
		return CTRL_RES_FAIL;
	default:
		log_warnx("control: SET_STATEBLOB refused: the blob is not "
			  "sealed under this vTPM's migration key as type %u",
			  type);
		return CTRL_RES_BAD_PARAMETER;
	}
	res = set_unwrapped(vtpm_engine(v), type, plain, plen);
	OPENSSL_cleanse(plain, plen);
	free(plain);
	return res;
}

static int ctrl_set_stateblob(struct vtpm *v, const struct ctrl_req *req,
			      struct ctrl_reply *out)
{
	struct engine *e = vtpm_engine(v);
	uint32_t flags, type, len;
	bool sealed;

	if (engine_is_running(e))
		return ctrl_reply_res(out, CTRL_RES_BAD_ORDINAL);
	if (req->body_len < 12)
		return ctrl_reply_res(out, CTRL_RES_BAD_PARAMETER);
	if (stateblob_refused(v, "SET_STATEBLOB"))
		return ctrl_reply_res(out, CTRL_RES_FAIL);
	flags = be32_get(req->body);
	type = be32_get(req->body + 4);
	len = be32_get(req->body + 8);
	sealed = flags & CTRL_STATE_FLAG_ENCRYPTED;
	if (sealed && !vtpm_migration_key(v))
		return ctrl_reply_res(out, CTRL_RES_KEYNOTFOUND);
	if (!sealed && !vtpm_plaintext_state_allowed(v)) {
		/* A key is configured: state comes in sealed or not at all
		 * (a blob in the clear would replace the TPM's seeds with
		 * ones its sender knows). */
		log_warnx("control: SET_STATEBLOB refused: a blob in the "
			  "clear, and this vTPM takes only sealed ones");
		return ctrl_reply_res(out, CTRL_RES_FAIL);
	}
	if (type < SF_BLOB_PERMANENT || type > SF_BLOB_SAVESTATE ||
	    len > CTRL_MAX_BLOB || req->body_len != 12 + (size_t)len)
		return ctrl_reply_res(out, CTRL_RES_BAD_PARAMETER);
	if (len == 0)
		return ctrl_reply_res(out, CTRL_RES_OK);
	if (sealed)
		return ctrl_reply_res(out,
				      set_sealed(v, type, req->body + 12, len));
	return ctrl_reply_res(out, set_unwrapped(e, type, req->body + 12, len));
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
		/* The verdict only: the transport keeps the locality with the
		 * client that set it (ctrl_locality_check). */
		return ctrl_reply_res(out, ctrl_locality_check(v, req));
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
		return ctrl_get_stateblob(v, req, out);
	case CTRL_SET_STATEBLOB:
		return ctrl_set_stateblob(v, req, out);
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
