/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instance core as transports see it: a FIFO of jobs run one at a
 * time against the engine.  A job is a TPM command or a call (a function
 * run with exclusive use of the engine, for control-channel operations).
 * If a job changed persistent state, the state file is made durable on
 * the worker thread before the job's done callback runs, so a transport
 * never releases a response whose effect could still be lost.
 */
#ifndef VTPM_VTPM_H
#define VTPM_VTPM_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "proto/config.h"
#include "instance/engine.h"
#include "instance/jobq.h"
#include "instance/manufacture.h"
#include "instance/mgrlink.h"

struct transport;

struct transport_ops {
	const char *name;
	/* Starts serving; 0 or negative errno. */
	int (*start)(struct transport *t);
	/* Stops accepting and closes every connection, then calls done. */
	void (*stop)(struct transport *t, void (*done)(struct transport *t));
	/* Optional: opens what needs privilege, before --user drops it;
	 * 0 or negative errno. */
	int (*preopen)(const struct config *cfg);
};

/* The transports an instance can serve on.  main() fills it: it is the
 * only file that sees both the instance and the transports. */
struct instance_transports {
	const struct transport_ops *unix_socket;
	const struct transport_ops *xen_ring;
	/* Opens manager-link specs that name a transport ("xen-ring..."). */
	mgrlink_dialer dial_manager;
	/* Before the sandbox: loads what dial_manager needs for this spec
	 * (its libraries); 0, or -errno with the reason logged. */
	int (*dial_prepare)(const char *spec);
};

struct transport {
	const struct transport_ops *ops;
	struct vtpm *vtpm;
	uv_loop_t *loop;
	const struct config *cfg;
	void *priv;
};

/* The instance; transports reach its engine through vtpm_engine() and
 * the functions of instance/engine.h, never through these fields. */
struct vtpm {
	uv_loop_t *loop;
	const struct config *cfg;
	struct engine eng;
	struct transport transport;

	struct jobq q;
	struct worker worker;  /* the queue's and the instance's off-loop work */
	mgrlink_dialer dial_manager; /* from instance_transports */
	/* Jobs of the instance itself, run first. */
	struct vtpm_job power_job, first_persist;
	bool power_failed;     /* power_job's verdict */
	uint8_t failrsp[TPM_HEADER_LEN]; /* a command whose state was lost */
	struct worker_req start_mark_work, final_work;
	uint64_t start_mark_gen;
	bool start_mark_busy;
	/* What the watermark file holds, when known (read at start, or
	 * written since): a write that would not raise it is skipped. */
	bool mark_known;
	uint64_t mark_gen;
	int mark_rc;           /* the last watermark write's */

	uv_signal_t sigterm, sigint, sigusr2;
	bool signals_on;       /* install_signals ran (before the load) */
	struct mgrlink link;   /* to the manager, when managed */
	uv_poll_t link_poll;   /* the manager link, watched for hang-up */
	struct pcrserve *pcrserve; /* the manager's requests on the link */
	bool stopping;
	bool managed;          /* keys and freshness come from the manager */
	bool manufacture;      /* new: EK certificates first (manufacture.h) */
	struct manufacture mf;
	bool transport_stopped;
	bool finishing;        /* the final steps of the shutdown began */
	int exit_code;

	bool reject_locality4; /* --locality reject-4 (resolved) */
	uint8_t locrsp[TPM_HEADER_LEN]; /* a command refused for locality 4 */
	bool have_migration_key;
	uint8_t migration_key[32]; /* derived (proto/migblob.h), wiped at exit */

	/* vtpm_save_at_exit: the volatile state and this resume tag are
	 * made durable before the process exits. */
	bool exit_save;
	uint8_t exit_tag[64];
	uint32_t exit_tag_len;
	int exit_save_rc;
	struct worker_req exit_save_work;
};

/* The instance's engine, for the functions of instance/engine.h (from a
 * job call, or for what engine.h says may run beside a job). */
static inline struct engine *vtpm_engine(struct vtpm *v)
{
	return &v->eng;
}

void vtpm_submit(struct vtpm *v, struct vtpm_job *job);

/*
 * For a transport's stop: its guest is still attached (a Xen domain
 * suspended for xl save or xl migrate), so before the process exits the
 * TPM's volatile state is saved with this resume tag (engine_suspend_save,
 * then a durable write), once the running job is done.  len at most 64.
 */
void vtpm_save_at_exit(struct vtpm *v, const uint8_t *tag, uint32_t len);

/* Whether locality 4 is refused (--locality, resolved for the transport). */
static inline bool vtpm_rejects_locality4(const struct vtpm *v)
{
	return v->reject_locality4;
}

/* The key state blobs are sealed with for migration, NULL without one. */
static inline const uint8_t *vtpm_migration_key(const struct vtpm *v)
{
	return v->have_migration_key ? v->migration_key : NULL;
}

/* Whether the operator lets state blobs out (and in) in the clear. */
static inline bool vtpm_plaintext_state_allowed(const struct vtpm *v)
{
	return v->cfg->allow_plaintext_state;
}

/*
 * The link to the manager, if this instance is managed and the link is
 * open; NULL otherwise.  A call on it blocks: only jobs on the thread
 * pool use it (mgrlink.h).
 */
static inline struct mgrlink *vtpm_manager_link(struct vtpm *v)
{
	return v->managed && mgrlink_is_open(&v->link) ? &v->link : NULL;
}

/* Removes a job that has not started yet (its done() will then not run);
 * false if it already runs. */
bool vtpm_withdraw(struct vtpm *v, struct vtpm_job *job);

/* Asks the running command to stop early (TPM cancel). */
void vtpm_cancel(struct vtpm *v);

/* Orderly exit: finish the running job, flush state, stop the loop. */
void vtpm_shutdown(struct vtpm *v, int exit_code);

/* The instance role's main (core/instance/instance.c). */
int instance_main(const struct config *cfg,
		  const struct instance_transports *transports);

#endif
