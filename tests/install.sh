#!/usr/bin/env bash
# tests/install.sh — make install and make uninstall into temporary prefixes,
# and what they install: the layout, the pkg-config file (a C program built
# with it runs without LD_LIBRARY_PATH), the hakmem command (variant, stats,
# --list, bad input, exit status, what the programs it starts inherit, an
# LD_PRELOAD already set, --trace: the installed tracker records a program
# that the installed hakmem-trace reports), CHECK=1 (when the checked builds are built; SKIP
# otherwise), the C++ allocator (tests/cxx_allocator.cpp, built with
# g++ -std=c++17 against the installed header and libhakmem.a), DESTDIR
# staging, a second install into the same prefix, and that uninstall removes
# exactly what was installed.
# Prints `PASS install: <what>` / `FAIL install: <what>` per check (with the
# output of a failed one), `SKIP install: <what>: <why>` for a check that
# could not run here (never counted as passed), and a final count
# (tests/lib.sh); exits 1 on any failure. `make test-install` builds the
# libraries and runs it; it installs every variant with hybrid the default,
# whatever VARIANT= says.
# Takes about 4 s on an idle machine (the CHECK=1 install adds one).
set -u
. "$(dirname "$0")/lib.sh"
unset LD_PRELOAD HAKMEM_STATS LD_LIBRARY_PATH PKG_CONFIG_PATH
cd "$(dirname "$0")/.." || exit 2
root=$PWD
MAKE=${MAKE:-make}
CC=${CC:-cc}
VARIANTS="mini_magazine bitmap superslab dynamic_flush hybrid large_mappings"

tmp=$(mktemp -d /tmp/hakmem-install.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
log=$tmp/log # what a check said: shown when it fails (result, check), then emptied
TEST_PREFIX="install: " TEST_LOG=$log TEST_DETAIL=15
has() { command -v "$1" >/dev/null 2>&1; }
# status_is <n> <command...>: the command exits with status n and says why on stderr
status_is() {
  local want=$1; shift
  "$@" >"$tmp/out" 2>"$tmp/err"
  local st=$?
  cat "$tmp/err" >>"$log"
  [ "$st" = "$want" ] && [ -s "$tmp/err" ] || { echo "exit $st, expected $want" >>"$log"; return 1; }
}
inst() { # inst <make args...>: make install or uninstall as the lead's make would run it
  "$MAKE" -s --no-print-directory -C "$root" "$@" CHECK=0
}
empty_dir() { [ -d "$1" ] && [ -z "$(ls -A "$1")" ] || { echo "left in $1:"; find "$1" -mindepth 1; return 1; } >&2; }

version=$(sed -n 's/^#define HAK_VERSION_STRING "\(.*\)"$/\1/p' core/hakmem.h)
P=$tmp/prefix
mkdir -p "$P"

# ---- make install ----------------------------------------------------------------
check "make install PREFIX=<tmp> VARIANT=hybrid" inst install PREFIX="$P" VARIANT=hybrid
layout() {
  local v f
  for v in $VARIANTS; do
    for f in libhakmem.so libhakmem.a; do
      cmp "build/$v/$f" "$P/lib/hakmem/$v/$f" || return 1
    done
  done
  for f in libhakmem.so libhakmem.a; do
    [ -L "$P/lib/$f" ] && [ "$(readlink "$P/lib/$f")" = "hakmem/hybrid/$f" ] || { echo "lib/$f: $(ls -l "$P/lib/$f")"; return 1; }
  done
  cmp core/hakmem.h "$P/include/hakmem.h" && cmp include/hakmem_allocator.hpp "$P/include/hakmem_allocator.hpp" &&
    [ -f "$P/lib/pkgconfig/hakmem.pc" ] && [ -x "$P/bin/hakmem" ] && [ -f "$P/lib/hakmem/.manifest" ]
}
check "layout: lib/hakmem/<variant>/libhakmem.{so,a} for all 5 variants, lib/libhakmem.{so,a} -> hakmem/hybrid, both headers, hakmem.pc, bin/hakmem, the manifest" layout

# ---- pkg-config ----------------------------------------------------------------------
export PKG_CONFIG_PATH=$P/lib/pkgconfig
if has pkg-config; then
  flags=$(pkg-config --cflags --libs hakmem 2>"$log")
  echo "pkg-config --cflags --libs hakmem: $flags" >>"$log"
  words=" $flags "
  [[ $words == *" -I$P/include "* && $words == *" -L$P/lib "* && $words == *" -lhakmem "* ]]
  result $? "pkg-config --cflags --libs hakmem: -I<prefix>/include -L<prefix>/lib -lhakmem"
  sflags=" $(pkg-config --static --libs hakmem 2>>"$log") "
  echo "--static: $sflags" >>"$log"
  [[ $sflags == *" -lhakmem "*"-lpthread "* ]]
  result $? "pkg-config --static --libs hakmem adds -lpthread after -lhakmem"
  check "pkg-config --modversion hakmem is $version (the header's HAK_VERSION_STRING)" \
    test "$(pkg-config --modversion hakmem 2>&1)" = "$version"
  # shellcheck disable=SC2046  # the flags are words
  check "a C program builds with \$(pkg-config --cflags --libs hakmem)" \
    $CC -std=c11 -Wall -Wextra -Werror -o "$tmp/linked" tests/install_linked.c $(pkg-config --cflags --libs hakmem)
  check "it runs without LD_LIBRARY_PATH: hak_variant() is hybrid, header and library agree on the version, malloc is hakmem's" \
    "$tmp/linked" hybrid
  check "LD_LIBRARY_PATH=<prefix>/lib/hakmem/bitmap overrides the run path: hak_variant() is bitmap" \
    env LD_LIBRARY_PATH="$P/lib/hakmem/bitmap" "$tmp/linked" bitmap
else
  skip "pkg-config --cflags --libs hakmem, a C program built and run with it" "pkg-config is not installed"
fi

# ---- the hakmem command ----------------------------------------------------------------
H=$P/bin/hakmem
check "a program that knows nothing of hakmem builds" $CC -std=c11 -Wall -Wextra -Werror -o "$tmp/preloaded" tests/install_preloaded.c -ldl
# served <variant> <stdout file>: the program reports that variant, preloaded from the prefix
served() {
  grep -qx "variant $1" "$2" && grep -q "^preload $P/lib/hakmem/$1/libhakmem.so\( \|$\)" "$2"
}
"$H" --variant mini_magazine --stats json "$tmp/preloaded" >"$tmp/out" 2>"$tmp/err"
st=$?
{ echo "exit $st"; cat "$tmp/out"; } >>"$log"
[ $st = 0 ] && served mini_magazine "$tmp/out" >>"$log"
result $? "hakmem --variant mini_magazine --stats json prog: mini_magazine from <prefix>/lib/hakmem serves it"
if has python3; then
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert isinstance(d, dict) and d, d' "$tmp/err" >"$log" 2>&1 ||
    { echo "stderr was:"; head -c 600 "$tmp/err"; } >>"$log"
  result $? "... and its stderr is the statistics, one JSON object"
else
  skip "the JSON statistics on stderr parse" "python3 is not installed"
fi
"$H" "$tmp/preloaded" >"$tmp/out" 2>"$tmp/err"
st=$?
{ echo "exit $st"; cat "$tmp/err" "$tmp/out"; } >>"$log"
[ $st = 0 ] && served hybrid "$tmp/out" >>"$log" && [ ! -s "$tmp/err" ]
result $? "hakmem prog: the default, hybrid, and no statistics without --stats"
"$H" --stats=text --variant=bitmap "$tmp/preloaded" >"$tmp/out" 2>"$tmp/err"
st=$?
{ echo "exit $st"; cat "$tmp/err" "$tmp/out"; } >>"$log"
[ $st = 0 ] && served bitmap "$tmp/out" >>"$log" && [ "$(head -c 1 "$tmp/err")" != "{" ] &&
  grep -q '^hakmem .*, variant bitmap: now$' "$tmp/err" &&
  grep -Eq '^MALLOC: +[0-9]+ \( *[0-9.]+ MiB\) Bytes in use by application$' "$tmp/err" &&
  grep -Eq '^MALLOC: = +[0-9]+ \( *[0-9.]+ MiB\) Bytes mapped \(Total\)$' "$tmp/err"
result $? "hakmem --stats=text --variant=bitmap prog: bitmap, the text statistics of bitmap on stderr (Bytes in use by application ... Bytes mapped (Total))"
mkdir -p "$tmp/elsewhere" && ln -s "$H" "$tmp/elsewhere/hk"
(cd "$tmp/elsewhere" && ./hk --variant superslab "$tmp/preloaded") >"$tmp/out" 2>>"$log"
st=$?
{ echo "exit $st"; cat "$tmp/out"; } >>"$log"
[ $st = 0 ] && served superslab "$tmp/out" >>"$log"
result $? "through a symlink from another directory it still finds <prefix>/lib/hakmem"
"$H" --stats off "$tmp/preloaded" >"$tmp/out" 2>"$tmp/err"
st=$?
{ echo "exit $st"; cat "$tmp/err" "$tmp/out"; } >>"$log"
[ $st = 0 ] && served hybrid "$tmp/out" >>"$log" && [ ! -s "$tmp/err" ]
result $? "hakmem --stats off prog: no statistics"
status_is 7 "$H" sh -c 'echo exiting >&2; exit 7'
result $? "hakmem prog: its exit status is the program's (7)"
# The programs it starts inherit the variant and the statistics: the program
# sh starts is served by superslab and writes its report at exit (prog's: it
# holds 5000 blocks of at least 16 bytes then; sh may write one too).
"$H" --variant superslab --stats text sh -c '"$0"; echo "sh: $?"' "$tmp/preloaded" >"$tmp/out" 2>"$tmp/err"
st=$?
{ echo "exit $st"; cat "$tmp/out"; head -c 300 "$tmp/err"; } >>"$log"
[ $st = 0 ] && served superslab "$tmp/out" >>"$log" && grep -qx 'sh: 0' "$tmp/out" &&
  grep -q '^hakmem .*, variant superslab: now$' "$tmp/err" &&
  awk '/Bytes in use by application$/ && $2 >= 80000 { found = 1 } END { exit !found }' "$tmp/err"
result $? "hakmem --variant superslab --stats text sh -c prog: prog inherits both (served by superslab, its report at exit)"
# An LD_PRELOAD already set stays, after hakmem's.
printf 'int hakmem_install_test_other;\n' >"$tmp/other.c"
if $CC -shared -fPIC -o "$tmp/libother.so" "$tmp/other.c" 2>>"$log"; then
  LD_PRELOAD=$tmp/libother.so "$H" --variant bitmap "$tmp/preloaded" >"$tmp/out" 2>>"$log"
  st=$?
  { echo "exit $st"; cat "$tmp/out"; } >>"$log"
  [ $st = 0 ] && grep -qx "variant bitmap" "$tmp/out" &&
    grep -qx "preload $P/lib/hakmem/bitmap/libhakmem.so $tmp/libother.so" "$tmp/out"
  result $? "LD_PRELOAD=other.so hakmem --variant bitmap prog: hakmem's library first, other.so kept after it"
else
  result 1 "a shared library for the LD_PRELOAD check builds"
fi
"$H" --list >"$tmp/out" 2>>"$log"
st=$?
{ echo "exit $st"; cat "$tmp/out"; } >>"$log"
[ $st = 0 ] && [ "$(cut -d' ' -f1 "$tmp/out" | sort | tr '\n' ' ')" = "$(printf '%s\n' $VARIANTS | sort | tr '\n' ' ')" ] &&
  [ "$(grep -c ' (default)$' "$tmp/out")" = 1 ] && grep -qx 'hybrid (default)' "$tmp/out"
result $? "hakmem --list: the 5 installed variants, hybrid marked the default"
check "hakmem --version says $version" test "$("$H" --version 2>&1)" = "hakmem $version"
status_is 2 "$H" --variant nosuch "$tmp/preloaded" && grep -q "unknown variant 'nosuch'.*mini_magazine" "$tmp/err"
result $? "hakmem --variant nosuch: exit 2, the installed variants named"
status_is 2 "$H" --variant mini_magazine && grep -q '^usage:' "$tmp/err"
result $? "hakmem with no program: usage on stderr, exit 2"
check "hakmem --stats yaml: exit 2" status_is 2 "$H" --stats yaml "$tmp/preloaded"
check "hakmem --bogus: exit 2" status_is 2 "$H" --bogus "$tmp/preloaded"
check "hakmem --variant with no name: exit 2" status_is 2 "$H" --variant
check "hakmem with a program that does not exist: exit 127" status_is 127 "$H" "$tmp/no-such-program"

# ---- the tracker, installed, and hakmem --trace ------------------------------------------
check "the tracker is installed: bin/hakmem-trace, lib/hakmem/libhaktrack.so, share/hakmem/trace_html.py" \
  sh -c 'cmp build/hakmem-trace "$1/bin/hakmem-trace" && cmp build/libhaktrack.so "$1/lib/hakmem/libhaktrack.so" &&
         cmp tracker/trace_html.py "$1/share/hakmem/trace_html.py"' sh "$P"
"$H" --variant bitmap --trace "$tmp/tr" --trace-preset leaks build/tests/tracker_sites >"$tmp/out" 2>"$tmp/err"
st=$?
{ echo "exit $st"; cat "$tmp/out" "$tmp/err"; ls "$tmp/tr"; } >>"$log"
[ $st = 0 ] && grep -qx ok "$tmp/out" && grep -q " $P/lib/hakmem/libhaktrack.so$" "$tmp"/tr/*.maps &&
  grep -q " $P/lib/hakmem/bitmap/libhakmem.so$" "$tmp"/tr/*.maps
result $? "hakmem --variant bitmap --trace DIR --trace-preset leaks prog: recorded by the installed tracker, the installed bitmap behind it"
"$P/bin/hakmem-trace" report "$tmp/tr" >"$tmp/out" 2>"$tmp/err"
st=$?
{ echo "exit $st"; cat "$tmp/out" "$tmp/err"; } >>"$log"
[ $st = 0 ] && grep -q "^tracker_sites (pid [0-9]*): " "$tmp/out" && grep -q "<h3>Allocation sites by calls" "$tmp/tr/trace.html"
result $? "the installed hakmem-trace reports that trace: the headline, trace.html with its allocation sites"
if has python3; then
  check "... with sites.c's allocation sites (tests/tracker/check_sites.py)" \
    sh -c '[ "$(python3 tests/tracker/check_sites.py "$1" merged)" = ok ]' sh "$tmp/tr/trace.json"
else
  skip "sites.c's allocation sites in the installed tracker's report" "python3 is not installed"
fi
"$H" --trace "$tmp/tr2" sh -c 'echo traced; exit 3' >"$tmp/out" 2>>"$log"
st=$?
{ echo "exit $st"; cat "$tmp/out"; } >>"$log"
[ $st = 3 ] && grep -qx traced "$tmp/out" && "$P/bin/hakmem-trace" compile "$tmp/tr2" >>"$log" 2>&1
result $? "hakmem --trace DIR prog: the replay preset by default (the trace compiles), the program's exit status (3)"
check "hakmem --trace-preset bogus: exit 2" status_is 2 "$H" --trace "$tmp/tr3" --trace-preset bogus true
check "hakmem --trace-preset leaks without --trace: exit 2" status_is 2 "$H" --trace-preset leaks true
check "hakmem --trace into a directory that holds a trace: exit 2" status_is 2 "$H" --trace "$tmp/tr2" true

# ---- the C++ allocator -------------------------------------------------------------------
if ! has g++; then
  skip "the C++ allocator with vector, map, unordered_map, allocate_shared" "g++ is not installed"
elif ! has pkg-config; then
  skip "the C++ allocator with vector, map, unordered_map, allocate_shared" "pkg-config is not installed"
else
  # shellcheck disable=SC2046
  check "tests/cxx_allocator.cpp builds: g++ -std=c++17 -Wall -Wextra -Werror, the installed header, lib/libhakmem.a" \
    g++ -std=c++17 -Wall -Wextra -Werror -O2 -D_GLIBCXX_ASSERTIONS $(pkg-config --cflags hakmem) \
      -o "$tmp/cxx" tests/cxx_allocator.cpp "$P/lib/libhakmem.a" -lpthread \
      -Wl,--wrap=hak_malloc,--wrap=hak_aligned_alloc,--wrap=hak_free
  if [ -x "$tmp/cxx" ]; then
    "$tmp/cxx" >"$tmp/out" 2>&1
    st=$?
    absorb "$tmp/out" $st "cxx_allocator exit $st"
  fi
fi

# ---- a second install into the same prefix, then uninstall ------------------------------------
check "make install again into the same prefix, VARIANT=bitmap" inst install PREFIX="$P" VARIANT=bitmap
check "... the links and the command's default follow: lib/libhakmem.so -> hakmem/bitmap, --list marks bitmap" \
  sh -c '[ "$(readlink "$1/lib/libhakmem.so")" = hakmem/bitmap/libhakmem.so ] && "$1/bin/hakmem" --list | grep -qx "bitmap (default)"' sh "$P"
check "make uninstall PREFIX=<tmp>" inst uninstall PREFIX="$P"
check "the prefix is empty again" empty_dir "$P"
check "make uninstall when nothing is installed: an error" status_is 2 inst uninstall PREFIX="$P"
check "make install PREFIX=relative/path: an error" status_is 2 inst install PREFIX=relative/path

# ---- uninstall removes only what the install put there ------------------------------------
Q=$tmp/shared
mkdir -p "$Q/include" "$Q/share"
echo mine >"$Q/share/keep"
check "make install into a prefix that holds other files" inst install PREFIX="$Q" VARIANT=hybrid
echo mine >"$Q/lib/keep" && echo mine >"$Q/bin/other"
inst uninstall PREFIX="$Q" >"$log" 2>&1
st=$?
left=$(cd "$Q" && find . | sort | tr '\n' ' ')
echo "exit $st; left: $left" >>"$log"
[ $st = 0 ] && [ "$left" = ". ./bin ./bin/other ./include ./lib ./lib/keep ./share ./share/keep " ]
result $? "make uninstall leaves what it did not install: include/ (there before), share/keep, lib/keep, bin/other"
B=$tmp/damaged
mkdir -p "$B/lib/hakmem" && echo precious >"$tmp/outside"
printf 'file lib/hakmem/x\nfile ../../outside\n' >"$B/lib/hakmem/.manifest"
: >"$B/lib/hakmem/x"
status_is 2 inst uninstall PREFIX="$B" && [ -f "$tmp/outside" ] && [ -f "$B/lib/hakmem/x" ] && [ -f "$B/lib/hakmem/.manifest" ]
result $? "a manifest naming a path outside the prefix: uninstall refuses and removes nothing"

# ---- CHECK=1: the checked builds beside ----------------------------------------------------------
# Only when they are built already (make test builds them for the core tests;
# building all five here would take minutes).
C=$tmp/checked
missing=''
for v in $VARIANTS; do [ -f "build/$v-check/libhakmem.so" ] || missing="$missing $v-check"; done
if [ -n "$missing" ]; then
  skip "make install CHECK=1 installs the checked builds beside" "not built:$missing"
else
  check "make install CHECK=1 PREFIX=<tmp>" "$MAKE" -s --no-print-directory -C "$root" install PREFIX="$C" CHECK=1 VARIANT=hybrid
  all=1
  for v in $VARIANTS; do
    cmp "build/$v-check/libhakmem.so" "$C/lib/hakmem/$v-check/libhakmem.so" >>"$log" 2>&1 &&
      cmp "build/$v-check/libhakmem.a" "$C/lib/hakmem/$v-check/libhakmem.a" >>"$log" 2>&1 || all=0
  done
  "$C/bin/hakmem" --variant bitmap-check "$tmp/preloaded" >"$tmp/out" 2>>"$log"
  { [ $all = 1 ] && grep -qx 'variant bitmap-check' "$tmp/out" && [ "$(readlink "$C/lib/libhakmem.so")" = hakmem/hybrid/libhakmem.so ]; } ||
    cat "$tmp/out" >>"$log"
  result $? "... lib/hakmem/<variant>-check/ for all 5, hakmem --variant bitmap-check serves the checked build, the default stays hybrid"
  check "make uninstall of it leaves the prefix empty" sh -c "'$MAKE' -s --no-print-directory -C '$root' uninstall PREFIX='$C' && [ -z \"\$(ls -A '$C')\" ]"
fi

# ---- DESTDIR ------------------------------------------------------------------------------------
S=$tmp/stage
opt_before=$(ls -d /opt/hakmem-install-test 2>/dev/null)
check "make install DESTDIR=<tmp> PREFIX=/opt/hakmem-install-test" inst install DESTDIR="$S" PREFIX=/opt/hakmem-install-test VARIANT=hybrid
check "the staged hakmem.pc says prefix=/opt/hakmem-install-test" grep -qx 'prefix=/opt/hakmem-install-test' "$S/opt/hakmem-install-test/lib/pkgconfig/hakmem.pc"
"$S/opt/hakmem-install-test/bin/hakmem" --variant dynamic_flush "$tmp/preloaded" >"$tmp/out" 2>>"$log"
grep -qx 'variant dynamic_flush' "$tmp/out" && grep -q "^preload $S/opt/hakmem-install-test/lib/hakmem/dynamic_flush/" "$tmp/out" || cat "$tmp/out" >>"$log"
result $? "the staged command runs from where it is: dynamic_flush from <stage>/opt/..."
check "nothing written to /opt/hakmem-install-test itself" test "$(ls -d /opt/hakmem-install-test 2>/dev/null)" = "$opt_before"
check "make uninstall DESTDIR=<tmp> PREFIX=/opt/hakmem-install-test" inst uninstall DESTDIR="$S" PREFIX=/opt/hakmem-install-test
check "the staged prefix is empty again" empty_dir "$S/opt/hakmem-install-test"

# ---- hakmem-symbolize, installed beside the libraries ------------------------------------------
Y=$tmp/symbolize
check "make install PREFIX=<tmp> installs lib/hakmem/hakmem-symbolize" \
  sh -c "'$MAKE' -s --no-print-directory -C '$root' install PREFIX='$Y' VARIANT=hybrid CHECK=0 >/dev/null && [ -x '$Y/lib/hakmem/hakmem-symbolize' ]"
for l in lib/libhakmem.so lib/hakmem/bitmap/libhakmem.so; do
  HAKMEM_LEAKCHECK=1 LD_PRELOAD=$Y/$l build/tests/symbolize_chain >"$tmp/out" 2>&1
  st=$?
  { [ $st = 23 ] && grep -q 'in chain_leaf (.*symbolize_chain+0x[0-9a-f]*) at .*symbolize_chain.c:[0-9]' "$tmp/out"; } || cat "$tmp/out" >>"$log"
  result $? "the leak report through the installed $l names file:line (its hakmem-symbolize found) (exit $st)"
done
inst uninstall PREFIX="$Y" >/dev/null 2>>"$log"
check "make uninstall of it leaves that prefix empty" empty_dir "$Y"

finish install
