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
#   - the dumps the options ask for (the first LIB), each with its line on
#     stderr, 'hakmem: profile: FILE: X MiB in use in N blocks (REASON)', X
#     and N as the file's lines give them reweighted (google-pprof's Total):
#     HAKMEM_PROFILE_INUSE_INTERVAL=16 MiB over in use 40, 8, 40, 60 MiB: a
#     dump each time in use passes the high-water mark by 16 MiB, three; the
#     TIME_INTERVAL=1 while the program sleeps 2.5 s: two; the SIGNAL three
#     times: one dump for each, within 1 s while the program allocates
#     nothing (the last two: variants with a scavenger); bad values refused,
#     the profile signal not the statistics' one.
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

  # The dumps the options ask for. figures FILE: "<MiB with one decimal> <blocks>"
  # in use by the file's lines reweighted as google-pprof does (heap_v2/<rate>).
  figures() {
    awk 'NR == 1 { split($NF, h, "/"); rate = h[2] + 0; next }
      /^$/ { exit }
      /^[0-9]+: [0-9]+ \[/ { n = $1 + 0; b = $2 + 0; if (n > 0) { s = 1 / (1 - exp(-(b / n) / rate)); nb += n * s; by += b * s } }
      END { printf "%.1f %d\n", by / 1048576, nb + 0.5 }' "$1"
  }
  # dumps LOG: every "hakmem: profile:" line of LOG names a file whose figures
  # it gives; prints "<file> <MiB> <reason>" per line; fails if one does not match.
  dumps() {
    sed -n 's/^hakmem: profile: \(.*\): \([0-9.]*\) MiB in use in \([0-9,]*\) blocks (\(.*\))$/\1 \2 \3 \4/p' "$1" |
      while read -r f mib blocks why; do
        got=$(figures "$f" 2>/dev/null)
        echo "$f $mib ${why// /_}"
        [ "$got" = "$mib ${blocks//,/}" ] || { echo "MISMATCH: the line says $mib MiB, $blocks blocks; the file $got"; }
      done
  }
  HAKMEM_PROFILE=$tmp/u HAKMEM_PROFILE_RATE=16384 HAKMEM_PROFILE_INUSE_INTERVAL=16777216 LD_PRELOAD=$lib "$prog" steps \
    >"$tmp/out" 2>&1
  st=$?
  dumps "$tmp/out" >"$tmp/dumps"
  n=$(ls "$tmp"/u.*.heap 2>/dev/null | wc -l)
  # the in-use dumps: MiB each 16 to 16.5 past the one before (the high-water mark), then the exit's at
  # 60 (within 0.5: a block of 128 KiB escapes sampling at 1 in 3,000)
  { [ $st = 0 ] && [ "$n" = 4 ] && ! grep -q MISMATCH "$tmp/dumps" &&
    awk '{ mib[NR] = $2; why[NR] = $3 } END {
      ok = NR == 4 && why[4] == "exit" && mib[4] > 59.5 && mib[4] < 60.5; last = 0
      for (i = 1; i <= 3; i++) { d = mib[i] - last; if (why[i] != "inuse_interval" || d < 16 || d > 16.5) ok = 0; last = mib[i] }
      exit !ok }' "$tmp/dumps" &&
    f=$(awk 'NR == 3 { print $1 }' "$tmp/dumps") && google-pprof --text "$prog" "$f" 2>/dev/null |
      grep -q "^Total: $(awk 'NR == 3 { print $2 }' "$tmp/dumps") MB\$"; }
  r=$?; cat "$tmp/dumps" >>"$tmp/out"
  result $r "profile: HAKMEM_PROFILE_INUSE_INTERVAL=16 MiB, in use 40, 8, 40, 60 MiB: $n files, dumps at $(awk '{ printf "%s%s MiB (%s)", (NR > 1 ? ", " : ""), $2, $3 }' "$tmp/dumps"): one each time in use passes the last high-water mark by 16 MiB; each stderr line's figures the file's (google-pprof's Total)" "$tmp/out"

  # Time and signal: dumps while the program sleeps come from the scavenger's tick.
  if grep -q 'HAK_CONFIG_DYNAMIC_FLUSH 1' "variants/${v%-check}.h" 2>/dev/null; then
    HAKMEM_PROFILE=$tmp/w HAKMEM_PROFILE_TIME_INTERVAL=1 LD_PRELOAD=$lib "$prog" idle 2500 >"$tmp/out" 2>&1
    st=$?
    dumps "$tmp/out" >"$tmp/dumps"
    n=$(ls "$tmp"/w.*.heap 2>/dev/null | wc -l)
    [ $st = 0 ] && [ "$n" = 3 ] && ! grep -q MISMATCH "$tmp/dumps" && [ "$(awk '{ print $3 }' "$tmp/dumps" | tr '\n' ' ')" = "time_interval time_interval exit " ]
    r=$?; cat "$tmp/dumps" >>"$tmp/out"
    result $r "profile: HAKMEM_PROFILE_TIME_INTERVAL=1, the program asleep for 2.5 s: $n files, two '(time interval)' and the exit's, each line's figures the file's" "$tmp/out"
    # The time interval counts from the last dump, whatever its reason: a signal at 0.7 s, a time dump ~1 s later, no other.
    rm -f "$tmp"/w.*
    HAKMEM_PROFILE=$tmp/w HAKMEM_PROFILE_TIME_INTERVAL=1 HAKMEM_PROFILE_SIGNAL=12 LD_PRELOAD=$lib "$prog" idle 2500 12 700 >"$tmp/out" 2>&1
    st=$?
    dumps "$tmp/out" >"$tmp/dumps"
    [ $st = 0 ] && ! grep -q MISMATCH "$tmp/dumps" && [ "$(awk '{ print $3 }' "$tmp/dumps" | tr '\n' ' ')" = "signal time_interval exit " ]
    r=$?; cat "$tmp/dumps" >>"$tmp/out"
    result $r "profile: HAKMEM_PROFILE_TIME_INTERVAL=1 counts from the last dump: asleep 2.5 s, HAKMEM_PROFILE_SIGNAL at 0.7 s: $(awk '{ printf "%s%s", (NR > 1 ? ", " : ""), $3 }' "$tmp/dumps")" "$tmp/out"
    HAKMEM_PROFILE=$tmp/g HAKMEM_PROFILE_SIGNAL=12 HAKMEM_PROFILE_RATE=16384 LD_PRELOAD=$lib "$prog" signal 12 3 "$tmp/g" >"$tmp/out" 2>&1
    st=$?
    dumps "$tmp/out" >"$tmp/dumps"
    n=$(ls "$tmp"/g.*.heap 2>/dev/null | wc -l)
    [ $st = 0 ] && [ "$n" = 4 ] && ! grep -q MISMATCH "$tmp/dumps" &&
      awk '{ want = (NR < 4 ? NR : 3) * 8; d = $2 - want; if (d < 0) d = -d
             if (d > 0.5 || $3 != (NR < 4 ? "signal" : "exit")) bad = 1 } END { exit bad || NR != 4 }' "$tmp/dumps"
    r=$?; cat "$tmp/dumps" >>"$tmp/out"
    result $r "profile: HAKMEM_PROFILE_SIGNAL=12 (SIGUSR2) three times, the program idle after each: one dump per signal, at 8, 16, 24 MiB in use (within 0.5), then the exit's: $(head -n 1 "$tmp/out")" "$tmp/out"
  else
    skip "profile: the time interval and the signal while the program sleeps" "variant $v has no scavenger (HAK_CONFIG_DYNAMIC_FLUSH 0): their dumps wait for the next sample"
  fi
  # Bad values: one line saying what is accepted, the default (0) taken.
  for bad in HAKMEM_PROFILE_INUSE_INTERVAL=16777215 HAKMEM_PROFILE_INUSE_INTERVAL=-1 HAKMEM_PROFILE_TIME_INTERVAL=0.5 \
             HAKMEM_PROFILE_TIME_INTERVAL=-1 HAKMEM_PROFILE_SIGNAL=2 HAKMEM_PROFILE_SIGNAL=9 HAKMEM_PROFILE_SIGNAL=15; do
    name=$(echo "${bad%%=*}" | sed 's/^HAKMEM_//' | tr 'A-Z' 'a-z')
    env "$bad" HAKMEM_VERBOSE=1 LD_PRELOAD=$lib "$prog" api >/dev/null 2>"$tmp/err"
    st=$?
    [ $st = 0 ] && [ "$(grep -c "^hakmem: ${bad%%=*}='${bad#*=}' is not " "$tmp/err")" = 1 ] &&
      [ "$(grep -c '^hakmem: ' "$tmp/err")" = 1 ] && grep -Eq "^$name +0 " "$tmp/err"
    result $? "profile: $bad refused in one line, 0 taken: $(grep -m1 "^hakmem: ${bad%%=*}" "$tmp/err")" "$tmp/err"
  done
  HAKMEM_STATS_SIGNAL=10 HAKMEM_PROFILE_SIGNAL=10 LD_PRELOAD=$lib "$prog" api >/dev/null 2>"$tmp/err"
  st=$?
  [ $st = 0 ] && [ "$(grep -c '^hakmem: ' "$tmp/err")" = 1 ] &&
    grep -q "^hakmem: HAKMEM_PROFILE_SIGNAL=10 is HAKMEM_STATS_SIGNAL's signal too: one signal cannot ask for both; no profile signal\$" "$tmp/err"
  result $? "profile: HAKMEM_PROFILE_SIGNAL the same as HAKMEM_STATS_SIGNAL: refused: $(head -n 1 "$tmp/err")" "$tmp/err"
  # The program's own handler for the signal, installed before hakmem's, still runs (libhakmem.a).
  if [ -x $B/tests/options-static ]; then
    timeout 60 env HAKMEM_PROFILE=$tmp/c HAKMEM_PROFILE_SIGNAL=10 $B/tests/options-static profile-chain "$tmp/c" >"$tmp/out" 2>&1
    result $? "profile: a program's SIGUSR1 handler installed before hakmem's is chained: $(grep -m1 -v '^hakmem: profile: ' "$tmp/out")" "$tmp/out"
  else
    skip "profile: the program's handler chained to the profile signal's" "$B/tests/options-static is not built (make test-bins)"
  fi

  # fork: the child numbers its own files, with its pid.
  out=$(LD_PRELOAD=$lib "$prog" fork "$tmp/f" 2>"$tmp/err")
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
  result $? "profile: hak_profile_dump(NULL) never overwrites a file: $(grep -m1 -v '^hakmem: profile: ' "$tmp/out")" "$tmp/out"

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
  result $? "profile: a timer signal every 50 us whose handler allocates and frees, 36 MB allocated: no deadlock, no corruption (exit $st; $(grep -m1 -v '^hakmem: profile: ' "$tmp/out"))" "$tmp/out"
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
