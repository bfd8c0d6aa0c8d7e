/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instance core as transports see it: a FIFO of jobs run one at a
 * time against the engine.  A job is a TPM command or a call (a function
 * run with exclusive use of the engine, for control-channel operations).
 * If a job changed persistent state, the state file is made durable on
 * the thread pool before the job's done callback runs, so a transport
 * never releases a response whose effect could still be lost.
 */
#ifndef VTPM_VTPM_H
#define VTPM_VTPM_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "proto/config.h"
#include "instance/engine.h"

struct vtpm;
struct vtpm_job;

typedef void (*vtpm_job_cb)(struct vtpm_job *job);
typedef void (*vtpm_call_fn)(struct vtpm *v, struct vtpm_job *job);

enum vtpm_job_kind {
	VTPM_JOB_CMD = 1,
	VTPM_JOB_CALL = 2,
};

struct vtpm_job {
	/* filled by the submitter */
	enum vtpm_job_kind kind;
	const uint8_t *cmd;    /* CMD: command bytes, valid until done */
	uint32_t cmd_len;
	int locality;          /* CMD: -1 keeps the current locality */
	vtpm_call_fn call;     /* CALL: runs on the loop thread, or on the
				  thread pool when call_offloop is set */
	bool call_offloop;
	vtpm_job_cb done;      /* runs on the loop thread */
	void *data;            /* the submitter's */

	/* results, valid inside done() only */
	const uint8_t *rsp;
	uint32_t rsp_len;
	int status;            /* 0, or -ECANCELED when dropped at shutdown */

	/* private to the core */
	struct vtpm_job *next;
	struct vtpm *owner;
	uv_work_t work;
	int persist_rc;
	bool offloop;
};

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
};

struct transport {
	const struct transport_ops *ops;
	struct vtpm *vtpm;
	uv_loop_t *loop;
	const struct config *cfg;
	void *priv;
};

struct vtpm {
	uv_loop_t *loop;
	const struct config *cfg;
	struct engine eng;
	struct transport transport;

	struct vtpm_job *head, *tail;
	struct vtpm_job *cur;
	uv_work_t start_mark_work, final_work;
	uint64_t start_mark_gen;
	bool start_mark_busy;

	uv_signal_t sigterm, sigint;
	uv_poll_t link_poll;   /* the manager link, watched for hang-up */
	bool stopping;
	bool managed;          /* keys and freshness come from the manager */
	bool transport_stopped;
	int exit_code;
};

void vtpm_submit(struct vtpm *v, struct vtpm_job *job);

/* Removes a job that has not started yet; false if it already runs. */
bool vtpm_withdraw(struct vtpm *v, struct vtpm_job *job);

/* Asks the running command to stop early (TPM cancel). */
void vtpm_cancel(struct vtpm *v);

/* Orderly exit: finish the running job, flush state, stop the loop. */
void vtpm_shutdown(struct vtpm *v, int exit_code);

/* The instance role's main (core/instance/instance.c). */
int instance_main(const struct config *cfg,
		  const struct instance_transports *transports);

#endif
