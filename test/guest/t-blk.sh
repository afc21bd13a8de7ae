#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vhost-user-blk in a real guest (QEMU vhost-user-blk-pci, 2 queues, reconnecting
# chardev) served by `vhostbox blk` with a queue on each of two threads:
#   1. an 8 MiB random pattern written with O_DIRECT at three offsets, read back and
#      compared in the guest, and compared with the image on the host;
#   2. a vfat file system made, written and synced by the guest, seen on the host;
#   3. crash safety: the guest writes numbered 4 KiB blocks while the back-end is
#      SIGKILLed and restarted three times (QEMU reconnects, inflight requests are
#      resubmitted); every block the guest saw acknowledged is on disk;
#   4. SIGTERM during those writes: exit 0 within 1 s, nothing acknowledged lost.
# VU_PACKED=1 (t-blk-packed.sh): the same with packed virtqueues (the restarts then
# resubmit from the packed inflight layout).
set -u
. "$(dirname "$0")/lib.sh"

t_start=$(vu_now)
vu_require_guest guest-blk virtio_pci virtio_blk vfat nls_cp437 nls_ascii
[ -x "$VHOSTBOX" ] || { vu_fail guest-blk "no binary $VHOSTBOX"; exit 1; }
vu_vhostbox_has blk || vu_skip_all guest-blk "$VHOSTBOX was built without blk"
vu_qemu_has_device vhost-user-blk-pci || vu_skip_all guest-blk "$QEMU has no vhost-user-blk-pci"

img=$VU_TMP/disk.img
truncate -s 96M "$img"
blk_args=(--blk-file="$img" --num-queues=2 --threads=2 --serial=vhostbox-t-blk)
vu_start_backend blk0 blk "${blk_args[@]}" || { vu_fail guest-blk "$VU_WHY"; exit 1; }

# The same random bytes on both sides: the guest gets them in the initramfs script.
head -c 8388608 /dev/urandom > "$VU_TMP/pattern"
pattern_md5=$(md5sum < "$VU_TMP/pattern" | cut -c1-32)
marker="vhostbox-fs-marker-$RANDOM$RANDOM$RANDOM"
CRASH_FIRST=16384   # 4 KiB block numbers: the crash test writes from 64 MiB on
CRASH_BLOCKS=1500

{
	echo "marker=$marker first=$CRASH_FIRST count=$CRASH_BLOCKS"
	cat <<'EOF'
wait_for /dev/vda || exit 1
guest_features
echo "GUEST-RESULT: queues $(ls /sys/block/vda/mq | wc -l)"
echo "GUEST-RESULT: serial $(cat /sys/block/vda/serial)"
# 1. the pattern (/pattern, from the host) at 32, 40 and 52 MiB; the file system
#    takes the first 16 MiB
ok=0
for off in 32 40 52; do
	dd if=/pattern of=/dev/vda bs=1M seek=$off oflag=direct 2>/dev/null &&
	dd if=/dev/vda of=/tmp/back bs=1M skip=$off count=8 iflag=direct 2>/dev/null &&
	[ "$(md5sum < /tmp/back | cut -c1-32)" = "$(md5sum < /pattern | cut -c1-32)" ] &&
		ok=$((ok + 1))
done
echo "GUEST-RESULT: pattern $ok"
# 2. vfat on the first 16 MiB
mkdir -p /mnt
if mkdosfs /dev/vda 16384 && mount -t vfat /dev/vda /mnt; then
	for i in 1 2 3 4 5 6 7 8; do echo "$marker"; done > /mnt/hello.txt
	sync /mnt/hello.txt; umount /mnt
	echo "GUEST-RESULT: fs done"
else
	echo "GUEST-RESULT: fs failed"
fi
echo "GUEST-RESULT: crash-start"
# 3./4. numbered blocks, each acknowledged only after dd (O_DIRECT) returned
numbered_writes /dev/vda $first $count
echo "GUEST-RESULT: crash-done"
EOF
} > "$VU_TMP/guest.sh"
# The pattern goes to the guest as /pattern, in an archive appended to the base one.
(cd "$VU_TMP" && echo pattern | cpio -o -H newc -R 0:0 --quiet) > "$VU_TMP/pattern.cpio"
cat "$VU_INITRAMFS" "$VU_TMP/pattern.cpio" > "$VU_TMP/base-with-pattern.cpio"
VU_INITRAMFS=$VU_TMP/base-with-pattern.cpio

vu_start_qemu "$VU_TMP/guest.sh" \
	-chardev "$(vu_chardev blk0),reconnect-ms=200" \
	-device "vhost-user-blk-pci,chardev=blk0,num-queues=2$(vu_packed_opt)" -smp 2
vu_wait_serial 'GUEST-START' 30 || { vu_fail guest-blk "boot: $VU_WHY"; exit 1; }

# ---- 1. pattern -------------------------------------------------------------------------
if vu_wait_serial 'GUEST-RESULT: pattern ' 60; then
	queues=$(vu_guest_result queues)
	vu_check_layout guest-blk
	[ "$queues" = 2 ] && vu_pass guest-blk-two-queues || vu_fail guest-blk-two-queues "guest sees $queues queues"
	serial=$(vu_guest_result serial)
	[ "$serial" = vhostbox-t-blk ] && vu_pass guest-blk-serial || vu_fail guest-blk-serial "guest sees serial '$serial'"
	ok=$(vu_guest_result pattern)
	host_ok=0
	for off in 32 40 52; do
		[ "$(dd if="$img" bs=1M skip=$off count=8 2>/dev/null | md5sum | cut -c1-32)" = "$pattern_md5" ] &&
			host_ok=$((host_ok + 1))
	done
	if [ "$ok" = 3 ] && [ "$host_ok" = 3 ]; then
		vu_pass guest-blk-pattern
	else
		vu_fail guest-blk-pattern "guest matched $ok/3, host image matched $host_ok/3"
	fi
else
	vu_fail guest-blk-pattern "$VU_WHY"
fi

# ---- 2. file system ---------------------------------------------------------------------
if vu_wait_serial 'GUEST-RESULT: fs ' 60; then
	fs=$(vu_guest_result fs)
	found=$(head -c 16M "$img" | grep -ac "$marker")
	if [ "$fs" = done ] && [ "$found" -ge 8 ]; then
		vu_pass guest-blk-vfat
	else
		vu_fail guest-blk-vfat "guest: fs $fs; host finds the marker $found times (want 8)"
	fi
else
	vu_fail guest-blk-vfat "$VU_WHY"
fi

# ---- 3., 4. SIGKILL and restart, then SIGTERM, while the guest writes -----------------
vu_wait_serial 'GUEST-RESULT: crash-start' 30 || { vu_fail guest-blk-crash "$VU_WHY"; exit 1; }
vu_crash_tests guest-blk blk0 "$img" blk "${blk_args[@]}"

vu_stop_qemu 5
echo "# t-blk took $(vu_since "$t_start") s"
