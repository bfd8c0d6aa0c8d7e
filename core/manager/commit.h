/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The key store on disk: loaded and checked against the TPM's NV counter
 * at start-up, then made durable by group commits, each bound to the
 * counter when forced or when --counter-interval has passed.
 */
#ifndef VTPM_MANAGER_COMMIT_H
#define VTPM_MANAGER_COMMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/list.h"
#include "manager/ksfile.h"

struct manager;

#define KEYSTORE_FILE "keystore"
#define ENTRIES_FILE "instances.json"

typedef void (*mgr_commit_cb)(struct manager *m, int rc, void *arg);

struct mgr_commits {
	struct list_node pending;   /* waiters for the next write */
	bool queued;                /* a commit task is queued or running */
	bool force_next;            /* the next commit must bind */
	uint64_t last_increment_ms;
	unsigned long increments;
	unsigned long writes;       /* store files written (for tests) */
	uint64_t file_counter;      /* NV counter value of the last store
				     * written; above m->tpm_counter while
				     * an increment is unconfirmed */
	struct ksfile file;         /* the key store's slot file; touched
				     * by the commit in flight only */
	/* A commit failed: the manager cannot answer truthfully any more.
	 * NULL raises SIGTERM. */
	void (*failed)(struct manager *m);
};

void mgr_commits_init(struct mgr_commits *c);

/* Makes the in-memory store durable, then calls cb (loop thread).
 * force: bind this copy with an NV counter increment now. */
void mgr_commit(struct manager *m, bool force, mgr_commit_cb cb, void *arg);

/* Start-up: the store file checked against the counter (or a new one). */
void mgr_store_load(struct manager *m);

/* The store file as mgr_store_load reads it, without the TPM: the
 * newest authentic copy (a slot file's winner, or a single-copy file,
 * which the first commit converts), *kf ready for commits.  0, a KS_ERR_*
 * or -errno (then err says why). */
int mgr_store_read(int dirfd, const uint8_t root_key[KEYSTORE_ROOT_KEY_LEN],
		   struct keystore *ks, struct keystore_meta *meta,
		   struct ksfile *kf, char *err, size_t errlen);

/* Closes the store file (at exit). */
void mgr_commits_close(struct mgr_commits *c);

#endif
