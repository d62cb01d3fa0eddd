# symbolizer/symbolizer.mk - file:line for stack frames, included by the Makefile.
#
#   make symbolizer     build/hakmem-symbolize: the program the leak checker in
#                       libhakmem.so runs at its report (found next to the library:
#                       build/<variant>/../hakmem-symbolize)
#   make test-symbolize tests/symbolize.sh: file:line in the leak report and in
#                       hakmem-trace report, checked against addr2line
#
# The DWARF reading (symbolizer/debuginfo.c, elfutils' libdw) is linked into
# hakmem-symbolize and hakmem-trace, never into libhakmem.so.

SYM_BIN  := $(BUILD)/hakmem-symbolize
SYM_SRCS := symbolizer/debuginfo.c
SYM_HDRS := symbolizer/debuginfo.h
SYM_LIBS := -ldw -lelf

.PHONY: symbolizer test-symbolize
all: symbolizer
test-suites: test-symbolize
symbolizer: $(SYM_BIN)

$(SYM_BIN): symbolizer/main.c $(SYM_SRCS) $(SYM_HDRS)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) -O2 -o $@ symbolizer/main.c $(SYM_SRCS) $(SYM_LIBS)

# The test program: a known call chain, built with -g and without.
SYM_TEST_FLAGS := -std=c11 $(WARN) -O1 -fno-optimize-sibling-calls -fno-builtin
$(BUILD)/tests/symbolize_chain: tests/symbolize_chain.c
	@mkdir -p $(@D)
	$(CC) $(SYM_TEST_FLAGS) -g -o $@ $<
$(BUILD)/tests/symbolize_chain_nodebug: tests/symbolize_chain.c
	@mkdir -p $(@D)
	$(CC) $(SYM_TEST_FLAGS) -o $@ $<

SYM_TEST_LIB := $(BUILD)/$(firstword $(filter hybrid,$(BUILD_VARIANTS)) $(BUILD_VARIANTS))/libhakmem.so
# (the tracker's programs: tracker/tracker.mk adds them, it is included after this file)
test-symbolize: $(SYM_BIN) $(SYM_TEST_LIB) $(BUILD)/tests/symbolize_chain \
                $(BUILD)/tests/symbolize_chain_nodebug
	@tests/symbolize.sh $(SYM_TEST_LIB)

# The leak checker's tests read reports with file:line: the program is built first.
test-leakcheck test-profile: $(SYM_BIN)
