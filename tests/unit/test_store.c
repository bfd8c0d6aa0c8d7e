/* SPDX-License-Identifier: BSD-3-Clause */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/store.h"

static void atomic_write_replaces_and_leaves_no_temp(void **state)
{
	char dir[] = "/tmp/vtpm-store-XXXXXX";
	uint8_t *buf;
	size_t len;
	struct stat st;
	int dfd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	assert_int_equal(store_read(dfd, "f", 100, &buf, &len), -ENOENT);
	assert_int_equal(store_write_atomic(dfd, "f", (const uint8_t *)"one", 3), 0);
	assert_int_equal(store_write_atomic(dfd, "f", (const uint8_t *)"second", 6), 0);
	assert_int_equal(store_read(dfd, "f", 100, &buf, &len), 0);
	assert_int_equal(len, 6);
	assert_memory_equal(buf, "second", 6);
	free(buf);
	assert_int_equal(fstatat(dfd, "f.tmp", &st, 0), -1);
	assert_int_equal(fstatat(dfd, "f", &st, 0), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(store_read(dfd, "f", 5, &buf, &len), -EFBIG);
	unlinkat(dfd, "f", 0);
	close(dfd);
	rmdir(dir);
}

static void symlinks_are_not_followed(void **state)
{
	char dir[] = "/tmp/vtpm-store-XXXXXX";
	uint8_t *buf;
	size_t len;
	int dfd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_int_equal(symlinkat("/etc/passwd", dfd, "f"), 0);
	assert_int_not_equal(store_read(dfd, "f", 1 << 20, &buf, &len), 0);
	assert_int_equal(symlinkat("/tmp/should-not-exist", dfd, "g.tmp"), 0);
	assert_int_not_equal(store_write_atomic(dfd, "g", (const uint8_t *)"x", 1), 0);
	assert_int_equal(access("/tmp/should-not-exist", F_OK), -1);
	unlinkat(dfd, "f", 0);
	unlinkat(dfd, "g.tmp", 0);
	close(dfd);
	rmdir(dir);
}

/* Directories: made (by a path with slashes, from AT_FDCWD too, as an
 * instance does), found again, a link planted at the name refused. */
static void dirs_are_made_and_links_refused(void **state)
{
	char dir[] = "/tmp/vtpm-store-XXXXXX", path[64];
	struct stat st;
	int dfd, fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	assert_int_equal(store_dir_open(dfd, "a", 0700, &fd), 0);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(store_dir_open(dfd, "a", 0700, &fd), 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/a/b", dir);
	assert_int_equal(store_dir_open(AT_FDCWD, path, 0700, &fd), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	close(fd);
	/* Not made without a mode; a missing parent is an error. */
	assert_int_equal(store_dir_open(dfd, "c", 0, &fd), -ENOENT);
	assert_int_equal(store_dir_open(dfd, "x/y", 0700, &fd), -ENOENT);
	assert_int_equal(fd, -1);
	assert_int_equal(symlinkat("/tmp", dfd, "l"), 0);
	assert_int_equal(store_dir_open(dfd, "l", 0700, &fd), -ENOTDIR);
	unlinkat(dfd, "l", 0);
	snprintf(path, sizeof(path), "%s/a/b", dir);
	rmdir(path);
	unlinkat(dfd, "a", AT_REMOVEDIR);
	close(dfd);
	rmdir(dir);
}

/* The in-place primitives of the slot file. */
static void in_place_writes_and_regular_files_only(void **state)
{
	char dir[] = "/tmp/vtpm-store-XXXXXX";
	const char *names[3] = { "gone", "never", "fifo" };
	uint8_t page[8192], back[16];
	uint64_t size;
	struct stat st, st2;
	int dfd, fd, fd2;

	(void)state;
	assert_non_null(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(dfd >= 0);
	memset(page, 0, sizeof(page));
	/* Made by atomic replace, kept open: the inode now at the name. */
	assert_int_equal(store_write_atomic_keep(dfd, "s", page, sizeof(page), &fd), 0);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(fstatat(dfd, "s", &st2, 0), 0);
	assert_int_equal(st.st_ino, st2.st_ino);
	assert_int_equal(fstatat(dfd, "s.tmp", &st2, 0), -1);
	/* In place: same inode, same size, the bytes where they were put. */
	assert_int_equal(store_pwrite_durable(fd, (const uint8_t *)"slot-one", 8, 4096), 0);
	assert_int_equal(fstatat(dfd, "s", &st2, 0), 0);
	assert_int_equal(st2.st_ino, st.st_ino);
	assert_int_equal(st2.st_size, sizeof(page));
	assert_int_equal(store_pread_full(fd, back, 8, 4096), 0);
	assert_memory_equal(back, "slot-one", 8);
	assert_int_equal(store_pread_full(fd, back, 16, sizeof(page) - 8), -EIO);
	close(fd);
	assert_int_equal(store_open_regular(dfd, "s", O_RDWR, &fd, &size), 0);
	assert_int_equal(size, sizeof(page));
	close(fd);
	assert_int_equal(store_open_regular(dfd, "none", O_RDONLY, &fd, &size), -ENOENT);
	assert_int_equal(fd, -1);
	/* A FIFO: no hang, not a regular file; a symlink: not followed. */
	assert_int_equal(mkfifoat(dfd, "fifo", 0600), 0);
	assert_int_equal(store_open_regular(dfd, "fifo", O_RDWR, &fd, &size), -EINVAL);
	assert_int_equal(store_open_regular(dfd, "fifo", O_RDONLY, &fd, &size), -EINVAL);
	{
		uint8_t *buf;
		size_t len;

		assert_int_equal(store_read(dfd, "fifo", 100, &buf, &len), -EINVAL);
	}
	assert_int_equal(symlinkat("s", dfd, "link"), 0);
	assert_int_equal(store_open_regular(dfd, "link", O_RDWR, &fd2, &size), -ELOOP);
	/* Durable unlink: the names that exist, ENOENT is no error. */
	assert_int_equal(store_write_atomic(dfd, "gone", page, 1), 0);
	assert_int_equal(store_unlink_durable(dfd, names, 2), 1);
	assert_int_equal(store_unlink_durable(dfd, names, 2), 0);
	assert_int_equal(store_unlink_durable(dfd, names + 2, 1), 1);
	unlinkat(dfd, "link", 0);
	unlinkat(dfd, "s", 0);
	close(dfd);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(atomic_write_replaces_and_leaves_no_temp),
		cmocka_unit_test(symlinks_are_not_followed),
		cmocka_unit_test(dirs_are_made_and_links_refused),
		cmocka_unit_test(in_place_writes_and_regular_files_only),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
