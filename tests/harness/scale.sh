#!/usr/bin/env bash
# tests/harness/scale.sh — the harness at scale, with real workloads
# (`make test-harness-scale`, part of `make test`):
#   ab     two revisions of a throwaway copy of this repository: one with a
#          spin in free (never committed anywhere else) gets "slower" on every
#          workload, two with the same code "no difference detected"; the
#          working tree's snapshot (+wt) and revision.json
#   busy   the quick suite beside two busy loops: the warning at the start, in
#          the rows and at the top of the report
#   slurm  a one-node Slurm cluster of its own (munged, slurmctld, slurmd on
#          ports and files of this test, stopped at the end): the quick suite
#          as 3 shards of one job array, merged, has every case of an
#          unsharded run; SKIP when slurm-wlm and munge are not installed
# Prints PASS/FAIL/SKIP lines and a count (tests/lib.sh), exits 1 on any failure. About
# 3 minutes on a busy 2-core machine (revision builds about 40 s, the A/B runs
# 20 s, busy 15 s, Slurm 1 minute).
set -u
. "$(dirname "$0")/../lib.sh"
unset LD_PRELOAD
cd "$(dirname "$0")/../.."
root=$PWD
HB=$root/build/harness/hakbench
PY=/usr/bin/python3
variant=${HARNESS_VARIANT:-hybrid}
TEST_PREFIX="harness-scale: "
for f in "$HB" build/workloads/tiny build/workloads/random_mixed "build/$variant/libhakmem.so"; do
  [ -e "$f" ] || { fail "$f is missing (make test-harness-scale builds it)"; finish harness-scale; }
done
tmp=$(mktemp -d /tmp/hakmem-scale.XXXXXX)
loops=()
cleanup() {
  for p in "${loops[@]}"; do kill "$p" 2>/dev/null; done
  [ -n "${slurm_stop:-}" ] && $slurm_stop
  if [ -n "${KEEP_TMP:-}" ]; then echo "harness-scale: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
printf 'glibc\tsystem\tglibc malloc\n' > "$tmp/alloc.tsv"

# SCALE_PARTS=ab,busy,slurm (default all) runs only those parts; KEEP_TMP=1
# keeps the temporary directory (for a look after a failure).
part() { [[ ",${SCALE_PARTS:-ab,busy,slurm}," == *",$1,"* ]]; }

# ---- A/B of two revisions ---------------------------------------------------------
if part ab; then
# A throwaway repository with this tree (as it is, uncommitted changes
# included) as commit A; B = A with a spin of 200 volatile iterations at the
# top of hak_free (some 300 ns a free: 8x to 25x the workloads' time per op);
# C = A with a README change only (the same library code).
repo=$tmp/repo
mkdir -p "$repo"
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$repo"
gitc() { git -C "$repo" -c user.name=test -c user.email=test@localhost "$@"; }
gitc init -q -b main . && gitc add -A && gitc commit -q -m "A: as it is"
anchor='^HAK_API void hak_free(void \*p) {$'
if [ "$(grep -c "$anchor" "$repo/core/malloc_api.c")" != 1 ]; then
  fail "cannot plant the spin: 'HAK_API void hak_free(void *p) {' is not one line of core/malloc_api.c (update this test)"
fi
gitc checkout -q -b slow
sed -i "s/$anchor/&\n  for (volatile int hak_test_spin = 0; hak_test_spin < 200; hak_test_spin++) {}/" "$repo/core/malloc_api.c"
gitc commit -q -am "B: a spin in free"
gitc checkout -q -b same main
echo "a line that changes no code" >> "$repo/README.md"
gitc commit -q -am "C: README only"
gitc checkout -q main
# Two workloads of some 15 ms each under A, 12 interleaved repetitions a
# side, 99.9 % family-wise (each interval at 99.95 %): two identical builds
# are called different at most once in 1000 runs of this test (the runs of
# A and C are exchangeable: same code, interleaved). The interval is the
# 16th smallest to the 16th largest of the 144 ratios of a B run to an A run,
# so even one A run stalled beyond every B run (12 ratios below 1) cannot
# hide the spin, whose 8x to 25x no noise of a busy machine (+-50 %) reaches.
cat > "$tmp/ab.suite" <<'EOF'
tiny   tiny --pairs 1m --batch 64 --min-size 8 --max-size 128 --verify touch
mixed  random_mixed --slots 1024 --steps 300k --min-size 16 --max-size 1040 --verify touch
EOF
ab() { # ab <out> <A> <B>
  "$HB" ab --repo "$repo" --rev-dir "$tmp/rev" --a "$2" --b "$3" --variant "$variant" --suite "$tmp/ab.suite" \
    --reps 12 --confidence 0.999 --out "$tmp/$1" --quiet >"$tmp/$1.stdout" 2>"$tmp/$1.stderr" \
    && $PY scripts/report.py "$tmp/$1" --no-plots >/dev/null && $PY scripts/verdict "$tmp/$1" > "$tmp/$1.verdict"
}
ab spin main slow; st_spin=$?
ab same main same; st_same=$?
check "ab builds both revisions and runs them (spin)" test "$st_spin" -eq 0
check "ab builds both revisions and runs them (identical code)" test "$st_same" -eq 0
cat > "$tmp/ab.py" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1] + "/summary.json"))
ctx = json.loads(open(sys.argv[1] + "/raw.jsonl").readline())
what = sys.argv[2]
ab = s["ab"]
verdicts = {r["label"]: r["verdict"] for r in ab["rows"]}
if what == "slower":
    assert verdicts == {"tiny": "slower", "mixed": "slower"}, verdicts
    assert all(r["low"] > 1.5 for r in ab["rows"]), ab["rows"]
elif what == "same":
    assert verdicts == {"tiny": "no difference detected", "mixed": "no difference detected"}, verdicts
    assert all(r["low"] <= 1 <= r["high"] for r in ab["rows"]), ab["rows"]
elif what == "names":
    a, b = ctx["ab"]["a"], ctx["ab"]["b"]
    assert a.startswith("hakmem-%s@" % sys.argv[3]) and b.startswith("hakmem-%s@" % sys.argv[3]) and a != b, (a, b)
    assert ctx["ab"]["confidence"] == 0.999 and ctx["runner"]["reps"] == 12
    al = {x["name"]: x for x in ctx["allocators"]}
    assert set(al) == {a, b}, al.keys()  # no references, no floor unless asked
    assert al[b]["revision"]["subject"] == "B: a spin in free" and al[b]["revision"]["requested"] == "slow"
    assert al[a]["revision"]["worktree_changes"] is False and len(al[a]["revision"]["commit"]) == 40
    assert "/rev/" + al[a]["revision"]["commit"] + "/build/" in al[a]["library"], al[a]["library"]
    runs = [json.loads(l) for l in open(sys.argv[1] + "/raw.jsonl") if '"type":"run"' in l]
    assert len(runs) == 2 * 2 * 12 and all(r["status"] == "ok" for r in runs), [r["reason"] for r in runs]
    # interleaved: within each repetition both revisions, in alternating order
    first = [[r["allocator"] for r in runs if r["rep"] == k and r["label"] == "tiny"][0] for k in range(12)]
    assert first[0] != first[1] and first[0] == first[2], first
else:
    raise SystemExit("unknown check " + what)
EOF
check "ab: the revision with a spin in free is slower on every workload" $PY "$tmp/ab.py" "$tmp/spin" slower
check "ab: two revisions with the same code: no difference detected" $PY "$tmp/ab.py" "$tmp/same" same
check "ab: the allocators are hakmem-<variant>@<sha>, with their revision, interleaved, nothing else" \
  $PY "$tmp/ab.py" "$tmp/spin" names "$variant"
check "ab: the verdict table names the slowdown" \
  bash -c "grep -qE '^\| tiny \|.*\| \*\*slower\*\* \|' '$tmp/spin.verdict' && grep -q 'B is .*B: a spin in free' '$tmp/spin.verdict'"
check "ab: the report opens with the verdict (Markdown and HTML)" \
  bash -c "grep -q '^## A/B: B against A' '$tmp/spin/report.md' && grep -q '<h2>A/B: B against A</h2>' '$tmp/spin/report.html' \
    && $PY tests/harness/report-parity.py '$tmp/spin/report.md' '$tmp/spin/report.html'"
check "ab: the revisions' worktrees under the rev dir, registered in the repository" \
  bash -c "[ \$(git -C '$repo' worktree list | grep -c '$tmp/rev/') -eq 3 ]"
# run --rev: a past revision as hakmem-<variant> (one history series across
# commits), its commit the one the history entry names.
"$HB" run --rev slow --repo "$repo" --rev-dir "$tmp/rev" --variant "$variant" --suite "$tmp/ab.suite" \
  --allocators "$tmp/alloc.tsv" --reps 1 --no-floor --no-stats --out "$tmp/past" --quiet >/dev/null 2>&1 \
  && $PY scripts/report.py "$tmp/past" --no-plots >/dev/null
check "run --rev: hakmem-<variant> built from that revision, and the history names its commit" $PY -c "
import json, subprocess
sha = subprocess.check_output(['git', '-C', '$repo', 'rev-parse', 'slow'], text=True).strip()
ctx = json.loads(open('$tmp/past/raw.jsonl').readline())
al = {a['name']: a for a in ctx['allocators']}
assert set(al) == {'hakmem-$variant', 'glibc'} and al['hakmem-$variant']['revision']['commit'] == sha, al.keys()
e = [json.loads(l) for l in open('$tmp/history.jsonl')]
assert [x['revision'] for x in e if x['run'] == 'past'] == [sha], e[-1]"
# The working tree: uncommitted and untracked changes make a snapshot commit
# (+wt), the same changes the same sha; a clean tree is HEAD itself.
echo "int hak_test_untracked;" > "$repo/untracked.c"
echo "// changed" >> "$repo/core/malloc_api.c"
w1=$(scripts/revbuild --repo "$repo" --rev-dir "$tmp/rev" --variant "$variant" --worktree 2>/dev/null)
w2=$(scripts/revbuild --repo "$repo" --rev-dir "$tmp/rev" --variant "$variant" --worktree 2>/dev/null)
check "revbuild --worktree: uncommitted changes give hakmem-<v>@<HEAD>+wt, the same changes the same build" \
  bash -c "[[ '$w1' == hakmem-$variant@\$(git -C '$repo' rev-parse --short=9 HEAD)+wt* ]] && [ '$w1' = '$w2' ] && [ -f '${w1#*	}' ]"
check "revbuild --worktree: revision.json says uncommitted changes, on which HEAD, and the snapshot has them" \
  $PY -c "
import json, os, subprocess
lib = '''${w1#*	}'''
r = json.load(open(os.path.join(os.path.dirname(lib), 'revision.json')))
head = subprocess.check_output(['git', '-C', '$repo', 'rev-parse', 'HEAD'], text=True).strip()
assert r['worktree_changes'] is True and r['base'] == head and r['commit'] != head, r
files = subprocess.check_output(['git', '-C', '$repo', 'ls-tree', '-r', '--name-only', r['commit']], text=True).split()
assert 'untracked.c' in files, files[:5]
assert 'hak_test_untracked' not in open('$repo/core/malloc_api.c').read()"
check "the repository's own index and files are left as they were" \
  bash -c "[ \"\$(git -C '$repo' status --porcelain)\" = \"\$(printf ' M core/malloc_api.c\n?? untracked.c')\" ]"
git -C "$repo" checkout -q -- core/malloc_api.c && rm "$repo/untracked.c"
w3=$(scripts/revbuild --repo "$repo" --rev-dir "$tmp/rev" --variant "$variant" --worktree 2>/dev/null)
check "revbuild --worktree: a clean working tree is HEAD's build" \
  test "${w3%%	*}" = "hakmem-$variant@$(git -C "$repo" rev-parse --short=9 HEAD)"
check "revbuild: an unknown revision rejected with a clear line" \
  bash -c "scripts/revbuild --repo '$repo' --rev-dir '$tmp/rev' nosuchrev 2>&1 >/dev/null | grep -q \"unknown revision 'nosuchrev'\"; [ \${PIPESTATUS[0]} -eq 2 ]"
check "ab: the same revision twice rejected" \
  bash -c "'$HB' ab --repo '$repo' --rev-dir '$tmp/rev' --a main --b main --suite '$tmp/ab.suite' --out '$tmp/x' 2>&1 >/dev/null | grep -q 'same revision'; [ \${PIPESTATUS[0]} -eq 2 ] && [ ! -e '$tmp/x/raw.jsonl' ]"
check "make ab passes A, B, VARIANT, SUITE, REPS, CONFIDENCE and REPO on to hakbench ab" \
  bash -c "make -n --no-print-directory ab A=x1 B=y2 SUITE=standard REPS=9 CONFIDENCE=0.99 REPO=/r 2>/dev/null | tr -d '\\\\' | tr '\\n' ' ' | tr -s ' ' \
    | grep -F -- \"ab --a 'x1' --b 'y2' --variant $variant --suite harness/suites/standard.suite --reps 9 --confidence 0.99\" | grep -qF -- \"--repo '/r'\""

check "make bench SLURM=1 passes the suite, SHARDS, PARTITION and SLURM_ARGS to scripts/slurm" \
  bash -c "make -n --no-print-directory bench SLURM=1 SHARDS=4 PARTITION=p1 SLURM_ARGS=--qos=q 2>/dev/null | tr -d '\\\\' | tr '\\n' ' ' | tr -s ' ' \
    | grep -qF -- 'scripts/slurm --suite harness/suites/standard.suite --shards 4 --partition p1 --sbatch-arg --qos=q --out'"
fi

# ---- the busy machine -------------------------------------------------------------
if part busy; then
for k in 1 2; do ( while :; do :; done ) & loops+=($!); done
sleep 0.3
"$HB" run --suite harness/suites/quick.suite --allocators "$tmp/alloc.tsv" --reps 1 --no-floor --no-stats \
  --timeout 120 --out "$tmp/busy" --quiet >/dev/null 2>"$tmp/busy.stderr"
st=$?
for p in "${loops[@]}"; do kill "$p" 2>/dev/null; done
wait "${loops[@]}" 2>/dev/null
loops=()
$PY scripts/report.py "$tmp/busy" --no-plots >/dev/null
check "busy: the quick suite ran beside two busy loops" test "$st" -eq 0
check "busy: said at the start, on stderr" grep -q '^hakbench: busy machine, time figures unreliable: ' "$tmp/busy.stderr"
check "busy: the context and end rows measured the loops (others' CPUs and runnable count)" $PY -c "
import json
rows = [json.loads(l) for l in open('$tmp/busy/raw.jsonl')]
s, e = rows[0]['load_start'], rows[-1]['load']
assert s['busy'] is True and s['other_cpus'] >= 1.0 and s['other_runnable'] >= 1.5, s
assert e['busy'] is True and e['other_cpus'] >= 0.5, e
runs = [r for r in rows if r['type'] == 'run']
assert len(runs) == 13 and all(r['other_cpu_s'] is not None for r in runs)"
for f in report.md report.html; do
  check "busy: the report's headline says time figures are unreliable ($f)" \
    bash -c "grep -m1 -E '^(## |<h2>)' '$tmp/busy/$f' | grep -q 'Time figures unreliable: the machine was busy' \
      && grep -q 'other runnable processes at the start' '$tmp/busy/$f'"
done
$PY - "$tmp" <<'EOF'
import json, os, sys
rows = [json.loads(l) for l in open(os.path.join(sys.argv[1], "busy", "raw.jsonl"))]
rows[0]["load_start"]["busy"] = False
rows[-1]["load"]["busy"] = False
os.makedirs(os.path.join(sys.argv[1], "quiet"))
with open(os.path.join(sys.argv[1], "quiet", "raw.jsonl"), "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
EOF
$PY scripts/report.py "$tmp/quiet" --no-plots >/dev/null
check "busy: a run the runner found quiet has no such headline, and says its load" \
  bash -c "! grep -q 'Time figures unreliable' '$tmp/quiet/report.md' && grep -q '^- Machine load before the first run: ' '$tmp/quiet/report.md'"
check "busy: the history entry says busy" \
  $PY -c "import json; e=[json.loads(l) for l in open('$tmp/history.jsonl')]; assert [x['busy'] for x in e if x['run']=='busy']==[True]"

fi

# ---- a one-node Slurm cluster -----------------------------------------------------
if part slurm; then
missing_slurm=
for c in munged mungekey slurmctld slurmd sbatch sinfo scontrol; do command -v $c >/dev/null || missing_slurm+=" $c"; done
slurm_checks=("the quick suite as 3 shards of one job array, merged: every case of an unsharded run"
              "the merged report lists every case of the unsharded report, in its order"
              "every shard ran as a task of one array, on this node, after --setup"
              "the merged rows keep their host and shard; the report names the shards")
if [ -n "$missing_slurm" ]; then
  for w in "${slurm_checks[@]}"; do skip "slurm: $w" "slurm-wlm or munge not installed:$missing_slurm; scripts/install-deps.sh test installs them"; done
else
  # One cluster at a time on this machine (another worktree's make test may
  # run this test too); ports picked free by the kernel.
  exec 8>/tmp/hakmem-slurm-test.lock
  flock 8
  sl=$tmp/slurm
  mkdir -p "$sl/state" "$sl/spool"
  host=$(hostname)
  read -r p1 p2 < <($PY -c "
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(('127.0.0.1', 0))
print(*[x.getsockname()[1] for x in s])")
  mungekey -c -k "$sl/munge.key" -b 1024 2>/dev/null && chmod 600 "$sl/munge.key"
  : > "$sl/plugstack.conf"
  cat > "$sl/slurm.conf" <<EOF
ClusterName=hakbenchtest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=$(id -un)
SlurmdUser=root
SlurmctldPort=$p1
SlurmdPort=$p2
AuthType=auth/munge
AuthInfo=socket=$sl/munge.sock
CredType=cred/munge
StateSaveLocation=$sl/state
SlurmdSpoolDir=$sl/spool
SlurmctldPidFile=$sl/slurmctld.pid
SlurmdPidFile=$sl/slurmd.pid
SlurmctldLogFile=$sl/slurmctld.log
SlurmdLogFile=$sl/slurmd.log
PlugStackConfig=$sl/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=hakbench Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF=$sl/slurm.conf
  slurm_stop() {
    scontrol shutdown >/dev/null 2>&1
    for f in slurmctld slurmd munged; do
      [ -f "$sl/$f.pid" ] || continue
      local pid; pid=$(cat "$sl/$f.pid")
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill "$pid" 2>/dev/null
    done
  }
  slurm_stop=slurm_stop
  munged -f --socket="$sl/munge.sock" --key-file="$sl/munge.key" --log-file="$sl/munged.log" \
    --pid-file="$sl/munged.pid" --seed-file="$sl/munged.seed" \
    && slurmctld -f "$sl/slurm.conf" && slurmd -f "$sl/slurm.conf"
  up=no
  for _ in $(seq 100); do
    [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && { up=yes; break; }
    sleep 0.2
  done
  if [ "$up" != yes ]; then
    fail "slurm: the one-node cluster did not come up (logs: $sl/*.log)"
    tail -n 5 "$sl"/*.log
  else
    opts=(--allocators "$tmp/alloc.tsv" --hakmem "$variant" --reps 1 --no-stats --timeout 120)
    "$HB" run --suite harness/suites/quick.suite "${opts[@]}" --out "$tmp/whole" --quiet >/dev/null 2>&1
    $PY scripts/report.py "$tmp/whole" --no-plots >/dev/null
    scripts/slurm --suite harness/suites/quick.suite --shards 3 --out "$tmp/sharded" --partition hakbench \
      --setup 'echo "setup of task $SLURM_ARRAY_TASK_ID on $(hostname)" > '"$tmp"'/setup-$SLURM_ARRAY_TASK_ID' \
      -- "${opts[@]}" >"$tmp/slurm.stdout" 2>"$tmp/slurm.stderr"
    st=$?
    [ "$st" -eq 0 ] || tail -n 5 "$tmp/slurm.stderr"
    cat > "$tmp/slurm.py" <<'EOF'
import json, re, sys
def rows(d):
    return [json.loads(l) for l in open(d + "/raw.jsonl")]
whole, merged = rows(sys.argv[1]), rows(sys.argv[2])
what = sys.argv[3]
key = lambda r: (r["label"], r["allocator"], r["rep"], r["mode"])
if what == "cases":
    w = sorted(key(r) for r in whole if r["type"] == "run")
    m = sorted(key(r) for r in merged if r["type"] == "run")
    assert w == m, (set(w) ^ set(m))
    assert len(w) == 13 * 3, len(w)  # the quick suite's cases x (glibc, hakmem, the floor)
    assert all(r["status"] == "ok" for r in merged if r["type"] == "run"), \
        [(key(r), r["reason"]) for r in merged if r["type"] == "run" and r["status"] != "ok"]
    assert [c["label"] for c in merged[0]["cases"]] == [c["label"] for c in whole[0]["cases"]]
    assert sorted(r["seq"] for r in merged if r["type"] == "run") == list(range(1, len(m) + 1))
    e = merged[-1]
    assert e["type"] == "end" and e["ok"] == len(m) and e["interrupted"] is False
elif what == "report":
    def table(d, title):
        md = open(d + "/report.md").read()
        sec = md.split("\n### " + title, 1)[1].split("\n#", 1)[0]
        return [l.split(" | ")[0][2:] for l in sec.splitlines() if l.startswith("| ") and not l.startswith("| workload")]
    for t in ("time per op (", "peak RSS ("):
        assert table(sys.argv[1], t) == table(sys.argv[2], t), (t, table(sys.argv[1], t), table(sys.argv[2], t))
    other = lambda d: [x for x in re.findall(r"^\| (\w+) \| (glibc|hakmem-\w+) \|",
                                             open(d + "/report.md").read().split("\n## Other figures", 1)[1], re.M)
                       if x[0] != "workload"]
    assert other(sys.argv[1]) == other(sys.argv[2]) and len(other(sys.argv[1])) == 26, other(sys.argv[2])
elif what == "hosts":
    import socket
    host = socket.gethostname()
    ctx = merged[0]
    assert [s["index"] for s in ctx["shards"]] == [1, 2, 3] and ctx["merged"]["hosts"] == [host]
    plan = json.load(open(sys.argv[2] + "/plan.json"))
    assert [s["cases"] for s in ctx["shards"]] == [p["cases"] for p in plan["shards"]]
    for r in merged[1:-1]:
        assert r["host"] == host and r["shard"] in (1, 2, 3), r
        assert r["label"] in ctx["shards"][r["shard"] - 1]["cases"]
    md = open(sys.argv[2] + "/report.md").read()
    assert "## Shards and hosts" in md and "This run joins 3 shards" in md
    assert len(re.findall(r"^\| [123]/3 \| " + re.escape(host) + r" \|", md, re.M)) == 3
else:
    raise SystemExit("unknown check " + what)
EOF
    check "slurm: ${slurm_checks[0]}" \
      bash -c "[ $st -eq 0 ] && $PY '$tmp/slurm.py' '$tmp/whole' '$tmp/sharded' cases"
    check "slurm: ${slurm_checks[1]}" $PY "$tmp/slurm.py" "$tmp/whole" "$tmp/sharded" report
    check "slurm: ${slurm_checks[2]}" bash -c "
      job=\$(cat '$tmp/sharded/slurm/job-id') && [ -n \"\$job\" ] &&
      for i in 1 2 3; do
        grep -qx \"hakbench shard \$i/3: Slurm job \${job}_\$i on $host\" '$tmp/sharded/slurm/shard-'\$i.out &&
        grep -qx \"setup of task \$i on $host\" '$tmp/setup-'\$i || exit 1
      done"
    check "slurm: ${slurm_checks[3]}" $PY "$tmp/slurm.py" "$tmp/whole" "$tmp/sharded" hosts
  fi
  slurm_stop
  slurm_stop=
  check "slurm: the cluster's daemons stopped" \
    bash -c "for f in slurmctld slurmd munged; do [ -f '$sl/'\$f.pid ] || continue; ! kill -0 \$(cat '$sl/'\$f.pid) 2>/dev/null || exit 1; done"
  unset SLURM_CONF
fi
fi

finish harness-scale
