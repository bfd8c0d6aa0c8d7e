#!/bin/sh
# SPDX-License-Identifier: BSD-3-Clause
# Server command for run.sh: a vtpm-service instance with a fresh
# development key.  Usage: start-vtpm.sh VTPM_SERVICE WORKDIR SOCK
set -eu
umask 077
# Keep the key of an earlier run: its state was encrypted under it.
[ -s "$2/key" ] || head -c 32 /dev/urandom > "$2/key"
exec "$1" --role=instance --domid 7 --transport "unix:$3" \
	--state-key "$2/key" --state-dir "$2/st"
