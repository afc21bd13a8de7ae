#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# VM stop/cont and guest reboot with every device busy (issue 15: 2, 4). One guest
# with blk, rng, net (a tap in a network namespace), input (an emulated keyboard)
# and gpu (when this host has them: the gpu needs the non-cloud kernel), each
# with a loop in the guest: blk writes and reads back numbered blocks, rng reads,
# net pings the host, input prints every event it reads, the gpu console shows a
# counter that changes several times a second.
#   1. three times: QMP stop, 2 s, cont, 2 s (requests in flight at each stop;
#      QEMU stops the rings and, for blk and net, sends SET_STATUS(0)); a key
#      pressed while the VM is stopped and one after cont both reach the guest;
#      after each cont every loop goes on, and a screendump differs from the one
#      before the stop (the display keeps updating: its resources survived);
#   2. a migration is refused, with QEMU's message naming one of the devices it
#      marks unmigratable (rng, input) or saying the gpu's back-end offers no dirty
#      log (each is checked alone in its own t-NAME.sh); the VM and every device go on;
#   3. the guest reboots (RESET_DEVICE for every device, after SET_STATUS(0) for
#      blk and net): on the next boot each device works from a clean state (the
#      gpu driver creates its resources again under the same ids; its console
#      shows exactly what it prints).
set -u
. "$(dirname "$0")/lib.sh"

t_start=$(vu_now)
# shellcheck disable=SC2034 # read by lib.sh
VU_QEMU_TIMEOUT=${VU_QEMU_TIMEOUT_LIFECYCLE:-300}
# shellcheck disable=SC2034 # read by lib.sh
VU_QEMU_REBOOT=1

[ -x "$VHOSTBOX" ] || { vu_fail guest-lifecycle "no binary $VHOSTBOX"; exit 1; }
vu_check_qemu || vu_skip_all guest-lifecycle "$VU_WHY"
for d in blk rng; do
	vu_vhostbox_has $d || vu_skip_all guest-lifecycle "$VHOSTBOX was built without $d"
	vu_qemu_has_device "vhost-user-$d-pci" || vu_skip_all guest-lifecycle "$QEMU has no vhost-user-$d-pci"
done

# Which of the optional devices this host can give the guest (each says why not).
have_gpu=0 have_input=0 have_net=0
# shellcheck disable=SC2010 # as t-gpu.sh: the newest non-cloud kernel
gpu_kernel=$(ls /boot/vmlinuz-*-amd64 2>/dev/null | grep -v cloud | sort -V | tail -n 1)
if ! vu_vhostbox_has gpu; then why_gpu="$VHOSTBOX was built without gpu"
elif ! vu_qemu_has_device vhost-user-gpu-pci; then why_gpu="$QEMU has no vhost-user-gpu-pci"
elif [ -z "${VU_KERNEL:-}" ] && [ -z "$gpu_kernel" ]; then why_gpu="no kernel with virtio-gpu in /boot"
else
	have_gpu=1
	[ -n "${VU_KERNEL:-}" ] || VU_KERNEL=$gpu_kernel
fi
MOCK=${EVDEV_MOCK_RUN:-$(dirname "$VHOSTBOX")/test/evdev-mock-run}
[ -x "$MOCK" ] || MOCK=$REPO/build/test/evdev-mock-run
if ! vu_vhostbox_has input; then why_input="$VHOSTBOX was built without input"
elif ! vu_qemu_has_device vhost-user-input-pci; then why_input="$QEMU has no vhost-user-input-pci"
elif [ ! -x "$MOCK" ]; then why_input="no evdev-mock-run (make tests builds it)"
else have_input=1
fi
ns=vhostbox-t-life-$$
if ! vu_vhostbox_has net; then why_net="$VHOSTBOX was built without net"
elif ! vu_netns_add "$ns"; then why_net=$VU_WHY
else have_net=1
fi

vu_require_guest guest-lifecycle virtio_pci virtio_blk virtio_rng virtio_net virtio_input evdev virtio_gpu
if [ $have_gpu = 1 ] && [ ! -e "/lib/modules/$VU_KVER/kernel/drivers/gpu/drm/virtio" ]; then
	have_gpu=0 why_gpu="$VU_KERNEL has no virtio-gpu module"
fi

# ---- back-ends --------------------------------------------------------------------------
img=$VU_TMP/disk.img
truncate -s 32M "$img"
args=()
if [ $have_gpu = 1 ]; then
	vu_start_backend gpu0 gpu || { vu_fail guest-lifecycle "$VU_WHY"; exit 1; }
	# shellcheck disable=SC2054
	args+=(-chardev "$(vu_chardev gpu0)" -device vhost-user-gpu-pci,chardev=gpu0)
fi
vu_start_backend blk0 blk --blk-file="$img" || { vu_fail guest-lifecycle "$VU_WHY"; exit 1; }
vu_start_backend rng0 rng || { vu_fail guest-lifecycle "$VU_WHY"; exit 1; }
# shellcheck disable=SC2054
args+=(-chardev "$(vu_chardev blk0)" -device vhost-user-blk-pci,chardev=blk0
	-chardev "$(vu_chardev rng0)" -device vhost-user-rng-pci,chardev=rng0)
if [ $have_net = 1 ]; then
	tap=vbxl$$
	VU_NETNS=$ns vu_start_backend net0 net --tap="$tap" || { vu_fail guest-lifecycle "$VU_WHY"; exit 1; }
	ip netns exec "$ns" ip addr add 10.0.10.1/24 dev "$tap"
	ip netns exec "$ns" ip link set "$tap" up
	# shellcheck disable=SC2054
	args+=(-chardev "$(vu_chardev net0)" -netdev vhost-user,id=n0,chardev=net0
		-device virtio-net-pci,netdev=n0,mac=52:54:00:00:0a:02)
fi
if [ $have_input = 1 ]; then
	mkfifo "$VU_TMP/mock.in" || exit 1
	"$MOCK" --device 0=keyboard -- "$VHOSTBOX" input --socket-path="$(vu_socket kbd)" \
		--evdev-path=/dev/input/event0 < "$VU_TMP/mock.in" > "$VU_TMP/input.log" 2>&1 &
	mock_pid=$!
	vu_track "$mock_pid"
	exec 7> "$VU_TMP/mock.in"
	for _ in $(seq 250); do [ -S "$(vu_socket kbd)" ] && break; sleep 0.02; done
	[ -S "$(vu_socket kbd)" ] || { vu_fail guest-lifecycle "input back-end: $(head -c 300 "$VU_TMP/input.log")"; exit 1; }
	# shellcheck disable=SC2054
	args+=(-chardev "$(vu_chardev kbd)" -device vhost-user-input-pci,chardev=kbd)
fi
# key CODE: press and release (EV_KEY, with SYN_REPORTs) on the emulated keyboard.
key() { printf '%s\n' "send 0 1 $1 1" "send 0 0 0 0" "send 0 1 $1 0" "send 0 0 0 0" >&7; }

# ---- the guest ------------------------------------------------------------------------------
{
	echo "have_net=$have_net have_input=$have_input have_gpu=$have_gpu"
	cat <<'EOF'
wait_for /dev/vda || exit 1
wait_for /dev/hwrng || exit 1
[ $have_net = 1 ] && { wait_for /sys/class/net/eth0 && ip link set eth0 up && ip addr add 10.0.10.2/24 dev eth0; }
[ $have_gpu = 1 ] && wait_for /dev/fb0 100
kbd=""
if [ $have_input = 1 ]; then
	n=0
	while [ -z "$kbd" ] && [ $n -lt 50 ]; do
		for e in /sys/class/input/event*; do
			[ "$(cat "$e/device/name" 2>/dev/null)" = "vhostbox test keyboard" ] && kbd=${e##*/}
		done
		n=$((n + 1)); sleep 0.1
	done
fi
# block N: 4 KiB block N of the disk, its first 16 bytes as text.
block() { dd if=/dev/vda bs=4096 skip=$1 count=1 iflag=direct 2>/dev/null | head -c 16 | tr -dc A-Z0-9; }
put() { printf '%s' "$2" | dd of=/dev/vda bs=4096 seek=$1 conv=sync oflag=direct 2>/dev/null; }
events() { od -An -v -tu2 -w24 | awk '{ printf "%s %s %d\n", $9, $10, $11 + $12 * 65536 }'; }
if [ "$(block 0)" != BOOT1 ]; then
	put 0 BOOT1
	echo "GUEST-RESULT: boot 1"
	( i=0; while :; do
		i=$((i + 1)); n=$((16 + i % 1024)); w=$(printf 'LIFE%08d' $i)
		put $n $w && [ "$(block $n)" = "$w" ] && echo "BLK $i ok" || echo "BLK $i bad"
	done ) &
	( i=0; while :; do
		i=$((i + 1)); [ "$(head -c 16384 /dev/hwrng | wc -c)" = 16384 ] && echo "RNG $i ok" || echo "RNG $i short"
		sleep 0.1
	done ) &
	[ $have_net = 1 ] && ( i=0; while :; do
		i=$((i + 1)); ping -c 1 -W 2 10.0.10.1 > /dev/null 2>&1 && echo "NET $i ok" || echo "NET $i lost"
		sleep 0.2
	done ) &
	[ -n "$kbd" ] && ( while :; do
		dd if=/dev/input/$kbd bs=24 count=1 2>/dev/null | events | sed 's/^/INPUT /'
	done ) &
	[ $have_gpu = 1 ] && ( printf '\033[2J\033[?25l' > /dev/tty0; i=0; while :; do
		i=$((i + 1)); printf '\033[HTICK %d\n' $i > /dev/tty0; sleep 0.2
	done ) &
	echo "GUEST-RESULT: loops started"
	until [ "$(block 1)" = REBOOT ]; do sleep 0.3; done
	echo "GUEST-RESULT: rebooting"
	sync
	reboot -f
else
	echo "GUEST-RESULT: boot 2"
	put 2000 AFTERREBOOT && [ "$(block 2000)" = AFTERREBOOT ] && echo "GUEST-RESULT: reboot-blk ok"
	echo "GUEST-RESULT: reboot-rng $(head -c 65536 /dev/hwrng | wc -c)"
	[ $have_net = 1 ] && { ping -c 3 -W 5 10.0.10.1 > /dev/null 2>&1 && echo "GUEST-RESULT: reboot-net ok" ||
		echo "GUEST-RESULT: reboot-net lost"; }
	if [ $have_gpu = 1 ]; then
		printf '\033[2J\033[H\033[?25l' > /dev/tty0
		for i in 1 2 3; do echo "AFTER REBOOT $i" > /dev/tty0; done
		echo "GUEST-RESULT: reboot-gpu printed"
	fi
	if [ -n "$kbd" ]; then
		dd if=/dev/input/$kbd of=/tmp/ev bs=24 count=4 2>/dev/null &
		sleep 1
		echo "GUEST-RESULT: reboot-input ready"
		wait
		echo "GUEST-RESULT: reboot-input $(events < /tmp/ev | tr '\n' ,)"
	fi
	echo "GUEST-RESULT: reboot-done"
	sleep 600
fi
EOF
} > "$VU_TMP/guest.sh"

[ $have_gpu = 1 ] || vu_skip guest-lifecycle-gpu "$why_gpu"
[ $have_input = 1 ] || vu_skip guest-lifecycle-input "$why_input"
[ $have_net = 1 ] || vu_skip guest-lifecycle-net "$why_net"
vu_start_qemu "$VU_TMP/guest.sh" "${args[@]}"
vu_wait_serial 'GUEST-RESULT: loops started' 120 || { vu_fail guest-lifecycle "boot: $VU_WHY"; exit 1; }

count() { tr -d '\r' < "$VU_SERIAL" | grep -cE "^$1"; }
# progress: the counters every loop advances, blank separated.
progress() {
	echo "$(count 'BLK [0-9]+ ok') $(count 'RNG [0-9]+ ok') $(count 'NET [0-9]+ ok') $(count 'INPUT 1 30 1') $(count 'INPUT 1 48 1')"
}
# wait_progress "BEFORE" WANT-KEYS WANT-B SECS: until blk, rng (and net) went on past BEFORE, the
# guest read WANT-KEYS presses of KEY_A and WANT-B of KEY_B in all.
wait_progress() {
	local b end=$(($(vu_now) + $(vu_secs_us "$4"))) p
	read -r -a b <<< "$1"
	while :; do
		read -r -a p <<< "$(progress)"
		[ "${p[0]}" -ge $((b[0] + 2)) ] && [ "${p[1]}" -ge $((b[1] + 2)) ] &&
			{ [ $have_net = 0 ] || [ "${p[2]}" -ge $((b[2] + 2)) ]; } &&
			{ [ $have_input = 0 ] || { [ "${p[3]}" -ge "$2" ] && [ "${p[4]}" -ge "$3" ]; }; } && return 0
		[ "$(vu_now)" -ge "$end" ] && { VU_WHY="progress '${p[*]}' from '$1' (want KEY_A $2, KEY_B $3)"; return 1; }
		sleep 0.2
	done
}
shot() { rm -f "$1"; vu_qmp screendump "{\"filename\": \"$1\"}" > /dev/null && [ -s "$1" ]; }
same_picture() { cmp -s "$1" "$2"; }

# Everything runs before the first stop.
if ! wait_progress "0 0 0 0 0" 0 0 60; then
	vu_fail guest-lifecycle "the loops before the first stop: $VU_WHY"
	exit 1
fi
if [ $have_input = 1 ]; then
	key 30
	wait_progress "$(progress)" 1 0 30 || vu_fail guest-lifecycle-input "no key before the first stop: $VU_WHY"
fi

# ---- 1. stop / cont -----------------------------------------------------------------------
ok=1 gpu_ok=1 input_ok=1
for cycle in 1 2 3; do
	[ $have_gpu = 1 ] && { shot "$VU_TMP/before.ppm" || gpu_ok=0; }
	vu_qmp stop > /dev/null || { ok=0; echo "# cycle $cycle: stop refused"; }
	st=$(vu_qmp query-status | vu_json 'd["status"]')
	[ "$st" = paused ] || { ok=0; echo "# cycle $cycle: status '$st' after stop"; }
	# A key pressed while the VM is stopped: delivered after cont.
	[ $have_input = 1 ] && key 48
	sleep 2
	before=$(progress)
	vu_qmp cont > /dev/null || { ok=0; echo "# cycle $cycle: cont refused"; }
	sleep 2
	[ $have_input = 1 ] && key 30
	if ! wait_progress "$before" $((cycle + 1)) "$cycle" 60; then
		ok=0
		echo "# cycle $cycle: $VU_WHY"
		[ $have_input = 1 ] && input_ok=0
	fi
	if [ $have_gpu = 1 ]; then
		sleep 0.5
		if ! shot "$VU_TMP/after.ppm" || same_picture "$VU_TMP/before.ppm" "$VU_TMP/after.ppm"; then
			gpu_ok=0
			echo "# cycle $cycle: the screen did not change over stop/cont"
		fi
	fi
	echo "# cycle $cycle: progress $before -> $(progress)"
done
bad=$(count 'BLK [0-9]+ bad')$(count 'RNG [0-9]+ short')
[ $ok = 1 ] && [ "$bad" = 00 ] && vu_pass guest-lifecycle-stop-cont ||
	vu_fail guest-lifecycle-stop-cont "$( [ "$bad" = 00 ] || echo "bad blk/rng results: $bad; ")see the cycle lines"
echo "# net pings lost over the cycles: $(count 'NET [0-9]+ lost')"
if [ $have_input = 1 ]; then
	[ $input_ok = 1 ] && vu_pass guest-lifecycle-input-stop-cont ||
		vu_fail guest-lifecycle-input-stop-cont "keys pressed while stopped or after cont did not all arrive"
fi
if [ $have_gpu = 1 ]; then
	[ $gpu_ok = 1 ] && vu_pass guest-lifecycle-gpu-stop-cont ||
		vu_fail guest-lifecycle-gpu-stop-cont "the display did not keep updating"
fi

# ---- 2. a refused migration -----------------------------------------------------------------
before=$(progress)
[ $have_gpu = 1 ] && shot "$VU_TMP/before.ppm"
if vu_migrate "file:$VU_TMP/never.state"; then
	vu_fail guest-lifecycle-not-migratable "QEMU started migrating a VM with vhost-user-rng"
elif ! [[ $VU_WHY =~ non-migratable\ device.*vhost-user-(rng|input)|Migration\ disabled:\ vhost.*LOG ]]; then
	vu_fail guest-lifecycle-not-migratable "QEMU refused with '$VU_WHY'"
else
	echo "# QEMU: $VU_WHY"
	[ $have_input = 1 ] && key 30
	if ! vu_wait_running 5 || ! wait_progress "$before" 5 3 60; then
		vu_fail guest-lifecycle-not-migratable "refused, but the VM or a device stopped: $VU_WHY"
	elif [ $have_gpu = 1 ] && { ! shot "$VU_TMP/after.ppm" || same_picture "$VU_TMP/before.ppm" "$VU_TMP/after.ppm"; }; then
		vu_fail guest-lifecycle-not-migratable "refused, but the display stopped"
	else
		vu_pass guest-lifecycle-not-migratable
	fi
fi

# ---- 3. reboot ---------------------------------------------------------------------------------
printf REBOOT | dd of="$img" bs=4096 seek=1 conv=notrunc,sync 2>/dev/null
if ! vu_wait_serial 'GUEST-RESULT: boot 2' 120; then
	vu_fail guest-lifecycle-reboot "$VU_WHY"
	exit 1
fi
if [ $have_input = 1 ]; then
	vu_wait_serial 'GUEST-RESULT: reboot-input ready' 60 && key 30
fi
if vu_wait_serial 'GUEST-RESULT: reboot-done' 60; then
	[ "$(vu_guest_result reboot-blk)" = ok ] && [ "$(vu_guest_result reboot-rng)" = 65536 ] &&
		vu_pass guest-lifecycle-reboot-blk-rng ||
		vu_fail guest-lifecycle-reboot-blk-rng "after the reboot: blk '$(vu_guest_result reboot-blk)', rng '$(vu_guest_result reboot-rng)' bytes"
	if [ $have_net = 1 ]; then
		[ "$(vu_guest_result reboot-net)" = ok ] && vu_pass guest-lifecycle-reboot-net ||
			vu_fail guest-lifecycle-reboot-net "no ping answered after the reboot"
	fi
	if [ $have_input = 1 ]; then
		got=$(vu_guest_result reboot-input) want="1 30 1,0 0 0,1 30 0,0 0 0,"
		[ "$got" = "$want" ] && vu_pass guest-lifecycle-reboot-input ||
			vu_fail guest-lifecycle-reboot-input "the new driver read '$got', not '$want'"
	fi
	if [ $have_gpu = 1 ]; then
		# fbcon draws through a deferred flush: look up to 3 times.
		ok=0 out=""
		for _ in 1 2 3; do
			sleep 1
			shot "$VU_TMP/reboot.ppm" && out=$(python3 "$VU_GUEST_DIR/screen.py" "$VU_TMP/reboot.ppm" \
				"$VU_TMP/reboot.png" 1280 800 3 16 2>&1) && { ok=1; break; }
		done
		[ $ok = 1 ] && vu_pass guest-lifecycle-reboot-gpu ||
			vu_fail guest-lifecycle-reboot-gpu "the console after the reboot: $(echo "$out" | tail -n 1)"
	fi
else
	vu_fail guest-lifecycle-reboot "$VU_WHY"
fi
vu_stop_qemu 5

why=""
for be in blk0 rng0 net0 gpu0; do
	[ -n "${VU_BACKEND_PID[$be]:-}" ] || continue
	vu_sigterm_backend "$be" || why+="$be: $VU_WHY; "
done
if [ $have_input = 1 ]; then
	exec 7>&-
	vu_wait_exit "$mock_pid" 5 && [ "$VU_STATUS" = 0 ] || why+="input: exit status ${VU_STATUS:-none}"
fi
[ -z "$why" ] && vu_pass guest-lifecycle-backends-exit || vu_fail guest-lifecycle-backends-exit "$why"
echo "# t-lifecycle took $(vu_since "$t_start") s"
