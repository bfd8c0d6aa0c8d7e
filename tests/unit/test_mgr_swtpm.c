/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * core/manager's TPM paths against real TPMs: swtpm processes this test
 * starts (SWTPM=path overrides the binary) play the host's TPM, reached
 * through the manager's real seam (mgr_tpm_hal over hal/tss-device), and
 * a vTPM, whose PCRs today's PCR source reads over its socket.
 *   - a forced commit increments the real NV counter and the store on
 *     disk is bound to its value; an unforced one within the interval
 *     leaves the counter alone; the store stays fresh against it;
 *   - start-up completes a slot one ahead of the counter, and refuses the
 *     older slot once the counter has moved past it;
 *   - a deep quote of the vTPM verifies with the host's AK and binds the
 *     vTPM's PCR values.
 */
#include "mgr_fixture.h"

#include <openssl/sha.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "lib/bytes.h"
#include "lib/store.h"
#include "proto/quote.h"

#define TEST_NV_COUNTER 0x01000c30u

struct swtpm {
	pid_t pid;
	char dir[64];
	char sock[96];
};

static struct swtpm host_tpm, vtpm;

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

static int swtpm_start(struct swtpm *t)
{
	const char *bin = getenv("SWTPM");
	struct timespec nap = { 0, 20000000L };
	char state[96], server[160], ctrl[160], log[96];
	int status;

	snprintf(t->dir, sizeof(t->dir), "/tmp/vtpm-mgrswtpm-XXXXXX");
	if (!mkdtemp(t->dir))
		return -1;
	snprintf(t->sock, sizeof(t->sock), "%s/s", t->dir);
	t->pid = fork();
	if (t->pid < 0)
		return -1;
	if (t->pid == 0) {
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		snprintf(log, sizeof(log), "%s/swtpm.log", t->dir);
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		snprintf(state, sizeof(state), "dir=%s", t->dir);
		snprintf(server, sizeof(server), "type=unixio,path=%s", t->sock);
		snprintf(ctrl, sizeof(ctrl), "type=unixio,path=%s.ctrl",
			 t->sock);
		if (!bin)
			bin = "swtpm";
		execlp(bin, bin, "socket", "--tpm2", "--tpmstate", state,
		       "--server", server, "--ctrl", ctrl, "--flags",
		       "not-need-init,startup-clear", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		if (sock_connects(t->sock))
			return 0;
		if (waitpid(t->pid, &status, WNOHANG) == t->pid) {
			fprintf(stderr, "swtpm exited (status 0x%x); see "
				"%s/swtpm.log\n", status, t->dir);
			t->pid = -1;
			return -1;
		}
		nanosleep(&nap, NULL);
	}
	return -1;
}

static void swtpm_stop(struct swtpm *t)
{
	if (t->pid > 0) {
		kill(t->pid, SIGTERM);
		waitpid(t->pid, NULL, 0);
	}
	if (t->dir[0])
		nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int group_setup(void **state)
{
	(void)state;
	/* ESYS would log the TPM errors the HAL reports through err. */
	setenv("TSS2_LOG", "all+none", 1);
	if (swtpm_start(&host_tpm) || swtpm_start(&vtpm))
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	swtpm_stop(&host_tpm);
	swtpm_stop(&vtpm);
	return 0;
}

/* A fixture whose TPM is the host swtpm, through the manager's seam. */
static struct fixture *real_fixture(void)
{
	struct fixture *f = fixture_new(60);
	char tcti[160], err[256];

	snprintf(tcti, sizeof(tcti), "swtpm:path=%s", host_tpm.sock);
	f->m.tpm = &mgr_tpm_hal;
	f->cfg.nv_index = TEST_NV_COUNTER;
	if (tss_hal_open(tcti, &f->m.hal, err, sizeof(err)) ||
	    tss_hal_primary(f->m.hal, err, sizeof(err)))
		fail_msg("host swtpm: %s", err);
	if (tss_hal_counter_define(f->m.hal, TEST_NV_COUNTER, f->m.nv_auth,
				   NV_AUTH_LEN, err, sizeof(err)) ||
	    tss_hal_counter_read(f->m.hal, TEST_NV_COUNTER, &f->m.tpm_counter,
				 err, sizeof(err)))
		fail_msg("NV counter: %s", err);
	return f;
}

static void real_fixture_free(struct fixture *f)
{
	tss_hal_close(f->m.hal);
	fixture_free(f);
}

struct waiter {
	bool done;
	int rc;
};

static void waiter_cb(struct manager *m, int rc, void *arg)
{
	struct waiter *w = arg;

	(void)m;
	w->done = true;
	w->rc = rc;
}

static uint64_t tpm_counter(struct fixture *f)
{
	uint64_t v;
	char err[256];

	if (tss_hal_counter_read(f->m.hal, TEST_NV_COUNTER, &v, err,
				 sizeof(err)))
		fail_msg("counter read: %s", err);
	return v;
}

static uint64_t store_counter(struct fixture *f)
{
	struct keystore ks;
	struct keystore_meta meta;
	struct ksfile kf;
	char err[256];

	ksfile_init(&kf);
	assert_int_equal(mgr_store_read(f->m.dirfd, f->m.root_key, &ks, &meta,
					&kf, err, sizeof(err)), 0);
	ksfile_close(&kf);
	keystore_free(&ks);
	return meta.nv_counter;
}

static void commit_and_wait(struct fixture *f, bool force)
{
	struct waiter w = { 0 };

	mgr_commit(&f->m, force, waiter_cb, &w);
	run_until(f, &w.done);
	assert_int_equal(w.rc, 0);
}

static void test_commit_binds_real_counter(void **state)
{
	struct fixture *f = real_fixture();
	uint64_t before = tpm_counter(f);

	(void)state;
	f->m.commits.last_increment_ms = fake_now;
	commit_and_wait(f, true);
	assert_int_equal(tpm_counter(f), before + 1);
	assert_int_equal(f->m.tpm_counter, before + 1);
	assert_int_equal(store_counter(f), before + 1);
	assert_int_equal(keystore_check_fresh(store_counter(f), tpm_counter(f)),
			 0);

	fake_now += 5000;                       /* within the interval */
	commit_and_wait(f, false);
	assert_int_equal(tpm_counter(f), before + 1);
	assert_int_equal(store_counter(f), before + 1);
	assert_int_equal(keystore_check_fresh(store_counter(f), tpm_counter(f)),
			 0);

	fake_now += 60000;                      /* past it */
	commit_and_wait(f, false);
	assert_int_equal(tpm_counter(f), before + 2);
	assert_int_equal(store_counter(f), before + 2);
	real_fixture_free(f);
}

/*
 * Start-up (mgr_store_load) against the real NV counter and the slot
 * file: a slot one ahead of the counter (a bound commit cut off between
 * its write and its increment) is completed; once that slot is
 * destroyed, the older slot, bound to the value before, is refused as a
 * rollback (the manager exits) and nothing on disk changes.
 */
/* In the forked child: exit() (fatalx's exit(1)) ends here, before
 * libuv's destructor tries to join the parent's thread-pool threads,
 * which a forked child does not have. */
static void child_exit_now(void)
{
	_exit(1);
}

static void test_load_real_counter(void **state)
{
	struct fixture *f = real_fixture();
	struct keystore_rec r = { 0 };
	uint8_t *buf, *after;
	size_t len, alen;
	uint64_t c, gen;
	unsigned int newest;
	char err[256];
	int status;
	pid_t pid;

	(void)state;
	f->m.commits.last_increment_ms = fake_now;
	commit_and_wait(f, true);
	c = tpm_counter(f);
	r.tpm_version = 2;
	memset(r.uuid, 0x77, 16);
	assert_int_equal(keystore_add(&f->m.ks, &r), 0);
	gen = f->m.store_generation + 1;
	assert_int_equal(keystore_encode(&f->m.ks, f->m.root_key, gen, c + 1,
					 &buf, &len), 0);
	assert_int_equal(ksfile_write(&f->m.commits.file, f->m.dirfd,
				      KEYSTORE_FILE, buf, len, err, sizeof(err)),
			 0);
	free(buf);
	assert_int_equal(tpm_counter(f), c);    /* the increment never came */

	keystore_free(&f->m.ks);
	mgr_commits_close(&f->m.commits);
	mgr_store_load(&f->m);
	assert_int_equal(tpm_counter(f), c + 1); /* completed */
	assert_int_equal(f->m.tpm_counter, c + 1);
	assert_int_equal(f->m.store_generation, gen);
	assert_int_equal(f->m.ks.nrecs, 1);

	/* The newest slot destroyed: the other one reads c, behind. */
	newest = f->m.commits.file.next ? 0 : 1;
	assert_int_equal(store_read(f->m.dirfd, KEYSTORE_FILE, 1 << 22, &buf,
				    &len), 0);
	buf[keystore_slot_off(f->m.commits.file.slot_size, newest) +
	    KEYSTORE_HDR_LEN] ^= 1;
	assert_int_equal(store_write_atomic(f->m.dirfd, KEYSTORE_FILE, buf, len),
			 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Not cmocka's handlers: a crash must not run the next tests
		 * in this child. */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGABRT, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		signal(SIGILL, SIG_DFL);
		signal(SIGFPE, SIG_DFL);
		atexit(child_exit_now);
		keystore_free(&f->m.ks);
		mgr_commits_close(&f->m.commits);
		mgr_store_load(&f->m);
		_exit(0);                       /* loaded: wrong */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status))
		fail_msg("the refusing load died by signal %d",
			 WIFSIGNALED(status) ? WTERMSIG(status) : -1);
	assert_int_equal(WEXITSTATUS(status), 1);
	assert_int_equal(tpm_counter(f), c + 1);
	assert_int_equal(store_read(f->m.dirfd, KEYSTORE_FILE, 1 << 22, &after,
				    &alen), 0);
	assert_int_equal(alen, len);
	assert_memory_equal(after, buf, len);
	free(after);
	free(buf);
	real_fixture_free(f);
}

struct quoted {
	bool done;
	int rc;
	char err[256];
	uint8_t qd[32], digest[32];
	struct mgr_pcr_values pcrs;
	uint8_t *attest, *sig, *spki;
	size_t attest_len, sig_len, spki_len;
};

static uint8_t *dup_bytes(const uint8_t *b, size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	memcpy(p, b, n);
	return p;
}

static void deep_cb(void *arg, int rc, const struct mgr_deep_quote *q,
		    const char *err)
{
	struct quoted *r = arg;

	r->done = true;
	r->rc = rc;
	snprintf(r->err, sizeof(r->err), "%s", err);
	if (rc)
		return;
	memcpy(r->qd, q->qd, 32);
	memcpy(r->digest, q->digest, 32);
	r->pcrs = q->pcrs;
	r->attest = dup_bytes(q->attest, r->attest_len = q->attest_len);
	r->sig = dup_bytes(q->sig, r->sig_len = q->sig_len);
	r->spki = dup_bytes(q->spki, r->spki_len = q->spki_len);
}

/*
 * The instance's side of PCR_READ, played by a thread: the request from
 * the manager's end of the socketpair, TPM2_PCR_Read against a real TPM
 * (swtpm as the vTPM) with the codec the instance uses, the answer back.
 */
struct pcr_peer {
	int fd;
	bool answer;    /* false: read the request and say nothing */
	pthread_t th;
};

static int xfer(int fd, const uint8_t *cmd, size_t len, uint8_t *rsp,
		size_t max, size_t *rlen)
{
	size_t off = 0;

	if (write(fd, cmd, len) != (ssize_t)len)
		return -1;
	while (off < 10 || off < be32_get(rsp + 2)) {
		ssize_t n = read(fd, rsp + off, max - off);

		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	*rlen = off;
	return 0;
}

static void *pcr_peer_main(void *arg)
{
	struct pcr_peer *p = arg;
	uint8_t frame[MGR_MAX_FRAME], cmd[MGR_PCR_READ_CMD_LEN], rsp[1024];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static struct mgr_rsp out;
	struct mgr_req req;
	size_t off = 0, len;
	uint32_t trc;
	int fd, flen;

	while ((flen = mgrproto_frame_len(frame, off)) == 0) {
		ssize_t n = read(p->fd, frame + off, sizeof(frame) - off);

		if (n <= 0)
			return NULL;
		off += (size_t)n;
	}
	if (flen < 0 || mgrproto_decode_req(frame, (size_t)flen, &req) ||
	    req.type != MGR_MSG_PCR_READ || !p->answer)
		return NULL;
	memset(&out, 0, sizeof(out));
	out.type = MGR_MSG_PCR_READ;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", vtpm.sock);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return NULL;
	while (mgrproto_pcr_read_cmd(req.u.pcr_read.pcr_mask, &out.u.pcr_read,
				     cmd) == 0) {
		if (xfer(fd, cmd, sizeof(cmd), rsp, sizeof(rsp), &len) ||
		    mgrproto_pcr_read_parse(rsp, len, req.u.pcr_read.pcr_mask,
					    &out.u.pcr_read, &trc))
			break;
	}
	close(fd);
	out.status = out.u.pcr_read.pcr_mask == req.u.pcr_read.pcr_mask
			     ? MGR_SUCCESS
			     : MGR_FAIL;
	if (mgrproto_encode_rsp(&out, frame, &len) == 0)
		(void)!write(p->fd, frame, len);
	return NULL;
}

static void pcr_peer_start(struct pcr_peer *p, struct vtpm_entry *e,
			   bool answer)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	assert_int_equal(mgr_link_open_socket(e, sv[0]), 0);
	p->fd = sv[1];
	p->answer = answer;
	assert_int_equal(pthread_create(&p->th, NULL, pcr_peer_main, p), 0);
}

static void pcr_peer_stop(struct pcr_peer *p)
{
	shutdown(p->fd, SHUT_RDWR);
	pthread_join(p->th, NULL);
	close(p->fd);
}

static void test_deep_quote_real(void **state)
{
	struct fixture *f = real_fixture();
	struct vtpm_entry *e;
	struct quoted r = { 0 };
	struct pcr_peer peer;
	struct quote_expect want;
	struct quote_info qi;
	uint8_t uuid[16], digest[32], qd[32], nonce[8] = "nonce-01", zero[32];
	char err[256], verr[256];

	(void)state;
	memset(uuid, 0x42, 16);
	memset(zero, 0, 32);
	assert_int_equal(mgr_entry_new(&f->m, uuid, 2, &e), 0);
	/* The transport names a socket: it is never consulted. */
	snprintf(e->rec.transport, sizeof(e->rec.transport), "unix:%s/none",
		 vtpm.dir);
	assert_ptr_equal(f->m.pcrs, &mgr_pcr_source_link);
	pcr_peer_start(&peer, e, true);
	assert_int_equal(mgr_deep_quote(&f->m, e, nonce, sizeof(nonce),
					0x00ffffff, deep_cb, &r, err,
					sizeof(err)), 0);
	run_until(f, &r.done);
	if (r.rc)
		fail_msg("deep quote: %s", r.err);
	/* every PCR, ascending; 0..15 are zero after a clear start */
	assert_int_equal(r.pcrs.n, 24);
	for (unsigned int i = 0; i < 16; i++)
		assert_memory_equal(r.pcrs.v[i], zero, 32);
	SHA256(&r.pcrs.v[0][0], 32 * 24, digest);
	assert_memory_equal(r.digest, digest, 32);
	mgrproto_deepquote_qd(uuid, 0x00ffffff, digest, nonce, sizeof(nonce),
			      qd);
	assert_memory_equal(r.qd, qd, 32);
	/* The host's AK signed it over that qualifying data. */
	want = (struct quote_expect){ .qd = qd, .qd_len = sizeof(qd) };
	if (quote_verify(r.spki, r.spki_len, r.attest, r.attest_len, r.sig,
			 r.sig_len, &want, &qi, verr, sizeof(verr)))
		fail_msg("quote_verify: %s", verr);
	assert_int_equal(qi.pcr_mask, f->m.sel.mask);
	free(r.attest);
	free(r.sig);
	free(r.spki);
	pcr_peer_stop(&peer);

	/* An instance that hangs up without answering: the read fails. */
	memset(&r, 0, sizeof(r));
	mgr_link_close(e);
	run_for(f, 10);
	pcr_peer_start(&peer, e, false);
	assert_int_equal(mgr_deep_quote(&f->m, e, nonce, sizeof(nonce), 1,
					deep_cb, &r, err, sizeof(err)), 0);
	pcr_peer_stop(&peer);
	run_until(f, &r.done);
	assert_int_not_equal(r.rc, 0);
	mgr_link_close(e);
	run_for(f, 10);
	/* No link at all: refused at once. */
	assert_int_equal(mgr_deep_quote(&f->m, e, nonce, sizeof(nonce), 1,
					deep_cb, &r, err, sizeof(err)),
			 -ENOTCONN);
	real_fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commit_binds_real_counter),
		cmocka_unit_test(test_load_real_counter),
		cmocka_unit_test(test_deep_quote_real),
	};

	log_init("test_mgr_swtpm", LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
