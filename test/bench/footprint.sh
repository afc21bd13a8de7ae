#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Footprint of the dynamic build (./vhostbox) and the static one (make static,
# ./vhostbox-static): the static binary's size per personality set, then per
# personality the --print-capabilities time, start to READY=1, idle RSS and Pss,
# and what each further idle device adds to one process (test/bench/footprint.py).
# Targets (README, Appliance build): static <= 512 KiB; <= 1 MiB RSS per process,
# <= 64 KiB per extra rng/blk/net/input device, --print-capabilities <= 2 ms
# (every personality but gpu with virgl). BENCH_ROUNDS: runs per median (15).
# Benchmarks on a shared machine take turns (BENCH_LOCK).
set -u
cd "$(dirname "$0")/../.." || exit 1
VHOSTBOX=${VHOSTBOX:-$PWD/vhostbox}
STATIC=$PWD/vhostbox-static
BENCH_LOCK=${BENCH_LOCK:-/tmp/vhostbox-bench.lock}
[ -x "$STATIC" ] || { echo "footprint bench: make static first"; exit 1; }
tmp=$(mktemp -d /tmp/vhostbox-bench-footprint.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

echo "static binary, stripped, per personality set:"
all=$("$STATIC" --list | cut -d' ' -f1 | tr '\n' ' ')
for set in "rng" "rng blk" "rng net" "rng input" "rng gpu" "rng vsock" "rng blk net input" "$all"; do
	make --no-print-directory -s static DEVICES="$set" STATIC_BIN="$tmp/vb" > "$tmp/make.log" 2>&1 ||
		{ echo "make static DEVICES='$set' failed:"; tail -5 "$tmp/make.log"; exit 1; }
	printf '  %-34s %7d bytes  %4d KiB\n' "$set" "$(stat -c %s "$tmp/vb")" $(($(stat -c %s "$tmp/vb") / 1024))
done
# Back to the full set for build/static.
make --no-print-directory -s static > /dev/null 2>&1

exec 9> "$BENCH_LOCK"
flock 9
python3 test/bench/footprint.py "$VHOSTBOX,dynamic" "$STATIC,static"
