#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vhost-user-scsi through a live migration with --lock=start (issue 21), a short
# variant of t-migrate-blk.sh: two LUNs, a written one and a read-only one (its lock
# shared, both locked as one set). The guest writes numbered 4 KiB blocks to LUN 0
# with O_DIRECT the whole time, each acknowledged on the console after its write
# completed. A second back-end (new process, new socket) starts on the same images
# while the source holds their lock, then the destination QEMU with -incoming; at
# the switch-over the source's back-end unlocks the images and the destination's
# locks them; the guest goes on writing there, and every acknowledged block is on
# the image afterwards. A back-end with the default --lock=open is refused while a
# device holds the lock.
# VU_PACKED=1 (t-migrate-scsi-packed.sh): the same with packed virtqueues.
set -u
. "$(dirname "$0")/lib.sh"

t_start=$(vu_now)
# shellcheck disable=SC2034 # read by lib.sh
VU_QEMU_TIMEOUT=${VU_QEMU_TIMEOUT_MIGRATE:-300}
vu_require_guest guest-migrate-scsi virtio_pci virtio_scsi sd_mod
[ -x "$VHOSTBOX" ] || { vu_fail guest-migrate-scsi "no binary $VHOSTBOX"; exit 1; }
vu_vhostbox_has scsi || vu_skip_all guest-migrate-scsi "$VHOSTBOX was built without scsi"
vu_qemu_has_device vhost-user-scsi-pci || vu_skip_all guest-migrate-scsi "$QEMU has no vhost-user-scsi-pci"

img0=$VU_TMP/lun0.img img1=$VU_TMP/lun1.img
truncate -s 64M "$img0"
truncate -s 8M "$img1"
WFIRST=1024 WCOUNT=8192  # 4 KiB block numbers on LUN 0: from 4 MiB on
scsi_args=(--lun="$img0" --lun="$img1,ro" --lock=start)
# shellcheck disable=SC2054 # commas inside QEMU arguments
qemu_args() { echo -chardev "socket,id=scsi0,path=$(vu_socket "$1")" -device "vhost-user-scsi-pci,chardev=scsi0,num_queues=1$(vu_packed_opt)"; }

{
	echo "wfirst=$WFIRST wcount=$WCOUNT"
	cat <<'EOF'
d0=$(scsi_disk 0) && d1=$(scsi_disk 1) || { echo "GUEST-RESULT: luns missing"; exit 1; }
echo "GUEST-RESULT: luns $(ls -d /sys/bus/scsi/devices/*:0:0:* | wc -l) ro $(cat /sys/block/$d1/ro)"
guest_features
numbered_writes /dev/$d0 $wfirst $wcount
EOF
} > "$VU_TMP/guest.sh"

vu_start_backend src scsi "${scsi_args[@]}" || { vu_fail guest-migrate-scsi "$VU_WHY"; exit 1; }
# shellcheck disable=SC2046
vu_start_source guest-migrate-scsi 'GUEST-RESULT: luns' $(qemu_args src)
[ "$(vu_guest_result luns)" = "2 ro 1" ] && vu_pass guest-migrate-scsi-luns ||
	vu_fail guest-migrate-scsi-luns "the guest sees '$(vu_guest_result luns)', want '2 ro 1'"
vu_check_layout guest-migrate-scsi

# The default lock refuses a second back-end while a device holds the written image.
vu_lock_refused guest-migrate-scsi scsi --lun="$img0"

# The destination's back-end: a new process on the same images, the source still serving.
if ! vu_start_backend dst scsi "${scsi_args[@]}"; then
	vu_fail guest-migrate-scsi-handover "the destination back-end did not start beside the source: $VU_WHY"
	exit 1
fi
# shellcheck disable=SC2046
vu_start_incoming "$VU_TMP/guest.sh" $(qemu_args dst)
dst_qmp=$VU_QMP dst_serial=$VU_SERIAL dst_pid=$VU_QEMU_PID

VU_QMP=$src_qmp VU_SERIAL=$src_serial VU_QEMU_PID=$src_pid
if ! vu_migrate "unix:$VU_TMP/migrate.sock" || ! vu_wait_migration 'completed|failed|cancelled' 180 ||
   [ "$VU_MIG_STATUS" != completed ]; then
	vu_fail guest-migrate-scsi "migrate: ${VU_WHY:-status $VU_MIG_STATUS}: $(vu_qmp query-migrate 2>&1 | head -c 300)"
	exit 1
fi
src_acks=$(vu_acked_count "$src_serial")
info=$(vu_qmp query-migrate | vu_json '"%s ms total, %s ms down, %s MB sent" % (d.get("total-time"), d.get("downtime"), d.get("ram", {}).get("transferred", 0) // 1000000)')
echo "# migration: $info"
vu_stop_qemu 5
VU_QMP=$dst_qmp VU_SERIAL=$dst_serial VU_QEMU_PID=$dst_pid
if vu_wait_running 60 && vu_wait_count vu_acked_count "$dst_serial" 20 90; then
	vu_pass guest-migrate-scsi-destination-writes
else
	vu_fail guest-migrate-scsi-destination-writes "$VU_WHY"
fi
# Both images unlocked by the source, both locked by the destination.
if [ "$(grep -c 'unlocked (the front-end stopped' "$VU_TMP/src.log")" -ge 2 ] &&
   [ "$(grep -c 'locked (the front-end started' "$VU_TMP/dst.log")" -ge 2 ]; then
	vu_pass guest-migrate-scsi-handover
else
	vu_fail guest-migrate-scsi-handover "source: '$(grep unlocked "$VU_TMP/src.log" | tr '\n' ' ')', destination: '$(grep 'locked (' "$VU_TMP/dst.log" | tr '\n' ' ')'"
fi
vu_stop_qemu 5
vu_migrated_writes guest-migrate-scsi "$img0" "$src_acks" "$dst_serial"

vu_end_backends guest-migrate-scsi src dst
echo "# t-migrate-scsi took $(vu_since "$t_start") s"
