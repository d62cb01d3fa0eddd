"""benchdata — what scripts/report.py and scripts/compare share: the
raw.jsonl reader, the figure table, the statistics and the summary.

A benchmark run's only output is <run>/raw.jsonl (schema hakmem-bench/1,
written by build/harness/hakbench, documented in harness/README.md). Figures
per workload case x allocator are taken over the ok repetitions: median, min,
max and MAD (median absolute deviation). Each allocator's median is divided
by the best reference allocator's median for that case ("ratio"; for
lower-is-better figures < 1 beats the best reference, for higher-is-better
figures > 1 does), and the geometric mean of the ratios across cases sums an
allocator up in one number per figure.

Every figure is one row of FIGURES: how it is read from a row, how it is
shown, and where it appears. Nothing else names a figure by hand.

The floor (allocator kind "floor": every case run with the workload's
--floor, no preload) is not an allocator: its cells are kept, but it is not
in `available`, never a reference or a best, has no ratio and no geometric
mean. `above_floor` sets each allocator's time per op against it: what the
allocator adds to the workload's own cost.
"""
import json
import math
import os
import sys
from dataclasses import dataclass
from typing import Callable, Optional

SCHEMA = "hakmem-bench/1"
SUMMARY_SCHEMA = "hakmem-bench-summary/1"

# Against a few KiB of live data, RSS / live bytes measures the program's own
# footprint, not the allocator: fragmentation is only reported from 1 MiB live.
MIN_FRAG_LIVE = 1 << 20


class RawError(Exception):
    """A raw.jsonl that cannot be read: the message says where and why."""


# ---- the figure table --------------------------------------------------------

@dataclass(frozen=True)
class Figure:
    key: str
    title: str              # a heading: "time per op"
    short: str              # a column heading; with the unit it reads as one
    unit: str               # after scaling
    better: str             # "lower" or "higher"
    scale: float            # the raw value is divided by this for display
    fmt: str                # format of the scaled value
    get: Callable           # an ok row -> its value, or None
    mode: str = "measure"   # which rows have it: "measure" or "callgrind"
    headline: bool = False  # a table of its own and a column "at a glance"
    other: bool = False     # a column of "Other figures"
    plot: bool = False      # a bar plot per workload
    compared: bool = False  # compare shows it by default
    noise: bool = False     # its spread is stated under "Machine and noise"
    floor: bool = False     # the floor's value is shown beside the allocators' (a time, not memory)

    def text(self, v):
        return "–" if v is None else self.fmt.format(v / self.scale)

    def best(self, values):
        return (min if self.better == "lower" else max)(values)


def _field(key):
    return lambda row: row.get(key)


def _positive(get):
    """A value that is not there when it is 0 (a run with no sample)."""
    return lambda row: get(row) or None


def _mem(which, key):
    return _positive(lambda row: ((row.get("mem") or {}).get(which) or {}).get(key))


def _idle(key):
    return lambda row: (row.get("idle") or {}).get(key)


def _fragmentation(row):
    if (row.get("peak_live_bytes") or 0) < MIN_FRAG_LIVE:
        return None
    return row.get("fragmentation")


def _peak_rss(row):
    peak = row.get("peak_rss_kib")
    if peak is None:  # rows from before the runner wrote peak_rss_kib
        peak = max(_mem("peak", "rss_kib")(row) or 0, row.get("maxrss_kib") or 0)
    return peak or None


MIB = 1024.0
FIGURES = [
    Figure("ns_per_op", "time per op", "time", "ns/op", "lower", 1.0, "{:.2f}", _field("ns_per_op"),
           headline=True, plot=True, compared=True, noise=True, floor=True),
    Figure("ops_per_sec", "throughput", "throughput", "Mops/s", "higher", 1e6, "{:.2f}", _field("ops_per_sec"),
           headline=True, floor=True),
    Figure("peak_rss_kib", "peak RSS", "peak RSS", "MiB", "lower", MIB, "{:.1f}", _peak_rss,
           headline=True, plot=True, compared=True, noise=True),
    Figure("fragmentation", "fragmentation (peak RSS / peak live bytes)", "fragmentation", "x", "lower", 1.0,
           "{:.2f}", _fragmentation, headline=True),
    Figure("idle_rss_kib", "RSS at the end of the idle period", "idle RSS", "MiB", "lower", MIB, "{:.1f}",
           _idle("rss_at_idle_end_kib"), headline=True, plot=True, compared=True),
    Figure("idle_rss_nolazy_kib", "RSS - LazyFree at the end of the idle period", "idle Rss−LazyFree", "MiB",
           "lower", MIB, "{:.1f}", _idle("rss_nolazy_at_idle_end_kib"), headline=True),
    Figure("user_s", "user CPU", "user", "s", "lower", 1.0, "{:.3f}", _field("user_s"), other=True),
    Figure("sys_s", "system CPU", "sys", "s", "lower", 1.0, "{:.3f}", _field("sys_s"), other=True),
    Figure("minflt", "minor page faults", "minor", "faults", "lower", 1.0, "{:.0f}", _field("minflt"),
           other=True),
    Figure("final_rss_kib", "RSS at the last sample", "final RSS", "MiB", "lower", MIB, "{:.1f}",
           _mem("final", "rss_kib"), other=True),
    Figure("peak_nolazy_kib", "peak RSS - LazyFree", "peak Rss−LazyFree", "MiB", "lower", MIB, "{:.1f}",
           _mem("peak", "rss_nolazy_kib"), other=True),
    Figure("instr_per_op", "instructions per op (callgrind)", "instructions", "instr/op", "lower", 1.0, "{:.1f}",
           _field("instr_per_op"), mode="callgrind", headline=True, plot=True, compared=True, noise=True),
]
FIG = {f.key: f for f in FIGURES}

# The figure the floor is set against in `above_floor`.
FLOOR_FIGURE = "ns_per_op"


def figures_of(row):
    """The figures one ok row contributes, as {key: value}. A stats row
    (hakmem's own account, untimed) contributes none: see memory_breakdown."""
    mode = row.get("mode") or "measure"
    out = {}
    for f in FIGURES:
        if f.mode == mode:
            v = f.get(row)
            if v is not None:
                out[f.key] = v
    return out


# ---- hakmem's own account of its memory (stats rows) ------------------------------

# The parts a stats row's resident memory is split into, in the order they
# are stacked, with their titles. They sum to the process's RSS at the
# moment the figures were taken.
MEMORY_PARTS = [
    ("in_use", "in use by the program (usable sizes)"),
    ("thread_cache", "cached (magazines, transfer cache)"),
    ("slab_free", "free in slabs"),
    ("pooled", "pooled"),
    ("medium_free", "medium free"),
    ("large_cache", "large cache"),
    ("metadata", "metadata"),
    ("outside", "outside hakmem"),
]


def split_resident(s):
    """One set of hakmem's figures (a row's hakmem_stats.end or .peak) as
    resident bytes per MEMORY_PARTS key. hakmem reports residency (mincore)
    per kind of memory, not per block: the resident memory of slabs is given
    first to the blocks in use, then to the blocks cached in magazines and
    the transfer cache (all were written when handed out), the rest to free
    blocks; that of medium chunks
    first to the runs in use. "outside" is the process's RSS that is not
    hakmem's (program, libraries, stacks, libc's own), when the set carries
    the process's RSS (process_rss_bytes); else None."""
    res = s.get("resident") or {}
    slabs, medium = res.get("slabs", 0), res.get("medium", 0)
    small_used = min(s.get("small_in_use_bytes", 0), slabs)
    mags = min(s.get("magazine_bytes", 0) + s.get("transfer_bytes", 0), slabs - small_used)
    medium_used = min(s.get("medium_in_use_bytes", 0), medium)
    out = {
        "in_use": small_used + medium_used + res.get("large", 0),
        "thread_cache": mags,
        "slab_free": slabs - small_used - mags,
        "pooled": res.get("pool", 0) + res.get("superslab_free", 0),
        "medium_free": medium - medium_used,
        "large_cache": res.get("large_cache", 0),
        "metadata": res.get("metadata", 0),
    }
    rss = s.get("process_rss_bytes")
    out["outside"] = max(rss - sum(out.values()), 0) if rss else None
    return out


def memory_breakdown(rows):
    """{label: {allocator: {...}}} from the ok stats rows: the run's peak RSS
    and the program's peak live bytes (the workload's count), and at the
    peak RSS and at exit hakmem's figures and their split (split_resident)."""
    out = {}
    for r in rows:
        hs = r.get("hakmem_stats")
        if r.get("mode") != "stats" or r.get("status") != "ok" or not isinstance(hs, dict) or "end" not in hs:
            continue
        cell = {"peak_rss_kib": _peak_rss(r), "peak_live_bytes": r.get("peak_live_bytes"),
                "final_live_bytes": r.get("final_live_bytes")}
        for when in ("peak", "end"):
            s = hs.get(when)
            cell[when] = None if s is None else {"figures": s, "parts": split_resident(s)}
        out.setdefault(r["label"], {})[r["allocator"]] = cell
    return out


# ---- reading -------------------------------------------------------------------

def load_raw(run_dir):
    """Returns (context, rows, skips, end) from <run_dir>/raw.jsonl; end is
    None when the run did not finish. Raises RawError."""
    path = os.path.join(run_dir, "raw.jsonl") if os.path.isdir(run_dir) else run_dir
    context, rows, skips, end, unreadable = None, [], [], None, []
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise RawError(f"{path}: {e.strerror}") from e
    with f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                unreadable.append(f"{path}:{n}: skipping unreadable line ({e})")
                continue
            if not isinstance(row, dict) or row.get("schema") != SCHEMA:
                got = row.get("schema") if isinstance(row, dict) else type(row).__name__
                raise RawError(f"{path}:{n}: schema {got!r}, expected {SCHEMA!r}")
            t = row.get("type")
            if t == "context":
                context = row
            elif t == "run":
                rows.append(row)
            elif t == "skip":
                skips.append(row)
            elif t == "end":
                end = row
    if context is None:
        raise RawError(f"{path}: no context row")
    # An interrupted run may leave a partial last line: say so, go on.
    for msg in unreadable:
        print(f"{os.path.basename(sys.argv[0])}: {msg}", file=sys.stderr)
    return context, rows, skips, end


# ---- statistics -----------------------------------------------------------------

def median(xs):
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return None
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0


def mad(xs):
    m = median(xs)
    return median([abs(x - m) for x in xs]) if xs else None


def geomean(xs):
    xs = [x for x in xs if x is not None and x > 0]
    if not xs:
        return None
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def stats(values):
    m = median(values)
    d = mad(values)
    return {
        "n": len(values), "median": m, "min": min(values), "max": max(values), "mad": d,
        "rel_mad": (d / m) if m else None, "values": values,
    }


# ---- summary ----------------------------------------------------------------------

MACHINE_KEYS = ("host", "cpu_model", "cores", "kernel", "thp_enabled", "thp_defrag", "cpu_governor",
                "mem_total_kib", "glibc", "compiler", "git_commit", "git_dirty", "loadavg_start")


def _cells(rows):
    """{label: {allocator: {figure: stats}}} over the ok rows; the counts
    per status and the runs that were not ok."""
    values = {}  # (label, alloc, fig) -> [values]
    counts = {"ok": 0, "failed": 0, "invalid": 0}
    problems = []
    for r in rows:
        st = r.get("status")
        counts[st] = counts.get(st, 0) + 1
        if st != "ok":
            problems.append({
                "status": st, "label": r["label"], "allocator": r["allocator"], "rep": r.get("rep"),
                "mode": r.get("mode"), "reason": r.get("reason"), "signal": r.get("signal"),
                "log": r.get("log"),
            })
            continue
        for k, v in figures_of(r).items():
            values.setdefault((r["label"], r["allocator"], k), []).append(v)
    cells = {}
    for (label, alloc, fig), vs in values.items():
        cells.setdefault(label, {}).setdefault(alloc, {})[fig] = stats(vs)
    return cells, counts, problems


def _ratios(cells, labels, reference, floor):
    """Adds ratio_to_best_reference to every cell but the floor's; returns
    the best reference per case and figure."""
    best_ref = {}
    for label in labels:
        for f in FIGURES:
            cands = [(cells[label][a][f.key]["median"], a) for a in reference
                     if f.key in cells.get(label, {}).get(a, {})]
            cands = [c for c in cands if c[0] is not None]
            if not cands:
                continue
            v, a = f.best(cands)
            best_ref.setdefault(label, {})[f.key] = {"allocator": a, "median": v}
            for alloc in cells.get(label, {}):
                if alloc == floor:
                    continue
                c = cells[label][alloc].get(f.key)
                if c and v:
                    c["ratio_to_best_reference"] = c["median"] / v
    return best_ref


def _geomeans(cells, labels, alloc_names):
    geo = {}
    for alloc in alloc_names:
        for f in FIGURES:
            rs = [cells[l][alloc][f.key].get("ratio_to_best_reference") for l in labels
                  if f.key in cells.get(l, {}).get(alloc, {})]
            g = geomean(rs)
            if g is not None:
                geo.setdefault(alloc, {})[f.key] = {"geomean_ratio": g, "cases": len([r for r in rs if r])}
    return geo


def _above_floor(cells, labels, allocs, floor):
    """Per case with a floor figure: the floor's time per op, the fastest
    allocator, and for each allocator its time above the floor (ns/op) and
    that as a share of its time. A difference below zero is kept as it is:
    the allocator's median fell below the floor's."""
    out = {}
    k = FLOOR_FIGURE
    for label in labels:
        byalloc = cells.get(label, {})
        fl = byalloc.get(floor, {}).get(k) if floor else None
        meds = {a: byalloc[a][k]["median"] for a in allocs if k in byalloc.get(a, {})}
        if not fl or not meds:
            continue
        f0 = fl["median"]
        best = FIG[k].best([(m, a) for a, m in meds.items()])
        out[label] = {
            "floor": {"median": f0, "rel_mad": fl["rel_mad"], "n": fl["n"]},
            "best": {"allocator": best[1], "median": best[0]},
            "floor_share_of_best": f0 / best[0] if best[0] else None,
            "allocators": {a: {"median": m, "above_floor": m - f0, "share_above_floor": (m - f0) / m if m else None}
                           for a, m in meds.items()},
        }
    return out


def _noise(cells):
    """The relative MAD of each noise figure over the cells with 2+ runs."""
    noise = {}
    for f in FIGURES:
        if not f.noise:
            continue
        rel = [(c[f.key]["rel_mad"], l, a) for l, byalloc in cells.items() for a, c in byalloc.items()
               if f.key in c and c[f.key]["rel_mad"] is not None and c[f.key]["n"] >= 2]
        if rel:
            rel.sort()
            noise[f.key] = {"median_rel_mad": median([r[0] for r in rel]), "max_rel_mad": rel[-1][0],
                            "max_at": {"label": rel[-1][1], "allocator": rel[-1][2]}, "cells": len(rel)}
    return noise


def summarize(context, rows, skips, end):
    allocs = context.get("allocators", [])
    floors = [a["name"] for a in allocs if a.get("kind") == "floor" and a.get("status") == "available"]
    floor = floors[0] if floors else None
    alloc_names = [a["name"] for a in allocs if a.get("kind") != "floor"]
    available = [a["name"] for a in allocs if a.get("status") == "available" and a.get("kind") != "floor"]
    reference = [a["name"] for a in allocs if a.get("kind") == "reference" and a.get("status") == "available"]
    labels = [c["label"] for c in context.get("cases", [])]
    for r in rows:  # callgrind-only cases, or cases not in the context
        if r["label"] not in labels:
            labels.append(r["label"])
    workload_of = {c["label"]: c["workload"] for c in context.get("cases", [])}
    for r in rows:
        workload_of.setdefault(r["label"], r.get("workload"))

    cells, counts, problems = _cells(rows)
    best_ref = _ratios(cells, labels, reference, floor)
    return {
        "schema": SUMMARY_SCHEMA,
        "raw_schema": context.get("schema"),
        "suite": context.get("suite"),
        "started": context.get("started"),
        "machine": {k: context.get(k) for k in MACHINE_KEYS},
        # None: written before the runner recorded the environment
        "environment": context.get("environment"),
        "loadavg_end": (end or {}).get("loadavg_end"),
        "wall_s": (end or {}).get("wall_s"),
        "interrupted": (end or {}).get("interrupted") if end else True,
        "runner": context.get("runner"),
        "allocators": allocs,
        "available": available,        # the allocators compared: the floor is not one
        "reference": reference,
        # the floor pseudo-allocator's name, or None; floor_ran: the runner's
        # runner.floor (None: written before the runner had floor runs)
        "floor": floor,
        "floor_ran": (context.get("runner") or {}).get("floor"),
        "cases": labels,
        "workload_of": workload_of,
        "counts": counts,
        "problems": problems,
        "skipped_cases": [{"label": s["label"], "workload": s["workload"], "mode": s.get("mode"),
                           "reason": s.get("reason")} for s in skips],
        "figures": {f.key: {"title": f.title, "unit": f.unit, "better": f.better} for f in FIGURES},
        "cells": cells,
        "best_reference": best_ref,
        "geomean": _geomeans(cells, labels, alloc_names),
        "above_floor": _above_floor(cells, labels, available, floor),
        # hakmem's account of its memory, from the stats runs (None: the
        # runner made none: --no-stats, or written before it had them)
        "memory": memory_breakdown(rows),
        "stats_ran": (context.get("runner") or {}).get("stats"),
        "noise": _noise(cells),
    }


def load_summary(run_dir):
    """(context, rows, summary) of a run directory. Raises RawError."""
    context, rows, skips, end = load_raw(run_dir)
    return context, rows, summarize(context, rows, skips, end)
