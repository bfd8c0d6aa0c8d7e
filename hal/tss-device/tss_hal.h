/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager's physical TPM, through tpm2-tss ESYS over any TCTI
 * ("device:/dev/tpmrm0", "swtpm:path=/run/x", "mssim:...").
 *
 * Every call that takes a struct tss_hal blocks on the TPM (a real one
 * takes tens to hundreds of milliseconds per command): run them on a
 * worker thread, never on the event loop.  One struct tss_hal is used by
 * one thread at a time.  The functions without one (pcr_sel_parse,
 * pcr_policy_digest) are pure software and thread-safe.  A quote is
 * verified without a TPM by core/proto/quote.h.
 *
 * Every int-returning call returns 0 or a negative errno; when it has an
 * err/errlen pair, a failure leaves a one-line reason there that names
 * the object and the problem (never secret bytes).  err may be NULL.
 *
 * Key hierarchy, blob format and failure modes: docs/sealing.md.
 */
#ifndef VTPM_TSS_HAL_H
#define VTPM_TSS_HAL_H

#include <stddef.h>
#include <stdint.h>
#include <tss2/tss2_tcti.h>

#define TSS_HAL_TCTI_DEFAULT "device:/dev/tpmrm0"
#define TSS_HAL_PCR_COUNT 24     /* PCRs a selection can name: 0..23 */
#define TSS_HAL_SECRET_MAX 128   /* the TPM's MAX_SYM_DATA */
#define TSS_HAL_QD_MAX 64        /* qualifyingData of a quote */
#define TSS_HAL_NAME_LEN 34      /* TPM name: sha256 alg id + digest */

/* Sealed blob (docs/sealing.md): "VTPMSEAL", then format version 1. */
#define TSS_HAL_BLOB_MAGIC "VTPMSEAL"
#define TSS_HAL_BLOB_VERSION 1
#define TSS_HAL_BLOB_MAX 4096    /* far above any real one: a sanity cap */

struct tss_hal;                  /* ESYS context + loaded handles */

/* sha256 bank; bit n selects PCR n, n < TSS_HAL_PCR_COUNT. */
struct pcr_sel {
	uint32_t mask;
};

/*
 * "sha256:0,2,4,7": the bank, then distinct decimal indices 0..23 in any
 * order.  No spaces, no ranges, no empty list.  0 or -EINVAL.
 */
int pcr_sel_parse(const char *s, struct pcr_sel *out);

/* Number of PCRs in sel (the length of the values arrays below). */
unsigned int pcr_sel_count(const struct pcr_sel *sel);

/*
 * Opens the TPM through the TCTI loader (NULL: TSS_HAL_TCTI_DEFAULT).
 * Flushes transient objects and sessions that a killed predecessor left
 * loaded, which matters only on a TPM without a resource manager (swtpm,
 * /dev/tpm0); behind /dev/tpmrm0 a new connection sees none.
 * -ENODEV if the TCTI cannot be loaded or reach the TPM.
 */
int tss_hal_open(const char *tcti, struct tss_hal **out, char *err,
		 size_t errlen);

/* Flushes our transient objects, finalizes ESYS and the TCTI.  NULL ok. */
/*
 * The same over a TCTI that is already open (hal/tis-mmio builds its own);
 * the HAL takes it over: tss_hal_close finalizes and free()s it.  what
 * names the TPM in messages.
 */
/*
 * Opens the physical TPM the manager's --hal and --tcti name: "tss"
 * (tcti through the TCTI loader), or "tis-mmio" (our own TCTI on the
 * TPM's register window, tcti its conf, the default TCTI meaning "").
 */
int tss_hal_open_by_name(const char *hal, const char *tcti,
			 struct tss_hal **out, char *err, size_t errlen);

int tss_hal_open_tcti(TSS2_TCTI_CONTEXT *tcti, const char *what,
		      struct tss_hal **out, char *err, size_t errlen);
void tss_hal_close(struct tss_hal *h);

/*
 * Storage primary: ECC NIST P-256 in the owner hierarchy from a fixed
 * template, so the same TPM gives the same key after every restart (until
 * its owner hierarchy is cleared).  Created on first use, kept loaded.
 * Seal and unseal call it themselves.
 */
int tss_hal_primary(struct tss_hal *h, char *err, size_t errlen);

/* The storage primary's TPM name (creates it if needed): identifies its
 * public key, and is what a blob records as its parent. */
int tss_hal_primary_name(struct tss_hal *h, uint8_t name[TSS_HAL_NAME_LEN],
			 char *err, size_t errlen);

/*
 * Seals len (1..TSS_HAL_SECRET_MAX) bytes under the storage primary as a
 * sealed-data object whose only way in is a PolicyPCR policy over sel
 * (userWithAuth clear, adminWithPolicy set).  expected == NULL binds to
 * the current PCR values; else expected[i] is the sha256 value that the
 * i-th selected PCR (ascending index) must have to unseal, e.g. values
 * predicted for the boot chain after an upgrade.  The secret travels to
 * the TPM encrypted (salted session).  *blob is malloc()ed: free() it.
 */
int tss_hal_seal(struct tss_hal *h, const uint8_t *secret, size_t len,
		 const struct pcr_sel *sel, const uint8_t (*expected)[32],
		 uint8_t **blob, size_t *bloblen, char *err, size_t errlen);

/*
 * Unseals a blob from tss_hal_seal.  *outlen: the size of out on entry
 * (TSS_HAL_SECRET_MAX always suffices), the secret's length on return.
 *   -EACCES  a selected PCR differs: err names exactly those PCRs, e.g.
 *            "PCR 7 (sha256) differs from the sealed value"
 *   -EINVAL  malformed or altered blob, or sealed under another storage
 *            key (the TPM was cleared, or the blob is another host's)
 *   -ENOBUFS out is too small (nothing is written to it)
 * The secret travels from the TPM encrypted; wipe out after use.
 */
int tss_hal_unseal(struct tss_hal *h, const uint8_t *blob, size_t bloblen,
		   uint8_t *out, size_t *outlen, char *err, size_t errlen);

/* Current sha256 values of sel, ascending PCR index. */
int tss_hal_pcr_read(struct tss_hal *h, const struct pcr_sel *sel,
		     uint8_t (*values)[32], char *err, size_t errlen);

/* PCR[pcr] = sha256(PCR[pcr] || digest) in the sha256 bank. */
int tss_hal_pcr_extend(struct tss_hal *h, unsigned int pcr,
		       const uint8_t digest[32], char *err, size_t errlen);

/*
 * The TPM2_PolicyPCR policy digest for a trial starting from the empty
 * policy: sha256(0^32 || TPM_CC_PolicyPCR || TPML_PCR_SELECTION ||
 * sha256(values[0] || ... )).  Pure software; 0 or -EINVAL.
 */
int pcr_policy_digest(const struct pcr_sel *sel, const uint8_t (*values)[32],
		      uint8_t out[32]);

/*
 * The key store's monotonic NV counter at nv_index (0x01xxxxxx):
 * TPM_NT_COUNTER with AUTHWRITE | AUTHREAD | OWNERREAD | NO_DA, 8 bytes,
 * no policy.  Only auth, the index's authValue, can increment it (no
 * OWNERWRITE, no PPWRITE): a process that merely reaches the TPM cannot
 * move it and make the manager refuse its store as a rollback.  auth: 1..
 * TSS_HAL_COUNTER_AUTH_MAX bytes, not all zero (the TPM drops trailing
 * zero bytes, so does this); the manager derives 32 from its root key.
 * NO_DA means the TPM does not slow down guesses: it must be a key, not a
 * password.  It never crosses the TPM interface: every use is an HMAC
 * session salted with the storage primary, and define sends it encrypted.
 * A wrong auth value: -EPERM (err says the index was re-created).
 *
 * define: idempotent.  Defines the index if it is free, else finds ours
 * there; increments a never-written counter once, so that read works;
 * then runs tss_hal_counter_check.  -EEXIST if an index with other
 * attributes is there (err names it: pick another nv-index or undefine
 * it); -EPERM if ours is there with another auth value.
 * read: with the owner's (empty) auth, no secret.  -ENOENT if the index is
 * not defined, -ENODATA if it was never incremented.
 * increment: *new_value is the value after it.
 * check, at every start, changes nothing: the index has exactly our
 * attributes and accepts auth (a TPM2_NV_Read in the index's own role).
 * -ENOENT if it is missing; -EPERM if someone replaced it (other
 * attributes, or another auth value), err says which; -ENODATA if it is
 * ours but was never incremented (a define that stopped: define again).
 */
#define TSS_HAL_COUNTER_AUTH_MAX 32  /* sha256 digest: the nameAlg's size */

int tss_hal_counter_define(struct tss_hal *h, uint32_t nv_index,
			   const uint8_t *auth, size_t auth_len, char *err,
			   size_t errlen);
int tss_hal_counter_read(struct tss_hal *h, uint32_t nv_index,
			 uint64_t *value, char *err, size_t errlen);
int tss_hal_counter_increment(struct tss_hal *h, uint32_t nv_index,
			      const uint8_t *auth, size_t auth_len,
			      uint64_t *new_value, char *err, size_t errlen);
int tss_hal_counter_check(struct tss_hal *h, uint32_t nv_index,
			  const uint8_t *auth, size_t auth_len, char *err,
			  size_t errlen);

/*
 * Attestation key: a restricted ECC P-256 ECDSA-SHA256 signing key,
 * created as a primary in the endorsement hierarchy from a fixed
 * template (same public key after every restart), kept loaded.
 * *spki_der: DER SubjectPublicKeyInfo, malloc()ed: free() it.
 */
int tss_hal_ak(struct tss_hal *h, uint8_t **spki_der, size_t *spki_len,
	       char *err, size_t errlen);

/*
 * TPM2_Quote by the AK over sel, qualifyingData = qd (<= TSS_HAL_QD_MAX).
 * *attest: the marshalled TPMS_ATTEST (what the signature covers);
 * *sig: DER ECDSA-Sig-Value.  Both malloc()ed: free() them.
 */
int tss_hal_quote(struct tss_hal *h, const uint8_t *qd, size_t qdlen,
		  const struct pcr_sel *sel, uint8_t **attest,
		  size_t *attest_len, uint8_t **sig, size_t *sig_len,
		  char *err, size_t errlen);

/*
 * A signing key that never leaves this TPM (the issuing CA of vTPM EK
 * certificates, docs/ekcert.md): ECC P-256, ECDSA-SHA256, created under
 * the storage primary with auth (1..32 bytes, not ending in a zero byte;
 * the manager derives it from its root key) as its authValue, kept only as
 * a TPM-wrapped blob ("VTPMSKEY", version 1, the parent's name, then the
 * marshalled TPM2B_PUBLIC and TPM2B_PRIVATE).  sign loads it, signs the
 * SHA-256 digest in a salted HMAC session with auth, flushes it; *sig is
 * a DER ECDSA-Sig-Value.  public parses a blob (pure: no TPM) into its
 * SubjectPublicKeyInfo.  -EINVAL: a malformed blob, one made under another
 * storage key, or a bad auth length.  Everything malloc()ed: free() it.
 */
int tss_hal_signkey_create(struct tss_hal *h, const uint8_t *auth,
			   size_t auth_len, uint8_t **blob, size_t *bloblen,
			   char *err, size_t errlen);
int tss_hal_signkey_public(const uint8_t *blob, size_t bloblen,
			   uint8_t **spki_der, size_t *spki_len, char *err,
			   size_t errlen);
int tss_hal_signkey_sign(struct tss_hal *h, const uint8_t *blob,
			 size_t bloblen, const uint8_t *auth, size_t auth_len,
			 const uint8_t digest[32], uint8_t **sig,
			 size_t *sig_len, char *err, size_t errlen);

/*
 * The migration key (docs/migration.md): an RSA-2048 decryption key that
 * never leaves this TPM (fixedTPM, fixedParent, noDA, not restricted, no
 * policy), created under the storage primary with auth as its authValue
 * (rules as the signing key's), kept only as a TPM-wrapped blob
 * ("VTPMMKEY", version 1, the parent's name, TPM2B_PUBLIC, TPM2B_PRIVATE).
 * certify: TPM2_Certify of it by the attestation key with qd as
 * qualifying data; *pub is its marshalled TPM2B_PUBLIC, *attest the
 * TPMS_ATTEST, *sig a DER ECDSA-Sig-Value.  decrypt: TPM2_RSA_Decrypt,
 * OAEP with SHA-256 and label (a C string: the TPM counts its zero byte);
 * the result travels from the TPM encrypted; *outlen: out's size on
 * entry, the message's on return (wipe it).  Everything malloc()ed.
 */
int tss_hal_migkey_create(struct tss_hal *h, const uint8_t *auth,
			  size_t auth_len, uint8_t **blob, size_t *bloblen,
			  char *err, size_t errlen);
int tss_hal_migkey_certify(struct tss_hal *h, const uint8_t *blob,
			   size_t bloblen, const uint8_t *auth,
			   size_t auth_len, const uint8_t qd[32],
			   uint8_t **pub, size_t *pub_len, uint8_t **attest,
			   size_t *attest_len, uint8_t **sig, size_t *sig_len,
			   char *err, size_t errlen);
int tss_hal_migkey_decrypt(struct tss_hal *h, const uint8_t *blob,
			   size_t bloblen, const uint8_t *auth,
			   size_t auth_len, const char *label,
			   const uint8_t *in, size_t inlen, uint8_t *out,
			   size_t *outlen, char *err, size_t errlen);

#endif
