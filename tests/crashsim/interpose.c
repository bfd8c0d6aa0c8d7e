/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * LD_PRELOAD recorder for the power-cut crash simulator.
 *
 * CRASHSIM_DIR   absolute directory; only files at or under it are logged
 *                (several may be given, separated by ':')
 * CRASHSIM_LOG   the log file, appended to with O_APPEND: one write(2)
 *                per record, so the order of the records in the file is
 *                the global order of the operations across processes
 * CRASHSIM_NOSYNC  planted bug, so a test can prove the simulator finds
 *                a missing flush: "data" makes fsync/fdatasync of
 *                regular files under the directories no-ops (returning
 *                0, logged as NOSYNC), "dir" those of directories, "all"
 *                both
 *
 * Each record is logged after the call returned successfully (a failed
 * call changed nothing on disk).  Record layout, little-endian:
 *   u32 magic "CSR1", u32 total length, u32 type, i32 pid, i32 fd,
 *   u32 flags, i64 offset, i64 arg, u64 ino, u32 len(path),
 *   u32 len(path2), u32 len(data), then path, path2, data.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

enum {
	R_OPEN = 1, R_WRITE = 2, R_FSYNC = 3, R_FDATASYNC = 4, R_RENAME = 5,
	R_UNLINK = 6, R_RMDIR = 7, R_TRUNC = 8, R_FALLOC = 9, R_MKDIR = 10,
	R_CLOSE = 11, R_NOSYNC = 12, R_NOTE = 13,
};

struct rec_hdr {
	uint32_t magic, total, type;
	int32_t pid, fd;
	uint32_t flags;
	int64_t off, arg;
	uint64_t ino;
	uint32_t plen, p2len, dlen;
} __attribute__((packed));

static int open_log(void);

#define MAXDIRS 4
static char dirs[MAXDIRS][PATH_MAX];
static size_t dirlen[MAXDIRS];
static int ndirs;
static int logfd = -1;
static char logpath[PATH_MAX];
static int nosync_data, nosync_dir;
static int ready;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* fds of this process that are under a watched directory */
#define MAXFD 4096
static unsigned char watched[MAXFD];

#define REAL(ret, name, ...)                                               \
	static ret (*real_##name)(__VA_ARGS__);                            \
	static void load_##name(void)                                      \
	{                                                                  \
		if (!real_##name)                                          \
			real_##name = dlsym(RTLD_NEXT, #name);             \
	}

__attribute__((constructor)) static void crashsim_init(void)
{
	const char *d = getenv("CRASHSIM_DIR");
	const char *l = getenv("CRASHSIM_LOG");
	const char *n = getenv("CRASHSIM_NOSYNC");

	if (!d || !l)
		return;
	while (*d && ndirs < MAXDIRS) {
		const char *e = strchr(d, ':');
		size_t len = e ? (size_t)(e - d) : strlen(d);

		if (len && len < PATH_MAX) {
			memcpy(dirs[ndirs], d, len);
			dirs[ndirs][len] = 0;
			while (len > 1 && dirs[ndirs][len - 1] == '/')
				dirs[ndirs][--len] = 0;
			dirlen[ndirs++] = len;
		}
		d = e ? e + 1 : d + len;
	}
	snprintf(logpath, sizeof(logpath), "%s", l);
	logfd = open_log();
	nosync_data = n && (strcmp(n, "data") == 0 || strcmp(n, "all") == 0);
	nosync_dir = n && (strcmp(n, "dir") == 0 || strcmp(n, "all") == 0);
	ready = logfd >= 0 && ndirs > 0;
}

/* The log's descriptor sits high, away from the numbers a program
 * dup2()s onto (the manager link is fd 3); a program that closes every
 * descriptor it does not know (close_range) gets it reopened. */
static int open_log(void)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, logpath,
			      O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
	int hi;

	if (fd < 0)
		return -1;
	hi = fcntl(fd, F_DUPFD_CLOEXEC, 900);
	if (hi >= 0) {
		syscall(SYS_close, fd);
		fd = hi;
	}
	return fd;
}

static int under(const char *p)
{
	for (int i = 0; i < ndirs; i++)
		if (strncmp(p, dirs[i], dirlen[i]) == 0 &&
		    (p[dirlen[i]] == 0 || p[dirlen[i]] == '/'))
			return 1;
	return 0;
}

static int fd_path(int fd, char *out, size_t outlen)
{
	char link[64];
	ssize_t n;

	if (fd == AT_FDCWD) {
		if (!getcwd(out, outlen))
			return -1;
		return 0;
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, out, outlen - 1);
	if (n < 0)
		return -1;
	out[n] = 0;
	return 0;
}

/* The absolute, lexically clean path of (dirfd, name); the last
 * component is not resolved (it may be a name being created or removed). */
static int at_path(int dirfd, const char *name, char *out, size_t outlen)
{
	char base[PATH_MAX];
	char tmp[2 * PATH_MAX + 2];
	char *parts[256];
	int np = 0;
	char *s, *save = NULL;
	size_t o = 0;

	if (!name)
		return -1;
	if (name[0] == '/') {
		snprintf(tmp, sizeof(tmp), "%s", name);
	} else {
		if (fd_path(dirfd, base, sizeof(base)) < 0)
			return -1;
		snprintf(tmp, sizeof(tmp), "%s/%s", base, name);
	}
	for (s = strtok_r(tmp, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
		if (strcmp(s, ".") == 0)
			continue;
		if (strcmp(s, "..") == 0) {
			if (np)
				np--;
			continue;
		}
		if (np < 256)
			parts[np++] = s;
	}
	if (np == 0) {
		snprintf(out, outlen, "/");
		return 0;
	}
	for (int i = 0; i < np; i++) {
		int w = snprintf(out + o, outlen - o, "/%s", parts[i]);

		if (w < 0 || (size_t)w >= outlen - o)
			return -1;
		o += (size_t)w;
	}
	return 0;
}

static void emit(uint32_t type, int fd, uint32_t flags, int64_t off,
		 int64_t arg, uint64_t ino, const char *p, const char *p2,
		 const struct iovec *iov, int iovcnt, size_t dlen)
{
	struct rec_hdr h;
	size_t plen = p ? strlen(p) : 0, p2len = p2 ? strlen(p2) : 0;
	size_t total = sizeof(h) + plen + p2len + dlen, o = 0;
	char *buf;

	buf = malloc(total);
	if (!buf)
		abort();
	h.magic = 0x31525343; /* "CSR1" */
	h.total = (uint32_t)total;
	h.type = type;
	h.pid = getpid();
	h.fd = fd;
	h.flags = flags;
	h.off = off;
	h.arg = arg;
	h.ino = ino;
	h.plen = (uint32_t)plen;
	h.p2len = (uint32_t)p2len;
	h.dlen = (uint32_t)dlen;
	memcpy(buf, &h, sizeof(h));
	o = sizeof(h);
	if (plen)
		memcpy(buf + o, p, plen);
	o += plen;
	if (p2len)
		memcpy(buf + o, p2, p2len);
	o += p2len;
	for (int i = 0; i < iovcnt && o < total; i++) {
		size_t n = iov[i].iov_len;

		if (n > total - o)
			n = total - o;
		memcpy(buf + o, iov[i].iov_base, n);
		o += n;
	}
	/* One write: O_APPEND places it atomically after every other
	 * process's records.  A short write would corrupt the log. */
	if (syscall(SYS_write, logfd, buf, total) != (long)total) {
		logfd = open_log();
		if (logfd < 0 ||
		    syscall(SYS_write, logfd, buf, total) != (long)total)
			abort();
	}
	free(buf);
}

static int is_watched(int fd)
{
	return ready && fd >= 0 && fd < MAXFD && watched[fd];
}

static uint64_t fd_ino(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

static void after_open(int fd, int flags)
{
	char p[PATH_MAX];

	if (!ready || fd < 0 || fd >= MAXFD)
		return;
	if (fd_path(fd, p, sizeof(p)) < 0 || !under(p)) {
		watched[fd] = 0;
		return;
	}
	pthread_mutex_lock(&mu);
	watched[fd] = 1;
	emit(R_OPEN, fd, (uint32_t)flags, 0, 0, fd_ino(fd), p, NULL, NULL, 0,
	     0);
	pthread_mutex_unlock(&mu);
}

static void log_fd_op(uint32_t type, int fd, int64_t off, int64_t arg,
		      const struct iovec *iov, int iovcnt, size_t dlen)
{
	char p[PATH_MAX];

	if (fd_path(fd, p, sizeof(p)) < 0)
		p[0] = 0;
	pthread_mutex_lock(&mu);
	emit(type, fd, 0, off, arg, fd_ino(fd), p, NULL, iov, iovcnt, dlen);
	pthread_mutex_unlock(&mu);
}

/* ---- open ---- */

REAL(int, open, const char *, int, ...)
REAL(int, open64, const char *, int, ...)
REAL(int, openat, int, const char *, int, ...)
REAL(int, openat64, int, const char *, int, ...)
REAL(int, __open_2, const char *, int)
REAL(int, __open64_2, const char *, int)
REAL(int, __openat_2, int, const char *, int)
REAL(int, __openat64_2, int, const char *, int)
REAL(int, creat, const char *, mode_t)

static mode_t va_mode(int flags, va_list ap)
{
	if (flags & (O_CREAT | __O_TMPFILE))
		return (mode_t)va_arg(ap, int);
	return 0;
}

int open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t m;
	int fd;

	va_start(ap, flags);
	m = va_mode(flags, ap);
	va_end(ap);
	load_open();
	fd = real_open(path, flags, m);
	after_open(fd, flags);
	return fd;
}

int open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t m;
	int fd;

	va_start(ap, flags);
	m = va_mode(flags, ap);
	va_end(ap);
	load_open64();
	fd = real_open64(path, flags, m);
	after_open(fd, flags);
	return fd;
}

int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t m;
	int fd;

	va_start(ap, flags);
	m = va_mode(flags, ap);
	va_end(ap);
	load_openat();
	fd = real_openat(dirfd, path, flags, m);
	after_open(fd, flags);
	return fd;
}

int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t m;
	int fd;

	va_start(ap, flags);
	m = va_mode(flags, ap);
	va_end(ap);
	load_openat64();
	fd = real_openat64(dirfd, path, flags, m);
	after_open(fd, flags);
	return fd;
}

int __open_2(const char *path, int flags)
{
	int fd;

	load___open_2();
	fd = real___open_2(path, flags);
	after_open(fd, flags);
	return fd;
}

int __open64_2(const char *path, int flags)
{
	int fd;

	load___open64_2();
	fd = real___open64_2(path, flags);
	after_open(fd, flags);
	return fd;
}

int __openat_2(int dirfd, const char *path, int flags)
{
	int fd;

	load___openat_2();
	fd = real___openat_2(dirfd, path, flags);
	after_open(fd, flags);
	return fd;
}

int __openat64_2(int dirfd, const char *path, int flags)
{
	int fd;

	load___openat64_2();
	fd = real___openat64_2(dirfd, path, flags);
	after_open(fd, flags);
	return fd;
}

int creat(const char *path, mode_t mode)
{
	int fd;

	load_creat();
	fd = real_creat(path, mode);
	after_open(fd, O_CREAT | O_WRONLY | O_TRUNC);
	return fd;
}

/* ---- writes ---- */

REAL(ssize_t, write, int, const void *, size_t)
REAL(ssize_t, __write, int, const void *, size_t)
REAL(ssize_t, pwrite, int, const void *, size_t, off_t)
REAL(ssize_t, pwrite64, int, const void *, size_t, off_t)
REAL(ssize_t, writev, int, const struct iovec *, int)
REAL(ssize_t, pwritev, int, const struct iovec *, int, off_t)
REAL(ssize_t, pwritev64, int, const struct iovec *, int, off_t)
REAL(ssize_t, pwritev2, int, const struct iovec *, int, off_t, int)

/* The offset a sequential write lands at (O_APPEND: the end). */
static off_t seq_offset(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	struct stat st;

	if (fl >= 0 && (fl & O_APPEND) && fstat(fd, &st) == 0)
		return st.st_size;
	return lseek(fd, 0, SEEK_CUR);
}

static ssize_t do_write(ssize_t (*fn)(int, const void *, size_t), int fd,
			const void *buf, size_t n)
{
	ssize_t r;
	off_t off;
	struct iovec iov;

	if (!is_watched(fd))
		return fn(fd, buf, n);
	pthread_mutex_lock(&mu);
	off = seq_offset(fd);
	r = fn(fd, buf, n);
	pthread_mutex_unlock(&mu);
	if (r > 0) {
		iov.iov_base = (void *)buf;
		iov.iov_len = (size_t)r;
		log_fd_op(R_WRITE, fd, off, 0, &iov, 1, (size_t)r);
	}
	return r;
}

ssize_t write(int fd, const void *buf, size_t n)
{
	load_write();
	return do_write(real_write, fd, buf, n);
}

ssize_t __write(int fd, const void *buf, size_t n)
{
	load___write();
	if (!real___write) {
		load_write();
		return do_write(real_write, fd, buf, n);
	}
	return do_write(real___write, fd, buf, n);
}

static ssize_t do_pwrite(ssize_t (*fn)(int, const void *, size_t, off_t),
			 int fd, const void *buf, size_t n, off_t off)
{
	ssize_t r = fn(fd, buf, n, off);
	struct iovec iov;

	if (r > 0 && is_watched(fd)) {
		iov.iov_base = (void *)buf;
		iov.iov_len = (size_t)r;
		log_fd_op(R_WRITE, fd, off, 0, &iov, 1, (size_t)r);
	}
	return r;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	load_pwrite();
	return do_pwrite(real_pwrite, fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	load_pwrite64();
	return do_pwrite(real_pwrite64, fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	ssize_t r;
	off_t off = 0;

	load_writev();
	if (!is_watched(fd))
		return real_writev(fd, iov, cnt);
	pthread_mutex_lock(&mu);
	off = seq_offset(fd);
	r = real_writev(fd, iov, cnt);
	pthread_mutex_unlock(&mu);
	if (r > 0)
		log_fd_op(R_WRITE, fd, off, 0, iov, cnt, (size_t)r);
	return r;
}

static ssize_t pv_common(ssize_t r, int fd, const struct iovec *iov, int cnt,
			 off_t off)
{
	if (r > 0 && is_watched(fd)) {
		if (off == -1)
			off = lseek(fd, 0, SEEK_CUR) - r;
		log_fd_op(R_WRITE, fd, off, 0, iov, cnt, (size_t)r);
	}
	return r;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	load_pwritev();
	return pv_common(real_pwritev(fd, iov, cnt, off), fd, iov, cnt, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
	load_pwritev64();
	return pv_common(real_pwritev64(fd, iov, cnt, off), fd, iov, cnt, off);
}

ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int fl)
{
	load_pwritev2();
	return pv_common(real_pwritev2(fd, iov, cnt, off, fl), fd, iov, cnt,
			 off);
}

/* ---- flushes ---- */

REAL(int, fsync, int)
REAL(int, fdatasync, int)
REAL(int, syncfs, int)
REAL(void, sync, void)

static int is_dir_fd(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

static int do_sync(int (*fn)(int), uint32_t type, int fd)
{
	int r;

	if (is_watched(fd) && (nosync_data || nosync_dir) &&
	    (is_dir_fd(fd) ? nosync_dir : nosync_data)) {
		log_fd_op(R_NOSYNC, fd, 0, type, NULL, 0, 0);
		return 0;
	}
	r = fn(fd);
	if (r == 0 && is_watched(fd))
		log_fd_op(type, fd, 0, 0, NULL, 0, 0);
	return r;
}

int fsync(int fd)
{
	load_fsync();
	return do_sync(real_fsync, R_FSYNC, fd);
}

int fdatasync(int fd)
{
	load_fdatasync();
	return do_sync(real_fdatasync, R_FDATASYNC, fd);
}

/* A whole-file-system flush: logged as an fsync of every watched
 * directory's tree (the model treats it as a full barrier). */
int syncfs(int fd)
{
	int r;

	load_syncfs();
	r = real_syncfs(fd);
	if (r == 0 && ready) {
		pthread_mutex_lock(&mu);
		emit(R_FSYNC, -1, 1, 0, 0, 0, "", NULL, NULL, 0, 0);
		pthread_mutex_unlock(&mu);
	}
	return r;
}

void sync(void)
{
	load_sync();
	real_sync();
	if (ready) {
		pthread_mutex_lock(&mu);
		emit(R_FSYNC, -1, 1, 0, 0, 0, "", NULL, NULL, 0, 0);
		pthread_mutex_unlock(&mu);
	}
}

/* ---- names ---- */

REAL(int, rename, const char *, const char *)
REAL(int, renameat, int, const char *, int, const char *)
REAL(int, renameat2, int, const char *, int, const char *, unsigned int)
REAL(int, unlink, const char *)
REAL(int, unlinkat, int, const char *, int)
REAL(int, rmdir, const char *)
REAL(int, mkdir, const char *, mode_t)
REAL(int, mkdirat, int, const char *, mode_t)

static void log_names(uint32_t type, uint32_t flags, int d1, const char *n1,
		      int d2, const char *n2)
{
	char p1[PATH_MAX], p2[PATH_MAX];

	if (!ready || at_path(d1, n1, p1, sizeof(p1)) < 0)
		return;
	if (n2 && at_path(d2, n2, p2, sizeof(p2)) < 0)
		return;
	if (!under(p1) && !(n2 && under(p2)))
		return;
	pthread_mutex_lock(&mu);
	emit(type, -1, flags, 0, 0, 0, p1, n2 ? p2 : NULL, NULL, 0, 0);
	pthread_mutex_unlock(&mu);
}

/* The paths are computed before the call: after it, a relative name
 * still means the same thing (dirfds do not move), but the order of
 * the log must put the record after the operation. */
int rename(const char *a, const char *b)
{
	int r;

	load_rename();
	r = real_rename(a, b);
	if (r == 0)
		log_names(R_RENAME, 0, AT_FDCWD, a, AT_FDCWD, b);
	return r;
}

int renameat(int da, const char *a, int db, const char *b)
{
	int r;

	load_renameat();
	r = real_renameat(da, a, db, b);
	if (r == 0)
		log_names(R_RENAME, 0, da, a, db, b);
	return r;
}

int renameat2(int da, const char *a, int db, const char *b, unsigned int fl)
{
	int r;

	load_renameat2();
	r = real_renameat2(da, a, db, b, fl);
	if (r == 0)
		log_names(R_RENAME, fl, da, a, db, b);
	return r;
}

int unlink(const char *p)
{
	int r;

	load_unlink();
	r = real_unlink(p);
	if (r == 0)
		log_names(R_UNLINK, 0, AT_FDCWD, p, 0, NULL);
	return r;
}

int unlinkat(int d, const char *p, int fl)
{
	int r;

	load_unlinkat();
	r = real_unlinkat(d, p, fl);
	if (r == 0)
		log_names(fl & AT_REMOVEDIR ? R_RMDIR : R_UNLINK, 0, d, p, 0,
			  NULL);
	return r;
}

int rmdir(const char *p)
{
	int r;

	load_rmdir();
	r = real_rmdir(p);
	if (r == 0)
		log_names(R_RMDIR, 0, AT_FDCWD, p, 0, NULL);
	return r;
}

int mkdir(const char *p, mode_t m)
{
	int r;

	load_mkdir();
	r = real_mkdir(p, m);
	if (r == 0)
		log_names(R_MKDIR, 0, AT_FDCWD, p, 0, NULL);
	return r;
}

int mkdirat(int d, const char *p, mode_t m)
{
	int r;

	load_mkdirat();
	r = real_mkdirat(d, p, m);
	if (r == 0)
		log_names(R_MKDIR, 0, d, p, 0, NULL);
	return r;
}

/* ---- sizes ---- */

REAL(int, ftruncate, int, off_t)
REAL(int, ftruncate64, int, off_t)
REAL(int, truncate, const char *, off_t)
REAL(int, fallocate, int, int, off_t, off_t)
REAL(int, fallocate64, int, int, off_t, off_t)
REAL(int, posix_fallocate, int, off_t, off_t)
REAL(int, posix_fallocate64, int, off_t, off_t)

int ftruncate(int fd, off_t len)
{
	int r;

	load_ftruncate();
	r = real_ftruncate(fd, len);
	if (r == 0 && is_watched(fd))
		log_fd_op(R_TRUNC, fd, 0, len, NULL, 0, 0);
	return r;
}

int ftruncate64(int fd, off_t len)
{
	int r;

	load_ftruncate64();
	r = real_ftruncate64(fd, len);
	if (r == 0 && is_watched(fd))
		log_fd_op(R_TRUNC, fd, 0, len, NULL, 0, 0);
	return r;
}

int truncate(const char *p, off_t len)
{
	int r, fd;

	load_truncate();
	r = real_truncate(p, len);
	if (r == 0 && ready) {
		/* Logged through an fd so the model finds the inode. */
		load_open();
		fd = real_open(p, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			after_open(fd, O_RDONLY);
			if (is_watched(fd))
				log_fd_op(R_TRUNC, fd, 0, len, NULL, 0, 0);
			close(fd);
		}
	}
	return r;
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
	int r;

	load_fallocate();
	r = real_fallocate(fd, mode, off, len);
	if (r == 0 && is_watched(fd))
		log_fd_op(R_FALLOC, fd, off, len | ((int64_t)mode << 56), NULL,
			  0, 0);
	return r;
}

int fallocate64(int fd, int mode, off_t off, off_t len)
{
	int r;

	load_fallocate64();
	r = real_fallocate64(fd, mode, off, len);
	if (r == 0 && is_watched(fd))
		log_fd_op(R_FALLOC, fd, off, len | ((int64_t)mode << 56), NULL,
			  0, 0);
	return r;
}

int posix_fallocate(int fd, off_t off, off_t len)
{
	int r;

	load_posix_fallocate();
	r = real_posix_fallocate(fd, off, len);
	if (r == 0 && is_watched(fd))
		log_fd_op(R_FALLOC, fd, off, len, NULL, 0, 0);
	return r;
}

int posix_fallocate64(int fd, off_t off, off_t len)
{
	int r;

	load_posix_fallocate64();
	r = real_posix_fallocate64(fd, off, len);
	if (r == 0 && is_watched(fd))
		log_fd_op(R_FALLOC, fd, off, len, NULL, 0, 0);
	return r;
}

/* ---- close, dup ---- */

REAL(int, close, int)
REAL(int, dup, int)
REAL(int, dup2, int, int)
REAL(int, dup3, int, int, int)

int close(int fd)
{
	int w = is_watched(fd);
	uint64_t ino = 0;
	int r;

	if (w)
		ino = fd_ino(fd);
	load_close();
	r = real_close(fd);
	if (w) {
		watched[fd] = 0;
		pthread_mutex_lock(&mu);
		emit(R_CLOSE, fd, 0, 0, 0, ino, NULL, NULL, NULL, 0, 0);
		pthread_mutex_unlock(&mu);
	}
	return r;
}

int dup(int fd)
{
	int r;

	load_dup();
	r = real_dup(fd);
	if (r >= 0 && is_watched(fd))
		after_open(r, -1);
	return r;
}

int dup2(int fd, int nfd)
{
	int r;

	load_dup2();
	r = real_dup2(fd, nfd);
	if (r >= 0 && is_watched(fd))
		after_open(r, -1);
	return r;
}

int dup3(int fd, int nfd, int fl)
{
	int r;

	load_dup3();
	r = real_dup3(fd, nfd, fl);
	if (r >= 0 && is_watched(fd))
		after_open(r, -1);
	return r;
}
