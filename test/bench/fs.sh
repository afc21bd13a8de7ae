#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# vhost-user-fs against the share a user would otherwise use here, QEMU's built-in
# virtio-9p (-virtfs local, 9p2000.L, msize 512 KiB), with the same guest (QEMU TCG,
# the Debian generic kernel: the cloud kernel has no 9p) on the same host directory:
#   metadata  create + stat + unlink of BENCH_FS_FILES (default 1000) small files
#   write     a 64 MiB file written sequentially (1 MiB blocks, fsync at the end)
#   read      the same file read back after the guest dropped its caches
# Each is timed in the guest (/proc/uptime, 10 ms) and shown with the vhostbox/9p
# ratio (higher is better for vhostbox); the target is 2x on each. vhostbox runs twice:
# with its defaults (--cache=auto, 4 worker threads) and with --cache=never (no guest
# page cache, as 9p's default cache=none), plus BENCH_FS_ARGS. BENCH_ROUNDS (default 1) boots of
# each, the median shown. TCG makes the guest's own work a large part of every
# number: the ratios understate what a KVM guest would see. So the back-end's own CPU
# time for each phase is measured too (the run time of all its threads, from schedstat),
# with its share of the phase's time: how much of each figure vhostbox itself decides.
# 9p's server has no such figure here: under TCG QEMU runs it in the vCPU thread (no
# ioeventfd without KVM), inseparable from the guest's own work.
set -u
cd "$(dirname "$0")/../.." || exit 1
VU_KERNEL=${VU_KERNEL:-$(ls /boot/vmlinuz-*-amd64 2>/dev/null | grep -v cloud | sort -V | tail -n 1)}
export VU_KERNEL VHOSTBOX=${VHOSTBOX:-$PWD/vhostbox}
. test/guest/lib.sh
ROUNDS=${BENCH_ROUNDS:-1}
FILES=${BENCH_FS_FILES:-1000}

[ -n "$VU_KERNEL" ] || { echo "SKIP: fs bench: no generic kernel (linux-image-amd64) for 9p"; exit 0; }
vu_check_qemu || { echo "SKIP: fs bench: $VU_WHY"; exit 0; }
vu_initramfs virtio_pci virtiofs 9p 9pnet_virtio || { echo "SKIP: fs bench: $VU_WHY"; exit 0; }
vu_vhostbox_has fs || { echo "SKIP: fs bench: $VHOSTBOX has no fs"; exit 0; }

cat > "$VU_TMP/guest.sh" <<EOF
FILES=$FILES
EOF
cat >> "$VU_TMP/guest.sh" <<'EOF'
up() { cut -d' ' -f1 /proc/uptime; }
# the host samples its CPU counters at each MARK: the guest idles a second after it
mark() { echo "GUEST-MARK $1"; sleep 1; }
mkdir -p /m
if grep -q virtiofs /proc/cmdline; then
	mount -t virtiofs share /m || exit 1
else
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 share /m || exit 1
fi
times=
# timed PHASE: run it, add its seconds (guest clock) to $times, then MARK its end
timed() {
	local s e
	s=$(up); "$1"; e=$(up)
	times="$times $(awk "BEGIN { print $e - $s }")"
	mark "$1"
}
meta() {
	i=0; while [ $i -lt $FILES ]; do echo x > /m/meta/f$i; i=$((i + 1)); done
	i=0; while [ $i -lt $FILES ]; do stat /m/meta/f$i > /dev/null; i=$((i + 1)); done
	i=0; while [ $i -lt $FILES ]; do rm /m/meta/f$i; i=$((i + 1)); done
}
seq_write() { dd if=/dev/zero of=/m/big bs=1M count=64 conv=fsync 2>/dev/null; }
seq_read() { dd if=/m/big of=/dev/null bs=1M 2>/dev/null; }
mkdir /m/meta
mark start
timed meta
timed seq_write
echo 3 > /proc/sys/vm/drop_caches
mark dropped
timed seq_read
echo "GUEST-RESULT: bench$times"
rm -r /m/big /m/meta
umount /m
EOF

# run_ns PID: the run time so far (ns) of all threads of process PID
run_ns() {
	local t ns rest sum=0
	for t in /proc/"$1"/task/*; do
		read -r ns rest < "$t/schedstat" 2> /dev/null && sum=$((sum + ns))
	done
	echo "$sum"
}

# one KIND → "meta_s write_s read_s meta_ms write_ms read_ms" of one boot: guest-timed
# seconds, then the back-end's CPU milliseconds in each phase (0 for 9p)
one() {
	local share=$VU_TMP/share-$1 dev mark secs
	local -A ns=([start]=0 [meta]=0 [seq_write]=0 [dropped]=0 [seq_read]=0)
	rm -rf "$share" && mkdir -p "$share"
	if [ "$1" != 9p ]; then
		local cache=auto
		[ "$1" = vhostbox-never ] && cache=never
		# shellcheck disable=SC2086 # BENCH_FS_ARGS is split on purpose
		vu_start_backend fsb fs --shared-dir="$share" --cache=$cache ${BENCH_FS_ARGS:-} ||
			{ echo "0 0 0 0 0 0"; return; }
		# shellcheck disable=SC2054 # the commas are inside one QEMU argument
		dev=(-chardev "$(vu_chardev fsb)" -device vhost-user-fs-pci,chardev=fsb,tag=share)
		VU_KERNEL_ARGS=virtiofs
	else
		dev=(-virtfs "local,path=$share,mount_tag=share,security_model=none")
		VU_KERNEL_ARGS=
	fi
	VU_QEMU_TIMEOUT=600 vu_start_qemu "$VU_TMP/guest.sh" "${dev[@]}"
	# the back-end's counters at each mark; the windows between marks hold only its
	# idle wait besides the phase (no CPU)
	for mark in start meta seq_write dropped seq_read; do
		vu_wait_serial "GUEST-MARK $mark" 500 || break
		[ "$1" != 9p ] && ns[$mark]=$(run_ns "${VU_BACKEND_PID[fsb]}")
	done
	if vu_wait_serial 'GUEST-RESULT: bench ' 30; then
		secs=$(vu_guest_result bench)
		echo "$secs $(((ns[meta] - ns[start]) / 1000000)) $(((ns[seq_write] - ns[meta]) / 1000000))" \
		     "$(((ns[seq_read] - ns[dropped]) / 1000000))"
	else
		echo "0 0 0 0 0 0"
	fi
	vu_stop_qemu 5
	[ "$1" != 9p ] && vu_kill "${VU_BACKEND_PID[fsb]}"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : 0 }'; }

# med[KIND,COLUMN]: the median over the rounds of each of one's six columns
declare -A med
for kind in vhostbox vhostbox-never 9p; do
	runs=()
	for ((i = 0; i < ROUNDS; i++)); do
		runs+=("$(one $kind)")
	done
	for col in 1 2 3 4 5 6; do
		med[$kind,$col]=$(printf '%s\n' "${runs[@]}" | cut -d' ' -f$col | median)
	done
	echo "# $kind: metadata ${med[$kind,1]} s, write ${med[$kind,2]} s, read ${med[$kind,3]} s (guest-timed);" \
	     "vhostbox CPU in them ${med[$kind,4]}, ${med[$kind,5]}, ${med[$kind,6]} ms (medians)"
done

values() { local k c; for k in vhostbox vhostbox-never 9p; do for c in "$@"; do printf '%s ' "${med[$k,$c]}"; done; done; }
awk -v files="$FILES" -v t="$(values 1 2 3)" -v c="$(values 4 5 6)" 'BEGIN {
	split(t, s, " "); split(c, u, " ")
	printf "%-32s %10s %7s %14s %7s %10s\n", "guest (TCG), same directory", "vhostbox", "ratio",
	       "--cache=never", "ratio", "virtio-9p"
	row("metadata: create+stat+unlink/s", files * 3, 1)
	row("sequential write 64 MiB, MB/s", 67.108864, 2)
	row("sequential read 64 MiB, MB/s", 67.108864, 3)
	printf "\n%-32s %10s %7s %14s %7s\n", "vhostbox CPU in it, ms", "vhostbox", "share", "--cache=never", "share"
	cpu("metadata (" files * 3 " operations)", 1)
	cpu("sequential write 64 MiB", 2)
	cpu("sequential read 64 MiB", 3)
}
# s[k * 3 + i], u[k * 3 + i]: phase i (1 metadata, 2 write, 3 read) of kind k (0 vhostbox,
# 1 --cache=never, 2 9p), in guest seconds and in back-end CPU milliseconds
function rate(work, t) { return t > 0 ? work / t : 0 }
function row(name, work, i,   a, n, b) {
	a = rate(work, s[i]); n = rate(work, s[3 + i]); b = rate(work, s[6 + i])
	printf "%-32s %10.1f %6.2fx %14.1f %6.2fx %10.1f\n", name, a, (b > 0 ? a / b : 0), n, (b > 0 ? n / b : 0), b
}
function share(ms, secs) { return secs > 0 ? ms / (secs * 10) : 0 }
function cpu(name, i) {
	printf "%-32s %10d %6.1f%% %14d %6.1f%%\n", name, u[i], share(u[i], s[i]), u[3 + i], share(u[3 + i], s[3 + i])
}'
