#!/usr/bin/env bash
# tests/tracker.sh - the allocation tracker, its report, compile and replay.
#
#   - 100 threads at once, 5 of them never exiting: every call each thread
#     made is in its file once, in order (tests/tracker/check_threads.py);
#     the same check must fail under a tracker built to drop one event in
#     1000 and under one built to write one free or realloc in 1000 twice
#     (build/tests/libhaktrack-drop.so, libhaktrack-dup.so);
#   - errno: every call leaves it as the allocator did, in full and sampled
#     mode with stacks and when recording cannot start;
#   - sampled mode: exactly the blocks the address hash and the threshold
#     select are recorded, with their frees, about 1 in N calls are drawn
#     (tests/tracker/check_sampled.py); the estimates of a churning program
#     (calls, blocks and bytes never freed) are near its own counts; a long
#     run (7 M blocks at distinct addresses, 3.5 M of them tracked, through
#     a tracker that does not write, over tests/tracker/bump.c) costs as
#     much per call at its end as at its start; the overview preset; the
#     95 % intervals of the estimates hold the exact figures at about their
#     rate over 200 sampled traces of a known population, exact figures have
#     none, trace.html shows them as "~X ± Y (95 %)"
#     (tests/tracker/make_sampled.py, tests/tracker/check_intervals.py);
#   - fork with the child ending in _exit, exit and exec, while another
#     thread allocates: the child is its own process in the trace, with the
#     forking thread only, and neither holds the other's calls;
#   - the file format (version 3): at most 2.5 bytes a record on the 100
#     threads' trace; a program killed by SIGKILL, a file cut mid-frame
#     (tests/tracker/zstd_frames.py finds where its complete frames end), a
#     corrupt zstd frame, a corrupt version 2 record (make_trace.py), a
#     foreign file, an empty directory: read up to the last complete frame
#     and said so, or a clear error naming the file;
#   - a full disk (a 64 KiB tmpfs in a private mount namespace, unshare -m;
#     SKIP where that is not allowed), a file size limit (ulimit -f with
#     SIGXFSZ ignored: writes fail with EFBIG) and an unwritable directory:
#     one message, the program's output and exit status unchanged;
#   - the report on a trace with known figures (tests/tracker/make_trace.py);
#     calls to allocation functions counted at their own call sites, a
#     realloc's too (tests/tracker/realloc_sites.c: 10,000 reallocs outrank
#     100 mallocs by calls and by bytes, as in heaptrack); trace.html's plots
#     of one thread and of 101 (tests/tracker/check_plots.py: whole thread
#     indices, realloc chains in counts, sizes in bytes, lifetimes in time);
#     allocation sites, the stacks merged by the function that called the
#     allocator (tests/tracker/sites.c, tests/tracker/check_sites.py), the
#     peak memory consumers, temporary allocations; hakmem-trace folded
#     (exactly the expected lines; bad arguments exit 2); hakmem-trace diff
#     (two runs of sites.c with other arguments; a trace against itself);
#   - compile and replay: a recorded multi-threaded trace and a recorded
#     single-threaded one under glibc, jemalloc, mimalloc, tcmalloc and
#     every built hakmem variant (build/*/libhakmem.so; SKIP when not
#     installed, and for mimalloc 2.0.9's misaligned aligned blocks, a known
#     upstream bug): same checksum, peak_live_bytes equal to the report's
#     peak; --verify touch and --floor give the same checksum, and --floor
#     never calls the allocator; a broken allocator is caught; bad input
#     exits 2;
#   - recording over jemalloc and hakmem with stacks: frames named from the
#     program's ELF symbol table.
#
# Output: "PASS tracker: ...", "FAIL tracker: ...", "SKIP tracker: ..."
# lines, then "tracker: N passed, M failed, K skipped" (tests/lib.sh). Exit
# 1 on any failure. About 15 s on 2 cores.
set -u
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
B=build
T=$B/hakmem-trace
LIB=$B/libhaktrack.so
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
unset LD_PRELOAD HAKTRACK_DIR HAKTRACK_MODE HAKTRACK_STACKS HAKTRACK_THRESHOLD HAKTRACK_EVERY HAKTRACK_DEPTH

TEST_PREFIX="tracker: "
# check <label> <condition>: here the condition is shell text, evaluated (in
# place of tests/lib.sh's check <what> <command...>)
check() { if eval "$2"; then pass "$1"; else fail "$1"; fi; }

for f in $T $LIB $B/tests/libhaktrack-drop.so $B/tests/libhaktrack-dup.so $B/tests/libhaktrack-discard.so \
         $B/tests/libtracker_bump.so $B/tests/tracker_threads $B/tests/tracker_fork $B/tests/tracker_mix \
         $B/tests/tracker_churn $B/tests/tracker_errno $B/tests/tracker_sites $B/workloads/replay; do
    if [ ! -x "$f" ] && [ ! -f "$f" ]; then
        fail "$f is missing (make test-tracker builds it)"
        finish tracker
    fi
done

# A JSON figure: jq-like access with python.  jget FILE EXPR (j is the object)
jget() { "$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1" 2>/dev/null; }

# ---- 100 threads: no event lost or duplicated ----------------------------------
"$T" record --quiet --out "$TMP/t100" -- $B/tests/tracker_threads 100 5 >"$TMP/t100.out" 2>"$TMP/t100.err"
rc=$?
check "100 threads (5 never exit): the program runs as without the tracker (exit $rc)" \
    '[ $rc -eq 0 ] && grep -q "^done$" "$TMP/t100.out" && [ ! -s "$TMP/t100.err" ]'
"$T" dump "$TMP/t100" >"$TMP/t100.dump"
res=$("$PY" tests/tracker/check_threads.py "$TMP/t100.dump" "$TMP/t100.out" | tail -n 3)
check "100 threads: every call of every thread in its file exactly once, in order ($(echo "$res" | tail -n 1))" \
    '[[ "$res" == ok\ 100\ * ]]'
check "100 threads: one file per thread plus main (101), each closed by an end record" \
    '[ "$(grep -c "^# file .* ended 1 " "$TMP/t100.dump")" -eq 101 ]'
# Version 3: each record about a byte (small integers and deltas, an order
# instead of a time, zstd) where version 2 took 48; the header says
# version 3. (How the threads interleave moves it: 0.76-1.37 seen.)
bytes=$(cat "$TMP"/t100/*.htrk | wc -c)
recs=$(grep -vc '^#' "$TMP/t100.dump")
ver=$(od -An -t u4 -j 8 -N 4 "$(ls "$TMP"/t100/*.htrk | head -n 1)" | tr -d ' ')
check "100 threads: version $ver files, $bytes bytes for $recs records, at most 2.5 a record (version 2: 48; version 3 with a time per record: 3.5)" \
    '[ "$ver" = 3 ] && [ "$recs" -gt 500000 ] && [ $((2 * bytes)) -le $((5 * recs)) ]'
# The report's reading speed (a guard against slowing it down: 20-25 M
# records per second of CPU here on this trace; other load stretches wall time)
"$T" report "$TMP/t100" >"$TMP/t100.rep" 2>&1
rate=$(sed -n 's/^read .*CPU [0-9.]* s, \([0-9.]*\) M records\/s)$/\1/p' "$TMP/t100.rep")
check "report on 100 threads' 101 files: $(grep '^read' "$TMP/t100.rep"); at least 5 M records per second of CPU" \
    '[ -n "$rate" ] && "$PY" -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 5 else 1)" "$rate"'
res=$("$PY" tests/tracker/check_plots.py "$TMP/t100/trace.json" 101 2>&1)
check "trace.html's plots of 101 threads: thread ticks whole indices from 0, sizes in bytes, lifetimes in time ($res)" \
    '[ "$res" = ok ]'
# The faulty trackers: every thread's file is read, and holds fewer calls
# (drop) or more (dup) than the thread made.
for fault in drop dup; do
    HAKTRACK_DIR=$TMP/$fault LD_PRELOAD=$B/tests/libhaktrack-$fault.so $B/tests/tracker_threads 100 5 \
        >"$TMP/$fault.out" 2>&1
    "$T" dump "$TMP/$fault" >"$TMP/$fault.dump"
    rc=$?
    "$PY" tests/tracker/check_threads.py "$TMP/$fault.dump" "$TMP/$fault.out" >"$TMP/$fault.res"
    res=$(tail -n 1 "$TMP/$fault.res")
    if [ $fault = drop ]; then rel=-lt; what="drops one event"; else rel=-gt; what="writes one free or realloc twice"; fi
    n=$(awk -v rel=$rel '/^thread .* calls in the trace/ { t = $5; m = $10;
        if ((rel == "-lt" && t > 0 && t < m) || (rel == "-gt" && t > m)) n++ } END { print n + 0 }' "$TMP/$fault.res")
    check "the count check catches a tracker that $what in 1000 ($res; $n of 100 threads)" \
        '[ $rc -eq 0 ] && [ "$res" = "mismatch 100" ] && [ "$n" -eq 100 ]'
done

# ---- errno ---------------------------------------------------------------------
"$B/tests/tracker_errno" >"$TMP/errno0.out" 2>&1
rc=$?
check "errno: without the tracker, glibc's calls keep errno ($(cat "$TMP/errno0.out"))" '[ $rc -eq 0 ]'
for how in "full" "sampled --stacks" "unwritable"; do
    if [ "$how" = unwritable ]; then
        HAKTRACK_DIR=/dev/null/trace LD_PRELOAD=$LIB $B/tests/tracker_errno >"$TMP/errno.out" 2>"$TMP/errno.err"
    else
        # shellcheck disable=SC2086
        "$T" record --quiet --out "$TMP/errno-${how%% *}" --mode $how -- $B/tests/tracker_errno \
            >"$TMP/errno.out" 2>"$TMP/errno.err"
    fi
    rc=$?
    check "errno: under the tracker ($how), every call leaves errno as the allocator did, a failed malloc ENOMEM ($(cat "$TMP/errno.out"))" \
        '[ $rc -eq 0 ] && grep -q "^errno kept in 520000 calls$" "$TMP/errno.out"'
done

# ---- sampled mode ------------------------------------------------------------
"$T" record --quiet --out "$TMP/samp" --mode sampled --threshold 3500 --every 16 -- \
    $B/tests/tracker_threads 20 0 log >"$TMP/samp.out" 2>&1
"$T" report --no-html "$TMP/samp" >/dev/null 2>"$TMP/samp.err"
"$T" dump "$TMP/samp" >"$TMP/samp.dump"
res=$("$PY" tests/tracker/check_sampled.py "$TMP/samp.dump" "$TMP/samp.out" | tail -n 3)
check "sampled: exactly the blocks at or above the threshold or at tracked addresses are recorded, with their frees; about 1 in 16 calls drawn ($(echo "$res" | tail -n 1))" \
    '[[ "$(echo "$res" | tail -n 1)" == ok\ 20\ * ]]'
want_realloc=$("$PY" -c 'print(sum(600 + 10 * i for i in range(20)))')
want_pm=$("$PY" -c 'print(sum((600 + 10 * i + 4) // 5 for i in range(20)))')
got=$(jget "$TMP/samp/trace.json" 'j["instances"][j["main"]]["ops"].get("realloc",0), j["instances"][j["main"]]["ops"].get("posix_memalign",0), j["instances"][j["main"]]["unmatched_frees"], j["instances"][j["main"]]["estimated"]')
check "sampled: every realloc and posix_memalign at or above the threshold recorded ($got; want $want_realloc $want_pm 0 True)" \
    '[ "$got" = "$want_realloc $want_pm 0 True" ]'

# Estimates: a program that keeps 20000 blocks live while it replaces them
# 20 times, and ends without freeing them.
"$T" record --quiet --out "$TMP/est" --mode sampled --every 16 -- $B/tests/tracker_churn 20000 20 \
    >"$TMP/est.out" 2>&1
"$T" report --no-html "$TMP/est" >/dev/null 2>&1
read -r _ nmal nfree _ nlive nbytes < <(grep '^calls' "$TMP/est.out")
res=$(jget "$TMP/est/trace.json" '" ".join(str(x) for x in (lambda m: (m["ops"]["malloc"], m["ops"]["free"], m["never_freed_blocks"], m["never_freed_bytes"], m["unmatched_frees"], m["allocated_while_live"]))(j["instances"][j["main"]]))')
read -r emal efree elive ebytes eun ewl <<<"$res"
near() { "$PY" -c "import sys; a, b, t = map(float, sys.argv[1:]); sys.exit(0 if abs(a - b) <= t * b else 1)" "$@"; }
check "sampled estimates (1 in 16): mallocs $emal of $nmal and frees $efree of $nfree within 5 %, blocks never freed $elive of $nlive and their bytes $ebytes of $nbytes within 20 %, no unmatched free" \
    'near "$emal" "$nmal" 0.05 && near "$efree" "$nfree" 0.05 && near "$elive" "$nlive" 0.2 && near "$ebytes" "$nbytes" 0.2 && [ "$eun" = 0 ] && [ "$ewl" = 0 ]'

# A long run: 7 M blocks, each at a new address (tests/tracker/bump.c), 1 in
# 2 tracked, through a tracker that makes its records but does not write
# them: the time per free + malloc at the end must be that of the start (a
# shared pointer set whose deleted entries pile up fails this by 1000x).
HAKTRACK_DIR=$TMP/long HAKTRACK_MODE=sampled HAKTRACK_EVERY=2 \
    LD_PRELOAD="$B/tests/libhaktrack-discard.so $B/tests/libtracker_bump.so" \
    timeout 60 $B/tests/tracker_churn 4096 1700 64 notouch >"$TMP/long.out" 2>&1
rc=$?
"$T" dump "$TMP/long" >"$TMP/long.dump" 2>/dev/null
res=$("$PY" - "$TMP/long.out" "$TMP/long.dump" <<'EOF'
import statistics, sys
ns = [float(l.split()[2]) for l in open(sys.argv[1]) if l.startswith("round ")]
calls = [l.split() for l in open(sys.argv[1]) if l.startswith("calls ")]
ends = {}
for l in open(sys.argv[2]):
    w = l.split()
    if not l.startswith("#") and w[4] == "end":
        ends[w[1]] = max(ends.get(w[1], 0), int(w[6]))
if len(ns) < 1700 or not calls:
    print("bad: the program did not finish (%d rounds)" % len(ns))
    sys.exit()
made = int(calls[0][1]) + int(calls[0][2])
first, last = statistics.median(ns[:50]), statistics.median(ns[-50:])
print("%s %.1f %.1f %.2f %d %d" % ("ok" if last < 3 * first and sum(ends.values()) > 0.6 * made else "bad",
                                   first, last, last / first, sum(ends.values()), made))
EOF
)
read -r verdict first last ratio recs made <<<"$res"
check "sampled, a long run: $made calls, $recs recorded (3.5 M tracked blocks): $first ns per free + malloc in the first 50 rounds, $last in the last 50 (x$ratio, must stay under x3)" \
    '[ $rc -eq 0 ] && [ "$verdict" = ok ]'

"$T" record --quiet --out "$TMP/ov" --preset overview -- $B/tests/tracker_mix 2000 >/dev/null 2>&1
"$T" dump "$TMP/ov" | grep '^# file' | head -n 1 >"$TMP/ov.head"
"$T" report --no-html "$TMP/ov" >/dev/null 2>&1
res=$(jget "$TMP/ov/trace.json" '(lambda m: "%s %s %s %s %d" % (m["mode"], m["stacks"], m["sample_threshold"], m["sample_every"], len(m.get("top_sites_by_count", []))))(j["instances"][j["main"]])')
check "the overview preset: sampled, every block of 64 KiB or more and 1 in 128 below, with stacks ($res)" \
    '[[ "$res" == "sampled True 65536 128 "[1-9]* ]] && grep -q " flags 3 mode 1 .* threshold 65536 every 128 " "$TMP/ov.head"'
# ---- sampled mode: the confidence intervals -------------------------------------
# A known population (tests/tracker/make_sampled.py, fixed seeds): its full
# trace gives the exact figures, 200 sampled traces of it (drawn as the
# tracker draws, each with its own salt) give 200 intervals per figure.
"$PY" tests/tracker/make_sampled.py "$TMP/ci-full" "$TMP/ci-samp" 200
"$T" report "$TMP/ci-full" >/dev/null 2>&1
"$T" report --no-html "$TMP/ci-samp" >/dev/null 2>&1
res=$("$PY" tests/tracker/check_intervals.py "$TMP/ci-full/trace.json" "$TMP/ci-samp/trace.json" 0.85 0.99 2>&1)
check "sampled: the 95 % intervals of 200 sampled traces of a known population hold its exact figures, the totals' and each of its three sites', each in at least 85 % and on average at most 99 % of them, the peak estimates within 8 % on average; exact figures carry none ($(echo "$res" | grep -c '^ok ') ok: $(echo "$res" | grep 'mean rate'))" \
    '[ "$(echo "$res" | tail -n 1)" = ok ]'
"$PY" tests/tracker/make_sampled.py "$TMP/ci-full1" "$TMP/ci-one" 1
"$T" report "$TMP/ci-one" >/dev/null 2>&1
res=$(grep -o '<td>peak live (estimated from samples)</td><td>[^<]*</td>' "$TMP/ci-one/trace.html")
check "trace.html of a sampled trace: estimates as ~X ± Y (95 %) ($res), a full trace's without" \
    '[[ "$res" == *"~"*" ± "*" (95 %) at "* ]] && ! grep -q "±" "$TMP/ci-full/trace.html"'
"$T" record --quiet --out "$TMP/s7" --sample 7 -- $B/tests/tracker_mix 200 >/dev/null 2>&1
check "record --sample 7: sampled mode, 1 in 7, no stacks ($(cut -d' ' -f 13-26 <(grep -m 1 '^# file' <("$T" dump "$TMP/s7"))))" \
    'grep -q "^# file .* flags 2 mode 1 .* every 7 " <("$T" dump "$TMP/s7")'

# ---- fork --------------------------------------------------------------------
for mode in _exit exit exec; do
    d=$TMP/fork$mode
    "$T" record --quiet --out "$d" -- $B/tests/tracker_fork $mode >"$TMP/fork.out" 2>&1
    rc=$?
    read -r _ ppid _ cpid < <(grep '^parent' "$TMP/fork.out")
    "$T" dump "$d" >"$TMP/fork.dump"
    res=$("$PY" - "$TMP/fork.dump" "${ppid:-0}" "${cpid:-0}" <<'EOF'
import sys
dump, ppid, cpid = sys.argv[1], sys.argv[2], sys.argv[3]
files, count, child_frees = {}, {}, 0
live = set()
for line in open(dump):
    w = line.split()
    if line.startswith("# file"):
        files.setdefault(w[4], []).append((w[8], w[14]))  # ppid, flags
        continue
    if line.startswith("#"):
        continue
    pid, op, ptr, size = w[0], w[4], w[5], int(w[6])
    if op == "malloc" and 4001 <= size <= 4004:
        count[(pid, size)] = count.get((pid, size), 0) + 1
        if pid == cpid and size == 4002:
            live.add(ptr)
    if op == "free" and pid == cpid and ptr in live:
        child_frees += 1
        live.discard(ptr)
errs = []
c = lambda p, s: count.get((p, s), 0)
if (c(ppid, 4001), c(ppid, 4003), c(ppid, 4002)) != (1000, 300, 0):
    errs.append("parent has %d/%d/%d blocks of 4001/4003/4002" % (c(ppid, 4001), c(ppid, 4003), c(ppid, 4002)))
if c(ppid, 4004) == 0:
    errs.append("the parent's helper thread recorded nothing")
if (c(cpid, 4002), child_frees, c(cpid, 4001), c(cpid, 4004)) != (500, 250, 0, 0):
    errs.append("child has %d blocks of 4002 (%d freed), %d of 4001, %d of 4004" %
                (c(cpid, 4002), child_frees, c(cpid, 4001), c(cpid, 4004)))
cf = files.get(cpid, [])
if len([f for f in cf if f[1] == "4"]) != 1 or any(f[0] != ppid for f in cf if f[1] == "4"):
    errs.append("child files %r (want one, flag fork child, parent %s)" % (cf, ppid))
print("; ".join(errs) if errs else "ok")
EOF
)
    check "fork, child ends with $mode: child and parent each hold exactly their own calls ($res)" \
        '[ $rc -eq 0 ] && [ "$res" = ok ]'
done

# ---- killed, cut, corrupt, foreign --------------------------------------------
"$T" record --quiet --out "$TMP/killed" -- "$PY" -c '
import os
keep = [bytearray(5000 + i % 7) for i in range(20000)]
os.kill(os.getpid(), 9)' >/dev/null 2>&1
rc=$?
"$T" report --no-html "$TMP/killed" >/dev/null 2>"$TMP/killed.err"
rc2=$?
n=$(jget "$TMP/killed/trace.json" 'j["records"]')
check "a program killed by SIGKILL (exit $rc): its files are read, the report says the end is missing ($n records)" \
    '[ $rc -eq 137 ] && [ $rc2 -eq 0 ] && [ "${n:-0}" -gt 10000 ] && grep -q "no end record" "$TMP/killed.err"'

"$T" record --quiet --out "$TMP/mix" -- $B/tests/tracker_mix 2000 >"$TMP/mix.out" 2>&1
# A version 3 file cut in the middle of its second zstd frame (a killed
# program's file ends so): the reader keeps the complete frames: exactly
# the bytes up to the first frame's end (found from the frame headers
# alone by tests/tracker/zstd_frames.py) are read, the rest reported cut,
# and the records read are the first ones of the whole file, in order.
# (20,000 rounds: a thread's file of several frames of 1 MiB of records)
"$T" record --quiet --out "$TMP/mix20k" -- $B/tests/tracker_mix 20000 >/dev/null 2>&1
cp -r "$TMP/mix20k" "$TMP/cut"
f=$(ls -S "$TMP"/cut/*.htrk | head -n 1)
truncate -s "$("$PY" tests/tracker/zstd_frames.py "$f" | awk '/^frame/ && ++n == 2 {print int(($2 + $3) / 2)}')" "$f"
"$T" report --no-html "$TMP/cut" >/dev/null 2>"$TMP/cut.err"
rc=$?
cut=$(jget "$TMP/cut/trace.json" 'j["cut_bytes"]')
want=$("$PY" tests/tracker/zstd_frames.py "$f" | awk '/^complete/ {c = $2} /^size/ {s = $2} END {print s - c}')
nframes=$("$PY" tests/tracker/zstd_frames.py "$f" | grep -c '^frame')
# (dump's last column, a time read from every file's marks, differs: the
# cut file has fewer marks)
"$T" dump "$TMP/mix20k" | awk -v f="$(basename "$f")" '/^# file/ {on = index($0, f) > 0; next} on {NF--; print}' >"$TMP/cut.whole"
"$T" dump "$TMP/cut" | awk -v f="$(basename "$f")" '/^# file/ {on = index($0, f) > 0; next} on {NF--; print}' >"$TMP/cut.part"
nwhole=$(wc -l <"$TMP/cut.whole"); npart=$(wc -l <"$TMP/cut.part")
check "a file cut mid-frame: read up to the last complete zstd frame ($nframes complete), the $want bytes after it reported cut (exit $rc, cut $cut), the $npart records read the first of the file's $nwhole" \
    '[ $rc -eq 0 ] && [ "$nframes" = 1 ] && [ "$cut" = "$want" ] && [ "$want" -gt 100 ] && grep -q "$(basename "$f"): cut short: $want bytes" "$TMP/cut.err" && [ "$npart" -gt 1000 ] && [ "$npart" -lt "$nwhole" ] && cmp -s "$TMP/cut.part" <(head -n "$npart" "$TMP/cut.whole")'

# A corrupt zstd frame (one byte of the first frame's data flipped): its
# checksum or structure fails; exit 1, the message names the file and the
# frame's offset.
cp -r "$TMP/mix" "$TMP/corrupt"
f=$(ls -S "$TMP"/corrupt/*.htrk | head -n 1)
"$PY" -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(256 + 400); b = f.read(1); f.seek(256 + 400); f.write(bytes([b[0] ^ 0x5a]))' "$f"
"$T" report --no-html "$TMP/corrupt" >/dev/null 2>"$TMP/corrupt.err"
rc=$?
check "a corrupt zstd frame: exit 1, the message names the file and the frame ($(head -c 150 "$TMP/corrupt.err"))" \
    '[ $rc -eq 1 ] && grep -q "$(basename "$f"): corrupt compressed data in the frame at byte 256: " "$TMP/corrupt.err"'

# Version 2 files (uncompressed 48-byte units: tests/tracker/make_trace.py)
# are still read: a corrupt record is named with its byte.
"$PY" tests/tracker/make_trace.py "$TMP/corrupt2"
f=$(ls -S "$TMP"/corrupt2/*.htrk | head -n 1)
printf '\x63' | dd of="$f" bs=1 seek=$((256 + 48 * 5 + 40)) conv=notrunc status=none
"$T" report --no-html "$TMP/corrupt2" >/dev/null 2>"$TMP/corrupt2.err"
rc=$?
check "a corrupt version 2 record: exit 1, the message names the file and the byte ($(head -c 150 "$TMP/corrupt2.err"))" \
    '[ $rc -eq 1 ] && grep -q "$(basename "$f"): corrupt record at byte 496 (operation 99)" "$TMP/corrupt2.err"'

mkdir -p "$TMP/foreign" && cp -r "$TMP"/mix/*.htrk "$TMP/foreign/" && head -c 4000 /bin/ls >"$TMP/foreign/x.htrk"
"$T" report --no-html "$TMP/foreign" >/dev/null 2>"$TMP/foreign.err"
rc=$?
check "a foreign file among the trace files: exit 1 naming it ($(head -c 120 "$TMP/foreign.err"))" \
    '[ $rc -eq 1 ] && grep -q "x.htrk: not a hakmem trace file" "$TMP/foreign.err"'
mkdir -p "$TMP/empty"
"$T" report "$TMP/empty" >/dev/null 2>"$TMP/empty.err"
rc=$?
check "an empty directory: exit 1 with a message" '[ $rc -eq 1 ] && grep -q "no trace files" "$TMP/empty.err"'
"$T" report "$TMP/nonexistent" >/dev/null 2>&1
check "a missing directory: exit 1" '[ $? -eq 1 ]'
"$T" record --preset nonsense -- true >/dev/null 2>&1
check "record with an unknown preset: exit 2" '[ $? -eq 2 ]'
"$T" record --out "$TMP/mix" -- true >/dev/null 2>&1
check "record into a directory that holds a trace: exit 2" '[ $? -eq 2 ]'

# ---- full disk, size limit, unwritable directory -------------------------------
$B/tests/tracker_mix 2000 >"$TMP/plain.out" 2>&1
# 20,000 rounds: a trace of about 600 KB, well past the 64 KiB and 32 KiB
$B/tests/tracker_mix 20000 >"$TMP/plain20k.out" 2>&1
one_message() { # stderr-file
    [ "$(grep -c '^haktrack: ' "$1")" -eq 1 ] && grep -q "recording stops, the program goes on" "$1" &&
        [ "$(grep -vc '^haktrack: ' "$1")" -eq 0 ]
}
if unshare -m true 2>/dev/null; then
    mkdir -p "$TMP/full"
    unshare -m sh -c 'mount -t tmpfs -o size=64k tmpfs "$1" && \
        HAKTRACK_DIR="$1/trace" LD_PRELOAD="$2" "$3" 20000 >"$4.out" 2>"$4.err"; echo $? >"$4.rc"; \
        df -k "$1" | tail -n 1 >"$4.df"; cp -r "$1/trace" "$4.files" 2>/dev/null' \
        sh "$TMP/full" "$LIB" $B/tests/tracker_mix "$TMP/fullrun" 2>"$TMP/full.mnt"
    if [ -f "$TMP/fullrun.rc" ]; then
        rc=$(cat "$TMP/fullrun.rc")
        check "full disk (64 KiB tmpfs, $(awk '{print $4}' "$TMP/fullrun.df") KiB left): one message, output and exit status unchanged ($(head -c 160 "$TMP/fullrun.err"))" \
            '[ "$rc" = 0 ] && cmp -s "$TMP/fullrun.out" "$TMP/plain20k.out" && one_message "$TMP/fullrun.err"'
        "$T" report --no-html "$TMP/fullrun.files" >/dev/null 2>&1
        check "full disk: what was written is readable" '[ $? -eq 0 ]'
    else
        skip "full disk" "cannot mount a tmpfs here ($(head -c 100 "$TMP/full.mnt"))"
    fi
else
    skip "full disk" "unshare -m is not allowed here"
fi
(trap '' XFSZ; ulimit -f 32; HAKTRACK_DIR=$TMP/fsize LD_PRELOAD=$LIB exec $B/tests/tracker_mix 20000) \
    >"$TMP/fsize.out" 2>"$TMP/fsize.err"
rc=$?
check "file size limit (ulimit -f 32, SIGXFSZ ignored): one message, output and exit status unchanged ($(head -c 160 "$TMP/fsize.err"))" \
    '[ $rc -eq 0 ] && cmp -s "$TMP/fsize.out" "$TMP/plain20k.out" && one_message "$TMP/fsize.err"'
touch "$TMP/afile"
HAKTRACK_DIR=$TMP/afile/trace LD_PRELOAD=$LIB $B/tests/tracker_mix 20000 >"$TMP/nodir.out" 2>"$TMP/nodir.err"
rc=$?
check "unwritable directory: one message, output and exit status unchanged ($(head -c 160 "$TMP/nodir.err"))" \
    '[ $rc -eq 0 ] && cmp -s "$TMP/nodir.out" "$TMP/plain20k.out" && one_message "$TMP/nodir.err"'

# ---- the report on a trace with known figures -----------------------------------
"$PY" tests/tracker/make_trace.py "$TMP/fixed"
"$T" report "$TMP/fixed" >"$TMP/fixed.out" 2>"$TMP/fixed.err"
rc=$?
res=$("$PY" - "$TMP/fixed/trace.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
m = j["instances"][0]
want = {
    "allocations": 5, "frees": 3, "peak_live_bytes": 77348, "peak_time_ns": 700, "final_live_bytes": 2348,
    "never_freed_blocks": 2, "never_freed_bytes": 2348, "unmatched_frees": 1, "free_null": 1, "failed_calls": 1,
    "allocated_bytes": 78348, "threads": 2,
}
errs = ["%s %r != %r" % (k, m.get(k), v) for k, v in want.items() if m.get(k) != v]
checks = [
    ("ops", m["ops"], {"malloc": 5, "free": 5, "calloc": 1, "realloc": 2}),
    ("calls to allocation functions", (m["allocation_calls"], m["allocation_call_kinds"], m["allocation_call_bytes"]),
     (7, {"malloc": 4, "calloc": 1, "realloc": 2}, 78648)),
    ("matrix", m["cross_thread"]["matrix"], [[2, 1], [0, 0]]),
    ("chains", [m["realloc_chains"][k] for k in ("chains", "reallocs", "moves", "copied_bytes")], [1, 2, 1, 100]),
    ("short-lived large", m["short_lived_large"], {"blocks": 1, "bytes": 70000}),
    ("size buckets", [i for i, v in enumerate(m["size_hist"]) if v], [7, 10, 12, 13, 17]),
    ("lifetime buckets", [i for i, v in enumerate(m["lifetime_hist_ns"]) if v], [7, 9, 10]),
    ("cut", (j["cut_bytes"], j["files_without_end"]), (20, 1)),
    ("top site", (m["top_sites_by_bytes"][0]["bytes"], m["top_sites_by_bytes"][0]["frames"]), (1100, ["0x1000", "0x2000"])),
    ("hints", sorted(h["kind"] for h in m["hints"]), ["cross_thread", "never_freed", "short_lived_large"]),
]
errs += ["%s %r != %r" % (n, a, b) for n, a, b in checks if a != b]
print("; ".join(errs) if errs else "ok")
EOF
)
check "report on a fixed trace: every known figure ($res)" '[ $rc -eq 0 ] && [ "$res" = ok ]'
check "report on a fixed trace: self-contained trace.html with the plots" \
    '[ "$(grep -o "<img src=\"data:image/png;base64," "$TMP/fixed/trace.html" | wc -l)" -ge 5 ]'
# Calls to allocation functions counted at their own sites, reallocs too
# (heaptrack's count): 10,000 reallocs in grow_by_realloc outrank 100
# mallocs in malloc_a_hundred, by calls and by bytes asked for.
"$T" record --quiet --preset leaks --out "$TMP/rsites" -- $B/tests/tracker_realloc_sites >/dev/null 2>&1
"$T" report "$TMP/rsites" >"$TMP/rsites.out" 2>&1
rc=$?
res=$("$PY" - "$TMP/rsites/trace.json" "$TMP/rsites.out" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
m = j["instances"][j["main"]]
head = open(sys.argv[2]).readline()
def site(s):
    return (s["calls"], s["kinds"], s["bytes"], s["frames"][0].split("+")[0])
grow = (10000, {"realloc": 10000}, 800240000, "grow_by_realloc")
errs = []
if m["allocation_call_kinds"].get("realloc") != 10000 or m["allocation_call_kinds"].get("malloc", 0) < 101:
    errs.append("calls by kind %r" % m["allocation_call_kinds"])
if m["allocation_calls"] != sum(m["allocation_call_kinds"].values()):
    errs.append("allocation_calls %r is not the sum of its kinds" % m["allocation_calls"])
if "calls to allocation functions (realloc 10.0" not in head:
    errs.append("headline %r" % head.strip())
by_count = [site(s) for s in m["top_sites_by_count"][:2]]
if by_count != [grow, (100, {"malloc": 100}, 3200, "malloc_a_hundred")]:
    errs.append("top sites by count %r" % by_count)
if site(m["top_sites_by_bytes"][0]) != grow:
    errs.append("top site by bytes %r" % (site(m["top_sites_by_bytes"][0]),))
# merged by function and the call's file:line (debug information), as heaptrack_print
src = "tests/tracker/realloc_sites.c"
line = next(i for i, l in enumerate(open(src), 1) if "realloc(p, (i + 1)" in l)
top = m["allocation_sites"]["by_calls"][0]
if (top["function"], top["calls"], (top["source"] or "").endswith("%s:%d" % (src, line))) != ("grow_by_realloc", 10000, True):
    errs.append("top allocation site by calls %r %r %r, not grow_by_realloc's realloc at %s:%d" % (
        top["function"], top["calls"], top["source"], src, line))
print("; ".join(errs) if errs else "ok")
EOF
)
check "report: reallocs are calls at their own site: 10,000 reallocs rank above 100 mallocs by count and by bytes ($res)" \
    '[ $rc -eq 0 ] && [ "$res" = ok ]'
res=$("$PY" tests/tracker/check_plots.py "$TMP/rsites/trace.json" 1 2>&1)
check "trace.html's plots of one thread: one thread tick, 0; reallocs per chain in plain counts ($res)" '[ "$res" = ok ]'
# allocation sites: tests/tracker/sites.c's known figures
"$T" record --quiet --preset leaks --out "$TMP/sites" -- $B/tests/tracker_sites >/dev/null 2>&1
"$T" report "$TMP/sites" >"$TMP/sites.out" 2>&1
rc=$?
res=$("$PY" tests/tracker/check_sites.py "$TMP/sites/trace.json" merged 2>&1)
check "report: allocation sites merge stacks by the calling function (alloc_here: 40 calls from 2 stacks, 30 and 10; never freed by site) ($res)" \
    '[ $rc -eq 0 ] && [ "$res" = ok ]'
res=$("$PY" tests/tracker/check_sites.py "$TMP/sites/trace.json" peak 2>&1)
check "report: peak memory consumers: hold_big 400000 and alloc_here 2560 (1920 + 640) at the peak, their sum the peak ($res)" \
    '[ "$res" = ok ]'
res=$("$PY" tests/tracker/check_sites.py "$TMP/sites/trace.json" temporary 2>&1)
check "report: temporary allocations: 1000 malloc+free in temporaries(), none in pairs() (alloc, alloc, free, free) ($res)" \
    '[ "$res" = ok ] && grep -q "; 1.0 K temporary; " "$TMP/sites.out"'
res=$(jget "$TMP/rsites/trace.json" '[(s["function"], s["source"].split("/")[-1], s["temporary"]) for s in j["instances"][j["main"]]["allocation_sites"]["by_temporary"]]')
rline=$(grep -n 'realloc(p, (i + 1)' tests/tracker/realloc_sites.c | cut -d: -f1)
mline=$(grep -n 'malloc(STEP)' tests/tracker/realloc_sites.c | cut -d: -f1)
check "report: a realloc frees then allocates, as in heaptrack: 10,001 temporary in grow_by_realloc (10,000 at the realloc, line $rline; 1 at the malloc, line $mline) ($res)" \
    '[ "$res" = "[('"'"'grow_by_realloc'"'"', '"'"'realloc_sites.c:$rline'"'"', 10000), ('"'"'grow_by_realloc'"'"', '"'"'realloc_sites.c:$mline'"'"', 1)]" ]'
# folded stacks: the stacks holding bytes at the peak, root first, from main on
"$T" folded "$TMP/sites" --by peak >"$TMP/folded.out" 2>"$TMP/folded.err"
rc=$?
res=$(sed 's/^.*;main;/main;/' "$TMP/folded.out" | sort | tr '\n' '|')
check "folded --by peak: exactly 3 lines, main;hold_big 400000 and alloc_here's two stacks, 1920 and 640 ($res)" \
    '[ $rc -eq 0 ] && [ "$(grep -c ";main;" "$TMP/folded.out")" -eq 3 ] &&
     [ "$res" = "main;hold_big 400000|main;keep_from_a;alloc_here 1920|main;keep_from_b;alloc_here 640|" ]'
"$T" folded "$TMP/sites" >"$TMP/folded.out" 2>&1
check "folded: by calls by default (main;temporaries 1000)" 'grep -q ";main;temporaries 1000$" "$TMP/folded.out"'
bad=0
for args in "--by foo" "--by" "--pid x" "--pid" "--what"; do
    # shellcheck disable=SC2086
    "$T" folded "$TMP/sites" $args >/dev/null 2>"$TMP/folded.err"
    r=$?
    { [ $r -eq 2 ] && grep -q "^hakmem-trace: " "$TMP/folded.err"; } || { bad=1; echo "folded $args: exit $r" >&2; }
done
"$T" folded >/dev/null 2>&1; [ $? -eq 2 ] || bad=1
"$T" folded "$TMP/t100" >/dev/null 2>"$TMP/folded.err"
r=$?
{ [ $r -eq 1 ] && grep -q "has no call stacks" "$TMP/folded.err"; } || bad=1
check "folded: bad arguments exit 2 with a message; a trace without stacks exits 1 saying so" '[ $bad -eq 0 ]'
# diff: sites.c run with 1000 and with 3000 temporaries; and a trace against itself
"$T" record --quiet --preset leaks --out "$TMP/sites3" -- $B/tests/tracker_sites 3000 >/dev/null 2>&1
"$T" diff "$TMP/sites" "$TMP/sites3" --json >"$TMP/diff.json" 2>"$TMP/diff.err"
rc=$?
res=$("$PY" - "$TMP/diff.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
errs = []
tot = {k: v["delta"] for k, v in d["totals"].items()}
if tot != {"calls": 2000, "bytes": 48000, "peak": 0, "leaked": 0, "temporary": 2000}:
    errs.append("totals %r" % tot)
ch = [(s["function"], {k: s[k]["delta"] for k in ("calls", "bytes", "peak", "leaked", "temporary")})
      for s in d["by_site"] if any(s[k]["delta"] for k in ("calls", "bytes", "peak", "leaked", "temporary"))]
if ch != [("temporaries", {"calls": 2000, "bytes": 48000, "peak": 0, "leaked": 0, "temporary": 2000})] or d["changed"] != 1:
    errs.append("changed sites %r" % ch)
print("; ".join(errs) if errs else "ok")
EOF
)
check "diff of sites.c 1000 vs 3000: only temporaries changed, +2000 calls, +48000 bytes, +2000 temporary ($res)" \
    '[ $rc -eq 0 ] && [ "$res" = ok ]'
"$T" diff "$TMP/sites" "$TMP/sites" --json >"$TMP/diff.json" 2>&1
rc=$?
res=$(jget "$TMP/diff.json" 'sum(abs(v["delta"]) for s in j["by_site"] + [j["totals"]] for k, v in s.items() if isinstance(v, dict)), j["changed"], j["sites"] > 5')
"$T" diff "$TMP/sites" "$TMP/sites" >"$TMP/diff.txt" 2>&1
check "diff of a trace with itself: every change 0 (json: $res), the text says no site changed" \
    '[ $rc -eq 0 ] && [ "$res" = "0 0 True" ] && grep -q "^0 of [0-9]* allocation sites changed$" "$TMP/diff.txt"'
"$T" diff "$TMP/sites" "$TMP/sites3" >"$TMP/diff.txt" 2>&1
check "diff text: the changed site with its changes" \
    'grep -Eq "^ +\+2000 +\+48000 +\+0 +\+0 +\+2000  temporaries \(tracker_sites\) at .*tests/tracker/sites\.c:[0-9]+$" "$TMP/diff.txt"'
bad=0
for args in "$TMP/sites" "$TMP/sites $TMP/sites $TMP/sites" "$TMP/sites $TMP/sites --pid-b x" "$TMP/sites $TMP/sites --what"; do
    # shellcheck disable=SC2086
    "$T" diff $args >/dev/null 2>"$TMP/diff.err"
    r=$?
    { [ $r -eq 2 ] && grep -q "^hakmem-trace: " "$TMP/diff.err"; } || { bad=1; echo "diff $args: exit $r" >&2; }
done
"$T" diff "$TMP/sites" "$TMP/t100" >/dev/null 2>"$TMP/diff.err"
r=$?
{ [ $r -eq 1 ] && grep -q "has no call stacks" "$TMP/diff.err"; } || bad=1
check "diff: bad arguments exit 2 with a message; a trace without stacks exits 1 saying so" '[ $bad -eq 0 ]'
check "trace.html: the allocation sites tables" \
    'grep -q "<h3>Allocation sites by calls" "$TMP/sites/trace.html" && grep -q "alloc_here <small>" "$TMP/sites/trace.html" &&
     grep -q "<h3>Peak memory consumers" "$TMP/sites/trace.html" && grep -q "<h3>Temporary allocations" "$TMP/sites/trace.html"'
"$T" compile "$TMP/fixed" >"$TMP/fixc.out" 2>&1
out=$($B/workloads/replay --trace "$TMP/fixed/trace.replay" --verify full 2>&1 | tail -n 1)
check "compile + replay of the fixed trace: peak 77348, final 2348, one cross-thread wait" \
    '[[ "$out" == *"\"peak_live_bytes\":77348,\"final_live_bytes\":2348"*"\"cross_thread_waits\":1"* ]]'

# ---- replay under every allocator ---------------------------------------------
"$T" report --no-html "$TMP/mix" >/dev/null 2>&1
"$T" compile "$TMP/mix" >/dev/null 2>&1
"$T" record --quiet --out "$TMP/py" -- "$PY" -c '
import json, re
d = [{"k%d" % i: [i, str(i) * 3, {"x": i / 3}]} for i in range(3000)]
s = json.dumps(d)
print(len(json.loads(s)), len(re.findall(r"\d+", s)))' >/dev/null 2>&1
"$T" report --no-html "$TMP/py" >/dev/null 2>&1
"$T" compile "$TMP/py" >/dev/null 2>&1
declare -A LIBS=(
    [glibc]=""
    [jemalloc]=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
    [mimalloc]=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2
    [tcmalloc]=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
)
# every hakmem build there is (the variants and their checked builds)
HAKMEM=""
for lib in $B/*/libhakmem.so; do
    [ -f "$lib" ] || continue
    v=$(basename "$(dirname "$lib")")
    LIBS[hakmem-$v]=$lib
    HAKMEM="$HAKMEM hakmem-$v"
done
check "hakmem builds to replay under: at least hybrid ($HAKMEM)" '[[ " $HAKMEM " == *" hakmem-hybrid "* ]]'
mimalloc_ver=$(dpkg-query -W -f='${Version}' libmimalloc2.0 2>/dev/null)
for trace in mix py; do
    peak=$(jget "$TMP/$trace/trace.json" 'j["instances"][j["main"]]["peak_live_bytes"]')
    threads=$(jget "$TMP/$trace/trace.json" 'j["instances"][j["main"]]["threads"]')
    sum0=""
    for a in glibc jemalloc mimalloc tcmalloc $HAKMEM; do
        lib=${LIBS[$a]}
        if [ -n "$lib" ] && [ ! -f "$lib" ]; then
            skip "replay of the $trace trace under $a" "$lib is not installed"
            continue
        fi
        LD_PRELOAD=$lib timeout 60 $B/workloads/replay --trace "$TMP/$trace/trace.replay" --verify full \
            >"$TMP/r.out" 2>"$TMP/r.err"
        rc=$?
        # Debian 12's mimalloc 2.0.9 returns misaligned blocks for aligned
        # requests of 256 to 1024 bytes (upstream issues #602 and #700, fixed
        # after 2.0.9); the mix trace makes such requests. Replay catching it
        # is right, but it is no pass: the trace was not replayed.
        if [ $a = mimalloc ] && [ $rc -eq 3 ] && grep -q "is not aligned to" "$TMP/r.err" &&
            [[ "$mimalloc_ver" == 2.0.9* ]]; then
            skip "replay of the $trace trace under mimalloc $mimalloc_ver" "not replayed, mimalloc returned a misaligned aligned block, a known upstream bug (mimalloc #602, #700): $(head -c 120 "$TMP/r.err")"
            continue
        fi
        res=$("$PY" - "$TMP/r.out" "${lib:-libc.so}" "$peak" "$threads" <<'EOF'
import json, os, sys
j = json.loads(open(sys.argv[1]).read().splitlines()[-1])
lib, peak, threads = os.path.basename(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
errs = []
if lib not in j["malloc_from"]:
    errs.append("malloc_from %s" % j["malloc_from"])
if j["peak_live_bytes"] != peak:
    errs.append("peak_live_bytes %d, the report says %d" % (j["peak_live_bytes"], peak))
if threads == 1 and j["replay_peak_live_bytes"] != peak:
    errs.append("one thread, but this run's peak is %d" % j["replay_peak_live_bytes"])
print(("checksum " + j["checksum"]) if not errs else "; ".join(errs))
EOF
)
        [ -z "$sum0" ] && sum0=$res
        check "replay of the $trace trace ($threads threads) under $a: peak $peak equal to the report's, same checksum ($res)" \
            '[ $rc -eq 0 ] && [[ "$res" == checksum* ]] && [ "$res" = "$sum0" ]'
    done
done
# --verify touch and --floor: the same checksum as with --verify full;
# --floor serves every block from the workload's own bins, so a broken
# allocator under it changes nothing.
sum_of() { tail -n 1 "$1" | "$PY" -c 'import json,sys; print(json.loads(sys.stdin.read())["checksum"])' 2>/dev/null; }
for trace in mix py; do
    $B/workloads/replay --trace "$TMP/$trace/trace.replay" --verify full >"$TMP/rf.out" 2>&1
    want=$(sum_of "$TMP/rf.out")
    $B/workloads/replay --trace "$TMP/$trace/trace.replay" --verify touch >"$TMP/rf.out" 2>&1
    rc=$?
    got=$(sum_of "$TMP/rf.out")
    check "replay of the $trace trace with --verify touch: checksum $got, as with --verify full" \
        '[ $rc -eq 0 ] && [ -n "$want" ] && [ "$got" = "$want" ]'
    LD_PRELOAD=$B/tests/libbroken_malloc.so $B/workloads/replay --trace "$TMP/$trace/trace.replay" --floor \
        --verify full >"$TMP/rf.out" 2>&1
    rc=$?
    got=$(sum_of "$TMP/rf.out")
    check "replay of the $trace trace with --floor over a broken allocator: checksum $got as without --floor, no corruption (the bins serve every block)" \
        '[ $rc -eq 0 ] && [ -n "$want" ] && [ "$got" = "$want" ]'
done
if [ -f $B/tests/libbroken_malloc.so ]; then
    LD_PRELOAD=$B/tests/libbroken_malloc.so $B/workloads/replay --trace "$TMP/py/trace.replay" >/dev/null 2>"$TMP/broken.err"
    rc=$?
    check "replay catches an allocator that hands a block out twice (exit $rc: $(head -c 100 "$TMP/broken.err"))" \
        '[ $rc -eq 3 ] && grep -q "corrupted block" "$TMP/broken.err"'
else
    fail "no broken allocator at $B/tests/libbroken_malloc.so"
fi
$B/workloads/replay >/dev/null 2>"$TMP/e1"
rc1=$?
$B/workloads/replay --trace "$TMP/mix/trace.json" >/dev/null 2>"$TMP/e2"
rc2=$?
check "replay without --trace, or of a file that is no replay file: exit 2, one line" \
    '[ $rc1 -eq 2 ] && [ $rc2 -eq 2 ] && [ "$(wc -l <"$TMP/e1")" -eq 1 ] && grep -q "not a replay file" "$TMP/e2"'
"$T" compile "$TMP/samp" >/dev/null 2>"$TMP/e3"
check "compile of a sampled trace: exit 2 with the reason" '[ $? -eq 2 ] && grep -q "sampled trace cannot be replayed" "$TMP/e3"'

# ---- the tracker over other allocators ------------------------------------------
for a in jemalloc hakmem-hybrid; do
    lib=${LIBS[$a]}
    if [ ! -f "$lib" ]; then
        skip "recording over $a" "$lib is not installed"
        continue
    fi
    "$T" record --quiet --out "$TMP/over-$a" --preset leaks --preload "$lib" -- $B/tests/tracker_mix 2000 \
        >"$TMP/over.out" 2>"$TMP/over.err"
    rc=$?
    "$T" report --no-html "$TMP/over-$a" >/dev/null 2>&1
    rc2=$?
    n=$(jget "$TMP/over-$a/trace.json" 'j["instances"][j["main"]]["unmatched_frees"]')
    check "recording over $a (leaks preset): program unchanged, report reads it, no unmatched free ($n)" \
        '[ $rc -eq 0 ] && [ $rc2 -eq 0 ] && cmp -s "$TMP/over.out" "$TMP/plain.out" && [ "$n" = 0 ]'
    # the top site's stack, named from the ELF symbol tables: the program's
    # own function (static, so only in .symtab) and the allocator's entry
    frames=$(jget "$TMP/over-$a/trace.json" '" | ".join(j["instances"][j["main"]]["top_sites_by_bytes"][0]["frames"][:4])')
    check "recording over $a: stack frames named from ELF symbols ($frames)" \
        '[[ "$frames" == *"producer+0x"*"(tracker_mix)"* ]]'
done

finish tracker
