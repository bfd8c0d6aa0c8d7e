/* SPDX-License-Identifier: BSD-3-Clause */
/* Config text, key files, UUIDs and transport strings. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/config.h"
#include "proto/keyfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	struct transport_spec t;
	char err[CONFIG_ERR_MAX];
	uint8_t key[32], uuid[16];
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	config_defaults(&cfg);
	if (config_load_string(&cfg, text, err, sizeof(err)) == 0)
		(void)config_validate(&cfg, err, sizeof(err));
	(void)config_parse_uuid(text, uuid);
	(void)config_parse_transport(text, &t);
	(void)keyfile_parse(data, size, key, err, sizeof(err));
	free(text);
	return 0;
}
