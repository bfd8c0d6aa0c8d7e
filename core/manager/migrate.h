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

struct ctl_call;
struct manager;
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

#endif
