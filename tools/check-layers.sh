#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Checks the #include lines of the production C sources against the layer
# order (docs/architecture.md): every quoted include names its layer
# ("proto/mgrproto.h") or a header beside the including file, and a layer
# includes only itself and the layers below it.  libtpms is included by
# the engine alone, tpm2-tss's ESYS by hal/tss-device alone, and the
# engine's fields (struct vtpm's eng) are touched by core/instance alone.
#   tools/check-layers.sh [ROOT]     exit 0 clean, 1 with one line a breach
#   tools/check-layers.sh --selftest plants a breach in a copy, expects 1
set -uo pipefail

if [ "${1:-}" = "--selftest" ]; then
	root=$(cd "$(dirname "$0")/.." && pwd)
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	cp -r "$root/core" "$root/transports" "$root/hal" "$root/tools" "$tmp/"
	if ! bash "$0" "$tmp" >/dev/null; then
		echo "selftest: the tree itself does not pass"
		exit 1
	fi
	fails=0
	plant() { # file line what
		cp "$tmp/$1" "$tmp/$1.orig"
		sed -i "0,/^#include/s||$2\n#include|" "$tmp/$1"
		if bash "$0" "$tmp" >/dev/null; then
			echo "selftest: planted $3 in $1 was not caught"
			fails=$((fails + 1))
		else
			echo "selftest: caught $3 in $1"
		fi
		mv "$tmp/$1.orig" "$tmp/$1"
	}
	plant core/lib/log.c '#include "proto/config.h"' "lib -> proto"
	plant core/proto/mgrproto.c '#include "instance/engine.h"' "proto -> instance"
	plant core/instance/engine.c '#include "manager/manager.h"' "instance -> manager"
	plant core/manager/manager.c '#include "instance/vtpm.h"' "manager -> instance"
	plant core/manager/control.c '#include "../instance/vtpm.h"' "a relative include"
	plant transports/unix-socket/swtpm_ctrl.c '#include <libtpms/tpm_library.h>' "libtpms outside the engine"
	plant tools/vtpmctl.c '#include <tss2/tss2_esys.h>' "ESYS in vtpmctl"
	plant transports/xen-ring/xenbus/xenloop.c '#include "tpmif/tpmback.h"' "xenbus -> tpmif"
	plant core/instance/instance.c '#include "log.h"' "an unprefixed include of another folder"
	plant transports/xen-ring/xen_ring.c 'static int planted(struct vtpm *v) { return v->eng.locality; }' "a transport reading the engine's fields"
	[ "$fails" -eq 0 ] && echo "selftest: ok" && exit 0
	exit 1
fi

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2

# folder -> layer; layer -> the layers it may include (besides itself).
layer_of() {
	case "$1" in
	core/lib/*) echo lib ;;
	core/proto/*) echo proto ;;
	core/instance/*) echo instance ;;
	core/manager/*) echo manager ;;
	core/main.c) echo main ;;
	transports/xen-ring/xenbus/*) echo xenbus ;;
	transports/xen-ring/tpmif/*) echo tpmif ;;
	transports/xen-ring/*) echo xen-ring ;;
	transports/unix-socket/*) echo unix-socket ;;
	hal/tis-mmio/*) echo tis-mmio ;;
	hal/tss-device/*) echo tss-device ;;
	tools/vtpmctl.c) echo vtpmctl ;;
	*) echo "" ;;
	esac
}
allowed() {
	case "$1" in
	lib) echo "" ;;
	proto) echo "lib" ;;
	xenbus) echo "lib" ;;
	tpmif) echo "lib xenbus" ;;
	tis-mmio) echo "lib" ;;
	tss-device) echo "lib proto tis-mmio" ;;
	instance) echo "lib proto" ;;
	manager) echo "lib proto tss-device tis-mmio xenbus tpmif" ;;
	unix-socket) echo "lib proto instance" ;;
	xen-ring) echo "lib proto instance xenbus tpmif" ;;
	vtpmctl) echo "lib proto" ;;
	main) echo "lib proto instance manager unix-socket xen-ring xenbus tpmif tss-device tis-mmio" ;;
	esac
}
known_prefix() {
	case "$1" in
	lib | proto | instance | manager | xenbus | tpmif | xen-ring | unix-socket | tis-mmio | tss-device) return 0 ;;
	esac
	return 1
}

bad=0
breach() {
	echo "$1: $2"
	bad=$((bad + 1))
}
files=$(find core transports hal tools -maxdepth 3 -name '*.[ch]' \
	-not -path 'tools/bench/*' | sort)
for f in $files; do
	me=$(layer_of "$f")
	if [ -z "$me" ]; then
		breach "$f" "in no layer (add it to tools/check-layers.sh)"
		continue
	fi
	ok=" $me $(allowed "$me") "
	while IFS= read -r line; do
		n=${line%%:*}
		inc=${line#*:}
		case "$inc" in
		*'<libtpms/'*)
			[ "$f" = core/instance/engine.c ] ||
				breach "$f:$n" "includes libtpms: only core/instance/engine.c may"
			continue ;;
		*'<tss2/tss2_esys.h>'*)
			case "$f" in hal/tss-device/*) ;; *)
				breach "$f:$n" "includes ESYS: only hal/tss-device may" ;;
			esac
			continue ;;
		*'"'*) ;;
		*) continue ;;
		esac
		path=$(echo "$inc" | sed -E 's/^#[[:space:]]*include[[:space:]]*"([^"]*)".*/\1/')
		case "$path" in
		*..*)
			breach "$f:$n" "relative include \"$path\""
			continue ;;
		*/*)
			pfx=${path%%/*}
			if ! known_prefix "$pfx"; then
				breach "$f:$n" "\"$path\" names no layer"
			elif [[ "$ok" != *" $pfx "* ]]; then
				breach "$f:$n" "layer $me includes \"$path\" of layer $pfx"
			fi ;;
		*)
			[ -e "$(dirname "$f")/$path" ] ||
				breach "$f:$n" "\"$path\" is not beside it: name its layer" ;;
		esac
	done < <(grep -nE '^[[:space:]]*#[[:space:]]*include' "$f")
	if [ "$me" != instance ] && [ "$me" != main ]; then
		while IFS= read -r line; do
			breach "$f:${line%%:*}" "reaches into the engine's fields (use the engine's functions)"
		done < <(grep -nE '(->|\.)eng\b' "$f")
	fi
done
if [ "$bad" -gt 0 ]; then
	echo "check-layers: $bad include(s) against the layer order"
	exit 1
fi
echo "check-layers: $(echo "$files" | wc -w) files, every include in order"
