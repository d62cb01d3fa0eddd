# harness.mk — the benchmark runner, the standard suite and the report.
# Included by the top-level Makefile (uses CC, BASE_CFLAGS, BUILD, PY, VARIANT,
# VARIANTS).
#
#   make harness                 build the runner: build/harness/hakbench
#   make bench [VARIANT=v] [CHECK=1] [QUICK=1] [REPS=n] [CALLGRIND=1] [FLOOR=0]
#                                standard suite: hakmem-<v>, glibc, jemalloc,
#                                mimalloc, tcmalloc and the floor (every case
#                                with --floor: the workload's own cost; FLOOR=0
#                                leaves it out) -> results/<run>/report.md
#   make ablation [QUICK=1] [FLOOR=0]   every built variant through the standard suite
#   make report RUN=results/<run>   re-render summary.json, report.md/.html
#   make test-harness            the runner's tests (part of `make test`)

HARNESS_BIN   := $(BUILD)/harness/hakbench
HARNESS_SRCS  := $(sort $(wildcard harness/*.c))
HARNESS_TLIBS := $(BUILD)/harness/libcrashalloc.so $(BUILD)/harness/libnoalloc.so $(BUILD)/harness/libbadopts.so
HARNESS_TBINS := $(BUILD)/harness/fakewl

# QUICK=1 (any value but 0) selects the short suite and fewer repetitions.
BENCH_QUICK := $(filter-out 0 no,$(QUICK))
BENCH_SUITE := harness/suites/$(if $(BENCH_QUICK),quick,standard).suite
REPS        ?= $(if $(BENCH_QUICK),3,5)
BENCH_CG    := $(if $(filter-out 0 no,$(CALLGRIND)),--callgrind harness/suites/callgrind.suite)
# FLOOR=0 (or no): no floor runs; the runner's default is to run them.
BENCH_FLOOR := $(if $(filter 0 no,$(FLOOR)),--no-floor)
BENCH_TAG   := $(if $(BENCH_QUICK),-quick)
comma := ,
space := $(empty) $(empty)

.PHONY: harness bench ablation report test-harness harness-testbins
all: harness
test: test-harness

harness: $(HARNESS_BIN)

$(HARNESS_BIN): $(HARNESS_SRCS) harness/hakbench.h
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -o $@ $(HARNESS_SRCS) -lm -ldl

# Test fixtures: an allocator that aborts after N mallocs, a preload that
# replaces nothing, one whose option table has an unreadable line, and a fake
# workload that follows the workload contract.
$(BUILD)/harness/lib%.so: tests/harness/%.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -fPIC -shared -o $@ $<
$(BUILD)/harness/fakewl: tests/harness/fakewl.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -o $@ $< -ldl
harness-testbins: $(HARNESS_TLIBS) $(HARNESS_TBINS)

# The tests use the fake workload only, so they do not wait for every real
# workload to build; one hakmem variant is built to check that its option
# table is recorded.
test-harness: harness harness-testbins $(BUILD)/$(VARIANT)/libhakmem.so
	@HARNESS_VARIANT=$(VARIANT) tests/harness.sh

# A workload that does not build yet is reported by the runner (its runs are
# recorded as skipped), so `bench` builds workloads with -k and goes on.
# CHECK=1: the variant's checked build runs beside it, so the report shows
# what checking costs.
BENCH_HAKMEM := $(VARIANT)$(if $(filter 1,$(CHECK)),$(comma)$(VARIANT)-check)
BENCH_CHECKTAG := $(if $(filter 1,$(CHECK)),-check)

bench: deps-bench $(BUILD)/$(VARIANT)/libhakmem.so $(if $(filter 1,$(CHECK)),$(BUILD)/$(VARIANT)-check/libhakmem.so) harness
	@$(MAKE) --no-print-directory -k workloads || echo "bench: some workloads did not build; the runner records their runs as skipped" >&2
	@run=results/$$(date +%Y%m%d-%H%M%S)-bench-$(VARIANT)$(BENCH_CHECKTAG)$(BENCH_TAG); start=$$(date +%s); \
	$(HARNESS_BIN) run --suite $(BENCH_SUITE) --hakmem $(BENCH_HAKMEM) --reps $(REPS) --out $$run $(BENCH_CG) $(BENCH_FLOOR) >/dev/null \
	&& $(PY) scripts/report.py $$run \
	&& echo "bench: finished in $$(( $$(date +%s) - start )) s" \
	&& echo "report: $$run/report.md  (self-contained: $$run/report.html)"

ablation: deps-bench lib harness
	@$(MAKE) --no-print-directory -k workloads || echo "ablation: some workloads did not build; the runner records their runs as skipped" >&2
	@run=results/$$(date +%Y%m%d-%H%M%S)-ablation$(BENCH_TAG); start=$$(date +%s); \
	$(HARNESS_BIN) run --suite $(BENCH_SUITE) --hakmem $(subst $(space),$(comma),$(strip $(VARIANTS))) \
	  --reps $(if $(filter command line,$(origin REPS)),$(REPS),3) --out $$run --name ablation $(BENCH_CG) $(BENCH_FLOOR) >/dev/null \
	&& $(PY) scripts/report.py $$run \
	&& echo "ablation: finished in $$(( $$(date +%s) - start )) s" \
	&& echo "report: $$run/report.md  (self-contained: $$run/report.html)"

report:
	@test -n "$(RUN)" || { echo "usage: make report RUN=results/<run>" >&2; exit 2; }
	@$(PY) scripts/report.py $(RUN)
