/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instance's seccomp allowlist, compiled by libseccomp into BPF at
 * build time: seccomp_gen OUT writes the program as C initialisers, which
 * sandbox.c includes (instance/sandbox_bpf.h) and loads as it is, so no
 * instance compiles a filter or links libseccomp.  The program is
 * libseccomp's own (seccomp_export_bpf), for the architecture this builds
 * for: its first test kills a thread that calls through another ABI
 * (x32, or 32-bit x86), as libseccomp's loaded filters always did.
 *
 * Anything outside the list traps (SIGSYS): sandbox.c's handler names the
 * call on stderr, the manager's log, and the process dies of SIGSYS.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <sched.h>
#include <stdint.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

static const int allowed[] = {
	/* I/O on what is already open, and the state files */
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(lseek),
	SCMP_SYS(close), SCMP_SYS(close_range), SCMP_SYS(dup), SCMP_SYS(dup2),
	SCMP_SYS(dup3), SCMP_SYS(fcntl), SCMP_SYS(ioctl), SCMP_SYS(openat),
	SCMP_SYS(open), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(stat),
	SCMP_SYS(lstat), SCMP_SYS(statx), SCMP_SYS(fstatfs),
	SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(flock),
	SCMP_SYS(ftruncate), SCMP_SYS(fallocate), SCMP_SYS(renameat),
	SCMP_SYS(renameat2), SCMP_SYS(rename), SCMP_SYS(unlinkat),
	SCMP_SYS(unlink), SCMP_SYS(readlink), SCMP_SYS(getdents64),
	SCMP_SYS(getcwd),
	/* sockets that exist */
	SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(recvfrom),
	SCMP_SYS(recvmsg), SCMP_SYS(recvmmsg), SCMP_SYS(sendto),
	SCMP_SYS(sendmsg), SCMP_SYS(sendmmsg), SCMP_SYS(shutdown),
	SCMP_SYS(getsockopt), SCMP_SYS(setsockopt), SCMP_SYS(getsockname),
	SCMP_SYS(getpeername), SCMP_SYS(pipe2),
	/* libuv's loop */
	SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait),
	SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_pwait2), SCMP_SYS(eventfd2),
	SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(timerfd_create),
	SCMP_SYS(timerfd_settime), SCMP_SYS(timerfd_gettime),
	/* memory (Xen grant mappings included); mmap and mprotect below */
	SCMP_SYS(munmap),
	SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(brk), SCMP_SYS(msync),
	SCMP_SYS(mlock), SCMP_SYS(mlock2), SCMP_SYS(munlock), /* Xen buffers */
	/* threads, signals, time */
	SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(get_robust_list),
	SCMP_SYS(rseq), SCMP_SYS(set_tid_address), SCMP_SYS(sched_yield),
	SCMP_SYS(sched_getaffinity), SCMP_SYS(rt_sigaction),
	SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
	SCMP_SYS(sigaltstack), SCMP_SYS(tgkill), SCMP_SYS(restart_syscall),
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres),
	SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep),
	SCMP_SYS(gettimeofday), SCMP_SYS(getrandom),
	SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getppid),
	SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid),
	SCMP_SYS(getegid), SCMP_SYS(uname), SCMP_SYS(getrlimit),
	SCMP_SYS(prlimit64), SCMP_SYS(getrusage), SCMP_SYS(sysinfo),
	SCMP_SYS(exit), SCMP_SYS(exit_group),
};

/* One rule on argument n (all fields named: the SCMP_A0 macro leaves
 * datum_b implicit, which clang warns about). */
static int allow_arg(scmp_filter_ctx ctx, int sys, unsigned int n,
		     enum scmp_compare op, scmp_datum_t a, scmp_datum_t b)
{
	const struct scmp_arg_cmp c = {
		.arg = n, .op = op, .datum_a = a, .datum_b = b,
	};

	return seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, sys, 1, &c);
}

static int build_common(scmp_filter_ctx ctx, int dials)
{
	/* Every thread, the worker too if it already runs (sandbox.c loads
	 * with SECCOMP_FILTER_FLAG_TSYNC; the attribute only says so). */
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);

	/* A binary tree of the system call numbers, not a list: the kernel
	 * runs the program for every one of them when the instance loads it
	 * (to cache the calls it always allows), and then for every call
	 * the cache cannot answer (mmap, mprotect, clone, prctl).  Loading
	 * went from 157 to 81 us (tools/bench/RESULTS.md). */
	if (!rc)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	for (size_t i = 0; !rc && i < sizeof(allowed) / sizeof(allowed[0]); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
	/* Threads (libuv's worker), never a new process. */
	if (!rc)
		rc = allow_arg(ctx, SCMP_SYS(clone), 0, SCMP_CMP_MASKED_EQ,
			       CLONE_THREAD, CLONE_THREAD);
	/* clone3's flags sit behind a pointer the filter cannot read:
	 * ENOSYS makes glibc fall back to clone. */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS),
				      SCMP_SYS(clone3), 0);
	/* A redial of the manager: UNIX sockets only.  A standalone
	 * instance dials nothing, and makes no socket at all (sandbox.h). */
	if (!rc && dials)
		rc = allow_arg(ctx, SCMP_SYS(socket), 0, SCMP_CMP_EQ, AF_UNIX, 0);
	if (!rc && dials)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(connect), 0);
	if (!rc && dials)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair),
				      0);
	/* No new executable memory once locked: every library is mapped by
	 * then (xen-ring preloads libgcc_s, libxenctrl is opened with the
	 * Xen handles), so a mapping or a change of protection that asks
	 * for PROT_EXEC is only ever an exploit's (the third argument). */
	if (!rc)
		rc = allow_arg(ctx, SCMP_SYS(mmap), 2, SCMP_CMP_MASKED_EQ,
			       PROT_EXEC, 0);
	if (!rc)
		rc = allow_arg(ctx, SCMP_SYS(mprotect), 2, SCMP_CMP_MASKED_EQ,
			       PROT_EXEC, 0);
	/* Thread names (libuv) and nothing else of prctl. */
	if (!rc)
		rc = allow_arg(ctx, SCMP_SYS(prctl), 0, SCMP_CMP_EQ,
			       PR_SET_NAME, 0);
	return rc;
}

/* A managed instance: it may redial its manager. */
static int build_allowlist(scmp_filter_ctx ctx)
{
	return build_common(ctx, 1);
}

/* A standalone instance: no socket(), socketpair() or connect(). */
static int build_allowlist_nosock(scmp_filter_ctx ctx)
{
	return build_common(ctx, 0);
}

/*
 * The terminal guard, under the allowlist (sandbox.c loads it first; the
 * kernel runs both and the stricter answer wins): ioctl is refused for the two requests that
 * act on a terminal beyond the fd itself, TIOCSTI (pushes input into it:
 * a shell's, when an instance runs on the operator's terminal) and
 * TIOCLINUX (the console).  The kernel reads the request as 32 bits, so
 * only those are compared: TIOCSTI with an upper bit set is refused too.
 * A second program, because libseccomp cannot refuse part of what one
 * filter allows unconditionally.
 */
static int build_tty_guard(scmp_filter_ctx ctx)
{
	static const unsigned long refused[] = { TIOCSTI, TIOCLINUX };
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);

	for (size_t i = 0; !rc && i < 2; i++) {
		const struct scmp_arg_cmp c = {
			.arg = 1, .op = SCMP_CMP_MASKED_EQ,
			.datum_a = 0xffffffffu, .datum_b = refused[i],
		};

		rc = seccomp_rule_add_array(ctx, SCMP_ACT_TRAP, SCMP_SYS(ioctl),
					    1, &c);
	}
	return rc;
}

/* Compiles one program and writes it to out as a named array. */
static int emit(FILE *out, const char *name, uint32_t def,
		int (*build)(scmp_filter_ctx))
{
	scmp_filter_ctx ctx = seccomp_init(def);
	struct sock_filter *prog;
	off_t len, n;
	int fd, rc;

	if (!ctx) {
		fprintf(stderr, "seccomp_gen: seccomp_init failed\n");
		return -1;
	}
	rc = build(ctx);
	fd = memfd_create("bpf", MFD_CLOEXEC);
	if (fd < 0) {
		perror("seccomp_gen: memfd_create");
		seccomp_release(ctx);
		return -1;
	}
	if (!rc)
		rc = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	len = rc ? 0 : lseek(fd, 0, SEEK_END);
	n = len / (off_t)sizeof(*prog);
	if (rc || len <= 0 || len % (off_t)sizeof(*prog) || n > BPF_MAXINSNS) {
		fprintf(stderr, "seccomp_gen: cannot compile %s: %s\n", name,
			rc ? strerror(-rc) : "bad program size");
		close(fd);
		return -1;
	}
	prog = mmap(NULL, (size_t)len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (prog == MAP_FAILED) {
		perror("seccomp_gen: mmap");
		return -1;
	}
	fprintf(out, "/* %ld instructions */\n"
		     "static const struct sock_filter %s[] = {\n",
		(long)n, name);
	for (off_t i = 0; i < n; i++)
		fprintf(out, "\t{ 0x%04x, %u, %u, 0x%08x },\n", prog[i].code,
			prog[i].jt, prog[i].jf, prog[i].k);
	fprintf(out, "};\n");
	munmap(prog, (size_t)len);
	return 0;
}

int main(int argc, char **argv)
{
	char tmp[4096];
	FILE *out;

	if (argc != 2 || strlen(argv[1]) + 5 > sizeof(tmp)) {
		fprintf(stderr, "usage: seccomp_gen OUT.h\n");
		return 2;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
	out = fopen(tmp, "w");
	if (!out) {
		perror(tmp);
		return 1;
	}
	fprintf(out, "/* Generated by seccomp_gen (core/instance/"
		     "seccomp_gen.c). */\n");
	if (emit(out, "sandbox_allowlist", SCMP_ACT_TRAP, build_allowlist) ||
	    emit(out, "sandbox_allowlist_nosock", SCMP_ACT_TRAP,
		 build_allowlist_nosock) ||
	    emit(out, "sandbox_tty_guard", SCMP_ACT_ALLOW, build_tty_guard)) {
		fclose(out);
		unlink(tmp);
		return 1;
	}
	if (fclose(out) != 0 || rename(tmp, argv[1]) != 0) {
		perror(argv[1]);
		unlink(tmp);
		return 1;
	}
	return 0;
}
