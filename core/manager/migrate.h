/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Offline migration and clones (docs/migration.md): the migration key in
 * the physical TPM (migration.key, a TPM-wrapped blob whose authValue is
 * derived from the root key), export of a stopped vTPM to another
 * manager's certified key, import of such a blob, and clones on this
 * host.  The control commands migration-key, export, import and clone.
 */
#ifndef VTPM_MANAGER_MIGRATE_H
#define VTPM_MANAGER_MIGRATE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctl_call;
struct manager;
struct migkey;
struct vtpm_entry;

#define MIGKEY_FILE "migration.key"

void mgr_cmd_migration_key(struct ctl_call *c, json_object *req);
void mgr_cmd_export(struct ctl_call *c, json_object *req);
void mgr_cmd_import(struct ctl_call *c, json_object *req);
void mgr_cmd_clone(struct ctl_call *c, json_object *req);

/* Whether e may not run: exported (a tombstone), or an export, import or
 * clone holds it. */
bool mgr_entry_frozen(const struct vtpm_entry *e);

/* What "show" adds for a tombstone: where the vTPM went. */
void mgr_migrate_show(const struct vtpm_entry *e, json_object *o);

void mgr_migrate_free(struct manager *m);

/* ---- for online migration (online.c) ---- */

/* What a request of online.c found; the pointers live until the
 * callback returns. */
struct mgr_online_res {
	int rc;                  /* 0, -EPERM (refused: err), else failed */
	const char *err;
	const uint8_t *pub, *attest, *sig; /* certify: the key, TPM2_Certify */
	size_t pub_len, attest_len, sig_len;
	const uint8_t *blob;     /* export: the sealed blob */
	size_t blob_len;
	uint64_t generation;     /* export: of the state it carries */
	bool had_volatile;       /* export, import: a running TPM's state */
};
typedef void (*mgr_online_cb)(void *arg, const struct mgr_online_res *r);

/* The migration key, made if need be, certified again by the AK (TPM
 * queue). */
void mgr_online_certify(struct manager *m, mgr_online_cb cb, void *arg);
/* Reads the stopped vTPM e's committed state (with the volatile state
 * and tag its instance saved at the stop) and seals it to dest (store
 * queue).  Changes nothing. */
void mgr_online_export(struct manager *m, struct vtpm_entry *e,
		       const struct migkey *dest, mgr_online_cb cb, void *arg);
/* Opens blob (TPM queue), which must be for uuid, and creates the vTPM
 * as a pending import of transaction txid from the manager whose AK
 * hashes to peer_ak: record PENDING, KS_TX_IN_PENDING, the blob's id,
 * one forced commit. */
void mgr_online_import(struct manager *m, const uint8_t *blob, size_t len,
		       const uint8_t uuid[16], const uint8_t txid[16],
		       const uint8_t peer_ak[32], mgr_online_cb cb, void *arg);

#endif
