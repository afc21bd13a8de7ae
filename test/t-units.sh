#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# What `make install` adds for appliances: manual pages generated from the option
# tables (lint-clean, and every option --help lists is in the page: no drift) and
# the systemd socket-activated templates (systemd-analyze verify, and the socket
# of systemd-socket-activate served by the installed link).
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
VHOSTBOX=${VHOSTBOX:-$REPO/vhostbox}
tmp=$(mktemp -d /tmp/t-units.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1: $2"; }

devices=$("$VHOSTBOX" --list | awk '{ printf "%s ", $1 }')
P=$tmp/usr
if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL timeout 120 make -C "$REPO" --no-print-directory -o "$VHOSTBOX" \
	BIN="$VHOSTBOX" B="$tmp/build" DEVICES="$devices" PREFIX="$P" install > "$tmp/make.log" 2>&1; then
	fail install "$(tail -n 3 "$tmp/make.log" | tr '\n' ' ')"
	exit 0
fi

# --- manual pages ------------------------------------------------------------------------
for page in vhostbox $(printf 'vhost-user-%s ' $devices); do
	f=$P/share/man/man1/$page.1
	if [ ! -s "$f" ]; then
		fail "man-$page" "$f is missing"
		continue
	fi
	lint=$(groff -ww -man -z "$f" 2>&1)
	if [ -n "$lint" ]; then fail "man-lint-$page" "$lint"; else pass "man-lint-$page"; fi
done
for name in $devices; do
	text=$(groff -man -Tascii -P-cbou "$P/share/man/man1/vhost-user-$name.1" 2>/dev/null)
	missing=""
	for opt in $("$VHOSTBOX" "$name" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
		grep -q -- "$opt" <<< "$text" || missing+=" $opt"
	done
	if [ -z "$missing" ]; then pass "man-has-every-option-$name"; else fail "man-has-every-option-$name" "$missing"; fi
done
while read -r name type aliases; do
	for a in $aliases; do
		f=$P/share/man/man1/vhost-user-$a.1
		if [ "$(cat "$f" 2>/dev/null)" = ".so man1/vhost-user-$name.1" ]; then
			pass "man-alias-$a"
		else
			fail "man-alias-$a" "$f does not point to vhost-user-$name.1"
		fi
	done
done < <("$VHOSTBOX" --list)

# --- systemd units -------------------------------------------------------------------------
if ! command -v systemd-analyze > /dev/null; then
	echo "SKIP: units-verify: systemd-analyze is not installed"
else
	mkdir -p "$tmp/units"
	for name in $devices; do
		for kind in socket service; do
			cp "$P/lib/systemd/system/vhost-user-$name@.$kind" "$tmp/units/vhost-user-$name@t.$kind"
		done
		if out=$(cd "$tmp/units" && systemd-analyze verify --man=no "./vhost-user-$name@t.socket" \
			"./vhost-user-$name@t.service" 2>&1) && [ -z "$out" ]; then
			pass "units-verify-$name"
		else
			fail "units-verify-$name" "$(tr '\n' ' ' <<< "$out")"
		fi
	done
fi

# The service's ExecStart run by systemd-socket-activate: a front-end is answered
# through the socket it was given (LISTEN_FDS), as systemd's socket unit would do.
if ! command -v systemd-socket-activate > /dev/null; then
	echo "SKIP: units-socket-activation: systemd-socket-activate is not installed"
else
	sock=$tmp/rng.sock
	systemd-socket-activate -l "$sock" "$P/libexec/vhost-user-rng" > "$tmp/sa.log" 2>&1 &
	if python3 - "$sock" <<'EOF'
import socket, struct, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
for _ in range(500):
    try:
        s.connect(sys.argv[1])
        break
    except OSError:
        time.sleep(0.01)
s.settimeout(10)
s.sendall(struct.pack("=III", 1, 1, 0))          # GET_FEATURES
hdr = s.recv(12)
sys.exit(0 if len(hdr) == 12 and struct.unpack("=III", hdr) == (1, 5, 8) else 1)
EOF
	then
		pass units-socket-activation
	else
		fail units-socket-activation "no GET_FEATURES reply: $(tail -c 300 "$tmp/sa.log")"
	fi
fi
exit 0
