/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Logging: four verbs and two exits, in the OpenBSD daemon style.  Lines go
 * to stderr with a "<N>" syslog priority prefix, which journald turns into
 * the record's priority; every line names the vTPM it is about.
 */
#ifndef VTPM_LOG_H
#define VTPM_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LVL_ERR = 3,
	LOG_LVL_WARNING = 4,
	LOG_LVL_NOTICE = 5,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7,
};

void log_init(const char *progname, int level);
/* Sets the "dom1/uuid" tag printed on every line. */
void log_set_subject(const char *subject);
int log_level_parse(const char *s);
int log_get_level(void);

/* log_warn appends strerror(errno); log_warnx does not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

/*
 * Rate-limited warning for things a peer can trigger at will: at most
 * `burst` lines per `period_s` seconds for one limiter, then one summary.
 */
struct log_ratelimit {
	long long window_start;
	unsigned int count;
	unsigned int suppressed;
};
void log_warnx_rl(struct log_ratelimit *rl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
