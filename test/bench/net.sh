#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# vhost-user-net: DPDK testpmd virtio-user front-ends (net_virtio_user) forwarding
# through the vhostbox switch, against the same through one DPDK testpmd whose two
# net_vhost ports forward between them (io), in one run: 64- and 1500-byte frames,
# Mpps and the vhostbox/DPDK ratio. vhostbox runs twice: woken by kicks (its default)
# and busy-polling its transmit rings (--poll-us), as DPDK always does. Both ring
# layouts: split, and packed (the front-ends' packed_vq=1; DPDK's vhost ports then
# run packed too).
#
# Layouts:
#  loop  (the headline; 2 busy processes, one core each) one front-end testpmd with
#        one forwarding lcore and two ports a and b in io forwarding, started with a
#        burst on each (--tx-first): frames go a -> back-end -> b -> testpmd -> a ...,
#        so the back-end's rate is what the front-end receives on both ports.
#  pair  (3 busy processes: sender txonly, receiver rxonly, back-end) run only with
#        4 cores or more: on fewer, two of the three busy pollers share a core and
#        the figures measure the scheduler, not the back-end.
# Each figure is the median of BENCH_ROUNDS runs (default 5), the back-ends taking
# turns, since the rate of a small machine (a VM) moves from run to run; the spread
# is (max - min) / median of those runs. The ratios are the medians of each round's
# ratio (the back-ends ran minutes apart at most there), not ratios of medians.
# BENCH_SECONDS sets the length of each run (default 6); VHOSTBOX_ARGS adds switch
# options; POLL_US the busy-poll time of the polled runs (default 1000);
# BENCH_RINGS the layouts (default "split packed"), BENCH_SIZES the frame sizes
# (default "64 1500").
# Benchmarks on a shared machine take turns: each run holds BENCH_LOCK.
set -u
cd "$(dirname "$0")/../.." || exit 1
VHOSTBOX=${VHOSTBOX:-$PWD/vhostbox}
SECS=${BENCH_SECONDS:-6}
ROUNDS=${BENCH_ROUNDS:-5}
RINGS=${BENCH_RINGS:-split packed}
SIZES=${BENCH_SIZES:-64 1500}
PACKED_VQ=""     # ,packed_vq=1 while the packed layout is measured
POLL_US=${POLL_US:-1000}
BENCH_LOCK=${BENCH_LOCK:-/tmp/vhostbox-bench.lock}
. test/dpdk.sh
DPDK_DIR=$(mktemp -d /tmp/vhostbox-bench-net.XXXXXX)
sw_pid=""
trap 'dpdk_stop_all; [ -n "$sw_pid" ] && kill "$sw_pid" 2>/dev/null; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$DPDK_DIR"' EXIT

dpdk_usable || { echo "SKIP: net bench: $DPDK_WHY"; exit 0; }
ncpu=$(nproc)
[ "$ncpu" -ge 2 ] || { echo "SKIP: net bench: needs 2 cores"; exit 0; }
MAC_A=02:00:00:00:00:0a MAC_B=02:00:00:00:00:0b

wait_socket() {
	for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.05; done
	return 1
}

# lcores CORE: testpmd's -l with its forwarding lcore on CORE and the main lcore
# (which only prints statistics) elsewhere.
lcores() { local other=$(($1 == 0 ? 1 : 0)); echo "$1,$other --main-lcore=$other"; }

# start_backend KIND CORE: vhostbox, vhostbox-poll, or testpmd with two vhost ports
# forwarding between them, on CORE.
start_backend() {
	local kind=$1 core=$2 args=()
	rm -f "$DPDK_DIR"/[ab].sock
	[ "$kind" = vhostbox-poll ] && args=(--poll-us="$POLL_US")
	if [ "$kind" = dpdk ]; then
		dpdk_start sw "$(lcores "$core")" \
			"net_vhost0,iface=$DPDK_DIR/a.sock,queues=1" "net_vhost1,iface=$DPDK_DIR/b.sock,queues=1" \
			-- --forward-mode=io --auto-start
	else
		# shellcheck disable=SC2086
		taskset -c "$core" "$VHOSTBOX" net "${args[@]}" ${VHOSTBOX_ARGS:-} \
			--socket-path="$DPDK_DIR/a.sock" --socket-path="$DPDK_DIR/b.sock" > "$DPDK_DIR/switch.log" 2>&1 &
		sw_pid=$!
	fi
	wait_socket "$DPDK_DIR/a.sock" && wait_socket "$DPDK_DIR/b.sock"
}

stop_backend() {
	if [ -n "$sw_pid" ]; then kill "$sw_pid"; wait "$sw_pid" 2>/dev/null; sw_pid=""; fi
	dpdk_stop sw
}

vdev() { echo "net_virtio_user$1,path=$DPDK_DIR/$2.sock,queues=1,mac=$3$PACKED_VQ"; }

# measure_loop SIZE: the front-end's Rx pps over both ports.
measure_loop() {
	dpdk_start fe "$(lcores 0)" "$(vdev 0 a $MAC_A)" "$(vdev 1 b $MAC_B)" \
		-- --forward-mode=io --tx-first --txpkts="$1" --eth-peer=0,$MAC_B --eth-peer=1,$MAC_A
	dpdk_wait_started fe || return 1
	sleep "$SECS"
	dpdk_stop fe
	dpdk_rate fe Rx
}

# measure_pair SIZE: the receiver's Rx pps, a sending to b.
measure_pair() {
	dpdk_start b "$(lcores 2)" "$(vdev 0 b $MAC_B)" -- --forward-mode=rxonly
	dpdk_wait_started b || return 1
	dpdk_start a "$(lcores 1)" "$(vdev 0 a $MAC_A)" -- --forward-mode=txonly --txpkts="$1" --eth-peer=0,$MAC_B
	dpdk_wait_started a || return 1
	sleep "$SECS"
	dpdk_stop a
	dpdk_stop b
	dpdk_rate b Rx
}

# run LAYOUT KIND SIZE: Mpps, 0 when it could not run.
run() {
	local layout=$1 kind=$2 size=$3 core=1 pps=0
	[ "$layout" = pair ] && core=3
	exec 9> "$BENCH_LOCK"
	flock 9
	if start_backend "$kind" "$core"; then
		pps=$("measure_$layout" "$size") || { echo "# $kind $layout $size: $DPDK_WHY" >&2; pps=0; }
	fi
	dpdk_stop_all
	stop_backend
	exec 9>&-
	awk -v r="$pps" 'BEGIN { printf "%.3f\n", r / 1e6 }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : 0 }'; }
# ratios A B: the median of the per-round ratios of two lists of rates (same order).
ratios() {
	paste -d' ' <(tr ' ' '\n' <<< "$1" | grep .) <(tr ' ' '\n' <<< "$2" | grep .) |
		awk '{ if ($2 > 0) print $1 / $2 }' | median
}
# spread: (max - min) / median of the numbers on stdin, in percent.
spread() {
	sort -n | awk '{ v[NR] = $1 } END { m = NR ? v[int((NR + 1) / 2)] : 0
		printf "%.0f%%\n", (m > 0 ? 100 * (v[NR] - v[1]) / m : 0) }'
}

layouts=(loop)
pair_skipped=""
if [ "$ncpu" -ge 4 ]; then
	layouts+=(pair)
else
	pair_skipped="(pair layout, txonly -> rxonly, not run: it needs 4 cores, this machine has $ncpu)"
fi
kinds=(vhostbox vhostbox-poll dpdk)
printf '%-6s %-6s %-5s | %9s %9s %9s | %6s %10s | %s\n' rings layout frame vhostbox "vb-poll" DPDK ratio \
	"ratio-poll" "spread vb/vb-poll/DPDK"
for rings in $RINGS; do
	PACKED_VQ=""
	[ "$rings" = packed ] && PACKED_VQ=,packed_vq=1
	for layout in "${layouts[@]}"; do
		for size in $SIZES; do
			declare -A got=() med=() spr=()
			for ((i = 0; i < ROUNDS; i++)); do
				for kind in "${kinds[@]}"; do got[$kind]+="$(run "$layout" "$kind" "$size") "; done
			done
			for kind in "${kinds[@]}"; do
				med[$kind]=$(tr ' ' '\n' <<< "${got[$kind]}" | grep . | median)
				spr[$kind]=$(tr ' ' '\n' <<< "${got[$kind]}" | grep . | spread)
			done
			rv=$(ratios "${got[vhostbox]}" "${got[dpdk]}")
			rp=$(ratios "${got[vhostbox-poll]}" "${got[dpdk]}")
			awk -v r="$rings" -v l="$layout" -v s="$size" -v v="${med[vhostbox]}" -v p="${med[vhostbox-poll]}" \
				-v d="${med[dpdk]}" -v rv="$rv" -v rp="$rp" \
				-v sp="${spr[vhostbox]}/${spr[vhostbox-poll]}/${spr[dpdk]}" 'BEGIN {
				printf "%-6s %-6s %-5s | %9.3f %9.3f %9.3f | %6.2f %10.2f | %s\n", r, l, s, v, p, d, rv, rp, sp }'
			[ -n "${BENCH_VERBOSE:-}" ] && for kind in "${kinds[@]}"; do echo "#   $kind: ${got[$kind]}"; done
			unset got med spr
		done
	done
done
echo "(Mpps the front-end received, median of $ROUNDS runs of ${SECS}s, the back-ends taking turns;" \
	"vb-poll: vhostbox --poll-us=$POLL_US; loop: front-end on core 0, back-end on core 1)"
[ -z "$pair_skipped" ] || echo "$pair_skipped"
