# install/install.mk — make install / make uninstall, included by the Makefile.
#
#   make install [PREFIX=/usr/local] [DESTDIR=]  every variant (built first if
#        needed) under PREFIX: lib/hakmem/<variant>/libhakmem.{so,a},
#        lib/libhakmem.{so,a} -> the default variant (VARIANT, hybrid unless
#        named), include/hakmem.h and hakmem_allocator.hpp,
#        lib/pkgconfig/hakmem.pc, bin/hakmem, lib/hakmem/hakmem-symbolize, the tracker (bin/hakmem-trace,
#        lib/hakmem/libhaktrack.so, share/hakmem/trace_html.py); CHECK=1 adds the checked builds
#        (lib/hakmem/<variant>-check/). DESTDIR stages for a package.
#   make uninstall [PREFIX=..] [DESTDIR=]  removes what the install's manifest
#        (PREFIX/lib/hakmem/.manifest) lists, and nothing else
#   make test-install  installs into a temporary prefix and tests the result
#        (tests/install.sh)

PREFIX  ?= /usr/local
DESTDIR ?=
INSTALL_BUILDS := $(VARIANTS) $(if $(filter 1,$(CHECK)),$(CHECKED_BUILDS))
HAK_VERSION     = $(shell sed -n 's/^.define HAK_VERSION_STRING "\(.*\)"$$/\1/p' core/hakmem.h)
libs_of = $(foreach b,$(1),$(BUILD)/$(b)/libhakmem.so $(BUILD)/$(b)/libhakmem.a)

.PHONY: install uninstall test-install
test-suites: test-install
install: $(call libs_of,$(INSTALL_BUILDS)) $(SYM_BIN) $(TRACK_LIB) $(TRACK_BIN)
	@install/install.sh install --prefix '$(PREFIX)' --destdir '$(DESTDIR)' --default '$(VARIANT)' \
	  --version '$(HAK_VERSION)' --build-dir '$(BUILD)' $(INSTALL_BUILDS)
uninstall:
	@install/install.sh uninstall --prefix '$(PREFIX)' --destdir '$(DESTDIR)'

test-install: $(call libs_of,$(VARIANTS)) $(SYM_BIN) $(TRACK_LIB) $(TRACK_BIN) $(BUILD)/tests/tracker_sites $(BUILD)/tests/symbolize_chain
	@MAKE='$(MAKE)' tests/install.sh
