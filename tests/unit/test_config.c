/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "proto/config.h"
#include "lib/hex.h"
#include "proto/keyfile.h"
#include "lib/log.h"

static void uuid_parses_canonical_form_only(void **state)
{
	uint8_t u[16];
	char s[37];

	(void)state;
	assert_int_equal(config_parse_uuid("5c0ba5e4-3b1f-4e8e-9c2a-6f1d2a3b4c5d", u), 0);
	uuid_format(u, s);
	assert_string_equal(s, "5c0ba5e4-3b1f-4e8e-9c2a-6f1d2a3b4c5d");
	assert_int_equal(config_parse_uuid("5C0BA5E4-3B1F-4E8E-9C2A-6F1D2A3B4C5D", u), 0);
	assert_int_not_equal(config_parse_uuid("5c0ba5e43b1f4e8e9c2a6f1d2a3b4c5d", u), 0);
	assert_int_not_equal(config_parse_uuid("5c0ba5e4-3b1f-4e8e-9c2a-6f1d2a3b4c5", u), 0);
	assert_int_not_equal(config_parse_uuid("5c0ba5e4-3b1f-4e8e-9c2a-6f1d2a3b4c5dd", u), 0);
	assert_int_not_equal(config_parse_uuid("5c0ba5e4x3b1f-4e8e-9c2a-6f1d2a3b4c5d", u), 0);
	assert_int_not_equal(config_parse_uuid("5c0ba5e4-3b1f-4e8e-9c2a-6f1d2a3b4c5g", u), 0);
	assert_int_not_equal(config_parse_uuid("", u), 0);
}

static void transports_parse_and_bad_ones_do_not(void **state)
{
	struct transport_spec t;
	char longpath[200];

	(void)state;
	assert_int_equal(config_parse_transport("unix:/run/vtpm/dom1", &t), 0);
	assert_int_equal(t.kind, TRANSPORT_UNIX);
	assert_string_equal(t.path, "/run/vtpm/dom1");
	assert_int_equal(config_parse_transport("tcp:127.0.0.1:2321", &t), 0);
	assert_int_equal(t.kind, TRANSPORT_TCP);
	assert_string_equal(t.host, "127.0.0.1");
	assert_int_equal(t.port, 2321);
	assert_int_equal(config_parse_transport("tcp:[::1]:2321", &t), 0);
	assert_string_equal(t.host, "::1");
	assert_int_equal(config_parse_transport("xen-ring", &t), 0);
	assert_int_equal(t.kind, TRANSPORT_XEN_RING);
	assert_int_not_equal(config_parse_transport("unix:", &t), 0);
	assert_int_not_equal(config_parse_transport("tcp:127.0.0.1", &t), 0);
	assert_int_not_equal(config_parse_transport("tcp:127.0.0.1:65535", &t), 0);
	assert_int_not_equal(config_parse_transport("tcp:127.0.0.1:0", &t), 0);
	assert_int_not_equal(config_parse_transport("tcp:localhost:2321", &t), 0);
	assert_int_not_equal(config_parse_transport("tcp:127.0.0.1:23x", &t), 0);
	assert_int_not_equal(config_parse_transport("pipe:/x", &t), 0);
	memset(longpath, 'a', sizeof(longpath));
	memcpy(longpath, "unix:/", 6);
	longpath[110] = '\0';
	assert_int_not_equal(config_parse_transport(longpath, &t), 0);
}

static void uid_ranges_and_ids_parse_strictly(void **state)
{
	static const char *const bad_ranges[] = {
		"", "-", "1-", "-5", "0-10", "10-5", " 1-5", "1-5 ", "+1-5",
		"1 - 5", "0x10-0x20", "1-4294967295", "4294967295-4294967295",
		"1-99999999999999999999", "1-5-7", "1--5", "1,5", "a-b", "1-5\n",
	};
	static const char *const bad_ids[] = {
		"", ":", "1:", ":1", "0:1", "1:0", "1:2:3", "-1:2", "1:4294967295",
		" 1:2", "1:2 ", "nobody", "1-2",
	};
	struct config c;
	char err[CONFIG_ERR_MAX];
	uint32_t lo, hi;

	(void)state;
	assert_int_equal(config_parse_uid_range("1000000-1065535", &lo, &hi), 0);
	assert_int_equal(lo, 1000000);
	assert_int_equal(hi, 1065535);
	assert_int_equal(config_parse_uid_range("7-7", &lo, &hi), 0);
	assert_int_equal(config_parse_uid_range("1-4294967294", &lo, &hi), 0);
	assert_int_equal(hi, 4294967294u);
	for (size_t i = 0; i < sizeof(bad_ranges) / sizeof(bad_ranges[0]); i++) {
		lo = hi = 42;
		assert_int_not_equal(config_parse_uid_range(bad_ranges[i], &lo, &hi), 0);
		assert_int_equal(lo, 42);
		assert_int_equal(hi, 42);
	}
	assert_int_equal(config_parse_ids("1000001:1000001", &lo, &hi), 0);
	assert_int_equal(lo, 1000001);
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++)
		assert_int_not_equal(config_parse_ids(bad_ids[i], &lo, &hi), 0);

	config_defaults(&c);
	assert_int_equal(c.inst_uid_lo, 0);
	assert_int_equal(c.inst_uid_hi, 0);
	assert_false(c.no_sandbox);
	assert_int_not_equal(config_set(&c, "instance-uids", "5-1", err, sizeof(err)), 0);
	assert_non_null(strstr(err, "instance-uids"));
	assert_int_equal(c.inst_uid_lo, 0);
	assert_int_equal(config_set(&c, "instance-uids", "2000-2999", err, sizeof(err)), 0);
	assert_int_equal(c.inst_uid_lo, 2000);
	assert_int_equal(c.inst_uid_hi, 2999);
	assert_int_not_equal(config_set(&c, "client-group", "", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "client-group", "kvm", err, sizeof(err)), 0);
	assert_string_equal(c.client_group, "kvm");
	assert_int_equal(config_set(&c, "no-sandbox", NULL, err, sizeof(err)), 0);
	assert_true(c.no_sandbox);
	assert_int_equal(config_set(&c, "no-sandbox", "no", err, sizeof(err)), 0);
	assert_false(c.no_sandbox);
	assert_int_not_equal(config_set(&c, "no-sandbox", "maybe", err, sizeof(err)), 0);
	assert_int_equal(config_load_string(&c, "instance-uids = 3000-3999\n"
					       "client-group = qemu\n", err,
					       sizeof(err)), 0);
	assert_int_equal(c.inst_uid_lo, 3000);
	assert_string_equal(c.client_group, "qemu");
	assert_int_not_equal(config_load_string(&c, "instance-uids = 0-3999\n",
						 err, sizeof(err)), 0);
}

static void set_rejects_bad_values_with_a_message(void **state)
{
	struct config c;
	char err[CONFIG_ERR_MAX];

	(void)state;
	config_defaults(&c);
	assert_int_equal(config_set(&c, "domid", "7", err, sizeof(err)), 0);
	assert_int_equal(c.domid, 7);
	assert_int_not_equal(config_set(&c, "domid", "-1", err, sizeof(err)), 0);
	assert_non_null(strstr(err, "domid"));
	assert_int_not_equal(config_set(&c, "domid", "32752", err, sizeof(err)), 0);
	assert_int_not_equal(config_set(&c, "domid", "1x", err, sizeof(err)), 0);
	assert_int_not_equal(config_set(&c, "tpm-version", "3.0", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "tpm-version", "1.2", err, sizeof(err)), 0);
	assert_int_equal(c.tpm_version, TPM_VERSION_1_2);
	assert_int_not_equal(config_set(&c, "socket-mode", "0666", err, sizeof(err)), 0);
	assert_int_not_equal(config_set(&c, "socket-mode", "0700", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "socket-mode", "0660", err, sizeof(err)), 0);
	assert_int_not_equal(config_set(&c, "role", "bogus", err, sizeof(err)), 0);
	assert_int_not_equal(config_set(&c, "no-such-key", "1", err, sizeof(err)), 0);
	assert_non_null(strstr(err, "unknown option"));
	assert_int_not_equal(config_set(&c, "log-level", "loud", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "log-level", "debug", err, sizeof(err)), 0);
	assert_int_equal(c.log_level, LOG_LVL_DEBUG);
}

/* migrate-listen and migrate-peer (online migration). */
static void migrate_listen_and_peers_parse_strictly(void **state)
{
	struct config c;
	char err[CONFIG_ERR_MAX], host[64], peer[CONFIG_PEER_HEX_MAX + 2];
	uint16_t port;
	const char *bad[] = { "", ":1", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0",
			      "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:1x",
			      "host.example:80", "::1:80", "[::1]80", "[::1:80",
			      "[]:80", "1.2.3.4:80 ", " 1.2.3.4:80",
			      "1111111111111111111111111111111111111111111111111"
			      "1111111111111111:1" };

	(void)state;
	config_defaults(&c);
	assert_string_equal(c.migrate_host, "");
	assert_int_equal(config_parse_hostport("10.0.0.2:7611", host,
					       sizeof(host), &port), 0);
	assert_string_equal(host, "10.0.0.2");
	assert_int_equal(port, 7611);
	assert_int_equal(config_parse_hostport("[fe80::1]:65535", host,
					       sizeof(host), &port), 0);
	assert_string_equal(host, "fe80::1");
	assert_int_equal(port, 65535);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(config_parse_hostport(bad[i], host,
						       sizeof(host), &port),
				 -EINVAL);
	assert_int_equal(config_set(&c, "migrate-listen", "127.0.0.1:7611", err,
				    sizeof(err)), 0);
	assert_string_equal(c.migrate_host, "127.0.0.1");
	assert_int_equal(c.migrate_port, 7611);
	assert_int_not_equal(config_set(&c, "migrate-listen", "localhost:1",
					err, sizeof(err)), 0);
	/* peers: hex of 32 bytes or more, even, at most 8 */
	memset(peer, 'a', 64);
	peer[64] = '\0';
	for (int i = 0; i < CONFIG_MAX_PEERS; i++)
		assert_int_equal(config_set(&c, "migrate-peer", peer, err,
					    sizeof(err)), 0);
	assert_int_equal(c.n_migrate_peers, CONFIG_MAX_PEERS);
	assert_int_not_equal(config_set(&c, "migrate-peer", peer, err,
					sizeof(err)), 0);
	config_defaults(&c);
	peer[63] = '\0';
	assert_int_not_equal(config_set(&c, "migrate-peer", peer, err,
					sizeof(err)), 0);
	peer[62] = '\0';
	assert_int_not_equal(config_set(&c, "migrate-peer", peer, err,
					sizeof(err)), 0);
	memset(peer, 'a', 64);
	peer[10] = 'g';
	assert_int_not_equal(config_set(&c, "migrate-peer", peer, err,
					sizeof(err)), 0);
	memset(peer, '0', sizeof(peer) - 1);
	peer[CONFIG_PEER_HEX_MAX] = '\0';
	assert_int_not_equal(config_set(&c, "migrate-peer", peer, err,
					sizeof(err)), 0);
	assert_int_equal(c.n_migrate_peers, 0);
}

static char *write_tmp(const char *text)
{
	static char path[64];
	int fd;

	strcpy(path, "/tmp/vtpm-test-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void file_then_command_line_wins(void **state)
{
	struct config c;
	char err[CONFIG_ERR_MAX];
	char *p = write_tmp("[instance]\nrole = instance\ndomid = 3\n"
			    "transport = unix:/tmp/x\nstate-dir = /var/lib/x\n"
			    "state-key = /etc/k\n; comment\n");

	(void)state;
	config_defaults(&c);
	assert_int_equal(config_load_file(&c, p, err, sizeof(err)), 0);
	assert_int_equal(c.domid, 3);
	assert_int_equal(config_set(&c, "domid", "9", err, sizeof(err)), 0);
	assert_int_equal(c.domid, 9);
	assert_string_equal(c.state_dir, "/var/lib/x");
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
	unlink(p);
}

static void bad_files_name_the_problem(void **state)
{
	struct config c;
	char err[CONFIG_ERR_MAX];
	char *p;

	(void)state;
	config_defaults(&c);
	p = write_tmp("[instance]\ndomid = banana\n");
	assert_int_not_equal(config_load_file(&c, p, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "banana"));
	unlink(p);
	p = write_tmp("[weird]\ndomid = 1\n");
	assert_int_not_equal(config_load_file(&c, p, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "weird"));
	unlink(p);
	p = write_tmp("[instance]\nthis line has no equals sign\n");
	assert_int_not_equal(config_load_file(&c, p, err, sizeof(err)), 0);
	assert_non_null(strstr(err, ":2:"));
	unlink(p);
	assert_int_not_equal(config_load_file(&c, "/nonexistent/x.conf", err, sizeof(err)), 0);
	assert_non_null(strstr(err, "cannot open"));
}

static void validate_names_the_missing_option(void **state)
{
	struct config c;
	char err[CONFIG_ERR_MAX];

	(void)state;
	config_defaults(&c);
	assert_int_not_equal(config_validate(&c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "--role"));
	c.role = ROLE_INSTANCE;
	assert_int_not_equal(config_validate(&c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "--domid"));
	c.domid = 1;
	assert_int_not_equal(config_validate(&c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "--transport"));
	config_parse_transport("unix:/tmp/s", &c.transport);
	assert_int_not_equal(config_validate(&c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "--state-dir"));
	strcpy(c.state_dir, "/tmp");
	assert_int_not_equal(config_validate(&c, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "--state-key"));
	strcpy(c.state_key, "/k");
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
	strcpy(c.manager, "/m");
	assert_int_not_equal(config_validate(&c, err, sizeof(err)), 0);
}

static void keys_are_32_raw_or_64_hex(void **state)
{
	uint8_t key[32], raw[66];
	char err[200];

	(void)state;
	for (int i = 0; i < 32; i++)
		raw[i] = (uint8_t)(0xf0 + i);
	assert_int_equal(keyfile_parse(raw, 32, key, err, sizeof(err)), 0);
	assert_memory_equal(key, raw, 32);
	memcpy(raw, "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F\n", 65);
	assert_int_equal(keyfile_parse(raw, 64, key, err, sizeof(err)), 0);
	assert_int_equal(key[31], 0x1f);
	assert_int_equal(keyfile_parse(raw, 65, key, err, sizeof(err)), 0);
	for (size_t n = 0; n < 66; n++) {
		if (n == 32 || n == 64 || n == 65)
			continue;
		assert_int_not_equal(keyfile_parse(raw, n, key, err, sizeof(err)), 0);
	}
	raw[5] = 'g';
	assert_int_not_equal(keyfile_parse(raw, 64, key, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "offset 5"));
}

static void key_file_readable_by_others_is_refused(void **state)
{
	uint8_t key[32];
	char err[300];
	char *p = write_tmp("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");

	(void)state;
	chmod(p, 0600);
	assert_int_equal(keyfile_load(p, key, err, sizeof(err)), 0);
	chmod(p, 0640);
	assert_int_not_equal(keyfile_load(p, key, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "group or others"));
	chmod(p, 0604);
	assert_int_not_equal(keyfile_load(p, key, err, sizeof(err)), 0);
	unlink(p);
	assert_int_not_equal(keyfile_load(p, key, err, sizeof(err)), 0);
}

static void connection_limits_locality_and_state_blob_options(void **state)
{
	struct config c;
	char err[CONFIG_ERR_MAX], path[256];

	(void)state;
	config_defaults(&c);
	assert_int_equal(config_max_connections(&c, false), 8);
	assert_int_equal(config_max_connections(&c, true), 64);
	assert_int_equal(c.idle_timeout_ms, 600000);
	assert_int_equal(c.locality_policy, LOCALITY_DEFAULT);
	assert_false(c.allow_plaintext_state);
	assert_string_equal(c.migration_key, "");
	assert_int_equal(config_set(&c, "max-connections", "1", err, sizeof(err)), 0);
	assert_int_equal(config_max_connections(&c, true), 1);
	assert_int_not_equal(config_set(&c, "max-connections", "0", err, sizeof(err)), 0);
	assert_int_not_equal(config_set(&c, "max-connections", "1025", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "idle-timeout-ms", "0", err, sizeof(err)), 0);
	assert_int_equal(c.idle_timeout_ms, 0);
	assert_int_not_equal(config_set(&c, "idle-timeout-ms", "-1", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "locality", "reject-4", err, sizeof(err)), 0);
	assert_int_equal(c.locality_policy, LOCALITY_REJECT_4);
	assert_int_equal(config_set(&c, "locality", "reject-locality-4", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "locality", "allow-4", err, sizeof(err)), 0);
	assert_int_equal(c.locality_policy, LOCALITY_ALLOW_4);
	assert_int_not_equal(config_set(&c, "locality", "4", err, sizeof(err)), 0);
	/* A flag on the command line (no value), yes/no in a file. */
	assert_int_equal(config_set(&c, "allow-plaintext-state", NULL, err, sizeof(err)), 0);
	assert_true(c.allow_plaintext_state);
	assert_int_equal(config_set(&c, "allow-plaintext-state", "no", err, sizeof(err)), 0);
	assert_false(c.allow_plaintext_state);
	assert_int_not_equal(config_set(&c, "allow-plaintext-state", "maybe", err, sizeof(err)), 0);
	/* swtpm's spelling, a bare path; unauthenticated modes refused. */
	assert_int_equal(config_parse_migration_key("file=/k,mode=aes-256-gcm",
						    path, sizeof(path)), 0);
	assert_string_equal(path, "/k");
	assert_int_equal(config_parse_migration_key("/etc/k", path, sizeof(path)), 0);
	assert_string_equal(path, "/etc/k");
	assert_int_not_equal(config_parse_migration_key("file=/k,mode=aes-256-cbc",
							path, sizeof(path)), 0);
	assert_int_not_equal(config_parse_migration_key("file=/k,mode=aes-cbc",
							path, sizeof(path)), 0);
	assert_int_not_equal(config_parse_migration_key("file=/k,remove=true",
							path, sizeof(path)), 0);
	assert_int_not_equal(config_parse_migration_key("file=", path, sizeof(path)), 0);
	assert_int_not_equal(config_parse_migration_key("", path, sizeof(path)), 0);
	assert_int_not_equal(config_parse_migration_key("pwdfile=/k", path, sizeof(path)), 0);
	assert_int_not_equal(config_parse_migration_key("/k,", path, sizeof(path)), 0);
	assert_int_not_equal(config_parse_migration_key("file=/k", path, 2), 0);
	assert_int_not_equal(config_set(&c, "migration-key", "file=/k,mode=aes-cbc",
					err, sizeof(err)), 0);
	assert_non_null(strstr(err, "migration-key"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(connection_limits_locality_and_state_blob_options),
		cmocka_unit_test(uuid_parses_canonical_form_only),
		cmocka_unit_test(transports_parse_and_bad_ones_do_not),
		cmocka_unit_test(set_rejects_bad_values_with_a_message),
		cmocka_unit_test(migrate_listen_and_peers_parse_strictly),
		cmocka_unit_test(uid_ranges_and_ids_parse_strictly),
		cmocka_unit_test(file_then_command_line_wins),
		cmocka_unit_test(bad_files_name_the_problem),
		cmocka_unit_test(validate_names_the_missing_option),
		cmocka_unit_test(keys_are_32_raw_or_64_hex),
		cmocka_unit_test(key_file_readable_by_others_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
