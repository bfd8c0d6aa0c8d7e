/* SPDX-License-Identifier: BSD-3-Clause */
#include "lib/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *log_prog = "vtpm-service";
static char log_subject[96];
static int log_lvl = LOG_LVL_INFO;

void log_init(const char *progname, int level)
{
	if (progname)
		log_prog = progname;
	log_lvl = level;
}

void log_set_subject(const char *subject)
{
	snprintf(log_subject, sizeof(log_subject), "%s", subject ? subject : "");
}

int log_get_level(void)
{
	return log_lvl;
}

int log_level_parse(const char *s)
{
	static const struct {
		const char *name;
		int lvl;
	} names[] = {
		{ "error", LOG_LVL_ERR },   { "warning", LOG_LVL_WARNING },
		{ "warn", LOG_LVL_WARNING }, { "notice", LOG_LVL_NOTICE },
		{ "info", LOG_LVL_INFO },   { "debug", LOG_LVL_DEBUG },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(s, names[i].name) == 0)
			return names[i].lvl;
	return -1;
}

static void __attribute__((format(printf, 3, 0)))
log_vemit(int lvl, int errnum, const char *fmt, va_list ap)
{
	char msg[1024];

	if (lvl > log_lvl)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* One fprintf per line keeps concurrent writers from interleaving. */
	fprintf(stderr, "<%d>%s%s%s%s: %s%s%s\n", lvl, log_prog,
		log_subject[0] ? "[" : "", log_subject,
		log_subject[0] ? "]" : "", msg, errnum ? ": " : "",
		errnum ? strerror(errnum) : "");
}

#define LOG_BODY(lvl, errnum)                 \
	do {                                  \
		va_list ap;                   \
		va_start(ap, fmt);            \
		log_vemit(lvl, errnum, fmt, ap); \
		va_end(ap);                   \
	} while (0)

void log_warn(const char *fmt, ...)
{
	int e = errno;
	LOG_BODY(LOG_LVL_WARNING, e);
}

void log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_WARNING, 0);
}

void log_errx(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_ERR, 0);
}

void log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_INFO, 0);
}

void log_debug(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_DEBUG, 0);
}

void fatal(const char *fmt, ...)
{
	int e = errno;
	LOG_BODY(LOG_LVL_ERR, e);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_ERR, 0);
	exit(1);
}

void log_warnx_rl(struct log_ratelimit *rl, const char *fmt, ...)
{
	const unsigned int burst = 5;
	const long long period = 10;
	struct timespec ts;
	va_list ap;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec - rl->window_start >= period) {
		if (rl->suppressed)
			log_warnx("(%u similar messages suppressed)",
				  rl->suppressed);
		rl->window_start = ts.tv_sec;
		rl->count = 0;
		rl->suppressed = 0;
	}
	if (rl->count >= burst) {
		rl->suppressed++;
		return;
	}
	rl->count++;
	va_start(ap, fmt);
	log_vemit(LOG_LVL_WARNING, 0, fmt, ap);
	va_end(ap);
}
