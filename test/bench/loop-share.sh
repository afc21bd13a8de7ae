#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# How long one guest can hold up another on the same back-end loop (issue: a bound on
# the work one kick may cost). Two rng connections to one process: A kicks a full ring
# of long chains, B times one small request. No peer serves rng here: absolute numbers.
set -u
cd "$(dirname "$0")/../.."
bin=${VHOSTBOX:-$PWD/vhostbox}
drv=build/bench/loop-share
[ -x "$drv" ] || { echo "loop-share: $drv is not built (make bench-tools)"; exit 1; }
run() {
	local d status
	d=$(mktemp -d)
	"$bin" rng --socket-path="$d/a" --socket-path="$d/b" 2>/dev/null &
	local pid=$!
	for _ in $(seq 50); do [ -S "$d/b" ] && break; sleep 0.05; done
	"$drv" "$d/a" "$d/b" "$1"
	status=$?
	kill "$pid"; wait "$pid" 2>/dev/null
	rm -rf "$d"
	return $status
}
for i in 1 2 3; do
	echo "legal chains, 256 x 32768 descriptors: $(run 32768)"
done
echo "hostile looping table of 2^28 entries:  $(run 268435455)"
