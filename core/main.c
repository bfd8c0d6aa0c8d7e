/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpm-service: option parsing and role dispatch, and the one file that
 * sees both roles and the transports: it wires the instance to the
 * transports it may serve on.  Built twice (CMakeLists.txt): the instance
 * image (vtpm-service) and the manager image (vtpm-service-manager); each
 * execs the other for the role it does not carry.
 */
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "proto/config.h"
#ifdef VTPM_WITH_MANAGER
#include "manager/manager.h"
#define SIBLING "vtpm-service"
#else
#include "instance/mgrlink.h"
#include "instance/vtpm.h"
#include "unix-socket/unix_socket.h"
#include "xen-ring/mgrlink_xen.h"
#include "xen-ring/xen_ring.h"
#define SIBLING "vtpm-service-manager"
#endif

#ifdef VTPM_WITH_MANAGER
#define INIT_EXTRA 0
#else
/*
 * The instance looks no cipher up by its legacy name (its own code
 * fetches AES-256-GCM from the provider; libtpms uses the EVP_aes_*()
 * objects, which OpenSSL 3 fetches by provider name): without the legacy
 * table, the first fetch, which copies that table's ~200 names into the
 * provider name map, costs about 0.25 ms less at every start (measured
 * on OpenSSL 3.0.x; tools/bench/RESULTS.md).  Digests keep their table:
 * libtpms calls EVP_get_digestbyname.
 */
#define INIT_EXTRA OPENSSL_INIT_NO_ADD_ALL_CIPHERS
#endif

/* The other role is the sibling image in the same directory. */
static void exec_sibling(char **argv)
{
	char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 32);
	char *slash;

	if (n < 0)
		fatal("/proc/self/exe");
	path[n] = '\0';
	slash = strrchr(path, '/');
	strcpy(slash ? slash + 1 : path, SIBLING);
	execv(path, argv);
	fatal("cannot run %s", path);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vtpm-service --role=instance --domid N [--uuid UUID]\n"
		"                    --transport unix:PATH|tcp:ADDR:PORT|xen-ring\n"
		"                    --state-key FILE | --manager PATH\n"
		"                    --state-dir DIR [--tpm-version 2.0|1.2]\n"
		"                    [--config FILE] [--log-level LEVEL]\n"
		"                    [--socket-group GROUP] [--socket-mode MODE]\n"
		"                    [--devid N] [--user USER|UID:GID] [--no-sandbox]\n"
		"                    [--max-connections N] [--idle-timeout-ms MS]\n"
		"                    [--locality reject-4|allow-4]\n"
		"                    [--migration-key file=PATH[,mode=aes-256-gcm]]\n"
		"                    [--allow-plaintext-state]\n"
		"       vtpm-service --role=manager --state-dir DIR [--tcti TCTI]\n"
		"                    [--control PATH] [--pcrs sha256:0,2,4,7]\n"
		"                    [--nv-index IDX] [--counter-interval S]\n"
		"                    [--tpm-timeout S]\n"
		"                    [--instance-user USER] [--run-dir DIR]\n"
		"                    [--instance-uids LOW-HIGH] [--client-group GROUP]\n"
		"                    [--xen auto|on|off] [--xen-unknown refuse|create]\n"
		"                    [--migrate-listen HOST:PORT] [--migrate-peer AK_HEX]\n"
		"       vtpm-service --help | --version\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "role", required_argument, NULL, 0 },
		{ "domid", required_argument, NULL, 0 },
		{ "uuid", required_argument, NULL, 0 },
		{ "transport", required_argument, NULL, 0 },
		{ "state-dir", required_argument, NULL, 0 },
		{ "state-key", required_argument, NULL, 0 },
		{ "manager", required_argument, NULL, 0 },
		{ "tpm-version", required_argument, NULL, 0 },
		{ "log-level", required_argument, NULL, 0 },
		{ "socket-group", required_argument, NULL, 0 },
		{ "socket-mode", required_argument, NULL, 0 },
		{ "buffer-size", required_argument, NULL, 0 },
		{ "client-timeout-ms", required_argument, NULL, 0 },
		{ "hal", required_argument, NULL, 0 },
		{ "tcti", required_argument, NULL, 0 },
		{ "control", required_argument, NULL, 0 },
		{ "run-dir", required_argument, NULL, 0 },
		{ "pcrs", required_argument, NULL, 0 },
		{ "nv-index", required_argument, NULL, 0 },
		{ "counter-interval", required_argument, NULL, 0 },
		{ "tpm-timeout", required_argument, NULL, 0 },
		{ "instance-user", required_argument, NULL, 0 },
		{ "instance-exe", required_argument, NULL, 0 },
		{ "devid", required_argument, NULL, 0 },
		{ "user", required_argument, NULL, 0 },
		{ "xen", required_argument, NULL, 0 },
		{ "xen-unknown", required_argument, NULL, 0 },
		{ "migrate-listen", required_argument, NULL, 0 },
		{ "migrate-peer", required_argument, NULL, 0 },
		{ "instance-uids", required_argument, NULL, 0 },
		{ "client-group", required_argument, NULL, 0 },
		{ "no-sandbox", no_argument, NULL, 0 },
		{ "max-connections", required_argument, NULL, 0 },
		{ "idle-timeout-ms", required_argument, NULL, 0 },
		{ "locality", required_argument, NULL, 0 },
		{ "migration-key", required_argument, NULL, 0 },
		{ "allow-plaintext-state", no_argument, NULL, 0 },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct config cfg;
	char err[CONFIG_ERR_MAX];
	const char *config_file = NULL;
	int ch, idx;

	log_init("vtpm-service", LOG_LVL_INFO);
	OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG | INIT_EXTRA, NULL);
	config_defaults(&cfg);

	/* First pass: only --config, --help, --version. */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "c:hV", opts, &idx)) != -1) {
		if (ch == 'c')
			config_file = optarg;
		else if (ch == 'h') {
			usage(stdout);
			return 0;
		} else if (ch == 'V') {
			printf("vtpm-service %s\n", VTPM_SERVICE_VERSION);
			return 0;
		}
	}
	if (config_file && config_load_file(&cfg, config_file, err, sizeof(err)))
		fatalx("config: %s", err);

	/* Second pass: the command line wins over the file. */
	opterr = 1;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:hV", opts, &idx)) != -1) {
		if (ch == 0) {
			if (config_set(&cfg, opts[idx].name, optarg, err,
				       sizeof(err)))
				fatalx("%s", err);
		} else if (ch == '?') {
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		log_errx("unexpected argument '%s'", argv[optind]);
		usage(stderr);
		return 2;
	}
	log_init("vtpm-service", cfg.log_level);
	if (config_validate(&cfg, err, sizeof(err))) {
		log_errx("%s", err);
		usage(stderr);
		return 2;
	}
	switch (cfg.role) {
#ifdef VTPM_WITH_MANAGER
	case ROLE_MANAGER:
		return manager_main(&cfg);
	case ROLE_INSTANCE:
		exec_sibling(argv);
		return 1;
#else
	case ROLE_INSTANCE: {
		static const struct instance_transports transports = {
			.unix_socket = &unix_socket_transport_ops,
			.xen_ring = &xen_ring_transport_ops,
			.dial_manager = mgrlink_xen_dial,
			.dial_prepare = mgrlink_xen_prepare,
		};

		return instance_main(&cfg, &transports);
	}
	case ROLE_MANAGER:
		exec_sibling(argv);
		return 1;
#endif
	default:
		return 2;
	}
}
