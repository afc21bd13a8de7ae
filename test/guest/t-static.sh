#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The static build needs nothing: `make static`'s vhostbox-static serves QEMU guests
# from an empty root. The root is a directory holding only the binary, its
# vhost-user-NAME links, a disk image and the socket directory; each back-end is
# started by its link's name, chrooted there in a mount namespace of its own (then
# it confines itself as usual: a new empty root, seccomp). No /lib, /etc, /dev or
# /proc in it: nothing to load, resolve or open.
#   guest a: rng (1 MiB from /dev/hwrng), blk (a pattern written with O_DIRECT, read
#            back in the guest, compared on the host), net (pings guest b);
#   guest b: net, the other port of the same switch.
# Each back-end's memory map must show no shared object while it serves.
# Input is proven in test/guest/t-static-input.sh (umockdev cannot reach a static binary).
set -u
. "$(dirname "$0")/lib.sh"

t_start=$(vu_now)
STATIC=${VHOSTBOX_STATIC:-$REPO/vhostbox-static}
vu_require_guest guest-static virtio_pci virtio_rng virtio_blk virtio_net
[ -x "$STATIC" ] || vu_skip_all guest-static "no $STATIC (make static builds it)"
for d in vhost-user-rng-pci vhost-user-blk-pci virtio-net-pci; do
	vu_qemu_has_device $d || vu_skip_all guest-static "$QEMU has no $d"
done
command -v unshare > /dev/null && command -v chroot > /dev/null ||
	vu_skip_all guest-static "no unshare or chroot (util-linux, coreutils)"
[ "$(id -u)" = 0 ] || vu_skip_all guest-static "chroot and mounting the root need root"

# ---- the empty root -----------------------------------------------------------------
root=$VU_TMP/root
VU_SOCKET_DIR=$VU_TMP/run             # the same path inside the root (bind mounted)
mkdir -p "$root$VU_SOCKET_DIR" "$VU_SOCKET_DIR" || exit 1
cp "$STATIC" "$root/vhostbox" || exit 1
"$STATIC" --list | while read -r name _ aliases; do
	for n in $name $aliases; do ln -s vhostbox "$root/vhost-user-$n"; done
done
truncate -s 64M "$root/disk.img"
echo "# the root: $(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | tr '\n' ' ')"

# VHOSTBOX for vu_start_backend: `in-root PERSONALITY ARG...` runs the root's
# vhost-user-PERSONALITY chrooted in it (the same pid: every step execs the next).
cat > "$VU_TMP/in-root" <<EOF
#!/bin/sh
exec unshare --mount --propagation private -- sh -c '
	mount --bind "\$0" "\$0" && mount --bind "$VU_SOCKET_DIR" "\$0$VU_SOCKET_DIR" || exit 1
	p=\$1; shift
	exec chroot "\$0" "/vhost-user-\$p" "\$@"' "$root" "\$@"
EOF
chmod +x "$VU_TMP/in-root"

started=1
VHOSTBOX=$VU_TMP/in-root vu_start_backend rng0 rng || { vu_fail static-start-rng "$VU_WHY"; started=0; }
VHOSTBOX=$VU_TMP/in-root vu_start_backend blk0 blk --blk-file=/disk.img --num-queues=2 ||
	{ vu_fail static-start-blk "$VU_WHY"; started=0; }
VHOSTBOX=$VU_TMP/in-root vu_start_backend neta net --socket-path="$(vu_socket netb)" ||
	{ vu_fail static-start-net "$VU_WHY"; started=0; }
for _ in $(seq 50); do [ -S "$(vu_socket netb)" ] && break; sleep 0.1; done
[ $started = 1 ] || exit 1
vu_pass static-start-in-empty-root

# ---- guests -----------------------------------------------------------------------------
head -c 4194304 /dev/urandom > "$VU_TMP/pattern"
pattern_md5=$(md5sum < "$VU_TMP/pattern" | cut -c1-32)
vu_initramfs_add "$VU_TMP/pattern" pattern || { vu_fail guest-static "$VU_WHY"; exit 1; }

net_setup='
wait_for /sys/class/net/eth0 || exit 1
ip link set eth0 up
ip addr add "$ADDR/24" dev eth0
'
{ echo ADDR=10.0.5.2; echo "$net_setup"; echo 'sleep 90'; } > "$VU_TMP/guest-b.sh"
{ echo ADDR=10.0.5.1; echo "$net_setup"; cat <<'EOF'
wait_for /dev/hwrng && wait_for /dev/vda || exit 1
head -c 1048576 /dev/hwrng > /tmp/r
distinct=$(head -c 4096 /tmp/r | od -An -v -tx1 | tr -s ' ' '\n' | grep . | sort -u | wc -l)
echo "GUEST-RESULT: rng $(cat /sys/class/misc/hw_random/rng_current) $(wc -c < /tmp/r) $distinct $(gzip -c /tmp/r | wc -c)"
dd if=/pattern of=/dev/vda bs=1M seek=8 oflag=direct 2>/dev/null &&
	dd if=/dev/vda of=/tmp/back bs=1M skip=8 count=4 iflag=direct 2>/dev/null
echo "GUEST-RESULT: blk $(md5sum < /tmp/back | cut -c1-32)"
ping_peer 10.0.5.2
EOF
} > "$VU_TMP/guest-a.sh"

# shellcheck disable=SC2054 # commas inside QEMU arguments
vu_start_qemu "$VU_TMP/guest-b.sh" -chardev "$(vu_chardev netb)" \
	-netdev vhost-user,id=n1,chardev=netb -device virtio-net-pci,netdev=n1,mac=52:54:00:00:05:02
b_pid=$VU_QEMU_PID
# shellcheck disable=SC2054
vu_start_qemu "$VU_TMP/guest-a.sh" \
	-chardev "$(vu_chardev rng0)" -device vhost-user-rng-pci,chardev=rng0 \
	-chardev "$(vu_chardev blk0)" -device vhost-user-blk-pci,chardev=blk0,num-queues=2 \
	-chardev "$(vu_chardev neta)" -netdev vhost-user,id=n0,chardev=neta \
	-device virtio-net-pci,netdev=n0,mac=52:54:00:00:05:01

if vu_wait_serial 'GUEST-RESULT: rng ' 90; then
	read -r current size distinct packed <<< "$(vu_guest_result rng)"
	if [ "$current" = virtio_rng.0 ] && [ "$size" = 1048576 ] && [ "$distinct" -ge 250 ] &&
	   [ "$packed" -ge 1038000 ]; then
		vu_pass static-guest-rng
	else
		vu_fail static-guest-rng "hwrng '$current', $size bytes, $distinct distinct in 4 KiB, gzip -> $packed"
	fi
else
	vu_fail static-guest-rng "$VU_WHY"
fi

if vu_wait_serial 'GUEST-RESULT: blk ' 60; then
	got=$(vu_guest_result blk)
	on_host=$(dd if="$root/disk.img" bs=1M skip=8 count=4 2>/dev/null | md5sum | cut -c1-32)
	if [ "$got" = "$pattern_md5" ] && [ "$on_host" = "$pattern_md5" ]; then
		vu_pass static-guest-blk
	else
		vu_fail static-guest-blk "pattern $pattern_md5, read back in the guest $got, in the image $on_host"
	fi
else
	vu_fail static-guest-blk "$VU_WHY"
fi

if vu_wait_serial 'GUEST-RESULT: ping ' 90; then
	[ "$(vu_guest_result ping)" = ok ] && vu_pass static-guest-net-switch-ping ||
		vu_fail static-guest-net-switch-ping "guest a could not ping guest b"
else
	vu_fail static-guest-net-switch-ping "$VU_WHY"
fi

# Serving, each back-end has no file mapped but its own binary (no loader, no shared
# object: nothing was dlopened), and its root is empty.
for name in rng0 blk0 neta; do
	pid=${VU_BACKEND_PID[$name]}
	# Files mapped besides guest memory and inflight regions (memfds the front-end passed).
	libs=$(awk '$6 ~ /^\// && $6 !~ /^\/memfd:/ { print $6 }' "/proc/$pid/maps" 2>/dev/null | sort -u | tr '\n' ' ')
	in_root=$(ls -A "/proc/$pid/root/" 2>&1 | tr '\n' ' ')
	if ! vu_alive "$pid"; then
		vu_fail "static-nothing-loaded-$name" "the back-end is not running"
	elif [ "$libs" != "$root/vhostbox " ]; then
		vu_fail "static-nothing-loaded-$name" "files mapped: '$libs'"
	elif [ -n "$in_root" ]; then
		vu_fail "static-nothing-loaded-$name" "its root holds '$in_root'"
	else
		vu_pass "static-nothing-loaded-$name"
	fi
done

vu_stop_qemu 5
VU_QEMU_PID=$b_pid vu_stop_qemu 5
for name in rng0 blk0 neta; do
	if vu_sigterm_backend "$name"; then vu_pass "static-sigterm-$name"
	else vu_fail "static-sigterm-$name" "$VU_WHY"; fi
done
echo "# t-static took $(vu_since "$t_start") s"
