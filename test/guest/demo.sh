#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# `make demo`: boot a small VM (QEMU, TCG) with every vhostbox device that this
# build and this QEMU support, show what the guest sees of each, power off, clean up.
set -u
cd "$(dirname "$0")/../.." || exit 1
sh test/install-deps.sh || { echo "demo: installing the dependencies failed" >&2; exit 1; }
. test/guest/lib.sh

# One line per device, fields separated by '|':
#   name | vhostbox personality and options | QEMU -device | guest modules | guest command
# The guest command (the rest of the line, pipes allowed) runs in the guest's busybox
# shell and shows the device at work. A function prepare_NAME, if defined, runs on the
# host first (e.g. to create a disk image). $VU_TMP is this run's scratch directory.
DEVICES=(
	"rng | rng                                | vhost-user-rng-pci | virtio_rng | head -c 64 /dev/hwrng | hexdump -C"
	"blk | blk --blk-file=$VU_TMP/disk.img --serial=vhostbox-demo | vhost-user-blk-pci | virtio_blk | echo \"vda: \$((\$(cat /sys/block/vda/size) / 2048)) MiB, serial \$(cat /sys/block/vda/serial)\"; head -c 48 /dev/vda | hexdump -C"
	"gpu | gpu | vhost-user-gpu-pci | virtio_gpu | wait_for /dev/fb0 100; echo \"fb0: \$(cat /sys/class/graphics/fb0/virtual_size)\"; printf '\\033[2J\\033[H' > /dev/tty0; echo 'Hello from a display served by vhostbox gpu' > /dev/tty0; echo DEMO-SCREENSHOT; sleep 2"
)

prepare_blk() {
	printf 'Hello from a disk served by vhostbox blk.\n' > "$VU_TMP/disk.img" &&
		truncate -s 16M "$VU_TMP/disk.img"
}

die() { echo "demo: $*" >&2; exit 1; }
trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; echo "${s%"${s##*[![:space:]]}"}"; }

vu_check_qemu || die "$VU_WHY"
[ -x "$VHOSTBOX" ] || die "no $VHOSTBOX: run make first"

qemu_args=() modules=(virtio_pci) shown=()
guest_show=$VU_TMP/show.sh
: > "$guest_show"
for row in "${DEVICES[@]}"; do
	IFS='|' read -r name backend device mods show <<< "$row"
	name=$(trim "$name") device=$(trim "$device") show=$(trim "$show")
	read -ra backend <<< "$backend"
	if ! vu_vhostbox_has "${backend[0]}"; then
		echo "demo: leaving out $name: $VHOSTBOX was built without it"; continue
	fi
	if ! vu_qemu_has_device "$device"; then
		echo "demo: leaving out $name: $QEMU has no $device"; continue
	fi
	if declare -F "prepare_$name" > /dev/null && ! "prepare_$name"; then
		echo "demo: leaving out $name: preparing it failed"; continue
	fi
	if ! vu_start_backend "$name" "${backend[@]}"; then
		echo "demo: leaving out $name: $VU_WHY"; continue
	fi
	echo "demo: $VHOSTBOX ${backend[*]} --socket-path=$(vu_socket "$name")"
	echo "      QEMU: -chardev $(vu_chardev "$name") -device $device,chardev=$name"
	qemu_args+=(-chardev "$(vu_chardev "$name")" -device "$device,chardev=$name")
	read -ra m <<< "$mods"
	modules+=("${m[@]}")
	shown+=("$name")
	printf 'echo; echo "== %s"\n%s\n' "$name" "$show" >> "$guest_show"
done
[ ${#shown[@]} -gt 0 ] || die "no device could be started"

# The cloud kernel has no virtio-gpu driver: with a gpu, boot the full Debian kernel.
if [[ " ${shown[*]} " == *" gpu "* ]] && [ -z "${VU_KERNEL:-}" ]; then
	VU_KERNEL=$(ls /boot/vmlinuz-*-amd64 2>/dev/null | grep -v cloud | sort -V | tail -n 1)
fi
vu_initramfs "${modules[@]}" || die "$VU_WHY"

# What the guest runs: a listing of its virtio devices, then each device's command.
cat > "$VU_TMP/guest.sh" <<'EOF'
echo "== virtio devices the guest sees (/sys/bus/virtio/devices)"
for d in /sys/bus/virtio/devices/*; do
	[ -e "$d" ] || continue
	id=$(($(cat "$d/device")))
	case $id in
	1) what=net ;; 2) what=block ;; 3) what=console ;; 4) what=rng ;; 16) what=gpu ;;
	18) what=input ;; 19) what=vsock ;; 25) what=sound ;; 26) what=fs ;; *) what=? ;;
	esac
	pci=$(basename "$(dirname "$(readlink -f "$d")")")
	drv=$(readlink -f "$d/driver" 2>/dev/null)
	echo "${d##*/}: virtio device $id ($what) at PCI $pci, driver ${drv##*/}, features $(cat "$d/features")"
done
EOF
cat "$guest_show" >> "$VU_TMP/guest.sh"

echo "demo: booting $(basename "$VU_KERNEL") under TCG with: ${shown[*]}"
t0=$(vu_now)
vu_start_qemu "$VU_TMP/guest.sh" "${qemu_args[@]}"
# Show the guest console as it comes; tail ends when QEMU does.
tail -n +1 -f --pid="$VU_QEMU_PID" "$VU_SERIAL" 2>/dev/null | sed -u 's/\r$//' &
vu_track $!
tail_pid=$!

# The gpu row asks for a picture of the guest's display while its text is up.
if [[ " ${shown[*]} " == *" gpu "* ]] && vu_wait_serial 'DEMO-SCREENSHOT' 60; then
	mkdir -p build
	if vu_qmp screendump "{\"filename\": \"$VU_TMP/screen.ppm\"}" > /dev/null &&
		python3 test/guest/screen.py "$VU_TMP/screen.ppm" build/demo-gpu.png 1280 800 1 20 > /dev/null; then
		echo "demo: the guest's display is in build/demo-gpu.png"
	else
		echo "demo: the screenshot of the guest's display failed"
	fi
fi
if ! vu_wait_serial 'GUEST-DONE' 60; then
	echo "demo: $VU_WHY"
	VU_FAILED=1
fi
vu_wait_exit "$VU_QEMU_PID" 10 || vu_stop_qemu 5
vu_wait_exit "$tail_pid" 3 || vu_kill "$tail_pid"
echo "demo: the guest ran for $(vu_since "$t0") s; stopping the back-ends"
for name in "${shown[@]}"; do
	pid=${VU_BACKEND_PID[$name]}
	kill -TERM "$pid" 2>/dev/null
	if vu_wait_exit "$pid" 3; then
		echo "demo: $name back-end exited with status $VU_STATUS"
		[ "$VU_STATUS" = 0 ] || VU_FAILED=1
	else
		echo "demo: $name back-end did not stop on SIGTERM"
		VU_FAILED=1
	fi
done
[ "$VU_FAILED" = 0 ]
