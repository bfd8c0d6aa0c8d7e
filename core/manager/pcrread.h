/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TPM2_PCR_Read of a TPM 2.0's sha256 PCRs over a unix socket speaking
 * plain TPM commands (a vTPM's guest channel).  No manager state: the
 * PCR source of pcrsrc_socket.c runs it on the task queue.
 */
#ifndef VTPM_MANAGER_PCRREAD_H
#define VTPM_MANAGER_PCRREAD_H

#include <stddef.h>
#include <stdint.h>

#define PCRREAD_MAX 24

/* The sha256 PCRs in mask (within 0..23) into values[0..*n), ascending
 * index.  0 or a negative errno, err set. */
int pcrread_socket(const char *path, uint32_t mask, uint8_t (*values)[32],
		   unsigned int *n, char *err, size_t errlen);

#endif
