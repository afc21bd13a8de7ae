# vhostbox — one binary, every vhost-user device back-end.
# `make` builds every personality whose libraries are present; `make DEVICES="rng"` picks.

PREFIX     ?= /usr/local
bindir     ?= $(PREFIX)/bin
libexecdir ?= $(PREFIX)/libexec
datadir    ?= $(PREFIX)/share
mandir     ?= $(datadir)/man
systemdunitdir ?= $(PREFIX)/lib/systemd/system
DESTDIR    ?=

CC      ?= cc
VERSION := 0.1.0
PKG_CONFIG ?= pkg-config
# `make static`: one statically linked vhostbox (musl), ./vhostbox-static, stripped.
# test/musl-libs.sh builds jansson, libseccomp, liburing and libevdev for musl from
# Debian's source packages into build/musl (once: cached there); then this Makefile
# runs again with STATIC=1, its pkg-config looking only there, so the personalities are
# chosen exactly as for the dynamic build: those whose packages are found, and those
# with a fallback (gpu: 2D, without virglrenderer, which with Mesa does not link
# statically). Nothing is loaded at run time: no dynamic loader, no dlopen, and no NSS
# (musl reads --user/--group names from /etc/passwd and /etc/group, else asks nscd).
# These settings come before anything asks pkg-config; the target is further down.

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

CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wshadow -Wno-unused-parameter
# Warnings are errors in CI and in `make check`.
ifneq ($(CI)$(WERROR),)
WARN += -Werror
endif
CPPFLAGS += -I. -D_GNU_SOURCE -DVHOSTBOX_VERSION='"$(VERSION)"'
override CFLAGS += -std=gnu11 $(WARN)

JANSSON_CFLAGS := $(shell $(PKG_CONFIG) --cflags jansson 2>/dev/null)
JANSSON_LIBS   := $(shell $(PKG_CONFIG) --libs jansson 2>/dev/null || echo -ljansson)
# Every personality confines itself (proto/sandbox.c) with libseccomp.
SECCOMP_CFLAGS := $(shell $(PKG_CONFIG) --cflags libseccomp 2>/dev/null)
SECCOMP_LIBS   := $(shell $(PKG_CONFIG) --libs libseccomp 2>/dev/null || echo -lseccomp)

# Personalities: each is declared once, in the header comment of its dev/NAME.c:
#    * build: SOURCES          (in dev/)
#    * pkg-config: PACKAGES    (what it links; without them it is left out)
#    * dlopen: PACKAGES        (of those, the ones it loads when first used instead of linking them)
#    * fallback: OLD... -> NEW... (without them, sources NEW replace OLD instead: gpu 2D without virgl)
#    * debian: PACKAGES        (what test/install-deps.sh installs for it)
#    * systemd: DIRECTIVE      (repeatable: hardening its service unit tolerates, json/json.mk)
# Its name, aliases, type, summary and options are in its struct vu_device_type.
KNOWN_DEVICES := $(patsubst dev/%.c,%,$(shell grep -l '^ \* build: ' dev/*.c))
decl = $(shell sed -n 's/^ \* $(2): *//p' dev/$(1).c)
$(foreach d,$(KNOWN_DEVICES),$(eval $(d)_SRCS := $(addprefix dev/,$(call decl,$(d),build))) \
	$(eval $(d)_PKGS := $(call decl,$(d),pkg-config)) \
	$(eval $(d)_DLOPEN := $(call decl,$(d),dlopen)) \
	$(eval $(d)_FALLBACK := $(call decl,$(d),fallback)))

have_pkgs = $(shell $(PKG_CONFIG) --exists $(1) 2>/dev/null && echo y)
# Devices whose packages are all there; those missing some, built from their fallback.
FULL_DEVICES  := $(foreach d,$(KNOWN_DEVICES),$(if $($(d)_PKGS),$(if $(call have_pkgs,$($(d)_PKGS)),$(d)),$(d)))
FALLBACK_DEVICES := $(foreach d,$(filter-out $(FULL_DEVICES),$(KNOWN_DEVICES)),$(if $($(d)_FALLBACK),$(d)))
ALL_DEVICES   := $(filter $(FULL_DEVICES) $(FALLBACK_DEVICES),$(KNOWN_DEVICES))
LEFT_OUT      := $(filter-out $(ALL_DEVICES),$(KNOWN_DEVICES))
ifneq ($(LEFT_OUT),)
$(foreach d,$(LEFT_OUT),$(info vhostbox: leaving out $(d): pkg-config cannot find $($(d)_PKGS)))
endif
$(foreach d,$(FALLBACK_DEVICES),$(info vhostbox: $(d) without $($(d)_PKGS): $($(d)_FALLBACK)))
DEVICES ?= $(ALL_DEVICES)
DEV_PKGS := $(sort $(foreach d,$(filter-out $(FALLBACK_DEVICES),$(DEVICES)),$($(d)_PKGS)))
# A device's sources as this build has them: with its fallback, NEW... in place of OLD....
fallback_part = $(addprefix dev/,$(shell sed -n 's/^ \* fallback: *\(.*\) *-> *\(.*\)/\$(2)/p' dev/$(1).c))
dev_srcs = $(if $(filter $(1),$(FALLBACK_DEVICES)),$(filter-out $(call fallback_part,$(1),1),$($(1)_SRCS)) \
	$(call fallback_part,$(1),2),$($(1)_SRCS))
DEV_CFLAGS := $(if $(DEV_PKGS),$(shell $(PKG_CONFIG) --cflags $(DEV_PKGS)))
DEV_LINKED := $(filter-out $(foreach d,$(DEVICES),$($(d)_DLOPEN)),$(DEV_PKGS))
DEV_LIBS   := $(if $(DEV_LINKED),$(shell $(PKG_CONFIG) --libs $(DEV_LINKED)))

CORE_SRCS := proto/device.c proto/option.c proto/iov.c proto/loop.c proto/msg.c proto/mem.c proto/sigbus.c proto/vring.c proto/vring-split.c proto/vring-packed.c proto/inflight.c proto/session.c proto/session-rings.c proto/device-state.c \
             proto/listen.c proto/sandbox.c proto/backend.c proto/manual.c proto/log.c caps/caps.c json/describe.c json/discover.c
DEV_SRCS  := $(foreach d,$(DEVICES),$(call dev_srcs,$(d)))
SRCS      := main.c $(CORE_SRCS) $(DEV_SRCS)

B    := build
OBJS := $(SRCS:%.c=$(B)/%.o)
LIBS := $(JANSSON_LIBS) $(SECCOMP_LIBS) $(DEV_LIBS) -pthread

# BIN: where the binary goes (a private build: make B=build/mine BIN=build/mine/vhostbox).
BIN ?= vhostbox
all: $(BIN)

$(BIN): $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(LIBS)

# The personality table main.c includes: one line per built device.
$(B)/personalities.h: FORCE
	@mkdir -p $(B)
	@printf '%s\n' $(foreach d,$(DEVICES),'VU_PERSONALITY($(d))') > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp

$(B)/main.o: $(B)/personalities.h

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -I$(B) $(JANSSON_CFLAGS) $(SECCOMP_CFLAGS) $(DEV_CFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

-include $(OBJS:.o=.d)

include test/test.mk
include json/json.mk

FORCE:
.PHONY: all FORCE clean install uninstall check demo bench fuzz
clean:
	rm -rf $(B) $(BIN) $(STATIC_BIN) build/static

# `make static` (see the settings at the top).
static:
	@sh test/musl-libs.sh $(MUSL_DIR)
	@$(MAKE) --no-print-directory STATIC=1 B=build/static BIN=build/static/vhostbox build/static/vhostbox
	strip -o $(STATIC_BIN) build/static/vhostbox
	@echo "$(STATIC_BIN): $$(stat -c %s $(STATIC_BIN)) bytes, $$($(abspath $(STATIC_BIN)) --list | cut -d' ' -f1 | tr '\n' ' ')"

.PHONY: static

# The README's first command: a small VM whose devices are served by vhostbox.
demo: deps $(BIN) $(B)/test/evdev-mock-run
	@bash test/guest/demo.sh

# Benchmarks against the peers (qemu-storage-daemon, DPDK, QEMU's gpu), reported as ratios.
bench: deps $(BIN) bench-tools static
	@bash test/bench/run.sh
