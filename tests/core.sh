#!/usr/bin/env bash
# core.sh VARIANT... — runs the allocator's tests for each variant and prints
# one PASS/FAIL line per check, then a count. Exit status 1 if anything failed.
# Expects the binaries of tests/tests.mk (make test-core builds them).
set -u
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.." || exit 2
B=build
TEST_DETAIL=15
TEST_SKIP_STATUS=77 # the test programs' status for a check that could not run here
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# run <what> <command...>: PASS when the command exits 0 (output kept for FAIL);
# the line ends with the check's wall time
run() {
  local what=$1; shift
  local t0=$SECONDS
  timeout 600 "$@" >"$log" 2>&1
  result $? "$what ($((SECONDS - t0)) s)" "$log"
}
# Shared by release and checked builds: 100 threads at once, threads starting
# and ending throughout, a third of the frees by another thread, validators
# over every structure at the end; running out of memory.
threads100() {
  run "$1/threads100: 100 threads at once, 200 in all, 1/3 of frees cross-thread, patterns, hak_validate at the end" \
    env LD_PRELOAD=$2 $B/tests/stress --threads=100 --workers=200 --ops=2000 --max-size=1048576 --cross-percent=33 --validate
}
exhaustion() {
  run "$1/exhaustion: huge requests fail without mapping; RLIMIT_AS: ENOMEM everywhere, recovery" \
    env LD_PRELOAD=$2 $B/tests/exhaustion
}
large() { # large blocks: huge requests, big blocks, pointers inside them, the cache's bound, the leak checker
  run "$1/large: 2^40..2^46-byte requests by every allocation function return within 10 ms (CPU): ENOMEM or a usable block; calloc(2 GiB) beside cached ranges" \
    env LD_PRELOAD=$2 $B/tests/large huge
  run "$1/large: requests above RAM + swap are refused (ENOMEM) unless vm.overcommit_memory=1" \
    env LD_PRELOAD=$2 $B/tests/large refused
  run "$1/large: 64 MiB and 1 GiB blocks usable, realloc to 128 MiB keeps them; free/realloc/malloc_usable_size inside a large block stopped" \
    env LD_PRELOAD=$2 $B/tests/large blocks
  run "$1/large: the large cache stays within its bound after frees lower it (64 -> 128 MiB realloc then 20,000 small calls; frees of 100 and 200 MiB)" \
    env LD_PRELOAD=$2 $B/tests/large cache
  run "$1/large: HAKMEM_LEAKCHECK=1: a block held only by a pointer 1 MiB into it is possibly lost" \
    env LD_PRELOAD=$2 $B/tests/large leak
  case $1 in hybrid*) # the variants with arenas (HAK_CONFIG_LARGE_ARENA: core/arena.c)
    run "$1/arena: blocks reused in place without faults, neighbours merged, best fit, realloc in place or by moving pages, pages back after a second not at once, hak_flush empties the arenas, double free stopped" \
      env LD_PRELOAD=$2 $B/tests/arena ;;
  esac
}
hooks() {
  run "$1/hooks: every call reported before and after, in order, no recursion, add/remove under 4 threads" \
    env LD_PRELOAD=$2 $B/tests/hooks
}
# stats_at_exit <build> <lib> <text file> <json file>: a program that knows
# nothing of hakmem (sort --parallel=3) writes the statistics at exit
# through HAKMEM_STATS and HAKMEM_STATS_FILE: text twice into one file (the
# second run appends, with the figures at the peak), JSON with the peak; its
# output is right and stderr stays empty (tests/stats_exit.py checks the files).
stats_at_exit() {
  local in=$3.in out=$3.out err=$3.err st=0
  : >"$3"
  : >"$4"
  seq 1 200000 | awk '{ print ($1 * 7919) % 200003 }' >"$in"
  for run in "HAKMEM_STATS=text" "HAKMEM_STATS=text HAKMEM_STATS_PEAK=1" "HAKMEM_STATS=json HAKMEM_STATS_PEAK=1"; do
    case $run in *json*) f=$4 ;; *) f=$3 ;; esac
    env LD_PRELOAD=$2 $run HAKMEM_STATS_FILE="$f" sort -n --parallel=3 -S 4M "$in" >"$out" 2>"$err" || st=1
    { [ ! -s "$err" ] && sort -n -c "$out" && [ "$(wc -l <"$out")" = 200000 ]; } || {
      st=1; echo "$run: stderr not empty or output wrong"; head -c 400 "$err"; }
  done >"$log" 2>&1
  [ $st = 0 ] && /usr/bin/python3 tests/stats_exit.py "${1%-check}" "$3" "$4" >>"$log" 2>&1
  result $? "$1/stats: at exit of sort under LD_PRELOAD, HAKMEM_STATS=text|json to HAKMEM_STATS_FILE (appended; with the peak): the variant's text and JSON, parts sum to mapped" "$log"
  rm -f "$in" "$out" "$err"
}
stats() { # release builds: statistics against known allocations, hak_reset, text and JSON of one state
  run "$1/stats: bytes in use and class counts follow known allocations in every tier, parts sum to mapped, hak_reset" \
    env LD_PRELOAD=$2 $B/tests/stats
  local t j
  t=$(mktemp) j=$(mktemp)
  LD_PRELOAD=$2 $B/tests/stats "$t" "$j" >"$log" 2>&1 &&
    /usr/bin/python3 tests/stats_json.py "$t" "$j" >>"$log" 2>&1
  result $? "$1/stats: hak_stats_print's JSON parses and carries every figure of its text rendering of the same state" "$log"
  stats_at_exit "$1" "$2" "$t" "$j"
  run "$1/stats: HAKMEM_STATS_SIGNAL=12 writes the statistics to HAKMEM_STATS_FILE while the program runs" \
    env LD_PRELOAD=$2 HAKMEM_STATS_SIGNAL=12 HAKMEM_STATS_FILE="$t" $B/tests/stats --signal "$t"
  rm -f "$t" "$j"
  run "$1/stats: 4 threads churn while another reads the statistics and calls hak_reset: patterns, hak_validate" \
    env LD_PRELOAD=$2 $B/tests/stress --threads=4 --workers=8 --ops=10000 --stats --validate
}
fuzz() { # the short run; `make fuzz` runs 4 seeds x 10^6 operations
  run "$1/fuzz: 10^5 random calls of every API function, shadow-checked (seed 1)" \
    env LD_PRELOAD=$2 $B/tests/fuzz --seed 1 --ops 100000
}

for v in "$@"; do
  lib=$B/$v/libhakmem.so
  if [ ! -f "$lib" ]; then result 1 "$v: $lib exists"; continue; fi
  case $v in
  *-check) # a checked build: the API with the checked build's misuse list, fork, stress, threads
    run "$v/api: malloc API conformance and every misuse the checked build stops" env LD_PRELOAD=$lib $B/tests/api "$v"
    run "$v/threads: thread exit with live blocks, fork in a threaded program" env LD_PRELOAD=$lib $B/tests/threads
    run "$v/fork: 400 forks while 3 threads churn, fork from a thread, nested fork, system, posix_spawn: no child lost" \
      env LD_PRELOAD=$lib $B/tests/fork --forks 400
    run "$v/stress: 16 workers, 4 at once, patterns checked, 1/4 cross-thread" \
      env LD_PRELOAD=$lib $B/tests/stress --threads=4 --workers=16 --ops=20000
    threads100 "$v" "$lib"
    exhaustion "$v" "$lib"
    large "$v" "$lib"
    fuzz "$v" "$lib"
    hooks "$v" "$lib"
    continue ;;
  esac
  run "$v/unit: size classes, slabs, remote-free stack, medium, large (UBSan)" $B/$v/tests/unit
  run "$v/placement: NUMA, simulated two nodes: slabs from SuperSlabs of the thread's node, bound there; the pool keeps nodes apart (UBSan)" \
    $B/$v/tests/placement numa
  run "$v/placement: HAKMEM_THP=off (default): no mapping advised as huge pages" env HAKMEM_THP=off $B/$v/tests/placement thp
  run "$v/placement: HAKMEM_THP=on: large blocks >= 2 MiB 2 MiB-aligned and advised MADV_HUGEPAGE, SuperSlabs too" \
    env HAKMEM_THP=on $B/$v/tests/placement thp-on
  run "$v/api: malloc API conformance under LD_PRELOAD" env LD_PRELOAD=$lib $B/tests/api "$v"
  run "$v/api-static: the same, linked with libhakmem.a" $B/$v/tests/api-static "$v"
  run "$v/faults: each mmap of the allocator failed in turn (once, and from then on): NULL+ENOMEM, no crash, recovery, validators" $B/$v/tests/faults
  run "$v/threads: thread exit with live blocks, fork in a threaded program" env LD_PRELOAD=$lib $B/tests/threads
  run "$v/fork: 400 forks while 3 threads churn, fork from a thread, nested fork, system, posix_spawn: no child lost" \
    env LD_PRELOAD=$lib $B/tests/fork --forks 400
  # The stress test; its time and peak RSS are printed for information only.
  out=$(mktemp)
  LD_PRELOAD=$lib timeout 600 /usr/bin/time -f "%e %M" -o "$out" $B/tests/stress --threads=4 --workers=16 --ops=30000 >"$log" 2>&1
  st=$?
  read -r secs kib <"$out" 2>/dev/null || { secs=?; kib=?; }
  rm -f "$out"
  result $st "$v/stress: 16 workers, 4 at once, patterns checked, 1/4 of frees cross-thread ($secs s, peak RSS $kib KiB)" "$log"
  threads100 "$v" "$lib"
  exhaustion "$v" "$lib"
  large "$v" "$lib"
  fuzz "$v" "$lib"
  hooks "$v" "$lib"
  stats "$v" "$lib"
  run "$v/stress-tsan: stress on hak_* under ThreadSanitizer, 16 threads at once, 1/3 cross-thread, hak_validate" \
    env TSAN_OPTIONS="halt_on_error=1 exitcode=66" \
    $B/$v/tests/stress-tsan --threads=16 --workers=48 --ops=3000 --max-size=1048576 --cross-percent=33 --validate
  run "$v/stress-tsan: statistics and hak_reset from another thread while 4 churn, under ThreadSanitizer" \
    env TSAN_OPTIONS="halt_on_error=1 exitcode=66" \
    $B/$v/tests/stress-tsan --threads=4 --workers=8 --ops=2000 --max-size=1048576 --cross-percent=33 --stats --validate
  run "$v/stress-ubsan: stress on hak_* under UBSan" $B/$v/tests/stress-ubsan --threads=4 --workers=8 --ops=30000
  TEST_TOTALS= tests/programs.sh "$lib" "$v/programs" >"$log" 2>&1 # (counted here, not on its own)
  st=$?
  absorb "$log" $st "$v/programs: exit $st"
done
# Run-time options (tests/options.c), with the first release build given: bad values
# are reported in one line and the default taken; the statistics signal takes only
# signals that decide nothing of a program's fate, and keeps the program's handler.
olib=
for v in "$@"; do case $v in *-check) ;; *) olib=${olib:-$B/$v/libhakmem.so} ;; esac; done
opt=$B/tests/options
if [ -n "$olib" ] && [ -f "$olib" ]; then
  ov=$(basename "$(dirname "$olib")")
  # var value default: the message, exit 0, and HAKMEM_VERBOSE's table shows the default taken
  bad_value() {
    local name
    name=$(echo "${1#HAKMEM_}" | tr 'A-Z' 'a-z')
    env "$1=$2" HAKMEM_VERBOSE=1 LD_PRELOAD=$olib $opt noop >/dev/null 2>"$log"
    local st=$?
    [ $st = 0 ] && [ "$(grep -c "^hakmem: $1='$2' is not " "$log")" = 1 ] && [ "$(grep -c '^hakmem: ' "$log")" = 1 ] &&
      grep -Eq "^$name +$3 " "$log"
    result $? "$ov/options: $1='$2' rejected in one line, the default ($3) taken (exit $st): $(grep -m1 "^hakmem: $1" "$log")" "$log"
  }
  bad_value HAKMEM_STATS " 1" 0
  bad_value HAKMEM_STATS "1 " 0
  bad_value HAKMEM_STATS "+1" 0
  bad_value HAKMEM_IDLE_MS "50ms" 200
  bad_value HAKMEM_LEAKCHECK "1x" 0
  bad_value HAKMEM_PROFILE_RATE "0x100" 524288
  bad_value HAKMEM_STATS_PEAK "99999999999999999999" 0
  for sig in 2 6 9 11 15 17; do bad_value HAKMEM_STATS_SIGNAL $sig 0; done
  bad_value HAKMEM_PROFILE_INTERVAL 1 0
  bad_value HAKMEM_PROFILE_INTERVAL 67108863 0
  # The fate of a program that faults or is interrupted is its own, whatever the option says.
  { timeout 20 env HAKMEM_STATS_SIGNAL=11 LD_PRELOAD=$olib $opt segv >"$log" 2>&1; } 2>/dev/null; st=$? # (no shell notice)
  [ $st = 139 ]; result $? "$ov/options: HAKMEM_STATS_SIGNAL=11: a program writing through a null pointer dies of SIGSEGV (status $st; 124: hung)" "$log"
  timeout 20 env HAKMEM_STATS_SIGNAL=2 LD_PRELOAD=$olib $opt sigint >"$log" 2>&1; st=$?
  [ $st = 130 ]; result $? "$ov/options: HAKMEM_STATS_SIGNAL=2: raise(SIGINT) ends the program by SIGINT (status $st)" "$log"
  # The signals it does take: SIGUSR1, SIGUSR2, real-time ones.
  sf=$(mktemp)
  for sig in 10 40; do
    : >"$sf"
    timeout 60 env HAKMEM_STATS_SIGNAL=$sig HAKMEM_STATS_FILE="$sf" LD_PRELOAD=$olib $opt stats $sig "$sf" >"$log" 2>&1
    result $? "$ov/options: HAKMEM_STATS_SIGNAL=$sig: the signal writes the statistics while the program runs ($(head -n 1 "$log"))" "$log"
  done
  # A handler the program installed before hakmem's (a constructor before hakmem's
  # initialisation, libhakmem.a) still runs, with its siginfo; statistics are written too.
  : >"$sf"
  timeout 60 env HAKMEM_STATS_SIGNAL=10 HAKMEM_STATS_FILE="$sf" $B/tests/options-static chain "$sf" >"$log" 2>&1
  result $? "options: a program's SIGUSR1 handler installed before hakmem's is chained: $(head -n 1 "$log")" "$log"
  # One installed after hakmem's replaces it (README): the program's, no statistics.
  : >"$sf"
  timeout 60 env HAKMEM_STATS_SIGNAL=12 HAKMEM_STATS_FILE="$sf" LD_PRELOAD=$olib $opt after "$sf" >"$log" 2>&1
  result $? "$ov/options: a SIGUSR2 handler the program installs after hakmem's replaces it: $(head -n 1 "$log")" "$log"
  rm -f "$sf"
else
  result 1 "options: a release build's library to run them with"
fi

# The stress test itself must catch an allocator that hands a block out twice.
LD_PRELOAD=$B/tests/libbroken_malloc.so timeout 120 $B/tests/stress --threads=2 --workers=4 --ops=20000 >"$log" 2>&1
bs=$?
[ $bs != 0 ] && grep -q corrupted "$log"; result $? "stress detects a broken allocator that hands a block out twice (exit $bs)" "$log"
# So must the fuzzer.
LD_PRELOAD=$B/tests/libbroken_malloc.so timeout 120 $B/tests/fuzz --seed 1 --ops 100000 >"$log" 2>&1
bs=$?
[ $bs = 1 ] && grep -q '^fuzz: FAIL ' "$log"; result $? "fuzz detects a broken allocator that hands a block out twice (exit $bs)" "$log"
finish core
