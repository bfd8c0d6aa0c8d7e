/* SPDX-License-Identifier: BSD-3-Clause */
#include "proto/keystore.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bytes.h"
#include "lib/envelope.h"
#include "proto/mgrproto.h"

/* The key store's own header fields, between the envelope's version and
 * its nonce (keystore.h has the whole layout). */
#define LAYOUT_OFF 10
#define GEN_OFF 12
#define NVC_OFF 20

_Static_assert(KEYSTORE_MAX_GROUPS <= MGR_GROUP_LIST_MAX,
	       "every group must fit one GROUP_LIST response");
_Static_assert(KEYSTORE_MAX_BODY <= ENVELOPE_MAX_BODY_LIMIT,
	       "GCM lengths are ints");
_Static_assert(KEYSTORE_TAG_LEN == ENVELOPE_TAG_LEN, "one GCM tag");
_Static_assert(NVC_OFF + 8 == KEYSTORE_HDR_LEN - ENVELOPE_SUFFIX_LEN,
	       "the nonce follows the NV counter");

static const struct envelope_fmt ks_fmt = {
	.magic = KEYSTORE_MAGIC,
	.version = KEYSTORE_VERSION,
	.hdr_len = KEYSTORE_HDR_LEN,
	.max_body = KEYSTORE_MAX_BODY,
	.kdf_info = "vtpm-service keystore v1",
	.err = {
		[ENV_TRUNCATED] = KS_ERR_TRUNCATED,
		[ENV_MAGIC] = KS_ERR_MAGIC,
		[ENV_VERSION] = KS_ERR_VERSION,
		[ENV_FORMAT] = KS_ERR_FORMAT,
		[ENV_AUTH] = KS_ERR_AUTH,
		[ENV_NOMEM] = KS_ERR_NOMEM,
		[ENV_CRYPTO] = KS_ERR_CRYPTO,
	},
};

const char *keystore_strerror(int err)
{
	switch (err) {
	case KS_OK:
		return "ok";
	case KS_FRESH_PENDING:
		return "one commit ahead of the TPM counter (increment pending)";
	case KS_ERR_TRUNCATED:
		return "truncated (shorter than its header says)";
	case KS_ERR_MAGIC:
		return "not a vtpm-service key store (bad magic)";
	case KS_ERR_VERSION:
		return "unknown key store format version";
	case KS_ERR_AUTH:
		return "authentication failed (wrong root key, or the file was modified)";
	case KS_ERR_FORMAT:
		return "malformed key store contents";
	case KS_ERR_NOMEM:
		return "out of memory";
	case KS_ERR_CRYPTO:
		return "crypto library failure";
	case KS_ERR_EXISTS:
		return "a vTPM with this UUID already exists";
	case KS_ERR_NOT_FOUND:
		return "no vTPM with this UUID";
	case KS_ERR_NO_GROUP:
		return "no such group";
	case KS_ERR_GROUP_BUSY:
		return "the group still holds vTPMs";
	case KS_ERR_DEFAULT_GROUP:
		return "the default group cannot be deleted";
	case KS_ERR_FULL:
		return "key store limit reached (records, groups or group ids)";
	case KS_ERR_INVALID:
		return "invalid record (zero UUID, TPM version or flags)";
	case KS_ERR_ROLLBACK:
		return "key store older than the TPM NV counter (rollback)";
	case KS_ERR_AHEAD:
		return "key store further ahead of the TPM NV counter than one commit";
	case KS_ERR_NO_SLOT:
		return "no slot of the key store file holds an authentic copy";
	case KS_ERR_SLOTS:
		return "key store slot file inconsistent (header, or slots no writer leaves)";
	}
	return "unknown error";
}

/* Moves an array into a bigger block, wiping the old one: realloc would
 * leave keys behind in freed memory. */
static int grow(void **arr, size_t *cap, size_t need, size_t elsize)
{
	size_t ncap = *cap ? *cap : 8;
	void *n;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	n = calloc(ncap, elsize);
	if (!n)
		return KS_ERR_NOMEM;
	if (*arr) {
		memcpy(n, *arr, *cap * elsize);
		OPENSSL_cleanse(*arr, *cap * elsize);
		free(*arr);
	}
	*arr = n;
	*cap = ncap;
	return 0;
}

enum keystore_err keystore_init(struct keystore *ks)
{
	memset(ks, 0, sizeof(*ks));
	if (grow((void **)&ks->groups, &ks->capgroups, 1, sizeof(uint32_t)))
		return KS_ERR_NOMEM;
	ks->groups[0] = KEYSTORE_DEFAULT_GROUP;
	ks->ngroups = 1;
	ks->next_group_id = KEYSTORE_DEFAULT_GROUP + 1;
	return 0;
}

void keystore_free(struct keystore *ks)
{
	if (ks->recs) {
		OPENSSL_cleanse(ks->recs, ks->caprecs * sizeof(*ks->recs));
		free(ks->recs);
	}
	free(ks->groups);
	free(ks->imports);
	free(ks->txs);
	memset(ks, 0, sizeof(*ks));
}

/* Index of the first record whose UUID is not below uuid. */
static size_t rec_lower_bound(const struct keystore *ks, const uint8_t uuid[16])
{
	size_t lo = 0, hi = ks->nrecs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(ks->recs[mid].uuid, uuid, 16) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct keystore_rec *keystore_find(const struct keystore *ks,
				   const uint8_t uuid[16])
{
	size_t i = rec_lower_bound(ks, uuid);

	if (i < ks->nrecs && memcmp(ks->recs[i].uuid, uuid, 16) == 0)
		return &ks->recs[i];
	return NULL;
}

static int groups_contain(const uint32_t *groups, size_t n, uint32_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (groups[mid] == id)
			return 1;
		if (groups[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

int keystore_group_has(const struct keystore *ks, uint32_t id)
{
	return groups_contain(ks->groups, ks->ngroups, id);
}

/* Index of the first import id not below id. */
static size_t import_lower_bound(const struct keystore *ks,
				 const uint8_t id[KEYSTORE_IMPORT_ID_LEN])
{
	size_t lo = 0, hi = ks->nimports;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(ks->imports[mid], id, KEYSTORE_IMPORT_ID_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int keystore_import_has(const struct keystore *ks,
			const uint8_t id[KEYSTORE_IMPORT_ID_LEN])
{
	size_t i = import_lower_bound(ks, id);

	return i < ks->nimports &&
	       memcmp(ks->imports[i], id, KEYSTORE_IMPORT_ID_LEN) == 0;
}

enum keystore_err keystore_import_add(struct keystore *ks,
				      const uint8_t id[KEYSTORE_IMPORT_ID_LEN])
{
	size_t i = import_lower_bound(ks, id);

	if (i < ks->nimports &&
	    memcmp(ks->imports[i], id, KEYSTORE_IMPORT_ID_LEN) == 0)
		return KS_ERR_EXISTS;
	if (ks->nimports >= KEYSTORE_MAX_IMPORTS)
		return KS_ERR_FULL;
	if (grow((void **)&ks->imports, &ks->capimports, ks->nimports + 1,
		 KEYSTORE_IMPORT_ID_LEN))
		return KS_ERR_NOMEM;
	memmove(&ks->imports[i + 1], &ks->imports[i],
		(ks->nimports - i) * KEYSTORE_IMPORT_ID_LEN);
	memcpy(ks->imports[i], id, KEYSTORE_IMPORT_ID_LEN);
	ks->nimports++;
	return 0;
}

static int uuid_is_zero(const uint8_t uuid[16])
{
	static const uint8_t zero[16];

	return memcmp(uuid, zero, 16) == 0;
}

/* ---- online migrations ---- */

static size_t tx_lower_bound(const struct keystore *ks, const uint8_t uuid[16])
{
	size_t lo = 0, hi = ks->ntxs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(ks->txs[mid].uuid, uuid, 16) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int tx_valid(const struct keystore_tx *tx)
{
	size_t n = strnlen(tx->addr, KEYSTORE_TX_ADDR_LEN);

	if (uuid_is_zero(tx->uuid) || (tx->flags & ~KS_TX_F_START) ||
	    tx->state < KS_TX_OUT_PREPARING ||
	    tx->state > KS_TX_IN_DONE || n == KEYSTORE_TX_ADDR_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (tx->addr[i] < 0x21 || tx->addr[i] > 0x7e)
			return 0;
	for (size_t i = n; i < KEYSTORE_TX_ADDR_LEN; i++)
		if (tx->addr[i])
			return 0;
	return 1;
}

struct keystore_tx *keystore_tx_find(const struct keystore *ks,
				     const uint8_t uuid[16])
{
	size_t i = tx_lower_bound(ks, uuid);

	if (i < ks->ntxs && memcmp(ks->txs[i].uuid, uuid, 16) == 0)
		return &ks->txs[i];
	return NULL;
}

enum keystore_err keystore_tx_put(struct keystore *ks,
				  const struct keystore_tx *tx)
{
	struct keystore_tx t = *tx;
	size_t i, n = strnlen(t.addr, KEYSTORE_TX_ADDR_LEN);

	if (n < KEYSTORE_TX_ADDR_LEN)
		memset(t.addr + n, 0, KEYSTORE_TX_ADDR_LEN - n);
	if (!tx_valid(&t))
		return KS_ERR_INVALID;
	i = tx_lower_bound(ks, t.uuid);
	if (i < ks->ntxs && memcmp(ks->txs[i].uuid, t.uuid, 16) == 0) {
		ks->txs[i] = t;
		return 0;
	}
	if (ks->ntxs >= KEYSTORE_MAX_TX)
		return KS_ERR_FULL;
	if (grow((void **)&ks->txs, &ks->captxs, ks->ntxs + 1, sizeof(t)))
		return KS_ERR_NOMEM;
	memmove(&ks->txs[i + 1], &ks->txs[i], (ks->ntxs - i) * sizeof(t));
	ks->txs[i] = t;
	ks->ntxs++;
	return 0;
}

enum keystore_err keystore_tx_del(struct keystore *ks, const uint8_t uuid[16])
{
	struct keystore_tx *t = keystore_tx_find(ks, uuid);
	size_t i;

	if (!t)
		return KS_ERR_NOT_FOUND;
	i = (size_t)(t - ks->txs);
	memmove(&ks->txs[i], &ks->txs[i + 1], (ks->ntxs - i - 1) * sizeof(*t));
	ks->ntxs--;
	return 0;
}

static void put_tx(uint8_t *p, const struct keystore_tx *t)
{
	memcpy(p, t->uuid, 16);
	memcpy(p + 16, t->txid, 16);
	p[32] = t->state;
	p[33] = t->flags;
	p[34] = p[35] = 0;
	memcpy(p + 36, t->peer_ak_sha256, 32);
	memset(p + 68, 0, KEYSTORE_TX_ADDR_LEN);
	memcpy(p + 68, t->addr, strnlen(t->addr, KEYSTORE_TX_ADDR_LEN));
}

/* Layout 3's list: exactly len bytes, valid entries, ascending UUIDs. */
static int parse_txs(const uint8_t *p, size_t len, struct keystore *ks)
{
	uint32_t count;

	if (len < 4)
		return KS_ERR_FORMAT;
	count = be32_get(p);
	if (count == 0 || count > KEYSTORE_MAX_TX ||
	    (size_t)count * KEYSTORE_TX_LEN != len - 4)
		return KS_ERR_FORMAT;
	if (grow((void **)&ks->txs, &ks->captxs, count, sizeof(*ks->txs)))
		return KS_ERR_NOMEM;
	p += 4;
	for (uint32_t i = 0; i < count; i++, p += KEYSTORE_TX_LEN) {
		struct keystore_tx *t = &ks->txs[i];

		memcpy(t->uuid, p, 16);
		memcpy(t->txid, p + 16, 16);
		t->state = p[32];
		t->flags = p[33];
		memcpy(t->peer_ak_sha256, p + 36, 32);
		memcpy(t->addr, p + 68, KEYSTORE_TX_ADDR_LEN);
		if (p[34] || p[35] || !tx_valid(t) ||
		    (i && memcmp(ks->txs[i - 1].uuid, t->uuid, 16) >= 0))
			return KS_ERR_FORMAT;
	}
	ks->ntxs = count;
	return 0;
}

static int rec_valid(const struct keystore_rec *r)
{
	return !uuid_is_zero(r->uuid) &&
	       (r->tpm_version == 1 || r->tpm_version == 2) &&
	       !(r->flags & ~KS_REC_FLAGS_KNOWN) &&
	       /* Both ids or neither; never root's, never (uid_t)-1. */
	       (r->uid == 0) == (r->gid == 0) && r->uid != UINT32_MAX &&
	       r->gid != UINT32_MAX;
}

enum keystore_err keystore_add(struct keystore *ks,
			       const struct keystore_rec *rec)
{
	size_t i;

	if (!rec_valid(rec))
		return KS_ERR_INVALID;
	if (!keystore_group_has(ks, rec->group))
		return KS_ERR_NO_GROUP;
	i = rec_lower_bound(ks, rec->uuid);
	if (i < ks->nrecs && memcmp(ks->recs[i].uuid, rec->uuid, 16) == 0)
		return KS_ERR_EXISTS;
	if (ks->nrecs >= KEYSTORE_MAX_RECORDS)
		return KS_ERR_FULL;
	if (grow((void **)&ks->recs, &ks->caprecs, ks->nrecs + 1,
		 sizeof(*ks->recs)))
		return KS_ERR_NOMEM;
	memmove(&ks->recs[i + 1], &ks->recs[i],
		(ks->nrecs - i) * sizeof(*ks->recs));
	ks->recs[i] = *rec;
	ks->nrecs++;
	return 0;
}

enum keystore_err keystore_del(struct keystore *ks, const uint8_t uuid[16])
{
	struct keystore_rec *r = keystore_find(ks, uuid);
	size_t i;

	if (!r)
		return KS_ERR_NOT_FOUND;
	i = (size_t)(r - ks->recs);
	memmove(r, r + 1, (ks->nrecs - i - 1) * sizeof(*r));
	ks->nrecs--;
	OPENSSL_cleanse(&ks->recs[ks->nrecs], sizeof(*r));
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

enum keystore_err keystore_uid_alloc(const struct keystore *ks, uint32_t lo,
				     uint32_t hi, uint32_t *uid)
{
	uint32_t *used, next = lo;
	size_t n = 0;

	if (lo == 0 || lo > hi)
		return KS_ERR_INVALID;
	used = malloc((2 * ks->nrecs + 1) * sizeof(*used));
	if (!used)
		return KS_ERR_NOMEM;
	for (size_t i = 0; i < ks->nrecs; i++) {
		if (ks->recs[i].uid >= lo && ks->recs[i].uid <= hi)
			used[n++] = ks->recs[i].uid;
		if (ks->recs[i].gid >= lo && ks->recs[i].gid <= hi &&
		    ks->recs[i].gid != ks->recs[i].uid)
			used[n++] = ks->recs[i].gid;
	}
	qsort(used, n, sizeof(*used), cmp_u32);
	for (size_t i = 0; i < n && used[i] <= next; i++) {
		if (used[i] < next)
			continue; /* a duplicate */
		if (next == hi) {
			free(used);
			return KS_ERR_FULL;
		}
		next++;
	}
	free(used);
	*uid = next;
	return 0;
}

enum keystore_err keystore_group_new(struct keystore *ks, uint32_t *id)
{
	if (ks->ngroups >= KEYSTORE_MAX_GROUPS || ks->next_group_id == UINT32_MAX)
		return KS_ERR_FULL;
	if (grow((void **)&ks->groups, &ks->capgroups, ks->ngroups + 1,
		 sizeof(uint32_t)))
		return KS_ERR_NOMEM;
	/* Ids only grow, so appending keeps the array sorted. */
	*id = ks->next_group_id++;
	ks->groups[ks->ngroups++] = *id;
	return 0;
}

enum keystore_err keystore_group_del(struct keystore *ks, uint32_t id)
{
	size_t i;

	if (!keystore_group_has(ks, id))
		return KS_ERR_NO_GROUP;
	if (id == KEYSTORE_DEFAULT_GROUP)
		return KS_ERR_DEFAULT_GROUP;
	for (i = 0; i < ks->nrecs; i++)
		if (ks->recs[i].group == id)
			return KS_ERR_GROUP_BUSY;
	for (i = 0; ks->groups[i] != id; i++)
		;
	memmove(&ks->groups[i], &ks->groups[i + 1],
		(ks->ngroups - i - 1) * sizeof(uint32_t));
	ks->ngroups--;
	return 0;
}

enum keystore_err keystore_seal(const uint8_t root_key[KEYSTORE_ROOT_KEY_LEN],
				uint64_t generation, uint64_t nv_counter,
				const uint8_t *body, size_t bodylen,
				uint8_t **out, size_t *outlen)
{
	return keystore_seal_layout(root_key, generation, nv_counter,
				    KEYSTORE_LAYOUT_V0, body, bodylen, out,
				    outlen);
}

enum keystore_err keystore_seal_layout(const uint8_t root_key[KEYSTORE_ROOT_KEY_LEN],
				       uint64_t generation, uint64_t nv_counter,
				       uint16_t layout, const uint8_t *body,
				       size_t bodylen, uint8_t **out,
				       size_t *outlen)
{
	uint8_t hdr[KEYSTORE_HDR_LEN] = { 0 }, key[AEAD_KEY_LEN];
	int rc;

	be16_put(hdr + LAYOUT_OFF, layout);
	be64_put(hdr + GEN_OFF, generation);
	be64_put(hdr + NVC_OFF, nv_counter);
	rc = envelope_key(&ks_fmt, root_key, KEYSTORE_ROOT_KEY_LEN, key);
	if (!rc)
		rc = envelope_seal(&ks_fmt, key, hdr, body, bodylen, out,
				   outlen);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

static void put_rec(uint8_t *p, const struct keystore_rec *r)
{
	memcpy(p, r->uuid, 16);
	be32_put(p + 16, r->group);
	be32_put(p + 20, r->flags);
	p[24] = r->tpm_version;
	be64_put(p + 25, r->generation);
	memcpy(p + 33, r->state_hash, 32);
	memcpy(p + 65, r->state_key, 32);
	be32_put(p + 97, r->uid);
	be32_put(p + 101, r->gid);
}

/* A record of layout 0 leaves uid and gid 0 (none allocated). */
static void get_rec(const uint8_t *p, int has_ids, struct keystore_rec *r)
{
	memcpy(r->uuid, p, 16);
	r->group = be32_get(p + 16);
	r->flags = be32_get(p + 20);
	r->tpm_version = p[24];
	r->generation = be64_get(p + 25);
	memcpy(r->state_hash, p + 33, 32);
	memcpy(r->state_key, p + 65, 32);
	r->uid = has_ids ? be32_get(p + 97) : 0;
	r->gid = has_ids ? be32_get(p + 101) : 0;
}

enum keystore_err keystore_encode(const struct keystore *ks,
				  const uint8_t root_key[KEYSTORE_ROOT_KEY_LEN],
				  uint64_t generation, uint64_t nv_counter,
				  uint8_t **out, size_t *outlen)
{
	size_t bodylen = 12 + 4 * ks->ngroups + KEYSTORE_REC_IDS_LEN * ks->nrecs;
	uint16_t layout = ks->ntxs	   ? KEYSTORE_LAYOUT_ONLINE
			  : ks->nimports ? KEYSTORE_LAYOUT_IMPORTS
					 : KEYSTORE_LAYOUT_IDS;
	uint8_t *body, *p;
	int rc;

	if (ks->ngroups > KEYSTORE_MAX_GROUPS ||
	    ks->nrecs > KEYSTORE_MAX_RECORDS ||
	    ks->nimports > KEYSTORE_MAX_IMPORTS || ks->ntxs > KEYSTORE_MAX_TX)
		return KS_ERR_FULL;
	if (ks->nimports || ks->ntxs)
		bodylen += 4 + KEYSTORE_IMPORT_ID_LEN * ks->nimports;
	if (ks->ntxs)
		bodylen += 4 + KEYSTORE_TX_LEN * ks->ntxs;
	body = malloc(bodylen);
	if (!body)
		return KS_ERR_NOMEM;
	p = body;
	be32_put(p, ks->next_group_id);
	be32_put(p + 4, (uint32_t)ks->ngroups);
	p += 8;
	for (size_t i = 0; i < ks->ngroups; i++, p += 4)
		be32_put(p, ks->groups[i]);
	be32_put(p, (uint32_t)ks->nrecs);
	p += 4;
	for (size_t i = 0; i < ks->nrecs; i++, p += KEYSTORE_REC_IDS_LEN)
		put_rec(p, &ks->recs[i]);
	if (ks->nimports || ks->ntxs) {
		be32_put(p, (uint32_t)ks->nimports);
		if (ks->nimports)
			memcpy(p + 4, ks->imports,
			       KEYSTORE_IMPORT_ID_LEN * ks->nimports);
		p += 4 + KEYSTORE_IMPORT_ID_LEN * ks->nimports;
	}
	if (ks->ntxs) {
		be32_put(p, (uint32_t)ks->ntxs);
		p += 4;
		for (size_t i = 0; i < ks->ntxs; i++, p += KEYSTORE_TX_LEN)
			put_tx(p, &ks->txs[i]);
	}
	rc = keystore_seal_layout(root_key, generation, nv_counter, layout,
				  body, bodylen, out, outlen);
	OPENSSL_cleanse(body, bodylen);
	free(body);
	return rc;
}

enum keystore_err keystore_peek(const uint8_t *buf, size_t len,
				struct keystore_meta *meta)
{
	int rc = envelope_peek(&ks_fmt, buf, len);

	if (rc)
		return rc;
	meta->generation = be64_get(buf + GEN_OFF);
	meta->nv_counter = be64_get(buf + NVC_OFF);
	return 0;
}

/* The groups part of the body; *off moves past it. */
static int parse_groups(const uint8_t *body, size_t len, size_t *off,
			struct keystore *ks)
{
	uint32_t count;

	if (len < 8)
		return KS_ERR_FORMAT;
	ks->next_group_id = be32_get(body);
	count = be32_get(body + 4);
	*off = 8;
	if (count == 0 || count > KEYSTORE_MAX_GROUPS ||
	    count > (len - *off) / 4)
		return KS_ERR_FORMAT;
	if (grow((void **)&ks->groups, &ks->capgroups, count, sizeof(uint32_t)))
		return KS_ERR_NOMEM;
	for (uint32_t i = 0; i < count; i++, *off += 4) {
		uint32_t id = be32_get(body + *off);

		if (i == 0 ? id != KEYSTORE_DEFAULT_GROUP : id <= ks->groups[i - 1])
			return KS_ERR_FORMAT;
		if (id >= ks->next_group_id)
			return KS_ERR_FORMAT;
		ks->groups[i] = id;
	}
	ks->ngroups = count;
	return 0;
}

/* Layout 2's list after the records: exactly len bytes, ids strictly
 * ascending (no duplicates, one encoding), at least one. */
static int parse_imports(const uint8_t *p, size_t len, struct keystore *ks)
{
	uint32_t count;

	if (len < 4)
		return KS_ERR_FORMAT;
	count = be32_get(p);
	if (count == 0 || count > KEYSTORE_MAX_IMPORTS ||
	    (size_t)count * KEYSTORE_IMPORT_ID_LEN != len - 4)
		return KS_ERR_FORMAT;
	if (grow((void **)&ks->imports, &ks->capimports, count,
		 KEYSTORE_IMPORT_ID_LEN))
		return KS_ERR_NOMEM;
	memcpy(ks->imports, p + 4, (size_t)count * KEYSTORE_IMPORT_ID_LEN);
	for (uint32_t i = 1; i < count; i++)
		if (memcmp(ks->imports[i - 1], ks->imports[i],
			   KEYSTORE_IMPORT_ID_LEN) >= 0)
			return KS_ERR_FORMAT;
	ks->nimports = count;
	return 0;
}

/* Layout 3: the import list (maybe empty), then the transactions. */
static int parse_online(const uint8_t *p, size_t len, struct keystore *ks)
{
	uint32_t count;
	size_t n;
	int rc;

	if (len < 4)
		return KS_ERR_FORMAT;
	count = be32_get(p);
	if (count > KEYSTORE_MAX_IMPORTS ||
	    (size_t)count * KEYSTORE_IMPORT_ID_LEN > len - 4)
		return KS_ERR_FORMAT;
	n = 4 + (size_t)count * KEYSTORE_IMPORT_ID_LEN;
	if (count) {
		rc = parse_imports(p, n, ks);
		if (rc)
			return rc;
	}
	return parse_txs(p + n, len - n, ks);
}

static int parse_body(const uint8_t *body, size_t len, uint16_t layout,
		      struct keystore *ks)
{
	size_t off, reclen = layout == KEYSTORE_LAYOUT_V0 ? KEYSTORE_REC_LEN
							  : KEYSTORE_REC_IDS_LEN;
	size_t reclimit;
	uint32_t count;
	int rc;

	rc = parse_groups(body, len, &off, ks);
	if (rc)
		return rc;
	if (len - off < 4)
		return KS_ERR_FORMAT;
	count = be32_get(body + off);
	off += 4;
	if (count > KEYSTORE_MAX_RECORDS || (size_t)count * reclen > len - off)
		return KS_ERR_FORMAT;
	reclimit = off + (size_t)count * reclen;
	/* Exact: fewer bytes than the count is a lie, more is trailing
	 * (or, in layout 2, the import list). */
	if (layout == KEYSTORE_LAYOUT_IMPORTS)
		rc = parse_imports(body + reclimit, len - reclimit, ks);
	else if (layout == KEYSTORE_LAYOUT_ONLINE)
		rc = parse_online(body + reclimit, len - reclimit, ks);
	else if (reclimit != len)
		rc = KS_ERR_FORMAT;
	if (rc)
		return rc;
	if (count && grow((void **)&ks->recs, &ks->caprecs, count,
			  sizeof(*ks->recs)))
		return KS_ERR_NOMEM;
	for (uint32_t i = 0; i < count; i++, off += reclen) {
		struct keystore_rec *r = &ks->recs[i];

		get_rec(body + off, layout != KEYSTORE_LAYOUT_V0, r);
		ks->nrecs = i + 1; /* so that a failure wipes it */
		/* Strictly ascending UUIDs: no duplicates, one encoding. */
		if (!rec_valid(r) ||
		    (i && memcmp(ks->recs[i - 1].uuid, r->uuid, 16) >= 0) ||
		    !keystore_group_has(ks, r->group))
			return KS_ERR_FORMAT;
	}
	return 0;
}

enum keystore_err keystore_decode(const uint8_t *buf, size_t len,
				  const uint8_t root_key[KEYSTORE_ROOT_KEY_LEN],
				  struct keystore *ks,
				  struct keystore_meta *meta)
{
	uint8_t key[AEAD_KEY_LEN], *body = NULL;
	size_t bodylen = 0;
	uint16_t layout;
	int rc;

	memset(ks, 0, sizeof(*ks));
	rc = keystore_peek(buf, len, meta);
	if (rc)
		return rc;
	rc = envelope_key(&ks_fmt, root_key, KEYSTORE_ROOT_KEY_LEN, key);
	if (!rc)
		rc = envelope_open(&ks_fmt, key, buf, len, &body, &bodylen);
	OPENSSL_cleanse(key, sizeof(key));
	if (rc)
		return rc;
	/* The layout field is authenticated: one we do not know means a
	 * newer writer, not a damaged file. */
	layout = be16_get(buf + LAYOUT_OFF);
	if (layout != KEYSTORE_LAYOUT_V0 && layout != KEYSTORE_LAYOUT_IDS &&
	    layout != KEYSTORE_LAYOUT_IMPORTS && layout != KEYSTORE_LAYOUT_ONLINE)
		rc = KS_ERR_VERSION;
	else
		rc = parse_body(body, bodylen, layout, ks);
	envelope_body_free(body, bodylen);
	if (rc)
		keystore_free(ks);
	return rc;
}

enum keystore_err keystore_check_fresh(uint64_t file_counter,
				       uint64_t tpm_counter)
{
	if (file_counter == tpm_counter)
		return 0;
	if (file_counter < tpm_counter)
		return KS_ERR_ROLLBACK;
	/* file_counter > tpm_counter here, so the difference cannot wrap. */
	return file_counter - tpm_counter == 1 ? KS_FRESH_PENDING : KS_ERR_AHEAD;
}

/* ---- the slot file ---- */

#define SLOTS_VERSION_OFF 8
#define SLOTS_COUNT_OFF 10
#define SLOTS_SIZE_OFF 12
#define SLOTS_FIXED_LEN 16

_Static_assert(KSSLOTS_MAX_SLOT <= UINT32_MAX / 4, "slot offsets fit");

int keystore_is_slots(const uint8_t *buf, size_t len)
{
	return len >= ENVELOPE_MAGIC_LEN &&
	       memcmp(buf, KSSLOTS_MAGIC, ENVELOPE_MAGIC_LEN) == 0;
}

uint32_t keystore_slot_size_for(size_t len)
{
	size_t want;

	if (len > KSSLOTS_MAX_SLOT)
		return 0;
	want = 2 * len < KSSLOTS_MIN_SLOT ? KSSLOTS_MIN_SLOT : 2 * len;
	want = KSSLOTS_ROUND(want);
	return (uint32_t)(want > KSSLOTS_MAX_SLOT ? KSSLOTS_MAX_SLOT : want);
}

static int slot_size_ok(uint32_t s)
{
	return s >= KSSLOTS_ALIGN && s <= KSSLOTS_MAX_SLOT &&
	       s % KSSLOTS_ALIGN == 0;
}

enum keystore_err keystore_slots_new(uint32_t slot_size, const uint8_t *store,
				     size_t store_len, uint8_t **out,
				     size_t *outlen)
{
	size_t total;
	uint8_t *f;

	if (!slot_size_ok(slot_size) || store_len > slot_size)
		return KS_ERR_FULL;
	total = KSSLOTS_HDR_LEN + (size_t)KSSLOTS_COUNT * slot_size;
	f = calloc(1, total);
	if (!f)
		return KS_ERR_NOMEM;
	memcpy(f, KSSLOTS_MAGIC, ENVELOPE_MAGIC_LEN);
	be16_put(f + SLOTS_VERSION_OFF, KSSLOTS_VERSION);
	be16_put(f + SLOTS_COUNT_OFF, KSSLOTS_COUNT);
	be32_put(f + SLOTS_SIZE_OFF, slot_size);
	memcpy(f + keystore_slot_off(slot_size, 0), store, store_len);
	*out = f;
	*outlen = total;
	return 0;
}

/* The header of a slot file; the slot size in *slot_size. */
static int slots_header(const uint8_t *buf, size_t len, uint32_t *slot_size)
{
	if (!keystore_is_slots(buf, len))
		return KS_ERR_MAGIC;
	if (len < KSSLOTS_HDR_LEN)
		return KS_ERR_TRUNCATED;
	if (be16_get(buf + SLOTS_VERSION_OFF) != KSSLOTS_VERSION)
		return KS_ERR_VERSION;
	*slot_size = be32_get(buf + SLOTS_SIZE_OFF);
	if (be16_get(buf + SLOTS_COUNT_OFF) != KSSLOTS_COUNT ||
	    !slot_size_ok(*slot_size))
		return KS_ERR_SLOTS;
	for (size_t i = SLOTS_FIXED_LEN; i < KSSLOTS_HDR_LEN; i++)
		if (buf[i])
			return KS_ERR_SLOTS;
	return 0;
}

/* One slot: the envelope at its start, delimited by its own length
 * field, decoded; *used is the envelope's length when authentic. */
static int slot_decode(const uint8_t *slot, size_t avail,
		       const uint8_t root_key[KEYSTORE_ROOT_KEY_LEN],
		       struct keystore *ks, struct keystore_meta *meta,
		       size_t *used)
{
	size_t total;
	int rc;

	memset(ks, 0, sizeof(*ks));
	rc = keystore_peek(slot, avail, meta);
	if (rc)
		return rc;
	total = KEYSTORE_HDR_LEN + (size_t)be32_get(slot + KEYSTORE_HDR_LEN - 4) +
		KEYSTORE_TAG_LEN;
	if (total > avail)
		return KS_ERR_TRUNCATED;
	rc = keystore_decode(slot, total, root_key, ks, meta);
	if (!rc)
		*used = total;
	return rc;
}

enum keystore_err keystore_slots_decode(const uint8_t *buf, size_t len,
					const uint8_t root_key[KEYSTORE_ROOT_KEY_LEN],
					struct keystore *ks,
					struct keystore_meta *meta,
					struct keystore_slots *info)
{
	struct keystore_slots in = { 0 }, *inf = info ? info : &in;
	struct keystore cand[KSSLOTS_COUNT];
	int rc, w = -1, o;

	memset(ks, 0, sizeof(*ks));
	memset(inf, 0, sizeof(*inf));
	inf->winner = -1;
	rc = slots_header(buf, len, &inf->slot_size);
	if (rc)
		return rc;
	for (int i = 0; i < KSSLOTS_COUNT; i++) {
		uint64_t off = keystore_slot_off(inf->slot_size, (unsigned)i);
		size_t avail = off >= len ? 0
				: len - off < inf->slot_size ? (size_t)(len - off)
							     : inf->slot_size;

		inf->used[i] = inf->slot_size;
		inf->err[i] = avail ? slot_decode(buf + off, avail, root_key,
						  &cand[i], &inf->meta[i],
						  &inf->used[i])
				    : KS_ERR_TRUNCATED;
		if (inf->err[i]) {
			/* Unauthentic: whatever is there up to its last
			 * nonzero byte must be covered by the next write. */
			size_t u = avail;

			while (u && buf[off + u - 1] == 0)
				u--;
			inf->used[i] = u;
			memset(&cand[i], 0, sizeof(cand[i]));
			memset(&inf->meta[i], 0, sizeof(inf->meta[i]));
			continue;
		}
		if (w < 0 || inf->meta[i].generation > inf->meta[w].generation)
			w = i;
	}
	/* A slot of a format version we do not know (or an authentic one
	 * with a record layout we do not know) is a newer writer's, not a torn
	 * write: every sector we write carries version 1.  Skipping it
	 * would load the older slot and silently drop the newer writer's
	 * commits; refuse the file instead. */
	for (int i = 0; i < KSSLOTS_COUNT; i++)
		if (inf->err[i] == KS_ERR_VERSION) {
			for (int j = 0; j < KSSLOTS_COUNT; j++)
				if (!inf->err[j])
					keystore_free(&cand[j]);
			inf->winner = -1;
			return KS_ERR_VERSION;
		}
	if (w < 0)
		return KS_ERR_NO_SLOT;
	o = 1 - w;
	rc = 0;
	if (!inf->err[o] &&
	    (inf->meta[o].generation == inf->meta[w].generation ||
	     inf->meta[o].nv_counter > inf->meta[w].nv_counter))
		rc = KS_ERR_SLOTS;
	if (!inf->err[o])
		keystore_free(&cand[o]);
	if (rc) {
		keystore_free(&cand[w]);
		return rc;
	}
	*ks = cand[w];
	*meta = inf->meta[w];
	inf->winner = w;
	return 0;
}
