/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instance served over a swtpm-compatible socket pair (unix_socket.c):
 * a UNIX or TCP data socket and its control channel (swtpm_ctrl.c).
 */
#ifndef VTPM_UNIX_SOCKET_H
#define VTPM_UNIX_SOCKET_H

#include "instance/vtpm.h"

extern const struct transport_ops unix_socket_transport_ops;

#endif
