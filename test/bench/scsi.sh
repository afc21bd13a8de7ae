#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# vhost-user-scsi against vhost-user-blk, both vhostbox, on the same image with the
# same driver (build/bench/blk-bench; its "scsi" mode sends READ(10)/WRITE(10) to
# LUN 0): 4 KiB random reads and writes at queue depth 1 and 32 on one queue, on
# tmpfs and on disk, the median of BENCH_ROUNDS (3) rounds in which the two take
# turns. Prints IOPS, back-end CPU seconds, the scsi/blk ratio (the target is >= 0.9)
# and scsi's CPU per I/O relative to blk's.
set -u
cd "$(dirname "$0")/../.."
VHOSTBOX=${VHOSTBOX:-$PWD/vhostbox}
DRIVER=${BLK_BENCH:-build/bench/blk-bench}
SECS=${BENCH_SECONDS:-5}
SIZE=${BENCH_IMAGE_MB:-1024}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp" "${disk_dir:-}"' EXIT

[ -x "$DRIVER" ] || { echo "scsi bench: build $DRIVER first (make bench-tools)"; exit 1; }
"$VHOSTBOX" --list | grep -q '^scsi ' || { echo "SKIP: scsi bench: $VHOSTBOX was built without scsi"; exit 0; }

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# run blk|scsi IMAGE RW QD → "iops cpu_seconds"
run() {
	local kind=$1 img=$2 rw=$3 qd=$4 sock=$tmp/$1.sock pid out t0 t1 mode=""
	rm -f "$sock"
	if [ "$kind" = scsi ]; then
		"$VHOSTBOX" scsi --socket-path="$sock" --lun="$img" 2>"$tmp/$kind.log" &
		mode=scsi
	else
		"$VHOSTBOX" blk --socket-path="$sock" --blk-file="$img" 2>"$tmp/$kind.log" &
	fi
	pid=$!
	for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
	t0=$(cpu_ticks "$pid")
	# shellcheck disable=SC2086 # $mode: nothing or "scsi"
	out=$("$DRIVER" "$sock" "$rw" "$qd" 1 "$SECS" $mode) || echo "scsi bench: $kind $rw qd $qd: $out" >&2
	t1=$(cpu_ticks "$pid")
	kill "$pid"; wait "$pid" 2>/dev/null
	awk -v o="$out" -v c=$((t1 - t0)) -v hz="$hz" 'BEGIN {
		split(o, f, /[= ]/); iops = f[4] ? f[2] / f[4] : 0
		printf "%d %.2f\n", iops, c / hz }'
}

# median FILE: the line of FILE ("iops cpu") with the median IOPS.
median() { sort -n "$1" | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'; }

disk_dir=$(mktemp -d "${BENCH_DISK_DIR:-/var/tmp}/vhostbox-bench.XXXXXX")
printf '%-6s %-5s %3s | %9s %6s | %9s %6s | %6s %7s\n' where rw qd "scsi" "cpu-s" "blk" "cpu-s" "ratio" "cpu/io"
for where in tmpfs disk; do
	if [ $where = tmpfs ]; then img=/dev/shm/vhostbox-bench-$$.img; else img=$disk_dir/disk.img; fi
	dd if=/dev/zero of="$img" bs=1M count="$SIZE" status=none  # written, so reads hit real data
	sync                                                      # and not being written back meanwhile
	for rw in read write; do
		for qd in 1 32; do
			rm -f "$tmp/scsi" "$tmp/blk"
			# Who goes first alternates: the page cache's writeback favours neither.
			for round in $(seq "${BENCH_ROUNDS:-3}"); do
				if [ $((round % 2)) = 1 ]; then
					run scsi "$img" $rw $qd >> "$tmp/scsi"
					run blk "$img" $rw $qd >> "$tmp/blk"
				else
					run blk "$img" $rw $qd >> "$tmp/blk"
					run scsi "$img" $rw $qd >> "$tmp/scsi"
				fi
			done
			read -r si sc <<< "$(median "$tmp/scsi")"
			read -r bi bc <<< "$(median "$tmp/blk")"
			ratio=$(awk -v a="$si" -v b="$bi" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
			cpu=$(awk -v a="$sc" -v ai="$si" -v b="$bc" -v bi="$bi" \
				'BEGIN { x = ai ? a / ai : 0; y = bi ? b / bi : 0; printf "%.2f", y ? x / y : 0 }')
			printf '%-6s %-5s %3s | %9s %6s | %9s %6s | %6s %7s\n' $where $rw $qd "$si" "$sc" "$bi" "$bc" "$ratio" "$cpu"
		done
	done
	rm -f "$img"
done
echo "(IOPS, medians of ${BENCH_ROUNDS:-3}; ratio = scsi/blk IOPS, the same driver and image; cpu/io = scsi's CPU per I/O relative to blk's; ${SECS}s per run, 1 queue)"
