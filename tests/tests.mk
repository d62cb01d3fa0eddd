# tests/tests.mk — the allocator's tests, included by the top-level Makefile.
#
#   make test        install missing packages (as root), build everything, run
#                    every suite: core (for every variant), workloads, harness;
#                    then the totals of their closing lines (below)
#   make test-core   only the allocator's tests, for every variant (or VARIANT=)
#                    and its checked build (<variant>-check)
#   make test-profile    the heap profiler through google-pprof (tests/profile.sh)
#   make test-leakcheck  the leak checker against valgrind's memcheck (tests/leakcheck.sh)
#   make test-signals    signal handlers that allocate, under every build, the
#                        profiler and the leak checker (tests/signals.sh)
#   make check-layers    every reference between core files goes down the level
#                        table of core/internal.h, in every build's objects
#   make test-layers     check-layers, and the checker failing on planted calls
#   make test-counts     tests/lib.sh's counters and closing line (tests/counts.sh)
#   make soak            the tests of signals, fork, threads and the scavenger's
#                        timing, 100 times each (not part of make test)
#
# Per variant, in build/<v>/tests/: unit (core sources compiled in, prefixed
# API, UBSan), api-static (the API test linked with libhakmem.a), stress-tsan
# and stress-ubsan (the stress test on hak_malloc... under ThreadSanitizer and
# UBSan). Variant-independent programs that run under
# LD_PRELOAD of each variant's libhakmem.so live in build/tests/.

TEST_DIR    := $(BUILD)/tests
TEST_CFLAGS := $(BASE_CFLAGS) -O2 -fno-builtin -Itests -Icore
TEST_PROGS  := $(TEST_DIR)/api $(TEST_DIR)/stress $(TEST_DIR)/threads $(TEST_DIR)/fork $(TEST_DIR)/exhaustion \
               $(TEST_DIR)/large $(TEST_DIR)/arena $(TEST_DIR)/hooks $(TEST_DIR)/stats $(TEST_DIR)/libbroken_malloc.so $(TEST_DIR)/options \
               $(TEST_DIR)/options-static
SAN_CFLAGS   = $(BASE_CFLAGS) -O1 -DHAK_PREFIX_ONLY -DHAK_VARIANT=$(1) \
               -DHAK_VARIANT_HEADER='"variants/$(1).h"' -Icore -I. -Itests

.PHONY: test test-suites test-counts test-core test-bins test-profile test-leakcheck test-signals soak check-layers test-layers
# Every test script ends with its closing line, "<name>: N passed, N failed,
# N skipped" (tests/lib.sh), and appends it to the file TEST_TOTALS names.
# make test runs the suites (test-suites, which the other *.mk files extend)
# in a sub-make, then sums those lines (tests/totals.sh) into its own last
# line, "make test: N passed, N failed, N skipped", also when a suite failed
# and stopped the sub-make; its status is then non-zero.
TEST_TOTALS := $(BUILD)/test-totals
test:
	@mkdir -p $(BUILD) && rm -f $(TEST_TOTALS)
	@TEST_TOTALS=$(abspath $(TEST_TOTALS)) $(MAKE) --no-print-directory test-suites; tests/totals.sh $(TEST_TOTALS) $$?
test-suites: deps test-counts test-layers test-core test-workloads test-profile test-leakcheck test-signals
test-counts:
	@tests/counts.sh

$(TEST_DIR)/api: tests/api.c tests/check.h
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -Wno-alloc-size-larger-than -o $@ $< -ldl -lpthread
$(TEST_DIR)/stress: tests/stress.c
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< -lpthread -ldl
$(TEST_DIR)/threads: tests/threads.c tests/check.h core/hakmem.h
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< -lpthread -ldl
$(TEST_DIR)/fork: tests/fork.c tests/check.h
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< -lpthread -ldl
$(TEST_DIR)/hooks: tests/hooks.c tests/check.h core/hakmem.h
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< -lpthread -ldl
$(TEST_DIR)/stats: tests/stats.c tests/check.h core/hakmem.h
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< -ldl -lpthread
# The run-time options' program (tests/core.sh): under LD_PRELOAD, and linked
# with the flagship's libhakmem.a (a signal handler installed before hakmem's).
$(TEST_DIR)/options: tests/options.c
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $<
$(TEST_DIR)/options-static: tests/options.c $(BUILD)/$(VARIANT)/libhakmem.a
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -DOPTIONS_STATIC -o $@ $< $(BUILD)/$(VARIANT)/libhakmem.a -ldl -lpthread
$(TEST_DIR)/exhaustion: tests/exhaustion.c tests/check.h core/hakmem.h
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -Wno-alloc-size-larger-than -Wno-use-after-free -o $@ $< -lpthread -ldl
$(TEST_DIR)/arena: tests/arena.c tests/check.h core/hakmem.h
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -Wno-use-after-free -o $@ $< -ldl
$(TEST_DIR)/large: tests/large.c tests/check.h
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< -ldl
# The heap profiler's and leak checker's programs (tests/profile.sh,
# tests/leakcheck.sh): built with -g, read by google-pprof and valgrind.
$(TEST_DIR)/profile: tests/profile.c
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< -ldl
$(TEST_DIR)/libleak_ctor.so: tests/leak_ctor.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O1 -fPIC -shared -o $@ $<
$(TEST_DIR)/leaks: tests/leaks.c core/hakmem.h
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O1 -o $@ $< -lpthread
$(TEST_DIR)/leaks-source: tests/leaks.c core/hakmem.h $(BUILD)/hybrid/libhakmem.a
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O1 -DHAK_TRACE_SOURCE -Icore -o $@ $< $(BUILD)/hybrid/libhakmem.a -lpthread
$(TEST_DIR)/signals: tests/signals.c core/hakmem.h
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< -lpthread -ldl
$(TEST_DIR)/libbroken_malloc.so: tests/broken_malloc.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -fPIC -shared -o $@ $< -ldl

define test_variant_rules
$(BUILD)/$(1)/tests/unit: tests/unit.c tests/check.h $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $$(@D)
	$$(CC) $$(call SAN_CFLAGS,$(1)) -fsanitize=undefined -fno-sanitize-recover=all -o $$@ tests/unit.c $(CORE_SRCS) -lpthread
$(BUILD)/$(1)/tests/placement: tests/placement.c tests/check.h $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $$(@D)
	$$(CC) $$(call SAN_CFLAGS,$(1)) -fsanitize=undefined -fno-sanitize-recover=all -o $$@ tests/placement.c $(CORE_SRCS) -lpthread
$(BUILD)/$(1)/tests/faults: tests/faults.c tests/check.h $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $$(@D)
	$$(CC) $$(call SAN_CFLAGS,$(1)) -DHAK_FAULT_INJECTION=1 -fsanitize=undefined -fno-sanitize-recover=all -o $$@ tests/faults.c $(CORE_SRCS) -lpthread
$(BUILD)/$(1)/tests/api-static: tests/api.c tests/check.h $(BUILD)/$(1)/libhakmem.a
	@mkdir -p $$(@D)
	$$(CC) $$(TEST_CFLAGS) -Wno-alloc-size-larger-than -rdynamic -o $$@ tests/api.c $(BUILD)/$(1)/libhakmem.a -ldl -lpthread
$(BUILD)/$(1)/tests/stress-tsan: tests/stress.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $$(@D)
	$$(CC) $$(call SAN_CFLAGS,$(1)) -DSTRESS_PREFIX -fsanitize=thread -o $$@ tests/stress.c $(CORE_SRCS) -lpthread
$(BUILD)/$(1)/tests/stress-ubsan: tests/stress.c $(CORE_SRCS) $(CORE_HDRS)
	@mkdir -p $$(@D)
	$$(CC) $$(call SAN_CFLAGS,$(1)) -DSTRESS_PREFIX -fsanitize=undefined -fno-sanitize-recover=all -o $$@ tests/stress.c $(CORE_SRCS) -lpthread
endef
$(foreach v,$(VARIANTS),$(eval $(call test_variant_rules,$(v))))

# Every variant is tested as built by `make` and as its checked build.
TEST_BUILDS := $(foreach v,$(BUILD_VARIANTS),$(v) $(v)-check)

test-bins: $(foreach b,$(TEST_BUILDS),$(BUILD)/$(b)/libhakmem.so) $(TEST_PROGS) \
  $(foreach v,$(BUILD_VARIANTS),$(addprefix $(BUILD)/$(v)/tests/,unit placement api-static stress-tsan stress-ubsan faults))

test-core: test-bins
	@tests/core.sh $(TEST_BUILDS)

# make fuzz: the fuzzer (tests/fuzz.c) under every build of TEST_BUILDS
# (VARIANT= narrows them) and under glibc, FUZZ_SEEDS x FUZZ_OPS operations
# each, then the check that it catches tests/broken_malloc.c. One line per run
# (build, seed, ops, seconds, peak RSS); non-zero exit on any failure. About
# 20 s per run of 10^6 operations (glibc 10 s), one run at a time: 44 runs,
# about 14 minutes.
# The short version: make fuzz FUZZ_SEEDS=1 FUZZ_OPS=100000.
FUZZ_SEEDS ?= 1 2 3 4
FUZZ_OPS   ?= 1000000
.PHONY: fuzz
test-bins: $(TEST_DIR)/fuzz
$(TEST_DIR)/fuzz: tests/fuzz.c tests/check.h
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -Wno-alloc-size-larger-than -o $@ $<
fuzz: $(foreach b,$(TEST_BUILDS),$(BUILD)/$(b)/libhakmem.so) $(TEST_DIR)/fuzz $(TEST_DIR)/libbroken_malloc.so
	@tests/fuzz.sh --ops $(FUZZ_OPS) --seeds "$(FUZZ_SEEDS)" $(TEST_BUILDS) glibc

# The heap profiler and the leak checker: every variant (or VARIANT=) and the
# flagship's checked build, the flagship first (the scripts' checks of one
# library take the first: the profiler's dumps while a program sleeps need
# the scavenger, which hybrid has); about 10 s and 15 s.
TRACK_FIRST = $(firstword $(filter hybrid,$(BUILD_VARIANTS)) $(BUILD_VARIANTS))
TRACK_LIBS = $(foreach b,$(TRACK_FIRST) $(filter-out $(TRACK_FIRST),$(BUILD_VARIANTS)) $(TRACK_FIRST)-check,$(BUILD)/$(b)/libhakmem.so)
test-profile: $(TRACK_LIBS) $(TEST_DIR)/profile $(TEST_DIR)/stress $(TEST_DIR)/fork $(TEST_DIR)/leaks-source $(TEST_DIR)/options-static
	@tests/profile.sh $(TRACK_LIBS)
test-leakcheck: $(TRACK_LIBS) $(TEST_DIR)/leaks $(TEST_DIR)/leaks-source $(TEST_DIR)/libleak_ctor.so $(TEST_DIR)/profile $(TEST_DIR)/stress $(TEST_DIR)/fork
	@tests/leakcheck.sh $(TRACK_LIBS)

# Signal handlers that allocate: every build of TEST_BUILDS (VARIANT= narrows
# them), plainly, under the profiler and under the leak checker; about 2 s a
# build and mode.
test-signals: $(foreach b,$(TEST_BUILDS),$(BUILD)/$(b)/libhakmem.so) $(TEST_DIR)/signals
	@tests/signals.sh $(foreach b,$(TEST_BUILDS),$(BUILD)/$(b)/libhakmem.so)


# make soak [SOAK_RUNS=100] [SOAK_BUILDS="hybrid hybrid-check"] [SOAK_BUSY=1]:
# tests/soak.sh, the tests of signals, fork, threads and the scavenger's
# timing, SOAK_RUNS times each; SOAK_BUSY=1 beside two busy loops.
SOAK_RUNS   ?= 100
SOAK_BUILDS ?= hybrid hybrid-check
SOAK_BUSY   ?= 0
soak: $(foreach b,$(SOAK_BUILDS),$(BUILD)/$(b)/libhakmem.so) $(TEST_DIR)/signals $(TEST_DIR)/profile $(TEST_DIR)/fork \
      $(TEST_DIR)/threads $(TEST_DIR)/stress $(TEST_DIR)/stats
	@tests/soak.sh --runs $(SOAK_RUNS) $(if $(filter 1,$(SOAK_BUSY)),--busy) $(SOAK_BUILDS)

# The core's layering (core/internal.h), checked on the objects (nm): every
# build of TEST_BUILDS.
check-layers: $(foreach b,$(TEST_BUILDS),$(BUILD)/$(b)/libhakmem.so)
	@scripts/check-layers core/internal.h $(foreach b,$(TEST_BUILDS),$(BUILD)/$(b)/obj)
test-layers: $(foreach b,$(TEST_BUILDS),$(BUILD)/$(b)/libhakmem.so)
	@tests/layers.sh $(TEST_BUILDS)
