/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instance's sandbox (sandbox.h).  Why the filter (seccomp_gen.c)
 * traps and does not kill: after a kill the manager sees only "signal 31";
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
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
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
		if (*c != '/' || c[-1] == '/')
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

/* Every capability the kernel knows is dropped (dropping one that is
 * gone already succeeds); EINVAL names the first past the last. */
static int drop_bounding_set(void)
{
	int c;

	for (c = 0; prctl(PR_CAPBSET_DROP, c, 0, 0, 0) == 0; c++)
		;
	if (errno != EINVAL || c == 0)
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
	if (!s->keep_net && !s->no_sockets)
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

/*
 * The allowlist itself is in seccomp_gen.c: libseccomp compiles it into
 * BPF once, at build time, and the instance loads that program as it is
 * (instance/sandbox_bpf.h, in the build tree).  Compiling it at every
 * start cost about 0.2 ms and some 60 KiB of heap churn, and linked
 * libseccomp into every instance.
 */
#include "instance/sandbox_bpf.h"

static int load_one(const struct sock_filter *insns, size_t n)
{
	struct sock_fprog prog = {
		.len = (unsigned short)n,
		.filter = (struct sock_filter *)insns,
	};
	/* Every thread, the worker too if it already runs: a positive
	 * answer names a thread that could not take the filter. */
	long rc = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			  SECCOMP_FILTER_FLAG_TSYNC, &prog);

	if (rc < 0)
		return -errno;
	return rc > 0 ? -EAGAIN : 0;
}

#define LOAD(prog) load_one(prog, sizeof(prog) / sizeof(prog[0]))

/* The terminal guard, then the allowlist stacked on it (seccomp_gen.c):
 * in that order, as the allowlist has no seccomp() in it. */
static int load_filter(bool no_sockets)
{
	int rc = LOAD(sandbox_tty_guard);

	if (rc)
		return rc;
	return no_sockets ? LOAD(sandbox_allowlist_nosock)
			  : LOAD(sandbox_allowlist);
}

int sandbox_lock(bool no_sockets)
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
	rc = load_filter(no_sockets);
	if (rc)
		log_warnx("sandbox: cannot load the seccomp filter: %s",
			  strerror(-rc));
	return rc;
}
