#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vhost-user-input in a real guest: one `vhostbox input` process serves an
# emulated keyboard and tablet (umockdev, through build/test/evdev-mock-run) to
# two vhost-user-input-pci devices. The guest must list both names in
# /proc/bus/input/devices and read the injected key and motion events, in order
# and framed by SYN_REPORT, from its /dev/input/eventX nodes. A migration is
# refused with QEMU's message (vhost-user-input is unmigratable), and the guest
# then reads more key events.
# The ring layout is packed: QEMU's vhost-user-input-pci takes the back-end's features
# as offered (see vu_check_layout).
set -u
. "$(dirname "$0")/lib.sh"

t_start=$(vu_now)
vu_require_guest guest-input virtio_pci virtio_input evdev
[ -x "$VHOSTBOX" ] || { vu_fail guest-input "no binary $VHOSTBOX"; exit 1; }
vu_vhostbox_has input || vu_skip_all guest-input "$VHOSTBOX was built without input"
vu_qemu_has_device vhost-user-input-pci || vu_skip_all guest-input "$QEMU has no vhost-user-input-pci"
# The emulation tool of the same build as the binary, else of the plain build.
MOCK=${EVDEV_MOCK_RUN:-$(dirname "$VHOSTBOX")/test/evdev-mock-run}
[ -x "$MOCK" ] || MOCK=$REPO/build/test/evdev-mock-run
[ -x "$MOCK" ] || vu_skip_all guest-input "no evdev-mock-run (make tests builds it)"

kbd=$(vu_socket kbd) tab=$(vu_socket tab)
mkfifo "$VU_TMP/mock.in" || exit 1
"$MOCK" --device 0=keyboard --device 1=tablet -- "$VHOSTBOX" input \
	--socket-path="$kbd" --evdev-path=/dev/input/event0 \
	--socket-path="$tab" --evdev-path=/dev/input/event1 \
	< "$VU_TMP/mock.in" > "$VU_TMP/input.log" 2>&1 &
mock_pid=$!
vu_track "$mock_pid"
exec 7> "$VU_TMP/mock.in"   # the tool's stdin: closing it stops the back-end
for i in $(seq 250); do [ -S "$kbd" ] && [ -S "$tab" ] && break; sleep 0.02; done
if ! [ -S "$kbd" ] || ! [ -S "$tab" ]; then
	vu_fail guest-input "the back-end did not listen: $(head -c 300 "$VU_TMP/input.log")"
	exit 1
fi

cat > "$VU_TMP/guest.sh" <<'EOF'
wait_for /sys/class/input/event1 || exit 1
guest_features
echo "GUEST-RESULT: names $(sed -n 's/^N: Name="\(.*\)"/\1/p' /proc/bus/input/devices | sort | tr '\n' ',')"
# Feature bits the guest driver acked, one string per input device (id 18).
for d in /sys/bus/virtio/devices/*; do
	[ "$(cat "$d/device")" = 0x0012 ] && f="$f $(cat "$d/features")"
done
echo "GUEST-RESULT: features$f"
for e in /sys/class/input/event*; do
	case $(cat "$e/device/name") in
	"vhostbox test keyboard") kbd=${e##*/} ;;
	"vhostbox test tablet") tab=${e##*/} ;;
	esac
done
# One read per event (24 bytes on x86_64): 4 keyboard events, 3 tablet events.
dd if=/dev/input/$kbd of=/tmp/kbd bs=24 count=4 2>/dev/null &
dd if=/dev/input/$tab of=/tmp/tab bs=24 count=3 2>/dev/null &
sleep 1
echo "GUEST-READY"
wait
# type code value of each event, events separated by commas.
show() { od -An -v -tu2 -w24 "$1" | awk '{ printf "%s %s %d,", $9, $10, $11 + $12 * 65536 }'; }
echo "GUEST-RESULT: kbd $(show /tmp/kbd)"
echo "GUEST-RESULT: tab $(show /tmp/tab)"
dd if=/dev/input/$kbd of=/tmp/kbd2 bs=24 count=4 2>/dev/null &
sleep 1
echo "GUEST-READY2"
wait
echo "GUEST-RESULT: kbd2 $(show /tmp/kbd2)"
EOF

vu_start_qemu "$VU_TMP/guest.sh" \
	-chardev "$(vu_chardev kbd)" -device vhost-user-input-pci,chardev=kbd \
	-chardev "$(vu_chardev tab)" -device vhost-user-input-pci,chardev=tab
if ! vu_wait_serial 'GUEST-READY' 90; then
	vu_fail guest-input-names "$VU_WHY"
	exit 1
fi
names=$(vu_guest_result names)
vu_check_layout guest-input 2 packed
if [[ $names == *"vhostbox test keyboard"* && $names == *"vhostbox test tablet"* ]]; then
	vu_pass guest-input-names
else
	vu_fail guest-input-names "/proc/bus/input/devices names: '$names'"
fi

# QEMU's vhost-user-input acks EVENT_IDX (bit 29) whatever is offered: we offer it.
features=$(vu_guest_result features)
ok=1
for f in $features; do [ "${f:29:1}" = 1 ] || ok=0; done
[ -n "$features" ] && [ $ok = 1 ] && vu_pass guest-input-event-idx ||
	vu_fail guest-input-event-idx "the guest's input devices have features '$features'"

# EV_KEY=1 KEY_A=30, EV_ABS=3 ABS_X=0 ABS_Y=1, EV_SYN=0 SYN_REPORT=0.
printf '%s\n' "send 0 1 30 1" "send 0 0 0 0" "send 1 3 0 1000" "send 1 3 1 2000" "send 1 0 0 0" \
	"send 0 1 30 0" "send 0 0 0 0" >&7
if vu_wait_serial 'GUEST-RESULT: tab ' 30; then
	got=$(vu_guest_result kbd)
	want="1 30 1,0 0 0,1 30 0,0 0 0,"
	[ "$got" = "$want" ] && vu_pass guest-input-key-events ||
		vu_fail guest-input-key-events "the guest read '$got', not '$want'"
	got=$(vu_guest_result tab)
	want="3 0 1000,3 1 2000,0 0 0,"
	[ "$got" = "$want" ] && vu_pass guest-input-motion-events ||
		vu_fail guest-input-motion-events "the guest read '$got', not '$want'"
else
	vu_fail guest-input-key-events "$VU_WHY"
fi

if vu_migrate "file:$VU_TMP/never.state"; then
	vu_fail guest-input-not-migratable "QEMU started migrating a VM with vhost-user-input"
elif [[ $VU_WHY != *non-migratable*vhost-user-input* ]]; then
	vu_fail guest-input-not-migratable "QEMU refused with '$VU_WHY'"
else
	echo "# QEMU: $VU_WHY"
	# EV_KEY=1 KEY_B=48: read after the refusal.
	if vu_wait_running 5 && vu_wait_serial 'GUEST-READY2' 30 &&
	   printf '%s\n' "send 0 1 48 1" "send 0 0 0 0" "send 0 1 48 0" "send 0 0 0 0" >&7 &&
	   vu_wait_serial 'GUEST-RESULT: kbd2 ' 30; then
		got=$(vu_guest_result kbd2) want="1 48 1,0 0 0,1 48 0,0 0 0,"
		[ "$got" = "$want" ] && vu_pass guest-input-not-migratable ||
			vu_fail guest-input-not-migratable "after the refusal the guest read '$got', not '$want'"
	else
		vu_fail guest-input-not-migratable "after the refusal: $VU_WHY"
	fi
fi

vu_stop_qemu 5
exec 7>&-
if vu_wait_exit "$mock_pid" 5; then
	[ "$VU_STATUS" = 0 ] && vu_pass guest-input-exit ||
		vu_fail guest-input-exit "the back-end exited with status $VU_STATUS"
else
	vu_fail guest-input-exit "the back-end did not stop on SIGTERM"
fi
echo "# t-input took $(vu_since "$t_start") s"
