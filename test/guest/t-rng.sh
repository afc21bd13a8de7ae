#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vhost-user-rng in a real guest: QEMU's vhost-user-rng-pci connected to
# `vhostbox rng`; the guest reads 1 MiB from /dev/hwrng and checks it looks random.
# A migration is refused with QEMU's message (it marks vhost-user-rng unmigratable)
# and the guest goes on reading. Then, with the guest still reading, SIGTERM must end
# the back-end with status 0 within 1 s.
# VU_RNG_BUILTIN=1 uses QEMU's own virtio-rng-pci instead (checks the harness alone).
# The ring layout is packed: QEMU's vhost-user-rng-pci takes the back-end's features
# as offered (see vu_check_layout); QEMU's own virtio-rng-pci (VU_RNG_BUILTIN) splits.
set -u
. "$(dirname "$0")/lib.sh"

t_start=$(vu_now)
vu_require_guest guest-rng virtio_pci virtio_rng

if [ "${VU_RNG_BUILTIN:-0}" = 1 ]; then
	dev=(-device virtio-rng-pci)
else
	[ -x "$VHOSTBOX" ] || { vu_fail guest-rng "no binary $VHOSTBOX"; exit 1; }
	vu_vhostbox_has rng || vu_skip_all guest-rng "$VHOSTBOX was built without rng"
	vu_qemu_has_device vhost-user-rng-pci || vu_skip_all guest-rng "$QEMU has no vhost-user-rng-pci"
	vu_start_backend rng0 rng || { vu_fail guest-rng-read "$VU_WHY"; exit 1; }
	# shellcheck disable=SC2054 # the commas are inside one QEMU argument
	dev=(-chardev "$(vu_chardev rng0)" -device vhost-user-rng-pci,chardev=rng0)
fi

cat > "$VU_TMP/guest.sh" <<'EOF'
wait_for /dev/hwrng || exit 1
guest_features
echo "GUEST-RESULT: rng-current $(cat /sys/class/misc/hw_random/rng_current)"
t0=$(cut -d' ' -f1 /proc/uptime)
head -c 1048576 /dev/hwrng > /tmp/r
t1=$(cut -d' ' -f1 /proc/uptime)
size=$(wc -c < /tmp/r)
a=$(head -c 524288 /tmp/r | md5sum | cut -c1-32)
b=$(tail -c 524288 /tmp/r | md5sum | cut -c1-32)
# Distinct byte values in the first 4 KiB: random data has (nearly) all 256.
distinct=$(head -c 4096 /tmp/r | od -An -v -tx1 | tr -s ' ' '\n' | grep . | sort -u | wc -l)
# Random data does not compress; anything patterned over the whole MiB does.
packed=$(gzip -c /tmp/r | wc -c)
echo "GUEST-RESULT: rng $size $a $b $distinct $packed $t0 $t1"
# Keep requests in flight while the host stops the back-end.
n=0
while :; do
	head -c 4096 /dev/hwrng > /dev/null
	n=$((n + 1))
	[ $((n % 32)) = 0 ] && echo "RNG-LOOP $n"
done
EOF

t_boot=$(vu_now)
vu_start_qemu "$VU_TMP/guest.sh" "${dev[@]}"
if ! vu_wait_serial 'GUEST-START' 30; then
	vu_fail guest-rng-read "boot: $VU_WHY"
	exit 1
fi
echo "# guest booted in $(vu_since "$t_boot") s"

if vu_wait_serial 'GUEST-RESULT: rng ' 30; then
	read -r size a b distinct packed t0 t1 <<< "$(vu_guest_result rng)"
	current=$(vu_guest_result rng-current)
	if [ "${VU_RNG_BUILTIN:-0}" = 1 ]; then vu_check_layout guest-rng; else vu_check_layout guest-rng 1 packed; fi
	echo "# guest read $size bytes in $(awk "BEGIN { print $t1 - $t0 }") s; md5 $a / $b;" \
		"$distinct distinct bytes in 4 KiB; gzip -> $packed bytes; rng_current=$current"
	if [ "$current" != virtio_rng.0 ]; then
		vu_fail guest-rng-read "the guest's hwrng is '$current', not virtio_rng.0"
	elif [ "$size" != 1048576 ]; then
		vu_fail guest-rng-read "read $size bytes, not 1048576"
	elif [ "$a" = "$b" ]; then
		vu_fail guest-rng-read "both halves have md5 $a"
	elif [ "$distinct" -lt 250 ]; then
		vu_fail guest-rng-read "only $distinct distinct byte values in the first 4 KiB"
	elif [ "$packed" -lt 1038000 ]; then
		vu_fail guest-rng-read "1 MiB compresses to $packed bytes: not random"
	else
		vu_pass guest-rng-read
	fi
else
	vu_fail guest-rng-read "$VU_WHY"
fi

loops() { tr -d '\r' < "$VU_SERIAL" | grep -c '^RNG-LOOP '; }
if [ "${VU_RNG_BUILTIN:-0}" = 1 ]; then
	vu_skip guest-rng-not-migratable "QEMU's built-in virtio-rng-pci (VU_RNG_BUILTIN=1) migrates"
else
	before=$(loops)
	if vu_migrate "file:$VU_TMP/never.state"; then
		vu_fail guest-rng-not-migratable "QEMU started migrating a VM with vhost-user-rng"
	elif [[ $VU_WHY != *non-migratable*vhost-user-rng* ]]; then
		vu_fail guest-rng-not-migratable "QEMU refused with '$VU_WHY'"
	else
		echo "# QEMU: $VU_WHY"
		end=$(($(vu_now) + 30000000))
		while [ "$(loops)" -lt $((before + 2)) ] && [ "$(vu_now)" -lt "$end" ]; do sleep 0.1; done
		if vu_wait_running 5 && [ "$(loops)" -ge $((before + 2)) ]; then
			vu_pass guest-rng-not-migratable
		else
			vu_fail guest-rng-not-migratable "refused, but the guest stopped reading ($(loops) loops, $before before)"
		fi
	fi
fi

if [ "${VU_RNG_BUILTIN:-0}" = 1 ]; then
	vu_skip guest-rng-sigterm "QEMU's built-in virtio-rng-pci (VU_RNG_BUILTIN=1)"
else
	# The guest loop keeps the ring busy; give it a moment to have requests in flight.
	sleep 0.2
	if vu_sigterm_backend rng0; then
		vu_pass guest-rng-sigterm
	else
		vu_fail guest-rng-sigterm "$VU_WHY"
	fi
fi

vu_stop_qemu 5
echo "# QEMU exit status $VU_STATUS; t-rng took $(vu_since "$t_start") s"
