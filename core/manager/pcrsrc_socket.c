/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A PCR source (quote.h) that reads a vTPM's PCRs as a guest would: a
 * TPM2_PCR_Read on the vTPM's own unix: socket, run as a manager task.
 * The isolation work replaces it with one that does not use the guest's
 * channel; it stays behind the seam until then.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "manager/manager.h"
#include "manager/pcrread.h"
#include "manager/quote.h"

struct pcr_read_task {
	struct mgr_task task;
	char sock[320];
	struct mgr_pcr_values v;
	mgr_pcr_done done;
	void *arg;
};

static void pcr_read_work(struct mgr_task *t)
{
	struct pcr_read_task *p = (struct pcr_read_task *)t;

	t->rc = pcrread_socket(p->sock, p->v.mask, p->v.v, &p->v.n, t->err,
			       sizeof(t->err));
}

static void pcr_read_done(struct mgr_task *t)
{
	struct pcr_read_task *p = (struct pcr_read_task *)t;

	p->done(p->arg, t->rc, &p->v, t->err);
	free(p);
}

static int socket_read(struct manager *m, struct vtpm_entry *e, uint32_t mask,
		       mgr_pcr_done done, void *arg, char *err, size_t errlen)
{
	const char *tr = e->rec.transport;
	struct pcr_read_task *p;

	if (tr[0] && strncmp(tr, "unix:", 5) != 0) {
		snprintf(err, errlen, "quote needs a unix: transport");
		return -EINVAL;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (tr[0])
		snprintf(p->sock, sizeof(p->sock), "%s", tr + 5);
	else
		snprintf(p->sock, sizeof(p->sock), "%s/%s/tpm", m->cfg->run_dir,
			 e->rec.uuid_str);
	p->v.mask = mask;
	p->done = done;
	p->arg = arg;
	p->task.work = pcr_read_work;
	p->task.done = pcr_read_done;
	mgr_task_submit(m, &p->task);
	return 0;
}

const struct mgr_pcr_source mgr_pcr_source_socket = {
	.read = socket_read,
};
