#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vhost-user-blk through a live migration and a save/restore (issue 15: 2, 3).
# The guest (2 vCPUs, 2 queues, a back-end thread per queue) runs two loops the
# whole time:
#   - a reader: drops the page cache, reads one of two 8 MiB random patterns into
#     it (the back-end writes those guest pages, nobody else does; the freed pages
#     are reused pass after pass, holding the other pattern in between), checksums
#     the cached copy; when the host changes the phase word on the disk (while the
#     VM is stopped), it first checksums what the cache held from before: pages
#     the back-end wrote during precopy without marking them in the dirty log
#     would arrive stale on the destination and show here (with the buffer marking
#     in vu_vring_push switched off, this check fails);
#   - a writer: numbered 4 KiB blocks with O_DIRECT, each acknowledged on the
#     console after its write completed; every acknowledged block must be on the
#     image afterwards (checked on the host).
# 1. live: the source back-end and QEMU run with --lock=start; a second back-end
#    (new process, new socket) starts on the same image while the source still
#    holds its lock, then the destination QEMU with -incoming; the migration runs
#    throttled (max-bandwidth) until the guest has read the pattern several times
#    during precopy, then converges; pause-before-switchover lets the host set the
#    phase word while neither side runs;
# 2. save/restore: the destination VM migrated to a file, QEMU quit, a third
#    back-end, and a new QEMU restoring with -incoming file:.
# A back-end with the default --lock=open is refused while a device holds the lock.
# VU_PACKED=1 (t-migrate-blk-packed.sh): the same with packed virtqueues.
set -u
. "$(dirname "$0")/lib.sh"

t_start=$(vu_now)
# shellcheck disable=SC2034 # read by lib.sh
VU_QEMU_TIMEOUT=${VU_QEMU_TIMEOUT_MIGRATE:-400}
# Debian's kernels zero every page they allocate (init_on_alloc): that CPU write
# would make QEMU itself send a page-cache page again after the device filled it,
# hiding a missing mark in the back-end's log. Off, the device's write is the only one.
VU_KERNEL_ARGS="init_on_alloc=0 ${VU_KERNEL_ARGS:-}"
vu_require_guest guest-migrate-blk virtio_pci virtio_blk
[ -x "$VHOSTBOX" ] || { vu_fail guest-migrate-blk "no binary $VHOSTBOX"; exit 1; }
vu_vhostbox_has blk || vu_skip_all guest-migrate-blk "$VHOSTBOX was built without blk"
vu_qemu_has_device vhost-user-blk-pci || vu_skip_all guest-migrate-blk "$QEMU has no vhost-user-blk-pci"

img=$VU_TMP/disk.img
truncate -s 96M "$img"
PFIRST=16 PCOUNT=8       # MiB: the reader's two patterns, at 16 and 24 MiB
FLAG=8192                # 4 KiB block number (32 MiB) of the phase word
WFIRST=12288             # 4 KiB block numbers from 48 MiB on: the writer's
WCOUNT=12288
md5=()
for r in 0 1; do
	head -c $((PCOUNT << 20)) /dev/urandom > "$VU_TMP/pattern"
	dd if="$VU_TMP/pattern" of="$img" bs=1M seek=$((PFIRST + r * PCOUNT)) conv=notrunc 2>/dev/null
	md5[r]=$(md5sum < "$VU_TMP/pattern" | cut -c1-32)
done
rm -f "$VU_TMP/pattern"
blk_args=(--blk-file="$img" --lock=start --num-queues=2 --threads=2)
# shellcheck disable=SC2054 # commas inside QEMU arguments
qemu_args() { echo -smp 2 -chardev "socket,id=blk0,path=$(vu_socket "$1")" -device "vhost-user-blk-pci,chardev=blk0,num-queues=2$(vu_packed_opt)"; }

{
	echo "pfirst=$PFIRST pcount=$PCOUNT flag=$FLAG wfirst=$WFIRST wcount=$WCOUNT"
	cat <<'EOF'
wait_for /dev/vda || exit 1
phase() { dd if=/dev/vda bs=4096 skip=$flag count=1 iflag=direct 2>/dev/null | head -c 8 | tr -dc A-Z; }
# cached_md5 REGION: the md5 of pattern REGION (0 or 1) as the page cache has it.
cached_md5() { dd if=/dev/vda bs=1M skip=$((pfirst + $1 * pcount)) count=$pcount 2>/dev/null | md5sum | cut -c1-32; }
reader() {
	seen=$(phase) pass=0 r=0
	while :; do
		p=$(phase)
		if [ "$p" != "$seen" ]; then
			# The cache still holds what the last pass read, before the phase changed.
			echo "GUEST-RESULT: reader-$p $r $(cached_md5 $r) $pass"
			seen=$p
		fi
		echo 1 > /proc/sys/vm/drop_caches
		pass=$((pass + 1)) r=$((pass % 2))
		dd if=/dev/vda of=/dev/null bs=1M skip=$((pfirst + r * pcount)) count=$pcount 2>/dev/null
		echo "READ $pass $r $(cached_md5 $r)"
	done
}
echo "GUEST-RESULT: queues $(ls /sys/block/vda/mq | wc -l)"
guest_features
reader &
numbered_writes /dev/vda $wfirst $wcount &
wait
EOF
} > "$VU_TMP/guest.sh"

# Counts over one console.
reads() { tr -d '\r' < "$1" | grep -c '^READ '; }
# bad_reads FILE: READ lines whose checksum is not their pattern's.
bad_reads() { tr -d '\r' < "$1" | grep '^READ ' | grep -vcE " (0 ${md5[0]}|1 ${md5[1]})\$"; }
set_phase() { printf '%s' "$1" | dd of="$img" bs=4096 seek=$FLAG conv=notrunc,sync 2>/dev/null; }
# reader_result PHASE FILE: "region md5 pass" of the reader's check when it saw PHASE.
reader_result() { tr -d '\r' < "$2" | sed -n "s/^GUEST-RESULT: reader-$1 //p" | tail -n 1; }

# ---- 1. live migration ------------------------------------------------------------------
vu_start_backend src blk "${blk_args[@]}" || { vu_fail guest-migrate-blk "$VU_WHY"; exit 1; }
# shellcheck disable=SC2046
vu_start_source guest-migrate-blk GUEST-START $(qemu_args src)
vu_wait_count reads "$src_serial" 2 120 || { vu_fail guest-migrate-blk "the reader before the migration: $VU_WHY"; exit 1; }
echo "# guest queues: $(vu_guest_result queues)"
vu_check_layout guest-migrate-blk

# The default lock refuses a second back-end while a device holds the image.
vu_lock_refused guest-migrate-blk blk --blk-file="$img"

# The destination's back-end: a new process on the same image, the source still serving.
if ! vu_start_backend dst blk "${blk_args[@]}"; then
	vu_fail guest-migrate-blk-handover "the destination back-end did not start beside the source: $VU_WHY"
	exit 1
fi
# shellcheck disable=SC2046
vu_start_incoming "$VU_TMP/guest.sh" $(qemu_args dst)
dst_qmp=$VU_QMP dst_serial=$VU_SERIAL dst_pid=$VU_QEMU_PID

VU_QMP=$src_qmp VU_SERIAL=$src_serial VU_QEMU_PID=$src_pid
reads_before=$(reads "$src_serial")
t_mig=$(vu_now)
# Throttled, and too little downtime allowed to converge while the guest reads.
if ! vu_migrate "unix:$VU_TMP/migrate.sock" '{"max-bandwidth": 8000000, "downtime-limit": 100}' \
	pause-before-switchover; then
	vu_fail guest-migrate-blk "migrate: $VU_WHY"
	exit 1
fi
# Precopy, throttled, until the guest re-read the pattern 3 times while its pages were being
# sent and QEMU synced the dirty log 3 times; then let it converge.
end=$(($(vu_now) + 120000000)) syncs=0
while :; do
	syncs=$(vu_qmp query-migrate | vu_json 'd.get("ram", {}).get("dirty-sync-count", 0)')
	st=$(vu_qmp query-migrate | vu_json 'd.get("status")')
	[ "$st" != active ] && break
	[ "${syncs:-0}" -ge 3 ] && [ $(($(reads "$src_serial") - reads_before)) -ge 3 ] && break
	[ "$(vu_now)" -ge "$end" ] && break
	sleep 0.5
done
precopy_reads=$(($(reads "$src_serial") - reads_before))
echo "# precopy: status $st after $(vu_since "$t_mig") s throttled, $syncs dirty-log syncs, $precopy_reads reader passes"
vu_qmp migrate-set-parameters '{"max-bandwidth": 1000000000, "downtime-limit": 2000}' > /dev/null
if ! vu_wait_migration 'pre-switchover|failed|cancelled' 180 || [ "$VU_MIG_STATUS" != pre-switchover ]; then
	vu_fail guest-migrate-blk "no switch-over: ${VU_WHY:-status $VU_MIG_STATUS}: $(vu_qmp query-migrate 2>&1 | head -c 300)"
	exit 1
fi
# Neither side runs: the source's device is stopped (its back-end unlocked the image).
set_phase SWITCHED
src_acks=$(vu_acked_count "$src_serial")
vu_qmp migrate-continue '{"state": "pre-switchover"}' > /dev/null
if ! vu_wait_migration 'completed|failed|cancelled' 120 || [ "$VU_MIG_STATUS" != completed ]; then
	vu_fail guest-migrate-blk "after the switch-over: ${VU_WHY:-status $VU_MIG_STATUS}"
	exit 1
fi
info=$(vu_qmp query-migrate | vu_json '"%s ms total, %s ms down, %s MB sent, %s dirty syncs" % (d.get("total-time"), d.get("downtime"), d.get("ram", {}).get("transferred", 0) // 1000000, d.get("ram", {}).get("dirty-sync-count"))')
echo "# migration: $info"
VU_QMP=$dst_qmp VU_SERIAL=$dst_serial VU_QEMU_PID=$dst_pid
if ! vu_wait_running 60; then
	vu_fail guest-migrate-blk "destination: $VU_WHY"
	exit 1
fi
[ "$syncs" -ge 3 ] && [ "$precopy_reads" -ge 3 ] && vu_pass guest-migrate-blk-precopy-under-io ||
	vu_fail guest-migrate-blk-precopy-under-io "precopy ran $syncs dirty-log syncs and $precopy_reads reader passes (want 3 each)"

if vu_wait_serial 'GUEST-RESULT: reader-SWITCHED ' 90 && vu_wait_count vu_acked_count "$dst_serial" 20 90 &&
   vu_wait_count reads "$dst_serial" 2 90; then
	read -r r got pass <<< "$(reader_result SWITCHED "$dst_serial")"
	bad=$(($(bad_reads "$src_serial") + $(bad_reads "$dst_serial")))
	if [ "$got" = "${md5[r]}" ] && [ "$bad" = 0 ]; then
		vu_pass guest-migrate-blk-reader
	else
		vu_fail guest-migrate-blk-reader "pattern $r in the page cache, read before the switch-over, has md5 $got after it (want ${md5[r]}); $bad passes read something else"
	fi
	echo "# reader: $(reads "$src_serial") passes on the source, $(reads "$dst_serial") on the destination; the checked cache was filled by pass $pass"
else
	vu_fail guest-migrate-blk-reader "the guest on the destination: $VU_WHY"
fi
grep -q 'unlocked' "$VU_TMP/src.log" && grep -q 'locked (the front-end started' "$VU_TMP/dst.log" &&
	vu_pass guest-migrate-blk-handover ||
	vu_fail guest-migrate-blk-handover "source: '$(grep -m1 unlocked "$VU_TMP/src.log")', destination: '$(grep -m1 'locked (' "$VU_TMP/dst.log")'"
vu_migrated_writes guest-migrate-blk "$img" "$src_acks" "$dst_serial"
VU_QMP=$src_qmp VU_QEMU_PID=$src_pid vu_stop_qemu 5

# ---- 2. save and restore ----------------------------------------------------------------
if ! vu_migrate "file:$VU_TMP/vm.state" || ! vu_wait_migration 'completed|failed|cancelled' 120 ||
   [ "$VU_MIG_STATUS" != completed ]; then
	vu_fail guest-migrate-blk-save "${VU_WHY:-status $VU_MIG_STATUS}"
	exit 1
fi
echo "# saved $(($(stat -c %s "$VU_TMP/vm.state") >> 20)) MiB"
vu_pass guest-migrate-blk-save
vu_stop_qemu 5
saved_acks=$(vu_acked_count "$dst_serial")
set_phase RESTORED
vu_start_backend rst blk "${blk_args[@]}" || { vu_fail guest-migrate-blk-restore "$VU_WHY"; exit 1; }
# shellcheck disable=SC2046
VU_QEMU_INCOMING="file:$VU_TMP/vm.state" vu_start_qemu "$VU_TMP/guest.sh" $(qemu_args rst)
rst_serial=$VU_SERIAL
if vu_wait_running 60 && vu_wait_serial 'GUEST-RESULT: reader-RESTORED ' 90 &&
   vu_wait_count vu_acked_count "$rst_serial" 20 90 && vu_wait_count reads "$rst_serial" 2 90; then
	read -r r got pass <<< "$(reader_result RESTORED "$rst_serial")"
	bad=$(bad_reads "$rst_serial")
	read -r n_acked n_bad rest <<< "$(vu_acked_on_disk "$img" "$VU_TMP"/serial.*.log)"
	if [ "$got" = "${md5[r]}" ] && [ "$bad" = 0 ] && [ "$n_bad" = 0 ]; then
		vu_pass guest-migrate-blk-restore
	else
		vu_fail guest-migrate-blk-restore "pattern $r cached before the save: md5 $got (want ${md5[r]}); $bad bad passes; $n_bad of $n_acked acknowledged blocks wrong: $rest"
	fi
	echo "# restore: $saved_acks blocks acknowledged before the save, $(vu_acked_count "$rst_serial") after the restore"
else
	vu_fail guest-migrate-blk-restore "$VU_WHY"
fi
vu_stop_qemu 5

vu_end_backends guest-migrate-blk src dst rst
echo "# t-migrate-blk took $(vu_since "$t_start") s"
