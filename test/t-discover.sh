#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `vhostbox --discover`: the management-side rules of QEMU's vhost-user.json
# (@VhostUserBackend), checked against directory trees under a temporary --root.
# Fake back-ends are small shell scripts that print capability JSON.
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
VHOSTBOX=${VHOSTBOX:-$REPO/vhostbox}
if [ ! -x "$VHOSTBOX" ]; then
	echo "SKIP: discover: $VHOSTBOX is not built"
	exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t-discover.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

USR=usr/share/qemu/vhost-user
ETC=etc/qemu/vhost-user
USER_HOME=/home/tester            # $HOME inside the tree
CFG=${USER_HOME#/}/.config/qemu/vhost-user

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1: $2"; }

# A fresh tree for one case: $R is its root, also where its fake binaries go.
n=0
tree() {
	n=$((n + 1))
	R=$tmp/t$n
	mkdir -p "$R/$USR" "$R/$ETC" "$R/$CFG" "$R/bin"
}

# backend REL_PATH TYPE BINARY: a valid description file.
backend() {
	printf '{\n  "description": "test %s",\n  "type": "%s",\n  "binary": "%s"\n}\n' \
		"$1" "$2" "$3" > "$R/$1"
}

# fake NAME CAPS_JSON: a back-end printing CAPS_JSON for --print-capabilities; prints its path.
fake() {
	local f=$R/bin/$1
	cat > "$f" <<-EOF
	#!/bin/sh
	[ "\$1" = --print-capabilities ] || exit 3
	[ \$# = 1 ] || exit 3
	cat <<'JSON'
	$2
	JSON
	EOF
	chmod +x "$f"
	echo "$f"
}

# fake_script NAME BODY: a back-end running BODY; prints its path.
fake_script() {
	local f=$R/bin/$1
	printf '#!/bin/sh\n%s\n' "$2" > "$f"
	chmod +x "$f"
	echo "$f"
}

# disc ARGS...: discovery in $R with XDG_CONFIG_HOME unset and HOME=$USER_HOME;
# sets rc, out (stdout), err (stderr file). XDG=... overrides XDG_CONFIG_HOME.
disc() {
	local env=(env -u XDG_CONFIG_HOME HOME="$USER_HOME")
	[ -n "${XDG+set}" ] && env+=(XDG_CONFIG_HOME="$XDG")
	out=$("${env[@]}" timeout 30 "$VHOSTBOX" --discover "$@" --root "$R" 2>"$tmp/err")
	rc=$?
	err=$tmp/err
}

# expect NAME FILE BINARY: the last disc chose FILE (relative to $R) and BINARY.
expect() {
	local want
	want=$(printf '%s\n%s' "$R/$2" "$3")
	if [ "$rc" != 0 ]; then
		fail "$1" "exit $rc, expected 0 ($(head -c 300 "$err" | tr '\n' ' '))"
	elif [ "$out" != "$want" ]; then
		fail "$1" "printed '$(echo "$out" | tr '\n' '|')', expected '$(echo "$want" | tr '\n' '|')'"
	else
		pass "$1"
	fi
}

# expect_none NAME: the last disc found nothing: exit 1, a message, empty stdout.
expect_none() {
	if [ "$rc" != 1 ]; then
		fail "$1" "exit $rc, expected 1 (stdout '$(echo "$out" | tr '\n' '|')')"
	elif [ -n "$out" ]; then
		fail "$1" "printed '$out' on stdout"
	elif [ ! -s "$err" ]; then
		fail "$1" "no message on stderr"
	else
		pass "$1"
	fi
}

# reported NAME FILE: stderr names FILE (the last disc skipped it with a message).
reported() {
	if grep -qF "$2" "$err"; then pass "$1"; else fail "$1" "stderr does not mention $2: $(head -c 300 "$err" | tr '\n' ' ')"; fi
}

# --- where files come from and which one wins -------------------------------------------

tree
backend "$USR/50-a.json" rng /opt/a
disc rng
expect found-in-usr-share "$USR/50-a.json" /opt/a

tree
backend "$ETC/50-a.json" rng /opt/a
disc rng
expect found-in-etc "$ETC/50-a.json" /opt/a

tree
backend "$CFG/50-a.json" rng /opt/a
disc rng
expect found-in-home-config "$CFG/50-a.json" /opt/a

# Sorted by basename across directories, whatever the directory.
tree
backend "$USR/10-first.json" rng /opt/first
backend "$ETC/20-second.json" rng /opt/second
backend "$CFG/30-third.json" rng /opt/third
disc rng
expect order-general-dir-first-name "$USR/10-first.json" /opt/first

tree
backend "$CFG/10-first.json" rng /opt/first
backend "$ETC/20-second.json" rng /opt/second
backend "$USR/30-third.json" rng /opt/third
disc rng
expect order-specific-dir-first-name "$CFG/10-first.json" /opt/first

tree
backend "$USR/50-b.json" rng /opt/b
backend "$ETC/50-a.json" rng /opt/a
backend "$USR/40-gpu.json" gpu /opt/gpu
disc rng
expect order-by-basename-not-path "$ETC/50-a.json" /opt/a

# Byte order of names: "10-" < "9-" < "a" (no numeric or locale sorting).
tree
backend "$USR/9-nine.json" rng /opt/nine
backend "$ETC/10-ten.json" rng /opt/ten
backend "$CFG/a-alpha.json" rng /opt/alpha
LC_ALL=C.UTF-8 disc rng
expect order-bytewise "$ETC/10-ten.json" /opt/ten

# Only the requested type counts.
tree
backend "$USR/10-gpu.json" gpu /opt/gpu
backend "$USR/20-blk.json" block /opt/blk
backend "$USR/30-rng.json" rng /opt/rng
disc rng
expect type-filter "$USR/30-rng.json" /opt/rng
disc block
expect type-filter-block "$USR/20-blk.json" /opt/blk

# --- overrides and hiding ----------------------------------------------------------------

tree
backend "$USR/50-x.json" rng /opt/usr
backend "$ETC/50-x.json" rng /opt/etc
disc rng
expect override-etc-over-usr "$ETC/50-x.json" /opt/etc

tree
backend "$USR/50-x.json" rng /opt/usr
backend "$ETC/50-x.json" rng /opt/etc
backend "$CFG/50-x.json" rng /opt/user
disc rng
expect override-user-over-etc "$CFG/50-x.json" /opt/user

tree
backend "$USR/50-x.json" rng /opt/usr
backend "$CFG/50-x.json" rng /opt/user
disc rng
expect override-user-over-usr "$CFG/50-x.json" /opt/user

# A more specific file of another type replaces the general one: it is not a fallback.
tree
backend "$USR/50-x.json" rng /opt/usr
backend "$ETC/50-x.json" gpu /opt/gpu
backend "$USR/60-y.json" rng /opt/y
disc rng
expect override-by-other-type "$USR/60-y.json" /opt/y

# A broken more specific file also takes effect (and is skipped), it does not fall back.
tree
backend "$USR/50-x.json" rng /opt/usr
echo '{ "type": "rng", ' > "$R/$ETC/50-x.json"
backend "$USR/60-y.json" rng /opt/y
disc rng
expect override-by-broken-file "$USR/60-y.json" /opt/y

tree
backend "$USR/50-x.json" rng /opt/usr
: > "$R/$ETC/50-x.json"
backend "$USR/60-y.json" rng /opt/y
disc rng
expect empty-file-hides "$USR/60-y.json" /opt/y
if [ -s "$err" ]; then
	fail empty-file-hides-quietly "hiding is not an error, yet stderr says: $(head -c 200 "$err")"
else
	pass empty-file-hides-quietly
fi

tree
backend "$USR/50-x.json" rng /opt/usr
backend "$ETC/50-x.json" rng /opt/etc
: > "$R/$CFG/50-x.json"
disc rng
expect_none empty-user-file-hides-all

# An empty file only hides files of the same name, and not more specific ones.
tree
backend "$USR/50-x.json" rng /opt/usr
: > "$R/$ETC/50-x.json"
backend "$CFG/50-x.json" rng /opt/user
disc rng
expect empty-file-overridden-by-more-specific "$CFG/50-x.json" /opt/user

tree
: > "$R/$USR/50-x.json"
backend "$ETC/60-y.json" rng /opt/y
disc rng
expect empty-file-alone "$ETC/60-y.json" /opt/y

# --- XDG_CONFIG_HOME ---------------------------------------------------------------------

tree
mkdir -p "$R/xdg/qemu/vhost-user"
backend "$CFG/10-home.json" rng /opt/home
backend "xdg/qemu/vhost-user/20-xdg.json" rng /opt/xdg
backend "$USR/30-usr.json" rng /opt/usr
XDG=/xdg disc rng
expect xdg-config-home-used "xdg/qemu/vhost-user/20-xdg.json" /opt/xdg
disc rng
expect xdg-unset-home-config "$CFG/10-home.json" /opt/home
XDG="" disc rng
expect xdg-empty-home-config "$CFG/10-home.json" /opt/home
# The XDG base directory spec: a relative path is invalid and ignored.
XDG=xdg disc rng
expect xdg-relative-ignored "$CFG/10-home.json" /opt/home

tree
mkdir -p "$R/xdg/qemu/vhost-user"
backend "$USR/50-x.json" rng /opt/usr
backend "xdg/qemu/vhost-user/50-x.json" rng /opt/xdg
XDG=/xdg disc rng
expect xdg-overrides-usr "xdg/qemu/vhost-user/50-x.json" /opt/xdg

# --- files that are skipped ---------------------------------------------------------------

tree
backend "$USR/10-bad.json" nosuchtype /opt/bad
backend "$USR/20-good.json" rng /opt/good
disc nosuchtype
if [ "$rc" = 2 ]; then pass type-not-in-enum-is-usage-error; else fail type-not-in-enum-is-usage-error "exit $rc"; fi
disc rng
expect skip-type-not-in-enum "$USR/20-good.json" /opt/good
reported skip-type-not-in-enum-reported 10-bad.json

# Each member of the wrong JSON type (or missing) makes the file skipped and reported.
i=0
while IFS='|' read -r label json; do
	i=$((i + 1))
	tree
	printf '%s\n' "$json" > "$R/$USR/10-bad.json"
	backend "$USR/20-good.json" rng /opt/good
	disc rng
	expect "skip-$label" "$USR/20-good.json" /opt/good
	reported "skip-$label-reported" 10-bad.json
done <<'EOF'
type-number|{"description": "d", "type": 4, "binary": "/opt/bad"}
type-missing|{"description": "d", "binary": "/opt/bad"}
description-missing|{"type": "rng", "binary": "/opt/bad"}
description-number|{"description": 1, "type": "rng", "binary": "/opt/bad"}
binary-missing|{"description": "d", "type": "rng"}
binary-relative|{"description": "d", "type": "rng", "binary": "opt/bad"}
binary-array|{"description": "d", "type": "rng", "binary": ["/opt/bad"]}
tags-string|{"description": "d", "type": "rng", "binary": "/opt/bad", "tags": "x"}
tags-numbers|{"description": "d", "type": "rng", "binary": "/opt/bad", "tags": ["x", 1]}
root-array|[{"description": "d", "type": "rng", "binary": "/opt/bad"}]
root-string|"rng"
unparsable-truncated|{"description": "d", "type": "rng", "binary": "/opt/bad"
unparsable-garbage|this is not json
unparsable-trailing|{"description": "d", "type": "rng", "binary": "/opt/bad"} {}
EOF

# Tags are ignored, whatever strings they hold.
tree
printf '%s\n' '{"description": "d", "type": "rng", "binary": "/opt/tagged", "tags": ["CONFIG_X=y", ""]}' \
	> "$R/$USR/10-tagged.json"
disc rng
expect tags-ignored "$USR/10-tagged.json" /opt/tagged

# A broken file does not end the search, and the exit status still says found.
tree
printf '{ "type": ' > "$R/$USR/10-broken.json"
printf '\x00\xff\xfe' > "$R/$ETC/11-binary.json"
backend "$CFG/20-good.json" rng /opt/good
disc rng
expect unparsable-not-fatal "$CFG/20-good.json" /opt/good
reported unparsable-reported 10-broken.json
reported binary-garbage-reported 11-binary.json

tree
mkdir "$R/$USR/10-dir.json"
backend "$USR/20-good.json" rng /opt/good
disc rng
expect directory-named-json-skipped "$USR/20-good.json" /opt/good

# Only *.json files are read.
tree
backend "$USR/10-a.json.bak" rng /opt/bak
backend "$USR/10-a.txt" rng /opt/txt
backend "$USR/10-noext" rng /opt/noext
backend "$USR/10-a.JSON" rng /opt/upper
backend "$USR/10-a.json~" rng /opt/tilde
backend "$ETC/10-b.jsonx" rng /opt/jsonx
backend "$USR/50-real.json" rng /opt/real
disc rng
expect only-json-files "$USR/50-real.json" /opt/real

# Missing directories are no error.
tree
rm -rf "${R:?}/etc" "${R:?}/home"
backend "$USR/50-a.json" rng /opt/a
disc rng
expect missing-dirs-ok "$USR/50-a.json" /opt/a

tree
disc rng
expect_none nothing-installed

tree
backend "$USR/50-gpu.json" gpu /opt/gpu
disc rng
expect_none no-file-of-type

# --- --feature: the binary's --print-capabilities decides ---------------------------------

tree
ro=$(fake ro '{"type": "block", "features": ["read-only"]}')
both=$(fake both '{"type": "block", "features": ["read-only", "blk-file"]}')
backend "$USR/10-ro.json" block "$ro"
backend "$USR/20-both.json" block "$both"
disc block --feature read-only
expect feature-first-match "$USR/10-ro.json" "$ro"
disc block --feature blk-file
expect feature-missing-next-candidate "$USR/20-both.json" "$both"
disc block --feature blk-file --feature read-only
expect feature-all-required "$USR/20-both.json" "$both"
disc block --feature=read-only --feature=blk-file
expect feature-equals-form "$USR/20-both.json" "$both"
disc block --feature virgl
expect_none feature-nobody-has-it

# The capabilities' type must be the requested one.
tree
other=$(fake other '{"type": "gpu", "features": ["read-only"]}')
good=$(fake good '{"type": "block", "features": ["read-only"]}')
backend "$USR/10-other.json" block "$other"
backend "$USR/20-good.json" block "$good"
disc block --feature read-only
expect caps-type-mismatch-skipped "$USR/20-good.json" "$good"

# Candidates whose --print-capabilities misbehaves are skipped; the next one is chosen.
tree
good=$(fake good '{"type": "block", "features": ["read-only"]}')
i=10
while IFS='|' read -r label body; do
	f=$(fake_script "$label" "$body")
	backend "$USR/$i-$label.json" block "$f"
	i=$((i + 1))
done <<'EOF'
fails|echo '{"type": "block", "features": ["read-only"]}'; exit 1
killed|echo '{"type": "block", "features": ["read-only"]}'; kill -9 $$
garbage|echo 'no json here'
empty|exit 0
array|echo '["read-only"]'
features-string|echo '{"type": "block", "features": "read-only"}'
no-features|echo '{"type": "block"}'
EOF
backend "$USR/20-missing.json" block "$R/bin/does-not-exist"
backend "$USR/21-notexec.json" block "$R/$USR/20-missing.json"
backend "$USR/50-good.json" block "$good"
disc block --feature read-only
expect caps-failures-skipped "$USR/50-good.json" "$good"
reported caps-exit-status-reported 10-fails.json
reported caps-garbage-reported 12-garbage.json
reported caps-missing-binary-reported 20-missing.json

# Bounded: a candidate that hangs is killed (with what it started), one that floods is cut off.
tree
good=$(fake good '{"type": "block", "features": ["read-only"]}')
hang=$(fake_script hang "sleep 60 & echo \$! > '$R/sleep.pid'; wait")
silent=$(fake_script silent "echo '{\"type\": \"block\", \"features\": [\"read-only\"]}'; exec >&-; sleep 60")
flood=$(fake_script flood 'exec yes "{\"type\": \"block\", \"features\": [\"read-only\"]}"')
backend "$USR/10-hang.json" block "$hang"
backend "$USR/11-silent.json" block "$silent"
backend "$USR/12-flood.json" block "$flood"
backend "$USR/50-good.json" block "$good"
start=$(date +%s%N)
disc block --feature read-only --timeout 1
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect caps-hang-flood-skipped "$USR/50-good.json" "$good"
if [ "$ms" -lt 10000 ]; then pass "caps-timeout-bounded: ${ms} ms"; else fail caps-timeout-bounded "took ${ms} ms with --timeout 1"; fi
reported caps-hang-reported 10-hang.json
reported caps-flood-reported 12-flood.json
# running PID: true while PID exists and is not a zombie (nobody may reap orphans here).
running() {
	local state
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
	[ -n "$state" ] && [ "$state" != Z ]
}
sleeper=$(cat "$R/sleep.pid" 2>/dev/null)
for _ in $(seq 100); do
	if [ -z "$sleeper" ] || ! running "$sleeper"; then break; fi
	sleep 0.02
done
if [ -z "$sleeper" ]; then
	fail caps-timeout-kills-children "the hung candidate did not start"
elif running "$sleeper"; then
	kill "$sleeper"
	fail caps-timeout-kills-children "the hung candidate's child is still running"
else
	pass caps-timeout-kills-children
fi

# The default time limit is a few seconds, not forever.
tree
hang=$(fake_script hang 'exec sleep 60')
backend "$USR/10-hang.json" block "$hang"
start=$(date +%s%N)
disc block --feature read-only
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ "$rc" = 1 ] && [ "$ms" -ge 1000 ] && [ "$ms" -lt 15000 ]; then
	pass "caps-default-timeout: gave up after ${ms} ms"
else
	fail caps-default-timeout "exit $rc after ${ms} ms"
fi

# Without --feature the binary is not run at all.
tree
marker=$R/ran
f=$(fake_script marker "touch '$marker'; echo '{\"type\": \"rng\"}'")
backend "$USR/10-m.json" rng "$f"
disc rng
expect no-feature-no-exec "$USR/10-m.json" "$f"
if [ -e "$marker" ]; then fail no-feature-binary-not-run "the binary was run"; else pass no-feature-binary-not-run; fi

# The real thing: vhostbox's own --print-capabilities, started through a personality link.
tree
ln -s "$VHOSTBOX" "$R/bin/vhost-user-rng"
backend "$USR/50-vhostbox-rng.json" rng "$R/bin/vhost-user-rng"
disc rng --feature anything
expect_none vhostbox-rng-has-no-features
if "$VHOSTBOX" --list 2>/dev/null | grep -q '^blk block'; then
	ln -s "$VHOSTBOX" "$R/bin/vhost-user-blk"
	backend "$USR/50-vhostbox-blk.json" block "$R/bin/vhost-user-blk"
	disc block --feature read-only
	expect vhostbox-blk-read-only "$USR/50-vhostbox-blk.json" "$R/bin/vhost-user-blk"
else
	echo "SKIP: vhostbox-blk-read-only: blk is not built"
fi

# --- usage errors: exit 2, one line on stderr ---------------------------------------------

tree
backend "$USR/50-a.json" rng /opt/a
while IFS='|' read -r label args; do
	read -ra argv <<< "$args"
	out=$(env -u XDG_CONFIG_HOME HOME="$USER_HOME" timeout 30 "$VHOSTBOX" "${argv[@]}" 2>"$tmp/err")
	rc=$?
	lines=$(wc -l < "$tmp/err")
	if [ "$rc" != 2 ]; then
		fail "usage-$label" "exit $rc, expected 2"
	elif [ "$lines" != 1 ]; then
		fail "usage-$label" "$lines lines on stderr, expected 1"
	elif [ -n "$out" ]; then
		fail "usage-$label" "printed '$out' on stdout"
	else
		pass "usage-$label"
	fi
done <<EOF
no-type|--discover
unknown-type|--discover nosuch --root $R
empty-type|--discover= --root $R
unknown-option|--discover rng --bogus --root $R
extra-argument|--discover rng extra --root $R
feature-no-value|--discover rng --root $R --feature
root-no-value|--discover rng --root
two-types|--discover rng --discover gpu --root $R
bad-timeout|--discover rng --timeout abc --root $R
EOF

out=$(timeout 30 "$VHOSTBOX" --discover --help 2>"$tmp/err")
rc=$?
if [ "$rc" = 0 ] && [ -n "$out" ]; then pass discover-help; else fail discover-help "exit $rc"; fi

# A listing of the real host directories must not crash, whatever it finds.
timeout 30 "$VHOSTBOX" --discover rng >/dev/null 2>&1
rc=$?
if [ "$rc" = 0 ] || [ "$rc" = 1 ]; then pass host-dirs; else fail host-dirs "exit $rc"; fi
