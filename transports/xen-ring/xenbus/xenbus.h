/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The xenbus plumbing every PV endpoint of ours shares (tpmback and
 * tpmfront), written once so that each keeps only its protocol: our
 * directory and the other end's, reading a node strictly, writing ours,
 * switching our state, the other end's state, refusing a device once per
 * reason, the flap-aware connect and disconnect log lines, and the
 * reconcile trigger (one pass over what xenstore holds now, re-entry
 * folded into one more pass).  The libuv side (polls, drains, storm
 * throttle) is the embedded xenloop.
 *
 * Nodes the other end writes are hostile: reads are strict (a value with
 * a NUL inside, a sign, a leading zero, white space or an overflow is
 * junk), and a log line a peer can trigger is rate-limited.
 */
#ifndef VTPM_XENBUS_H
#define VTPM_XENBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/log.h"
#include "xenbus/xenif.h"
#include "xenbus/xenloop.h"

/* Connects within this window beyond XENBUS_FLAP_QUIET are a flapping
 * peer: one rate-limited warning instead of a line per connect. */
#define XENBUS_FLAP_WINDOW_MS 10000
#define XENBUS_FLAP_QUIET 4

/* Passes one xenbus_reconcile makes at the most. */
#define XENBUS_RECONCILE_PASSES 4

struct xenbus_dev;

struct xenbus_ops {
	/* One pass of the owner's state machine over what xenstore holds
	 * now; true when another pass is needed at once. */
	bool (*step)(struct xenbus_dev *d);
	/* Our port fired, or a storm pause ended and something may have
	 * come meanwhile.  Not called while the owner is stopping. */
	void (*event)(struct xenbus_dev *d);
	/* Every handle is closed (after xenbus_close). */
	void (*closed)(struct xenbus_dev *d);
};

struct xenbus_setup {
	const char *name;      /* what log lines start with: "dom5 vtpm 0" */
	const char *peer_role; /* "frontend" or "backend" */
	struct log_ratelimit *rl;
	uint64_t *rejected;   /* the owner's count of junk the peer wrote */
	uint64_t *throttled;  /* the owner's count of storm pauses */
	uint64_t *events;     /* the owner's count of wake-ups on its port */
	const bool *stopping; /* the owner's: while set, no pass runs */
	/* The owner's event channel: its port while *bound. */
	const uint32_t *port;
	const bool *bound;
	/* The storm throttle (xenloop.h); 0 takes its default. */
	unsigned int storm_events, storm_window_ms, storm_pause_ms;
};

struct xenbus_dev {
	/* set by xenbus_init */
	uv_loop_t *loop;
	struct xenif *xif;
	const struct xenbus_ops *ops;
	void *owner;
	char name[48];
	const char *peer_role;
	struct log_ratelimit *rl;
	uint64_t *rejected, *events;
	const bool *stopping;
	const uint32_t *port;
	const bool *bound;

	/* xenbus_set_self / xenbus_set_peer */
	char self[96], self_token[64];
	char peer[96], peer_token[64];

	/* private */
	bool self_watched, peer_watched;
	char *refused_why; /* the reason last logged */
	uint64_t flap_start;
	unsigned int flap_count;
	bool in_reconcile, reconcile_again;
	struct xenloop io; /* polls, drains, storm throttle */
};

void xenbus_init(struct xenbus_dev *d, uv_loop_t *loop, struct xenif *xif,
		 const struct xenbus_ops *ops, void *owner,
		 const struct xenbus_setup *s);

/* Our directory (where xenbus_write writes) and the other end's, each
 * with the token its watch carries.  -ENAMETOOLONG when a path does not
 * fit (nothing is changed then). */
int xenbus_set_self(struct xenbus_dev *d, const char *path, const char *token);
int xenbus_set_peer(struct xenbus_dev *d, const char *path, const char *token);

/* Watches our directory and starts the xenloop: 0 or -errno (logged).  On
 * failure the watch is removed again. */
int xenbus_start(struct xenbus_dev *d);

/* Watches (on) or stops watching the other end's directory; a watch that
 * cannot be set is logged and tried again on the next call. */
void xenbus_watch_peer(struct xenbus_dev *d, bool on);

/* Removes both watches and closes the xenloop; ops->closed runs once its
 * handles are closed.  Calling it again does nothing. */
void xenbus_close(struct xenbus_dev *d);

/* ---- xenstore ---- */

/* dir/node: 0 with *val malloc'd (NUL-terminated, *len without the NUL;
 * free it even on failure), or -errno (-ENOENT: no such node). */
int xenbus_read(struct xenbus_dev *d, const char *dir, const char *node,
		char **val, size_t *len);

/* dir/node as a plain decimal 0..max: 0, -ENOENT, -EINVAL (junk) or
 * -ERANGE (above max). */
int xenbus_read_u32(struct xenbus_dev *d, const char *dir, const char *node,
		    uint32_t max, uint32_t *out);

/* Does dir/node hold exactly want (no more bytes, no NUL inside)? */
bool xenbus_read_is(struct xenbus_dev *d, const char *dir, const char *node,
		    const char *want);

/* Is there a dir/node at all? */
bool xenbus_exists(struct xenbus_dev *d, const char *dir, const char *node);

/* Writes our node (self/node): 0 or -errno, logged (rate-limited). */
int xenbus_write(struct xenbus_dev *d, const char *node, const char *val);
int xenbus_write_u32(struct xenbus_dev *d, const char *node, uint32_t val);

/*
 * Our xenbus state, written only when the node holds something else: our
 * own write fires our own watch, and the toolstack writes this node too.
 */
void xenbus_switch_state(struct xenbus_dev *d, int state);

/*
 * The other end's xenbus state (0 .. XenbusStateReconfigured):
 * XenbusStateUnknown when the node is absent, or unreadable (-EACCES)
 * and unreadable_is_gone (xenstore hides a destroyed domain's nodes from
 * a driver domain); -1 when it holds junk (counted and logged).
 */
int xenbus_peer_state(struct xenbus_dev *d, bool unreadable_is_gone);

/* ---- what the log says about the device ---- */

/* A refusal, logged once per distinct reason (the watch fires on every
 * write, and a refused device stays refused until something changes). */
void xenbus_refuse(struct xenbus_dev *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The device is accepted: the next refusal is logged again. */
void xenbus_accept(struct xenbus_dev *d);

/* A connect, at info; from a peer that connects more than
 * XENBUS_FLAP_QUIET times in XENBUS_FLAP_WINDOW_MS, one rate-limited
 * warning instead. */
void xenbus_log_connect(struct xenbus_dev *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A disconnect: at info, at debug while the peer flaps. */
void xenbus_log_disconnect(struct xenbus_dev *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- the state machine ---- */

/*
 * Runs ops->step until it asks for no other pass (at most
 * XENBUS_RECONCILE_PASSES, none while the owner is stopping).  Called
 * from inside a pass (a callback of the owner's), it asks for one more
 * pass instead of recursing.
 */
void xenbus_reconcile(struct xenbus_dev *d);

#endif
