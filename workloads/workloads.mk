# workloads/workloads.mk - make fragment included by the top-level Makefile.
#
#   make workloads       build every workload into build/workloads/<name>
#   make test-workloads  build them and run tests/workloads.sh
#
# Each workload is workloads/<name>.c linked with workloads/common.c. The
# compile line is remembered in build/workloads/cflags so a change of CC or
# flags rebuilds everything.

WL_NAMES   := larson json mir tiny tiny_mt random_mixed frag xthread burst_idle large \
              batch_free queue_pass large_reuse replay large_churn random_xthread
WL_DIR     := $(BUILD)/workloads
WL_CFLAGS  := $(BASE_CFLAGS) -O2
WL_LDLIBS  := -lpthread -ldl -lm
WL_BINS    := $(addprefix $(WL_DIR)/,$(WL_NAMES))
WL_HDRS    := $(wildcard workloads/*.h)

.PHONY: workloads test-workloads wl-force
all: workloads
workloads: $(WL_BINS)

$(WL_DIR)/cflags: wl-force
	@mkdir -p $(@D)
	@echo '$(CC) $(WL_CFLAGS) $(WL_LDLIBS)' | cmp -s - $@ || echo '$(CC) $(WL_CFLAGS) $(WL_LDLIBS)' > $@

$(WL_DIR)/common.o: workloads/common.c $(WL_HDRS) $(WL_DIR)/cflags
	$(CC) $(WL_CFLAGS) -c $< -o $@

$(WL_BINS): $(WL_DIR)/%: workloads/%.c $(WL_DIR)/common.o $(WL_HDRS) $(WL_DIR)/cflags
	$(CC) $(WL_CFLAGS) $< $(WL_DIR)/common.o -o $@ $(WL_LDLIBS)

test-workloads: workloads $(BUILD)/tests/libbroken_malloc.so
	tests/workloads.sh
