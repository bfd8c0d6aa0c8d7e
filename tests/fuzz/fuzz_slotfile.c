/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The slot file parser and its load rule under a fixed key.  Random bytes
 * almost never carry a valid header MAC, so most inputs are laid out as a
 * slot file first: the first byte picks the shape, the header fields come
 * from the input (its MAC recomputed), and each slot is either raw input
 * bytes or input bytes sealed as a state (so that the parser past the tag
 * sees attacker-chosen plaintext, as with a stolen key).
 *
 * Invariants: every refusal is a state file verdict; a chosen winner is
 * valid and the newest valid slot; every torn slot beside it claims the
 * generation next to the winner's; a hash found names a valid slot.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bytes.h"
#include "proto/statefile.h"

#define SMALL_SLOT SLOTFILE_MIN_SLOT

static void check_view(const struct slotfile_view *v)
{
	int w, c;
	enum statefile_err rc = slotfile_choose(v, &w, &c);

	if (rc != SF_OK) {
		if (!statefile_is_err(rc) || w != -1)
			abort();
		return;
	}
	if (w < 0 || (uint32_t)w >= v->nslots ||
	    v->slot[w].kind != SLOT_VALID)
		abort();
	for (uint32_t i = 0; i < v->nslots; i++) {
		const struct slotfile_slot *s = &v->slot[i];

		if (s->kind == SLOT_BAD)
			abort();
		if (s->kind == SLOT_VALID &&
		    s->generation > v->slot[w].generation)
			abort();
		if (s->kind == SLOT_TORN &&
		    s->generation != v->slot[w].generation + 1 &&
		    s->generation + 1 != v->slot[w].generation)
			abort();
	}
	for (uint32_t i = 0; i < v->nslots; i++) {
		int j = slotfile_find_hash(v, v->slot[i].hash);

		if (j >= 0 && v->slot[j].kind != SLOT_VALID)
			abort();
		if (v->slot[i].kind == SLOT_VALID && j < 0)
			abort();
	}
}

static size_t take(const uint8_t **data, size_t *size, size_t n)
{
	if (n > *size)
		n = *size;
	*data += n;
	*size -= n;
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct state_keys keys;
	static int ready;
	struct statefile_expect exp = { .check_uuid = 0, .family = 2 };
	struct slotfile_view v;
	uint8_t *file;
	size_t len;
	enum statefile_err rc;

	if (!ready) {
		uint8_t master[32] = { 1 };
		state_keys_derive(master, &keys);
		ready = 1;
	}
	if (size == 0 || !(data[0] & 1)) {
		/* Raw bytes as a whole file. */
		rc = slotfile_scan(&keys, data, size, &exp, &v);
		if (rc == SF_OK)
			check_view(&v);
		else if (!statefile_is_err(rc))
			abort();
		return 0;
	}
	/* A laid-out file: shape byte, then for each slot a mode byte, a
	 * generation byte, a length byte pair and that many bytes. */
	{
		uint8_t shape = data[0];
		const uint8_t *slotp[SLOTFILE_NSLOTS] = { NULL, NULL };
		size_t lens[SLOTFILE_NSLOTS] = { 0, 0 };
		uint8_t *sealed[SLOTFILE_NSLOTS] = { NULL, NULL };

		take(&data, &size, 1);
		for (int i = 0; i < SLOTFILE_NSLOTS; i++) {
			uint8_t mode, gen;
			size_t n;
			const uint8_t *body;

			if (size < 4)
				break;
			mode = data[0];
			gen = data[1];
			n = ((size_t)data[2] << 8 | data[3]) % (SMALL_SLOT / 2);
			take(&data, &size, 4);
			body = data;
			n = take(&data, &size, n);
			if (mode & 1) {
				struct statefile_meta meta = {
					.family = (mode & 2) ? 1 : 2,
					.generation = gen,
				};
				if (statefile_seal(&keys, &meta, body, n,
						   &sealed[i], &lens[i]))
					continue;
				if (mode & 4 && lens[i] > 60)
					sealed[i][60 + gen % (lens[i] - 60)] ^= 1;
				slotp[i] = sealed[i];
			} else {
				slotp[i] = body;
				lens[i] = n;
			}
		}
		if (slotfile_build(&keys, SMALL_SLOT, slotp, lens, &file,
				   &len) == SF_OK) {
			if (shape & 2) /* a hostile, authentic header */
				be32_put(file + 12, (uint32_t)shape << 12);
			if (shape & 4)
				be16_put(file + 10, shape >> 4);
			if (shape & 6)
				slotfile_header_seal(&keys, file);
			if (shape & 8)
				len -= (size_t)(shape >> 4) * 512;
			rc = slotfile_scan(&keys, file, len, &exp, &v);
			if (rc == SF_OK)
				check_view(&v);
			else if (!statefile_is_err(rc))
				abort();
			free(file);
		}
		free(sealed[0]);
		free(sealed[1]);
	}
	return 0;
}
