/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The issuing CA of vTPM EK certificates (docs/ekcert.md).  Its key is an
 * ECC P-256 signing key inside the physical TPM, kept only as a
 * TPM-wrapped blob under the storage primary (ekca.key) whose authValue
 * is derived from the root key, so only a manager that unsealed the store
 * can sign with it.  Its self-signed certificate (ekca.crt, DER) is signed
 * by TPM2_Sign like every certificate it issues.
 *
 * A vTPM is manufactured on the first start of its instance when create
 * asked for it (mgr_ekca_expect): the instance sends each EK public key
 * (EK_CERTIFY), gets the certificate back, writes it to NV, and reports
 * the result once its state is durable (MANUFACTURED).  Only a vTPM that
 * awaits manufacture may ask, each kind once, until it reported.
 */
#ifndef VTPM_MANAGER_EKCA_H
#define VTPM_MANAGER_EKCA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/mgrproto.h"

struct manager;
struct vtpm_entry;
struct mgr_ekca;

/* The result of a manufacture, for whoever waits for it. */
struct mgr_made {
	int rc;                  /* 0: certificates in NV and durable */
	uint32_t instance_ms;    /* the instance's keys, certificates, NV */
	uint64_t total_ms;       /* from the instance's start to durable */
	char err[200];
};

typedef void (*mgr_made_cb)(void *arg, const struct mgr_made *r);

/* A vTPM's manufacture, in its entry (struct vtpm_entry.ek). */
struct mgr_ek_entry {
	bool wanted;             /* certificates at its first start */
	uint8_t issued;          /* bit n: kind n was certified */
	uint64_t started_ms;
	mgr_made_cb cb;          /* the create that waits, or NULL */
	void *arg;
};

/*
 * At start, after the root key is unlocked (blocking: the loop does not
 * run yet): loads ekca.key and ekca.crt, or creates them.  A failure
 * leaves the manager without a CA (logged; creates with certificates then
 * fail), it does not stop it.
 */
void mgr_ekca_load(struct manager *m);
void mgr_ekca_free(struct manager *m);

/* The CA certificate as PEM (malloc()ed), or NULL with err set. */
char *mgr_ekca_pem(struct manager *m, char *err, size_t errlen);

/*
 * An operator's CA above ours (docs/ekcert.md): csr has the TPM sign a
 * PKCS#10 request for the CA key; import installs the certificate the
 * operator's CA made from it (checked: the CA key, CA:TRUE, keyCertSign,
 * a subject key id), written before it is used.  cb(arg, rc, pem, err) on
 * the loop thread: the request, or the installed certificate, as PEM.
 */
typedef void (*mgr_ca_cb)(void *arg, int rc, const char *pem,
			  const char *err);
void mgr_ekca_csr(struct manager *m, mgr_ca_cb cb, void *arg);
void mgr_ekca_import(struct manager *m, const char *pem, mgr_ca_cb cb,
		     void *arg);

/* e is to be manufactured at its first start; cb (may be NULL) hears the
 * result.  -ENODEV when there is no CA (err says why). */
int mgr_ekca_expect(struct vtpm_entry *e, mgr_made_cb cb, void *arg,
		    char *err, size_t errlen);
/* Whether the instance starting for e should manufacture. */
bool mgr_ekca_wanted(const struct vtpm_entry *e);

/* EK_CERTIFY from e's instance; cb(arg, status, cert) on the loop. */
typedef void (*mgr_certified_cb)(void *arg, uint32_t status,
				 const uint8_t *der, size_t len);
void mgr_ekca_certify(struct vtpm_entry *e, const struct mgr_ek_certify_req *r,
		      mgr_certified_cb cb, void *arg);
/* MANUFACTURED from e's instance. */
uint32_t mgr_ekca_manufactured(struct vtpm_entry *e,
			       const struct mgr_manufactured_req *r);
/* e's instance exited: a manufacture it owed has failed. */
void mgr_ekca_child_exited(struct vtpm_entry *e);

#endif
