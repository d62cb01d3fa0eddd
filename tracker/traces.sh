#!/usr/bin/env bash
# tracker/traces.sh - the real programs whose allocations `make traces`
# records, and the fidelity check of their replays.
#
#   tracker/traces.sh record DIR           record each program into DIR/<name>/
#                                          (trace files, trace.json, trace.html) and
#                                          compile DIR/<name>.replay
#   tracker/traces.sh fidelity DIR [REPS]  peak RSS (KiB, median of REPS, default 3) of
#                                          each real program and of its replay under
#                                          glibc, jemalloc, mimalloc, tcmalloc and
#                                          hakmem (build/$VARIANT, default hybrid):
#                                          DIR/fidelity.md and DIR/fidelity.json
#
# The programs (each deterministic, about a second on 2 cores):
#   python  /usr/bin/python3 running tracker/programs/json_regex.py (JSON and regex)
#   sqlite  sqlite3 building an indexed in-memory table and querying it
#           (tracker/programs/sqlite.sql)
#   gcc     gcc -O2 compiling workloads/json.c (the trace holds gcc, cc1 and as;
#           compile replays the process with the most calls, cc1)
#   redis   redis-server on 127.0.0.1 (a free port) under redis-benchmark
#           (20000 requests of 7 commands, 10 clients), stopped with SHUTDOWN NOSAVE
#   git     git log -p --stat on a generated repository (60 commits, 30 files)
# Peak RSS of the real program is GNU time's %M (for gcc the largest process,
# cc1). glibc is libc.so.6 preloaded (redis-server links jemalloc; the preload
# puts glibc's malloc in front of it).
set -u
cd "$(dirname "$0")/.."
mode=${1:-}
OUT=${2:-results/traces}
REPS=${3:-3}
T=$PWD/build/hakmem-trace
REPLAY=$PWD/build/workloads/replay
VARIANT=${VARIANT:-hybrid}
PROGRAMS="python sqlite gcc redis git"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
unset LD_PRELOAD

die() { echo "traces: $*" >&2; exit 1; }
[ "$mode" = record ] || [ "$mode" = fidelity ] || die "usage: tracker/traces.sh record|fidelity DIR [REPS]"
for b in "$T" "$REPLAY" /usr/bin/python3 /usr/bin/sqlite3 /usr/bin/gcc /usr/bin/git /usr/bin/redis-server \
         /usr/bin/redis-benchmark /usr/bin/redis-cli /usr/bin/time; do
    [ -x "$b" ] || die "$b is missing (make traces installs and builds what it needs)"
done

# ---- the programs: each runs "$@" program args (the wrapper in front) ---------

prog_python() { "$@" /usr/bin/python3 "$PWD/tracker/programs/json_regex.py" >/dev/null; }
prog_sqlite() { "$@" /usr/bin/sqlite3 :memory: <"$PWD/tracker/programs/sqlite.sql" >/dev/null; }
prog_gcc()    { "$@" /usr/bin/gcc -O2 -D_GNU_SOURCE -I"$PWD/workloads" -c "$PWD/workloads/json.c" -o "$WORK/json.o"; }
prog_git()    { "$@" /usr/bin/git -C "$WORK/repo" --no-pager log -p --stat >/dev/null; }

prog_redis() {
    local port pid k
    port=$((20000 + RANDOM % 20000))
    while redis-cli -h 127.0.0.1 -p $port ping >/dev/null 2>&1; do port=$((port + 1)); done
    "$@" /usr/bin/redis-server --port $port --bind 127.0.0.1 --save "" --appendonly no \
        --daemonize no --protected-mode yes >"$WORK/redis.log" 2>&1 &
    pid=$!
    for k in $(seq 100); do
        [ "$(redis-cli -h 127.0.0.1 -p $port ping 2>/dev/null)" = PONG ] && break
        sleep 0.1
    done
    timeout 120 redis-benchmark -h 127.0.0.1 -p $port -n 20000 -c 10 -d 200 -q \
        -t set,get,lpush,lpop,sadd,hset,mset >/dev/null 2>&1
    redis-cli -h 127.0.0.1 -p $port shutdown nosave >/dev/null 2>&1
    wait $pid
}

make_repo() { # a small repository with a history, always the same
    local r=$WORK/repo c f
    [ -d "$r/.git" ] && return
    mkdir -p "$r"
    git -C "$r" init -q
    export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid GIT_COMMITTER_NAME=t \
        GIT_COMMITTER_EMAIL=t@example.invalid
    for c in $(seq 60); do
        for f in $(seq 0 9); do
            f=$(( (c * 7 + f * 3) % 30 ))
            seq $((c * f)) $((c * f + 40 + c % 17)) | sed "s/^/line $c file $f: /" >"$r/file$f.txt"
        done
        GIT_AUTHOR_DATE="2024-01-01T00:00:$((c % 60))" GIT_COMMITTER_DATE="2024-01-01T00:00:$((c % 60))" \
            git -C "$r" add -A >/dev/null && \
        GIT_AUTHOR_DATE="2024-01-01T00:00:$((c % 60))" GIT_COMMITTER_DATE="2024-01-01T00:00:$((c % 60))" \
            git -C "$r" commit -qm "commit $c"
    done
}

mkdir -p "$OUT"
make_repo

# ---- record ----------------------------------------------------------------------

if [ "$mode" = record ]; then
    printf '%-8s %9s %10s %12s  %s\n' program processes records "peak live" replay
    for p in $PROGRAMS; do
        rm -rf "${OUT:?}/$p" "$OUT/$p.replay"
        start=$(date +%s.%N)
        prog_$p "$T" record --quiet --out "$OUT/$p" -- || die "$p: the program failed under the tracker"
        secs=$(echo "$(date +%s.%N) - $start" | bc)
        "$T" report "$OUT/$p" >"$OUT/$p.report.txt" 2>&1 || die "$p: report failed ($(tail -n 2 "$OUT/$p.report.txt"))"
        "$T" compile -o "$OUT/$p.replay" "$OUT/$p" >"$OUT/$p.compile.txt" 2>&1 ||
            die "$p: compile failed ($(cat "$OUT/$p.compile.txt"))"
        /usr/bin/python3 - "$OUT/$p/trace.json" "$OUT/$p.compile.txt" "$p" "$secs" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
m = j["instances"][j["main"]]
print("%-8s %9d %10d %12d  %s (%.1f s recorded)" % (sys.argv[3], len(j["instances"]), j["records"],
      m["peak_live_bytes"], open(sys.argv[2]).read().split(":")[0], float(sys.argv[4])))
EOF
    done
    echo "traces: reports in $OUT/<program>/trace.html; replay with: make bench-traces"
    exit 0
fi

# ---- fidelity ----------------------------------------------------------------------

declare -A LIB=(
    [glibc]=/lib/x86_64-linux-gnu/libc.so.6
    [jemalloc]=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
    [mimalloc]=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2
    [tcmalloc]=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
    [hakmem]=$PWD/build/$VARIANT/libhakmem.so
)
ALLOCS="glibc jemalloc mimalloc tcmalloc hakmem"
rows=$WORK/rows
: >"$rows"
for p in $PROGRAMS; do
    [ -f "$OUT/$p.replay" ] || die "$OUT/$p.replay is missing (tracker/traces.sh record $OUT first)"
    for rep in $(seq "$REPS"); do
        for a in $ALLOCS; do
            lib=${LIB[$a]}
            [ -f "$lib" ] || continue
            prog_$p /usr/bin/time -f %M -o "$WORK/real.kib" env LD_PRELOAD="$lib" ||
                echo "traces: $p under $a failed" >&2
            rlib=$lib
            [ $a = glibc ] && rlib=
            LD_PRELOAD=$rlib /usr/bin/time -f %M -o "$WORK/replay.kib" "$REPLAY" --trace "$OUT/$p.replay" \
                --verify touch >"$WORK/replay.out" 2>"$WORK/replay.err" ||
                { echo "traces: replay of $p under $a failed: $(head -c 200 "$WORK/replay.err")" >&2;
                  echo 0 >"$WORK/replay.kib"; }
            echo "$p $a $rep $(tail -n 1 "$WORK/real.kib") $(tail -n 1 "$WORK/replay.kib")" >>"$rows"
        done
    done
done
/usr/bin/python3 - "$rows" "$OUT" <<'EOF'
import json, statistics, sys
rows, out = sys.argv[1], sys.argv[2]
data = {}
for line in open(rows):
    p, a, rep, real, rp = line.split()
    data.setdefault(p, {}).setdefault(a, ([], []))
    data[p][a][0].append(int(real))
    data[p][a][1].append(int(rp))
res, md = {}, ["# Fidelity: peak RSS of each real program vs its replay", "",
               "Median peak RSS (KiB, GNU time %M) per allocator; ranks 1 = smallest.", ""]
agree_all = 0
for p, per in data.items():
    real = {a: statistics.median(v[0]) for a, v in per.items()}
    rep = {a: statistics.median(v[1]) for a, v in per.items() if min(v[1]) > 0}
    rk = lambda d: [a for a, _ in sorted(d.items(), key=lambda kv: kv[1])]
    r1, r2 = rk(real), rk(rep)
    common = [a for a in r1 if a in rep]
    pairs = [(x, y) for i, x in enumerate(common) for y in common[i + 1:]]
    concordant = sum(1 for x, y in pairs if (real[x] - real[y]) * (rep[x] - rep[y]) > 0)
    res[p] = {"real_kib": real, "replay_kib": rep, "real_rank": r1, "replay_rank": r2,
              "concordant_pairs": concordant, "pairs": len(pairs)}
    md.append("## %s" % p)
    md.append("")
    md.append("| allocator | real program | replay |")
    md.append("|---|---:|---:|")
    for a in r1:
        md.append("| %s | %d | %s |" % (a, real[a], ("%d" % rep[a]) if a in rep else "failed"))
    md.append("")
    md.append("- real program: %s" % " < ".join(r1))
    md.append("- replay:       %s" % " < ".join(r2))
    md.append("- pairs ordered alike: %d of %d" % (concordant, len(pairs)))
    md.append("")
json.dump(res, open(out + "/fidelity.json", "w"), indent=1)
open(out + "/fidelity.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
EOF
