/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Certificates of a manufactured vTPM (docs/ekcert.md), after the TCG EK
 * Credential Profile 2.0: the EK certificates (RSA-2048, ECC P-256), the
 * platform certificate, and the self-signed certificate of the issuing
 * CA.  Pure functions over OpenSSL: the caller gets the DER of the
 * TBSCertificate (signature algorithm ecdsa-with-SHA256), has the CA key
 * sign its SHA-256 digest wherever that key lives (the physical TPM), and
 * joins the two with ekcert_assemble.  No I/O.
 */
#ifndef VTPM_EKCERT_H
#define VTPM_EKCERT_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define EKCERT_SERIAL_LEN 16
#define EKCERT_RSA_LEN 256     /* an RSA-2048 EK's modulus */
#define EKCERT_ECC_LEN 64      /* a P-256 EK's x || y */
#define EKCERT_MODEL_LEN 16    /* TPM_PT_VENDOR_STRING_1..4 */

/* The TCG OIDs these certificates use. */
#define EKCERT_OID_TPM_MANUFACTURER "2.23.133.2.1"
#define EKCERT_OID_TPM_MODEL "2.23.133.2.2"
#define EKCERT_OID_TPM_VERSION "2.23.133.2.3"
#define EKCERT_OID_TPM_SPEC "2.23.133.2.16"
#define EKCERT_OID_EK_CERT "2.23.133.8.1"       /* tcg-kp-EKCertificate */
#define EKCERT_OID_PLATFORM_CERT "2.23.133.8.2" /* tcg-kp-PlatformCert... */
#define EKCERT_OID_PLATFORM_MANUFACTURER "2.23.133.5.1.1"
#define EKCERT_OID_PLATFORM_MODEL "2.23.133.5.1.4"
#define EKCERT_OID_PLATFORM_VERSION "2.23.133.5.1.5"

enum ekcert_type {
	EKCERT_EK_RSA = 1,   /* keyEncipherment */
	EKCERT_EK_ECC,       /* keyAgreement */
	EKCERT_PLATFORM,     /* over the RSA EK, as swtpm_setup makes it */
	EKCERT_CA,           /* self-signed, keyCertSign */
};

/* The TPM's identity, from TPM2_GetCapability(TPM_PROPERTIES). */
struct ekcert_tpm {
	uint32_t manufacturer;               /* TPM_PT_MANUFACTURER */
	uint8_t model[EKCERT_MODEL_LEN];     /* printable ASCII or NUL */
	uint32_t fw_version[2];
	uint32_t spec_level, spec_revision;
};

struct ekcert_params {
	enum ekcert_type type;
	EVP_PKEY *subject_key;
	/* The issuing CA's certificate: its subject is the issuer, its key
	 * identifier the authority key identifier.  NULL for EKCERT_CA. */
	X509 *issuer;
	const char *ca_name;                 /* EKCERT_CA: the CN */
	uint8_t serial[EKCERT_SERIAL_LEN];   /* positive: top bit clear */
	time_t not_before;
	struct ekcert_tpm tpm;               /* EK and platform */
	/* EKCERT_PLATFORM: the platform's manufacturer, model, version. */
	const char *platform[3];
};

enum ekcert_err {
	EKCERT_OK = 0,
	EKCERT_ERR_KEY = -1,       /* not a key of the expected kind */
	EKCERT_ERR_PARAM = -2,     /* a field out of range */
	EKCERT_ERR_CRYPTO = -3,    /* OpenSSL failed */
	EKCERT_ERR_FORMAT = -4,    /* not DER of the expected shape */
};

const char *ekcert_strerror(int err);

/* An RSA-2048 public key from its modulus (exponent 65537), or a P-256
 * key from x || y (checked to be on the curve). */
int ekcert_rsa_key(const uint8_t *n, size_t len, EVP_PKEY **out);
int ekcert_ecc_key(const uint8_t *xy, size_t len, EVP_PKEY **out);

/* "id:XXXXXXXX" and the model text as the certificates spell them. */
void ekcert_tpm_strings(const struct ekcert_tpm *t, char manufacturer[12],
			char model[EKCERT_MODEL_LEN + 1], char version[12]);

/* The DER of the TBSCertificate; *tbs is OPENSSL_malloc()ed. */
int ekcert_tbs(const struct ekcert_params *p, uint8_t **tbs, size_t *tbs_len);

/*
 * A PKCS#10 request for the CA key (an operator's CA makes it an
 * intermediate): the DER of its CertificationRequestInfo, subject
 * O=vtpm-service, CN=cn; sign and assemble it as a certificate's.
 */
int ekcert_csr_info(EVP_PKEY *key, const char *cn, uint8_t **info,
		    size_t *info_len);

/*
 * Whether x can be the issuing CA for key: X.509 v3, key's public key,
 * basicConstraints CA:TRUE, keyUsage with keyCertSign, a subject key
 * identifier (the authority key id of what it issues).  0, or
 * EKCERT_ERR_PARAM with why in err.
 */
int ekcert_check_ca(X509 *x, EVP_PKEY *key, char *err, size_t errlen);

/*
 * Certificate ::= SEQUENCE { tbs, ecdsa-with-SHA256, BIT STRING sig }
 * (and a CertificationRequest alike, from its info).
 * sig is a DER ECDSA-Sig-Value; *cert is OPENSSL_malloc()ed.
 */
int ekcert_assemble(const uint8_t *tbs, size_t tbs_len, const uint8_t *sig,
		    size_t sig_len, uint8_t **cert, size_t *cert_len);

#endif
