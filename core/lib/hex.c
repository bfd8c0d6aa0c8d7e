/* SPDX-License-Identifier: BSD-3-Clause */
#include "lib/hex.h"

#include <errno.h>
#include <string.h>

int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_decode(const char *s, size_t len, uint8_t *out, size_t n)
{
	if (!s || len != 2 * n || memchr(s, '\0', len))
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (hex_digit((unsigned char)s[i]) < 0)
			return -EINVAL;
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(hex_digit((unsigned char)s[2 * i]) << 4 |
				   hex_digit((unsigned char)s[2 * i + 1]));
	return 0;
}

void hex_encode(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Where the four dashes stand, and where each of the 16 bytes starts. */
static const unsigned char uuid_byte_at[16] = {
	0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34,
};

int uuid_parse(const char *s, size_t len, uint8_t out[16])
{
	uint8_t u[16];

	if (!s || len != 36 || memchr(s, '\0', len))
		return -EINVAL;
	if (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')
		return -EINVAL;
	for (size_t i = 0; i < 16; i++)
		if (hex_decode(s + uuid_byte_at[i], 2, &u[i], 1))
			return -EINVAL;
	memcpy(out, u, 16);
	return 0;
}

int uuid_parse_str(const char *s, uint8_t out[16])
{
	return s ? uuid_parse(s, strlen(s), out) : -EINVAL;
}

void uuid_format(const uint8_t u[16], char out[UUID_STR_LEN])
{
	char hex[33];
	size_t o = 0;

	hex_encode(u, 16, hex);
	for (size_t i = 0; i < 32; i++) {
		if (i == 8 || i == 12 || i == 16 || i == 20)
			out[o++] = '-';
		out[o++] = hex[i];
	}
	out[o] = '\0';
}

int dec_parse_u32(const char *s, size_t len, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (!s || len == 0 || len > 10 || memchr(s, '\0', len))
		return -EINVAL;
	if (s[0] == '0' && len > 1)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return -ERANGE;
	*out = (uint32_t)v;
	return 0;
}
