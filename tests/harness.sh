#!/usr/bin/env bash
# tests/harness.sh — tests of the benchmark runner (build/harness/hakbench),
# the report scripts and larson.sh, on a small matrix of fake parts:
#   build/harness/fakewl            a workload that follows the contract
#   build/harness/libcrashalloc.so  an allocator that aborts after N mallocs
#   build/harness/libnoalloc.so     a preload that replaces nothing
#   build/harness/libbadopts.so     an option table with an unreadable line
#   build/$HARNESS_VARIANT/libhakmem.so  a real hakmem variant (default hybrid),
#                                   for its option table
#   tests/harness/fixture-raw.jsonl a fixed raw file for the report
# Prints `PASS harness: <what>` / `FAIL harness: <what>` per check, `SKIP
# harness: <what>: <why>` for a check that could not run here (never counted
# as passed), and a final count (tests/lib.sh); exits 1 on any failure. `make test-harness`
# builds the parts and runs it. Takes about 15 s.
set -u
. "$(dirname "$0")/lib.sh"
unset CRASHALLOC_AFTER LD_PRELOAD
cd "$(dirname "$0")/.."

HB=build/harness/hakbench
PY=/usr/bin/python3
TEST_PREFIX="harness: "
variant=${HARNESS_VARIANT:-hybrid}
for f in $HB build/harness/fakewl build/harness/libcrashalloc.so build/harness/libnoalloc.so \
         build/harness/libbadopts.so "build/$variant/libhakmem.so"; do
  [ -e "$f" ] || { fail "$f is missing (make test-harness builds it)"; finish harness; }
done

tmp=$(mktemp -d /tmp/hakmem-harness.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/wl"
ln -s "$PWD/build/harness/fakewl" "$tmp/wl/fakewl"

cat > "$tmp/alloc.tsv" <<EOF
# test allocators
glibc	system	glibc malloc
crash	build/harness/libcrashalloc.so	aborts after CRASHALLOC_AFTER mallocs
noalloc	build/harness/libnoalloc.so	a preload that replaces nothing
absent	$tmp/no-such-lib.so	a library that does not exist
EOF
# many: 30000 mallocs (crash aborts after 20000); few: 1000 (crash survives);
# phases: @phase markers and an idle period; ghost: a workload binary that
# does not exist.
cat > "$tmp/small.suite" <<EOF
# label workload args
many    fakewl --ops 30000
few     fakewl --ops 1000 --phases --sleep-ms 150
ghost   nosuchworkload --x 1
EOF

# ---- bad arguments -----------------------------------------------------------
rejects() { # rejects <cmd...>: exit status 2 and a message on stderr
  local err=$tmp/err; "$@" >/dev/null 2>"$err"; local st=$?
  [ "$st" -eq 2 ] && [ -s "$err" ]
}
check "no arguments rejected" rejects $HB
check "unknown command rejected" rejects $HB frobnicate
check "run without --suite rejected" rejects $HB run --allocators "$tmp/alloc.tsv"
check "unknown option rejected" rejects $HB run --suite "$tmp/small.suite" --bogus
check "--reps 0 rejected" rejects $HB run --suite "$tmp/small.suite" --reps 0 --out "$tmp/x1"
check "non-numeric --timeout rejected" rejects $HB run --suite "$tmp/small.suite" --timeout soon --out "$tmp/x2"
check "missing suite file rejected" rejects $HB run --suite "$tmp/none.suite" --out "$tmp/x3"
check "unknown allocator name rejected" rejects $HB run --suite "$tmp/small.suite" --allocators "$tmp/alloc.tsv" --alloc glibc,nosuch --out "$tmp/x4"
printf 'onlylabel\n' > "$tmp/bad.suite"
check "malformed suite line rejected" rejects $HB run --suite "$tmp/bad.suite" --out "$tmp/x5"
check "larson.sh unknown profile rejected with the list" \
  bash -c "./larson.sh nosuchprofile 2>&1 >/dev/null | grep -q '^server'; [ \${PIPESTATUS[0]} -ne 0 ]"
check "larson.sh FLOOR other than 0 or 1 rejected" rejects env FLOOR=maybe ./larson.sh quick
check "larson.sh --list names every profile" \
  bash -c "out=\$(./larson.sh --list) && for p in quick server tiny mid scaling; do grep -q \"^\$p \" <<<\"\$out\" || exit 1; done"
check "report.py without a run directory rejected" rejects $PY scripts/report.py "$tmp/nothing"
check "compare with one run rejected" rejects $PY scripts/compare tests/harness
printf 'few fakewl --ops 10 --floor\n' > "$tmp/floorarg.suite"
check "a suite line with --floor rejected (the runner adds the floor runs)" \
  rejects $HB run --suite "$tmp/floorarg.suite" --workload-dir "$tmp/wl" --out "$tmp/x6"
check "--alloc floor rejected (the floor is not an allocator to choose)" \
  rejects $HB run --suite "$tmp/small.suite" --allocators "$tmp/alloc.tsv" --alloc glibc,floor --out "$tmp/x7"
printf 'floor\tsystem\tan allocator that takes the name\n' > "$tmp/floorname.tsv"
check "an allocator table that names an allocator floor rejected" \
  rejects $HB run --suite "$tmp/small.suite" --allocators "$tmp/floorname.tsv" --out "$tmp/x8"
check "no result directory left by rejected runs" bash -c "! ls -d $tmp/x? 2>/dev/null"
check "list shows the floor, and not with --no-floor" \
  bash -c "$HB list --allocators '$tmp/alloc.tsv' | grep -q '^floor  *floor ' && ! $HB list --allocators '$tmp/alloc.tsv' --no-floor | grep -q '^floor'"

# ---- a small matrix ------------------------------------------------------------
out=$tmp/run
$HB run --suite "$tmp/small.suite" --allocators "$tmp/alloc.tsv" --workload-dir "$tmp/wl" \
  --reps 2 --timeout 20 --out "$out" --quiet >"$tmp/run.stdout" 2>"$tmp/run.stderr"
st=$?
check "matrix completes with exit 0 despite crashes and invalid runs" test "$st" -eq 0
check "runner prints the result directory" grep -qx "$out" "$tmp/run.stdout"
check "missing workload reported on stderr" grep -q "nosuchworkload.*not found" "$tmp/run.stderr"

cat > "$tmp/check.py" <<'EOF'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
what = sys.argv[2]
ctx = rows[0]
runs = [r for r in rows if r.get("type") == "run"]
def by(label, alloc): return [r for r in runs if r["label"] == label and r["allocator"] == alloc]
if what == "context":
    assert ctx["type"] == "context" and ctx["schema"] == "hakmem-bench/1"
    for k in ("cpu_model", "cores", "kernel", "thp_enabled", "compiler", "git_commit", "started", "runner",
              "allocators", "cases", "glibc", "mem_total_kib"):
        assert k in ctx, k
    for a in ctx["allocators"]:
        for k in ("name", "kind", "library", "realpath", "status", "version"):
            assert k in a, (a["name"], k)
elif what == "count":
    # 2 real cases x (3 available allocators + the floor) x 2 reps
    assert len(runs) == 16, len(runs)
elif what == "fields":
    need = ("schema", "mode", "seq", "rep", "label", "workload", "args", "allocator", "status", "reason",
            "exit_code", "signal", "wall_s", "user_s", "sys_s", "maxrss_kib", "minflt", "majflt", "ops",
            "seconds", "ns_per_op", "ops_per_sec", "peak_live_bytes", "final_live_bytes", "peak_rss_kib",
            "fragmentation", "mem", "phases", "timeline", "verify", "log", "result", "floor")
    for r in runs:
        assert r["schema"] == "hakmem-bench/1"
        for k in need:
            assert k in r, (r["seq"], k)
        for k in ("expected", "malloc_from", "malloc_from_ok", "maps_has_lib", "floor_reported"):
            assert k in r["verify"], (r["seq"], k)
        for k in ("rss_kib", "pss_kib", "private_dirty_kib", "anonymous_kib", "anon_huge_kib", "lazyfree_kib",
                  "rss_nolazy_kib"):
            assert k in r["mem"]["peak"] and k in r["mem"]["final"], k
elif what == "glibc-ok":
    rs = by("many", "glibc") + by("few", "glibc")
    assert len(rs) == 4 and all(r["status"] == "ok" and r["ns_per_op"] > 0 and r["ops"] == (60000 if r["label"] == "many" else 2000) for r in rs)
    assert all(r["verify"]["malloc_from_ok"] is True for r in rs)
    assert all(r["verify"]["maps_has_lib"] is None for r in rs)  # no preload to look for
    assert all(r["peak_rss_kib"] > 0 for r in rs)
elif what == "crash-failed":
    rs = by("many", "crash")
    assert len(rs) == 2 and all(r["status"] == "failed" and r["signal"] == 6 and "SIGABRT" in r["reason"] for r in rs), rs
elif what == "crash-survivor":
    rs = by("few", "crash")
    # a preload: the library must have been seen in the maps (null is not a yes)
    assert len(rs) == 2 and all(r["status"] == "ok" and r["verify"]["maps_has_lib"] is True for r in rs)
elif what == "noalloc-invalid":
    rs = by("many", "noalloc") + by("few", "noalloc")
    assert len(rs) == 4 and all(r["status"] == "invalid" and "served by" in r["reason"] for r in rs)
elif what == "absent-skipped":
    a = [a for a in ctx["allocators"] if a["name"] == "absent"][0]
    assert a["status"] == "skipped" and "not found" in a["skip_reason"]
    assert not by("many", "absent")
elif what == "ghost-skipped":
    sk = [r for r in rows if r.get("type") == "skip"]
    assert len(sk) == 1 and sk[0]["label"] == "ghost" and "not found" in sk[0]["reason"]
elif what == "phases":
    for r in by("few", "glibc"):
        names = [p["name"] for p in r["phases"]]
        assert names == ["start", "idle_start", "idle_end"], names
        assert r["idle"]["rss_at_idle_end_kib"] > 0
elif what == "sampling":
    # RSS at every tick (statm), all of smaps_rollup only now and then: at the
    # first sample, at each phase marker, 1 s into an idle period, and when
    # the time since the last full read is 100 times its duration (>= 100 ms)
    for r in by("few", "glibc"):
        m = r["mem"]
        assert m["full_reads"] >= 3 and m["full_reads"] < m["samples"], m
        assert m["peak"]["pss_kib"] > 0 and m["peak"]["rss_kib"] >= m["final"]["rss_kib"] > 0, m
elif what == "rotation":
    first = [r["allocator"] for r in runs if r["label"] == "many"]
    n = len(first) // 2  # runs per repetition
    assert n == 4 and first[0] != first[n], first  # rep 0 and rep 1 start with different allocators
    # the floor is one of the rotation, not run apart at a fixed place
    assert first.index("floor") != first.index("floor", n) - n, first
elif what == "floor-rows":
    fl = [a for a in ctx["allocators"] if a["name"] == "floor"]
    assert len(fl) == 1 and fl[0]["kind"] == "floor" and fl[0]["status"] == "available", fl
    assert ctx["runner"]["floor"] is True
    libc = [a for a in ctx["allocators"] if a["name"] == "glibc"][0]["realpath"]
    for label, wl_args in (("many", ["--ops", "30000"]), ("few", ["--ops", "1000", "--phases", "--sleep-ms", "150"])):
        rs = by(label, "floor")
        assert len(rs) == 2 and sorted(r["rep"] for r in rs) == [0, 1], rs
        for r in rs:
            assert r["status"] == "ok" and r["reason"] is None, r["reason"]
            assert r["floor"] is True and r["args"] == wl_args + ["--floor"], r["args"]
            assert r["result"]["floor"] is True and r["verify"]["floor_reported"] is True
            assert r["verify"]["expected"] == libc, r["verify"]
            assert r["verify"]["malloc_from_ok"] is True and r["verify"]["maps_has_lib"] is None
            assert r["ns_per_op"] > 0 and r["peak_rss_kib"] > 0
    others = [r for r in runs if r["allocator"] != "floor"]
    assert others and all(r["floor"] is False and "--floor" not in r["args"] for r in others)
    assert all(r["verify"]["floor_reported"] is False for r in others if r["result"])
elif what == "floor-checked":
    # the floor run must be the workload's own word: "floor": true
    assert ctx["runner"]["floor"] is True
    want = {"told": ("ok", None), "deaf": ("invalid", 'says "floor": false'),
            "old": ("invalid", 'has no "floor": true')}
    for label, (st, why) in want.items():
        rs = by(label, "floor")
        assert len(rs) == 1 and rs[0]["status"] == st, (label, rs)
        assert (rs[0]["reason"] is None) if why is None else (why in rs[0]["reason"]), (label, rs[0]["reason"])
        g = by(label, "glibc")
        assert len(g) == 1 and g[0]["status"] == "ok", (label, g)
    assert by("deaf", "floor")[0]["verify"]["floor_reported"] is False
    assert by("old", "floor")[0]["verify"]["floor_reported"] is None
    e = rows[-1]
    assert (e["ok"], e["invalid"], e["failed"]) == (4, 2, 0), e
elif what == "no-floor":
    assert ctx["runner"]["floor"] is False
    assert not [a for a in ctx["allocators"] if a["name"] == "floor" or a["kind"] == "floor"]
    assert runs and not [r for r in runs if r["allocator"] == "floor" or r["floor"]]
elif what == "end":
    e = rows[-1]
    assert e["type"] == "end" and e["interrupted"] is False and e["ok"] + e["failed"] + e["invalid"] == 16
elif what == "timeout":
    rs = [r for r in runs if r["label"] == "slow"]
    assert len(rs) == 1 and rs[0]["status"] == "failed" and "timeout" in rs[0]["reason"] and rs[0]["signal"] == 9
    assert [r for r in runs if r["label"] == "quick"][0]["status"] == "ok"
elif what == "interrupted":
    e = rows[-1]
    assert e["type"] == "end" and e["interrupted"] is True
    assert all(r["status"] in ("ok", "failed", "invalid") for r in runs)
elif what == "environment":
    # every allocator variable of the runner's environment, LD_PRELOAD and
    # unrelated variables left out
    prefixes = ("HAKMEM_", "MALLOC_", "MIMALLOC_", "TCMALLOC_", "LD_")
    want = {k: v for k, v in os.environ.items()
            if (k.startswith(prefixes) or k == "GLIBC_TUNABLES") and k != "LD_PRELOAD"}
    want.update({"HAKMEM_IDLE_MS": "50", "MALLOC_CONF": "narenas:1"})
    assert ctx["environment"] == want, (ctx["environment"], want)
elif what == "options":
    al = {a["name"]: a for a in ctx["allocators"]}
    opts = al["hakmem-" + os.environ["HARNESS_VARIANT"]]["options"]
    assert isinstance(opts, list) and opts, opts
    for o in opts:
        assert set(o) == {"name", "value", "default", "env", "meaning"}, o
        assert o["env"].startswith("HAKMEM_"), o
        # a number option, or a text option (a path: unset and without default, "-")
        assert (type(o["value"]) is int and type(o["default"]) is int) or (o["value"] == o["default"] == "-"), o
    assert any(o["default"] == "-" for o in opts) and any(type(o["default"]) is int for o in opts), opts
    idle = [o for o in opts if o["env"] == "HAKMEM_IDLE_MS"]
    assert len(idle) == 1 and idle[0]["value"] == 50 and idle[0]["default"] != 50, idle
    assert "options_error" not in al["hakmem-" + os.environ["HARNESS_VARIANT"]]
    assert "options" not in al["glibc"], al["glibc"]
    timed = [r for r in runs if r["mode"] == "measure"]
    assert timed and all(r["status"] == "ok" for r in timed), [(r["allocator"], r["reason"]) for r in timed]
elif what == "stats-pass":
    # one untimed stats run per case and hakmem variant, after the timed ones;
    # the real variant's says where its memory was, at exit and at the peak
    # RSS; badopts (no statistics) is failed, with why; no other row has them
    assert ctx["runner"]["stats"] is True
    st = [r for r in runs if r["mode"] == "stats"]
    assert sorted(r["allocator"] for r in st) == sorted(["hakmem-" + os.environ["HARNESS_VARIANT"], "hakmem-badopts"]), st
    assert min(r["seq"] for r in st) > max(r["seq"] for r in runs if r["mode"] == "measure")
    real = [r for r in st if r["allocator"] != "hakmem-badopts"][0]
    assert real["status"] == "ok", real["reason"]
    hs = real["hakmem_stats"]
    keys = ("in_use_bytes", "magazine_bytes", "slab_free_bytes", "pool_bytes", "medium_free_bytes",
            "large_cache_bytes", "metadata_bytes", "mapped_bytes", "resident_bytes", "process_rss_bytes")
    for when in ("end", "peak"):
        s = hs[when]
        assert all(type(s[k]) is int for k in keys), (when, s)
        parts = ("in_use_bytes", "magazine_bytes", "transfer_bytes", "slab_free_bytes", "slab_tail_bytes", "pool_bytes",
                 "superslab_free_bytes", "medium_free_bytes", "large_cache_bytes", "metadata_bytes")
        assert sum(s[k] for k in parts) == s["mapped_bytes"], (when, s)
        assert sum(s["resident"].values()) == s["resident_bytes"] <= s["mapped_bytes"], (when, s)
        assert s["process_rss_bytes"] > 0
    bad = [r for r in st if r["allocator"] == "hakmem-badopts"][0]
    assert bad["status"] == "failed" and "wrote no statistics" in bad["reason"], bad["reason"]
    assert "wrote no statistics" in bad["hakmem_stats"]["error"], bad["hakmem_stats"]
    assert not [r for r in runs if r["mode"] != "stats" and "hakmem_stats" in r]
elif what == "no-stats":
    assert ctx["runner"]["stats"] is False
    assert runs and not [r for r in runs if r["mode"] == "stats" or "hakmem_stats" in r], runs
elif what == "options-unreadable":
    bad = [a for a in ctx["allocators"] if a["name"] == "hakmem-badopts"][0]
    assert bad["options"] == [{"name": "good", "value": 7, "default": 3, "env": "HAKMEM_GOOD",
                               "meaning": "an option that reads"}], bad["options"]
    assert "broken" in bad["options_error"], bad
elif what == "nolines":
    rs = [r for r in runs if r["label"] == "silent"]
    assert rs and all(r["status"] == "invalid" and "no JSON" in r["reason"] for r in rs)
else:
    raise SystemExit("unknown check " + what)
EOF
rowcheck() { $PY "$tmp/check.py" "$out/raw.jsonl" "$1"; }
check "context row with machine, build and allocator fields" rowcheck context
check "one row per run (cases x allocators x reps)" rowcheck count
check "every row has the schema's fields" rowcheck fields
check "glibc runs ok, verified, with ops and peak RSS" rowcheck glibc-ok
check "crashing allocator recorded as failed (SIGABRT)" rowcheck crash-failed
check "crashing allocator's short runs still complete" rowcheck crash-survivor
check "preload that does not take recorded as invalid" rowcheck noalloc-invalid
check "missing allocator recorded as skipped" rowcheck absent-skipped
check "missing workload recorded as a skip row" rowcheck ghost-skipped
check "phase markers and idle RSS recorded" rowcheck phases
check "RSS read every tick, smaps_rollup only at phases and now and then" rowcheck sampling
check "allocators rotated between repetitions, the floor among them" rowcheck rotation
check "floor rows: every case once per repetition, --floor appended, no preload, ok" rowcheck floor-rows
check "end row closes the file" rowcheck end
check "per-run logs written" bash -c "ls $out/logs/*.out $out/logs/*.err >/dev/null"
check "existing raw.jsonl is not overwritten" rejects $HB run --suite "$tmp/small.suite" --allocators "$tmp/alloc.tsv" --workload-dir "$tmp/wl" --out "$out"

# ---- allocator settings: the environment and hakmem's option table -------------
mkdir -p "$tmp/hb/badopts"
ln -s "$PWD/build/$variant" "$tmp/hb/$variant"
ln -s "$PWD/build/harness/libbadopts.so" "$tmp/hb/badopts/libhakmem.so"
printf 'few fakewl --ops 1000\n' > "$tmp/one.suite"
out=$tmp/settings
HAKMEM_IDLE_MS=50 MALLOC_CONF=narenas:1 $HB run --suite "$tmp/one.suite" --allocators "$tmp/alloc.tsv" \
  --hakmem "$variant,badopts" --build-dir "$tmp/hb" --alloc "glibc,hakmem-$variant,hakmem-badopts" \
  --workload-dir "$tmp/wl" --reps 1 --out "$out" --quiet >/dev/null 2>&1
check "context row records the allocator environment, nothing else" rowcheck environment
check "context row records hakmem's option table with the values in force" env HARNESS_VARIANT="$variant" $PY "$tmp/check.py" "$out/raw.jsonl" options
check "an unreadable option line is named, the readable ones kept" rowcheck options-unreadable
check "stats pass: each case once per hakmem variant after the timed runs, untimed; its memory at exit and at the peak RSS; a library without statistics failed, with why" \
  env HARNESS_VARIANT="$variant" $PY "$tmp/check.py" "$out/raw.jsonl" stats-pass
out=$tmp/nostats
$HB run --suite "$tmp/one.suite" --allocators "$tmp/alloc.tsv" --hakmem "$variant" --build-dir "$tmp/hb" \
  --alloc "hakmem-$variant" --workload-dir "$tmp/wl" --reps 1 --no-floor --no-stats --out "$out" --quiet >/dev/null 2>&1
check "--no-stats: no stats runs, runner.stats false" rowcheck no-stats

# ---- the floor's own check: the workload must say "floor": true ----------------
# told: a workload that honours --floor; deaf: one that ignores it (says
# "floor": false); old: one older than --floor (no "floor" key).
cat > "$tmp/floor.suite" <<EOF
told    fakewl --ops 1000
deaf    fakewl --ops 1000 --ignore-floor
old     fakewl --ops 1000 --no-floor-key
EOF
out=$tmp/floorcheck
$HB run --suite "$tmp/floor.suite" --allocators "$tmp/alloc.tsv" --alloc glibc --workload-dir "$tmp/wl" \
  --reps 1 --out "$out" --quiet >/dev/null 2>&1
check "a floor run that does not say \"floor\": true recorded as invalid, with why" rowcheck floor-checked

# ---- time limit and a workload without a result line --------------------------
cat > "$tmp/slow.suite" <<EOF
slow    fakewl --ops 10 --sleep-ms 10000
quick   fakewl --ops 10
silent  fakewl --ops 10 --no-result
EOF
out=$tmp/slow
$HB run --suite "$tmp/slow.suite" --allocators "$tmp/alloc.tsv" --alloc glibc --workload-dir "$tmp/wl" \
  --reps 1 --timeout 1 --no-floor --out "$out" --quiet >/dev/null 2>&1
check "run past its time limit killed and recorded as failed; matrix continues" rowcheck timeout
check "workload without a JSON result line recorded as invalid" rowcheck nolines
check "--no-floor: no floor runs, no floor allocator, runner.floor false" rowcheck no-floor

# ---- interruption keeps finished rows ------------------------------------------
out=$tmp/intr
$HB run --suite "$tmp/slow.suite" --allocators "$tmp/alloc.tsv" --alloc glibc --workload-dir "$tmp/wl" \
  --reps 1 --timeout 30 --out "$out" --quiet >/dev/null 2>&1 &
pid=$!
sleep 0.7
kill -INT "$pid"
wait "$pid"; st=$?
check "SIGINT stops the runner with status 130" test "$st" -eq 130
check "interrupted run ends with an end row marked interrupted" rowcheck interrupted

# ---- callgrind (only when valgrind is installed) --------------------------------
if command -v valgrind >/dev/null; then
  printf 'cg fakewl --ops 20000\n' > "$tmp/cg.suite"
  out=$tmp/cg
  $HB run --callgrind "$tmp/cg.suite" --callgrind-only --allocators "$tmp/alloc.tsv" --alloc glibc \
    --workload-dir "$tmp/wl" --out "$out" --quiet >/dev/null 2>&1
  check "callgrind mode records instructions per op" \
    $PY -c "import json,sys; r=[json.loads(l) for l in open('$out/raw.jsonl')][1]; assert r['mode']=='callgrind' and r['status']=='ok' and r['instr_per_op']>10"
else
  skip "callgrind mode records instructions per op" "valgrind not installed"
fi

# ---- report from the fixed raw file ---------------------------------------------
rep=$tmp/report
mkdir -p "$rep" && cp tests/harness/fixture-raw.jsonl "$rep/raw.jsonl"
check "report.py renders the fixed raw file" $PY scripts/report.py "$rep"
md=$rep/report.md
has() { grep -qF -- "$1" "$md"; }
line() { grep -qxF -- "$1" "$md"; } # a whole line of the report
# The fixture's floor (tiny 3.0 ns/op, burst_idle 20.5; a smaller peak and
# idle RSS than any allocator) must sit beside the allocators: a column of its
# own in the time table, and no change to any bold, ratio or geomean.
check "report: ns/op row with best in bold, MAD and ratios, the floor after them" \
  line "| tiny | 9.70 (±2%, 1.08×) | 11.00 (±9%, 1.22×) | **9.00** (±11%, 1.00×) | 3.00 (±3%) |"
check "report: burst_idle ns/op row" \
  line "| burst_idle | 52.00 (±4%, 1.28×) | 61.00 (±2%, 1.51×) | **40.50** (±1%, 1.00×) | 20.50 (±2%) |"
check "report: geomean row, none for the floor" line "| geomean ratio | 1.18× | 1.36× | 1.00× | – |"
check "report: the floor column of the time table explained" \
  has "floor: the workload's own cost (its \`--floor\` run, no allocator in its timed work"
check "report: peak RSS row" line "| tiny | 2.0 (±0%, 1.33×) | **1.5** (±0%, 1.00×) | 4.0 (±0%, 2.67×) |"
check "report: idle RSS row" line "| burst_idle | 4.0 (±0%, 2.00×) | **2.0** (±0%, 1.00×) | 70.0 (±0%, 35.00×) |"
cat > "$tmp/sections.py" <<'EOF'
import re, sys
md = open(sys.argv[1]).read()
secs = dict(re.findall(r"^#+ (.*)\n((?:(?!^#).*\n)*)", md, re.M))
def rows(title):
    body = [v for k, v in secs.items() if k.startswith(title)]
    assert len(body) == 1, (title, list(secs))
    return [l for l in body[0].splitlines() if l.startswith("| ")]
what = sys.argv[2]
if what == "memory":
    # the floor is no competitor in the memory tables, the glance or Other figures
    for t in ("peak RSS (", "fragmentation (", "RSS at the end of the idle period (", "RSS - LazyFree at the end of the idle period (",
              "At a glance", "Other figures"):
        r = rows(t)
        assert r and not any("floor" in l for l in r), (t, r)
    assert rows("At a glance")[0] == "| allocator | time | throughput | peak RSS | fragmentation | idle RSS | idle Rss−LazyFree |"
elif what == "floor":
    assert rows("time per op (")[0] == "| workload | hakmem-test | glibc | jemalloc | floor |"
    assert rows("What the allocator can change") == [
        "| workload | floor ns/op | fastest allocator | its ns/op | difference ns/op | floor's share of its time |",
        "| tiny | 3.00 (±3%) | jemalloc | 9.00 | 6.00 | 33% |",
        "| burst_idle | 20.50 (±2%) | jemalloc | 40.50 | 20.00 | 51% |"], rows("What the allocator can change")
    assert rows("Time above the floor") == [
        "| workload | hakmem-test | glibc | jemalloc |",
        "| tiny | 6.70 (69%) | 8.00 (73%) | **6.00** (67%) |",
        "| burst_idle | 31.50 (61%) | 40.50 (66%) | **20.00** (49%) |"], rows("Time above the floor")
elif what == "nofloor":
    # no floor figures: no floor column, and the section says why
    assert rows("time per op (")[0] == "| workload | hakmem-test | glibc | jemalloc |", rows("time per op (")
    assert not [k for k in secs if k.startswith("Time above the floor")]
    assert "No floor figures: " + sys.argv[3] in secs["What the allocator can change"], secs["What the allocator can change"]
elif what == "partfloor":
    # tiny has a floor, burst_idle's floor runs were all invalid
    assert rows("time per op (")[1:3] == [
        "| tiny | 9.70 (±2%, 1.08×) | 11.00 (±9%, 1.22×) | **9.00** (±11%, 1.00×) | 3.00 (±3%) |",
        "| burst_idle | 52.00 (±4%, 1.28×) | 61.00 (±2%, 1.51×) | **40.50** (±1%, 1.00×) | – |"], rows("time per op (")
    assert [l.split(" | ")[0] for l in rows("What the allocator can change")[1:]] == ["| tiny"]
    assert "No floor figure for burst_idle: the floor runs of these cases failed or were invalid" in \
        secs["What the allocator can change"]
else:
    raise SystemExit("unknown check " + what)
EOF
check "report: the floor in no memory table, no glance row, no Other figures row" $PY "$tmp/sections.py" "$md" memory
check "report: What the allocator can change: floor, fastest, difference, share; time above the floor" \
  $PY "$tmp/sections.py" "$md" floor
check "report: fragmentation only where live bytes are meaningful" \
  bash -c "grep -A4 '^### fragmentation' '$md' | grep -qF '| burst_idle | **1.07**' && ! grep -A4 '^### fragmentation' '$md' | grep -q '^| tiny'"
check "report: machine and noise stated" bash -c "grep -q 'Fixture CPU (2 cores)' '$md' && grep -q 'median relative MAD' '$md'"
check "report: skipped allocator listed" has "- skipped: allocator mimalloc: library not found"
check "report: skipped workload listed" has "- skipped: case json (measure): workload binary"
check "report: failed run listed with its signal" has "- failed: tiny / hakmem-test rep 2: killed by signal 11 (SIGSEGV)"
check "report: invalid run listed" has "- invalid: burst_idle / jemalloc rep 2: malloc was served by"
check "report: invalid floor run listed" has "- invalid: burst_idle / floor rep 2: a floor run whose result says"
check "report: the allocator environment under Machine and noise" \
  has "- Allocator environment, inherited by every run: \`HAKMEM_IDLE_MS=50\`, \`MALLOC_CONF=narenas:1\`."
check "report: hakmem options off their default listed, and only those" \
  bash -c "grep -qF -- '- hakmem-test options not at their default: \`idle_ms\` 50 (default 200, \`HAKMEM_IDLE_MS\`).' '$md' && ! grep -qF -- '\`stats\`' '$md'"
check "report: where hakmem's memory is at the peak RSS: resident bytes by part, against peak RSS and live" \
  line "| burst_idle | hakmem-test | 70.0 | 64.0 | 6.0 | 70.0 | 64.0 | 1.0 | 1.0 | 1.0 | 0.0 | 0.0 | 0.5 | 2.5 |"
check "report: where hakmem's memory is at exit" \
  line "| burst_idle | hakmem-test | 4.0 | 0.0 | 0.5 | 0.5 | 0.0 | 0.0 | 0.0 | 0.5 | 2.5 |"
check "report: a failed stats run listed, with why" \
  has "- failed: tiny / hakmem-test rep 0 (stats): the library wrote no statistics"
check "report: Other figures include peak Rss−LazyFree" has "| tiny | hakmem-test | 0.019 | 0.001 | 500 | 2.0 | 2.0 |"
check "report: Markdown and HTML say the same (headings, text, lists, table cells, plots)" \
  $PY tests/harness/report-parity.py "$md" "$rep/report.html"
check "summary.json has median/min/max/MAD, ratios and geomeans" \
  $PY -c "
import json; s=json.load(open('$rep/summary.json'))
c=s['cells']['tiny']['glibc']['ns_per_op']
assert (c['median'],c['min'],c['max'],c['mad'],c['n'])==(11,10,12,1,3), c
assert abs(c['ratio_to_best_reference']-11/9)<1e-9
assert s['best_reference']['tiny']['ns_per_op']['allocator']=='jemalloc'
assert abs(s['geomean']['jemalloc']['ns_per_op']['geomean_ratio']-1)<1e-9
assert s['counts']=={'ok':22,'failed':2,'invalid':2}, s['counts']
# the stats run of burst_idle adds no figure to any cell
assert s['cells']['burst_idle']['hakmem-test']['ns_per_op']['n']==3, s['cells']['burst_idle']['hakmem-test']"
check "summary.json: the floor's cells kept, but no reference, best, ratio or geomean" \
  $PY -c "
import json; s=json.load(open('$rep/summary.json'))
assert s['floor']=='floor' and s['floor_ran'] is True
assert 'floor' not in s['available'] and 'floor' not in s['reference'] and 'floor' not in s['geomean'], s['available']
c=s['cells']['tiny']['floor']
assert c['ns_per_op']['median']==3.0 and c['peak_rss_kib']['median']==512, c
assert not any('ratio_to_best_reference' in v for v in c.values()), c
assert all(b['allocator']!='floor' for l in s['best_reference'].values() for b in l.values())
a=s['above_floor']['tiny']
assert a['best']=={'allocator':'jemalloc','median':9.0} and abs(a['floor_share_of_best']-1/3)<1e-9, a
assert abs(a['allocators']['glibc']['above_floor']-8)<1e-9 and abs(a['allocators']['glibc']['share_above_floor']-8/11)<1e-9
assert 'floor' not in a['allocators']"
check "report.html is self-contained (no external references)" \
  bash -c "grep -q '<table>' '$rep/report.html' && ! grep -qE '(src|href)=.(http|file:|/)' '$rep/report.html'"
if $PY -c "import matplotlib" 2>/dev/null; then
  check "report.html embeds the plots as PNG" grep -q "data:image/png;base64," "$rep/report.html"
  check "report.md shows the plots, written as PNG files in the run directory" \
    $PY -c "
import re; imgs = re.findall(r'!\[[^]]*\]\(([^)]+)\)', open('$md').read())
assert len(imgs) >= 4 and all(f.startswith('plots/') for f in imgs), imgs
assert all(open('$rep/' + f, 'rb').read(8) == b'\x89PNG\r\n\x1a\n' for f in imgs)"
  check "report: RSS over time for every case that sampled it, named by no list" \
    bash -c "test -s '$rep/plots/rss-tiny.png' && test -s '$rep/plots/rss-burst_idle.png'"
  check "report: a stacked bar plot of where hakmem's memory is" \
    bash -c "test -s '$rep/plots/memory.png' && grep -qF '](plots/memory.png)' '$md'"
else
  skip "report.html embeds the plots as PNG" "matplotlib not installed"
  skip "report.md shows the plots, written as PNG files in the run directory" "matplotlib not installed"
  skip "report: RSS over time for every case that sampled it, named by no list" "matplotlib not installed"
  skip "report: a stacked bar plot of where hakmem's memory is" "matplotlib not installed"
fi
# An older raw file (no environment, no option table), an interrupted run
# (no end row) and a preload the probe saw not taking: both renderings say so.
old=$tmp/oldraw
mkdir -p "$old" && $PY -c "
import json, sys
rows = [json.loads(l) for l in open('tests/harness/fixture-raw.jsonl')]
ctx = rows[0]
del ctx['environment']
for a in ctx['allocators']:
    a.pop('options', None)
    if a['name'] == 'jemalloc':
        a['probe_preload_ok'] = False
        a['probe_malloc_from'] = '/usr/lib/x86_64-linux-gnu/libc.so.6'
with open('$old/raw.jsonl', 'w') as f:
    f.writelines(json.dumps(r) + '\n' for r in rows if r['type'] != 'end')"
# The same fixture without its floor in three ways: written before the floor
# (no floor anywhere), run with --no-floor, and burst_idle's floor runs (or
# all floor runs) invalid.
$PY - "$tmp" <<'EOF'
import copy, json, os, sys
rows = [json.loads(l) for l in open('tests/harness/fixture-raw.jsonl')]
def write(name, rs):
    os.makedirs(os.path.join(sys.argv[1], name), exist_ok=True)
    with open(os.path.join(sys.argv[1], name, 'raw.jsonl'), 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in rs)
def strip(runner_floor):
    rs = copy.deepcopy([r for r in rows if r.get('allocator') != 'floor'])
    rs[0]['allocators'] = [a for a in rs[0]['allocators'] if a['kind'] != 'floor']
    if runner_floor is None: del rs[0]['runner']['floor']
    else: rs[0]['runner']['floor'] = runner_floor
    return rs
def invalid(labels):
    rs = copy.deepcopy(rows)
    for r in rs:
        if r.get('allocator') == 'floor' and r['label'] in labels:
            r['status'] = 'invalid'
    return rs
def nostats(runner_stats):
    rs = copy.deepcopy([r for r in rows if r.get('mode') != 'stats'])
    if runner_stats is None: del rs[0]['runner']['stats']
    else: rs[0]['runner']['stats'] = runner_stats
    return rs
write('prestats', nostats(None))
write('nostats', nostats(False))
write('prefloor', strip(None))
write('nofloor', strip(False))
write('partfloor', invalid({'burst_idle'}))
write('badfloor', invalid({'tiny', 'burst_idle'}))
EOF
for v in prefloor nofloor partfloor badfloor prestats nostats; do $PY scripts/report.py "$tmp/$v" --no-plots >/dev/null; done
check "report: a raw file from before the stats pass: no memory breakdown, said so" \
  grep -qxF "No figures: this raw.jsonl was written before the runner made stats runs." "$tmp/prestats/report.md"
check "report: a run with --no-stats: no memory breakdown, said so" \
  grep -qxF "No figures: the run was made without the stats pass (\`--no-stats\`)." "$tmp/nostats/report.md"
check "report: a raw file from before the floor: no floor column, said so" \
  $PY "$tmp/sections.py" "$tmp/prefloor/report.md" nofloor "this raw.jsonl was written before the runner made floor runs."
check "report: a run with --no-floor: no floor column, said so" \
  $PY "$tmp/sections.py" "$tmp/nofloor/report.md" nofloor "the run was made without floor runs (\`--no-floor\`)."
check "report: every floor run invalid: no floor column, said so" \
  $PY "$tmp/sections.py" "$tmp/badfloor/report.md" nofloor "every floor run failed or was invalid"
check "report: a case whose floor runs were all invalid: a dash, and named" \
  $PY "$tmp/sections.py" "$tmp/partfloor/report.md" partfloor
for v in prefloor partfloor; do
  check "report: Markdown and HTML say the same ($v)" $PY tests/harness/report-parity.py "$tmp/$v/report.md" "$tmp/$v/report.html"
done
check "report.py reads a raw file without the settings fields" $PY scripts/report.py "$old" --no-plots
check "report: settings not recorded in an older raw file, said so" \
  grep -qF -- "- Allocator settings: not recorded" "$old/report.md"
for f in report.md report.html; do
  check "report: interrupted run stated ($f)" grep -qF "the run was interrupted" "$old/$f"
  check "report: a preload the probe saw not taking stated ($f)" \
    grep -qF "available, but the probe saw malloc from /usr/lib/x86_64-linux-gnu/libc.so.6" "$old/$f"
  check "report: --no-plots stated as the reason for no plots ($f)" grep -qF "No plots: --no-plots was given" "$old/$f"
done
check "report: Markdown and HTML say the same (older, interrupted run)" \
  $PY tests/harness/report-parity.py "$old/report.md" "$old/report.html"
mkdir -p "$tmp/badschema" && printf '{"type":"context","schema":"hakmem-bench/0"}\n' > "$tmp/badschema/raw.jsonl"
check "report.py rejects a raw file of another schema" rejects $PY scripts/report.py "$tmp/badschema"
check "compare rejects an unknown figure" rejects $PY scripts/compare "$rep" "$rep" --fig nosuch
check "compare knows peak Rss−LazyFree" bash -c "$PY scripts/compare '$rep' '$rep' --fig peak_nolazy_kib | grep -q '^tiny .*peak_nolazy_kib'"
check "compare shows the floor's time, says what it is, and leaves it out of memory figures" \
  bash -c "out=\$($PY scripts/compare '$rep' '$rep' --all) && grep -q '^tiny  *floor  *ns_per_op ' <<<\"\$out\" \
    && grep -q '^tiny  *floor  *ops_per_sec ' <<<\"\$out\" && grep -q '^floor: the workload.s own cost' <<<\"\$out\" \
    && ! grep -qE '^[a-z_]+  *floor  *(peak|idle|final|fragmentation|user|sys|minflt)' <<<\"\$out\""
check "make report re-renders a run" bash -c "make -s --no-print-directory report RUN='$rep' | grep -q report.md"
check "compare shows a run against itself as within noise" \
  bash -c "$PY scripts/compare '$rep' '$rep' | grep -q 'within noise' && ! $PY scripts/compare '$rep' '$rep' | grep -qE 'BETTER|WORSE'"
# A second run with two known changes (tests/harness/fixture-changed.py):
# compare must flag exactly those, each in the right direction.
chg=$tmp/changed
mkdir -p "$chg" && $PY tests/harness/fixture-changed.py tests/harness/fixture-raw.jsonl "$chg/raw.jsonl"
flagged() { # flagged <compare args...>: "case allocator figure change verdict" of each flagged line
  $PY scripts/compare "$@" | awk '$7 == "BETTER" || $7 == "WORSE" {print $1, $2, $3, $6, $7}'
}
check "compare flags exactly the known changes (default figures)" \
  test "$(flagged "$rep" "$chg")" = "tiny hakmem-test ns_per_op +100.0% WORSE
burst_idle jemalloc idle_rss_kib -90.0% BETTER"
check "compare flags exactly the known changes (--all)" \
  test "$(flagged "$rep" "$chg" --all)" = "tiny hakmem-test ns_per_op +100.0% WORSE
tiny hakmem-test ops_per_sec -50.0% WORSE
burst_idle jemalloc idle_rss_kib -90.0% BETTER
burst_idle jemalloc idle_rss_nolazy_kib -90.0% BETTER"
check "compare turns the verdicts round when the runs are swapped" \
  test "$(flagged "$chg" "$rep")" = "tiny hakmem-test ns_per_op -50.0% BETTER
burst_idle jemalloc idle_rss_kib +900.0% WORSE"


# ---- shards: plan, run --shard, merge -----------------------------------------
cat > "$tmp/five.suite" <<EOF
c0 fakewl --ops 1000
c1 fakewl --ops 1100
c2 fakewl --ops 1200
c3 fakewl --ops 1300
c4 fakewl --ops 1400
EOF
cat > "$tmp/plan.py" <<'EOF'
import json, sys
p = json.load(sys.stdin)
assert p["schema"] == "hakmem-bench-plan/1" and p["count"] == 2 and p["cases"] == 5
assert [s["cases"] for s in p["shards"]] == [["c0", "c2", "c4"], ["c1", "c3"]], p
assert [s["arg"] for s in p["shards"]] == ["1/2", "2/2"]
EOF
check "plan: case k in shard (k mod N) + 1, as JSON" \
  bash -c "$HB plan --suite '$tmp/five.suite' --shards 2 | $PY '$tmp/plan.py'"
check "plan: more shards than cases rejected" rejects $HB plan --suite "$tmp/five.suite" --shards 6
check "plan: without --shards rejected" rejects $HB plan --suite "$tmp/five.suite"
check "run --shard 0/2 rejected" rejects $HB run --suite "$tmp/five.suite" --shard 0/2 --out "$tmp/y1"
check "run --shard 3/2 rejected" rejects $HB run --suite "$tmp/five.suite" --shard 3/2 --out "$tmp/y2"
check "run --shard 1/6 of a suite of 5 rejected" rejects $HB run --suite "$tmp/five.suite" --shard 1/6 --out "$tmp/y3"
for i in 1 2; do
  $HB run --suite "$tmp/five.suite" --allocators "$tmp/alloc.tsv" --alloc glibc --workload-dir "$tmp/wl" \
    --reps 2 --shard $i/2 --out "$tmp/shard$i" --quiet >/dev/null 2>&1
done
$HB run --suite "$tmp/five.suite" --allocators "$tmp/alloc.tsv" --alloc glibc --workload-dir "$tmp/wl" \
  --reps 2 --out "$tmp/unsharded" --quiet >/dev/null 2>&1
cat > "$tmp/shards.py" <<'EOF'
import json, os, sys
rows = lambda d: [json.loads(l) for l in open(os.path.join(d, "raw.jsonl"))]
tmp, what = sys.argv[1], sys.argv[2]
key = lambda r: (r["label"], r["allocator"], r["rep"], r["mode"])
if what == "shard":
    r2 = rows(tmp + "/shard2")
    c = r2[0]
    assert c["shard"] == {"index": 2, "count": 2, "suite_cases": 5, "rule": c["shard"]["rule"]}, c["shard"]
    assert [(x["label"], x["index"]) for x in c["cases"]] == [("c1", 1), ("c3", 3)], c["cases"]
    runs = [r for r in r2 if r["type"] == "run"]
    assert sorted({r["label"] for r in runs}) == ["c1", "c3"] and len(runs) == 2 * 2 * 2
elif what == "merged":
    m, u = rows(tmp + "/merged"), rows(tmp + "/unsharded")
    assert sorted(key(r) for r in m if r["type"] == "run") == sorted(key(r) for r in u if r["type"] == "run")
    assert [c["label"] for c in m[0]["cases"]] == ["c0", "c1", "c2", "c3", "c4"]
    assert "shard" not in m[0] and [s["index"] for s in m[0]["shards"]] == [1, 2]
    runs = [r for r in m if r["type"] == "run"]
    assert [r["seq"] for r in runs] == list(range(1, 21)) and all(r["host"] and r["shard"] in (1, 2) for r in runs)
    assert all(os.path.exists(os.path.join(tmp, "merged", r["log"] + ".out")) for r in runs)
    assert m[-1]["ok"] == 20 and m[-1]["type"] == "end"
elif what == "twohosts":
    # the same case on two hosts: split by host, never one cell
    rs = rows(tmp + "/merged")
    for r in rs:
        if r.get("type") == "run" and r["label"] == "c0" and r["rep"] == 1:
            r["host"] = "otherhost"
    os.makedirs(tmp + "/twohosts")
    with open(tmp + "/twohosts/raw.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rs)
elif what == "split":
    s = json.load(open(tmp + "/twohosts/summary.json"))
    h = [r["host"] for r in rows(tmp + "/merged") if r.get("type") == "run"][0]
    assert sorted(s["cases"][:2]) == sorted(["c0@" + h, "c0@otherhost"]), s["cases"]
    assert s["cells"]["c0@otherhost"]["glibc"]["ns_per_op"]["n"] == 1 and "c0" not in s["cells"]
elif what == "load":
    rs = rows(tmp + "/unsharded")
    s, e = rs[0]["load_start"], rs[-1]["load"]
    for k in ("measured", "window_s", "other_cpu_s", "other_cpus", "other_runnable", "cores", "busy", "loadavg",
              "thresholds", "said"):
        assert k in s, k
    assert s["measured"] is True and 0.4 < s["window_s"] < 5 and s["other_cpus"] >= 0 and s["other_runnable"] >= 0
    assert s["thresholds"] == {"other_cpus": 0.25, "other_runnable": 1}
    assert s["busy"] == (s["other_cpus"] >= 0.25 or s["other_runnable"] >= 1), s
    assert s["said"].startswith("busy machine, time figures unreliable: ") == s["busy"], s
    for k in ("measured", "runs_wall_s", "other_cpu_s", "other_cpus", "busy", "said"):
        assert k in e, k
    assert e["busy"] == (e["other_cpus"] >= 0.25), e
    runs = [r for r in rs if r["type"] == "run"]
    assert all(r["other_cpu_s"] >= 0 for r in runs)
    assert abs(sum(r["other_cpu_s"] for r in runs) - e["other_cpu_s"]) < 0.01 + 0.001 * len(runs), e
else:
    raise SystemExit("unknown check " + what)
EOF
check "run --shard: the shard's cases only, their suite index and the shard in the context" $PY "$tmp/shards.py" "$tmp" shard
$HB merge --out "$tmp/merged" "$tmp/shard2" "$tmp/shard1" >/dev/null 2>&1
check "merge joins every shard into one run with every row of an unsharded run" $PY "$tmp/shards.py" "$tmp" merged
check "merge: a missing shard named, exit 2" \
  bash -c "$HB merge --out '$tmp/m2' '$tmp/shard1' 2>&1 >/dev/null | grep -q 'missing shard(s) 2/2'; [ \${PIPESTATUS[0]} -eq 2 ] && [ ! -e '$tmp/m2/raw.jsonl' ]"
check "merge: a shard given twice named, exit 2" \
  bash -c "$HB merge --out '$tmp/m3' '$tmp/shard1' '$tmp/shard1' '$tmp/shard2' 2>&1 >/dev/null | grep -q 'given twice: 1/2'; [ \${PIPESTATUS[0]} -eq 2 ]"
check "merge: an unsharded run is no shard" rejects $HB merge --out "$tmp/m4" "$tmp/unsharded" "$tmp/shard1"
check "merge: an existing raw.jsonl is not overwritten" rejects $HB merge --out "$tmp/merged" "$tmp/shard1" "$tmp/shard2"
check "merge: without --out rejected" rejects $HB merge "$tmp/shard1" "$tmp/shard2"
$PY scripts/report.py "$tmp/merged" --no-plots >/dev/null
check "report of a merged run: the shards and their hosts" \
  bash -c "grep -q '^## Shards and hosts' '$tmp/merged/report.md' && grep -qE '^\| 2/2 \| [^|]+ \| c1, c3 \| 8 ok' '$tmp/merged/report.md'"
$PY "$tmp/shards.py" "$tmp" twohosts && $PY scripts/report.py "$tmp/twohosts" --no-plots >/dev/null
check "a case run on two hosts is split by host (case@host), never one cell" $PY "$tmp/shards.py" "$tmp" split

# ---- the machine's load, in every run's rows ------------------------------------
check "context, run and end rows say how busy the machine was" $PY "$tmp/shards.py" "$tmp" load
check "report: an older raw file without load figures says so" \
  grep -qxF -- "- Machine load: not measured (this raw.jsonl was written before the runner measured it)." "$md"

# ---- --lib: a hakmem library by path --------------------------------------------
check "--lib adds a hakmem library by path" \
  bash -c "$HB list --allocators '$tmp/alloc.tsv' --lib 'mine=build/$variant/libhakmem.so' --no-floor | grep -qE '^mine +hakmem +ok '"
check "--lib without NAME=PATH rejected" rejects $HB list --allocators "$tmp/alloc.tsv" --lib "build/$variant/libhakmem.so"
check "--lib named floor rejected" rejects $HB list --allocators "$tmp/alloc.tsv" --lib "floor=build/$variant/libhakmem.so"
check "ab: --confidence outside (0, 1) rejected" rejects $HB ab --confidence 1 --suite "$tmp/five.suite"
check "ab: --shard rejected (one machine)" rejects $HB ab --shard 1/2 --suite "$tmp/five.suite"

# ---- the A/B statistics (scripts/benchdata.py) ----------------------------------
cat > "$tmp/abstats.py" <<'EOF'
import random, sys
sys.path.insert(0, "scripts")
import benchdata as b
what = sys.argv[1]
if what == "interval":
    # 5 against 5, wholly apart: the 95 % interval runs from the 3rd smallest
    # to the 3rd largest of the 25 differences; at 99.9 % there is none
    got = b.shift_interval([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], 0.95)
    assert got == (5, 2, 8, 1 - 2 * 4 / 252), got
    assert b.shift_interval([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], 0.999)[1:] == (None, None, None)
    assert [b.reps_needed(c) for c in (0.95, 0.99, 0.999)] == [4, 5, 7]
    assert sum(b.mw_null_counts(7, 7)) == 3432 and b.mw_null_counts(2, 2) == (1, 1, 2, 1, 1)
    assert abs(b.mann_whitney_p([1, 2, 3, 4], [5, 6, 7, 8]) - 2 / 70) < 1e-12
    # the interval's coverage: two samples of one distribution, 2000 times
    random.seed(3)
    miss = sum(1 for _ in range(2000) if (lambda r: r[1] > 0 or r[2] < 0)(
        b.shift_interval([random.gauss(0, 1) for _ in range(7)], [random.gauss(0, 1) for _ in range(7)], 0.95)))
    assert miss / 2000 < 0.065, miss
elif what == "verdict":
    def verdict(a, bb):
        ctx = {"ab": {"a": "A", "b": "B", "confidence": 0.95}, "allocators": []}
        cells = {"w": {"A": {"ns_per_op": b.stats(a)}, "B": {"ns_per_op": b.stats(bb)}}}
        return b.ab_verdicts(ctx, cells, ["w"])["rows"][0]
    random.seed(7)
    a = [10 * random.uniform(0.8, 1.2) for _ in range(7)]
    assert verdict(a, list(a))["verdict"] == "no difference detected"
    r = verdict(a, [2 * x for x in a])
    assert r["verdict"] == "slower" and abs(r["ratio"] - 2) < 1e-9 and r["low"] > 1, r
    r = verdict(a, [x / 3 for x in a])
    assert r["verdict"] == "faster" and r["high"] < 1, r
    assert verdict(a[:2], a[:2])["verdict"].startswith("too few repetitions (at least 4 a side")
else:
    raise SystemExit("unknown check " + what)
EOF
check "A/B: the exact Mann-Whitney interval of the shift (Hodges-Lehmann), its coverage, and where none exists" \
  $PY "$tmp/abstats.py" interval
check "A/B: identical samples never called different; 2x called slower (ratio 2), a third faster" $PY "$tmp/abstats.py" verdict
check "verdict rejects a run that is not an A/B run" rejects $PY scripts/verdict "$rep"

# ---- the history ---------------------------------------------------------------------
hist=$tmp/hist
mkdir -p "$hist/r1" "$hist/r2"
cp tests/harness/fixture-raw.jsonl "$hist/r1/raw.jsonl"
$PY tests/harness/fixture-changed.py tests/harness/fixture-raw.jsonl "$hist/r2/raw.jsonl"
sed -i 's/"started": *"[^"]*"/"started":"2030-01-02T00:00:00+0000"/' "$hist/r2/raw.jsonl"
$PY scripts/report.py "$hist/r1" --no-plots >/dev/null
$PY scripts/report.py "$hist/r2" --no-plots >/dev/null
$PY scripts/report.py "$hist/r1" --no-plots >/dev/null  # rendered again: not a second entry
cat > "$tmp/hist.py" <<'EOF'
import json, sys
e = [json.loads(l) for l in open(sys.argv[1])]
assert [x["run"] for x in e] == ["r1", "r2"] and all(x["schema"] == "hakmem-history/1" for x in e), e
w0, w1 = (x["workloads"]["tiny"]["hakmem-test"]["ns_per_op"] for x in e)
assert abs(w1["ratio"] / w0["ratio"] - 2) < 1e-9 and w0["best_reference"] == "jemalloc", (w0, w1)
assert w0["ratio_min"] <= w0["ratio"] <= w0["ratio_max"]
assert e[0]["git_commit"] and e[0]["suite"] and "busy" in e[0]
EOF
check "history: every rendered run appended once, beside the runs, with its ratios" $PY "$tmp/hist.py" "$hist/history.jsonl"
check "report.py --no-history adds nothing" \
  bash -c "cp -r '$hist/r1' '$hist/r3' && $PY scripts/report.py '$hist/r3' --no-plots --no-history >/dev/null && ! grep -q '\"r3\"' '$hist/history.jsonl'"
check "report.py --history=FILE writes there" \
  bash -c "$PY scripts/report.py '$hist/r3' --no-plots --history='$tmp/h2.jsonl' >/dev/null && grep -q '\"run\":\"r3\"' '$tmp/h2.jsonl'"
$PY scripts/history.py html --history "$hist/history.jsonl" >/dev/null
check "history html: a self-contained page" \
  bash -c "test -s '$hist/history.html' && grep -q '<table>' '$hist/history.html' && ! grep -qE '(src|href)=.(http|file:|/)' '$hist/history.html'"
check "history: the step is in the table (1.08x, then 2.16x)" \
  bash -c "grep -E '^\| [^|]+ \| \`[0-9a-f]{9}\*?\` \| hakmem-test \|' '$hist/history.md' | cut -d'|' -f7 | tr -d ' ' | paste -sd, | grep -qx '1.08×(1.06–1.10),2.16×(2.11–2.20)'"
if $PY -c "import matplotlib" 2>/dev/null; then
  check "history html embeds the plot of the ratios over commits" grep -q "data:image/png;base64," "$hist/history.html"
else
  skip "history html embeds the plot of the ratios over commits" "matplotlib not installed"
fi
check "history: a line of another schema rejected" \
  bash -c "echo '{\"schema\":\"x/0\"}' > '$tmp/bad.jsonl' && $PY scripts/history.py html --history '$tmp/bad.jsonl' --out '$tmp/bad.html' 2>&1 | grep -q 'expected .hakmem-history/1.'"
check "make history renders results/history.html" \
  bash -c "make -n --no-print-directory history | grep -qF 'scripts/history.py html --history results/history.jsonl --out results/history.html'"

# ---- the machine's page costs and page-table work per op --------------------------
# The five costs of ../shared/probes/pagecost.c, measured once per run into the
# context row (and by `hakbench pagecost`): present, positive, the resident
# write the cheapest (below both fault costs; a moved page may cost what a
# resident write costs where the machine does not charge for moves, so those
# two within 25 %), in well under a second.
cat > "$tmp/pagecost.py" <<'EOF'
import json, resource, subprocess, sys, time
MODES = ("resident", "munmap", "dontneed", "move_2m", "move_64k")
def sane(pc):
    assert "error" not in pc, pc
    for k in MODES:
        assert isinstance(pc[k], (int, float)) and pc[k] > 0, (k, pc)
        assert 0 < pc["min"][k] <= pc[k] <= pc["max"][k], (k, pc)
    r = pc["resident"]
    assert r < pc["munmap"] and r < pc["dontneed"], pc
    assert r <= 1.25 * pc["move_2m"] and r <= 1.25 * pc["move_64k"], pc
    assert pc["reps"] == 7 and pc["region_bytes"] == 4 << 20 and pc["unit"] == "us per 4 KiB page written", pc
    assert 0 < pc["seconds"] < 1.0, pc["seconds"]
what = sys.argv[1]
if what == "context":
    sane(json.loads(open(sys.argv[2]).readline())["page_costs"])
elif what == "command":
    # the CPU time of the whole command too: a measure of its cost that no load inflates
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    out = subprocess.run([sys.argv[2], "pagecost"], capture_output=True, text=True, check=True).stdout
    r1, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic() - t0
    cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    j = json.loads(out)
    assert j["schema"] == "hakmem-bench-pagecost/1", j
    sane(j["page_costs"])
    assert cpu < 1.0, (cpu, wall)
else:
    raise SystemExit("unknown check " + what)
EOF
check "context row: the machine's five page costs, positive, the resident write cheapest, measured in < 1 s" \
  $PY "$tmp/pagecost.py" context "$tmp/run/raw.jsonl"
check "hakbench pagecost: the same five costs as one JSON object, in < 1 s (wall and CPU)" \
  $PY "$tmp/pagecost.py" command "$HB"
check "hakbench pagecost with an argument rejected" rejects $HB pagecost extra
check "run says the page costs on stderr" grep -qE '^hakbench: page costs, us per 4 KiB page written: resident [0-9.]+, munmap' "$tmp/run.stderr"

# Minor faults per op in every timed and stats row; in a stats row the pages
# moved and decommitted per op from hakmem's statistics (total.moved_bytes,
# total.decommitted_bytes), null when the library does not count them. A
# preload built here stands for a library that counts them: it serves malloc
# (forwarding to the C library's) and at exit writes a statistics line with
# 40,960,000 bytes moved and 4,096,000 decommitted into HAKMEM_STATS_FILE.
cat > "$tmp/movestats.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
void *malloc(size_t n) { return __libc_malloc(n); }
void free(void *p) { __libc_free(p); }
void *calloc(size_t n, size_t s) { return __libc_calloc(n, s); }
void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
__attribute__((destructor)) static void write_stats(void)
{
    const char *path = getenv("HAKMEM_STATS_FILE");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f) return;
    static const char *const keys[] = { "in_use_bytes", "magazine_bytes", "transfer_bytes", "slab_free_bytes",
        "slab_tail_bytes", "pool_bytes", "superslab_free_bytes", "superslab_dirty_bytes", "medium_free_bytes",
        "medium_dirty_bytes", "large_cache_bytes", "large_dirty_bytes", "metadata_bytes", "mapped_bytes", "resident_bytes",
        "small_in_use_bytes", "medium_in_use_bytes", "large_in_use_bytes" };
    fprintf(f, "{\"hakmem\":\"0\",\"variant\":\"movestats\"");
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) fprintf(f, ",\"%s\":0", keys[i]);
    fprintf(f, ",\"process_rss_bytes\":4096,\"resident\":{\"slabs\":0},\"total\":{\"os_moves\":7,"
               "\"released_bytes\":8192,\"moved_bytes\":40960000,\"decommitted_bytes\":4096000}}\n");
    fclose(f);
}
EOF
mkdir -p "$tmp/hb2/movestats"
if cc -shared -fPIC -O2 -o "$tmp/hb2/movestats/libhakmem.so" "$tmp/movestats.c" 2>"$tmp/movestats.err"; then
  ln -s "$PWD/build/$variant" "$tmp/hb2/$variant"
  $HB run --suite "$tmp/one.suite" --allocators "$tmp/alloc.tsv" --hakmem "$variant,movestats" --build-dir "$tmp/hb2" \
    --alloc "glibc,hakmem-$variant,hakmem-movestats" --workload-dir "$tmp/wl" --reps 1 --no-floor --out "$tmp/pagework" \
    --quiet >/dev/null 2>&1
  cat > "$tmp/pagework.py" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
runs = [r for r in rows if r.get("type") == "run"]
assert runs and all(r["status"] == "ok" for r in runs), [(r["allocator"], r["mode"], r["reason"]) for r in runs]
for r in runs:  # fakewl --ops 1000: 2000 ops
    assert r["ops"] == 2000 and r["minflt"] > 0 and abs(r["minflt_per_op"] - r["minflt"] / 2000) < 1e-9, r
stats = {r["allocator"]: r for r in runs if r["mode"] == "stats"}
assert sorted(stats) == sorted(["hakmem-movestats", "hakmem-" + sys.argv[2]]), stats
m = stats["hakmem-movestats"]
assert m["moved_pages_per_op"] == 5.0 and m["decommitted_pages_per_op"] == 0.5, m
assert m["hakmem_stats"]["end"]["total"] == {"os_moves": 7, "released_bytes": 8192, "moved_bytes": 40960000,
                                             "decommitted_bytes": 4096000}, m["hakmem_stats"]["end"]
real = stats["hakmem-" + sys.argv[2]]
t = real["hakmem_stats"]["end"]["total"]
assert "os_moves" in t and "released_bytes" in t and "os_decommits" in t, t
# absent, not zero, until the library counts them
for k, b in (("moved_pages_per_op", "moved_bytes"), ("decommitted_pages_per_op", "decommitted_bytes")):
    assert k in real and (real[k] is None) == (b not in t), (k, real[k], t)
    if b in t:
        assert abs(real[k] - t[b] / 4096 / real["ops"]) < 1e-9, (k, real[k], t)
assert not [r for r in runs if r["mode"] == "measure" and "moved_pages_per_op" in r]
EOF
  check "rows: minor faults per op; a stats row's pages moved and decommitted per op from hakmem's statistics, null when not counted" \
    $PY "$tmp/pagework.py" "$tmp/pagework/raw.jsonl" "$variant"
  $PY scripts/report.py "$tmp/pagework" --no-plots >/dev/null
  check "report: a variant that counts moves shows them per op, one that does not says \"not counted\"" \
    bash -c "grep -qE '^\| few \| hakmem-movestats \| [^|]+ \| 5 \| 0.5 \|$' '$tmp/pagework/report.md' \
      && grep -qE '^\| few \| glibc \| [^|]+ \| – \| – \|$' '$tmp/pagework/report.md' \
      && grep -qE '^\| few \| hakmem-$variant \| [^|]+ \| (not counted|[0-9.e+-]+) \| (not counted|[0-9.e+-]+) \|$' '$tmp/pagework/report.md'"
else
  check "the statistics preload builds ($(head -c 200 "$tmp/movestats.err"))" false
fi
check "callgrind rows carry no faults per op (valgrind's faults are not the program's)" \
  bash -c "! test -f '$tmp/cg/raw.jsonl' || $PY -c \"import json,sys; rs=[json.loads(l) for l in open('$tmp/cg/raw.jsonl')]; sys.exit(any('minflt_per_op' in r for r in rs if r.get('mode')=='callgrind'))\""

# The report from the fixture with page costs and page-table work added:
# the costs in the machine section and beside the table, faults per op for
# every allocator (medians, best in bold, ratio to the best reference; rows
# from before minflt_per_op priced as minflt / ops), moved and decommitted
# pages for the hakmem variant where its stats run counted them.
pw=$tmp/pagework-report
mkdir -p "$pw" "$pw-uncounted" && $PY - "$pw/raw.jsonl" "$pw-uncounted/raw.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open("tests/harness/fixture-raw.jsonl")]
rows[0]["page_costs"] = {"unit": "us per 4 KiB page written", "resident": 0.055, "munmap": 11.0, "dontneed": 10.5,
                         "move_2m": 0.11, "move_64k": 0.96, "min": {}, "max": {}, "region_bytes": 4 << 20, "reps": 7,
                         "seconds": 0.25}
per_op = {"hakmem-test": 0.5, "glibc": 0.25, "jemalloc": 1.0, "floor": 0.125}
for r in rows:
    if r.get("type") == "run" and r["label"] == "burst_idle" and r["mode"] == "measure":
        r["minflt_per_op"] = per_op[r["allocator"]]
    if r.get("type") == "run" and r["label"] == "burst_idle" and r["mode"] == "stats":
        r["moved_pages_per_op"], r["decommitted_pages_per_op"] = 1.5, 0.25
with open(sys.argv[1], "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
for r in rows:  # the same stats run from a library that does not count moves
    if r.get("type") == "run" and r["mode"] == "stats":
        r["moved_pages_per_op"] = r["decommitted_pages_per_op"] = None
with open(sys.argv[2], "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
EOF
$PY scripts/report.py "$pw" --no-plots >/dev/null
$PY scripts/report.py "$pw-uncounted" --no-plots >/dev/null
cat > "$tmp/pagework-report.py" <<'EOF'
import re, sys
md = open(sys.argv[1]).read()
sec = md.split("\n## Page-table work per operation\n", 1)[1].split("\n## ", 1)[0]
rows = [l for l in sec.splitlines() if l.startswith("| ")]
assert rows == [
    "| workload | allocator | minor faults/op | pages moved/op | pages decommitted/op |",
    "| tiny | hakmem-test | **0.00025** (±0%, 1.00×) | – | – |",
    "| tiny | glibc | **0.00025** (±0%, 1.00×) | – | – |",
    "| tiny | jemalloc | **0.00025** (±0%, 1.00×) | – | – |",
    "| burst_idle | hakmem-test | 0.5 (±0%, 2.00×) | 1.5 | 0.25 |",
    "| burst_idle | glibc | **0.25** (±0%, 1.00×) | – | – |",
    "| burst_idle | jemalloc | 1 (±0%, 4.00×) | – | – |"], rows
cost = ("Page costs, µs per 4 KiB page written (median of 7 writes of 4 MiB, measured once before the first run in "
        "250 ms): a resident write (pages mapped and written) 0.055; after munmap (a fresh mapping: a page fault per "
        "page) 11; after MADV_DONTNEED (a page fault per page) 10.5; after an mremap move to a 2 MiB-aligned address "
        "0.11; after an mremap move to an address 64 KiB past 2 MiB 0.96.")
assert cost in sec, sec
assert "- " + cost in md.split("\n## Machine and noise\n", 1)[1].split("\n## ", 1)[0]
EOF
check "report: Page-table work per operation: faults per op of every allocator, moved and decommitted pages of hakmem, the page costs beside" \
  $PY "$tmp/pagework-report.py" "$pw/report.md"
check "report: a stats run whose library does not count moves: \"not counted\" (absent, not zero), and said why" \
  bash -c "grep -qxF '| burst_idle | hakmem-test | 0.5 (±0%, 2.00×) | not counted | not counted |' '$pw-uncounted/report.md' \
    && grep -qF 'not counted: the variant' '$pw-uncounted/report.md' && ! grep -qF 'not counted: the variant' '$pw/report.md'"
check "report: Markdown and HTML say the same (page-table work)" \
  $PY tests/harness/report-parity.py "$pw/report.md" "$pw/report.html"
check "report: a raw file from before the page costs says so" \
  grep -qxF -- "- Page costs: not measured (this raw.jsonl was written before the runner measured them)." "$md"

finish harness
