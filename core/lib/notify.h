/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef VTPM_NOTIFY_H
#define VTPM_NOTIFY_H

/* Connects to NOTIFY_SOCKET, if set (before a sandbox hides it). */
void vtpm_notify_prepare(void);
/* sd_notify(READY=1) when NOTIFY_SOCKET is set; otherwise nothing. */
void vtpm_notify_ready(void);

#endif
