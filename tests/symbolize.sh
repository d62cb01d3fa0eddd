#!/usr/bin/env bash
# symbolize.sh LIB — file:line in stack frames (make test-symbolize):
#   - tests/symbolize_chain.c built with -g leaks through main -> chain_outer ->
#     chain_middle -> chain_leaf and through chain_leaf_inl (chain_inlined inlined
#     into it): under HAKMEM_LEAKCHECK=1 with LIB, and recorded by hakmem-trace
#     (--preset leaks), every frame of the program in the leak report and in
#     trace.json carries the file:line (and inline chain) addr2line -f -i gives
#     (tests/symbolize_check.py), and each of those functions is named;
#   - the same program built without -g: its frames keep object+offset (leak
#     report) or function+offset (object) (trace) and say no file:line;
#   - the heap profile of the -g program: google-pprof --text --lines names
#     symbolize_chain.c:LINE for chain_leaf, chain_middle and chain_outer, the
#     lines addr2line gives (pprof symbolizes profiles itself: no change needed);
#   - a symbolizer that never answers: given up after 10 s, killed, said once;
#   - HAKMEM_LEAKCHECK_SYMBOLIZER naming a missing program: the report says once
#     why it has no file:line; =off: no file:line and no note.
# B (default build) is the build directory: LIB's hakmem-symbolize is B/hakmem-symbolize.
set -u
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.." || exit 2
B=${B:-build}
lib=${1:-$B/hybrid/libhakmem.so}
PY=/usr/bin/python3
T=$B/hakmem-trace
CHK=tests/symbolize_check.py
FUNCS="chain_leaf chain_middle chain_outer main chain_leaf_inl"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
TEST_LOG=$tmp/log

for p in symbolize_chain symbolize_chain_nodebug; do
  prog=$(realpath $B/tests/$p)
  HAKMEM_LEAKCHECK=1 LD_PRELOAD=$lib timeout -k 5 60 "$prog" >"$tmp/$p.leak" 2>&1
  st=$?
  rm -rf "$tmp/$p.trace"
  timeout -k 5 60 "$T" record --quiet --preset leaks --out "$tmp/$p.trace" -- "$prog" >"$tmp/$p.rec" 2>&1 &&
    timeout -k 5 60 "$T" report --no-html "$tmp/$p.trace" >>"$tmp/$p.rec" 2>&1
  rst=$?
  if [ $p = symbolize_chain ]; then
    { [ $st = 23 ] && grep -q " at .*symbolize_chain.c:[0-9]*, inlined: chain_inlined at " "$tmp/$p.leak" &&
      $PY $CHK leak "$tmp/$p.leak" "$prog" $FUNCS; } >"$TEST_LOG" 2>&1
    result $? "symbolize: leak report of a -g program: each of its frames names file:line (and the inlined function) as addr2line does (exit $st)" "$TEST_LOG"
    { [ $rst = 0 ] && $PY $CHK trace "$tmp/$p.trace/trace.json" "$prog" $FUNCS &&
      grep -q 'chain_leaf+0x[0-9a-f]* (symbolize_chain) at [^"]*symbolize_chain.c:[0-9]' "$tmp/$p.trace/trace.json"; } >"$TEST_LOG" 2>&1
    result $? "symbolize: hakmem-trace report of a -g program: each of its frames in trace.json names file:line as addr2line does" "$TEST_LOG"
  else
    { [ $st = 23 ] && $PY $CHK leak "$tmp/$p.leak" "$prog" $FUNCS &&
      grep -q "in chain_leaf ($prog+0x[0-9a-f]*)$" "$tmp/$p.leak" && ! grep -q "$p+0x[0-9a-f]*) at " "$tmp/$p.leak"; } >"$TEST_LOG" 2>&1
    result $? "symbolize: leak report of a program without -g: object+offset, no file:line (exit $st)" "$TEST_LOG"
    { [ $rst = 0 ] && $PY $CHK trace "$tmp/$p.trace/trace.json" "$prog" $FUNCS &&
      grep -q "\"chain_leaf+0x[0-9a-f]* ($p)\"" "$tmp/$p.trace/trace.json"; } >"$TEST_LOG" 2>&1
    result $? "symbolize: hakmem-trace report of a program without -g: function+offset (object), no file:line" "$TEST_LOG"
  fi
done

prog=$B/tests/symbolize_chain
if command -v google-pprof >/dev/null; then
  HAKMEM_PROFILE=$tmp/prof HAKMEM_PROFILE_RATE=1 LD_PRELOAD=$lib $prog >"$TEST_LOG" 2>&1
  timeout -k 5 60 google-pprof --text --lines $prog $tmp/prof.*.0001.heap >"$tmp/pprof" 2>>"$TEST_LOG"
  ok=0
  for f in chain_leaf chain_middle chain_outer; do
    addr=$(nm $prog | awk -v f=$f '$3 == f { print $1 }')
    off=$(grep -o "in $f (.*symbolize_chain+0x[0-9a-f]*)" "$tmp/symbolize_chain.leak" | sed 's/.*+0x//; s/)//')
    want=$(addr2line -e $prog $(printf '0x%x' $((0x$off - 1))) | sed 's/ (discriminator.*//')
    grep -q " $f $want\$" "$tmp/pprof" || { ok=1; echo "$f: want '$want' (addr $addr)" >>"$TEST_LOG"; }
  done
  cat "$tmp/pprof" >>"$TEST_LOG"
  result $ok "symbolize: google-pprof --text --lines on the -g program's heap profile names file:line for each frame as addr2line does" "$TEST_LOG"
else
  skip "symbolize: google-pprof --lines on the heap profile" "google-pprof is not installed (scripts/install-deps.sh test installs google-perftools)"
fi
HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_SYMBOLIZER=$tmp/missing LD_PRELOAD=$lib timeout -k 5 60 $prog >"$tmp/miss" 2>&1
st=$?
{ [ $st = 23 ] && [ "$(grep -c "(hakmem: no file:line in this report: cannot run $tmp/missing: No such file or directory; frames named from the symbol tables)" "$tmp/miss")" = 1 ] &&
  grep -q "in chain_leaf (.*symbolize_chain+0x[0-9a-f]*)$" "$tmp/miss" && ! grep -q ") at " "$tmp/miss"; } >"$TEST_LOG" 2>&1
result $? "symbolize: HAKMEM_LEAKCHECK_SYMBOLIZER naming a missing program: said once, frames by symbol and object+offset (exit $st)" "$tmp/miss"
# A symbolizer that never answers: the report waits 10 s for it, kills it,
# says so once and names the frames from the symbol tables.
printf '#!/bin/sh\nexec sleep 61.25\n' >"$tmp/hang" && chmod +x "$tmp/hang"
t0=$(date +%s)
HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_SYMBOLIZER=$tmp/hang LD_PRELOAD=$lib timeout -k 5 60 $prog >"$tmp/hung" 2>&1
st=$?
took=$(($(date +%s) - t0))
{ [ $st = 23 ] && [ "$(grep -c "(hakmem: no file:line in this report: $tmp/hang gave no answer in 10 s; frames named from the symbol tables)" "$tmp/hung")" = 1 ] &&
  grep -q "in chain_leaf (.*symbolize_chain+0x[0-9a-f]*)$" "$tmp/hung" && ! grep -q ") at " "$tmp/hung" &&
  [ $took -lt 40 ] && ! pgrep -f "sleep 61.25" >/dev/null; } >"$TEST_LOG" 2>&1
result $? "symbolize: a symbolizer that never answers: given up after 10 s and killed, said once, frames by symbol and object+offset (exit $st, $took s)" "$tmp/hung"
HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_SYMBOLIZER=off LD_PRELOAD=$lib timeout -k 5 60 $prog >"$tmp/off" 2>&1
st=$?
{ [ $st = 23 ] && grep -q "in chain_leaf (.*symbolize_chain+0x[0-9a-f]*)$" "$tmp/off" && ! grep -q ") at \|no file:line" "$tmp/off"; } >"$TEST_LOG" 2>&1
result $? "symbolize: HAKMEM_LEAKCHECK_SYMBOLIZER=off: no file:line, no note (exit $st)" "$tmp/off"
finish symbolize
