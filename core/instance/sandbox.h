/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instance's sandbox, in two steps around its start-up:
 *
 * sandbox_isolate, while still root, once the Xen devices and the state
 * directory are open: rlimits, a private mount namespace whose root is an
 * empty read-only tmpfs holding only the state directory, the socket
 * directory (and /dev/xen for the Xen transports), a network namespace of
 * its own for a managed instance (unless the transport is TCP), an empty
 * capability bounding set, then the vTPM's own uid and gid with no
 * capability left.
 *
 * No network: a managed instance may redial its manager (a UNIX socket),
 * so it may make AF_UNIX sockets, in an empty network namespace (no
 * interface, and none of the host's abstract UNIX addresses).  A
 * standalone instance dials nothing: its filter refuses socket(),
 * socketpair() and connect() outright, which leaves it no way to any
 * network or address at all, and a namespace would add nothing but its
 * cost (unshare(CLONE_NEWNET) took 0.49 ms of a 4-5 ms start here).  The
 * sockets it serves were made before the lock; accepted ones are
 * connected already.
 *
 * sandbox_lock, once the sockets listen and the state is loaded:
 * PR_SET_DUMPABLE 0, no_new_privs, and the seccomp allowlist (the one
 * without sockets when no_sockets).  A system
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
	bool no_sockets;       /* standalone: no socket is made after the
				  lock, so no network namespace either */
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
int sandbox_lock(bool no_sockets);

#endif
