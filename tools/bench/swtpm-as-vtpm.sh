#!/bin/sh
# swtpm-as-vtpm.sh: stands in for vtpm-service in benchmark self-checks.
#
# Accepts the vtpm-service instance command line
#   --role=instance --domid N --transport unix:SOCK --state-key KEYFILE --state-dir DIR
# (each option also as --opt=value or --opt value) and execs swtpm 0.7.1 with
# the same socket layout: data on SOCK, control on SOCK.ctrl. With the same
# server on both sides, run-bench.sh should report ratios near 1.0x; anything
# else is the benchmark's own noise or bias.
#
# POSIX sh and shell builtins only (no stat, tr, ...): every extra process
# would add ~1 ms to the start-to-first-response figure. What remains is
# the shell's own start (~1 ms with dash), so expect a start ratio a little
# above 1.0x from this wrapper.
#
# Environment:
#   SWTPM                  swtpm binary (default: swtpm)
#   SWTPM_AS_VTPM_ENCRYPT  1: also encrypt the state with KEYFILE
#                          (swtpm --key ...,mode=aes-256-cbc), as vtpm-service
#                          encrypts its state; default 0 (plain swtpm)
set -eu

die() { echo "swtpm-as-vtpm: $*" >&2; exit 2; }

role="" domid="" transport="" key="" dir="" version="2.0"
while [ $# -gt 0 ]; do
	opt=$1
	case $opt in
	--*=*) val=${opt#*=}; opt=${opt%%=*}; shift ;;
	--role|--domid|--transport|--state-key|--state-dir|--uuid|--tpm-version|--config|--manager)
		[ $# -ge 2 ] || die "$opt needs a value"
		val=$2; shift 2 ;;
	*) die "unknown argument: $opt" ;;
	esac
	case $opt in
	--role) role=$val ;;
	--domid) domid=$val ;;
	--transport) transport=$val ;;
	--state-key) key=$val ;;
	--state-dir) dir=$val ;;
	--tpm-version) version=$val ;;
	--uuid|--config) ;;
	--manager) die "--manager is not supported here; use --state-key" ;;
	*) die "unknown option: $opt" ;;
	esac
done

[ "$role" = instance ] || die "--role=instance is required"
case $domid in
'' | *[!0-9]*) die "--domid N is required" ;;
esac
case $transport in
unix:?*) sock=${transport#unix:} ;;
*) die "--transport unix:PATH is required (got '$transport')" ;;
esac
[ -n "$dir" ] || die "--state-dir DIR is required"
[ -n "$key" ] || die "--state-key FILE is required"
[ -f "$key" ] || die "$key: no such file"
k=""
IFS= read -r k <"$key" || true
case $k in
*[!0-9a-fA-F]*) die "$key: want 64 hex characters" ;;
esac
[ ${#k} -eq 64 ] || die "$key: want 64 hex characters"
[ -d "$dir" ] || mkdir -p "$dir"

set -- socket --tpmstate "dir=$dir" \
	--server "type=unixio,path=$sock" --ctrl "type=unixio,path=$sock.ctrl" \
	--flags not-need-init,startup-clear
[ "$version" = 1.2 ] || set -- "$@" --tpm2
[ "${SWTPM_AS_VTPM_ENCRYPT:-0}" = 1 ] && set -- "$@" --key "file=$key,format=hex,mode=aes-256-cbc"
exec "${SWTPM:-swtpm}" "$@"
