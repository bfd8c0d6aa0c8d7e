/* SPDX-License-Identifier: BSD-3-Clause */
#include "instance/jobq.h"

#include <errno.h>
#include <stddef.h>

void jobq_init(struct jobq *q, struct worker *worker,
	       const struct jobq_ops *ops, void *ctx)
{
	q->worker = worker;
	q->ops = ops;
	q->ctx = ctx;
	list_init(&q->queue);
	q->cur = NULL;
	q->stopping = false;
}

static void run_next(struct jobq *q);

static void job_work(struct worker_req *w)
{
	struct vtpm_job *job = w->data;
	struct jobq *q = job->q;

	if (job->offloop)
		q->ops->run(q->ctx, job);
	job->persist_rc = q->ops->persist(q->ctx);
}

static void job_after_work(struct worker_req *w)
{
	struct vtpm_job *job = w->data;
	struct jobq *q = job->q;
	int rc = job->persist_rc;

	q->cur = NULL;
	if (rc) {
		job->status = -EIO;
		q->ops->persist_failed(q->ctx, job, rc);
		job->done(job);
		q->ops->fatal(q->ctx, rc);
		/* What follows would run on state a restart loses. */
		jobq_drain(q);
		return;
	}
	job->done(job);
	run_next(q);
}

static void run_next(struct jobq *q)
{
	struct list_node *n;
	struct vtpm_job *job;

	while (!q->cur && (n = list_pop_front(&q->queue))) {
		job = list_item(n, struct vtpm_job, node);
		q->cur = job;
		job->persist_rc = 0;
		job->offloop = q->ops->offloop(q->ctx, job);
		if (!job->offloop)
			q->ops->run(q->ctx, job);
		if (job->offloop || q->ops->dirty(q->ctx)) {
			job->work.data = job;
			job->work.work = job_work;
			job->work.after = job_after_work;
			worker_queue(q->worker, &job->work);
			return;
		}
		q->cur = NULL;
		job->done(job);
	}
	if (q->stopping && !q->cur)
		q->ops->idle(q->ctx);
}

void jobq_submit(struct jobq *q, struct vtpm_job *job)
{
	job->q = q;
	job->status = 0;
	job->rsp = NULL;
	job->rsp_len = 0;
	list_init(&job->node);
	if (q->stopping) {
		job->status = -ECANCELED;
		job->done(job);
		return;
	}
	list_push_back(&q->queue, &job->node);
	run_next(q);
}

bool jobq_withdraw(struct jobq *q, struct vtpm_job *job)
{
	if (q->cur == job)
		return false;
	if (list_linked(&job->node))
		list_remove(&job->node);
	return true;
}

void jobq_cancel(struct jobq *q)
{
	struct vtpm_job *job = q->cur;

	if (job && job->kind == VTPM_JOB_CMD && job->offloop)
		q->ops->cancel(q->ctx);
}

void jobq_drain(struct jobq *q)
{
	struct list_node *n;

	q->stopping = true;
	/* Queued jobs never started: their clients get no answer. */
	while ((n = list_pop_front(&q->queue))) {
		struct vtpm_job *job = list_item(n, struct vtpm_job, node);

		job->status = -ECANCELED;
		job->done(job);
	}
	if (!q->cur)
		q->ops->idle(q->ctx);
}
