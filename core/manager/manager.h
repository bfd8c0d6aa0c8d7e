/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager role: one per host.  It holds the root key (sealed to the
 * physical TPM), the key store of every vTPM, and the instance processes.
 *
 *   manager.c     start-up (unseal, store freshness), the task queue that
 *                 owns the physical TPM and the store file, the manager
 *                 protocol on each instance's link
 *   supervisor.c  instance processes: start, restart with backoff, stop
 *   control.c     the control socket that vtpmctl speaks (JSON lines)
 */
#ifndef VTPM_MANAGER_H
#define VTPM_MANAGER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "proto/config.h"
#include "proto/keystore.h"
#include "tss-device/tss_hal.h"

struct manager;
struct mgr_task;

#define NV_AUTH_LEN 32

/* A unit of work that needs the TPM or the store file: run one at a time,
 * in order, on the thread pool (work), then finished on the loop (done). */
struct mgr_task {
	struct mgr_task *next;
	struct manager *m;
	void (*work)(struct mgr_task *t);
	void (*done)(struct mgr_task *t);
	void *data;
	int rc;
	char err[256];
	uv_work_t req;
};

enum child_state {
	CHILD_STOPPED = 0,
	CHILD_RUNNING,
	CHILD_BACKOFF,  /* exited; restarts when the timer fires */
	CHILD_STOPPING, /* SIGTERM sent */
};

/* One vTPM the manager knows: the key store record is the secret part,
 * this the operational part (instances.json). */
struct vtpm_entry {
	struct vtpm_entry *next;
	struct manager *m;
	uint8_t uuid[16];
	char uuid_str[37];
	long domid;
	char transport[160];
	int tpm_version;          /* 1 or 2 */
	bool autostart;           /* should be running */
	unsigned int stop_waiters; /* control clients waiting for it to stop */

	/* supervisor */
	enum child_state state;
	uv_process_t proc;
	bool proc_open;
	uv_pipe_t link;
	bool link_open;
	unsigned int link_epoch;  /* answers of a dead link are dropped */
	uv_timer_t timer;
	bool timer_open;
	unsigned int restarts;
	unsigned int backoff_ms;
	uint64_t started_ms;
	int last_exit;

	/* Xen: the vtpm device this vTPM serves (devwatch) */
	bool xen;                 /* a device names it: serve it there */
	uint32_t xen_fe, xen_dev; /* frontend domain, device number */
	bool xen_restart;         /* start again once the old one exited */
	/* The instance runs in its own domain (transport "xen-domain") and
	 * reaches us over this ring, the backend of its vtpm device: the
	 * manager protocol instead of a socketpair (xenmgr.c). */
	struct tpmback *ring;

	/* manager protocol on the link */
	uint8_t rbuf[4096];
	size_t rlen;
	bool busy;                /* a request of this link is being served */
};

struct manager {
	uv_loop_t *loop;
	const struct config *cfg;
	struct tss_hal *hal;
	struct pcr_sel sel;
	uint8_t *root_key;        /* 32 bytes in an mlock()ed page */
	uint8_t *nv_auth;         /* the NV counter's auth, same page */
	uint8_t *ak_spki;         /* the attestation key, for verifiers */
	size_t ak_spki_len;
	struct keystore ks;
	uint64_t store_generation;
	uint64_t tpm_counter;     /* the TPM's counter, as last seen */
	bool force_next;          /* the next commit must bind */
	bool main_seal_verified;  /* rootkey.sealed opened this boot config */
	bool new_root_key;        /* sealed at this start: no store yet */
	char **child_env;         /* environment of instances */
	uint64_t last_increment_ms;
	unsigned long increments;
	uint64_t started_ms;
	int dirfd;
	char exe[256];
	uid_t inst_uid;
	gid_t inst_gid;
	bool drop_privileges;

	struct vtpm_entry *entries;
	bool entries_dirty;       /* instances.json must be rewritten */

	/* task queue */
	struct mgr_task *head, *tail, *cur;

	/* store commits waiting for the next write (group commit) */
	struct mgr_commit *pending;
	bool commit_queued;

	uv_signal_t sigterm, sigint;
	bool stopping;
	int exit_code;
	void *control;
	void *xen;                /* struct mgr_xen, when serving Xen guests */
};

/* manager.c */
void mgr_task_submit(struct manager *m, struct mgr_task *t);
/* Makes the in-memory store durable, then calls cb (loop thread).
 * force: bind this copy with an NV counter increment now. */
void mgr_commit(struct manager *m, bool force,
		void (*cb)(struct manager *m, int rc, void *arg), void *arg);
struct vtpm_entry *mgr_entry_find(struct manager *m, const uint8_t uuid[16]);
/* A new vTPM: a key store record (not yet committed) and its entry.
 * 0 or a KS_ERR_* code. */
int mgr_entry_new(struct manager *m, const uint8_t uuid[16], int tpm_version,
		  struct vtpm_entry **out);
void mgr_link_start(struct vtpm_entry *e);
/* One manager-protocol request that arrived on e's ring (xenmgr.c); the
 * answer goes back through tpmback_complete. */
void mgr_ring_request(struct vtpm_entry *e, const uint8_t *frame, size_t len);
/* e's ring connection ended: answers still being prepared are dropped. */
void mgr_ring_reset(struct vtpm_entry *e);
void mgr_maybe_exit(struct manager *m);
uint64_t mgr_now_ms(void);
int manager_main(const struct config *cfg);

/* supervisor.c */
int sup_start(struct vtpm_entry *e);
void sup_stop(struct vtpm_entry *e);
bool sup_all_stopped(struct manager *m);
const char *sup_state_name(enum child_state s);

/* xenmgr.c: serve the vtpm devices the toolstack gives this domain */
#define MGR_TRANSPORT_XEN_DOMAIN "xen-domain"
bool mgr_entry_is_remote(const struct vtpm_entry *e);
int mgr_xen_start(struct manager *m);
void mgr_xen_stop(struct manager *m);

/* control.c */
int control_start(struct manager *m);
void control_stop(struct manager *m);

#endif
