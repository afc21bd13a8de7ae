#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vhost-user-fs in a real guest: QEMU's vhost-user-fs-pci connected to `vhostbox fs`
# three times (tags rw, ro: --readonly, nc: --cache=never), `mount -t virtiofs` in
# the guest, and the host directory checked from the host side:
#   mount, and a host file read in the guest; create, write, append, rename, hard
#   link, symlink, truncate, unlink, rmdir, seen from the host; xattrs, POSIX locks
#   (F_SETLKW waits in the guest while the back-end loop goes on), flock, a shared
#   writable mmap (test/guest/fs-peer.c); 3000 files created and listed; a 64 MiB
#   file written in the guest and checksummed on the host; four writers at once;
#   a host-side change seen at once with --cache=never; a guest user (uid 1000) creates
#   files of uid 1000 on the host, is refused root's 0600 file, and its write clears
#   the setuid bit of its file (HANDLE_KILLPRIV_V2); escapes (symlinks out of the
#   share, mknod of a device) that reach nothing outside it; --readonly refusing
#   writes; the VM saved to a file (every back-end saves its state) and continued, the
#   guest's files still working (t-migrate-fs.sh migrates one); SIGTERM while mounted:
#   status 0, every write the guest had synced is there.
# VU_PACKED=1 (t-fs-packed.sh): the same with packed virtqueues.
set -u
. "$(dirname "$0")/lib.sh"

t_start=$(vu_now)
vu_require_guest guest-fs virtio_pci virtiofs
[ -x "$VHOSTBOX" ] || { vu_fail guest-fs "no binary $VHOSTBOX"; exit 1; }
vu_vhostbox_has fs || vu_skip_all guest-fs "$VHOSTBOX was built without fs"
vu_qemu_has_device vhost-user-fs-pci || vu_skip_all guest-fs "$QEMU has no vhost-user-fs-pci"
vu_static_program "$VU_GUEST_DIR/fs-peer.c" || vu_skip_all guest-fs "$VU_WHY"
vu_initramfs_add "$VU_PROGRAM" fs-peer || { vu_fail guest-fs "cannot add fs-peer to the initramfs"; exit 1; }

rw=$VU_TMP/share-rw ro=$VU_TMP/share-ro nc=$VU_TMP/share-nc
mkdir -p "$rw" "$ro" "$nc"
echo "host file $$" > "$rw/from-host"
echo "read-only $$" > "$ro/keep"
echo "version 1" > "$nc/changing"
# Outside every share: nothing in the guest may read this.
echo "SECRET-OUTSIDE-$$" > "$VU_TMP/outside"

vu_start_backend fs-rw fs --shared-dir="$rw" --xattr --thread-pool-size=4 || { vu_fail guest-fs "$VU_WHY"; exit 1; }
vu_start_backend fs-ro fs -o source="$ro",cache=always --readonly || { vu_fail guest-fs "$VU_WHY"; exit 1; }
vu_start_backend fs-nc fs --shared-dir="$nc" --cache=never --thread-pool-size=0 || { vu_fail guest-fs "$VU_WHY"; exit 1; }

cat > "$VU_TMP/guest.sh" <<EOF
OUTSIDE=$VU_TMP/outside
EOF
cat >> "$VU_TMP/guest.sh" <<'EOF'
r() { echo "GUEST-RESULT: $*"; }
mkdir -p /rw /ro /nc
mount -t virtiofs rw /rw && mount -t virtiofs ro /ro && mount -t virtiofs nc /nc || { r mount failed; exit 1; }
r mount "$(cat /rw/from-host)"
guest_features

# Names and data.
cd /rw
echo one > a && echo two >> a && mv a b && ln b c && ln -s b d && mkdir -p dir/sub &&
	echo deep > dir/sub/f && printf 0123456789 > t && truncate -s 4 t
touch gone && rm gone && mkdir gonedir && rmdir gonedir
r ops "$(cat c | tr '\n' +)|$(readlink d)|$(cat d | tail -n 1)|$(stat -c %h b)|$(cat t)|$(ls dir/sub)"
r ops-done

for what in xattr lock mmap; do r "peer-$what" "$(/fs-peer $what /rw/peer-$what 2>&1 | tail -n 1)"; done

# Many files.
mkdir many && i=0
while [ $i -lt 3000 ]; do : > many/f$i; i=$((i + 1)); done
r many "$(ls many | wc -l) $(ls -l many | grep -c '^-')"

# A large file and concurrent writers.
dd if=/dev/urandom of=/tmp/big bs=1M count=64 2>/dev/null
t0=$(cut -d' ' -f1 /proc/uptime)
cp /tmp/big /rw/big && sync
t1=$(cut -d' ' -f1 /proc/uptime)
r big "$(md5sum < /tmp/big | cut -c1-32) $(md5sum < /rw/big | cut -c1-32) $t0 $t1"
rm /tmp/big
for w in 1 2 3 4; do
	( i=0; while [ $i -lt 200 ]; do echo "writer $w line $i"; i=$((i + 1)); done > /rw/w$w; sync /rw/w$w ) &
done
wait
r writers "$(cat /rw/w1 /rw/w2 /rw/w3 /rw/w4 | md5sum | cut -c1-32)"

# A guest user: its files are its own on the host, root's 0600 file is not its to read,
# and its write clears the setuid bit of its file.
mkdir /rw/users && chmod 1777 /rw/users && echo root-only > /rw/users/root-0600 && chmod 600 /rw/users/root-0600
/fs-peer as 1000 /bin/sh -c 'echo mine > /rw/users/by-1000 && touch /rw/users/suid && chmod 4755 /rw/users/suid &&
	echo x >> /rw/users/suid; cat /rw/users/root-0600' > /tmp/as.out 2>&1
r user "$(stat -c %u:%g /rw/users/by-1000) $(grep -c 'Permission denied' /tmp/as.out) $(stat -c %a /rw/users/suid)"

# Escapes: the guest's kernel follows symlinks in the guest, never on the host.
ln -s "$OUTSIDE" /rw/out-abs && ln -s ../outside /rw/out-rel
esc="$(cat /rw/out-abs 2>&1; cat /rw/out-rel 2>&1; cat /rw/../outside 2>&1)"
mknod /rw/blockdev b 8 0 2>/dev/null && esc="$esc mknod-ok"
r escape "$(echo "$esc" | grep -c SECRET-OUTSIDE) $(echo "$esc" | grep -c mknod-ok)"

# --readonly.
ro_res="$(cat /ro/keep)"
echo x > /ro/new 2>/dev/null && ro_res="$ro_res created"
rm /ro/keep 2>/dev/null && ro_res="$ro_res removed"
echo y >> /ro/keep 2>/dev/null && ro_res="$ro_res appended"
r ro "$ro_res"

# --cache=never: the host changes a file, the guest sees it at once.
r nc-before "$(cat /nc/changing)"
n=0
while [ ! -e /nc/go ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
r nc-after "$(cat /nc/changing)"

# Synced writes, then the host stops the back-end while this stays mounted.
i=0
while [ $i -lt 50 ]; do echo "acked $i" >> /rw/acked; i=$((i + 1)); done
sync
r synced "$(md5sum < /rw/acked | cut -c1-32)"
# The host saves the VM to a file (it stops, its back-ends save their state) and lets it go on.
n=0
while [ ! -e /rw/resumed ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
echo "after cont" > /rw/after-cont
r resumed "$(md5sum < /rw/acked | cut -c1-32) $(ls /rw | grep -c acked) $(cat /nc/changing)"
sleep 30
EOF

vu_start_qemu "$VU_TMP/guest.sh" \
	-chardev "$(vu_chardev fs-rw)" -device "vhost-user-fs-pci,chardev=fs-rw,tag=rw$(vu_packed_opt)" \
	-chardev "$(vu_chardev fs-ro)" -device "vhost-user-fs-pci,chardev=fs-ro,tag=ro$(vu_packed_opt)" \
	-chardev "$(vu_chardev fs-nc)" -device "vhost-user-fs-pci,chardev=fs-nc,tag=nc$(vu_packed_opt)"
vu_wait_serial 'GUEST-START' 30 || { vu_fail guest-fs-mount "boot: $VU_WHY"; exit 1; }

# expect NAME KEY WANT: the guest's result KEY is WANT.
expect() {
	local got
	if ! vu_wait_serial "GUEST-RESULT: $2( |\\r|$)" "${4:-60}"; then
		vu_fail "$1" "$VU_WHY"
		return 1
	fi
	got=$(vu_guest_result "$2")
	if [ "$got" = "$3" ]; then vu_pass "$1"; else vu_fail "$1" "got '$got', want '$3'"; return 1; fi
}

expect guest-fs-mount mount "host file $$"
vu_wait_serial 'GUEST-RESULT: vfeatures' 30 && vu_check_layout guest-fs 3
if expect guest-fs-ops ops "one+two+|b|two|2|0123|f"; then
	vu_wait_serial 'GUEST-RESULT: ops-done' 10
	host="$(cat "$rw/c")|$(readlink "$rw/d")|$(stat -c %h "$rw/b")|$(cat "$rw/t")|$(cat "$rw/dir/sub/f")"
	want="one
two|b|2|0123|deep"
	[ "$host" = "$want" ] && [ ! -e "$rw/gone" ] && [ ! -e "$rw/gonedir" ] && [ ! -e "$rw/a" ] &&
		vu_pass guest-fs-ops-host || vu_fail guest-fs-ops-host "the host sees '$host'"
fi
expect guest-fs-xattr peer-xattr "OK xattr" &&
	{ [ "$(python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "user.host").decode())' "$rw/peer-xattr" 2>&1)" = seen ] &&
		vu_pass guest-fs-xattr-host || vu_fail guest-fs-xattr-host "the host does not see user.host=seen"; }
expect guest-fs-lock peer-lock "OK lock"
expect guest-fs-mmap peer-mmap "OK mmap" &&
	{ [ "$(stat -c %s "$rw/peer-mmap")" = 1048576 ] && vu_pass guest-fs-mmap-host ||
		vu_fail guest-fs-mmap-host "host size $(stat -c %s "$rw/peer-mmap")"; }
if expect guest-fs-many-files many "3000 3000" 120; then
	n=$(find "$rw/many" -type f | wc -l)
	[ "$n" = 3000 ] && vu_pass guest-fs-many-files-host || vu_fail guest-fs-many-files-host "the host has $n"
fi
if vu_wait_serial 'GUEST-RESULT: big ' 180; then
	read -r gsum rsum t0 t1 <<< "$(vu_guest_result big)"
	hsum=$(md5sum < "$rw/big" | cut -c1-32)
	echo "# 64 MiB written by the guest in $(awk "BEGIN { print $t1 - $t0 }") s (TCG)"
	[ "$gsum" = "$hsum" ] && [ "$rsum" = "$hsum" ] && vu_pass guest-fs-large-file ||
		vu_fail guest-fs-large-file "guest md5 $gsum, read back $rsum, host $hsum"
else
	vu_fail guest-fs-large-file "$VU_WHY"
fi
if vu_wait_serial 'GUEST-RESULT: writers ' 60; then
	want=$(for w in 1 2 3 4; do i=0; while [ $i -lt 200 ]; do echo "writer $w line $i"; i=$((i + 1)); done; done | md5sum | cut -c1-32)
	host=$(cat "$rw/w1" "$rw/w2" "$rw/w3" "$rw/w4" | md5sum | cut -c1-32)
	[ "$(vu_guest_result writers)" = "$want" ] && [ "$host" = "$want" ] && vu_pass guest-fs-concurrent-writers ||
		vu_fail guest-fs-concurrent-writers "guest $(vu_guest_result writers), host $host, want $want"
else
	vu_fail guest-fs-concurrent-writers "$VU_WHY"
fi
expect guest-fs-user user "1000:1000 1 755" &&
	{ [ "$(stat -c %u:%g "$rw/users/by-1000")" = 1000:1000 ] && [ "$(stat -c %a "$rw/users/suid")" = 755 ] &&
		vu_pass guest-fs-user-host ||
		vu_fail guest-fs-user-host "host: $(stat -c '%n %u:%g %a' "$rw/users/by-1000" "$rw/users/suid" | tr '\n' ' ')"; }
expect guest-fs-escape escape "0 0" &&
	{ [ ! -e "$rw/blockdev" ] && [ "$(readlink "$rw/out-rel")" = ../outside ] && vu_pass guest-fs-escape-host ||
		vu_fail guest-fs-escape-host "a device node exists, or the symlink is not as made"; }
expect guest-fs-readonly ro "read-only $$" &&
	{ [ ! -e "$ro/new" ] && [ "$(cat "$ro/keep")" = "read-only $$" ] && vu_pass guest-fs-readonly-host ||
		vu_fail guest-fs-readonly-host "the read-only share changed"; }
if expect guest-fs-cache-never-before nc-before "version 1"; then
	echo "version 2" > "$nc/changing"
	: > "$nc/go"
	expect guest-fs-cache-never nc-after "version 2"
fi
if vu_wait_serial 'GUEST-RESULT: synced ' 60; then
	gsum=$(vu_guest_result synced)
	# The VM saved to a file (each back-end's state too), then continued: the guest's
	# inodes and open files stay through the stop (QEMU's SET_STATUS(0)).
	if ! vu_migrate "file:$VU_TMP/saved.state" || ! vu_wait_migration 'completed|failed|cancelled' 120 ||
	   [ "$VU_MIG_STATUS" != completed ]; then
		vu_fail guest-fs-save-and-cont "save: ${VU_WHY:-status $VU_MIG_STATUS}"
	elif ! vu_qmp cont > /dev/null || ! vu_wait_running 10; then
		vu_fail guest-fs-save-and-cont "saved, but the VM does not run again: $VU_WHY"
	else
		: > "$rw/resumed"
		if ! vu_wait_serial 'GUEST-RESULT: resumed' 60; then
			vu_fail guest-fs-save-and-cont "$VU_WHY"
		elif [ "$(vu_guest_result resumed)" != "$gsum 1 version 2" ] || [ "$(cat "$rw/after-cont")" != "after cont" ]; then
			vu_fail guest-fs-save-and-cont "after cont the guest saw '$(vu_guest_result resumed)', want '$gsum 1 version 2'"
		elif [ "$(grep -c 'device state saved' "$VU_TMP"/fs-*.log | awk -F: '{ s += $2 } END { print s }')" != 3 ]; then
			vu_fail guest-fs-save-and-cont "not every back-end saved its state: $(grep -h 'device state' "$VU_TMP"/fs-*.log)"
		else
			vu_pass guest-fs-save-and-cont
		fi
	fi
	if vu_sigterm_backend fs-rw; then
		hsum=$(md5sum < "$rw/acked" | cut -c1-32)
		[ "$gsum" = "$hsum" ] && vu_pass guest-fs-sigterm ||
			vu_fail guest-fs-sigterm "the guest synced md5 $gsum, the host has $hsum"
	else
		vu_fail guest-fs-sigterm "$VU_WHY"
	fi
else
	vu_fail guest-fs-sigterm "$VU_WHY"
fi
for b in fs-ro fs-nc; do
	grep -q 'is not allowed' "$VU_TMP/$b.log" && vu_fail guest-fs-sandbox "$b: $(grep 'not allowed' "$VU_TMP/$b.log")"
done
grep -q 'sandbox: namespace' "$VU_TMP/fs-rw.log" && ! grep -q 'is not allowed' "$VU_TMP/fs-rw.log" &&
	vu_pass guest-fs-sandbox || vu_fail guest-fs-sandbox "$(grep sandbox "$VU_TMP/fs-rw.log")"
# The guest's kernel left the setuid kill to the back-end (guest-fs-user saw it done), as root took its ids.
flags=$(sed -n 's/.*FUSE 7\.[0-9]*, flags \(0x[0-9a-f]*\).*/\1/p' "$VU_TMP/fs-rw.log" | head -n 1)
grep -q "requests run with the guest's uid and gid" "$VU_TMP/fs-rw.log" && (( ${flags:-0} & 0x10000000 )) &&
	vu_pass guest-fs-killpriv-v2 || vu_fail guest-fs-killpriv-v2 "INIT flags ${flags:-none}, or the guest's ids not taken"

vu_stop_qemu 5
echo "# QEMU exit status $VU_STATUS; t-fs took $(vu_since "$t_start") s"
