/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control channel end to end: request framing, then execution
 * against a real libtpms engine (in memory: nothing is persisted).  The
 * input is a sequence of requests, each prefixed by a u16 length.  An
 * odd-sized input's last byte picks the instance's options (bit 0: state
 * blobs in the clear allowed, bit 1: a migration key, bit 2: locality 4
 * refused); otherwise plaintext blobs are allowed and a key is set, so
 * blobs go out sealed and come back in both ways.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/migblob.h"
#include "unix-socket/swtpm_ctrl.h"
#include "instance/vtpm.h"
#include "lib/log.h"

static struct vtpm v;
static struct config cfg;

static void set_options(unsigned int bits)
{
	static const uint8_t master[32] = { 1, 2, 3 };

	cfg.allow_plaintext_state = bits & 1;
	v.have_migration_key = bits & 2;
	if (v.have_migration_key &&
	    migblob_derive_key(master, v.migration_key))
		abort();
	v.reject_locality4 = bits & 4;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;

	if (!ready) {
		/* Refusals are warnings: one per input would flood the
		 * log and slow the run; errors still show. */
		log_init("fuzz_ctrl", LOG_LVL_ERR);
		if (engine_setup(&v.eng, TPM_VERSION_2, 0) ||
		    engine_power_on(&v.eng, false))
			abort();
		engine_startup_clear(&v.eng);
		config_defaults(&cfg);
		v.cfg = &cfg;
		ready = 1;
	}
	if (size & 1) {
		set_options(data[size - 1]);
		size--;
	} else {
		set_options(3);
	}
	while (size >= 2) {
		size_t n = (size_t)(data[0] << 8 | data[1]);
		struct ctrl_req req;
		struct ctrl_reply rep;

		data += 2;
		size -= 2;
		if (n > size)
			n = size;
		if (ctrl_frame(data, n, &req) == 1 &&
		    req.code != CTRL_SHUTDOWN && req.code != CTRL_SET_DATAFD) {
			if (ctrl_execute(&v, &req, &rep) == 0)
				free(rep.buf);
		}
		data += n;
		size -= n;
	}
	/* Leave the engine running for the next input. */
	if (!v.eng.running) {
		engine_power_on(&v.eng, false);
		engine_startup_clear(&v.eng);
	}
	v.eng.dirty = false;
	return 0;
}
