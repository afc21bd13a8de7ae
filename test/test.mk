# Tests: `make check` installs what it needs, builds, runs the suite with the plain
# build and again with an ASan+UBSan build, and ends with "N passed, N failed, N skipped".

CORE_OBJS := $(CORE_SRCS:%.c=$(B)/%.o)
TEST_SRCS := $(wildcard test/t-*.c)
TEST_BINS := $(TEST_SRCS:test/%.c=$(B)/test/%)
TEST_LIB  := $(B)/test/frontend.o $(B)/test/check.o $(B)/test/gpu-peer.o $(B)/test/dirty-log.o \
             $(B)/test/ring-builder.o

# Kept between builds (make would delete them as intermediates of the pattern rule below).
.SECONDARY: $(TEST_BINS:=.o) $(TEST_LIB)

$(B)/test/%.o: test/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(JANSSON_CFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

# Unit tests link the core objects so they can test proto/ directly.
$(B)/test/t-%: $(B)/test/t-%.o $(TEST_LIB) $(CORE_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

-include $(TEST_BINS:=.d) $(TEST_LIB:.o=.d)

# The input tests emulate evdev devices with umockdev (test/evdev-mock.c); the
# guest test drives them through build/test/evdev-mock-run.
UMOCKDEV_CFLAGS := $(shell $(PKG_CONFIG) --cflags umockdev-1.0 2>/dev/null)
UMOCKDEV_LIBS   := $(shell $(PKG_CONFIG) --libs umockdev-1.0 2>/dev/null)
EVDEV_MOCK      := $(B)/test/evdev-mock.o
$(EVDEV_MOCK) $(B)/test/t-input.o $(B)/test/evdev-mock-run.o: CPPFLAGS += $(UMOCKDEV_CFLAGS)
$(B)/test/t-input: $(EVDEV_MOCK)
$(B)/test/t-input: LIBS += $(UMOCKDEV_LIBS)
$(B)/test/evdev-mock-run: $(B)/test/evdev-mock-run.o $(EVDEV_MOCK)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(UMOCKDEV_LIBS)
-include $(EVDEV_MOCK:.o=.d) $(B)/test/evdev-mock-run.d

# The back-end with proto/sandbox.c built for tests (-DVU_SANDBOX_SELFTEST): it makes
# the system call $VU_SANDBOX_SELFTEST_CALL names once confined. Never installed.
SELFTEST_OBJS := $(filter-out $(B)/proto/sandbox.o,$(OBJS)) $(B)/test/sandbox-selftest.o
$(B)/test/sandbox-selftest.o: proto/sandbox.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -DVU_SANDBOX_SELFTEST $(SECCOMP_CFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<
$(B)/test/vhostbox-selftest: $(SELFTEST_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(SELFTEST_OBJS) $(LIBS)
-include $(B)/test/sandbox-selftest.d

tests: $(BIN) $(TEST_BINS) $(B)/test/evdev-mock-run $(B)/test/vhostbox-selftest

# A second, sanitized build of everything in build/asan.
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan:
	$(MAKE) --no-print-directory B=build/asan CFLAGS="$(ASAN_FLAGS)" LDFLAGS="$(ASAN_FLAGS)" \
		build/asan/vhostbox-asan tests-asan

build/asan/vhostbox-asan: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(LIBS)
tests-asan: $(TEST_BINS) $(B)/test/evdev-mock-run $(B)/test/vhostbox-selftest

deps:
	@sh test/install-deps.sh

check: deps
	$(MAKE) --no-print-directory WERROR=1 tests
	$(MAKE) --no-print-directory WERROR=1 asan
	$(MAKE) --no-print-directory WERROR=1 static
	@bash test/run.sh --check

.PHONY: tests asan tests-asan deps

# libFuzzer targets (clang, ASan+UBSan), built in build/fuzz: the message and session
# fuzzer, the ring walker, and one target per device (the device harness,
# test/fuzz/fuzz-device.c). `make fuzz-build` builds them; `make fuzz` builds them and
# runs each for FUZZ_SECONDS (FUZZ_FORK=N: N libFuzzer jobs at once; FUZZ_TARGETS:
# which); FUZZ_DEFS=-D... turns on input shapes held back for known bugs (fuzz-device.h).
FUZZ_CC      := clang
FUZZ_FLAGS   := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_DEFS    ?=
FUZZ_SECONDS ?= 1200
FUZZ_FORK    ?=
# Proto as the back-end has it, less what serves sockets, confines and prints manuals.
FUZZ_PROTO   := $(filter-out proto/listen.c proto/sandbox.c proto/backend.c proto/manual.c,$(filter proto/%,$(CORE_SRCS)))
FUZZ_HARNESS := test/fuzz/fuzz-device.c test/frontend.c $(FUZZ_PROTO)

fuzz-session_SRCS := test/fuzz/fuzz-session.c $(FUZZ_HARNESS) $(rng_SRCS) $(blk_SRCS)
fuzz-session_PKGS := $(blk_PKGS)
fuzz-vring_SRCS   := test/fuzz/fuzz-vring.c $(FUZZ_PROTO)
fuzz-vring-packed_SRCS := test/fuzz/fuzz-vring-packed.c $(FUZZ_PROTO)
fuzz-blk_SRCS     := test/fuzz/fuzz-blk.c $(FUZZ_HARNESS) $(blk_SRCS)
fuzz-blk_PKGS     := $(blk_PKGS)
fuzz-gpu_SRCS     := test/fuzz/fuzz-gpu.c test/fuzz/fuzz-display.c $(FUZZ_HARNESS) $(gpu_SRCS)
fuzz-gpu_PKGS     := $(gpu_PKGS)
fuzz-virgl_SRCS   := test/fuzz/fuzz-virgl.c test/fuzz/fuzz-display.c $(FUZZ_HARNESS) $(gpu_SRCS)
fuzz-virgl_PKGS   := $(gpu_PKGS)
fuzz-scsi_SRCS    := test/fuzz/fuzz-scsi.c $(FUZZ_HARNESS) $(scsi_SRCS)
fuzz-scsi_PKGS    := $(scsi_PKGS)
fuzz-net_SRCS     := test/fuzz/fuzz-net.c $(FUZZ_HARNESS) $(net_SRCS)
fuzz-fs_SRCS      := test/fuzz/fuzz-fs.c $(FUZZ_HARNESS) $(fs_SRCS)
# vsock listens for its host programs (proto/listen.c, which the harness leaves out).
fuzz-vsock_SRCS   := test/fuzz/fuzz-vsock.c proto/listen.c $(FUZZ_HARNESS) $(vsock_SRCS)
fuzz-input_SRCS   := test/fuzz/fuzz-input.c test/evdev-mock.c $(FUZZ_HARNESS) $(input_SRCS)
fuzz-input_PKGS   := $(input_PKGS) umockdev-1.0

# A device's targets are built when its libraries are (the session fuzzer needs blk's).
FUZZ_DEV_TARGETS := $(filter blk scsi gpu net input fs vsock,$(ALL_DEVICES)) $(if $(filter gpu,$(ALL_DEVICES)),virgl)
FUZZ_ALL     := $(if $(filter blk,$(ALL_DEVICES)),session) vring vring-packed \
                $(foreach t,$(FUZZ_DEV_TARGETS),$(if $(fuzz-$(t)_PKGS),$(if $(call have_pkgs,$(fuzz-$(t)_PKGS)),$(t)),$(t)))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_BINS    := $(FUZZ_TARGETS:%=build/fuzz/fuzz-%)
FUZZ_PKGS    := $(sort $(foreach t,$(FUZZ_TARGETS),$(fuzz-$(t)_PKGS)))
FUZZ_CFLAGS  := $(if $(FUZZ_PKGS),$(shell $(PKG_CONFIG) --cflags $(FUZZ_PKGS)))

# The objects are built again when FUZZ_DEFS changes.
build/fuzz/defs: FORCE
	@mkdir -p $(dir $@)
	@echo '$(FUZZ_DEFS)' > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp

build/fuzz/obj/%.o: %.c build/fuzz/defs
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_DEFS) $(FUZZ_CFLAGS) -std=gnu11 $(WARN) -Wno-missing-field-initializers \
		$(FUZZ_FLAGS) -MMD -MP -c -o $@ $<

# One link rule per target: its objects and its libraries.
define fuzz_target
build/fuzz/fuzz-$(1): $$(fuzz-$(1)_SRCS:%.c=build/fuzz/obj/%.o)
	$$(FUZZ_CC) $$(FUZZ_FLAGS) -o $$@ $$^ $$(if $$(fuzz-$(1)_PKGS),$$(shell $$(PKG_CONFIG) --libs $$(fuzz-$(1)_PKGS))) -pthread
endef
$(foreach t,$(FUZZ_ALL),$(eval $(call fuzz_target,$(t))))
-include $(wildcard build/fuzz/obj/*/*.d build/fuzz/obj/*/*/*.d)

fuzz-build: $(FUZZ_BINS)
fuzz: fuzz-build
	@FUZZ_FORK=$(FUZZ_FORK) bash test/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)
fuzz-targets:
	@echo $(FUZZ_TARGETS)
.PHONY: fuzz-build fuzz-targets

# Benchmark drivers (make bench): test/bench/*.c, linked like the tests.
BENCH_BINS := $(patsubst test/bench/%.c,$(B)/bench/%,$(wildcard test/bench/*.c))
$(B)/bench/%: test/bench/%.c $(TEST_LIB) $(CORE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $^ $(LIBS)
bench-tools: $(BENCH_BINS)
.PHONY: bench-tools
