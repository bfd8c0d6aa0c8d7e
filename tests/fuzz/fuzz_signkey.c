/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The EK CA's key blob (ekca.key in the manager's state directory, the
 * format of hal/tss-device's signing key) from arbitrary bytes: parsed
 * without a TPM by tss_hal_signkey_public.  Whatever it accepts names a
 * P-256 public key.  Seed: corpus/signkey, a blob swtpm made.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tss-device/tss_hal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *spki = NULL;
	const unsigned char *p;
	size_t len = 0;
	char err[256];
	EVP_PKEY *k;

	if (tss_hal_signkey_public(data, size, &spki, &len, err,
				   sizeof(err)) == 0) {
		p = spki;
		k = d2i_PUBKEY(NULL, &p, (long)len);
		if (!k || EVP_PKEY_get_bits(k) != 256)
			abort();
		EVP_PKEY_free(k);
		free(spki);
	}
	return 0;
}
