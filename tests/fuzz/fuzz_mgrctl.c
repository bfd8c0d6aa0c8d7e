/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager's control socket end to end: the input is what a client
 * writes to the real control socket (control.c: framing, line limit,
 * idle clock, pending-output cap) of a manager fixture (unit/mgr_fixture.h:
 * a fake physical TPM and clock, a real key store and task queue), and
 * every complete line goes through the real command table (commands.c):
 * create, list, show, delete, start, stop, status, quote, reseal.
 *
 * Run with VTPM_TEST_TMPDIR=/dev/shm (ctest does) for speed.
 *
 * Input: byte 0 is the write size (1 + byte 0, 1..256 bytes per write,
 * so lines arrive split and joined every way), the rest the bytes
 * written by one client, on one connection, as vtpmctl does.  The client
 * reads every answer and ends by shutting down its side; the input ends
 * when the manager has closed the connection and is idle (no connection,
 * nothing on its task queues, no commit queued or waiting).  The loop is
 * run while anything moves and otherwise waits only for what the manager
 * waits for (a task on a thread, a timer), never a fixed time; a session
 * that has not ended after SESSION_MS is given up (the client closes,
 * the manager serves what it holds) and the fixture is rebuilt.
 *
 * Persistent: one fixture (manager, loop, key store, TPM thread, control
 * listener) serves successive inputs, as the real manager serves
 * successive clients.  After each input the harness, as a client on a
 * connection of its own, stops (if need be) and deletes every vTPM the
 * input left, so every input finds the same empty manager: an input that
 * crashes reproduces alone, and what an input allocates and does not
 * free is a leak libFuzzer reports with that input.  What carries over is
 * only counters (the store's generation, the fake TPM's NV counter); the
 * fake clock moves on one counter interval per input, so an input's first
 * commit binds to the counter as on a new manager.  The fixture is torn
 * down and rebuilt every INPUTS_PER_FIXTURE inputs (what its teardown
 * does not free is found by the next input's leak check, which a new
 * fixture's allocations trigger), and at once when a vTPM cannot be
 * deleted (frozen by a migration, or more than 16 left), a session
 * hangs, or the manager is stopping.
 *
 * Leak reports need a malloc stack: with ASAN_OPTIONS malloc_context_size=0
 * LeakSanitizer reports nothing (tried with a planted leak).
 *
 * No process is started: this file defines fork(), which libuv's
 * uv_spawn calls, and it fails as the kernel does when no process may be
 * made (EAGAIN).  uv_spawn then takes its own real failure path, and
 * "start" (and create's manufacturing start) the supervisor's real
 * "cannot start" path.  A fork of this sanitized process was 27% of the
 * target's time (page tables of the whole ASan heap, copied and torn
 * down) and its /bin/false child exited at a time the input did not
 * choose: a run was not reproducible.  The supervisor with real
 * children is tested by unit_mgr_supervisor and the integration suites.
 */
#include "../unit/mgr_fixture.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "manager/control.h"
#include "manager/link.h"

static int fuzz_pcr_read(struct manager *m, struct vtpm_entry *e,
			 uint32_t mask, mgr_pcr_done done, void *arg, char *err,
			 size_t errlen)
{
	struct mgr_pcr_values v;

	(void)m;
	(void)e;
	(void)err;
	(void)errlen;
	memset(&v, 0, sizeof(v));
	v.mask = mask;
	for (unsigned int i = 0; i < 24; i++)
		if (mask & (1u << i))
			memset(v.v[v.n++], (int)i, 32);
	done(arg, 0, &v, "");
	return 0;
}

static const struct mgr_pcr_source fuzz_pcrs = { .read = fuzz_pcr_read };

pid_t fork(void)
{
	errno = EAGAIN;
	return -1;
}

static int client_connect(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		abort();
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		abort();
	return fd;
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* ---- the fixture, kept from one input to the next ---- */

#define INPUTS_PER_FIXTURE 500
#define SESSION_MS 1000     /* a session that has not ended: a hang */
#define DRAIN_MS 5000       /* after it, for requests still served */

static struct fixture *fx;
static unsigned int fx_inputs;

static struct fixture *fixture_up(void)
{
	struct fixture *f = fixture_new(60);

	f->m.pcrs = &fuzz_pcrs;
	f->cfg.idle_timeout_ms = 200;
	if (control_start(&f->m))
		abort();
	return f;
}

/* Nothing served, queued or waiting: what the next input may find. */
static bool manager_idle(struct fixture *f)
{
	return control_idle(&f->m) && mgr_taskq_idle(&f->m.tasks) &&
	       mgr_taskq_idle(&f->m.tpmq) && !f->m.commits.queued &&
	       list_empty(&f->m.commits.pending);
}

/* Waits (at most until deadline) for the client's fd, the manager's loop
 * or one of its timers, then runs the loop once without blocking. */
static void wait_turn(struct fixture *f, int fd, double deadline)
{
	struct pollfd p[2] = {
		{ .fd = uv_backend_fd(&f->loop), .events = POLLIN },
		{ .fd = fd, .events = POLLIN },
	};
	int t = uv_backend_timeout(&f->loop);
	double left = deadline - now_ms();

	if (left < 0)
		left = 0;
	if (t < 0 || t > left)
		t = (int)left + 1;
	poll(p, fd >= 0 ? 2 : 1, t);
	uv_run(&f->loop, UV_RUN_NOWAIT);
}

/*
 * One client session: writes data (chunk bytes a write), reads every
 * answer, shuts its side down once all is
 * written, and ends when the manager has closed the connection and is
 * idle.  The loop runs as long as something moves and waits only for
 * what the manager waits for (a task on a thread, a timer): no fixed
 * sleep.  false if it did not end by its deadline.
 */
static bool session(struct fixture *f, const uint8_t *data, size_t size,
		    size_t chunk)
{
	double deadline = now_ms() + SESSION_MS;
	size_t off = 0;
	bool wr = true, rd = true;
	char sink[4096];
	int fd = client_connect(f->cfg.control);

	for (;;) {
		bool moved = false;
		ssize_t n;

		if (wr && off < size) {
			n = write(fd, data + off,
				  size - off < chunk ? size - off : chunk);
			if (n > 0) {
				off += (size_t)n;
				moved = true;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				wr = false; /* closed (a line too long) */
			}
		}
		if (wr && off == size) {
			shutdown(fd, SHUT_WR);
			wr = false;
		}
		uv_run(&f->loop, UV_RUN_NOWAIT);
		while (rd) {
			n = read(fd, sink, sizeof(sink));
			if (n > 0) {
				moved = true;
			} else if (n == 0 ||
				   (errno != EAGAIN && errno != EINTR)) {
				rd = false;
				moved = true;
			} else {
				break;
			}
		}
		if (!rd && manager_idle(f))
			break;
		if (moved)
			continue;
		if (now_ms() >= deadline)
			break;
		wait_turn(f, rd ? fd : -1, deadline);
	}
	close(fd);
	if (rd || !manager_idle(f)) {
		/* As a client that gives up: the manager serves what it
		 * holds, then closes. */
		deadline = now_ms() + DRAIN_MS;
		while (!manager_idle(f) && now_ms() < deadline)
			wait_turn(f, -1, deadline);
		return false;
	}
	return true;
}

static void fixture_down(struct fixture *f)
{
	double deadline;
	struct vtpm_entry *e;

	control_stop(&f->m);
	/* A request still served (a commit) is answered, then its
	 * connection closes: all before the fixture goes. */
	deadline = now_ms() + DRAIN_MS;
	while (!control_idle(&f->m) && now_ms() < deadline)
		wait_turn(f, -1, deadline);
	/* What the fixture leaves to the real manager's exit: the links of
	 * instances a "start" spawned. */
	mgr_foreach_entry(e, &f->m)
		mgr_link_close(e);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	free(f->m.control);
	fixture_free(f);
}

static void fixture_exit(void)
{
	if (fx)
		fixture_down(fx);
	fx = NULL;
}

/*
 * Back to an empty manager, as a client would bring it: every vTPM an
 * input created is stopped (if it is not) and deleted through the
 * control socket.  false if one remains (busy, frozen by a migration):
 * then the fixture is rebuilt.
 */
static bool fixture_clean(struct fixture *f)
{
	char req[4096];
	struct vtpm_entry *e;
	size_t n = 0;
	int k = 0;

	mgr_foreach_entry(e, &f->m) {
		if (n + 160 > sizeof(req) || ++k > 16)
			return false;
		if (e->child.state != CHILD_STOPPED || e->child.timer_open)
			n += (size_t)snprintf(req + n, sizeof(req) - n,
					      "{\"cmd\":\"stop\",\"uuid\":\"%s\"}\n",
					      e->rec.uuid_str);
		n += (size_t)snprintf(req + n, sizeof(req) - n,
				      "{\"cmd\":\"delete\",\"uuid\":\"%s\"}\n",
				      e->rec.uuid_str);
	}
	if (n == 0)
		return true;
	if (!session(f, (const uint8_t *)req, n, n))
		return false;
	return list_empty(&f->m.entries);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool logs_off;
	size_t chunk;
	bool ok;

	if (!logs_off) {
		log_init("fuzz_mgrctl", LOG_LVL_ERR);
		/* As the manager does: a client gone is EPIPE, not a signal
		 * (both ends live in this process). */
		signal(SIGPIPE, SIG_IGN);
		atexit(fixture_exit);
		logs_off = true;
	}
	if (size < 1)
		return 0;
	chunk = (size_t)data[0] + 1;
	data++;
	size--;

	if (!fx) {
		fx = fixture_up();
		fx_inputs = 0;
	}
	/* The fake clock moves on by a counter interval: every input's
	 * first commit binds to the counter, as on a new manager. */
	fake_now += (uint64_t)fx->cfg.counter_interval_s * 1000;
	ok = session(fx, data, size, chunk);
	ok = ok && fixture_clean(fx) && !fx->m.stopping &&
	     ++fx_inputs < INPUTS_PER_FIXTURE;
	if (!ok) {
		fixture_down(fx);
		fx = NULL;
	}
	return 0;
}
