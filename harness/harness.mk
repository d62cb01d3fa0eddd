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
#   make bench REV=<rev> ...     the same, with hakmem-<v> built from revision <rev>
#                                (its own git worktree, build/rev/<sha>/): the
#                                history's figures of a past commit
#   make bench SLURM=1 [SHARDS=n] [PARTITION=p] [SLURM_ARGS='...']
#                                the same matrix as a Slurm job array of SHARDS
#                                shards (default 3), merged (scripts/slurm)
#   make ablation [QUICK=1] [FLOOR=0]   every built variant through the standard suite
#   make ab [A=rev] [B=rev] [VARIANT=v] [SUITE=quick|standard|file] [REPS=n]
#           [CALLGRIND=1] [REFS=1] [CONFIDENCE=c] [REPO=dir]
#                                two revisions (default A=main, B=the working tree,
#                                uncommitted changes included) built in their own
#                                git worktrees (build/rev/<sha>/) and run as two
#                                allocators of one interleaved matrix (7 reps by
#                                default); prints the verdict per workload
#   make history                 results/history.html from results/history.jsonl
#                                (every rendered run is appended to it)
#   make report RUN=results/<run>   re-render summary.json, report.md/.html
#   make test-harness            the runner's tests (part of `make test`)
#   make test-harness-scale      A/B, busy machine and the one-node Slurm cluster
#                                (part of `make test`; needs the workloads)

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

.PHONY: harness bench ablation report test-harness harness-testbins ab history test-harness-scale
all: harness
test-suites: test-harness test-harness-scale

harness: $(HARNESS_BIN)

$(HARNESS_BIN): $(HARNESS_SRCS) harness/hakbench.h workloads/exit_status.h
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -o $@ $(HARNESS_SRCS) -lm -ldl

# Test fixtures: an allocator that aborts after N mallocs, a preload that
# replaces nothing, one whose option table has an unreadable line, and a fake
# workload that follows the workload contract.
$(BUILD)/harness/lib%.so: tests/harness/%.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -fPIC -shared -o $@ $<
$(BUILD)/harness/fakewl: tests/harness/fakewl.c workloads/exit_status.h
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

# SLURM=1: the matrix as a job array (scripts/slurm); SHARDS (default 3),
# PARTITION, SLURM_ARGS (more sbatch arguments, each as --sbatch-arg).
SHARDS ?= 3
SLURM_OPTS = --shards $(SHARDS) $(if $(PARTITION),--partition $(PARTITION)) $(foreach a,$(SLURM_ARGS),--sbatch-arg $(a))

bench: deps-bench $(BUILD)/$(VARIANT)/libhakmem.so $(if $(filter 1,$(CHECK)),$(BUILD)/$(VARIANT)-check/libhakmem.so) harness
	@$(MAKE) --no-print-directory -k workloads || echo "bench: some workloads did not build; the runner records their runs as skipped" >&2
	@run=results/$$(date +%Y%m%d-%H%M%S)-bench-$(VARIANT)$(BENCH_CHECKTAG)$(BENCH_TAG)$(if $(filter 1,$(SLURM)),-slurm); start=$$(date +%s); \
	$(if $(filter 1,$(SLURM)),scripts/slurm --suite $(BENCH_SUITE) $(SLURM_OPTS) --out $$run -- ,$(HARNESS_BIN) run --suite $(BENCH_SUITE) --out $$run) \
	  $(if $(REV),--rev '$(REV)' --variant $(VARIANT),--hakmem $(BENCH_HAKMEM)) --reps $(REPS) $(BENCH_CG) $(BENCH_FLOOR) >/dev/null \
	&& $(if $(filter 1,$(SLURM)),true,$(PY) scripts/report.py $$run) \
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

# make ab: A defaults to main, B to the working tree (hakbench ab without
# --b). SUITE is a suite name under harness/suites or a file; REPS defaults
# to 7 here (the exact interval needs enough repetitions a side).
A ?= main
CONFIDENCE ?= 0.95
AB_SUITE = $(if $(findstring /,$(SUITE)),$(SUITE),harness/suites/$(or $(SUITE),$(if $(BENCH_QUICK),quick,quick)).suite)
AB_REPS  = $(if $(filter command line,$(origin REPS)),$(REPS),7)
ab: deps-bench harness
	@$(MAKE) --no-print-directory -k workloads || echo "ab: some workloads did not build; the runner records their runs as skipped" >&2
	@run=results/$$(date +%Y%m%d-%H%M%S)-ab-$(VARIANT); start=$$(date +%s); \
	$(HARNESS_BIN) ab --a '$(A)' $(if $(B),--b '$(B)') --variant $(VARIANT) --suite $(AB_SUITE) --reps $(AB_REPS) \
	  --confidence $(CONFIDENCE) --out $$run $(BENCH_CG) $(if $(filter 1,$(REFS)),--references) $(if $(REPO),--repo '$(REPO)') >/dev/null \
	&& $(PY) scripts/report.py $$run >/dev/null \
	&& $(PY) scripts/verdict $$run \
	&& echo "ab: finished in $$(( $$(date +%s) - start )) s" \
	&& echo "report: $$run/report.md  (self-contained: $$run/report.html)"

history:
	@$(PY) scripts/history.py html --history results/history.jsonl --out results/history.html

# The tests of make ab, the busy-machine warning and the Slurm path run real
# workloads and build revisions: a target of their own, after the workloads.
test-harness-scale: harness workloads $(BUILD)/$(VARIANT)/libhakmem.so
	@HARNESS_VARIANT=$(VARIANT) tests/harness/scale.sh
