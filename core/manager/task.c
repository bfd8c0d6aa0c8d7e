/* SPDX-License-Identifier: BSD-3-Clause */
/* The task queues (task.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/log.h"
#include "manager/manager.h"
#include "manager/task.h"

static void taskq_run_next(struct mgr_taskq *q);

/* ---- on the thread pool ---- */

static void task_work(uv_work_t *req)
{
	struct mgr_task *t = req->data;

	t->work(t);
}

static void task_finish(struct mgr_taskq *q, struct mgr_task *t)
{
	q->cur = NULL;
	t->done(t);
	taskq_run_next(q);
	if (q->after)
		q->after(q->arg);
}

static void task_after(uv_work_t *req, int status)
{
	struct mgr_task *t = req->data;

	(void)status;
	task_finish(t->q, t);
}

/* ---- on a thread of its own, with a deadline ---- */

/*
 * The async handle keeps the loop alive only while a call is out or
 * refusals are to be delivered.  (A stopping manager does not wait for a
 * call the TPM never answers: mgr_taskq_idle ignores it, and the final
 * commit stops the loop.)
 */
static void taskq_ref_update(struct mgr_taskq *q)
{
	if (q->cur || !list_empty(&q->refused))
		uv_ref((uv_handle_t *)&q->async);
	else
		uv_unref((uv_handle_t *)&q->async);
}

static void *taskq_thread(void *arg)
{
	struct mgr_taskq *q = arg;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		struct mgr_task *t;

		while (!q->handoff && !q->quit)
			pthread_cond_wait(&q->cv, &q->mu);
		if (q->quit)
			break;
		t = q->handoff;
		q->handoff = NULL;
		pthread_mutex_unlock(&q->mu);
		t->work(t);
		pthread_mutex_lock(&q->mu);
		q->finished = t;
		uv_async_send(&q->async);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

/* Done with -EAGAIN: the TPM is still inside an earlier call. */
static void task_refuse(struct mgr_taskq *q, struct mgr_task *t)
{
	t->rc = -EAGAIN;
	snprintf(t->err, sizeof(t->err),
		 "physical TPM unresponsive for %llu s (call %s still "
		 "outstanding): refused",
		 (unsigned long long)((uv_now(q->loop) - q->stuck_since_ms) /
				      1000),
		 q->stuck_call ? q->stuck_call : "?");
	t->done(t);
}

static void taskq_refuse_all(struct mgr_taskq *q, struct list_node *l)
{
	struct list_node *n;

	while ((n = list_pop_front(l)))
		task_refuse(q, list_item(n, struct mgr_task, node));
}

static void taskq_on_deadline(uv_timer_t *h)
{
	struct mgr_taskq *q = h->data;
	struct mgr_task *t = q->cur;
	char err[200];
	bool returned;

	if (!t || q->stuck)
		return;
	/* A call that returned just now is the async callback's. */
	pthread_mutex_lock(&q->mu);
	returned = q->finished == t;
	if (!returned)
		t->expired = true;
	pthread_mutex_unlock(&q->mu);
	if (returned)
		return;
	q->stuck = true;
	q->overruns++;
	q->stuck_since_ms = q->cur_start_ms;
	q->stuck_call = t->call ? t->call : "?";
	snprintf(err, sizeof(err),
		 "physical TPM did not answer %s within %u s (unresponsive)",
		 q->stuck_call, q->deadline_ms / 1000);
	log_warnx("physical TPM unresponsive: %s outstanding for %u ms; "
		  "refusing TPM calls until it returns (the call cannot be "
		  "cancelled; its thread is left to finish it)",
		  q->stuck_call, q->deadline_ms);
	if (t->expire)
		t->expire(t, -ETIMEDOUT, err);
	taskq_refuse_all(q, &q->queue);
	taskq_ref_update(q);
	if (q->after)
		q->after(q->arg);
}

static void taskq_on_async(uv_async_t *h)
{
	struct mgr_taskq *q = h->data;
	struct mgr_task *t;

	pthread_mutex_lock(&q->mu);
	t = q->finished;
	q->finished = NULL;
	pthread_mutex_unlock(&q->mu);
	if (t) {
		uv_timer_stop(&q->timer);
		if (q->stuck) {
			log_warnx("physical TPM answered %s after %.1f s: "
				  "serving TPM calls again", q->stuck_call,
				  (double)(uv_now(q->loop) - q->stuck_since_ms) /
					  1000.0);
			q->stuck = false;
			q->stuck_call = NULL;
		}
		task_finish(q, t);
	}
	if (!list_empty(&q->refused)) {
		taskq_refuse_all(q, &q->refused);
		if (q->after)
			q->after(q->arg);
	}
	taskq_ref_update(q);
}

static void taskq_hand_off(struct mgr_taskq *q, struct mgr_task *t)
{
	/* The deadline counts from now, not from the loop's cached time. */
	uv_update_time(q->loop);
	q->cur_start_ms = uv_now(q->loop);
	uv_timer_start(&q->timer, taskq_on_deadline, q->deadline_ms, 0);
	taskq_ref_update(q);
	pthread_mutex_lock(&q->mu);
	q->handoff = t;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

/* ---- both ---- */

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
	if (q->threaded) {
		taskq_hand_off(q, t);
		return;
	}
	t->req.data = t;
	uv_queue_work(q->loop, &t->req, task_work, task_after);
}

void mgr_taskq_init(struct mgr_taskq *q, uv_loop_t *loop,
		    void (*after)(void *arg), void *arg)
{
	memset(q, 0, sizeof(*q));
	q->loop = loop;
	list_init(&q->queue);
	list_init(&q->refused);
	q->after = after;
	q->arg = arg;
}

int mgr_taskq_init_thread(struct mgr_taskq *q, uv_loop_t *loop,
			  unsigned int deadline_ms, void (*after)(void *arg),
			  void *arg)
{
	int rc;

	mgr_taskq_init(q, loop, after, arg);
	q->threaded = true;
	q->deadline_ms = deadline_ms;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	uv_async_init(loop, &q->async, taskq_on_async);
	q->async.data = q;
	uv_timer_init(loop, &q->timer);
	q->timer.data = q;
	/* The timer is active only within a call's deadline. */
	taskq_ref_update(q);
	rc = pthread_create(&q->thread, NULL, taskq_thread, q);
	if (rc)
		return -rc;
	q->thread_running = true;
	return 0;
}

void mgr_taskq_close(struct mgr_taskq *q)
{
	if (!q->threaded || !q->thread_running)
		return;
	pthread_mutex_lock(&q->mu);
	q->quit = true;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	/* A thread inside a call the TPM never answered cannot be joined:
	 * the process is about to exit, and it goes with it. */
	if (q->stuck)
		pthread_detach(q->thread);
	else
		pthread_join(q->thread, NULL);
	q->thread_running = false;
}

void mgr_taskq_submit(struct mgr_taskq *q, struct mgr_task *t)
{
	t->q = q;
	t->rc = 0;
	t->err[0] = '\0';
	t->expired = false;
	if (q->stuck) {
		/* Answered on the next loop turn, not inside the caller. */
		list_push_back(&q->refused, &t->node);
		taskq_ref_update(q);
		uv_async_send(&q->async);
		return;
	}
	list_push_back(&q->queue, &t->node);
	taskq_run_next(q);
}

bool mgr_taskq_idle(const struct mgr_taskq *q)
{
	return (!q->cur || q->stuck) && list_empty(&q->queue) &&
	       list_empty(&q->refused);
}

bool mgr_taskq_stuck(const struct mgr_taskq *q, uint64_t *since_ms,
		     const char **call)
{
	if (!q->stuck)
		return false;
	*since_ms = q->stuck_since_ms;
	*call = q->stuck_call;
	return true;
}

void mgr_task_submit(struct manager *m, struct mgr_task *t)
{
	t->m = m;
	mgr_taskq_submit(&m->tasks, t);
}

void mgr_tpm_submit(struct manager *m, struct mgr_task *t)
{
	t->m = m;
	mgr_taskq_submit(&m->tpmq, t);
}
