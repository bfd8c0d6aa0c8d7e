/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vTPMs the manager knows: each a key store record (the secret part)
 * and a stored record in instances.json (the operational part), and what
 * control asks of them: create, delete, start, stop.
 */
#ifndef VTPM_MANAGER_REGISTRY_H
#define VTPM_MANAGER_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/hex.h"

struct manager;
struct vtpm_entry;

/* What instances.json stores of one vTPM. */
struct vtpm_rec {
	uint8_t uuid[16];
	char uuid_str[UUID_STR_LEN];
	long domid;
	char transport[160];
	int tpm_version;          /* 1 or 2 */
	bool autostart;           /* should be running */
	bool allow_plaintext_state; /* its instance hands out state blobs in
				       the clear (the operator's choice) */
};

#define MGR_TRANSPORT_XEN_DOMAIN "xen-domain"

struct vtpm_entry *mgr_entry_first(struct manager *m);
struct vtpm_entry *mgr_entry_next(struct manager *m, struct vtpm_entry *e);
#define mgr_foreach_entry(e, m)                                              \
	for ((e) = mgr_entry_first(m); (e); (e) = mgr_entry_next((m), (e)))

struct vtpm_entry *mgr_entry_find(struct manager *m, const uint8_t uuid[16]);
/* A new vTPM: a key store record (not yet committed) and its entry.
 * 0 or a KS_ERR_* code. */
int mgr_entry_new(struct manager *m, const uint8_t uuid[16], int tpm_version,
		  struct vtpm_entry **out);
/* Its instance runs in a domain of its own (transport xen-domain). */
bool mgr_entry_is_remote(const struct vtpm_entry *e);

/* The uid and gid e's instance runs as: its own (instance-uids), or
 * instance-user's when no range is set or e has none yet. */
void mgr_entry_ids(const struct vtpm_entry *e, uid_t *uid, gid_t *gid);
/* Gives every key store record without ids one from instance-uids (at
 * load: stores written before the range was set).  0 or KS_ERR_FULL. */
int mgr_ids_assign(struct manager *m);

/* instances.json */
char *mgr_entries_json(struct manager *m);
void mgr_entries_load(struct manager *m);

/* A new vTPM as control creates it: its entry and key store record
 * (mgr_entry_new) with these operational fields; the caller commits. */
int mgr_vtpm_create(struct manager *m, const uint8_t uuid[16],
		    int tpm_version, long domid, const char *transport,
		    struct vtpm_entry **out);
/* Removes a stopped vTPM: its record and its entry (not committed: the
 * caller commits, then removes its state files with
 * mgr_vtpm_remove_state).  0, -EBUSY (not stopped) or a KS_ERR_* code. */
int mgr_vtpm_delete(struct manager *m, struct vtpm_entry *e);
/* A deleted vTPM's state files and directory, once the store that no
 * longer names it is durable: a crash in between leaves files no record
 * names (noise without their key), never a record without its state.
 * Nothing if a vTPM of that UUID exists again. */
void mgr_vtpm_remove_state(struct manager *m, const uint8_t uuid[16]);
/* Marks it to run, and starts its instance.  0, -EPERM (it runs in its
 * own domain) or a negative errno. */
int mgr_vtpm_start(struct vtpm_entry *e);
/* Marks it not to run, stops its instance, calls cb once it is gone. */
void mgr_vtpm_stop(struct vtpm_entry *e, void (*cb)(void *arg), void *arg);

#endif
