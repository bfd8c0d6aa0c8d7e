/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The key store on disk: loaded and checked against the TPM's NV counter
 * at start-up, then made durable by group commits, each bound to the
 * counter when forced or when --counter-interval has passed.
 */
#ifndef VTPM_MANAGER_COMMIT_H
#define VTPM_MANAGER_COMMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/list.h"

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

#endif
