/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * core/manager's manager-protocol server (link.c) over a fake connection
 * (struct mgr_conn_ops), as xenmgr.c's ring and link.c's socketpair
 * connect it: each request answered once through ops->send, a
 * SAVEHASHKEY only once the store is durable, answers of a reset
 * connection dropped, management ordinals refused.
 */
#include "mgr_fixture.h"
#include <openssl/sha.h>
#include <time.h>
#include "lib/bytes.h"
#include "lib/store.h"
#include "manager/link.h"

struct fake_conn {
	uint8_t last[MGR_MAX_FRAME];
	size_t len;
	unsigned int sends, requests;
	bool closed;
};

static void fake_send(void *conn, const uint8_t *frame, size_t len)
{
	struct fake_conn *c = conn;

	assert_false(c->closed);
	memcpy(c->last, frame, len);
	c->len = len;
	c->sends++;
}

static void fake_close(void *conn)
{
	((struct fake_conn *)conn)->closed = true;
}

static const struct mgr_conn_ops fake_ops = {
	.send = fake_send,
	.close = fake_close,
};

static void send_req(struct vtpm_entry *e, const struct mgr_req *req)
{
	uint8_t buf[MGR_MAX_FRAME];
	size_t len;

	assert_int_equal(mgrproto_encode_req(req, buf, &len), 0);
	mgr_link_request(e, buf, len);
}

static void answer(struct fake_conn *c, enum mgr_msg type, struct mgr_rsp *rsp)
{
	assert_int_equal(mgrproto_decode_rsp(type, c->last, c->len, rsp), 0);
}

static void wait_sends(struct fixture *f, struct fake_conn *c, unsigned int n)
{
	for (int i = 0; i < 5000 && c->sends < n; i++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		if (c->sends < n)
			usleep(1000);
	}
	assert_int_equal(c->sends, n);
}

static struct vtpm_entry *setup(struct fixture *f, struct fake_conn *c)
{
	struct vtpm_entry *e;
	uint8_t uuid[16];

	memset(uuid, 0x33, 16);
	assert_int_equal(mgr_entry_new(&f->m, uuid, 2, &e), 0);
	memset(c, 0, sizeof(*c));
	mgr_link_attach(e, &fake_ops, c);
	return e;
}

static void test_load_save(void **state)
{
	struct fixture *f = fixture_new(60);
	struct fake_conn c;
	struct vtpm_entry *e = setup(f, &c);
	struct keystore_rec *rec = keystore_find(&f->m.ks, e->rec.uuid);
	struct mgr_req req = { .type = MGR_MSG_LOADHASHKEY };
	struct mgr_rsp rsp;
	unsigned long writes;

	(void)state;
	send_req(e, &req);
	assert_int_equal(c.sends, 1);
	answer(&c, MGR_MSG_LOADHASHKEY, &rsp);
	assert_int_equal(rsp.status, MGR_SUCCESS);
	/* --counter-interval 60: the record may trail the answers. */
	assert_int_equal(rsp.u.load.flags,
			 MGR_LOAD_FLAG_NOSTATE | MGR_LOAD_FLAG_TRAIL);
	assert_memory_equal(rsp.u.load.state_key, rec->state_key, 32);
	assert_false(e->link.busy);

	/* SAVEHASHKEY: answered once durable, not before. */
	memset(&req, 0, sizeof(req));
	req.type = MGR_MSG_SAVEHASHKEY;
	req.u.save.generation = 5;
	memset(req.u.save.state_hash, 0xcd, 32);
	writes = f->m.commits.writes;
	send_req(e, &req);
	assert_int_equal(c.sends, 1);
	assert_true(e->link.busy);
	wait_sends(f, &c, 2);
	assert_int_equal(f->m.commits.writes, writes + 1);
	answer(&c, MGR_MSG_SAVEHASHKEY, &rsp);
	assert_int_equal(rsp.status, MGR_SUCCESS);
	assert_int_equal(rec->generation, 5);
	assert_false(rec->flags & KS_REC_NOSTATE);

	/* Not above the recorded generation: refused at once. */
	send_req(e, &req);
	assert_int_equal(c.sends, 3);
	answer(&c, MGR_MSG_SAVEHASHKEY, &rsp);
	assert_int_equal(rsp.status, MGR_ROLLBACK);

	/* LOADHASHKEY now hands the recorded state over. */
	memset(&req, 0, sizeof(req));
	req.type = MGR_MSG_LOADHASHKEY;
	send_req(e, &req);
	answer(&c, MGR_MSG_LOADHASHKEY, &rsp);
	assert_int_equal(rsp.u.load.generation, 5);
	assert_int_equal(rsp.u.load.flags, MGR_LOAD_FLAG_TRAIL);
	fixture_free(f);

	/* --counter-interval 0, every commit bound to the counter: the
	 * instance answers after the record, so no TRAIL. */
	f = fixture_new(0);
	e = setup(f, &c);
	memset(&req, 0, sizeof(req));
	req.type = MGR_MSG_LOADHASHKEY;
	send_req(e, &req);
	answer(&c, MGR_MSG_LOADHASHKEY, &rsp);
	assert_int_equal(rsp.status, MGR_SUCCESS);
	assert_int_equal(rsp.u.load.flags, MGR_LOAD_FLAG_NOSTATE);
	fixture_free(f);
}

static void test_quote(void **state)
{
	struct fixture *f = fixture_new(60);
	struct fake_conn c;
	struct vtpm_entry *e = setup(f, &c);
	struct mgr_req req = { .type = MGR_MSG_GET_QUOTE };
	struct mgr_rsp rsp;
	uint8_t qd[32];

	(void)state;
	req.u.quote.nonce_len = 3;
	memcpy(req.u.quote.nonce, "abc", 3);
	memset(req.u.quote.pcr_digest, 0x11, 32);
	req.u.quote.pcr_mask = 0x81;
	send_req(e, &req);
	wait_sends(f, &c, 1);
	answer(&c, MGR_MSG_GET_QUOTE, &rsp);
	assert_int_equal(rsp.status, MGR_SUCCESS);
	mgrproto_deepquote_qd(e->rec.uuid, 0x81, req.u.quote.pcr_digest,
			      (const uint8_t *)"abc", 3, qd);
	assert_int_equal(rsp.u.quote.attest_len, 38);
	assert_memory_equal(rsp.u.quote.attest, "ATTEST", 6);
	assert_memory_equal(rsp.u.quote.attest + 6, qd, 32);
	assert_int_equal(rsp.u.quote.sig_len, 3);

	ftpm.fail_quote = -EIO;
	send_req(e, &req);
	wait_sends(f, &c, 2);
	answer(&c, MGR_MSG_GET_QUOTE, &rsp);
	assert_int_equal(rsp.status, MGR_FAIL);
	fixture_free(f);
}

static void test_refusals(void **state)
{
	struct fixture *f = fixture_new(60);
	struct fake_conn c;
	struct vtpm_entry *e = setup(f, &c);
	struct mgr_req req = { .type = MGR_MSG_GROUP_LIST };
	struct mgr_rsp rsp;
	uint8_t junk[MGR_HDR_LEN] = { 0x01, 0xc1, 0, 0, 0, 10, 0x7f, 0, 0, 9 };

	(void)state;
	/* Management goes through the control socket. */
	send_req(e, &req);
	assert_int_equal(mgrproto_decode_rsp(MGR_MSG_GROUP_LIST, c.last, c.len,
					     &rsp), 0);
	assert_int_equal(rsp.status, MGR_FORBIDDEN);
	/* An undecodable request gets a status. */
	mgr_link_request(e, junk, sizeof(junk));
	assert_int_equal(c.sends, 2);
	assert_int_equal(c.len, MGR_HDR_LEN);
	assert_false(e->link.busy);
	/* A vTPM without a record (deleted meanwhile). */
	assert_int_equal(keystore_del(&f->m.ks, e->rec.uuid), 0);
	memset(&req, 0, sizeof(req));
	req.type = MGR_MSG_LOADHASHKEY;
	send_req(e, &req);
	answer(&c, MGR_MSG_LOADHASHKEY, &rsp);
	assert_int_equal(rsp.status, MGR_NOT_FOUND);
	fixture_free(f);
}

static void test_reset_and_close(void **state)
{
	struct fixture *f = fixture_new(60);
	struct fake_conn c, c2;
	struct vtpm_entry *e = setup(f, &c);
	struct keystore_rec *rec = keystore_find(&f->m.ks, e->rec.uuid);
	struct mgr_req req = { .type = MGR_MSG_SAVEHASHKEY };
	bool idle = false;

	(void)state;
	req.u.save.generation = 1;
	send_req(e, &req);
	/* The peer resets before the commit is done: its answer is
	 * dropped, the commit still made. */
	mgr_link_reset(e);
	while (!idle) {
		uv_run(&f->loop, UV_RUN_ONCE);
		idle = mgr_taskq_idle(&f->m.tasks);
	}
	run_for(f, 5);
	assert_int_equal(c.sends, 0);
	assert_int_equal(rec->generation, 1);

	/* Closed with a commit in flight: nothing reaches the old
	 * connection nor the new one. */
	req.u.save.generation = 2;
	send_req(e, &req);
	mgr_link_close(e);
	assert_true(c.closed);
	assert_null(e->link.ops);
	memset(&c2, 0, sizeof(c2));
	mgr_link_attach(e, &fake_ops, &c2);
	run_for(f, 50);
	assert_int_equal(c.sends, 0);
	assert_int_equal(c2.sends, 0);
	fixture_free(f);
}

/* ---- PCR_READ: the manager asks the instance ---- */

struct deep_result {
	bool done;
	int rc;
	char err[256];
	struct mgr_pcr_values pcrs;
	uint8_t qd[32];
	uint64_t at_ms;
};

static void deep_cb(void *arg, int rc, const struct mgr_deep_quote *q,
		    const char *err)
{
	struct deep_result *r = arg;

	r->done = true;
	r->rc = rc;
	r->at_ms = uv_now(uv_default_loop());
	snprintf(r->err, sizeof(r->err), "%s", err);
	if (!rc) {
		r->pcrs = q->pcrs;
		memcpy(r->qd, q->qd, 32);
	}
}

/* A connection that takes the manager's requests and never answers. */
static int silent_request(void *conn, const uint8_t *frame, size_t len)
{
	struct fake_conn *c = conn;

	memcpy(c->last, frame, len);
	c->len = len;
	c->requests++;
	return 0;
}

static const struct mgr_conn_ops silent_ops = {
	.send = fake_send,
	.close = fake_close,
	.request = silent_request,
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The ring's way: PCR_FETCH hands the mask out once, PCR_REPORT ends
 * the read, and the deep quote goes on with the reported values. */
static void test_pcr_mailbox(void **state)
{
	struct fixture *f = fixture_new(60);
	struct fake_conn c;
	struct vtpm_entry *e = setup(f, &c);
	struct mgr_req req;
	struct mgr_rsp rsp;
	struct deep_result r = { 0 };
	uint8_t digest[32], qd[32], vals[2][32];
	char err[200];

	(void)state;
	/* nothing asked yet */
	memset(&req, 0, sizeof(req));
	req.type = MGR_MSG_PCR_FETCH;
	send_req(e, &req);
	answer(&c, MGR_MSG_PCR_FETCH, &rsp);
	assert_int_equal(rsp.status, MGR_SUCCESS);
	assert_int_equal(rsp.u.pcr_fetch.pcr_mask, 0);
	/* an unsolicited report */
	memset(&req, 0, sizeof(req));
	req.type = MGR_MSG_PCR_REPORT;
	req.u.pcr_report.pcr_mask = 0x81;
	req.u.pcr_report.count = 2;
	send_req(e, &req);
	answer(&c, MGR_MSG_PCR_REPORT, &rsp);
	assert_int_equal(rsp.status, MGR_FAIL);

	assert_int_equal(mgr_deep_quote(&f->m, e, (const uint8_t *)"n", 1, 0x81,
					deep_cb, &r, err, sizeof(err)), 0);
	memset(&req, 0, sizeof(req));
	req.type = MGR_MSG_PCR_FETCH;
	send_req(e, &req);
	answer(&c, MGR_MSG_PCR_FETCH, &rsp);
	assert_int_equal(rsp.u.pcr_fetch.pcr_mask, 0x81);
	send_req(e, &req);                  /* handed out once */
	answer(&c, MGR_MSG_PCR_FETCH, &rsp);
	assert_int_equal(rsp.u.pcr_fetch.pcr_mask, 0);
	/* a second quote waits for the first read */
	assert_int_equal(mgr_deep_quote(&f->m, e, (const uint8_t *)"n", 1, 1,
					deep_cb, &r, err, sizeof(err)),
			 -EBUSY);
	memset(&req, 0, sizeof(req));
	req.type = MGR_MSG_PCR_REPORT;
	req.u.pcr_report.pcr_mask = 0x81;
	req.u.pcr_report.count = 2;
	memset(vals[0], 0x10, 32);
	memset(vals[1], 0x17, 32);
	memcpy(req.u.pcr_report.digest, vals, sizeof(vals));
	send_req(e, &req);
	answer(&c, MGR_MSG_PCR_REPORT, &rsp);
	assert_int_equal(rsp.status, MGR_SUCCESS);
	run_until(f, &r.done);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.pcrs.mask, 0x81);
	assert_int_equal(r.pcrs.n, 2);
	SHA256(&vals[0][0], sizeof(vals), digest);
	mgrproto_deepquote_qd(e->rec.uuid, 0x81, digest, (const uint8_t *)"n",
			      1, qd);
	assert_memory_equal(r.qd, qd, 32);

	/* A report of other PCRs than asked fails the quote. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(mgr_deep_quote(&f->m, e, (const uint8_t *)"n", 1, 0x3,
					deep_cb, &r, err, sizeof(err)), 0);
	memset(&req, 0, sizeof(req));
	req.type = MGR_MSG_PCR_FETCH;
	send_req(e, &req);
	req.type = MGR_MSG_PCR_REPORT;
	req.u.pcr_report.pcr_mask = 0x81;
	req.u.pcr_report.count = 2;
	send_req(e, &req);
	run_until(f, &r.done);
	assert_int_equal(r.rc, -EPROTO);
	fixture_free(f);
}

/* An instance that never answers its PCR read delays no other vTPM's
 * commit, and its quote fails at the deadline. */
static void test_silent_instance_stalls_nobody(void **state)
{
	struct fixture *f = fixture_new(0);
	struct fake_conn ca, cb;
	struct vtpm_entry *a, *b;
	struct mgr_req req = { .type = MGR_MSG_SAVEHASHKEY };
	struct deep_result r = { 0 };
	uint8_t uuid[16];
	uint64_t t0, commit_ms;
	char err[200];

	(void)state;
	f->cfg.tpm_timeout_s = 1;
	memset(uuid, 0x44, 16);
	assert_int_equal(mgr_entry_new(&f->m, uuid, 2, &a), 0);
	memset(&ca, 0, sizeof(ca));
	mgr_link_attach(a, &silent_ops, &ca);
	b = setup(f, &cb);
	t0 = now_ms();
	assert_int_equal(mgr_deep_quote(&f->m, a, (const uint8_t *)"n", 1,
					0xffffff, deep_cb, &r, err,
					sizeof(err)), 0);
	assert_int_equal(ca.requests, 1);
	assert_int_equal(be16_get(ca.last), MGR_TAG_MREQ);
	/* B's NV write: SAVEHASHKEY, committed and bound, meanwhile. */
	req.u.save.generation = 1;
	send_req(b, &req);
	wait_sends(f, &cb, 1);
	commit_ms = now_ms() - t0;
	print_message("commit of another vTPM during the silent PCR read: "
		      "%llu ms\n", (unsigned long long)commit_ms);
	assert_true(commit_ms < 500);
	assert_false(r.done);
	run_until(f, &r.done);
	assert_int_equal(r.rc, -ETIMEDOUT);
	assert_non_null(strstr(r.err, "PCR"));
	assert_true(now_ms() - t0 >= 1000);
	/* The read was given up: the link takes a new one, and the
	 * silent instance's link closing ends that one. */
	memset(&r, 0, sizeof(r));
	assert_int_equal(mgr_deep_quote(&f->m, a, (const uint8_t *)"n", 1, 1,
					deep_cb, &r, err, sizeof(err)), 0);
	assert_int_equal(ca.requests, 2);
	mgr_link_close(a);
	assert_true(r.done);
	assert_int_equal(r.rc, -ECONNRESET);
	run_for(f, 5);
	fixture_free(f);
}

/* A physical TPM that hangs: the quote fails at the deadline, the queue
 * is reported stuck and refuses more calls, commits go on unbound, and
 * once the call returns the next commit binds again. */
static void test_hung_tpm(void **state)
{
	struct fixture *f = fixture_new(0);
	struct fake_conn c;
	struct vtpm_entry *e = setup(f, &c);
	struct mgr_req q = { .type = MGR_MSG_GET_QUOTE };
	struct mgr_req s = { .type = MGR_MSG_SAVEHASHKEY };
	struct mgr_rsp rsp;
	unsigned int incr;
	const char *call;
	uint64_t since, t0;

	(void)state;
	f->cfg.tpm_timeout_s = 1;
	f->m.tpmq.deadline_ms = 1000;
	q.u.quote.nonce_len = 1;
	q.u.quote.pcr_mask = 1;
	__atomic_store_n(&ftpm.hang_quote, 1, __ATOMIC_SEQ_CST);
	t0 = now_ms();
	send_req(e, &q);
	wait_sends(f, &c, 1);
	answer(&c, MGR_MSG_GET_QUOTE, &rsp);
	assert_int_equal(rsp.status, MGR_FAIL);
	assert_true(now_ms() - t0 >= 1000 && now_ms() - t0 < 3000);
	assert_true(mgr_taskq_stuck(&f->m.tpmq, &since, &call));
	assert_string_equal(call, "TPM2_Quote");
	/* refused at once while it hangs */
	t0 = now_ms();
	send_req(e, &q);
	wait_sends(f, &c, 2);
	answer(&c, MGR_MSG_GET_QUOTE, &rsp);
	assert_int_equal(rsp.status, MGR_FAIL);
	assert_true(now_ms() - t0 < 500);
	/* commits go on, unbound */
	incr = ftpm.increments;
	s.u.save.generation = 1;
	send_req(e, &s);
	wait_sends(f, &c, 3);
	answer(&c, MGR_MSG_SAVEHASHKEY, &rsp);
	assert_int_equal(rsp.status, MGR_SUCCESS);
	assert_int_equal(ftpm.increments, incr);
	/* the call returns: served again, and the next commit binds */
	__atomic_store_n(&ftpm.hang_quote, 0, __ATOMIC_SEQ_CST);
	for (int i = 0; i < 2000 && mgr_taskq_stuck(&f->m.tpmq, &since, &call);
	     i++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_false(mgr_taskq_stuck(&f->m.tpmq, &since, &call));
	s.u.save.generation = 2;
	send_req(e, &s);
	wait_sends(f, &c, 4);
	answer(&c, MGR_MSG_SAVEHASHKEY, &rsp);
	assert_int_equal(rsp.status, MGR_SUCCESS);
	assert_int_equal(ftpm.increments, incr + 1);
	assert_int_equal(f->m.tpm_counter, ftpm.counter);
	assert_int_equal(f->m.commits.file_counter, ftpm.counter);
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pcr_mailbox),
		cmocka_unit_test(test_silent_instance_stalls_nobody),
		cmocka_unit_test(test_hung_tpm),
		cmocka_unit_test(test_load_save),
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_reset_and_close),
	};

	log_init("test_mgr_link", LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
