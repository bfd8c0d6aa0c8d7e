/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tpmback: the backend half of one Xen PV vTPM device (protocol v2), for
 * frontend domain F, device D, served from backend domain B.
 *
 * Xenstore:  /local/domain/B/backend/vtpm/F/D   (toolstack writes, B owns)
 *            /local/domain/F/device/vtpm/D       (the guest writes)
 * The device's identity is the toolstack's `uuid` node, never anything
 * the guest wrote.  Every value the guest controls (its xenstore nodes and
 * the shared page) is read once, checked, and then used as a local copy.
 *
 * All I/O is on one libuv loop: a uv_poll on the xenstore watch fd and one
 * on the event-channel fd.  Nothing here blocks.
 */
#ifndef VTPM_TPMBACK_H
#define VTPM_TPMBACK_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/log.h"
#include "xenbus/xenbus.h"
#include "xenbus/xenif.h"

/* Extra grant pages a frontend may attach to the shared page. */
#define TPMBACK_MAX_EXTRA_PAGES 8

struct tpmback;

struct tpmback_config {
	uint32_t backend_domid;	 /* B: this domain, 0 for dom0 */
	uint32_t frontend_domid; /* F */
	uint32_t devid;		 /* D, usually 0 */
	bool have_uuid;		 /* the toolstack's uuid must equal uuid */
	uint8_t uuid[16];
	unsigned int max_extra_pages; /* 0 .. TPMBACK_MAX_EXTRA_PAGES */
	uint32_t max_cmd;	      /* engine buffer; 0: no limit but pages */
	/* Event-storm throttle: more than this many events within
	 * storm_window_ms pauses the event channel for storm_pause_ms. */
	unsigned int storm_events;    /* 0: 256 */
	unsigned int storm_window_ms; /* 0: 100 */
	unsigned int storm_pause_ms;  /* 0: 20 */
	/* A device the toolstack just created (our state node still 1):
	 * InitWait is held at least this long before Connected, so that
	 * the toolstack, which waits to read 2, sees it (see tb_step).
	 * tpmback_config_init sets TPMBACK_INITWAIT_HOLD_MS. */
	unsigned int initwait_hold_ms;
};

/* libxl reads the state node when its watch fires; a guest that answers
 * InitWait at once let a backend go 2 -> 4 before that read, and
 * `xl vtpm-attach` then waited its 10 s for a 2 it never saw. */
#define TPMBACK_INITWAIT_HOLD_MS 1000

/*
 * What the owner connects (core: vtpm_submit / vtpm_cancel / an INIT job).
 * submit: run one command; cmd stays valid until the owner calls
 *   tpmback_complete(), which it may do from inside submit.  locality is
 *   0..4.
 * cancel: the guest asked to cancel, or went away, while a command runs.
 *   Optional.  The owner still calls tpmback_complete (rsp NULL is fine).
 * power_cycle: a connection ended (guest closed, rebooted or vanished):
 *   the next guest must find a freshly reset TPM (PCRs reset, NV kept).
 * suspended: optional; a connection ended without the frontend closing
 *   it (its device or its frontend directory removed while Connected:
 *   the domain was suspended for xl save or xl migrate, or destroyed).
 *   Called instead of power_cycle; NULL: power_cycle.
 * connected: optional; a frontend connected, before its first command
 *   reaches submit.
 */
struct tpmback_ops {
	void (*submit)(struct tpmback *tb, const uint8_t *cmd, uint32_t len,
		       unsigned int locality);
	void (*cancel)(struct tpmback *tb);
	void (*power_cycle)(struct tpmback *tb);
	void (*suspended)(struct tpmback *tb);
	void (*connected)(struct tpmback *tb);
};

enum tpmback_state {
	TPMBACK_NO_DEVICE = 0, /* no backend directory (yet) */
	TPMBACK_REFUSED,       /* device refused (uuid, frontend path) */
	TPMBACK_INIT_WAIT,     /* state 2, waiting for the frontend */
	TPMBACK_CONNECTED,     /* state 4, page mapped, port bound */
	TPMBACK_CLOSING,       /* frontend Closing: state 5, unmapped */
	TPMBACK_CLOSED,	       /* detached by the toolstack: state 6 */
	TPMBACK_STOPPED,
};

struct tpmback_stats {
	uint64_t events;    /* event-channel wake-ups handled */
	uint64_t commands;  /* commands handed to submit */
	uint64_t responses; /* FINISH written */
	uint64_t aborted;   /* IDLE written instead of a response */
	uint64_t rejected;  /* hostile or malformed requests */
	uint64_t connects;
	uint64_t power_cycles;
	uint64_t suspends;  /* ended without a close (ops->suspended) */
	uint64_t throttled; /* times the event channel was paused */
};

struct tpmback {
	/* set by tpmback_init */
	uv_loop_t *loop;
	struct xenif *xif;
	struct tpmback_config cfg;
	const struct tpmback_ops *ops;
	void *data; /* the owner's */

	enum tpmback_state state;
	struct tpmback_stats stats;

	/* private */
	/* xenstore, watches, polls: our directory (self) is the backend's,
	 * the other end (peer) is the frontend's */
	struct xenbus_dev xb;
	char uuid_str[37];
	uint8_t uuid[16];

	/* the connection */
	uint32_t conn_gen; /* bumped on every disconnect */
	uint64_t hold_until; /* loop time; no Connected before it */
	void *page;	   /* the shared page, mapped */
	uint32_t ring_ref;
	uint32_t local_port;
	bool bound;
	void *extra; /* extra pages, mapped */
	uint32_t extra_n;
	uint32_t extra_refs[TPMBACK_MAX_EXTRA_PAGES];

	/* the command in flight */
	bool busy;
	bool cancel_sent;
	uint32_t busy_gen;
	uint32_t data_off; /* snapshot of 8 + 4 * nr_extra_pages */
	uint32_t data_cap; /* bytes from data_off to the area's end */
	uint8_t *cmd;

	bool stopping;
	bool stop_done; /* handles are closing */
	void (*stopped)(struct tpmback *tb);

	struct log_ratelimit rl;
};

/*
 * The one way every owner configures a backend: this domain (backend_domid)
 * serves frontend domain fe_domid's device devid, as the vTPM named uuid
 * (NULL: whatever uuid the toolstack wrote), mapping as many extra pages
 * as a frontend may attach.  max_cmd (0, no limit but the pages) and the
 * storm settings (0, the defaults) are left for the caller.
 */
void tpmback_config_init(struct tpmback_config *cfg, uint32_t backend_domid,
			 uint32_t fe_domid, uint32_t devid,
			 const uint8_t uuid[16]);

/*
 * tpmback_init then tpmback_start: 0, or -errno with nothing left
 * running or allocated (the caller may free tb at once).
 */
int tpmback_serve(struct tpmback *tb, uv_loop_t *loop, struct xenif *xif,
		  const struct tpmback_config *cfg,
		  const struct tpmback_ops *ops, void *data);

/* 0 or -errno (a bad config).  Nothing is started yet. */
int tpmback_init(struct tpmback *tb, uv_loop_t *loop, struct xenif *xif,
		 const struct tpmback_config *cfg,
		 const struct tpmback_ops *ops, void *data);

/* Watches xenstore and serves; 0 or -errno. */
int tpmback_start(struct tpmback *tb);

/*
 * The response to the command submit handed out: copied to the page,
 * then length, a barrier, state FINISH, notify.  rsp NULL aborts the
 * command (state IDLE).  Dropped if the frontend went away meanwhile.
 */
void tpmback_complete(struct tpmback *tb, const uint8_t *rsp, uint32_t len);

/*
 * Stops: waits for the command in flight (if any) to complete, then
 * unmaps, unbinds, unwatches and closes its handles, then calls done.
 * The xenbus state is left as it is so that a restarted backend resumes.
 */
void tpmback_stop(struct tpmback *tb, void (*done)(struct tpmback *tb));

const char *tpmback_state_name(enum tpmback_state s);

#endif
