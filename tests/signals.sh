#!/usr/bin/env bash
# signals.sh [--runs N] LIB... — signal handlers that allocate (make test-signals;
# make soak runs it with --runs 100).
#
# tests/signals.c under each LIB: two threads churn blocks of every tier while
# a timer signal lands on them; its handler allocates sizes they use and sizes
# they never use, in every tier, and frees them (README, "Signal handlers").
# Each LIB is run plainly (a signal every 50 us), under the heap profiler
# (HAKMEM_PROFILE, a sample every 4 KiB) and under the leak checker, those two
# with a signal every 300 us (the handler's ten tracked allocations take longer
# than 50 us there: a shorter interval only starves the threads). Each run must
# end within 60 s (a hang fails), with every block intact, hak_validate()
# clean, at least 1,000 handler runs, and some of them inside hakmem's slow
# paths (hakmem's count of re-entrant allocations above 0: the point of the
# test); under the leak checker nothing may be reported lost (glibc's own
# start-up and thread blocks are suppressed by tests/leakcheck.supp).
# One PASS/FAIL line per run, then a count (tests/lib.sh); exit 1 if anything
# failed.
set -u
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.." || exit 2
B=build
runs=1
if [ "${1:-}" = --runs ]; then runs=$2; shift 2; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ $# -gt 0 ] || set -- $B/hybrid/libhakmem.so
prog=$B/tests/signals
[ -x "$prog" ] || { fail "$prog is not built"; finish signals; }

# verdict FILE STATUS: the run's summary line says enough handler runs,
# re-entrant calls and no failure.
verdict() {
  [ "$2" = 0 ] && awk '/^signals: / { ok = $2 >= 1000 && $6 > 0 && $12 == 0 } END { exit !ok }' "$1"
}

for lib in "$@"; do
  v=$(basename "$(dirname "$lib")")
  for mode in plain profile leakcheck; do
    ok=0 bad=0 first=""
    for ((r = 1; r <= runs; r++)); do
      out=$tmp/out
      case $mode in
        plain) timeout -k 5 60 env LD_PRELOAD="$lib" "$prog" --seconds 1 --interval 50 --seed "$r" >"$out" 2>&1 ;;
        profile) timeout -k 5 60 env HAKMEM_PROFILE="$tmp/p" HAKMEM_PROFILE_RATE=4096 LD_PRELOAD="$lib" \
                   "$prog" --seconds 2 --interval 300 --seed "$r" >"$out" 2>&1 ;;
        leakcheck) timeout -k 5 60 env HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_SUPPRESS=tests/leakcheck.supp \
                     LD_PRELOAD="$lib" "$prog" --seconds 2 --interval 300 --seed "$r" >"$out" 2>&1 ;;
      esac
      st=$?
      rm -f "$tmp"/p.*
      if verdict "$out" $st && { [ $mode != leakcheck ] || grep -q 'definitely lost 0 bytes in 0 blocks, indirectly lost 0 bytes in 0 blocks, possibly lost 0 bytes' "$out"; }; then
        ok=$((ok + 1))
        [ -n "$first" ] || first=$(grep '^signals: ' "$out")
      else
        bad=$((bad + 1))
        echo "    run $r (exit $st$([ $st = 124 ] && echo ': a hang')):"
        sed 's/^/      /' "$out" | tail -n 8
      fi
    done
    [ $bad = 0 ]
    result $? "signals: $v, $mode: $ok of $runs runs without a hang or a corrupted block ($first)"
  done
done
finish signals
