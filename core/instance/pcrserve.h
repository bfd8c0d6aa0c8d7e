/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instance's answers to the manager's requests on its link
 * (PCR_READ: the vTPM's sha256 PCRs, read through the engine on its job
 * queue, for the manager's deep quote).  See docs/manager-protocol.md.
 */
#ifndef VTPM_INSTANCE_PCRSERVE_H
#define VTPM_INSTANCE_PCRSERVE_H

struct vtpm;
struct pcrserve;

/* Serves the manager's requests on v's link from now on, until
 * pcrserve_stop.  0, -EOPNOTSUPP
 * (a link that carries none), or a negative errno. */
int pcrserve_start(struct vtpm *v, struct pcrserve **out);

/* After the loop ended: no more requests, handles closed, s freed
 * (NULL: nothing to do). */
void pcrserve_stop(struct vtpm *v, struct pcrserve *s);

#endif
