#!/usr/bin/python3
"""check_plots.py TRACE_JSON THREADS - draws the plots of trace.html for the
main process of a report (tracker/trace_html.py's figure functions) and
checks their axes (tests/tracker.sh):

- "Operations per thread": ticks only at whole thread indices, 0 among
  them, none below 0 or past THREADS - 1 (with one thread: exactly "0");
  y axis "calls";
- "Reallocs per chain" (when the trace has realloc chains): tick labels
  plain counts (no unit of time or size), bars counting chains;
- "Block sizes": labels in bytes; "Lifetime": labels in units of time.

Prints "ok", or each fault found; exit 0 only on "ok".
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tracker"))
import trace_html  # noqa: E402

COUNT = re.compile(r"^\d+(\.\d+)? ?[KMG]?$")
BYTES = re.compile(r"^(0|\d+(\.\d+)? (B|KiB|MiB|GiB))$")
TIME = re.compile(r"^(0|\d+(\.\d+)? (ns|us|ms|s))$")


def labels(fig, axis="x"):
    fig.canvas.draw()
    ax = fig.axes[0]
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in ticks if t.get_text()]


def main():
    path, threads = sys.argv[1], int(sys.argv[2])
    with open(path, encoding="utf-8") as f:
        j = json.load(f)
    m = j["instances"][j["main"]]
    faults = []
    if m["threads"] != threads:
        faults.append("the trace has %d threads, not %d" % (m["threads"], threads))

    fig = trace_html.fig_threads(m)
    got = labels(fig)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    shown = min(threads, 64)
    if threads == 1 and got != ["0"]:
        faults.append("operations per thread, one thread: ticks %r, not ['0']" % got)
    if not got or any(not re.fullmatch(r"\d+", t) or int(t) >= shown for t in got) or "0" not in got:
        faults.append("operations per thread: ticks %r are not whole thread indices from 0 to %d" % (got, shown - 1))
    if lo < -1 or hi > shown:
        faults.append("operations per thread: x axis from %.2f to %.2f" % (lo, hi))
    if ax.get_ylabel() != "calls":
        faults.append("operations per thread: y axis %r" % ax.get_ylabel())

    rc = m["realloc_chains"]
    if rc["top"]:
        fig = trace_html.fig_hist(rc["length_hist"], None, "", "Reallocs per chain", "reallocs (bucket start)",
                                  "chains")
        got = labels(fig)
        bad = [t for t in got if not COUNT.match(t)]
        if not got or bad:
            faults.append("reallocs per chain: tick labels %r are not plain counts" % got)
        if fig.axes[0].get_ylabel() != "chains":
            faults.append("reallocs per chain: y axis %r" % fig.axes[0].get_ylabel())

    fig = trace_html.fig_hist(m["size_hist"], m["size_hist_bytes"], "B", "Block sizes", "requested size")
    got = labels(fig)
    if not got or any(not BYTES.match(t) for t in got):
        faults.append("block sizes: tick labels %r are not sizes" % got)
    fig = trace_html.fig_hist(m["lifetime_hist_ns"], None, "ns", "Lifetime", "lifetime")
    if fig:
        got = labels(fig)
        if not got or any(not TIME.match(t) for t in got):
            faults.append("lifetimes: tick labels %r are not times" % got)
    print("; ".join(faults) if faults else "ok")
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
