/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instance's off-loop worker: one thread, started when work arrives
 * and ended when it has had none for linger_ms, in place of libuv's
 * thread pool (whose threads, once started, live as long as the process).
 *
 * Why: a process whose file table is shared by a second thread pays the
 * kernel's slow path on every read, write and epoll_wait (a reference
 * taken and dropped on the file each time: fdget() skips it only while
 * one thread owns the table).  Measured on the bench machine, an idle
 * second thread costs a request/response server 3-6% of its round trips
 * (tools/bench/RESULTS.md).  An instance that serves GetRandom or
 * PCR_Extend and writes nothing thus runs with one thread; one that
 * writes keeps its worker while the writes come closer together than
 * linger_ms.
 *
 * The rules it keeps (those of uv_queue_work, which it replaces):
 *  - work runs on the worker thread, one request at a time, in queue
 *    order; after runs on the loop thread once work has returned, in the
 *    same order, never inside worker_queue;
 *  - a queued request keeps the loop alive until its after has run;
 *  - if no thread can be started, work runs on the loop thread (slow,
 *    never lost), and after still runs from the loop later.
 *
 * Loop thread only, but for the work functions themselves.
 */
#ifndef VTPM_WORKER_H
#define VTPM_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/list.h"

struct worker_req;
typedef void (*worker_fn)(struct worker_req *r);

struct worker_req {
	worker_fn work;   /* on the worker thread */
	worker_fn after;  /* on the loop thread */
	void *data;       /* the submitter's */
	struct list_node node; /* private */
};

struct worker {
	uv_loop_t *loop;
	uv_async_t async;        /* the thread's "done" */
	pthread_mutex_t mu;
	pthread_cond_t cv;       /* work queued, or quit */
	struct list_node todo;   /* of worker_req.node, under mu */
	struct list_node done;   /* under mu */
	unsigned linger_ms;
	unsigned pending;        /* queued and not yet after'd (loop) */
	unsigned started;        /* threads started so far (loop) */
	pthread_t thr;
	bool alive;              /* the thread takes work (under mu) */
	bool joinable;           /* thr has not been joined (loop) */
	bool quit;               /* under mu */
	bool ready;              /* worker_init succeeded */
};

/* 0 or a negative errno.  The async handle is unreferenced while nothing
 * is queued, so an idle worker does not keep the loop running. */
int worker_init(struct worker *w, uv_loop_t *loop, unsigned linger_ms);

/* Queues r (work and after set by the caller). */
void worker_queue(struct worker *w, struct worker_req *r);

/* Ends the thread (it finishes the work it runs; queued work is still
 * run) and waits for it, then closes the async handle unless it is
 * closing already.  After runs for nothing more: call it once the loop's
 * work is over, before uv_loop_close (whose last run closes the
 * handle). */
void worker_stop(struct worker *w);

/* Whether a worker thread exists now (tests, logs). */
bool worker_thread_alive(struct worker *w);

#endif
