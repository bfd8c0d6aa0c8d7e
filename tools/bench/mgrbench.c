// SPDX-License-Identifier: BSD-3-Clause
/*
 * mgrbench: the timing client of tools/bench/run-manager-bench.sh, for what
 * tpmbench cannot time: a vTPM that the manager starts (not a child of
 * ours), the manager's own start, many vTPMs started at once, and the cost
 * of one atomic file replace on the state file system.
 *
 * Only libc. It speaks the manager's control protocol (one JSON object per
 * line each way, as vtpmctl does: {"cmd":"start","uuid":"..."} is answered
 * {"ok":true,...}) and one TPM 2.0 command, TPM2_GetRandom (Part 3), built
 * by hand as in tpmbench.c.
 *
 * Modes (options go before the mode; the result is one line of key=value
 * pairs on stdout; exit 1 on any error, including a non-zero TPM response
 * code or {"ok":false}):
 *   -s SOCK start-wait -- CMD ARGS...
 *       fork+exec CMD (e.g. "vtpmctl start U"; it must exit 0) and time
 *       until the vTPM on SOCK answers a GetRandom; CMD is waited for, not
 *       killed
 *   -c CTL mgr-start -- CMD ARGS...
 *       fork+exec CMD (the manager), time until the control socket CTL
 *       accepts and until it answers {"cmd":"status"}; then SIGTERM it and
 *       time its exit (which must be 0)
 *   -c CTL -r RUNDIR start-all UUID...
 *       send {"cmd":"start"} for every UUID at once, each on its own control
 *       connection, and time until every RUNDIR/UUID/tpm answers GetRandom
 *   exec -- CMD ARGS...
 *       fork+exec+exit of CMD (which must exit 0), e.g. the cost of one
 *       "vtpmctl status" as an admin's script pays it
 *   -d DIR atomic
 *       write+fdatasync+close+rename+fsync(dir) of a --size file, as the
 *       service's store_write_atomic() does; median and p90
 *
 * Build: cc -std=c11 -O2 -Wall -Wextra -Werror -o mgrbench mgrbench.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* TPM 2.0 Part 2 */
#define TPM_ST_NO_SESSIONS 0x8001
#define TPM_ST_SESSIONS 0x8002
#define TPM_CC_GetRandom 0x0000017B
#define TPM_HEADER_SIZE 10
#define TPM_MAX_FRAME 4096
#define RANDOM_BYTES 32

#define MAX_VTPMS 1024
#define LINE_MAX_BYTES 65536

static const char *progname = "mgrbench";

static void fatalx(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void vlog(int err, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", progname);
	vfprintf(stderr, fmt, ap);
	if (err)
		fprintf(stderr, ": %s", strerror(err));
	fputc('\n', stderr);
}

static void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(0, fmt, ap);
	va_end(ap);
	exit(1);
}

static void fatal(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(err, fmt, ap);
	va_end(ap);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		fatal("clock_gettime");
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_us(unsigned us)
{
	struct timespec ts = { .tv_sec = us / 1000000u, .tv_nsec = (long)(us % 1000000u) * 1000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static double ms_between(uint64_t a, uint64_t b)
{
	return (double)(b - a) / 1e6;
}

static uint32_t get_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* TPM2_GetRandom(32): tag, size, command code, bytesRequested. */
static const uint8_t getrandom_cmd[12] = {
	TPM_ST_NO_SESSIONS >> 8, TPM_ST_NO_SESSIONS & 0xff, 0, 0, 0, 12,
	0, 0, TPM_CC_GetRandom >> 8, TPM_CC_GetRandom & 0xff, 0, RANDOM_BYTES,
};

/* ---- options ------------------------------------------------------------- */

struct opts {
	const char *socket;
	const char *control;
	const char *run_dir;
	const char *dir;
	int wait_ms;
	int poll_us;
	int child_cpu;
	int iterations;
	size_t size;
};

static struct opts o = {
	.wait_ms = 30000,
	.poll_us = 100,
	.child_cpu = -1,
	.iterations = 50,
	.size = 4096,
};

/* ---- sockets ------------------------------------------------------------- */

static void fill_sun(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		fatalx("%s: socket path too long", path);
	memcpy(sun->sun_path, path, strlen(path) + 1);
}

/* Returns a connected fd, or -errno. */
static int unix_connect(const char *path, int nonblock)
{
	struct sockaddr_un sun;
	int fd;

	fill_sun(&sun, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (fd < 0)
		fatal("socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	return fd;
}

static void write_all(int fd, const void *buf, size_t len, const char *what)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pf = { .fd = fd, .events = POLLOUT };

			(void)poll(&pf, 1, 1000);
			continue;
		}
		if (n < 0)
			fatal("%s: send", what);
		p += n;
		len -= (size_t)n;
	}
}

/*
 * A GetRandom answer accumulating in buf. Returns 1 when complete and
 * correct, 0 while incomplete; a non-zero response code or a malformed
 * frame is fatal.
 */
static int getrandom_rsp_done(const uint8_t *buf, size_t len, const char *where)
{
	uint32_t size, rc;

	if (len < TPM_HEADER_SIZE)
		return 0;
	size = get_u32(buf + 2);
	if (size < TPM_HEADER_SIZE || size > TPM_MAX_FRAME)
		fatalx("%s: bad response size %" PRIu32, where, size);
	if (len < size)
		return 0;
	if (len > size)
		fatalx("%s: %zu bytes after the response", where, len - size);
	rc = get_u32(buf + 6);
	if (rc != 0)
		fatalx("%s: TPM2_GetRandom: TPM response code 0x%03" PRIx32, where, rc);
	if (size != TPM_HEADER_SIZE + 2 + RANDOM_BYTES)
		fatalx("%s: TPM2_GetRandom: %" PRIu32 "-byte response", where, size);
	return 1;
}

/* One vTPM being waited for: connect, send GetRandom, read the answer. */
struct waiter {
	const char *sock;
	int fd;
	uint8_t buf[TPM_MAX_FRAME];
	size_t len;
	uint64_t done_ns;	/* 0 until answered */
	unsigned long attempts;
};

/* Tries to connect and send; the vTPM may not be listening yet. */
static void waiter_try(struct waiter *w)
{
	int fd;

	if (w->fd >= 0 || w->done_ns)
		return;
	w->attempts++;
	fd = unix_connect(w->sock, 1);
	if (fd < 0) {
		if (fd != -ENOENT && fd != -ECONNREFUSED && fd != -EAGAIN)
			fatalx("%s: connect: %s", w->sock, strerror(-fd));
		return;
	}
	w->fd = fd;
	w->len = 0;
	write_all(fd, getrandom_cmd, sizeof(getrandom_cmd), w->sock);
}

/* Reads what is there; a closed connection goes back to connecting. */
static void waiter_read(struct waiter *w)
{
	for (;;) {
		ssize_t n = recv(w->fd, w->buf + w->len, sizeof(w->buf) - w->len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			/* A listener that went away before answering (an instance
			 * that stopped or failed): try again until the deadline. */
			close(w->fd);
			w->fd = -1;
			return;
		}
		w->len += (size_t)n;
		if (getrandom_rsp_done(w->buf, w->len, w->sock)) {
			w->done_ns = now_ns();
			close(w->fd);
			w->fd = -1;
			return;
		}
	}
}

/*
 * Until every waiter has its answer (fatal at the deadline), with connect()
 * retried every poll_us; cb runs once per pass (the caller's own checks:
 * a child's exit, control answers).
 */
typedef int (*idle_cb)(void *arg);

static void wait_all(struct waiter *w, size_t n, uint64_t deadline, idle_cb cb, void *arg)
{
	struct pollfd *pf = calloc(n, sizeof(*pf));
	size_t left;

	if (!pf)
		fatal("calloc");
	for (;;) {
		size_t np = 0;

		left = 0;
		for (size_t i = 0; i < n; i++) {
			waiter_try(&w[i]);
			if (!w[i].done_ns)
				left++;
			if (w[i].fd >= 0) {
				pf[np].fd = w[i].fd;
				pf[np].events = POLLIN;
				pf[np].revents = 0;
				np++;
			}
		}
		if (cb)
			cb(arg);
		if (!left)
			break;
		if (now_ns() > deadline) {
			for (size_t i = 0; i < n; i++)
				if (!w[i].done_ns)
					fatalx("%s: no GetRandom answer within %d ms (%lu connect attempts)",
					       w[i].sock, o.wait_ms, w[i].attempts);
		}
		if (np) {
			struct timespec ts = { .tv_sec = o.poll_us / 1000000,
					       .tv_nsec = (long)(o.poll_us % 1000000) * 1000 };
			int r = ppoll(pf, np, &ts, NULL);

			if (r < 0 && errno != EINTR)
				fatal("poll");
			for (size_t i = 0; i < n; i++)
				if (w[i].fd >= 0)
					waiter_read(&w[i]);
		} else {
			sleep_us((unsigned)o.poll_us);
		}
	}
	free(pf);
}

/* ---- children ------------------------------------------------------------ */

static pid_t spawn(char **argv, int own_group)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		fatal("fork");
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		if (own_group && setpgid(0, 0) != 0)
			fatal("setpgid");
		/* If we die (the script is interrupted), so does what we started. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (o.child_cpu >= 0) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET((size_t)o.child_cpu, &set);
			if (sched_setaffinity(0, sizeof(set), &set) != 0)
				fatal("sched_setaffinity(CPU %d)", o.child_cpu);
		}
		/* Our stdout carries the results: the child's goes to stderr. */
		if (null < 0 || dup2(null, 0) < 0 || dup2(2, 1) < 0)
			fatal("child stdio");
		execvp(argv[0], argv);
		fatal("exec %s", argv[0]);
	}
	if (own_group)
		(void)setpgid(pid, pid);
	return pid;
}

static void check_exit(int status, const char *what)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;
	if (WIFEXITED(status))
		fatalx("%s exited with status %d", what, WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		fatalx("%s died of signal %d", what, WTERMSIG(status));
	fatalx("%s: wait status 0x%x", what, status);
}

struct cmd_watch {
	pid_t pid;
	const char *name;
	uint64_t exit_ns;
};

static int cmd_watch_cb(void *arg)
{
	struct cmd_watch *c = arg;
	int status;

	if (c->exit_ns)
		return 0;
	if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
		c->exit_ns = now_ns();
		check_exit(status, c->name);
	}
	return 0;
}

static void run_start_wait(char **argv)
{
	struct waiter w = { .sock = o.socket, .fd = -1 };
	struct cmd_watch c = { .name = argv[0] };
	uint64_t t0, deadline;
	int status;

	if (!o.socket)
		fatalx("start-wait: --socket is required");
	t0 = now_ns();
	c.pid = spawn(argv, 0);
	deadline = t0 + (uint64_t)o.wait_ms * 1000000u;
	wait_all(&w, 1, deadline, cmd_watch_cb, &c);
	if (!c.exit_ns) {
		/* The command itself must finish too (vtpmctl answers after the
		 * manager's commit). */
		if (waitpid(c.pid, &status, 0) != c.pid)
			fatal("waitpid");
		c.exit_ns = now_ns();
		check_exit(status, argv[0]);
	}
	printf("mode=start-wait first_response_ms=%.3f cmd_exit_ms=%.3f connect_attempts=%lu\n",
	       ms_between(t0, w.done_ns), ms_between(t0, c.exit_ns), w.attempts);
}

static void run_exec(char **argv)
{
	uint64_t t0 = now_ns(), t1;
	pid_t pid = spawn(argv, 0);
	int status;

	while (waitpid(pid, &status, 0) != pid)
		if (errno != EINTR)
			fatal("waitpid");
	t1 = now_ns();
	check_exit(status, argv[0]);
	printf("mode=exec ms=%.3f\n", ms_between(t0, t1));
}

/* ---- control protocol ---------------------------------------------------- */

/* {"ok":true,...} (PLAIN json-c output, tolerant of spaces). */
static int reply_ok(const char *line)
{
	const char *p = strstr(line, "\"ok\"");

	if (!p)
		return 0;
	p += 4;
	while (*p == ' ' || *p == '\t' || *p == ':')
		p++;
	return strncmp(p, "true", 4) == 0;
}

struct ctl_conn {
	int fd;
	char buf[LINE_MAX_BYTES];
	size_t len;
	uint64_t done_ns;
};

/* Reads; returns 1 once a whole line is there (checked for "ok":true). */
static int ctl_read(struct ctl_conn *c, const char *what)
{
	for (;;) {
		ssize_t n;
		char *nl;

		if (c->len + 1 >= sizeof(c->buf))
			fatalx("%s: control reply too long", what);
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0)
			fatal("%s: control socket", what);
		if (n == 0)
			fatalx("%s: the manager closed the control connection", what);
		c->len += (size_t)n;
		c->buf[c->len] = '\0';
		nl = strchr(c->buf, '\n');
		if (nl) {
			*nl = '\0';
			if (!reply_ok(c->buf))
				fatalx("%s: the manager answered %s", what, c->buf);
			return 1;
		}
	}
}

static void ctl_send(struct ctl_conn *c, const char *line, const char *what)
{
	write_all(c->fd, line, strlen(line), what);
}

static void run_mgr_start(char **argv)
{
	struct ctl_conn c = { .fd = -1 };
	uint64_t t0, t_acc, t_rdy, t_term, t_exit, deadline;
	unsigned long attempts = 0;
	struct stat st;
	const char *vt;
	int status, vtpms = -1;
	pid_t pid;

	if (!o.control)
		fatalx("mgr-start: --control is required");
	/* A stale socket must not be mistaken for the new manager's. */
	if (lstat(o.control, &st) == 0 && S_ISSOCK(st.st_mode) && unlink(o.control) != 0)
		fatal("unlink %s", o.control);
	t0 = now_ns();
	pid = spawn(argv, 1);
	deadline = t0 + (uint64_t)o.wait_ms * 1000000u;
	for (;;) {
		attempts++;
		c.fd = unix_connect(o.control, 0);
		if (c.fd >= 0)
			break;
		if (waitpid(pid, &status, WNOHANG) == pid)
			fatalx("the manager exited (status 0x%x) before accepting on %s", status,
			       o.control);
		if (now_ns() > deadline) {
			kill(-pid, SIGKILL);
			fatalx("%s: not accepting after %d ms", o.control, o.wait_ms);
		}
		sleep_us((unsigned)o.poll_us);
	}
	t_acc = now_ns();
	ctl_send(&c, "{\"cmd\":\"status\"}\n", "status");
	for (;;) {
		struct pollfd pf = { .fd = c.fd, .events = POLLIN };

		if (poll(&pf, 1, o.wait_ms) <= 0)
			fatalx("status: no answer within %d ms", o.wait_ms);
		if (ctl_read(&c, "status"))
			break;
	}
	t_rdy = now_ns();
	close(c.fd);
	vt = strstr(c.buf, "\"vtpms\":");
	if (vt)
		vtpms = atoi(vt + 8);

	/* Stop it as an admin would: SIGTERM, then it commits and exits 0. */
	t_term = now_ns();
	if (kill(pid, SIGTERM) != 0)
		fatal("kill %d", (int)pid);
	deadline = t_term + 30000000000u;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			fatal("waitpid");
		if (now_ns() > deadline) {
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			fatalx("the manager ignored SIGTERM for 30 s");
		}
		sleep_us(200);
	}
	t_exit = now_ns();
	kill(-pid, SIGKILL); /* whatever of its group outlived it */
	check_exit(status, "the manager");
	printf("mode=mgr-start accept_ms=%.3f ready_ms=%.3f stop_ms=%.3f connect_attempts=%lu "
	       "vtpms=%d\n",
	       ms_between(t0, t_acc), ms_between(t0, t_rdy), ms_between(t_term, t_exit), attempts,
	       vtpms);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct start_all {
	struct ctl_conn *c;
	size_t n;
	uint64_t last_ns;
};

static int start_all_cb(void *arg)
{
	struct start_all *s = arg;
	struct pollfd pf;

	for (size_t i = 0; i < s->n; i++) {
		if (s->c[i].done_ns)
			continue;
		pf.fd = s->c[i].fd;
		pf.events = POLLIN;
		if (poll(&pf, 1, 0) > 0 && ctl_read(&s->c[i], "start")) {
			s->c[i].done_ns = now_ns();
			close(s->c[i].fd);
			if (s->c[i].done_ns > s->last_ns)
				s->last_ns = s->c[i].done_ns;
		}
	}
	return 0;
}

static void run_start_all(char **uuids, size_t n)
{
	struct waiter *w = calloc(n, sizeof(*w));
	struct start_all s = { .c = calloc(n, sizeof(*s.c)), .n = n };
	double *ms = calloc(n, sizeof(*ms));
	uint64_t t0, t_sent, last = 0, deadline;
	char line[256];

	if (!o.control || !o.run_dir)
		fatalx("start-all: --control and --run-dir are required");
	if (!w || !s.c || !ms)
		fatal("calloc");
	for (size_t i = 0; i < n; i++) {
		char *p;

		if (strlen(uuids[i]) != 36)
			fatalx("not a UUID: %s", uuids[i]);
		if (asprintf(&p, "%s/%s/tpm", o.run_dir, uuids[i]) < 0)
			fatal("asprintf");
		w[i].sock = p;
		w[i].fd = -1;
	}
	t0 = now_ns();
	for (size_t i = 0; i < n; i++) {
		/* Blocking connect: the manager's backlog is 16; it accepts. */
		s.c[i].fd = unix_connect(o.control, 0);
		if (s.c[i].fd < 0)
			fatalx("%s: connect: %s", o.control, strerror(-s.c[i].fd));
		snprintf(line, sizeof(line), "{\"cmd\":\"start\",\"uuid\":\"%s\"}\n", uuids[i]);
		ctl_send(&s.c[i], line, "start");
		if (fcntl(s.c[i].fd, F_SETFL, O_NONBLOCK) < 0)
			fatal("fcntl");
	}
	t_sent = now_ns();
	deadline = t0 + (uint64_t)o.wait_ms * 1000000u;
	wait_all(w, n, deadline, start_all_cb, &s);
	/* And every control answer (it comes after the manager's commit). */
	while (1) {
		size_t left = 0;

		start_all_cb(&s);
		for (size_t i = 0; i < n; i++)
			left += !s.c[i].done_ns;
		if (!left)
			break;
		if (now_ns() > deadline)
			fatalx("start: not every control request answered within %d ms", o.wait_ms);
		sleep_us((unsigned)o.poll_us);
	}
	for (size_t i = 0; i < n; i++) {
		ms[i] = ms_between(t0, w[i].done_ns);
		if (w[i].done_ns > last)
			last = w[i].done_ns;
	}
	qsort(ms, n, sizeof(*ms), cmp_double);
	printf("mode=start-all n=%zu all_ms=%.3f per_sec=%.1f first_ms=%.3f p50_ms=%.3f "
	       "sent_ms=%.3f ctl_all_ms=%.3f\n",
	       n, ms_between(t0, last), (double)n / ((double)(last - t0) / 1e9), ms[0],
	       ms[(n - 1) / 2], ms_between(t0, t_sent), ms_between(t0, s.last_ns));
	for (size_t i = 0; i < n; i++)
		free((char *)w[i].sock);
	free(w);
	free(s.c);
	free(ms);
}

/* ---- atomic replace ------------------------------------------------------- */

static void run_atomic(void)
{
	double *t = calloc((size_t)o.iterations, sizeof(*t)), *f = calloc((size_t)o.iterations, sizeof(*f));
	uint8_t *buf = malloc(o.size);
	int dfd;

	if (!o.dir)
		fatalx("atomic: --dir is required");
	if (!t || !f || !buf)
		fatal("calloc");
	dfd = open(o.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		fatal("%s", o.dir);
	for (int i = 0; i < o.iterations; i++) {
		uint64_t t0, t1, t2;
		int fd;

		memset(buf, i & 0xff, o.size);
		t0 = now_ns();
		fd = openat(dfd, "mgrbench.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0)
			fatal("%s/mgrbench.tmp", o.dir);
		if (write(fd, buf, o.size) != (ssize_t)o.size)
			fatal("write");
		if (fdatasync(fd) != 0)
			fatal("fdatasync");
		t1 = now_ns();
		if (close(fd) != 0 || renameat(dfd, "mgrbench.tmp", dfd, "mgrbench.dat") != 0)
			fatal("rename");
		if (fsync(dfd) != 0)
			fatal("fsync dir");
		t2 = now_ns();
		t[i] = (double)(t2 - t0) / 1e3;
		f[i] = (double)(t1 - t0) / 1e3;
	}
	unlinkat(dfd, "mgrbench.dat", 0);
	/* What the key store's slot file does instead: one pwrite in place
	 * into a preallocated file (A/B alternating), then fdatasync. */
	{
		double *p = calloc((size_t)o.iterations, sizeof(*p));
		int fd = openat(dfd, "mgrbench.slots", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		if (!p)
			fatal("calloc");
		if (fd < 0)
			fatal("%s/mgrbench.slots", o.dir);
		memset(buf, 0, o.size);
		for (int k = 0; k < 2; k++)
			if (write(fd, buf, o.size) != (ssize_t)o.size)
				fatal("write");
		if (fsync(fd) != 0 || fsync(dfd) != 0)
			fatal("fsync");
		for (int i = 0; i < o.iterations; i++) {
			uint64_t t0;

			memset(buf, i & 0xff, o.size);
			t0 = now_ns();
			if (pwrite(fd, buf, o.size, (off_t)((size_t)(i & 1) * o.size)) !=
			    (ssize_t)o.size)
				fatal("pwrite");
			if (fdatasync(fd) != 0)
				fatal("fdatasync");
			p[i] = (double)(now_ns() - t0) / 1e3;
		}
		close(fd);
		unlinkat(dfd, "mgrbench.slots", 0);
		qsort(p, (size_t)o.iterations, sizeof(*p), cmp_double);
		qsort(t, (size_t)o.iterations, sizeof(*t), cmp_double);
		qsort(f, (size_t)o.iterations, sizeof(*f), cmp_double);
		printf("mode=atomic n=%d size=%zu replace_p50_us=%.1f replace_p90_us=%.1f "
		       "write_fdatasync_p50_us=%.1f inplace_p50_us=%.1f inplace_p90_us=%.1f\n",
		       o.iterations, o.size, t[(o.iterations - 1) / 2],
		       t[(o.iterations - 1) * 9 / 10], f[(o.iterations - 1) / 2],
		       p[(o.iterations - 1) / 2], p[(o.iterations - 1) * 9 / 10]);
		free(p);
	}
	close(dfd);
	free(t);
	free(f);
	free(buf);
}

/* ---- main ---------------------------------------------------------------- */

static void usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: %s [options] MODE [ARGS]   (options before the mode)\n"
		"  -s SOCK start-wait -- CMD ARGS...   exec CMD, time until SOCK answers GetRandom\n"
		"  -c CTL mgr-start -- CMD ARGS...     exec the manager, time until status answers;\n"
		"                                      then SIGTERM it and time its exit\n"
		"  -c CTL -r RUNDIR start-all UUID...  start all at once, time until all answer\n"
		"  exec -- CMD ARGS...                 time fork+exec+exit of CMD\n"
		"  -d DIR atomic                       cost of one atomic file replace\n"
		"options:\n"
		"  -s, --socket PATH      vTPM data socket (start-wait)\n"
		"  -c, --control PATH     manager control socket\n"
		"  -r, --run-dir DIR      the manager's --run-dir (start-all)\n"
		"  -d, --dir DIR          directory for atomic\n"
		"  -n, --iterations N     atomic: replaces (default %d)\n"
		"      --size BYTES       atomic: file size (default %zu)\n"
		"      --wait MS          give up after MS (default %d)\n"
		"      --poll-us N        retry interval (default %d)\n"
		"      --child-cpu N      pin the started command to CPU N\n"
		"Output: one line of key=value pairs. Exit 1 on any error.\n",
		progname, o.iterations, o.size, o.wait_ms, o.poll_us);
	exit(code);
}

static long parse_long(const char *s, const char *what, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || *s == '\0' || *end != '\0' || v < min || v > max)
		fatalx("bad %s: %s", what, s);
	return v;
}

int main(int argc, char **argv)
{
	enum { OPT_SIZE = 256, OPT_WAIT, OPT_POLL_US, OPT_CHILD_CPU };
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "control", required_argument, NULL, 'c' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "dir", required_argument, NULL, 'd' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "wait", required_argument, NULL, OPT_WAIT },
		{ "poll-us", required_argument, NULL, OPT_POLL_US },
		{ "child-cpu", required_argument, NULL, OPT_CHILD_CPU },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *mode;
	int ch;

	while ((ch = getopt_long(argc, argv, "+s:c:r:d:n:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 's': o.socket = optarg; break;
		case 'c': o.control = optarg; break;
		case 'r': o.run_dir = optarg; break;
		case 'd': o.dir = optarg; break;
		case 'n': o.iterations = (int)parse_long(optarg, "iterations", 1, 1000000); break;
		case OPT_SIZE: o.size = (size_t)parse_long(optarg, "size", 1, 1 << 24); break;
		case OPT_WAIT: o.wait_ms = (int)parse_long(optarg, "wait", 1, 3600000); break;
		case OPT_POLL_US: o.poll_us = (int)parse_long(optarg, "poll interval", 1, 1000000); break;
		case OPT_CHILD_CPU: o.child_cpu = (int)parse_long(optarg, "CPU", 0, 4095); break;
		case 'h': usage(0); break;
		default: usage(2);
		}
	}
	if (optind >= argc)
		usage(2);
	mode = argv[optind++];
	signal(SIGPIPE, SIG_IGN);

	if (strcmp(mode, "start-wait") == 0 || strcmp(mode, "mgr-start") == 0 ||
	    strcmp(mode, "exec") == 0) {
		if (optind < argc && strcmp(argv[optind], "--") == 0)
			optind++;
		if (optind >= argc)
			fatalx("%s: no command given after --", mode);
		if (mode[0] == 's')
			run_start_wait(argv + optind);
		else if (mode[0] == 'm')
			run_mgr_start(argv + optind);
		else
			run_exec(argv + optind);
	} else if (strcmp(mode, "start-all") == 0) {
		if (optind >= argc)
			fatalx("start-all: no UUIDs given");
		if ((size_t)(argc - optind) > MAX_VTPMS)
			fatalx("start-all: at most %d UUIDs", MAX_VTPMS);
		run_start_all(argv + optind, (size_t)(argc - optind));
	} else if (strcmp(mode, "atomic") == 0) {
		if (optind < argc)
			fatalx("unexpected argument: %s", argv[optind]);
		run_atomic();
	} else {
		fatalx("unknown mode: %s", mode);
	}
	return 0;
}
