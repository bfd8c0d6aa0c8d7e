/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hal/tss-device against a real TPM 2.0 implementation: a swtpm that this
 * test starts plays the host's hardware TPM (SWTPM=path overrides the
 * binary).  The tests share it and run in order; each seals to whatever
 * the PCRs are when it starts, so earlier extends do not matter.
 */
#define _GNU_SOURCE  /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include "proto/migkey.h"
#include "proto/quote.h"
#include "tss-device/tss_hal.h"

#define SEL_0247 0x95u   /* sha256:0,2,4,7, the manager's default */
#define TEST_NV_COUNTER 0x01000c0du
#define TEST_NV_ORDINARY 0x01000c0eu
#define TEST_NV_REPLACED 0x01000c0fu
#define TEST_NV_WIRE 0x01000c10u
#define TEST_NV_ZEROS 0x01000c11u

static char g_dir[64];
static char g_sock[96];
static char g_tcti[160];
static pid_t g_swtpm = -1;
static char err[512];

#define OK(call)                                                         \
	do {                                                             \
		int rc_ = (call);                                        \
		if (rc_)                                                 \
			fail_msg("%s = %d (%s): %s", #call, rc_,         \
				 strerror(-rc_), err);                   \
	} while (0)

/* ---- the stand-in hardware TPM ---------------------------------------- */

static int sock_connects(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ok;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static void swtpm_exec(void)
{
	const char *bin = getenv("SWTPM");
	char state[96], server[160], ctrl[160], log[96];
	int fd;

	if (!bin)
		bin = "swtpm";
	/* No orphan TPM if the test itself is killed. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);

	/* swtpm chats about every client; keep it out of the test report. */
	snprintf(log, sizeof(log), "%s/swtpm.log", g_dir);
	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	snprintf(state, sizeof(state), "dir=%s", g_dir);
	snprintf(server, sizeof(server), "type=unixio,path=%s", g_sock);
	snprintf(ctrl, sizeof(ctrl), "type=unixio,path=%s.ctrl", g_sock);
	execlp(bin, bin, "socket", "--tpm2", "--tpmstate", state, "--server",
	       server, "--ctrl", ctrl, "--flags", "not-need-init,startup-clear",
	       (char *)NULL);
	fprintf(stderr, "cannot run %s: %s\n", bin, strerror(errno));
	_exit(127);
}

static int swtpm_start(void **state)
{
	struct timespec nap = { 0, 20000000L };
	int status;

	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/vtpm-tsshal-XXXXXX");
	if (!mkdtemp(g_dir))
		return -1;
	snprintf(g_sock, sizeof(g_sock), "%s/s", g_dir);
	snprintf(g_tcti, sizeof(g_tcti), "swtpm:path=%s", g_sock);
	/* ESYS logs every TPM error to stderr; the refusals below are
	 * expected ones.  The HAL reports through err, not a log. */
	setenv("TSS2_LOG", "all+none", 1);
	g_swtpm = fork();
	if (g_swtpm < 0)
		return -1;
	if (g_swtpm == 0)
		swtpm_exec();
	for (int i = 0; i < 500; i++) {
		if (sock_connects(g_sock))
			return 0;
		if (waitpid(g_swtpm, &status, WNOHANG) == g_swtpm) {
			fprintf(stderr, "swtpm exited (status 0x%x); see "
				"%s/swtpm.log\n", status, g_dir);
			g_swtpm = -1;
			return -1;
		}
		nanosleep(&nap, NULL);
	}
	fprintf(stderr, "swtpm did not listen on %s within 10 s\n", g_sock);
	return -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static int swtpm_stop(void **state)
{
	(void)state;
	if (g_swtpm > 0) {
		kill(g_swtpm, SIGTERM);
		waitpid(g_swtpm, NULL, 0);
	}
	if (g_dir[0])
		nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static struct tss_hal *hal_open(void)
{
	struct tss_hal *h = NULL;

	OK(tss_hal_open(g_tcti, &h, err, sizeof(err)));
	return h;
}

static void sha256_concat(const uint8_t *a, size_t alen, const uint8_t *b,
			  size_t blen, uint8_t out[32])
{
	uint8_t buf[64];

	memcpy(buf, a, alen);
	memcpy(buf + alen, b, blen);
	SHA256(buf, alen + blen, out);
}

/* ---- pure functions ---------------------------------------------------- */

static void pcr_sel_parse_accepts_valid_and_rejects_hostile(void **state)
{
	static const char *bad[] = {
		"", "sha256", "sha256:", "sha1:0", "SHA256:0", "sha384:0",
		"sha256:24", "sha256:99", "sha256:-1", "sha256:+1",
		"sha256:0,", "sha256:,0", "sha256:0,,1", "sha256: 0",
		"sha256:0 ", " sha256:0", "sha256:007", "sha256:0x7",
		"sha256:1-3", "sha256:0,0", "sha256:7,2,7",
		"sha256:4294967296", "sha256:99999999999999999999",
		"sha256:0;rm -rf /", "sha256:0\n", "sha256:\xff",
		"sha256:0:1", "sha256:0,2,4,7,sha256:8",
	};
	char longsel[4096];
	struct pcr_sel s;
	size_t off;

	(void)state;
	assert_int_equal(pcr_sel_parse("sha256:0,2,4,7", &s), 0);
	assert_int_equal(s.mask, SEL_0247);
	assert_int_equal(pcr_sel_count(&s), 4);
	assert_int_equal(pcr_sel_parse("sha256:7,0", &s), 0);
	assert_int_equal(s.mask, 0x81u);
	assert_int_equal(pcr_sel_parse("sha256:23", &s), 0);
	assert_int_equal(s.mask, 1u << 23);
	assert_int_equal(pcr_sel_parse("sha256:00,09", &s), 0);
	assert_int_equal(s.mask, 0x201u);
	off = (size_t)snprintf(longsel, sizeof(longsel), "sha256:0");
	for (int i = 1; i < 24; i++)
		off += (size_t)snprintf(longsel + off, sizeof(longsel) - off,
					",%d", i);
	assert_int_equal(pcr_sel_parse(longsel, &s), 0);
	assert_int_equal(s.mask, 0xffffffu);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s.mask = 0xdead;
		if (pcr_sel_parse(bad[i], &s) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(s.mask, 0xdead);
	}
	assert_int_equal(pcr_sel_parse(NULL, &s), -EINVAL);
	assert_int_equal(pcr_sel_parse("sha256:0", NULL), -EINVAL);
	/* Long enough to overflow anything that counted in an int. */
	off = (size_t)snprintf(longsel, sizeof(longsel), "sha256:");
	while (off < sizeof(longsel) - 1)
		longsel[off++] = '1';
	longsel[off] = '\0';
	assert_int_equal(pcr_sel_parse(longsel, &s), -EINVAL);
}

/* Expected value from tpm2_createpolicy --policy-pcr -l sha256:0,2,4,7
 * with these PCR values (a trial session on swtpm 0.7.1). */
static void pcr_policy_digest_matches_a_tpm_trial_session(void **state)
{
	static const uint8_t want[32] = {
		0xb2, 0x44, 0xf1, 0x8d, 0xc5, 0x78, 0x3a, 0x37,
		0xe9, 0x7b, 0x43, 0xe8, 0xee, 0x35, 0x63, 0x54,
		0x58, 0xf7, 0xa1, 0x4e, 0xcb, 0x10, 0x9f, 0x25,
		0x3f, 0x2e, 0x02, 0x31, 0xa5, 0xcc, 0x8c, 0x69,
	};
	struct pcr_sel sel = { .mask = SEL_0247 }, empty = { 0 };
	struct pcr_sel wide = { .mask = 1u << 24 };
	uint8_t values[4][32], got[32];

	(void)state;
	for (int i = 0; i < 4; i++)
		memset(values[i], i + 1, 32);
	assert_int_equal(pcr_policy_digest(&sel, (const uint8_t (*)[32])values,
					   got), 0);
	assert_memory_equal(got, want, 32);
	assert_int_equal(pcr_policy_digest(&empty,
					   (const uint8_t (*)[32])values, got),
			 -EINVAL);
	assert_int_equal(pcr_policy_digest(&wide,
					   (const uint8_t (*)[32])values, got),
			 -EINVAL);
}

/* ---- open, primary ------------------------------------------------------ */

static void open_names_an_unreachable_tpm(void **state)
{
	struct tss_hal *h = (struct tss_hal *)1;
	char tcti[200];

	(void)state;
	snprintf(tcti, sizeof(tcti), "swtpm:path=%s/absent", g_dir);
	err[0] = '\0';
	assert_true(tss_hal_open(tcti, &h, err, sizeof(err)) < 0);
	assert_null(h);
	assert_non_null(strstr(err, tcti));
	assert_int_equal(tss_hal_open("no-such-tcti-module", &h, err,
				      sizeof(err)), -ENODEV);
	assert_non_null(strstr(err, "no-such-tcti-module"));
	tss_hal_close(NULL);
}

static void storage_primary_is_the_same_key_after_reopen(void **state)
{
	uint8_t a[TSS_HAL_NAME_LEN], b[TSS_HAL_NAME_LEN];
	struct tss_hal *h;

	(void)state;
	h = hal_open();
	OK(tss_hal_primary(h, err, sizeof(err)));
	OK(tss_hal_primary(h, err, sizeof(err)));  /* kept, not re-made */
	OK(tss_hal_primary_name(h, a, err, sizeof(err)));
	tss_hal_close(h);
	h = hal_open();
	OK(tss_hal_primary_name(h, b, err, sizeof(err)));
	tss_hal_close(h);
	assert_int_equal(a[0], 0x00);  /* nameAlg sha256 */
	assert_int_equal(a[1], 0x0b);
	assert_memory_equal(a, b, TSS_HAL_NAME_LEN);
}

/* ---- sealing ------------------------------------------------------------ */

static void seal(struct tss_hal *h, const uint8_t *secret, size_t len,
		 uint32_t mask, const uint8_t (*expected)[32], uint8_t **blob,
		 size_t *bloblen)
{
	struct pcr_sel sel = { .mask = mask };

	OK(tss_hal_seal(h, secret, len, &sel, expected, blob, bloblen, err,
			sizeof(err)));
}

static void seal_then_unseal_returns_the_secret(void **state)
{
	uint8_t secret[TSS_HAL_SECRET_MAX], out[TSS_HAL_SECRET_MAX];
	struct pcr_sel sel = { .mask = SEL_0247 };
	size_t bloblen, outlen = sizeof(out);
	uint8_t *blob;
	struct tss_hal *h;

	(void)state;
	assert_int_equal(RAND_bytes(secret, sizeof(secret)), 1);
	h = hal_open();
	seal(h, secret, 32, SEL_0247, NULL, &blob, &bloblen);
	assert_memory_equal(blob, TSS_HAL_BLOB_MAGIC, 8);
	assert_null(memmem(blob, bloblen, secret, 32));
	OK(tss_hal_unseal(h, blob, bloblen, out, &outlen, err, sizeof(err)));
	assert_int_equal(outlen, 32);
	assert_memory_equal(out, secret, 32);

	/* The buffer must hold the secret; nothing is written otherwise. */
	memset(out, 0, sizeof(out));
	outlen = 31;
	assert_int_equal(tss_hal_unseal(h, blob, bloblen, out, &outlen, err,
					sizeof(err)), -ENOBUFS);
	assert_int_equal(out[0] | out[30], 0);
	tss_hal_close(h);

	/* A new process (new session, re-made primary) opens it too. */
	h = hal_open();
	outlen = sizeof(out);
	OK(tss_hal_unseal(h, blob, bloblen, out, &outlen, err, sizeof(err)));
	assert_memory_equal(out, secret, 32);
	free(blob);

	seal(h, secret, TSS_HAL_SECRET_MAX, SEL_0247, NULL, &blob, &bloblen);
	outlen = sizeof(out);
	OK(tss_hal_unseal(h, blob, bloblen, out, &outlen, err, sizeof(err)));
	assert_int_equal(outlen, TSS_HAL_SECRET_MAX);
	assert_memory_equal(out, secret, TSS_HAL_SECRET_MAX);
	free(blob);

	assert_int_equal(tss_hal_seal(h, secret, TSS_HAL_SECRET_MAX + 1, &sel,
				      NULL, &blob, &bloblen, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(tss_hal_seal(h, secret, 0, &sel, NULL, &blob,
				      &bloblen, err, sizeof(err)), -EINVAL);
	sel.mask = 0;
	assert_int_equal(tss_hal_seal(h, secret, 32, &sel, NULL, &blob,
				      &bloblen, err, sizeof(err)), -EINVAL);
	tss_hal_close(h);
}

static void extending_a_sealed_pcr_refuses_unseal_naming_only_it(void **state)
{
	uint8_t secret[32], out[TSS_HAL_SECRET_MAX] = { 0 }, digest[32];
	size_t bloblen, outlen = sizeof(out);
	uint8_t *blob;
	struct tss_hal *h;

	(void)state;
	assert_int_equal(RAND_bytes(secret, sizeof(secret)), 1);
	assert_int_equal(RAND_bytes(digest, sizeof(digest)), 1);
	h = hal_open();
	seal(h, secret, sizeof(secret), SEL_0247, NULL, &blob, &bloblen);
	OK(tss_hal_pcr_extend(h, 7, digest, err, sizeof(err)));
	assert_int_equal(tss_hal_unseal(h, blob, bloblen, out, &outlen, err,
					sizeof(err)), -EACCES);
	assert_string_equal(err, "PCR 7 (sha256) differs from the sealed value");
	assert_null(memmem(out, sizeof(out), secret, sizeof(secret)));

	OK(tss_hal_pcr_extend(h, 2, digest, err, sizeof(err)));
	assert_int_equal(tss_hal_unseal(h, blob, bloblen, out, &outlen, err,
					sizeof(err)), -EACCES);
	assert_string_equal(err, "PCRs 2, 7 (sha256) differ from the sealed "
			    "values");
	/* An unsealed PCR moving changes nothing. */
	free(blob);
	seal(h, secret, sizeof(secret), SEL_0247, NULL, &blob, &bloblen);
	OK(tss_hal_pcr_extend(h, 16, digest, err, sizeof(err)));
	outlen = sizeof(out);
	OK(tss_hal_unseal(h, blob, bloblen, out, &outlen, err, sizeof(err)));
	assert_memory_equal(out, secret, sizeof(secret));
	assert_int_equal(tss_hal_pcr_extend(h, 24, digest, err, sizeof(err)),
			 -EINVAL);
	free(blob);
	tss_hal_close(h);
}

/* The planned-upgrade path of docs/sealing.md: seal to the values the
 * PCRs will have after the new boot chain measured itself. */
static void sealing_to_predicted_values_unseals_after_the_change(void **state)
{
	struct pcr_sel sel = { .mask = SEL_0247 };
	uint8_t values[4][32], digest[32], secret[32], out[64];
	size_t bloblen, outlen = sizeof(out);
	uint8_t *blob;
	struct tss_hal *h;

	(void)state;
	assert_int_equal(RAND_bytes(secret, sizeof(secret)), 1);
	assert_int_equal(RAND_bytes(digest, sizeof(digest)), 1);
	h = hal_open();
	OK(tss_hal_pcr_read(h, &sel, values, err, sizeof(err)));
	/* PCR 7 is the fourth selected: new = sha256(old || digest). */
	sha256_concat(values[3], 32, digest, 32, values[3]);
	seal(h, secret, sizeof(secret), SEL_0247,
	     (const uint8_t (*)[32])values, &blob, &bloblen);

	assert_int_equal(tss_hal_unseal(h, blob, bloblen, out, &outlen, err,
					sizeof(err)), -EACCES);
	assert_string_equal(err, "PCR 7 (sha256) differs from the sealed value");
	OK(tss_hal_pcr_extend(h, 7, digest, err, sizeof(err)));
	outlen = sizeof(out);
	OK(tss_hal_unseal(h, blob, bloblen, out, &outlen, err, sizeof(err)));
	assert_int_equal(outlen, sizeof(secret));
	assert_memory_equal(out, secret, sizeof(secret));
	free(blob);
	tss_hal_close(h);
}

static void altered_or_truncated_blob_is_refused_never_crashes(void **state)
{
	static const uint8_t flips[] = { 0x01, 0x80, 0xff };
	uint8_t secret[32], out[TSS_HAL_SECRET_MAX];
	uint8_t big[TSS_HAL_BLOB_MAX + 1] = TSS_HAL_BLOB_MAGIC;
	size_t bloblen, outlen;
	uint8_t *blob, *copy;
	struct tss_hal *h;
	int tpm_refusals = 0;

	(void)state;
	assert_int_equal(RAND_bytes(secret, sizeof(secret)), 1);
	h = hal_open();
	seal(h, secret, sizeof(secret), SEL_0247, NULL, &blob, &bloblen);

	for (size_t len = 0; len < bloblen; len++) {
		/* A copy of exactly len bytes, so ASan sees any overread. */
		copy = malloc(len ? len : 1);
		memcpy(copy, blob, len);
		outlen = sizeof(out);
		if (tss_hal_unseal(h, copy, len, out, &outlen, err,
				   sizeof(err)) != -EINVAL)
			fail_msg("truncated to %zu bytes: not -EINVAL", len);
		free(copy);
	}
	copy = malloc(bloblen + 1);
	for (size_t i = 0; i < bloblen; i++) {
		for (size_t f = 0; f < sizeof(flips); f++) {
			int rc;

			memcpy(copy, blob, bloblen);
			copy[i] ^= flips[f];
			outlen = sizeof(out);
			rc = tss_hal_unseal(h, copy, bloblen, out, &outlen, err,
					    sizeof(err));
			if (rc != -EINVAL && rc != -EACCES)
				fail_msg("byte %zu ^ 0x%02x: %d (%s)", i,
					 flips[f], rc, err);
			tpm_refusals += !!strstr(err, "the TPM refuses");
		}
	}
	/* Trailing garbage. */
	memcpy(copy, blob, bloblen);
	copy[bloblen] = 0;
	outlen = sizeof(out);
	assert_int_equal(tss_hal_unseal(h, copy, bloblen + 1, out, &outlen,
					err, sizeof(err)), -EINVAL);
	/* A later format version, and an absurd length. */
	memcpy(copy, blob, bloblen);
	copy[9] = 2;
	assert_int_equal(tss_hal_unseal(h, copy, bloblen, out, &outlen, err,
					sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "format version 2"));
	free(copy);
	assert_int_equal(tss_hal_unseal(h, big, sizeof(big), out, &outlen,
					err, sizeof(err)), -EINVAL);
	assert_int_equal(tss_hal_unseal(h, NULL, 0, out, &outlen, err,
					sizeof(err)), -EINVAL);

	/* Some flips got past the software checks and the TPM caught them,
	 * and after all that the TPM still opens the real blob. */
	assert_true(tpm_refusals > 0);
	outlen = sizeof(out);
	OK(tss_hal_unseal(h, blob, bloblen, out, &outlen, err, sizeof(err)));
	assert_memory_equal(out, secret, sizeof(secret));
	free(blob);
	tss_hal_close(h);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	FILE *f = fopen(path, "rb");

	assert_non_null(f);
	assert_int_equal(fstat(fileno(f), &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	*len = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	return buf;
}

/*
 * A bus interposer on a discrete TPM sees what the TCTI sends and gets:
 * the pcap TCTI records exactly that.  The secret must not be in it.
 */
static void secret_never_crosses_the_tpm_interface_in_clear(void **state)
{
	uint8_t secret[64], out[64], marker[32];
	char tcti[200], pcap[96];
	size_t bloblen, outlen = sizeof(out), caplen;
	uint8_t *blob, *cap;
	struct tss_hal *h = NULL;

	(void)state;
	assert_int_equal(RAND_bytes(secret, sizeof(secret)), 1);
	assert_int_equal(RAND_bytes(marker, sizeof(marker)), 1);
	snprintf(pcap, sizeof(pcap), "%s/wire.pcap", g_dir);
	snprintf(tcti, sizeof(tcti), "pcap:%s", g_tcti);
	setenv("TCTI_PCAP_FILE", pcap, 1);
	OK(tss_hal_open(tcti, &h, err, sizeof(err)));
	seal(h, secret, sizeof(secret), SEL_0247, NULL, &blob, &bloblen);
	OK(tss_hal_unseal(h, blob, bloblen, out, &outlen, err, sizeof(err)));
	assert_memory_equal(out, secret, sizeof(secret));
	/* Travels in clear: proves the capture holds the traffic. */
	OK(tss_hal_pcr_extend(h, 16, marker, err, sizeof(err)));
	tss_hal_close(h);
	unsetenv("TCTI_PCAP_FILE");

	cap = slurp(pcap, &caplen);
	assert_non_null(memmem(cap, caplen, marker, sizeof(marker)));
	for (size_t i = 0; i + 8 <= sizeof(secret); i++)
		if (memmem(cap, caplen, secret + i, 8))
			fail_msg("secret bytes %zu..%zu on the wire", i, i + 7);
	free(cap);
	free(blob);
}

/* ---- NV counters -------------------------------------------------------- */

/* The manager derives its counter's auth value from the root key; these
 * stand in for it. */
static const uint8_t g_auth[32] = "counter auth: 32 bytes, a key..";
static const uint8_t g_wrong[32] = "counter auth: 32 bytes, a key.,";

#define DEFINE(idx) OK(tss_hal_counter_define(h, (idx), g_auth, \
					      sizeof(g_auth), err, sizeof(err)))
#define CHECK(idx) OK(tss_hal_counter_check(h, (idx), g_auth, \
					    sizeof(g_auth), err, sizeof(err)))
#define READ(idx, v) OK(tss_hal_counter_read(h, (idx), (v), err, sizeof(err)))

static uint64_t counter_value(uint32_t idx)
{
	struct tss_hal *h = hal_open();
	uint64_t v;

	READ(idx, &v);
	tss_hal_close(h);
	return v;
}

/*
 * tpm2-tools, as any other program on the host would use the TPM, with the
 * HAL closed (the swtpm serves one connection at a time).  Its exit status;
 * its output goes to tools.log beside the swtpm state.
 */
static int tpm2_tool(const char *const argv[])
{
	posix_spawn_file_actions_t fa;
	char log[96];
	pid_t pid;
	int status, rc;

	snprintf(log, sizeof(log), "%s/tools.log", g_dir);
	setenv("TPM2TOOLS_TCTI", g_tcti, 1);
	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log,
					 O_WRONLY | O_CREAT | O_APPEND, 0600);
	posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv,
			  environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		fail_msg("cannot run %s (tpm2-tools; tools/deps.sh installs "
			 "it): %s", argv[0], strerror(rc));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		fail_msg("%s: not found (tpm2-tools; tools/deps.sh installs "
			 "it)", argv[0]);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void counter_define_is_idempotent_and_increments_monotonic(void **state)
{
	static const uint8_t zeros[32];
	uint64_t v0, v, prev;
	struct tss_hal *h;

	(void)state;
	h = hal_open();
	DEFINE(TEST_NV_COUNTER);
	READ(TEST_NV_COUNTER, &v0);
	CHECK(TEST_NV_COUNTER);
	DEFINE(TEST_NV_COUNTER);
	READ(TEST_NV_COUNTER, &v);
	assert_int_equal(v, v0);
	prev = v0;
	for (int i = 0; i < 5; i++) {
		OK(tss_hal_counter_increment(h, TEST_NV_COUNTER, g_auth,
					     sizeof(g_auth), &v, err,
					     sizeof(err)));
		assert_int_equal(v, prev + 1);
		prev = v;
	}
	tss_hal_close(h);

	h = hal_open();
	CHECK(TEST_NV_COUNTER);
	DEFINE(TEST_NV_COUNTER);
	READ(TEST_NV_COUNTER, &v);
	assert_int_equal(v, prev);
	assert_int_equal(tss_hal_counter_read(h, TEST_NV_COUNTER + 0x100, &v,
					      err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "0x01000d0d"));
	assert_int_equal(tss_hal_counter_check(h, TEST_NV_COUNTER + 0x100,
					       g_auth, sizeof(g_auth), err,
					       sizeof(err)), -ENOENT);
	assert_int_equal(tss_hal_counter_read(h, 0x81000001, &v, err,
					      sizeof(err)), -EINVAL);
	assert_int_equal(tss_hal_counter_define(h, 0x40000001, g_auth,
						sizeof(g_auth), err,
						sizeof(err)), -EINVAL);

	/* 1..32 bytes, and not nothing in disguise: the TPM drops trailing
	 * zeros, so all-zero would be an empty auth that anyone has. */
	assert_int_equal(tss_hal_counter_define(h, TEST_NV_COUNTER + 0x200,
						NULL, 32, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(tss_hal_counter_define(h, TEST_NV_COUNTER + 0x200,
						g_auth, 0, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(tss_hal_counter_define(h, TEST_NV_COUNTER + 0x200,
						g_auth, 33, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(tss_hal_counter_define(h, TEST_NV_COUNTER + 0x200,
						zeros, 32, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "all zero"));
	assert_int_equal(tss_hal_counter_increment(h, TEST_NV_COUNTER, zeros,
						   1, &v, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(tss_hal_counter_increment(h, TEST_NV_COUNTER, g_auth,
						   sizeof(g_auth), NULL, err,
						   sizeof(err)), -EINVAL);
	READ(TEST_NV_COUNTER, &v);
	assert_int_equal(v, prev);
	tss_hal_close(h);
}

/* An auth value that ends in zero bytes works: the TPM and the HAL both
 * drop them, so the HMACs agree. */
static void counter_auth_with_trailing_zero_bytes_works(void **state)
{
	uint8_t auth[32];
	uint64_t v0, v;
	struct tss_hal *h;

	(void)state;
	assert_int_equal(RAND_bytes(auth, sizeof(auth)), 1);
	auth[0] |= 1;
	memset(auth + 20, 0, 12);
	h = hal_open();
	OK(tss_hal_counter_define(h, TEST_NV_ZEROS, auth, sizeof(auth), err,
				  sizeof(err)));
	READ(TEST_NV_ZEROS, &v0);
	OK(tss_hal_counter_increment(h, TEST_NV_ZEROS, auth, sizeof(auth), &v,
				     err, sizeof(err)));
	assert_int_equal(v, v0 + 1);
	OK(tss_hal_counter_check(h, TEST_NV_ZEROS, auth, 21, err,
				 sizeof(err)));
	auth[31] = 1;  /* a different value */
	assert_int_equal(tss_hal_counter_check(h, TEST_NV_ZEROS, auth,
					       sizeof(auth), err, sizeof(err)),
			 -EPERM);
	tss_hal_close(h);
}

static int lockout_counter(void)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	TPMI_YES_NO more;
	int n = -1;

	assert_int_equal(Tss2_TctiLdr_Initialize(g_tcti, &tcti), 0);
	assert_int_equal(Esys_Initialize(&esys, tcti, NULL), 0);
	assert_int_equal(Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE,
					    ESYS_TR_NONE,
					    TPM2_CAP_TPM_PROPERTIES,
					    TPM2_PT_LOCKOUT_COUNTER, 1, &more,
					    &cap), 0);
	if (cap->data.tpmProperties.count == 1 &&
	    cap->data.tpmProperties.tpmProperty[0].property ==
	    TPM2_PT_LOCKOUT_COUNTER)
		n = (int)cap->data.tpmProperties.tpmProperty[0].value;
	Esys_Free(cap);
	Esys_Finalize(&esys);
	Tss2_TctiLdr_Finalize(&tcti);
	return n;
}

static void counter_refuses_a_wrong_auth_value_and_does_not_move(void **state)
{
	uint64_t before, v = 0xdead;
	int lockouts;
	struct tss_hal *h;

	(void)state;
	h = hal_open();
	DEFINE(TEST_NV_COUNTER);
	tss_hal_close(h);
	before = counter_value(TEST_NV_COUNTER);
	lockouts = lockout_counter();
	assert_true(lockouts >= 0);

	h = hal_open();
	/* More wrong guesses than swtpm's DA lockout allows: NO_DA. */
	for (int i = 0; i < 12; i++) {
		err[0] = '\0';
		assert_int_equal(tss_hal_counter_increment(h, TEST_NV_COUNTER,
							   g_wrong,
							   sizeof(g_wrong), &v,
							   err, sizeof(err)),
				 -EPERM);
		assert_int_equal(v, 0xdead);
		assert_non_null(strstr(err, "0x01000c0d refuses the "
				       "manager's auth value"));
	}
	assert_int_equal(tss_hal_counter_increment(h, TEST_NV_COUNTER, g_auth,
						   16, &v, err, sizeof(err)),
			 -EPERM);
	assert_int_equal(tss_hal_counter_check(h, TEST_NV_COUNTER, g_wrong,
					       sizeof(g_wrong), err,
					       sizeof(err)), -EPERM);
	assert_int_equal(tss_hal_counter_define(h, TEST_NV_COUNTER, g_wrong,
						sizeof(g_wrong), err,
						sizeof(err)), -EPERM);
	READ(TEST_NV_COUNTER, &v);
	assert_int_equal(v, before);
	tss_hal_close(h);
	/* The failures neither counted towards nor triggered the lockout
	 * that protects everyone's DA-protected keys. */
	assert_int_equal(lockout_counter(), lockouts);

	/* And the right value still works. */
	h = hal_open();
	CHECK(TEST_NV_COUNTER);
	OK(tss_hal_counter_increment(h, TEST_NV_COUNTER, g_auth,
				     sizeof(g_auth), &v, err, sizeof(err)));
	assert_int_equal(v, before + 1);
	tss_hal_close(h);
}

/*
 * The denial of service this auth value closes: any program that reaches
 * the TPM, with the owner's (empty) auth, the platform's, or the index's
 * empty auth, used to be able to increment the counter, and the manager
 * then refused its store as a rollback.
 */
static void others_cannot_increment_the_counter(void **state)
{
	char idx[16];
	const char *const nvread[] = { "tpm2_nvread", "-C", "o", "-s", "8",
				       idx, NULL };
	const char *const by_owner[] = { "tpm2_nvincrement", "-C", "o", idx,
					 NULL };
	const char *const by_index[] = { "tpm2_nvincrement", idx, NULL };
	const char *const by_platform[] = { "tpm2_nvincrement", "-C", "p",
					    idx, NULL };
	uint64_t before;
	struct tss_hal *h;

	(void)state;
	snprintf(idx, sizeof(idx), "0x%08x", TEST_NV_COUNTER);
	h = hal_open();
	DEFINE(TEST_NV_COUNTER);
	tss_hal_close(h);
	before = counter_value(TEST_NV_COUNTER);

	/* The tools reach the TPM, and the owner may read. */
	assert_int_equal(tpm2_tool(nvread), 0);
	assert_int_not_equal(tpm2_tool(by_owner), 0);
	assert_int_not_equal(tpm2_tool(by_index), 0);
	assert_int_not_equal(tpm2_tool(by_platform), 0);
	assert_int_equal(counter_value(TEST_NV_COUNTER), before);
}

/*
 * Someone with the owner's auth can still undefine the index and define
 * one of their own there: check, run at every start, tells.
 */
static void check_detects_a_recreated_index(void **state)
{
	char idx[16];
	const char *const undefine[] = { "tpm2_nvundefine", "-C", "o", idx,
					 NULL };
	/* Our attributes, but the empty auth (no -p). */
	const char *const define_ours[] = {
		"tpm2_nvdefine", "-C", "o", "-s", "8", "-a",
		"nt=counter|authread|authwrite|ownerread|no_da", idx, NULL };
	/* The counter of the releases before the auth value. */
	const char *const define_old[] = {
		"tpm2_nvdefine", "-C", "o", "-s", "8", "-a",
		"nt=counter|authread|authwrite|ownerread|ownerwrite|no_da", idx,
		NULL };
	struct tss_hal *h;
	uint64_t v;

	(void)state;
	snprintf(idx, sizeof(idx), "0x%08x", TEST_NV_REPLACED);
	h = hal_open();
	DEFINE(TEST_NV_REPLACED);
	CHECK(TEST_NV_REPLACED);
	tss_hal_close(h);

	assert_int_equal(tpm2_tool(undefine), 0);
	h = hal_open();
	assert_int_equal(tss_hal_counter_check(h, TEST_NV_REPLACED, g_auth,
					       sizeof(g_auth), err,
					       sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "0x01000c0f is not defined"));
	tss_hal_close(h);

	/* Same attributes, another auth value. */
	assert_int_equal(tpm2_tool(define_ours), 0);
	h = hal_open();
	assert_int_equal(tss_hal_counter_check(h, TEST_NV_REPLACED, g_auth,
					       sizeof(g_auth), err,
					       sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "0x01000c0f refuses the manager's auth "
			       "value"));
	assert_int_equal(tss_hal_counter_define(h, TEST_NV_REPLACED, g_auth,
						sizeof(g_auth), err,
						sizeof(err)), -EPERM);
	assert_int_equal(tss_hal_counter_increment(h, TEST_NV_REPLACED, g_auth,
						   sizeof(g_auth), &v, err,
						   sizeof(err)), -EPERM);
	tss_hal_close(h);

	/* Other attributes: an index anyone could increment. */
	assert_int_equal(tpm2_tool(undefine), 0);
	assert_int_equal(tpm2_tool(define_old), 0);
	h = hal_open();
	assert_int_equal(tss_hal_counter_check(h, TEST_NV_REPLACED, g_auth,
					       sizeof(g_auth), err,
					       sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "0x01000c0f is not the manager's counter"));
	assert_non_null(strstr(err, "earlier vtpm-service"));
	assert_int_equal(tss_hal_counter_define(h, TEST_NV_REPLACED, g_auth,
						sizeof(g_auth), err,
						sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "0x01000c0f exists but is not our counter"));
	assert_non_null(strstr(err, "pick another nv-index"));
	assert_non_null(strstr(err, "tpm2_nvundefine -C o 0x01000c0f"));
	tss_hal_close(h);

	/* The operator's way out: undefine, define again. */
	assert_int_equal(tpm2_tool(undefine), 0);
	h = hal_open();
	DEFINE(TEST_NV_REPLACED);
	CHECK(TEST_NV_REPLACED);
	tss_hal_close(h);
}

/* Another program's index, defined with plain ESYS while the HAL is
 * closed (the swtpm serves one connection at a time). */
static void define_ordinary_index(uint32_t idx)
{
	static const TPM2B_AUTH empty;
	TPM2B_NV_PUBLIC pub = {
		.nvPublic = {
			.nvIndex = idx,
			.nameAlg = TPM2_ALG_SHA256,
			.attributes = TPMA_NV_AUTHREAD | TPMA_NV_AUTHWRITE,
			.dataSize = 8,
		},
	};
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	ESYS_TR tr;

	assert_int_equal(Tss2_TctiLdr_Initialize(g_tcti, &tcti), 0);
	assert_int_equal(Esys_Initialize(&esys, tcti, NULL), 0);
	assert_int_equal(Esys_NV_DefineSpace(esys, ESYS_TR_RH_OWNER,
					     ESYS_TR_PASSWORD, ESYS_TR_NONE,
					     ESYS_TR_NONE, &empty, &pub, &tr),
			 0);
	Esys_Finalize(&esys);
	Tss2_TctiLdr_Finalize(&tcti);
}

static void counter_define_refuses_an_index_with_other_attributes(void **state)
{
	struct tss_hal *h;
	uint64_t v;

	(void)state;
	define_ordinary_index(TEST_NV_ORDINARY);
	h = hal_open();
	assert_int_equal(tss_hal_counter_define(h, TEST_NV_ORDINARY, g_auth,
						sizeof(g_auth), err,
						sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "0x01000c0e exists but is not our counter"));
	assert_int_equal(tss_hal_counter_check(h, TEST_NV_ORDINARY, g_auth,
					       sizeof(g_auth), err,
					       sizeof(err)), -EPERM);
	assert_int_not_equal(tss_hal_counter_increment(h, TEST_NV_ORDINARY,
						       g_auth, sizeof(g_auth),
						       &v, err, sizeof(err)),
			     0);
	tss_hal_close(h);
}

/*
 * The auth value is never on the wire: define sends it encrypted, and
 * increment and check only send HMACs keyed with it (pcap TCTI, as for
 * the sealed secret).
 */
static void counter_auth_never_crosses_the_tpm_interface(void **state)
{
	uint8_t auth[32], marker[32];
	char tcti[200], pcap[96];
	size_t caplen;
	uint8_t *cap;
	uint64_t v;
	struct tss_hal *h = NULL;

	(void)state;
	assert_int_equal(RAND_bytes(auth, sizeof(auth)), 1);
	auth[31] |= 1;
	assert_int_equal(RAND_bytes(marker, sizeof(marker)), 1);
	snprintf(pcap, sizeof(pcap), "%s/nv-wire.pcap", g_dir);
	snprintf(tcti, sizeof(tcti), "pcap:%s", g_tcti);
	setenv("TCTI_PCAP_FILE", pcap, 1);
	OK(tss_hal_open(tcti, &h, err, sizeof(err)));
	OK(tss_hal_counter_define(h, TEST_NV_WIRE, auth, sizeof(auth), err,
				  sizeof(err)));
	OK(tss_hal_counter_increment(h, TEST_NV_WIRE, auth, sizeof(auth), &v,
				     err, sizeof(err)));
	OK(tss_hal_counter_check(h, TEST_NV_WIRE, auth, sizeof(auth), err,
				 sizeof(err)));
	assert_int_equal(tss_hal_counter_increment(h, TEST_NV_WIRE, g_wrong,
						   sizeof(g_wrong), &v, err,
						   sizeof(err)), -EPERM);
	OK(tss_hal_pcr_extend(h, 16, marker, err, sizeof(err)));
	tss_hal_close(h);
	unsetenv("TCTI_PCAP_FILE");

	cap = slurp(pcap, &caplen);
	assert_non_null(memmem(cap, caplen, marker, sizeof(marker)));
	for (size_t i = 0; i + 8 <= sizeof(auth); i++)
		if (memmem(cap, caplen, auth + i, 8))
			fail_msg("auth bytes %zu..%zu on the wire", i, i + 7);
	for (size_t i = 0; i + 8 <= sizeof(g_wrong); i++)
		if (memmem(cap, caplen, g_wrong + i, 8))
			fail_msg("wrong auth bytes %zu..%zu on the wire", i,
				 i + 7);
	free(cap);
}


/*
 * A TPM without a resource manager keeps what a killed process left
 * loaded; swtpm has three object and three session slots.
 */
static void objects_left_by_a_killed_process_do_not_block_open(void **state)
{
	static const TPM2B_SENSITIVE_CREATE sens;
	static const TPM2B_DATA outside;
	static const TPML_PCR_SELECTION none;
	static const TPMT_SYM_DEF nosym = { .algorithm = TPM2_ALG_NULL };
	TPM2B_PUBLIC tmpl = {
		.publicArea = {
			.type = TPM2_ALG_KEYEDHASH,
			.nameAlg = TPM2_ALG_SHA256,
			.objectAttributes = TPMA_OBJECT_USERWITHAUTH |
				TPMA_OBJECT_SIGN_ENCRYPT |
				TPMA_OBJECT_SENSITIVEDATAORIGIN,
			.parameters.keyedHashDetail.scheme = {
				.scheme = TPM2_ALG_HMAC,
				.details.hmac.hashAlg = TPM2_ALG_SHA256,
			},
		},
	};
	uint8_t secret[16] = "left behind", out[16];
	size_t bloblen, outlen = sizeof(out);
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	uint8_t *blob;
	struct tss_hal *h;
	ESYS_TR tr;

	(void)state;
	assert_int_equal(Tss2_TctiLdr_Initialize(g_tcti, &tcti), 0);
	assert_int_equal(Esys_Initialize(&esys, tcti, NULL), 0);
	for (int i = 0; i < 3; i++) {
		tmpl.publicArea.unique.keyedHash.size = 1;
		tmpl.publicArea.unique.keyedHash.buffer[0] = (uint8_t)i;
		assert_int_equal(Esys_CreatePrimary(esys, ESYS_TR_RH_NULL,
						    ESYS_TR_PASSWORD,
						    ESYS_TR_NONE, ESYS_TR_NONE,
						    &sens, &tmpl, &outside,
						    &none, &tr, NULL, NULL,
						    NULL, NULL), 0);
		assert_int_equal(Esys_StartAuthSession(esys, ESYS_TR_NONE,
						       ESYS_TR_NONE,
						       ESYS_TR_NONE,
						       ESYS_TR_NONE,
						       ESYS_TR_NONE, NULL,
						       TPM2_SE_HMAC, &nosym,
						       TPM2_ALG_SHA256, &tr),
				 0);
	}
	/* Gone without flushing, as if SIGKILLed. */
	Esys_Finalize(&esys);
	Tss2_TctiLdr_Finalize(&tcti);

	h = hal_open();
	seal(h, secret, sizeof(secret), SEL_0247, NULL, &blob, &bloblen);
	OK(tss_hal_unseal(h, blob, bloblen, out, &outlen, err, sizeof(err)));
	assert_memory_equal(out, secret, sizeof(secret));
	free(blob);
	tss_hal_close(h);
}

/* ---- attestation -------------------------------------------------------- */

static void ak_public_key_is_the_same_after_reopen(void **state)
{
	uint8_t *a, *b;
	const uint8_t *p;
	size_t alen, blen;
	char group[32];
	struct tss_hal *h;
	EVP_PKEY *pkey;

	(void)state;
	h = hal_open();
	OK(tss_hal_ak(h, &a, &alen, err, sizeof(err)));
	tss_hal_close(h);
	h = hal_open();
	OK(tss_hal_ak(h, &b, &blen, err, sizeof(err)));
	tss_hal_close(h);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);

	p = a;
	pkey = d2i_PUBKEY(NULL, &p, (long)alen);
	assert_non_null(pkey);
	assert_ptr_equal(p, a + alen);
	assert_true(EVP_PKEY_is_a(pkey, "EC"));
	assert_int_equal(EVP_PKEY_get_group_name(pkey, group, sizeof(group),
						 NULL), 1);
	assert_string_equal(group, "prime256v1");
	EVP_PKEY_free(pkey);
	free(a);
	free(b);
}

/* A real TPM's quote (swtpm through ESYS) checked by core/proto/quote.c,
 * which vtpmctl uses: the two must agree on every byte. */
static int verify(const uint8_t *spki, size_t spki_len, const uint8_t *attest,
		  size_t attest_len, const uint8_t *sig, size_t sig_len,
		  const uint8_t *qd, size_t qdlen, struct quote_info *got)
{
	struct quote_expect want = { .qd = qd, .qd_len = qdlen };

	return quote_verify(spki, spki_len, attest, attest_len, sig, sig_len,
			    &want, got, err, sizeof(err));
}

static void quote_verifies_and_any_altered_byte_fails(void **state)
{
	struct pcr_sel sel = { .mask = SEL_0247 };
	uint8_t values[4][32], qd[TSS_HAL_QD_MAX + 1], want[32];
	uint8_t *spki, *attest, *sig;
	size_t spki_len, attest_len, sig_len;
	struct quote_expect pcrs;
	struct quote_info got;
	struct tss_hal *h;

	(void)state;
	assert_int_equal(RAND_bytes(qd, sizeof(qd)), 1);
	h = hal_open();
	OK(tss_hal_ak(h, &spki, &spki_len, err, sizeof(err)));
	OK(tss_hal_pcr_read(h, &sel, values, err, sizeof(err)));
	OK(tss_hal_quote(h, qd, 32, &sel, &attest, &attest_len, &sig, &sig_len,
			 err, sizeof(err)));
	assert_int_equal(tss_hal_quote(h, qd, TSS_HAL_QD_MAX + 1, &sel,
				       &attest, &attest_len, &sig, &sig_len,
				       err, sizeof(err)), -EINVAL);
	tss_hal_close(h);

	OK(verify(spki, spki_len, attest, attest_len, sig, sig_len, qd, 32,
		  &got));
	SHA256(values[0], sizeof(values), want);
	assert_memory_equal(got.pcr_digest, want, 32);
	assert_int_equal(got.pcr_mask, SEL_0247);
	/* The same with the values given: the codec hashes them itself. */
	pcrs = (struct quote_expect){ .qd = qd, .qd_len = 32,
				      .pcr_mask = SEL_0247,
				      .pcr_values = (const uint8_t (*)[32])values };
	OK(quote_verify(spki, spki_len, attest, attest_len, sig, sig_len,
			&pcrs, NULL, err, sizeof(err)));
	values[2][0] ^= 1;
	assert_int_equal(quote_verify(spki, spki_len, attest, attest_len, sig,
				      sig_len, &pcrs, NULL, err, sizeof(err)),
			 QUOTE_E_PCR_DIGEST);
	values[2][0] ^= 1;

	/* A changed attestation byte is a bad signature before it is
	 * anything else; a changed signature byte never passes. */
	for (size_t i = 0; i < attest_len; i++) {
		attest[i] ^= 0x01;
		if (verify(spki, spki_len, attest, attest_len, sig, sig_len, qd,
			   32, &got) != QUOTE_E_SIGNATURE)
			fail_msg("attest byte %zu altered: %s", i, err);
		attest[i] ^= 0x01;
	}
	for (size_t i = 0; i < sig_len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			sig[i] ^= (uint8_t)(1u << bit);
			if (verify(spki, spki_len, attest, attest_len, sig,
				   sig_len, qd, 32, &got) == QUOTE_OK)
				fail_msg("sig byte %zu bit %d: verifies", i,
					 bit);
			sig[i] ^= (uint8_t)(1u << bit);
		}
	}
	assert_int_equal(verify(spki, spki_len, attest, attest_len - 1, sig,
				sig_len, qd, 32, &got), QUOTE_E_SIGNATURE);
	assert_int_not_equal(verify(spki, spki_len, attest, attest_len, sig,
				    sig_len - 1, qd, 32, &got), QUOTE_OK);
	assert_int_equal(verify(spki, spki_len, attest, attest_len, sig,
				sig_len, qd, 31, &got), QUOTE_E_NONCE);
	qd[5] ^= 0x20;
	assert_int_equal(verify(spki, spki_len, attest, attest_len, sig,
				sig_len, qd, 32, &got), QUOTE_E_NONCE);
	assert_non_null(strstr(err, "qualifying data"));
	qd[5] ^= 0x20;
	/* Still good, and a broken key is the caller's problem. */
	OK(verify(spki, spki_len, attest, attest_len, sig, sig_len, qd, 32,
		  &got));
	assert_int_equal(verify(spki, spki_len - 1, attest, attest_len, sig,
				sig_len, qd, 32, &got), QUOTE_E_KEY);
	free(spki);
	free(attest);
	free(sig);
}

/* The EK CA's key: made in the TPM, its signatures verify with the
 * public key the blob names, it needs its auth, and any altered or cut
 * blob is refused without a crash. */
static void signing_key_signs_only_with_its_auth(void **state)
{
	uint8_t auth[32], bad[32], digest[32], *blob, *spki, *sig, *b;
	size_t blob_len, spki_len, sig_len, len;
	const uint8_t *p;
	struct tss_hal *h;
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pkey;

	(void)state;
	memset(auth, 0x5a, sizeof(auth));
	memcpy(bad, auth, sizeof(bad));
	bad[0] ^= 1;
	RAND_bytes(digest, sizeof(digest));
	h = hal_open();
	OK(tss_hal_signkey_create(h, auth, sizeof(auth), &blob, &blob_len, err,
				  sizeof(err)));
	assert_memory_equal(blob, "VTPMSKEY", 8);
	OK(tss_hal_signkey_public(blob, blob_len, &spki, &spki_len, err,
				  sizeof(err)));
	OK(tss_hal_signkey_sign(h, blob, blob_len, auth, sizeof(auth), digest,
				&sig, &sig_len, err, sizeof(err)));
	p = spki;
	pkey = d2i_PUBKEY(NULL, &p, (long)spki_len);
	assert_non_null(pkey);
	ctx = EVP_PKEY_CTX_new(pkey, NULL);
	assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
	assert_int_equal(EVP_PKEY_verify(ctx, sig, sig_len, digest, 32), 1);
	digest[0] ^= 1;
	assert_int_equal(EVP_PKEY_verify(ctx, sig, sig_len, digest, 32), 0);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	free(sig);
	free(spki);
	/* Another auth value: the TPM refuses to sign. */
	assert_int_not_equal(tss_hal_signkey_sign(h, blob, blob_len, bad,
						  sizeof(bad), digest, &sig,
						  &sig_len, err, sizeof(err)), 0);
	/* Every cut, and a flip of every header byte: refused. */
	b = malloc(blob_len + 1);
	assert_non_null(b);
	for (len = 0; len < blob_len; len++) {
		memcpy(b, blob, len);
		assert_int_equal(tss_hal_signkey_public(b, len, &spki, &spki_len,
							err, sizeof(err)),
				 -EINVAL);
	}
	for (size_t i = 0; i < 10; i++) {
		memcpy(b, blob, blob_len);
		b[i] ^= 0x40;
		assert_int_equal(tss_hal_signkey_sign(h, b, blob_len, auth,
						      sizeof(auth), digest, &sig,
						      &sig_len, err, sizeof(err)),
				 -EINVAL);
	}
	/* Another parent's name: refused before the TPM sees it. */
	memcpy(b, blob, blob_len);
	b[20] ^= 1;
	assert_int_equal(tss_hal_signkey_sign(h, b, blob_len, auth, sizeof(auth),
					      digest, &sig, &sig_len, err,
					      sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "another storage key"));
	/* The object's attributes (byte 2 of TPMT_PUBLIC's, after the
	 * size, type and nameAlg): not our signing key. */
	memcpy(b, blob, blob_len);
	b[44 + 2 + 2 + 2 + 3] ^= 0x20;
	assert_int_equal(tss_hal_signkey_public(b, blob_len, &spki, &spki_len,
						err, sizeof(err)), -EINVAL);
	/* A byte more. */
	memcpy(b, blob, blob_len);
	b[blob_len] = 0;
	assert_int_equal(tss_hal_signkey_public(b, blob_len + 1, &spki,
						&spki_len, err, sizeof(err)),
			 -EINVAL);
	free(b);
	free(blob);
	tss_hal_close(h);
}

/* The migration key: certified by the AK as proto/migkey checks it, a
 * key wrapped to it by OpenSSL comes back only through this TPM, only
 * with its auth, and garbage or an altered blob is refused. */
static void migration_key_certifies_and_unwraps_only_with_its_auth(void **state)
{
	uint8_t auth[32], bad[32], qd[32], aes[32], w[MIGKEY_MODULUS_LEN];
	uint8_t out[64], *blob, *pub, *att, *sig, *spki, *b;
	size_t blob_len, pub_len, att_len, sig_len, spki_len, n;
	struct migkey k;
	struct tss_hal *h;
	int rc;

	(void)state;
	memset(auth, 0x3c, sizeof(auth));
	memcpy(bad, auth, sizeof(bad));
	bad[5] ^= 1;
	migkey_qd(qd);
	h = hal_open();
	OK(tss_hal_migkey_create(h, auth, sizeof(auth), &blob, &blob_len, err,
				 sizeof(err)));
	assert_memory_equal(blob, "VTPMMKEY", 8);
	OK(tss_hal_migkey_certify(h, blob, blob_len, auth, sizeof(auth), qd,
				  &pub, &pub_len, &att, &att_len, &sig, &sig_len,
				  err, sizeof(err)));
	OK(tss_hal_ak(h, &spki, &spki_len, err, sizeof(err)));
	OK(migkey_verify(pub, pub_len, att, att_len, sig, sig_len, spki,
			 spki_len, spki, spki_len, &k, err, sizeof(err)));
	RAND_bytes(aes, sizeof(aes));
	OK(migkey_wrap(&k, aes, sizeof(aes), w));
	n = sizeof(out);
	OK(tss_hal_migkey_decrypt(h, blob, blob_len, auth, sizeof(auth),
				  MIGKEY_OAEP_LABEL, w, sizeof(w), out, &n, err,
				  sizeof(err)));
	assert_int_equal(n, sizeof(aes));
	assert_memory_equal(out, aes, sizeof(aes));
	/* Another auth value, another label, an altered ciphertext. */
	n = sizeof(out);
	assert_int_not_equal(tss_hal_migkey_decrypt(h, blob, blob_len, bad,
						    sizeof(bad),
						    MIGKEY_OAEP_LABEL, w,
						    sizeof(w), out, &n, err,
						    sizeof(err)), 0);
	n = sizeof(out);
	rc = tss_hal_migkey_decrypt(h, blob, blob_len, auth, sizeof(auth),
				    "another label", w, sizeof(w), out, &n, err,
				    sizeof(err));
	assert_int_equal(rc, -EBADMSG);
	/* and the key still works after the refusals */
	n = sizeof(out);
	OK(tss_hal_migkey_decrypt(h, blob, blob_len, auth, sizeof(auth),
				  MIGKEY_OAEP_LABEL, w, sizeof(w), out, &n, err,
				  sizeof(err)));
	assert_memory_equal(out, aes, sizeof(aes));
	w[100] ^= 1;
	n = sizeof(out);
	assert_int_equal(tss_hal_migkey_decrypt(h, blob, blob_len, auth,
						sizeof(auth), MIGKEY_OAEP_LABEL,
						w, sizeof(w), out, &n, err,
						sizeof(err)), -EBADMSG);
	/* Certification with another auth value: refused by the TPM. */
	free(pub);
	free(att);
	free(sig);
	assert_int_not_equal(tss_hal_migkey_certify(h, blob, blob_len, bad,
						    sizeof(bad), qd, &pub,
						    &pub_len, &att, &att_len,
						    &sig, &sig_len, err,
						    sizeof(err)), 0);
	/* Every cut, a header flip, another parent: refused before the TPM. */
	b = malloc(blob_len + 1);
	assert_non_null(b);
	for (size_t len = 0; len < blob_len; len += 7) {
		memcpy(b, blob, len);
		n = sizeof(out);
		assert_int_equal(tss_hal_migkey_decrypt(h, b, len, auth,
							sizeof(auth),
							MIGKEY_OAEP_LABEL, w,
							sizeof(w), out, &n, err,
							sizeof(err)), -EINVAL);
	}
	memcpy(b, blob, blob_len);
	b[3] ^= 1;
	n = sizeof(out);
	assert_int_equal(tss_hal_migkey_decrypt(h, b, blob_len, auth,
						sizeof(auth), MIGKEY_OAEP_LABEL,
						w, sizeof(w), out, &n, err,
						sizeof(err)), -EINVAL);
	memcpy(b, blob, blob_len);
	b[20] ^= 1;
	n = sizeof(out);
	assert_int_equal(tss_hal_migkey_decrypt(h, b, blob_len, auth,
						sizeof(auth), MIGKEY_OAEP_LABEL,
						w, sizeof(w), out, &n, err,
						sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "another storage key"));
	free(b);
	free(blob);
	free(spki);
	tss_hal_close(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pcr_sel_parse_accepts_valid_and_rejects_hostile),
		cmocka_unit_test(pcr_policy_digest_matches_a_tpm_trial_session),
		cmocka_unit_test(open_names_an_unreachable_tpm),
		cmocka_unit_test(storage_primary_is_the_same_key_after_reopen),
		cmocka_unit_test(seal_then_unseal_returns_the_secret),
		cmocka_unit_test(extending_a_sealed_pcr_refuses_unseal_naming_only_it),
		cmocka_unit_test(sealing_to_predicted_values_unseals_after_the_change),
		cmocka_unit_test(altered_or_truncated_blob_is_refused_never_crashes),
		cmocka_unit_test(secret_never_crosses_the_tpm_interface_in_clear),
		cmocka_unit_test(counter_define_is_idempotent_and_increments_monotonic),
		cmocka_unit_test(counter_define_refuses_an_index_with_other_attributes),
		cmocka_unit_test(counter_auth_with_trailing_zero_bytes_works),
		cmocka_unit_test(counter_refuses_a_wrong_auth_value_and_does_not_move),
		cmocka_unit_test(others_cannot_increment_the_counter),
		cmocka_unit_test(check_detects_a_recreated_index),
		cmocka_unit_test(counter_auth_never_crosses_the_tpm_interface),
		cmocka_unit_test(objects_left_by_a_killed_process_do_not_block_open),
		cmocka_unit_test(ak_public_key_is_the_same_after_reopen),
		cmocka_unit_test(quote_verifies_and_any_altered_byte_fails),
		cmocka_unit_test(signing_key_signs_only_with_its_auth),
		cmocka_unit_test(migration_key_certifies_and_unwraps_only_with_its_auth),
	};

	return cmocka_run_group_tests(tests, swtpm_start, swtpm_stop);
}
