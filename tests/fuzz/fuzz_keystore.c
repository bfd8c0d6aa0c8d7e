/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Key store decoding under a fixed root key.  Random bytes almost never
 * authenticate, so half of the inputs are sealed first: the body parser
 * then sees attacker-chosen plaintext, as it would with a stolen key.
 * A store that decodes must survive a commit: re-encoded it has the same
 * size and decodes to the same records.  Every refusal is a key store
 * error, never an errno.  The sealed inputs take their record layout
 * from bits 1-3 of the first byte (0: before instance-uids, 1: with uid
 * and gid, 2: with imports, 3: with online migrations, 4-7: unknown); a
 * layout 0 store grows by the ids when rewritten.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/keystore.h"

static void same_store(const struct keystore *a, const struct keystore *b)
{
	if (a->nrecs != b->nrecs || a->ngroups != b->ngroups ||
	    a->next_group_id != b->next_group_id ||
	    memcmp(a->groups, b->groups, a->ngroups * sizeof(*a->groups)) ||
	    a->nimports != b->nimports ||
	    (a->nimports && memcmp(a->imports, b->imports,
				   a->nimports * KEYSTORE_IMPORT_ID_LEN)) ||
	    a->ntxs != b->ntxs)
		abort();
	for (size_t i = 0; i < a->ntxs; i++) {
		const struct keystore_tx *x = &a->txs[i], *y = &b->txs[i];

		if (memcmp(x->uuid, y->uuid, 16) || memcmp(x->txid, y->txid, 16) ||
		    x->state != y->state || x->flags != y->flags ||
		    memcmp(x->peer_ak_sha256, y->peer_ak_sha256, 32) ||
		    memcmp(x->addr, y->addr, sizeof(x->addr)))
			abort();
	}
	for (size_t i = 0; i < a->nimports; i++)
		if (!keystore_import_has(b, a->imports[i]))
			abort();
	for (size_t i = 0; i < a->nrecs; i++) {
		const struct keystore_rec *x = &a->recs[i], *y = &b->recs[i];

		if (memcmp(x->uuid, y->uuid, 16) || x->group != y->group ||
		    x->flags != y->flags || x->tpm_version != y->tpm_version ||
		    x->generation != y->generation ||
		    memcmp(x->state_hash, y->state_hash, 32) ||
		    memcmp(x->state_key, y->state_key, 32) || x->uid != y->uid ||
		    x->gid != y->gid)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t root[KEYSTORE_ROOT_KEY_LEN] = { 1 };
	struct keystore ks, again;
	struct keystore_meta meta, meta2;
	uint8_t *file = NULL, *re = NULL;
	size_t len, relen, grown = 0;
	uint16_t layout = 0;
	int rc;

	if (size && (data[0] & 1)) {
		layout = (uint16_t)((data[0] >> 1) & 7);
		if (keystore_seal_layout(root, 7, 9, layout, data + 1, size - 1,
					 &file, &len))
			return 0;
		data = file;
		size = len;
	}
	rc = keystore_decode(data, size, root, &ks, &meta);
	if (rc && !keystore_is_err(rc))
		abort();
	if (rc == 0 && layout > KEYSTORE_LAYOUT_ONLINE)
		abort();
	if (rc == 0) {
		uint32_t uid;

		(void)keystore_check_fresh(meta.nv_counter, meta.generation);
		if (data[10] == 0 && data[11] == 0) /* layout 0: decoded */
			grown = (KEYSTORE_REC_IDS_LEN - KEYSTORE_REC_LEN) * ks.nrecs;
		/* The uid handed out is in range and nobody's (each record
		 * holds at most two, so 2n + 1 ids always leave one). */
		if (keystore_uid_alloc(&ks, 1000, 1000 + 2 * (uint32_t)ks.nrecs,
				       &uid))
			abort();
		for (size_t i = 0; i < ks.nrecs; i++)
			if (ks.recs[i].uid == uid || ks.recs[i].gid == uid ||
			    uid < 1000 || uid > 1000 + 2 * ks.nrecs)
				abort();
		for (size_t i = 0; i < ks.nrecs; i++)
			if (keystore_find(&ks, ks.recs[i].uuid) != &ks.recs[i])
				abort();
		if (keystore_encode(&ks, root, meta.generation, meta.nv_counter,
				    &re, &relen) != 0 || relen != size + grown)
			abort();
		if (keystore_decode(re, relen, root, &again, &meta2) != 0 ||
		    meta2.generation != meta.generation ||
		    meta2.nv_counter != meta.nv_counter)
			abort();
		same_store(&ks, &again);
		/* Taking a vTPM out and putting it back changes nothing. */
		if (ks.nrecs) {
			struct keystore_rec r = ks.recs[ks.nrecs / 2];

			if (keystore_del(&ks, r.uuid) || keystore_find(&ks, r.uuid) ||
			    keystore_add(&ks, &r) != 0 ||
			    keystore_add(&ks, &r) != KS_ERR_EXISTS)
				abort();
			same_store(&ks, &again);
		}
		keystore_free(&again);
		/* Deleting every group the store allows leaves it valid. */
		for (size_t i = ks.ngroups; i-- > 0;) {
			rc = keystore_group_del(&ks, ks.groups[i]);

			if (rc && rc != KS_ERR_GROUP_BUSY && rc != KS_ERR_DEFAULT_GROUP)
				abort();
		}
		keystore_free(&ks);
		free(re);
	}
	free(file);
	return 0;
}
