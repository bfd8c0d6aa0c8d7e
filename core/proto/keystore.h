/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager's key store: every vTPM's state key and the hash of its
 * latest committed state, in memory and as one file encrypted under the
 * root key.  Pure functions (no I/O, no TPM); docs/manager-protocol.md
 * has the format, the freshness rule and the commit protocol.
 *
 *   0  8  magic "VTPMKEYS"
 *   8  2  format version (1)
 *  10  2  record layout: 0 (97-byte records, before instance-uids),
 *           1 (105-byte records with uid and gid) or 2 (layout 1, then
 *           the imported-blob list); a reader refuses a layout it does
 *           not know as a newer writer's (KS_ERR_VERSION)
 *  12  8  store generation: grows by one with every commit
 *  20  8  nv_counter: the TPM NV counter value this copy is bound to
 *  28 12  AES-GCM nonce (random per write)
 *  40  4  ciphertext length N
 *  44  N  AES-256-GCM ciphertext of the body
 *  44+N 16 GCM tag; bytes 0..43 are authenticated as AAD
 *
 * Body: u32 next_group_id; u32 group_count; u32 group_id[group_count]
 * (strictly ascending, group 0 first, each below next_group_id);
 * u32 record_count; records (strictly ascending UUIDs): uuid[16],
 * u32 group, u32 flags, u8 tpm_version, u64 generation, state_hash[32],
 * state_key[32] (97 bytes: layout 0), then u32 uid, u32 gid (layout 1,
 * 105 bytes; both 0: none allocated yet).  Layout 2 appends u32
 * import_count; import_id[32] each, strictly ascending: the blobs this
 * store imported (docs/migration.md), so that none is imported twice.
 * Layout 0 stores load with no ids; a write uses layout 1, or layout 2
 * when the list is not empty (so a store that never imported stays
 * readable by releases before migration).  Layout 3 (online migration)
 * is layout 2 whose import list may be empty (u32 0), then u32 tx_count
 * and tx_count entries of 132 bytes, strictly ascending UUIDs: uuid[16],
 * txid[16], u8 state (KS_TX_*), u8 flags (KS_TX_F_*), 2 zero bytes,
 * peer_ak_sha256[32],
 * peer address[64] (printable, NUL-padded, at least one NUL); a write
 * uses it only when the list is not empty.  The AES key is
 * HKDF-SHA256(root key, info "vtpm-service keystore v1").  Magic, version,
 * nonce, length, ciphertext and tag are the sealed-file envelope of
 * lib/envelope.h, shared with the state file.
 */
#ifndef VTPM_KEYSTORE_H
#define VTPM_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#define KEYSTORE_MAGIC "VTPMKEYS"
#define KEYSTORE_VERSION 1
#define KEYSTORE_HDR_LEN 44
#define KEYSTORE_TAG_LEN 16
#define KEYSTORE_ROOT_KEY_LEN 32
#define KEYSTORE_REC_LEN 97      /* layout 0 */
#define KEYSTORE_REC_IDS_LEN 105 /* layout 1: + uid, gid */
#define KEYSTORE_LAYOUT_V0 0
#define KEYSTORE_LAYOUT_IDS 1
#define KEYSTORE_LAYOUT_IMPORTS 2
#define KEYSTORE_LAYOUT_ONLINE 3
#define KEYSTORE_TX_LEN 132
#define KEYSTORE_TX_ADDR_LEN 64
#define KEYSTORE_MAX_TX 65536
#define KEYSTORE_IMPORT_ID_LEN 32
#define KEYSTORE_MAX_IMPORTS 65536
/* The manager protocol lists groups in one frame (MGR_GROUP_LIST_MAX). */
#define KEYSTORE_MAX_GROUPS 1020
#define KEYSTORE_MAX_RECORDS 100000
#define KEYSTORE_MAX_BODY                                                      \
	(12 + 4 * KEYSTORE_MAX_GROUPS + KEYSTORE_REC_IDS_LEN * KEYSTORE_MAX_RECORDS + \
	 4 + KEYSTORE_IMPORT_ID_LEN * KEYSTORE_MAX_IMPORTS + 4 +                \
	 KEYSTORE_TX_LEN * KEYSTORE_MAX_TX)
#define KEYSTORE_DEFAULT_GROUP 0

#define KS_REC_NOSTATE 0x1u /* created, no state committed yet */
/* Exported to another host (docs/migration.md): never started or
 * exported again here.  Its state_key is zero but for the last 32 bytes
 * being the SHA-256 of the destination's AK; its state_hash holds the
 * digest of the destination key's TPM name (neither is secret). */
#define KS_REC_TOMBSTONE 0x2u
/* Online migration (docs/migration.md): on the destination, imported by
 * a transaction not yet committed (never started); on the source, being
 * moved out (not started until the transaction ends). */
#define KS_REC_PENDING 0x4u
#define KS_REC_LEAVING 0x8u
#define KS_REC_FLAGS_KNOWN                                                     \
	(KS_REC_NOSTATE | KS_REC_TOMBSTONE | KS_REC_PENDING | KS_REC_LEAVING)

/* An online migration's state, one per UUID (the latest transaction). */
enum keystore_tx_state {
	KS_TX_OUT_PREPARING = 1, /* source: not committed; aborts at a restart */
	KS_TX_OUT_COMMITTED = 2, /* source: tombstone written, COMMIT not yet
				  * acknowledged by the destination */
	KS_TX_OUT_DONE = 3,      /* source: the destination has it */
	KS_TX_IN_PENDING = 4,    /* destination: imported, awaiting COMMIT */
	KS_TX_IN_DONE = 5,       /* destination: committed, startable */
};

#define KS_TX_F_START 0x1u /* it ran on the source: start it on arrival */

struct keystore_tx {
	uint8_t uuid[16];
	uint8_t txid[16];
	uint8_t state;                       /* KS_TX_* */
	uint8_t flags;                       /* KS_TX_F_* */
	uint8_t peer_ak_sha256[32];          /* the other manager's AK */
	char addr[KEYSTORE_TX_ADDR_LEN];     /* source: the destination's
					      * HOST:PORT; else empty */
};

/*
 * Results of this file's functions: their own domain, never a negative
 * errno.  The errors lie below -4095 (the kernel's MAX_ERRNO) and apart
 * from the state file's SF_ERR_*, so no -errno and no other domain's code
 * can equal one, while a test for "< 0" still reads them as failures
 * (keystore_check_fresh relies on it: KS_FRESH_PENDING is positive).  Use
 * the names, never the numbers.
 */
#define KS_ERR_BASE (-5200)
enum keystore_err {
	KS_OK = 0,
	KS_FRESH_PENDING = 1, /* not an error: see keystore_check_fresh */
	KS_ERR_TRUNCATED = KS_ERR_BASE - 1, /* shorter than its header says */
	KS_ERR_MAGIC = KS_ERR_BASE - 2,     /* not a vtpm-service key store */
	KS_ERR_VERSION = KS_ERR_BASE - 3,   /* format version we do not know */
	KS_ERR_AUTH = KS_ERR_BASE - 4,      /* wrong root key or modified bytes */
	KS_ERR_FORMAT = KS_ERR_BASE - 5,    /* authentic but malformed, or
					     * trailing bytes */
	KS_ERR_NOMEM = KS_ERR_BASE - 6,
	KS_ERR_CRYPTO = KS_ERR_BASE - 7,
	KS_ERR_EXISTS = KS_ERR_BASE - 8,    /* a vTPM with this UUID exists */
	KS_ERR_NOT_FOUND = KS_ERR_BASE - 9, /* no vTPM with this UUID */
	KS_ERR_NO_GROUP = KS_ERR_BASE - 10, /* no such group */
	KS_ERR_GROUP_BUSY = KS_ERR_BASE - 11,    /* the group still holds vTPMs */
	KS_ERR_DEFAULT_GROUP = KS_ERR_BASE - 12, /* group 0 cannot be deleted */
	KS_ERR_FULL = KS_ERR_BASE - 13,    /* record, group or group id limit */
	KS_ERR_INVALID = KS_ERR_BASE - 14, /* zero UUID, TPM version, flags */
	KS_ERR_ROLLBACK = KS_ERR_BASE - 15, /* older than the TPM NV counter */
	KS_ERR_AHEAD = KS_ERR_BASE - 16, /* newer than the NV counter explains */
	KS_ERR_NO_SLOT = KS_ERR_BASE - 17, /* slot file: no slot authentic */
	KS_ERR_SLOTS = KS_ERR_BASE - 18,   /* slot file: header, or two
					    * authentic slots that no writer
					    * leaves (same generation, or the
					    * newer bound to a lower counter) */
	KS_ERR_LAST = KS_ERR_SLOTS,        /* the lowest */
};

static inline int keystore_is_err(int rc)
{
	return rc <= KS_ERR_TRUNCATED && rc >= KS_ERR_LAST;
}

struct keystore_rec {
	uint8_t uuid[16];       /* never all zero */
	uint32_t group;
	uint32_t flags;         /* KS_REC_* */
	uint8_t tpm_version;    /* 1 or 2 */
	uint64_t generation;    /* of the latest committed state */
	uint8_t state_hash[32]; /* SHA-256 of that state file */
	uint8_t state_key[32];  /* secret */
	uint32_t uid, gid;      /* the instance's identity; both 0: none
				 * allocated (never only one of them) */
};

/* Records sorted by UUID; groups ascending.  Read them directly; change
 * them only through the functions below. */
struct keystore {
	struct keystore_rec *recs;
	size_t nrecs, caprecs;
	uint32_t *groups;
	size_t ngroups, capgroups;
	uint32_t next_group_id; /* group ids are never reused */
	uint8_t (*imports)[KEYSTORE_IMPORT_ID_LEN]; /* ascending */
	size_t nimports, capimports;
	struct keystore_tx *txs; /* ascending UUIDs */
	size_t ntxs, captxs;
};

struct keystore_meta {
	uint64_t generation;
	uint64_t nv_counter;
};

/* A message for KS_OK, KS_FRESH_PENDING or any KS_ERR_*; "unknown error"
 * otherwise. */
const char *keystore_strerror(int err);

/* An empty store holding the default group 0.  0 or KS_ERR_NOMEM. */
enum keystore_err keystore_init(struct keystore *ks);
/* Wipes every key and frees; the store is empty and unusable after. */
void keystore_free(struct keystore *ks);

/* NULL if absent.  The pointer is valid until the next add or del. */
struct keystore_rec *keystore_find(const struct keystore *ks,
				   const uint8_t uuid[16]);
enum keystore_err keystore_add(struct keystore *ks,
			       const struct keystore_rec *rec);
enum keystore_err keystore_del(struct keystore *ks, const uint8_t uuid[16]);

/* The lowest uid in lo..hi no record holds (as its uid or its gid):
 * 0, or KS_ERR_FULL when every one is taken. */
enum keystore_err keystore_uid_alloc(const struct keystore *ks, uint32_t lo,
				     uint32_t hi, uint32_t *uid);

int keystore_group_has(const struct keystore *ks, uint32_t id);

/* The imported-blob list: whether id is in it; adds it (KS_ERR_EXISTS if
 * it is, KS_ERR_FULL at KEYSTORE_MAX_IMPORTS). */
int keystore_import_has(const struct keystore *ks,
			const uint8_t id[KEYSTORE_IMPORT_ID_LEN]);
enum keystore_err keystore_import_add(struct keystore *ks,
				      const uint8_t id[KEYSTORE_IMPORT_ID_LEN]);
/* The online migration of uuid, or NULL; put inserts or replaces (by
 * UUID; KS_ERR_INVALID for a bad state or address, KS_ERR_FULL); del
 * removes (KS_ERR_NOT_FOUND). */
struct keystore_tx *keystore_tx_find(const struct keystore *ks,
				     const uint8_t uuid[16]);
enum keystore_err keystore_tx_put(struct keystore *ks,
				  const struct keystore_tx *tx);
enum keystore_err keystore_tx_del(struct keystore *ks, const uint8_t uuid[16]);
enum keystore_err keystore_group_new(struct keystore *ks, uint32_t *id);
enum keystore_err keystore_group_del(struct keystore *ks, uint32_t id);

/* Encrypts the store under a fresh nonce; *out is malloc'ed. */
enum keystore_err keystore_encode(const struct keystore *ks,
				  const uint8_t root_key[KEYSTORE_ROOT_KEY_LEN],
				  uint64_t generation, uint64_t nv_counter,
				  uint8_t **out, size_t *outlen);

/* Encrypts an already laid out body of record layout 0 (tests and
 * fuzzers use it to build authentic but malformed or old files). */
enum keystore_err keystore_seal(const uint8_t root_key[KEYSTORE_ROOT_KEY_LEN],
				uint64_t generation, uint64_t nv_counter,
				const uint8_t *body, size_t bodylen,
				uint8_t **out, size_t *outlen);
/* As keystore_seal with the record layout field set to layout (encode
 * uses it with KEYSTORE_LAYOUT_IDS). */
enum keystore_err keystore_seal_layout(const uint8_t root_key[KEYSTORE_ROOT_KEY_LEN],
				       uint64_t generation, uint64_t nv_counter,
				       uint16_t layout, const uint8_t *body,
				       size_t bodylen, uint8_t **out,
				       size_t *outlen);

/* Reads only the plaintext header (not authenticated): for messages. */
enum keystore_err keystore_peek(const uint8_t *buf, size_t len,
				struct keystore_meta *meta);

/* On success *ks is a new store (keystore_free it); on failure it is
 * empty and needs no free. */
enum keystore_err keystore_decode(const uint8_t *buf, size_t len,
				  const uint8_t root_key[KEYSTORE_ROOT_KEY_LEN],
				  struct keystore *ks,
				  struct keystore_meta *meta);

/*
 * The freshness rule: compares the nv_counter of an authentic store file
 * with the value read from the TPM NV counter.  0 when equal;
 * KS_FRESH_PENDING when the file is exactly one ahead (a crash between
 * the durable write and the increment: the caller finishes the
 * increment); KS_ERR_ROLLBACK when the file is behind; KS_ERR_AHEAD when
 * it is further ahead than one commit can explain.
 */
enum keystore_err keystore_check_fresh(uint64_t file_counter,
				       uint64_t tpm_counter);

/*
 * The slot file (format version 1): the key store as it lies on disk
 * since issue 15, so that a commit costs one in-place write and one
 * flush.  Integers big-endian.
 *
 *   0     8  magic "VTPMKSAB"
 *   8     2  slot file version (1)
 *  10     2  slot count (2)
 *  12     4  slot size S: a multiple of 4096, 4096..KSSLOTS_MAX_SLOT
 *  16  4080  zero
 *  4096 + i*S, S bytes: slot i (i = 0, 1), an envelope exactly as the
 *        single-copy file above (its own generation, nv_counter, length
 *        and GCM tag), then bytes that are ignored (zero or stale).
 *
 * The 4096-byte header is written only when the file is created (first
 * store, conversion of a single-copy file, growth), by an atomic
 * replace; commits write a slot in place.  Load rule
 * (keystore_slots_decode): every slot is authenticated on its own; an
 * unauthentic one (torn, never written, modified) is skipped; of the
 * authentic ones the highest generation wins.  A slot of another format
 * version (a newer writer's) makes the whole file KS_ERR_VERSION.  Two authentic slots with
 * the same generation, or a newer slot bound to a lower NV counter than
 * the older, are refused (KS_ERR_SLOTS): no writer leaves them.  The
 * winner then faces keystore_check_fresh like a single-copy file.
 */
#define KSSLOTS_MAGIC "VTPMKSAB"
#define KSSLOTS_VERSION 1
#define KSSLOTS_COUNT 2
#define KSSLOTS_HDR_LEN 4096
#define KSSLOTS_ALIGN 4096
#define KSSLOTS_MIN_SLOT (64u * 1024)
#define KSSLOTS_ROUND(n) (((n) + KSSLOTS_ALIGN - 1) / KSSLOTS_ALIGN * KSSLOTS_ALIGN)
#define KSSLOTS_MAX_SLOT                                                       \
	KSSLOTS_ROUND(KEYSTORE_HDR_LEN + KEYSTORE_MAX_BODY + KEYSTORE_TAG_LEN)

struct keystore_slots {
	uint32_t slot_size;
	int winner;                 /* the slot that was loaded */
	int err[KSSLOTS_COUNT];     /* each slot's verdict (0: authentic) */
	size_t used[KSSLOTS_COUNT]; /* bytes of each slot a writer must
				     * cover to leave nothing of its old
				     * contents: the envelope's length when
				     * authentic, else up to its last
				     * nonzero byte */
	struct keystore_meta meta[KSSLOTS_COUNT]; /* of the authentic ones */
};

/* 1 if buf starts with the slot file's magic (then it is not a
 * single-copy file), else 0. */
int keystore_is_slots(const uint8_t *buf, size_t len);

/* The slot size for a store of len bytes: twice that, at least
 * KSSLOTS_MIN_SLOT, rounded up to KSSLOTS_ALIGN; 0 beyond the limit. */
uint32_t keystore_slot_size_for(size_t len);

/* Offset of slot i in a file of slot size S. */
static inline uint64_t keystore_slot_off(uint32_t slot_size, unsigned int i)
{
	return KSSLOTS_HDR_LEN + (uint64_t)i * slot_size;
}

/* A new slot file (*out malloc'ed, 4096 + 2 S bytes): the header, store
 * (an envelope of keystore_encode) in slot 0, slot 1 zero. */
enum keystore_err keystore_slots_new(uint32_t slot_size, const uint8_t *store,
				     size_t store_len, uint8_t **out,
				     size_t *outlen);

/* Decodes a slot file with the load rule above.  A slot reaching past
 * the end of buf reads as torn.  On success *ks is the winner's store
 * (keystore_free it), *meta its header; info (optional) is filled on
 * success and on KS_ERR_NO_SLOT / KS_ERR_SLOTS. */
enum keystore_err keystore_slots_decode(const uint8_t *buf, size_t len,
					const uint8_t root_key[KEYSTORE_ROOT_KEY_LEN],
					struct keystore *ks,
					struct keystore_meta *meta,
					struct keystore_slots *info);

#endif
