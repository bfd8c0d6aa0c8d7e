/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpmctl: manages vTPMs through the manager's control socket (one JSON
 * object per line each way), and verifies deep quotes offline with
 * core/proto/quote.c (OpenSSL only: no TPM, no tpm2-tss, no libtpms).
 *
 * Command line: global options (--control, --json, --timeout, --help)
 * anywhere, as git and kubectl take them; each command's own options after
 * the command name, in any order with its arguments; "--" ends the
 * options.  An option that is neither is an error, never ignored.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/hex.h"
#include "proto/config.h"
#include "proto/expblob.h"
#include "proto/migkey.h"
#include "proto/mgrproto.h"
#include "proto/quote.h"

/* Exit codes (vtpmctl(8)); 2..6 are the manager's own codes. */
enum {
	EXIT_USAGE = 1,
	EXIT_UNREACHABLE = 7,
	EXIT_BAD_QUOTE = 8,
};

static const char *control_path = "/run/vtpm/manager.sock";
static int json_out;
/* How long a request may take, connect to answer; 0: no limit.  The
 * manager bounds its own waits (a physical TPM call, an online
 * migration's peer); this bounds a manager that hangs. */
#define DEFAULT_TIMEOUT_S 300
static unsigned int timeout_s = DEFAULT_TIMEOUT_S;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vtpmctl [--control PATH] [--json] [--timeout SEC] COMMAND ...\n"
		"  create [--uuid U] [--domid N] [--transport unix:PATH|tcp:ADDR:PORT|xen-domain]\n"
		"         [--tpm-version 2.0|1.2] [--no-ek-cert] [--allow-plaintext-state]\n"
		"  list | status | show U | start U | stop U | delete U\n"
		"  quote U --nonce HEX [--pcr-mask MASK] [--out FILE]\n"
		"  verify-quote FILE [--ak-spki HEX]\n"
		"  reseal [--pcr N=HEX ...]   (seal the root key to predicted PCR values)\n"
		"  ca-cert [--out FILE]       (the CA of the vTPMs' EK certificates, PEM)\n"
		"  ca-csr [--out FILE] | ca-import FILE   (make that CA an intermediate)\n"
		"  migration-key [--out DEST.json]   (on the destination of an export)\n"
		"  export U --to DEST.json [--ak-spki HEX|FILE] --out BLOB\n"
		"  migrate U --to HOST:PORT [--ak-spki HEX|FILE]  (online, running)\n"
		"  import BLOB\n"
		"  clone U [--unique [--no-ek-cert]]\n"
		"Global options may also follow the command: vtpmctl status --json.\n");
}

/* ---- the command line ------------------------------------------------ */

enum opt_id {
	O_HELP = 1, O_JSON, O_CONTROL, O_TIMEOUT,
	O_UUID, O_DOMID, O_TRANSPORT, O_TPM_VERSION, O_PLAINTEXT,
	O_NONCE, O_PCR_MASK, O_OUT, O_AK_SPKI, O_PCR, O_NO_EK_CERT,
	O_TO, O_UNIQUE,
};

struct opt {
	const char *name;       /* without the leading "--" */
	enum opt_id id;
	bool arg;               /* takes a value: "--name V" or "--name=V" */
};

struct optval {
	enum opt_id id;
	const char *val;
};

struct args {
	const struct cmd *cmd;
	const char **pos;       /* the command's arguments, in order */
	unsigned int npos;
	struct optval *opt;     /* the command's options, in order */
	unsigned int nopt;
};

struct cmd {
	const char *name;
	const struct opt *opts; /* its own options, besides the global ones */
	unsigned int min_pos, max_pos;
	const char *pos_what;   /* names its arguments in messages */
	int (*run)(const struct args *a);
};

static const struct opt global_opts[] = {
	{ "control", O_CONTROL, true },
	{ "json", O_JSON, false },
	{ "timeout", O_TIMEOUT, true },
	{ "help", O_HELP, false },
	{ NULL, 0, false },
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "vtpmctl: <why>" and the pointer to --help; the usage exit status. */
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("vtpmctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'vtpmctl --help'.\n", stderr);
	return EXIT_USAGE;
}

static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int timed_out(bool sent)
{
	if (sent)
		fprintf(stderr, "vtpmctl: no answer from the manager at %s "
			"within %u s (--timeout); it may still carry the "
			"request out: 'vtpmctl list' or 'show' tells\n",
			control_path, timeout_s);
	else
		fprintf(stderr, "vtpmctl: the manager at %s took no request "
			"within %u s (--timeout); nothing was sent\n",
			control_path, timeout_s);
	return EXIT_UNREACHABLE;
}

static int request(json_object *req, json_object **rsp)
{
	struct sockaddr_un sa;
	const char *s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	int64_t deadline = now_ms() + (int64_t)timeout_s * 1000;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd;

	if (strlen(control_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "vtpmctl: control socket path too long\n");
		return EXIT_USAGE;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && timeout_s) {
		/* connect() (a full backlog) and write() on a UNIX socket
		 * wait at most the send timeout. */
		struct timeval tv = { .tv_sec = (time_t)timeout_s };

		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, control_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		if (e == EAGAIN || e == EINPROGRESS)
			return timed_out(false);
		fprintf(stderr, "vtpmctl: cannot reach the manager at %s: %s\n",
			control_path, strerror(e));
		return EXIT_UNREACHABLE;
	}
	/* A manager that refuses a request closes the connection: say so,
	 * do not die of SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	if (write(fd, s, strlen(s)) < 0 || write(fd, "\n", 1) < 0) {
		int e = errno;

		close(fd);
		if (e == EAGAIN || e == EWOULDBLOCK)
			return timed_out(false);
		fprintf(stderr, "vtpmctl: write: %s\n", strerror(e));
		return EXIT_UNREACHABLE;
	}
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		ssize_t n;
		int pr;

		if (len + 4096 > cap) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
			if (!buf)
				exit(EXIT_UNREACHABLE);
		}
		if (timeout_s && left <= 0) {
			close(fd);
			free(buf);
			return timed_out(true);
		}
		if (left > INT_MAX)
			left = INT_MAX;
		pr = poll(&pfd, 1, timeout_s ? (int)left : -1);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr == 0)
			continue; /* the deadline, checked above */
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(buf, '\n', len))
			break;
	}
	close(fd);
	if (!len) {
		fprintf(stderr, "vtpmctl: the manager closed the connection\n");
		free(buf);
		return EXIT_UNREACHABLE;
	}
	buf[len] = '\0';
	*rsp = json_tokener_parse(buf);
	free(buf);
	if (!*rsp) {
		fprintf(stderr, "vtpmctl: unreadable answer from the manager\n");
		return EXIT_UNREACHABLE;
	}
	return 0;
}

static const char *get_str(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

/* Prints the answer; returns the exit code it calls for. */
static int finish(json_object *rsp, const char *human_key)
{
	json_object *v;
	int code = 0;

	if (!json_object_object_get_ex(rsp, "ok", &v) || !json_object_get_boolean(v)) {
		code = json_object_object_get_ex(rsp, "code", &v)
			       ? json_object_get_int(v)
			       : 6;
		if (code < 2 || code > 6)
			code = 6;
		if (json_out)
			printf("%s\n", json_object_to_json_string_ext(rsp, JSON_C_TO_STRING_PRETTY));
		else
			fprintf(stderr, "vtpmctl: %s\n", get_str(rsp, "error"));
		json_object_put(rsp);
		return code;
	}
	if (json_out) {
		printf("%s\n", json_object_to_json_string_ext(rsp, JSON_C_TO_STRING_PRETTY));
	} else if (human_key && strcmp(human_key, "vtpms") == 0) {
		json_object *arr;
		json_object_object_get_ex(rsp, "vtpms", &arr);
		printf("%-36s %6s %-9s %4s %10s  %s\n", "UUID", "DOMID", "STATE",
		       "TPM", "GENERATION", "TRANSPORT");
		for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
			json_object *e = json_object_array_get_idx(arr, i);
			printf("%-36s %6s %-9s %4s %10s  %s\n", get_str(e, "uuid"),
			       get_str(e, "domid"), get_str(e, "state"),
			       get_str(e, "tpm_version"), get_str(e, "generation"),
			       get_str(e, "transport"));
		}
	} else if (human_key && json_object_object_get_ex(rsp, human_key, &v)) {
		if (json_object_is_type(v, json_type_object)) {
			json_object_object_foreach(v, key, val)
				printf("%s: %s\n", key, json_object_get_string(val));
		} else {
			printf("%s\n", json_object_get_string(v));
		}
	} else if (human_key && strcmp(human_key, "*") == 0) {
		json_object_object_foreach(rsp, key, val)
			if (strcmp(key, "ok") != 0)
				printf("%s: %s\n", key, json_object_get_string(val));
	}
	json_object_put(rsp);
	return 0;
}

static int simple(const char *cmd, const char *uuid, const char *human_key)
{
	json_object *req = json_object_new_object(), *rsp;
	int rc;

	json_object_object_add(req, "cmd", json_object_new_string(cmd));
	if (uuid)
		json_object_object_add(req, "uuid", json_object_new_string(uuid));
	rc = request(req, &rsp);
	json_object_put(req);
	return rc ? rc : finish(rsp, human_key);
}

/* ---- commands --------------------------------------------------------- */

static int cmd_simple(const struct args *a)
{
	const char *name = a->cmd->name;
	const char *human = NULL;

	if (strcmp(name, "list") == 0)
		human = "vtpms";
	else if (strcmp(name, "status") == 0)
		human = "*";
	else if (strcmp(name, "show") == 0)
		human = "vtpm";
	return simple(name, a->npos ? a->pos[0] : NULL, human);
}

static int cmd_create(const struct args *a)
{
	json_object *req = json_object_new_object(), *rsp, *ms;
	long n;
	int rc;

	json_object_object_add(req, "cmd", json_object_new_string("create"));
	for (unsigned int i = 0; i < a->nopt; i++) {
		const char *v = a->opt[i].val;

		switch (a->opt[i].id) {
		case O_UUID:
			json_object_object_add(req, "uuid", json_object_new_string(v));
			break;
		case O_DOMID:
			if (config_parse_long(v, 0, 0x7fef, &n)) {
				json_object_put(req);
				return usage_error("bad --domid '%s': 0..32751", v);
			}
			json_object_object_add(req, "domid", json_object_new_int64(n));
			break;
		case O_TRANSPORT:
			json_object_object_add(req, "transport", json_object_new_string(v));
			break;
		case O_TPM_VERSION:
			json_object_object_add(req, "tpm_version", json_object_new_string(v));
			break;
		case O_NO_EK_CERT:
			json_object_object_add(req, "ek_cert", json_object_new_boolean(0));
			break;
		case O_PLAINTEXT:
			json_object_object_add(req, "allow_plaintext_state",
					       json_object_new_boolean(1));
			break;
		default:
			break;
		}
	}
	rc = request(req, &rsp);
	json_object_put(req);
	if (rc)
		return rc;
	/* stdout keeps the UUID alone (scripts read it); the time goes to
	 * stderr. */
	if (!json_out && json_object_object_get_ex(rsp, "manufacture_ms", &ms))
		fprintf(stderr, "vtpmctl: manufactured with EK certificates "
			"(RSA-2048, ECC P-256, platform) in %s ms (%s ms "
			"including the instance's start and stop)\n",
			json_object_get_string(ms),
			get_str(rsp, "manufacture_total_ms"));
	return finish(rsp, "uuid");
}

/* ca-cert, ca-csr, ca-import: a PEM back, to stdout or --out. */
static int cmd_ca_cert(const struct args *a)
{
	json_object *req = json_object_new_object(), *rsp, *v;
	const char *out = NULL;
	const char *pem;
	int rc;
	FILE *f;

	for (unsigned int i = 0; i < a->nopt; i++)
		if (a->opt[i].id == O_OUT)
			out = a->opt[i].val;
	json_object_object_add(req, "cmd", json_object_new_string(a->cmd->name));
	if (strcmp(a->cmd->name, "ca-import") == 0) {
		char buf[16384];
		size_t n;

		f = fopen(a->pos[0], "r");
		n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
		if (!f || ferror(f) || n == sizeof(buf) - 1) {
			fprintf(stderr, "vtpmctl: %s: %s\n", a->pos[0],
				f ? "unreadable or over 16 KiB" : strerror(errno));
			if (f)
				fclose(f);
			json_object_put(req);
			return 2;
		}
		fclose(f);
		buf[n] = '\0';
		json_object_object_add(req, "pem", json_object_new_string(buf));
	}
	rc = request(req, &rsp);
	json_object_put(req);
	if (rc)
		return rc;
	if (json_out || !json_object_object_get_ex(rsp, "pem", &v))
		return finish(rsp, NULL);
	pem = json_object_get_string(v);
	if (out) {
		f = fopen(out, "w");
		if (!f || fputs(pem, f) < 0 || fclose(f) != 0) {
			fprintf(stderr, "vtpmctl: %s: %s\n", out, strerror(errno));
			json_object_put(rsp);
			return 6;
		}
	} else {
		fputs(pem, stdout);
	}
	json_object_put(rsp);
	return 0;
}

static int cmd_quote(const struct args *a)
{
	json_object *req = json_object_new_object(), *rsp, *v;
	const char *out = NULL;
	long mask;
	int rc;
	FILE *f;

	json_object_object_add(req, "cmd", json_object_new_string("quote"));
	for (unsigned int i = 0; i < a->nopt; i++) {
		const char *val = a->opt[i].val;

		switch (a->opt[i].id) {
		case O_NONCE:
			json_object_object_add(req, "nonce", json_object_new_string(val));
			break;
		case O_PCR_MASK:
			if (config_parse_long(val, 1, 0xffffff, &mask)) {
				json_object_put(req);
				return usage_error("bad --pcr-mask '%s': 1..0xffffff", val);
			}
			json_object_object_add(req, "pcr_mask", json_object_new_int64(mask));
			break;
		case O_OUT:
			out = val;
			break;
		default:
			break;
		}
	}
	json_object_object_add(req, "uuid", json_object_new_string(a->pos[0]));
	rc = request(req, &rsp);
	json_object_put(req);
	if (rc)
		return rc;
	if (!json_object_object_get_ex(rsp, "ok", &v) || !json_object_get_boolean(v))
		return finish(rsp, NULL);
	json_object_object_del(rsp, "ok");
	f = out ? fopen(out, "w") : stdout;
	if (!f) {
		fprintf(stderr, "vtpmctl: %s: %s\n", out, strerror(errno));
		json_object_put(rsp);
		return EXIT_USAGE;
	}
	fprintf(f, "%s\n", json_object_to_json_string_ext(rsp, JSON_C_TO_STRING_PRETTY));
	if (out)
		fclose(f);
	json_object_put(rsp);
	return 0;
}

static int cmd_reseal(const struct args *a)
{
	json_object *req, *vals, *rsp;
	int rc;

	for (unsigned int i = 0; i < a->nopt; i++)
		if (a->opt[i].id == O_PCR && !strchr(a->opt[i].val, '='))
			return usage_error("--pcr N=HEX, not '%s'", a->opt[i].val);
	req = json_object_new_object();
	vals = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string("reseal"));
	for (unsigned int i = 0; i < a->nopt; i++) {
		const char *v = a->opt[i].val, *eq;
		char *n;

		if (a->opt[i].id != O_PCR)
			continue;
		/* The manager judges N and HEX; pass both on whole. */
		eq = strchr(v, '=');
		n = strndup(v, (size_t)(eq - v));
		if (!n) {
			json_object_put(vals);
			json_object_put(req);
			fprintf(stderr, "vtpmctl: out of memory\n");
			return EXIT_USAGE;
		}
		json_object_object_add(vals, n, json_object_new_string(eq + 1));
		free(n);
	}
	json_object_object_add(req, "pcr_values", vals);
	rc = request(req, &rsp);
	json_object_put(req);
	return rc ? rc : finish(rsp, "*");
}

/* ---- verify-quote ------------------------------------------------------ */

static int bad(const char *why)
{
	printf("quote does NOT verify: %s\n", why);
	return EXIT_BAD_QUOTE;
}

/* A string member of o, or NULL. */
static const char *str_field(json_object *o, const char *k)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Hex text of 2..2*max digits into out; 0 or -1. */
static int unhex(const char *s, uint8_t *out, size_t max, size_t *n)
{
	size_t len = s ? strlen(s) : 0;

	if (!len || len % 2 || len / 2 > max || hex_decode(s, len, out, len / 2))
		return -1;
	*n = len / 2;
	return 0;
}

/* The quote file's fields, decoded. */
struct quote_file {
	uint8_t uuid[16];
	uint8_t nonce[MGR_NONCE_MAX];
	uint8_t attest[QUOTE_ATTEST_MAX + 2];
	uint8_t sig[QUOTE_SIG_MAX];
	uint8_t spki[QUOTE_SPKI_MAX];
	uint8_t pcrs[QUOTE_PCR_COUNT][32];
	size_t nonce_len, attest_len, sig_len, spki_len, npcrs;
	uint32_t mask;
};

/* 0, or writes why the file is unusable into why. */
static int quote_file_read(json_object *q, struct quote_file *f, char *why,
			   size_t whylen)
{
	static const struct {
		const char *key;
		size_t off, max, len_off;
	} hexes[] = {
		{ "nonce", offsetof(struct quote_file, nonce), MGR_NONCE_MAX,
		  offsetof(struct quote_file, nonce_len) },
		{ "attest", offsetof(struct quote_file, attest),
		  QUOTE_ATTEST_MAX + 2, offsetof(struct quote_file, attest_len) },
		{ "signature", offsetof(struct quote_file, sig), QUOTE_SIG_MAX,
		  offsetof(struct quote_file, sig_len) },
		{ "ak_spki", offsetof(struct quote_file, spki), QUOTE_SPKI_MAX,
		  offsetof(struct quote_file, spki_len) },
	};
	json_object *arr, *v;
	int64_t mask;

	if (uuid_parse_str(str_field(q, "uuid"), f->uuid)) {
		snprintf(why, whylen, "field \"uuid\" is missing or not a UUID");
		return -1;
	}
	for (size_t i = 0; i < sizeof(hexes) / sizeof(hexes[0]); i++) {
		if (unhex(str_field(q, hexes[i].key), (uint8_t *)f + hexes[i].off,
			  hexes[i].max, (size_t *)((char *)f + hexes[i].len_off))) {
			snprintf(why, whylen, "field \"%s\" is missing, not hex, "
				 "or over %zu bytes", hexes[i].key, hexes[i].max);
			return -1;
		}
	}
	if (!json_object_object_get_ex(q, "vtpm_pcr_mask", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    (mask = json_object_get_int64(v)) < 1 || mask > 0xffffff) {
		snprintf(why, whylen, "field \"vtpm_pcr_mask\" is missing or "
			 "not 1..0xffffff");
		return -1;
	}
	f->mask = (uint32_t)mask;
	if (!json_object_object_get_ex(q, "vtpm_pcrs", &arr) ||
	    !json_object_is_type(arr, json_type_array) ||
	    json_object_array_length(arr) != (size_t)__builtin_popcount(f->mask)) {
		snprintf(why, whylen, "the PCR values do not match the PCR mask");
		return -1;
	}
	f->npcrs = json_object_array_length(arr);
	for (size_t i = 0; i < f->npcrs; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		const char *s = json_object_is_type(e, json_type_string)
					? json_object_get_string(e) : NULL;

		if (!s || strlen(s) != 64 || hex_decode(s, 64, f->pcrs[i], 32)) {
			snprintf(why, whylen, "a PCR value is not 32 bytes of hex");
			return -1;
		}
	}
	return 0;
}

/*
 * Offline: the vTPM PCR values hash to the digest, the digest, UUID and
 * nonce make the qualifying data, and the physical TPM's AK signed an
 * attestation that carries exactly that qualifying data.
 */
static int cmd_verify(const struct args *a)
{
	const char *pin = NULL;
	struct quote_expect want = { 0 };
	struct quote_info info;
	struct quote_file *f;
	uint8_t digest[32], qd[32], *pinb = NULL;
	char why[256], hx[65];
	size_t plen;
	json_object *q;
	int rc = EXIT_BAD_QUOTE;

	for (unsigned int i = 0; i < a->nopt; i++)
		if (a->opt[i].id == O_AK_SPKI)
			pin = a->opt[i].val;
	f = calloc(1, sizeof(*f));
	pinb = malloc(QUOTE_SPKI_MAX);
	if (!f || !pinb) {
		free(f);
		free(pinb);
		return bad("out of memory");
	}
	q = json_object_from_file(a->pos[0]);
	if (!q) {
		rc = bad("cannot read the quote file as JSON");
		goto out;
	}
	if (quote_file_read(q, f, why, sizeof(why))) {
		rc = bad(why);
		goto out;
	}
	if (pin && (unhex(pin, pinb, QUOTE_SPKI_MAX, &plen) ||
		    plen != f->spki_len || memcmp(pinb, f->spki, plen) != 0)) {
		rc = bad("signed by a different attestation key than --ak-spki");
		goto out;
	}
	quote_pcr_digest((const uint8_t (*)[32])f->pcrs, f->npcrs, digest);
	if (mgrproto_deepquote_qd(f->uuid, f->mask, digest, f->nonce,
				  f->nonce_len, qd)) {
		rc = bad("cannot compute the qualifying data");
		goto out;
	}
	want.qd = qd;
	want.qd_len = sizeof(qd);
	if (quote_verify(f->spki, f->spki_len, f->attest, f->attest_len, f->sig,
			 f->sig_len, &want, &info, why, sizeof(why))) {
		rc = bad(why);
		goto out;
	}
	printf("quote verifies: vTPM %s, %zu vTPM PCRs, nonce %s, signed by the "
	       "physical TPM's attestation key%s\n",
	       str_field(q, "uuid"), f->npcrs, str_field(q, "nonce"),
	       pin ? " (pinned)" : " (NOT pinned: pass --ak-spki to trust a known key)");
	hex_encode(info.pcr_digest, 32, hx);
	printf("host PCR mask 0x%06x, host PCR digest %s\n", info.pcr_mask, hx);
	rc = 0;
out:
	free(f);
	free(pinb);
	json_object_put(q);
	return rc;
}

/* ---- migration: migration-key, export, import, clone ------------------- */

static const char *opt_val(const struct args *a, enum opt_id id)
{
	for (unsigned int i = 0; i < a->nopt; i++)
		if (a->opt[i].id == id)
			return a->opt[i].val;
	return NULL;
}

/* A whole file of at most max bytes; NULL with errno set. */
static uint8_t *file_read(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(max + 1);
	size_t n = 0;

	if (!f || !buf) {
		if (f)
			fclose(f);
		free(buf);
		return NULL;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f) || n > max) {
		int e = ferror(f) ? EIO : EFBIG;

		fclose(f);
		free(buf);
		errno = e;
		return NULL;
	}
	fclose(f);
	*len = n;
	return buf;
}

/* Creates path (mode 0600, never over an existing file) with len bytes. */
static int file_write_new(const char *path, const void *b, size_t len)
{
	FILE *f = fopen(path, "wx");

	if (!f || fwrite(b, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "vtpmctl: %s: %s\n", path, strerror(errno));
		return 6;
	}
	return 0;
}

static int cmd_migration_key(const struct args *a)
{
	json_object *req = json_object_new_object(), *rsp, *v;
	const char *out = opt_val(a, O_OUT), *s;
	int rc;

	json_object_object_add(req, "cmd", json_object_new_string("migration-key"));
	rc = request(req, &rsp);
	json_object_put(req);
	if (rc)
		return rc;
	if (!json_object_object_get_ex(rsp, "ok", &v) || !json_object_get_boolean(v))
		return finish(rsp, NULL);
	json_object_object_del(rsp, "ok");
	s = json_object_to_json_string_ext(rsp, JSON_C_TO_STRING_PRETTY);
	if (out) {
		char *text = malloc(strlen(s) + 2);

		if (!text)
			exit(6);
		sprintf(text, "%s\n", s);
		rc = file_write_new(out, text, strlen(text));
		free(text);
		if (!rc && !json_out)
			printf("migration key %s written to %s\n",
			       get_str(rsp, "key_name"), out);
	} else {
		printf("%s\n", s);
	}
	json_object_put(rsp);
	return rc;
}

/* --ak-spki: hex, or a file holding the DER SubjectPublicKeyInfo (or its
 * hex); the hex of it into the request. */
static int pinned_ak(const char *arg, json_object *req)
{
	uint8_t *b, *der = malloc(MIGKEY_SPKI_MAX);
	size_t n = 0, len = 0;
	char *hx;

	if (!der)
		return -1;
	if (unhex(arg, der, MIGKEY_SPKI_MAX, &n)) {
		b = file_read(arg, 2 * MIGKEY_SPKI_MAX + 1, &len);
		if (!b) {
			free(der);
			return -1;
		}
		while (len && (b[len - 1] == '\n' || b[len - 1] == '\r' ||
			       b[len - 1] == ' '))
			len--;
		b[len] = '\0';
		if (unhex((char *)b, der, MIGKEY_SPKI_MAX, &n)) {
			if (len > MIGKEY_SPKI_MAX || !len) {
				free(b);
				free(der);
				return -1;
			}
			memcpy(der, b, len);
			n = len;
		}
		free(b);
	}
	hx = malloc(2 * n + 1);
	if (!hx) {
		free(der);
		return -1;
	}
	hex_encode(der, n, hx);
	json_object_object_add(req, "ak_spki_pinned", json_object_new_string(hx));
	free(hx);
	free(der);
	return 0;
}

/* Adds --ak-spki PIN to req; on a bad PIN says so and frees req (1). */
static int pin_or_drop(const char *pin, json_object *req)
{
	if (!pinned_ak(pin, req))
		return 0;
	json_object_put(req);
	fprintf(stderr, "vtpmctl: --ak-spki %s: neither hex nor a file "
		"holding a SubjectPublicKeyInfo\n", pin);
	return 1;
}

static int cmd_export(const struct args *a)
{
	const char *to = opt_val(a, O_TO), *out = opt_val(a, O_OUT);
	const char *pin = opt_val(a, O_AK_SPKI), *hx;
	json_object *req, *rsp, *dest, *v;
	uint8_t *blob;
	size_t n;
	int rc;

	if (!to || !out)
		return usage_error("'export' needs --to DEST.json and --out BLOB");
	if (access(out, F_OK) == 0) {
		fprintf(stderr, "vtpmctl: %s exists: not overwriting it\n", out);
		return 2;
	}
	dest = json_object_from_file(to);
	if (!dest || !json_object_is_type(dest, json_type_object)) {
		fprintf(stderr, "vtpmctl: %s: not a migration key file (JSON "
			"from vtpmctl migration-key)\n", to);
		json_object_put(dest);
		return 2;
	}
	req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string("export"));
	json_object_object_add(req, "uuid", json_object_new_string(a->pos[0]));
	json_object_object_add(req, "dest", dest);
	if (pin && pin_or_drop(pin, req))
		return 2;
	rc = request(req, &rsp);
	json_object_put(req);
	if (rc)
		return rc;
	if (!json_object_object_get_ex(rsp, "ok", &v) || !json_object_get_boolean(v))
		return finish(rsp, NULL);
	hx = get_str(rsp, "blob");
	n = strlen(hx) / 2;
	blob = malloc(n ? n : 1);
	if (!blob || hex_decode(hx, 2 * n, blob, n)) {
		fprintf(stderr, "vtpmctl: the manager's blob is not hex; the "
			"vTPM is exported (a tombstone) but the blob is lost\n");
		free(blob);
		json_object_put(rsp);
		return 6;
	}
	rc = file_write_new(out, blob, n);
	free(blob);
	if (rc) {
		fprintf(stderr, "vtpmctl: the vTPM is exported (a tombstone) "
			"but its blob could not be written\n");
	} else if (json_out) {
		json_object_object_del(rsp, "blob");
		printf("%s\n", json_object_to_json_string_ext(rsp, JSON_C_TO_STRING_PRETTY));
	} else {
		printf("vTPM %s exported: %s (%zu bytes, generation %s) in %s ms\n",
		       a->pos[0], out, n, get_str(rsp, "generation"),
		       get_str(rsp, "export_ms"));
	}
	json_object_put(rsp);
	return rc;
}

/* Online: the running vTPM moves to another manager's migrate-listen. */
static int cmd_migrate(const struct args *a)
{
	const char *to = opt_val(a, O_TO), *pin = opt_val(a, O_AK_SPKI);
	json_object *req, *rsp, *v;
	int rc;

	if (!to)
		return usage_error("'migrate' needs --to HOST:PORT");
	req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string("migrate"));
	json_object_object_add(req, "uuid", json_object_new_string(a->pos[0]));
	json_object_object_add(req, "to", json_object_new_string(to));
	if (pin && pin_or_drop(pin, req))
		return 2;
	rc = request(req, &rsp);
	json_object_put(req);
	if (rc)
		return rc;
	if (!json_out && json_object_object_get_ex(rsp, "ok", &v) &&
	    json_object_get_boolean(v)) {
		json_object_object_get_ex(rsp, "acknowledged", &v);
		printf("vTPM %s migrated to %s (transaction %s, generation %s, "
		       "volatile state %s) in %s ms%s%s\n", a->pos[0], to,
		       get_str(rsp, "txid"), get_str(rsp, "generation"),
		       get_str(rsp, "volatile"), get_str(rsp, "migrate_ms"),
		       json_object_get_boolean(v) ? ""
						  : "; the destination has not "
						    "acknowledged the commit yet "
						    "(retried): ",
		       json_object_get_boolean(v) ? "" : get_str(rsp, "note"));
		json_object_put(rsp);
		return 0;
	}
	return finish(rsp, NULL);
}

static int cmd_import(const struct args *a)
{
	json_object *req, *rsp;
	uint8_t *blob;
	char *hx;
	size_t n;
	int rc;

	blob = file_read(a->pos[0], EXPBLOB_MAX_LEN, &n);
	if (!blob) {
		fprintf(stderr, "vtpmctl: %s: %s\n", a->pos[0], strerror(errno));
		return 2;
	}
	hx = malloc(2 * n + 1);
	if (!hx) {
		free(blob);
		return 6;
	}
	hex_encode(blob, n, hx);
	free(blob);
	req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string("import"));
	json_object_object_add(req, "blob", json_object_new_string(hx));
	free(hx);
	rc = request(req, &rsp);
	json_object_put(req);
	return rc ? rc : finish(rsp, "uuid");
}

static int cmd_clone(const struct args *a)
{
	json_object *req = json_object_new_object(), *rsp;
	int rc;

	json_object_object_add(req, "cmd", json_object_new_string("clone"));
	json_object_object_add(req, "uuid", json_object_new_string(a->pos[0]));
	for (unsigned int i = 0; i < a->nopt; i++)
		if (a->opt[i].id == O_UNIQUE)
			json_object_object_add(req, "unique",
					       json_object_new_boolean(1));
		else if (a->opt[i].id == O_NO_EK_CERT)
			json_object_object_add(req, "ek_cert",
					       json_object_new_boolean(0));
	rc = request(req, &rsp);
	json_object_put(req);
	return rc ? rc : finish(rsp, "uuid");
}

/* ---- the command table and the parser ------------------------------------ */

static const struct opt create_opts[] = {
	{ "uuid", O_UUID, true },
	{ "domid", O_DOMID, true },
	{ "transport", O_TRANSPORT, true },
	{ "tpm-version", O_TPM_VERSION, true },
	{ "allow-plaintext-state", O_PLAINTEXT, false },
	{ "no-ek-cert", O_NO_EK_CERT, false },
	{ NULL, 0, false },
};
static const struct opt ca_cert_opts[] = {
	{ "out", O_OUT, true },
	{ NULL, 0, false },
};
static const struct opt quote_opts[] = {
	{ "nonce", O_NONCE, true },
	{ "pcr-mask", O_PCR_MASK, true },
	{ "out", O_OUT, true },
	{ NULL, 0, false },
};
static const struct opt verify_opts[] = {
	{ "ak-spki", O_AK_SPKI, true },
	{ NULL, 0, false },
};
static const struct opt reseal_opts[] = {
	{ "pcr", O_PCR, true },
	{ NULL, 0, false },
};
static const struct opt migkey_opts[] = {
	{ "out", O_OUT, true },
	{ NULL, 0, false },
};
static const struct opt export_opts[] = {
	{ "to", O_TO, true },
	{ "ak-spki", O_AK_SPKI, true },
	{ "out", O_OUT, true },
	{ NULL, 0, false },
};
static const struct opt migrate_opts[] = {
	{ "to", O_TO, true },
	{ "ak-spki", O_AK_SPKI, true },
	{ NULL, 0, false },
};
static const struct opt clone_opts[] = {
	{ "unique", O_UNIQUE, false },
	{ "no-ek-cert", O_NO_EK_CERT, false },
	{ NULL, 0, false },
};
static const struct opt no_opts[] = {
	{ NULL, 0, false },
};

static const struct cmd commands[] = {
	{ "create", create_opts, 0, 0, NULL, cmd_create },
	{ "list", no_opts, 0, 0, NULL, cmd_simple },
	{ "status", no_opts, 0, 0, NULL, cmd_simple },
	{ "show", no_opts, 1, 1, "UUID", cmd_simple },
	{ "start", no_opts, 1, 1, "UUID", cmd_simple },
	{ "stop", no_opts, 1, 1, "UUID", cmd_simple },
	{ "delete", no_opts, 1, 1, "UUID", cmd_simple },
	{ "quote", quote_opts, 1, 1, "UUID", cmd_quote },
	{ "verify-quote", verify_opts, 1, 1, "FILE", cmd_verify },
	{ "reseal", reseal_opts, 0, 0, NULL, cmd_reseal },
	{ "ca-cert", ca_cert_opts, 0, 0, NULL, cmd_ca_cert },
	{ "ca-csr", ca_cert_opts, 0, 0, NULL, cmd_ca_cert },
	{ "ca-import", no_opts, 1, 1, "FILE", cmd_ca_cert },
	{ "migration-key", migkey_opts, 0, 0, NULL, cmd_migration_key },
	{ "export", export_opts, 1, 1, "UUID", cmd_export },
	{ "import", no_opts, 1, 1, "BLOB", cmd_import },
	{ "migrate", migrate_opts, 1, 1, "UUID", cmd_migrate },
	{ "clone", clone_opts, 1, 1, "UUID", cmd_clone },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct opt *opt_find(const struct opt *t, const char *name,
				  size_t len)
{
	for (; t && t->name; t++)
		if (strlen(t->name) == len && strncmp(t->name, name, len) == 0)
			return t;
	return NULL;
}

/* Which command has this option, if any (to say where it belongs). */
static const struct cmd *opt_owner(const char *name, size_t len)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (opt_find(commands[i].opts, name, len))
			return &commands[i];
	return NULL;
}

/*
 * argv into a: global options are applied wherever they stand, the first
 * other word is the command, then its options and arguments in any order.
 * Exact option names only (no abbreviations).  Returns -1 to go on, or
 * the exit status (0 after --help).
 */
static int parse(int argc, char **argv, struct args *a)
{
	bool dashdash = false, help = false;

	for (int i = 1; i < argc; i++) {
		const char *s = argv[i], *name, *eq, *val = NULL;
		const struct opt *o;
		size_t len;

		if (dashdash || s[0] != '-' || s[1] == '\0') {
			if (!a->cmd) {
				for (size_t k = 0; k < NCOMMANDS; k++)
					if (strcmp(commands[k].name, s) == 0)
						a->cmd = &commands[k];
				if (!a->cmd)
					return usage_error("unknown command '%s'", s);
			} else {
				a->pos[a->npos++] = s;
			}
			continue;
		}
		if (strcmp(s, "--") == 0) {
			dashdash = true;
			continue;
		}
		if (strcmp(s, "-h") == 0) {
			help = true;
			continue;
		}
		if (s[1] != '-')
			return usage_error("unknown option '%s'", s);
		name = s + 2;
		eq = strchr(name, '=');
		len = eq ? (size_t)(eq - name) : strlen(name);
		o = opt_find(global_opts, name, len);
		if (!o && a->cmd)
			o = opt_find(a->cmd->opts, name, len);
		if (!o) {
			const struct cmd *owner = opt_owner(name, len);

			if (a->cmd)
				return usage_error("unknown option '--%.*s' for '%s'",
						   (int)len, name, a->cmd->name);
			if (owner)
				return usage_error("option '--%.*s' belongs after "
						   "a command ('%s ... --%.*s')",
						   (int)len, name, owner->name,
						   (int)len, name);
			return usage_error("unknown option '--%.*s'", (int)len, name);
		}
		if (o->arg) {
			if (eq)
				val = eq + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else
				return usage_error("option '--%s' needs a value", o->name);
		} else if (eq) {
			return usage_error("option '--%s' takes no value", o->name);
		}
		switch (o->id) {
		case O_HELP:
			help = true;
			break;
		case O_JSON:
			json_out = 1;
			break;
		case O_CONTROL:
			if (!*val)
				return usage_error("option '--control' needs a path");
			control_path = val;
			break;
		case O_TIMEOUT: {
			char *end;
			unsigned long t;

			errno = 0;
			t = strtoul(val, &end, 10);
			if (!*val || *end || errno || val[0] == '-' ||
			    t > 86400)
				return usage_error("bad --timeout '%s': seconds, "
						   "0..86400 (0: no limit)", val);
			timeout_s = (unsigned int)t;
			break;
		}
		default:
			a->opt[a->nopt].id = o->id;
			a->opt[a->nopt++].val = val;
			break;
		}
	}
	if (help) {
		usage(stdout);
		return 0;
	}
	if (!a->cmd) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (a->npos < a->cmd->min_pos)
		return usage_error("'%s' needs %s", a->cmd->name, a->cmd->pos_what);
	if (a->npos > a->cmd->max_pos)
		return usage_error("'%s' takes %s, not '%s'", a->cmd->name,
				   a->cmd->max_pos ? "one argument" : "no argument",
				   a->pos[a->cmd->max_pos]);
	return -1;
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	int rc;

	/* Never more words than argc of either kind. */
	a.pos = calloc((size_t)argc + 1, sizeof(*a.pos));
	a.opt = calloc((size_t)argc + 1, sizeof(*a.opt));
	if (!a.pos || !a.opt) {
		fprintf(stderr, "vtpmctl: out of memory\n");
		rc = EXIT_USAGE;
	} else {
		rc = parse(argc, argv, &a);
		if (rc < 0)
			rc = a.cmd->run(&a);
	}
	free(a.pos);
	free(a.opt);
	return rc;
}
