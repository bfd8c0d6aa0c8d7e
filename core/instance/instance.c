/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The instance role: one vTPM.  Loads and verifies its state, boots the
 * engine, serves one transport, and runs every engine job in order.
 */
#define _GNU_SOURCE /* close_range */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proto/keyfile.h"
#include "proto/migblob.h"
#include "proto/resumetag.h"
#include "lib/hex.h"
#include "lib/notify.h"
#include "instance/mgrlink.h"
#include "instance/sandbox.h"
#include "instance/pcrserve.h"
#include "lib/log.h"
#include "proto/statefile.h"
#include "lib/store.h"
#include "proto/tpmcodes.h"
#include "proto/tpmframe.h"
#include "instance/vtpm.h"

/*
 * How long the off-loop worker thread outlives its last piece of work.
 * Starting one costs tens of microseconds beside a durable write's
 * hundreds; while it lives, every system call of the loop costs more
 * (instance/worker.h).  Writes closer together than this keep it.
 */
#define WORKER_LINGER_MS 50


/* ---- the job queue, over the engine ---- */

static void run_cmd(struct vtpm *v, struct vtpm_job *job)
{
	if (job->locality == 4 && v->reject_locality4) {
		bool tpm2 = engine_version(&v->eng) == TPM_VERSION_2;

		/* swtpm's --locality reject-locality-4: a TPM error, not a
		 * closed connection. */
		tpm_error_response(v->locrsp, tpm2,
				   tpm2 ? TPM_RC_LOCALITY : TPM12_BAD_LOCALITY);
		job->rsp = v->locrsp;
		job->rsp_len = TPM_HEADER_LEN;
		return;
	}
	if (job->locality >= 0)
		engine_set_locality(&v->eng, job->locality);
	engine_process(&v->eng, job->cmd, job->cmd_len, &job->rsp,
		       &job->rsp_len);
}

static bool q_offloop(void *ctx, const struct vtpm_job *job)
{
	struct vtpm *v = ctx;

	if (job->kind == VTPM_JOB_CMD)
		return !engine_cmd_is_quick(&v->eng, job->cmd, job->cmd_len);
	return job->call_offloop;
}

static void q_run(void *ctx, struct vtpm_job *job)
{
	struct vtpm *v = ctx;

	if (job->kind == VTPM_JOB_CMD)
		run_cmd(v, job);
	else
		job->call(v, job);
}

static bool q_dirty(void *ctx)
{
	struct vtpm *v = ctx;

	return engine_is_dirty(&v->eng);
}

static int q_persist(void *ctx)
{
	struct vtpm *v = ctx;

	return engine_persist(&v->eng);
}

static void q_cancel(void *ctx)
{
	struct vtpm *v = ctx;

	engine_cancel(&v->eng);
}

static void q_persist_failed(void *ctx, struct vtpm_job *job, int rc)
{
	struct vtpm *v = ctx;
	bool tpm2 = engine_version(&v->eng) == TPM_VERSION_2;

	/*
	 * The TPM changed but the change is not on disk.  Answering
	 * success would be a lie and carrying on would serve state that a
	 * restart loses: fail this command and stop; a restart resumes from
	 * the last durable state.
	 */
	log_errx("cannot write state file %s/%s: %s%s; stopping",
		 v->cfg->state_dir, v->eng.file_name, strerror(-rc),
		 rc == -EINVAL ? " (it or its .tmp is not a regular file: a "
				 "FIFO or device planted there?)"
			       : rc == -ELOOP ? " (a symbolic link planted there)"
					      : "");
	if (job->kind == VTPM_JOB_CMD) {
		tpm_error_response(v->failrsp, tpm2,
				   tpm2 ? TPM_RC_FAILURE : TPM12_FAIL);
		job->rsp = v->failrsp;
		job->rsp_len = TPM_HEADER_LEN;
	}
}

static void q_fatal(void *ctx, int rc)
{
	(void)rc;
	vtpm_shutdown(ctx, 1);
}

static void finish_shutdown(struct vtpm *v);

static void q_idle(void *ctx)
{
	finish_shutdown(ctx);
}

static const struct jobq_ops instance_jobq_ops = {
	.offloop = q_offloop,
	.run = q_run,
	.dirty = q_dirty,
	.persist = q_persist,
	.cancel = q_cancel,
	.persist_failed = q_persist_failed,
	.fatal = q_fatal,
	.idle = q_idle,
};

void vtpm_submit(struct vtpm *v, struct vtpm_job *job)
{
	jobq_submit(&v->q, job);
}

bool vtpm_withdraw(struct vtpm *v, struct vtpm_job *job)
{
	return jobq_withdraw(&v->q, job);
}

void vtpm_cancel(struct vtpm *v)
{
	jobq_cancel(&v->q);
}

/* ---- shutdown ---- */

static void close_walk_cb(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void watermark_work(struct worker_req *w)
{
	struct vtpm *v = w->data;
	uint64_t gen = w == &v->start_mark_work ? v->start_mark_gen
						: v->eng.meta.generation;
	int rc = engine_write_watermark(&v->eng, gen);

	v->mark_rc = rc;
	if (rc)
		log_warnx("cannot write generation watermark %s: %s",
			  v->eng.mark_name, strerror(-rc));
}

/* Whether the watermark file already holds this generation. */
static bool mark_holds(const struct vtpm *v, uint64_t gen)
{
	return v->mark_known && v->mark_gen == gen;
}

static void final_after(struct worker_req *w)
{
	struct vtpm *v = w->data;

	engine_power_off(&v->eng);
	log_info("stopped at state generation %llu",
		 (unsigned long long)v->eng.meta.generation);
	uv_walk(v->loop, close_walk_cb, NULL);
}

void vtpm_save_at_exit(struct vtpm *v, const uint8_t *tag, uint32_t len)
{
	if (len > sizeof(v->exit_tag))
		return;
	memcpy(v->exit_tag, tag, len);
	v->exit_tag_len = len;
	v->exit_save = true;
}

static void exit_save_work(struct worker_req *w)
{
	struct vtpm *v = w->data;

	v->exit_save_rc = engine_suspend_save(&v->eng, v->exit_tag,
					      v->exit_tag_len);
	if (v->exit_save_rc == 0)
		v->exit_save_rc = engine_persist(&v->eng);
}

static void exit_save_after(struct worker_req *w)
{
	struct vtpm *v = w->data;

	if (v->exit_save_rc) {
		log_warnx("cannot save the volatile state for a restore in "
			  "%s/%s: %s; the guest's next connection gets a "
			  "power-cycled TPM", v->cfg->state_dir,
			  v->eng.file_name, strerror(-v->exit_save_rc));
		if (v->exit_code == 0)
			v->exit_code = 1;
	} else {
		log_info("volatile state saved for a restore, state generation "
			 "%llu", (unsigned long long)v->eng.meta.generation);
	}
	v->exit_save = false;
	v->finishing = false;
	finish_shutdown(v);
}

static void finish_shutdown(struct vtpm *v)
{
	if (v->finishing || !v->transport_stopped || v->start_mark_busy)
		return;
	v->finishing = true;
	if (v->exit_save && engine_is_running(&v->eng)) {
		v->exit_save_work = (struct worker_req){
			.work = exit_save_work,
			.after = exit_save_after,
			.data = v,
		};
		worker_queue(&v->worker, &v->exit_save_work);
		return;
	}
	/* Record how far this vTPM got, so an older file is refused. */
	v->final_work = (struct worker_req){
		.work = watermark_work,
		.after = final_after,
		.data = v,
	};
	if (v->exit_code == 0 && !v->managed &&
	    !mark_holds(v, v->eng.meta.generation))
		worker_queue(&v->worker, &v->final_work);
	else
		final_after(&v->final_work);
}

static void transport_stopped(struct transport *t)
{
	struct vtpm *v = t->vtpm;

	v->transport_stopped = true;
	if (!jobq_busy(&v->q))
		finish_shutdown(v);
}

void vtpm_shutdown(struct vtpm *v, int exit_code)
{
	if (exit_code > v->exit_code)
		v->exit_code = exit_code;
	if (v->stopping)
		return;
	v->stopping = true;
	/* Queued jobs never started: their clients get no answer. */
	jobq_drain(&v->q);
	v->transport.ops->stop(&v->transport, transport_stopped);
}

static void on_link_event(uv_poll_t *p, int status, int events)
{
	struct vtpm *v = p->data;

	if (status < 0 || (events & UV_DISCONNECT)) {
		uv_poll_stop(p);
		log_warnx("the manager closed its link: stopping");
		vtpm_shutdown(v, 1);
	}
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct vtpm *v = s->data;

	log_info("signal %d: finishing the running command and stopping",
		 signum);
	vtpm_shutdown(v, 0);
}

/* The manager's stop for an online migration (docs/migration.md): the
 * volatile state is saved with a migration tag before the exit, as for
 * a Xen save (a Xen ring's own tag, set at its stop, takes precedence). */
static void on_migrate_signal(uv_signal_t *s, int signum)
{
	struct vtpm *v = s->data;
	static const uint8_t none[16];
	uint8_t tag[MIGTAG_LEN];

	log_info("signal %d: stopping for an online migration, the volatile "
		 "state is saved", signum);
	migtag_encode(none, tag);
	vtpm_save_at_exit(v, tag, sizeof(tag));
	vtpm_shutdown(v, 0);
}

/* ---- start-up ---- */

/* A volatile state saved for an online migration (proto/resumetag.h):
 * the tag goes now, the volatile state at the power-on that uses it. */
static bool resumes_migration(struct vtpm *v)
{
	uint32_t len;
	const uint8_t *tag = engine_resume_tag(&v->eng, &len);
	uint8_t txid[16];
	char hx[33];

	if (!tag || migtag_decode(tag, len, txid) ||
	    !engine_has_volatile(&v->eng))
		return false;
	hex_encode(txid, sizeof(txid), hx);
	log_info("resumes the TPM moved here by online migration %s "
		 "(volatile state kept, no Startup)", hx);
	engine_resume_keep_volatile(&v->eng);
	return true;
}

/* The manager's PCR_READ for deep quotes, on the link it made. */
static void start_pcrserve(struct vtpm *v)
{
	int rc = pcrserve_start(v, &v->pcrserve);

	if (rc == -EOPNOTSUPP)
		log_info("manager link %s carries no requests of the "
			 "manager's: deep quotes of this vTPM are refused",
			 v->cfg->manager);
	else if (rc)
		fatalx("cannot serve the manager's requests: %s",
		       strerror(-rc));
}

/*
 * The state directory, opened without following a link at its last
 * component and refused unless owner (the uid the instance runs as once
 * sandboxed) or root owns it and neither group nor others may write it:
 * anyone else could swap its files.
 */
static int open_state_dir(const struct config *cfg, uid_t owner)
{
	const char *why;
	int fd, rc;

	/* A local manager (its link is fd:N) made the directory; an instance
	 * alone, or in a domain of its own whose manager is across a ring,
	 * makes its own. */
	rc = store_dir_open(AT_FDCWD, cfg->state_dir,
			    strncmp(cfg->manager, "fd:", 3) == 0 ? 0 : 0700,
			    &fd);
	if (rc)
		fatalx("state directory %s: %s", cfg->state_dir,
		       rc == -ENOTDIR ? "not a directory (or a symbolic link)"
				      : strerror(-rc));
	why = store_dir_unsafe(fd, owner, 0);
	if (why)
		fatalx("state directory %s %s: refusing to keep a vTPM's state "
		       "there", cfg->state_dir, why);
	return fd;
}

/* Two processes on one state file would undo each other's writes. */
static int lock_state(int dirfd, const char *name)
{
	char lockname[160];
	int fd, rc;

	snprintf(lockname, sizeof(lockname), "%s.lock", name);
	rc = store_open_regular(dirfd, lockname, O_RDWR | O_CREAT, &fd,
				&(uint64_t){ 0 });
	if (rc)
		return rc;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd; /* held until exit */
}

static int read_watermark(int dirfd, const char *name,
			  const struct state_keys *keys, bool *have,
			  uint8_t uuid[16], uint64_t *gen, char *err,
			  size_t errlen)
{
	enum statefile_err verdict;
	uint8_t *buf;
	size_t len;
	int rc;

	*have = false;
	rc = store_read(dirfd, name, 4096, &buf, &len);
	if (rc == -ENOENT)
		return 0;
	if (rc) {
		snprintf(err, errlen, "%s: %s", name, strerror(-rc));
		return rc;
	}
	if (len == WATERMARK_LEN)
		memcpy(uuid, buf + 8, 16);
	verdict = watermark_decode(keys, buf, len, uuid, gen);
	free(buf);
	if (verdict != SF_OK) {
		snprintf(err, errlen, "%s: generation watermark: %s", name,
			 statefile_strerror(verdict));
		return -EBADMSG;
	}
	*have = true;
	return 0;
}

static void set_log_subject(const struct config *cfg, const uint8_t *uuid)
{
	char subj[64], us[37];

	if (uuid && cfg->domid == CONFIG_DOMID_ANY) {
		uuid_format(uuid, us);
		snprintf(subj, sizeof(subj), "dom*/%s", us);
	} else if (uuid) {
		uuid_format(uuid, us);
		snprintf(subj, sizeof(subj), "dom%ld/%s", cfg->domid, us);
	} else {
		snprintf(subj, sizeof(subj), "dom%ld", cfg->domid);
	}
	log_set_subject(subj);
}

static void watermark_start_after(struct worker_req *w)
{
	struct vtpm *v = w->data;

	v->start_mark_busy = false;
	if (v->mark_rc == 0) {
		v->mark_known = true;
		v->mark_gen = v->start_mark_gen;
	}
	if (v->stopping && !jobq_busy(&v->q))
		finish_shutdown(v);
}

static void startup_persist_call(struct vtpm *v, struct vtpm_job *job)
{
	(void)v;
	(void)job;
}

static void startup_persist_done(struct vtpm_job *job)
{
	struct vtpm *v = job->data;

	if (job->status == 0)
		log_debug("initial state is durable, generation %llu",
			  (unsigned long long)v->eng.meta.generation);
}

/*
 * Power-on as the first job, on the worker thread: a xen-ring backend must
 * answer the toolstack (InitWait) within libxl's 10 s, and libtpms takes
 * seconds to start a TPM 1.2 (and to manufacture a new one: an RSA-2048
 * endorsement key) on a slow machine.  Guest commands queue behind it.
 */
static void power_on_call(struct vtpm *v, struct vtpm_job *job)
{
	uint32_t src;

	(void)job;
	if (engine_power_on(&v->eng, false)) {
		v->power_failed = true;
		return;
	}
	src = engine_startup_clear(&v->eng);
	if (src != 0)
		log_info("TPM startup returned 0x%x (state resumed)", src);
}

static void power_on_done(struct vtpm_job *job)
{
	struct vtpm *v = job->data;

	if (v->power_failed) {
		log_errx("the TPM engine failed to start from %s/%s",
			 v->cfg->state_dir, v->eng.state_name);
		vtpm_shutdown(v, 1);
		return;
	}
	log_info("ready: TPM %s powered on",
		 v->eng.version == TPM_VERSION_2 ? "2.0" : "1.2");
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 +
	       (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

/* ---- options that shape what clients may do ---- */

/*
 * Locality 4 belongs to the platform (a DRTM launch), never to a guest:
 * refused by default where a guest or a manager-started instance serves
 * one; allowed for a standalone socket instance, as swtpm allows it.
 */
static void resolve_locality_policy(struct vtpm *v, const struct config *cfg)
{
	if (cfg->locality_policy == LOCALITY_DEFAULT)
		v->reject_locality4 = cfg->transport.kind == TRANSPORT_XEN_RING ||
				      cfg->manager[0];
	else
		v->reject_locality4 = cfg->locality_policy == LOCALITY_REJECT_4;
}

static void read_migration_key(struct vtpm *v, const struct config *cfg)
{
	uint8_t master[32];
	char err[300];
	int rc;

	if (!cfg->migration_key[0])
		return;
	rc = keyfile_load(cfg->migration_key, master, err, sizeof(err));
	if (rc)
		fatalx("migration key: %s", err);
	rc = migblob_derive_key(master, v->migration_key);
	OPENSSL_cleanse(master, sizeof(master));
	if (rc)
		fatalx("cannot derive the migration key");
	v->have_migration_key = true;
}

/* ---- loading: with a state key file ---- */

/* Before anything touches the state directory: a refused key creates
 * nothing. */
static void read_state_key(const struct config *cfg, struct state_keys *keys)
{
	uint8_t master[32];
	char err[300];
	int rc;

	rc = keyfile_load(cfg->state_key, master, err, sizeof(err));
	if (rc)
		fatalx("state key: %s", err);
	rc = state_keys_derive(master, keys);
	OPENSSL_cleanse(master, sizeof(master));
	if (rc)
		fatalx("cannot derive state keys");
}

static void load_standalone(struct vtpm *v, const struct config *cfg,
			    int dirfd, const char *name, struct state_keys *kp)
{
	struct engine_load_result res;
	struct statefile_expect exp;
	struct state_keys keys = *kp;
	uint8_t wuuid[16];
	char err[300], markname[140];
	uint64_t wgen = 0;
	bool have_mark;
	int rc;

	state_keys_wipe(kp);

	snprintf(markname, sizeof(markname), "%s.gen", name);
	rc = read_watermark(dirfd, markname, &keys, &have_mark, wuuid, &wgen,
			    err, sizeof(err));
	if (rc)
		fatalx("refusing to start: %s/%s", cfg->state_dir, err);
	memset(&exp, 0, sizeof(exp));
	exp.family = cfg->tpm_version == TPM_VERSION_2 ? 2 : 1;
	if (cfg->have_uuid) {
		exp.check_uuid = 1;
		memcpy(exp.uuid, cfg->uuid, 16);
		if (have_mark && memcmp(wuuid, cfg->uuid, 16) != 0)
			fatalx("refusing to start: %s/%s belongs to another vTPM",
			       cfg->state_dir, markname);
	} else if (have_mark) {
		exp.check_uuid = 1;
		memcpy(exp.uuid, wuuid, 16);
	}
	exp.min_generation = have_mark ? wgen : 0;
	v->mark_known = have_mark;
	v->mark_gen = wgen;

	rc = engine_setup(&v->eng, cfg->tpm_version, cfg->buffer_size);
	if (rc)
		fatalx("cannot set up libtpms for TPM %s",
		       cfg->tpm_version == TPM_VERSION_2 ? "2.0" : "1.2");
	rc = engine_load(&v->eng, dirfd, name, &keys, &exp, &res);
	state_keys_wipe(&keys);
	if (rc)
		fatalx("refusing to start: state file %s/%s: %s; the file is "
		       "left untouched",
		       cfg->state_dir, name, res.detail);
	if (res.created) {
		if (!cfg->have_uuid && !exp.check_uuid) {
			if (RAND_bytes(v->eng.meta.uuid, 16) != 1)
				fatalx("no randomness for a UUID");
			v->eng.meta.uuid[6] = (v->eng.meta.uuid[6] & 0x0f) | 0x40;
			v->eng.meta.uuid[8] = (v->eng.meta.uuid[8] & 0x3f) | 0x80;
		} else if (!cfg->have_uuid) {
			memcpy(v->eng.meta.uuid, exp.uuid, 16);
		}
	}
	set_log_subject(cfg, v->eng.meta.uuid);
	if (res.created)
		log_info("no state file %s/%s: creating a new TPM %s",
			 cfg->state_dir, name,
			 cfg->tpm_version == TPM_VERSION_2 ? "2.0" : "1.2");
	else
		log_info("loaded state file %s/%s, generation %llu",
			 cfg->state_dir, name,
			 (unsigned long long)v->eng.meta.generation);
}

/* ---- loading: with the manager ---- */

/* Runs on the worker thread, right after a state slot is durable. */
static int save_hash_to_manager(struct engine *e, uint64_t generation,
				const uint8_t hash[32], void *ctx)
{
	struct mgrlink *l = ctx;
	struct mgr_req req = { .type = MGR_MSG_SAVEHASHKEY };
	struct mgr_rsp rsp;
	char err[200];
	int rc;

	(void)e;
	req.u.save.generation = generation;
	memcpy(req.u.save.state_hash, hash, 32);
	if (l->trail) {
		/* Answered once the slot is durable; the manager's answer
		 * is checked before the next request (mgrlink_post). */
		rc = mgrlink_post(l, &req, err, sizeof(err));
		if (rc)
			log_errx("SAVEHASHKEY of generation %llu: %s",
				 (unsigned long long)generation, err);
		return rc;
	}
	rc = mgrlink_call(l, &req, &rsp, err, sizeof(err));
	if (rc) {
		log_errx("SAVEHASHKEY of generation %llu: %s",
			 (unsigned long long)generation, err);
		return rc;
	}
	if (rsp.status != MGR_SUCCESS) {
		log_errx("the manager refused generation %llu: %s",
			 (unsigned long long)generation,
			 mgrproto_status_str(rsp.status));
		return -EPERM;
	}
	return 0;
}

/*
 * Waits ms between two tries to reach the manager; true if SIGTERM or
 * SIGINT came meanwhile (or during the try before: they are blocked, so
 * they wait here).
 */
static bool stop_while_waiting(const sigset_t *stops, unsigned int ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000,
	};
	int sig;

	do
		sig = sigtimedwait(stops, NULL, &ts);
	while (sig < 0 && errno == EINTR);
	if (sig <= 0)
		return false;
	log_info("signal %d while the manager is unreachable: stopping "
		 "before any state was loaded", sig);
	return true;
}

/* LOADHASHKEY, retried with backoff while the manager is unreachable. */
static void manager_load_key(struct vtpm *v, const struct config *cfg,
			     struct mgr_rsp *rsp)
{
	struct mgrlink *link = &v->link;
	struct mgr_req req = { .type = MGR_MSG_LOADHASHKEY };
	bool inherited = strncmp(cfg->manager, "fd:", 3) == 0;
	unsigned int delay_ms = 100;
	sigset_t stops, old;
	char err[200];

	/*
	 * With the signals taken by the loop (a socket that listens before
	 * the load), a stop would wait for the load, and this one waits for
	 * the manager without end: SIGTERM and SIGINT are held here and
	 * looked at between two tries, and end the instance there.  One
	 * that comes during the last, successful try is the loop's, once
	 * it runs (a clean stop of a started TPM).
	 */
	sigemptyset(&stops);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGINT);
	if (v->signals_on)
		pthread_sigmask(SIG_BLOCK, &stops, &old);
	for (;;) {
		int rc = mgrlink_is_open(link)
				 ? 0
				 : mgrlink_open(cfg->manager, v->dial_manager,
					       link, err, sizeof(err));
		if (rc == -EINVAL) /* the spec itself: retrying cannot help */
			fatalx("manager link %s: %s", cfg->manager, err);
		if (rc == 0) {
			rc = mgrlink_call(link, &req, rsp, err, sizeof(err));
			if (rc == 0)
				break;
			if (inherited)
				fatalx("manager link %s: %s", cfg->manager, err);
			mgrlink_close(link);
		}
		log_warnx("manager %s unreachable (%s); retrying in %u ms, "
			  "serving nothing until the state is loaded",
			  cfg->manager, err, delay_ms);
		if (!v->signals_on)
			usleep(delay_ms * 1000);
		else if (stop_while_waiting(&stops, delay_ms))
			exit(0);
		if (delay_ms < 10000)
			delay_ms *= 2;
	}
	if (v->signals_on)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rsp->status != MGR_SUCCESS)
		fatalx("the manager gives no key for this vTPM: %s",
		       mgrproto_status_str(rsp->status));
}

static void load_managed(struct vtpm *v, const struct config *cfg, int dirfd,
			 const char *base)
{
	struct engine_load_result res;
	struct statefile_expect exp;
	struct state_keys keys;
	struct mgr_rsp rsp;
	bool nostate;
	int rc;

	if (!cfg->have_uuid)
		fatalx("--manager needs --uuid: the vTPM's identity");
	manager_load_key(v, cfg, &rsp);
	rc = state_keys_derive(rsp.u.load.state_key, &keys);
	nostate = rsp.u.load.flags & MGR_LOAD_FLAG_NOSTATE;
	v->link.trail = rsp.u.load.flags & MGR_LOAD_FLAG_TRAIL;
	v->manufacture = nostate && cfg->tpm_version == TPM_VERSION_2 &&
			 (rsp.u.load.flags & MGR_LOAD_FLAG_MANUFACTURE);
	memset(&exp, 0, sizeof(exp));
	exp.check_uuid = 1;
	memcpy(exp.uuid, cfg->uuid, 16);
	exp.family = cfg->tpm_version == TPM_VERSION_2 ? 2 : 1;
	exp.min_generation = rsp.u.load.generation;
	if (rc)
		fatalx("cannot derive state keys");
	rc = engine_setup(&v->eng, cfg->tpm_version, cfg->buffer_size);
	if (rc)
		fatalx("cannot set up libtpms");
	rc = engine_load_slots(&v->eng, dirfd, base, &keys, &exp, nostate,
			       rsp.u.load.state_hash, &res);
	state_keys_wipe(&keys);
	mgrproto_rsp_wipe(&rsp);
	if (rc)
		fatalx("refusing to start: %s/%s", cfg->state_dir, res.detail);
	v->eng.after_persist = save_hash_to_manager;
	v->eng.after_ctx = &v->link;
	v->managed = true;
	/* Started by the manager: do not outlive it.  A new manager starts
	 * a new instance, which needs this one's state lock. */
	if (strncmp(cfg->manager, "fd:", 3) == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1)
			fatalx("the manager that started this instance is gone");
	}
	if (res.created)
		log_info("new vTPM: creating a TPM %s in %s",
			 cfg->tpm_version == TPM_VERSION_2 ? "2.0" : "1.2",
			 cfg->state_dir);
	else
		log_info("loaded %s/%s, generation %llu, matching the manager's "
			 "record",
			 cfg->state_dir, base,
			 (unsigned long long)v->eng.meta.generation);
}

/*
 * --user NAME or UID:GID: the identity the instance takes once what
 * needs privilege is open (the Xen devices: xenstore, gntdev, evtchn,
 * root-only on a stock dom0; the state directory).  The manager starts
 * every instance as root with --user UID:GID, the vTPM's own ids.
 */
static bool resolve_user(const struct config *cfg, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;
	uint32_t u, g;

	if (!cfg->user[0])
		return false;
	if (config_parse_ids(cfg->user, &u, &g) == 0) {
		*uid = u;
		*gid = g;
		return true;
	}
	pw = getpwnam(cfg->user);
	if (!pw)
		fatalx("--user %s: no such user", cfg->user);
	if (pw->pw_uid == 0)
		fatalx("--user %s: refusing to run as a privileged user",
		       cfg->user);
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return true;
}

/* --no-sandbox: only the change of identity. */
static void drop_privileges(const struct config *cfg, uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		fatal("cannot become %s", cfg->user);
	if (setuid(0) == 0)
		fatalx("could regain root after dropping to %s", cfg->user);
	log_debug("running as %s (uid %u)", cfg->user, (unsigned)uid);
}

/* The socket directory of a UNIX transport, for the sandbox's root. */
static int open_run_dir(const struct config *cfg, char *dir, size_t len)
{
	char *slash;
	int fd;

	snprintf(dir, len, "%s", cfg->transport.path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, len, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fatal("socket directory %s", dir);
	return fd;
}

/* Privileged handles open, the instance shuts itself in (sandbox.h). */
static void isolate(const struct config *cfg,
		    const struct transport_ops *ops, int dirfd, bool set_ids,
		    uid_t uid, gid_t gid)
{
	struct sandbox_spec sb = {
		.set_ids = set_ids,
		.uid = uid,
		.gid = gid,
		.keep_net = cfg->transport.kind == TRANSPORT_TCP,
		/* Only a managed instance ever dials (its manager). */
		.no_sockets = !cfg->manager[0],
		/* UID:GID comes from the manager's range: the vTPM's own. */
		.own_ids = set_ids && strchr(cfg->user, ':'),
		.state_dirfd = dirfd,
		.state_dir = cfg->state_dir,
		.run_dirfd = -1,
		.xen_dev = strncmp(cfg->manager, "xen", 3) == 0,
	};
	char rundir[sizeof(cfg->transport.path)];

	(void)ops;
	if (cfg->no_sandbox || !sandbox_available()) {
		if (cfg->no_sandbox)
			log_warnx("--no-sandbox: this instance runs without "
				  "its sandbox (debugging only)");
		else
			log_debug("a sanitizer build: no sandbox");
		if (set_ids)
			drop_privileges(cfg, uid, gid);
		return;
	}
	if (cfg->transport.kind == TRANSPORT_UNIX) {
		sb.run_dirfd = open_run_dir(cfg, rundir, sizeof(rundir));
		sb.run_dir = rundir;
	}
	if (sandbox_isolate(&sb))
		fatalx("cannot set up the sandbox (--no-sandbox runs without "
		       "it, for debugging)");
	if (sb.run_dirfd >= 0)
		close(sb.run_dirfd);
}

/* SIGTERM and SIGINT stop the instance, SIGUSR2 migrates it: each taken
 * by the loop, so one that comes during start-up acts once it runs. */
static void install_signals(struct vtpm *v)
{
	signal(SIGPIPE, SIG_IGN);
	uv_signal_init(v->loop, &v->sigterm);
	uv_signal_init(v->loop, &v->sigint);
	v->sigterm.data = v->sigint.data = v;
	uv_signal_start(&v->sigterm, on_signal, SIGTERM);
	uv_signal_start(&v->sigint, on_signal, SIGINT);
	uv_signal_init(v->loop, &v->sigusr2);
	v->sigusr2.data = v;
	uv_signal_start(&v->sigusr2, on_migrate_signal, SIGUSR2);
	v->signals_on = true;
}

/* Which TPM serves, and where. */
static void log_ready(const struct config *cfg)
{
	const struct transport_spec *ts = &cfg->transport;
	const char *ver = cfg->tpm_version == TPM_VERSION_2 ? "2.0" : "1.2";

	if (ts->kind == TRANSPORT_UNIX)
		log_info("ready: TPM %s serving on unix:%s", ver, ts->path);
	else if (ts->kind == TRANSPORT_TCP)
		log_info("ready: TPM %s serving on tcp:%s:%u", ver, ts->host,
			 ts->port);
	else
		log_info("ready: TPM %s serving on the Xen ring (devid %u)", ver,
			 cfg->devid);
}

/*
 * Signals, then the transport: a client may stop what it saw listen, and
 * the signal, taken by the loop once it runs, makes that a clean stop.
 */
static void start_serving(struct vtpm *v, const struct config *cfg,
			  const struct transport_ops *ops,
			  const struct timespec *t0)
{
	int rc;

	install_signals(v);

	v->transport.ops = ops;
	v->transport.vtpm = v;
	v->transport.loop = v->loop;
	v->transport.cfg = cfg;
	rc = ops->start(&v->transport);
	if (rc)
		fatalx("cannot start transport %s: %s", ops->name,
		       strerror(-rc));
	log_debug("start: %s after %.2f ms", "transport up", ms_since(t0));
}

int instance_main(const struct config *cfg,
		  const struct instance_transports *transports)
{
	struct vtpm vtpm;
	struct vtpm *v = &vtpm;
	struct state_keys keys;
	char name[128];
	int dirfd, lockfd;
	uint32_t src;
	bool deferred_power, moved;
	struct timespec t0;
	const struct transport_ops *ops;
	bool set_ids;
	uid_t uid = 0;
	gid_t gid = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(v, 0, sizeof(*v));
	mgrlink_init(&v->link);
	v->dial_manager = transports->dial_manager;
	/*
	 * Started by the manager, an instance holds stdio and its link (fd 3)
	 * and nothing else.  Whatever else a fork caught (the manager's
	 * connection to the physical TPM, opened by another thread while it
	 * spawned us) is closed before anything is opened here.
	 */
	if (strncmp(cfg->manager, "fd:3", 5) == 0)
		close_range(4, ~0U, 0);
	/* Off-loop work has one thread, and only while there is some
	 * (instance/worker.h): fewer threads mean fewer stacks and malloc
	 * arenas per vTPM. */
	mallopt(M_ARENA_MAX, 1);
	/* A fixed threshold: a client's large buffer (a 1 MiB state blob)
	 * is mapped on its own and goes back to the system when freed. */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024);
	set_log_subject(cfg, cfg->have_uuid ? cfg->uuid : NULL);
	ops = cfg->transport.kind == TRANSPORT_XEN_RING ? transports->xen_ring
							: transports->unix_socket;
	set_ids = resolve_user(cfg, &uid, &gid);
	/* Before the sandbox, which shows the instance nothing of /dev or
	 * /run (xenstored's socket): the Xen handles it serves through. */
	if (ops->preopen && ops->preopen(cfg))
		fatalx("cannot open the devices of transport %s", ops->name);

	if (!cfg->manager[0])
		read_state_key(cfg, &keys);
	read_migration_key(v, cfg);
	resolve_locality_policy(v, cfg);
	log_debug("start: %s after %.2f ms", "options and keys read", ms_since(&t0));
	if (cfg->manager[0] && transports->dial_prepare &&
	    transports->dial_prepare(cfg->manager))
		fatalx("manager link %s: cannot load what it needs",
		       cfg->manager);
	dirfd = open_state_dir(cfg, set_ids ? uid : geteuid());
	vtpm_notify_prepare();
	isolate(cfg, ops, dirfd, set_ids, uid, gid);
	log_debug("start: %s after %.2f ms", "sandbox set up", ms_since(&t0));
	if (cfg->have_uuid) {
		char us[37];
		uuid_format(cfg->uuid, us);
		snprintf(name, sizeof(name), "vtpm-%s.state", us);
	} else {
		snprintf(name, sizeof(name), "vtpm-dom%ld.state", cfg->domid);
	}
	lockfd = lock_state(dirfd, name);
	if (lockfd < 0)
		fatalx("%s/%s: %s", cfg->state_dir, name,
		       lockfd == -EWOULDBLOCK
			       ? "in use by another vtpm-service process"
			       : strerror(-lockfd));
	v->loop = uv_default_loop();
	v->cfg = cfg;
	/*
	 * A socket listens before the state loads, as swtpm's does: a client
	 * that connects meanwhile has its first command queued by the
	 * kernel, read once the loop runs (when the TPM is up), instead of
	 * finding no socket and retrying.  After the lock, so that a second
	 * process on the same vTPM never touches the first one's socket.
	 * The Xen ring comes up after the engine, as before.
	 */
	if (cfg->transport.kind != TRANSPORT_XEN_RING)
		start_serving(v, cfg, ops, &t0);
	if (cfg->manager[0])
		load_managed(v, cfg, dirfd, name);
	else
		load_standalone(v, cfg, dirfd, name, &keys);
	log_debug("start: %s after %.2f ms", "state loaded", ms_since(&t0));
	deferred_power = cfg->transport.kind == TRANSPORT_XEN_RING;
	/* Moved here by an online migration: its volatile state is used
	 * once, as it was on the source, without a Startup. */
	moved = !deferred_power && resumes_migration(v);
	if (!deferred_power && !moved &&
	    engine_resume_tag(&v->eng, &(uint32_t){ 0 })) {
		/* Saved for a Xen domain's restore: no other client boots it
		 * (docs/migration.md). */
		log_info("a volatile state saved for a Xen restore is "
			 "discarded: transport %s", ops->name);
		engine_resume_forget(&v->eng);
	}
	if (!deferred_power) {
		if (engine_power_on(&v->eng, false))
			fatalx("the TPM engine failed to start from %s/%s",
			       cfg->state_dir, name);
		log_debug("start: %s after %.2f ms", "engine powered on",
			  ms_since(&t0));
		/* swtpm's not-need-init + startup-clear: usable at once. */
		src = moved ? 0 : engine_startup_clear(&v->eng);
		if (src != 0)
			log_info("TPM startup returned 0x%x (state resumed)",
				 src);
		log_debug("start: %s after %.2f ms", "TPM started",
			  ms_since(&t0));
	}
	if (worker_init(&v->worker, v->loop, WORKER_LINGER_MS))
		fatalx("cannot set up the off-loop worker");
	jobq_init(&v->q, &v->worker, &instance_jobq_ops, v);
	if (cfg->transport.kind == TRANSPORT_XEN_RING)
		start_serving(v, cfg, ops, &t0);
	/* Listening, state loaded: from here on, only the allowlist. */
	if (!cfg->no_sandbox && sandbox_available() &&
	    sandbox_lock(!cfg->manager[0]))
		fatalx("cannot lock the sandbox (--no-sandbox runs without it, "
		       "for debugging)");
	log_debug("start: %s after %.2f ms", "seccomp filter loaded", ms_since(&t0));
	if (deferred_power) {
		v->power_job = (struct vtpm_job){
			.kind = VTPM_JOB_CALL,
			.call = power_on_call,
			.call_offloop = true,
			.done = power_on_done,
			.data = v,
		};
		vtpm_submit(v, &v->power_job);
	}
	/*
	 * What manufacturing or Startup changed goes to disk as the first
	 * job, on the worker thread: commands that arrive meanwhile queue
	 * behind it, so none is answered before that state is durable.
	 */
	if (engine_is_dirty(&v->eng)) {
		v->first_persist = (struct vtpm_job){
			.kind = VTPM_JOB_CALL,
			.call = startup_persist_call,
			.done = startup_persist_done,
			.data = v,
		};
		vtpm_submit(v, &v->first_persist);
	}
	if (v->manufacture)
		manufacture_submit(v);
	if (v->managed && mgrlink_pollfd(&v->link) >= 0) {
		/* The manager going away ends this instance's purpose.  (The
		 * Xen ring has no such fd: a restarted manager backend picks
		 * the ring up again, and calls fail while it is away.) */
		uv_poll_init(v->loop, &v->link_poll, mgrlink_pollfd(&v->link));
		v->link_poll.data = v;
		uv_poll_start(&v->link_poll, UV_DISCONNECT, on_link_event);
	}
	if (v->managed)
		start_pcrserve(v);
	vtpm_notify_ready();
	log_debug("start: listening after %.2f ms", ms_since(&t0));
	log_ready(cfg);

	/* Raise the floor to what was just loaded, off the loop, unless it
	 * is there already (the last clean stop put it there).  With a
	 * manager, its record is the floor. */
	if (!v->managed && !mark_holds(v, v->eng.meta.generation)) {
		v->start_mark_work = (struct worker_req){
			.work = watermark_work,
			.after = watermark_start_after,
			.data = v,
		};
		v->start_mark_gen = v->eng.meta.generation;
		v->start_mark_busy = true;
		worker_queue(&v->worker, &v->start_mark_work);
	}

	uv_run(v->loop, UV_RUN_DEFAULT);
	if (v->managed) {
		char err[200];

		/* The last state's record, before this instance is gone. */
		if (mgrlink_settle(&v->link, err, sizeof(err)) &&
		    v->exit_code == 0) {
			log_errx("the record of the last state: %s", err);
			v->exit_code = 1;
		}
	}
	pcrserve_stop(v, v->pcrserve);
	worker_stop(&v->worker);
	uv_run(v->loop, UV_RUN_DEFAULT); /* the worker's handle, if open */
	uv_loop_close(v->loop);
	engine_free(&v->eng);
	OPENSSL_cleanse(v->migration_key, sizeof(v->migration_key));
	mgrlink_close(&v->link);
	close(lockfd);
	close(dirfd);
	return v->exit_code;
}
