// SPDX-License-Identifier: GPL-2.0
/*
 * vtpm_front: frontend for the Xen PV vTPM device ("vtpm", protocol v2)
 * that gives the guest a TPM 2.0 when the backend emulates one.
 *
 * Differences from xen-tpmfront:
 * - the TPM family is probed (TPM2_GetCapability), so a TPM 2.0 backend
 *   gets /dev/tpmrm0 and TPM 2.0 commands from in-kernel users;
 * - a command completes on the backend's event, not by polling;
 * - when the backend offers "feature-extra-pages", the shared area grows
 *   by as many granted pages as a TPM_BUFSIZE command needs;
 * - the chip stays registered across save/restore: the ring is rebuilt
 *   and the TPM is started again.
 *
 * Everything the backend writes (page state, response length, xenstore
 * nodes) is checked before use.
 */

#include <linux/atomic.h>
#include <linux/device.h>
#include <linux/err.h>
#include <linux/interrupt.h>
#include <linux/minmax.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/wait.h>
#include <xen/events.h>
#include <xen/grant_table.h>
#include <xen/interface/io/tpmif.h>
#include <xen/page.h>
#include <xen/xen.h>
#include <xen/xenbus.h>

#include "vtpm_core.h"

/* The most extra pages we ever grant; a TPM_BUFSIZE command needs one. */
#define VTPM_MAX_EXTRA		8

/*
 * How long a command may take before we cancel it. The TPM 2.0 durations
 * in the core (20 ms for short commands) suit a chip on a bus, not a
 * backend that may write its state to disk before it answers.
 */
#define VTPM_MIN_DURATION	(20 * HZ)

/* Status bits reported to the TPM core (used only if it ever polls). */
enum vtpm_status {
	VTPM_STATUS_RUNNING	= 0x1,
	VTPM_STATUS_IDLE	= 0x2,
	VTPM_STATUS_RESULT	= 0x4,
	VTPM_STATUS_CANCELED	= 0x8,
};

struct vtpm_front {
	struct xenbus_device *xdev;
	struct tpm_chip *chip;
	bool registered;	/* tpm_chip_register() succeeded */
	bool need_startup;	/* restored from a save: start the TPM again */

	/* Serialises the ring's users and its setup and teardown. */
	struct mutex ring_lock;
	wait_queue_head_t waitq;
	/* false while there is no ring or the backend went away */
	bool online;

	void *ring;		/* 1 + nr_extra contiguous pages, or NULL */
	unsigned int nr_extra;
	grant_ref_t grefs[1 + VTPM_MAX_EXTRA];
	size_t data_off;	/* packet offset in the ring */
	size_t data_cap;	/* bytes from data_off to the ring's end */
	evtchn_port_t evtchn;
	int irq;
	/*
	 * Events we asked for (each SUBMIT or CANCEL) and not yet seen. An
	 * event beyond them is spurious: a backend storming us gets its EOIs
	 * delayed. Not the page state: the guest may have read a response
	 * and submitted the next command before the first event is handled.
	 */
	atomic_t kicks;
	u8 locality;
};

static struct vtpm_shared_page *vtpm_shr(struct vtpm_front *vf)
{
	return vf->ring;
}

static u8 vtpm_page_state(struct vtpm_front *vf)
{
	return READ_ONCE(vtpm_shr(vf)->state);
}

/* The backend holds no command: the page is ours to write. */
static bool vtpm_settled(struct vtpm_front *vf)
{
	u8 st;

	if (!READ_ONCE(vf->online))
		return true;
	st = vtpm_page_state(vf);
	return st == VTPM_STATE_IDLE || st == VTPM_STATE_FINISH;
}

static void vtpm_notify(struct vtpm_front *vf)
{
	atomic_inc(&vf->kicks);
	wmb();	/* the page state before the event that announces it */
	notify_remote_via_evtchn(vf->evtchn);
}

/* Packet offset on the first page when @n extra grant refs precede it. */
static size_t vtpm_data_off(unsigned int n)
{
	return sizeof(struct vtpm_shared_page) + n * sizeof(u32);
}

/* Extra pages a command of VTPM_CORE_BUFSIZE bytes needs. */
static unsigned int vtpm_extra_wanted(void)
{
	unsigned int n = 0;

	while (n < VTPM_MAX_EXTRA &&
	       vtpm_data_off(n) + VTPM_CORE_BUFSIZE > (n + 1) * XEN_PAGE_SIZE)
		n++;
	return n;
}

/* ---- TPM core operations ---- */

static int vtpm_send(struct tpm_chip *chip, u8 *buf, size_t count)
{
	struct vtpm_front *vf = dev_get_drvdata(&chip->dev);
	struct vtpm_shared_page *shr;
	unsigned long dur;
	unsigned int i;
	long ret;
	int rc = 0;

	if (count < TPM_HEADER_SIZE)
		return -EINVAL;

	mutex_lock(&vf->ring_lock);
	if (!READ_ONCE(vf->online)) {
		rc = -ENODEV;
		goto out;
	}
	if (count > vf->data_cap) {
		rc = -E2BIG;
		goto out;
	}
	shr = vtpm_shr(vf);

	/* A command we cancelled may still run in the backend. */
	ret = wait_event_interruptible_timeout(vf->waitq, vtpm_settled(vf),
					       VTPM_MIN_DURATION);
	if (ret <= 0) {
		rc = ret ? -EINTR : -EBUSY;
		goto out;
	}
	if (!READ_ONCE(vf->online)) {
		rc = -ENODEV;
		goto out;
	}

	memcpy((u8 *)vf->ring + vf->data_off, buf, count);
	/* The backend may have scribbled on the header: write all of it. */
	for (i = 0; i < vf->nr_extra; i++)
		shr->extra_pages[i] = vf->grefs[1 + i];
	shr->nr_extra_pages = vf->nr_extra;
	shr->locality = vf->locality;
	shr->pad = 0;
	shr->length = count;
	wmb();	/* the request before its state */
	WRITE_ONCE(shr->state, VTPM_STATE_SUBMIT);
	vtpm_notify(vf);

	dur = tpm_calc_ordinal_duration(chip,
					be32_to_cpu(((struct tpm_header *)buf)->ordinal));
	dur = max_t(unsigned long, dur, VTPM_MIN_DURATION);
	ret = wait_event_interruptible_timeout(vf->waitq, vtpm_settled(vf),
					       dur);
	if (!READ_ONCE(vf->online)) {
		rc = -ENODEV;
	} else if (ret <= 0) {
		WRITE_ONCE(shr->state, VTPM_STATE_CANCEL);
		vtpm_notify(vf);
		rc = ret ? -EINTR : -ETIME;
	}
out:
	mutex_unlock(&vf->ring_lock);
	return rc;
}

static int vtpm_recv(struct tpm_chip *chip, u8 *buf, size_t count)
{
	struct vtpm_front *vf = dev_get_drvdata(&chip->dev);
	u32 length;
	int rc;
	u8 st;

	mutex_lock(&vf->ring_lock);
	if (!READ_ONCE(vf->online)) {
		rc = -ENODEV;
		goto out;
	}
	st = vtpm_page_state(vf);
	/* Read the length and data only after the state. */
	rmb();
	if (st == VTPM_STATE_IDLE) {
		rc = -ECANCELED;	/* the backend dropped the command */
		goto out;
	}
	if (st != VTPM_STATE_FINISH) {
		rc = -EIO;
		goto out;
	}
	length = READ_ONCE(vtpm_shr(vf)->length);
	if (length > vf->data_cap || length > count) {
		dev_err_ratelimited(&vf->xdev->dev,
				    "response of %u bytes does not fit (%zu mapped, %zu wanted)\n",
				    length, vf->data_cap, count);
		rc = -EIO;
		goto out;
	}
	memcpy(buf, (u8 *)vf->ring + vf->data_off, length);
	rc = length;
out:
	mutex_unlock(&vf->ring_lock);
	return rc;
}

static void vtpm_cancel(struct tpm_chip *chip)
{
	struct vtpm_front *vf = dev_get_drvdata(&chip->dev);

	mutex_lock(&vf->ring_lock);
	if (READ_ONCE(vf->online)) {
		WRITE_ONCE(vtpm_shr(vf)->state, VTPM_STATE_CANCEL);
		vtpm_notify(vf);
	}
	mutex_unlock(&vf->ring_lock);
}

static u8 vtpm_status(struct tpm_chip *chip)
{
	struct vtpm_front *vf = dev_get_drvdata(&chip->dev);
	u8 status = VTPM_STATUS_IDLE | VTPM_STATUS_CANCELED;

	mutex_lock(&vf->ring_lock);
	if (READ_ONCE(vf->online)) {
		switch (vtpm_page_state(vf)) {
		case VTPM_STATE_IDLE:
			break;
		case VTPM_STATE_FINISH:
			status = VTPM_STATUS_IDLE | VTPM_STATUS_RESULT;
			break;
		default:
			status = VTPM_STATUS_RUNNING;
			break;
		}
	}
	mutex_unlock(&vf->ring_lock);
	return status;
}

static bool vtpm_req_canceled(struct tpm_chip *chip, u8 status)
{
	return status & VTPM_STATUS_CANCELED;
}

static int vtpm_request_locality(struct tpm_chip *chip, int loc)
{
	struct vtpm_front *vf = dev_get_drvdata(&chip->dev);

	if (loc < 0 || loc > 4)
		return -EINVAL;
	vf->locality = loc;
	return loc;
}

static int vtpm_relinquish_locality(struct tpm_chip *chip, int loc)
{
	return 0;
}

static const struct tpm_class_ops vtpm_ops = {
	.flags = TPM_OPS_AUTO_STARTUP,
	.req_complete_mask = VTPM_STATUS_IDLE | VTPM_STATUS_RESULT,
	.req_complete_val = VTPM_STATUS_IDLE | VTPM_STATUS_RESULT,
	.req_canceled = vtpm_req_canceled,
	.send = vtpm_send,
	.recv = vtpm_recv,
	.cancel = vtpm_cancel,
	.status = vtpm_status,
	.request_locality = vtpm_request_locality,
	.relinquish_locality = vtpm_relinquish_locality,
};

/* ---- the shared ring ---- */

static irqreturn_t vtpm_interrupt(int irq, void *dev_id)
{
	struct vtpm_front *vf = dev_id;
	unsigned int eoi = 0;

	if (atomic_dec_if_positive(&vf->kicks) < 0)
		eoi = XEN_EOI_FLAG_SPURIOUS;
	/* The waiters check the page state themselves. */
	wake_up_interruptible_all(&vf->waitq);
	xen_irq_lateeoi(irq, eoi);
	return IRQ_HANDLED;
}

/* Ends every wait on the ring; the next command fails with -ENODEV. */
static void vtpm_offline(struct vtpm_front *vf)
{
	WRITE_ONCE(vf->online, false);
	wake_up_interruptible_all(&vf->waitq);
}

static void vtpm_ring_free(struct vtpm_front *vf)
{
	vtpm_offline(vf);
	mutex_lock(&vf->ring_lock);
	if (vf->irq > 0) {
		unbind_from_irqhandler(vf->irq, vf);
		vf->irq = 0;
	}
	if (vf->ring)
		xenbus_teardown_ring(&vf->ring, 1 + vf->nr_extra, vf->grefs);
	vf->nr_extra = 0;
	vf->data_cap = 0;
	mutex_unlock(&vf->ring_lock);
}

static int vtpm_publish(struct vtpm_front *vf)
{
	struct xenbus_device *xdev = vf->xdev;
	struct xenbus_transaction xbt;
	const char *what;
	int rc;

again:
	rc = xenbus_transaction_start(&xbt);
	if (rc) {
		xenbus_dev_fatal(xdev, rc, "starting a transaction");
		return rc;
	}
	what = "ring-ref";
	rc = xenbus_printf(xbt, xdev->nodename, what, "%u", vf->grefs[0]);
	if (rc)
		goto abort;
	what = "event-channel";
	rc = xenbus_printf(xbt, xdev->nodename, what, "%u", vf->evtchn);
	if (rc)
		goto abort;
	what = "feature-protocol-v2";
	rc = xenbus_printf(xbt, xdev->nodename, what, "1");
	if (rc)
		goto abort;
	rc = xenbus_transaction_end(xbt, 0);
	if (rc == -EAGAIN)
		goto again;
	if (rc)
		xenbus_dev_fatal(xdev, rc, "completing the transaction");
	return rc;

abort:
	xenbus_transaction_end(xbt, 1);
	xenbus_dev_fatal(xdev, rc, "writing %s", what);
	return rc;
}

static int vtpm_ring_setup(struct vtpm_front *vf)
{
	struct xenbus_device *xdev = vf->xdev;
	struct vtpm_shared_page *shr;
	unsigned int offered, n, i;
	int rc;

	/* A missing or unparsable node reads as 0: one page, as stock. */
	offered = xenbus_read_unsigned(xdev->otherend, "feature-extra-pages", 0);
	n = min(offered, vtpm_extra_wanted());

	mutex_lock(&vf->ring_lock);
	rc = xenbus_setup_ring(xdev, GFP_KERNEL, &vf->ring, 1 + n, vf->grefs);
	if (rc)
		goto out;
	vf->nr_extra = n;
	vf->data_off = vtpm_data_off(n);
	vf->data_cap = (1 + n) * XEN_PAGE_SIZE - vf->data_off;
	shr = vtpm_shr(vf);
	shr->nr_extra_pages = n;
	for (i = 0; i < n; i++)
		shr->extra_pages[i] = vf->grefs[1 + i];

	atomic_set(&vf->kicks, 0);
	rc = xenbus_alloc_evtchn(xdev, &vf->evtchn);
	if (rc)
		goto out;
	rc = bind_evtchn_to_irqhandler_lateeoi(vf->evtchn, vtpm_interrupt, 0,
					       KBUILD_MODNAME, vf);
	if (rc < 0) {
		xenbus_dev_fatal(xdev, rc, "binding event channel %u",
				 vf->evtchn);
		xenbus_free_evtchn(xdev, vf->evtchn);
		goto out;
	}
	vf->irq = rc;
	WRITE_ONCE(vf->online, true);
	rc = 0;
out:
	mutex_unlock(&vf->ring_lock);
	if (rc) {
		vtpm_ring_free(vf);
		return rc;
	}
	dev_info(&xdev->dev, "ring of %u page(s), up to %zu bytes per command%s\n",
		 1 + n, min_t(size_t, vf->data_cap, VTPM_CORE_BUFSIZE),
		 offered ? "" : " (the backend offers no extra pages)");
	return 0;
}

/* ---- the TPM on the ring ---- */

/*
 * Sends a command made of a header and an optional 16-bit parameter
 * (Startup, Shutdown, SaveState); returns the TPM's response code, or a
 * negative errno.
 */
static int vtpm_simple_cmd(struct tpm_chip *chip, u16 tag, u32 ordinal,
			   const u16 *param)
{
	struct tpm_buf buf;
	int rc;

	rc = tpm_buf_init(&buf, tag, ordinal);
	if (rc)
		return rc;
	if (param)
		tpm_buf_append_u16(&buf, *param);
	rc = tpm_transmit_cmd(chip, &buf, 0, NULL);
	tpm_buf_destroy(&buf);
	return rc;
}

#define VTPM_TPM1_TAG_RQU		0x00c1
#define VTPM_TPM1_ORD_STARTUP		0x0099
#define VTPM_TPM1_ORD_SAVESTATE		0x0098
#define VTPM_TPM1_ST_CLEAR		0x0001
#define VTPM_TPM1_ST_STATE		0x0002
#define VTPM_TPM1_INVALID_POSTINIT	0x0026

/* The TPM answered Startup with "already started". */
static bool vtpm_started_already(bool tpm2, int rc)
{
	return rc == (tpm2 ? TPM2_RC_INITIALIZE : VTPM_TPM1_INVALID_POSTINIT);
}

/*
 * After a restore the backend serves a TPM that was powered off: resume
 * it with the state saved at suspend, or start it afresh. A backend that
 * started it already answers "initialize"; it is left as it is.
 */
static void vtpm_restart(struct vtpm_front *vf)
{
	struct tpm_chip *chip = vf->chip;
	bool tpm2 = chip->flags & TPM_CHIP_FLAG_TPM2;
	u16 tag = tpm2 ? TPM2_ST_NO_SESSIONS : VTPM_TPM1_TAG_RQU;
	u32 ord = tpm2 ? TPM2_CC_STARTUP : VTPM_TPM1_ORD_STARTUP;
	u16 su_state = tpm2 ? TPM2_SU_STATE : VTPM_TPM1_ST_STATE;
	u16 su_clear = tpm2 ? TPM2_SU_CLEAR : VTPM_TPM1_ST_CLEAR;
	const char *how = "resumed";
	int rc;

	if (tpm_try_get_ops(chip))
		return;
	rc = vtpm_simple_cmd(chip, tag, ord, &su_state);
	if (rc > 0 && !vtpm_started_already(tpm2, rc)) {
		how = "started afresh";
		rc = vtpm_simple_cmd(chip, tag, ord, &su_clear);
	}
	tpm_put_ops(chip);
	if (vtpm_started_already(tpm2, rc))
		how = "already running";
	else if (rc)
		how = NULL;
	if (how)
		dev_info(&vf->xdev->dev, "TPM %s after the restore\n", how);
	else
		dev_warn(&vf->xdev->dev, "restarting the TPM after the restore failed: %d\n",
			 rc);
}

static int vtpm_register(struct vtpm_front *vf)
{
	struct tpm_chip *chip = vf->chip;
	int rc;

	rc = tpm_chip_start(chip);
	if (rc)
		return rc;
	rc = tpm2_probe(chip);
	tpm_chip_stop(chip);
	if (rc)
		return rc;
	rc = tpm_chip_register(chip);
	if (rc)
		return rc;
	vf->registered = true;
	dev_info(&vf->xdev->dev, "TPM %s registered as %s\n",
		 chip->flags & TPM_CHIP_FLAG_TPM2 ? "2.0" : "1.2",
		 dev_name(&chip->dev));
	return 0;
}

/* Backend in InitWait: build the ring, then bring up (or restart) the TPM. */
static void vtpm_connect(struct vtpm_front *vf)
{
	struct xenbus_device *xdev = vf->xdev;
	int rc;

	rc = vtpm_ring_setup(vf);
	if (rc)
		return;
	rc = vtpm_publish(vf);
	if (rc)
		goto fail;
	/* The backend serves the ring from Initialised on. */
	rc = xenbus_switch_state(xdev, XenbusStateInitialised);
	if (rc)
		goto fail;

	if (vf->registered) {
		if (vf->need_startup)
			vtpm_restart(vf);
		vf->need_startup = false;
		return;
	}
	rc = vtpm_register(vf);
	if (rc) {
		xenbus_dev_fatal(xdev, rc, "registering the TPM");
		return;
	}
	return;

fail:
	vtpm_ring_free(vf);
}

static void vtpm_backend_changed(struct xenbus_device *xdev,
				 enum xenbus_state backend_state)
{
	struct vtpm_front *vf = dev_get_drvdata(&xdev->dev);

	switch (backend_state) {
	case XenbusStateInitWait:
		if (xdev->state == XenbusStateInitialising)
			vtpm_connect(vf);
		break;
	case XenbusStateConnected:
		if (xdev->state != XenbusStateInitialised)
			break;
		if (!xenbus_read_unsigned(xdev->otherend,
					  "feature-protocol-v2", 0)) {
			xenbus_dev_fatal(xdev, -EINVAL,
					 "vTPM protocol 2 required");
			return;
		}
		xenbus_switch_state(xdev, XenbusStateConnected);
		break;
	case XenbusStateClosing:
	case XenbusStateClosed:
		/* Fail commands at once instead of waiting for a dead ring. */
		vtpm_offline(vf);
		device_unregister(&xdev->dev);
		xenbus_frontend_closed(xdev);
		break;
	default:
		break;
	}
}

/* ---- the xenbus device ---- */

static int vtpm_probe(struct xenbus_device *xdev,
		      const struct xenbus_device_id *id)
{
	struct vtpm_front *vf;
	int rc;

	vf = kzalloc(sizeof(*vf), GFP_KERNEL);
	if (!vf)
		return -ENOMEM;
	vf->xdev = xdev;
	mutex_init(&vf->ring_lock);
	init_waitqueue_head(&vf->waitq);

	vf->chip = tpm_chip_alloc(&xdev->dev, &vtpm_ops);
	if (IS_ERR(vf->chip)) {
		rc = PTR_ERR(vf->chip);
		kfree(vf);
		return rc;
	}
	dev_set_drvdata(&vf->chip->dev, vf);
	/* send() returns once the backend answered: the core need not poll. */
	vf->chip->flags |= TPM_CHIP_FLAG_IRQ;
	dev_set_drvdata(&xdev->dev, vf);

	/* A reload finds the node Closed; the backend's InitWait connects. */
	rc = xenbus_switch_state(xdev, XenbusStateInitialising);
	if (rc) {
		put_device(&vf->chip->dev);
		kfree(vf);
		dev_set_drvdata(&xdev->dev, NULL);
	}
	return rc;
}

static void vtpm_remove(struct xenbus_device *xdev)
{
	struct vtpm_front *vf = dev_get_drvdata(&xdev->dev);

	if (vf->registered)
		tpm_chip_unregister(vf->chip);
	vtpm_ring_free(vf);
	put_device(&vf->chip->dev);
	dev_set_drvdata(&xdev->dev, NULL);
	kfree(vf);
}

static int vtpm_suspend(struct xenbus_device *xdev)
{
	struct vtpm_front *vf = dev_get_drvdata(&xdev->dev);
	struct tpm_chip *chip = vf->chip;
	bool tpm2 = chip->flags & TPM_CHIP_FLAG_TPM2;
	u16 su_state = TPM2_SU_STATE;
	int rc;

	if (!vf->registered || tpm_try_get_ops(chip))
		return 0;
	/* Let the TPM keep its state across the save (TPM Resume). */
	if (tpm2)
		rc = vtpm_simple_cmd(chip, TPM2_ST_NO_SESSIONS, TPM2_CC_SHUTDOWN,
				     &su_state);
	else
		rc = vtpm_simple_cmd(chip, VTPM_TPM1_TAG_RQU,
				     VTPM_TPM1_ORD_SAVESTATE, NULL);
	tpm_put_ops(chip);
	if (rc)
		dev_warn(&xdev->dev, "saving the TPM state: %d\n", rc);
	return 0;
}

static int vtpm_resume(struct xenbus_device *xdev)
{
	struct vtpm_front *vf = dev_get_drvdata(&xdev->dev);

	/*
	 * The grants and the event channel belong to the old backend. Drop
	 * them; the new backend's InitWait builds a new ring and restarts
	 * the TPM, and /dev/tpm* stay.
	 */
	vtpm_ring_free(vf);
	vf->need_startup = vf->registered;
	return 0;
}

static const struct xenbus_device_id vtpm_ids[] = {
	{ "vtpm" },
	{ "" }
};
MODULE_DEVICE_TABLE(xenbus, vtpm_ids);

static struct xenbus_driver vtpm_driver = {
	/* Not "vtpm" (the default): xen-tpmfront's driver has that name. */
	.name = KBUILD_MODNAME,
	.ids = vtpm_ids,
	.probe = vtpm_probe,
	.remove = vtpm_remove,
	.suspend = vtpm_suspend,
	.resume = vtpm_resume,
	.otherend_changed = vtpm_backend_changed,
	.not_essential = true,
};

static int __init vtpm_init(void)
{
	BUILD_BUG_ON(sizeof(struct vtpm_shared_page) != 8);
	BUILD_BUG_ON(VTPM_MAX_EXTRA > U8_MAX);

	if (!xen_domain())
		return -ENODEV;
	return xenbus_register_frontend(&vtpm_driver);
}
module_init(vtpm_init);

static void __exit vtpm_exit(void)
{
	xenbus_unregister_driver(&vtpm_driver);
}
module_exit(vtpm_exit);

MODULE_DESCRIPTION("TPM 2.0-aware frontend for the Xen PV vTPM device");
MODULE_LICENSE("GPL");
