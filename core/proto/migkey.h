/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A destination's migration key, checked offline (docs/migration.md):
 * an RSA-2048 decryption key that the destination's physical TPM created
 * (fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | noDA |
 * decrypt, not restricted, no policy), certified by TPM2_Certify under the
 * destination manager's attestation key with MIGKEY_QD as qualifying
 * data.  Parsed by hand with strict bounds (no tpm2-tss), the signature
 * checked with OpenSSL (proto/quote.h).  Pure and thread-safe.
 *
 *   public  the marshalled TPM2B_PUBLIC of the key (its size first)
 *   attest  the marshalled TPMS_ATTEST of TPM2_Certify
 *   sig     a DER ECDSA-Sig-Value or a TPMT_SIGNATURE, by the AK
 *   ak      the AK's DER SubjectPublicKeyInfo
 *
 * Results: 0 or -EINVAL (malformed, not our key, another purpose),
 * -EBADMSG (the signature or the certified name does not hold),
 * -EPERM (the AK is not the pinned one), -ENOMEM, -EIO; err says which.
 */
#ifndef VTPM_PROTO_MIGKEY_H
#define VTPM_PROTO_MIGKEY_H

#include <stddef.h>
#include <stdint.h>

#define MIGKEY_NAME_LEN 34       /* sha256 alg id + digest */
#define MIGKEY_MODULUS_LEN 256   /* RSA-2048 */
#define MIGKEY_PUBLIC_MAX 1024   /* a TPM2B_PUBLIC of ours is ~ 280 */
#define MIGKEY_ATTEST_MAX 1024
#define MIGKEY_SIG_MAX 1024
#define MIGKEY_SPKI_MAX 4096
/* The object attributes a migration key has, exactly. */
#define MIGKEY_ATTRS 0x00020472u /* fixedTPM fixedParent
				  * sensitiveDataOrigin userWithAuth noDA
				  * decrypt */
/* The label of the OAEP padding the source wraps with. */
#define MIGKEY_OAEP_LABEL "vtpm-service export v1"

/* TPM2_Certify's qualifying data: SHA-256 of this label. */
#define MIGKEY_QD_LABEL "vtpm-service migration key v1"
void migkey_qd(uint8_t qd[32]);

struct migkey {
	uint8_t name[MIGKEY_NAME_LEN];      /* the key's TPM name */
	uint8_t modulus[MIGKEY_MODULUS_LEN];
	uint8_t ak_sha256[32];              /* SHA-256 of the AK's SPKI */
};

/* The key's public area: our template, an RSA-2048 modulus; its name. */
int migkey_parse_public(const uint8_t *pub, size_t len, struct migkey *out,
			char *err, size_t errlen);

/*
 * The whole check of a DEST.json: the public area, the signature over
 * attest by ak, then attest: TPM_GENERATED, TPM_ST_ATTEST_CERTIFY,
 * extraData == migkey_qd, the certified name == the public area's name.
 * pinned (may be NULL): the AK must be exactly this SPKI.
 */
int migkey_verify(const uint8_t *pub, size_t publen, const uint8_t *attest,
		  size_t attestlen, const uint8_t *sig, size_t siglen,
		  const uint8_t *ak, size_t aklen, const uint8_t *pinned,
		  size_t pinnedlen, struct migkey *out, char *err,
		  size_t errlen);

/* RSA-OAEP (SHA-256, MIGKEY_OAEP_LABEL) of in to the key; out holds
 * MIGKEY_MODULUS_LEN bytes.  0 or -EIO. */
int migkey_wrap(const struct migkey *k, const uint8_t *in, size_t inlen,
		uint8_t out[MIGKEY_MODULUS_LEN]);

#endif
