#!/usr/bin/env bash
# core.sh VARIANT... — runs the allocator's tests for each variant and prints
# one PASS/FAIL line per check, then a count. Exit status 1 if anything failed.
# Expects the binaries of tests/tests.mk (make test-core builds them).
set -u
cd "$(dirname "$0")/.." || exit 2
B=build
pass=0 fail=0
result() { # result <status> <what> [detail file]
  if [ "$1" = 0 ]; then echo "PASS $2"; pass=$((pass + 1))
  else
    echo "FAIL $2"; fail=$((fail + 1))
    [ -n "${3:-}" ] && sed 's/^/    /' "$3" | tail -n 15
  fi
}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# run <what> <command...>: PASS when the command exits 0 (output kept for FAIL)
run() { local what=$1; shift; timeout 600 "$@" >"$log" 2>&1; result $? "$what" "$log"; }

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
    continue ;;
  esac
  run "$v/unit: size classes, slabs, remote-free stack, medium, large (UBSan)" $B/$v/tests/unit
  run "$v/api: malloc API conformance under LD_PRELOAD" env LD_PRELOAD=$lib $B/tests/api "$v"
  run "$v/api-static: the same, linked with libhakmem.a" $B/$v/tests/api-static "$v"
  run "$v/threads: thread exit with live blocks, fork in a threaded program" env LD_PRELOAD=$lib $B/tests/threads
  run "$v/fork: 400 forks while 3 threads churn, fork from a thread, nested fork, system, posix_spawn: no child lost" \
    env LD_PRELOAD=$lib $B/tests/fork --forks 400
  # The stress test under hakmem and under glibc in the same run: time and peak RSS.
  for who in hakmem glibc; do
    pre=$([ $who = hakmem ] && echo "$lib" || echo "")
    out=$(mktemp)
    LD_PRELOAD=$pre timeout 600 /usr/bin/time -f "%e %M" -o "$out.time" $B/tests/stress --threads=4 --workers=16 --ops=50000 >"$log" 2>&1
    st=$?
    read -r secs kib <"$out.time" 2>/dev/null || { secs=?; kib=?; }
    if [ $who = hakmem ]; then result $st "$v/stress: 16 workers, 4 at once, patterns checked, 1/4 cross-thread ($secs s, peak RSS $kib KiB)" "$log"
    else echo "INFO $v/stress under glibc: $secs s, peak RSS $kib KiB (same run, for comparison)"; fi
    rm -f "$out" "$out.time"
  done
  run "$v/stress-tsan: stress on hak_* under ThreadSanitizer" env TSAN_OPTIONS="halt_on_error=1 exitcode=66" \
    $B/$v/tests/stress-tsan --threads=4 --workers=8 --ops=10000 --max-size=1048576
  run "$v/stress-ubsan: stress on hak_* under UBSan" $B/$v/tests/stress-ubsan --threads=4 --workers=8 --ops=30000
  # the stress test itself must catch an allocator that hands a block out twice
  LD_PRELOAD=$B/tests/libbroken_malloc.so timeout 120 $B/tests/stress --threads=2 --workers=4 --ops=20000 >"$log" 2>&1
  bs=$?
  [ $bs != 0 ] && grep -q corrupted "$log"; result $? "$v/stress detects a broken allocator that hands a block out twice (exit $bs)" "$log"
  tests/programs.sh "$lib" "$v/programs" >"$log" 2>&1
  st=$?
  cat "$log" | grep -E '^(PASS|FAIL|SKIP)'
  p=$(grep -c '^PASS' "$log"); f=$(grep -c '^FAIL' "$log")
  pass=$((pass + p)); fail=$((fail + f))
  [ $st != 0 ] && [ "$f" = 0 ] && { echo "FAIL $v/programs: exit $st"; fail=$((fail + 1)); }
done
echo "core: $pass passed, $fail failed"
[ $fail = 0 ]
