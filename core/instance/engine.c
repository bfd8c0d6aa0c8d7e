/* SPDX-License-Identifier: BSD-3-Clause */
#include "instance/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_nvfilename.h>
#include <libtpms/tpm_tis.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/bytes.h"
#include "lib/log.h"
#include "lib/store.h"
#include "proto/tpmcodes.h"
#include "proto/tpmframe.h"

/*
 * libtpms callbacks carry no user pointer: one engine per process, and
 * this is how the callbacks find it (set by engine_setup).
 */
static struct engine *the_engine;

/* What a stopped or failing TPM answers (as swtpm does). */
static uint32_t failure_rc(const struct engine *e)
{
	return e->version == TPM_VERSION_2 ? TPM_RC_FAILURE : TPM12_FAIL;
}

static int blob_of_name(const char *name)
{
	if (strcmp(name, TPM_PERMANENT_ALL_NAME) == 0)
		return SF_BLOB_PERMANENT;
	if (strcmp(name, TPM_VOLATILESTATE_NAME) == 0)
		return SF_BLOB_VOLATILE;
	if (strcmp(name, TPM_SAVESTATE_NAME) == 0)
		return SF_BLOB_SAVESTATE;
	return -1;
}

static TPM_RESULT cb_nvram_init(void)
{
	return TPM_SUCCESS;
}

static TPM_RESULT cb_nvram_loaddata(unsigned char **data, uint32_t *length,
				    uint32_t tpm_number, const char *name)
{
	struct engine *e = the_engine;
	int t = blob_of_name(name);

	(void)tpm_number;
	*data = NULL;
	*length = 0;
	if (t < 0 || !e->blobs.data[t])
		return TPM_RETRY; /* "no such state": libtpms starts fresh */
	*data = malloc(e->blobs.len[t] ? e->blobs.len[t] : 1);
	if (!*data)
		return TPM_FAIL;
	memcpy(*data, e->blobs.data[t], e->blobs.len[t]);
	*length = e->blobs.len[t];
	return TPM_SUCCESS;
}

static int blob_replace(struct engine *e, int t, const uint8_t *data,
			uint32_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	if (e->blobs.data[t]) {
		OPENSSL_cleanse(e->blobs.data[t], e->blobs.len[t]);
		free(e->blobs.data[t]);
	}
	e->blobs.data[t] = copy;
	e->blobs.len[t] = len;
	e->dirty = true;
	return 0;
}

static TPM_RESULT cb_nvram_storedata(const unsigned char *data,
				     uint32_t length, uint32_t tpm_number,
				     const char *name)
{
	struct engine *e = the_engine;
	int t = blob_of_name(name);

	(void)tpm_number;
	if (t < 0) {
		log_warnx("engine: libtpms stored unknown state '%s'", name);
		return TPM_FAIL;
	}
	return blob_replace(e, t, data, length) ? TPM_FAIL : TPM_SUCCESS;
}

static TPM_RESULT cb_nvram_deletename(uint32_t tpm_number, const char *name,
				      TPM_BOOL must_exist)
{
	struct engine *e = the_engine;
	int t = blob_of_name(name);

	(void)tpm_number;
	if (t < 0 || !e->blobs.data[t])
		return must_exist ? TPM_FAIL : TPM_SUCCESS;
	OPENSSL_cleanse(e->blobs.data[t], e->blobs.len[t]);
	free(e->blobs.data[t]);
	e->blobs.data[t] = NULL;
	e->blobs.len[t] = 0;
	e->dirty = true;
	return TPM_SUCCESS;
}

static TPM_RESULT cb_io_init(void)
{
	return TPM_SUCCESS;
}

static TPM_RESULT cb_io_getlocality(TPM_MODIFIER_INDICATOR *loc,
				    uint32_t tpm_number)
{
	(void)tpm_number;
	*loc = (TPM_MODIFIER_INDICATOR)the_engine->locality;
	return TPM_SUCCESS;
}

static TPM_RESULT cb_io_getphysicalpresence(TPM_BOOL *pp, uint32_t tpm_number)
{
	(void)tpm_number;
	*pp = 0;
	return TPM_SUCCESS;
}

int engine_setup(struct engine *e, enum tpm_version v, uint32_t buffer_size)
{
	static struct libtpms_callbacks cbs = {
		.sizeOfStruct = sizeof(struct libtpms_callbacks),
		.tpm_nvram_init = cb_nvram_init,
		.tpm_nvram_loaddata = cb_nvram_loaddata,
		.tpm_nvram_storedata = cb_nvram_storedata,
		.tpm_nvram_deletename = cb_nvram_deletename,
		.tpm_io_init = cb_io_init,
		.tpm_io_getlocality = cb_io_getlocality,
		.tpm_io_getphysicalpresence = cb_io_getphysicalpresence,
	};
	uint32_t minsz, maxsz;

	memset(e, 0, sizeof(*e));
	e->version = v;
	e->dirfd = -1;
	e->slot_fd = -1;
	e->slot_cur = -1;
	the_engine = e;
	if (TPMLIB_ChooseTPMVersion(v == TPM_VERSION_2 ? TPMLIB_TPM_VERSION_2
						       : TPMLIB_TPM_VERSION_1_2))
		return -ENOTSUP;
	if (TPMLIB_RegisterCallbacks(&cbs))
		return -EINVAL;
	e->buffer_size = TPMLIB_SetBufferSize(buffer_size, &minsz, &maxsz);
	e->meta.family = v == TPM_VERSION_2 ? 2 : 1;
	return 0;
}

/* The fields both loaders set before they read anything. */
static void load_begin(struct engine *e, int dirfd, const char *name,
		       const struct state_keys *keys,
		       struct engine_load_result *res)
{
	memset(res, 0, sizeof(*res));
	res->verdict = SF_OK;
	e->dirfd = dirfd;
	e->slot_fd = -1;
	e->slot_cur = -1;
	e->carry = NULL;
	e->carry_len = 0;
	e->legacy_gone = false;
	snprintf(e->state_name, sizeof(e->state_name), "%s", name);
	e->keys = *keys;
}

/*
 * Reads a slot file through an open descriptor and classifies its slots.
 * 0 with *v filled; -EBADMSG with res filled when the file as a whole is
 * refused; another negative errno.
 */
static int read_slotfile(struct engine *e, int fd, uint64_t size,
			 const struct statefile_expect *exp,
			 struct slotfile_view *v, struct engine_load_result *res)
{
	enum statefile_err verdict;
	uint8_t *buf;
	int rc;

	if (size > SLOTFILE_MAX_LEN) {
		res->verdict = SF_ERR_FORMAT;
		snprintf(res->detail, sizeof(res->detail),
			 "%s: slot file of %llu bytes, over the largest "
			 "possible (%llu)", e->file_name,
			 (unsigned long long)size,
			 (unsigned long long)SLOTFILE_MAX_LEN);
		return -EBADMSG;
	}
	buf = malloc(size ? (size_t)size : 1);
	if (!buf)
		return -ENOMEM;
	rc = store_pread_full(fd, buf, (size_t)size, 0);
	if (rc) {
		free(buf);
		snprintf(res->detail, sizeof(res->detail), "%s: cannot read: %s",
			 e->file_name, strerror(-rc));
		return rc;
	}
	verdict = slotfile_scan(&e->keys, buf, (size_t)size, exp, v);
	free(buf);
	if (verdict != SF_OK) {
		res->verdict = verdict;
		snprintf(res->detail, sizeof(res->detail), "%s: slot file: %s",
			 e->file_name, statefile_strerror(verdict));
		return -EBADMSG;
	}
	return 0;
}

/* Decrypts slot i (checked by the scan) into the engine's blobs. */
static int load_slot(struct engine *e, int fd, const struct slotfile_view *v,
		     int i, const struct statefile_expect *exp,
		     struct engine_load_result *res)
{
	struct statefile_expect any = *exp;
	enum statefile_err verdict;
	struct statefile_meta meta;
	size_t len = v->slot[i].sealed_len;
	uint8_t *buf = malloc(len);
	int rc;

	if (!buf)
		return -ENOMEM;
	rc = store_pread_full(fd, buf, len, v->slot[i].offset);
	if (rc) {
		free(buf);
		return rc;
	}
	any.min_generation = 0;
	verdict = statefile_decode(&e->keys, buf, len, &any, &meta, &e->blobs);
	free(buf);
	if (verdict == SF_OK && meta.generation != v->slot[i].generation)
		verdict = SF_ERR_AUTH; /* changed under us */
	if (verdict != SF_OK) {
		statefile_blobs_free(&e->blobs);
		res->verdict = verdict;
		snprintf(res->detail, sizeof(res->detail), "%s, slot %d: %s",
			 e->file_name, i, statefile_strerror(verdict));
		return -EBADMSG;
	}
	e->meta = meta;
	e->slot_fd = fd;
	e->slot_size = v->slot_size;
	e->slot_cur = i;
	e->cur_len = len;
	return 0;
}

static const char *slot_kind_name(enum slot_kind k)
{
	switch (k) {
	case SLOT_EMPTY:
		return "empty";
	case SLOT_VALID:
		return "valid";
	case SLOT_TORN:
		return "torn (tag does not verify)";
	default:
		return "refused";
	}
}

/* Standalone: the newest valid slot, at least exp->min_generation. */
static int load_standalone_slots(struct engine *e, int fd, uint64_t size,
				 const struct statefile_expect *exp,
				 struct engine_load_result *res)
{
	struct slotfile_view v;
	enum statefile_err verdict;
	int rc, w, culprit;

	rc = read_slotfile(e, fd, size, exp, &v, res);
	if (rc)
		return rc;
	verdict = slotfile_choose(&v, &w, &culprit);
	if (verdict != SF_OK) {
		res->verdict = verdict;
		if (culprit >= 0 && v.slot[culprit].kind == SLOT_TORN &&
		    verdict == SF_ERR_AUTH)
			snprintf(res->detail, sizeof(res->detail),
				 "%s: no slot holds an authentic state: slot "
				 "%d (generation %llu as its header claims): %s",
				 e->file_name, culprit,
				 (unsigned long long)v.slot[culprit].generation,
				 statefile_strerror(verdict));
		else if (culprit >= 0)
			snprintf(res->detail, sizeof(res->detail),
				 "%s, slot %d (%s): %s", e->file_name, culprit,
				 slot_kind_name(v.slot[culprit].kind),
				 statefile_strerror(verdict));
		else
			snprintf(res->detail, sizeof(res->detail),
				 "%s: no slot holds a state: %s", e->file_name,
				 statefile_strerror(verdict));
		return -EBADMSG;
	}
	if (v.slot[w].generation < exp->min_generation) {
		res->verdict = SF_ERR_STALE;
		snprintf(res->detail, sizeof(res->detail),
			 "%s: %s: newest slot has generation %llu, generation "
			 "%llu was already seen",
			 e->file_name, statefile_strerror(SF_ERR_STALE),
			 (unsigned long long)v.slot[w].generation,
			 (unsigned long long)exp->min_generation);
		return -EBADMSG;
	}
	for (uint32_t i = 0; i < v.nslots; i++)
		if (v.slot[i].kind == SLOT_TORN)
			log_warnx("%s: slot %u (generation %llu) is torn: a "
				  "write cut by a crash before it was "
				  "acknowledged; loading slot %d (generation "
				  "%llu)",
				  e->file_name, i,
				  (unsigned long long)v.slot[i].generation, w,
				  (unsigned long long)v.slot[w].generation);
	return load_slot(e, fd, &v, w, exp, res);
}

int engine_load(struct engine *e, int dirfd, const char *state_name,
		const struct state_keys *keys, const struct statefile_expect *exp,
		struct engine_load_result *res)
{
	struct statefile_meta meta;
	uint8_t *buf = NULL, magic[8];
	uint64_t size;
	size_t len = 0;
	int rc, fd;

	load_begin(e, dirfd, state_name, keys, res);
	snprintf(e->file_name, sizeof(e->file_name), "%s", state_name);
	snprintf(e->mark_name, sizeof(e->mark_name), "%s.gen", state_name);
	if (exp->check_uuid)
		memcpy(e->meta.uuid, exp->uuid, 16);

	rc = store_open_regular(dirfd, state_name, O_RDWR, &fd, &size);
	if (rc == -ENOENT) {
		if (exp->min_generation > 0) {
			res->verdict = SF_ERR_STALE;
			snprintf(res->detail, sizeof(res->detail),
				 "state file is missing, but generation %llu "
				 "of it was seen (its watermark %s exists)",
				 (unsigned long long)exp->min_generation,
				 e->mark_name);
			return -EBADMSG;
		}
		res->created = true;
		e->meta.generation = 0;
		return 0;
	}
	if (rc) {
		snprintf(res->detail, sizeof(res->detail), "cannot open: %s%s",
			 strerror(-rc),
			 rc == -EINVAL ? " (not a regular file)" : "");
		return rc;
	}
	if (size >= sizeof(magic) &&
	    store_pread_full(fd, magic, sizeof(magic), 0) == 0 &&
	    slotfile_is_slotfile(magic, sizeof(magic))) {
		rc = load_standalone_slots(e, fd, size, exp, res);
		if (rc) {
			close(fd);
			e->slot_fd = -1;
		}
		return rc;
	}

	/* A format-1 state file: read it whole, carry it to the first write. */
	if (size > STATEFILE_HDR_LEN + STATEFILE_MAX_BODY + STATEFILE_TAG_LEN) {
		close(fd);
		snprintf(res->detail, sizeof(res->detail), "cannot read: %s",
			 strerror(EFBIG));
		return -EFBIG;
	}
	len = (size_t)size;
	buf = malloc(len ? len : 1);
	rc = buf ? store_pread_full(fd, buf, len, 0) : -ENOMEM;
	close(fd);
	if (rc) {
		free(buf);
		snprintf(res->detail, sizeof(res->detail), "cannot read: %s",
			 strerror(-rc));
		return rc;
	}
	res->verdict = statefile_decode(keys, buf, len, exp, &meta, &e->blobs);
	if (res->verdict != SF_OK) {
		free(buf);
		if (res->verdict == SF_ERR_STALE)
			snprintf(res->detail, sizeof(res->detail),
				 "%s: file has generation %llu, generation "
				 "%llu was already seen",
				 statefile_strerror(res->verdict),
				 (unsigned long long)meta.generation,
				 (unsigned long long)exp->min_generation);
		else
			snprintf(res->detail, sizeof(res->detail), "%s",
				 statefile_strerror(res->verdict));
		return -EBADMSG;
	}
	if (!e->blobs.data[SF_BLOB_PERMANENT]) {
		free(buf);
		statefile_blobs_free(&e->blobs);
		res->verdict = SF_ERR_FORMAT;
		snprintf(res->detail, sizeof(res->detail),
			 "authentic state file without permanent state");
		return -EBADMSG;
	}
	e->meta = meta;
	e->carry = buf;
	e->carry_len = len;
	return 0;
}

/* The legacy files base.0 and base.1 (format 1, one sealed state each):
 * the one whose bytes the manager recorded. */
static int load_legacy_slots(struct engine *e,
			     const struct statefile_expect *exp,
			     const uint8_t hash[32],
			     struct engine_load_result *res)
{
	bool found_any = false;
	int rc;

	for (int i = 0; i < 2; i++) {
		struct statefile_meta meta;
		enum statefile_err verdict;
		uint8_t *buf, digest[32];
		size_t len;

		rc = store_read(e->dirfd, e->slot_name[i], STATEFILE_HDR_LEN +
				STATEFILE_MAX_BODY + STATEFILE_TAG_LEN, &buf, &len);
		if (rc == -ENOENT)
			continue;
		if (rc) {
			snprintf(res->detail, sizeof(res->detail), "%s: %s",
				 e->slot_name[i], strerror(-rc));
			return rc;
		}
		found_any = true;
		SHA256(buf, len, digest);
		if (CRYPTO_memcmp(digest, hash, 32) != 0) {
			free(buf);
			continue;
		}
		verdict = statefile_decode(&e->keys, buf, len, exp, &meta,
					   &e->blobs);
		if (verdict == SF_OK && meta.generation != exp->min_generation) {
			statefile_blobs_free(&e->blobs);
			verdict = SF_ERR_STALE;
		}
		if (verdict == SF_OK && !e->blobs.data[SF_BLOB_PERMANENT]) {
			statefile_blobs_free(&e->blobs);
			verdict = SF_ERR_FORMAT;
		}
		if (verdict != SF_OK) {
			free(buf);
			res->verdict = verdict;
			snprintf(res->detail, sizeof(res->detail), "%s: %s",
				 e->slot_name[i], statefile_strerror(verdict));
			return -EBADMSG;
		}
		e->meta = meta;
		e->carry = buf;
		e->carry_len = len;
		return 0;
	}
	res->verdict = SF_ERR_STALE;
	if (found_any)
		snprintf(res->detail, sizeof(res->detail),
			 "neither %s nor %s is the state the manager recorded "
			 "(generation %llu): rollback or replay detected; the "
			 "files are left untouched",
			 e->slot_name[0], e->slot_name[1],
			 (unsigned long long)exp->min_generation);
	else
		snprintf(res->detail, sizeof(res->detail),
			 "%s and %s are missing, but the manager recorded "
			 "generation %llu of this vTPM",
			 e->slot_name[0], e->slot_name[1],
			 (unsigned long long)exp->min_generation);
	return -EBADMSG;
}

/*
 * With a manager: the newest authentic slot, if it is the state the
 * record names (hash and generation) or at most ENGINE_RECORD_TRAIL
 * generations above it: a state answered while its record was in flight
 * (MGR_LOAD_FLAG_TRAIL), or one written durably whose record never went
 * out.  Below the record, or further above it: refused (detail set).
 */
static int managed_winner(struct engine *e, const struct slotfile_view *v,
			  const struct statefile_expect *exp,
			  const uint8_t hash[32], struct engine_load_result *res)
{
	uint64_t rec = exp->min_generation, g;
	int i, w = -1;

	for (i = 0; i < (int)v->nslots; i++)
		if (v->slot[i].kind == SLOT_VALID &&
		    (w < 0 || v->slot[i].generation > v->slot[w].generation))
			w = i;
	if (w < 0) {
		snprintf(res->detail, sizeof(res->detail),
			 "no slot of %s holds an authentic state; the manager "
			 "recorded generation %llu; the file is left untouched",
			 e->file_name, (unsigned long long)rec);
		return -1;
	}
	g = v->slot[w].generation;
	if (g == rec && memcmp(v->slot[w].hash, hash, 32) == 0)
		return w;
	if (g > rec && g - rec <= ENGINE_RECORD_TRAIL) {
		log_info("%s: slot %d holds generation %llu, the manager's "
			 "record %llu: the record of a durable state was in "
			 "flight; loading the newer one",
			 e->file_name, w, (unsigned long long)g,
			 (unsigned long long)rec);
		return w;
	}
	if (g > rec)
		snprintf(res->detail, sizeof(res->detail),
			 "%s holds generation %llu, more than %d above the "
			 "manager's record (%llu): the key store is older than "
			 "the state (put back from a copy?); the file is left "
			 "untouched",
			 e->file_name, (unsigned long long)g,
			 ENGINE_RECORD_TRAIL, (unsigned long long)rec);
	else
		snprintf(res->detail, sizeof(res->detail),
			 "no slot of %s is the state the manager recorded "
			 "(generation %llu; the newest holds %llu): rollback or "
			 "replay detected; the file is left untouched",
			 e->file_name, (unsigned long long)rec,
			 (unsigned long long)g);
	return -1;
}

int engine_load_slots(struct engine *e, int dirfd, const char *base,
		      const struct state_keys *keys,
		      const struct statefile_expect *exp, bool nostate,
		      const uint8_t hash[32], struct engine_load_result *res)
{
	struct slotfile_view v;
	uint8_t magic[8];
	uint64_t size;
	int rc, fd, i;

	load_begin(e, dirfd, base, keys, res);
	e->slots = true;
	for (i = 0; i < 2; i++)
		snprintf(e->slot_name[i], sizeof(e->slot_name[i]), "%s.%d", base, i);
	/* The slot file takes the name of the first legacy slot, so the
	 * manager's clean-up list (base.0, base.0.tmp, ...) covers it. */
	snprintf(e->file_name, sizeof(e->file_name), "%s", e->slot_name[0]);
	memcpy(e->meta.uuid, exp->uuid, 16);
	if (nostate) {
		res->created = true;
		e->meta.generation = 0;
		return 0;
	}
	rc = store_open_regular(dirfd, e->file_name, O_RDWR, &fd, &size);
	if (rc && rc != -ENOENT) {
		snprintf(res->detail, sizeof(res->detail), "%s: cannot open: %s%s",
			 e->file_name, strerror(-rc),
			 rc == -EINVAL ? " (not a regular file)" : "");
		return rc;
	}
	if (rc == 0 && !(size >= sizeof(magic) &&
			 store_pread_full(fd, magic, sizeof(magic), 0) == 0 &&
			 slotfile_is_slotfile(magic, sizeof(magic)))) {
		close(fd);
		return load_legacy_slots(e, exp, hash, res);
	}
	if (rc == -ENOENT)
		return load_legacy_slots(e, exp, hash, res);

	rc = read_slotfile(e, fd, size, exp, &v, res);
	if (rc) {
		close(fd);
		return rc;
	}
	i = managed_winner(e, &v, exp, hash, res);
	if (i < 0) {
		close(fd);
		res->verdict = SF_ERR_STALE;
		return -EBADMSG;
	}
	rc = load_slot(e, fd, &v, i, exp, res);
	if (rc) {
		close(fd);
		e->slot_fd = -1;
	}
	return rc;
}

int engine_power_on(struct engine *e, bool delete_volatile)
{
	TPM_RESULT r;

	if (e->running) {
		TPMLIB_Terminate();
		e->running = false;
	}
	r = TPMLIB_MainInit();
	if (r != TPM_SUCCESS) {
		log_warnx("engine: TPMLIB_MainInit failed: 0x%x", r);
		if (e->staged) {
			/* The imported blobs do not boot: forget them, the
			 * file on disk still holds the previous state. */
			log_warnx("engine: discarding the state blobs set "
				  "through the control channel");
			statefile_blobs_free(&e->blobs);
			e->blobs = e->backup;
			memset(&e->backup, 0, sizeof(e->backup));
			e->staged = false;
			e->dirty = false;
		}
		e->volatile_once = false;
		return -EIO;
	}
	e->running = true;
	if (e->volatile_once) {
		e->volatile_once = false;
		delete_volatile = true;
	}
	if (e->staged) {
		statefile_blobs_free(&e->backup);
		e->staged = false;
	}
	if (delete_volatile && e->blobs.data[SF_BLOB_VOLATILE])
		cb_nvram_deletename(0, TPM_VOLATILESTATE_NAME, 0);
	return 0;
}

void engine_power_off(struct engine *e)
{
	if (e->running)
		TPMLIB_Terminate();
	e->running = false;
}

/* Runs a command without sessions or handles: a header and an optional
 * 16-bit parameter.  The TPM's response code. */
static uint32_t run_simple(struct engine *e, uint16_t tag, uint32_t code,
			   bool has_param, uint16_t param)
{
	uint8_t cmd[TPM_HEADER_LEN + 2];
	uint32_t len = TPM_HEADER_LEN + (has_param ? 2 : 0);
	const uint8_t *rsp;
	uint32_t rsplen;

	be16_put(cmd, tag);
	be32_put(cmd + 2, len);
	be32_put(cmd + 6, code);
	if (has_param)
		be16_put(cmd + TPM_HEADER_LEN, param);
	engine_process(e, cmd, len, &rsp, &rsplen);
	return tpm_rsp_code(rsp, rsplen);
}

uint32_t engine_platform_disable(struct engine *e)
{
	/* TPM2_HierarchyControl(TPM_RH_PLATFORM, password session with the
	 * platform's auth, which a Startup(CLEAR) made empty,
	 * enable = TPM_RH_PLATFORM, state = NO). */
	static const uint8_t cmd[] = {
		0x80, 0x02, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x01, 0x21,
		0x40, 0x00, 0x00, 0x0c,			/* authHandle */
		0x00, 0x00, 0x00, 0x09, 0x40, 0x00, 0x00, 0x09, /* TPM_RS_PW */
		0x00, 0x00, 0x00, 0x00, 0x00,		/* no nonce, hmac */
		0x40, 0x00, 0x00, 0x0c,			/* enable */
		0x00,					/* state: NO */
	};
	const uint8_t *rsp;
	uint32_t rsplen;

	if (e->version != TPM_VERSION_2)
		return 0;
	engine_process(e, cmd, sizeof(cmd), &rsp, &rsplen);
	return tpm_rsp_code(rsp, rsplen);
}

uint32_t engine_startup_clear(struct engine *e)
{
	uint32_t rc;

	if (e->version != TPM_VERSION_2)
		return run_simple(e, TPM12_TAG_RQU_COMMAND, TPM12_ORD_Startup,
				  true, TPM12_ST_CLEAR);
	rc = run_simple(e, TPM_ST_NO_SESSIONS, TPM_CC_Startup, true,
			TPM_SU_CLEAR);
	/*
	 * The instance started the TPM, so it plays the platform firmware's
	 * part, and ends it as firmware does: nobody after it may use the
	 * platform hierarchy, whose auth is empty now (a guest could
	 * otherwise delete the EK certificates, docs/ekcert.md).  A client
	 * that sends CMD_INIT (QEMU) brings its own firmware, which does it.
	 */
	if (rc == 0) {
		uint32_t hc = engine_platform_disable(e);

		if (hc != 0)
			log_warnx("engine: cannot disable the platform "
				  "hierarchy: TPM rc 0x%x", hc);
	}
	return rc;
}

uint32_t engine_shutdown_orderly(struct engine *e)
{
	/* TPM2_Shutdown(TPM_SU_CLEAR); TPM 1.2: TPM_SaveState. */
	if (e->version == TPM_VERSION_2)
		return run_simple(e, TPM_ST_NO_SESSIONS, TPM_CC_Shutdown,
				  true, TPM_SU_CLEAR);
	return run_simple(e, TPM12_TAG_RQU_COMMAND, TPM12_ORD_SaveState,
			  false, 0);
}

void engine_process(struct engine *e, const uint8_t *cmd, uint32_t len,
		    const uint8_t **rsp, uint32_t *rsplen)
{
	uint32_t resp_size = 0;
	TPM_RESULT r;

	if (!e->running) {
		/* swtpm answers a stopped TPM this way too. */
		tpm_error_response(e->errbuf, e->version == TPM_VERSION_2,
				   failure_rc(e));
		*rsp = e->errbuf;
		*rsplen = TPM_HEADER_LEN;
		return;
	}
	/* libtpms reads, never writes, the command buffer. */
	r = TPMLIB_Process(&e->rbuf, &resp_size, &e->rbuf_size,
			   (unsigned char *)cmd, len);
	if (r != TPM_SUCCESS || resp_size < TPM_HEADER_LEN) {
		tpm_error_response(e->errbuf, e->version == TPM_VERSION_2,
				   failure_rc(e));
		*rsp = e->errbuf;
		*rsplen = TPM_HEADER_LEN;
		return;
	}
	*rsp = e->rbuf;
	*rsplen = resp_size;
}

bool engine_cmd_is_quick(const struct engine *e, const uint8_t *cmd,
			 uint32_t len)
{
	/* Commands with no key generation and no asymmetric crypto. */
	static const uint32_t quick2[] = {
		TPM_CC_NV_UndefineSpace, TPM_CC_NV_DefineSpace,
		TPM_CC_NV_Increment,	  TPM_CC_NV_Extend,
		TPM_CC_NV_Write,	  TPM_CC_PCR_Event,
		TPM_CC_PCR_Reset,	  TPM_CC_Startup,
		TPM_CC_Shutdown,	  TPM_CC_StirRandom,
		TPM_CC_NV_Read,	  TPM_CC_ContextLoad,
		TPM_CC_ContextSave,	  TPM_CC_FlushContext,
		TPM_CC_NV_ReadPublic,	  TPM_CC_ReadPublic,
		TPM_CC_GetCapability,	  TPM_CC_GetRandom,
		TPM_CC_GetTestResult,	  TPM_CC_Hash,
		TPM_CC_PCR_Read,	  TPM_CC_ReadClock,
		TPM_CC_PCR_Extend,	  TPM_CC_TestParms,
	};
	static const uint32_t quick12[] = {
		TPM12_ORD_Extend, TPM12_ORD_PcrRead, TPM12_ORD_GetRandom,
		TPM12_ORD_GetCapability, TPM12_ORD_Startup,
	};
	uint32_t cc = tpm_cmd_code(cmd, len);
	const uint32_t *list = e->version == TPM_VERSION_2 ? quick2 : quick12;
	size_t n = e->version == TPM_VERSION_2
			   ? sizeof(quick2) / sizeof(quick2[0])
			   : sizeof(quick12) / sizeof(quick12[0]);

	for (size_t i = 0; i < n; i++)
		if (list[i] == cc)
			return true;
	return false;
}

/*
 * A new slot file, by atomic replace (rare: the first write of this
 * version, or a state grown past the slot size): slot 0 holds the new
 * state, slot 1 the current durable one (so a manager's record of it
 * still finds it).  *cur: the slot of the current state afterwards.
 */
static int rebuild(struct engine *e, const uint8_t *sealed, size_t len)
{
	const uint8_t *parts[SLOTFILE_NSLOTS] = { sealed, NULL };
	size_t lens[SLOTFILE_NSLOTS] = { len, 0 };
	uint8_t *old = NULL, *image;
	size_t old_len = 0, image_len;
	uint32_t slot_size;
	int rc, fd;

	if (e->slot_fd >= 0 && e->slot_cur >= 0) {
		old_len = e->cur_len;
		old = malloc(old_len);
		if (!old)
			return -ENOMEM;
		rc = store_pread_full(e->slot_fd, old, old_len,
				      SLOTFILE_HDR_LEN +
					      (uint64_t)e->slot_cur * e->slot_size);
		if (rc) {
			free(old);
			return rc;
		}
		parts[1] = old;
	} else if (e->carry) {
		parts[1] = e->carry;
		old_len = e->carry_len;
	}
	lens[1] = old_len;
	slot_size = slotfile_slot_size_for(len > old_len ? len : old_len);
	if (slot_size == 0 ||
	    slotfile_build(&e->keys, slot_size, parts, lens, &image, &image_len)) {
		free(old);
		return -EFBIG;
	}
	rc = store_write_atomic_keep(e->dirfd, e->file_name, image, image_len,
				     &fd);
	free(image);
	if (old)
		OPENSSL_cleanse(old, old_len);
	free(old);
	if (rc)
		return rc;
	if (e->slot_fd >= 0)
		close(e->slot_fd);
	e->slot_fd = fd;
	e->slot_size = slot_size;
	/* Until the new state counts (after_persist), slot 1 is current. */
	e->slot_cur = lens[1] ? 1 : -1;
	e->cur_len = lens[1];
	return 0;
}

/* After the first write that counted: the format-1 state is no longer
 * needed in memory, and the legacy slot base.1 goes (base.0 is the slot
 * file now; a standalone format-1 file was replaced by the rename). */
static void drop_legacy(struct engine *e)
{
	const char *names[1] = { e->slot_name[1] };
	int rc;

	if (e->carry) {
		OPENSSL_cleanse(e->carry, e->carry_len);
		free(e->carry);
		e->carry = NULL;
		e->carry_len = 0;
	}
	e->legacy_gone = true;
	if (!e->slots)
		return;
	rc = store_unlink_durable(e->dirfd, names, 1);
	if (rc < 0)
		log_warnx("cannot remove the legacy state file %s: %s",
			  e->slot_name[1], strerror(-rc));
}

int engine_persist(struct engine *e)
{
	struct statefile_meta meta = e->meta;
	uint8_t *file;
	size_t len;
	int rc, next = -1;

	if (!e->dirty || e->staged)
		return 0;
	meta.generation = e->meta.generation + 1;
	rc = statefile_encode(&e->keys, &meta, &e->blobs, &file, &len);
	if (rc)
		return -EIO;
	if (e->slot_fd >= 0 && e->slot_cur >= 0 && len <= e->slot_size) {
		/* The steady state: one pwrite, one flush, never over the
		 * slot of the current (last acknowledged) state. */
		next = (e->slot_cur + 1) % SLOTFILE_NSLOTS;
		rc = store_pwrite_durable(e->slot_fd, file, len,
					  SLOTFILE_HDR_LEN +
						  (uint64_t)next * e->slot_size);
	} else {
		next = 0;
		rc = rebuild(e, file, len);
	}
	if (rc == 0 && e->after_persist) {
		uint8_t digest[32];

		SHA256(file, len, digest);
		rc = e->after_persist(e, meta.generation, digest, e->after_ctx);
	}
	free(file);
	if (rc)
		return rc;
	e->slot_cur = next;
	e->cur_len = len;
	e->meta.generation = meta.generation;
	e->dirty = false;
	if (!e->legacy_gone)
		drop_legacy(e);
	return 0;
}

int engine_write_watermark(struct engine *e, uint64_t generation)
{
	uint8_t buf[WATERMARK_LEN];

	watermark_encode(&e->keys, e->meta.uuid, generation, buf);
	return store_write_atomic(e->dirfd, e->mark_name, buf, sizeof(buf));
}

int engine_store_volatile(struct engine *e)
{
	unsigned char *buf = NULL;
	uint32_t len = 0;
	int rc;

	if (!e->running)
		return -EINVAL;
	if (TPMLIB_VolatileAll_Store(&buf, &len) != TPM_SUCCESS)
		return -EIO;
	rc = blob_replace(e, SF_BLOB_VOLATILE, buf, len);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return rc;
}

static void blob_drop(struct engine *e, int t)
{
	if (!e->blobs.data[t])
		return;
	OPENSSL_cleanse(e->blobs.data[t], e->blobs.len[t]);
	free(e->blobs.data[t]);
	e->blobs.data[t] = NULL;
	e->blobs.len[t] = 0;
	e->dirty = true;
}

int engine_suspend_save(struct engine *e, const uint8_t *tag, uint32_t len)
{
	int rc = engine_store_volatile(e);

	if (rc == 0)
		rc = blob_replace(e, SF_BLOB_RESUME, tag, len);
	if (rc)
		blob_drop(e, SF_BLOB_RESUME);
	return rc;
}

const uint8_t *engine_resume_tag(const struct engine *e, uint32_t *len)
{
	*len = e->blobs.len[SF_BLOB_RESUME];
	return e->blobs.data[SF_BLOB_RESUME];
}

void engine_resume_forget(struct engine *e)
{
	blob_drop(e, SF_BLOB_RESUME);
	blob_drop(e, SF_BLOB_VOLATILE);
}

void engine_resume_keep_volatile(struct engine *e)
{
	blob_drop(e, SF_BLOB_RESUME);
	e->volatile_once = true;
}

bool engine_has_volatile(const struct engine *e)
{
	return e->blobs.data[SF_BLOB_VOLATILE] != NULL;
}

/* ---- the control channel's operations (swtpm's CMD_*) ---- */

bool engine_is_running(const struct engine *e)
{
	return e->running;
}

bool engine_is_dirty(const struct engine *e)
{
	return e->dirty;
}

enum tpm_version engine_version(const struct engine *e)
{
	return e->version;
}

uint32_t engine_buffer_size(const struct engine *e)
{
	return e->buffer_size;
}

void engine_set_locality(struct engine *e, int locality)
{
	e->locality = locality;
}

int engine_set_buffer_size(struct engine *e, uint32_t want,
			   struct engine_buffer_size *out)
{
	uint32_t minsz, maxsz, cur;

	if (want && e->running)
		return -EBUSY;
	cur = TPMLIB_SetBufferSize(want, &minsz, &maxsz);
	if (want)
		e->buffer_size = cur;
	out->size = cur;
	out->min = minsz;
	out->max = maxsz;
	return 0;
}

uint32_t engine_get_established(struct engine *e, bool *bit)
{
	TPM_BOOL b = 0;
	uint32_t rc;

	(void)e;
	rc = TPM_IO_TpmEstablished_Get(&b);
	*bit = b != 0;
	return rc;
}

uint32_t engine_reset_established(struct engine *e, int locality)
{
	int saved = e->locality;
	uint32_t rc;

	/* libtpms checks the locality (3 or 4) through our callback. */
	e->locality = locality;
	rc = TPM_IO_TpmEstablished_Reset();
	e->locality = saved;
	return rc;
}

uint32_t engine_hash_start(struct engine *e)
{
	(void)e;
	return TPM_IO_Hash_Start();
}

uint32_t engine_hash_data(struct engine *e, const uint8_t *data, uint32_t len)
{
	(void)e;
	return TPM_IO_Hash_Data(data, len);
}

uint32_t engine_hash_end(struct engine *e)
{
	(void)e;
	return TPM_IO_Hash_End();
}

char *engine_get_info(struct engine *e, uint64_t flags)
{
	(void)e;
	return TPMLIB_GetInfo((enum TPMLIB_InfoFlags)flags);
}

int engine_set_blob(struct engine *e, enum statefile_blob type,
		    const uint8_t *data, uint32_t len)
{
	static const enum TPMLIB_StateType st[SF_BLOB_COUNT] = {
		[SF_BLOB_PERMANENT] = TPMLIB_STATE_PERMANENT,
		[SF_BLOB_VOLATILE] = TPMLIB_STATE_VOLATILE,
		[SF_BLOB_SAVESTATE] = TPMLIB_STATE_SAVE_STATE,
	};

	if (e->running)
		return -EBUSY;
	if (type < SF_BLOB_PERMANENT || type > SF_BLOB_SAVESTATE)
		return -EINVAL;
	/* libtpms checks the blob's format and stages it for MainInit
	 * (it only reads the bytes). */
	if (TPMLIB_SetState(st[type], (unsigned char *)data, len) !=
	    TPM_SUCCESS)
		return -EBADMSG;
	if (!e->staged) {
		for (int i = 1; i < SF_BLOB_COUNT; i++) {
			uint32_t n = e->blobs.len[i];
			if (!e->blobs.data[i])
				continue;
			e->backup.data[i] = malloc(n ? n : 1);
			if (!e->backup.data[i]) {
				statefile_blobs_free(&e->backup);
				return -ENOMEM;
			}
			memcpy(e->backup.data[i], e->blobs.data[i], n);
			e->backup.len[i] = n;
		}
		e->staged = true;
	}
	if (type == SF_BLOB_VOLATILE)
		e->volatile_once = true;
	return blob_replace(e, type, data, len);
}

int engine_get_blob(struct engine *e, enum statefile_blob type,
		    uint8_t **data, uint32_t *len)
{
	unsigned char *buf = NULL;
	uint32_t blen = 0;

	*data = NULL;
	*len = 0;
	if (type < SF_BLOB_PERMANENT || type > SF_BLOB_SAVESTATE)
		return -EINVAL;
	if (type == SF_BLOB_VOLATILE && e->running) {
		if (TPMLIB_VolatileAll_Store(&buf, &blen) != TPM_SUCCESS)
			return -EIO;
	} else if (!e->blobs.data[type]) {
		return -ENOENT;
	} else {
		blen = e->blobs.len[type];
		buf = malloc(blen ? blen : 1);
		if (!buf)
			return -ENOMEM;
		memcpy(buf, e->blobs.data[type], blen);
	}
	if (buf && type == SF_BLOB_VOLATILE &&
	    e->blobs.data[SF_BLOB_VOLATILE]) {
		/* Handing volatile state out consumes a stored copy, so
		 * a later INIT does not resume it as well (as swtpm). */
		cb_nvram_deletename(0, TPM_VOLATILESTATE_NAME, 0);
	}
	*data = buf;
	*len = blen;
	return 0;
}

void engine_cancel(struct engine *e)
{
	if (e->running)
		TPMLIB_CancelCommand();
}

void engine_free(struct engine *e)
{
	engine_power_off(e);
	statefile_blobs_free(&e->blobs);
	statefile_blobs_free(&e->backup);
	state_keys_wipe(&e->keys);
	if (e->carry) {
		OPENSSL_cleanse(e->carry, e->carry_len);
		free(e->carry);
		e->carry = NULL;
	}
	if (e->slot_fd >= 0)
		close(e->slot_fd);
	e->slot_fd = -1;
	free(e->rbuf);
	e->rbuf = NULL;
}
