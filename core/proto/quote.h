/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A TPM 2.0 quote checked offline, with no TPM and no tpm2-tss: the
 * attestation structure and the signature are parsed by hand with strict
 * bounds, and the signature is checked with OpenSSL against the attestation
 * key's DER SubjectPublicKeyInfo.  Pure and thread-safe.
 *
 * Inputs as a TPM and the tools hand them out:
 *   attest     the marshalled TPMS_ATTEST the TPM signed (what
 *              tpm2_quote -m writes), or the same as a TPM2B_ATTEST
 *              (its 2-byte size first); every byte must be consumed.
 *   signature  a marshalled TPMT_SIGNATURE (tpm2_quote -s, the default
 *              "tss" format): ECDSA, RSASSA or RSAPSS, with SHA-256; or
 *              a DER ECDSA-Sig-Value (the manager's quote files,
 *              tpm2_quote -f plain with an ECC key).
 *   spki       the key, DER SubjectPublicKeyInfo (tpm2_readpublic -f der),
 *              EC P-256/P-384/P-521 or RSA.
 *
 * Errors are their own domain (enum quote_status, positive, never a
 * negative errno); err, when not NULL, gets a one-line reason.
 */
#ifndef VTPM_PROTO_QUOTE_H
#define VTPM_PROTO_QUOTE_H

#include <stddef.h>
#include <stdint.h>

#define QUOTE_PCR_COUNT 24       /* PCRs a selection may name: 0..23 */
#define QUOTE_QD_MAX 64          /* qualifyingData a caller may expect */
#define QUOTE_SPKI_MAX 4096      /* far above any real key */
#define QUOTE_SIG_MAX 1024       /* an RSA-4096 signature and its header */
#define QUOTE_ATTEST_MAX 2048    /* a quote's TPMS_ATTEST is far smaller */
#define QUOTE_NAME_MAX 68        /* TPM2B_NAME: sizeof(TPMU_NAME) */
#define QUOTE_DATA_MAX 66        /* TPM2B_DATA: sizeof(TPMT_HA) */
#define QUOTE_DIGEST_MAX 64      /* TPM2B_DIGEST: the largest hash */
#define QUOTE_BANKS_MAX 16       /* TPML_PCR_SELECTION: HASH_COUNT */
#define QUOTE_SELECT_MAX 4       /* pcrSelect bytes: PCR_SELECT_MAX */

#define TPM_GENERATED_VALUE 0xff544347u
#define TPM_ST_ATTEST_QUOTE 0x8018u
#define TPM_ALG_SHA256 0x000bu

enum quote_status {
	QUOTE_OK = 0,
	QUOTE_E_ARGS,       /* a missing argument, qualifying data too long */
	QUOTE_E_KEY,        /* spki is not a usable DER SubjectPublicKeyInfo */
	QUOTE_E_SIG_FORMAT, /* signature: not a TPMT_SIGNATURE nor DER, or an
			     * algorithm that does not fit the key */
	QUOTE_E_SIGNATURE,  /* does not verify with the key */
	QUOTE_E_FORMAT,     /* attest truncated, oversize or trailing bytes */
	QUOTE_E_MAGIC,      /* not TPM_GENERATED_VALUE: not a TPM's own */
	QUOTE_E_TYPE,       /* not TPM_ST_ATTEST_QUOTE */
	QUOTE_E_NONCE,      /* extraData is not the expected qualifying data */
	QUOTE_E_PCR_SELECT, /* not one sha256 bank within 0..23, or not the
			     * selection expected */
	QUOTE_E_PCR_DIGEST, /* the PCR values given do not hash to the
			     * quoted digest */
};

/* "bad signature" and so on, for any value (never NULL). */
const char *quote_strerror(int status);

/* What a quote's TPMS_ATTEST says; pointers into the parsed buffer. */
struct quote_info {
	uint16_t type;
	const uint8_t *signer;          /* qualifiedSigner (a TPM name) */
	size_t signer_len;
	const uint8_t *extra;           /* extraData: the qualifying data */
	size_t extra_len;
	uint64_t clock;
	uint32_t reset_count, restart_count;
	uint8_t safe;
	uint64_t firmware;
	uint32_t pcr_mask;              /* sha256 bank, bit n = PCR n */
	uint8_t pcr_digest[32];
};

/*
 * Parses a quote's TPMS_ATTEST, or a TPM2B_ATTEST around one.  Checks the
 * structure (every size within its type's bound and the buffer, the
 * whole buffer consumed), the magic, the type, and that the selection is
 * one sha256 bank over PCRs 0..23 with a 32-byte digest.  msg and msg_len
 * (may be NULL): the TPMS_ATTEST bytes, what the signature covers.
 */
int quote_parse(const uint8_t *attest, size_t len, struct quote_info *out,
		const uint8_t **msg, size_t *msg_len, char *err, size_t errlen);

/*
 * The signature (in either form above) over msg with the key spki,
 * hash SHA-256.  QUOTE_OK, QUOTE_E_KEY, QUOTE_E_SIG_FORMAT or QUOTE_E_SIGNATURE.
 */
int quote_sig_verify(const uint8_t *spki, size_t spki_len, const uint8_t *msg,
		     size_t msg_len, const uint8_t *sig, size_t sig_len,
		     char *err, size_t errlen);

/*
 * The PCR digest a TPM quotes: SHA-256 over the values of the selected
 * PCRs in ascending index order, n of them.
 */
void quote_pcr_digest(const uint8_t (*values)[32], size_t n,
		      uint8_t out[32]);

/* What the verifier expects of the quote. */
struct quote_expect {
	const uint8_t *qd;              /* extraData, exactly (qd_len may be 0) */
	size_t qd_len;                  /* <= QUOTE_QD_MAX */
	uint32_t pcr_mask;              /* 0: any selection (reported) */
	/* With pcr_mask: the values of its PCRs in ascending order; NULL:
	 * the quoted digest is only reported. */
	const uint8_t (*pcr_values)[32];
};

/*
 * The whole check: nothing in attest is believed before the signature
 * holds; then the structure, magic, type, extraData == want->qd, and with
 * want->pcr_mask the selection and (with pcr_values) the digest.  out
 * (may be NULL) gets what the quote says; its pointers point into attest.
 */
int quote_verify(const uint8_t *spki, size_t spki_len, const uint8_t *attest,
		 size_t attest_len, const uint8_t *sig, size_t sig_len,
		 const struct quote_expect *want, struct quote_info *out,
		 char *err, size_t errlen);

#endif
