/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The register window model: one state machine (enum tis_model_state,
 * moved only by sts_write, fifo_write and exec_poll) behind the four
 * register accessors.  Follows the PTP's FIFO interface closely enough
 * for a driver that works here to work on QEMU's tpm-tis.
 */
#include "tis_model.h"

#include <string.h>
#include <time.h>

/* TPM2_* constants come from tpm2-tss's headers (via tcti_tis.h). */
#define INTF_ID_FIFO 0x00082100u

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static size_t error_rsp(uint8_t *rsp, uint32_t rc)
{
	put_be16(rsp, TPM2_ST_NO_SESSIONS);
	put_be32(rsp + 2, 10);
	put_be32(rsp + 6, rc);
	return 10;
}

/* ---- time ------------------------------------------------------------- */

static uint64_t model_now_us(struct tis_model *m)
{
	struct timespec ts;

	if (m->virtual_clock)
		return m->vclock_us;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t op_now_ms(void *opaque)
{
	return model_now_us(opaque) / 1000;
}

static void op_sleep_us(void *opaque, unsigned int us)
{
	struct tis_model *m = opaque;
	struct timespec ts = { .tv_sec = us / 1000000,
			       .tv_nsec = (long)(us % 1000000) * 1000 };

	if (m->virtual_clock)
		m->vclock_us += us ? us : 1;
	else
		nanosleep(&ts, NULL);
}

/* ---- the state machine ------------------------------------------------- */

void tis_model_init(struct tis_model *m, tis_backend_fn fn, void *ctx)
{
	memset(m, 0, sizeof(*m));
	m->backend = fn;
	m->backend_ctx = ctx;
	m->active = 0;
	m->state = TIS_M_IDLE;
}

void tis_model_set_faults(struct tis_model *m, const struct tis_faults *f)
{
	m->faults = *f;
	m->zero_left = f->burst_zero_polls;
}

static unsigned int burst_cap(const struct tis_model *m)
{
	return m->faults.burst ? m->faults.burst : TIS_BUFFER_MAX;
}

static void run_command(struct tis_model *m)
{
	size_t len = 0;

	m->commands++;
	m->last_locality = (unsigned int)m->active;
	if (!m->backend ||
	    m->backend(m->backend_ctx, (unsigned int)m->active, m->cmd,
		       m->cmd_len, m->rsp, TIS_BUFFER_MAX, &len) ||
	    len > TIS_BUFFER_MAX)
		len = error_rsp(m->rsp, TPM2_RC_FAILURE);
	if (m->faults.rsp_size_override && len >= 6)
		put_be32(m->rsp + 2, m->faults.rsp_size);
	for (size_t i = 0; i < m->faults.extra_rsp_bytes &&
			   len < sizeof(m->rsp); i++)
		m->rsp[len++] = 0xee;
	m->rsp_len = len;
	m->rsp_pos = 0;
}

/* EXECUTION ends once its time has come (never, if data_avail_never). */
static void exec_poll(struct tis_model *m)
{
	if (m->state != TIS_M_EXECUTION || m->faults.data_avail_never ||
	    model_now_us(m) < m->ready_at_us)
		return;
	run_command(m);
	m->state = TIS_M_COMPLETION;
}

/* How much of the response the TPM will hand out (cut_rsp_after). */
static size_t rsp_offered(const struct tis_model *m)
{
	if (m->faults.cut_rsp_after && m->faults.cut_rsp_after < m->rsp_len)
		return m->faults.cut_rsp_after;
	return m->rsp_len;
}

static bool data_avail(const struct tis_model *m)
{
	if (m->state != TIS_M_COMPLETION)
		return false;
	return m->faults.data_avail_sticky || m->rsp_pos < rsp_offered(m);
}

static bool expecting(const struct tis_model *m)
{
	if (m->state != TIS_M_RECEPTION)
		return false;
	if (m->faults.expect_stops_after &&
	    m->cmd_len >= m->faults.expect_stops_after)
		return false;
	return !m->cmd_need || m->cmd_len < m->cmd_need;
}

static uint32_t sts_value(struct tis_model *m)
{
	uint32_t v = TIS_STS_VALID | TIS_STS_SELFTEST_DONE |
		     1u << TIS_STS_FAMILY_SHIFT; /* TPM 2.0 */
	unsigned int burst = 0, cap = burst_cap(m);

	exec_poll(m);
	switch (m->state) {
	case TIS_M_IDLE:
	case TIS_M_EXECUTION:
		break;
	case TIS_M_READY:
		if (!m->faults.never_ready)
			v |= TIS_STS_COMMAND_READY;
		burst = cap;
		break;
	case TIS_M_RECEPTION:
		if (expecting(m))
			v |= TIS_STS_EXPECT;
		burst = (unsigned int)(sizeof(m->cmd) - m->cmd_len);
		break;
	case TIS_M_COMPLETION:
		if (data_avail(m)) {
			v |= TIS_STS_DATA_AVAIL;
			burst = m->rsp_pos < rsp_offered(m) ?
				(unsigned int)(rsp_offered(m) - m->rsp_pos) : 0;
		}
		break;
	}
	if (burst > cap)
		burst = cap;
	if (burst > TIS_STS_BURST_MASK)
		burst = TIS_STS_BURST_MASK;
	if (burst && m->zero_left) {
		burst = 0;
		if (m->zero_left != UINT32_MAX)
			m->zero_left--;
	}
	return v | burst << TIS_STS_BURST_SHIFT;
}

/* After every FIFO byte: the next chunk starts with zero polls again. */
static void chunk_moved(struct tis_model *m)
{
	m->zero_left = m->faults.burst_zero_polls;
}

static void sts_write(struct tis_model *m, uint32_t v)
{
	exec_poll(m);
	if ((v & TIS_STS_COMMAND_CANCEL) && m->state == TIS_M_EXECUTION) {
		m->cancels++;
		m->rsp_len = error_rsp(m->rsp, TPM2_RC_CANCELED);
		m->rsp_pos = 0;
		m->state = TIS_M_COMPLETION;
	}
	if (v & TIS_STS_COMMAND_READY) {
		if (m->faults.never_ready)
			return;
		if (m->state == TIS_M_RECEPTION ||
		    m->state == TIS_M_EXECUTION ||
		    (m->state == TIS_M_COMPLETION && m->rsp_pos < m->rsp_len))
			m->aborts++;
		m->state = TIS_M_READY;
		m->cmd_len = m->cmd_need = 0;
		m->rsp_len = m->rsp_pos = 0;
		chunk_moved(m);
		return;
	}
	if ((v & TIS_STS_GO) && m->state == TIS_M_RECEPTION && !expecting(m) &&
	    m->cmd_need && m->cmd_len == m->cmd_need) {
		m->state = TIS_M_EXECUTION;
		m->ready_at_us = model_now_us(m) +
				 (uint64_t)m->faults.exec_ms * 1000;
		exec_poll(m);
		return;
	}
	if ((v & TIS_STS_RESPONSE_RETRY) && m->state == TIS_M_COMPLETION)
		m->rsp_pos = 0;
}

static void fifo_write(struct tis_model *m, uint8_t b)
{
	if (m->state == TIS_M_READY) {
		m->state = TIS_M_RECEPTION;
		m->cmd_len = m->cmd_need = 0;
	}
	if (m->state != TIS_M_RECEPTION || !expecting(m) ||
	    m->cmd_len >= sizeof(m->cmd)) {
		m->cmd_overflow++;
		return;
	}
	m->cmd[m->cmd_len++] = b;
	if (m->cmd_len == 6) {
		uint32_t need = be32(m->cmd + 2);

		/* A size no command can have: take what came as all of it. */
		m->cmd_need = (need < 10 || need > sizeof(m->cmd)) ?
			      m->cmd_len : need;
	}
	chunk_moved(m);
}

static uint8_t fifo_read(struct tis_model *m)
{
	exec_poll(m);
	if (m->state != TIS_M_COMPLETION || m->rsp_pos >= rsp_offered(m)) {
		m->fifo_overread++;
		return 0xff;
	}
	chunk_moved(m);
	return m->rsp[m->rsp_pos++];
}

static uint8_t access_value(struct tis_model *m, unsigned int l)
{
	uint8_t v = TIS_ACCESS_ESTABLISHMENT;

	if (m->faults.valid_never)
		return v;
	v |= TIS_ACCESS_VALID;
	if (m->active == (int)l)
		v |= TIS_ACCESS_ACTIVE_LOCALITY;
	if (m->requested & (1u << l))
		v |= TIS_ACCESS_REQUEST_USE;
	if (m->requested & ~(1u << l))
		v |= TIS_ACCESS_PENDING_REQUEST;
	return v;
}

static void access_write(struct tis_model *m, unsigned int l, uint8_t v)
{
	if (v & TIS_ACCESS_ACTIVE_LOCALITY) {
		if (m->active == (int)l) {
			m->active = -1;
			m->releases++;
			/* A pending request gets the TPM next. */
			for (int i = TIS_LOCALITIES - 1; i >= 0; i--) {
				if ((m->requested & (1u << i)) &&
				    !m->faults.never_grant) {
					m->requested &= (uint8_t)~(1u << i);
					m->active = i;
					m->grants++;
					break;
				}
			}
		} else {
			m->requested &= (uint8_t)~(1u << l);
		}
	}
	if ((v & TIS_ACCESS_REQUEST_USE) && m->active != (int)l) {
		if (m->active < 0 && !m->faults.never_grant) {
			m->active = (int)l;
			m->grants++;
		} else {
			m->requested |= (uint8_t)(1u << l);
		}
	}
}

/* ---- register accessors ------------------------------------------------ */

static bool holds(struct tis_model *m, unsigned int l)
{
	if (m->active == (int)l)
		return true;
	m->ignored++;
	return false;
}

static uint32_t reg32(struct tis_model *m, unsigned int l, uint32_t r)
{
	switch (r) {
	case TIS_REG_ACCESS:
		return access_value(m, l);
	case TIS_REG_INT_ENABLE:
		return m->int_enable[l];
	case TIS_REG_INTF_CAPS:
		return 0x30000697; /* QEMU's, for TPM 2.0 */
	case TIS_REG_STS:
		return holds(m, l) ? sts_value(m) : 0xffffffff;
	case TIS_REG_INTF_ID:
		return m->faults.intf_id ? m->faults.intf_id : INTF_ID_FIFO;
	case TIS_REG_DID_VID:
		return m->faults.did_vid ? m->faults.did_vid :
					   TIS_MODEL_DID_VID;
	case TIS_REG_RID:
		return 0x01;
	}
	return 0;
}

static uint8_t op_read8(void *opaque, uint32_t off)
{
	struct tis_model *m = opaque;
	unsigned int l = off / TIS_LOCALITY_SIZE;
	uint32_t r = off % TIS_LOCALITY_SIZE;

	if (l >= TIS_LOCALITIES)
		return 0xff;
	if (r == TIS_REG_DATA_FIFO)
		return holds(m, l) ? fifo_read(m) : 0xff;
	return (uint8_t)(reg32(m, l, r & ~3u) >> 8 * (r & 3));
}

static uint32_t op_read32(void *opaque, uint32_t off)
{
	struct tis_model *m = opaque;
	unsigned int l = off / TIS_LOCALITY_SIZE;
	uint32_t r = off % TIS_LOCALITY_SIZE;

	if (l >= TIS_LOCALITIES || (off & 3))
		return 0xffffffff;
	if (r == TIS_REG_DATA_FIFO) {
		uint32_t v = 0;

		for (int i = 0; i < 4; i++)
			v |= (uint32_t)op_read8(opaque, off) << 8 * i;
		return v;
	}
	return reg32(m, l, r);
}

static void op_write8(void *opaque, uint32_t off, uint8_t v)
{
	struct tis_model *m = opaque;
	unsigned int l = off / TIS_LOCALITY_SIZE;
	uint32_t r = off % TIS_LOCALITY_SIZE;

	if (l >= TIS_LOCALITIES)
		return;
	if (r == TIS_REG_ACCESS) {
		access_write(m, l, v);
		return;
	}
	if (r >= TIS_REG_STS && r < TIS_REG_STS + 4) {
		if (holds(m, l))
			sts_write(m, (uint32_t)v << 8 * (r - TIS_REG_STS));
		return;
	}
	if (r == TIS_REG_DATA_FIFO && holds(m, l))
		fifo_write(m, v);
}

static void op_write32(void *opaque, uint32_t off, uint32_t v)
{
	struct tis_model *m = opaque;
	unsigned int l = off / TIS_LOCALITY_SIZE;
	uint32_t r = off % TIS_LOCALITY_SIZE;

	if (l >= TIS_LOCALITIES || (off & 3))
		return;
	switch (r) {
	case TIS_REG_ACCESS:
		access_write(m, l, (uint8_t)v);
		break;
	case TIS_REG_INT_ENABLE:
		if (holds(m, l))
			m->int_enable[l] = v;
		break;
	case TIS_REG_STS:
		if (holds(m, l))
			sts_write(m, v);
		break;
	case TIS_REG_DATA_FIFO:
		for (int i = 0; i < 4; i++)
			op_write8(opaque, off, (uint8_t)(v >> 8 * i));
		break;
	}
}

const struct tis_ops tis_model_ops = {
	.read8 = op_read8,
	.read32 = op_read32,
	.write8 = op_write8,
	.write32 = op_write32,
	.now_ms = op_now_ms,
	.sleep_us = op_sleep_us,
};

/* ---- a stand-in TPM ---------------------------------------------------- */

int tis_fake_tpm(void *ctx, unsigned int locality, const uint8_t *cmd,
		 size_t len, uint8_t *rsp, size_t rspmax, size_t *rsplen)
{
	unsigned int n;

	(void)ctx;
	(void)locality;
	if (rspmax < 10 + 2 + 64)
		return -1;
	if (len != 12 || be32(cmd + 6) != TPM2_CC_GetRandom) {
		*rsplen = error_rsp(rsp, TPM2_RC_COMMAND_CODE);
		return 0;
	}
	n = (unsigned int)cmd[10] << 8 | cmd[11];
	if (n > 64)
		n = 64;
	put_be16(rsp, TPM2_ST_NO_SESSIONS);
	put_be32(rsp + 2, 12 + n);
	put_be32(rsp + 6, 0);
	put_be16(rsp + 10, (uint16_t)n);
	for (unsigned int i = 0; i < n; i++)
		rsp[12 + i] = (uint8_t)i;
	*rsplen = 12 + n;
	return 0;
}
