#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# vhost-user-gpu 2D: vhostbox against QEMU's own back-end (/usr/lib/qemu/vhost-user-gpu)
# with the same driver (build/bench/gpu-bench): full-HD frames, each a full
# TRANSFER_TO_HOST_2D + RESOURCE_FLUSH shown to the same display peer.
# Prints frames/s, back-end CPU per frame and the vhostbox/QEMU ratios: the median of
# BENCH_RUNS (default 3) runs of BENCH_SECONDS (default 5) each, the two back-ends taking
# turns so that whatever else the machine does falls on both. With two cores or more the
# back-end runs on one and the driver (and its display thread) on another.
# Benchmarks on a shared machine take turns: each run holds BENCH_LOCK.
set -u
cd "$(dirname "$0")/../.."
VHOSTBOX=${VHOSTBOX:-$PWD/vhostbox}
PEER=${QEMU_VHOST_USER_GPU:-/usr/lib/qemu/vhost-user-gpu}
DRIVER=${GPU_BENCH:-build/bench/gpu-bench}
SECS=${BENCH_SECONDS:-5}
RUNS=${BENCH_RUNS:-3}
BENCH_LOCK=${BENCH_LOCK:-/tmp/vhostbox-bench.lock}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT

[ -x "$PEER" ] || { echo "SKIP: gpu bench: no $PEER (qemu-system-gui)"; exit 0; }
[ -x "$DRIVER" ] || { echo "gpu bench: build $DRIVER first (make bench-tools)"; exit 1; }
"$VHOSTBOX" --list | grep -q '^gpu ' || { echo "SKIP: gpu bench: $VHOSTBOX was built without gpu"; exit 0; }

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
if [ "$(nproc)" -ge 2 ]; then pin_be=(taskset -c 1) pin_drv=(taskset -c 0); else pin_be=() pin_drv=(); fi

# run KIND [DRIVER_ARGS] → "frames_per_s cpu_ms_per_frame"
run() {
	local kind=$1 sock=$tmp/$1.sock pid out t0 t1
	rm -f "$sock"
	if [ "$kind" = vhostbox ]; then
		"${pin_be[@]}" "$VHOSTBOX" gpu --socket-path="$sock" 2>"$tmp/$kind.log" &
	else
		"${pin_be[@]}" "$PEER" --socket-path="$sock" 2>"$tmp/$kind.log" &
	fi
	pid=$!
	for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
	t0=$(cpu_ticks "$pid")
	# QEMU's back-end exits when its front-end leaves: sample its CPU while it runs.
	(while t=$(cpu_ticks "$pid" 2>/dev/null); do echo "$t" > "$tmp/ticks"; sleep 0.05; done) &
	local sampler=$!
	out=$("${pin_drv[@]}" "$DRIVER" "$sock" "$SECS" ${2:-} 2>>"$tmp/$kind.log")
	t1=$(cpu_ticks "$pid" 2>/dev/null || cat "$tmp/ticks")
	kill "$pid" "$sampler" 2>/dev/null; wait "$pid" "$sampler" 2>/dev/null
	[ -n "$out" ] || { echo "# $kind failed: $(tail -n 3 "$tmp/$kind.log" | tr '\n' ' ')" >&2; echo "0 0"; return; }
	echo "# $kind: $out" >&2
	awk -v o="$out" -v c=$((t1 - t0)) -v hz="$hz" 'BEGIN {
		split(o, f, /[= ]/); fps = f[2] / f[4]
		printf "%.1f %.2f\n", fps, f[2] ? c / hz * 1000 / f[2] : 0 }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : 0 }'; }

# Layouts: "linux" (the driver's default: TRANSFER + FLUSH queued together, woken by
# the call eventfd, a display that keeps no picture) and "serial" (--serial: one
# command at a time, a display that copies every update into its picture).
exec 9> "$BENCH_LOCK"
printf '%-8s | %9s %12s | %9s %12s | %8s %10s\n' layout "vb fps" "vb cpu-ms" "QEMU fps" "QEMU cpu-ms" \
	"fps x" "cpu x"
for layout in linux serial; do
	arg=""
	[ "$layout" = serial ] && arg=--serial
	: > "$tmp/vhostbox.runs"
	: > "$tmp/qemu.runs"
	for _ in $(seq "$RUNS"); do
		flock 9; run vhostbox $arg >> "$tmp/vhostbox.runs"; flock -u 9
		flock 9; run qemu $arg >> "$tmp/qemu.runs"; flock -u 9
	done
	vf=$(cut -d' ' -f1 "$tmp/vhostbox.runs" | median) vc=$(cut -d' ' -f2 "$tmp/vhostbox.runs" | median)
	qf=$(cut -d' ' -f1 "$tmp/qemu.runs" | median) qc=$(cut -d' ' -f2 "$tmp/qemu.runs" | median)
	awk -v l="$layout" -v a="$vf" -v b="$qf" -v x="$vc" -v y="$qc" 'BEGIN {
		printf "%-8s | %9.1f %12.2f | %9.1f %12.2f | %8.2f %10.2f\n", l, a, x, b, y, b ? a / b : 0, x ? y / x : 0 }'
done
exec 9>&-
echo "(median of $RUNS runs of ${SECS}s each, the back-ends taking turns; transfer + flush of 1920x1080 B8G8R8X8"
echo " per frame; fps x: vhostbox/QEMU frames/s; cpu x: frames per back-end CPU second, vhostbox/QEMU)"
