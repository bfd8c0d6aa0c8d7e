/* SPDX-License-Identifier: BSD-3-Clause */
#include "lib/notify.h"

#include <dlfcn.h>
#include <stdlib.h>

#include "lib/log.h"

/*
 * libsystemd and the seven libraries it pulls in are loaded only when
 * systemd asked for a notification: an instance started by the manager
 * skips their start-up and relocation cost (about 100 KiB of private
 * memory per vTPM).
 */
void vtpm_notify_ready(void)
{
	int (*notify)(int, const char *);
	void *lib;

	if (!getenv("NOTIFY_SOCKET"))
		return;
	lib = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		log_warnx("NOTIFY_SOCKET is set but libsystemd cannot be loaded: %s",
			  dlerror());
		return;
	}
	notify = (int (*)(int, const char *))dlsym(lib, "sd_notify");
	if (!notify || notify(0, "READY=1") < 0)
		log_warnx("sd_notify(READY=1) failed");
	/* The library stays loaded: systemd may be told more later. */
}
