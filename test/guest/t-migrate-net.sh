#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vhost-user-net through a live migration and a save/restore (issue 15: 2, 3).
# A network namespace holds a Linux bridge (the "host", 10.0.9.1, serving files
# over HTTP) and, as bridge ports, the tap uplink of each vhostbox net back-end:
# the source's, the destination's (a new process on a new socket) and, for the
# restore, a third one's. The guest (10.0.9.2, guest_announce=off so that QEMU's
# announce comes to the back-end as SEND_RARP) downloads a 2 MiB file over and
# over and checks it; the host pings the guest ten times a second. And once the
# precopy's first pass is over, the guest starts a "held" download of 4 MiB that
# it does not read: the data waits in its socket, in receive buffers only the
# back-end wrote, until the host says the switch-over is done; then it is read
# and checked (receive copies not marked in the dirty log would show here).
#   1. live: throttled precopy while the guest downloads, then the switch-over:
#      the downloads go on on the destination with the right data, the held one
#      is right, the pings are answered again (the longest run lost is reported
#      and bounded), and the RARP from the guest's MAC reaches the destination
#      switch's other port (its tap, where the host captures it);
#   2. save/restore: the destination VM migrated (throttled, with a held
#      download) to a file, QEMU quit, a new QEMU restoring from it on a third
#      back-end: downloads, the held one and pings work again and that back-end
#      announced the guest too.
set -u
. "$(dirname "$0")/lib.sh"

t_start=$(vu_now)
# shellcheck disable=SC2034 # read by lib.sh
VU_QEMU_TIMEOUT=${VU_QEMU_TIMEOUT_MIGRATE:-400}
# Receive buffers written by the back-end only: no zeroing of new pages (see t-migrate-blk).
VU_KERNEL_ARGS="init_on_alloc=0 ${VU_KERNEL_ARGS:-}"
vu_require_guest guest-migrate-net virtio_pci virtio_net
[ -x "$VHOSTBOX" ] || { vu_fail guest-migrate-net "no binary $VHOSTBOX"; exit 1; }
vu_vhostbox_has net || vu_skip_all guest-migrate-net "$VHOSTBOX was built without net"
vu_qemu_has_device virtio-net-pci || vu_skip_all guest-migrate-net "$QEMU has no virtio-net-pci"
ns=vhostbox-t-mig-$$
vu_netns_add "$ns" || vu_skip_all guest-migrate-net "$VU_WHY"
in_ns() { ip netns exec "$ns" "$@"; }
if ! in_ns ip link add br0 type bridge 2>/dev/null; then
	vu_skip_all guest-migrate-net "cannot create a Linux bridge (no bridge module?)"
fi
in_ns ip addr add 10.0.9.1/24 dev br0
in_ns ip link set br0 up
mkdir -p "$VU_TMP/www"
head -c 2097152 /dev/urandom > "$VU_TMP/www/blob"
blob_md5=$(md5sum < "$VU_TMP/www/blob" | cut -c1-32)
head -c 4194304 /dev/urandom > "$VU_TMP/www/held"
held_md5=$(md5sum < "$VU_TMP/www/held" | cut -c1-32)
set_phase() { printf '%s' "$1" > "$VU_TMP/www/phase.new" && mv "$VU_TMP/www/phase.new" "$VU_TMP/www/phase"; }
set_phase BOOT
in_ns busybox httpd -f -p 10.0.9.1:8080 -h "$VU_TMP/www" > "$VU_TMP/httpd.log" 2>&1 &
vu_track $!
MAC=52:54:00:00:09:02

# Frames whose ethertype is RARP (0x8035), as "RARP SENDER-MAC TARGET-MAC", from interface $1.
cat > "$VU_TMP/capture.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
mac = lambda b: ":".join("%02x" % x for x in b)
while True:
    f = s.recv(2048)
    if len(f) >= 42 and f[12:14] == b"\x80\x35":
        print("RARP", mac(f[22:28]), mac(f[32:38]), flush=True)
EOF

# backend NAME TAP: a net back-end in the namespace whose tap joins the bridge, and a
# capture of what it sends there.
backend() {
	VU_NETNS=$ns vu_start_backend "$1" net --tap="$2" || return 1
	in_ns ip link set "$2" master br0 && in_ns ip link set "$2" up || { VU_WHY="tap $2 not in the bridge"; return 1; }
	in_ns python3 "$VU_TMP/capture.py" "$2" > "$VU_TMP/capture-$1" 2>&1 &
	vu_track $!
}
# shellcheck disable=SC2054 # commas inside QEMU arguments
qemu_args() {
	echo -chardev "socket,id=net0,path=$(vu_socket "$1")" -netdev vhost-user,id=n0,chardev=net0 \
		-device "virtio-net-pci,netdev=n0,mac=$MAC,guest_announce=off"
}

cat > "$VU_TMP/guest.sh" <<'EOF'
wait_for /sys/class/net/eth0 || exit 1
ip link set lo up
ip link set eth0 up
ip addr add 10.0.9.2/24 dev eth0
# Room for the held download in its socket from the start.
echo "4096 8388608 8388608" > /proc/sys/net/ipv4/tcp_rmem
# (busybox 1.35's wget -T crashes: timeout instead)
phase() { timeout 10 wget -q -O - http://10.0.9.1:8080/phase 2>/dev/null; }
# held START END: once the host's phase is START, download the held file without
# reading it until the phase is END.
held() {
	until [ "$(phase)" = "$1" ]; do sleep 0.3; done
	echo "HELD-START $1"
	timeout 300 wget -q -O - http://10.0.9.1:8080/held | {
		until [ "$(phase)" = "$2" ]; do sleep 0.3; done
		echo "GUEST-RESULT: held-$2 $(md5sum | cut -c1-32)"
	}
}
{ held PRECOPY SWITCHED; held SAVING RESTORED; } &
pass=0
while :; do
	pass=$((pass + 1))
	if timeout 30 wget -q -O /tmp/blob http://10.0.9.1:8080/blob; then
		echo "GET $pass $(md5sum < /tmp/blob | cut -c1-32)"
	else
		echo "GET $pass failed"
		sleep 0.5
	fi
	rm -f /tmp/blob
done
EOF

gets() { tr -d '\r' < "$1" | grep -cE '^GET [0-9]+ [0-9a-f]{32}'; }
bad_gets() { tr -d '\r' < "$1" | grep -E '^GET [0-9]+ [0-9a-f]{32}' | grep -vc " $blob_md5\$"; }
replies() { grep -c 'bytes from' "$VU_TMP/ping.log"; }
syncs() { vu_qmp query-migrate | vu_json 'd.get("ram", {}).get("dirty-sync-count", 0)'; }
mig_status() { vu_qmp query-migrate | vu_json 'd.get("status")'; }
# held_precopy PHASE SERIAL: with the migration throttled, once the first pass is over
# (2 dirty-log syncs) the guest starts its held download (phase PHASE); then 2 more
# syncs. Returns 1 with VU_WHY set if the migration stopped being active first.
held_precopy() {
	local end=$(($(vu_now) + 180000000)) want=2 started=0
	while :; do
		st=$(mig_status) n=$(syncs)
		[ "$st" = active ] || { VU_WHY="migration $st after $n syncs, before the held download was in"; return 1; }
		[ "$(vu_now)" -ge "$end" ] && { VU_WHY="timed out after $n syncs"; return 1; }
		if [ "$started" = 0 ] && [ "${n:-0}" -ge "$want" ]; then
			set_phase "$1"
			VU_SERIAL=$2 vu_wait_serial "HELD-START $1" 60 || return 1
			started=1 want=$(($(syncs) + 2))
		elif [ "$started" = 1 ] && [ "${n:-0}" -ge "$want" ]; then
			return 0
		fi
		sleep 0.3
	done
}
held_result() { tr -d '\r' < "$2" | sed -n "s/^GUEST-RESULT: held-$1 //p" | tail -n 1; }
rarp_seen() { grep -q "^RARP $MAC $MAC" "$VU_TMP/capture-$1"; }

# ---- 1. live migration ------------------------------------------------------------------
backend src "vbxs$$" || { vu_fail guest-migrate-net "$VU_WHY"; exit 1; }
# shellcheck disable=SC2046
vu_start_qemu "$VU_TMP/guest.sh" $(qemu_args src)
src_qmp=$VU_QMP src_serial=$VU_SERIAL src_pid=$VU_QEMU_PID
vu_wait_serial 'GUEST-START' 60 || { vu_fail guest-migrate-net "boot: $VU_WHY"; exit 1; }
vu_wait_count gets "$src_serial" 2 120 || { vu_fail guest-migrate-net "downloads before the migration: $VU_WHY"; exit 1; }
in_ns busybox ping -i 0.1 10.0.9.2 > "$VU_TMP/ping.log" 2>&1 &
ping_pid=$!
vu_track $ping_pid

backend dst "vbxd$$" || { vu_fail guest-migrate-net "destination back-end: $VU_WHY"; exit 1; }
# shellcheck disable=SC2046
vu_start_incoming "$VU_TMP/guest.sh" $(qemu_args dst)
dst_qmp=$VU_QMP dst_serial=$VU_SERIAL dst_pid=$VU_QEMU_PID

VU_QMP=$src_qmp VU_SERIAL=$src_serial VU_QEMU_PID=$src_pid
gets_before=$(gets "$src_serial")
t_mig=$(vu_now)
if ! vu_migrate "unix:$VU_TMP/migrate.sock" '{"max-bandwidth": 8000000, "downtime-limit": 100}'; then
	vu_fail guest-migrate-net "migrate: $VU_WHY"
	exit 1
fi
held_precopy PRECOPY "$src_serial" || vu_fail guest-migrate-net-held "$VU_WHY"
syncs=$(syncs)
precopy_gets=$(($(gets "$src_serial") - gets_before))
echo "# precopy: status $st after $(vu_since "$t_mig") s throttled, $syncs dirty-log syncs, $precopy_gets downloads"
vu_qmp migrate-set-parameters '{"max-bandwidth": 1000000000, "downtime-limit": 2000}' > /dev/null
if ! vu_wait_migration 'completed|failed|cancelled' 180 || [ "$VU_MIG_STATUS" != completed ]; then
	vu_fail guest-migrate-net "${VU_WHY:-status $VU_MIG_STATUS}: $(vu_qmp query-migrate 2>&1 | head -c 300)"
	exit 1
fi
replies_at_switch=$(replies)
info=$(vu_qmp query-migrate | vu_json '"%s ms total, %s ms down, %s MB sent, %s dirty syncs" % (d.get("total-time"), d.get("downtime"), d.get("ram", {}).get("transferred", 0) // 1000000, d.get("ram", {}).get("dirty-sync-count"))')
echo "# migration: $info"
[ "$syncs" -ge 4 ] && [ "$precopy_gets" -ge 2 ] && vu_pass guest-migrate-net-precopy-under-io ||
	vu_fail guest-migrate-net-precopy-under-io "precopy ran $syncs dirty-log syncs and $precopy_gets downloads (want 4 and 2)"
VU_QMP=$dst_qmp VU_SERIAL=$dst_serial VU_QEMU_PID=$dst_pid
vu_wait_running 60 || { vu_fail guest-migrate-net "destination: $VU_WHY"; exit 1; }
set_phase SWITCHED
if vu_wait_serial 'GUEST-RESULT: held-SWITCHED ' 90; then
	got=$(held_result SWITCHED "$dst_serial")
	[ "$got" = "$held_md5" ] && vu_pass guest-migrate-net-held ||
		vu_fail guest-migrate-net-held "the download held in the guest's socket over the switch-over has md5 $got, not $held_md5"
else
	vu_fail guest-migrate-net-held "$VU_WHY"
fi

if vu_wait_count gets "$dst_serial" 2 90; then
	bad=$(($(bad_gets "$src_serial") + $(bad_gets "$dst_serial")))
	[ "$bad" = 0 ] && vu_pass guest-migrate-net-downloads ||
		vu_fail guest-migrate-net-downloads "$bad downloads had the wrong data"
	echo "# downloads: $(gets "$src_serial") on the source, $(gets "$dst_serial") on the destination"
else
	vu_fail guest-migrate-net-downloads "on the destination: $VU_WHY"
fi
# Pings answered again after the switch-over; the longest run without a reply is bounded.
end=$(($(vu_now) + 60000000))
while [ $(($(replies) - replies_at_switch)) -lt 10 ] && [ "$(vu_now)" -lt "$end" ]; do sleep 0.2; done
vu_kill "$ping_pid"
# Sent: from the first answered to the last answered (the reply to the last one sent may be on its way).
read -r sent got gap <<< "$(python3 - "$VU_TMP/ping.log" <<'EOF'
import re, sys
seqs = sorted(set(int(x) for x in re.findall(r'seq=(\d+)', open(sys.argv[1]).read())))
gap = max([b - a - 1 for a, b in zip(seqs, seqs[1:])] + [0])
print(seqs[-1] - seqs[0] + 1 if seqs else 0, len(seqs), gap)
EOF
)"
after=$(($(replies) - replies_at_switch))
echo "# pings: $sent sent, $got answered, $((sent - got)) lost; the longest run lost: $gap (0.1 s apart); $after answered after the switch-over"
if [ "$after" -ge 10 ] && [ "$gap" -le 300 ]; then
	vu_pass guest-migrate-net-traffic
else
	vu_fail guest-migrate-net-traffic "$after pings answered after the switch-over (want 10), the longest run lost $gap (at most 300)"
fi
rarp_seen dst && vu_pass guest-migrate-net-rarp ||
	vu_fail guest-migrate-net-rarp "no RARP from $MAC on the destination's tap: $(head -c 200 "$VU_TMP/capture-dst")"
VU_QMP=$src_qmp VU_QEMU_PID=$src_pid vu_stop_qemu 5

# ---- 2. save and restore ----------------------------------------------------------------
if ! vu_migrate "file:$VU_TMP/vm.state" '{"max-bandwidth": 8000000, "downtime-limit": 100}'; then
	vu_fail guest-migrate-net-save "$VU_WHY"
	exit 1
fi
held_precopy SAVING "$dst_serial" || vu_fail guest-migrate-net-save "held download: $VU_WHY"
vu_qmp migrate-set-parameters '{"max-bandwidth": 1000000000, "downtime-limit": 2000}' > /dev/null
if ! vu_wait_migration 'completed|failed|cancelled' 120 || [ "$VU_MIG_STATUS" != completed ]; then
	vu_fail guest-migrate-net-save "${VU_WHY:-status $VU_MIG_STATUS}"
	exit 1
fi
vu_pass guest-migrate-net-save
vu_stop_qemu 5
saved_gets=$(gets "$dst_serial")
set_phase RESTORED
backend rst "vbxr$$" || { vu_fail guest-migrate-net-restore "$VU_WHY"; exit 1; }
# shellcheck disable=SC2046
VU_QEMU_INCOMING="file:$VU_TMP/vm.state" vu_start_qemu "$VU_TMP/guest.sh" $(qemu_args rst)
rst_serial=$VU_SERIAL
if vu_wait_running 60 && vu_wait_count gets "$rst_serial" 2 90 && vu_wait_serial 'GUEST-RESULT: held-RESTORED ' 90; then
	bad=$(bad_gets "$rst_serial")
	got=$(held_result RESTORED "$rst_serial")
	pinged=$(in_ns busybox ping -c 5 -i 0.2 -w 30 10.0.9.2 2>&1 | grep -c 'bytes from')
	if [ "$bad" = 0 ] && [ "$got" = "$held_md5" ] && [ "$pinged" -ge 1 ] && rarp_seen rst; then
		vu_pass guest-migrate-net-restore
	else
		vu_fail guest-migrate-net-restore "$bad of $(gets "$rst_serial") downloads wrong; held download md5 $got (want $held_md5); $pinged of 5 pings answered; RARP on the new tap: $(rarp_seen rst && echo yes || echo no)"
	fi
	echo "# restore: $saved_gets downloads before the save, $(gets "$rst_serial") after the restore"
else
	vu_fail guest-migrate-net-restore "$VU_WHY"
fi
vu_stop_qemu 5

vu_end_backends guest-migrate-net src dst rst
echo "# t-migrate-net took $(vu_since "$t_start") s"
