#!/usr/bin/env bash
# tracker/cost.sh - what recording costs: larson, json and mir (standard-suite
# arguments) with no tracker, under the tracker in each mode, and under
# Debian's heaptrack, the same run. A benchmark, not a test.
#
#   tracker/cost.sh [REPS]      (default 3; modes interleaved within each repetition)
#
# Modes: none; full (--preset replay: every call, no stacks); sampled (every
# block >= 64 KiB and 1 in 128 below, no stacks); overview (sampled with
# stacks); leaks (every call, stacks on allocations); heaptrack (every call,
# stacks, its default interpreting output). The figure is the workload's own
# ns per op (seconds of the timed part / calls: larson runs for a fixed time,
# json and mir do fixed work), as a median, and its ratio to no tracker;
# also the median wall time of the whole process (the tracker's final
# writes, heaptrack's interpreter) and peak RSS. Output: a Markdown table.
set -u
cd "$(dirname "$0")/.."
REPS=${1:-3}
T=$PWD/build/hakmem-trace
W=$PWD/build/workloads
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
unset LD_PRELOAD
for b in "$T" "$W/larson" "$W/json" "$W/mir" /usr/bin/heaptrack /usr/bin/time; do
    [ -x "$b" ] || { echo "cost: $b is missing (make tracker workloads; make deps-traces)" >&2; exit 1; }
done

# standard-suite arguments (harness/suites/standard.suite)
declare -A ARGS=(
    [larson]="2 8 1000 5000 100 4141 2 --verify touch"
    [json]="--docs 2000 --doc-bytes 24k --keep 16 --verify touch"
    [mir]="--functions 20000 --passes 3 --keep 8 --verify touch"
)
MODES="none full sampled overview leaks heaptrack"
wrapper() { # mode dir
    case $1 in
    none) ;;
    full) echo "$T record --quiet --out $2 --preset replay --" ;;
    sampled) echo "$T record --quiet --out $2 --preset overview --no-stacks --" ;;
    overview) echo "$T record --quiet --out $2 --preset overview --" ;;
    leaks) echo "$T record --quiet --out $2 --preset leaks --" ;;
    heaptrack) echo "/usr/bin/heaptrack -o $2/heaptrack" ;;
    esac
}
rows=$TMP/rows
: >"$rows"
for rep in $(seq "$REPS"); do
    for w in larson json mir; do
        for m in $MODES; do
            d=$TMP/run
            rm -rf "$d"
            mkdir -p "$d"
            # shellcheck disable=SC2046
            (cd "$d" && /usr/bin/time -f "%e %M" -o "$TMP/time" $(wrapper $m "$d/trace") "$W/$w" ${ARGS[$w]} \
                >"$TMP/out" 2>"$TMP/err") || { echo "cost: $w under $m failed: $(tail -n 3 "$TMP/err")" >&2; continue; }
            bytes=$(du -sb "$d" | cut -f1)
            line=$(grep '^{' "$TMP/out" | tail -n 1)
            echo "$w $m $rep $(tail -n 1 "$TMP/time") $bytes $line" >>"$rows"
            rm -rf "$d"
        done
    done
done
/usr/bin/python3 - "$rows" <<'EOF'
import json, statistics, sys
data = {}
for line in open(sys.argv[1]):
    w, m, rep, wall, rss, size, js = line.split(" ", 6)
    j = json.loads(js)
    ns = j["seconds"] * 1e9 / j["ops"]
    data.setdefault(w, {}).setdefault(m, []).append((ns, float(wall), int(rss), int(size)))
print("| workload | mode | ns/op (median) | vs none | wall s | peak RSS MiB | output MiB |")
print("|---|---|---:|---:|---:|---:|---:|")
for w, per in data.items():
    base = statistics.median(x[0] for x in per["none"])
    for m, xs in per.items():
        ns = statistics.median(x[0] for x in xs)
        print("| %s | %s | %.1f | %.2fx | %.2f | %.1f | %.1f |" % (
            w, m, ns, ns / base, statistics.median(x[1] for x in xs),
            statistics.median(x[2] for x in xs) / 1024, statistics.median(x[3] for x in xs) / 1048576))
EOF
