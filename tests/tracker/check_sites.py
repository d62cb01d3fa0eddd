#!/usr/bin/python3
"""check_sites.py - the allocation sites of tests/tracker/sites.c's trace
against the program's known figures (tests/tracker.sh).

usage: check_sites.py trace.json merged|peak|temporary [n]
Prints "ok", or what differs.
"""
import json
import sys

PROG = "tracker_sites"


def main():
    j = json.load(open(sys.argv[1]))
    what = sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    m = j["instances"][j["main"]]
    al = m.get("allocation_sites")
    if not al:
        print("no allocation_sites in the report")
        return
    errs = []

    def ours(table):
        return [s for s in al[table] if s["module"] == PROG]

    def fig(s, *keys):
        return tuple(s[k] for k in keys)

    if what == "merged":
        got = {s["function"]: fig(s, "calls", "bytes", "leaked", "leaked_blocks", "stacks") for s in ours("by_calls")}
        want = {"temporaries": (n, 24 * n, 0, 0, 1), "pairs": (100, 4400, 0, 0, 2),
                "keep_small": (50, 50000, 50000, 50, 1), "alloc_here": (40, 2560, 2560, 40, 2),
                "hold_big": (4, 400000, 0, 0, 1)}
        if got != want:
            errs.append("by calls %r, want %r" % (got, want))
        order = [s["function"] for s in ours("by_calls")]
        if order != sorted(want, key=lambda k: -want[k][0]):
            errs.append("by calls in the order %r" % order)
        a = [s for s in ours("by_calls") if s["function"] == "alloc_here"]
        if a:
            st = [(t["calls"], t["frames"][1].split("+")[0]) for t in a[0]["top_stacks"]]
            if st != [(30, "keep_from_a"), (10, "keep_from_b")]:
                errs.append("alloc_here's stacks %r" % st)
        lk = [fig(s, "function", "leaked") for s in ours("by_leaked")]
        if lk != [("keep_small", 50000), ("alloc_here", 2560)]:
            errs.append("by leaked %r" % lk)
        by = [s["function"] for s in ours("by_bytes")][:2]
        if by != ["hold_big", "keep_small"]:
            errs.append("by bytes %r" % by)
    if what == "peak":
        pk = [fig(s, "function", "peak") for s in al["by_peak"]]
        if pk != [("hold_big", 400000), ("alloc_here", 2560)]:
            errs.append("peak consumers %r" % pk)
        if sum(p for _, p in pk) != m["peak_live_bytes"]:
            errs.append("they hold %d, the peak is %d" % (sum(p for _, p in pk), m["peak_live_bytes"]))
        st = [(t["peak"], t["frames"][1].split("+")[0]) for t in al["by_peak"][-1]["top_stacks"]] if pk else []
        if st != [(1920, "keep_from_a"), (640, "keep_from_b")]:
            errs.append("alloc_here's stacks at the peak %r" % st)
    if what == "temporary":
        if m["temporary_allocations"] != n:
            errs.append("temporary_allocations %r, want %d" % (m["temporary_allocations"], n))
        tp = [fig(s, "function", "temporary") for s in al["by_temporary"]]
        if tp != [("temporaries", n)]:
            errs.append("by temporary %r" % tp)
        pairs = [s["temporary"] for s in ours("by_calls") if s["function"] == "pairs"]
        if pairs != [0]:
            errs.append("pairs() %r temporary, want 0" % pairs)
    print("; ".join(errs) if errs else "ok")


main()
