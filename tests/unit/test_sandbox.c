/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instance's seccomp lock, in forked children: what libuv, libtpms
 * and the state store do still works, a system call outside the
 * allowlist (or an mmap or mprotect asking for PROT_EXEC, or TIOCSTI)
 * kills the process with SIGSYS after naming the call, and the
 * process cannot gain privileges (no_new_privs; integ_hostile checks
 * that it is not dumpable).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <uv.h>

#include "instance/sandbox.h"

/* Runs fn in a child, locked with the managed (or, no_sockets, the
 * standalone) allowlist, stderr into a pipe: its wait status, and what
 * it wrote. */
static int in_child_as(void (*fn)(void), bool no_sockets, char *out,
		       size_t outlen)
{
	int p[2], status;
	ssize_t n, got = 0;
	pid_t pid;

	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 2);
		close(p[0]);
		if (sandbox_lock(no_sockets))
			_exit(90);
		fn();
		_exit(0);
	}
	close(p[1]);
	while (got < (ssize_t)outlen - 1 &&
	       (n = read(p[0], out + got, outlen - 1 - (size_t)got)) > 0)
		got += n;
	out[got] = '\0';
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static int in_child(void (*fn)(void), char *out, size_t outlen)
{
	return in_child_as(fn, false, out, outlen);
}

static void *thread_fn(void *arg)
{
	return arg;
}

static void work_cb(uv_work_t *w)
{
	(void)w;
}

static void after_cb(uv_work_t *w, int status)
{
	(void)w;
	(void)status;
}

static char dir[] = "/tmp/vtpm-sbtest-XXXXXX";
static bool standalone; /* what_an_instance_does: no socketpair */

/* One line of /proc/self/status ("NoNewPrivs:\t1"): 1 if it is there. */
static int status_has(const char *line)
{
	char buf[4096];
	ssize_t n, got = 0;
	int fd = open("/proc/self/status", O_RDONLY);

	if (fd < 0)
		return 0;
	while (got < (ssize_t)sizeof(buf) - 1 &&
	       (n = read(fd, buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	buf[got] = '\0';
	return strstr(buf, line) != NULL;
}

/* A loop with a worker thread, a pipe, a state-like file, a thread (the
 * directory is made before the lock: the instance makes none after). */
static void what_an_instance_does(void)
{
	uv_work_t w;
	pthread_t t;
	int fds[2], dfd, fd;
	void *m;

	uv_queue_work(uv_default_loop(), &w, work_cb, after_cb);
	if (uv_run(uv_default_loop(), UV_RUN_DEFAULT) != 0)
		_exit(92);
	if (pthread_create(&t, NULL, thread_fn, NULL) || pthread_join(t, NULL))
		_exit(93);
	if (pipe2(fds, O_CLOEXEC) ||
	    (!standalone && socketpair(AF_UNIX, SOCK_STREAM, 0, fds)))
		_exit(94);
	/* ioctl: what libuv asks (FIONBIO), and requests on either side of
	 * the two refused ones (the kernel answers, whatever it says). */
	if (ioctl(fds[0], FIONBIO, &(int){ 1 }) ||
	    (ioctl(fds[0], TIOCSTI - 1, NULL) < 0 && errno == 0) ||
	    (ioctl(fds[0], TIOCLINUX + 1, NULL) < 0 && errno == 0) ||
	    (ioctl(fds[0], 0xffffffffu, NULL) < 0 && errno == 0))
		_exit(98);
	/* Memory that is never executable: mapped, protected, unprotected. */
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || mprotect(m, 4096, PROT_READ) ||
	    mprotect(m, 4096, PROT_NONE) || munmap(m, 4096))
		_exit(96);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	fd = openat(dfd, "x.tmp", O_RDWR | O_CREAT | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, "x", 1) != 1 || fdatasync(fd) ||
	    renameat(dfd, "x.tmp", dfd, "x") || fsync(dfd) ||
	    unlinkat(dfd, "x", 0))
		_exit(95);
	close(fd);
	close(dfd);
}

static void allowed_calls_work(void **state)
{
	char out[512];
	int st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	st = in_child(what_an_instance_does, out, sizeof(out));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("status 0x%x: %s", st, out);
	/* The standalone allowlist: the same, without the socket pair. */
	standalone = true;
	st = in_child_as(what_an_instance_does, true, out, sizeof(out));
	standalone = false;
	assert_int_equal(rmdir(dir), 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("standalone: status 0x%x: %s", st, out);
}

static void open_a_tcp_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	_exit(fd >= 0 ? 0 : 1);
}

static void start_a_process(void)
{
	if (fork() == 0)
		_exit(0);
	_exit(0);
}

static void call_ptrace(void)
{
	syscall(SYS_ptrace, 0, 0, 0, 0);
	_exit(0);
}

/* What an exploit does to run code it wrote: map it executable, or make
 * what it wrote executable. */
static void map_executable_memory(void)
{
	void *m = mmap(NULL, 4096, PROT_READ | PROT_EXEC,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	_exit(m != MAP_FAILED ? 0 : 1);
}

static void make_memory_executable(void)
{
	void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED)
		_exit(97);
	_exit(mprotect(m, 4096, PROT_READ | PROT_EXEC) == 0 ? 0 : 1);
}

/* Input pushed into a terminal (a pipe here: allowed, the kernel would
 * answer ENOTTY), plainly and with the upper 32 bits set, which the
 * kernel ignores. */
static void push_terminal_input(void)
{
	int p[2];
	char ch = 'x';

	if (pipe(p))
		_exit(97);
	_exit(ioctl(p[1], TIOCSTI, &ch) == 0 ? 0 : 1);
}

static void push_terminal_input_disguised(void)
{
	int p[2];
	char ch = 'x';

	if (pipe(p))
		_exit(97);
	_exit(syscall(SYS_ioctl, p[1], (unsigned long)TIOCSTI | 1ul << 32,
		      &ch) == 0 ? 0 : 1);
}

/* fn, locked with the managed or (no_sockets) the standalone program,
 * dies of SIGSYS and the log names system call nr. */
static void dies_of_sigsys_named(void (*fn)(void), bool no_sockets, int nr)
{
	char out[512], want[64];
	int st = in_child_as(fn, no_sockets, out, sizeof(out));

	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
	snprintf(want, sizeof(want), "system call %d is outside", nr);
	assert_non_null(strstr(out, want));
}

static void forbidden_calls_kill_with_sigsys_and_are_named(void **state)
{
	static const struct {
		void (*fn)(void);
		int nr;
	} cases[] = {
		{ open_a_tcp_socket, SYS_socket },
		{ start_a_process, SYS_clone },
		{ call_ptrace, SYS_ptrace },
		{ map_executable_memory, SYS_mmap },
		{ make_memory_executable, SYS_mprotect },
		{ push_terminal_input, SYS_ioctl },
		{ push_terminal_input_disguised, SYS_ioctl },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		dies_of_sigsys_named(cases[i].fn, false, cases[i].nr);
}

/* A standalone instance makes no socket of any kind: not the AF_UNIX one
 * a managed instance may redial its manager with, not a pair. */
static void open_a_unix_socket(void)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	_exit(fd >= 0 ? 0 : 1);
}

static void open_a_socket_pair(void)
{
	int fds[2];

	_exit(socketpair(AF_UNIX, SOCK_DGRAM, 0, fds) == 0 ? 0 : 1);
}

static void connect_a_socket(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	_exit(connect(0, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : 1);
}

static void standalone_makes_no_socket(void **state)
{
	static const struct {
		void (*fn)(void);
		int nr;
	} cases[] = {
		{ open_a_unix_socket, SYS_socket },
		{ open_a_tcp_socket, SYS_socket },
		{ open_a_socket_pair, SYS_socketpair },
		{ connect_a_socket, SYS_connect },
	};
	char out[512];
	int st;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		dies_of_sigsys_named(cases[i].fn, true, cases[i].nr);
	/* The managed allowlist keeps the AF_UNIX socket and the pair. */
	st = in_child_as(open_a_unix_socket, false, out, sizeof(out));
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	st = in_child_as(open_a_socket_pair, false, out, sizeof(out));
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void no_new_privs_is_set(void)
{
	if (!status_has("NoNewPrivs:\t1"))
		_exit(1);
	if (!status_has("Seccomp:\t2"))
		_exit(2);
}

static void privileges_cannot_be_gained(void **state)
{
	char out[256];
	int st;

	(void)state;
	st = in_child(no_new_privs_is_set, out, sizeof(out));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("status 0x%x: %s", st, out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(allowed_calls_work),
		cmocka_unit_test(forbidden_calls_kill_with_sigsys_and_are_named),
		cmocka_unit_test(privileges_cannot_be_gained),
		cmocka_unit_test(standalone_makes_no_socket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
