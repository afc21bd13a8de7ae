#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vhost-user-net's tap uplink as a management layer hands it over (--tap-fd): a
# helper opens a tap (IFF_VNET_HDR) in a network namespace this test creates and
# starts the back-end with the fd inherited. A DPDK testpmd port on the switch
# answers ARP and ping (icmpecho); the namespace pings it through the tap. A bad
# --tap-fd (not open, not a tap) must stop the back-end before it serves.
set -u
cd "$(dirname "$0")/.." || exit 1
VHOSTBOX=${VHOSTBOX:-$PWD/vhostbox}
. test/dpdk.sh

DPDK_DIR=$(mktemp -d /tmp/t-net-tap.XXXXXX)
ns=vhostbox-t-net-tap-$$
tap=vbxtapfd$$
tap=${tap:0:15}
be_pid=""
cleanup() {
	dpdk_stop_all
	[ -n "$be_pid" ] && kill -KILL "$be_pid" 2> /dev/null
	ip netns del "$ns" 2> /dev/null
	rm -rf "$DPDK_DIR"
}
trap cleanup EXIT

if ! "$VHOSTBOX" --list | grep -q '^net '; then
	echo "SKIP: net-tap: $VHOSTBOX was built without net"
	exit 0
fi

# bad_fd NAME FD WANT: the back-end given --tap-fd=FD exits 1 at once, saying WANT, no socket made.
bad_fd() {
	local out rc
	out=$(timeout 5 "$VHOSTBOX" net --socket-path="$DPDK_DIR/bad.sock" --tap-fd="$2" 2>&1 < /dev/null)
	rc=$?
	if [ "$rc" != 1 ]; then echo "FAIL: $1: exit status $rc, want 1 ($out)"
	elif [[ $out != *"$3"* ]]; then echo "FAIL: $1: no '$3' in: $out"
	elif [ -e "$DPDK_DIR/bad.sock" ]; then echo "FAIL: $1: the socket was created"
	else echo "PASS: $1"; fi
}
bad_fd net-tap-fd-not-open 99 "--tap-fd=99 is not an open file descriptor"
bad_fd net-tap-fd-not-a-tap 0 "--tap-fd=0 is not a tap"

if ! ip netns add "$ns" 2> /dev/null; then
	echo "SKIP: net-tap-fd-ping: cannot create a network namespace (needs root and iproute2)"
	exit 0
fi
dpdk_usable || { echo "SKIP: net-tap-fd-ping: $DPDK_WHY"; exit 0; }

# The management layer's part: open the tap (in the namespace), pass the fd on.
# shellcheck disable=SC2016 # python
open_tap='
import fcntl, os, struct, sys
fd = os.open("/dev/net/tun", os.O_RDWR)
IFF_TAP, IFF_NO_PI, IFF_VNET_HDR, TUNSETIFF = 0x0002, 0x1000, 0x4000, 0x400454ca
fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", sys.argv[1].encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
os.set_inheritable(fd, True)
os.execv(sys.argv[2], sys.argv[2:] + ["--tap-fd=%d" % fd])
'
ip netns exec "$ns" python3 -c "$open_tap" "$tap" "$VHOSTBOX" net --socket-path="$DPDK_DIR/a.sock" \
	> "$DPDK_DIR/switch.log" 2>&1 &
be_pid=$!
for _ in $(seq 50); do [ -S "$DPDK_DIR/a.sock" ] && break; sleep 0.1; done
if [ ! -S "$DPDK_DIR/a.sock" ]; then
	echo "FAIL: net-tap-fd-ping: the back-end did not start: $(head -c 300 "$DPDK_DIR/switch.log")"
	exit 1
fi
ip netns exec "$ns" ip addr add 10.0.5.1/24 dev "$tap"
ip netns exec "$ns" ip link set "$tap" up

dpdk_start a 0,1 "net_virtio_user0,path=$DPDK_DIR/a.sock,queues=1" -- --forward-mode=icmpecho
if ! dpdk_wait_started a; then
	echo "FAIL: net-tap-fd-ping: $DPDK_WHY"
	exit 1
fi
if out=$(ip netns exec "$ns" busybox ping -c 3 -W 2 10.0.5.2 2>&1); then
	echo "PASS: net-tap-fd-ping"
else
	echo "FAIL: net-tap-fd-ping: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
fi
dpdk_stop a
kill -TERM "$be_pid"
wait "$be_pid"
rc=$?
be_pid=""
# The tap's counters at exit: what it sent into the switch and received from it.
read -r sent received <<< "$(sed -n "s/.*tap $tap: sent \([0-9]*\), received \([0-9]*\).*/\1 \2/p" "$DPDK_DIR/switch.log")"
echo "# tap $tap: sent ${sent:-?}, received ${received:-?}; back-end exit status $rc"
if [ "$rc" = 0 ] && [ "${sent:-0}" -ge 4 ] && [ "${received:-0}" -ge 4 ]; then
	echo "PASS: net-tap-fd-counted"
else
	echo "FAIL: net-tap-fd-counted: exit status $rc, tap sent ${sent:-?} received ${received:-?} (want >= 4 each)"
fi
