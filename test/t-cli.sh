#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The command line of the back-end program conventions (QEMU vhost-user.rst,
# "Back-end program conventions") and vhostbox's own: personalities, --list,
# --print-capabilities, --socket-path/--fd/socket activation, socket modes,
# SIGTERM/SIGINT, NOTIFY_SOCKET and usage errors (exit 2, one line on stderr).
# The capability checks and socket cases are driven from python3 (test/cli.py).
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
VHOSTBOX=${VHOSTBOX:-$REPO/vhostbox}
CLI_PY=$REPO/test/cli.py
case $VHOSTBOX in /*) ;; *) VHOSTBOX=$PWD/$VHOSTBOX ;; esac
if [ ! -x "$VHOSTBOX" ]; then
	echo "SKIP: cli: $VHOSTBOX is not built"
	exit 0
fi
if ! command -v python3 >/dev/null; then
	echo "SKIP: cli: python3 is not installed"
	exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t-cli.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/cwd"
ln -s "$VHOSTBOX" "$tmp/bin/vhost-user-rng"
ln -s "$VHOSTBOX" "$tmp/bin/vhost-user-nosuch"
RNG=$tmp/bin/vhost-user-rng

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1: $2"; }

# run ARGV...: runs a command that must end by itself (10 s at most), in an empty
# directory, without socket activation; sets rc, out (stdout), errs (stderr text), lines.
run() {
	(cd "$tmp/cwd" && exec env -u LISTEN_FDS -u LISTEN_PID -u NOTIFY_SOCKET \
		timeout -k 2 10 "$@") < /dev/null > "$tmp/out" 2> "$tmp/err"
	rc=$?
	out=$(cat "$tmp/out")
	errs=$(head -c 300 "$tmp/err" | tr '\n' ' ')
	lines=$(wc -l < "$tmp/err")
}

# usage_error NAME ARGV...: must exit 2 with exactly one line on stderr and nothing on stdout.
usage_error() {
	local name=$1
	shift
	run "$@"
	if [ "$rc" != 2 ]; then
		fail "$name" "exit $rc, expected 2 (stderr: $errs)"
	elif [ "$lines" != 1 ]; then
		fail "$name" "$lines lines on stderr, expected one: $errs"
	elif [ -n "$out" ]; then
		fail "$name" "printed on stdout: $(head -c 200 "$tmp/out")"
	else
		pass "$name"
	fi
}

# refused NAME ARGV...: must exit non-zero (not hang) with a message on stderr.
refused() {
	local name=$1
	shift
	run "$@"
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		fail "$name" "still running after 10 s"
	elif [ "$rc" = 0 ]; then
		fail "$name" "exit 0"
	elif [ ! -s "$tmp/err" ]; then
		fail "$name" "exit $rc without a message"
	else
		pass "$name"
	fi
}

# --- --list, --version, --help, personalities ----------------------------------------------

TYPES=" 9p balloon block caif console crypto gpu input net rng rpmsg rproc-serial scsi vsock fs "
run "$VHOSTBOX" --list
bad=$(echo "$out" | while read -r name type aliases; do
	[[ $name =~ ^[a-z0-9-]+$ ]] && [[ $TYPES == *" $type "* ]] && [[ $aliases =~ ^[a-z0-9\ -]*$ ]] ||
		echo "'$name $type $aliases'"
done)
if [ "$rc" != 0 ]; then
	fail list "exit $rc ($errs)"
elif [ -z "$out" ] || [ -n "$bad" ]; then
	fail list "lines not 'NAME TYPE [ALIAS]...' with TYPE in the schema: $bad"
elif ! grep -qx 'rng rng' <<< "$out"; then
	fail list "no 'rng rng' line"
elif [ -s "$tmp/err" ]; then
	fail list "stderr: $errs"
else
	pass list
fi
personalities=$(awk '{ print $1 }' <<< "$out")
# "NAME TYPE [ALIAS]...": every alias with its type.
aliases=$(awk '{ for (i = 3; i <= NF; i++) print $i, $2 }' <<< "$out")

run "$VHOSTBOX" --version
version=$out
if [ "$rc" = 0 ] && [[ $out =~ ^vhostbox\ [0-9][^[:space:]]*$ ]]; then
	pass "version: $out"
else
	fail version "exit $rc, printed '$out'"
fi
while read -r name cmd; do
	read -ra argv <<< "$cmd"
	run "${argv[@]}" --version
	if [ "$rc" = 0 ] && [ "$out" = "$version" ]; then pass "$name"; else fail "$name" "exit $rc, printed '$out'"; fi
done <<EOF
version-personality $VHOSTBOX rng
version-link $RNG
EOF

while read -r name cmd; do
	read -ra argv <<< "$cmd"
	run "${argv[@]}" --help
	if [ "$rc" = 0 ] && grep -qi usage "$tmp/out" && [ ! -s "$tmp/err" ]; then
		pass "$name"
	else
		fail "$name" "exit $rc, stdout $(wc -c < "$tmp/out") bytes, stderr: $errs"
	fi
done <<EOF
help-vhostbox $VHOSTBOX
help-personality $VHOSTBOX rng
help-link $RNG
EOF

run "$VHOSTBOX"
if [ "$rc" = 2 ] && [ -s "$tmp/err" ] && [ -z "$out" ]; then pass no-arguments; else fail no-arguments "exit $rc"; fi

usage_error unknown-personality "$VHOSTBOX" nosuch --socket-path=x
usage_error unknown-personality-link "$tmp/bin/vhost-user-nosuch" --socket-path=x

# --- --print-capabilities ------------------------------------------------------------------

for name in $personalities; do
	type=$(awk -v n="$name" '$1 == n { print $2 }' <<< "$(cd "$tmp" && "$VHOSTBOX" --list)")
	run "$VHOSTBOX" "$name" --print-capabilities
	if [ "$rc" != 0 ]; then
		fail "caps-$name" "exit $rc ($errs)"
	elif why=$(python3 "$CLI_PY" caps "$type" < "$tmp/out"); then
		pass "caps-$name"
	else
		fail "caps-$name" "$why"
	fi
done

run "$VHOSTBOX" rng --print-capabilities
caps_rng=$out
run "$RNG" --print-capabilities
if [ "$rc" = 0 ] && [ "$out" = "$caps_rng" ]; then pass link-is-personality; else fail link-is-personality "exit $rc, printed '$out'"; fi

# Each alias --list names is installed as a link: it runs its personality.
while read -r alias type; do
	[ -n "$alias" ] || continue
	ln -s "$VHOSTBOX" "$tmp/bin/vhost-user-$alias"
	run "$tmp/bin/vhost-user-$alias" --print-capabilities
	if [ "$rc" = 0 ] && python3 "$CLI_PY" caps "$type" < "$tmp/out" >/dev/null; then
		pass "link-alias-$alias"
	else
		fail "link-alias-$alias" "exit $rc, printed '$out' ($errs)"
	fi
done <<< "$aliases"

# --print-capabilities ignores every other option, valid or not, and serves nothing.
i=0
while read -r line; do
	i=$((i + 1))
	read -ra argv <<< "$line"
	run "${argv[@]}"
	if [ "$rc" != 0 ]; then
		fail "caps-ignores-options-$i" "'$line': exit $rc ($errs)"
	elif [ "$out" != "$caps_rng" ]; then
		fail "caps-ignores-options-$i" "'$line': printed '$out'"
	elif [ -n "$(ls -A "$tmp/cwd")" ]; then
		fail "caps-ignores-options-$i" "'$line': created $(ls -A "$tmp/cwd")"
		rm -rf "${tmp:?}/cwd/"*
	else
		pass "caps-ignores-options-$i"
	fi
done <<EOF
$RNG --bogus --print-capabilities --socket-path=x --fd=3
$RNG --print-capabilities --socket-path=x
$VHOSTBOX rng --fd=abc --socket-mode=zz --print-capabilities extra words
$VHOSTBOX rng --socket-path x --print-capabilities --fd 3 --socket-path
EOF

# --- usage errors and refusals -------------------------------------------------------------

S=$tmp/sock
usage_error socket-path-and-fd "$RNG" --socket-path="$S" --fd=0
usage_error fd-and-socket-path "$VHOSTBOX" rng --fd 0 --socket-path "$S"
usage_error unknown-option "$RNG" --bogus --socket-path="$S"
usage_error unknown-option-after "$RNG" --socket-path="$S" --bogus=1
usage_error unexpected-argument "$RNG" --socket-path="$S" extra
usage_error missing-value "$RNG" --socket-path
usage_error neither-socket-nor-fd "$RNG"
usage_error bad-fd-abc "$RNG" --fd=abc
usage_error bad-fd-negative "$RNG" --fd=-1
usage_error bad-fd-empty "$RNG" --fd=
usage_error bad-fd-trailing "$RNG" --fd=3x
usage_error bad-socket-mode "$RNG" --socket-mode=abc --socket-path="$S"
usage_error bad-socket-mode-digit "$RNG" --socket-mode=0999 --socket-path="$S"

# Device options: a bad value of each kind is one line and status 2 (proto/option.c
# checks every option from its device's table).
while read -r name p args; do
	if ! grep -qx "$p" <<< "$personalities"; then
		echo "SKIP: $name: $p is not built"
		continue
	fi
	read -ra argv <<< "$args"
	usage_error "$name" "$VHOSTBOX" "$p" --socket-path="$S" "${argv[@]}"
done <<EOF
opt-uint-below blk --num-queues=0
opt-uint-above blk --num-queues=65
opt-uint-not-a-number blk --threads=two
opt-uint-negative net --mtu=-1500
opt-uint-power-of-2 blk --queue-size=100
opt-enum blk --logical-block-size=1024
opt-string-too-long blk --serial=123456789012345678901
opt-string-empty net --tap=
opt-mac-group net --mac=01:00:00:00:00:01
opt-mac-short net --mac=02:00:00:00:00
opt-fd-negative net --tap-fd=-1
opt-size-zero gpu --max-memory=0
opt-size-above gpu --max-memory=1048577
opt-path-empty blk --blk-file=
opt-flag-with-value blk --read-only=yes
opt-uid-map-two-fields fs --uid-map=:0:1000:
opt-uid-map-four-fields fs --uid-map=:0:1000:1:2:
opt-uid-map-no-leading-delimiter fs --uid-map=0:1000:1:
opt-uid-map-mixed-delimiters fs --uid-map=:0/1000:1:
opt-uid-map-letter-delimiter fs --uid-map=x0x1000x1x
opt-uid-map-empty-field fs --uid-map=::1000:1:
opt-uid-map-not-a-number fs --uid-map=:0:abc:1:
opt-uid-map-negative fs --uid-map=:0:-1:1:
opt-uid-map-count-zero fs --uid-map=:0:1000:0:
opt-uid-map-above-32-bits fs --uid-map=:0:4294967296:1:
opt-uid-map-range-past-32-bits fs --uid-map=:4294967295:0:2:
opt-gid-map-empty fs --gid-map=
opt-gid-map-one-delimiter fs --gid-map=:
EOF
if [ -e "$S" ]; then
	fail usage-errors-serve-nothing "$S was created"
else
	pass usage-errors-serve-nothing
fi

refused socket-dir-missing "$RNG" --socket-path="$tmp/no/such/dir/sock"
refused socket-path-too-long "$RNG" --socket-path="$tmp/$(printf 'x%.0s' {1..120})"
echo precious > "$tmp/file"
refused socket-path-is-a-file "$RNG" --socket-path="$tmp/file"
if [ "$(cat "$tmp/file")" = precious ]; then pass socket-path-file-kept; else fail socket-path-file-kept "the file was removed or changed"; fi
refused fd-not-open "$RNG" --fd=97
refused fd-not-a-socket "$RNG" --fd=0

# A --render-node that is missing or not a DRM render node fails before serving.
if "$VHOSTBOX" --list | grep -q '^gpu '; then
	refused gpu-render-node-missing "$VHOSTBOX" gpu --virgl --render-node="$tmp/no-node" --socket-path="$tmp/g.sock"
	refused gpu-render-node-not-drm "$VHOSTBOX" gpu --virgl --render-node=/dev/null --socket-path="$tmp/g.sock"
	case $errs in
	*"not a DRM render node"*) pass gpu-render-node-not-drm-says-why ;;
	*) fail gpu-render-node-not-drm-says-why "stderr: $errs" ;;
	esac
	if [ -e "$tmp/g.sock" ]; then fail gpu-render-node-serves-nothing "$tmp/g.sock was created"; else pass gpu-render-node-serves-nothing; fi
else
	echo "SKIP: gpu-render-node-checks: this build has no gpu personality"
fi

# --- serving: sockets, fds, activation, signals, notification ----------------------------

T=$tmp VHOSTBOX=$VHOSTBOX RNG=$RNG timeout -k 5 300 python3 "$CLI_PY" \
	mode-default mode-0660 mode-space-form serve-equals-form serve-space-form reconnect \
	sigterm-idle sigint-idle sigterm-client sigint-client \
	live-listener-refused stale-socket-replaced \
	fd-listening fd-connected systemd-activation systemd-other-pid-ignored \
	notify-ready notify-ready-abstract
rc=$?
[ "$rc" = 0 ] || fail socket-cases "the python3 driver exited with $rc"
