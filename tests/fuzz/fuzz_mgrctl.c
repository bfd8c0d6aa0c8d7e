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
 * written.  The client reads every answer and ends by shutting down its
 * side; the run ends when the manager closes the connection (or after a
 * bound).
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

/* One turn: waits (5 ms at most: a supervisor's 10 s kill timer must not
 * hold an input) for the client's bytes, the manager's loop or a reply,
 * runs the loop, then the client reads what came.  false once the
 * manager closed the connection. */
static bool turn(struct fixture *f, int fd)
{
	struct pollfd p[2] = {
		{ .fd = fd, .events = POLLIN },
		{ .fd = uv_backend_fd(&f->loop), .events = POLLIN },
	};
	int t = uv_backend_timeout(&f->loop);
	char sink[4096];
	ssize_t n;

	poll(p, 2, t < 0 || t > 5 ? 5 : t);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	for (;;) {
		n = read(fd, sink, sizeof(sink));
		if (n > 0)
			continue;
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			return false;
		return true;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool logs_off;
	struct vtpm_entry *e;
	struct fixture *f;
	size_t chunk, off = 0;
	double deadline;
	int fd;

	if (!logs_off) {
		log_init("fuzz_mgrctl", LOG_LVL_ERR);
		/* As the manager does: a client gone is EPIPE, not a signal
		 * (both ends live in this process). */
		signal(SIGPIPE, SIG_IGN);
		logs_off = true;
	}
	if (size < 1)
		return 0;
	chunk = (size_t)data[0] + 1;
	data++;
	size--;

	f = fixture_new(60);
	f->m.pcrs = &fuzz_pcrs;
	f->cfg.idle_timeout_ms = 200;
	if (control_start(&f->m))
		abort();
	fd = client_connect(f->cfg.control);
	deadline = now_ms() + 500;
	while (off < size && now_ms() < deadline) {
		size_t n = size - off < chunk ? size - off : chunk;
		ssize_t w = write(fd, data + off, n);

		if (w > 0)
			off += (size_t)w;
		else if (w < 0 && errno != EAGAIN && errno != EINTR)
			break; /* the manager closed it (a line too long) */
		if (!turn(f, fd))
			break;
	}
	shutdown(fd, SHUT_WR);
	while (now_ms() < deadline && turn(f, fd))
		;
	close(fd);
	control_stop(&f->m);
	/* A request still served (a commit) is answered, then its
	 * connection closes: all before the fixture goes. */
	deadline = now_ms() + 5000;
	while (!control_idle(&f->m) && now_ms() < deadline) {
		struct pollfd p = { .fd = uv_backend_fd(&f->loop),
				    .events = POLLIN };

		poll(&p, 1, 5);
		uv_run(&f->loop, UV_RUN_NOWAIT);
	}
	/* What the fixture leaves to the real manager's exit: the links of
	 * instances a "start" spawned (/bin/false). */
	mgr_foreach_entry(e, &f->m)
		mgr_link_close(e);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	free(f->m.control);
	fixture_free(f);
	return 0;
}
