/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager's side of XEN_PEER and XEN_PEER_STATE (core/manager/
 * xenmgr.c, mgr_xen_peer_answer): what an instance in its own domain may
 * learn about the guest it serves.  The Xen view is a table: xenstore
 * nodes and Xen's domain info as dom0 sees them.  Least privilege: the
 * answer is about a domain whose vtpm device in the asking instance's
 * own domain names the link's vTPM, and the run state only about the
 * domain verified at the connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hex.h"
#include "lib/log.h"
#include "manager/xenmgr.h"
#include "proto/mgrproto.h"
#include "xenbus/xenif.h"

#define IDOM 1u /* the instance domain: the link device's frontend */
#define GUEST 7u
#define OTHER 8u

static const char *US = "3e0c5a7b-9d1f-4c2e-8b6a-5f4e3d2c1b0a";
static const char *THEM = "0badc0de-0000-4000-8000-00000000c0de";
static const char *VM = "/vm/7d517fbd-7c96-48b7-a87d-21b7bc79bdc1";

/* ---- a Xen that is a table ---- */

struct node {
	char path[96];
	char val[96];
};

static struct {
	struct xenif x;
	struct node n[16];
	unsigned int nn;
	int state_rc[16]; /* per domid: 0 or -errno of domain_state */
	enum xenif_domain_state state[16];
	bool no_domain_info;
	unsigned int reads;
} T;

static int t_read(struct xenif *x, const char *path, char **val, size_t *len)
{
	(void)x;
	T.reads++;
	for (unsigned int i = 0; i < T.nn; i++) {
		if (strcmp(T.n[i].path, path) != 0)
			continue;
		*val = strdup(T.n[i].val);
		*len = strlen(T.n[i].val);
		return *val ? 0 : -ENOMEM;
	}
	return -ENOENT;
}

static int t_state(struct xenif *x, uint32_t domid,
		   enum xenif_domain_state *st)
{
	(void)x;
	if (domid >= 16)
		return -ENOENT; /* no domain at or above it: gone */
	if (T.state_rc[domid])
		return T.state_rc[domid];
	*st = T.state[domid];
	return 0;
}

static struct xenif_ops t_ops = {
	.name = "table",
	.xs_read = t_read,
	.domain_state = t_state,
};

static void put(const char *path, const char *val)
{
	for (unsigned int i = 0; i < T.nn; i++) {
		if (strcmp(T.n[i].path, path) == 0) {
			snprintf(T.n[i].val, sizeof(T.n[i].val), "%s", val);
			return;
		}
	}
	assert_true(T.nn < 16);
	snprintf(T.n[T.nn].path, sizeof(T.n[T.nn].path), "%s", path);
	snprintf(T.n[T.nn].val, sizeof(T.n[T.nn].val), "%s", val);
	T.nn++;
}

static void drop(const char *path)
{
	for (unsigned int i = 0; i < T.nn; i++) {
		if (strcmp(T.n[i].path, path) == 0) {
			T.n[i] = T.n[--T.nn];
			return;
		}
	}
}

/* A device of domain fe, number dev, whose backend is domain be. */
static void device(uint32_t be, uint32_t fe, uint32_t dev, const char *uuid)
{
	char p[96];

	snprintf(p, sizeof(p), "/local/domain/%u/backend/vtpm/%u/%u/uuid", be,
		 fe, dev);
	put(p, uuid);
}

static void vm_node(uint32_t dom, const char *vm)
{
	char p[64];

	snprintf(p, sizeof(p), "/local/domain/%u/vm", dom);
	put(p, vm);
}

static int setup(void **state)
{
	(void)state;
	memset(&T, 0, sizeof(T));
	T.x.ops = &t_ops;
	t_ops.domain_state = t_state;
	for (int i = 0; i < 16; i++)
		T.state_rc[i] = -ENOENT;
	T.state_rc[0] = T.state_rc[IDOM] = T.state_rc[GUEST] = 0;
	T.state_rc[OTHER] = 0;
	device(0, IDOM, 0, US);        /* the link itself */
	device(IDOM, GUEST, 0, US);    /* the guest the instance serves */
	device(IDOM, OTHER, 0, THEM);  /* another vTPM's guest, same domain */
	vm_node(GUEST, VM);
	vm_node(OTHER, "/vm/11111111-2222-4333-8444-555555555555");
	return 0;
}

/* ---- asking ---- */

static struct mgr_xen_peer P;
static struct log_ratelimit RL;

static uint32_t ask(enum mgr_msg type, uint32_t dom, uint32_t dev,
		    struct mgr_rsp *rsp)
{
	struct mgr_req q = { .type = type };
	uint8_t us[16];

	q.u.xen_peer.domid = dom;
	q.u.xen_peer.devid = dev;
	assert_int_equal(uuid_parse_str(US, us), 0);
	memset(rsp, 0xee, sizeof(*rsp));
	mgr_xen_peer_answer(&T.x, IDOM, us, US, &P, &RL, &q, rsp);
	/* Whatever it says fits the wire. */
	{
		uint8_t buf[MGR_MAX_FRAME];
		size_t len;

		assert_int_equal(rsp->type, type);
		assert_int_equal(mgrproto_encode_rsp(rsp, buf, &len), 0);
	}
	return rsp->status;
}

static void connect_guest(void)
{
	struct mgr_rsp r;

	memset(&P, 0, sizeof(P));
	assert_int_equal(ask(MGR_MSG_XEN_PEER, GUEST, 0, &r), MGR_SUCCESS);
}

static void the_guest_of_our_device_is_told_its_xen_uuid(void **state)
{
	struct mgr_rsp r;
	uint8_t want[16];

	(void)state;
	memset(&P, 0, sizeof(P));
	assert_int_equal(ask(MGR_MSG_XEN_PEER, GUEST, 0, &r), MGR_SUCCESS);
	assert_int_equal(uuid_parse_str(VM + 4, want), 0);
	assert_memory_equal(r.u.xen_peer.uuid, want, 16);
	assert_true(P.have);
	assert_int_equal(P.dom, GUEST);
	assert_int_equal(P.dev, 0);
	assert_int_equal(P.seen, MGR_XEN_RUNNING);
}

static void a_domain_without_our_device_is_refused(void **state)
{
	struct mgr_rsp r;

	(void)state;
	memset(&P, 0, sizeof(P));
	/* Another vTPM's guest, served from the same instance domain. */
	assert_int_equal(ask(MGR_MSG_XEN_PEER, OTHER, 0, &r), MGR_FORBIDDEN);
	/* No device at all, or another device number. */
	assert_int_equal(ask(MGR_MSG_XEN_PEER, 9, 0, &r), MGR_FORBIDDEN);
	assert_int_equal(ask(MGR_MSG_XEN_PEER, GUEST, 1, &r), MGR_FORBIDDEN);
	/* The instance domain itself, and dom0 (whose link device names
	 * us, but in dom0's backend directory, not the instance's). */
	device(IDOM, IDOM, 0, US);
	vm_node(IDOM, VM);
	assert_int_equal(ask(MGR_MSG_XEN_PEER, IDOM, 0, &r), MGR_FORBIDDEN);
	assert_int_equal(ask(MGR_MSG_XEN_PEER, 0, 0, &r), MGR_FORBIDDEN);
	/* A device naming us under another backend domain does not count:
	 * the backend must be the asking instance's domain. */
	device(2, OTHER + 1, 0, US);
	vm_node(OTHER + 1, VM);
	assert_int_equal(ask(MGR_MSG_XEN_PEER, OTHER + 1, 0, &r), MGR_FORBIDDEN);
	/* Nothing was remembered, nothing leaked. */
	assert_false(P.have);
	assert_int_equal(ask(MGR_MSG_XEN_PEER_STATE, OTHER, 0, &r),
			 MGR_FORBIDDEN);
}

static void hostile_uuid_nodes_are_refused(void **state)
{
	static const char *bad[] = {
		"", "3e0c5a7b", "3e0c5a7b-9d1f-4c2e-8b6a-5f4e3d2c1b0a-",
		"3e0c5a7b-9d1f-4c2e-8b6a-5f4e3d2c1b0g",
		"3e0c5a7b9d1f4c2e8b6a5f4e3d2c1b0a00000",
		" 3e0c5a7b-9d1f-4c2e-8b6a-5f4e3d2c1b0a",
	};
	struct mgr_rsp r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&P, 0, sizeof(P));
		device(IDOM, GUEST, 0, bad[i]);
		assert_int_equal(ask(MGR_MSG_XEN_PEER, GUEST, 0, &r),
				 MGR_FORBIDDEN);
		assert_false(P.have);
	}
}

static void an_unreadable_vm_node_fails(void **state)
{
	static const char *bad[] = {
		"", "/vm/", "/vm/not-a-uuid", "vm/7d517fbd-7c96-48b7-a87d-21b7bc79bdc1",
		"/vm/7d517fbd-7c96-48b7-a87d-21b7bc79bdc1/x",
	};
	struct mgr_rsp r;
	char p[64];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&P, 0, sizeof(P));
		vm_node(GUEST, bad[i]);
		assert_int_equal(ask(MGR_MSG_XEN_PEER, GUEST, 0, &r), MGR_FAIL);
		assert_false(P.have);
	}
	snprintf(p, sizeof(p), "/local/domain/%u/vm", GUEST);
	drop(p);
	assert_int_equal(ask(MGR_MSG_XEN_PEER, GUEST, 0, &r), MGR_FAIL);
	assert_false(P.have);
}

static void run_state_as_xen_says(void **state)
{
	static const struct {
		enum xenif_domain_state xen;
		uint8_t want;
	} map[] = {
		{ XENIF_DOM_RUNNING, MGR_XEN_RUNNING },
		{ XENIF_DOM_PAUSED, MGR_XEN_PAUSED },
		{ XENIF_DOM_SUSPENDED, MGR_XEN_SUSPENDED },
		{ XENIF_DOM_SHUTDOWN, MGR_XEN_SHUTDOWN },
	};
	struct mgr_rsp r;

	(void)state;
	connect_guest();
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		T.state[GUEST] = map[i].xen;
		assert_int_equal(ask(MGR_MSG_XEN_PEER_STATE, GUEST, 0, &r),
				 MGR_SUCCESS);
		assert_int_equal(r.u.xen_state.state, map[i].want);
	}
}

static void run_state_only_for_the_verified_domain(void **state)
{
	struct mgr_rsp r;

	(void)state;
	memset(&P, 0, sizeof(P));
	/* Nothing verified yet. */
	assert_int_equal(ask(MGR_MSG_XEN_PEER_STATE, GUEST, 0, &r),
			 MGR_FORBIDDEN);
	connect_guest();
	assert_int_equal(ask(MGR_MSG_XEN_PEER_STATE, OTHER, 0, &r),
			 MGR_FORBIDDEN);
	assert_int_equal(ask(MGR_MSG_XEN_PEER_STATE, GUEST, 1, &r),
			 MGR_FORBIDDEN);
	assert_int_equal(ask(MGR_MSG_XEN_PEER_STATE, 0, 0, &r), MGR_FORBIDDEN);
	/* A refused XEN_PEER leaves the verified domain as it was. */
	assert_int_equal(ask(MGR_MSG_XEN_PEER, OTHER, 0, &r), MGR_FORBIDDEN);
	assert_int_equal(ask(MGR_MSG_XEN_PEER_STATE, GUEST, 0, &r), MGR_SUCCESS);
	/* The next verified guest replaces it. */
	device(IDOM, GUEST + 1, 0, US);
	vm_node(GUEST + 1, VM);
	T.state_rc[GUEST + 1] = 0;
	assert_int_equal(ask(MGR_MSG_XEN_PEER, GUEST + 1, 0, &r), MGR_SUCCESS);
	assert_int_equal(ask(MGR_MSG_XEN_PEER_STATE, GUEST, 0, &r),
			 MGR_FORBIDDEN);
	assert_int_equal(ask(MGR_MSG_XEN_PEER_STATE, GUEST + 1, 0, &r),
			 MGR_SUCCESS);
}

/* xl save destroys the domain before the instance's question comes:
 * the shutdown the watch saw is the answer; gone unseen is GONE. */
static void a_domain_gone_keeps_the_shutdown_seen(void **state)
{
	struct mgr_rsp r;

	(void)state;
	connect_guest();
	T.state[GUEST] = XENIF_DOM_SUSPENDED;
	mgr_xen_peer_note(&T.x, &P); /* @releaseDomain */
	assert_int_equal(P.seen, MGR_XEN_SUSPENDED);
	T.state_rc[GUEST] = -ENOENT; /* destroyed, a higher domid exists */
	mgr_xen_peer_note(&T.x, &P);
	assert_int_equal(ask(MGR_MSG_XEN_PEER_STATE, GUEST, 0, &r), MGR_SUCCESS);
	assert_int_equal(r.u.xen_state.state, MGR_XEN_SUSPENDED);
	/* Xen's interface failing is not taken for gone (xen_real says
	 * -ENOENT for a destroyed domain, the newest one included). */
	T.state_rc[GUEST] = -EIO;
	assert_int_equal(ask(MGR_MSG_XEN_PEER_STATE, GUEST, 0, &r), MGR_FAIL);

	/* Crashed, then gone. */
	T.state_rc[GUEST] = 0;
	connect_guest();
	T.state[GUEST] = XENIF_DOM_SHUTDOWN;
	mgr_xen_peer_note(&T.x, &P);
	T.state_rc[GUEST] = -ENOENT;
	assert_int_equal(ask(MGR_MSG_XEN_PEER_STATE, GUEST, 0, &r), MGR_SUCCESS);
	assert_int_equal(r.u.xen_state.state, MGR_XEN_SHUTDOWN);

	/* Paused (libxl destroys a running domain so), then gone: not a
	 * suspend. */
	T.state_rc[GUEST] = 0;
	connect_guest();
	T.state[GUEST] = XENIF_DOM_PAUSED;
	mgr_xen_peer_note(&T.x, &P);
	T.state_rc[GUEST] = -ENOENT;
	assert_int_equal(ask(MGR_MSG_XEN_PEER_STATE, GUEST, 0, &r), MGR_SUCCESS);
	assert_int_equal(r.u.xen_state.state, MGR_XEN_GONE);

	/* A suspend cancelled (the domain runs again) is forgotten. */
	T.state_rc[GUEST] = 0;
	connect_guest();
	T.state[GUEST] = XENIF_DOM_SUSPENDED;
	mgr_xen_peer_note(&T.x, &P);
	T.state[GUEST] = XENIF_DOM_RUNNING;
	mgr_xen_peer_note(&T.x, &P);
	T.state_rc[GUEST] = -ENOENT;
	assert_int_equal(ask(MGR_MSG_XEN_PEER_STATE, GUEST, 0, &r), MGR_SUCCESS);
	assert_int_equal(r.u.xen_state.state, MGR_XEN_GONE);
}

static void without_domain_info_the_run_state_fails(void **state)
{
	struct mgr_rsp r;

	(void)state;
	connect_guest();
	T.state_rc[GUEST] = -EPERM; /* no privileged interface */
	assert_int_equal(ask(MGR_MSG_XEN_PEER_STATE, GUEST, 0, &r), MGR_FAIL);
	t_ops.domain_state = NULL;
	assert_int_equal(ask(MGR_MSG_XEN_PEER_STATE, GUEST, 0, &r), MGR_FAIL);
	/* The Xen UUID needs no domain info. */
	assert_int_equal(ask(MGR_MSG_XEN_PEER, GUEST, 0, &r), MGR_SUCCESS);
}

static void other_requests_are_not_answered(void **state)
{
	struct mgr_rsp r;

	(void)state;
	connect_guest();
	assert_int_equal(ask(MGR_MSG_PCR_FETCH, GUEST, 0, &r), MGR_FORBIDDEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T_(f) cmocka_unit_test_setup(f, setup)
		T_(the_guest_of_our_device_is_told_its_xen_uuid),
		T_(a_domain_without_our_device_is_refused),
		T_(hostile_uuid_nodes_are_refused),
		T_(an_unreadable_vm_node_fails),
		T_(run_state_as_xen_says),
		T_(run_state_only_for_the_verified_domain),
		T_(a_domain_gone_keeps_the_shutdown_seen),
		T_(without_domain_info_the_run_state_fails),
		T_(other_requests_are_not_answered),
#undef T_
	};

	log_init("test_mgrproto_xenpeer", LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
