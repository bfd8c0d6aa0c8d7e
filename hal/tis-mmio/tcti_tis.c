/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TIS/PTP FIFO TCTI.  Layout of this file: errors, the conf string
 * (pure), the MMIO backend, bounded polling, locality, transmit, receive,
 * the other TCTI entry points, init.  docs/tis-mmio.md has the protocol
 * summary and what each failure means.
 */
#include "tis-mmio/tcti_tis.h"
#include "lib/errbuf.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TCTI_TIS_MAGIC UINT64_C(0x7469732d6d6d696f) /* "tis-mmio" */
#define TCTI_TIS_VERSION 2
#define TPM_HEADER_LEN 10u
#define ERR_MAX 320

/*
 * Polling: a few reads back to back (a TPM often flips a bit within
 * microseconds, and a GetRandom round trip is well under a millisecond),
 * then sleeps that double from POLL_MIN_US to POLL_MAX_US.
 */
#define POLL_SPINS 8
#define POLL_MIN_US 20u
#define POLL_MAX_US 1000u

enum tis_state {
	TIS_FINAL,    /* finalized: every call is out of sequence */
	TIS_TRANSMIT, /* idle: transmit or setLocality next */
	TIS_RECEIVE,  /* a command is in the TPM: receive or cancel next */
};

struct tis_mmio {
	volatile uint8_t *regs; /* the window's base inside map */
	void *map;
	size_t maplen;
	int fd;
};

struct tcti_tis {
	TSS2_TCTI_CONTEXT_COMMON_V2 v2; /* first: what tpm2-tss sees */
	enum tis_state state;
	struct tis_ops ops;
	void *opaque;
	struct tis_timeouts to;
	unsigned int locality;     /* for the next command */
	unsigned int cmd_locality; /* of the command in flight */
	bool held;                 /* we hold cmd_locality */
	uint32_t did_vid;
	uint32_t cmd_code;
	uint64_t go_ms;            /* when tpmGo was written */
	bool hdr_read;             /* hdr holds the response's first bytes */
	uint8_t hdr[TPM_HEADER_LEN];
	uint32_t rsp_size;
	bool is_mmio;
	struct tis_mmio mmio;
	char where[96];            /* "TPM at /dev/mem+0xfed40000" */
	char err[ERR_MAX];
};

/* ---- errors (seterr: lib/errbuf.h) ------------------------------------ */

static void tis_err(struct tcti_tis *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* "TPM at X locality N: <why>" into the context. */
static void tis_err(struct tcti_tis *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(t->err, sizeof(t->err), "%s locality %u: ", t->where,
		     t->state == TIS_RECEIVE ? t->cmd_locality : t->locality);
	if (n < 0 || (size_t)n >= sizeof(t->err))
		return;
	va_start(ap, fmt);
	vsnprintf(t->err + n, sizeof(t->err) - (size_t)n, fmt, ap);
	va_end(ap);
}

/* Up to 40 bytes of untrusted text, fit for a log line. */
static const char *show(char *buf, size_t buflen, const char *s, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len && n + 4 < buflen && i < 40; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f)
			buf[n++] = s[i];
		else
			buf[n++] = '?';
	}
	if (i < len && n + 4 < buflen) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
	return buf;
}

/* ---- conf string ------------------------------------------------------- */

static int parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		if (len - 2 > 16)
			return -ERANGE;
		for (i = 2; i < len; i++) {
			char c = s[i];
			unsigned int d;

			if (c >= '0' && c <= '9')
				d = (unsigned int)(c - '0');
			else if (c >= 'a' && c <= 'f')
				d = (unsigned int)(c - 'a' + 10);
			else if (c >= 'A' && c <= 'F')
				d = (unsigned int)(c - 'A' + 10);
			else
				return -EINVAL;
			v = v << 4 | d;
		}
		*out = v;
		return 0;
	}
	if (!len)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		unsigned int d;

		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		d = (unsigned int)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int conf_value(struct tis_conf *c, int key, const char *v, size_t vlen,
		      char *err, size_t errlen)
{
	char shown[48];
	uint64_t base;
	int r;

	switch (key) {
	case 0: /* path */
		if (!vlen || v[0] != '/') {
			seterr(err, errlen, "tis conf: path \"%s\" is not an "
			       "absolute path", show(shown, sizeof(shown), v,
						     vlen));
			return -EINVAL;
		}
		if (vlen >= sizeof(c->path)) {
			seterr(err, errlen, "tis conf: path is %zu bytes, at "
			       "most %zu", vlen, sizeof(c->path) - 1);
			return -EINVAL;
		}
		for (size_t i = 0; i < vlen; i++) {
			if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
				seterr(err, errlen, "tis conf: path contains "
				       "a control character");
				return -EINVAL;
			}
		}
		memcpy(c->path, v, vlen);
		c->path[vlen] = '\0';
		return 0;
	case 1: /* base */
		r = parse_u64(v, vlen, &base);
		if (r) {
			seterr(err, errlen, "tis conf: base \"%s\" is not %s",
			       show(shown, sizeof(shown), v, vlen),
			       r == -ERANGE ? "a 64-bit number" :
			       "a 0x-hex or decimal number");
			return -EINVAL;
		}
		if (base % TIS_LOCALITY_SIZE) {
			seterr(err, errlen, "tis conf: base 0x%llx is not 4 KiB "
			       "aligned", (unsigned long long)base);
			return -EINVAL;
		}
		if (base > (uint64_t)INT64_MAX - TIS_WINDOW_SIZE) {
			seterr(err, errlen, "tis conf: base 0x%llx is beyond "
			       "what a file offset can reach",
			       (unsigned long long)base);
			return -EINVAL;
		}
		c->base = base;
		return 0;
	default: /* locality */
		if (vlen != 1 || v[0] < '0' || v[0] > '4') {
			seterr(err, errlen, "tis conf: locality \"%s\" is not "
			       "one of 0, 1, 2, 3, 4",
			       show(shown, sizeof(shown), v, vlen));
			return -EINVAL;
		}
		c->locality = (unsigned int)(v[0] - '0');
		return 0;
	}
}

int tcti_tis_conf_parse(const char *conf, struct tis_conf *out, char *err,
			size_t errlen)
{
	static const char *const keys[] = { "path", "base", "locality" };
	struct tis_conf c = { .base = TIS_DEFAULT_BASE, .locality = 0 };
	unsigned int seen = 0;
	const char *p = conf;
	char shown[48];

	if (!out)
		return -EINVAL;
	snprintf(c.path, sizeof(c.path), "%s", TIS_DEFAULT_PATH);
	if (!conf || !*conf) {
		*out = c;
		return 0;
	}
	if (strnlen(conf, 4096) == 4096) {
		seterr(err, errlen, "tis conf: longer than 4095 bytes");
		return -EINVAL;
	}
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t klen;
		int key = -1, r;

		if (!len) {
			seterr(err, errlen, "tis conf: empty item (stray ',')");
			return -EINVAL;
		}
		if (!eq) {
			seterr(err, errlen, "tis conf: \"%s\" is not key=value",
			       show(shown, sizeof(shown), p, len));
			return -EINVAL;
		}
		klen = (size_t)(eq - p);
		for (int i = 0; i < 3; i++) {
			if (klen == strlen(keys[i]) &&
			    !memcmp(p, keys[i], klen))
				key = i;
		}
		if (key < 0) {
			seterr(err, errlen, "tis conf: unknown key \"%s\" "
			       "(known: path, base, locality)",
			       show(shown, sizeof(shown), p, klen));
			return -EINVAL;
		}
		if (seen & (1u << key)) {
			seterr(err, errlen, "tis conf: %s given twice",
			       keys[key]);
			return -EINVAL;
		}
		seen |= 1u << key;
		r = conf_value(&c, key, eq + 1, len - klen - 1, err, errlen);
		if (r)
			return r;
		if (!end)
			break;
		p = end + 1;
	}
	*out = c;
	return 0;
}

/* ---- MMIO backend ------------------------------------------------------ */

static uint8_t mmio_read8(void *opaque, uint32_t off)
{
	struct tis_mmio *m = opaque;

	if (off >= TIS_WINDOW_SIZE)
		return 0xff;
	return m->regs[off];
}

static uint32_t mmio_read32(void *opaque, uint32_t off)
{
	struct tis_mmio *m = opaque;

	if (off > TIS_WINDOW_SIZE - 4 || (off & 3))
		return 0xffffffff;
	return le32toh(*(volatile uint32_t *)(void *)(m->regs + off));
}

static void mmio_write8(void *opaque, uint32_t off, uint8_t v)
{
	struct tis_mmio *m = opaque;

	if (off < TIS_WINDOW_SIZE)
		m->regs[off] = v;
}

static void mmio_write32(void *opaque, uint32_t off, uint32_t v)
{
	struct tis_mmio *m = opaque;

	if (off <= TIS_WINDOW_SIZE - 4 && !(off & 3))
		*(volatile uint32_t *)(void *)(m->regs + off) = htole32(v);
}

static uint64_t clock_now_ms(void *opaque)
{
	struct timespec ts;

	(void)opaque;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void clock_sleep_us(void *opaque, unsigned int us)
{
	struct timespec ts = { .tv_sec = us / 1000000,
			       .tv_nsec = (long)(us % 1000000) * 1000 };

	(void)opaque;
	nanosleep(&ts, NULL); /* early return on a signal: we poll anyway */
}

static const struct tis_ops mmio_ops = {
	.read8 = mmio_read8,
	.read32 = mmio_read32,
	.write8 = mmio_write8,
	.write32 = mmio_write32,
	.now_ms = clock_now_ms,
	.sleep_us = clock_sleep_us,
};

static int mmio_map(struct tis_mmio *m, const struct tis_conf *c, char *err,
		    size_t errlen)
{
	long ps = sysconf(_SC_PAGESIZE);
	uint64_t map_off, delta;
	struct stat st;
	int r;

	if (ps <= 0)
		ps = 4096;
	m->fd = open(c->path, O_RDWR | O_SYNC | O_CLOEXEC);
	if (m->fd < 0) {
		r = -errno;
		seterr(err, errlen, "TPM register window: cannot open %s: %s%s",
		       c->path, strerror(-r),
		       (r == -EACCES || r == -EPERM) ?
		       " (/dev/mem needs root with CAP_SYS_RAWIO)" : "");
		return r;
	}
	if (fstat(m->fd, &st)) {
		r = -errno;
		seterr(err, errlen, "TPM register window: fstat %s: %s",
		       c->path, strerror(-r));
		goto fail;
	}
	if (S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size < c->base + TIS_WINDOW_SIZE) {
		/* Touching a page past the end would raise SIGBUS. */
		seterr(err, errlen, "no TPM at %s+0x%llx: the file is %lld "
		       "bytes, a register window needs %llu from there",
		       c->path, (unsigned long long)c->base,
		       (long long)st.st_size,
		       (unsigned long long)TIS_WINDOW_SIZE);
		r = -ENODEV;
		goto fail;
	}
	map_off = c->base & ~((uint64_t)ps - 1);
	delta = c->base - map_off;
	m->maplen = (size_t)((delta + TIS_WINDOW_SIZE + (uint64_t)ps - 1) &
			     ~((uint64_t)ps - 1));
	m->map = mmap(NULL, m->maplen, PROT_READ | PROT_WRITE, MAP_SHARED,
		      m->fd, (off_t)map_off);
	if (m->map == MAP_FAILED) {
		r = -errno;
		m->map = NULL;
		seterr(err, errlen, "TPM register window: mmap of %s at 0x%llx: "
		       "%s%s", c->path, (unsigned long long)c->base,
		       strerror(-r), r == -EPERM ?
		       " (a kernel TPM driver owns the region: boot with "
		       "initcall_blacklist=init_tis or unbind MSFT0101:00; "
		       "docs/tis-mmio.md)" : "");
		goto fail;
	}
	m->regs = (volatile uint8_t *)m->map + delta;
	return 0;
fail:
	close(m->fd);
	m->fd = -1;
	return r;
}

static void mmio_unmap(struct tis_mmio *m)
{
	if (m->map)
		munmap(m->map, m->maplen);
	if (m->fd >= 0)
		close(m->fd);
	m->map = NULL;
	m->regs = NULL;
	m->fd = -1;
}

/* ---- registers and bounded polling ------------------------------------- */

static uint32_t reg(unsigned int locality, uint32_t r)
{
	return locality * TIS_LOCALITY_SIZE + r;
}

static uint64_t now_ms(struct tcti_tis *t)
{
	return t->ops.now_ms(t->opaque);
}

static uint32_t sts_read(struct tcti_tis *t)
{
	return t->ops.read32(t->opaque, reg(t->cmd_locality, TIS_REG_STS));
}

static void sts_write(struct tcti_tis *t, uint8_t bits)
{
	t->ops.write8(t->opaque, reg(t->cmd_locality, TIS_REG_STS), bits);
}

static unsigned int burst_of(uint32_t sts)
{
	return (sts >> TIS_STS_BURST_SHIFT) & TIS_STS_BURST_MASK;
}

static bool sts_sane(uint32_t sts)
{
	return !(sts & TIS_STS_READ_ZERO);
}

typedef bool (*reg_pred)(uint32_t v, uint32_t arg);

static bool sts_has(uint32_t v, uint32_t bits)
{
	return sts_sane(v) && (v & bits) == bits;
}

static bool sts_burst(uint32_t v, uint32_t unused)
{
	(void)unused;
	return sts_sane(v) && burst_of(v) != 0;
}

static bool access_has(uint32_t v, uint32_t bits)
{
	return (v & bits) == bits;
}

/* Ours, and nobody (we included) still asking for it. */
static bool access_granted(uint32_t v, uint32_t unused)
{
	(void)unused;
	return (v & (TIS_ACCESS_ACTIVE_LOCALITY | TIS_ACCESS_VALID |
		     TIS_ACCESS_REQUEST_USE)) ==
	       (TIS_ACCESS_ACTIVE_LOCALITY | TIS_ACCESS_VALID);
}

/*
 * Reads the register at off until ok(value, arg) or timeout_ms pass; the
 * last value read goes to *last.  Bounded twice: by the clock, and by a
 * poll count that a clock which never moves cannot defeat.  0 or
 * -ETIMEDOUT.
 */
static int wait_until(struct tcti_tis *t, uint32_t off, bool wide, reg_pred ok,
		      uint32_t arg, unsigned int timeout_ms, uint32_t *last)
{
	uint64_t deadline = now_ms(t) + timeout_ms;
	uint64_t fuse = POLL_SPINS + 16 +
			(uint64_t)timeout_ms * 1000 / POLL_MIN_US;
	unsigned int delay = POLL_MIN_US;

	for (uint64_t polls = 0;; polls++) {
		uint32_t v = wide ? t->ops.read32(t->opaque, off) :
				    t->ops.read8(t->opaque, off);

		*last = v;
		if (ok(v, arg))
			return 0;
		if (now_ms(t) >= deadline || polls >= fuse)
			return -ETIMEDOUT;
		if (polls < POLL_SPINS)
			continue;
		t->ops.sleep_us(t->opaque, delay);
		if (delay < POLL_MAX_US)
			delay = delay * 2 > POLL_MAX_US ? POLL_MAX_US : delay * 2;
	}
}

static int wait_sts(struct tcti_tis *t, reg_pred ok, uint32_t arg,
		    unsigned int timeout_ms, uint32_t *sts)
{
	return wait_until(t, reg(t->cmd_locality, TIS_REG_STS), true, ok, arg,
			  timeout_ms, sts);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* ---- locality ---------------------------------------------------------- */

static const char *access_hint(uint32_t access)
{
	if (access == 0xff)
		return ": the window reads all ones, no TPM answers";
	if (!(access & TIS_ACCESS_VALID))
		return ": tpmRegValidSts clear, the TPM is not ready";
	return ": another locality holds the TPM, or a kernel driver uses it";
}

/* Sets t->cmd_locality and t->held on success. */
static TSS2_RC locality_request(struct tcti_tis *t, unsigned int l)
{
	uint32_t off = reg(l, TIS_REG_ACCESS), access;

	t->cmd_locality = l;
	access = t->ops.read8(t->opaque, off);
	if (!access_granted(access, 0)) {
		t->ops.write8(t->opaque, off, TIS_ACCESS_REQUEST_USE);
		if (wait_until(t, off, false, access_granted, 0, t->to.a_ms,
			       &access)) {
			/* Withdraw the request, or it is granted later to
			 * nobody and blocks every other locality. */
			t->ops.write8(t->opaque, off,
				      TIS_ACCESS_ACTIVE_LOCALITY);
			tis_err(t, "locality %u not granted within %u ms "
				"(TPM_ACCESS 0x%02x)%s", l, t->to.a_ms, access,
				access_hint(access));
			return TSS2_TCTI_RC_NO_CONNECTION;
		}
	}
	t->held = true;
	return TSS2_RC_SUCCESS;
}

static void locality_release(struct tcti_tis *t)
{
	if (!t->held)
		return;
	t->ops.write8(t->opaque, reg(t->cmd_locality, TIS_REG_ACCESS),
		      TIS_ACCESS_ACTIVE_LOCALITY);
	t->held = false;
}

/* Drops whatever the TPM holds for us (commandReady aborts a command in
 * any phase) and gives the locality back. */
static void command_abort(struct tcti_tis *t)
{
	if (t->held)
		sts_write(t, TIS_STS_COMMAND_READY);
	locality_release(t);
	t->hdr_read = false;
	t->state = TIS_TRANSMIT;
}

/* ---- transmit ---------------------------------------------------------- */

static struct tcti_tis *tis_of(TSS2_TCTI_CONTEXT *ctx)
{
	struct tcti_tis *t = (struct tcti_tis *)ctx;

	if (!t || t->v2.v1.magic != TCTI_TIS_MAGIC)
		return NULL;
	return t;
}

static TSS2_RC send_bytes(struct tcti_tis *t, const uint8_t *cmd, size_t len)
{
	size_t off = 0;
	uint32_t sts;

	sts = sts_read(t);
	if (!sts_has(sts, TIS_STS_COMMAND_READY)) {
		sts_write(t, TIS_STS_COMMAND_READY);
		if (wait_sts(t, sts_has, TIS_STS_COMMAND_READY, t->to.b_ms,
			     &sts)) {
			tis_err(t, "TPM_STS.commandReady not set within %u ms "
				"(TPM_STS 0x%08x)", t->to.b_ms, sts);
			return TSS2_TCTI_RC_IO_ERROR;
		}
	}
	/* All but the last byte in bursts; expect must stay set. */
	while (off < len - 1) {
		size_t n;

		if (wait_sts(t, sts_burst, 0, t->to.d_ms, &sts)) {
			tis_err(t, "TPM_STS.burstCount stayed 0 for %u ms "
				"with %zu of %zu command bytes sent "
				"(TPM_STS 0x%08x)", t->to.d_ms, off, len, sts);
			return TSS2_TCTI_RC_IO_ERROR;
		}
		n = burst_of(sts);
		if (n > len - 1 - off)
			n = len - 1 - off;
		for (size_t i = 0; i < n; i++)
			t->ops.write8(t->opaque,
				      reg(t->cmd_locality, TIS_REG_DATA_FIFO),
				      cmd[off++]);
		if (wait_sts(t, sts_has, TIS_STS_VALID, t->to.c_ms, &sts)) {
			tis_err(t, "TPM_STS.stsValid not set within %u ms "
				"after %zu command bytes (TPM_STS 0x%08x)",
				t->to.c_ms, off, sts);
			return TSS2_TCTI_RC_IO_ERROR;
		}
		if (!(sts & TIS_STS_EXPECT)) {
			tis_err(t, "TPM stopped expecting data after %zu of "
				"%zu command bytes (TPM_STS 0x%08x)", off, len,
				sts);
			return TSS2_TCTI_RC_IO_ERROR;
		}
	}
	t->ops.write8(t->opaque, reg(t->cmd_locality, TIS_REG_DATA_FIFO),
		      cmd[off]);
	if (wait_sts(t, sts_has, TIS_STS_VALID, t->to.c_ms, &sts)) {
		tis_err(t, "TPM_STS.stsValid not set within %u ms after the "
			"last command byte (TPM_STS 0x%08x)", t->to.c_ms, sts);
		return TSS2_TCTI_RC_IO_ERROR;
	}
	if (sts & TIS_STS_EXPECT) {
		tis_err(t, "TPM still expects data after all %zu command "
			"bytes (TPM_STS 0x%08x)", len, sts);
		return TSS2_TCTI_RC_IO_ERROR;
	}
	return TSS2_RC_SUCCESS;
}

static TSS2_RC tis_transmit(TSS2_TCTI_CONTEXT *ctx, size_t size,
			    const uint8_t *cmd)
{
	struct tcti_tis *t = tis_of(ctx);
	TSS2_RC rc;

	if (!t)
		return TSS2_TCTI_RC_BAD_CONTEXT;
	t->err[0] = '\0';
	if (t->state != TIS_TRANSMIT) {
		tis_err(t, "transmit while %s", t->state == TIS_RECEIVE ?
			"a response is pending" : "finalized");
		return TSS2_TCTI_RC_BAD_SEQUENCE;
	}
	if (!cmd)
		return TSS2_TCTI_RC_BAD_REFERENCE;
	if (size < TPM_HEADER_LEN || size > TIS_BUFFER_MAX) {
		tis_err(t, "command of %zu bytes (a command is %u..%u)", size,
			TPM_HEADER_LEN, TIS_BUFFER_MAX);
		return TSS2_TCTI_RC_BAD_VALUE;
	}
	if (be32(cmd + 2) != size) {
		tis_err(t, "command header says %u bytes, the buffer holds %zu",
			be32(cmd + 2), size);
		return TSS2_TCTI_RC_BAD_VALUE;
	}
	rc = locality_request(t, t->locality);
	if (rc)
		return rc;
	rc = send_bytes(t, cmd, size);
	if (rc) {
		command_abort(t);
		return rc;
	}
	sts_write(t, TIS_STS_GO);
	t->go_ms = now_ms(t);
	t->cmd_code = be32(cmd + 6);
	t->hdr_read = false;
	t->state = TIS_RECEIVE;
	return TSS2_RC_SUCCESS;
}

/* ---- receive ----------------------------------------------------------- */

/*
 * Fills buf[0..n) from the FIFO.  at/total place those bytes in the
 * response for messages.  Each chunk waits for dataAvail (timeout C) and
 * a nonzero burstCount (timeout D), and takes no more than burstCount.
 */
static TSS2_RC recv_bytes(struct tcti_tis *t, uint8_t *buf, size_t n,
			  size_t at, size_t total)
{
	size_t got = 0;
	uint32_t sts;

	while (got < n) {
		size_t k;

		if (wait_sts(t, sts_has, TIS_STS_DATA_AVAIL | TIS_STS_VALID,
			     t->to.c_ms, &sts)) {
			tis_err(t, "TPM stopped offering data after %zu of %zu "
				"response bytes (TPM_STS 0x%08x)", at + got,
				total, sts);
			return TSS2_TCTI_RC_MALFORMED_RESPONSE;
		}
		if (!burst_of(sts) &&
		    wait_sts(t, sts_burst, 0, t->to.d_ms, &sts)) {
			tis_err(t, "TPM_STS.burstCount stayed 0 for %u ms with "
				"%zu of %zu response bytes read (TPM_STS "
				"0x%08x)", t->to.d_ms, at + got, total, sts);
			return TSS2_TCTI_RC_IO_ERROR;
		}
		k = burst_of(sts);
		if (k > n - got)
			k = n - got;
		for (size_t i = 0; i < k; i++)
			buf[got++] = t->ops.read8(t->opaque,
				reg(t->cmd_locality, TIS_REG_DATA_FIFO));
	}
	return TSS2_RC_SUCCESS;
}

/*
 * Waits for the response to start: at most the caller's timeout (then
 * TRY_AGAIN, the command stays in the TPM), never past the command
 * duration (then the command is aborted).
 */
static TSS2_RC wait_response(struct tcti_tis *t, int32_t timeout)
{
	uint64_t end = t->go_ms + t->to.duration_ms, now = now_ms(t);
	uint64_t left = end > now ? end - now : 0;
	unsigned int wait = (unsigned int)left;
	uint32_t sts;

	if (timeout >= 0 && (uint64_t)timeout < left)
		wait = (unsigned int)timeout;
	if (!wait_sts(t, sts_has, TIS_STS_DATA_AVAIL | TIS_STS_VALID, wait,
		      &sts))
		return TSS2_RC_SUCCESS;
	if (timeout >= 0 && now_ms(t) < end) {
		tis_err(t, "no response yet after %d ms (command 0x%08x is "
			"still running)", timeout, t->cmd_code);
		return TSS2_TCTI_RC_TRY_AGAIN;
	}
	tis_err(t, "no response to command 0x%08x within %u ms of tpmGo "
		"(TPM_STS 0x%08x); the command was aborted", t->cmd_code,
		t->to.duration_ms, sts);
	return TSS2_TCTI_RC_IO_ERROR;
}

static TSS2_RC read_header(struct tcti_tis *t, int32_t timeout)
{
	TSS2_RC rc;

	rc = wait_response(t, timeout);
	if (rc)
		return rc;
	rc = recv_bytes(t, t->hdr, TPM_HEADER_LEN, 0, TPM_HEADER_LEN);
	if (rc)
		return rc;
	t->rsp_size = be32(t->hdr + 2);
	if (t->rsp_size < TPM_HEADER_LEN || t->rsp_size > TIS_BUFFER_MAX) {
		tis_err(t, "TPM announced a response of %u bytes (a response "
			"is %u..%u)", t->rsp_size, TPM_HEADER_LEN,
			TIS_BUFFER_MAX);
		return TSS2_TCTI_RC_MALFORMED_RESPONSE;
	}
	t->hdr_read = true;
	return TSS2_RC_SUCCESS;
}

static TSS2_RC read_rest(struct tcti_tis *t, uint8_t *rsp)
{
	uint32_t sts;
	TSS2_RC rc;

	memcpy(rsp, t->hdr, TPM_HEADER_LEN);
	rc = recv_bytes(t, rsp + TPM_HEADER_LEN, t->rsp_size - TPM_HEADER_LEN,
			TPM_HEADER_LEN, t->rsp_size);
	if (rc)
		return rc;
	if (wait_sts(t, sts_has, TIS_STS_VALID, t->to.c_ms, &sts)) {
		tis_err(t, "TPM_STS.stsValid not set within %u ms after the "
			"response (TPM_STS 0x%08x)", t->to.c_ms, sts);
		return TSS2_TCTI_RC_IO_ERROR;
	}
	if (sts & TIS_STS_DATA_AVAIL) {
		tis_err(t, "response longer than announced: TPM_STS.dataAvail "
			"still set after the %u bytes its header gives "
			"(TPM_STS 0x%08x)", t->rsp_size, sts);
		return TSS2_TCTI_RC_MALFORMED_RESPONSE;
	}
	return TSS2_RC_SUCCESS;
}

/*
 * response == NULL asks for the size: the header is read (and kept) and
 * *size set to what it announces.  A buffer smaller than that gives
 * INSUFFICIENT_BUFFER with *size set to the need; the response stays in
 * the TPM for the next call.  Nothing past *size is ever written.
 */
static TSS2_RC tis_receive(TSS2_TCTI_CONTEXT *ctx, size_t *size,
			   uint8_t *rsp, int32_t timeout)
{
	struct tcti_tis *t = tis_of(ctx);
	TSS2_RC rc;

	if (!t)
		return TSS2_TCTI_RC_BAD_CONTEXT;
	t->err[0] = '\0';
	if (t->state != TIS_RECEIVE) {
		tis_err(t, "receive without a command in flight");
		return TSS2_TCTI_RC_BAD_SEQUENCE;
	}
	if (!size)
		return TSS2_TCTI_RC_BAD_REFERENCE;
	if (timeout < TSS2_TCTI_TIMEOUT_BLOCK) {
		tis_err(t, "receive timeout %d (ms, or -1 to block)", timeout);
		return TSS2_TCTI_RC_BAD_VALUE;
	}
	if (!t->hdr_read) {
		rc = read_header(t, timeout);
		if (rc == TSS2_TCTI_RC_TRY_AGAIN)
			return rc;
		if (rc) {
			command_abort(t);
			return rc;
		}
	}
	if (!rsp) {
		*size = t->rsp_size;
		return TSS2_RC_SUCCESS;
	}
	if (*size < t->rsp_size) {
		tis_err(t, "response of %u bytes does not fit a %zu-byte "
			"buffer", t->rsp_size, *size);
		*size = t->rsp_size;
		return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
	}
	rc = read_rest(t, rsp);
	command_abort(t); /* commandReady: the TPM may drop the response */
	if (rc)
		return rc;
	*size = t->rsp_size;
	return TSS2_RC_SUCCESS;
}

/* ---- cancel, finalize, and the rest ------------------------------------ */

/* commandCancel asks the TPM to stop; commandReady then discards
 * whatever it answers, so the next transmit starts clean. */
static TSS2_RC tis_cancel(TSS2_TCTI_CONTEXT *ctx)
{
	struct tcti_tis *t = tis_of(ctx);

	if (!t)
		return TSS2_TCTI_RC_BAD_CONTEXT;
	t->err[0] = '\0';
	if (t->state != TIS_RECEIVE) {
		tis_err(t, "cancel without a command in flight");
		return TSS2_TCTI_RC_BAD_SEQUENCE;
	}
	t->ops.write32(t->opaque, reg(t->cmd_locality, TIS_REG_STS),
		       TIS_STS_COMMAND_CANCEL);
	command_abort(t);
	return TSS2_RC_SUCCESS;
}

static void tis_finalize(TSS2_TCTI_CONTEXT *ctx)
{
	struct tcti_tis *t = tis_of(ctx);

	if (!t || t->state == TIS_FINAL)
		return;
	if (t->state == TIS_RECEIVE)
		command_abort(t);
	if (t->is_mmio)
		mmio_unmap(&t->mmio);
	t->state = TIS_FINAL;
}

static TSS2_RC tis_get_poll_handles(TSS2_TCTI_CONTEXT *ctx,
				    TSS2_TCTI_POLL_HANDLE *handles,
				    size_t *num_handles)
{
	struct tcti_tis *t = tis_of(ctx);

	(void)handles;
	(void)num_handles;
	if (!t)
		return TSS2_TCTI_RC_BAD_CONTEXT;
	tis_err(t, "a register window has no file descriptor to poll");
	return TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

/* locality is a number 0..4; it applies from the next command on. */
static TSS2_RC tis_set_locality(TSS2_TCTI_CONTEXT *ctx, uint8_t locality)
{
	struct tcti_tis *t = tis_of(ctx);

	if (!t)
		return TSS2_TCTI_RC_BAD_CONTEXT;
	t->err[0] = '\0';
	if (t->state != TIS_TRANSMIT) {
		tis_err(t, "setLocality while %s", t->state == TIS_RECEIVE ?
			"a response is pending" : "finalized");
		return TSS2_TCTI_RC_BAD_SEQUENCE;
	}
	if (locality >= TIS_LOCALITIES) {
		tis_err(t, "locality %u does not exist (0..4)", locality);
		return TSS2_TCTI_RC_BAD_VALUE;
	}
	t->locality = locality;
	return TSS2_RC_SUCCESS;
}

static TSS2_RC tis_make_sticky(TSS2_TCTI_CONTEXT *ctx, TPM2_HANDLE *handle,
			       uint8_t sticky)
{
	(void)handle;
	(void)sticky;
	return tis_of(ctx) ? TSS2_TCTI_RC_NOT_IMPLEMENTED :
			     TSS2_TCTI_RC_BAD_CONTEXT;
}

const char *tcti_tis_last_error(TSS2_TCTI_CONTEXT *ctx)
{
	struct tcti_tis *t = tis_of(ctx);

	return t ? t->err : "not a tis-mmio TCTI context";
}

uint32_t tcti_tis_did_vid(TSS2_TCTI_CONTEXT *ctx)
{
	struct tcti_tis *t = tis_of(ctx);

	return t ? t->did_vid : 0;
}

/* ---- init -------------------------------------------------------------- */

/*
 * Is there a FIFO TPM, and will it give us our locality?  DID_VID and
 * INTF_ID read the same from every locality without holding one.  We
 * poll, so the TPM's interrupt is switched off: nobody would acknowledge
 * it.
 */
static int tis_probe(struct tcti_tis *t)
{
	unsigned int l = t->locality;
	uint32_t intf, inte, access;

	t->did_vid = t->ops.read32(t->opaque, reg(l, TIS_REG_DID_VID));
	if (t->did_vid == 0xffffffff || t->did_vid == 0) {
		tis_err(t, "no TPM at this address: DID_VID reads 0x%08x",
			t->did_vid);
		return -ENODEV;
	}
	intf = t->ops.read32(t->opaque, reg(l, TIS_REG_INTF_ID));
	if (intf != 0xffffffff && (intf & 0xf) == 1) {
		tis_err(t, "the TPM (DID_VID 0x%08x) speaks CRB (INTF_ID "
			"0x%08x), not the FIFO interface", t->did_vid, intf);
		return -ENOTSUP;
	}
	if (wait_until(t, reg(l, TIS_REG_ACCESS), false, access_has,
		       TIS_ACCESS_VALID, t->to.a_ms, &access)) {
		tis_err(t, "TPM_ACCESS.tpmRegValidSts not set within %u ms "
			"(TPM_ACCESS 0x%02x)", t->to.a_ms, access);
		return -ETIMEDOUT;
	}
	if (locality_request(t, l))
		return -ETIMEDOUT;
	inte = t->ops.read32(t->opaque, reg(l, TIS_REG_INT_ENABLE));
	if (inte != 0xffffffff && (inte & TIS_INT_GLOBAL_ENABLE))
		t->ops.write32(t->opaque, reg(l, TIS_REG_INT_ENABLE),
			       inte & ~TIS_INT_GLOBAL_ENABLE);
	locality_release(t);
	return 0;
}

static struct tcti_tis *tis_new(unsigned int locality,
				const struct tis_timeouts *to)
{
	static const struct tis_timeouts spec = {
		.a_ms = TIS_TIMEOUT_A_MS, .b_ms = TIS_TIMEOUT_B_MS,
		.c_ms = TIS_TIMEOUT_C_MS, .d_ms = TIS_TIMEOUT_D_MS,
		.duration_ms = TIS_DURATION_MS,
	};
	struct tcti_tis *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->v2.v1.magic = TCTI_TIS_MAGIC;
	t->v2.v1.version = TCTI_TIS_VERSION;
	t->v2.v1.transmit = tis_transmit;
	t->v2.v1.receive = tis_receive;
	t->v2.v1.finalize = tis_finalize;
	t->v2.v1.cancel = tis_cancel;
	t->v2.v1.getPollHandles = tis_get_poll_handles;
	t->v2.v1.setLocality = tis_set_locality;
	t->v2.makeSticky = tis_make_sticky;
	t->state = TIS_TRANSMIT;
	t->locality = locality;
	t->cmd_locality = locality;
	t->to = to ? *to : spec;
	t->mmio.fd = -1;
	return t;
}

int tcti_tis_init_ops(const struct tis_ops *ops, void *opaque,
		      unsigned int locality, const struct tis_timeouts *timeouts,
		      TSS2_TCTI_CONTEXT **ctx, char *err, size_t errlen)
{
	struct tcti_tis *t;
	int r;

	if (!ctx || !ops || !ops->read8 || !ops->read32 || !ops->write8 ||
	    !ops->write32 || !ops->now_ms || !ops->sleep_us ||
	    locality >= TIS_LOCALITIES) {
		seterr(err, errlen, "tis: missing register operations, or "
		       "locality %u is not 0..4", locality);
		return -EINVAL;
	}
	*ctx = NULL;
	t = tis_new(locality, timeouts);
	if (!t) {
		seterr(err, errlen, "tis: out of memory");
		return -ENOMEM;
	}
	t->ops = *ops;
	t->opaque = opaque;
	snprintf(t->where, sizeof(t->where), "TPM");
	r = tis_probe(t);
	if (r) {
		seterr(err, errlen, "%s", t->err);
		free(t);
		return r;
	}
	*ctx = (TSS2_TCTI_CONTEXT *)t;
	return 0;
}

int tcti_tis_init_mmio(const char *conf, TSS2_TCTI_CONTEXT **ctx, char *err,
		       size_t errlen)
{
	struct tis_conf c;
	struct tcti_tis *t;
	int r;

	if (!ctx)
		return -EINVAL;
	*ctx = NULL;
	r = tcti_tis_conf_parse(conf, &c, err, errlen);
	if (r)
		return r;
	t = tis_new(c.locality, NULL);
	if (!t) {
		seterr(err, errlen, "tis: out of memory");
		return -ENOMEM;
	}
	r = mmio_map(&t->mmio, &c, err, errlen);
	if (r) {
		free(t);
		return r;
	}
	t->is_mmio = true;
	t->ops = mmio_ops;
	t->opaque = &t->mmio;
	snprintf(t->where, sizeof(t->where), "TPM at %.48s+0x%llx", c.path,
		 (unsigned long long)c.base);
	r = tis_probe(t);
	if (r) {
		seterr(err, errlen, "%s", t->err);
		mmio_unmap(&t->mmio);
		free(t);
		return r;
	}
	*ctx = (TSS2_TCTI_CONTEXT *)t;
	return 0;
}
