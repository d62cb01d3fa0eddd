#!/usr/bin/env bash
# leakcheck.sh LIB... — the leak checker's tests (make test-leakcheck):
#   - each scenario of tests/leaks.c under HAKMEM_LEAKCHECK=1 with each LIB and under
#     valgrind's memcheck (--leak-check=full --run-libc-freeres=no, so that
#     neither frees libc's own buffers before counting): definitely lost,
#     indirectly lost, possibly lost and still reachable (bytes and blocks)
#     must be equal;
#   - the report: groups by stack, largest first, the leaking functions named,
#     HAK_TRACE_SOURCE's file:line, the exit status (23, HAKMEM_LEAKCHECK_EXITCODE,
#     0 when nothing leaked), HAKMEM_LEAKCHECK_FILE, suppressions (and a bad
#     suppressions file: a clear error, exit 2), with the first LIB.
# leakcheck.sh --compare LIB CMD...: no tests; CMD under both, the two
# summaries side by side, and the times (for real programs).
# One PASS/FAIL/SKIP line per check, then a count (tests/lib.sh); exit 1 if
# anything failed.
set -u
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.." || exit 2
B=build
TEST_DETAIL=25
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# memcheck's LEAK SUMMARY as "D d I i P p R r" (bytes, blocks), zeros when all was freed.
memcheck_counts() { # file
  awk '
    function num(s) { gsub(",", "", s); return s + 0 }
    /definitely lost:/ { d = num($(NF-4)); db = num($(NF-1)) }
    /indirectly lost:/ { i = num($(NF-4)); ib = num($(NF-1)) }
    /possibly lost:/   { p = num($(NF-4)); pb = num($(NF-1)) }
    /still reachable:/ { r = num($(NF-4)); rb = num($(NF-1)) }
    END { printf "%d %d %d %d %d %d %d %d\n", d, db, i, ib, p, pb, r, rb }' "$1"
}
# hakmem's counts line, the same way.
hakmem_counts() { # file
  sed -n 's/^hakmem: leak check: definitely lost \([0-9]*\) bytes in \([0-9]*\) blocks, indirectly lost \([0-9]*\) bytes in \([0-9]*\) blocks, possibly lost \([0-9]*\) bytes in \([0-9]*\) blocks, still reachable \([0-9]*\) bytes in \([0-9]*\) blocks.*/\1 \2 \3 \4 \5 \6 \7 \8/p' "$1" | tail -n 1
}
run_memcheck() { # out cmd...
  local out=$1; shift
  timeout 600 valgrind --tool=memcheck --leak-check=full --run-libc-freeres=no --run-cxx-freeres=no --leak-check-heuristics=none \
    --log-file="$out" "$@" >/dev/null 2>&1
}
run_hakmem() { # lib out cmd...
  local lib=$1 out=$2; shift 2
  timeout 600 env HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_FILE="$out" LD_PRELOAD="$lib" "$@" >/dev/null 2>"$out.stderr"
}
label() { set -- $1; echo "definitely lost $1 B in $2, indirectly lost $3 B in $4, possibly lost $5 B in $6, still reachable $7 B in $8"; }

if [ "${1:-}" = --compare ]; then
  shift
  lib=$1; shift
  t0=$SECONDS; run_memcheck "$tmp/m" "$@"; tm=$((SECONDS - t0))
  t0=$SECONDS; run_hakmem "$lib" "$tmp/h" "$@"; th=$((SECONDS - t0))
  t0=$SECONDS; timeout 600 "$@" >/dev/null 2>&1; tn=$((SECONDS - t0))
  echo "command:  $*"
  echo "memcheck: $(label "$(memcheck_counts "$tmp/m")")  (${tm} s)"
  echo "hakmem:   $(label "$(hakmem_counts "$tmp/h")")  (${th} s; without the checker ${tn} s)"
  exit 0
fi

[ $# -gt 0 ] || set -- $B/hybrid/libhakmem.so
libs=("$@")
lib=$1
prog=$B/tests/leaks
[ -x "$prog" ] || { fail "$prog is not built"; finish leakcheck; }
if ! command -v valgrind >/dev/null; then
  skip "leak counts against memcheck" "valgrind is not installed (scripts/install-deps.sh test installs it)"
else
  scenarios="direct indirect cycle possible reachable tiers threads thread-exit thread-blocked clean"
  # A blocked thread's stack pointer comes from /proc/<pid>/task/<tid>/syscall.
  if ! head -c1 /proc/self/syscall >/dev/null 2>&1; then
    skip "leakcheck: 'thread-blocked' (a live thread's stack scanned from its stack pointer)" "/proc/<pid>/syscall is not readable here"
    scenarios=${scenarios/ thread-blocked/}
  fi
  for s in $scenarios; do
    # memcheck's own reading varies: in about one run in eight here it finds a
    # stale word pointing into tiers' 3 MiB block and calls that block possibly
    # lost instead of definitely lost (hakmem's checker gave the same counts in
    # 40 runs of 40). A stale word can only move a block from definitely to
    # possibly lost, so of three runs the one with the fewest possibly lost
    # bytes is memcheck's reading of the program.
    m=
    for try in 1 2 3; do
      run_memcheck "$tmp/m.$s" "$prog" "$s"
      c=$(memcheck_counts "$tmp/m.$s")
      { [ -z "$m" ] || [ "$(echo "$c" | cut -d' ' -f5)" -lt "$(echo "$m" | cut -d' ' -f5)" ]; } && m=$c
    done
    if [ "$s" = threads ] || [ "$s" = thread-exit ] || [ "$s" = thread-blocked ]; then
      # Each thread's DTV (glibc's array of TLS blocks, possibly lost in both) has
      # one slot more under hakmem, whose library has TLS: 16 bytes per thread.
      set -- $m; m=$(echo "$1 $2 $3 $4 $(($5 + 16 * $6)) $6 $7 $8")
    fi
    for l in "${libs[@]}"; do
      run_hakmem "$l" "$tmp/h.$s" "$prog" "$s"
      h=$(hakmem_counts "$tmp/h.$s")
      { echo "memcheck: $m"; echo "hakmem:   $h"; cat "$tmp/h.$s"; } >"$tmp/log"
      [ -n "$h" ] && [ "$m" = "$h" ]
      result $? "leakcheck: $(basename "$(dirname "$l")"): '$s' counted as memcheck counts it: $(label "$m")" "$tmp/log"
      rm -f "$tmp/h.$s"
    done
  done
fi

# The report of the direct scenario: three groups, largest first, each naming its function.
out=$tmp/h.report
HAKMEM_LEAKCHECK=1 LD_PRELOAD=$lib "$prog" direct >/dev/null 2>"$out"
st=$?
grep '^Direct leak of' "$out" >"$tmp/heads"
sed -n 's/^Direct leak of \([0-9]*\) byte.*/\1/p' "$tmp/heads" | tr '\n' ' ' >"$tmp/sizes"
{ [ $st = 23 ] && [ "$(cat "$tmp/sizes")" = "4096 1000 24 " ] &&
  grep -A1 '^Direct leak of 4096 byte(s) in 1 object(s) allocated from:' "$out" | grep -q '#0 0x[0-9a-f]* in leak_direct_page (.*leaks+0x' &&
  grep -A1 '^Direct leak of 1000 byte(s) in 10 object(s)' "$out" | grep -q 'in leak_direct_many ' &&
  grep -A1 '^Direct leak of 24 byte(s) in 1 object(s)' "$out" | grep -q 'in leak_direct_small ' &&
  grep -q '^SUMMARY: hakmem: 5120 byte(s) leaked in 12 allocation(s)' "$out"; }
result $? "leakcheck: report by stack, largest first (4096, 1000, 24), frame #0 the leaking function, exit status 23 (got $st)" "$out"

# Exit status: 0 with nothing leaked, the configured one otherwise; the report to a file.
HAKMEM_LEAKCHECK=1 LD_PRELOAD=$lib "$prog" clean >/dev/null 2>"$out"; st=$?
[ $st = 0 ] && ! grep -q 'leak of' "$out" && grep -q '^hakmem: leak check: definitely lost 0 bytes in 0 blocks' "$out"
result $? "leakcheck: nothing leaked: exit 0, the counts line only (exit $st)" "$out"
HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_EXITCODE=7 HAKMEM_LEAKCHECK_FILE=$tmp/file LD_PRELOAD=$lib "$prog" cycle >"$out" 2>&1; st=$?
[ $st = 7 ] && grep -q '^Direct leak of 48 byte(s) in 1 object(s)' "$tmp/file" && grep -q '^Indirect leak of 48 byte(s) in 1 object(s)' "$tmp/file" && ! grep -q 'leak of' "$out"
result $? "leakcheck: HAKMEM_LEAKCHECK_EXITCODE=7 and HAKMEM_LEAKCHECK_FILE (a cycle: one direct, one indirect) (exit $st)" "$out"
HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_EXITCODE=0 LD_PRELOAD=$lib "$prog" cycle >/dev/null 2>"$out"; st=$?
[ $st = 0 ] && grep -q '^Direct leak of' "$out"
result $? "leakcheck: HAKMEM_LEAKCHECK_EXITCODE=0 reports and keeps the program's status (exit $st)" "$out"

# Suppressions: by function (a glob), by object; a file that cannot be read or a bad line.
printf '# test\nleak:leak_direct_m*\n\nleak_direct_page\n' >"$tmp/supp"
HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_SUPPRESS=$tmp/supp LD_PRELOAD=$lib "$prog" direct >/dev/null 2>"$out"; st=$?
[ $st = 23 ] && [ "$(grep -c '^Direct leak of' "$out")" = 1 ] && grep -q 'in leak_direct_small ' "$out" &&
  grep -q 'suppressed 5096 bytes in 11 blocks' "$out"
result $? "leakcheck: suppressions by function pattern: 2 of 3 groups suppressed and counted (exit $st)" "$out"
printf 'leak:leaks$\n' >"$tmp/supp"
HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_SUPPRESS=$tmp/supp LD_PRELOAD=$lib "$prog" direct >/dev/null 2>"$out"; st=$?
[ $st = 0 ] && grep -q 'definitely lost 0 bytes in 0 blocks.*suppressed 5120 bytes in 12 blocks' "$out"
result $? "leakcheck: a suppression by object (the program, anchored with \$): nothing reported, exit 0 (exit $st)" "$out"
HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_SUPPRESS=$tmp/none LD_PRELOAD=$lib "$prog" clean >/dev/null 2>"$out"; st=$?
[ $st = 2 ] && grep -q "HAKMEM_LEAKCHECK_SUPPRESS=$tmp/none: cannot read it" "$out"
result $? "leakcheck: an unreadable suppressions file: one clear line, exit 2 (exit $st)" "$out"
printf 'leak:ok\nrace:foo\n' >"$tmp/supp"
HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_SUPPRESS=$tmp/supp LD_PRELOAD=$lib "$prog" clean >/dev/null 2>"$out"; st=$?
[ $st = 2 ] && grep -q "supp:2: 'race:foo' is not a suppression" "$out"
result $? "leakcheck: a line that is not a suppression: its line number, exit 2 (exit $st)" "$out"

# The suppression file of the README: a leak made by a library constructor that
# the dynamic loader runs is reported without it and suppressed with it.
ctor=$B/tests/libleak_ctor.so
HAKMEM_LEAKCHECK=1 LD_PRELOAD="$lib $ctor" "$prog" clean >/dev/null 2>"$out"; st=$?
grep -A3 '^Direct leak of 123 byte(s) in 1 object(s)' "$out" >"$tmp/g"
[ $st = 23 ] && grep -q 'in leak_at_load ' "$tmp/g" && grep -q 'ld-linux-x86-64.so.2' "$out"
result $? "leakcheck: a leak in a library constructor run by the dynamic loader is reported, through ld-linux (exit $st)" "$out"
HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_SUPPRESS=tests/leakcheck.supp LD_PRELOAD="$lib $ctor" "$prog" clean >/dev/null 2>"$out"; st=$?
[ $st = 0 ] && grep -q 'definitely lost 0 bytes in 0 blocks.*suppressed 123 bytes in 1 blocks' "$out"
result $? "leakcheck: ... and suppressed by tests/leakcheck.supp, the README's example (exit $st)" "$out"

# Safety: a signal handler that allocates and frees while the thread is inside
# the tracking code (its frees wait, nothing is lost), threads, fork.
timeout 120 env HAKMEM_LEAKCHECK=1 LD_PRELOAD="$lib" $B/tests/profile signals 1 >"$out" 2>&1; st=$?
[ $st = 0 ] && grep -q '^hakmem: leak check: definitely lost 0 bytes in 0 blocks, indirectly lost 0 bytes in 0 blocks, possibly lost 0 bytes in 0 blocks' "$out"
result $? "leakcheck: a timer signal every 50 us whose handler allocates and frees: no deadlock, nothing lost or freed twice (exit $st)" "$out"
timeout 120 env HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_EXITCODE=0 LD_PRELOAD="$lib" $B/tests/stress --threads=4 --workers=8 --ops=5000 >"$out" 2>&1; st=$?
# (the exited threads' DTVs stay possibly lost: glibc keeps their stacks, as under memcheck)
[ $st = 0 ] && grep -q '^hakmem: leak check: definitely lost 0 bytes in 0 blocks, indirectly lost 0 bytes in 0 blocks' "$out"
result $? "leakcheck: stress (4 threads at once, 1/4 of frees cross-thread) frees everything: nothing definitely or indirectly lost (exit $st)" "$out"
timeout 120 env HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_EXITCODE=0 LD_PRELOAD="$lib" $B/tests/fork --forks 40 >"$out" 2>&1
result $? "leakcheck: 40 forks while 3 threads churn, under the leak checker: no child lost" "$out"

# Memory released during the exit scan, every LIB: the check reads for a second or
# so a 64 MiB mapping full of pointers into 10,000 blocks while hakmem's scavenger
# gives back the memory of 8,000 blocks just freed ('big-root'), and while a thread
# of the program frees 1 MiB blocks that hakmem unmaps ('big-root-churn'). Before
# the scan paused the scavenger and read through process_vm_readv, the check
# segfaulted in most runs (dynamic_flush and hybrid nearly always).
for l in "${libs[@]}"; do
  for s in big-root big-root-churn; do
    # big-root: nothing lost, the 10,000 blocks and their array reachable. With churn
    # the check only has to finish: the thread's 1 MiB blocks recorded live may be
    # freed and their slots reused before the scan reads them (what a thread changes
    # during the check is seen half done: README), so they count either way.
    want='^hakmem: leak check: definitely lost 0 bytes in 0 blocks, indirectly lost 0 bytes in 0 blocks, .*still reachable 240000 bytes in 10001 blocks'
    [ $s = big-root-churn ] && want='^hakmem: leak check: definitely lost [0-9]* bytes in [0-9]* blocks, .*still reachable [0-9]* bytes in [0-9]* blocks'
    crashes=0 bad=0 runs=3
    rm -f "$tmp/crash"
    for run in $(seq $runs); do
      timeout 120 env HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_EXITCODE=0 LD_PRELOAD="$l" "$prog" "$s" >"$out" 2>&1; st=$?
      if [ $st -ge 124 ]; then crashes=$((crashes + 1)); cp "$out" "$tmp/crash"; echo "exit status $st" >>"$tmp/crash"
      elif [ $st != 0 ] || ! grep -q "$want" "$out"; then bad=$((bad + 1)); cp "$out" "$tmp/crash"; fi
    done
    [ $crashes = 0 ] && [ $bad = 0 ]
    result $? "leakcheck: $(basename "$(dirname "$l")"): '$s': memory released while the exit check scans: crashed or hung in $crashes of $runs runs, wrong counts in $bad" "$tmp/crash"
  done
done

# HAK_TRACE_SOURCE, in a program linked with libhakmem.a (hakmem's frames in the executable).
src=$B/tests/leaks-source
if [ -x "$src" ]; then
  HAKMEM_LEAKCHECK=1 "$src" source >/dev/null 2>"$out"; st=$?
  grep -A2 '^Direct leak of 24 byte(s) in 1 object(s)' "$out" >"$tmp/g"
  [ $st = 23 ] && grep -q 'source: tests/leaks.c:[0-9]' "$tmp/g" && grep -q '#0 0x[0-9a-f]* in leak_direct_small ' "$tmp/g" &&
    grep -q '^Indirect leak of 96 byte(s) in 2 object(s)' "$out"
  result $? "leakcheck: HAK_TRACE_SOURCE (static link): file:line and the leaking function as frame #0 (exit $st)" "$out"
else
  result 1 "leakcheck: $src is built"
fi
finish leakcheck
