/* SPDX-License-Identifier: BSD-3-Clause */
#include "instance/worker.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "lib/log.h"

static struct worker_req *pop(struct list_node *h)
{
	struct list_node *n = list_pop_front(h);

	return n ? list_item(n, struct worker_req, node) : NULL;
}

static void deadline_in(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/*
 * Takes work until there has been none for linger_ms, or until quit.
 * The decision to end is taken under the mutex: worker_queue sees !alive
 * and starts a new thread for what it queues after that.
 */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct worker_req *r;
	struct timespec until;
	int rc = 0;

	prctl(PR_SET_NAME, "vtpm-worker", 0, 0, 0);
	pthread_mutex_lock(&w->mu);
	for (;;) {
		r = pop(&w->todo);
		if (r) {
			pthread_mutex_unlock(&w->mu);
			r->work(r);
			pthread_mutex_lock(&w->mu);
			list_push_back(&w->done, &r->node);
			/* The handle lives until worker_stop has joined us. */
			uv_async_send(&w->async);
			rc = 0;
			continue;
		}
		if (w->quit || rc != 0)
			break;
		deadline_in(&until, w->linger_ms);
		do
			rc = pthread_cond_timedwait(&w->cv, &w->mu, &until);
		while (rc == 0 && list_empty(&w->todo) && !w->quit);
	}
	w->alive = false;
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static void on_done(uv_async_t *a)
{
	struct worker *w = a->data;
	struct list_node batch;
	struct worker_req *r;

	list_init(&batch);
	pthread_mutex_lock(&w->mu);
	while ((r = pop(&w->done)))
		list_push_back(&batch, &r->node);
	pthread_mutex_unlock(&w->mu);
	while ((r = pop(&batch))) {
		if (--w->pending == 0)
			uv_unref((uv_handle_t *)&w->async);
		r->after(r);
	}
}

int worker_init(struct worker *w, uv_loop_t *loop, unsigned linger_ms)
{
	pthread_condattr_t ca;
	int rc;

	memset(w, 0, sizeof(*w));
	w->loop = loop;
	w->linger_ms = linger_ms;
	list_init(&w->todo);
	list_init(&w->done);
	rc = pthread_mutex_init(&w->mu, NULL);
	if (rc)
		return -rc;
	if ((rc = pthread_condattr_init(&ca)) == 0) {
		rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		if (!rc)
			rc = pthread_cond_init(&w->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (rc) {
		pthread_mutex_destroy(&w->mu);
		return -rc;
	}
	rc = uv_async_init(loop, &w->async, on_done);
	if (rc) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		return rc;
	}
	w->async.data = w;
	uv_unref((uv_handle_t *)&w->async);
	w->ready = true;
	return 0;
}

/* Loop thread, w->mu not held.  The thread blocks every signal: they are
 * the loop's to take. */
static int start_thread(struct worker *w)
{
	sigset_t all, old;
	int rc;

	if (w->joinable) {
		/* It has decided to end (alive is false): the join is
		 * immediate, or nearly. */
		pthread_join(w->thr, NULL);
		w->joinable = false;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&w->thr, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0) {
		w->joinable = true;
		w->started++;
	}
	return rc;
}

void worker_queue(struct worker *w, struct worker_req *r)
{
	bool need_thread;
	int rc;

	if (w->pending++ == 0)
		uv_ref((uv_handle_t *)&w->async);
	pthread_mutex_lock(&w->mu);
	list_push_back(&w->todo, &r->node);
	need_thread = !w->alive;
	if (need_thread)
		w->alive = true;
	else
		pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (!need_thread)
		return;
	rc = start_thread(w);
	if (rc == 0)
		return;
	/* No thread: run it here, slowly but surely; after still comes
	 * from the loop. */
	log_warnx("worker: cannot start a thread: %s; working on the loop",
		  strerror(rc));
	pthread_mutex_lock(&w->mu);
	w->alive = false;
	while ((r = pop(&w->todo))) {
		pthread_mutex_unlock(&w->mu);
		r->work(r);
		pthread_mutex_lock(&w->mu);
		list_push_back(&w->done, &r->node);
	}
	pthread_mutex_unlock(&w->mu);
	uv_async_send(&w->async);
}

bool worker_thread_alive(struct worker *w)
{
	bool alive;

	pthread_mutex_lock(&w->mu);
	alive = w->alive;
	pthread_mutex_unlock(&w->mu);
	return alive;
}

void worker_stop(struct worker *w)
{
	if (!w->ready)
		return;
	pthread_mutex_lock(&w->mu);
	w->quit = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (w->joinable) {
		pthread_join(w->thr, NULL);
		w->joinable = false;
	}
	if (!uv_is_closing((uv_handle_t *)&w->async))
		uv_close((uv_handle_t *)&w->async, NULL);
	w->ready = false;
}
