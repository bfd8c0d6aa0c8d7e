/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager's control socket (control.h): the framing, one JSON object
 * per line each way, one request at a time per connection; the commands
 * are a table (commands.c).  Mode 0600, or 0660 with a configured group.
 *
 * Limits, so that no client (root's vtpmctl or a member of the socket's
 * group) holds the manager's memory or its loop: a request line of at
 * most LINE_MAX_BYTES (longer: an error answer, then the connection is
 * closed), at most --max-connections clients at once (more: an error
 * answer and closed), a client idle for --idle-timeout-ms (or trickling
 * one line for that long) is closed, and a client that does not read its
 * answers is closed once PENDING_MAX_BYTES of them wait to be sent.
 */
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/list.h"
#include "lib/log.h"
#include "manager/control.h"
#include "manager/manager.h"

/* An import carries an export blob in hex: a TPM 2.0 vTPM whose NV is
 * full makes a blob of about 140 KB (docs/migration.md). */
#define LINE_MAX_BYTES 524288 /* 512 KiB; take_line's message says - 1 */
#define BUF_INIT_BYTES 4096
#define PENDING_MAX_BYTES (1024 * 1024)
#define REFUSAL_LOG_PERIOD_MS 10000

struct ctl_conn {
	uv_pipe_t pipe;
	uv_timer_t timer;    /* idle, or a line that does not complete */
	struct manager *m;
	struct list_node node; /* in control.conns */
	char *buf;           /* grows to LINE_MAX_BYTES, shrinks after */
	size_t len, cap;
	bool busy, closing;
	bool ending;         /* answered for the last time; closing after */
	bool pumping, repump; /* conn_pump is running; run it once more */
	int refs;
};

struct control {
	uv_pipe_t server;
	bool open;
	struct list_node conns;  /* of ctl_conn.node */
	unsigned int nconns;
	uint64_t refused_logged_at;
	unsigned int refused;
	struct log_ratelimit rl;
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
static void conn_end(struct ctl_conn *c);

static void conn_unref(struct ctl_conn *c)
{
	struct control *ctl;

	if (--c->refs > 0)
		return;
	ctl = c->m->control;
	list_remove(&c->node);
	ctl->nconns--;
	free(c->buf);
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
	/* Each handle once, whoever else closed one (a loop walk at exit). */
	if (!uv_is_closing((uv_handle_t *)&c->pipe))
		uv_close((uv_handle_t *)&c->pipe, conn_closed);
	if (!uv_is_closing((uv_handle_t *)&c->timer))
		uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void conn_timeout(uv_timer_t *t)
{
	struct ctl_conn *c = t->data;
	struct control *ctl = c->m->control;

	log_warnx_rl(&ctl->rl,
		     "control client: %s for %ld ms; closing it",
		     c->len ? "no complete request line" : "idle",
		     c->m->cfg->idle_timeout_ms);
	conn_close(c);
}

/* The clock runs from the last answer (or the connection): more bytes of
 * a line do not restart it, so a line trickled a byte at a time is cut
 * like an idle client.  A request being served stops it. */
static void conn_timer_restart(struct ctl_conn *c)
{
	long ms = c->m->cfg->idle_timeout_ms;

	if (c->closing)
		return;
	if (ms > 0)
		uv_timer_start(&c->timer, conn_timeout, (uint64_t)ms, 0);
}

static void after_write(uv_write_t *w, int status)
{
	struct ctl_conn *c = w->data;

	(void)status;
	free(((char **)(w + 1))[0]);
	free(w);
	conn_unref(c);
}

/* Queues bytes to the client (copied).  0, or -1 with the connection
 * closed. */
static int conn_write(struct ctl_conn *c, const char *s, size_t n)
{
	uv_write_t *w;
	char *copy;
	uv_buf_t b;

	if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) + n >
	    PENDING_MAX_BYTES) {
		log_warnx_rl(&((struct control *)c->m->control)->rl,
			     "control client: more than %d bytes of answers "
			     "it does not read; closing it",
			     PENDING_MAX_BYTES);
		conn_close(c);
		return -1;
	}
	w = malloc(sizeof(*w) + sizeof(char *));
	copy = malloc(n ? n : 1);
	if (!w || !copy) {
		free(w);
		free(copy);
		conn_close(c);
		return -1;
	}
	memcpy(copy, s, n);
	((char **)(w + 1))[0] = copy;
	w->data = c;
	b = uv_buf_init(copy, (unsigned int)n);
	c->refs++;
	if (uv_write(w, (uv_stream_t *)&c->pipe, &b, 1, after_write) < 0) {
		c->refs--;
		free(copy);
		free(w);
		conn_close(c);
		return -1;
	}
	return 0;
}

/* A call's answer: sent (if the client is still there), then the next
 * request is read. */
static void conn_send(struct ctl_call *call, json_object *o)
{
	struct ctl_conn *c = call->conn;
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	size_t n = strlen(s);
	char *line = malloc(n + 1);

	free(call);
	c->busy = false;
	if (!line || c->closing) {
		free(line);
		json_object_put(o);
		conn_unref(c);
		return;
	}
	memcpy(line, s, n);
	line[n] = '\n';
	json_object_put(o);
	if (conn_write(c, line, n + 1) == 0) {
		if (!((struct control *)c->m->control)->open) {
			conn_end(c); /* the socket was stopped meanwhile */
		} else {
			conn_timer_restart(c);
			conn_read_start(c);
		}
	}
	free(line);
	conn_unref(c);
}

static void after_shutdown(uv_shutdown_t *req, int status)
{
	struct ctl_conn *c = req->data;

	(void)status;
	free(req);
	conn_close(c);
	conn_unref(c);
}

/* An answer of the framing itself (no call); the connection ends once it
 * is sent. */
static void conn_send_error_and_close(struct ctl_conn *c, const char *msg)
{
	json_object *o = json_object_new_object();
	const char *s;
	int rc;

	c->ending = true;
	uv_read_stop((uv_stream_t *)&c->pipe);
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	json_object_object_add(o, "code", json_object_new_int(CTL_EINVAL));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	rc = conn_write(c, s, strlen(s));
	if (rc == 0)
		rc = conn_write(c, "\n", 1);
	json_object_put(o);
	if (rc == 0)
		conn_end(c);
}

/* Ends the connection once what is queued is sent. */
static void conn_end(struct ctl_conn *c)
{
	uv_shutdown_t *req;

	c->ending = true;
	uv_read_stop((uv_stream_t *)&c->pipe);
	req = malloc(sizeof(*req));
	if (!req) {
		conn_close(c);
		return;
	}
	req->data = c;
	c->refs++;
	if (uv_shutdown(req, (uv_stream_t *)&c->pipe, after_shutdown)) {
		free(req);
		c->refs--;
		conn_close(c);
	}
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
	uv_timer_stop(&c->timer);
	ctl_dispatch(call, line);
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct ctl_conn *c = h->data;

	(void)hint;
	if (c->len + 1 >= c->cap && c->cap < LINE_MAX_BYTES) {
		size_t ncap = c->cap * 2 > LINE_MAX_BYTES ? LINE_MAX_BYTES
							  : c->cap * 2;
		char *n = realloc(c->buf, ncap);

		if (n) {
			c->buf = n;
			c->cap = ncap;
		}
	}
	*buf = uv_buf_init(c->buf + c->len,
			   (unsigned int)(c->cap - 1 - c->len));
}

/* After a line: a buffer grown for a long one goes back to its first
 * size once what is left fits. */
static void conn_shrink(struct ctl_conn *c)
{
	char *n;

	if (c->cap <= BUF_INIT_BYTES || c->len >= BUF_INIT_BYTES)
		return;
	n = malloc(BUF_INIT_BYTES);
	if (!n)
		return;
	memcpy(n, c->buf, c->len);
	free(c->buf);
	c->buf = n;
	c->cap = BUF_INIT_BYTES;
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
		if (c->len >= LINE_MAX_BYTES - 1) {
			log_warnx_rl(&((struct control *)c->m->control)->rl,
				     "control client: request line longer "
				     "than %d bytes; closing it",
				     LINE_MAX_BYTES - 1);
			conn_send_error_and_close(
				c, "request line longer than 524287 bytes");
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
	conn_shrink(c);
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
		if (c->closing || c->busy || c->ending)
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

static void refused_closed(uv_handle_t *h)
{
	free(h);
}

/* Over --max-connections: the client hears why, then the connection
 * ends.  Refusals are logged at most once a period, with their count. */
static void refuse(struct manager *m, uv_stream_t *server)
{
	static const char msg[] =
		"{\"ok\":false,\"error\":\"too many control connections\","
		"\"code\":6}\n";
	struct control *ctl = m->control;
	uint64_t now = uv_now(m->loop);
	uv_pipe_t *p = malloc(sizeof(*p));
	uv_buf_t b = uv_buf_init((char *)msg, sizeof(msg) - 1);

	ctl->refused++;
	if (ctl->refused_logged_at == 0 ||
	    now - ctl->refused_logged_at >= REFUSAL_LOG_PERIOD_MS) {
		log_warnx("control socket: refused %u connection%s: %u open, "
			  "--max-connections %u",
			  ctl->refused, ctl->refused == 1 ? "" : "s",
			  ctl->nconns, config_max_connections(m->cfg, true));
		ctl->refused = 0;
		ctl->refused_logged_at = now ? now : 1;
	}
	if (!p || uv_pipe_init(m->loop, p, 0)) {
		free(p);
		return;
	}
	if (uv_accept(server, (uv_stream_t *)p) == 0)
		(void)uv_try_write((uv_stream_t *)p, &b, 1);
	uv_close((uv_handle_t *)p, refused_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct manager *m = server->data;
	struct control *ctl = m->control;
	struct ctl_conn *c;

	if (status < 0)
		return;
	if (ctl->nconns >= config_max_connections(m->cfg, true)) {
		refuse(m, server);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c)
		c->buf = malloc(BUF_INIT_BYTES);
	if (!c || !c->buf) {
		if (c)
			free(c);
		refuse(m, server);
		return;
	}
	c->cap = BUF_INIT_BYTES;
	c->m = m;
	c->refs = 2; /* the pipe and the timer */
	list_push_front(&ctl->conns, &c->node);
	ctl->nconns++;
	uv_pipe_init(m->loop, &c->pipe, 0);
	uv_timer_init(m->loop, &c->timer);
	c->pipe.data = c;
	c->timer.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe)) {
		conn_close(c);
		return;
	}
	conn_timer_restart(c);
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
	list_init(&ctl->conns);
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

bool control_idle(const struct manager *m)
{
	const struct control *ctl = m->control;

	return !ctl || ctl->nconns == 0;
}

void control_stop(struct manager *m)
{
	struct control *ctl = m->control;
	struct list_node *n, *next;

	if (!ctl)
		return;
	if (ctl->open) {
		uv_close((uv_handle_t *)&ctl->server, NULL);
		unlink(m->cfg->control);
		ctl->open = false;
	}
	/* Connections with a request in flight end once it is answered. */
	list_for_each_safe(n, next, &ctl->conns) {
		struct ctl_conn *c = list_item(n, struct ctl_conn, node);

		if (!c->busy)
			conn_close(c);
	}
}
