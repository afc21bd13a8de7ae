#!/bin/sh
# Prints the Debian mirror this machine's apt is configured with (the URI of its
# first "bookworm" source), so that nothing here names a mirror host. Used by
# test/install-deps.sh (bookworm-backports) and test/musl-libs.sh (source packages).
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
	[ -f "$f" ] || continue
	mirror=$(sed -n -e 's/^URIs: *\([^ ]*debian\)\/* *$/\1/p' \
	                -e 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*debian\)\/* bookworm .*/\2/p' "$f" | head -n 1)
	[ -n "$mirror" ] && { echo "$mirror"; exit 0; }
done
exit 1
