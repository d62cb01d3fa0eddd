#!/usr/bin/python3
"""check_threads.py - compares what each thread of tracker_threads did with
what its trace holds (tests/tracker.sh).

usage: check_threads.py DUMP OUTPUT   (DUMP: `hakmem-trace dump DIR`,
OUTPUT: the program's stdout). Prints one line per finding and, last,
"ok <threads> <calls>" or "mismatch <n>"; exit 0 only when every thread's
calls are in its file exactly once and in order.

Both ways: a call missing from the file, or one in it twice. A free or
realloc written twice would name a block the thread already gave up: each
thread's given-up blocks are kept (until its file shows an allocation
returning the address again), and a free or realloc of one counts as an
extra call.
"""
import sys


def expected(i):
    seq = []
    for j in range(600 + 10 * i):
        seq.append(("malloc", 3000 + j % 50))
        seq.append(("calloc", 3 * (1100 + i % 7)))
        seq.append(("realloc", 3500 + j % 13))
        if j % 5 == 0:
            seq.append(("posix_memalign", 3700))
            seq.append(("free", 0))
        seq.append(("free", 0))
        seq.append(("free", 0))
    return seq


def main():
    dump, output = sys.argv[1], sys.argv[2]
    tids = {}
    for line in open(output):
        w = line.split()
        if len(w) == 3 and w[0] == "thread":
            tids[int(w[2])] = int(w[1])
    if not tids:
        print("mismatch: the program printed no thread ids")
        sys.exit(1)
    marker = set(range(3000, 3050)) | {3 * (1100 + k) for k in range(7)} | set(range(3500, 3513)) | {3700}
    got = {tid: [] for tid in tids}
    live = {tid: set() for tid in tids}
    dead = {tid: set() for tid in tids}  # given up, not allocated again since
    for line in open(dump):
        if line.startswith("#"):
            continue
        w = line.split()
        tid, op, ptr, size, aux = int(w[2]), w[4], int(w[5], 16), int(w[6]), int(w[7], 16)
        if tid not in got:
            continue
        seq, lv, dd = got[tid], live[tid], dead[tid]
        if op == "realloc" and aux in dd:
            seq.append(("realloc of a block given up", size))
        elif op == "free" and ptr in dd:
            seq.append(("free of a block given up", 0))
        if op in ("malloc", "calloc", "posix_memalign", "realloc", "aligned_alloc", "memalign", "valloc",
                  "pvalloc", "reallocarray"):
            dd.discard(ptr)
        if op in ("malloc", "calloc", "posix_memalign") and size in marker:
            seq.append((op, size))
            lv.add(ptr)
        elif op == "realloc" and aux in lv:
            seq.append((op, size))
            lv.discard(aux)
            if aux != ptr:
                dd.add(aux)
            lv.add(ptr)
        elif op == "free" and ptr in lv:
            seq.append((op, 0))
            lv.discard(ptr)
            dd.add(ptr)
    bad = 0
    calls = 0
    for tid, i in sorted(tids.items(), key=lambda kv: kv[1]):
        want = expected(i)
        calls += len(want)
        have = got[tid]
        if have != want:
            bad += 1
            k = next((k for k, (a, b) in enumerate(zip(have, want)) if a != b), min(len(have), len(want)))
            print("thread %d (tid %d): %d calls in the trace, %d made; first difference at call %d: %s vs %s" %
                  (i, tid, len(have), len(want), k, have[k] if k < len(have) else "-",
                   want[k] if k < len(want) else "-"))
    if bad:
        print("mismatch %d" % bad)
        sys.exit(1)
    print("ok %d %d" % (len(tids), calls))


if __name__ == "__main__":
    main()
