#!/usr/bin/env bash
# larson.sh — run the Larson & Krishnan server benchmark under several
# allocators with one of a few parameter profiles, and write a report.
#
#   ./larson.sh <profile> [allocator...]    run a profile (default: every available allocator)
#   ./larson.sh --list                      list the profiles
#
# Allocators are the names `build/harness/hakbench list --hakmem all` shows:
# glibc, jemalloc, mimalloc, tcmalloc, and hakmem-<variant> for every variant
# built in build/ (build one with `make VARIANT=<name>`). Environment:
# REPS (repetitions, default 5; quick: 3), OUT (result directory), FLOOR=0
# (no floor runs; by default each case also runs with --floor, so the report
# shows the throughput of larson's own work with no allocator in it).
# The runner interleaves the allocators within each repetition; the report
# (results/<run>/report.md and report.html) states the machine and the noise.
set -euo pipefail
cd "$(dirname "$0")"

cores=$(nproc)
profiles=(quick server tiny mid scaling)
describe() {
  case $1 in
    quick)   echo "quick    first look: server sizes (8-1000 B), 1 s, $cores threads, 3 repetitions" ;;
    server)  echo "server   mimalloc-bench's set: 5 s, 8-1000 B, 5000 chunks, 100 rounds, seed 4141, $cores threads" ;;
    tiny)    echo "tiny     small objects: 2 s, 8-128 B, 1024 chunks, 1 round, seed 12345, $cores threads" ;;
    mid)     echo "mid      medium objects: 2 s, 2-32 KiB, 10000 chunks, 1 round, seed 12345, $cores threads" ;;
    scaling) echo "scaling  server sizes, 2 s, threads $(scaling_threads | tr '\n' ' ' | sed 's/ $//') (up to 2 x $cores cores)" ;;
  esac
}
scaling_threads() {
  local t=1 max=$((2 * cores))
  while [ "$t" -lt "$max" ]; do echo "$t"; t=$((t * 2)); done
  echo "$max"
}
list() { for p in "${profiles[@]}"; do describe "$p"; done; }

if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
  echo; echo "profiles:"; list
  [ $# -lt 1 ] && exit 2 || exit 0
fi
if [ "$1" = --list ]; then list; exit 0; fi
profile=$1; shift
reps=${REPS:-5}
# suite lines: label workload args (positional larson arguments:
# seconds min-size max-size chunks-per-thread rounds seed threads)
case $profile in
  quick)   reps=${REPS:-3}; suite="larson-quick larson 1 8 1000 5000 100 4141 $cores" ;;
  server)  suite="larson-server larson 5 8 1000 5000 100 4141 $cores" ;;
  tiny)    suite="larson-tiny larson 2 8 128 1024 1 12345 $cores" ;;
  mid)     suite="larson-mid larson 2 2048 32768 10000 1 12345 $cores" ;;
  scaling) suite=$(for t in $(scaling_threads); do echo "larson-t$t larson 2 8 1000 5000 100 4141 $t"; done) ;;
  *) echo "larson.sh: unknown profile '$profile'; valid profiles:" >&2; list >&2; exit 2 ;;
esac
case $reps in ''|*[!0-9]*|0) echo "larson.sh: REPS must be a positive integer, got '$reps'" >&2; exit 2 ;; esac
case ${FLOOR:-1} in 0|no) floor_args=(--no-floor) ;; 1|yes) floor_args=() ;;
  *) echo "larson.sh: FLOOR must be 0 or 1, got '$FLOOR'" >&2; exit 2 ;; esac

make -s --no-print-directory harness build/workloads/larson
run=${OUT:-results/$(date +%Y%m%d-%H%M%S)-larson-$profile}
mkdir -p "$run"
printf '# larson.sh profile %s\n%s\n' "$profile" "$suite" > "$run/larson-$profile.suite"
alloc_args=()
if [ $# -gt 0 ]; then alloc_args=(--alloc "$(IFS=,; echo "$*")"); fi
build/harness/hakbench run --suite "$run/larson-$profile.suite" --hakmem all "${alloc_args[@]}" "${floor_args[@]}" \
  --reps "$reps" --timeout 60 --out "$run" --name "larson-$profile" >/dev/null ||
  { st=$?; [ -s "$run/raw.jsonl" ] || rm -rf "$run"; exit "$st"; }
/usr/bin/python3 scripts/report.py "$run"
echo "larson.sh: report in $run/report.md (self-contained: $run/report.html)"
