#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# /init of the guest initramfs that lib.sh builds (busybox sh, PID 1).
# Mounts the pseudo file systems, loads the modules listed in /lib/modules/load.list
# (already in dependency order), runs the test's /guest.sh with its output on the
# serial console between the markers GUEST-START and GUEST-DONE, then powers off.
# /guest.sh is sourced in a subshell so it can use wait_for below.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t devtmpfs dev /dev
# The initramfs has no /dev/console node (it is built without root), so the kernel
# started us without stdio: take the console now that devtmpfs provides it.
exec 0</dev/console 1>/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp

while read -r m; do
	insmod "/lib/modules/$m" || echo "GUEST-NOTE: insmod $m failed"
done < /lib/modules/load.list

# wait_for PATH [TENTHS]: wait until PATH exists (default 5 s); drivers bind
# asynchronously after insmod returns.
wait_for() {
	n=0
	while [ ! -e "$1" ]; do
		[ "$n" -ge "${2:-50}" ] && { echo "GUEST-NOTE: $1 did not appear"; return 1; }
		sleep 0.1
		n=$((n + 1))
	done
}

# guest_features: one line with the feature bits every virtio device negotiated.
guest_features() {
	f=""
	for d in /sys/bus/virtio/devices/*; do [ -r "$d/features" ] && f="$f $(cat "$d/features")"; done
	echo "GUEST-RESULT: vfeatures$f"
}

# numbered_writes DEV FIRST COUNT: 4 KiB blocks FIRST.. of DEV, block n starting with
# BLOCK%08d, each written with O_DIRECT and acknowledged ("ACK n") only after dd
# returned; the host checks the acknowledged ones (lib.sh: vu_acked_on_disk).
numbered_writes() {
	i=0
	while [ $i -lt $3 ]; do
		n=$(($2 + i))
		printf 'BLOCK%08d' $n | dd of=$1 bs=4096 seek=$n conv=sync oflag=direct 2>/dev/null &&
			echo "ACK $n"
		i=$((i + 1))
	done
}

# scsi_disk LUN: the sd name of LUN (target 0) once it appeared (up to 10 s).
scsi_disk() {
	n=0
	while [ $n -lt 100 ]; do
		for d in /sys/bus/scsi/devices/*:0:0:$1/block/*; do
			[ -e "$d" ] && { basename "$d"; return 0; }
		done
		sleep 0.1
		n=$((n + 1))
	done
	return 1
}

# ping_peer ADDR: "GUEST-RESULT: ping ok" once 3 pings of ADDR are answered, trying
# for a while (the peer guest may still be booting), else "ping failed" and ping's output.
ping_peer() {
	n=0
	until ping -c 3 -W 3 "$1" > /tmp/ping.out 2>&1; do
		n=$((n + 1))
		[ $n -ge 20 ] && break
		sleep 1
	done
	[ $n -lt 20 ] && echo "GUEST-RESULT: ping ok" || { echo "GUEST-RESULT: ping failed"; cat /tmp/ping.out; }
}

echo "GUEST-START"
if [ -f /guest.sh ]; then
	(. /guest.sh)
	rc=$?
else
	echo "GUEST-NOTE: no /guest.sh in the initramfs"
	rc=127
fi
echo "GUEST-DONE rc=$rc"
sync
poweroff -f
