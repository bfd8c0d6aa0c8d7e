/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instance's sandbox, in two steps around its start-up:
 *
 * sandbox_isolate, while still root, once the Xen devices and the state
 * directory are open: rlimits, a private mount namespace whose root is an
 * empty read-only tmpfs holding only the state directory, the socket
 * directory (and /dev/xen for the Xen transports), no network namespace
 * of the host unless the transport is TCP, an empty capability bounding
 * set, then the vTPM's own uid and gid with no capability left.
 *
 * sandbox_lock, once the sockets listen and the state is loaded:
 * PR_SET_DUMPABLE 0, no_new_privs, and the seccomp allowlist.  A system
 * call outside it raises SIGSYS; the handler writes its number to stderr
 * (the manager's log) and the process dies of SIGSYS.
 */
#ifndef VTPM_INSTANCE_SANDBOX_H
#define VTPM_INSTANCE_SANDBOX_H

#include <stdbool.h>
#include <sys/types.h>

struct sandbox_spec {
	bool set_ids;          /* become uid/gid (else keep the current) */
	uid_t uid;
	gid_t gid;
	bool keep_net;         /* TCP transport: the host's network */
	bool own_ids;          /* uid is this vTPM's alone: RLIMIT_NPROC */
	int state_dirfd;       /* bound at state_dir in the new root */
	const char *state_dir;
	int run_dirfd;         /* -1, or bound at run_dir */
	const char *run_dir;
	bool xen_dev;          /* bind /dev/xen too (own-domain dialing) */
};

/* 0 or -errno (with a message logged); partial isolation is never
 * reported as success. */
/* False in the AddressSanitizer builds (tests only): LeakSanitizer needs
 * /proc and ptrace at exit, which the sandbox takes away. */
bool sandbox_available(void);
int sandbox_isolate(const struct sandbox_spec *s);
int sandbox_lock(void);

#endif
