# SPDX-License-Identifier: GPL-2.0-or-later
# `make static`: one statically linked vhostbox (musl), ./vhostbox-static, stripped.
# static/musl-libs.sh builds jansson, libseccomp, liburing and libevdev for musl from
# Debian's source packages into build/musl (once: cached there); then this Makefile
# runs again with STATIC=1, its pkg-config looking only there, so the personalities are
# chosen exactly as for the dynamic build: those whose packages are found, and those
# with a fallback (gpu: 2D, without virglrenderer, which with Mesa does not link
# statically). Nothing is loaded at run time: no dynamic loader, no dlopen, and no NSS
# (musl reads --user/--group names from /etc/passwd and /etc/group, else asks nscd).
# Included by the Makefile before anything asks pkg-config.

MUSL_DIR := build/musl
STATIC_BIN ?= vhostbox-static

ifeq ($(STATIC),1)
CC         := musl-gcc
PKG_CONFIG := PKG_CONFIG_LIBDIR=$(abspath $(MUSL_DIR))/prefix/lib/pkgconfig pkg-config --static
# Kernel headers are outside musl's include path (musl-libs.sh links them there).
CPPFLAGS   += -idirafter $(MUSL_DIR)/kernel-include
CFLAGS     ?= -Os -ffunction-sections -fdata-sections
LDFLAGS    += -static -Wl,--gc-sections
# Linked again when a library was rebuilt.
$(BIN): $(wildcard $(MUSL_DIR)/stamp-*)
endif

static:
	@sh static/musl-libs.sh $(MUSL_DIR)
	@$(MAKE) --no-print-directory STATIC=1 B=build/static BIN=build/static/vhostbox build/static/vhostbox
	strip -o $(STATIC_BIN) build/static/vhostbox
	@echo "$(STATIC_BIN): $$(stat -c %s $(STATIC_BIN)) bytes, $$($(abspath $(STATIC_BIN)) --list | cut -d' ' -f1 | tr '\n' ' ')"

.PHONY: static
