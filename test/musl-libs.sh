#!/bin/sh
# Builds the libraries the static vhostbox links (jansson, libseccomp, liburing,
# libevdev) for musl, from Debian's source packages, into DIR/prefix with their
# pkg-config files; the Makefile (make static) then picks the personalities whose pkg-config
# packages are there. Cached: a library whose stamp DIR/stamp-NAME-VERSION exists is
# not fetched or built again, so running it twice does nothing the second time.
#
#   test/musl-libs.sh DIR            (make static runs it with DIR=build/musl)
#
# The sources come from the mirror apt is configured with (test/apt-mirror.sh), through
# a private apt state in DIR/apt: the machine's own apt configuration is left as it is.
# apt checks every file it downloads against the archive's signed Sources index.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
dir=$(cd "$1" && pwd)
prefix=$dir/prefix
CC=musl-gcc
# Small code: the binary's size is a target (README, Appliance build).
LIB_CFLAGS="-Os -ffunction-sections -fdata-sections -ffile-prefix-map=$dir/src/="
log=$dir/build.log

# Kernel headers (linux/, asm/, asm-generic/) are not in musl's include path.
kinc=$dir/kernel-include
mkdir -p "$kinc"
for h in linux asm-generic; do ln -sfn /usr/include/$h "$kinc/$h"; done
ln -sfn "/usr/include/$(gcc -print-multiarch)/asm" "$kinc/asm"
export CC CFLAGS="$LIB_CFLAGS -idirafter $kinc"

# ---- sources ----
apt_dir=$dir/apt
apt_opts="-o Dir::Etc::SourceList=$apt_dir/sources.list -o Dir::Etc::SourceParts=/nonexistent
          -o Dir::State::Lists=$apt_dir/lists -o Dir::Cache=$apt_dir/cache -o APT::Sandbox::User=root -qq"
apt_ready() {
	[ -f "$apt_dir/ready" ] && return
	mirror=$(sh "$top/test/apt-mirror.sh") || { echo "musl-libs: no Debian mirror in apt's sources" >&2; exit 1; }
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
	# trixie: for libevdev's fallback below.
	printf 'deb-src %s %s main\n' "$mirror" bookworm "$mirror" trixie > "$apt_dir/sources.list"
	# shellcheck disable=SC2086
	apt-get $apt_opts update
	touch "$apt_dir/ready"
}

# fetch PKG SUITE [orig]: PKG's source package from SUITE unpacked in $src (patched),
# or with "orig", only its upstream tarball unpacked.
fetch() {
	src=$dir/src/$1
	rm -rf "$src" && mkdir -p "$src"
	apt_ready
	if [ $# = 2 ]; then
		# shellcheck disable=SC2086
		(cd "$src" && apt-get $apt_opts source --download-only "$1/$2" >> "$log" 2>&1 &&
			dpkg-source -x ./*.dsc tree >> "$log" 2>&1) || return 1
	else
		# shellcheck disable=SC2086
		(cd "$src" && apt-get $apt_opts source --download-only "$1/$2" >> "$log" 2>&1) || true
		set -- "$src"/*.orig.tar.*
		[ -f "$1" ] || return 1
		mkdir "$src/tree" && tar -xf "$1" -C "$src/tree" --strip-components=1
	fi
	src=$src/tree
}

# version PKG SUITE: the version of SUITE's source package.
version() {
	apt_ready
	# shellcheck disable=SC2086
	apt-get $apt_opts source --print-uris "$1/$2" | sed -n "s/.* $1_\(.*\)\.dsc .*/\1/p"
}

# built NAME VERSION: true if the stamp says it is already there.
built() { [ -f "$dir/stamp-$1-$2" ]; }

# The build of each library, run in its unpacked source, output to $log.
build_jansson() {      # CMake (the tarball has no configure)
	mkdir -p b && cd b &&
	cmake -DCMAKE_C_COMPILER=$CC -DCMAKE_C_FLAGS="$CFLAGS" -DCMAKE_BUILD_TYPE=None \
		-DCMAKE_INSTALL_PREFIX="$prefix" -DJANSSON_BUILD_SHARED_LIBS=OFF \
		-DJANSSON_BUILD_DOCS=OFF -DJANSSON_EXAMPLES=OFF -DJANSSON_WITHOUT_TESTS=ON .. &&
	make -j2 install
}
build_libseccomp() {   # autotools; the syscall tables come pre-generated (gperf checks them)
	./configure --host=x86_64-linux-musl --prefix="$prefix" --disable-shared --enable-static \
		--disable-python &&
	make -j2 -C src install-libLTLIBRARIES && make -j2 -C include install && make install-pkgconfDATA
}
build_liburing() {     # its own configure; only the library
	./configure --cc=$CC --prefix="$prefix" --libdir="$prefix/lib" --libdevdir="$prefix/lib" &&
	make -j2 -C src ENABLE_SHARED=0 install && make liburing.pc &&
	install -m 644 liburing.pc "$prefix/lib/pkgconfig/"
}
build_libevdev() {     # autotools; python3 generates its event names
	./configure --host=x86_64-linux-musl --prefix="$prefix" --disable-shared --enable-static \
		--disable-gcov &&
	make -j2 -C libevdev install && make install-pkgconfigDATA
}

# lib NAME [FALLBACK_SUITE]: NAME from bookworm's source package, built once (its stamp
# then says so). If bookworm's cannot be fetched and FALLBACK_SUITE is given, the
# upstream tarball of that suite's source package instead, without Debian's changes.
lib() {
	v=$(version "$1" bookworm) v_fb=""
	[ $# = 2 ] && v_fb=$(version "$1" "$2")
	built "$1" "$v" || { [ -n "$v_fb" ] && built "$1" "$v_fb"; } && return
	if ! fetch "$1" bookworm; then
		[ -n "$v_fb" ] || { echo "musl-libs: cannot fetch $1's source package, see $log" >&2; exit 1; }
		v=$v_fb
		echo "musl-libs: $1's bookworm source package cannot be fetched; using the upstream tarball of $2's ($v)"
		fetch "$1" "$2" orig || { echo "musl-libs: cannot fetch $1 from $2 either, see $log" >&2; exit 1; }
	fi
	(cd "$src" && "build_$1") >> "$log" 2>&1 || { echo "musl-libs: building $1 failed, see $log" >&2; exit 1; }
	rm -f "$dir/stamp-$1-"*
	touch "$dir/stamp-$1-$v"
	echo "musl-libs: built $1 $v"
}

: > "$log"
mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
lib jansson
lib libseccomp
lib liburing
# bookworm's libevdev (1.13.0+dfsg-1) answers 404 on the development machines' mirror,
# its .dsc, upstream tarball and debian/ files alike; trixie's upstream tarball (1.13.4,
# a bug-fix release) is there. Its debian/ files are not, so Debian's changes, if it
# has any, are not applied.
lib libevdev trixie
