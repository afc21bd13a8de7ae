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
# host first (e.g. to create a disk image); start_NAME and stop_NAME replace starting
# and stopping the back-end; qemu_NAME sets the array qemu_dev, the device's QEMU
# arguments, when they are more than -chardev and -device DEVICE,chardev=NAME.
# $VU_TMP is this run's scratch directory.
# The input row's guest command: the device's name, then the events the host injects.
input_show='for e in /sys/class/input/event*; do case "$(cat $e/device/name)" in *vhostbox*) ev=${e##*/} ;; esac; done; echo "input device: $ev, $(cat /sys/class/input/$ev/device/name)"; dd if=/dev/input/$ev of=/tmp/ev bs=24 count=4 2>/dev/null & sleep 0.5; echo DEMO-INPUT-READY; wait; od -An -v -tu2 -w24 /tmp/ev | awk "{ printf \"read event type %s code %s value %d\\n\", \$9, \$10, \$11 + \$12 * 65536 }"'
# The net row's guest command: eth0 on the switch, whose tap uplink is in a network
# namespace of its own (10.0.2.1 there); the guest pings it.
# shellcheck disable=SC2016 # expanded in the guest
net_show='wait_for /sys/class/net/eth0; ip link set eth0 up; ip addr add 10.0.2.15/24 dev eth0; echo "eth0: MAC $(cat /sys/class/net/eth0/address), MTU $(cat /sys/class/net/eth0/mtu), 10.0.2.15/24"; ping -c 3 -W 5 10.0.2.1'
# The vsock row's guest command: it answers on its vsock port 5000 (the host connects
# there through the uds, "CONNECT 5000"), and asks the host's listener on port 1234
# ($VU_TMP/vsock.uds_1234), both with /vsock-peer (test/guest/vsock-peer.c).
# shellcheck disable=SC2016 # expanded in the guest
vsock_show='/vsock-peer serve-reply vsock:5000 "hello host, the guest answers on vsock port 5000" > /tmp/heard 2>/dev/null & sleep 0.3; echo DEMO-VSOCK-READY; echo "guest -> host port 1234: the host answered \"$(/vsock-peer ask vsock:2:1234 "hello from the guest")\""; wait; echo "host -> guest port 5000: the host said \"$(cat /tmp/heard)\""'
# The fs row's guest command: the host directory mounted, a host file read, one written back.
# shellcheck disable=SC2016 # expanded in the guest
fs_show='mkdir -p /mnt; mount -t virtiofs share /mnt && echo "mounted the host directory (tag share) on /mnt:" && ls -l /mnt && echo "/mnt/from-the-host.txt says: $(cat /mnt/from-the-host.txt)" && echo "written by the guest at $(date)" > /mnt/from-the-guest.txt && umount /mnt'
DEVICES=(
	"rng | rng                                | vhost-user-rng-pci | virtio_rng | head -c 64 /dev/hwrng | hexdump -C"
	"blk | blk --blk-file=$VU_TMP/disk.img --serial=vhostbox-demo | vhost-user-blk-pci | virtio_blk | echo \"vda: \$((\$(cat /sys/block/vda/size) / 2048)) MiB, serial \$(cat /sys/block/vda/serial)\"; head -c 48 /dev/vda | hexdump -C"
	"input | input --evdev-path=/dev/input/event0 | vhost-user-input-pci | virtio_input evdev | $input_show"
	"net | net --tap=vbxdemo0 | virtio-net-pci | virtio_net | $net_show"
	"vsock | vsock --guest-cid=3 --uds-path=$VU_TMP/vsock.uds | vhost-user-vsock-pci | vmw_vsock_virtio_transport | $vsock_show"
	"fs | fs --shared-dir=$VU_TMP/share | vhost-user-fs-pci | virtiofs | $fs_show"
	"gpu | gpu | vhost-user-gpu-pci | virtio_gpu | wait_for /dev/fb0 100; echo \"fb0: \$(cat /sys/class/graphics/fb0/virtual_size)\"; printf '\\033[2J\\033[H' > /dev/tty0; echo 'Hello from a display served by vhostbox gpu' > /dev/tty0; echo DEMO-SCREENSHOT; sleep 2"
)

# The input back-end runs under the evdev emulation (no /dev/input here): an
# emulated keyboard is /dev/input/event0 in its view; lines written to the fifo
# $VU_TMP/input.in drive it. A sleeping holder keeps the fifo open (no shell fd, so
# nothing started later inherits it); killing the holder ends the emulation.
start_input() {
	local mock=build/test/evdev-mock-run sock
	sock=$(vu_socket input)
	[ -x "$mock" ] || { VU_WHY="no $mock (make tests builds it)"; return 1; }
	mkfifo "$VU_TMP/input.in" || return 1
	"$mock" --device 0=keyboard -- "$VHOSTBOX" "$@" --socket-path="$sock" \
		< "$VU_TMP/input.in" > "$VU_TMP/input.log" 2>&1 &
	VU_BACKEND_PID[input]=$!
	vu_track $!
	sleep 100000 > "$VU_TMP/input.in" &
	input_holder=$!
	vu_track $!
	for _ in $(seq 250); do [ -S "$sock" ] && return 0; sleep 0.02; done
	VU_WHY="no socket: $(head -c 300 "$VU_TMP/input.log")"
	return 1
}
# The end of its stdin ends the emulation, which stops the back-end with SIGTERM.
stop_input() { vu_kill "$input_holder"; }

# The net back-end runs in a network namespace the demo makes (deleted on exit),
# where it creates the tap vbxdemo0 that the host's end, 10.0.2.1, sits on.
demo_ns=vhostbox-demo-$$
prepare_net() { vu_netns_add "$demo_ns"; }
start_net() {
	VU_NETNS=$demo_ns vu_start_backend net "$@" || return 1
	if ! ip netns exec "$demo_ns" ip addr add 10.0.2.1/24 dev vbxdemo0 ||
		! ip netns exec "$demo_ns" ip link set vbxdemo0 up; then
		VU_WHY="cannot give the tap vbxdemo0 its address"
		return 1
	fi
}
qemu_net() {
	# shellcheck disable=SC2054 # commas inside QEMU arguments
	qemu_dev=(-chardev "$(vu_chardev net)" -netdev vhost-user,id=net0,chardev=net
		-device virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56)
}

# The fs row: a host directory with a file in it; the guest's QEMU device needs its tag.
prepare_fs() {
	mkdir -p "$VU_TMP/share" && echo "hello guest, this file is on the host" > "$VU_TMP/share/from-the-host.txt"
}
qemu_fs() {
	qemu_dev=(-chardev "$(vu_chardev fs)" -device vhost-user-fs-pci,chardev=fs,tag=share)
}

# The vsock row: the peer program for both ends, built static for the guest, and the
# host's listener on port 1234.
prepare_vsock() {
	vu_static_program test/guest/vsock-peer.c || { echo "demo: $VU_WHY"; return 1; }
	vsock_peer=$VU_PROGRAM
	"$vsock_peer" serve-reply "unix:$VU_TMP/vsock.uds_1234" "hello guest, this is the host on port 1234" \
		> "$VU_TMP/vsock-heard" 2>/dev/null &
	vu_track $!
}

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
	start=vu_start_backend
	declare -F "start_$name" > /dev/null && start=start_$name
	if ! { [ "$start" = vu_start_backend ] && vu_start_backend "$name" "${backend[@]}"; } &&
		! { [ "$start" != vu_start_backend ] && "$start" "${backend[@]}"; }; then
		echo "demo: leaving out $name: $VU_WHY"; continue
	fi
	qemu_dev=(-chardev "$(vu_chardev "$name")" -device "$device,chardev=$name")
	declare -F "qemu_$name" > /dev/null && "qemu_$name"
	echo "demo: $VHOSTBOX ${backend[*]} --socket-path=$(vu_socket "$name")"
	echo "      QEMU: ${qemu_dev[*]}"
	qemu_args+=("${qemu_dev[@]}")
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
if [[ " ${shown[*]} " == *" vsock "* ]]; then
	vu_initramfs_add "$vsock_peer" vsock-peer || die "cannot add vsock-peer to the initramfs"
fi

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

# The input row waits for a key press: A down and up, each closed by SYN_REPORT.
if [[ " ${shown[*]} " == *" input "* ]] && vu_wait_serial 'DEMO-INPUT-READY' 60; then
	printf '%s\n' "send 0 1 30 1" "send 0 0 0 0" "send 0 1 30 0" "send 0 0 0 0" > "$VU_TMP/input.in"
fi
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
# The vsock row: once the guest listens, the host connects to its port 5000.
if [[ " ${shown[*]} " == *" vsock "* ]] && vu_wait_serial 'DEMO-VSOCK-READY' 60; then
	echo "demo: host -> guest port 5000 (CONNECT 5000 on $VU_TMP/vsock.uds): the guest answered" \
		"\"$("$vsock_peer" ask "uds:$VU_TMP/vsock.uds:5000" "hello guest, this is the host" 2>&1)\""
fi
if ! vu_wait_serial 'GUEST-DONE' 60; then
	echo "demo: $VU_WHY"
	VU_FAILED=1
fi
vu_wait_exit "$VU_QEMU_PID" 10 || vu_stop_qemu 5
vu_wait_exit "$tail_pid" 3 || vu_kill "$tail_pid"
if [[ " ${shown[*]} " == *" fs "* ]]; then
	echo "demo: on the host, $VU_TMP/share/from-the-guest.txt says: $(cat "$VU_TMP/share/from-the-guest.txt" 2>&1)"
fi
echo "demo: the guest ran for $(vu_since "$t0") s; stopping the back-ends"
for name in "${shown[@]}"; do
	pid=${VU_BACKEND_PID[$name]}
	if declare -F "stop_$name" > /dev/null; then "stop_$name"; else kill -TERM "$pid" 2>/dev/null; fi
	if vu_wait_exit "$pid" 5; then
		echo "demo: $name back-end exited with status $VU_STATUS"
		[ "$VU_STATUS" = 0 ] || VU_FAILED=1
	else
		echo "demo: $name back-end did not stop on SIGTERM"
		VU_FAILED=1
	fi
done
[ "$VU_FAILED" = 0 ]
