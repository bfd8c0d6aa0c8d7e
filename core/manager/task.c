/* SPDX-License-Identifier: BSD-3-Clause */
/* The task queue (task.h). */
#include "manager/task.h"
#include "manager/manager.h"

static void taskq_run_next(struct mgr_taskq *q);

static void task_work(uv_work_t *req)
{
	struct mgr_task *t = req->data;

	t->work(t);
}

static void task_after(uv_work_t *req, int status)
{
	struct mgr_task *t = req->data;
	struct mgr_taskq *q = t->q;

	(void)status;
	q->cur = NULL;
	t->done(t);
	taskq_run_next(q);
	if (q->after)
		q->after(q->arg);
}

static void taskq_run_next(struct mgr_taskq *q)
{
	struct list_node *n;
	struct mgr_task *t;

	if (q->cur)
		return;
	n = list_pop_front(&q->queue);
	if (!n)
		return;
	t = list_item(n, struct mgr_task, node);
	q->cur = t;
	t->req.data = t;
	uv_queue_work(q->loop, &t->req, task_work, task_after);
}

void mgr_taskq_init(struct mgr_taskq *q, uv_loop_t *loop,
		    void (*after)(void *arg), void *arg)
{
	q->loop = loop;
	list_init(&q->queue);
	q->cur = NULL;
	q->after = after;
	q->arg = arg;
}

void mgr_taskq_submit(struct mgr_taskq *q, struct mgr_task *t)
{
	t->q = q;
	t->rc = 0;
	t->err[0] = '\0';
	list_push_back(&q->queue, &t->node);
	taskq_run_next(q);
}

bool mgr_taskq_idle(const struct mgr_taskq *q)
{
	return !q->cur && list_empty(&q->queue);
}

void mgr_task_submit(struct manager *m, struct mgr_task *t)
{
	t->m = m;
	mgr_taskq_submit(&m->tasks, t);
}
