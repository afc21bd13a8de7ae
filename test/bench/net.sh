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
# The back-ends take turns within one machine state. A small VM's rate moves by up
# to 2x over tens of seconds, as its host moves its vCPUs, so runs minutes apart
# compared the machine's states more than the back-ends. Every kind's back-end and
# front-ends start once, all stopped (SIGSTOP) but the kind whose turn it is; a turn
# lasts BENCH_TURN seconds (default 3), a round is one turn of each kind, and
# BENCH_ROUNDS rounds run (default 10). A turn's rate is the frames the front-end
# received between its statistics at the start of the turn and at the start of its
# next one (testpmd prints them as soon as it runs again, its one-second timer having
# run out while it was stopped), over the time it ran between the two. Each figure
# is the median of a kind's turns; the ratios are the medians of each round's ratio;
# the spread is (max - min) / median of a kind's turns. A turn without counts is 0,
# left out of all three.
# VHOSTBOX_ARGS adds switch options; POLL_US the busy-poll time of the polled runs
# (default 1000); BENCH_RINGS the layouts (default "split packed"), BENCH_SIZES the
# frame sizes (default "64 1500"). Benchmarks on a shared machine take turns: each
# comparison holds BENCH_LOCK.
set -u
cd "$(dirname "$0")/../.." || exit 1
VHOSTBOX=${VHOSTBOX:-$PWD/vhostbox}
TURN=${BENCH_TURN:-3}
ROUNDS=${BENCH_ROUNDS:-10}
RINGS=${BENCH_RINGS:-split packed}
SIZES=${BENCH_SIZES:-64 1500}
PACKED_VQ=""     # ,packed_vq=1 while the packed layout is measured
POLL_US=${POLL_US:-1000}
BENCH_LOCK=${BENCH_LOCK:-/tmp/vhostbox-bench.lock}
. test/dpdk.sh
DPDK_STAMP=1     # the turns are cut out of the statistics by time
DPDK_DIR=$(mktemp -d /tmp/vhostbox-bench-net.XXXXXX)
declare -A SW_PID=() PIDS=() COUNTER=()
stop_all() {
	local pid
	# shellcheck disable=SC2086 # each kind's entry is a list of pids
	kill -CONT ${PIDS[*]} 2> /dev/null
	dpdk_stop_all
	for pid in ${SW_PID[@]+"${SW_PID[@]}"}; do kill "$pid" 2> /dev/null; wait "$pid" 2> /dev/null; done
	SW_PID=() PIDS=() COUNTER=()
}
trap 'stop_all; [ -n "${BENCH_KEEP:-}" ] || rm -rf "$DPDK_DIR"' EXIT

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
# forwarding between them, on CORE, its sockets in $DPDK_DIR/KIND.
start_backend() {
	local kind=$1 core=$2 dir=$DPDK_DIR/$1 args=()
	mkdir -p "$dir"
	[ "$kind" = vhostbox-poll ] && args=(--poll-us="$POLL_US")
	if [ "$kind" = dpdk ]; then
		dpdk_start "sw-$kind" "$(lcores "$core")" \
			"net_vhost0,iface=$dir/a.sock,queues=1" "net_vhost1,iface=$dir/b.sock,queues=1" \
			-- --forward-mode=io --auto-start
		PIDS[$kind]=${DPDK_PID[sw-$kind]}
	else
		# shellcheck disable=SC2086
		taskset -c "$core" "$VHOSTBOX" net "${args[@]}" ${VHOSTBOX_ARGS:-} \
			--socket-path="$dir/a.sock" --socket-path="$dir/b.sock" > "$dir/switch.log" 2>&1 &
		SW_PID[$kind]=$! PIDS[$kind]=$!
	fi
	wait_socket "$dir/a.sock" && wait_socket "$dir/b.sock"
}

vdev() { echo "net_virtio_user$1,path=$DPDK_DIR/$2/$3.sock,queues=1,mac=$4$PACKED_VQ"; }

# start_loop KIND SIZE: KIND's front-end; it counts the frames of both ports.
start_loop() {
	dpdk_start "fe-$1" "$(lcores 0)" "$(vdev 0 "$1" a $MAC_A)" "$(vdev 1 "$1" b $MAC_B)" \
		-- --forward-mode=io --tx-first --txpkts="$2" --eth-peer=0,$MAC_B --eth-peer=1,$MAC_A
	dpdk_wait_started "fe-$1" || return 1
	PIDS[$1]+=" ${DPDK_PID[fe-$1]}" COUNTER[$1]=fe-$1
}

# start_pair KIND SIZE: KIND's receiver (it counts) and sender, a sending to b.
start_pair() {
	dpdk_start "b-$1" "$(lcores 2)" "$(vdev 0 "$1" b $MAC_B)" -- --forward-mode=rxonly
	dpdk_wait_started "b-$1" || return 1
	dpdk_start "a-$1" "$(lcores 1)" "$(vdev 0 "$1" a $MAC_A)" -- --forward-mode=txonly --txpkts="$2" --eth-peer=0,$MAC_B
	dpdk_wait_started "a-$1" || return 1
	PIDS[$1]+=" ${DPDK_PID[b-$1]} ${DPDK_PID[a-$1]}" COUNTER[$1]=b-$1
}

# take_turns: ROUNDS rounds of a TURN-second turn of each kind, the others stopped;
# each turn's "KIND ROUND START STOP" (epoch seconds) in $DPDK_DIR/turns. Short
# turns before the first round (testpmd, stopped as soon as it printed its first
# statistics, printed none when it first ran again) and after the last (the counts
# at the end of the last round).
take_turns() {
	local r kind t0
	: > "$DPDK_DIR/turns"
	for ((r = -1; r <= ROUNDS; r++)); do
		for kind in "${kinds[@]}"; do
			# shellcheck disable=SC2086
			kill -CONT ${PIDS[$kind]}
			t0=$EPOCHREALTIME
			sleep "$([ "$r" -ge 0 ] && [ "$r" -lt "$ROUNDS" ] && echo "$TURN" || echo 0.5)"
			[ "$r" -ge 0 ] && echo "$kind $r $t0 $EPOCHREALTIME" >> "$DPDK_DIR/turns"
			# shellcheck disable=SC2086
			kill -STOP ${PIDS[$kind]}
		done
	done
}

# turn_rates KIND: the Mpps of each of KIND's turns, in round order, 0 where the
# statistics in the turn or in the kind's next one are missing. The counts are those
# of the first statistics printed in each of the two turns (mostly within ms of the
# turn's start; later where the back-end's busy poll kept testpmd's main thread off
# core 1), over the time the kind ran between the two prints.
turn_rates() {
	awk -v kind="$1" '
		FNR == NR { if ($1 == kind) { start[$2] = $3; stop[$2] = $4; if ($2 + 0 > last) last = $2 + 0 } next }
		/Port statistics/ { n++; t[n] = $1; c[n] = 0 }
		/NIC statistics for port/ { port = 1; next }
		port && /RX-packets:/ { for (i = 2; i < NF; i++) if ($i == "RX-packets:") c[n] += $(i + 1); port = 0 }
		# the first print in turn r (it may be stamped just before the script noted
		# the turn start), and how long the kind had run in that turn when it came
		function first(r,   i) { for (i = 1; i <= n; i++) if (t[i] >= start[r] - 0.1 && t[i] < stop[r]) return i; return 0 }
		function into(r, i) { return t[i] > start[r] ? t[i] - start[r] : 0 }
		END { for (r = 0; r < last; r++) {
			a = first(r); b = first(r + 1); ran = stop[r] - start[r] - into(r, a) + into(r + 1, b)
			printf "%.3f ", (a && b && ran > 0.5 ? (c[b] - c[a]) / ran / 1e6 : 0) }
		      print "" }' "$DPDK_DIR/turns" "$DPDK_DIR/${COUNTER[$1]}.log"
}

# compare LAYOUT SIZE: every kind's rates, one line each: "KIND RATE..." ("KIND -" if
# it could not start).
compare() {
	local layout=$1 size=$2 core=1 kind started=()
	[ "$layout" = pair ] && core=3
	exec 9> "$BENCH_LOCK"
	flock 9
	for kind in "${kinds[@]}"; do
		if start_backend "$kind" "$core" && "start_$layout" "$kind" "$size"; then
			# shellcheck disable=SC2086
			kill -STOP ${PIDS[$kind]}
			started+=("$kind")
		else
			echo "# $kind $layout $size: ${DPDK_WHY:-the back-end did not start}" >&2
		fi
	done
	if [ ${#started[@]} = ${#kinds[@]} ]; then
		take_turns
		for kind in "${kinds[@]}"; do echo "$kind $(turn_rates "$kind")"; done
	else
		for kind in "${kinds[@]}"; do echo "$kind -"; done
	fi
	stop_all
	exec 9>&-
}

median() { sort -n | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : 0 }'; }
# ratios A B: the median of the per-round ratios of two lists of rates (same order).
ratios() {
	paste -d' ' <(tr ' ' '\n' <<< "$1" | grep .) <(tr ' ' '\n' <<< "$2" | grep .) |
		awk '{ if ($1 > 0 && $2 > 0) print $1 / $2 }' | median
}
# spread: (max - min) / median of the non-zero numbers on stdin, in percent.
spread() {
	awk '$1 > 0' | sort -n | awk '{ v[NR] = $1 } END { m = NR ? v[int((NR + 1) / 2)] : 0
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
			compare "$layout" "$size" > "$DPDK_DIR/rates"
			while read -r kind rates; do got[$kind]=$rates; done < "$DPDK_DIR/rates"
			for kind in "${kinds[@]}"; do
				med[$kind]=$(tr ' ' '\n' <<< "${got[$kind]}" | awk '$1 > 0' | median)
				spr[$kind]=$(tr ' ' '\n' <<< "${got[$kind]}" | spread)
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
echo "(Mpps the front-end received, median of $ROUNDS turns of ${TURN}s, the back-ends taking turns;" \
	"vb-poll: vhostbox --poll-us=$POLL_US; loop: front-end on core 0, back-end on core 1)"
[ -z "$pair_skipped" ] || echo "$pair_skipped"
