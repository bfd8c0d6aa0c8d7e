/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A software TPM register window (TIS 1.3 / PTP FIFO, five localities)
 * for testing hal/tis-mmio without hardware.  It assembles the command
 * written to DATA_FIFO, hands it on tpmGo to a backend (a fake TPM here,
 * real libtpms in the tests) and serves the response, and it misbehaves
 * on request (struct tis_faults).  Plug it in with tis_model_ops and the
 * model as opaque.  Single-threaded, like the TCTI calling it.
 */
#ifndef VTPM_TIS_MODEL_H
#define VTPM_TIS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tis-mmio/tcti_tis.h"

#define TIS_MODEL_DID_VID 0x00011014u /* what QEMU's tpm-tis reports */
#define TIS_MODEL_RSP_MAX (TIS_BUFFER_MAX + 256)

/*
 * Runs one command: writes at most rspmax bytes to rsp and their count to
 * *rsplen (any count, even one no TPM would send).  Returns 0, or nonzero
 * to make the model answer TPM_RC_FAILURE.
 */
typedef int (*tis_backend_fn)(void *ctx, unsigned int locality,
			      const uint8_t *cmd, size_t len, uint8_t *rsp,
			      size_t rspmax, size_t *rsplen);

/* All zero: a well-behaved TPM. */
struct tis_faults {
	unsigned int burst;          /* burstCount offered; 0 = 4096 */
	unsigned int burst_zero_polls; /* STS reads with burstCount 0 before
				      * each chunk; UINT32_MAX = forever */
	bool never_ready;            /* STS.commandReady never reads set,
				      * writes of it are ignored */
	bool never_grant;            /* requestUse is never granted */
	bool valid_never;            /* ACCESS.tpmRegValidSts stays clear */
	bool data_avail_never;       /* tpmGo runs nothing: no response */
	bool data_avail_sticky;      /* dataAvail stays set after the end */
	unsigned int exec_ms;        /* the response appears this late */
	unsigned int expect_stops_after; /* expect clears after N bytes */
	size_t extra_rsp_bytes;      /* bytes beyond the header's size */
	bool rsp_size_override;      /* replace the response size field */
	uint32_t rsp_size;
	uint32_t did_vid;            /* 0: TIS_MODEL_DID_VID */
	uint32_t intf_id;            /* 0: FIFO (0x00082100, as QEMU) */
	unsigned int cut_rsp_after;  /* dataAvail drops after N bytes (0 off) */
};

enum tis_model_state {
	TIS_M_IDLE,
	TIS_M_READY,
	TIS_M_RECEPTION,
	TIS_M_EXECUTION,
	TIS_M_COMPLETION,
};

struct tis_model {
	struct tis_faults faults;
	tis_backend_fn backend;
	void *backend_ctx;

	/* Time: real (CLOCK_MONOTONIC, nanosleep) or virtual, where sleeping
	 * is what moves the clock (fuzzing, fast tests of long timeouts). */
	bool virtual_clock;
	uint64_t vclock_us;

	/* Register state. */
	int active;                  /* active locality, -1 none */
	uint8_t requested;           /* bit l: locality l asked for use */
	uint32_t int_enable[TIS_LOCALITIES];
	enum tis_model_state state;
	uint8_t cmd[TIS_BUFFER_MAX];
	size_t cmd_len, cmd_need;    /* need: 0 until the header is in */
	uint8_t rsp[TIS_MODEL_RSP_MAX];
	size_t rsp_len, rsp_pos;
	uint64_t ready_at_us;        /* EXECUTION ends (exec_ms) */
	unsigned int zero_left;      /* burst_zero_polls still to serve */

	/* What happened, for assertions. */
	unsigned int commands;       /* run by the backend */
	unsigned int last_locality;  /* of the last command run */
	unsigned int cancels;        /* commandCancel during execution */
	unsigned int aborts;         /* commandReady before the response
				      * was read to its end */
	unsigned int grants, releases;
	unsigned int cmd_overflow;   /* bytes written past the command */
	unsigned int fifo_overread;  /* FIFO reads with no data */
	unsigned int ignored;        /* accesses from a locality not held */
};

/* opaque = struct tis_model *. */
extern const struct tis_ops tis_model_ops;

/*
 * Firmware leaves locality 0 active, as SeaBIOS does; the TPM starts
 * idle (commandReady clear).
 */
void tis_model_init(struct tis_model *m, tis_backend_fn fn, void *ctx);

/* Replaces the faults; they apply from the next register access on. */
void tis_model_set_faults(struct tis_model *m, const struct tis_faults *f);

/*
 * A stand-in TPM 2.0: GetRandom returns bytes 0, 1, 2, ... (as many as
 * asked, at most 64); any other command TPM_RC_COMMAND_CODE.
 */
int tis_fake_tpm(void *ctx, unsigned int locality, const uint8_t *cmd,
		 size_t len, uint8_t *rsp, size_t rspmax, size_t *rsplen);

#endif
