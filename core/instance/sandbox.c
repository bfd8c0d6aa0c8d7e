/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instance's sandbox (sandbox.h).  Why SCMP_ACT_TRAP and not
 * SCMP_ACT_KILL_PROCESS: after a kill the manager sees only "signal 31";
 * the trap handler can still name the system call (si_syscall) on stderr,
 * which is the manager's log, before the process dies of SIGSYS all the
 * same.  A process that installs its own SIGSYS handler gains nothing:
 * the call was not made.
 */
#define _GNU_SOURCE
#include "instance/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

/* The limits of one instance: a handful of sockets and state files, a
 * libtpms state of at most a few MiB, two threads (loop and worker). */
#define SB_NOFILE 1024
#define SB_FSIZE (64UL << 20)
#define SB_DATA (512UL << 20)
#define SB_NPROC 16
/* Where the new root is built: any directory does (a tmpfs covers it,
 * then becomes /); the first of these that exists. */
static const char *const sb_roots[] = { "/tmp", "/mnt", "/run", "/var", "/dev" };
static const char *sb_root = "/tmp";

static int set_limit(int res, rlim_t v, const char *name)
{
	struct rlimit rl;

	if (getrlimit(res, &rl) < 0)
		return -errno;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < v)
		v = rl.rlim_max;
	rl.rlim_cur = rl.rlim_max = v;
	if (setrlimit(res, &rl) < 0) {
		int rc = -errno;

		log_warnx("sandbox: cannot set %s: %s", name, strerror(-rc));
		return rc;
	}
	return 0;
}

#if defined(__SANITIZE_ADDRESS__)
#define SB_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SB_SANITIZER 1
#endif
#endif
#ifndef SB_SANITIZER
#define SB_SANITIZER 0
#endif

bool sandbox_available(void)
{
	return !SB_SANITIZER;
}

static int set_limits(const struct sandbox_spec *s)
{
	int rc = set_limit(RLIMIT_NOFILE, SB_NOFILE, "RLIMIT_NOFILE");

	if (!rc)
		rc = set_limit(RLIMIT_FSIZE, SB_FSIZE, "RLIMIT_FSIZE");
	/* AddressSanitizer maps terabytes of shadow and allocator space as it
	 * goes, which RLIMIT_DATA counts: the sanitizer builds (tests only)
	 * run without the data cap, with every other limit. */
	if (!rc && !SB_SANITIZER)
		rc = set_limit(RLIMIT_DATA, SB_DATA, "RLIMIT_DATA");
	if (!rc)
		rc = set_limit(RLIMIT_CORE, 0, "RLIMIT_CORE");
	/* Counted per uid: only a uid of its own can take a small cap
	 * (threads count too, so not 0: libuv's worker is one). */
	if (!rc && s->own_ids)
		rc = set_limit(RLIMIT_NPROC, SB_NPROC, "RLIMIT_NPROC");
	return rc;
}

/* mkdir -p of path below base (a directory fd); created ones 0755. */
static int mkpath(const char *base, const char *path)
{
	char p[512];
	size_t n;

	n = (size_t)snprintf(p, sizeof(p), "%s/%s", base, path);
	if (n >= sizeof(p))
		return -ENAMETOOLONG;
	for (char *c = p + strlen(base) + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -errno;
		*c = '/';
	}
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Binds the directory open at fd onto path in the new root (by the
 * descriptor: no name is resolved twice). */
static int bind_dir(int fd, const char *path, unsigned long extra)
{
	char src[64], dst[512];
	int rc;

	rc = mkpath(sb_root, path);
	if (rc)
		return rc;
	snprintf(src, sizeof(src), "/proc/self/fd/%d", fd);
	snprintf(dst, sizeof(dst), "%s/%s", sb_root, path);
	if (mount(src, dst, NULL, MS_BIND, NULL) < 0 ||
	    mount(NULL, dst, NULL,
		  MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NOEXEC | extra, NULL) < 0)
		return -errno;
	return 0;
}

struct sb_bind {
	int fd; /* opened in the new namespace */
	const char *path;
	unsigned long extra;
};

/*
 * A descriptor opened before unshare() belongs to the host's mount
 * namespace, and mount(2) binds only from the caller's: the directory is
 * opened again by its name in the new one, and must be the same one.
 */
static int reopen(int oldfd, const char *path, int *fdp)
{
	struct stat a, b;
	int fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (oldfd >= 0 &&
	    (fstat(oldfd, &a) < 0 || fstat(fd, &b) < 0 || a.st_dev != b.st_dev ||
	     a.st_ino != b.st_ino)) {
		close(fd);
		return -ESTALE; /* replaced since it was checked */
	}
	*fdp = fd;
	return 0;
}

static int collect(const struct sandbox_spec *s, struct sb_bind *b, int *np)
{
	int n = 0, rc;

	b[n] = (struct sb_bind){ -1, s->state_dir, MS_NODEV };
	rc = reopen(s->state_dirfd, s->state_dir, &b[n].fd);
	if (rc)
		return rc;
	n++;
	if (s->run_dirfd >= 0) {
		b[n] = (struct sb_bind){ -1, s->run_dir, MS_NODEV };
		rc = reopen(s->run_dirfd, s->run_dir, &b[n].fd);
		if (rc)
			goto fail;
		n++;
	}
	if (s->xen_dev && access("/dev/xen", F_OK) == 0) {
		b[n] = (struct sb_bind){ -1, "/dev/xen", 0 };
		rc = reopen(-1, "/dev/xen", &b[n].fd);
		if (rc)
			goto fail;
		n++;
	}
	/* Shorter paths first: one inside another lands on the bound one. */
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (strlen(b[j].path) < strlen(b[i].path)) {
				struct sb_bind t = b[i];

				b[i] = b[j];
				b[j] = t;
			}
	*np = n;
	return 0;
fail:
	while (n--)
		close(b[n].fd);
	return rc;
}

/* A root of its own: a tmpfs holding the bound directories, read-only. */
static int private_root(const struct sandbox_spec *s)
{
	struct sb_bind b[3];
	int n = 0, rc;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -errno;
	rc = collect(s, b, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < sizeof(sb_roots) / sizeof(sb_roots[0]); i++)
		if (access(sb_roots[i], F_OK) == 0) {
			sb_root = sb_roots[i];
			break;
		}
	if (mount("tmpfs", sb_root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "size=64k,nr_inodes=64,mode=0755") < 0)
		rc = -errno;
	for (int i = 0; i < n; i++) {
		if (!rc) {
			rc = bind_dir(b[i].fd, b[i].path, b[i].extra);
			if (rc)
				log_warnx("sandbox: cannot show %s in the private "
					  "mount namespace: %s", b[i].path,
					  strerror(-rc));
		}
		close(b[i].fd);
	}
	if (rc)
		return rc;
	if (chdir(sb_root) < 0)
		return -errno;
	if (syscall(SYS_pivot_root, ".", ".") == 0) {
		if (umount2(".", MNT_DETACH) < 0)
			return -errno;
	} else if (errno == EINVAL) {
		/* The root is an initramfs (rootfs), which cannot be
		 * pivoted away: move the tmpfs over it and chroot, as
		 * switch_root does.  Without CAP_SYS_CHROOT (dropped below)
		 * there is no way back up. */
		if (mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0)
			return -errno;
	} else {
		return -errno;
	}
	if (chdir("/") < 0)
		return -errno;
	if (mount(NULL, "/", NULL,
		  MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  NULL) < 0)
		return -errno;
	return 0;
}

static int drop_bounding_set(void)
{
	for (int c = 0; prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0; c++)
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
			return -errno;
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
	    errno != EINVAL)
		return -errno;
	return 0;
}

static int clear_caps(void)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	return syscall(SYS_capset, &h, d) < 0 ? -errno : 0;
}

static int become(const struct sandbox_spec *s)
{
	if (setgroups(0, NULL) < 0 || setresgid(s->gid, s->gid, s->gid) < 0 ||
	    setresuid(s->uid, s->uid, s->uid) < 0)
		return -errno;
	if (setuid(0) == 0 || setgid(0) == 0)
		return -EPERM;
	return 0;
}

int sandbox_isolate(const struct sandbox_spec *s)
{
	int rc, flags = CLONE_NEWNS;

	/* localtime() reads /etc/localtime once; it is gone afterwards. */
	tzset();
	rc = set_limits(s);
	if (rc)
		return rc;
	if (geteuid() != 0) {
		if (s->set_ids && (geteuid() != s->uid || getegid() != s->gid)) {
			log_warnx("sandbox: --user needs root to change identity");
			return -EPERM;
		}
		log_warnx("sandbox: not started as root: no private mount or "
			  "network namespace, capabilities unchanged");
		return 0;
	}
	if (!s->keep_net)
		flags |= CLONE_NEWNET;
	if (unshare(flags) < 0) {
		rc = -errno;
		log_warnx("sandbox: unshare: %s", strerror(-rc));
		return rc;
	}
	rc = private_root(s);
	if (rc) {
		log_warnx("sandbox: private mount namespace: %s", strerror(-rc));
		return rc;
	}
	rc = drop_bounding_set();
	if (!rc && s->set_ids)
		rc = become(s);
	if (!rc)
		rc = clear_caps();
	if (rc)
		log_warnx("sandbox: cannot drop privileges: %s", strerror(-rc));
	return rc;
}

/* ---- seccomp ---- */

static void put_dec(char *buf, size_t *n, long v)
{
	char t[24];
	size_t k = 0;

	if (v < 0) {
		buf[(*n)++] = '-';
		v = -v;
	}
	do {
		t[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && k < sizeof(t));
	while (k)
		buf[(*n)++] = t[--k];
}

/* Async-signal-safe: write, then die of the default SIGSYS (the handler
 * was reset on entry, SA_RESETHAND). */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	static const char a[] = "vtpm-service: seccomp: system call ";
	static const char b[] = " is outside the instance's allowlist; "
				"stopping (scmp_sys_resolver names it)\n";
	char buf[160];
	size_t n = 0;

	(void)uc;
	memcpy(buf, a, sizeof(a) - 1);
	n = sizeof(a) - 1;
	put_dec(buf, &n, si->si_syscall);
	memcpy(buf + n, b, sizeof(b) - 1);
	n += sizeof(b) - 1;
	if (write(2, buf, n) < 0)
		_exit(128 + sig);
	raise(sig);
	_exit(128 + sig);
}

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
	/* memory (Xen grant mappings included) */
	SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mprotect),
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

/* One rule on the first argument (all fields named: the SCMP_A0 macro
 * leaves datum_b implicit, which clang warns about). */
static int allow_arg0(scmp_filter_ctx ctx, int sys, enum scmp_compare op,
		      scmp_datum_t a, scmp_datum_t b)
{
	const struct scmp_arg_cmp c = {
		.arg = 0, .op = op, .datum_a = a, .datum_b = b,
	};

	return seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, sys, 1, &c);
}

static int load_filter(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	int rc = 0;

	if (!ctx)
		return -ENOMEM;
	/* Every thread, the worker too if it already runs. */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
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
	/* Thread names (libuv) and nothing else of prctl. */
	if (!rc)
		rc = allow_arg0(ctx, SCMP_SYS(prctl), SCMP_CMP_EQ, PR_SET_NAME, 0);
	if (!rc)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	return rc;
}

int sandbox_lock(void)
{
	struct sigaction sa;
	int rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
	if (sigaction(SIGSYS, &sa, NULL) < 0 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		rc = -errno;
		log_warnx("sandbox: %s", strerror(-rc));
		return rc;
	}
	rc = load_filter();
	/* The filter's construction (some 60 KiB) is freed: give it back. */
	malloc_trim(0);
	if (rc)
		log_warnx("sandbox: cannot load the seccomp filter: %s",
			  strerror(-rc));
	return rc;
}
