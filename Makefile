# hakmem — one allocator core, several build-time variants, and the harness that
# compares them with glibc, jemalloc, mimalloc and tcmalloc.
#
#   make                     build every variant: build/<variant>/libhakmem.{so,a}
#   make VARIANT=<name>      build one variant
#   make test                build and run the whole test suite, for every variant
#   make bench [VARIANT=..]  the main job: deps, build, benchmark, report
#   make install [PREFIX=..] every variant, headers, pkg-config file and the
#                            hakmem command under PREFIX (install/install.mk)
#   make uninstall [PREFIX=..]  removes exactly what make install put there
#   make help                this text and the documented make variables
#
# Documented make variables (the only build-time knobs):
#   VARIANT   which variant to build / benchmark (see VARIANTS below)
#   CHECK=1   the checked build of the variant(s): build/<variant>-check/, every
#             free and allocation verified (README, "Misuse"); `make bench
#             CHECK=1` benchmarks hakmem-<variant>-check beside the release build
#   CC        C compiler (default: cc)
#   OPT       optimisation flags for the library (default: -O2)
#   QUICK=1   shorter benchmark runs (make bench, make ablation)
#   REPS=n    repetitions per benchmark (default 5, QUICK=1: 3)
#   CALLGRIND=1  also count instructions per op under valgrind (make bench)
#   RUN=dir   the result directory for `make report`
#   PREFIX    where make install puts hakmem (default: /usr/local)
#   DESTDIR   a staging directory prepended to PREFIX (packaging)

VARIANTS := mini_magazine bitmap superslab dynamic_flush hybrid large_mappings

CC      ?= cc
OPT     ?= -O2
PY      := /usr/bin/python3
BUILD   := build

ifneq ($(origin VARIANT),undefined)
ifeq ($(filter $(VARIANT),$(VARIANTS)),)
$(error unknown VARIANT '$(VARIANT)'; valid variants: $(VARIANTS))
endif
BUILD_VARIANTS := $(VARIANT)
else
BUILD_VARIANTS := $(VARIANTS)
# The flagship is the default for `make bench`; until it exists, the first variant.
VARIANT := $(firstword $(filter hybrid,$(VARIANTS)) $(VARIANTS))
endif
CHECK ?= 0
ifeq ($(filter 0 1,$(CHECK)),)
$(error CHECK must be 0 or 1, not '$(CHECK)')
endif
# A build is a variant, or a variant's checked build <variant>-check.
CHECKED_BUILDS := $(addsuffix -check,$(VARIANTS))
LIB_BUILDS := $(if $(filter 1,$(CHECK)),$(addsuffix -check,$(BUILD_VARIANTS)),$(BUILD_VARIANTS))

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -g
# Library flags: PIC, hidden by default (exports are marked), initial-exec TLS,
# no builtin assumptions about malloc (we are malloc).
LIB_CFLAGS := $(BASE_CFLAGS) $(OPT) -fPIC -fvisibility=hidden -ftls-model=initial-exec \
              -fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc -fno-builtin-realloc \
              -fno-stack-protector -fno-plt -Icore -I.
LIB_LDLIBS := -lpthread

CORE_SRCS := $(sort $(wildcard core/*.c))
CORE_HDRS := $(wildcard core/*.h) $(wildcard variants/*.h)

.PHONY: all lib help test deps deps-bench clean $(VARIANTS) $(CHECKED_BUILDS)
all: lib
lib: $(foreach b,$(LIB_BUILDS),$(BUILD)/$(b)/libhakmem.so $(BUILD)/$(b)/libhakmem.a)

# Per-build rules: $(1) the build's name (its directory), $(2) its variant,
# $(3) its extra flags. Objects in build/<name>/obj, flags remembered in
# build/<name>/cflags so that a change of flags rebuilds (no stale objects
# across variants or flags).
define build_rules
$(BUILD)/$(1)/cflags: FORCE
	@mkdir -p $$(@D)
	@echo '$$(LIB_CFLAGS) -DHAK_VARIANT=$(2) $(3)' | cmp -s - $$@ || echo '$$(LIB_CFLAGS) -DHAK_VARIANT=$(2) $(3)' > $$@
$(BUILD)/$(1)/obj/%.o: core/%.c $(CORE_HDRS) variants/$(2).h $(BUILD)/$(1)/cflags
	@mkdir -p $$(@D)
	$$(CC) $$(LIB_CFLAGS) -DHAK_VARIANT=$(2) -DHAK_VARIANT_HEADER='"variants/$(2).h"' $(3) -c $$< -o $$@
$(BUILD)/$(1)/libhakmem.so: $(patsubst core/%.c,$(BUILD)/$(1)/obj/%.o,$(CORE_SRCS))
	$$(CC) -shared -Wl,-z,nodelete -Wl,--version-script=core/exports.map -o $$@ $$^ $$(LIB_LDLIBS)
# The static library is one relocatable object, so that a program linked with
# it gets all of hakmem (the control API of api.c too, which a program may
# reach only through dlsym) whichever functions it calls.
$(BUILD)/$(1)/libhakmem.a: $(patsubst core/%.c,$(BUILD)/$(1)/obj/%.o,$(CORE_SRCS))
	ld -r -o $(BUILD)/$(1)/hakmem.o $$^ && rm -f $$@ && ar rcs $$@ $(BUILD)/$(1)/hakmem.o
$(1): $(BUILD)/$(1)/libhakmem.so $(BUILD)/$(1)/libhakmem.a
endef
$(foreach v,$(VARIANTS),$(eval $(call build_rules,$(v),$(v),)))
$(foreach v,$(VARIANTS),$(eval $(call build_rules,$(v)-check,$(v),-DHAK_CHECK=1)))
FORCE:

deps:
	@scripts/install-deps.sh test
deps-bench:
	@scripts/install-deps.sh bench

-include tests/tests.mk
-include workloads/workloads.mk
-include harness/harness.mk
-include symbolizer/symbolizer.mk
-include tracker/tracker.mk
-include install/install.mk

help:
	@sed -n '2,/^$$/p' Makefile | sed 's/^# \{0,1\}//'
	@echo "variants: $(VARIANTS) (checked builds: <variant>-check)"

clean:
	rm -rf $(BUILD)
