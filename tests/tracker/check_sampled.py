#!/usr/bin/python3
"""check_sampled.py - checks a sampled-mode trace of `tracker_threads N 0 log`
against the calls the program made (tests/tracker.sh).

usage: check_sampled.py DUMP OUTPUT   (DUMP: `hakmem-trace dump DIR`,
OUTPUT: the program's stdout with its call log)

Sampled mode follows a block when it is large (the threshold, from the
dump's header) or when its address hashes below 2^64 / every with the
instance's salt (trace_format.h). The check, per thread, is exact: the
records flagged as tracked blocks (allocations, frees, reallocs' old and
new blocks) are exactly the calls on those blocks, in order; the weight
flag is set exactly on calls below the threshold; no record holds a call
the program did not make. The drawn calls (the countdown) are random: among
the small mallocs, between 1 in 2*every and 1 in every/2 must be drawn.
Prints one line per finding and, last, "ok <threads> <tracked records>
<drawn>/<small mallocs>" or "mismatch <n>"; exit 0 only when all holds.
(The program's sizes sit well below or at the threshold, so the usable
size, which the tracker also consults, does not change the answer.)
"""
import sys

M = (1 << 64) - 1
SAMPLED, CALL, BLOCK, OLD_BLOCK = 1, 2, 4, 8


def mix(z):
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
    return z ^ (z >> 31)


def main():
    dump, output = sys.argv[1], sys.argv[2]
    calls = {}
    for line in open(output):
        w = line.split()
        if len(w) == 6 and w[0] == "call":
            calls.setdefault(int(w[1]), []).append((w[2], int(w[3], 16), int(w[4]), int(w[5], 16) if w[5] != "(nil)" else 0))
    if not calls:
        print("mismatch: the program logged no calls")
        sys.exit(1)
    threshold = every = salt = None
    got = {tid: [] for tid in calls}
    for line in open(dump):
        w = line.split()
        if line.startswith("# file"):
            threshold, every, salt = int(w[w.index("threshold") + 1]), int(w[w.index("every") + 1]), \
                int(w[w.index("salt") + 1], 16)
            if w[w.index("mode") + 1] != "1":
                print("mismatch: not a sampled trace")
                sys.exit(1)
            continue
        if line.startswith("#"):
            continue
        tid = int(w[2])
        if tid in got:
            got[tid].append((w[4], int(w[5], 16), int(w[6]), int(w[7], 16), int(w[10])))
    below = M // every
    tracked = lambda p: mix(p ^ salt) < below
    bad = records = drawn = 0
    for tid, seq in sorted(calls.items()):
        size = {}
        want = []  # (op, ptr, block flags, weight flag)
        for op, p, n, old in seq:
            if op == "free":
                large = size.pop(p) >= threshold
                fl = BLOCK if large or tracked(p) else 0
                if fl:
                    want.append((op, p, fl, 0 if large else SAMPLED))
                continue
            fl = BLOCK if n >= threshold or tracked(p) else 0
            if op == "realloc":
                if size.pop(old) >= threshold or tracked(old):
                    fl |= OLD_BLOCK
            size[p] = n
            if fl:
                want.append((op, p, fl, 0 if n >= threshold else SAMPLED))
        made = set((op, p) for op, p, _, _ in seq)
        have, extra = [], []
        for op, p, n, aux, flags in got[tid]:
            if op in ("end", "stack"):
                continue
            if (op, p) not in made:
                extra.append((op, hex(p)))
                continue
            if op == "malloc" and n < threshold and flags & CALL:
                drawn += 1
            if flags & (BLOCK | OLD_BLOCK):
                have.append((op, p, flags & (BLOCK | OLD_BLOCK), flags & SAMPLED))
        records += len(have)
        if have != want or extra:
            bad += 1
            k = next((k for k, (a, b) in enumerate(zip(have, want)) if a != b), min(len(have), len(want)))
            print("thread tid %d: %d tracked records, %d expected; first difference at %d: %s vs %s; %d records "
                  "of calls it did not make %s" % (tid, len(have), len(want), k, have[k] if k < len(have) else "-",
                                                   want[k] if k < len(want) else "-", len(extra), extra[:3]))
    n_small = sum(1 for s in calls.values() for op, p, n, old in s if op == "malloc" and n < threshold)
    if not n_small // (2 * every) <= drawn <= 2 * n_small // every:
        bad += 1
        print("%d of %d small mallocs drawn: not about 1 in %d" % (drawn, n_small, every))
    if bad:
        print("mismatch %d" % bad)
        sys.exit(1)
    print("ok %d %d %d/%d" % (len(calls), records, drawn, n_small))


if __name__ == "__main__":
    main()
