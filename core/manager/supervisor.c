/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Instance processes: one per running vTPM, started with a socketpair as
 * its manager link (fd 3), as an unprivileged user when the manager runs
 * as root; restarted with backoff when they die; stopped with SIGTERM.
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
#include "manager/manager.h"

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define STABLE_MS 60000     /* up this long: the next crash starts afresh */
#define KILL_AFTER_MS 10000 /* SIGTERM, then SIGKILL */

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

bool sup_all_stopped(struct manager *m)
{
	struct vtpm_entry *e;

	for (e = m->entries; e; e = e->next)
		if (e->state != CHILD_STOPPED || e->proc_open || e->link_open)
			return false;
	return true;
}

/* A directory owned by the instance user, where only it may write. */
static int own_dir(struct manager *m, const char *path, mode_t mode)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	if (m->drop_privileges &&
	    chown(path, m->inst_uid, m->inst_gid) < 0)
		return -errno;
	return chmod(path, mode) < 0 ? -errno : 0;
}

static void timer_closed(uv_handle_t *h)
{
	struct vtpm_entry *e = h->data;

	e->timer_open = false;
	mgr_maybe_exit(e->m);
}

static void link_closed(uv_handle_t *h)
{
	struct vtpm_entry *e = h->data;

	e->link_open = false;
	mgr_maybe_exit(e->m);
}

static void proc_closed(uv_handle_t *h)
{
	struct vtpm_entry *e = h->data;

	e->proc_open = false;
	mgr_maybe_exit(e->m);
}

static void restart_timer_cb(uv_timer_t *t)
{
	struct vtpm_entry *e = t->data;

	if (e->state == CHILD_BACKOFF && e->autostart && !e->m->stopping) {
		e->state = CHILD_STOPPED;
		if (sup_start(e) < 0) {
			e->state = CHILD_BACKOFF;
			uv_timer_start(&e->timer, restart_timer_cb,
				       e->backoff_ms, 0);
		}
	}
}

static void kill_timer_cb(uv_timer_t *t)
{
	struct vtpm_entry *e = t->data;

	if (e->state == CHILD_STOPPING && e->proc_open) {
		log_warnx("vTPM %s: instance ignored SIGTERM for %d s; killing it",
			  e->uuid_str, KILL_AFTER_MS / 1000);
		uv_process_kill(&e->proc, SIGKILL);
	}
}

static void ensure_timer(struct vtpm_entry *e)
{
	if (e->timer_open)
		return;
	uv_timer_init(e->m->loop, &e->timer);
	e->timer.data = e;
	e->timer_open = true;
}

static void child_exited(uv_process_t *p, int64_t status, int sig)
{
	struct vtpm_entry *e = p->data;
	struct manager *m = e->m;
	uint64_t up = mgr_now_ms() - e->started_ms;

	e->last_exit = (int)status;
	uv_close((uv_handle_t *)&e->proc, proc_closed);
	e->link_epoch++;
	if (e->link_open && !uv_is_closing((uv_handle_t *)&e->link))
		uv_close((uv_handle_t *)&e->link, link_closed);
	if (e->xen_restart && e->autostart && !m->stopping) {
		/* It served the guest's previous domain: now the new one. */
		e->xen_restart = false;
		e->state = CHILD_STOPPED;
		log_info("vTPM %s: instance for the previous domain stopped; "
			 "starting one for domain %u", e->uuid_str, e->xen_fe);
		if (e->timer_open && !uv_is_closing((uv_handle_t *)&e->timer))
			uv_timer_stop(&e->timer);
		if (sup_start(e) < 0)
			log_warnx("vTPM %s: cannot start an instance for domain %u",
				  e->uuid_str, e->xen_fe);
		return;
	}
	if (e->state == CHILD_STOPPING || !e->autostart || m->stopping) {
		log_info("vTPM %s: instance stopped (status %lld%s%s)",
			 e->uuid_str, (long long)status, sig ? ", signal " : "",
			 sig ? strsignal(sig) : "");
		e->state = CHILD_STOPPED;
		if (e->timer_open && !uv_is_closing((uv_handle_t *)&e->timer))
			uv_timer_stop(&e->timer);
		mgr_maybe_exit(m);
		return;
	}
	if (up >= STABLE_MS || e->backoff_ms == 0)
		e->backoff_ms = BACKOFF_MIN_MS;
	else if (e->backoff_ms < BACKOFF_MAX_MS)
		e->backoff_ms *= 2;
	if (e->backoff_ms > BACKOFF_MAX_MS)
		e->backoff_ms = BACKOFF_MAX_MS;
	e->restarts++;
	log_warnx("vTPM %s: instance died (status %lld%s%s) after %llu ms; "
		  "restart %u in %u ms",
		  e->uuid_str, (long long)status, sig ? ", signal " : "",
		  sig ? strsignal(sig) : "", (unsigned long long)up, e->restarts,
		  e->backoff_ms);
	e->state = CHILD_BACKOFF;
	ensure_timer(e);
	uv_timer_start(&e->timer, restart_timer_cb, e->backoff_ms, 0);
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
	const struct config *cfg = m->cfg;
	char dir[300], rundir[300], transport[320], domid[24], devid[16];
	uv_process_options_t o;
	uv_stdio_container_t stdio[4];
	const char *lvl;
	char *argv[32];
	int fds[2], rc, i = 0;

	if (e->state == CHILD_RUNNING || e->state == CHILD_STOPPING)
		return 0;
	if (e->proc_open || e->link_open) {
		/* The last process is still being reaped: try again soon. */
		e->state = CHILD_BACKOFF;
		e->backoff_ms = 50;
		ensure_timer(e);
		uv_timer_start(&e->timer, restart_timer_cb, 50, 0);
		return 0;
	}
	snprintf(dir, sizeof(dir), "%s/vtpms", cfg->state_dir);
	if (mkdir(dir, 0711) < 0 && errno != EEXIST)
		return -errno;
	snprintf(dir, sizeof(dir), "%s/vtpms/%s", cfg->state_dir, e->uuid_str);
	rc = own_dir(m, dir, 0700);
	if (rc) {
		log_warnx("vTPM %s: %s: %s", e->uuid_str, dir, strerror(-rc));
		return rc;
	}
	if (e->xen) {
		snprintf(transport, sizeof(transport), "xen-ring");
	} else if (e->transport[0]) {
		snprintf(transport, sizeof(transport), "%s", e->transport);
	} else {
		if (mkdir(cfg->run_dir, 0755) < 0 && errno != EEXIST)
			return -errno;
		snprintf(rundir, sizeof(rundir), "%s/%s", cfg->run_dir, e->uuid_str);
		rc = own_dir(m, rundir, 0700);
		if (rc)
			return rc;
		snprintf(transport, sizeof(transport), "unix:%s/tpm", rundir);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
		return -errno;
	snprintf(domid, sizeof(domid), "%ld", e->domid);
	lvl = log_get_level() >= LOG_LVL_DEBUG ? "debug" : "info";
	argv[i++] = m->exe;
	argv[i++] = "--role=instance";
	argv[i++] = "--domid";
	argv[i++] = domid;
	argv[i++] = "--uuid";
	argv[i++] = e->uuid_str;
	argv[i++] = "--transport";
	argv[i++] = transport;
	argv[i++] = "--state-dir";
	argv[i++] = dir;
	argv[i++] = "--manager";
	argv[i++] = "fd:3";
	argv[i++] = "--tpm-version";
	argv[i++] = e->tpm_version == 1 ? "1.2" : "2.0";
	argv[i++] = "--log-level";
	argv[i++] = (char *)lvl;
	if (e->xen) {
		snprintf(domid, sizeof(domid), "%u", e->xen_fe);
		snprintf(devid, sizeof(devid), "%u", e->xen_dev);
		argv[i++] = "--devid";
		argv[i++] = devid;
		/* The Xen devices are root's: the instance opens them, then
		 * becomes the instance user itself, before reading state. */
		if (m->drop_privileges) {
			argv[i++] = "--user";
			argv[i++] = (char *)cfg->instance_user;
		}
	}
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
	if (m->drop_privileges && !e->xen) {
		o.flags = UV_PROCESS_SETUID | UV_PROCESS_SETGID;
		o.uid = m->inst_uid;
		o.gid = m->inst_gid;
	}
	e->proc.data = e;
	cloexec_all();
	rc = uv_spawn(m->loop, &e->proc, &o);
	close(fds[1]);
	if (rc) {
		close(fds[0]);
		log_warnx("vTPM %s: cannot start %s: %s", e->uuid_str, m->exe,
			  uv_strerror(rc));
		return rc;
	}
	e->proc_open = true;
	uv_pipe_init(m->loop, &e->link, 0);
	e->link.data = e;
	uv_pipe_open(&e->link, fds[0]);
	e->link_open = true;
	e->state = CHILD_RUNNING;
	e->started_ms = mgr_now_ms();
	mgr_link_start(e);
	log_info("vTPM %s: instance started (pid %d) on %s", e->uuid_str,
		 e->proc.pid, transport);
	return 0;
}

void sup_stop(struct vtpm_entry *e)
{
	if (e->state == CHILD_BACKOFF) {
		if (e->timer_open)
			uv_timer_stop(&e->timer);
		e->state = CHILD_STOPPED;
	} else if (e->state == CHILD_RUNNING) {
		e->state = CHILD_STOPPING;
		uv_process_kill(&e->proc, SIGTERM);
		ensure_timer(e);
		uv_timer_start(&e->timer, kill_timer_cb, KILL_AFTER_MS, 0);
	}
	if (e->m->stopping && e->state == CHILD_STOPPED && e->timer_open &&
	    !uv_is_closing((uv_handle_t *)&e->timer))
		uv_close((uv_handle_t *)&e->timer, timer_closed);
}
