/* SPDX-License-Identifier: BSD-3-Clause */
#include "lib/aead.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <string.h>

int aead_hkdf_sha256(const uint8_t *ikm, size_t ikmlen, const char *info,
		     uint8_t *out, size_t outlen)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[4];
	int ok = 0;

	if (ctx) {
		params[0] = OSSL_PARAM_construct_utf8_string(
			OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
		params[1] = OSSL_PARAM_construct_octet_string(
			OSSL_KDF_PARAM_KEY, (void *)ikm, ikmlen);
		params[2] = OSSL_PARAM_construct_octet_string(
			OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
		params[3] = OSSL_PARAM_construct_end();
		ok = EVP_KDF_derive(ctx, out, outlen, params) == 1;
	}
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return ok ? 0 : -EIO;
}

int aead_gcm(int enc, const uint8_t key[AEAD_KEY_LEN],
	     const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *aad,
	     size_t aadlen, const uint8_t *in, size_t inlen, uint8_t *out,
	     uint8_t tag[AEAD_TAG_LEN])
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int len, rc = -EIO;

	if (!c)
		return -ENOMEM;
	if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, AEAD_NONCE_LEN,
				NULL) != 1 ||
	    EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) != 1 ||
	    EVP_CipherUpdate(c, NULL, &len, aad, (int)aadlen) != 1)
		goto out;
	if (inlen && EVP_CipherUpdate(c, out, &len, in, (int)inlen) != 1)
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, AEAD_TAG_LEN,
					tag) != 1)
		goto out;
	if (EVP_CipherFinal_ex(c, out + inlen, &len) != 1) {
		rc = enc ? -EIO : -EBADMSG;
		goto out;
	}
	if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, AEAD_TAG_LEN,
				       tag) != 1)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(c);
	return rc;
}
