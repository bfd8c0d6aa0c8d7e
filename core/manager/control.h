/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket that vtpmctl speaks: one JSON object per line each
 * way (control.c, the framing), and a table of commands (commands.c) whose
 * handlers parse the arguments and ask the module that owns the state.
 * Request {"cmd": "...", ...}; reply {"ok": true, ...} or
 * {"ok": false, "error": "...", "code": N}.
 */
#ifndef VTPM_MANAGER_CONTROL_H
#define VTPM_MANAGER_CONTROL_H

#include <json-c/json.h>
#include <stdbool.h>

struct manager;

/* Exit codes vtpmctl passes on; documented in vtpmctl(8). */
enum ctl_code {
	CTL_OK = 0,
	CTL_EINVAL = 2,    /* bad request */
	CTL_ENOENT = 3,    /* no such vTPM */
	CTL_EEXIST = 4,    /* already exists */
	CTL_EBUSY = 5,     /* wrong state for this (running, stopped) */
	CTL_EFAIL = 6,     /* the manager or the TPM failed */
};

/* One request being served: answered exactly once, by ctl_reply. */
struct ctl_call {
	struct manager *m;
	/* The framing's: sends o (and frees it), then frees the call. */
	void (*send)(struct ctl_call *c, json_object *o);
	void *conn;
};

struct ctl_command {
	const char *name;
	void (*run)(struct ctl_call *c, json_object *req);
	bool while_stopping;      /* served while the manager stops */
};

extern const struct ctl_command ctl_commands[]; /* ends with name NULL */

/* Parses one request line and runs its command. */
void ctl_dispatch(struct ctl_call *c, const char *line);

void ctl_reply(struct ctl_call *c, json_object *o);
void ctl_reply_error(struct ctl_call *c, enum ctl_code code, const char *fmt,
		     ...) __attribute__((format(printf, 3, 4)));
json_object *ctl_ok(void);
/* A request's string member, or NULL (absent, or not a string). */
const char *ctl_str_arg(json_object *req, const char *key);
/* The vTPM the request's "uuid" names, or NULL with the error answered. */
struct vtpm_entry *ctl_entry_arg(struct ctl_call *c, json_object *req);

int control_start(struct manager *m);
/* Stops listening and closes the idle connections; one serving a request
 * ends once its answer is sent. */
void control_stop(struct manager *m);
/* No control connection is left (after control_stop: all answered). */
bool control_idle(const struct manager *m);

#endif
