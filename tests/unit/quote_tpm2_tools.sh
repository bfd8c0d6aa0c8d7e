#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Quotes by a real TPM 2.0 (a swtpm this script starts), made with
# tpm2-tools, checked by core/proto/quote.c: test_quote --vectors verifies
# each one, then expects an altered PCR value, nonce, signed byte and
# signature to be refused.  Key kinds: an ECC P-256 AK (ECDSA), an RSA-2048
# AK with RSASSA and one with RSAPSS.  Every input is made here; nothing
# is a committed blob.
#   quote_tpm2_tools.sh TEST_QUOTE_BINARY     (SWTPM=path overrides swtpm)
set -euo pipefail
test_quote=$(realpath "$1")
wd=$(mktemp -d /tmp/vtpm-quote-XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$wd"
}
trap cleanup EXIT

"${SWTPM:-swtpm}" socket --tpm2 --tpmstate dir="$wd" \
	--server type=unixio,path="$wd/s" --ctrl type=unixio,path="$wd/s.ctrl" \
	--flags not-need-init,startup-clear >"$wd/swtpm.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$wd/s" ] && break; sleep 0.05; done
export TPM2TOOLS_TCTI="swtpm:path=$wd/s"
export TSS2_LOG=all+none
cd "$wd"

# PCRs that are not all zero, and a selection the digest must follow.
tpm2_pcrextend 7:sha256="$(printf boot | sha256sum | cut -c1-64)"
tpm2_pcrextend 4:sha256="$(printf loader | sha256sum | cut -c1-64)"
openssl rand -hex 32 >nonce
# No resource manager in front of swtpm: unload what each tool leaves.
flush() { tpm2_flushcontext -t; tpm2_flushcontext -s; }
tpm2_createek -c ek.ctx -G ecc >/dev/null
flush

ak() { # kind key-alg sig-scheme
	tpm2_createak -C ek.ctx -c "$1.ctx" -G "$2" -g sha256 -s "$3" >/dev/null
	flush
	tpm2_readpublic -c "$1.ctx" -f der -o "$1.ak.der" >/dev/null
	flush
	tpm2_quote -c "$1.ctx" -l sha256:0,2,4,7 -q "$(cat nonce)" \
		-m "$1.attest" -s "$1.sig" -g sha256 --scheme "$3" >/dev/null
	flush
	tpm2_pcrread sha256:0,2,4,7 -o "$1.pcrs" >/dev/null
	echo 95 >"$1.mask"
}
ak ecc ecc ecdsa
ak rsassa rsa rsassa
ak rsapss rsa rsapss

"$test_quote" --vectors "$wd" ecc rsassa rsapss
