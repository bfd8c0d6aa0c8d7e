/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The TPM engine: libtpms, one per process (libtpms keeps the whole TPM in
 * process-global state and its callbacks carry no user pointer).
 *
 * libtpms persists through NVRAM callbacks that fire synchronously inside
 * TPMLIB_Process.  The engine does not write files there: it captures the
 * blobs in memory and marks itself dirty; the caller then persists the
 * state (engine_persist, on the thread pool) before it releases the
 * response.  So no response that followed an NV change leaves the process
 * before that change is on disk.
 *
 * Not thread-safe: callers serialise every engine call (the instance's job
 * queue does), but any one call may run on a worker thread.
 */
#ifndef VTPM_ENGINE_H
#define VTPM_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/config.h"
#include "proto/statefile.h"

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
	 * With a manager, the state alternates between two slot files and
	 * a write counts only once the manager has recorded its hash
	 * (after_persist): a crash before that leaves the previous slot,
	 * which is the one the manager's record still names.
	 */
	bool slots;
	char slot_name[2][140];
	int (*after_persist)(struct engine *e, uint64_t generation,
			     const uint8_t hash[32], void *ctx);
	void *after_ctx;

	/* libtpms owns and reuses this buffer across TPMLIB_Process calls. */
	unsigned char *rbuf;
	uint32_t rbuf_size;
};

/* Errors of engine_load: a statefile_err, or a negative errno below. */
struct engine_load_result {
	int err;
	bool created;             /* no file yet: a new vTPM */
	char detail[512];
};

/* Chooses the TPM version and registers the callbacks; once per process. */
int engine_setup(struct engine *e, enum tpm_version v, uint32_t buffer_size);

/*
 * Reads and verifies the state file (blocking; call before the loop
 * serves, or on the thread pool).  Never creates, never overwrites: a file
 * that does not verify leaves everything as it was and returns its error.
 * min_generation is the highest generation this vTPM is known to have.
 */
int engine_load(struct engine *e, int dirfd, const char *state_name,
		const struct state_keys *keys, const struct statefile_expect *exp,
		struct engine_load_result *res);

/*
 * Manager mode: finds, among the two slot files base.0 and base.1, the one
 * whose SHA-256 is the manager's record (and whose generation is the
 * recorded one), and loads it.  nostate: the manager has no state for
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
uint32_t engine_startup_clear(struct engine *e);

/*
 * Runs one command.  *rsp points into the engine's buffer and stays valid
 * until the next engine call.  Never fails: errors become TPM responses.
 */
void engine_process(struct engine *e, const uint8_t *cmd, uint32_t len,
		    const uint8_t **rsp, uint32_t *rsplen);

/* Whether a command is quick enough to run on the loop thread. */
bool engine_cmd_is_quick(const struct engine *e, const uint8_t *cmd,
			 uint32_t len);

/* Writes the state file durably (blocking: thread pool). */
int engine_persist(struct engine *e);

/* Records a durable generation as the floor for future loads.  Reads
 * only immutable fields, so it may run beside a job. */
int engine_write_watermark(struct engine *e, uint64_t generation);

/* Volatile state of a running TPM into the blobs (STORE_VOLATILE). */
int engine_store_volatile(struct engine *e);

/* Replaces one blob (SET_STATEBLOB); TPM must be stopped. */
int engine_set_blob(struct engine *e, int type, uint8_t *data, uint32_t len);

/* Current bytes of one blob (GET_STATEBLOB); caller frees *data. */
int engine_get_blob(struct engine *e, int type, uint8_t **data,
		    uint32_t *len);

void engine_cancel(struct engine *e);
void engine_free(struct engine *e);

#endif
