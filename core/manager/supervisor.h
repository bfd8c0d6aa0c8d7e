/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Instance processes: one per running vTPM, started with a socketpair as
 * its manager link (fd 3); restarted with backoff when they die; stopped
 * with SIGTERM (SIGKILL after KILL_AFTER_MS).  It reports what happens by
 * the callbacks in struct sup_events and calls nothing else.
 */
#ifndef VTPM_MANAGER_SUPERVISOR_H
#define VTPM_MANAGER_SUPERVISOR_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/list.h"

struct manager;
struct vtpm_entry;

#define SUP_BACKOFF_MIN_MS 500
#define SUP_BACKOFF_MAX_MS 30000
#define SUP_STABLE_MS 60000     /* up this long: the next crash starts afresh */
#define SUP_KILL_AFTER_MS 10000 /* SIGTERM, then SIGKILL */

enum child_state {
	CHILD_STOPPED = 0,
	CHILD_RUNNING,
	CHILD_BACKOFF,  /* exited; restarts when the timer fires */
	CHILD_STOPPING, /* SIGTERM sent */
};

/* The instance process of one vTPM. */
struct sup_child {
	enum child_state state;
	uv_process_t proc;
	bool proc_open;
	uv_timer_t timer;
	bool timer_open;
	unsigned int restarts;
	unsigned int backoff_ms;
	uint64_t started_ms;
	int last_exit;
	struct list_node waiters; /* struct sup_waiter: called once stopped */
};

struct sup_events {
	/* Running; link_fd is the manager's end of its link (owned now). */
	void (*started)(struct vtpm_entry *e, int link_fd);
	/* The process exited (whatever comes next). */
	void (*exited)(struct vtpm_entry *e, int64_t status, int sig);
	/* Will restart in delay_ms. */
	void (*backoff)(struct vtpm_entry *e, unsigned int delay_ms);
	/* Stopped and reaped: it will not run again unless started. */
	void (*stopped)(struct vtpm_entry *e);
	/* A handle of e was closed (the manager may be able to exit now). */
	void (*released)(struct vtpm_entry *e);
};

/* The next restart delay after a crash, given the last one (0: none yet)
 * and how long the instance was up. */
unsigned int sup_backoff_next(unsigned int last_ms, uint64_t up_ms);

void sup_child_init(struct sup_child *c);
int sup_start(struct vtpm_entry *e);
void sup_stop(struct vtpm_entry *e);
/* sup_stop with another signal than SIGTERM (online migration: SIGUSR2,
 * the instance saves its volatile state). */
void sup_stop_sig(struct vtpm_entry *e, int sig);
/* cb(arg) once e's instance is stopped and reaped (now, if it is). */
void sup_wait_stopped(struct vtpm_entry *e, void (*cb)(void *arg), void *arg);
bool sup_has_waiters(const struct vtpm_entry *e);
/* Stopped and reaped (no handle but maybe the timer). */
bool sup_stopped(const struct vtpm_entry *e);
bool sup_all_stopped(struct manager *m);
const char *sup_state_name(enum child_state s);

#endif
