#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The static build's input personality on a real evdev device, needing nothing.
# QEMU's vhost-user-input needs an evdev device on the host: the input tests emulate
# them with umockdev, whose LD_PRELOAD cannot reach a static binary, and these hosts
# have no uinput. So the static binary runs inside a guest instead (Debian's full
# kernel: it has uinput), in an empty root there (a tmpfs holding the binary, its
# vhost-user-input link, the socket directory and the device's node), on a uinput
# keyboard (test/guest/input-uinput.c), and the test front-end (test/frontend.c)
# drives it as a virtio-input driver would: the config space's name, a key press and
# release read from the event queue as the kernel reported them, nothing mapped but
# the binary, an empty root once confined, and status 0 after SIGTERM. Then its idle
# footprint: RSS with one device, and per extra device (9 in one process).
set -u
. "$(dirname "$0")/lib.sh"

t_start=$(vu_now)
STATIC=${VHOSTBOX_STATIC:-$REPO/vhostbox-static}
# The cloud kernel has no uinput: the full one.
VU_KERNEL=$(printf '%s\n' /boot/vmlinuz-*-amd64 | grep -v -e '-cloud-amd64$' -e '\*' | sort -V | tail -n 1)
[ -n "$VU_KERNEL" ] || vu_skip_all guest-static-input "no Debian amd64 kernel with uinput (install linux-image-amd64)"
vu_require_guest guest-static-input uinput evdev
[ -x "$STATIC" ] || vu_skip_all guest-static-input "no $STATIC (make static builds it)"
"$STATIC" --list | grep -q '^input ' || vu_skip_all guest-static-input "$STATIC was built without input"
vu_static_program "$VU_GUEST_DIR/input-uinput.c" "$REPO/test/frontend.c" ||
	vu_skip_all guest-static-input "$VU_WHY"
vu_initramfs_add "$VU_PROGRAM" input-uinput && vu_initramfs_add "$STATIC" vhostbox ||
	{ vu_fail guest-static-input "$VU_WHY"; exit 1; }

cat > "$VU_TMP/guest.sh" <<'EOF'
wait_for /dev/uinput || exit 1
mkdir -p /r && mount -t tmpfs root /r && mkdir -p /r/run /r/dev/input || exit 1
cp /vhostbox /r/vhostbox && ln -s vhostbox /r/vhost-user-input || exit 1
/input-uinput /r/run/in.sock > /tmp/drv.out 2> /tmp/drv.err &
drv=$!
n=0
until grep -q UINPUT-NODE /tmp/drv.out || [ $n -ge 50 ]; do n=$((n + 1)); sleep 0.1; done
node=$(sed -n 's/^UINPUT-NODE //p' /tmp/drv.out)
wait_for "$node" || exit 1
mknod "/r$node" c $(tr ':' ' ' < "/sys/class/input/${node##*/}/dev")
echo "GUEST-RESULT: root $(cd /r && find . -mindepth 1 | sort | tr '\n' ' ')"
chroot /r /vhost-user-input --socket-path=/run/in.sock --evdev-path="$node" > /tmp/be.log 2>&1 &
be=$!
n=0
until grep -q '^GUEST-RESULT: input-events' /tmp/drv.out || [ $n -ge 100 ]; do n=$((n + 1)); sleep 0.1; done
grep '^GUEST-RESULT: ' /tmp/drv.out
if [ -d /proc/$be ]; then
	echo "GUEST-RESULT: maps [$(awk '$6 ~ /^\// && $6 !~ /^\/memfd:/ { print $6 }' /proc/$be/maps | sort -u | tr '\n' ' ')]"
	echo "GUEST-RESULT: confined-root [$(ls -A /proc/$be/root/ | tr '\n' ' ')]"
fi
kill -TERM $be
wait $be
echo "GUEST-RESULT: exit $?"
kill $drv
# Footprint: idle processes on keyboards of their own, one with 1 device, one with 9.
/input-uinput --keyboards 10 > /tmp/kb.out 2>> /tmp/drv.err &
kb=$!
n=0
until [ "$(grep -c UINPUT-NODE /tmp/kb.out)" = 10 ] || [ $n -ge 100 ]; do n=$((n + 1)); sleep 0.1; done
set -- $(sed -n 's/^UINPUT-NODE //p' /tmp/kb.out)
for node; do
	wait_for "$node" && { [ -e "/r$node" ] || mknod "/r$node" c $(tr ':' ' ' < "/sys/class/input/${node##*/}/dev"); }
done
chroot /r /vhost-user-input --socket-path=/run/one.sock --evdev-path="$1" 2>> /tmp/be.log &
one=$!
shift
args=""
for node; do args="$args --socket-path=/run/m${node##*event}.sock --evdev-path=$node"; done
chroot /r /vhost-user-input $args 2>> /tmp/be.log &
nine=$!
last=/r/run/m${node##*event}.sock
n=0
until [ -S /r/run/one.sock ] && [ -S "$last" ] || [ $n -ge 100 ]; do n=$((n + 1)); sleep 0.1; done
sleep 0.5
rss() { awk '/^VmRSS:/ { print $2 }' /proc/$1/status; }
echo "GUEST-RESULT: rss $(rss $one) $(rss $nine)"
kill $one $nine
wait $one $nine
kill $kb
sed 's/^/GUEST-LOG: /' /tmp/be.log /tmp/drv.err
EOF

vu_start_qemu "$VU_TMP/guest.sh"
if ! vu_wait_serial 'GUEST-RESULT: exit ' 120; then
	vu_fail guest-static-input "$VU_WHY"
	exit 1
fi
echo "# the guest's root: $(vu_guest_result root)"
tr -d '\r' < "$VU_SERIAL" | grep '^GUEST-LOG: ' | sed 's/^GUEST-LOG: /# /'

got=$(vu_guest_result input-name)
[ "$got" = "vhostbox uinput keyboard" ] && vu_pass static-input-config-name ||
	vu_fail static-input-config-name "the config space's name is '$got'"
# EV_KEY=1 KEY_A=30 pressed and released, each framed by EV_SYN SYN_REPORT.
got=$(vu_guest_result input-events) want="1 30 1,0 0 0,1 30 0,0 0 0,"
[ "$got" = "$want" ] && vu_pass static-input-events || vu_fail static-input-events "read '$got', not '$want'"
got=$(vu_guest_result maps)
[ "$got" = "[/r/vhostbox ]" ] && vu_pass static-input-nothing-loaded ||
	vu_fail static-input-nothing-loaded "files mapped: '$got'"
got=$(vu_guest_result confined-root)
[ "$got" = "[]" ] && vu_pass static-input-empty-root || vu_fail static-input-empty-root "its root holds '$got'"
got=$(vu_guest_result exit)
[ "$got" = 0 ] && vu_pass static-input-sigterm || vu_fail static-input-sigterm "status $got after SIGTERM"
one="" nine=""
vu_wait_serial 'GUEST-RESULT: rss ' 60 && read -r one nine <<< "$(vu_guest_result rss)"
if [ -n "$nine" ]; then
	per=$(((nine - one) / 8))
	echo "# static input in the guest: idle RSS $one KiB with one device, $nine KiB with 9: $per KiB per extra device"
	[ "$one" -le 1024 ] && [ "$per" -le 64 ] && vu_pass static-input-footprint ||
		vu_fail static-input-footprint "$one KiB for one device (target 1024), $per KiB per extra device (target 64)"
else
	vu_fail static-input-footprint "no RSS figures from the guest: ${VU_WHY:-}"
fi
vu_stop_qemu 5
echo "# t-static-input took $(vu_since "$t_start") s"
