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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(atomic_write_replaces_and_leaves_no_temp),
		cmocka_unit_test(symlinks_are_not_followed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
