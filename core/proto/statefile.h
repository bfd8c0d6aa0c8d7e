/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The on-disk format of one vTPM's state, as pure functions over byte
 * buffers (no I/O; see store.h for that).
 *
 *   0  8  magic "VTPMSTAT"
 *   8  2  format version (1)
 *  10  1  TPM family (1 = TPM 1.2, 2 = TPM 2.0)
 *  11  1  reserved, 0
 *  12  4  reserved, 0
 *  16 16  vTPM UUID
 *  32  8  generation: grows by one with every write
 *  40 12  AES-GCM nonce (random per write)
 *  52  4  ciphertext length N
 *  56  N  AES-256-GCM ciphertext of the body
 *  56+N 16 GCM tag; bytes 0..55 are authenticated as AAD
 *
 * All integers are big-endian.  The body is a list of records
 * { u8 type; u32 length; bytes }, each type at most once.
 * The AES key is HKDF-SHA256(state key, info "vtpm-service state v1").
 * Magic, version, nonce, length, ciphertext and tag are the sealed-file
 * envelope of lib/envelope.h, shared with the key store.
 */
#ifndef VTPM_STATEFILE_H
#define VTPM_STATEFILE_H

#include <stddef.h>
#include <stdint.h>

#define STATEFILE_MAGIC "VTPMSTAT"
#define STATEFILE_VERSION 1
#define STATEFILE_HDR_LEN 56
#define STATEFILE_TAG_LEN 16
#define STATEFILE_MAX_BODY (4u << 20)
#define STATE_KEY_LEN 32

enum statefile_blob {
	SF_BLOB_PERMANENT = 1,
	SF_BLOB_VOLATILE = 2,
	SF_BLOB_SAVESTATE = 3,
	/* Not libtpms's: the resume tag of a Xen save (proto/resumetag.h),
	 * present only beside the volatile state it names. */
	SF_BLOB_RESUME = 4,
	SF_BLOB_COUNT = 5, /* one past the last */
};

/*
 * Errors of this file's functions: their own domain, never a negative
 * errno.  The values lie below -4095 (the kernel's MAX_ERRNO), so no
 * -errno, no KS_ERR_* and no other domain's code can equal one, while a
 * test for "< 0" still reads them as failures.  Use the names, never the
 * numbers; statefile_is_err() tells one from an errno in a mixed int.
 */
#define SF_ERR_BASE (-5100)
enum statefile_err {
	SF_OK = 0,
	SF_ERR_TRUNCATED = SF_ERR_BASE - 1, /* shorter than its header says */
	SF_ERR_MAGIC = SF_ERR_BASE - 2,     /* not a vtpm-service state file */
	SF_ERR_VERSION = SF_ERR_BASE - 3,   /* format version we do not know */
	SF_ERR_AUTH = SF_ERR_BASE - 4,      /* wrong key or modified bytes */
	SF_ERR_UUID = SF_ERR_BASE - 5,      /* authentic, but another vTPM's */
	SF_ERR_STALE = SF_ERR_BASE - 6,     /* authentic, older than one seen */
	SF_ERR_FAMILY = SF_ERR_BASE - 7,    /* TPM 1.2 state for 2.0, or back */
	SF_ERR_FORMAT = SF_ERR_BASE - 8,    /* authentic but malformed body, or
					     * a length field over the limit */
	SF_ERR_NOMEM = SF_ERR_BASE - 9,
	SF_ERR_CRYPTO = SF_ERR_BASE - 10,
	SF_ERR_LAST = SF_ERR_CRYPTO, /* the lowest */
};

static inline int statefile_is_err(int rc)
{
	return rc <= SF_ERR_TRUNCATED && rc >= SF_ERR_LAST;
}

struct state_keys {
	uint8_t enc[32];  /* AES-256-GCM key of the state file */
	uint8_t mark[32]; /* HMAC key of the generation watermark */
};

struct statefile_meta {
	uint8_t family;     /* 1 or 2 */
	uint8_t uuid[16];
	uint64_t generation;
};

/* Blobs of one state; data[i] == NULL means absent.  Owned by the caller
 * on encode; allocated by decode (free with statefile_blobs_free). */
struct statefile_blobs {
	uint8_t *data[SF_BLOB_COUNT];
	uint32_t len[SF_BLOB_COUNT];
};

/* What decode must check.  check_uuid = 0 adopts the file's UUID. */
struct statefile_expect {
	int check_uuid;
	uint8_t uuid[16];
	uint8_t family;
	uint64_t min_generation;
};

/* A message for SF_OK or any SF_ERR_*; "unknown error" otherwise. */
const char *statefile_strerror(int err);

enum statefile_err state_keys_derive(const uint8_t master[STATE_KEY_LEN],
				     struct state_keys *out);
void state_keys_wipe(struct state_keys *k);

enum statefile_err statefile_encode(const struct state_keys *k,
				    const struct statefile_meta *meta,
				    const struct statefile_blobs *blobs,
				    uint8_t **out, size_t *outlen);

/* Encrypts an already laid out body under a fresh header (encode uses
 * it; tests use it to build authentic but malformed files). */
enum statefile_err statefile_seal(const struct state_keys *k,
				  const struct statefile_meta *meta,
				  const uint8_t *body, size_t bodylen,
				  uint8_t **out, size_t *outlen);

/* Reads only the plaintext header (no authentication): for messages. */
enum statefile_err statefile_peek(const uint8_t *buf, size_t len,
				  struct statefile_meta *meta);

enum statefile_err statefile_decode(const struct state_keys *k,
				    const uint8_t *buf, size_t len,
				    const struct statefile_expect *exp,
				    struct statefile_meta *meta,
				    struct statefile_blobs *out);

void statefile_blobs_free(struct statefile_blobs *b);

/*
 * Generation watermark: the highest generation this vTPM is known to have
 * reached, authenticated by HMAC under the state key.  64 bytes:
 * "VTPMGEN1", uuid[16], u64 generation, HMAC-SHA256 over the first 32.
 */
#define WATERMARK_LEN 64
void watermark_encode(const struct state_keys *k, const uint8_t uuid[16],
		      uint64_t generation, uint8_t out[WATERMARK_LEN]);
enum statefile_err watermark_decode(const struct state_keys *k,
				    const uint8_t *buf, size_t len,
				    const uint8_t uuid[16],
				    uint64_t *generation);

/*
 * The slot file (docs/state-format.md, "Slot file"): one sealed state per
 * slot, written in place.
 *
 *   0     8  magic "VTPMSLOT"
 *   8     2  slot file version (1)
 *  10     2  number of slots (2)
 *  12     4  slot size S (a multiple of 4096)
 *  16  4048  reserved, zero
 *  4064  32  HMAC-SHA256 of bytes 0..4063 under the watermark key
 *  4096 + i*S  slot i: a sealed state (the layout above, its own
 *              generation and tag), then whatever an older, longer
 *              state left; or all zero (never written)
 *
 * The file is exactly 4096 + n*S bytes.  The header's MAC makes a changed
 * layout (or a wrong key) an authentication failure, before any slot is
 * read; every slot authenticates itself.
 */
#define SLOTFILE_MAGIC "VTPMSLOT"
#define SLOTFILE_VERSION 1
#define SLOTFILE_HDR_LEN 4096u
#define SLOTFILE_NSLOTS 2
#define SLOTFILE_ALIGN 4096u
#define SLOTFILE_MIN_SLOT (8u << 10)
/* The largest sealed state, rounded up to the alignment. */
#define SLOTFILE_MAX_SLOT                                                   \
	((STATEFILE_HDR_LEN + STATEFILE_MAX_BODY + STATEFILE_TAG_LEN +       \
	  SLOTFILE_ALIGN - 1) / SLOTFILE_ALIGN * SLOTFILE_ALIGN)
#define SLOTFILE_MAX_LEN (SLOTFILE_HDR_LEN + SLOTFILE_NSLOTS * SLOTFILE_MAX_SLOT)

enum slot_kind {
	SLOT_EMPTY, /* never written: the whole sealed header is zero */
	SLOT_VALID, /* authentic state of this vTPM */
	SLOT_TORN,  /* a readable header whose tag does not verify: what a
		     * write cut by a crash leaves (or a modified slot) */
	SLOT_BAD,   /* anything else: not what any crash of ours leaves */
};

struct slotfile_slot {
	enum slot_kind kind;
	enum statefile_err verdict; /* SLOT_TORN, SLOT_BAD: why */
	uint64_t offset;	    /* in the file */
	size_t sealed_len;	    /* VALID, TORN: the sealed state's length */
	/* VALID: authenticated; TORN: as its plaintext header claims. */
	uint64_t generation;
	uint8_t hash[32]; /* VALID, TORN: SHA-256 of the sealed bytes */
};

struct slotfile_view {
	uint32_t nslots;
	uint32_t slot_size;
	struct slotfile_slot slot[SLOTFILE_NSLOTS];
};

/* Whether buf starts like a slot file (else: a format-1 state file). */
int slotfile_is_slotfile(const uint8_t *buf, size_t len);

/* A slot size that holds a sealed state of len bytes with room to grow;
 * 0 if none can (over the body limit). */
uint32_t slotfile_slot_size_for(size_t len);

/*
 * Checks the header (its MAC too) and the file's length, then classifies every slot:
 * each is decrypted (exp->min_generation is not applied here: older
 * slots are expected).  SF_OK, or why the file as a whole is refused
 * (truncated, bad magic, unknown version, malformed header).
 */
enum statefile_err slotfile_scan(const struct state_keys *k,
				 const uint8_t *buf, size_t len,
				 const struct statefile_expect *exp,
				 struct slotfile_view *v);

/*
 * The load rule without a manager: the newest valid slot wins.  Refused:
 * any SLOT_BAD slot; two valid slots of one generation; no valid slot;
 * a torn slot whose claimed generation is not next to the winner's (a
 * crash tears only the write of winner + 1, over what held winner - 1).
 * *culprit: the slot a refusal is about (-1: the file).
 */
enum statefile_err slotfile_choose(const struct slotfile_view *v,
				   int *winner, int *culprit);

/* Recomputes a slot file header's MAC (tests and fuzzers use it to build
 * authentic but hostile headers). */
void slotfile_header_seal(const struct state_keys *k,
			  uint8_t hdr[SLOTFILE_HDR_LEN]);

/* With a manager: the valid slot whose sealed bytes hash to `hash`, or
 * -1. */
int slotfile_find_hash(const struct slotfile_view *v, const uint8_t hash[32]);

/*
 * A new slot file: nslots of slot_size, slot i holding sealed[i] (len[i]
 * bytes, 0 = empty).  *out malloc'ed, *outlen = 4096 + nslots*slot_size.
 * SF_ERR_FORMAT if a state does not fit.
 */
enum statefile_err slotfile_build(const struct state_keys *k,
				  uint32_t slot_size,
				  const uint8_t *const sealed[SLOTFILE_NSLOTS],
				  const size_t len[SLOTFILE_NSLOTS],
				  uint8_t **out, size_t *outlen);

#endif
