#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `make install` / `make uninstall` into a DESTDIR: the binary, one vhost-user-<name>
# link per personality, one discovery file per personality that QEMU's vhost-user.json
# accepts and `vhostbox --discover` finds; uninstall removes exactly that.
#
# make never rebuilds the binary here (-o): it installs $VHOSTBOX as built, and
# generates the JSON files in a private build directory, so nothing races other tests.
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
VHOSTBOX=${VHOSTBOX:-$REPO/vhostbox}
case $VHOSTBOX in /*) ;; *) VHOSTBOX=$PWD/$VHOSTBOX ;; esac
if [ ! -x "$VHOSTBOX" ]; then
	echo "SKIP: install: $VHOSTBOX is not built"
	exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1: $2"; }

# The personalities this binary has, and their types: "rng rng", "blk block", ...
if ! "$VHOSTBOX" --list > "$tmp/list" 2>"$tmp/err" || [ ! -s "$tmp/list" ]; then
	fail list "vhostbox --list failed: $(head -c 200 "$tmp/err")"
	exit 0
fi
devices=$(awk '{ printf "%s ", $1 }' "$tmp/list")
# "NAME TYPE [ALIAS]...": every name a personality answers to, with its type.
declare -A type_of=()
aliases=()
while read -r name type more; do
	type_of[$name]=$type
	for a in $more; do type_of[$a]=$type; aliases+=("$a"); done
done < "$tmp/list"

# mk DESTDIR TARGET [VAR=VALUE]...
mk() {
	local dest=$1 target=$2
	shift 2
	# Not a sub-make of `make check`: none of its flags or variables apply here.
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL timeout 120 make -C "$REPO" --no-print-directory -o "$VHOSTBOX" BIN="$VHOSTBOX" \
		B="$tmp/build" DEVICES="$devices" PREFIX=/usr DESTDIR="$dest" "$@" "$target" \
		> "$tmp/make.log" 2>&1
}
make_failed() {
	if grep -q "No rule to make target '$1'" "$tmp/make.log"; then
		echo "the Makefile has no $1 target (is json/json.mk included?)"
	else
		echo "make $1 failed: $(tail -n 3 "$tmp/make.log" | tr '\n' ' ')"
	fi
}

# Every non-directory under a tree, relative, sorted.
listing() { (cd "$1" && find . ! -type d | sed 's|^\./||' | LC_ALL=C sort); }

D=$tmp/dest
if ! mk "$D" install; then
	fail install "$(make_failed install)"
	exit 0
elif [ ! -d "$D" ]; then
	fail install "make install put nothing in DESTDIR (is json/json.mk included?): $(tail -n 2 "$tmp/make.log" | tr '\n' ' ')"
	exit 0
fi
pass install

# --- the layout --------------------------------------------------------------------------

bin=$D/usr/bin/vhostbox
if [ -x "$bin" ] && [ -f "$bin" ] && cmp -s "$bin" "$VHOSTBOX"; then
	pass binary-installed
else
	fail binary-installed "$bin is missing or differs from $VHOSTBOX"
fi

expected=(usr/bin/vhostbox)
for name in $devices "${aliases[@]}"; do
	link=usr/libexec/vhost-user-$name
	expected+=("$link")
	if [ ! -L "$D/$link" ]; then
		fail "link-$name" "$link is not a symlink"
		continue
	fi
	target=$(readlink "$D/$link")
	if [ "$target" != ../bin/vhostbox ]; then
		fail "link-$name" "$link points to '$target', expected ../bin/vhostbox (relative: DESTDIR trees relocate)"
	elif [ ! "$D/$link" -ef "$bin" ]; then
		fail "link-$name" "$D/$link does not lead to the installed binary"
	else
		pass "link-$name"
	fi
done

# The link names work: each runs its personality (a copy of the link resolved inside DESTDIR).
mkdir -p "$tmp/run"
for name in $devices "${aliases[@]}"; do
	ln -s "$bin" "$tmp/run/vhost-user-$name"
	out=$(timeout 10 "$tmp/run/vhost-user-$name" --print-capabilities 2>"$tmp/err")
	rc=$?
	got=$(printf '%s' "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["type"])' 2>/dev/null)
	want=${type_of[$name]}
	if [ "$rc" = 0 ] && [ "$got" = "$want" ]; then
		pass "link-runs-$name"
	else
		fail "link-runs-$name" "exit $rc, type '$got', expected '$want' ($(head -c 200 "$tmp/err"))"
	fi
done

# The discovery files, as the schema's @VhostUserBackend and as this install made them.
cat > "$tmp/check.py" <<'EOF'
import json, os, sys
path, name, want_type, destdir = sys.argv[1:5]
TYPES = {"9p", "balloon", "block", "caif", "console", "crypto", "gpu", "input",
         "net", "rng", "rpmsg", "rproc-serial", "scsi", "vsock", "fs"}
try:
    with open(path) as f:
        d = json.load(f)
except Exception as e:
    sys.exit("not JSON: %s" % e)
if not isinstance(d, dict):
    sys.exit("not an object")
extra = set(d) - {"description", "type", "binary", "tags"}
if extra:
    sys.exit("members the schema does not have: %s" % sorted(extra))
if not isinstance(d.get("description"), str) or not d["description"]:
    sys.exit("description missing or not a string")
if d.get("type") not in TYPES:
    sys.exit("type %r is not a VHostUserBackendType" % d.get("type"))
if d["type"] != want_type:
    sys.exit("type %r, but vhostbox --list says %r" % (d["type"], want_type))
if "tags" in d and not (isinstance(d["tags"], list) and all(isinstance(t, str) for t in d["tags"])):
    sys.exit("tags is not a list of strings")
b = d.get("binary")
if not isinstance(b, str) or not b.startswith("/"):
    sys.exit("binary %r is not an absolute path" % b)
if b != "/usr/libexec/vhost-user-" + name:
    sys.exit("binary %r, expected /usr/libexec/vhost-user-%s" % (b, name))
if not os.path.islink(destdir + b):
    sys.exit("binary %r is not the installed link" % b)
EOF
for name in $devices; do
	json=usr/share/qemu/vhost-user/50-vhostbox-$name.json
	expected+=("$json")
	if [ ! -f "$D/$json" ]; then
		fail "json-$name" "$json is not installed"
	elif why=$(python3 "$tmp/check.py" "$D/$json" "$name" "${type_of[$name]}" "$D" 2>&1); then
		pass "json-$name"
	else
		fail "json-$name" "$json: $why"
	fi
	perm=$(stat -c %a "$D/$json" 2>/dev/null)
	if [ "$perm" = 644 ]; then pass "json-mode-$name"; else fail "json-mode-$name" "mode $perm, expected 644"; fi
done

# Manual pages (each name and alias) and socket-activated units (each personality):
# test/t-units.sh checks what they say.
expected+=(usr/share/man/man1/vhostbox.1)
for name in $devices "${aliases[@]}"; do expected+=("usr/share/man/man1/vhost-user-$name.1"); done
for name in $devices; do
	expected+=("usr/lib/systemd/system/vhost-user-$name@.socket" "usr/lib/systemd/system/vhost-user-$name@.service")
done

want_listing=$(printf '%s\n' "${expected[@]}" | LC_ALL=C sort)
got=$(listing "$D")
if [ "$got" = "$want_listing" ]; then
	pass install-nothing-else
else
	fail install-nothing-else "installed: $(echo "$got" | tr '\n' ' '), expected: $(echo "$want_listing" | tr '\n' ' ')"
fi

# What a management application would pick from this tree is what was installed.
for name in $devices; do
	type=${type_of[$name]}
	out=$(env -u XDG_CONFIG_HOME HOME=/nonexistent timeout 30 "$VHOSTBOX" --discover "$type" --root "$D" 2>"$tmp/err")
	rc=$?
	want="$D/usr/share/qemu/vhost-user/50-vhostbox-$name.json
/usr/libexec/vhost-user-$name"
	if [ "$rc" = 0 ] && [ "$out" = "$want" ]; then
		pass "discover-installed-$name"
	else
		fail "discover-installed-$name" "exit $rc, printed '$(echo "$out" | tr '\n' '|')' ($(head -c 200 "$tmp/err"))"
	fi
done

# --- again, then uninstall -----------------------------------------------------------------

if ! mk "$D" install; then
	fail install-twice "$(make_failed install)"
elif [ "$(listing "$D")" != "$want_listing" ]; then
	fail install-twice "installed: $(listing "$D" | tr '\n' ' ')"
else
	pass install-twice
fi

# Things install did not put there stay.
mkdir -p "$D/usr/share/qemu/vhost-user" "$D/usr/libexec"
echo '{}' > "$D/usr/share/qemu/vhost-user/40-other.json"
ln -s /usr/lib/other/vhost-user-other "$D/usr/libexec/vhost-user-other"
echo other > "$D/usr/bin/other"
foreign=$(printf '%s\n' usr/bin/other usr/libexec/vhost-user-other usr/share/qemu/vhost-user/40-other.json | LC_ALL=C sort)

if ! mk "$D" uninstall; then
	fail uninstall "$(make_failed uninstall)"
else
	pass uninstall
	got=$(listing "$D")
	if [ "$got" = "$foreign" ]; then
		pass uninstall-removes-exactly-what-install-put
	else
		fail uninstall-removes-exactly-what-install-put "left: $(echo "$got" | tr '\n' ' '), expected only: $(echo "$foreign" | tr '\n' ' ')"
	fi
fi

# A link that is no longer vhostbox's (replaced by another package) is left alone.
D2=$tmp/dest2
if mk "$D2" install; then
	first=${devices%% *}
	ln -sfn /usr/lib/other/thing "$D2/usr/libexec/vhost-user-$first"
	if mk "$D2" uninstall && [ "$(listing "$D2")" = "usr/libexec/vhost-user-$first" ]; then
		pass uninstall-keeps-foreign-link
	else
		fail uninstall-keeps-foreign-link "left: $(listing "$D2" | tr '\n' ' ')"
	fi
else
	fail uninstall-keeps-foreign-link "$(make_failed install)"
fi

# Other directories: the files say where the links really are.
D3=$tmp/dest3
if mk "$D3" install PREFIX=/opt/vb libexecdir=/opt/vb/lib/vhostbox; then
	name=${devices%% *}
	json=$D3/opt/vb/share/qemu/vhost-user/50-vhostbox-$name.json
	b=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["binary"])' "$json" 2>/dev/null)
	if [ "$b" = "/opt/vb/lib/vhostbox/vhost-user-$name" ] && [ -L "$D3$b" ] &&
	   [ "$(readlink "$D3$b")" = ../../bin/vhostbox ] && [ "$D3$b" -ef "$D3/opt/vb/bin/vhostbox" ] &&
	   [ -x "$D3/opt/vb/bin/vhostbox" ]; then
		pass install-other-prefix
	else
		fail install-other-prefix "binary '$b' in $json, link -> '$(readlink "$D3$b" 2>/dev/null)'"
	fi
	if mk "$D3" uninstall PREFIX=/opt/vb libexecdir=/opt/vb/lib/vhostbox && [ -z "$(listing "$D3")" ]; then
		pass uninstall-other-prefix
	else
		fail uninstall-other-prefix "left: $(listing "$D3" | tr '\n' ' ')"
	fi
else
	fail install-other-prefix "$(make_failed install)"
fi
