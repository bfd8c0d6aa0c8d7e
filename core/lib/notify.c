/* SPDX-License-Identifier: BSD-3-Clause */
#include "lib/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/log.h"

/*
 * The readiness protocol is one datagram, "READY=1", to the UNIX socket
 * NOTIFY_SOCKET names ('@' first: an abstract address).  The socket is
 * connected by vtpm_notify_prepare, before a sandboxed instance loses
 * the file system and the network namespace where that name lives.
 */
static int notify_fd = -1;

void vtpm_notify_prepare(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len;
	int fd;

	if (!path || notify_fd >= 0)
		return;
	len = strlen(path);
	if (len < 2 || len >= sizeof(sa.sun_path) ||
	    (path[0] != '/' && path[0] != '@')) {
		log_warnx("NOTIFY_SOCKET=%s: not a socket path", path);
		return;
	}
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    connect(fd, (struct sockaddr *)&sa,
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0) {
		log_warn("NOTIFY_SOCKET %s", path);
		if (fd >= 0)
			close(fd);
		return;
	}
	notify_fd = fd;
}

void vtpm_notify_ready(void)
{
	static const char msg[] = "READY=1";

	vtpm_notify_prepare();
	if (notify_fd < 0)
		return;
	if (send(notify_fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL) < 0)
		log_warn("sd_notify(READY=1)");
	/* Nothing else is ever sent.  A datagram socket can still be
	 * pointed at any address (sendto), in the network namespace it was
	 * made in, the host's: a sandboxed process keeps none. */
	close(notify_fd);
	notify_fd = -1;
}
