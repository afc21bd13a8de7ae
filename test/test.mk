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

tests: $(BIN) $(TEST_BINS) $(B)/test/evdev-mock-run

# A second, sanitized build of everything in build/asan.
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan:
	$(MAKE) --no-print-directory B=build/asan CFLAGS="$(ASAN_FLAGS)" LDFLAGS="$(ASAN_FLAGS)" \
		build/asan/vhostbox-asan tests-asan

build/asan/vhostbox-asan: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(LIBS)
tests-asan: $(TEST_BINS) $(B)/test/evdev-mock-run

deps:
	@sh test/install-deps.sh

check: deps
	$(MAKE) --no-print-directory WERROR=1 tests
	$(MAKE) --no-print-directory WERROR=1 asan
	@bash test/run.sh --check

.PHONY: tests asan tests-asan deps

# libFuzzer targets (clang): message decoding + sessions, and the ring walker.
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_CORE  := proto/device.c proto/iov.c proto/loop.c proto/msg.c proto/mem.c proto/sigbus.c proto/vring.c proto/vring-split.c proto/vring-packed.c proto/inflight.c proto/session.c proto/session-rings.c proto/device-state.c proto/log.c dev/rng.c
FUZZ_BINS  := build/fuzz/fuzz-session build/fuzz/fuzz-vring build/fuzz/fuzz-vring-packed
fuzz: $(FUZZ_BINS)
build/fuzz/fuzz-%: test/fuzz/fuzz-%.c $(FUZZ_CORE) $(wildcard proto/*.h)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) -std=gnu11 -Wall -Wextra -Wno-unused-parameter $(FUZZ_FLAGS) -o $@ $< $(FUZZ_CORE)

# Benchmark drivers (make bench): test/bench/*.c, linked like the tests.
BENCH_BINS := $(patsubst test/bench/%.c,$(B)/bench/%,$(wildcard test/bench/*.c))
$(B)/bench/%: test/bench/%.c $(TEST_LIB) $(CORE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $^ $(LIBS)
bench-tools: $(BENCH_BINS)
.PHONY: bench-tools
