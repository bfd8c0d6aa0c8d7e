/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager protocol's server side, one per vTPM, over an abstract
 * connection to its instance: the socketpair of a local instance (here),
 * or the ring of one in its own domain (xenmgr.c).  The connection hands
 * over one request at a time (mgr_link_request) and takes its answer
 * (ops->send); identity is the connection itself: the manager made it
 * for this vTPM.  The manager asks the instance too, on the same
 * connection: PCR_READ (ops->request), one at a time, for deep quotes;
 * the answer comes back as an MRSP frame (mgr_link_answer).
 */
#ifndef VTPM_MANAGER_LINK_H
#define VTPM_MANAGER_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vtpm_entry;
struct mgr_pcr_values;
struct mgr_req;
struct mgr_rsp;

typedef void (*mgr_pcr_done)(void *arg, int rc, const struct mgr_pcr_values *v,
			     const char *err);

struct mgr_conn_ops {
	/* The answer to the request handed over; afterwards the
	 * connection may hand over the next one. */
	void (*send)(void *conn, const uint8_t *frame, size_t len);
	/* No more traffic; the connection releases itself. */
	void (*close)(void *conn);
	/* A request of the manager's to the instance (an MREQ frame); 0 or
	 * a negative errno.  NULL: this connection cannot carry one. */
	int (*request)(void *conn, const uint8_t *frame, size_t len);
	/* XEN_PEER and XEN_PEER_STATE (the instance in its own domain asks
	 * about the frontend domain its ring serves): sets rsp->status and
	 * the answer.  NULL: the connection has no Xen domain behind it,
	 * and the request is refused. */
	void (*xen_peer)(void *conn, const struct mgr_req *req,
			 struct mgr_rsp *rsp);
};

struct mgr_link {
	const struct mgr_conn_ops *ops; /* NULL: no connection */
	void *conn;
	unsigned int epoch;  /* answers of an earlier connection are dropped */
	bool busy;           /* a request is being served */
	/* The manager's PCR_READ in flight: its waiter.  On a connection
	 * without ops->request it waits in a mailbox for the instance's
	 * PCR_FETCH (pcr_fetched once handed out) and PCR_REPORT. */
	mgr_pcr_done pcr_done;
	void *pcr_arg;
	uint32_t pcr_mask;
	bool pcr_mailbox, pcr_fetched;
};

/* A new connection for e (it replaces none: close the old first). */
void mgr_link_attach(struct vtpm_entry *e, const struct mgr_conn_ops *ops,
		     void *conn);
/* One request arrived on e's connection. */
void mgr_link_request(struct vtpm_entry *e, const uint8_t *frame, size_t len);
/* An answer (MRSP frame) to the manager's request arrived on e's link. */
void mgr_link_answer(struct vtpm_entry *e, const uint8_t *frame, size_t len);
/* What is being prepared answers nobody (the peer reset or misbehaved);
 * a PCR read in flight fails. */
void mgr_link_reset(struct vtpm_entry *e);
/* Detaches e's connection and closes it. */
void mgr_link_close(struct vtpm_entry *e);

/* The socketpair of a local instance as e's connection (owns fd);
 * m->links_open counts them until they are released. */
int mgr_link_open_socket(struct vtpm_entry *e, int fd);

#endif
