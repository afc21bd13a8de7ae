#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# vhost-user-net: frames between two DPDK testpmd virtio-user ports (net_virtio_user)
# through the vhostbox switch, against the same through one DPDK testpmd with two
# net_vhost ports forwarding between them (io), in one run. 64- and 1500-byte frames;
# txonly -> rxonly (the receiver's rate) and io forwarding both ways (frames bounce,
# the first burst sent with --tx-first). Prints Mpps and the vhostbox/DPDK ratio.
# BENCH_SECONDS sets the length of each run (default 6); VHOSTBOX_ARGS adds switch options.
set -u
cd "$(dirname "$0")/../.."
VHOSTBOX=${VHOSTBOX:-$PWD/vhostbox}
SECS=${BENCH_SECONDS:-6}
. test/dpdk.sh
DPDK_DIR=$(mktemp -d /tmp/vhostbox-bench-net.XXXXXX)
sw_pid=""
trap 'dpdk_stop_all; [ -n "$sw_pid" ] && kill "$sw_pid" 2>/dev/null; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$DPDK_DIR"' EXIT

dpdk_usable || { echo "SKIP: net bench: $DPDK_WHY"; exit 0; }
ncpu=$(nproc)
# Cores: the sender's forwarding lcore, the receiver's, and the switch's. With fewer
# than 4 cores the switch shares them (vhostbox unpinned; DPDK's forwarding lcore on 1).
if [ "$ncpu" -ge 4 ]; then c_a=1 c_b=2 c_sw=3 pin=(taskset -c 3); else c_a=0 c_b=1 c_sw=1 pin=(); fi

wait_socket() {
	for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.05; done
	return 1
}

# start_switch KIND: vhostbox, or testpmd with two vhost ports forwarding between them.
start_switch() {
	rm -f "$DPDK_DIR"/[ab].sock
	if [ "$1" = vhostbox ]; then
		# shellcheck disable=SC2086
		"${pin[@]}" "$VHOSTBOX" net --socket-path="$DPDK_DIR/a.sock" --socket-path="$DPDK_DIR/b.sock" \
			${VHOSTBOX_ARGS:-} > "$DPDK_DIR/switch.log" 2>&1 &
		sw_pid=$!
	else
		dpdk_start sw "$c_sw,$((c_sw == 0 ? 1 : 0)) --main-lcore=$((c_sw == 0 ? 1 : 0))" \
			"net_vhost0,iface=$DPDK_DIR/a.sock,queues=1" "net_vhost1,iface=$DPDK_DIR/b.sock,queues=1" \
			-- --forward-mode=io --auto-start
	fi
	wait_socket "$DPDK_DIR/a.sock" && wait_socket "$DPDK_DIR/b.sock"
}

stop_switch() {
	if [ -n "$sw_pid" ]; then kill "$sw_pid"; wait "$sw_pid" 2>/dev/null; sw_pid=""; fi
	dpdk_stop sw
}

# run KIND SIZE MODE: Mpps the receiving port b saw.
run() {
	local kind=$1 size=$2 mode=$3 a_args b_mode
	if [ "$mode" = txonly ]; then a_args=(--forward-mode=txonly); b_mode=rxonly
	else a_args=(--forward-mode=io --tx-first); b_mode=io; fi
	start_switch "$kind" || { echo 0; stop_switch; return; }
	local other_a=$((c_a == 0 ? 1 : 0)) other_b=$((c_b == 0 ? 1 : 0))
	dpdk_start b "$c_b,$other_b --main-lcore=$other_b" "net_virtio_user0,path=$DPDK_DIR/b.sock,queues=1" \
		-- --forward-mode="$b_mode" --txpkts="$size"
	dpdk_wait_started b || { echo 0; dpdk_stop_all; stop_switch; return; }
	dpdk_start a "$c_a,$other_a --main-lcore=$other_a" "net_virtio_user0,path=$DPDK_DIR/a.sock,queues=1" \
		-- "${a_args[@]}" --txpkts="$size"
	dpdk_wait_started a || { echo 0; dpdk_stop_all; stop_switch; return; }
	sleep "$SECS"
	dpdk_stop a
	dpdk_stop b
	stop_switch
	awk -v r="$(dpdk_rate b Rx)" 'BEGIN { printf "%.3f\n", r / 1e6 }'
}

printf '%-5s %-7s | %14s %10s | %6s\n' size mode "vhostbox Mpps" "DPDK Mpps" ratio
for size in 64 1500; do
	for mode in txonly io; do
		v=$(run vhostbox "$size" "$mode")
		d=$(run dpdk "$size" "$mode")
		awk -v s="$size" -v m="$mode" -v v="$v" -v d="$d" 'BEGIN {
			printf "%-5s %-7s | %14.3f %10.3f | %6s\n", s, m, v, d, (d > 0 ? sprintf("%.2f", v / d) : "-") }'
	done
done
