#!/usr/bin/env bash
# fuzz.sh [--ops N] [--seeds "S..."] BUILD... — runs build/tests/fuzz under
# LD_PRELOAD of each hakmem build (build/<BUILD>/libhakmem.so; "glibc": no
# preload) for each seed, one PASS/FAIL line per run (seconds, and peak RSS
# when /usr/bin/time is there), then checks that the fuzzer fails, with its
# one-line report, under tests/broken_malloc.c. A count at the end
# (tests/lib.sh); exit 1 if anything failed. Expects the binaries of tests/tests.mk (make fuzz builds
# them).
set -u
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.." || exit 2
B=build
ops=1000000 seeds="1 2 3 4"
while [ $# -gt 0 ]; do
  case $1 in
  --ops) ops=$2; shift 2 ;;
  --seeds) seeds=$2; shift 2 ;;
  *) break ;;
  esac
done
log=$(mktemp) tm=$(mktemp) tail=$(mktemp)
trap 'rm -f "$log" "$tm" "$tail"' EXIT
rss=()
[ -x /usr/bin/time ] && rss=(/usr/bin/time -f %M -o "$tm")
for b in "$@"; do
  if [ "$b" = glibc ]; then lib=""
  else
    lib=$B/$b/libhakmem.so
    if [ ! -f "$lib" ]; then fail "fuzz $b: $lib missing"; continue; fi
  fi
  for s in $seeds; do
    : >"$tm"
    t0=${EPOCHREALTIME/./}
    LD_PRELOAD=$lib timeout 900 ${rss[@]+"${rss[@]}"} $B/tests/fuzz --seed "$s" --ops "$ops" >"$log" 2>&1
    st=$?
    t=$((${EPOCHREALTIME/./} - t0))
    secs=$((t / 1000000)).$(printf '%02d' $((t / 10000 % 100)))
    kib=$(tail -n 1 "$tm") # /usr/bin/time's last line: peak RSS in KiB
    case "$kib" in *[!0-9]* | "") mib=? ;; *) mib=$((kib / 1024)) ;; esac
    line=$(printf '%-20s seed %-4s %9s ops %7s s  peak RSS %5s MiB' "$b" "$s" "$ops" "$secs" "$mib")
    if [ $st = 0 ]; then pass "fuzz $line"
    else # the fuzzer's failure line, or whatever the process said last
      grep -v '^fuzz: hakmem\|^fuzz: system' "$log" | tail -n 4 >"$tail"
      fail "fuzz $line (exit $st)" "$tail"
    fi
  done
done
# The fuzzer must catch an allocator that hands out a live block again.
s=${seeds%% *}
LD_PRELOAD=$B/tests/libbroken_malloc.so timeout 300 $B/tests/fuzz --seed "$s" --ops 100000 >"$log" 2>&1
st=$?
if [ $st = 1 ] && grep -q '^fuzz: FAIL ' "$log"; then
  pass "fuzz detects tests/broken_malloc.c (a live block handed out again): $(grep -m1 '^fuzz: FAIL ' "$log" | cut -c1-160)"
else
  TEST_DETAIL=5 fail "fuzz does not detect tests/broken_malloc.c (exit $st)" "$log"
fi
finish fuzz
