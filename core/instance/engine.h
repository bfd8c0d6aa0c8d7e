/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The TPM engine: libtpms, one per process (libtpms keeps the whole TPM in
 * process-global state and its callbacks carry no user pointer).
 *
 * libtpms persists through NVRAM callbacks that fire synchronously inside
 * TPMLIB_Process.  The engine does not write files there: it captures the
 * blobs in memory and marks itself dirty; the caller then persists the
 * state (engine_persist, on the worker thread) before it releases the
 * response.  So no response that followed an NV change leaves the process
 * before that change is on disk.
 *
 * Not thread-safe: callers serialise every engine call (the instance's job
 * queue does), but any one call may run on a worker thread.
 *
 * This is the only code that calls libtpms.  The fields of struct engine
 * are the engine's (and, for loading and persisting, the instance's);
 * transports use the functions below only, and never free what the
 * engine holds.
 */
#ifndef VTPM_ENGINE_H
#define VTPM_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/config.h"
#include "proto/statefile.h"
#include "proto/tpmframe.h"

/*
 * How far a manager's record may trail the newest state on disk: with
 * MGR_LOAD_FLAG_TRAIL the answer to write k goes out once its slot is
 * durable and its SAVEHASHKEY is sent; write k+1's SAVEHASHKEY waits for
 * k's commit, so when slot k+1 is written the durable record is at least
 * k-1.  Without the flag, one (a durable slot whose record never went out).
 */
#define ENGINE_RECORD_TRAIL 2

struct engine {
	enum tpm_version version;
	bool running;               /* between MainInit and Terminate */
	int locality;
	uint32_t buffer_size;

	/* Current persistent contents (what the state file holds). */
	struct statefile_blobs blobs;
	bool dirty;
	/* Blobs set by SET_STATEBLOB are held back from disk until they
	 * have booted a TPM; backup is what to return to if they do not. */
	bool staged;
	struct statefile_blobs backup;
	/* A volatile blob imported by SET_STATEBLOB resumes the next power-on
	 * only (as in swtpm); one saved by STORE_VOLATILE stays. */
	bool volatile_once;

	/* Where it goes. */
	int dirfd;
	char state_name[128];       /* file name inside the state dir */
	char mark_name[140];        /* its generation watermark */
	struct state_keys keys;
	struct statefile_meta meta; /* uuid, family, last durable generation */

	/*
	 * The slot file (docs/state-format.md): the state is written in
	 * place into the slot after the one that holds the current durable
	 * state, one pwrite and one fdatasync.  slot_fd < 0: no slot file
	 * yet (a new vTPM, or a state in the format-1 file or the legacy
	 * base.0/base.1 files): the next write creates it.
	 */
	char file_name[140];        /* the slot file: state_name, or base.0 */
	int slot_fd;                /* open read-write, or -1 */
	uint32_t slot_size;
	int slot_cur;               /* slot of the current state, or -1 */
	size_t cur_len;             /* its sealed length */
	/* A format-1 state (file or legacy slot) to carry into the slot
	 * file that the first write creates, so that the state the manager
	 * recorded is still there if the process dies before the record
	 * moves on. */
	uint8_t *carry;
	size_t carry_len;
	bool legacy_gone;           /* drop_legacy ran since the load */

	/*
	 * With a manager, a write counts only once the manager has recorded
	 * its hash (after_persist): a crash before that leaves the previous
	 * slot, which is the one the manager's record still names.
	 */
	bool slots;
	char slot_name[2][140];     /* the legacy base.0 and base.1 */
	int (*after_persist)(struct engine *e, uint64_t generation,
			     const uint8_t hash[32], void *ctx);
	void *after_ctx;

	/* libtpms owns and reuses this buffer across TPMLIB_Process calls. */
	unsigned char *rbuf;
	uint32_t rbuf_size;
	/* The answer of a stopped or failing TPM (engine_process). */
	uint8_t errbuf[TPM_HEADER_LEN];
};

/*
 * What engine_load and engine_load_slots found.  Their return value is 0
 * or a negative errno; the state file's own verdict is here, in its own
 * domain (never mixed with an errno).
 */
struct engine_load_result {
	/* SF_OK, or why the file was refused (then -EBADMSG is returned). */
	enum statefile_err verdict;
	bool created;             /* no file yet: a new vTPM */
	char detail[512];         /* for a person: what went wrong */
};

/* Chooses the TPM version and registers the callbacks; once per process. */
int engine_setup(struct engine *e, enum tpm_version v, uint32_t buffer_size);

/*
 * Reads and verifies the state file (blocking; call before the loop
 * serves, or on the worker thread).  Never creates, never overwrites: a file
 * that does not verify leaves everything as it was.  min_generation is the
 * highest generation this vTPM is known to have.  0; -EBADMSG when the
 * file (or its absence) is refused, res->verdict says why; another
 * negative errno when it could not be read.
 */
int engine_load(struct engine *e, int dirfd, const char *state_name,
		const struct state_keys *keys, const struct statefile_expect *exp,
		struct engine_load_result *res);

/*
 * Manager mode: finds the sealed state whose SHA-256 is the manager's
 * record (and whose generation is the recorded one), and loads it: among
 * the slots of the slot file base.0, or, before the first write of this
 * version, among the legacy files base.0 and base.1.  nostate: the manager has no state for
 * this vTPM yet, so a new TPM is made (leftover slots were never
 * committed and will be overwritten).
 */
int engine_load_slots(struct engine *e, int dirfd, const char *base,
		      const struct state_keys *keys,
		      const struct statefile_expect *exp, bool nostate,
		      const uint8_t hash[32], struct engine_load_result *res);

/* TPM_Init: MainInit with the loaded blobs.  delete_volatile drops a
 * stored volatile state after it was used (swtpm's INIT flag). */
int engine_power_on(struct engine *e, bool delete_volatile);
void engine_power_off(struct engine *e);

/* TPM2_Startup(CLEAR) or TPM_Startup(ST_CLEAR); the TPM's own rc. */
/* An orderly shutdown (TPM2_Shutdown(CLEAR) / TPM_SaveState), as a
 * platform sends before it powers the TPM down; the response code. */
uint32_t engine_shutdown_orderly(struct engine *e);
/* For TPM 2.0 it then disables the platform hierarchy (the instance
 * started the TPM: it is the platform, docs/ekcert.md). */
uint32_t engine_startup_clear(struct engine *e);
/* TPM2_HierarchyControl(PLATFORM, NO) with the empty platform auth of a
 * fresh Startup; the TPM's response code (0 for TPM 1.2). */
uint32_t engine_platform_disable(struct engine *e);

/*
 * Runs one command.  *rsp points into the engine's buffer and stays valid
 * until the next engine call.  Never fails: errors become TPM responses.
 */
void engine_process(struct engine *e, const uint8_t *cmd, uint32_t len,
		    const uint8_t **rsp, uint32_t *rsplen);

/* Whether a command is quick enough to run on the loop thread. */
bool engine_cmd_is_quick(const struct engine *e, const uint8_t *cmd,
			 uint32_t len);

/* Writes the state durably (blocking: the worker thread): in place into the
 * slot file, or (first write, or a state grown past the slot size) a new
 * slot file by atomic replace. */
int engine_persist(struct engine *e);

/* Records a durable generation as the floor for future loads.  Reads
 * only immutable fields, so it may run beside a job. */
int engine_write_watermark(struct engine *e, uint64_t generation);

/* ---- what the control channel needs (swtpm's CMD_*) ---- */

bool engine_is_running(const struct engine *e);
/* Whether persistent state changed since the last engine_persist. */
bool engine_is_dirty(const struct engine *e);
enum tpm_version engine_version(const struct engine *e);
/* The largest command (and response) the TPM takes, in bytes. */
uint32_t engine_buffer_size(const struct engine *e);

/* The locality of the next commands (checked by libtpms, not here). */
void engine_set_locality(struct engine *e, int locality);

struct engine_buffer_size {
	uint32_t size, min, max;
};
/* SET_BUFFERSIZE: want 0 only reads; a change needs a stopped TPM
 * (-EBUSY otherwise). */
int engine_set_buffer_size(struct engine *e, uint32_t want,
			   struct engine_buffer_size *out);

/* The TPM-established bit, and resetting it from a locality (3 or 4, as
 * libtpms checks); the TPM's response code. */
uint32_t engine_get_established(struct engine *e, bool *bit);
uint32_t engine_reset_established(struct engine *e, int locality);

/* The TIS hash interface (HASH_START/DATA/END); the TPM's response code. */
uint32_t engine_hash_start(struct engine *e);
uint32_t engine_hash_data(struct engine *e, const uint8_t *data,
			  uint32_t len);
uint32_t engine_hash_end(struct engine *e);

/* GET_INFO: libtpms's JSON description for TPMLIB_INFO_* flags; the
 * caller frees it with free(); NULL when there is none. */
char *engine_get_info(struct engine *e, uint64_t flags);

/* Volatile state of a running TPM into the blobs (STORE_VOLATILE). */
int engine_store_volatile(struct engine *e);

/*
 * Xen save/restore (docs/migration.md): the volatile state of the running
 * TPM and the resume tag naming the suspended domain (proto/resumetag.h)
 * go into the blobs; the job queue's persist makes them durable.  The TPM
 * keeps running.  0 or a negative errno (then no tag is kept).
 */
int engine_suspend_save(struct engine *e, const uint8_t *tag, uint32_t len);
/* The stored resume tag's bytes (unchecked: resumetag_decode), or NULL. */
const uint8_t *engine_resume_tag(const struct engine *e, uint32_t *len);
/* Drops the resume tag and the stored volatile state: used once, or
 * refused.  The next persist writes the state without them. */
void engine_resume_forget(struct engine *e);
/* Drops the resume tag and keeps the stored volatile state for the next
 * power-on only (an online migration's arrival). */
void engine_resume_keep_volatile(struct engine *e);
/* Whether a stored volatile state would resume at the next power-on. */
bool engine_has_volatile(const struct engine *e);

/*
 * SET_STATEBLOB: replaces one blob (the engine copies data).  Held back
 * from disk until it has booted a TPM (engine_power_on).  -EBUSY while
 * the TPM runs, -EBADMSG when libtpms refuses the blob's format, -EINVAL
 * for a type out of range, -ENOMEM.
 */
int engine_set_blob(struct engine *e, enum statefile_blob type,
		    const uint8_t *data, uint32_t len);

/*
 * GET_STATEBLOB: a copy of one blob, the caller's to free (free()); the
 * volatile blob of a running TPM is taken from it now.  Handing volatile
 * state out consumes a stored copy, so that a later power-on does not
 * resume it as well (as swtpm).  -ENOENT when there is no such blob,
 * -EINVAL, -EIO, -ENOMEM.
 */
int engine_get_blob(struct engine *e, enum statefile_blob type,
		    uint8_t **data, uint32_t *len);

void engine_cancel(struct engine *e);
void engine_free(struct engine *e);

#endif
