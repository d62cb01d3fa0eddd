#!/usr/bin/env bash
# soak.sh [--runs N] [--busy] BUILD... — the tests that involve signals, fork,
# threads and the scavenger's timing, N times each (default 100), for each
# build (a directory name under build/: hybrid, hybrid-check, ...); with
# --busy, beside two busy loops (one per core of a 2-core machine). `make soak`
# runs it; not part of `make test`.
#
# Every failure is printed with its run number, exit status and the end of
# its output: a failure seen once is a bug to find, not a retry. One line per
# test and build: "N of N runs passed", then a count (tests/lib.sh); exit 1
# if any run failed.
set -u
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.." || exit 2
B=build
runs=100 busy=0
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --busy) busy=1; shift ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || set -- hybrid hybrid-check
tmp=$(mktemp -d)
loops=()
cleanup() {
  for p in "${loops[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
if [ $busy = 1 ]; then
  for i in 1 2; do (while :; do :; done) & loops+=($!); done
  echo "soak: beside two busy loops (pids ${loops[*]})"
fi

# soak NAME BUILD COMMAND...: the command N times; an argument @RUN@ becomes the run number.
soak() {
  local name=$1 v=$2; shift 2
  local ok=0 bad=0 t0=$SECONDS
  for ((r = 1; r <= runs; r++)); do
    rm -rf "$tmp/run" && mkdir -p "$tmp/run"
    local args=("${@//@RUN@/$r}")
    timeout -k 5 120 "${args[@]}" >"$tmp/out" 2>&1
    local st=$?
    if [ $st = 0 ]; then
      ok=$((ok + 1))
    else
      bad=$((bad + 1))
      echo "    $v/$name: run $r failed (exit $st$({ [ $st = 124 ] || [ $st = 137 ]; } && echo ': a hang'))"
      sed 's/^/      /' "$tmp/out" | tail -n 8
    fi
  done
  if [ $bad = 0 ]; then pass "soak: $v/$name: $ok of $runs runs passed ($((SECONDS - t0)) s)"
  else fail "soak: $v/$name: $ok of $runs runs passed, $bad failed ($((SECONDS - t0)) s)"; fi
}

for v in "$@"; do
  lib=$B/$v/libhakmem.so
  [ -f "$lib" ] || { fail "soak: $lib is not built"; continue; }
  soak signals-plain "$v" env LD_PRELOAD="$lib" "$B/tests/signals" --seconds 1 --interval 50 --seed @RUN@
  soak signals-profile "$v" env HAKMEM_PROFILE="$tmp/run/p" HAKMEM_PROFILE_RATE=4096 LD_PRELOAD="$lib" \
    "$B/tests/signals" --seconds 1 --interval 300 --seed @RUN@
  soak signals-leakcheck "$v" env HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_SUPPRESS=tests/leakcheck.supp LD_PRELOAD="$lib" \
    "$B/tests/signals" --seconds 1 --interval 300 --seed @RUN@
  soak profile-signals "$v" env HAKMEM_PROFILE="$tmp/run/s" HAKMEM_PROFILE_RATE=4096 LD_PRELOAD="$lib" \
    "$B/tests/profile" signals 1
  soak fork "$v" env LD_PRELOAD="$lib" "$B/tests/fork" --forks 40
  soak fork-leakcheck "$v" env HAKMEM_LEAKCHECK=1 HAKMEM_LEAKCHECK_EXITCODE=0 LD_PRELOAD="$lib" "$B/tests/fork" --forks 10
  soak threads "$v" env LD_PRELOAD="$lib" "$B/tests/threads"
  soak stress "$v" env LD_PRELOAD="$lib" "$B/tests/stress" --threads=4 --workers=16 --ops=5000 --validate
  case $v in
    *-check) ;;
    *) # the statistics' tests lean on the scavenger's timing (idle release, drain requests)
      soak stats "$v" env LD_PRELOAD="$lib" "$B/tests/stats"
      soak stats-reset "$v" env LD_PRELOAD="$lib" "$B/tests/stress" --threads=4 --workers=8 --ops=5000 --stats --validate ;;
  esac
done
finish soak
