/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager role: one per host.  It holds the root key (sealed to the
 * physical TPM), the key store of every vTPM, and the instance processes.
 *
 *   manager.c     start-up, signals, shutdown; wires the parts together
 *   task.c        the task queues: the store files, and the physical TPM
 *                 (a thread of its own, a deadline on every call)
 *   tpm.c         the seam to the physical TPM the tasks use
 *   commit.c      the store on disk: load, group commit, NV counter
 *   rootkey.c     unseal, derive, reseal (and the seal files)
 *   registry.c    the vTPMs: records, instances.json, create/delete/start/stop
 *   supervisor.c  instance processes: start, restart with backoff, stop
 *   link.c        the manager protocol over an abstract connection
 *   quote.c       quotes, deep quotes; the PCR source seam (quote.h),
 *                 PCR_READ over the manager link (link.c)
 *   control.c     the control socket (JSON lines); commands.c its table
 *   xenmgr.c      the vtpm devices of a Xen host (devwatch, rings)
 *   migrate.c     offline migration (migration key, export, import) and
 *                 clones
 */
#ifndef VTPM_MANAGER_H
#define VTPM_MANAGER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "lib/list.h"
#include "manager/commit.h"
#include "manager/ekca.h"
#include "manager/link.h"
#include "manager/registry.h"
#include "manager/supervisor.h"
#include "manager/task.h"
#include "manager/xenmgr.h"
#include "proto/config.h"
#include "proto/keystore.h"
#include "tss-device/tss_hal.h"

struct mgr_tpm_ops;
struct mgr_pcr_source;
struct mgr_migkey;

#define NV_AUTH_LEN 32

/* One vTPM the manager knows, in its parts, each owned by one module. */
struct vtpm_entry {
	struct list_node node;    /* m->entries */
	struct manager *m;
	struct vtpm_rec rec;      /* registry.c: what instances.json keeps */
	struct sup_child child;   /* supervisor.c: its instance process */
	struct vtpm_xendev xd;    /* xenmgr.c: the Xen device it serves */
	struct mgr_link link;     /* link.c: the manager protocol */
	struct mgr_ek_entry ek;   /* ekca.c: its manufacture */
	bool migrating;           /* migrate.c: frozen by an export, import
				   * or clone under way */
	bool leaving;             /* online.c: moving out; its stopping
				   * instance may still save its state */
};

struct manager {
	uv_loop_t *loop;
	const struct config *cfg;
	uint64_t (*now_ms)(void); /* the clock (mgr_now_ms; tests: a fake) */
	struct tss_hal *hal;
	const struct mgr_tpm_ops *tpm;     /* what tasks ask of the TPM */
	const struct mgr_pcr_source *pcrs; /* a vTPM's PCRs, for deep quotes */
	const struct sup_events *sup;      /* the supervisor's reports */
	struct pcr_sel sel;
	uint8_t *root_key;        /* 32 bytes in an mlock()ed page */
	uint8_t *nv_auth;         /* the NV counter's auth, same page */
	uint8_t *ak_spki;         /* the attestation key, for verifiers */
	size_t ak_spki_len;
	struct mgr_ekca *ekca;    /* ekca.c: the EK CA, or NULL */
	struct mgr_migkey *migkey; /* migrate.c: loaded on first use, by
				    * TPM-queue tasks only */
	struct keystore ks;
	uint64_t store_generation;
	uint64_t tpm_counter;     /* the TPM's counter, as last seen */
	bool main_seal_verified;  /* rootkey.sealed opened this boot config */
	bool new_root_key;        /* sealed at this start: no store yet */
	char **child_env;         /* environment of instances */
	uint64_t started_ms;
	int dirfd;
	char exe[256];
	uid_t inst_uid;           /* instance-user's: without instance-uids */
	gid_t inst_gid;
	bool drop_privileges;
	bool client_group;        /* client-group set: its gid below */
	gid_t client_gid;         /* may connect to the instances' sockets */

	struct list_node entries; /* struct vtpm_entry */
	bool entries_dirty;       /* instances.json must be rewritten */
	unsigned int links_open;  /* socket links not yet released */

	struct mgr_taskq tasks;   /* the store files */
	struct mgr_taskq tpmq;    /* the physical TPM, with a deadline */
	struct mgr_commits commits;

	uv_signal_t sigterm, sigint;
	bool stopping;
	bool final_commit;        /* the shutdown commit is under way */
	int exit_code;
	void *control;
	void *xen;                /* struct mgr_xen, when serving Xen guests */
	void *online;             /* online.c: listener, transactions */
};

uint64_t mgr_now_ms(void);    /* CLOCK_MONOTONIC */
static inline uint64_t mgr_now(const struct manager *m)
{
	return m->now_ms ? m->now_ms() : mgr_now_ms();
}

/* The parts of a manager that need no TPM and no files: loop, clock,
 * queues, lists, and the default seams and event handlers. */
void mgr_init(struct manager *m, uv_loop_t *loop, const struct config *cfg);
/* The supervisor's reports, as the manager handles them. */
extern const struct sup_events mgr_sup_events;
/* When stopping and everything is quiet: the final commit, then exit. */
void mgr_maybe_exit(struct manager *m);
int manager_main(const struct config *cfg);

#endif
