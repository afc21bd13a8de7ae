#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vhost-user-gpu in a real guest: QEMU's vhost-user-gpu-pci connected to
# `vhostbox gpu`, a Debian kernel with the virtio-gpu DRM driver (the cloud kernel
# has none), and its framebuffer console. The guest clears the console and prints
# known lines; a QMP screendump must have the display's size, show the lines and
# nothing else. The picture is kept as build/guest/gpu-screen.png. A migration is
# refused with QEMU's message and the display still shows the lines afterwards:
# QEMU 10 would migrate a vhost-user-gpu but never restart it on the destination
# (and has no way to carry its resources), so the back-end offers no dirty log
# and QEMU blocks the migration for that.
# VU_PACKED=1 (t-gpu-packed.sh): the same with packed virtqueues.
set -u
. "$(dirname "$0")/lib.sh"

LINES_SHOWN=4
TEXT="HELLO FROM VHOSTBOX GPU"

# The newest non-cloud kernel: it has virtio-gpu.ko.
if [ -z "${VU_KERNEL:-}" ]; then
	VU_KERNEL=$(ls /boot/vmlinuz-*-amd64 2>/dev/null | grep -v cloud | sort -V | tail -n 1)
	[ -n "$VU_KERNEL" ] || vu_skip_all guest-gpu "no kernel with virtio-gpu in /boot (install linux-image-amd64)"
fi
vu_require_guest guest-gpu virtio_pci virtio_gpu
[ -e "/lib/modules/$VU_KVER/kernel/drivers/gpu/drm/virtio" ] ||
	vu_skip_all guest-gpu "$VU_KERNEL has no virtio-gpu module"
[ -x "$VHOSTBOX" ] || { vu_fail guest-gpu "no binary $VHOSTBOX"; exit 1; }
vu_vhostbox_has gpu || vu_skip_all guest-gpu "$VHOSTBOX was built without gpu"
vu_qemu_has_device vhost-user-gpu-pci || vu_skip_all guest-gpu "$QEMU has no vhost-user-gpu-pci (install qemu-system-gui)"

vu_start_backend gpu0 gpu || { vu_fail guest-gpu-console "$VU_WHY"; exit 1; }

cat > "$VU_TMP/guest.sh" <<EOF
wait_for /dev/fb0 100 || exit 1
guest_features
echo "GUEST-RESULT: fb \$(cat /sys/class/graphics/fb0/virtual_size)"
# Clear the console, hide the cursor, print the lines from the top-left corner.
printf '\033[2J\033[H\033[?25l' > /dev/tty0
for i in \$(seq $LINES_SHOWN); do echo "$TEXT \$i" > /dev/tty0; done
echo "GUEST-RESULT: printed 1"
sleep 120
EOF

vu_start_qemu "$VU_TMP/guest.sh" -chardev "$(vu_chardev gpu0)" -device "vhost-user-gpu-pci,chardev=gpu0$(vu_packed_opt)"
if ! vu_wait_serial 'GUEST-RESULT: printed' 90; then
	vu_fail guest-gpu-console "$VU_WHY"
	exit 1
fi
vu_pass guest-gpu-console
vu_check_layout guest-gpu
fb=$(vu_guest_result fb)
if [ "$fb" = 1280,800 ]; then
	vu_pass guest-gpu-mode
else
	vu_fail guest-gpu-mode "the guest framebuffer is '$fb', not QEMU's default 1280,800"
fi

# fbcon draws through a deferred flush: give it a moment, and look up to 3 times.
art=$REPO/build/guest/gpu-screen.png
mkdir -p "${art%/*}"
ok=0 why="" out=""
for _ in 1 2 3; do
	sleep 1
	rm -f "$VU_TMP/screen.ppm"
	if ! vu_qmp screendump "{\"filename\": \"$VU_TMP/screen.ppm\"}" > /dev/null; then
		why="QMP screendump failed"
		continue
	fi
	if out=$(python3 "$VU_GUEST_DIR/screen.py" "$VU_TMP/screen.ppm" "$art" 1280 800 "$LINES_SHOWN" \
		$((${#TEXT} + 2)) 2>&1); then
		ok=1
		break
	fi
	why=$(echo "$out" | tail -n 1)
done
echo "$out" | sed 's/^/# /'
if [ $ok = 1 ]; then
	echo "# screenshot: $art"
	vu_pass guest-gpu-screendump
else
	vu_fail guest-gpu-screendump "$why (picture: $art)"
fi

if vu_migrate "file:$VU_TMP/never.state"; then
	vu_fail guest-gpu-not-migratable "QEMU started migrating a VM with vhost-user-gpu"
elif [[ $VU_WHY != "Migration disabled: vhost"*LOG* ]]; then
	vu_fail guest-gpu-not-migratable "QEMU refused with '$VU_WHY'"
else
	echo "# QEMU: $VU_WHY"
	rm -f "$VU_TMP/screen.ppm"
	if vu_wait_running 5 && vu_qmp screendump "{\"filename\": \"$VU_TMP/screen.ppm\"}" > /dev/null &&
	   python3 "$VU_GUEST_DIR/screen.py" "$VU_TMP/screen.ppm" "$VU_TMP/after.png" 1280 800 "$LINES_SHOWN" \
		$((${#TEXT} + 2)) > /dev/null 2>&1; then
		vu_pass guest-gpu-not-migratable
	else
		vu_fail guest-gpu-not-migratable "refused, but the VM or its display stopped"
	fi
fi

vu_stop_qemu 5
pid=${VU_BACKEND_PID[gpu0]}
kill -TERM "$pid"
if vu_wait_exit "$pid" 3 && [ "$VU_STATUS" = 0 ]; then
	vu_pass guest-gpu-sigterm
else
	vu_fail guest-gpu-sigterm "the back-end did not exit with status 0 on SIGTERM (${VU_STATUS:-still running})"
fi
