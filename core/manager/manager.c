/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The manager role (manager.h): start-up (unseal, store freshness),
 * signals and shutdown, and the wiring of its parts: the supervisor's
 * reports go to the link, the Xen devices and the exit check.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/notify.h"
#include "lib/store.h"
#include "manager/control.h"
#include "manager/manager.h"
#include "manager/migrate.h"
#include "manager/online.h"
#include "manager/quote.h"
#include "manager/rootkey.h"
#include "manager/tpm.h"

uint64_t mgr_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the supervisor's reports ---- */

static void child_started(struct vtpm_entry *e, int link_fd)
{
	int rc = mgr_link_open_socket(e, link_fd);

	if (rc)
		log_warnx("vTPM %s: cannot open its link: %s", e->rec.uuid_str,
			  strerror(-rc));
}

static void child_exited(struct vtpm_entry *e, int64_t status, int sig)
{
	(void)status;
	(void)sig;
	/* Its link goes with it; a commit or quote in flight answers
	 * nobody. */
	mgr_link_close(e);
	mgr_ekca_child_exited(e);
}

static void child_stopped(struct vtpm_entry *e)
{
	mgr_xen_child_stopped(e);
	mgr_maybe_exit(e->m);
}

static void child_released(struct vtpm_entry *e)
{
	mgr_maybe_exit(e->m);
}

const struct sup_events mgr_sup_events = {
	.started = child_started,
	.exited = child_exited,
	.stopped = child_stopped,
	.released = child_released,
};

static void task_finished(void *arg)
{
	mgr_maybe_exit(arg);
}

void mgr_init(struct manager *m, uv_loop_t *loop, const struct config *cfg)
{
	m->loop = loop;
	m->cfg = cfg;
	if (!m->now_ms)
		m->now_ms = mgr_now_ms;
	m->tpm = &mgr_tpm_hal;
	m->pcrs = &mgr_pcr_source_link;
	m->sup = &mgr_sup_events;
	list_init(&m->entries);
	mgr_taskq_init(&m->tasks, loop, task_finished, m);
	if (mgr_taskq_init_thread(&m->tpmq, loop,
				  (unsigned int)cfg->tpm_timeout_s * 1000,
				  task_finished, m))
		fatalx("cannot start the physical TPM's thread");
	mgr_commits_init(&m->commits);
	m->started_ms = mgr_now(m);
}

/* ---- shutdown ---- */

static void final_committed(struct manager *m, int rc, void *arg)
{
	(void)arg;
	uint64_t since;
	const char *call;

	if (rc)
		m->exit_code = 1;
	/* A call the TPM never answered still uses the HAL: leave it. */
	if (!mgr_taskq_stuck(&m->tpmq, &since, &call))
		tss_hal_close(m->hal);
	m->hal = NULL;
	uv_stop(m->loop);
}

void mgr_maybe_exit(struct manager *m)
{
	if (!m->stopping || m->final_commit || !sup_all_stopped(m) ||
	    m->links_open || !mgr_taskq_idle(&m->tasks) ||
	    !mgr_taskq_idle(&m->tpmq))
		return;
	m->final_commit = true;
	/* Bind the final store to the counter, so no older copy loads. */
	mgr_commit(m, true, final_committed, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct manager *m = s->data;
	struct vtpm_entry *e;

	if (m->stopping)
		return;
	log_info("signal %d: stopping the instances, then the manager", signum);
	m->stopping = true;
	control_stop(m);
	mgr_xen_stop(m);
	mgr_online_stop(m);
	mgr_foreach_entry(e, m)
		sup_stop(e);
	mgr_maybe_exit(m);
}

/* ---- start-up ---- */

/* Instances are not the service systemd waits for: no NOTIFY_SOCKET. */
static char **instance_environment(void)
{
	extern char **environ;
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 1, sizeof(*env));
	if (!env)
		fatalx("out of memory");
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0)
			env[k++] = environ[i];
	return env;
}

static void resolve_instance_user(struct manager *m)
{
	const struct passwd *pw;

	m->drop_privileges = geteuid() == 0;
	if (!m->drop_privileges)
		return;
	pw = getpwnam(m->cfg->instance_user);
	if (!pw)
		fatalx("instance user '%s' does not exist", m->cfg->instance_user);
	if (pw->pw_uid == 0)
		fatalx("instance user '%s' is root: instances must not run "
		       "privileged", m->cfg->instance_user);
	m->inst_uid = pw->pw_uid;
	m->inst_gid = pw->pw_gid;
	if (!m->cfg->inst_uid_lo)
		log_warnx("no instance-uids range: every vTPM's instance runs as "
			  "%s, so one vTPM's instance can reach another's "
			  "sockets and state (set instance-uids = LOW-HIGH)",
			  m->cfg->instance_user);
	if (m->cfg->client_group[0]) {
		struct group grbuf, *gr = NULL;
		char buf[4096];

		if (getgrnam_r(m->cfg->client_group, &grbuf, buf, sizeof(buf),
			       &gr) != 0 || !gr)
			fatalx("client group '%s' does not exist",
			       m->cfg->client_group);
		if (gr->gr_gid == 0)
			fatalx("client group '%s' is root's group: name the "
			       "group of the clients (QEMU's user)",
			       m->cfg->client_group);
		m->client_group = true;
		m->client_gid = gr->gr_gid;
	}
}

/*
 * Start-up talks to the physical TPM before anything is served (unseal,
 * the attestation key, the EK CA key, the NV counter), synchronously: a
 * TPM that hangs there would hang the manager silently.  A watchdog
 * thread gives each phase STARTUP_TIMEOUT_FACTOR x --tpm-timeout (key
 * creation takes seconds on a real TPM) and otherwise ends the process
 * with a message naming the phase: nothing was served yet, and every
 * start-up step is safe to cut (see commit.c's start-up).
 */
#define STARTUP_TIMEOUT_FACTOR 6

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	const char *phase;      /* NULL: done */
	struct timespec until;
	unsigned int secs;
} watch = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void *watch_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&watch.mu);
	while (watch.phase) {
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > watch.until.tv_sec ||
		    (now.tv_sec == watch.until.tv_sec &&
		     now.tv_nsec >= watch.until.tv_nsec)) {
			log_errx("physical TPM unresponsive during start-up: "
				 "%s took over %u s (%d x --tpm-timeout); "
				 "stopping before anything was served (a "
				 "later start takes up from here)",
				 watch.phase, watch.secs,
				 STARTUP_TIMEOUT_FACTOR);
			_exit(1);
		}
		pthread_cond_timedwait(&watch.cv, &watch.mu, &watch.until);
	}
	pthread_mutex_unlock(&watch.mu);
	return NULL;
}

/* The next phase (its deadline starts now), or NULL: start-up is over. */
static void startup_phase(const struct config *cfg, const char *phase)
{
	static pthread_t thread;
	static bool running;

	if (phase && !running) {
		pthread_condattr_t ca;

		/* Before the thread: its waits run on the monotonic clock. */
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&watch.cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_mutex_lock(&watch.mu);
	watch.phase = phase;
	watch.secs = cfg->tpm_timeout_s * STARTUP_TIMEOUT_FACTOR;
	clock_gettime(CLOCK_MONOTONIC, &watch.until);
	watch.until.tv_sec += watch.secs;
	pthread_cond_signal(&watch.cv);
	pthread_mutex_unlock(&watch.mu);
	if (phase && !running) {
		if (pthread_create(&thread, NULL, watch_main, NULL) == 0)
			running = true;
		else
			log_warnx("no start-up watchdog (pthread_create failed)");
	}
	if (!phase && running) {
		pthread_join(thread, NULL);
		running = false;
	}
}

/* The manager's state directory: root's, writable by no one else (it
 * holds every vTPM's directory). */
static void check_state_dir(struct manager *m)
{
	const char *why = store_dir_unsafe(m->dirfd, geteuid(), geteuid());

	if (why)
		fatalx("state directory %s %s: refusing to use it",
		       m->cfg->state_dir, why);
}

int manager_main(const struct config *cfg)
{
	static struct manager mgr;
	struct manager *m = &mgr;
	struct vtpm_entry *e;
	char err[256];
	int lockfd;
	ssize_t n;

	log_set_subject("manager");
	mgr_init(m, uv_default_loop(), cfg);
	if (pcr_sel_parse(cfg->pcrs, &m->sel))
		fatalx("--pcrs '%s': expected like sha256:0,2,4,7", cfg->pcrs);
	if (mkdir(cfg->state_dir, 0711) < 0 && errno != EEXIST)
		fatal("%s", cfg->state_dir);
	m->dirfd = open(cfg->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m->dirfd < 0)
		fatal("%s", cfg->state_dir);
	check_state_dir(m);
	if (store_open_regular(m->dirfd, "manager.lock", O_RDWR | O_CREAT,
			       &lockfd, &(uint64_t){ 0 }) ||
	    flock(lockfd, LOCK_EX | LOCK_NB) < 0)
		fatalx("%s: another manager uses this state directory",
		       cfg->state_dir);
	if (cfg->instance_exe[0]) {
		snprintf(m->exe, sizeof(m->exe), "%s", cfg->instance_exe);
	} else {
		char *slash;

		/* Instances run the lean sibling image, vtpm-service. */
		n = readlink("/proc/self/exe", m->exe, sizeof(m->exe) - 32);
		if (n < 0)
			fatal("/proc/self/exe");
		m->exe[n] = '\0';
		slash = strrchr(m->exe, '/');
		strcpy(slash ? slash + 1 : m->exe, "vtpm-service");
	}
	resolve_instance_user(m);
	setenv("UV_THREADPOOL_SIZE", "1", 1);
	m->child_env = instance_environment();
	/* Our own messages name the problem; tpm2-tss's would only repeat
	 * it in its words (TSS2_LOG=... still overrides). */
	setenv("TSS2_LOG", "all+none", 0);

	startup_phase(cfg, "unsealing (or at the first start creating) the "
			   "root key");
	mgr_rootkey_unlock(m);
	startup_phase(cfg, "loading the attestation key");
	if (tss_hal_ak(m->hal, &m->ak_spki, &m->ak_spki_len, err, sizeof(err)))
		fatalx("attestation key: %s", err);
	startup_phase(cfg, "loading the EK CA key");
	mgr_ekca_load(m);
	startup_phase(cfg, "checking the key store against the NV counter");
	mgr_store_load(m);
	startup_phase(cfg, NULL);
	mgr_entries_load(m);
	if (mgr_ids_assign(m))
		fatalx("instance-uids %u-%u: no free id left for every vTPM",
		       (unsigned)cfg->inst_uid_lo, (unsigned)cfg->inst_uid_hi);
	mgr_online_recover(m);

	signal(SIGPIPE, SIG_IGN);
	uv_signal_init(m->loop, &m->sigterm);
	uv_signal_init(m->loop, &m->sigint);
	m->sigterm.data = m->sigint.data = m;
	uv_signal_start(&m->sigterm, on_signal, SIGTERM);
	uv_signal_start(&m->sigint, on_signal, SIGINT);
	if (control_start(m))
		fatalx("cannot open the control socket %s", cfg->control);
	if (mgr_online_start(m))
		fatalx("migrate-listen %s:%u: cannot listen", cfg->migrate_host,
		       cfg->migrate_port);
	if (m->entries_dirty)
		mgr_commit(m, false, NULL, NULL);
	mgr_foreach_entry(e, m)
		if (e->rec.autostart)
			sup_start(e);
	if (mgr_xen_start(m))
		fatalx("--xen on: cannot serve Xen vtpm devices");
	vtpm_notify_ready();
	log_info("ready: %zu vTPMs, control socket %s", m->ks.nrecs,
		 cfg->control);
	uv_run(m->loop, UV_RUN_DEFAULT);

	mgr_taskq_close(&m->tpmq);
	mgr_commits_close(&m->commits);
	keystore_free(&m->ks);
	mgr_ekca_free(m);
	mgr_migrate_free(m);
	OPENSSL_cleanse(m->root_key, KEYSTORE_ROOT_KEY_LEN + NV_AUTH_LEN);
	log_info("stopped");
	return m->exit_code;
}
