#!/usr/bin/env bash
# tests/workloads.sh - short runs of every workload under the system malloc.
#
# For each workload: a short run must exit 0 and end with one JSON line that
# has every required key, names the workload, reports malloc_from, and has
# the checksum recorded below for its fixed seed (checksums depend only on
# seed and parameters, never on the allocator, timing, --verify or --floor);
# each case runs three times: --verify full, the default (--verify touch)
# and --floor --verify full, with the same checksum. --help must list every
# parameter; bad arguments must exit 2 with one line on stderr. Under a
# deliberately broken allocator (build/tests/libbroken_malloc.so: every
# 200th malloc hands out a live block again) a workload must exit 3 with
# "corrupted block" in both verify modes, and with --floor it must not
# notice (its timed work makes no malloc call).
#
# Output: one line per check, "PASS workloads/<name>: <what>" or
# "FAIL workloads/<name>: <what>", then "workloads: N passed, M failed, K
# skipped" (tests/lib.sh).
# Exit 1 if any check failed. Runs in a few seconds on 2 cores.
#
#   tests/workloads.sh              binaries from build/workloads
#   WL_BIN=dir tests/workloads.sh   binaries from dir
#   WL_PRINT=1 tests/workloads.sh   also print each run's checksum (to
#                                   record new constants after a change)
#   WL_BROKEN=lib tests/workloads.sh  the broken allocator to detect
set -u
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
BIN=${WL_BIN:-build/workloads}
BROKEN=${WL_BROKEN:-build/tests/libbroken_malloc.so}
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
unset LD_PRELOAD

ok()  { pass "workloads/$1: $2"; } # ok|bad <workload> <what>
bad() { fail "workloads/$1: $2"; }

# Validate the last stdout line of a run; prints "ok <checksum>" or a reason.
check_json() { # name file
    "$PY" - "$1" "$2" <<'EOF'
import json, sys
name, path = sys.argv[1], sys.argv[2]
lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
if not lines:
    print("no output"); sys.exit()
try:
    j = json.loads(lines[-1])
except ValueError as e:
    print("last line is not JSON (%s)" % e); sys.exit()
need = {"workload": str, "params": dict, "seed": int, "threads": int, "ops": int,
        "op_unit": str, "seconds": (int, float), "ns_per_op": (int, float),
        "ops_per_sec": (int, float), "peak_live_bytes": int,
        "final_live_bytes": int, "checksum": str, "malloc_from": str,
        "verify": str, "floor": bool}
for k, t in need.items():
    if k not in j:
        print("missing key %s" % k); sys.exit()
    if not isinstance(j[k], t) or (isinstance(j[k], bool) and t is not bool):
        print("key %s has type %s" % (k, type(j[k]).__name__)); sys.exit()
if j["verify"] not in ("touch", "full"):
    print("verify is %r" % j["verify"]); sys.exit()
if j["params"].get("verify") != j["verify"] or j["params"].get("floor") is not j["floor"]:
    print("params verify/floor differ from the top-level keys"); sys.exit()
if j["workload"] != name:
    print("workload is %r" % j["workload"]); sys.exit()
if j["ops"] <= 0 or j["threads"] <= 0 or j["seconds"] < 0:
    print("ops/threads/seconds out of range"); sys.exit()
if j["ns_per_op"] > 0 and abs(j["ns_per_op"] * j["ops"] / 1e9 - j["seconds"]) > 1e-3 * max(j["seconds"], 1e-3):
    print("ns_per_op does not match seconds/ops"); sys.exit()
if j["peak_live_bytes"] < j["final_live_bytes"] or j["final_live_bytes"] < 0:
    print("live bytes inconsistent"); sys.exit()
if "libc" not in j["malloc_from"]:
    print("malloc_from is %r, expected glibc" % j["malloc_from"]); sys.exit()
if len(j["checksum"]) != 16 or any(c not in "0123456789abcdef" for c in j["checksum"]):
    print("checksum %r is not 16 hex digits" % j["checksum"]); sys.exit()
print("ok", j["checksum"], j["verify"], "floor" if j["floor"] else "malloc")
EOF
}

# A short run: exit 0, valid JSON line, known checksum.
run() { # name want_checksum label args...
    local name=$1 want=$2 label=$3
    shift 3
    local out=$TMP/out err=$TMP/err rc res
    timeout 60 "$BIN/$name" "$@" >"$out" 2>"$err"
    rc=$?
    if [ $rc -ne 0 ]; then
        bad "$name" "$label: exit code $rc ($(head -c 200 "$err"))"
        return
    fi
    res=$(check_json "$name" "$out")
    case $res in
    ok\ *)
        ok "$name" "$label: JSON line has the required keys"
        local sum got want_mode
        read -r _ sum got <<<"$res"
        case " $* " in
        *" --floor "*) want_mode="full floor" ;;
        *" --verify full "*) want_mode="full malloc" ;;
        *) want_mode="touch malloc" ;;
        esac
        if [ "$got" = "$want_mode" ]; then
            ok "$name" "$label: reports verify and floor as asked ($got)"
        else
            bad "$name" "$label: reports '$got', expected '$want_mode'"
        fi
        [ -n "${WL_PRINT:-}" ] && echo "     $name $label checksum $sum"
        if [ "$sum" = "$want" ]; then
            ok "$name" "$label: checksum $sum"
        else
            bad "$name" "$label: checksum $sum, expected $want"
        fi
        ;;
    *) bad "$name" "$label: $res" ;;
    esac
    cp "$out" "$TMP/last"
}

# The same case three ways, one checksum: --verify full, the default
# (touch) and --floor (with --verify full, so a floor that handed a place
# out twice would be caught).
run_modes() { # name want_checksum label args...
    local name=$1 want=$2 label=$3
    shift 3
    run "$name" "$want" "$label, --verify full" "$@" --verify full
    run "$name" "$want" "$label, default verify (touch)" "$@"
    run "$name" "$want" "$label, --floor" "$@" --floor --verify full
}

# Under the broken allocator: exit 3 with a corrupted-block message in both
# verify modes; with --floor the timed work calls no malloc, so the run
# succeeds with the usual checksum.
detects_broken() { # name want_checksum args...
    local name=$1 want=$2 out=$TMP/out err=$TMP/err rc v
    shift 2
    if [ ! -f "$BROKEN" ]; then
        bad "$name" "no broken allocator at $BROKEN (make test-workloads builds it)"
        return
    fi
    for v in touch full; do
        LD_PRELOAD=$BROKEN timeout 60 "$BIN/$name" "$@" --verify $v >"$out" 2>"$err"
        rc=$?
        if [ $rc -eq 3 ] && grep -q "^$name: corrupted block" "$err"; then
            ok "$name" "detects a block handed out twice (--verify $v): $(head -n 1 "$err" | head -c 100)"
        else
            bad "$name" "does not detect a block handed out twice (--verify $v): exit $rc $(head -n 1 "$err" | head -c 200)"
        fi
    done
    LD_PRELOAD=$BROKEN timeout 60 "$BIN/$name" "$@" --floor >"$out" 2>"$err"
    rc=$?
    if [ $rc -eq 0 ] && grep -q "\"checksum\":\"$want\"" "$out" && grep -q '"floor":true' "$out"; then
        ok "$name" "--floor: no malloc in the timed work (the broken allocator goes unnoticed)"
    else
        bad "$name" "--floor under the broken allocator: exit $rc $(head -c 200 "$err")"
    fi
}

# Bad input: exit 2, exactly one line on stderr naming the workload, no JSON.
reject() { # name label args...
    local name=$1 label=$2
    shift 2
    local out=$TMP/out err=$TMP/err rc
    timeout 20 "$BIN/$name" "$@" >"$out" 2>"$err"
    rc=$?
    if [ $rc -ge 128 ] || [ $rc -eq 124 ]; then
        bad "$name" "rejects $label: crashed or hung (exit $rc)"
    elif [ $rc -ne 2 ]; then
        bad "$name" "rejects $label: exit code $rc, expected 2"
    elif [ "$(wc -l <"$err")" -ne 1 ] || ! grep -q "^$name: " "$err"; then
        bad "$name" "rejects $label: stderr is not one '$name: ...' line"
    elif grep -q '^{' "$out"; then
        bad "$name" "rejects $label: printed a JSON report"
    else
        ok "$name" "rejects $label ($(cat "$err"))"
    fi
}

# --help exits 0 and names every parameter of the JSON params object.
help_lists_params() { # name args-for-a-run... (uses $TMP/last from the run)
    local name=$1 h=$TMP/help missing
    if ! timeout 10 "$BIN/$name" --help >"$h" 2>&1; then
        bad "$name" "--help exits 0"
        return
    fi
    missing=$("$PY" -c '
import json, sys
j = json.loads(open(sys.argv[1]).read().splitlines()[-1])
h = open(sys.argv[2]).read()
print(" ".join(k for k in j["params"] if "--" + k not in h))' "$TMP/last" "$h" 2>&1)
    if [ -z "$missing" ] && grep -q default "$h"; then
        ok "$name" "--help lists every parameter with its default"
    else
        bad "$name" "--help does not list: $missing"
    fi
}

common_rejects() { # name
    reject "$1" "an unknown flag" --no-such-flag
    reject "$1" "a non-number" --seed abc
    reject "$1" "a number with junk" --seed 12x
    reject "$1" "an unknown verify mode" --verify bogus
    reject "$1" "a value for --floor" --floor=2
}

if [ ! -d "$BIN" ]; then
    fail "workloads: no binaries in $BIN (run make workloads)"
    finish workloads
fi

# ---- larson ----
run_modes larson bccbe8b8b7b28ddd "generation mode" --generations 3 --chunks-per-thread 500 --rounds 4 --threads 2 --seed 7
help_lists_params larson
run_modes larson d6b911e38d0a604a "time mode, positional args" 0.2 8 1000 2000 10 4141 2
if grep -Eq '^Throughput = [0-9]+ operations per second, relative time: [0-9.]+s\.$' "$TMP/last"; then
    ok larson "prints the classic Throughput line"
else
    bad larson "prints the classic Throughput line"
fi
common_rejects larson
reject larson "min >= max" --min-size 100 --max-size 10
reject larson "zero threads" --threads 0
reject larson "zero threads (positional)" 1 8 1000 5000 100 4141 0
reject larson "too few positional args" 5 8 1000
detects_broken larson bccbe8b8b7b28ddd --generations 3 --chunks-per-thread 500 --rounds 4 --threads 2 --seed 7

# ---- json ----
run_modes json 32fbb26cdf6af5c0 "documents" --docs 40 --doc-bytes 8k --keep 4
help_lists_params json
run_modes json 97d71bc52ddc9a07 "--classic" --classic --classic-iters 50
common_rejects json
reject json "zero documents" --docs 0
reject json "a value for a flag" --classic=yes

# ---- mir ----
run_modes mir 184923e1b99d26bc "functions" --functions 300 --passes 4
help_lists_params mir
run_modes mir d98810386b95e7fe "--classic" --classic --classic-iters 10
common_rejects mir
reject mir "zero functions" --functions 0
reject mir "zero blocks" --blocks 0

# ---- tiny ----
run_modes tiny 6ba096b88f79b851 "pairs" --pairs 200k
help_lists_params tiny
common_rejects tiny
reject tiny "min > max" --min-size 200 --max-size 100
detects_broken tiny 6ba096b88f79b851 --pairs 200k

# ---- tiny_mt ----
run_modes tiny_mt 107ef4e82ef3729c "2 threads" --threads 2 --pairs 100k
help_lists_params tiny_mt
common_rejects tiny_mt
reject tiny_mt "min > max" --min-size 200 --max-size 100
reject tiny_mt "zero threads" --threads 0
detects_broken tiny_mt 107ef4e82ef3729c --threads 2 --pairs 100k

# ---- random_mixed ----
run_modes random_mixed 6319c8348f473fac "steps" --steps 200k --slots 1024
help_lists_params random_mixed
common_rejects random_mixed
reject random_mixed "min > max" --min-size 2000 --max-size 1000
detects_broken random_mixed 6319c8348f473fac --steps 200k --slots 1024

# ---- frag ----
run_modes frag 1045d98f44e3a04e "rounds" --blocks 5000 --rounds 3
help_lists_params frag
common_rejects frag
reject frag "min > max" --min-size 9000 --max-size 8192
detects_broken frag 1045d98f44e3a04e --blocks 5000 --rounds 3

# ---- xthread ----
run_modes xthread c393bd2ea3487c85 "2 producers, 1 consumer" --producers 2 --consumers 1 --blocks 20k
help_lists_params xthread
common_rejects xthread
reject xthread "min > max" --min-size 600 --max-size 512
reject xthread "zero producers" --producers 0
reject xthread "zero consumers" --consumers 0
reject xthread "a floor too large to set aside" --floor --batch 64k --queue 64k
detects_broken xthread c393bd2ea3487c85 --producers 2 --consumers 1 --blocks 20k

# ---- burst_idle ----
run_modes burst_idle 3c230eaac7324fd7 "burst" --bytes 4m --idle-seconds 0.1
if [ "$(grep -c '^@phase ' "$TMP/last")" -eq 5 ]; then
    ok burst_idle "prints the five @phase markers"
else
    bad burst_idle "prints the five @phase markers"
fi
help_lists_params burst_idle
common_rejects burst_idle
reject burst_idle "min > max" --min-size 300 --max-size 256
detects_broken burst_idle 3c230eaac7324fd7 --bytes 4m --idle-seconds 0.1

# ---- large ----
run_modes large e5f3b0ad90d876e4 "steps" --steps 100 --max-size 4m
help_lists_params large
common_rejects large
reject large "min > max" --min-size 64m --max-size 32m

# ---- batch_free ----
run_modes batch_free b6322f5f82e3bcc4 "2 producers, 2 consumers" --batches 20 --batch 256 --queue 8
help_lists_params batch_free
run_modes batch_free 676e47169f08e728 "mixed sizes, 1 producer, 3 consumers" --size 0 --batches 10 --batch 256 --queue 4 --producers 1 --consumers 3
if grep -Eq '^batch_free: [0-9]+ objects freed in [0-9.]+ s by 3 consumers: [0-9.]+ M frees per second$' "$TMP/last" &&
   grep -q '"frees_per_sec":' "$TMP/last"; then
    ok batch_free "prints frees per second (line and JSON key)"
else
    bad batch_free "prints frees per second (line and JSON key)"
fi
common_rejects batch_free
reject batch_free "zero producers" --producers 0
reject batch_free "zero consumers" --consumers 0
reject batch_free "an empty batch" --batch 0
reject batch_free "a zero-length stack" --queue 0
reject batch_free "a negative size" --size -1
reject batch_free "a floor too large to set aside" --floor --batch 1m --queue 1m
detects_broken batch_free b6322f5f82e3bcc4 --batches 20 --batch 256 --queue 8

# ---- queue_pass ----
run_modes queue_pass 5247be41aa804e90 "2 threads" --loops 300 --slots 200
help_lists_params queue_pass
run_modes queue_pass 9ba3a9ee9feef14a "3 threads, a parcel every loop, inboxes of 2" --threads 3 --loops 200 --cross-rate 1 --pending 2
run_modes queue_pass 1109c41fb5712558 "1 thread (no parcels)" --threads 1 --loops 300
common_rejects queue_pass
reject queue_pass "min > max" --min-size 20000 --max-size 16000
reject queue_pass "zero threads" --threads 0
reject queue_pass "zero slots" --slots 0
reject queue_pass "inboxes of 0 parcels" --pending 0
detects_broken queue_pass 5247be41aa804e90 --loops 300 --slots 200

# ---- large_reuse ----
run_modes large_reuse 37a5e7ae89837154 "steps" --steps 20 --slots 3 --max-size 4m
help_lists_params large_reuse
common_rejects large_reuse
reject large_reuse "min > max" --min-size 64m --max-size 32m
reject large_reuse "zero slots" --slots 0
reject large_reuse "a floor too large to set aside" --floor --slots 200 --max-size 32m
detects_broken large_reuse 1745e5e49097dc6e --min-size 64k --max-size 256k --steps 2000 --slots 4

# A number from the JSON line of the last run ($TMP/last).
json_key() { # key
    "$PY" -c 'import json, sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])[sys.argv[2]])' \
        "$TMP/last" "$1" 2>/dev/null
}

# ---- large_churn ----
run_modes large_churn d07104de0ff1bb86 "oldest freed" --live 4 --steps 30 --min-size 64k --max-size 1m
help_lists_params large_churn
run_modes large_churn 845d22d35d312d20 "--free-random" --live 4 --steps 30 --min-size 64k --max-size 1m --free-random
# A new block is allocated and written before an old one is freed: with one
# live block of 1 MiB, two are live at the peak of a step (free-then-
# allocate, as large_reuse does it, would peak at one).
run large_churn 556531bc5fed328f "one live block of 1 MiB" --live 1 --steps 5 --min-size 1m --max-size 1m
if [ "$(json_key peak_live_bytes)" = 2097152 ]; then
    ok large_churn "allocates the new block before it frees the old one (peak live 2 MiB with --live 1)"
else
    bad large_churn "peak live bytes with --live 1 of 1 MiB are $(json_key peak_live_bytes), expected 2097152"
fi
common_rejects large_churn
reject large_churn "min > max" --min-size 64m --max-size 32m
reject large_churn "zero live blocks" --live 0
reject large_churn "a value for --free-random" --free-random=yes
reject large_churn "a floor too large to set aside" --floor --live 200 --max-size 32m
detects_broken large_churn 4375fb48c1e2c195 --min-size 64k --max-size 256k --steps 2000 --live 4

# ---- random_xthread ----
run_modes random_xthread ff13b13a5ca14851 "2 threads" --steps 20k --slots 200
help_lists_params random_xthread
if [ "$(json_key callocs)" -gt 0 ] 2>/dev/null && [ "$(json_key sent)" -gt 0 ] 2>/dev/null; then
    ok random_xthread "calls calloc and sends blocks to the other thread ($(json_key callocs) callocs, $(json_key sent) sent)"
else
    bad random_xthread "callocs $(json_key callocs), sent $(json_key sent): expected both above 0"
fi
run_modes random_xthread 4618166cde98c507 "3 threads, inboxes of 4, most frees sent" \
    --threads 3 --steps 10k --slots 100 --pending 4 --remote-fraction 0.9 --calloc-fraction 0.5
run random_xthread 81c776e43479507e "no calloc, nothing sent" --steps 5k --slots 100 --remote-fraction 0 --calloc-fraction 0
if [ "$(json_key callocs)" = 0 ] && [ "$(json_key sent)" = 0 ]; then
    ok random_xthread "--calloc-fraction 0 and --remote-fraction 0: no calloc, nothing sent"
else
    bad random_xthread "with both fractions 0: callocs $(json_key callocs), sent $(json_key sent)"
fi
common_rejects random_xthread
reject random_xthread "min > max" --min-size 20000 --max-size 16000
reject random_xthread "one thread (nobody to send to)" --threads 1
reject random_xthread "a fraction above 1" --remote-fraction 1.5
reject random_xthread "a negative fraction" --calloc-fraction -0.1
reject random_xthread "an inbox of 0 blocks" --pending 0
detects_broken random_xthread ff13b13a5ca14851 --steps 20k --slots 200
# calloc's memory is checked: under a calloc that leaves blocks of 4 KiB and
# more dirty (a preload built here; smaller ones, the C library's own, it
# zeroes), exit 3 in both verify modes; without calloc calls, no error.
cat >"$TMP/dirty_calloc.c" <<'EOF'
#include <stdlib.h>
#include <string.h>
extern void *__libc_malloc(size_t);
void *calloc(size_t n, size_t size)
{
    void *p = __libc_malloc(n * size);
    if (p)
        memset(p, n * size >= 4096 ? 0xa5 : 0, n * size);
    return p;
}
EOF
if cc -shared -fPIC -O2 -o "$TMP/libdirty_calloc.so" "$TMP/dirty_calloc.c" 2>"$TMP/err"; then
    for v in touch full; do
        LD_PRELOAD=$TMP/libdirty_calloc.so timeout 60 "$BIN/random_xthread" --steps 2k --slots 100 --min-size 4k --verify $v \
            >"$TMP/out" 2>"$TMP/err"
        rc=$?
        if [ $rc -eq 3 ] && grep -q "^random_xthread: corrupted block (random_xthread calloc of [0-9]* bytes): its memory is not zero" "$TMP/err"; then
            ok random_xthread "detects a calloc whose memory is not zero (--verify $v)"
        else
            bad random_xthread "does not detect a calloc whose memory is not zero (--verify $v): exit $rc $(head -c 200 "$TMP/err")"
        fi
    done
    LD_PRELOAD=$TMP/libdirty_calloc.so timeout 60 "$BIN/random_xthread" --steps 2k --slots 100 --min-size 4k --calloc-fraction 0 \
        >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ $rc -eq 0 ]; then
        ok random_xthread "the same preload with --calloc-fraction 0 runs clean (the error was calloc's)"
    else
        bad random_xthread "the dirty calloc preload fails even without calloc calls: exit $rc $(head -c 200 "$TMP/err")"
    fi
else
    bad random_xthread "cannot build the dirty calloc preload: $(head -c 200 "$TMP/err")"
fi

finish workloads
