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
# number: the ratios understate what a KVM guest would see.
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
mkdir -p /m
if grep -q virtiofs /proc/cmdline; then
	mount -t virtiofs share /m || exit 1
else
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 share /m || exit 1
fi
mkdir /m/meta
t0=$(up)
i=0; while [ $i -lt $FILES ]; do echo x > /m/meta/f$i; i=$((i + 1)); done
i=0; while [ $i -lt $FILES ]; do stat /m/meta/f$i > /dev/null; i=$((i + 1)); done
i=0; while [ $i -lt $FILES ]; do rm /m/meta/f$i; i=$((i + 1)); done
t1=$(up)
dd if=/dev/zero of=/m/big bs=1M count=64 conv=fsync 2>/dev/null
t2=$(up)
echo 3 > /proc/sys/vm/drop_caches
dd if=/m/big of=/dev/null bs=1M 2>/dev/null
t3=$(up)
echo "GUEST-RESULT: bench $(awk "BEGIN { print $t1 - $t0, $t2 - $t1, $t3 - $t2 }")"
rm -r /m/big /m/meta
umount /m
EOF

# one KIND → "meta_s write_s read_s" of one boot
one() {
	local share=$VU_TMP/share-$1 dev
	rm -rf "$share" && mkdir -p "$share"
	if [ "$1" != 9p ]; then
		local cache=auto
		[ "$1" = vhostbox-never ] && cache=never
		# shellcheck disable=SC2086 # BENCH_FS_ARGS is split on purpose
		vu_start_backend fsb fs --shared-dir="$share" --cache=$cache ${BENCH_FS_ARGS:-} ||
			{ echo "0 0 0"; return; }
		# shellcheck disable=SC2054 # the commas are inside one QEMU argument
		dev=(-chardev "$(vu_chardev fsb)" -device vhost-user-fs-pci,chardev=fsb,tag=share)
		VU_KERNEL_ARGS=virtiofs
	else
		dev=(-virtfs "local,path=$share,mount_tag=share,security_model=none")
		VU_KERNEL_ARGS=
	fi
	VU_QEMU_TIMEOUT=600 vu_start_qemu "$VU_TMP/guest.sh" "${dev[@]}"
	if vu_wait_serial 'GUEST-RESULT: bench ' 500; then
		vu_guest_result bench
	else
		echo "0 0 0"
	fi
	vu_stop_qemu 5
	[ "$1" != 9p ] && vu_kill "${VU_BACKEND_PID[fsb]}"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : 0 }'; }

declare -A m w r
for kind in vhostbox vhostbox-never 9p; do
	ms=() ws=() rs=()
	for ((i = 0; i < ROUNDS; i++)); do
		read -r a b c <<< "$(one $kind)"
		ms+=("$a"); ws+=("$b"); rs+=("$c")
	done
	m[$kind]=$(printf '%s\n' "${ms[@]}" | median)
	w[$kind]=$(printf '%s\n' "${ws[@]}" | median)
	r[$kind]=$(printf '%s\n' "${rs[@]}" | median)
	echo "# $kind: metadata ${m[$kind]} s, write ${w[$kind]} s, read ${r[$kind]} s (guest-timed medians)"
done

awk -v files="$FILES" -v vm="${m[vhostbox]}" -v vw="${w[vhostbox]}" -v vr="${r[vhostbox]}" \
	-v nm="${m[vhostbox-never]}" -v nw="${w[vhostbox-never]}" -v nr="${r[vhostbox-never]}" \
	-v pm="${m[9p]}" -v pw="${w[9p]}" -v pr="${r[9p]}" 'BEGIN {
	printf "%-32s %10s %7s %14s %7s %10s\n", "guest (TCG), same directory", "vhostbox", "ratio",
	       "--cache=never", "ratio", "virtio-9p"
	row("metadata: create+stat+unlink/s", files * 3, vm, nm, pm)
	row("sequential write 64 MiB, MB/s", 67.108864, vw, nw, pw)
	row("sequential read 64 MiB, MB/s", 67.108864, vr, nr, pr)
}
function rate(work, t) { return t > 0 ? work / t : 0 }
function row(name, work, tv, tn, tp,   a, n, b) {
	a = rate(work, tv); n = rate(work, tn); b = rate(work, tp)
	printf "%-32s %10.1f %6.2fx %14.1f %6.2fx %10.1f\n", name, a, (b > 0 ? a / b : 0), n, (b > 0 ? n / b : 0), b
}'
