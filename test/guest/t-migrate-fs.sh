#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vhost-user-fs through a live migration (issue 19, item 6): the guest mounts the
# share, keeps a file open for writing (fd 3), a directory known (its shell's working
# directory) and a file open that it unlinked (fd 4), and writes numbered lines
# through fd 3 the whole time, each acknowledged on the console after its write
# returned (no writeback cache: each write reached the back-end). A second back-end
# (new process, new socket) serves the same directory for the destination QEMU; the
# source's back-end saves where each inode and open file is (DEVICE_STATE), the
# destination's opens them again. On the destination the guest goes on writing
# through fd 3, reads files it read before, stats and lists through the known
# directory, creates a file; the unlinked file is lost (its reads fail, nothing
# else does). The host checks the file holds every acknowledged line in order. The
# guest reboots on the destination: the new driver's INIT starts afresh and sees the
# files as the host has them. Both back-ends exit 0 at SIGTERM.
# VU_PACKED=1 (t-migrate-fs-packed.sh): the same with packed virtqueues.
set -u
. "$(dirname "$0")/lib.sh"

t_start=$(vu_now)
# shellcheck disable=SC2034 # read by lib.sh
VU_QEMU_TIMEOUT=${VU_QEMU_TIMEOUT_MIGRATE:-300}
vu_require_guest guest-migrate-fs virtio_pci virtiofs
[ -x "$VHOSTBOX" ] || { vu_fail guest-migrate-fs "no binary $VHOSTBOX"; exit 1; }
vu_vhostbox_has fs || vu_skip_all guest-migrate-fs "$VHOSTBOX was built without fs"
vu_qemu_has_device vhost-user-fs-pci || vu_skip_all guest-migrate-fs "$QEMU has no vhost-user-fs-pci"

share=$VU_TMP/share
mkdir -p "$share/known"
echo "before $$" > "$share/before"
echo "inside $$" > "$share/known/inside"
echo "unlinked $$" > "$share/unlinked"
: > "$share/f"
fs_args=(--shared-dir="$share" --thread-pool-size=2)
# shellcheck disable=SC2054 # commas inside QEMU arguments
qemu_args() { echo -chardev "socket,id=fs0,path=$(vu_socket "$1")" -device "vhost-user-fs-pci,chardev=fs0,tag=mig$(vu_packed_opt)"; }

cat > "$VU_TMP/guest.sh" <<'EOF'
r() { echo "GUEST-RESULT: $*"; }
mkdir -p /m && mount -t virtiofs mig /m || { r ready mount failed; exit 1; }
if [ -e /m/booted ]; then
	# After the reboot on the destination: a new driver (INIT), the files as the host has them.
	r rebooted "$(cat /m/before)|$(ls /m/known | tr '\n' ,)|$(tail -n 1 /m/f)"
	exit 0
fi
: > /m/booted
exec 3<>/m/f
exec 4</m/unlinked && rm /m/unlinked
cd /m/known || exit 1
guest_features
r ready "$(cat /m/before)"
i=0
while :; do
	echo "line $i" >&3 || { r write-failed "$i"; exit 1; }
	echo "ACK $i"
	i=$((i + 1))
	if [ -e /m/go ]; then
		rm /m/go
		echo "created on the destination" > /m/created
		r after "$(cat /m/before)|$(cat inside)|$(stat -c %s /m/known/inside)|$(ls | tr '\n' ,)|$(cat /m/created)"
		r lost "$(cat <&4 2>/dev/null || echo 'read failed')"
	fi
	if [ -e /m/reboot ]; then
		rm /m/reboot
		r stopped "$((i - 1))"
		reboot -f
	fi
	sleep 0.1
done
EOF

vu_start_backend src fs "${fs_args[@]}" || { vu_fail guest-migrate-fs "$VU_WHY"; exit 1; }
# shellcheck disable=SC2046
vu_start_source guest-migrate-fs 'GUEST-RESULT: ready' $(qemu_args src)
[ "$(vu_guest_result ready)" = "before $$" ] || { vu_fail guest-migrate-fs "the guest read '$(vu_guest_result ready)'"; exit 1; }
vu_check_layout guest-migrate-fs

vu_start_backend dst fs "${fs_args[@]}" || { vu_fail guest-migrate-fs "destination back-end: $VU_WHY"; exit 1; }
# shellcheck disable=SC2046
VU_QEMU_REBOOT=1 vu_start_incoming "$VU_TMP/guest.sh" $(qemu_args dst)
dst_qmp=$VU_QMP dst_serial=$VU_SERIAL dst_pid=$VU_QEMU_PID

# Throttled, so that precopy lasts a few seconds while the guest writes through the device.
VU_QMP=$src_qmp VU_SERIAL=$src_serial VU_QEMU_PID=$src_pid
acks_before=$(vu_acked_count "$src_serial")
if ! vu_migrate "unix:$VU_TMP/migrate.sock" '{"max-bandwidth": 25000000}' ||
   ! vu_wait_migration 'completed|failed|cancelled' 180 || [ "$VU_MIG_STATUS" != completed ]; then
	vu_fail guest-migrate-fs "migrate: ${VU_WHY:-status $VU_MIG_STATUS}: $(vu_qmp query-migrate 2>&1 | head -c 300)"
	exit 1
fi
during=$(($(vu_acked_count "$src_serial") - acks_before))
[ "$during" -ge 5 ] && vu_pass guest-migrate-fs-completed ||
	vu_fail guest-migrate-fs-completed "only $during lines written during the migration"
info=$(vu_qmp query-migrate | vu_json '"%s ms total, %s ms down, %s MB sent" % (d.get("total-time"), d.get("downtime"), d.get("ram", {}).get("transferred", 0) // 1000000)')
echo "# migration: $info"
vu_stop_qemu 5
src_acks=$(vu_acked_count "$src_serial")

VU_QMP=$dst_qmp VU_SERIAL=$dst_serial VU_QEMU_PID=$dst_pid
if vu_wait_running 60 && vu_wait_count vu_acked_count "$dst_serial" 20 90; then
	vu_pass guest-migrate-fs-destination-writes
else
	vu_fail guest-migrate-fs-destination-writes "$VU_WHY"
fi
: > "$share/go"
if vu_wait_serial 'GUEST-RESULT: lost' 60; then
	want="before $$|inside $$|$(stat -c %s "$share/known/inside")|inside,|created on the destination"
	[ "$(vu_guest_result after)" = "$want" ] && [ "$(cat "$share/created" 2>/dev/null)" = "created on the destination" ] &&
		vu_pass guest-migrate-fs-known-paths ||
		vu_fail guest-migrate-fs-known-paths "the guest saw '$(vu_guest_result after)', want '$want'"
	[ "$(vu_guest_result lost)" = "read failed" ] && vu_pass guest-migrate-fs-unlinked-lost ||
		vu_fail guest-migrate-fs-unlinked-lost "the unlinked file read '$(vu_guest_result lost)' on the destination"
else
	vu_fail guest-migrate-fs-known-paths "$VU_WHY"
fi
vu_wait_count vu_acked_count "$dst_serial" "$(($(vu_acked_count "$dst_serial") + 10))" 30 ||
	vu_fail guest-migrate-fs-writes-after "$VU_WHY"
# The writer stops, the guest reboots on the destination: a new driver starts with INIT.
: > "$share/reboot"
vu_wait_serial 'GUEST-RESULT: stopped' 30 || vu_fail guest-migrate-fs-reboot "the writer did not stop: $VU_WHY"

# Every acknowledged line is in the file, in order, whichever back-end wrote it.
dst_acks=$(vu_acked_count "$dst_serial")
last=$(cat "$src_serial" "$dst_serial" | tr -d '\r' | sed -n 's/^ACK //p' | sort -n | tail -n 1)
lines=$(wc -l < "$share/f")
bad=$(awk '$0 != "line " NR - 1' "$share/f" | wc -l)
if [ "$bad" = 0 ] && [ -n "$last" ] && [ "$lines" = "$((last + 1))" ] && [ "$src_acks" -ge 20 ] && [ "$dst_acks" -ge 20 ]; then
	vu_pass guest-migrate-fs-open-file
else
	vu_fail guest-migrate-fs-open-file "$lines lines ($bad out of order), last acknowledged $last ($src_acks on the source, $dst_acks on the destination)"
fi
echo "# writer: $src_acks lines acknowledged on the source ($during during the migration), $dst_acks on the destination, $lines in the file"
if vu_wait_serial 'GUEST-RESULT: rebooted' 90; then
	want="before $$|inside,|line $last"
	[ "$(vu_guest_result rebooted)" = "$want" ] && vu_pass guest-migrate-fs-reboot ||
		vu_fail guest-migrate-fs-reboot "after the reboot the guest saw '$(vu_guest_result rebooted)', want '$want'"
else
	vu_fail guest-migrate-fs-reboot "$VU_WHY"
fi
vu_stop_qemu 5

why=""
grep -q 'device state saved' "$VU_TMP/src.log" || why+="the source saved no state; "
grep -q 'device state loaded' "$VU_TMP/dst.log" || why+="the destination loaded no state; "
[ -z "$why" ] && vu_pass guest-migrate-fs-state || vu_fail guest-migrate-fs-state "$why"
vu_end_backends guest-migrate-fs src dst
grep -h 'device state' "$VU_TMP"/src.log "$VU_TMP"/dst.log | sed 's/^/# /'
echo "# t-migrate-fs took $(vu_since "$t_start") s"
