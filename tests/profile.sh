#!/usr/bin/env bash
# profile.sh LIB... — the heap profiler's tests (make test-profile), through
# Debian's google-pprof (package google-perftools), on tests/profile.c: three
# functions allocate 60 %, 30 % and 10 % of the bytes in blocks of 48 B,
# 4000 B and 100000 B.
#   - in-use space (blocks live at hak_profile_dump; HAKMEM_PROFILE_RATE=16384:
#     some 4400 samples): google-pprof --text ranks alloc_sixty, alloc_thirty,
#     alloc_ten first, in that order, each share within 3 points of the truth,
#     the total within 5 %; the same for the profile written at exit
#     (HAKMEM_PROFILE=prefix: prefix.<pid>.0001.heap). Every LIB.
#   - allocated space (2.4 GB of blocks freed at once, the default rate of
#     512 KiB: some 4600 samples): --alloc_space ranks and shares the same; in
#     use, under 1 MB remains. The first LIB.
#   - the file: the header with heap_v2/<rate>, one line per stack, then
#     MAPPED_LIBRARIES; google-pprof --svg draws it; HAKMEM_PROFILE_INTERVAL
#     numbers the dumps .0001, .0002, ...; two processes with the same prefix
#     (timeout running the program: fork and exec) write a file each, with
#     their pids, each whole; a forked child writes prefix.<its pid>.0001.heap;
#     a file already there is never overwritten; an unwritable prefix says so;
#     the API's errors; a signal handler that allocates, threads and fork
#     under the profiler.
# One PASS/FAIL/SKIP line per check, then a count (tests/lib.sh); exit 1 if
# anything failed.
set -u
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.." || exit 2
B=build
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the one file a glob names (a process's numbered profile: prefix.<pid>.0001.heap), or nothing
one() { [ $# = 1 ] && [ -f "$1" ] && echo "$1"; }
[ $# -gt 0 ] || set -- $B/hybrid/libhakmem.so
prog=$B/tests/profile
[ -x "$prog" ] || { fail "$prog is not built"; finish profile; }
if ! command -v google-pprof >/dev/null; then
  skip "heap profiles through google-pprof" "google-pprof is not installed (scripts/install-deps.sh test installs google-perftools)"
  finish profile
fi

# ranks FILE SPACE-OPTION TOTAL-BYTES: google-pprof --text's first three
# functions must be the three, in order, each share within 3 points of
# 60/30/10, the total within 5 % of TOTAL-BYTES (MB of 2^20 bytes).
ranks() {
  google-pprof --text $2 "$prog" "$1" >"$tmp/text" 2>"$tmp/err" || return 1
  awk -v total="$3" '
    BEGIN { n = 0 }
    /^Total: / { t = $2 + 0 }
    /^ *[0-9.]+ +[0-9.]+% +[0-9.]+% / { if (n < 3) { name[n] = $6; share[n] = $2 + 0; n++ } }
    END {
      want[0] = "alloc_sixty"; want[1] = "alloc_thirty"; want[2] = "alloc_ten"; pct[0] = 60; pct[1] = 30; pct[2] = 10
      ok = n == 3
      for (i = 0; i < 3; i++) {
        sub(/\..*/, "", name[i]) # alloc_sixty.constprop.0: a clone of the function
        d = share[i] - pct[i]; if (d < 0) d = -d
        if (name[i] != want[i] || d > 3) ok = 0
        printf "%s %.1f%% (truth %d%%); ", name[i], share[i], pct[i]
      }
      mb = total / 1048576; d = t - mb; if (d < 0) d = -d
      printf "total %.1f MB (truth %.1f)\n", t, mb
      exit !(ok && d <= 0.05 * mb)
    }' "$tmp/text" >"$tmp/verdict"
}

first=1
for lib in "$@"; do
  v=$(basename "$(dirname "$lib")")
  rm -f "$tmp"/p.*
  HAKMEM_PROFILE=$tmp/p HAKMEM_PROFILE_RATE=16384 LD_PRELOAD=$lib "$prog" inuse 6 "$tmp/inuse.heap" >"$tmp/out" 2>&1
  st=$?
  { [ $st = 0 ] && ranks "$tmp/inuse.heap" "" 72000000; } 
  r=$?; cat "$tmp/text" >>"$tmp/verdict" 2>/dev/null
  result $r "profile: $v: in-use space, google-pprof --text: $(head -n 1 "$tmp/verdict")" "$tmp/verdict"
  f=$(one "$tmp"/p.*.0001.heap)
  { [ -n "$f" ] && ranks "$f" "" 72000000; }
  result $? "profile: $v: the profile written at exit (HAKMEM_PROFILE=prefix: prefix.<pid>.0001.heap) ranks the same: $(head -n 1 "$tmp/verdict")" "$tmp/verdict"
  [ $first = 1 ] || continue
  first=0

  # The file itself.
  f=$tmp/inuse.heap
  { head -n 1 "$f" | grep -Eq '^heap profile: +[0-9]+: +[0-9]+ \[ *[0-9]+: +[0-9]+\] @ heap_v2/16384$' &&
    sed -n '2,/^$/p' "$f" | grep -v '^$' | grep -Evq '^[0-9]+: [0-9]+ \[[0-9]+: [0-9]+\] @( 0x[0-9a-f]+)+$' ; [ $? = 1 ]; } &&
    grep -q '^MAPPED_LIBRARIES:$' "$f" && grep -q "$(basename "$prog")\$" "$f"
  result $? "profile: the file: 'heap profile: ... @ heap_v2/16384', one '<n>: <bytes> [<n>: <bytes>] @ 0x...' line per stack, MAPPED_LIBRARIES" "$f"
  if command -v dot >/dev/null; then
    google-pprof --svg "$prog" "$f" >"$tmp/p.svg" 2>"$tmp/err"
    grep -q '<svg' "$tmp/p.svg" && grep -q 'alloc_sixty' "$tmp/p.svg"
    result $? "profile: google-pprof --svg draws it (alloc_sixty in the picture)" "$tmp/err"
  else
    skip "profile: google-pprof --svg" "graphviz's dot is not installed"
  fi

  # Allocated space: short-lived blocks, the default rate, hak_profile_start.
  LD_PRELOAD=$lib "$prog" alloc 200 "$tmp/a" >"$tmp/out" 2>&1
  st=$?
  f=$(one "$tmp"/a.*.0001.heap)
  { [ $st = 0 ] && [ -n "$f" ] && ranks "$f" --alloc_space 2400000000; }
  r=$?; cat "$tmp/text" >>"$tmp/verdict" 2>/dev/null
  result $r "profile: allocated space (--alloc_space), blocks freed at once, default rate: $(head -n 1 "$tmp/verdict")" "$tmp/verdict"
  head -n 1 "$f" >"$tmp/head"
  awk 'NR == 1 { exit !($1 == "heap" && $4 + 0 < 1048576 && $6 + 0 > 1000000) }' "$tmp/head"
  result $? "profile: ... and in use at exit, under 1 MB of samples: $(cat "$tmp/head")" "$tmp/head"

  # Numbered dumps every HAKMEM_PROFILE_INTERVAL bytes.
  HAKMEM_PROFILE_INTERVAL=200000000 LD_PRELOAD=$lib "$prog" alloc 50 "$tmp/i" >"$tmp/out" 2>&1
  n=$(ls "$tmp"/i.*.heap 2>/dev/null | wc -l)
  ls "$tmp"/i.*.heap >"$tmp/list" 2>&1
  [ "$n" -ge 3 ] && [ "$n" -le 5 ] && [ -n "$(one "$tmp"/i.*.0001.heap)" ] && [ -n "$(one "$tmp"/i.*.000$n.heap)" ]
  result $? "profile: HAKMEM_PROFILE_INTERVAL=200000000 over 600 MB: $n files i.<pid>.0001.heap ... i.<pid>.000$n.heap (3 or 4 intervals and the exit)" "$tmp/list"

  # fork: the child numbers its own files, with its pid.
  out=$(LD_PRELOAD=$lib "$prog" fork "$tmp/f" 2>&1)
  ppid=$(echo "$out" | sed -n 's/^parent \([0-9]*\) child [0-9]*$/\1/p')
  pid=$(echo "$out" | sed -n 's/^parent [0-9]* child \([0-9]*\)$/\1/p')
  [ -n "$pid" ] && [ -f "$tmp/f.$pid.0001.heap" ] && [ -f "$tmp/f.$ppid.0001.heap" ] &&
    google-pprof --text "$prog" "$tmp/f.$pid.0001.heap" 2>/dev/null | grep -q alloc_sixty
  result $? "profile: a forked child writes prefix.<its pid>.0001.heap, the parent prefix.<its pid>.0001.heap ($out)"

  # Two processes, one prefix: timeout forks and execs the program, both under
  # HAKMEM_PROFILE; each writes its own file, whole (the program's ranks as
  # above; timeout's names its own executable), neither overwrites the other.
  HAKMEM_PROFILE=$tmp/two HAKMEM_PROFILE_RATE=16384 LD_PRELOAD=$lib timeout 60 "$prog" inuse 6 "$tmp/two-inuse.heap" >"$tmp/out" 2>&1
  st=$?
  ls "$tmp"/two.*.heap >"$tmp/list" 2>&1
  fp=$(grep -l "$(basename "$prog")\$" "$tmp"/two.*.heap 2>/dev/null)
  ft=$(grep -l '/timeout$' "$tmp"/two.*.heap 2>/dev/null)
  { [ $st = 0 ] && [ "$(wc -l <"$tmp/list")" = 2 ] && [ -n "$(one $fp)" ] && [ -n "$(one $ft)" ] && [ "$fp" != "$ft" ] &&
    head -n 1 "$ft" | grep -q '^heap profile: ' && grep -q '^MAPPED_LIBRARIES:$' "$ft" && ranks "$fp" "" 72000000; }
  r=$?; { cat "$tmp/list"; cat "$tmp/verdict"; } >>"$tmp/out" 2>/dev/null
  result $r "profile: timeout running the program, one HAKMEM_PROFILE: two files, <prefix>.<pid>.0001.heap each, the program's whole ($(head -n 1 "$tmp/verdict" 2>/dev/null)), timeout's its own" "$tmp/out"

  # A file already at the next number is left alone; the dump takes the number after it.
  LD_PRELOAD=$lib "$prog" exclusive "$tmp/x" >"$tmp/out" 2>&1
  result $? "profile: hak_profile_dump(NULL) never overwrites a file: $(head -n 1 "$tmp/out")" "$tmp/out"

  # HAK_TRACE_SOURCE: the source location follows the stack's line (every block sampled).
  HAKMEM_PROFILE=$tmp/src HAKMEM_PROFILE_RATE=1 HAKMEM_LEAKCHECK_EXITCODE=0 $B/tests/leaks-source source >"$tmp/out" 2>&1
  f=$(one "$tmp"/src.*.0001.heap)
  [ -n "$f" ] && grep -A1 '^[0-9]*: 24 \[' "$f" | grep -q '^# source: tests/leaks.c:[0-9]*$' &&
    google-pprof --text "$B/tests/leaks-source" "$f" 2>/dev/null | grep -q 'leak_direct_small'
  result $? "profile: HAK_TRACE_SOURCE: '# source: tests/leaks.c:<line>' after the stack's line; google-pprof still reads the file" "${f:-$tmp/out}"

  # Safety: signal handlers that allocate, threads, fork, with sampling every 4-64 KiB.
  timeout 120 env HAKMEM_PROFILE=$tmp/s HAKMEM_PROFILE_RATE=4096 LD_PRELOAD=$lib "$prog" signals 3 >"$tmp/out" 2>&1
  st=$?
  f=$(one "$tmp"/s.*.0001.heap)
  [ $st = 0 ] && [ -n "$f" ] && google-pprof --text "$prog" "$f" >/dev/null 2>>"$tmp/out"
  result $? "profile: a timer signal every 50 us whose handler allocates and frees, 36 MB allocated: no deadlock, no corruption (exit $st; $(head -n 1 "$tmp/out"))" "$tmp/out"
  timeout 120 env HAKMEM_PROFILE=$tmp/t HAKMEM_PROFILE_RATE=65536 LD_PRELOAD=$lib $B/tests/stress --threads=4 --workers=8 --ops=5000 >"$tmp/out" 2>&1
  st=$?
  f=$(one "$tmp"/t.*.0001.heap)
  [ $st = 0 ] && [ -n "$f" ] && google-pprof --text --alloc_space "$B/tests/stress" "$f" 2>/dev/null | grep -q '^Total: '
  result $? "profile: stress (4 threads at once, 1/4 of frees cross-thread, patterns checked) under the profiler, and its profile reads (exit $st)" "$tmp/out"
  timeout 120 env HAKMEM_PROFILE=$tmp/k HAKMEM_PROFILE_RATE=65536 LD_PRELOAD=$lib $B/tests/fork --forks 40 >"$tmp/out" 2>&1
  result $? "profile: 40 forks while 3 threads churn, under the profiler: no child lost" "$tmp/out"

  # Errors: an unwritable prefix is reported; the API refuses what it cannot do.
  HAKMEM_PROFILE=$tmp/none/p LD_PRELOAD=$lib "$prog" inuse 1 "$tmp/none/x" >"$tmp/out" 2>&1
  st=$?
  [ $st = 1 ] && grep -q "hakmem: heap profile: cannot write $tmp/none/p\.[0-9]*\.0001\.heap: No such file or directory" "$tmp/out"
  result $? "profile: an unwritable prefix: hak_profile_dump fails, the exit dump says why (exit $st)" "$tmp/out"
  LD_PRELOAD=$lib "$prog" api >"$tmp/out" 2>&1
  result $? "profile: hak_profile_dump without a profile, hak_profile_start(NULL or \"\"): -1, EINVAL" "$tmp/out"
done
finish profile
