/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager's task queue: the only user of the physical TPM and of the
 * store files.  Tasks run one at a time, in submission order, on the
 * thread pool (work), then finish on the loop thread (done).
 */
#ifndef VTPM_MANAGER_TASK_H
#define VTPM_MANAGER_TASK_H

#include <stdbool.h>
#include <uv.h>

#include "lib/list.h"

struct manager;

struct mgr_task {
	struct list_node node;
	struct manager *m;
	struct mgr_taskq *q;               /* set by submit */
	void (*work)(struct mgr_task *t); /* thread pool */
	void (*done)(struct mgr_task *t); /* loop thread; may free t */
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
};

void mgr_taskq_init(struct mgr_taskq *q, uv_loop_t *loop,
		    void (*after)(void *arg), void *arg);
void mgr_taskq_submit(struct mgr_taskq *q, struct mgr_task *t);
/* Nothing running, nothing waiting. */
bool mgr_taskq_idle(const struct mgr_taskq *q);

/* The manager's queue (m->tasks); sets t->m. */
void mgr_task_submit(struct manager *m, struct mgr_task *t);

#endif
