/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager's task queues.  Tasks run one at a time, in submission
 * order, off the loop (work), then finish on the loop thread (done).
 *
 * Two queues: m->tasks, the store files (key store commits, on the thread
 * pool), and m->tpmq, the physical TPM (its own thread, and a deadline on
 * every call).  So a TPM that hangs holds up its own queue only: commits
 * that need no TPM call go on.
 *
 * The deadline: ESYS calls are synchronous and cannot be cancelled
 * safely, so when a call overruns, the queue is marked stuck (since when,
 * which call), the task's expire() answers its waiter with -ETIMEDOUT,
 * every task queued behind it and every task submitted until the call
 * returns is refused (done with -EAGAIN, err saying why), and the thread
 * is left to finish the call.  When it does, the task's done() runs
 * (t->expired tells it the waiter was already answered) and the queue
 * serves again.
 */
#ifndef VTPM_MANAGER_TASK_H
#define VTPM_MANAGER_TASK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/list.h"

struct manager;

struct mgr_task {
	struct list_node node;
	struct manager *m;
	struct mgr_taskq *q;               /* set by submit */
	void (*work)(struct mgr_task *t); /* off the loop */
	void (*done)(struct mgr_task *t); /* loop thread; may free t */
	/* TPM queue: the deadline passed while work runs: answer the
	 * waiter now with rc and err (work may still write t->rc and
	 * t->err: read neither), free nothing; done runs when work
	 * returns, t->expired set.  NULL: done is the only answer. */
	void (*expire)(struct mgr_task *t, int rc, const char *err);
	const char *call;                  /* the TPM call, for reports */
	bool expired;
	int rc;
	char err[256];
	uv_work_t req;
};

struct mgr_taskq {
	uv_loop_t *loop;
	struct list_node queue;
	struct mgr_task *cur;
	/* Called on the loop thread after each task's done. */
	void (*after)(void *arg);
	void *arg;

	/* A queue with a thread of its own and a deadline (the TPM's). */
	bool threaded;
	unsigned int deadline_ms;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct mgr_task *handoff;   /* to the thread */
	struct mgr_task *finished;  /* back from it */
	uv_async_t async;
	uv_timer_t timer;
	struct list_node refused;   /* submitted while stuck */
	bool quit, thread_running;
	bool stuck;                 /* cur overran its deadline */
	uint64_t cur_start_ms, stuck_since_ms;   /* uv_now() */
	const char *stuck_call;
	unsigned long overruns;
};

void mgr_taskq_init(struct mgr_taskq *q, uv_loop_t *loop,
		    void (*after)(void *arg), void *arg);
/* A queue on its own thread, deadline_ms per task.  0 or -errno. */
int mgr_taskq_init_thread(struct mgr_taskq *q, uv_loop_t *loop,
			  unsigned int deadline_ms, void (*after)(void *arg),
			  void *arg);
/* Ends the queue's thread (nothing queued any more; the loop's handles
 * are closed by their owner's uv_walk, or with the loop). */
void mgr_taskq_close(struct mgr_taskq *q);
void mgr_taskq_submit(struct mgr_taskq *q, struct mgr_task *t);
/* Nothing running, nothing waiting (a stuck call counts as nothing: it
 * answers nobody, and shutdown need not wait for it). */
bool mgr_taskq_idle(const struct mgr_taskq *q);
/* Whether a call overran: then *since_ms (loop clock) and *call. */
bool mgr_taskq_stuck(const struct mgr_taskq *q, uint64_t *since_ms,
		     const char **call);

/* The manager's store queue (m->tasks); sets t->m. */
void mgr_task_submit(struct manager *m, struct mgr_task *t);
/* The manager's TPM queue (m->tpmq); sets t->m.  t->call names it. */
void mgr_tpm_submit(struct manager *m, struct mgr_task *t);

#endif
