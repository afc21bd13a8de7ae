#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vhost-user-scsi in a real guest (QEMU vhost-user-scsi-pci, 2 request queues,
# reconnecting chardev) served by `vhostbox scsi` with three LUNs: a 96 MiB disk with
# a serial, an 8 MiB read-only "rotating" one, a 32 MiB one with 4096-byte blocks.
#   1. the guest sees each LUN with its size, block size, serial, read-only and
#      rotational flags, and discard (UNMAP) on the writable ones;
#   2. sg3_utils in the guest (sg_inq, sg_vpd, sg_readcap, sg_unmap, sg_sync) report
#      what the LUNs are, and sg_unmap makes a hole in the image;
#   3. a random pattern written with O_DIRECT on LUN 0 and LUN 2, read back and
#      compared in the guest and on the host;
#   4. the read-only LUN refuses a WRITE(10) sent around the kernel with DATA PROTECT,
#      WRITE PROTECTED;
#   5. vfat made, filled, emptied and fstrim'd: the freed clusters are holes in the image;
#   6. crash safety: numbered 4 KiB blocks written while the back-end is SIGKILLed and
#      restarted three times; every block the guest saw acknowledged is on disk;
#   7. SIGTERM during those writes: exit 0 within 1 s, nothing acknowledged lost.
# VU_PACKED=1 (t-scsi-packed.sh): the same with packed virtqueues.
set -u
. "$(dirname "$0")/lib.sh"

vu_require_guest guest-scsi virtio_pci virtio_scsi sd_mod sg vfat nls_cp437 nls_ascii
[ -x "$VHOSTBOX" ] || { vu_fail guest-scsi "no binary $VHOSTBOX"; exit 1; }
vu_vhostbox_has scsi || vu_skip_all guest-scsi "$VHOSTBOX was built without scsi"
vu_qemu_has_device vhost-user-scsi-pci || vu_skip_all guest-scsi "$QEMU has no vhost-user-scsi-pci"
SG_TOOLS="sg_inq sg_vpd sg_readcap sg_unmap sg_sync sg_raw"
for t in $SG_TOOLS; do
	command -v "$t" >/dev/null || vu_skip_all guest-scsi "no $t (install sg3-utils)"
done

img0=$VU_TMP/lun0.img img1=$VU_TMP/lun1.img img2=$VU_TMP/lun2.img
truncate -s 96M "$img0"
truncate -s 8M "$img1"
truncate -s 32M "$img2"
printf 'read-only-lun-data' | dd of="$img1" conv=notrunc 2>/dev/null
scsi_args=(--num-queues=2 --lun="$img0,serial=vhostbox-lun0" --lun="$img1,ro,rotational,serial=vhostbox-ro"
	   --lun="$img2,lbs=4096")
vu_start_backend scsi0 scsi "${scsi_args[@]}" || { vu_fail guest-scsi "$VU_WHY"; exit 1; }

# The guest gets sg3_utils with the libraries they load, and a random pattern.
root=$VU_TMP/extra
mkdir -p "$root/usr/bin"
head -c 4194304 /dev/urandom > "$root/pattern"
pattern_md5=$(md5sum < "$root/pattern" | cut -c1-32)
for t in $SG_TOOLS; do
	cp "$(command -v "$t")" "$root/usr/bin/"
	for lib in $(ldd "$(command -v "$t")" | grep -o '/[^ ]*'); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
done
(cd "$root" && find . -mindepth 1 | cpio -o -H newc -R 0:0 --quiet) > "$VU_TMP/extra.cpio"
cat "$VU_INITRAMFS" "$VU_TMP/extra.cpio" > "$VU_TMP/base-extra.cpio"
VU_INITRAMFS=$VU_TMP/base-extra.cpio

CRASH_FIRST=20480   # 4 KiB block numbers on LUN 0: from 80 MiB on
CRASH_BLOCKS=1500
UNMAP_LBA=147456    # 72 MiB in 512-byte blocks: sg_unmap's range, 2 MiB
{
	echo "first=$CRASH_FIRST count=$CRASH_BLOCKS unmap_lba=$UNMAP_LBA"
	cat <<'EOF'
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu
sg_of() { basename /sys/block/$1/device/scsi_generic/*; }
d0=$(scsi_disk 0) && d1=$(scsi_disk 1) && d2=$(scsi_disk 2) || { echo "GUEST-RESULT: luns missing"; exit 1; }
echo "GUEST-RESULT: luns $(ls -d /sys/bus/scsi/devices/*:0:0:* | wc -l)"
echo "GUEST-RESULT: queues $(ls -d /sys/block/$d0/mq/* | wc -l)"
guest_features
for i in 0 1 2; do
	eval d=\$d$i
	q=/sys/block/$d/queue
	echo "GUEST-RESULT: lun$i $(($(cat /sys/block/$d/size) * 512)) $(cat $q/logical_block_size) ro=$(cat /sys/block/$d/ro) rot=$(cat $q/rotational) discard=$(cat $q/discard_max_bytes)"
done
# 2. sg3_utils
echo "GUEST-RESULT: inq $(sg_inq /dev/$d0 | grep -E 'Vendor identification|Product identification' | tr -s ' ' | tr '\n' ' ')"
echo "GUEST-RESULT: serial0 $(sg_vpd -p sn /dev/$d0 | sed -n 's/.*Unit serial number: *//p')"
echo "GUEST-RESULT: serial1 $(sg_vpd -p sn /dev/$d1 | sed -n 's/.*Unit serial number: *//p')"
echo "GUEST-RESULT: lbp $(sg_vpd -p lbpv /dev/$d0 | grep -cE 'Unmap command supported \(LBPU\): 1|Write same \(16\) with unmap bit supported \(LBPWS\): 1')"
echo "GUEST-RESULT: bl $(sg_vpd -p bl /dev/$d0 | sed -n 's/.*Maximum unmap LBA count: *//p')"
echo "GUEST-RESULT: readcap2 $(sg_readcap -l /dev/$d2 | grep -E 'Logical block length|Last LBA' | tr -s ' ' | tr '\n' ' ')"
echo "GUEST-RESULT: readcap1 $(sg_readcap /dev/$d1 | grep -E 'Last LBA|Logical block length' | tr -s ' ' | tr '\n' ' ')"
# sg_unmap on a written range of LUN 0 (the host checks the hole)
dd if=/pattern of=/dev/$d0 bs=1M seek=72 count=2 oflag=direct 2>/dev/null
sg_unmap --force --lba=$unmap_lba --num=4096 /dev/$d0 && echo "GUEST-RESULT: unmap ok" || echo "GUEST-RESULT: unmap failed"
sg_sync /dev/$d0 && echo "GUEST-RESULT: sync ok" || echo "GUEST-RESULT: sync failed"
# 3. pattern on LUN 0 (at 40 MiB) and LUN 2 (at 8 MiB)
ok=0
for t in "$d0 40" "$d2 8"; do
	set -- $t
	dd if=/pattern of=/dev/$1 bs=1M seek=$2 oflag=direct 2>/dev/null &&
	dd if=/dev/$1 of=/tmp/back bs=1M skip=$2 count=4 iflag=direct 2>/dev/null &&
	[ "$(md5sum < /tmp/back | cut -c1-32)" = "$(md5sum < /pattern | cut -c1-32)" ] && ok=$((ok + 1))
done
echo "GUEST-RESULT: pattern $ok"
# 4. the read-only LUN: the kernel refuses; a WRITE(10) through sg gets the device's answer
dd if=/pattern of=/dev/$d1 bs=4096 count=1 oflag=direct 2>/dev/null && echo "GUEST-RESULT: ro-kernel written" ||
	echo "GUEST-RESULT: ro-kernel refused"
head -c 512 /dev/zero > /tmp/zero
echo "GUEST-RESULT: ro-sense $(sg_raw -s 512 -i /tmp/zero /dev/$(sg_of $d1) 2a 00 00 00 00 00 00 00 01 00 2>&1 | grep -ciE 'write protected')"
# 5. vfat on the first 32 MiB of LUN 0, filled, emptied, trimmed
mkdir -p /mnt
if mkdosfs /dev/$d0 32768 >/dev/null && mount -t vfat /dev/$d0 /mnt; then
	for i in 1 2 3 4 5 6; do cat /pattern > /mnt/f$i; done
	sync
	echo "GUEST-RESULT: fs-filled"
	sleep 3 # the host looks at the image meanwhile
	rm /mnt/f*
	sync
	echo "GUEST-RESULT: fstrim $(fstrim -v /mnt 2>&1 | tr '\n' ' ')"
	umount /mnt
else
	echo "GUEST-RESULT: fs-failed"
fi
echo "GUEST-RESULT: crash-start"
# 6. numbered blocks, each acknowledged only after dd (O_DIRECT) returned
numbered_writes /dev/$d0 $first $count
echo "GUEST-RESULT: crash-done"
EOF
} > "$VU_TMP/guest.sh"

vu_start_qemu "$VU_TMP/guest.sh" \
	-chardev "$(vu_chardev scsi0),reconnect-ms=200" \
	-device "vhost-user-scsi-pci,chardev=scsi0,num_queues=2$(vu_packed_opt)" -smp 2
vu_wait_serial 'GUEST-START' 30 || { vu_fail guest-scsi "boot: $VU_WHY"; exit 1; }

# allocated IMG OFF LEN: bytes of [OFF, OFF+LEN) the image holds data for (not holes)
allocated() {
	python3 - "$@" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
off, end, n = int(sys.argv[2]), int(sys.argv[2]) + int(sys.argv[3]), 0
while off < end:
    try:
        off = os.lseek(fd, off, os.SEEK_DATA)
    except OSError:
        break
    if off >= end:
        break
    hole = min(os.lseek(fd, off, os.SEEK_HOLE), end)
    n += hole - off
    off = hole
print(n)
EOF
}

# ---- 1. what the guest sees ---------------------------------------------------------------
if vu_wait_serial 'GUEST-RESULT: lun2 ' 90; then
	luns=$(vu_guest_result luns)
	[ "$luns" = 3 ] && vu_pass guest-scsi-three-luns || vu_fail guest-scsi-three-luns "guest sees $luns LUNs"
	queues=$(vu_guest_result queues)
	[ "$queues" = 2 ] && vu_pass guest-scsi-two-queues || vu_fail guest-scsi-two-queues "guest sees $queues queues"
	vu_check_layout guest-scsi
	want0="100663296 512 ro=0 rot=0 discard=" want1="8388608 512 ro=1 rot=1 discard=" want2="33554432 4096 ro=0 rot=0 discard="
	for i in 0 1 2; do
		got=$(vu_guest_result lun$i)
		eval want=\$want$i
		case "$got" in
		"$want"*) vu_pass guest-scsi-lun$i-geometry ;;
		*) vu_fail guest-scsi-lun$i-geometry "guest sees '$got', want '$want...'" ;;
		esac
	done
	d0=$(vu_guest_result lun0) d0=${d0##*discard=}
	[ "${d0:-0}" -gt 0 ] && vu_pass guest-scsi-discard || vu_fail guest-scsi-discard "discard_max_bytes ${d0:-?}"
else
	vu_fail guest-scsi-luns "$VU_WHY"
fi

# ---- 2. sg3_utils ------------------------------------------------------------------------
if vu_wait_serial 'GUEST-RESULT: sync ' 90; then
	inq=$(vu_guest_result inq)
	[[ $inq == *VHOSTBOX*"VIRTUAL DISK"* ]] && vu_pass guest-scsi-sg-inq || vu_fail guest-scsi-sg-inq "'$inq'"
	s0=$(vu_guest_result serial0) s1=$(vu_guest_result serial1)
	[ "$s0" = vhostbox-lun0 ] && [ "$s1" = vhostbox-ro ] && vu_pass guest-scsi-sg-vpd-serial ||
		vu_fail guest-scsi-sg-vpd-serial "'$s0' '$s1'"
	lbp=$(vu_guest_result lbp) bl=$(vu_guest_result bl)
	[ "$lbp" = 2 ] && [ "$bl" = 4194304 ] && vu_pass guest-scsi-sg-vpd-provisioning ||
		vu_fail guest-scsi-sg-vpd-provisioning "LBPU/LBPWS lines $lbp, max unmap LBA count '$bl'"
	rc2=$(vu_guest_result readcap2) rc1=$(vu_guest_result readcap1)
	[[ $rc2 == *"Last LBA=8191"*"length=4096"* ]] && [[ $rc1 == *"Last LBA=16383"*"length=512"* ]] &&
		vu_pass guest-scsi-sg-readcap || vu_fail guest-scsi-sg-readcap "LUN 2: '$rc2'; LUN 1: '$rc1'"
	u=$(vu_guest_result unmap) a=$(allocated "$img0" $((72 << 20)) $((2 << 20)))
	[ "$u" = ok ] && [ "$a" = 0 ] && vu_pass guest-scsi-sg-unmap-hole ||
		vu_fail guest-scsi-sg-unmap-hole "sg_unmap $u; $a bytes still allocated"
	[ "$(vu_guest_result sync)" = ok ] && vu_pass guest-scsi-sg-sync || vu_fail guest-scsi-sg-sync "failed"
else
	vu_fail guest-scsi-sg3-utils "$VU_WHY"
fi

# ---- 3. pattern ----------------------------------------------------------------------------
if vu_wait_serial 'GUEST-RESULT: pattern ' 90; then
	ok=$(vu_guest_result pattern) host_ok=0
	[ "$(dd if="$img0" bs=1M skip=40 count=4 2>/dev/null | md5sum | cut -c1-32)" = "$pattern_md5" ] &&
		host_ok=$((host_ok + 1))
	[ "$(dd if="$img2" bs=1M skip=8 count=4 2>/dev/null | md5sum | cut -c1-32)" = "$pattern_md5" ] &&
		host_ok=$((host_ok + 1))
	[ "$ok" = 2 ] && [ "$host_ok" = 2 ] && vu_pass guest-scsi-pattern ||
		vu_fail guest-scsi-pattern "guest matched $ok/2, host images $host_ok/2"
else
	vu_fail guest-scsi-pattern "$VU_WHY"
fi

# ---- 4. read-only ---------------------------------------------------------------------------
if vu_wait_serial 'GUEST-RESULT: ro-sense ' 60; then
	k=$(vu_guest_result ro-kernel) s=$(vu_guest_result ro-sense)
	[ "$k" = refused ] && [ "${s:-0}" -ge 1 ] && [ "$(head -c 18 "$img1")" = read-only-lun-data ] &&
		vu_pass guest-scsi-read-only || vu_fail guest-scsi-read-only "kernel: $k; 'write protected' lines: $s"
else
	vu_fail guest-scsi-read-only "$VU_WHY"
fi

# ---- 5. file system and fstrim --------------------------------------------------------------
if vu_wait_serial 'GUEST-RESULT: fs-' 120; then
	full=$(allocated "$img0" 0 $((32 << 20)))
	if vu_wait_serial 'GUEST-RESULT: fstrim ' 90; then
		trimmed=$(allocated "$img0" 0 $((32 << 20)))
		echo "# vfat: $full bytes allocated when full, $trimmed after rm + fstrim ($(vu_guest_result fstrim))"
		[ "$full" -ge $((20 << 20)) ] && [ "$trimmed" -lt $((4 << 20)) ] && vu_pass guest-scsi-fstrim-holes ||
			vu_fail guest-scsi-fstrim-holes "$full bytes allocated when full, $trimmed after fstrim"
	else
		vu_fail guest-scsi-fstrim-holes "$VU_WHY"
	fi
else
	vu_fail guest-scsi-fstrim-holes "$VU_WHY"
fi

# ---- 6., 7. SIGKILL and restart, then SIGTERM, while the guest writes ----------------------
vu_wait_serial 'GUEST-RESULT: crash-start' 60 || { vu_fail guest-scsi-crash "$VU_WHY"; exit 1; }
vu_crash_tests guest-scsi scsi0 "$img0" scsi "${scsi_args[@]}"
vu_stop_qemu 5
