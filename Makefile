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
#    * debian: PACKAGES        (what test/install-deps.sh installs for it)
#    * systemd: DIRECTIVE      (repeatable: hardening its service unit tolerates, json/json.mk)
# Its name, aliases, type, summary and options are in its struct vu_device_type.
KNOWN_DEVICES := $(patsubst dev/%.c,%,$(shell grep -l '^ \* build: ' dev/*.c))
decl = $(shell sed -n 's/^ \* $(2): *//p' dev/$(1).c)
$(foreach d,$(KNOWN_DEVICES),$(eval $(d)_SRCS := $(addprefix dev/,$(call decl,$(d),build))) \
	$(eval $(d)_PKGS := $(call decl,$(d),pkg-config)))

have_pkgs = $(shell $(PKG_CONFIG) --exists $(1) 2>/dev/null && echo y)
ALL_DEVICES   := $(foreach d,$(KNOWN_DEVICES),$(if $($(d)_PKGS),$(if $(call have_pkgs,$($(d)_PKGS)),$(d)),$(d)))
LEFT_OUT      := $(filter-out $(ALL_DEVICES),$(KNOWN_DEVICES))
ifneq ($(LEFT_OUT),)
$(foreach d,$(LEFT_OUT),$(info vhostbox: leaving out $(d): pkg-config cannot find $($(d)_PKGS)))
endif
DEVICES ?= $(ALL_DEVICES)
DEV_PKGS := $(sort $(foreach d,$(DEVICES),$($(d)_PKGS)))
DEV_CFLAGS := $(if $(DEV_PKGS),$(shell $(PKG_CONFIG) --cflags $(DEV_PKGS)))
DEV_LIBS   := $(if $(DEV_PKGS),$(shell $(PKG_CONFIG) --libs $(DEV_PKGS)))

CORE_SRCS := proto/device.c proto/option.c proto/iov.c proto/loop.c proto/msg.c proto/mem.c proto/sigbus.c proto/vring.c proto/inflight.c proto/session.c proto/session-rings.c proto/device-state.c \
             proto/listen.c proto/sandbox.c proto/backend.c proto/manual.c proto/log.c caps/caps.c json/describe.c json/discover.c
# sorted: a file two devices share (blk-io.c) is built and linked once
DEV_SRCS  := $(sort $(foreach d,$(DEVICES),$($(d)_SRCS)))
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
	rm -rf $(B) $(BIN)

# The README's first command: a small VM whose devices are served by vhostbox.
demo: deps $(BIN) $(B)/test/evdev-mock-run
	@bash test/guest/demo.sh

# Benchmarks against the peers (qemu-storage-daemon, DPDK, QEMU's gpu), reported as ratios.
bench: deps $(BIN) bench-tools
	@bash test/bench/run.sh
