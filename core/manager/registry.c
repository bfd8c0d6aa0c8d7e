/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vTPMs the manager knows (registry.h): the list of entries, their
 * stored part (instances.json), and the lifecycle control asks for.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/hex.h"
#include "lib/log.h"
#include "lib/store.h"
#include "manager/manager.h"
#include "manager/registry.h"

struct vtpm_entry *mgr_entry_first(struct manager *m)
{
	struct list_node *n = list_first(&m->entries);

	return n ? list_item(n, struct vtpm_entry, node) : NULL;
}

struct vtpm_entry *mgr_entry_next(struct manager *m, struct vtpm_entry *e)
{
	return e->node.next == &m->entries
		       ? NULL
		       : list_item(e->node.next, struct vtpm_entry, node);
}

struct vtpm_entry *mgr_entry_find(struct manager *m, const uint8_t uuid[16])
{
	struct vtpm_entry *e;

	mgr_foreach_entry(e, m)
		if (memcmp(e->rec.uuid, uuid, 16) == 0)
			return e;
	return NULL;
}

bool mgr_entry_is_remote(const struct vtpm_entry *e)
{
	return strcmp(e->rec.transport, MGR_TRANSPORT_XEN_DOMAIN) == 0;
}

static struct vtpm_entry *entry_alloc(struct manager *m)
{
	struct vtpm_entry *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->m = m;
	list_init(&e->node);
	sup_child_init(&e->child);
	return e;
}

int mgr_entry_new(struct manager *m, const uint8_t uuid[16], int tpm_version,
		  struct vtpm_entry **out)
{
	struct keystore_rec rec;
	struct vtpm_entry *e = entry_alloc(m);
	int rc;

	*out = NULL;
	if (!e)
		return KS_ERR_NOMEM;
	memset(&rec, 0, sizeof(rec));
	memcpy(rec.uuid, uuid, 16);
	rec.group = KEYSTORE_DEFAULT_GROUP;
	rec.flags = KS_REC_NOSTATE;
	rec.tpm_version = (uint8_t)tpm_version;
	if (m->cfg->inst_uid_lo) {
		rc = keystore_uid_alloc(&m->ks, m->cfg->inst_uid_lo,
					m->cfg->inst_uid_hi, &rec.uid);
		if (rc) {
			free(e);
			return rc;
		}
		rec.gid = rec.uid;
	}
	if (RAND_priv_bytes(rec.state_key, sizeof(rec.state_key)) != 1) {
		free(e);
		return KS_ERR_CRYPTO;
	}
	rc = keystore_add(&m->ks, &rec);
	OPENSSL_cleanse(&rec, sizeof(rec));
	if (rc) {
		free(e);
		return rc;
	}
	e->rec.tpm_version = tpm_version;
	memcpy(e->rec.uuid, uuid, 16);
	uuid_format(e->rec.uuid, e->rec.uuid_str);
	list_push_front(&m->entries, &e->node);
	m->entries_dirty = true;
	*out = e;
	return 0;
}

void mgr_entry_ids(const struct vtpm_entry *e, uid_t *uid, gid_t *gid)
{
	const struct keystore_rec *r = keystore_find(&e->m->ks, e->rec.uuid);

	if (e->m->cfg->inst_uid_lo && r && r->uid) {
		*uid = r->uid;
		*gid = r->gid;
	} else {
		*uid = e->m->inst_uid;
		*gid = e->m->inst_gid;
	}
}

int mgr_ids_assign(struct manager *m)
{
	int rc;

	if (!m->cfg->inst_uid_lo)
		return 0;
	for (size_t i = 0; i < m->ks.nrecs; i++) {
		struct keystore_rec *r = &m->ks.recs[i];
		char us[UUID_STR_LEN];

		if (r->uid)
			continue;
		rc = keystore_uid_alloc(&m->ks, m->cfg->inst_uid_lo,
					m->cfg->inst_uid_hi, &r->uid);
		if (rc)
			return rc;
		r->gid = r->uid;
		uuid_format(r->uuid, us);
		log_info("vTPM %s: runs as uid and gid %u from now on", us,
			 (unsigned)r->uid);
		m->entries_dirty = true; /* commits the store too */
	}
	return 0;
}

/* ---- instances.json: the operational part of each vTPM ---- */

char *mgr_entries_json(struct manager *m)
{
	json_object *arr = json_object_new_array();
	struct vtpm_entry *e;
	char *s;

	mgr_foreach_entry(e, m) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "uuid",
				       json_object_new_string(e->rec.uuid_str));
		json_object_object_add(o, "domid",
				       json_object_new_int64(e->rec.domid));
		json_object_object_add(o, "transport",
				       json_object_new_string(e->rec.transport));
		json_object_object_add(o, "tpm_version",
				       json_object_new_string(
					       e->rec.tpm_version == 1 ? "1.2" : "2.0"));
		json_object_object_add(o, "autostart",
				       json_object_new_boolean(e->rec.autostart));
		if (e->rec.allow_plaintext_state)
			json_object_object_add(o, "allow_plaintext_state",
					       json_object_new_boolean(1));
		json_object_array_add(arr, o);
	}
	s = strdup(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY));
	json_object_put(arr);
	if (!s)
		fatalx("out of memory");
	return s;
}

void mgr_entries_load(struct manager *m)
{
	uint8_t *buf;
	size_t len;
	json_object *arr;
	int rc;

	rc = store_read(m->dirfd, ENTRIES_FILE, 16 << 20, &buf, &len);
	if (rc == -ENOENT)
		return;
	if (rc)
		fatalx("%s: %s", ENTRIES_FILE, strerror(-rc));
	buf[len] = '\0';
	arr = json_tokener_parse((char *)buf);
	free(buf);
	if (!arr || !json_object_is_type(arr, json_type_array))
		fatalx("%s/%s: not a JSON array", m->cfg->state_dir, ENTRIES_FILE);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *o = json_object_array_get_idx(arr, i), *v;
		struct vtpm_entry *e = entry_alloc(m);
		const char *us;

		if (!e)
			fatalx("out of memory");
		if (!json_object_object_get_ex(o, "uuid", &v) ||
		    !(us = json_object_get_string(v)) ||
		    uuid_parse_str(us, e->rec.uuid))
			fatalx("%s: entry %zu has no valid uuid", ENTRIES_FILE, i);
		uuid_format(e->rec.uuid, e->rec.uuid_str);
		if (json_object_object_get_ex(o, "domid", &v))
			e->rec.domid = json_object_get_int64(v);
		if (json_object_object_get_ex(o, "transport", &v))
			snprintf(e->rec.transport, sizeof(e->rec.transport), "%s",
				 json_object_get_string(v));
		e->rec.tpm_version = 2;
		if (json_object_object_get_ex(o, "tpm_version", &v) &&
		    strcmp(json_object_get_string(v), "1.2") == 0)
			e->rec.tpm_version = 1;
		if (json_object_object_get_ex(o, "autostart", &v))
			e->rec.autostart = json_object_get_boolean(v);
		if (json_object_object_get_ex(o, "allow_plaintext_state", &v))
			e->rec.allow_plaintext_state =
				json_object_get_boolean(v);
		if (!keystore_find(&m->ks, e->rec.uuid)) {
			log_warnx("%s: %s has no key store record; ignoring it",
				  ENTRIES_FILE, e->rec.uuid_str);
			free(e);
			continue;
		}
		list_push_front(&m->entries, &e->node);
	}
	json_object_put(arr);
}

/* ---- lifecycle ---- */

int mgr_vtpm_create(struct manager *m, const uint8_t uuid[16],
		    int tpm_version, long domid, const char *transport,
		    struct vtpm_entry **out)
{
	int rc = mgr_entry_new(m, uuid, tpm_version, out);

	if (rc)
		return rc;
	(*out)->rec.domid = domid;
	snprintf((*out)->rec.transport, sizeof((*out)->rec.transport), "%s",
		 transport);
	return 0;
}

/* The files an instance writes in its state directory, then the
 * directory: without its key the state is noise.  By descriptor, never
 * following a link the instance may have left there. */
void mgr_vtpm_remove_state(struct manager *m, const uint8_t uuid[16])
{
	static const char *const names[] = { ".0", ".1", ".lock", ".0.tmp",
					     ".1.tmp" };
	char name[200], us[UUID_STR_LEN];
	int vfd, dfd;

	if (keystore_find(&m->ks, uuid))
		return;
	uuid_format(uuid, us);
	if (store_dir_open(m->dirfd, "vtpms", 0, &vfd))
		return;
	if (store_dir_open(vfd, us, 0, &dfd) == 0) {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			snprintf(name, sizeof(name), "vtpm-%s.state%s", us,
				 names[i]);
			unlinkat(dfd, name, 0);
		}
		close(dfd);
		unlinkat(vfd, us, AT_REMOVEDIR);
	}
	close(vfd);
}

static void free_entry(uv_handle_t *h)
{
	free(h->data);
}

int mgr_vtpm_delete(struct manager *m, struct vtpm_entry *e)
{
	int rc;

	if (!sup_stopped(e) || sup_has_waiters(e))
		return -EBUSY;
	rc = keystore_del(&m->ks, e->rec.uuid);
	if (rc)
		return rc;
	list_remove(&e->node);
	m->entries_dirty = true;
	/* An instance in its own domain may still hold a ring to it: it has
	 * nothing to ask for any more, and the ring must not outlive e. */
	mgr_link_close(e);
	log_info("vTPM %s deleted", e->rec.uuid_str);
	if (e->child.timer_open) {
		e->child.timer.data = e;
		uv_close((uv_handle_t *)&e->child.timer, free_entry);
	} else {
		free(e);
	}
	return 0;
}

int mgr_vtpm_start(struct vtpm_entry *e)
{
	if (mgr_entry_is_remote(e))
		return -EPERM;
	e->rec.autostart = true;
	e->m->entries_dirty = true;
	e->child.backoff_ms = 0;
	return sup_start(e);
}

void mgr_vtpm_stop(struct vtpm_entry *e, void (*cb)(void *arg), void *arg)
{
	e->rec.autostart = false;
	e->m->entries_dirty = true;
	sup_stop(e);
	/* Answered once the instance is gone, so "delete" can follow. */
	sup_wait_stopped(e, cb, arg);
}
