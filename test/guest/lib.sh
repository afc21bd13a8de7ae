# SPDX-License-Identifier: GPL-2.0-or-later
#
# Library for guest tests (test/guest/t-*.sh) and the demo: a busybox initramfs
# with the Debian cloud kernel's virtio modules, QEMU under TCG with shared memfd
# memory (vhost-user needs it), a QMP helper, vhostbox back-ends, result lines.
#
# Sourcing it creates $VU_TMP (removed on exit) and an EXIT trap that kills every
# process started through it. A test typically does:
#
#   . "$(dirname "$0")/lib.sh"
#   vu_require_guest rng virtio_pci virtio_rng     # SKIP + exit unless QEMU/kernel usable
#   vu_start_backend rng0 rng || ...               # vhostbox rng --socket-path=$VU_TMP/rng0.sock
#   cat > "$VU_TMP/guest.sh" <<'EOF' ... EOF        # runs in the guest, prints GUEST-RESULT: lines
#   vu_start_qemu "$VU_TMP/guest.sh" -chardev "$(vu_chardev rng0)" -device vhost-user-rng-pci,chardev=rng0
#   vu_wait_serial 'GUEST-RESULT: sum ' 30 && v=$(vu_guest_result sum)
#   vu_stop_qemu
#
# Environment: VHOSTBOX (binary under test), QEMU (default qemu-system-x86_64),
# VU_KERNEL (kernel image; default the newest /boot/vmlinuz-*-cloud-amd64),
# VU_QEMU_TIMEOUT (hard cap on one QEMU's life, s), VU_KEEP=1 (keep $VU_TMP),
# VU_QEMU_ARGS (extra QEMU arguments, split on blanks), VU_KERNEL_ARGS (appended to
# the kernel command line), VU_QEMU_REBOOT=1 (a guest reboot reboots instead of
# ending QEMU), VU_QEMU_INCOMING=URI (vu_start_qemu starts a migration's
# destination, or a restore: -incoming URI).
# QEMU runs with -nodefaults: add -device VGA for a test that wants screendump.

# Variables set here (VU_STATUS, VU_BACKEND_PID...) are read by the tests.
# shellcheck disable=SC2034

VU_GUEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$VU_GUEST_DIR/../.." && pwd)
VHOSTBOX=${VHOSTBOX:-$REPO/vhostbox}
QEMU=${QEMU:-qemu-system-x86_64}
VU_CACHE=${VU_CACHE:-$REPO/build/guest}
VU_QEMU_TIMEOUT=${VU_QEMU_TIMEOUT:-120}
VU_PIDS=()          # everything to kill on exit
VU_FAILED=0         # set by vu_fail: logs are shown on exit
VU_WHY=""           # why the last helper returned 1
VU_NQEMU=0
VU_NADDED=0         # archives vu_initramfs_add made
VU_NETNS_ADDED=()   # network namespaces to delete on exit
declare -A VU_BACKEND_PID=()

# ---- ring layout ----------------------------------------------------------------------
# VU_PACKED=1 runs a test with packed virtqueues: its virtio devices get packed=on
# (vu_packed_opt), its result names the suffix -packed, and vu_check_layout checks
# that the guest drivers negotiated the layout asked for (the t-*-packed.sh tests).
# QEMU's vhost-user-base devices (vhost-user-rng-pci, vhost-user-input-pci) give the
# guest the back-end's features as offered, whatever packed= says: with vhostbox
# offering VIRTIO_F_RING_PACKED they always run packed (their tests say so).
VU_PACKED=${VU_PACKED:-0}
VU_SUFFIX=""
[ "$VU_PACKED" = 1 ] && VU_SUFFIX=-packed
# vu_packed_opt: what to append to a -device argument for the layout.
vu_packed_opt() { [ "$VU_PACKED" = 1 ] && echo ",packed=on"; }
# vu_check_layout NAME [COUNT [packed]]: PASS NAME-layout if the guest's last
# "GUEST-RESULT: vfeatures" line (guest_features in init.sh) shows COUNT (default 1)
# virtio devices, all with VIRTIO_F_RING_PACKED (bit 34) when VU_PACKED=1 (or the
# third argument is "packed"), all without otherwise. The string's character i is bit i.
vu_check_layout() {
	local f n=0 bad=0 want=0
	{ [ "$VU_PACKED" = 1 ] || [ "${3:-}" = packed ]; } && want=1
	for f in $(vu_guest_result vfeatures); do
		n=$((n + 1))
		[ "${f:34:1}" = "$want" ] || bad=$((bad + 1))
	done
	if [ "$n" -ge "${2:-1}" ] && [ "$bad" = 0 ]; then
		vu_pass "$1-layout"
	else
		vu_fail "$1-layout" "the guest's virtio feature bits are '$(vu_guest_result vfeatures)': want bit 34 = $want on ${2:-1}"
	fi
}

# ---- results: the lines test/run.sh counts ---------------------------------------
vu_pass() { echo "PASS: $1$VU_SUFFIX"; }
vu_fail() { echo "FAIL: $1$VU_SUFFIX: $2"; VU_FAILED=1; }
vu_skip() { echo "SKIP: $1$VU_SUFFIX: $2"; }
# vu_skip_all NAME WHY: report the whole test as skipped and stop.
vu_skip_all() { vu_skip "$1" "$2"; exit 0; }

# ---- time ---------------------------------------------------------------------------
vu_now() { local t=${EPOCHREALTIME/[.,]/}; echo "$t"; }   # microseconds
# vu_since START: seconds since a vu_now stamp, as S.mmm
vu_since() {
	local ms=$((($(vu_now) - $1) / 1000))
	printf '%d.%03d\n' $((ms / 1000)) $((ms % 1000))
}

# ---- processes --------------------------------------------------------------------
vu_track() { VU_PIDS+=("$1"); }
# vu_reap PID: collect a finished child's status into VU_STATUS and forget it, so the
# cleanup never signals a recycled pid.
vu_reap() {
	local i
	wait "$1" 2>/dev/null
	VU_STATUS=$?
	for i in "${!VU_PIDS[@]}"; do [ "${VU_PIDS[i]}" = "$1" ] && unset "VU_PIDS[i]"; done
	return 0
}

# vu_alive PID: running (a zombie counts as gone).
vu_alive() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[ "${s%% *}" != Z ]
}

# vu_wait_exit PID SECS: wait (bounded) for a child of this shell to end; on success
# its exit status is in VU_STATUS. Returns 1 if it is still running after SECS.
vu_wait_exit() {
	local pid=$1 end=$(($(vu_now) + $(vu_secs_us "$2")))
	while vu_alive "$pid"; do
		[ "$(vu_now)" -ge "$end" ] && return 1
		sleep 0.02
	done
	vu_reap "$pid"
}
# vu_secs_us 1.5 → 1500000
vu_secs_us() {
	local i=${1%.*} f=${1#*.}
	[[ $1 == *.* ]] || f=0
	f=${f}000000
	echo $((10#${i:-0} * 1000000 + 10#${f:0:6}))
}

# vu_kill PID...: TERM, up to 3 s grace, then KILL; reaps them.
vu_kill() {
	local pid end=$(($(vu_now) + 3000000))
	for pid; do vu_alive "$pid" && kill -TERM "$pid" 2>/dev/null; done
	for pid; do
		while vu_alive "$pid" && [ "$(vu_now)" -lt "$end" ]; do sleep 0.05; done
		vu_alive "$pid" && kill -KILL "$pid" 2>/dev/null
		vu_reap "$pid"
	done
	return 0
}

# Tails of every log in $VU_TMP, prefixed so run.sh does not count them as results.
vu_show_logs() {
	local f
	for f in "$VU_TMP"/*.log; do
		[ -s "$f" ] || continue
		echo "# ---- ${f##*/} (last 40 lines)"
		tail -n 40 "$f" | tr -d '\r' | sed 's/^/# /'
	done
}

vu_cleanup() {
	local rc=$?
	trap - EXIT
	[ "$rc" = 0 ] && [ "$VU_FAILED" = 1 ] && rc=1
	local pids=("${VU_PIDS[@]}") i
	# Newest first, one at a time: QEMU goes before the back-ends it is connected to.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do vu_kill "${pids[i]}"; done
	for i in "${VU_NETNS_ADDED[@]}"; do ip netns del "$i" 2>/dev/null; done
	[ "$VU_FAILED" = 1 ] && vu_show_logs
	if [ "${VU_KEEP:-0}" = 1 ]; then echo "# kept $VU_TMP" >&2; else rm -rf "$VU_TMP"; fi
	exit "$rc"
}

VU_TMP=$(mktemp -d "${TMPDIR:-/tmp}/vhostbox-guest.XXXXXX") || exit 1
trap vu_cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- requirements -----------------------------------------------------------------
vu_check_qemu() {
	local v
	command -v "$QEMU" >/dev/null 2>&1 || { VU_WHY="$QEMU not found (run test/install-deps.sh)"; return 1; }
	v=$("$QEMU" --version 2>/dev/null | sed -n '1s/.*version \([0-9]*\)\..*/\1/p')
	[ "${v:-0}" -ge 8 ] || { VU_WHY="$QEMU is version ${v:-unknown}, vhost-user under TCG needs >= 8"; return 1; }
}

# vu_qemu_has_device NAME: this QEMU knows -device NAME.
vu_qemu_has_device() {
	"$QEMU" -device help 2>/dev/null | grep -q "name \"$1\""
}

# vu_vhostbox_has PERSONALITY: $VHOSTBOX was built with it.
vu_vhostbox_has() {
	"$VHOSTBOX" --list 2>/dev/null | awk '{ print $1 }' | grep -qx "$1"
}

# vu_require_guest NAME MODULE...: SKIP NAME and exit unless QEMU >= 8, the kernel,
# its modules and busybox are there; builds the initramfs (vu_initramfs MODULE...).
vu_require_guest() {
	local name=$1; shift
	vu_check_qemu || vu_skip_all "$name" "$VU_WHY"
	vu_initramfs "$@" || vu_skip_all "$name" "$VU_WHY"
}

# ---- initramfs ------------------------------------------------------------------------
# Sets VU_KERNEL and VU_KVER.
vu_find_kernel() {
	if [ -z "${VU_KERNEL:-}" ]; then
		VU_KERNEL=$(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1)
		[ -n "$VU_KERNEL" ] || VU_KERNEL=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
	fi
	[ -r "${VU_KERNEL:-}" ] || { VU_WHY="no readable kernel in /boot (install linux-image-cloud-amd64)"; return 1; }
	VU_KVER=${VU_KVER:-${VU_KERNEL##*/vmlinuz-}}
	[ -f "/lib/modules/$VU_KVER/modules.dep" ] || { VU_WHY="no /lib/modules/$VU_KVER/modules.dep"; return 1; }
}

# vu_resolve_modules MODDIR NAME...: prints "load PATH" for each wanted module after
# its dependencies (each once), "builtin NAME" or "missing NAME" for the others.
# Names match with - and _ treated alike, as modprobe does.
vu_resolve_modules() {
	local moddir=$1; shift
	awk -v want="$*" '
	function norm(s) { sub(/.*\//, "", s); sub(/\.ko(\.(xz|zst|gz))?$/, "", s); gsub(/-/, "_", s); return s }
	function visit(p,   i, n, d) {
		if (p in done) return
		done[p] = 1
		n = split(deps[p], d, " ")
		for (i = 1; i <= n; i++) visit(d[i])
		print "load", p
	}
	FILENAME ~ /builtin$/ { builtin[norm($1)] = 1; next }
	{ p = $1; sub(/:$/, "", p); $1 = ""; deps[p] = $0; path[norm(p)] = p }
	END {
		n = split(want, w, " ")
		for (i = 1; i <= n; i++) {
			m = norm(w[i])
			if (m in path) visit(path[m])
			else print (m in builtin ? "builtin" : "missing"), w[i]
		}
	}' "$moddir/modules.builtin" "$moddir/modules.dep"
}

# vu_build_initramfs OUT BUSYBOX MODDIR MODULE...: the uncompressed newc archive
# (uncompressed because unpacking gzip under TCG costs more than copying).
vu_build_initramfs() {
	local out=$1 bb=$2 moddir=$3 root=$VU_TMP/initramfs kind p name a
	shift 3
	rm -rf "$root"
	mkdir -p "$root"/bin "$root"/sbin "$root"/usr/bin "$root"/usr/sbin "$root"/dev \
		"$root"/proc "$root"/sys "$root"/tmp "$root"/lib/modules "$VU_CACHE" || return 1
	cp "$bb" "$root/bin/busybox" && cp "$VU_GUEST_DIR/init.sh" "$root/init" || return 1
	chmod 755 "$root/init"
	for a in $("$bb" --list-full); do
		[ "$a" = bin/busybox ] || ln -sf /bin/busybox "$root/$a"
	done
	: > "$root/lib/modules/load.list"
	: > "$out.notes"
	while read -r kind p; do
		case $kind in
		load)
			# busybox insmod cannot read compressed modules: unpack them here.
			name=${p##*/}; name=${name%.xz}; name=${name%.zst}; name=${name%.gz}
			case $p in
			*.xz) xz -dc "$moddir/$p" ;;
			*.zst) zstd -dqc "$moddir/$p" ;;
			*.gz) gzip -dc "$moddir/$p" ;;
			*) cat "$moddir/$p" ;;
			esac > "$root/lib/modules/$name" || return 1
			echo "$name" >> "$root/lib/modules/load.list" ;;
		builtin) ;;
		*) echo "# note: module $p is not in $moddir, skipped" >> "$out.notes" ;;
		esac
	done < <(vu_resolve_modules "$moddir" "$@")
	(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
		> "$out.tmp.$$" && mv "$out.tmp.$$" "$out"
}

# vu_initramfs MODULE...: build, or reuse from $VU_CACHE, the initramfs with busybox,
# init.sh as /init and MODULE... (plus dependencies; missing ones skipped with a note
# on stderr). The cache key covers the kernel, module list, busybox, init.sh and this
# file. Sets VU_INITRAMFS; returns 1 with VU_WHY set when something is missing.
vu_initramfs() {
	local bb moddir key out
	vu_find_kernel || return 1
	moddir=/lib/modules/$VU_KVER
	bb=$(command -v busybox) || { VU_WHY="no busybox (install busybox-static)"; return 1; }
	command -v cpio >/dev/null || { VU_WHY="no cpio (run test/install-deps.sh)"; return 1; }
	key=$({ echo "$VU_KVER $*"; stat -L -c '%s %Y' "$bb" "$moddir/modules.dep"
		cat "$VU_GUEST_DIR/init.sh" "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16)
	out=$VU_CACHE/base-$key.cpio
	if [ ! -f "$out" ]; then
		vu_build_initramfs "$out" "$bb" "$moddir" "$@" || { VU_WHY="building the initramfs failed"; return 1; }
	fi
	cat "$out.notes" >&2 2>/dev/null
	touch "$out" "$out.notes"
	# Drop archives unused for a day (stale keys after edits to this file or init.sh).
	find "$VU_CACHE" -maxdepth 1 -name 'base-*' -mmin +1440 -delete 2>/dev/null
	VU_INITRAMFS=$out
}

# vu_static_program SRC...: build the C files SRC... (the first names it; the tree's
# headers reachable as "test/...", "proto/...") as one static binary for the guest,
# cached in $VU_CACHE by their sources; sets VU_PROGRAM. Returns 1 with VU_WHY set when
# it cannot (no compiler, no static libc).
vu_static_program() {
	local out
	out=$VU_CACHE/$(basename "$1" .c)-$(cat "$@" | sha256sum | cut -c1-16)
	if [ ! -x "$out" ]; then
		mkdir -p "$VU_CACHE"
		if ! "${CC:-gcc}" -static -O2 -D_GNU_SOURCE -I"$REPO" -o "$out.tmp.$$" "$@" 2> "$VU_TMP/static-build.log"; then
			rm -f "$out.tmp.$$"
			VU_WHY="cannot build $* statically: $(head -c 300 "$VU_TMP/static-build.log")"
			return 1
		fi
		mv "$out.tmp.$$" "$out"
	fi
	VU_PROGRAM=$out
}

# vu_initramfs_add FILE [NAME]: the guest gets FILE as /NAME (default its basename), in
# an archive appended to a copy of VU_INITRAMFS (the cached base stays as it is).
vu_initramfs_add() {
	local d=$VU_TMP/initramfs-add.$((++VU_NADDED))
	mkdir -p "$d" && cp "$1" "$d/${2:-$(basename "$1")}" || return 1
	(cd "$d" && echo "${2:-$(basename "$1")}" | cpio -o -H newc -R 0:0 --quiet) > "$d.cpio" &&
		cat "$VU_INITRAMFS" "$d.cpio" > "$d.initramfs" || return 1
	VU_INITRAMFS=$d.initramfs
}

# ---- network namespaces -------------------------------------------------------------
# vu_netns_add NAME: create network namespace NAME with lo up, deleted on exit (with
# the interfaces in it). Returns 1 with VU_WHY set when it cannot.
vu_netns_add() {
	ip netns add "$1" 2>/dev/null || { VU_WHY="cannot create a network namespace (needs root and iproute2)"; return 1; }
	VU_NETNS_ADDED+=("$1")
	ip netns exec "$1" ip link set lo up
}

# ---- back-ends ------------------------------------------------------------------------
# vu_socket NAME: the socket path for back-end NAME (in VU_SOCKET_DIR, default
# $VU_TMP). vu_chardev NAME: the matching QEMU -chardev value (id=NAME).
vu_socket() { echo "${VU_SOCKET_DIR:-$VU_TMP}/$1.sock"; }
vu_chardev() { echo "socket,id=$1,path=$(vu_socket "$1")"; }

# vu_start_backend NAME PERSONALITY [ARG...]: start
#   $VHOSTBOX PERSONALITY --socket-path=$(vu_socket NAME) ARG...
# with output in $VU_TMP/NAME.log, and wait (5 s at most) for the socket to appear;
# inside the network namespace $VU_NETNS if that is set. The pid is in
# VU_BACKEND_PID[NAME]. Returns 1 with VU_WHY set on failure.
vu_start_backend() {
	local name=$1 pers=$2 sock end pid in_ns=()
	shift 2
	sock=$(vu_socket "$name")
	[ -n "${VU_NETNS:-}" ] && in_ns=(ip netns exec "$VU_NETNS")
	"${in_ns[@]}" "$VHOSTBOX" "$pers" --socket-path="$sock" "$@" > "$VU_TMP/$name.log" 2>&1 &
	pid=$!
	vu_track "$pid"
	VU_BACKEND_PID[$name]=$pid
	end=$(($(vu_now) + 5000000))
	while [ ! -S "$sock" ]; do
		if ! vu_alive "$pid"; then
			vu_reap "$pid"
			VU_WHY="$pers back-end exited with status $VU_STATUS before listening: $(head -c 300 "$VU_TMP/$name.log")"
			return 1
		fi
		[ "$(vu_now)" -ge "$end" ] && { VU_WHY="no socket $sock after 5 s"; return 1; }
		sleep 0.02
	done
}

# ---- QEMU -----------------------------------------------------------------------------
# vu_start_qemu GUEST_SCRIPT [QEMU_ARG...]: boot the kernel with VU_INITRAMFS plus a
# second small archive holding GUEST_SCRIPT as /guest.sh (so the big one stays cached),
# with the extra arguments appended (typically -chardev/-device pairs). Sets
# VU_QEMU_PID, VU_SERIAL (the guest console log) and VU_QMP (QMP socket); QEMU's own
# messages go to $VU_TMP/qemu.N.log. QEMU is killed after VU_QEMU_TIMEOUT s whatever
# happens to this script. With VU_QEMU_INCOMING=URI it waits for a migration stream
# (-incoming URI: give it the source's GUEST_SCRIPT and arguments); VU_QEMU_REBOOT=1
# leaves out -no-reboot.
vu_start_qemu() {
	local script=$1 d n
	shift
	[ -n "${VU_INITRAMFS:-}" ] || { VU_WHY="vu_initramfs was not called"; return 1; }
	n=$((++VU_NQEMU))
	# Each guest its own files: several may be booting at once.
	d=$VU_TMP/guest-cpio.$n
	mkdir -p "$d" && cp "$script" "$d/guest.sh" || return 1
	(cd "$d" && echo guest.sh | cpio -o -H newc -R 0:0 --quiet) > "$d.cpio" || return 1
	# The kernel unpacks concatenated newc archives one after the other.
	cat "$VU_INITRAMFS" "$d.cpio" > "$VU_TMP/initrd.$n" || return 1
	VU_SERIAL=$VU_TMP/serial.$n.log
	VU_QMP=$VU_TMP/qmp.$n.sock
	: > "$VU_SERIAL"
	local more=(-no-reboot)
	[ "${VU_QEMU_REBOOT:-0}" = 1 ] && more=()
	[ -n "${VU_QEMU_INCOMING:-}" ] && more+=(-incoming "$VU_QEMU_INCOMING")
	# shellcheck disable=SC2086 # VU_QEMU_ARGS is split on purpose
	timeout -k 2 "$VU_QEMU_TIMEOUT" "$QEMU" \
		-accel tcg -machine pc -smp 1 -m 256M \
		-object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \
		-nodefaults -no-user-config -display none -monitor none "${more[@]}" \
		-serial "file:$VU_SERIAL" -qmp "unix:$VU_QMP,server=on,wait=off" \
		-kernel "$VU_KERNEL" -initrd "$VU_TMP/initrd.$n" \
		-append "console=ttyS0 quiet panic=-1 ${VU_KERNEL_ARGS:-}" \
		${VU_QEMU_ARGS:-} "$@" > "$VU_TMP/qemu.$n.log" 2>&1 &
	VU_QEMU_PID=$!
	vu_track "$VU_QEMU_PID"
}

# vu_wait_serial REGEX [SECS]: wait until a console line matches (grep -E; lines end
# in \r, so do not anchor with $). Returns 1 after SECS (default 30) or when QEMU
# has exited without printing it, with VU_WHY set.
vu_wait_serial() {
	local end=$(($(vu_now) + $(vu_secs_us "${2:-30}")))
	while ! grep -aqE -- "$1" "$VU_SERIAL" 2>/dev/null; do
		if ! vu_alive "$VU_QEMU_PID"; then
			grep -aqE -- "$1" "$VU_SERIAL" 2>/dev/null && return 0
			VU_WHY="QEMU exited before the guest printed '$1'"
			return 1
		fi
		[ "$(vu_now)" -ge "$end" ] && { VU_WHY="no '$1' on the guest console after ${2:-30} s"; return 1; }
		sleep 0.05
	done
}

# vu_guest_result KEY: the value of the last "GUEST-RESULT: KEY VALUE" console line.
vu_guest_result() {
	tr -d '\r' < "$VU_SERIAL" | sed -n "s/^GUEST-RESULT: $1 //p" | tail -n 1
}

# vu_qmp COMMAND [ARGS-JSON]: run one QMP command, print its return value as JSON.
vu_qmp() {
	python3 "$VU_GUEST_DIR/qmp.py" "$VU_QMP" "$@"
}

# vu_json EXPR: reads JSON from stdin (a vu_qmp answer) as d and prints the Python
# expression EXPR of it ('' for None): vu_qmp query-status | vu_json 'd["status"]'.
vu_json() {
	python3 -c 'import json, sys
d = json.load(sys.stdin)
v = eval(sys.argv[1])
print("" if v is None else v)' "$1"
}

# ---- migration ----------------------------------------------------------------------
# These talk to the QEMU whose QMP socket is $VU_QMP: VU_QMP=$src_qmp vu_migrate ...

# vu_migrate URI [PARAMS-JSON [CAPS]]: migrate-set-parameters PARAMS (e.g.
# '{"max-bandwidth": 8000000}'), migrate-set-capabilities CAPS (names, blank
# separated, set true), then migrate to URI. Returns 1 with VU_WHY (QEMU's message)
# when QEMU refuses.
vu_migrate() {
	local uri=$1 params=${2:-} caps=${3:-} c list="" err
	if [ -n "$params" ] && ! err=$(vu_qmp migrate-set-parameters "$params" 2>&1 >/dev/null); then
		VU_WHY=$err; return 1
	fi
	for c in $caps; do list+="${list:+, }{\"capability\": \"$c\", \"state\": true}"; done
	if [ -n "$list" ] && ! err=$(vu_qmp migrate-set-capabilities "{\"capabilities\": [$list]}" 2>&1 >/dev/null); then
		VU_WHY=$err; return 1
	fi
	if ! err=$(vu_qmp migrate "{\"uri\": \"$uri\"}" 2>&1 >/dev/null); then
		VU_WHY=${err#qmp: migrate: }; return 1
	fi
}

# vu_wait_migration REGEX [SECS]: wait (default 120 s) until query-migrate's status
# matches REGEX (grep -E, whole word: 'completed|failed'); the status is in
# VU_MIG_STATUS. Returns 1 with VU_WHY set after SECS.
vu_wait_migration() {
	local end=$(($(vu_now) + $(vu_secs_us "${2:-120}")))
	while :; do
		VU_MIG_STATUS=$(vu_qmp query-migrate 2>/dev/null | vu_json 'd.get("status")' 2>/dev/null)
		echo "$VU_MIG_STATUS" | grep -qxE -- "$1" && return 0
		[ "$(vu_now)" -ge "$end" ] &&
			{ VU_WHY="migration status '$VU_MIG_STATUS', not '$1', after ${2:-120} s"; return 1; }
		sleep 0.2
	done
}

# vu_wait_running [SECS]: wait (default 60 s) until the VM runs (query-status).
vu_wait_running() {
	local end=$(($(vu_now) + $(vu_secs_us "${1:-60}"))) st
	while :; do
		st=$(vu_qmp query-status 2>/dev/null | vu_json 'd.get("status")' 2>/dev/null)
		[ "$st" = running ] && return 0
		[ "$(vu_now)" -ge "$end" ] && { VU_WHY="the VM is '$st', not running, after ${1:-60} s"; return 1; }
		sleep 0.2
	done
}

# vu_stop_qemu [SECS]: QMP quit, wait up to SECS (default 5), then kill.
# QEMU's exit status is in VU_STATUS.
vu_stop_qemu() {
	vu_alive "$VU_QEMU_PID" && QMP_TIMEOUT=3 vu_qmp quit > /dev/null 2>&1
	vu_wait_exit "$VU_QEMU_PID" "${1:-5}" || { vu_kill "$VU_QEMU_PID"; VU_STATUS=137; }
}

# vu_wait_count FUNC FILE N SECS: wait until FUNC FILE (a count over a console) is N or
# more; 1 with VU_WHY set after SECS.
vu_wait_count() {
	local end=$(($(vu_now) + $(vu_secs_us "$4")))
	while [ "$("$1" "$2")" -lt "$3" ]; do
		[ "$(vu_now)" -ge "$end" ] && { VU_WHY="$1 $2: $("$1" "$2"), wanted $3, after $4 s"; return 1; }
		sleep 0.2
	done
}

# ---- crash safety: numbered blocks the guest acknowledges ("ACK n" on its console) ----
# vu_acked_count [CONSOLE]: how many blocks CONSOLE (default: this QEMU's) acknowledged.
vu_acked_count() { tr -d '\r' < "${1:-$VU_SERIAL}" | grep -c '^ACK '; }

# vu_kill_restart NAME PERSONALITY ARGS...: while the guest writes numbered blocks, SIGKILL
# back-end NAME after 150, 300 and 450 acknowledged ones and start it again with the same
# arguments (its restart resubmits what was in flight); then wait for 600 acknowledged.
# VU_KILLS counts the kills; 1 with VU_WHY set if a restart failed.
vu_kill_restart() {
	local name=$1 round end pid
	shift
	VU_KILLS=0
	for round in 1 2 3 4; do
		end=$(($(vu_now) + 60000000))
		while [ "$(vu_acked_count)" -lt $((round * 150)) ] && [ "$(vu_now)" -lt "$end" ]; do sleep 0.05; done
		[ "$round" = 4 ] && break
		pid=${VU_BACKEND_PID[$name]}
		kill -KILL "$pid" 2>/dev/null && vu_reap "$pid" && VU_KILLS=$((VU_KILLS + 1))
		sleep 0.2
		vu_start_backend "$name" "$@" || { VU_WHY="restart: $VU_WHY"; return 1; }
	done
}

# vu_acked_on_disk IMG [CONSOLE...]: "ACKED BAD [FIRST BAD ONES]": the blocks the consoles
# (default: this QEMU's) acknowledged, read first (a block acknowledged after the image
# was read would look lost), and how many of them IMG does not hold (block n starts with
# BLOCK%08d).
vu_acked_on_disk() {
	local img=$1
	shift
	[ $# = 0 ] && set -- "$VU_SERIAL"
	cat "$@" | tr -d '\r' > "$VU_TMP/acked-consoles"
	python3 - "$img" "$VU_TMP/acked-consoles" <<'EOF'
import re, sys
acks = [int(x) for x in re.findall(r'^ACK (\d+)$', open(sys.argv[2], errors='replace').read(), re.M)]
img = open(sys.argv[1], 'rb').read()
bad = [n for n in acks if img[n * 4096:n * 4096 + 13] != b'BLOCK%08d' % n]
print(len(acks), len(bad), bad[:5])
EOF
}

# vu_crash_tests TEST NAME IMG PERSONALITY ARGS...: the crash-safety steps of a disk guest
# test, once the guest writes its numbered blocks to IMG: TEST-crash (vu_kill_restart:
# three SIGKILLs and restarts, nothing acknowledged lost) and TEST-sigterm (SIGTERM
# during the writes: exit 0 within 1 s, nothing acknowledged lost).
vu_crash_tests() {
	local test=$1 name=$2 img=$3 n_acked n_bad rest
	shift 3
	vu_kill_restart "$name" "$@" || { vu_fail "$test-crash" "$VU_WHY"; return 1; }
	read -r n_acked n_bad rest <<< "$(vu_acked_on_disk "$img")"
	if [ "$VU_KILLS" = 3 ] && [ "$n_acked" -ge 600 ] && [ "$n_bad" = 0 ]; then
		vu_pass "$test-crash"
	else
		vu_fail "$test-crash" "$VU_KILLS kills; $n_acked blocks acknowledged, $n_bad wrong on disk: $rest"
	fi
	echo "# crash test: $VU_KILLS SIGKILLs, $n_acked blocks acknowledged, $n_bad of them wrong on disk"
	if ! vu_sigterm_backend "$name"; then
		vu_fail "$test-sigterm" "$VU_WHY"
		return 1
	fi
	sleep 0.3 # anything the guest printed before it noticed
	read -r n_acked n_bad rest <<< "$(vu_acked_on_disk "$img")"
	if [ "$n_bad" = 0 ]; then
		vu_pass "$test-sigterm"
	else
		vu_fail "$test-sigterm" "$n_bad of $n_acked acknowledged blocks wrong on disk: $rest"
	fi
}

# vu_sigterm_backend NAME: SIGTERM the back-end NAME; returns 0 if it exited with
# status 0 within 1 s (the time is printed), else 1 with VU_WHY set.
vu_sigterm_backend() {
	local pid=${VU_BACKEND_PID[$1]} t
	if ! vu_alive "$pid"; then
		vu_reap "$pid"
		VU_WHY="the back-end had already exited (status $VU_STATUS)"
		return 1
	fi
	t=$(vu_now)
	kill -TERM "$pid"
	if ! vu_wait_exit "$pid" 1; then
		VU_WHY="still running 1 s after SIGTERM"
		return 1
	fi
	[ "$VU_STATUS" = 0 ] || { VU_WHY="exited with status $VU_STATUS after SIGTERM"; return 1; }
	echo "# back-end exited $(vu_since "$t") s after SIGTERM"
}

# ---- steps shared by the migration tests (t-migrate-*.sh) ----

# vu_start_source TEST READY QEMU-ARGS...: a migration's source VM, the guest script
# $VU_TMP/guest.sh on QEMU-ARGS, its QMP socket, console and pid kept in src_qmp,
# src_serial and src_pid; returns once the console shows READY (a regex) and the guest's
# writer has 20 writes acknowledged, or fails TEST and ends the test.
vu_start_source() {
	local test=$1 ready=$2
	shift 2
	vu_start_qemu "$VU_TMP/guest.sh" "$@"
	src_qmp=$VU_QMP src_serial=$VU_SERIAL src_pid=$VU_QEMU_PID
	if ! vu_wait_serial "$ready" 90 || ! vu_wait_count vu_acked_count "$src_serial" 20 60; then
		vu_fail "$test" "before the migration: $VU_WHY"
		exit 1
	fi
}

# vu_start_incoming GUEST_SCRIPT QEMU_ARGS...: the destination QEMU, waiting for the
# source on $VU_TMP/migrate.sock (up to 10 s for that socket to appear); its VU_QMP,
# VU_SERIAL and VU_QEMU_PID are set as vu_start_qemu sets them.
vu_start_incoming() {
	VU_QEMU_INCOMING="unix:$VU_TMP/migrate.sock" vu_start_qemu "$@"
	for _ in $(seq 100); do [ -S "$VU_TMP/migrate.sock" ] && break; sleep 0.1; done
}

# vu_lock_refused TEST PERSONALITY ARGS...: TEST-default-lock-refused: a back-end with the
# default --lock=open on images a device holds locked refuses to start, saying so.
vu_lock_refused() {
	local test=$1
	shift
	if "$VHOSTBOX" "$@" --socket-path="$VU_TMP/refused.sock" > "$VU_TMP/refused.log" 2>&1; then
		vu_fail "$test-default-lock-refused" "a --lock=open back-end started on the image in use"
	elif grep -q 'in use by another process' "$VU_TMP/refused.log"; then
		vu_pass "$test-default-lock-refused"
	else
		vu_fail "$test-default-lock-refused" "refused, but not for the lock: $(head -c 200 "$VU_TMP/refused.log")"
	fi
}

# vu_migrated_writes TEST IMG SRC_ACKS DST_SERIAL: TEST-writer: at least 20 blocks acknowledged
# on each side of the migration (SRC_ACKS on the source, counted on DST_SERIAL for the
# destination) and every block any console acknowledged is on IMG.
vu_migrated_writes() {
	local test=$1 img=$2 src_acks=$3 dst_acks n_acked n_bad rest
	read -r n_acked n_bad rest <<< "$(vu_acked_on_disk "$img" "$VU_TMP"/serial.*.log)"
	dst_acks=$(vu_acked_count "$4")
	if [ "$n_bad" = 0 ] && [ "$src_acks" -ge 20 ] && [ "$dst_acks" -ge 20 ]; then
		vu_pass "$test-writer"
	else
		vu_fail "$test-writer" "$n_acked blocks acknowledged ($src_acks on the source, $dst_acks on the destination), $n_bad wrong on the image: $rest"
	fi
	echo "# writer: $src_acks blocks acknowledged on the source, $dst_acks on the destination, all on the image: $([ "$n_bad" = 0 ] && echo yes || echo no)"
}

# vu_end_backends TEST NAME...: TEST-backends: each back-end NAME exits 0 on SIGTERM
# (vu_sigterm_backend) and none logged a broken queue or a call its sandbox refused.
vu_end_backends() {
	local test=$1 why="" be logs=()
	shift
	for be in "$@"; do
		vu_sigterm_backend "$be" || why+="$be: $VU_WHY; "
		logs+=("$VU_TMP/$be.log")
	done
	grep -qE 'broken|is not allowed' "${logs[@]}" &&
		why+="a queue broke or the sandbox refused a call: $(grep -hE 'broken|is not allowed' "${logs[@]}" | head -n 3)"
	[ -z "$why" ] && vu_pass "$test-backends" || vu_fail "$test-backends" "$why"
}
