/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The Xen vTPM ring as an instance transport: tpmback (the backend state
 * machine) on the real Xen libraries, connected to the instance's job
 * queue.  The vTPM's identity is the uuid node the toolstack wrote, which
 * must equal --uuid.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "log.h"
#include "tpmback.h"
#include "vtpm.h"

struct xring {
	struct transport *t;
	struct xenif *xif;
	struct tpmback tb;
	struct vtpm_job job;
	struct vtpm_job reset;
	bool job_pending;
	void (*stopped)(struct transport *t);
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
static void reset_call(struct vtpm *v, struct vtpm_job *job)
{
	uint32_t rc;

	(void)job;
	rc = engine_shutdown_orderly(&v->eng);
	if (rc)
		log_debug("xen-ring: orderly shutdown before the power cycle: "
			  "rc 0x%x", rc);
	if (engine_power_on(&v->eng, false)) {
		log_warnx("xen-ring: the TPM did not power on again");
		return;
	}
	rc = engine_startup_clear(&v->eng);
	log_info("xen-ring: guest gone: TPM power-cycled for the next one (Startup rc 0x%x)",
		 rc);
}

static void reset_done(struct vtpm_job *job)
{
	(void)job;
}

static void ring_power_cycle(struct tpmback *tb)
{
	struct xring *x = tb->data;

	x->reset.kind = VTPM_JOB_CALL;
	x->reset.call = reset_call;
	x->reset.done = reset_done;
	x->reset.data = x;
	/* FIFO: the next guest command runs after the reset. */
	vtpm_submit(x->t->vtpm, &x->reset);
}

static const struct tpmback_ops ring_ops = {
	.submit = ring_submit,
	.cancel = ring_cancel,
	.power_cycle = ring_power_cycle,
};

/* Opened before the instance drops its privileges (--user). */
static struct xenif *preopened;

int xen_ring_preopen(void)
{
	int rc;

	if (preopened)
		return 0;
	rc = xen_real_open(&preopened);
	if (rc)
		log_warnx("xen-ring: cannot open xenstore, grant table or event "
			  "channels: %s (is this a Xen domain with xenfs and "
			  "the gntdev/evtchn drivers?)", strerror(-rc));
	return rc;
}

/* The domain we run in (0 when xenstore has no "domid" for us). */
static uint32_t own_domid(struct xenif *xif)
{
	uint32_t id = 0;

	if (xif->ops->self_domid(xif, &id))
		id = 0;
	return id;
}

static int xring_start(struct transport *t)
{
	const struct config *cfg = t->cfg;
	struct tpmback_config tc;
	struct xring *x = calloc(1, sizeof(*x));
	int rc;

	if (!x)
		return -ENOMEM;
	t->priv = x;
	x->t = t;
	rc = xen_ring_preopen();
	if (rc)
		return rc;
	x->xif = preopened;
	preopened = NULL;
	memset(&tc, 0, sizeof(tc));
	tc.backend_domid = own_domid(x->xif);
	tc.frontend_domid = (uint32_t)cfg->domid;
	tc.devid = cfg->devid;
	tc.have_uuid = cfg->have_uuid;
	memcpy(tc.uuid, cfg->uuid, 16);
	tc.max_extra_pages = TPMBACK_MAX_EXTRA_PAGES;
	tc.max_cmd = t->vtpm->eng.buffer_size;
	rc = tpmback_init(&x->tb, t->loop, x->xif, &tc, &ring_ops, x);
	if (!rc)
		rc = tpmback_start(&x->tb);
	if (rc)
		log_warnx("xen-ring: backend for domain %ld: %s", cfg->domid,
			  strerror(-rc));
	else
		log_info("xen-ring: serving domain %ld's vtpm device %u from "
			 "domain %u", cfg->domid, cfg->devid, tc.backend_domid);
	return rc;
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
	tpmback_stop(&x->tb, xring_stopped);
}

const struct transport_ops xen_ring_transport_ops = {
	.name = "xen-ring",
	.start = xring_start,
	.stop = xring_stop,
};
