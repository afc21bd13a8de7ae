#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The static build (`make static`, ./vhostbox-static): statically linked with no
# loader and nothing that loads code at run time (no dlopen, no NSS), at most
# 512 KiB, with every personality whose libraries were built for musl (or that
# declares a fallback: gpu 2D), each answering --print-capabilities; gpu lists no
# virgl and refuses --virgl with one line. test/guest/t-static.sh runs it in an
# empty root behind QEMU guests; run.sh --check also runs the front-end tests on it.
set -u
cd "$(dirname "$0")/.." || exit 1
STATIC=${VHOSTBOX_STATIC:-$PWD/vhostbox-static}
MUSL_PC=build/musl/prefix/lib/pkgconfig
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1: $2"; }
[ -x "$STATIC" ] || { echo "SKIP: static: no $STATIC (make static builds it)"; exit 0; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# ---- what it is -----------------------------------------------------------------
hdr=$(readelf -lW "$STATIC" 2>&1)
if [[ $hdr == *INTERP* || $hdr == *DYNAMIC* ]]; then
	fail static-no-loader "it has a program interpreter or a dynamic section: $(echo "$hdr" | grep -E 'INTERP|DYNAMIC')"
else
	pass static-no-loader
fi
out=$(ldd "$STATIC" 2>&1)
[[ $out == *"not a dynamic executable"* ]] && pass static-ldd || fail static-ldd "ldd says: $out"

# What would load code or consult NSS at run time: a loader's or library's name,
# dlopen (musl's static stub says "Dynamic loading not supported"), nsswitch.
found=$(strings -a "$STATIC" | grep -E 'ld-linux|ld-musl|\.so(\.[0-9]+)*$|dlopen|Dynamic loading|nsswitch|libnss' | sort -u | head -5)
[ -z "$found" ] && pass static-no-dlopen-nss || fail static-no-dlopen-nss "strings: $(echo "$found" | tr '\n' ' ')"

size=$(stat -c %s "$STATIC")
[ "$size" -le 524288 ] && pass static-size || fail static-size "$size bytes, more than 512 KiB"
echo "# $STATIC: $size bytes"

# ---- which personalities ---------------------------------------------------------
# As the Makefile (make static) chooses them: every declared device whose pkg-config packages
# test/musl-libs.sh built, or that declares a fallback.
want=""
for f in $(grep -l '^ \* build: ' dev/*.c); do
	d=$(basename "$f" .c) ok=1
	for p in $(sed -n 's/^ \* pkg-config: *//p' "$f"); do [ -f "$MUSL_PC/$p.pc" ] || ok=0; done
	grep -q '^ \* fallback: ' "$f" && ok=1
	[ $ok = 1 ] && want="$want $d"
done
have=$("$STATIC" --list | cut -d' ' -f1 | sort | tr '\n' ' ')
want=$(echo $want | tr ' ' '\n' | sort | tr '\n' ' ')
[ "$have" = "$want" ] && pass static-personalities || fail static-personalities "built: '$have', declared: '$want'"

# ---- each one answers ----------------------------------------------------------------
# The same capabilities as the dynamic build (when there is one), but gpu's (no virgl).
DYNAMIC=${VHOSTBOX:-$PWD/vhostbox}
for name in $have; do
	if ! "$STATIC" "$name" --print-capabilities > "$tmp/caps.json" 2> "$tmp/err" ||
	   ! python3 -c 'import json, sys; assert json.load(open(sys.argv[1]))["type"]' "$tmp/caps.json" 2>> "$tmp/err"; then
		fail "static-caps-$name" "$(head -c 300 "$tmp/err")"
	elif [ "$name" != gpu ] && [ -x "$DYNAMIC" ] && ! "$DYNAMIC" "$name" --print-capabilities | cmp -s - "$tmp/caps.json"; then
		fail "static-caps-$name" "not what $DYNAMIC prints: $(tr -d '\n' < "$tmp/caps.json")"
	else
		pass "static-caps-$name"
	fi
done

if [[ " $have " == *" gpu "* ]]; then
	caps=$("$STATIC" gpu --print-capabilities)
	[[ $caps != *virgl* && $caps != *render-node* ]] && pass static-gpu-caps-no-virgl ||
		fail static-gpu-caps-no-virgl "it lists: $(echo $caps)"
	"$STATIC" gpu --socket-path="$tmp/gpu.sock" --virgl > "$tmp/out" 2> "$tmp/err"
	rc=$?
	if [ $rc = 1 ] && [ "$(wc -l < "$tmp/err")" = 1 ] && grep -q 'built without virglrenderer' "$tmp/err" &&
	   [ ! -e "$tmp/gpu.sock" ]; then
		pass static-gpu-virgl-refused
	else
		fail static-gpu-virgl-refused "status $rc, stderr: $(head -c 300 "$tmp/err")"
	fi
fi
