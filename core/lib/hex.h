/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The one strict text codec for bytes, UUIDs and decimal numbers that
 * others wrote (xenstore, config, JSON, command lines).  Parsers take an
 * explicit length, accept exactly the canonical shape and nothing around
 * it, and write nothing on failure.
 */
#ifndef VTPM_LIB_HEX_H
#define VTPM_LIB_HEX_H

#include <stddef.h>
#include <stdint.h>

#define UUID_STR_LEN 37 /* 36 characters and the NUL */

/* The value of one hex digit (either case), or -1. */
int hex_digit(int c);

/* Exactly 2 * n hex digits (either case) in s[0..len) into out[0..n);
 * 0 or -EINVAL. */
int hex_decode(const char *s, size_t len, uint8_t *out, size_t n);

/* n bytes as 2 * n lowercase digits and a NUL (out holds 2 * n + 1). */
void hex_encode(const uint8_t *b, size_t n, char *out);

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (either case), exactly len 36
 * with no NUL inside; 0 or -EINVAL. */
int uuid_parse(const char *s, size_t len, uint8_t out[16]);

/* The same, NUL-terminated. */
int uuid_parse_str(const char *s, uint8_t out[16]);

/* Lowercase, NUL-terminated. */
void uuid_format(const uint8_t u[16], char out[UUID_STR_LEN]);

/* Decimal as printed by "%u": no sign, space, leading zero or NUL inside
 * s[0..len); 0, -EINVAL, or -ERANGE above max. */
int dec_parse_u32(const char *s, size_t len, uint32_t max, uint32_t *out);

#endif
