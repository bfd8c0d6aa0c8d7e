/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A manager for unit tests of core/manager: its own loop, a temporary
 * state directory, a fake clock, and a fake physical TPM behind
 * struct mgr_tpm_ops (the real one is exercised by tests/hal and the
 * integration tests, which run the manager against swtpm).
 */
#ifndef VTPM_TEST_MGR_FIXTURE_H
#define VTPM_TEST_MGR_FIXTURE_H

#define _XOPEN_SOURCE 700  /* nftw */
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Each test file uses part of this. */
#pragma GCC diagnostic ignored "-Wunused-function"

#include "lib/log.h"
#include "manager/manager.h"
#include "manager/quote.h"
#include "manager/tpm.h"

/* ---- the fake clock ---- */

static uint64_t fake_now = 1000000;

static uint64_t fake_clock(void)
{
	return fake_now;
}

/* ---- the fake physical TPM ---- */

struct fake_tpm {
	uint64_t counter;         /* the NV counter */
	unsigned int increments;
	int skew;                 /* added to each increment (a foreign one) */
	int fail_quote;           /* -errno */
	int hang_quote;           /* quote blocks while set (a hung TPM) */
	unsigned int seals;
	uint8_t pcrs[24][32];     /* current values of the selection */
};

static struct fake_tpm ftpm;

static int fake_counter_increment(struct manager *m, uint64_t *value,
				  char *err, size_t errlen)
{
	(void)m;
	(void)err;
	(void)errlen;
	ftpm.counter += 1 + (uint64_t)ftpm.skew;
	ftpm.increments++;
	*value = ftpm.counter;
	return 0;
}

static int fake_quote(struct manager *m, const uint8_t *qd, size_t qdlen,
		      uint8_t **attest, size_t *attest_len, uint8_t **sig,
		      size_t *sig_len, char *err, size_t errlen)
{
	(void)m;
	while (__atomic_load_n(&ftpm.hang_quote, __ATOMIC_SEQ_CST))
		usleep(1000);
	if (ftpm.fail_quote) {
		snprintf(err, errlen, "fake quote failure");
		return ftpm.fail_quote;
	}
	/* attest = "ATTEST" || qd, sig = "SIG" */
	*attest = malloc(6 + qdlen);
	*sig = malloc(3);
	memcpy(*attest, "ATTEST", 6);
	memcpy(*attest + 6, qd, qdlen);
	*attest_len = 6 + qdlen;
	memcpy(*sig, "SIG", 3);
	*sig_len = 3;
	return 0;
}

static int fake_ak(struct manager *m, uint8_t **spki, size_t *spki_len,
		   char *err, size_t errlen)
{
	(void)m;
	(void)err;
	(void)errlen;
	*spki = malloc(4);
	memcpy(*spki, "SPKI", 4);
	*spki_len = 4;
	return 0;
}

static int fake_pcr_read(struct manager *m, uint8_t (*values)[32], char *err,
			 size_t errlen)
{
	unsigned int k = 0;

	(void)err;
	(void)errlen;
	for (unsigned int i = 0; i < 24; i++)
		if (m->sel.mask & (1u << i))
			memcpy(values[k++], ftpm.pcrs[i], 32);
	return 0;
}

/* The blob: "SEALED" || the values it is sealed to. */
static int fake_seal(struct manager *m, const uint8_t (*values)[32],
		     uint8_t **blob, size_t *bloblen, char *err, size_t errlen)
{
	unsigned int n = (unsigned int)__builtin_popcount(m->sel.mask);

	(void)err;
	(void)errlen;
	*bloblen = 6 + 32 * (size_t)n;
	*blob = malloc(*bloblen);
	memcpy(*blob, "SEALED", 6);
	memcpy(*blob + 6, values, 32 * (size_t)n);
	ftpm.seals++;
	return 0;
}

static const struct mgr_tpm_ops fake_tpm_ops = {
	.counter_increment = fake_counter_increment,
	.quote = fake_quote,
	.ak = fake_ak,
	.pcr_read = fake_pcr_read,
	.seal_root_key = fake_seal,
};

/* ---- the manager ---- */

struct fixture {
	uv_loop_t loop;
	struct config cfg;
	struct manager m;
	uint8_t key_page[64];     /* root key || NV auth */
	char dir[64];
};

static int rm_one(const char *p, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static struct fixture *fixture_new(long counter_interval_s)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	/* VTPM_TEST_TMPDIR: e.g. a tmpfs, where the key store's fdatasync
	 * costs nothing (fuzz_mgrctl). */
	snprintf(f->dir, sizeof(f->dir), "%s/vtpm-mgrtest-XXXXXX",
		 getenv("VTPM_TEST_TMPDIR") ? getenv("VTPM_TEST_TMPDIR")
					    : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(uv_loop_init(&f->loop), 0);
	config_defaults(&f->cfg);
	f->cfg.role = 0;
	snprintf(f->cfg.state_dir, sizeof(f->cfg.state_dir), "%s/state", f->dir);
	snprintf(f->cfg.run_dir, sizeof(f->cfg.run_dir), "%s/run", f->dir);
	snprintf(f->cfg.control, sizeof(f->cfg.control), "%s/ctl", f->dir);
	snprintf(f->cfg.pcrs, sizeof(f->cfg.pcrs), "sha256:0,2,4,7");
	snprintf(f->cfg.tcti, sizeof(f->cfg.tcti), "fake");
	f->cfg.counter_interval_s = counter_interval_s;
	assert_int_equal(mkdir(f->cfg.state_dir, 0700), 0);

	memset(&ftpm, 0, sizeof(ftpm));
	ftpm.counter = 7;
	for (unsigned int i = 0; i < 24; i++)
		memset(ftpm.pcrs[i], (int)(0xa0 + i), 32);
	fake_now = 1000000;

	f->m.now_ms = fake_clock;
	mgr_init(&f->m, &f->loop, &f->cfg);
	f->m.tpm = &fake_tpm_ops;
	assert_int_equal(pcr_sel_parse(f->cfg.pcrs, &f->m.sel), 0);
	f->m.dirfd = open(f->cfg.state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->m.dirfd >= 0);
	memset(f->key_page, 0x5a, sizeof(f->key_page));
	f->m.root_key = f->key_page;
	f->m.nv_auth = f->key_page + KEYSTORE_ROOT_KEY_LEN;
	keystore_init(&f->m.ks);
	f->m.tpm_counter = ftpm.counter;
	f->m.store_generation = 1;
	snprintf(f->m.exe, sizeof(f->m.exe), "/bin/false");
	return f;
}

/* Runs the loop until *flag or about 15 s have passed. */
static void run_until(struct fixture *f, const bool *flag)
{
	for (int i = 0; i < 15000 && !*flag; i++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		if (!*flag)
			usleep(1000);
	}
	assert_true(*flag);
}

/* Runs the loop for about ms (real time). */
static void run_for(struct fixture *f, unsigned int ms)
{
	for (unsigned int i = 0; i < ms; i++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
}

static void walk_close(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void fixture_free(struct fixture *f)
{
	struct list_node *n, *tmp;

	uv_walk(&f->loop, walk_close, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	list_for_each_safe(n, tmp, &f->m.entries) {
		list_remove(n);
		free(list_item(n, struct vtpm_entry, node));
	}
	uv_loop_close(&f->loop);
	mgr_taskq_close(&f->m.tpmq);
	mgr_commits_close(&f->m.commits);
	close(f->m.dirfd);
	keystore_free(&f->m.ks);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
}

/* A shell script as the instance binary (mode 0755). */
static void fixture_exe(struct fixture *f, const char *body)
{
	FILE *fp;

	snprintf(f->m.exe, sizeof(f->m.exe), "%s/instance.sh", f->dir);
	fp = fopen(f->m.exe, "w");
	assert_non_null(fp);
	fprintf(fp, "#!/bin/sh\n%s\n", body);
	fclose(fp);
	assert_int_equal(chmod(f->m.exe, 0755), 0);
}

#endif
