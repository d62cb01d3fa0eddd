# tracker/tracker.mk - the allocation tracker, included by the top-level Makefile.
#
#   make tracker        build/libhaktrack.so (the preload) and build/hakmem-trace
#   make test-tracker   tests/tracker.sh: 100 threads, fork, exit paths, a cut file,
#                       a full disk, the report's figures, replay under every allocator
#   make traces         record the real programs of tracker/traces.sh into
#                       results/traces/ and compile their replay files
#   make bench-traces [VARIANT=v] [REPS=n]
#                       replay them (harness/suites/traces.suite) under hakmem-<v>,
#                       glibc, jemalloc, mimalloc and tcmalloc -> results/<run>/report.md
#   make fidelity [VARIANT=v] [REPS=n]
#                       peak RSS of each real program and of its replay under the same
#                       allocators, both rankings -> results/traces/fidelity.md (.json)
#
# The preload is built like the allocator (PIC, initial-exec TLS, no builtin
# malloc) and links libunwind for call stacks; hakmem-trace links libdw
# (symbolizer/symbolizer.mk) for the frames' file:line.

TRACK_LIB     := $(BUILD)/libhaktrack.so
TRACK_BIN     := $(BUILD)/hakmem-trace
TRACK_HDRS    := tracker/trace_format.h tracker/trace_read.h tracker/report.h tracker/compile.h tracker/options.h
TRACK_SRCS    := tracker/main.c tracker/trace_read.c tracker/report.c tracker/compile.c tracker/options.c
# The preload: its own file and the option table it shares with hakmem-trace.
TRACK_LIB_SRCS := tracker/haktrack.c tracker/options.c
TRACK_LIB_DEPS := $(TRACK_LIB_SRCS) tracker/trace_format.h tracker/options.h
TRACK_LIBFLAGS := $(BASE_CFLAGS) -O2 -fPIC -shared -fvisibility=hidden -ftls-model=initial-exec \
                  -fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc -fno-builtin-realloc
TRACK_TESTS   := $(BUILD)/tests/libhaktrack-drop.so $(BUILD)/tests/libhaktrack-dup.so \
                 $(BUILD)/tests/libhaktrack-discard.so $(BUILD)/tests/tracker_threads \
                 $(BUILD)/tests/tracker_fork $(BUILD)/tests/tracker_mix $(BUILD)/tests/tracker_churn \
                 $(BUILD)/tests/tracker_errno $(BUILD)/tests/tracker_realloc_sites $(BUILD)/tests/tracker_sites \
                 $(BUILD)/tests/libtracker_bump.so

.PHONY: tracker test-tracker traces bench-traces deps-traces fidelity
all: tracker
test-suites: test-tracker
tracker: $(TRACK_LIB) $(TRACK_BIN)

$(TRACK_LIB): $(TRACK_LIB_DEPS)
	@mkdir -p $(@D)
	$(CC) $(TRACK_LIBFLAGS) -o $@ $(TRACK_LIB_SRCS) -ldl -lpthread -lunwind -lzstd

# file:line of frames: symbolizer/debuginfo.c (libdw), as in hakmem-symbolize.
# -flto: the walk (trace_read.c) inlined into the report's loop (report.c):
# sqlite3's leaks report 0.60 -> 0.55 s (medians of 7, heaptrack_print 0.57).
$(TRACK_BIN): $(TRACK_SRCS) $(TRACK_HDRS) $(SYM_SRCS) $(SYM_HDRS)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -flto -DHT_SOURCE_DIR='"$(CURDIR)/tracker"' -o $@ $(TRACK_SRCS) $(SYM_SRCS) -lm $(SYM_LIBS) -lzstd

# Trackers with an injected fault: one drops one event in 1000, one writes
# one event in 1000 twice (the tests must notice both); and one that makes
# its records but does not write them (millions of sampled blocks, no disk).
$(BUILD)/tests/libhaktrack-drop.so: $(TRACK_LIB_DEPS)
	@mkdir -p $(@D)
	$(CC) $(TRACK_LIBFLAGS) -DHT_TEST_DROP_EVERY=1000 -o $@ $(TRACK_LIB_SRCS) -ldl -lpthread -lunwind -lzstd
$(BUILD)/tests/libhaktrack-dup.so: $(TRACK_LIB_DEPS)
	@mkdir -p $(@D)
	$(CC) $(TRACK_LIBFLAGS) -DHT_TEST_DUP_EVERY=1000 -o $@ $(TRACK_LIB_SRCS) -ldl -lpthread -lunwind -lzstd
$(BUILD)/tests/libhaktrack-discard.so: $(TRACK_LIB_DEPS)
	@mkdir -p $(@D)
	$(CC) $(TRACK_LIBFLAGS) -DHT_TEST_DISCARD -o $@ $(TRACK_LIB_SRCS) -ldl -lpthread -lunwind -lzstd

$(BUILD)/tests/libtracker_bump.so: tests/tracker/bump.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -fPIC -shared -fvisibility=hidden -fno-builtin -o $@ $<

$(BUILD)/tests/tracker_%: tests/tracker/%.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O1 -fno-builtin -o $@ $< -lpthread

$(WL_DIR)/replay: tracker/trace_format.h

# tests/symbolize.sh records and reports a trace (symbolizer/symbolizer.mk is
# included before this file, where TRACK_* are not yet defined).
test-symbolize: $(TRACK_LIB) $(TRACK_BIN)

test-tracker: deps-bench tracker $(TRACK_TESTS) $(WL_DIR)/replay $(foreach v,$(BUILD_VARIANTS),$(BUILD)/$(v)/libhakmem.so) \
              $(BUILD)/tests/libbroken_malloc.so
	@tests/tracker.sh

deps-traces:
	@scripts/install-deps.sh traces

traces: deps-traces tracker $(WL_DIR)/replay
	@tracker/traces.sh record results/traces

BENCH_TRACES_REPS := $(if $(filter command line,$(origin REPS)),$(REPS),3)

fidelity: deps-traces tracker $(WL_DIR)/replay $(BUILD)/$(VARIANT)/libhakmem.so
	@test -f results/traces/python.replay || $(MAKE) --no-print-directory traces
	@VARIANT=$(VARIANT) tracker/traces.sh fidelity results/traces $(BENCH_TRACES_REPS)
bench-traces: deps-traces $(BUILD)/$(VARIANT)/libhakmem.so harness $(WL_DIR)/replay
	@test -f results/traces/python.replay || $(MAKE) --no-print-directory traces
	@run=results/$$(date +%Y%m%d-%H%M%S)-traces-$(VARIANT); start=$$(date +%s); \
	$(HARNESS_BIN) run --suite harness/suites/traces.suite --hakmem $(VARIANT) --reps $(BENCH_TRACES_REPS) \
	  --out $$run --name traces >/dev/null \
	&& $(PY) scripts/report.py $$run \
	&& echo "bench-traces: finished in $$(( $$(date +%s) - start )) s" \
	&& echo "report: $$run/report.md  (self-contained: $$run/report.html)"
