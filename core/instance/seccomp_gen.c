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
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
	/* sockets that exist (and the manager link, redialed) */
	SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(recvfrom),
	SCMP_SYS(recvmsg), SCMP_SYS(recvmmsg), SCMP_SYS(sendto),
	SCMP_SYS(sendmsg), SCMP_SYS(sendmmsg), SCMP_SYS(shutdown),
	SCMP_SYS(getsockopt), SCMP_SYS(setsockopt), SCMP_SYS(getsockname),
	SCMP_SYS(getpeername), SCMP_SYS(connect), SCMP_SYS(pipe2),
	SCMP_SYS(socketpair),
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

static int allow_arg0(scmp_filter_ctx ctx, int sys, enum scmp_compare op,
		      scmp_datum_t a, scmp_datum_t b)
{
	return allow_arg(ctx, sys, 0, op, a, b);
}

static int build(scmp_filter_ctx ctx)
{
	/* Every thread, the worker too if it already runs (sandbox.c loads
	 * with SECCOMP_FILTER_FLAG_TSYNC; the attribute only says so). */
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);

	for (size_t i = 0; !rc && i < sizeof(allowed) / sizeof(allowed[0]); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed[i], 0);
	/* Threads (libuv's worker), never a new process. */
	if (!rc)
		rc = allow_arg0(ctx, SCMP_SYS(clone), SCMP_CMP_MASKED_EQ,
				CLONE_THREAD, CLONE_THREAD);
	/* clone3's flags sit behind a pointer the filter cannot read:
	 * ENOSYS makes glibc fall back to clone. */
	if (!rc)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS),
				      SCMP_SYS(clone3), 0);
	/* A redial of the manager: UNIX sockets only. */
	if (!rc)
		rc = allow_arg0(ctx, SCMP_SYS(socket), SCMP_CMP_EQ, AF_UNIX, 0);
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
		rc = allow_arg0(ctx, SCMP_SYS(prctl), SCMP_CMP_EQ, PR_SET_NAME, 0);
	return rc;
}

int main(int argc, char **argv)
{
	scmp_filter_ctx ctx;
	struct sock_filter *prog;
	char tmp[4096];
	FILE *out;
	off_t len;
	int fd, rc;

	if (argc != 2 || strlen(argv[1]) + 5 > sizeof(tmp)) {
		fprintf(stderr, "usage: seccomp_gen OUT.h\n");
		return 2;
	}
	ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx) {
		fprintf(stderr, "seccomp_gen: seccomp_init failed\n");
		return 1;
	}
	rc = build(ctx);
	fd = memfd_create("bpf", MFD_CLOEXEC);
	if (!rc && fd < 0)
		rc = -errno;
	if (!rc)
		rc = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	len = rc ? 0 : lseek(fd, 0, SEEK_END);
	if (rc || len <= 0 || len % (off_t)sizeof(*prog) ||
	    len / (off_t)sizeof(*prog) > BPF_MAXINSNS) {
		fprintf(stderr, "seccomp_gen: cannot compile the filter: %s\n",
			rc ? strerror(-rc) : "bad program size");
		return 1;
	}
	prog = mmap(NULL, (size_t)len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (prog == MAP_FAILED) {
		perror("seccomp_gen: mmap");
		return 1;
	}
	close(fd);
	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
	out = fopen(tmp, "w");
	if (!out) {
		perror(tmp);
		munmap(prog, (size_t)len);
		return 1;
	}
	fprintf(out, "/* Generated by seccomp_gen (core/instance/seccomp_gen.c)"
		     ": %ld instructions. */\n",
		(long)(len / (off_t)sizeof(*prog)));
	for (off_t i = 0; i < len / (off_t)sizeof(*prog); i++)
		fprintf(out, "{ 0x%04x, %u, %u, 0x%08x },\n", prog[i].code,
			prog[i].jt, prog[i].jf, prog[i].k);
	munmap(prog, (size_t)len);
	if (fclose(out) != 0 || rename(tmp, argv[1]) != 0) {
		perror(argv[1]);
		return 1;
	}
	return 0;
}
