/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instance's job queue: a FIFO of jobs run one at a time against an
 * engine it knows only through jobq_ops (the instance gives it the real
 * engine, the unit tests a fake one).
 *
 * The rules it keeps:
 *  - jobs run in submission order, one at a time; a job runs on the loop
 *    thread, or on the worker when ops->offloop says so;
 *  - durable before done: if the engine is dirty after a job, its state
 *    is persisted on the worker before the job's done() runs, so no
 *    answer leaves whose effect a crash could still lose;
 *  - a failed persist fails that job (-EIO), cancels everything queued
 *    behind it, and reports to ops->fatal: nothing runs on state that a
 *    restart would lose;
 *  - once drained (shutdown), every queued job and every job submitted
 *    later is done with -ECANCELED at once; the running one finishes.
 *
 * Loop thread only, but for the ops the worker calls (see below).
 */
#ifndef VTPM_JOBQ_H
#define VTPM_JOBQ_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "instance/worker.h"
#include "lib/list.h"

struct jobq;
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
				  worker when call_offloop is set */
	bool call_offloop;
	vtpm_job_cb done;      /* runs on the loop thread */
	void *data;            /* the submitter's */

	/* results, valid inside done() only */
	const uint8_t *rsp;
	uint32_t rsp_len;
	int status;            /* 0; -ECANCELED when dropped at shutdown;
				  -EIO when its effect could not be made
				  durable */

	/* private to the queue */
	struct list_node node;
	struct jobq *q;
	struct worker_req work;
	int persist_rc;
	bool offloop;
};

struct jobq_ops {
	/* Whether the job runs on the worker (loop thread). */
	bool (*offloop)(void *ctx, const struct vtpm_job *job);
	/* Runs the job: fills rsp for a command (the thread offloop says). */
	void (*run)(void *ctx, struct vtpm_job *job);
	/* Whether persistent state changed since the last persist (loop
	 * thread, right after an on-loop run). */
	bool (*dirty)(void *ctx);
	/* Makes changed state durable, 0 when nothing changed; 0 or a
	 * negative errno (worker). */
	int (*persist)(void *ctx);
	/* Asks the running off-loop command to stop early (loop thread,
	 * while run() runs on the worker). */
	void (*cancel)(void *ctx);
	/* persist failed after this job: its status is -EIO; give it its
	 * answer (before done). */
	void (*persist_failed)(void *ctx, struct vtpm_job *job, int rc);
	/* After that job's done; the queue then drains (jobq_drain). */
	void (*fatal)(void *ctx, int rc);
	/* Drained and nothing runs any more (shutdown may go on); may be
	 * called more than once. */
	void (*idle)(void *ctx);
};

struct jobq {
	struct worker *worker;   /* runs what is off the loop */
	const struct jobq_ops *ops;
	void *ctx;
	struct list_node queue;  /* of vtpm_job.node, oldest first */
	struct vtpm_job *cur;    /* running, or persisting after running */
	bool stopping;
};

void jobq_init(struct jobq *q, struct worker *worker,
	       const struct jobq_ops *ops, void *ctx);

/* Queues a job; it may run, and be done, before this returns. */
void jobq_submit(struct jobq *q, struct vtpm_job *job);

/* Removes a job that has not started; its done() will not run.  false if
 * it is running (its done() will run); true as well when it is not
 * queued at all (already done). */
bool jobq_withdraw(struct jobq *q, struct vtpm_job *job);

/* Asks the running job to stop early, if it is a command on the worker. */
void jobq_cancel(struct jobq *q);

/* Shutdown: every queued job is done with -ECANCELED, in order, and so
 * is every job submitted from now on.  ops->idle is called once nothing
 * runs: here if nothing does, else when the running job has finished. */
void jobq_drain(struct jobq *q);

/* Whether a job runs (or persists) now. */
static inline bool jobq_busy(const struct jobq *q)
{
	return q->cur != NULL;
}

#endif
