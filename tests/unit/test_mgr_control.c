/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * core/manager's control commands (control.c, commands.c), each handler
 * driven through ctl_dispatch as the socket framing would: a good
 * request, bad or missing arguments, an unknown vTPM.  A fake physical
 * TPM and a fake PCR source stand in (mgr_fixture.h); instances are
 * shell scripts.
 */
#include "mgr_fixture.h"
#include <openssl/sha.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "lib/hex.h"
#include "lib/store.h"
#include "manager/control.h"
#include "manager/rootkey.h"

#define UUID_A "6b2f1d3c-8a4e-4f10-9c2d-3e5f7a9b1c0d"
#define UUID_B "00000000-0000-4000-8000-000000000001"
#define UUID_NONE "11111111-2222-4333-8444-555555555555"

struct call {
	struct ctl_call c;
	json_object *rsp;
	bool done;
};

static void capture(struct ctl_call *c, json_object *o)
{
	struct call *k = (struct call *)c;

	assert_false(k->done);    /* answered exactly once */
	k->rsp = o;
	k->done = true;
}

/* Runs one request line; returns the answer (json_object_put it). */
static json_object *request(struct fixture *f, const char *line)
{
	struct call k;

	memset(&k, 0, sizeof(k));
	k.c.m = &f->m;
	k.c.send = capture;
	ctl_dispatch(&k.c, line);
	run_until(f, &k.done);
	return k.rsp;
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, key, &v));
	return v;
}

static const char *get_str(json_object *o, const char *key)
{
	return json_object_get_string(get(o, key));
}

static void expect_ok(json_object *o)
{
	if (!json_object_get_boolean(get(o, "ok")))
		fail_msg("expected ok: %s", json_object_to_json_string(o));
}

static void expect_error(json_object *o, int code)
{
	assert_false(json_object_get_boolean(get(o, "ok")));
	if (json_object_get_int(get(o, "code")) != code)
		fail_msg("expected code %d: %s", code,
			 json_object_to_json_string(o));
	assert_true(strlen(get_str(o, "error")) > 0);
}

/* One request, one expected error code. */
static void expect(struct fixture *f, const char *line, int code)
{
	json_object *o = request(f, line);

	if (code)
		expect_error(o, code);
	else
		expect_ok(o);
	json_object_put(o);
}

static struct fixture *setup(void)
{
	struct fixture *f = fixture_new(60);

	fixture_exe(f, "exec sleep 30");
	return f;
}

static struct vtpm_entry *find(struct fixture *f, const char *us)
{
	uint8_t uuid[16];

	assert_int_equal(uuid_parse_str(us, uuid), 0);
	return mgr_entry_find(&f->m, uuid);
}

static void create_a(struct fixture *f)
{
	expect(f, "{\"cmd\":\"create\",\"uuid\":\"" UUID_A "\"}", 0);
}

/* ---- framing and dispatch ---- */

static void test_dispatch(void **state)
{
	struct fixture *f = setup();

	(void)state;
	expect(f, "not json", CTL_EINVAL);
	expect(f, "[1,2]", CTL_EINVAL);
	expect(f, "{\"uuid\":\"" UUID_A "\"}", CTL_EINVAL);
	expect(f, "{\"cmd\":7}", CTL_EINVAL);
	expect(f, "{\"cmd\":\"frobnicate\"}", CTL_EINVAL);
	/* Stopping: status and list only. */
	f->m.stopping = true;
	expect(f, "{\"cmd\":\"create\"}", CTL_EBUSY);
	expect(f, "{\"cmd\":\"show\",\"uuid\":\"" UUID_A "\"}", CTL_EBUSY);
	expect(f, "{\"cmd\":\"list\"}", 0);
	expect(f, "{\"cmd\":\"status\"}", 0);
	/* Every command has a handler. */
	for (const struct ctl_command *c = ctl_commands; c->name; c++)
		assert_non_null(c->run);
	fixture_free(f);
}

/* ---- create ---- */

static void test_create(void **state)
{
	struct fixture *f = setup();
	json_object *o;
	struct vtpm_entry *e;
	uint8_t uuid[16];
	uint8_t *buf;
	size_t len;

	(void)state;
	o = request(f, "{\"cmd\":\"create\",\"uuid\":\"" UUID_A "\","
		       "\"domid\":5,\"tpm_version\":\"1.2\","
		       "\"transport\":\"unix:/tmp/x.sock\"}");
	expect_ok(o);
	assert_string_equal(get_str(o, "uuid"), UUID_A);
	json_object_put(o);
	e = find(f, UUID_A);
	assert_non_null(e);
	assert_int_equal(e->rec.domid, 5);
	assert_int_equal(e->rec.tpm_version, 1);
	assert_string_equal(e->rec.transport, "unix:/tmp/x.sock");
	assert_non_null(keystore_find(&f->m.ks, e->rec.uuid));
	/* A new key binds the store to the counter at once. */
	assert_int_equal(ftpm.increments, 1);
	assert_int_equal(store_read(f->m.dirfd, ENTRIES_FILE, 1 << 20, &buf,
				    &len), 0);
	buf[len] = '\0';
	assert_non_null(strstr((char *)buf, UUID_A));
	free(buf);

	/* No uuid: a random version 4 one. */
	o = request(f, "{\"cmd\":\"create\"}");
	expect_ok(o);
	assert_int_equal(uuid_parse_str(get_str(o, "uuid"), uuid), 0);
	assert_int_equal(uuid[6] >> 4, 4);
	json_object_put(o);
	o = request(f, "{\"cmd\":\"create\",\"transport\":\"xen-domain\"}");
	expect_ok(o);
	json_object_put(o);

	expect(f, "{\"cmd\":\"create\",\"uuid\":\"" UUID_A "\"}", CTL_EEXIST);
	expect(f, "{\"cmd\":\"create\",\"uuid\":\"nope\"}", CTL_EINVAL);
	expect(f, "{\"cmd\":\"create\",\"domid\":-1}", CTL_EINVAL);
	expect(f, "{\"cmd\":\"create\",\"domid\":40000}", CTL_EINVAL);
	expect(f, "{\"cmd\":\"create\",\"transport\":\"xen-ring\"}", CTL_EINVAL);
	expect(f, "{\"cmd\":\"create\",\"transport\":\"carrier-pigeon\"}",
	       CTL_EINVAL);
	expect(f, "{\"cmd\":\"create\",\"tpm_version\":\"3.0\"}", CTL_EINVAL);
	assert_int_equal(f->m.ks.nrecs, 3);
	fixture_free(f);
}

/* ---- list / show / status ---- */

static void test_list_show_status(void **state)
{
	struct fixture *f = setup();
	json_object *o, *v;

	(void)state;
	o = request(f, "{\"cmd\":\"list\"}");
	expect_ok(o);
	assert_int_equal(json_object_array_length(get(o, "vtpms")), 0);
	json_object_put(o);
	create_a(f);
	expect(f, "{\"cmd\":\"create\",\"uuid\":\"" UUID_B "\"}", 0);
	o = request(f, "{\"cmd\":\"list\"}");
	expect_ok(o);
	assert_int_equal(json_object_array_length(get(o, "vtpms")), 2);
	json_object_put(o);

	o = request(f, "{\"cmd\":\"show\",\"uuid\":\"" UUID_A "\"}");
	expect_ok(o);
	v = get(o, "vtpm");
	assert_string_equal(get_str(v, "uuid"), UUID_A);
	assert_string_equal(get_str(v, "state"), "stopped");
	assert_string_equal(get_str(v, "transport"), "(default)");
	assert_false(json_object_get_boolean(get(v, "has_state")));
	assert_int_equal(strlen(get_str(v, "state_hash")), 64);
	json_object_put(o);
	expect(f, "{\"cmd\":\"show\",\"uuid\":\"" UUID_NONE "\"}", CTL_ENOENT);
	expect(f, "{\"cmd\":\"show\"}", CTL_EINVAL);
	expect(f, "{\"cmd\":\"show\",\"uuid\":\"xyz\"}", CTL_EINVAL);

	o = request(f, "{\"cmd\":\"status\"}");
	expect_ok(o);
	assert_int_equal(json_object_get_int(get(o, "vtpms")), 2);
	assert_int_equal(json_object_get_int(get(o, "running")), 0);
	assert_int_equal(json_object_get_int64(get(o, "nv_counter")),
			 (int64_t)ftpm.counter);
	assert_int_equal(json_object_get_int64(get(o, "counter_increments")), 2);
	assert_string_equal(get_str(o, "pcrs"), "sha256:0,2,4,7");
	json_object_put(o);
	fixture_free(f);
}

/* ---- start / stop / delete ---- */

/* A connection standing for the ring of an instance in its own domain. */
static bool closed;

static void ring_send(void *conn, const uint8_t *frame, size_t len)
{
	(void)conn;
	(void)frame;
	(void)len;
}

static void ring_close(void *conn)
{
	*(bool *)conn = true;
}

static const struct mgr_conn_ops ring_ops = {
	.send = ring_send,
	.close = ring_close,
};

static void test_start_stop_delete(void **state)
{
	struct fixture *f = setup();
	struct vtpm_entry *e;
	char path[400];

	(void)state;
	expect(f, "{\"cmd\":\"start\",\"uuid\":\"" UUID_NONE "\"}", CTL_ENOENT);
	expect(f, "{\"cmd\":\"start\"}", CTL_EINVAL);
	expect(f, "{\"cmd\":\"stop\",\"uuid\":\"" UUID_NONE "\"}", CTL_ENOENT);
	expect(f, "{\"cmd\":\"stop\",\"uuid\":5}", CTL_EINVAL);
	expect(f, "{\"cmd\":\"delete\",\"uuid\":\"" UUID_NONE "\"}", CTL_ENOENT);
	expect(f, "{\"cmd\":\"delete\"}", CTL_EINVAL);

	create_a(f);
	e = find(f, UUID_A);
	expect(f, "{\"cmd\":\"start\",\"uuid\":\"" UUID_A "\"}", 0);
	assert_int_equal(e->child.state, CHILD_RUNNING);
	assert_true(e->rec.autostart);
	/* A running vTPM cannot be deleted. */
	expect(f, "{\"cmd\":\"delete\",\"uuid\":\"" UUID_A "\"}", CTL_EBUSY);
	/* stop answers once the instance is gone. */
	expect(f, "{\"cmd\":\"stop\",\"uuid\":\"" UUID_A "\"}", 0);
	assert_true(sup_stopped(e));
	assert_false(e->rec.autostart);
	/* delete removes the record and the instance's state. */
	snprintf(path, sizeof(path), "%s/vtpms/%s/vtpm-%s.state.0",
		 f->cfg.state_dir, UUID_A, UUID_A);
	assert_int_equal(close(open(path, O_CREAT | O_WRONLY, 0600)), 0);
	expect(f, "{\"cmd\":\"delete\",\"uuid\":\"" UUID_A "\"}", 0);
	assert_null(find(f, UUID_A));
	assert_int_equal(f->m.ks.nrecs, 0);
	assert_int_not_equal(access(path, F_OK), 0);
	expect(f, "{\"cmd\":\"delete\",\"uuid\":\"" UUID_A "\"}", CTL_ENOENT);

	/* One whose instance runs in its own domain is not started here. */
	expect(f, "{\"cmd\":\"create\",\"uuid\":\"" UUID_B "\","
		  "\"transport\":\"xen-domain\"}", 0);
	expect(f, "{\"cmd\":\"start\",\"uuid\":\"" UUID_B "\"}", CTL_EBUSY);
	/* Deleted while its ring is attached: the ring is closed with it. */
	closed = false;
	mgr_link_attach(find(f, UUID_B), &ring_ops, &closed);
	expect(f, "{\"cmd\":\"delete\",\"uuid\":\"" UUID_B "\"}", 0);
	assert_true(closed);
	fixture_free(f);
}

/* ---- quote ---- */

static uint8_t fake_vtpm_pcr(unsigned int i)
{
	return (uint8_t)(0x10 + i);
}

static int fake_source_read(struct manager *m, struct vtpm_entry *e,
			    uint32_t mask, mgr_pcr_done done, void *arg,
			    char *err, size_t errlen)
{
	struct mgr_pcr_values v;

	(void)m;
	if (strcmp(e->rec.transport, "tcp:127.0.0.1:1") == 0) {
		snprintf(err, errlen, "not from here");
		return -EINVAL;
	}
	memset(&v, 0, sizeof(v));
	v.mask = mask;
	for (unsigned int i = 0; i < 24; i++)
		if (mask & (1u << i))
			memset(v.v[v.n++], fake_vtpm_pcr(i), 32);
	done(arg, 0, &v, "");
	return 0;
}

static const struct mgr_pcr_source fake_source = { .read = fake_source_read };

static void test_quote(void **state)
{
	struct fixture *f = setup();
	struct vtpm_entry *e;
	json_object *o, *vals;
	uint8_t digest[32], qd[32], nonce[4] = { 0xde, 0xad, 0xbe, 0xef };
	uint8_t buf[3 * 32];
	char hx[2 * 38 + 1];

	(void)state;
	f->m.pcrs = &fake_source;
	expect(f, "{\"cmd\":\"quote\",\"uuid\":\"" UUID_NONE "\","
		  "\"nonce\":\"00\"}", CTL_ENOENT);
	expect(f, "{\"cmd\":\"quote\",\"nonce\":\"00\"}", CTL_EINVAL);
	create_a(f);
	e = find(f, UUID_A);
	expect(f, "{\"cmd\":\"quote\",\"uuid\":\"" UUID_A "\","
		  "\"nonce\":\"00\"}", CTL_EBUSY);     /* not running */
	expect(f, "{\"cmd\":\"start\",\"uuid\":\"" UUID_A "\"}", 0);
	expect(f, "{\"cmd\":\"quote\",\"uuid\":\"" UUID_A "\"}", CTL_EINVAL);
	expect(f, "{\"cmd\":\"quote\",\"uuid\":\"" UUID_A "\","
		  "\"nonce\":\"\"}", CTL_EINVAL);
	expect(f, "{\"cmd\":\"quote\",\"uuid\":\"" UUID_A "\","
		  "\"nonce\":\"abc\"}", CTL_EINVAL);
	expect(f, "{\"cmd\":\"quote\",\"uuid\":\"" UUID_A "\","
		  "\"nonce\":\"zz\"}", CTL_EINVAL);
	expect(f, "{\"cmd\":\"quote\",\"uuid\":\"" UUID_A "\","
		  "\"nonce\":\"00\",\"pcr_mask\":0}", CTL_EINVAL);
	expect(f, "{\"cmd\":\"quote\",\"uuid\":\"" UUID_A "\","
		  "\"nonce\":\"00\",\"pcr_mask\":16777216}", CTL_EINVAL);

	o = request(f, "{\"cmd\":\"quote\",\"uuid\":\"" UUID_A "\","
		       "\"nonce\":\"deadbeef\",\"pcr_mask\":7}");
	expect_ok(o);
	assert_string_equal(get_str(o, "uuid"), UUID_A);
	assert_string_equal(get_str(o, "nonce"), "deadbeef");
	assert_int_equal(json_object_get_int64(get(o, "vtpm_pcr_mask")), 7);
	vals = get(o, "vtpm_pcrs");
	assert_int_equal(json_object_array_length(vals), 3);
	for (unsigned int i = 0; i < 3; i++) {
		memset(buf + 32 * i, fake_vtpm_pcr(i), 32);
		hex_encode(buf + 32 * i, 32, hx);
		assert_string_equal(json_object_get_string(
					    json_object_array_get_idx(vals, i)),
				    hx);
	}
	SHA256(buf, sizeof(buf), digest);
	hex_encode(digest, 32, hx);
	assert_string_equal(get_str(o, "vtpm_pcr_digest"), hx);
	mgrproto_deepquote_qd(e->rec.uuid, 7, digest, nonce, sizeof(nonce), qd);
	hex_encode(qd, 32, hx);
	assert_string_equal(get_str(o, "qualifying_data"), hx);
	/* the fake TPM's attest is "ATTEST" || qd */
	memcpy(buf, "ATTEST", 6);
	memcpy(buf + 6, qd, 32);
	hex_encode(buf, 38, hx);
	assert_string_equal(get_str(o, "attest"), hx);
	assert_string_equal(get_str(o, "signature"), "534947");
	assert_string_equal(get_str(o, "ak_spki"), "53504b49");
	assert_string_equal(get_str(o, "host_pcrs"), "sha256:0,2,4,7");
	json_object_put(o);

	/* The TPM fails. */
	ftpm.fail_quote = -EIO;
	expect(f, "{\"cmd\":\"quote\",\"uuid\":\"" UUID_A "\","
		  "\"nonce\":\"01\"}", CTL_EFAIL);
	ftpm.fail_quote = 0;
	/* The source cannot read this vTPM's PCRs. */
	snprintf(e->rec.transport, sizeof(e->rec.transport), "tcp:127.0.0.1:1");
	expect(f, "{\"cmd\":\"quote\",\"uuid\":\"" UUID_A "\","
		  "\"nonce\":\"01\"}", CTL_EINVAL);
	/* The real source asks over the vTPM's manager link, never a
	 * socket path: a vTPM without one cannot be quoted. */
	f->m.pcrs = &mgr_pcr_source_link;
	e->rec.transport[0] = '\0';
	expect(f, "{\"cmd\":\"quote\",\"uuid\":\"" UUID_A "\","
		  "\"nonce\":\"01\"}", CTL_EFAIL);
	expect(f, "{\"cmd\":\"stop\",\"uuid\":\"" UUID_A "\"}", 0);
	fixture_free(f);
}

/* ---- reseal ---- */

static void read_file(struct fixture *f, const char *name, uint8_t **buf,
		      size_t *len)
{
	assert_int_equal(store_read(f->m.dirfd, name, 1 << 20, buf, len), 0);
}

static void test_reseal(void **state)
{
	struct fixture *f = setup();
	json_object *o, *arr;
	uint8_t *buf;
	size_t len;
	uint8_t want[32];
	char hx[65], line[300];

	(void)state;
	assert_int_equal(store_write_atomic(f->m.dirfd, ROOTKEY_FILE,
					    (const uint8_t *)"ORIGINAL", 8), 0);
	f->m.main_seal_verified = true;

	/* PCR 7 predicted, 0, 2, 4 as they are. */
	memset(want, 0x77, 32);
	hex_encode(want, 32, hx);
	snprintf(line, sizeof(line),
		 "{\"cmd\":\"reseal\",\"pcr_values\":{\"7\":\"%s\"}}", hx);
	o = request(f, line);
	expect_ok(o);
	arr = get(o, "sealed_to");
	assert_int_equal(json_object_array_length(arr), 4);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(arr, 3)),
			    hx);
	memset(want, 0xa2, 32);                 /* the fake's PCR 2 */
	hex_encode(want, 32, hx);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(arr, 1)),
			    hx);
	json_object_put(o);
	assert_int_equal(ftpm.seals, 1);
	/* The seal that opened this boot is kept as .prev. */
	read_file(f, ROOTKEY_PREV_FILE, &buf, &len);
	assert_int_equal(len, 8);
	assert_memory_equal(buf, "ORIGINAL", 8);
	free(buf);
	read_file(f, ROOTKEY_FILE, &buf, &len);
	assert_int_equal(len, 6 + 4 * 32);
	assert_memory_equal(buf, "SEALED", 6);
	free(buf);
	assert_false(f->m.main_seal_verified);

	/* A second reseal replaces the prediction, keeps .prev. */
	expect(f, "{\"cmd\":\"reseal\"}", 0);
	read_file(f, ROOTKEY_PREV_FILE, &buf, &len);
	assert_memory_equal(buf, "ORIGINAL", 8);
	free(buf);

	expect(f, "{\"cmd\":\"reseal\",\"pcr_values\":[]}", CTL_EINVAL);
	expect(f, "{\"cmd\":\"reseal\",\"pcr_values\":{\"5\":\"" 
		  "0000000000000000000000000000000000000000000000000000000000000000"
		  "\"}}", CTL_EINVAL);            /* not in the selection */
	expect(f, "{\"cmd\":\"reseal\",\"pcr_values\":{\"7\":\"00\"}}",
	       CTL_EINVAL);
	expect(f, "{\"cmd\":\"reseal\",\"pcr_values\":{\"7\":7}}", CTL_EINVAL);
	expect(f, "{\"cmd\":\"reseal\",\"pcr_values\":{\"x\":\"00\"}}",
	       CTL_EINVAL);
	assert_int_equal(ftpm.seals, 2);
	fixture_free(f);
}

/* ---- the socket's limits (control.c), through a real socket ---- */

static int ctl_connect(struct fixture *f)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->cfg.control);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Runs the loop until the manager closed fd (true) or about ms passed;
 * what it sent is appended to out (up to outlen). */
static bool closed_by_manager(struct fixture *f, int fd, unsigned int ms,
			      char *out, size_t outlen)
{
	size_t used = out ? strlen(out) : 0;
	char sink[4096];
	struct timespec t0, t;

	/* ms of the clock, not of iterations: under a sanitizer on a busy
	 * machine 150 iterations took longer than the 300 ms idle timeout. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 +
			    (t.tv_nsec - t0.tv_nsec) / 1000000 >= (long)ms)
			break;

		uv_run(&f->loop, UV_RUN_NOWAIT);
		while ((n = read(fd, sink, sizeof(sink))) > 0) {
			if (out && used + (size_t)n < outlen) {
				memcpy(out + used, sink, (size_t)n);
				used += (size_t)n;
				out[used] = '\0';
			}
		}
		if (n == 0 || (n < 0 && errno != EAGAIN))
			return true;
		usleep(1000);
	}
	return false;
}

static struct fixture *socket_setup(void)
{
	struct fixture *f = setup();

	f->cfg.max_connections = 2;
	f->cfg.idle_timeout_ms = 300;
	assert_int_equal(control_start(&f->m), 0);
	return f;
}

static void socket_teardown(struct fixture *f)
{
	control_stop(&f->m);
	run_for(f, 20);
	free(f->m.control);
	fixture_free(f);
}

static void test_socket_line_too_long(void **state)
{
	struct fixture *f = socket_setup();
	static char big[600000];
	char out[512] = "";
	int fd = ctl_connect(f);
	size_t off = 0;

	(void)state;
	memset(big, 'x', sizeof(big));
	for (int i = 0; i < 2000 && off < sizeof(big); i++) {
		ssize_t n = write(fd, big + off, sizeof(big) - off);

		if (n > 0)
			off += (size_t)n;
		uv_run(&f->loop, UV_RUN_NOWAIT);
	}
	assert_true(closed_by_manager(f, fd, 2000, out, sizeof(out)));
	assert_non_null(strstr(out, "\"ok\":false"));
	assert_non_null(strstr(out, "longer than 524287 bytes"));
	close(fd);
	socket_teardown(f);
}

static void test_socket_connection_cap(void **state)
{
	struct fixture *f = socket_setup();
	char out[512] = "";
	int a, b, c;

	(void)state;
	a = ctl_connect(f);
	b = ctl_connect(f);
	run_for(f, 20);
	c = ctl_connect(f);
	assert_true(closed_by_manager(f, c, 1000, out, sizeof(out)));
	assert_non_null(strstr(out, "too many control connections"));
	close(c);
	/* The first two are still served; once one goes, a new one is. */
	assert_int_equal(write(a, "{\"cmd\":\"list\"}\n", 15), 15);
	out[0] = '\0';
	assert_false(closed_by_manager(f, a, 100, out, sizeof(out)));
	assert_non_null(strstr(out, "\"ok\":true"));
	close(b);
	run_for(f, 20);
	c = ctl_connect(f);
	assert_int_equal(write(c, "{\"cmd\":\"list\"}\n", 15), 15);
	out[0] = '\0';
	assert_false(closed_by_manager(f, c, 100, out, sizeof(out)));
	assert_non_null(strstr(out, "\"ok\":true"));
	close(a);
	close(c);
	socket_teardown(f);
}

static void test_socket_idle_and_trickle(void **state)
{
	struct fixture *f = socket_setup();
	const char *line = "{\"cmd\":\"list\"}";
	int fd = ctl_connect(f);
	bool gone = false;

	(void)state;
	/* Idle: closed after about 300 ms, not before. */
	assert_false(closed_by_manager(f, fd, 150, NULL, 0));
	assert_true(closed_by_manager(f, fd, 1000, NULL, 0));
	close(fd);
	/* A byte every 50 ms never completes a line: closed all the same. */
	fd = ctl_connect(f);
	for (int i = 0; i < 40 && !gone; i++) {
		if (send(fd, line + i % 14, 1, MSG_NOSIGNAL) < 0)
			gone = true;
		else
			gone = closed_by_manager(f, fd, 50, NULL, 0);
	}
	assert_true(gone);
	close(fd);
	socket_teardown(f);
}

static void test_socket_unread_answers(void **state)
{
	struct fixture *f = socket_setup();
	const char *line = "{\"cmd\":\"status\"}\n";
	size_t len = strlen(line), sent = 0;
	int fd, rcv = 4096;
	bool gone = false;

	(void)state;
	f->cfg.idle_timeout_ms = 0; /* no other reason to close it */
	fd = ctl_connect(f);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	/* Requests, never a read: the answers pile up at the manager. */
	for (int i = 0; i < 200000 && !gone; i++) {
		struct pollfd p = { .fd = fd, .events = 0 };
		ssize_t n = send(fd, line, len, MSG_NOSIGNAL);

		if (n > 0)
			sent += (size_t)n;
		else if (n < 0 && errno != EAGAIN)
			gone = true;
		uv_run(&f->loop, UV_RUN_NOWAIT);
		if (poll(&p, 1, 0) == 1 && (p.revents & POLLHUP))
			gone = true;
	}
	assert_true(gone);
	/* Served a while (answers in the socket buffers), then cut: about
	 * 1 MiB of answers at the manager, not all 200000. */
	assert_true(sent > 64 * 1024 && sent < 200000 * len);
	close(fd);
	socket_teardown(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dispatch),
		cmocka_unit_test(test_create),
		cmocka_unit_test(test_list_show_status),
		cmocka_unit_test(test_start_stop_delete),
		cmocka_unit_test(test_quote),
		cmocka_unit_test(test_reseal),
		cmocka_unit_test(test_socket_line_too_long),
		cmocka_unit_test(test_socket_connection_cap),
		cmocka_unit_test(test_socket_idle_and_trickle),
		cmocka_unit_test(test_socket_unread_answers),
	};

	log_init("test_mgr_control", LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
