/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Options of both roles.  The command line and the INI file feed the same
 * setter (config_set), so a key means the same thing in both places; the
 * file is applied first and the command line over it.
 */
#ifndef VTPM_CONFIG_H
#define VTPM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum vtpm_role {
	ROLE_NONE = 0,
	ROLE_INSTANCE,
	ROLE_MANAGER,
};

enum transport_kind {
	TRANSPORT_NONE = 0,
	TRANSPORT_UNIX,
	TRANSPORT_TCP,
	TRANSPORT_XEN_RING,
};

enum tpm_version {
	TPM_VERSION_2 = 2,
	TPM_VERSION_1_2 = 1,
};

#define CONFIG_MAX_PEERS 8
#define CONFIG_PEER_HEX_MAX 1200

struct transport_spec {
	enum transport_kind kind;
	char path[108];    /* unix: data socket path (sun_path limit) */
	char host[64];     /* tcp: numeric address */
	uint16_t port;     /* tcp: data port; control is port + 1 */
};

struct config {
	enum vtpm_role role;
	long domid;                /* -1 until set */
	bool have_uuid;
	uint8_t uuid[16];
	struct transport_spec transport;
	char state_dir[256];
	char state_key[256];
	char manager[256];
	enum tpm_version tpm_version;
	int log_level;
	char socket_group[64];     /* empty: keep the process's group */
	unsigned int socket_mode;  /* permission bits of the sockets */
	uint32_t buffer_size;      /* TPM I/O buffer size, 0 = libtpms default */
	long client_timeout_ms;    /* a stalled half frame is dropped after this */
	uint32_t devid;            /* xen-ring: the vtpm device number */
	char user[64];             /* drop to this user (a name, or UID:GID)
				      once privileged handles (Xen devices,
				      state directory) are open */
	bool no_sandbox;           /* --no-sandbox: debugging only */
	unsigned int max_connections; /* clients at once; 0: the role's
					 default (config_max_connections) */
	long idle_timeout_ms;      /* an idle client is closed; 0: never */
	int locality_policy;       /* LOCALITY_* */
	char migration_key[256];   /* key file of GET/SET_STATEBLOB blobs */
	bool allow_plaintext_state; /* blobs in the clear (operator's choice) */

	/* manager role */
	char hal[32];              /* tss-device (tis-mmio: later) */
	char tcti[256];            /* tpm2-tss TCTI of the physical TPM */
	char control[108];         /* control socket for vtpmctl */
	char run_dir[200];         /* sockets of the instances it starts */
	char pcrs[128];            /* PCR selection the root key is sealed to */
	uint32_t nv_index;         /* the NV counter guarding the key store */
	long counter_interval_s;   /* at most one counter increment per this */
	long tpm_timeout_s;        /* deadline of a physical TPM call, and of
				      a whole deep quote */
	char instance_user[64];    /* instances run as this user (manager as root)
				      when no instance-uids range is set */
	uint32_t inst_uid_lo;      /* instance-uids LOW-HIGH: each vTPM its own */
	uint32_t inst_uid_hi;      /* uid and gid; 0-0: none configured */
	char client_group[64];     /* may connect to instances' sockets */
	char instance_exe[256];    /* vtpm-service binary for instances */
	int xen;                   /* XEN_OFF / XEN_AUTO / XEN_ON */
	bool xen_create_unknown;   /* a device naming an unknown UUID creates it */
	/* online migration (docs/migration.md): where this manager takes
	 * incoming vTPMs (empty: nowhere), and the AKs of the managers it
	 * trusts, each the hex of a DER SubjectPublicKeyInfo or of its
	 * SHA-256 (migrate-peer, repeatable) */
	char migrate_host[64];
	uint16_t migrate_port;
	unsigned int n_migrate_peers;
	char migrate_peer[CONFIG_MAX_PEERS][CONFIG_PEER_HEX_MAX];
};

enum { XEN_OFF = 0, XEN_AUTO, XEN_ON };

/* --locality: DEFAULT is reject-4 for guest-facing instances (xen-ring,
 * started by a manager) and allow-4 otherwise, as swtpm's default. */
enum { LOCALITY_DEFAULT = 0, LOCALITY_REJECT_4, LOCALITY_ALLOW_4 };

/* --migration-key file=PATH[,mode=aes-256-gcm] (or just PATH): the path
 * into out; 0 or -EINVAL (an unknown mode or key). */
int config_parse_migration_key(const char *s, char *out, size_t outlen);

/* --domid any (xen-ring only): the device that names --uuid, whichever
 * domain it belongs to. */
#define CONFIG_DOMID_ANY (-2L)

#define CONFIG_ERR_MAX 256

void config_defaults(struct config *cfg);

/* Sets one option by its long name; 0 or -EINVAL with a message in err. */
int config_set(struct config *cfg, const char *key, const char *value,
	       char *err, size_t errlen);

/* Applies an INI file; returns 0, or -errno / -EINVAL with err filled. */
int config_load_file(struct config *cfg, const char *path, char *err,
		     size_t errlen);

/* Applies INI text from memory (fuzzing, tests); like config_load_file. */
int config_load_string(struct config *cfg, const char *text, char *err,
		       size_t errlen);

/* Checks the combination of options for a role; 0 or -EINVAL. */
int config_validate(const struct config *cfg, char *err, size_t errlen);

/* Pure parsers, exported for tests. */
int config_parse_uuid(const char *s, uint8_t out[16]);
int config_parse_transport(const char *s, struct transport_spec *out);
int config_parse_long(const char *s, long min, long max, long *out);
/* "LOW-HIGH", decimal digits only, 1 <= LOW <= HIGH <= 4294967294. */
int config_parse_uid_range(const char *s, uint32_t *lo, uint32_t *hi);
/* "HOST:PORT" (a numeric address; [ADDR]:PORT for IPv6), port 1..65535;
 * 0 or -EINVAL. */
int config_parse_hostport(const char *s, char *host, size_t hostlen,
			  uint16_t *port);
/* "UID:GID", decimal digits only, each 1..4294967294; 0 or -EINVAL. */
int config_parse_ids(const char *s, uint32_t *uid, uint32_t *gid);

/* An instance's data + control clients, or the manager's control
 * clients, at once: --max-connections, else 8 for an instance and 64
 * for the manager (a host starting its guests runs one vtpmctl each). */
#define CONFIG_MAX_CONN_INSTANCE 8
#define CONFIG_MAX_CONN_MANAGER 64
unsigned int config_max_connections(const struct config *cfg, bool manager);

#endif
