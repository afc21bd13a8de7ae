#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vhost-user-net against a real front-end: two DPDK testpmd instances, each a
# virtio-user port (net_virtio_user) of one vhostbox switch. One sends (txonly),
# the other receives (rxonly). Then both swap MACs and send every frame back
# (macswap, a starting with a burst): frames bounce between them through the
# learned MACs. The switch's counters (logged at exit) must agree with testpmd's.
# VU_PACKED=1 (t-net-dpdk-packed.sh): the same with packed virtqueues (packed_vq=1),
# result names ending in -packed; the switch's log must say the rings were packed.
set -u
cd "$(dirname "$0")/.."
VHOSTBOX=${VHOSTBOX:-$PWD/vhostbox}
. test/dpdk.sh

DPDK_DIR=$(mktemp -d /tmp/t-net-dpdk.XXXXXX)
be_pid=""
cleanup() {
	dpdk_stop_all
	[ -n "$be_pid" ] && kill -KILL "$be_pid" 2> /dev/null
	rm -rf "$DPDK_DIR"
}
trap cleanup EXIT

if ! "$VHOSTBOX" --list | grep -q '^net '; then
	echo "SKIP: net-dpdk: $VHOSTBOX was built without net"
	exit 0
fi
dpdk_usable || { echo "SKIP: net-dpdk: $DPDK_WHY"; exit 0; }

MAC_A=02:00:00:00:00:0a MAC_B=02:00:00:00:00:0b
packed_vq="" layout=split sfx=""
[ "${VU_PACKED:-0}" = 1 ] && packed_vq=,packed_vq=1 layout=packed sfx=-packed

# start_switch: the back-end with ports a and b.
start_switch() {
	"$VHOSTBOX" net --verbose --socket-path="$DPDK_DIR/a.sock" --mac=$MAC_A \
		--socket-path="$DPDK_DIR/b.sock" --mac=$MAC_B > "$DPDK_DIR/switch.log" 2>&1 &
	be_pid=$!
	for _ in $(seq 50); do [ -S "$DPDK_DIR/b.sock" ] && return 0; sleep 0.1; done
	return 1
}

# stop_switch: SIGTERM; the counters are logged on the way out.
stop_switch() {
	kill -TERM "$be_pid"
	wait "$be_pid"
	local rc=$?
	be_pid=""
	return $rc
}

# port_count MAC FIELD: sent/received/dropped/bad of a port from the exit log.
port_count() {
	sed -n "s/.*port $1: sent \([0-9]*\), received \([0-9]*\), dropped \([0-9]*\), bad \([0-9]*\).*/\1 \2 \3 \4/p" \
		"$DPDK_DIR/switch.log" | awk -v f="$2" '{ print f == "sent" ? $1 : f == "received" ? $2 : f == "dropped" ? $3 : $4 }'
}

vdev() { echo "net_virtio_user0,path=$DPDK_DIR/$1.sock,queues=1,queue_size=256$packed_vq"; }

# run_case NAME A_MODE B_MODE [A_ARG...]: b receives (started first), a sends for 3 s.
run_case() {
	local name=$1$sfx a_mode=$2 b_mode=$3
	shift 3
	start_switch || { echo "FAIL: $name: the switch did not start"; return; }
	dpdk_start b 0,1 "$(vdev b)" -- --forward-mode="$b_mode" --eth-peer=0,$MAC_A
	dpdk_wait_started b || { echo "FAIL: $name: $DPDK_WHY"; dpdk_stop_all; stop_switch; return; }
	dpdk_start a 0,1 "$(vdev a)" -- --forward-mode="$a_mode" --eth-peer=0,$MAC_B --txpkts=64 "$@"
	dpdk_wait_started a || { echo "FAIL: $name: $DPDK_WHY"; dpdk_stop_all; stop_switch; return; }
	sleep 3
	dpdk_stop a
	sleep 1 # b takes what is still in its ring
	dpdk_stop b
	stop_switch || { echo "FAIL: $name: the switch exited with status $?"; return; }

	local a_tx a_rx b_rx b_tx sent_a recv_b drop_b sent_b recv_a drop_a bad
	a_tx=$(dpdk_count a TX) a_rx=$(dpdk_count a RX) b_rx=$(dpdk_count b RX) b_tx=$(dpdk_count b TX)
	sent_a=$(port_count $MAC_A sent) recv_a=$(port_count $MAC_A received) drop_a=$(port_count $MAC_A dropped)
	sent_b=$(port_count $MAC_B sent) recv_b=$(port_count $MAC_B received) drop_b=$(port_count $MAC_B dropped)
	bad=$(($(port_count $MAC_A bad) + $(port_count $MAC_B bad)))
	echo "# $name: testpmd a tx $a_tx rx $a_rx, b rx $b_rx tx $b_tx;" \
		"switch a sent $sent_a received $recv_a dropped $drop_a, b sent $sent_b received $recv_b dropped $drop_b, bad $bad"
	local rings
	rings=$(grep -c "features .*: $layout rings" "$DPDK_DIR/switch.log")
	if [ -z "$b_rx" ] || [ -z "$sent_a" ] || [ -z "$recv_b" ]; then
		echo "FAIL: $name: missing counts (see the logs)"
	elif [ "$rings" -lt 2 ]; then
		echo "FAIL: $name: the switch did not log $layout rings for both ports: $(grep -m2 'features' "$DPDK_DIR/switch.log" | tr '\n' ' ')"
	elif [ "$b_rx" -lt 1000 ]; then
		echo "FAIL: $name: b received only $b_rx frames"
	elif [ "$recv_b" != "$b_rx" ]; then
		echo "FAIL: $name: the switch put $recv_b frames in b's ring, testpmd b counted $b_rx"
	elif [ "$((recv_b + drop_b))" != "$sent_a" ]; then
		echo "FAIL: $name: a sent $sent_a, b received $recv_b + dropped $drop_b"
	elif [ "$sent_a" -gt "$a_tx" ]; then
		echo "FAIL: $name: the switch took $sent_a frames from a, testpmd a sent only $a_tx"
	elif [ "$bad" != 0 ]; then
		echo "FAIL: $name: $bad frames were malformed"
	elif [ "$b_mode" = macswap ] && [ "$((recv_a + drop_a))" -gt "$sent_b" ]; then
		echo "FAIL: $name: b sent $sent_b, a received $recv_a + dropped $drop_a"
	elif [ "$b_mode" = macswap ] && [ "$sent_b" -gt "$b_tx" ]; then
		echo "FAIL: $name: the switch took $sent_b frames from b, testpmd b sent only $b_tx"
	elif [ "$b_mode" = macswap ] && { [ "$a_rx" -gt "$recv_a" ] || [ "$recv_a" -gt "$((a_rx + 256))" ]; }; then
		echo "FAIL: $name: the switch put $recv_a frames in a's ring, testpmd a counted $a_rx"
	elif [ "$b_mode" = macswap ] && [ "$a_rx" -lt 1000 ]; then
		echo "FAIL: $name: only $a_rx frames came back to a"
	else
		echo "PASS: $name"
	fi
}

run_case net-dpdk-txonly-rxonly txonly rxonly
run_case net-dpdk-macswap-bounce macswap macswap --tx-first
