/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The one-line reason a call leaves beside its return code in a caller's
 * (err, errlen) pair, as hal/tss-device and hal/tis-mmio report.
 */
#ifndef VTPM_LIB_ERRBUF_H
#define VTPM_LIB_ERRBUF_H

#include <stdarg.h>
#include <stddef.h>

/* printf into err, truncated to errlen; nothing if err is NULL or errlen
 * is 0.  Never fails. */
void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The same with a va_list. */
void vseterr(char *err, size_t errlen, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* seterr, then rc: "return seterrc(err, errlen, -EINVAL, ...);" */
int seterrc(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
