/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Manufacture's parsers and the certificate builder from arbitrary bytes.
 * The first byte picks what the rest is:
 *   0, 1  a TPM2_CreatePrimary answer for the RSA / ECC EK template
 *         (mf_parse_primary); what it accepts is a key of the right size
 *   2     a TPM2_GetCapability(TPM_PROPERTIES) answer
 *   3     an EK_CERTIFY request frame, as a (possibly hostile) instance
 *         sends it: decoded, its key built, its certificate made and
 *         signed here by a software CA, parsed back by OpenSSL
 *   4     a certificate offered to ca-import (DER), checked against the
 *         CA key: only the CA's own certificate passes
 * Seeds in corpus/ekcert: real libtpms answers and a real request.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "instance/manufacture.h"
#include "proto/ekcert.h"
#include "proto/mgrproto.h"

static EVP_PKEY *ca_key;
static X509 *ca;

static uint8_t *sign_assemble(const uint8_t *tbs, size_t tbs_len,
			      size_t *len)
{
	uint8_t sig[128], *cert = NULL;
	size_t sig_len = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, ca_key) != 1 ||
	    EVP_DigestSign(md, sig, &sig_len, tbs, tbs_len) != 1 ||
	    ekcert_assemble(tbs, tbs_len, sig, sig_len, &cert, len))
		abort();
	EVP_MD_CTX_free(md);
	return cert;
}

static void init(void)
{
	struct ekcert_params p;
	const unsigned char *q;
	uint8_t *tbs, *cert;
	size_t tbs_len, len;

	if (ca)
		return;
	ca_key = EVP_EC_gen("P-256");
	memset(&p, 0, sizeof(p));
	p.type = EKCERT_CA;
	p.subject_key = ca_key;
	p.ca_name = "fuzz";
	p.serial[15] = 1;
	if (!ca_key || ekcert_tbs(&p, &tbs, &tbs_len))
		abort();
	cert = sign_assemble(tbs, tbs_len, &len);
	q = cert;
	ca = d2i_X509(NULL, &q, (long)len);
	if (!ca)
		abort();
	OPENSSL_free(tbs);
	OPENSSL_free(cert);
}

static void certify(const uint8_t *data, size_t size)
{
	static const enum ekcert_type type[] = {
		[MGR_EK_KIND_RSA] = EKCERT_EK_RSA,
		[MGR_EK_KIND_ECC] = EKCERT_EK_ECC,
		[MGR_EK_KIND_PLATFORM] = EKCERT_PLATFORM,
	};
	struct ekcert_params p;
	struct mgr_req req;
	const unsigned char *q;
	uint8_t *tbs, *cert;
	size_t tbs_len, len;
	X509 *x;
	int rc;

	if (mgrproto_decode_req(data, size, &req) ||
	    req.type != MGR_MSG_EK_CERTIFY)
		return;
	memset(&p, 0, sizeof(p));
	rc = req.u.ek.kind == MGR_EK_KIND_ECC
		     ? ekcert_ecc_key(req.u.ek.key, req.u.ek.key_len,
				      &p.subject_key)
		     : ekcert_rsa_key(req.u.ek.key, req.u.ek.key_len,
				      &p.subject_key);
	if (rc)
		return;
	p.type = type[req.u.ek.kind];
	p.issuer = ca;
	p.serial[0] = 0x11;
	p.tpm.manufacturer = req.u.ek.manufacturer;
	memcpy(p.tpm.model, req.u.ek.model, sizeof(p.tpm.model));
	p.tpm.fw_version[0] = req.u.ek.fw_version[0];
	p.tpm.fw_version[1] = req.u.ek.fw_version[1];
	p.tpm.spec_level = req.u.ek.spec_level;
	p.tpm.spec_revision = req.u.ek.spec_revision;
	p.platform[0] = p.platform[1] = p.platform[2] = "x";
	rc = ekcert_tbs(&p, &tbs, &tbs_len);
	if (rc == 0) {
		cert = sign_assemble(tbs, tbs_len, &len);
		q = cert;
		x = d2i_X509(NULL, &q, (long)len);
		/* Whatever it builds is one certificate the CA signed. */
		if (!x || q != cert + len || X509_verify(x, ca_key) != 1 ||
		    len > MGR_EKCERT_MAX)
			abort();
		X509_free(x);
		OPENSSL_free(tbs);
		OPENSSL_free(cert);
	} else if (rc != EKCERT_ERR_PARAM) {
		abort();
	}
	EVP_PKEY_free(p.subject_key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mgr_ek_certify_req id;
	uint32_t handle;
	uint8_t sel;
	int rc;

	init();
	if (size < 1)
		return 0;
	sel = data[0] % 5;
	data++;
	size--;
	memset(&id, 0, sizeof(id));
	switch (sel) {
	case 0:
	case 1:
		rc = mf_parse_primary(data, size, sel ? MGR_EK_KIND_ECC
						      : MGR_EK_KIND_RSA,
				      &handle, &id);
		if (rc == 0 && id.key_len != (sel ? MGR_EK_ECC_LEN
						 : MGR_EK_RSA_LEN))
			abort();
		break;
	case 2:
		rc = mf_parse_properties(data, size, &id);
		for (size_t i = 0; rc == 0 && i < sizeof(id.model); i++)
			if (id.model[i] && (id.model[i] < 0x20 ||
					    id.model[i] > 0x7e))
				abort();
		break;
	case 3:
		certify(data, size);
		break;
	default: {
		const unsigned char *q = data;
		X509 *x = d2i_X509(NULL, &q, (long)size);
		char err[128];

		if (x && ekcert_check_ca(x, ca_key, err, sizeof(err)) == 0 &&
		    EVP_PKEY_eq(X509_get0_pubkey(x), ca_key) != 1)
			abort();
		X509_free(x);
		break;
	}
	}
	return 0;
}
