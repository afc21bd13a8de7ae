#!/bin/sh
# Installs the Debian packages that building and testing vhostbox need.
# Idempotent and non-interactive; does nothing when everything is present.
# QEMU comes from bookworm-backports (>= 8 is needed for vhost-user under TCG);
# that suite is added with the mirror this machine's apt is already configured with.
set -eu
cd "$(dirname "$0")/.."

# Each device declares the Debian packages it builds with (" * debian: ..." in dev/NAME.c).
DEVICE_PKGS=$(sed -n 's/^ \* debian: *//p' dev/*.c)
# sg3-utils: copied into the scsi guest test's initramfs (test/guest/t-scsi.sh).
# libseccomp-dev: every personality confines itself (proto/sandbox.c); systemd gives
# systemd-socket-activate and util-linux setpriv, for test/t-sandbox.sh.
# musl-tools, dpkg-dev (dpkg-source), cmake (jansson) and gperf (libseccomp): make static (test/musl-libs.sh).
# uidmap: newuidmap and newgidmap, which fs's --uid-map/--gid-map run (test/t-fs.c).
PKGS="gcc make pkg-config libjansson-dev libseccomp-dev clang libclang-rt-14-dev \
      busybox-static linux-image-cloud-amd64 cpio kmod python3 linux-image-amd64 \
      umockdev libumockdev-dev dpdk dpdk-dev libdpdk-dev iproute2 groff-base systemd util-linux sg3-utils \
      musl-tools dpkg-dev cmake gperf xz-utils uidmap $DEVICE_PKGS"
BACKPORT_PKGS="qemu-system-x86 qemu-utils"
# QEMU's vhost-user-gpu-pci peer (/usr/lib/qemu/vhost-user-gpu, make bench): same version as QEMU.
GUI_PKG="qemu-system-gui"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
qemu_ok=0
if command -v qemu-system-x86_64 >/dev/null 2>&1; then
	v=$(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
	[ "${v:-0}" -ge 8 ] && qemu_ok=1
fi
gui_ok=0
dpkg-query -W -f='${Status}' "$GUI_PKG" 2>/dev/null | grep -q "ok installed" && gui_ok=1
[ -z "$missing" ] && [ $qemu_ok = 1 ] && [ $gui_ok = 1 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing (and QEMU >= 8: $qemu_ok, $GUI_PKG: $gui_ok); run as root" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive

# Derive the mirror from the configured sources instead of naming one.
mirror=$(sh test/apt-mirror.sh || true)
bp=/etc/apt/sources.list.d/vhostbox-backports.list
if [ -n "$mirror" ] && ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
	echo "deb $mirror bookworm-backports main" > "$bp"
fi
apt-get update -qq
[ -n "$missing" ] && apt-get install -y -qq --no-install-recommends $missing
[ $qemu_ok = 1 ] || apt-get install -y -qq --no-install-recommends -t bookworm-backports $BACKPORT_PKGS
[ $gui_ok = 1 ] || apt-get install -y -qq --no-install-recommends -t bookworm-backports $GUI_PKG
exit 0
