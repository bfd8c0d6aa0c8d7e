/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Xen vTPM ring as an instance transport: tpmback (the backend state
 * machine) on the real Xen libraries, connected to the instance's job
 * queue.  The vTPM's identity is the uuid node the toolstack wrote, which
 * must equal --uuid.
 *
 * Xen save/restore (docs/migration.md) needs the guest's Xen UUID and run
 * state.  In dom0 (or a domain with the privileged interface) this
 * instance reads them; in an instance domain of its own (the three-domain
 * chain) it cannot, and asks its manager (XEN_PEER, XEN_PEER_STATE) from
 * jobs on the thread pool, so that the loop never waits for the answer.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tpmif/devwatch.h"
#include "lib/hex.h"
#include "instance/engine.h"
#include "lib/log.h"
#include "proto/resumetag.h"
#include "tpmif/tpmback.h"
#include "instance/vtpm.h"
#include "proto/mgrproto.h"
#include "xen-ring/xen_ring.h"

/* How long a connection or a device's removal waits for the manager's
 * answer about the guest's domain before it goes on without it. */
#define ASK_MS 5000

struct xring {
	struct transport *t;
	struct xenif *xif;
	struct tpmback tb;
	struct vtpm_job job;
	struct vtpm_job reset;
	bool job_pending;
	bool reset_pending;
	void (*stopped)(struct transport *t);

	/* --domid any: serve whichever device names our UUID */
	bool any;
	struct xenif *wxif;	 /* devwatch's own connection */
	struct devwatch dw;
	bool dw_running;
	uint32_t self;
	bool tb_active, tb_stopping;
	struct devwatch_dev cur;	 /* the device tb serves */
	bool have_next;
	struct devwatch_dev next; /* named us while tb was busy */
	bool stopping;
	struct log_ratelimit rl;

	/* Xen save/restore (docs/migration.md).  peer: the connected
	 * frontend's domain, its device and its Xen UUID (have_vm: the
	 * toolstack's /local/domain/F/vm was readable). */
	struct resume_tag peer;
	bool have_vm;
	struct vtpm_job conn_job, save_job;
	bool conn_pending, save_pending;
	/* A frontend went away without closing and its volatile state is
	 * not on disk yet: the stop saves it if the job could not. */
	bool save_owed;
	uint8_t save_tag[RESUMETAG_LEN];

	/* This connection's Xen UUID and run state come from the manager
	 * (the three-domain chain); set on the loop thread at the
	 * connection.  The jobs that ask run on the thread pool, one at a
	 * time, in queue order. */
	bool ask;
	struct vtpm_job ask_save_job;
	bool ask_save_pending;
	/* The connection as its job saw it (and completed it with the
	 * manager's answer): the thread pool's own copy of peer/have_vm,
	 * for that job and the removal's job queued behind it. */
	struct resume_tag jpeer;
	bool jhave_vm;
};

static void cmd_done(struct vtpm_job *job)
{
	struct xring *x = job->data;

	x->job_pending = false;
	tpmback_complete(&x->tb, job->status ? NULL : job->rsp,
			 job->status ? 0 : job->rsp_len);
}

static void ring_submit(struct tpmback *tb, const uint8_t *cmd, uint32_t len,
			unsigned int locality)
{
	struct xring *x = tb->data;

	x->job.kind = VTPM_JOB_CMD;
	x->job.cmd = cmd;
	x->job.cmd_len = len;
	x->job.locality = (int)locality;
	x->job.done = cmd_done;
	x->job.data = x;
	x->job_pending = true;
	vtpm_submit(x->t->vtpm, &x->job);
}

static void ring_cancel(struct tpmback *tb)
{
	struct xring *x = tb->data;

	if (!x->job_pending)
		return;
	if (vtpm_withdraw(x->t->vtpm, &x->job)) {
		/* Never started: its done() will not run. */
		x->job_pending = false;
		tpmback_complete(tb, NULL, 0);
	} else {
		vtpm_cancel(x->t->vtpm);
	}
}

/*
 * A guest that reconnects finds its TPM as after a power cycle: PCRs and
 * sessions reset, NV kept.  xen-tpmfront sends no Startup, so we do; and
 * it cannot send a TPM 2.0 Shutdown (it drives every Xen vTPM as a 1.2
 * one), so the power-down is made orderly here, as a platform would.
 * Without it each guest reboot counts as a non-orderly shutdown and,
 * once a DA-protected authorization has been used, raises failedTries:
 * three reboots lock the guest out (TPM_RC_LOCKOUT), as the Xen lab's
 * host-restart run showed.  Every state change is durable before its
 * response here, so the attack the count exists for (cutting power
 * before a failed try reaches NV) does not apply.
 */
static uint32_t power_cycle_now(struct vtpm *v)
{
	uint32_t rc;

	rc = engine_shutdown_orderly(vtpm_engine(v));
	if (rc)
		log_debug("xen-ring: orderly shutdown before the power cycle: "
			  "rc 0x%x", rc);
	/* A volatile state kept for a restore is never booted here. */
	engine_resume_forget(vtpm_engine(v));
	if (engine_power_on(vtpm_engine(v), true)) {
		log_warnx("xen-ring: the TPM did not power on again");
		return UINT32_MAX;
	}
	return engine_startup_clear(vtpm_engine(v));
}

static void reset_call(struct vtpm *v, struct vtpm_job *job)
{
	uint32_t rc;

	(void)job;
	rc = power_cycle_now(v);
	if (rc != UINT32_MAX)
		log_info("xen-ring: guest gone: TPM power-cycled for the next "
			 "one (Startup rc 0x%x)", rc);
}

static void reset_done(struct vtpm_job *job)
{
	struct xring *x = job->data;

	x->reset_pending = false;
}

static void ring_power_cycle(struct tpmback *tb)
{
	struct xring *x = tb->data;

	if (x->reset_pending)
		return; /* one queued reset serves both */
	x->reset_pending = true;

	x->reset.kind = VTPM_JOB_CALL;
	x->reset.call = reset_call;
	x->reset.done = reset_done;
	x->reset.data = x;
	/* FIFO: the next guest command runs after the reset. */
	vtpm_submit(x->t->vtpm, &x->reset);
}

/* ---- Xen save/restore: the volatile state follows the domain's UUID ---- */

/* The Xen UUID of domain fe, from the node only the toolstack writes. */
static int read_vm_uuid(struct xring *x, uint32_t fe, uint8_t vm[16])
{
	char path[64], *val = NULL;
	size_t len = 0;
	int rc;

	snprintf(path, sizeof(path), "/local/domain/%u/vm", fe);
	rc = x->xif->ops->xs_read(x->xif, path, &val, &len);
	if (rc == 0)
		rc = resumetag_parse_vm_path(val, len, vm);
	free(val);
	return rc;
}

/*
 * Thread pool: the manager says which Xen domain the frontend's domain
 * is, having checked that its vtpm device here names our vTPM.
 */
static void ask_peer_vm(struct xring *x)
{
	struct mgrlink *l = vtpm_manager_link(x->t->vtpm);
	struct mgr_req q = { .type = MGR_MSG_XEN_PEER };
	struct mgr_rsp r;
	char err[200], us[37];
	int rc;

	q.u.xen_peer.domid = x->jpeer.domid;
	q.u.xen_peer.devid = x->jpeer.devid;
	rc = l ? mgrlink_call_within(l, &q, &r, ASK_MS, err, sizeof(err))
	       : -ENOTCONN;
	if (rc == 0 && r.status == MGR_SUCCESS) {
		memcpy(x->jpeer.vm, r.u.xen_peer.uuid, 16);
		x->jhave_vm = true;
		uuid_format(x->jpeer.vm, us);
		log_info("xen-ring: the manager says domain %u is Xen domain %s",
			 x->jpeer.domid, us);
		return;
	}
	if (rc == -ENOTCONN)
		snprintf(err, sizeof(err), "no manager link");
	log_warnx("xen-ring: the manager did not tell domain %u's Xen UUID "
		  "(%s): this connection will be power-cycled, never resumed",
		  x->jpeer.domid, rc ? err : mgrproto_status_str(r.status));
}

/*
 * The first job of a connection, ahead of the guest's commands: the TPM
 * this guest finds.  A volatile state saved when a domain with this
 * guest's Xen UUID was suspended (its tag matches) is the restored
 * domain's own TPM: it resumed at power-on (or still runs), and is used
 * once.  Anything else (no tag, another domain's, a malformed one, or a
 * volatile state without a tag) is never booted for this guest: the TPM
 * is power-cycled.
 */
static void connect_call(struct vtpm *v, struct vtpm_job *job)
{
	struct xring *x = job->data;
	struct engine *e = vtpm_engine(v);
	struct resume_tag t;
	const uint8_t *b;
	uint32_t n, rc;
	char want[37], have[37];

	x->jpeer = x->peer;
	x->jhave_vm = x->have_vm;
	if (x->ask && !x->jhave_vm)
		ask_peer_vm(x);
	b = engine_resume_tag(e, &n);
	if (!b && !engine_has_volatile(e))
		return; /* a fresh TPM already: Startup(CLEAR) at power-on */
	if (b && resumetag_decode(b, n, &t) == 0 && x->jhave_vm &&
	    resumetag_matches(&t, x->jpeer.vm, x->jpeer.devid) &&
	    engine_is_running(e)) {
		uuid_format(t.vm, want);
		engine_resume_forget(e);
		log_info("xen-ring: domain %u vtpm %u resumes the TPM saved "
			 "when domain %u (%s) went away: PCRs, sessions and "
			 "loaded objects as they were, no Startup",
			 x->jpeer.domid, x->jpeer.devid, t.domid, want);
		return;
	}
	if (!b)
		log_info("xen-ring: a volatile state without a resume tag is "
			 "not for domain %u: discarded", x->jpeer.domid);
	else if (resumetag_decode(b, n, &t) != 0)
		log_warnx("xen-ring: the saved resume tag is malformed (%u "
			  "bytes): its volatile state is discarded", n);
	else {
		uuid_format(t.vm, want);
		if (x->jhave_vm)
			uuid_format(x->jpeer.vm, have);
		else
			snprintf(have, sizeof(have), "unknown");
		log_info("xen-ring: the volatile state saved for domain %u "
			 "(%s) vtpm %u is not for domain %u (%s) vtpm %u, a "
			 "new boot: discarded", t.domid, want, t.devid,
			 x->jpeer.domid, have, x->jpeer.devid);
	}
	rc = power_cycle_now(v);
	if (rc != UINT32_MAX)
		log_info("xen-ring: TPM power-cycled for domain %u (Startup "
			 "rc 0x%x)", x->jpeer.domid, rc);
}

static void conn_done(struct vtpm_job *job)
{
	struct xring *x = job->data;

	x->conn_pending = false;
}

static void ring_connected(struct tpmback *tb)
{
	struct xring *x = tb->data;
	char us[37];

	x->peer.domid = tb->cfg.frontend_domid;
	x->peer.devid = tb->cfg.devid;
	x->have_vm = read_vm_uuid(x, x->peer.domid, x->peer.vm) == 0;
	/* Our own reads first; the manager only where they fail. */
	x->ask = !x->have_vm && vtpm_manager_link(x->t->vtpm);
	if (x->have_vm) {
		uuid_format(x->peer.vm, us);
		log_info("xen-ring: domain %u is Xen domain %s", x->peer.domid,
			 us);
	} else if (x->ask) {
		log_info("xen-ring: /local/domain/%u/vm is unreadable here: "
			 "asking the manager", x->peer.domid);
	} else {
		log_info("xen-ring: /local/domain/%u/vm is unreadable: this "
			 "connection will be power-cycled, never resumed",
			 x->peer.domid);
	}
	/* A job that asks the manager runs off the loop; one still queued
	 * takes the new connection's need (the queue reads the flag when
	 * it starts the job). */
	x->conn_job.call_offloop = x->ask;
	if (x->conn_pending)
		return; /* the queued one reads peer when it runs */
	x->conn_pending = true;
	x->conn_job.kind = VTPM_JOB_CALL;
	x->conn_job.call = connect_call;
	x->conn_job.done = conn_done;
	x->conn_job.data = x;
	vtpm_submit(x->t->vtpm, &x->conn_job);
}

/*
 * Whether the state of a domain whose guest did not close may be kept
 * for a restore.  Its device gone (or going): only a domain that shut
 * down for a suspend (xl save, xl migrate); one destroyed while running
 * (libxl pauses it first) or crashed boots anew.  Its device still there
 * (the instance stopped: the manager moving the vTPM to a destination
 * with the same Xen UUID, or an operator's stop): also a paused domain,
 * which resumes later as it was.  1 yes, 0 no, -1 unknown (no
 * privileged interface, or the domain gone): the tag binds to the Xen
 * UUID alone then.
 */
static int peer_may_resume(struct xring *x, bool device_present)
{
	enum xenif_domain_state st = XENIF_DOM_RUNNING;
	int rc;

	if (!x->xif->ops->domain_state)
		return -1;
	rc = x->xif->ops->domain_state(x->xif, x->peer.domid, &st);
	if (rc) {
		/* Gone: libxl destroys a saved domain once its image is
		 * written, and may do so before its device is seen going. */
		if (rc == -ENOENT)
			log_info("xen-ring: domain %u is gone (destroyed): its "
				 "saved state is bound to its Xen UUID alone",
				 x->peer.domid);
		else
			log_info("xen-ring: domain %u: run state unknown (%s): "
				 "its saved state is bound to its Xen UUID "
				 "alone", x->peer.domid, strerror(-rc));
		return -1;
	}
	if (st == XENIF_DOM_SUSPENDED ||
	    (device_present && st == XENIF_DOM_PAUSED))
		return 1;
	log_info("xen-ring: domain %u is %s: no state is kept for a restore",
		 x->peer.domid,
		 st == XENIF_DOM_SHUTDOWN ? "shut down (not for a suspend)"
		 : st == XENIF_DOM_PAUSED ? "paused with its device gone (destroyed)"
					  : "running");
	return 0;
}

static void save_call(struct vtpm *v, struct vtpm_job *job)
{
	struct xring *x = job->data;
	struct resume_tag t;
	char us[37];
	int rc;

	rc = engine_suspend_save(vtpm_engine(v), x->save_tag,
				 sizeof(x->save_tag));
	if (rc) {
		log_warnx("xen-ring: cannot keep the volatile state for a "
			  "restore: %s; the TPM is power-cycled",
			  strerror(-rc));
		x->save_owed = false;
		power_cycle_now(v);
		return;
	}
	(void)resumetag_decode(x->save_tag, sizeof(x->save_tag), &t);
	uuid_format(t.vm, us);
	log_info("xen-ring: domain %u vtpm %u went away without closing "
		 "(suspended by xl save or xl migrate, or destroyed): its "
		 "volatile state is saved for a restore of Xen domain %s",
		 t.domid, t.devid, us);
}

static void save_done(struct vtpm_job *job)
{
	struct xring *x = job->data;

	x->save_pending = false;
	/* Done means durable: the queue persisted before this. */
	if (job->status == 0)
		x->save_owed = false;
}

/*
 * Thread pool: the device of a guest that never closed is gone, and only
 * the manager can say whether its domain shut down for a suspend.  No
 * answer within ASK_MS, a refusal, or any other state: the TPM is
 * power-cycled, as it was before instances asked.
 */
static void ask_save_call(struct vtpm *v, struct vtpm_job *job)
{
	struct xring *x = job->data;
	struct mgrlink *l = vtpm_manager_link(x->t->vtpm);
	struct mgr_req q = { .type = MGR_MSG_XEN_PEER_STATE };
	struct mgr_rsp r;
	uint8_t tag[RESUMETAG_LEN];
	char err[200], us[37];
	uint32_t trc;
	int rc;

	if (!x->jhave_vm) {
		log_info("xen-ring: domain %u went away without closing; its "
			 "Xen UUID is unknown: no state is kept for a restore",
			 x->jpeer.domid);
		goto cycle;
	}
	q.u.xen_peer.domid = x->jpeer.domid;
	q.u.xen_peer.devid = x->jpeer.devid;
	rc = l ? mgrlink_call_within(l, &q, &r, ASK_MS, err, sizeof(err))
	       : -ENOTCONN;
	if (rc || r.status != MGR_SUCCESS) {
		if (rc == -ENOTCONN)
			snprintf(err, sizeof(err), "no manager link");
		log_warnx("xen-ring: domain %u went away without closing and "
			  "the manager did not tell its run state (%s): no "
			  "state is kept for a restore", x->jpeer.domid,
			  rc ? err : mgrproto_status_str(r.status));
		goto cycle;
	}
	if (r.u.xen_state.state != MGR_XEN_SUSPENDED) {
		log_info("xen-ring: the manager says domain %u is %s: no state "
			 "is kept for a restore", x->jpeer.domid,
			 mgrproto_xen_run_str(r.u.xen_state.state));
		goto cycle;
	}
	resumetag_encode(&x->jpeer, tag);
	rc = engine_suspend_save(vtpm_engine(v), tag, sizeof(tag));
	if (rc) {
		log_warnx("xen-ring: cannot keep the volatile state for a "
			  "restore: %s", strerror(-rc));
		goto cycle;
	}
	uuid_format(x->jpeer.vm, us);
	log_info("xen-ring: the manager says domain %u shut down for a "
		 "suspend: vtpm %u's volatile state is saved for a restore of "
		 "Xen domain %s", x->jpeer.domid, x->jpeer.devid, us);
	return;
cycle:
	trc = power_cycle_now(v);
	if (trc != UINT32_MAX)
		log_info("xen-ring: guest gone: TPM power-cycled for the next "
			 "one (Startup rc 0x%x)", trc);
}

static void ask_save_done(struct vtpm_job *job)
{
	struct xring *x = job->data;

	x->ask_save_pending = false;
}

static void ring_suspended(struct tpmback *tb)
{
	struct xring *x = tb->data;

	if (x->ask) {
		/* Queued behind the connection's job, which asked for the
		 * Xen UUID; the guest's next connection waits for it. */
		if (x->ask_save_pending)
			return;
		x->ask_save_pending = true;
		x->ask_save_job = (struct vtpm_job){
			.kind = VTPM_JOB_CALL,
			.call = ask_save_call,
			.call_offloop = true,
			.done = ask_save_done,
			.data = x,
		};
		vtpm_submit(x->t->vtpm, &x->ask_save_job);
		return;
	}
	if (!x->have_vm || peer_may_resume(x, false) == 0) {
		ring_power_cycle(tb);
		return;
	}
	resumetag_encode(&x->peer, x->save_tag);
	x->save_owed = true;
	if (x->save_pending)
		return;
	x->save_pending = true;
	x->save_job.kind = VTPM_JOB_CALL;
	x->save_job.call = save_call;
	x->save_job.done = save_done;
	x->save_job.data = x;
	vtpm_submit(x->t->vtpm, &x->save_job);
}

/* Stopping while a guest is connected (the manager stops the source of
 * an xl migrate when the destination's device appears) or with a save
 * still owed: the instance saves before it exits. */
/* The toolstack has not begun to remove our device (libxl writes
 * online = 0 first, then removes the directory). */
static bool device_present(struct xring *x)
{
	char *v = NULL;
	size_t n = 0;
	bool present;

	if (xenbus_read(&x->tb.xb, x->tb.xb.self, "frontend", &v, &n))
		return false;
	free(v);
	v = NULL;
	present = true;
	if (xenbus_read(&x->tb.xb, x->tb.xb.self, "online", &v, &n) == 0)
		present = !(n == 1 && v[0] == '0');
	free(v);
	return present;
}

static void save_at_stop(struct xring *x)
{
	if (x->tb.state == TPMBACK_CONNECTED && x->ask) {
		/* The run state is the manager's to tell, and a stop cannot
		 * wait for it. */
		log_info("xen-ring: stopping while domain %u is connected: no "
			 "state is kept for a restore", x->peer.domid);
	} else if (x->tb.state == TPMBACK_CONNECTED && x->have_vm &&
		   peer_may_resume(x, device_present(x)) != 0) {
		resumetag_encode(&x->peer, x->save_tag);
		x->save_owed = true;
	}
	if (x->save_owed)
		vtpm_save_at_exit(x->t->vtpm, x->save_tag,
				  sizeof(x->save_tag));
}

static const struct tpmback_ops ring_ops = {
	.submit = ring_submit,
	.cancel = ring_cancel,
	.power_cycle = ring_power_cycle,
	.suspended = ring_suspended,
	.connected = ring_connected,
};

/*
 * Opened before the instance drops its privileges (--user), which happens
 * before any transport exists (transport_ops.preopen takes only the
 * config): so this is the one file-level state here, handed over to the
 * transport at its start.  watch is devwatch's, for --domid any.
 */
static struct {
	struct xenif *xif, *watch;
	void *libgcc; /* kept for the life of the process */
} preopened;

static int xen_ring_preopen(bool watch)
{
	int rc;

	if (preopened.xif)
		return 0;
	/*
	 * libxenstore ends its watch thread with pthread_cancel, which makes
	 * glibc dlopen libgcc_s for the unwinder the first time; inside the
	 * sandbox there is no file to open, and glibc aborts.  Every
	 * xen-ring instance died of SIGABRT at its stop, before its last
	 * steps (the volatile state of a suspended guest among them).
	 * Loaded now, the library is found in memory then.
	 */
	if (!preopened.libgcc)
		preopened.libgcc = dlopen("libgcc_s.so.1",
					  RTLD_NOW | RTLD_NODELETE);
	if (!preopened.libgcc)
		log_warnx("xen-ring: cannot load libgcc_s.so.1 (%s): the "
			  "instance may abort at its stop", dlerror());
	rc = xen_real_open(&preopened.xif);
	if (!rc && watch) {
		rc = xen_real_open(&preopened.watch);
		if (rc) {
			xenif_close(preopened.xif);
			preopened.xif = NULL;
		}
	}
	if (rc)
		log_warnx("xen-ring: cannot open xenstore, grant table or event "
			  "channels: %s (is this a Xen domain with xenfs and "
			  "the gntdev/evtchn drivers?)", strerror(-rc));
	return rc;
}

/* The one backend of this transport: domain fe's vtpm device devid, as
 * the vTPM --uuid names (when given; --domid any needs it). */
static int xring_serve(struct xring *x, uint32_t fe, uint32_t devid)
{
	const struct config *cfg = x->t->cfg;
	struct tpmback_config tc;
	int rc;

	tpmback_config_init(&tc, x->self, fe, devid,
			    x->any || cfg->have_uuid ? cfg->uuid : NULL);
	tc.max_cmd = engine_buffer_size(vtpm_engine(x->t->vtpm));
	rc = tpmback_serve(&x->tb, x->t->loop, x->xif, &tc, &ring_ops, x);
	if (rc) {
		log_warnx("xen-ring: cannot serve domain %u's vtpm device %u: %s",
			  fe, devid, strerror(-rc));
		return rc;
	}
	x->tb_active = true;
	log_info("xen-ring: serving domain %u's vtpm device %u from domain %u",
		 fe, devid, x->self);
	return 0;
}

/* ---- --domid any: the device that names our UUID, whoever its guest is ---- */

static void any_serve(struct xring *x, const struct devwatch_dev *d)
{
	if (xring_serve(x, d->fe_domid, d->devid) == 0)
		x->cur = *d;
}

static void any_closed(struct xring *x);

static void any_tb_stopped(struct tpmback *tb)
{
	struct xring *x = tb->data;

	x->tb_active = false;
	x->tb_stopping = false;
	if (x->stopping) {
		any_closed(x);
		return;
	}
	if (x->have_next) {
		x->have_next = false;
		any_serve(x, &x->next);
	}
}

static bool same_dev(const struct devwatch_dev *a, const struct devwatch_dev *b)
{
	return a->fe_domid == b->fe_domid && a->devid == b->devid;
}

static void any_added(struct devwatch *w, const struct devwatch_dev *d)
{
	struct xring *x = w->data;
	const struct config *cfg = x->t->cfg;
	char us[37];

	if (memcmp(d->uuid, cfg->uuid, 16) != 0) {
		uuid_format(d->uuid, us);
		log_warnx_rl(&x->rl, "xen-ring: domain %u vtpm %u names vTPM %s, "
			     "not this one: not served here", d->fe_domid,
			     d->devid, us);
		return;
	}
	if (x->tb_active || x->tb_stopping) {
		/* A rebooted guest's new device may come while the old one
		 * is still being closed: it is served next. */
		x->next = *d;
		x->have_next = true;
		if (!x->tb_stopping)
			log_warnx("xen-ring: domain %u vtpm %u names this vTPM, "
				  "which serves domain %u: it waits (one vTPM, "
				  "one device)", d->fe_domid, d->devid,
				  x->cur.fe_domid);
		return;
	}
	any_serve(x, d);
}

static void any_removed(struct devwatch *w, const struct devwatch_dev *d)
{
	struct xring *x = w->data;

	if (x->have_next && same_dev(&x->next, d))
		x->have_next = false;
	if (!x->tb_active || x->tb_stopping || !same_dev(&x->cur, d))
		return;
	log_info("xen-ring: domain %u's vtpm device %u is gone", d->fe_domid,
		 d->devid);
	x->tb_stopping = true;
	tpmback_stop(&x->tb, any_tb_stopped);
}

static const struct devwatch_ops any_ops = {
	.added = any_added,
	.removed = any_removed,
};

static int xring_start_any(struct xring *x)
{
	int rc;

	x->any = true;
	x->wxif = preopened.watch;
	preopened.watch = NULL;
	rc = devwatch_start(&x->dw, x->t->loop, x->wxif, x->self, &any_ops, x);
	if (rc) {
		log_warnx("xen-ring: cannot watch /local/domain/%u/backend/vtpm: "
			  "%s", x->self, strerror(-rc));
		return rc;
	}
	x->dw_running = true;
	log_info("xen-ring: serving whichever vtpm device of domain %u names "
		 "this vTPM", x->self);
	return 0;
}

static void any_dw_stopped(struct devwatch *w)
{
	struct xring *x = w->data;

	x->dw_running = false;
	any_closed(x);
}

/* Both the watch and the backend are down: the transport is stopped. */
static void any_closed(struct xring *x)
{
	void (*cb)(struct transport *) = x->stopped;

	if (x->dw_running || x->tb_active || x->tb_stopping)
		return;
	xenif_close(x->xif);
	xenif_close(x->wxif);
	x->xif = x->wxif = NULL;
	x->stopped = NULL;
	if (cb)
		cb(x->t);
}

static int xring_start(struct transport *t)
{
	const struct config *cfg = t->cfg;
	struct xring *x = calloc(1, sizeof(*x));
	int rc;

	if (!x)
		return -ENOMEM;
	t->priv = x;
	x->t = t;
	rc = xen_ring_preopen(cfg->domid == CONFIG_DOMID_ANY);
	if (rc)
		return rc;
	x->xif = preopened.xif;
	preopened.xif = NULL;
	x->self = xenif_self_domid(x->xif);
	if (cfg->domid == CONFIG_DOMID_ANY)
		return xring_start_any(x);
	return xring_serve(x, (uint32_t)cfg->domid, cfg->devid);
}

static void xring_stopped(struct tpmback *tb)
{
	struct xring *x = tb->data;
	void (*cb)(struct transport *) = x->stopped;

	xenif_close(x->xif);
	x->xif = NULL;
	if (cb)
		cb(x->t);
}

static void xring_stop(struct transport *t, void (*done)(struct transport *t))
{
	struct xring *x = t->priv;

	x->stopped = done;
	save_at_stop(x);
	if (!x->any) {
		tpmback_stop(&x->tb, xring_stopped);
		return;
	}
	x->stopping = true;
	x->have_next = false;
	if (x->dw_running)
		devwatch_stop(&x->dw, any_dw_stopped);
	if (x->tb_active && !x->tb_stopping) {
		x->tb_stopping = true;
		tpmback_stop(&x->tb, any_tb_stopped);
	}
	any_closed(x);
}

static int xring_preopen(const struct config *cfg)
{
	return xen_ring_preopen(cfg->domid == CONFIG_DOMID_ANY);
}

const struct transport_ops xen_ring_transport_ops = {
	.name = "xen-ring",
	.start = xring_start,
	.stop = xring_stop,
	.preopen = xring_preopen,
};
