// SPDX-License-Identifier: BSD-3-Clause
/*
 * tpmbench: a minimal TPM 2.0 client for benchmarking swtpm-compatible
 * UNIX data sockets (swtpm 0.7.1 "socket" mode, vtpm-service
 * --transport unix:PATH).
 *
 * Only libc. TPM command bytes are built by hand from the TPM 2.0 Library
 * Specification, Part 2 (structures/constants) and Part 3 (commands).
 * Every response is checked: tag, size and response code; a non-zero
 * response code is fatal.
 *
 * Modes (one per run; the result is one line of key=value pairs on stdout):
 *   ping       connect (retrying up to --connect-timeout), one GetRandom
 *   getrandom  TPM2_GetRandom(32) round trips
 *   pcrextend  TPM2_PCR_Extend(PCR 16, sha256) with a TPM_RS_PW session
 *   nvwrite    TPM2_NV_Write of 32 bytes to an index defined for the run
 *              (TPM2_NV_DefineSpace before, TPM2_NV_UndefineSpace after)
 *   start      fork+exec the command after "--", connect() until accepted,
 *              time until the first successful GetRandom response
 *
 * Build: cc -std=c11 -O2 -Wall -Wextra -Werror -o tpmbench tpmbench.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* TPM 2.0 Part 2: TPM_ST */
#define TPM_ST_NO_SESSIONS 0x8001
#define TPM_ST_SESSIONS 0x8002

/* TPM 2.0 Part 2: TPM_CC */
#define TPM_CC_NV_UndefineSpace 0x00000122
#define TPM_CC_NV_DefineSpace 0x0000012A
#define TPM_CC_NV_Write 0x00000137
#define TPM_CC_Startup 0x00000144
#define TPM_CC_GetRandom 0x0000017B
#define TPM_CC_PCR_Extend 0x00000182

/* TPM 2.0 Part 2: TPM_RC (the ones worth naming in an error message) */
#define TPM_RC_SUCCESS 0x000
#define TPM_RC_INITIALIZE 0x100
#define TPM_RC_NV_DEFINED 0x14C

/* TPM 2.0 Part 2: handles, TPM_SU, TPM_ALG_ID */
#define TPM_RH_OWNER 0x40000001
#define TPM_RS_PW 0x40000009
#define TPM_SU_CLEAR 0x0000
#define TPM_ALG_SHA256 0x000B
#define SHA256_SIZE 32

/* TPM 2.0 Part 2: TPMA_SESSION, TPMA_NV (TPM_NT_ORDINARY is 0 in bits 7:4) */
#define TPMA_SESSION_CONTINUESESSION 0x01
#define TPMA_NV_OWNERWRITE (1u << 1)
#define TPMA_NV_AUTHWRITE (1u << 2)
#define TPMA_NV_OWNERREAD (1u << 17)
#define TPMA_NV_AUTHREAD (1u << 18)

#define TPM_HEADER_SIZE 10
#define TPM_MAX_FRAME 4096

#define DEFAULT_NV_INDEX 0x0100BE00u
#define NV_DATA_SIZE 32
#define RANDOM_BYTES 32
#define BENCH_PCR 16

static const char *progname = "tpmbench";

static void fatalx(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void vlog(int err, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", progname);
	vfprintf(stderr, fmt, ap);
	if (err)
		fprintf(stderr, ": %s", strerror(err));
	fputc('\n', stderr);
}

static void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(0, fmt, ap);
	va_end(ap);
	exit(1);
}

static void fatal(const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(err, fmt, ap);
	va_end(ap);
	exit(1);
}

static void log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(0, fmt, ap);
	va_end(ap);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		fatal("clock_gettime");
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
			       .tv_nsec = (long)(ns % 1000000000u) };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- command building ------------------------------------------------- */

struct frame {
	uint8_t b[TPM_MAX_FRAME];
	size_t len;
};

static void put_u8(struct frame *f, uint8_t v)
{
	if (f->len + 1 > sizeof(f->b))
		fatalx("internal: command frame overflow");
	f->b[f->len++] = v;
}

static void put_u16(struct frame *f, uint16_t v)
{
	put_u8(f, (uint8_t)(v >> 8));
	put_u8(f, (uint8_t)v);
}

static void put_u32(struct frame *f, uint32_t v)
{
	put_u16(f, (uint16_t)(v >> 16));
	put_u16(f, (uint16_t)v);
}

static void put_bytes(struct frame *f, const void *p, size_t n)
{
	if (f->len + n > sizeof(f->b))
		fatalx("internal: command frame overflow");
	memcpy(f->b + f->len, p, n);
	f->len += n;
}

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Header with a size placeholder; cmd_finish() fills in the size. */
static void cmd_begin(struct frame *f, uint16_t tag, uint32_t cc)
{
	f->len = 0;
	put_u16(f, tag);
	put_u32(f, 0);
	put_u32(f, cc);
}

static void cmd_finish(struct frame *f)
{
	uint32_t n = (uint32_t)f->len;

	f->b[2] = (uint8_t)(n >> 24);
	f->b[3] = (uint8_t)(n >> 16);
	f->b[4] = (uint8_t)(n >> 8);
	f->b[5] = (uint8_t)n;
}

/*
 * Authorization area with one password session (Part 1, 19.8.4; Part 3,
 * "Command Layout"): authorizationSize, then TPMS_AUTH_COMMAND
 * {sessionHandle = TPM_RS_PW, nonce = empty, attributes, hmac = empty
 * password}.
 */
static void put_pw_session(struct frame *f)
{
	put_u32(f, 4 + 2 + 1 + 2);
	put_u32(f, TPM_RS_PW);
	put_u16(f, 0);
	put_u8(f, TPMA_SESSION_CONTINUESESSION);
	put_u16(f, 0);
}

static void cmd_startup(struct frame *f)
{
	cmd_begin(f, TPM_ST_NO_SESSIONS, TPM_CC_Startup);
	put_u16(f, TPM_SU_CLEAR);
	cmd_finish(f);
}

static void cmd_getrandom(struct frame *f, uint16_t n)
{
	cmd_begin(f, TPM_ST_NO_SESSIONS, TPM_CC_GetRandom);
	put_u16(f, n);
	cmd_finish(f);
}

static void cmd_pcr_extend(struct frame *f, uint32_t pcr)
{
	uint8_t digest[SHA256_SIZE];

	memset(digest, 0xa5, sizeof(digest));
	cmd_begin(f, TPM_ST_SESSIONS, TPM_CC_PCR_Extend);
	put_u32(f, pcr);		/* @pcrHandle: TPMI_DH_PCR */
	put_pw_session(f);
	put_u32(f, 1);			/* TPML_DIGEST_VALUES.count */
	put_u16(f, TPM_ALG_SHA256);	/* TPMT_HA.hashAlg */
	put_bytes(f, digest, sizeof(digest));
	cmd_finish(f);
}

static void cmd_nv_define(struct frame *f, uint32_t index)
{
	uint32_t attrs = TPMA_NV_OWNERWRITE | TPMA_NV_AUTHWRITE | TPMA_NV_OWNERREAD |
			 TPMA_NV_AUTHREAD;

	cmd_begin(f, TPM_ST_SESSIONS, TPM_CC_NV_DefineSpace);
	put_u32(f, TPM_RH_OWNER);	/* @authHandle: TPMI_RH_PROVISION */
	put_pw_session(f);
	put_u16(f, 0);			/* auth: TPM2B_AUTH, empty */
	put_u16(f, 4 + 2 + 4 + 2 + 2);	/* TPM2B_NV_PUBLIC.size */
	put_u32(f, index);		/* nvIndex */
	put_u16(f, TPM_ALG_SHA256);	/* nameAlg */
	put_u32(f, attrs);		/* attributes: TPMA_NV */
	put_u16(f, 0);			/* authPolicy: empty */
	put_u16(f, NV_DATA_SIZE);	/* dataSize */
	cmd_finish(f);
}

/* Returns the offset of the data bytes inside the frame, to vary them. */
static size_t cmd_nv_write(struct frame *f, uint32_t index)
{
	uint8_t data[NV_DATA_SIZE];
	size_t off;

	memset(data, 0, sizeof(data));
	cmd_begin(f, TPM_ST_SESSIONS, TPM_CC_NV_Write);
	put_u32(f, TPM_RH_OWNER);	/* @authHandle: TPMI_RH_NV_AUTH */
	put_u32(f, index);		/* nvIndex */
	put_pw_session(f);
	put_u16(f, NV_DATA_SIZE);	/* data: TPM2B_MAX_NV_BUFFER */
	off = f->len;
	put_bytes(f, data, sizeof(data));
	put_u16(f, 0);			/* offset */
	cmd_finish(f);
	return off;
}

static void cmd_nv_undefine(struct frame *f, uint32_t index)
{
	cmd_begin(f, TPM_ST_SESSIONS, TPM_CC_NV_UndefineSpace);
	put_u32(f, TPM_RH_OWNER);	/* @authHandle: TPMI_RH_PROVISION */
	put_u32(f, index);		/* nvIndex */
	put_pw_session(f);
	cmd_finish(f);
}

/* ---- transport ---------------------------------------------------------- */

static int timeout_ms = 10000;

static int unix_connect(const char *path)
{
	struct sockaddr_un sun;
	struct timeval tv;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		fatalx("%s: socket path too long", path);
	memcpy(sun.sun_path, path, strlen(path) + 1);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fatal("socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		int err = errno;

		close(fd);
		return -err;
	}
	/* A hung server must fail the run, not hang it. */
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
		fatal("setsockopt");
	return fd;
}

static int connect_retry(const char *path, int wait_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)wait_ms * 1000000u;

	for (;;) {
		int fd = unix_connect(path);

		if (fd >= 0)
			return fd;
		if (now_ns() > deadline) {
			errno = -fd;
			fatal("%s: connect", path);
		}
		sleep_ns(1000000);
	}
}

/*
 * Sends one command and reads one response. One read() normally returns
 * the whole response; the loop covers servers that write it in pieces.
 * Returns the response code; tag and size are checked here.
 */
static uint32_t tpm_transact(int fd, const struct frame *cmd, struct frame *rsp, const char *what)
{
	size_t off = 0;
	uint32_t size;

	while (off < cmd->len) {
		ssize_t n = write(fd, cmd->b + off, cmd->len - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fatal("%s: write command", what);
		}
		off += (size_t)n;
	}

	rsp->len = 0;
	for (;;) {
		ssize_t n = read(fd, rsp->b + rsp->len, sizeof(rsp->b) - rsp->len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				fatalx("%s: no response within %d ms", what, timeout_ms);
			fatal("%s: read response", what);
		}
		if (n == 0)
			fatalx("%s: server closed the connection (%zu bytes of response read)", what,
			       rsp->len);
		rsp->len += (size_t)n;
		if (rsp->len < TPM_HEADER_SIZE)
			continue;
		size = get_u32(rsp->b + 2);
		if (size < TPM_HEADER_SIZE || size > sizeof(rsp->b))
			fatalx("%s: bad response size %" PRIu32, what, size);
		if (rsp->len < size)
			continue;
		if (rsp->len > size)
			fatalx("%s: %zu bytes after a %" PRIu32 "-byte response", what,
			       rsp->len - size, size);
		break;
	}

	if (get_u16(rsp->b) != TPM_ST_NO_SESSIONS && get_u16(rsp->b) != TPM_ST_SESSIONS)
		fatalx("%s: bad response tag 0x%04x", what, get_u16(rsp->b));
	return get_u32(rsp->b + 6);
}

static const char *rc_name(uint32_t rc)
{
	if (rc & 0x080)
		rc &= 0x0bf;	/* format 1: drop the handle/session/parameter number */
	switch (rc) {
	case 0x084: return "TPM_RC_VALUE";
	case 0x085: return "TPM_RC_HIERARCHY";
	case 0x08B: return "TPM_RC_HANDLE";
	case 0x08E: return "TPM_RC_AUTH_FAIL";
	case 0x095: return "TPM_RC_SIZE";
	case 0x097: return "TPM_RC_TAG";
	case 0x0A1: return "TPM_RC_RESERVED_BITS";
	case 0x0A2: return "TPM_RC_BAD_AUTH";
	case 0x100: return "TPM_RC_INITIALIZE";
	case 0x101: return "TPM_RC_FAILURE";
	case 0x124: return "TPM_RC_AUTH_MISSING";
	case 0x125: return "TPM_RC_POLICY";
	case 0x128: return "TPM_RC_COMMAND_SIZE";
	case 0x143: return "TPM_RC_COMMAND_CODE";
	case 0x146: return "TPM_RC_NV_RANGE";
	case 0x147: return "TPM_RC_NV_SIZE";
	case 0x148: return "TPM_RC_NV_LOCKED";
	case 0x149: return "TPM_RC_NV_AUTHORIZATION";
	case 0x14A: return "TPM_RC_NV_UNINITIALIZED";
	case 0x14B: return "TPM_RC_NV_SPACE";
	case 0x14C: return "TPM_RC_NV_DEFINED";
	case 0x902: return "TPM_RC_OBJECT_MEMORY";
	case 0x903: return "TPM_RC_SESSION_MEMORY";
	case 0x904: return "TPM_RC_MEMORY";
	case 0x907: return "TPM_RC_LOCALITY";
	case 0x908: return "TPM_RC_YIELDED";
	case 0x909: return "TPM_RC_CANCELED";
	case 0x90A: return "TPM_RC_TESTING";
	case 0x920: return "TPM_RC_NV_RATE";
	case 0x921: return "TPM_RC_LOCKOUT";
	case 0x922: return "TPM_RC_RETRY";
	case 0x923: return "TPM_RC_NV_UNAVAILABLE";
	}
	return "see TPM 2.0 Part 2, TPM_RC";
}

static void rc_check(uint32_t rc, const char *what)
{
	const char *where = "";
	char buf[32] = "";

	if (rc == TPM_RC_SUCCESS)
		return;
	if (rc & 0x080) {
		unsigned n = (rc >> 8) & 0xf;

		if (rc & 0x040)
			where = " on parameter";
		else if (n & 0x8)
			where = " on session", n &= 0x7;
		else
			where = " on handle";
		snprintf(buf, sizeof(buf), " %u", n);
	}
	fatalx("%s: TPM response code 0x%03" PRIx32 " (%s%s%s)", what, rc, rc_name(rc), where,
	       buf);
}

/* Checks the response body beyond the header (sizes must add up). */
static void check_getrandom_rsp(const struct frame *rsp, uint16_t want)
{
	if (rsp->len != TPM_HEADER_SIZE + 2u + want || get_u16(rsp->b + 10) != want)
		fatalx("TPM2_GetRandom: expected %u bytes, response is %zu bytes", want, rsp->len);
}

/* Session commands answer parameterSize + one TPMS_AUTH_RESPONSE (5 bytes). */
static void check_session_rsp(const struct frame *rsp, size_t handles, const char *what)
{
	size_t psize_off = TPM_HEADER_SIZE + 4 * handles;

	if (get_u16(rsp->b) != TPM_ST_SESSIONS || rsp->len < psize_off + 4)
		fatalx("%s: response has no session area", what);
	if (rsp->len != psize_off + 4 + get_u32(rsp->b + psize_off) + 5)
		fatalx("%s: response of %zu bytes does not add up", what, rsp->len);
}

/*
 * The first GetRandom, sending TPM2_Startup(CLEAR) if the server has not
 * (swtpm --flags startup-clear does it itself). Returns 1 if Startup was
 * sent.
 */
static int tpm_first_getrandom(int fd)
{
	struct frame cmd, rsp;
	uint32_t rc;
	int started = 0;

	cmd_getrandom(&cmd, RANDOM_BYTES);
	rc = tpm_transact(fd, &cmd, &rsp, "TPM2_GetRandom");
	if (rc == TPM_RC_INITIALIZE) {
		struct frame su;

		cmd_startup(&su);
		rc_check(tpm_transact(fd, &su, &rsp, "TPM2_Startup"), "TPM2_Startup");
		started = 1;
		rc = tpm_transact(fd, &cmd, &rsp, "TPM2_GetRandom");
	}
	rc_check(rc, "TPM2_GetRandom");
	check_getrandom_rsp(&rsp, RANDOM_BYTES);
	return started;
}

/* ---- measurement -------------------------------------------------------- */

struct opts {
	const char *socket;
	const char *mode;
	long iterations;	/* > 0: fixed count, else duration */
	double duration;	/* seconds */
	long warmup;
	uint32_t nv_index;
	int connect_wait_ms;
	int child_cpu;
	int poll_us;
	char **child_argv;
};

struct samples {
	uint32_t *ns;
	size_t n, cap;
};

static void samples_add(struct samples *s, uint64_t ns)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 65536;
		uint32_t *p = realloc(s->ns, cap * sizeof(*p));

		if (!p)
			fatal("realloc");
		s->ns = p;
		s->cap = cap;
	}
	s->ns[s->n++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static double pct_us(const struct samples *s, double p)
{
	size_t i = (size_t)(p * (double)(s->n - 1) + 0.5);

	return (double)s->ns[i] / 1000.0;
}

enum bench_kind { BENCH_GETRANDOM, BENCH_PCREXTEND, BENCH_NVWRITE };

static void run_loop(const struct opts *o, enum bench_kind kind)
{
	struct frame cmd, rsp;
	struct samples s = { 0 };
	size_t data_off = 0;
	const char *what;
	uint64_t start, elapsed, limit_ns, seq = 0;
	long i;
	int fd, started;

	fd = connect_retry(o->socket, o->connect_wait_ms);
	started = tpm_first_getrandom(fd);
	if (started)
		log_warnx("%s: server was not started; sent TPM2_Startup(CLEAR)", o->socket);

	switch (kind) {
	case BENCH_GETRANDOM:
		what = "TPM2_GetRandom";
		cmd_getrandom(&cmd, RANDOM_BYTES);
		break;
	case BENCH_PCREXTEND:
		what = "TPM2_PCR_Extend";
		cmd_pcr_extend(&cmd, BENCH_PCR);
		break;
	case BENCH_NVWRITE: {
		struct frame def;
		uint32_t rc;

		what = "TPM2_NV_Write";
		cmd_nv_define(&def, o->nv_index);
		rc = tpm_transact(fd, &def, &rsp, "TPM2_NV_DefineSpace");
		if (rc == TPM_RC_NV_DEFINED) {
			struct frame undef;

			/* Left over from an interrupted run: take it over. */
			log_warnx("NV index 0x%08" PRIx32 " exists; undefining it first",
				  o->nv_index);
			cmd_nv_undefine(&undef, o->nv_index);
			rc_check(tpm_transact(fd, &undef, &rsp, "TPM2_NV_UndefineSpace"),
				 "TPM2_NV_UndefineSpace");
			rc = tpm_transact(fd, &def, &rsp, "TPM2_NV_DefineSpace");
		}
		rc_check(rc, "TPM2_NV_DefineSpace");
		check_session_rsp(&rsp, 0, "TPM2_NV_DefineSpace");
		data_off = cmd_nv_write(&cmd, o->nv_index);
		break;
	}
	default:
		fatalx("internal: bad bench kind");
	}

	limit_ns = (uint64_t)(o->duration * 1e9);
	for (i = -o->warmup, start = 0;; i++) {
		if (i == 0)
			start = now_ns();
		if (i >= 0) {
			if (o->iterations > 0 ? i >= o->iterations : now_ns() - start >= limit_ns)
				break;
		}
		if (kind == BENCH_NVWRITE) {
			/* New contents every time, so that every write changes NV. */
			seq++;
			memcpy(cmd.b + data_off, &seq, sizeof(seq));
		}
		uint64_t t0 = now_ns();

		rc_check(tpm_transact(fd, &cmd, &rsp, what), what);
		uint64_t t1 = now_ns();

		if (kind == BENCH_GETRANDOM)
			check_getrandom_rsp(&rsp, RANDOM_BYTES);
		else
			check_session_rsp(&rsp, 0, what);
		if (i >= 0)
			samples_add(&s, t1 - t0);
	}
	elapsed = now_ns() - start;

	if (kind == BENCH_NVWRITE) {
		struct frame undef;

		cmd_nv_undefine(&undef, o->nv_index);
		rc_check(tpm_transact(fd, &undef, &rsp, "TPM2_NV_UndefineSpace"),
			 "TPM2_NV_UndefineSpace");
		check_session_rsp(&rsp, 0, "TPM2_NV_UndefineSpace");
	}
	close(fd);

	if (s.n == 0)
		fatalx("%s: no operation completed in the measurement window", what);
	qsort(s.ns, s.n, sizeof(*s.ns), cmp_u32);
	printf("mode=%s ops=%zu secs=%.6f rate=%.1f lat_min_us=%.2f lat_p50_us=%.2f "
	       "lat_p99_us=%.2f lat_max_us=%.2f startup_sent=%d\n",
	       o->mode, s.n, (double)elapsed / 1e9, (double)s.n / ((double)elapsed / 1e9), pct_us(&s, 0.0),
	       pct_us(&s, 0.5), pct_us(&s, 0.99), pct_us(&s, 1.0), started);
	free(s.ns);
}

static void run_ping(const struct opts *o)
{
	int fd = connect_retry(o->socket, o->connect_wait_ms);
	int started = tpm_first_getrandom(fd);

	close(fd);
	printf("mode=ping ok=1 startup_sent=%d\n", started);
}

static void child_stop(pid_t pid)
{
	uint64_t deadline;
	int status;

	/* The child leads its own process group: this reaches its helpers too. */
	if (kill(-pid, SIGTERM) != 0 && errno != ESRCH)
		fatal("kill %d", (int)pid);
	deadline = now_ns() + 3000000000u;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid || (r < 0 && errno == ECHILD))
			break;
		if (r < 0 && errno != EINTR)
			fatal("waitpid");
		if (now_ns() > deadline) {
			log_warnx("child %d ignored SIGTERM for 3 s; sending SIGKILL", (int)pid);
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		sleep_ns(1000000);
	}
	/* Whatever of the group outlived its leader. */
	kill(-pid, SIGKILL);
}

static void run_start(const struct opts *o)
{
	struct stat st;
	uint64_t t0, t_conn, t_rsp, deadline;
	unsigned long attempts = 0;
	pid_t pid;
	int fd, status, started;

	/* A stale socket file must not be mistaken for the new server. */
	if (lstat(o->socket, &st) == 0 && S_ISSOCK(st.st_mode) && unlink(o->socket) != 0)
		fatal("unlink %s", o->socket);

	fflush(NULL);
	t0 = now_ns();
	pid = fork();
	if (pid < 0)
		fatal("fork");
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		if (setpgid(0, 0) != 0)
			fatal("setpgid");

		if (o->child_cpu >= 0) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET((size_t)o->child_cpu, &set);
			if (sched_setaffinity(0, sizeof(set), &set) != 0)
				fatal("sched_setaffinity(CPU %d)", o->child_cpu);
		}
		/* Keep our stdout for results: the server's output goes to stderr. */
		if (null < 0 || dup2(null, 0) < 0 || dup2(2, 1) < 0)
			fatal("child stdio");
		execvp(o->child_argv[0], o->child_argv);
		fatal("exec %s", o->child_argv[0]);
	}

	/* Also here, so that no kill(-pid) can come before the child's setpgid. */
	(void)setpgid(pid, pid);

	deadline = t0 + (uint64_t)o->connect_wait_ms * 1000000u;
	for (;;) {
		attempts++;
		fd = unix_connect(o->socket);
		if (fd >= 0)
			break;
		if (waitpid(pid, &status, WNOHANG) == pid)
			fatalx("%s exited (status 0x%x) before accepting on %s", o->child_argv[0],
			       status, o->socket);
		if (now_ns() > deadline) {
			child_stop(pid);
			fatalx("%s: not accepting after %d ms", o->socket, o->connect_wait_ms);
		}
		if (o->poll_us > 0)
			sleep_ns((uint64_t)o->poll_us * 1000u);
	}
	t_conn = now_ns();
	started = tpm_first_getrandom(fd);
	t_rsp = now_ns();
	close(fd);
	child_stop(pid);

	printf("mode=start connect_ms=%.3f first_response_ms=%.3f connect_attempts=%lu "
	       "startup_sent=%d\n",
	       (double)(t_conn - t0) / 1e6, (double)(t_rsp - t0) / 1e6, attempts, started);
}

static void usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: %s --socket PATH [options] MODE [-- COMMAND ARGS...]\n"
		"modes:\n"
		"  ping        connect (with retries) and check one GetRandom\n"
		"  getrandom   round trips of TPM2_GetRandom(32)\n"
		"  pcrextend   round trips of TPM2_PCR_Extend(PCR 16, sha256, TPM_RS_PW)\n"
		"  nvwrite     round trips of TPM2_NV_Write(32 bytes) to a fresh index\n"
		"  start       fork+exec COMMAND, time connect and first GetRandom response\n"
		"options:\n"
		"  -s, --socket PATH       data socket\n"
		"  -n, --iterations N      measure exactly N round trips\n"
		"  -d, --duration SEC      measure for SEC seconds (default 1; ignored with -n)\n"
		"  -w, --warmup N          unmeasured round trips first (default 100)\n"
		"      --nv-index HEX      NV index for nvwrite (default 0x%08x)\n"
		"      --connect-wait MS   how long to retry connect() (default 5000)\n"
		"      --timeout MS        per-response timeout (default 10000)\n"
		"      --child-cpu N       start: pin the child to CPU N before exec\n"
		"      --poll-us N         start: sleep between connect() attempts (default 50)\n"
		"Output: one line of key=value pairs on stdout. Exit 1 on any error,\n"
		"including a non-zero TPM response code.\n",
		progname, DEFAULT_NV_INDEX);
	exit(code);
}

static long parse_long(const char *s, const char *what, long min)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || *s == '\0' || *end != '\0' || v < min)
		fatalx("bad %s: %s", what, s);
	return v;
}

int main(int argc, char **argv)
{
	enum { OPT_NV_INDEX = 256, OPT_CONNECT_WAIT, OPT_TIMEOUT, OPT_CHILD_CPU, OPT_POLL_US };
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "nv-index", required_argument, NULL, OPT_NV_INDEX },
		{ "connect-wait", required_argument, NULL, OPT_CONNECT_WAIT },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "child-cpu", required_argument, NULL, OPT_CHILD_CPU },
		{ "poll-us", required_argument, NULL, OPT_POLL_US },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = {
		.duration = 1.0,
		.warmup = 100,
		.nv_index = DEFAULT_NV_INDEX,
		.connect_wait_ms = 5000,
		.child_cpu = -1,
		.poll_us = 50,
	};
	char *end;
	int c;

	/* Stop option parsing at the first non-option (the mode). */
	while ((c = getopt_long(argc, argv, "+s:n:d:w:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.socket = optarg;
			break;
		case 'n':
			o.iterations = parse_long(optarg, "iteration count", 1);
			break;
		case 'd':
			errno = 0;
			o.duration = strtod(optarg, &end);
			if (errno || *end != '\0' || !(o.duration > 0))
				fatalx("bad duration: %s", optarg);
			break;
		case 'w':
			o.warmup = parse_long(optarg, "warmup count", 0);
			break;
		case OPT_NV_INDEX: {
			unsigned long v;

			errno = 0;
			v = strtoul(optarg, &end, 16);
			if (errno || *end != '\0' || (v >> 24) != 0x01)
				fatalx("bad NV index (want 0x01xxxxxx): %s", optarg);
			o.nv_index = (uint32_t)v;
			break;
		}
		case OPT_CONNECT_WAIT:
			o.connect_wait_ms = (int)parse_long(optarg, "connect wait", 0);
			break;
		case OPT_TIMEOUT:
			timeout_ms = (int)parse_long(optarg, "timeout", 1);
			break;
		case OPT_CHILD_CPU:
			o.child_cpu = (int)parse_long(optarg, "CPU", 0);
			break;
		case OPT_POLL_US:
			o.poll_us = (int)parse_long(optarg, "poll interval", 0);
			break;
		case 'h':
			usage(0);
			break;
		default:
			usage(2);
		}
	}
	if (optind >= argc)
		usage(2);
	o.mode = argv[optind++];
	if (!o.socket)
		fatalx("--socket is required");
	signal(SIGPIPE, SIG_IGN);

	if (strcmp(o.mode, "start") == 0) {
		if (optind < argc && strcmp(argv[optind], "--") == 0)
			optind++;
		if (optind >= argc)
			fatalx("start: no command given after --");
		o.child_argv = argv + optind;
		run_start(&o);
		return 0;
	}
	if (optind < argc)
		fatalx("unexpected argument: %s", argv[optind]);
	if (strcmp(o.mode, "ping") == 0)
		run_ping(&o);
	else if (strcmp(o.mode, "getrandom") == 0)
		run_loop(&o, BENCH_GETRANDOM);
	else if (strcmp(o.mode, "pcrextend") == 0)
		run_loop(&o, BENCH_PCREXTEND);
	else if (strcmp(o.mode, "nvwrite") == 0)
		run_loop(&o, BENCH_NVWRITE);
	else
		fatalx("unknown mode: %s", o.mode);
	return 0;
}
