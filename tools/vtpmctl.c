/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpmctl: manages vTPMs through the manager's control socket (one JSON
 * object per line each way), and verifies deep quotes offline.
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto/config.h"
#include "proto/mgrproto.h"
#include "tss-device/tss_hal.h"

/* Exit codes (vtpmctl(8)); 2..6 are the manager's own codes. */
enum {
	EXIT_USAGE = 1,
	EXIT_UNREACHABLE = 7,
	EXIT_BAD_QUOTE = 8,
};

static const char *control_path = "/run/vtpm/manager.sock";
static int json_out;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vtpmctl [--control PATH] [--json] COMMAND ...\n"
		"  create [--uuid U] [--domid N] [--transport unix:PATH|tcp:ADDR:PORT|xen-domain]\n"
		"         [--tpm-version 2.0|1.2]\n"
		"  list | status | show U | start U | stop U | delete U\n"
		"  quote U --nonce HEX [--pcr-mask MASK] [--out FILE]\n"
		"  verify-quote FILE [--ak-spki HEX]\n"
		"  reseal [--pcr N=HEX ...]   (seal the root key to predicted PCR values)\n");
}

static int request(json_object *req, json_object **rsp)
{
	struct sockaddr_un sa;
	const char *s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd;

	if (strlen(control_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "vtpmctl: control socket path too long\n");
		return EXIT_USAGE;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, control_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "vtpmctl: cannot reach the manager at %s: %s\n",
			control_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return EXIT_UNREACHABLE;
	}
	if (write(fd, s, strlen(s)) < 0 || write(fd, "\n", 1) < 0) {
		fprintf(stderr, "vtpmctl: write: %s\n", strerror(errno));
		close(fd);
		return EXIT_UNREACHABLE;
	}
	for (;;) {
		ssize_t n;

		if (len + 4096 > cap) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
			if (!buf)
				exit(EXIT_UNREACHABLE);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(buf, '\n', len))
			break;
	}
	close(fd);
	if (!len) {
		fprintf(stderr, "vtpmctl: the manager closed the connection\n");
		free(buf);
		return EXIT_UNREACHABLE;
	}
	buf[len] = '\0';
	*rsp = json_tokener_parse(buf);
	free(buf);
	if (!*rsp) {
		fprintf(stderr, "vtpmctl: unreadable answer from the manager\n");
		return EXIT_UNREACHABLE;
	}
	return 0;
}

static const char *get_str(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

/* Prints the answer; returns the exit code it calls for. */
static int finish(json_object *rsp, const char *human_key)
{
	json_object *v;
	int code = 0;

	if (!json_object_object_get_ex(rsp, "ok", &v) || !json_object_get_boolean(v)) {
		code = json_object_object_get_ex(rsp, "code", &v)
			       ? json_object_get_int(v)
			       : 6;
		if (code < 2 || code > 6)
			code = 6;
		if (json_out)
			printf("%s\n", json_object_to_json_string_ext(rsp, JSON_C_TO_STRING_PRETTY));
		else
			fprintf(stderr, "vtpmctl: %s\n", get_str(rsp, "error"));
		json_object_put(rsp);
		return code;
	}
	if (json_out) {
		printf("%s\n", json_object_to_json_string_ext(rsp, JSON_C_TO_STRING_PRETTY));
	} else if (human_key && strcmp(human_key, "vtpms") == 0) {
		json_object *arr;
		json_object_object_get_ex(rsp, "vtpms", &arr);
		printf("%-36s %6s %-9s %4s %10s  %s\n", "UUID", "DOMID", "STATE",
		       "TPM", "GENERATION", "TRANSPORT");
		for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
			json_object *e = json_object_array_get_idx(arr, i);
			printf("%-36s %6s %-9s %4s %10s  %s\n", get_str(e, "uuid"),
			       get_str(e, "domid"), get_str(e, "state"),
			       get_str(e, "tpm_version"), get_str(e, "generation"),
			       get_str(e, "transport"));
		}
	} else if (human_key && json_object_object_get_ex(rsp, human_key, &v)) {
		if (json_object_is_type(v, json_type_object)) {
			json_object_object_foreach(v, key, val)
				printf("%s: %s\n", key, json_object_get_string(val));
		} else {
			printf("%s\n", json_object_get_string(v));
		}
	} else if (human_key && strcmp(human_key, "*") == 0) {
		json_object_object_foreach(rsp, key, val)
			if (strcmp(key, "ok") != 0)
				printf("%s: %s\n", key, json_object_get_string(val));
	}
	json_object_put(rsp);
	return 0;
}

static int simple(const char *cmd, const char *uuid, const char *human_key)
{
	json_object *req = json_object_new_object(), *rsp;
	int rc;

	json_object_object_add(req, "cmd", json_object_new_string(cmd));
	if (uuid)
		json_object_object_add(req, "uuid", json_object_new_string(uuid));
	rc = request(req, &rsp);
	json_object_put(req);
	return rc ? rc : finish(rsp, human_key);
}

static int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "uuid", required_argument, NULL, 'u' },
		{ "domid", required_argument, NULL, 'd' },
		{ "transport", required_argument, NULL, 't' },
		{ "tpm-version", required_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	json_object *req = json_object_new_object(), *rsp;
	long n;
	int ch, rc;

	json_object_object_add(req, "cmd", json_object_new_string("create"));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'u':
			json_object_object_add(req, "uuid", json_object_new_string(optarg));
			break;
		case 'd':
			if (config_parse_long(optarg, 0, 0x7fef, &n)) {
				fprintf(stderr, "vtpmctl: bad --domid\n");
				return EXIT_USAGE;
			}
			json_object_object_add(req, "domid", json_object_new_int64(n));
			break;
		case 't':
			json_object_object_add(req, "transport", json_object_new_string(optarg));
			break;
		case 'v':
			json_object_object_add(req, "tpm_version", json_object_new_string(optarg));
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	rc = request(req, &rsp);
	json_object_put(req);
	return rc ? rc : finish(rsp, "uuid");
}

static int cmd_quote(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "nonce", required_argument, NULL, 'n' },
		{ "pcr-mask", required_argument, NULL, 'p' },
		{ "out", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	json_object *req = json_object_new_object(), *rsp, *v;
	const char *out = NULL;
	long mask;
	int ch, rc;
	FILE *f;

	json_object_object_add(req, "cmd", json_object_new_string("quote"));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			json_object_object_add(req, "nonce", json_object_new_string(optarg));
			break;
		case 'p':
			if (config_parse_long(optarg, 1, 0xffffff, &mask)) {
				fprintf(stderr, "vtpmctl: bad --pcr-mask\n");
				return EXIT_USAGE;
			}
			json_object_object_add(req, "pcr_mask", json_object_new_int64(mask));
			break;
		case 'o':
			out = optarg;
			break;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	json_object_object_add(req, "uuid", json_object_new_string(argv[optind]));
	rc = request(req, &rsp);
	json_object_put(req);
	if (rc)
		return rc;
	if (!json_object_object_get_ex(rsp, "ok", &v) || !json_object_get_boolean(v))
		return finish(rsp, NULL);
	json_object_object_del(rsp, "ok");
	f = out ? fopen(out, "w") : stdout;
	if (!f) {
		perror(out);
		json_object_put(rsp);
		return EXIT_USAGE;
	}
	fprintf(f, "%s\n", json_object_to_json_string_ext(rsp, JSON_C_TO_STRING_PRETTY));
	if (out)
		fclose(f);
	json_object_put(rsp);
	return 0;
}

static int cmd_reseal(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pcr", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	json_object *req = json_object_new_object(), *vals, *rsp;
	int ch, rc;

	vals = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string("reseal"));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *eq;

		if (ch != 'p' || !(eq = strchr(optarg, '='))) {
			fprintf(stderr, "vtpmctl: --pcr N=HEX\n");
			return EXIT_USAGE;
		}
		*eq = '\0';
		json_object_object_add(vals, optarg, json_object_new_string(eq + 1));
	}
	json_object_object_add(req, "pcr_values", vals);
	rc = request(req, &rsp);
	json_object_put(req);
	return rc ? rc : finish(rsp, "*");
}

static int unhex(const char *s, uint8_t **out, size_t *n)
{
	size_t len = strlen(s);

	if (len % 2)
		return -1;
	*out = malloc(len / 2 + 1);
	if (!*out)
		return -1;
	for (size_t i = 0; i < len / 2; i++) {
		unsigned int v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1) {
			free(*out);
			return -1;
		}
		(*out)[i] = (uint8_t)v;
	}
	*n = len / 2;
	return 0;
}

static int bad(const char *why)
{
	printf("quote does NOT verify: %s\n", why);
	return EXIT_BAD_QUOTE;
}

/*
 * Offline: the vTPM PCR values hash to the digest, the digest, UUID and
 * nonce make the qualifying data, and the physical TPM's AK signed an
 * attestation that carries exactly that qualifying data.
 */
static int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ak-spki", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	json_object *q, *arr, *v;
	const char *pin = NULL;
	uint8_t *attest = NULL, *sig = NULL, *spki = NULL, *nonce = NULL, *pinb = NULL;
	uint8_t digest[32], qd[32], host_digest[32], uuid[16], *vals = NULL;
	size_t alen, slen, klen, nlen, plen, nvals;
	struct pcr_sel sel;
	uint32_t mask;
	char err[256];
	int ch, rc = EXIT_BAD_QUOTE;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'a')
			pin = optarg;
		else {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	q = json_object_from_file(argv[optind]);
	if (!q)
		return bad("cannot read the quote file as JSON");
	if (config_parse_uuid(get_str(q, "uuid"), uuid) ||
	    unhex(get_str(q, "nonce"), &nonce, &nlen) ||
	    unhex(get_str(q, "attest"), &attest, &alen) ||
	    unhex(get_str(q, "signature"), &sig, &slen) ||
	    unhex(get_str(q, "ak_spki"), &spki, &klen) ||
	    !json_object_object_get_ex(q, "vtpm_pcrs", &arr) ||
	    !json_object_object_get_ex(q, "vtpm_pcr_mask", &v)) {
		rc = bad("missing or malformed fields");
		goto out;
	}
	mask = (uint32_t)json_object_get_int64(v);
	nvals = json_object_array_length(arr);
	if (nvals != (size_t)__builtin_popcount(mask) || nvals > 24) {
		rc = bad("the PCR values do not match the PCR mask");
		goto out;
	}
	vals = calloc(nvals ? nvals : 1, 32);
	for (size_t i = 0; i < nvals; i++) {
		uint8_t *b;
		size_t bl;
		if (unhex(json_object_get_string(json_object_array_get_idx(arr, i)),
			  &b, &bl) || bl != 32) {
			rc = bad("a PCR value is not 32 bytes of hex");
			goto out;
		}
		memcpy(vals + 32 * i, b, 32);
		free(b);
	}
	SHA256(vals, 32 * nvals, digest);
	if (pin) {
		if (unhex(pin, &pinb, &plen) || plen != klen ||
		    memcmp(pinb, spki, klen) != 0) {
			rc = bad("signed by a different attestation key than --ak-spki");
			goto out;
		}
	}
	mgrproto_deepquote_qd(uuid, mask, digest, nonce, nlen, qd);
	if (quote_verify(spki, klen, attest, alen, sig, slen, qd, sizeof(qd),
			 host_digest, &sel, err, sizeof(err))) {
		rc = bad(err);
		goto out;
	}
	printf("quote verifies: vTPM %s, %zu vTPM PCRs, nonce %s, signed by the "
	       "physical TPM's attestation key%s\n",
	       get_str(q, "uuid"), nvals, get_str(q, "nonce"),
	       pin ? " (pinned)" : " (NOT pinned: pass --ak-spki to trust a known key)");
	printf("host PCR mask 0x%06x, host PCR digest ", sel.mask);
	for (int i = 0; i < 32; i++)
		printf("%02x", host_digest[i]);
	printf("\n");
	rc = 0;
out:
	free(attest);
	free(sig);
	free(spki);
	free(nonce);
	free(pinb);
	free(vals);
	json_object_put(q);
	return rc;
}

int main(int argc, char **argv)
{
	int i = 1;
	const char *cmd;

	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "--json") == 0) {
			json_out = 1;
			i++;
		} else if (strcmp(argv[i], "--control") == 0 && i + 1 < argc) {
			control_path = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[i];
	argc -= i;
	argv += i;
	if (strcmp(cmd, "create") == 0)
		return cmd_create(argc, argv);
	if (strcmp(cmd, "list") == 0)
		return simple("list", NULL, "vtpms");
	if (strcmp(cmd, "status") == 0)
		return simple("status", NULL, "*");
	if (strcmp(cmd, "quote") == 0)
		return cmd_quote(argc, argv);
	if (strcmp(cmd, "verify-quote") == 0)
		return cmd_verify(argc, argv);
	if (strcmp(cmd, "reseal") == 0)
		return cmd_reseal(argc, argv);
	if (argc == 2 && (strcmp(cmd, "show") == 0))
		return simple("show", argv[1], "vtpm");
	if (argc == 2 && (strcmp(cmd, "start") == 0 || strcmp(cmd, "stop") == 0 ||
			  strcmp(cmd, "delete") == 0))
		return simple(cmd, argv[1], NULL);
	usage(stderr);
	return EXIT_USAGE;
}
