/* SPDX-License-Identifier: GPL-2.0 */
/*
 * TPM core entry points that vtpm_front calls.
 *
 * The kernel exports these symbols (EXPORT_SYMBOL_GPL) but declares them in
 * drivers/char/tpm/tpm.h, which linux-headers packages do not ship. The
 * prototypes below match Linux 6.1; the build fails at modpost if a symbol
 * is gone, and a changed signature must be fixed here.
 */
#ifndef VTPM_CORE_H
#define VTPM_CORE_H

#include <linux/tpm.h>

/* The largest command or response the TPM core passes to a driver. */
#define VTPM_CORE_BUFSIZE	4096

struct tpm_chip *tpm_chip_alloc(struct device *pdev,
				const struct tpm_class_ops *ops);
int tpm_chip_register(struct tpm_chip *chip);
void tpm_chip_unregister(struct tpm_chip *chip);
int tpm_chip_start(struct tpm_chip *chip);
void tpm_chip_stop(struct tpm_chip *chip);
int tpm2_probe(struct tpm_chip *chip);
unsigned long tpm_calc_ordinal_duration(struct tpm_chip *chip, u32 ordinal);

#endif /* VTPM_CORE_H */
