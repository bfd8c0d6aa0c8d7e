/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Online migration of a running vTPM between two managers
 * (docs/migration.md, "Between hosts, online"; the frames: proto/migwire.h).
 * The source (vtpmctl migrate) connects to the destination's
 * migrate-listen address; both prove themselves with their physical TPM's
 * attestation key, pinned on the other side.  One transaction per move,
 * recorded in the key store (keystore_tx): the source's commit point is
 * the forced commit of the tombstone with KS_TX_OUT_COMMITTED.
 */
#ifndef VTPM_MANAGER_ONLINE_H
#define VTPM_MANAGER_ONLINE_H

#include <json-c/json.h>

struct ctl_call;
struct manager;
struct vtpm_entry;

/* At start-up, before the autostart: a source's uncommitted move is
 * aborted (the vTPM runnable here again). */
void mgr_online_recover(struct manager *m);
/* Once the loop runs: listens on migrate-listen (if set) and retries the
 * COMMIT of moves committed here but not acknowledged.  0 or -errno. */
int mgr_online_start(struct manager *m);
/* At the manager's stop: no new connection, no retry. */
void mgr_online_stop(struct manager *m);

void mgr_cmd_migrate(struct ctl_call *c, json_object *req);
/* What "show" adds: the vTPM's latest online migration. */
void mgr_online_show(const struct vtpm_entry *e, json_object *o);

#endif
