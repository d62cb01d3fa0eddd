#!/usr/bin/env bash
# leakcheck.sh LIB... — the leak checker's tests (make test-leakcheck):
#   - each scenario of tests/leaks.c under HAKMEM_LEAKCHECK=1 with each LIB and under
#     valgrind's memcheck (--leak-check=full --run-libc-freeres=no, so that
#     neither frees libc's own buffers before counting): definitely lost,
#     indirectly lost, possibly lost and still reachable (bytes and blocks)
#     must be equal, and (but for the scenarios with threads, whose DTVs differ)
#     so must the loss records' lines, every kind listed (memcheck's
#     --show-leak-kinds=all, HAKMEM_LEAKCHECK_REACHABLE=1): "1,024 (64 direct,
#     960 indirect) bytes in 1 blocks are definitely lost in loss record 3 of 3";
#   - the leaked tree's figures, the still reachable blocks listed only on
#     request, hak_leak_check mid-run (also while threads allocate; every LIB)
#     and at exit the same, hak_leak_ignore, both calls with the checker off;
#   - the report: groups by stack, largest first, the leaking functions named,
#     HAK_TRACE_SOURCE's file:line, the exit status (23, HAKMEM_LEAKCHECK_EXITCODE,
#     0 when nothing leaked), HAKMEM_LEAKCHECK_FILE, suppressions (and a bad
#     suppressions file: a clear error, exit 2), with the first LIB;
#   - libgcc_s (the unwinder) mapped under HAKMEM_LEAKCHECK=1 and HAKMEM_PROFILE
#     only, never in a plain run (every LIB).
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
    --show-leak-kinds=all --num-callers=64 --log-file="$out" "$@" >/dev/null 2>&1
}
run_hakmem() { # lib out cmd...
  local lib=$1 out=$2; shift 2
  timeout 600 env HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_REACHABLE=1 HAKMEM_LEAKCHECK_FILE="$out" LD_PRELOAD="$lib" "$@" >/dev/null 2>"$out.stderr"
}
# The loss records' lines of memcheck's log or hakmem's report, sorted (records of
# equal size, kind and blocks may take each other's numbers).
memcheck_records() { sed -n 's/^==[0-9]*== \(.* in loss record [0-9,]* of [0-9,]*\)$/\1/p' "$1" | sort; }
hakmem_records() { sed -n 's/^    \(.* in loss record [0-9,]* of [0-9,]*\)$/\1/p' "$1" | sort; }
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
  scenarios="direct indirect tree cycle possible reachable tiers threads thread-exit thread-blocked clean"
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
      if [ -z "$m" ] || [ "$(echo "$c" | cut -d' ' -f5)" -lt "$(echo "$m" | cut -d' ' -f5)" ]; then
        m=$c
        memcheck_records "$tmp/m.$s" >"$tmp/mr.$s"
      fi
    done
    records=yes
    if [ "$s" = threads ] || [ "$s" = thread-exit ] || [ "$s" = thread-blocked ]; then
      records=no
      # Each thread's DTV (glibc's array of TLS blocks, possibly lost in both) has
      # one slot more under hakmem, whose library has TLS: 16 bytes per thread.
      set -- $m; m=$(echo "$1 $2 $3 $4 $(($5 + 16 * $6)) $6 $7 $8")
    fi
    for l in "${libs[@]}"; do
      run_hakmem "$l" "$tmp/h.$s" "$prog" "$s"
      h=$(hakmem_counts "$tmp/h.$s")
      hakmem_records "$tmp/h.$s" >"$tmp/hr.$s"
      { echo "memcheck: $m"; echo "hakmem:   $h"; echo "loss records (memcheck < > hakmem):";
        diff "$tmp/mr.$s" "$tmp/hr.$s"; cat "$tmp/h.$s"; } >"$tmp/log"
      [ -n "$h" ] && [ "$m" = "$h" ] && { [ $records = no ] || cmp -s "$tmp/mr.$s" "$tmp/hr.$s"; }
      ok=$?
      what="counted as memcheck counts it"
      [ $records = yes ] && what="counted, and its $(wc -l <"$tmp/mr.$s") loss records written, as memcheck does it"
      result $ok "leakcheck: $(basename "$(dirname "$l")"): '$s' $what: $(label "$m")" "$tmp/log"
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
  grep -A2 '^Direct leak of 4096 byte(s) in 1 object(s) allocated from:' "$out" | grep -q '#0 0x[0-9a-f]* in leak_direct_page (.*leaks+0x' &&
  grep -A2 '^Direct leak of 1000 byte(s) in 10 object(s)' "$out" | grep -q 'in leak_direct_many ' &&
  grep -A2 '^Direct leak of 24 byte(s) in 1 object(s)' "$out" | grep -q 'in leak_direct_small ' &&
  grep -q '^SUMMARY: hakmem: 5120 byte(s) leaked in 12 allocation(s)' "$out"; }
result $? "leakcheck: report by stack, largest first (4096, 1000, 24), frame #0 the leaking function, exit status 23 (got $st)" "$out"

# The unwinder (libgcc_s) is loaded only for the leak checker and the profiler
# (core/stack.c): sort, which links libc alone and allocates, reads its own
# maps; libhakmem is there in every case, libgcc_s only under
# HAKMEM_LEAKCHECK=1 or HAKMEM_PROFILE (whose report above names the frames).
for l in "${libs[@]}"; do
  v=$(basename "$(dirname "$l")")
  for mode in plain HAKMEM_LEAKCHECK=1 "HAKMEM_PROFILE=$tmp/unwinder"; do
    m=; [ "$mode" = plain ] || m=$mode
    env $m LD_PRELOAD="$l" sort /proc/self/maps >"$tmp/maps" 2>"$tmp/maps.err"
    hm=$(grep -c '/libhakmem\.so$' "$tmp/maps") gm=$(grep -c '/libgcc_s\.so' "$tmp/maps")
    if [ "$mode" = plain ]; then [ "$hm" -gt 0 ] && [ "$gm" = 0 ]; else [ "$hm" -gt 0 ] && [ "$gm" -gt 0 ]; fi
    ok=$?
    want="not mapped"; [ "$mode" = plain ] || want="mapped"
    cat "$tmp/maps.err" >>"$tmp/maps"
    result $ok "leakcheck: $v: ${mode/=$tmp\/unwinder/=prefix}: libgcc_s (the unwinder) $want (libhakmem mappings $hm, libgcc_s $gm)" "$tmp/maps"
  done
  rm -f "$tmp"/unwinder.*
done

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

# Loss records as memcheck writes them: the leaked tree's root record carries the
# bytes lost through it; the blocks indirectly lost have records of their own.
HAKMEM_LEAKCHECK=1 LD_PRELOAD=$lib "$prog" tree >/dev/null 2>"$out"; st=$?
grep -A1 '^Direct leak of 64 byte(s) in 1 object(s) allocated from:' "$out" >"$tmp/g"
{ [ $st = 23 ] && grep -qx '    1,024 (64 direct, 960 indirect) bytes in 1 blocks are definitely lost in loss record 3 of 3' "$tmp/g" &&
  grep -A1 '^Indirect leak of 704 byte(s) in 4 object(s)' "$out" | grep -qx '    704 bytes in 4 blocks are indirectly lost in loss record 2 of 3' &&
  grep -A1 '^Indirect leak of 256 byte(s) in 4 object(s)' "$out" | grep -qx '    256 bytes in 4 blocks are indirectly lost in loss record 1 of 3' &&
  grep -q '^hakmem: leak check: definitely lost 64 bytes in 1 blocks, indirectly lost 960 bytes in 8 blocks,' "$out"; }
result $? "leakcheck: a leaked tree (root of 64 B, four children of 64 B, four grandchildren of 176 B): '1,024 (64 direct, 960 indirect) bytes in 1 blocks are definitely lost in loss record 3 of 3', the children's and grandchildren's records (exit $st)" "$out"

# Still reachable blocks: counted by default, listed with their stacks on request.
HAKMEM_LEAKCHECK=1 LD_PRELOAD=$lib "$prog" reachable >/dev/null 2>"$out"; st=$?
[ $st = 0 ] && ! grep -q 'Still reachable\|still reachable in loss record\|leak of' "$out" &&
  grep -q 'still reachable 636 bytes in 7 blocks' "$out"
result $? "leakcheck: still reachable blocks by default: counted (636 bytes in 7 blocks), not listed (exit $st)" "$out"
printf 'leak:make_reachable\n' >"$tmp/supp"
HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_REACHABLE=1 HAKMEM_LEAKCHECK_SUPPRESS=$tmp/supp LD_PRELOAD=$lib "$prog" reachable >/dev/null 2>"$out"; st=$?
grep -A2 '^Still reachable: 333 byte(s) in 1 object(s) allocated from:' "$out" >"$tmp/g"
[ $st = 0 ] && ! grep -q 'ERROR\|leak of' "$out" && [ "$(grep -c '^Still reachable: ' "$out")" = 3 ] &&
  grep -qx '    333 bytes in 1 blocks are still reachable in loss record 3 of 3' "$tmp/g" &&
  grep -q '#0 0x[0-9a-f]* in make_reachable ' "$tmp/g" && grep -q 'still reachable 636 bytes in 7 blocks, suppressed 0 bytes' "$out"
result $? "leakcheck: HAKMEM_LEAKCHECK_REACHABLE=1 lists the 3 still reachable records with their stacks (a suppression of their function does not apply), no leak, exit 0 (exit $st)" "$out"

# hak_leak_check mid-run, every LIB: the report and the figures now, the program
# goes on (allocating and freeing), the exit check says the same.
for l in "${libs[@]}"; do
  timeout 60 env HAKMEM_LEAKCHECK=1 LD_PRELOAD="$l" "$prog" check-midrun >"$tmp/stdout" 2>"$out"; st=$?
  cat "$tmp/stdout" >>"$out"
  grep '^hakmem: leak check:' "$out" >"$tmp/counts"
  { [ $st = 23 ] && [ "$(wc -l <"$tmp/counts")" = 3 ] && [ "$(sort -u "$tmp/counts" | wc -l)" = 1 ] &&
    grep -q '^hakmem: leak check: definitely lost 88 bytes in 2 blocks, indirectly lost 960 bytes in 8 blocks, possibly lost 0 bytes in 0 blocks, still reachable 4096 bytes in 1 blocks' "$tmp/counts" &&
    [ "$(grep -cx 'check-midrun: returned 1048 checked 1 definitely 88/2 indirectly 960/8 possibly 0/0 reachable 4096/1 suppressed 0/0 ignored 0/0' "$tmp/stdout")" = 2 ] &&
    [ "$(grep -c '^    1,024 (64 direct, 960 indirect) bytes in 1 blocks are definitely lost in loss record 4 of 5' "$out")" = 3 ]; }
  result $? "leakcheck: $(basename "$(dirname "$l")"): hak_leak_check mid-run returns 1048 (88 + 960 bytes lost), fills the counts, prints the report; a second from a deeper frame and the exit check's say the same (exit $st)" "$out"
done
# ... while two threads allocate and free blocks of every tier (large ones unmapped at once).
timeout 60 env HAKMEM_LEAKCHECK=1 LD_PRELOAD="$lib" "$prog" check-threads >"$tmp/stdout" 2>"$out"; st=$?
cat "$tmp/stdout" >>"$out"
n=0
while read -r what returned lost checked one rest; do
  [ "$what $returned $checked $one" = "check-threads: returned checked 1" ] && [ "$lost" -ge 1024 ] && n=$((n + 1))
done <"$tmp/stdout"
[ $st = 23 ] && [ $n = 4 ] && [ "$(grep -c '^hakmem: leak check:' "$out")" = 5 ] &&
  grep '^hakmem: leak check:' "$out" | tail -n 1 | grep -q '^hakmem: leak check: definitely lost 64 bytes in 1 blocks, indirectly lost 960 bytes in 8 blocks,'
result $? "leakcheck: hak_leak_check three times while two threads allocate and free and a third checks too: no crash, each finds the tree's 1024 bytes or more, the exit check exactly them ($n of 4 checks, exit $st)" "$out"

# hak_leak_ignore: the table and what only it reaches are not reported (the table
# counted as ignored, its blocks still reachable), nor a lone block; what is no
# live block fails with EINVAL; a block freed or moved loses its mark.
HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_REACHABLE=1 LD_PRELOAD="$lib" "$prog" ignore >"$tmp/stdout" 2>"$out"; st=$?
cat "$tmp/stdout" >>"$out"
printf '%s\n' 'ignore table 0 -' 'ignore table-again 0 -' 'ignore lone 0 -' 'ignore null -1 EINVAL' 'ignore stack -1 EINVAL' \
  'ignore interior -1 EINVAL' 'ignore before-free 0 -' 'ignore freed -1 EINVAL' 'ignore before-realloc 0 -' \
  'ignore mmap -1 EINVAL' >"$tmp/want"
grep -A2 '^Still reachable: 144 byte(s) in 3 object(s) allocated from:' "$out" >"$tmp/g"
{ [ $st = 23 ] && grep '^ignore ' "$tmp/stdout" | cmp -s - "$tmp/want" &&
  grep -q '^hakmem: leak check: definitely lost 100064 bytes in 3 blocks, indirectly lost 0 bytes in 0 blocks, possibly lost 0 bytes in 0 blocks, .*ignored 132 bytes in 2 blocks$' "$out" &&
  grep -q '#0 0x[0-9a-f]* in ignore_blocks ' "$tmp/g" && ! grep -q '^Direct leak of \(32\|100\) byte' "$out" &&
  grep -q '^Direct leak of 40 byte(s) in 1 object(s)' "$out" && grep -q '^Direct leak of 100000 byte(s) in 1 object(s)' "$out"; }
result $? "leakcheck: hak_leak_ignore: the ignored table (its 3 blocks still reachable) and lone block not reported (ignored 132 bytes in 2 blocks); NULL, a stack address, an interior pointer, a freed block, an mmap'd page: -1 EINVAL; freed or moved by realloc, the mark is gone (exit $st)" "$out"

# With the checker off, both calls do nothing: hak_leak_check 0 (checked 0), hak_leak_ignore 0.
LD_PRELOAD="$lib" "$prog" check-midrun >"$tmp/stdout" 2>"$out"; st=$?
LD_PRELOAD="$lib" "$prog" ignore >>"$tmp/stdout" 2>>"$out"; st2=$?
cat "$tmp/stdout" >>"$out"
[ $st = 0 ] && [ $st2 = 0 ] &&
  grep -qx 'check-midrun: returned 0 checked 0 definitely 0/0 indirectly 0/0 possibly 0/0 reachable 0/0 suppressed 0/0 ignored 0/0' "$tmp/stdout" &&
  [ "$(grep -c '^ignore .* 0 -$' "$tmp/stdout")" = 10 ] && ! grep -q '^hakmem\|ERROR' "$out"
result $? "leakcheck: checker off: hak_leak_check returns 0 with checked 0 and prints nothing, hak_leak_ignore returns 0 (exit $st, $st2)" "$out"

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
  grep -A3 '^Direct leak of 24 byte(s) in 1 object(s)' "$out" >"$tmp/g"
  [ $st = 23 ] && grep -q 'source: tests/leaks.c:[0-9]' "$tmp/g" && grep -q '#0 0x[0-9a-f]* in leak_direct_small ' "$tmp/g" &&
    grep -q '^Indirect leak of 96 byte(s) in 2 object(s)' "$out"
  result $? "leakcheck: HAK_TRACE_SOURCE (static link): file:line and the leaking function as frame #0 (exit $st)" "$out"
else
  result 1 "leakcheck: $src is built"
fi
finish leakcheck
