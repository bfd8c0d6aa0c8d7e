/* SPDX-License-Identifier: BSD-3-Clause */
#include "proto/config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "lib/bytes.h"
#include "lib/hex.h"
#include "lib/log.h"

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->domid = -1;
	cfg->tpm_version = TPM_VERSION_2;
	cfg->log_level = LOG_LVL_INFO;
	cfg->socket_mode = 0600;
	cfg->client_timeout_ms = 10000;
	cfg->max_connections = 0;	/* the role's default */
	cfg->idle_timeout_ms = 600000;
	strcpy(cfg->hal, "tss-device");
	strcpy(cfg->tcti, "device:/dev/tpmrm0");
	strcpy(cfg->control, "/run/vtpm/manager.sock");
	strcpy(cfg->run_dir, "/run/vtpm");
	strcpy(cfg->pcrs, "sha256:0,2,4,7");
	cfg->nv_index = 0x01500500;
	cfg->counter_interval_s = 60;
	cfg->tpm_timeout_s = 10;
	strcpy(cfg->instance_user, "nobody");
	cfg->xen = XEN_AUTO;
}

unsigned int config_max_connections(const struct config *cfg, bool manager)
{
	if (cfg->max_connections)
		return cfg->max_connections;
	return manager ? CONFIG_MAX_CONN_MANAGER : CONFIG_MAX_CONN_INSTANCE;
}

int config_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || *end != '\0' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* One decimal id at *s (digits only, no sign, no space) up to a byte
 * that is not a digit; *s moves past it. */
static int parse_id(const char **s, uint32_t *out)
{
	uint64_t v = 0;
	const char *p = *s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > 0xfffffffeULL)
			return -EINVAL;
	}
	/* 0 is root's; (uid_t)-1 means "unchanged" to setresuid. */
	if (v == 0)
		return -EINVAL;
	*out = (uint32_t)v;
	*s = p;
	return 0;
}

int config_parse_uid_range(const char *s, uint32_t *lo, uint32_t *hi)
{
	uint32_t a, b;

	if (!s || parse_id(&s, &a) || *s++ != '-' || parse_id(&s, &b) ||
	    *s != '\0' || a > b)
		return -EINVAL;
	*lo = a;
	*hi = b;
	return 0;
}

int config_parse_ids(const char *s, uint32_t *uid, uint32_t *gid)
{
	uint32_t a, b;

	if (!s || parse_id(&s, &a) || *s++ != ':' || parse_id(&s, &b) ||
	    *s != '\0')
		return -EINVAL;
	*uid = a;
	*gid = b;
	return 0;
}

int config_parse_uuid(const char *s, uint8_t out[16])
{
	return uuid_parse_str(s, out);
}

int config_parse_transport(const char *s, struct transport_spec *out)
{
	memset(out, 0, sizeof(*out));
	if (strcmp(s, "xen-ring") == 0) {
		out->kind = TRANSPORT_XEN_RING;
		return 0;
	}
	if (strncmp(s, "unix:", 5) == 0) {
		const char *p = s + 5;
		/* PATH.ctrl must fit in sun_path too. */
		if (*p == '\0' || strlen(p) + 5 >= sizeof(out->path))
			return -EINVAL;
		out->kind = TRANSPORT_UNIX;
		strcpy(out->path, p);
		return 0;
	}
	if (strncmp(s, "tcp:", 4) == 0) {
		const char *hp = s + 4;
		const char *colon = strrchr(hp, ':');
		unsigned char buf[sizeof(struct in6_addr)];
		size_t hlen;
		long port;

		if (!colon)
			return -EINVAL;
		hlen = (size_t)(colon - hp);
		if (hlen >= 2 && hp[0] == '[' && hp[hlen - 1] == ']') {
			hp++;
			hlen -= 2;
		}
		if (hlen == 0 || hlen >= sizeof(out->host))
			return -EINVAL;
		memcpy(out->host, hp, hlen);
		out->host[hlen] = '\0';
		if (inet_pton(AF_INET, out->host, buf) != 1 &&
		    inet_pton(AF_INET6, out->host, buf) != 1)
			return -EINVAL;
		/* The control channel takes port + 1. */
		if (config_parse_long(colon + 1, 1, 65534, &port))
			return -EINVAL;
		out->kind = TRANSPORT_TCP;
		out->port = (uint16_t)port;
		return 0;
	}
	return -EINVAL;
}

static int copy_str(char *dst, size_t dstlen, const char *v)
{
	if (strlen(v) >= dstlen)
		return -ENAMETOOLONG;
	strcpy(dst, v);
	return 0;
}

int config_parse_hostport(const char *s, char *host, size_t hostlen,
			  uint16_t *port)
{
	const char *colon, *h = s;
	size_t n;
	long p;

	if (!s || !*s)
		return -EINVAL;
	if (*s == '[') {
		colon = strstr(s, "]:");
		if (!colon)
			return -EINVAL;
		h = s + 1;
		n = (size_t)(colon - h);
		colon++;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL;
		n = (size_t)(colon - s);
	}
	if (n == 0 || n >= hostlen)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdefABCDEF.:", h[i]))
			return -EINVAL;
	if (config_parse_long(colon + 1, 1, 65535, &p))
		return -EINVAL;
	memcpy(host, h, n);
	host[n] = '\0';
	*port = (uint16_t)p;
	return 0;
}

/* migrate-peer: hex of an AK's DER SPKI or of its SHA-256. */
static int peer_add(struct config *cfg, const char *v)
{
	size_t n = strlen(v);

	if (n < 64 || n % 2 || n >= CONFIG_PEER_HEX_MAX ||
	    strspn(v, "0123456789abcdefABCDEF") != n ||
	    cfg->n_migrate_peers >= CONFIG_MAX_PEERS)
		return -EINVAL;
	strcpy(cfg->migrate_peer[cfg->n_migrate_peers++], v);
	return 0;
}

/*
 * swtpm's spelling, file=PATH[,mode=...], or a bare PATH.  Only an
 * authenticated mode is offered: swtpm's aes-cbc modes are refused, not
 * silently upgraded.
 */
int config_parse_migration_key(const char *s, char *out, size_t outlen)
{
	const char *comma, *path = s;
	size_t plen;

	if (strncmp(s, "file=", 5) == 0)
		path = s + 5;
	comma = strchr(path, ',');
	plen = comma ? (size_t)(comma - path) : strlen(path);
	if (plen == 0 || plen >= outlen || memchr(path, '=', plen))
		return -EINVAL;
	while (comma) {
		const char *opt = comma + 1;
		size_t olen;

		comma = strchr(opt, ',');
		olen = comma ? (size_t)(comma - opt) : strlen(opt);
		if (!(olen == 16 && strncmp(opt, "mode=aes-256-gcm", 16) == 0))
			return -EINVAL;
	}
	memcpy(out, path, plen);
	out[plen] = '\0';
	return 0;
}

int config_set(struct config *cfg, const char *key, const char *v, char *err,
	       size_t errlen)
{
	long n;
	int rc = 0;

	if (!v)
		v = "";
	if (strcmp(key, "role") == 0) {
		if (strcmp(v, "instance") == 0)
			cfg->role = ROLE_INSTANCE;
		else if (strcmp(v, "manager") == 0)
			cfg->role = ROLE_MANAGER;
		else
			rc = -EINVAL;
	} else if (strcmp(key, "domid") == 0) {
		/* DOMID_FIRST_RESERVED is 0x7ff0. */
		if (strcmp(v, "any") == 0) {
			cfg->domid = CONFIG_DOMID_ANY;
		} else {
			rc = config_parse_long(v, 0, 0x7fef, &n);
			if (!rc)
				cfg->domid = n;
		}
	} else if (strcmp(key, "uuid") == 0) {
		rc = config_parse_uuid(v, cfg->uuid);
		if (!rc)
			cfg->have_uuid = true;
	} else if (strcmp(key, "transport") == 0) {
		rc = config_parse_transport(v, &cfg->transport);
	} else if (strcmp(key, "state-dir") == 0) {
		rc = *v ? copy_str(cfg->state_dir, sizeof(cfg->state_dir), v)
			: -EINVAL;
	} else if (strcmp(key, "state-key") == 0) {
		rc = *v ? copy_str(cfg->state_key, sizeof(cfg->state_key), v)
			: -EINVAL;
	} else if (strcmp(key, "manager") == 0) {
		rc = *v ? copy_str(cfg->manager, sizeof(cfg->manager), v)
			: -EINVAL;
	} else if (strcmp(key, "tpm-version") == 0) {
		if (strcmp(v, "2.0") == 0 || strcmp(v, "2") == 0)
			cfg->tpm_version = TPM_VERSION_2;
		else if (strcmp(v, "1.2") == 0)
			cfg->tpm_version = TPM_VERSION_1_2;
		else
			rc = -EINVAL;
	} else if (strcmp(key, "log-level") == 0) {
		int lvl = log_level_parse(v);
		if (lvl < 0)
			rc = -EINVAL;
		else
			cfg->log_level = lvl;
	} else if (strcmp(key, "socket-group") == 0) {
		rc = copy_str(cfg->socket_group, sizeof(cfg->socket_group), v);
	} else if (strcmp(key, "socket-mode") == 0) {
		char *end;
		errno = 0;
		unsigned long m = strtoul(v, &end, 8);
		/* Never world-accessible, never executable. */
		if (errno || *v == '\0' || *end != '\0' || (m & ~0660UL) ||
		    !(m & 0600))
			rc = -EINVAL;
		else
			cfg->socket_mode = (unsigned int)m;
	} else if (strcmp(key, "buffer-size") == 0) {
		rc = config_parse_long(v, 0, 1 << 20, &n);
		if (!rc)
			cfg->buffer_size = (uint32_t)n;
	} else if (strcmp(key, "client-timeout-ms") == 0) {
		rc = config_parse_long(v, 10, 3600L * 1000, &n);
		if (!rc)
			cfg->client_timeout_ms = n;
	} else if (strcmp(key, "hal") == 0) {
		if (strcmp(v, "tss-device") == 0 || strcmp(v, "tis-mmio") == 0)
			strcpy(cfg->hal, v);
		else
			rc = -EINVAL;
	} else if (strcmp(key, "tcti") == 0) {
		rc = *v ? copy_str(cfg->tcti, sizeof(cfg->tcti), v) : -EINVAL;
	} else if (strcmp(key, "control") == 0) {
		rc = *v ? copy_str(cfg->control, sizeof(cfg->control), v) : -EINVAL;
	} else if (strcmp(key, "run-dir") == 0) {
		rc = *v ? copy_str(cfg->run_dir, sizeof(cfg->run_dir), v) : -EINVAL;
	} else if (strcmp(key, "pcrs") == 0) {
		rc = copy_str(cfg->pcrs, sizeof(cfg->pcrs), v);
	} else if (strcmp(key, "nv-index") == 0) {
		/* The owner's range of NV indices, TPM 2.0 part 2 13.2. */
		rc = config_parse_long(v, 0x01000000, 0x01bfffff, &n);
		if (!rc)
			cfg->nv_index = (uint32_t)n;
	} else if (strcmp(key, "counter-interval") == 0) {
		rc = config_parse_long(v, 0, 86400, &n);
		if (!rc)
			cfg->counter_interval_s = n;
	} else if (strcmp(key, "tpm-timeout") == 0) {
		rc = config_parse_long(v, 1, 3600, &n);
		if (!rc)
			cfg->tpm_timeout_s = n;
	} else if (strcmp(key, "instance-user") == 0) {
		rc = *v ? copy_str(cfg->instance_user, sizeof(cfg->instance_user), v)
			: -EINVAL;
	} else if (strcmp(key, "instance-uids") == 0) {
		rc = config_parse_uid_range(v, &cfg->inst_uid_lo,
					    &cfg->inst_uid_hi);
	} else if (strcmp(key, "client-group") == 0) {
		rc = *v ? copy_str(cfg->client_group, sizeof(cfg->client_group), v)
			: -EINVAL;
	} else if (strcmp(key, "no-sandbox") == 0) {
		if (*v == '\0' || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0)
			cfg->no_sandbox = true;
		else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0)
			cfg->no_sandbox = false;
		else
			rc = -EINVAL;
	} else if (strcmp(key, "devid") == 0) {
		rc = config_parse_long(v, 0, 0xffff, &n);
		if (!rc)
			cfg->devid = (uint32_t)n;
	} else if (strcmp(key, "user") == 0) {
		rc = *v ? copy_str(cfg->user, sizeof(cfg->user), v) : -EINVAL;
	} else if (strcmp(key, "xen") == 0) {
		if (strcmp(v, "off") == 0)
			cfg->xen = XEN_OFF;
		else if (strcmp(v, "auto") == 0)
			cfg->xen = XEN_AUTO;
		else if (strcmp(v, "on") == 0)
			cfg->xen = XEN_ON;
		else
			rc = -EINVAL;
	} else if (strcmp(key, "migrate-listen") == 0) {
		rc = config_parse_hostport(v, cfg->migrate_host,
					   sizeof(cfg->migrate_host),
					   &cfg->migrate_port);
	} else if (strcmp(key, "migrate-peer") == 0) {
		rc = peer_add(cfg, v);
	} else if (strcmp(key, "xen-unknown") == 0) {
		if (strcmp(v, "refuse") == 0)
			cfg->xen_create_unknown = false;
		else if (strcmp(v, "create") == 0)
			cfg->xen_create_unknown = true;
		else
			rc = -EINVAL;
	} else if (strcmp(key, "max-connections") == 0) {
		rc = config_parse_long(v, 1, 1024, &n);
		if (!rc)
			cfg->max_connections = (unsigned int)n;
	} else if (strcmp(key, "idle-timeout-ms") == 0) {
		rc = config_parse_long(v, 0, 7L * 24 * 3600 * 1000, &n);
		if (!rc)
			cfg->idle_timeout_ms = n;
	} else if (strcmp(key, "locality") == 0) {
		if (strcmp(v, "reject-4") == 0 ||
		    strcmp(v, "reject-locality-4") == 0)
			cfg->locality_policy = LOCALITY_REJECT_4;
		else if (strcmp(v, "allow-4") == 0)
			cfg->locality_policy = LOCALITY_ALLOW_4;
		else
			rc = -EINVAL;
	} else if (strcmp(key, "migration-key") == 0) {
		rc = config_parse_migration_key(v, cfg->migration_key,
						sizeof(cfg->migration_key));
	} else if (strcmp(key, "allow-plaintext-state") == 0) {
		/* A flag on the command line; yes/no in the file. */
		if (!*v || strcmp(v, "yes") == 0 || strcmp(v, "true") == 0)
			cfg->allow_plaintext_state = true;
		else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0)
			cfg->allow_plaintext_state = false;
		else
			rc = -EINVAL;
	} else if (strcmp(key, "instance-exe") == 0) {
		rc = *v ? copy_str(cfg->instance_exe, sizeof(cfg->instance_exe), v)
			: -EINVAL;
	} else {
		snprintf(err, errlen, "unknown option '%s'", key);
		return -EINVAL;
	}
	if (rc) {
		snprintf(err, errlen, "invalid value '%s' for option '%s'", v,
			 key);
		return -EINVAL;
	}
	return 0;
}

struct ini_ctx {
	struct config *cfg;
	char *err;
	size_t errlen;
	int rc;
};

static int config_ini_entry(void *user, const char *section, const char *name,
		       const char *value)
{
	struct ini_ctx *c = user;
	char sub[CONFIG_ERR_MAX];

	if (c->rc)
		return 0;
	/* One namespace of options; the sections only group them. */
	if (section[0] && strcmp(section, "vtpm-service") != 0 &&
	    strcmp(section, "instance") != 0 && strcmp(section, "manager") != 0) {
		snprintf(c->err, c->errlen, "unknown section [%s]", section);
		c->rc = -EINVAL;
		return 0;
	}
	if (config_set(c->cfg, name, value, sub, sizeof(sub))) {
		snprintf(c->err, c->errlen, "%s", sub);
		c->rc = -EINVAL;
		return 0;
	}
	return 1;
}

int config_load_file(struct config *cfg, const char *path, char *err,
		     size_t errlen)
{
	struct ini_ctx c = { cfg, err, errlen, 0 };
	int line = ini_parse(path, config_ini_entry, &c);

	if (line == -1) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
			 strerror(errno));
		return -ENOENT;
	}
	if (line == -2) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	if (c.rc) {
		char tmp[CONFIG_ERR_MAX];
		snprintf(tmp, sizeof(tmp), "%s", err);
		snprintf(err, errlen, "%s: %s", path, tmp);
		return c.rc;
	}
	if (line > 0) {
		snprintf(err, errlen, "%s:%d: syntax error", path, line);
		return -EINVAL;
	}
	return 0;
}

int config_load_string(struct config *cfg, const char *text, char *err,
		       size_t errlen)
{
	struct ini_ctx c = { cfg, err, errlen, 0 };
	int line = ini_parse_string(text, config_ini_entry, &c);

	if (c.rc)
		return c.rc;
	if (line != 0) {
		snprintf(err, errlen, "line %d: syntax error", line);
		return -EINVAL;
	}
	return 0;
}

int config_validate(const struct config *cfg, char *err, size_t errlen)
{
	if (cfg->role == ROLE_NONE) {
		snprintf(err, errlen, "--role=instance or --role=manager is required");
		return -EINVAL;
	}
	if (cfg->role == ROLE_MANAGER) {
		if (!cfg->state_dir[0]) {
			snprintf(err, errlen, "--state-dir DIR is required");
			return -EINVAL;
		}

		return 0;
	}
	if (cfg->role != ROLE_INSTANCE)
		return 0;
	if (cfg->domid == -1) {
		snprintf(err, errlen, "--domid N is required for --role=instance");
		return -EINVAL;
	}
	if (cfg->domid == CONFIG_DOMID_ANY &&
	    cfg->transport.kind != TRANSPORT_XEN_RING) {
		snprintf(err, errlen, "--domid any is for --transport xen-ring");
		return -EINVAL;
	}
	if (cfg->transport.kind == TRANSPORT_NONE) {
		snprintf(err, errlen,
			 "--transport unix:PATH, tcp:ADDR:PORT or xen-ring is required");
		return -EINVAL;
	}
	if (!cfg->state_dir[0]) {
		snprintf(err, errlen, "--state-dir DIR is required");
		return -EINVAL;
	}
	if (cfg->transport.kind == TRANSPORT_XEN_RING && !cfg->have_uuid) {
		/* The toolstack's uuid node is the vTPM's identity: it must
		 * be checked against the vTPM this instance holds. */
		snprintf(err, errlen, "--transport xen-ring needs --uuid");
		return -EINVAL;
	}
	if (!cfg->state_key[0] && !cfg->manager[0]) {
		snprintf(err, errlen, "--state-key FILE or --manager PATH is required");
		return -EINVAL;
	}
	if (cfg->state_key[0] && cfg->manager[0]) {
		snprintf(err, errlen, "--state-key and --manager exclude each other");
		return -EINVAL;
	}
	return 0;
}
