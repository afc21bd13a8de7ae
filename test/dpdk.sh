# SPDX-License-Identifier: GPL-2.0-or-later
#
# Helpers for the tests and benchmarks that drive DPDK's dpdk-testpmd (sourced):
# testpmd instances without hugepages, PCI or shared config, each with its own
# file prefix, their output in $DPDK_DIR/NAME.log, their final counts parsed.
#
#   dpdk_usable || skip "$DPDK_WHY"
#   dpdk_start a 0,1 net_virtio_user0,path=$sock -- --forward-mode=txonly
#   dpdk_stop a; dpdk_count a TX
#
# DPDK_DIR must be set (a scratch directory); DPDK_TESTPMD names the program.

DPDK_TESTPMD=${DPDK_TESTPMD:-dpdk-testpmd}
declare -A DPDK_PID=()
DPDK_WHY=""

# dpdk_usable: testpmd and the virtio-user and vhost drivers are installed.
dpdk_usable() {
	command -v "$DPDK_TESTPMD" > /dev/null 2>&1 ||
		{ DPDK_WHY="no $DPDK_TESTPMD (install dpdk-dev: test/install-deps.sh)"; return 1; }
	local drv
	for drv in librte_net_virtio librte_net_vhost librte_mempool_ring; do
		ls /usr/lib/*/dpdk/pmds-*/"$drv".so* > /dev/null 2>&1 ||
			{ DPDK_WHY="DPDK has no $drv driver"; return 1; }
	done
}

# dpdk_start NAME LCORES VDEV... -- TESTPMD_ARG...: start testpmd in the background
# with the vdevs (one --vdev each). LCORES is split into words: "0,1 --main-lcore=1"
# puts the forwarding lcore on core 0. Non-interactive, stats every second. With
# DPDK_STAMP set, each line of the log starts with the time it was printed (epoch
# seconds), the output line-buffered, so that the statistics can be cut by time.
dpdk_start() {
	local name=$1 lcores=$2 vdevs=() cmd
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do vdevs+=(--vdev "$1"); shift; done
	[ "${1:-}" = -- ] && shift
	# shellcheck disable=SC2206,SC2054 # LCORES may carry more EAL options; commas inside options
	cmd=("$DPDK_TESTPMD" -l $lcores --no-huge --no-pci --no-shconf -m 512 --file-prefix="vhostbox-$name-$$"
		--log-level=user1,info "${vdevs[@]}" -- --stats-period=1 --total-num-mbufs=8192 "$@")
	if [ -n "${DPDK_STAMP:-}" ]; then
		stdbuf -oL "${cmd[@]}" < /dev/null > >(while IFS= read -r line; do echo "$EPOCHREALTIME $line"; done \
			> "$DPDK_DIR/$name.log") 2>&1 &
	else
		"${cmd[@]}" < /dev/null > "$DPDK_DIR/$name.log" 2>&1 &
	fi
	DPDK_PID[$name]=$!
}

# dpdk_wait_started NAME [SECS]: until testpmd forwards (or exits: returns 1).
dpdk_wait_started() {
	local i
	for ((i = 0; i < ${2:-20} * 10; i++)); do
		grep -q "Press enter to exit\|Port statistics" "$DPDK_DIR/$1.log" 2>/dev/null && return 0
		kill -0 "${DPDK_PID[$1]}" 2> /dev/null || { DPDK_WHY="testpmd $1 exited: $(grep -m1 -E 'Cause|Error|error' "$DPDK_DIR/$1.log")"; return 1; }
		sleep 0.1
	done
	DPDK_WHY="testpmd $1 did not start forwarding within ${2:-20} s"
	return 1
}

# dpdk_stop NAME: SIGINT (testpmd prints its totals and exits), KILL after 10 s.
dpdk_stop() {
	local pid=${DPDK_PID[$1]:-} i
	[ -n "$pid" ] || return 0
	kill -INT "$pid" 2> /dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2> /dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2> /dev/null
	wait "$pid" 2> /dev/null
	unset "DPDK_PID[$1]"
}

dpdk_stop_all() {
	local n
	for n in "${!DPDK_PID[@]}"; do dpdk_stop "$n"; done
}

# dpdk_count NAME RX|TX: the packets of the final accumulated statistics.
dpdk_count() {
	awk -v key="$2-packets:" '/Accumulated forward statistics/ { acc = 1 }
		acc { for (i = 1; i < NF; i++) if ($i == key) { print $(i + 1); exit } }' "$DPDK_DIR/$1.log"
}
