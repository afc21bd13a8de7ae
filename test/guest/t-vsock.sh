#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vhost-user-vsock in a real guest: QEMU's vhost-user-vsock-pci served by
# `vhostbox vsock --uds-path=...`; the guest uses AF_VSOCK (the Debian kernel's
# vsock modules), the host plain unix sockets. Both ends are test/guest/vsock-peer.c,
# built static here. In one boot:
#   g2h       64 MiB guest -> host (host listener at <uds>_1001), checksummed both ends
#   h2g       64 MiB host -> guest ("CONNECT 5001" on the uds, the guest listens)
#   many      100 connections at once, each echoed by the host (serve-echo)
#   refused   a guest connect to a host port nobody listens on fails
#   midstream the host reader closes after 1 MiB: the guest's send fails, no hang
#   paused    the host reader sleeps 4 s after 1 MiB: flow control holds, nothing lost
#   stopcont  QMP stop / cont while a stream is in flight: it completes intact
#   both      a stream each way, both readers paused, so both directions wait on
#             credit: QEMU refuses to migrate (it marks vhost-user-vsock unmigratable:
#             t-vsock.c runs a migration with the test front-end instead), the VM
#             goes on; then stop / cont; both streams complete intact
#   sigterm   the back-end gets SIGTERM with a connection open: exits 0 within 1 s
# VU_PACKED=1 (t-vsock-packed.sh): the same with packed virtqueues.
set -u
. "$(dirname "$0")/lib.sh"

t_start=$(vu_now)
vu_require_guest guest-vsock virtio_pci vmw_vsock_virtio_transport
[ -x "$VHOSTBOX" ] || { vu_fail guest-vsock "no binary $VHOSTBOX"; exit 1; }
vu_vhostbox_has vsock || vu_skip_all guest-vsock "$VHOSTBOX was built without vsock"
vu_qemu_has_device vhost-user-vsock-pci || vu_skip_all guest-vsock "$QEMU has no vhost-user-vsock-pci"
grep -q vmw_vsock_virtio_transport "$VU_INITRAMFS.notes" 2>/dev/null &&
	vu_skip_all guest-vsock "the kernel has no virtio vsock transport module"

# The peer, static for the busybox guest (cached by its source), as /vsock-peer.
vu_static_program "$VU_GUEST_DIR/vsock-peer.c" || vu_skip_all guest-vsock "$VU_WHY"
PEER=$VU_PROGRAM
vu_initramfs_add "$PEER" vsock-peer || { vu_fail guest-vsock "cannot add the peer to the initramfs"; exit 1; }

UDS=$VU_TMP/vsock.uds
MIB=1048576
BIG=$((64 * MIB))
vu_start_backend vsock0 vsock --guest-cid=3 --uds-path="$UDS" || { vu_fail guest-vsock "$VU_WHY"; exit 1; }

# host_peer NAME ARG...: a host vsock-peer, output in $VU_TMP/NAME.out (stderr NAME.err).
host_peer() {
	local name=$1
	shift
	"$PEER" "$@" > "$VU_TMP/$name.out" 2> "$VU_TMP/$name.err" &
	vu_track $!
}
# wait_file REGEX FILE SECS
wait_file() {
	local end=$(($(vu_now) + $(vu_secs_us "$3")))
	until grep -qE -- "$1" "$2" 2>/dev/null; do
		[ "$(vu_now)" -ge "$end" ] && return 1
		sleep 0.05
	done
}

# The host's listeners, before the guest comes.
host_peer g2h serve-recv "unix:${UDS}_1001"
host_peer many serve-echo "unix:${UDS}_1002" 100
host_peer mid serve-close "unix:${UDS}_1004" $MIB
host_peer paused serve-recv "unix:${UDS}_1005" $MIB 4000
host_peer stopcont serve-recv "unix:${UDS}_1006" $((4 * MIB)) 300
host_peer hold serve-recv "unix:${UDS}_1007"
host_peer both-g2h serve-recv "unix:${UDS}_1008" $MIB 6000

cat > "$VU_TMP/guest.sh" <<EOF
wait_for /dev/vsock || exit 1
guest_features
P=/vsock-peer
echo "GUEST-RESULT: g2h \$(\$P send vsock:2:1001 $BIG 1)"
echo "GUEST-RESULT: h2g \$(\$P serve-recv vsock:5001)"
echo "GUEST-RESULT: many \$(\$P many vsock:2:1002 100 262144)"
echo "GUEST-RESULT: refused \$(\$P refused vsock:2:1003)"
echo "GUEST-RESULT: midstream \$(\$P until-error vsock:2:1004)"
echo "GUEST-RESULT: paused \$(\$P send vsock:2:1005 $((16 * MIB)) 5)"
echo "GUEST-RESULT: stopcont \$(\$P send vsock:2:1006 $((32 * MIB)) 6)"
( echo "GUEST-RESULT: both-h2g \$(\$P serve-recv vsock:5002 $MIB 6000)" ) &
echo "GUEST-RESULT: both-g2h \$(\$P send vsock:2:1008 $((16 * MIB)) 7)"
wait
echo "GUEST-RESULT: hold \$(\$P hold vsock:2:1007)"
EOF

# shellcheck disable=SC2054 # the commas are inside QEMU arguments
VU_QEMU_TIMEOUT=${VU_QEMU_TIMEOUT_VSOCK:-1500} vu_start_qemu "$VU_TMP/guest.sh" \
	-chardev "$(vu_chardev vsock0)" -device "vhost-user-vsock-pci,chardev=vsock0$(vu_packed_opt)"
if ! vu_wait_serial 'GUEST-START' 60; then
	vu_fail guest-vsock "boot: $VU_WHY"
	exit 1
fi
echo "# guest booted after $(vu_since "$t_start") s"

# check_stream NAME GUEST_LINE HOST_FILE: the two ends counted and summed the same.
check_stream() {
	local name=$1 g h
	read -r _ gb gs gms <<< "$2"
	read -r _ hb hs hms < "$3" 2>/dev/null
	if [ "${gb:-x}" = "${hb:-y}" ] && [ "${gs:-x}" = "${hs:-y}" ] && [ "$gb" = "$4" ]; then
		vu_pass "$name"
		echo "# $name: $gb bytes, sum $gs; guest $gms ms, host $hms ms"
	else
		vu_fail "$name" "guest '$2', host '$(cat "$3" 2>/dev/null)', want $4 bytes"
	fi
}

vu_wait_serial 'GUEST-RESULT: vfeatures' 60 && vu_check_layout guest-vsock

# 1. guest -> host
if vu_wait_serial 'GUEST-RESULT: g2h ' 600 && wait_file '^received' "$VU_TMP/g2h.out" 10; then
	check_stream guest-vsock-g2h-64mib "$(vu_guest_result g2h)" "$VU_TMP/g2h.out" $BIG
else
	vu_fail guest-vsock-g2h-64mib "${VU_WHY:-the host reader did not finish}"
fi

# 2. host -> guest, once the guest listens (retried: its listen may come a little after)
if vu_wait_serial 'PEER: listening' 120; then
	for _ in $(seq 50); do
		"$PEER" send "uds:$UDS:5001" $BIG 2 > "$VU_TMP/h2g.out" 2> "$VU_TMP/h2g.err" && break
		sleep 0.2
	done
	if vu_wait_serial 'GUEST-RESULT: h2g ' 600; then
		check_stream guest-vsock-h2g-64mib "$(vu_guest_result h2g)" "$VU_TMP/h2g.out" $BIG
	else
		vu_fail guest-vsock-h2g-64mib "$VU_WHY ($(cat "$VU_TMP/h2g.err"))"
	fi
else
	vu_fail guest-vsock-h2g-64mib "$VU_WHY"
fi

# 3. 100 connections at once
if vu_wait_serial 'GUEST-RESULT: many ' 300; then
	read -r _ n ok bytes ms <<< "$(vu_guest_result many)"
	wait_file '^echoed' "$VU_TMP/many.out" 10
	if [ "$n" = 100 ] && [ "$ok" = ok ] && [ "$(cat "$VU_TMP/many.out")" = "echoed 100 $bytes" ]; then
		vu_pass guest-vsock-100-connections
		echo "# 100 connections: $bytes bytes echoed in $ms ms"
	else
		vu_fail guest-vsock-100-connections "guest '$(vu_guest_result many)', host '$(cat "$VU_TMP/many.out")'"
	fi
else
	vu_fail guest-vsock-100-connections "$VU_WHY"
fi

# 4. nobody listens: refused (the back-end answers RST; Linux says ECONNRESET)
if vu_wait_serial 'GUEST-RESULT: refused ' 60 && [[ $(vu_guest_result refused) == refused\ * ]]; then
	vu_pass guest-vsock-refused
	echo "# refused: $(vu_guest_result refused)"
else
	vu_fail guest-vsock-refused "${VU_WHY:-$(vu_guest_result refused)}"
fi

# 5. the host reader closes mid-stream: the guest's writes fail
if vu_wait_serial 'GUEST-RESULT: midstream ' 120 && [[ $(vu_guest_result midstream) == error\ * ]] &&
	[ "$(cat "$VU_TMP/mid.out")" = "closed-after $MIB" ]; then
	vu_pass guest-vsock-host-closes-mid-stream
	echo "# midstream: $(vu_guest_result midstream)"
else
	vu_fail guest-vsock-host-closes-mid-stream "${VU_WHY:-guest '$(vu_guest_result midstream)', host '$(cat "$VU_TMP/mid.out")'}"
fi

# 6. a host reader that stops for 4 s: nothing lost, and the back-end holds only its credit
rss_max=0
if wait_file 'pausing' "$VU_TMP/paused.err" 120; then
	sleep 2
	rss_max=$(awk '/VmRSS/ { print $2 }' "/proc/${VU_BACKEND_PID[vsock0]}/status")
fi
if vu_wait_serial 'GUEST-RESULT: paused ' 300 && wait_file '^received' "$VU_TMP/paused.out" 10; then
	check_stream guest-vsock-paused-reader "$(vu_guest_result paused)" "$VU_TMP/paused.out" $((16 * MIB))
	echo "# back-end RSS while the reader slept: $rss_max KiB"
else
	vu_fail guest-vsock-paused-reader "$VU_WHY"
fi

# 7. the VM stops and resumes while a stream is in flight
stopped=""
if wait_file 'pausing' "$VU_TMP/stopcont.err" 120; then
	vu_qmp stop > /dev/null && stopped=$(vu_qmp query-status)
	sleep 2
	vu_qmp cont > /dev/null
fi
if [[ $stopped != *'"running": false'* ]]; then
	vu_fail guest-vsock-stop-cont "the VM did not stop: '$stopped'"
elif vu_wait_serial 'GUEST-RESULT: stopcont ' 300 && wait_file '^received' "$VU_TMP/stopcont.out" 10; then
	check_stream guest-vsock-stop-cont "$(vu_guest_result stopcont)" "$VU_TMP/stopcont.out" $((32 * MIB))
else
	vu_fail guest-vsock-stop-cont "$VU_WHY"
fi

# 8. a stream each way with both readers paused: a migration is refused, then stop / cont
for _ in $(seq 600); do
	"$PEER" send "uds:$UDS:5002" $((16 * MIB)) 8 > "$VU_TMP/both-h2g.out" 2> "$VU_TMP/both-h2g.err" && break
	sleep 0.2
done &
vu_track $!
if vu_wait_serial 'PEER: pausing' 300 && wait_file 'pausing' "$VU_TMP/both-g2h.err" 120; then
	if vu_migrate "file:$VU_TMP/never.state"; then
		vu_fail guest-vsock-migration-refused "QEMU started migrating a VM with vhost-user-vsock"
	elif [[ $VU_WHY != *non-migratable*vhost-user-vsock* ]]; then
		vu_fail guest-vsock-migration-refused "QEMU refused with '$VU_WHY'"
	elif ! vu_wait_running 5; then
		vu_fail guest-vsock-migration-refused "refused, but $VU_WHY"
	else
		vu_pass guest-vsock-migration-refused
		echo "# QEMU: $VU_WHY"
	fi
	stopped=$(vu_qmp stop > /dev/null && vu_qmp query-status)
	sleep 2
	vu_qmp cont > /dev/null
	[[ $stopped == *'"running": false'* ]] || vu_fail guest-vsock-both-ways-stop-cont "the VM did not stop: '$stopped'"
else
	vu_fail guest-vsock-migration-refused "the readers did not pause: $VU_WHY"
fi
if vu_wait_serial 'GUEST-RESULT: both-g2h ' 300 && wait_file '^received' "$VU_TMP/both-g2h.out" 10 &&
	vu_wait_serial 'GUEST-RESULT: both-h2g ' 300 && wait_file '^sent' "$VU_TMP/both-h2g.out" 10; then
	check_stream guest-vsock-both-ways-g2h "$(vu_guest_result both-g2h)" "$VU_TMP/both-g2h.out" $((16 * MIB))
	check_stream guest-vsock-both-ways-h2g "$(vu_guest_result both-h2g)" "$VU_TMP/both-h2g.out" $((16 * MIB))
else
	vu_fail guest-vsock-both-ways-stop-cont "${VU_WHY:-a host end did not finish}"
fi

# 9. SIGTERM with a connection open
if vu_wait_serial 'PEER: holding' 60 && sleep 0.5 && vu_sigterm_backend vsock0; then
	vu_pass guest-vsock-sigterm
	if wait_file '^received 0 ' "$VU_TMP/hold.out" 5; then
		vu_pass guest-vsock-sigterm-host-end-closed
	else
		vu_fail guest-vsock-sigterm-host-end-closed "host reader: '$(cat "$VU_TMP/hold.out")'"
	fi
else
	vu_fail guest-vsock-sigterm "$VU_WHY"
fi

vu_stop_qemu 5
grep -E 'vsock:' "$VU_TMP/vsock0.log" | sed 's/^/# /'
echo "# t-vsock took $(vu_since "$t_start") s"
