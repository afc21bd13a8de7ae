#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# vhost-user-blk: vhostbox against qemu-storage-daemon (its vhost-user-blk export)
# on the same image with the same driver (build/bench/blk-bench): 4 KiB random
# reads and writes, queue depth 1 and 32, 1 and 2 queues, on tmpfs and on disk.
# vhostbox runs with split and with packed virtqueues; QSD has no packed rings, so
# both are compared with its split ones. Prints IOPS (MB/s = IOPS * 4096 / 1e6),
# back-end CPU seconds and the ratios.
# Then the cost of a live migration's dirty log: 4 KiB random reads and writes at
# queue depth 32 on one queue, vhostbox without and with the log (blk-bench ... log:
# LOG_ALL, every ring logged, the log synced every 100 ms), QSD with the log; each
# the median of BENCH_LOG_ROUNDS (3) rounds in which the three take turns.
set -u
cd "$(dirname "$0")/../.."
VHOSTBOX=${VHOSTBOX:-$PWD/vhostbox}
QSD=${QSD:-qemu-storage-daemon}
DRIVER=${BLK_BENCH:-build/bench/blk-bench}
SECS=${BENCH_SECONDS:-5}
SIZE=${BENCH_IMAGE_MB:-1024}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp" "${disk_dir:-}"' EXIT

command -v "$QSD" >/dev/null || { echo "SKIP: blk bench: no $QSD (qemu-utils)"; exit 0; }
[ -x "$DRIVER" ] || { echo "blk bench: build $DRIVER first (make bench-tools)"; exit 1; }

# cpu_ticks PID: user+system clock ticks of a process, all its threads.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

wait_socket() {
	for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.05; done
	return 1
}

# run KIND IMAGE RW QD QUEUES [log] → "iops mbps cpu_seconds"; KIND vhostbox, vhostbox-packed or qsd
run() {
	local kind=$1 img=$2 rw=$3 qd=$4 nq=$5 log=${6:-} sock=$tmp/$1.sock pid out t0 t1 packed=""
	rm -f "$sock"
	[ "$kind" = vhostbox-packed ] && packed=packed
	if [ "$kind" != qsd ]; then
		"$VHOSTBOX" blk --socket-path="$sock" --blk-file="$img" --num-queues="$nq" 2>"$tmp/$kind.log" &
	else
		"$QSD" --blockdev driver=file,node-name=file0,filename="$img",aio=io_uring,cache.direct=off \
			--blockdev driver=raw,node-name=disk0,file=file0 \
			--export type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path="$sock",writable=on,num-queues="$nq" \
			2>"$tmp/$kind.log" &
	fi
	pid=$!
	wait_socket "$sock" || { echo "0 0 0"; kill "$pid"; return; }
	t0=$(cpu_ticks "$pid")
	# shellcheck disable=SC2086 # $packed, $log: nothing or the word
	out=$("$DRIVER" "$sock" "$rw" "$qd" "$nq" "$SECS" $packed $log)
	if [ -n "$log" ] && [[ $out != *marked=[1-9]* ]]; then
		echo "blk bench: $kind logged nothing: $out" >&2
	fi
	t1=$(cpu_ticks "$pid")
	kill "$pid"; wait "$pid" 2>/dev/null
	awk -v o="$out" -v c=$((t1 - t0)) -v hz="$hz" 'BEGIN {
		split(o, f, /[= ]/); iops = f[2] / f[4]
		printf "%d %.1f %.2f\n", iops, iops * 4096 / 1e6, c / hz }'
}

# median FILE: the line of FILE ("iops mbps cpu") with the median IOPS.
median() { sort -n "$1" | awk '{ l[NR] = $0 } END { print l[int((NR + 1) / 2)] }'; }

disk_dir=$(mktemp -d "${BENCH_DISK_DIR:-/var/tmp}/vhostbox-bench.XXXXXX")
logged=""
printf '%-6s %-5s %3s %2s | %9s %6s | %9s %6s | %9s %6s | %6s %6s %6s %9s\n' \
	where rw qd q "split" "cpu-s" "packed" "cpu-s" "QSD" "cpu-s" "s/QSD" "p/QSD" "p/s" "cpu/io"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b ? a / b : 0 }'; }
for where in tmpfs disk; do
	if [ $where = tmpfs ]; then img=/dev/shm/vhostbox-bench-$$.img; else img=$disk_dir/disk.img; fi
	# A written (not sparse) image, so reads hit real data.
	dd if=/dev/zero of="$img" bs=1M count="$SIZE" status=none
	for rw in read write; do
		for qd in 1 32; do
			for nq in 1 2; do
				read -r vi _ vc <<< "$(run vhostbox "$img" $rw $qd $nq)"
				read -r pi _ pc <<< "$(run vhostbox-packed "$img" $rw $qd $nq)"
				read -r qi _ qc <<< "$(run qsd "$img" $rw $qd $nq)"
				# CPU per I/O, vhostbox (split) relative to QSD (< 1: vhostbox spends less).
				cpu=$(awk -v a="$vc" -v ai="$vi" -v b="$qc" -v bi="$qi" \
					'BEGIN { x = ai ? a / ai : 0; y = bi ? b / bi : 0; printf "%.2f", y ? x / y : 0 }')
				printf '%-6s %-5s %3s %2s | %9s %6s | %9s %6s | %9s %6s | %6s %6s %6s %9s\n' \
					$where $rw $qd $nq "$vi" "$vc" "$pi" "$pc" "$qi" "$qc" \
					"$(ratio "$vi" "$qi")" "$(ratio "$pi" "$qi")" "$(ratio "$pi" "$vi")" "$cpu"
			done
		done
	done
	# The dirty log's cost (printed after this table).
	for rw in read write; do
		rm -f "$tmp/off" "$tmp/log" "$tmp/qsd"
		for _ in $(seq "${BENCH_LOG_ROUNDS:-3}"); do
			run vhostbox "$img" $rw 32 1 >> "$tmp/off"
			run vhostbox "$img" $rw 32 1 log >> "$tmp/log"
			run qsd "$img" $rw 32 1 log >> "$tmp/qsd"
		done
		read -r oi _ oc <<< "$(median "$tmp/off")"
		read -r li _ lc <<< "$(median "$tmp/log")"
		read -r qi _ qc <<< "$(median "$tmp/qsd")"
		logged+=$(awk -v w=$where -v rw=$rw -v oi="$oi" -v oc="$oc" -v li="$li" -v lc="$lc" -v qi="$qi" -v qc="$qc" 'BEGIN {
			printf "%-6s %-5s | %9d %6.2f | %9d %6.2f | %9d %6.2f | %8.2f %9.2f\n", w, rw, oi, oc, li, lc, qi, qc,
				oi ? li / oi : 0, qi ? li / qi : 0 }')$'\n'
	done
	rm -f "$img"
done
echo "(IOPS; split/packed: vhostbox's ring layouts; s/QSD, p/QSD: vhostbox split/packed IOPS over QSD's (split);" \
	"p/s: packed over split; cpu/io: vhostbox split's CPU per I/O relative to QSD's; ${SECS}s per run)"
echo
echo "dirty log (live migration's precopy): 4 KiB random I/O, queue depth 32, 1 queue"
printf '%-6s %-5s | %9s %6s | %9s %6s | %9s %6s | %8s %9s\n' where rw "vb-off" cpu-s "vb-log" cpu-s "QSD-log" cpu-s \
	"log/off" "vb/QSD"
printf '%s' "$logged"
echo "(IOPS; log/off = vhostbox with the log / without; vb/QSD = vhostbox / qemu-storage-daemon, both logging)"
