#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# vhost-user-vsock: streams each way and connections/s through `vhostbox vsock`, driven
# by build/bench/vsock-bench (the test front-end as the guest's driver, threads as the
# host programs; no guest). The bound is the machine's memcpy of the same blocks on
# one core: every byte costs the back-end at least one copy (the kernel's, between a
# unix socket and guest memory). Reported per back-end CPU-second, so the driver and
# the host programs, which share the machine, do not count; the target for 64 KiB
# writes is at least 0.5x memcpy.
# BENCH_SECONDS sets each run's length (default 5), BENCH_ROUNDS the runs whose
# median and spread (lowest-highest) are shown (default 3). Benchmarks on a shared
# machine take turns (BENCH_LOCK).
set -u
cd "$(dirname "$0")/../.." || exit 1
VHOSTBOX=${VHOSTBOX:-$PWD/vhostbox}
DRIVER=${VSOCK_BENCH:-build/bench/vsock-bench}
SECS=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
BENCH_LOCK=${BENCH_LOCK:-/tmp/vhostbox-bench.lock}
tmp=$(mktemp -d /tmp/vhostbox-bench-vsock.XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT

[ -x "$DRIVER" ] || { echo "vsock bench: build $DRIVER first (make bench-tools)"; exit 1; }
"$VHOSTBOX" --list | grep -q '^vsock ' || { echo "SKIP: vsock bench: $VHOSTBOX has no vsock"; exit 0; }

wait_socket() {
	for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.05; done
	return 1
}

# run MODE SIZE: "bytes conns seconds cpu" of one run on a fresh back-end.
run() {
	local out
	exec 9> "$BENCH_LOCK"
	flock 9
	rm -f "$tmp/vu.sock" "$tmp/vsock.uds"
	# A large per-connection buffer: the stream is limited by the back-end, not by credit.
	"$VHOSTBOX" vsock --socket-path="$tmp/vu.sock" --uds-path="$tmp/vsock.uds" --buffer-size=4096 \
		2> "$tmp/backend.log" &
	pid=$!
	if wait_socket "$tmp/vu.sock"; then
		out=$("$DRIVER" "$tmp/vu.sock" "$tmp/vsock.uds" "$pid" "$1" "$2" "$SECS") || out=""
	fi
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pid=""
	exec 9>&-
	awk -v o="${out:-bytes=0 conns=0 seconds=1 cpu=0}" 'BEGIN {
		n = split(o, f, /[ =]/); for (i = 1; i < n; i += 2) v[f[i]] = f[i + 1]
		print v["bytes"], v["conns"], v["seconds"], v["cpu"] }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : 0 }'; }
# spread: "lowest-highest" of the values on stdin
spread() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "-" hi }'; }

# measure MODE SIZE → "rate per_cpu spread": medians (MB/s and MB per back-end CPU-second;
# or conns) and the per-CPU figures' spread over the rounds
measure() {
	local r=() c=() i b n s cpu
	for ((i = 0; i < ROUNDS; i++)); do
		read -r b n s cpu <<< "$(run "$1" "$2")"
		if [ "$1" = conns ]; then
			r+=("$(awk -v n="$n" -v s="$s" 'BEGIN { printf "%.0f", n / s }')")
			c+=("$(awk -v n="$n" -v c="$cpu" 'BEGIN { printf "%.0f", (c > 0 ? n / c : 0) }')")
		else
			r+=("$(awk -v b="$b" -v s="$s" 'BEGIN { printf "%.1f", b / s / 1e6 }')")
			c+=("$(awk -v b="$b" -v c="$cpu" 'BEGIN { printf "%.1f", (c > 0 ? b / c / 1e6 : 0) }')")
		fi
	done
	echo "$(printf '%s\n' "${r[@]}" | median) $(printf '%s\n' "${c[@]}" | median) $(printf '%s\n' "${c[@]}" | spread)"
}

# local_rate MODE SIZE: MB per CPU-second (median) of the driver's memcpy or readv mode,
# counted like the back-end's.
local_rate() {
	local i r=()
	for ((i = 0; i < ROUNDS; i++)); do
		r+=("$(flock "$BENCH_LOCK" "$DRIVER" - - - "$1" "$2" "$SECS" | awk '{
			n = split($0, f, /[ =]/); for (i = 1; i < n; i += 2) v[f[i]] = f[i + 1]
			printf "%.1f", (v["cpu"] > 0 ? v["bytes"] / v["cpu"] / 1e6 : 0) }')")
	done
	printf '%s\n' "${r[@]}" | median
}

printf '%-14s %6s | %10s %14s %17s | %14s %8s %11s\n' stream size "MB/s" "MB/cpu-s" "spread" "memcpy MB/cpu-s" \
	"ratio" "spread"
for size in 65536 4096; do
	mc=$(local_rate memcpy "$size")
	for mode in g2h h2g; do
		read -r rate percpu range <<< "$(measure "$mode" "$size")"
		ratios=$(awk -v a="$percpu" -v r="$range" -v m="$mc" 'BEGIN {
			split(r, x, "-"); if (m <= 0) m = 1e300
			printf "%.2f %.2f-%.2f", a / m, x[1] / m, x[2] / m }')
		name=$([ "$mode" = g2h ] && echo "guest->host" || echo "host->guest")
		printf '%-14s %6s | %10s %14s %17s | %14s %8s %11s\n' "$name" "$size" "$rate" "$percpu" "$range" "$mc" \
			$ratios
	done
	for floor in writev readv; do
		fl=$(local_rate "$floor" "$size")
		printf '%-14s %6s | %10s %14s %17s | %14s %8s\n' "$floor floor" "$size" "-" "$fl" "-" "$mc" \
			"$(awk -v a="$fl" -v m="$mc" 'BEGIN { printf "%.2f", (m > 0 ? a / m : 0) }')"
	done
done
read -r rate percpu range <<< "$(measure conns 0)"
printf '%-14s %6s | %10s %14s %17s |\n' "connections" "-" "$rate/s" "$percpu/cpu-s" "$range"
echo "(median of $ROUNDS runs of ${SECS}s, spread: lowest-highest; MB/cpu-s: bytes per second of the back-end's CPU time;"
echo " ratio: that against memcpy of the same blocks on one core, the physical bound; target >= 0.5 for 64 KiB;"
echo " writev/readv floor: only the unix socket's part of guest->host (writev of the packets' payloads) and of"
echo " host->guest (readv of the host's 64 KiB writes into the receive buffers), nothing else: what each direction"
echo " costs at the least whatever the back-end does (vsock-bench writev/readv);"
echo " connections: a guest connection opened (REQUEST, host accept, RESPONSE) and closed (RST), in batches of 32)"
