/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager's control socket (control.h): the framing, one JSON object
 * per line each way, one request at a time per connection; the commands
 * are a table (commands.c).  Mode 0600, or 0660 with a configured group.
 */
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "manager/control.h"
#include "manager/manager.h"

#define LINE_MAX_BYTES 65536

struct ctl_conn {
	uv_pipe_t pipe;
	struct manager *m;
	char buf[LINE_MAX_BYTES];
	size_t len;
	bool busy, closing;
	bool pumping, repump; /* conn_pump is running; run it once more */
	int refs;
};

struct control {
	uv_pipe_t server;
	bool open;
};

/* ---- replies and dispatch (no socket: tests drive these) ---- */

void ctl_reply(struct ctl_call *c, json_object *o)
{
	c->send(c, o);
}

void ctl_reply_error(struct ctl_call *c, enum ctl_code code, const char *fmt,
		     ...)
{
	json_object *o = json_object_new_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	json_object_object_add(o, "code", json_object_new_int(code));
	ctl_reply(c, o);
}

json_object *ctl_ok(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

void ctl_dispatch(struct ctl_call *c, const char *line)
{
	json_object *req = json_tokener_parse(line), *v;
	const struct ctl_command *cmd;
	const char *name;

	if (!req || !json_object_is_type(req, json_type_object) ||
	    !json_object_object_get_ex(req, "cmd", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		ctl_reply_error(c, CTL_EINVAL,
				"expected a JSON object with \"cmd\"");
		json_object_put(req);
		return;
	}
	name = json_object_get_string(v);
	for (cmd = ctl_commands; cmd->name; cmd++)
		if (strcmp(cmd->name, name) == 0)
			break;
	if (c->m->stopping && !(cmd->name && cmd->while_stopping))
		ctl_reply_error(c, CTL_EBUSY, "the manager is stopping");
	else if (!cmd->name)
		ctl_reply_error(c, CTL_EINVAL, "unknown command '%s'", name);
	else
		cmd->run(c, req);
	json_object_put(req);
}

/* ---- the socket ---- */

static void conn_read_start(struct ctl_conn *c);
static void conn_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void conn_unref(struct ctl_conn *c)
{
	if (--c->refs == 0)
		free(c);
}

static void conn_closed(uv_handle_t *h)
{
	conn_unref(h->data);
}

static void conn_close(struct ctl_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->pipe, conn_closed);
}

static void after_write(uv_write_t *w, int status)
{
	struct ctl_conn *c = w->data;

	(void)status;
	free(((char **)(w + 1))[0]);
	free(w);
	conn_unref(c);
}

/* A call's answer: sent (if the client is still there), then the next
 * request is read. */
static void conn_send(struct ctl_call *call, json_object *o)
{
	struct ctl_conn *c = call->conn;
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	size_t n = strlen(s);
	uv_write_t *w = malloc(sizeof(*w) + sizeof(char *));
	char *copy = malloc(n + 1);
	uv_buf_t b;

	free(call);
	c->busy = false;
	if (!w || !copy || c->closing) {
		free(w);
		free(copy);
		json_object_put(o);
		conn_unref(c);
		return;
	}
	memcpy(copy, s, n);
	copy[n] = '\n';
	json_object_put(o);
	((char **)(w + 1))[0] = copy;
	w->data = c;
	b = uv_buf_init(copy, (unsigned int)(n + 1));
	if (uv_write(w, (uv_stream_t *)&c->pipe, &b, 1, after_write) < 0) {
		free(copy);
		free(w);
		conn_close(c);
		conn_unref(c);
		return;
	}
	conn_read_start(c);
}

static void conn_dispatch(struct ctl_conn *c, const char *line)
{
	struct ctl_call *call = calloc(1, sizeof(*call));

	if (!call) {
		conn_close(c);
		return;
	}
	call->m = c->m;
	call->send = conn_send;
	call->conn = c;
	c->refs++;    /* the call's, until it is answered */
	c->busy = true;
	ctl_dispatch(call, line);
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct ctl_conn *c = h->data;

	(void)hint;
	*buf = uv_buf_init(c->buf + c->len,
			   (unsigned int)(sizeof(c->buf) - 1 - c->len));
}

/*
 * Takes one line out of the buffer and dispatches it.  The line is copied
 * to the heap (a request may be answered later, and a 64 KiB copy per
 * line does not belong on the stack).  false: no whole line yet (or the
 * connection was closed for one that is too long).
 */
static bool take_line(struct ctl_conn *c)
{
	char *nl = memchr(c->buf, '\n', c->len);
	char *line;
	size_t n;

	if (!nl) {
		if (c->len >= sizeof(c->buf) - 1) {
			log_warnx("control client: request line too long; closing");
			conn_close(c);
		}
		return false;
	}
	n = (size_t)(nl - c->buf) + 1;
	line = malloc(n);
	if (!line) {
		conn_close(c);
		return false;
	}
	memcpy(line, c->buf, n - 1);
	line[n - 1] = '\0';
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	uv_read_stop((uv_stream_t *)&c->pipe);
	conn_dispatch(c, line);
	free(line);
	return true;
}

/*
 * Serves the buffered lines one request at a time, iteratively: a request
 * answered at once calls back into here (conn_send -> conn_read_start),
 * which only asks the running loop for one more turn, so a client that
 * sends a thousand lines in one write costs one stack frame, not a
 * thousand.
 */
static void conn_pump(struct ctl_conn *c)
{
	if (c->pumping) {
		c->repump = true;
		return;
	}
	c->pumping = true;
	c->refs++;
	do {
		c->repump = false;
		if (c->closing || c->busy)
			break;
		if (!take_line(c)) {
			if (!c->closing)
				uv_read_start((uv_stream_t *)&c->pipe,
					      conn_alloc, conn_on_read);
			break;
		}
	} while (c->repump || (!c->busy && !c->closing));
	c->pumping = false;
	conn_unref(c);
}

static void conn_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct ctl_conn *c = s->data;

	(void)buf;
	if (n < 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)n;
	conn_pump(c);
}

static void conn_read_start(struct ctl_conn *c)
{
	conn_pump(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct manager *m = server->data;
	struct ctl_conn *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->m = m;
	c->refs = 1;
	uv_pipe_init(m->loop, &c->pipe, 0);
	c->pipe.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe)) {
		conn_close(c);
		return;
	}
	conn_read_start(c);
}

int control_start(struct manager *m)
{
	struct control *ctl = calloc(1, sizeof(*ctl));
	const struct config *cfg = m->cfg;
	mode_t old;
	int rc;

	if (!ctl)
		return -ENOMEM;
	unlink(cfg->control);
	uv_pipe_init(m->loop, &ctl->server, 0);
	ctl->server.data = m;
	m->control = ctl;
	old = umask(0177);
	rc = uv_pipe_bind(&ctl->server, cfg->control);
	umask(old);
	if (rc) {
		log_warnx("control socket %s: %s", cfg->control, uv_strerror(rc));
		return rc;
	}
	if (cfg->socket_group[0]) {
		struct group *g = getgrnam(cfg->socket_group);
		if (!g || chown(cfg->control, (uid_t)-1, g->gr_gid) < 0 ||
		    chmod(cfg->control, 0660) < 0) {
			log_warnx("control socket group %s: cannot apply",
				  cfg->socket_group);
			return -EINVAL;
		}
	}
	rc = uv_listen((uv_stream_t *)&ctl->server, 16, on_connection);
	if (rc)
		return rc;
	ctl->open = true;
	return 0;
}

void control_stop(struct manager *m)
{
	struct control *ctl = m->control;

	if (ctl && ctl->open) {
		uv_close((uv_handle_t *)&ctl->server, NULL);
		unlink(m->cfg->control);
		ctl->open = false;
	}
}
