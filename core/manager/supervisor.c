/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Instance processes (supervisor.h): one per running vTPM, started with a
 * socketpair as its manager link (fd 3), as an unprivileged user when the
 * manager runs as root; restarted with backoff when they die; stopped
 * with SIGTERM.  What happens is reported through m->sup.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/store.h"
#include "manager/manager.h"
#include "manager/migrate.h"
#include "manager/supervisor.h"

/* Someone waiting for an instance to be stopped and reaped. */
struct sup_waiter {
	struct list_node node;
	void (*cb)(void *arg);
	void *arg;
};

const char *sup_state_name(enum child_state s)
{
	switch (s) {
	case CHILD_STOPPED:
		return "stopped";
	case CHILD_RUNNING:
		return "running";
	case CHILD_BACKOFF:
		return "restarting";
	case CHILD_STOPPING:
		return "stopping";
	}
	return "?";
}

unsigned int sup_backoff_next(unsigned int last_ms, uint64_t up_ms)
{
	unsigned int next;

	if (up_ms >= SUP_STABLE_MS || last_ms == 0)
		next = SUP_BACKOFF_MIN_MS;
	else if (last_ms < SUP_BACKOFF_MAX_MS)
		next = last_ms * 2;
	else
		next = last_ms;
	return next > SUP_BACKOFF_MAX_MS ? SUP_BACKOFF_MAX_MS : next;
}

void sup_child_init(struct sup_child *c)
{
	memset(c, 0, sizeof(*c));
	list_init(&c->waiters);
}

bool sup_stopped(const struct vtpm_entry *e)
{
	return e->child.state == CHILD_STOPPED && !e->child.proc_open;
}

bool sup_has_waiters(const struct vtpm_entry *e)
{
	return !list_empty(&e->child.waiters);
}

bool sup_all_stopped(struct manager *m)
{
	struct vtpm_entry *e;

	mgr_foreach_entry(e, m)
		if (!sup_stopped(e))
			return false;
	return true;
}

/* Stopped and reaped: the waiters, then whoever listens. */
static void report_stopped(struct vtpm_entry *e)
{
	struct list_node *n, *tmp;
	struct list_node ready;

	list_init(&ready);
	list_for_each_safe(n, tmp, &e->child.waiters) {
		list_remove(n);
		list_push_back(&ready, n);
	}
	/* The waiters first: what they queue (a stop's commit) is then
	 * ahead of whatever the report leads to (the shutdown commit). */
	list_for_each_safe(n, tmp, &ready) {
		struct sup_waiter *w = list_item(n, struct sup_waiter, node);

		list_remove(n);
		w->cb(w->arg);
		free(w);
	}
	if (e->m->sup && e->m->sup->stopped)
		e->m->sup->stopped(e);
}

static void report_released(struct vtpm_entry *e)
{
	if (e->m->sup && e->m->sup->released)
		e->m->sup->released(e);
}

void sup_wait_stopped(struct vtpm_entry *e, void (*cb)(void *arg), void *arg)
{
	struct sup_waiter *w;

	if (sup_stopped(e)) {
		cb(arg);
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		fatalx("out of memory");
	w->cb = cb;
	w->arg = arg;
	list_push_back(&e->child.waiters, &w->node);
}

/*
 * name below parentfd (parent: its path, for messages), a directory
 * owned by uid:gid with mode, created if absent.  Owner and mode are set
 * through a descriptor opened without following a link, never by name: a
 * link planted at name must not make root chown its target.  A directory
 * that someone other than us or uid already owns is refused.
 */
static int own_dir(struct vtpm_entry *e, int parentfd, const char *parent,
		   const char *name, mode_t mode, uid_t uid, gid_t gid,
		   int *fdp)
{
	struct manager *m = e->m;
	struct stat st;
	int fd, rc;

	*fdp = -1;
	rc = store_dir_open(parentfd, name, mode & 0777, &fd);
	if (rc) {
		log_warnx("vTPM %s: %s/%s: %s", e->rec.uuid_str, parent, name,
			  rc == -ENOTDIR ? "not a directory (a link planted "
					   "there?): refusing it"
					 : strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
	} else if (st.st_uid != geteuid() &&
		   !(m->drop_privileges && st.st_uid == uid)) {
		log_warnx("vTPM %s: %s/%s is owned by uid %u, neither the "
			  "manager's nor the vTPM's: refusing it",
			  e->rec.uuid_str, parent, name, (unsigned)st.st_uid);
		rc = -EPERM;
	} else if (m->drop_privileges && fchown(fd, uid, gid) < 0) {
		rc = -errno;
	} else if (fchmod(fd, mode) < 0) {
		rc = -errno;
	}
	if (rc) {
		if (rc != -EPERM)
			log_warnx("vTPM %s: %s/%s: %s", e->rec.uuid_str, parent,
				  name, strerror(-rc));
		close(fd);
		return rc;
	}
	*fdp = fd;
	return 0;
}

/*
 * The files of a state directory that changed hands (a vTPM created
 * before instance-uids, now given its own uid): regular files with one
 * link only, by name relative to the directory, never following a link.
 */
static void own_files(struct vtpm_entry *e, int dfd, uid_t uid, gid_t gid)
{
	struct dirent *de;
	struct stat st;
	int fd = dup(dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d))) {
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
		    (st.st_uid == uid && st.st_gid == gid))
			continue;
		if (fchownat(dfd, de->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
			log_warnx("vTPM %s: cannot give %s to uid %u: %s",
				  e->rec.uuid_str, de->d_name, (unsigned)uid,
				  strerror(errno));
	}
	closedir(d);
}

/*
 * STATE_DIR/vtpms/UUID: the vTPM's uid only (0700).  It and vtpms/ are
 * made durable before the instance writes any state there (the power-cut
 * simulator dropped them after acknowledged writes): once, when it is
 * made (a directory that a start finds was made durable by the start
 * that made it, or a power cut would have taken it), so later starts
 * do no flush on the loop.
 */
static int state_dir(struct vtpm_entry *e, uid_t uid, gid_t gid)
{
	struct manager *m = e->m;
	const char *sd = m->cfg->state_dir, *why;
	struct stat st;
	bool made;
	int vfd, dfd, rc;

	rc = store_dir_open(m->dirfd, "vtpms", 0711, &vfd);
	if (rc) {
		log_warnx("vTPM %s: %s/vtpms: %s", e->rec.uuid_str, sd,
			  rc == -ENOTDIR ? "not a directory" : strerror(-rc));
		return rc;
	}
	why = store_dir_unsafe(vfd, geteuid(), geteuid());
	if (why) {
		log_warnx("vTPM %s: %s/vtpms %s: refusing it", e->rec.uuid_str,
			  sd, why);
		close(vfd);
		return -EPERM;
	}
	made = fstatat(vfd, e->rec.uuid_str, &st, AT_SYMLINK_NOFOLLOW) < 0;
	rc = own_dir(e, vfd, "vtpms", e->rec.uuid_str, 0700, uid, gid, &dfd);
	if (!rc) {
		if (m->drop_privileges)
			own_files(e, dfd, uid, gid);
		close(dfd);
		if (made && (fsync(vfd) < 0 || fsync(m->dirfd) < 0)) {
			rc = -errno;
			log_warnx("vTPM %s: cannot make %s/vtpms durable: %s",
				  e->rec.uuid_str, sd, strerror(-rc));
		}
	}
	close(vfd);
	return rc;
}

/*
 * RUN_DIR/UUID, where the instance binds its sockets.  RUN_DIR must be
 * ours and writable by no one else (else anyone could plant a link in
 * it).  RUN_DIR/UUID is the vTPM's: 0700, or 02750 with group
 * client-group, so the sockets created in it take that group (setgid
 * directory) and mode 0660: the manager (root), the vTPM's uid and the
 * client group reach them; another vTPM's uid and other users cannot
 * even look up their names.
 */
static int run_dir(struct vtpm_entry *e, uid_t uid, gid_t gid)
{
	struct manager *m = e->m;
	const char *rd = m->cfg->run_dir, *why;
	int rfd, dfd, rc;

	if (mkdir(rd, 0755) < 0 && errno != EEXIST)
		return -errno;
	rfd = open(rd, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rfd < 0) {
		rc = -errno;
		log_warnx("vTPM %s: run directory %s: %s", e->rec.uuid_str, rd,
			  strerror(-rc));
		return rc;
	}
	why = store_dir_unsafe(rfd, geteuid(), geteuid());
	if (why) {
		log_warnx("vTPM %s: run directory %s %s: refusing to create "
			  "sockets there", e->rec.uuid_str, rd, why);
		close(rfd);
		return -EPERM;
	}
	rc = own_dir(e, rfd, rd, e->rec.uuid_str,
		     m->client_group ? 02750 : 0700, uid,
		     m->client_group ? m->client_gid : gid, &dfd);
	if (!rc)
		close(dfd);
	close(rfd);
	return rc;
}

static void timer_closed(uv_handle_t *h)
{
	struct vtpm_entry *e = h->data;

	e->child.timer_open = false;
	report_released(e);
}

static void proc_closed(uv_handle_t *h)
{
	struct vtpm_entry *e = h->data;

	e->child.proc_open = false;
	if (e->child.state == CHILD_STOPPED)
		report_stopped(e);
	report_released(e);
}

static void restart_timer_cb(uv_timer_t *t)
{
	struct vtpm_entry *e = t->data;

	if (e->child.state == CHILD_BACKOFF && e->rec.autostart &&
	    !e->m->stopping) {
		e->child.state = CHILD_STOPPED;
		if (sup_start(e) < 0) {
			/* It could not even start (binary gone, state dir
			 * unusable): the same doubling backoff as for a
			 * crash, never a fixed 50 ms spin. */
			e->child.backoff_ms =
			    sup_backoff_next(e->child.backoff_ms, 0);
			e->child.state = CHILD_BACKOFF;
			log_warnx("vTPM %s: its instance did not start; next "
				  "try in %u ms", e->rec.uuid_str,
				  e->child.backoff_ms);
			uv_timer_start(&e->child.timer, restart_timer_cb,
				       e->child.backoff_ms, 0);
		}
	}
}

static void kill_timer_cb(uv_timer_t *t)
{
	struct vtpm_entry *e = t->data;

	if (e->child.state == CHILD_STOPPING && e->child.proc_open) {
		log_warnx("vTPM %s: instance ignored SIGTERM for %d s; killing it",
			  e->rec.uuid_str, SUP_KILL_AFTER_MS / 1000);
		uv_process_kill(&e->child.proc, SIGKILL);
	}
}

static void ensure_timer(struct vtpm_entry *e)
{
	if (e->child.timer_open)
		return;
	uv_timer_init(e->m->loop, &e->child.timer);
	e->child.timer.data = e;
	e->child.timer_open = true;
}

static void timer_stop(struct vtpm_entry *e)
{
	if (e->child.timer_open &&
	    !uv_is_closing((uv_handle_t *)&e->child.timer))
		uv_timer_stop(&e->child.timer);
}

static void child_exited(uv_process_t *p, int64_t status, int sig)
{
	struct vtpm_entry *e = p->data;
	struct sup_child *c = &e->child;
	struct manager *m = e->m;
	uint64_t up = mgr_now(m) - c->started_ms;

	c->last_exit = (int)status;
	uv_close((uv_handle_t *)&c->proc, proc_closed);
	if (m->sup && m->sup->exited)
		m->sup->exited(e, status, sig);
	if (c->state == CHILD_STOPPING || !e->rec.autostart || m->stopping) {
		log_info("vTPM %s: instance stopped (status %lld%s%s)",
			 e->rec.uuid_str, (long long)status,
			 sig ? ", signal " : "", sig ? strsignal(sig) : "");
		c->state = CHILD_STOPPED;
		timer_stop(e);
		/* reported once reaped: proc_closed */
		return;
	}
	if (sig == SIGSYS)
		log_warnx("vTPM %s: instance killed by SIGSYS (seccomp): it made "
			  "a system call outside its allowlist; its last log "
			  "line names the call (also: ausearch -m SECCOMP)",
			  e->rec.uuid_str);
	c->backoff_ms = sup_backoff_next(c->backoff_ms, up);
	c->restarts++;
	if (status == 0 && !sig)
		/* Its client stopped it (CMD_SHUTDOWN, as QEMU sends when
		 * its guest powers off): no crash, but the same backoff, so
		 * a client cannot make it restart in a loop. */
		log_info("vTPM %s: instance exited by itself (status 0: its "
			 "client shut it down) after %llu ms; autostart: "
			 "restart %u in %u ms",
			 e->rec.uuid_str, (unsigned long long)up, c->restarts,
			 c->backoff_ms);
	else
		log_warnx("vTPM %s: instance died (status %lld%s%s) after %llu "
			  "ms; restart %u in %u ms",
			  e->rec.uuid_str, (long long)status,
			  sig ? ", signal " : "", sig ? strsignal(sig) : "",
			  (unsigned long long)up, c->restarts, c->backoff_ms);
	c->state = CHILD_BACKOFF;
	ensure_timer(e);
	uv_timer_start(&c->timer, restart_timer_cb, c->backoff_ms, 0);
	if (m->sup && m->sup->backoff)
		m->sup->backoff(e, c->backoff_ms);
}

/*
 * Libraries open descriptors without O_CLOEXEC (tpm2-tss's TCTI socket to
 * the physical TPM among them).  An instance must not inherit them: it
 * has no business with the TPM, and swtpm, serving one client at a time,
 * would wait on a connection a child keeps open after the manager closed
 * its copy.  The stdio and link descriptors are dup2()ed by uv_spawn,
 * which clears the flag on the child's copies.
 */
static void cloexec_all(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		long fd;
		int fl;

		if (config_parse_long(de->d_name, 3, 1 << 30, &fd) ||
		    fd == dirfd(d))
			continue;
		fl = fcntl((int)fd, F_GETFD);
		if (fl >= 0 && !(fl & FD_CLOEXEC))
			fcntl((int)fd, F_SETFD, fl | FD_CLOEXEC);
	}
	closedir(d);
}

int sup_start(struct vtpm_entry *e)
{
	struct manager *m = e->m;
	struct sup_child *c = &e->child;
	const struct config *cfg = m->cfg;
	char dir[300], rundir[300], transport[320], domid[24], devid[16];
	char ids[80];
	uid_t uid;
	gid_t gid;
	uv_process_options_t o;
	uv_stdio_container_t stdio[4];
	const char *lvl;
	char *argv[32];
	int fds[2], rc, i = 0;

	if (c->state == CHILD_RUNNING || c->state == CHILD_STOPPING)
		return 0;
	if (mgr_entry_frozen(e))
		return -EPERM; /* exported, or an export or import under way */
	if (c->proc_open) {
		/* The last process is still being reaped: try again soon. */
		c->state = CHILD_BACKOFF;
		c->backoff_ms = 50;
		ensure_timer(e);
		uv_timer_start(&c->timer, restart_timer_cb, 50, 0);
		return 0;
	}
	mgr_entry_ids(e, &uid, &gid);
	snprintf(dir, sizeof(dir), "%s/vtpms/%s", cfg->state_dir,
		 e->rec.uuid_str);
	rc = state_dir(e, uid, gid);
	if (rc)
		return rc;
	if (e->xd.active) {
		snprintf(transport, sizeof(transport), "xen-ring");
	} else if (e->rec.transport[0]) {
		snprintf(transport, sizeof(transport), "%s", e->rec.transport);
	} else {
		snprintf(rundir, sizeof(rundir), "%s/%s", cfg->run_dir,
			 e->rec.uuid_str);
		rc = run_dir(e, uid, gid);
		if (rc)
			return rc;
		snprintf(transport, sizeof(transport), "unix:%s/tpm", rundir);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
		return -errno;
	snprintf(domid, sizeof(domid), "%ld", e->rec.domid);
	lvl = log_get_level() >= LOG_LVL_DEBUG ? "debug" : "info";
	argv[i++] = m->exe;
	argv[i++] = "--role=instance";
	argv[i++] = "--domid";
	argv[i++] = domid;
	argv[i++] = "--uuid";
	argv[i++] = e->rec.uuid_str;
	argv[i++] = "--transport";
	argv[i++] = transport;
	argv[i++] = "--state-dir";
	argv[i++] = dir;
	argv[i++] = "--manager";
	argv[i++] = "fd:3";
	argv[i++] = "--tpm-version";
	argv[i++] = e->rec.tpm_version == 1 ? "1.2" : "2.0";
	argv[i++] = "--log-level";
	argv[i++] = (char *)lvl;
	if (e->rec.allow_plaintext_state)
		argv[i++] = "--allow-plaintext-state";
	if (e->xd.active) {
		snprintf(domid, sizeof(domid), "%u", e->xd.fe);
		snprintf(devid, sizeof(devid), "%u", e->xd.dev);
		argv[i++] = "--devid";
		argv[i++] = devid;
	}
	/* Started as root: the instance opens what needs privilege (the
	 * Xen devices, its state directory), shuts itself in (private
	 * mount and network namespaces) and becomes the vTPM's uid and gid
	 * itself, before it reads any state (instance/sandbox.h). */
	if (m->drop_privileges) {
		/* UID:GID only for ids of its own (the instance then caps
		 * RLIMIT_NPROC, counted per uid); instance-user's by name. */
		if (uid != m->inst_uid)
			snprintf(ids, sizeof(ids), "%u:%u", (unsigned)uid,
				 (unsigned)gid);
		else
			snprintf(ids, sizeof(ids), "%s", cfg->instance_user);
		argv[i++] = "--user";
		argv[i++] = ids;
		if (m->client_group && !e->xd.active && !e->rec.transport[0]) {
			argv[i++] = "--socket-mode";
			argv[i++] = "0660";
		}
	}
	if (cfg->no_sandbox)
		argv[i++] = "--no-sandbox";
	argv[i] = NULL;

	memset(&o, 0, sizeof(o));
	o.file = m->exe;
	o.args = argv;
	o.env = m->child_env;
	o.exit_cb = child_exited;
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_INHERIT_FD;
	stdio[1].data.fd = 1;
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = 2;
	stdio[3].flags = UV_INHERIT_FD;
	stdio[3].data.fd = fds[1];
	o.stdio = stdio;
	o.stdio_count = 4;
	c->proc.data = e;
	cloexec_all();
	rc = uv_spawn(m->loop, &c->proc, &o);
	close(fds[1]);
	if (rc) {
		close(fds[0]);
		log_warnx("vTPM %s: cannot start %s: %s", e->rec.uuid_str, m->exe,
			  uv_strerror(rc));
		/* uv_spawn initialised the handle (it is on the loop's
		 * handle list) even though it failed: it must be closed
		 * before its memory is spawned into again, or a retry
		 * inserts it twice.  Until proc_closed, a start waits. */
		c->proc_open = true;
		uv_close((uv_handle_t *)&c->proc, proc_closed);
		return rc;
	}
	c->proc_open = true;
	c->state = CHILD_RUNNING;
	c->started_ms = mgr_now(m);
	log_info("vTPM %s: instance started (pid %d) on %s", e->rec.uuid_str,
		 c->proc.pid, transport);
	if (m->sup && m->sup->started)
		m->sup->started(e, fds[0]);
	else
		close(fds[0]);
	return 0;
}

void sup_stop(struct vtpm_entry *e)
{
	sup_stop_sig(e, SIGTERM);
}

void sup_stop_sig(struct vtpm_entry *e, int sig)
{
	struct sup_child *c = &e->child;

	if (c->state == CHILD_BACKOFF) {
		timer_stop(e);
		c->state = CHILD_STOPPED;
		if (!c->proc_open)
			report_stopped(e);
	} else if (c->state == CHILD_RUNNING) {
		c->state = CHILD_STOPPING;
		uv_process_kill(&c->proc, sig);
		ensure_timer(e);
		uv_timer_start(&c->timer, kill_timer_cb, SUP_KILL_AFTER_MS, 0);
	}
	if (e->m->stopping && c->state == CHILD_STOPPED && c->timer_open &&
	    !uv_is_closing((uv_handle_t *)&c->timer))
		uv_close((uv_handle_t *)&c->timer, timer_closed);
}
